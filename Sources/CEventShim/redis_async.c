/* redis_async.c: hiredis' async API attached to a ce_loop through the
 * libevent adapter. The handle outlives the hiredis context so Swift can
 * hold it across disconnects. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

struct ce_redis {
    redisAsyncContext *ac; /* NULL once the connection is gone */
    int connected;
    int pending;
    int waiting;          /* commands sent whose (one) reply has not come */
    uint64_t since_ms;    /* when the oldest of them was sent, or the last reply came */
    ce_redis_state_cb state_cb;
    void *ctx;
};

/* One command's callback and its owner. */
typedef struct command {
    ce_redis *r;
    ce_redis_reply_cb cb;
    void *privdata;
    int persistent; /* SUBSCRIBE: called per message */
} command;

/* Monotonic milliseconds. */
static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* hiredis connect callback. */
static void on_connect(const redisAsyncContext *ac, int status) {
    ce_redis *r = ac->data;
    if (status == REDIS_OK) {
        r->connected = 1;
        r->state_cb(r, CE_REDIS_CONNECTED, NULL, r->ctx);
    } else {
        r->ac = NULL; /* hiredis frees the context after this returns */
        r->state_cb(r, CE_REDIS_FAILED, ac->errstr, r->ctx);
    }
}

/* hiredis disconnect callback. */
static void on_disconnect(const redisAsyncContext *ac, int status) {
    (void)status;
    ce_redis *r = ac->data;
    r->ac = NULL;
    r->connected = 0;
    r->state_cb(r, CE_REDIS_DISCONNECTED, ac->errstr, r->ctx);
}

/* Attach a fresh hiredis async context to the loop. */
static ce_redis *async_wrap(redisAsyncContext *ac, ce_loop *loop, ce_redis_state_cb cb, void *ctx) {
    if (!ac) return NULL;
    if (ac->err) { redisAsyncFree(ac); return NULL; }
    ce_redis *r = calloc(1, sizeof(*r));
    if (!r) { redisAsyncFree(ac); return NULL; }
    r->ac = ac;
    r->state_cb = cb;
    r->ctx = ctx;
    ac->data = r;
    redisLibeventAttach(ac, ce_loop_base(loop));
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return r;
}

/* Start connecting to host:port on the loop. */
ce_redis *ce_redis_connect(ce_loop *loop, const char *host, int port, ce_redis_state_cb cb, void *ctx) {
    return async_wrap(redisAsyncConnect(host, port), loop, cb, ctx);
}

/* Start connecting to a unix socket on the loop. */
ce_redis *ce_redis_connect_unix(ce_loop *loop, const char *path, ce_redis_state_cb cb, void *ctx) {
    return async_wrap(redisAsyncConnectUnix(path), loop, cb, ctx);
}

/* hiredis reply callback: hand the reply to Swift. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    command *cmd = privdata;
    if (!cmd->persistent || reply == NULL) cmd->r->pending--;
    if (!cmd->persistent) cmd->r->waiting--;
    cmd->r->since_ms = now_ms(); /* the link answers */
    cmd->cb(cmd->r, reply, cmd->privdata);
    if (!cmd->persistent || reply == NULL) free(cmd);
}

/* Send one command, already encoded as RESP (len bytes, followed by a NUL that is not
   sent: hiredis scans a formatted command as a C string); cb runs once, or for every
   reply while persistent (a SUBSCRIBE's messages). */
int ce_redis_send(ce_redis *r, const char *resp, size_t len, int persistent, ce_redis_reply_cb cb, void *privdata) {
    if (!r->ac || !r->connected) return -1;
    command *cmd = calloc(1, sizeof(*cmd));
    if (!cmd) return -1;
    cmd->r = r;
    cmd->cb = cb;
    cmd->privdata = privdata;
    cmd->persistent = persistent != 0;
    if (redisAsyncFormattedCommand(r->ac, on_reply, cmd, resp, len) != REDIS_OK) {
        free(cmd);
        return -1;
    }
    r->pending++;
    if (!cmd->persistent && r->waiting++ == 0) r->since_ms = now_ms();
    return 0;
}

/* Milliseconds the connection has owed a reply without answering anything (0: owes none). */
uint64_t ce_redis_stalled_ms(const ce_redis *r) {
    if (r->waiting <= 0) return 0;
    uint64_t now = now_ms();
    return now > r->since_ms ? now - r->since_ms : 0;
}

/* TCP keepalive on the connection's socket: probes after idle_s of silence, every
 * idle_s/3, dropped after 3 unanswered; unacknowledged writes fail after idle_s too. */
int ce_redis_keepalive(ce_redis *r, int idle_s) {
    if (!r->ac || idle_s <= 0) return -1;
    int fd = r->ac->c.fd, yes = 1, intvl = idle_s / 3 > 0 ? idle_s / 3 : 1, cnt = 3;
    unsigned user_timeout_ms = (unsigned)idle_s * 1000;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &yes, sizeof(yes)) < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
    return 0;
}

/* Replies still awaited on this connection. */
int ce_redis_pending(const ce_redis *r) { return r->pending; }

/* 1 while connected. */
int ce_redis_is_connected(const ce_redis *r) { return r->connected; }

/* Close (if open) and free the handle; pending callbacks get NULL first. */
void ce_redis_free(ce_redis *r) {
    if (!r) return;
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        ac->onDisconnect = NULL;
        ac->onConnect = NULL;
        redisAsyncFree(ac);
    }
    free(r);
}
