/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* http: the web page, the JSON API and the feeds — libmicrohttpd inside our event loop.
 *
 * libmicrohttpd runs in external epoll mode: its epoll fd is one source on the daemon's
 * sd-event loop, at a lower priority than readers, inputs and the store's commit, so a burst
 * of web requests delays a door by at most one pass over the ready connections. Nothing
 * here blocks: a state-changing request runs through the command table (command.h) as the
 * session's account, so it gets exactly the role checks, rule checks and error messages of
 * portierctl, and is answered once what it reports is on disk (the connection is suspended
 * meanwhile); password checks run in child processes (password.h). */
#pragma once
#include <jansson.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"

struct http;
struct services;

/* What the web server uses of the rest of the daemon: its services (the store's read API,
 * the command table, the status). */
struct http_env {
    sd_event *loop;
    struct services *svc;
};

/* Start serving on cfg->http.listen. 0 or -errno (logged, with why). */
int http_new(const struct http_env *env, const struct config *cfg, struct http **ret);
/* Resume and close every connection, stop. NULL-safe; returns NULL. */
struct http *http_free(struct http *h);
/* After SIGHUP: the new config (site name, [spaceapi]; [http] itself needs a restart). */
void http_reconfigure(struct http *h, const struct config *cfg);
