/*
 * blk-io_uring.c: the io_uring block I/O engine (block/raw-aio.h: luring_*).
 *
 * Owns LuringState: one ring per engine, registered with the shared
 * queue's eventfd, and what io_uring needs beyond the queue (blk-ioq.c),
 * which does the queueing, batching and reaping: preparing SQEs, copying
 * them into the ring, and the follow-up a completion may need (the rest of
 * a short transfer, a retry, zero-fill at the end of the file).
 *
 * A request lives on the stack of the coroutine that called
 * luring_co_submit(): it is prepared into a private SQE copy, queued, and
 * copied into the ring when the queue submits it.  The queue's in-flight
 * cap is the CQ ring size and a submission takes at most the SQ ring's
 * entries.  The io_poll handler reads the CQ ring only (shared memory).
 *
 * Request types: READ, WRITE, FLUSH (fdatasync), DISCARD (punch a hole) and
 * WRITE_ZEROES (zero the range); the last two take their length from
 * qiov->size and do not touch its buffers.  Others are -ENOTSUP.
 *
 * Threading: everything but luring_init() runs in the home thread of the
 * attached context (or, for attach/detach/cleanup, while that context is
 * not running anything else).  No locks.  The kernel writes the CQ ring
 * concurrently; liburing's acquire/release accessors order that.
 *
 * Kernel behaviour that shaped this file:
 * - Reads may return fewer bytes than asked (at the end of the file,
 *   or when a buffered read meets a partially cached range); the rest is
 *   resubmitted, and a read that returns 0 has hit the end of the file:
 *   the remainder of the buffer is zero-filled, as QEMU does.  Writes are
 *   resubmitted for the rest as well; a write that makes no progress is
 *   -ENOSPC.
 * - -EAGAIN and -EINTR completions mean "try again", not failure.
 * - With more CQEs outstanding than the CQ ring holds, the kernel keeps the
 *   excess on an overflow list and io_uring_enter() may fail with -EBUSY
 *   until it is flushed: hence the in-flight cap.
 * - A failed io_uring_submit() (-EAGAIN when the kernel is short of
 *   memory), or one that stops early, leaves SQEs in the ring; liburing's
 *   next submit hands them to the kernel again, so they stay counted as in
 *   flight and the queue is asked to call again (blk_ioq_retry_later).
 * - Per-request errors (a bad fd, O_DIRECT misalignment) arrive as CQEs
 *   with a negative res, never as a submit failure.
 */
#include "qemu/osdep.h"

#ifdef CONFIG_LINUX_IO_URING

#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/coroutine.h"
#include "block/raw-aio.h"
#include "aio-int.h"
#include "blk-int.h"
#include <linux/falloc.h>

typedef struct LuringAIOCB {
    BlkIoqReq ioq;
    /* The request as it goes into the ring (user_data points here). */
    struct io_uring_sqe sqe;
    int type;                       /* QEMU_AIO_READ, ... (no flags) */
    int fd;
    uint64_t offset;
    QEMUIOVector *qiov;
    /* Bytes already transferred by earlier (short) completions. */
    size_t done;
    /* The part still to transfer, once a first completion fell short. */
    QEMUIOVector rest;
    bool rest_used;
    /* Fault injection: most bytes a submission may ask for (0: no limit). */
    size_t short_limit;
} LuringAIOCB;

/* Every field belongs to the home thread of the attached context. */
struct LuringState {
    BlkIoq ioq;
    struct io_uring ring;
    uint64_t short_resubmits;
    uint64_t retry_resubmits;

    /* Fault injection for tests (blk-int.h). */
    size_t short_max_bytes;
    unsigned short_count;
    unsigned eagain_count;
    unsigned submit_fail_count;
};

/* ---- Preparing requests ----------------------------------------------- */

/* Point cb->sqe at what is left of a read or write. */
static void luring_prep_rest(LuringAIOCB *cb)
{
    size_t len = cb->qiov->size - cb->done;

    if (cb->short_limit) {
        len = MIN(len, cb->short_limit);
    }

    if (!cb->rest_used) {
        qemu_iovec_init(&cb->rest, cb->qiov->niov);
        cb->rest_used = true;
    } else {
        qemu_iovec_reset(&cb->rest);
    }
    qemu_iovec_concat(&cb->rest, cb->qiov, cb->done, len);
    if (cb->type == QEMU_AIO_READ) {
        io_uring_prep_readv(&cb->sqe, cb->fd, cb->rest.iov, cb->rest.niov,
                            cb->offset + cb->done);
    } else {
        io_uring_prep_writev(&cb->sqe, cb->fd, cb->rest.iov, cb->rest.niov,
                             cb->offset + cb->done);
    }
    io_uring_sqe_set_data(&cb->sqe, cb);
}

