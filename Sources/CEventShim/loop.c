/* loop.c: the libevent event base and timers. */
#include "CEventShim.h"
#include "shim_internal.h"

#include <malloc.h>
#include <stdlib.h>

struct ce_timer {
    struct event *ev;
    ce_timer_cb cb;
    void *ctx;
};

struct ce_loop {
    struct event_base *base;
};

/* Create an event loop (one per thread). */
ce_loop *ce_loop_new(void) {
    ce_loop *loop = calloc(1, sizeof(*loop));
    if (!loop) return NULL;
    loop->base = event_base_new();
    if (!loop->base) { free(loop); return NULL; }
    return loop;
}

/* Free a loop that no longer runs. */
void ce_loop_free(ce_loop *loop) {
    if (!loop) return;
    event_base_free(loop->base);
    free(loop);
}

/* The libevent base behind a loop (internal). */
struct event_base *ce_loop_base(ce_loop *loop) { return loop->base; }

/* Run until ce_loop_break; returns 0 on a clean stop. */
int ce_loop_run(ce_loop *loop) {
    int rc = event_base_loop(loop->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return rc < 0 ? -1 : 0;
}

/* Ask a running loop to stop after the current callbacks. */
void ce_loop_break(ce_loop *loop) { event_base_loopbreak(loop->base); }

/* Run ready callbacks once without blocking (tests, fuzzing). */
int ce_loop_run_once(ce_loop *loop) { return event_base_loop(loop->base, EVLOOP_NONBLOCK); }

/* libevent trampoline for timers. */
static void timer_fired(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    ce_timer *t = arg;
    t->cb(t->ctx);
}

/* Create a stopped timer that calls cb(ctx) on the loop. */
ce_timer *ce_timer_new(ce_loop *loop, ce_timer_cb cb, void *ctx) {
    ce_timer *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->cb = cb;
    t->ctx = ctx;
    t->ev = event_new(loop->base, -1, 0, timer_fired, t);
    return t;
}

/* Arm a timer for ms milliseconds, repeating when repeat != 0. */
void ce_timer_start(ce_timer *t, uint64_t ms, int repeat) {
    struct event_base *base = event_get_base(t->ev);
    event_del(t->ev);
    event_assign(t->ev, base, -1, repeat ? EV_PERSIST : 0, timer_fired, t);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    event_add(t->ev, &tv);
}

/* Disarm a timer. */
void ce_timer_stop(ce_timer *t) { event_del(t->ev); }

/* Disarm and free a timer. */
void ce_timer_free(ce_timer *t) {
    if (!t) return;
    event_free(t->ev);
    free(t);
}

/* Hand memory the allocator holds but no longer uses back to the OS (malloc_trim). */
void ce_release_free_memory(void) { malloc_trim(0); }
