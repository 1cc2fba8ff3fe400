/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_opendata_web: opendata_web_answer() on arbitrary request paths and validators.
 *
 * Anyone who reaches the custodian's /opendata/ chooses the path and the If-None-Match and
 * If-Modified-Since headers. The input is three lines: the path (after "/opendata/"), then
 * the two headers ("-" for absent). Beside a published period, the directory holds a file
 * that must never be served (custodian.db), and outside it another (secret). Contracts: a
 * known status; 200 has a body and an ETag; 304 has none and only with a validator; 301
 * names a location; a file is served only from a period directory, under a plain name,
 * and never a temporary file or the secrets. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "opendata_web.h"

static char root[192];

static void put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

/* A published directory: ROOT/2026-10/{datapackage.json,a.csv,b.csv.tmp}, ROOT/custodian.db,
 * and ROOT/../secret. The same path for every run (replay_main forks a child per input),
 * rewritten with the same bytes. */
static void make_root(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[320], base[128];

    if (root[0])
        return;
    snprintf(base, sizeof(base), "%s/portier-fuzz-opendata-%d", tmp && tmp[0] ? tmp : "/tmp",
             (int)getuid());
    mkdir(base, 0700);
    snprintf(root, sizeof(root), "%s/published", base);
    mkdir(root, 0700);
    snprintf(path, sizeof(path), "%s/secret", base);
    put(path, "SECRET");
    snprintf(path, sizeof(path), "%s/custodian.db", root);
    put(path, "SECRET");
    snprintf(path, sizeof(path), "%s/2026-10", root);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/2026-10/datapackage.json", root);
    put(path, "{\"title\":\"<b>t</b>\",\"created\":\"2026-11-04T13:46:40Z\",\"resources\":"
              "[{\"path\":\"a.csv\",\"title\":\"A\",\"schema\":\"a.schema.json\"},"
              "{\"path\":\"../secret\"}],\"contributors\":[{\"title\":\"P\"}]}");
    snprintf(path, sizeof(path), "%s/2026-10/a.csv", root);
    put(path, "x,y\r\n1,2\r\n");
    snprintf(path, sizeof(path), "%s/2026-10/b.csv.tmp", root);
    put(path, "SECRET");
}

static char *line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);

    FUZZ_CHECK(s != NULL);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n + (nl ? 1 : 0);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    struct opendata_web_reply r;
    char *path, *inm, *ims, url[600];

    if (size > 1024)
        return 0;
    make_root();
    path = line(&p, end);
    inm = line(&p, end);
    ims = line(&p, end);
    snprintf(url, sizeof(url), "/opendata/%s", path);
    opendata_web_answer(root, url, strcmp(inm, "-") ? inm : NULL, strcmp(ims, "-") ? ims : NULL,
                        &r);
    FUZZ_CHECK(r.status == 200 || r.status == 301 || r.status == 304 || r.status == 404 ||
               r.status == 500);
    if (r.status == 200) {
        FUZZ_CHECK(r.body != NULL && r.type != NULL);
        FUZZ_CHECK(r.etag[0] == '"' && strlen(r.etag) == 34);
        FUZZ_CHECK(memmem(r.body, r.len, "SECRET", 6) == NULL);
        if (strncmp(r.type, "text/html", 9) == 0 || strncmp(r.type, "application/atom", 16) == 0)
            FUZZ_CHECK(memmem(r.body, r.len, "<b>", 3) == NULL);   /* values are escaped */
    }
    if (r.status == 304) {
        FUZZ_CHECK(r.body == NULL && r.etag[0]);
        FUZZ_CHECK(strcmp(inm, "-") != 0 || strcmp(ims, "-") != 0);
    }
    if (r.status == 301)
        FUZZ_CHECK(r.location[0] != '\0' && strchr(r.location, '/') != NULL);
    free(r.body);
    free(path);
    free(inm);
    free(ims);
    return 0;
}
