/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "passports.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "log.h"
#include "passport.h"
#include "passport_json.h"
#include "timer.h"
#include "util.h"

#define SITES_MAX 256
#define SITES_FILE_MAX (64 * 1024)

struct passports {
    sd_event *loop;
    struct store *store;
    struct store_consortium *sc;
    struct meter *meter;
    struct mqtt *mqtt;
    const struct config *cfg;
    uint8_t card_key[PASSPORT_KEY_LEN];     /* the consortium's */
    uint8_t member_key[PASSPORT_KEY_LEN];   /* this site's, for pseudonyms */
    struct passport_site sites[SITES_MAX];
    unsigned n_sites;
    struct timer *scan;
    char prefix[80];                        /* "PREFIX/" */
    struct passports_stats stats;
};

/* ---- keys ---- */

/* 32 raw bytes, or 64 hex digits (and a newline). */
static int load_card_key(struct passports *p)
{
    char buf[130];
    size_t len = 0;
    int r = file_read_small(p->cfg->consortium.card_key_file, buf, sizeof(buf), &len, NULL);

    if (r < 0) {
        log_error("consortium: cannot read card_key_file %s: %s",
                  p->cfg->consortium.card_key_file, strerror(-r));
        sodium_memzero(buf, sizeof(buf));
        return r;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len == PASSPORT_KEY_LEN) {
        memcpy(p->card_key, buf, PASSPORT_KEY_LEN);
    } else if (!hex_decode(buf, len, p->card_key, PASSPORT_KEY_LEN)) {
        log_error("consortium: %s: the card key must be 32 bytes (or 64 hex digits)",
                  p->cfg->consortium.card_key_file);
        sodium_memzero(buf, sizeof(buf));
        return -EINVAL;
    }
    sodium_memzero(buf, sizeof(buf));
    return 0;
}

static int load_sites(struct passports *p)
{
    char *text;
    size_t len = 0;
    unsigned line = 0;
    int r, n;

    if (!p->cfg->consortium.sites_file[0]) {
        log_warning("consortium: no sites_file: other sites' passports will be dropped");
        return 0;
    }
    text = malloc(SITES_FILE_MAX);
    if (!text)
        return -ENOMEM;
    r = file_read_small(p->cfg->consortium.sites_file, text, SITES_FILE_MAX, &len, NULL);
    if (r < 0) {
        log_error("consortium: cannot read sites_file %s: %s", p->cfg->consortium.sites_file,
                  strerror(-r));
        free(text);
        return r;
    }
    n = passport_sites_parse(text, len, p->sites, SITES_MAX, &line);
    free(text);
    if (n == -EEXIST)
        log_error("%s:%u: this site is listed already (one key per site)",
                  p->cfg->consortium.sites_file, line);
    else if (n == -E2BIG)
        log_error("%s:%u: more than %d sites", p->cfg->consortium.sites_file, line, SITES_MAX);
    else if (n < 0)
        log_error("%s:%u: expected NAME and a 64-hex-digit public key",
                  p->cfg->consortium.sites_file, line);
    if (n < 0)
        return n;
    p->n_sites = (unsigned)n;
    return 0;
}

static const struct passport_site *site_key(const struct passports *p, const char *name)
{
    for (unsigned i = 0; i < p->n_sites; i++)
        if (strcmp(p->sites[i].name, name) == 0)
            return &p->sites[i];
    return NULL;
}

static void month_days(const char *month, char first[11], char last[11])
{
    period_days(month, first, last);
}

static void billing_month(struct passports *p, int64_t t, char day[11], char month[8])
{
    meter_billing_day(p->meter, t, day);
    snprintf(month, 8, "%.7s", day);
}

/* Sign text with the site key and publish it retained under PREFIX/SITE/suffix. */
static int publish_signed(struct passports *p, const char *suffix, const char *text, size_t len)
{
    uint8_t sig[PASSPORT_SIG_LEN];
    size_t plen = 0;
    char *payload;
    int r;

    meter_sign(p->meter, text, len, sig);
    payload = passport_wrap(text, len, sig, &plen);
    if (!payload)
        return -ENOMEM;
    r = mqtt_publish_raw(p->mqtt, suffix, payload, plen, true, NULL);
    free(payload);
    return r;
}

/* ---- home site: publishing passports ---- */

struct eligible {
    int64_t member_id;
    int64_t visit_days;
    uint8_t hash[PASSPORT_CARD_LEN];
    bool desfire;
};

