/*
 * block/aio.h: the AioContext, QEMU's event loop.
 *
 * An AioContext is a small event loop that a thread runs with aio_poll() or
 * that GLib drives as a GSource.  It dispatches four kinds of work:
 *   - bottom halves (QEMUBH): callbacks scheduled from any thread, or from a
 *     signal handler, to run in the context's thread as soon as possible;
 *   - fd handlers: read/write callbacks for file descriptors, optionally with
 *     an io_poll callback that lets the loop busy-poll instead of sleeping;
 *   - timers, through the context's QEMUTimerListGroup (ctx->tlg);
 *   - coroutines scheduled into the context (aio_co_schedule and friends).
 *
 * Threading: each context has a home thread, the one that calls aio_poll()
 * (or iterates the GMainContext the source is attached to).  Only the home
 * thread dispatches.  Scheduling BHs, aio_notify(), timer_mod() and
 * aio_set_fd_handler() may be called from any thread.
 */
#ifndef QEMU_AIO_H
#define QEMU_AIO_H

#include "qemu/osdep.h"
#ifdef CONFIG_LINUX_IO_URING
#include <liburing.h>
#endif
#include "qemu/coroutine-core.h"
#include "qemu/queue.h"
#include "qemu/event_notifier.h"
#include "qemu/lockcnt.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "block/graph-lock.h"
#include "hw/qdev-core.h"

/* ---- Asynchronous I/O control blocks -------------------------------- */

typedef struct BlockAIOCB BlockAIOCB;
typedef void BlockCompletionFunc(void *opaque, int ret);

/* Describes one kind of AIOCB: how to cancel it and how big it is. */
typedef struct AIOCBInfo {
    void (*cancel_async)(BlockAIOCB *acb);
    size_t aiocb_size;
} AIOCBInfo;

struct BlockAIOCB {
    const AIOCBInfo *aiocb_info;
    BlockDriverState *bs;
    BlockCompletionFunc *cb;
    void *opaque;
    int refcnt;
};

/**
 * qemu_aio_get: allocate an AIOCB of @aiocb_info->aiocb_size bytes
 *
 * The BlockAIOCB must be the first member of the larger struct.  The new
 * AIOCB has a reference count of 1.
 */
void *qemu_aio_get(const AIOCBInfo *aiocb_info, BlockDriverState *bs,
                   BlockCompletionFunc *cb, void *opaque);
/* Drop a reference; the AIOCB is freed when the count reaches zero. */
void qemu_aio_unref(void *p);
void qemu_aio_ref(void *p);

/**
 * bdrv_aio_cancel_async: ask for @acb's request to be cancelled
 * @acb: the request
 *
 * Calls @acb's AIOCBInfo.cancel_async, if it has one, and returns.  The
 * completion callback still runs, later, in the request's context: with
 * -ECANCELED if the request was cancelled before it started, otherwise
 * with its normal result.
 *
 * Context: the home thread of the context the request completes in.
 */
void bdrv_aio_cancel_async(BlockAIOCB *acb);

/**
 * bdrv_aio_cancel: cancel @acb's request and wait until it has completed
 * @acb: the request
 *
 * Like bdrv_aio_cancel_async(), then runs the calling thread's current
 * context (AIO_WAIT_WHILE) until the completion callback has run.  @acb
 * stays valid during the wait and is released on return.
 *
 * Context: the home thread of the context the request completes in
 * (the main thread with the BQL for the main context); not a coroutine.
 */
void bdrv_aio_cancel(BlockAIOCB *acb);

/* ---- Callback types -------------------------------------------------- */

typedef struct AioHandler AioHandler;
typedef QLIST_HEAD(, AioHandler) AioHandlerList;
typedef void QEMUBHFunc(void *opaque);
/* A busy-poll callback: returns true when the handler has work to do. */
typedef bool AioPollFn(void *opaque);
typedef void IOHandler(void *opaque);

struct ThreadPool;
struct LinuxAioState;
typedef struct LuringState LuringState;

/**
 * aio_poll_disabled: is busy polling impossible for @ctx?
 *
 * True while some registered fd handler has no io_poll callback: such a
 * handler can only be noticed by the kernel, so the loop must not spin.
 * File descriptor monitors that cannot poll readiness from userspace use
 * this function as their need_wait member.
 */
bool aio_poll_disabled(AioContext *ctx);

