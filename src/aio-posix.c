/*
 * aio-posix.c: fd handlers and aio_poll().
 *
 * Owns the handler list (ctx->aio_handlers, ctx->deleted_aio_handlers),
 * aio_set_fd_handler() and friends, the dispatch of ready handlers, and
 * aio_poll() itself.  The fd monitors (fdmon-*.c) do the waiting, busy
 * polling lives in aio-adaptive-poll.c and bottom halves in aio-bh.c.
 *
 * Threading: aio_set_fd_handler() and aio_set_event_notifier*() may be
 * called from any thread; they take ctx->list_lock.  aio_poll() and the
 * dispatch functions run in the home thread as list walkers (list_lock
 * counted).  A node removed while walkers exist is marked deleted and kept
 * on ctx->deleted_aio_handlers until aio_free_deleted_handlers() finds the
 * home thread to be the only walker.  A node the fd monitor keeps after
 * removal (io_uring) joins that list only when the monitor releases it.
 */
#include "qemu/osdep.h"
#include "aio-int.h"
#include "qemu/error-report.h"

/*
 * With every handler pollable, a non-blocking aio_poll() skips the fd
 * monitor's wait entirely (no system call).  Under a storm of BHs that
 * would starve fds whose readiness only the kernel can see; look at them
 * with a zero-timeout wait at least this often.
 */
#define AIO_MAX_SKIPPED_WAITS 256

/*
 * Once the context is used as a GSource (aio_context_use_g_source), every
 * live handler's GPollFD is registered with it so that GLib polls it.
 * Until then nothing is: GLib keeps its poll records in lists, and
 * removing one costs O(fds).  A destroyed source (g_source_destroy(), or
 * finalization) must not be touched: GLib drops its records itself.
 * Called with list_lock held.
 */
static void aio_source_add_poll(AioContext *ctx, AioHandler *node)
{
    if (aio_priv(ctx)->g_source_polls &&
        !g_source_is_destroyed(&ctx->source)) {
        g_source_add_poll(&ctx->source, &node->pfd);
    }
}

static void aio_source_remove_poll(AioContext *ctx, AioHandler *node)
{
    if (aio_priv(ctx)->g_source_polls &&
        !g_source_is_destroyed(&ctx->source)) {
        g_source_remove_poll(&ctx->source, &node->pfd);
    }
}

/*
 * GLib cannot poll the handlers through an io_uring, so the context also
 * leaves that monitor for poll(2) (fdmon_io_uring_use_g_source()); if it
 * cannot do so at once, the home thread is woken to do it.
 */
void aio_context_use_g_source(AioContext *ctx)
{
    AioContextPriv *priv = aio_priv(ctx);
    AioHandler *node;
    bool wake;

    qemu_lockcnt_lock(&ctx->list_lock);
    if (!priv->g_source_polls) {
        priv->g_source_polls = true;
        AIO_HANDLERS_FOREACH(node, &ctx->aio_handlers) {
            if (!aio_node_is_deleted(node)) {
                aio_source_add_poll(ctx, node);
            }
        }
    }
    wake = fdmon_io_uring_use_g_source(ctx);
    qemu_lockcnt_unlock(&ctx->list_lock);
    if (wake) {
        aio_notify(ctx);
    }
}

/* The live handler of @fd, or NULL.  Called with list_lock held. */
static AioHandler *aio_find_handler(AioContext *ctx, int fd)
{
    return g_hash_table_lookup(aio_priv(ctx)->fd_handlers,
                               GINT_TO_POINTER(fd));
}

/* Queue deleted @node for aio_free_deleted_handlers().  Under list_lock. */
static void aio_deleted_list_push(AioContext *ctx, AioHandler *node)
{
    AioHandler *first = ctx->deleted_aio_handlers.lh_first;

    /* The home thread peeks at the head without the lock. */
    node->node_deleted.le_next = first;
    node->node_deleted.le_prev = &ctx->deleted_aio_handlers.lh_first;
    if (first) {
        first->node_deleted.le_prev = &node->node_deleted.le_next;
    }
    qatomic_set(&ctx->deleted_aio_handlers.lh_first, node);
}

/*
 * The fd monitor no longer needs removed @node, which it kept (see
 * aio_node_held_by_fdmon()): free it with the other deleted handlers.
 * Called with list_lock held.
 */
