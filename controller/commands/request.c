#include "request.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "util.h"

const char *req_str(json_t *req, const char *key)
{
    json_t *v = json_object_get(req, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool req_member(struct store *s, struct control_conn *c, json_t *req, const char *key,
                int64_t *ret_id)
{
    const char *ref = req_str(req, key);
    int r;

    if (!ref) {
        control_reply_error(c, "bad_request", "missing \"%s\" (a member id or exact name)", key);
        return false;
    }
    r = store_member_resolve(s, ref, ret_id);
    if (r == -ENOENT)
        control_reply_error(c, "not_found", "no member '%.64s'", ref);
    else if (r == -ENOTUNIQ)
        control_reply_error(c, "ambiguous", "several members are named '%.64s'; use the id", ref);
    else if (r < 0)
        control_reply_error(c, "store", "cannot look up member: %s", strerror(-r));
    return r == 0;
}

bool req_time(struct control_conn *c, json_t *req, const char *key, bool required, int64_t *ret)
{
    json_t *v = json_object_get(req, key);

    *ret = 0;
    if ((!v || json_is_null(v)) && !required)
        return true;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *ret = json_integer_value(v);
        return true;
    }
    if (json_is_string(v) && parse_time(json_string_value(v), ret) == 0)
        return true;
    control_reply_error(c, "bad_request", "%s must be a time (YYYY-MM-DD[THH:MM], local) or epoch",
                        key);
    return false;
}

bool req_int(struct control_conn *c, json_t *req, const char *key, int64_t min, int64_t max,
             bool required, int64_t *ret)
{
    json_t *v = json_object_get(req, key);

    if (!v && !required)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        control_reply_error(c, "bad_request", "%s must be a whole number from %" PRId64 " to %" PRId64,
                            key, min, max);
        return false;
    }
    *ret = json_integer_value(v);
    return true;
}
