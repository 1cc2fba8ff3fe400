/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pages_manage: the manager's pages, one per task — bookings, machines and trainings,
 * members and cards, doors and entrance screens, billing — listed in one table (tasks[]):
 * a new task is one line there and one render function. Every change is a command sent
 * through http_command() (the command table checks the role, the rules and says why not);
 * the page answers with the task again and a sentence that says what happened, or what was
 * refused with the form as it was filled in. Lists to choose from instead of typed ids; the
 * actions that cannot be undone, or cut a machine mid-job, ask for a confirmation first. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "delivery.h"
#include "enroll.h"
#include "http_internal.h"
#include "util.h"

#define UPCOMING_MAX 100
/* The input attributes of a new machine's or training's name: what name_is_valid() takes. */
#define NAME_INPUT \
    "required maxlength=\"31\" pattern=\"[A-Za-z0-9._\\-]+\" autocapitalize=\"none\""

struct manage_task {
    const char *name;               /* /manage/NAME */
    const char *title, *summary;    /* N_(): translated when shown */
    void (*render)(struct http_req *rq, struct buf *b, json_t *status);
    /* NULL render: the task's pages live in another file, at /manage/NAME all the same
     * (pages_members.c answers them before this one is asked). */
};

static void task_bookings(struct http_req *rq, struct buf *b, json_t *status);
static void task_machines(struct http_req *rq, struct buf *b, json_t *status);
static void task_cards(struct http_req *rq, struct buf *b, json_t *status);
static void task_doors(struct http_req *rq, struct buf *b, json_t *status);
static void task_billing(struct http_req *rq, struct buf *b, json_t *status);
static void task_mail(struct http_req *rq, struct buf *b, json_t *status);

/* The tasks, in the order of the navigation. (The member issue's pages — member list,
 * privacy — join here as lines of their own.) */
static const struct manage_task tasks[] = {
    { "bookings", N_("Bookings"), N_("Assign a slot, move or cancel a booking."), task_bookings },
    { "members", N_("Members"),
      N_("Find, edit, renew, suspend, remove or erase a member; their cards and history."),
      NULL },
    { "cards", N_("Cards and accounts"),
      N_("Add a member with a web account, enrol or provision a card, one-time links."),
      task_cards },
    { "machines", N_("Machines and trainings"),
      N_("Out of order, new machines and trainings, who is trained."), task_machines },
    { "doors", N_("Doors and screens"),
      N_("Unlock or lock a door, the entrance screens."), task_doors },
    { "billing", N_("Billing"), N_("Usage of the month, closing a period."), task_billing },
    { "plans", N_("Plans"), N_("Each plan's zones, hours, billing settings and rates."), NULL },
    { "mail", N_("E-mail and webhooks"),
      N_("The messages sent to members and their delivery state; the webhooks' receivers."),
      task_mail },
};

static const struct manage_task *task_find(const char *name)
{
    for (size_t i = 0; i < sizeof(tasks) / sizeof(tasks[0]); i++)
        if (strcmp(tasks[i].name, name) == 0 && tasks[i].render)
            return &tasks[i];
    return NULL;
}

/* ---- form pieces ---- */

static void section_begin(struct http_req *rq, struct buf *b, const char *id, const char *title)
{
    buf_printf(b, "<section class=\"card\" aria-labelledby=\"%s-h\" id=\"%s\"><h2 id=\"%s-h\">",
               id, id, id);
    buf_html(b, title);
    buf_put(b, "</h2>");
}

static void form_begin(struct http_req *rq, struct buf *b, const char *action)
{
    buf_printf(b, "<form method=\"post\" class=\"stack\" action=\"/manage/%s\">", action);
    web_csrf_field(rq, b);
}

static void form_end(struct buf *b, const char *button, bool danger)
{
    buf_printf(b, "<button type=\"submit\"%s>", danger ? " class=\"danger\"" : "");
    buf_html(b, button);
    buf_put(b, "</button></form>");
}

/* A text-like input; its value is what was sent back after a refusal, else def. */
static void input(struct http_req *rq, struct buf *b, const char *label, const char *type,
                  const char *name, const char *def, const char *attrs)
{
    const char *v = web_arg_or(rq, name, def);

    buf_put(b, "<label>");
    buf_html(b, label);
    buf_printf(b, " <input type=\"%s\" name=\"%s\"", type, name);
    if (v && *v) {
        buf_put(b, " value=\"");
        buf_html(b, v);
        buf_put(b, "\"");
    }
    buf_printf(b, "%s%s></label>", attrs && *attrs ? " " : "", attrs ? attrs : "");
}

static void hint(struct buf *b, const char *text)
{
    buf_put(b, "<p class=\"hint\">");
    buf_html(b, text);
    buf_put(b, "</p>");
}

struct select_ctx {
    struct buf *b;
    const char *selected;
};

static int member_option(const struct store_member *m, void *userdata)
{
    struct select_ctx *x = userdata;
    char value[24], label[128];

    snprintf(value, sizeof(value), "%" PRId64, m->id);
    snprintf(label, sizeof(label), "%s (#%" PRId64 ")", m->name, m->id);
    web_option(x->b, value, label, x->selected && strcmp(x->selected, value) == 0);
    return 0;
}

static void member_select(struct http_req *rq, struct buf *b, const char *name)
{
    struct select_ctx x = { b, web_arg_or(rq, name, NULL) };

    if (store_member_count(rq->h->env.svc->store) > 500) {
        /* A list of thousands helps nobody: the controller resolves an id or exact name. */
        input(rq, b, L(rq, "Member (number or exact name)"), "text", name, NULL,
              "required maxlength=\"95\"");
        return;
    }
    buf_printf(b, "<label>%s <select name=\"%s\" required>", L(rq, "Member"), name);
    http_store_ok(rq, store_members_foreach(rq->h->env.svc->store, member_option, &x));
    buf_put(b, "</select></label>");
}

static int name_option(const char *name, void *userdata)
{
    struct select_ctx *x = userdata;
    web_option(x->b, name, name, x->selected && strcmp(x->selected, name) == 0);
    return 0;
}

static void resource_select(struct http_req *rq, struct buf *b, const char *kind,
                            const char *label, const char *def)
{
    struct select_ctx x = { b, web_arg_or(rq, kind, def) };

    buf_put(b, "<label>");
    buf_html(b, label);
    buf_printf(b, " <select name=\"%s\" required>", kind);
    http_store_ok(rq, store_resources_foreach(rq->h->env.svc->store, kind, name_option, &x));
    buf_put(b, "</select></label>");
}

static int training_option(const struct store_training *t, void *userdata)
{
    return name_option(t->name, userdata);
}

static void training_select(struct http_req *rq, struct buf *b, const char *name, bool none)
{
    struct select_ctx x = { b, web_arg_or(rq, name, NULL) };

    buf_printf(b, "<label>%s <select name=\"%s\"%s>", L(rq, "Training"), name,
               none ? "" : " required");
    if (none)
        web_option(b, "none", L(rq, "none required"), !x.selected);
    http_store_ok(rq, store_trainings_foreach(rq->h->env.svc->store, now_utc(), training_option,
                                              &x));
    buf_put(b, "</select></label>");
}

static int plan_option(const struct store_plan *p, void *userdata)
{
    return name_option(p->name, userdata);
}

static void plan_select(struct http_req *rq, struct buf *b)
{
    struct select_ctx x = { b, web_arg_or(rq, "plan", NULL) };

    buf_printf(b, "<label>%s <select name=\"plan\">", L(rq, "Plan"));
    web_option(b, "", L(rq, "no plan yet"), !x.selected || !*x.selected);
    http_store_ok(rq, store_plans_foreach(rq->h->env.svc->store, plan_option, &x));
    buf_put(b, "</select></label>");
}

