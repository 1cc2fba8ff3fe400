/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_facts: the one place where rows become policy facts and schedule text becomes a
 * schedule. No SQL. */
#include <string.h>

#include "store.h"

/* Hours that no longer parse (edited by hand, or written by another version) mean closed:
 * a plan or a machine grants nothing rather than everything, at the door, at the machine and
 * on the web page alike. */
static bool hours_or_closed(const char *text, struct schedule *ret)
{
    if (schedule_parse(text, ret, NULL) == 0)
        return true;
    memset(ret, 0, sizeof(*ret));       /* "never" */
    return false;
}

void store_subject_facts(const struct store_subject *subj, struct store_subject_facts *f,
                         struct policy_request *req)
{
    memset(f, 0, sizeof(*f));
    f->card.enabled = subj->card_enabled;
    f->card.desfire = subj->card_desfire;
    f->member.status = subj->status;
    f->member.valid_from = subj->valid_from;
    f->member.valid_until = subj->valid_until;
    req->card = &f->card;
    req->member = &f->member;
    req->plan = NULL;
    if (!subj->plan_id)
        return;
    f->hours_unreadable = !hours_or_closed(subj->hours, &f->plan_hours);
    f->plan.zones = subj->zones;
    f->plan.hours = &f->plan_hours;
    req->plan = &f->plan;
}

void store_machine_facts(const struct store_resource *r, int64_t now, int64_t horizon,
                         struct store_machine_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->hours_unreadable = !hours_or_closed(r->hours, &f->hours);
    f->machine.out_of_order = r->out_of_order;
    f->machine.needs_training = r->training_id != 0;
    f->machine.booking_required = r->booking_required;
    f->machine.walkup_free_minutes = r->walkup_free_minutes;
    f->machine.closing_at = schedule_window_end(&f->hours, now, horizon);
}