/*
 * FDMonOps: a file descriptor monitor (poll(2), epoll, io_uring).
 *
 * A context uses exactly one monitor at a time; ctx->fdmon_ops points at its
 * table.  Each implementation lives in its own file.
 */
typedef struct {
    /*
     * update: start, change or stop monitoring one fd.
     * @ctx: the context
     * @old_node: the handler being replaced or removed, or NULL when the fd
     *            is new to the context
     * @new_node: the handler taking over, or NULL when the fd goes away
     *
     * Called with ctx->list_lock held (locked, not just counted).
     */
    void (*update)(AioContext *ctx, AioHandler *old_node,
                   AioHandler *new_node);

    /*
     * wait: wait for fds to become ready.
     * @ctx: the context
     * @ready_list: ready handlers are added here, with pfd.revents set
     * @timeout: how long to wait at most, in nanoseconds; 0 means do not
     *           block, -1 means no limit
     *
     * Called with ctx->list_lock counted (a walker), not locked.
     *
     * Returns: the number of ready fds.
     */
    int (*wait)(AioContext *ctx, AioHandlerList *ready_list, int64_t timeout);

    /*
     * need_wait: must busy polling stop because wait() has work?
     * @ctx: the context
     *
     * Monitors that cannot see fd readiness from userspace return
     * aio_poll_disabled(ctx), so that handlers without io_poll are not
     * starved by handlers that keep making progress by polling.
     *
     * Returns: true if wait() should be called now.
     */
    bool (*need_wait)(AioContext *ctx);
} FDMonOps;

/*
 * Each aio_bh_poll() call moves the BHs pending so far into a slice of its
 * own, so that BHs scheduled meanwhile wait for the next call.  Slices of
 * nested aio_bh_poll() calls are chained, oldest first, so that an inner
 * call also finishes the outer calls' BHs.
 */
typedef QSLIST_HEAD(, QEMUBH) BHList;
typedef struct BHListSlice BHListSlice;
struct BHListSlice {
    BHList bh_list;
    QSIMPLEQ_ENTRY(BHListSlice) next;
};

typedef QSLIST_HEAD(, AioHandler) AioHandlerSList;

struct AioContext {
    /* The GSource through which GLib can drive the context; first member. */
    GSource source;

    /* For users of the context that need mutual exclusion; not used here. */
    QemuRecMutex lock;

    /*
     * This context's registration with the block graph lock: readers in
     * this context count here, so that graph writers can wait for them.
     */
    BdrvGraphRWlock *bdrv_graph;

    /* Registered fd handlers.  Walked under list_lock (see below). */
    AioHandlerList aio_handlers;

    /* Handlers removed while walkers were active; freed once none are. */
    AioHandlerList deleted_aio_handlers;

    /*
     * Who might be asleep, so that aio_notify() writes the event notifier
     * only when that can matter.  Written only by the home thread (or, for
     * the main context, under the BQL); read by any thread, hence atomic.
     *
     * While it is zero, everything (fds, BHs, timers) will be looked at
     * again before the home thread next blocks, so aio_notify() can skip
     * the notifier.  While it is non-zero, a wait may be in progress and
     * aio_notify() must set the notifier.
     *
     * Bit 0 belongs to the GSource: it is set from prepare() until the
     * following check().  Bits 1-31 count aio_poll() calls that are between
     * computing their timeout and the end of their wait.  The two cannot
     * share a counter because GLib may call prepare() without a matching
     * check(); a stale bit 0 only costs extra notifier writes until the
     * next check().
     */
    uint32_t notify_me;

    /*
     * A count of walkers of aio_handlers and of the BH list, plus a lock for
     * whoever adds or frees handlers: nothing a walker may still look at is
     * freed while the count is non-zero.
     */
    QemuLockCnt list_lock;

    /* BHs scheduled and not yet taken by aio_bh_poll(); lock-free pushes. */
    BHList bh_list;

    /* Slices of the aio_bh_poll() calls in progress, outermost first. */
    QSIMPLEQ_HEAD(, BHListSlice) bh_slice_list;

    /*
     * Set by aio_notify(), cleared by aio_notify_accept().  While it is
     * false the notifier is clear, or the home thread will clear "notified"
     * before it looks at events again; so the home thread need not read the
     * eventfd unless "notified" is true.  It may be true while the notifier
     * is clear.  The notifier write itself cannot be skipped on the same
     * grounds: tests/model/aio-notify.pml shows why (BUG_SKIP_SET).
     */
    bool notified;
    EventNotifier notifier;

