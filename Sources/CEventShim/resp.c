/* resp.c: RESP in memory, no I/O: hiredis' reply reader over a caller buffer
 * (the same code the connections use on their sockets). Commands are encoded
 * in Swift (RESP.swift). */
#include "CEventShim.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

/* The end of the one reply at p, walked without allocating; NULL when it is not RESP, not
 * complete, or an array names more elements than the bytes left could hold (each takes
 * at least 3): hiredis 0.14 allocates an array's elements before reading them, so
 * "*388888888\r\n" alone asked for 3 GB. */
static const char *reply_end(const char *p, const char *end, int depth) {
    if (p >= end || depth > 64) return NULL;
    char type = *p++;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl || nl == p || nl[-1] != '\r') return NULL;
    const char *next = nl + 1;
    if (type == '+' || type == '-' || type == ':') return next;
    if (type != '$' && type != '*') return NULL;
    const char *q = p, *digits_end = nl - 1;
    if (q < digits_end && *q == '-') return next; /* a nil bulk or array */
    if (q == digits_end) return NULL;
    long long n = 0, left = (long long)(end - next);
    for (; q < digits_end; q++) {
        if (*q < '0' || *q > '9' || n > left) return NULL;
        n = n * 10 + (*q - '0');
    }
    if (type == '$') return n + 2 <= left ? next + n + 2 : NULL;
    if (n > left / 3) return NULL;
    for (long long i = 0; i < n && next; i++) next = reply_end(next, end, depth + 1);
    return next;
}

/* Parse one complete reply from buf; NULL when it is incomplete or not RESP. */
ce_reply *ce_resp_parse(const char *buf, size_t len) {
    if (!reply_end(buf, buf + len, 0)) return NULL;
    redisReader *rd = redisReaderCreate();
    if (!rd) return NULL;
    void *reply = NULL;
    if (redisReaderFeed(rd, buf, len) != REDIS_OK || redisReaderGetReply(rd, &reply) != REDIS_OK) reply = NULL;
    redisReaderFree(rd);
    return (ce_reply *)reply;
}
