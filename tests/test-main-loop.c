/*
 * test-main-loop.c: qemu/main-loop.h, QEMU's main loop on GLib's default
 * main context.
 *
 * After qemu_init_main_loop(), main_loop_wait() and
 * g_main_context_iteration(NULL, ...) must drive main-context BHs, fd
 * handlers and event notifiers (on the separate iohandler context) and
 * main_loop_tlg timers.  Also the current-context rules, the BQL and
 * qemu_in_main_thread().  Registered with 'fdmon' (QAIO_FDMON=poll/epoll).
 *
 * Threading: the main thread runs the loop; some cases start helper
 * threads.  Cases that must abort or print run in a subprocess.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/thread.h"

/* Cap for loops that drive the main loop until a condition holds. */
#define MAX_ITERATIONS 1000

/* Run GLib's default context until nothing more is dispatched. */
static void settle(void)
{
    int i;

    for (i = 0; i < MAX_ITERATIONS && g_main_context_iteration(NULL, false);
         i++) {
        /* keep going */
    }
    g_assert_false(g_main_context_iteration(NULL, false));
}

static void *run_in_thread(void *(*fn)(void *), void *arg)
{
    QemuThread thread;

    qemu_thread_create(&thread, "test", fn, arg, QEMU_THREAD_JOINABLE);
    return qemu_thread_join(&thread);
}

/* ---- Contexts and threads --------------------------------------------- */

static void test_contexts(void)
{
    AioContext *main_ctx = qemu_get_aio_context();
    AioContext *io_ctx = iohandler_get_aio_context();
    GSource *src;

    g_assert_nonnull(main_ctx);
    g_assert_nonnull(io_ctx);
    g_assert_true(main_ctx != io_ctx);
    g_assert_true(qemu_get_current_aio_context() == main_ctx);
    g_assert_true(iohandler_get_aio_context() == io_ctx);
    g_assert_true(qemu_in_main_thread());
    GLOBAL_STATE_CODE();
    IO_CODE();
    IO_OR_GS_CODE();

    /* Both contexts are attached to GLib's default main context. */
    src = iohandler_get_g_source();
    g_assert_true(src == &io_ctx->source);
    g_assert_true(g_source_get_context(src) == g_main_context_default());
    g_source_unref(src);
    g_assert_true(g_source_get_context(&main_ctx->source) ==
                  g_main_context_default());
}

typedef struct ThreadView {
    AioContext *current;
    AioContext *current_with_bql;
    bool in_main;
    bool in_main_with_bql;
    bool bql_locked_before;
    bool bql_locked_with_bql;
    AioContext *own;            /* set as this thread's context */
    AioContext *current_own;
    bool in_main_own;
} ThreadView;

static void *thread_view_fn(void *opaque)
{
    ThreadView *v = opaque;

    v->current = qemu_get_current_aio_context();
    v->in_main = qemu_in_main_thread();
    v->bql_locked_before = bql_locked();

    bql_lock();
    v->bql_locked_with_bql = bql_locked();
    v->current_with_bql = qemu_get_current_aio_context();
    v->in_main_with_bql = qemu_in_main_thread();
    bql_unlock();

    qemu_set_current_aio_context(v->own);
    v->current_own = qemu_get_current_aio_context();
    v->in_main_own = qemu_in_main_thread();
    return NULL;
}

static void test_other_thread_view(void)
{
    ThreadView v = { .own = aio_context_new(&error_abort) };

    run_in_thread(thread_view_fn, &v);

    g_assert_null(v.current);
    g_assert_false(v.in_main);
    g_assert_false(v.bql_locked_before);
    /* The BQL holder acts for the main loop. */
    g_assert_true(v.bql_locked_with_bql);
    g_assert_true(v.current_with_bql == qemu_get_aio_context());
    g_assert_true(v.in_main_with_bql);
    /* A thread may run its own context. */
    g_assert_true(v.current_own == v.own);
    g_assert_false(v.in_main_own);

    /* The main thread's view did not change. */
    g_assert_true(qemu_get_current_aio_context() == qemu_get_aio_context());
    aio_context_unref(v.own);
}