    /* Coroutines aio_co_schedule()d into this context, and their BH. */
    QSLIST_HEAD(, Coroutine) scheduled_coroutines;
    QEMUBH *co_schedule_bh;

    /* Thread pool size limits (aio_context_set_thread_pool_params). */
    int thread_pool_min;
    int thread_pool_max;
    /* Created on first use by aio_get_thread_pool(); has its own locking. */
    struct ThreadPool *thread_pool;

#ifdef CONFIG_LINUX_AIO
    struct LinuxAioState *linux_aio;
#endif
#ifdef CONFIG_LINUX_IO_URING
    LuringState *linux_io_uring;

    /* The ring of the io_uring fd monitor. */
    struct io_uring fdmon_io_uring;
    /* Handlers whose poll requests must be (re)submitted to that ring. */
    AioHandlerSList submit_list;
#endif

    /* One timer list per clock; each list has its own lock. */
    QEMUTimerListGroup tlg;

    /* Number of registered handlers without io_poll; polling needs zero. */
    int poll_disable_cnt;

    /* Adaptive busy polling (aio_context_set_poll_params) */
    int64_t poll_ns;        /* current polling window, in nanoseconds */
    int64_t poll_max_ns;    /* window limit; 0 disables polling */
    int64_t poll_grow;      /* growth factor of the window (0: 2) */
    int64_t poll_shrink;    /* shrink divisor of the window (0: reset) */

    /* Largest number of requests an I/O engine submits in one batch. */
    int64_t aio_max_batch;

    /*
     * Handlers taking part in busy polling: those with io_poll that fired
     * recently.  Under list_lock; changed almost only by the home thread in
     * aio_poll() with the count raised; aio_set_fd_handler() removes nodes
     * from it only when the count is zero.
     */
    AioHandlerList poll_aio_handlers;

    /* True while busy polling, between io_poll_begin and io_poll_end. */
    bool poll_started;

    /* The epoll instance of the epoll monitor, or -1. */
    int epollfd;

    /* The fd monitor in use. */
    const FDMonOps *fdmon_ops;
};

/**
 * aio_context_new: create an event loop
 * @errp: where to report failure
 *
 * Returns: a new context with one reference, or NULL with @errp set when a
 * resource (a file descriptor, say) cannot be had.
 */
AioContext *aio_context_new(Error **errp);

/**
 * aio_context_ref: take a reference to @ctx
 * @ctx: the context
 */
void aio_context_ref(AioContext *ctx);

/**
 * aio_context_unref: drop a reference to @ctx
 * @ctx: the context
 *
 * The last reference frees the context.  Bottom halves still pending then
 * are freed without running.
 */
void aio_context_unref(AioContext *ctx);

/**
 * aio_bh_schedule_oneshot_full: run @cb(@opaque) once, soon, in @ctx
 * @ctx: the context
 * @cb: the callback
 * @opaque: its argument
 * @name: a name for debugging
 *
 * The bottom half is allocated here and freed after it has run (or with
 * the context, if it never does).  Thread-safe.
 */
void aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb,
                                  void *opaque, const char *name);

/* aio_bh_schedule_oneshot_full() with the callback's name as @name. */
#define aio_bh_schedule_oneshot(ctx, cb, opaque) \
    aio_bh_schedule_oneshot_full((ctx), (cb), (opaque), (stringify(cb)))

/**
 * aio_bh_new_full: create a bottom half
 * @ctx: the context it runs in
 * @cb: the callback
 * @opaque: its argument
 * @name: a name for debugging
 * @reentrancy_guard: if not NULL, engaged while @cb runs; while it is
 *                    engaged (by this or another callback of the same
 *                    owner) the bottom half is not run
 *
 * Scheduling a bottom half is wait-free, thread-safe and async-signal-safe.
 * Free it with qemu_bh_delete().
 *
 * Returns: the new bottom half.
 */
QEMUBH *aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                        const char *name, MemReentrancyGuard *reentrancy_guard);

/* aio_bh_new_full() named after the callback, without a guard. */
#define aio_bh_new(ctx, cb, opaque) \
    aio_bh_new_full((ctx), (cb), (opaque), (stringify(cb)), NULL)

