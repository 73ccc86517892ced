/*
 * io-uring.c: the io_uring block I/O engine (block/raw-aio.h: luring_*).
 *
 * Owns LuringState: one ring per engine, the eventfd the kernel signals
 * completions on, a software queue of prepared requests, and the two BHs
 * that submit that queue before the loop sleeps and finish completion
 * processing should a woken coroutine nest the loop.
 *
 * A request lives on the stack of the coroutine that called
 * luring_co_submit(): it is prepared into a private SQE copy, queued, and
 * copied into the ring when it is submitted.  Requests from many
 * coroutines collect in the queue and go to the kernel in one
 * io_uring_submit(): at once when the batch limit is reached (the
 * context's aio_max_batch, else the SQ ring size), otherwise from the
 * submit BH, which the first queued request schedules, so nothing waits
 * past the current loop iteration.  Completions are noticed by the
 * eventfd handler, or without a syscall by the io_poll callback while the
 * context busy-polls (io_uring_cq_ready() reads shared memory only).
 *
 * Threading: everything but luring_init() runs in the home thread of the
 * attached context (or, for attach/detach/cleanup, while that context is
 * not running anything else).  No locks: the queue, the counters and the
 * ring belong to that thread.  The kernel writes the CQ ring concurrently;
 * liburing's acquire/release accessors order that.
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
 *   until it is flushed.  The engine never has more requests in the ring
 *   and the kernel than the CQ ring has entries; the rest wait in the
 *   software queue and go out as completions are reaped.
 * - A failed io_uring_submit() (-EAGAIN when the kernel is short of
 *   memory) leaves the SQEs in the ring; liburing's next submit hands them
 *   to the kernel again, so they stay counted as in flight.
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
#include "io-uring-int.h"
#include <sys/eventfd.h>
#include <linux/falloc.h>

typedef struct LuringAIOCB {
    Coroutine *co;
    /* The request as it goes into the ring (user_data points here). */
    struct io_uring_sqe sqe;
    /* -EINPROGRESS until completed; then 0 or -errno. */
    int ret;
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
    QSIMPLEQ_ENTRY(LuringAIOCB) next;
} LuringAIOCB;

struct LuringState {
    AioContext *aio_context;        /* NULL while detached */
    struct io_uring ring;
    EventNotifier e;                /* the eventfd registered with the ring */

    /* Prepared requests not yet copied into the ring, in order. */
    QSIMPLEQ_HEAD(, LuringAIOCB) queue;
    unsigned queued;
    /* Requests copied into the ring and not yet reaped from the CQ. */
    unsigned in_flight;
    unsigned in_flight_limit;       /* the CQ ring size */

    QEMUBH *submit_bh;
    QEMUBH *completion_bh;

    LuringStats stats;

    /* Fault injection for tests (io-uring-int.h). */
    size_t short_max_bytes;
    unsigned short_count;
    unsigned eagain_count;
};

static void luring_process_completions(LuringState *s, uint64_t *counter);

/* ---- Submission ------------------------------------------------------- */

static unsigned luring_max_batch(LuringState *s)
{
    /* aio_context_set_aio_params() may store it from any thread. */
    int64_t limit = qatomic_read(&s->aio_context->aio_max_batch);

    if (limit <= 0 || limit > s->ring.sq.ring_entries) {
        return s->ring.sq.ring_entries;
    }
    return limit;
}

/*
 * Copy queued requests into the ring and hand them to the kernel, at most
 * a batch per io_uring_submit(), for as long as the ring, the in-flight cap
 * and the queue allow.  What is left waits for completions to make room
 * (luring_process_completions() calls this again) or, after a failed
 * submit, for the submit BH.
 */
static void luring_submit_queued(LuringState *s)
{
    unsigned max_batch = luring_max_batch(s);

    for (;;) {
        unsigned batch = 0;
        int ret;

        while (batch < max_batch && !QSIMPLEQ_EMPTY(&s->queue) &&
               s->in_flight < s->in_flight_limit) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
            LuringAIOCB *cb;

            if (!sqe) {
                break;
            }
            cb = QSIMPLEQ_FIRST(&s->queue);
            QSIMPLEQ_REMOVE_HEAD(&s->queue, next);
            s->queued--;
            *sqe = cb->sqe;
            s->in_flight++;
            batch++;
        }
        if (s->in_flight > s->stats.max_in_flight) {
            s->stats.max_in_flight = s->in_flight;
        }

        /* Entries an earlier submit left in the ring count as well. */
        if (io_uring_sq_ready(&s->ring) == 0) {
            break;
        }
        s->stats.submit_calls++;
        ret = io_uring_submit(&s->ring);
        if (ret <= 0) {
            /*
             * Transient (-EAGAIN, -EINTR) or nothing taken: the entries
             * stay in the ring and count as in flight.  Try again in the
             * next iteration rather than spin here.
             */
            qemu_bh_schedule(s->submit_bh);
            break;
        }
        s->stats.sqes_submitted += ret;
        if ((unsigned)ret > s->stats.largest_batch) {
            s->stats.largest_batch = ret;
        }
    }

    if (!QSIMPLEQ_EMPTY(&s->queue)) {
        s->stats.queue_stalls++;
    }
}

