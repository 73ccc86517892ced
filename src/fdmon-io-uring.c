/*
 * fdmon-io-uring.c: the io_uring fd monitor, as the context sees it.
 *
 * Each context owns a ring (ctx->fdmon_io_uring) holding one poll request
 * per watched fd, whose user_data is the AioHandler.  update() only
 * records what changed, by flagging the handler and pushing it onto
 * ctx->submit_list; the next wait() turns that list into SQEs, submits
 * them and waits in the same io_uring_enter(), then turns the CQEs into
 * ready handlers (fdmon-io-uring-ring.c does the SQEs, CQEs and
 * rechecks; this file the FDMonOps, the ring's life and the wait loop).
 * Only QAIO_FDMON=io_uring picks this monitor (see aio-context.c for why
 * it is not the default); a context moves to poll(2) for good once GLib
 * drives it (aio_context_use_g_source), since GLib can poll the ring fd
 * but not the handlers' own GPollFDs through it.
 *
 * Kernel behaviour that shaped it:
 *  - By default the kernel turns a poll wake-up into a CQE with task work
 *    run on the way out of whatever system call the woken thread makes
 *    next: with the fds' peers in the same thread, every send() pays for
 *    a signal-path exit and a CQE on top of its own work (about 500 ns an
 *    event on bench/'s sockets scenarios).  QAIO_FDMON_IO_URING_DEFER=1
 *    makes the ring with IORING_SETUP_DEFER_TASKRUN (Linux 6.1): task
 *    work then waits for our own io_uring_enter(), which runs it in one
 *    batch (IORING_SQ_TASKRUN says when a wait that would not enter the
 *    kernel must).  Such a ring has one submitter
 *    (IORING_SETUP_SINGLE_ISSUER): it is created disabled and enabled by
 *    the first thread that waits on it.  A wait() in any other thread (a
 *    context handed to a new thread, or the owner gone) cannot enter it,
 *    so the context moves to poll(2) as it does for GLib.  Where the
 *    kernel refuses those flags, and under ThreadSanitizer and valgrind
 *    (see fdmon_io_uring_block_in_ppoll()), the ring is immediate.
 *    Deferred is opt-in for now: a handler removed from another thread
 *    just as its fd gets ready takes ~20x longer to settle with it
 *    (/fdmon-io-uring/mt/remove-as-ready: ~25 s instead of ~1.2 s,
 *    io_uring_enter(GETEVENTS) returning at once many times a round);
 *    to be understood before it can be the io_uring monitor's default.
 *  - A multishot poll (IORING_POLL_ADD_MULTI, Linux 5.13) stays armed but
 *    is edge-triggered: it posts a CQE when the fd's wait queue is woken,
 *    not while the fd stays ready, and the kernel refuses
 *    IORING_POLL_ADD_LEVEL with it.  Handlers are level-triggered, so a
 *    CQE only says "look": a zero-timeout poll(2) over the handlers that
 *    CQEs named (the "recheck" list) decides which are ready, and they stay
 *    on the list, asked again by every wait(), while they are.  Asking the
 *    fd also means that a CQE for data that is gone calls nobody, as with
 *    poll and epoll: the CQE carries the mask of the wake-up (pipes and
 *    sockets pass one), not a fresh poll, even from a deferred ring.
 *    The context's own notifier is exempt: its callback always empties
 *    the eventfd and tolerates a call for nothing.
 *  - A one-shot poll is re-armed after every CQE.  It is used where the
 *    kernel refuses multishot (-EINVAL) and where
 *    QAIO_FDMON_IO_URING_ONESHOT=1 asks for it (tests).
 *  - A request may end without IORING_CQE_F_MORE for reasons of its own
 *    (CQ overflow; -ECANCELED when the thread that submitted it exits): a
 *    live handler is then re-armed.
 *  - The kernel never dereferences user_data, but returns it in every CQE
 *    up to the request's last, so a removed handler may be freed only
 *    after that CQE.  update() therefore keeps removed handlers
 *    (aio_node_held_by_fdmon()): aio-posix.c marks them deleted and leaves
 *    the freeing to us; wait() cancels the request with a poll_remove and
 *    passes the handler to aio_release_removed_handler() once the last
 *    CQE is in.
 *  - A poll request holds a reference to the file: an fd closed right
 *    after its handler was removed stays open in the kernel until a wait()
 *    has submitted the cancellation.  need_wait() makes the next
 *    aio_poll() do that wait, even one that would skip the kernel.
 *  - A blocking wait can be woken by CQEs that make nothing ready (the
 *    cancellations, a re-arm); it then waits again for the rest of its
 *    timeout, so that aio_poll(ctx, true) is not woken for nothing.
 *
 * Threading: update() runs in any thread with list_lock held and only
 * pushes onto ctx->submit_list, lock-free, because wait() takes the list
 * without the lock.  wait() runs in the home thread as a walker and is the
 * only user of the ring; it takes list_lock briefly to release handlers.
 * Whoever holds list_lock while nobody walks may tear the ring down
 * (fdmon_io_uring_leave()), so nothing outside wait() reads ring memory:
 * need_wait() in particular runs before aio_poll() counts itself as a
 * walker.  io_uring_owner is only used by waiting threads, which the
 * caller already serializes (one aio_poll() at a time per context).
 */
