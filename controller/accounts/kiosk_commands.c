/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The commands of entrance screens (kiosks): a manager creates a secret address for a
 * screen by the door, lists the screens and removes one. The address's token is shown once;
 * the store keeps only its hash. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "accounts.h"
#include "handlers.h"
#include "log.h"
#include "services.h"
#include "store.h"
#include "util.h"

int cmd_kiosk_add(struct cmd_call *call, const struct cmd_args *a)
{
    const char *label = arg_str(a, "label");
    char text[STORE_TOKEN_TEXT_MAX + 1], path[80];
    uint8_t hash[STORE_HASH_LEN];
    int64_t id;
    int r;

    if (!label || !*label)
        return cmd_fail(call, -EINVAL, "bad_request", "give the screen a label (\"label\"), "
                        "e.g. where it hangs");
    account_token_new(text, hash);
    r = store_kiosk_add(cmd_services(call)->store, label, hash, cmd_who(call), &id);
    if (r < 0) {
        sodium_memzero(text, sizeof(text));
        return cmd_fail(call, r, "store", "cannot store the screen: %s", strerror(-r));
    }
    log_info("entrance screen %" PRId64 " (%s) created by %s", id, label, cmd_who(call));
    snprintf(path, sizeof(path), "/kiosk/%s", text);
    cmd_ok(call, json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "label", label, "token",
                           text, "path", path));
    sodium_memzero(text, sizeof(text));
    sodium_memzero(path, sizeof(path));
    return 0;
}

static int kiosk_append(const struct store_kiosk *k, void *userdata)
{
    json_t *o = json_pack("{s:I, s:s, s:I, s:s}", "id", (json_int_t)k->id, "label", k->label,
                          "created_at", (json_int_t)k->created_at, "created_by", k->created_by);
    return json_array_append_new(userdata, o) == 0 ? 0 : -ENOMEM;
}

int cmd_kiosk_list(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "kiosks", list,
                       store_kiosks_foreach(cmd_services(call)->store, kiosk_append, list));
}

int cmd_kiosk_remove(struct cmd_call *call, const struct cmd_args *a)
{
    int64_t id = arg_int(a, "kiosk", 0);
    int r = store_kiosk_remove(cmd_services(call)->store, id, now_utc());

    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "no entrance screen %" PRId64, id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot remove the screen: %s", strerror(-r));
    log_info("entrance screen %" PRId64 " removed by %s", id, cmd_who(call));
    services_news(cmd_services(call), NEWS_KIOSKS);     /* its stream, if open, ends */
    return cmd_ok(call, json_pack("{s:I}", "kiosk", (json_int_t)id));
}
