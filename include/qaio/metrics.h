/*
 * qaio/metrics.h: what an AioContext has been doing (a qaio extension; QEMU
 * has no such API).
 *
 * Every context keeps counters of its loop iterations, the callbacks it
 * ran, and where its time went (asleep in the kernel, busy polling).  They
 * are always on: the home thread bumps them with plain stores, no atomic
 * read-modify-write and no extra system call, and a reader in any thread
 * takes a snapshot.  The counters only grow; to measure an interval, take
 * two snapshots and subtract.
 *
 * Threading: the getters may be called from any thread at any time while
 * the context is alive.  A snapshot is not atomic as a whole: each field is
 * read atomically, but a callback may run between two of the reads.
 */
#ifndef QAIO_METRICS_H
#define QAIO_METRICS_H

#include "block/aio.h"

typedef struct QaioLoopMetrics {
    /* Loop iterations that dispatched: aio_poll() calls and GSource runs. */
    uint64_t iterations;
    /* Bottom-half callbacks run. */
    uint64_t bh_calls;
    /* fd handler callbacks run (io_read, io_write and io_poll_ready). */
    uint64_t fd_dispatches;
    /* Timer callbacks run from the context's timer lists (ctx->tlg). */
    uint64_t timers_fired;
    /*
     * Waits in the fd monitor that were allowed to sleep (a non-zero
     * timeout), and the nanoseconds they took, on QEMU_CLOCK_REALTIME.
     */
    uint64_t blocking_waits;
    uint64_t blocked_ns;
    /*
     * Busy polling (adaptive polling, aio_context_set_poll_params): time
     * spent in io_poll loops, windows that found work (hits) and windows
     * that ran out without any (misses).
     */
    uint64_t poll_ns;
    uint64_t poll_hits;
    uint64_t poll_misses;
} QaioLoopMetrics;

/**
 * qaio_loop_metrics_get: snapshot the loop counters of @ctx
 * @ctx: the context
 * @m: filled in
 *
 * Any thread.
 */
void qaio_loop_metrics_get(AioContext *ctx, QaioLoopMetrics *m);

typedef struct QaioThreadPoolMetrics {
    /* Requests submitted, completed (callback run) and cancelled. */
    uint64_t submitted;
    uint64_t completed;
    uint64_t cancelled;
    /* Right now: requests waiting for a worker, running, and workers. */
    uint64_t queued;
    uint64_t running;
    uint64_t threads;
    /*
     * Time requests spent queued before a worker picked them up, summed
     * over all picked requests, and the longest single wait.
     */
    uint64_t wait_ns;
    uint64_t wait_max_ns;
} QaioThreadPoolMetrics;

/**
 * qaio_thread_pool_metrics_get: snapshot the thread pool counters of @ctx
 * @ctx: the context
 * @m: filled in (all zero when the context has no pool yet)
 *
 * Any thread.
 *
 * Returns: true if @ctx has a thread pool.
 */
bool qaio_thread_pool_metrics_get(AioContext *ctx, QaioThreadPoolMetrics *m);

#endif /* QAIO_METRICS_H */
