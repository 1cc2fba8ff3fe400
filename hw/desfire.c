/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* desfire: the reader worker's DESFire side (see desfire.h). */
#include "desfire.h"

#include <dlfcn.h>
#include <errno.h>
#include <freefare.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "desfire_kdf.h"

/* Key settings of a Portier application: its master key may be changed (bit 0), the
 * directory read without it (bit 1), files created only with it (bit 2 clear), settings
 * changed (bit 3); ChangeKey needs the master key (0x0_). */
#define APP_SETTINGS 0x0B
#define SITE_KEY_VERSION 1
#define CONTINUATION_FRAMES_MAX 8
#define FRAME_DATA_MAX 59

static void guard_init(void);

/* ---- keys ------------------------------------------------------------------ */

static struct {
    bool site, consortium, consortium_old;
    uint8_t site_key[DESFIRE_KEY_LEN];
    uint8_t consortium_key[DESFIRE_KEY_LEN];
    uint8_t consortium_gen;
    uint8_t consortium_old_key[DESFIRE_KEY_LEN];
    uint8_t consortium_old_gen;
} keys;

/* libfreefare draws RndA with OpenSSL's RAND_bytes, which reads its configuration and
 * seeds itself at first use. Do that now, while the worker may still open files (the
 * sandbox comes later): afterwards only getrandom() is needed to reseed. */
static void warm_up_rand(void)
{
    int (*rand_bytes)(unsigned char *, int);
    unsigned char b[16];

    *(void **)&rand_bytes = dlsym(RTLD_DEFAULT, "RAND_bytes");
    if (rand_bytes)
        rand_bytes(b, sizeof(b));
}

int desfire_keys_take(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    struct reader_cmd c;
    const char *bad;
    ssize_t n;

    /* Keys in locked memory that no core dump, swap or same-user ptrace can read. */
    prctl(PR_SET_DUMPABLE, 0);
    mlock(&keys, sizeof(keys));
    mlock(&c, sizeof(c));
    madvise((void *)((uintptr_t)&keys & ~(uintptr_t)4095), 4096, MADV_DONTDUMP);
    if (poll(&p, 1, timeout_ms) <= 0)
        return -ETIMEDOUT;
    n = recv(fd, &c, sizeof(c), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0)
        return -errno;
    bad = reader_cmd_check(&c, (long)n);
    if (bad || c.type != READER_CMD_KEYS) {
        explicit_bzero(&c, sizeof(c));
        return -EBADMSG;
    }
    keys.site = c.flags & READER_KEYS_SITE;
    keys.consortium = keys.site && (c.flags & READER_KEYS_CONSORTIUM);
    keys.consortium_old = keys.consortium && (c.flags & READER_KEYS_CONSORTIUM_OLD);
    memcpy(keys.site_key, c.site_key, DESFIRE_KEY_LEN);
    memcpy(keys.consortium_key, c.consortium_key, DESFIRE_KEY_LEN);
    keys.consortium_gen = c.consortium_gen;
    memcpy(keys.consortium_old_key, c.consortium_old_key, DESFIRE_KEY_LEN);
    keys.consortium_old_gen = c.consortium_old_gen;
    explicit_bzero(&c, sizeof(c));
    if (keys.site) {
        warm_up_rand();
        guard_init();
    }
    return 0;
}

bool desfire_enabled(void)
{
    return keys.site;
}

void desfire_keys_forget(void)
{
    explicit_bzero(&keys, sizeof(keys));
}

/* ---- the guard: every answer checked before libfreefare reads it ----------------
 *
 * libfreefare sends every DESFire command through nfc_initiator_transceive_bytes(). The
 * worker defines that function itself: the dynamic linker binds libfreefare's calls to it
 * (an executable's definitions come first), and it calls libnfc's own after checking the
 * answer. While armed, an answer must be "data 91 status" with exactly the data the
 * command calls for; anything else is refused (NFC_EIO for libfreefare) and recorded. */

static struct {
    bool armed;
    bool violated;          /* the card broke the protocol */
    bool lost;              /* libnfc could not reach the card (it left) */
    uint8_t op;             /* the command the current frames belong to */
    unsigned frames;        /* continuation frames of op so far */
    bool session, aes;      /* an authenticated session: its answers carry a CMAC (AES) */
} guard;

typedef int (*transceive_fn)(nfc_device *, const uint8_t *, const size_t, uint8_t *, const size_t,
                             int);
static transceive_fn real_transceive;

