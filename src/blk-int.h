/*
 * blk-int.h: what the block I/O engines share and what their tests see.
 *
 * Owns BlkIoq, the batching queue of blk-ioq.c, and BlkIoqOps, the table
 * an engine (blk-linux-aio.c, blk-io_uring.c) fills in to be driven by it;
 * and the counters and knobs the tests of both engines reach.  Not
 * installed; the qaio_int_* functions are not exported (G_GNUC_INTERNAL):
 * users get QEMU's API only (block/raw-aio.h).
 *
 * The queue is everything the engines do alike: requests prepared on the
 * stacks of their coroutines wait in a software queue; a batch goes to the
 * kernel as soon as it is full or the device runs short of work, and
 * whatever is queued goes from a bottom half that the first queued request
 * schedules, so aio_poll() submits it before it sleeps.  What the kernel
 * cannot take stays queued and goes out as completions free room.
 * Completions are announced on an eventfd that the context watches, and
 * noticed without a system call by an io_poll handler while the context
 * busy-polls.  The engine only moves requests to and from the kernel and
 * says what a result means.
 *
 * Threading: a queue and its engine belong to the home thread of the
 * context they are attached to (attach, detach and cleanup run while that
 * context runs nothing else).  No locks; the kernel's side of the rings is
 * each engine's business.  blk_ioq_init() and the qaio_int_*_set_params
 * functions may run in any thread.
 */
#ifndef QAIO_BLK_INT_H
#define QAIO_BLK_INT_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/queue.h"
#include "block/raw-aio.h"

#if defined(CONFIG_LINUX_AIO) || defined(CONFIG_LINUX_IO_URING)

typedef struct BlkIoq BlkIoq;

/*
 * BlkIoqReq: the queue's part of one request, embedded in the engine's
 * request on the stack of the coroutine that waits for it.
 */
typedef struct BlkIoqReq {
    Coroutine *co;              /* waits in blk_ioq_co_submit() */
    int ret;                    /* the result, once @done */
    bool done;
    QSIMPLEQ_ENTRY(BlkIoqReq) next;
} BlkIoqReq;

/*
 * BlkIoqOps: one engine, as the queue drives it.  Every member runs in the
 * home thread of the context the queue is attached to.
 *
 * @name: the engine in messages ("Linux AIO", "io_uring")
 * @default_max_batch: the batch limit when neither the device nor the
 *                     context's aio_max_batch sets one
 * @reap_after_submit: reap right after every submission (for kernels that
 *                     complete requests inside the submitting system call)
 * @submit: hand @reqs[0..@n) to the kernel, in order.  Returns how many of
 *          the first ones the kernel took (1..@n), which are in flight
 *          from now on until @reap returns them; -EAGAIN when it took none
 *          because it is out of room until completions are reaped (with
 *          nothing in flight, waiting cannot help: @reqs[0] fails with
 *          it); any other -errno when it refused @reqs[0] alone, which
 *          fails with it.  Called with @n == 0 only after
 *          blk_ioq_retry_later(), to hand over what an earlier call kept;
 *          the result is ignored.
 * @reap: take the next completion from the kernel: returns its request
 *        with the kernel's result in @res (bytes or -errno), or NULL when
 *        none is waiting.  It must not block, and it must consume the
 *        completion before returning, as the queue may run the request's
 *        coroutine (which may reap again) before it calls @reap again.
 * @complete: turn @res into @req's result (@req->ret) and return true; or
 *            prepare @req again (a retry, the rest of a short transfer)
 *            and return false: the queue submits it again.
 * @ready: is a completion waiting?  The io_poll handler: called in a busy
 *         loop, so it should read shared memory rather than make a system
 *         call.
 * @waiting: how many completions wait to be reaped, as far as shared
 *           memory tells (never a system call; too few is allowed).  The
 *           queue subtracts them from what is in flight to learn how many
 *           requests the device itself still has.
 */
typedef struct BlkIoqOps {
    const char *name;
    unsigned default_max_batch;
    bool reap_after_submit;
    int (*submit)(BlkIoq *q, BlkIoqReq **reqs, unsigned n);
    BlkIoqReq *(*reap)(BlkIoq *q, int64_t *res);
    bool (*complete)(BlkIoq *q, BlkIoqReq *req, int64_t res);
    bool (*ready)(BlkIoq *q);
    unsigned (*waiting)(BlkIoq *q);
} BlkIoqOps;

