/* http_server.c: listener and connections; HTTP/1.1 requests through
 * http_parser, then RFC 6455 frames after an upgrade. Reports what it reads
 * to Swift callbacks and writes what Swift answers. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <http_parser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct ce_server {
    ce_loop *loop;
    struct evconnlistener *listener;
    ce_server_limits limits;
    ce_server_callbacks cbs;
    void *ctx;
    int port;
    unsigned open_conns;
    unsigned *open_count;      /* &open_conns, or the first loop's when loops share a limit */
    struct event *flush_ev;    /* active once a turn while connections have output queued */
    int flush_armed;
    struct ce_conn *flush_head; /* connections whose output waits for the end of the turn */
};

typedef struct span { size_t off, len; } span;

enum { MODE_HTTP = 0, MODE_WS = 1 };
enum { TIMER_NONE = 0, TIMER_IDLE = 1, TIMER_DEADLINE = 2 };

/* A request or WebSocket message buffer above this is freed once it has been handled
 * (a large request must not keep its buffer for the connection's lifetime). */
#define CE_KEEP_BUFFER_BYTES (16 * 1024)

struct ce_conn {
    int refs;
    uint64_t id;
    ce_server *srv;
    struct bufferevent *bev;
    int open;
    int mode;
    int processing;        /* inside process_input (re-entrancy guard) */
    int close_after_write;
    /* HTTP request being read */
    http_parser parser;
    int awaiting_response; /* a request (or an error) is with Swift */
    int message_complete;
    int error_kind;
    size_t header_bytes;
    char *buf;             /* url, header names and values, then body */
    size_t buf_len, buf_cap;
    span url;
    span names[CE_MAX_HEADERS];
    span values[CE_MAX_HEADERS];
    size_t nhdr;
    int in_value;
    span body;
    /* WebSocket */
    uint8_t *msg;
    size_t msg_len, msg_cap;
    int msg_opcode;
    int in_message;
    int ws_failed;
    int close_sent;
    int lingering;         /* write side shut; discarding input until EOF */
    int is_head;           /* the request with Swift is a complete HEAD request */
    uint64_t last_read_ms;
    struct event *close_timer;
    /* Request timing: an idle connection must start a request, and a started one
     * must arrive whole, before this fires (a deadline: later bytes do not move it). */
    struct event *request_timer;
    int timer_kind;        /* TIMER_NONE, TIMER_IDLE or TIMER_DEADLINE */
    int out_paused;        /* not read: output is above limits.max_output_bytes */
    int held;              /* not read: input came while a request is with Swift */
    /* Output is written at the end of the loop turn (one write for every
     * response and frame queued in it); EV_WRITE is watched only while the
     * socket will not take it all. */
    int flush_queued;
    struct ce_conn *flush_next;
};

struct ce_frame {
    int refs;
    size_t len;
    uint8_t data[];
};

static uint64_t next_conn_id = 1; /* shared by every loop's server: atomic */
static void process_input(ce_conn *c);
static void close_conn(ce_conn *c);
static void queue_output(ce_conn *c);

/* ---- small helpers ---- */

/* Monotonic milliseconds. */
static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void request_timer_fired(evutil_socket_t fd, short what, void *arg);

/* Arm the request timer as `kind` for ms (TIMER_NONE or 0 ms disarms). */
static void set_request_timer(ce_conn *c, int kind, unsigned ms) {
    if (!c->open) return;
    if (kind == TIMER_NONE || ms == 0) {
        if (c->request_timer) evtimer_del(c->request_timer);
        c->timer_kind = TIMER_NONE;
        return;
    }
    if (!c->request_timer) {
        c->request_timer = evtimer_new(ce_loop_base(c->srv->loop), request_timer_fired, c);
        if (!c->request_timer) return;
    }
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(c->request_timer, &tv);
    c->timer_kind = kind;
}

/* Read from the socket only while it is useful: not once input came while a request is
 * with Swift (pipelined requests wait in the socket, not in memory), not while the output
 * is above the watermark, not once the connection is closing (except to discard). */
