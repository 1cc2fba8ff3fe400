/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* portier-reader: one NFC reader, polled through libnfc, in its own process.
 *
 * libnfc calls can block for a long time or forever (a hung PN532, an unplugged USB
 * reader), so portierd never calls libnfc itself: it starts this worker per reader and
 * reads fixed-size messages from fd 3 (reader_proto.h). The worker exits on any device
 * error; the parent restarts it with back-off. It holds no database; its only secret is the
 * DESFire master key the parent sends first thing (KEYS), with which it authenticates every
 * DESFire card that arrives and runs the parent's provisioning jobs (desfire.h).
 *
 * Debounce: a card held on the reader is one ARRIVED, and one LEFT once it has been away
 * for DEBOUNCE_MS; back before then, it is the same presentation (a different card is a new
 * one). When several
 * cards are presented together, the first one the chip selects wins: it alone is reported,
 * and its ARRIVED says how many cards answered (counted once, at arrival; see count_cards).
 *
 * Sandbox (reader_sandbox.h): descriptors other than stdio and fd 3 are closed first thing;
 * once the device is open and initialised, PR_SET_NO_NEW_PRIVS and a seccomp allow-list
 * confine the worker to polling, and a forbidden system call kills it with SIGSYS. The
 * parent reports that death and restarts the worker like any other.
 *
 * Usage: portier-reader [--sandbox-selftest] CONNSTRING POLL_MS DEBOUNCE_MS
 *        (fd 3: SOCK_SEQPACKET to parent; see usage_text)
 */
#include <errno.h>
#include <nfc/nfc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "desfire.h"
#include "reader_proto.h"
#include "reader_sandbox.h"

#define PARENT_FD 3
#define HEARTBEAT_MS 1000
/* A select that times out means the chip did not answer (with infinite select off, "no
 * card" is an immediate answer): a few in a row and the reader is considered hung. */
#define TIMEOUTS_MAX 3
/* ISO/IEC 14443-2: with the field off this long, every card has reset. */
#define FIELD_RESET_MS 5
/* The parent sends the keys right after starting us. */
#define KEYS_TIMEOUT_MS 5000

static uint32_t seq;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void send_msg(struct reader_msg *m)
{
    m->version = READER_PROTO_VERSION;
    m->seq = ++seq;
    /* The parent gone means nobody needs us: exit quietly. */
    if (send(PARENT_FD, m, sizeof(*m), MSG_NOSIGNAL) != (ssize_t)sizeof(*m))
        _exit(0);
}

static void send_text(enum reader_msg_type type, const char *text)
{
    struct reader_msg m = { .type = (uint8_t)type };
    snprintf(m.text, sizeof(m.text), "%s", text);
    send_msg(&m);
}

/* Report why we give up (text), close the device and exit. */
static _Noreturn void give_up(nfc_device *dev, nfc_context *ctx, const char *text, int status)
{
    send_text(READER_MSG_ERROR, text);
    if (dev)
        nfc_close(dev);
    if (ctx)
        nfc_exit(ctx);
    exit(status);
}

static _Noreturn void fail(nfc_device *dev, nfc_context *ctx, const char *what)
{
    char text[READER_MSG_TEXT_MAX];
    snprintf(text, sizeof(text), "%s: %s", what, dev ? nfc_strerror(dev) : "cannot open device");
    give_up(dev, ctx, text, 2);
}

static void card_msg(struct reader_msg *m, enum reader_msg_type type, const nfc_target *t,
                     int targets)
{
    const nfc_iso14443a_info *a = &t->nti.nai;
    memset(m, 0, sizeof(*m));
    m->type = (uint8_t)type;
    m->uid_len = (uint8_t)(a->szUidLen <= READER_MSG_UID_MAX ? a->szUidLen : 0);
    memcpy(m->uid, a->abtUid, m->uid_len);
    m->atqa = (uint16_t)(a->abtAtqa[0] << 8 | a->abtAtqa[1]);
    m->sak = a->btSak;
    m->ats_len = (uint8_t)(a->szAtsLen <= READER_MSG_ATS_MAX ? a->szAtsLen : READER_MSG_ATS_MAX);
    memcpy(m->ats, a->abtAts, m->ats_len);
    m->targets = (uint8_t)targets;
}

