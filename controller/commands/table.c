/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The command table: every command of the daemon, once — name, who may call it, which
 * channels expose it, its argument policy and its handler (see command.h). Keep it sorted
 * by name (command_find() searches it; a unit test checks the order). */
#include "booking.h"
#include "command.h"
#include "door.h"
#include "handlers.h"
#include "util.h"

#define REQ true
#define OPT false
#define END { 0 }

/* Bounds shared by several commands. */
#define LABEL_MAX 63
#define NOTE_MAX 127
#define NOTE_MAX_MEMBER 255         /* STORE_MEMBER_NOTE_MAX */
#define MONEY_MAX 100000000         /* cents: one million euros */

static const struct arg_spec no_args[] = { END };

/* ---- accounts ---- */
static const struct arg_spec a_account_name[] = { { "name", ARG_TEXT, REQ, 0, 32 }, END };
static const struct arg_spec a_account_add[] = {
    { "name", ARG_TEXT, REQ, 0, 32 }, { "role", ARG_TEXT, REQ, 0, 16 },
    { "member", ARG_MEMBER, OPT, 0, 0 }, END };
static const struct arg_spec a_account_passwd[] = {
    { "name", ARG_TEXT, REQ, 0, 32 }, { "hash", ARG_TEXT, REQ, 0, 127 }, END };
static const struct arg_spec a_account_invite[] = {
    { "name", ARG_TEXT, REQ, 0, 32 }, { "hours", ARG_INT, OPT, 1, 24 * 30 }, END };
static const struct arg_spec a_account_language[] = {
    { "language", ARG_TEXT, REQ, 0, 4 }, { "name", ARG_TEXT, OPT, 0, 32 }, END };
static const struct arg_spec a_account_token[] = {
    { "name", ARG_TEXT, REQ, 0, 32 }, { "label", ARG_TEXT, OPT, 0, 64 },
    { "days", ARG_INT, OPT, 1, 3650 }, END };

/* ---- entrance screens ---- */
static const struct arg_spec a_kiosk_add[] = { { "label", ARG_TEXT, REQ, 0, LABEL_MAX }, END };
static const struct arg_spec a_kiosk[] = { { "kiosk", ARG_ID, REQ, 0, 0 }, END };

/* ---- members, cards, plans ---- */
static const struct arg_spec a_member[] = { { "member", ARG_MEMBER, REQ, 0, 0 }, END };
static const struct arg_spec a_member_opt[] = { { "member", ARG_MEMBER, OPT, 0, 0 }, END };
static const struct arg_spec a_member_add[] = {
    { "name", ARG_TEXT, REQ, 0, 95 }, { "email", ARG_TEXT, OPT, 0, 127 },
    { "plan", ARG_NAME, OPT, 0, 0 }, { "valid_from", ARG_TIME, OPT, 0, 0 }, { "valid_until", ARG_TIME, OPT, 0, 0 },
    { "note", ARG_TEXT, OPT, 0, NOTE_MAX_MEMBER }, END };
static const struct arg_spec a_member_set[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "name", ARG_TEXT, OPT, 0, 95 },
    { "email", ARG_TEXT, OPT, 0, 127 }, { "plan", ARG_NAME, OPT, 0, 0 },
    { "plan_from", ARG_TIME, OPT, 0, 0 }, { "valid_from", ARG_TIME, OPT, 0, 0 },
    { "valid_until", ARG_TIME, OPT, 0, 0 }, { "note", ARG_TEXT, OPT, 0, NOTE_MAX_MEMBER }, END };
static const struct arg_spec a_member_renew[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "until", ARG_TIME, OPT, 0, 0 },
    { "for", ARG_TEXT, OPT, 0, 8 }, END };
static const struct arg_spec a_member_erase[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "force", ARG_BOOL, OPT, 0, 0 }, END };
static const struct arg_spec a_member_list[] = {
    { "query", ARG_TEXT, OPT, 0, 95 }, { "filter", ARG_TEXT, OPT, 0, 16 },
    { "offset", ARG_INT, OPT, 0, 10000000 }, { "limit", ARG_INT, OPT, 0, 1000 }, END };
static const struct arg_spec a_card[] = { { "card", ARG_ID, REQ, 0, 0 }, END };
static const struct arg_spec a_plan[] = { { "plan", ARG_NAME, REQ, 0, 0 }, END };
static const struct arg_spec a_card_add[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "uid", ARG_UID, REQ, 0, 0 }, { "label", ARG_TEXT, OPT, 0, LABEL_MAX },
    END };
