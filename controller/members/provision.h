/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* provision: making a member's card a Portier DESFire card at a reader, and undoing it.
 *
 * Provisioning creates the site's application on the card (and the consortium's, when the
 * site holds the consortium key), sets its keys diversified from the master key, then
 * enrols the card by its real UID, marked DESFire: from then on, wherever a door does not
 * accept UIDs alone, it must prove its key. The reader's worker does the card work
 * (desfire.h); it needs the card's PICC master key only to create the applications: the
 * factory default, or a key the manager gives. Nothing else on the card is touched: no
 * format, no other application. A card taken away halfway is finished by running the
 * command again: each step first checks whether it is done.
 *
 * Deprovisioning removes the Portier applications (with their own master key) and the
 * card's enrolment.
 *
 * One job waits at a time, at one reader, for at most PROVISION_MAX_SECONDS; the card that
 * arrives meanwhile opens nothing. The result reaches the caller through the command call
 * (CMD_PENDING), never naming the card's UID. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "reader.h"

#define PROVISION_DEFAULT_SECONDS 60
#define PROVISION_MAX_SECONDS 600

struct services;
struct cmd_call;
struct provision;

struct provision_request {
    bool deprovision;
    int64_t member;                     /* provision: whose card it becomes */
    const char *label;                  /* provision: NULL or the card's label */
    enum reader_picc_key picc_type;
    uint8_t picc_key[READER_KEY_LEN];
    int64_t seconds;
};

int provision_new(struct services *svc, struct provision **ret);
/* Cancels a waiting job (its caller hears "cancelled"). NULL-safe. */
struct provision *provision_free(struct provision *p);

/* Run req at reader; finishes call when the reader's worker is done, the time is up or the
 * caller goes away. Returns CMD_PENDING, or the error the call was failed with: another job
 * waits, the reader is simulated, not up, or holds no master key. */
int provision_start(struct provision *p, struct cmd_call *call, struct reader *reader,
                    const struct provision_request *req);

/* Parse a PICC key as the command takes it: "default" (factory: DES, all zeros),
 * "des:HEX16", "2k3des:HEX32" or "aes:HEX32". 0 or -EINVAL. */
int provision_parse_picc_key(const char *text, enum reader_picc_key *ret_type,
                             uint8_t ret_key[READER_KEY_LEN]);
