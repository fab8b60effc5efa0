/* wsload.c: a native WebSocket load client for the fan-out bench.
 *
 *   wsload HOST PORT CLIENTS SECONDS RATE REDIS_PORT [PATH [READERS [TASKS [STATUS_TOO]]]]
 *
 * Opens CLIENTS WebSocket connections to HOST:PORT/PATH, then publishes JSON
 * messages carrying a send timestamp on Redis channel task_status: RATE
 * messages/s (0 = as fast as the server drains them), for SECONDS. READERS
 * threads (default 2) each read a share of the connections with their own epoll
 * (one reader would time its own queue, not the server). Prints one JSON line: deliveries/s
 * and publish→receive latency percentiles. With RATE < 0 it only holds the
 * connections open for SECONDS (idle-connection memory).
 *
 * Per-task mode (TASKS > 0): each client subscribes (`{"subscribe": [ids]}`, at most
 * 100 ids a message) to TASKS tasks of its own and waits for each one's snapshot
 * (PENDING); then the publisher writes result records as workers do, pipelined:
 * SETEX celery-task-meta-<id> + PUBLISH on that channel (with STATUS_TOO = 1 also a
 * task_status message, as a Celeris worker adds), round after round of PROGRESS
 * (progress = round, ts = send time) over every task for SECONDS (RATE updates/s in
 * all, 0 = full speed, never more than 20,000 updates ahead of the clients), then one
 * SUCCESS per task. The readers check that every client got, for each of its tasks,
 * one snapshot and then each update exactly once, in order, nothing after SUCCESS.
 * Prints one JSON line (deliveries/s over the updates, latency percentiles, the check's counts).
 * Both modes mark phases on stderr ("publishing", "published") for the caller's CPU samples. */
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef struct { int fd; int index; uint8_t buf[65536]; size_t len; } client;

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile int publishing = 1;
static long published = 0;
static long delivered = 0; /* every reader's, atomically */
static int nclients = 1;

/* Per-task mode: tasks per client (0: firehose mode), whether task_status is published too,
 * updates published (PROGRESS + SUCCESS), snapshots (or per-task errors) received. */
static int ntasks = 0, status_too = 0;
static long snapshots = 0;
static volatile int publish_done = 0, stop_readers = 0;
static char run_tag[32];
/* One task's check state: the next update (round) expected, snapshots and finals seen. */
typedef struct { int next; int snapshots; int finals; } taskstate;
static taskstate *tasks;
/* What the check counts (per reader, summed at the end). */
typedef struct { long dup, gap, after_final, misrouted, unparsed, errors, extra_snapshots, foreign; } check;

/* A reader thread: its connections' epoll, the latencies it saw, its check counts, when it last got an update. */
typedef struct { int ep; double end; double *lat; size_t nlat, caplat; check ck; double last; } reader;

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

/* Per-task publisher: rounds of PROGRESS records over every task, then SUCCESS for each. */
static void append_update(redisContext *r, int task, int round, int final) {
    char id[64], key[96], rec[320], st[200];
    snprintf(id, sizeof(id), "%s-%d-%d", run_tag, task / ntasks, task % ntasks);
    snprintf(key, sizeof(key), "celery-task-meta-%s", id);
    const char *state = final ? "SUCCESS" : "PROGRESS";
    double t = now();
    snprintf(rec, sizeof(rec), "{\"status\": \"%s\", \"result\": {\"progress\": %d, \"ts\": %.6f}, \"traceback\": null, "
             "\"children\": [], \"date_done\": %s, \"task_id\": \"%s\"}", state, round, t,
             final ? "\"2026-12-04T00:00:00.000000\"" : "null", id);
    redisAppendCommand(r, "SETEX %s 86400 %s", key, rec);
    redisAppendCommand(r, "PUBLISH %s %s", key, rec);
    if (status_too) {
        snprintf(st, sizeof(st), "{\"task_id\": \"%s\", \"state\": \"%s\", \"progress\": %d, \"ts\": %.6f}", id, state, round, t);
        redisAppendCommand(r, "PUBLISH task_status %s", st);
    }
}