static const struct arg_spec a_card_remove[] = {
    { "card", ARG_ID, OPT, 0, 0 }, { "uid", ARG_UID, OPT, 0, 0 }, END };
static const struct arg_spec a_card_enroll[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "reader", ARG_NAME, REQ, 0, 0 },
    { "label", ARG_TEXT, OPT, 0, LABEL_MAX }, { "timeout", ARG_INT, OPT, 1, 600 }, END };
static const struct arg_spec a_card_provision[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "reader", ARG_NAME, REQ, 0, 0 },
    { "label", ARG_TEXT, OPT, 0, LABEL_MAX }, { "timeout", ARG_INT, OPT, 1, 600 },
    { "picc_key", ARG_TEXT, OPT, 0, 64 }, END };
static const struct arg_spec a_card_deprovision[] = {
    { "reader", ARG_NAME, REQ, 0, 0 }, { "timeout", ARG_INT, OPT, 1, 600 },
    { "picc_key", ARG_TEXT, OPT, 0, 64 }, END };
static const struct arg_spec a_plan_add[] = {
    { "name", ARG_NAME, REQ, 0, 0 }, { "zones", ARG_TEXT, OPT, 0, 255 }, { "hours", ARG_TEXT, OPT, 0, 255 },
    END };

/* ---- doors, readers, simulation ---- */
static const struct arg_spec a_door_unlock[] = {
    { "door", ARG_NAME, REQ, 0, 0 }, { "seconds", ARG_INT, OPT, 1, DOOR_MAX_UNLOCK_SECONDS }, END };
static const struct arg_spec a_door[] = { { "door", ARG_NAME, REQ, 0, 0 }, END };
static const struct arg_spec a_reader[] = { { "reader", ARG_NAME, REQ, 0, 0 }, END };
static const struct arg_spec a_events[] = {
    { "since", ARG_TIME, OPT, 0, 0 }, { "limit", ARG_INT, OPT, 0, 100000 }, END };
static const struct arg_spec a_sim_tap[] = {
    { "reader", ARG_NAME, REQ, 0, 0 }, { "uid", ARG_UID, REQ, 0, 0 }, { "hold", ARG_BOOL, OPT, 0, 0 }, END };
static const struct arg_spec a_sim_input[] = { { "input", ARG_TEXT, REQ, 0, 64 }, END };
static const struct arg_spec a_sim_advance[] = { { "seconds", ARG_INT, REQ, 0, 90 * 86400 }, END };

/* ---- fablab ---- */
#define RULE_ARGS \
    { "slot_minutes", ARG_INT, OPT, 5, 1440 }, { "min_minutes", ARG_INT, OPT, 5, 10080 }, \
    { "max_minutes", ARG_INT, OPT, 5, BOOKING_MAX_MINUTES }, { "window_days", ARG_INT, OPT, 0, 365 }, \
    { "quota_day_minutes", ARG_INT, OPT, 0, 1440 }, \
    { "quota_week_minutes", ARG_INT, OPT, 0, 10080 }, \
    { "cancel_deadline_minutes", ARG_INT, OPT, 0, 10080 }, \
    { "walkup_free_minutes", ARG_INT, OPT, 0, 1440 }, { "training", ARG_TEXT, OPT, 0, 31 }, \
    { "hours", ARG_TEXT, OPT, 0, 255 }, { "booking_required", ARG_BOOL, OPT, 0, 0 }, \
    { "category", ARG_TEXT, OPT, 0, 31 }
static const struct arg_spec a_machine_add[] = {
    { "machine", ARG_NAME, REQ, 0, 0 }, { "zone", ARG_NAME, OPT, 0, 0 }, RULE_ARGS, END };
static const struct arg_spec a_machine_set[] = { { "machine", ARG_NAME, REQ, 0, 0 }, RULE_ARGS, END };
static const struct arg_spec a_machine[] = { { "machine", ARG_NAME, REQ, 0, 0 }, END };
static const struct arg_spec a_machine_ooo[] = {
    { "machine", ARG_NAME, REQ, 0, 0 }, { "on", ARG_BOOL, REQ, 0, 0 }, { "reason", ARG_TEXT, OPT, 0, NOTE_MAX },
    { "when", ARG_TEXT, OPT, 0, 16 }, END };