/* ---- bookings ---- */

struct upcoming_ctx {
    struct http_req *rq;
    struct buf *b;
    const char *selected;
    unsigned n;
};

static void booking_label(struct http_req *rq, const struct store_booking *bk, char *buf, size_t n)
{
    char day[48], a[16], e[16];

    snprintf(buf, n, "#%" PRId64 " %s, %s %s–%s, %s", bk->id, bk->resource,
             web_time(rq, bk->start, I18N_DATE, day, sizeof(day)),
             web_time(rq, bk->start, I18N_TIME, a, sizeof(a)),
             web_time(rq, bk->end, I18N_TIME, e, sizeof(e)), bk->member);
}

static int upcoming_option(const struct store_booking *bk, void *userdata)
{
    struct upcoming_ctx *x = userdata;
    char value[24], label[256];

    snprintf(value, sizeof(value), "%" PRId64, bk->id);
    booking_label(x->rq, bk, label, sizeof(label));
    web_option(x->b, value, label, x->selected && strcmp(x->selected, value) == 0);
    x->n++;
    return 0;
}

static int upcoming_row(const struct store_booking *bk, void *userdata)
{
    struct upcoming_ctx *x = userdata;
    struct http_req *rq = x->rq;
    char day[48], a[16], e[16];

    buf_printf(x->b, "<tr><td data-label=\"#\">%" PRId64 "</td><td data-label=\"", bk->id);
    buf_html(x->b, L(rq, "Machine"));
    buf_put(x->b, "\">");
    buf_html(x->b, bk->resource);
    buf_put(x->b, "</td><td data-label=\"");
    buf_html(x->b, L(rq, "When"));
    buf_put(x->b, "\">");
    buf_html(x->b, web_time(rq, bk->start, I18N_WEEKDAY_SHORT, day, sizeof(day)));
    buf_printf(x->b, " %s–%s</td><td data-label=\"", web_time(rq, bk->start, I18N_TIME, a, sizeof(a)),
               web_time(rq, bk->end, I18N_TIME, e, sizeof(e)));
    buf_html(x->b, L(rq, "Member"));
    buf_put(x->b, "\">");
    buf_html(x->b, bk->member);
    buf_printf(x->b, "</td><td class=\"actions\"><a href=\"/manage/bookings?move=%" PRId64
                     "#move\">%s</a> ", bk->id, L(rq, "Move"));
    web_cancel_form(rq, x->b, bk->id, "/manage/bookings");
    buf_put(x->b, "</td></tr>");
    x->n++;
    return 0;
}

static int count_booking(const struct store_booking *bk, void *userdata)
{
    (*(unsigned *)userdata)++;
    return 0;
}

static void task_bookings(struct http_req *rq, struct buf *b, json_t *status)
{
    struct store *store = rq->h->env.svc->store;
    const char *move = http_query(rq, "move"), *start = http_query(rq, "start");
    struct store_booking_filter f = { .from = now_utc(), .limit = UPCOMING_MAX };
    struct upcoming_ctx x = { rq, b, NULL, 0 };
    struct store_booking moving = { 0 };
    int64_t id = 0, t;
    char def_start[17] = "", def_end[17] = "";

    if (start && web_parse_local(start, false, &t) == 0)
        snprintf(def_start, sizeof(def_start), "%s", start);
    if (move && parse_int64(move, 1, INT64_MAX, &id) == 0 &&
        store_booking_get(store, id, &moving) == 0 && !moving.cancelled_at) {
        web_datetime_text(moving.start, def_start);
        web_datetime_text(moving.end, def_end);
    }

    section_begin(rq, b, "assign", L(rq, "Assign a slot"));
    form_begin(rq, b, "assign");
    member_select(rq, b, "member");
    resource_select(rq, b, "machine", L(rq, "Machine"), http_query(rq, "machine"));
    input(rq, b, L(rq, "Start"), "datetime-local", "start", id ? NULL : def_start, "required");
    input(rq, b, L(rq, "End"), "datetime-local", "end", NULL, "required");
    hint(b, L(rq, "The machine's rules apply, as for a member; the member's name shows to them "
                  "on their page."));
    form_end(b, L(rq, "Assign"), false);
    buf_put(b, "</section>");

    section_begin(rq, b, "move", L(rq, "Move a booking"));
    if (!store_bookings_foreach(store, &(struct store_booking_filter){ .from = f.from, .limit = 1 },
                                count_booking, &x.n) && !x.n) {
        buf_printf(b, "<p>%s</p></section>", L(rq, "No upcoming booking to move."));
    } else {
        form_begin(rq, b, "move");
        buf_printf(b, "<label>%s <select name=\"booking\" required>", L(rq, "Booking"));
        x.selected = web_arg_or(rq, "booking", move);
        http_store_ok(rq, store_bookings_foreach(store, &f, upcoming_option, &x));
        buf_put(b, "</select></label>");
        input(rq, b, L(rq, "New start"), "datetime-local", "start", id ? def_start : NULL,
              "required");
        input(rq, b, L(rq, "New end"), "datetime-local", "end", id ? def_end : NULL, "required");
        hint(b, L(rq, "A move after the cancellation deadline is recorded as a manager's "
                      "override."));
        form_end(b, L(rq, "Move"), false);
        buf_put(b, "</section>");
    }

    buf_printf(b, "<section aria-labelledby=\"upcoming-h\" class=\"wide-section\">"
                  "<h2 id=\"upcoming-h\">%s</h2>", L(rq, "Upcoming bookings"));
    buf_printf(b, "<div class=\"table\"><table class=\"cards-narrow\"><thead><tr>"
                  "<th scope=\"col\">#</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                  "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
               L(rq, "Machine"), L(rq, "When"), L(rq, "Member"), L(rq, "Change"));
    x.n = 0;
    http_store_ok(rq, store_bookings_foreach(store, &f, upcoming_row, &x));
    if (!x.n)
        buf_printf(b, "<tr><td colspan=\"5\">%s</td></tr>", L(rq, "None."));
    buf_put(b, "</tbody></table></div></section>");
}

/* ---- machines and trainings ---- */

static void machine_row(struct http_req *rq, struct buf *b, const struct store_resource *m,
                        json_t *status)
{
    const char *state = web_machine_state(m, status);
    bool powered = web_machine_powered(m->name, status);

    buf_put(b, "<li class=\"machine\"><strong><a href=\"/machines/");
    buf_html(b, m->name);
    buf_put(b, "\">");
    buf_html(b, m->name);
    buf_put(b, "</a></strong> — ");
    if (m->out_of_order && powered)
        buf_html(b, L(rq, "out of order once the session under way ends"));
    else
        buf_html(b, web_machine_state_text(rq, state));
    if (m->out_of_order && m->out_of_order_reason[0]) {
        buf_put(b, " (");
        buf_html(b, m->out_of_order_reason);
        buf_put(b, ")");
    }
    buf_put(b, "<div class=\"row-actions\">");
    if (!m->out_of_order) {
        form_begin(rq, b, "out-of-order");
        buf_put(b, "<input type=\"hidden\" name=\"machine\" value=\"");
        buf_html(b, m->name);
        buf_printf(b, "\"><label>%s <input name=\"reason\" maxlength=\"127\"></label>",
                   L(rq, "Reason (optional)"));
        form_end(b, powered ? L(rq, "Out of order after this session")
                            : L(rq, "Set out of order"), false);
    } else {
        form_begin(rq, b, "in-order");
        buf_put(b, "<input type=\"hidden\" name=\"machine\" value=\"");
        buf_html(b, m->name);
        buf_put(b, "\">");
        form_end(b, L(rq, "Back in order"), false);
    }
    if (powered) {
        /* Stopping a machine mid-job is its own action, and asks first. */
        form_begin(rq, b, "power-cut");
        buf_put(b, "<input type=\"hidden\" name=\"machine\" value=\"");
        buf_html(b, m->name);
        buf_put(b, "\">");
        form_end(b, L(rq, "Cut the power now…"), true);
    }
    buf_put(b, "</div></li>");
}

