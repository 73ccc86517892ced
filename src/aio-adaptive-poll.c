/*
 * aio-adaptive-poll.c: busy polling before sleeping.
 *
 * Owns ctx->poll_aio_handlers, ctx->poll_started and the polling window
 * ctx->poll_ns.  When every fd handler can be polled from userspace
 * (io_poll), aio_poll() first spins on the io_poll callbacks for up to
 * poll_ns nanoseconds; only if nothing turns up does it ask the kernel.
 * The window adapts to how long aio_poll() actually had to wait.
 *
 * Threading: home thread only, as a list_lock walker, except that
 * aio_context_set_poll_params() may change the parameters from any thread
 * (hence the atomic accesses to poll_*).
 */
#include "qemu/osdep.h"
#include "aio-int.h"
#include "qapi/error.h"

/* First polling window when it starts growing from zero. */
#define POLL_NS_INITIAL 4000

/* Queue @node for io_poll_ready, as io_poll just reported work. */
static void aio_add_poll_ready_handler(AioHandlerList *ready_list,
                                       AioHandler *node)
{
    QLIST_SAFE_REMOVE(node, node_ready);
    node->poll_ready = true;
    QLIST_INSERT_HEAD(ready_list, node, node_ready);
}

/*
 * A handler with io_poll that fired joins the poll set (and, if polling is
 * under way, is told so).
 */
void aio_poll_handler_became_active(AioContext *ctx, AioHandler *node)
{
    IOHandler *begin;

    if (!node->io_poll || QLIST_IS_INSERTED(node, node_poll)) {
        return;
    }
    begin = qatomic_read(&node->io_poll_begin);
    if (ctx->poll_started && begin) {
        begin(node->opaque);
    }
    node->poll_idle_timeout = 0;
    QLIST_INSERT_HEAD(&ctx->poll_aio_handlers, node, node_poll);
}

/*
 * Enter or leave polling mode, calling io_poll_begin or io_poll_end of the
 * handlers in the poll set.  On leaving, poll each handler once more: an
 * event may have arrived while it had its notifications turned off.
 * Returns true if that final poll found work other than the context's own
 * notifier; sets *timeout to 0 if it found anything.
 */
bool aio_poll_set_started(AioContext *ctx, AioHandlerList *ready_list,
                          bool started, int64_t *timeout)
{
    AioHandler *node;
    bool progress = false;

    if (started == ctx->poll_started) {
        return false;
    }
    ctx->poll_started = started;

    qemu_lockcnt_inc(&ctx->list_lock);
    QLIST_FOREACH(node, &ctx->poll_aio_handlers, node_poll) {
        IOHandler *fn;

        if (aio_node_is_deleted(node)) {
            continue;
        }
        fn = started ? qatomic_read(&node->io_poll_begin)
                     : qatomic_read(&node->io_poll_end);
        if (fn) {
            fn(node->opaque);
        }
        if (!started && node->io_poll(node->opaque)) {
            aio_add_poll_ready_handler(ready_list, node);
            *timeout = 0;
            if (!aio_handler_is_notifier(ctx, node)) {
                progress = true;
            }
        }
    }
    qemu_lockcnt_dec(&ctx->list_lock);
    return progress;
}

/* One round over the poll set.  Returns true on progress. */
static bool run_poll_handlers_once(AioContext *ctx, AioHandlerList *ready_list,
                                   int64_t now, int64_t *timeout)
{
    AioHandler *node;
    AioHandler *tmp;
    bool progress = false;

    QLIST_FOREACH_SAFE(node, &ctx->poll_aio_handlers, node_poll, tmp) {
        if (aio_node_is_deleted(node) || !node->io_poll(node->opaque)) {
            continue;
        }
        aio_add_poll_ready_handler(ready_list, node);
        node->poll_idle_timeout = now + POLL_IDLE_INTERVAL_NS;
        /* Stop polling at once so the window can adapt. */
        *timeout = 0;
        if (!aio_handler_is_notifier(ctx, node)) {
            progress = true;
        }
    }
    return progress;
}

/*
 * Drop handlers whose io_poll has not succeeded for POLL_IDLE_INTERVAL_NS
 * from the poll set; they rejoin when their fd fires.  Only for monitors
 * that can see fd readiness while we poll: with poll(2) and epoll a handler
 * outside the poll set would wait for the kernel until polling ends.
 */
static bool remove_idle_poll_handlers(AioContext *ctx,
                                      AioHandlerList *ready_list, int64_t now)
{
    AioHandler *node;
    AioHandler *tmp;
    bool progress = false;

    if (aio_fdmon(ctx)->need_wait == aio_poll_disabled) {
        return false;
    }

    QLIST_FOREACH_SAFE(node, &ctx->poll_aio_handlers, node_poll, tmp) {
        IOHandler *end;

        if (node->poll_idle_timeout == 0) {
            node->poll_idle_timeout = now + POLL_IDLE_INTERVAL_NS;
            continue;
        }
        if (now < node->poll_idle_timeout) {
            continue;
        }
        node->poll_idle_timeout = 0;
        QLIST_SAFE_REMOVE(node, node_poll);
        end = qatomic_read(&node->io_poll_end);
        if (ctx->poll_started && end && !aio_node_is_deleted(node)) {
            end(node->opaque);
            /* As in aio_poll_set_started(): catch a racing event. */
            if (node->io_poll(node->opaque)) {
                aio_add_poll_ready_handler(ready_list, node);
                progress = true;
            }
        }
    }
    return progress;
}

