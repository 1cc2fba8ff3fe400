/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "opendata_web.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define PERIODS_MAX 1200                    /* a century of months */
#define PACKAGE_MAX (1024 * 1024)           /* datapackage.json read for the index */
#define FILE_MAX (64 * 1024 * 1024)

static const char *const text_plain = "text/plain; charset=utf-8";

static bool is_period(const char *s)
{
    char first[11], last[11];
    return strlen(s) == 7 && s[4] == '-' && period_days(s, first, last) == 0;
}

/* A file name we serve: [A-Za-z0-9_][A-Za-z0-9_.-]*, not a generation's temporary file. */
static bool is_file_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
                              (s[0] >= '0' && s[0] <= '9') || s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return !(n > 4 && strcmp(s + n - 4, ".tmp") == 0);
}

static void etag_of(const char *buf, size_t len, char out[72])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    char hex[2 * sizeof(h) + 1];

    crypto_hash_sha256(h, (const uint8_t *)buf, len);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(out, 72, "\"%.32s\"", hex);
}

/* Markup and XML: every value written through esc(). */
static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* ---- the periods ---- */

struct period {
    char name[8];
    int64_t mtime;              /* of its datapackage.json */
    json_t *package;            /* NULL if unreadable */
};

static int by_period_desc(const void *a, const void *b)
{
    return strcmp(((const struct period *)b)->name, ((const struct period *)a)->name);
}

static json_t *load_package(int dirfd, int64_t *mtime)
{
    struct stat st;
    json_t *o = NULL;
    char *buf;
    int fd = openat(dirfd, "datapackage.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > PACKAGE_MAX) {
        close(fd);
        return NULL;
    }
    *mtime = st.st_mtime;
    buf = malloc((size_t)st.st_size + 1);
    if (buf && (n = read(fd, buf, (size_t)st.st_size)) == st.st_size)
        o = json_loadb(buf, (size_t)n, 0, NULL);
    free(buf);
    close(fd);
    return json_is_object(o) ? o : (json_decref(o), NULL);
}

/* The periods under root that hold a datapackage.json, newest first. */
static size_t list_periods(const char *root, struct period **ret)
{
    struct period *list = calloc(PERIODS_MAX, sizeof(*list));
    DIR *d = opendir(root);
    struct dirent *de;
    size_t n = 0;

    *ret = list;
    if (!list || !d) {
        if (d)
            closedir(d);
        return 0;
    }
    while ((de = readdir(d)) && n < PERIODS_MAX) {
        int fd;
        if (!is_period(de->d_name))
            continue;
        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        list[n].package = load_package(fd, &list[n].mtime);
        close(fd);
        if (!list[n].package)
            continue;
        memcpy(list[n].name, de->d_name, 8);      /* is_period(): 7 characters and a NUL */
        n++;
    }
    closedir(d);
    qsort(list, n, sizeof(*list), by_period_desc);
    return n;
}

static void free_periods(struct period *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(list[i].package);
    free(list);
}

static const char *pkg_str(json_t *pkg, const char *key)
{
    const char *s = json_string_value(json_object_get(pkg, key));
    return s ? s : "";
}

static const char *pkg_producer(json_t *pkg)
{
    const char *s = json_string_value(json_object_get(
        json_array_get(json_object_get(pkg, "contributors"), 0), "title"));
    return s ? s : "";
}

static const char *pkg_licence(json_t *pkg)
{
    const char *s = json_string_value(json_object_get(
        json_array_get(json_object_get(pkg, "licenses"), 0), "title"));
    return s ? s : "";
}

/* A stable urn:uuid (version 8: name-based, SHA-256) for a feed or an entry. */
static void urn_of(const char *name, char out[46])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    char x[33];

    crypto_hash_sha256(h, (const uint8_t *)name, strlen(name));
    h[6] = (uint8_t)((h[6] & 0x0f) | 0x80);
    h[8] = (uint8_t)((h[8] & 0x3f) | 0x80);
    sodium_bin2hex(x, sizeof(x), h, 16);
    snprintf(out, 46, "urn:uuid:%.8s-%.4s-%.4s-%.4s-%.12s", x, x + 8, x + 12, x + 16, x + 20);
}

static void resource_links(FILE *f, json_t *pkg, const char *prefix)
{
    size_t i;
    json_t *r;

    fputs("<ul>", f);
    fprintf(f, "<li><a href=\"%sdatapackage.json\">datapackage.json</a> (Data Package)</li>",
            prefix);
    json_array_foreach(json_object_get(pkg, "resources"), i, r) {
        const char *path = json_string_value(json_object_get(r, "path"));
        const char *schema = json_string_value(json_object_get(r, "schema"));
        if (!path || !is_file_name(path))
            continue;
        fputs("<li><a href=\"", f);
        esc(f, prefix);
        esc(f, path);
        fputs("\">", f);
        esc(f, path);
        fputs("</a> — ", f);
        esc(f, json_string_value(json_object_get(r, "title")));
        if (schema && is_file_name(schema)) {
            fputs(" (<a href=\"", f);
            esc(f, prefix);
            esc(f, schema);
            fputs("\">Table Schema</a>)", f);
        }
        fputs("</li>", f);
    }
    fputs("</ul>\n", f);
}

