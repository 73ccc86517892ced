/*
 * linux-aio.c: the Linux AIO engine (io_submit / io_getevents), QEMU's
 * aio=native.
 *
 * Owns LinuxAioState: one kernel AIO context (io_setup), the software
 * queue of requests not yet submitted, and the reaping of completions.
 * laio_co_submit() queues a request built on the caller's stack and yields;
 * queued requests go to the kernel in one io_submit() when the batch limit
 * is reached or, at the latest, from a bottom half that the first queued
 * request schedules (aio_poll() runs bottom halves before it blocks, so
 * nothing waits for a wake-up that only a submission would cause).
 * Every iocb carries the engine's eventfd (IOCB_FLAG_RESFD): the context
 * watches it, and an io_poll handler looks at the completion ring, so a
 * busy-polling loop notices completions without a system call.
 *
 * Request types: READ and WRITE (preadv/pwritev, or pread/pwrite for a
 * single buffer), FLUSH as IOCB_CMD_FDSYNC.  As in QEMU 9.1, FLUSH is
 * submitted whatever the file: callers ask laio_has_fdsync() first (QEMU's
 * file-posix does, once per file, and flushes through the thread pool when
 * it says no); a file without an fsync method fails the request with the
 * kernel's -EINVAL.  Every other type is -ENOTSUP (QEMU: -EIO with a
 * message), as Linux AIO has no discard or write-zeroes command.
 *
 * Results as block/raw-aio.h documents them: 0 for a complete transfer; a
 * short read has the rest of the buffer zeroed and counts as complete (it
 * only happens at the end of the file); a short write is -ENOSPC.
 *
 * Kernel behaviour this file is shaped by:
 *  - Buffered (non-O_DIRECT) reads and writes are carried out synchronously
 *    inside io_submit(); only O_DIRECT I/O is really asynchronous.  Results
 *    are the same either way, so the engine does not care, but it means a
 *    batch of buffered requests is complete by the time io_submit returns.
 *  - io_submit() stops at the first iocb it cannot take and returns how
 *    many it took; only when it took none does it return that iocb's error.
 *    So a short count is followed by another call, which either goes on or
 *    reports the culprit (failed alone; the rest are retried) or -EAGAIN.
 *  - -EAGAIN means the context's slots are used up by requests in flight
 *    or by completions nobody has reaped; requests stay queued and are
 *    submitted when reaping frees slots.  -EAGAIN with nothing of ours in
 *    flight cannot be cured by waiting, so it fails the first request.
 *  - io_setup(nr) gives a ring of at least 2 * nr events (more when that
 *    fills whole pages) but counts nr against /proc/sys/fs/aio-max-nr and
 *    fails with -EAGAIN when that limit would be passed.  The engine keeps
 *    at most nr requests in flight (QEMU does the same), well within the
 *    ring.
 *  - The completion ring is mapped into the process at the address
 *    io_setup() returns: a header (struct laio_ring below, the kernel's
 *    struct aio_ring) followed by the events.  The kernel writes an event,
 *    then (after a write barrier) the tail; whoever reaps advances the head,
 *    and the kernel reads the head to recycle slots.  libaio and fio read
 *    it the same way; the header's magic number and incompat_features guard
 *    against a kernel that changed it, in which case io_getevents() with a
 *    zero timeout does the reaping instead.
 *
 * Threading: laio_init() and laio_has_fdsync() may run in any thread.
 * Everything else belongs to the home thread of the context the engine is
 * attached to; laio_co_submit() uses the engine of the calling thread's
 * current context, which is the one it is attached to.  No locks.
 *
 * Reentrancy: waking a coroutine may run it at once; it may submit again,
 * and a callback may even run a nested aio_poll().  So the reaping loop
 * keeps no position of its own: each event is taken off the ring (or the
 * shared io_getevents() buffer) before its request is completed, and a
 * nested reaper simply continues where the outer one was.  While reaping,
 * completion_bh stays scheduled, because a nested aio_poll() would not see
 * the eventfd that the outer reaper has already read.
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/coroutine.h"
#include "block/raw-aio.h"
#include "linux-aio-int.h"
#include <libaio.h>

/* The kernel's struct aio_ring (fs/aio.c), an ABI since Linux 2.6.19. */
#define LAIO_RING_MAGIC 0xa10a10a1

struct laio_ring {
    unsigned id;
    unsigned nr;                /* events in the ring */
    unsigned head;              /* next event to reap; written by us */
    unsigned tail;              /* next event to fill; written by the kernel */
    unsigned magic;
    unsigned compat_features;
    unsigned incompat_features;
    unsigned header_length;
    struct io_event io_events[];
};