static void update_reading(ce_conn *c) {
    if (!c->open || !c->bev) return;
    int want = c->lingering || (!c->close_after_write && !c->out_paused && !c->held);
    if (want) bufferevent_enable(c->bev, EV_READ);
    else bufferevent_disable(c->bev, EV_READ);
}

/* 1 when the output queued for the peer is at or above the high watermark. */
static int output_full(ce_conn *c) {
    size_t high = c->srv->limits.max_output_bytes;
    return high && evbuffer_get_length(bufferevent_get_output(c->bev)) >= high;
}

/* Stop reading until the peer takes its output (see resume_if_drained). */
static void pause_for_output(ce_conn *c) {
    c->out_paused = 1;
    update_reading(c);
}

/* Free a large request buffer once its request has been answered. */
static void shrink_buffers(ce_conn *c) {
    if (c->buf_cap > CE_KEEP_BUFFER_BYTES) {
        free(c->buf);
        c->buf = NULL;
        c->buf_cap = 0;
    }
    if (c->msg_cap > CE_KEEP_BUFFER_BYTES && !c->in_message) {
        free(c->msg);
        c->msg = NULL;
        c->msg_cap = 0;
        c->msg_len = 0;
    }
}

/* 1 when a header name equals `want` (ASCII, case-insensitive). */
static int header_is(const char *name, size_t len, const char *want) {
    size_t wl = strlen(want);
    if (len != wl) return 0;
    for (size_t i = 0; i < len; i++) {
        char a = name[i], b = want[i];
        if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
        if (a != b) return 0;
    }
    return 1;
}

/* Append bytes to the request buffer; -1 on allocation failure. */
static int buf_append(ce_conn *c, const char *at, size_t len) {
    if (c->buf_len + len > c->buf_cap) {
        size_t cap = c->buf_cap ? c->buf_cap : 1024;
        while (cap < c->buf_len + len) cap *= 2;
        char *nb = realloc(c->buf, cap);
        if (!nb) return -1;
        c->buf = nb;
        c->buf_cap = cap;
    }
    memcpy(c->buf + c->buf_len, at, len);
    c->buf_len += len;
    return 0;
}

/* Count request-head bytes; flags 431 past the limit. */
static int count_header_bytes(ce_conn *c, size_t len) {
    c->header_bytes += len;
    if (c->header_bytes > c->srv->limits.max_header_bytes) {
        c->error_kind = CE_HTTP_ERR_HEADERS_TOO_LARGE;
        return -1;
    }
    return 0;
}

/* Forget the previous request. */
static void reset_request(ce_conn *c) {
    c->buf_len = 0;
    c->url = (span){ 0, 0 };
    c->body = (span){ 0, 0 };
    c->nhdr = 0;
    c->in_value = 0;
    c->header_bytes = 0;
    c->message_complete = 0;
    c->error_kind = 0;
}

/* Current HTTP date, re-formatted at most once a second. */
static const char *http_date(void) {
    static __thread char cached[64];
    static __thread time_t cached_at;
    time_t now = time(NULL);
    if (now != cached_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_at = now;
    }
    return cached;
}

/* ---- http_parser callbacks ---- */