struct eligible_list {
    struct eligible *v;
    size_t n, cap;
};

static int collect_eligible(int64_t member_id, int64_t visit_days, const uint8_t hash[32],
                            bool desfire, void *userdata)
{
    struct eligible_list *l = userdata;

    if (ARRAY_RESERVE(l->v, l->n, l->cap, 64) < 0)
        return -ENOMEM;
    l->v[l->n].member_id = member_id;
    l->v[l->n].visit_days = visit_days;
    memcpy(l->v[l->n].hash, hash, PASSPORT_CARD_LEN);
    l->v[l->n].desfire = desfire;
    l->n++;
    return 0;
}

static int add_used(const char *host, int64_t days, void *userdata)
{
    struct passport *pp = userdata;

    if (pp->n_used < PASSPORT_HOSTS_MAX && name_is_valid(host)) {
        snprintf(pp->used[pp->n_used].host, sizeof(pp->used[0].host), "%s", host);
        pp->used[pp->n_used++].days = days;
    }
    return 0;
}

static void digest_of(const struct passport *pp, uint8_t out[32])
{
    struct passport copy = *pp;
    char text[PASSPORT_TEXT_MAX];
    int len;

    copy.issued = copy.expires = 0;
    len = passport_encode(&copy, text, sizeof(text));
    crypto_generichash(out, 32, (const uint8_t *)text, len > 0 ? (size_t)len : 0, NULL, 0);
}

/* Publish pp (filled but for issued/expires) if it differs from what was published or is
 * half-way to expiry. */
static int publish_passport(struct passports *p, struct passport *pp, int64_t member_id,
                            int64_t now)
{
    struct store_passport_out out = { 0 }, prev;
    int64_t validity = p->cfg->consortium.passport_days * 86400;
    char text[PASSPORT_TEXT_MAX], suffix[80];
    int len, r;

    digest_of(pp, out.digest);
    r = store_consortium_out_get(p->sc, pp->id, &prev);
    if (r < 0 && r != -ENOENT)
        return r;
    if (r == 0 && memcmp(prev.digest, out.digest, sizeof(out.digest)) == 0 &&
        prev.revoked == pp->revoked && now - prev.issued < validity / 2 && now >= prev.issued)
        return 0;
    if (r == -ENOENT && pp->revoked)
        return 0;
    pp->issued = out.issued = now;
    pp->expires = out.expires = now + validity;
    out.revoked = pp->revoked;
    len = passport_encode(pp, text, sizeof(text));
    if (len < 0)
        return len;
    snprintf(suffix, sizeof(suffix), "passport/%s", pp->id);
    r = publish_signed(p, suffix, text, (size_t)len);
    if (r < 0)
        return r;
    if (pp->revoked)
        p->stats.revoked++;
    else
        p->stats.published++;
    log_debug("consortium: %s passport %.8s (member %" PRId64 ")",
              pp->revoked ? "revoked" : "published", pp->id, member_id);
    return store_consortium_out_put(p->sc, pp->id, member_id, &out);
}

struct revoke_ctx {
    struct passports *p;
    const char (*seen)[PASSPORT_ID_HEX];
    size_t n_seen;
    int64_t now;
    char month[8];
    int r;
};

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int revoke_unseen(const char *id, int64_t member_id, bool revoked, int64_t issued,
                         void *userdata)
{
    struct revoke_ctx *rc = userdata;
    struct passport pp = { 0 };

    (void)issued;
    if (revoked || bsearch(id, rc->seen, rc->n_seen, PASSPORT_ID_HEX, cmp_id))
        return 0;
    snprintf(pp.home, sizeof(pp.home), "%s", rc->p->cfg->site.id);
    snprintf(pp.id, sizeof(pp.id), "%s", id);
    snprintf(pp.month, sizeof(pp.month), "%s", rc->month);
    pp.revoked = true;
    rc->r = publish_passport(rc->p, &pp, member_id, rc->now);
    return rc->r < 0 ? rc->r : 0;
}

