/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * desfire — a MIFARE DESFire EV1 card for pn532-emu (see desfire.h).
 *
 * What the card does follows what libfreefare 0.4.0 expects of a real EV1
 * (libfreefare/mifare_desfire.c and mifare_desfire_crypto.c), which NXP's
 * public notes and the published EV1 traces agree with:
 *
 * - Authentication: the card draws RndB, sends it enciphered; the reader
 *   answers RndA || rol(RndB) enciphered; the card checks rol(RndB) and sends
 *   rol(RndA) enciphered. Legacy (0x0A): DES/2K3DES, the card always
 *   enciphers, the reader always deciphers, every message starts from a zero
 *   IV. AES (0xAA): CBC throughout, the IV runs on from message to message
 *   and is reset to zero once, when the session key is made. Session keys:
 *   RndA[0..3] RndB[0..3] (DES), + RndA[4..7] RndB[4..7] (2K3DES),
 *   RndA[0..3] RndB[0..3] RndA[12..15] RndB[12..15] (AES).
 * - An AES session keeps one IV: every command the card receives in plain is
 *   CMACed into it, every plain answer carries the first 8 bytes of the CMAC
 *   of "data || status", enciphered commands and answers run CBC on it.
 *   Enciphered payloads carry a CRC32 (over the command's bytes for a command,
 *   over "data || status" for an answer), then zero padding.
 * - The session ends on any error, on SelectApplication, and when the key
 *   that opened it is changed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "desfire.h"

#include <errno.h>
#include <nettle/aes.h>
#include <nettle/cmac.h>
#include <nettle/des.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define APPS_MAX        28
#define KEYS_MAX        14
#define FILES_MAX       32
#define FILE_SIZE_MAX   1024
#define FRAME_DATA_MAX  59          /* data bytes in one answer frame */
#define BUF_MAX         (FILE_SIZE_MAX + 64)
#define MEMORY_TOTAL    4096
#define APP_OVERHEAD    64          /* what an application costs in EEPROM, roughly */

enum key_type { KT_3DES, KT_3K3DES, KT_AES };      /* KT_3DES: DES when both halves are equal */

struct key {
	uint8_t k[24];
	uint8_t version;                /* AES: explicit; DES: the parity bits of k[0..7] */
};

struct file {
	bool used;
	uint8_t comm;                   /* 0 plain, 1 MACed, 3 enciphered */
	uint16_t access;                /* read, write, read&write, change: a key number each, E free, F never */
	uint32_t size;
	uint8_t *data;
};

struct app {
	bool used;
	uint32_t aid;
	uint8_t settings;
	uint8_t nkeys;
	enum key_type type;
	struct key keys[KEYS_MAX];
	struct file files[FILES_MAX];
};

enum pending { P_NONE, P_AUTH, P_VERSION, P_MORE_OUT, P_MORE_IN };
enum scheme { S_NONE, S_LEGACY, S_AES };

struct df_card {
	/* persistent */
	uint8_t uid[DF_UID_LEN];
	bool random_uid, format_disabled;
	uint8_t picc_settings;
	enum key_type picc_type;
	struct key picc_key;
	struct app apps[APPS_MAX];

	/* volatile: a power-up resets them */
	uint8_t rand_uid[4];
	int sel;                        /* -1: the PICC level, else an index into apps */
	int auth_key;                   /* -1: not authenticated */
	enum scheme scheme;
	enum key_type sess_type;
	uint8_t sess[24];
	uint8_t iv[16];
	enum pending pending;
	uint8_t pending_ins;
	/* authentication in progress */
	enum key_type auth_type;
	uint8_t auth_keyval[24];
	uint8_t auth_keyno;
	uint8_t rndb[16];
	unsigned version_frame;
	/* multi-frame answer */
	uint8_t out[BUF_MAX];
	size_t out_len, out_off;
	/* multi-frame write */
	uint8_t in[BUF_MAX];
	size_t in_len, in_need;
	/* tests: fixed random bytes */
	uint8_t rng[64];
	size_t rng_len, rng_off;
};

/* ---- primitives ----------------------------------------------------------- */

uint16_t df_crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0x6363;

	for (size_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)(p[i] ^ (crc & 0xFF));

		b = (uint8_t)(b ^ (b << 4));
		crc = (uint16_t)((crc >> 8) ^ ((uint16_t)b << 8) ^ ((uint16_t)b << 3) ^ (b >> 4));
	}
	return crc;
}

uint32_t df_crc32(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (crc & 1 ? 0xEDB88320u : 0);
	}
	return crc;
}

static void put_crc16(uint8_t *p, uint16_t crc)
{
	p[0] = (uint8_t)crc;
	p[1] = (uint8_t)(crc >> 8);
}

static void put_crc32(uint8_t *p, uint32_t crc)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(crc >> (8 * i));
}

static size_t block_size(enum key_type t)
{
	return t == KT_AES ? 16 : 8;
}

static size_t key_len(enum key_type t)
{
	return t == KT_3K3DES ? 24 : 16;
}

/* One block, in place, ECB. */
static void block_crypt(enum key_type t, const uint8_t *key, uint8_t *b, bool encrypt)
{
	if (t == KT_AES) {
		struct aes128_ctx ctx;

		if (encrypt) {
			aes128_set_encrypt_key(&ctx, key);
			aes128_encrypt(&ctx, 16, b, b);
		} else {
			aes128_set_decrypt_key(&ctx, key);
			aes128_decrypt(&ctx, 16, b, b);
		}
	} else {
		struct des3_ctx ctx;
		uint8_t k3[24];

		memcpy(k3, key, 16);
		memcpy(k3 + 16, t == KT_3K3DES ? key + 16 : key, 8);
		des3_set_key(&ctx, k3);     /* weak keys (the all-zero default) still get a schedule */
		if (encrypt)
			des3_encrypt(&ctx, 8, b, b);
		else
			des3_decrypt(&ctx, 8, b, b);
	}
}

/* Standard CBC encryption, iv running on. */
static void cbc_encrypt(enum key_type t, const uint8_t *key, uint8_t *iv, uint8_t *p, size_t n)
{
	size_t bs = block_size(t);

	for (size_t off = 0; off + bs <= n; off += bs) {
		for (size_t i = 0; i < bs; i++)
			p[off + i] ^= iv[i];
		block_crypt(t, key, p + off, true);
		memcpy(iv, p + off, bs);
	}
}

/* Standard CBC decryption, iv running on. */
static void cbc_decrypt(enum key_type t, const uint8_t *key, uint8_t *iv, uint8_t *p, size_t n)
{
	size_t bs = block_size(t);
	uint8_t c[16];

	for (size_t off = 0; off + bs <= n; off += bs) {
		memcpy(c, p + off, bs);
		block_crypt(t, key, p + off, false);
		for (size_t i = 0; i < bs; i++)
			p[off + i] ^= iv[i];
		memcpy(iv, c, bs);
	}
}

/* Legacy mode, what the reader sent: it computed c_i = D(p_i ^ c_i-1) from a
 * zero IV, so p_i = E(c_i) ^ c_i-1. */