/* libnfc's own function, found once at start (before any sandbox). */
static void guard_init(void)
{
    if (!real_transceive)
        *(void **)&real_transceive = dlsym(RTLD_NEXT, "nfc_initiator_transceive_bytes");
}

static bool answer_ok(uint8_t ins, uint8_t st, size_t n)
{
    size_t mac = guard.session && guard.aes ? 8 : 0;

    if (st != 0x00 && st != 0xAF) {
        guard.session = false;  /* an error ends the card's session */
        return n == 0;
    }
    if (ins != 0xAF) {
        guard.op = ins;
        guard.frames = 0;
    } else if (++guard.frames > CONTINUATION_FRAMES_MAX) {
        return false;
    }
    switch (guard.op) {
    case 0xAA:                  /* AES authentication: 16-byte tokens */
    case 0x0A:                  /* legacy: 8-byte tokens */
        if (guard.frames == 0) {
            guard.session = false;
            guard.aes = guard.op == 0xAA;
            return st == 0xAF && n == (guard.aes ? 16u : 8u);
        }
        if (guard.frames == 1 && st == 0x00 && n == (guard.aes ? 16u : 8u)) {
            guard.session = true;
            return true;
        }
        return false;
    case 0x5A:                  /* SelectApplication: the session ends */
        guard.session = false;
        return st == 0x00 && n == 0;
    case 0x51:                  /* GetCardUID: UID, CRC and padding, enciphered */
        return st == 0x00 && n == 16;
    case 0x60:                  /* GetVersion: 7, 7, then 14 bytes (+ CMAC) */
        if (guard.frames < 2)
            return st == 0xAF && n == 7;
        return guard.frames == 2 && st == 0x00 && n == 14 + mac;
    case 0x64:                  /* GetKeyVersion */
        return st == 0x00 && n == 1 + mac;
    case 0x45:                  /* GetKeySettings */
        return st == 0x00 && n == 2 + mac;
    case 0x6A:                  /* GetApplicationIDs */
        return n <= FRAME_DATA_MAX && (st == 0x00 || n == FRAME_DATA_MAX);
    case 0xC4:                  /* ChangeKey: no CMAC when the session's own key changed */
    case 0xDA:                  /* DeleteApplication: none when it deleted the selected one */
        if (n == 0)
            guard.session = false;
        return st == 0x00 && (n == 0 || n == mac);
    case 0xCA:                  /* CreateApplication */
        return st == 0x00 && n == mac;
    default:                    /* nothing else is sent: refuse what we cannot check */
        return false;
    }
}

int nfc_initiator_transceive_bytes(nfc_device *pnd, const uint8_t *tx, const size_t txn, uint8_t *rx,
                                   const size_t rxn, int timeout);
int nfc_initiator_transceive_bytes(nfc_device *pnd, const uint8_t *tx, const size_t txn, uint8_t *rx,
                                   const size_t rxn, int timeout)
{
    int res;

    guard_init();
    if (!real_transceive)
        return NFC_ESOFT;
    res = real_transceive(pnd, tx, txn, rx, rxn, timeout);
    if (!guard.armed)
        return res;
    if (res < 0) {
        guard.lost = true;
        return res;
    }
    if (txn < 5 || tx[0] != 0x90 || res < 2 || rx[res - 2] != 0x91 ||
        !answer_ok(tx[1], rx[res - 1], (size_t)res - 2)) {
        guard.violated = true;
        return NFC_EIO;
    }
    return res;
}

static void guard_arm(void)
{
    memset(&guard, 0, sizeof(guard));
    guard.armed = true;
}

static void guard_disarm(void)
{
    guard.armed = false;
}

/* ---- card helpers ---------------------------------------------------------- */

static MifareDESFireKey aes_key(const uint8_t k[DESFIRE_KEY_LEN], uint8_t version)
{
    return mifare_desfire_aes_key_new_with_version((uint8_t *)k, version);
}

/* libfreefare's key objects are opaque and freed unwiped: a derived card key may stay in
 * freed heap until reused. The master key it came from is in this process anyway; what
 * matters is that none of them leaves it. */
static void key_free(MifareDESFireKey k)
{
    if (k)
        mifare_desfire_key_free(k);
}

static int authenticate(MifareTag tag, uint8_t keyno, const uint8_t k[DESFIRE_KEY_LEN], uint8_t version)
{
    MifareDESFireKey key = aes_key(k, version);
    int r;

    if (!key)
        return -ENOMEM;
    r = mifare_desfire_authenticate_aes(tag, keyno, key);
    key_free(key);
    return r;
}

