/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * pn532-emu — a PN532 (HSU/UART) emulator on a pseudo-terminal.
 *
 * Portier's tests run the real libnfc 1.8.0 `pn532_uart` driver against this
 * program instead of a reader, so the daemon's reader code is exercised end to
 * end. Frame formats and what libnfc expects are in
 * /work/shared/design/PN532.md; this file models only as much of the chip as
 * libnfc's initiator paths (nfc-list, nfc-poll, portierd) touch.
 *
 * Several ISO14443A cards can be in the field at once. Each follows the
 * ISO/IEC 14443-3 states that matter to those paths (IDLE, ACTIVE, HALT; see
 * struct card), the chip activates up to two of them (InListPassiveTarget
 * MaxTg 2, InAutoPoll), and among the cards that answer, the one that
 * entered the field first is selected first (struct field).
 *
 * Shape: one process, one thread, one ppoll() loop over the pty master, the
 * control socket and its clients; every delay is a deadline in that loop.
 *
 * stdout: the first line is the pty slave path (flushed at once, after the
 * --link symlink and the --control socket exist). After each `fault hangup`
 * the path of the re-created pty is printed as one more line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "desfire.h"

#define NS_PER_MS        1000000LL
#define NS_PER_S         1000000000LL
/* TFI + command code + up to 263 bytes: the PN532's extended-frame maximum. */
#define FRAME_BODY_MAX   265
#define FRAME_OVERHEAD   10                 /* 00 00 FF FF FF LM LL LCS .. DCS 00 */
#define TX_FRAME_MAX     (FRAME_BODY_MAX + FRAME_OVERHEAD)
#define RX_BUF_SIZE      1024
#define TXQ_LEN          8
/* A pty delivers a client's write() whole, so a frame still incomplete after
 * this long is garbage whose LEN swallowed the start of a real frame. */
#define RX_STALL_NS      (50 * NS_PER_MS)
#define HUP_BACKOFF_NS   (5 * NS_PER_MS)
#define REOPEN_RETRY_NS  (100 * NS_PER_MS)
#define BYTE_WIRE_NS     86806LL            /* 10 bits at 115200 baud */
#define UID_MAX          10
#define ATS_MAX          32                 /* without TL; real cards stay far below */
#define CTL_CLIENTS_MAX  8
#define CTL_LINE_MAX     256
#define CARDS_MAX        4                  /* cards in the field at once */
#define TARGETS_MAX      2                  /* the PN532 activates at most two */
/* insert/add: a verb, then up to CARDS_MAX × (uid atqa sak ats) */
#define CTL_TOKENS_MAX   (1 + 4 * CARDS_MAX)
#define HANGUP_DEFAULT_MS 500
#define HANGUP_MAX_MS    600000
#define DELAY_MAX_MS     60000
#define WALLET_MAX       32                 /* DESFire cards the emulator remembers */

/* PN532 status bytes we produce (user manual §7.1). */
#define ST_OK            0x00
#define ST_TIMEOUT       0x01  /* no answer from the card: libnfc's "gone" */
#define ST_BAD_CONTEXT   0x27  /* no such target selected */

#define PARAM_AUTO_RATS  0x10
#define SAK_ISO14443_4   0x20

/* InAutoPoll target types we can match; everything else is never found. */
#define PTT_GENERIC_106  0x00
#define PTT_MIFARE       0x10
#define PTT_ISO14443_4A  0x20

static const uint8_t ack_frame[] = { 0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00 };
static const uint8_t error_frame[] = { 0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00 };
/* What `fault garbage` sends instead of a reply: noise, then a frame whose
 * data checksum is wrong. libnfc must reject both. */
static const uint8_t garbage_bytes[] = { 0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x00, 0xFF, 0x03, 0xFD,
					 0xD5, 0x4B, 0x00, 0x42, 0x00 };
/* ATS of a DESFire EV1 (without TL), used for ISO14443-4 cards given none. */
static const uint8_t default_ats[] = { 0x75, 0x77, 0x81, 0x02, 0x80 };
/* A DESFire EV1 answers REQA with this ATQA. */
static const uint8_t desfire_atqa[] = { 0x03, 0x44 };

/* ISO/IEC 14443-3 card states, as far as REQA-based activation sees them:
 * IDLE answers REQA; ACTIVE is selected by the chip and deaf to REQA; HALT
 * (after HLTA, or S(DESELECT) for ISO-DEP) answers only WUPA, which none of
 * libnfc's initiator paths send, so a halted card stays out of every
 * activation until it leaves the field or the RF field is switched off. */
enum card_state { CARD_IDLE, CARD_ACTIVE, CARD_HALT };

struct card {
	unsigned long id;       /* unique per entry into the field: targets name cards by it */
	enum card_state state;
	uint8_t uid[UID_MAX];
	size_t uid_len;
	uint8_t atqa[2];
	uint8_t sak;
	uint8_t ats[ATS_MAX];   /* as libnfc prints it: TL is added on the wire */
	size_t ats_len;
	/* A DESFire card: its persistent self lives in the emulator's wallet (the
	 * same physical card every time it is inserted); uid above is what it
	 * answers anticollision with, which a random-UID card draws at power-up. */
	struct df_card *df;
	bool want_desfire, want_random_uid;     /* as `insert` asked */
};

/* The cards in the RF field, in the order they entered it. That order is the
 * emulator's anticollision rule: among the cards that answer, the one that
 * entered first is selected first. (A real PN532 resolves a collision bit by
 * bit over the UIDs; either way one card is selected first, deterministically
 * for a given field.) */
struct field {
	struct card cards[CARDS_MAX];
	size_t n;
	unsigned long last_id;
};

enum pending_kind { PENDING_NONE, PENDING_LIST, PENDING_AUTOPOLL };

/* The one command the chip may be busy with while it waits for a card. */
struct pending {
	enum pending_kind kind;
	int64_t deadline_ns;    /* 0: wait for a card forever */
	uint8_t brty;           /* InListPassiveTarget */
	uint8_t max_tg;
	uint8_t init[12];
	size_t init_len;
	uint8_t types[15];      /* InAutoPoll */
	size_t ntypes;
};

/* What survives a client closing the port, but not a `fault hangup`. */
struct chip {
	uint8_t regs[65536];
	uint8_t params;
	uint8_t mxrty_passive;  /* 0xFF: InListPassiveTarget waits for a card */
	bool rf_on;
	bool powered_down;
};

/* What a client closing the port resets. */
struct session {
	bool client_seen;
	/* The chip's activated targets: Tg n is target[n - 1], a card id, or 0
	 * once released. A target stays listed when its card leaves; the card
	 * just stops answering, as a real one would. */
	unsigned long target[TARGETS_MAX];
	size_t ntargets;
	uint8_t rx[RX_BUF_SIZE];
	size_t rx_len;
	int64_t rx_stall_ns;    /* 0: no incomplete frame waiting */
	struct pending pending;
	uint8_t last[TX_FRAME_MAX];  /* last response frame, for NACK */
	size_t last_len;
};

struct tx_frame {
	uint8_t buf[TX_FRAME_MAX];
	size_t len;
	size_t off;
	int64_t due_ns;
};

struct txq {
	struct tx_frame q[TXQ_LEN];
	size_t head, count;
	int64_t wire_free_ns;   /* when the simulated 115200-baud line is idle */
	bool blocked;           /* the master is full: wait for POLLOUT */
};

struct ctl_client {
	int fd;
	char line[CTL_LINE_MAX + 1];
	size_t len;
	bool overlong;          /* discarding up to the next newline */
};

struct counters {
	unsigned long rx_frames, tx_frames, rx_acks, rx_nacks, rx_bad, rx_noise;
	unsigned long tx_suppressed, sessions, hangups;
	unsigned long apdus;    /* commands a DESFire card answered (InDataExchange) */
	unsigned long autopolled;       /* targets the last InAutoPoll answer reported: the
					 * chip's own count changes with every later select */
};

struct options {
	bool baud_delay;
	bool verbose;
	const char *cards_dir;
	int reply_delay_ms;
	int poll_period_ms;
	const char *link_path;
	const char *control_path;
};

struct emu {
	struct options opt;
	int master_fd, slave_fd;
	char slave_path[64];
	bool pty_up;
	int64_t reopen_ns;      /* after `fault hangup`: when to re-create the pty */
	int64_t backoff_ns;     /* after POLLHUP: do not poll the master until then */
	int ctl_fd;
	struct ctl_client ctl[CTL_CLIENTS_MAX];
	struct chip chip;
	struct field field;
	struct session sess;
	struct txq txq;
	bool fault_drop, fault_garbage, fault_mute;
	int fault_remove_ins;   /* a DESFire card leaves after answering this command; -1: none */
	int fault_mute_ins;     /* the chip goes mute after a card answered this command; -1: none */
	bool mute_after_reply;  /* set by mute-after: mute once the current reply is queued */
	struct df_card *wallet[WALLET_MAX];
	struct counters cnt;
	bool quit;
};

struct reply {
	uint8_t d[FRAME_BODY_MAX];
	size_t n;
};

enum verdict { V_REPLY, V_ERROR, V_PARK };

static volatile sig_atomic_t stop_signal;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

__attribute__((format(printf, 2, 3)))
static void vlog(const struct emu *e, const char *fmt, ...)
{
	va_list ap;

	if (!e->opt.verbose)
		return;
	fprintf(stderr, "pn532-emu %.3f: ", (double)now_ns() / NS_PER_S);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void hex_str(const uint8_t *b, size_t n, char *out, size_t outsz, bool spaced)
{
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && k + (spaced && i ? 3 : 2) < outsz; i++)
		k += (size_t)snprintf(out + k, outsz - k, spaced && i ? " %02X" : "%02X", b[i]);
}

static void log_bytes(const struct emu *e, const char *what, const uint8_t *b, size_t n)
{
	char hex[3 * TX_FRAME_MAX + 1];

	if (!e->opt.verbose)
		return;
	hex_str(b, n, hex, sizeof(hex), true);
	vlog(e, "%s %s", what, hex);
}

