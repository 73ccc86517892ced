/*
 * test-aio-wait.c: AIO_WAIT_WHILE, aio_wait_kick, aio_wait_bh_oneshot and
 * in_aio_context_home_thread.
 *
 * The main thread waits for work finished in another thread's context;
 * the worker makes sure the main thread is already counted as a waiter
 * before it finishes, so each case knows whether the wait polled.
 * Registered with 'fdmon' and 'mt'.
 *
 * Threading: the main thread runs the main loop's context; helper threads
 * run their own contexts (tests/ctx-thread.h).
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/aio-wait.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/main-loop.h"
#include "ctx-thread.h"

/* Spin (yielding the CPU) until somebody waits in AIO_WAIT_WHILE. */
static void wait_for_waiter(void)
{
    unsigned long spins = 0;

    while (!qatomic_read(&global_aio_wait.num_waiters)) {
        if (++spins % 64 == 0) {
            g_thread_yield();
        }
    }
}

static bool never(void)
{
    return false;
}

static void test_cond_false_does_not_poll(void)
{
    AioContext *main_ctx = qemu_get_aio_context();
    CtxThread t;

    ctx_thread_start(&t, "aio-wait");
    g_assert_false(AIO_WAIT_WHILE(main_ctx, never()));
    g_assert_false(AIO_WAIT_WHILE(t.ctx, never()));
    g_assert_false(AIO_WAIT_WHILE_UNLOCKED(NULL, never()));
    g_assert_cmpuint(qatomic_read(&global_aio_wait.num_waiters), ==, 0);
    ctx_thread_stop(&t);
}

static void test_kick_without_waiters(void)
{
    /* No waiter: no BH, so the main loop has nothing to do. */
    aio_wait_kick();
    g_assert_false(aio_poll(qemu_get_aio_context(), false));
}

/* ---- Work in another thread ------------------------------------------- */

static struct {
    bool done;                  /* atomic */
    int result;                 /* written before done */
    AioContext *ran_in;
    int calls;
} work;

static void worker_bh(void *opaque)
{
    wait_for_waiter();
    work.result = 42;
    work.ran_in = qemu_get_current_aio_context();
    /* Publishes result; pairs with the waiter's load-acquire of done. */
    qatomic_store_release(&work.done, true);
    aio_wait_kick();
}

static void test_wait_for_bh_in_other_thread(void)
{
    CtxThread t;
    bool waited;

    memset(&work, 0, sizeof(work));
    ctx_thread_start(&t, "aio-wait");
    aio_bh_schedule_oneshot(t.ctx, worker_bh, NULL);
    waited = AIO_WAIT_WHILE(t.ctx, !qatomic_load_acquire(&work.done));
    g_assert_true(waited);
    g_assert_cmpint(work.result, ==, 42);
    g_assert(work.ran_in == t.ctx);
    g_assert_cmpuint(qatomic_read(&global_aio_wait.num_waiters), ==, 0);
    ctx_thread_stop(&t);
}

#define HOPS 1000

static void coroutine_fn hopping_worker_co(void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();
    int i;

    /* Yield to the thread's loop a thousand times before finishing. */
    for (i = 0; i < HOPS; i++) {
        aio_co_schedule(ctx, qemu_coroutine_self());
        qemu_coroutine_yield();
        work.calls++;
    }
    wait_for_waiter();
    qatomic_store_release(&work.done, true);
    aio_wait_kick();
}

static void start_hopping_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(hopping_worker_co, NULL));
}

static void test_wait_for_coroutine_in_other_thread(void)
{
    CtxThread t;

    memset(&work, 0, sizeof(work));
    ctx_thread_start(&t, "aio-wait");
    aio_bh_schedule_oneshot(t.ctx, start_hopping_bh, NULL);
    g_assert_true(AIO_WAIT_WHILE_UNLOCKED(t.ctx,
                                          !qatomic_load_acquire(&work.done)));
    g_assert_cmpint(work.calls, ==, HOPS);
    ctx_thread_stop(&t);
}

/* ---- Waiting in a context's home thread -------------------------------- */