static int select_app(MifareTag tag, uint32_t aid)
{
    MifareDESFireAID a = aid ? mifare_desfire_aid_new(aid) : NULL;
    int r;

    if (aid && !a)
        return -ENOMEM;
    r = mifare_desfire_select_application(tag, a);
    free(a);
    return r;
}

static int card_uid(MifareTag tag, uint8_t uid[DESFIRE_UID_LEN])
{
    char *hex = NULL;
    int r = mifare_desfire_get_card_uid(tag, &hex);

    if (r < 0 || !hex)
        return -1;
    for (size_t i = 0; i < DESFIRE_UID_LEN; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(hex);
            return -1;
        }
        uid[i] = (uint8_t)v;
    }
    free(hex);
    return 0;
}

/* A 4-byte UID from 08 is drawn at random at each power-up (ISO/IEC 14443-3); DESFire's own
 * UIDs have 7 bytes. Anything else must be read from the card. */
static bool uid_is_fixed(const nfc_target *t)
{
    return t->nti.nai.szUidLen == DESFIRE_UID_LEN;
}

/* What went wrong with the last card command, as a tap outcome. */
static enum reader_auth outcome(MifareTag tag)
{
    if (guard.lost)
        return READER_AUTH_REMOVED;
    if (guard.violated)
        return READER_AUTH_FAILED;
    if (mifare_desfire_last_picc_error(tag) == APPLICATION_NOT_FOUND)
        return READER_AUTH_NO_APP;
    return READER_AUTH_FAILED;
}

static const char *failure_text(MifareTag tag, const char *step)
{
    static char text[64];
    uint8_t e = mifare_desfire_last_picc_error(tag);

    if (guard.lost)
        snprintf(text, sizeof(text), "%s: the card stopped answering", step);
    else if (guard.violated)
        snprintf(text, sizeof(text), "%s: the card broke the protocol", step);
    else if (e == AUTHENTICATION_ERROR)
        snprintf(text, sizeof(text), "%s: wrong key", step);
    else if (e)
        snprintf(text, sizeof(text), "%s: card error %02X", step, e);
    else
        snprintf(text, sizeof(text), "%s: failed", step);
    return text;
}

/* The master key of application app, and its key-1 candidates (current, previous). */
struct app_keys {
    uint32_t aid;
    const uint8_t *tap_master[2];   /* key 1 and key 2 come from these */
    uint8_t version[2];
    size_t n;
};

static void app_keys(enum reader_app app, struct app_keys *k)
{
    memset(k, 0, sizeof(*k));
    if (app == READER_APP_SITE) {
        k->aid = DESFIRE_AID_SITE;
        k->tap_master[0] = keys.site_key;
        k->version[0] = SITE_KEY_VERSION;
        k->n = 1;
    } else {
        k->aid = DESFIRE_AID_CONSORTIUM;
        k->tap_master[0] = keys.consortium_key;
        k->version[0] = keys.consortium_gen;
        k->n = 1;
        if (keys.consortium_old) {
            k->tap_master[1] = keys.consortium_old_key;
            k->version[1] = keys.consortium_old_gen;
            k->n = 2;
        }
    }
}

/* The card's real UID before any per-card key: from anticollision, or for a random-UID card
 * with the application's UID key (key 2) and GetCardUID. The application is selected. */
static enum reader_auth resolve_uid(MifareTag tag, const nfc_target *t, const struct app_keys *k,
                                    uint8_t uid[DESFIRE_UID_LEN], char *why, size_t whysz)
{
    if (uid_is_fixed(t)) {
        memcpy(uid, t->nti.nai.abtUid, DESFIRE_UID_LEN);
        return READER_AUTH_OK;
    }
    for (size_t g = 0; g < k->n; g++) {
        uint8_t uk[DESFIRE_KEY_LEN];
        int r;

        desfire_kdf_uid_key(k->tap_master[g], k->aid, uk);
        r = authenticate(tag, DESFIRE_KEY_UID, uk, k->version[g]);
        explicit_bzero(uk, sizeof(uk));
        if (r == 0 && card_uid(tag, uid) == 0)
            return READER_AUTH_OK;
        if (guard.lost || guard.violated || mifare_desfire_last_picc_error(tag) != AUTHENTICATION_ERROR)
            break;
    }
    snprintf(why, whysz, "%s", failure_text(tag, "UID key"));
    return outcome(tag) == READER_AUTH_NO_APP ? READER_AUTH_FAILED : outcome(tag);
}

