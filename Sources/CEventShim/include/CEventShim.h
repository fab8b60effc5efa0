/* CEventShim: the thin C layer under Celeris.
 *
 * Mechanisms only: an event loop, an HTTP/1.1 + WebSocket server, RFC 6455
 * framing, async and blocking Redis connections. Every decision (routes,
 * status codes, close codes, limits, reconnect policy) is made in Swift.
 *
 * This header exposes opaque handles and plain types only; libevent, hiredis
 * and http_parser headers stay inside the .c files (see notes/toolchain.md:
 * the fd_set clash). <stdio.h> comes first for the same reason. */
#ifndef CEVENTSHIM_H
#define CEVENTSHIM_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- event loop ------------------------------------------------------ */

typedef struct ce_loop ce_loop;
typedef struct ce_timer ce_timer;
typedef void (*ce_timer_cb)(void *ctx);

/* Create an event loop (one per thread). */
ce_loop *ce_loop_new(void);
/* Free a loop that no longer runs. */
void ce_loop_free(ce_loop *loop);
/* Run until ce_loop_break; returns 0 on a clean stop. */
int ce_loop_run(ce_loop *loop);
/* Ask a running loop to stop after the current callbacks. */
void ce_loop_break(ce_loop *loop);
/* Run ready callbacks once without blocking (tests, fuzzing). */
int ce_loop_run_once(ce_loop *loop);
/* Create a stopped timer that calls cb(ctx) on the loop. */
ce_timer *ce_timer_new(ce_loop *loop, ce_timer_cb cb, void *ctx);
/* Arm a timer for ms milliseconds, repeating when repeat != 0. */
void ce_timer_start(ce_timer *t, uint64_t ms, int repeat);
/* Disarm a timer. */
void ce_timer_stop(ce_timer *t);
/* Disarm and free a timer. */
void ce_timer_free(ce_timer *t);
/* Hand memory the allocator holds but no longer uses back to the OS (malloc_trim). */
void ce_release_free_memory(void);

/* ---- HTTP/1.1 + WebSocket server ------------------------------------- */

typedef struct ce_server ce_server;
typedef struct ce_conn ce_conn;
typedef struct ce_frame ce_frame;

#define CE_MAX_HEADERS 64

typedef struct ce_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} ce_header;

/* One parsed request; valid only during the on_request callback. */
typedef struct ce_http_request {
    const char *method;
    const char *url;
    size_t url_len;
    const char *body;
    size_t body_len;
    int keep_alive;   /* 1 when the connection may serve another request */
    int http_minor;   /* HTTP/1.x */
    int upgrade;      /* http_parser saw Connection: upgrade + Upgrade */
    size_t header_count;
    ce_header headers[CE_MAX_HEADERS];
} ce_http_request;

/* What went wrong while reading a request. */
enum ce_http_error {
    CE_HTTP_ERR_PARSE = 1,          /* not HTTP/1.x */
    CE_HTTP_ERR_HEADERS_TOO_LARGE,  /* header bytes or count over the limit */
    CE_HTTP_ERR_BODY_TOO_LARGE,     /* Content-Length or chunks over the limit */
    CE_HTTP_ERR_TIMEOUT,            /* a request started but did not finish in time (slowloris) */
    CE_HTTP_ERR_OVERLOADED,         /* accepted over max_connections */
};

/* What went wrong while reading WebSocket frames. */
enum ce_ws_error {
    CE_WS_ERR_UNMASKED = 1,      /* client frame without mask */
    CE_WS_ERR_RESERVED_BITS,     /* RSV1-3 set without an extension */
    CE_WS_ERR_BAD_OPCODE,        /* unknown opcode */
    CE_WS_ERR_BAD_CONTROL,       /* fragmented or > 125 byte control frame */
    CE_WS_ERR_BAD_CONTINUATION,  /* continuation without start, or new start mid-message */
    CE_WS_ERR_TOO_BIG,           /* message over max_ws_message */
    CE_WS_ERR_BAD_CLOSE,         /* close payload of 1 byte or a bad code */
    CE_WS_ERR_BAD_LENGTH,        /* non-minimal or 64-bit length with the top bit set */
};

enum ce_ws_opcode {
    CE_WS_CONT = 0x0, CE_WS_TEXT = 0x1, CE_WS_BINARY = 0x2,
    CE_WS_CLOSE = 0x8, CE_WS_PING = 0x9, CE_WS_PONG = 0xA,
};

