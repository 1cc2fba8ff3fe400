/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "access.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct access_engine {
    struct store *store;
    uint8_t card_key[CARDID_KEY_LEN];
    unsigned recent_max;
    unsigned recent_next;
    unsigned recent_count;
    struct access_tap recent[ACCESS_RECENT_MAX];
    struct access_stats stats;
    const struct access_visitor_ops *visitor_ops;
    void *visitor_userdata;
};

void access_engine_set_visitors(struct access_engine *e, const struct access_visitor_ops *ops,
                                void *userdata)
{
    e->visitor_ops = ops;
    e->visitor_userdata = userdata;
}

int access_engine_new(struct store *store, const uint8_t card_key[CARDID_KEY_LEN],
                      unsigned recent_max, struct access_engine **ret)
{
    struct access_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->store = store;
    memcpy(e->card_key, card_key, CARDID_KEY_LEN);
    e->recent_max = recent_max == 0 || recent_max > ACCESS_RECENT_MAX ? ACCESS_RECENT_MAX
                                                                      : recent_max;
    *ret = e;
    return 0;
}

struct access_engine *access_engine_free(struct access_engine *e)
{
    if (e) {
        sodium_memzero(e->card_key, sizeof(e->card_key));
        free(e);
    }
    return NULL;
}

void access_card_hash(const struct access_engine *e, const uint8_t *uid, size_t len,
                      uint8_t out[STORE_HASH_LEN])
{
    cardid_hash(e->card_key, uid, len, out);
}

static void remember(struct access_engine *e, const struct access_tap *t)
{
    e->recent[e->recent_next] = *t;
    e->recent_next = (e->recent_next + 1) % e->recent_max;
    if (e->recent_count < e->recent_max)
        e->recent_count++;
}

unsigned access_recent(const struct access_engine *e, struct access_tap *out, unsigned n)
{
    unsigned count = n < e->recent_count ? n : e->recent_count;
    for (unsigned i = 0; i < count; i++)
        out[i] = e->recent[(e->recent_next + e->recent_max - 1 - i) % e->recent_max];
    return count;
}

char *access_tap_detail(char *buf, size_t size, const char *base, unsigned targets)
{
    const char *sep = base && *base && targets > 1 ? "; " : "";

    if (size == 0)
        return buf;
    if (targets > 1)
        snprintf(buf, size, "%.80s%s%u cards presented; first selected wins", base ? base : "", sep,
                 targets);
    else
        snprintf(buf, size, "%s", base ? base : "");
    return buf;
}

enum policy_card_proof access_card_proof(const struct reader_event *ev, bool visitor)
{
    switch (ev->auth) {
    case READER_AUTH_OK:
        return ev->app == (visitor ? READER_APP_CONSORTIUM : READER_APP_SITE) ? POLICY_PROOF_OK
                                                                              : POLICY_PROOF_FAILED;
    case READER_AUTH_FAILED:
    case READER_AUTH_REMOVED:
        return POLICY_PROOF_FAILED;
    case READER_AUTH_NONE:
    case READER_AUTH_NOT_DESFIRE:
    case READER_AUTH_NO_APP:
        break;
    }
    return POLICY_PROOF_NONE;
}

/* Why the card's proof fell short, for the access log and the journal (no UID in it). */
static const char *proof_note(const struct reader_event *ev, enum policy_card_proof proof)
{
    if (proof == POLICY_PROOF_FAILED && ev->auth == READER_AUTH_OK)
        return "it proved only the consortium key";
    if (ev->auth == READER_AUTH_REMOVED)
        return "the card was taken away during authentication";
    if (ev->note[0])
        return ev->note;
    if (ev->auth == READER_AUTH_NOT_DESFIRE)
        return "not a DESFire card";
    if (ev->auth == READER_AUTH_NO_APP)
        return "no Portier application";
    return "";
}

