/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "jfield.h"

const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

json_int_t jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}