static void luring_prep(LuringState *s, LuringAIOCB *cb)
{
    struct io_uring_sqe *sqe = &cb->sqe;
    QEMUIOVector *qiov = cb->qiov;

    switch (cb->type) {
    case QEMU_AIO_READ:
    case QEMU_AIO_WRITE:
        if (s->short_count && qiov->size > s->short_max_bytes) {
            s->short_count--;
            cb->short_limit = s->short_max_bytes;
            luring_prep_rest(cb);
            return;
        }
        if (cb->type == QEMU_AIO_READ) {
            io_uring_prep_readv(sqe, cb->fd, qiov->iov, qiov->niov,
                                cb->offset);
        } else {
            io_uring_prep_writev(sqe, cb->fd, qiov->iov, qiov->niov,
                                 cb->offset);
        }
        break;
    case QEMU_AIO_FLUSH:
        io_uring_prep_fsync(sqe, cb->fd, IORING_FSYNC_DATASYNC);
        break;
    case QEMU_AIO_DISCARD:
        io_uring_prep_fallocate(sqe, cb->fd,
                                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                cb->offset, qiov->size);
        break;
    case QEMU_AIO_WRITE_ZEROES:
        io_uring_prep_fallocate(sqe, cb->fd, FALLOC_FL_ZERO_RANGE,
                                cb->offset, qiov->size);
        break;
    default:
        g_assert_not_reached();
    }
    io_uring_sqe_set_data(sqe, cb);
}

/* ---- The queue's backend ---------------------------------------------- */

/*
 * Copy as many of @reqs as the SQ ring has room for and submit them with
 * whatever an earlier call left in the ring.
 */
static int luring_submit(BlkIoq *q, BlkIoqReq **reqs, unsigned n)
{
    LuringState *s = container_of(q, LuringState, ioq);
    unsigned i;
    int ret;

    for (i = 0; i < n; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

        if (!sqe) {
            break;
        }
        *sqe = container_of(reqs[i], LuringAIOCB, ioq)->sqe;
    }
    if (io_uring_sq_ready(&s->ring) == 0) {
        return 0;
    }
    if (s->submit_fail_count) {
        s->submit_fail_count--;
        ret = -EAGAIN;
    } else {
        ret = io_uring_submit(&s->ring);
    }
    if (ret < 0 || io_uring_sq_ready(&s->ring)) {
        /*
         * Transient (-EAGAIN, -EINTR) or stopped early: the entries stay
         * in the ring and count as in flight.  Try again in the next
         * iteration rather than spin here.
         */
        blk_ioq_retry_later(q);
    }
    if (i == 0 && n > 0) {
        /*
         * The ring is full of entries the kernel has not taken yet; they
         * are in flight, so the queue waits for completions or a retry.
         */
        return -EAGAIN;
    }
    return i;
}

static BlkIoqReq *luring_reap(BlkIoq *q, int64_t *res)
{
    LuringState *s = container_of(q, LuringState, ioq);
    struct io_uring_cqe *cqe;
    LuringAIOCB *cb;

    if (io_uring_peek_cqe(&s->ring, &cqe) != 0) {
        return NULL;
    }
    cb = io_uring_cqe_get_data(cqe);
    *res = cqe->res;
    io_uring_cqe_seen(&s->ring, cqe);
    return &cb->ioq;
}

/* Busy polling: the CQ ring is shared memory, no syscall needed. */
static bool luring_ready(BlkIoq *q)
{
    LuringState *s = container_of(q, LuringState, ioq);

    return io_uring_cq_ready(&s->ring) != 0;
}

static unsigned luring_waiting(BlkIoq *q)
{
    LuringState *s = container_of(q, LuringState, ioq);

    return io_uring_cq_ready(&s->ring);
}

/*
 * Account for the result @res of one CQE: false if @cb must go back to
 * the queue (prepared again), true once it is finished.
 */
static bool luring_complete(BlkIoq *q, BlkIoqReq *req, int64_t res)
{
    LuringState *s = container_of(q, LuringState, ioq);
    LuringAIOCB *cb = container_of(req, LuringAIOCB, ioq);
    bool rw = cb->type == QEMU_AIO_READ || cb->type == QEMU_AIO_WRITE;
    size_t left;

    if (rw && s->eagain_count) {
        s->eagain_count--;
        res = -EAGAIN;
    }
    if (res == -EAGAIN || res == -EINTR) {
        s->retry_resubmits++;
        return false;
    }
    if (res < 0 || !rw) {
        req->ret = res < 0 ? res : 0;
        goto finished;
    }

    assert((size_t)res <= cb->qiov->size - cb->done);
    cb->done += res;
    left = cb->qiov->size - cb->done;
    if (left == 0) {
        req->ret = 0;
    } else if (res > 0) {
        s->short_resubmits++;
        luring_prep_rest(cb);
        return false;
    } else if (cb->type == QEMU_AIO_READ) {
        /* The end of the file: what lies beyond reads as zeroes. */
        qemu_iovec_memset(cb->qiov, cb->done, 0, left);
        req->ret = 0;
    } else {
        req->ret = -ENOSPC;
    }

finished:
    if (cb->rest_used) {
        qemu_iovec_destroy(&cb->rest);
        cb->rest_used = false;
    }
    return true;
}