/* aio_bh_new_full() named after the callback, with a guard. */
#define aio_bh_new_guarded(ctx, cb, opaque, guard) \
    aio_bh_new_full((ctx), (cb), (opaque), (stringify(cb)), guard)

/**
 * aio_notify: make the context look at its events again
 * @ctx: the context
 *
 * Wakes an aio_poll() (or GLib iteration) sleeping on @ctx, so that it
 * returns and the next call recomputes what to wait for.  Scheduling a BH
 * or arming a timer already does this; call it directly only after changing
 * state the loop cannot see.  Thread-safe and async-signal-safe.
 */
void aio_notify(AioContext *ctx);

/**
 * aio_notify_accept: acknowledge an aio_notify()
 * @ctx: the context
 *
 * Clears ctx->notified before the loop looks at BHs, fds and timers, so a
 * notification arriving afterwards is not lost.  Used by aio_poll() and the
 * GSource; home thread only.
 */
void aio_notify_accept(AioContext *ctx);

/**
 * aio_bh_call: run the callback of @bh
 * @bh: the bottom half
 *
 * Honours the bottom half's reentrancy guard: a guarded BH whose guard is
 * already engaged is not run, and a warning is printed.
 */
void aio_bh_call(QEMUBH *bh);

/**
 * aio_bh_poll: run the bottom halves scheduled in @ctx
 * @ctx: the context
 *
 * Runs every BH scheduled before the call (and those of enclosing
 * aio_bh_poll() calls); BHs scheduled meanwhile wait for the next call.
 * Frees deleted and one-shot BHs.  Home thread only.
 *
 * Returns: 1 if some BH other than an idle one ran, 0 otherwise.
 */
int aio_bh_poll(AioContext *ctx);

/**
 * qemu_bh_schedule: schedule a bottom half
 * @bh: the bottom half
 *
 * The callback runs once in the BH's context at the next aio_bh_poll();
 * scheduling again before then has no further effect.  A BH scheduled from
 * its own callback runs again in the next iteration, so a self-scheduling
 * BH keeps the loop busy forever.  Wakes the context.  Thread-safe,
 * async-signal-safe, wait-free.
 */
void qemu_bh_schedule(QEMUBH *bh);

/**
 * qemu_bh_cancel: undo qemu_bh_schedule()
 * @bh: the bottom half
 *
 * Thread-safe, but racing with the context's thread is unavoidable: the
 * callback may already be running.
 */
void qemu_bh_cancel(QEMUBH *bh);

/**
 * qemu_bh_delete: cancel @bh and free it
 * @bh: the bottom half
 *
 * The memory is released asynchronously by the context's next
 * aio_bh_poll() (or with the context).  Safe from the BH's own callback and
 * from other threads.  @bh must not be used afterwards.
 */
void qemu_bh_delete(QEMUBH *bh);

/* GSource prepare(): is there work before the poll?  Internal. */
bool aio_prepare(AioContext *ctx);

/* GSource check(): is there work after the poll?  Internal. */
bool aio_pending(AioContext *ctx);

/* GSource dispatch(): run BHs, ready fd handlers and expired timers. */
void aio_dispatch(AioContext *ctx);

/**
 * aio_poll: run one iteration of the event loop
 * @ctx: the context
 * @blocking: whether to wait for something to happen
 *
 * Runs pending bottom halves, ready fd handlers (or busy-poll handlers) and
 * expired timers.  With @blocking, first waits until one of them is ready:
 * an fd, a BH, an aio_notify(), or the earliest timer deadline.  Without,
 * never sleeps.  Home thread only; not from coroutine context.
 *
 * Returns: true iff some callback made progress (a non-idle BH, an fd
 * handler, a poll handler or a timer ran).  A wake-up caused only by
 * aio_notify() is not progress, so a blocking call returns false only then.
 */
bool no_coroutine_fn aio_poll(AioContext *ctx, bool blocking);

/**
 * aio_set_fd_handler: watch @fd
 * @ctx: the context
 * @fd: the file descriptor
 * @io_read: called when @fd is readable (or hung up, or in error)
 * @io_write: called when @fd is writable (or in error)
 * @io_poll: busy-poll callback, true when there is work; or NULL
 * @io_poll_ready: called instead of @io_read when @io_poll reported work
 * @opaque: argument of every callback
 *
 * Adds, replaces or (with all callbacks NULL) removes the handler of @fd.
 * Handlers are level-triggered: a read handler that leaves data in the fd
 * runs again in the next iteration (under epoll, when more than 128 fds are
 * ready at once, the rest are served by the following iterations, in
 * turn).  May be called from any thread and
 * from inside a handler; a removed handler is never called again once this
 * returns in the home thread.
 */
