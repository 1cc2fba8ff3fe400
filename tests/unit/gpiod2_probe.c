/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* gpiod2_probe: links the libgpiod 2 back-end (hw/gpio_gpiod2.c) against the real
 * libgpiod.so.3 of a Debian trixie sysroot and runs its error paths under qemu
 * (tools/cross --suite trixie --gpiod2-check). No GPIO chip exists there: opening a relay
 * by path, number, name or label must fail cleanly with -ENOENT, not crash or succeed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gpio_backend.h"

int input_watch_fd(struct input *in, int fd, input_drain_fn drain)
{
    (void)in, (void)fd, (void)drain;
    return 0;
}

int main(void)
{
    static const char *const chips[] = { "/dev/gpiochip-absent", "97", "gpiochip97",
                                         "no-such-label" };
    int failures = 0;

    for (size_t i = 0; i < sizeof(chips) / sizeof(chips[0]); i++) {
        struct relay r = { .ops = &relay_ops_gpiod, .name = "probe.relay" };
        int ret;

        snprintf(r.line.chip, sizeof(r.line.chip), "%s", chips[i]);
        r.line.set = true;
        r.line.offset = 5;
        ret = relay_ops_gpiod.open(&r);
        relay_ops_gpiod.close(&r);
        printf("relay on chip '%s': %s\n", chips[i], ret < 0 ? strerror(-ret) : "opened?!");
        if (ret != -ENOENT)
            failures++;
    }
    return failures ? 1 : 0;
}