static void luring_submit_bh(void *opaque)
{
    LuringState *s = opaque;

    if (s->queued || io_uring_sq_ready(&s->ring)) {
        luring_submit_queued(s);
    }
}

/*
 * Queue a prepared request.  A full batch goes out at once; anything less
 * waits for the submit BH, i.e. at most until the loop runs its BHs, which
 * it does before it sleeps.
 */
static void luring_enqueue(LuringState *s, LuringAIOCB *cb)
{
    QSIMPLEQ_INSERT_TAIL(&s->queue, cb, next);
    s->queued++;
    if (s->queued >= luring_max_batch(s) &&
        s->in_flight < s->in_flight_limit) {
        luring_submit_queued(s);
    } else if (s->queued == 1) {
        qemu_bh_schedule(s->submit_bh);
    }
}

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

/* ---- Completion ------------------------------------------------------- */

static void luring_requeue(LuringState *s, LuringAIOCB *cb)
{
    QSIMPLEQ_INSERT_TAIL(&s->queue, cb, next);
    s->queued++;
}

/*
 * Account for @res of one CQE.  Returns false if @cb went back to the
 * queue, true once it is finished (cb->ret set).
 */
static bool luring_complete(LuringState *s, LuringAIOCB *cb, int res)
{
    bool rw = cb->type == QEMU_AIO_READ || cb->type == QEMU_AIO_WRITE;
    size_t left;

    if (rw && s->eagain_count) {
        s->eagain_count--;
        res = -EAGAIN;
    }
    if (res == -EAGAIN || res == -EINTR) {
        s->stats.retry_resubmits++;
        luring_requeue(s, cb);
        return false;
    }
    if (res < 0 || !rw) {
        cb->ret = res < 0 ? res : 0;
        return true;
    }

    assert((size_t)res <= cb->qiov->size - cb->done);
    cb->done += res;
    left = cb->qiov->size - cb->done;
    if (left == 0) {
        cb->ret = 0;
    } else if (res > 0) {
        s->stats.short_resubmits++;
        luring_prep_rest(cb);
        luring_requeue(s, cb);
        return false;
    } else if (cb->type == QEMU_AIO_READ) {
        /* The end of the file: what lies beyond reads as zeroes. */
        qemu_iovec_memset(cb->qiov, cb->done, 0, left);
        cb->ret = 0;
    } else {
        cb->ret = -ENOSPC;
    }
    return true;
}

/*
 * Reap every CQE and wake the coroutines whose requests are finished.
 *
 * Reentrancy: each CQE is consumed and the counters are updated before
 * its coroutine runs, and the ring is read afresh for the next one, so a
 * woken coroutine may submit (even run this function again through a
 * nested loop) without upsetting the outer call.  Should the coroutine
 * nest the event loop, CQEs whose eventfd signal was already consumed
 * would not wake it: completion_bh covers them until this call is done.
 * @counter (statistics) is bumped for each CQE before its coroutine runs.
 */
static void luring_process_completions(LuringState *s, uint64_t *counter)
{
    struct io_uring_cqe *cqe;
    bool bh_armed = false;

    if (io_uring_cq_ready(&s->ring) > 1) {
        qemu_bh_schedule(s->completion_bh);
        bh_armed = true;
    }

    while (io_uring_peek_cqe(&s->ring, &cqe) == 0) {
        LuringAIOCB *cb = io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&s->ring, cqe);
        assert(s->in_flight > 0);
        s->in_flight--;
        (*counter)++;

        if (!luring_complete(s, cb, res)) {
            continue;
        }
        if (cb->rest_used) {
            qemu_iovec_destroy(&cb->rest);
            cb->rest_used = false;
        }
        /*
         * @cb lives on the coroutine's stack: do not touch it after the
         * wake.  A coroutine that is running right now (it cannot be: only
         * the loop reaps) would find cb->ret set without yielding.
         */
        if (!qemu_coroutine_entered(cb->co)) {
            aio_co_wake(cb->co);
        }
    }

    if (bh_armed) {
        qemu_bh_cancel(s->completion_bh);
    }
    /* Room was made (and retries queued): send what waits. */
    if (s->queued || io_uring_sq_ready(&s->ring)) {
        luring_submit_queued(s);
    }
}

static void luring_completion_bh(void *opaque)
{
    LuringState *s = opaque;

    luring_process_completions(s, &s->stats.bh_reaped);
}

static void luring_completion_cb(EventNotifier *e)
{
    LuringState *s = container_of(e, LuringState, e);

    if (event_notifier_test_and_clear(e)) {
        luring_process_completions(s, &s->stats.eventfd_reaped);
    }
}

/* Busy polling: the CQ ring is shared memory, no syscall needed. */
static bool luring_poll_cb(void *opaque)
{
    LuringState *s = container_of(opaque, LuringState, e);

    return io_uring_cq_ready(&s->ring) != 0;
}

