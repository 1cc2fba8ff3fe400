/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_visit_notice: visit notices as a home site receives them.
 *
 * Each input is up to FUZZ_MESSAGES_MAX messages (fuzz_passports.h), mostly notices on
 * portier/HOST/visits/HOME/ID, signed by the harness with the key the flags say and
 * delivered to passports_message(): the envelope, the host's key from the sites file, the
 * signature, the strict text (passport_notice_decode), the topic, then the record of what
 * the home heard (consortium_visits_heard), from which its next passport for that member
 * says how many days were used elsewhere.
 *
 * The contract (docs/consortium.md, "How the home site hears of visits"): a notice counts
 * only if it is about one of this site's members (HOME is this site), from another site
 * (HOST) of the sites file which signed it, with a canonical text for its topic; it then
 * raises what the home heard from that host for that member and month to its count, never
 * lowers it; anything else changes nothing the home heard. */
#include <errno.h>

#include "fuzz_passports.h"

struct heard {
    char host[32];
    int64_t days;
};

struct heard_list {
    unsigned n;
    struct heard h[8];
};

static int add_heard(const char *host, int64_t days, void *userdata)
{
    struct heard_list *l = userdata;

    if (l->n < 8) {
        snprintf(l->h[l->n].host, sizeof(l->h[0].host), "%s", host);
        l->h[l->n].days = days;
        l->n++;
    }
    return 0;
}

/* What the home heard of visitor in month, per host (0: nothing). */
static int64_t heard_from(const struct heard_list *l, const char *host)
{
    for (unsigned i = 0; i < l->n; i++)
        if (strcmp(l->h[i].host, host) == 0)
            return l->h[i].days;
    return 0;
}

static void heard(const char *visitor, const char *month, struct heard_list *ret)
{
    memset(ret, 0, sizeof(*ret));
    FUZZ_CHECK(store_consortium_heard_foreach(fz.sc, visitor, month, add_heard, ret) >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const hosts[] = { "lyon", "paris", "rogue", FUZZ_HOME };
    struct fuzz_message m;

    fuzz_site_setup();
    for (unsigned n = 0; n < FUZZ_MESSAGES_MAX && fuzz_next_message(&data, &size, &m); n++) {
        const struct fuzz_key *signer;
        struct passport_notice v;
        struct heard_list before, after;
        char site[32], home[32] = "";
        const char *rest = NULL, *id = NULL;
        bool decoded, ours, accepted;
        int r;

        fuzz_topic_site(m.topic, site);
        ours = site[0] && (strncmp(m.topic + 8 + strlen(site), "/passport/", 10) == 0 ||
                           strncmp(m.topic + 8 + strlen(site), "/visits/", 8) == 0);
        if (site[0] && strncmp(m.topic + 8 + strlen(site), "/visits/", 8) == 0) {
            const char *slash;
            rest = m.topic + 8 + strlen(site) + 8;
            slash = strchr(rest, '/');
            if (slash && (size_t)(slash - rest) < sizeof(home)) {
                memcpy(home, rest, (size_t)(slash - rest));
                home[slash - rest] = '\0';
                id = slash + 1;
            }
        }
        decoded = m.text_len < PASSPORT_TEXT_MAX &&
                  passport_notice_decode(m.text, m.text_len, &v) == 0;
        if (decoded) {
            char again[PASSPORT_TEXT_MAX];
            FUZZ_CHECK(passport_notice_encode(&v, again, sizeof(again)) == (int)m.text_len);
            FUZZ_CHECK(memcmp(again, m.text, m.text_len) == 0);
            FUZZ_CHECK(v.days >= 0 && v.days <= 31);
            heard(v.id, v.month, &before);
        }
        r = fuzz_deliver(&m, &signer);
        if (r < 0)
            continue;
        FUZZ_CHECK_MSG(r == ours, "passports_message() takes a topic that is not its own, or "
                                  "leaves one that is");
        if (!decoded)
            continue;           /* nothing to look up: no record may name what never decoded */
        accepted = id && !(m.flags & FUZZ_EMPTY_PAYLOAD) && signer &&
                   strcmp(signer->name, site) == 0 && strcmp(site, "rogue") != 0 &&
                   strcmp(site, FUZZ_HOME) != 0 && strcmp(home, FUZZ_HOME) == 0 &&
                   strcmp(v.host, site) == 0 && strcmp(v.home, home) == 0 &&
                   strcmp(v.id, id) == 0;
        heard(v.id, v.month, &after);
        for (unsigned h = 0; h < sizeof(hosts) / sizeof(hosts[0]); h++) {
            int64_t was = heard_from(&before, hosts[h]), now = heard_from(&after, hosts[h]);
            if (accepted && strcmp(hosts[h], v.host) == 0)
                FUZZ_CHECK_MSG(now == (v.days > was ? v.days : was),
                               "an accepted notice is not counted (or lowers the count)");
            else
                FUZZ_CHECK_MSG(now == was, "a notice that does not count changed what the "
                                           "home heard");
        }
        /* Only this site's members and other sites: never a notice of ours about ourselves. */
        FUZZ_CHECK(heard_from(&after, FUZZ_HOME) == 0);
    }
    FUZZ_CHECK(store_commit(fz.store) >= 0);
    return 0;
}