/* Most iocbs passed to one io_submit() call. */
#define LAIO_SUBMIT_CHUNK 256

/* Most events fetched by one io_getevents() call. */
#define LAIO_GETEVENTS_CHUNK 128

/* One request, on the stack of the coroutine that waits for it. */
typedef struct LaioRequest {
    struct iocb iocb;
    Coroutine *co;
    QEMUIOVector *qiov;
    size_t nbytes;
    ssize_t ret;
    bool is_read;
    bool done;
    QSIMPLEQ_ENTRY(LaioRequest) next;
} LaioRequest;

typedef QSIMPLEQ_HEAD(, LaioRequest) LaioRequestList;

/* Every field belongs to the home thread of aio_context. */
struct LinuxAioState {
    AioContext *aio_context;    /* NULL while detached */
    io_context_t ctx;
    struct laio_ring *ring;     /* NULL: reap with io_getevents() */
    EventNotifier e;            /* the kernel signals completions here */
    QEMUBH *submit_bh;          /* submits what is queued */
    QEMUBH *completion_bh;      /* reaps for nested event loops */

    unsigned max_in_flight;
    unsigned in_flight;         /* submitted, not yet reaped */
    unsigned in_queue;          /* in @pending */
    bool blocked;               /* the kernel had no room: wait for reaping */
    LaioRequestList pending;

    /* io_getevents() results not completed yet: [event_idx, event_max). */
    unsigned event_idx;
    unsigned event_max;
    struct io_event events[LAIO_GETEVENTS_CHUNK];

    struct iocb *iocbs[LAIO_SUBMIT_CHUNK];
    LaioStats stats;
};

/* Written only while no engine is being created (linux-aio-int.h). */
static LaioParams laio_params;

void qaio_int_laio_set_params(const LaioParams *params)
{
    laio_params = params ? *params : (LaioParams) { 0 };
}

void qaio_int_laio_get_stats(LinuxAioState *s, LaioStats *stats)
{
    *stats = s->stats;
}

void qaio_int_laio_reset_stats(LinuxAioState *s)
{
    memset(&s->stats, 0, sizeof(s->stats));
}

bool qaio_int_laio_uses_ring(LinuxAioState *s)
{
    return s->ring != NULL;
}

/* ---- Completion ------------------------------------------------------- */

/* Turn the kernel's byte count into the API's result and wake the waiter. */
static void laio_complete(LaioRequest *req)
{
    ssize_t ret = req->ret;

    if (ret >= 0 && (size_t)ret != req->nbytes) {
        if (req->is_read) {
            /* Only the end of the file cuts a read short. */
            qemu_iovec_memset(req->qiov, ret, 0, req->nbytes - ret);
            ret = 0;
        } else {
            ret = -ENOSPC;
        }
    } else if (ret > 0) {
        ret = 0;
    }
    req->ret = ret;
    req->done = true;

    /*
     * The request may complete while its own coroutine still runs in
     * laio_co_submit() (it reaped right after submitting): that coroutine
     * sees @done and does not yield, so there is nobody to wake.
     */
    if (!qemu_coroutine_entered(req->co)) {
        aio_co_wake(req->co);
    }
}

static bool laio_ring_pop(struct laio_ring *ring, struct io_event *ev)
{
    unsigned head = qatomic_read(&ring->head);
    /*
     * Pairs with the kernel's write barrier between filling an event and
     * moving the tail past it: the event is complete once we see the tail.
     */
    unsigned tail = qatomic_load_acquire(&ring->tail);

    if (head == tail) {
        return false;
    }
    *ev = ring->io_events[head];
    /*
     * Orders the copy before the kernel can see the slot as free (it reads
     * the head to recycle slots) and overwrite it.
     */
    qatomic_store_release(&ring->head, (head + 1) % ring->nr);
    return true;
}

/* Refill the io_getevents() buffer; false if there was nothing. */
static bool laio_fetch_events(LinuxAioState *s)
{
    struct timespec zero = { 0 };
    int n;

    do {
        n = io_getevents(s->ctx, 0, LAIO_GETEVENTS_CHUNK, s->events, &zero);
    } while (n == -EINTR);
    if (n <= 0) {
        /* Only a broken context fails here; its requests never complete. */
        assert(n == 0);
        return false;
    }
    s->event_idx = 0;
    s->event_max = n;
    s->stats.syscall_reaped += n;
    return true;
}

