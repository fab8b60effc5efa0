/* redis_feed.c: received bytes handed to hiredis' reader a piece at a time.
 * After each reply, once 1 KB of its buffer is consumed, the reader moves what it
 * still holds to the front: fed a 64 KB receive at once, that is up to 64 KB moved
 * per reply. Fed in pieces, it holds little more than the reply it is reading. */
#include "shim_internal.h"

#include <hiredis/hiredis.h>
#include <stdio.h>

enum { FEED_PIECE = 4096 };

/* Mark the context failed the way hiredis does, so its errstr explains; REDIS_ERR. */
int ce_redis_fail(struct redisContext *c, int type, const char *what) {
    c->err = type;
    snprintf(c->errstr, sizeof(c->errstr), "%s", what);
    return REDIS_ERR;
}

/* Where the next receive goes and how much fits (only once every byte is fed). */
char *ce_feed_space(ce_feed *f, size_t *len) {
    *len = sizeof(f->buf);
    return f->buf;
}

/* Record that n bytes were received into ce_feed_space. */
void ce_feed_received(ce_feed *f, size_t n) {
    f->got = n;
    f->fed = 0;
}

/* The next reply from the reader, fed from the staged bytes as it needs them;
 * *reply stays NULL when they run out first. REDIS_ERR on a protocol error. */
int ce_feed_reply(ce_feed *f, struct redisContext *c, void **reply) {
    *reply = NULL;
    for (;;) {
        if (redisGetReplyFromReader(c, reply) != REDIS_OK) {
            const char *refused = ce_reply_arena_refusal(c->reader); /* else hiredis says "Out of memory" */
            return refused ? ce_redis_fail(c, REDIS_ERR_PROTOCOL, refused) : REDIS_ERR;
        }
        if (*reply || f->fed == f->got) return REDIS_OK;
        size_t n = f->got - f->fed < FEED_PIECE ? f->got - f->fed : FEED_PIECE;
        if (redisReaderFeed(c->reader, f->buf + f->fed, n) != REDIS_OK)
            return ce_redis_fail(c, REDIS_ERR_PROTOCOL, c->reader->errstr);
        f->fed += n;
    }
}