void aio_release_removed_handler(AioContext *ctx, AioHandler *node)
{
    assert(aio_node_is_deleted(node));
    aio_deleted_list_push(ctx, node);
}

/*
 * Take @node off the context.  Returns true if the caller may free it now,
 * false if walkers exist and aio_free_deleted_handlers() will, or if the
 * fd monitor kept the node.  Called with list_lock held, after the fd
 * monitor's update().
 */
static bool aio_remove_fd_handler(AioContext *ctx, AioHandler *node)
{
    aio_source_remove_poll(ctx, node);

    if (aio_node_held_by_fdmon(node)) {
        /*
         * The kernel may still return the node in a completion (io_uring
         * user_data).  Walkers skip it from now on, but it stays on
         * aio_handlers until the monitor calls
         * aio_release_removed_handler(), even if nobody walks right now.
         */
        qatomic_set(&node->deleted, true);
        return false;
    }

    if (qemu_lockcnt_count(&ctx->list_lock)) {
        qatomic_set(&node->deleted, true);
        aio_deleted_list_push(ctx, node);
        return false;
    }

    /* Nobody walks the lists: unlink at once. */
    QLIST_REMOVE(node, node);
    QLIST_SAFE_REMOVE(node, node_poll);
    return true;
}

void aio_set_fd_handler(AioContext *ctx, int fd,
                        IOHandler *io_read, IOHandler *io_write,
                        AioPollFn *io_poll, IOHandler *io_poll_ready,
                        void *opaque)
{
    AioHandler *node;
    AioHandler *new_node = NULL;
    bool free_node = false;
    int poll_disable_delta = 0;
    bool removing = !io_read && !io_write && !io_poll;

    if (fd < 0) {
        if (!removing) {
            warn_report("aio_set_fd_handler: ignoring invalid fd %d", fd);
        }
        return;
    }
    if (!io_poll) {
        io_poll_ready = NULL;   /* only ever called after io_poll */
    }

    qemu_lockcnt_lock(&ctx->list_lock);

    node = aio_find_handler(ctx, fd);
    if (removing && !node) {
        qemu_lockcnt_unlock(&ctx->list_lock);
        return;
    }

    if (!removing) {
        new_node = g_new0(AioHandler, 1);
        new_node->pfd.fd = fd;
        new_node->pfd.events = (io_read ? G_IO_IN | G_IO_HUP | G_IO_ERR : 0) |
                               (io_write ? G_IO_OUT | G_IO_ERR : 0);
        new_node->io_read = io_read;
        new_node->io_write = io_write;
        new_node->io_poll = io_poll;
        new_node->io_poll_ready = io_poll_ready;
        new_node->opaque = opaque;

        aio_source_add_poll(ctx, new_node);
        aio_handlers_insert_head(&ctx->aio_handlers, new_node);
        if (!io_poll) {
            poll_disable_delta++;
        }
    }

    /* First: update() decides whether the monitor keeps a removed node. */
    aio_fdmon(ctx)->update(ctx, node, new_node);

    if (node) {
        if (!node->io_poll) {
            poll_disable_delta--;
        }
        free_node = aio_remove_fd_handler(ctx, node);
    }
    if (new_node) {
        g_hash_table_insert(aio_priv(ctx)->fd_handlers, GINT_TO_POINTER(fd),
                            new_node);
    } else {
        g_hash_table_remove(aio_priv(ctx)->fd_handlers, GINT_TO_POINTER(fd));
    }

    if (free_node) {
        g_free(node);
    }

    if (poll_disable_delta) {
        qatomic_set(&ctx->poll_disable_cnt,
                    qatomic_read(&ctx->poll_disable_cnt) + poll_disable_delta);
    }
    qemu_lockcnt_unlock(&ctx->list_lock);

    /* Make a sleeping aio_poll() pick up the new set of fds. */
    aio_notify(ctx);
}

void aio_set_event_notifier(AioContext *ctx, EventNotifier *notifier,
                            EventNotifierHandler *io_read,
                            AioPollFn *io_poll,
                            EventNotifierHandler *io_poll_ready)
{
    aio_set_fd_handler(ctx, event_notifier_get_fd(notifier),
                       (IOHandler *)io_read, NULL, io_poll,
                       (IOHandler *)io_poll_ready, notifier);
}

