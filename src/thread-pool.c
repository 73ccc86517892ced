/*
 * thread-pool.c: the per-AioContext pool of worker threads that runs
 * blocking functions (block/thread-pool.h).
 *
 * Owns ThreadPool and its requests (ThreadPoolElement, a BlockAIOCB).  A
 * request is QUEUED on request_list, ACTIVE while a worker runs its
 * function, and DONE once it has a result; the completion BH then runs its
 * callback in the context's loop and drops the AIOCB.  A request cancelled
 * while QUEUED goes straight to DONE with -ECANCELED and never runs.
 *
 * Threading:
 * - Submission, cancellation and the completion BH run in the home thread
 *   of the context (the thread whose current context it is).
 * - Workers take requests under pool->lock and hand results back without
 *   it: each finished request is pushed on the lock-free pool->done stack,
 *   and whoever finds that stack empty schedules the completion BH, so a
 *   burst of completions costs one BH run.
 * - Workers start on demand (a submission with no idle worker to claim)
 *   up to max_threads, and are created with pool->lock held so that a new
 *   worker's first lock orders it after its QemuThread was filled in.
 *   Workers above min_threads exit after idle_timeout_ms without work.  An
 *   exited worker parks its QemuThread on pool->exited, and the next spawn,
 *   parameter update or free joins it.
 *
 * Wake-ups: an idle worker waits on request_cond.  A submission claims one
 * idle worker by counting a wakeup under the lock, and signals once it has
 * dropped the lock; the worker that next leaves its wait (for whatever
 * reason) consumes the count and looks at the queue again before it may
 * decide to exit.  So a queued request always has
 * a worker that will look at it: a busy one (it re-checks the queue before
 * waiting), a claimed idle one, or a new one.
 */
#include "qemu/osdep.h"
#include "block/thread-pool.h"
#include "qemu/coroutine.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "qaio/metrics.h"
#include "thread-pool-int.h"

typedef enum ThreadPoolState {
    THREAD_POOL_QUEUED,
    THREAD_POOL_ACTIVE,
    THREAD_POOL_DONE,
} ThreadPoolState;

typedef struct ThreadPoolElement {
    BlockAIOCB common;
    struct ThreadPool *pool;
    ThreadPoolFunc *func;
    void *arg;

    /*
     * ThreadPoolState; atomic.  QUEUED -> ACTIVE (worker) and QUEUED ->
     * DONE (cancel) happen under pool->lock, which is what makes a cancel
     * and a worker agree on who owns the request; ACTIVE -> DONE needs no
     * lock.
     */
    int state;
    /* Written before the request is published on pool->done. */
    int ret;
    /* When it was queued (QEMU_CLOCK_REALTIME); for the wait metrics. */
    int64_t submit_ns;

    /* On request_list while QUEUED; under pool->lock. */
    QTAILQ_ENTRY(ThreadPoolElement) reqs;
    /* On the pool->done stack: written before the push publishes it. */
    struct ThreadPoolElement *done_next;
    /* On pool->completions: home thread only. */
    QSIMPLEQ_ENTRY(ThreadPoolElement) compl_next;
} ThreadPoolElement;

typedef struct ThreadPoolWorker {
    QemuThread thread;
    struct ThreadPool *pool;
    QSLIST_ENTRY(ThreadPoolWorker) next;    /* pool->exited, under lock */
} ThreadPoolWorker;

struct ThreadPool {
    AioContext *ctx;                /* set at creation */
    QEMUBH *completion_bh;          /* set at creation */

    QemuMutex lock;
    /* Idle workers wait here for requests (or for new limits). */
    QemuCond request_cond;
    /* Broadcast when a worker starts or exits (free and tests wait). */
    QemuCond worker_cond;

    /* Everything from here to 'stopping' is under lock. */
    QTAILQ_HEAD(, ThreadPoolElement) request_list;
    int n_queued;                   /* length of request_list */
    QSLIST_HEAD(ThreadPoolWorkerList, ThreadPoolWorker) exited; /* joinable */
    int cur_threads;                /* alive or being created */
    int starting;                   /* created, not yet in their loop */
    int idle_threads;               /* waiting on request_cond */
    int wakeups;                    /* signals not yet consumed; <= idle */
    int min_threads;
    int max_threads;
    int idle_timeout_ms;
    /* Under lock; also read atomically by the home thread. */
    bool stopping;
    /*
     * qaio/metrics.h.  running: requests in a worker's hands, atomic, and
     * dropped before the result is published so that a completed request
     * is never still counted.  The wait times: under lock.
     */
    int running;
    uint64_t wait_ns;
    uint64_t wait_max_ns;

