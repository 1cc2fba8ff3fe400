/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "mail.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "delivery.h"
#include "log.h"
#include "mime.h"
#include "services.h"
#include "store.h"
#include "util.h"

/* A message being written: its subject, and its body as text and as HTML. */
struct draft {
    enum lang lang;
    char subject[STORE_MAIL_SUBJECT_MAX];
    struct mime_buf text, html;
};

static void draft_free(struct draft *d)
{
    mime_buf_free(&d->text);
    mime_buf_free(&d->html);
}

static void put(struct mime_buf *b, const char *s)
{
    mime_buf_put(b, s, strlen(s));
}

static void put_html(struct mime_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '&': put(b, "&amp;"); break;
        case '"': put(b, "&quot;"); break;
        case '\'': put(b, "&#39;"); break;
        default: mime_buf_put(b, s, 1);
        }
    }
}

static void subject(struct draft *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void subject(struct draft *d, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->subject, sizeof(d->subject), fmt, ap);
    va_end(ap);
    utf8_sanitize(d->subject);          /* a name cut at the end of the buffer */
}

/* A paragraph, in both bodies (HTML escaped). */
static void para(struct draft *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void para(struct draft *d, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    utf8_sanitize(text);
    put(&d->text, text);
    put(&d->text, "\n\n");
    put(&d->html, "<p>");
    put_html(&d->html, text);
    put(&d->html, "</p>\n");
}

/* A link: the address on its own line in text, a button in HTML. */
static void button(struct draft *d, const char *label, const char *url)
{
    put(&d->text, label);
    put(&d->text, "\n");
    put(&d->text, url);
    put(&d->text, "\n\n");
    put(&d->html, "<p><a href=\"");
    put_html(&d->html, url);
    put(&d->html, "\" style=\"display:inline-block;padding:.6em 1.2em;background:#1d4ed8;"
                  "color:#fff;border-radius:4px;text-decoration:none\">");
    put_html(&d->html, label);
    put(&d->html, "</a></p>\n");
}

static void begin(struct draft *d, const struct config *cfg, const char *name)
{
    put(&d->html, "<!DOCTYPE html>\n<html lang=\"");
    put(&d->html, i18n_code(d->lang));
    put(&d->html, "\"><head><meta charset=\"utf-8\"><title>");
    put_html(&d->html, d->subject);
    put(&d->html, "</title></head>\n<body style=\"font-family:sans-serif;line-height:1.5;"
                  "max-width:40em\">\n");
    if (name && *name)
        para(d, i18n_t(d->lang, "Hello %s,"), name);
    else
        para(d, "%s", i18n_t(d->lang, "Hello,"));
}

static void end(struct draft *d, const struct config *cfg)
{
    put(&d->text, "-- \n");
    put(&d->html, "<hr><p style=\"color:#555;font-size:.9em\">");
    char line[256];
    snprintf(line, sizeof(line), i18n_t(d->lang, "This message was sent by Portier, the access "
                                                 "system of %s."), cfg->site.name);
    utf8_sanitize(line);
    put(&d->text, line);
    put(&d->text, "\n");
    put_html(&d->html, line);
    put(&d->html, "</p>\n</body></html>\n");
}

/* "Wednesday 9 December 2026, 14:00 – 16:00" (the end's date too when it differs). */
static void span(enum lang lang, int64_t start, int64_t end, char *buf, size_t n)
{
    char day[72], from[16], to[48], d1[32], d2[32];

    i18n_time(lang, start, I18N_DATE_LONG, day, sizeof(day));
    i18n_time(lang, start, I18N_TIME, from, sizeof(from));
    i18n_time(lang, start, I18N_DATE, d1, sizeof(d1));
    i18n_time(lang, end, I18N_DATE, d2, sizeof(d2));
    if (strcmp(d1, d2) == 0)
        i18n_time(lang, end, I18N_TIME, to, sizeof(to));
    else
        i18n_time(lang, end, I18N_DATETIME, to, sizeof(to));
    snprintf(buf, n, "%s, %s – %s", day, from, to);
}

json_t *mail_outcome_json(const struct mail_outcome *o)
{
    if (o->queued)
        return json_pack("{s:b, s:I}", "queued", 1, "id", (json_int_t)o->id);
    return json_pack("{s:b, s:s}", "queued", 0, "why", o->why);
}

static int account_lang(const struct store_account *a, void *userdata)
{
    char *lang = userdata;

    /* The first account (by name) that chose a language, disabled ones aside. */
    if (!lang[0] && !a->disabled_at && a->language[0])
        snprintf(lang, 4, "%s", a->language);
    return 0;
}

enum lang mail_member_lang(struct services *svc, int64_t member_id)
{
    enum lang fallback = (enum lang)svc->cfg->site.language;
    char lang[4] = "";

    if (member_id <= 0 ||
        store_member_accounts_foreach(svc->store, member_id, account_lang, lang) < 0 || !lang[0])
        return fallback;
    return i18n_parse(lang, fallback);
}

static void outcome(struct mail_outcome *ret, bool queued, int64_t id, const char *why)
{
    if (!ret)
        return;
    ret->queued = queued;
    ret->id = id;
    snprintf(ret->why, sizeof(ret->why), "%s", why ? why : "");
}

/* A Message-ID that no other message has: the time, random bytes, the sender's domain. */
static void message_id(const struct config *cfg, int64_t now, char *buf, size_t n)
{
    uint8_t rnd[8];
    char hex[sizeof(rnd) * 2 + 1];
    const char *domain = strchr(cfg->mail.from, '@');

    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
    snprintf(buf, n, "%" PRIx64 ".%s.portier@%s", (uint64_t)now, hex, domain ? domain + 1 : "localhost");
}

/* Queue what d says to (to, name). dedup: "" or a key queued only once. */
static int queue(struct services *svc, const char *kind, int64_t member_id, const char *to,
                 const char *name, struct draft *d, const char *dedup, int64_t dedup_until,
                 struct mail_outcome *ret)
{
    const struct config *cfg = svc->cfg;
    struct store_mail m = { .member_id = member_id, .dedup_until = dedup_until };
    int64_t now = now_utc(), queued, id;
    int r;

    if (!mime_addr_valid(to)) {
        log_notice("mail: member %" PRId64 " has no usable e-mail address; no %s message",
                   member_id, kind);
        outcome(ret, false, 0, member_id ? "the member has no usable e-mail address"
                                         : "not an e-mail address");
        return 0;
    }
    if (d->text.failed || d->html.failed) {
        outcome(ret, false, 0, "out of memory");
        return -ENOMEM;
    }
    queued = store_mail_queued_count(svc->store);
    if (queued < 0) {
        outcome(ret, false, 0, "cannot read the queue");
        return (int)queued;
    }
    if (queued >= cfg->mail.queue_max) {
        delivery_mail_dropped(svc->delivery, kind);
        outcome(ret, false, 0, "the e-mail queue is full");
        return 0;
    }
    snprintf(m.kind, sizeof(m.kind), "%s", kind);
    snprintf(m.to_addr, sizeof(m.to_addr), "%s", to);
    snprintf(m.to_name, sizeof(m.to_name), "%s", name ? name : "");
    snprintf(m.lang, sizeof(m.lang), "%s", i18n_code(d->lang));
    snprintf(m.subject, sizeof(m.subject), "%s", d->subject);
    snprintf(m.dedup, sizeof(m.dedup), "%s", dedup ? dedup : "");
    message_id(cfg, now, m.message_id, sizeof(m.message_id));
    m.body_text = d->text.data ? d->text.data : "";
    m.body_html = d->html.data ? d->html.data : "";
    m.next_try_at = now;
    m.created_at = now;
    r = store_mail_add(svc->store, &m, &id);
    if (r == -EEXIST) {
        outcome(ret, false, 0, "already queued");
        return 0;
    }
    if (r < 0) {
        log_error("mail: cannot queue a %s message: %s", kind, strerror(-r));
        outcome(ret, false, 0, "cannot write the queue");
        return r;
    }
    log_info("mail %" PRId64 ": %s message queued for member %" PRId64, id, kind, member_id);
    outcome(ret, true, id, NULL);
    return 0;
}

static bool enabled(struct services *svc, struct mail_outcome *ret)
{
    if (svc->cfg->mail.enabled)
        return true;
    outcome(ret, false, 0, "e-mail is off ([mail] enabled = false)");
    return false;
}

/* The member's address and name: -ENOENT if no such member. */
static int member_of(struct services *svc, int64_t member_id, struct store_member *ret)
{
    return store_member_get(svc->store, member_id, ret);
}

int mail_invite(struct services *svc, const struct store_account *acc, const char *token,
                int64_t expires_at, struct mail_outcome *ret)
{
    const struct config *cfg = svc->cfg;
    struct draft d = { 0 };
    struct store_member m;
    char url[384], until[96];
    int r;

    if (!enabled(svc, ret))
        return 0;
    if (!acc->member_id) {
        outcome(ret, false, 0, "the account is not a member's: no e-mail address");
        return 0;
    }
    if (!cfg->http.base_url[0]) {
        outcome(ret, false, 0, "no [http] base_url to make the link with");
        return 0;
    }
    if ((r = member_of(svc, acc->member_id, &m)) < 0) {
        outcome(ret, false, 0, "cannot read the member");
        return r;
    }
    d.lang = mail_member_lang(svc, m.id);
    snprintf(url, sizeof(url), "%s/welcome/%s", cfg->http.base_url, token);
    i18n_time(d.lang, expires_at, I18N_DATETIME_ZONE, until, sizeof(until));
    subject(&d, i18n_t(d.lang, "Choose your password for %s"), cfg->site.name);
    begin(&d, cfg, m.name);
    para(&d, i18n_t(d.lang, "An account named %s was opened for you on the web page of %s."),
         acc->name, cfg->site.name);
    para(&d, i18n_t(d.lang, "Choose your password with this link. It works once, until %s:"),
         until);
    button(&d, i18n_t(d.lang, "Choose my password"), url);
    para(&d, "%s", i18n_t(d.lang, "If you did not expect this message, ignore it: nothing "
                                  "happens without the link."));
    end(&d, cfg);
    r = queue(svc, "invite", m.id, m.email, m.name, &d, NULL, 0, ret);
    sodium_memzero(url, sizeof(url));
    /* The body holds the link: wipe it from this process's memory too. */
    if (d.text.data)
        sodium_memzero(d.text.data, d.text.len);
    if (d.html.data)
        sodium_memzero(d.html.data, d.html.len);
    draft_free(&d);
    return r;
}

int mail_booking_changed(struct services *svc, enum mail_booking_change what,
                         const struct store_booking *b, int64_t new_start, int64_t new_end,
                         struct mail_outcome *ret)
{
    const struct config *cfg = svc->cfg;
    struct draft d = { 0 };
    struct store_member m;
    char when[192], now_when[192], day[96];
    int r;

    if (!enabled(svc, ret))
        return 0;
    if ((r = member_of(svc, b->member_id, &m)) < 0) {
        outcome(ret, false, 0, "cannot read the member");
        return r;
    }
    d.lang = mail_member_lang(svc, m.id);
    span(d.lang, b->start, b->end, when, sizeof(when));
    i18n_time(d.lang, what == MAIL_BOOKING_MOVED ? new_start : b->start, I18N_DATETIME, day,
              sizeof(day));
    switch (what) {
    case MAIL_BOOKING_CONFIRMED:
        subject(&d, i18n_t(d.lang, "Booking confirmed: %s on %s"), b->resource, day);
        begin(&d, cfg, m.name);
        para(&d, i18n_t(d.lang, "Your booking of %s is confirmed."), b->resource);
        para(&d, i18n_t(d.lang, "When: %s"), when);
        para(&d, "%s", i18n_t(d.lang, "If you cannot come, cancel it so that others can use the "
                                      "machine."));
        break;
    case MAIL_BOOKING_ADDED:
        subject(&d, i18n_t(d.lang, "New booking: %s on %s"), b->resource, day);
        begin(&d, cfg, m.name);
        para(&d, i18n_t(d.lang, "A manager booked %s for you."), b->resource);
        para(&d, i18n_t(d.lang, "When: %s"), when);
        break;
    case MAIL_BOOKING_MOVED:
        span(d.lang, new_start, new_end, now_when, sizeof(now_when));
        subject(&d, i18n_t(d.lang, "Booking moved: %s, now on %s"), b->resource, day);
        begin(&d, cfg, m.name);
        para(&d, i18n_t(d.lang, "A manager moved your booking of %s."), b->resource);
        para(&d, i18n_t(d.lang, "Before: %s"), when);
        para(&d, i18n_t(d.lang, "Now: %s"), now_when);
        break;
    case MAIL_BOOKING_CANCELLED:
        subject(&d, i18n_t(d.lang, "Booking cancelled: %s on %s"), b->resource, day);
        begin(&d, cfg, m.name);
        para(&d, i18n_t(d.lang, "A manager cancelled your booking of %s."), b->resource);
        para(&d, i18n_t(d.lang, "When: %s"), when);
        break;
    }
    if (cfg->http.base_url[0])
        button(&d, i18n_t(d.lang, "See your bookings"), cfg->http.base_url);
    end(&d, cfg);
    r = queue(svc, "booking", m.id, m.email, m.name, &d, NULL, 0, ret);
    draft_free(&d);
    return r;
}

int mail_test(struct services *svc, const char *to, struct mail_outcome *ret)
{
    const struct config *cfg = svc->cfg;
    struct draft d = { .lang = (enum lang)cfg->site.language };
    int r;

    if (!enabled(svc, ret))
        return 0;
    subject(&d, i18n_t(d.lang, "Test message from %s"), cfg->site.name);
    begin(&d, cfg, NULL);
    para(&d, "%s", i18n_t(d.lang, "This is a test message: e-mail from Portier works."));
    end(&d, cfg);
    r = queue(svc, "test", 0, to, "", &d, NULL, 0, ret);
    draft_free(&d);
    return r;
}

/* ---- the scheduler ---- */

/* Send off a scheduled notice to n's member, queued once for key until the time it is
 * about. One that cannot be queued does not stop the others: only running out of memory
 * does. */
static int queue_notice(struct services *svc, const char *kind,
                        const struct store_mail_notice *n, struct draft *d, const char *key,
                        int64_t until)
{
    int r;

    end(d, svc->cfg);
    r = queue(svc, kind, n->member_id, n->email, n->name, d, key, until, NULL);
    draft_free(d);
    return r == -ENOMEM ? r : 0;
}

static int reminder(const struct store_mail_notice *n, void *userdata)
{
    struct services *svc = userdata;
    struct draft d = { .lang = mail_member_lang(svc, n->member_id) };
    char when[192], at[16], key[64];

    span(d.lang, n->start, n->end, when, sizeof(when));
    i18n_time(d.lang, n->start, I18N_TIME, at, sizeof(at));
    subject(&d, i18n_t(d.lang, "Reminder: %s at %s"), n->what, at);
    begin(&d, svc->cfg, n->name);
    para(&d, i18n_t(d.lang, "Your booking of %s starts soon."), n->what);
    para(&d, i18n_t(d.lang, "When: %s"), when);
    para(&d, "%s", i18n_t(d.lang, "If you cannot come, cancel it so that others can use the "
                                  "machine."));
    if (svc->cfg->http.base_url[0])
        button(&d, i18n_t(d.lang, "See your bookings"), svc->cfg->http.base_url);
    snprintf(key, sizeof(key), "reminder:%" PRId64, n->ref_id);
    return queue_notice(svc, "reminder", n, &d, key, n->start);
}

static int training_notice(const struct store_mail_notice *n, void *userdata)
{
    struct services *svc = userdata;
    struct draft d = { .lang = mail_member_lang(svc, n->member_id) };
    char day[96], key[64];

    i18n_time(d.lang, n->end, I18N_DATE_LONG, day, sizeof(day));
    subject(&d, i18n_t(d.lang, "Your %s training ends on %s"), n->what, day);
    begin(&d, svc->cfg, n->name);
    para(&d, i18n_t(d.lang, "Your %s training ends on %s. After that, the machines that "
                            "require it will no longer start for you."), n->what, day);
    para(&d, "%s", i18n_t(d.lang, "Ask a trainer or the team to renew it."));
    snprintf(key, sizeof(key), "training:%" PRId64, n->ref_id);
    return queue_notice(svc, "training", n, &d, key, n->end);
}

static int membership_notice(const struct store_mail_notice *n, void *userdata)
{
    struct services *svc = userdata;
    struct draft d = { .lang = mail_member_lang(svc, n->member_id) };
    char day[96], key[64];

    i18n_time(d.lang, n->end, I18N_DATE_LONG, day, sizeof(day));
    subject(&d, i18n_t(d.lang, "Your membership ends on %s"), day);
    begin(&d, svc->cfg, n->name);
    para(&d, i18n_t(d.lang, "Your membership of %s ends on %s. After that, your card will no "
                            "longer open the doors."), svc->cfg->site.name, day);
    para(&d, "%s", i18n_t(d.lang, "To renew it, contact the team."));
    snprintf(key, sizeof(key), "membership:%" PRId64 ":%" PRId64, n->member_id, n->end);
    return queue_notice(svc, "membership", n, &d, key, n->end);
}

void mail_schedule(struct services *svc, int64_t now)
{
    const struct mail_config *mc = &svc->cfg->mail;
    int r = 0;

    if (!mc->enabled)
        return;
    if (mc->reminder_minutes > 0)
        r = store_mail_reminders_due(svc->store, now, now + mc->reminder_minutes * 60,
                                     mc->reminder_minutes * 60, reminder, svc);
    if (r >= 0 && mc->notice_days > 0)
        r = store_mail_trainings_ending(svc->store, now, now + mc->notice_days * 86400,
                                        training_notice, svc);
    if (r >= 0 && mc->notice_days > 0)
        r = store_mail_memberships_ending(svc->store, now, now + mc->notice_days * 86400,
                                          membership_notice, svc);
    if (r < 0)
        log_error("mail: cannot queue reminders and notices: %s", strerror(-r));
}