struct list_ctx {
    struct http_req *rq;
    struct buf *b;
};

static void task_machines(struct http_req *rq, struct buf *b, json_t *status)
{
    struct web_machines *ml = web_machines_load(rq);
    char text[160];

    buf_printf(b, "<section aria-labelledby=\"state-h\" class=\"wide-section\">"
                  "<h2 id=\"state-h\">%s</h2><ul class=\"machines\">", L(rq, "Machines"));
    for (unsigned k = 0; ml && k < ml->n; k++)
        machine_row(rq, b, &ml->m[k], status);
    if (!ml || !ml->n)
        buf_printf(b, "<li>%s</li>", L(rq, "No machines yet."));
    buf_put(b, "</ul>");
    hint(b, L(rq, "Out of order refuses new sessions and bookings at once; a machine in use "
                  "finishes its session first. Cutting the power stops it mid-job."));
    buf_put(b, "</section>");
    free(ml);

    section_begin(rq, b, "grant", L(rq, "Grant a training"));
    form_begin(rq, b, "training");
    member_select(rq, b, "member");
    training_select(rq, b, "training", false);
    input(rq, b, L(rq, "Valid until (optional)"), "date", "expires", NULL, "");
    form_end(b, L(rq, "Grant"), false);
    buf_put(b, "</section>");

    section_begin(rq, b, "add-machine", L(rq, "Add a machine"));
    form_begin(rq, b, "machine");
    input(rq, b, L(rq, "Name"), "text", "machine", NULL,
          NAME_INPUT);
    training_select(rq, b, "training", true);
    input(rq, b, L(rq, "Slot (minutes)"), "number", "slot_minutes", "30",
          "min=\"5\" max=\"1440\" required");
    input(rq, b, L(rq, "Shortest booking (minutes)"), "number", "min_minutes", "30",
          "min=\"5\" max=\"10080\" required");
    input(rq, b, L(rq, "Longest booking (minutes)"), "number", "max_minutes", "240",
          "min=\"5\" max=\"10080\" required");
    input(rq, b, L(rq, "Bookable days ahead"), "number", "window_days", "14",
          "min=\"0\" max=\"365\" required");
    input(rq, b, L(rq, "Opening hours"), "text", "hours", "always", "maxlength=\"255\" required");
    hint(b, web_format(text, sizeof(text), L(rq, "Hours like %s, or always."),
                       "Mon-Fri 09:00-18:00, Sat 10:00-13:00"));
    hint(b, L(rq, "A machine with a power interlock is wired in the configuration file; this "
                  "adds its booking rules, or a machine without an interlock."));
    form_end(b, L(rq, "Add machine"), false);
    buf_put(b, "</section>");

    section_begin(rq, b, "add-training", L(rq, "Add a training"));
    form_begin(rq, b, "training-add");
    input(rq, b, L(rq, "Name"), "text", "name", NULL,
          NAME_INPUT);
    input(rq, b, L(rq, "Description (optional)"), "text", "description", NULL,
          "maxlength=\"127\"");
    form_end(b, L(rq, "Add training"), false);
    buf_put(b, "</section>");
}

/* ---- members and cards ---- */

static int account_option(const struct store_account *a, void *userdata)
{
    struct select_ctx *x = userdata;
    char label[160];

    if (a->disabled_at)
        return 0;
    snprintf(label, sizeof(label), "%s%s%s%s", a->name, a->member[0] ? " (" : "", a->member,
             a->member[0] ? ")" : "");
    web_option(x->b, a->name, label, x->selected && strcmp(x->selected, a->name) == 0);
    return 0;
}

/* The cards that still open by their number shown on the page (the first enrolled, through
 * their own index): a site's whole list is for portierctl card report. */
#define UID_ONLY_SHOWN 100

struct uid_ctx {
    struct http_req *rq;
    struct buf *b;
    unsigned n;
};

static int uid_only_row(const struct store_uid_only_card *c, void *userdata)
{
    struct uid_ctx *x = userdata;
    struct http_req *rq = x->rq;
    char last[48];

    buf_printf(x->b, "<tr><td data-label=\"%s\">", L(rq, "Member"));
    buf_html(x->b, c->member);
    buf_printf(x->b, "</td><td data-label=\"%s\">%" PRId64 "</td><td data-label=\"%s\">",
               L(rq, "Card"), c->card_id, L(rq, "Label"));
    buf_html(x->b, c->label[0] ? c->label : "–");
    buf_printf(x->b, "</td><td data-label=\"%s\">", L(rq, "Last used"));
    buf_html(x->b, c->last_used ? web_time(rq, c->last_used, I18N_DATE, last, sizeof(last))
                                : L(rq, "never"));
    buf_put(x->b, "</td></tr>");
    x->n++;
    return 0;
}

