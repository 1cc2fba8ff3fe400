/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fablab: machines with power interlocks, trainings and bookings, wired to the daemon.
 *
 * Owns one struct machine per [machine NAME] section. A card at a machine's reader is
 * decided by policy_decide_machine() from the store's facts (qualification, bookings,
 * opening hours) and acted on by the machine's state machine; every booking change from
 * any client goes through fablab_booking_create()/..._cancel(), which enforce the rules. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "access.h"
#include "config.h"
#include "door.h"
#include "i18n.h"
#include "machine.h"
#include "store.h"

struct fablab;
struct mqtt;

struct meter;
/* meter receives every closed session (may be NULL in tests). */
int fablab_new(sd_event *loop, struct store *store, struct access_engine *engine,
               struct meter *meter, const struct config *cfg, const struct door_hw *hw,
               struct fablab **ret);
/* Power off every machine (closing sessions as "stopped") and release the lines. */
struct fablab *fablab_free(struct fablab *f);
void fablab_reconfigure(struct fablab *f, const struct config *cfg);

/* The card of ev arrived at reader: true if a machine uses this reader (the tap was
 * handled). ev->targets: cards that answered the reader (this one was selected first), as
 * for access_handle_tap(); the access log's entry says so when more than one did. What the
 * card proved (ev->auth) is weighed against the machine's card_security, also for the tap
 * that ends a session. */
bool fablab_reader_tap(struct fablab *f, const char *reader, const struct reader_event *ev);
/* Called after every machine state change (for MQTT state topics). */
void fablab_on_change(struct fablab *f, void (*fn)(struct machine *m, void *userdata),
                      void *userdata);
/* Call the change listener for every machine (initial state). */
void fablab_publish_all(struct fablab *f);
/* Talk to the machines' network relays and meters through mqtt (after mqtt_new; NULL before
 * mqtt_free). A no-op without network devices. */
void fablab_set_mqtt(struct fablab *f, struct mqtt *mqtt);
/* Whether the configuration has network devices (they need MQTT). */
bool fablab_has_network_devices(const struct fablab *f);

/* Set a machine out of order or back in order. -ENOENT if unknown. Out of order refuses
 * new sessions and bookings at once; a powered machine stops now, or with after_session
 * finishes the session under way (its member may finish it, nobody may extend or take it
 * over) and *ret_finishing says so. */
int fablab_set_out_of_order(struct fablab *f, const char *machine, bool on, bool after_session,
                            const char *reason, const char *by, bool *ret_finishing);

/* What the last machine tap did, for `portierctl sim tap`. */
struct fablab_tap {
    uint64_t seq;               /* increments with every machine tap */
    char machine[32];
    int64_t member_id;
    bool granted;
    const char *outcome;        /* "on", "takeover", "finished", "extended", "off", reason id */
    uint32_t latency_us;
    /* A network relay: tap to the device's confirmation of power on, for the tap of
     * sequence number confirm_seq (0: none confirmed yet). */
    uint32_t confirm_us;
    uint64_t confirm_seq;
};
const struct fablab_tap *fablab_last_tap(const struct fablab *f);

/* Once a minute: record that open sessions are still alive (for crash recovery). */
void fablab_minute(struct fablab *f);
/* The daemon's clock was advanced (simulation): re-arm machine deadlines. */
void fablab_clock_changed(struct fablab *f);
/* Machines for `status`. */
json_t *fablab_status(struct fablab *f);
struct input *fablab_input_by_name(struct fablab *f, const char *name);

/* Every rule a booking [start, end) of member on res must meet (replacing exclude_id when
 * moving); now_for_rules is "now" for the rules (an extension starts at the end of a
 * grace period). hide_names: the answer goes to a member, so it names no other member;
 * lang: the language of its message. (planner.h asks the same of many slots at once.) */
struct booking_verdict fablab_check_booking(struct fablab *f, const struct store_resource *res,
                                            int64_t member_id, int64_t start, int64_t end,
                                            int64_t exclude_id, int64_t now_for_rules,
                                            bool hide_names, enum lang lang);
/* Whether a booking of res starting at start may still be cancelled or moved at now. */
bool fablab_cancel_allowed(const struct store_resource *res, int64_t start, int64_t now);
/* A machine and its rules and live state, as `machine show` gives it. */
json_t *fablab_machine_json(struct fablab *f, const struct store_resource *res);
/* ---- trainings: one set of rules for the command, the web and the machine's reader ----
 *
 * A trainer (a member named trainer for the training) grants and revokes it only if: the
 * member is not themselves, they are named trainer for it, their own grant of it is valid
 * (not expired, not revoked), and, to grant, the member is active (not suspended, within
 * their validity). Staff (managers, the system) are bound by none of these. */
struct fablab_refusal {
    int error;                  /* -errno */
    const char *code;           /* "forbidden", "trainer_training_lapsed", "member_inactive",
                                   "not_found", "store" */
    char message[160];
};
/* trainer_id: the trainer acting, 0 for staff. 0, or -errno with *ret filled. */
int fablab_trainer_may(struct store *store, int64_t training_id, const char *training,
                       int64_t trainer_id, int64_t member_id, int64_t now,
                       struct fablab_refusal *ret);
/* Grant (or renew: *ret_renewed) training to member, recorded as by. 0 and *ret_id, or -errno
 * with *ret filled. */
int fablab_training_grant(struct store *store, int64_t training_id, const char *training,
                          int64_t trainer_id, int64_t member_id, const char *by,
                          int64_t expires_at, int64_t now, int64_t *ret_id, bool *ret_renewed,
                          struct fablab_refusal *ret);

/* The machine whose reader this is, or NULL. */
const char *fablab_machine_of_reader(struct fablab *f, const char *reader);
