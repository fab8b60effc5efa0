/* find.c: byte-string search, for reading a field out of a message's text
 * without decoding it. */
#include <string.h>
#include "CEventShim.h"

/* Offset of the first `needle` in `hay`, or -1: libc's memchr (vectorised) finds
 * each place its byte `anchor` occurs, then memcmp checks the whole needle there.
 * The caller picks an anchor byte that is rare in the text. */
long ce_find(const uint8_t *hay, size_t len, const uint8_t *needle, size_t nlen, size_t anchor) {
    if (nlen == 0) return 0;
    if (nlen > len || anchor >= nlen) return -1;
    const uint8_t *from = hay + anchor, *last = hay + (len - nlen) + anchor;
    while (from <= last) {
        const uint8_t *at = memchr(from, needle[anchor], (size_t)(last - from) + 1);
        if (!at) return -1;
        if (memcmp(at - anchor, needle, nlen) == 0) return (long)(at - anchor - hay);
        from = at + 1;
    }
    return -1;
}