/* One application: select it, prove key 1, read the real UID under that session. */
static enum reader_auth tap_app(MifareTag tag, const nfc_target *t, enum reader_app app,
                                struct desfire_tap *ret)
{
    struct app_keys k;
    uint8_t uid[DESFIRE_UID_LEN], proved[DESFIRE_UID_LEN];
    enum reader_auth a;

    app_keys(app, &k);
    if (select_app(tag, k.aid) < 0) {
        a = outcome(tag);
        snprintf(ret->why, sizeof(ret->why), "%s",
                 a == READER_AUTH_NO_APP ? "no Portier application" : failure_text(tag, "select"));
        return a;
    }
    a = resolve_uid(tag, t, &k, uid, ret->why, sizeof(ret->why));
    if (a != READER_AUTH_OK)
        return a;
    for (size_t g = 0; g < k.n; g++) {
        uint8_t key[DESFIRE_KEY_LEN];
        int r;

        desfire_kdf_card_key(k.tap_master[g], uid, k.aid, DESFIRE_KEY_TAP, key);
        r = authenticate(tag, DESFIRE_KEY_TAP, key, k.version[g]);
        explicit_bzero(key, sizeof(key));
        if (r == 0) {
            /* The UID under the session key: only a card holding the key can send it. */
            if (card_uid(tag, proved) < 0) {
                snprintf(ret->why, sizeof(ret->why), "%s", failure_text(tag, "GetCardUID"));
                return outcome(tag) == READER_AUTH_NO_APP ? READER_AUTH_FAILED : outcome(tag);
            }
            if (memcmp(proved, uid, DESFIRE_UID_LEN) != 0) {
                snprintf(ret->why, sizeof(ret->why), "the card's UID is not the one it answered with");
                return READER_AUTH_FAILED;
            }
            memcpy(ret->uid, uid, DESFIRE_UID_LEN);
            ret->key_version = k.version[g];
            return READER_AUTH_OK;
        }
        if (guard.lost || guard.violated || mifare_desfire_last_picc_error(tag) != AUTHENTICATION_ERROR)
            break;
    }
    snprintf(ret->why, sizeof(ret->why), "%s", failure_text(tag, "tap key"));
    return outcome(tag) == READER_AUTH_NO_APP ? READER_AUTH_FAILED : outcome(tag);
}

/* A DESFire answers with SAK 0x20 and an ATS from 75 77 81 02 (what libfreefare checks).
 * Checked before freefare_tag_new(), which probes other cards for an Ultralight C by
 * talking to them and halting them: a card that must stay present for its presence checks
 * is better left alone. */
bool desfire_candidate(const nfc_target *t)
{
    static const uint8_t ats[] = { 0x75, 0x77, 0x81, 0x02 };
    const nfc_iso14443a_info *a = &t->nti.nai;

    return (a->btSak & 0x20) && a->szAtsLen >= sizeof(ats) + 1 && memcmp(a->abtAts, ats, sizeof(ats)) == 0;
}

/* libfreefare knows DESFire by SAK 0x20 and its ATS; connecting selects the card again (it is
 * selected already, so the chip's retry finds it). NULL: not a DESFire. */
static MifareTag connect_card(nfc_device *dev, const nfc_target *t, bool *ret_lost)
{
    MifareTag tag;

    *ret_lost = false;
    if (!desfire_candidate(t))
        return NULL;
    tag = freefare_tag_new(dev, t->nti.nai);
    if (!tag)
        return NULL;
    if (freefare_get_tag_type(tag) != DESFIRE || mifare_desfire_connect(tag) < 0) {
        *ret_lost = freefare_get_tag_type(tag) == DESFIRE;
        freefare_free_tag(tag);
        return NULL;
    }
    return tag;
}