static const struct arg_spec a_since[] = { { "since", ARG_TIME, OPT, 0, 0 }, END };
static const struct arg_spec a_training_add[] = {
    { "name", ARG_NAME, REQ, 0, 0 }, { "description", ARG_TEXT, OPT, 0, NOTE_MAX }, END };
static const struct arg_spec a_training_grant[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "training", ARG_NAME, REQ, 0, 0 }, { "expires", ARG_TIME, OPT, 0, 0 },
    END };
static const struct arg_spec a_training_member[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "training", ARG_NAME, REQ, 0, 0 }, END };
static const struct arg_spec a_booking_add[] = {
    { "machine", ARG_NAME, REQ, 0, 0 }, { "member", ARG_MEMBER, OPT, 0, 0 }, { "start", ARG_TIME, REQ, 0, 0 },
    { "end", ARG_TIME, REQ, 0, 0 }, { "as_member", ARG_BOOL, OPT, 0, 0 }, END };
static const struct arg_spec a_booking_cancel[] = {
    { "booking", ARG_ID, REQ, 0, 0 }, { "override", ARG_BOOL, OPT, 0, 0 }, { "as_member", ARG_BOOL, OPT, 0, 0 },
    END };
static const struct arg_spec a_booking_move[] = {
    { "booking", ARG_ID, REQ, 0, 0 }, { "start", ARG_TIME, REQ, 0, 0 }, { "end", ARG_TIME, REQ, 0, 0 },
    { "override", ARG_BOOL, OPT, 0, 0 }, { "as_member", ARG_BOOL, OPT, 0, 0 }, END };
static const struct arg_spec a_booking_list[] = {
    { "machine", ARG_NAME, OPT, 0, 0 }, { "member", ARG_MEMBER, OPT, 0, 0 }, { "from", ARG_TIME, OPT, 0, 0 },
    { "to", ARG_TIME, OPT, 0, 0 }, { "all", ARG_BOOL, OPT, 0, 0 }, END };

/* ---- deliveries ---- */
static const struct arg_spec a_mail_list[] = {
    { "state", ARG_TEXT, OPT, 0, 8 }, { "member", ARG_MEMBER, OPT, 0, 0 },
    { "limit", ARG_INT, OPT, 1, 1000 }, END };
static const struct arg_spec a_mail_retry[] = { { "id", ARG_ID, REQ, 0, 0 }, END };
static const struct arg_spec a_mail_test[] = { { "to", ARG_TEXT, REQ, 0, 254 }, END };
static const struct arg_spec a_webhook[] = { { "name", ARG_NAME, REQ, 0, 0 }, END };

/* ---- billing ---- */
static const struct arg_spec a_statement[] = {
    { "period", ARG_PERIOD, REQ, 0, 0 }, { "member", ARG_MEMBER, OPT, 0, 0 }, END };
static const struct arg_spec a_period[] = { { "period", ARG_PERIOD, REQ, 0, 0 }, END };
static const struct arg_spec a_pass_add[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "kind", ARG_TEXT, REQ, 0, 7 },
    { "quantity", ARG_INT, REQ, 1, 1000000 }, { "target", ARG_TEXT, OPT, 0, 39 },
    { "valid_from", ARG_TIME, OPT, 0, 0 }, { "valid_until", ARG_TIME, OPT, 0, 0 },
    { "price_cents", ARG_INT, OPT, 0, MONEY_MAX }, END };
static const struct arg_spec a_plan_billing[] = {
    { "plan", ARG_NAME, REQ, 0, 0 }, { "monthly_days", ARG_INT, OPT, 0, 31 },
    { "day_rate_cents", ARG_INT, OPT, 0, MONEY_MAX }, { "allowance_order", ARG_TEXT, OPT, 0, 63 },
    { "visit_days", ARG_INT, OPT, 0, 31 }, END };
static const struct arg_spec a_rate_set[] = {
    { "plan", ARG_NAME, REQ, 0, 0 }, { "target", ARG_TEXT, REQ, 0, 39 },
    { "per_hour_cents", ARG_INT, OPT, 0, 10000000 }, { "block_minutes", ARG_INT, OPT, 1, 1440 },
    { "min_charge_cents", ARG_INT, OPT, 0, 10000000 }, { "free_minutes", ARG_INT, OPT, 0, 1440 },
    { "monthly_minutes", ARG_INT, OPT, 0, 44640 }, { "per_kwh_cents", ARG_INT, OPT, 0, 100000 },
    { "monthly_wh", ARG_INT, OPT, 0, 100000000 }, END };