#include "qemu/osdep.h"
#include "fdmon-io-uring.h"
#include <sys/syscall.h>

#ifdef CONFIG_LINUX_IO_URING

/* Submission queue size; the completion queue is twice as big. */
#define FDMON_IO_URING_ENTRIES 128

static void fdmon_io_uring_update(AioContext *ctx, AioHandler *old_node,
                                  AioHandler *new_node)
{
    if (new_node && new_node->pfd.events) {
        fdmon_io_uring_enqueue(ctx, new_node, FDMON_IO_URING_ADD);
    }
    if (old_node) {
        /*
         * Every removed node is kept, armed or not: aio_remove_fd_handler()
         * sees FDMON_IO_URING_REMOVE right after this and does not free it.
         * Counted first, so that need_wait() sees it while it is queued.
         */
        qatomic_inc(&aio_priv(ctx)->io_uring_removals);
        fdmon_io_uring_enqueue(ctx, old_node, FDMON_IO_URING_REMOVE);
    }
}

/*
 * Leave io_uring for poll(2): the context is driven by GLib now, or waited
 * on by a thread that may not enter its deferred ring.  Called with
 * list_lock held and no walkers, so nobody uses the ring or the handlers'
 * monitor state (need_wait() reads io_uring_removals, hence the atomic
 * store).  Handlers need not be moved: fdmon-poll reads ctx->aio_handlers,
 * and its epoll takeover adds them all to epoll.
 */
static void fdmon_io_uring_leave(AioContext *ctx)
{
    AioContextPriv *priv = aio_priv(ctx);
    AioHandler *node;

    qatomic_set(&priv->io_uring_leave, false);
    if (aio_fdmon(ctx) != &fdmon_io_uring_ops) {
        return;
    }

    /* Without the ring the kernel holds no request: no CQE will follow. */
    io_uring_queue_exit(&ctx->fdmon_io_uring);
    priv->io_uring_ok = false;

    /*
     * Every node on the submit list is also on aio_handlers (a node leaves
     * aio_handlers only when freed, after its release), so one walk resets
     * them all and releases the removed nodes that the monitor still kept.
     */
    QSLIST_INIT(&ctx->submit_list);
    qatomic_set(&priv->io_uring_removals, 0);       /* need_wait() */
    AIO_HANDLERS_FOREACH(node, &ctx->aio_handlers) {
        unsigned flags = qatomic_xchg(&node->flags, 0);

        if ((flags & FDMON_IO_URING_REMOVE) &&
            !QLIST_IS_INSERTED(node, node_deleted)) {
            aio_release_removed_handler(ctx, node);
        }
    }
    priv->io_uring_nrecheck = 0;

    /* From here the default without io_uring: poll, epoll at 64 fds. */
    priv->fdmon_forced = false;
    if (ctx->epollfd < 0 && !priv->epoll_broken) {
        fdmon_epoll_setup(ctx);
    }
    qatomic_set(&ctx->fdmon_ops, &fdmon_poll_ops);
}

/* Any address unique to the thread: who enabled a deferred ring. */
static QAIO_THREAD_LOCAL char fdmon_io_uring_thread_id;

/* io_uring_owner of a ring that nobody may enter any more. */
#define FDMON_IO_URING_NO_OWNER ((const void *)&fdmon_io_uring_ops)

/*
 * May this thread enter the ring?  A deferred ring is enabled by, and then
 * belongs to, the first thread that waits on it.
 */