/* Take the next completion off the ring or the buffer. */
static bool laio_next_event(LinuxAioState *s, struct io_event *ev)
{
    if (s->ring) {
        if (!laio_ring_pop(s->ring, ev)) {
            return false;
        }
        s->stats.ring_reaped++;
        return true;
    }
    if (s->event_idx == s->event_max && !laio_fetch_events(s)) {
        return false;
    }
    *ev = s->events[s->event_idx++];
    return true;
}

static bool laio_has_events(LinuxAioState *s)
{
    if (s->ring) {
        return qatomic_read(&s->ring->head) !=
               qatomic_load_acquire(&s->ring->tail);
    }
    return s->event_idx < s->event_max || laio_fetch_events(s);
}

static void laio_process_completions(LinuxAioState *s)
{
    struct io_event ev;

    qemu_bh_schedule(s->completion_bh);
    while (laio_next_event(s, &ev)) {
        LaioRequest *req = container_of(ev.obj, LaioRequest, iocb);

        assert(s->in_flight > 0);
        s->in_flight--;
        /* res is the kernel's 64-bit result (libaio splits it on ILP32). */
        req->ret = (long)ev.res;
        laio_complete(req);
    }
    qemu_bh_cancel(s->completion_bh);
}

/* ---- Submission ------------------------------------------------------- */

/*
 * Hand queued requests to the kernel until the queue is empty, the kernel
 * is full, or max_in_flight is reached; then reap what is already done.
 */
static void laio_submit_pending(LinuxAioState *s)
{
    LaioRequestList failed = QSIMPLEQ_HEAD_INITIALIZER(failed);
    LaioRequest *req;
    int i;

    while (!QSIMPLEQ_EMPTY(&s->pending) && s->in_flight < s->max_in_flight) {
        unsigned room = s->max_in_flight - s->in_flight;
        int len = 0;
        int ret;

        QSIMPLEQ_FOREACH(req, &s->pending, next) {
            s->iocbs[len++] = &req->iocb;
            if (len == LAIO_SUBMIT_CHUNK || (unsigned)len == room) {
                break;
            }
        }
        ret = io_submit(s->ctx, len, s->iocbs);
        s->stats.submit_calls++;
        if (ret == -EAGAIN && s->in_flight > 0) {
            /* Reaping will make room (see the top of the file). */
            s->stats.queue_full++;
            break;
        }
        if (ret < 0) {
            /* The first request is the one the kernel refused. */
            req = QSIMPLEQ_FIRST(&s->pending);
            QSIMPLEQ_REMOVE_HEAD(&s->pending, next);
            s->in_queue--;
            req->ret = ret;
            QSIMPLEQ_INSERT_TAIL(&failed, req, next);
            continue;
        }
        assert(ret > 0 && ret <= len);
        s->stats.submitted += ret;
        s->stats.largest_batch = MAX(s->stats.largest_batch, (unsigned)ret);
        s->in_flight += ret;
        s->stats.max_in_flight = MAX(s->stats.max_in_flight, s->in_flight);
        s->in_queue -= ret;
        for (i = 0; i < ret; i++) {
            QSIMPLEQ_REMOVE_HEAD(&s->pending, next);
        }
        if (ret < len) {
            /* The next call says why: the loop goes on or stops there. */
            s->stats.queue_full++;
        }
    }
    s->blocked = s->in_queue > 0;

    /* Completed only now: a woken coroutine may submit again. */
    while (!QSIMPLEQ_EMPTY(&failed)) {
        req = QSIMPLEQ_FIRST(&failed);
        QSIMPLEQ_REMOVE_HEAD(&failed, next);
        laio_complete(req);
    }

    /*
     * Buffered requests are complete already, and others may be: reap now
     * rather than after a trip through the fd monitor.  If we are blocked,
     * the requests reaped here have signalled the eventfd, whose handler
     * submits the rest.
     */
    if (s->in_flight) {
        laio_process_completions(s);
    }
}

static void laio_process_completions_and_submit(LinuxAioState *s)
{
    laio_process_completions(s);
    if (!QSIMPLEQ_EMPTY(&s->pending)) {
        laio_submit_pending(s);
    }
}

static void laio_submit_bh(void *opaque)
{
    LinuxAioState *s = opaque;

    if (!s->blocked && !QSIMPLEQ_EMPTY(&s->pending)) {
        laio_submit_pending(s);
    }
}

