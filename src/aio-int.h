/*
 * aio-int.h: what the aio-*.c and fdmon-*.c files share and users never see.
 *
 * Owns the definition of AioHandler and QEMUBH, the private tail of the
 * AioContext, the BH flag bits and the helpers the fd monitors use to hand
 * ready handlers to aio_poll().
 *
 * Threading: AioHandler fields are written by aio_set_fd_handler() before
 * the node is published on ctx->aio_handlers and never changed afterwards,
 * except pfd.revents, node_ready, poll_ready and the poll bookkeeping, which
 * belong to the home thread.  A node is freed only while no walker holds
 * ctx->list_lock.
 */
#ifndef QAIO_AIO_INT_H
#define QAIO_AIO_INT_H

#include "qemu/osdep.h"
#include "block/aio.h"

struct AioHandler {
    GPollFD pfd;                    /* fd, events; revents: home thread */
    IOHandler *io_read;
    IOHandler *io_write;
    AioPollFn *io_poll;
    IOHandler *io_poll_ready;
    IOHandler *io_poll_begin;
    IOHandler *io_poll_end;
    void *opaque;
    QLIST_ENTRY(AioHandler) node;           /* ctx->aio_handlers */
    QLIST_ENTRY(AioHandler) node_ready;     /* an aio_poll()'s ready list */
    QLIST_ENTRY(AioHandler) node_deleted;   /* ctx->deleted_aio_handlers */
    QLIST_ENTRY(AioHandler) node_poll;      /* ctx->poll_aio_handlers */
#ifdef CONFIG_LINUX_IO_URING
    QSLIST_ENTRY(AioHandler) node_submitted; /* ctx->submit_list */
    unsigned flags;                 /* FDMON_IO_URING_*: atomic RMW only */
#endif
    /*
     * Set (atomically, under list_lock) when the handler is removed while
     * walkers exist; walkers skip deleted nodes.
     */
    bool deleted;
    /* When the node leaves the poll set unless io_poll succeeds again. */
    int64_t poll_idle_timeout;
    /* io_poll returned true: dispatch calls io_poll_ready. */
    bool poll_ready;
};

#ifdef CONFIG_LINUX_IO_URING
/*
 * AioHandler.flags, owned by fdmon-io-uring.c.  update() sets PENDING, ADD
 * and REMOVE from any thread while the home thread changes the others, so
 * every change is an atomic read-modify-write.
 */
enum {
    FDMON_IO_URING_PENDING    = (1 << 0),   /* on ctx->submit_list */
    FDMON_IO_URING_ADD        = (1 << 1),   /* arm a poll request */
    FDMON_IO_URING_REMOVE     = (1 << 2),   /* removed; the monitor keeps it */
    FDMON_IO_URING_ARMED      = (1 << 3),   /* a poll request is in the ring */
    FDMON_IO_URING_MULTISHOT  = (1 << 4),   /* ... and it is multishot */
    FDMON_IO_URING_CANCELLING = (1 << 5),   /* its poll_remove is submitted */
    FDMON_IO_URING_RECHECK    = (1 << 6),   /* on the recheck list */
    FDMON_IO_URING_DEQUEUED   = (1 << 7),   /* its REMOVE was taken */
};
#endif

/* Bottom half flags, updated with atomic read-modify-write operations. */
enum {
    BH_PENDING   = (1 << 0),    /* on a BH list or a slice */
    BH_SCHEDULED = (1 << 1),    /* the callback should run */
    BH_DELETED   = (1 << 2),    /* free without running */
    BH_ONESHOT   = (1 << 3),    /* free right after running */
    BH_IDLE      = (1 << 4),    /* not progress; wait at most 10 ms for it */
};

struct QEMUBH {
    AioContext *ctx;
    const char *name;
    QEMUBHFunc *cb;
    void *opaque;
    QSLIST_ENTRY(QEMUBH) next;
    unsigned flags;
    MemReentrancyGuard *reentrancy_guard;
};

/*
 * The loop counters behind qaio/metrics.h.  One writer (the home thread),
 * readers anywhere: relaxed atomic loads and stores, no read-modify-write,
 * so counting costs a few plain instructions.
 */
