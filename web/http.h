/* http: the web page, the JSON API and the feeds — libmicrohttpd inside our event loop.
 *
 * libmicrohttpd runs in external epoll mode: its epoll fd is one source on the daemon's
 * sd-event loop, at a lower priority than readers, inputs and the store's commit, so a burst
 * of web requests delays a door by at most one pass over the ready connections. Nothing
 * here blocks: a state-changing request is sent to the control server as an in-process
 * client (control_adopt), so it gets exactly the rule checks, error messages and
 * commit-before-reply of portierctl, and the web connection is suspended until the answer
 * comes; password checks run in child processes (password.h). */
#pragma once
#include <jansson.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "control.h"
#include "fablab.h"
#include "store.h"

struct http;

/* What the web server reads from the rest of the daemon. */
struct http_env {
    sd_event *loop;
    struct store *store;
    struct control *control;
    struct fablab *fablab;
    /* The `portierctl status` object (new reference), for the pages, /healthz and /metrics. */
    json_t *(*status)(void *userdata);
    void *userdata;
};

/* Start serving on cfg->http.listen. 0 or -errno (logged, with why). */
int http_new(const struct http_env *env, const struct config *cfg, struct http **ret);
/* Resume and close every connection, stop. NULL-safe; returns NULL. */
struct http *http_free(struct http *h);
/* After SIGHUP: the new config (site name, [spaceapi]; [http] itself needs a restart). */
void http_reconfigure(struct http *h, const struct config *cfg);
