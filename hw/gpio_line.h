/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* gpio_line: where a relay or input is wired — a GPIO chip and a line offset. */
#pragma once
#include <stdbool.h>

#define GPIO_CHIP_NAME_MAX 32

struct line_spec {
    bool set;                           /* false: not wired (optional inputs) */
    char chip[GPIO_CHIP_NAME_MAX];      /* "gpiochip0", a /dev path, a label or a number */
    unsigned offset;                    /* line offset on the chip */
    bool active_low;
};

/* Parse "[CHIP:]OFFSET" ("17", "gpiochip0:17", "pinctrl-bcm2711:17"); the chip defaults to
 * default_chip. active_low is left false. 0 or -EINVAL. */
int line_spec_parse(const char *text, const char *default_chip, struct line_spec *ret);

bool line_spec_equal(const struct line_spec *a, const struct line_spec *b);
