/*
 * test-co-lock.c: CoMutex, CoQueue, CoRwlock and QemuLockable.
 *
 * Single-context cases drive coroutines by hand from the main thread (the
 * main loop's context is its current context) and compare an event log
 * with the exact expected order: who got the lock, who woke, and when
 * relative to the coroutine that woke it.  Multithreaded cases run
 * coroutines in four threads, each with its own AioContext, and move them
 * between threads inside critical sections; they check exact totals that
 * a broken lock would miss.  Registered with 'fdmon' and 'mt'.
 *
 * Threading: single-context cases in the main thread only.  In the
 * multithreaded ones the main thread only starts and joins.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "qemu/processor.h"
#include "ctx-thread.h"

/* ---- Event log ------------------------------------------------------ */

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

static void ev_reset(void)
{
    g_string_truncate(evlog, 0);
}

static void enter(Coroutine *co)
{
    qemu_coroutine_enter(co);
}

/* ---- CoMutex, one context --------------------------------------------- */

static CoMutex mtx;

static void coroutine_fn mutex_uncontended_co(void *opaque)
{
    Coroutine *self = qemu_coroutine_self();

    qemu_co_mutex_lock(&mtx);
    qemu_co_mutex_assert_locked(&mtx);
    g_assert_cmpuint(mtx.locked, ==, 1);
    g_assert(mtx.holder == self);
    g_assert(mtx.ctx == qemu_get_aio_context());
    qemu_co_mutex_unlock(&mtx);
    g_assert_cmpuint(mtx.locked, ==, 0);
    g_assert_null(mtx.holder);
    g_assert_null(mtx.ctx);
    ev("done");
}

static void test_mutex_uncontended(void)
{
    ev_reset();
    qemu_co_mutex_init(&mtx);
    enter(qemu_coroutine_create(mutex_uncontended_co, NULL));
    g_assert_cmpstr(evlog->str, ==, "done");
}

static void coroutine_fn mutex_holder_co(void *opaque)
{
    qemu_co_mutex_lock(&mtx);
    ev("A:lock");
    qemu_coroutine_yield();
    qemu_co_mutex_unlock(&mtx);
    /* B has the lock now (C and D wait) but runs once we terminate. */
    g_assert_cmpuint(mtx.locked, ==, 3);
    ev("A:unlocked");
}

static void coroutine_fn mutex_waiter_co(void *opaque)
{
    const char *name = opaque;

    ev("%s:wait", name);
    qemu_co_mutex_lock(&mtx);
    qemu_co_mutex_assert_locked(&mtx);
    ev("%s:lock", name);
    qemu_co_mutex_unlock(&mtx);
}

/*
 * Unlock hands the lock to the oldest waiter and wakes it with
 * aio_co_wake(), which in the same context means: after the unlocking
 * coroutine yields or terminates.
 */
static void test_mutex_handoff_order(void)
{
    Coroutine *a = qemu_coroutine_create(mutex_holder_co, NULL);

    ev_reset();
    qemu_co_mutex_init(&mtx);
    enter(a);
    enter(qemu_coroutine_create(mutex_waiter_co, (void *)"B"));
    g_assert_cmpuint(mtx.locked, ==, 2);
    enter(qemu_coroutine_create(mutex_waiter_co, (void *)"C"));
    enter(qemu_coroutine_create(mutex_waiter_co, (void *)"D"));
    g_assert_cmpuint(mtx.locked, ==, 4);
    enter(a);
    g_assert_cmpstr(evlog->str, ==,
                    "A:lock B:wait C:wait D:wait A:unlocked B:lock C:lock "
                    "D:lock");
    g_assert_cmpuint(mtx.locked, ==, 0);
    g_assert_null(mtx.holder);
}

static void coroutine_fn mutex_lock_unlock_co(void *opaque)
{
    const char *name = opaque;

    qemu_co_mutex_lock(&mtx);
    g_assert(mtx.holder == qemu_coroutine_self());
    ev("%s:lock", name);
    qemu_coroutine_yield();
    qemu_co_mutex_unlock(&mtx);
    ev("%s:unlock", name);
}

/*
 * The hand-off protocol, made deterministic: a "phantom" locker counts
 * itself in @locked (as a real one does just before queueing) and never
 * queues.  The unlock finds nobody to wake and leaves a ticket; the next
 * real locker must pick it up and take the lock itself, or it would wait
 * for ever.
 */
