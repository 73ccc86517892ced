/*
 * aiocb.c: BlockAIOCB allocation, reference counting and cancellation.
 *
 * An AIOCB is the handle of one asynchronous request; the engine that
 * creates it defines how large it is and how to cancel it (AIOCBInfo).
 * Threading: the reference count is plain, as in QEMU: an AIOCB belongs to
 * the thread of the context its request completes in, and cancellation is
 * called from that thread too.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/aio-wait.h"
#include "qemu/coroutine.h"
#include "qemu/error-report.h"

void *qemu_aio_get(const AIOCBInfo *aiocb_info, BlockDriverState *bs,
                   BlockCompletionFunc *cb, void *opaque)
{
    BlockAIOCB *acb;

    assert(aiocb_info->aiocb_size >= sizeof(BlockAIOCB));
    acb = g_malloc0(aiocb_info->aiocb_size);
    acb->aiocb_info = aiocb_info;
    acb->bs = bs;
    acb->cb = cb;
    acb->opaque = opaque;
    acb->refcnt = 1;
    return acb;
}

void qemu_aio_ref(void *p)
{
    BlockAIOCB *acb = p;

    assert(acb->refcnt > 0);
    acb->refcnt++;
}

void qemu_aio_unref(void *p)
{
    BlockAIOCB *acb = p;

    assert(acb->refcnt > 0);
    if (--acb->refcnt == 0) {
        g_free(acb);
    }
}

void bdrv_aio_cancel_async(BlockAIOCB *acb)
{
    if (acb->aiocb_info->cancel_async) {
        acb->aiocb_info->cancel_async(acb);
    }
}

void bdrv_aio_cancel(BlockAIOCB *acb)
{
    AioContext *ctx = qemu_get_current_aio_context();

    if (!ctx) {
        error_report("bdrv_aio_cancel: the calling thread runs no "
                     "AioContext; call it from the home thread of the "
                     "context AIOCB %p completes in", (void *)acb);
        abort();
    }
    if (qemu_in_coroutine()) {
        error_report("bdrv_aio_cancel: called in a coroutine, which must "
                     "not run a nested event loop; use "
                     "bdrv_aio_cancel_async");
        abort();
    }

    /*
     * Our reference keeps @acb alive after its completion dropped the
     * engine's: the completion running is what the count falling back to
     * ours means.  Both counts change in this thread only.
     */
    qemu_aio_ref(acb);
    bdrv_aio_cancel_async(acb);
    AIO_WAIT_WHILE(ctx, acb->refcnt > 1);
    qemu_aio_unref(acb);
}