static int on_message_begin(http_parser *p) {
    ce_conn *c = p->data;
    reset_request(c);
    /* The whole request must arrive within the header timeout of its first byte. */
    set_request_timer(c, TIMER_DEADLINE, c->srv->limits.header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    ce_conn *c = p->data;
    if (count_header_bytes(c, len)) return -1;
    if (c->url.len == 0) c->url.off = c->buf_len;
    c->url.len += len;
    return buf_append(c, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    ce_conn *c = p->data;
    if (count_header_bytes(c, len)) return -1;
    if (c->in_value || c->nhdr == 0) {
        if (c->nhdr == CE_MAX_HEADERS) {
            c->error_kind = CE_HTTP_ERR_HEADERS_TOO_LARGE;
            return -1;
        }
        c->names[c->nhdr] = (span){ c->buf_len, 0 };
        c->values[c->nhdr] = (span){ 0, 0 };
        c->nhdr++;
        c->in_value = 0;
    }
    c->names[c->nhdr - 1].len += len;
    return buf_append(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    ce_conn *c = p->data;
    if (count_header_bytes(c, len)) return -1;
    if (!c->in_value) {
        c->values[c->nhdr - 1] = (span){ c->buf_len, 0 };
        c->in_value = 1;
    }
    c->values[c->nhdr - 1].len += len;
    return buf_append(c, at, len);
}

static int on_headers_complete(http_parser *p) {
    ce_conn *c = p->data;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->srv->limits.max_body_bytes) {
        c->error_kind = CE_HTTP_ERR_BODY_TOO_LARGE;
        return -1;
    }
    for (size_t i = 0; i < c->nhdr; i++) {
        if (header_is(c->buf + c->names[i].off, c->names[i].len, "expect") &&
            header_is(c->buf + c->values[i].off, c->values[i].len, "100-continue"))
        {
            evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
            queue_output(c);
        }
    }
    c->body = (span){ c->buf_len, 0 };
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    ce_conn *c = p->data;
    if (c->body.len + len > c->srv->limits.max_body_bytes) {
        c->error_kind = CE_HTTP_ERR_BODY_TOO_LARGE;
        return -1;
    }
    c->body.len += len;
    return buf_append(c, at, len);
}

static int on_message_complete(http_parser *p) {
    ce_conn *c = p->data;
    c->message_complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- HTTP dispatch ---- */

/* Hand a complete request to Swift. */
static void dispatch_request(ce_conn *c) {
    ce_http_request req;
    memset(&req, 0, sizeof(req));
    static const char empty[1] = "";
    const char *base = c->buf ? c->buf : empty;
    req.method = http_method_str((enum http_method)c->parser.method);
    req.url = base + c->url.off;
    req.url_len = c->url.len;
    req.body = base + c->body.off;
    req.body_len = c->body.len;
    req.keep_alive = http_should_keep_alive(&c->parser);
    req.http_minor = c->parser.http_minor;
    req.upgrade = c->parser.upgrade;
    req.header_count = c->nhdr;
    for (size_t i = 0; i < c->nhdr; i++) {
        req.headers[i].name = base + c->names[i].off;
        req.headers[i].name_len = c->names[i].len;
        req.headers[i].value = base + c->values[i].off;
        req.headers[i].value_len = c->values[i].len;
    }
    c->awaiting_response = 1;
    c->is_head = c->parser.method == HTTP_HEAD;
    set_request_timer(c, TIMER_NONE, 0); /* Swift answers it (its own deadlines) */
    c->srv->cbs.on_request(c, &req, c->srv->ctx);
}

/* Stop reading requests and let Swift answer the error. */
static void report_http_error(ce_conn *c, int kind) {
    c->awaiting_response = 1;
    c->held = 1;
    set_request_timer(c, TIMER_NONE, 0);
    update_reading(c);
    c->srv->cbs.on_http_error(c, kind, c->srv->ctx);
}

/* Parse buffered input for requests until one is with Swift. */
static void process_http(ce_conn *c) {
    while (c->open && c->mode == MODE_HTTP && !c->awaiting_response) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t len = evbuffer_get_length(in);
        if (len == 0) return;
        if (output_full(c)) { pause_for_output(c); return; } /* the peer is not reading its responses */
        char *data = (char *)evbuffer_pullup(in, -1);
        size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
        evbuffer_drain(in, n);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (c->error_kind) {
            report_http_error(c, c->error_kind);
            return;
        }
        if (err == HPE_PAUSED && c->message_complete) {
            http_parser_pause(&c->parser, 0);
            dispatch_request(c);
            continue;
        }
        if (err == HPE_HEADER_OVERFLOW) {
            report_http_error(c, CE_HTTP_ERR_HEADERS_TOO_LARGE);
            return;
        }
        if (err != HPE_OK) {
            report_http_error(c, CE_HTTP_ERR_PARSE);
            return;
        }
        if (n == len) return; /* wait for more bytes */
    }
}

/* ---- WebSocket reading ---- */

/* Stop reading frames and let Swift pick the close code. */
static void ws_fail(ce_conn *c, int kind) {
    c->ws_failed = 1;
    c->srv->cbs.on_ws_error(c, kind, c->srv->ctx);
}

/* Append an unmasked payload to the message being reassembled. */
static int msg_append(ce_conn *c, const uint8_t *data, size_t len) {
    if (len == 0) return 0;
    if (c->msg_len + len > c->msg_cap) {
        size_t cap = c->msg_cap ? c->msg_cap : 256;
        while (cap < c->msg_len + len) cap *= 2;
        uint8_t *nm = realloc(c->msg, cap);
        if (!nm) return -1;
        c->msg = nm;
        c->msg_cap = cap;
    }
    memcpy(c->msg + c->msg_len, data, len);
    c->msg_len += len;
    return 0;
}

/* 1 when a received close code may appear on the wire (RFC 6455 7.4). */
static int close_code_valid(int code) {
    if (code >= 3000 && code <= 4999) return 1;
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011);
}

/* Handle a complete control frame. */
static void ws_control(ce_conn *c, int opcode, uint8_t *payload, size_t len) {
    if (opcode == CE_WS_PING) {
        if (!c->close_sent) ce_ws_send(c, CE_WS_PONG, (const char *)payload, len);
        return;
    }
    if (opcode != CE_WS_CLOSE) return; /* PONG */
    int code = 1005;
    if (len == 1) { ws_fail(c, CE_WS_ERR_BAD_CLOSE); return; }
    if (len >= 2) {
        code = payload[0] << 8 | payload[1];
        if (!close_code_valid(code) || !ce_utf8_valid(payload + 2, len - 2)) {
            ws_fail(c, CE_WS_ERR_BAD_CLOSE);
            return;
        }
    }
    if (c->close_sent) { /* the answer to our close */
        close_conn(c);
        return;
    }
    c->srv->cbs.on_ws_close(c, code, c->srv->ctx);
    if (!c->open) return;
    uint8_t echo[2] = { (uint8_t)(code >> 8), (uint8_t)code };
    ce_ws_send(c, CE_WS_CLOSE, (const char *)echo, code == 1005 ? 0 : 2);
    c->close_sent = 1;
    c->close_after_write = 1;
    update_reading(c);
}

/* Check a frame header against RFC 6455; returns an error kind or 0. */
static int ws_check(ce_conn *c, const ce_ws_frame_info *fi) {
    if (!fi->masked) return CE_WS_ERR_UNMASKED;
    if (fi->rsv) return CE_WS_ERR_RESERVED_BITS;
    int op = fi->opcode;
    if (op >= 0x8) {
        if (op > CE_WS_PONG) return CE_WS_ERR_BAD_OPCODE;
        if (!fi->fin || fi->payload_len > 125) return CE_WS_ERR_BAD_CONTROL;
        return 0;
    }
    if (op > CE_WS_BINARY) return CE_WS_ERR_BAD_OPCODE;
    if (op == CE_WS_CONT && !c->in_message) return CE_WS_ERR_BAD_CONTINUATION;
    if (op != CE_WS_CONT && c->in_message) return CE_WS_ERR_BAD_CONTINUATION;
    if ((op == CE_WS_CONT ? c->msg_len : 0) + fi->payload_len > c->srv->limits.max_ws_message)
        return CE_WS_ERR_TOO_BIG;
    return 0;
}

/* Read as many complete frames as the input holds. */
static void process_ws(ce_conn *c) {
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->open && !c->ws_failed) {
        size_t len = evbuffer_get_length(in);
        if (len && output_full(c)) { pause_for_output(c); return; } /* pongs and replies pile up unread */
        uint8_t head[14];
        size_t hl = len < sizeof(head) ? len : sizeof(head);
        if (hl < 2) return;
        evbuffer_copyout(in, head, hl);
        ce_ws_frame_info fi;
        int r = ce_ws_parse_header(head, hl, &fi);
        if (r == 0) return;
        if (r < 0) { ws_fail(c, CE_WS_ERR_BAD_LENGTH); return; }
        int bad = ws_check(c, &fi);
        if (bad) { ws_fail(c, bad); return; }
        if (len < fi.header_len + fi.payload_len) return;
        evbuffer_drain(in, fi.header_len);
        uint8_t *payload = evbuffer_pullup(in, (ev_ssize_t)fi.payload_len);
        size_t plen = (size_t)fi.payload_len;
        if (plen) ce_ws_unmask(payload, plen, fi.mask, 0);
        if (fi.opcode >= 0x8) {
            uint8_t ctl[125];
            if (plen) memcpy(ctl, payload, plen); /* an empty ping/close pulls up nothing (NULL) */
            evbuffer_drain(in, plen);
            ws_control(c, fi.opcode, ctl, plen);
            continue;
        }
        if (fi.opcode != CE_WS_CONT) { c->msg_opcode = fi.opcode; c->msg_len = 0; }
        if (msg_append(c, payload, plen) < 0) { evbuffer_drain(in, plen); ws_fail(c, CE_WS_ERR_TOO_BIG); return; }
        evbuffer_drain(in, plen);
        c->in_message = !fi.fin;
        if (fi.fin && !c->close_sent)
            c->srv->cbs.on_ws_message(c, c->msg_opcode, (const char *)c->msg, c->msg_len, c->srv->ctx);
        if (fi.fin && c->open) shrink_buffers(c);
    }
    if (c->ws_failed) evbuffer_drain(in, evbuffer_get_length(in));
}

