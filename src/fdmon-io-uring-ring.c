/*
 * fdmon-io-uring-ring.c: the traffic through the io_uring fd monitor's
 * ring (see fdmon-io-uring.c for the monitor and the kernel behaviour
 * that shaped both files).
 *
 * Owns the SQEs (poll requests armed from ctx->submit_list, re-armed after
 * their last CQE, cancelled for removed handlers), the CQEs (turned into
 * ready handlers, or into handlers to release) and the recheck list: the
 * handlers a zero-timeout poll(2) must ask again because a multishot poll
 * is edge-triggered and fd handlers are level-triggered.
 *
 * Threading: fdmon_io_uring_enqueue() may run in any thread (update()
 * under list_lock); everything else runs inside wait(), in the one thread
 * that may enter the ring, as a list_lock walker.  The recheck list is
 * that thread's alone.
 */
#include "qemu/osdep.h"
#include "fdmon-io-uring.h"
#ifdef CONFIG_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#ifdef CONFIG_LINUX_IO_URING

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
void fdmon_io_uring_enqueue(AioContext *ctx, AioHandler *node, unsigned flags)
{
    unsigned old = qatomic_fetch_or(&node->flags,
                                    FDMON_IO_URING_PENDING | flags);

    if (!(old & FDMON_IO_URING_PENDING)) {
        QSLIST_INSERT_HEAD_ATOMIC(&ctx->submit_list, node, node_submitted);
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

bool fdmon_io_uring_fill_sq(AioContext *ctx, AioHandlerSList *release)
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
int fdmon_io_uring_recheck(AioContext *ctx, AioHandlerList *ready_list)
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

void fdmon_io_uring_recheck_prune(AioContext *ctx)
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
    if (aio_handler_is_notifier(ctx, node)) {
        /* Its callback empties the eventfd whatever it finds. */
        fdmon_io_uring_ready(ready_list, node, pfd_events_from_poll(cqe->res));
        return 1;
    }
    /*
     * Only a hint, even from a deferred ring: the kernel reports the mask
     * of the wake-up, not a fresh poll, so the data may be gone by now.
     * fdmon_io_uring_recheck() asks the fd.
     */
    fdmon_io_uring_recheck_add(ctx, node);
    return 0;
}

int fdmon_io_uring_reap(AioContext *ctx, AioHandlerList *ready_list,
                        AioHandlerSList *release)
{
    struct io_uring *ring = &ctx->fdmon_io_uring;
    struct io_uring_cqe *cqes[FDMON_IO_URING_BATCH];
    unsigned n;
    unsigned i;
    int nready = 0;

    /* An empty CQ ring flushes an overflow (and task work) here. */
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
bool fdmon_io_uring_block_in_ppoll(void)
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
 * A deferred ring turns poll wake-ups into CQEs only when asked to
 * (IORING_SQ_TASKRUN says there is something to turn), so a wait that
 * does not block still enters the kernel then.
 */
int fdmon_io_uring_submit(AioContext *ctx)
{
    struct io_uring *ring = &ctx->fdmon_io_uring;
    int ret = 0;

    if (aio_priv(ctx)->io_uring_deferred) {
        if (io_uring_sq_ready(ring) ||
            (IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_TASKRUN)) {
            ret = io_uring_submit_and_get_events(ring);
        }
    } else if (io_uring_sq_ready(ring)) {
        ret = io_uring_submit(ring);
    }
    return MIN(ret, 0);
}

int fdmon_io_uring_submit_and_wait(AioContext *ctx, int64_t timeout)
{
    struct io_uring *ring = &ctx->fdmon_io_uring;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts;

    if (fdmon_io_uring_block_in_ppoll()) {
        /* Never a deferred ring (fdmon_io_uring_setup()). */
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

#endif /* CONFIG_LINUX_IO_URING */
