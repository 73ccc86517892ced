/*
 * test-co-sleep.c: qemu_co_sleep_ns, QemuCoSleep wake-ups and
 * qemu_co_timeout.
 *
 * Sleeps run against QEMU_CLOCK_VIRTUAL stopped with qemu_clock_enable()
 * and moved with qemu_clock_advance_virtual_time(), which runs the due
 * timers in the calling thread: the tests are deterministic, wait for
 * nothing real, and check the exact clock value each sleeper wakes at.
 * qemu_co_timeout uses QEMU_CLOCK_REALTIME, as in QEMU; its expiry case
 * uses a 1 ns limit, so it too waits for nothing.  One multithreaded
 * case races a timer against an early wake-up from another thread.
 *
 * Threading: the main thread runs the main loop's context; one case adds
 * a thread with its own context.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "ctx-thread.h"

#define MAX_ITERATIONS 1000

static GString *evlog;

static void G_GNUC_PRINTF(1, 2) ev(const char *fmt, ...)
{
    va_list ap;

    if (evlog->len) {
        g_string_append_c(evlog, ' ');
    }
    va_start(ap, fmt);
    g_string_append_vprintf(evlog, fmt, ap);
    va_end(ap);
}

static bool virtual_timers_pending(void)
{
    AioContext *ctx = qemu_get_aio_context();

    return timerlist_has_timers(ctx->tlg.tl[QEMU_CLOCK_VIRTUAL]);
}

/*
 * Run whatever earlier cases left behind in the main context (clock
 * notifications schedule a BH there), so that aio_poll() results are ours.
 */
static void settle(void)
{
    int i;

    for (i = 0; i < MAX_ITERATIONS && aio_poll(qemu_get_aio_context(), false);
         i++) {
        /* keep going */
    }
    g_string_truncate(evlog, 0);
}

/* Stop the virtual clock; returns its value. */
static int64_t virtual_clock_stop(void)
{
    settle();
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
}

/* ---- Sleeping on the virtual clock ------------------------------------ */

typedef struct Sleeper {
    int id;
    int64_t ns;
    int64_t woke_at;
} Sleeper;

static void coroutine_fn sleeper_co(void *opaque)
{
    Sleeper *s = opaque;

    qemu_co_sleep_ns(QEMU_CLOCK_VIRTUAL, s->ns);
    s->woke_at = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    ev("s%d", s->id);
}

static void test_sleep_virtual_order(void)
{
    Sleeper s[3] = {
        { .id = 0, .ns = 300 * SCALE_MS },
        { .id = 1, .ns = 100 * SCALE_MS },
        { .id = 2, .ns = 200 * SCALE_MS },
    };
    int64_t start = virtual_clock_stop();
    int i;

    for (i = 0; i < 3; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(sleeper_co, &s[i]));
    }
    g_assert_true(virtual_timers_pending());
    /* The clock stands still: polling wakes nobody. */
    g_assert_false(aio_poll(qemu_get_aio_context(), false));
    g_assert_cmpstr(evlog->str, ==, "");

    g_assert_cmpint(qemu_clock_advance_virtual_time(start + 150 * SCALE_MS),
                    ==, start + 150 * SCALE_MS);
    g_assert_cmpstr(evlog->str, ==, "s1");
    g_assert_cmpint(s[1].woke_at, ==, start + 100 * SCALE_MS);

    qemu_clock_advance_virtual_time(start + SCALE_MS * 1000);
    g_assert_cmpstr(evlog->str, ==, "s1 s2 s0");
    g_assert_cmpint(s[2].woke_at, ==, start + 200 * SCALE_MS);
    g_assert_cmpint(s[0].woke_at, ==, start + 300 * SCALE_MS);
    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), ==,
                    start + 1000 * SCALE_MS);
    g_assert_false(virtual_timers_pending());
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
}

static void coroutine_fn sleep_zero_co(void *opaque)
{
    qemu_co_sleep_ns(QEMU_CLOCK_VIRTUAL, 0);
    ev("woke@%" PRId64,
       qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - *(int64_t *)opaque);
}