static void scan(struct passports *p)
{
    struct eligible_list l = { 0 };
    char (*seen)[PASSPORT_ID_HEX] = NULL;
    size_t n_seen = 0;
    int64_t now = now_utc();
    char day[11];
    struct revoke_ctx rc = { .p = p, .now = now };
    int r;

    if (!mqtt_is_connected(p->mqtt))
        return;
    billing_month(p, now, day, rc.month);
    r = store_consortium_eligible_foreach(p->sc, now, collect_eligible, &l);
    if (r < 0)
        goto out;
    seen = calloc(l.n ? l.n : 1, sizeof(*seen));
    if (!seen) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < l.n;) {
        struct passport pp = { 0 };
        int64_t member = l.v[i].member_id;

        snprintf(pp.home, sizeof(pp.home), "%s", p->cfg->site.id);
        passport_pseudonym(p->member_key, member, pp.id);
        pp.visit_days = l.v[i].visit_days;
        snprintf(pp.month, sizeof(pp.month), "%s", rc.month);
        for (; i < l.n && l.v[i].member_id == member; i++)
            if (pp.n_cards < PASSPORT_CARDS_MAX) {
                pp.card_desfire[pp.n_cards] = l.v[i].desfire;
                memcpy(pp.cards[pp.n_cards++], l.v[i].hash, PASSPORT_CARD_LEN);
            }
        r = store_consortium_heard_foreach(p->sc, pp.id, rc.month, add_used, &pp);
        if (r < 0)
            goto out;
        memcpy(seen[n_seen++], pp.id, PASSPORT_ID_HEX);
        r = publish_passport(p, &pp, member, now);
        if (r < 0)
            goto out;
    }
    qsort(seen, n_seen, PASSPORT_ID_HEX, cmp_id);
    rc.seen = (const char (*)[PASSPORT_ID_HEX])seen;
    rc.n_seen = n_seen;
    r = store_consortium_out_foreach(p->sc, revoke_unseen, &rc);
    if (r == 0)
        r = rc.r;
    if (r == 0) {
        r = store_consortium_passports_expire(p->sc, now);
        if (r > 0)
            log_info("consortium: %d expired passport(s) of other sites dropped", r);
        r = r < 0 ? r : 0;
    }
out:
    if (r < 0)
        log_warning("consortium: cannot publish passports: %s", strerror(-r));
    free(seen);
    free(l.v);
}

/* Scan after usec: a timer armed at creation only fails on a loop that has finished. */
static void scan_in(struct passports *p, uint64_t usec)
{
    int r = timer_arm_in(p->scan, usec);
    if (r < 0)
        log_error("consortium: cannot arm the passport scan: %s", strerror(-r));
}

static void scan_due(void *userdata)
{
    struct passports *p = userdata;

    scan(p);
    scan_in(p, (uint64_t)p->cfg->consortium.passport_scan_seconds * 1000000u);
}

/* ---- host site: other sites' passports and the notices about our members ---- */

/* "PREFIX/SITE/WHAT/REST": SITE into site, REST after "WHAT/". NULL if not that shape. */
static const char *split_topic(const struct passports *p, const char *topic, const char *what,
                               char site[32])
{
    size_t plen = strlen(p->prefix), wlen = strlen(what);
    const char *s, *slash;

    if (strncmp(topic, p->prefix, plen) != 0)
        return NULL;
    s = topic + plen;
    slash = strchr(s, '/');
    if (!slash || slash == s || (size_t)(slash - s) >= 32)
        return NULL;
    if (strncmp(slash + 1, what, wlen) != 0 || slash[1 + wlen] != '/')
        return NULL;
    memcpy(site, s, (size_t)(slash - s));
    site[slash - s] = '\0';
    return slash + 2 + wlen;
}

static bool verified(struct passports *p, const char *signer, const void *payload, int len,
                     char *text, size_t *ret_len, const char *what)
{
    uint8_t sig[PASSPORT_SIG_LEN];
    const struct passport_site *site = site_key(p, signer);

    if (!site) {
        log_warning("consortium: %s from unknown site %.31s dropped (not in sites_file)", what,
                    signer);
        return false;
    }
    if (passport_unwrap(payload, (size_t)len, text, ret_len, sig) < 0) {
        log_warning("consortium: malformed %s from site %s dropped", what, signer);
        return false;
    }
    if (!passport_signature_ok(text, *ret_len, sig, site->pk)) {
        log_warning("consortium: %s from site %s with a bad signature dropped", what, signer);
        return false;
    }
    return true;
}

