/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_mail.c: the e-mail outbox and the queries behind the notices, on real SQLite files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fixture.h"
#include "store_internal.h"       /* the store's connection: a batch SQLite rolled back */
#include "util.h"

static struct store_mail mail(const char *kind, const char *to, const char *dedup, int64_t due)
{
    struct store_mail m = { .member_id = 0, .next_try_at = due, .created_at = 1000,
                            .body_text = "text with a link /welcome/SECRET",
                            .body_html = "<p>html</p>" };
    snprintf(m.kind, sizeof(m.kind), "%s", kind);
    snprintf(m.to_addr, sizeof(m.to_addr), "%s", to);
    snprintf(m.to_name, sizeof(m.to_name), "Zoé");
    snprintf(m.lang, sizeof(m.lang), "fr");
    snprintf(m.subject, sizeof(m.subject), "Réservation");
    snprintf(m.message_id, sizeof(m.message_id), "abc.%s@example.org", to);
    snprintf(m.dedup, sizeof(m.dedup), "%s", dedup);
    return m;
}

struct seen {
    unsigned n;
    struct store_mail m[8];
    char text[8][128];
};

static int collect(const struct store_mail *m, void *userdata)
{
    struct seen *x = userdata;
    if (x->n < N_ELEMS(x->m)) {
        x->m[x->n] = *m;
        snprintf(x->text[x->n], sizeof(x->text[0]), "%s", m->body_text ? m->body_text : "(none)");
        x->m[x->n].body_text = x->m[x->n].body_html = NULL;
        x->n++;
    }
    return 0;
}

static void test_queue_and_send(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_mail m = mail("invite", "a@example.org", "", 500), got;
    struct store_marks marks;
    struct seen x = { 0 };
    int64_t id, id2, at;

    /* Deferred syncs: only what is durable leaves. */
    assert_int_equal(store_defer_sync(s), 0);
    assert_int_equal(store_mail_add(s, &m, &id), 0);
    assert_int_equal(store_mail_queued_count(s), 1);
    assert_int_equal(store_mail_due(s, 2000, 10, NULL, 0, collect, &x), 0);
    assert_int_equal(store_mail_next_due(s, &at), -ENOENT);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_mail_due(s, 2000, 10, NULL, 0, collect, &x), 0);   /* not synced */
    store_marks_committed(s, &marks);
    store_set_durable(s, &marks);
    assert_int_equal(store_mail_next_due(s, &at), 0);
    assert_int_equal(at, 500);
    assert_int_equal(store_mail_due(s, 400, 10, NULL, 0, collect, &x), 0);    /* not yet due */
    assert_int_equal(store_mail_due(s, 2000, 10, &id, 1, collect, &x), 0);    /* being sent */
    assert_int_equal(store_mail_due(s, 2000, 10, NULL, 0, collect, &x), 1);
    assert_int_equal(x.m[0].id, id);
    assert_string_equal(x.m[0].to_name, "Zoé");
    assert_string_equal(x.m[0].subject, "Réservation");
    assert_string_equal(x.text[0], "text with a link /welcome/SECRET");
    assert_int_equal(x.m[0].state, STORE_MAIL_QUEUED);

    /* A dedup key is queued once. */
    m = mail("reminder", "b@example.org", "reminder:7", 500);
    assert_int_equal(store_mail_add(s, &m, &id2), 0);
    assert_int_equal(store_mail_add(s, &m, NULL), -EEXIST);
    assert_int_equal(store_commit(s), 0);

    /* Sent: the bodies (an invitation's link) are gone, the headers stay. */
    assert_int_equal(store_mail_sent(s, id, 2100), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_mail_get(s, id, &got), 0);
    assert_int_equal(got.state, STORE_MAIL_SENT);
    assert_int_equal(got.sent_at, 2100);
    assert_int_equal(got.attempts, 1);
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM mail_outbox WHERE body_text LIKE "
                                 "'%SECRET%'"), 1);     /* the reminder's, still queued */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM mail_outbox WHERE body_text = '' AND "
                                 "body_html = '' AND state = 'sent'"), 1);
    sqlite3_close(db);
    assert_int_equal(store_mail_queued_count(s), 1);
    store_free(s);
}

