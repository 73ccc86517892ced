/*
 * test-thread-pool.c: the thread pool (block/thread-pool.h) and AIOCB
 * cancellation (bdrv_aio_cancel, bdrv_aio_cancel_async).
 *
 * Jobs record how often they ran and on which thread; callbacks record
 * what they got and on which thread, so every case checks exact results,
 * exactly-once execution and that completions run in the context's home
 * thread.  Jobs that must stay running (to fill the pool, or to be
 * cancelled while active) block on a semaphore the test posts; nothing
 * sleeps.  Worker counts come from the pool itself (thread-pool-int.h),
 * and the idle timeout is shortened through the same header.
 *
 * Cases that check worker counts or free a pool run on a thread of their
 * own with a fresh AioContext, so that they start from an empty pool; the
 * others use the main loop's context.  A lost wake-up shows as a hang,
 * which the watchdog (watchdog.h) turns into a failure: jobs and callbacks
 * report progress.  Registered with 'fdmon' and 'mt'.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/aio-wait.h"
#include "block/thread-pool.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/main-loop.h"
#include "qaio/iothread.h"
#include "../src/thread-pool-int.h"
#include "sanitizer-scale.h"
#include "thread-probe.h"
#include "watchdog.h"
#include <pthread.h>

/* Cap on aio_poll calls while waiting for completions. */
#define MAX_ITERATIONS 1000000

/* Hang detector for waits on the worker count; never a timing check. */
#define WAIT_THREADS_MS 60000

static int main_tid;

/* ---- Jobs and callbacks ------------------------------------------------ */

typedef struct Job {
    int value;          /* what the function returns */
    bool block;         /* post 'started', then wait for 'gate' */
    int ran;            /* atomic: times the function ran */
    int worker_tid;     /* atomic: the thread it ran on */
    bool worker_named;  /* atomic: that thread is called "worker" */
    int completions;    /* home thread: times the callback ran */
    int ret;            /* home thread: what the callback got */
    int cb_tid;         /* home thread: where the callback ran */
} Job;

static QemuSemaphore started;   /* a blocking job is running */
static QemuSemaphore gate;      /* lets one blocking job finish */
static int running;             /* atomic: jobs inside their function */
static int max_running;         /* atomic: the most seen at once */
static int total_completions;   /* callbacks run, in the current case */

static void reset_counters(void)
{
    qatomic_set(&running, 0);
    qatomic_set(&max_running, 0);
    qatomic_set(&total_completions, 0);
}

static int job_fn(void *opaque)
{
    Job *j = opaque;
    char name[16] = "";
    int now, seen;

    progress();
    qatomic_inc(&j->ran);
    qatomic_set(&j->worker_tid, qemu_get_thread_id());
    pthread_getname_np(pthread_self(), name, sizeof(name));
    qatomic_set(&j->worker_named, strcmp(name, "worker") == 0);

    now = qatomic_fetch_inc(&running) + 1;
    seen = qatomic_read(&max_running);
    while (now > seen) {
        int old = qatomic_cmpxchg(&max_running, seen, now);

        if (old == seen) {
            break;
        }
        seen = old;
    }
    if (j->block) {
        qemu_sem_post(&started);
        qemu_sem_wait(&gate);
    }
    qatomic_dec(&running);
    return j->value;
}

static void job_cb(void *opaque, int ret)
{
    Job *j = opaque;

    progress();
    j->completions++;
    j->ret = ret;
    j->cb_tid = qemu_get_thread_id();
    qatomic_inc(&total_completions);
}