static const BlkIoqOps luring_ops = {
    .name = "io_uring",
    /* Filled up to the SQ ring's size (the queue caps it there). */
    .default_max_batch = LURING_RING_ENTRIES,
    .submit = luring_submit,
    .reap = luring_reap,
    .complete = luring_complete,
    .ready = luring_ready,
    .waiting = luring_waiting,
};

/* ---- Public API -------------------------------------------------------- */

int coroutine_fn luring_co_submit(BlockDriverState *bs, int fd,
                                  uint64_t offset, QEMUIOVector *qiov,
                                  int type)
{
    AioContext *ctx = qemu_get_current_aio_context();
    LuringState *s = ctx ? aio_get_linux_io_uring(ctx) : NULL;
    LuringAIOCB cb = {
        .type = type & QEMU_AIO_TYPE_MASK,
        .fd = fd,
        .offset = offset,
        .qiov = qiov,
    };

    blk_ioq_check_submit(&luring_ops, s ? &s->ioq : NULL, "luring_co_submit",
                         "aio_setup_linux_io_uring");
    switch (cb.type) {
    case QEMU_AIO_READ:
    case QEMU_AIO_WRITE:
    case QEMU_AIO_DISCARD:
    case QEMU_AIO_WRITE_ZEROES:
        if (!qiov) {
            error_report("luring_co_submit: request type 0x%x needs a "
                         "QEMUIOVector (its size is the length)", cb.type);
            abort();
        }
        if (qiov->size == 0) {
            return 0;
        }
        break;
    case QEMU_AIO_FLUSH:
        break;
    default:
        return -ENOTSUP;
    }

    luring_prep(s, &cb);
    return blk_ioq_co_submit(&s->ioq, &cb.ioq, 0);
}

LuringState *luring_init(Error **errp)
{
    LuringState *s = g_new0(LuringState, 1);
    int ret;

    ret = qaio_io_uring_queue_init(LURING_RING_ENTRIES, &s->ring, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "failed to init linux io_uring ring");
        g_free(s);
        return NULL;
    }
    if (!blk_ioq_init(&s->ioq, &luring_ops, s->ring.cq.ring_entries,
                      s->ring.sq.ring_entries, errp)) {
        io_uring_queue_exit(&s->ring);
        g_free(s);
        return NULL;
    }
    ret = io_uring_register_eventfd(&s->ring,
                                    event_notifier_get_fd(&s->ioq.e));
    if (ret < 0) {
        error_setg_errno(errp, -ret, "failed to register an eventfd with "
                         "the io_uring ring");
        blk_ioq_cleanup(&s->ioq, "luring_init");
        io_uring_queue_exit(&s->ring);
        g_free(s);
        return NULL;
    }
    return s;
}

void luring_cleanup(LuringState *s)
{
    if (!s) {
        return;
    }
    blk_ioq_cleanup(&s->ioq, "luring_cleanup");
    io_uring_queue_exit(&s->ring);
    g_free(s);
}

void luring_attach_aio_context(LuringState *s, AioContext *new_context)
{
    blk_ioq_attach(&s->ioq, new_context, "luring_attach_aio_context");
}

/*
 * Requests still queued or in flight are completed first, by running the
 * context's loop: their buffers belong to the kernel until then and their
 * coroutines wait for them.  That needs the context's home thread.
 */
void luring_detach_aio_context(LuringState *s, AioContext *old_context)
{
    blk_ioq_detach(&s->ioq, old_context, "luring_detach_aio_context", true);
}

/* ---- Internal interface for tests (blk-int.h) -------------------------- */

void qaio_int_luring_get_stats(LuringState *s, LuringStats *stats)
{
    stats->ioq = s->ioq.stats;
    stats->short_resubmits = s->short_resubmits;
    stats->retry_resubmits = s->retry_resubmits;
}

void qaio_int_luring_reset_stats(LuringState *s)
{
    blk_ioq_reset_stats(&s->ioq);
    s->short_resubmits = 0;
    s->retry_resubmits = 0;
}

unsigned qaio_int_luring_waiting(LuringState *s)
{
    return luring_waiting(&s->ioq);
}

void qaio_int_luring_inject_short(LuringState *s, size_t max_bytes,
                                  unsigned count)
{
    assert(max_bytes > 0);
    s->short_max_bytes = max_bytes;
    s->short_count = count;
}

void qaio_int_luring_inject_eagain(LuringState *s, unsigned count)
{
    s->eagain_count = count;
}

void qaio_int_luring_inject_submit_fail(LuringState *s, unsigned count)
{
    s->submit_fail_count = count;
}

#endif /* CONFIG_LINUX_IO_URING */
