/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_passport: other sites' passports as a host site receives them, and what its door
 * then knows.
 *
 * Each input is up to FUZZ_MESSAGES_MAX messages (fuzz_passports.h): mostly passports on
 * portier/HOME/passport/ID, signed by the harness with the key the flags say, delivered to
 * passports_message() — the envelope (passport_unwrap), the sites file's key, the
 * signature, the strict text (passport_decode), the topic, expiry, the cache
 * (store_consortium) — and then the door's question for every card the texts name, through
 * the store and through passports_visitor_ops.lookup() for the card 04:A1:B2:C3, whose
 * consortium hash the seeds carry. The cache starts empty at each input.
 *
 * The contract, from docs/consortium.md ("At a host site's door"): a passport counts only if
 * its home is in the sites file and signed it, its text is canonical and for its topic, and
 * it has not expired; an older passport never replaces a newer one; a revocation keeps the
 * cards known so that they tap as revoked; a cleared retained passport is forgotten; a card
 * in several passports is answered by an active one first, then the one valid now, then
 * the newest; the facts the door gets are the passport's (days used elsewhere: those at the
 * other sites, this month). Anything else — a forged, foreign, stale or mistaken passport —
 * leaves the door's answers as they were. */
#include <errno.h>

#include "access.h"
#include "fuzz_passports.h"

static const uint8_t tap_uid[] = { 0x04, 0xa1, 0xb2, 0xc3 };

/* What the cache should hold for one (home, id). */
struct expect {
    bool used, known;               /* known: cached */
    char home[32], id[PASSPORT_ID_HEX];
    struct passport pp;             /* the last one cached */
    unsigned n_cards;               /* the cards it answers for (a revocation keeps the
                                     * earlier ones) */
    uint8_t cards[PASSPORT_CARDS_MAX][PASSPORT_CARD_LEN];
    bool desfire[PASSPORT_CARDS_MAX];
    bool uncertain;                 /* expires within a second or two of now */
};

static struct expect ex[FUZZ_MESSAGES_MAX];
static uint8_t asked[FUZZ_MESSAGES_MAX * PASSPORT_CARDS_MAX + 1][PASSPORT_CARD_LEN];
static unsigned n_asked;

static struct expect *slot(const char *home, const char *id, bool create)
{
    for (unsigned i = 0; i < FUZZ_MESSAGES_MAX; i++)
        if (ex[i].used && strcmp(ex[i].home, home) == 0 && strcmp(ex[i].id, id) == 0)
            return &ex[i];
    if (!create)
        return NULL;
    for (unsigned i = 0; i < FUZZ_MESSAGES_MAX; i++)
        if (!ex[i].used) {
            memset(&ex[i], 0, sizeof(ex[i]));
            ex[i].used = true;
            snprintf(ex[i].home, sizeof(ex[i].home), "%s", home);
            snprintf(ex[i].id, sizeof(ex[i].id), "%s", id);
            return &ex[i];
        }
    abort();
}

static void ask_about(const uint8_t card[PASSPORT_CARD_LEN])
{
    for (unsigned i = 0; i < n_asked; i++)
        if (memcmp(asked[i], card, PASSPORT_CARD_LEN) == 0)
            return;
    memcpy(asked[n_asked++], card, PASSPORT_CARD_LEN);
}

static int64_t used_elsewhere(const struct passport *pp)
{
    int64_t sum = 0;
    for (unsigned i = 0; i < pp->n_used; i++)
        if (strcmp(pp->used[i].host, FUZZ_HOME) != 0)
            sum += pp->used[i].days;
    return sum;
}

/* The cached passport the door should find for card (NULL: none), as sql_pp_find orders
 * them: active first, then valid now, then the newest. *ambiguous: a tie. */
