/*
 * test-metrics.c: the loop counters of qaio/metrics.h count exactly what
 * ran, through aio_poll() and through the GSource, and can be read from
 * another thread while the loop runs.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qaio/metrics.h"
#include "block/thread-pool.h"

static void count_cb(void *opaque)
{
    (*(int *)opaque)++;
}

static AioContext *new_ctx(void)
{
    return aio_context_new(&error_abort);
}

static void test_fresh_context_is_zero(void)
{
    AioContext *ctx = new_ctx();
    QaioLoopMetrics m;

    qaio_loop_metrics_get(ctx, &m);
    g_assert_cmpuint(m.iterations, ==, 0);
    g_assert_cmpuint(m.bh_calls, ==, 0);
    g_assert_cmpuint(m.fd_dispatches, ==, 0);
    g_assert_cmpuint(m.timers_fired, ==, 0);
    g_assert_cmpuint(m.blocking_waits, ==, 0);
    g_assert_cmpuint(m.poll_hits + m.poll_misses, ==, 0);
    aio_context_unref(ctx);
}

static void test_bhs_and_iterations(void)
{
    AioContext *ctx = new_ctx();
    QEMUBH *bh[3];
    QaioLoopMetrics m;
    int runs = 0;
    int i;

    for (i = 0; i < 3; i++) {
        bh[i] = aio_bh_new(ctx, count_cb, &runs);
        qemu_bh_schedule(bh[i]);
    }
    /* A cancelled BH does not run and is not counted. */
    qemu_bh_cancel(bh[2]);
    aio_bh_schedule_oneshot(ctx, count_cb, &runs);

    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(runs, ==, 3);
    g_assert_false(aio_poll(ctx, false));

    qaio_loop_metrics_get(ctx, &m);
    g_assert_cmpuint(m.iterations, ==, 2);
    g_assert_cmpuint(m.bh_calls, ==, 3);
    g_assert_cmpuint(m.fd_dispatches, ==, 0);
    /* Neither call could block: nothing counted as a blocking wait. */
    g_assert_cmpuint(m.blocking_waits, ==, 0);

    for (i = 0; i < 3; i++) {
        qemu_bh_delete(bh[i]);
    }
    aio_poll(ctx, false);
    aio_context_unref(ctx);
}

static void test_fd_dispatch_and_blocking_wait(void)
{
    AioContext *ctx = new_ctx();
    EventNotifier e;
    QaioLoopMetrics m;
    int reads = 0;
    int i;

    g_assert_cmpint(event_notifier_init(&e, false), ==, 0);
    aio_set_fd_handler(ctx, event_notifier_get_fd(&e), count_cb, NULL,
                       NULL, NULL, &reads);
    /* Consume the notification of the handler change. */
    g_assert_false(aio_poll(ctx, false));

    for (i = 0; i < 4; i++) {
        g_assert_cmpint(event_notifier_set(&e), ==, 0);
        /* Nothing else pending: the wait may block, and returns at once. */
        g_assert_true(aio_poll(ctx, true));
        g_assert_true(event_notifier_test_and_clear(&e));
    }
    g_assert_cmpint(reads, ==, 4);

    /* aio_notify() wakes the loop but is not an fd dispatch. */
    aio_notify(ctx);
    aio_poll(ctx, false);

    qaio_loop_metrics_get(ctx, &m);
    g_assert_cmpuint(m.fd_dispatches, ==, 4);
    g_assert_cmpuint(m.blocking_waits, ==, 4);
    g_assert_cmpuint(m.iterations, ==, 6);

    aio_set_fd_handler(ctx, event_notifier_get_fd(&e), NULL, NULL, NULL,
                       NULL, NULL);
    event_notifier_cleanup(&e);
    aio_context_unref(ctx);
}

static void test_timers_fired(void)
{
    AioContext *ctx = new_ctx();
    QEMUTimer timers[5];
    QaioLoopMetrics m;
    int fired = 0;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int i;

    for (i = 0; i < 5; i++) {
        aio_timer_init(ctx, &timers[i], QEMU_CLOCK_REALTIME, SCALE_NS,
                       count_cb, &fired);
        /* Already expired: the next iteration runs them all. */
        timer_mod(&timers[i], now - 1 - i);
    }
    /* A timer armed far in the future does not fire and is not counted. */
    timer_mod(&timers[4], now + 3600 * NANOSECONDS_PER_SECOND);

    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(fired, ==, 4);
    qaio_loop_metrics_get(ctx, &m);
    g_assert_cmpuint(m.timers_fired, ==, 4);

    for (i = 0; i < 5; i++) {
        timer_del(&timers[i]);
    }
    aio_context_unref(ctx);
}

