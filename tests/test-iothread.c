/*
 * test-iothread.c: IOThreads (qaio/iothread.h).
 *
 * Covers creation and its errors (names, options, nothing left behind),
 * the defaults, the thread's current context and name, stopping (idle and
 * blocked, busy with a self-rescheduling BH, concurrently, from another
 * IOThread, and the forbidden stop from the IOThread itself), what happens
 * to work queued before and after a stop, the GMainContext mode (from the
 * start and switched on later), a million BHs over four IOThreads, and a
 * create/destroy churn with BHs and timers in flight.  Registered with
 * 'fdmon': meson runs it with QAIO_FDMON=poll and =epoll.
 *
 * Threading: the main thread drives every case; the IOThreads run the
 * callbacks.  Waits use semaphores, or spin with g_thread_yield() under a
 * watchdog that aborts when nothing moves for WATCHDOG_MS; nothing sleeps.
 */
#include "qemu/osdep.h"
#include "qaio/iothread.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/event_notifier.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "thread-probe.h"
#include "proc-count.h"
#include <sys/resource.h>

/* ---- Hang detector ----------------------------------------------------- */

/*
 * Aborts if wd_progress does not move for WATCHDOG_MS: a lost wake-up or a
 * stop that never completes would otherwise hang until meson's timeout.
 * Not a timing assertion: healthy runs move it many times a second.
 */
#define WATCHDOG_MS 20000

#include "watchdog.h"

/*
 * Spin until @cond holds, yielding to the other threads; the watchdog
 * catches a condition that never comes true.
 */
#define SPIN_UNTIL(cond)                                \
    do {                                                \
        unsigned long spins_ = 0;                       \
        while (!(cond)) {                               \
            g_thread_yield();                           \
            if (++spins_ % 1024 == 0) {                 \
                progress();                             \
            }                                           \
        }                                               \
    } while (0)

/* ---- Helpers ------------------------------------------------------------ */

/*
 * A joined thread's task can linger in /proc for a moment after
 * pthread_join() returns (the kernel clears the tid before it reaps the
 * task), so wait, with a cap, for it to disappear.
 */
static bool thread_gone(int tid)
{
    int i;

    for (i = 0; i < 1000000; i++) {
        char state = thread_probe_state(tid);

        if (state == 0) {
            return true;
        }
        g_thread_yield();
    }
    return false;
}

/*
 * Likewise for the thread count to come down to @n (or below: a thread of
 * the previous test may have been lingering when @n was counted).
 */
static bool threads_at_most(int n)
{
    int i;

    for (i = 0; i < 1000000; i++) {
        if (count_threads() <= n) {
            return true;
        }
        g_thread_yield();
    }
    return false;
}

static IOThread *new_iothread(const char *name, bool run_gcontext)
{
    IOThreadOptions opts = IOTHREAD_OPTIONS_DEFAULT;
    Error *err = NULL;
    IOThread *iothread;

    opts.run_gcontext = run_gcontext;
    iothread = iothread_create_full(name, &opts, &err);
    g_assert_null(err);
    g_assert_nonnull(iothread);
    return iothread;
}

/* What a callback saw about the thread it ran in. */
typedef struct Probe {
    AioContext *ctx;                /* qemu_get_current_aio_context() */
    GMainContext *thread_default;   /* g_main_context_get_thread_default() */
    int tid;
    int runs;
    QemuSemaphore done;
    /*
     * Set last by probe_init().  A probe may reach the IOThread through
     * GLib (g_source_attach), whose locks ThreadSanitizer cannot see in
     * the uninstrumented libglib; this release/acquire pair shows it that
     * the initialisation happens before the callback.
     */
    bool armed;
} Probe;

static void probe_init(Probe *p)
{
    *p = (Probe){ .tid = -1 };
    qemu_sem_init(&p->done, 0);
    qatomic_store_release(&p->armed, true);
}

static void probe_record(Probe *p)
{
    g_assert_true(qatomic_load_acquire(&p->armed));
    p->ctx = qemu_get_current_aio_context();
    p->thread_default = g_main_context_get_thread_default();
    p->tid = qemu_get_thread_id();
    p->runs++;
    qemu_sem_post(&p->done);
}

static void probe_bh(void *opaque)
{
    probe_record(opaque);
}

static gboolean probe_gsource_cb(gpointer opaque)
{
    probe_record(opaque);
    return G_SOURCE_REMOVE;
}

static void probe_timer_cb(void *opaque)
{
    probe_record(opaque);
}

/* Run a oneshot BH in @iothread and return what it saw in @p. */
static void probe_iothread(IOThread *iothread, Probe *p)
{
    probe_init(p);
    aio_bh_schedule_oneshot(iothread_get_aio_context(iothread), probe_bh, p);
    sem_wait_or_abort(&p->done, "BH run in the IOThread");
    qemu_sem_destroy(&p->done);
}

/* Attach @source with a probe callback to @gctx and wait for it to fire. */
static void probe_gsource(GMainContext *gctx, GSource *source, Probe *p)
{
    probe_init(p);
    g_source_set_callback(source, probe_gsource_cb, p, NULL);
    g_source_attach(source, gctx);
    g_source_unref(source);
    sem_wait_or_abort(&p->done, "GSource dispatch in the IOThread");
    qemu_sem_destroy(&p->done);
}