/* ---- output: ACKs and replies, released at their due time ---------------- */

static void txq_push(struct emu *e, const uint8_t *buf, size_t len, int64_t delay_ns)
{
	struct txq *t = &e->txq;
	struct tx_frame *f;
	int64_t due = now_ns() + delay_ns;

	if (t->count == TXQ_LEN || len > TX_FRAME_MAX) {
		e->cnt.tx_suppressed++;
		vlog(e, "tx queue full, frame dropped");
		return;
	}
	/* A real UART needs len × 86.8 µs; the host sees the frame when its
	 * last byte has arrived, and frames cannot overlap on the line. */
	if (e->opt.baud_delay) {
		if (due < t->wire_free_ns)
			due = t->wire_free_ns;
		due += (int64_t)len * BYTE_WIRE_NS;
		t->wire_free_ns = due;
	}
	f = &t->q[(t->head + t->count) % TXQ_LEN];
	memcpy(f->buf, buf, len);
	f->len = len;
	f->off = 0;
	f->due_ns = due;
	t->count++;
}

/* The chip abandons what it was about to say when the host moves on; a frame
 * already half on the wire is finished so the host never sees a torn one. */
static void txq_drop_unstarted(struct txq *t)
{
	t->count = (t->count && t->q[t->head].off) ? 1 : 0;
}

static void txq_clear(struct txq *t)
{
	t->count = 0;
	t->blocked = false;
}

/* Returns 0, or -errno when the master cannot be written (client gone). */
static int txq_flush(struct emu *e, int64_t now)
{
	struct txq *t = &e->txq;

	t->blocked = false;
	while (t->count) {
		struct tx_frame *f = &t->q[t->head];
		ssize_t w;

		if (f->due_ns > now)
			return 0;
		w = write(e->master_fd, f->buf + f->off, f->len - f->off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				t->blocked = true;
				return 0;
			}
			return -errno;
		}
		f->off += (size_t)w;
		if (f->off < f->len)
			continue;
		log_bytes(e, "tx", f->buf, f->len);
		if (f->len != sizeof(ack_frame) || memcmp(f->buf, ack_frame, sizeof(ack_frame)))
			e->cnt.tx_frames++;
		t->head = (t->head + 1) % TXQ_LEN;
		t->count--;
	}
	return 0;
}

static size_t frame_build(uint8_t *out, const uint8_t *body, size_t n)
{
	size_t k = 0;
	uint8_t sum = 0;

	out[k++] = 0x00;
	out[k++] = 0x00;
	out[k++] = 0xFF;
	if (n > 255) {
		out[k++] = 0xFF;
		out[k++] = 0xFF;
		out[k++] = (uint8_t)(n >> 8);
		out[k++] = (uint8_t)n;
		out[k] = (uint8_t)-(out[k - 2] + out[k - 1]);
		k++;
	} else {
		out[k++] = (uint8_t)n;
		out[k++] = (uint8_t)-n;
	}
	for (size_t i = 0; i < n; i++) {
		out[k++] = body[i];
		sum = (uint8_t)(sum + body[i]);
	}
	out[k++] = (uint8_t)-sum;
	out[k++] = 0x00;
	return k;
}

static void send_ack(struct emu *e)
{
	if (e->fault_mute) {
		e->cnt.tx_suppressed++;
		return;
	}
	txq_push(e, ack_frame, sizeof(ack_frame), 0);
}

/* Every response (reply or error frame) passes here, so faults apply to
 * exactly "the next reply" whatever command it answers. */
static void send_response(struct emu *e, const uint8_t *frame, size_t len)
{
	int64_t delay = (int64_t)e->opt.reply_delay_ms * NS_PER_MS;

	if (e->fault_mute) {
		e->cnt.tx_suppressed++;
		return;
	}
	if (e->fault_drop) {
		e->fault_drop = false;
		e->cnt.tx_suppressed++;
		vlog(e, "fault drop: reply not sent");
		return;
	}
	if (e->fault_garbage) {
		e->fault_garbage = false;
		vlog(e, "fault garbage: garbage sent instead of the reply");
		txq_push(e, garbage_bytes, sizeof(garbage_bytes), delay);
		return;
	}
	memcpy(e->sess.last, frame, len);
	e->sess.last_len = len;
	txq_push(e, frame, len, delay);
}

static void send_reply(struct emu *e, uint8_t code, const uint8_t *data, size_t n)
{
	uint8_t body[FRAME_BODY_MAX];
	uint8_t frame[TX_FRAME_MAX];

	if (n > FRAME_BODY_MAX - 2)
		n = FRAME_BODY_MAX - 2;
	body[0] = 0xD5;
	body[1] = code;
	memcpy(body + 2, data, n);
	send_response(e, frame, frame_build(frame, body, n + 2));
}

static void send_error_frame(struct emu *e)
{
	send_response(e, error_frame, sizeof(error_frame));
}

/* ---- the card and target activation -------------------------------------- */

/* NFCID1 as ISO 14443-3 cascades it: what libnfc sends to re-select a card. */
static size_t card_cascade_uid(const struct card *c, uint8_t *out)
{
	const uint8_t *u = c->uid;

	switch (c->uid_len) {
	case 7:
		out[0] = 0x88;
		memcpy(out + 1, u, 7);
		return 8;
	case 10:
		out[0] = 0x88;
		memcpy(out + 1, u, 3);
		out[4] = 0x88;
		memcpy(out + 5, u + 3, 7);
		return 12;
	default:
		memcpy(out, u, c->uid_len);
		return c->uid_len;
	}
}

static bool card_matches_init(const struct card *c, const uint8_t *init, size_t n)
{
	uint8_t casc[12];
	size_t m;

	if (n == 0)
		return true;
	m = card_cascade_uid(c, casc);
	return (n == m && !memcmp(init, casc, n)) || (n == c->uid_len && !memcmp(init, c->uid, n));
}

/* TargetData of an ISO14443A target: Tg ATQA SAK NFCIDLength NFCID1 [ATS]. */
static size_t card_target_data(const struct card *c, uint8_t tg, bool with_ats, uint8_t *out)
{
	size_t n = 0;

	out[n++] = tg;
	out[n++] = c->atqa[0];
	out[n++] = c->atqa[1];
	out[n++] = c->sak;
	out[n++] = (uint8_t)c->uid_len;
	memcpy(out + n, c->uid, c->uid_len);
	n += c->uid_len;
	if (with_ats && c->ats_len) {
		out[n++] = (uint8_t)(c->ats_len + 1);
		memcpy(out + n, c->ats, c->ats_len);
		n += c->ats_len;
	}
	return n;
}

/* 16 bytes from READ (0x30): Ultralight pages 0-3 or MIFARE block 0 carry the
 * UID with its BCCs, which is all a presence check or a curious test reads. */
static void card_read16(const struct card *c, uint8_t addr, uint8_t *out)
{
	const uint8_t *u = c->uid;

	memset(out, 0, 16);
	if (addr != 0)
		return;
	if (c->uid_len == 7) {
		out[0] = u[0];
		out[1] = u[1];
		out[2] = u[2];
		out[3] = (uint8_t)(0x88 ^ u[0] ^ u[1] ^ u[2]);
		memcpy(out + 4, u + 3, 4);
		out[8] = (uint8_t)(u[3] ^ u[4] ^ u[5] ^ u[6]);
		out[9] = 0x48;
		out[12] = 0xE1;
		out[13] = 0x10;
		out[14] = 0x06;
	} else if (c->uid_len == 4) {
		memcpy(out, u, 4);
		out[4] = (uint8_t)(u[0] ^ u[1] ^ u[2] ^ u[3]);
		out[5] = c->sak;
		out[6] = c->atqa[1];
		out[7] = c->atqa[0];
	}
}

static struct card *field_card(struct emu *e, unsigned long id)
{
	for (size_t i = 0; id && i < e->field.n; i++)
		if (e->field.cards[i].id == id)
			return &e->field.cards[i];
	return NULL;
}

/* The card behind target tg (1-based) if it is still in the field and
 * selected; NULL when it left, was released, or tg is not listed. */
static struct card *target_card(struct emu *e, size_t tg)
{
	struct card *c;

	if (tg < 1 || tg > e->sess.ntargets)
		return NULL;
	c = field_card(e, e->sess.target[tg - 1]);
	return c && c->state == CARD_ACTIVE ? c : NULL;
}

static bool target_alive(struct emu *e)
{
	return target_card(e, 1) != NULL;
}

/* Raw frames (InCommunicateThru) and the presence test go to the target
 * activated last. After a two-target InAutoPoll that is Tg 2, the one libnfc
 * keeps ("we keep the selected one", pn53x.c). */
static struct card *current_card(struct emu *e)
{
	size_t tg = e->sess.ntargets;

	while (tg > 0 && !e->sess.target[tg - 1])
		tg--;
	return target_card(e, tg);
}

static size_t targets_alive(struct emu *e)
{
	size_t n = 0;

	for (size_t tg = 1; tg <= e->sess.ntargets; tg++)
		n += target_card(e, tg) != NULL;
	return n;
}

/* An activation command starts: the chip forgets its targets, and a card it
 * had selected falls back to IDLE at the first REQA (ISO 14443-3: ACTIVE on
 * an unexpected frame), so the chip's retry reaches it. Halted cards stay
 * halted. */
static void activation_begin(struct emu *e)
{
	for (size_t i = 0; i < e->field.n; i++)
		if (e->field.cards[i].state == CARD_ACTIVE)
			e->field.cards[i].state = CARD_IDLE;
	e->sess.ntargets = 0;
}

static void activate(struct emu *e, struct card *c)
{
	c->state = CARD_ACTIVE;
	e->sess.target[e->sess.ntargets++] = c->id;
}

/* A DESFire card powers up: its session is gone, and a random-UID card
 * answers anticollision with a new UID. */
static void card_power_up(struct card *c)
{
	if (!c->df)
		return;
	df_power_up(c->df);
	c->uid_len = df_anticollision_uid(c->df, c->uid);
}

