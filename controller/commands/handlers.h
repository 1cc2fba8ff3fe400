/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* handlers: every command handler, for the table (table.c). Each is defined in its domain's
 * *_commands.c (or status.c); see command.h for the contract. */
#pragma once
#include "command.h"

struct reader;

/* The reader the "reader" argument names, in *ret; else the call fails with not_found.
 * Shared by the commands that act at a reader (door_commands.c). */
int cmd_reader_arg(struct cmd_call *call, const struct cmd_args *args, struct reader **ret);

int cmd_account_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_account_disable(struct cmd_call *call, const struct cmd_args *args);
int cmd_account_enable(struct cmd_call *call, const struct cmd_args *args);
int cmd_account_invite(struct cmd_call *call, const struct cmd_args *args);
int cmd_account_language(struct cmd_call *call, const struct cmd_args *args);
int cmd_account_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_account_passwd(struct cmd_call *call, const struct cmd_args *args);
int cmd_account_show(struct cmd_call *call, const struct cmd_args *args);
int cmd_account_token(struct cmd_call *call, const struct cmd_args *args);
int cmd_booking_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_booking_cancel(struct cmd_call *call, const struct cmd_args *args);
int cmd_booking_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_booking_move(struct cmd_call *call, const struct cmd_args *args);
int cmd_card_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_card_deprovision(struct cmd_call *call, const struct cmd_args *args);
int cmd_card_disable(struct cmd_call *call, const struct cmd_args *args);
int cmd_card_enable(struct cmd_call *call, const struct cmd_args *args);
int cmd_card_provision(struct cmd_call *call, const struct cmd_args *args);
int cmd_card_report(struct cmd_call *call, const struct cmd_args *args);
int cmd_card_enroll(struct cmd_call *call, const struct cmd_args *args);
int cmd_card_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_card_remove(struct cmd_call *call, const struct cmd_args *args);
int cmd_door_lock(struct cmd_call *call, const struct cmd_args *args);
int cmd_door_unlock(struct cmd_call *call, const struct cmd_args *args);
int cmd_events(struct cmd_call *call, const struct cmd_args *args);
int cmd_kiosk_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_kiosk_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_kiosk_remove(struct cmd_call *call, const struct cmd_args *args);
int cmd_ledger_verify(struct cmd_call *call, const struct cmd_args *args);
int cmd_machine_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_machine_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_machine_out_of_order(struct cmd_call *call, const struct cmd_args *args);
int cmd_machine_sessions(struct cmd_call *call, const struct cmd_args *args);
int cmd_machine_set(struct cmd_call *call, const struct cmd_args *args);
int cmd_machine_show(struct cmd_call *call, const struct cmd_args *args);
int cmd_mail_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_mail_retry(struct cmd_call *call, const struct cmd_args *args);
int cmd_mail_test(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_erase(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_export(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_remove(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_renew(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_resume(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_set(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_show(struct cmd_call *call, const struct cmd_args *args);
int cmd_member_suspend(struct cmd_call *call, const struct cmd_args *args);
int cmd_pass_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_pass_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_period_close(struct cmd_call *call, const struct cmd_args *args);
int cmd_period_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_plan_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_plan_billing(struct cmd_call *call, const struct cmd_args *args);
int cmd_plan_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_plan_show(struct cmd_call *call, const struct cmd_args *args);
int cmd_presence_checkout(struct cmd_call *call, const struct cmd_args *args);
int cmd_presence_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_privacy_prune(struct cmd_call *call, const struct cmd_args *args);
int cmd_rate_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_rate_set(struct cmd_call *call, const struct cmd_args *args);
int cmd_reader_restart(struct cmd_call *call, const struct cmd_args *args);
int cmd_sim_advance(struct cmd_call *call, const struct cmd_args *args);
int cmd_sim_press(struct cmd_call *call, const struct cmd_args *args);
int cmd_sim_release(struct cmd_call *call, const struct cmd_args *args);
int cmd_sim_remove(struct cmd_call *call, const struct cmd_args *args);
int cmd_sim_tap(struct cmd_call *call, const struct cmd_args *args);
int cmd_site_key(struct cmd_call *call, const struct cmd_args *args);
int cmd_statement(struct cmd_call *call, const struct cmd_args *args);
int cmd_status(struct cmd_call *call, const struct cmd_args *args);
int cmd_training_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_training_appoint(struct cmd_call *call, const struct cmd_args *args);
int cmd_training_dismiss(struct cmd_call *call, const struct cmd_args *args);
int cmd_training_grant(struct cmd_call *call, const struct cmd_args *args);
int cmd_training_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_training_revoke(struct cmd_call *call, const struct cmd_args *args);
int cmd_training_show(struct cmd_call *call, const struct cmd_args *args);
int cmd_usage_add(struct cmd_call *call, const struct cmd_args *args);
int cmd_usage_correct(struct cmd_call *call, const struct cmd_args *args);
int cmd_webhook_list(struct cmd_call *call, const struct cmd_args *args);
int cmd_webhook_test(struct cmd_call *call, const struct cmd_args *args);