static const char *const page_head =
    "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
    "<meta name=viewport content=\"width=device-width\">"
    "<title>Open data</title><style>"
    "body{font-family:sans-serif;margin:1.5em;max-width:70em}"
    "</style>";

static int index_page(const struct period *p, size_t n, FILE *f)
{
    fputs(page_head, f);
    fputs("<link rel=alternate type=\"application/atom+xml\" href=\"feed.atom\" "
          "title=\"New periods\"></head><body>\n<h1>Open data</h1>\n", f);
    if (n) {
        fputs("<p>Published by ", f);
        esc(f, pkg_producer(p[0].package));
        fputs(" under ", f);
        esc(f, pkg_licence(p[0].package));
        fputs(". <a href=\"feed.atom\">Atom feed of new periods</a>.</p>\n", f);
    } else {
        fputs("<p>No period published yet.</p>\n", f);
    }
    for (size_t i = 0; i < n; i++) {
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "%s/", p[i].name);
        fputs("<h2><a href=\"", f);
        esc(f, prefix);
        fputs("\">", f);
        esc(f, p[i].name);
        fputs("</a></h2>\n<p>", f);
        esc(f, pkg_str(p[i].package, "title"));
        fputs(" — generated ", f);
        esc(f, pkg_str(p[i].package, "created"));
        fputs("</p>\n", f);
        resource_links(f, p[i].package, prefix);
    }
    fputs("</body></html>\n", f);
    return 0;
}

static int period_page(const struct period *p, FILE *f)
{
    fputs(page_head, f);
    fputs("</head><body>\n<p><a href=\"../\">Open data</a></p>\n<h1>", f);
    esc(f, p->name);
    fputs("</h1>\n<p>", f);
    esc(f, pkg_str(p->package, "title"));
    fputs("</p>\n<p>", f);
    esc(f, pkg_str(p->package, "description"));
    fputs("</p>\n<p>Licence: ", f);
    esc(f, pkg_licence(p->package));
    fputs(". Generated ", f);
    esc(f, pkg_str(p->package, "created"));
    fputs(".</p>\n", f);
    resource_links(f, p->package, "");
    fputs("</body></html>\n", f);
    return 0;
}

static int feed(const struct period *p, size_t n, FILE *f)
{
    char id[46], name[300];
    const char *producer = n ? pkg_producer(p[0].package) : "";
    const char *updated = "1970-01-01T00:00:00Z";

    for (size_t i = 0; i < n; i++)
        if (strcmp(pkg_str(p[i].package, "created"), updated) > 0)
            updated = pkg_str(p[i].package, "created");
    snprintf(name, sizeof(name), "portier-opendata-feed\n%s", producer);
    urn_of(name, id);
    fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
          "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n  <title>Open data", f);
    if (producer[0]) {
        fputs(": ", f);
        esc(f, producer);
    }
    fprintf(f, "</title>\n  <id>%s</id>\n  <updated>", id);
    esc(f, updated);
    fputs("</updated>\n  <link rel=\"self\" type=\"application/atom+xml\" href=\"feed.atom\"/>\n"
          "  <link rel=\"alternate\" type=\"text/html\" href=\"./\"/>\n  <author><name>", f);
    esc(f, producer[0] ? producer : "portier-custodian");
    fputs("</name></author>\n  <generator>portier-custodian</generator>\n", f);
    for (size_t i = 0; i < n; i++) {
        json_t *pkg = p[i].package;
        snprintf(name, sizeof(name), "portier-opendata-entry\n%s\n%s", producer, p[i].name);
        urn_of(name, id);
        fputs("  <entry>\n    <title>", f);
        esc(f, p[i].name);
        fputs(": ", f);
        esc(f, pkg_str(pkg, "title"));
        fprintf(f, "</title>\n    <id>%s</id>\n    <updated>", id);
        esc(f, pkg_str(pkg, "created")[0] ? pkg_str(pkg, "created") : updated);
        fprintf(f, "</updated>\n    <link rel=\"alternate\" type=\"text/html\" href=\"%s/\"/>\n"
                "    <link rel=\"enclosure\" type=\"application/json\" "
                "href=\"%s/datapackage.json\"/>\n    <summary>", p[i].name, p[i].name);
        esc(f, pkg_str(pkg, "description"));
        fputs(" Licence: ", f);
        esc(f, pkg_licence(pkg));
        fputs(".</summary>\n  </entry>\n", f);
    }
    fputs("</feed>\n", f);
    return 0;
}

/* ---- answers ---- */

static void plain(struct opendata_web_reply *ret, unsigned status, const char *text)
{
    ret->status = status;
    ret->type = text_plain;
    ret->body = strdup(text);
    ret->len = ret->body ? strlen(ret->body) : 0;
}

