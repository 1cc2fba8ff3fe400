/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "desfire_kdf.h"

#include <errno.h>
#include <nettle/aes.h>
#include <nettle/cmac.h>
#include <string.h>

#define BLOCK 16
#define AN10922_AES128 0x01             /* the div constant of AES-128 keys */

/* AN10922 differs from plain CMAC in one point: the message (the constant and the input)
 * is always padded to two blocks, and a padded message gets K2 on its last block even when
 * the input alone would fill a block. nettle's CMAC decides the subkey from the length it is
 * given: fed the padded 32 bytes it applies K1, so the last block is first XORed with
 * K1 ^ K2, which leaves exactly K2. */
int desfire_kdf_an10922(const uint8_t master[DESFIRE_KEY_LEN], const uint8_t *input, size_t len,
                        uint8_t out[DESFIRE_KEY_LEN])
{
    struct aes128_ctx aes;
    struct cmac128_key subkeys;
    struct cmac128_ctx ctx;
    uint8_t d[2 * BLOCK];
    size_t n = 0;

    if (len < 1 || len > DESFIRE_KDF_INPUT_MAX)
        return -EINVAL;
    aes128_set_encrypt_key(&aes, master);
    cmac128_set_key(&subkeys, &aes, (nettle_cipher_func *)aes128_encrypt);
    d[n++] = AN10922_AES128;
    memcpy(d + n, input, len);
    n += len;
    if (n < sizeof(d)) {
        d[n++] = 0x80;
        memset(d + n, 0, sizeof(d) - n);
        for (size_t i = 0; i < BLOCK; i++)
            d[BLOCK + i] ^= subkeys.K1.b[i] ^ subkeys.K2.b[i];
    }
    cmac128_init(&ctx);
    cmac128_update(&ctx, &aes, (nettle_cipher_func *)aes128_encrypt, sizeof(d), d);
    cmac128_digest(&ctx, &subkeys, &aes, (nettle_cipher_func *)aes128_encrypt, DESFIRE_KEY_LEN,
                   out);
    /* Nothing of the master key's schedule stays on the stack. */
    explicit_bzero(&aes, sizeof(aes));
    explicit_bzero(&subkeys, sizeof(subkeys));
    explicit_bzero(&ctx, sizeof(ctx));
    explicit_bzero(d, sizeof(d));
    return 0;
}

static size_t put_aid(uint8_t *p, uint32_t aid)
{
    p[0] = (uint8_t)aid;
    p[1] = (uint8_t)(aid >> 8);
    p[2] = (uint8_t)(aid >> 16);
    return 3;
}

void desfire_kdf_card_key(const uint8_t master[DESFIRE_KEY_LEN], const uint8_t uid[DESFIRE_UID_LEN],
                          uint32_t aid, uint8_t key_no, uint8_t out[DESFIRE_KEY_LEN])
{
    uint8_t in[DESFIRE_UID_LEN + 3 + 7 + 1];
    size_t n = 0;

    memcpy(in, uid, DESFIRE_UID_LEN);
    n += DESFIRE_UID_LEN;
    n += put_aid(in + n, aid);
    memcpy(in + n, "Portier", 7);
    n += 7;
    in[n++] = key_no;
    desfire_kdf_an10922(master, in, n, out);
}

void desfire_kdf_uid_key(const uint8_t master[DESFIRE_KEY_LEN], uint32_t aid,
                         uint8_t out[DESFIRE_KEY_LEN])
{
    uint8_t in[10 + 3];

    memcpy(in, "PortierUID", 10);
    put_aid(in + 10, aid);
    desfire_kdf_an10922(master, in, sizeof(in), out);
}
