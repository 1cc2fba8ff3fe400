/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* web: the custodian's read-only web page (libmicrohttpd), server-rendered HTML without
 * JavaScript: the sites, how far each is verified, the problems, and a period's report;
 * also /report.json and /report.csv, and the published open data under /opendata/. Only
 * GET and HEAD; every value is HTML-escaped. */
#pragma once
#include <signal.h>

#include "custodian_db.h"

/* Serve on listen ("ADDR:PORT", IPv4) until *stopping. 0 or -errno. The database is used
 * only by the server's one thread while it runs. With opendata_dir, the datasets under it
 * are served at /opendata/ (opendata_web.h); NULL: not at all. */
int web_serve(struct cdb *db, const char *listen, const char *opendata_dir,
              volatile sig_atomic_t *stopping);

/* The page for period as HTML (malloc()ed), for tests and the server. */
char *web_page(struct cdb *db, const char *period);
