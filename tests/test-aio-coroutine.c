/*
 * test-aio-coroutine.c: coroutines and AioContexts (block/aio.h):
 * aio_co_schedule, aio_co_wake, aio_co_enter, aio_co_reschedule_self,
 * coroutine-TLS across threads, two threads racing to wake one sleeping
 * coroutine, the per-thread pool at thread exit, and the misuse that must
 * abort.
 *
 * Each loop thread is a tiny stand-in for an IOThread: its own AioContext
 * (declared with qemu_set_current_aio_context) and an aio_poll loop until
 * a BH tells it to stop.  The main thread runs main_ctx.  Waits for other
 * threads are semaphore waits with a generous cap that only a hang hits.
 *
 * Threading: the main thread, plus up to four loop threads per test.
 * Registered with 'fdmon': runs under QAIO_FDMON=poll and =epoll.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/atomic.h"
#include "qemu/coroutine.h"
#include "qemu/coroutine-tls.h"
#include "qemu/thread.h"
#include "../src/coroutine-backend.h"       /* co_stack_count() */
#include "sanitizer-scale.h"

/* Only a hang waits this long for another thread (milliseconds). */
#define HANG_MS 120000

/* Cap for loops that drive a context until a condition holds. */
#define MAX_ITERATIONS 1000

static AioContext *main_ctx;

/* ---- Loop threads ------------------------------------------------------- */

typedef struct LoopThread {
    QemuThread thread;
    AioContext *ctx;
    int index;
    bool stop;                  /* set by stop_bh in the loop's thread */
    QemuSemaphore ready;
} LoopThread;

/* Each loop thread's own value: index + 1; 0 in every other thread. */
QEMU_DEFINE_STATIC_CO_TLS(int, loop_id)

static void *loop_thread_fn(void *opaque)
{
    LoopThread *t = opaque;

    qemu_set_current_aio_context(t->ctx);
    set_loop_id(t->index + 1);
    qemu_sem_post(&t->ready);
    while (!t->stop) {
        aio_poll(t->ctx, true);
    }
    /* Run whatever was scheduled before the stop. */
    while (aio_poll(t->ctx, false)) {
        /* nothing */
    }
    return NULL;
}

static void stop_bh(void *opaque)
{
    LoopThread *t = opaque;

    t->stop = true;
}

static void loops_start(LoopThread *loops, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        loops[i].ctx = aio_context_new(&error_abort);
        loops[i].index = i;
        loops[i].stop = false;
        qemu_sem_init(&loops[i].ready, 0);
        qemu_thread_create(&loops[i].thread, "loop", loop_thread_fn,
                           &loops[i], QEMU_THREAD_JOINABLE);
        qemu_sem_wait(&loops[i].ready);
    }
}

static void loops_stop(LoopThread *loops, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        aio_bh_schedule_oneshot(loops[i].ctx, stop_bh, &loops[i]);
        qemu_thread_join(&loops[i].thread);
        aio_context_unref(loops[i].ctx);
        qemu_sem_destroy(&loops[i].ready);
    }
}

static void sem_wait_capped(QemuSemaphore *sem)
{
    g_assert_cmpint(qemu_sem_timedwait(sem, HANG_MS), ==, 0);
}

static void main_ctx_settle(void)
{
    int i;

    for (i = 0; i < MAX_ITERATIONS && aio_poll(main_ctx, false); i++) {
        /* keep going */
    }
    g_assert_false(aio_poll(main_ctx, false));
}

/* ---- An event log ------------------------------------------------------- */

typedef struct Log {
    int events[64];
    int n;
} Log;

static void log_add(Log *log, int event)
{
    g_assert_cmpint(log->n, <, (int)ARRAY_SIZE(log->events));
    log->events[log->n++] = event;
}

static void log_assert(Log *log, const int *want, int n)
{
    int i;

    g_assert_cmpint(log->n, ==, n);
    for (i = 0; i < n; i++) {
        g_assert_cmpint(log->events[i], ==, want[i]);
    }
}