/* Read whatever is buffered, in the connection's current mode. */
static void process_input(ce_conn *c) {
    if (c->processing) return;
    c->processing = 1;
    ce_conn_retain(c);
    if (c->open && c->mode == MODE_HTTP) process_http(c);
    if (c->open && c->mode == MODE_WS) process_ws(c);
    c->processing = 0;
    ce_conn_release(c);
}

/* ---- bufferevent callbacks ---- */

/* Close the socket when the peer never answers our close frame or FIN. */
static void close_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    close_conn(arg);
}

/* Arm (or re-arm) the timer that closes the socket after `secs`. */
static void close_after(ce_conn *c, int secs) {
    if (!c->close_timer) c->close_timer = evtimer_new(ce_loop_base(c->srv->loop), close_timeout, c);
    struct timeval tv = { secs, 0 };
    evtimer_add(c->close_timer, &tv);
}

/* Our last bytes are out: send FIN, and discard what the peer still sends
 * (closing with unread input would RST away the response) until its EOF. */
static void linger(ce_conn *c) {
    c->lingering = 1;
    set_request_timer(c, TIMER_NONE, 0);
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    update_reading(c);
    close_after(c, 2);
}

/* The request timer: an idle connection closes; a request not whole by its deadline
 * is Swift's to answer (408). Nothing while Swift has the request or the connection closes. */
