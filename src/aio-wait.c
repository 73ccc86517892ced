/*
 * aio-wait.c: global_aio_wait, aio_wait_kick and aio_wait_bh_oneshot (the
 * waiting loop itself is the AIO_WAIT_WHILE macro in block/aio-wait.h).
 *
 * Threading: aio_wait_kick from any thread; aio_wait_bh_oneshot from the
 * main thread.
 */
#include "qemu/osdep.h"
#include "block/aio-wait.h"
#include "qemu/error-report.h"

AioWait global_aio_wait;

static void aio_wait_dummy_bh(void *opaque)
{
    /* Scheduling it woke the main loop, so its waiters re-check. */
}

void aio_wait_kick(void)
{
    /*
     * The caller's write to a waiter's condition, then this barrier, then
     * the read of num_waiters.  Pairs with smp_mb__after_rmw() in
     * AIO_WAIT_WHILE_INTERNAL (count, barrier, condition).
     */
    smp_mb();

    if (qatomic_read(&global_aio_wait.num_waiters)) {
        AioContext *main_ctx = qemu_get_aio_context();

        /*
         * Without a main loop every waiter polls its own context, where
         * the completion that called us already runs: nobody to wake.
         */
        if (main_ctx) {
            aio_bh_schedule_oneshot(main_ctx, aio_wait_dummy_bh, NULL);
        }
    }
}

typedef struct AioWaitBHData {
    bool done;          /* atomic: set in @ctx's thread, read by the waiter */
    QEMUBHFunc *cb;
    void *opaque;
} AioWaitBHData;

static void aio_wait_bh(void *opaque)
{
    AioWaitBHData *data = opaque;

    data->cb(data->opaque);
    /* Publishes what @cb did; the waiter's load-acquire pairs with it. */
    qatomic_store_release(&data->done, true);
    aio_wait_kick();
}

void aio_wait_bh_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque)
{
    AioWaitBHData data = {
        .cb = cb,
        .opaque = opaque,
    };

    if (qemu_get_current_aio_context() != qemu_get_aio_context()) {
        error_report("aio_wait_bh_oneshot: must be called from the main "
                     "loop's thread");
        abort();
    }
    aio_bh_schedule_oneshot(ctx, aio_wait_bh, &data);
    AIO_WAIT_WHILE_UNLOCKED(NULL, !qatomic_load_acquire(&data.done));
}