static void test_mutex_handoff_ticket(void)
{
    Coroutine *h = qemu_coroutine_create(mutex_lock_unlock_co, (void *)"H");
    Coroutine *l = qemu_coroutine_create(mutex_lock_unlock_co, (void *)"L");
    unsigned ticket;

    g_string_truncate(evlog, 0);
    qemu_co_mutex_init(&mtx);
    qemu_coroutine_enter(h);
    qatomic_inc(&mtx.locked);           /* the phantom */
    qemu_coroutine_enter(h);
    g_assert_cmpuint(mtx.locked, ==, 1);
    ticket = qatomic_read(&mtx.handoff);
    g_assert_cmpuint(ticket, !=, 0);

    /* Held by nobody real: L counts itself in and takes the ticket. */
    qemu_coroutine_enter(l);
    g_assert_cmpstr(evlog->str, ==, "H:lock H:unlock L:lock");
    g_assert(mtx.holder == l);
    g_assert_cmpuint(mtx.locked, ==, 2);
    g_assert_cmpuint(qatomic_read(&mtx.handoff), ==, 0);

    /* L's unlock again finds only the phantom: a new, different ticket. */
    qemu_coroutine_enter(l);
    g_assert_cmpuint(mtx.locked, ==, 1);
    g_assert_cmpuint(qatomic_read(&mtx.handoff), !=, 0);
    g_assert_cmpuint(qatomic_read(&mtx.handoff), !=, ticket);
    g_assert_cmpstr(evlog->str, ==, "H:lock H:unlock L:lock L:unlock");
    qemu_co_mutex_init(&mtx);
}

/*
 * The same hand-off across threads, where the ticket is the only thing
 * that orders the unlocker's writes before the new holder's: the thread
 * that takes the ticket learns of it from a relaxed read, not from any
 * lock or queue.  ThreadSanitizer reports a race on the mutex's fields
 * here unless publishing the ticket is a release (it does not model the
 * fence next to it).
 */
static QemuSemaphore handoff_done;
static bool handoff_took_lock;
static int handoff_unlocked;

static void coroutine_fn handoff_taker_co(void *opaque)
{
    qemu_co_mutex_lock(&mtx);
    handoff_took_lock = mtx.holder == qemu_coroutine_self();
    qemu_co_mutex_unlock(&mtx);
    qemu_sem_post(&handoff_done);
}

static void handoff_taker_bh(void *opaque)
{
    /*
     * Relaxed on both sides, so no ordering, and a variable of its own:
     * spinning on @mtx would fill TSan's shadow of it with our reads.
     */
    while (!qatomic_read(&handoff_unlocked)) {
        cpu_relax();
    }
    qemu_coroutine_enter(qemu_coroutine_create(handoff_taker_co, NULL));
}

static void test_mutex_handoff_ticket_cross_thread(void)
{
    Coroutine *h = qemu_coroutine_create(mutex_lock_unlock_co, (void *)"H");
    CtxThread taker;

    g_string_truncate(evlog, 0);
    qemu_co_mutex_init(&mtx);
    qemu_sem_init(&handoff_done, 0);
    handoff_took_lock = false;
    handoff_unlocked = 0;
    qemu_coroutine_enter(h);
    qatomic_inc(&mtx.locked);           /* the phantom */
    ctx_thread_start(&taker, "co-lock-handoff");
    aio_bh_schedule_oneshot(taker.ctx, handoff_taker_bh, NULL);
    qemu_coroutine_enter(h);            /* unlock: publishes the ticket */
    qatomic_set(&handoff_unlocked, 1);
    ctx_thread_sem_wait_or_abort(&handoff_done, "hand-off taker");
    ctx_thread_stop(&taker);
    g_assert_true(handoff_took_lock);
    g_assert_cmpstr(evlog->str, ==, "H:lock H:unlock");
    /* The phantom is still counted; the taker's unlock left a new ticket. */
    g_assert_cmpuint(mtx.locked, ==, 1);
    g_assert_cmpuint(qatomic_read(&mtx.handoff), !=, 0);
    qemu_sem_destroy(&handoff_done);
    qemu_co_mutex_init(&mtx);
}

static void coroutine_fn unlock_not_held_co(void *opaque)
{
    qemu_co_mutex_unlock(&mtx);
}