static void request_timer_fired(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    ce_conn *c = arg;
    int kind = c->timer_kind;
    c->timer_kind = TIMER_NONE;
    if (!c->open || c->mode != MODE_HTTP || c->awaiting_response || c->lingering || c->close_after_write) return;
    if (kind == TIMER_DEADLINE) report_http_error(c, CE_HTTP_ERR_TIMEOUT);
    else close_conn(c);
}

/* The peer took enough of its output: read again, starting with what is buffered. */
static void resume_if_drained(ce_conn *c) {
    if (!c->out_paused || !c->open) return;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > c->srv->limits.max_output_bytes / 2) return;
    c->out_paused = 0;
    update_reading(c);
    if (!c->close_after_write && !c->lingering) process_input(c);
}

static void conn_read(struct bufferevent *bev, void *arg) {
    ce_conn *c = arg;
    c->last_read_ms = now_ms();
    if (c->lingering) {
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (c->mode == MODE_HTTP && c->awaiting_response && !c->held) {
        /* The next request came before the answer: keep it in the socket until then
         * (reading on only when input comes keeps a plain request-response free of toggling). */
        c->held = 1;
        update_reading(c);
        return;
    }
    process_input(c);
}

/* Everything queued is on the wire: close if that was the last response. */
static void output_drained(ce_conn *c) {
    if (c->close_after_write && !c->lingering) linger(c);
}


/* libevent drained what the socket refused earlier: back to end-of-turn writes. */
static void conn_write(struct bufferevent *bev, void *arg) {
    ce_conn *c = arg;
    resume_if_drained(c); /* called at the low watermark (half of max_output_bytes) */
    if (!c->open) return;
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) return;
    bufferevent_disable(bev, EV_WRITE);
    output_drained(c);
}

