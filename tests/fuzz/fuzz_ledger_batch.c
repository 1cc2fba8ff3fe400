/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_ledger_batch: ledger_batch_parse() on arbitrary payloads.
 *
 * Batches reach the custodian from the network (any client allowed to publish on a
 * site's ledger topic). A parse either fails with -EBADMSG and a reason, or yields a
 * batch of 1 to LEDGER_BATCH_MAX consecutive entries of one site whose canonical
 * encodings print back byte for byte, and which survives a JSON round trip unchanged. */
#include <errno.h>
#include <sodium.h>

#include "fuzz.h"
#include "ledger_batch.h"
#include "ledger_batch_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ledger_batch b, again;
    static const uint8_t pk[LEDGER_PK_LEN] = { 0x42 };
    struct ledger_verifier v;
    char why[160] = "";
    size_t len = 0;
    char *text;
    int r;

    if (sodium_init() < 0)
        abort();
    r = ledger_batch_parse(data, size, &b, why, sizeof(why));
    if (r < 0) {
        FUZZ_CHECK(r == -EBADMSG);
        FUZZ_CHECK(why[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(b.n >= 1 && b.n <= LEDGER_BATCH_MAX);
    FUZZ_CHECK(b.last - b.first + 1 == (int64_t)b.n);
    for (unsigned i = 0; i < b.n; i++) {
        FUZZ_CHECK(b.entries[i].seq == b.first + (int64_t)i);
        FUZZ_CHECK(strcmp(b.entries[i].site, b.site) == 0);
    }
    text = ledger_batch_to_json(&b, &len);
    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(ledger_batch_parse(text, len, &again, why, sizeof(why)) == 0);
    FUZZ_CHECK(again.n == b.n && again.first == b.first);
    FUZZ_CHECK(memcmp(again.entries, b.entries, b.n * sizeof(b.entries[0])) == 0);
    free(text);
    /* Checking never crashes, whatever the key. */
    (void)ledger_batch_check(&b, pk, &v);
    return 0;
}