/*
 * BlkIoqStats: what a queue did since it was created (or last reset).
 *
 * @submit_calls: calls of the engine's submit (io_submit, io_uring_submit),
 *                failed ones included
 * @early_submits: submissions made at once because the device had no more
 *                 requests to work on than the queue held back
 * @submitted: requests the kernel took, resubmissions included
 * @largest_batch: most requests taken by one call
 * @max_in_flight: peak of requests taken and not yet reaped
 * @in_flight_limit: the cap on that (not reset)
 * @kernel_full: calls in which the kernel took fewer requests than offered
 *               (-EAGAIN, a partial submission, a full submission ring)
 * @stalled: submissions that left requests queued (the kernel or the cap
 *           had no room); they go out as completions are reaped
 * @eventfd_reaped: completions reaped because the eventfd fired
 * @poll_reaped: completions reaped because the io_poll handler saw them
 *               while the context busy-polled
 * @bh_reaped: completions left to the completion BH by a nested event loop
 * @submit_reaped: completions reaped right after a submission
 */
typedef struct BlkIoqStats {
    uint64_t submit_calls;
    uint64_t early_submits;
    uint64_t submitted;
    unsigned largest_batch;
    unsigned max_in_flight;
    unsigned in_flight_limit;
    uint64_t kernel_full;
    uint64_t stalled;
    uint64_t eventfd_reaped;
    uint64_t poll_reaped;
    uint64_t bh_reaped;
    uint64_t submit_reaped;
} BlkIoqStats;

typedef QSIMPLEQ_HEAD(, BlkIoqReq) BlkIoqReqList;

/* Every field belongs to the home thread of @ctx. */
struct BlkIoq {
    const BlkIoqOps *ops;
    AioContext *ctx;            /* NULL while detached */
    EventNotifier e;            /* an eventfd the kernel signals */
    QEMUBH *submit_bh;          /* submits what is queued */
    QEMUBH *completion_bh;      /* reaps for nested event loops */

    unsigned max_in_flight;     /* the engine's cap on requests in flight */
    unsigned max_submit;        /* most requests one submit call takes */
    unsigned in_flight;         /* taken by the kernel, not yet reaped */
    unsigned in_queue;          /* in @queue */
    unsigned reaping;           /* nesting depth of the reaping loop */
    bool blocked;               /* the kernel had no room: wait for reaping */
    bool completes_inline;      /* the last submit call completed it all */
    bool retry;                 /* call ops->submit from submit_bh */
    BlkIoqReqList queue;
    BlkIoqReq **batch;          /* @max_submit entries, for ops->submit */
    BlkIoqStats stats;
};

/*
 * Create @q for the engine @ops: its eventfd (the kernel signals it, so a
 * pipe will not do), a cap of @max_in_flight requests in the kernel, at
 * most @max_submit (> 0) per call of ops->submit.  Returns false with
 * @errp set on failure.
 */
bool blk_ioq_init(BlkIoq *q, const BlkIoqOps *ops, unsigned max_in_flight,
                  unsigned max_submit, Error **errp);

/* Free what blk_ioq_init() made; @q must be detached (@fn names the API). */
void blk_ioq_cleanup(BlkIoq *q, const char *fn);

void blk_ioq_attach(BlkIoq *q, AioContext *new_context, const char *fn);

/*
 * Detach @q from @old_context.  With @drain, requests still queued or in
 * flight are completed first by running the context's loop, which must be
 * done in its home thread; without, any such request is misuse.
 */
void blk_ioq_detach(BlkIoq *q, AioContext *old_context, const char *fn,
                    bool drain);

/*
 * For a *_co_submit() function @fn: abort unless it runs in a coroutine
 * and @q, the engine of the current context, exists (else @setup_fn must
 * be called first).  @ops names the engine.
 */
void blk_ioq_check_submit(const BlkIoqOps *ops, BlkIoq *q, const char *fn,
                          const char *setup_fn);

/*
 * Queue @req (prepared by the engine) and yield until it has completed;
 * returns req->ret.  @dev_max_batch is the device's batch limit, 0 for
 * none.  Runs in a coroutine of @q's context.
 */
int coroutine_fn blk_ioq_co_submit(BlkIoq *q, BlkIoqReq *req,
                                   uint64_t dev_max_batch);

/*
 * For ops->submit: requests the engine took are not with the kernel yet
 * (a failed io_uring_submit() leaves them in the ring): call ops->submit
 * again, with nothing new, from the next iteration of the loop.
 */
void blk_ioq_retry_later(BlkIoq *q);

/* Zero the counters of @q but the in-flight limit. */
void blk_ioq_reset_stats(BlkIoq *q);

#endif /* CONFIG_LINUX_AIO || CONFIG_LINUX_IO_URING */

/* ---- Linux AIO (blk-linux-aio.c) ---------------------------------------- */

#ifdef CONFIG_LINUX_AIO

/* Events asked of io_setup() and requests in flight at most, by default. */
#define LAIO_MAX_EVENTS 1024

