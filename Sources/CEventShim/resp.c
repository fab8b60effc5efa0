/* resp.c: RESP in memory, no I/O: hiredis' command formatter and reply reader
 * over caller buffers (the same code the connections use on their sockets). */
#include "CEventShim.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>

/* Format argv as one RESP command into a malloc'd *out; its length, or -1. */
long long ce_resp_format(int argc, const char **argv, const size_t *lens, char **out) {
    return redisFormatCommandArgv(out, argc, argv, lens);
}

/* Free what ce_resp_format made. */
void ce_resp_free(char *s) { redisFreeCommand(s); }

/* Parse one complete reply from buf; NULL when it is incomplete or not RESP. */
ce_reply *ce_resp_parse(const char *buf, size_t len) {
    redisReader *rd = redisReaderCreate();
    if (!rd) return NULL;
    void *reply = NULL;
    if (redisReaderFeed(rd, buf, len) != REDIS_OK || redisReaderGetReply(rd, &reply) != REDIS_OK) reply = NULL;
    redisReaderFree(rd);
    return (ce_reply *)reply;
}