void aio_set_event_notifier_poll(AioContext *ctx, EventNotifier *notifier,
                                 EventNotifierHandler *io_poll_begin,
                                 EventNotifierHandler *io_poll_end)
{
    AioHandler *node;

    qemu_lockcnt_lock(&ctx->list_lock);
    node = aio_find_handler(ctx, event_notifier_get_fd(notifier));
    if (node) {
        /* The home thread may be polling right now: atomic stores. */
        qatomic_set(&node->io_poll_begin, (IOHandler *)io_poll_begin);
        qatomic_set(&node->io_poll_end, (IOHandler *)io_poll_end);
    }
    qemu_lockcnt_unlock(&ctx->list_lock);
}

bool aio_poll_disabled(AioContext *ctx)
{
    return qatomic_read(&ctx->poll_disable_cnt);
}

/* Run the callbacks @node is ready for.  Returns true on progress. */
bool aio_dispatch_handler(AioContext *ctx, AioHandler *node)
{
    int revents;
    bool poll_ready;
    bool progress = false;

    if (aio_node_is_deleted(node)) {
        node->pfd.revents = 0;
        node->poll_ready = false;
        return false;
    }
    revents = node->pfd.revents & node->pfd.events;
    poll_ready = node->poll_ready;
    node->pfd.revents = 0;
    node->poll_ready = false;

    aio_poll_handler_became_active(ctx, node);

    if (poll_ready && revents == 0) {
        if (!node->io_poll_ready) {
            return false;
        }
        node->io_poll_ready(node->opaque);
        if (aio_handler_is_notifier(ctx, node)) {
            return false;
        }
        aio_metric_add(ctx, fd_dispatches, 1);
        return true;
    }

    if ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) && node->io_read) {
        node->io_read(node->opaque);
        progress = !aio_handler_is_notifier(ctx, node);
        if (progress) {
            aio_metric_add(ctx, fd_dispatches, 1);
        }
    }
    /* io_read may have removed the handler. */
    if ((revents & (G_IO_OUT | G_IO_ERR)) && node->io_write &&
        !aio_node_is_deleted(node)) {
        aio_metric_add(ctx, fd_dispatches, 1);
        node->io_write(node->opaque);
        progress = true;
    }
    return progress;
}

static bool aio_dispatch_ready_handlers(AioContext *ctx,
                                        AioHandlerList *ready_list)
{
    bool progress = false;
    AioHandler *node;

    /* A nested aio_poll() may take nodes off this list: always re-read. */
    while ((node = QLIST_FIRST(ready_list))) {
        QLIST_REMOVE(node, node_ready);
        progress |= aio_dispatch_handler(ctx, node);
    }
    return progress;
}

/* Called as a walker; frees deleted nodes if we are the only walker. */
void aio_free_deleted_handlers(AioContext *ctx)
{
    AioHandler *node;

    if (!qatomic_read(&ctx->deleted_aio_handlers.lh_first)) {
        return;
    }
    if (!qemu_lockcnt_dec_if_lock(&ctx->list_lock)) {
        return;     /* someone else walks too; try again later */
    }

    while ((node = QLIST_FIRST(&ctx->deleted_aio_handlers))) {
        QLIST_REMOVE(node, node);
        QLIST_REMOVE(node, node_deleted);
        QLIST_SAFE_REMOVE(node, node_poll);
        g_free(node);
    }

    qemu_lockcnt_inc_and_unlock(&ctx->list_lock);
}

/* At finalization: free every node, live or deleted, without callbacks. */
void aio_free_all_handlers(AioContext *ctx)
{
    AioHandler *node;

    assert(qemu_lockcnt_count(&ctx->list_lock) == 0);
    g_hash_table_remove_all(aio_priv(ctx)->fd_handlers);
    while ((node = QLIST_FIRST(&ctx->aio_handlers))) {
        QLIST_REMOVE(node, node);
        QLIST_SAFE_REMOVE(node, node_poll);
        if (aio_node_is_deleted(node)) {
            /* Not on the list if the fd monitor still held it. */
            QLIST_SAFE_REMOVE(node, node_deleted);
        } else {
            aio_source_remove_poll(ctx, node);
        }
        g_free(node);
    }
}

