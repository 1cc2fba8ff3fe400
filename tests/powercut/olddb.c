/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* powercut-olddb PATH VERSION: create the database PATH at schema VERSION (the migrations up
 * to it), as an older Portier left it, for power cuts during the later migrations. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int main(int argc, char **argv)
{
    char *end;
    long version;
    int r;

    if (argc != 3) {
        fprintf(stderr, "usage: powercut-olddb PATH VERSION (0..%d)\n", STORE_SCHEMA_VERSION);
        return 2;
    }
    version = strtol(argv[2], &end, 10);
    if (*end || version < 0 || version > STORE_SCHEMA_VERSION) {
        fprintf(stderr, "powercut-olddb: VERSION must be 0..%d\n", STORE_SCHEMA_VERSION);
        return 2;
    }
    r = store_create_at_version(argv[1], (int)version);
    if (r < 0) {
        fprintf(stderr, "powercut-olddb: %s: %s\n", argv[1], strerror(-r));
        return 1;
    }
    return 0;
}