static void task_cards(struct http_req *rq, struct buf *b, json_t *status)
{
    struct select_ctx x = { b, web_arg_or(rq, "reader", NULL) };
    char text[200];
    json_t *o;
    size_t i;

    section_begin(rq, b, "add-member", L(rq, "Add a member"));
    form_begin(rq, b, "member");
    input(rq, b, L(rq, "Name"), "text", "name", NULL, "required maxlength=\"95\"");
    input(rq, b, L(rq, "E-mail"), "email", "email", NULL, "maxlength=\"127\"");
    plan_select(rq, b);
    input(rq, b, L(rq, "Member until (optional)"), "date", "valid_until", NULL, "");
    input(rq, b, L(rq, "Web account name (optional)"), "text", "account", NULL,
          "maxlength=\"32\" pattern=\"[A-Za-z0-9._@\\-]+\" autocapitalize=\"none\"");
    hint(b, L(rq, "With an account name, the member gets a one-time link to set a password."));
    form_end(b, L(rq, "Add member"), false);
    buf_put(b, "</section>");

    section_begin(rq, b, "enrol", L(rq, "Enrol a card"));
    form_begin(rq, b, "enroll");
    member_select(rq, b, "member");
    buf_printf(b, "<label>%s <select name=\"reader\" required>", L(rq, "Reader"));
    json_array_foreach(json_object_get(status, "readers"), i, o)
        name_option(json_string_value(json_object_get(o, "name")), &x);
    buf_put(b, "</select></label>");
    input(rq, b, L(rq, "Label (optional)"), "text", "label", NULL, "maxlength=\"63\"");
    hint(b, web_format(text, sizeof(text),
                       L(rq, "After you press the button, tap the card on that reader within %d "
                             "seconds."), ENROLL_DEFAULT_SECONDS));
    form_end(b, L(rq, "Wait for the card"), false);
    buf_put(b, "</section>");

    section_begin(rq, b, "provision", L(rq, "Make a card a DESFire card"));
    form_begin(rq, b, "provision");
    member_select(rq, b, "member");
    x.selected = web_arg_or(rq, "reader", NULL);
    buf_printf(b, "<label>%s <select name=\"reader\" required>", L(rq, "Reader"));
    json_array_foreach(json_object_get(status, "readers"), i, o)
        name_option(json_string_value(json_object_get(o, "name")), &x);
    buf_put(b, "</select></label>");
    input(rq, b, L(rq, "Card's master key, if not the factory's (optional: aes:HEX32, "
                      "2k3des:HEX32 or des:HEX16)"), "password", "picc_key", NULL,
          "autocomplete=\"off\" maxlength=\"64\"");
    hint(b, L(rq, "Place the card on that reader, press the button and hold the card there until "
                  "the page answers (a few seconds). Its keys become its own, diversified from the "
                  "site's master key: a copy of its number opens nothing. If the card was taken "
                  "away too soon, do it again: it picks up where it stopped."));
    form_end(b, L(rq, "Provision the card"), false);
    buf_put(b, "</section>");

    section_begin(rq, b, "deprovision", L(rq, "Take a DESFire card back"));
    form_begin(rq, b, "deprovision");
    buf_printf(b, "<label>%s <select name=\"reader\" required>", L(rq, "Reader"));
    json_array_foreach(json_object_get(status, "readers"), i, o)
        name_option(json_string_value(json_object_get(o, "name")), &x);
    buf_put(b, "</select></label>");
    hint(b, L(rq, "Removes Portier's applications from the card placed on the reader, and the "
                  "card from its member."));
    form_end(b, L(rq, "Take the card back"), false);
    buf_put(b, "</section>");

    section_begin(rq, b, "invite", L(rq, "One-time password link"));
    form_begin(rq, b, "invite");
    x.selected = web_arg_or(rq, "name", NULL);
    buf_printf(b, "<label>%s <select name=\"name\" required>", L(rq, "Account"));
    http_store_ok(rq, store_accounts_foreach(rq->h->env.svc->store, account_option, &x));
    buf_put(b, "</select></label>");
    hint(b, L(rq, "The link sets a new password and is valid 3 days, once."));
    form_end(b, L(rq, "Create link"), false);
    buf_put(b, "</section>");

    buf_printf(b, "<section aria-labelledby=\"uid-h\" class=\"wide-section\"><h2 id=\"uid-h\">%s"
                  "</h2>", L(rq, "Cards that still open by their number"));
    hint(b, L(rq, "A card's number can be copied; a DESFire card's key cannot. Provision these "
                  "members' cards, then set card_security = desfire."));
    buf_printf(b, "<div class=\"table\"><table class=\"cards-narrow\"><thead><tr>"
                  "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                  "<th scope=\"col\">%s</th></tr></thead><tbody>", L(rq, "Member"), L(rq, "Card"),
               L(rq, "Label"), L(rq, "Last used"));
    struct uid_ctx u = { rq, b, 0 };
    http_store_ok(rq, store_uid_only_cards_foreach(rq->h->env.svc->store, UID_ONLY_SHOWN,
                                                   uid_only_row, &u));
    if (!u.n)
        buf_printf(b, "<tr><td colspan=\"4\">%s</td></tr>", L(rq, "None."));
    buf_put(b, "</tbody></table></div>");
    if (u.n == UID_ONLY_SHOWN)
        hint(b, L(rq, "The first 100 enrolled; portierctl card report lists them all, by name."));
    buf_put(b, "</section>");
}

/* ---- doors and entrance screens ---- */

static int kiosk_row(const struct store_kiosk *k, void *userdata)
{
    struct list_ctx *x = userdata;
    struct http_req *rq = x->rq;
    char when[48], id[24];

    buf_put(x->b, "<li><strong>");
    buf_html(x->b, k->label);
    buf_put(x->b, "</strong> — ");
    buf_html(x->b, web_time(rq, k->created_at, I18N_DATE, when, sizeof(when)));
    form_begin(rq, x->b, "kiosk-remove");
    snprintf(id, sizeof(id), "%" PRId64, k->id);
    buf_printf(x->b, "<input type=\"hidden\" name=\"kiosk\" value=\"%s\">", id);
    form_end(x->b, L(rq, "Remove"), true);
    buf_put(x->b, "</li>");
    return 0;
}

static void task_doors(struct http_req *rq, struct buf *b, json_t *status)
{
    struct list_ctx x = { rq, b };
    json_t *o;
    size_t i;

    buf_printf(b, "<section aria-labelledby=\"doors-h\" class=\"wide-section\"><h2 id=\"doors-h\">"
                  "%s</h2><ul class=\"machines\">", L(rq, "Doors"));
    json_array_foreach(json_object_get(status, "doors"), i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *contact = json_string_value(json_object_get(o, "contact"));
        bool unlocked = strcmp(json_string_value(json_object_get(o, "state")) ?: "", "unlocked") == 0;
        buf_put(b, "<li class=\"machine\"><strong>");
        buf_html(b, name);
        buf_put(b, "</strong> — ");
        buf_html(b, unlocked ? L(rq, "unlocked") : L(rq, "locked"));
        if (contact && strcmp(contact, "none") != 0) {
            buf_put(b, ", ");
            buf_html(b, strcmp(contact, "open") == 0 ? L(rq, "open") : L(rq, "closed"));
        }
        if (json_is_true(json_object_get(o, "free_entry"))) {
            buf_put(b, ", ");
            buf_html(b, L(rq, "free entry"));
        }
        buf_put(b, "<div class=\"row-actions\">");
        form_begin(rq, b, "unlock");
        buf_put(b, "<input type=\"hidden\" name=\"door\" value=\"");
        buf_html(b, name);
        buf_put(b, "\">");
        input(rq, b, L(rq, "Seconds"), "number", "seconds", "10",
              "min=\"1\" max=\"86400\" required");
        form_end(b, L(rq, "Unlock"), false);
        if (unlocked) {
            form_begin(rq, b, "lock");
            buf_put(b, "<input type=\"hidden\" name=\"door\" value=\"");
            buf_html(b, name);
            buf_put(b, "\">");
            form_end(b, L(rq, "Lock now"), false);
        }
        buf_put(b, "</div></li>");
    }
    buf_put(b, "</ul></section>");

    buf_printf(b, "<section aria-labelledby=\"taps-h\" class=\"wide-section\"><h2 id=\"taps-h\">%s"
                  "</h2><div class=\"table\"><table class=\"cards-narrow\"><thead><tr>"
                  "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                  "<th scope=\"col\">%s</th></tr></thead><tbody>", L(rq, "Recent taps"),
               L(rq, "When"), L(rq, "Door"), L(rq, "Member"), L(rq, "Outcome"));
    json_array_foreach(json_object_get(status, "recent_taps"), i, o) {
        char when[64];
        bool granted = json_is_true(json_object_get(o, "granted"));
        const char *member = json_string_value(json_object_get(o, "member"));

        web_time(rq, json_integer_value(json_object_get(o, "at")), I18N_DATETIME, when,
                 sizeof(when));
        buf_printf(b, "<tr><td data-label=\"%s\">", L(rq, "When"));
        buf_html(b, when);
        buf_printf(b, "</td><td data-label=\"%s\">", L(rq, "Door"));
        buf_html(b, json_string_value(json_object_get(o, "door")) ?: "");
        buf_printf(b, "</td><td data-label=\"%s\">", L(rq, "Member"));
        buf_html(b, member ? member : L(rq, "unknown card"));
        buf_printf(b, "</td><td data-label=\"%s\">", L(rq, "Outcome"));
        if (granted) {
            buf_html(b, L(rq, "granted"));
        } else {
            buf_html(b, L(rq, "refused:"));
            buf_put(b, " ");
            buf_html(b, json_string_value(json_object_get(o, "text")) ?: "");
            buf_put(b, " (<code>");
            buf_html(b, json_string_value(json_object_get(o, "reason")) ?: "");
            buf_put(b, "</code>)");
        }
        buf_put(b, "</td></tr>");
    }
    buf_put(b, "</tbody></table></div></section>");

    section_begin(rq, b, "screens", L(rq, "Entrance screens"));
    buf_put(b, "<ul class=\"list\">");
    http_store_ok(rq, store_kiosks_foreach(rq->h->env.svc->store, kiosk_row, &x));
    buf_put(b, "</ul>");
    form_begin(rq, b, "kiosk");
    input(rq, b, L(rq, "Where the screen is"), "text", "label", NULL,
          "required maxlength=\"63\"");
    hint(b, rq->h->cfg->web.kiosk_names
                ? L(rq, "A screen shows whether the space is open, how many people are in, the "
                        "machines and today's bookings with names ([web] kiosk_names).")
                : L(rq, "A screen shows whether the space is open, how many people are in, the "
                        "machines and today's bookings, without names."));
    form_end(b, L(rq, "Create a screen address"), false);
    buf_put(b, "</section>");
}