    /* Finished requests, newest first; pushed by workers, taken whole. */
    ThreadPoolElement *done;        /* atomic */

    /* Home thread only. */
    QSIMPLEQ_HEAD(, ThreadPoolElement) completions;
    int in_flight;                  /* submitted, completion not yet run */
    /* qaio/metrics.h; home thread writes, any thread reads (relaxed). */
    uint64_t submitted;
    uint64_t completed;
    uint64_t cancelled;
};

/* A home-thread counter that other threads may read (qaio/metrics.h). */
static void thread_pool_count(uint64_t *counter)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
}

/* ---- Workers ---------------------------------------------------------- */

static void *thread_pool_worker(void *opaque);

/* Start one worker.  Called with pool->lock held. */
static void thread_pool_spawn_locked(ThreadPool *pool)
{
    ThreadPoolWorker *w = g_new0(ThreadPoolWorker, 1);

    w->pool = pool;
    pool->cur_threads++;
    pool->starting++;
    qemu_thread_create(&w->thread, "worker", thread_pool_worker, w,
                       QEMU_THREAD_JOINABLE);
}

/* Join and free every worker that has exited.  Called without the lock. */
static void thread_pool_join_exited(ThreadPool *pool)
{
    ThreadPoolWorker *w;
    struct ThreadPoolWorkerList exited;

    qemu_mutex_lock(&pool->lock);
    exited = pool->exited;
    QSLIST_INIT(&pool->exited);
    qemu_mutex_unlock(&pool->lock);

    while ((w = QSLIST_FIRST(&exited)) != NULL) {
        QSLIST_REMOVE_HEAD(&exited, next);
        /* It put itself on the list last thing: this returns promptly. */
        qemu_thread_join(&w->thread);
        g_free(w);
    }
}

/*
 * Wait for work with pool->lock held and the queue empty.  Returns false
 * if this worker should exit: it timed out with nobody claiming it, the
 * queue is still empty and the pool is above its minimum.
 */
static bool thread_pool_worker_idle(ThreadPool *pool)
{
    bool woken = true;

    pool->idle_threads++;
    if (pool->cur_threads > pool->min_threads) {
        woken = qemu_cond_timedwait(&pool->request_cond, &pool->lock,
                                    pool->idle_timeout_ms);
    } else {
        qemu_cond_wait(&pool->request_cond, &pool->lock);
    }
    pool->idle_threads--;

    if (pool->wakeups > 0) {
        /*
         * A submitter counted on an idle worker; we are it, whichever of
         * us the signal actually reached.  Keeping 'wakeups <= idle'
         * true is what makes the submitter's count exact.
         */
        pool->wakeups--;
        return true;
    }
    return woken || !QTAILQ_EMPTY(&pool->request_list) ||
           pool->cur_threads <= pool->min_threads;
}

/* Publish a finished request; schedule the completion BH if needed. */
static void thread_pool_push_done(ThreadPool *pool, ThreadPoolElement *req)
{
    ThreadPoolElement *old = qatomic_read(&pool->done);

    for (;;) {
        ThreadPoolElement *seen;

        req->done_next = old;
        /*
         * The compare-and-swap is a full barrier: req->ret and
         * req->done_next are visible before req is; pairs with the xchg
         * in thread_pool_take_done().
         */
        seen = qatomic_cmpxchg(&pool->done, old, req);
        if (seen == old) {
            break;
        }
        old = seen;
    }
    /*
     * Only a push onto an empty stack schedules the BH.  A push onto a
     * non-empty one lands on an element whose pusher schedules after its
     * own push, and no take has emptied the stack in between, so the BH
     * run that schedule leads to takes ours too.  Do not touch req after
     * the push: the completion may already have freed it.
     */
    if (!old) {
        qemu_bh_schedule(pool->completion_bh);
    }
}

/* A worker picked @req: account its time in the queue.  Under the lock. */
static void thread_pool_note_wait(ThreadPool *pool, ThreadPoolElement *req)
{
    int64_t waited = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - req->submit_ns;
    uint64_t w = waited > 0 ? waited : 0;

    pool->wait_ns += w;
    if (w > pool->wait_max_ns) {
        pool->wait_max_ns = w;
    }
}