int64_t aio_compute_timeout(AioContext *ctx)
{
    int64_t timeout = aio_bh_timeout(ctx);
    int64_t deadline;

    if (timeout == 0) {
        return 0;
    }
    deadline = timerlistgroup_deadline_ns(&ctx->tlg);
    if (deadline == 0) {
        return 0;
    }
    return qemu_soonest_timeout(timeout, deadline);
}

/*
 * Is the context's own notifier its only fd handler?  Then the kernel has
 * nothing to report that "notified" has not already said (aio_notify()
 * sets it before it writes the eventfd).
 */
static bool aio_only_own_notifier(AioContext *ctx)
{
    AioHandler *node;
    bool only = true;

    qemu_lockcnt_inc(&ctx->list_lock);
    AIO_HANDLERS_FOREACH(node, &ctx->aio_handlers) {
        if (!aio_node_is_deleted(node) && !aio_handler_is_notifier(ctx, node)) {
            only = false;
            break;
        }
    }
    qemu_lockcnt_dec(&ctx->list_lock);
    return only;
}

/*
 * Decide whether this aio_poll() may skip the fd monitor's wait: nothing
 * to wait for (timeout 0) and every handler pollable from userspace.
 * Skipping forever would starve fds only the kernel can see, so every
 * AIO_MAX_SKIPPED_WAITS-th time the wait happens anyway, with timeout 0,
 * unless there are no such fds at all.
 */
static bool aio_may_skip_wait(AioContext *ctx, int64_t timeout)
{
    AioContextPriv *priv = aio_priv(ctx);

    if (timeout != 0 || aio_fdmon(ctx)->need_wait(ctx)) {
        priv->skipped_waits = 0;
        return false;
    }
    if (++priv->skipped_waits >= AIO_MAX_SKIPPED_WAITS) {
        priv->skipped_waits = 0;
        return aio_only_own_notifier(ctx);
    }
    return true;
}

/*
 * The part of aio_poll() after the wait: BHs, then the handlers the wait
 * or busy polling found ready, then timers.  Called as a list walker when
 * @ready_list is not NULL.
 */
static bool aio_poll_dispatch(AioContext *ctx, AioHandlerList *ready_list)
{
    AioContext *outer = aio_begin_dispatch(ctx);
    bool progress;

    aio_metric_add(ctx, iterations, 1);
    progress = aio_bh_poll(ctx);
    if (ready_list) {
        progress |= aio_dispatch_ready_handlers(ctx, ready_list);
        aio_free_deleted_handlers(ctx);
        qemu_lockcnt_dec(&ctx->list_lock);
    }
    progress |= timerlistgroup_run_timers(&ctx->tlg);

    aio_end_dispatch(outer);
    return progress;
}