static void on_passport(struct passports *p, const char *home, const char *id,
                        const void *payload, int len)
{
    char text[PASSPORT_TEXT_MAX];
    size_t tlen = 0;
    struct passport pp;
    struct store_passport sp = { 0 };
    int64_t now = now_utc();
    int r;

    if (strcmp(home, p->cfg->site.id) == 0)
        return;                 /* our own: our members are known here anyway */
    p->stats.received++;
    if (len == 0) {
        /* A cleared retained passport: forget it. Only its home (the broker's ACL) can. */
        if (name_is_valid(home) && strlen(id) < sizeof(sp.id))
            store_consortium_passport_delete(p->sc, home, id);
        return;
    }
    if (!verified(p, home, payload, len, text, &tlen, "passport")) {
        p->stats.refused++;
        return;
    }
    if (passport_decode(text, tlen, &pp) < 0 || strcmp(pp.home, home) != 0 ||
        strcmp(pp.id, id) != 0) {
        log_warning("consortium: passport from site %s refused: not in canonical form, or "
                    "not for its topic", home);
        p->stats.refused++;
        return;
    }
    if (pp.expires <= now) {
        /* An older passport never replaces a newer one, even to expire it. */
        r = store_consortium_passport_expired(p->sc, home, id, pp.issued);
        if (r < 0)
            log_error("consortium: cannot forget an expired passport of site %s: %s", home,
                      strerror(-r));
        else
            log_info("consortium: expired passport %.8s of site %s dropped", pp.id, home);
        return;
    }
    snprintf(sp.home, sizeof(sp.home), "%s", pp.home);
    snprintf(sp.id, sizeof(sp.id), "%s", pp.id);
    sp.revoked = pp.revoked;
    sp.issued = pp.issued;
    sp.expires = pp.expires;
    sp.visit_days = pp.visit_days;
    snprintf(sp.month, sizeof(sp.month), "%s", pp.month);
    sp.used_elsewhere = passport_used_elsewhere(&pp, p->cfg->site.id, pp.month);
    r = store_consortium_passport_put(p->sc, &sp, (const uint8_t (*)[32])pp.cards,
                                      pp.card_desfire, pp.n_cards,
                                      p->cfg->consortium.passports_max, now);
    if (r == -ESTALE)
        log_debug("consortium: older passport %.8s of site %s ignored", pp.id, home);
    else if (r == -ENOSPC)
        log_warning("consortium: passport of site %s dropped: %" PRId64 " passports cached "
                    "(passports_max)", home, p->cfg->consortium.passports_max);
    else if (r < 0)
        log_error("consortium: cannot cache a passport of site %s: %s", home, strerror(-r));
    else
        log_debug("consortium: passport %.8s of site %s cached (%s)", pp.id, home,
                  pp.revoked ? "revoked" : "active");
}

static void on_notice(struct passports *p, const char *host, const char *rest,
                      const void *payload, int len)
{
    char text[PASSPORT_TEXT_MAX], home[32];
    const char *slash = strchr(rest, '/');
    size_t tlen = 0;
    struct passport_notice v;
    int r;

    if (!slash || (size_t)(slash - rest) >= sizeof(home) || len == 0 ||
        strcmp(host, p->cfg->site.id) == 0)
        return;
    memcpy(home, rest, (size_t)(slash - rest));
    home[slash - rest] = '\0';
    if (strcmp(home, p->cfg->site.id) != 0)
        return;                 /* about another site's members */
    if (!verified(p, host, payload, len, text, &tlen, "visit notice"))
        return;
    if (passport_notice_decode(text, tlen, &v) < 0 || strcmp(v.host, host) != 0 ||
        strcmp(v.home, home) != 0 || strcmp(v.id, slash + 1) != 0) {
        log_warning("consortium: visit notice from site %s refused: not in canonical form, or "
                    "not for its topic", host);
        return;
    }
    r = store_consortium_heard_put(p->sc, v.id, v.host, v.month, v.days, now_utc());
    if (r < 0) {
        log_error("consortium: cannot record a visit notice of site %s: %s", host, strerror(-r));
        return;
    }
    log_info("consortium: site %s reports %" PRId64 " visit day(s) in %s by member %.8s", host,
             v.days, v.month, v.id);
    /* The member's passport now carries it: publish it soon (not from inside the callback
     * of the message, and after the write is committed with everything else). */
    scan_in(p, 200000u);
}