static void count_bh(void *opaque)
{
    qatomic_inc((int *)opaque);
}

/* ---- Creation ----------------------------------------------------------- */

static void test_create_destroy(void)
{
    int threads = count_threads();
    int fds = count_fds();
    IOThread *iothread = new_iothread("worker", false);
    AioContext *ctx = iothread_get_aio_context(iothread);
    int tid = iothread_get_thread_id(iothread);
    g_autofree char *comm = thread_probe_comm(tid);

    g_assert_nonnull(ctx);
    g_assert_cmpstr(iothread_get_name(iothread), ==, "worker");
    g_assert_cmpint(tid, >, 0);
    g_assert_cmpint(tid, !=, qemu_get_thread_id());
    g_assert_cmpstr(comm, ==, "IO worker");
    g_assert_true(iothread_by_name("worker") == iothread);
    g_assert_cmpint(thread_probe_state(tid), !=, 0);

    iothread_destroy(iothread);
    g_assert_null(iothread_by_name("worker"));
    g_assert_true(thread_gone(tid));
    g_assert_true(threads_at_most(threads));
    g_assert_cmpint(count_fds(), ==, fds);

    iothread_destroy(NULL);
}

static void test_thread_name_truncated(void)
{
    IOThread *iothread = new_iothread("a-rather-long-iothread-name", false);
    g_autofree char *comm =
        thread_probe_comm(iothread_get_thread_id(iothread));

    /* "IO " plus the name, cut at the 15 characters Linux keeps. */
    g_assert_cmpstr(comm, ==, "IO a-rather-lon");
    g_assert_cmpstr(iothread_get_name(iothread), ==,
                    "a-rather-long-iothread-name");
    iothread_destroy(iothread);
}

