/* uring_file.c: read a file through io_uring, several chunk reads in flight. */
#include "CEventShim.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

struct ce_uring {
    struct io_uring ring;
    unsigned depth;
};

/* Set up a ring with `depth` entries; NULL with *err = errno when refused (EPERM, ENOSYS). */
ce_uring *ce_uring_new(unsigned depth, int *err) {
    ce_uring *u = calloc(1, sizeof(*u));
    if (!u) { *err = ENOMEM; return NULL; }
    int rc = io_uring_queue_init(depth, &u->ring, 0);
    if (rc < 0) {
        *err = -rc;
        free(u);
        return NULL;
    }
    u->depth = depth;
    return u;
}

/* Tear a ring down. */
void ce_uring_free(ce_uring *u) {
    if (!u) return;
    io_uring_queue_exit(&u->ring);
    free(u);
}

/* Read exactly `len` bytes of fd from offset 0 into buf, `chunk` bytes per
 * read with up to `depth` reads in flight. Returns len, or -errno (-EIO for
 * a short read: the file changed under us). */
long long ce_uring_read_file(ce_uring *u, int fd, uint8_t *buf, size_t len, size_t chunk) {
    size_t next = 0, done = 0;
    unsigned inflight = 0;
    int err = 0;
    while (done < len && !err) {
        while (inflight < u->depth && next < len) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
            if (!sqe) break;
            size_t n = len - next < chunk ? len - next : chunk;
            io_uring_prep_read(sqe, fd, buf + next, (unsigned)n, (__u64)next);
            sqe->user_data = n;
            next += n;
            inflight++;
        }
        int rc = io_uring_submit_and_wait(&u->ring, 1);
        if (rc < 0) { err = -rc; break; }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&u->ring, head, cqe) {
            seen++;
            if (cqe->res < 0) err = -cqe->res;
            else if ((unsigned long long)cqe->res != cqe->user_data) err = EIO;
            else done += (size_t)cqe->res;
        }
        io_uring_cq_advance(&u->ring, seen);
        inflight -= seen;
    }
    while (inflight > 0) { /* drain what is still in flight before returning the buffer */
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&u->ring, &cqe) < 0) break;
        io_uring_cqe_seen(&u->ring, cqe);
        inflight--;
    }
    return err ? -(long long)err : (long long)done;
}
