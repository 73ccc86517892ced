/*
 * fdmon-io-uring.c: the io_uring fd monitor.
 *
 * Each context owns a ring (ctx->fdmon_io_uring) holding one poll request
 * per watched fd, whose user_data is the AioHandler.  update() only
 * records what changed, by flagging the handler and pushing it onto
 * ctx->submit_list; the next wait() turns that list into SQEs, submits
 * them and waits in the same io_uring_enter(), then turns the CQEs into
 * ready handlers.  aio_context_setup() picks this monitor when a ring can
 * be created; a context moves to poll(2) for good once GLib drives it
 * (aio_context_use_g_source), since GLib can poll the ring fd but not the
 * handlers' own GPollFDs through it.
 *
 * Kernel behaviour that shaped it:
 *  - A multishot poll (IORING_POLL_ADD_MULTI, Linux 5.13) stays armed but
 *    is edge-triggered: it posts a CQE when the fd's wait queue is woken,
 *    not while the fd stays ready, and the kernel refuses
 *    IORING_POLL_ADD_LEVEL with it.  Handlers are level-triggered, so a
 *    CQE only says "look": a zero-timeout poll(2) over the handlers that
 *    CQEs named (the "recheck" list) decides which are ready, and they stay
 *    on the list, asked again by every wait(), while they are.  Asking the
 *    fd also means that a CQE for data that is gone (consumed already, or
 *    reported earlier by a recheck) calls nobody, as with poll and epoll.
 *    The context's own notifier is exempt: its callback always empties the
 *    eventfd and tolerates a call for nothing.
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
 * walker.
 */
#include "qemu/osdep.h"
#include "aio-int.h"
#ifdef CONFIG_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#ifdef CONFIG_LINUX_IO_URING

/* Submission queue size; the completion queue is twice as big. */
#define FDMON_IO_URING_ENTRIES 128

/* CQEs taken from the ring at a time. */
#define FDMON_IO_URING_BATCH 64

/* What a poll request asks for and what a CQE reports, as GLib flags. */
static unsigned poll_mask_from_pfd(int pfd_events)
{
    return (pfd_events & G_IO_IN ? POLLIN : 0) |
           (pfd_events & G_IO_OUT ? POLLOUT : 0) |
           (pfd_events & G_IO_HUP ? POLLHUP : 0) |
           (pfd_events & G_IO_ERR ? POLLERR : 0);
}

static int pfd_events_from_poll(unsigned mask)
{
    return (mask & POLLIN ? G_IO_IN : 0) |
           (mask & POLLOUT ? G_IO_OUT : 0) |
           (mask & POLLHUP ? G_IO_HUP : 0) |
           (mask & POLLERR ? G_IO_ERR : 0);
}

/*
 * Flag @node and put it on ctx->submit_list unless it is there already.
 * Any thread: update() under list_lock, wait() for re-arming.  The
 * fetch_or decides who pushes; the push is a cmpxchg that publishes the
 * node, paired with the xchg in fdmon_io_uring_fill_sq().
 */
static void fdmon_io_uring_enqueue(AioContext *ctx, AioHandler *node,
                                   unsigned flags)
{
    unsigned old = qatomic_fetch_or(&node->flags,
                                    FDMON_IO_URING_PENDING | flags);

    if (!(old & FDMON_IO_URING_PENDING)) {
        QSLIST_INSERT_HEAD_ATOMIC(&ctx->submit_list, node, node_submitted);
    }
}

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
 * An SQE; if the ring is full and @may_submit, submit what is queued to
 * make room.  NULL if there is none.
 */
