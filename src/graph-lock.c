/*
 * graph-lock.c: the block-graph lock: the registry of AioContexts and the
 * readers-writer lock over their reader counts.
 *
 * Each registered context carries a reader count, changed only by
 * coroutines of that context's thread.  A count left over when a context
 * goes away (a reader that moved to another context before unlocking)
 * moves to orphaned_reader_count, so the total stays right.
 *
 * The protocol between a reader and the writer (see also the header):
 *
 *   reader:  count++; smp_mb(); if !has_writer: in
 *   writer:  has_writer = 1; smp_mb(); wait until sum(counts) == 0
 *
 * The two barriers make it impossible for both to miss the other: either
 * the reader sees the flag and backs out (count--, under the registry lock,
 * then it kicks the writer and waits on reader_queue), or the writer sees
 * its count and waits for it to leave.  A leaving reader decrements, then
 * kicks the writer (aio_wait_kick) if the flag is up.  The writer's unlock
 * clears the flag and drains reader_queue under the registry lock, and a
 * backing-out reader checks the flag again under that same lock, so no
 * reader can go to sleep after the writer has left.
 *
 * Threading: the registry, orphaned_reader_count and reader_queue are
 * under aio_context_list_lock.  has_writer is atomic, written only by the
 * main thread.  A context's reader_count is written only in that
 * context's thread and read by the writer; atomic.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/aio-wait.h"
#include "block/graph-lock.h"
#include "qemu/coroutine.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"

BdrvGraphLock graph_lock;

struct BdrvGraphRWlock {
    AioContext *ctx;
    uint32_t reader_count;          /* atomic; owner thread writes */
    QTAILQ_ENTRY(BdrvGraphRWlock) next_aio;
};

static QemuMutex aio_context_list_lock;
static QTAILQ_HEAD(, BdrvGraphRWlock) aio_context_list =
    QTAILQ_HEAD_INITIALIZER(aio_context_list);
/* Readers counted by contexts that no longer exist. */
static uint32_t orphaned_reader_count;
/* Readers that arrived while a writer held or waited for the lock. */
static CoQueue reader_queue;

/* 1 from the start of bdrv_graph_wrlock() to bdrv_graph_wrunlock(). */
static int has_writer;

