/* http_fuzzer.c: libFuzzer target for CEventShim's request path. Each input
 * is what a client sends on one connection: HTTP/1.1 requests (pipelined,
 * chunked, oversized…) and, after an upgrade to /ws, WebSocket frames. */
#include "CEventShim.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static ce_loop *loop;
static ce_server *server;
static int closed;

/* Answer every request; upgrade /ws. */
static void on_request(ce_conn *c, const ce_http_request *req, void *ctx) {
    (void)ctx;
    if (req->upgrade && req->url_len >= 3 && memcmp(req->url, "/ws", 3) == 0) {
        for (size_t i = 0; i < req->header_count; i++)
            if (req->headers[i].name_len == 17 && strncasecmp(req->headers[i].name, "Sec-WebSocket-Key", 17) == 0) {
                ce_ws_accept(c, req->headers[i].value, req->headers[i].value_len);
                return;
            }
    }
    ce_http_respond(c, 200, "OK", "application/json", req->body, req->body_len, NULL, 0);
}

static void on_http_error(ce_conn *c, int kind, void *ctx) {
    (void)ctx;
    ce_http_respond(c, kind == CE_HTTP_ERR_BODY_TOO_LARGE ? 413 : 400, "Bad", NULL, "{}", 2, NULL, 1);
}

static void on_ws_message(ce_conn *c, int opcode, const char *data, size_t len, void *ctx) {
    (void)ctx;
    if (opcode == CE_WS_TEXT && !ce_utf8_valid((const uint8_t *)data, len)) { ce_ws_close(c, 1007, "utf8"); return; }
    ce_ws_send(c, opcode, data, len);
}

static void on_ws_error(ce_conn *c, int kind, void *ctx) {
    (void)ctx;
    ce_ws_close(c, kind == CE_WS_ERR_TOO_BIG ? 1009 : 1002, "protocol error");
}

static void on_ws_close(ce_conn *c, int code, void *ctx) { (void)c; (void)code; (void)ctx; }
static void on_close(ce_conn *c, void *ctx) { (void)c; (void)ctx; closed = 1; }

/* One loop and server for the whole run, limits small enough to be hit. */
static void setup(void) {
    loop = ce_loop_new();
    /* request timers armed (never firing in a run) and an output limit small enough to pause and resume */
    ce_server_limits limits = { 2048, 4096, 4096, 10000, 10000, 0, 8192 };
    ce_server_callbacks cbs = { on_request, on_http_error, on_ws_message, on_ws_error, on_ws_close, on_close };
    server = ce_server_new(loop, "127.0.0.1", 0, &limits, &cbs, NULL, 0);
    if (!server) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!loop) setup();
    if (size > 60000) return 0; /* fits the socket buffer in one write */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return 0;
    int sndbuf = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    closed = 0;
    ce_server_adopt(server, sv[0]);
    if (size) (void)!write(sv[1], data, size);
    shutdown(sv[1], SHUT_WR);
    char sink[65536];
    for (int i = 0; i < 64 && !closed; i++) {
        ce_loop_run_once(loop);
        while (recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT) > 0) {}
    }
    close(sv[1]); /* the server sees EOF/reset and frees the connection */
    for (int i = 0; i < 64 && !closed; i++) ce_loop_run_once(loop);
    return 0;
}