#define LOG_ASSERT(log, ...) do {                               \
        static const int want_[] = { __VA_ARGS__ };             \
        log_assert((log), want_, ARRAY_SIZE(want_));            \
    } while (0)

/* ---- aio_co_enter / aio_co_wake in the home thread --------------------- */

typedef struct LogCo {
    Log *log;
    int id;
    Coroutine *co;
    /* Entered by this coroutine with aio_co_enter when it runs. */
    struct LogCo *wakes[4];
    int n_wakes;
    bool yield_first;           /* yield once before doing anything */
} LogCo;

static void coroutine_fn log_co_entry(void *opaque)
{
    LogCo *c = opaque;
    int i;

    if (c->yield_first) {
        qemu_coroutine_yield();
    }
    log_add(c->log, c->id);
    for (i = 0; i < c->n_wakes; i++) {
        aio_co_enter(main_ctx, c->wakes[i]->co);
        /* Queued, not run: we are still in the middle of our work. */
        log_add(c->log, c->id * 10 + i);
    }
}

static void log_co_init(LogCo *c, Log *log, int id)
{
    *c = (LogCo){ .log = log, .id = id };
    c->co = qemu_coroutine_create(log_co_entry, c);
}

static void test_enter_from_home_thread(void)
{
    Log log = { 0 };
    LogCo a;

    log_co_init(&a, &log, 1);
    aio_co_enter(main_ctx, a.co);       /* runs before returning */
    log_add(&log, 2);
    LOG_ASSERT(&log, 1, 2);
    g_assert_false(aio_poll(main_ctx, false));
}

static void test_enter_from_coroutine_queues(void)
{
    Log log = { 0 };
    LogCo a, b, c, d, e;

    /*
     * a wakes b, c, d; b wakes e.  Woken coroutines run once the waker
     * has finished, in order, depth first: a, b, e, c, d.
     */
    log_co_init(&a, &log, 1);
    log_co_init(&b, &log, 2);
    log_co_init(&c, &log, 3);
    log_co_init(&d, &log, 4);
    log_co_init(&e, &log, 5);
    a.wakes[0] = &b;
    a.wakes[1] = &c;
    a.wakes[2] = &d;
    a.n_wakes = 3;
    b.wakes[0] = &e;
    b.n_wakes = 1;

    qemu_aio_coroutine_enter(main_ctx, a.co);
    log_add(&log, 99);
    LOG_ASSERT(&log, 1, 10, 11, 12, 2, 20, 5, 3, 4, 99);
    g_assert_false(aio_poll(main_ctx, false));
}

static void coroutine_fn wake_entry(void *opaque)
{
    LogCo *target = opaque;

    log_add(target->log, 100);
    aio_co_wake(target->co);
    log_add(target->log, 101);
}

static void test_wake_from_coroutine_queues(void)
{
    Log log = { 0 };
    LogCo b;

    /* b has run once in main_ctx and yielded: aio_co_wake restarts it. */
    log_co_init(&b, &log, 2);
    b.yield_first = true;
    qemu_aio_coroutine_enter(main_ctx, b.co);
    g_assert_true(qemu_coroutine_get_aio_context(b.co) == main_ctx);

    qemu_aio_coroutine_enter(main_ctx,
                             qemu_coroutine_create(wake_entry, &b));
    LOG_ASSERT(&log, 100, 101, 2);
}

/* ---- Scheduling --------------------------------------------------------- */

typedef struct ThreadCo {
    AioContext *seen_ctx;
    int seen_loop_id;
    int runs;
    int max_runs;
    QemuSemaphore done;
} ThreadCo;

static void coroutine_fn thread_co_entry(void *opaque)
{
    ThreadCo *t = opaque;

    for (;;) {
        t->seen_ctx = qemu_get_current_aio_context();
        t->seen_loop_id = get_loop_id();
        t->runs++;
        if (t->runs == t->max_runs) {
            break;
        }
        qemu_sem_post(&t->done);
        qemu_coroutine_yield();
    }
    qemu_sem_post(&t->done);
}

