/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* priorities: the order in which the event loop serves what is ready at once (lower first).
 * Doors come first: readers, inputs and timers run at the default 0; then the store's
 * commit, so that a burst of taps costs one commit; then the answers to people and
 * programs (portierctl, the web page), level with each other so neither starves the other;
 * then the outcomes of e-mails and webhooks sent by the delivery thread; last, background
 * work that yields after each small step. */
#pragma once

#define PRIORITY_COMMIT 10
#define PRIORITY_REPLIES 20
#define PRIORITY_DELIVERY 30
/* Background work in small steps (retention, erasure): only when nothing else is ready. */
#define PRIORITY_IDLE 100
