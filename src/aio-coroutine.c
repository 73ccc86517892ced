/*
 * aio-coroutine.c: coroutines and AioContexts.
 *
 * Owns aio_co_schedule, aio_co_wake, aio_co_enter, aio_co_reschedule_self
 * and each context's co_schedule_bh, which enters the coroutines
 * scheduled into the context in the order they were scheduled.
 *
 * Threading: aio_co_schedule and aio_co_wake may be called from any
 * thread.  ctx->scheduled_coroutines takes lock-free pushes
 * (QSLIST_INSERT_HEAD_ATOMIC) from any thread and is emptied in one swap
 * by the BH in the home thread.  co->scheduled is claimed with a
 * compare-and-swap, so a second scheduling of a coroutine that has not
 * run yet is caught and aborts naming the first scheduler.  A scheduled
 * coroutine holds a reference to its context until it has run.
 */
#include "qemu/osdep.h"
#include "aio-int.h"
#include "qemu/error-report.h"
#include "coroutine-int.h"

static void co_schedule_bh_cb(void *opaque)
{
    AioContext *ctx = opaque;
    QSLIST_HEAD(, Coroutine) straight, reversed;

    /* Pushes went to the head: turn the stack back into arrival order. */
    QSLIST_MOVE_ATOMIC(&reversed, &ctx->scheduled_coroutines);
    QSLIST_INIT(&straight);
    while (!QSLIST_EMPTY(&reversed)) {
        Coroutine *co = QSLIST_FIRST(&reversed);

        QSLIST_REMOVE_HEAD(&reversed, co_scheduled_next);
        QSLIST_INSERT_HEAD(&straight, co, co_scheduled_next);
    }

    while (!QSLIST_EMPTY(&straight)) {
        Coroutine *co = QSLIST_FIRST(&straight);

        QSLIST_REMOVE_HEAD(&straight, co_scheduled_next);
        /*
         * From here on someone may schedule @co again (it may do so
         * itself, or hand itself to a thread that does).  The enter's
         * barrier orders this store before the coroutine runs.
         */
        qatomic_set(&co->scheduled, NULL);
        qemu_aio_coroutine_enter(ctx, co);
        /* The reference aio_co_schedule() took. */
        aio_context_unref(ctx);
    }
}

void aio_co_schedule_init(AioContext *ctx)
{
    ctx->co_schedule_bh = aio_bh_new_full(ctx, co_schedule_bh_cb, ctx,
                                          "co_schedule_bh", NULL);
}

void aio_co_schedule_cleanup(AioContext *ctx)
{
    /*
     * Each scheduled coroutine holds a reference, so none can be left,
     * unless one was woken while the context was being destroyed: a
     * coroutine still waiting in thread_pool_submit_co() is woken by the
     * pool's drain, with nowhere left to run.
     */
    if (unlikely(!QSLIST_EMPTY(&ctx->scheduled_coroutines))) {
        error_report("AioContext %p destroyed while a coroutine was woken "
                     "into it (e.g. one still waiting in "
                     "thread_pool_submit_co); let the context's coroutines "
                     "finish before destroying it", (void *)ctx);
        abort();
    }
    if (ctx->co_schedule_bh) {
        qemu_bh_delete(ctx->co_schedule_bh);
        ctx->co_schedule_bh = NULL;
    }
}

void aio_co_schedule(AioContext *ctx, Coroutine *co)
{
    const char *scheduled;

    if (unlikely(!ctx)) {
        error_report("aio_co_schedule: no AioContext for Co-routine %p "
                     "(it last ran in a thread without a current "
                     "AioContext); pass the context to run it in",
                     (void *)co);
        abort();
    }

    /*
     * Claim @co.  The compare-and-swap is a full barrier: everything the
     * caller wrote is visible to the thread that runs @co (it reads
     * co->scheduled in qemu_aio_coroutine_enter).
     */
    scheduled = qatomic_cmpxchg(&co->scheduled, NULL, __func__);
    if (unlikely(scheduled)) {
        error_report("aio_co_schedule: Co-routine %p was already "
                     "scheduled in '%s'; a coroutine may be scheduled "
                     "again only after it has run", (void *)co, scheduled);
        abort();
    }

    /*
     * Two references.  One keeps @ctx alive until @co has run;
     * co_schedule_bh_cb() drops it.  The other covers this call: once @co
     * is on the list, @ctx's thread may run it (its BH may already be
     * running) and drop the first reference -- and the owner its own --
     * before qemu_bh_schedule() below is done with @ctx.
     */
    aio_context_ref(ctx);
    aio_context_ref(ctx);
    QSLIST_INSERT_HEAD_ATOMIC(&ctx->scheduled_coroutines, co,
                              co_scheduled_next);
    qemu_bh_schedule(ctx->co_schedule_bh);
    aio_context_unref(ctx);
}

void coroutine_fn aio_co_reschedule_self(AioContext *new_ctx)
{
    AioContext *old_ctx = qemu_get_current_aio_context();
    Coroutine *self;

    if (old_ctx == new_ctx) {
        return;
    }
    if (!qemu_in_coroutine()) {
        error_report("aio_co_reschedule_self: not in a coroutine");
        abort();
    }

    /*
     * Scheduling ourselves now would let @new_ctx's thread enter us
     * before we have yielded.  So leave the aio_co_schedule() to
     * qemu_aio_coroutine_enter(), which does it as soon as we have
     * yielded: no BH round trip through @old_ctx, no allocation.
     */
    self = qemu_coroutine_self();
    self->reschedule_ctx = new_ctx;
    qemu_coroutine_yield();
}

void aio_co_enter(AioContext *ctx, Coroutine *co)
{
    if (ctx != qemu_get_current_aio_context()) {
        aio_co_schedule(ctx, co);
        return;
    }

    if (qemu_in_coroutine()) {
        Coroutine *self = qemu_coroutine_self();

        if (unlikely(self == co)) {
            error_report("aio_co_enter: Co-routine %p woke itself; a "
                         "coroutine is woken by someone else after it "
                         "yields", (void *)co);
            abort();
        }
        /* Entered by the qemu_aio_coroutine_enter() we yield to. */
        QSIMPLEQ_INSERT_TAIL(&self->co_queue_wakeup, co, co_queue_next);
    } else {
        qemu_aio_coroutine_enter(ctx, co);
    }
}

void aio_co_wake(Coroutine *co)
{
    AioContext *ctx;

    /*
     * Read the context @co last ran in.  The smp_wmb() in
     * qemu_aio_coroutine_enter() published it before @co could hand
     * itself to us, and the dependency orders our reads after that.
     */
    ctx = qatomic_read(&co->ctx);
    smp_read_barrier_depends();
    aio_co_enter(ctx, co);
}