static void test_enter_from_other_thread_schedules(void)
{
    LoopThread loop;
    ThreadCo t = { .max_runs = 3 };
    Coroutine *co;

    qemu_sem_init(&t.done, 0);
    loops_start(&loop, 1);
    co = qemu_coroutine_create(thread_co_entry, &t);

    /* Not our context: scheduled, and it runs in the loop's thread. */
    aio_co_enter(loop.ctx, co);
    sem_wait_capped(&t.done);
    g_assert_cmpint(t.runs, ==, 1);
    g_assert_true(t.seen_ctx == loop.ctx);
    g_assert_cmpint(t.seen_loop_id, ==, 1);
    g_assert_true(qemu_coroutine_get_aio_context(co) == loop.ctx);

    /* aio_co_wake goes back to the context it last ran in. */
    aio_co_wake(co);
    sem_wait_capped(&t.done);
    g_assert_cmpint(t.runs, ==, 2);
    g_assert_true(t.seen_ctx == loop.ctx);
    g_assert_cmpint(t.seen_loop_id, ==, 1);

    /* The third run terminates it, still in the loop's thread. */
    aio_co_wake(co);
    sem_wait_capped(&t.done);
    g_assert_cmpint(t.runs, ==, 3);
    g_assert_cmpint(t.seen_loop_id, ==, 1);

    loops_stop(&loop, 1);
    qemu_sem_destroy(&t.done);
}

static void test_schedule_fifo_until_polled(void)
{
    Log log = { 0 };
    LogCo c[5];
    int i;

    for (i = 0; i < 5; i++) {
        log_co_init(&c[i], &log, i + 1);
        aio_co_schedule(main_ctx, c[i].co);
    }
    /* Nothing runs until the context's loop does. */
    g_assert_cmpint(log.n, ==, 0);
    g_assert_true(aio_poll(main_ctx, false));
    LOG_ASSERT(&log, 1, 2, 3, 4, 5);
    main_ctx_settle();
}

static void test_schedule_holds_context_ref(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Log log = { 0 };
    LogCo c;
    int i;

    log_co_init(&c, &log, 1);
    g_assert_cmpuint(ctx->source.ref_count, ==, 1);
    aio_co_schedule(ctx, c.co);
    g_assert_cmpuint(ctx->source.ref_count, ==, 2);
    for (i = 0; i < MAX_ITERATIONS && log.n == 0; i++) {
        aio_poll(ctx, false);
    }
    LOG_ASSERT(&log, 1);
    g_assert_cmpuint(ctx->source.ref_count, ==, 1);
    aio_context_unref(ctx);
}

/* ---- aio_co_reschedule_self -------------------------------------------- */

#define RESCHED_ROUNDS 1000

typedef struct ReschedData {
    LoopThread *loops;
    int moves;
    int wrong;                  /* checks that failed after a move */
    QemuSemaphore done;
} ReschedData;

static void coroutine_fn resched_entry(void *opaque)
{
    ReschedData *d = opaque;
    Coroutine *self = qemu_coroutine_self();
    int i;

    for (i = 0; i < 2 * RESCHED_ROUNDS; i++) {
        LoopThread *to = &d->loops[(i + 1) % 2];

        aio_co_reschedule_self(to->ctx);
        d->moves++;
        if (qemu_get_current_aio_context() != to->ctx ||
            qemu_coroutine_get_aio_context(self) != to->ctx ||
            get_loop_id() != to->index + 1) {
            d->wrong++;
        }
    }
    /* Already there: returns at once, still in the same thread. */
    aio_co_reschedule_self(d->loops[0].ctx);
    if (get_loop_id() != 1) {
        d->wrong++;
    }
    qemu_sem_post(&d->done);
}