/* ARRIVED after DESFire authentication: the card's real UID when it proved its key. */
static void card_msg_auth(struct reader_msg *m, const nfc_target *t, int targets,
                          const struct desfire_tap *tap)
{
    card_msg(m, READER_MSG_ARRIVED, t, targets);
    m->auth = (uint8_t)tap->auth;
    if (tap->auth == READER_AUTH_OK) {
        memset(m->uid, 0, sizeof(m->uid));
        memcpy(m->uid, tap->uid, READER_DESFIRE_UID_LEN);
        m->uid_len = READER_DESFIRE_UID_LEN;
        m->app = (uint8_t)tap->app;
        m->key_version = tap->key_version;
    }
    snprintf(m->text, sizeof(m->text), "%s", tap->why);
}

/* Commands from the parent (PROVISION, DEPROVISION, CANCEL), without waiting. A job that
 * replaced another answers the old one at once. A malformed command is the parent's bug:
 * say so and stop. */
static void take_commands(uint64_t now)
{
    const char *why = "";
    int r = desfire_commands_take(PARENT_FD, now, send_msg, &why);

    if (r == -EBADMSG) {
        send_text(READER_MSG_ERROR, why);
        exit(2);
    }
    if (r < 0)
        _exit(0);           /* the parent is gone */
}

static bool same_card(const nfc_target *a, const nfc_target *b)
{
    return a->nti.nai.szUidLen == b->nti.nai.szUidLen &&
           memcmp(a->nti.nai.abtUid, b->nti.nai.abtUid, a->nti.nai.szUidLen) == 0;
}

/* A poll has just selected *t, and it is a new presentation: how many cards are in the
 * field? 1 or 2, or a libnfc error.
 *
 * The chip answers a select with the first card its anticollision picks, so finding a
 * second one means keeping the first from answering: InDeselect halts it (HLTA, or
 * S(DESELECT) for ISO-DEP) and a second select, a REQA, sees only the others. Two commands
 * (~6 ms at 115200 baud), paid once per arrival, never per poll. t is left halted, or gone:
 * reselect() takes it back. */
static int count_cards(nfc_device *dev, nfc_modulation nm, const nfc_target *t)
{
    nfc_target other;
    int res;

    res = nfc_initiator_deselect_target(dev);
    if (res < 0 && res != NFC_ERFTRANS)
        return res;
    res = nfc_initiator_select_passive_target(dev, nm, NULL, 0, &other);
    if (res < 0 && res != NFC_ETIMEOUT && res != NFC_ERFTRANS)
        return res;
    /* The same UID again would mean a chip that wakes halted cards (WUPA): the count then
     * cannot see past the first card. */
    return res > 0 && !same_card(&other, t) ? 2 : 1;
}

/* Select t again after count_cards(), for its presence checks. A halted card answers only
 * a WUPA, and libnfc's select sends a REQA: the field goes off and on, which resets every
 * card, and t is selected by its UID (InListPassiveTarget with the UID as initiator data),
 * so the other card cannot take its place. On success *ret_held is the target libnfc now
 * holds, which target_is_present() wants binary-equal. If t has gone meanwhile, *ret_held is
 * left alone and the next presence check finds it gone, as it would have anyway. 0 or a
 * libnfc error. */
static int reselect(nfc_device *dev, nfc_modulation nm, const nfc_target *t, nfc_target *ret_held)
{
    nfc_target again;
    int res;

    if ((res = nfc_device_set_property_bool(dev, NP_ACTIVATE_FIELD, false)) < 0)
        return res;
    usleep(FIELD_RESET_MS * 1000u);
    if ((res = nfc_device_set_property_bool(dev, NP_ACTIVATE_FIELD, true)) < 0)
        return res;
    /* A random UID (4 bytes from 08) is drawn again at power-up: after the field reset the
     * card answers with a new one, so it is found by selecting whatever answers. */
    bool random_uid = t->nti.nai.szUidLen == 4 && t->nti.nai.abtUid[0] == 0x08;
    res = nfc_initiator_select_passive_target(dev, nm, random_uid ? NULL : t->nti.nai.abtUid,
                                              random_uid ? 0 : t->nti.nai.szUidLen, &again);
    if (res < 0 && res != NFC_ETIMEOUT && res != NFC_ERFTRANS)
        return res;
    if (res > 0)
        *ret_held = again;
    return 0;
}

static int parse_ms(const char *s, int min, int max)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= min && v <= max) ? (int)v : -1;
}

