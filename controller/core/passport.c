/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "passport.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvtext.h"
#include "util.h"

/* ---- small helpers ---- */

struct out {
    char *buf;
    size_t n, len;
    bool overflow;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (o->overflow)
        return;
    va_start(ap, fmt);
    k = vsnprintf(o->buf + o->len, o->n - o->len, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= o->n - o->len)
        o->overflow = true;
    else
        o->len += (size_t)k;
}

static bool month_ok(const char *m)
{
    if (strlen(m) != 7 || m[4] != '-')
        return false;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (m[i] < '0' || m[i] > '9'))
            return false;
    return (m[5] == '0' && m[6] >= '1') || (m[5] == '1' && m[6] <= '2');
}

static bool id_ok(const char *id)
{
    if (strlen(id) != PASSPORT_ID_HEX - 1)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* ---- passports ---- */

int passport_encode(const struct passport *p, char *buf, size_t n)
{
    struct out o = { buf, n, 0, false };
    char hex[2 * PASSPORT_CARD_LEN + 1];

    if (!name_is_valid(p->home) || !id_ok(p->id) || !month_ok(p->month) ||
        p->n_used > PASSPORT_HOSTS_MAX || p->n_cards > PASSPORT_CARDS_MAX || p->visit_days < 0)
        return -EINVAL;
    for (unsigned i = 0; i < p->n_used; i++)
        if (!name_is_valid(p->used[i].host) || p->used[i].days < 0 ||
            (i > 0 && strcmp(p->used[i - 1].host, p->used[i].host) >= 0))
            return -EINVAL;
    put(&o, "portier-passport-v1\nhome=%s\nid=%s\nstatus=%s\nissued=%" PRId64 "\nexpires=%" PRId64
        "\nvisit_days=%" PRId64 "\nmonth=%s\nused=", p->home, p->id,
        p->revoked ? "revoked" : "active", p->issued, p->expires, p->visit_days, p->month);
    for (unsigned i = 0; i < p->n_used; i++)
        put(&o, "%s%s:%" PRId64, i ? "," : "", p->used[i].host, p->used[i].days);
    put(&o, "\ncards=");
    for (unsigned i = 0; i < p->n_cards; i++) {
        sodium_bin2hex(hex, sizeof(hex), p->cards[i], PASSPORT_CARD_LEN);
        put(&o, "%s%s", i ? "," : "", hex);
    }
    put(&o, "\n");
    /* Only when there is something to say: a passport without DESFire cards keeps its
     * bytes, so sites that do not know this line still read it. */
    for (unsigned i = 0, first = 1; i < p->n_cards; i++)
        if (p->card_desfire[i]) {
            put(&o, "%s%u", first ? "desfire=" : ",", i);
            first = 0;
        }
    for (unsigned i = 0; i < p->n_cards; i++)
        if (p->card_desfire[i]) {
            put(&o, "\n");
            break;
        }
    return o.overflow ? -E2BIG : (int)o.len;
}

int passport_decode(const char *text, size_t len, struct passport *ret)
{
    struct passport p = { 0 };
    char status[16], used[PASSPORT_HOSTS_MAX * 56], cards[PASSPORT_CARDS_MAX * 65 + 1];
    char desfire[PASSPORT_CARDS_MAX * 2 + 1] = "";
    char again[PASSPORT_TEXT_MAX];
    char *tok, *save = NULL;
    struct kv_reader r;

    kv_begin(&r, text, len, PASSPORT_TEXT_MAX - 1, "portier-passport-v1");
    kv_text(&r, "home", p.home, sizeof(p.home));
    kv_text(&r, "id", p.id, sizeof(p.id));
    kv_text(&r, "status", status, sizeof(status));
    kv_int(&r, "issued", 0, INT64_MAX, &p.issued);
    kv_int(&r, "expires", 0, INT64_MAX, &p.expires);
    kv_int(&r, "visit_days", 0, INT64_MAX, &p.visit_days);
    kv_text(&r, "month", p.month, sizeof(p.month));
    kv_text(&r, "used", used, sizeof(used));
    kv_text(&r, "cards", cards, sizeof(cards));
    if (kv_more(&r))
        kv_text(&r, "desfire", desfire, sizeof(desfire));
    if (!kv_end(&r))
        return -EBADMSG;
    if (strcmp(status, "revoked") == 0)
        p.revoked = true;
    else if (strcmp(status, "active") != 0)
        return -EBADMSG;
    for (tok = strtok_r(used, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (!colon || p.n_used == PASSPORT_HOSTS_MAX ||
            (size_t)(colon - tok) >= sizeof(p.used[0].host))
            return -EBADMSG;
        *colon = '\0';
        snprintf(p.used[p.n_used].host, sizeof(p.used[0].host), "%s", tok);
        if (parse_int64(colon + 1, 0, 31 * 12, &p.used[p.n_used].days) < 0)
            return -EBADMSG;
        p.n_used++;
    }
    save = NULL;
    for (tok = strtok_r(cards, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (p.n_cards == PASSPORT_CARDS_MAX ||
            !hex_decode(tok, strlen(tok), p.cards[p.n_cards], PASSPORT_CARD_LEN))
            return -EBADMSG;
        p.n_cards++;
    }
    save = NULL;
    for (tok = strtok_r(desfire, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int64_t i;
        if (parse_int64(tok, 0, (int64_t)p.n_cards - 1, &i) < 0)
            return -EBADMSG;
        p.card_desfire[i] = true;
    }
    /* One passport, one text, one signature: the bytes must be what encode writes. */
    if (!kv_same(text, len, again, passport_encode(&p, again, sizeof(again))))
        return -EBADMSG;
    *ret = p;
    return 0;
}

int64_t passport_used_elsewhere(const struct passport *p, const char *host, const char *month)
{
    int64_t sum = 0;

    if (strcmp(p->month, month) != 0)
        return 0;
    for (unsigned i = 0; i < p->n_used; i++)
        if (strcmp(p->used[i].host, host) != 0)
            sum += p->used[i].days;
    return sum;
}

/* ---- visit notices ---- */

int passport_notice_encode(const struct passport_notice *v, char *buf, size_t n)
{
    int k;

    if (!name_is_valid(v->host) || !name_is_valid(v->home) || !id_ok(v->id) ||
        !month_ok(v->month) || v->days < 0)
        return -EINVAL;
    k = snprintf(buf, n, "portier-visits-v1\nhost=%s\nhome=%s\nid=%s\nmonth=%s\ndays=%" PRId64
                 "\n", v->host, v->home, v->id, v->month, v->days);
    return k < 0 || (size_t)k >= n ? -E2BIG : k;
}

int passport_notice_decode(const char *text, size_t len, struct passport_notice *ret)
{
    struct passport_notice v = { 0 };
    char again[PASSPORT_TEXT_MAX];
    struct kv_reader r;

    kv_begin(&r, text, len, PASSPORT_TEXT_MAX - 1, "portier-visits-v1");
    kv_text(&r, "host", v.host, sizeof(v.host));
    kv_text(&r, "home", v.home, sizeof(v.home));
    kv_text(&r, "id", v.id, sizeof(v.id));
    kv_text(&r, "month", v.month, sizeof(v.month));
    kv_int(&r, "days", 0, 31, &v.days);
    if (!kv_end(&r) || !kv_same(text, len, again, passport_notice_encode(&v, again, sizeof(again))))
        return -EBADMSG;
    *ret = v;
    return 0;
}

/* ---- on the wire ---- */

bool passport_signature_ok(const char *text, size_t len, const uint8_t sig[PASSPORT_SIG_LEN],
                           const uint8_t pk[PASSPORT_PK_LEN])
{
    return crypto_sign_verify_detached(sig, (const uint8_t *)text, len, pk) == 0;
}

/* ---- keys and names ---- */

void passport_card_hash(const uint8_t key[PASSPORT_KEY_LEN], const uint8_t *uid, size_t len,
                        uint8_t out[PASSPORT_CARD_LEN])
{
    crypto_generichash(out, PASSPORT_CARD_LEN, uid, len, key, PASSPORT_KEY_LEN);
}

void passport_pseudonym(const uint8_t key[PASSPORT_KEY_LEN], int64_t member_id,
                        char out[PASSPORT_ID_HEX])
{
    char msg[48];
    uint8_t h[PASSPORT_ID_LEN];
    int k = snprintf(msg, sizeof(msg), "portier-member\n%" PRId64, member_id);

    crypto_generichash(h, sizeof(h), (const uint8_t *)msg, (size_t)k, key, PASSPORT_KEY_LEN);
    sodium_bin2hex(out, PASSPORT_ID_HEX, h, sizeof(h));
}

/* Whether name is among the first n sites of out. */
static bool site_listed(const struct passport_site *out, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(out[i].name, name) == 0)
            return true;
    return false;
}

int passport_sites_parse(const char *text, size_t len, struct passport_site *out, size_t max,
                         unsigned *ret_line)
{
    const char *p = text, *end = text + len;
    unsigned line = 0;
    size_t n = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_len = nl ? (size_t)(nl - p) : (size_t)(end - p), used = 0;
        char buf[160], name[40], hex[80], extra[2];
        uint8_t pk[PASSPORT_PK_LEN];
        int k = -2;

        line++;
        /* A comment runs to the end of its line, however long, and white space around the
         * fields is of any length; the fields themselves must fit a line of a name and a
         * key. A NUL byte is no text. */
        while (used < line_len && p[used] != '#' && p[used] != '\0')
            used++;
        if (used == line_len || p[used] == '#') {
            const char *b = p, *e = p + used;
            while (b < e && isspace((unsigned char)*b))
                b++;
            while (e > b && isspace((unsigned char)e[-1]))
                e--;
            if (b == e) {
                k = -1;                         /* blank, or only a comment */
            } else if ((size_t)(e - b) < sizeof(buf)) {
                memcpy(buf, b, (size_t)(e - b));
                buf[e - b] = '\0';
                k = sscanf(buf, "%39s %79s %1s", name, hex, extra);   /* spaces, tabs, CR */
            }
        }
        if (k == 2 && name_is_valid(name) && strlen(name) < sizeof(out->name) &&
            hex_decode(hex, strlen(hex), pk, sizeof(pk))) {
            int why = site_listed(out, n, name) ? -EEXIST : n == max ? -E2BIG : 0;
            if (why < 0) {
                *ret_line = line;
                return why;
            }
            memcpy(out[n].name, name, strlen(name) + 1);
            memcpy(out[n].pk, pk, sizeof(pk));
            n++;
        } else if (k != -1) {                   /* not blank, not only a comment */
            *ret_line = line;
            return -EINVAL;
        }
        p += line_len + (nl ? 1 : 0);
    }
    return (int)n;
}
