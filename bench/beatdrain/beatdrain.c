/* beatdrain.c: the scheduler bench's consumer (bench/beat_bench.py).
 *
 *   beatdrain REDIS_PORT QUEUE OUT_FILE
 *
 * Pops QUEUE as fast as it fills (BLMPOP 0.05 1 QUEUE RIGHT COUNT 100: oldest first, blocking
 * while it is empty) and appends one line per message to OUT_FILE: "<entry> <arrival>", the entry
 * being the first integer of the message's `argsrepr` header (-1 when there is none) and the
 * arrival the wall-clock time (CLOCK_REALTIME, the clock Redis' TIME reads) in microseconds since
 * the epoch at which the reply holding it was read. Lines are flushed after each reply, so the
 * bench can follow the file. Runs until SIGTERM or SIGINT, then exits 0. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The first integer after `"argsrepr":` and its opening quote and bracket, or -1. */
static long entry_of(const char *s, size_t len) {
    static const char key[] = "\"argsrepr\"";
    const char *p = memmem(s, len, key, sizeof key - 1);
    if (!p) return -1;
    const char *end = s + len;
    p += sizeof key - 1;
    while (p < end && (*p == ' ' || *p == ':')) p++;
    if (p < end && *p == '"') p++;
    if (p < end && (*p == '[' || *p == '(')) p++;
    if (p >= end || *p < '0' || *p > '9') return -1;
    long v = 0;
    while (p < end && *p >= '0' && *p <= '9' && v < 100000000) v = v * 10 + (*p++ - '0');
    return v;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: beatdrain REDIS_PORT QUEUE OUT_FILE\n");
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    FILE *out = fopen(argv[3], "w");
    if (!out) {
        perror(argv[3]);
        return 1;
    }
    redisContext *r = redisConnect("127.0.0.1", atoi(argv[1]));
    if (!r || r->err) {
        fprintf(stderr, "beatdrain: cannot connect to redis on port %s\n", argv[1]);
        return 1;
    }
    while (!stop) {
        redisReply *rep = redisCommand(r, "BLMPOP 0.05 1 %s RIGHT COUNT 100", argv[2]);
        if (!rep) {
            if (stop) break;
            fprintf(stderr, "beatdrain: %s\n", r->errstr);
            return 1;
        }
        long long t = now_us();
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_ARRAY) {
            redisReply *items = rep->element[1];
            for (size_t i = 0; i < items->elements; i++) {
                redisReply *m = items->element[i];
                long e = m->type == REDIS_REPLY_STRING ? entry_of(m->str, m->len) : -1;
                fprintf(out, "%ld %lld\n", e, t);
            }
            fflush(out);
        } else if (rep->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "beatdrain: %s\n", rep->str);
            return 1;
        }
        freeReplyObject(rep);
    }
    fclose(out);
    redisFree(r);
    return 0;
}