void desfire_tap(nfc_device *dev, const nfc_target *t, struct desfire_tap *ret)
{
    enum reader_auth site, cons = READER_AUTH_NO_APP;
    char site_why[64];
    MifareTag tag;
    bool lost;

    memset(ret, 0, sizeof(*ret));
    if (!keys.site) {
        ret->auth = READER_AUTH_NONE;
        return;
    }
    guard_arm();
    tag = connect_card(dev, t, &lost);
    if (!tag) {
        guard_disarm();
        ret->auth = lost ? READER_AUTH_REMOVED : READER_AUTH_NOT_DESFIRE;
        snprintf(ret->why, sizeof(ret->why), "%s", lost ? "the card stopped answering"
                                                         : "not a DESFire card");
        return;
    }
    site = tap_app(tag, t, READER_APP_SITE, ret);
    if (site == READER_AUTH_OK) {
        ret->app = READER_APP_SITE;
    } else if (site != READER_AUTH_REMOVED && keys.consortium) {
        /* A member of another site: its home's site application fails here (other keys),
         * its consortium application is for every site. */
        snprintf(site_why, sizeof(site_why), "%s", ret->why);
        cons = tap_app(tag, t, READER_APP_CONSORTIUM, ret);
        if (cons == READER_AUTH_OK)
            ret->app = READER_APP_CONSORTIUM;
        else if (cons == READER_AUTH_NO_APP && site == READER_AUTH_FAILED)
            snprintf(ret->why, sizeof(ret->why), "%s", site_why);
    }
    if (site == READER_AUTH_OK || cons == READER_AUTH_OK)
        ret->auth = READER_AUTH_OK;
    else if (site == READER_AUTH_REMOVED || cons == READER_AUTH_REMOVED)
        ret->auth = READER_AUTH_REMOVED;
    else if (site == READER_AUTH_FAILED || cons == READER_AUTH_FAILED)
        ret->auth = READER_AUTH_FAILED;
    else
        ret->auth = READER_AUTH_NO_APP;
    /* No disconnect: deselecting would halt the card, and the presence checks need it. */
    freefare_free_tag(tag);
    guard_disarm();
}

/* ---- jobs: provisioning and deprovisioning ---------------------------------- */

static struct {
    bool pending;
    uint8_t type;
    uint8_t flags;
    uint8_t picc_type;
    uint8_t picc_key[READER_KEY_LEN];
    uint32_t request;
    uint64_t deadline_ms;
} job;

static void done_msg(struct reader_msg *m, uint32_t request, enum reader_done st, const char *text)
{
    memset(m, 0, sizeof(*m));
    m->type = READER_MSG_DONE;
    m->request = request;
    m->status = (uint8_t)st;
    snprintf(m->text, sizeof(m->text), "%s", text);
}

static void job_clear(void)
{
    explicit_bzero(&job, sizeof(job));
}

bool desfire_job_take(const struct reader_cmd *cmd, uint64_t now_ms, struct reader_msg *ret_done)
{
    bool answered = false;

    if (job.pending && (cmd->type != READER_CMD_CANCEL || cmd->request == job.request)) {
        done_msg(ret_done, job.request, READER_DONE_CANCELLED,
                 cmd->type == READER_CMD_CANCEL ? "cancelled" : "replaced by a newer request");
        answered = true;
    }
    if (cmd->type == READER_CMD_CANCEL) {
        if (answered)
            job_clear();
        return answered;
    }
    job_clear();
    job.pending = true;
    job.type = cmd->type;
    job.flags = cmd->flags;
    job.picc_type = cmd->picc_key_type;
    memcpy(job.picc_key, cmd->picc_key, sizeof(job.picc_key));
    job.request = cmd->request;
    job.deadline_ms = now_ms + cmd->timeout_ms;
    return answered;
}

int desfire_commands_take(int fd, uint64_t now_ms, void (*answer)(struct reader_msg *m),
                          const char **ret_why)
{
    struct reader_cmd c;
    struct reader_msg done;

    for (;;) {
        ssize_t n = recv(fd, &c, sizeof(c), MSG_DONTWAIT | MSG_TRUNC);
        const char *bad;

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n <= 0)
            return -EPIPE;  /* end of stream (an empty datagram reads the same on SEQPACKET) */
        bad = reader_cmd_check(&c, (long)n);
        if (bad || c.type == READER_CMD_KEYS) {
            explicit_bzero(&c, sizeof(c));
            *ret_why = bad ? bad : "keys sent twice";
            return -EBADMSG;
        }
        if (desfire_job_take(&c, now_ms, &done))
            answer(&done);
        explicit_bzero(&c, sizeof(c));
    }
}

bool desfire_job_pending(void)
{
    return job.pending;
}

bool desfire_job_expired(uint64_t now_ms, struct reader_msg *ret_done)
{
    if (!job.pending || now_ms < job.deadline_ms)
        return false;
    done_msg(ret_done, job.request, READER_DONE_TIMEOUT, "no card was presented in time");
    job_clear();
    return true;
}