bool passports_message(struct passports *p, const char *topic, const void *payload, int len)
{
    char site[32];
    const char *rest;

    if ((rest = split_topic(p, topic, "passport", site))) {
        if (!strchr(rest, '/'))
            on_passport(p, site, rest, payload, len);
        return true;
    }
    if ((rest = split_topic(p, topic, "visits", site))) {
        on_notice(p, site, rest, payload, len);
        return true;
    }
    return false;
}

static int publish_notice(struct passports *p, const char *home, const char *id,
                          const char *month, int64_t days)
{
    struct passport_notice v = { .days = days };
    char text[PASSPORT_TEXT_MAX], suffix[96];
    int len;

    snprintf(v.host, sizeof(v.host), "%s", p->cfg->site.id);
    snprintf(v.home, sizeof(v.home), "%s", home);
    snprintf(v.id, sizeof(v.id), "%s", id);
    snprintf(v.month, sizeof(v.month), "%s", month);
    len = passport_notice_encode(&v, text, sizeof(text));
    if (len < 0)
        return len;
    snprintf(suffix, sizeof(suffix), "visits/%s/%s", home, id);
    return publish_signed(p, suffix, text, (size_t)len);
}

static int notice_again(const char *home, const char *visitor, int64_t days, void *userdata)
{
    struct passports *p = ((void **)userdata)[0];
    const char *month = ((void **)userdata)[1];

    publish_notice(p, home, visitor, month, days);
    return 0;
}

void passports_connected(struct passports *p)
{
    char day[11], month[8], first[11], last[11];
    void *ctx[2] = { p, month };

    mqtt_subscribe_consortium(p->mqtt, "+/passport/#");
    mqtt_subscribe_consortium(p->mqtt, "+/visits/#");
    /* Notices are retained: sending this month's again costs nothing and repairs any that
     * could not be sent while offline. */
    billing_month(p, now_utc(), day, month);
    month_days(month, first, last);
    store_consortium_visits_month_foreach(p->sc, first, last, notice_again, ctx);
    scan_in(p, 100000u);
}

/* ---- at the door ---- */

static int visitor_lookup(void *userdata, const uint8_t *uid, size_t uid_len, int64_t now,
                          struct access_visitor *ret)
{
    struct passports *p = userdata;
    uint8_t hash[PASSPORT_CARD_LEN];
    struct store_passport sp;
    char day[11], month[8], first[11], last[11];
    int64_t here, today;
    int r;

    passport_card_hash(p->card_key, uid, uid_len, hash);
    r = store_consortium_passport_find(p->sc, hash, now, &sp);
    if (r < 0)
        return r;
    billing_month(p, now, day, month);
    month_days(month, first, last);
    here = store_consortium_visit_days(p->sc, sp.home, sp.id, first, last);
    today = store_consortium_visit_days(p->sc, sp.home, sp.id, day, day);
    if (here < 0 || today < 0)
        return here < 0 ? (int)here : (int)today;
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->home, sizeof(ret->home), "%s", sp.home);
    snprintf(ret->id, sizeof(ret->id), "%s", sp.id);
    ret->facts.revoked = sp.revoked;
    ret->facts.expires_at = sp.expires;
    ret->facts.visit_days = sp.visit_days;
    ret->facts.used_days = here + (strcmp(sp.month, month) == 0 ? sp.used_elsewhere : 0);
    ret->facts.visited_today = today > 0;
    ret->facts.card_desfire = sp.card_desfire;
    return 0;
}

static void visitor_admitted(void *userdata, const struct access_visitor *v, const char *door,
                             int64_t at)
{
    struct passports *p = userdata;
    struct store_visit sv = { 0 };
    char month[8], first[11], last[11];
    int64_t id = 0, seq = 0, days;
    int r;

    if (v->facts.visited_today)
        return;
    snprintf(sv.home, sizeof(sv.home), "%s", v->home);
    snprintf(sv.visitor, sizeof(sv.visitor), "%s", v->id);
    billing_month(p, at, sv.billing_day, month);
    snprintf(sv.door, sizeof(sv.door), "%s", door);
    sv.at = at;
    sv.amount_cents = p->cfg->consortium.visit_price_cents;
    /* The visit record and its ledger entry in one step: both or neither. */
    r = store_step_begin(p->store);
    if (r == 0)
        r = meter_next_seq(p->meter, &sv.ledger_seq);
    if (r == 0)
        r = store_consortium_visit_add(p->sc, &sv, &id);
    if (r == 0)
        r = meter_visit(p->meter, id, sv.home, sv.visitor, door, at, sv.amount_cents, &seq);
    if (r == 0 && seq != sv.ledger_seq)
        r = -EIO;
    r = store_step_end(p->store, r == 0) < 0 && r == 0 ? -EIO : r;
    if (r < 0) {
        log_error("consortium: cannot record the visit of a member of %s at door %s: %s",
                  sv.home, door, strerror(-r));
        return;
    }
    p->stats.visits++;
    log_info("consortium: visit day %s of a member of %s (passport %.8s) recorded, ledger "
             "entry %" PRId64, sv.billing_day, sv.home, sv.visitor, seq);
    month_days(month, first, last);
    days = store_consortium_visit_days(p->sc, sv.home, sv.visitor, first, last);
    if (days > 0 && mqtt_is_connected(p->mqtt))
        publish_notice(p, sv.home, sv.visitor, month, days);
}