/* Field off (RFConfiguration, PowerDown): every card loses power and comes
 * back IDLE; the chip has no target left. */
static void field_reset(struct emu *e)
{
	for (size_t i = 0; i < e->field.n; i++) {
		e->field.cards[i].state = CARD_IDLE;
		card_power_up(&e->field.cards[i]);
	}
	e->sess.ntargets = 0;
}

/* ---- the wallet: DESFire cards keep what was written to them --------------- */

static int wallet_path(const struct emu *e, const uint8_t uid[DF_UID_LEN], char *buf, size_t n)
{
	char hex[2 * DF_UID_LEN + 1];

	hex_str(uid, DF_UID_LEN, hex, sizeof(hex), false);
	return snprintf(buf, n, "%s/%s.desfire", e->opt.cards_dir, hex) >= (int)n ? -ENAMETOOLONG : 0;
}

/* Writes the card's image to --cards DIR (atomically), if there is one. */
static void wallet_save(struct emu *e, const struct df_card *c)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16];
	FILE *f;

	if (!e->opt.cards_dir || wallet_path(e, df_uid(c), path, sizeof(path)) < 0)
		return;
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	f = fopen(tmp, "we");
	if (!f) {
		fprintf(stderr, "pn532-emu: saving %s: %s\n", path, strerror(errno));
		return;
	}
	if (df_save(c, f) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
		fprintf(stderr, "pn532-emu: saving %s failed\n", path);
		unlink(tmp);
	}
}

/* The DESFire card of this UID: the one the emulator already knows, else its
 * image in --cards DIR, else a factory-fresh card. NULL with err set. */
static struct df_card *wallet_get(struct emu *e, const uint8_t uid[DF_UID_LEN], char *err, size_t errsz)
{
	char path[PATH_MAX];
	struct df_card *c = NULL;
	size_t free_slot = WALLET_MAX;
	FILE *f;

	for (size_t i = 0; i < WALLET_MAX; i++) {
		if (e->wallet[i] && !memcmp(df_uid(e->wallet[i]), uid, DF_UID_LEN))
			return e->wallet[i];
		if (!e->wallet[i] && free_slot == WALLET_MAX)
			free_slot = i;
	}
	if (free_slot == WALLET_MAX) {
		snprintf(err, errsz, "error at most %d DESFire cards", WALLET_MAX);
		return NULL;
	}
	if (e->opt.cards_dir && wallet_path(e, uid, path, sizeof(path)) == 0 && (f = fopen(path, "re"))) {
		char why[96];
		int r = df_load(f, &c, why, sizeof(why));

		fclose(f);
		if (r < 0) {
			snprintf(err, errsz, "error %.200s: %s", path, why);
			return NULL;
		}
		if (memcmp(df_uid(c), uid, DF_UID_LEN) != 0) {
			snprintf(err, errsz, "error %.200s holds another card's image", path);
			df_free(c);
			return NULL;
		}
	} else {
		c = df_new(uid);
	}
	if (!c) {
		snprintf(err, errsz, "error out of memory");
		return NULL;
	}
	e->wallet[free_slot] = c;
	return c;
}

static void wallet_free(struct emu *e)
{
	for (size_t i = 0; i < WALLET_MAX; i++)
		e->wallet[i] = (df_free(e->wallet[i]), NULL);
}

/* A card leaves the field (a `fault remove-after`): the others keep their order. */
static void field_take_out(struct emu *e, const struct card *c)
{
	size_t kept = 0;

	for (size_t j = 0; j < e->field.n; j++)
		if (&e->field.cards[j] != c)
			e->field.cards[kept++] = e->field.cards[j];
	e->field.n = kept;
}

static bool card_matches_type(const struct card *c, uint8_t type)
{
	if (type == PTT_ISO14443_4A)
		return c->sak & SAK_ISO14443_4;
	return type == PTT_MIFARE || type == PTT_GENERIC_106;
}

static const char *pending_name(enum pending_kind k)
{
	return k == PENDING_LIST ? "InListPassiveTarget" : k == PENDING_AUTOPOLL ? "InAutoPoll" : "none";
}

/* InListPassiveTarget's answer: NbTg, then TargetData per card activated.
 * Cards answer in field order; with init data only the card of that UID. */
static size_t list_targets(struct emu *e, const struct pending *p, uint8_t *out)
{
	size_t n = 1;

	out[0] = 0;
	if (p->brty != 0)
		return n;
	for (size_t i = 0; i < e->field.n && out[0] < p->max_tg; i++) {
		struct card *c = &e->field.cards[i];
		bool ats = (c->sak & SAK_ISO14443_4) && (e->chip.params & PARAM_AUTO_RATS);

		if (c->state != CARD_IDLE || !card_matches_init(c, p->init, p->init_len))
			continue;
		activate(e, c);
		out[0]++;
		n += card_target_data(c, out[0], ats, out + n);
	}
	return n;
}

/* InAutoPoll's answer: the first polled type that any card answers to wins;
 * up to two of its cards, each as Type AutoPollTargetDataLength TargetData. */
static size_t autopoll_targets(struct emu *e, const struct pending *p, uint8_t *out)
{
	size_t n = 1;

	out[0] = 0;
	for (size_t t = 0; t < p->ntypes && out[0] == 0; t++) {
		for (size_t i = 0; i < e->field.n && out[0] < TARGETS_MAX; i++) {
			struct card *c = &e->field.cards[i];

			if (c->state != CARD_IDLE || !card_matches_type(c, p->types[t]))
				continue;
			activate(e, c);
			out[0]++;
			out[n] = p->types[t];
			out[n + 1] = (uint8_t)card_target_data(c, out[0], p->types[t] == PTT_ISO14443_4A,
							       out + n + 2);
			n += 2 + out[n + 1];
		}
	}
	return n;
}

/* Answers the parked command if the field now holds a matching card, or with
 * "nothing found" once its polling time is over. */
static void pending_try(struct emu *e, bool expired)
{
	struct pending *p = &e->sess.pending;
	uint8_t out[FRAME_BODY_MAX];
	size_t n;

	if (p->kind == PENDING_NONE)
		return;
	n = p->kind == PENDING_LIST ? list_targets(e, p, out) : autopoll_targets(e, p, out);
	if (out[0] == 0 && !expired)
		return;
	send_reply(e, p->kind == PENDING_LIST ? 0x4B : 0x61, out, n);
	if (p->kind == PENDING_AUTOPOLL)
		e->cnt.autopolled = out[0];
	p->kind = PENDING_NONE;
}

/* ---- PN532 commands: p/n are the bytes after the command code ------------ */

typedef enum verdict (*cmd_fn)(struct emu *e, const uint8_t *p, size_t n, struct reply *r);

static enum verdict cmd_diagnose(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	if (n < 1)
		return V_ERROR;
	if (p[0] == 0x00) {             /* communication line test: echo */
		memcpy(r->d, p, n);
		r->n = n;
		return V_REPLY;
	}
	if (p[0] == 0x06) {             /* card presence */
		r->d[r->n++] = current_card(e) ? ST_OK : ST_TIMEOUT;
		return V_REPLY;
	}
	return V_ERROR;
}

static enum verdict cmd_firmware(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	/* IC 0x32 makes libnfc treat us as a PN532; 0x07 = ISO14443A, B, 18092. */
	static const uint8_t fw[] = { 0x32, 0x01, 0x06, 0x07 };

	(void)e;
	(void)p;
	if (n != 0)
		return V_ERROR;
	memcpy(r->d, fw, sizeof(fw));
	r->n = sizeof(fw);
	return V_REPLY;
}

static enum verdict cmd_read_register(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	if (n < 2 || n % 2)
		return V_ERROR;
	for (size_t i = 0; i < n; i += 2)    /* PN532: values only, no status byte */
		r->d[r->n++] = e->chip.regs[(size_t)p[i] << 8 | p[i + 1]];
	return V_REPLY;
}

static enum verdict cmd_write_register(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	(void)r;
	if (n < 3 || n % 3)
		return V_ERROR;
	for (size_t i = 0; i < n; i += 3)
		e->chip.regs[(size_t)p[i] << 8 | p[i + 1]] = p[i + 2];
	return V_REPLY;
}

static enum verdict cmd_set_parameters(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	(void)r;
	if (n != 1)
		return V_ERROR;
	e->chip.params = p[0];
	return V_REPLY;
}

static enum verdict cmd_sam_configuration(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	(void)e;
	(void)r;
	if (n < 1 || n > 3 || p[0] < 1 || p[0] > 4)
		return V_ERROR;
	return V_REPLY;
}

static enum verdict cmd_power_down(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	(void)p;
	if (n < 1 || n > 2)
		return V_ERROR;
	/* Asleep until the next byte arrives; the reply still goes out first.
	 * The RF field goes down with it. */
	e->chip.powered_down = true;
	field_reset(e);
	r->d[r->n++] = ST_OK;
	return V_REPLY;
}

static enum verdict cmd_rf_configuration(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	/* Config item → length of its data (user manual §7.3.1). */
	static const uint8_t item_len[] = { [0x01] = 1, [0x02] = 3, [0x04] = 1, [0x05] = 3,
					    [0x0A] = 11, [0x0B] = 8, [0x0C] = 3, [0x0D] = 9 };

	(void)r;
	if (n < 1 || p[0] >= sizeof(item_len) || !item_len[p[0]] || n != 1u + item_len[p[0]])
		return V_ERROR;
	if (p[0] == 0x01) {
		e->chip.rf_on = p[1] & 0x01;
		if (!e->chip.rf_on)
			field_reset(e);         /* every card loses power: IDLE again */
	} else if (p[0] == 0x05) {
		e->chip.mxrty_passive = p[3];
	}
	return V_REPLY;
}

