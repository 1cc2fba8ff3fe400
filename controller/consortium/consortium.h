/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* consortium: the site's side of the consortium — its signed ledger sent to the custodian.
 *
 * Ledger transport: while MQTT is connected, entries are published in batches
 * (ledger_batch.h) on PREFIX/SITE/ledger/batch at QoS 1, from the custodian's last
 * acknowledged entry + 1, one batch in flight at a time and at most window_entries beyond
 * the acknowledgement. The custodian answers with a retained message on
 * PREFIX/SITE/ledger/ack ({"v":1,"site":S,"seq":N,"hash":HEX}: entries 1..N verified and
 * stored); the site persists N and resumes from it after any outage or restart. A request
 * on PREFIX/SITE/ledger/resend ({"v":1,"from":F,"to":T}) is answered from the ledger.
 *
 * The ledger is the durable queue: nothing goes through the event outbox. Batches are
 * built on an idle-priority event source, one per loop iteration, so a tap waiting on the
 * loop always comes first. What the site trusts from the custodian is only where to resume:
 * a wrong acknowledgement can cause resends or a pause, never a lost entry, because the
 * custodian itself detects gaps and asks again. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "meter.h"
#include "mqtt.h"
#include "store.h"

struct consortium;

/* Borrowed: loop, store, meter (the signing key), mqtt, cfg; they must outlive c (cfg: or
 * be replaced by consortium_reconfigure() first). */
int consortium_new(sd_event *loop, struct store *store, struct meter *meter, struct mqtt *mqtt,
                   const struct config *cfg, struct consortium **ret);
/* A reload: use cfg from now on, passports included (its [consortium], [mqtt] and site id
 * are the old one's; the old config may be freed once this returns). NULL-safe. */
void consortium_reconfigure(struct consortium *c, const struct config *cfg);
/* Detach from MQTT and free. NULL-safe. */
struct consortium *consortium_free(struct consortium *c);
/* New ledger entries were committed: send them when the window allows. NULL-safe. */
void consortium_kick(struct consortium *c);

/* Publish, retained, the seal (period_seal.h) of every closed period on
 * PREFIX/SITE/ledger/period/YYYY-MM. Done at every connection, and after `period close`.
 * Periods closed before their archive's hash was kept are skipped (logged). NULL-safe. */
void consortium_publish_seals(struct consortium *c);

/* The passports part (passports.h), or NULL when off (or c is NULL). Owned by c. */
struct passports *consortium_passports(struct consortium *c);

struct consortium_stats {
    int64_t acked_seq;          /* the custodian's last acknowledgement */
    int64_t sent_up_to;         /* highest entry sent since the last (re)connection */
    int64_t head_seq;           /* newest ledger entry */
    uint64_t batches_sent, resends_answered, acks_refused;
};
void consortium_get_stats(struct consortium *c, struct consortium_stats *ret);
