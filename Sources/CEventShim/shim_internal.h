/* shim_internal.h: declarations shared by the shim's .c files only. */
#ifndef CE_SHIM_INTERNAL_H
#define CE_SHIM_INTERNAL_H

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

struct ce_loop;

/* The libevent base behind a loop. */
struct event_base *ce_loop_base(struct ce_loop *loop);

/* Received bytes fed to hiredis' reader a piece at a time (redis_feed.c). */
struct redisContext;
typedef struct ce_feed {
    char buf[64 * 1024];
    size_t got, fed; /* received into buf; handed to the reader so far */
} ce_feed;
char *ce_feed_space(ce_feed *f, size_t *len);
void ce_feed_received(ce_feed *f, size_t n);
int ce_feed_reply(ce_feed *f, struct redisContext *c, void **reply);
int ce_redis_fail(struct redisContext *c, int type, const char *what);

/* io_uring transport for a blocking hiredis connection (redis_uring.c). */
typedef struct ce_redis_uring ce_redis_uring;
struct redisContext;
ce_redis_uring *ce_redis_uring_new(int *err);
void ce_redis_uring_free(ce_redis_uring *u);
/* out is an sds (hiredis' obuf, or TLS records); what is sent leaves it. */
int ce_redis_uring_round(ce_redis_uring *u, struct redisContext *c, char **out, char *in, size_t room,
                         int timeout_ms, size_t *got);
int ce_redis_uring_send(ce_redis_uring *u, struct redisContext *c, char **out);

/* Reply objects from one reusable block per connection (reply_arena.c). */
typedef struct ce_reply_arena ce_reply_arena;
struct redisReader;
ce_reply_arena *ce_reply_arena_new(void);
void ce_reply_arena_attach(ce_reply_arena *a, struct redisReader *reader);
void ce_reply_arena_reset(ce_reply_arena *a);
void ce_reply_arena_free(ce_reply_arena *a);
const char *ce_reply_arena_refusal(const struct redisReader *reader);

/* SHA-1 of data into out[20]. */
void ce_sha1(const uint8_t *data, size_t len, uint8_t out[20]);
/* Standard base64 of len bytes into out (needs 4*ceil(len/3)+1); returns length. */
size_t ce_base64_encode(const uint8_t *in, size_t len, char *out);

/* One Redis link on a loop: plain or TLS bytes over a bufferevent, replies parsed by
   hiredis' reader (redis_link.c). up: connected (TLS: handshake done); reply: one reply,
   freed after; down: the link failed or closed (was_up: after up), no callback after it. */
struct ce_tls_config;
typedef struct ce_link ce_link;
typedef struct ce_link_ops {
    void (*up)(void *owner);
    void (*reply)(void *owner, void *reply);
    void (*down)(void *owner, int was_up, const char *err);
} ce_link_ops;
ce_link *ce_link_open_tcp(struct event_base *base, const char *host, int port, struct ce_tls_config *tls,
                          const char *server_name, int check_hostname, const ce_link_ops *ops, void *owner);
ce_link *ce_link_open_unix(struct event_base *base, const char *path, const ce_link_ops *ops, void *owner);
int ce_link_write(ce_link *l, const char *data, size_t len);
int ce_link_fd(const ce_link *l);
int ce_link_is_up(const ce_link *l);
void ce_link_free(ce_link *l);

/* TLS sessions (tls.c): a client SSL for one link, sending server_name as SNI (not an IP)
   and, when the config verifies and check_hostname, requiring the certificate to name it
   (an IP literal: its IP SAN). NULL on failure. */
struct ce_tls_config;
struct ssl_st;
struct ssl_st *ce_tls_session_new(struct ce_tls_config *c, const char *server_name, int check_hostname);
/* Why an SSL call that returned rc failed, in words ("certificate verify failed: unable to
   get local issuer certificate"); clears OpenSSL's error queue; returns buf. */
const char *ce_tls_error_text(struct ssl_st *ssl, int rc, char *buf, size_t len);

#endif
