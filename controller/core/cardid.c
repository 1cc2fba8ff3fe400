#include "cardid.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int cardid_parse(const char *text, uint8_t uid[CARDID_UID_MAX], size_t *ret_len)
{
    uint8_t buf[CARDID_UID_MAX];
    size_t n = 0;
    const char *p = text;

    while (*p) {
        int hi, lo;
        if (*p == ':' && n > 0) {
            p++;
            continue;
        }
        hi = hexval((unsigned char)p[0]);
        lo = hi < 0 ? -1 : hexval((unsigned char)p[1]);
        if (hi < 0 || lo < 0 || n == CARDID_UID_MAX)
            return -EINVAL;
        buf[n++] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    if (n != 4 && n != 7 && n != 10)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        uid[i] = buf[i];
    *ret_len = n;
    return 0;
}

void cardid_hash(const uint8_t key[CARDID_KEY_LEN], const uint8_t *uid, size_t len,
                 uint8_t out[CARDID_HASH_LEN])
{
    crypto_generichash(out, CARDID_HASH_LEN, uid, len, key, CARDID_KEY_LEN);
}
