/* redis_uring.c: a blocking hiredis connection's socket I/O through io_uring.
 * Each round is one submission: the pending output (SEND, MSG_WAITALL so the
 * kernel finishes a short send itself), linked to a RECV, linked to a timeout;
 * redis_sync.c feeds what arrives to hiredis' reader (after TLS, when encrypted). */
#include "CEventShim.h"
#include "shim_internal.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum { TAG_SEND = 1, TAG_RECV = 2, TAG_TIMEOUT = 3 };

struct ce_redis_uring {
    struct io_uring ring;
};

/* A ring for one connection; NULL with *err = errno when io_uring is refused. */
ce_redis_uring *ce_redis_uring_new(int *err) {
    ce_redis_uring *u = calloc(1, sizeof(*u));
    if (!u) { *err = ENOMEM; return NULL; }
    int rc = io_uring_queue_init(8, &u->ring, 0);
    if (rc < 0) {
        *err = -rc;
        free(u);
        return NULL;
    }
    return u;
}

/* Tear the ring down. */
void ce_redis_uring_free(ce_redis_uring *u) {
    if (!u) return;
    io_uring_queue_exit(&u->ring);
    free(u);
}

/* One round: send out (if any) and receive once into in[0..room), within timeout_ms; what
 * was sent leaves out, *got is how much arrived. The bytes are opaque here: RESP, or TLS
 * records when the link is encrypted (redis_sync.c seals and unseals them). */
int ce_redis_uring_round(ce_redis_uring *u, redisContext *c, sds *out, char *in, size_t room, int timeout_ms,
                         size_t *got) {
    size_t pending = sdslen(*out);
    struct io_uring_sqe *sqe;
    *got = 0;
    if (pending) {
        sqe = io_uring_get_sqe(&u->ring);
        io_uring_prep_send(sqe, c->fd, *out, pending, MSG_WAITALL | MSG_NOSIGNAL);
        sqe->flags |= IOSQE_IO_LINK;
        sqe->user_data = TAG_SEND;
    }
    sqe = io_uring_get_sqe(&u->ring);
    io_uring_prep_recv(sqe, c->fd, in, room, 0);
    sqe->user_data = TAG_RECV;
    struct __kernel_timespec ts = { timeout_ms / 1000, (long long)(timeout_ms % 1000) * 1000000 };
    if (timeout_ms > 0) {
        sqe->flags |= IOSQE_IO_LINK;
        sqe = io_uring_get_sqe(&u->ring);
        io_uring_prep_link_timeout(sqe, &ts, 0);
        sqe->user_data = TAG_TIMEOUT;
    }
    unsigned want = (pending ? 1 : 0) + 1 + (timeout_ms > 0 ? 1 : 0);
    int rc = io_uring_submit_and_wait(&u->ring, want);
    if (rc < 0) return ce_redis_fail(c, REDIS_ERR_IO, strerror(-rc));
    int status = REDIS_OK;
    for (unsigned seen = 0; seen < want;) {
        struct io_uring_cqe *cqe;
        rc = io_uring_wait_cqe(&u->ring, &cqe);
        if (rc < 0) return ce_redis_fail(c, REDIS_ERR_IO, strerror(-rc));
        int res = cqe->res;
        unsigned long long tag = cqe->user_data;
        io_uring_cqe_seen(&u->ring, cqe);
        seen++;
        if (status != REDIS_OK) continue;
        if (tag == TAG_SEND) {
            if (res < 0) status = ce_redis_fail(c, REDIS_ERR_IO, strerror(-res));
            else sdsrange(*out, res, -1);
        } else if (tag == TAG_RECV) {
            if (res == 0) status = ce_redis_fail(c, REDIS_ERR_EOF, "Server closed the connection");
            else if (res == -ECANCELED) status = ce_redis_fail(c, REDIS_ERR_IO, "Resource temporarily unavailable");
            else if (res < 0) status = ce_redis_fail(c, REDIS_ERR_IO, strerror(-res));
            else *got = (size_t)res;
        }
    }
    return status;
}

/* Send all of out, waiting for the send only (the replies are read later). */
int ce_redis_uring_send(ce_redis_uring *u, redisContext *c, sds *out) {
    size_t pending = sdslen(*out);
    if (!pending) return REDIS_OK;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    io_uring_prep_send(sqe, c->fd, *out, pending, MSG_WAITALL | MSG_NOSIGNAL);
    sqe->user_data = TAG_SEND;
    int rc = io_uring_submit_and_wait(&u->ring, 1);
    if (rc < 0) return ce_redis_fail(c, REDIS_ERR_IO, strerror(-rc));
    struct io_uring_cqe *cqe;
    rc = io_uring_wait_cqe(&u->ring, &cqe);
    if (rc < 0) return ce_redis_fail(c, REDIS_ERR_IO, strerror(-rc));
    int res = cqe->res;
    io_uring_cqe_seen(&u->ring, cqe);
    if (res < 0) return ce_redis_fail(c, REDIS_ERR_IO, strerror(-res));
    sdsrange(*out, res, -1);
    return sdslen(*out) ? ce_redis_fail(c, REDIS_ERR_IO, "short send") : REDIS_OK;
}
