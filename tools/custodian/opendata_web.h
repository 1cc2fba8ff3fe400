/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* opendata_web: the published datasets under /opendata/ of the custodian's web page,
 * read-only, from a directory holding one subdirectory per period (YYYY-MM, each written by
 * `portier-custodian opendata --out DIR/YYYY-MM`):
 *
 *   /opendata/                  an HTML index of the periods
 *   /opendata/feed.atom         an Atom feed, one entry per period (updated when regenerated)
 *   /opendata/YYYY-MM/          the period's files
 *   /opendata/YYYY-MM/FILE      a file: datapackage.json, a CSV, a schema
 *
 * Every answer carries an ETag (the SHA-256 of its bytes) and Last-Modified, and a request
 * with a matching If-None-Match (or, without one, If-Modified-Since) gets 304. Only names
 * of those forms are served: nothing outside the directory, no symbolic link, no temporary
 * file of a generation under way. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct opendata_web_reply {
    unsigned status;            /* 200, 301, 304, 400, 404, 500 */
    const char *type;           /* Content-Type */
    char *body;                 /* malloc()ed; NULL for 304 */
    size_t len;
    char etag[72];              /* "\"...\"" or "" */
    int64_t last_modified;      /* 0: none */
    char location[64];          /* 301: where to */
};

/* Answer a GET or HEAD of url (which starts with "/opendata") from root. if_none_match and
 * if_modified_since are the request's headers, or NULL. Fills *ret (free ret->body). */
void opendata_web_answer(const char *root, const char *url, const char *if_none_match,
                         const char *if_modified_since, struct opendata_web_reply *ret);