static int picc_authenticate(MifareTag tag)
{
    uint8_t zero[8] = { 0 };
    MifareDESFireKey k;
    int r;

    switch (job.picc_type) {
    case READER_PICC_DES:
        k = mifare_desfire_des_key_new_with_version(job.picc_key);
        break;
    case READER_PICC_2K3DES:
        k = mifare_desfire_3des_key_new_with_version(job.picc_key);
        break;
    case READER_PICC_AES:
        k = mifare_desfire_aes_key_new(job.picc_key);
        break;
    default:
        k = mifare_desfire_des_key_new(zero);
        break;
    }
    if (!k)
        return -ENOMEM;
    if ((r = select_app(tag, 0)) == 0)
        r = mifare_desfire_authenticate(tag, 0, k);
    key_free(k);
    return r;
}

/* Why a step failed, as the job's result. */
static enum reader_done job_failure(MifareTag tag, enum reader_done otherwise)
{
    if (guard.lost)
        return READER_DONE_REMOVED;
    return otherwise;
}

/* The keys application app should hold on card uid: [0] master, [1] tap, [2] UID key, with
 * their versions; and for the consortium, the previous generation's [1] and [2]. */
struct target_keys {
    uint8_t k[3][DESFIRE_KEY_LEN];
    uint8_t v[3];
    bool has_old;
    uint8_t old[3][DESFIRE_KEY_LEN];
    uint8_t old_v;
};

static void target_keys(enum reader_app app, const uint8_t uid[DESFIRE_UID_LEN], struct target_keys *t)
{
    struct app_keys k;

    app_keys(app, &k);
    memset(t, 0, sizeof(*t));
    desfire_kdf_card_key(keys.site_key, uid, k.aid, DESFIRE_KEY_AMK, t->k[0]);
    desfire_kdf_card_key(k.tap_master[0], uid, k.aid, DESFIRE_KEY_TAP, t->k[1]);
    desfire_kdf_uid_key(k.tap_master[0], k.aid, t->k[2]);
    t->v[0] = SITE_KEY_VERSION;
    t->v[1] = t->v[2] = k.version[0];
    if (k.n > 1) {
        t->has_old = true;
        desfire_kdf_card_key(k.tap_master[1], uid, k.aid, DESFIRE_KEY_TAP, t->old[1]);
        desfire_kdf_uid_key(k.tap_master[1], k.aid, t->old[2]);
        t->old_v = k.version[1];
    }
}

static bool picc_error_is(MifareTag tag, uint8_t e)
{
    return !guard.lost && !guard.violated && mifare_desfire_last_picc_error(tag) == e;
}

static int change_key(MifareTag tag, uint8_t keyno, const uint8_t *nk, uint8_t nv, const uint8_t *ok,
                      uint8_t ov)
{
    MifareDESFireKey n = aes_key(nk, nv), o = ok ? aes_key(ok, ov) : NULL;
    int r = n && (o || !ok) ? mifare_desfire_change_key(tag, keyno, n, o) : -1;

    key_free(n);
    key_free(o);
    return r;
}

/* Make application app on the card hold its keys, from whatever state a previous, maybe
 * interrupted, run left: every step first checks whether it is already done. */
