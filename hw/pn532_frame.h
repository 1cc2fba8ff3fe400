/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pn532_frame: the PN532's host frames (HSU/UART), for the reader worker's idle poll.
 *
 * The worker polls an idle reader 30 times a second. Through libnfc each poll costs about
 * 32,000 instructions, three quarters of them libnfc formatting hex dumps of every frame
 * for a debug log that is off (its LOG_HEX formats before it checks the level) and reading
 * LIBNFC_LOG_LEVEL with getenv() for each. For a PN532 on a serial line the worker sends
 * that one poll (InListPassiveTarget, one ISO 14443A target at 106 kbit/s) itself, with
 * these functions, on libnfc's own descriptor; everything else (the presence checks of a
 * card held on the reader, counting cards, errors) still goes through libnfc.
 *
 * Pure: no I/O, bounded, every byte checked (a fuzz harness feeds the parser). Frame format:
 * PN532 user manual UM0701-02 §6.2.1; /work/shared/design/PN532.md. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PN532_FRAME_MAX 262             /* a normal frame: 255 bytes of body + 7 */
#define PN532_UID_MAX 10
#define PN532_ATS_MAX 254             /* as libnfc's nfc_iso14443a_info */

/* The host's poll: InListPassiveTarget, MaxTg 1, BrTy 0 (106 kbit/s type A), no initiator
 * data — the bytes libnfc sends for nfc_initiator_select_passive_target(NULL). */
extern const uint8_t pn532_poll_frame[11];

enum pn532_frame_kind {
    PN532_FRAME_ACK,
    PN532_FRAME_NACK,
    PN532_FRAME_ERROR,          /* the chip's "syntax error" frame */
    PN532_FRAME_DATA,           /* a normal information frame: body points into the buffer */
};

struct pn532_frame {
    enum pn532_frame_kind kind;
    const uint8_t *body;        /* DATA: TFI, command code, data */
    size_t body_len;
};

/* Parse the first frame in buf[0..len). Leading zero bytes (the chip's preamble, line
 * noise of zeros) are skipped. Returns the bytes the frame used (0 < r <= len, *ret
 * filled), 0 if more bytes are needed, or -EBADMSG for anything that is not a valid frame
 * (wrong start code, checksums, an extended frame, a body too long). */
int pn532_frame_parse(const uint8_t *buf, size_t len, struct pn532_frame *ret);

/* An ISO 14443A target of an InListPassiveTarget answer, as libnfc decodes it for a PN532
 * (pn53x_decode_target_data): ATQA as sent, SAK, UID, and the ATS without its length
 * byte when the SAK says ISO 14443-4 (the chip sends RATS itself). */
struct pn532_target_a {
    uint8_t atqa[2];
    uint8_t sak;
    uint8_t uid[PN532_UID_MAX];
    size_t uid_len;
    uint8_t ats[PN532_ATS_MAX];
    size_t ats_len;
};

/* The body of an InListPassiveTarget answer (D5 4B NbTg ...): 0 (no card), 1 and *ret
 * filled with the first target, or -EBADMSG. Only the first target is read: the poll asks
 * for one. */
int pn532_list_answer_parse(const uint8_t *body, size_t len, struct pn532_target_a *ret);
