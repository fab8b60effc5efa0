/* redis_link.c: one Redis link on a loop, shared by redis_async.c and redis_pubsub.c.
 * A non-blocking connect (TCP or unix socket) watched by an event, then a libevent
 * bufferevent carries the bytes: a socket bufferevent for plain links, an OpenSSL one
 * (handshake first) for TLS. Replies are parsed with hiredis' RESP reader only. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <event2/bufferevent_ssl.h>
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
    /* TLS: commands written during a loop turn, handed to the SSL bufferevent together at its
       end (it encrypts and sends on every write otherwise: a record and a syscall per command). */
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

/* Drop the TLS write staging. */
static void link_unstage(ce_link *l) {
    if (l->flush) event_free(l->flush);
    if (l->staged) evbuffer_free(l->staged);
    l->flush = NULL;
    l->staged = NULL;
}

/* End of a loop turn's writes: the staged commands go to the SSL bufferevent at once. */
static void link_flush(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ce_link *l = arg;
    if (!l->bev || l->dead || evbuffer_get_length(l->staged) == 0) return;
    l->depth++; /* a failure inside reaches the owner: the staging stays until this returns */
    bufferevent_write_buffer(l->bev, l->staged);
    l->depth--;
    link_released(l);
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

/* Why a TLS link failed: the certificate check, OpenSSL's error queue, or the socket. */
static void tls_error_text(ce_link *l, int sock_err, char *buf, size_t len) {
    SSL *ssl = l->bev ? bufferevent_openssl_get_ssl(l->bev) : NULL;
    long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e;
    const char *reason = NULL; /* the first queued error OpenSSL names ("tlsv13 alert certificate required") */
    while (l->bev && (e = bufferevent_get_openssl_error(l->bev)) != 0)
        if (!reason) reason = ERR_reason_error_string(e);
    char stage[400];
    if (l->up) snprintf(stage, sizeof(stage), "TLS with %s", l->peer);
    else snprintf(stage, sizeof(stage), "TLS handshake with %s failed", l->peer);
    if (!l->up && verify != X509_V_OK) {
        snprintf(buf, len, "%s: certificate verify failed (%s)", stage, X509_verify_cert_error_string(verify));
    } else if (reason) {
        snprintf(buf, len, "%s: %s", stage, reason);
    } else if (sock_err) {
        snprintf(buf, len, "%s: %s", stage, strerror(sock_err));
    } else {
        snprintf(buf, len, "%s: %s", stage, l->up ? "Server closed the connection" : "connection closed by server");
    }
}

/* Hand every complete reply to the owner. */
static void link_read(struct bufferevent *bev, void *arg) {
    ce_link *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v[16];
    size_t total;
    while ((total = evbuffer_get_length(in)) > 0) {
        int n = evbuffer_peek(in, -1, NULL, v, 16);
        if (n > 16) n = 16;
        size_t fed = 0;
        for (int i = 0; i < n; i++) {
            if (redisReaderFeed(l->reader, v[i].iov_base, v[i].iov_len) != REDIS_OK) {
                link_fail(l, "Out of memory");
                return;
            }
            fed += v[i].iov_len;
        }
        evbuffer_drain(in, fed);
    }
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
    if (what & BEV_EVENT_CONNECTED) {
        l->up = 1;
        l->depth++;
        l->ops->up(l->owner);
        l->depth--;
        link_released(l);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) return;
    char why[512];
    if (l->tls) tls_error_text(l, (what & BEV_EVENT_ERROR) ? sock_err : 0, why, sizeof(why));
    else if (what & BEV_EVENT_EOF) snprintf(why, sizeof(why), "Server closed the connection");
    else snprintf(why, sizeof(why), "%s", strerror(sock_err ? sock_err : EIO));
    link_fail(l, why);
}

/* The socket is connected: carry bytes over a bufferevent (TLS: handshake first). */
static void link_stream(ce_link *l) {
    if (l->tls) {
        SSL *ssl = ce_tls_session_new(l->tls, l->server_name, l->check_hostname);
        if (!ssl) {
            char why[400];
            snprintf(why, sizeof(why), "TLS handshake with %s failed: cannot create a TLS session", l->peer);
            return link_fail(l, why);
        }
        l->bev = bufferevent_openssl_socket_new(l->base, l->fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (!l->bev) return link_fail(l, "TLS: out of memory");
        bufferevent_openssl_set_allow_dirty_shutdown(l->bev, 1);
        l->staged = evbuffer_new();
        l->flush = event_new(l->base, -1, 0, link_flush, l);
        if (!l->staged || !l->flush) return link_fail(l, "TLS: out of memory");
    } else {
        l->bev = bufferevent_socket_new(l->base, l->fd, BEV_OPT_CLOSE_ON_FREE);
        if (!l->bev) return link_fail(l, "Out of memory");
    }
    bufferevent_setcb(l->bev, link_read, NULL, link_event, l);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    if (!l->tls) {
        l->up = 1;
        l->depth++;
        l->ops->up(l->owner);
        l->depth--;
        link_released(l);
    }
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