static enum reader_done ensure_app(MifareTag tag, enum reader_app app, const uint8_t uid[DESFIRE_UID_LEN],
                                   char *text, size_t textsz)
{
    static const uint8_t zero[DESFIRE_KEY_LEN];
    const char *name = app == READER_APP_SITE ? "site" : "consortium";
    struct target_keys tk;
    enum reader_done st = READER_DONE_OK;
    bool amk_set;

    target_keys(app, uid, &tk);
    if (select_app(tag, app == READER_APP_SITE ? DESFIRE_AID_SITE : DESFIRE_AID_CONSORTIUM) < 0) {
        MifareDESFireAID aid;
        int r;

        if (!picc_error_is(tag, APPLICATION_NOT_FOUND)) {
            st = job_failure(tag, READER_DONE_CARD_ERROR);
            snprintf(text, textsz, "%s", failure_text(tag, "select"));
            goto out;
        }
        if (picc_authenticate(tag) < 0) {
            st = job_failure(tag, READER_DONE_PICC_KEY);
            snprintf(text, textsz, "the card's master key is not the one given");
            goto out;
        }
        aid = mifare_desfire_aid_new(app == READER_APP_SITE ? DESFIRE_AID_SITE : DESFIRE_AID_CONSORTIUM);
        r = aid ? mifare_desfire_create_application_aes(tag, aid, APP_SETTINGS, DESFIRE_APP_KEYS) : -1;
        if (r == 0)
            r = mifare_desfire_select_application(tag, aid);
        free(aid);
        if (r < 0) {
            st = job_failure(tag, READER_DONE_CARD_ERROR);
            snprintf(text, textsz, "%s", failure_text(tag, "create application"));
            goto out;
        }
    }
    /* The master key: already this site's, or still the default of a new application. */
    if (authenticate(tag, DESFIRE_KEY_AMK, tk.k[0], tk.v[0]) == 0) {
        amk_set = true;
    } else if (!guard.lost && authenticate(tag, DESFIRE_KEY_AMK, zero, 0) == 0) {
        amk_set = false;
    } else {
        st = job_failure(tag, READER_DONE_FOREIGN);
        snprintf(text, textsz, "the card has a Portier %s application with keys this site "
                 "does not know", name);
        goto out;
    }
    for (uint8_t n = DESFIRE_KEY_TAP; n <= DESFIRE_KEY_UID; n++) {
        const uint8_t *cur = zero;
        uint8_t cur_v = 0;

        if (authenticate(tag, n, tk.k[n], tk.v[n]) == 0)
            continue;                                   /* done before */
        if (guard.lost)
            break;
        if (tk.has_old && authenticate(tag, n, tk.old[n], tk.old_v) == 0) {
            cur = tk.old[n];                            /* a previous consortium generation */
            cur_v = tk.old_v;
        }
        if (authenticate(tag, DESFIRE_KEY_AMK, amk_set ? tk.k[0] : zero, amk_set ? tk.v[0] : 0) < 0 ||
            change_key(tag, n, tk.k[n], tk.v[n], cur, cur_v) < 0) {
            st = job_failure(tag, READER_DONE_FOREIGN);
            snprintf(text, textsz, "%s", failure_text(tag, "change key"));
            goto out;
        }
    }
    if (guard.lost) {
        st = READER_DONE_REMOVED;
        snprintf(text, textsz, "the card left during provisioning");
        goto out;
    }
    if (!amk_set && (authenticate(tag, DESFIRE_KEY_AMK, zero, 0) < 0 ||
                     change_key(tag, DESFIRE_KEY_AMK, tk.k[0], tk.v[0], NULL, 0) < 0)) {
        st = job_failure(tag, READER_DONE_CARD_ERROR);
        snprintf(text, textsz, "%s", failure_text(tag, "change master key"));
        goto out;
    }
out:
    explicit_bzero(&tk, sizeof(tk));
    return st;
}

static void job_provision(MifareTag tag, const nfc_target *t, struct reader_msg *m)
{
    struct mifare_desfire_version_info v;
    struct desfire_tap check;
    uint8_t uid[DESFIRE_UID_LEN];
    char text[READER_MSG_TEXT_MAX] = "";
    enum reader_done st;
    enum reader_auth a;

    if (mifare_desfire_get_version(tag, &v) < 0) {
        done_msg(m, job.request, job_failure(tag, READER_DONE_CARD_ERROR), failure_text(tag, "GetVersion"));
        return;
    }
    if (v.software.version_major < 1) {
        done_msg(m, job.request, READER_DONE_NOT_DESFIRE, "a DESFire EV0 has no AES keys");
        return;
    }
    if (picc_authenticate(tag) < 0) {
        done_msg(m, job.request, job_failure(tag, READER_DONE_PICC_KEY),
                 guard.lost ? "the card left during provisioning"
                            : "the card's master key is not the one given");
        return;
    }
    if (card_uid(tag, uid) < 0) {
        done_msg(m, job.request, job_failure(tag, READER_DONE_CARD_ERROR), failure_text(tag, "GetCardUID"));
        return;
    }
    st = ensure_app(tag, READER_APP_SITE, uid, text, sizeof(text));
    if (st == READER_DONE_OK && (job.flags & READER_PROVISION_CONSORTIUM) && keys.consortium)
        st = ensure_app(tag, READER_APP_CONSORTIUM, uid, text, sizeof(text));
    if (st != READER_DONE_OK) {
        done_msg(m, job.request, st, text);
        return;
    }
    /* As a door will see it. */
    memset(&check, 0, sizeof(check));
    a = tap_app(tag, t, READER_APP_SITE, &check);
    if (a == READER_AUTH_OK && (job.flags & READER_PROVISION_CONSORTIUM) && keys.consortium)
        a = tap_app(tag, t, READER_APP_CONSORTIUM, &check);
    if (a != READER_AUTH_OK || memcmp(check.uid, uid, DESFIRE_UID_LEN) != 0) {
        done_msg(m, job.request, a == READER_AUTH_REMOVED ? READER_DONE_REMOVED : READER_DONE_CARD_ERROR,
                 a == READER_AUTH_REMOVED ? "the card left during provisioning" : check.why);
        return;
    }
    done_msg(m, job.request, READER_DONE_OK,
             (job.flags & READER_PROVISION_CONSORTIUM) && keys.consortium
                 ? "site and consortium applications ready" : "site application ready");
    m->uid_len = DESFIRE_UID_LEN;
    memcpy(m->uid, uid, DESFIRE_UID_LEN);
}