static void *thread_pool_worker(void *opaque)
{
    ThreadPoolWorker *w = opaque;
    ThreadPool *pool = w->pool;

    qemu_mutex_lock(&pool->lock);
    pool->starting--;
    qemu_cond_broadcast(&pool->worker_cond);

    for (;;) {
        ThreadPoolElement *req;
        int ret;

        /* Surplus after thread_pool_update_params() lowered the maximum. */
        if (pool->cur_threads > pool->max_threads) {
            break;
        }
        req = QTAILQ_FIRST(&pool->request_list);
        if (!req) {
            if (pool->stopping) {
                break;
            }
            if (!thread_pool_worker_idle(pool)) {
                break;
            }
            continue;
        }

        QTAILQ_REMOVE(&pool->request_list, req, reqs);
        pool->n_queued--;
        qatomic_set(&req->state, THREAD_POOL_ACTIVE);
        thread_pool_note_wait(pool, req);
        qatomic_inc(&pool->running);
        qemu_mutex_unlock(&pool->lock);

        ret = req->func(req->arg);

        req->ret = ret;
        qatomic_set(&req->state, THREAD_POOL_DONE);
        qatomic_dec(&pool->running);
        thread_pool_push_done(pool, req);

        qemu_mutex_lock(&pool->lock);
    }

    /*
     * Leave under the lock, as the last thing: once cur_threads drops,
     * thread_pool_free() may go on, and once we are on 'exited' anybody
     * may join us.
     */
    pool->cur_threads--;
    QSLIST_INSERT_HEAD(&pool->exited, w, next);
    qemu_cond_broadcast(&pool->worker_cond);
    qemu_mutex_unlock(&pool->lock);
    return NULL;
}

/* ---- Completion (home thread) ----------------------------------------- */

/* Move what workers finished onto pool->completions, oldest first. */
static bool thread_pool_take_done(ThreadPool *pool)
{
    /* Pairs with the cmpxchg in thread_pool_push_done(). */
    ThreadPoolElement *req = qatomic_xchg(&pool->done, NULL);
    QSIMPLEQ_HEAD(, ThreadPoolElement) batch =
        QSIMPLEQ_HEAD_INITIALIZER(batch);

    if (!req) {
        return false;
    }
    while (req) {
        ThreadPoolElement *next = req->done_next;

        QSIMPLEQ_INSERT_HEAD(&batch, req, compl_next);
        req = next;
    }
    QSIMPLEQ_CONCAT(&pool->completions, &batch);
    return true;
}

static void thread_pool_completion_bh(void *opaque)
{
    ThreadPool *pool = opaque;
    bool rescheduled = false;

    for (;;) {
        ThreadPoolElement *req = QSIMPLEQ_FIRST(&pool->completions);

        if (!req) {
            if (thread_pool_take_done(pool)) {
                continue;
            }
            if (!rescheduled) {
                break;
            }
            /*
             * Drop our own re-arm.  A worker's schedule that the cancel
             * also drops came after its push, and the push came before
             * the take that follows, so nothing is stranded.
             */
            qemu_bh_cancel(pool->completion_bh);
            rescheduled = false;
            continue;
        }

        QSIMPLEQ_REMOVE_HEAD(&pool->completions, compl_next);
        pool->in_flight--;
        thread_pool_count(&pool->completed);
        if (req->common.cb) {
            /*
             * The callback may wait in aio_poll() for a request that is
             * further down this list: keep the BH armed so that the
             * nested loop completes it.
             */
            if (!QSIMPLEQ_EMPTY(&pool->completions)) {
                qemu_bh_schedule(pool->completion_bh);
                rescheduled = true;
            }
            req->common.cb(req->common.opaque, req->ret);
        }
        qemu_aio_unref(req);
    }
}

/* ---- Requests --------------------------------------------------------- */

static void thread_pool_cancel(BlockAIOCB *acb)
{
    ThreadPoolElement *req = container_of(acb, ThreadPoolElement, common);
    ThreadPool *pool = req->pool;
    bool cancelled = false;

    qemu_mutex_lock(&pool->lock);
    if (qatomic_read(&req->state) == THREAD_POOL_QUEUED) {
        QTAILQ_REMOVE(&pool->request_list, req, reqs);
        pool->n_queued--;
        req->ret = -ECANCELED;
        qatomic_set(&req->state, THREAD_POOL_DONE);
        cancelled = true;
    }
    qemu_mutex_unlock(&pool->lock);

    /* We are in the home thread: no need to go through pool->done. */
    if (cancelled) {
        thread_pool_count(&pool->cancelled);
        QSIMPLEQ_INSERT_TAIL(&pool->completions, req, compl_next);
        qemu_bh_schedule(pool->completion_bh);
    }
}