typedef struct ce_server_limits {
    size_t max_header_bytes;  /* request line + headers */
    size_t max_body_bytes;
    size_t max_ws_message;    /* reassembled message */
    unsigned header_timeout_ms; /* a started request must arrive whole within this (0: none) */
    unsigned idle_timeout_ms;   /* keep-alive connection with no request is closed after this (0: none) */
    unsigned max_connections;   /* beyond this, on_http_error(CE_HTTP_ERR_OVERLOADED) (0: none) */
    size_t max_output_bytes;    /* a connection with this much output queued is not read until it
                                   falls to half (0: read regardless) */
} ce_server_limits;

typedef struct ce_server_callbacks {
    void (*on_request)(ce_conn *c, const ce_http_request *req, void *ctx);
    void (*on_http_error)(ce_conn *c, int kind, void *ctx);
    void (*on_ws_message)(ce_conn *c, int opcode, const char *data, size_t len, void *ctx);
    void (*on_ws_error)(ce_conn *c, int kind, void *ctx);
    void (*on_ws_close)(ce_conn *c, int code, void *ctx);
    void (*on_close)(ce_conn *c, void *ctx);
} ce_server_callbacks;

/* Listen on host:port (port 0 picks a free one); with reuse_port, several
 * loops may listen on the same port (SO_REUSEPORT). NULL on failure. */
ce_server *ce_server_new(ce_loop *loop, const char *host, int port, const ce_server_limits *limits,
                         const ce_server_callbacks *cbs, void *ctx, int reuse_port);
/* The bound port. */
int ce_server_port(const ce_server *s);
/* Serve an already-connected socket as if it had just been accepted. */
int ce_server_adopt(ce_server *s, int fd);
/* Stop accepting new connections (graceful shutdown); open ones stay. */
void ce_server_stop_listening(ce_server *s);
/* Count s's connections with first's, so max_connections bounds both (first must outlive s). */
void ce_server_count_with(ce_server *s, ce_server *first);
/* Stop listening; open connections stay until closed. */
void ce_server_free(ce_server *s);

/* Keep a connection handle alive past the callback that handed it out. */
void ce_conn_retain(ce_conn *c);
/* Drop a handle taken with ce_conn_retain. */
void ce_conn_release(ce_conn *c);
/* 1 while the socket is open. */
int ce_conn_is_open(const ce_conn *c);
/* A process-unique id for the connection. */
uint64_t ce_conn_id(const ce_conn *c);
/* Bytes queued for the peer and not yet written (slow-consumer policy). */
size_t ce_conn_output_pending(const ce_conn *c);
/* Milliseconds since the peer last sent anything. */
uint64_t ce_conn_idle_ms(const ce_conn *c);
/* Bytes the connection holds for its peer's input: received and unparsed, plus the
 * request and WebSocket message buffers' capacity. */
size_t ce_conn_input_retained(const ce_conn *c);
/* 1 while the connection is not read because its output is above max_output_bytes. */
int ce_conn_is_paused(const ce_conn *c);
/* Open connections on a server. */
unsigned ce_server_connections(const ce_server *s);

/* Write one HTTP response and resume reading the next pipelined request.
 * extra_headers is "Name: value\r\n..." or NULL. close != 0 ends the
 * connection after the write. Returns -1 when the connection is gone. */
int ce_http_respond(ce_conn *c, int status, const char *reason, const char *content_type,
                    const char *body, size_t body_len, const char *extra_headers, int close);
/* Answer the current request with 101 Switching Protocols using the
 * client's Sec-WebSocket-Key, and read WebSocket frames from now on. */
int ce_ws_accept(ce_conn *c, const char *key, size_t key_len);
/* Send one unfragmented frame. */
int ce_ws_send(ce_conn *c, int opcode, const char *data, size_t len);
/* Send a close frame with code and reason; the socket closes once the peer
 * answers or after the write drains with a short grace time. */
int ce_ws_close(ce_conn *c, int code, const char *reason);

/* A server frame built once and shared by many connections (refcounted). */
ce_frame *ce_frame_new(int opcode, const char *data, size_t len);
/* Queue a shared frame on a connection without copying its bytes. */
int ce_ws_send_frame(ce_conn *c, ce_frame *f);
/* Drop the caller's reference. */
void ce_frame_release(ce_frame *f);

/* ---- WebSocket framing (pure, no I/O) -------------------------------- */