static void legacy_receive(enum key_type t, const uint8_t *key, uint8_t *p, size_t n)
{
	uint8_t prev[8] = { 0 }, c[8];

	for (size_t off = 0; off + 8 <= n; off += 8) {
		memcpy(c, p + off, 8);
		block_crypt(t, key, p + off, true);
		for (size_t i = 0; i < 8; i++)
			p[off + i] ^= prev[i];
		memcpy(prev, c, 8);
	}
}

void df_cmac_aes(const uint8_t key[16], uint8_t iv[16], const uint8_t *p, size_t n)
{
	struct aes128_ctx aes;
	struct cmac128_key sub;
	uint8_t buf[BUF_MAX + 16];
	size_t len = n;

	aes128_set_encrypt_key(&aes, key);
	cmac128_set_key(&sub, &aes, (nettle_cipher_func *)aes128_encrypt);
	if (n > BUF_MAX)
		n = len = BUF_MAX;
	memcpy(buf, p, n);
	if (len == 0 || len % 16) {
		buf[len++] = 0x80;
		while (len % 16)
			buf[len++] = 0;
		for (int i = 0; i < 16; i++)
			buf[len - 16 + i] ^= sub.K2.b[i];
	} else {
		for (int i = 0; i < 16; i++)
			buf[len - 16 + i] ^= sub.K1.b[i];
	}
	cbc_encrypt(KT_AES, key, iv, buf, len);
}

static void rol(uint8_t *p, size_t n)
{
	uint8_t first = p[0];

	memmove(p, p + 1, n - 1);
	p[n - 1] = first;
}

static void random_bytes(struct df_card *c, uint8_t *p, size_t n)
{
	size_t k = 0;

	while (k < n && c->rng_off < c->rng_len)
		p[k++] = c->rng[c->rng_off++];
	if (k < n && getrandom(p + k, n - k, 0) != (ssize_t)(n - k)) {
		for (; k < n; k++)                      /* never happens on Linux; still defined */
			p[k] = (uint8_t)rand();
	}
}

/* ---- card state ------------------------------------------------------------ */

static uint8_t des_version(const uint8_t *k)
{
	uint8_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint8_t)((k[i] & 1) << (7 - i));
	return v;
}

static void session_reset(struct df_card *c)
{
	c->auth_key = -1;
	c->scheme = S_NONE;
	memset(c->sess, 0, sizeof(c->sess));
	memset(c->iv, 0, sizeof(c->iv));
}

struct df_card *df_new(const uint8_t uid[DF_UID_LEN])
{
	struct df_card *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	memcpy(c->uid, uid, DF_UID_LEN);
	c->picc_settings = 0x0F;
	c->picc_type = KT_3DES;
	df_power_up(c);
	return c;
}

void df_free(struct df_card *c)
{
	if (!c)
		return;
	for (size_t a = 0; a < APPS_MAX; a++)
		for (size_t f = 0; f < FILES_MAX; f++)
			free(c->apps[a].files[f].data);
	free(c);
}

const uint8_t *df_uid(const struct df_card *c)
{
	return c->uid;
}

bool df_random_uid(const struct df_card *c)
{
	return c->random_uid;
}

void df_set_random_uid(struct df_card *c, bool on)
{
	c->random_uid = on;
	df_power_up(c);
}

void df_power_up(struct df_card *c)
{
	session_reset(c);
	c->sel = -1;
	c->pending = P_NONE;
	c->rand_uid[0] = 0x08;
	random_bytes(c, c->rand_uid + 1, 3);
}

size_t df_anticollision_uid(const struct df_card *c, uint8_t out[DF_UID_LEN])
{
	if (c->random_uid) {
		memcpy(out, c->rand_uid, 4);
		return 4;
	}
	memcpy(out, c->uid, DF_UID_LEN);
	return DF_UID_LEN;
}

void df_set_next_random(struct df_card *c, const uint8_t *bytes, size_t n)
{
	if (n > sizeof(c->rng))
		n = sizeof(c->rng);
	memcpy(c->rng, bytes, n);
	c->rng_len = n;
	c->rng_off = 0;
}

static struct app *app_find(struct df_card *c, uint32_t aid)
{
	for (size_t i = 0; i < APPS_MAX; i++)
		if (c->apps[i].used && c->apps[i].aid == aid)
			return &c->apps[i];
	return NULL;
}

static struct app *app_new(struct df_card *c, uint32_t aid, uint8_t settings, uint8_t nkeys,
			   enum key_type type)
{
	for (size_t i = 0; i < APPS_MAX; i++) {
		struct app *a = &c->apps[i];

		if (a->used)
			continue;
		memset(a, 0, sizeof(*a));
		a->used = true;
		a->aid = aid;
		a->settings = settings;
		a->nkeys = nkeys;
		a->type = type;
		return a;
	}
	return NULL;
}

static void app_delete(struct app *a)
{
	for (size_t f = 0; f < FILES_MAX; f++)
		free(a->files[f].data);
	memset(a, 0, sizeof(*a));
}

int df_forge_app(struct df_card *c, uint32_t aid, const uint8_t key[16], unsigned nkeys)
{
	struct app *a;

	if (nkeys < 1 || nkeys > KEYS_MAX)
		return -EINVAL;
	if (app_find(c, aid))
		return -EEXIST;
	a = app_new(c, aid, 0x0B, (uint8_t)nkeys, KT_AES);
	if (!a)
		return -ENOSPC;
	for (unsigned k = 0; k < nkeys; k++)
		memcpy(a->keys[k].k, key, 16);
	return 0;
}

static struct app *selected(struct df_card *c)
{
	return c->sel >= 0 ? &c->apps[c->sel] : NULL;
}

static size_t memory_used(const struct df_card *c)
{
	size_t used = 0;

	for (size_t a = 0; a < APPS_MAX; a++) {
		if (!c->apps[a].used)
			continue;
		used += APP_OVERHEAD;
		for (size_t f = 0; f < FILES_MAX; f++)
			if (c->apps[a].files[f].used)
				used += (c->apps[a].files[f].size + 31) / 32 * 32;
	}
	return used;
}

/* ---- commands -------------------------------------------------------------- */

/* What a handler answers: a status, data, and how the data travels. */
struct answer {
	uint8_t status;
	uint8_t data[BUF_MAX];
	size_t len;
	bool enc;               /* send the data enciphered (with its CRC) instead of CMACed */
	bool ended;             /* the handler ended the session: no CMAC on this answer */
	bool changed;           /* the persistent image changed */
};

struct command {
	uint8_t *p;             /* p[0] is the command byte */
	size_t n;
};

/* Enciphered data carries a CRC: CRC32 (4 bytes) in an AES session, CRC16 (2) otherwise. */
static size_t crc_size(const struct df_card *c)
{
	return c->scheme == S_AES ? 4 : 2;
}

/* Whether stored holds the session's kind of CRC of the n bytes at p. */
static bool crc_ok(const struct df_card *c, const uint8_t *p, size_t n, const uint8_t *stored)
{
	uint8_t crc[4];

	if (c->scheme == S_AES)
		put_crc32(crc, df_crc32(p, n));
	else
		put_crc16(crc, df_crc16(p, n));
	return memcmp(crc, stored, crc_size(c)) == 0;
}