static void test_failures_retries_and_requeue(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_mail m = mail("booking", "a@example.org", "", 100), got;
    struct seen x = { 0 };
    int64_t id;

    assert_int_equal(store_mail_add(s, &m, &id), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_mail_failed(s, id, 1, 700, "421 try later"), 0);
    assert_int_equal(store_mail_get(s, id, &got), 0);
    assert_int_equal(got.state, STORE_MAIL_QUEUED);
    assert_int_equal(got.attempts, 1);
    assert_int_equal(got.next_try_at, 700);
    assert_string_equal(got.last_error, "421 try later");
    assert_int_equal(store_mail_due(s, 600, 10, NULL, 0, collect, &x), 0);
    /* Given up: failed, with its bodies kept for a retry by hand. */
    assert_int_equal(store_mail_failed(s, id, 2, 0, "550 no such user"), 0);
    assert_int_equal(store_mail_get(s, id, &got), 0);
    assert_int_equal(got.state, STORE_MAIL_FAILED);
    assert_int_equal(store_mail_due(s, 10000, 10, NULL, 0, collect, &x), 0);
    assert_int_equal(store_mail_requeue(s, id, 5000), 0);
    assert_int_equal(store_mail_get(s, id, &got), 0);
    assert_int_equal(got.state, STORE_MAIL_QUEUED);
    assert_int_equal(got.attempts, 0);
    assert_int_equal(got.next_try_at, 5000);
    assert_int_equal(store_mail_requeue(s, 999, 5000), -ENOENT);
    /* A sent one cannot be queued again. */
    assert_int_equal(store_mail_sent(s, id, 5001), 0);
    assert_int_equal(store_mail_requeue(s, id, 5002), -ENOENT);
    store_free(s);
}

static int count_time(int64_t at, void *userdata)
{
    (void)at;
    ++*(int *)userdata;
    return 0;
}

static void test_list_and_prune(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_mail_filter any = { .state = -1 }, sent = { .state = STORE_MAIL_SENT };
    struct store_mail m;
    struct seen x = { 0 };
    int64_t ids[3];
    int count = 0;

    for (int i = 0; i < 3; i++) {
        m = mail("test", "a@example.org", i == 2 ? "membership:1:90000" : "", 100);
        m.dedup_until = i == 2 ? 90000 : 0;
        assert_int_equal(store_mail_add(s, &m, &ids[i]), 0);
    }
    assert_int_equal(store_mail_sent(s, ids[0], 3000), 0);
    assert_int_equal(store_mail_sent(s, ids[2], 3500), 0);
    assert_int_equal(store_mails_foreach(s, &any, collect, &x), 3);
    assert_int_equal(x.m[0].id, ids[2]);            /* newest first */
    assert_string_equal(x.text[0], "(none)");       /* listings carry no bodies */
    memset(&x, 0, sizeof(x));
    assert_int_equal(store_mails_foreach(s, &sent, collect, &x), 2);

    assert_int_equal(store_mail_sent_since(s, 3200, count_time, &count), 1);
    assert_int_equal(count, 1);

    /* Old sent messages go, except one whose key must still keep a notice from repeating. */
    assert_int_equal(store_mail_prune(s, 2000, 50000), 1);
    memset(&x, 0, sizeof(x));
    assert_int_equal(store_mails_foreach(s, &any, collect, &x), 2);
    assert_int_equal(store_mail_prune(s, 2000, 95000), 1);
    store_free(s);
}

struct notices {
    unsigned n;
    struct store_mail_notice v[8];
};

static int collect_notice(const struct store_mail_notice *n, void *userdata)
{
    struct notices *x = userdata;
    if (x->n < N_ELEMS(x->v))
        x->v[x->n++] = *n;
    return 0;
}