typedef struct AioLoopCounters {
    uint64_t iterations;
    uint64_t bh_calls;
    uint64_t fd_dispatches;
    uint64_t blocking_waits;
    uint64_t blocked_ns;
    uint64_t poll_ns;
    uint64_t poll_hits;
    uint64_t poll_misses;
} AioLoopCounters;

/*
 * Built with -DQAIO_DISABLE_METRICS only for the benchmark that measures
 * what the counters cost (bench/bench-metrics.c).
 */
#ifdef QAIO_DISABLE_METRICS
#define aio_metric_add(ctx, field, n) ((void)(ctx), (void)(n))
#define aio_metrics_on() false
#else
#define aio_metric_add(ctx, field, n) \
    aio_counter_add(&aio_priv(ctx)->metrics.field, (n))
#define aio_metrics_on() true
#endif

static inline void aio_counter_add(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n,
                     __ATOMIC_RELAXED);
}

/*
 * The context as allocated: the public struct plus state nobody outside
 * the library needs.  g_source_new() allocates this size; the public part
 * comes first, so an AioContext pointer is also an AioContextPriv pointer.
 */
typedef struct AioContextPriv {
    AioContext ctx;

    /* fdmon-poll: the pollfd array of the last wait and its handlers. */
    GPollFD *pollfds;
    AioHandler **pollfd_nodes;
    unsigned pollfds_len;
    unsigned pollfds_alloc;

    /* fd -> its live AioHandler; under list_lock. */
    GHashTable *fd_handlers;
    /* Handlers' GPollFDs are registered with the GSource; under list_lock. */
    bool g_source_polls;

    /* The user forced a monitor (QAIO_FDMON); no automatic switching. */
    bool fdmon_forced;
    /* epoll failed once; stay on poll. */
    bool epoll_broken;

    /* Consecutive aio_poll() calls that skipped the fd monitor's wait. */
    unsigned skipped_waits;         /* home thread */

    /*
     * BHs that rescheduled themselves from their own callback while
     * ctx->bh_list was empty, newest first, and all older than anything on
     * ctx->bh_list.  Home thread only (see aio_bh_enqueue()).
     */
    BHList bh_local;

    /* qaio/metrics.h: written by the home thread only (aio_metric_add). */
    AioLoopCounters metrics;

#ifdef CONFIG_LINUX_IO_URING
    /*
     * fdmon-io-uring.  io_uring_ok: ctx->fdmon_io_uring exists; cleared
     * under list_lock while nobody walks.  io_uring_leave (atomic): GLib
     * drives the context, move to poll at the next chance.
     * io_uring_removals (atomic): removed handlers on the submit list.  The
     * recheck list belongs to the home thread inside wait() (and to
     * whoever leaves io_uring, with list_lock held and no walkers).
     */
    bool io_uring_ok;
    bool io_uring_multishot;        /* home thread */
    /*
     * The ring defers task work (DEFER_TASKRUN): only io_uring_owner, the
     * thread that enabled it, may enter it.  Set up before any wait; the
     * owner is read and written by waiting threads only.
     */
    bool io_uring_deferred;
    const void *io_uring_owner;
    bool io_uring_leave;
    unsigned io_uring_removals;
    AioHandler **io_uring_recheck;
    GPollFD *io_uring_recheck_pfds;
    unsigned io_uring_nrecheck;
    unsigned io_uring_recheck_alloc;
#endif
} AioContextPriv;

static inline AioContextPriv *aio_priv(AioContext *ctx)
{
    return container_of(ctx, AioContextPriv, ctx);
}

/* How long a handler may stay in the poll set without io_poll succeeding. */
#define POLL_IDLE_INTERVAL_NS (7 * NANOSECONDS_PER_SECOND)

/* The longest an idle BH may wait for the loop to come round. */
#define BH_IDLE_TIMEOUT_NS (10 * SCALE_MS)

/*
 * aio_add_ready_handler: hand @node to aio_poll() with @revents.
 * Called by fd monitors from ->wait().  A nested aio_poll() may take a node
 * still queued by an outer call: the node moves to the inner list.
 */