void aio_set_fd_handler(AioContext *ctx,
                        int fd,
                        IOHandler *io_read,
                        IOHandler *io_write,
                        AioPollFn *io_poll,
                        IOHandler *io_poll_ready,
                        void *opaque);

/**
 * aio_set_event_notifier: watch an EventNotifier
 * @ctx: the context
 * @notifier: the notifier
 * @io_read: called with @notifier when it is set; NULL removes the handler
 * @io_poll: busy-poll callback, or NULL
 * @io_poll_ready: called when @io_poll reported work, or NULL
 *
 * aio_set_fd_handler() for the notifier's read fd.
 */
void aio_set_event_notifier(AioContext *ctx,
                            EventNotifier *notifier,
                            EventNotifierHandler *io_read,
                            AioPollFn *io_poll,
                            EventNotifierHandler *io_poll_ready);

/**
 * aio_set_event_notifier_poll: add polling-mode callbacks to a notifier
 * @ctx: the context
 * @notifier: a notifier registered with aio_set_event_notifier()
 * @io_poll_begin: called when the context starts busy polling
 * @io_poll_end: called when it stops
 *
 * Does nothing if @notifier is not registered.  Removing the handler while
 * polling means io_poll_end is not called, so io_poll_begin is not always
 * followed by io_poll_end.
 */
void aio_set_event_notifier_poll(AioContext *ctx,
                                 EventNotifier *notifier,
                                 EventNotifierHandler *io_poll_begin,
                                 EventNotifierHandler *io_poll_end);

/**
 * aio_get_g_source: the context as a GSource
 * @ctx: the context
 *
 * Attach the returned source to a GMainContext to drive @ctx from GLib.
 * From then on every fd handler's GPollFD is registered with the source,
 * so GLib polls the fds itself.
 *
 * Returns: the source, with a new reference for the caller.
 */
GSource *aio_get_g_source(AioContext *ctx);

/* The thread pool of @ctx, created on first use. */
struct ThreadPool *aio_get_thread_pool(AioContext *ctx);

/* Create the Linux AIO engine state of @ctx; NULL with @errp set on failure. */
struct LinuxAioState *aio_setup_linux_aio(AioContext *ctx, Error **errp);

/* The Linux AIO engine state of @ctx, or NULL if not set up. */
struct LinuxAioState *aio_get_linux_aio(AioContext *ctx);

/* Create the io_uring engine state of @ctx; NULL with @errp set on failure. */
LuringState *aio_setup_linux_io_uring(AioContext *ctx, Error **errp);

/* The io_uring engine state of @ctx, or NULL if not set up. */
LuringState *aio_get_linux_io_uring(AioContext *ctx);

/**
 * aio_timer_new_with_attrs: allocate a timer run by @ctx
 * @ctx: the context
 * @type: the clock
 * @scale: nanoseconds per unit of timer_mod() (SCALE_NS, SCALE_US, ...)
 * @attributes: 0 or QEMU_TIMER_ATTR_* values OR'ed together
 * @cb: called when the timer expires
 * @opaque: its argument
 *
 * Prefer aio_timer_init() on memory of your own.
 *
 * Returns: the new timer; free it with timer_free().
 */
static inline QEMUTimer *aio_timer_new_with_attrs(AioContext *ctx,
                                                  QEMUClockType type,
                                                  int scale, int attributes,
                                                  QEMUTimerCB *cb, void *opaque)
{
    return timer_new_full(&ctx->tlg, type, scale, attributes, cb, opaque);
}

/* aio_timer_new_with_attrs() without attributes. */
static inline QEMUTimer *aio_timer_new(AioContext *ctx, QEMUClockType type,
                                       int scale,
                                       QEMUTimerCB *cb, void *opaque)
{
    return timer_new_full(&ctx->tlg, type, scale, 0, cb, opaque);
}

/**
 * aio_timer_init_with_attrs: set up a caller-allocated timer run by @ctx
 *
 * Arguments as for aio_timer_new_with_attrs().
 */
