/* redis_link.c: one Redis link on a loop, shared by redis_async.c and redis_pubsub.c.
 * A non-blocking connect (TCP or unix socket) watched by an event, then a libevent socket
 * bufferevent carries the bytes. TLS runs over memory BIOs on top of it (handshake first):
 * what the socket reads goes into the SSL's read BIO, what SSL writes leaves its write BIO
 * for the bufferevent's output, so many records move per read(2)/write(2) (libevent's
 * OpenSSL bufferevent reads each record with two reads and writes on every call). Replies
 * are parsed with hiredis' RESP reader only. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct ce_link {
    struct event_base *base;
    int fd;                   /* -1 once closed */
    struct event *connecting; /* the TCP/unix connect in progress */
    struct bufferevent *bev;  /* once connected (TLS: handshake in progress until up) */
    redisReader *reader;
    /* TLS: the session over memory BIOs; commands written during a loop turn are encrypted
       together at its end (a record per turn, not per command). */
    SSL *ssl;
    BIO *rbio, *wbio;
    struct evbuffer *staged;
    struct event *flush;
    struct ce_tls_config *tls;
    char server_name[256];
    char peer[300]; /* host:port, for messages */
    int check_hostname;
    int up;   /* connected (TLS: handshake done) */
    int dead; /* failed or closed: no callback any more */
    int depth;  /* owner callbacks running */
    int freed;  /* ce_link_free ran inside one: freed once it returns */
    const ce_link_ops *ops;
    void *owner;
    char err[512];
};

static void link_destroy(ce_link *l);
static int link_released(ce_link *l);

static void link_fail(ce_link *l, const char *why);
static void tls_error_text(ce_link *l, char *buf, size_t len);

/* Drop the TLS session and write staging. */
static void link_unstage(ce_link *l) {
    if (l->flush) event_free(l->flush);
    if (l->staged) evbuffer_free(l->staged);
    if (l->ssl) SSL_free(l->ssl); /* frees both BIOs */
    l->flush = NULL;
    l->staged = NULL;
    l->ssl = NULL;
}

/* Ciphertext SSL produced goes to the socket: read out of the write BIO straight into the
   bufferevent's output. (Never BIO_reset: on OpenSSL 3.0 it zeroes the BIO's whole buffer,
   which never shrinks, so after one large command every flush would clear that much.) */
static int tls_pump_out(ce_link *l) {
    struct evbuffer *out = bufferevent_get_output(l->bev);
    size_t pending;
    while ((pending = BIO_ctrl_pending(l->wbio)) > 0) {
        if (pending > (1u << 30)) pending = 1u << 30;
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(out, (ev_ssize_t)pending, &v, 1) < 1) return -1;
        int n = BIO_read(l->wbio, v.iov_base, (int)(v.iov_len < pending ? v.iov_len : pending));
        if (n <= 0) return -1;
        v.iov_len = (size_t)n;
        if (evbuffer_commit_space(out, &v, 1) != 0) return -1;
    }
    return 0;
}

/* An SSL call failed (not for want of bytes): fail the link with the reason. */
static void tls_fail(ce_link *l) {
    char why[512];
    tls_error_text(l, why, sizeof(why));
    link_fail(l, why);
}

/* End of a loop turn's writes: the staged commands are encrypted together and sent. */
static void link_flush(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ce_link *l = arg;
    size_t n = l->staged ? evbuffer_get_length(l->staged) : 0;
    if (!l->bev || l->dead || n == 0) return;
    unsigned char *data = evbuffer_pullup(l->staged, -1);
    ERR_clear_error();
    int rc = data ? SSL_write(l->ssl, data, (int)n) : -1;
    if (rc <= 0) return tls_fail(l);
    evbuffer_drain(l->staged, n);
    if (tls_pump_out(l) != 0) link_fail(l, "Out of memory");
}

/* After an owner callback: 1 when the owner freed the link in it (now gone: touch nothing). */
static int link_released(ce_link *l) {
    if (!l->freed) return 0;
    if (l->depth == 0) link_destroy(l);
    return 1;
}

/* Close everything and tell the owner (once). The caller touches l no more. */
static void link_fail(ce_link *l, const char *why) {
    if (l->dead) return;
    l->dead = 1;
    snprintf(l->err, sizeof(l->err), "%s", why);
    if (l->connecting) event_free(l->connecting);
    l->connecting = NULL;
    if (l->bev) bufferevent_free(l->bev); /* closes the socket (and frees the SSL) */
    else if (l->fd >= 0) close(l->fd);
    l->bev = NULL;
    l->fd = -1;
    int was_up = l->up;
    l->up = 0;
    l->depth++;
    l->ops->down(l->owner, was_up, l->err);
    l->depth--;
    link_released(l);
}