static void graph_lock_init(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        qemu_mutex_init(&aio_context_list_lock);
        qemu_co_queue_init(&reader_queue);
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

/*
 * The readers of all contexts.  A single count may have wrapped below zero
 * (a reader that locked in one context and unlocked in another); the sum
 * cannot.
 */
static uint32_t graph_reader_count(void)
{
    BdrvGraphRWlock *lock;
    uint32_t sum;

    QEMU_LOCK_GUARD(&aio_context_list_lock);
    sum = orphaned_reader_count;
    QTAILQ_FOREACH(lock, &aio_context_list, next_aio) {
        /*
         * Acquire, pairing with the release in bdrv_graph_co_rdunlock():
         * a reader that left without taking our lock has finished its
         * reads before the writer's writes.
         */
        sum += qatomic_load_acquire(&lock->reader_count);
    }
    assert((int32_t)sum >= 0);
    return sum;
}

static BdrvGraphRWlock *graph_my_counter(const char *func)
{
    AioContext *ctx = qemu_get_current_aio_context();

    if (!qemu_in_coroutine() || !ctx) {
        error_report("%s: the graph read lock is for coroutines of a thread "
                     "that runs an AioContext", func);
        abort();
    }
    return ctx->bdrv_graph;
}

void no_coroutine_fn bdrv_graph_wrlock(void)
{
    GLOBAL_STATE_CODE();
    if (qemu_in_coroutine()) {
        error_report("bdrv_graph_wrlock: called from a coroutine; the "
                     "writer must be the main loop itself");
        abort();
    }
    if (qatomic_read(&has_writer)) {
        error_report("bdrv_graph_wrlock: the graph is write-locked already "
                     "(the lock is not recursive)");
        abort();
    }
    graph_lock_init();

    qatomic_set(&has_writer, 1);
    /*
     * Flag, then counts.  Pairs with smp_mb() in bdrv_graph_co_rdlock()
     * (count, then flag): a reader we do not count sees the flag.
     */
    smp_mb();

    /* Readers kick us as they leave (bdrv_graph_co_rdunlock). */
    AIO_WAIT_WHILE_UNLOCKED(NULL, graph_reader_count() >= 1);
}

void no_coroutine_fn bdrv_graph_wrunlock(void)
{
    GLOBAL_STATE_CODE();
    if (!qatomic_read(&has_writer)) {
        error_report("bdrv_graph_wrunlock: the graph is not write-locked");
        abort();
    }

    WITH_QEMU_LOCK_GUARD(&aio_context_list_lock) {
        /*
         * Under the lock a backing-out reader re-checks the flag with
         * (bdrv_graph_co_rdlock): it either sees it down or is already on
         * reader_queue for us to wake.  The release orders the writer's
         * critical section before readers that see the flag down without
         * the lock.
         */
        qatomic_store_release(&has_writer, 0);
        /* The lock is dropped around each wake: a reader re-takes it. */
        qemu_co_enter_all(&reader_queue, &aio_context_list_lock);
    }

    /*
     * Run what the write section scheduled in the main context, after the
     * readers restarted (a BH waiting on a reader must not deadlock).
     */
    aio_bh_poll(qemu_get_aio_context());
}

void coroutine_fn bdrv_graph_co_rdlock(void)
{
    BdrvGraphRWlock *mine = graph_my_counter(__func__);

    for (;;) {
        /* Only this thread writes its count, so no atomic RMW is needed. */
        qatomic_set(&mine->reader_count, mine->reader_count + 1);
        /* Count, then flag.  Pairs with smp_mb() in bdrv_graph_wrlock(). */
        smp_mb();
        /*
         * Acquire, pairing with the release in bdrv_graph_wrunlock(): the
         * writer's critical section happens before our reads.  (The
         * fence above orders the count against this load, but a fence
         * does not make a relaxed load an acquire, in C11 nor for TSan.)
         */
        if (!qatomic_load_acquire(&has_writer)) {
            return;
        }

        WITH_QEMU_LOCK_GUARD(&aio_context_list_lock) {
            /* The writer may have left between our read and the lock. */
            if (!qatomic_load_acquire(&has_writer)) {
                return;
            }
            /*
             * Back out and tell the writer, which may be waiting for this
             * very count; it reads counts under this lock, so it sees the
             * decrement when the kick makes it look again.
             */
            qatomic_set(&mine->reader_count, mine->reader_count - 1);
            aio_wait_kick();
            qemu_co_queue_wait(&reader_queue, &aio_context_list_lock);
        }
        /*
         * The writer is gone.  We may resume in another thread only if
         * somebody moved us; take the counter afresh either way.
         */
        mine = graph_my_counter(__func__);
    }
}

void coroutine_fn bdrv_graph_co_rdunlock(void)
{
    BdrvGraphRWlock *mine = graph_my_counter(__func__);

    /* Release: our reads of the graph happen before the writer's writes. */
    qatomic_store_release(&mine->reader_count, mine->reader_count - 1);
    /* Count, then flag.  Pairs with smp_mb() in bdrv_graph_wrlock(). */
    smp_mb();
    if (qatomic_read(&has_writer)) {
        aio_wait_kick();
    }
}

void bdrv_graph_rdlock_main_loop(void)
{
    GLOBAL_STATE_CODE();
    assert(!qemu_in_coroutine());
}

void bdrv_graph_rdunlock_main_loop(void)
{
    GLOBAL_STATE_CODE();
    assert(!qemu_in_coroutine());
}

void assert_bdrv_graph_readable(void)
{
#ifdef CONFIG_DEBUG_GRAPH_LOCK
    assert(qemu_in_main_thread() || graph_reader_count());
#endif
}

void assert_bdrv_graph_writable(void)
{
    assert(qemu_in_main_thread());
    assert(qatomic_read(&has_writer));
}