typedef struct {
    bool ready;
    int polled_ready;
} PollState;

static bool poll_fn(void *opaque)
{
    PollState *s = opaque;

    return s->ready;
}

static void poll_ready_fn(void *opaque)
{
    PollState *s = opaque;

    s->ready = false;
    s->polled_ready++;
}

static void poll_read_fn(void *opaque)
{
    PollState *s = opaque;

    s->ready = false;
}

/*
 * With adaptive polling on, an iteration that finds its event by polling
 * counts a hit; the first (blocking) iteration only sizes the window.  The
 * handler keeps QEMU's contract: io_poll reports exactly what the fd would.
 */
static void test_poll_hit(void)
{
    AioContext *ctx = new_ctx();
    EventNotifier e;
    PollState s = { 0 };
    QaioLoopMetrics m;

    g_assert_cmpint(event_notifier_init(&e, false), ==, 0);
    /* A generous window, so that the first wait always makes it grow. */
    aio_context_set_poll_params(ctx, 10 * NANOSECONDS_PER_SECOND, 2, 2,
                                &error_abort);
    aio_set_fd_handler(ctx, event_notifier_get_fd(&e), poll_read_fn, NULL,
                       poll_fn, poll_ready_fn, &s);
    g_assert_false(aio_poll(ctx, false));

    /* Iteration 1: the window is 0, so the kernel reports the fd. */
    s.ready = true;
    event_notifier_set(&e);
    g_assert_true(aio_poll(ctx, true));
    g_assert_true(event_notifier_test_and_clear(&e));
    g_assert_false(s.ready);

    /* Iteration 2: the handler reports work while the loop polls. */
    s.ready = true;
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(s.polled_ready, ==, 1);

    qaio_loop_metrics_get(ctx, &m);
    g_assert_cmpuint(m.poll_hits, ==, 1);
    g_assert_cmpuint(m.poll_misses, ==, 0);
    g_assert_cmpuint(m.fd_dispatches, ==, 2);
    g_assert_cmpuint(m.blocking_waits, ==, 1);

    aio_set_fd_handler(ctx, event_notifier_get_fd(&e), NULL, NULL, NULL,
                       NULL, NULL);
    event_notifier_cleanup(&e);
    aio_context_unref(ctx);
}

/* A context driven by GLib counts the same way. */
static void test_gsource_counts(void)
{
    AioContext *ctx = new_ctx();
    GMainContext *gctx = g_main_context_new();
    GSource *src = aio_get_g_source(ctx);
    QaioLoopMetrics m;
    int runs = 0;

    g_source_attach(src, gctx);
    g_source_unref(src);

    aio_bh_schedule_oneshot(ctx, count_cb, &runs);
    aio_bh_schedule_oneshot(ctx, count_cb, &runs);
    while (runs < 2) {
        g_main_context_iteration(gctx, true);
    }
    qaio_loop_metrics_get(ctx, &m);
    g_assert_cmpuint(m.bh_calls, ==, 2);
    g_assert_cmpuint(m.iterations, >=, 1);

    g_source_destroy(&ctx->source);
    g_main_context_unref(gctx);
    aio_context_unref(ctx);
}

/*
 * Snapshots from another thread while the home thread counts: each field
 * only grows, and the final snapshot is exact.  ThreadSanitizer checks the
 * accesses.
 */
#define READER_BHS 20000

typedef struct {
    AioContext *ctx;
    bool stop;
    uint64_t snapshots;
} ReaderState;

static void *reader_fn(void *opaque)
{
    ReaderState *r = opaque;
    QaioLoopMetrics prev = { 0 };

    while (!qatomic_read(&r->stop)) {
        QaioLoopMetrics m;

        qaio_loop_metrics_get(r->ctx, &m);
        g_assert_cmpuint(m.iterations, >=, prev.iterations);
        g_assert_cmpuint(m.bh_calls, >=, prev.bh_calls);
        g_assert_cmpuint(m.bh_calls, <=, READER_BHS);
        prev = m;
        r->snapshots++;
    }
    return NULL;
}

static AioContext *reader_ctx;

static void resched_local_cb(void *opaque)
{
    int *left = opaque;

    if (--*left > 0) {
        aio_bh_schedule_oneshot(reader_ctx, resched_local_cb, left);
    }
}

