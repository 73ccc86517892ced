/*
 * aio-gsource.c: the AioContext as a GSource.
 *
 * Owns the GSourceFuncs that let a GMainContext drive a context, and
 * aio_prepare / aio_pending / aio_dispatch behind them.  From the first
 * aio_get_g_source() on, every fd handler's GPollFD is registered with the
 * source (aio_context_use_g_source() and aio_set_fd_handler() do it), so
 * GLib polls them itself; dispatch then runs BHs, the handlers GLib found
 * ready, and expired timers: the same work as one aio_poll().
 *
 * Threading: the callbacks run in the thread iterating the GMainContext,
 * which is then the context's home thread.  Bit 0 of notify_me is set in
 * prepare and cleared in check, so aio_notify() from other threads writes
 * the eventfd (which GLib polls) while GLib may be asleep.
 */
#include "qemu/osdep.h"
#include "aio-int.h"

bool aio_prepare(AioContext *ctx)
{
    AioHandlerList ready_list = QLIST_HEAD_INITIALIZER(ready_list);
    int64_t timeout = -1;
    AioHandler *node;
    bool ready;

    /*
     * GLib cannot busy-poll: leave polling mode.  Handlers its final poll
     * finds ready keep poll_ready set, and aio_dispatch() calls their
     * io_poll_ready.
     */
    qemu_lockcnt_inc(&ctx->list_lock);
    aio_poll_set_started(ctx, &ready_list, false, &timeout);
    ready = !QLIST_EMPTY(&ready_list);
    while ((node = QLIST_FIRST(&ready_list))) {
        QLIST_REMOVE(node, node_ready);
    }
    qemu_lockcnt_dec(&ctx->list_lock);
    return ready;
}

bool aio_pending(AioContext *ctx)
{
    AioHandler *node;
    bool result = false;

    qemu_lockcnt_inc(&ctx->list_lock);
    AIO_HANDLERS_FOREACH(node, &ctx->aio_handlers) {
        int revents = node->pfd.revents & node->pfd.events;

        if (aio_node_is_deleted(node)) {
            continue;
        }
        if (((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) && node->io_read) ||
            ((revents & (G_IO_OUT | G_IO_ERR)) && node->io_write) ||
            (node->poll_ready && node->io_poll_ready)) {
            result = true;
            break;
        }
    }
    qemu_lockcnt_dec(&ctx->list_lock);
    return result;
}

static void aio_dispatch_handlers(AioContext *ctx)
{
    AioHandler *node;

    AIO_HANDLERS_FOREACH(node, &ctx->aio_handlers) {
        if (node->pfd.revents || node->poll_ready) {
            aio_dispatch_handler(ctx, node);
        }
    }
}

void aio_dispatch(AioContext *ctx)
{
    AioContext *outer = aio_begin_dispatch(ctx);

    aio_metric_add(ctx, iterations, 1);
    qemu_lockcnt_inc(&ctx->list_lock);
    aio_bh_poll(ctx);
    aio_dispatch_handlers(ctx);
    aio_free_deleted_handlers(ctx);
    qemu_lockcnt_dec(&ctx->list_lock);

    timerlistgroup_run_timers(&ctx->tlg);
    aio_end_dispatch(outer);
}

static gboolean aio_ctx_prepare(GSource *source, gint *timeout)
{
    AioContext *ctx = (AioContext *)source;

    /* Finish a move off io_uring that aio_get_g_source() had to defer. */
    fdmon_io_uring_gsource_prepare(ctx);

    /* Model: tests/model/aio-notify.pml (-DGSOURCE). */
    qatomic_set(&ctx->notify_me, qatomic_read(&ctx->notify_me) | 1);

    /*
     * Order the notify_me store before computing the timeout (which reads
     * the BH list and timers); pairs with the smp_mb() in aio_notify().
     */
    smp_mb();

    *timeout = qemu_timeout_ns_to_ms(aio_compute_timeout(ctx));
    if (aio_prepare(ctx)) {
        *timeout = 0;
    }
    return *timeout == 0;
}

static gboolean aio_ctx_check(GSource *source)
{
    AioContext *ctx = (AioContext *)source;

    /* GLib's poll is over: aio_notify() need not write the eventfd now. */
    qatomic_store_release(&ctx->notify_me, qatomic_read(&ctx->notify_me) & ~1);
    aio_notify_accept(ctx);

    if (aio_bh_timeout(ctx) >= 0) {
        return true;    /* a BH is scheduled (an idle one counts too) */
    }
    return aio_pending(ctx) || timerlistgroup_deadline_ns(&ctx->tlg) == 0;
}

static gboolean aio_ctx_dispatch(GSource *source, GSourceFunc callback,
                                 gpointer user_data)
{
    AioContext *ctx = (AioContext *)source;

    assert(callback == NULL);
    aio_dispatch(ctx);
    return G_SOURCE_CONTINUE;
}

GSourceFuncs aio_source_funcs = {
    .prepare = aio_ctx_prepare,
    .check = aio_ctx_check,
    .dispatch = aio_ctx_dispatch,
    .finalize = aio_ctx_finalize,
};

GSource *aio_get_g_source(AioContext *ctx)
{
    aio_context_use_g_source(ctx);
    g_source_ref(&ctx->source);
    return &ctx->source;
}