/*
 * Poll for up to @max_ns.  On return *timeout is 0 if something was found,
 * otherwise reduced by the time spent so that the deadline stays put;
 * *poll_end is the clock reading that ended the poll.
 *
 * When a round finds something, the poll ends with the clock reading
 * taken before that round: the caller then has work to do at once, and
 * another reading would only delay it (by about as long as a round of
 * io_poll calls, which is all the measured time leaves out).
 */
static bool run_poll_handlers(AioContext *ctx, AioHandlerList *ready_list,
                              int64_t max_ns, int64_t *timeout,
                              int64_t *poll_end)
{
    const FDMonOps *fdmon = aio_fdmon(ctx);
    int64_t start = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int64_t now = start;
    int64_t elapsed = 0;
    bool progress;

    for (;;) {
        progress = run_poll_handlers_once(ctx, ready_list, now, timeout);
        max_ns = qemu_soonest_timeout(*timeout, max_ns);
        assert(!(max_ns && progress));
        if (max_ns == 0) {
            break;                      /* found something */
        }
        now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
        elapsed = now - start;
        if (elapsed >= max_ns || fdmon->need_wait(ctx)) {
            break;
        }
    }

    aio_metric_add(ctx, poll_ns, elapsed);
    if (progress) {
        aio_metric_add(ctx, poll_hits, 1);
    } else {
        aio_metric_add(ctx, poll_misses, 1);
    }

    if (remove_idle_poll_handlers(ctx, ready_list, now)) {
        *timeout = 0;
        progress = true;
    }

    if (*timeout > 0) {
        *timeout -= MIN(*timeout, elapsed);
    }
    *poll_end = now;
    return progress;
}

/*
 * Busy-poll before blocking, if polling is on and possible.  Returns true
 * on progress (and then *timeout is 0).  If it polled, *poll_end is the
 * time the poll ended (QEMU_CLOCK_REALTIME); otherwise it is untouched.
 */
bool aio_try_poll_mode(AioContext *ctx, AioHandlerList *ready_list,
                       int64_t *timeout, int64_t *poll_end)
{
    int64_t max_ns;

    if (QLIST_EMPTY(&ctx->poll_aio_handlers)) {
        return false;
    }

    max_ns = qemu_soonest_timeout(*timeout, qatomic_read(&ctx->poll_ns));
    if (max_ns && !aio_fdmon(ctx)->need_wait(ctx)) {
        aio_poll_set_started(ctx, ready_list, true, timeout);
        return run_poll_handlers(ctx, ready_list, max_ns, timeout, poll_end);
    }
    return false;
}

/*
 * Adapt the window to @block_ns, the time the last aio_poll() spent until
 * its wait ended: grow while waits are short enough that polling could have
 * caught the event, shrink when they exceed the maximum window.
 */
void aio_adjust_polling_time(AioContext *ctx, int64_t block_ns)
{
    int64_t max_ns = qatomic_read(&ctx->poll_max_ns);
    int64_t ns = qatomic_read(&ctx->poll_ns);
    int64_t old = ns;

    if (block_ns <= ns) {
        return;                         /* the window was long enough */
    }
    if (block_ns > max_ns) {
        int64_t shrink = qatomic_read(&ctx->poll_shrink);

        ns = shrink ? ns / shrink : 0;
    } else if (ns < max_ns && block_ns < max_ns) {
        int64_t grow = qatomic_read(&ctx->poll_grow);

        ns = ns ? ns * (grow ? grow : 2) : POLL_NS_INITIAL;
        if (ns > max_ns) {
            ns = max_ns;
        }
    }
    if (ns != old) {
        qatomic_set(&ctx->poll_ns, ns);
    }
}

void aio_context_set_poll_params(AioContext *ctx, int64_t max_ns,
                                 int64_t grow, int64_t shrink, Error **errp)
{
    if (max_ns < 0 || grow < 0 || shrink < 0) {
        error_setg(errp, "poll parameters must not be negative "
                   "(max_ns %" PRId64 ", grow %" PRId64 ", shrink %" PRId64
                   ")", max_ns, grow, shrink);
        return;
    }

    qatomic_set(&ctx->poll_max_ns, max_ns);
    qatomic_set(&ctx->poll_grow, grow);
    qatomic_set(&ctx->poll_shrink, shrink);
    qatomic_set(&ctx->poll_ns, 0);

    aio_notify(ctx);
}
