/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pn532_frame: see pn532_frame.h. */
#include "pn532_frame.h"

#include <errno.h>
#include <string.h>

/* 00 00 FF LEN LCS | D4 4A 01 00 | DCS 00: D4 + 4A + 01 + 00 = 0x11F, DCS = 0xE1. */
const uint8_t pn532_poll_frame[11] = { 0x00, 0x00, 0xFF, 0x04, 0xFC, 0xD4, 0x4A, 0x01, 0x00,
                                       0xE1, 0x00 };

#define TFI_FROM_CHIP 0xD5
#define CMD_IN_LIST_PASSIVE_TARGET_ANSWER 0x4B
#define SAK_ISO14443_4 0x20

int pn532_frame_parse(const uint8_t *buf, size_t len, struct pn532_frame *ret)
{
    size_t i = 0, n;
    uint8_t sum = 0;

    /* Preamble and any zeros before the start code 00 FF. */
    while (i < len && buf[i] == 0x00)
        i++;
    if (i == len)
        return 0;
    if (i == 0 || buf[i] != 0xFF)
        return -EBADMSG;
    i++;                                /* at LEN */
    if (len - i < 3)
        return 0;
    if ((buf[i] == 0x00 && buf[i + 1] == 0xFF) || (buf[i] == 0xFF && buf[i + 1] == 0x00)) {
        /* ACK (00 FF) and NACK (FF 00): no body */
        if (buf[i + 2] != 0x00)
            return -EBADMSG;
        ret->kind = buf[i] == 0x00 ? PN532_FRAME_ACK : PN532_FRAME_NACK;
        ret->body = NULL;
        ret->body_len = 0;
        return (int)(i + 3);
    }
    n = buf[i];
    if (n == 0xFF || n == 0 || (uint8_t)(buf[i] + buf[i + 1]) != 0x00)
        return -EBADMSG;                /* an extended frame (FF FF), or LCS wrong */
    i += 2;                             /* at the body */
    if (len - i < n + 2)
        return 0;
    for (size_t k = 0; k <= n; k++)     /* the body and DCS sum to 0 */
        sum = (uint8_t)(sum + buf[i + k]);
    if (sum != 0x00 || buf[i + n + 1] != 0x00)
        return -EBADMSG;
    if (n == 1 && buf[i] == 0x7F) {
        ret->kind = PN532_FRAME_ERROR;
    } else if (n >= 2) {
        ret->kind = PN532_FRAME_DATA;
    } else {
        return -EBADMSG;
    }
    ret->body = buf + i;
    ret->body_len = n;
    return (int)(i + n + 2);
}

int pn532_list_answer_parse(const uint8_t *body, size_t len, struct pn532_target_a *ret)
{
    const uint8_t *uid;
    size_t i = 3, uid_len;

    if (len < 3 || body[0] != TFI_FROM_CHIP || body[1] != CMD_IN_LIST_PASSIVE_TARGET_ANSWER)
        return -EBADMSG;
    if (body[2] == 0)
        return 0;
    if (body[2] > 1)
        return -EBADMSG;                /* the poll asks for one target */
    /* Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1, [ATS with its length byte] */
    if (len < i + 5)
        return -EBADMSG;
    memset(ret, 0, sizeof(*ret));
    ret->atqa[0] = body[i + 1];
    ret->atqa[1] = body[i + 2];
    ret->sak = body[i + 3];
    uid_len = body[i + 4];
    i += 5;
    if (uid_len == 0 || uid_len > 12 || len - i < uid_len)
        return -EBADMSG;
    uid = body + i;
    i += uid_len;
    if (i < len) {
        /* As libnfc: what follows the UID is the ATS, whose first byte counts itself. */
        size_t ats = body[i];
        if (ats == 0 || ats - 1 > PN532_ATS_MAX || len - i < ats)
            return -EBADMSG;
        memcpy(ret->ats, body + i + 1, ats - 1);
        ret->ats_len = ats - 1;
    }
    /* As libnfc's pn53x_decode_target_data: cascade tags stripped from 8- and 12-byte UIDs
     * (PN531 style); the PN532 sends the UID without them. */
    if (uid_len == 8 && uid[0] == 0x88) {
        ret->uid_len = 7;
        memcpy(ret->uid, uid + 1, 7);
    } else if (uid_len > 10) {
        if (uid_len < 12)
            return -EBADMSG;
        ret->uid_len = 10;
        memcpy(ret->uid, uid + 1, 3);
        memcpy(ret->uid + 3, uid + 5, 3);
        memcpy(ret->uid + 6, uid + 8, 4);
    } else {
        ret->uid_len = uid_len;
        memcpy(ret->uid, uid, uid_len);
    }
    return 1;
}
