/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* i18n_catalog: the compiled translations (generated from po/LANG.po by tools/po2c.py). */
#pragma once
#include <stddef.h>

struct i18n_entry {
    const char *msgid;              /* the English text */
    const char *msgid_plural;       /* NULL unless plural */
    const char *msgstr[2];          /* singular, plural (French: 0 and 1 singular) */
};

/* Sorted by msgid (strcmp), for a binary search. */
extern const struct i18n_entry i18n_catalog_fr[];
extern const size_t i18n_catalog_fr_count;