static void laio_completion_bh(void *opaque)
{
    laio_process_completions_and_submit(opaque);
}

static void laio_completion_cb(EventNotifier *e)
{
    LinuxAioState *s = container_of(e, LinuxAioState, e);

    if (event_notifier_test_and_clear(e)) {
        laio_process_completions_and_submit(s);
    }
}

static bool laio_poll_cb(void *opaque)
{
    EventNotifier *e = opaque;

    return laio_has_events(container_of(e, LinuxAioState, e));
}

static void laio_poll_ready(EventNotifier *e)
{
    LinuxAioState *s = container_of(e, LinuxAioState, e);
    uint64_t before = s->stats.ring_reaped + s->stats.syscall_reaped;

    laio_process_completions_and_submit(s);
    s->stats.polled += s->stats.ring_reaped + s->stats.syscall_reaped -
                       before;
}

/*
 * How many queued requests trigger an immediate io_submit(): the device's
 * limit and the context's (or our default), whichever is smaller, and no
 * more than the room left in the kernel (QEMU's rule).
 */
static unsigned laio_max_batch(LinuxAioState *s, uint64_t dev_max_batch)
{
    uint64_t max = qatomic_read(&s->aio_context->aio_max_batch);
    unsigned room;

    if (!max) {
        max = LAIO_DEFAULT_MAX_BATCH;
    }
    if (dev_max_batch && dev_max_batch < max) {
        max = dev_max_batch;
    }
    room = s->in_flight < s->max_in_flight ?
           s->max_in_flight - s->in_flight : 0;
    if (room && room < max) {
        max = room;
    }
    return max;
}

static void laio_enqueue(LinuxAioState *s, LaioRequest *req,
                         uint64_t dev_max_batch)
{
    QSIMPLEQ_INSERT_TAIL(&s->pending, req, next);
    s->in_queue++;
    if (s->blocked) {
        /* Submitted when reaping makes room. */
        return;
    }
    if (s->in_queue >= laio_max_batch(s, dev_max_batch)) {
        laio_submit_pending(s);
    } else if (s->in_queue == 1) {
        qemu_bh_schedule(s->submit_bh);
    }
}

int coroutine_fn laio_co_submit(int fd, uint64_t offset, QEMUIOVector *qiov,
                                int type, uint64_t dev_max_batch)
{
    AioContext *ctx = qemu_get_current_aio_context();
    LinuxAioState *s = ctx ? aio_get_linux_aio(ctx) : NULL;
    LaioRequest req = {
        .qiov = qiov,
        .nbytes = qiov ? qiov->size : 0,
        .is_read = (type & QEMU_AIO_TYPE_MASK) == QEMU_AIO_READ,
    };

    if (!qemu_in_coroutine()) {
        error_report("laio_co_submit: called outside a coroutine; it "
                     "yields until the request completes");
        abort();
    }
    if (!s) {
        error_report("laio_co_submit: the current AioContext %p has no "
                     "Linux AIO engine; call aio_setup_linux_aio() on it "
                     "first", (void *)ctx);
        abort();
    }
    assert(s->aio_context == ctx);

    switch (type & QEMU_AIO_TYPE_MASK) {
    case QEMU_AIO_READ:
    case QEMU_AIO_WRITE:
        if (!qiov) {
            error_report("laio_co_submit: a %s request needs a QEMUIOVector",
                         req.is_read ? "read" : "write");
            abort();
        }
        if (qiov->niov == 1) {
            /* IOCB_CMD_PREAD/PWRITE: the kernel copies no iovec. */
            if (req.is_read) {
                io_prep_pread(&req.iocb, fd, qiov->iov[0].iov_base,
                              qiov->iov[0].iov_len, offset);
            } else {
                io_prep_pwrite(&req.iocb, fd, qiov->iov[0].iov_base,
                               qiov->iov[0].iov_len, offset);
            }
        } else if (req.is_read) {
            io_prep_preadv(&req.iocb, fd, qiov->iov, qiov->niov, offset);
        } else {
            io_prep_pwritev(&req.iocb, fd, qiov->iov, qiov->niov, offset);
        }
        break;
    case QEMU_AIO_FLUSH:
        io_prep_fdsync(&req.iocb, fd);
        break;
    default:
        return -ENOTSUP;
    }
    io_set_eventfd(&req.iocb, event_notifier_get_fd(&s->e));
    req.co = qemu_coroutine_self();

    laio_enqueue(s, &req, dev_max_batch);
    if (!req.done) {
        qemu_coroutine_yield();
        assert(req.done);
    }
    return req.ret;
}