static void test_reschedule_self_two_threads(void)
{
    LoopThread loops[2];
    ReschedData d = { .loops = loops };

    qemu_sem_init(&d.done, 0);
    loops_start(loops, 2);
    aio_co_schedule(loops[0].ctx, qemu_coroutine_create(resched_entry, &d));
    sem_wait_capped(&d.done);
    g_assert_cmpint(d.moves, ==, 2 * RESCHED_ROUNDS);
    g_assert_cmpint(d.wrong, ==, 0);
    loops_stop(loops, 2);
    qemu_sem_destroy(&d.done);
}

/* ---- A million hops across four threads --------------------------------- */

#define BOUNCE_THREADS 4
#define BOUNCE_COROUTINES 8
#define BOUNCE_TOTAL 1000000
#define BOUNCE_EACH (BOUNCE_TOTAL / BOUNCE_COROUTINES)

typedef struct BounceData {
    LoopThread loops[BOUNCE_THREADS];
    long hops;                  /* atomic */
    long wrong;                 /* atomic */
    QemuSemaphore done;
} BounceData;

typedef struct Bouncer {
    BounceData *d;
    int start;
} Bouncer;

static void coroutine_fn bounce_entry(void *opaque)
{
    Bouncer *b = opaque;
    BounceData *d = b->d;
    int i;

    for (i = 1; i <= BOUNCE_EACH; i++) {
        LoopThread *to = &d->loops[(b->start + i) % BOUNCE_THREADS];

        aio_co_reschedule_self(to->ctx);
        qatomic_inc(&d->hops);
        if (get_loop_id() != to->index + 1) {
            qatomic_inc(&d->wrong);
        }
    }
    qemu_sem_post(&d->done);
}

static void test_bounce_four_threads(void)
{
    BounceData *d = g_new0(BounceData, 1);
    Bouncer b[BOUNCE_COROUTINES];
    int i;

    qemu_sem_init(&d->done, 0);
    loops_start(d->loops, BOUNCE_THREADS);
    for (i = 0; i < BOUNCE_COROUTINES; i++) {
        b[i] = (Bouncer){ .d = d, .start = i % BOUNCE_THREADS };
        aio_co_schedule(d->loops[b[i].start].ctx,
                        qemu_coroutine_create(bounce_entry, &b[i]));
    }
    for (i = 0; i < BOUNCE_COROUTINES; i++) {
        sem_wait_capped(&d->done);
    }
    g_assert_cmpint(qatomic_read(&d->hops), ==, BOUNCE_TOTAL);
    g_assert_cmpint(qatomic_read(&d->wrong), ==, 0);
    loops_stop(d->loops, BOUNCE_THREADS);
    qemu_sem_destroy(&d->done);
    g_free(d);
}

/* ---- Coroutine TLS after a move to another thread ------------------------ */

typedef struct TlsData {
    LoopThread *loops;
    int before, after;
    int *ptr_before, *ptr_after;
    int via_ptr_after;
    QemuSemaphore done;
} TlsData;

/*
 * The shape that breaks with plain __thread variables: the thread-local
 * address is taken before the move and, as far as the compiler knows, is
 * the same after it (same function, nothing changed the thread).
 */
static void coroutine_fn tls_entry(void *opaque)
{
    TlsData *d = opaque;

    d->before = get_loop_id();
    d->ptr_before = get_ptr_loop_id();
    aio_co_reschedule_self(d->loops[1].ctx);
    d->after = get_loop_id();
    d->ptr_after = get_ptr_loop_id();
    d->via_ptr_after = *d->ptr_after;
    qemu_sem_post(&d->done);
}

static void test_co_tls_reread_after_move(void)
{
    LoopThread loops[2];
    TlsData d = { .loops = loops };

    qemu_sem_init(&d.done, 0);
    loops_start(loops, 2);
    aio_co_schedule(loops[0].ctx, qemu_coroutine_create(tls_entry, &d));
    sem_wait_capped(&d.done);
    g_assert_cmpint(d.before, ==, 1);
    g_assert_cmpint(d.after, ==, 2);
    g_assert_true(d.ptr_after != d.ptr_before);
    g_assert_cmpint(d.via_ptr_after, ==, 2);
    loops_stop(loops, 2);
    qemu_sem_destroy(&d.done);
}

