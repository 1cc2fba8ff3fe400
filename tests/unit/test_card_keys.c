/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* card_keys and provisioning's inputs: the consortium's DESFire key file (generations, the
 * newest current, the one below accepted), the site's master key file (created 0600 at first
 * start, read back the same), and the PICC keys a manager may give. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "card_keys.h"
#include "config.h"
#include "provision.h"

#define K1 "00112233445566778899aabbccddeeff"
#define K2 "ffeeddccbbaa99887766554433221100"
#define K3 "0f0e0d0c0b0a09080706050403020100"

static int parse(const char *text, struct reader_desfire_keys *k, unsigned *line)
{
    memset(k, 0, sizeof(*k));
    return card_keys_parse_consortium(text, strlen(text), k, line);
}

static void test_consortium_generations(void **state)
{
    struct reader_desfire_keys k;
    unsigned line = 99;
    (void)state;

    assert_int_equal(parse("# the consortium's key\n3 " K1 "\n", &k, &line), 0);
    assert_true(k.consortium);
    assert_int_equal(k.consortium_gen, 3);
    assert_false(k.consortium_old);
    assert_int_equal(k.consortium_key[0], 0x00);
    assert_int_equal(k.consortium_key[15], 0xff);

    /* Any order: the newest is current, the one just below still accepted, older ignored. */
    assert_int_equal(parse("1 " K3 "\r\n\n  7 " K2 "\n4 " K1, &k, &line), 0);
    assert_int_equal(k.consortium_gen, 7);
    assert_int_equal(k.consortium_key[0], 0xff);
    assert_true(k.consortium_old);
    assert_int_equal(k.consortium_old_gen, 4);
    assert_int_equal(k.consortium_old_key[0], 0x00);

    /* Errors name their line; a file without a key names none. */
    assert_int_equal(parse("3 " K1 "\n3 " K2 "\n", &k, &line), -EINVAL);
    assert_int_equal(line, 2);
    assert_int_equal(parse("0 " K1 "\n", &k, &line), -EINVAL);
    assert_int_equal(line, 1);
    assert_int_equal(parse("256 " K1 "\n", &k, &line), -EINVAL);
    assert_int_equal(parse("# c\n2 " K1 "00\n", &k, &line), -EINVAL);
    assert_int_equal(line, 2);
    assert_int_equal(parse("2 " K1 " extra\n", &k, &line), -EINVAL);
    assert_int_equal(parse("2 zz112233445566778899aabbccddeeff\n", &k, &line), -EINVAL);
    assert_int_equal(parse("# only comments\n\n", &k, &line), -EINVAL);
    assert_int_equal(line, 0);
    assert_false(k.consortium);
}

static void test_site_key_file(void **state)
{
    char dir[] = "/tmp/portier-card-keys-XXXXXX", path[256], text[64];
    struct reader_desfire_keys *a = NULL, *b = NULL;
    struct config *cfg = calloc(1, sizeof(*cfg));
    struct stat st;
    FILE *f;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(cfg->daemon.state_dir, sizeof(cfg->daemon.state_dir), "%s", dir);
    assert_int_equal(card_keys_load(cfg, &a), 0);
    assert_true(a->site);
    assert_false(a->consortium);
    snprintf(path, sizeof(path), "%s/desfire-master.key", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Read back, the same key. */
    assert_int_equal(card_keys_load(cfg, &b), 0);
    assert_memory_equal(a->site_key, b->site_key, sizeof(a->site_key));
    card_keys_free(b);
    /* A damaged file stops the start rather than making a new key. */
    f = fopen(path, "w");
    fputs("not a key\n", f);
    fclose(f);
    b = NULL;
    assert_int_equal(card_keys_load(cfg, &b), -EINVAL);
    assert_null(b);
    /* A configured file, in hex. */
    snprintf(cfg->daemon.desfire_key_file, sizeof(cfg->daemon.desfire_key_file), "%s/k", dir);
    f = fopen(cfg->daemon.desfire_key_file, "w");
    fputs(K1 "\n", f);
    fclose(f);
    assert_int_equal(card_keys_load(cfg, &b), 0);
    assert_int_equal(b->site_key[1], 0x11);
    card_keys_free(b);
    card_keys_free(a);
    unlink(cfg->daemon.desfire_key_file);
    unlink(path);
    snprintf(text, sizeof(text), "%s", dir);
    rmdir(text);
    free(cfg);
}

static void test_picc_keys(void **state)
{
    enum reader_picc_key t;
    uint8_t k[READER_KEY_LEN];
    (void)state;

    assert_int_equal(provision_parse_picc_key(NULL, &t, k), 0);
    assert_int_equal(t, READER_PICC_DEFAULT);
    assert_int_equal(provision_parse_picc_key("default", &t, k), 0);
    assert_int_equal(provision_parse_picc_key("aes:" K1, &t, k), 0);
    assert_int_equal(t, READER_PICC_AES);
    assert_int_equal(k[15], 0xff);
    assert_int_equal(provision_parse_picc_key("des:0011223344556677", &t, k), 0);
    assert_int_equal(t, READER_PICC_DES);
    assert_int_equal(k[8], 0);
    assert_int_equal(provision_parse_picc_key("2k3des:" K2, &t, k), 0);
    assert_int_equal(t, READER_PICC_2K3DES);
    assert_int_equal(provision_parse_picc_key("aes:" K1 "00", &t, k), -EINVAL);
    assert_int_equal(provision_parse_picc_key("des:" K1, &t, k), -EINVAL);
    assert_int_equal(provision_parse_picc_key("3k3des:" K1 K1, &t, k), -EINVAL);
    assert_int_equal(provision_parse_picc_key(K1, &t, k), -EINVAL);
    assert_int_equal(provision_parse_picc_key("aes:", &t, k), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consortium_generations),
        cmocka_unit_test(test_site_key_file),
        cmocka_unit_test(test_picc_keys),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
