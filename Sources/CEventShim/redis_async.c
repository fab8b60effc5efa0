/* redis_async.c: a command connection on a ce_loop over a ce_link (redis_link.c: a
 * bufferevent, plain or TLS; hiredis only parses replies). Replies come in the order
 * commands were sent; a (P)SUBSCRIBE's callback stays for its channels' messages. The
 * handle outlives the link so Swift can hold it across disconnects. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* One command's callback. A (P)SUBSCRIBE stays (persistent) for its channels' messages. */
typedef struct command {
    struct command *next;  /* in the queue of commands owed a reply */
    struct command *snext; /* in the list of live subscriptions */
    ce_redis_reply_cb cb;
    void *privdata;
    int persistent;
    int owed; /* replies it still takes from the ordered stream (a SUBSCRIBE: one per channel) */
} command;

/* A subscribed channel (or pattern) and the SUBSCRIBE whose callback gets its messages. */
typedef struct channel {
    char *name;
    size_t len;
    int pattern;
    command *cmd;
} channel;

struct ce_redis {
    ce_link *link; /* NULL once freed; dead once the connection is gone */
    int connected;
    int pending;
    int waiting;       /* commands sent whose (one) reply has not come */
    uint64_t since_ms; /* when the oldest of them was sent, or the last reply came */
    command *head, *tail;
    command *subs; /* every persistent command still alive */
    channel *channels;
    size_t nchannels, capchannels;
    ce_redis_state_cb state_cb;
    void *ctx;
    int depth;        /* callbacks into Swift running */
    int free_pending; /* ce_redis_free ran inside one: freed once they return */
};

static void redis_destroy(ce_redis *r);

/* A callback into Swift, counted so a ce_redis_free inside it waits until it returns. */
#define CALL(r, expr) do { (r)->depth++; expr; (r)->depth--; } while (0)

/* After the callbacks of one event: 1 when the handle was freed in them (now gone). */
static int redis_released(ce_redis *r) {
    if (!r->free_pending) return 0;
    if (r->depth == 0) redis_destroy(r);
    return 1;
}

/* Monotonic milliseconds. */
static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static command *queue_pop(ce_redis *r) {
    command *c = r->head;
    if (!c) return NULL;
    r->head = c->next;
    if (!r->head) r->tail = NULL;
    c->next = NULL;
    return c;
}

static channel *channel_find(ce_redis *r, const char *name, size_t len, int pattern) {
    for (size_t i = 0; i < r->nchannels; i++) {
        channel *ch = &r->channels[i];
        if (ch->pattern == pattern && ch->len == len && memcmp(ch->name, name, len) == 0) return ch;
    }
    return NULL;
}

static void channel_remove(ce_redis *r, channel *ch) {
    free(ch->name);
    *ch = r->channels[--r->nchannels];
}

/* Point channel (or pattern) name at cmd; a channel subscribed again takes the newer callback. */
static int channel_set(ce_redis *r, const char *name, size_t len, int pattern, command *cmd) {
    channel *ch = channel_find(r, name, len, pattern);
    if (ch) {
        ch->cmd = cmd;
        return 0;
    }
    if (r->nchannels == r->capchannels) {
        size_t cap = r->capchannels ? r->capchannels * 2 : 8;
        channel *grown = realloc(r->channels, cap * sizeof(*grown));
        if (!grown) return -1;
        r->channels = grown;
        r->capchannels = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, name, len);
    copy[len] = 0;
    r->channels[r->nchannels++] = (channel){copy, len, pattern, cmd};
    return 0;
}

/* Forget every channel pointing at cmd. */
static void channels_drop_cmd(ce_redis *r, command *cmd) {
    for (size_t i = 0; i < r->nchannels;) {
        if (r->channels[i].cmd == cmd) channel_remove(r, &r->channels[i]);
        else i++;
    }
}

static void subs_unlink(ce_redis *r, command *cmd) {
    for (command **p = &r->subs; *p; p = &(*p)->snext) {
        if (*p == cmd) {
            *p = cmd->snext;
            return;
        }
    }
}