static void *publish_tasks(void *arg) {
    (void)arg;
    redisContext *r = redisConnect("127.0.0.1", redis_port);
    if (!r || r->err) { fprintf(stderr, "redis connect failed\n"); exit(1); }
    long total = (long)nclients * ntasks;
    int per_update = status_too ? 3 : 2, burst = rate > 0 ? (rate >= 1000 ? (int)(rate / 1000) : 1) : 100;
    long cursor = 0; int round = 0, final = 0;
    double start = now(), next = start;
    while (publishing) {
        if (!final && now() - start >= seconds) {
            /* finish the round in progress, then one SUCCESS per task */
            if (cursor == 0) { final = 1; }
        }
        int n = 0;
        for (; n < burst; n++) {
            append_update(r, (int)cursor, round, final);
            if (++cursor == total) { cursor = 0; round++; n++; break; }
        }
        for (int i = 0; i < n * per_update; i++) { void *rep; if (redisGetReply(r, &rep) != REDIS_OK) exit(1); freeReplyObject(rep); }
        __atomic_add_fetch(&published, n, __ATOMIC_RELAXED);
        if (final && cursor == 0) break;
        if (rate > 0) {
            next += n / rate;
            double wait = next - now();
            if (wait > 0) { struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) }; nanosleep(&ts, NULL); }
        }
        while (publishing && __atomic_load_n(&published, __ATOMIC_RELAXED) - __atomic_load_n(&delivered, __ATOMIC_RELAXED) > 20000)
            usleep(50);
    }
    redisFree(r);
    publish_done = 1;
    return NULL;
}

/* A field's value in a JSON text frame: the bytes after `"name":` and any spaces (NULL: absent). */
static const char *field(const uint8_t *p, size_t n, const char *name) {
    char pat[32]; int k = snprintf(pat, sizeof(pat), "\"%s\":", name);
    const uint8_t *f = memmem(p, n, pat, k);
    if (!f) return NULL;
    f += k;
    while (f < p + n && *f == ' ') f++;
    return (const char *)f;
}