/* ---- billing ---- */

struct period_ctx {
    struct buf *b;
    char closed[64][8];
    unsigned n;
};

static int period_closed(const struct store_period *p, void *userdata)
{
    struct period_ctx *x = userdata;
    if (x->n < 64)
        snprintf(x->closed[x->n++], 8, "%s", p->period);
    return 0;
}

static void task_billing(struct http_req *rq, struct buf *b, json_t *status)
{
    struct period_ctx *x = calloc(1, sizeof(*x));
    char month[11];
    int64_t t = now_utc();

    section_begin(rq, b, "usage", L(rq, "Usage"));
    buf_printf(b, "<p><a href=\"/usage\">%s</a> · <a href=\"/ledger\">%s</a></p></section>",
               L(rq, "Usage of this month"), L(rq, "The ledger and closed periods"));
    if (!x)
        return;
    http_store_ok(rq, store_periods_foreach(rq->h->env.svc->store, period_closed, x));
    section_begin(rq, b, "close", L(rq, "Close a period"));
    form_begin(rq, b, "period-close");
    buf_printf(b, "<label>%s <select name=\"period\" required>", L(rq, "Month"));
    /* The last twelve months that are over and not closed yet. */
    for (int k = 1; k <= 12; k++) {
        bool closed = false;
        web_date_text(web_midnight(t, 0), month);
        int y = atoi(month), mo = atoi(month + 5) - k;
        while (mo < 1) {
            mo += 12;
            y--;
        }
        snprintf(month, sizeof(month), "%04d-%02d", y % 10000, mo % 100);
        for (unsigned i = 0; i < x->n; i++)
            closed |= strcmp(x->closed[i], month) == 0;
        if (!closed)
            web_option(b, month, month, false);
    }
    buf_put(b, "</select></label>");
    hint(b, L(rq, "Closing seals the month's usage in the signed ledger and writes its archive. "
                  "It cannot be undone: you are asked to confirm."));
    form_end(b, L(rq, "Close the period…"), true);
    buf_put(b, "</section>");
    free(x);
}

/* ---- the pages ---- */

void web_manage_nav(struct http_req *rq, struct buf *b, const char *current)
{
    buf_printf(b, "<nav class=\"tasks\" aria-label=\"%s\"><ul>", L(rq, "Manager's tasks"));
    buf_printf(b, "<li><a href=\"/manage\"%s>%s</a></li>",
               current ? "" : " aria-current=\"page\"", L(rq, "Overview"));
    for (size_t i = 0; i < sizeof(tasks) / sizeof(tasks[0]); i++) {
        buf_printf(b, "<li><a href=\"/manage/%s\"%s>", tasks[i].name,
                   current && strcmp(current, tasks[i].name) == 0 ? " aria-current=\"page\"" : "");
        buf_html(b, L(rq, tasks[i].title));
        buf_put(b, "</a></li>");
    }
    buf_put(b, "</ul></nav>");
}

static void task_nav(struct http_req *rq, struct buf *b, const struct manage_task *current)
{
    web_manage_nav(rq, b, current ? current->name : NULL);
}

/* ---- e-mail and webhooks: their delivery state, as portierctl mail list / webhook list ---- */

static const char *delivery_state_text(struct http_req *rq, const char *state)
{
    static const char *const states[][2] = {
        { "queued", N_("waiting") }, { "sending", N_("sending") }, { "sent", N_("sent") },
        { "failed", N_("failed") },
    };
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (strcmp(state, states[i][0]) == 0)
            return L(rq, states[i][1]);
    return state;
}

/* "Waiting: 1. Sent in the last hour: ..." from the status's "mail" object. */
static void mail_summary(struct http_req *rq, struct buf *b, json_t *mail)
{
    char text[320];

    buf_put(b, "<p>");
    buf_html(b, web_format(text, sizeof(text),
                           L(rq, "Waiting: %lld. Sent in the last hour: %lld (at most %lld). Not "
                                 "queued since the start (queue full): %lld."),
                           (long long)json_integer_value(json_object_get(mail, "queued")),
                           (long long)json_integer_value(json_object_get(mail, "sent_last_hour")),
                           (long long)json_integer_value(json_object_get(mail, "per_hour")),
                           (long long)json_integer_value(json_object_get(mail, "dropped"))));
    buf_put(b, "</p>");
}

static int mail_row(const struct store_mail *m, void *userdata)
{
    struct list_ctx *x = userdata;
    struct services *svc = x->rq->h->env.svc;
    char when[48];

    web_time(x->rq, m->state == STORE_MAIL_SENT ? m->sent_at : m->created_at, I18N_DATETIME,
             when, sizeof(when));
    buf_printf(x->b, "<tr><td>%" PRId64 "</td><td><code>", m->id);
    buf_html(x->b, m->kind);
    buf_put(x->b, "</code></td><td>");
    buf_html(x->b, delivery_state_text(x->rq, delivery_mail_sending(svc->delivery, m->id)
                                                  ? "sending" : store_mail_state_name(m->state)));
    buf_put(x->b, "</td><td>");
    buf_html(x->b, when);
    buf_printf(x->b, "</td><td>%" PRId64 "</td><td>", m->attempts);
    buf_html(x->b, m->to_addr);
    buf_put(x->b, "</td><td>");
    buf_html(x->b, m->state != STORE_MAIL_SENT && m->last_error[0] ? m->last_error : m->subject);
    buf_put(x->b, "</td></tr>");
    return 0;
}