static const struct expect *expected_for(const uint8_t card[PASSPORT_CARD_LEN], int64_t now,
                                         bool *ambiguous, bool *uncertain, bool *desfire)
{
    const struct expect *best = NULL;

    *ambiguous = *uncertain = false;
    for (unsigned i = 0; i < FUZZ_MESSAGES_MAX; i++) {
        const struct expect *e = &ex[i];
        unsigned c;
        if (!e->used || !e->known)
            continue;
        for (c = 0; c < e->n_cards; c++)
            if (memcmp(e->cards[c], card, PASSPORT_CARD_LEN) == 0)
                break;
        if (c == e->n_cards)
            continue;
        *uncertain |= e->uncertain;
        if (!best) {
            best = e;
            *desfire = e->desfire[c];
            continue;
        }
        int rank_e[3] = { e->pp.revoked, !(e->pp.expires > now) }, rank_b[3] = {
            best->pp.revoked, !(best->pp.expires > now) };
        int cmp = rank_e[0] != rank_b[0] ? rank_e[0] - rank_b[0]
                : rank_e[1] != rank_b[1] ? rank_e[1] - rank_b[1]
                : (best->pp.issued > e->pp.issued) - (best->pp.issued < e->pp.issued);
        if (cmp < 0) {
            best = e;
            *desfire = e->desfire[c];
            *ambiguous = false;
        } else if (cmp == 0) {
            *ambiguous = true;
        }
    }
    return best;
}

static void check_card(const uint8_t card[PASSPORT_CARD_LEN], int64_t now)
{
    bool ambiguous, uncertain, desfire = false;
    const struct expect *e = expected_for(card, now, &ambiguous, &uncertain, &desfire);
    struct store_passport sp;
    int r = store_consortium_passport_find(fz.sc, card, now, &sp);

    if (uncertain)
        return;
    if (!e) {
        FUZZ_CHECK_MSG(r == -ENOENT, "the door finds a passport that should not be cached");
        return;
    }
    FUZZ_CHECK_MSG(r == 0, "a passport that should be cached is not found by its card");
    if (ambiguous)
        return;
    FUZZ_CHECK_MSG(strcmp(sp.home, e->home) == 0 && strcmp(sp.id, e->id) == 0,
                   "the door finds another passport than the one it should");
    FUZZ_CHECK(sp.revoked == e->pp.revoked);
    FUZZ_CHECK(sp.expires == e->pp.expires);
    FUZZ_CHECK(sp.visit_days == e->pp.visit_days);
    FUZZ_CHECK(strcmp(sp.month, e->pp.month) == 0);
    FUZZ_CHECK(sp.used_elsewhere == used_elsewhere(&e->pp));
    FUZZ_CHECK(sp.card_desfire == desfire);
}

/* The door's own question, for the card of the seeds. */
static void check_tap(int64_t now)
{
    uint8_t card[PASSPORT_CARD_LEN];
    struct access_visitor v;
    bool ambiguous, uncertain, desfire = false;
    const struct expect *e;
    char day[11];
    int r;

    passport_card_hash(fz.card_key, tap_uid, sizeof(tap_uid), card);
    e = expected_for(card, now, &ambiguous, &uncertain, &desfire);
    r = passports_visitor_ops.lookup(fz.p, tap_uid, sizeof(tap_uid), now, &v);
    if (uncertain)
        return;
    if (!e) {
        FUZZ_CHECK_MSG(r == -ENOENT, "a tap is taken for a visitor's without a passport");
        return;
    }
    FUZZ_CHECK(r == 0);
    if (ambiguous)
        return;
    FUZZ_CHECK(strcmp(v.home, e->home) == 0 && strcmp(v.id, e->id) == 0);
    FUZZ_CHECK(v.facts.revoked == e->pp.revoked);
    FUZZ_CHECK(v.facts.expires_at == e->pp.expires);
    FUZZ_CHECK(v.facts.visit_days == e->pp.visit_days);
    FUZZ_CHECK(!v.facts.visited_today);
    FUZZ_CHECK(v.facts.card_desfire == desfire);
    meter_billing_day(fz.meter, now, day);
    FUZZ_CHECK_MSG(v.facts.used_days == (strncmp(e->pp.month, day, 7) == 0
                                         ? used_elsewhere(&e->pp) : 0),
                   "the days used elsewhere are not the passport's for this month");
}

