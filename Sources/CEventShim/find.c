/* find.c: byte-string search, for reading a field out of a message's text
 * without decoding it (libc's two-way memmem). */
#define _GNU_SOURCE
#include <string.h>
#include "CEventShim.h"

/* Offset of the first `needle` in `hay`, or -1. */
long ce_find(const uint8_t *hay, size_t len, const uint8_t *needle, size_t nlen) {
    const uint8_t *hit = memmem(hay, len, needle, nlen);
    return hit ? (long)(hit - hay) : -1;
}
