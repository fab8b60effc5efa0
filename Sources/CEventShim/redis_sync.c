/* redis_sync.c: a blocking hiredis connection for one thread; commands are
 * appended to the output buffer and their replies read in order (pipelining). */
#include "CEventShim.h"
#include "shim_internal.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

struct ce_redis_sync {
    redisContext *ctx;
    ce_redis_uring *uring; /* NULL: plain socket reads and writes */
    ce_reply_arena *arena; /* where the reader builds replies; reset by ce_redis_sync_release */
    int timeout_ms;
    ce_feed received; /* the plain socket path's receives, fed to the reader in pieces */
};

/* Wrap a fresh hiredis context; NULL with a message in err on failure. */
static ce_redis_sync *sync_wrap(redisContext *ctx, int timeout_ms, int tcp, char *err, size_t err_len) {
    if (!ctx || ctx->err) {
        snprintf(err, err_len, "%s", ctx ? ctx->errstr : "out of memory");
        if (ctx) redisFree(ctx);
        return NULL;
    }
    if (tcp) redisEnableKeepAlive(ctx); /* a unix socket has no TCP keepalive (hiredis would set an error) */
    /* Keep the reader's buffer when it empties: hiredis frees it past 16 KB and regrows
     * it for the next large reply (a claim's batch), several reallocations a turn. */
    ctx->reader->maxbuf = 0;
    ce_redis_sync *r = calloc(1, sizeof(*r));
    ce_reply_arena *arena = ce_reply_arena_new();
    if (!r || !arena) {
        free(r);
        free(arena);
        redisFree(ctx);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    ce_reply_arena_attach(arena, ctx->reader);
    r->arena = arena;
    r->ctx = ctx;
    r->timeout_ms = timeout_ms;
    return r;
}

/* Connect with a timeout; NULL with a message in err on failure. */
ce_redis_sync *ce_redis_sync_connect(const char *host, int port, int timeout_ms, char *err, size_t err_len) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return sync_wrap(redisConnectWithTimeout(host, port, tv), timeout_ms, 1, err, err_len);
}

/* Connect to a unix socket with a timeout; NULL with a message in err on failure. */
ce_redis_sync *ce_redis_sync_connect_unix(const char *path, int timeout_ms, char *err, size_t err_len) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return sync_wrap(redisConnectUnixWithTimeout(path, tv), timeout_ms, 0, err, err_len);
}

/* Queue commands already in RESP (no I/O). */
int ce_redis_sync_append_formatted(ce_redis_sync *r, const char *buf, size_t len) {
    return redisAppendFormattedCommand(r->ctx, buf, len) == REDIS_OK ? 0 : -1;
}

/* The next reply over the plain socket: from what was received, else after writing
 * what is queued and receiving once more (blocking, within the socket's timeout). */
static int socket_get_reply(ce_redis_sync *r, void **reply) {
    redisContext *c = r->ctx;
    if (ce_feed_reply(&r->received, c, reply) != REDIS_OK) return REDIS_ERR;
    while (*reply == NULL) {
        if (ce_redis_sync_flush(r) != 0) return REDIS_ERR;
        size_t room;
        char *space = ce_feed_space(&r->received, &room);
        ssize_t n = recv(c->fd, space, room, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ce_redis_fail(c, REDIS_ERR_IO, strerror(errno));
        if (n == 0) return ce_redis_fail(c, REDIS_ERR_EOF, "Server closed the connection");
        ce_feed_received(&r->received, (size_t)n);
        if (ce_feed_reply(&r->received, c, reply) != REDIS_OK) return REDIS_ERR;
    }
    return REDIS_OK;
}

/* Flush and read the next reply (blocks). 0 ok, -1 on I/O or protocol error. */
int ce_redis_sync_read(ce_redis_sync *r, ce_reply **out) {
    void *reply = NULL;
    int rc = r->uring ? ce_redis_uring_get_reply(r->uring, r->ctx, r->timeout_ms, &reply)
                      : socket_get_reply(r, &reply);
    if (rc != REDIS_OK) return -1;
    *out = reply;
    return 0;
}

/* Done with the reply ce_redis_sync_read gave: its objects' memory is reused by the next. */
void ce_redis_sync_release(ce_redis_sync *r, ce_reply *reply) {
    (void)reply;
    ce_reply_arena_reset(r->arena);
}

/* Send what is queued over the plain socket and empty the buffer, keeping its memory
 * (hiredis' own write frees it and starts a new one each time it drains). */
static int socket_flush(redisContext *c) {
    size_t len = sdslen(c->obuf), sent = 0;
    while (sent < len) {
        ssize_t n = send(c->fd, c->obuf + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ce_redis_fail(c, REDIS_ERR_IO, strerror(errno));
        sent += (size_t)n;
    }
    sdsclear(c->obuf);
    return REDIS_OK;
}

/* Write everything queued without reading (its replies are read later). 0 ok, -1 on error. */
int ce_redis_sync_flush(ce_redis_sync *r) {
    if (r->uring) return ce_redis_uring_flush(r->uring, r->ctx) == REDIS_OK ? 0 : -1;
    return socket_flush(r->ctx) == REDIS_OK ? 0 : -1;
}

/* Set the read timeout for blocking commands. */
int ce_redis_sync_set_timeout(ce_redis_sync *r, int timeout_ms) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    r->timeout_ms = timeout_ms;
    return redisSetTimeout(r->ctx, tv) == REDIS_OK ? 0 : -1;
}

/* Move this connection's I/O to io_uring; 0, or the errno that refused it (EPERM, ENOSYS). */
int ce_redis_sync_use_uring(ce_redis_sync *r) {
    if (r->uring) return 0;
    int err = 0;
    r->uring = ce_redis_uring_new(&err);
    return r->uring ? 0 : err;
}

/* The last error message. */
const char *ce_redis_sync_error(const ce_redis_sync *r) { return r->ctx->errstr; }

/* The connection's socket (to wait for a reply's arrival with ce_wait_readable). */
int ce_redis_sync_fd(const ce_redis_sync *r) { return r->ctx->fd; }

/* Close and free. */
void ce_redis_sync_free(ce_redis_sync *r) {
    if (!r) return;
    ce_redis_uring_free(r->uring);
    redisFree(r->ctx);
    ce_reply_arena_free(r->arena);
    free(r);
}