static struct io_uring_sqe *fdmon_io_uring_get_sqe(AioContext *ctx,
                                                   bool may_submit)
{
    struct io_uring *ring = &ctx->fdmon_io_uring;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

    if (!sqe && may_submit) {
        io_uring_submit(ring);
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

/* Queue a poll request for @node.  False if the ring had no room. */
static bool fdmon_io_uring_arm(AioContext *ctx, AioHandler *node,
                               bool may_submit)
{
    AioContextPriv *priv = aio_priv(ctx);
    struct io_uring_sqe *sqe = fdmon_io_uring_get_sqe(ctx, may_submit);
    unsigned mask = poll_mask_from_pfd(node->pfd.events);
    unsigned armed = FDMON_IO_URING_ARMED;

    if (!sqe) {
        return false;
    }
#ifdef IORING_POLL_ADD_MULTI
    if (priv->io_uring_multishot) {
        io_uring_prep_poll_multishot(sqe, node->pfd.fd, mask);
        armed |= FDMON_IO_URING_MULTISHOT;
    } else
#endif
    {
        io_uring_prep_poll_add(sqe, node->pfd.fd, mask);
    }
    io_uring_sqe_set_data(sqe, node);
    qatomic_fetch_or(&node->flags, armed);
    return true;
}

/*
 * Arm @node again after its request ended, while taking CQEs: straight
 * into the SQ, the submit list is for update().  Never submitted from
 * here: a multishot poll armed on a ready fd while the CQ ring overflows
 * ends at once, and re-arming it on the spot would go round for ever.  The
 * next wait() submits it.
 */
static void fdmon_io_uring_rearm(AioContext *ctx, AioHandler *node)
{
    if (!fdmon_io_uring_arm(ctx, node, false)) {
        fdmon_io_uring_enqueue(ctx, node, FDMON_IO_URING_ADD);
    }
}

/* Queue the cancellation of @node's request.  False if no room. */
static bool fdmon_io_uring_cancel(AioContext *ctx, AioHandler *node)
{
    struct io_uring_sqe *sqe = fdmon_io_uring_get_sqe(ctx, true);

    if (!sqe) {
        return false;
    }
    /* Its own CQE carries user_data 0 and is ignored. */
    io_uring_prep_poll_remove(sqe, (uintptr_t)node);
    io_uring_sqe_set_data(sqe, NULL);
    qatomic_fetch_or(&node->flags, FDMON_IO_URING_CANCELLING);
    return true;
}

/*
 * Turn ctx->submit_list into SQEs.  Removed nodes without a request go to
 * @release.  Returns false if some node had to wait for room in the ring
 * (it is back on the list).
 */
static bool fdmon_io_uring_fill_sq(AioContext *ctx, AioHandlerSList *release)
{
    AioHandlerSList list;
    AioHandler *node;
    bool complete = true;

    QSLIST_MOVE_ATOMIC(&list, &ctx->submit_list);
    while ((node = QSLIST_FIRST(&list))) {
        unsigned flags;

        /*
         * Unlink before clearing PENDING: from then on update() may push
         * the node again, which rewrites node_submitted.
         */
        QSLIST_REMOVE_HEAD(&list, node_submitted);
        flags = qatomic_fetch_and(&node->flags, ~(FDMON_IO_URING_PENDING |
                                                  FDMON_IO_URING_ADD));

        if ((flags & FDMON_IO_URING_REMOVE) &&
            !(flags & FDMON_IO_URING_DEQUEUED)) {
            /* The first time the removal comes off the list. */
            qatomic_fetch_or(&node->flags, FDMON_IO_URING_DEQUEUED);
            qatomic_dec(&aio_priv(ctx)->io_uring_removals);
        }
        if (flags & FDMON_IO_URING_REMOVE) {
            if (!(flags & FDMON_IO_URING_ARMED)) {
                /* Never armed, or its last CQE is in: nobody refers to it. */
                QSLIST_INSERT_HEAD(release, node, node_submitted);
            } else if (!(flags & FDMON_IO_URING_CANCELLING) &&
                       !fdmon_io_uring_cancel(ctx, node)) {
                fdmon_io_uring_enqueue(ctx, node, 0);
                complete = false;
            }
        } else if ((flags & FDMON_IO_URING_ADD) &&
                   !(flags & FDMON_IO_URING_ARMED) &&
                   !fdmon_io_uring_arm(ctx, node, true)) {
            fdmon_io_uring_enqueue(ctx, node, FDMON_IO_URING_ADD);
            complete = false;
        }
    }
    return complete;
}

/*
 * Hand @node to aio_poll() with @revents, merged with what it was already
 * handed (by another CQE, or by an enclosing aio_poll()).
 */
static void fdmon_io_uring_ready(AioHandlerList *ready_list, AioHandler *node,
                                 int revents)
{
    if (QLIST_IS_INSERTED(node, node_ready)) {
        revents |= node->pfd.revents;
    }
    aio_add_ready_handler(ready_list, node, revents);
}

/* Put @node on the recheck list, once. */
static void fdmon_io_uring_recheck_add(AioContext *ctx, AioHandler *node)
{
    AioContextPriv *priv = aio_priv(ctx);
    unsigned n = priv->io_uring_nrecheck;

    if (qatomic_fetch_or(&node->flags, FDMON_IO_URING_RECHECK) &
        FDMON_IO_URING_RECHECK) {
        return;
    }
    if (n == priv->io_uring_recheck_alloc) {
        priv->io_uring_recheck_alloc = MAX(16, n * 2);
        priv->io_uring_recheck = g_renew(AioHandler *, priv->io_uring_recheck,
                                         priv->io_uring_recheck_alloc);
        priv->io_uring_recheck_pfds = g_renew(GPollFD,
                                              priv->io_uring_recheck_pfds,
                                              priv->io_uring_recheck_alloc);
    }
    priv->io_uring_recheck[n] = node;
    priv->io_uring_nrecheck = n + 1;
}

/*
 * One zero-timeout poll(2) over the recheck list: the handlers that a CQE
 * reported in this wait, and those found ready by the previous wait.
 * Those that are ready now go to @ready_list and stay on the list for the
 * next wait, which makes multishot polls level-triggered; the others leave
 * it, and their request stays armed for the next edge.  Returns how many
 * are ready.
 */
static int fdmon_io_uring_recheck(AioContext *ctx, AioHandlerList *ready_list)
{
    AioContextPriv *priv = aio_priv(ctx);
    AioHandler **nodes = priv->io_uring_recheck;
    GPollFD *pfds = priv->io_uring_recheck_pfds;
    unsigned n = priv->io_uring_nrecheck;
    unsigned m = 0;
    unsigned kept = 0;
    unsigned i;

    if (!n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        AioHandler *node = nodes[i];

        qatomic_fetch_and(&node->flags, ~FDMON_IO_URING_RECHECK);
        if (qatomic_read(&node->flags) & FDMON_IO_URING_REMOVE) {
            continue;
        }
        nodes[m] = node;
        pfds[m] = (GPollFD){ .fd = node->pfd.fd, .events = node->pfd.events };
        m++;
    }
    priv->io_uring_nrecheck = 0;

    if (m == 0 || qemu_poll_ns(pfds, m, 0) <= 0) {
        return 0;
    }
    for (i = 0; i < m; i++) {
        int revents = pfds[i].revents & pfds[i].events;

        if (revents) {
            fdmon_io_uring_ready(ready_list, nodes[i], revents);
            nodes[kept++] = nodes[i];
        }
    }
    for (i = 0; i < kept; i++) {
        fdmon_io_uring_recheck_add(ctx, nodes[i]);
    }
    return kept;
}

/*
 * Drop removed nodes from the recheck list before any of them can be
 * released and freed.  Home thread, at the end of wait().
 */
static void fdmon_io_uring_recheck_prune(AioContext *ctx)
{
    AioContextPriv *priv = aio_priv(ctx);
    unsigned n = priv->io_uring_nrecheck;
    unsigned kept = 0;
    unsigned i;

    for (i = 0; i < n; i++) {
        AioHandler *node = priv->io_uring_recheck[i];

        if (qatomic_read(&node->flags) & FDMON_IO_URING_REMOVE) {
            qatomic_fetch_and(&node->flags, ~FDMON_IO_URING_RECHECK);
        } else {
            priv->io_uring_recheck[kept++] = node;
        }
    }
    priv->io_uring_nrecheck = kept;
}

/* One CQE.  Returns 1 if it made a handler ready, else 0. */
static int fdmon_io_uring_process_cqe(AioContext *ctx,
                                      AioHandlerList *ready_list,
                                      AioHandlerSList *release,
                                      struct io_uring_cqe *cqe)
{
    AioContextPriv *priv = aio_priv(ctx);
    AioHandler *node = io_uring_cqe_get_data(cqe);
    bool more = cqe->flags & IORING_CQE_F_MORE;
    unsigned flags;

    /* poll_remove CQEs, and liburing's timeouts on kernels before 5.11 */
    if (!node || cqe->user_data == LIBURING_UDATA_TIMEOUT) {
        return 0;
    }

    if (more) {
        flags = qatomic_read(&node->flags);
    } else {
        /* The request is over: the kernel will not mention @node again. */
        flags = qatomic_fetch_and(&node->flags,
                                  ~(FDMON_IO_URING_ARMED |
                                    FDMON_IO_URING_MULTISHOT |
                                    FDMON_IO_URING_CANCELLING));
    }

    if (flags & FDMON_IO_URING_REMOVE) {
        /*
         * Nothing but fdmon_io_uring_fill_sq() pushes a removed node, so
         * if it is not on the submit list now it stays off it.
         */
        if (!more && !(flags & FDMON_IO_URING_PENDING)) {
            QSLIST_INSERT_HEAD(release, node, node_submitted);
        }
        return 0;
    }

    if (cqe->res < 0) {
        switch (cqe->res) {
        case -EINVAL:
            if (!(flags & FDMON_IO_URING_MULTISHOT)) {
                return 0;       /* the fd cannot be polled: leave it */
            }
            /* A kernel before 5.13: one-shot polls from now on. */
            priv->io_uring_multishot = false;
            break;
        case -EBADF:
            return 0;           /* closed before it was armed: leave it */
        default:
            break;              /* -ECANCELED, -ENOMEM, ...: try again */
        }
        fdmon_io_uring_rearm(ctx, node);
        return 0;
    }

    if (!more) {
        /* One-shot, or a multishot that ended. */
        fdmon_io_uring_rearm(ctx, node);
    }
    if (!aio_handler_is_notifier(ctx, node)) {
        /* Only a hint: fdmon_io_uring_recheck() asks the fd. */
        fdmon_io_uring_recheck_add(ctx, node);
        return 0;
    }
    fdmon_io_uring_ready(ready_list, node, pfd_events_from_poll(cqe->res));
    return 1;
}

/* Take every CQE there is, flushing an overflow.  Returns ready count. */
static int fdmon_io_uring_reap(AioContext *ctx, AioHandlerList *ready_list,
                               AioHandlerSList *release)
{
    struct io_uring *ring = &ctx->fdmon_io_uring;
    struct io_uring_cqe *cqes[FDMON_IO_URING_BATCH];
    unsigned n;
    unsigned i;
    int nready = 0;

    while ((n = io_uring_peek_batch_cqe(ring, cqes, ARRAY_SIZE(cqes))) > 0) {
        for (i = 0; i < n; i++) {
            nready += fdmon_io_uring_process_cqe(ctx, ready_list, release,
                                                 cqes[i]);
        }
        io_uring_cq_advance(ring, n);
    }
    return nready;
}

/*
 * Tools that cannot see a thread block in io_uring_enter(), which liburing
 * calls as a raw system call, get a ppoll() on the ring fd instead
 * (readable once a CQE is posted):
 *  - ThreadSanitizer holds a signal back until the thread calls a function
 *    it intercepts: a signal caught just before a blocking io_uring_enter()
 *    would wait there until something else woke the ring.
 *  - valgrind runs one thread at a time and lets the others run only
 *    during system calls it knows may block; 3.19 does not count
 *    io_uring_enter() among them, so a thread woken by another would wait
 *    for ever.
 */
static bool fdmon_io_uring_block_in_ppoll(void)
{
#if defined(QEMU_SANITIZE_THREAD)
    return true;
#elif defined(CONFIG_VALGRIND_H)
    return RUNNING_ON_VALGRIND;
#else
    return false;
#endif
}

/*
 * Submit what is queued and wait up to @timeout ns (-1: no limit) for a
 * CQE.  Returns a negative errno from io_uring_enter(), e.g. -ETIME or
 * -EINTR, or a non-negative number.
 */
static int fdmon_io_uring_submit_and_wait(AioContext *ctx, int64_t timeout)
{
    struct io_uring *ring = &ctx->fdmon_io_uring;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;

    if (fdmon_io_uring_block_in_ppoll()) {
        GPollFD pfd = { .fd = ring->ring_fd, .events = G_IO_IN };
        int ret = io_uring_submit(ring);

        if (ret < 0 || io_uring_cq_ready(ring)) {
            return ret;
        }
        ret = qemu_poll_ns(&pfd, 1, timeout);
        return ret > 0 ? 0 : ret == 0 ? -ETIME : -errno;
    }
    if (timeout < 0) {
        return io_uring_submit_and_wait(ring, 1);
    }
    ts.tv_sec = timeout / NANOSECONDS_PER_SECOND;
    ts.tv_nsec = timeout % NANOSECONDS_PER_SECOND;
    return io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
}

/*
 * Leave io_uring for poll(2): the context is driven by GLib now.  Called
 * with list_lock held and no walkers, so nobody uses the ring or the
 * handlers' monitor state (need_wait() reads io_uring_removals, hence the
 * atomic store).  Handlers need not be moved:
 * fdmon-poll reads ctx->aio_handlers, and its epoll takeover adds them all
 * to epoll.
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

static int fdmon_io_uring_wait(AioContext *ctx, AioHandlerList *ready_list,
                               int64_t timeout)
{
    AioContextPriv *priv = aio_priv(ctx);
    struct io_uring *ring = &ctx->fdmon_io_uring;
    AioHandlerSList release = QSLIST_HEAD_INITIALIZER(release);
    int64_t wait_ns = timeout;      /* what the caller allows */
    int64_t deadline = 0;
    int nready = 0;
    AioHandler *node;

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
        int ret = 0;

        if (timeout) {
            ret = fdmon_io_uring_submit_and_wait(ctx, timeout);
        } else if (io_uring_sq_ready(ring)) {
            io_uring_submit(ring);
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
    int ret;

    ret = qaio_io_uring_queue_init(FDMON_IO_URING_ENTRIES,
                                   &ctx->fdmon_io_uring, 0);
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