static void task_mail(struct http_req *rq, struct buf *b, json_t *status)
{
    json_t *mail = json_object_get(status, "mail"), *hooks = json_object_get(status, "webhooks");
    json_t *o;
    size_t i;

    section_begin(rq, b, "mail", L(rq, "E-mail"));
    if (!json_is_true(json_object_get(mail, "enabled"))) {
        buf_printf(b, "<p>%s</p>", L(rq, "E-mail is off ([mail] enabled = false)."));
    } else {
        struct list_ctx x = { rq, b };
        struct store_mail_filter f = { .state = -1, .limit = 20 };

        mail_summary(rq, b, mail);
        buf_printf(b, "<div class=\"table\"><table><caption>%s</caption><thead><tr>"
                      "<th scope=\"col\">#</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                      "<th scope=\"col\">%s</th></tr></thead><tbody>",
                   L(rq, "The last 20 messages"), L(rq, "Kind"), L(rq, "State"), L(rq, "When"),
                   L(rq, "Attempts"), L(rq, "To"), L(rq, "Subject or last error"));
        http_store_ok(rq, store_mails_foreach(rq->h->env.svc->store, &f, mail_row, &x));
        buf_put(b, "</tbody></table></div>");
    }
    buf_put(b, "</section>");
    section_begin(rq, b, "webhooks", L(rq, "Webhooks"));
    if (json_array_size(hooks) == 0) {
        buf_printf(b, "<p>%s</p></section>", L(rq, "No webhook is configured ([webhook NAME])."));
        return;
    }
    buf_printf(b, "<div class=\"table\"><table><thead><tr><th scope=\"col\">%s</th>"
                  "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                  "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
               L(rq, "Name"), L(rq, "Receiver"), L(rq, "Delivered"), L(rq, "Waiting"),
               L(rq, "Refused"), L(rq, "Last answer"));
    json_array_foreach(hooks, i, o) {
        const char *err = json_string_value(json_object_get(o, "last_error"));
        long long st = json_integer_value(json_object_get(o, "last_status"));

        buf_put(b, "<tr><td>");
        buf_html(b, json_string_value(json_object_get(o, "name")));
        buf_put(b, "</td><td>");
        buf_html(b, json_string_value(json_object_get(o, "receiver")));
        buf_printf(b, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>",
                   (long long)json_integer_value(json_object_get(o, "delivered")),
                   (long long)json_integer_value(json_object_get(o, "behind")),
                   (long long)json_integer_value(json_object_get(o, "refused")));
        if (err && *err)
            buf_html(b, err);
        else if (st)
            buf_printf(b, "HTTP %lld", st);
        else
            buf_put(b, "-");
        buf_put(b, "</td></tr>");
    }
    buf_put(b, "</tbody></table></div></section>");
}

/* The overview's line about e-mail, when it is on: the details are the "mail" task's. */
static void mail_delivery_summary(struct http_req *rq, struct buf *b, json_t *status)
{
    json_t *mail = json_object_get(status, "mail");

    if (!json_is_true(json_object_get(mail, "enabled")))
        return;
    section_begin(rq, b, "mail", L(rq, "E-mail"));
    mail_summary(rq, b, mail);
    buf_put(b, "</section>");
}

static void overview(struct http_req *rq, struct buf *b, json_t *status)
{
    json_int_t present = json_integer_value(json_object_get(status, "present"));
    struct web_machines *ml = web_machines_load(rq);
    json_t *o;
    size_t i;

    buf_printf(b, "<div class=\"overview\"><p class=\"state %s\"><strong>%s</strong> · %lld %s</p>",
               web_site_open(status) ? "open" : "closed",
               web_site_open(status) ? L(rq, "Open") : L(rq, "Closed"), (long long)present,
               LN(rq, "person in", "people in", present));
    buf_put(b, "<ul class=\"glance\">");
    for (unsigned k = 0; ml && k < ml->n; k++) {
        const char *state = web_machine_state(&ml->m[k], status);
        buf_printf(b, "<li class=\"m-%s\">", state[0] == 'f' ? "free" : state[0] == 'i' ? "busy" : "ooo");
        buf_html(b, ml->m[k].name);
        buf_put(b, ": ");
        buf_html(b, web_machine_state_text(rq, state));
        buf_put(b, "</li>");
    }
    json_array_foreach(json_object_get(status, "doors"), i, o) {
        bool unlocked = strcmp(json_string_value(json_object_get(o, "state")) ?: "", "unlocked") == 0;
        buf_put(b, "<li>");
        buf_html(b, json_string_value(json_object_get(o, "name")));
        buf_put(b, ": ");
        buf_html(b, unlocked ? L(rq, "unlocked") : L(rq, "locked"));
        buf_put(b, "</li>");
    }
    buf_put(b, "</ul></div>");
    free(ml);
    buf_put(b, "<ul class=\"task-list\">");
    for (size_t k = 0; k < sizeof(tasks) / sizeof(tasks[0]); k++) {
        buf_printf(b, "<li><a href=\"/manage/%s\">", tasks[k].name);
        buf_html(b, L(rq, tasks[k].title));
        buf_put(b, "</a><p>");
        buf_html(b, L(rq, tasks[k].summary));
        buf_put(b, "</p></li>");
    }
    buf_put(b, "</ul>");
    mail_delivery_summary(rq, b, status);
}

/* The task's page (NULL: the overview), with a notice on top: what happened (ok) or why not;
 * link: something to show beside it (a one-time link, a screen's address). */
static void manage_page(struct http_req *rq, const struct manage_task *task, bool ok,
                        const char *notice, const char *link, unsigned status_code)
{
    struct http *h = rq->h;
    json_t *status = h->env.svc->status(h->env.svc);
    const char *cancelled = http_query(rq, "cancelled");
    struct buf b = { 0 };
    int64_t id;

    web_page_begin(rq, &b, task ? L(rq, task->title) : L(rq, "Manage"));
    buf_put(&b, "<h1>");
    buf_html(&b, task ? L(rq, task->title) : L(rq, "Manage"));
    buf_put(&b, "</h1>");
    task_nav(rq, &b, task);
    if (notice)
        web_notice(&b, ok, notice);
    if (link) {
        buf_printf(&b, "<p><input readonly class=\"copy\" id=\"link\" aria-label=\"%s\" value=\"",
                   L(rq, "Address"));
        buf_html(&b, link);
        buf_put(&b, "\"></p>");
    }
    if (!notice && cancelled && parse_int64(cancelled, 1, INT64_MAX, &id) == 0) {
        struct store_booking bk;
        char label[256], text[320];
        if (store_booking_get(h->env.svc->store, id, &bk) == 0) {
            booking_label(rq, &bk, label, sizeof(label));
            web_notice(&b, true, web_format(text, sizeof(text), L(rq, "Cancelled: %s."), label));
        }
    }
    buf_put(&b, "<div class=\"cards\">");
    if (task)
        task->render(rq, &b, status);
    else
        overview(rq, &b, status);
    buf_put(&b, "</div>");
    json_decref(status);
    web_page_end(rq, &b, status_code);
}

/* GET /manage and /manage/TASK. */
void page_manage(struct http_req *rq, const char *rest)
{
    const struct manage_task *task = NULL;

    if (!http_require(rq, WEB_STAFF))
        return;
    if (*rest && !(task = task_find(rest))) {
        http_error(rq, 404, "not_found", "no such page");
        return;
    }
    manage_page(rq, task, true, NULL, NULL, 200);
}

/* ---- actions: POST /manage/ACTION ---- */

enum field_type { F_STR, F_INT, F_BOOL, F_FIXED };
struct field_map {
    const char *form, *cmd_key;
    enum field_type type;
    bool required;
    const char *fixed;              /* F_FIXED: the value sent, whatever the form says */
};

#define FIELD(form, key, type, required) { form, key, type, required, NULL }
#define FIXED(key, value) { NULL, key, F_FIXED, false, value }

struct manage_action {
    const char *name, *task, *cmd;
    bool confirm;                   /* asks first (cannot be undone, or stops a machine) */
    struct field_map fields[10];
    /* The sentence that says what happened (translated), from the reply and the form. */
    void (*done)(struct http_req *rq, json_t *reply, char *text, size_t n);
};

static const char *arg(struct http_req *rq, const char *key)
{
    return http_arg(rq, key) ?: "";
}

static const char *member_name(struct http_req *rq, int64_t id, char *buf, size_t n)
{
    struct store_member m;
    if (store_member_get(rq->h->env.svc->store, id, &m) == 0)
        snprintf(buf, n, "%s", m.name);
    else
        snprintf(buf, n, "#%" PRId64, id);
    return buf;
}

static void booking_sentence(struct http_req *rq, int64_t id, const char *fmt, char *text, size_t n)
{
    struct store_booking bk;
    char label[256];

    if (store_booking_get(rq->h->env.svc->store, id, &bk) == 0)
        booking_label(rq, &bk, label, sizeof(label));
    else
        snprintf(label, sizeof(label), "#%" PRId64, id);
    web_format(text, n, fmt, label);
}

