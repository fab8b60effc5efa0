/* redis_pubsub.c: a subscriber connection on a loop (hiredis async). Every channel
 * shares one callback and one context, so SUBSCRIBE/UNSUBSCRIBE of a channel per
 * awaited result allocate nothing that an UNSUBSCRIBE would leave behind. hiredis 0.14
 * asserts when a SUBSCRIBE's reply comes after an UNSUBSCRIBE left no channel: the caller
 * keeps one channel of its own subscribed for the connection's life. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct ce_pubsub {
    redisAsyncContext *ac; /* NULL once the connection is gone */
    ce_pubsub_cb cb;
    void *ctx;
};

static void report(ce_pubsub *p, int event, const char *a, size_t alen, const char *b, size_t blen) {
    p->cb(p, event, a, alen, b, blen, p->ctx);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    ce_pubsub *p = ac->data;
    if (status != REDIS_OK) {
        p->ac = NULL; /* hiredis frees the context after this returns */
        const char *e = ac->errstr;
        report(p, CE_PUBSUB_DOWN, e, strlen(e), NULL, 0);
        return;
    }
    report(p, CE_PUBSUB_UP, NULL, 0, NULL, 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    (void)status;
    ce_pubsub *p = ac->data;
    p->ac = NULL;
    const char *e = ac->errstr;
    report(p, CE_PUBSUB_DOWN, e, strlen(e), NULL, 0);
}

/* Every reply of a subscription: ["message", channel, payload], ["subscribe", channel, n],
 * ["unsubscribe", channel, n]; NULL when the connection goes away. */
static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    (void)ac;
    ce_pubsub *p = privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR) { /* a refused SUBSCRIBE: NOAUTH, NOPERM */
        report(p, CE_PUBSUB_ERROR, reply->str, reply->len, NULL, 0);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply *kind = reply->element[0], *ch = reply->element[1], *data = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING) return;
    if (strcasecmp(kind->str, "message") == 0 && data->type == REDIS_REPLY_STRING)
        report(p, CE_PUBSUB_MESSAGE, ch->str, ch->len, data->str, data->len);
    else if (strcasecmp(kind->str, "subscribe") == 0)
        report(p, CE_PUBSUB_SUBSCRIBED, ch->str, ch->len, NULL, 0);
    else if (strcasecmp(kind->str, "unsubscribe") == 0)
        report(p, CE_PUBSUB_UNSUBSCRIBED, ch->str, ch->len, NULL, 0);
}

/* A handshake command's reply (AUTH): an error is reported, the rest ignored. */
static void on_handshake(redisAsyncContext *ac, void *r, void *privdata) {
    (void)ac;
    ce_pubsub *p = privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR) report(p, CE_PUBSUB_ERROR, reply->str, reply->len, NULL, 0);
}

static ce_pubsub *pubsub_wrap(redisAsyncContext *ac, ce_loop *loop, ce_pubsub_cb cb, void *ctx) {
    if (!ac) return NULL;
    if (ac->err) { redisAsyncFree(ac); return NULL; }
    ce_pubsub *p = calloc(1, sizeof(*p));
    if (!p) { redisAsyncFree(ac); return NULL; }
    p->ac = ac;
    p->cb = cb;
    p->ctx = ctx;
    ac->data = p;
    redisLibeventAttach(ac, ce_loop_base(loop));
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return p;
}

ce_pubsub *ce_pubsub_connect(ce_loop *loop, const char *host, int port, ce_pubsub_cb cb, void *ctx) {
    return pubsub_wrap(redisAsyncConnect(host, port), loop, cb, ctx);
}

ce_pubsub *ce_pubsub_connect_unix(ce_loop *loop, const char *path, ce_pubsub_cb cb, void *ctx) {
    return pubsub_wrap(redisAsyncConnectUnix(path), loop, cb, ctx);
}

int ce_pubsub_auth(ce_pubsub *p, const char *user, size_t user_len, const char *password, size_t len) {
    if (!p->ac) return -1;
    int rc = user ? redisAsyncCommand(p->ac, on_handshake, p, "AUTH %b %b", user, user_len, password, len)
                  : redisAsyncCommand(p->ac, on_handshake, p, "AUTH %b", password, len);
    return rc == REDIS_OK ? 0 : -1;
}

int ce_pubsub_ping(ce_pubsub *p) {
    if (!p->ac) return -1;
    /* Before any SUBSCRIBE: a plain reply, so a NOAUTH reaches on_handshake (hiredis drops
     * an error reply to SUBSCRIBE itself). */
    return redisAsyncCommand(p->ac, on_handshake, p, "PING") == REDIS_OK ? 0 : -1;
}

int ce_pubsub_subscribe(ce_pubsub *p, const char *channel, size_t len) {
    if (!p->ac) return -1;
    return redisAsyncCommand(p->ac, on_reply, p, "SUBSCRIBE %b", channel, len) == REDIS_OK ? 0 : -1;
}

int ce_pubsub_unsubscribe(ce_pubsub *p, const char *channel, size_t len) {
    if (!p->ac) return -1;
    /* (P)UNSUBSCRIBE has no reply of its own: the channel's callback gets ["unsubscribe", …]. */
    return redisAsyncCommand(p->ac, NULL, NULL, "UNSUBSCRIBE %b", channel, len) == REDIS_OK ? 0 : -1;
}

int ce_pubsub_keepalive(ce_pubsub *p, int idle_s) {
    if (!p->ac || idle_s <= 0) return -1;
    int fd = p->ac->c.fd, yes = 1, intvl = idle_s / 3 > 0 ? idle_s / 3 : 1, cnt = 3;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &yes, sizeof(yes)) < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    return 0;
}

void ce_pubsub_free(ce_pubsub *p) {
    if (!p) return;
    if (p->ac) {
        redisAsyncContext *ac = p->ac;
        p->ac = NULL;
        ac->onDisconnect = NULL;
        ac->onConnect = NULL;
        redisAsyncFree(ac);
    }
    free(p);
}