/* Run @ctx (the caller's context) until @target callbacks have run. */
static void poll_completions(AioContext *ctx, int target)
{
    int i;

    for (i = 0; i < MAX_ITERATIONS &&
                qatomic_read(&total_completions) < target; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(qatomic_read(&total_completions), ==, target);
}

/* Run @ctx until its pool has no request left (callbacks or not). */
static void poll_pool_idle(AioContext *ctx)
{
    ThreadPool *pool = aio_get_thread_pool(ctx);
    int i;

    for (i = 0; i < MAX_ITERATIONS &&
                qaio_int_thread_pool_in_flight(pool) > 0; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(qaio_int_thread_pool_in_flight(pool), ==, 0);
}

/* A finished, unblocked job that ran once and completed once, here. */
static void assert_job_done(Job *j, int tid)
{
    g_assert_cmpint(qatomic_read(&j->ran), ==, 1);
    g_assert_cmpint(j->completions, ==, 1);
    g_assert_cmpint(j->ret, ==, j->value);
    g_assert_cmpint(j->cb_tid, ==, tid);
    g_assert_cmpint(qatomic_read(&j->worker_tid), !=, tid);
    g_assert_true(qatomic_read(&j->worker_named));
}

static void assert_job_cancelled(Job *j, int tid)
{
    g_assert_cmpint(qatomic_read(&j->ran), ==, 0);
    g_assert_cmpint(j->completions, ==, 1);
    g_assert_cmpint(j->ret, ==, -ECANCELED);
    g_assert_cmpint(j->cb_tid, ==, tid);
}

/* Restore the main context's pool after a case that changed it. */
static void reset_main_pool(void)
{
    AioContext *ctx = qemu_get_aio_context();

    aio_context_set_thread_pool_params(ctx, 0,
                                       THREAD_POOL_MAX_THREADS_DEFAULT,
                                       &error_abort);
    qaio_int_thread_pool_set_idle_timeout(aio_get_thread_pool(ctx),
                                          THREAD_POOL_IDLE_TIMEOUT_MS);
}

/* ---- Running a case on a thread with a fresh context ------------------ */

typedef void CtxCaseFn(AioContext *ctx, void *opaque);

typedef struct CtxCase {
    CtxCaseFn *fn;
    void *opaque;
} CtxCase;

static void *ctx_case_thread(void *opaque)
{
    CtxCase *c = opaque;
    AioContext *ctx = aio_context_new(&error_abort);

    qemu_set_current_aio_context(ctx);
    c->fn(ctx, c->opaque);
    /* The last reference: this frees the pool, joining its workers. */
    aio_context_unref(ctx);
    return NULL;
}

static void run_in_new_context(CtxCaseFn *fn, void *opaque)
{
    CtxCase c = { .fn = fn, .opaque = opaque };
    QemuThread thread;

    qemu_thread_create(&thread, "ctx-case", ctx_case_thread, &c,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_join(&thread);
}

/* ---- Submission -------------------------------------------------------- */

static void test_submit_aio_values(void)
{
    AioContext *ctx = qemu_get_aio_context();
    enum { N = 100 };
    Job jobs[N] = { 0 };
    int i;

    reset_counters();
    for (i = 0; i < N; i++) {
        jobs[i].value = i * 3 - 50;         /* negative ones too */
        g_assert_nonnull(thread_pool_submit_aio(job_fn, &jobs[i], job_cb,
                                                &jobs[i]));
    }
    poll_completions(ctx, N);
    for (i = 0; i < N; i++) {
        assert_job_done(&jobs[i], main_tid);
    }
    poll_pool_idle(ctx);
}

static void test_submit_aio_cb_null(void)
{
    AioContext *ctx = qemu_get_aio_context();
    enum { N = 50 };
    Job jobs[N] = { 0 };
    int i;

    reset_counters();
    for (i = 0; i < N; i++) {
        g_assert_nonnull(thread_pool_submit_aio(job_fn, &jobs[i], NULL,
                                                NULL));
    }
    poll_pool_idle(ctx);
    for (i = 0; i < N; i++) {
        g_assert_cmpint(qatomic_read(&jobs[i].ran), ==, 1);
        g_assert_cmpint(jobs[i].completions, ==, 0);
    }
    g_assert_cmpint(qatomic_read(&total_completions), ==, 0);
}

static int count_fn(void *opaque)
{
    progress();
    qatomic_inc((int *)opaque);
    return 0;
}

static void test_submit_fire_and_forget(void)
{
    AioContext *ctx = qemu_get_aio_context();
    int count = 0;
    int i;

    for (i = 0; i < 200; i++) {
        thread_pool_submit(count_fn, &count);
    }
    /* Drained means every function ran and every AIOCB was released. */
    poll_pool_idle(ctx);
    g_assert_cmpint(qatomic_read(&count), ==, 200);
}

typedef struct CoJob {
    Job job;
    int result;
    int resumed_tid;
    AioContext *resumed_ctx;
    bool done;
} CoJob;

static int co_done;

static void coroutine_fn submit_co_entry(void *opaque)
{
    CoJob *c = opaque;

    c->result = thread_pool_submit_co(job_fn, &c->job);
    c->resumed_tid = qemu_get_thread_id();
    c->resumed_ctx = qemu_get_current_aio_context();
    c->done = true;
    co_done++;
}

static void test_submit_co_many(void)
{
    AioContext *ctx = qemu_get_aio_context();
    enum { N = 100 };
    CoJob *cos = g_new0(CoJob, N);
    int i;

    co_done = 0;
    reset_counters();
    for (i = 0; i < N; i++) {
        cos[i].job.value = 1000 + i * 11;
        aio_co_enter(ctx, qemu_coroutine_create(submit_co_entry, &cos[i]));
    }
    /* All of them yielded: nothing completes without the loop. */
    g_assert_cmpint(co_done, ==, 0);
    for (i = 0; i < MAX_ITERATIONS && co_done < N; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(co_done, ==, N);
    for (i = 0; i < N; i++) {
        g_assert_true(cos[i].done);
        g_assert_cmpint(cos[i].result, ==, 1000 + i * 11);
        g_assert_cmpint(qatomic_read(&cos[i].job.ran), ==, 1);
        g_assert_cmpint(cos[i].resumed_tid, ==, main_tid);
        g_assert_true(cos[i].resumed_ctx == ctx);
        g_assert_cmpint(qatomic_read(&cos[i].job.worker_tid), !=, main_tid);
    }
    poll_pool_idle(ctx);
    g_free(cos);
}

/*
 * A callback that waits in a nested aio_poll() for another request that
 * finished at the same time (usually in the same completion batch).
 */
typedef struct NestedPair {
    Job a, b;
    bool a_saw_b;
} NestedPair;

static void nested_a_cb(void *opaque, int ret)
{
    NestedPair *p = opaque;
    AioContext *ctx = qemu_get_current_aio_context();
    int i;

    job_cb(&p->a, ret);
    for (i = 0; i < MAX_ITERATIONS && p->b.completions == 0; i++) {
        aio_poll(ctx, true);
    }
    p->a_saw_b = p->b.completions == 1;
}

static void test_completion_nested_wait(void)
{
    AioContext *ctx = qemu_get_aio_context();
    int round, i;

    for (round = 0; round < 100; round++) {
        NestedPair p = { .a = { .value = 1, .block = true },
                         .b = { .value = 2, .block = true } };

        reset_counters();
        thread_pool_submit_aio(job_fn, &p.a, nested_a_cb, &p);
        thread_pool_submit_aio(job_fn, &p.b, job_cb, &p.b);
        /* Both running, then both finish before the loop looks. */
        qemu_sem_wait(&started);
        qemu_sem_wait(&started);
        qemu_sem_post(&gate);
        qemu_sem_post(&gate);
        /*
         * Not needed for correctness; makes it likely that the loop finds
         * both in one batch, the case this is about.  Capped.
         */
        for (i = 0; i < 100000 && qatomic_read(&running) > 0; i++) {
            sched_yield();
        }
        poll_completions(ctx, 2);
        g_assert_true(p.a_saw_b);
        assert_job_done(&p.a, main_tid);
        assert_job_done(&p.b, main_tid);
    }
    poll_pool_idle(ctx);
}

/* ---- Cancellation ----------------------------------------------------- */

/* Fill a max=1 pool of the current context with one blocking job. */
static void occupy_single_worker(AioContext *ctx, Job *blocker)
{
    aio_context_set_thread_pool_params(ctx, 0, 1, &error_abort);
    *blocker = (Job){ .value = 77, .block = true };
    thread_pool_submit_aio(job_fn, blocker, job_cb, blocker);
    qemu_sem_wait(&started);
}

static void test_cancel_async_queued_half(void)
{
    AioContext *ctx = qemu_get_aio_context();
    enum { N = 20 };
    BlockAIOCB *acb[N];
    Job jobs[N] = { 0 };
    Job blocker;
    int i;

    reset_counters();
    occupy_single_worker(ctx, &blocker);
    for (i = 0; i < N; i++) {
        jobs[i].value = 500 + i;
        acb[i] = thread_pool_submit_aio(job_fn, &jobs[i], job_cb, &jobs[i]);
    }
    for (i = 0; i < N; i += 2) {
        bdrv_aio_cancel_async(acb[i]);
    }
    /* Cancelled requests complete later, from the loop, not in here. */
    g_assert_cmpint(qatomic_read(&total_completions), ==, 0);
    poll_completions(ctx, N / 2);
    for (i = 0; i < N; i += 2) {
        assert_job_cancelled(&jobs[i], main_tid);
    }
    for (i = 1; i < N; i += 2) {
        g_assert_cmpint(qatomic_read(&jobs[i].ran), ==, 0);
        g_assert_cmpint(jobs[i].completions, ==, 0);
    }

    qemu_sem_post(&gate);
    poll_completions(ctx, N / 2 + N / 2 + 1);
    assert_job_done(&blocker, main_tid);
    for (i = 0; i < N; i++) {
        if (i % 2) {
            assert_job_done(&jobs[i], main_tid);
        } else {
            assert_job_cancelled(&jobs[i], main_tid);
        }
    }
    poll_pool_idle(ctx);
    reset_main_pool();
}

/* Cancelling a running request changes nothing: it completes normally. */
static void test_cancel_async_running(void)
{
    AioContext *ctx = qemu_get_aio_context();
    Job job = { .value = 61, .block = true };
    BlockAIOCB *acb;

    reset_counters();
    acb = thread_pool_submit_aio(job_fn, &job, job_cb, &job);
    qemu_sem_wait(&started);
    bdrv_aio_cancel_async(acb);
    qemu_sem_post(&gate);
    poll_completions(ctx, 1);
    assert_job_done(&job, main_tid);
    poll_pool_idle(ctx);
}

static void test_cancel_sync_queued(void)
{
    AioContext *ctx = qemu_get_aio_context();
    Job blocker, job = { .value = 5 };
    BlockAIOCB *acb;

    reset_counters();
    occupy_single_worker(ctx, &blocker);
    acb = thread_pool_submit_aio(job_fn, &job, job_cb, &job);
    bdrv_aio_cancel(acb);
    /* Completed, with -ECANCELED, before bdrv_aio_cancel returned. */
    assert_job_cancelled(&job, main_tid);
    g_assert_cmpint(blocker.completions, ==, 0);

    qemu_sem_post(&gate);
    poll_completions(ctx, 2);
    assert_job_done(&blocker, main_tid);
    g_assert_cmpint(qatomic_read(&job.ran), ==, 0);
    poll_pool_idle(ctx);
    reset_main_pool();
}

typedef struct Releaser {
    QemuThread thread;
    int waiter_tid;
} Releaser;

/* Open the gate once @waiter_tid sleeps (in the cancel's event loop). */
static void *releaser_fn(void *opaque)
{
    Releaser *r = opaque;

    thread_probe_wait_sleeping(r->waiter_tid);
    qemu_sem_post(&gate);
    return NULL;
}

static void releaser_start(Releaser *r, int waiter_tid)
{
    r->waiter_tid = waiter_tid;
    qemu_thread_create(&r->thread, "releaser", releaser_fn, r,
                       QEMU_THREAD_JOINABLE);
}

static void test_cancel_sync_running(void)
{
    AioContext *ctx = qemu_get_aio_context();
    Job job = { .value = 42, .block = true };
    Releaser r;
    BlockAIOCB *acb;

    reset_counters();
    acb = thread_pool_submit_aio(job_fn, &job, job_cb, &job);
    qemu_sem_wait(&started);
    releaser_start(&r, main_tid);
    bdrv_aio_cancel(acb);
    /* It waited for the real completion: the function's own result. */
    assert_job_done(&job, main_tid);
    qemu_thread_join(&r.thread);
    poll_pool_idle(ctx);
}

/* Both kinds of bdrv_aio_cancel from a BH of an IOThread's context. */
typedef struct IOThreadCancel {
    int tid;
    Job blocker1, queued, blocker2;
    QemuSemaphore waiting;      /* the BH is about to cancel blocker2 */
    QemuSemaphore done;
} IOThreadCancel;

static void iothread_cancel_queued_bh(void *opaque)
{
    IOThreadCancel *s = opaque;
    AioContext *ctx = qemu_get_current_aio_context();
    BlockAIOCB *acb;

    occupy_single_worker(ctx, &s->blocker1);
    s->queued = (Job){ .value = 3 };
    acb = thread_pool_submit_aio(job_fn, &s->queued, job_cb, &s->queued);
    bdrv_aio_cancel(acb);
    assert_job_cancelled(&s->queued, s->tid);
    qemu_sem_post(&s->done);
}

static void iothread_cancel_running_bh(void *opaque)
{
    IOThreadCancel *s = opaque;
    BlockAIOCB *acb;

    s->blocker2 = (Job){ .value = 99, .block = true };
    acb = thread_pool_submit_aio(job_fn, &s->blocker2, job_cb, &s->blocker2);
    qemu_sem_wait(&started);
    qemu_sem_post(&s->waiting);
    bdrv_aio_cancel(acb);
    assert_job_done(&s->blocker2, s->tid);
    /* blocker1 finished before blocker2 started: completed before it. */
    assert_job_done(&s->blocker1, s->tid);
    qemu_sem_post(&s->done);
}

static void test_cancel_in_iothread(void)
{
    IOThread *iot = iothread_create("tp-cancel", &error_abort);
    AioContext *ictx = iothread_get_aio_context(iot);
    IOThreadCancel s = { .tid = iothread_get_thread_id(iot) };
    Releaser r;

    reset_counters();
    qemu_sem_init(&s.waiting, 0);
    qemu_sem_init(&s.done, 0);

    /* A queued request: cancelled and completed inside bdrv_aio_cancel. */
    aio_bh_schedule_oneshot(ictx, iothread_cancel_queued_bh, &s);
    qemu_sem_wait(&s.done);
    /* Let blocker1 finish; its completion runs in the IOThread. */
    qemu_sem_post(&gate);

    /* A running request: bdrv_aio_cancel waits in the IOThread's loop. */
    aio_bh_schedule_oneshot(ictx, iothread_cancel_running_bh, &s);
    qemu_sem_wait(&s.waiting);
    releaser_start(&r, s.tid);
    qemu_sem_wait(&s.done);
    qemu_thread_join(&r.thread);

    iothread_destroy(iot);
    g_assert_cmpint(qatomic_read(&total_completions), ==, 3);
    qemu_sem_destroy(&s.waiting);
    qemu_sem_destroy(&s.done);
}

/* ---- A pool in an IOThread, driven from coroutines there --------------- */

typedef struct IOThreadCo {
    int tid;
    AioContext *ctx;
    int finished;               /* IOThread only */
    bool ok;                    /* IOThread only: every check passed */
    QemuSemaphore done;
} IOThreadCo;

enum { IOT_COROUTINES = 20, IOT_ROUNDS = 10 };

static int square_fn(void *opaque)
{
    int v = (int)(intptr_t)opaque;

    progress();
    return v * v;
}

static void coroutine_fn iothread_co_entry(void *opaque)
{
    IOThreadCo *s = opaque;
    int i;

    for (i = 0; i < IOT_ROUNDS; i++) {
        int v = i + 3;
        int ret = thread_pool_submit_co(square_fn, (void *)(intptr_t)v);

        if (ret != v * v || qemu_get_thread_id() != s->tid ||
            qemu_get_current_aio_context() != s->ctx) {
            s->ok = false;
        }
    }
    if (++s->finished == IOT_COROUTINES) {
        qemu_sem_post(&s->done);
    }
}

static void iothread_start_cos_bh(void *opaque)
{
    IOThreadCo *s = opaque;
    int i;

    for (i = 0; i < IOT_COROUTINES; i++) {
        aio_co_enter(s->ctx, qemu_coroutine_create(iothread_co_entry, s));
    }
}

static void test_iothread_submit_co(void)
{
    IOThread *iot = iothread_create("tp-co", &error_abort);
    IOThreadCo s = {
        .tid = iothread_get_thread_id(iot),
        .ctx = iothread_get_aio_context(iot),
        .ok = true,
    };

    qemu_sem_init(&s.done, 0);
    aio_bh_schedule_oneshot(s.ctx, iothread_start_cos_bh, &s);
    qemu_sem_wait(&s.done);
    iothread_destroy(iot);
    g_assert_true(s.ok);
    g_assert_cmpint(s.finished, ==, IOT_COROUTINES);
    qemu_sem_destroy(&s.done);
}

/* ---- Freeing a pool with work in flight -------------------------------- */

typedef struct FreeCase {
    Job jobs[50];
    bool in_unref;
    int tid;
} FreeCase;

static FreeCase *free_case;

static void free_case_cb(void *opaque, int ret)
{
    /* Every completion runs inside the final unref. */
    g_assert_true(free_case->in_unref);
    job_cb(opaque, ret);
}

static void *free_case_thread(void *opaque)
{
    FreeCase *f = opaque;
    AioContext *ctx = aio_context_new(&error_abort);
    BlockAIOCB *acb[50];
    int i;

    qemu_set_current_aio_context(ctx);
    f->tid = qemu_get_thread_id();
    aio_context_set_thread_pool_params(ctx, 0, 2, &error_abort);
    for (i = 0; i < 50; i++) {
        f->jobs[i] = (Job){ .value = i, .block = true };
        acb[i] = thread_pool_submit_aio(job_fn, &f->jobs[i], free_case_cb,
                                        &f->jobs[i]);
    }
    /* Two run (and block); the rest wait, so 10..19 are surely queued. */
    qemu_sem_wait(&started);
    qemu_sem_wait(&started);
    for (i = 10; i < 20; i++) {
        bdrv_aio_cancel_async(acb[i]);
    }
    /* Let the 40 others run, and drop the context while they do. */
    for (i = 0; i < 40; i++) {
        qemu_sem_post(&gate);
    }
    f->in_unref = true;
    aio_context_unref(ctx);
    f->in_unref = false;

    /* Every job finished before the unref returned. */
    g_assert_cmpint(qatomic_read(&running), ==, 0);
    return NULL;
}

static void test_free_completes_in_flight(void)
{
    FreeCase *f = g_new0(FreeCase, 1);
    QemuThread thread;
    int i;

    reset_counters();
    free_case = f;
    qemu_thread_create(&thread, "free-case", free_case_thread, f,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_join(&thread);
    /* Blocking jobs post 'started' once each; two were consumed. */
    for (i = 0; i < 38; i++) {
        qemu_sem_wait(&started);
    }
    g_assert_cmpint(qatomic_read(&total_completions), ==, 50);
    for (i = 0; i < 50; i++) {
        if (i >= 10 && i < 20) {
            assert_job_cancelled(&f->jobs[i], f->tid);
        } else {
            assert_job_done(&f->jobs[i], f->tid);
        }
    }
    free_case = NULL;
    g_free(f);
    thread_pool_free(NULL);
}

/* ---- Pool size ---------------------------------------------------------- */

static void min_case(AioContext *ctx, void *opaque)
{
    ThreadPool *pool = aio_get_thread_pool(ctx);
    int tid = qemu_get_thread_id();
    Job jobs[3] = { 0 };
    int i;

    /* No work, no workers. */
    g_assert_cmpint(qaio_int_thread_pool_threads(pool), ==, 0);

    aio_context_set_thread_pool_params(ctx, 3, 8, &error_abort);
    g_assert_cmpint(qaio_int_thread_pool_threads(pool), ==, 3);
    g_assert_true(qaio_int_thread_pool_wait_threads(pool, 3,
                                                    WAIT_THREADS_MS));

    /* Three requests go to the three idle workers: nobody new starts. */
    reset_counters();
    for (i = 0; i < 3; i++) {
        jobs[i] = (Job){ .value = i, .block = true };
        thread_pool_submit_aio(job_fn, &jobs[i], job_cb, &jobs[i]);
    }
    g_assert_cmpint(qaio_int_thread_pool_threads(pool), ==, 3);
    for (i = 0; i < 3; i++) {
        qemu_sem_wait(&started);
    }
    g_assert_cmpint(qatomic_read(&running), ==, 3);
    g_assert_cmpint(qatomic_read(&jobs[0].worker_tid), !=,
                    qatomic_read(&jobs[1].worker_tid));
    g_assert_cmpint(qatomic_read(&jobs[0].worker_tid), !=,
                    qatomic_read(&jobs[2].worker_tid));
    g_assert_cmpint(qatomic_read(&jobs[1].worker_tid), !=,
                    qatomic_read(&jobs[2].worker_tid));
    for (i = 0; i < 3; i++) {
        qemu_sem_post(&gate);
    }
    poll_completions(ctx, 3);
    for (i = 0; i < 3; i++) {
        assert_job_done(&jobs[i], tid);
    }

    /* The minimum stays: still three once idle. */
    g_assert_cmpint(qaio_int_thread_pool_threads(pool), ==, 3);
}

static void test_params_min(void)
{
    run_in_new_context(min_case, NULL);
}

static void max_case(AioContext *ctx, void *opaque)
{
    ThreadPool *pool = aio_get_thread_pool(ctx);
    int tid = qemu_get_thread_id();
    enum { N = 10 };
    Job jobs[N] = { 0 };
    int i;

    reset_counters();
    aio_context_set_thread_pool_params(ctx, 0, 2, &error_abort);
    for (i = 0; i < N; i++) {
        jobs[i] = (Job){ .value = i, .block = true };
        thread_pool_submit_aio(job_fn, &jobs[i], job_cb, &jobs[i]);
    }
    /* Ten requests, two workers, two running. */
    g_assert_cmpint(qaio_int_thread_pool_threads(pool), ==, 2);
    qemu_sem_wait(&started);
    qemu_sem_wait(&started);
    g_assert_cmpint(qatomic_read(&running), ==, 2);

    /* A raised maximum applies at once: two more start on the queue. */
    aio_context_set_thread_pool_params(ctx, 0, 4, &error_abort);
    g_assert_cmpint(qaio_int_thread_pool_threads(pool), ==, 4);
    qemu_sem_wait(&started);
    qemu_sem_wait(&started);
    g_assert_cmpint(qatomic_read(&running), ==, 4);
    g_assert_cmpint(qatomic_read(&max_running), ==, 4);

    /*
     * Lowered to one while four run: they finish their requests, then all
     * but one leave, and the rest of the queue runs one at a time.
     */
    aio_context_set_thread_pool_params(ctx, 0, 1, &error_abort);
    for (i = 0; i < 4; i++) {
        qemu_sem_post(&gate);
    }
    g_assert_true(qaio_int_thread_pool_wait_threads(pool, 1,
                                                    WAIT_THREADS_MS));
    qatomic_set(&max_running, 0);
    for (i = 4; i < N; i++) {
        qemu_sem_wait(&started);
        g_assert_cmpint(qatomic_read(&running), ==, 1);
        qemu_sem_post(&gate);
    }
    poll_completions(ctx, N);
    g_assert_cmpint(qatomic_read(&max_running), ==, 1);
    for (i = 0; i < N; i++) {
        assert_job_done(&jobs[i], tid);
    }
}

static void test_params_max(void)
{
    run_in_new_context(max_case, NULL);
}

/* Never more than max=2 at once, over many short requests. */
static void max_burst_case(AioContext *ctx, void *opaque)
{
    ThreadPool *pool = aio_get_thread_pool(ctx);
    enum { N = 2000 };
    Job *jobs = g_new0(Job, N);
    int i;

    reset_counters();
    aio_context_set_thread_pool_params(ctx, 0, 2, &error_abort);
    for (i = 0; i < N; i++) {
        jobs[i].value = i;
        thread_pool_submit_aio(job_fn, &jobs[i], job_cb, &jobs[i]);
        g_assert_cmpint(qaio_int_thread_pool_threads(pool), <=, 2);
    }
    poll_completions(ctx, N);
    g_assert_cmpint(qatomic_read(&max_running), <=, 2);
    g_assert_cmpint(qatomic_read(&max_running), >=, 1);
    for (i = 0; i < N; i++) {
        g_assert_cmpint(qatomic_read(&jobs[i].ran), ==, 1);
        g_assert_cmpint(jobs[i].ret, ==, i);
    }
    g_free(jobs);
}

static void test_params_max_burst(void)
{
    run_in_new_context(max_burst_case, NULL);
}

static void idle_case(AioContext *ctx, void *opaque)
{
    ThreadPool *pool = aio_get_thread_pool(ctx);
    enum { N = 8 };
    Job jobs[N] = { 0 };
    int i;

    qaio_int_thread_pool_set_idle_timeout(pool, 1);
    aio_context_set_thread_pool_params(ctx, 1, N, &error_abort);
    reset_counters();
    for (i = 0; i < N; i++) {
        jobs[i] = (Job){ .value = i, .block = true };
        thread_pool_submit_aio(job_fn, &jobs[i], job_cb, &jobs[i]);
    }
    for (i = 0; i < N; i++) {
        qemu_sem_wait(&started);
    }
    g_assert_cmpint(qaio_int_thread_pool_threads(pool), ==, N);
    for (i = 0; i < N; i++) {
        qemu_sem_post(&gate);
    }
    poll_completions(ctx, N);

    /* Idle workers above the minimum leave; the minimum stays. */
    g_assert_true(qaio_int_thread_pool_wait_threads(pool, 1,
                                                    WAIT_THREADS_MS));
    /* With the minimum at 0 the last one leaves too. */
    aio_context_set_thread_pool_params(ctx, 0, N, &error_abort);
    g_assert_true(qaio_int_thread_pool_wait_threads(pool, 0,
                                                    WAIT_THREADS_MS));

    /* And work still gets done: a worker starts again on demand. */
    jobs[0] = (Job){ .value = 1234 };
    thread_pool_submit_aio(job_fn, &jobs[0], job_cb, &jobs[0]);
    poll_completions(ctx, N + 1);
    assert_job_done(&jobs[0], qemu_get_thread_id());
}

static void test_params_idle_exit(void)
{
    run_in_new_context(idle_case, NULL);
}

/*
 * Submissions racing with idle workers that time out: a submission claims
 * an idle worker and signals it after dropping the lock, and meanwhile the
 * worker may leave its wait on its own (a 1 ms idle timeout) or exit.  The
 * claim must still be honoured by somebody, or a request would be
 * stranded (a hang, which the watchdog reports).  Bursts of 1 to 4 short
 * requests; every fourth round first waits for every worker to have timed
 * out and exited, so that the next burst spawns them again.  Then the same
 * with the minimum at the maximum, where idle workers wait without a
 * timeout and only the signal can wake them.
 */
#define RACE_ROUNDS SCALED(3000)

static void idle_race_case(AioContext *ctx, void *opaque)
{
    ThreadPool *pool = aio_get_thread_pool(ctx);
    int tid = qemu_get_thread_id();
    Job jobs[4];
    int round, i, done = 0;

    qaio_int_thread_pool_set_idle_timeout(pool, 1);
    aio_context_set_thread_pool_params(ctx, 0, 4, &error_abort);
    reset_counters();
    for (round = 0; round < 2 * RACE_ROUNDS; round++) {
        int n = round % 4 + 1;

        if (round == RACE_ROUNDS) {
            aio_context_set_thread_pool_params(ctx, 4, 4, &error_abort);
        } else if (round < RACE_ROUNDS && round % 4 == 0) {
            g_assert_true(qaio_int_thread_pool_wait_threads(pool, 0,
                                                            WAIT_THREADS_MS));
        }
        for (i = 0; i < n; i++) {
            jobs[i] = (Job){ .value = round * 4 + i };
            thread_pool_submit_aio(job_fn, &jobs[i], job_cb, &jobs[i]);
        }
        done += n;
        poll_completions(ctx, done);
        for (i = 0; i < n; i++) {
            assert_job_done(&jobs[i], tid);
        }
        g_assert_cmpint(qaio_int_thread_pool_threads(pool), <=, 4);
    }
    g_assert_cmpint(qatomic_read(&max_running), <=, 4);
}

static void test_wakeup_idle_race(void)
{
    run_in_new_context(idle_race_case, NULL);
}

static void test_params_invalid(void)
{
    AioContext *ctx = qemu_get_aio_context();
    static const int64_t bad[][2] = {
        { -1, 4 }, { 0, 0 }, { 5, 4 }, { 0, (int64_t)INT_MAX + 1 },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        Error *err = NULL;

        aio_context_set_thread_pool_params(ctx, bad[i][0], bad[i][1], &err);
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(error_get_pretty(err),
                                "invalid thread pool size"));
        error_free(err);
        /* Nothing changed. */
        g_assert_cmpint(ctx->thread_pool_min, ==, 0);
        g_assert_cmpint(ctx->thread_pool_max, ==,
                        THREAD_POOL_MAX_THREADS_DEFAULT);
    }
}

/* ---- Misuse ------------------------------------------------------------ */

static void *submit_without_context_fn(void *opaque)
{
    thread_pool_submit(count_fn, opaque);
    return NULL;
}

static void test_submit_without_context_aborts(void)
{
    if (g_test_subprocess()) {
        QemuThread thread;
        int count = 0;

        qemu_thread_create(&thread, "no-ctx", submit_without_context_fn,
                           &count, QEMU_THREAD_JOINABLE);
        qemu_thread_join(&thread);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*thread_pool_submit_aio: the calling thread "
                              "has no current AioContext*");
}

static void test_submit_co_outside_coroutine_aborts(void)
{
    if (g_test_subprocess()) {
        thread_pool_submit_co(square_fn, NULL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*thread_pool_submit_co: called outside "
                              "coroutine context*");
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);
    main_tid = qemu_get_thread_id();
    qemu_sem_init(&started, 0);
    qemu_sem_init(&gate, 0);
    watchdog_start("test-thread-pool");

    g_test_add_func("/thread-pool/submit-aio/return-values",
                    test_submit_aio_values);
    g_test_add_func("/thread-pool/submit-aio/cb-null",
                    test_submit_aio_cb_null);
    g_test_add_func("/thread-pool/submit/fire-and-forget",
                    test_submit_fire_and_forget);
    g_test_add_func("/thread-pool/submit-co/100-coroutines",
                    test_submit_co_many);
    g_test_add_func("/thread-pool/completion/nested-wait-in-callback",
                    test_completion_nested_wait);
    g_test_add_func("/thread-pool/cancel-async/queued-half",
                    test_cancel_async_queued_half);
    g_test_add_func("/thread-pool/cancel-async/running-completes-normally",
                    test_cancel_async_running);
    g_test_add_func("/thread-pool/cancel/queued", test_cancel_sync_queued);
    g_test_add_func("/thread-pool/cancel/running-waits",
                    test_cancel_sync_running);
    g_test_add_func("/thread-pool/cancel/in-iothread",
                    test_cancel_in_iothread);
    g_test_add_func("/thread-pool/iothread/submit-co",
                    test_iothread_submit_co);
    g_test_add_func("/thread-pool/free/completes-in-flight",
                    test_free_completes_in_flight);
    g_test_add_func("/thread-pool/params/min-workers", test_params_min);
    g_test_add_func("/thread-pool/params/max-workers", test_params_max);
    g_test_add_func("/thread-pool/params/max-burst", test_params_max_burst);
    g_test_add_func("/thread-pool/params/idle-exit", test_params_idle_exit);
    g_test_add_func("/thread-pool/params/invalid", test_params_invalid);
    g_test_add_func("/thread-pool/wakeup/idle-timeout-races-submit",
                    test_wakeup_idle_race);
    g_test_add_func("/thread-pool/misuse/submit-without-context",
                    test_submit_without_context_aborts);
    g_test_add_func("/thread-pool/misuse/submit-co-outside-coroutine",
                    test_submit_co_outside_coroutine_aborts);

    ret = g_test_run();
    watchdog_stop();
    return ret;
}