static inline void aio_timer_init_with_attrs(AioContext *ctx,
                                             QEMUTimer *ts, QEMUClockType type,
                                             int scale, int attributes,
                                             QEMUTimerCB *cb, void *opaque)
{
    timer_init_full(ts, &ctx->tlg, type, scale, attributes, cb, opaque);
}

/* aio_timer_init_with_attrs() without attributes. */
static inline void aio_timer_init(AioContext *ctx,
                                  QEMUTimer *ts, QEMUClockType type,
                                  int scale,
                                  QEMUTimerCB *cb, void *opaque)
{
    timer_init_full(ts, &ctx->tlg, type, scale, 0, cb, opaque);
}

/**
 * aio_compute_timeout: how long a blocking aio_poll() may sleep
 * @ctx: the context
 *
 * Returns: 0 if a BH is scheduled or a timer has expired, -1 if there is
 * nothing to wait for but fds, else nanoseconds until the earliest timer
 * (at most 10 ms while an idle BH is scheduled).
 */
int64_t aio_compute_timeout(AioContext *ctx);

/**
 * aio_co_schedule: run @co in @ctx
 * @ctx: the context
 * @co: the coroutine, which must have yielded (unless @ctx is the context
 *      it runs in)
 *
 * Nobody else may enter @co until it has run.  Thread-safe.
 */
void aio_co_schedule(AioContext *ctx, Coroutine *co);

/**
 * aio_co_reschedule_self: move the running coroutine to @new_ctx
 * @new_ctx: the context to continue in
 *
 * Does nothing if the coroutine already runs in @new_ctx.  Cannot move from
 * the iohandler context to the main context.
 */
void coroutine_fn aio_co_reschedule_self(AioContext *new_ctx);

/**
 * aio_co_wake: restart @co in the context it last ran in
 * @co: the coroutine
 *
 * Callable from coroutine and non-coroutine context.  Nobody else may enter
 * @co meanwhile.
 */
void aio_co_wake(Coroutine *co);

/**
 * aio_co_enter: run @co in @ctx
 * @ctx: the context
 * @co: the coroutine
 *
 * Enters at once from @ctx's thread, schedules otherwise.
 */
void aio_co_enter(AioContext *ctx, Coroutine *co);

/**
 * qemu_get_current_aio_context: the context whose loop this thread runs
 *
 * Returns: the context set with qemu_set_current_aio_context() in this
 * thread; failing that, the main context if this thread holds the BQL;
 * else NULL.  Never the iohandler context.
 */
AioContext *qemu_get_current_aio_context(void);

/*
 * qemu_set_current_aio_context: declare @ctx the context this thread runs.
 * Aborts if the thread already has one.
 */
void qemu_set_current_aio_context(AioContext *ctx);

/**
 * aio_context_setup: pick the fd monitor and create its kernel state
 * @ctx: the context
 *
 * Called by aio_context_new().
 */
void aio_context_setup(AioContext *ctx);

/**
 * aio_context_destroy: release what aio_context_setup() created
 * @ctx: the context
 */
void aio_context_destroy(AioContext *ctx);

/* Switch @ctx to an fd monitor GLib can drive.  Internal. */
void aio_context_use_g_source(AioContext *ctx);

/**
 * aio_context_set_poll_params: configure adaptive busy polling
 * @ctx: the context
 * @max_ns: longest polling window in nanoseconds; 0 disables polling
 * @grow: factor the window grows by (0 means 2)
 * @shrink: divisor the window shrinks by (0 means reset to 0)
 * @errp: set if a value is negative; nothing is changed then
 *
 * Resets the current window to 0.  Thread-safe.
 */
void aio_context_set_poll_params(AioContext *ctx, int64_t max_ns,
                                 int64_t grow, int64_t shrink,
                                 Error **errp);

/**
 * aio_context_set_aio_params: configure the I/O engines
 * @ctx: the context
 * @max_batch: most requests submitted in one batch; 0 means the engine's
 *             default
 */
void aio_context_set_aio_params(AioContext *ctx, int64_t max_batch);

/**
 * aio_context_set_thread_pool_params: size the thread pool
 * @ctx: the context
 * @min: threads kept alive even when idle
 * @max: most threads the pool may run
 * @errp: set unless 0 <= @min <= @max, 1 <= @max <= INT_MAX
 */
void aio_context_set_thread_pool_params(AioContext *ctx, int64_t min,
                                        int64_t max, Error **errp);

#endif /* QEMU_AIO_H */
