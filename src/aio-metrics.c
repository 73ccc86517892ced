/*
 * aio-metrics.c: snapshots of the loop counters (qaio/metrics.h).
 *
 * The counters themselves are bumped where the work happens (aio-posix.c,
 * aio-gsource.c, aio-bh.c, aio-adaptive-poll.c, timer.c) by the home
 * thread alone; this file only reads them.
 *
 * Threading: any thread, while the context is alive.
 */
#include "qemu/osdep.h"
#include "aio-int.h"
#include "timer-int.h"
#include "qaio/metrics.h"

static uint64_t aio_counter_read(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void qaio_loop_metrics_get(AioContext *ctx, QaioLoopMetrics *m)
{
    const AioLoopCounters *c = &aio_priv(ctx)->metrics;
    int type;

    *m = (QaioLoopMetrics) {
        .iterations = aio_counter_read(&c->iterations),
        .bh_calls = aio_counter_read(&c->bh_calls),
        .fd_dispatches = aio_counter_read(&c->fd_dispatches),
        .blocking_waits = aio_counter_read(&c->blocking_waits),
        .blocked_ns = aio_counter_read(&c->blocked_ns),
        .poll_ns = aio_counter_read(&c->poll_ns),
        .poll_hits = aio_counter_read(&c->poll_hits),
        .poll_misses = aio_counter_read(&c->poll_misses),
    };
    for (type = 0; type < QEMU_CLOCK_MAX; type++) {
        m->timers_fired += aio_counter_read(&ctx->tlg.tl[type]->fired);
    }
}
