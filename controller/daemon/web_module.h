/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* web_module: the web page (web/, libmicrohttpd and the TLS stack it brings) is a module,
 * portier-web.so, loaded only when [http] listen is set — as libmosquitto is only when
 * [mqtt] is enabled: a site without a web page does not carry ~2.3 MiB of library pages.
 *
 * The module calls the daemon's own functions (the store's read API, the command table,
 * the log...): portierd exports exactly the symbols the module imports (a list generated
 * at build time from the module's objects, tools/module_imports.py), and the module
 * exports one symbol, `portier_web_module`, of the type below. */
#pragma once
#include "http.h"

#define WEB_MODULE_VERSION 1
#define WEB_MODULE_SYMBOL "portier_web_module"

struct web_module {
    unsigned version;                   /* WEB_MODULE_VERSION: a module of the same build */
    const char *build;                  /* PORTIER_VERSION of the module */
    int (*start)(const struct http_env *env, const struct config *cfg, struct http **ret);
    struct http *(*stop)(struct http *h);
    void (*reconfigure)(struct http *h, const struct config *cfg);
};

/* Load portier-web.so (once; later calls return the same module): from PORTIER_MODULE_DIR
 * relative to the running executable (the build tree and an installed tree have the same
 * layout), else from the installed path. Logs why it cannot. 0 or -errno. A program linked
 * with the web itself (portier-web and -Wl,--undefined=portier_web_module: a test harness
 * that embeds the daemon) gets that one, and nothing is loaded. */
int web_module_load(const struct web_module **ret);