/* Why a TLS link failed: the certificate check, or OpenSSL's error queue. */
static void tls_error_text(ce_link *l, char *buf, size_t len) {
    /* The verify result only means something when the peer was verified (not ssl_cert_reqs=none). */
    long verify = l->ssl && (SSL_get_verify_mode(l->ssl) & SSL_VERIFY_PEER) ? SSL_get_verify_result(l->ssl) : X509_V_OK;
    unsigned long e;
    const char *reason = NULL; /* the first queued error OpenSSL names ("tlsv13 alert certificate required") */
    while ((e = ERR_get_error()) != 0)
        if (!reason) reason = ERR_reason_error_string(e);
    char stage[400];
    if (l->up) snprintf(stage, sizeof(stage), "TLS with %s", l->peer);
    else snprintf(stage, sizeof(stage), "TLS handshake with %s failed", l->peer);
    if (!l->up && verify != X509_V_OK)
        snprintf(buf, len, "%s: certificate verify failed (%s)", stage, X509_verify_cert_error_string(verify));
    else snprintf(buf, len, "%s: %s", stage, reason ? reason : "protocol error");
}

static void link_deliver(ce_link *l);
static void tls_handshake(ce_link *l);

/* Decrypt what the read BIO holds into the reader; 0, or -1 once the link failed. */
static int tls_read(ce_link *l) {
    char buf[16384];
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(l->ssl, buf, sizeof(buf));
        if (n > 0) {
            if (redisReaderFeed(l->reader, buf, (size_t)n) != REDIS_OK) {
                link_fail(l, "Out of memory");
                return -1;
            }
            continue;
        }
        int e = SSL_get_error(l->ssl, n);
        if (e == SSL_ERROR_WANT_READ) break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            link_fail(l, "Server closed the connection");
            return -1;
        }
        tls_fail(l);
        return -1;
    }
    if (tls_pump_out(l) != 0) { /* a key update or ticket answer */
        link_fail(l, "Out of memory");
        return -1;
    }
    return 0;
}

/* Bytes from the socket: into the reader (TLS: through the session first); every complete
   reply to the owner. */
static void link_read(struct bufferevent *bev, void *arg) {
    ce_link *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v[16];
    while (evbuffer_get_length(in) > 0) {
        int n = evbuffer_peek(in, -1, NULL, v, 16);
        if (n > 16) n = 16;
        size_t fed = 0;
        for (int i = 0; i < n; i++) {
            int ok = l->ssl ? BIO_write(l->rbio, v[i].iov_base, (int)v[i].iov_len) == (int)v[i].iov_len
                            : redisReaderFeed(l->reader, v[i].iov_base, v[i].iov_len) == REDIS_OK;
            if (!ok) {
                link_fail(l, "Out of memory");
                return;
            }
            fed += v[i].iov_len;
        }
        evbuffer_drain(in, fed);
    }
    if (l->ssl && !l->up) return tls_handshake(l);
    if (l->ssl && tls_read(l) != 0) return;
    link_deliver(l);
}

/* Every complete reply the reader holds, to the owner. */
static void link_deliver(ce_link *l) {
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
            char why[200];
            snprintf(why, sizeof(why), "Protocol error: %s", l->reader->errstr);
            link_fail(l, why);
            return;
        }
        if (!reply) return;
        l->depth++;
        l->ops->reply(l->owner, reply);
        l->depth--;
        freeReplyObject(reply);
        if (link_released(l) || l->dead) return;
    }
}

/* Connected (TLS: handshake done), end of stream, or an error. */
static void link_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    ce_link *l = arg;
    int sock_err = EVUTIL_SOCKET_ERROR();
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) return;
    char why[512];
    const char *text = (what & BEV_EVENT_EOF) ? "Server closed the connection" : strerror(sock_err ? sock_err : EIO);
    if (l->ssl && !l->up) snprintf(why, sizeof(why), "TLS handshake with %s failed: %s", l->peer, text);
    else snprintf(why, sizeof(why), "%s", text);
    link_fail(l, why);
}

/* The link is up: tell the owner. */
static void link_up(ce_link *l) {
    l->up = 1;
    l->depth++;
    l->ops->up(l->owner);
    l->depth--;
}

/* One handshake step (after each read); up once done. */
static void tls_handshake(ce_link *l) {
    ERR_clear_error();
    int rc = SSL_do_handshake(l->ssl);
    int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(l->ssl, rc);
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return tls_fail(l);
    if (tls_pump_out(l) != 0) return link_fail(l, "Out of memory");
    if (rc != 1) return;
    link_up(l);
    if (link_released(l) || l->dead) return;
    /* Replies (or a refusal) may have come with the handshake's last bytes. */
    if (tls_read(l) == 0) link_deliver(l);
}

