/*
 * graph-lock.c: the AioContext side of the block-graph lock.
 *
 * Owns the registry of contexts (register_aiocontext and
 * unregister_aiocontext).  Each registration carries a reader count for
 * the graph read lock, which the coroutine layer implements; a count left
 * over when a context goes away moves to a global counter so that writers
 * still see it.
 *
 * Threading: the registry is protected by a mutex; any thread.
 */
#include "qemu/osdep.h"
#include "block/aio.h"

struct BdrvGraphRWlock {
    AioContext *ctx;
    uint32_t reader_count;          /* atomic */
    QTAILQ_ENTRY(BdrvGraphRWlock) next_aio;
};

static QemuMutex aio_context_list_lock;
static QTAILQ_HEAD(, BdrvGraphRWlock) aio_context_list =
    QTAILQ_HEAD_INITIALIZER(aio_context_list);
/* Readers counted by contexts that no longer exist. */
static uint32_t orphaned_reader_count;

static void graph_lock_init(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        qemu_mutex_init(&aio_context_list_lock);
        g_once_init_leave(&done, 1);
    }
}

void register_aiocontext(AioContext *ctx)
{
    BdrvGraphRWlock *lock = g_new0(BdrvGraphRWlock, 1);

    graph_lock_init();
    lock->ctx = ctx;
    ctx->bdrv_graph = lock;
    qemu_mutex_lock(&aio_context_list_lock);
    QTAILQ_INSERT_TAIL(&aio_context_list, lock, next_aio);
    qemu_mutex_unlock(&aio_context_list_lock);
}

void unregister_aiocontext(AioContext *ctx)
{
    BdrvGraphRWlock *lock = ctx->bdrv_graph;

    qemu_mutex_lock(&aio_context_list_lock);
    orphaned_reader_count += qatomic_read(&lock->reader_count);
    QTAILQ_REMOVE(&aio_context_list, lock, next_aio);
    qemu_mutex_unlock(&aio_context_list_lock);
    ctx->bdrv_graph = NULL;
    g_free(lock);
}