/* A zero sleep still yields once, until the timer runs. */
static void test_sleep_zero(void)
{
    int64_t start = virtual_clock_stop();

    qemu_coroutine_enter(qemu_coroutine_create(sleep_zero_co, &start));
    g_assert_cmpstr(evlog->str, ==, "");
    qemu_clock_advance_virtual_time(start);
    g_assert_cmpstr(evlog->str, ==, "woke@0");
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
}

/* ---- Waking early ------------------------------------------------------- */

static QemuCoSleep wsleep;
static int64_t wstart;

static void coroutine_fn wakeable_co(void *opaque)
{
    qemu_co_sleep_ns_wakeable(&wsleep, QEMU_CLOCK_VIRTUAL, 1000 * SCALE_MS);
    ev("woke@%" PRId64, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - wstart);
}

static void test_sleep_wake_early(void)
{
    Coroutine *co = qemu_coroutine_create(wakeable_co, NULL);

    wstart = virtual_clock_stop();
    qemu_coroutine_enter(co);
    g_assert(wsleep.to_wake == co);
    g_assert_true(virtual_timers_pending());

    qemu_clock_advance_virtual_time(wstart + 500 * SCALE_MS);
    g_assert_cmpstr(evlog->str, ==, "");

    /* Outside coroutine context, in its context: it runs at once. */
    qemu_co_sleep_wake(&wsleep);
    g_assert_cmpstr(evlog->str, ==, "woke@500000000");
    g_assert_null(wsleep.to_wake);
    /* Its timer went with it. */
    g_assert_false(virtual_timers_pending());

    /* Nobody sleeps on it any more: a no-op. */
    qemu_co_sleep_wake(&wsleep);
    qemu_clock_advance_virtual_time(wstart + 2000 * SCALE_MS);
    g_assert_cmpstr(evlog->str, ==, "woke@500000000");
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
}

static void test_sleep_wake_nobody(void)
{
    QemuCoSleep w = { 0 };

    qemu_co_sleep_wake(&w);
    g_assert_null(w.to_wake);
}

static void coroutine_fn untimed_sleeper_co(void *opaque)
{
    qemu_co_sleep(&wsleep);
    ev("woke");
}

static void coroutine_fn untimed_waker_co(void *opaque)
{
    qemu_co_sleep_wake(&wsleep);
    ev("waker-done");
}

/* qemu_co_sleep has no timer; a waker in a coroutine runs first. */
static void test_sleep_untimed_woken_by_coroutine(void)
{
    settle();
    qemu_coroutine_enter(qemu_coroutine_create(untimed_sleeper_co, NULL));
    g_assert_nonnull(wsleep.to_wake);
    g_assert_false(aio_poll(qemu_get_aio_context(), false));
    qemu_coroutine_enter(qemu_coroutine_create(untimed_waker_co, NULL));
    g_assert_cmpstr(evlog->str, ==, "waker-done woke");
}

/* ---- Across threads ----------------------------------------------------- */

static struct {
    CtxThread t;
    QemuCoSleep w;
    QemuSemaphore slept;
    QemuSemaphore done;
    AioContext *woke_in;
    bool finished;              /* atomic */
    unsigned completions;       /* atomic */
} xt;

static void coroutine_fn xt_untimed_co(void *opaque)
{
    qemu_co_sleep(&xt.w);
    xt.woke_in = qemu_get_current_aio_context();
    qemu_sem_post(&xt.done);
}

static void xt_untimed_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(xt_untimed_co, NULL));
    /* It yielded in qemu_co_sleep. */
    qemu_sem_post(&xt.slept);
}