/* Every callback still owed gets NULL, in the order sent, then the subscriptions'. */
static void fail_all(ce_redis *r) {
    r->connected = 0;
    command *c;
    while ((c = queue_pop(r)) != NULL) {
        if (c->persistent) continue; /* in subs too: called below */
        r->pending--;
        r->waiting--;
        CALL(r, c->cb(r, NULL, c->privdata));
        free(c);
    }
    while (r->nchannels) channel_remove(r, &r->channels[0]);
    while ((c = r->subs) != NULL) {
        r->subs = c->snext;
        r->pending--;
        CALL(r, c->cb(r, NULL, c->privdata));
        free(c);
    }
    r->waiting = 0;
}

/* A pub/sub push: ["message", ch, data], ["pmessage", pat, ch, data], ["subscribe", ch, n]... */
enum { PUSH_NONE, PUSH_MESSAGE, PUSH_SUBSCRIBE, PUSH_UNSUBSCRIBE };
static int push_kind(const redisReply *rep, int *pattern) {
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) return PUSH_NONE;
    const redisReply *k = rep->element[0], *ch = rep->element[1];
    if (k->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING) return PUSH_NONE;
    const char *s = k->str;
    *pattern = (s[0] == 'p' || s[0] == 'P') && strcasecmp(s, "pong") != 0;
    if (*pattern) s++;
    if (strcasecmp(s, "message") == 0) return PUSH_MESSAGE;
    if (strcasecmp(s, "subscribe") == 0) return PUSH_SUBSCRIBE;
    if (strcasecmp(s, "unsubscribe") == 0) return PUSH_UNSUBSCRIBE;
    return PUSH_NONE;
}

static void on_reply(void *owner, void *reply) {
    ce_redis *r = owner;
    const redisReply *rep = reply;
    const ce_reply *out = reply;
    r->since_ms = now_ms(); /* the link answers */
    int pattern = 0, kind = r->subs ? push_kind(rep, &pattern) : PUSH_NONE;
    if (kind != PUSH_NONE) {
        channel *ch = channel_find(r, rep->element[1]->str, rep->element[1]->len, pattern);
        command *target = ch ? ch->cmd : NULL;
        if (kind == PUSH_SUBSCRIBE && r->head && r->head->persistent) {
            command *head = r->head;
            if (--head->owed <= 0) queue_pop(r);
            if (!target) target = head;
        }
        if (kind == PUSH_UNSUBSCRIBE && ch) channel_remove(r, ch);
        if (target) CALL(r, target->cb(r, out, target->privdata));
        redis_released(r);
        return;
    }
    command *c = queue_pop(r);
    if (!c) return; /* nothing owed this reply */
    if (c->persistent) { /* a refused SUBSCRIBE: its error, then it is done */
        channels_drop_cmd(r, c);
        subs_unlink(r, c);
        r->pending--;
        CALL(r, c->cb(r, out, c->privdata); c->cb(r, NULL, c->privdata));
        free(c);
        redis_released(r);
        return;
    }
    r->pending--;
    r->waiting--;
    CALL(r, c->cb(r, out, c->privdata));
    free(c);
    redis_released(r);
}

static void on_up(void *owner) {
    ce_redis *r = owner;
    r->connected = 1;
    CALL(r, r->state_cb(r, CE_REDIS_CONNECTED, NULL, r->ctx));
    redis_released(r);
}

static void on_down(void *owner, int was_up, const char *err) {
    ce_redis *r = owner;
    r->depth++;
    fail_all(r);
    if (!r->free_pending) r->state_cb(r, was_up ? CE_REDIS_DISCONNECTED : CE_REDIS_FAILED, err, r->ctx);
    r->depth--;
    redis_released(r);
}

static const ce_link_ops redis_ops = {on_up, on_reply, on_down};

static ce_redis *redis_new(ce_redis_state_cb cb, void *ctx) {
    ce_redis *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->state_cb = cb;
    r->ctx = ctx;
    return r;
}

/* Start connecting to host:port on the loop, over TLS when tls is set. */
ce_redis *ce_redis_connect_tls(ce_loop *loop, const char *host, int port, struct ce_tls_config *tls,
                               const char *server_name, int check_hostname, ce_redis_state_cb cb, void *ctx) {
    ce_redis *r = redis_new(cb, ctx);
    if (!r) return NULL;
    r->link = ce_link_open_tcp(ce_loop_base(loop), host, port, tls, server_name,
                               check_hostname, &redis_ops, r);
    if (!r->link) { free(r); return NULL; }
    return r;
}