int access_handle_tap(struct access_engine *e, struct door *d, const char *reader,
                      const struct reader_event *rev, struct access_tap *ret)
{
    const uint8_t *uid = rev->uid;
    size_t uid_len = rev->uid_len;
    unsigned targets = rev->targets;
    uint64_t t0_usec = rev->at_usec;
    uint8_t hash[STORE_HASH_LEN];
    struct store_subject subj;
    struct store_subject_facts facts = { 0 };
    struct policy_door door = { .zone = d->cfg->zone,
                                .security = (enum card_security)d->cfg->card_security };
    struct policy_request req = { .door = &door };
    struct policy_verdict verdict;
    struct access_tap tap = { 0 };
    struct store_event ev = { 0 };
    struct access_visitor visitor = { 0 };
    char visitor_detail[96], base[128];
    const char *sep;
    int lookup, visitor_lookup = -ENOENT, r;

    cardid_hash(e->card_key, uid, uid_len, hash);
    req.now = now_utc();
    local_time_at(req.now, &req.local);

    lookup = store_subject_lookup(e->store, hash, &subj);
    if (lookup == 0) {
        store_subject_facts(&subj, &facts, &req);
    } else if (lookup == -ENOENT && e->visitor_ops) {
        visitor_lookup = e->visitor_ops->lookup(e->visitor_userdata, uid, uid_len, req.now,
                                                &visitor);
        if (visitor_lookup == 0)
            req.visitor = &visitor.facts;
    }
    req.proof = access_card_proof(rev, req.visitor != NULL);
    verdict = policy_decide(&req);

    /* Act first: the relay write comes before any record or log. */
    if (verdict.granted)
        tap.relay_error = door_unlock_for(d, (unsigned)d->cfg->unlock_seconds, DOOR_CAUSE_TAP);
    tap.latency_us = (uint32_t)(now_mono_usec() - t0_usec);
    if (req.visitor) {
        tap.visitor = true;
        strlcpy_checked(tap.home, visitor.home, sizeof(tap.home));
        if (verdict.granted && tap.relay_error == 0)
            e->visitor_ops->admitted(e->visitor_userdata, &visitor, d->cfg->name, req.now);
    }

    tap.at = req.now;
    strlcpy_checked(tap.reader, reader, sizeof(tap.reader));
    strlcpy_checked(tap.door, d->cfg->name, sizeof(tap.door));
    tap.granted = verdict.granted;
    tap.reason = verdict.reason;
    if (lookup == 0) {
        tap.member_id = subj.member_id;
        tap.card_id = subj.card_id;
    }
    sodium_bin2hex(tap.card, sizeof(tap.card), hash, 8);

    ev.at = tap.at;
    ev.resource_id = d->resource_id;
    strlcpy_checked(ev.reader, reader, sizeof(ev.reader));
    ev.member_id = tap.member_id;
    ev.card_id = tap.card_id;
    memcpy(ev.card_hash, hash, sizeof(hash));
    ev.has_card_hash = true;
    strlcpy_checked(ev.kind, "tap", sizeof(ev.kind));
    ev.granted = verdict.granted && tap.relay_error == 0;
    strlcpy_checked(ev.reason, tap.relay_error ? "relay_fault" : policy_reason_to_string(verdict.reason),
                    sizeof(ev.reason));
    if (tap.visitor)
        snprintf(visitor_detail, sizeof(visitor_detail), "visitor of %s, passport %.8s",
                 visitor.home, visitor.id);
    base[0] = '\0';
    if (tap.visitor)
        strlcpy_checked(base, visitor_detail, sizeof(base));
    if ((verdict.reason == POLICY_CARD_NOT_SECURE || verdict.reason == POLICY_CARD_AUTH_FAILED) &&
        *proof_note(rev, req.proof)) {
        size_t k = strlen(base);
        snprintf(base + k, sizeof(base) - k, "%s%.90s", k ? "; " : "", proof_note(rev, req.proof));
    }
    access_tap_detail(ev.detail, sizeof(ev.detail), base, targets);
    sep = ev.detail[0] ? "; " : "";     /* the log line says what the detail says */
    r = store_event_add(e->store, &ev, &tap.event_id);
    if (r < 0)
        tap.event_id = 0;       /* not recorded (the store holds it to write it later) */

    e->stats.taps++;
    if (ev.granted)
        e->stats.granted++;
    else
        e->stats.denied++;
    if (r < 0 || (lookup < 0 && lookup != -ENOENT))
        e->stats.store_errors++;

    if (tap.relay_error)
        log_error("door %s: tap by member %" PRId64
                  " granted but the door could not be unlocked: %s%s%s", tap.door, tap.member_id,
                  strerror(-tap.relay_error), sep, ev.detail);
    else if (verdict.granted && tap.visitor)
        log_info("door %s: granted to a visitor of %s (card %.8s) at reader %s%s%s", tap.door,
                 tap.home, tap.card, reader, sep, ev.detail);
    else if (verdict.granted)
        log_info("door %s: granted to member %" PRId64 " (card %.8s) at reader %s%s%s", tap.door,
                 tap.member_id, tap.card, reader, sep, ev.detail);
    else if (tap.visitor)
        log_notice("door %s: denied to a visitor of %s (card %.8s) at reader %s: %s%s%s",
                   tap.door, tap.home, tap.card, reader, policy_reason_to_text(verdict.reason),
                   sep, ev.detail);
    else if (tap.member_id)
        log_notice("door %s: denied to member %" PRId64 " (card %.8s) at reader %s: %s%s%s",
                   tap.door, tap.member_id, tap.card, reader, policy_reason_to_text(verdict.reason),
                   sep, ev.detail);
    else
        log_notice("door %s: denied to unknown card %.8s at reader %s%s%s", tap.door, tap.card,
                   reader, sep, ev.detail);
    if (lookup < 0 && lookup != -ENOENT)
        log_error("door %s: card lookup failed: %s", tap.door, strerror(-lookup));
    if (facts.hours_unreadable)
        log_warning("door %s: the hours of plan %" PRId64 " cannot be read, so it opens nothing: "
                    "set them again", tap.door, subj.plan_id);
    if (visitor_lookup < 0 && visitor_lookup != -ENOENT)
        log_error("door %s: passport lookup failed: %s", tap.door, strerror(-visitor_lookup));
    if (r < 0)
        log_error("door %s: cannot record tap: %s", tap.door, strerror(-r));

    remember(e, &tap);
    if (ret)
        *ret = tap;
    return lookup < 0 && lookup != -ENOENT ? lookup : r;
}

int access_record_door_event(struct access_engine *e, struct door *d, const char *kind,
                             bool granted, const char *reason, const char *detail)
{
    struct store_event ev = { 0 };

    ev.at = now_utc();
    ev.resource_id = d->resource_id;
    strlcpy_checked(ev.kind, kind, sizeof(ev.kind));
    ev.granted = granted;
    strlcpy_checked(ev.reason, reason, sizeof(ev.reason));
    strlcpy_checked(ev.detail, detail ? detail : "", sizeof(ev.detail));
    return store_event_add(e->store, &ev, NULL);
}

void access_get_stats(const struct access_engine *e, struct access_stats *ret)
{
    *ret = e->stats;
}
