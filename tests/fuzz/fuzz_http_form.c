/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_http_form: http_parse_form() on arbitrary bytes.
 *
 * Form bodies come from anyone who can reach the web page. A parse either fails with a
 * reason, or yields an object that keeps the promises of http_internal.h: at most
 * HTTP_FORM_FIELDS_MAX fields, names of 1 to 64 bytes, string values (so valid UTF-8: the
 * pages and the controller can use them as they are). A body without '%' or '+' decodes to
 * itself: every "name=value" pair is found again. */
#include <jansson.h>
#include <stdbool.h>

#include "fuzz.h"
#include "http_internal.h"

#define FUZZ_FORM_MAX (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body, *copy;
    const char *why = NULL, *key;
    json_t *form, *value;
    bool plain;

    if (size > FUZZ_FORM_MAX)
        return 0;
    body = malloc(size + 1);
    copy = malloc(size + 1);
    if (!body || !copy)
        abort();
    memcpy(body, data, size);
    memcpy(copy, data, size);
    body[size] = copy[size] = '\0';
    plain = !memchr(data, '%', size) && !memchr(data, '+', size);

    form = http_parse_form(body, size, &why);
    if (!form) {
        FUZZ_CHECK_MSG(why && *why, "a refused form says why");
    } else {
        FUZZ_CHECK(json_is_object(form));
        FUZZ_CHECK(json_object_size(form) <= HTTP_FORM_FIELDS_MAX);
        json_object_foreach(form, key, value) {
            FUZZ_CHECK(strlen(key) >= 1 && strlen(key) <= 64);
            FUZZ_CHECK(json_is_string(value));
        }
        if (plain && !memchr(data, '\0', size)) {
            /* Each pair of the original text is in the object. */
            for (char *pair = strtok(copy, "&"); pair; pair = strtok(NULL, "&")) {
                char *eq = strchr(pair, '=');
                if (eq)
                    *eq = '\0';
                value = json_object_get(form, pair);
                FUZZ_CHECK_MSG(json_is_string(value), "a plain field was lost");
                FUZZ_CHECK_MSG(strcmp(json_string_value(value), eq ? eq + 1 : "") == 0,
                               "a plain value changed");
            }
        }
        json_decref(form);
    }
    free(body);
    free(copy);
    return 0;
}