/* ---- Life cycle ------------------------------------------------------- */

static struct laio_ring *laio_map_ring(io_context_t ctx)
{
    struct laio_ring *ring = (struct laio_ring *)ctx;

    if (ring->magic != LAIO_RING_MAGIC || ring->incompat_features != 0 ||
        ring->header_length != sizeof(*ring) || ring->nr == 0) {
        return NULL;
    }
    return ring;
}

LinuxAioState *laio_init(Error **errp)
{
    LinuxAioState *s = g_new0(LinuxAioState, 1);
    unsigned nr_events = laio_params.nr_events ?: LAIO_MAX_EVENTS;
    int ret;

    s->max_in_flight = laio_params.max_in_flight ?: LAIO_MAX_EVENTS;
    QSIMPLEQ_INIT(&s->pending);

    ret = event_notifier_init(&s->e, false);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Linux AIO: cannot create the "
                         "completion event notifier");
        g_free(s);
        return NULL;
    }
    ret = io_setup(nr_events, &s->ctx);
    if (ret < 0) {
        if (ret == -EAGAIN) {
            error_setg_errno(errp, -ret, "Linux AIO: io_setup(%u) failed "
                             "(the system-wide limit fs.aio-max-nr is "
                             "reached)", nr_events);
        } else {
            error_setg_errno(errp, -ret, "Linux AIO: io_setup(%u) failed",
                             nr_events);
        }
        event_notifier_cleanup(&s->e);
        g_free(s);
        return NULL;
    }
    if (!laio_params.no_ring) {
        s->ring = laio_map_ring(s->ctx);
    }
    return s;
}

void laio_cleanup(LinuxAioState *s)
{
    int ret;

    if (s->aio_context) {
        error_report("laio_cleanup: Linux AIO engine %p is still attached "
                     "to AioContext %p; detach it first", (void *)s,
                     (void *)s->aio_context);
        abort();
    }
    event_notifier_cleanup(&s->e);
    ret = io_destroy(s->ctx);
    if (ret < 0) {
        warn_report("laio_cleanup: io_destroy failed: %s", strerror(-ret));
    }
    g_free(s);
}

void laio_detach_aio_context(LinuxAioState *s, AioContext *old_context)
{
    assert(s->aio_context == old_context);
    if (s->in_flight || s->in_queue) {
        /* Their coroutines would wait forever on a dead engine. */
        error_report("laio_detach_aio_context: Linux AIO engine %p still "
                     "has %u requests in flight and %u queued; drain them "
                     "before detaching it or destroying its AioContext",
                     (void *)s, s->in_flight, s->in_queue);
        abort();
    }
    aio_set_event_notifier(old_context, &s->e, NULL, NULL, NULL);
    qemu_bh_delete(s->submit_bh);
    qemu_bh_delete(s->completion_bh);
    s->submit_bh = NULL;
    s->completion_bh = NULL;
    s->aio_context = NULL;
}

void laio_attach_aio_context(LinuxAioState *s, AioContext *new_context)
{
    if (s->aio_context) {
        error_report("laio_attach_aio_context: Linux AIO engine %p is "
                     "already attached to AioContext %p; detach it first",
                     (void *)s, (void *)s->aio_context);
        abort();
    }
    s->aio_context = new_context;
    s->submit_bh = aio_bh_new(new_context, laio_submit_bh, s);
    s->completion_bh = aio_bh_new(new_context, laio_completion_bh, s);
    aio_set_event_notifier(new_context, &s->e, laio_completion_cb,
                           laio_poll_cb, laio_poll_ready);
}

/* ---- Capability probe ------------------------------------------------- */

bool laio_has_fdsync(int fd)
{
    struct iocb cb;
    struct iocb *cbs[1] = { &cb };
    struct io_event ev;
    io_context_t ctx = 0;
    int ret;

    /*
     * The kernel decides at submission: -EINVAL for files without an fsync
     * method (pipes, sockets) or on kernels before 4.18.  A real fdatasync
     * is the price of asking, as in QEMU; nothing is cached, since the
     * answer depends on the file.
     */
    if (io_setup(1, &ctx) < 0) {
        return false;
    }
    io_prep_fdsync(&cb, fd);
    ret = io_submit(ctx, 1, cbs);
    if (ret == 1) {
        while (io_getevents(ctx, 1, 1, &ev, NULL) == -EINTR) {
            /* retry */
        }
    }
    io_destroy(ctx);
    return ret == 1;
}