static void test_set_current_twice_aborts(void)
{
    if (g_test_subprocess()) {
        qemu_set_current_aio_context(qemu_get_aio_context());
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("?*");
}

static void *set_twice_fn(void *opaque)
{
    AioContext *ctx = opaque;

    qemu_set_current_aio_context(ctx);
    qemu_set_current_aio_context(ctx);
    return NULL;
}

static void test_set_current_twice_in_thread_aborts(void)
{
    if (g_test_subprocess()) {
        run_in_thread(set_twice_fn, aio_context_new(&error_abort));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("?*");
}

/* ---- The big QEMU lock ------------------------------------------------- */

#define BQL_THREADS 2
#define BQL_ROUNDS 100000

static long bql_counter;

static void *bql_increment_fn(void *opaque)
{
    int i;

    for (i = 0; i < BQL_ROUNDS; i++) {
        bql_lock();
        g_assert_true(bql_locked());
        /* Deliberately not atomic: only the lock protects it. */
        bql_counter = bql_counter + 1;
        bql_unlock();
    }
    return NULL;
}

static void test_bql(void)
{
    QemuThread threads[BQL_THREADS];
    int i;

    g_assert_false(bql_locked());
    bql_lock();
    g_assert_true(bql_locked());
    bql_unlock();
    g_assert_false(bql_locked());

    bql_counter = 0;
    for (i = 0; i < BQL_THREADS; i++) {
        qemu_thread_create(&threads[i], "bql", bql_increment_fn, NULL,
                           QEMU_THREAD_JOINABLE);
    }
    bql_increment_fn(NULL);
    for (i = 0; i < BQL_THREADS; i++) {
        qemu_thread_join(&threads[i]);
    }
    g_assert_cmpint(bql_counter, ==, (long)(BQL_THREADS + 1) * BQL_ROUNDS);
    g_assert_false(bql_locked());
}

typedef struct BQLWaiter {
    QemuSemaphore started;
    bool got_it;
} BQLWaiter;

static void *bql_waiter_fn(void *opaque)
{
    BQLWaiter *w = opaque;

    qemu_sem_post(&w->started);
    bql_lock();
    w->got_it = true;
    bql_unlock();
    /* Only this ends the main thread's wait. */
    qemu_notify_event();
    return NULL;
}

/* main_loop_wait() drops the BQL while it sleeps. */
static void test_main_loop_wait_releases_bql(void)
{
    BQLWaiter w = { .got_it = false };
    QemuThread thread;
    int i;

    settle();
    qemu_sem_init(&w.started, 0);
    bql_lock();
    qemu_thread_create(&thread, "bql-waiter", bql_waiter_fn, &w,
                       QEMU_THREAD_JOINABLE);
    qemu_sem_wait(&w.started);
    for (i = 0; i < MAX_ITERATIONS && !qatomic_read(&w.got_it); i++) {
        main_loop_wait(false);
        g_assert_true(bql_locked());
    }
    g_assert_true(qatomic_read(&w.got_it));
    bql_unlock();
    qemu_thread_join(&thread);
    qemu_sem_destroy(&w.started);
    settle();
}

/* ---- Bottom halves ------------------------------------------------------ */

typedef struct BHData {
    QEMUBH *bh;
    int n;
    MemReentrancyGuard *guard;
    bool guard_seen;
} BHData;

static void bh_cb(void *opaque)
{
    BHData *d = opaque;

    d->n++;
    if (d->guard) {
        d->guard_seen = d->guard->engaged_in_io;
    }
    g_assert_true(qemu_in_main_thread());
}

static void test_bh_main_loop_wait(void)
{
    BHData d = { 0 };

    settle();
    d.bh = qemu_bh_new(bh_cb, &d);
    qemu_bh_schedule(d.bh);
    qemu_bh_schedule(d.bh);
    main_loop_wait(true);
    g_assert_cmpint(d.n, ==, 1);
    main_loop_wait(true);
    g_assert_cmpint(d.n, ==, 1);

    /* A blocking wait returns for a scheduled BH. */
    qemu_bh_schedule(d.bh);
    main_loop_wait(false);
    g_assert_cmpint(d.n, ==, 2);

    /* It lives on the main context. */
    qemu_bh_schedule(d.bh);
    g_assert_true(aio_poll(qemu_get_aio_context(), false));
    g_assert_cmpint(d.n, ==, 3);

    qemu_bh_delete(d.bh);
    settle();
}

static void test_bh_glib_iteration(void)
{
    BHData d = { 0 };

    settle();
    d.bh = qemu_bh_new_full(bh_cb, &d, "named", NULL);
    qemu_bh_schedule(d.bh);
    g_assert_true(g_main_context_iteration(NULL, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_false(g_main_context_iteration(NULL, false));

    qemu_bh_schedule(d.bh);
    g_assert_true(g_main_context_iteration(NULL, true));
    g_assert_cmpint(d.n, ==, 2);

    qemu_bh_delete(d.bh);
    settle();
}

static void test_bh_idle(void)
{
    BHData d = { 0 };

    settle();
    d.bh = qemu_bh_new(bh_cb, &d);
    /* Not progress, but a blocking wait sees it within 10 ms. */
    qemu_bh_schedule_idle(d.bh);
    main_loop_wait(false);
    g_assert_cmpint(d.n, ==, 1);
    qemu_bh_delete(d.bh);
    settle();
}

static void test_bh_guarded(void)
{
    MemReentrancyGuard guard = { .engaged_in_io = false };
    BHData d = { .guard = &guard };

    settle();
    d.bh = qemu_bh_new_guarded(bh_cb, &d, &guard);
    qemu_bh_schedule(d.bh);
    main_loop_wait(true);
    g_assert_cmpint(d.n, ==, 1);
    g_assert_true(d.guard_seen);
    g_assert_false(guard.engaged_in_io);
    qemu_bh_delete(d.bh);
    settle();
}

static void test_bh_guarded_engaged_not_run(void)
{
    if (g_test_subprocess()) {
        MemReentrancyGuard guard = { .engaged_in_io = true };
        BHData d = { .guard = &guard };
        int i;

        d.bh = qemu_bh_new_guarded(bh_cb, &d, &guard);
        qemu_bh_schedule(d.bh);
        for (i = 0; i < 5; i++) {
            main_loop_wait(true);
        }
        g_assert_cmpint(d.n, ==, 0);
        g_assert_true(guard.engaged_in_io);
        qemu_bh_delete(d.bh);
        settle();
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*warning*");
}

/* ---- fd handlers and event notifiers ----------------------------------- */

typedef struct Pipe {
    int rfd;
    int wfd;
    int n_read;
    int n_write;
    bool drain;
} Pipe;

static void pipe_open(Pipe *p)
{
    int fds[2];

    *p = (Pipe){ 0 };
    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    p->rfd = fds[0];
    p->wfd = fds[1];
}

static void pipe_close(Pipe *p)
{
    close(p->rfd);
    close(p->wfd);
}

static void pipe_put(Pipe *p)
{
    char c = 'x';

    g_assert_cmpint(write(p->wfd, &c, 1), ==, 1);
}

static void pipe_read_cb(void *opaque)
{
    Pipe *p = opaque;
    char buf[64];

    p->n_read++;
    if (p->drain) {
        while (read(p->rfd, buf, sizeof(buf)) > 0) {
            /* empty it */
        }
    }
}

static void pipe_write_cb(void *opaque)
{
    Pipe *p = opaque;

    p->n_write++;
}

static void test_fd_handler(void)
{
    Pipe p;

    settle();
    pipe_open(&p);
    qemu_set_fd_handler(p.rfd, pipe_read_cb, NULL, &p);
    settle();
    g_assert_cmpint(p.n_read, ==, 0);

    pipe_put(&p);
    main_loop_wait(true);
    g_assert_cmpint(p.n_read, ==, 1);
    main_loop_wait(false);
    g_assert_cmpint(p.n_read, ==, 2);
    g_assert_true(g_main_context_iteration(NULL, false));
    g_assert_cmpint(p.n_read, ==, 3);

    /* It lives on the iohandler context, not the main one. */
    g_assert_false(aio_poll(qemu_get_aio_context(), false));
    g_assert_cmpint(p.n_read, ==, 3);
    g_assert_true(aio_poll(iohandler_get_aio_context(), false));
    g_assert_cmpint(p.n_read, ==, 4);

    p.drain = true;
    main_loop_wait(true);
    g_assert_cmpint(p.n_read, ==, 5);
    settle();

    qemu_set_fd_handler(p.rfd, NULL, NULL, NULL);
    pipe_put(&p);
    settle();
    main_loop_wait(true);
    g_assert_cmpint(p.n_read, ==, 5);

    /* Write side. */
    qemu_set_fd_handler(p.wfd, NULL, pipe_write_cb, &p);
    main_loop_wait(true);
    g_assert_cmpint(p.n_write, ==, 1);
    qemu_set_fd_handler(p.wfd, NULL, NULL, NULL);
    settle();
    g_assert_cmpint(p.n_write, ==, 1);

    pipe_close(&p);
}

typedef struct ENData {
    EventNotifier e;
    int n;
} ENData;

static void en_cb(EventNotifier *e)
{
    ENData *d = container_of(e, ENData, e);

    g_assert_true(event_notifier_test_and_clear(e));
    d->n++;
}

static void test_event_notifier_handler(void)
{
    ENData d = { 0 };

    settle();
    g_assert_cmpint(event_notifier_init(&d.e, false), ==, 0);
    event_notifier_set_handler(&d.e, en_cb);
    settle();

    event_notifier_set(&d.e);
    main_loop_wait(false);
    g_assert_cmpint(d.n, ==, 1);
    event_notifier_set(&d.e);
    g_assert_true(g_main_context_iteration(NULL, true));
    g_assert_cmpint(d.n, ==, 2);
    settle();

    event_notifier_set_handler(&d.e, NULL);
    event_notifier_set(&d.e);
    settle();
    main_loop_wait(true);
    g_assert_cmpint(d.n, ==, 2);
    event_notifier_cleanup(&d.e);
}

/* ---- Timers ------------------------------------------------------------- */

typedef struct TimerData {
    int64_t deadline;
    int n;
} TimerData;

static void timer_cb(void *opaque)
{
    TimerData *td = opaque;

    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_REALTIME), >=, td->deadline);
    td->n++;
}

/* main_loop_tlg timers (timer_new_ns with no group) run from main_loop_wait. */
static void test_timer_main_loop_tlg(void)
{
    TimerData td = { 0 };
    QEMUTimer *t = timer_new_ns(QEMU_CLOCK_REALTIME, timer_cb, &td);
    int round, i;

    settle();
    for (round = 1; round <= 5; round++) {
        td.deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + SCALE_MS;
        timer_mod(t, td.deadline);
        g_assert_true(timer_pending(t));
        for (i = 0; i < MAX_ITERATIONS && td.n < round; i++) {
            main_loop_wait(false);
        }
        g_assert_cmpint(td.n, ==, round);
        g_assert_false(timer_pending(t));
    }

    timer_mod(t, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + SCALE_US);
    timer_del(t);
    settle();
    main_loop_wait(true);
    g_assert_cmpint(td.n, ==, 5);
    timer_free(t);
}

/* Timers of the main AioContext run from GLib's iteration too. */
static void test_timer_main_context(void)
{
    TimerData td = { 0 };
    QEMUTimer *t = aio_timer_new(qemu_get_aio_context(), QEMU_CLOCK_REALTIME,
                                 SCALE_NS, timer_cb, &td);
    int i;

    settle();
    td.deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + SCALE_MS;
    timer_mod(t, td.deadline);
    for (i = 0; i < MAX_ITERATIONS && td.n < 1; i++) {
        g_main_context_iteration(NULL, true);
    }
    g_assert_cmpint(td.n, ==, 1);
    settle();
    g_assert_cmpint(td.n, ==, 1);
    timer_free(t);
}

/* ---- Waking the loop from another thread -------------------------------- */

#define NOTIFY_ROUNDS 500

typedef struct NotifyData {
    QemuSemaphore go;
    int rounds;
} NotifyData;

static void *notify_fn(void *opaque)
{
    NotifyData *n = opaque;
    int i;

    for (i = 0; i < n->rounds; i++) {
        qemu_sem_wait(&n->go);
        qemu_notify_event();
    }
    return NULL;
}

/*
 * A blocking main_loop_wait() with nothing to do ends only through
 * qemu_notify_event(); a lost wake-up hangs here.
 */
static void test_notify_event_from_thread(void)
{
    NotifyData n = { .rounds = NOTIFY_ROUNDS };
    QemuThread thread;
    int i;

    settle();
    qemu_sem_init(&n.go, 0);
    qemu_thread_create(&thread, "notifier", notify_fn, &n,
                       QEMU_THREAD_JOINABLE);
    for (i = 0; i < NOTIFY_ROUNDS; i++) {
        qemu_sem_post(&n.go);
        main_loop_wait(false);
    }
    qemu_thread_join(&thread);
    qemu_sem_destroy(&n.go);
    settle();
}

typedef struct RemoteBH {
    QemuSemaphore go;
    BHData d;
    int rounds;
} RemoteBH;

static void *remote_bh_fn(void *opaque)
{
    RemoteBH *r = opaque;
    int i;

    for (i = 0; i < r->rounds; i++) {
        qemu_sem_wait(&r->go);
        qemu_bh_schedule(r->d.bh);
    }
    return NULL;
}

/* A BH scheduled from another thread wakes a sleeping main_loop_wait. */
static void test_bh_from_thread(void)
{
    RemoteBH r = { .rounds = NOTIFY_ROUNDS };
    QemuThread thread;
    int i, j;

    settle();
    r.d.bh = qemu_bh_new(bh_cb, &r.d);
    qemu_sem_init(&r.go, 0);
    qemu_thread_create(&thread, "bh-scheduler", remote_bh_fn, &r,
                       QEMU_THREAD_JOINABLE);
    for (i = 1; i <= NOTIFY_ROUNDS; i++) {
        qemu_sem_post(&r.go);
        for (j = 0; j < MAX_ITERATIONS && r.d.n < i; j++) {
            main_loop_wait(false);
        }
        g_assert_cmpint(r.d.n, ==, i);
    }
    qemu_thread_join(&thread);
    qemu_sem_destroy(&r.go);
    qemu_bh_delete(r.d.bh);
    settle();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);

    g_test_add_func("/main-loop/contexts", test_contexts);
    g_test_add_func("/main-loop/other-thread-view", test_other_thread_view);
    g_test_add_func("/main-loop/set-current-twice-aborts",
                    test_set_current_twice_aborts);
    g_test_add_func("/main-loop/set-current-twice-in-thread-aborts",
                    test_set_current_twice_in_thread_aborts);
    g_test_add_func("/main-loop/bql/mutual-exclusion", test_bql);
    g_test_add_func("/main-loop/bql/released-while-waiting",
                    test_main_loop_wait_releases_bql);
    g_test_add_func("/main-loop/bh/main-loop-wait", test_bh_main_loop_wait);
    g_test_add_func("/main-loop/bh/glib-iteration", test_bh_glib_iteration);
    g_test_add_func("/main-loop/bh/idle", test_bh_idle);
    g_test_add_func("/main-loop/bh/guarded", test_bh_guarded);
    g_test_add_func("/main-loop/bh/guarded-engaged-not-run",
                    test_bh_guarded_engaged_not_run);
    g_test_add_func("/main-loop/bh/from-thread", test_bh_from_thread);
    g_test_add_func("/main-loop/fd-handler", test_fd_handler);
    g_test_add_func("/main-loop/event-notifier-handler",
                    test_event_notifier_handler);
    g_test_add_func("/main-loop/timer/main-loop-tlg",
                    test_timer_main_loop_tlg);
    g_test_add_func("/main-loop/timer/main-context",
                    test_timer_main_context);
    g_test_add_func("/main-loop/notify-event-from-thread",
                    test_notify_event_from_thread);

    return g_test_run();
}
