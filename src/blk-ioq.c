/*
 * blk-ioq.c: the batching queue both block I/O engines submit through
 * (BlkIoq, blk-int.h): the software queue, the batch limit, deferred
 * submission, requeueing when the kernel is full, and reaping.
 *
 * A request is queued by the coroutine that waits for it.  A batch goes to
 * the kernel at once when it is full; anything less waits for submit_bh,
 * which the first queued request schedules: aio_poll() runs bottom halves
 * before it blocks, so nothing waits for a wake-up that only a submission
 * would cause.  The batch limit is QEMU's: the device's limit or the
 * context's aio_max_batch (else the engine's default), whichever is
 * smaller, and no more than the room left in the kernel.
 *
 * While completions are being handled, a batch also goes at once, however
 * small, when the device is short of work: when the queue holds at least
 * as many requests as the device still has (in flight, less the
 * completions already waiting to be reaped).  Holding requests back only
 * pays while the device is busy.  Without this, a device that completes a
 * whole batch together (a virtual disk typically does: one notification,
 * one interrupt) gets it back only after every completion of the batch has
 * been handled, and idles meanwhile; the requests then move in lock-step,
 * each wave leaving the device idle for as long as the loop takes to
 * handle it.  With it, the first request handled goes out alone, the next
 * ones in batches that double (1, 1, 2, 4, ...), so the device has work
 * again at once and a wave costs a few system calls rather than one per
 * request.  Not when the kernel completes requests inside the submitting
 * call (buffered I/O): the device never waits for us there, and batching
 * saves system calls.
 *
 * When the kernel has no room (the engine's in-flight cap, -EAGAIN, a full
 * submission ring) the rest stays queued and the queue is "blocked": new
 * requests only join it, and reaping, which makes room, submits them.
 * -EAGAIN with nothing of ours in flight cannot be cured by waiting, so it
 * fails the first request.  A request the kernel refuses alone fails alone;
 * the others are submitted again.  An engine that took requests the kernel
 * has not seen yet (a failed io_uring_submit() leaves them in the ring)
 * asks for another call from the next iteration: blk_ioq_retry_later().
 *
 * Threading: the home thread of the attached context only (blk-int.h).
 *
 * Reentrancy: completing a request wakes its coroutine, which may run at
 * once, submit again, or even run a nested aio_poll().  So the reaping loop
 * keeps no position of its own: the engine consumes each completion before
 * the queue completes its request, and a nested reaper simply continues
 * where the outer one was.  While the outermost reaper runs, completion_bh
 * stays scheduled, because a nested aio_poll() would not see the eventfd
 * that the outer reaper has already read.  A request may also complete
 * while its own coroutine still runs blk_ioq_co_submit() (an engine that
 * reaps right after submitting): that coroutine finds it done and does not
 * yield, so nobody wakes it.
 */
#include "qemu/osdep.h"

#if defined(CONFIG_LINUX_AIO) || defined(CONFIG_LINUX_IO_URING)

#include "qemu/error-report.h"
#include "blk-int.h"
#include <sys/eventfd.h>

/* ---- Completion ------------------------------------------------------- */

static void blk_ioq_finish(BlkIoqReq *req)
{
    req->done = true;
    /* @req lives on the coroutine's stack: not touched after the wake. */
    if (!qemu_coroutine_entered(req->co)) {
        aio_co_wake(req->co);
    }
}

static void blk_ioq_requeue(BlkIoq *q, BlkIoqReq *req)
{
    QSIMPLEQ_INSERT_TAIL(&q->queue, req, next);
    q->in_queue++;
}

/* Complete every request the kernel has finished; @counter counts them. */
static void blk_ioq_reap(BlkIoq *q, uint64_t *counter)
{
    BlkIoqReq *req;
    int64_t res;

    if (q->reaping++ == 0) {
        qemu_bh_schedule(q->completion_bh);
    }
    while ((req = q->ops->reap(q, &res)) != NULL) {
        assert(q->in_flight > 0);
        q->in_flight--;
        (*counter)++;
        if (q->ops->complete(q, req, res)) {
            blk_ioq_finish(req);
        } else {
            blk_ioq_requeue(q, req);
        }
    }
    if (--q->reaping == 0) {
        qemu_bh_cancel(q->completion_bh);
    }
}

/* ---- Submission ------------------------------------------------------- */

/*
 * Hand queued requests to the kernel until the queue is empty, the kernel
 * is full, or the in-flight cap is reached.
 */
