/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* routes: the one table of the web page's routes — which page answers which method and
 * path. A route is an exact path or a prefix ending in '/' (the handler gets the rest).
 * The JSON API (api.c) and the feeds (feeds.c) keep their own tables; login, logout and the
 * first password are answered by http.c before this table. */
#include <string.h>

#include "http_internal.h"

struct web_route {
    bool post;
    const char *path;               /* exact, or a prefix when it ends in '/' */
    void (*handler)(struct http_req *rq, const char *rest);
};

static const struct web_route routes[] = {
    /* what anyone sees (pages_public.c) */
    { false, "/", page_home },
    { false, "/bookings", page_week },
    /* a machine's slots, booking and cancelling (pages_booking.c) */
    { false, "/machines/", page_machine },
    { true, "/bookings", post_booking },
    { true, "/bookings/", post_booking_change },       /* ID/cancel */
    /* a person's own pages (pages_me.c) */
    { false, "/login", page_login },
    { false, "/welcome/", page_welcome },
    { false, "/me", page_me },
    { true, "/me/calendar", post_me_calendar },
    { true, "/me/language", post_me_language },
    /* managers' tasks (pages_manage.c) */
    { false, "/manage", page_manage },
    { false, "/manage/", page_manage },                /* TASK */
    { true, "/manage/", post_manage },                 /* ACTION */
    /* usage and the ledger (pages_reports.c) */
    { false, "/usage", page_usage },
    { false, "/usage.csv", page_usage_csv },
    { false, "/ledger", page_ledger },
    { false, "/ledger/archive/", page_archive },
    /* entrance screens (kiosk.c) */
    { false, "/kiosk/", page_kiosk },                  /* TOKEN, TOKEN/events */
};

bool web_pages_route(struct http_req *rq, const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct web_route *r = &routes[i];
        size_t n = strlen(r->path);

        if (r->post != rq->is_post)
            continue;
        if (n > 1 && r->path[n - 1] == '/') {
            if (strncmp(path, r->path, n) != 0 || !path[n])
                continue;
            r->handler(rq, path + n);
            return true;
        }
        if (strcmp(path, r->path) == 0) {
            r->handler(rq, "");
            return true;
        }
    }
    return false;
}
