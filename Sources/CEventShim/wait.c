/* wait.c: wait for any of several descriptors to become readable, with a
 * microsecond timeout (poll(2) counts whole milliseconds), and a bell (an
 * eventfd) another thread rings to end such a wait early. */
#include "CEventShim.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Wait up to timeout_us (0: only look) until one of fds[0..n) is readable; readable[i]
 * is set to 1 for each that is. Returns how many are readable, or -1 (errno). */
int ce_wait_readable(const int *fds, int n, long timeout_us, unsigned char *readable) {
    if (n < 0 || n > 4096) { errno = EINVAL; return -1; }
    struct pollfd p[n > 0 ? n : 1];
    for (int i = 0; i < n; i++) p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
    struct timespec ts = { timeout_us / 1000000, (timeout_us % 1000000) * 1000 };
    int rc;
    do rc = ppoll(p, (nfds_t)n, &ts, NULL);
    while (rc < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) readable[i] = rc > 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
    return rc;
}

/* A new bell (non-blocking eventfd); -1 on failure. */
int ce_bell_new(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

/* Ring the bell: a wait watching it ends. */
void ce_bell_ring(int bell) {
    uint64_t one = 1;
    while (write(bell, &one, sizeof(one)) < 0 && errno == EINTR) {}
}

/* Silence the bell (it stays readable until cleared). */
void ce_bell_clear(int bell) {
    uint64_t n;
    while (read(bell, &n, sizeof(n)) < 0 && errno == EINTR) {}
}