/* ---- Two threads racing to wake one coroutine --------------------------- */

#define WAKE_RACE_ROUNDS SCALED(10000)
#define WAKERS 2
#define WAKE_RACE_SPIN_CAP 100000000L

typedef struct WakeRace {
    LoopThread loop;
    QemuCoSleep w;
    int wakes;                  /* loop thread: returns from qemu_co_sleep */
    QemuSemaphore slept;        /* the sleeper has yielded */
    QemuSemaphore done;         /* the sleeper finished */
    QemuSemaphore go[WAKERS];
    QemuSemaphore woke;         /* a waker's call returned */
    int wakes_started;          /* atomic: hands out r->go */
    int arrived;                /* atomic: wakers at the start line */
    bool stop;                  /* written before the wakers' last go */
} WakeRace;

static void coroutine_fn wake_race_sleeper(void *opaque)
{
    WakeRace *r = opaque;

    qemu_co_sleep(&r->w);
    r->wakes++;
    qemu_sem_post(&r->done);
}

static void wake_race_start_bh(void *opaque)
{
    WakeRace *r = opaque;

    qemu_coroutine_enter(qemu_coroutine_create(wake_race_sleeper, r));
    /* It yielded in qemu_co_sleep(): a waker may claim it from now on. */
    qemu_sem_post(&r->slept);
}

static void *wake_race_waker(void *opaque)
{
    WakeRace *r = opaque;
    /* Which semaphore is ours: the index is our offset in r->go. */
    QemuSemaphore *go = &r->go[qatomic_fetch_inc(&r->wakes_started)];

    for (;;) {
        long spins = 0;

        sem_wait_capped(go);
        if (r->stop) {
            return NULL;
        }
        /*
         * Both awake: leave together, so that the two calls overlap (a
         * semaphore alone releases them microseconds apart).
         */
        qatomic_inc(&r->arrived);
        while (qatomic_read(&r->arrived) % WAKERS != 0) {
            g_assert_cmpint(++spins, <, WAKE_RACE_SPIN_CAP);
            if (spins % 1024 == 0) {
                g_thread_yield();
            }
        }
        qemu_co_sleep_wake(&r->w);
        qemu_sem_post(&r->woke);
    }
}

/*
 * A coroutine sleeps (untimed) in a loop thread; two other threads call
 * qemu_co_sleep_wake() on it at the same moment.  Exactly one claims it:
 * it wakes once per round (a second wake-up would schedule it twice and
 * abort, or enter it after it has terminated), and both calls return.
 */
static void test_wake_race_two_threads(void)
{
    WakeRace *r = g_new0(WakeRace, 1);
    QemuThread wakers[WAKERS];
    int round, i;

    qemu_sem_init(&r->slept, 0);
    qemu_sem_init(&r->done, 0);
    qemu_sem_init(&r->woke, 0);
    for (i = 0; i < WAKERS; i++) {
        qemu_sem_init(&r->go[i], 0);
    }
    loops_start(&r->loop, 1);
    for (i = 0; i < WAKERS; i++) {
        qemu_thread_create(&wakers[i], "waker", wake_race_waker, r,
                           QEMU_THREAD_JOINABLE);
    }

    for (round = 0; round < WAKE_RACE_ROUNDS; round++) {
        aio_bh_schedule_oneshot(r->loop.ctx, wake_race_start_bh, r);
        sem_wait_capped(&r->slept);
        for (i = 0; i < WAKERS; i++) {
            qemu_sem_post(&r->go[(round + i) % WAKERS]);
        }
        sem_wait_capped(&r->done);
        for (i = 0; i < WAKERS; i++) {
            sem_wait_capped(&r->woke);
        }
        /* The semaphores order the loop thread's writes before this. */
        g_assert_cmpint(r->wakes, ==, round + 1);
        g_assert_null(qatomic_read(&r->w.to_wake));
    }

    r->stop = true;
    for (i = 0; i < WAKERS; i++) {
        qemu_sem_post(&r->go[i]);
    }
    for (i = 0; i < WAKERS; i++) {
        qemu_thread_join(&wakers[i]);
    }
    loops_stop(&r->loop, 1);
    g_assert_cmpint(r->wakes, ==, WAKE_RACE_ROUNDS);
    for (i = 0; i < WAKERS; i++) {
        qemu_sem_destroy(&r->go[i]);
    }
    qemu_sem_destroy(&r->woke);
    qemu_sem_destroy(&r->done);
    qemu_sem_destroy(&r->slept);
    g_free(r);
}