static void test_name_errors(void)
{
    Error *err = NULL;
    IOThread *first;

    g_assert_null(iothread_create(NULL, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(error_get_pretty(err), "non-empty name"));
    error_free(err);
    err = NULL;

    g_assert_null(iothread_create("", &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;

    first = new_iothread("twin", false);
    g_assert_null(iothread_create("twin", &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(error_get_pretty(err),
                            "an IOThread named 'twin' already exists"));
    error_free(err);
    err = NULL;
    g_assert_true(iothread_by_name("twin") == first);

    /* A stopped IOThread keeps its name until it is destroyed. */
    iothread_stop(first);
    g_assert_null(iothread_create("twin", &err));
    error_free(err);
    err = NULL;
    iothread_destroy(first);

    first = new_iothread("twin", false);
    iothread_destroy(first);
    g_assert_null(iothread_by_name(NULL));
}

static void test_poll_defaults(void)
{
    IOThread *iothread = iothread_create("defaults", &error_abort);
    AioContext *ctx = iothread_get_aio_context(iothread);

    g_assert_cmpint(qatomic_read(&ctx->poll_max_ns), ==, 32768);
    g_assert_cmpint(qatomic_read(&ctx->poll_grow), ==, 2);
    g_assert_cmpint(qatomic_read(&ctx->poll_shrink), ==, 2);
    g_assert_cmpint(qatomic_read(&ctx->aio_max_batch), ==, 0);
    g_assert_cmpint(qatomic_read(&ctx->thread_pool_min), ==, 0);
    g_assert_cmpint(qatomic_read(&ctx->thread_pool_max), ==, 64);
    iothread_destroy(iothread);
}

static void test_options_applied(void)
{
    IOThreadOptions opts = IOTHREAD_OPTIONS_DEFAULT;
    IOThread *iothread;
    AioContext *ctx;

    opts.poll_max_ns = 1000;
    opts.poll_grow = 3;
    opts.poll_shrink = 4;
    opts.aio_max_batch = 16;
    opts.thread_pool_min = 2;
    opts.thread_pool_max = 8;
    iothread = iothread_create_full("tuned", &opts, &error_abort);
    ctx = iothread_get_aio_context(iothread);

    g_assert_cmpint(qatomic_read(&ctx->poll_max_ns), ==, 1000);
    g_assert_cmpint(qatomic_read(&ctx->poll_grow), ==, 3);
    g_assert_cmpint(qatomic_read(&ctx->poll_shrink), ==, 4);
    g_assert_cmpint(qatomic_read(&ctx->aio_max_batch), ==, 16);
    g_assert_cmpint(qatomic_read(&ctx->thread_pool_min), ==, 2);
    g_assert_cmpint(qatomic_read(&ctx->thread_pool_max), ==, 8);
    iothread_destroy(iothread);

    /* Polling off is a valid choice. */
    opts = IOTHREAD_OPTIONS_DEFAULT;
    opts.poll_max_ns = 0;
    iothread = iothread_create_full("no-poll", &opts, &error_abort);
    g_assert_cmpint(iothread_get_aio_context(iothread)->poll_max_ns, ==, 0);
    iothread_destroy(iothread);
}

typedef struct BadOptions {
    const char *what;
    IOThreadOptions opts;
    const char *message;            /* part of the error message */
} BadOptions;

static void test_options_errors(void)
{
    static const IOThreadOptions zeroed;
    const BadOptions cases[] = {
        { "poll_max_ns < 0", IOTHREAD_OPTIONS_DEFAULT, "must not be negative" },
        { "poll_grow < 0", IOTHREAD_OPTIONS_DEFAULT, "must not be negative" },
        { "poll_shrink < 0", IOTHREAD_OPTIONS_DEFAULT, "must not be negative" },
        { "aio_max_batch < 0", IOTHREAD_OPTIONS_DEFAULT, "aio_max_batch" },
        { "thread_pool_min < 0", IOTHREAD_OPTIONS_DEFAULT,
          "invalid thread pool size" },
        { "thread_pool_max 0", IOTHREAD_OPTIONS_DEFAULT,
          "invalid thread pool size" },
        { "thread_pool_min > max", IOTHREAD_OPTIONS_DEFAULT,
          "invalid thread pool size" },
        { "zeroed struct", zeroed, "invalid thread pool size" },
    };
    BadOptions bad[G_N_ELEMENTS(cases)];
    int threads = count_threads();
    int fds = count_fds();
    unsigned i;
    int gcontext;

    memcpy(bad, cases, sizeof(bad));
    bad[0].opts.poll_max_ns = -1;
    bad[1].opts.poll_grow = -1;
    bad[2].opts.poll_shrink = -1;
    bad[3].opts.aio_max_batch = -1;
    bad[4].opts.thread_pool_min = -1;
    bad[5].opts.thread_pool_max = 0;
    bad[6].opts.thread_pool_min = 5;
    bad[6].opts.thread_pool_max = 4;

    for (gcontext = 0; gcontext < 2; gcontext++) {
        for (i = 0; i < G_N_ELEMENTS(bad); i++) {
            Error *err = NULL;
            IOThread *iothread;

            bad[i].opts.run_gcontext = gcontext;
            iothread = iothread_create_full("bad", &bad[i].opts, &err);
            g_test_message("%s%s: %s", bad[i].what,
                           gcontext ? " (run_gcontext)" : "",
                           err ? error_get_pretty(err) : "no error");
            g_assert_null(iothread);
            g_assert_nonnull(err);
            g_assert_nonnull(strstr(error_get_pretty(err), bad[i].message));
            error_free(err);

            /* Nothing left behind, and the name was never taken. */
            g_assert_cmpint(count_threads(), <=, threads);
            g_assert_cmpint(count_fds(), ==, fds);
            g_assert_null(iothread_by_name("bad"));
        }
    }

    iothread_destroy(iothread_create("bad", &error_abort));
    g_assert_true(threads_at_most(threads));
    g_assert_cmpint(count_fds(), ==, fds);
}

/* Exactly @n more descriptors can be opened. */
static void assert_free_fds(unsigned n)
{
    g_autofree int *fds = g_new(int, n + 1);
    unsigned i;

    for (i = 0; i < n; i++) {
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(fds[i], >=, 0);
    }
    g_assert_cmpint(open("/dev/null", O_RDONLY | O_CLOEXEC), ==, -1);
    g_assert_cmpint(errno, ==, EMFILE);
    for (i = 0; i < n; i++) {
        close(fds[i]);
    }
}

static void fd_exhaustion_body(void)
{
    IOThreadOptions gopts = IOTHREAD_OPTIONS_DEFAULT;
    g_autoptr(GArray) fds = g_array_new(false, false, sizeof(int));
    bool saw_gcontext_error = false;
    IOThread *iothread = NULL;
    struct rlimit old, lim;
    Error *err = NULL;
    unsigned freed;
    Probe p;

    /*
     * GLib's global default context takes a descriptor for good when it is
     * first used (iothread_create_full() makes sure it exists); have it
     * before counting descriptors.
     */
    g_main_context_default();

    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &old), ==, 0);
    lim = old;
    lim.rlim_cur = MIN(old.rlim_max, (rlim_t)256);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &lim), ==, 0);
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
            g_assert_cmpint(errno, ==, EMFILE);
            break;
        }
        g_array_append_val(fds, fd);
    }

    g_assert_null(iothread_create("starved", &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    gopts.run_gcontext = true;
    g_assert_null(iothread_create_full("starved", &gopts, &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    assert_free_fds(0);

    /*
     * Free one descriptor at a time: at some point the AioContext gets
     * what it needs and the GMainContext does not; every failure gives
     * back all it took.
     */
    for (freed = 1; freed <= 8 && !iothread; freed++) {
        close(g_array_index(fds, int, fds->len - 1));
        g_array_set_size(fds, fds->len - 1);
        iothread = iothread_create_full("starved", &gopts, &err);
        if (!iothread) {
            g_test_message("%u free: %s", freed, error_get_pretty(err));
            if (strstr(error_get_pretty(err), "GMainContext")) {
                saw_gcontext_error = true;
            }
            error_free(err);
            err = NULL;
            assert_free_fds(freed);
            g_assert_null(iothread_by_name("starved"));
        }
    }
    g_assert_nonnull(iothread);
    g_assert_true(saw_gcontext_error);

    probe_gsource(iothread_get_g_main_context(iothread), g_idle_source_new(),
                  &p);
    g_assert_cmpint(p.runs, ==, 1);
    iothread_destroy(iothread);
    assert_free_fds(freed - 1);

    while (fds->len) {
        close(g_array_index(fds, int, fds->len - 1));
        g_array_set_size(fds, fds->len - 1);
    }
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);
}

/* Running out of descriptors is an Error, and leaks nothing. */
static void test_fd_exhaustion(void)
{
    /* The lowered limit must not outlive the case. */
    if (g_test_subprocess()) {
        fd_exhaustion_body();
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
}

/* ---- The thread --------------------------------------------------------- */

static void test_current_context(void)
{
    IOThread *iothread = new_iothread("current", false);
    AioContext *ctx = iothread_get_aio_context(iothread);
    Probe p;

    probe_iothread(iothread, &p);
    g_assert_true(p.ctx == ctx);
    g_assert_cmpint(p.tid, ==, iothread_get_thread_id(iothread));
    g_assert_cmpint(p.tid, !=, qemu_get_thread_id());
    g_assert_cmpint(p.runs, ==, 1);
    /* Not ours: the main thread has no current context (and no BQL). */
    g_assert_null(qemu_get_current_aio_context());
    iothread_destroy(iothread);
}

#define NOTIFY_ROUNDS 200

/*
 * aio_notify() from the main thread ends the wait of an IOThread asleep in
 * aio_poll() (or in GLib's poll): "notified" is cleared only by the
 * IOThread's aio_notify_accept(), which runs once its wait is over.
 */
static void notify_blocked(bool run_gcontext)
{
    IOThread *iothread = new_iothread("notify", run_gcontext);
    AioContext *ctx = iothread_get_aio_context(iothread);
    int tid = iothread_get_thread_id(iothread);
    int round;

    watchdog_start("notify");
    for (round = 0; round < NOTIFY_ROUNDS; round++) {
        g_assert_true(thread_probe_wait_sleeping(tid));
        progress();
        aio_notify(ctx);
        SPIN_UNTIL(!qatomic_read(&ctx->notified));
    }
    /* And it goes back to sleep instead of spinning. */
    g_assert_true(thread_probe_wait_sleeping(tid));
    watchdog_stop();
    iothread_destroy(iothread);
}

static void test_notify_blocked(void)
{
    notify_blocked(false);
}

static void test_notify_blocked_gcontext(void)
{
    notify_blocked(true);
}

/* ---- Stopping ----------------------------------------------------------- */

/* An IOThread asleep with nothing but its own notifier registered. */
static void stop_blocked(bool run_gcontext)
{
    int threads = count_threads();
    IOThread *iothread = new_iothread("idle", run_gcontext);
    int tid = iothread_get_thread_id(iothread);

    watchdog_start("stop of a blocked IOThread");
    g_assert_true(thread_probe_wait_sleeping(tid));
    iothread_stop(iothread);
    g_assert_true(thread_gone(tid));
    iothread_stop(iothread);            /* idempotent */
    watchdog_stop();

    /* The context outlives the thread until destroy. */
    g_assert_nonnull(iothread_get_aio_context(iothread));
    g_assert_true(iothread_by_name("idle") == iothread);
    iothread_destroy(iothread);
    g_assert_true(threads_at_most(threads));
}

static void test_stop_blocked(void)
{
    stop_blocked(false);
}

static void test_stop_blocked_gcontext(void)
{
    stop_blocked(true);
}

/* Many create/stop cycles, each stopping the thread right after start. */
static void test_stop_at_once(void)
{
    int i;

    watchdog_start("stop at once");
    for (i = 0; i < 200; i++) {
        IOThread *iothread = new_iothread("brief", i % 2);

        iothread_stop(iothread);
        iothread_destroy(iothread);
        progress();
    }
    watchdog_stop();
}

typedef struct Resched {
    QEMUBH *bh;
    int runs;                       /* atomic */
} Resched;

static void resched_cb(void *opaque)
{
    Resched *r = opaque;

    qatomic_inc(&r->runs);
    qemu_bh_schedule(r->bh);
}

/* The loop checks for a stop every iteration, even when never idle. */
static void stop_busy(bool run_gcontext)
{
    IOThread *iothread = new_iothread("busy", run_gcontext);
    AioContext *ctx = iothread_get_aio_context(iothread);
    Resched r = { 0 };
    int runs;

    r.bh = aio_bh_new(ctx, resched_cb, &r);
    qemu_bh_schedule(r.bh);

    watchdog_start("stop of a busy IOThread");
    SPIN_UNTIL(qatomic_read(&r.runs) >= 1000);
    iothread_stop(iothread);
    watchdog_stop();

    runs = qatomic_read(&r.runs);
    g_assert_cmpint(runs, >=, 1000);
    /* Still scheduled, but nobody runs it any more. */
    qemu_bh_delete(r.bh);
    iothread_destroy(iothread);
    g_assert_cmpint(qatomic_read(&r.runs), ==, runs);
}

static void test_stop_busy(void)
{
    stop_busy(false);
}

static void test_stop_busy_gcontext(void)
{
    stop_busy(true);
}

#define EARLY_BHS 1000

/*
 * BHs scheduled before iothread_stop() run before it returns; BHs scheduled
 * afterwards never run and are freed with the context.
 */
static void queued_work(bool run_gcontext)
{
    IOThread *iothread = new_iothread("queued", run_gcontext);
    AioContext *ctx = iothread_get_aio_context(iothread);
    int early = 0;
    int late = 0;
    QEMUBH *late_bh = aio_bh_new(ctx, count_bh, &late);
    int i;

    for (i = 0; i < EARLY_BHS; i++) {
        aio_bh_schedule_oneshot(ctx, count_bh, &early);
    }
    iothread_stop(iothread);
    g_assert_cmpint(qatomic_read(&early), ==, EARLY_BHS);

    for (i = 0; i < EARLY_BHS; i++) {
        aio_bh_schedule_oneshot(ctx, count_bh, &late);
    }
    qemu_bh_schedule(late_bh);
    qemu_bh_delete(late_bh);
    iothread_destroy(iothread);

    g_assert_cmpint(qatomic_read(&early), ==, EARLY_BHS);
    g_assert_cmpint(qatomic_read(&late), ==, 0);
}

static void test_queued_work(void)
{
    queued_work(false);
}

static void test_queued_work_gcontext(void)
{
    queued_work(true);
}

typedef struct StopPair {
    IOThread *target;
    QemuSemaphore done;
} StopPair;

static void stop_other_bh(void *opaque)
{
    StopPair *sp = opaque;

    iothread_stop(sp->target);
    qemu_sem_post(&sp->done);
}

/* One IOThread may stop another from its callbacks. */
static void test_stop_from_other_iothread(void)
{
    IOThread *a = new_iothread("stopper", false);
    IOThread *b = new_iothread("stopped", true);
    int b_tid = iothread_get_thread_id(b);
    StopPair sp = { .target = b };

    qemu_sem_init(&sp.done, 0);
    aio_bh_schedule_oneshot(iothread_get_aio_context(a), stop_other_bh, &sp);
    sem_wait_or_abort(&sp.done, "stop from another IOThread");
    g_assert_true(thread_gone(b_tid));

    iothread_destroy(b);
    iothread_destroy(a);
    qemu_sem_destroy(&sp.done);
}

static void *stop_thread_fn(void *opaque)
{
    iothread_stop(opaque);
    return NULL;
}

/* Concurrent stops: both return once the thread has gone. */
static void test_stop_concurrent(void)
{
    int i;

    watchdog_start("concurrent stops");
    for (i = 0; i < 100; i++) {
        IOThread *iothread = new_iothread("raced", i % 2);
        int tid = iothread_get_thread_id(iothread);
        QemuThread t1, t2;

        qemu_thread_create(&t1, "stop1", stop_thread_fn, iothread,
                           QEMU_THREAD_JOINABLE);
        qemu_thread_create(&t2, "stop2", stop_thread_fn, iothread,
                           QEMU_THREAD_JOINABLE);
        qemu_thread_join(&t1);
        g_assert_true(thread_gone(tid));
        qemu_thread_join(&t2);
        iothread_destroy(iothread);
        progress();
    }
    watchdog_stop();
}

typedef struct SelfStop {
    IOThread *iothread;
    bool destroy;
    QemuSemaphore returned;
} SelfStop;

static void self_stop_bh(void *opaque)
{
    SelfStop *ss = opaque;

    if (ss->destroy) {
        iothread_destroy(ss->iothread);
    } else {
        iothread_stop(ss->iothread);
    }
    qemu_sem_post(&ss->returned);       /* only if it did not abort */
}

static void self_stop_body(bool destroy, bool run_gcontext)
{
    SelfStop ss = { .destroy = destroy };

    ss.iothread = new_iothread("suicidal", run_gcontext);
    qemu_sem_init(&ss.returned, 0);
    aio_bh_schedule_oneshot(iothread_get_aio_context(ss.iothread),
                            self_stop_bh, &ss);
    sem_wait_or_abort(&ss.returned, "abort or return of the self-stop");
}

/* Stopping or destroying an IOThread from its own callback aborts. */
static void test_stop_self_aborts(void)
{
    static const char *const names[] = { "iothread_stop",
                                         "iothread_destroy" };
    int destroy;
    int gcontext;

    if (g_test_subprocess()) {
        const char *mode = g_getenv("SELF_STOP_MODE");

        self_stop_body(mode[0] == 'd', mode[1] == 'g');
        return;
    }
    for (destroy = 0; destroy < 2; destroy++) {
        for (gcontext = 0; gcontext < 2; gcontext++) {
            g_autofree char *pattern = g_strdup_printf(
                "*%s: IOThread 'suicidal' cannot stop itself*",
                names[destroy]);

            g_setenv("SELF_STOP_MODE", destroy ? (gcontext ? "dg" : "d-")
                                               : (gcontext ? "sg" : "s-"),
                     true);
            g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
            g_test_trap_assert_failed();
            g_test_trap_assert_stderr(pattern);
        }
    }
    g_unsetenv("SELF_STOP_MODE");
}

/* ---- GMainContext mode -------------------------------------------------- */

typedef struct FdProbe {
    EventNotifier e;
    Probe p;
} FdProbe;

static void fd_probe_read(EventNotifier *e)
{
    FdProbe *fp = container_of(e, FdProbe, e);

    event_notifier_test_and_clear(e);
    probe_record(&fp->p);
}

/*
 * With a GMainContext, GLib sources attached to it run in the IOThread
 * with it as the thread-default context, and the AioContext is still
 * served: BHs, timers and fd handlers (added from another thread while
 * GLib polls) run there too.
 */
static void check_gcontext_serves_all(IOThread *iothread)
{
    AioContext *ctx = iothread_get_aio_context(iothread);
    GMainContext *gctx = iothread_get_g_main_context(iothread);
    int tid = iothread_get_thread_id(iothread);
    QEMUTimer timer;
    FdProbe fp;
    Probe p;

    g_assert_nonnull(gctx);
    g_assert_true(iothread_get_g_main_context(iothread) == gctx);

    probe_gsource(gctx, g_idle_source_new(), &p);
    g_assert_cmpint(p.runs, ==, 1);
    g_assert_cmpint(p.tid, ==, tid);
    g_assert_true(p.ctx == ctx);
    g_assert_true(p.thread_default == gctx);

    probe_gsource(gctx, g_timeout_source_new(1), &p);
    g_assert_cmpint(p.runs, ==, 1);
    g_assert_cmpint(p.tid, ==, tid);

    probe_iothread(iothread, &p);
    g_assert_cmpint(p.tid, ==, tid);
    g_assert_true(p.ctx == ctx);
    g_assert_true(p.thread_default == gctx);

    probe_init(&p);
    aio_timer_init(ctx, &timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                   probe_timer_cb, &p);
    timer_mod(&timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
    sem_wait_or_abort(&p.done, "timer in the IOThread");
    g_assert_cmpint(p.tid, ==, tid);
    g_assert_false(timer_pending(&timer));
    timer_deinit(&timer);
    qemu_sem_destroy(&p.done);

    g_assert_cmpint(event_notifier_init(&fp.e, false), ==, 0);
    probe_init(&fp.p);
    aio_set_event_notifier(ctx, &fp.e, fd_probe_read, NULL, NULL);
    event_notifier_set(&fp.e);
    sem_wait_or_abort(&fp.p.done, "fd handler in the IOThread");
    g_assert_cmpint(fp.p.tid, ==, tid);
    aio_set_event_notifier(ctx, &fp.e, NULL, NULL, NULL);
    /* Removed from another thread: a callback may still be returning. */
    iothread_stop(iothread);
    g_assert_cmpint(fp.p.runs, ==, 1);
    event_notifier_cleanup(&fp.e);
    qemu_sem_destroy(&fp.p.done);
}

static void test_gcontext_from_start(void)
{
    IOThread *iothread = new_iothread("glib", true);

    check_gcontext_serves_all(iothread);
    iothread_destroy(iothread);
}

/* Asked for later, while the IOThread sleeps in aio_poll(). */
static void test_gcontext_later(void)
{
    IOThread *iothread = new_iothread("glib-later", false);
    Probe p;

    /* Runs through aio_poll() first. */
    probe_iothread(iothread, &p);
    g_assert_null(p.thread_default);
    g_assert_true(thread_probe_wait_sleeping(iothread_get_thread_id(iothread)));

    check_gcontext_serves_all(iothread);
    iothread_destroy(iothread);
}

typedef struct OwnGContext {
    IOThread *iothread;
    Probe p;
} OwnGContext;

static void get_own_gcontext_bh(void *opaque)
{
    OwnGContext *og = opaque;
    GMainContext *gctx = iothread_get_g_main_context(og->iothread);
    GSource *idle = g_idle_source_new();

    g_source_set_callback(idle, probe_gsource_cb, &og->p, NULL);
    g_source_attach(idle, gctx);
    g_source_unref(idle);
}

/* Asked for by the IOThread itself, from one of its callbacks. */
static void test_gcontext_from_own_callback(void)
{
    OwnGContext og;

    og.iothread = new_iothread("glib-self", false);
    probe_init(&og.p);
    aio_bh_schedule_oneshot(iothread_get_aio_context(og.iothread),
                            get_own_gcontext_bh, &og);
    sem_wait_or_abort(&og.p.done, "GSource dispatch in the IOThread");
    g_assert_cmpint(og.p.tid, ==, iothread_get_thread_id(og.iothread));
    g_assert_true(og.p.thread_default ==
                  iothread_get_g_main_context(og.iothread));
    iothread_destroy(og.iothread);
    qemu_sem_destroy(&og.p.done);
}

static gboolean count_gsource_cb(gpointer opaque)
{
    qatomic_inc((int *)opaque);
    return G_SOURCE_CONTINUE;
}

/* Sources still attached at destroy are destroyed, not run. */
static void test_gcontext_destroy_with_sources(void)
{
    IOThread *iothread = new_iothread("glib-leftover", true);
    GMainContext *gctx = iothread_get_g_main_context(iothread);
    GSource *timeout = g_timeout_source_new_seconds(3600);
    int runs = 0;

    g_source_set_callback(timeout, count_gsource_cb, &runs, NULL);
    g_source_attach(timeout, gctx);
    iothread_destroy(iothread);
    g_assert_true(g_source_is_destroyed(timeout));
    g_source_unref(timeout);
    g_assert_cmpint(runs, ==, 0);
}

/* ---- Load: a million BHs over four IOThreads ---------------------------- */

#define LOAD_IOTHREADS 4
#define LOAD_BHS_EACH 250000
/* Keep the number of queued one-shot BHs (and their memory) bounded. */
#define LOAD_MAX_QUEUED 65536

typedef struct LoadTarget {
    IOThread *iothread;
    AioContext *ctx;
    long runs;                      /* its IOThread only */
    long *total;                    /* shared, atomic */
} LoadTarget;

static void load_bh(void *opaque)
{
    LoadTarget *t = opaque;

    /* A BH runs in the IOThread of its context and nowhere else. */
    g_assert(qemu_get_current_aio_context() == t->ctx);
    t->runs++;
    qatomic_inc(t->total);
}

static void test_bh_load(void)
{
    LoadTarget targets[LOAD_IOTHREADS];
    long total = 0;
    long scheduled = 0;
    int i, j;

    for (j = 0; j < LOAD_IOTHREADS; j++) {
        g_autofree char *name = g_strdup_printf("load%d", j);

        targets[j] = (LoadTarget){
            .iothread = new_iothread(name, j == LOAD_IOTHREADS - 1),
            .total = &total,
        };
        targets[j].ctx = iothread_get_aio_context(targets[j].iothread);
    }

    watchdog_start("a million BHs");
    for (i = 0; i < LOAD_BHS_EACH; i++) {
        for (j = 0; j < LOAD_IOTHREADS; j++) {
            aio_bh_schedule_oneshot(targets[j].ctx, load_bh, &targets[j]);
        }
        scheduled += LOAD_IOTHREADS;
        if (scheduled % 4096 == 0) {
            progress();
            SPIN_UNTIL(scheduled - qatomic_read(&total) < LOAD_MAX_QUEUED);
        }
    }
    /* Everything was queued before the stop: all of it runs. */
    for (j = 0; j < LOAD_IOTHREADS; j++) {
        iothread_stop(targets[j].iothread);
        progress();
    }
    watchdog_stop();

    for (j = 0; j < LOAD_IOTHREADS; j++) {
        g_assert_cmpint(targets[j].runs, ==, LOAD_BHS_EACH);
        iothread_destroy(targets[j].iothread);
    }
    g_assert_cmpint(total, ==, (long)LOAD_IOTHREADS * LOAD_BHS_EACH);
}

/* ---- Churn: create/destroy with work in flight -------------------------- */

#define CHURN_CYCLES 200
#define CHURN_BHS 64
#define CHURN_RESCHED 100
#define CHURN_TIMERS 4

typedef struct ChurnTimer {
    QEMUTimer timer;
    int runs;                       /* atomic */
} ChurnTimer;

typedef struct Churn {
    QEMUBH *bh;
    int bh_runs;                    /* atomic */
    int oneshot_runs;               /* atomic */
    int late_runs;                  /* atomic */
    ChurnTimer timers[CHURN_TIMERS];
    int snapshot;                   /* every count at destroy */
} Churn;

static int churn_count(Churn *c)
{
    int n = qatomic_read(&c->bh_runs) + qatomic_read(&c->oneshot_runs) +
            qatomic_read(&c->late_runs);
    int k;

    for (k = 0; k < CHURN_TIMERS; k++) {
        n += qatomic_read(&c->timers[k].runs);
    }
    return n;
}

static void churn_bh_cb(void *opaque)
{
    Churn *c = opaque;

    if (qatomic_fetch_inc(&c->bh_runs) + 1 < CHURN_RESCHED) {
        qemu_bh_schedule(c->bh);
    }
}

static void churn_oneshot_cb(void *opaque)
{
    qatomic_inc(&((Churn *)opaque)->oneshot_runs);
}

static void churn_late_cb(void *opaque)
{
    qatomic_inc(&((Churn *)opaque)->late_runs);
}

static void churn_timer_cb(void *opaque)
{
    ChurnTimer *ct = opaque;

    qatomic_inc(&ct->runs);
}

/*
 * Even cycles stop first, then queue more work into the stopped context
 * and delete the BH and timers before destroying.  Odd cycles delete the
 * BH and timers while the IOThread runs them and destroy at once with
 * BHs still queued.  Cycles alternate between the aio_poll() loop, the
 * GMainContext from the start and the GMainContext asked for later.
 */
static void churn_cycle(Churn *c, int cycle)
{
    IOThread *iothread = new_iothread("churn", cycle % 3 == 1);
    AioContext *ctx = iothread_get_aio_context(iothread);
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    bool stop_first = cycle % 2 == 0;
    int k;

    if (cycle % 3 == 2) {
        iothread_get_g_main_context(iothread);
    }

    c->bh = aio_bh_new(ctx, churn_bh_cb, c);
    qemu_bh_schedule(c->bh);
    for (k = 0; k < CHURN_TIMERS; k++) {
        aio_timer_init(ctx, &c->timers[k].timer, QEMU_CLOCK_REALTIME,
                       SCALE_NS, churn_timer_cb, &c->timers[k]);
        /* Half already due, half an hour away. */
        timer_mod(&c->timers[k].timer,
                  k % 2 ? now + 1800 * NANOSECONDS_PER_SECOND : now);
    }
    for (k = 0; k < CHURN_BHS; k++) {
        aio_bh_schedule_oneshot(ctx, churn_oneshot_cb, c);
    }

    if (stop_first) {
        iothread_stop(iothread);
        for (k = 0; k < CHURN_BHS; k++) {
            aio_bh_schedule_oneshot(ctx, churn_late_cb, c);
        }
        qemu_bh_schedule(c->bh);
    }
    /* Odd cycles: the IOThread may be running these callbacks right now. */
    qemu_bh_delete(c->bh);
    for (k = 0; k < CHURN_TIMERS; k++) {
        timer_del(&c->timers[k].timer);
    }
    if (!stop_first) {
        for (k = 0; k < CHURN_BHS; k++) {
            aio_bh_schedule_oneshot(ctx, churn_oneshot_cb, c);
        }
    }
    iothread_destroy(iothread);
    c->snapshot = churn_count(c);
    /* Only now is no callback of theirs running any more. */
    for (k = 0; k < CHURN_TIMERS; k++) {
        timer_deinit(&c->timers[k].timer);
    }

    g_assert_cmpint(qatomic_read(&c->oneshot_runs), ==,
                    stop_first ? CHURN_BHS : 2 * CHURN_BHS);
    g_assert_cmpint(qatomic_read(&c->late_runs), ==, 0);
    g_assert_cmpint(qatomic_read(&c->bh_runs), <=, CHURN_RESCHED);
    for (k = 0; k < CHURN_TIMERS; k++) {
        g_assert_cmpint(qatomic_read(&c->timers[k].runs), <=, k % 2 ? 0 : 1);
    }
}

static void test_churn(void)
{
    Churn *cycles = g_new0(Churn, CHURN_CYCLES);
    int threads = count_threads();
    int fds = count_fds();
    int timers_run = 0;
    int i, k;

    watchdog_start("churn");
    for (i = 0; i < CHURN_CYCLES; i++) {
        churn_cycle(&cycles[i], i);
        progress();
    }
    watchdog_stop();

    /* Nothing ran after its IOThread was destroyed, in any cycle. */
    for (i = 0; i < CHURN_CYCLES; i++) {
        g_assert_cmpint(churn_count(&cycles[i]), ==, cycles[i].snapshot);
        for (k = 0; k < CHURN_TIMERS; k += 2) {
            timers_run += cycles[i].timers[k].runs;
        }
    }
    g_test_message("%d cycles; %d of %d due timers fired before the stop",
                   CHURN_CYCLES, timers_run, CHURN_CYCLES * CHURN_TIMERS / 2);
    g_assert_true(threads_at_most(threads));
    g_assert_cmpint(count_fds(), ==, fds);
    g_free(cycles);
}

static void *nop_thread_fn(void *opaque)
{
    return NULL;
}

int main(int argc, char **argv)
{
    QemuThread warm_up;

    g_test_init(&argc, &argv, NULL);
    init_clocks(NULL);

    /*
     * Sanitizer runtimes start a helper thread with the first
     * pthread_create(); get that over with before any case counts threads.
     */
    qemu_thread_create(&warm_up, "warm-up", nop_thread_fn, NULL,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_join(&warm_up);

    g_test_add_func("/iothread/create/destroy", test_create_destroy);
    g_test_add_func("/iothread/create/thread-name-truncated",
                    test_thread_name_truncated);
    g_test_add_func("/iothread/create/name-errors", test_name_errors);
    g_test_add_func("/iothread/create/poll-defaults", test_poll_defaults);
    g_test_add_func("/iothread/create/options-applied",
                    test_options_applied);
    g_test_add_func("/iothread/create/options-errors-leave-nothing",
                    test_options_errors);
    g_test_add_func("/iothread/create/fd-exhaustion-is-an-error",
                    test_fd_exhaustion);
    g_test_add_func("/iothread/thread/current-context", test_current_context);
    g_test_add_func("/iothread/thread/notify-wakes-blocked",
                    test_notify_blocked);
    g_test_add_func("/iothread/thread/notify-wakes-blocked-gcontext",
                    test_notify_blocked_gcontext);
    g_test_add_func("/iothread/stop/blocked", test_stop_blocked);
    g_test_add_func("/iothread/stop/blocked-gcontext",
                    test_stop_blocked_gcontext);
    g_test_add_func("/iothread/stop/right-after-create", test_stop_at_once);
    g_test_add_func("/iothread/stop/busy-rescheduling-bh", test_stop_busy);
    g_test_add_func("/iothread/stop/busy-rescheduling-bh-gcontext",
                    test_stop_busy_gcontext);
    g_test_add_func("/iothread/stop/earlier-bhs-run-later-dropped",
                    test_queued_work);
    g_test_add_func("/iothread/stop/earlier-bhs-run-later-dropped-gcontext",
                    test_queued_work_gcontext);
    g_test_add_func("/iothread/stop/from-other-iothread",
                    test_stop_from_other_iothread);
    g_test_add_func("/iothread/stop/concurrent", test_stop_concurrent);
    g_test_add_func("/iothread/stop/self-aborts", test_stop_self_aborts);
    g_test_add_func("/iothread/gcontext/from-start", test_gcontext_from_start);
    g_test_add_func("/iothread/gcontext/later", test_gcontext_later);
    g_test_add_func("/iothread/gcontext/from-own-callback",
                    test_gcontext_from_own_callback);
    g_test_add_func("/iothread/gcontext/destroy-with-sources",
                    test_gcontext_destroy_with_sources);
    g_test_add_func("/iothread/load/million-bhs-four-iothreads",
                    test_bh_load);
    g_test_add_func("/iothread/churn/create-destroy-work-in-flight",
                    test_churn);

    return g_test_run();
}