static const struct arg_spec a_usage_correct[] = {
    { "seq", ARG_INT, REQ, 1, INT64_MAX }, { "amount_cents", ARG_INT, REQ, -MONEY_MAX, MONEY_MAX },
    { "note", ARG_TEXT, REQ, 0, NOTE_MAX }, END };
static const struct arg_spec a_usage_add[] = {
    { "member", ARG_MEMBER, REQ, 0, 0 }, { "at", ARG_TIME, REQ, 0, 0 }, END };

#define MEMBERS (ROLE_MEMBER | ROLE_TRAINER)
#define READERS_OF_USAGE (ROLE_CUSTODIAN | ROLES_STAFF)

const struct command command_table[] = {
    { "account.add", ROLES_STAFF, CMD_WEB, cmd_account_add, a_account_add,
      "add a web account (member, manager or custodian)" },
    { "account.disable", ROLES_STAFF, CMD_WEB, cmd_account_disable, a_account_name,
      "disable an account and end its sessions" },
    { "account.enable", ROLES_STAFF, CMD_WEB, cmd_account_enable, a_account_name,
      "enable a disabled account" },
    { "account.invite", ROLES_STAFF, CMD_WEB, cmd_account_invite, a_account_invite,
      "a one-time link to set the account's password" },
    { "account.language", MEMBERS | ROLE_CUSTODIAN | ROLES_STAFF, CMD_WEB, cmd_account_language,
      a_account_language, "the language of an account's pages: en, fr or auto (anyone: their own)" },
    { "account.list", ROLES_STAFF, CMD_WEB, cmd_account_list, no_args, "list web accounts" },
    { "account.passwd", ROLES_STAFF, 0, cmd_account_passwd, a_account_passwd,
      "set an account's password (an argon2id hash)" },
    { "account.show", ROLES_STAFF, CMD_WEB, cmd_account_show, a_account_name, "show an account" },
    { "account.token", ROLES_STAFF, CMD_WEB, cmd_account_token, a_account_token,
      "an API token for the account" },
    { "booking.add", MEMBERS | ROLES_STAFF, CMD_WEB, cmd_booking_add, a_booking_add,
      "book a machine (members: for themselves, within the rules)" },
    { "booking.cancel", MEMBERS | ROLES_STAFF, CMD_WEB, cmd_booking_cancel, a_booking_cancel,
      "cancel a booking" },
    { "booking.list", MEMBERS | ROLES_STAFF, CMD_WEB, cmd_booking_list, a_booking_list,
      "list bookings (members: their own)" },
    { "booking.move", MEMBERS | ROLES_STAFF, CMD_WEB, cmd_booking_move, a_booking_move,
      "move a booking" },
    { "card.add", ROLES_STAFF, CMD_WEB, cmd_card_add, a_card_add, "add a card by its UID" },
    { "card.deprovision", ROLES_STAFF, CMD_WEB, cmd_card_deprovision, a_card_deprovision,
      "remove the Portier DESFire applications from the next card at a reader, and the card" },
    { "card.disable", ROLES_STAFF, CMD_WEB, cmd_card_disable, a_card,
      "disable a card (lost, lent): it opens nothing until enabled" },
    { "card.enable", ROLES_STAFF, CMD_WEB, cmd_card_enable, a_card, "enable a disabled card" },
    { "card.enroll", ROLE_TRAINER | ROLES_STAFF, CMD_WEB, cmd_card_enroll, a_card_enroll,
      "bind the next card presented at a reader (trainers: at their machines' readers)" },
    { "card.list", ROLES_STAFF, CMD_WEB, cmd_card_list, a_member_opt, "list cards" },
    { "card.provision", ROLES_STAFF, CMD_WEB, cmd_card_provision, a_card_provision,
      "make the next card at a reader a member's DESFire card (keys diversified per card)" },
    { "card.remove", ROLES_STAFF, CMD_WEB, cmd_card_remove, a_card_remove, "remove a card" },
    { "card.report", ROLES_STAFF, CMD_WEB, cmd_card_report, no_args,
      "members whose cards still open by UID alone (the DESFire migration)" },
    { "door.lock", ROLES_STAFF, CMD_WEB | CMD_MQTT, cmd_door_lock, a_door,
      "lock a door now (ends a free-entry window's unlock too)" },
    { "door.unlock", ROLES_STAFF, CMD_WEB | CMD_MQTT, cmd_door_unlock, a_door_unlock,
      "unlock a door for a while" },
    { "events", ROLES_STAFF, CMD_WEB, cmd_events, a_events, "the access log" },
    { "kiosk.add", ROLES_STAFF, CMD_WEB, cmd_kiosk_add, a_kiosk_add,
      "a secret address for an entrance screen (shown once)" },
    { "kiosk.list", ROLES_STAFF, CMD_WEB, cmd_kiosk_list, no_args, "list entrance screens" },
    { "kiosk.remove", ROLES_STAFF, CMD_WEB, cmd_kiosk_remove, a_kiosk,
      "remove an entrance screen: its address stops working" },
    { "ledger.verify", READERS_OF_USAGE, CMD_WEB, cmd_ledger_verify, no_args,
      "verify the signed, hash-chained ledger" },
    { "machine.add", ROLES_STAFF, CMD_WEB, cmd_machine_add, a_machine_add,
      "add a machine and its booking rules" },
    { "machine.list", ROLES_ANY_ACCOUNT, CMD_WEB, cmd_machine_list, no_args, "list machines" },
    { "machine.out_of_order", ROLES_STAFF, CMD_WEB | CMD_MQTT, cmd_machine_out_of_order,
      a_machine_ooo, "set a machine out of order (power off now, or after the current session) "
      "or back in order" },
    { "machine.sessions", ROLES_STAFF, CMD_WEB, cmd_machine_sessions, a_since,
      "machine sessions since a time" },
    { "machine.set", ROLES_STAFF, CMD_WEB, cmd_machine_set, a_machine_set,
      "change a machine's booking rules" },
    { "machine.show", ROLES_STAFF, CMD_WEB, cmd_machine_show, a_machine,
      "a machine, its bookings and sessions" },
    { "mail.list", ROLES_STAFF, CMD_WEB, cmd_mail_list, a_mail_list,
      "e-mails and their delivery state, newest first" },
    { "mail.retry", ROLES_STAFF, CMD_WEB, cmd_mail_retry, a_mail_retry,
      "send a failed or waiting e-mail again now" },
    { "mail.test", ROLES_STAFF, CMD_WEB, cmd_mail_test, a_mail_test,
      "send a test e-mail and wait for the SMTP server's answer" },
    { "member.add", ROLES_STAFF, CMD_WEB, cmd_member_add, a_member_add, "add a member" },
    { "member.erase", ROLES_STAFF, CMD_WEB, cmd_member_erase, a_member_erase,
      "erase a member's personal data (right to erasure); billing keeps a pseudonym" },
    { "member.export", MEMBERS | ROLES_STAFF, CMD_WEB, cmd_member_export, a_member,
      "everything the site holds about a member, as JSON (members: their own)" },
    { "member.list", ROLES_STAFF, CMD_WEB, cmd_member_list, a_member_list,
      "list members: search, filter, a page at a time" },
    { "member.remove", ROLES_STAFF, CMD_WEB, cmd_member_remove, a_member,
      "remove a member: cards disabled, access ends, history kept" },
    { "member.renew", ROLES_STAFF, CMD_WEB | CMD_MQTT, cmd_member_renew, a_member_renew,
      "extend a membership to a date or by a duration" },
    { "member.resume", ROLES_STAFF, CMD_WEB, cmd_member_resume, a_member,
      "let a suspended member in again" },
    { "member.set", ROLES_STAFF, CMD_WEB, cmd_member_set, a_member_set,
      "change a member's name, e-mail, plan (now or from a date), validity or note" },
    { "member.show", ROLES_STAFF, CMD_WEB, cmd_member_show, a_member,
      "a member, their cards and their history" },
    { "member.suspend", ROLES_STAFF, CMD_WEB, cmd_member_suspend, a_member,
      "suspend a member: every door and machine refuses them" },
    { "pass.add", ROLES_STAFF, CMD_WEB, cmd_pass_add, a_pass_add,
      "sell a pass of days or machine minutes" },
    { "pass.list", MEMBERS | ROLES_STAFF, CMD_WEB, cmd_pass_list, a_member,
      "a member's passes (members: their own)" },
    { "period.close", ROLES_STAFF, CMD_WEB, cmd_period_close, a_period,
      "close a billing period: seal it and write its signed archive" },
    { "period.list", READERS_OF_USAGE, CMD_WEB, cmd_period_list, no_args, "closed periods" },
    { "plan.add", ROLES_STAFF, CMD_WEB, cmd_plan_add, a_plan_add, "add a plan" },
    { "plan.billing", ROLES_STAFF, CMD_WEB, cmd_plan_billing, a_plan_billing,
      "set a plan's allowance, day rate and order of use" },
    { "plan.list", ROLES_STAFF, CMD_WEB, cmd_plan_list, no_args, "list plans" },
    { "plan.show", ROLES_STAFF, CMD_WEB, cmd_plan_show, a_plan,
      "a plan: zones, hours, billing settings and rates" },
    { "presence.checkout", ROLES_STAFF, CMD_WEB, cmd_presence_checkout, a_member,
      "check a member out" },
    { "presence.list", ROLES_STAFF, CMD_WEB, cmd_presence_list, no_args, "who is in" },
    { "privacy.prune", ROLES_STAFF, CMD_WEB, cmd_privacy_prune, no_args,
      "delete now what is past its retention ([privacy]); answers when done" },
    { "rate.list", READERS_OF_USAGE, CMD_WEB, cmd_rate_list, no_args, "machine rates" },
    { "rate.set", ROLES_STAFF, CMD_WEB, cmd_rate_set, a_rate_set, "set a plan's machine rate" },
    { "reader.restart", ROLES_STAFF, CMD_WEB | CMD_MQTT, cmd_reader_restart, a_reader,
      "restart a reader's worker" },
    { "sim.advance", ROLE_SYSTEM, CMD_SIM_ONLY, cmd_sim_advance, a_sim_advance,
      "simulation: move the daemon's clock forward" },
    { "sim.press", ROLE_SYSTEM, 0, cmd_sim_press, a_sim_input,
      "simulation: make an input active" },
    { "sim.release", ROLE_SYSTEM, 0, cmd_sim_release, a_sim_input,
      "simulation: make an input inactive" },
    { "sim.remove", ROLE_SYSTEM, 0, cmd_sim_remove, a_reader,
      "simulation: take the card off a reader" },
    { "sim.tap", ROLE_SYSTEM, 0, cmd_sim_tap, a_sim_tap, "simulation: present a card" },
    { "site.key", READERS_OF_USAGE, CMD_WEB, cmd_site_key, no_args,
      "the site's public signing key" },
    { "statement", MEMBERS | READERS_OF_USAGE, CMD_WEB, cmd_statement, a_statement,
      "usage and amounts of a period (members: their own)" },
    { "status", ROLES_STAFF, CMD_WEB, cmd_status, no_args,
      "doors, readers, machines, storage, recent taps" },
    { "training.add", ROLES_STAFF, CMD_WEB, cmd_training_add, a_training_add, "add a training" },
    { "training.appoint", ROLES_STAFF, CMD_WEB, cmd_training_appoint, a_training_member,
      "name a member trainer for a training" },
    { "training.dismiss", ROLES_STAFF, CMD_WEB, cmd_training_dismiss, a_training_member,
      "end a member's trainer role for a training" },
    { "training.grant", ROLE_TRAINER | ROLES_STAFF, CMD_WEB, cmd_training_grant,
      a_training_grant, "grant a training (trainers: the trainings they are named for)" },
    { "training.list", ROLES_ANY_ACCOUNT, CMD_WEB, cmd_training_list, no_args,
      "trainings and their trainers" },
    { "training.revoke", ROLE_TRAINER | ROLES_STAFF, CMD_WEB, cmd_training_revoke,
      a_training_member, "revoke a training" },
    { "training.show", MEMBERS | ROLES_STAFF, CMD_WEB, cmd_training_show, a_member,
      "a member's trainings (members: their own)" },
    { "usage.add", ROLES_STAFF, CMD_WEB, cmd_usage_add, a_usage_add,
      "record a day someone used without badging" },
    { "usage.correct", ROLES_STAFF, CMD_WEB, cmd_usage_correct, a_usage_correct,
      "correct a usage record (a new ledger entry)" },
    { "webhook.list", ROLES_STAFF, CMD_WEB, cmd_webhook_list, no_args,
      "webhooks and their delivery state" },
    { "webhook.test", ROLES_STAFF, CMD_WEB, cmd_webhook_test, a_webhook,
      "POST a signed test event to a webhook and wait for its answer" },
};

const unsigned command_count = ARRAY_SIZE(command_table);
