/*
 * blk-linux-aio.c: the Linux AIO engine (io_submit / io_getevents), QEMU's
 * aio=native.
 *
 * Owns LinuxAioState: one kernel AIO context (io_setup), the iocbs of its
 * requests and the reading of completions.  Queueing, batching and the
 * event loop's handlers are the shared queue's (blk-ioq.c); this file is
 * the backend behind its ops table.  Every iocb carries the queue's eventfd
 * (IOCB_FLAG_RESFD); the io_poll handler looks at the completion ring, so
 * a busy-polling loop notices completions without a system call.
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
 *    are the same either way, but a batch of buffered requests is complete
 *    by the time io_submit returns: hence reap_after_submit.
 *  - io_submit() stops at the first iocb it cannot take and returns how
 *    many it took; only when it took none does it return that iocb's error.
 *    That is the contract of BlkIoqOps.submit as it stands.
 *  - -EAGAIN means the context's slots are used up by requests in flight
 *    or by completions nobody has reaped; the queue keeps the rest until
 *    reaping frees slots.
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
 */
#include "qemu/osdep.h"

#ifdef CONFIG_LINUX_AIO

#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/coroutine.h"
#include "block/raw-aio.h"
#include "blk-int.h"
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

/* Most events fetched by one io_getevents() call. */
#define LAIO_GETEVENTS_CHUNK 128

/* One request, on the stack of the coroutine that waits for it. */
typedef struct LaioRequest {
    BlkIoqReq ioq;
    struct iocb iocb;
    QEMUIOVector *qiov;
    size_t nbytes;
    bool is_read;
} LaioRequest;

/* Every field belongs to the home thread of the attached context. */
struct LinuxAioState {
    BlkIoq ioq;
    io_context_t ctx;
    struct laio_ring *ring;     /* NULL: reap with io_getevents() */

    /* io_getevents() results not completed yet: [event_idx, event_max). */
    unsigned event_idx;
    unsigned event_max;
    struct io_event events[LAIO_GETEVENTS_CHUNK];

    struct iocb *iocbs[LAIO_SUBMIT_CHUNK];
    uint64_t ring_reaped;
    uint64_t syscall_reaped;
};

/* Written only while no engine is being created (blk-int.h). */
static LaioParams laio_params;

void qaio_int_laio_set_params(const LaioParams *params)
{
    laio_params = params ? *params : (LaioParams) { 0 };
}

void qaio_int_laio_get_stats(LinuxAioState *s, LaioStats *stats)
{
    stats->ioq = s->ioq.stats;
    stats->ring_reaped = s->ring_reaped;
    stats->syscall_reaped = s->syscall_reaped;
}

void qaio_int_laio_reset_stats(LinuxAioState *s)
{
    blk_ioq_reset_stats(&s->ioq);
    s->ring_reaped = 0;
    s->syscall_reaped = 0;
}

bool qaio_int_laio_uses_ring(LinuxAioState *s)
{
    return s->ring != NULL;
}

/* ---- The queue's backend ---------------------------------------------- */

static int laio_submit(BlkIoq *q, BlkIoqReq **reqs, unsigned n)
{
    LinuxAioState *s = container_of(q, LinuxAioState, ioq);
    unsigned i;

    assert(n > 0 && n <= LAIO_SUBMIT_CHUNK);
    for (i = 0; i < n; i++) {
        s->iocbs[i] = &container_of(reqs[i], LaioRequest, ioq)->iocb;
    }
    return io_submit(s->ctx, n, s->iocbs);
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
    s->syscall_reaped += n;
    return true;
}

/* Take the next completion off the ring or the buffer. */
static BlkIoqReq *laio_reap(BlkIoq *q, int64_t *res)
{
    LinuxAioState *s = container_of(q, LinuxAioState, ioq);
    struct io_event ev;

    if (s->ring) {
        if (!laio_ring_pop(s->ring, &ev)) {
            return NULL;
        }
        s->ring_reaped++;
    } else {
        if (s->event_idx == s->event_max && !laio_fetch_events(s)) {
            return NULL;
        }
        ev = s->events[s->event_idx++];
    }
    /* res is the kernel's 64-bit result (libaio splits it on ILP32). */
    *res = (long)ev.res;
    return &container_of(ev.obj, LaioRequest, iocb)->ioq;
}

