/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "card_keys.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "fileio.h"
#include "log.h"

#define KEY_FILE_MAX 4096

/* 32 hex digits and a newline, or the 16 raw bytes. */
static int parse_site_key(const char *buf, size_t len, uint8_t out[READER_KEY_LEN])
{
    size_t bin_len = 0;

    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len == READER_KEY_LEN) {
        memcpy(out, buf, READER_KEY_LEN);
        return 0;
    }
    if (len != 2 * READER_KEY_LEN ||
        sodium_hex2bin(out, READER_KEY_LEN, buf, len, NULL, &bin_len, NULL) != 0 ||
        bin_len != READER_KEY_LEN)
        return -EINVAL;
    return 0;
}

static int site_key(const struct config *cfg, struct reader_desfire_keys *k)
{
    char path[PATH_MAX], buf[64];
    size_t len = 0;
    mode_t mode = 0;
    int r;

    config_desfire_key_path(cfg, path, sizeof(path));
    r = file_read_small(path, buf, sizeof(buf), &len, &mode);
    if (r == -ENOENT) {
        uint8_t key[READER_KEY_LEN];
        char hex[2 * READER_KEY_LEN + 2];

        /* First start: a new master key, written whole or not at all, readable by us only. */
        randombytes_buf(key, sizeof(key));
        sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
        hex[2 * READER_KEY_LEN] = '\n';
        r = file_write_atomic(path, hex, 2 * READER_KEY_LEN + 1, 0600);
        if (r == 0) {
            memcpy(k->site_key, key, sizeof(key));
            log_notice("DESFire: created the site's master key in %s (mode 0600): back it up, "
                       "encrypted, apart from the database (docs/security.md)", path);
        }
        sodium_memzero(key, sizeof(key));
        sodium_memzero(hex, sizeof(hex));
        if (r < 0) {
            log_error("DESFire: cannot create the master key file %s: %s", path, strerror(-r));
            return r;
        }
        k->site = true;
        return 0;
    }
    if (r < 0) {
        log_error("DESFire: cannot read the master key file %s: %s", path, strerror(-r));
        sodium_memzero(buf, sizeof(buf));
        return r;
    }
    r = parse_site_key(buf, len, k->site_key);
    sodium_memzero(buf, sizeof(buf));
    if (r < 0) {
        log_error("DESFire: %s: the master key must be 32 hex digits (or 16 bytes)", path);
        return r;
    }
    if (mode & 0077)
        log_warning("DESFire: the master key file %s can be read by others than its owner "
                    "(mode %04o): chmod 600 it", path, (unsigned)(mode & 07777));
    k->site = true;
    return 0;
}

int card_keys_parse_consortium(const char *text, size_t len, struct reader_desfire_keys *k,
                               unsigned *ret_line)
{
    bool seen[256] = { false };
    const char *p = text, *end = text + len;
    unsigned line = 0, best = 0, second = 0;
    uint8_t keys[256][READER_KEY_LEN];
    int r = 0;

    *ret_line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char l[128], hex[64];
        unsigned gen;
        size_t bin_len = 0;
        int used = 0;

        line++;
        if (n >= sizeof(l)) {
            r = -EINVAL;
            *ret_line = line;
            break;
        }
        memcpy(l, p, n);
        l[n] = '\0';
        p += n + (nl ? 1 : 0);
        if (n && l[n - 1] == '\r')
            l[--n] = '\0';
        if (l[strspn(l, " \t")] == '\0' || l[strspn(l, " \t")] == '#')
            continue;
        if (sscanf(l, " %u %63s %n", &gen, hex, &used) != 2 || l[used] != '\0' || gen < 1 ||
            gen > 255 || seen[gen] || strlen(hex) != 2 * READER_KEY_LEN ||
            sodium_hex2bin(keys[gen], READER_KEY_LEN, hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
            bin_len != READER_KEY_LEN) {
            r = -EINVAL;
            *ret_line = line;
            break;
        }
        sodium_memzero(hex, sizeof(hex));
        seen[gen] = true;
        if (gen > best) {
            second = best;
            best = gen;
        } else if (gen > second) {
            second = gen;
        }
    }
    if (r == 0 && best == 0)
        r = -EINVAL;            /* *ret_line stays 0: no key at all */
    if (r == 0) {
        k->consortium = true;
        memcpy(k->consortium_key, keys[best], READER_KEY_LEN);
        k->consortium_gen = (uint8_t)best;
        k->consortium_old = second != 0;
        if (second) {
            memcpy(k->consortium_old_key, keys[second], READER_KEY_LEN);
            k->consortium_old_gen = (uint8_t)second;
        }
    }
    sodium_memzero(keys, sizeof(keys));
    return r;
}

static int consortium_key(const struct config *cfg, struct reader_desfire_keys *k)
{
    const char *path = cfg->consortium.desfire_key_file;
    char *buf;
    size_t len = 0;
    unsigned line = 0;
    mode_t mode = 0;
    int r;

    if (!path[0] || !cfg->consortium.enabled)
        return 0;               /* without the consortium, no passports: nobody to prove it to */
    buf = sodium_malloc(KEY_FILE_MAX);
    if (!buf)
        return -ENOMEM;
    r = file_read_small(path, buf, KEY_FILE_MAX, &len, &mode);
    if (r < 0) {
        log_error("DESFire: cannot read the consortium key file %s: %s", path, strerror(-r));
        goto out;
    }
    r = card_keys_parse_consortium(buf, len, k, &line);
    if (r < 0) {
        if (line)
            log_error("%s:%u: expected GEN HEX: a generation 1..255, used once, and 32 hex digits",
                      path, line);
        else
            log_error("%s: no key in it: lines GEN HEX (a generation and 32 hex digits)", path);
        goto out;
    }
    if (mode & 0007)
        log_warning("DESFire: the consortium key file %s can be read by anyone (mode %04o): "
                    "chmod 640 it", path, (unsigned)(mode & 07777));
    log_info("DESFire: consortium key generation %u%s", k->consortium_gen,
             k->consortium_old ? " (the previous one is still accepted at taps)" : "");
out:
    sodium_free(buf);
    return r;
}

int card_keys_load(const struct config *cfg, struct reader_desfire_keys **ret)
{
    struct reader_desfire_keys *k = sodium_malloc(sizeof(*k));
    int r;

    if (!k)
        return -ENOMEM;
    memset(k, 0, sizeof(*k));
    if ((r = site_key(cfg, k)) < 0 || (r = consortium_key(cfg, k)) < 0) {
        card_keys_free(k);
        return r;
    }
    sodium_mprotect_readonly(k);
    *ret = k;
    return 0;
}

struct reader_desfire_keys *card_keys_free(struct reader_desfire_keys *k)
{
    if (k)
        sodium_free(k);         /* wipes it */
    return NULL;
}