static void test_sleep_wake_from_other_thread(void)
{
    qemu_sem_init(&xt.slept, 0);
    qemu_sem_init(&xt.done, 0);
    ctx_thread_start(&xt.t, "co-sleep");

    aio_bh_schedule_oneshot(xt.t.ctx, xt_untimed_bh, NULL);
    ctx_thread_sem_wait_or_abort(&xt.slept, "sleep");
    g_assert_nonnull(qatomic_read(&xt.w.to_wake));
    qemu_co_sleep_wake(&xt.w);
    ctx_thread_sem_wait_or_abort(&xt.done, "wake from main thread");
    g_assert(xt.woke_in == xt.t.ctx);

    ctx_thread_stop(&xt.t);
    qemu_sem_destroy(&xt.slept);
    qemu_sem_destroy(&xt.done);
}

#define RACE_ROUNDS 500
#define RACE_MAX_SPINS 100000000UL

static void coroutine_fn xt_race_co(void *opaque)
{
    qemu_co_sleep_ns_wakeable(&xt.w, QEMU_CLOCK_REALTIME, 20 * SCALE_US);
    qatomic_inc(&xt.completions);
    qatomic_set(&xt.finished, true);
}

static void xt_race_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(xt_race_co, NULL));
}

/*
 * The sleeper's timer and qemu_co_sleep_wake() from the main thread race;
 * whichever wins, the coroutine wakes exactly once (a double wake-up would
 * abort as a double scheduling).
 */
static void test_sleep_wake_races_timer(void)
{
    int round;

    ctx_thread_start(&xt.t, "co-sleep-race");
    qatomic_set(&xt.completions, 0);
    for (round = 0; round < RACE_ROUNDS; round++) {
        unsigned long spins = 0;

        qatomic_set(&xt.finished, false);
        aio_bh_schedule_oneshot(xt.t.ctx, xt_race_bh, NULL);
        /* A lost wake-up leaves the sleeper asleep: give up eventually. */
        while (!qatomic_read(&xt.finished)) {
            qemu_co_sleep_wake(&xt.w);
            if (++spins % 64 == 0) {
                g_thread_yield();
            }
            g_assert_cmpuint(spins, <, RACE_MAX_SPINS);
        }
    }
    ctx_thread_stop(&xt.t);
    g_assert_cmpuint(qatomic_read(&xt.completions), ==, RACE_ROUNDS);
}

/* ---- qemu_co_timeout ---------------------------------------------------- */

typedef struct TimeoutCase {
    CoroutineEntry *entry;
    uint64_t timeout_ns;
    int ret;
    bool returned;
    int entry_runs;
    bool entry_finished;
    int cleaned;
    Coroutine *caller_co;
    Coroutine *entry_co;
} TimeoutCase;

static void coroutine_fn quick_entry(void *opaque)
{
    TimeoutCase *tc = opaque;

    tc->entry_runs++;
    tc->entry_co = qemu_coroutine_self();
    tc->entry_finished = true;
}

static void coroutine_fn blocking_entry(void *opaque)
{
    TimeoutCase *tc = opaque;

    tc->entry_runs++;
    tc->entry_co = qemu_coroutine_self();
    qemu_coroutine_yield();
    tc->entry_finished = true;
}

static void timeout_cleanup(void *opaque)
{
    TimeoutCase *tc = opaque;

    g_assert_true(tc->entry_finished);
    tc->cleaned++;
}

static void coroutine_fn timeout_caller_co(void *opaque)
{
    TimeoutCase *tc = opaque;

    tc->caller_co = qemu_coroutine_self();
    tc->ret = qemu_co_timeout(tc->entry, tc, tc->timeout_ns,
                              timeout_cleanup);
    tc->returned = true;
}

static void timeout_start(TimeoutCase *tc)
{
    qemu_coroutine_enter(qemu_coroutine_create(timeout_caller_co, tc));
}

static void test_timeout_success_at_once(void)
{
    TimeoutCase tc = {
        .entry = quick_entry,
        .timeout_ns = 3600 * NANOSECONDS_PER_SECOND,
    };

    timeout_start(&tc);
    g_assert_true(tc.returned);
    g_assert_cmpint(tc.ret, ==, 0);
    g_assert_cmpint(tc.entry_runs, ==, 1);
    g_assert(tc.entry_co != tc.caller_co);
    g_assert_cmpint(tc.cleaned, ==, 0);
}