static bool laio_ready(BlkIoq *q)
{
    LinuxAioState *s = container_of(q, LinuxAioState, ioq);

    if (s->ring) {
        return qatomic_read(&s->ring->head) !=
               qatomic_load_acquire(&s->ring->tail);
    }
    return s->event_idx < s->event_max || laio_fetch_events(s);
}

static unsigned laio_waiting(BlkIoq *q)
{
    LinuxAioState *s = container_of(q, LinuxAioState, ioq);

    if (s->ring) {
        unsigned head = qatomic_read(&s->ring->head);
        unsigned tail = qatomic_load_acquire(&s->ring->tail);

        return (tail + s->ring->nr - head) % s->ring->nr;
    }
    /* Only what io_getevents() returned is known without asking again. */
    return s->event_max - s->event_idx;
}

/* Turn the kernel's byte count into the API's result. */
static bool laio_complete(BlkIoq *q, BlkIoqReq *ioq_req, int64_t res)
{
    LaioRequest *req = container_of(ioq_req, LaioRequest, ioq);

    if (res >= 0 && (uint64_t)res != req->nbytes) {
        if (req->is_read) {
            /* Only the end of the file cuts a read short. */
            qemu_iovec_memset(req->qiov, res, 0, req->nbytes - res);
            res = 0;
        } else {
            res = -ENOSPC;
        }
    } else if (res > 0) {
        res = 0;
    }
    ioq_req->ret = res;
    return true;
}

static const BlkIoqOps laio_ops = {
    .name = "Linux AIO",
    .default_max_batch = LAIO_DEFAULT_MAX_BATCH,
    .reap_after_submit = true,
    .submit = laio_submit,
    .reap = laio_reap,
    .complete = laio_complete,
    .ready = laio_ready,
    .waiting = laio_waiting,
};

/* ---- Requests --------------------------------------------------------- */

/* The kernel's per-request cap (MAX_RW_COUNT), with 4 KiB pages. */
#define LAIO_MAX_RW_COUNT ((size_t)INT_MAX & ~(size_t)4095)

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

    blk_ioq_check_submit(&laio_ops, s ? &s->ioq : NULL, "laio_co_submit",
                         "aio_setup_linux_aio");
    switch (type & QEMU_AIO_TYPE_MASK) {
    case QEMU_AIO_READ:
    case QEMU_AIO_WRITE:
        if (!qiov) {
            error_report("laio_co_submit: a %s request needs a QEMUIOVector",
                         req.is_read ? "read" : "write");
            abort();
        }
        /*
         * The kernel transfers at most MAX_RW_COUNT (INT_MAX rounded down
         * to a page) per request and reports the rest as a short transfer,
         * which would read as end of file (zero-filled) or a full disk.
         * io_uring resubmits the rest; Linux AIO refuses instead.
         */
        if (qiov->size > LAIO_MAX_RW_COUNT) {
            return -EINVAL;
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
    io_set_eventfd(&req.iocb, event_notifier_get_fd(&s->ioq.e));
    return blk_ioq_co_submit(&s->ioq, &req.ioq, dev_max_batch);
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

    if (!blk_ioq_init(&s->ioq, &laio_ops,
                      laio_params.max_in_flight ?: LAIO_MAX_EVENTS,
                      LAIO_SUBMIT_CHUNK, errp)) {
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
        blk_ioq_cleanup(&s->ioq, "laio_init");
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

    blk_ioq_cleanup(&s->ioq, "laio_cleanup");
    ret = io_destroy(s->ctx);
    if (ret < 0) {
        warn_report("laio_cleanup: io_destroy failed: %s", strerror(-ret));
    }
    g_free(s);
}

/* Requests still outstanding are misuse: the caller drains first. */
void laio_detach_aio_context(LinuxAioState *s, AioContext *old_context)
{
    blk_ioq_detach(&s->ioq, old_context, "laio_detach_aio_context", false);
}

void laio_attach_aio_context(LinuxAioState *s, AioContext *new_context)
{
    blk_ioq_attach(&s->ioq, new_context, "laio_attach_aio_context");
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

#endif /* CONFIG_LINUX_AIO */