static const AIOCBInfo thread_pool_aiocb_info = {
    .aiocb_size = sizeof(ThreadPoolElement),
    .cancel_async = thread_pool_cancel,
};

BlockAIOCB *thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                                   BlockCompletionFunc *cb, void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();
    ThreadPoolElement *req;
    ThreadPool *pool;
    bool spawned = false;
    bool wake = false;

    if (unlikely(!ctx)) {
        error_report("thread_pool_submit_aio: the calling thread has no "
                     "current AioContext; submit from a thread that runs "
                     "one (the completion runs in its loop)");
        abort();
    }
    pool = aio_get_thread_pool(ctx);
    if (unlikely(qatomic_read(&pool->stopping))) {
        error_report("thread_pool_submit_aio: the thread pool of "
                     "AioContext %p is being freed; nothing may be "
                     "submitted to it any more", (void *)ctx);
        abort();
    }

    req = qemu_aio_get(&thread_pool_aiocb_info, NULL, cb, opaque);
    req->pool = pool;
    req->func = func;
    req->arg = arg;
    req->state = THREAD_POOL_QUEUED;
    req->submit_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    pool->in_flight++;
    thread_pool_count(&pool->submitted);

    qemu_mutex_lock(&pool->lock);
    QTAILQ_INSERT_TAIL(&pool->request_list, req, reqs);
    pool->n_queued++;
    if (pool->idle_threads > pool->wakeups) {
        pool->wakeups++;
        wake = true;
    } else if (pool->cur_threads < pool->max_threads) {
        thread_pool_spawn_locked(pool);
        spawned = true;
    }
    qemu_mutex_unlock(&pool->lock);

    /*
     * Signalled after the unlock, or the worker would wake only to block on
     * the lock we still hold.  The claim above is what counts: whichever
     * idle worker leaves its wait first, for this signal or any other
     * reason, consumes it and looks at the queue.
     */
    if (wake) {
        qemu_cond_signal(&pool->request_cond);
    }

    /* Spawning is the slow path anyway: reap the workers that idled out. */
    if (unlikely(spawned)) {
        thread_pool_join_exited(pool);
    }
    return &req->common;
}

void thread_pool_submit(ThreadPoolFunc *func, void *arg)
{
    thread_pool_submit_aio(func, arg, NULL, NULL);
}

typedef struct ThreadPoolCo {
    Coroutine *co;
    int ret;
} ThreadPoolCo;

static void thread_pool_co_cb(void *opaque, int ret)
{
    ThreadPoolCo *tpc = opaque;

    tpc->ret = ret;
    aio_co_wake(tpc->co);
}

int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func, void *arg)
{
    ThreadPoolCo tpc = {
        .co = qemu_coroutine_self(),
        .ret = -EINPROGRESS,
    };

    if (!qemu_in_coroutine()) {
        error_report("thread_pool_submit_co: called outside coroutine "
                     "context; use thread_pool_submit_aio");
        abort();
    }
    thread_pool_submit_aio(func, arg, thread_pool_co_cb, &tpc);
    qemu_coroutine_yield();
    return tpc.ret;
}

/* ---- The pool --------------------------------------------------------- */

void thread_pool_update_params(ThreadPool *pool, AioContext *ctx)
{
    qemu_mutex_lock(&pool->lock);
    pool->min_threads = qatomic_read(&ctx->thread_pool_min);
    pool->max_threads = qatomic_read(&ctx->thread_pool_max);

    while (pool->cur_threads < pool->min_threads) {
        thread_pool_spawn_locked(pool);
    }
    /* A raised maximum serves requests that waited for a free worker. */
    while (pool->cur_threads < pool->max_threads &&
           pool->n_queued > pool->idle_threads + pool->starting) {
        thread_pool_spawn_locked(pool);
    }
    /*
     * Idle workers look at the new limits: those above the maximum exit,
     * the others wait again, with or without a timeout per the minimum.
     */
    qemu_cond_broadcast(&pool->request_cond);
    qemu_mutex_unlock(&pool->lock);

    thread_pool_join_exited(pool);
}

