/* redis_pubsub.c: a subscriber connection on a loop over a ce_link (redis_link.c: plain
 * or TLS). Every channel shares one callback and one context, so SUBSCRIBE/UNSUBSCRIBE
 * of a channel per awaited result allocate nothing an UNSUBSCRIBE would leave behind.
 * Replies are reported by their shape: ["message", channel, payload], ["subscribe",
 * channel, n], ["unsubscribe", channel, n]; any error reply (a refused AUTH, PING or
 * SUBSCRIBE: NOAUTH, NOPERM) as ERROR; the rest (+OK, +PONG, ["pong", ""]) is ignored. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct ce_pubsub {
    ce_link *link;
    ce_pubsub_cb cb;
    void *ctx;
};

static void report(ce_pubsub *p, int event, const char *a, size_t alen, const char *b, size_t blen) {
    p->cb(p, event, a, alen, b, blen, p->ctx);
}

static void on_up(void *owner) { report(owner, CE_PUBSUB_UP, NULL, 0, NULL, 0); }

static void on_down(void *owner, int was_up, const char *err) {
    (void)was_up;
    report(owner, CE_PUBSUB_DOWN, err, strlen(err), NULL, 0);
}

static void on_reply(void *owner, void *r) {
    ce_pubsub *p = owner;
    redisReply *reply = r;
    if (reply->type == REDIS_REPLY_ERROR) {
        report(p, CE_PUBSUB_ERROR, reply->str, reply->len, NULL, 0);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply *kind = reply->element[0], *ch = reply->element[1], *data = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING) return;
    if (strcasecmp(kind->str, "message") == 0 && data->type == REDIS_REPLY_STRING)
        report(p, CE_PUBSUB_MESSAGE, ch->str, ch->len, data->str, data->len);
    else if (strcasecmp(kind->str, "subscribe") == 0)
        report(p, CE_PUBSUB_SUBSCRIBED, ch->str, ch->len, NULL, 0);
    else if (strcasecmp(kind->str, "unsubscribe") == 0)
        report(p, CE_PUBSUB_UNSUBSCRIBED, ch->str, ch->len, NULL, 0);
}

static const ce_link_ops pubsub_ops = {on_up, on_reply, on_down};

static ce_pubsub *pubsub_new(ce_pubsub_cb cb, void *ctx) {
    ce_pubsub *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->cb = cb;
    p->ctx = ctx;
    return p;
}

ce_pubsub *ce_pubsub_connect_tls(ce_loop *loop, const char *host, int port, struct ce_tls_config *tls,
                                 const char *server_name, int check_hostname, ce_pubsub_cb cb, void *ctx) {
    ce_pubsub *p = pubsub_new(cb, ctx);
    if (!p) return NULL;
    p->link = ce_link_open_tcp(ce_loop_base(loop), host, port, tls, server_name, check_hostname, &pubsub_ops, p);
    if (!p->link) { free(p); return NULL; }
    return p;
}

ce_pubsub *ce_pubsub_connect(ce_loop *loop, const char *host, int port, ce_pubsub_cb cb, void *ctx) {
    return ce_pubsub_connect_tls(loop, host, port, NULL, NULL, 0, cb, ctx);
}

ce_pubsub *ce_pubsub_connect_unix(ce_loop *loop, const char *path, ce_pubsub_cb cb, void *ctx) {
    ce_pubsub *p = pubsub_new(cb, ctx);
    if (!p) return NULL;
    p->link = ce_link_open_unix(ce_loop_base(loop), path, &pubsub_ops, p);
    if (!p->link) { free(p); return NULL; }
    return p;
}

/* Send one command of argc arguments. */
static int send_argv(ce_pubsub *p, int argc, const char **argv, const size_t *lens) {
    if (!p->link) return -1;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0 || !cmd) return -1;
    int rc = ce_link_write(p->link, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

int ce_pubsub_auth(ce_pubsub *p, const char *user, size_t user_len, const char *password, size_t len) {
    const char *argv[3] = {"AUTH", user, password};
    size_t lens[3] = {4, user_len, len};
    if (user) return send_argv(p, 3, argv, lens);
    argv[1] = password;
    lens[1] = len;
    return send_argv(p, 2, argv, lens);
}

int ce_pubsub_ping(ce_pubsub *p) {
    /* Before any SUBSCRIBE: a plain reply, so a NOAUTH is reported. */
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    return send_argv(p, 1, argv, lens);
}

int ce_pubsub_subscribe(ce_pubsub *p, const char *channel, size_t len) {
    const char *argv[2] = {"SUBSCRIBE", channel};
    size_t lens[2] = {9, len};
    return send_argv(p, 2, argv, lens);
}

int ce_pubsub_unsubscribe(ce_pubsub *p, const char *channel, size_t len) {
    /* No reply of its own: the channel's ["unsubscribe", …] reports it. */
    const char *argv[2] = {"UNSUBSCRIBE", channel};
    size_t lens[2] = {11, len};
    return send_argv(p, 2, argv, lens);
}

int ce_pubsub_keepalive(ce_pubsub *p, int idle_s) {
    int fd = p->link ? ce_link_fd(p->link) : -1;
    if (fd < 0 || idle_s <= 0) return -1;
    int yes = 1, intvl = idle_s / 3 > 0 ? idle_s / 3 : 1, cnt = 3;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &yes, sizeof(yes)) < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    return 0;
}

void ce_pubsub_free(ce_pubsub *p) {
    if (!p) return;
    ce_link_free(p->link);
    free(p);
}