static inline void aio_add_ready_handler(AioHandlerList *ready_list,
                                         AioHandler *node, int revents)
{
    QLIST_SAFE_REMOVE(node, node_ready);
    node->pfd.revents = revents;
    QLIST_INSERT_HEAD(ready_list, node, node_ready);
}

static inline bool aio_node_is_deleted(AioHandler *node)
{
    return qatomic_read(&node->deleted);
}

/* The context's own notifier: its activity is never progress. */
static inline bool aio_handler_is_notifier(AioContext *ctx, AioHandler *node)
{
    return node->opaque == &ctx->notifier;
}

/* The fd monitor in use; another thread may switch it under list_lock. */
static inline const FDMonOps *aio_fdmon(AioContext *ctx)
{
    return qatomic_read(&ctx->fdmon_ops);
}

/*
 * Walking ctx->aio_handlers while another thread may insert at its head:
 * the inserter publishes a fully built node with a release store, the
 * walker reads links with acquire loads.  Removal happens only while no
 * walker exists (list_lock), so plain unlinking is safe.
 */
#define AIO_HANDLERS_FOREACH(node, head)                                \
    for ((node) = qatomic_rcu_read(&(head)->lh_first);                  \
         (node);                                                        \
         (node) = qatomic_rcu_read(&(node)->node.le_next))

static inline void aio_handlers_insert_head(AioHandlerList *head,
                                            AioHandler *node)
{
    AioHandler *first = head->lh_first;

    node->node.le_next = first;
    node->node.le_prev = &head->lh_first;
    if (first) {
        first->node.le_prev = &node->node.le_next;
    }
    qatomic_rcu_set(&head->lh_first, node);
}

/*
 * Did the fd monitor's update() keep removed @node for itself?  Then the
 * kernel may still hand the node back in a completion, and it is freed
 * only after the monitor passes it to aio_release_removed_handler().
 * Under list_lock.
 */
static inline bool aio_node_held_by_fdmon(AioHandler *node)
{
#ifdef CONFIG_LINUX_IO_URING
    return qatomic_read(&node->flags) & FDMON_IO_URING_REMOVE;
#else
    return false;
#endif
}

/* The fd monitors (one file each) and the only place that picks one. */
extern const FDMonOps fdmon_poll_ops;
extern const FDMonOps fdmon_epoll_ops;
#ifdef CONFIG_LINUX_IO_URING
extern const FDMonOps fdmon_io_uring_ops;
#endif

/* fdmon-epoll.c */
bool fdmon_epoll_try_upgrade(AioContext *ctx, unsigned npfd);
void fdmon_epoll_setup(AioContext *ctx);
void fdmon_epoll_disable(AioContext *ctx);

/* fdmon-poll.c */
void fdmon_poll_cleanup(AioContext *ctx);

/* fdmon-io-uring.c; without io_uring, stubs that do nothing. */
#ifdef CONFIG_LINUX_IO_URING
int fdmon_io_uring_setup(AioContext *ctx);
void fdmon_io_uring_destroy(AioContext *ctx);
bool fdmon_io_uring_use_g_source(AioContext *ctx);
void fdmon_io_uring_gsource_prepare(AioContext *ctx);
#else
static inline int fdmon_io_uring_setup(AioContext *ctx)
{
    return -ENOSYS;
}
static inline void fdmon_io_uring_destroy(AioContext *ctx)
{
}
static inline bool fdmon_io_uring_use_g_source(AioContext *ctx)
{
    return false;
}
static inline void fdmon_io_uring_gsource_prepare(AioContext *ctx)
{
}
#endif

#ifdef CONFIG_LINUX_IO_URING
/*
 * qaio_io_uring_queue_init: io_uring_queue_init() for every ring the
 * library creates (engine and fd monitor).  QAIO_DISABLE_IO_URING=1 makes
 * it fail with -ENOSYS, exactly what a kernel without io_uring (or with
 * kernel.io_uring_disabled set) returns, so tests take the real fallback
 * and error paths.
 */
static inline int qaio_io_uring_queue_init(unsigned entries,
                                           struct io_uring *ring,
                                           unsigned flags)
{
    const char *off = g_getenv("QAIO_DISABLE_IO_URING");

    if (off && *off && strcmp(off, "0") != 0) {
        return -ENOSYS;
    }
    return io_uring_queue_init(entries, ring, flags);
}
#endif