ThreadPool *thread_pool_new(AioContext *ctx)
{
    ThreadPool *pool = g_new0(ThreadPool, 1);

    pool->ctx = ctx;
    pool->completion_bh = aio_bh_new(ctx, thread_pool_completion_bh, pool);
    qemu_mutex_init(&pool->lock);
    qemu_cond_init(&pool->request_cond);
    qemu_cond_init(&pool->worker_cond);
    QTAILQ_INIT(&pool->request_list);
    QSLIST_INIT(&pool->exited);
    QSIMPLEQ_INIT(&pool->completions);
    pool->idle_timeout_ms = THREAD_POOL_IDLE_TIMEOUT_MS;

    thread_pool_update_params(pool, ctx);
    return pool;
}

void thread_pool_free(ThreadPool *pool)
{
    if (!pool) {
        return;
    }

    /*
     * Workers drain the queue before they see 'stopping' (they only look
     * at it with the queue empty), so every queued request runs.
     */
    qemu_mutex_lock(&pool->lock);
    qatomic_set(&pool->stopping, true);
    qemu_cond_broadcast(&pool->request_cond);
    while (pool->cur_threads > 0) {
        qemu_cond_wait(&pool->worker_cond, &pool->lock);
    }
    assert(QTAILQ_EMPTY(&pool->request_list));
    qemu_mutex_unlock(&pool->lock);
    thread_pool_join_exited(pool);

    /*
     * Every request is DONE now and no worker is left to schedule the BH:
     * run what it would have run, here, so that nothing is lost.
     */
    thread_pool_completion_bh(pool);
    assert(pool->in_flight == 0);

    qemu_bh_delete(pool->completion_bh);
    qemu_cond_destroy(&pool->worker_cond);
    qemu_cond_destroy(&pool->request_cond);
    qemu_mutex_destroy(&pool->lock);
    g_free(pool);
}

/* ---- Metrics (qaio/metrics.h) ----------------------------------------- */

bool qaio_thread_pool_metrics_get(AioContext *ctx, QaioThreadPoolMetrics *m)
{
    /* Pairs with the release store in aio_get_thread_pool(). */
    ThreadPool *pool = qatomic_load_acquire(&ctx->thread_pool);

    *m = (QaioThreadPoolMetrics) { 0 };
    if (!pool) {
        return false;
    }
    m->submitted = __atomic_load_n(&pool->submitted, __ATOMIC_RELAXED);
    m->completed = __atomic_load_n(&pool->completed, __ATOMIC_RELAXED);
    m->cancelled = __atomic_load_n(&pool->cancelled, __ATOMIC_RELAXED);

    qemu_mutex_lock(&pool->lock);
    m->queued = pool->n_queued;
    m->running = qatomic_read(&pool->running);
    m->threads = pool->cur_threads;
    m->wait_ns = pool->wait_ns;
    m->wait_max_ns = pool->wait_max_ns;
    qemu_mutex_unlock(&pool->lock);
    return true;
}

/* ---- Test hooks (thread-pool-int.h) ----------------------------------- */

void qaio_int_thread_pool_set_idle_timeout(ThreadPool *pool, int ms)
{
    assert(ms > 0);
    qemu_mutex_lock(&pool->lock);
    pool->idle_timeout_ms = ms;
    qemu_cond_broadcast(&pool->request_cond);
    qemu_mutex_unlock(&pool->lock);
}

int qaio_int_thread_pool_threads(ThreadPool *pool)
{
    int n;

    qemu_mutex_lock(&pool->lock);
    n = pool->cur_threads;
    qemu_mutex_unlock(&pool->lock);
    return n;
}

bool qaio_int_thread_pool_wait_threads(ThreadPool *pool, int n,
                                       int timeout_ms)
{
    int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
    bool ok = true;

    qemu_mutex_lock(&pool->lock);
    while (pool->cur_threads != n || pool->starting > 0) {
        int64_t left = deadline - g_get_monotonic_time();

        if (left <= 0) {
            ok = false;
            break;
        }
        qemu_cond_timedwait(&pool->worker_cond, &pool->lock,
                            (int)MIN(left / 1000 + 1, (int64_t)INT_MAX));
    }
    qemu_mutex_unlock(&pool->lock);
    return ok;
}

int qaio_int_thread_pool_in_flight(ThreadPool *pool)
{
    return pool->in_flight;
}