/* ---- Chained aio_co_enter ------------------------------------------------ */

#define CHAIN_LENGTH 25000

typedef struct ChainData {
    int started;
    int finished;
    int out_of_order;
} ChainData;

static void coroutine_fn chain_entry(void *opaque)
{
    ChainData *d = opaque;

    /* Queued behind the previous link, not nested inside it. */
    if (d->finished != d->started) {
        d->out_of_order++;
    }
    d->started++;
    if (d->started < CHAIN_LENGTH) {
        aio_co_enter(main_ctx, qemu_coroutine_create(chain_entry, d));
    }
    d->finished++;
}

static void test_chained_enter_25000(void)
{
    ChainData d = { 0 };

    qemu_aio_coroutine_enter(main_ctx, qemu_coroutine_create(chain_entry,
                                                             &d));
    g_assert_cmpint(d.started, ==, CHAIN_LENGTH);
    g_assert_cmpint(d.finished, ==, CHAIN_LENGTH);
    g_assert_cmpint(d.out_of_order, ==, 0);
}

static void coroutine_fn chain_outer_entry(void *opaque)
{
    /* The same chain, started from a coroutine (a 1 MiB stack). */
    aio_co_enter(main_ctx, qemu_coroutine_create(chain_entry, opaque));
}

static void test_chained_enter_from_coroutine(void)
{
    ChainData d = { 0 };

    qemu_aio_coroutine_enter(main_ctx,
                             qemu_coroutine_create(chain_outer_entry, &d));
    g_assert_cmpint(d.started, ==, CHAIN_LENGTH);
    g_assert_cmpint(d.finished, ==, CHAIN_LENGTH);
    g_assert_cmpint(d.out_of_order, ==, 0);
}

/* ---- The pool at thread exit --------------------------------------------- */

#define POOL_FILL 1000

static void coroutine_fn yield_once_entry(void *opaque)
{
    qemu_coroutine_yield();
}

/* Create @n live coroutines, then let all of them terminate. */
static void churn(int n)
{
    Coroutine **cos = g_new(Coroutine *, n);
    int i;

    for (i = 0; i < n; i++) {
        cos[i] = qemu_coroutine_create(yield_once_entry, NULL);
        qemu_coroutine_enter(cos[i]);
    }
    for (i = 0; i < n; i++) {
        qemu_coroutine_enter(cos[i]);
    }
    g_free(cos);
}

static void *churn_thread_fn(void *opaque)
{
    churn(POOL_FILL);
    return NULL;
}