static const char usage_text[] =
    "usage: portier-reader [--sandbox-selftest] CONNSTRING POLL_MS DEBOUNCE_MS\n"
    "\n"
    "Polls one NFC reader through libnfc for portierd, which runs it once per [reader]\n"
    "section with driver = libnfc and reads its messages on fd 3 (a SOCK_SEQPACKET\n"
    "socket); it is not meant to be run by hand.\n"
    "\n"
    "  CONNSTRING   libnfc connection string, e.g. pn532_uart:/dev/serial0\n"
    "  POLL_MS      pause between two polls (1..10000)\n"
    "  DEBOUNCE_MS  a card away less than this is the same presentation (0..60000)\n"
    "\n"
    "Sandbox: descriptors other than 0, 1, 2 and 3 are closed at start (stdin becomes\n"
    "/dev/null). Once the device is open, the worker sets PR_SET_NO_NEW_PRIVS and loads a\n"
    "seccomp allow-list (device I/O, select, sleep, clocks, memory, send, close, exit): any\n"
    "other system call kills it with SIGSYS, which portierd reports and restarts.\n"
    "\n"
    "  --sandbox-selftest  right after entering the sandbox, try a forbidden system call\n"
    "                      (socket): the worker must die of SIGSYS. If it survives, it\n"
    "                      reports 'sandbox self-test: ...' and exits with status 3.\n"
    "                      For tests; it can only make the worker die.\n"
    "  -h, --help          this text\n"
    "      --version       the version\n";

