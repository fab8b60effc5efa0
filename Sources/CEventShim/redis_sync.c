/* redis_sync.c: a blocking hiredis connection for one thread; commands are
 * appended to the output buffer and their replies read in order (pipelining).
 * Under TLS, OpenSSL works on memory BIOs only: what hiredis queued is sealed into
 * records before a send, and what arrives is unsealed into the reader's feed; the
 * socket and io_uring paths move those records as they move plain RESP. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

struct ce_redis_sync {
    redisContext *ctx;
    ce_redis_uring *uring; /* NULL: plain socket reads and writes */
    ce_reply_arena *arena; /* where the reader builds replies; reset by ce_redis_sync_release */
    int timeout_ms;
    ce_feed received; /* plaintext received (TLS: unsealed), fed to the reader in pieces */
    SSL *ssl;         /* NULL: a plaintext link */
    BIO *rbio, *wbio; /* owned by ssl: records received, records to send */
    sds sealed;       /* TLS records waiting to be sent */
    char *records;    /* TLS: where the socket's receives land before the read BIO */
    int reply_within_ms;  /* > 0: each read's reply must arrive whole within this (socket path) */
    long long deadline;   /* CLOCK_MONOTONIC ms the current read must end by; 0: none */
    size_t reply_limit;   /* > 0: the most bytes received while waiting for one reply */
    size_t reply_bytes;   /* received since the last reply was handed out */
};

enum { RECORDS_ROOM = 64 * 1024, VERDICT_WAIT_MS = 200 };

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

/* Fail the context with why an SSL call returning rc failed; REDIS_ERR. */
static int tls_fail(ce_redis_sync *r, int rc) {
    char why[256];
    return ce_redis_fail(r->ctx, REDIS_ERR_IO, ce_tls_error_text(r->ssl, rc, why, sizeof(why)));
}

/* Move the records OpenSSL wrote to the write BIO onto r->sealed. */
static int take_records(ce_redis_sync *r) {
    size_t pending = BIO_ctrl_pending(r->wbio);
    if (!pending) return REDIS_OK;
    sds grown = sdsMakeRoomFor(r->sealed, pending);
    if (!grown) return ce_redis_fail(r->ctx, REDIS_ERR_OOM, "Out of memory");
    r->sealed = grown;
    int n = BIO_read(r->wbio, grown + sdslen(grown), (int)pending);
    if (n > 0) sdsIncrLen(grown, n);
    return REDIS_OK;
}

/* The bytes to send next: hiredis' output buffer, or (TLS) it sealed into records. NULL on error. */
static sds *outgoing(ce_redis_sync *r) {
    redisContext *c = r->ctx;
    if (!r->ssl) return &c->obuf;
    size_t len = sdslen(c->obuf);
    if (len) ERR_clear_error();
    for (size_t done = 0; done < len;) {
        int chunk = len - done > (1u << 30) ? 1 << 30 : (int)(len - done);
        int n = SSL_write(r->ssl, c->obuf + done, chunk); /* a memory BIO takes all of it */
        if (n <= 0) {
            tls_fail(r, n);
            return NULL;
        }
        done += (size_t)n;
    }
    sdsclear(c->obuf);
    return take_records(r) == REDIS_OK ? &r->sealed : NULL;
}

/* Send all of out over the socket and empty it, keeping its memory (hiredis' own
 * write frees the buffer and starts a new one each time it drains). */