typedef struct ce_ws_frame_info {
    int fin;
    int opcode;
    int masked;
    int rsv;              /* RSV1-3 bits */
    uint64_t payload_len;
    size_t header_len;    /* bytes before the payload */
    uint8_t mask[4];
} ce_ws_frame_info;

/* Parse a frame header: 1 done, 0 need more bytes, -1 malformed length. */
int ce_ws_parse_header(const uint8_t *buf, size_t len, ce_ws_frame_info *out);
/* XOR payload bytes with the mask, starting at payload offset `offset`. */
void ce_ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);
/* Write a server (unmasked) frame header; returns its length (2..10). */
size_t ce_ws_write_header(uint8_t out[10], int fin, int opcode, uint64_t len);
/* Sec-WebSocket-Accept for a key: writes 28 chars + NUL into out[29]. */
void ce_ws_accept_key(const char *key, size_t key_len, char out[29]);
/* 1 when bytes are valid UTF-8 (RFC 3629: no overlongs, no surrogates). */
int ce_utf8_valid(const uint8_t *s, size_t len);

/* find.c: byte-string search. */
long ce_find(const uint8_t *hay, size_t len, const uint8_t *needle, size_t nlen, size_t anchor);

/* ---- Redis replies (read-only view of a hiredis reply) --------------- */

typedef struct ce_reply ce_reply;

enum ce_reply_type {
    CE_REPLY_STRING = 1, CE_REPLY_ARRAY = 2, CE_REPLY_INTEGER = 3,
    CE_REPLY_NIL = 4, CE_REPLY_STATUS = 5, CE_REPLY_ERROR = 6,
};

/* The reply's kind (enum ce_reply_type). */
int ce_reply_type(const ce_reply *r);
/* Integer value of an INTEGER reply. */
long long ce_reply_integer(const ce_reply *r);
/* Bytes of a STRING, STATUS or ERROR reply. */
const char *ce_reply_str(const ce_reply *r, size_t *len);
/* Element count of an ARRAY reply. */
size_t ce_reply_elements(const ce_reply *r);
/* Element i of an ARRAY reply. */
const ce_reply *ce_reply_element(const ce_reply *r, size_t i);
/* Free a reply obtained from ce_resp_parse. */
void ce_reply_free(ce_reply *r);

/* Parse one complete reply from buf (no I/O); NULL when incomplete or not RESP. Free with ce_reply_free. */
ce_reply *ce_resp_parse(const char *buf, size_t len);

/* ---- async Redis on the loop (libevent bufferevent, plain or TLS) ---- */

typedef struct ce_redis ce_redis;

enum ce_redis_state { CE_REDIS_CONNECTED = 1, CE_REDIS_FAILED = 2, CE_REDIS_DISCONNECTED = 3 };

/* Called on connect, failed connect and disconnect. */
typedef void (*ce_redis_state_cb)(ce_redis *r, int state, const char *err, void *ctx);
/* Called with each reply; reply is NULL when the connection went away. */
typedef void (*ce_redis_reply_cb)(ce_redis *r, const ce_reply *reply, void *privdata);

/* Start connecting to host:port on the loop. NULL when it cannot even start. */
ce_redis *ce_redis_connect(ce_loop *loop, const char *host, int port, ce_redis_state_cb cb, void *ctx);
/* Start connecting to a unix socket on the loop. NULL when it cannot even start. */
ce_redis *ce_redis_connect_unix(ce_loop *loop, const char *path, ce_redis_state_cb cb, void *ctx);
/* ce_redis_connect over TLS when tls is set (a tls.c config; NULL: plain TCP): CONNECTED once the
   handshake is done (SNI and, when check_hostname, the name checked: server_name); a failed
   handshake is FAILED with its reason ("TLS handshake with host:port failed: certificate verify failed (...)"). */
struct ce_tls_config;
ce_redis *ce_redis_connect_tls(ce_loop *loop, const char *host, int port, struct ce_tls_config *tls,
                               const char *server_name, int check_hostname, ce_redis_state_cb cb, void *ctx);
/* Send one command already encoded as RESP (len bytes, then a NUL not sent); cb runs once,
   or per reply while persistent (SUBSCRIBE). -1 when down. */
int ce_redis_send(ce_redis *r, const char *resp, size_t len, int persistent, ce_redis_reply_cb cb, void *privdata);
/* Replies still awaited on this connection. */
int ce_redis_pending(const ce_redis *r);
/* 1 while connected. */
int ce_redis_is_connected(const ce_redis *r);
/* Milliseconds the connection has owed a reply and received nothing (0 when it owes none);
 * replies to persistent commands (SUBSCRIBE) are not owed. */