int main(int argc, char **argv)
{
    const nfc_modulation nm = { .nmt = NMT_ISO14443A, .nbr = NBR_106 };
    nfc_context *ctx = NULL;
    nfc_device *dev = NULL;
    nfc_target held, gone;
    bool holding = false, has_gone = false;
    bool held_reported = false, gone_reported = false;  /* ARRIVED sent for it (not a job's card) */
    bool authenticate;
    uint64_t gone_at = 0, last_sent;
    int poll_ms, debounce_ms, timeouts = 0, res;
    int held_targets = 1, gone_targets = 1;     /* cards when held / gone arrived */
    bool selftest = false;
    int ret;

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("portier-reader %s\n", PORTIER_VERSION);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--sandbox-selftest") == 0) {
        selftest = true;
        argv++;
        argc--;
    }
    if (argc != 4 || (poll_ms = parse_ms(argv[2], 1, 10000)) < 0 ||
        (debounce_ms = parse_ms(argv[3], 0, 60000)) < 0) {
        fprintf(stderr, "usage: portier-reader [--sandbox-selftest] CONNSTRING POLL_MS "
                "DEBOUNCE_MS (fd 3: parent); --help for more\n");
        return 64;
    }
    /* Before anything opens a descriptor: whatever the parent left us beyond our socket is
     * not ours to keep (portierd closes them too; this worker does not rely on it). */
    if ((ret = reader_sandbox_prepare_fds(PARENT_FD)) < 0) {
        fprintf(stderr, "portier-reader: %s\n", ret == -ENOTSOCK
                ? "fd 3 is not a SOCK_SEQPACKET socket: portierd runs this program"
                : strerror(-ret));
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Keys first (the parent sends them, or says there are none, as soon as we start). */
    if ((res = desfire_keys_take(PARENT_FD, KEYS_TIMEOUT_MS)) < 0) {
        char text[READER_MSG_TEXT_MAX];
        snprintf(text, sizeof(text), "keys from portierd: %s", strerror(-res));
        send_text(READER_MSG_ERROR, text);
        return 2;
    }
    atexit(desfire_keys_forget);
    nfc_init(&ctx);
    if (!ctx)
        fail(NULL, NULL, "libnfc init");
    dev = nfc_open(ctx, argv[1]);
    if (!dev)
        fail(NULL, ctx, "open");
    if (nfc_initiator_init(dev) < 0)
        fail(dev, ctx, "initiator init");
    /* Never let a select wait for a card: we poll at our own cadence. */
    if (nfc_device_set_property_bool(dev, NP_INFINITE_SELECT, false) < 0)
        fail(dev, ctx, "set NP_INFINITE_SELECT");
    /* Everything that needs a file or a new descriptor is done: confine the rest. */
    if ((ret = reader_sandbox_enter()) < 0) {
        char text[READER_MSG_TEXT_MAX];
        snprintf(text, sizeof(text), "sandbox: %s", strerror(-ret));
        give_up(dev, ctx, text, 2);
    }
    if (selftest) {
        reader_sandbox_selftest();
        give_up(dev, ctx, "sandbox self-test: a forbidden system call was allowed", 3);
    }
    send_text(READER_MSG_HELLO, nfc_device_get_name(dev));
    last_sent = now_ms();

    for (;;) {
        struct reader_msg m;
        uint64_t now;

        take_commands(now_ms());
        if (holding) {
            /* Same card still in the field? (MIFARE re-select, Ultralight read, ISO-DEP.) */
            res = nfc_initiator_target_is_present(dev, &held);
            if (res < 0 && res != NFC_ETGRELEASED && res != NFC_ETIMEOUT && res != NFC_ERFTRANS &&
                res != NFC_EINVARG)
                fail(dev, ctx, "presence check");
            timeouts = res == NFC_ETIMEOUT ? timeouts + 1 : 0;
            if (res < 0) {
                holding = false;
                has_gone = true;
                gone = held;
                gone_targets = held_targets;
                gone_reported = held_reported;
                gone_at = now_ms();
                nfc_initiator_deselect_target(dev);
            }
        } else {
            nfc_target t;
            res = nfc_initiator_select_passive_target(dev, nm, NULL, 0, &t);
            if (res < 0 && res != NFC_ETIMEOUT && res != NFC_ERFTRANS)
                fail(dev, ctx, "select");
            timeouts = res == NFC_ETIMEOUT ? timeouts + 1 : 0;
            if (res > 0) {
                /* A card back within the debounce time is the same presentation: no tap,
                 * and no need to count the cards again. */
                bool same = has_gone && same_card(&gone, &t);
                held = t;
                if (same) {
                    held_targets = gone_targets;
                } else {
                    /* First selected wins: t taps, whatever else the count finds. The door
                     * hears of it before t is selected again. */
                    held_targets = count_cards(dev, nm, &t);
                    if (held_targets < 0 && held_targets != NFC_ETIMEOUT)
                        fail(dev, ctx, "count cards");
                    timeouts = held_targets == NFC_ETIMEOUT ? timeouts + 1 : 0;
                    if (held_targets < 0)
                        held_targets = 1;       /* the chip stalled; t is still a tap */
                    if (has_gone && gone_reported) {
                        card_msg(&m, READER_MSG_LEFT, &gone, gone_targets);
                        send_msg(&m);
                    }
                    held_reported = !desfire_job_pending();
                    authenticate = held_reported && desfire_enabled() && desfire_candidate(&t);
                    if (held_reported && !authenticate) {
                        /* Nothing to prove: the door hears of it before the card is
                         * selected again, as fast as a UID allows. */
                        struct desfire_tap none = { .auth = READER_AUTH_NOT_DESFIRE };
                        if (desfire_enabled()) {
                            snprintf(none.why, sizeof(none.why), "not a DESFire card");
                            card_msg_auth(&m, &t, held_targets, &none);
                        } else {
                            card_msg(&m, READER_MSG_ARRIVED, &t, held_targets);
                        }
                        send_msg(&m);
                        last_sent = now_ms();
                    }
                    res = reselect(dev, nm, &t, &held);
                    if (res < 0 && res != NFC_ETIMEOUT)
                        fail(dev, ctx, "select again");
                    timeouts = res == NFC_ETIMEOUT ? timeouts + 1 : timeouts;
                    if (authenticate) {
                        /* The door hears of the card once it has proved its key, or not. */
                        struct desfire_tap tap;
                        desfire_tap(dev, &held, &tap);
                        card_msg_auth(&m, &held, held_targets, &tap);
                        send_msg(&m);
                        last_sent = now_ms();
                    }
                }
                has_gone = false;
                holding = true;
            }
        }
        if (holding && desfire_job_pending()) {
            /* A card on the reader and a job for it (it came, or was already there). */
            desfire_job_run(dev, &held, held_targets, &m);
            send_msg(&m);
            last_sent = now_ms();
        }
        if (timeouts >= TIMEOUTS_MAX)
            fail(dev, ctx, "reader not answering");
        now = now_ms();
        if (desfire_job_expired(now, &m)) {
            send_msg(&m);
            last_sent = now;
        }
        if (has_gone && now - gone_at >= (uint64_t)debounce_ms) {
            if (gone_reported) {
                card_msg(&m, READER_MSG_LEFT, &gone, gone_targets);
                send_msg(&m);
                last_sent = now;
            }
            has_gone = false;
        }
        if (now - last_sent >= HEARTBEAT_MS) {
            send_text(READER_MSG_HEARTBEAT, "");
            last_sent = now;
        }
        usleep((useconds_t)poll_ms * 1000u);
    }
}