/* Per-task mode: check one text frame against its task's sequence. */
static void check_frame(reader *rd, client *c, const uint8_t *p, size_t n) {
    const char *id = field(p, n, "task_id");
    const char *state = field(p, n, "state");
    size_t tag = strlen(run_tag);
    if (id && *id == '"' && (size_t)(p + n - (const uint8_t *)id) >= tag + 5 && (memcmp(id + 1, run_tag, tag) != 0 || id[1 + tag] != '-')) {
        /* another run's task (task_status still in flight from it when this client had no subscriptions yet) */
        if (!rd->ck.foreign++) fprintf(stderr, "not this run's task: %.*s\n", (int)(n < 200 ? n : 200), (const char *)p);
        return;
    }
    if (!id || *id != '"' || (size_t)(p + n - (const uint8_t *)id) < tag + 5) {
        if (!rd->ck.unparsed++) fprintf(stderr, "unparsed: %.*s\n", (int)(n < 200 ? n : 200), (const char *)p);
        return;
    }
    char *e; long ci = strtol(id + 2 + tag, &e, 10); long j = *e == '-' ? strtol(e + 1, &e, 10) : -1;
    if (ci != c->index || j < 0 || j >= ntasks) { rd->ck.misrouted++; return; }
    taskstate *t = &tasks[(long)c->index * ntasks + j];
    if (field(p, n, "error") || !state) { rd->ck.errors++; __atomic_add_fetch(&snapshots, 1, __ATOMIC_RELAXED); return; }
    if (!strncmp(state, "\"PENDING\"", 9)) {
        if (t->snapshots++) rd->ck.extra_snapshots++;
        else __atomic_add_fetch(&snapshots, 1, __ATOMIC_RELAXED);
        return;
    }
    int final = !strncmp(state, "\"SUCCESS\"", 9);
    const char *pr = field(p, n, "progress"), *ts = field(p, n, "ts");
    if (!pr || !ts || (!final && strncmp(state, "\"PROGRESS\"", 10))) { if (!rd->ck.unparsed++) fprintf(stderr, "unparsed: %.*s\n", (int)(n < 200 ? n : 200), (const char *)p); return; }
    long round = strtol(pr, NULL, 10);
    double t1 = now();
    __atomic_add_fetch(&delivered, 1, __ATOMIC_RELAXED);
    rd->last = t1;
    if (rd->nlat == rd->caplat) {
        rd->caplat = rd->caplat ? rd->caplat * 2 : 1 << 16;
        rd->lat = realloc(rd->lat, rd->caplat * sizeof(double));
    }
    rd->lat[rd->nlat++] = (t1 - strtod(ts, NULL)) * 1000;
    if (t->finals) { rd->ck.after_final++; return; }
    if (round < t->next) { rd->ck.dup++; return; }
    if (round > t->next) rd->ck.gap += round - t->next;
    if (final) t->finals++; else t->next = (int)round + 1;
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
        if ((f[0] & 0x0F) == 1 && ntasks) {
            check_frame(rd, c, f + hl, plen);
        } else if ((f[0] & 0x0F) == 1) {
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
    while (now() < rd->end && !stop_readers) {
        struct epoll_event evs[256]; int k = epoll_wait(rd->ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            client *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
            if (r > 0) { c->len += r; drain(rd, c); }
        }
    }
    return NULL;
}

/* Send one masked text frame (mask key 0: the payload goes as is). */
static int ws_send_text(int fd, const char *text, size_t n) {
    uint8_t h[8] = { 0x81 }; size_t hl;
    if (n < 126) { h[1] = 0x80 | (uint8_t)n; hl = 2; }
    else { h[1] = 0x80 | 126; h[2] = (uint8_t)(n >> 8); h[3] = (uint8_t)n; hl = 4; }
    memset(h + hl, 0, 4); hl += 4;
    struct iovec v[2] = { { h, hl }, { (void *)text, n } };
    return writev(fd, v, 2) == (ssize_t)(hl + n) ? 0 : -1;
}

static void pct(double *lat, size_t nlat, double *p50, double *p99, double *p999) {
    qsort(lat, nlat, sizeof(double), cmp);
    *p50 = nlat ? lat[nlat / 2] : 0; *p99 = nlat ? lat[(size_t)(nlat * 0.99)] : 0; *p999 = nlat ? lat[(size_t)(nlat * 0.999)] : 0;
}

/* Per-task mode, once every client is connected: subscribe, wait for the snapshots, publish, check. */
static int run_tasks(client *cs, reader *rds, pthread_t *threads, int nreaders, int n) {
    long total = (long)n * ntasks;
    tasks = calloc(total, sizeof(taskstate));
    for (int t = 0; t < nreaders; t++) { rds[t].end = now() + 3600; pthread_create(&threads[t], NULL, read_loop, &rds[t]); }
    double t0 = now();
    char *msg = malloc(64 + 100 * 64);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < ntasks; j += 100) {
            size_t len = (size_t)sprintf(msg, "{\"subscribe\": [");
            for (int k = j; k < j + 100 && k < ntasks; k++)
                len += (size_t)sprintf(msg + len, "%s\"%s-%d-%d\"", k > j ? ", " : "", run_tag, i, k);
            len += (size_t)sprintf(msg + len, "]}");
            if (ws_send_text(cs[i].fd, msg, len) < 0) { fprintf(stderr, "subscribe on %d failed: %s\n", i, strerror(errno)); return 1; }
        }
    }
    for (double told = t0; __atomic_load_n(&snapshots, __ATOMIC_RELAXED) < total && now() - t0 < 60; usleep(1000))
        if (now() - told >= 5) { told = now(); fprintf(stderr, "%ld of %ld snapshots so far\n", snapshots, total); }
    double subscribed_s = now() - t0;
    long snaps = __atomic_load_n(&snapshots, __ATOMIC_RELAXED);
    fprintf(stderr, "%ld of %ld snapshots in %.2f s\n", snaps, total, subscribed_s);
    fprintf(stderr, "publishing\n");
    pthread_t pub; double start = now();
    pthread_create(&pub, NULL, publish_tasks, NULL);
    /* until every update is in, or nothing has arrived for 10 s while some are owed (the publisher stops then) */
    long seen = 0; double progressed = now();
    for (;;) {
        usleep(1000);
        long d = __atomic_load_n(&delivered, __ATOMIC_RELAXED);
        if (publish_done && d >= __atomic_load_n(&published, __ATOMIC_RELAXED)) break;
        if (d != seen || d >= __atomic_load_n(&published, __ATOMIC_RELAXED)) { seen = d; progressed = now(); }
        if (now() - progressed > 10) {
            fprintf(stderr, "no update for 10 s with %ld owed: stopping\n", __atomic_load_n(&published, __ATOMIC_RELAXED) - d);
            publishing = 0;
            while (!publish_done) usleep(1000);
            break;
        }
    }
    fprintf(stderr, "published\n");
    usleep(200000); /* anything late (a duplicate) still counts */
    stop_readers = 1;
    for (int t = 0; t < nreaders; t++) pthread_join(threads[t], NULL);
    pthread_join(pub, NULL);
    double last = start;
    check ck = { 0 };
    size_t nlat = 0;
    for (int t = 0; t < nreaders; t++) {
        if (rds[t].last > last) last = rds[t].last;
        nlat += rds[t].nlat;
        ck.dup += rds[t].ck.dup; ck.gap += rds[t].ck.gap; ck.after_final += rds[t].ck.after_final;
        ck.misrouted += rds[t].ck.misrouted; ck.unparsed += rds[t].ck.unparsed; ck.errors += rds[t].ck.errors;
        ck.extra_snapshots += rds[t].ck.extra_snapshots; ck.foreign += rds[t].ck.foreign;
    }
    double *lat = malloc((nlat ? nlat : 1) * sizeof(double));
    for (int t = 0, o = 0; t < nreaders; t++) { memcpy(lat + o, rds[t].lat, rds[t].nlat * sizeof(double)); o += rds[t].nlat; }
    double p50, p99, p999; pct(lat, nlat, &p50, &p99, &p999);
    long no_snapshot = 0, no_final = 0, missing_updates = 0;
    for (long k = 0; k < total; k++) {
        no_snapshot += tasks[k].snapshots == 0;
        no_final += tasks[k].finals == 0;
    }
    missing_updates = __atomic_load_n(&published, __ATOMIC_RELAXED) - __atomic_load_n(&delivered, __ATOMIC_RELAXED)
                      + ck.dup + ck.after_final;
    int exact = !ck.dup && !ck.gap && !ck.after_final && !ck.misrouted && !ck.unparsed && !ck.errors && !ck.extra_snapshots
                && !no_snapshot && !no_final && !missing_updates;
    printf("{\"clients\": %d, \"tasks_per_client\": %d, \"tasks\": %ld, \"task_status_too\": %s, \"subscribe_s\": %.3f, "
           "\"published\": %ld, \"delivered\": %ld, \"expected\": %ld, \"deliveries_per_s\": %.0f, "
           "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, "
           "\"check\": {\"exactly_once\": %s, \"duplicates\": %ld, \"gaps\": %ld, \"after_final\": %ld, \"misrouted\": %ld, "
           "\"unparsed\": %ld, \"errors\": %ld, \"extra_snapshots\": %ld, \"tasks_without_snapshot\": %ld, "
           "\"tasks_without_final\": %ld, \"undelivered\": %ld, \"other_runs_messages\": %ld}}\n",
           n, ntasks, total, status_too ? "true" : "false", subscribed_s, published, delivered, published,
           delivered / (last - start > 0 ? last - start : 1), p50, p99, p999, exact ? "true" : "false",
           ck.dup, ck.gap, ck.after_final, ck.misrouted, ck.unparsed, ck.errors, ck.extra_snapshots, no_snapshot, no_final,
           missing_updates, ck.foreign);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: wsload HOST PORT CLIENTS SECONDS RATE REDIS_PORT [PATH]\n"); return 2; }
    const char *host = argv[1]; int port = atoi(argv[2]); int n = atoi(argv[3]);
    seconds = atof(argv[4]); rate = atof(argv[5]); redis_port = atoi(argv[6]);
    const char *path = argc > 7 ? argv[7] : "/ws";
    int nreaders = argc > 8 ? atoi(argv[8]) : 2;
    if (nreaders < 1) nreaders = 1;
    ntasks = argc > 9 ? atoi(argv[9]) : 0;
    status_too = argc > 10 ? atoi(argv[10]) : 0;
    if (ntasks < 0 || ntasks > 1000) { fprintf(stderr, "TASKS must be 0...1000\n"); return 2; }
    snprintf(run_tag, sizeof(run_tag), "fo%ld", (long)getpid() ^ (long)now());
    struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl); rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl);
    nclients = n;
    client *cs = calloc(n, sizeof(client));
    reader *rds = calloc(nreaders, sizeof(reader));
    for (int t = 0; t < nreaders; t++) rds[t].ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        cs[i].fd = ws_connect(host, port, path);
        cs[i].index = i;
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
    if (ntasks) return run_tasks(cs, rds, threads, nreaders, n);
    pthread_t pub; double start = now();
    for (int t = 0; t < nreaders; t++) { rds[t].end = start + seconds + 1.0; pthread_create(&threads[t], NULL, read_loop, &rds[t]); }
    fprintf(stderr, "publishing\n");
    pthread_create(&pub, NULL, publish, NULL);
    for (int t = 0; t < nreaders; t++) pthread_join(threads[t], NULL);
    publishing = 0; pthread_join(pub, NULL);
    fprintf(stderr, "published\n");
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