/* The CRC after len bytes of deciphered data that start hdr bytes into the command: an AES
 * session's covers the command from its INS on, a DES session's the data alone. The caller
 * has checked that the command holds hdr + len + crc_size() bytes. */
static bool data_crc_ok(const struct df_card *c, const struct command *cmd, size_t hdr, size_t len)
{
	const uint8_t *data = cmd->p + hdr;

	return c->scheme == S_AES ? crc_ok(c, cmd->p, hdr + len, data + len)
				  : crc_ok(c, data, len, data + len);
}

static uint8_t fail(struct answer *a, uint8_t status)
{
	a->status = status;
	a->len = 0;
	return status;
}

static bool authenticated_aes(const struct df_card *c)
{
	return c->auth_key >= 0 && c->scheme == S_AES;
}

/* A command that travels in plain: in an AES session its bytes go into the IV. */
static void receive_plain(struct df_card *c, const struct command *cmd)
{
	if (authenticated_aes(c))
		df_cmac_aes(c->sess, c->iv, cmd->p, cmd->n);
}

/* The enciphered part of a command (from off): deciphered in place. Its length
 * must be whole blocks of the session's cipher. */
static bool receive_enciphered(struct df_card *c, struct command *cmd, size_t off)
{
	size_t n = cmd->n - off, bs;

	if (c->auth_key < 0 || cmd->n < off)
		return false;
	bs = block_size(c->sess_type);
	if (n == 0 || n % bs)
		return false;
	if (c->scheme == S_AES)
		cbc_decrypt(c->sess_type, c->sess, c->iv, cmd->p + off, n);
	else
		legacy_receive(c->sess_type, c->sess, cmd->p + off, n);
	return true;
}

