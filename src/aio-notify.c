/*
 * aio-notify.c: waking a context, and its own EventNotifier.
 *
 * Owns aio_notify() / aio_notify_accept() and the handler of ctx->notifier.
 * The common cases of both (nothing to do) are inline functions in
 * aio-int.h, aio_notify_unneeded() and aio_notify_accept_inline(), for the
 * hot paths of qemu_bh_schedule() and aio_poll().  aio_notify() may be
 * called from any thread and from signal handlers; aio_notify_accept() and
 * the notifier callbacks run in the home thread.
 *
 * The protocol, in short (model-checked in tests/model/aio-notify.pml):
 *   poller:   notify_me += 2; smp_mb(); if notified: don't block; wait;
 *             notify_me -= 2; notified = false; smp_mb(); look at work
 *   notifier: publish work; smp_wmb(); notified = true; smp_mb();
 *             if notify_me: event_notifier_set()
 * Either the notifier sees notify_me raised and writes the eventfd, or the
 * poller sees notified (and the work) and does not block.
 */
#include "qemu/osdep.h"
#include "aio-int.h"

QAIO_THREAD_LOCAL AioContext *aio_dispatching_ctx;

void aio_notify(AioContext *ctx)
{
    if (aio_notify_unneeded(ctx)) {
        return;
    }

    /*
     * Make the caller's work (a pushed BH, an armed timer) visible before
     * "notified"; pairs with the smp_mb() in aio_notify_accept().
     */
    smp_wmb();
    qatomic_set(&ctx->notified, true);

    /*
     * Order the store to "notified" before the load of notify_me; pairs with
     * the smp_mb() after aio_poll() (or the GSource prepare) raises it.
     */
    smp_mb();
    if (qatomic_read(&ctx->notify_me)) {
        event_notifier_set(&ctx->notifier);
    }
}

/* aio_notify_accept_inline() found "notified" set. */
void aio_notify_accept_clear(AioContext *ctx)
{
    qatomic_set(&ctx->notified, false);

    /*
     * Clear "notified" before looking at BHs, fds and timers, so that work
     * published after this point sets it again.  Pairs with the smp_wmb()
     * in aio_notify().
     */
    smp_mb();
}

void aio_notify_accept(AioContext *ctx)
{
    aio_notify_accept_inline(ctx);
}

/*
 * The eventfd only exists to end a sleeping wait; by the time this runs
 * aio_notify_accept() has acknowledged the notification, so just drain it.
 */
static void aio_context_notifier_cb(EventNotifier *e)
{
    event_notifier_test_and_clear(e);
}

/*
 * Busy polling notices aio_notify() without reading the eventfd.  A BH
 * pushed by another thread is seen on ctx->bh_list first, before its
 * aio_notify() has stored "notified": the poll ends a cache miss sooner,
 * and without pulling "notified" away from the notifying thread.  (Ending
 * the poll is all this does; "notified" is accepted as usual, now or by
 * the next aio_poll(), which then does not block.)
 */
static bool aio_context_notifier_poll(void *opaque)
{
    EventNotifier *e = opaque;
    AioContext *ctx = container_of(e, AioContext, notifier);

    return qatomic_read(&ctx->bh_list.slh_first) ||
           qatomic_read(&ctx->notified);
}

/* Nothing to do: the poll ended polling mode, which was the point. */
static void aio_context_notifier_poll_ready(EventNotifier *e)
{
}

void aio_context_notifier_register(AioContext *ctx)
{
    aio_set_event_notifier(ctx, &ctx->notifier,
                           aio_context_notifier_cb,
                           aio_context_notifier_poll,
                           aio_context_notifier_poll_ready);
}