/* Requests submitted at once when neither device nor context sets a limit. */
#define LAIO_DEFAULT_MAX_BATCH 32

/* Most iocbs passed to one io_submit() call. */
#define LAIO_SUBMIT_CHUNK 256

/*
 * LaioStats: the queue's counters and how completions were read.
 *
 * @ring_reaped: completions read from the user-space ring
 * @syscall_reaped: completions read with io_getevents()
 */
typedef struct LaioStats {
    BlkIoqStats ioq;
    uint64_t ring_reaped;
    uint64_t syscall_reaped;
} LaioStats;

/*
 * LaioParams: how the following laio_init() calls create engines.
 *
 * @nr_events: passed to io_setup(); 0 means LAIO_MAX_EVENTS
 * @max_in_flight: the engine's own cap on requests in the kernel; 0 means
 *                 LAIO_MAX_EVENTS.  Setting it above what @nr_events lets
 *                 the kernel hold makes io_submit() run out of room, which
 *                 is how tests reach the queue-full path.
 * @no_ring: reap with io_getevents() even where the ring is readable
 */
typedef struct LaioParams {
    unsigned nr_events;
    unsigned max_in_flight;
    bool no_ring;
} LaioParams;

/* Copy the counters of @s into @stats (its home thread). */
G_GNUC_INTERNAL void qaio_int_laio_get_stats(LinuxAioState *s,
                                             LaioStats *stats);

/* Zero the counters of @s (its home thread). */
G_GNUC_INTERNAL void qaio_int_laio_reset_stats(LinuxAioState *s);

/* Does @s read completions from the user-space ring (not io_getevents)? */
G_GNUC_INTERNAL bool qaio_int_laio_uses_ring(LinuxAioState *s);

/*
 * Set the parameters of later laio_init() calls; NULL restores defaults.
 * A process-wide setting: call it while no other thread creates an engine.
 */
G_GNUC_INTERNAL void qaio_int_laio_set_params(const LaioParams *params);

#endif /* CONFIG_LINUX_AIO */

/* ---- io_uring (blk-io_uring.c) ------------------------------------------ */

#ifdef CONFIG_LINUX_IO_URING

/* Submission queue entries of the engine's ring (the CQ gets twice that). */
#define LURING_RING_ENTRIES 128

/*
 * LuringStats: the queue's counters and the engine's resubmissions.
 *
 * @short_resubmits: short reads and writes resubmitted for the rest
 * @retry_resubmits: -EAGAIN / -EINTR completions resubmitted unchanged
 */
typedef struct LuringStats {
    BlkIoqStats ioq;
    uint64_t short_resubmits;
    uint64_t retry_resubmits;
} LuringStats;

/* Copy the counters of @s into @stats (its home thread). */
G_GNUC_INTERNAL void qaio_int_luring_get_stats(LuringState *s,
                                               LuringStats *stats);

/* Zero the counters of @s, but the in-flight limit (its home thread). */
G_GNUC_INTERNAL void qaio_int_luring_reset_stats(LuringState *s);

/* Completions the kernel has posted that @s has not reaped yet. */
G_GNUC_INTERNAL unsigned qaio_int_luring_waiting(LuringState *s);

/*
 * qaio_int_luring_inject_short: make transfers short on purpose
 * @s: the engine
 * @max_bytes: every submission of an affected read or write asks the
 *             kernel for at most this many bytes (must be > 0)
 * @count: how many of the following reads and writes larger than
 *         @max_bytes are affected
 *
 * The kernel really transfers only @max_bytes at a time, so the engine's
 * resubmissions of the rest are what make the request complete.
 */
G_GNUC_INTERNAL void qaio_int_luring_inject_short(LuringState *s,
                                                  size_t max_bytes,
                                                  unsigned count);

/*
 * qaio_int_luring_inject_eagain: report completions as -EAGAIN
 * @s: the engine
 * @count: how many of the following read or write completions are
 *         replaced by -EAGAIN (their data is transferred again)
 */
G_GNUC_INTERNAL void qaio_int_luring_inject_eagain(LuringState *s,
                                                   unsigned count);

/*
 * qaio_int_luring_inject_submit_fail: fail submissions as the kernel may
 * @s: the engine
 * @count: how many of the following io_uring_submit() calls are skipped
 *         and reported as -EAGAIN, as when the kernel is short of memory:
 *         the entries stay in the ring until a later call
 */
G_GNUC_INTERNAL void qaio_int_luring_inject_submit_fail(LuringState *s,
                                                        unsigned count);

#endif /* CONFIG_LINUX_IO_URING */

#endif /* QAIO_BLK_INT_H */