static enum verdict cmd_in_data_exchange(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	struct card *c;

	if (n < 1)
		return V_ERROR;
	if (p[0] < 1 || p[0] > e->sess.ntargets || !e->sess.target[p[0] - 1]) {
		r->d[r->n++] = ST_BAD_CONTEXT;
		return V_REPLY;
	}
	c = target_card(e, p[0]);
	if (!c) {                               /* taken away: the card never answers */
		r->d[r->n++] = ST_TIMEOUT;
		return V_REPLY;
	}
	r->d[r->n++] = ST_OK;
	if (c->df && n >= 2) {                  /* a DESFire card: its own answer */
		bool changed;
		uint8_t ins;

		r->n += df_command(c->df, p + 1, n - 1, r->d + r->n, &ins, &changed);
		e->cnt.apdus++;
		if (changed)
			wallet_save(e, c->df);
		if (e->fault_remove_ins >= 0 && ins == e->fault_remove_ins) {
			vlog(e, "fault remove-after %02X: the card leaves the field", ins);
			e->fault_remove_ins = -1;
			field_take_out(e, c);
		}
		if (e->fault_mute_ins >= 0 && ins == e->fault_mute_ins) {
			/* The answer to this command is the last thing the chip says. */
			vlog(e, "fault mute-after %02X: the chip stops answering after this reply", ins);
			e->fault_mute_ins = -1;
			e->mute_after_reply = true;
		}
	} else if (n >= 3 && p[1] == 0x30) {    /* READ: what the Ultralight ping sends */
		card_read16(c, p[2], r->d + r->n);
		r->n += 16;
	} else if (c->sak & SAK_ISO14443_4) {   /* any APDU: "9000" */
		r->d[r->n++] = 0x90;
		r->d[r->n++] = 0x00;
	}
	return V_REPLY;
}

static enum verdict cmd_in_communicate_thru(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	const struct card *c = current_card(e);

	/* Only the ISO-DEP ping gets an answer: R(NAK) → R(ACK). nfc-list's
	 * type B / iClass / barcode probes must see "no card answered". */
	if (c && (c->sak & SAK_ISO14443_4) && n == 1 && (p[0] & 0xFE) == 0xB2) {
		r->d[r->n++] = ST_OK;
		r->d[r->n++] = 0xA3;
		return V_REPLY;
	}
	r->d[r->n++] = ST_TIMEOUT;
	return V_REPLY;
}

/* InDeselect and InRelease send HLTA to a MIFARE card and S(DESELECT) to an
 * ISO-DEP one: either way the card is HALTed and no longer answers REQA.
 * Tg 0 means every target. */
static enum verdict cmd_in_deselect_release(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	if (n != 1)
		return V_ERROR;
	for (size_t tg = 1; tg <= e->sess.ntargets; tg++) {
		struct card *c = target_card(e, tg);

		if (p[0] != 0 && p[0] != tg)
			continue;
		if (c)
			c->state = CARD_HALT;
		e->sess.target[tg - 1] = 0;
	}
	r->d[r->n++] = ST_OK;
	return V_REPLY;
}

static enum verdict cmd_in_list_passive_target(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	struct pending *pd = &e->sess.pending;

	if (n < 2 || p[0] < 1 || p[0] > 2 || p[1] > 0x08)
		return V_ERROR;
	if (p[1] == 0x00 && n - 2 > sizeof(pd->init))
		return V_ERROR;
	activation_begin(e);
	*pd = (struct pending){ .kind = PENDING_LIST, .brty = p[1], .max_tg = p[0] };
	if (p[1] == 0x00) {
		pd->init_len = n - 2;
		memcpy(pd->init, p + 2, pd->init_len);
	}
	pending_try(e, false);
	if (pd->kind == PENDING_NONE)
		return V_PARK;                  /* already answered */
	if (e->chip.mxrty_passive == 0xFF)
		return V_PARK;                  /* retries forever: until a card shows up */
	pd->kind = PENDING_NONE;
	r->d[r->n++] = 0x00;                    /* NbTg 0 */
	return V_REPLY;
}

static enum verdict cmd_in_auto_poll(struct emu *e, const uint8_t *p, size_t n, struct reply *r)
{
	struct pending *pd = &e->sess.pending;
	int64_t ms;

	(void)r;
	if (n < 3 || n - 2 > sizeof(pd->types) || p[0] == 0 || p[1] < 1 || p[1] > 0x0F)
		return V_ERROR;
	activation_begin(e);
	*pd = (struct pending){ .kind = PENDING_AUTOPOLL, .ntypes = n - 2 };
	memcpy(pd->types, p + 2, pd->ntypes);
	/* The chip polls each type for Period × 150 ms, PollNr times; 0xFF is
	 * endless. --poll-period shrinks the 150 ms so tests need not wait. */
	ms = (int64_t)p[0] * p[1] * e->opt.poll_period_ms * (int64_t)pd->ntypes;
	pd->deadline_ns = p[0] == 0xFF ? 0 : now_ns() + ms * NS_PER_MS;
	pending_try(e, false);
	return V_PARK;
}

static const struct command {
	uint8_t code;
	const char *name;
	cmd_fn run;
} commands[] = {
	{ 0x00, "Diagnose", cmd_diagnose },
	{ 0x02, "GetFirmwareVersion", cmd_firmware },
	{ 0x06, "ReadRegister", cmd_read_register },
	{ 0x08, "WriteRegister", cmd_write_register },
	{ 0x12, "SetParameters", cmd_set_parameters },
	{ 0x14, "SAMConfiguration", cmd_sam_configuration },
	{ 0x16, "PowerDown", cmd_power_down },
	{ 0x32, "RFConfiguration", cmd_rf_configuration },
	{ 0x40, "InDataExchange", cmd_in_data_exchange },
	{ 0x42, "InCommunicateThru", cmd_in_communicate_thru },
	{ 0x44, "InDeselect", cmd_in_deselect_release },
	{ 0x4A, "InListPassiveTarget", cmd_in_list_passive_target },
	{ 0x52, "InRelease", cmd_in_deselect_release },
	{ 0x60, "InAutoPoll", cmd_in_auto_poll },
};

static const struct command *command_find(uint8_t code)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].code == code)
			return &commands[i];
	return NULL;
}

/* ---- input: frames from the host ----------------------------------------- */

static void on_host_frame(struct emu *e, const uint8_t *body, size_t len)
{
	const struct command *cmd;
	struct reply r = { .n = 0 };
	enum verdict v;

	e->cnt.rx_frames++;
	log_bytes(e, "rx", body, len);
	/* A new command aborts whatever the chip was doing. */
	e->sess.pending.kind = PENDING_NONE;
	txq_drop_unstarted(&e->txq);
	cmd = (len >= 2 && body[0] == 0xD4) ? command_find(body[1]) : NULL;
	send_ack(e);
	if (!cmd) {
		vlog(e, "unknown or malformed command: error frame");
		send_error_frame(e);
		return;
	}
	v = cmd->run(e, body + 2, len - 2, &r);
	if (v == V_REPLY)
		send_reply(e, (uint8_t)(body[1] + 1), r.d, r.n);
	else if (v == V_ERROR) {
		vlog(e, "%s: bad parameters, error frame", cmd->name);
		send_error_frame(e);
	}
	if (e->mute_after_reply) {
		e->mute_after_reply = false;
		e->fault_mute = true;
	}
}

static void rx_consume(struct session *s, size_t n)
{
	memmove(s->rx, s->rx + n, s->rx_len - n);
	s->rx_len -= n;
	s->rx_stall_ns = 0;
}

/* With 00 FF at rx[0]: 1 = a frame was handled, 0 = need more bytes,
 * -1 = not a frame after all (bad length or checksum). */
static int rx_take_frame(struct emu *e)
{
	struct session *s = &e->sess;
	const uint8_t *b = s->rx;
	uint8_t body[FRAME_BODY_MAX];
	size_t hdr, len;
	uint8_t sum = 0;

	if (s->rx_len < 4)
		return 0;
	if (b[2] == 0x00 && b[3] == 0xFF) {     /* ACK: the host aborts the command */
		rx_consume(s, 4);
		e->cnt.rx_acks++;
		vlog(e, "rx ACK: pending %s dropped", pending_name(s->pending.kind));
		s->pending.kind = PENDING_NONE;
		txq_drop_unstarted(&e->txq);
		return 1;
	}
	if (b[2] == 0xFF && b[3] == 0x00) {     /* NACK: say the last thing again */
		rx_consume(s, 4);
		e->cnt.rx_nacks++;
		vlog(e, "rx NACK: %s", s->last_len ? "resending last frame" : "nothing to resend");
		if (s->last_len && !e->fault_mute)
			txq_push(e, s->last, s->last_len, 0);
		return 1;
	}
	if (b[2] == 0xFF && b[3] == 0xFF) {
		if (s->rx_len < 7)
			return 0;
		if ((uint8_t)(b[4] + b[5] + b[6]) != 0)
			return -1;
		hdr = 7;
		len = (size_t)b[4] << 8 | b[5];
	} else {
		if ((uint8_t)(b[2] + b[3]) != 0)
			return -1;
		hdr = 4;
		len = b[2];
	}
	if (len == 0 || len > FRAME_BODY_MAX)
		return -1;
	if (s->rx_len < hdr + len + 1)
		return 0;
	for (size_t i = 0; i <= len; i++)
		sum = (uint8_t)(sum + b[hdr + i]);
	if (sum != 0)
		return -1;
	memcpy(body, b + hdr, len);
	rx_consume(s, hdr + len + 1);           /* a trailing postamble is skipped as noise */
	on_host_frame(e, body, len);
	return 1;
}

static void rx_skip(struct emu *e, size_t n)
{
	/* Preambles, postambles and the wake-up sequence are expected filler. */
	for (size_t i = 0; i < n; i++)
		if (e->sess.rx[i] != 0x00 && e->sess.rx[i] != 0x55)
			e->cnt.rx_noise++;
	rx_consume(&e->sess, n);
}

/* Hunts for 00 FF and parses from there. Whatever precedes a start code — the
 * wake-up preamble 55 55 00…, postambles, line noise — is skipped. A bad
 * header or checksum costs only its start code: a real frame hidden behind
 * it is found on the next round. */