const struct access_visitor_ops passports_visitor_ops = {
    .lookup = visitor_lookup,
    .admitted = visitor_admitted,
};

void passports_card_seen(struct passports *p, int64_t card_id, const uint8_t *uid, size_t len)
{
    uint8_t hash[PASSPORT_CARD_LEN];
    int r;

    if (!p || card_id <= 0)
        return;
    passport_card_hash(p->card_key, uid, len, hash);
    r = store_consortium_card_set(p->sc, card_id, hash);
    if (r < 0)
        log_warning("consortium: cannot keep the consortium hash of card %" PRId64 ": %s",
                    card_id, strerror(-r));
}

void passports_member_gone(struct passports *p, int64_t member_id)
{
    struct passport pp = { 0 };
    struct store_passport_out prev;
    int64_t now = now_utc();
    char day[11];
    int r;

    if (!p)
        return;
    passport_pseudonym(p->member_key, member_id, pp.id);
    if (store_consortium_out_get(p->sc, pp.id, &prev) < 0 || prev.revoked)
        return;             /* never published, or already revoked */
    if (!mqtt_is_connected(p->mqtt)) {
        log_info("consortium: passport %.8s will be revoked when the broker is back", pp.id);
        return;             /* the next scan revokes it: the member is no longer eligible */
    }
    snprintf(pp.home, sizeof(pp.home), "%s", p->cfg->site.id);
    billing_month(p, now, day, pp.month);
    pp.revoked = true;
    r = publish_passport(p, &pp, member_id, now);
    if (r < 0)
        log_warning("consortium: cannot revoke passport %.8s now: %s (the next scan will)",
                    pp.id, strerror(-r));
    else
        log_info("consortium: passport %.8s of member %" PRId64 " revoked", pp.id, member_id);
}

/* ---- life ---- */

int passports_new(sd_event *loop, struct store *store, struct store_consortium *sc,
                  struct meter *meter, struct mqtt *mqtt, const struct config *cfg,
                  struct passports **ret)
{
    struct passports *p = calloc(1, sizeof(*p));
    int r;

    if (!p)
        return -ENOMEM;
    p->loop = loop;
    p->store = store;
    p->sc = sc;
    p->meter = meter;
    p->mqtt = mqtt;
    p->cfg = cfg;
    snprintf(p->prefix, sizeof(p->prefix), "%s/", cfg->mqtt.prefix);
    r = load_card_key(p);
    if (r == 0)
        r = load_sites(p);
    if (r == 0)
        r = store_secret(store, "passport_member_key", p->member_key, sizeof(p->member_key));
    if (r < 0 || (r = timer_new(loop, CLOCK_MONOTONIC, 100000, scan_due, p, &p->scan)) < 0 ||
        (r = timer_arm_in(p->scan, 1000000u)) < 0)
        goto fail;
    log_info("consortium: passports on, %u other site(s) known", p->n_sites);
    *ret = p;
    return 0;
fail:
    passports_free(p);
    return r;
}

void passports_reconfigure(struct passports *p, const struct config *cfg)
{
    if (p)
        p->cfg = cfg;
}

struct passports *passports_free(struct passports *p)
{
    if (!p)
        return NULL;
    timer_free(p->scan);
    sodium_memzero(p->card_key, sizeof(p->card_key));
    sodium_memzero(p->member_key, sizeof(p->member_key));
    free(p);
    return NULL;
}

void passports_get_stats(const struct passports *p, struct passports_stats *ret)
{
    *ret = p->stats;
}