static bool etag_matches(const char *header, const char *etag)
{
    const char *p = header;
    size_t n = strlen(etag);

    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;     /* a weak comparison is enough for GET (RFC 9110, 13.1.2) */
        if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

static bool not_modified(const struct opendata_web_reply *ret, const char *if_none_match,
                         const char *if_modified_since)
{
    struct tm tm;
    const char *end;

    if (if_none_match)
        return ret->etag[0] && etag_matches(if_none_match, ret->etag);
    if (!if_modified_since || !ret->last_modified)
        return false;
    memset(&tm, 0, sizeof(tm));
    end = strptime(if_modified_since, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return end && *end == '\0' && ret->last_modified <= (int64_t)timegm(&tm);
}

/* Finish a 200 answer: ETag of the body, then 304 if the client holds it. */
static void finish(struct opendata_web_reply *ret, const char *if_none_match,
                   const char *if_modified_since)
{
    etag_of(ret->body, ret->len, ret->etag);
    if (not_modified(ret, if_none_match, if_modified_since)) {
        free(ret->body);
        ret->body = NULL;
        ret->len = 0;
        ret->status = 304;
    }
}

static void serve_file(const char *root, const char *period, const char *name,
                       struct opendata_web_reply *ret)
{
    size_t n = strlen(name);
    struct stat st;
    int dirfd = -1, fd = -1;
    char *buf = NULL;
    size_t got = 0;

    dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd >= 0) {
        int p = openat(dirfd, period, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(dirfd);
        dirfd = p;
    }
    if (dirfd >= 0)
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
        plain(ret, 404, "not found\n");
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    while (buf && got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        plain(ret, 500, "cannot read the file\n");
        goto out;
    }
    ret->status = 200;
    ret->body = buf;
    ret->len = got;
    ret->last_modified = st.st_mtime;
    ret->type = n > 4 && strcmp(name + n - 4, ".csv") == 0 ? "text/csv; charset=utf-8"
                : n > 5 && strcmp(name + n - 5, ".json") == 0 ? "application/json"
                : "application/octet-stream";
out:
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
}

void opendata_web_answer(const char *root, const char *url, const char *if_none_match,
                         const char *if_modified_since, struct opendata_web_reply *ret)
{
    const char *rest;
    char period[8], name[80];
    struct period *list = NULL;
    size_t n = 0;
    FILE *f;

    memset(ret, 0, sizeof(*ret));
    if (strcmp(url, "/opendata") == 0) {
        ret->status = 301;
        snprintf(ret->location, sizeof(ret->location), "opendata/");
        plain(ret, 301, "moved to /opendata/\n");
        return;
    }
    rest = url + strlen("/opendata/");
    if (strncmp(url, "/opendata/", 10) != 0) {
        plain(ret, 404, "not found\n");
        return;
    }
    if (rest[0] == '\0' || strcmp(rest, "feed.atom") == 0) {
        n = list_periods(root, &list);
        f = open_memstream(&ret->body, &ret->len);
        if (!f || (rest[0] ? feed(list, n, f) : index_page(list, n, f)) < 0 || fclose(f) != 0) {
            free_periods(list, n);
            plain(ret, 500, "cannot list the periods\n");
            return;
        }
        ret->status = 200;
        ret->type = rest[0] ? "application/atom+xml; charset=utf-8" : "text/html; charset=utf-8";
        for (size_t i = 0; i < n; i++)
            if (list[i].mtime > ret->last_modified)
                ret->last_modified = list[i].mtime;
        free_periods(list, n);
        finish(ret, if_none_match, if_modified_since);
        return;
    }
    /* YYYY-MM, YYYY-MM/ or YYYY-MM/FILE */
    if (strlen(rest) < 7 || (rest[7] != '\0' && rest[7] != '/')) {
        plain(ret, 404, "not found\n");
        return;
    }
    snprintf(period, sizeof(period), "%.7s", rest);
    if (!is_period(period)) {
        plain(ret, 404, "not found\n");
        return;
    }
    if (rest[7] == '\0') {
        snprintf(ret->location, sizeof(ret->location), "%s/", period);
        plain(ret, 301, "moved\n");
        return;
    }
    if (rest[8] == '\0') {
        struct period p = { .package = NULL };
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), pfd = -1;
        if (fd >= 0) {
            pfd = openat(fd, period, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            close(fd);
        }
        if (pfd >= 0) {
            p.package = load_package(pfd, &p.mtime);
            close(pfd);
        }
        if (!p.package) {
            plain(ret, 404, "no such period\n");
            return;
        }
        snprintf(p.name, sizeof(p.name), "%s", period);
        f = open_memstream(&ret->body, &ret->len);
        if (!f || period_page(&p, f) < 0 || fclose(f) != 0) {
            json_decref(p.package);
            plain(ret, 500, "cannot show the period\n");
            return;
        }
        json_decref(p.package);
        ret->status = 200;
        ret->type = "text/html; charset=utf-8";
        ret->last_modified = p.mtime;
        finish(ret, if_none_match, if_modified_since);
        return;
    }
    if (strlen(rest + 8) >= sizeof(name) || !is_file_name(rest + 8)) {
        plain(ret, 404, "not found\n");
        return;
    }
    snprintf(name, sizeof(name), "%s", rest + 8);
    serve_file(root, period, name, ret);
    if (ret->status == 200)
        finish(ret, if_none_match, if_modified_since);
}
