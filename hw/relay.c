/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "relay.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

int line_spec_parse(const char *text, const char *default_chip, struct line_spec *ret)
{
    struct line_spec spec = { .set = true };
    const char *colon = strrchr(text, ':');
    const char *num = colon ? colon + 1 : text;
    int64_t offset;

    if (colon) {
        size_t n = (size_t)(colon - text);
        if (n == 0 || n >= sizeof(spec.chip))
            return -EINVAL;
        memcpy(spec.chip, text, n);
        spec.chip[n] = '\0';
    } else if (strlcpy_checked(spec.chip, default_chip, sizeof(spec.chip)) < 0) {
        return -EINVAL;
    }
    if (parse_int64(num, 0, 511, &offset) < 0)
        return -EINVAL;
    spec.offset = (unsigned)offset;
    *ret = spec;
    return 0;
}

bool line_spec_equal(const struct line_spec *a, const struct line_spec *b)
{
    return a->set == b->set && a->offset == b->offset && strcmp(a->chip, b->chip) == 0 &&
           a->active_low == b->active_low;
}

int relay_open(struct relay *r, const struct relay_ops *ops, const char *name,
               const struct line_spec *line)
{
    return relay_open_backend(r, ops, name, line, NULL);
}

int relay_open_backend(struct relay *r, const struct relay_ops *ops, const char *name,
                       const struct line_spec *line, void *backend_arg)
{
    static const struct line_spec none;
    int ret;

    memset(r, 0, sizeof(*r));
    r->ops = ops;
    strlcpy_checked(r->name, name, sizeof(r->name));
    r->line = line ? *line : none;
    r->priv = backend_arg;
    ret = ops->open(r);
    if (ret < 0) {
        ops->close(r);
        return ret;
    }
    r->is_open = true;
    r->energised = false;
    if (ops->asynchronous) {
        /* Its state is unknown: ask for off, which the device's answer confirms. */
        r->requested = false;
        r->pending = true;
        r->requested_usec = now_mono_usec();
        (void)ops->write(r, false);
    }
    return 0;
}

int relay_write(struct relay *r, bool energised)
{
    int ret;

    if (!r->is_open)
        return -EBADF;
    if (r->ops->asynchronous && r->requested == energised && r->energised == energised &&
        !r->pending && !r->fault)
        return 0;       /* confirmed already: nothing to ask */
    ret = r->ops->write(r, energised);
    if (ret < 0)
        return ret;
    r->writes++;
    r->last_write_usec = now_mono_usec();
    r->requested = energised;
    if (r->ops->asynchronous) {
        r->pending = true;
        r->requested_usec = r->last_write_usec;
    } else {
        r->energised = energised;
    }
    return 0;
}

bool relay_is_asynchronous(const struct relay *r)
{
    return r->ops && r->ops->asynchronous;
}

static void tell(struct relay *r, enum relay_news news)
{
    if (r->notify)
        r->notify(r, news, r->notify_userdata);
}

void relay_report_state(struct relay *r, bool energised)
{
    if (!r->is_open)
        return;
    r->energised = energised;
    if (energised == r->requested) {
        if (r->pending || r->fault) {
            r->pending = false;
            r->fault = false;
            r->confirm_usec = now_mono_usec() - r->requested_usec;
            tell(r, RELAY_CONFIRMED);
        }
        return;
    }
    if (r->pending)
        return;     /* a report from before our request took effect: wait for the next */
    /* Changed behind our back (its button, a reboot): ask again for the requested state. */
    tell(r, RELAY_DIVERGED);
    if (r->ops->write(r, r->requested) == 0) {
        r->pending = true;
        r->requested_usec = now_mono_usec();
        r->writes++;
    }
}

void relay_report_overdue(struct relay *r)
{
    if (!r->is_open || !r->pending)
        return;
    if (!r->fault) {
        r->fault = true;
        r->faults++;
        tell(r, RELAY_FAULT);
    }
    (void)r->ops->write(r, r->requested);     /* and again, until it answers */
}

void relay_report_online(struct relay *r, bool online)
{
    if (!r->is_open || r->offline == !online)
        return;
    r->offline = !online;
    tell(r, online ? RELAY_ONLINE : RELAY_OFFLINE);
    /* Back: its state is unknown until it answers, so ask for ours again (reconcile). */
    if (online && r->ops->write(r, r->requested) == 0) {
        r->pending = true;
        r->requested_usec = now_mono_usec();
        r->writes++;
    }
}

void relay_close(struct relay *r)
{
    if (!r || !r->is_open)
        return;
    r->ops->close(r);
    r->is_open = false;
    r->energised = false;
    r->requested = false;
    r->pending = false;
    r->notify = NULL;
}