static void test_notices(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    int64_t anne, bob, noemail, laser, t, q1, q2, id, b1;
    struct notices x = { 0 };
    struct store_mail m;
    int64_t now = now_utc();

    assert_int_equal(store_member_add(s, "Anne", "anne@example.org", 0, 0, now + 5 * 86400, &anne), 0);
    assert_int_equal(store_member_add(s, "Bob", "bob@example.org", 0, 0, now + 40 * 86400, &bob), 0);
    assert_int_equal(store_member_add(s, "Nobody", "", 0, 0, now + 86400, &noemail), 0);
    assert_int_equal(store_resource_ensure(s, "machine", "laser", "fablab", &laser), 0);
    assert_int_equal(store_training_add(s, "laser", "", &t), 0);

    /* Bookings: made long before they start (the store stamps created_at now). */
    assert_int_equal(store_booking_add(s, laser, anne, now + 1800, now + 3600, "test", &b1), 0);
    assert_int_equal(store_booking_add(s, laser, noemail, now + 2400, now + 3000, "test", &id), 0);
    assert_int_equal(store_mail_reminders_due(s, now, now + 3600, 0, collect_notice, &x), 1);
    assert_int_equal(x.v[0].ref_id, b1);
    assert_string_equal(x.v[0].email, "anne@example.org");
    assert_string_equal(x.v[0].what, "laser");
    assert_int_equal(x.v[0].start, now + 1800);
    /* Made within the lead: no reminder (the member just booked it). */
    memset(&x, 0, sizeof(x));
    assert_int_equal(store_mail_reminders_due(s, now, now + 3600, 3600, collect_notice, &x), 0);
    /* Once a reminder is queued, it is not due again. */
    m = mail("reminder", "anne@example.org", "", now);
    snprintf(m.dedup, sizeof(m.dedup), "reminder:%lld", (long long)b1);
    assert_int_equal(store_mail_add(s, &m, NULL), 0);
    memset(&x, 0, sizeof(x));
    assert_int_equal(store_mail_reminders_due(s, now, now + 3600, 0, collect_notice, &x), 0);

    /* Trainings: a grant ending soon, unless a longer one covers it. */
    assert_int_equal(store_qualification_grant(s, anne, t, "test", now + 3 * 86400, &q1), 0);
    assert_int_equal(store_qualification_grant(s, bob, t, "test", now + 3 * 86400, &q2), 0);
    assert_int_equal(store_qualification_grant(s, bob, t, "test", 0, &id), 0);
    memset(&x, 0, sizeof(x));
    assert_int_equal(store_mail_trainings_ending(s, now, now + 14 * 86400, collect_notice, &x), 1);
    assert_int_equal(x.v[0].ref_id, q1);
    assert_string_equal(x.v[0].what, "laser");
    assert_int_equal(x.v[0].end, now + 3 * 86400);

    /* Memberships ending within the window, with an address. */
    memset(&x, 0, sizeof(x));
    assert_int_equal(store_mail_memberships_ending(s, now, now + 14 * 86400, collect_notice, &x), 1);
    assert_int_equal(x.v[0].member_id, anne);
    assert_int_equal(x.v[0].end, now + 5 * 86400);
    m = mail("membership", "anne@example.org", "", now);
    snprintf(m.dedup, sizeof(m.dedup), "membership:%lld:%lld", (long long)anne,
             (long long)(now + 5 * 86400));
    assert_int_equal(store_mail_add(s, &m, NULL), 0);
    memset(&x, 0, sizeof(x));
    assert_int_equal(store_mail_memberships_ending(s, now, now + 14 * 86400, collect_notice, &x), 0);
    store_free(s);
}

/* The right to erasure covers what was written to the member. */
static void test_erasure_deletes_the_members_mail(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_mail_filter any = { .state = -1 };
    struct seen x = { 0 };
    struct store_mail m;
    int64_t anne, bob;

    assert_int_equal(store_member_add(s, "Anne", "anne@example.org", 0, 0, 0, &anne), 0);
    assert_int_equal(store_member_add(s, "Bob", "bob@example.org", 0, 0, 0, &bob), 0);
    m = mail("booking", "anne@example.org", "", 100);
    m.member_id = anne;
    assert_int_equal(store_mail_add(s, &m, NULL), 0);
    m = mail("booking", "bob@example.org", "", 100);
    m.member_id = bob;
    assert_int_equal(store_mail_add(s, &m, NULL), 0);
    assert_int_equal(store_member_remove(s, anne, 1000, "test"), 0);
    assert_int_equal(store_member_erase(s, anne, "erased-1", 1001), 0);
    assert_int_equal(store_mails_foreach(s, &any, collect, &x), 1);
    assert_int_equal(x.m[0].member_id, bob);
    store_free(s);
}

/* The committed marks follow commits, not what a rolled-back batch wrote, and are read from
 * the file at open (where they are durable too). */
static void test_marks_follow_what_is_on_disk(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_mail m = mail("invite", "a@example.org", "", 500);
    struct store_marks marks, durable;
    int64_t id, lost;

    assert_int_equal(store_mail_add(s, &m, &id), 0);
    assert_int_equal(store_commit(s), 0);
    store_marks_committed(s, &marks);
    assert_int_equal(marks.mail_id, id);

    assert_int_equal(store_mail_add(s, &m, &lost), 0);
    assert_true(lost > id);
    assert_int_equal(sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(store_commit(s), -ENOSPC);
    store_marks_committed(s, &marks);
    assert_int_equal(marks.mail_id, id);
    assert_int_equal(store_mail_add(s, &m, &lost), 0);
    assert_int_equal(store_commit(s), 0);
    store_marks_committed(s, &marks);
    assert_int_equal(marks.mail_id, lost);
    store_free(s);

    s = open_ok(f->path);
    store_marks_committed(s, &marks);
    store_marks_durable(s, &durable);
    assert_int_equal(marks.mail_id, lost);
    assert_int_equal(durable.mail_id, lost);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_queue_and_send),
        STORE_TEST(test_marks_follow_what_is_on_disk),
        STORE_TEST(test_failures_retries_and_requeue),
        STORE_TEST(test_list_and_prune),
        STORE_TEST(test_notices),
        STORE_TEST(test_erasure_deletes_the_members_mail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