static void job_deprovision(MifareTag tag, const nfc_target *t, struct reader_msg *m)
{
    static const enum reader_app apps[] = { READER_APP_CONSORTIUM, READER_APP_SITE };
    uint8_t uid[DESFIRE_UID_LEN];
    bool have_uid = false, removed = false;
    char text[READER_MSG_TEXT_MAX];

    for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++) {
        struct app_keys k;
        struct target_keys tk;
        MifareDESFireAID aid;
        int r;

        if (apps[i] == READER_APP_CONSORTIUM && !keys.consortium)
            continue;
        app_keys(apps[i], &k);
        if (select_app(tag, k.aid) < 0) {
            if (picc_error_is(tag, APPLICATION_NOT_FOUND))
                continue;
            done_msg(m, job.request, job_failure(tag, READER_DONE_CARD_ERROR), failure_text(tag, "select"));
            return;
        }
        if (!have_uid && resolve_uid(tag, t, &k, uid, text, sizeof(text)) != READER_AUTH_OK) {
            done_msg(m, job.request, job_failure(tag, READER_DONE_FOREIGN),
                     guard.lost ? "the card left" : "the card's Portier application is not this site's");
            return;
        }
        have_uid = true;
        target_keys(apps[i], uid, &tk);
        r = authenticate(tag, DESFIRE_KEY_AMK, tk.k[0], tk.v[0]);
        explicit_bzero(&tk, sizeof(tk));
        if (r < 0) {
            done_msg(m, job.request, job_failure(tag, READER_DONE_FOREIGN),
                     guard.lost ? "the card left" : "the card's Portier application is not this site's");
            return;
        }
        aid = mifare_desfire_aid_new(k.aid);
        r = aid ? mifare_desfire_delete_application(tag, aid) : -1;
        if (r < 0 && !guard.lost && picc_authenticate(tag) == 0)
            r = mifare_desfire_delete_application(tag, aid);   /* cards that want the PICC key */
        free(aid);
        if (r < 0) {
            done_msg(m, job.request, job_failure(tag, READER_DONE_PICC_KEY),
                     guard.lost ? "the card left" : "the card refused to delete the application");
            return;
        }
        removed = true;
    }
    if (!have_uid) {
        /* Nothing of Portier's on it: say which card it is all the same. */
        if (uid_is_fixed(t)) {
            memcpy(uid, t->nti.nai.abtUid, DESFIRE_UID_LEN);
        } else if (picc_authenticate(tag) < 0 || card_uid(tag, uid) < 0) {
            done_msg(m, job.request, job_failure(tag, READER_DONE_PICC_KEY),
                     "no Portier application, and the card's UID is hidden (random UID)");
            return;
        }
    }
    done_msg(m, job.request, READER_DONE_OK, removed ? "Portier applications removed"
                                                     : "no Portier application on the card");
    m->uid_len = DESFIRE_UID_LEN;
    memcpy(m->uid, uid, DESFIRE_UID_LEN);
}

void desfire_job_run(nfc_device *dev, const nfc_target *t, int targets, struct reader_msg *ret_done)
{
    MifareTag tag;
    bool lost;

    if (!job.pending)
        return;
    if (!keys.site) {
        done_msg(ret_done, job.request, READER_DONE_NO_KEY, "the reader holds no DESFire master key");
    } else if (targets > 1) {
        done_msg(ret_done, job.request, READER_DONE_SEVERAL,
                 "several cards on the reader: present only the one to provision");
    } else {
        guard_arm();
        tag = connect_card(dev, t, &lost);
        if (!tag) {
            done_msg(ret_done, job.request, lost ? READER_DONE_REMOVED : READER_DONE_NOT_DESFIRE,
                     lost ? "the card left" : "not a DESFire card");
        } else {
            if (job.type == READER_CMD_PROVISION)
                job_provision(tag, t, ret_done);
            else
                job_deprovision(tag, t, ret_done);
            freefare_free_tag(tag);
        }
        guard_disarm();
    }
    job_clear();
}