static int socket_send(redisContext *c, sds *out) {
    size_t len = sdslen(*out), sent = 0;
    while (sent < len) {
        ssize_t n = send(c->fd, *out + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ce_redis_fail(c, REDIS_ERR_IO, strerror(errno));
        sent += (size_t)n;
    }
    sdsclear(*out);
    return REDIS_OK;
}

/* One receive from the socket into in (blocking, within the socket's timeout). */
static int socket_receive(redisContext *c, char *in, size_t room, size_t *got) {
    for (;;) {
        ssize_t n = recv(c->fd, in, room, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ce_redis_fail(c, REDIS_ERR_IO, strerror(errno));
        if (n == 0) return ce_redis_fail(c, REDIS_ERR_EOF, "Server closed the connection");
        *got = (size_t)n;
        return REDIS_OK;
    }
}

/* Unseal records already received into the feed (only once every byte of it is fed):
 * 1 when plaintext came out, 0 when a whole record is still to arrive, REDIS_ERR. */
static int unseal(ce_redis_sync *r) {
    size_t room;
    char *space = ce_feed_space(&r->received, &room);
    ERR_clear_error(); /* SSL_get_error reads the thread's queue: nothing stale may be in it */
    int n = SSL_read(r->ssl, space, (int)room);
    if (n > 0) {
        ce_feed_received(&r->received, (size_t)n);
        return 1;
    }
    int kind = SSL_get_error(r->ssl, n);
    if (kind == SSL_ERROR_WANT_READ) return 0;
    if (kind == SSL_ERROR_ZERO_RETURN) return ce_redis_fail(r->ctx, REDIS_ERR_EOF, "Server closed the connection");
    return tls_fail(r, n);
}

/* Milliseconds on CLOCK_MONOTONIC. */
static long long monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long the next receive may wait: the read timeout, shortened to the reply's deadline. */
static int wait_ms(const ce_redis_sync *r) {
    if (!r->deadline) return r->timeout_ms;
    long long left = r->deadline - monotonic_ms();
    if (left < 1) left = 1;
    return r->timeout_ms > 0 && r->timeout_ms < left ? r->timeout_ms : (int)left;
}

/* With a reply deadline: wait until the socket is readable before it passes (the read
 * timeout still bounds each receive). REDIS_ERR "no reply within N ms" when it passes. */
static int await_bytes(ce_redis_sync *r) {
    if (!r->deadline) return REDIS_OK;
    for (;;) {
        long long left = r->deadline - monotonic_ms();
        struct pollfd p = { r->ctx->fd, POLLIN, 0 };
        int n = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (n < 0 && errno == EINTR) continue;
        if (n > 0) return REDIS_OK;
        if (n < 0) return ce_redis_fail(r->ctx, REDIS_ERR_IO, strerror(errno));
        char why[64];
        snprintf(why, sizeof(why), "no reply within %d ms", r->reply_within_ms);
        return ce_redis_fail(r->ctx, REDIS_ERR_IO, why);
    }
}

/* Send what is queued, then receive once from the socket (before the reply's deadline). */
static int socket_round(ce_redis_sync *r, sds *out, char *in, size_t room, size_t *got) {
    if (socket_send(r->ctx, out) != REDIS_OK || await_bytes(r) != REDIS_OK) return REDIS_ERR;
    return socket_receive(r->ctx, in, room, got);
}

/* The next reply: from what was received, else after sending what is queued and
 * receiving once more (through io_uring or the socket), as often as it takes. */
static int get_reply(ce_redis_sync *r, void **reply) {
    redisContext *c = r->ctx;
    for (;;) {
        if (ce_feed_reply(&r->received, c, reply) != REDIS_OK) return REDIS_ERR;
        if (*reply) {
            r->reply_bytes = 0;
            return REDIS_OK;
        }
        if (r->ssl) {
            int unsealed = unseal(r);
            if (unsealed == REDIS_ERR) return REDIS_ERR;
            if (unsealed) continue;
        }
        sds *out = outgoing(r);
        if (!out) return REDIS_ERR;
        size_t room, got;
        char *in = r->ssl ? (room = RECORDS_ROOM, r->records) : ce_feed_space(&r->received, &room);
        int rc = r->uring ? ce_redis_uring_round(r->uring, c, out, in, room, wait_ms(r), &got)
                          : socket_round(r, out, in, room, &got);
        if (rc != REDIS_OK) return REDIS_ERR;
        if (r->reply_limit && (r->reply_bytes += got) > r->reply_limit) {
            char why[128];
            snprintf(why, sizeof(why), "reply larger than %zu bytes", r->reply_limit);
            return ce_redis_fail(c, REDIS_ERR_PROTOCOL, why);
        }
        if (!r->ssl) ce_feed_received(&r->received, got);
        else if (BIO_write(r->rbio, in, (int)got) != (int)got) return ce_redis_fail(c, REDIS_ERR_OOM, "Out of memory");
    }
}

/* Flush and read the next reply (blocks). 0 ok, -1 on I/O or protocol error. */
int ce_redis_sync_read(ce_redis_sync *r, ce_reply **out) {
    void *reply = NULL;
    r->deadline = r->reply_within_ms > 0 ? monotonic_ms() + r->reply_within_ms : 0;
    int rc = get_reply(r, &reply);
    r->deadline = 0;
    if (rc != REDIS_OK) return -1;
    *out = reply;
    return 0;
}

/* Done with the reply ce_redis_sync_read gave: its objects' memory is reused by the next. */
void ce_redis_sync_release(ce_redis_sync *r, ce_reply *reply) {
    (void)reply;
    ce_reply_arena_reset(r->arena);
}

/* Write everything queued without reading (its replies are read later). 0 ok, -1 on error. */
int ce_redis_sync_flush(ce_redis_sync *r) {
    sds *out = outgoing(r);
    if (!out) return -1;
    int rc = r->uring ? ce_redis_uring_send(r->uring, r->ctx, out) : socket_send(r->ctx, out);
    return rc == REDIS_OK ? 0 : -1;
}

/* TLS 1.3 ends the client's handshake before the server has judged the client's certificate:
 * its verdict (session tickets, or an alert) follows. Take it before any command is sent, up
 * to VERDICT_WAIT_MS: a command sent first may reach a server that already hung up, whose
 * reset would then hide the alert that says why. */
static void await_verdict(ce_redis_sync *r) {
    struct pollfd p = { r->ctx->fd, POLLIN, 0 };
    int wait = r->timeout_ms > 0 && r->timeout_ms < VERDICT_WAIT_MS ? r->timeout_ms : VERDICT_WAIT_MS;
    if (poll(&p, 1, wait) != 1) return;
    ssize_t n = recv(r->ctx->fd, r->records, RECORDS_ROOM, MSG_DONTWAIT);
    if (n > 0) BIO_write(r->rbio, r->records, (int)n);
}

/* Encrypt the link: a TLS handshake over the blocking socket (within the connect timeout),
 * right after connecting, before any command and before ce_redis_sync_use_uring.
 * 0, or -1 with why in err ("certificate verify failed: ..."). */
int ce_redis_sync_start_tls(ce_redis_sync *r, ce_tls_config *config, const char *server_name, int check_hostname,
                            char *err, size_t err_len) {
    redisContext *c = r->ctx;
    if (r->ssl || r->uring || sdslen(c->obuf)) {
        snprintf(err, err_len, "TLS must start right after connecting");
        return -1;
    }
    r->ssl = ce_tls_session_new(config, server_name, check_hostname);
    r->rbio = BIO_new(BIO_s_mem());
    r->wbio = BIO_new(BIO_s_mem());
    r->sealed = sdsempty();
    r->records = malloc(RECORDS_ROOM);
    if (!r->ssl || !r->rbio || !r->wbio || !r->sealed || !r->records) {
        char why[256];
        snprintf(err, err_len, "cannot start TLS: %s", ce_tls_error_text(NULL, 0, why, sizeof(why)));
        BIO_free(r->rbio); /* each NULL-safe */
        BIO_free(r->wbio);
        SSL_free(r->ssl);
        r->ssl = NULL;
        return -1;
    }
    SSL_set_bio(r->ssl, r->rbio, r->wbio);
    struct timeval tv = { r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000 };
    redisSetTimeout(c, tv);
    ERR_clear_error();
    for (;;) {
        int rc = SSL_do_handshake(r->ssl);
        int kind = SSL_get_error(r->ssl, rc);
        if (take_records(r) != REDIS_OK || socket_send(c, &r->sealed) != REDIS_OK) break;
        if (rc == 1) {
            if (SSL_version(r->ssl) == TLS1_3_VERSION) await_verdict(r);
            return 0;
        }
        if (kind != SSL_ERROR_WANT_READ) {
            tls_fail(r, rc);
            break;
        }
        size_t got;
        if (socket_receive(c, r->records, RECORDS_ROOM, &got) != REDIS_OK) break;
        BIO_write(r->rbio, r->records, (int)got);
    }
    snprintf(err, err_len, "%s", c->errstr);
    return -1;
}

/* 1 when a reply may be read without the socket becoming readable: received bytes not yet
 * parsed (plaintext, or TLS records not yet unsealed). */
int ce_redis_sync_buffered(const ce_redis_sync *r) {
    const redisReader *reader = r->ctx->reader;
    if (r->received.fed < r->received.got || reader->pos < reader->len) return 1;
    return r->ssl && (SSL_pending(r->ssl) > 0 || BIO_ctrl_pending(r->rbio) > 0);
}

/* Set the read timeout for blocking commands. */
int ce_redis_sync_set_timeout(ce_redis_sync *r, int timeout_ms) {
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    r->timeout_ms = timeout_ms;
    return redisSetTimeout(r->ctx, tv) == REDIS_OK ? 0 : -1;
}

/* Bound each ce_redis_sync_read: its reply must arrive whole within within_ms of the call
 * (a server trickling a reply fails it with "no reply within N ms"); 0: no bound. */
void ce_redis_sync_set_reply_deadline(ce_redis_sync *r, int within_ms) {
    r->reply_within_ms = within_ms > 0 ? within_ms : 0;
}

/* Fail the link when more than bytes arrive while one reply is awaited ("reply larger than
 * N bytes"): for links whose answers are short; 0: no limit. */
void ce_redis_sync_set_reply_limit(ce_redis_sync *r, size_t bytes) {
    r->reply_limit = bytes;
    r->reply_bytes = 0;
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
    SSL_free(r->ssl); /* and its BIOs */
    sdsfree(r->sealed);
    free(r->records);
    ce_redis_uring_free(r->uring);
    redisFree(r->ctx);
    ce_reply_arena_free(r->arena);
    free(r);
}