/* aio_poll() in general; see aio_poll() for the path it leaves out. */
static QEMU_NO_INLINE bool aio_poll_slow(AioContext *ctx, bool blocking)
{
    AioHandlerList ready_list = QLIST_HEAD_INITIALIZER(ready_list);
    AioContext *outer;
    bool progress = false;
    bool use_notify_me;
    bool fairness_wait;
    bool adaptive = qatomic_read(&ctx->poll_max_ns) != 0;
    int64_t start = 0;
    int64_t wait_end = 0;
    int64_t timeout;

    /*
     * A nested aio_poll() from a callback is about to wait: until its own
     * dispatch phase, aio_notify() must not be skipped (see there).
     */
    outer = aio_begin_dispatch(NULL);

    if (adaptive) {
        start = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    }

    timeout = blocking ? aio_compute_timeout(ctx) : 0;

    if (aio_may_skip_wait(ctx, timeout)) {
        /*
         * Work is pending and no fd needs the kernel: no system call, no
         * busy polling (its window would be 0) and no handler list walk,
         * hence no need to count as a walker either.  This is the path of
         * a loop kept busy by BHs.
         */
        aio_notify_accept(ctx);
        if (adaptive) {
            aio_adjust_polling_time(ctx, qemu_clock_get_ns(QEMU_CLOCK_REALTIME)
                                         - start);
        }
        progress = aio_poll_dispatch(ctx, NULL);
        aio_end_dispatch(outer);
        return progress;
    }

    /*
     * Here either we may have to block, or a handler needs the kernel, or
     * this is the periodic zero-timeout look at the fds of the fast path.
     */
    fairness_wait = timeout == 0 && !aio_fdmon(ctx)->need_wait(ctx);

    qemu_lockcnt_inc(&ctx->list_lock);

    if (!QLIST_EMPTY(&ctx->poll_aio_handlers)) {
        progress = aio_try_poll_mode(ctx, &ready_list, &timeout, &wait_end);
    }
    assert(!(timeout && progress));

    /*
     * Announce that we may sleep, so that aio_notify() writes the eventfd.
     * Not needed when we will not block: everything is looked at again
     * before the next wait anyway.
     */
    use_notify_me = timeout != 0;
    if (use_notify_me) {
        qatomic_set(&ctx->notify_me, qatomic_read(&ctx->notify_me) + 2);
        /* Model: tests/model/aio-notify.pml. */
        /*
         * Order the notify_me store before the load of "notified"; pairs
         * with the smp_mb() in aio_notify().  Either it sees notify_me and
         * sets the notifier, or we see "notified" and do not block.
         */
        smp_mb();
        if (qatomic_read(&ctx->notified)) {
            timeout = 0;
        }
    }

    /*
     * If busy polling found work, the kernel need not be asked (unless a
     * handler can only be seen by it).  Otherwise leave polling mode
     * before sleeping: io_poll_end lets handlers turn their notifications
     * back on, and its final poll catches an event that raced with that.
     */
    if (fairness_wait || timeout || aio_fdmon(ctx)->need_wait(ctx)) {
        wait_end = 0;
        if (aio_poll_set_started(ctx, &ready_list, false, &timeout)) {
            progress = true;
        }
        if (timeout != 0 && aio_metrics_on()) {
            int64_t t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

            aio_fdmon(ctx)->wait(ctx, &ready_list, timeout);
            wait_end = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
            aio_metric_add(ctx, blocking_waits, 1);
            aio_metric_add(ctx, blocked_ns, wait_end - t0);
        } else {
            aio_fdmon(ctx)->wait(ctx, &ready_list, timeout);
        }
    }

    if (use_notify_me) {
        /* The wait is over before we stop asking for notifications. */
        qatomic_store_release(&ctx->notify_me,
                              qatomic_read(&ctx->notify_me) - 2);
    }

    aio_notify_accept(ctx);

    if (adaptive) {
        /*
         * The end of the wait, or of busy polling if nothing waited after
         * it, may have been read already: no need to read the clock again.
         */
        if (!wait_end) {
            wait_end = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        }
        aio_adjust_polling_time(ctx, wait_end - start);
    }

    progress |= aio_poll_dispatch(ctx, &ready_list);
    aio_end_dispatch(outer);
    return progress;
}

/*
 * The path of a loop kept busy by BHs, in line: a non-idle BH is scheduled
 * (or the call does not block), no handler needs the kernel and no
 * fairness wait is due.  That is exactly the case where aio_poll_slow()
 * would skip the wait, and this does the same in the same order, without
 * its calls and register saves.  A BH hidden behind others (or timers due
 * now) take the general path, which reaches the same decision.
 *
 * With adaptive polling on, aio_poll_slow() would also read the clock
 * twice to tell the window how long this call waited: nothing, which
 * leaves an open window unchanged (aio_adjust_polling_time()); only a
 * closed one (poll_ns 0) would open, so that case takes the general path.
 *
 * Nothing waits here, so the dispatch marker (see aio_notify()) covers the
 * whole call.
 */
bool aio_poll(AioContext *ctx, bool blocking)
{
    AioContextPriv *priv = aio_priv(ctx);
    AioContext *outer;
    bool progress;

    if ((qatomic_read(&ctx->poll_max_ns) && !qatomic_read(&ctx->poll_ns)) ||
        (blocking && !aio_bh_surely_scheduled(ctx)) ||
        priv->skipped_waits >= AIO_MAX_SKIPPED_WAITS - 1 ||
        aio_fdmon(ctx)->need_wait(ctx)) {
        return aio_poll_slow(ctx, blocking);
    }
    priv->skipped_waits++;

    outer = aio_begin_dispatch(ctx);
    aio_notify_accept_inline(ctx);
    aio_metric_add(ctx, iterations, 1);
    progress = aio_bh_poll(ctx);
    progress |= timerlistgroup_run_timers(&ctx->tlg);
    aio_end_dispatch(outer);
    return progress;
}