static void done_assign(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    booking_sentence(rq, json_integer_value(json_object_get(reply, "id")),
                     L(rq, "Booked: %s."), text, n);
}

static void done_move(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    booking_sentence(rq, json_integer_value(json_object_get(reply, "new_id")),
                     L(rq, "Moved: the booking is now %s."), text, n);
}

static void done_enroll(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    char who[96];
    web_format(text, n, L(rq, "Card %lld is enrolled for %s."),
               (long long)json_integer_value(json_object_get(reply, "card")),
               member_name(rq, json_integer_value(json_object_get(reply, "member")), who,
                           sizeof(who)));
}

static void done_provision(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    char who[96];
    web_format(text, n, L(rq, "Card %lld of %s is a DESFire card now: a copy of its number opens "
                              "nothing."),
               (long long)json_integer_value(json_object_get(reply, "card")),
               member_name(rq, json_integer_value(json_object_get(reply, "member")), who,
                           sizeof(who)));
}

static void done_deprovision(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    if (json_is_integer(json_object_get(reply, "card")))
        web_format(text, n, L(rq, "Portier's applications are removed from the card, and card "
                                  "%lld from its member."),
                   (long long)json_integer_value(json_object_get(reply, "card")));
    else
        snprintf(text, n, "%s", L(rq, "Portier's applications are removed from the card (it "
                                      "was not enrolled here)."));
}

static void done_training(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    char who[96];
    int64_t member = 0, t;

    if (store_member_resolve(rq->h->env.svc->store, arg(rq, "member"), &member) < 0)
        member = 0;
    member_name(rq, member, who, sizeof(who));
    if (*arg(rq, "expires") && web_parse_local(arg(rq, "expires"), true, &t) == 0) {
        char until[48];
        web_format(text, n, L(rq, "%s may now use the machines of training %s, until %s."), who,
                   arg(rq, "training"), web_time(rq, t, I18N_DATE, until, sizeof(until)));
    } else {
        web_format(text, n, L(rq, "%s may now use the machines of training %s."), who,
                   arg(rq, "training"));
    }
}

static void done_out_of_order(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    const char *m = json_string_value(json_object_get(reply, "machine")) ?: "";
    web_format(text, n, json_is_true(json_object_get(reply, "finishing"))
                            ? L(rq, "%s is out of order: it takes no new session or booking; the "
                                    "session under way finishes first.")
                            : L(rq, "%s is out of order: it takes no new session or booking."), m);
}

static void done_power_cut(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    web_format(text, n, L(rq, "%s is out of order and its power is off."),
               json_string_value(json_object_get(reply, "machine")) ?: "");
}

static void done_in_order(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    web_format(text, n, L(rq, "%s is back in order."),
               json_string_value(json_object_get(reply, "machine")) ?: "");
}

static void done_unlock(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    web_format(text, n, L(rq, "Door %s is unlocked for %lld seconds."), arg(rq, "door"),
               (long long)json_integer_value(json_object_get(reply, "seconds")));
}

static void done_lock(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    web_format(text, n, L(rq, "Door %s is locked."), arg(rq, "door"));
}

static void done_machine(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    web_format(text, n, L(rq, "Machine %s is added; members can book it."), arg(rq, "machine"));
}

static void done_training_add(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    web_format(text, n, L(rq, "Training %s is added."), arg(rq, "name"));
}

static void done_period(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    web_format(text, n, L(rq, "Period %s is closed: its usage is sealed and its archive written."),
               json_string_value(json_object_get(reply, "period")) ?: "");
}

static void done_kiosk_remove(struct http_req *rq, json_t *reply, char *text, size_t n)
{
    web_format(text, n, L(rq, "Screen %lld is removed: its address no longer works."),
               (long long)json_integer_value(json_object_get(reply, "kiosk")));
}

static const struct manage_action actions[] = {
    { "assign", "bookings", "booking.add", false,
      { FIELD("member", "member", F_STR, true), FIELD("machine", "machine", F_STR, true),
        FIELD("start", "start", F_STR, true), FIELD("end", "end", F_STR, true) }, done_assign },
    { "move", "bookings", "booking.move", false,
      { FIELD("booking", "booking", F_INT, true), FIELD("start", "start", F_STR, true),
        FIELD("end", "end", F_STR, true), FIXED("override", "true") }, done_move },
    { "member", "cards", "member.add", false,
      { FIELD("name", "name", F_STR, true), FIELD("email", "email", F_STR, false),
        FIELD("plan", "plan", F_STR, false), FIELD("valid_until", "valid_until", F_STR, false) },
      NULL },
    { "enroll", "cards", "card.enroll", false,
      { FIELD("member", "member", F_STR, true), FIELD("reader", "reader", F_STR, true),
        FIELD("label", "label", F_STR, false) }, done_enroll },
    { "invite", "cards", "account.invite", false, { FIELD("name", "name", F_STR, true) }, NULL },
    /* The page waits for the card: within a connection's idle timeout. */
    { "provision", "cards", "card.provision", false,
      { FIELD("member", "member", F_STR, true), FIELD("reader", "reader", F_STR, true),
        FIELD("picc_key", "picc_key", F_STR, false), FIXED("timeout", "20") }, done_provision },
    { "deprovision", "cards", "card.deprovision", false,
      { FIELD("reader", "reader", F_STR, true), FIXED("timeout", "20") }, done_deprovision },
    { "training", "machines", "training.grant", false,
      { FIELD("member", "member", F_STR, true), FIELD("training", "training", F_STR, true),
        FIELD("expires", "expires", F_STR, false) }, done_training },
    { "out-of-order", "machines", "machine.out_of_order", false,
      { FIELD("machine", "machine", F_STR, true), FIXED("on", "true"),
        FIXED("when", "after_session"), FIELD("reason", "reason", F_STR, false) },
      done_out_of_order },
    { "power-cut", "machines", "machine.out_of_order", true,
      { FIELD("machine", "machine", F_STR, true), FIXED("on", "true"),
        FIXED("when", "now"), FIELD("reason", "reason", F_STR, false) },
      done_power_cut },
    { "in-order", "machines", "machine.out_of_order", false,
      { FIELD("machine", "machine", F_STR, true), FIXED("on", "false") },
      done_in_order },
    { "machine", "machines", "machine.add", false,
      { FIELD("machine", "machine", F_STR, true), FIELD("training", "training", F_STR, false),
        FIELD("slot_minutes", "slot_minutes", F_INT, true),
        FIELD("min_minutes", "min_minutes", F_INT, true),
        FIELD("max_minutes", "max_minutes", F_INT, true),
        FIELD("window_days", "window_days", F_INT, true), FIELD("hours", "hours", F_STR, true) },
      done_machine },
    { "training-add", "machines", "training.add", false,
      { FIELD("name", "name", F_STR, true), FIELD("description", "description", F_STR, false) },
      done_training_add },
    { "unlock", "doors", "door.unlock", false,
      { FIELD("door", "door", F_STR, true), FIELD("seconds", "seconds", F_INT, true) }, done_unlock },
    { "lock", "doors", "door.lock", false, { FIELD("door", "door", F_STR, true) }, done_lock },
    { "kiosk", "doors", "kiosk.add", false, { FIELD("label", "label", F_STR, true) }, NULL },
    { "kiosk-remove", "doors", "kiosk.remove", false, { FIELD("kiosk", "kiosk", F_INT, true) },
      done_kiosk_remove },
    { "period-close", "billing", "period.close", true, { FIELD("period", "period", F_STR, true) },
      done_period },
};

static const struct manage_action *action_of(struct http_req *rq)
{
    return &actions[rq->note_id];
}