/* Write a connection's queued output now; watch EV_WRITE for what is left. */
static void flush_conn(ce_conn *c) {
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (bufferevent_get_enabled(c->bev) & EV_WRITE) return; /* libevent is draining it */
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    evbuffer_unfreeze(out, 1); /* a bufferevent keeps its output's start frozen for its own writes */
    while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0) {}
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) > 0) bufferevent_enable(c->bev, EV_WRITE); /* EAGAIN, or an error it will report */
    else output_drained(c);
    if (c->open) resume_if_drained(c);
}

/* End of the loop turn: write every connection that queued output in it. */
static void flush_queued(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    ce_server *s = arg;
    s->flush_armed = 0;
    ce_conn *c = s->flush_head;
    s->flush_head = NULL;
    while (c) {
        ce_conn *next = c->flush_next;
        c->flush_queued = 0;
        if (c->open) flush_conn(c);
        ce_conn_release(c);
        c = next;
    }
}

/* Note that c has output; it is written once this turn's callbacks are done. */
static void queue_output(ce_conn *c) {
    if (c->flush_queued || !c->open) return;
    ce_server *s = c->srv;
    c->flush_queued = 1;
    ce_conn_retain(c);
    c->flush_next = s->flush_head;
    s->flush_head = c;
    if (!s->flush_armed) {
        s->flush_armed = 1;
        event_active(s->flush_ev, EV_WRITE, 0);
    }
}

static void conn_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    ce_conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) close_conn(c);
}

/* Close the socket once; Swift hears of it through on_close. */
static void close_conn(ce_conn *c) {
    if (!c->open) return;
    c->open = 0;
    __atomic_sub_fetch(c->srv->open_count, 1, __ATOMIC_RELAXED);
    if (c->close_timer) { event_free(c->close_timer); c->close_timer = NULL; }
    if (c->request_timer) { event_free(c->request_timer); c->request_timer = NULL; }
    bufferevent_free(c->bev);
    c->bev = NULL;
    c->srv->cbs.on_close(c, c->srv->ctx);
    ce_conn_release(c); /* the socket's own reference */
}

/* Accept a connection from the listener. */
static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg) {
    (void)l; (void)sa; (void)salen;
    ce_server *s = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ce_conn *c = calloc(1, sizeof(*c));
    if (!c) { evutil_closesocket(fd); return; }
    c->bev = bufferevent_socket_new(ce_loop_base(s->loop), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) { free(c); evutil_closesocket(fd); return; }
    c->refs = 1;
    c->id = __atomic_fetch_add(&next_conn_id, 1, __ATOMIC_RELAXED);
    c->srv = s;
    c->open = 1;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->last_read_ms = now_ms();
    unsigned open = __atomic_add_fetch(s->open_count, 1, __ATOMIC_RELAXED);
    bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
    bufferevent_enable(c->bev, EV_READ); /* EV_WRITE only while output waits on the socket */
    /* libevent calls conn_write once the output falls to half the high watermark. */
    if (s->limits.max_output_bytes) bufferevent_setwatermark(c->bev, EV_WRITE, s->limits.max_output_bytes / 2, 0);
    set_request_timer(c, TIMER_IDLE, s->limits.header_timeout_ms); /* a new connection must start a request */
    if (s->limits.max_connections && open > s->limits.max_connections)
        report_http_error(c, CE_HTTP_ERR_OVERLOADED);
}

