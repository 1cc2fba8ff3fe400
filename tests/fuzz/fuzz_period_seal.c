/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_period_seal: period_seal_from_json() and period_seal_parse() on arbitrary payloads.
 *
 * Seals reach the custodian from the network (any client allowed to publish on a site's
 * ledger/period topic). A payload either fails (-EMSGSIZE or -EBADMSG) or yields a text of
 * at most PERIOD_SEAL_TEXT_MAX bytes; a text that parses encodes back byte for byte, and
 * its JSON round trip gives the same text and signature. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "period_seal.h"
#include "period_seal_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t pk[PERIOD_SEAL_PK_LEN] = { 0x42 };
    char text[PERIOD_SEAL_TEXT_MAX + 1], again[PERIOD_SEAL_TEXT_MAX + 1];
    char back[PERIOD_SEAL_TEXT_MAX + 1];
    uint8_t sig[PERIOD_SEAL_SIG_LEN], sig2[PERIOD_SEAL_SIG_LEN];
    struct period_seal s;
    size_t len = 0;
    char *json;
    int r, n;

    if (sodium_init() < 0)
        abort();
    r = period_seal_from_json(data, size, text, sig);
    if (r < 0) {
        FUZZ_CHECK(r == -EBADMSG || r == -EMSGSIZE);
        /* The raw bytes as a text: parsing never crashes either. */
        (void)period_seal_parse((const char *)data, size, &s);
        return 0;
    }
    FUZZ_CHECK(strlen(text) <= PERIOD_SEAL_TEXT_MAX);
    json = period_seal_to_json(text, sig, &len);
    FUZZ_CHECK(json != NULL);
    FUZZ_CHECK(period_seal_from_json(json, len, back, sig2) == 0);
    FUZZ_CHECK(strcmp(back, text) == 0 && memcmp(sig, sig2, sizeof(sig)) == 0);
    free(json);
    if (period_seal_parse(text, strlen(text), &s) == 0) {
        n = period_seal_encode(&s, again, sizeof(again));
        FUZZ_CHECK(n >= 0 && (size_t)n == strlen(text) && memcmp(again, text, (size_t)n) == 0);
    }
    (void)period_seal_signature_ok(text, strlen(text), sig, pk);
    return 0;
}
