/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The web page as a module of portierd (controller/daemon/web_module.h): its one export. */
#include "web_module.h"

__attribute__((visibility("default")))
const struct web_module portier_web_module = {
    .version = WEB_MODULE_VERSION,
    .build = PORTIER_VERSION,
    .start = http_new,
    .stop = http_free,
    .reconfigure = http_reconfigure,
};