/* Serve an already-connected socket as if it had just been accepted. */
int ce_server_adopt(ce_server *s, int fd) {
    evutil_make_socket_nonblocking(fd);
    on_accept(s->listener, fd, NULL, 0, s);
    return 0;
}

/* Listen on host:port (port 0 picks a free one), sharing it when reuse_port. NULL on failure. */
ce_server *ce_server_new(ce_loop *loop, const char *host, int port, const ce_server_limits *limits,
                         const ce_server_callbacks *cbs, void *ctx, int reuse_port) {
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *ai = NULL;
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    if (getaddrinfo(host, port_s, &hints, &ai) != 0 || !ai) return NULL;
    ce_server *s = calloc(1, sizeof(*s));
    if (!s) { freeaddrinfo(ai); return NULL; }
    s->loop = loop;
    s->limits = *limits;
    s->cbs = *cbs;
    s->ctx = ctx;
    s->open_count = &s->open_conns;
    unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | (reuse_port ? LEV_OPT_REUSEABLE_PORT : 0);
    s->listener = evconnlistener_new_bind(ce_loop_base(loop), on_accept, s, flags, 1024, ai->ai_addr,
                                          (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    s->flush_ev = event_new(ce_loop_base(loop), -1, 0, flush_queued, s);
    if (!s->listener || !s->flush_ev) {
        if (s->listener) evconnlistener_free(s->listener);
        if (s->flush_ev) event_free(s->flush_ev);
        free(s);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &sl);
    s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return s;
}

/* The bound port. */
int ce_server_port(const ce_server *s) { return s->port; }

/* Stop accepting new connections (graceful shutdown); open ones stay. */
void ce_server_stop_listening(ce_server *s) {
    if (s && s->listener) evconnlistener_disable(s->listener);
}

/* Stop listening; open connections stay until closed. */
void ce_server_free(ce_server *s) {
    if (!s) return;
    evconnlistener_free(s->listener);
    while (s->flush_head) {
        ce_conn *c = s->flush_head;
        s->flush_head = c->flush_next;
        c->flush_queued = 0;
        ce_conn_release(c);
    }
    event_free(s->flush_ev);
    free(s);
}

/* ---- connection handles ---- */

void ce_conn_retain(ce_conn *c) { c->refs++; }

void ce_conn_release(ce_conn *c) {
    if (--c->refs > 0) return;
    free(c->buf);
    free(c->msg);
    free(c);
}

int ce_conn_is_open(const ce_conn *c) { return c->open; }

uint64_t ce_conn_id(const ce_conn *c) { return c->id; }

size_t ce_conn_output_pending(const ce_conn *c) {
    return c->open && c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

uint64_t ce_conn_idle_ms(const ce_conn *c) { return now_ms() - c->last_read_ms; }

size_t ce_conn_input_retained(const ce_conn *c) {
    size_t unparsed = c->open && c->bev ? evbuffer_get_length(bufferevent_get_input(c->bev)) : 0;
    return unparsed + c->buf_cap + c->msg_cap;
}

int ce_conn_is_paused(const ce_conn *c) { return c->out_paused; }

unsigned ce_server_connections(const ce_server *s) { return __atomic_load_n(s->open_count, __ATOMIC_RELAXED); }

/* Count s's connections with first's, so max_connections bounds both (first must outlive s). */
void ce_server_count_with(ce_server *s, ce_server *first) { s->open_count = first->open_count; }

/* ---- writing ---- */

/* Write one HTTP response and resume reading the next pipelined request. */
int ce_http_respond(ce_conn *c, int status, const char *reason, const char *content_type, const char *body,
                    size_t body_len, const char *extra_headers, int close) {
    if (!c->open || c->mode != MODE_HTTP) return -1;
    int keep = !close && http_should_keep_alive(&c->parser) && !c->error_kind;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (status == 204 || status == 304) { /* no content: no Content-Type/Content-Length (RFC 9110 8.6) */
        evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: celeris\r\n%s%s\r\n", status, reason,
                            http_date(), keep ? "" : "Connection: close\r\n", extra_headers ? extra_headers : "");
        body_len = 0;
    } else {
        evbuffer_add_printf(out,
                            "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: celeris\r\nContent-Type: %s\r\n"
                            "Content-Length: %zu\r\n%s%s\r\n",
                            status, reason, http_date(), content_type ? content_type : "application/json", body_len,
                            keep ? "" : "Connection: close\r\n", extra_headers ? extra_headers : "");
    }
    if (body_len && !c->is_head) evbuffer_add(out, body, body_len);
    c->is_head = 0;
    queue_output(c);
    if (!keep) {
        c->close_after_write = 1;
        set_request_timer(c, TIMER_NONE, 0);
        update_reading(c);
        return 0;
    }
    c->awaiting_response = 0;
    c->held = 0;
    reset_request(c);
    shrink_buffers(c);
    set_request_timer(c, TIMER_IDLE,
                      c->srv->limits.idle_timeout_ms ? c->srv->limits.idle_timeout_ms : c->srv->limits.header_timeout_ms);
    update_reading(c);
    process_input(c);
    return 0;
}

/* Answer the current request with 101 and switch to WebSocket frames. */
int ce_ws_accept(ce_conn *c, const char *key, size_t key_len) {
    if (!c->open || c->mode != MODE_HTTP) return -1;
    char accept[29];
    ce_ws_accept_key(key, key_len, accept);
    evbuffer_add_printf(bufferevent_get_output(c->bev),
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: %s\r\n\r\n",
                        accept);
    queue_output(c);
    c->mode = MODE_WS;
    c->awaiting_response = 0;
    c->held = 0;
    reset_request(c);
    shrink_buffers(c);
    set_request_timer(c, TIMER_NONE, 0); /* WebSocket liveness is Swift's (pings) */
    update_reading(c);
    if (!c->processing) process_input(c);
    return 0;
}

/* Send one unfragmented frame. */
int ce_ws_send(ce_conn *c, int opcode, const char *data, size_t len) {
    if (!c->open || c->mode != MODE_WS || c->close_sent) return -1;
    uint8_t head[10];
    size_t hl = ce_ws_write_header(head, 1, opcode, len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, head, hl);
    if (len) evbuffer_add(out, data, len);
    queue_output(c);
    return 0;
}

/* Send a close frame; the socket closes on the peer's answer or after 2 s. */
int ce_ws_close(ce_conn *c, int code, const char *reason) {
    if (!c->open || c->mode != MODE_WS || c->close_sent) return -1;
    uint8_t payload[125];
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 123) rl = 123;
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (rl) memcpy(payload + 2, reason, rl);
    ce_ws_send(c, CE_WS_CLOSE, (const char *)payload, rl + 2);
    c->close_sent = 1;
    if (c->ws_failed) {
        c->close_after_write = 1;
        update_reading(c);
        return 0;
    }
    close_after(c, 2);
    return 0;
}

/* ---- shared frames ---- */

ce_frame *ce_frame_new(int opcode, const char *data, size_t len) {
    uint8_t head[10];
    size_t hl = ce_ws_write_header(head, 1, opcode, len);
    ce_frame *f = malloc(sizeof(*f) + hl + len);
    if (!f) return NULL;
    f->refs = 1;
    f->len = hl + len;
    memcpy(f->data, head, hl);
    if (len) memcpy(f->data + hl, data, len);
    return f;
}

void ce_frame_release(ce_frame *f) {
    if (f && --f->refs == 0) free(f);
}

/* evbuffer cleanup: the connection is done with the frame's bytes. */
static void frame_sent(const void *data, size_t len, void *arg) {
    (void)data; (void)len;
    ce_frame_release(arg);
}

int ce_ws_send_frame(ce_conn *c, ce_frame *f) {
    if (!c->open || c->mode != MODE_WS || c->close_sent) return -1;
    f->refs++;
    if (evbuffer_add_reference(bufferevent_get_output(c->bev), f->data, f->len, frame_sent, f) < 0) {
        f->refs--;
        return -1;
    }
    queue_output(c);
    return 0;
}
