/* tasklat.c: end-to-end task latency at a fixed offered rate, for the latency bench.
 *
 *   tasklat REDIS_PORT RATE SECONDS OUT_FILE
 *
 * A sender thread LPUSHes `noop` tasks (Celery protocol v2 envelopes, as a
 * Python client writes them) on queue "celery" at RATE per second for SECONDS:
 * it sleeps to each task's due time (absolute deadline, 1 us timer slack) and
 * never waits on LPUSH replies before the next send. The main thread
 * PSUBSCRIBEs to celery-task-meta-* (the result backend publishes every stored
 * result there) and writes, per task, the time from its *scheduled* send to its
 * result's publish in microseconds, one per line, to OUT_FILE: scheduled, not
 * actual, so a stalled sender cannot hide queueing (no coordinated omission).
 * The last stdout line is a JSON summary with the sender's own lateness
 * (p50/p99 of actual write - scheduled time), which that figure includes.
 * Progress goes to stderr once a second; it stops when every result arrived or
 * 10 s after the last send. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int redis_port;
static double rate, seconds, start;
static long total;
static volatile long sent;
static unsigned nonce;

/* base64 of [[], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}] */
static const char *body =
    "W1tdLCB7fSwgeyJjYWxsYmFja3MiOiBudWxsLCAiZXJyYmFja3MiOiBudWxsLCAiY2hhaW4iOiBudWxsLCAiY2hvcmQiOiBudWxsfV0=";

/* Task i's id: a v4-shaped UUID carrying the run's nonce and i. */
static void task_id(long i, char out[37]) { snprintf(out, 37, "%08x-0000-4000-8000-%012llx", nonce, (unsigned long long)i & 0xffffffffffffULL); }

/* One envelope as kombu writes it. */
static int envelope(long i, char *buf, size_t cap) {
    char id[37], tag[37];
    task_id(i, id);
    snprintf(tag, sizeof(tag), "%08x-0000-4000-9000-%012llx", nonce, (unsigned long long)i & 0xffffffffffffULL);
    return snprintf(buf, cap,
        "{\"body\": \"%s\", \"content-encoding\": \"utf-8\", \"content-type\": \"application/json\", "
        "\"headers\": {\"lang\": \"py\", \"task\": \"noop\", \"id\": \"%s\", \"shadow\": null, \"eta\": null, "
        "\"expires\": null, \"group\": null, \"group_index\": null, \"retries\": 0, \"timelimit\": [null, null], "
        "\"root_id\": \"%s\", \"parent_id\": null, \"argsrepr\": \"()\", \"kwargsrepr\": \"{}\", \"origin\": \"tasklat\", "
        "\"ignore_result\": false, \"replaced_task_nesting\": 0, \"stamped_headers\": null, \"stamps\": {}}, "
        "\"properties\": {\"correlation_id\": \"%s\", \"reply_to\": \"tasklat\", \"delivery_mode\": 2, "
        "\"delivery_info\": {\"exchange\": \"\", \"routing_key\": \"celery\"}, \"priority\": 0, "
        "\"body_encoding\": \"base64\", \"delivery_tag\": \"%s\"}}",
        body, id, id, id, tag);
}

/* Seconds since `start` at which task i is due. */
static double due_at(long i) { return (double)i / rate; }

/* Sleep until `start + t` (absolute, so a late wake-up does not drift). */
static void sleep_until(double t) {
    double when = start + t;
    struct timespec ts = { .tv_sec = (time_t)when, .tv_nsec = (long)((when - (time_t)when) * 1e9) };
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Read whatever LPUSH replies have arrived, without waiting; how many. */
static long drain_replies(redisContext *r, int block) {
    long n = 0;
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(r->reader, &rep) != REDIS_OK) { fprintf(stderr, "LPUSH: bad reply\n"); exit(1); }
        if (rep) { freeReplyObject(rep); n++; continue; }
        struct pollfd p = { .fd = r->fd, .events = POLLIN };
        if (poll(&p, 1, block ? 1000 : 0) <= 0) return n;
        if (redisBufferRead(r) != REDIS_OK) { fprintf(stderr, "LPUSH: %s\n", r->errstr); exit(1); }
        if (block) return n;
    }
}

/* Sender lateness per task (actual LPUSH write - scheduled time), microseconds. */
static float *send_lag;

/* Sender: sleep until the next task is due (1 us timer slack, absolute deadline),
 * push every task whose time has come in one write, and read the LPUSH replies
 * as they arrive, never waiting on them before the next send. */
