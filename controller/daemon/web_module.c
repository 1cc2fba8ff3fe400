/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* web_module: see web_module.h. */
#include "web_module.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#ifndef PORTIER_MODULE_RELDIR
#define PORTIER_MODULE_RELDIR "../lib/portier"
#endif
#ifndef PORTIER_MODULE_DIR
#define PORTIER_MODULE_DIR "/usr/lib/portier"
#endif
#define WEB_MODULE_FILE "portier-web.so"

/* The module beside this executable: DIR_OF_EXE/PORTIER_MODULE_RELDIR/portier-web.so. */
static int beside_executable(char *buf, size_t n)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    if (len <= 0)
        return -errno;
    exe[len] = '\0';
    slash = strrchr(exe, '/');
    if (!slash)
        return -ENOENT;
    *slash = '\0';
    if (snprintf(buf, n, "%s/%s/%s", exe, PORTIER_MODULE_RELDIR, WEB_MODULE_FILE) >= (int)n)
        return -ENAMETOOLONG;
    return 0;
}

/* Defined by web/module.c. portierd does not link it (it loads the module); a program that
 * embeds the daemon and the web statically (the fuzz harness of whole requests) links it
 * in with -Wl,--undefined=portier_web_module, and then uses it as it is. */
extern const struct web_module portier_web_module __attribute__((weak));

int web_module_load(const struct web_module **ret)
{
    static const struct web_module *module;
    char path[PATH_MAX + 64];
    void *handle;

    if (!module && &portier_web_module)
        module = &portier_web_module;
    if (module) {
        *ret = module;
        return 0;
    }
    /* Beside this executable if it is there (a build tree, an installed tree), else where
     * the package puts it. */
    if (beside_executable(path, sizeof(path)) < 0 || access(path, F_OK) < 0)
        snprintf(path, sizeof(path), "%s/%s", PORTIER_MODULE_DIR, WEB_MODULE_FILE);
    /* RTLD_NOW: a symbol the daemon does not export fails here, at start, and not in the
     * middle of a request. RTLD_LOCAL: nothing of the module's is seen by other libraries. */
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        log_error("http: cannot load the web module: %s", dlerror());
        return -ENOENT;
    }
    module = dlsym(handle, WEB_MODULE_SYMBOL);
    if (!module || module->version != WEB_MODULE_VERSION ||
        strcmp(module->build, PORTIER_VERSION) != 0) {
        log_error("http: %s is not the web module of portierd %s (%s)", path, PORTIER_VERSION,
                  module ? module->build : "no " WEB_MODULE_SYMBOL);
        module = NULL;
        dlclose(handle);
        return -ENOEXEC;
    }
    *ret = module;
    return 0;
}