/* Start connecting to host:port on the loop. */
ce_redis *ce_redis_connect(ce_loop *loop, const char *host, int port, ce_redis_state_cb cb, void *ctx) {
    return ce_redis_connect_tls(loop, host, port, NULL, NULL, 0, cb, ctx);
}

/* Start connecting to a unix socket on the loop. */
ce_redis *ce_redis_connect_unix(ce_loop *loop, const char *path, ce_redis_state_cb cb, void *ctx) {
    ce_redis *r = redis_new(cb, ctx);
    if (!r) return NULL;
    r->link = ce_link_open_unix(ce_loop_base(loop), path, &redis_ops, r);
    if (!r->link) { free(r); return NULL; }
    return r;
}

/* A (P)SUBSCRIBE's channels (or patterns) point at cmd; its count of confirmations owed. */
static int subscribe_channels(ce_redis *r, const char *resp, size_t len, command *cmd) {
    redisReader *reader = redisReaderCreate();
    void *parsed = NULL;
    int rc = -1;
    if (!reader) return -1;
    if (redisReaderFeed(reader, resp, len) == REDIS_OK && redisReaderGetReply(reader, &parsed) == REDIS_OK &&
        parsed) {
        const redisReply *cmdv = parsed;
        if (cmdv->type == REDIS_REPLY_ARRAY && cmdv->elements >= 1 && cmdv->element[0]->type == REDIS_REPLY_STRING) {
            int pattern = cmdv->element[0]->str[0] == 'p' || cmdv->element[0]->str[0] == 'P';
            rc = 0;
            for (size_t i = 1; i < cmdv->elements && rc == 0; i++) {
                const redisReply *ch = cmdv->element[i];
                if (ch->type == REDIS_REPLY_STRING) rc = channel_set(r, ch->str, ch->len, pattern, cmd);
            }
            cmd->owed = cmdv->elements > 1 ? (int)cmdv->elements - 1 : 1;
        }
    }
    if (parsed) freeReplyObject(parsed);
    redisReaderFree(reader);
    return rc;
}

/* Send one command, already encoded as RESP (len bytes; the NUL after them is not sent);
   cb runs once, or for every reply while persistent (a SUBSCRIBE's messages). */
int ce_redis_send(ce_redis *r, const char *resp, size_t len, int persistent, ce_redis_reply_cb cb, void *privdata) {
    if (!r->link || !r->connected || !ce_link_is_up(r->link)) return -1;
    command *cmd = calloc(1, sizeof(*cmd));
    if (!cmd) return -1;
    cmd->cb = cb;
    cmd->privdata = privdata;
    cmd->persistent = persistent != 0;
    cmd->owed = 1;
    if (cmd->persistent && subscribe_channels(r, resp, len, cmd) != 0) {
        channels_drop_cmd(r, cmd);
        free(cmd);
        return -1;
    }
    if (ce_link_write(r->link, resp, len) != 0) {
        channels_drop_cmd(r, cmd);
        free(cmd);
        return -1;
    }
    if (r->tail) r->tail->next = cmd;
    else r->head = cmd;
    r->tail = cmd;
    if (cmd->persistent) {
        cmd->snext = r->subs;
        r->subs = cmd;
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
    int fd = r->link ? ce_link_fd(r->link) : -1;
    if (fd < 0 || idle_s <= 0) return -1;
    int yes = 1, intvl = idle_s / 3 > 0 ? idle_s / 3 : 1, cnt = 3;
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

/* Close (if open) and free the handle; pending callbacks get NULL first. Inside one of
   its callbacks, the rest of them get NULL now and the handle goes once they return. */
void ce_redis_free(ce_redis *r) {
    if (!r || r->free_pending) return;
    r->free_pending = 1;
    ce_link *link = r->link;
    r->link = NULL;
    ce_link_free(link);
    r->depth++;
    fail_all(r);
    r->depth--;
    redis_released(r);
}

static void redis_destroy(ce_redis *r) {
    free(r->channels);
    free(r);
}