static bool fdmon_io_uring_claim(AioContext *ctx)
{
    AioContextPriv *priv = aio_priv(ctx);

    if (!priv->io_uring_deferred ||
        priv->io_uring_owner == &fdmon_io_uring_thread_id) {
        return true;
    }
    if (priv->io_uring_owner) {
        return false;
    }
    if (syscall(__NR_io_uring_register, ctx->fdmon_io_uring.ring_fd,
                IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0) {
        priv->io_uring_owner = FDMON_IO_URING_NO_OWNER;
        return false;
    }
    priv->io_uring_owner = &fdmon_io_uring_thread_id;
    return true;
}

/*
 * wait() in a thread that may not enter the ring: leave io_uring now if
 * we walk alone, else have poll(2) look at the handlers this once; the
 * next wait() (or the GSource's prepare()) leaves.
 */
static int fdmon_io_uring_wait_elsewhere(AioContext *ctx,
                                         AioHandlerList *ready_list,
                                         int64_t timeout)
{
    qatomic_set(&aio_priv(ctx)->io_uring_leave, true);
    if (qemu_lockcnt_dec_if_lock(&ctx->list_lock)) {
        fdmon_io_uring_leave(ctx);
        qemu_lockcnt_inc_and_unlock(&ctx->list_lock);
        return aio_fdmon(ctx)->wait(ctx, ready_list, timeout);
    }
    /* No epoll fd exists while on io_uring: this stays poll(2). */
    return fdmon_poll_ops.wait(ctx, ready_list, timeout);
}

static int fdmon_io_uring_wait(AioContext *ctx, AioHandlerList *ready_list,
                               int64_t timeout)
{
    AioContextPriv *priv = aio_priv(ctx);
    struct io_uring *ring = &ctx->fdmon_io_uring;
    AioHandlerSList release = QSLIST_HEAD_INITIALIZER(release);
    int64_t wait_ns = timeout;      /* what the caller allows */
    int64_t deadline = 0;
    int nready = 0;
    bool lost = false;
    AioHandler *node;

    if (!fdmon_io_uring_claim(ctx)) {
        return fdmon_io_uring_wait_elsewhere(ctx, ready_list, timeout);
    }
    /* aio_context_use_g_source() asked while we walked: leave now. */
    if (qatomic_read(&priv->io_uring_leave) &&
        qemu_lockcnt_dec_if_lock(&ctx->list_lock)) {
        fdmon_io_uring_leave(ctx);
        qemu_lockcnt_inc_and_unlock(&ctx->list_lock);
        return aio_fdmon(ctx)->wait(ctx, ready_list, timeout);
    }

    if (!fdmon_io_uring_fill_sq(ctx, &release)) {
        wait_ns = timeout = 0;  /* the rest must be armed soon */
    }
    /* Handlers ready last time, or CQEs waiting: look before sleeping. */
    if (priv->io_uring_nrecheck || io_uring_cq_ready(ring) ||
        io_uring_cq_has_overflow(ring)) {
        timeout = 0;
    }
    if (wait_ns > 0) {
        deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + wait_ns;
    }

    for (;;) {
        int ret;

        if (timeout) {
            ret = fdmon_io_uring_submit_and_wait(ctx, timeout);
        } else {
            ret = fdmon_io_uring_submit(ctx);
        }
        if (ret == -EEXIST) {
            /* Another thread owns the ring after all (a reused address). */
            priv->io_uring_owner = FDMON_IO_URING_NO_OWNER;
            lost = true;
            break;
        }
        nready += fdmon_io_uring_reap(ctx, ready_list, &release);
        nready += fdmon_io_uring_recheck(ctx, ready_list);

        /*
         * Nothing ready: only internal CQEs (a cancellation, a re-arm) or
         * edges whose data is gone.  Sleep for what is left of the
         * timeout.  Any error (-ETIME, -EINTR, -EBUSY while the CQ ring
         * overflows) ends the wait.
         */
        if (nready || !wait_ns || ret < 0) {
            break;
        }
        if (wait_ns > 0) {
            timeout = deadline - qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
            if (timeout <= 0) {
                break;
            }
        } else {
            timeout = -1;
        }
        if (!fdmon_io_uring_fill_sq(ctx, &release)) {
            break;
        }
    }

    fdmon_io_uring_recheck_prune(ctx);
    if (!QSLIST_EMPTY(&release)) {
        /* We count as a walker, so nothing is freed before we return. */
        qemu_lockcnt_lock(&ctx->list_lock);
        while ((node = QSLIST_FIRST(&release))) {
            QSLIST_REMOVE_HEAD(&release, node_submitted);
            aio_release_removed_handler(ctx, node);
        }
        qemu_lockcnt_unlock(&ctx->list_lock);
    }
    if (lost) {
        return nready + fdmon_io_uring_wait_elsewhere(ctx, ready_list,
                                                      nready ? 0 : timeout);
    }
    return nready;
}

/*
 * A removed handler's request is cancelled by the next aio_poll(), even
 * one that would skip the kernel: only that really closes an fd that the
 * caller closed after removing its handler.  Otherwise as for poll and
 * epoll (aio_poll_disabled()), since the CQ ring cannot be read here (see
 * the top of the file).  New handlers, re-arms and the recheck list wait
 * for the next wait(), which is when epoll would look at them too: a new
 * fd or an fd event must not cost a busy poll, nor make a poll that would
 * skip the kernel look at the fds.
 */
static bool fdmon_io_uring_need_wait(AioContext *ctx)
{
    return qatomic_read(&aio_priv(ctx)->io_uring_removals) ||
           aio_poll_disabled(ctx);
}

/*
 * Create the ring and make it the context's monitor.  Called by
 * aio_context_setup() before any handler exists.  Returns 0 or -errno.
 */
int fdmon_io_uring_setup(AioContext *ctx)
{
    AioContextPriv *priv = aio_priv(ctx);
    int ret = -EINVAL;

#ifdef IORING_SETUP_DEFER_TASKRUN
    if (!fdmon_io_uring_block_in_ppoll() &&
        g_strcmp0(g_getenv("QAIO_FDMON_IO_URING_DEFER"), "1") == 0) {
        /* Disabled until its owner enables it (fdmon_io_uring_claim()). */
        ret = qaio_io_uring_queue_init(FDMON_IO_URING_ENTRIES,
                                       &ctx->fdmon_io_uring,
                                       IORING_SETUP_SINGLE_ISSUER |
                                       IORING_SETUP_DEFER_TASKRUN |
                                       IORING_SETUP_TASKRUN_FLAG |
                                       IORING_SETUP_R_DISABLED);
    }
#endif
    priv->io_uring_deferred = ret == 0;
    priv->io_uring_owner = NULL;
    if (ret == -EINVAL) {
        /* Before Linux 6.1, or not wanted: an immediate ring. */
        ret = qaio_io_uring_queue_init(FDMON_IO_URING_ENTRIES,
                                       &ctx->fdmon_io_uring, 0);
    }
    if (ret < 0) {
        return ret;
    }
    priv->io_uring_ok = true;
#ifdef IORING_POLL_ADD_MULTI
    {
        const char *oneshot = g_getenv("QAIO_FDMON_IO_URING_ONESHOT");

        priv->io_uring_multishot = !oneshot || !*oneshot ||
                                   !strcmp(oneshot, "0");
    }
#endif
    QSLIST_INIT(&ctx->submit_list);
    qatomic_set(&ctx->fdmon_ops, &fdmon_io_uring_ops);
    return 0;
}

/* At finalization, after every handler was freed. */
void fdmon_io_uring_destroy(AioContext *ctx)
{
    AioContextPriv *priv = aio_priv(ctx);

    if (priv->io_uring_ok) {
        io_uring_queue_exit(&ctx->fdmon_io_uring);
        priv->io_uring_ok = false;
    }
    QSLIST_INIT(&ctx->submit_list);
    g_free(priv->io_uring_recheck);
    g_free(priv->io_uring_recheck_pfds);
    priv->io_uring_recheck = NULL;
    priv->io_uring_recheck_pfds = NULL;
    priv->io_uring_recheck_alloc = 0;
    priv->io_uring_nrecheck = 0;
}

/*
 * From aio_context_use_g_source(), with list_lock held.  Leaves io_uring
 * at once if nobody walks the handlers; otherwise whoever walks alone next
 * does it (this monitor's wait() or the GSource's prepare()).  Returns
 * true if the home thread should be woken for that.
 */
bool fdmon_io_uring_use_g_source(AioContext *ctx)
{
    if (aio_fdmon(ctx) != &fdmon_io_uring_ops) {
        return false;
    }
    if (qemu_lockcnt_count(&ctx->list_lock) == 0) {
        fdmon_io_uring_leave(ctx);
        return false;
    }
    qatomic_set(&aio_priv(ctx)->io_uring_leave, true);
    return true;
}

/* From the GSource's prepare(), in the home thread, not as a walker. */
void fdmon_io_uring_gsource_prepare(AioContext *ctx)
{
    if (!qatomic_read(&aio_priv(ctx)->io_uring_leave)) {
        return;
    }
    qemu_lockcnt_lock(&ctx->list_lock);
    if (qemu_lockcnt_count(&ctx->list_lock) == 0) {
        fdmon_io_uring_leave(ctx);
    }
    qemu_lockcnt_unlock(&ctx->list_lock);
}

const FDMonOps fdmon_io_uring_ops = {
    .update = fdmon_io_uring_update,
    .wait = fdmon_io_uring_wait,
    .need_wait = fdmon_io_uring_need_wait,
};

#endif /* CONFIG_LINUX_IO_URING */