static void rx_process(struct emu *e, int64_t now)
{
	struct session *s = &e->sess;

	for (;;) {
		size_t i = 0;
		int r;

		while (i + 1 < s->rx_len && !(s->rx[i] == 0x00 && s->rx[i + 1] == 0xFF))
			i++;
		if (i + 1 >= s->rx_len) {
			/* Keep a trailing 00: it may be the first half of 00 FF. */
			rx_skip(e, s->rx_len - (s->rx_len && s->rx[s->rx_len - 1] == 0x00));
			return;
		}
		rx_skip(e, i);
		r = rx_take_frame(e);
		if (r == 0) {
			if (!s->rx_stall_ns)
				s->rx_stall_ns = now + RX_STALL_NS;
			return;
		}
		if (r < 0) {
			e->cnt.rx_bad++;
			vlog(e, "rx bad frame header or checksum: resyncing");
			rx_consume(s, 2);
		}
	}
}

/* ---- the pseudo-terminal ------------------------------------------------- */

static void session_reset(struct emu *e)
{
	memset(&e->sess, 0, sizeof(e->sess));
	txq_clear(&e->txq);
}

static void chip_reset(struct emu *e)
{
	memset(&e->chip, 0, sizeof(e->chip));
	e->chip.mxrty_passive = 0xFF;
	e->chip.params = 0x14;
	session_reset(e);
}

/* Points link_path at the slave atomically, so a client never sees it missing. */
static int link_update(const char *link_path, const char *target)
{
	char tmp[PATH_MAX];
	struct stat st;

	if (lstat(link_path, &st) == 0 && !S_ISLNK(st.st_mode))
		return -EEXIST;                 /* never clobber a real file */
	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", link_path, (long)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	if (symlink(target, tmp) < 0)
		return -errno;
	if (rename(tmp, link_path) < 0) {
		int err = -errno;

		unlink(tmp);
		return err;
	}
	return 0;
}

static void link_remove(const struct emu *e)
{
	char target[PATH_MAX];
	ssize_t n;

	if (!e->opt.link_path)
		return;
	n = readlink(e->opt.link_path, target, sizeof(target) - 1);
	if (n < 0)
		return;
	target[n] = '\0';
	if (!strcmp(target, e->slave_path))
		unlink(e->opt.link_path);
}