static void test_mutex_unlock_not_held_aborts(void)
{
    if (g_test_subprocess()) {
        qemu_co_mutex_init(&mtx);
        qemu_coroutine_enter(qemu_coroutine_create(unlock_not_held_co, NULL));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_co_mutex_unlock*does not hold*");
}

static void test_mutex_lock_outside_coroutine_aborts(void)
{
    if (g_test_subprocess()) {
        qemu_co_mutex_init(&mtx);
        qemu_co_mutex_lock(&mtx);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_co_mutex_lock*coroutine context*");
}

/* ---- CoMutex, four threads -------------------------------------------- */

#define MT_THREADS 4
#define MT_COROUTINES 100
#define MT_ITERATIONS 200

typedef struct MtState {
    CtxThread threads[MT_THREADS];
    CoMutex lock;
    CoRwlock rwlock;
    unsigned long counter;      /* plain: protected by the lock under test */
    unsigned long a, b;         /* plain: protected by rwlock */
    unsigned long writes;       /* plain: protected by rwlock */
    unsigned remaining;         /* atomic */
    QemuSemaphore done;
} MtState;

static MtState mt;

typedef struct MtWorker {
    int thread;
    int index;
} MtWorker;

static MtWorker mt_workers[MT_THREADS * MT_COROUTINES];

static void mt_worker_finished(void)
{
    if (qatomic_fetch_dec(&mt.remaining) == 1) {
        qemu_sem_post(&mt.done);
    }
}

static void coroutine_fn mt_mutex_co(void *opaque)
{
    MtWorker *w = opaque;
    int i;

    for (i = 0; i < MT_ITERATIONS; i++) {
        unsigned long seen;

        qemu_co_mutex_lock(&mt.lock);
        seen = mt.counter;
        if (i % 4 == 0) {
            /* Carry the lock to another thread, and unlock from there. */
            w->thread = (w->thread + 1) % MT_THREADS;
            aio_co_reschedule_self(mt.threads[w->thread].ctx);
        } else if (i % 4 == 1) {
            /* Let the others queue up behind us. */
            aio_co_schedule(qemu_get_current_aio_context(),
                            qemu_coroutine_self());
            qemu_coroutine_yield();
        }
        mt.counter = seen + 1;
        qemu_co_mutex_unlock(&mt.lock);
        if (i % 3 == 0) {
            aio_co_schedule(qemu_get_current_aio_context(),
                            qemu_coroutine_self());
            qemu_coroutine_yield();
        }
    }
    mt_worker_finished();
}

static void mt_start_bh(void *opaque)
{
    MtWorker *w = opaque;

    qemu_coroutine_enter(qemu_coroutine_create(mt_mutex_co, w));
}

/* Start @per_thread BHs @start_bh in each of the four threads; wait. */
static void mt_run(int per_thread, void (*start_bh)(void *),
                   const char *what)
{
    int t, i;

    qemu_sem_init(&mt.done, 0);
    for (t = 0; t < MT_THREADS; t++) {
        ctx_thread_start(&mt.threads[t], "co-lock-mt");
    }
    assert(per_thread <= MT_COROUTINES);
    qatomic_set(&mt.remaining, MT_THREADS * per_thread);
    for (t = 0; t < MT_THREADS; t++) {
        for (i = 0; i < per_thread; i++) {
            MtWorker *w = &mt_workers[t * MT_COROUTINES + i];

            w->thread = t;
            w->index = i;
            aio_bh_schedule_oneshot(mt.threads[t].ctx, start_bh, w);
        }
    }
    ctx_thread_sem_wait_or_abort(&mt.done, what);
    ctx_threads_stop(mt.threads, MT_THREADS);
    qemu_sem_destroy(&mt.done);
}

static void test_mutex_multithread_counter(void)
{
    qemu_co_mutex_init(&mt.lock);
    mt.counter = 0;
    mt_run(MT_COROUTINES, mt_start_bh, "mutex counter");
    g_assert_cmpuint(mt.counter, ==,
                     MT_THREADS * MT_COROUTINES * MT_ITERATIONS);
    g_assert_cmpuint(mt.lock.locked, ==, 0);
    g_assert_null(mt.lock.holder);
}

/* ---- CoQueue ------------------------------------------------------------ */

static CoQueue queue;

typedef struct QueueWaiter {
    int id;
    CoQueueWaitFlags flags;
} QueueWaiter;

static void coroutine_fn queue_waiter_co(void *opaque)
{
    QueueWaiter *w = opaque;

    ev("w%d:wait", w->id);
    qemu_co_queue_wait_flags(&queue, NULL, w->flags);
    ev("w%d:woke", w->id);
}

static QueueWaiter waiters[5];

/* Start waiters[0..n), with CO_QUEUE_WAIT_FRONT for the ids in @front. */
static void start_waiters(int n, unsigned front)
{
    int i;

    ev_reset();
    qemu_co_queue_init(&queue);
    g_assert_true(qemu_co_queue_empty(&queue));
    for (i = 0; i < n; i++) {
        waiters[i].id = i;
        waiters[i].flags = (front & (1u << i)) ? CO_QUEUE_WAIT_FRONT : 0;
        enter(qemu_coroutine_create(queue_waiter_co, &waiters[i]));
    }
    g_assert_false(qemu_co_queue_empty(&queue));
    ev_reset();
}

static void coroutine_fn queue_next_co(void *opaque)
{
    int n = GPOINTER_TO_INT(opaque);
    int i;

    for (i = 0; i < n; i++) {
        g_assert_true(qemu_co_queue_next(&queue));
        ev("next");
    }
    g_assert_false(qemu_co_queue_next(&queue));
    g_assert_true(qemu_co_queue_empty(&queue));
    ev("waker:done");
}

static void test_queue_next_fifo(void)
{
    start_waiters(5, 0);
    enter(qemu_coroutine_create(queue_next_co, GINT_TO_POINTER(5)));
    /* Woken from a coroutine: they run after it, in FIFO order. */
    g_assert_cmpstr(evlog->str, ==,
                    "next next next next next waker:done "
                    "w0:woke w1:woke w2:woke w3:woke w4:woke");
}

static void coroutine_fn queue_restart_all_co(void *opaque)
{
    qemu_co_queue_restart_all(&queue);
    g_assert_true(qemu_co_queue_empty(&queue));
    ev("waker:done");
}

static void test_queue_wait_front(void)
{
    /* w2 and w4 jump the queue; w4 came last, so it is first. */
    start_waiters(5, (1u << 2) | (1u << 4));
    enter(qemu_coroutine_create(queue_restart_all_co, NULL));
    g_assert_cmpstr(evlog->str, ==,
                    "waker:done w4:woke w2:woke w0:woke w1:woke w3:woke");
}

static void test_queue_restart_all(void)
{
    start_waiters(4, 0);
    enter(qemu_coroutine_create(queue_restart_all_co, NULL));
    g_assert_cmpstr(evlog->str, ==,
                    "waker:done w0:woke w1:woke w2:woke w3:woke");

    /* An empty queue: nothing happens. */
    ev_reset();
    enter(qemu_coroutine_create(queue_restart_all_co, NULL));
    g_assert_cmpstr(evlog->str, ==, "waker:done");
}

static void test_queue_enter_outside_coroutine(void)
{
    start_waiters(3, 0);
    /* Outside coroutine context the woken coroutine runs at once. */
    g_assert_true(qemu_co_enter_next(&queue, NULL));
    g_assert_cmpstr(evlog->str, ==, "w0:woke");
    qemu_co_enter_all(&queue, NULL);
    g_assert_cmpstr(evlog->str, ==, "w0:woke w1:woke w2:woke");
    g_assert_false(qemu_co_enter_next(&queue, NULL));
    g_assert_true(qemu_co_queue_empty(&queue));
}

static QemuMutex qmutex;

static void coroutine_fn queue_qemu_mutex_co(void *opaque)
{
    qemu_mutex_lock(&qmutex);
    ev("locked");
    qemu_co_queue_wait(&queue, &qmutex);
    /* Taken again before the wait returned. */
    g_assert_cmpint(qemu_mutex_trylock(&qmutex), ==, -EBUSY);
    ev("woke-locked");
    qemu_mutex_unlock(&qmutex);
}

/* The wait releases a QemuMutex; qemu_co_enter_next releases the caller's. */
static void test_queue_wait_releases_qemu_mutex(void)
{
    ev_reset();
    qemu_mutex_init(&qmutex);
    qemu_co_queue_init(&queue);
    enter(qemu_coroutine_create(queue_qemu_mutex_co, NULL));
    g_assert_cmpstr(evlog->str, ==, "locked");

    /* Released while waiting: we can take it, and wake with it held. */
    g_assert_cmpint(qemu_mutex_trylock(&qmutex), ==, 0);
    g_assert_true(qemu_co_enter_next(&queue, &qmutex));
    g_assert_cmpstr(evlog->str, ==, "locked woke-locked");
    /* Ours again after the call. */
    g_assert_cmpint(qemu_mutex_trylock(&qmutex), ==, -EBUSY);
    qemu_mutex_unlock(&qmutex);
    qemu_mutex_destroy(&qmutex);
}

static CoMutex queue_comutex;

static void coroutine_fn queue_comutex_waiter_co(void *opaque)
{
    qemu_co_mutex_lock(&queue_comutex);
    ev("W:locked");
    qemu_co_queue_wait(&queue, &queue_comutex);
    qemu_co_mutex_assert_locked(&queue_comutex);
    ev("W:woke-locked");
    qemu_co_mutex_unlock(&queue_comutex);
}

static void coroutine_fn queue_comutex_waker_co(void *opaque)
{
    /* Free while W waits. */
    qemu_co_mutex_lock(&queue_comutex);
    ev("K:locked");
    g_assert_true(qemu_co_queue_next(&queue));
    qemu_coroutine_yield();
    /* W woke but waits for the CoMutex we hold. */
    ev("K:unlock");
    qemu_co_mutex_unlock(&queue_comutex);
}

static void test_queue_wait_releases_comutex(void)
{
    Coroutine *k = qemu_coroutine_create(queue_comutex_waker_co, NULL);

    ev_reset();
    qemu_co_mutex_init(&queue_comutex);
    qemu_co_queue_init(&queue);
    enter(qemu_coroutine_create(queue_comutex_waiter_co, NULL));
    enter(k);
    /* K yielded holding the CoMutex; W ran and is now queued on it. */
    g_assert_cmpstr(evlog->str, ==, "W:locked K:locked");
    g_assert_cmpuint(queue_comutex.locked, ==, 2);
    enter(k);
    g_assert_cmpstr(evlog->str, ==,
                    "W:locked K:locked K:unlock W:woke-locked");
    g_assert_cmpuint(queue_comutex.locked, ==, 0);
}

/* ---- CoQueue across threads: a CoMutex-protected counter with waiters -- */

#define CV_WAITERS_PER_THREAD 20
#define CV_TARGET 2000

static struct {
    CoMutex lock;
    CoQueue changed;
    unsigned value;             /* under lock */
    unsigned wakeups_seen;      /* under lock */
} cv;

static void coroutine_fn cv_waiter_co(void *opaque)
{
    unsigned target = GPOINTER_TO_UINT(opaque);

    qemu_co_mutex_lock(&cv.lock);
    while (cv.value < target) {
        qemu_co_queue_wait(&cv.changed, &cv.lock);
        qemu_co_mutex_assert_locked(&cv.lock);
    }
    cv.wakeups_seen++;
    qemu_co_mutex_unlock(&cv.lock);
    mt_worker_finished();
}

static void coroutine_fn cv_bumper_co(void *opaque)
{
    int i;

    for (i = 0; i < CV_TARGET / MT_THREADS; i++) {
        qemu_co_mutex_lock(&cv.lock);
        cv.value++;
        qemu_co_queue_restart_all(&cv.changed);
        qemu_co_mutex_unlock(&cv.lock);
        aio_co_schedule(qemu_get_current_aio_context(),
                        qemu_coroutine_self());
        qemu_coroutine_yield();
    }
    mt_worker_finished();
}

static void cv_start_bh(void *opaque)
{
    MtWorker *w = opaque;

    if (w->index < CV_WAITERS_PER_THREAD) {
        unsigned target = 1 + (w->index * CV_TARGET) / CV_WAITERS_PER_THREAD;

        qemu_coroutine_enter(qemu_coroutine_create(cv_waiter_co,
                                                   GUINT_TO_POINTER(target)));
    } else {
        qemu_coroutine_enter(qemu_coroutine_create(cv_bumper_co, NULL));
    }
}

static void test_queue_multithread_condition(void)
{
    qemu_co_mutex_init(&cv.lock);
    qemu_co_queue_init(&cv.changed);
    cv.value = 0;
    cv.wakeups_seen = 0;
    mt_run(CV_WAITERS_PER_THREAD + 1, cv_start_bh, "CoQueue condition");
    g_assert_cmpuint(cv.value, ==, CV_TARGET);
    g_assert_cmpuint(cv.wakeups_seen, ==, MT_THREADS * CV_WAITERS_PER_THREAD);
    g_assert_true(qemu_co_queue_empty(&cv.changed));
    g_assert_cmpuint(cv.lock.locked, ==, 0);
}

/* ---- CoRwlock, one context -------------------------------------------- */

static CoRwlock rw;

/*
 * An actor runs a script: r rdlock, w wrlock, u upgrade, d downgrade,
 * x unlock, y yield (until the test enters it again).  Lock operations log
 * "name:op?" before and "name:op" after.
 */
typedef struct RwActor {
    const char *name;
    const char *script;
    Coroutine *co;
} RwActor;

static void coroutine_fn rw_actor_co(void *opaque)
{
    RwActor *a = opaque;
    const char *op;

    for (op = a->script; *op; op++) {
        switch (*op) {
        case 'y':
            qemu_coroutine_yield();
            continue;
        case 'x':
            qemu_co_rwlock_unlock(&rw);
            ev("%s:x", a->name);
            continue;
        }
        ev("%s:%c?", a->name, *op);
        switch (*op) {
        case 'r':
            qemu_co_rwlock_rdlock(&rw);
            g_assert_cmpint(rw.owners, >=, 1);
            break;
        case 'w':
            qemu_co_rwlock_wrlock(&rw);
            g_assert_cmpint(rw.owners, ==, -1);
            break;
        case 'u':
            qemu_co_rwlock_upgrade(&rw);
            g_assert_cmpint(rw.owners, ==, -1);
            break;
        case 'd':
            qemu_co_rwlock_downgrade(&rw);
            g_assert_cmpint(rw.owners, >=, 1);
            break;
        default:
            g_assert_not_reached();
        }
        ev("%s:%c", a->name, *op);
    }
}

static void rw_start(RwActor *a)
{
    a->co = qemu_coroutine_create(rw_actor_co, a);
    enter(a->co);
}

static void test_rwlock_readers_share(void)
{
    RwActor r1 = { "R1", "ryx" }, r2 = { "R2", "ryx" }, r3 = { "R3", "ryx" };

    ev_reset();
    qemu_co_rwlock_init(&rw);
    rw_start(&r1);
    rw_start(&r2);
    rw_start(&r3);
    g_assert_cmpint(rw.owners, ==, 3);
    enter(r2.co);
    enter(r1.co);
    enter(r3.co);
    g_assert_cmpint(rw.owners, ==, 0);
    g_assert_cmpstr(evlog->str, ==,
                    "R1:r? R1:r R2:r? R2:r R3:r? R3:r R2:x R1:x R3:x");
}

/* A writer waits for the readers; a reader arriving after it waits too. */
static void test_rwlock_fifo_writer_blocks_later_readers(void)
{
    RwActor r1 = { "R1", "ryx" }, r2 = { "R2", "ryx" };
    RwActor w = { "W", "wyx" }, r3 = { "R3", "ryx" };

    ev_reset();
    qemu_co_rwlock_init(&rw);
    rw_start(&r1);
    rw_start(&r2);
    rw_start(&w);
    rw_start(&r3);
    g_assert_cmpint(rw.owners, ==, 2);
    enter(r1.co);
    enter(r2.co);       /* the last reader leaves: W gets it */
    g_assert_cmpint(rw.owners, ==, -1);
    enter(w.co);        /* W leaves: R3 gets it */
    g_assert_cmpint(rw.owners, ==, 1);
    enter(r3.co);
    g_assert_cmpint(rw.owners, ==, 0);
    g_assert_cmpstr(evlog->str, ==,
                    "R1:r? R1:r R2:r? R2:r W:w? R3:r? R1:x R2:x W:w W:x "
                    "R3:r R3:x");
    g_assert_true(QSIMPLEQ_EMPTY(&rw.tickets));
}

/* An upgrade while a writer is queued goes behind the writer. */
static void test_rwlock_upgrade_behind_writer(void)
{
    RwActor r1 = { "R1", "ryuyx" }, r2 = { "R2", "ryx" };
    RwActor w = { "W", "wyx" };

    ev_reset();
    qemu_co_rwlock_init(&rw);
    rw_start(&r1);
    rw_start(&r2);
    rw_start(&w);
    enter(r1.co);       /* upgrade: gives up its read lock, queues */
    g_assert_cmpint(rw.owners, ==, 1);
    enter(r2.co);       /* W is first in line */
    g_assert_cmpint(rw.owners, ==, -1);
    enter(w.co);        /* then R1, as a writer */
    g_assert_cmpint(rw.owners, ==, -1);
    enter(r1.co);
    g_assert_cmpint(rw.owners, ==, 0);
    g_assert_cmpstr(evlog->str, ==,
                    "R1:r? R1:r R2:r? R2:r W:w? R1:u? R2:x W:w W:x R1:u "
                    "R1:x");
}

static void test_rwlock_upgrade_alone(void)
{
    RwActor r1 = { "R1", "rux" };

    ev_reset();
    qemu_co_rwlock_init(&rw);
    rw_start(&r1);
    g_assert_cmpint(rw.owners, ==, 0);
    g_assert_cmpstr(evlog->str, ==, "R1:r? R1:r R1:u? R1:u R1:x");
}

/* Downgrading admits the readers at the head of the line, not past a writer. */
static void test_rwlock_downgrade(void)
{
    RwActor w = { "W", "wydyx" }, r1 = { "R1", "ryx" }, r2 = { "R2", "ryx" };
    RwActor w2 = { "W2", "wyx" }, r3 = { "R3", "ryx" };

    ev_reset();
    qemu_co_rwlock_init(&rw);
    rw_start(&w);
    rw_start(&r1);
    rw_start(&r2);
    rw_start(&w2);
    rw_start(&r3);
    enter(w.co);        /* downgrade: R1 and R2 join, W2 and R3 wait */
    g_assert_cmpint(rw.owners, ==, 3);
    enter(w.co);
    enter(r1.co);
    enter(r2.co);       /* the last reader leaves: W2 */
    g_assert_cmpint(rw.owners, ==, -1);
    enter(w2.co);
    enter(r3.co);
    g_assert_cmpint(rw.owners, ==, 0);
    g_assert_cmpstr(evlog->str, ==,
                    "W:w? W:w R1:r? R2:r? W2:w? R3:r? W:d? W:d R1:r R2:r "
                    "W:x R1:x R2:x W2:w W2:x R3:r R3:x");
}

/* ---- CoRwlock, four threads ------------------------------------------- */

#define RW_COROUTINES 10
#define RW_ITERATIONS 200

static void coroutine_fn mt_rwlock_hop(MtWorker *w)
{
    w->thread = (w->thread + 1) % MT_THREADS;
    aio_co_reschedule_self(mt.threads[w->thread].ctx);
}

static void coroutine_fn mt_rwlock_co(void *opaque)
{
    MtWorker *w = opaque;
    int i;

    for (i = 0; i < RW_ITERATIONS; i++) {
        unsigned long a;

        switch ((i + w->index) % 8) {
        case 0:
            qemu_co_rwlock_wrlock(&mt.rwlock);
            a = mt.a;
            mt.a = a + 1;
            mt_rwlock_hop(w);
            mt.b = a + 1;
            mt.writes++;
            break;
        case 1:
            qemu_co_rwlock_rdlock(&mt.rwlock);
            qemu_co_rwlock_upgrade(&mt.rwlock);
            a = mt.a;
            mt.a = a + 1;
            mt_rwlock_hop(w);
            mt.b = a + 1;
            mt.writes++;
            qemu_co_rwlock_downgrade(&mt.rwlock);
            g_assert_cmpuint(mt.a, ==, mt.b);
            break;
        default:
            qemu_co_rwlock_rdlock(&mt.rwlock);
            a = mt.a;
            g_assert_cmpuint(a, ==, mt.b);
            if (i % 2) {
                mt_rwlock_hop(w);
            }
            g_assert_cmpuint(mt.a, ==, a);
            g_assert_cmpuint(mt.b, ==, a);
            break;
        }
        qemu_co_rwlock_unlock(&mt.rwlock);
    }
    mt_worker_finished();
}

static void mt_rwlock_start_bh(void *opaque)
{
    MtWorker *w = opaque;

    qemu_coroutine_enter(qemu_coroutine_create(mt_rwlock_co, w));
}

static void test_rwlock_multithread(void)
{
    qemu_co_rwlock_init(&mt.rwlock);
    mt.a = mt.b = mt.writes = 0;
    mt_run(RW_COROUTINES, mt_rwlock_start_bh, "rwlock");
    /* Two iterations in eight write, for every coroutine. */
    g_assert_cmpuint(mt.writes, ==,
                     MT_THREADS * RW_COROUTINES * RW_ITERATIONS / 4);
    g_assert_cmpuint(mt.a, ==, mt.writes);
    g_assert_cmpuint(mt.b, ==, mt.writes);
    g_assert_cmpint(mt.rwlock.owners, ==, 0);
    g_assert_true(QSIMPLEQ_EMPTY(&mt.rwlock.tickets));
}

/* ---- QemuLockable ------------------------------------------------------- */

static void test_lockable_make(void)
{
    QemuMutex m;
    QemuMutex *null_mutex = NULL;
    CoMutex *null_comutex = NULL;
    QemuLockable *l;

    qemu_mutex_init(&m);
    g_assert_null(QEMU_MAKE_LOCKABLE(NULL));
    g_assert_null(QEMU_MAKE_LOCKABLE(null_mutex));
    g_assert_null(QEMU_MAKE_LOCKABLE(null_comutex));

    l = QEMU_MAKE_LOCKABLE(&m);
    g_assert_nonnull(l);
    g_assert(l->object == &m);
    /* A QemuLockable passes through unchanged. */
    g_assert(QEMU_MAKE_LOCKABLE(l) == l);
    g_assert(QEMU_MAKE_LOCKABLE_NONNULL(&m)->object == &m);

    qemu_lockable_lock(l);
    g_assert_cmpint(qemu_mutex_trylock(&m), ==, -EBUSY);
    qemu_lockable_unlock(l);
    g_assert_cmpint(qemu_mutex_trylock(&m), ==, 0);
    qemu_mutex_unlock(&m);
    qemu_mutex_destroy(&m);
}

static int guarded_early_return(QemuMutex *m)
{
    WITH_QEMU_LOCK_GUARD(m) {
        g_assert_cmpint(qemu_mutex_trylock(m), ==, -EBUSY);
        return 42;
    }
    g_assert_not_reached();
}

static void test_lockable_guards(void)
{
    QemuMutex m;
    QemuRecMutex rm;
    QemuSpin spin;
    int i;

    qemu_mutex_init(&m);
    qemu_rec_mutex_init(&rm);
    qemu_spin_init(&spin);

    {
        QEMU_LOCK_GUARD(&m);
        g_assert_cmpint(qemu_mutex_trylock(&m), ==, -EBUSY);
    }
    g_assert_cmpint(qemu_mutex_trylock(&m), ==, 0);
    qemu_mutex_unlock(&m);

    /* The body runs once; break leaves it with the lock released. */
    i = 0;
    WITH_QEMU_LOCK_GUARD(&m) {
        i++;
        if (i == 1) {
            break;
        }
    }
    g_assert_cmpint(i, ==, 1);
    g_assert_cmpint(qemu_mutex_trylock(&m), ==, 0);
    qemu_mutex_unlock(&m);

    i = 0;
    WITH_QEMU_LOCK_GUARD(&m) {
        i++;
    }
    g_assert_cmpint(i, ==, 1);

    g_assert_cmpint(guarded_early_return(&m), ==, 42);
    g_assert_cmpint(qemu_mutex_trylock(&m), ==, 0);
    qemu_mutex_unlock(&m);

    /* Recursive: guards nest. */
    WITH_QEMU_LOCK_GUARD(&rm) {
        QEMU_LOCK_GUARD(&rm);
        g_assert_cmpint(qemu_rec_mutex_trylock(&rm), ==, 0);
        qemu_rec_mutex_unlock(&rm);
    }

    WITH_QEMU_LOCK_GUARD(&spin) {
        g_assert_true(qemu_spin_locked(&spin));
    }
    g_assert_false(qemu_spin_locked(&spin));

    qemu_rec_mutex_destroy(&rm);
    qemu_mutex_destroy(&m);
}

static CoMutex guard_comutex;

static void coroutine_fn lockable_comutex_co(void *opaque)
{
    QemuLockable *l = QEMU_MAKE_LOCKABLE(&guard_comutex);

    {
        QEMU_LOCK_GUARD(&guard_comutex);
        qemu_co_mutex_assert_locked(&guard_comutex);
    }
    g_assert_cmpuint(guard_comutex.locked, ==, 0);

    WITH_QEMU_LOCK_GUARD(&guard_comutex) {
        qemu_co_mutex_assert_locked(&guard_comutex);
    }
    g_assert_cmpuint(guard_comutex.locked, ==, 0);

    qemu_lockable_lock(l);
    qemu_co_mutex_assert_locked(&guard_comutex);
    qemu_lockable_unlock(l);
    g_assert_cmpuint(guard_comutex.locked, ==, 0);
    ev("done");
}

static void test_lockable_comutex(void)
{
    ev_reset();
    qemu_co_mutex_init(&guard_comutex);
    enter(qemu_coroutine_create(lockable_comutex_co, NULL));
    g_assert_cmpstr(evlog->str, ==, "done");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);
    evlog = g_string_new(NULL);

    g_test_add_func("/co-lock/mutex/uncontended", test_mutex_uncontended);
    g_test_add_func("/co-lock/mutex/handoff-order", test_mutex_handoff_order);
    g_test_add_func("/co-lock/mutex/handoff-ticket",
                    test_mutex_handoff_ticket);
    g_test_add_func("/co-lock/mutex/handoff-ticket-cross-thread",
                    test_mutex_handoff_ticket_cross_thread);
    g_test_add_func("/co-lock/mutex/misuse/unlock-not-held",
                    test_mutex_unlock_not_held_aborts);
    g_test_add_func("/co-lock/mutex/misuse/lock-outside-coroutine",
                    test_mutex_lock_outside_coroutine_aborts);
    g_test_add_func("/co-lock/mutex/multithread-counter",
                    test_mutex_multithread_counter);
    g_test_add_func("/co-lock/queue/next-fifo", test_queue_next_fifo);
    g_test_add_func("/co-lock/queue/wait-front", test_queue_wait_front);
    g_test_add_func("/co-lock/queue/restart-all", test_queue_restart_all);
    g_test_add_func("/co-lock/queue/enter-outside-coroutine",
                    test_queue_enter_outside_coroutine);
    g_test_add_func("/co-lock/queue/wait-releases-qemu-mutex",
                    test_queue_wait_releases_qemu_mutex);
    g_test_add_func("/co-lock/queue/wait-releases-comutex",
                    test_queue_wait_releases_comutex);
    g_test_add_func("/co-lock/queue/multithread-condition",
                    test_queue_multithread_condition);
    g_test_add_func("/co-lock/rwlock/readers-share",
                    test_rwlock_readers_share);
    g_test_add_func("/co-lock/rwlock/fifo-writer-blocks-later-readers",
                    test_rwlock_fifo_writer_blocks_later_readers);
    g_test_add_func("/co-lock/rwlock/upgrade-behind-writer",
                    test_rwlock_upgrade_behind_writer);
    g_test_add_func("/co-lock/rwlock/upgrade-alone",
                    test_rwlock_upgrade_alone);
    g_test_add_func("/co-lock/rwlock/downgrade", test_rwlock_downgrade);
    g_test_add_func("/co-lock/rwlock/multithread", test_rwlock_multithread);
    g_test_add_func("/co-lock/lockable/make", test_lockable_make);
    g_test_add_func("/co-lock/lockable/guards", test_lockable_guards);
    g_test_add_func("/co-lock/lockable/comutex", test_lockable_comutex);

    return g_test_run();
}
