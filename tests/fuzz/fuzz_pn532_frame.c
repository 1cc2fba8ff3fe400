/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_pn532_frame: pn532_frame_parse() and pn532_list_answer_parse() on whatever a reader
 * sends down the serial line.
 *
 * The reader worker reads the answers to its idle poll itself (hw/pn532_frame.h): bytes from
 * a chip, a cable or a device pretending to be one. The input is the stream the worker reads;
 * frames are parsed one after the other as the worker does, and every answer's targets are
 * decoded. The contracts: nothing is read outside the input (ASan), a parsed frame lies
 * within what was given, and a decoded target fits libnfc's nfc_iso14443a_info. */
#include <errno.h>

#include "fuzz.h"
#include "pn532_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;
    size_t at = 0;

    if (size > 4 * PN532_FRAME_MAX)
        return 0;
    /* An exact-size heap copy: ASan sees any read past the end. */
    copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    while (at < size) {
        struct pn532_frame f;
        struct pn532_target_a t;
        int used = pn532_frame_parse(copy + at, size - at, &f);

        FUZZ_CHECK(used == -EBADMSG || (used >= 0 && (size_t)used <= size - at));
        if (used <= 0)
            break;
        if (f.kind == PN532_FRAME_DATA) {
            FUZZ_CHECK(f.body >= copy + at && f.body + f.body_len <= copy + at + used);
            FUZZ_CHECK(f.body_len >= 2 && f.body_len <= 255);
            int r = pn532_list_answer_parse(f.body, f.body_len, &t);
            FUZZ_CHECK(r == -EBADMSG || r == 0 || r == 1);
            if (r == 1) {
                FUZZ_CHECK(t.uid_len >= 1 && t.uid_len <= PN532_UID_MAX);
                FUZZ_CHECK(t.ats_len <= PN532_ATS_MAX);
            }
        } else {
            FUZZ_CHECK(f.body_len == 0 || f.kind == PN532_FRAME_ERROR);
        }
        at += (size_t)used;
    }
    free(copy);
    return 0;
}