/* The socket is connected: carry bytes over a bufferevent (TLS: handshake first). */
static void link_stream(ce_link *l) {
    l->bev = bufferevent_socket_new(l->base, l->fd, BEV_OPT_CLOSE_ON_FREE);
    if (!l->bev) return link_fail(l, "Out of memory");
    bufferevent_setcb(l->bev, link_read, NULL, link_event, l);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    if (!l->tls) {
        link_up(l);
        link_released(l);
        return;
    }
    l->ssl = ce_tls_session_new(l->tls, l->server_name, l->check_hostname);
    l->rbio = BIO_new(BIO_s_mem());
    l->wbio = BIO_new(BIO_s_mem());
    l->staged = evbuffer_new();
    l->flush = event_new(l->base, -1, 0, link_flush, l);
    if (!l->ssl || !l->rbio || !l->wbio || !l->staged || !l->flush) {
        if (l->ssl && l->rbio && l->wbio) SSL_set_bio(l->ssl, l->rbio, l->wbio);
        else {
            if (l->rbio) BIO_free(l->rbio);
            if (l->wbio) BIO_free(l->wbio);
        }
        char why[400];
        snprintf(why, sizeof(why), "TLS handshake with %s failed: cannot create a TLS session", l->peer);
        return link_fail(l, why);
    }
    BIO_set_mem_eof_return(l->rbio, -1); /* empty: "want read", not end of stream */
    SSL_set_bio(l->ssl, l->rbio, l->wbio);
    SSL_set_connect_state(l->ssl);
    tls_handshake(l); /* the ClientHello */
}

/* The non-blocking connect finished (or failed). */
static void link_connected(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    ce_link *l = arg;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    event_free(l->connecting);
    l->connecting = NULL;
    if (err) return link_fail(l, strerror(err));
    link_stream(l);
}

/* Start a non-blocking connect to addr; NULL (and the reason in err) when it fails at once. */
static ce_link *link_start(struct event_base *base, const struct sockaddr *addr, socklen_t alen,
                           struct ce_tls_config *tls, const char *server_name, int check_hostname,
                           const char *peer, const ce_link_ops *ops, void *owner) {
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    if (addr->sa_family != AF_UNIX) {
        int yes = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    }
    if (connect(fd, addr, alen) < 0 && errno != EINPROGRESS) {
        close(fd);
        return NULL;
    }
    ce_link *l = calloc(1, sizeof(*l));
    if (!l) { close(fd); return NULL; }
    l->base = base;
    l->fd = fd;
    l->tls = tls;
    l->check_hostname = check_hostname;
    snprintf(l->server_name, sizeof(l->server_name), "%s", server_name ? server_name : "");
    snprintf(l->peer, sizeof(l->peer), "%s", peer);
    l->ops = ops;
    l->owner = owner;
    l->reader = redisReaderCreate();
    l->connecting = event_new(base, fd, EV_WRITE, link_connected, l);
    if (!l->reader || !l->connecting || event_add(l->connecting, NULL) < 0) {
        if (l->reader) redisReaderFree(l->reader);
        if (l->connecting) event_free(l->connecting);
        close(fd);
        free(l);
        return NULL;
    }
    return l;
}

/* Open a link to host:port (a numeric address; a name is resolved here, blocking). */
ce_link *ce_link_open_tcp(struct event_base *base, const char *host, int port, struct ce_tls_config *tls,
                          const char *server_name, int check_hostname, const ce_link_ops *ops, void *owner) {
    struct addrinfo hints = {0}, *res = NULL;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, service, &hints, &res) != 0) {
        hints.ai_flags = AI_NUMERICSERV;
        if (getaddrinfo(host, service, &hints, &res) != 0) return NULL;
    }
    char peer[300];
    snprintf(peer, sizeof(peer), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    ce_link *l = NULL;
    for (struct addrinfo *a = res; a && !l; a = a->ai_next)
        l = link_start(base, a->ai_addr, a->ai_addrlen, tls, server_name ? server_name : host, check_hostname,
                       peer, ops, owner);
    freeaddrinfo(res);
    return l;
}

/* Open a link to a unix socket. */
ce_link *ce_link_open_unix(struct event_base *base, const char *path, const ce_link_ops *ops, void *owner) {
    struct sockaddr_un sun = {0};
    if (strlen(path) >= sizeof(sun.sun_path)) return NULL;
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    return link_start(base, (struct sockaddr *)&sun, sizeof(sun), NULL, NULL, 0, path, ops, owner);
}

/* Queue bytes for the server; -1 unless up. */
int ce_link_write(ce_link *l, const char *data, size_t len) {
    if (!l->up || l->dead || !l->bev) return -1;
    if (!l->staged) return bufferevent_write(l->bev, data, len) == 0 ? 0 : -1;
    if (evbuffer_add(l->staged, data, len) != 0) return -1;
    if (!event_pending(l->flush, EV_TIMEOUT, NULL)) event_active(l->flush, EV_TIMEOUT, 0);
    return 0;
}

/* The socket (-1 once closed). */
int ce_link_fd(const ce_link *l) { return l->fd; }

/* 1 while up. */
int ce_link_is_up(const ce_link *l) { return l->up && !l->dead; }

/* Close (if open) and free; no callback runs. Inside an owner callback, freed once it returns. */
void ce_link_free(ce_link *l) {
    if (!l) return;
    l->dead = 1;
    l->up = 0;
    l->freed = 1;
    if (l->depth == 0) link_destroy(l);
}

static void link_destroy(ce_link *l) {
    link_unstage(l);
    if (l->connecting) event_free(l->connecting);
    if (l->bev) bufferevent_free(l->bev);
    else if (l->fd >= 0) close(l->fd);
    if (l->reader) redisReaderFree(l->reader);
    free(l);
}