static int slave_open(struct emu *e)
{
	int fd = open(e->slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	e->slave_fd = fd;
	return 0;
}

static int pty_open(struct emu *e)
{
	struct termios tio;
	int r;

	e->master_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (e->master_fd < 0)
		return -errno;
	if (grantpt(e->master_fd) < 0 || unlockpt(e->master_fd) < 0) {
		r = -errno;
		goto fail_master;
	}
	r = ptsname_r(e->master_fd, e->slave_path, sizeof(e->slave_path));
	if (r != 0) {
		r = -r;
		goto fail_master;
	}
	/* We hold the slave open while no client does: otherwise the master
	 * reports POLLHUP without pause. Raw mode is set here because libnfc
	 * restores the termios it found when it closes the port. */
	r = slave_open(e);
	if (r < 0)
		goto fail_master;
	if (tcgetattr(e->slave_fd, &tio) < 0) {
		r = -errno;
		goto fail_slave;
	}
	cfmakeraw(&tio);
	cfsetspeed(&tio, B115200);
	if (tcsetattr(e->slave_fd, TCSANOW, &tio) < 0) {
		r = -errno;
		goto fail_slave;
	}
	if (e->opt.link_path) {
		r = link_update(e->opt.link_path, e->slave_path);
		if (r < 0)
			goto fail_slave;
	}
	e->pty_up = true;
	e->backoff_ns = 0;
	return 0;

fail_slave:
	close(e->slave_fd);
	e->slave_fd = -1;
fail_master:
	close(e->master_fd);
	e->master_fd = -1;
	e->slave_path[0] = '\0';
	return r;
}

static void pty_close(struct emu *e)
{
	if (!e->pty_up)
		return;
	link_remove(e);
	if (e->slave_fd >= 0)
		close(e->slave_fd);
	close(e->master_fd);
	e->slave_fd = e->master_fd = -1;
	e->slave_path[0] = '\0';
	e->pty_up = false;
}

/* No process holds the slave any more: forget the session (half frames, the
 * parked command, the selected target, queued replies) and hold the slave
 * ourselves again, so POLLHUP stops until the next client has come and gone. */
static void on_client_gone(struct emu *e, int64_t now)
{
	if (e->sess.client_seen)
		vlog(e, "client closed the port: session reset");
	session_reset(e);
	if (e->slave_fd < 0 && slave_open(e) < 0)
		fprintf(stderr, "pn532-emu: reopening %s: %s\n", e->slave_path, strerror(errno));
	e->backoff_ns = now + HUP_BACKOFF_NS;
}

static void master_read(struct emu *e, int64_t now)
{
	struct session *s = &e->sess;

	for (;;) {
		ssize_t n;

		if (s->rx_len == sizeof(s->rx))         /* cannot happen: rx_process */
			rx_skip(e, s->rx_len);          /* keeps < 300 bytes; be sure */
		n = read(e->master_fd, s->rx + s->rx_len, sizeof(s->rx) - s->rx_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {                   /* EIO: the last slave fd was closed */
			on_client_gone(e, now);
			return;
		}
		if (!s->client_seen) {
			/* Only a client writes into the slave. From now on let the
			 * slave close with it, so its POLLHUP tells us it left. */
			s->client_seen = true;
			e->cnt.sessions++;
			vlog(e, "client connected");
			if (e->slave_fd >= 0) {
				close(e->slave_fd);
				e->slave_fd = -1;
			}
		}
		e->chip.powered_down = false;   /* any byte wakes the HSU up */
		s->rx_len += (size_t)n;
		rx_process(e, now);
	}
}

/* ---- control socket ------------------------------------------------------ */

static int parse_hex(const char *s, uint8_t *out, size_t max, size_t *ret_len)
{
	size_t n = strlen(s);

	if (n == 0 || n % 2)
		return -EINVAL;
	if (n / 2 > max)
		return -E2BIG;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		char byte[3] = { s[2 * i], s[2 * i + 1], '\0' };

		out[i] = (uint8_t)strtoul(byte, NULL, 16);
	}
	*ret_len = n / 2;
	return 0;
}

static int parse_ms(const char *s, int max, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* Fills in what `insert`/`add` did not say. Defaults: 4-byte UID → MIFARE
 * Classic 1K, 7-byte → Ultralight, and an ATS makes it an ISO14443-4 card. */
static int card_finish(struct card *c, bool have_atqa, bool have_sak, char *out, size_t outsz)
{
	if (c->want_random_uid && !c->want_desfire) {
		snprintf(out, outsz, "error random_uid needs desfire");
		return -EINVAL;
	}
	if (c->want_desfire) {
		/* A DESFire EV1: 7-byte UID, ATQA 0344, SAK 20, its ATS. */
		if (c->uid_len != DF_UID_LEN) {
			snprintf(out, outsz, "error a DESFire card has a 7-byte uid");
			return -EINVAL;
		}
		if (!have_atqa)
			memcpy(c->atqa, desfire_atqa, 2);
		if (!have_sak)
			c->sak = SAK_ISO14443_4;
		have_atqa = have_sak = true;
	}
	if (!have_atqa) {
		c->atqa[0] = 0x00;
		c->atqa[1] = c->uid_len == 4 ? 0x04 : 0x44;
	}
	if (!have_sak)
		c->sak = c->ats_len ? SAK_ISO14443_4 : c->uid_len == 4 ? 0x08 : 0x00;
	if (c->ats_len && !(c->sak & SAK_ISO14443_4)) {
		snprintf(out, outsz, "error ats needs a sak with bit 0x20 (ISO14443-4)");
		return -EINVAL;
	}
	if ((c->sak & SAK_ISO14443_4) && !c->ats_len) {
		memcpy(c->ats, default_ats, sizeof(default_ats));
		c->ats_len = sizeof(default_ats);
	}
	return 0;
}

static bool same_uid(const struct card *a, const uint8_t *uid, size_t uid_len)
{
	if (a->df && uid_len == DF_UID_LEN && !memcmp(df_uid(a->df), uid, DF_UID_LEN))
		return true;
	return a->uid_len == uid_len && !memcmp(a->uid, uid, uid_len);
}

/* CARD [CARD]... after the verb, CARD = uid=HEX [atqa=HEX4] [sak=HEX2]
 * [ats=HEX]: every uid= starts a card. Returns how many cards were parsed
 * into cards[] (ids and states unset), or -EINVAL with the error in out. */
static int parse_cards(char **tok, size_t ntok, struct card *cards, char *out, size_t outsz)
{
	bool have_atqa = false, have_sak = false;
	struct card *c = NULL;
	size_t n = 0, len;

	for (size_t i = 1; i < ntok; i++) {
		char *val = strchr(tok[i], '=');
		uint8_t buf[ATS_MAX];

		if (c && !strcmp(tok[i], "desfire") && !c->want_desfire) {
			c->want_desfire = true;
			continue;
		}
		if (c && !strcmp(tok[i], "random_uid") && !c->want_random_uid) {
			c->want_random_uid = true;
			continue;
		}
		if (!val) {
			snprintf(out, outsz, "error expected key=value, got '%.40s'", tok[i]);
			return -EINVAL;
		}
		*val++ = '\0';
		if (!strcmp(tok[i], "uid")) {
			if (c && card_finish(c, have_atqa, have_sak, out, outsz) < 0)
				return -EINVAL;
			if (n == CARDS_MAX) {
				snprintf(out, outsz, "error at most %d cards in the field", CARDS_MAX);
				return -EINVAL;
			}
			c = &cards[n++];
			*c = (struct card){ .state = CARD_IDLE };
			have_atqa = have_sak = false;
			if (parse_hex(val, c->uid, UID_MAX, &c->uid_len) < 0 ||
			    (c->uid_len != 4 && c->uid_len != 7 && c->uid_len != 10)) {
				snprintf(out, outsz, "error uid must be 4, 7 or 10 bytes of hex");
				return -EINVAL;
			}
			for (size_t k = 0; k + 1 < n; k++) {
				if (same_uid(&cards[k], c->uid, c->uid_len)) {
					snprintf(out, outsz, "error uid %.20s given twice", val);
					return -EINVAL;
				}
			}
		} else if (!c) {
			snprintf(out, outsz, "error '%.20s' before any uid=", tok[i]);
			return -EINVAL;
		} else if (!strcmp(tok[i], "atqa") && !have_atqa) {
			if (parse_hex(val, buf, 2, &len) < 0 || len != 2) {
				snprintf(out, outsz, "error atqa must be 2 bytes of hex");
				return -EINVAL;
			}
			memcpy(c->atqa, buf, 2);
			have_atqa = true;
		} else if (!strcmp(tok[i], "sak") && !have_sak) {
			if (parse_hex(val, buf, 1, &len) < 0) {
				snprintf(out, outsz, "error sak must be 1 byte of hex");
				return -EINVAL;
			}
			c->sak = buf[0];
			have_sak = true;
		} else if (!strcmp(tok[i], "ats") && !c->ats_len) {
			if (parse_hex(val, c->ats, ATS_MAX, &c->ats_len) < 0) {
				snprintf(out, outsz, "error ats must be 1 to %d bytes of hex (without TL)", ATS_MAX);
				return -EINVAL;
			}
		} else {
			snprintf(out, outsz, "error unknown or repeated key '%.20s'", tok[i]);
			return -EINVAL;
		}
	}
	if (!c) {
		snprintf(out, outsz, "error %s needs uid=", tok[0]);
		return -EINVAL;
	}
	if (card_finish(c, have_atqa, have_sak, out, outsz) < 0)
		return -EINVAL;
	return (int)n;
}

/* `insert CARD...`: the field holds exactly these cards afterwards (those
 * there before leave; a card inserted again is a new presentation). `add
 * CARD...`: these cards enter the field next to those already in it. Cards
 * given together enter together, in the order given. */
static void ctl_insert(struct emu *e, char **tok, size_t ntok, bool replace, char *out, size_t outsz)
{
	struct card cards[CARDS_MAX];
	int n = parse_cards(tok, ntok, cards, out, outsz);
	size_t k;

	if (n < 0)
		return;
	if (replace)
		e->field.n = 0;
	if (e->field.n + (size_t)n > CARDS_MAX) {
		snprintf(out, outsz, "error at most %d cards in the field", CARDS_MAX);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (cards[i].want_desfire) {
			/* The same card as last time it was inserted, or a new one. */
			cards[i].df = wallet_get(e, cards[i].uid, out, outsz);
			if (!cards[i].df)
				return;
			if (cards[i].want_random_uid && !df_random_uid(cards[i].df)) {
				df_set_random_uid(cards[i].df, true);
				wallet_save(e, cards[i].df);
			}
		}
		for (size_t j = 0; j < e->field.n; j++) {
			if (same_uid(&e->field.cards[j], cards[i].uid, cards[i].uid_len)) {
				char uid[2 * UID_MAX + 1];

				hex_str(cards[i].uid, cards[i].uid_len, uid, sizeof(uid), false);
				snprintf(out, outsz, "error uid %s is already in the field", uid);
				return;
			}
		}
	}
	k = (size_t)snprintf(out, outsz, "ok %s", replace ? "inserted" : "added");
	for (int i = 0; i < n; i++) {
		struct card *c = &e->field.cards[e->field.n++];
		char uid[2 * UID_MAX + 1], ats[2 * ATS_MAX + 1];

		*c = cards[i];
		c->id = ++e->field.last_id;     /* no target refers to it yet */
		card_power_up(c);               /* it enters the field: powered */
		hex_str(c->uid, c->uid_len, uid, sizeof(uid), false);
		hex_str(c->ats, c->ats_len, ats, sizeof(ats), false);
		if (k < outsz)
			k += (size_t)snprintf(out + k, outsz - k, " uid=%s atqa=%02X%02X sak=%02X ats=%s", uid,
					      c->atqa[0], c->atqa[1], c->sak, c->ats_len ? ats : "-");
	}
	vlog(e, "card %s", out + 3);
	if (e->sess.pending.kind != PENDING_NONE) {
		enum pending_kind kind = e->sess.pending.kind;

		pending_try(e, false);
		if (e->sess.pending.kind == PENDING_NONE)
			vlog(e, "parked %s answered", pending_name(kind));
	}
}

/* `remove`: every card leaves the field. `remove uid=HEX...`: those cards
 * leave, the others stay (and keep their state). */
static void ctl_remove(struct emu *e, char **tok, size_t ntok, char *out, size_t outsz)
{
	bool leaving[CARDS_MAX] = { false };
	size_t k, kept = 0;

	if (ntok == 1) {
		snprintf(out, outsz, "ok removed%s", e->field.n ? "" : " (no card)");
		e->field.n = 0;
		vlog(e, "every card removed");
		return;
	}
	for (size_t i = 1; i < ntok; i++) {
		uint8_t uid[UID_MAX];
		size_t len, j;

		if (strncmp(tok[i], "uid=", 4) || parse_hex(tok[i] + 4, uid, UID_MAX, &len) < 0) {
			snprintf(out, outsz, "error usage: remove [uid=HEX]...");
			return;
		}
		for (j = 0; j < e->field.n && !same_uid(&e->field.cards[j], uid, len); j++)
			;
		if (j == e->field.n) {
			snprintf(out, outsz, "error no card %.24s in the field", tok[i]);
			return;
		}
		leaving[j] = true;
	}
	k = (size_t)snprintf(out, outsz, "ok removed");
	for (size_t j = 0; j < e->field.n; j++) {
		if (leaving[j]) {
			char uid[2 * UID_MAX + 1];

			hex_str(e->field.cards[j].uid, e->field.cards[j].uid_len, uid, sizeof(uid), false);
			if (k < outsz)
				k += (size_t)snprintf(out + k, outsz - k, " uid=%s", uid);
		} else {
			e->field.cards[kept++] = e->field.cards[j];
		}
	}
	e->field.n = kept;
	vlog(e, "%s", out + 3);
}

static const char *card_state_name(enum card_state s)
{
	return s == CARD_ACTIVE ? "active" : s == CARD_HALT ? "halt" : "idle";
}

/* card/atqa/sak/ats describe the first card in the field (as before there
 * could be several); field= lists every card as UID:state in field order. */
static void ctl_status(struct emu *e, char *out, size_t outsz)
{
	char uid[2 * UID_MAX + 1] = "none", ats[2 * ATS_MAX + 1] = "-", atqa[5] = "-", sak[3] = "-";
	char field[CARDS_MAX * (2 * UID_MAX + 8) + 1] = "none";
	char desfire[200] = "-";
	const char *fault = e->fault_mute ? "mute" : e->fault_drop ? "drop" : e->fault_garbage ? "garbage" : "none";
	size_t k = 0;

	if (e->field.n) {
		const struct card *c = &e->field.cards[0];

		hex_str(c->uid, c->uid_len, uid, sizeof(uid), false);
		hex_str(c->atqa, 2, atqa, sizeof(atqa), false);
		hex_str(&c->sak, 1, sak, sizeof(sak), false);
		if (c->ats_len)
			hex_str(c->ats, c->ats_len, ats, sizeof(ats), false);
		if (c->df) {
			char real[2 * DF_UID_LEN + 1], what[160];

			hex_str(df_uid(c->df), DF_UID_LEN, real, sizeof(real), false);
			df_describe(c->df, what, sizeof(what));
			snprintf(desfire, sizeof(desfire), "%s,%s", real, what);
			for (char *q = desfire; *q; q++)
				if (*q == ' ')
					*q = ',';
		}
	}
	for (size_t i = 0; i < e->field.n; i++) {
		char u[2 * UID_MAX + 1];

		hex_str(e->field.cards[i].uid, e->field.cards[i].uid_len, u, sizeof(u), false);
		k += (size_t)snprintf(field + k, sizeof(field) - k, "%s%s:%s", i ? "," : "", u,
				      card_state_name(e->field.cards[i].state));
	}
	snprintf(out, outsz,
		 "ok pty=%s up=%d client=%d card=%s atqa=%s sak=%s ats=%s desfire=%s selected=%d cards=%zu field=%s "
		 "targets=%zu rf=%d power=%s mxrty=%02X params=%02X pending=%s fault=%s rx_frames=%lu "
		 "tx_frames=%lu rx_acks=%lu rx_nacks=%lu rx_bad=%lu rx_noise=%lu tx_suppressed=%lu "
		 "sessions=%lu hangups=%lu apdus=%lu autopolled=%lu",
		 e->pty_up ? e->slave_path : "none", e->pty_up, e->sess.client_seen, uid, atqa, sak, ats,
		 desfire, target_alive(e), e->field.n, field, targets_alive(e), e->chip.rf_on,
		 e->chip.powered_down ? "down" : "normal", e->chip.mxrty_passive, e->chip.params,
		 pending_name(e->sess.pending.kind), fault, e->cnt.rx_frames, e->cnt.tx_frames,
		 e->cnt.rx_acks, e->cnt.rx_nacks, e->cnt.rx_bad, e->cnt.rx_noise, e->cnt.tx_suppressed,
		 e->cnt.sessions, e->cnt.hangups, e->cnt.apdus, e->cnt.autopolled);
}

/* `fault hangup [MS]` unplugs the reader: the master is closed (a client's
 * reads and writes on the slave fail), the --link symlink is removed, and MS
 * later (default 500) a new pty appears, the symlink points at it and its
 * path is printed on stdout. The cards in the field stay. */
static void ctl_fault(struct emu *e, char **tok, size_t ntok, char *out, size_t outsz)
{
	int ms = HANGUP_DEFAULT_MS;

	bool after = ntok >= 2 && (!strcmp(tok[1], "remove-after") || !strcmp(tok[1], "mute-after"));

	if (ntok < 2 || (ntok > 2 && strcmp(tok[1], "hangup") && !after) || ntok > 3 ||
	    (after && ntok != 3)) {
		snprintf(out, outsz, "error usage: fault drop|garbage|mute|none|hangup [MS]|"
			 "remove-after INS|mute-after INS");
		return;
	}
	if (after) {
		uint8_t ins;
		size_t len;

		if (parse_hex(tok[2], &ins, 1, &len) < 0) {
			snprintf(out, outsz, "error %s takes a DESFire command byte in hex (AA)", tok[1]);
			return;
		}
		if (!strcmp(tok[1], "remove-after"))
			e->fault_remove_ins = ins;
		else
			e->fault_mute_ins = ins;
		snprintf(out, outsz, "ok fault %s %02X", tok[1], ins);
		vlog(e, "%s", out + 3);
		return;
	}
	if (!strcmp(tok[1], "drop")) {
		e->fault_drop = true;
	} else if (!strcmp(tok[1], "garbage")) {
		e->fault_garbage = true;
	} else if (!strcmp(tok[1], "mute")) {
		e->fault_mute = true;
	} else if (!strcmp(tok[1], "none")) {
		e->fault_drop = e->fault_garbage = e->fault_mute = false;
		e->fault_remove_ins = e->fault_mute_ins = -1;
	} else if (!strcmp(tok[1], "hangup")) {
		if (ntok == 3 && parse_ms(tok[2], HANGUP_MAX_MS, &ms) < 0) {
			snprintf(out, outsz, "error hangup delay must be 0..%d ms", HANGUP_MAX_MS);
			return;
		}
		if (!e->pty_up) {
			snprintf(out, outsz, "error pty is already down");
			return;
		}
		pty_close(e);
		session_reset(e);
		e->cnt.hangups++;
		e->reopen_ns = now_ns() + ms * NS_PER_MS;
		snprintf(out, outsz, "ok fault hangup reopen_ms=%d", ms);
		vlog(e, "%s", out + 3);
		return;
	} else {
		snprintf(out, outsz, "error unknown fault '%.20s'", tok[1]);
		return;
	}
	snprintf(out, outsz, "ok fault %s", tok[1]);
	vlog(e, "%s", out + 3);
}

/* `desfire uid=HEX`: what the wallet's card holds. `desfire-forge uid=HEX
 * aid=HEX6 key=HEX32 [keys=N]`: an AES application whose keys are all key (a
 * forger's card). `desfire-rnd uid=HEX HEX`: the card's next random bytes.
 * `desfire-apdu uid=HEX HEX`: one command straight to the card, bypassing the
 * chip, for tests that check the card byte for byte. */
static void ctl_desfire(struct emu *e, char **tok, size_t ntok, char *out, size_t outsz)
{
	uint8_t uid[DF_UID_LEN], buf[256], key[16], answer[DF_ANSWER_MAX];
	size_t len, alen;
	struct df_card *c;

	if (ntok < 2 || strncmp(tok[1], "uid=", 4) || parse_hex(tok[1] + 4, uid, DF_UID_LEN, &len) < 0 ||
	    len != DF_UID_LEN) {
		snprintf(out, outsz, "error usage: %s uid=HEX14 ...", tok[0]);
		return;
	}
	if (!(c = wallet_get(e, uid, out, outsz)))
		return;
	if (!strcmp(tok[0], "desfire") && ntok == 2) {
		char what[160];

		df_describe(c, what, sizeof(what));
		snprintf(out, outsz, "ok %s", what);
	} else if (!strcmp(tok[0], "desfire-forge") && (ntok == 4 || ntok == 5)) {
		unsigned long aid, keys = 3;
		char *end;
		int r;

		if (strncmp(tok[2], "aid=", 4) || strlen(tok[2]) != 10 || strncmp(tok[3], "key=", 4) ||
		    parse_hex(tok[3] + 4, key, 16, &len) < 0 || len != 16 ||
		    (ntok == 5 && (strncmp(tok[4], "keys=", 5) || (keys = strtoul(tok[4] + 5, &end, 10)) < 1 ||
				   keys > 14 || *end))) {
			snprintf(out, outsz, "error usage: desfire-forge uid=HEX14 aid=HEX6 key=HEX32 [keys=1..14]");
			return;
		}
		aid = strtoul(tok[2] + 4, &end, 16);
		if (*end || aid == 0) {
			snprintf(out, outsz, "error aid must be 6 hex digits, not 000000");
			return;
		}
		r = df_forge_app(c, (uint32_t)aid, key, (unsigned)keys);
		if (r < 0) {
			snprintf(out, outsz, "error cannot forge: %s", strerror(-r));
			return;
		}
		wallet_save(e, c);
		snprintf(out, outsz, "ok forged %06lX", aid);
	} else if (!strcmp(tok[0], "desfire-rnd") && ntok == 3 && parse_hex(tok[2], buf, 64, &len) == 0) {
		df_set_next_random(c, buf, len);
		snprintf(out, outsz, "ok %zu random bytes queued", len);
	} else if (!strcmp(tok[0], "desfire-apdu") && ntok == 3 && parse_hex(tok[2], buf, sizeof(buf), &len) == 0) {
		char hex[2 * DF_ANSWER_MAX + 1];
		bool changed;
		uint8_t ins;

		alen = df_command(c, buf, len, answer, &ins, &changed);
		if (changed)
			wallet_save(e, c);
		hex_str(answer, alen, hex, sizeof(hex), false);
		snprintf(out, outsz, "ok %s", hex);
	} else {
		snprintf(out, outsz, "error usage: desfire|desfire-forge|desfire-rnd|desfire-apdu uid=HEX14 ...");
	}
}

static void ctl_execute(struct emu *e, char *line, char *out, size_t outsz)
{
	char *tok[CTL_TOKENS_MAX + 1];
	size_t ntok = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (ntok == CTL_TOKENS_MAX) {
			snprintf(out, outsz, "error too many words");
			return;
		}
		tok[ntok++] = t;
	}
	if (ntok == 0)
		snprintf(out, outsz, "error empty command");
	else if (!strcmp(tok[0], "insert") || !strcmp(tok[0], "add"))
		ctl_insert(e, tok, ntok, !strcmp(tok[0], "insert"), out, outsz);
	else if (!strcmp(tok[0], "remove"))
		ctl_remove(e, tok, ntok, out, outsz);
	else if (!strcmp(tok[0], "status") && ntok == 1)
		ctl_status(e, out, outsz);
	else if (!strcmp(tok[0], "fault"))
		ctl_fault(e, tok, ntok, out, outsz);
	else if (!strncmp(tok[0], "desfire", 7))
		ctl_desfire(e, tok, ntok, out, outsz);
	else if (!strcmp(tok[0], "quit") && ntok == 1) {
		snprintf(out, outsz, "ok bye");
		e->quit = true;
	} else
		snprintf(out, outsz, "error unknown command or wrong arguments: '%.20s'", tok[0]);
}

static void ctl_drop(struct ctl_client *c)
{
	close(c->fd);
	c->fd = -1;
}

static void ctl_reply(struct ctl_client *c, const char *msg)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s\n", msg);

	if (n < 0 || (size_t)n >= sizeof(buf))
		n = snprintf(buf, sizeof(buf), "error reply too long\n");
	/* Replies are tiny; a client that lets them pile up is dropped. */
	if (send(c->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		ctl_drop(c);
}

static void ctl_line(struct emu *e, struct ctl_client *c, char *line)
{
	char out[1024];
	size_t n = strlen(line);

	if (n && line[n - 1] == '\r')
		line[--n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!isprint((unsigned char)line[i]) && line[i] != '\t') {
			ctl_reply(c, "error non-printable character");
			return;
		}
	}
	ctl_execute(e, line, out, sizeof(out));
	ctl_reply(c, out);
}

static void ctl_read(struct emu *e, struct ctl_client *c)
{
	char buf[512];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ctl_drop(c);
		return;
	}
	for (ssize_t i = 0; i < n && c->fd >= 0; i++) {
		if (buf[i] == '\n') {
			if (c->overlong)
				ctl_reply(c, "error line too long");
			else if (memchr(c->line, '\0', c->len))
				ctl_reply(c, "error non-printable character");
			else {
				c->line[c->len] = '\0';
				ctl_line(e, c, c->line);
			}
			c->len = 0;
			c->overlong = false;
		} else if (c->len == CTL_LINE_MAX) {
			c->overlong = true;
		} else if (!c->overlong) {
			c->line[c->len++] = buf[i];
		}
	}
}

