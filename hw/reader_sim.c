/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* reader_sim: a reader fed by the control socket (`portierctl sim tap`), for the demo and
 * the tests. Cards go through reader_deliver() like a real reader's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"

struct sim_reader {
    bool holding;
    struct reader_event held;
};

static int sim_start(struct reader *r)
{
    r->priv = calloc(1, sizeof(struct sim_reader));
    return r->priv ? 0 : -ENOMEM;
}

static void sim_stop(struct reader *r)
{
    free(r->priv);
    r->priv = NULL;
}

const struct reader_ops reader_ops_sim = {
    .driver = "sim",
    .start = sim_start,
    .stop = sim_stop,
};

int reader_sim_remove(struct reader *r)
{
    struct sim_reader *s;
    struct reader_event ev;

    if (r->ops != &reader_ops_sim || !r->priv)
        return -EINVAL;
    s = r->priv;
    if (!s->holding)
        return 0;
    s->holding = false;
    ev = s->held;
    ev.kind = READER_CARD_LEFT;
    reader_deliver(r, &ev);
    return 0;
}

int reader_sim_present(struct reader *r, const uint8_t *uid, size_t uid_len, bool hold)
{
    struct sim_reader *s;
    struct reader_event ev = { .kind = READER_CARD_ARRIVED, .targets = 1 };

    if (r->ops != &reader_ops_sim || !r->priv)
        return -EINVAL;
    if (uid_len == 0 || uid_len > READER_UID_MAX)
        return -EINVAL;
    s = r->priv;
    reader_sim_remove(r);
    memcpy(ev.uid, uid, uid_len);
    ev.uid_len = (uint8_t)uid_len;
    ev.atqa = uid_len == 4 ? 0x0004 : 0x0044;
    ev.sak = uid_len == 4 ? 0x08 : 0x00;
    if (hold) {
        s->holding = true;
        s->held = ev;
    }
    reader_deliver(r, &ev);
    if (!hold) {
        ev.kind = READER_CARD_LEFT;
        reader_deliver(r, &ev);
    }
    return 0;
}