static void luring_poll_ready(EventNotifier *e)
{
    LuringState *s = container_of(e, LuringState, e);

    luring_process_completions(s, &s->stats.poll_reaped);
}

/* ---- Public API -------------------------------------------------------- */

int coroutine_fn luring_co_submit(BlockDriverState *bs, int fd,
                                  uint64_t offset, QEMUIOVector *qiov,
                                  int type)
{
    AioContext *ctx = qemu_get_current_aio_context();
    LuringState *s = ctx ? aio_get_linux_io_uring(ctx) : NULL;
    LuringAIOCB cb = {
        .ret = -EINPROGRESS,
        .type = type & QEMU_AIO_TYPE_MASK,
        .fd = fd,
        .offset = offset,
        .qiov = qiov,
    };

    if (!qemu_in_coroutine()) {
        error_report("luring_co_submit: must be called from a coroutine");
        abort();
    }
    if (!s) {
        error_report("luring_co_submit: the current AioContext %p has no "
                     "io_uring engine; call aio_setup_linux_io_uring() "
                     "for it first", (void *)ctx);
        abort();
    }
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

    cb.co = qemu_coroutine_self();
    luring_prep(s, &cb);
    luring_enqueue(s, &cb);
    if (cb.ret == -EINPROGRESS) {
        qemu_coroutine_yield();
    }
    return cb.ret;
}

LuringState *luring_init(Error **errp)
{
    LuringState *s = g_new0(LuringState, 1);
    int ret;
    int fd;

    ret = qaio_io_uring_queue_init(LURING_RING_ENTRIES, &s->ring, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "failed to init linux io_uring ring");
        g_free(s);
        return NULL;
    }

    /* An eventfd whatever EventNotifier would pick: the kernel needs one. */
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "failed to create the eventfd of the "
                         "io_uring engine");
        io_uring_queue_exit(&s->ring);
        g_free(s);
        return NULL;
    }
    event_notifier_init_fd(&s->e, fd);

    ret = io_uring_register_eventfd(&s->ring, fd);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "failed to register an eventfd with "
                         "the io_uring ring");
        event_notifier_cleanup(&s->e);
        io_uring_queue_exit(&s->ring);
        g_free(s);
        return NULL;
    }

    QSIMPLEQ_INIT(&s->queue);
    s->in_flight_limit = s->ring.cq.ring_entries;
    s->stats.in_flight_limit = s->in_flight_limit;
    return s;
}

void luring_cleanup(LuringState *s)
{
    if (!s) {
        return;
    }
    if (s->aio_context) {
        error_report("luring_cleanup: io_uring engine %p is still attached "
                     "to AioContext %p; detach it first", (void *)s,
                     (void *)s->aio_context);
        abort();
    }
    io_uring_queue_exit(&s->ring);
    event_notifier_cleanup(&s->e);
    g_free(s);
}

void luring_attach_aio_context(LuringState *s, AioContext *new_context)
{
    if (s->aio_context) {
        error_report("luring_attach_aio_context: io_uring engine %p is "
                     "already attached to AioContext %p", (void *)s,
                     (void *)s->aio_context);
        abort();
    }
    s->aio_context = new_context;
    s->submit_bh = aio_bh_new(new_context, luring_submit_bh, s);
    s->completion_bh = aio_bh_new(new_context, luring_completion_bh, s);
    aio_set_event_notifier(new_context, &s->e, luring_completion_cb,
                           luring_poll_cb, luring_poll_ready);
}

/*
 * Requests still queued or in flight are completed first, by running the
 * context's loop: their buffers belong to the kernel until then and their
 * coroutines wait for them.  That needs the context's home thread.
 */
void luring_detach_aio_context(LuringState *s, AioContext *old_context)
{
    assert(s->aio_context == old_context);

    if (s->queued || s->in_flight) {
        if (qemu_get_current_aio_context() != old_context) {
            error_report("luring_detach_aio_context: io_uring engine %p has "
                         "%u requests queued and %u in flight; detach it "
                         "from AioContext %p in that context's thread, or "
                         "drain its requests first", (void *)s, s->queued,
                         s->in_flight, (void *)old_context);
            abort();
        }
        while (s->queued || s->in_flight) {
            aio_poll(old_context, true);
        }
    }

    aio_set_event_notifier(old_context, &s->e, NULL, NULL, NULL);
    qemu_bh_delete(s->submit_bh);
    qemu_bh_delete(s->completion_bh);
    s->submit_bh = NULL;
    s->completion_bh = NULL;
    s->aio_context = NULL;
}

/* ---- Internal interface for tests (io-uring-int.h) --------------------- */

void qaio_int_luring_get_stats(LuringState *s, LuringStats *stats)
{
    *stats = s->stats;
}

void qaio_int_luring_reset_stats(LuringState *s)
{
    memset(&s->stats, 0, sizeof(s->stats));
    s->stats.in_flight_limit = s->in_flight_limit;
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

#endif /* CONFIG_LINUX_IO_URING */