static void blk_ioq_submit(BlkIoq *q)
{
    BlkIoqReqList failed = QSIMPLEQ_HEAD_INITIALIZER(failed);
    BlkIoqReq *req;

    while (!QSIMPLEQ_EMPTY(&q->queue) && q->in_flight < q->max_in_flight) {
        unsigned room = MIN(q->max_in_flight - q->in_flight, q->max_submit);
        unsigned len = 0;
        unsigned i;
        int ret;

        QSIMPLEQ_FOREACH(req, &q->queue, next) {
            q->batch[len++] = req;
            if (len == room) {
                break;
            }
        }
        ret = q->ops->submit(q, q->batch, len);
        q->stats.submit_calls++;
        if (ret == -EAGAIN && q->in_flight > 0) {
            /* Reaping will make room (see the top of the file). */
            q->stats.kernel_full++;
            break;
        }
        if (ret < 0) {
            /* The first request is the one the kernel refused. */
            req = QSIMPLEQ_FIRST(&q->queue);
            QSIMPLEQ_REMOVE_HEAD(&q->queue, next);
            q->in_queue--;
            req->ret = ret;
            QSIMPLEQ_INSERT_TAIL(&failed, req, next);
            continue;
        }
        assert(ret > 0 && (unsigned)ret <= len);
        q->stats.submitted += ret;
        q->stats.largest_batch = MAX(q->stats.largest_batch, (unsigned)ret);
        q->in_flight += ret;
        q->completes_inline = q->ops->waiting(q) >= q->in_flight;
        q->stats.max_in_flight = MAX(q->stats.max_in_flight, q->in_flight);
        q->in_queue -= ret;
        for (i = 0; i < (unsigned)ret; i++) {
            QSIMPLEQ_REMOVE_HEAD(&q->queue, next);
        }
        if ((unsigned)ret < len) {
            /* The next call says why: the loop goes on or stops there. */
            q->stats.kernel_full++;
        }
    }
    q->blocked = q->in_queue > 0;
    if (q->blocked) {
        q->stats.stalled++;
    } else if (!q->retry) {
        /* Nothing left for it: spare the loop an iteration. */
        qemu_bh_cancel(q->submit_bh);
    }

    /* Completed only now: a woken coroutine may submit again. */
    while (!QSIMPLEQ_EMPTY(&failed)) {
        req = QSIMPLEQ_FIRST(&failed);
        QSIMPLEQ_REMOVE_HEAD(&failed, next);
        blk_ioq_finish(req);
    }

    /*
     * Requests may be complete already: reap now rather than after a trip
     * through the fd monitor.  If we are blocked, the requests reaped here
     * have signalled the eventfd, whose handler submits the rest.
     */
    if (q->ops->reap_after_submit && q->in_flight) {
        blk_ioq_reap(q, &q->stats.submit_reaped);
    }
}

static void blk_ioq_reap_and_submit(BlkIoq *q, uint64_t *counter)
{
    blk_ioq_reap(q, counter);
    if (!QSIMPLEQ_EMPTY(&q->queue)) {
        blk_ioq_submit(q);
    }
}

void blk_ioq_retry_later(BlkIoq *q)
{
    q->retry = true;
    qemu_bh_schedule(q->submit_bh);
}

static void blk_ioq_submit_bh(void *opaque)
{
    BlkIoq *q = opaque;

    if (q->retry) {
        q->retry = false;
        q->stats.submit_calls++;
        q->ops->submit(q, NULL, 0);
    }
    if (!q->blocked && !QSIMPLEQ_EMPTY(&q->queue)) {
        blk_ioq_submit(q);
    }
}

/*
 * Called while completions are handled: does the device have no more
 * requests to work on than the queue holds back (see the top of the file)?
 */
static bool blk_ioq_device_starved(BlkIoq *q)
{
    unsigned waiting;

    if (!q->reaping || q->completes_inline) {
        return false;
    }
    waiting = q->ops->waiting(q);
    return waiting >= q->in_flight || q->in_queue >= q->in_flight - waiting;
}

/*
 * How many queued requests trigger an immediate submission: the device's
 * limit and the context's (or the engine's default), whichever is smaller,
 * and no more than the room left in the kernel (QEMU's rule).
 */
static unsigned blk_ioq_max_batch(BlkIoq *q, uint64_t dev_max_batch)
{
    /* aio_context_set_aio_params() may store it from any thread. */
    int64_t ctx_max = qatomic_read(&q->ctx->aio_max_batch);
    uint64_t max = ctx_max > 0 ? (uint64_t)ctx_max :
                   q->ops->default_max_batch;
    unsigned room = 0;

    if (dev_max_batch && dev_max_batch < max) {
        max = dev_max_batch;
    }
    if (q->in_flight < q->max_in_flight) {
        room = MIN(q->max_in_flight - q->in_flight, q->max_submit);
    }
    if (room && room < max) {
        max = room;
    }
    return max;
}

void blk_ioq_check_submit(const BlkIoqOps *ops, BlkIoq *q, const char *fn,
                          const char *setup_fn)
{
    AioContext *ctx = qemu_get_current_aio_context();

    if (!qemu_in_coroutine()) {
        error_report("%s: called outside a coroutine; it yields until the "
                     "request completes", fn);
        abort();
    }
    if (!q) {
        error_report("%s: the current AioContext %p has no %s engine; call "
                     "%s() on it first", fn, (void *)ctx, ops->name,
                     setup_fn);
        abort();
    }
    assert(q->ctx == ctx);
}