static void test_pool_released_at_thread_exit(void)
{
    QemuThread thread;
    unsigned before, after;

    if (!CONFIG_COROUTINE_POOL) {
        g_test_skip("built with -Dcoroutine_pool=false");
        return;
    }
    /* Fill the global pool, so the thread's leftovers cannot go there. */
    churn(POOL_FILL);
    before = co_stack_count();

    /*
     * The thread drains the global pool, refills it, and keeps a local
     * pool of 64, which must be unmapped when the thread exits; otherwise
     * those stacks would stay behind for ever.
     */
    qemu_thread_create(&thread, "churn", churn_thread_fn, NULL,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_join(&thread);
    after = co_stack_count();
    g_assert_cmpuint(after, ==, before);
}

/* ---- Misuse that aborts -------------------------------------------------- */

static void test_abort_schedule_twice(void)
{
    if (g_test_subprocess()) {
        Coroutine *co = qemu_coroutine_create(yield_once_entry, NULL);

        qemu_coroutine_enter(co);
        aio_co_schedule(main_ctx, co);
        aio_co_schedule(main_ctx, co);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*aio_co_schedule: Co-routine * was already "
                              "scheduled in 'aio_co_schedule'*");
}

static void test_abort_enter_scheduled(void)
{
    if (g_test_subprocess()) {
        Coroutine *co = qemu_coroutine_create(yield_once_entry, NULL);

        qemu_coroutine_enter(co);
        aio_co_schedule(main_ctx, co);
        qemu_coroutine_enter(co);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_aio_coroutine_enter: Co-routine * was "
                              "already scheduled in 'aio_co_schedule'*");
}

static void coroutine_fn wake_self_entry(void *opaque)
{
    aio_co_wake(qemu_coroutine_self());
}

static void coroutine_fn wake_caller_inner(void *opaque)
{
    aio_co_wake(opaque);
}

static void coroutine_fn wake_caller_entry(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(wake_caller_inner,
                                               qemu_coroutine_self()));
}

static void test_abort_wake_self(void)
{
    if (g_test_subprocess()) {
        qemu_coroutine_enter(qemu_coroutine_create(wake_self_entry, NULL));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*aio_co_enter: Co-routine * woke itself*");
}

static void test_abort_wake_running_caller(void)
{
    if (g_test_subprocess()) {
        /* The inner coroutine wakes the outer one, which is running. */
        qemu_coroutine_enter(qemu_coroutine_create(wake_caller_entry, NULL));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*Co-routine * re-entered recursively*");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(main_ctx);

    g_test_add_func("/aio-coroutine/enter/home-thread-enters-at-once",
                    test_enter_from_home_thread);
    g_test_add_func("/aio-coroutine/enter/from-coroutine-queues-in-order",
                    test_enter_from_coroutine_queues);
    g_test_add_func("/aio-coroutine/wake/from-coroutine-queues",
                    test_wake_from_coroutine_queues);
    g_test_add_func("/aio-coroutine/enter/other-thread-schedules",
                    test_enter_from_other_thread_schedules);
    g_test_add_func("/aio-coroutine/schedule/fifo-when-polled",
                    test_schedule_fifo_until_polled);
    g_test_add_func("/aio-coroutine/schedule/holds-context-ref",
                    test_schedule_holds_context_ref);
    g_test_add_func("/aio-coroutine/reschedule-self/two-threads",
                    test_reschedule_self_two_threads);
    g_test_add_func("/aio-coroutine/bounce/4-threads-1000000-hops",
                    test_bounce_four_threads);
    g_test_add_func("/aio-coroutine/tls/reread-after-move",
                    test_co_tls_reread_after_move);
    g_test_add_func("/aio-coroutine/wake/two-threads-race-one-sleeper",
                    test_wake_race_two_threads);
    g_test_add_func("/aio-coroutine/enter/chain-25000-queues",
                    test_chained_enter_25000);
    g_test_add_func("/aio-coroutine/enter/chain-25000-from-coroutine",
                    test_chained_enter_from_coroutine);
    g_test_add_func("/aio-coroutine/pool/released-at-thread-exit",
                    test_pool_released_at_thread_exit);
    g_test_add_func("/aio-coroutine/abort/schedule-twice",
                    test_abort_schedule_twice);
    g_test_add_func("/aio-coroutine/abort/enter-scheduled",
                    test_abort_enter_scheduled);
    g_test_add_func("/aio-coroutine/abort/wake-self",
                    test_abort_wake_self);
    g_test_add_func("/aio-coroutine/abort/wake-running-caller",
                    test_abort_wake_running_caller);
    return g_test_run();
}
