/* resp.c: RESP in memory, no I/O: hiredis' reply reader over a caller buffer
 * (the same code the connections use on their sockets). Commands are encoded
 * in Swift (RESP.swift). */
#include "CEventShim.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>

/* Parse one complete reply from buf; NULL when it is incomplete or not RESP. */
ce_reply *ce_resp_parse(const char *buf, size_t len) {
    redisReader *rd = redisReaderCreate();
    if (!rd) return NULL;
    void *reply = NULL;
    if (redisReaderFeed(rd, buf, len) != REDIS_OK || redisReaderGetReply(rd, &reply) != REDIS_OK) reply = NULL;
    redisReaderFree(rd);
    return (ce_reply *)reply;
}
