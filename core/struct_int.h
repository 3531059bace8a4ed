/* Versioned public structs (docs/architecture.md, "Structs that grow"). Never installed.
 *
 * A public struct that a caller allocates and that may grow starts with `size_t struct_size`, set
 * by the caller (the TRIFLE_*_INIT macros) to sizeof the struct as the caller's headers had it.
 * Members are only ever appended, so the callee handles every version by copying the common
 * prefix: an older caller's struct is shorter (the callee fills only what fits, or takes defaults
 * for what is missing), a newer caller's is longer (the callee leaves the unknown tail alone, or
 * refuses input it does not understand). The smallest accepted size is the first version's, named
 * TRIFLE__<STRUCT>_SIZE_1 next to the code that checks it. */
#ifndef TRIFLE_STRUCT_INT_H
#define TRIFLE_STRUCT_INT_H

#include <stddef.h>
#include <string.h>

/* Bytes from the start of type up to and including member: the size of the version whose last
 * member that is. */
#define TRIFLE__SIZE_THROUGH(type, member) \
    (offsetof(type, member) + sizeof(((const type *)0)->member))

/* The struct_size a caller wrote into its struct at p (the first member of every versioned struct,
 * read through memcpy so that no type is needed). */
static inline size_t trifle__struct_size(const void *p)
{
    size_t n;

    memcpy(&n, p, sizeof(n));
    return n;
}

/* Output: copies the callee's full struct src (src_size bytes) into the caller's dst, whose
 * struct_size says how much room it has, keeping dst's struct_size. Members the caller's version
 * does not have are not written; members the callee does not know are left as they were. */
static inline void trifle__struct_out(void *dst, const void *src, size_t src_size)
{
    size_t n = trifle__struct_size(dst);

    if (n > src_size)
        n = src_size;
    if (n > sizeof(size_t))
        memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
               n - sizeof(size_t));
}

/* Input: copies the caller's src (its struct_size bytes, at least min_size) over dst, the callee's
 * full struct holding the defaults, so members an older caller lacks keep their defaults. A newer
 * caller's struct is accepted when every byte the callee does not know is zero (the INIT macros
 * zero them, or memset: that is the default of every appended member); else 1 is returned, meaning
 * "set members this library does not support". Returns -1 for a size below min_size, 0 on success;
 * dst is unchanged unless 0 is returned. */
static inline int trifle__struct_in(void *dst, size_t dst_size, const void *src, size_t min_size)
{
    size_t n = trifle__struct_size(src), i;

    if (n < min_size)
        return -1;
    for (i = dst_size; i < n; i++)
        if (((const unsigned char *)src)[i] != 0)
            return 1;
    memcpy(dst, src, n < dst_size ? n : dst_size);
    memcpy(dst, &dst_size, sizeof(dst_size));
    return 0;
}

#endif