/* After `end` bytes of plaintext in p[off..n): only zeros may follow. */
static bool padding_ok(const uint8_t *p, size_t end, size_t n)
{
	for (size_t i = end; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* The key that `ChangeKey`-style checks talk about. */
static struct key *key_at(struct df_card *c, unsigned keyno, enum key_type *ret_type)
{
	struct app *a = selected(c);

	if (!a) {
		if (keyno != 0)
			return NULL;
		*ret_type = c->picc_type;
		return &c->picc_key;
	}
	if (keyno >= a->nkeys)
		return NULL;
	*ret_type = a->type;
	return &a->keys[keyno];
}

static void auth_begin(struct df_card *c, const struct command *cmd, struct answer *a)
{
	enum key_type type;
	struct key *k;
	uint8_t iv[16] = { 0 };
	size_t bs;

	session_reset(c);
	if (cmd->n != 2) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	k = key_at(c, cmd->p[1], &type);
	if (!k) {
		fail(a, DF_NO_SUCH_KEY);
		return;
	}
	/* 0x0A works on DES/2K3DES keys, 0xAA on AES keys; 0x1A (ISO, 3K3DES) is not modelled. */
	if ((cmd->p[0] == 0x0A && type != KT_3DES) || (cmd->p[0] == 0xAA && type != KT_AES)) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	c->auth_type = type;
	memcpy(c->auth_keyval, k->k, sizeof(c->auth_keyval));
	c->auth_keyno = cmd->p[1];
	bs = block_size(type);
	random_bytes(c, c->rndb, bs);
	memcpy(a->data, c->rndb, bs);
	/* Legacy: E(RndB) from a zero IV. AES: the same, and the IV runs on. */
	cbc_encrypt(type, c->auth_keyval, iv, a->data, bs);
	memcpy(c->iv, iv, sizeof(c->iv));
	a->len = bs;
	a->status = DF_ADDITIONAL_FRAME;
	c->pending = P_AUTH;
	c->pending_ins = cmd->p[0];
}

static void auth_finish(struct df_card *c, struct command *cmd, struct answer *a)
{
	enum key_type type = c->auth_type;
	size_t bs = block_size(type);
	uint8_t rnda[16], rotb[16];
	uint8_t *p = cmd->p + 1;
	const uint8_t *k = c->auth_keyval;

	c->pending = P_NONE;
	if (cmd->n != 1 + 2 * bs) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	if (type == KT_AES)
		cbc_decrypt(type, k, c->iv, p, 2 * bs);
	else
		legacy_receive(type, k, p, 2 * bs);
	memcpy(rnda, p, bs);
	memcpy(rotb, c->rndb, bs);
	rol(rotb, bs);
	if (memcmp(rotb, p + bs, bs) != 0) {
		session_reset(c);
		fail(a, DF_AUTH_ERROR);
		return;
	}
	memcpy(a->data, rnda, bs);
	rol(a->data, bs);
	if (type == KT_AES) {
		cbc_encrypt(type, k, c->iv, a->data, bs);
		memcpy(c->sess, rnda, 4);
		memcpy(c->sess + 4, c->rndb, 4);
		memcpy(c->sess + 8, rnda + 12, 4);
		memcpy(c->sess + 12, c->rndb + 12, 4);
		c->scheme = S_AES;
	} else {
		uint8_t iv[8] = { 0 };

		cbc_encrypt(type, k, iv, a->data, bs);
		memcpy(c->sess, rnda, 4);
		memcpy(c->sess + 4, c->rndb, 4);
		if (memcmp(k, k + 8, 8) == 0) {         /* a DES key: a DES session key */
			memcpy(c->sess + 8, c->sess, 8);
		} else {
			memcpy(c->sess + 8, rnda + 4, 4);
			memcpy(c->sess + 12, c->rndb + 4, 4);
		}
		c->scheme = S_LEGACY;
	}
	c->sess_type = type;
	memset(c->iv, 0, sizeof(c->iv));
	c->auth_key = c->auth_keyno;
	a->len = bs;
	a->status = DF_OK;
	a->ended = true;        /* the answer itself carries no CMAC */
}

static uint32_t get24(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static void put24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
}

static void cmd_select(struct df_card *c, const struct command *cmd, struct answer *a)
{
	uint32_t aid;
	struct app *app;

	if (cmd->n != 4) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	aid = get24(cmd->p + 1);
	app = aid ? app_find(c, aid) : NULL;
	if (aid && !app) {
		fail(a, DF_APP_NOT_FOUND);
		return;
	}
	c->sel = app ? (int)(app - c->apps) : -1;
	session_reset(c);
	a->ended = true;
	a->status = DF_OK;
}

static void cmd_version(struct df_card *c, const struct command *cmd, struct answer *a)
{
	/* NXP, DESFire, EV1 (1.0 hardware, 1.4 software), 4 KiB, ISO 14443-2 and -3. */
	static const uint8_t hw[7] = { 0x04, 0x01, 0x01, 0x01, 0x00, 0x18, 0x05 };
	static const uint8_t sw[7] = { 0x04, 0x01, 0x01, 0x01, 0x04, 0x18, 0x05 };
	uint8_t *v = c->out;

	if (cmd->p[0] == 0x60) {
		if (cmd->n != 1) {
			fail(a, DF_LENGTH_ERROR);
			return;
		}
		receive_plain(c, cmd);
		memcpy(v, hw, 7);
		memcpy(v + 7, sw, 7);
		/* In random-ID mode the UID is hidden until someone authenticates. */
		if (c->random_uid && c->auth_key < 0)
			memset(v + 14, 0, 7);
		else
			memcpy(v + 14, c->uid, 7);
		memcpy(v + 21, "\x00\x50\x72\x74\x72", 5);      /* batch number */
		v[26] = 0x21;                                   /* week 21 ... */
		v[27] = 0x24;                                   /* ... of 2024 */
		c->version_frame = 0;
	}
	if (c->version_frame < 2) {
		memcpy(a->data, v + 7 * c->version_frame, 7);
		a->len = 7;
		a->status = DF_ADDITIONAL_FRAME;
		c->pending = P_VERSION;
		c->pending_ins = 0x60;
		c->version_frame++;
		return;
	}
	c->pending = P_NONE;
	memcpy(a->data, v + 14, 14);
	a->len = 14;
	a->status = DF_OK;
	if (authenticated_aes(c)) {
		/* The CMAC covers all three frames' data. */
		uint8_t all[29];

		memcpy(all, v, 28);
		all[28] = DF_OK;
		df_cmac_aes(c->sess, c->iv, all, sizeof(all));
		memcpy(a->data + 14, c->iv, 8);
		a->len += 8;
	}
	a->ended = true;        /* the CMAC, if any, is already there */
}

static void cmd_card_uid(struct df_card *c, const struct command *cmd, struct answer *a)
{
	if (cmd->n != 1) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	if (c->auth_key < 0) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	receive_plain(c, cmd);
	memcpy(a->data, c->uid, DF_UID_LEN);
	a->len = DF_UID_LEN;
	a->enc = true;
	a->status = DF_OK;
}

static bool picc_master(const struct df_card *c)
{
	return c->sel < 0 && c->auth_key == 0;
}

static void cmd_create_app(struct df_card *c, const struct command *cmd, struct answer *a)
{
	uint8_t s1, s2, nkeys;
	enum key_type type;
	uint32_t aid;
	struct app *app;

	if (cmd->n < 6 || cmd->n > 6 + 2 + 16) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	if (c->sel >= 0) {
		fail(a, DF_PERMISSION_DENIED);
		return;
	}
	if (!(c->picc_settings & 0x04) && !picc_master(c)) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	receive_plain(c, cmd);
	aid = get24(cmd->p + 1);
	s1 = cmd->p[4];
	s2 = cmd->p[5];
	nkeys = s2 & 0x0F;
	if (aid == 0 || nkeys < 1 || nkeys > KEYS_MAX || (s2 & 0xC0) == 0xC0) {
		fail(a, DF_PARAMETER_ERROR);
		return;
	}
	type = (s2 & 0xC0) == 0x80 ? KT_AES : (s2 & 0xC0) == 0x40 ? KT_3K3DES : KT_3DES;
	if (app_find(c, aid)) {
		fail(a, DF_DUPLICATE_ERROR);
		return;
	}
	if (memory_used(c) + APP_OVERHEAD > MEMORY_TOTAL) {
		fail(a, DF_OUT_OF_EEPROM);
		return;
	}
	app = app_new(c, aid, s1, nkeys, type);
	if (!app) {
		fail(a, DF_COUNT_ERROR);        /* 28 applications already */
		return;
	}
	a->changed = true;
	a->status = DF_OK;
}

static void cmd_delete_app(struct df_card *c, const struct command *cmd, struct answer *a)
{
	struct app *app;

	if (cmd->n != 4) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	app = app_find(c, get24(cmd->p + 1));
	if (!app) {
		fail(a, DF_APP_NOT_FOUND);
		return;
	}
	/* With the PICC master key, or with that application's own master key. */
	if (!picc_master(c) && !(selected(c) == app && c->auth_key == 0)) {
		fail(a, c->auth_key < 0 ? DF_AUTH_ERROR : DF_PERMISSION_DENIED);
		return;
	}
	receive_plain(c, cmd);
	if (selected(c) == app) {
		c->sel = -1;
		session_reset(c);
		a->ended = true;
	}
	app_delete(app);
	a->changed = true;
	a->status = DF_OK;
}

static void cmd_app_ids(struct df_card *c, const struct command *cmd, struct answer *a)
{
	if (cmd->n != 1) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	if (c->sel >= 0) {
		fail(a, DF_PERMISSION_DENIED);
		return;
	}
	if (!(c->picc_settings & 0x02) && !picc_master(c)) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	receive_plain(c, cmd);
	for (size_t i = 0; i < APPS_MAX; i++)
		if (c->apps[i].used) {
			put24(a->data + a->len, c->apps[i].aid);
			a->len += 3;
		}
	a->status = DF_OK;
}

static void cmd_key_settings(struct df_card *c, const struct command *cmd, struct answer *a)
{
	struct app *app = selected(c);
	uint8_t settings = app ? app->settings : c->picc_settings;

	if (cmd->n != 1) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	if (!(settings & 0x02) && c->auth_key != 0) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	receive_plain(c, cmd);
	a->data[0] = settings;
	if (app)
		a->data[1] = (uint8_t)(app->nkeys | (app->type == KT_AES ? 0x80 : app->type == KT_3K3DES ? 0x40 : 0));
	else
		a->data[1] = (uint8_t)(0x01 | (c->picc_type == KT_AES ? 0x80 : c->picc_type == KT_3K3DES ? 0x40 : 0));
	a->len = 2;
	a->status = DF_OK;
}

static void cmd_key_version(struct df_card *c, const struct command *cmd, struct answer *a)
{
	enum key_type type;
	struct key *k;

	if (cmd->n != 2) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	k = key_at(c, cmd->p[1] & 0x3F, &type);
	if (!k) {
		fail(a, DF_NO_SUCH_KEY);
		return;
	}
	receive_plain(c, cmd);
	a->data[0] = k->version;
	a->len = 1;
	a->status = DF_OK;
}

/* ChangeKey: which key may change key keyno here (EV1 key settings). */
static bool may_change_key(const struct df_card *c, const struct app *app, unsigned keyno)
{
	unsigned ck;

	if (c->auth_key < 0)
		return false;
	if (!app)
		return c->auth_key == 0 && (c->picc_settings & 0x01);
	if (keyno == 0)
		return c->auth_key == 0 && (app->settings & 0x01);
	ck = app->settings >> 4;
	if (ck == 0xE)
		return (unsigned)c->auth_key == keyno;
	if (ck == 0xF)
		return false;
	return (unsigned)c->auth_key == ck;
}

static void cmd_change_key(struct df_card *c, struct command *cmd, struct answer *a)
{
	struct app *app = selected(c);
	unsigned keyno = cmd->n >= 2 ? (unsigned)(cmd->p[1] & 0x3F) : 0;
	enum key_type old_type, type;
	struct key *k;
	uint8_t *p = cmd->p + 2, newkey[24];
	size_t klen, pos, crc_len;
	bool same;

	if (cmd->n < 2 + 16) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	k = key_at(c, keyno, &old_type);
	if (!k) {
		fail(a, DF_NO_SUCH_KEY);
		return;
	}
	if (!may_change_key(c, app, keyno)) {
		fail(a, c->auth_key < 0 ? DF_AUTH_ERROR : DF_PERMISSION_DENIED);
		return;
	}
	type = app ? app->type : (cmd->p[1] & 0x80) ? KT_AES : (cmd->p[1] & 0x40) ? KT_3K3DES : KT_3DES;
	klen = key_len(type);
	same = (unsigned)c->auth_key == keyno;
	if (!receive_enciphered(c, cmd, 2)) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	/* p: the new key (XOR the old one unless it is the session's own key), its version
	 * for AES, a CRC over what precedes it, and for another key a CRC of the new key. */
	memcpy(newkey, p, klen);
	pos = klen + (type == KT_AES);
	crc_len = crc_size(c);
	if (cmd->n < 2 + pos + crc_len + (same ? 0 : crc_len)) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	if (!data_crc_ok(c, cmd, 2, pos)) {
		fail(a, DF_INTEGRITY_ERROR);
		return;
	}
	pos += crc_len;
	if (!same) {
		for (size_t i = 0; i < klen; i++)
			newkey[i] ^= k->k[i];
		if (!crc_ok(c, newkey, klen, p + pos)) {
			fail(a, DF_INTEGRITY_ERROR);
			return;
		}
		pos += crc_len;
	}
	if (!padding_ok(p, pos, cmd->n - 2)) {
		fail(a, DF_INTEGRITY_ERROR);
		return;
	}
	memset(k->k, 0, sizeof(k->k));
	memcpy(k->k, newkey, klen);
	k->version = type == KT_AES ? p[klen] : des_version(newkey);
	if (!app)
		c->picc_type = type;
	a->changed = true;
	a->status = DF_OK;
	if (same) {                     /* the session's key is gone, and the session with it */
		session_reset(c);
		a->ended = true;
	}
	explicit_bzero(newkey, sizeof(newkey));
}

static void cmd_change_key_settings(struct df_card *c, struct command *cmd, struct answer *a)
{
	struct app *app = selected(c);
	uint8_t *settings = app ? &app->settings : &c->picc_settings;
	uint8_t *p = cmd->p + 1;
	size_t pos;

	if (c->auth_key != 0) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	if (!(*settings & 0x08)) {
		fail(a, DF_PERMISSION_DENIED);
		return;
	}
	if (!receive_enciphered(c, cmd, 1)) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	pos = 1 + crc_size(c);
	if (cmd->n < 1 + pos || !data_crc_ok(c, cmd, 1, 1)) {
		fail(a, DF_INTEGRITY_ERROR);
		return;
	}
	if (!padding_ok(p, pos, cmd->n - 1)) {
		fail(a, DF_INTEGRITY_ERROR);
		return;
	}
	*settings = p[0];
	a->changed = true;
	a->status = DF_OK;
}

static void cmd_set_configuration(struct df_card *c, struct command *cmd, struct answer *a)
{
	uint8_t option = cmd->n >= 2 ? cmd->p[1] : 0xFF, *p = cmd->p + 2;
	size_t len, end, crc_len;

	if (!picc_master(c)) {
		fail(a, DF_PERMISSION_DENIED);
		return;
	}
	if (option > 2 || !receive_enciphered(c, cmd, 2)) {
		fail(a, option > 2 ? DF_PARAMETER_ERROR : DF_LENGTH_ERROR);
		return;
	}
	/* Option 0: one flags byte; 1: a default key (24 bytes) and its version; 2: an ATS,
	 * TL first, followed by 0x80 after its CRC. */
	len = option == 0 ? 1 : option == 1 ? 25 : p[0];
	crc_len = crc_size(c);
	end = len + crc_len + (option == 2);
	if (len == 0 || cmd->n < 2 + end) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	if (!data_crc_ok(c, cmd, 2, len)) {
		fail(a, DF_INTEGRITY_ERROR);
		return;
	}
	if ((option == 2 && p[len + crc_len] != 0x80) || !padding_ok(p, end, cmd->n - 2)) {
		fail(a, DF_INTEGRITY_ERROR);
		return;
	}
	if (option == 0) {
		if (p[0] & 0x01)
			c->format_disabled = true;
		if (p[0] & 0x02)
			c->random_uid = true;   /* for good: EV1 cannot turn it off */
		a->changed = true;
	}
	a->status = DF_OK;
}

static void cmd_format(struct df_card *c, const struct command *cmd, struct answer *a)
{
	if (!picc_master(c)) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	if (c->format_disabled) {
		fail(a, DF_PERMISSION_DENIED);
		return;
	}
	receive_plain(c, cmd);
	for (size_t i = 0; i < APPS_MAX; i++)
		if (c->apps[i].used)
			app_delete(&c->apps[i]);
	a->changed = true;
	a->status = DF_OK;
}

static void cmd_free_mem(struct df_card *c, const struct command *cmd, struct answer *a)
{
	receive_plain(c, cmd);
	put24(a->data, (uint32_t)(MEMORY_TOTAL - memory_used(c)));
	a->len = 3;
	a->status = DF_OK;
}

static bool app_master_or_free(const struct df_card *c, const struct app *app, uint8_t bit)
{
	return (app->settings & bit) || c->auth_key == 0;
}

static void cmd_create_file(struct df_card *c, const struct command *cmd, struct answer *a)
{
	struct app *app = selected(c);
	struct file *f;
	size_t off = 2;
	uint32_t size;

	if (!app) {
		fail(a, DF_PERMISSION_DENIED);
		return;
	}
	if (!app_master_or_free(c, app, 0x04)) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	if (cmd->n == 10)
		off += 2;               /* an ISO file id, not modelled */
	if (cmd->n != off + 6 || cmd->p[1] >= FILES_MAX) {
		fail(a, cmd->n != off + 6 ? DF_LENGTH_ERROR : DF_PARAMETER_ERROR);
		return;
	}
	receive_plain(c, cmd);
	f = &app->files[cmd->p[1]];
	size = get24(cmd->p + off + 3);
	if (f->used) {
		fail(a, DF_DUPLICATE_ERROR);
		return;
	}
	if (size == 0 || size > FILE_SIZE_MAX || (cmd->p[off] & 0x03) == 2) {
		fail(a, DF_PARAMETER_ERROR);
		return;
	}
	if (memory_used(c) + size > MEMORY_TOTAL || !(f->data = calloc(1, size))) {
		fail(a, DF_OUT_OF_EEPROM);
		return;
	}
	f->used = true;
	f->comm = cmd->p[off] & 0x03;
	f->access = (uint16_t)(cmd->p[off + 1] | cmd->p[off + 2] << 8);
	f->size = size;
	a->changed = true;
	a->status = DF_OK;
}

static void cmd_delete_file(struct df_card *c, const struct command *cmd, struct answer *a)
{
	struct app *app = selected(c);

	if (!app || cmd->n != 2 || cmd->p[1] >= FILES_MAX || !app->files[cmd->p[1]].used) {
		fail(a, !app ? DF_PERMISSION_DENIED : cmd->n != 2 ? DF_LENGTH_ERROR : DF_FILE_NOT_FOUND);
		return;
	}
	if (!app_master_or_free(c, app, 0x04)) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	receive_plain(c, cmd);
	free(app->files[cmd->p[1]].data);
	memset(&app->files[cmd->p[1]], 0, sizeof(struct file));
	a->changed = true;
	a->status = DF_OK;
}

static void cmd_file_ids(struct df_card *c, const struct command *cmd, struct answer *a)
{
	struct app *app = selected(c);

	if (!app) {
		fail(a, DF_PERMISSION_DENIED);
		return;
	}
	if (!app_master_or_free(c, app, 0x02)) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	receive_plain(c, cmd);
	for (size_t i = 0; i < FILES_MAX; i++)
		if (app->files[i].used)
			a->data[a->len++] = (uint8_t)i;
	a->status = DF_OK;
}

static void cmd_file_settings(struct df_card *c, const struct command *cmd, struct answer *a)
{
	struct app *app = selected(c);
	struct file *f;

	if (!app || cmd->n != 2 || cmd->p[1] >= FILES_MAX || !app->files[cmd->p[1]].used) {
		fail(a, !app ? DF_PERMISSION_DENIED : cmd->n != 2 ? DF_LENGTH_ERROR : DF_FILE_NOT_FOUND);
		return;
	}
	if (!app_master_or_free(c, app, 0x02)) {
		fail(a, DF_AUTH_ERROR);
		return;
	}
	receive_plain(c, cmd);
	f = &app->files[cmd->p[1]];
	a->data[0] = 0x00;      /* standard data file */
	a->data[1] = f->comm;
	a->data[2] = (uint8_t)f->access;
	a->data[3] = (uint8_t)(f->access >> 8);
	put24(a->data + 4, f->size);
	a->len = 7;
	a->status = DF_OK;
}

/* How a file access travels: -1 refused, else its communication mode (plain when the
 * right is free). */
static int file_access(const struct df_card *c, const struct file *f, bool write)
{
	unsigned one = write ? (f->access >> 8) & 0xF : f->access >> 12, rw = (f->access >> 4) & 0xF;

	if (c->auth_key >= 0 && ((unsigned)c->auth_key == one || (unsigned)c->auth_key == rw))
		return f->comm;
	if (one == 0xE || rw == 0xE)
		return 0;
	return -1;
}

static void cmd_read(struct df_card *c, const struct command *cmd, struct answer *a)
{
	struct app *app = selected(c);
	uint32_t off, len;
	struct file *f;
	int comm;

	if (!app || cmd->n != 8 || cmd->p[1] >= FILES_MAX || !app->files[cmd->p[1]].used) {
		fail(a, !app ? DF_PERMISSION_DENIED : cmd->n != 8 ? DF_LENGTH_ERROR : DF_FILE_NOT_FOUND);
		return;
	}
	f = &app->files[cmd->p[1]];
	comm = file_access(c, f, false);
	if (comm < 0) {
		fail(a, c->auth_key < 0 ? DF_AUTH_ERROR : DF_PERMISSION_DENIED);
		return;
	}
	off = get24(cmd->p + 2);
	len = get24(cmd->p + 5);
	if (len == 0 && off < f->size)
		len = f->size - off;
	if (off >= f->size || len > f->size - off) {
		fail(a, DF_BOUNDARY_ERROR);
		return;
	}
	receive_plain(c, cmd);
	memcpy(a->data, f->data + off, len);
	a->len = len;
	a->enc = comm == 3;
	a->status = DF_OK;
}

/* The bytes a WriteData brings after its 8-byte header, for its mode. */
static size_t write_payload(const struct df_card *c, int comm, size_t len)
{
	if (comm == 3) {
		size_t crc = c->scheme == S_AES ? 4 : 2, bs = block_size(c->sess_type);

		return (len + crc + bs - 1) / bs * bs;
	}
	if (comm == 1)
		return len + (c->scheme == S_AES ? 8 : 4);
	return len;
}

static void cmd_write(struct df_card *c, struct command *cmd, struct answer *a)
{
	struct app *app = selected(c);
	uint32_t off, len;
	struct file *f;
	size_t need;
	int comm;

	if (!app || cmd->n < 8 || cmd->p[1] >= FILES_MAX || !app->files[cmd->p[1]].used) {
		fail(a, !app ? DF_PERMISSION_DENIED : cmd->n < 8 ? DF_LENGTH_ERROR : DF_FILE_NOT_FOUND);
		return;
	}
	f = &app->files[cmd->p[1]];
	comm = file_access(c, f, true);
	if (comm < 0) {
		fail(a, c->auth_key < 0 ? DF_AUTH_ERROR : DF_PERMISSION_DENIED);
		return;
	}
	off = get24(cmd->p + 2);
	len = get24(cmd->p + 5);
	if (len == 0 || off >= f->size || len > f->size - off) {
		fail(a, DF_BOUNDARY_ERROR);
		return;
	}
	need = 8 + write_payload(c, comm, len);
	if (cmd->n < need && need <= sizeof(c->in)) {
		/* More frames follow: gather them, then come back here with the whole command. */
		memcpy(c->in, cmd->p, cmd->n);
		c->in_len = cmd->n;
		c->in_need = need;
		c->pending = P_MORE_IN;
		c->pending_ins = cmd->p[0];
		a->status = DF_ADDITIONAL_FRAME;
		a->ended = true;
		return;
	}
	if (cmd->n != need) {
		fail(a, DF_LENGTH_ERROR);
		return;
	}
	if (comm == 3) {
		uint8_t *p = cmd->p + 8;

		if (!receive_enciphered(c, cmd, 8)) {
			fail(a, DF_LENGTH_ERROR);
			return;
		}
		if (!data_crc_ok(c, cmd, 8, len) || !padding_ok(p, len + crc_size(c), need - 8)) {
			fail(a, DF_INTEGRITY_ERROR);
			return;
		}
	} else if (comm == 1 && c->scheme == S_AES) {
		uint8_t mac[8];

		memcpy(mac, cmd->p + need - 8, 8);
		df_cmac_aes(c->sess, c->iv, cmd->p, need - 8);
		if (memcmp(mac, c->iv, 8) != 0) {
			fail(a, DF_INTEGRITY_ERROR);
			return;
		}
	} else if (comm == 1) {
		/* A legacy MAC (DES CBC-MAC) is not modelled: take the data, ignore the MAC. */
	} else {
		receive_plain(c, cmd);
	}
	memcpy(f->data + off, cmd->p + 8, len);
	a->changed = true;
	a->status = DF_OK;
}

typedef void (*handler_fn)(struct df_card *c, struct command *cmd, struct answer *a);

static void h_select(struct df_card *c, struct command *cmd, struct answer *a) { cmd_select(c, cmd, a); }
static void h_version(struct df_card *c, struct command *cmd, struct answer *a) { cmd_version(c, cmd, a); }
static void h_auth(struct df_card *c, struct command *cmd, struct answer *a) { auth_begin(c, cmd, a); }
static void h_card_uid(struct df_card *c, struct command *cmd, struct answer *a) { cmd_card_uid(c, cmd, a); }
static void h_create_app(struct df_card *c, struct command *cmd, struct answer *a) { cmd_create_app(c, cmd, a); }
static void h_delete_app(struct df_card *c, struct command *cmd, struct answer *a) { cmd_delete_app(c, cmd, a); }
static void h_app_ids(struct df_card *c, struct command *cmd, struct answer *a) { cmd_app_ids(c, cmd, a); }
static void h_key_settings(struct df_card *c, struct command *cmd, struct answer *a) { cmd_key_settings(c, cmd, a); }
static void h_key_version(struct df_card *c, struct command *cmd, struct answer *a) { cmd_key_version(c, cmd, a); }
static void h_format(struct df_card *c, struct command *cmd, struct answer *a) { cmd_format(c, cmd, a); }
static void h_free_mem(struct df_card *c, struct command *cmd, struct answer *a) { cmd_free_mem(c, cmd, a); }
static void h_create_file(struct df_card *c, struct command *cmd, struct answer *a) { cmd_create_file(c, cmd, a); }
static void h_delete_file(struct df_card *c, struct command *cmd, struct answer *a) { cmd_delete_file(c, cmd, a); }
static void h_file_ids(struct df_card *c, struct command *cmd, struct answer *a) { cmd_file_ids(c, cmd, a); }
static void h_file_settings(struct df_card *c, struct command *cmd, struct answer *a) { cmd_file_settings(c, cmd, a); }
static void h_read(struct df_card *c, struct command *cmd, struct answer *a) { cmd_read(c, cmd, a); }

static const struct {
	uint8_t ins;
	handler_fn run;
} handlers[] = {
	{ 0x0A, h_auth },
	{ 0xAA, h_auth },
	{ 0x5A, h_select },
	{ 0x60, h_version },
	{ 0x51, h_card_uid },
	{ 0xCA, h_create_app },
	{ 0xDA, h_delete_app },
	{ 0x6A, h_app_ids },
	{ 0x45, h_key_settings },
	{ 0x64, h_key_version },
	{ 0xC4, cmd_change_key },
	{ 0x54, cmd_change_key_settings },
	{ 0x5C, cmd_set_configuration },
	{ 0xFC, h_format },
	{ 0x6E, h_free_mem },
	{ 0xCD, h_create_file },
	{ 0xDF, h_delete_file },
	{ 0x6F, h_file_ids },
	{ 0xF5, h_file_settings },
	{ 0xBD, h_read },
	{ 0x3D, cmd_write },
};

/* The answer's data as it travels: enciphered with its CRC, or with a CMAC, or as is. */
static void secure_answer(struct df_card *c, struct answer *a)
{
	uint8_t st = DF_OK;

	if (a->status != DF_OK || a->ended || c->auth_key < 0)
		return;
	if (a->enc) {
		size_t bs = block_size(c->sess_type), n = a->len;

		if (c->scheme == S_AES) {
			uint8_t tmp[BUF_MAX + 1];

			memcpy(tmp, a->data, n);
			tmp[n] = st;
			put_crc32(a->data + n, df_crc32(tmp, n + 1));
			n += 4;
		} else {
			put_crc16(a->data + n, df_crc16(a->data, n));
			n += 2;
		}
		while (n % bs)
			a->data[n++] = 0;
		if (c->scheme == S_AES) {
			cbc_encrypt(c->sess_type, c->sess, c->iv, a->data, n);
		} else {
			uint8_t iv[8] = { 0 };

			cbc_encrypt(c->sess_type, c->sess, iv, a->data, n);
		}
		a->len = n;
	} else if (c->scheme == S_AES) {
		a->data[a->len] = st;
		df_cmac_aes(c->sess, c->iv, a->data, a->len + 1);
		memcpy(a->data + a->len, c->iv, 8);
		a->len += 8;
	}
}

static void dispatch(struct df_card *c, struct command *cmd, struct answer *a)
{
	uint8_t ins = cmd->p[0];

	if (ins == DF_ADDITIONAL_FRAME) {
		enum pending p = c->pending;

		if (p == P_AUTH) {
			auth_finish(c, cmd, a);
		} else if (p == P_VERSION) {
			cmd_version(c, cmd, a);
		} else if (p == P_MORE_IN) {
			struct command whole = { c->in, 0 };

			c->pending = P_NONE;
			if (c->in_len + cmd->n - 1 > c->in_need) {
				fail(a, DF_LENGTH_ERROR);
				return;
			}
			memcpy(c->in + c->in_len, cmd->p + 1, cmd->n - 1);
			c->in_len += cmd->n - 1;
			whole.n = c->in_len;
			if (c->in_len < c->in_need) {
				c->pending = P_MORE_IN;
				a->status = DF_ADDITIONAL_FRAME;
				a->ended = true;
				return;
			}
			cmd_write(c, &whole, a);
		} else {
			c->pending = P_NONE;
			fail(a, DF_ILLEGAL_COMMAND);
		}
		return;
	}
	c->pending = P_NONE;
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (handlers[i].ins == ins) {
			handlers[i].run(c, cmd, a);
			return;
		}
	}
	fail(a, DF_ILLEGAL_COMMAND);
}

size_t df_command(struct df_card *c, const uint8_t *in, size_t n, uint8_t *out,
		  uint8_t *ret_ins, bool *ret_changed)
{
	static struct answer a;             /* BUF_MAX bytes: not on the stack */
	uint8_t native[BUF_MAX];
	struct command cmd = { native, 0 };
	bool wrapped = n >= 5 && in[0] == 0x90;
	size_t k = 0, chunk;

	*ret_changed = false;
	*ret_ins = 0;
	if (n == 0)
		return 0;
	if (n >= 4 && in[0] == 0x00) {
		/* ISO 7816-4 commands (SELECT by name, ...): not a file system we model. */
		out[0] = in[1] == 0xA4 ? 0x6A : 0x6D;
		out[1] = in[1] == 0xA4 ? 0x82 : 0x00;
		return 2;
	}
	if (wrapped) {
		size_t lc = n > 5 ? in[4] : 0;

		if (in[2] || in[3] || (n != 5 && n != 5 + lc && n != 6 + lc) || lc + 1 > sizeof(native)) {
			out[0] = 0x67;              /* wrong length */
			out[1] = 0x00;
			return 2;
		}
		native[0] = in[1];
		memcpy(native + 1, in + 5, lc);
		cmd.n = 1 + lc;
	} else {
		if (n > sizeof(native))
			n = sizeof(native);
		memcpy(native, in, n);
		cmd.n = n;
	}
	*ret_ins = native[0] == DF_ADDITIONAL_FRAME && c->pending != P_NONE ? c->pending_ins : native[0];

	if (native[0] == DF_ADDITIONAL_FRAME && c->pending == P_MORE_OUT) {
		/* The rest of a long answer. */
		chunk = c->out_len - c->out_off;
		if (chunk > FRAME_DATA_MAX)
			chunk = FRAME_DATA_MAX;
		a.status = c->out_off + chunk < c->out_len ? DF_ADDITIONAL_FRAME : DF_OK;
		memcpy(a.data, c->out + c->out_off, chunk);
		a.len = chunk;
		c->out_off += chunk;
		if (a.status == DF_OK)
			c->pending = P_NONE;
		*ret_ins = c->pending_ins;
	} else {
		memset(&a, 0, offsetof(struct answer, data));
		a.len = 0;
		a.enc = a.ended = a.changed = false;
		dispatch(c, &cmd, &a);
		if (a.status != DF_OK && a.status != DF_ADDITIONAL_FRAME) {
			session_reset(c);       /* any error ends the session */
			c->pending = P_NONE;
			a.len = 0;
		}
		secure_answer(c, &a);
		*ret_changed = a.changed;
		if (a.status == DF_OK && a.len > FRAME_DATA_MAX) {
			memcpy(c->out, a.data, a.len);
			c->out_len = a.len;
			c->out_off = FRAME_DATA_MAX;
			c->pending = P_MORE_OUT;
			c->pending_ins = native[0];
			a.len = FRAME_DATA_MAX;
			a.status = DF_ADDITIONAL_FRAME;
		}
	}
	if (wrapped) {
		memcpy(out, a.data, a.len);
		k = a.len;
		out[k++] = 0x91;
		out[k++] = a.status;
	} else {
		out[k++] = a.status;
		memcpy(out + k, a.data, a.len);
		k += a.len;
	}
	return k;
}

/* ---- description and images ----------------------------------------------- */

static const char *type_name(enum key_type t)
{
	return t == KT_AES ? "aes" : t == KT_3K3DES ? "3k3des" : "3des";
}

void df_describe(const struct df_card *c, char *out, size_t n)
{
	size_t k = (size_t)snprintf(out, n, "aids=");
	bool any = false;

	for (size_t i = 0; i < APPS_MAX && k < n; i++)
		if (c->apps[i].used) {
			k += (size_t)snprintf(out + k, n - k, "%s%06X", any ? "," : "", (unsigned)c->apps[i].aid);
			any = true;
		}
	if (k < n)
		snprintf(out + k, n - k, "%s random_uid=%d picc=%s", any ? "" : "-", c->random_uid,
			 type_name(c->picc_type));
}

static void hex_out(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02X", p[i]);
}

int df_save(const struct df_card *c, FILE *f)
{
	fprintf(f, "portier-emu-desfire 1\nuid ");
	hex_out(f, c->uid, DF_UID_LEN);
	fprintf(f, "\nconfig %d %d\npicc %02X %s ", c->random_uid, c->format_disabled, c->picc_settings,
		type_name(c->picc_type));
	hex_out(f, c->picc_key.k, key_len(c->picc_type));
	fprintf(f, " %02X\n", c->picc_key.version);
	for (size_t i = 0; i < APPS_MAX; i++) {
		const struct app *a = &c->apps[i];

		if (!a->used)
			continue;
		fprintf(f, "app %06X %02X %s %u\n", (unsigned)a->aid, a->settings, type_name(a->type), a->nkeys);
		for (unsigned k = 0; k < a->nkeys; k++) {
			fprintf(f, "key %u ", k);
			hex_out(f, a->keys[k].k, key_len(a->type));
			fprintf(f, " %02X\n", a->keys[k].version);
		}
		for (unsigned k = 0; k < FILES_MAX; k++) {
			const struct file *fl = &a->files[k];

			if (!fl->used)
				continue;
			fprintf(f, "file %u %u %04X %u ", k, fl->comm, fl->access, (unsigned)fl->size);
			hex_out(f, fl->data, fl->size);
			fputc('\n', f);
		}
	}
	fprintf(f, "end\n");
	return ferror(f) ? -EIO : 0;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static int type_parse(const char *s, enum key_type *t)
{
	if (!strcmp(s, "aes"))
		*t = KT_AES;
	else if (!strcmp(s, "3des"))
		*t = KT_3DES;
	else if (!strcmp(s, "3k3des"))
		*t = KT_3K3DES;
	else
		return -EINVAL;
	return 0;
}

int df_load(FILE *f, struct df_card **ret, char *err, size_t errsz)
{
	static char line[2 * FILE_SIZE_MAX + 128];
	struct df_card *c = NULL;
	struct app *app = NULL;
	unsigned lineno = 0;
	bool ended = false;

	while (fgets(line, sizeof(line), f)) {
		char w[3][64];
		static char big[2 * FILE_SIZE_MAX + 16];
		unsigned u1, u2, u3, u4;
		int nw;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (lineno == 1) {
			if (strcmp(line, "portier-emu-desfire 1") != 0)
				goto bad;
			continue;
		}
		if (!strcmp(line, "end")) {
			ended = true;
			break;
		}
		nw = sscanf(line, "%4s", w[0]);
		if (nw != 1)
			goto bad;
		if (!strcmp(w[0], "uid")) {
			uint8_t uid[DF_UID_LEN];

			if (c || sscanf(line, "uid %20s", w[1]) != 1 || unhex(w[1], uid, DF_UID_LEN) < 0)
				goto bad;
			if (!(c = df_new(uid))) {
				snprintf(err, errsz, "out of memory");
				return -ENOMEM;
			}
		} else if (!c) {
			goto bad;
		} else if (!strcmp(w[0], "conf")) {
			if (sscanf(line, "config %u %u", &u1, &u2) != 2 || u1 > 1 || u2 > 1)
				goto bad;
			c->random_uid = u1;
			c->format_disabled = u2;
		} else if (!strcmp(w[0], "picc")) {
			if (sscanf(line, "picc %x %7s %60s %x", &u1, w[1], w[2], &u2) != 4 || u1 > 0xFF ||
			    u2 > 0xFF || type_parse(w[1], &c->picc_type) < 0 ||
			    unhex(w[2], c->picc_key.k, key_len(c->picc_type)) < 0)
				goto bad;
			c->picc_settings = (uint8_t)u1;
			c->picc_key.version = (uint8_t)u2;
		} else if (!strcmp(w[0], "app")) {
			enum key_type t;

			if (sscanf(line, "app %x %x %7s %u", &u1, &u2, w[1], &u3) != 4 || u1 == 0 ||
			    u1 > 0xFFFFFF || u2 > 0xFF || u3 < 1 || u3 > KEYS_MAX || type_parse(w[1], &t) < 0 ||
			    app_find(c, u1) || !(app = app_new(c, u1, (uint8_t)u2, (uint8_t)u3, t)))
				goto bad;
		} else if (!strcmp(w[0], "key")) {
			if (!app || sscanf(line, "key %u %60s %x", &u1, w[1], &u2) != 3 || u1 >= app->nkeys ||
			    u2 > 0xFF || unhex(w[1], app->keys[u1].k, key_len(app->type)) < 0)
				goto bad;
			app->keys[u1].version = (uint8_t)u2;
		} else if (!strcmp(w[0], "file")) {
			struct file *fl;

			if (!app || sscanf(line, "file %u %u %x %u %2056s", &u1, &u2, &u3, &u4, big) != 5 ||
			    u1 >= FILES_MAX || u2 > 3 || u3 > 0xFFFF || u4 < 1 || u4 > FILE_SIZE_MAX ||
			    app->files[u1].used)
				goto bad;
			fl = &app->files[u1];
			if (!(fl->data = calloc(1, u4)))
				goto bad;
			if (unhex(big, fl->data, u4) < 0)
				goto bad;
			fl->used = true;
			fl->comm = (uint8_t)u2;
			fl->access = (uint16_t)u3;
			fl->size = u4;
		} else {
			goto bad;
		}
	}
	if (!c || !ended) {
		snprintf(err, errsz, "incomplete card image");
		df_free(c);
		return -EINVAL;
	}
	df_power_up(c);
	*ret = c;
	return 0;
bad:
	snprintf(err, errsz, "bad card image at line %u", lineno);
	df_free(c);
	return -EINVAL;
}
