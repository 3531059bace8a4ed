/* Metric keys: what a key may be (SPEC §3.1, ERRATA I3/I4/minor 17). Apart from the handle
 * (trifle.c) because the buffer (buffer/buffer.c) checks keys too, and the buffer sits below the
 * handle: with the check in trifle.c the two called each other. */
#include "key_int.h"

#include <string.h>

#include "error_int.h"
#include "json_int.h"

#define SYSTEM_KEY "__system__key__"
#define UNTRACKED_KEY "__untracked__"
#define MAX_KEY_BYTES 200 /* ERRATA I4: every joined identifier then fits VARCHAR(255) */

int trifle__key_check(const char *key, int for_write, trifle_error *err)
{
    size_t i = 0, seg = 0, len;

    if (key == NULL)
        return trifle__error(err, TRIFLE_EINVAL, "invalid metric key");
    /* one pass: ASCII bytes inline, multi-byte sequences through the UTF-8 decoder; every dotted
     * segment non-empty and not starting with '$' (the key becomes the system path keys.<key>,
     * ERRATA I3) */
    for (;;) {
        unsigned char c;

        /* the bulk of a key: '/' .. DEL, neither a separator nor the end nor UTF-8 */
        while ((unsigned char)((unsigned char)key[i] - 0x2f) < 0x51)
            i++;
        if (i > MAX_KEY_BYTES)
            return trifle__error(err, TRIFLE_EINVAL, "invalid metric key");
        c = (unsigned char)key[i];
        if (c == '\0' || c == '.') {
            if (i == seg || key[seg] == '$')
                return trifle__error(err, TRIFLE_EINVAL, "invalid metric key");
            if (c == '\0')
                break;
            seg = ++i;
        } else if (c < 0x80) {
            i++;
        } else if ((len = tu_utf8_seq(key + i, strnlen(key + i, 4))) == 0) {
            return trifle__error(err, TRIFLE_EINVAL, "invalid metric key");
        } else {
            i += len;
        }
        if (i > MAX_KEY_BYTES)
            return trifle__error(err, TRIFLE_EINVAL, "invalid metric key");
    }
    if (for_write && key[0] == '_' && strcmp(key, SYSTEM_KEY) == 0)
        return trifle__error(err, TRIFLE_EINVAL, "reserved key: " SYSTEM_KEY);
    if (for_write && key[0] == '_' && strcmp(key, UNTRACKED_KEY) == 0)
        return trifle__error(err, TRIFLE_EINVAL, "reserved key: " UNTRACKED_KEY);
    return 0;
}