static void answer(struct http_req *rq, bool ok, const char *text, const char *link,
                   unsigned status)
{
    manage_page(rq, task_find(action_of(rq)->task), ok, text, link, status);
}

static void refused(struct http_req *rq, json_t *reply)
{
    const char *code = json_string_value(json_object_get(reply, "code")) ?: "internal";
    answer(rq, false, json_string_value(json_object_get(reply, "error")) ?: L(rq, "refused"), NULL,
           http_status_of(code));
}

static void invite_done(struct http_req *rq, json_t *reply)
{
    char base[160], link[320], text[512], until[64];
    const char *member = rq->note_ptr;

    if (!web_reply_ok(reply)) {
        refused(rq, reply);
        return;
    }
    http_base_url(rq, base, sizeof(base));
    snprintf(link, sizeof(link), "%s%s", base, json_string_value(json_object_get(reply, "path")));
    web_time(rq, json_integer_value(json_object_get(reply, "expires_at")), I18N_DATETIME_ZONE,
             until, sizeof(until));
    /* E-MAIL: once the mail outbox exists, the link is e-mailed to the member too; the page
     * says so here. */
    if (member)
        web_format(text, sizeof(text), L(rq, "%s is added, with the web account %s. Give them "
                                             "this link to set a password (valid until %s, once):"),
                   member, json_string_value(json_object_get(reply, "name")), until);
    else
        web_format(text, sizeof(text), L(rq, "Give this link to %s to set a password (valid "
                                             "until %s, once):"),
                   json_string_value(json_object_get(reply, "name")), until);
    answer(rq, true, text, link, 200);
}

static void account_added(struct http_req *rq, json_t *reply)
{
    if (!web_reply_ok(reply)) {
        refused(rq, reply);
        return;
    }
    http_command(rq, json_pack("{s:s, s:s}", "cmd", "account.invite", "name", rq->note),
                 invite_done);
}

static void kiosk_added(struct http_req *rq, json_t *reply)
{
    char base[160], link[320], text[320];

    http_base_url(rq, base, sizeof(base));
    snprintf(link, sizeof(link), "%s%s", base, json_string_value(json_object_get(reply, "path")));
    web_format(text, sizeof(text), L(rq, "Screen %s is created. Open this address on it (no login; "
                                         "it is shown only now, keep it private):"),
               json_string_value(json_object_get(reply, "label")));
    answer(rq, true, text, link, 200);
    sodium_memzero(link, sizeof(link));
}

static void manage_done(struct http_req *rq, json_t *reply)
{
    const struct manage_action *a = action_of(rq);
    char text[512];

    if (!web_reply_ok(reply)) {
        refused(rq, reply);
        return;
    }
    if (strcmp(a->name, "invite") == 0) {
        rq->note_ptr = NULL;
        invite_done(rq, reply);
        return;
    }
    if (strcmp(a->name, "kiosk") == 0) {
        kiosk_added(rq, reply);
        return;
    }
    if (strcmp(a->name, "member") == 0) {
        int64_t id = json_integer_value(json_object_get(reply, "id"));
        if (rq->note[0]) {
            /* Then its web account, and the link to set its password. */
            char member[24];
            snprintf(member, sizeof(member), "%" PRId64, id);
            rq->note_ptr = arg(rq, "name");
            http_command(rq, json_pack("{s:s, s:s, s:s, s:s}", "cmd", "account.add", "name",
                                      rq->note, "role", "member", "member", member),
                         account_added);
            return;
        }
        web_format(text, sizeof(text), L(rq, "%s is added as member %lld."), arg(rq, "name"),
                   (long long)id);
        answer(rq, true, text, NULL, 200);
        return;
    }
    a->done(rq, reply, text, sizeof(text));
    answer(rq, true, text, NULL, 200);
}

/* Actions that stop a machine or cannot be undone: a page that says what will happen, with
 * the same form and confirm=yes. */
static void confirm_page(struct http_req *rq, const struct manage_action *a)
{
    struct buf b = { 0 };
    char text[320];
    const char *title = L(rq, "Please confirm");

    web_page_begin(rq, &b, title);
    buf_printf(&b, "<h1>%s</h1><p>", title);
    if (strcmp(a->name, "power-cut") == 0)
        web_format(text, sizeof(text), L(rq, "Cut the power of %s now? Whoever is using it is "
                                             "stopped mid-job, and it stays out of order."),
                   arg(rq, "machine"));
    else
        web_format(text, sizeof(text), L(rq, "Close the period %s? Its usage is sealed in the "
                                             "signed ledger for good."), arg(rq, "period"));
    buf_html(&b, text);
    buf_put(&b, "</p>");
    form_begin(rq, &b, a->name);
    for (const struct field_map *f = a->fields; f->cmd_key; f++) {
        if (!f->form)
            continue;
        buf_printf(&b, "<input type=\"hidden\" name=\"%s\" value=\"", f->form);
        buf_html(&b, arg(rq, f->form));
        buf_put(&b, "\">");
    }
    buf_put(&b, "<input type=\"hidden\" name=\"confirm\" value=\"yes\"><div class=\"actions\">"
                "<button type=\"submit\" class=\"danger\">");
    buf_html(&b, strcmp(a->name, "power-cut") == 0 ? L(rq, "Cut the power now")
                                                   : L(rq, "Close the period"));
    buf_printf(&b, "</button> <a href=\"/manage/%s\">%s</a></div></form>", a->task,
               L(rq, "No, go back"));
    web_page_end(rq, &b, 200);
}

void post_manage(struct http_req *rq, const char *name)
{
    const struct manage_action *a = NULL;
    json_t *req;
    char why[160];

    if (!http_require(rq, WEB_STAFF))
        return;
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(actions[i].name, name) == 0) {
            a = &actions[i];
            rq->note_id = (int64_t)i;
        }
    if (!a) {
        http_error(rq, 404, "not_found", "no such action");
        return;
    }
    req = json_pack("{s:s}", "cmd", a->cmd);
    for (const struct field_map *f = a->fields; f->cmd_key; f++) {
        const char *v = f->form ? http_arg(rq, f->form) : f->fixed;
        int64_t n;
        if (!v || !*v) {
            if (f->required) {
                json_decref(req);
                answer(rq, false, web_format(why, sizeof(why), L(rq, "Fill in \"%s\"."), f->form),
                       NULL, 400);
                return;
            }
            continue;
        }
        if (f->type == F_INT) {
            if (parse_int64(v, 0, INT64_MAX / 2, &n) < 0) {
                json_decref(req);
                answer(rq, false, web_format(why, sizeof(why), L(rq, "\"%s\" must be a whole "
                                                                     "number."), f->form),
                       NULL, 400);
                return;
            }
            json_object_set_new(req, f->cmd_key, json_integer(n));
        } else if (f->type == F_FIXED && (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
            json_object_set_new(req, f->cmd_key, json_boolean(strcmp(v, "true") == 0));
        } else if (f->type == F_FIXED && parse_int64(v, 0, INT64_MAX / 2, &n) == 0) {
            json_object_set_new(req, f->cmd_key, json_integer(n));
        } else {
            json_object_set_new(req, f->cmd_key, json_string(v));
        }
    }
    if (a->confirm && strcmp(arg(rq, "confirm"), "yes") != 0) {
        json_decref(req);
        confirm_page(rq, a);
        return;
    }
    if (strcmp(a->name, "member") == 0) {
        const char *account = http_arg(rq, "account");
        snprintf(rq->note, sizeof(rq->note), "%s", account && strlen(account) <= 32 ? account : "");
    }
    http_command(rq, req, manage_done);
}
