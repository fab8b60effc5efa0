/* wsload.c: a native WebSocket load client for the fan-out bench.
 *
 *   wsload HOST PORT CLIENTS SECONDS RATE REDIS_PORT [PATH [READERS]]
 *
 * Opens CLIENTS WebSocket connections to HOST:PORT/PATH, then publishes JSON
 * messages carrying a send timestamp on Redis channel task_status: RATE
 * messages/s (0 = as fast as the server drains them), for SECONDS. READERS
 * threads (default 2) each read a share of the connections with their own epoll
 * (one reader would time its own queue, not the server). Prints one JSON line: deliveries/s
 * and publish→receive latency percentiles. With RATE < 0 it only holds the
 * connections open for SECONDS (idle-connection memory). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct { int fd; uint8_t buf[65536]; size_t len; } client;

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile int publishing = 1;
static long published = 0;
static long delivered = 0; /* every reader's, atomically */
static int nclients = 1;

/* A reader thread: its connections' epoll and the latencies it saw. */
typedef struct { int ep; double end; double *lat; size_t nlat, caplat; } reader;

/* Connect and complete the WebSocket handshake (blocking). */
static int ws_connect(const char *host, int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) { close(fd); return -1; }
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host);
    if (write(fd, req, n) != n) { close(fd); return -1; }
    char resp[1024]; size_t got = 0;
    while (got < sizeof(resp) - 1) {
        ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (r <= 0) { close(fd); return -1; }
        got += r; resp[got] = 0;
        if (strstr(resp, "\r\n\r\n")) break;
    }
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0) { close(fd); return -1; }
    return fd;
}

/* Publisher thread: timestamped messages on task_status. */
static int redis_port; static double rate; static double seconds;
static void *publish(void *arg) {
    (void)arg;
    redisContext *r = redisConnect("127.0.0.1", redis_port);
    if (!r || r->err) { fprintf(stderr, "redis connect failed\n"); exit(1); }
    double start = now(), next = start;
    while (publishing && now() - start < seconds) {
        int burst = rate > 0 ? 1 : 50;
        for (int i = 0; i < burst; i++) {
            char msg[160];
            snprintf(msg, sizeof(msg), "{\"task_id\": \"bench\", \"state\": \"PROGRESS\", \"ts\": %.6f}", now());
            redisAppendCommand(r, "PUBLISH task_status %s", msg);
        }
        for (int i = 0; i < burst; i++) { void *rep; if (redisGetReply(r, &rep) != REDIS_OK) exit(1); freeReplyObject(rep); }
        published += burst;
        if (rate > 0) {
            next += 1.0 / rate;
            double wait = next - now();
            if (wait > 0) { struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) }; nanosleep(&ts, NULL); }
        } else {
            /* full speed, but never more than 2000 messages ahead of the slowest possible
             * fan-out, so Redis' pub/sub output limit never cuts the server off */
            while (publishing && published - __atomic_load_n(&delivered, __ATOMIC_RELAXED) / nclients > 2000)
                usleep(50);
        }
    }
    redisFree(r);
    return NULL;
}

/* Parse complete frames in a client's buffer; record latency of text frames. */
static void drain(reader *rd, client *c) {
    size_t pos = 0;
    while (c->len - pos >= 2) {
        uint8_t *f = c->buf + pos;
        uint64_t plen = f[1] & 0x7F; size_t hl = 2;
        if (plen == 126) { if (c->len - pos < 4) break; plen = (uint64_t)f[2] << 8 | f[3]; hl = 4; }
        else if (plen == 127) { if (c->len - pos < 10) break; plen = 0; for (int i = 0; i < 8; i++) plen = plen << 8 | f[2 + i]; hl = 10; }
        if (c->len - pos < hl + plen) break;
        if ((f[0] & 0x0F) == 1) {
            long d = __atomic_add_fetch(&delivered, 1, __ATOMIC_RELAXED);
            char *ts = memmem(f + hl, plen, "\"ts\": ", 6);
            if (ts && (d % 7 == 0 || rate > 0)) {
                double sent = strtod(ts + 6, NULL);
                if (rd->nlat == rd->caplat) {
                    rd->caplat = rd->caplat ? rd->caplat * 2 : 1 << 16;
                    rd->lat = realloc(rd->lat, rd->caplat * sizeof(double));
                }
                rd->lat[rd->nlat++] = (now() - sent) * 1000;
            }
        } else if ((f[0] & 0x0F) == 9) { /* ping: answer with a masked pong */
            uint8_t pong[6 + 125] = { 0x8A, (uint8_t)(0x80 | plen), 0, 0, 0, 0 };
            memcpy(pong + 6, f + hl, plen);
            (void)!write(c->fd, pong, 6 + plen);
        }
        pos += hl + plen;
    }
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
}

