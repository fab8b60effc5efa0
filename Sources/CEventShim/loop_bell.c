/* loop_bell.c: a bell (eventfd, wait.c) watched by a loop, so another thread can
 * wake the loop to take work it handed over: ring from any thread, the callback
 * runs on the loop's thread (once per wake, however many rings came before it). */
#include "CEventShim.h"
#include "shim_internal.h"

#include <stdlib.h>
#include <unistd.h>

struct ce_bell_watch {
    struct event *ev;
    int bell;
    ce_timer_cb cb;
    void *ctx;
};

/* libevent trampoline: silence the bell, then run the callback. */
static void bell_rang(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    ce_bell_watch *w = arg;
    ce_bell_clear(w->bell);
    w->cb(w->ctx);
}

/* Watch a new bell on the loop; NULL on failure. The bell is ce_bell_watch_fd's. */
ce_bell_watch *ce_bell_watch_new(ce_loop *loop, ce_timer_cb cb, void *ctx) {
    ce_bell_watch *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->bell = ce_bell_new();
    if (w->bell < 0) { free(w); return NULL; }
    w->cb = cb;
    w->ctx = ctx;
    w->ev = event_new(ce_loop_base(loop), w->bell, EV_READ | EV_PERSIST, bell_rang, w);
    if (!w->ev || event_add(w->ev, NULL) != 0) {
        if (w->ev) event_free(w->ev);
        close(w->bell);
        free(w);
        return NULL;
    }
    return w;
}

/* The bell to ring (ce_bell_ring) from any thread. */
int ce_bell_watch_fd(const ce_bell_watch *w) { return w->bell; }

/* Set the callback's context (before the bell is first rung). */
void ce_bell_watch_set_context(ce_bell_watch *w, void *ctx) { w->ctx = ctx; }

/* Stop watching (on the loop's thread, or once it no longer runs). The bell stays open:
 * its owner closes it (close(2)) once no thread can ring it any more, so a late ring never
 * writes into a closed, possibly reused, descriptor. */
void ce_bell_watch_free(ce_bell_watch *w) {
    if (!w) return;
    event_free(w->ev);
    free(w);
}