uint64_t ce_redis_stalled_ms(const ce_redis *r);
/* TCP keepalive (and TCP_USER_TIMEOUT) on the socket, idle_s seconds; -1 without a socket. */
int ce_redis_keepalive(ce_redis *r, int idle_s);
/* Close (if open) and free the handle; pending callbacks get NULL first. */
void ce_redis_free(ce_redis *r);

/* ---- TLS (tls.c, OpenSSL) -------------------------------------------- */

/* A client SSL_CTX: CA store, client certificate, verify mode; shared by many links. */
typedef struct ce_tls_config ce_tls_config;
/* verify: 0 none, 1 optional (a client verifies as with required), 2 required.
   ca_file and ca_path NULL: the system store. cert_file/key_file: a client certificate
   (key_file NULL: the key is in cert_file). NULL with a message in err on failure. */
ce_tls_config *ce_tls_config_new(int verify, const char *ca_file, const char *ca_path, const char *cert_file,
                                 const char *key_file, char *err, size_t err_len);
void ce_tls_config_free(ce_tls_config *c);

/* ---- blocking Redis (one thread, pipelined) -------------------------- */

typedef struct ce_redis_sync ce_redis_sync;

/* Connect with a timeout; NULL with a message in err on failure. */
ce_redis_sync *ce_redis_sync_connect(const char *host, int port, int timeout_ms, char *err, size_t err_len);
/* Connect to a unix socket with a timeout; NULL with a message in err on failure. */
ce_redis_sync *ce_redis_sync_connect_unix(const char *path, int timeout_ms, char *err, size_t err_len);
/* Queue commands already in RESP (no I/O). */
int ce_redis_sync_append_formatted(ce_redis_sync *r, const char *buf, size_t len);
/* Flush and read the next reply (blocks). 0 ok, -1 on I/O or protocol error.
 * The reply stays valid until ce_redis_sync_release (one reply at a time). */
int ce_redis_sync_read(ce_redis_sync *r, ce_reply **out);
/* Done with the reply ce_redis_sync_read gave: its objects' memory is reused by the next. */
void ce_redis_sync_release(ce_redis_sync *r, ce_reply *reply);
/* Write everything queued without reading (its replies are read later). 0 ok, -1 on error. */
int ce_redis_sync_flush(ce_redis_sync *r);
/* Set the read timeout for blocking commands. */
int ce_redis_sync_set_timeout(ce_redis_sync *r, int timeout_ms);
/* Encrypt the link (a TLS handshake over the socket, within the connect timeout) right after
 * connecting, before any command or ce_redis_sync_use_uring; server_name: SNI and, with
 * check_hostname, the name the certificate must carry. 0, or -1 with why in err. */
int ce_redis_sync_start_tls(ce_redis_sync *r, ce_tls_config *config, const char *server_name, int check_hostname,
                            char *err, size_t err_len);
/* 1 when bytes already received wait to be parsed (plaintext, or TLS records): a reply may be
 * ready without the socket becoming readable; check before waiting with ce_wait_readable. */
int ce_redis_sync_buffered(const ce_redis_sync *r);
/* Move this connection's I/O to io_uring; 0, or the errno that refused it (EPERM, ENOSYS). */
int ce_redis_sync_use_uring(ce_redis_sync *r);
/* Bound each ce_redis_sync_read: its reply must arrive whole within within_ms of the call, or
 * the read fails with "no reply within N ms"; 0: no bound (only the per-receive timeout). */
void ce_redis_sync_set_reply_deadline(ce_redis_sync *r, int within_ms);
/* Fail the link ("reply larger than N bytes") when more than bytes arrive while one reply is
 * awaited: for links whose answers are short (sentinels); 0: no limit. */
void ce_redis_sync_set_reply_limit(ce_redis_sync *r, size_t bytes);
/* The last error message. */
const char *ce_redis_sync_error(const ce_redis_sync *r);
/* The connection's socket (to wait for a reply's arrival with ce_wait_readable). */
int ce_redis_sync_fd(const ce_redis_sync *r);
/* Close and free. */
void ce_redis_sync_free(ce_redis_sync *r);

/* ---- waiting on descriptors (wait.c) ---------------------------------- */