static void *send_loop(void *arg) {
    (void)arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    redisContext *r = redisConnect("127.0.0.1", redis_port);
    if (!r || r->err) { fprintf(stderr, "redis connect failed\n"); exit(1); }
    char buf[2048];
    long i = 0, replies = 0;
    while (i < total) {
        sleep_until(due_at(i));
        long due = (long)((now() - start) * rate) + 1;
        if (due > total) due = total;
        long first = i;
        for (; i < due; i++) {
            int len = envelope(i, buf, sizeof(buf));
            redisAppendCommand(r, "LPUSH celery %b", buf, (size_t)len);
        }
        int done = 0;
        while (!done)
            if (redisBufferWrite(r, &done) != REDIS_OK) { fprintf(stderr, "LPUSH: %s\n", r->errstr); exit(1); }
        double t = now() - start;
        for (long k = first; k < i; k++) send_lag[k] = (float)((t - due_at(k)) * 1e6);
        sent = i;
        replies += drain_replies(r, 0);
    }
    while (replies < total) replies += drain_replies(r, 1);
    redisFree(r);
    return NULL;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: tasklat REDIS_PORT RATE SECONDS OUT_FILE\n"); return 2; }
    redis_port = atoi(argv[1]);
    rate = atof(argv[2]);
    seconds = atof(argv[3]);
    total = (long)(rate * seconds);
    FILE *out = fopen(argv[4], "w");
    if (!out || total <= 0) { fprintf(stderr, "bad arguments\n"); return 2; }
    nonce = (unsigned)getpid() ^ (unsigned)time(NULL);
    char *seen = calloc(total, 1);
    send_lag = calloc(total, sizeof(float));
    redisContext *sub = redisConnect("127.0.0.1", redis_port);
    if (!sub || sub->err) { fprintf(stderr, "redis connect failed\n"); return 1; }
    redisReply *rep = redisCommand(sub, "PSUBSCRIBE celery-task-meta-*");
    freeReplyObject(rep);
    start = now();
    pthread_t t;
    pthread_create(&t, NULL, send_loop, NULL);
    long got = 0;
    double last_progress = start, last_send_done = 0;
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "%08x", nonce);
    while (got < total) {
        double tnow = now();
        if (sent >= total && last_send_done == 0) last_send_done = tnow;
        if (last_send_done && tnow - last_send_done > 10) break;
        if (tnow - last_progress >= 1) {
            fprintf(stderr, "  %.0f/s: %5.1fs sent %ld, results %ld\n", rate, tnow - start, sent, got);
            last_progress = tnow;
        }
        void *v = NULL;
        if (redisReaderGetReply(sub->reader, &v) != REDIS_OK) { fprintf(stderr, "subscriber: bad reply\n"); break; }
        if (!v) { /* nothing buffered: wait up to 200 ms for more bytes */
            struct pollfd p = { .fd = sub->fd, .events = POLLIN };
            if (poll(&p, 1, 200) > 0 && redisBufferRead(sub) != REDIS_OK) {
                fprintf(stderr, "subscriber: %s\n", sub->errstr);
                break;
            }
            continue;
        }
        redisReply *m = v;
        double recv = now();
        /* ["pmessage", pattern, channel, payload] */
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 4) {
            const char *ch = m->element[2]->str;
            const char *id = ch + strlen("celery-task-meta-");
            if (strlen(ch) > strlen("celery-task-meta-") && strncmp(id, prefix, 8) == 0) {
                long i = strtol(id + 24, NULL, 16);
                if (i >= 0 && i < total && !seen[i]) {
                    seen[i] = 1;
                    got++;
                    double scheduled = start + (double)i / rate;
                    fprintf(out, "%.0f\n", (recv - scheduled) * 1e6);
                }
            }
        }
        freeReplyObject(m);
    }
    pthread_join(t, NULL);
    fclose(out);
    fprintf(stderr, "  %.0f/s: %ld of %ld results\n", rate, got, total);
    qsort(send_lag, total, sizeof(float), cmp_float);
    printf("{\"rate\": %.0f, \"sent\": %ld, \"results\": %ld, \"send_lag_us\": {\"p50\": %.0f, \"p99\": %.0f}}\n",
           rate, total, got, send_lag[total / 2], send_lag[total * 99 / 100]);
    return got == total ? 0 : 3;
}
