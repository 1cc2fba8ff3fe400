/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * desfire — a MIFARE DESFire EV1 card for pn532-emu.
 *
 * The card answers what a PN532 carries to it with InDataExchange: DESFire
 * native commands, either ISO 7816-4 wrapped ("90 INS 00 00 [Lc data] 00",
 * answered "data 91 status", as libfreefare sends them) or bare ("INS data",
 * answered "status data"). It models the EV1 command set libfreefare 0.4.0
 * uses for applications, keys and standard data files: legacy (DES/2K3DES,
 * 0x0A) and AES (0xAA) mutual authentication, the AES session's CMAC and IV
 * chaining, enciphered commands and answers (CRC32, or CRC16 in legacy
 * sessions), GetCardUID, random-UID mode, multi-frame answers and writes. Not
 * modelled: ISO authentication (0x1A, 3K3DES sessions), value and record
 * files, transactions, ISO 7816 file selection.
 *
 * Cryptography is nettle's (AES-128, DES, 3DES); CMAC with DESFire's running
 * IV is built here on nettle's AES and nettle's CMAC subkeys.
 *
 * A card's persistent state (UID, configuration, PICC key, applications,
 * keys, files) can be saved to and loaded from a small text image, so a card
 * "carried" from one emulator to another keeps what was written to it.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DF_UID_LEN 7
#define DF_ANSWER_MAX 64            /* the longest answer to one command: 59 data + status(es) */

/* DESFire status codes (EV1). */
#define DF_OK                 0x00
#define DF_NO_CHANGES         0x0C
#define DF_OUT_OF_EEPROM      0x0E
#define DF_ILLEGAL_COMMAND    0x1C
#define DF_INTEGRITY_ERROR    0x1E
#define DF_NO_SUCH_KEY        0x40
#define DF_LENGTH_ERROR       0x7E
#define DF_PERMISSION_DENIED  0x9D
#define DF_PARAMETER_ERROR    0x9E
#define DF_APP_NOT_FOUND      0xA0
#define DF_AUTH_ERROR         0xAE
#define DF_ADDITIONAL_FRAME   0xAF
#define DF_BOUNDARY_ERROR     0xBE
#define DF_COMMAND_ABORTED    0xCA
#define DF_COUNT_ERROR        0xCE
#define DF_DUPLICATE_ERROR    0xDE
#define DF_FILE_NOT_FOUND     0xF0

struct df_card;

/* A factory-fresh card: PICC master key DES all zeros (version 0), key
 * settings 0x0F, no application, fixed UID. NULL on allocation failure. */
struct df_card *df_new(const uint8_t uid[DF_UID_LEN]);
void df_free(struct df_card *c);

const uint8_t *df_uid(const struct df_card *c);
bool df_random_uid(const struct df_card *c);
void df_set_random_uid(struct df_card *c, bool on);

/* The card is powered (it enters the field, or the field comes back on): its
 * session is gone, and in random-UID mode it draws a new UID. */
void df_power_up(struct df_card *c);
/* The UID it answers anticollision with: its own 7 bytes, or in random-UID
 * mode 08 and 3 random bytes. Returns the length. */
size_t df_anticollision_uid(const struct df_card *c, uint8_t out[DF_UID_LEN]);

/* One command in, its answer out (at most DF_ANSWER_MAX bytes). *ret_ins is the
 * native command it answered (the one continued for 0xAF), *ret_changed says
 * whether the persistent image changed. Returns the answer's length. */
size_t df_command(struct df_card *c, const uint8_t *in, size_t n, uint8_t *out,
		  uint8_t *ret_ins, bool *ret_changed);

/* Tests: the card's next random bytes (RndB) come from this sequence first. */
void df_set_next_random(struct df_card *c, const uint8_t *bytes, size_t n);

/* Tests: an AES application aid whose nkeys keys are all key (version 0), as a
 * forger without the site's keys would write it. 0, -EEXIST, -ENOSPC. */
int df_forge_app(struct df_card *c, uint32_t aid, const uint8_t key[16], unsigned nkeys);

/* One line for `status`: "aids=F52701,F52702 random_uid=0 picc=des". */
void df_describe(const struct df_card *c, char *out, size_t n);

/* The text image: df_save() writes it, df_load() reads one (err says what is
 * wrong with a bad image). 0 or -errno. */
int df_save(const struct df_card *c, FILE *f);
int df_load(FILE *f, struct df_card **ret, char *err, size_t errsz);

/* Primitives, exposed for the emulator's own known-answer tests. */
uint16_t df_crc16(const uint8_t *p, size_t n);          /* CRC_A, ISO/IEC 14443-3 */
uint32_t df_crc32(const uint8_t *p, size_t n);          /* DESFire's CRC32 (no final XOR) */
/* CMAC (NIST SP 800-38B) with DESFire's running IV: iv in, the full MAC out in iv. */
void df_cmac_aes(const uint8_t key[16], uint8_t iv[16], const uint8_t *p, size_t n);