/* Wait up to timeout_us (0: only look) until one of fds[0..n) is readable;
 * readable[i] is set to 1 for each that is. Returns how many are readable, or -1 (errno). */
int ce_wait_readable(const int *fds, int n, long timeout_us, unsigned char *readable);
/* A new bell (non-blocking eventfd); -1 on failure. */
int ce_bell_new(void);
/* Ring the bell: a wait watching it ends. */
void ce_bell_ring(int bell);
/* Silence the bell (it stays readable until cleared). */
void ce_bell_clear(int bell);

/* ---- a bell watched by a loop (loop_bell.c): wake a loop from any thread ---- */

typedef struct ce_bell_watch ce_bell_watch;
/* Watch a new bell on the loop; cb(ctx) runs on the loop after rings. NULL on failure. */
ce_bell_watch *ce_bell_watch_new(ce_loop *loop, ce_timer_cb cb, void *ctx);
/* The bell to ring (ce_bell_ring) from any thread. */
int ce_bell_watch_fd(const ce_bell_watch *w);
/* Set the callback's context (before the bell is first rung). */
void ce_bell_watch_set_context(ce_bell_watch *w, void *ctx);
/* Stop watching; the bell stays open (its owner closes it once nothing can ring it). */
void ce_bell_watch_free(ce_bell_watch *w);

/* ---- a subscriber connection on a loop (redis_pubsub.c) -------------- */

typedef struct ce_pubsub ce_pubsub;
enum ce_pubsub_event {
    CE_PUBSUB_UP = 1, CE_PUBSUB_DOWN = 2, CE_PUBSUB_MESSAGE = 3, CE_PUBSUB_SUBSCRIBED = 4, CE_PUBSUB_ERROR = 5,
    CE_PUBSUB_UNSUBSCRIBED = 6
};
/* UP; DOWN (a: the error); MESSAGE (a: channel, b: payload); SUBSCRIBED, UNSUBSCRIBED (a: channel); ERROR (a: message). */
typedef void (*ce_pubsub_cb)(ce_pubsub *p, int event, const char *a, size_t alen, const char *b, size_t blen,
                             void *ctx);
/* Start connecting; NULL when it cannot even start. After DOWN, free it and connect anew. */
ce_pubsub *ce_pubsub_connect(ce_loop *loop, const char *host, int port, ce_pubsub_cb cb, void *ctx);
/* Start connecting to a unix socket; NULL when it cannot even start. */
ce_pubsub *ce_pubsub_connect_unix(ce_loop *loop, const char *path, ce_pubsub_cb cb, void *ctx);
/* ce_pubsub_connect over TLS when tls is set (as ce_redis_connect_tls); a failed handshake is DOWN with its reason. */
ce_pubsub *ce_pubsub_connect_tls(ce_loop *loop, const char *host, int port, struct ce_tls_config *tls,
                                 const char *server_name, int check_hostname, ce_pubsub_cb cb, void *ctx);
/* AUTH user password, or AUTH password when user is NULL (before subscribing). -1 when down. */
int ce_pubsub_auth(ce_pubsub *p, const char *user, size_t user_len, const char *password, size_t len);
/* SUBSCRIBE / UNSUBSCRIBE one channel. -1 when down. */
/* PING with the handshake's callback (an error reply is reported: NOAUTH when no password was sent). */
int ce_pubsub_ping(ce_pubsub *p);
int ce_pubsub_subscribe(ce_pubsub *p, const char *channel, size_t len);
int ce_pubsub_unsubscribe(ce_pubsub *p, const char *channel, size_t len);
/* TCP keepalive on the socket, idle_s seconds. */
int ce_pubsub_keepalive(ce_pubsub *p, int idle_s);
/* Close (if open) and free; no callback runs after. */
void ce_pubsub_free(ce_pubsub *p);

/* ---- io_uring file reads -------------------------------------------- */

typedef struct ce_uring ce_uring;

/* Set up a ring with `depth` entries; NULL with *err = errno when refused (EPERM, ENOSYS). */
ce_uring *ce_uring_new(unsigned depth, int *err);
/* Tear a ring down. */
void ce_uring_free(ce_uring *u);
/* Read exactly len bytes of fd from offset 0 into buf, chunk bytes per read,
 * up to depth reads in flight. Returns len, or -errno. */
long long ce_uring_read_file(ce_uring *u, int fd, uint8_t *buf, size_t len, size_t chunk);

#ifdef __cplusplus
}
#endif
#endif