static void test_timeout_success_after_yield(void)
{
    TimeoutCase tc = {
        .entry = blocking_entry,
        .timeout_ns = 3600 * NANOSECONDS_PER_SECOND,
    };

    settle();
    timeout_start(&tc);
    g_assert_false(tc.returned);
    g_assert_cmpint(tc.entry_runs, ==, 1);
    g_assert_false(aio_poll(qemu_get_aio_context(), false));

    /* The entry finishes; the caller runs after it terminates. */
    aio_co_wake(tc.entry_co);
    g_assert_true(tc.returned);
    g_assert_cmpint(tc.ret, ==, 0);
    g_assert_cmpint(tc.cleaned, ==, 0);
}

static void test_timeout_expired(void)
{
    TimeoutCase tc = {
        .entry = blocking_entry,
        .timeout_ns = 1,
    };
    int i;

    timeout_start(&tc);
    g_assert_cmpint(tc.entry_runs, ==, 1);
    for (i = 0; i < MAX_ITERATIONS && !tc.returned; i++) {
        aio_poll(qemu_get_aio_context(), true);
    }
    g_assert_true(tc.returned);
    g_assert_cmpint(tc.ret, ==, -ETIMEDOUT);
    g_assert_false(tc.entry_finished);
    g_assert_cmpint(tc.cleaned, ==, 0);

    /* The abandoned entry finishes later and cleans up after itself. */
    aio_co_wake(tc.entry_co);
    g_assert_true(tc.entry_finished);
    g_assert_cmpint(tc.cleaned, ==, 1);
    g_assert_cmpint(tc.entry_runs, ==, 1);
}

static void test_timeout_zero_runs_inline(void)
{
    TimeoutCase tc = {
        .entry = quick_entry,
        .timeout_ns = 0,
    };

    timeout_start(&tc);
    g_assert_true(tc.returned);
    g_assert_cmpint(tc.ret, ==, 0);
    g_assert(tc.entry_co == tc.caller_co);
    g_assert_cmpint(tc.cleaned, ==, 0);
}

/* ---- Misuse ------------------------------------------------------------- */

static void coroutine_fn sleep_while_scheduled_co(void *opaque)
{
    QemuCoSleep w = { 0 };

    aio_co_schedule(qemu_get_aio_context(), qemu_coroutine_self());
    qemu_co_sleep(&w);
}

static void test_sleep_while_scheduled_aborts(void)
{
    if (g_test_subprocess()) {
        qemu_coroutine_enter(qemu_coroutine_create(sleep_while_scheduled_co,
                                                   NULL));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_co_sleep*already scheduled*");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);
    evlog = g_string_new(NULL);

    g_test_add_func("/co-sleep/virtual-clock-order", test_sleep_virtual_order);
    g_test_add_func("/co-sleep/zero", test_sleep_zero);
    g_test_add_func("/co-sleep/wake-early", test_sleep_wake_early);
    g_test_add_func("/co-sleep/wake-nobody", test_sleep_wake_nobody);
    g_test_add_func("/co-sleep/untimed-woken-by-coroutine",
                    test_sleep_untimed_woken_by_coroutine);
    g_test_add_func("/co-sleep/wake-from-other-thread",
                    test_sleep_wake_from_other_thread);
    g_test_add_func("/co-sleep/wake-races-timer",
                    test_sleep_wake_races_timer);
    g_test_add_func("/co-sleep/timeout/success-at-once",
                    test_timeout_success_at_once);
    g_test_add_func("/co-sleep/timeout/success-after-yield",
                    test_timeout_success_after_yield);
    g_test_add_func("/co-sleep/timeout/expired", test_timeout_expired);
    g_test_add_func("/co-sleep/timeout/zero-runs-inline",
                    test_timeout_zero_runs_inline);
    g_test_add_func("/co-sleep/misuse/sleep-while-scheduled",
                    test_sleep_while_scheduled_aborts);

    return g_test_run();
}
