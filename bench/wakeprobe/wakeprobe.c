/* wakeprobe.c: how late this machine wakes a sleeping thread, for the latency bench.
 *
 *   wakeprobe SECONDS PERIOD_US
 *
 * One thread sleeps to absolute deadlines PERIOD_US apart (1 us timer slack, as
 * tasklat's sender) for SECONDS and records how late each wake-up came. Every hop
 * of a task's trip (client -> Redis -> worker loop -> executor -> worker loop ->
 * Redis -> subscriber) is such a wake-up, so the p99 here, measured with nothing
 * else running, is a floor under any end-to-end p99. Prints one JSON line:
 * {"period_us": P, "wakeups": N, "late_us": {"p50": .., "p99": .., "p999": .., "max": ..}}. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

/* Order two latencies for qsort. */
static int by_value(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* Add `ns` nanoseconds to a timespec. */
static void advance(struct timespec *t, long ns) {
    t->tv_nsec += ns;
    while (t->tv_nsec >= 1000000000L) {
        t->tv_nsec -= 1000000000L;
        t->tv_sec++;
    }
}

/* Microseconds from `a` to `b`. */
static long micros(const struct timespec *a, const struct timespec *b) {
    return (b->tv_sec - a->tv_sec) * 1000000L + (b->tv_nsec - a->tv_nsec) / 1000L;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: wakeprobe SECONDS PERIOD_US\n"); return 2; }
    double seconds = atof(argv[1]);
    long period = atol(argv[2]);
    if (seconds <= 0 || period <= 0) { fprintf(stderr, "wakeprobe: SECONDS and PERIOD_US must be positive\n"); return 2; }
    long n = (long)(seconds * 1e6 / period);
    if (n < 1) { fprintf(stderr, "wakeprobe: SECONDS must cover at least one PERIOD_US\n"); return 2; }
    long *late = malloc(sizeof(long) * (size_t)n);
    if (!late) return 1;
    prctl(PR_SET_TIMERSLACK, 1UL);
    struct timespec due, now;
    clock_gettime(CLOCK_MONOTONIC, &due);
    for (long i = 0; i < n; i++) {
        advance(&due, period * 1000L);
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        late[i] = micros(&due, &now);
        if (late[i] > period) due = now; /* a stall: do not count the missed deadlines after it */
    }
    qsort(late, (size_t)n, sizeof(long), by_value);
    printf("{\"period_us\": %ld, \"wakeups\": %ld, \"late_us\": {\"p50\": %ld, \"p99\": %ld, \"p999\": %ld, \"max\": %ld}}\n",
           period, n, late[n / 2], late[n * 99 / 100], late[n * 999 / 1000], late[n - 1]);
    free(late);
    return 0;
}