static void test_read_from_other_thread(void)
{
    ReaderState r = { .ctx = new_ctx() };
    QemuThread reader;
    QaioLoopMetrics m;
    int left = READER_BHS;

    reader_ctx = r.ctx;
    qemu_thread_create(&reader, "metrics-reader", reader_fn, &r,
                       QEMU_THREAD_JOINABLE);
    aio_bh_schedule_oneshot(r.ctx, resched_local_cb, &left);
    while (left > 0) {
        aio_poll(r.ctx, true);
    }
    qatomic_set(&r.stop, true);
    qemu_thread_join(&reader);

    qaio_loop_metrics_get(r.ctx, &m);
    g_assert_cmpuint(m.bh_calls, ==, READER_BHS);
    g_assert_cmpuint(m.iterations, ==, READER_BHS);
    aio_context_unref(r.ctx);
}

/* ---- Thread pool metrics ---------------------------------------------- */

typedef struct {
    QemuSemaphore started;
    QemuSemaphore release;
} BlockingJob;

static int blocking_fn(void *opaque)
{
    BlockingJob *j = opaque;

    qemu_sem_post(&j->started);
    qemu_sem_wait(&j->release);
    return 7;
}

static int quick_fn(void *opaque)
{
    return 1;
}

static void pool_cb(void *opaque, int ret)
{
    int *results = opaque;

    results[ret == -ECANCELED ? 0 : 1]++;
}

/*
 * One worker, held busy: the queue depth, the running count and the
 * cancellations are exact; afterwards every request is accounted for.
 */
static void test_thread_pool_counts(void)
{
    AioContext *ctx = new_ctx();
    QaioThreadPoolMetrics m;
    BlockingJob job;
    BlockAIOCB *acb[3];
    int results[2] = { 0, 0 };
    int i;

    g_assert_false(qaio_thread_pool_metrics_get(ctx, &m));
    g_assert_cmpuint(m.submitted, ==, 0);

    qemu_set_current_aio_context(ctx);
    aio_context_set_thread_pool_params(ctx, 0, 1, &error_abort);
    qemu_sem_init(&job.started, 0);
    qemu_sem_init(&job.release, 0);

    thread_pool_submit_aio(blocking_fn, &job, pool_cb, results);
    qemu_sem_wait(&job.started);
    for (i = 0; i < 3; i++) {
        acb[i] = thread_pool_submit_aio(quick_fn, NULL, pool_cb, results);
    }

    g_assert_true(qaio_thread_pool_metrics_get(ctx, &m));
    g_assert_cmpuint(m.submitted, ==, 4);
    g_assert_cmpuint(m.running, ==, 1);
    g_assert_cmpuint(m.queued, ==, 3);
    g_assert_cmpuint(m.threads, ==, 1);
    g_assert_cmpuint(m.completed, ==, 0);

    bdrv_aio_cancel_async(acb[0]);
    bdrv_aio_cancel_async(acb[2]);
    g_assert_true(qaio_thread_pool_metrics_get(ctx, &m));
    g_assert_cmpuint(m.cancelled, ==, 2);
    g_assert_cmpuint(m.queued, ==, 1);

    qemu_sem_post(&job.release);
    while (results[0] + results[1] < 4) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(results[0], ==, 2);
    g_assert_cmpint(results[1], ==, 2);

    g_assert_true(qaio_thread_pool_metrics_get(ctx, &m));
    g_assert_cmpuint(m.submitted, ==, 4);
    g_assert_cmpuint(m.completed, ==, 4);
    g_assert_cmpuint(m.cancelled, ==, 2);
    g_assert_cmpuint(m.queued, ==, 0);
    g_assert_cmpuint(m.running, ==, 0);
    /* Two requests went through the queue; the longest wait is in the sum. */
    g_assert_cmpuint(m.wait_max_ns, <=, m.wait_ns);

    qemu_sem_destroy(&job.started);
    qemu_sem_destroy(&job.release);
    aio_context_unref(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/metrics/fresh-context-is-zero",
                    test_fresh_context_is_zero);
    g_test_add_func("/metrics/bhs-and-iterations", test_bhs_and_iterations);
    g_test_add_func("/metrics/fd-dispatch-and-blocking-wait",
                    test_fd_dispatch_and_blocking_wait);
    g_test_add_func("/metrics/timers-fired", test_timers_fired);
    g_test_add_func("/metrics/poll-hit", test_poll_hit);
    g_test_add_func("/metrics/gsource-counts", test_gsource_counts);
    g_test_add_func("/metrics/read-from-other-thread",
                    test_read_from_other_thread);
    g_test_add_func("/metrics/thread-pool-counts", test_thread_pool_counts);
    return g_test_run();
}