/* A passport the home signed for its topic (decoded: pp). */
static void expect_passport(const struct passport *pp, int64_t now)
{
    struct expect *e = slot(pp->home, pp->id, true);
    bool uncertain = pp->expires >= now - 2 && pp->expires <= now + 2;

    /* Never go back: an older one changes nothing, expired or not. */
    if (e->known && e->pp.issued > pp->issued)
        return;
    if (pp->expires <= now) {
        e->known = false;               /* expired: forgotten */
        e->uncertain |= uncertain;
        return;
    }
    if (!pp->revoked) {
        e->n_cards = pp->n_cards;
        memcpy(e->cards, pp->cards, sizeof(e->cards));
        memcpy(e->desfire, pp->card_desfire, sizeof(e->desfire));
    } else if (!e->known) {
        e->n_cards = 0;                 /* a revocation carries no cards */
    }
    e->pp = *pp;
    e->known = true;
    e->uncertain |= uncertain;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_message m;
    int64_t now;

    fuzz_site_setup();
    memset(ex, 0, sizeof(ex));
    n_asked = 0;
    /* Each input starts with an empty cache. */
    FUZZ_CHECK(store_consortium_passports_expire(fz.sc, INT64_MAX) >= 0);
    passport_card_hash(fz.card_key, tap_uid, sizeof(tap_uid), asked[n_asked++]);

    for (unsigned n = 0; n < FUZZ_MESSAGES_MAX && fuzz_next_message(&data, &size, &m); n++) {
        const struct fuzz_key *signer;
        struct passport pp;
        char site[32];
        const char *rest = NULL;
        bool ours, decoded;
        int r;

        fuzz_topic_site(m.topic, site);
        if (site[0] && strncmp(m.topic + 8 + strlen(site), "/passport/", 10) == 0)
            rest = m.topic + 8 + strlen(site) + 10;
        ours = site[0] && (strncmp(m.topic + 8 + strlen(site), "/passport/", 10) == 0 ||
                           strncmp(m.topic + 8 + strlen(site), "/visits/", 8) == 0);
        decoded = m.text_len < PASSPORT_TEXT_MAX &&
                  passport_decode(m.text, m.text_len, &pp) == 0;
        if (decoded) {
            for (unsigned c = 0; c < pp.n_cards; c++)
                ask_about(pp.cards[c]);
            /* What decodes is what encodes: one passport, one text. */
            char again[PASSPORT_TEXT_MAX];
            FUZZ_CHECK(passport_encode(&pp, again, sizeof(again)) == (int)m.text_len);
            FUZZ_CHECK(memcmp(again, m.text, m.text_len) == 0);
        }
        now = now_utc();
        r = fuzz_deliver(&m, &signer);
        if (r < 0)
            continue;
        FUZZ_CHECK_MSG(r == ours, "passports_message() takes a topic that is not its own, or "
                                  "leaves one that is");
        if (!rest || strchr(rest, '/') || strcmp(site, FUZZ_HOME) == 0)
            continue;                   /* not a passport, or our own */
        if (m.flags & FUZZ_EMPTY_PAYLOAD) {
            struct expect *e = slot(site, rest, false);
            if (e && name_is_valid(site))
                e->known = false;       /* a cleared retained passport: forgotten */
            continue;
        }
        if (signer && strcmp(signer->name, site) == 0 && strcmp(site, "rogue") != 0 &&
            decoded && strcmp(pp.home, site) == 0 && strcmp(pp.id, rest) == 0)
            expect_passport(&pp, now);
        /* Anything else leaves the cache as it was: checked below like the rest. */
    }
    now = now_utc();
    for (unsigned i = 0; i < n_asked; i++)
        check_card(asked[i], now);
    check_tap(now);
    FUZZ_CHECK(store_commit(fz.store) >= 0);
    return 0;
}
