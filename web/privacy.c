/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* privacy: the public page /privacy — what the site records about people, why, for how
 * long and who sees it, the site's contact, and how to use one's rights. It is written from
 * the running configuration ([privacy], [consortium], [mqtt], [spaceapi], [site]), so that
 * it always says what the system does (docs/privacy.md is the operator's side). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "http_internal.h"

static void days_text(struct http_req *rq, int64_t days, char *buf, size_t n)
{
    if (days <= 0)
        snprintf(buf, n, "%s", L(rq, "kept until erased"));
    else
        snprintf(buf, n, "%" PRId64 " %s", days, i18n_nt(rq->lang, "day", "days", days));
}

/* One row: what, why, how long, who sees it (each already translated). */
static void row(struct buf *b, const char *what, const char *why, const char *how_long,
                const char *who)
{
    buf_put(b, "<tr><th scope=\"row\">");
    buf_html(b, what);
    buf_put(b, "</th><td>");
    buf_html(b, why);
    buf_put(b, "</td><td>");
    buf_html(b, how_long);
    buf_put(b, "</td><td>");
    buf_html(b, who);
    buf_put(b, "</td></tr>");
}

static void page_privacy(struct http_req *rq)
{
    const struct config *cfg = rq->h->cfg;
    const struct privacy_config *pc = &cfg->privacy;
    struct buf b = { 0 };
    char access[96], presence[96], accounts[96], passport[96];

    days_text(rq, pc->access_log_days, access, sizeof(access));
    days_text(rq, pc->presence_days, presence, sizeof(presence));
    days_text(rq, pc->account_inactive_days, accounts, sizeof(accounts));
    days_text(rq, cfg->consortium.passport_days, passport, sizeof(passport));

    web_page_begin(rq, &b, L(rq, "Privacy"));
    buf_printf(&b, "<h1>%s</h1><p>", L(rq, "Your personal data"));
    buf_html(&b, cfg->site.name);
    buf_printf(&b, " %s</p>", L(rq, "uses Portier to open its doors and machines to its members. "
                                    "This page says what it records about you, why, for how "
                                    "long and who sees it. It is written from the site's "
                                    "settings, so it says what the system actually does."));

    buf_printf(&b, "<h2>%s</h2><p id=\"privacy-contact\">", L(rq, "Who to ask"));
    if (cfg->site.privacy_contact[0]) {
        buf_printf(&b, "%s ", L(rq, "Questions and requests about your data:"));
        buf_html(&b, cfg->site.privacy_contact);
    } else {
        buf_html(&b, L(rq, "Ask the site's managers, in person or by the usual means."));
    }
    buf_put(&b, "</p>");

    buf_printf(&b, "<h2>%s</h2><div class=\"table\"><table id=\"data\"><thead><tr>"
               "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
               "<th scope=\"col\">%s</th></tr></thead><tbody>", L(rq, "What is recorded"),
               L(rq, "What"), L(rq, "Why"), L(rq, "How long"), L(rq, "Who sees it"));
    row(&b, L(rq, "Your name, e-mail address, plan, membership dates and a manager's note"),
        L(rq, "To know who may come in, and to bill your plan"),
        L(rq, "While you are a member; erased on request when you leave"),
        L(rq, "The site's managers; you, on your page"));
    row(&b, L(rq, "Your card: a keyed fingerprint of its number, never the number itself"),
        L(rq, "To recognise your card at the readers"),
        L(rq, "While the card is enrolled; deleted when you are erased"),
        L(rq, "Nobody reads it; managers see its first digits to tell cards apart"));
    row(&b, L(rq, "Entries and exits: each tap at a door or machine, its time and whether it "
                  "opened"),
        L(rq, "Security of the premises and of the machines, and settling disputes"), access,
        L(rq, "The site's managers"));
    row(&b, L(rq, "Presence (arrival and departure), machine use and past bookings"),
        L(rq, "To meter and bill what you used, and to share the machines"), presence,
        L(rq, "The site's managers; you; other members see that a machine is booked, not by "
              "whom"));
    row(&b, L(rq, "Trainings you received"), L(rq, "Machine safety: who may use which machine"),
        L(rq, "While you are a member; erased on request"),
        L(rq, "The site's managers and trainers"));
    row(&b, L(rq, "Usage records and the signed ledger: days, minutes and amounts"),
        L(rq, "Billing and accounting, which the law requires to keep"),
        L(rq, "As accounting records (10 years in France); the ledger names a member by a "
              "number, never by name, and after an erasure only a pseudonym remains"),
        L(rq, "The site's managers; the consortium's custodian sees numbers, not names"));
    row(&b, L(rq, "Your web account: login name, password (only as a hash), last login"),
        L(rq, "To let you log in and book"), accounts,
        L(rq, "The site's managers see the login name"));
    if (cfg->consortium.enabled && cfg->consortium.card_key_file[0])
        row(&b, L(rq, "A passport for the consortium's other sites: a pseudonym and your cards' "
                      "fingerprints, no name"),
            L(rq, "To let you into the other sites of the consortium"), passport,
            L(rq, "The consortium's other sites, without your name"));
    if (cfg->mqtt.enabled)
        row(&b, L(rq, "Door and machine events for the building's automation: member numbers, "
                      "no names"),
            L(rq, "To run the building (lights, heating, alarms)"),
            L(rq, "As long as the site's message broker keeps them"),
            L(rq, "The site's own systems"));
    buf_put(&b, "</tbody></table></div>");

    buf_printf(&b, "<p id=\"people-count\">%s</p>", cfg->spaceapi.enabled && cfg->spaceapi.publish_people
               ? L(rq, "How many people are in (a number, without names) is public, at "
                       "/spaceapi.json.")
               : L(rq, "Nothing about who is in is published."));
    buf_printf(&b, "<p class=\"hint\">%s</p>",
               L(rq, "Rows past their time are deleted every night. Backups of the database "
                     "hold the same data and are kept by the site for a limited time."));

    buf_printf(&b, "<h2>%s</h2><ul class=\"list\"><li>%s</li><li>%s</li><li>%s</li><li>%s</li>"
               "</ul>", L(rq, "Your rights"),
               L(rq, "See your data: \"Download my data\" on your page gives everything the site "
                     "holds about you in one file; or ask the contact above."),
               L(rq, "Correct it: ask the site's managers."),
               L(rq, "Have it erased when you leave: your name, e-mail, cards and account are "
                     "deleted; billing keeps only what the law requires, under a pseudonym."),
               L(rq, "Complain to the data protection authority (in France, the CNIL: "
                     "www.cnil.fr)."));
    web_page_end(rq, &b, 200);
}

bool web_privacy_route(struct http_req *rq, const char *path)
{
    if (!rq->is_get || strcmp(path, "/privacy") != 0)
        return false;
    page_privacy(rq);       /* public: no account needed */
    return true;
}