int coroutine_fn blk_ioq_co_submit(BlkIoq *q, BlkIoqReq *req,
                                   uint64_t dev_max_batch)
{
    req->co = qemu_coroutine_self();
    req->done = false;
    blk_ioq_requeue(q, req);
    if (!q->blocked) {
        /* Blocked, it goes out when reaping makes room. */
        if (q->in_queue >= blk_ioq_max_batch(q, dev_max_batch)) {
            blk_ioq_submit(q);
        } else if (blk_ioq_device_starved(q)) {
            q->stats.early_submits++;
            blk_ioq_submit(q);
        } else if (q->in_queue == 1) {
            qemu_bh_schedule(q->submit_bh);
        }
    }
    if (!req->done) {
        qemu_coroutine_yield();
        assert(req->done);
    }
    return req->ret;
}

/* ---- The event loop's handlers ---------------------------------------- */

static void blk_ioq_completion_bh(void *opaque)
{
    BlkIoq *q = opaque;

    blk_ioq_reap_and_submit(q, &q->stats.bh_reaped);
}

static void blk_ioq_eventfd_cb(EventNotifier *e)
{
    BlkIoq *q = container_of(e, BlkIoq, e);

    if (event_notifier_test_and_clear(e)) {
        blk_ioq_reap_and_submit(q, &q->stats.eventfd_reaped);
    }
}

static bool blk_ioq_poll_cb(void *opaque)
{
    BlkIoq *q = container_of(opaque, BlkIoq, e);

    return q->ops->ready(q);
}

static void blk_ioq_poll_ready(EventNotifier *e)
{
    BlkIoq *q = container_of(e, BlkIoq, e);

    blk_ioq_reap_and_submit(q, &q->stats.poll_reaped);
}

/* ---- Life cycle ------------------------------------------------------- */

bool blk_ioq_init(BlkIoq *q, const BlkIoqOps *ops, unsigned max_in_flight,
                  unsigned max_submit, Error **errp)
{
    /* An eventfd whatever EventNotifier would pick: the kernel needs one. */
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd < 0) {
        error_setg_errno(errp, errno, "%s: cannot create the completion "
                         "eventfd", ops->name);
        return false;
    }
    assert(max_in_flight > 0 && max_submit > 0);
    memset(q, 0, sizeof(*q));
    event_notifier_init_fd(&q->e, fd);
    q->ops = ops;
    q->max_in_flight = max_in_flight;
    q->max_submit = max_submit;
    QSIMPLEQ_INIT(&q->queue);
    q->batch = g_new(BlkIoqReq *, max_submit);
    q->stats.in_flight_limit = max_in_flight;
    return true;
}

void blk_ioq_cleanup(BlkIoq *q, const char *fn)
{
    if (q->ctx) {
        error_report("%s: %s engine %p is still attached to AioContext %p; "
                     "detach it first", fn, q->ops->name, (void *)q,
                     (void *)q->ctx);
        abort();
    }
    event_notifier_cleanup(&q->e);
    g_free(q->batch);
    q->batch = NULL;
}

void blk_ioq_attach(BlkIoq *q, AioContext *new_context, const char *fn)
{
    if (q->ctx) {
        error_report("%s: %s engine %p is already attached to AioContext "
                     "%p; detach it first", fn, q->ops->name, (void *)q,
                     (void *)q->ctx);
        abort();
    }
    q->ctx = new_context;
    q->submit_bh = aio_bh_new(new_context, blk_ioq_submit_bh, q);
    q->completion_bh = aio_bh_new(new_context, blk_ioq_completion_bh, q);
    aio_set_event_notifier(new_context, &q->e, blk_ioq_eventfd_cb,
                           blk_ioq_poll_cb, blk_ioq_poll_ready);
}

void blk_ioq_detach(BlkIoq *q, AioContext *old_context, const char *fn,
                    bool drain)
{
    assert(q->ctx == old_context);
    if ((q->in_queue || q->in_flight) &&
        (!drain || qemu_get_current_aio_context() != old_context)) {
        /* Their coroutines would wait forever on a dead engine. */
        error_report("%s: %s engine %p still has %u requests queued and %u "
                     "in flight; %s", fn, q->ops->name, (void *)q,
                     q->in_queue, q->in_flight,
                     drain ? "detach it from its AioContext in that "
                             "context's thread, or drain them first" :
                             "drain them before detaching it or destroying "
                             "its AioContext");
        abort();
    }
    /* Their buffers belong to the kernel until they complete. */
    while (q->in_queue || q->in_flight) {
        aio_poll(old_context, true);
    }
    aio_set_event_notifier(old_context, &q->e, NULL, NULL, NULL);
    qemu_bh_delete(q->submit_bh);
    qemu_bh_delete(q->completion_bh);
    q->submit_bh = NULL;
    q->completion_bh = NULL;
    q->retry = false;
    q->ctx = NULL;
}

void blk_ioq_reset_stats(BlkIoq *q)
{
    memset(&q->stats, 0, sizeof(q->stats));
    q->stats.in_flight_limit = q->max_in_flight;
}

#endif /* CONFIG_LINUX_AIO || CONFIG_LINUX_IO_URING */