static void set_done_bh(void *opaque)
{
    qatomic_set(&work.done, true);
}

/* In the home thread the wait polls the context itself: no kick needed. */
static void test_wait_in_home_thread_main(void)
{
    AioContext *main_ctx = qemu_get_aio_context();

    memset(&work, 0, sizeof(work));
    aio_bh_schedule_oneshot(main_ctx, set_done_bh, NULL);
    g_assert_true(AIO_WAIT_WHILE(main_ctx, !qatomic_read(&work.done)));
}

static bool iothread_waited;

static void wait_in_iothread_bh(void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();

    aio_bh_schedule_oneshot(ctx, set_done_bh, NULL);
    iothread_waited = AIO_WAIT_WHILE(ctx, !qatomic_read(&work.done));
}

static void test_wait_in_home_thread_iothread(void)
{
    CtxThread t;

    memset(&work, 0, sizeof(work));
    iothread_waited = false;
    ctx_thread_start(&t, "aio-wait");
    aio_wait_bh_oneshot(t.ctx, wait_in_iothread_bh, NULL);
    g_assert_true(iothread_waited);
    g_assert_true(qatomic_read(&work.done));
    ctx_thread_stop(&t);
}

/* ---- aio_wait_bh_oneshot ------------------------------------------------- */

static void oneshot_cb(void *opaque)
{
    int *count = opaque;

    work.ran_in = qemu_get_current_aio_context();
    (*count)++;
}

static void test_bh_oneshot(void)
{
    CtxThread t;
    int count = 0;
    int i;

    ctx_thread_start(&t, "aio-wait");
    for (i = 0; i < 1000; i++) {
        work.ran_in = NULL;
        aio_wait_bh_oneshot(t.ctx, oneshot_cb, &count);
        /* Ran, in the other thread, before the call returned. */
        g_assert_cmpint(count, ==, i + 1);
        g_assert(work.ran_in == t.ctx);
    }
    /* In the main context too. */
    aio_wait_bh_oneshot(qemu_get_aio_context(), oneshot_cb, &count);
    g_assert_cmpint(count, ==, 1001);
    g_assert(work.ran_in == qemu_get_aio_context());
    ctx_thread_stop(&t);
}

/* ---- in_aio_context_home_thread ------------------------------------------ */

static struct {
    bool own, main_ctx;
} seen_in_iothread;

static void home_thread_bh(void *opaque)
{
    AioContext *ctx = opaque;

    seen_in_iothread.own = in_aio_context_home_thread(ctx);
    seen_in_iothread.main_ctx =
        in_aio_context_home_thread(qemu_get_aio_context());
}

static void test_in_home_thread(void)
{
    AioContext *main_ctx = qemu_get_aio_context();
    CtxThread t;

    ctx_thread_start(&t, "aio-wait");
    g_assert_true(in_aio_context_home_thread(main_ctx));
    g_assert_false(in_aio_context_home_thread(t.ctx));
    aio_wait_bh_oneshot(t.ctx, home_thread_bh, t.ctx);
    g_assert_true(seen_in_iothread.own);
    /* Not the main thread, and no BQL. */
    g_assert_false(seen_in_iothread.main_ctx);
    ctx_thread_stop(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);

    g_test_add_func("/aio-wait/cond-false-does-not-poll",
                    test_cond_false_does_not_poll);
    g_test_add_func("/aio-wait/kick-without-waiters",
                    test_kick_without_waiters);
    g_test_add_func("/aio-wait/bh-in-other-thread",
                    test_wait_for_bh_in_other_thread);
    g_test_add_func("/aio-wait/coroutine-in-other-thread",
                    test_wait_for_coroutine_in_other_thread);
    g_test_add_func("/aio-wait/home-thread/main",
                    test_wait_in_home_thread_main);
    g_test_add_func("/aio-wait/home-thread/iothread",
                    test_wait_in_home_thread_iothread);
    g_test_add_func("/aio-wait/bh-oneshot", test_bh_oneshot);
    g_test_add_func("/aio-wait/in-home-thread", test_in_home_thread);

    return g_test_run();
}