static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }

/* Reader thread: read and parse frames on its connections until its end time. */
static void *read_loop(void *arg) {
    reader *rd = arg;
    while (now() < rd->end) {
        struct epoll_event evs[256]; int k = epoll_wait(rd->ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            client *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
            if (r > 0) { c->len += r; drain(rd, c); }
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: wsload HOST PORT CLIENTS SECONDS RATE REDIS_PORT [PATH]\n"); return 2; }
    const char *host = argv[1]; int port = atoi(argv[2]); int n = atoi(argv[3]);
    seconds = atof(argv[4]); rate = atof(argv[5]); redis_port = atoi(argv[6]);
    const char *path = argc > 7 ? argv[7] : "/ws";
    int nreaders = argc > 8 ? atoi(argv[8]) : 2;
    if (nreaders < 1) nreaders = 1;
    struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl); rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl);
    nclients = n;
    client *cs = calloc(n, sizeof(client));
    reader *rds = calloc(nreaders, sizeof(reader));
    for (int t = 0; t < nreaders; t++) rds[t].ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        cs[i].fd = ws_connect(host, port, path);
        if (cs[i].fd < 0) { fprintf(stderr, "connection %d failed: %s\n", i, strerror(errno)); return 1; }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cs[i] };
        epoll_ctl(rds[i % nreaders].ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    fprintf(stderr, "%d connections open, %d reader threads\n", n, nreaders);
    pthread_t *threads = calloc(nreaders, sizeof(pthread_t));
    if (rate < 0) { /* idle: hold the connections, answer pings */
        for (int t = 0; t < nreaders; t++) { rds[t].end = now() + seconds; pthread_create(&threads[t], NULL, read_loop, &rds[t]); }
        for (int t = 0; t < nreaders; t++) pthread_join(threads[t], NULL);
        printf("{\"clients\": %d, \"idle_seconds\": %.1f}\n", n, seconds);
        return 0;
    }
    pthread_t pub; double start = now();
    for (int t = 0; t < nreaders; t++) { rds[t].end = start + seconds + 1.0; pthread_create(&threads[t], NULL, read_loop, &rds[t]); }
    pthread_create(&pub, NULL, publish, NULL);
    for (int t = 0; t < nreaders; t++) pthread_join(threads[t], NULL);
    publishing = 0; pthread_join(pub, NULL);
    double elapsed = now() - start;
    size_t nlat = 0;
    for (int t = 0; t < nreaders; t++) nlat += rds[t].nlat;
    double *lat = malloc((nlat ? nlat : 1) * sizeof(double));
    for (int t = 0, o = 0; t < nreaders; t++) { memcpy(lat + o, rds[t].lat, rds[t].nlat * sizeof(double)); o += rds[t].nlat; }
    qsort(lat, nlat, sizeof(double), cmp);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] : 0, p999 = nlat ? lat[(size_t)(nlat * 0.999)] : 0;
    printf("{\"clients\": %d, \"published\": %ld, \"delivered\": %ld, \"expected\": %ld, \"deliveries_per_s\": %.0f, "
           "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f}\n", n, published, delivered, published * n,
           delivered / elapsed, p50, p99, p999);
    return 0;
}
