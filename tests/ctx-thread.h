/*
 * ctx-thread.h: a minimal "IOThread" for tests of coroutine code: a thread
 * that creates an AioContext, makes it its current context and runs
 * aio_poll(ctx, true) until asked to stop.
 *
 * Tests use it instead of qaio/iothread.h so that the coroutine tests do
 * not depend on the IOThread implementation they sit underneath.
 *
 * Threading: ctx_thread_start() and ctx_threads_stop() from the test's
 * main thread; t->ctx is set before ctx_thread_start() returns and is valid
 * until ctx_threads_stop().  @stop is touched only by the thread itself (a
 * BH sets it).
 *
 * Contexts are freed only after every thread of the group has been joined:
 * aio_co_schedule() and aio_bh_schedule_oneshot() from one thread may still
 * be inside aio_notify() on another thread's context after the work they
 * queued has run there.
 */
#ifndef TESTS_CTX_THREAD_H
#define TESTS_CTX_THREAD_H

#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/thread.h"

typedef struct CtxThread {
    QemuThread thread;
    QemuSemaphore ready;
    AioContext *ctx;
    bool stop;
} CtxThread;

static inline void ctx_thread_stop_bh(void *opaque)
{
    CtxThread *t = opaque;

    t->stop = true;
}

static inline void *ctx_thread_fn(void *opaque)
{
    CtxThread *t = opaque;
    AioContext *ctx = aio_context_new(&error_abort);

    qemu_set_current_aio_context(ctx);
    t->ctx = ctx;
    qemu_sem_post(&t->ready);

    while (!t->stop) {
        aio_poll(ctx, true);
    }
    /* Whatever the stop BH raced with runs before the thread goes. */
    while (aio_poll(ctx, false)) {
        /* keep going */
    }
    return NULL;
}

static inline void ctx_thread_start(CtxThread *t, const char *name)
{
    memset(t, 0, sizeof(*t));
    qemu_sem_init(&t->ready, 0);
    qemu_thread_create(&t->thread, name, ctx_thread_fn, t,
                       QEMU_THREAD_JOINABLE);
    /* The semaphore orders the thread's write of t->ctx before our read. */
    qemu_sem_wait(&t->ready);
}

/* Stop and join @n threads, then free their contexts. */
static inline void ctx_threads_stop(CtxThread *t, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        aio_bh_schedule_oneshot(t[i].ctx, ctx_thread_stop_bh, &t[i]);
    }
    for (i = 0; i < n; i++) {
        qemu_thread_join(&t[i].thread);
    }
    for (i = 0; i < n; i++) {
        aio_context_unref(t[i].ctx);
        qemu_sem_destroy(&t[i].ready);
        t[i].ctx = NULL;
    }
}

static inline void ctx_thread_stop(CtxThread *t)
{
    ctx_threads_stop(t, 1);
}

/*
 * Wait for @sem, which a healthy test posts soon; a lost wake-up shows up
 * as an abort naming @what after a minute instead of a silent hang.  Not a
 * timing assertion.
 */
static inline void ctx_thread_sem_wait_or_abort(QemuSemaphore *sem,
                                                const char *what)
{
    if (qemu_sem_timedwait(sem, 60000) != 0) {
        fprintf(stderr, "%s: no progress for 60 s (lost wake-up?)\n", what);
        abort();
    }
}

#endif /* TESTS_CTX_THREAD_H */