static void ctl_accept(struct emu *e)
{
	int fd = accept4(e->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	for (size_t i = 0; i < CTL_CLIENTS_MAX; i++) {
		if (e->ctl[i].fd < 0) {
			e->ctl[i] = (struct ctl_client){ .fd = fd };
			return;
		}
	}
	(void)!send(fd, "error too many control clients\n", 31, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static int ctl_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket left by a killed emulator is stale; a live one or anything
	 * that is not a socket is someone else's. */
	if (lstat(path, &st) == 0) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;

		if (probe >= 0)
			close(probe);
		if (!S_ISSOCK(st.st_mode) || live) {
			close(fd);
			return S_ISSOCK(st.st_mode) ? -EADDRINUSE : -EEXIST;
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* ---- main loop ----------------------------------------------------------- */

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void consider(int64_t *soonest, int64_t t)
{
	if (t && (!*soonest || t < *soonest))
		*soonest = t;
}

static void run_timers(struct emu *e, int64_t now)
{
	struct session *s = &e->sess;

	if (!e->pty_up && e->reopen_ns && now >= e->reopen_ns) {
		int r = pty_open(e);

		if (r < 0) {
			fprintf(stderr, "pn532-emu: re-creating the pty: %s\n", strerror(-r));
			e->reopen_ns = now + REOPEN_RETRY_NS;
		} else {
			e->reopen_ns = 0;
			chip_reset(e);
			printf("%s\n", e->slave_path);
			fflush(stdout);
			vlog(e, "pty re-created: %s", e->slave_path);
		}
	}
	if (s->pending.kind != PENDING_NONE && s->pending.deadline_ns && now >= s->pending.deadline_ns)
		pending_try(e, true);
	if (s->rx_stall_ns && now >= s->rx_stall_ns) {
		e->cnt.rx_bad++;
		vlog(e, "rx incomplete frame timed out: resyncing");
		rx_consume(s, 2);
		rx_process(e, now);
	}
}

static int run(struct emu *e, const sigset_t *waitmask)
{
	struct pollfd pfd[2 + CTL_CLIENTS_MAX];

	while (!e->quit && !stop_signal) {
		int64_t now = now_ns(), soonest = 0;
		struct timespec ts, *tsp = NULL;
		bool poll_master = e->pty_up && now >= e->backoff_ns;
		int n;

		pfd[0] = (struct pollfd){ .fd = poll_master ? e->master_fd : -1,
					  .events = (short)(POLLIN | (e->txq.blocked ? POLLOUT : 0)) };
		pfd[1] = (struct pollfd){ .fd = e->ctl_fd, .events = POLLIN };
		for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
			pfd[2 + i] = (struct pollfd){ .fd = e->ctl[i].fd, .events = POLLIN };

		if (e->pty_up && e->txq.count && !e->txq.blocked)
			consider(&soonest, e->txq.q[e->txq.head].due_ns);
		if (e->pty_up && !poll_master)
			consider(&soonest, e->backoff_ns);
		if (e->sess.pending.kind != PENDING_NONE)
			consider(&soonest, e->sess.pending.deadline_ns);
		consider(&soonest, e->sess.rx_stall_ns);
		if (!e->pty_up)
			consider(&soonest, e->reopen_ns);
		if (soonest) {
			int64_t d = soonest > now ? soonest - now : 0;

			ts = (struct timespec){ .tv_sec = d / NS_PER_S, .tv_nsec = d % NS_PER_S };
			tsp = &ts;
		}
		n = ppoll(pfd, 2 + CTL_CLIENTS_MAX, tsp, waitmask);
		if (n < 0 && errno != EINTR)
			return -errno;
		now = now_ns();

		if (n > 0 && pfd[0].fd >= 0 && pfd[0].revents) {
			if (pfd[0].revents & POLLIN)
				master_read(e, now);
			/* Reading drained what the client wrote before it left. */
			if (e->pty_up && (pfd[0].revents & (POLLHUP | POLLERR)))
				on_client_gone(e, now);
		}
		run_timers(e, now);
		if (e->pty_up && e->txq.count && txq_flush(e, now) < 0)
			on_client_gone(e, now);
		if (n > 0 && (pfd[1].revents & POLLIN))
			ctl_accept(e);
		for (size_t i = 0; n > 0 && i < CTL_CLIENTS_MAX; i++) {
			if (pfd[2 + i].fd >= 0 && pfd[2 + i].fd == e->ctl[i].fd && pfd[2 + i].revents)
				ctl_read(e, &e->ctl[i]);
		}
		/* A control command may have queued a reply (insert answering a
		 * parked command): send it without another trip through ppoll. */
		if (e->pty_up && e->txq.count && txq_flush(e, now_ns()) < 0)
			on_client_gone(e, now);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pn532-emu [options]\n"
		"Emulates a PN532 on a pseudo-terminal for libnfc's pn532_uart driver.\n"
		"The first line on stdout is the pty slave path; use\n"
		"  LIBNFC_AUTO_SCAN=false LIBNFC_DEVICE=pn532_uart:<path> nfc-list\n"
		"\n"
		"  --link PATH         keep a symlink PATH pointing at the pty slave\n"
		"  --control PATH      unix stream socket taking one command per line\n"
		"  --baud-delay        deliver frames after their 115200-baud wire time\n"
		"  --reply-delay MS    extra delay before each reply (0..%d)\n"
		"  --poll-period MS    InAutoPoll's period unit instead of 150 ms (1..1000)\n"
		"  --cards DIR         keep each DESFire card's image in DIR/UID.desfire, so\n"
		"                      what is written to a card survives the emulator, and\n"
		"                      emulators sharing DIR share their cards\n"
		"  -v, --verbose       log frames and events to stderr\n"
		"  -h, --help          this text\n"
		"\n"
		"Control commands (reply: 'ok ...' or 'error <message>'):\n"
		"  insert CARD [CARD]...  the field holds these cards (and no other)\n"
		"  add CARD [CARD]...     these cards enter the field too (at most %d)\n"
		"        CARD = uid=HEX [atqa=HEX4] [sak=HEX2] [ats=HEX]; cards given\n"
		"        together enter together, in that order, which is the order the\n"
		"        chip selects them in. uid 4, 7 or 10 bytes; defaults: 4-byte →\n"
		"        atqa=0004 sak=08, 7/10-byte → atqa=0044 sak=00; ats (without its\n"
		"        TL byte, as nfc-list prints it) → sak=20; sak with 0x20 and no\n"
		"        ats → ats=%s\n"
		"        CARD may add the words 'desfire' (a DESFire EV1 answering\n"
		"        InDataExchange: 7-byte uid, atqa=0344 sak=20; the emulator\n"
		"        remembers each DESFire card by uid, as written to) and\n"
		"        'random_uid' (it answers anticollision with 08 and 3 random\n"
		"        bytes, new at each power-up)\n"
		"  remove [uid=HEX]...    those cards leave the field; without uid=, all\n"
		"  status | quit\n"
		"  fault drop|garbage    drop / garble the next reply (ACK still sent)\n"
		"  fault mute            send nothing at all until 'fault none'\n"
		"  fault hangup [MS]     close the pty (reader unplugged), remove --link;\n"
		"                        MS later (default %d) a new pty appears at --link\n"
		"                        and its path is printed on stdout\n"
		"  fault remove-after INS  the DESFire card answers the next command\n"
		"                        INS (hex, e.g. AA: authentication), then leaves\n"
		"  fault mute-after INS  the chip answers the next command the DESFire card\n"
		"                        answers with INS, then goes mute (as 'fault mute')\n"
		"  fault none            clear drop, garbage, mute and the -after faults\n"
		"  desfire uid=HEX       what that DESFire card holds\n"
		"  desfire-forge uid=HEX aid=HEX6 key=HEX32 [keys=N]\n"
		"                        write an AES application with all keys = key\n"
		"  desfire-rnd uid=HEX HEX   the card's next random bytes (RndB)\n"
		"  desfire-apdu uid=HEX HEX  one command straight to the card\n",
		DELAY_MAX_MS, CARDS_MAX, "7577810280", HANGUP_DEFAULT_MS);
}

static int parse_options(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "link", required_argument, NULL, 'l' },
		{ "control", required_argument, NULL, 'c' },
		{ "baud-delay", no_argument, NULL, 'b' },
		{ "reply-delay", required_argument, NULL, 'r' },
		{ "poll-period", required_argument, NULL, 'p' },
		{ "cards", required_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct options){ .poll_period_ms = 150 };
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (!*optarg || strlen(optarg) >= PATH_MAX - 32 || strchr(optarg, ':')) {
				fprintf(stderr, "pn532-emu: --link: empty, too long, or has ':' (libnfc splits on it)\n");
				return -EINVAL;
			}
			o->link_path = optarg;
			break;
		case 'c':
			o->control_path = optarg;
			break;
		case 'b':
			o->baud_delay = true;
			break;
		case 'r':
			if (parse_ms(optarg, DELAY_MAX_MS, &o->reply_delay_ms) < 0) {
				fprintf(stderr, "pn532-emu: --reply-delay: 0..%d ms\n", DELAY_MAX_MS);
				return -EINVAL;
			}
			break;
		case 'p':
			if (parse_ms(optarg, 1000, &o->poll_period_ms) < 0 || o->poll_period_ms < 1) {
				fprintf(stderr, "pn532-emu: --poll-period: 1..1000 ms\n");
				return -EINVAL;
			}
			break;
		case 'd':
			if (!*optarg) {
				fprintf(stderr, "pn532-emu: --cards: a directory\n");
				return -EINVAL;
			}
			o->cards_dir = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct emu emu;   /* 64 KiB of registers: not on the stack */
	struct emu *e = &emu;
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, waitmask;
	int r, status = EXIT_FAILURE;

	e->master_fd = e->slave_fd = e->ctl_fd = -1;
	e->fault_remove_ins = e->fault_mute_ins = -1;
	for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
		e->ctl[i].fd = -1;
	if (parse_options(&e->opt, argc, argv) < 0)
		return 2;

	/* Signals are only delivered inside ppoll, so none is lost between
	 * checking stop_signal and going to sleep. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	chip_reset(e);
	r = pty_open(e);
	if (r < 0) {
		fprintf(stderr, "pn532-emu: creating the pty%s%s: %s\n", e->opt.link_path ? " or --link " : "",
			e->opt.link_path ? e->opt.link_path : "", strerror(-r));
		goto out;
	}
	if (e->opt.control_path) {
		e->ctl_fd = ctl_listen(e->opt.control_path);
		if (e->ctl_fd < 0) {
			fprintf(stderr, "pn532-emu: --control %s: %s\n", e->opt.control_path, strerror(-e->ctl_fd));
			goto out_pty;
		}
	}
	printf("%s\n", e->slave_path);
	fflush(stdout);
	vlog(e, "pty %s ready", e->slave_path);

	r = run(e, &waitmask);
	if (r < 0)
		fprintf(stderr, "pn532-emu: ppoll: %s\n", strerror(-r));
	else
		status = EXIT_SUCCESS;
	vlog(e, "exiting (%s)", stop_signal ? strsignal(stop_signal) : "quit");

	for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
		if (e->ctl[i].fd >= 0)
			ctl_drop(&e->ctl[i]);
	if (e->ctl_fd >= 0) {
		close(e->ctl_fd);
		unlink(e->opt.control_path);
	}
out_pty:
	pty_close(e);
out:
	wallet_free(e);
	return status;
}
