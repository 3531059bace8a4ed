/*
 * rd_slot.h: the Redis Cluster hash slot of a key, for the redis_cluster driver and its tests.
 *
 * A key's slot is CRC16(key) mod 16384, where CRC16 is the XMODEM variant (polynomial 0x1021,
 * initial value 0, no reflection, no final xor) and the key is replaced by its hash tag when it
 * has one: the bytes between the first '{' and the first '}' after it, if there is at least one
 * byte between them. So "{user1000}.following" and "{user1000}.followers" share a slot, while
 * "{}x" and "x{" hash whole. Known values: CRC16("123456789") = 0x31C3, slot("foo") = 12182.
 *
 * Written bit by bit from the polynomial rather than with a 256-entry table: a bucket key is
 * tens of bytes and is hashed once per command, so the table would buy nothing measurable.
 */
#ifndef TRIFLE_RD_SLOT_H
#define TRIFLE_RD_SLOT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** CRC16/XMODEM of s[0..n). */
static inline uint16_t rd_crc16(const char *s, size_t n)
{
    uint16_t crc = 0;
    size_t i;
    int b;

    for (i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)s[i] << 8);
        for (b = 0; b < 8; b++)
            crc = (uint16_t)((crc & 0x8000u) != 0 ? ((unsigned)crc << 1) ^ 0x1021u
                                                  : (unsigned)crc << 1);
    }
    return crc;
}

/** The cluster hash slot (0..16383) of key[0..n), honouring a `{hash tag}`. */
static inline unsigned rd_key_slot(const char *key, size_t n)
{
    const char *open = memchr(key, '{', n), *close;

    if (open != NULL) {
        close = memchr(open + 1, '}', n - (size_t)(open + 1 - key));
        if (close != NULL && close > open + 1)
            return rd_crc16(open + 1, (size_t)(close - open - 1)) & 16383u;
    }
    return rd_crc16(key, n) & 16383u;
}

#endif
