/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* webhook.c: the body and signature receivers check (docs/webhooks.md); the receiving end
 * with a real HTTPS server is tests/integration/test_webhooks.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "webhook.h"

static void test_signature_vector(void **state)
{
    char sig[WEBHOOK_SIGNATURE_MAX];
    const char *body = "{\"a\":1}";

    /* Python: hmac.new(b"0123456789abcdef", b'1700000000.{"a":1}', hashlib.sha256) */
    webhook_sign("0123456789abcdef", 1700000000, body, strlen(body), sig);
    assert_string_equal(sig, "t=1700000000,v1=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a"
                             "7437c1cd8c3a23");
    webhook_sign("0123456789abcdeF", 1700000000, body, strlen(body), sig);
    assert_null(strstr(sig, "9eb18f49"));
}

static void test_body(void **state)
{
    char id[WEBHOOK_ID_MAX];
    char *text;
    json_t *o;

    webhook_event_id("9f2c4e1ab3d0", 1234, id, sizeof(id));
    assert_string_equal(id, "9f2c4e1ab3d0-1234");
    text = webhook_body("lyon", id, 1234, "tap", "{\"kind\":\"tap\",\"member_id\":12}");
    o = json_loads(text, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "id")), id);
    assert_string_equal(json_string_value(json_object_get(o, "site")), "lyon");
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "tap");
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 1234);
    assert_int_equal(json_integer_value(json_object_get(o, "v")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "member_id")), 12);
    json_decref(o);
    free(text);

    /* A row that does not parse still goes out, with what is known. */
    text = webhook_body("lyon", id, 1234, "door", "not json");
    o = json_loads(text, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "door");
    json_decref(o);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_vector),
        cmocka_unit_test(test_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