/* aio-bh.c */
int64_t aio_bh_timeout(AioContext *ctx);
void aio_bh_list_free_all(AioContext *ctx);

/*
 * A quick look for aio_poll(): true if the BH pushed last on either list
 * is scheduled, neither idle nor deleted, so that aio_bh_timeout() would
 * return 0.  False proves nothing.  Home thread only: only it frees queued
 * BHs; the acquire load pairs with the push's compare-and-swap.
 */
static inline bool aio_bh_surely_scheduled(AioContext *ctx)
{
    QEMUBH *bh = qatomic_read(&aio_priv(ctx)->bh_local.slh_first);

    if (!bh) {
        bh = qatomic_rcu_read(&ctx->bh_list.slh_first);
        if (!bh) {
            return false;
        }
    }
    return (qatomic_read(&bh->flags) &
            (BH_SCHEDULED | BH_DELETED | BH_IDLE)) == BH_SCHEDULED;
}

/* aio-adaptive-poll.c */
bool aio_try_poll_mode(AioContext *ctx, AioHandlerList *ready_list,
                       int64_t *timeout, int64_t *poll_end);
bool aio_poll_set_started(AioContext *ctx, AioHandlerList *ready_list,
                          bool started, int64_t *timeout);
void aio_adjust_polling_time(AioContext *ctx, int64_t block_ns);
void aio_poll_handler_became_active(AioContext *ctx, AioHandler *node);

/* aio-posix.c */
bool aio_dispatch_handler(AioContext *ctx, AioHandler *node);
void aio_free_deleted_handlers(AioContext *ctx);
void aio_free_all_handlers(AioContext *ctx);
void aio_release_removed_handler(AioContext *ctx, AioHandler *node);

/* aio-notify.c: the context's own notifier and its callbacks. */
void aio_context_notifier_register(AioContext *ctx);
void aio_notify_accept_clear(AioContext *ctx);

/*
 * aio_notify_accept(), with its common case in line for aio_poll().
 * Model: tests/model/aio-notify.pml (ACCEPT_FAST_PATH).
 */
static inline void aio_notify_accept_inline(AioContext *ctx)
{
    if (qatomic_read(&ctx->notified)) {
        aio_notify_accept_clear(ctx);
    } else {
        /*
         * Nothing to clear.  Keep the loads of BHs, fds and timers after
         * this one; a notification we miss now still sets "notified" for
         * the next iteration to see.
         */
        smp_rmb();
    }
}

/*
 * The context whose callbacks this thread is dispatching right now, if
 * any (see aio_notify()).  aio_poll() and aio_dispatch() set it around
 * their dispatch phase only, never around a wait.
 */
extern QAIO_THREAD_LOCAL AioContext *aio_dispatching_ctx;

static inline AioContext *aio_begin_dispatch(AioContext *ctx)
{
    AioContext *outer = aio_dispatching_ctx;

    aio_dispatching_ctx = ctx;
    return outer;
}

static inline void aio_end_dispatch(AioContext *outer)
{
    aio_dispatching_ctx = outer;
}

/*
 * The early return of aio_notify(), in line for qemu_bh_schedule().  A
 * callback of @ctx running in its home thread (a BH rescheduling itself,
 * say) needs no wake-up: the home thread looks at BHs, fds and timers
 * again before it next blocks, and nobody else may be waiting on @ctx
 * while notify_me is zero.  This also holds in a signal handler that
 * interrupted such a callback.
 */
static inline bool aio_notify_unneeded(AioContext *ctx)
{
    return aio_dispatching_ctx == ctx && !qatomic_read(&ctx->notify_me);
}

/* aio-gsource.c */
extern GSourceFuncs aio_source_funcs;

/* aio-context.c */
void aio_ctx_finalize(GSource *source);

/* aio-coroutine.c: ctx->co_schedule_bh, from aio_context_new / finalize. */
void aio_co_schedule_init(AioContext *ctx);
void aio_co_schedule_cleanup(AioContext *ctx);

#endif /* QAIO_AIO_INT_H */
