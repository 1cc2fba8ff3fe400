/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* opendata: the consortium's open dataset for a period — what its shared places and
 * machines were used for, per site and day, per site, machine category and week, and
 * between sites — as CSV files with Table Schemas and a Frictionless datapackage.json
 * (docs/opendata.md).
 *
 * Only sites whose seal for the period the custodian verified are published, and only
 * from entries their seal covers: every entry counted is hashed again and chained up to
 * the seal's last_hash, and the seal's signature is checked again with the registered key.
 *
 * Nobody can be re-identified: a figure with fewer than k people behind it is left empty
 * (zero included), complements are hidden so that no empty cell can be worked out from
 * totals (suppress.h), a site with too few people is published per week or per month
 * instead of per day, and neither member ids nor visitor pseudonyms nor resource names
 * ever reach the files. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "custodian_db.h"

#define OPENDATA_K_DEFAULT 5
#define OPENDATA_K_MAX 1000
#define OPENDATA_OTHER_CATEGORY "other"     /* machines the registry gives no category */

struct opendata_licence {
    const char *id;             /* a Data Package licence name (lower case) */
    const char *title, *url;
};
/* The licences `--licence` knows, NULL-terminated by id; the first is the default
 * (Licence Ouverte / Open Licence 2.0). */
extern const struct opendata_licence opendata_licences[];
/* NULL if id is not one of them. */
const struct opendata_licence *opendata_licence_find(const char *id);

struct opendata_options {
    const char *period;         /* YYYY-MM */
    const char *dir;            /* written into; must exist */
    const char *producer;       /* who publishes (the Data Package's publisher) */
    const struct opendata_licence *licence;
    int k;                      /* 2 .. OPENDATA_K_MAX */
    bool partial;               /* publish the sites whose seal is verified, without the rest */
    int64_t now;                /* the generation time written in the package */
};

/* Write DIR/{datapackage.json, sites, site_days, machine_use, visits_between_sites}.csv and
 * their .schema.json, each to a temporary name, synced, then renamed; datapackage.json
 * last. Progress and notices on out, refusals on err. Returns 0 when written, 1 when
 * refused (a registered site without a verified seal and not partial, no site at all, a
 * site whose entries fail a check again: nothing is written), -errno if the database or a
 * file failed. */
int opendata_generate(struct cdb *db, const struct opendata_options *o, FILE *out, FILE *err);

/* Checks of what the operator enters in the registry (custodian.c). */
bool opendata_insee_code_ok(const char *s);            /* "69123", "2A004" */
bool opendata_coordinate_ok(const char *s, int max_degrees);    /* "-1.5536", 90 or 180 */
bool opendata_text_ok(const char *s, size_t max);       /* 1..max-1 bytes, UTF-8, printable */
bool opendata_category_ok(const char *s);               /* a name, lower case */
