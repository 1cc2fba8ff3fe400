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
    int ret;

    memset(r, 0, sizeof(*r));
    r->ops = ops;
    strlcpy_checked(r->name, name, sizeof(r->name));
    r->line = *line;
    ret = ops->open(r);
    if (ret < 0) {
        ops->close(r);
        return ret;
    }
    r->is_open = true;
    r->energised = false;
    return 0;
}

int relay_write(struct relay *r, bool energised)
{
    int ret;

    if (!r->is_open)
        return -EBADF;
    ret = r->ops->write(r, energised);
    if (ret < 0)
        return ret;
    r->energised = energised;
    r->writes++;
    r->last_write_usec = now_mono_usec();
    return 0;
}

void relay_close(struct relay *r)
{
    if (!r || !r->is_open)
        return;
    r->ops->close(r);
    r->is_open = false;
    r->energised = false;
}
