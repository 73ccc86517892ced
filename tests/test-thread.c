/*
 * test-thread.c: mutexes, condition variables, semaphores, events and
 * threads (qemu/thread.h).
 *
 * The multi-threaded cases would fail on the bug they target: a mutex that
 * does not exclude loses increments, a lost QemuEvent wake-up hangs the
 * ping-pong (and the test times out), a set that wakes only one waiter
 * hangs the broadcast case.  No case sleeps or measures time.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"
#include "qemu/error-report.h"
#include "thread-probe.h"

/* Mutex exclusion */

#define MUTEX_THREADS 4
#define MUTEX_ROUNDS 1000000

static QemuMutex counter_lock;
static unsigned long counter;   /* under counter_lock, deliberately plain */

static void *mutex_thread(void *opaque)
{
    int i;

    for (i = 0; i < MUTEX_ROUNDS; i++) {
        qemu_mutex_lock(&counter_lock);
        counter++;
        qemu_mutex_unlock(&counter_lock);
    }
    return NULL;
}

static void test_mutex_excludes(void)
{
    QemuThread threads[MUTEX_THREADS];
    int i;

    qemu_mutex_init(&counter_lock);
    counter = 0;
    for (i = 0; i < MUTEX_THREADS; i++) {
        qemu_thread_create(&threads[i], "mutex", mutex_thread, NULL,
                           QEMU_THREAD_JOINABLE);
    }
    for (i = 0; i < MUTEX_THREADS; i++) {
        qemu_thread_join(&threads[i]);
    }
    g_assert_cmpuint(counter, ==, (unsigned long)MUTEX_THREADS * MUTEX_ROUNDS);
    qemu_mutex_destroy(&counter_lock);
}

/* trylock from another thread, for QemuMutex and QemuRecMutex */

typedef struct TryData {
    QemuMutex *mutex;
    QemuRecMutex *rec;
    QemuSemaphore tried;    /* thread -> main: first attempt done */
    QemuSemaphore released; /* main -> thread: lock released */
    int first, second;
} TryData;

static int try_once(TryData *d)
{
    int ret;

    if (d->mutex) {
        ret = qemu_mutex_trylock(d->mutex);
        if (ret == 0) {
            qemu_mutex_unlock(d->mutex);
        }
    } else {
        ret = qemu_rec_mutex_trylock(d->rec);
        if (ret == 0) {
            qemu_rec_mutex_unlock(d->rec);
        }
    }
    return ret;
}

static void *try_thread(void *opaque)
{
    TryData *d = opaque;

    d->first = try_once(d);
    qemu_sem_post(&d->tried);
    qemu_sem_wait(&d->released);
    d->second = try_once(d);
    return NULL;
}

static void run_try_thread(TryData *d, void (*release)(TryData *))
{
    QemuThread thread;

    qemu_sem_init(&d->tried, 0);
    qemu_sem_init(&d->released, 0);
    d->first = d->second = 1;
    qemu_thread_create(&thread, "try", try_thread, d, QEMU_THREAD_JOINABLE);
    qemu_sem_wait(&d->tried);
    release(d);
    qemu_sem_post(&d->released);
    qemu_thread_join(&thread);
    g_assert_cmpint(d->first, ==, -EBUSY);
    g_assert_cmpint(d->second, ==, 0);
    qemu_sem_destroy(&d->tried);
    qemu_sem_destroy(&d->released);
}

static void release_mutex(TryData *d)
{
    qemu_mutex_unlock(d->mutex);
}

static void test_mutex_trylock(void)
{
    QemuMutex mutex;
    TryData d = { .mutex = &mutex };

    qemu_mutex_init(&mutex);
    g_assert_cmpint(qemu_mutex_trylock(&mutex), ==, 0);
    run_try_thread(&d, release_mutex);
    qemu_mutex_destroy(&mutex);
}

#define REC_DEPTH 4

static void release_rec(TryData *d)
{
    int i;

    for (i = 0; i < REC_DEPTH; i++) {
        qemu_rec_mutex_unlock(d->rec);
    }
}

static void test_rec_mutex_recursion(void)
{
    QemuRecMutex rec;
    TryData d = { .rec = &rec };

    qemu_rec_mutex_init(&rec);
    qemu_rec_mutex_lock(&rec);
    qemu_rec_mutex_lock(&rec);
    qemu_rec_mutex_lock(&rec);
    /* The owner may take it again without blocking. */
    g_assert_cmpint(qemu_rec_mutex_trylock(&rec), ==, 0);
    /* Another thread may not, until all REC_DEPTH levels are released. */
    run_try_thread(&d, release_rec);
    qemu_rec_mutex_destroy(&rec);
}

static void test_rec_mutex_unlock_unowned(void)
{
    g_autofree char *expected = NULL;

#ifdef QEMU_SANITIZE_THREAD
    g_test_skip("TSan reports the misuse itself before we can");
    return;
#endif
    if (g_test_subprocess()) {
        QemuRecMutex rec;

        qemu_rec_mutex_init(&rec);
        qemu_rec_mutex_unlock(&rec);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    expected = g_strdup_printf("%s: qemu_rec_mutex_unlock: %s\n",
                               g_get_prgname(), strerror(EPERM));
    g_test_trap_assert_stderr(expected);
}

static void test_mutex_use_after_destroy(void)
{
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        QemuMutex mutex;

        qemu_mutex_init(&mutex);
        qemu_mutex_destroy(&mutex);
        qemu_mutex_lock(&mutex);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    expected = g_strdup_printf("%s: qemu_mutex_lock: object used before "
                               "init or after destroy\n", g_get_prgname());
    g_test_trap_assert_stderr(expected);
}

/* Condition variables: a bounded queue, one producer, two consumers */

#define QUEUE_SIZE 8
#define QUEUE_ITEMS 100000
#define CONSUMERS 2

typedef struct BoundedQueue {
    QemuMutex lock;
    QemuCond not_empty;
    QemuCond not_full;
    unsigned items[QUEUE_SIZE];     /* all fields below under lock */
    unsigned head, len;
    unsigned long consumed_count;
    unsigned long consumed_sum;
} BoundedQueue;

static void *consumer_thread(void *opaque)
{
    BoundedQueue *q = opaque;
    unsigned item;

    for (;;) {
        qemu_mutex_lock(&q->lock);
        while (q->len == 0) {
            qemu_cond_wait(&q->not_empty, &q->lock);
        }
        item = q->items[q->head];
        q->head = (q->head + 1) % QUEUE_SIZE;
        q->len--;
        if (item != 0) {
            q->consumed_count++;
            q->consumed_sum += item;
        }
        qemu_cond_signal(&q->not_full);
        qemu_mutex_unlock(&q->lock);
        if (item == 0) {
            return NULL;
        }
    }
}

static void queue_push(BoundedQueue *q, unsigned item)
{
    qemu_mutex_lock(&q->lock);
    while (q->len == QUEUE_SIZE) {
        qemu_cond_wait(&q->not_full, &q->lock);
    }
    q->items[(q->head + q->len) % QUEUE_SIZE] = item;
    q->len++;
    qemu_cond_signal(&q->not_empty);
    qemu_mutex_unlock(&q->lock);
}

static void test_cond_producer_consumer(void)
{
    BoundedQueue q = { 0 };
    QemuThread consumers[CONSUMERS];
    unsigned i;

    qemu_mutex_init(&q.lock);
    qemu_cond_init(&q.not_empty);
    qemu_cond_init(&q.not_full);
    for (i = 0; i < CONSUMERS; i++) {
        qemu_thread_create(&consumers[i], "consumer", consumer_thread, &q,
                           QEMU_THREAD_JOINABLE);
    }
    for (i = 1; i <= QUEUE_ITEMS; i++) {
        queue_push(&q, i);
    }
    /* Item 0 tells one consumer to stop. */
    for (i = 0; i < CONSUMERS; i++) {
        queue_push(&q, 0);
    }
    for (i = 0; i < CONSUMERS; i++) {
        qemu_thread_join(&consumers[i]);
    }
    g_assert_cmpuint(q.len, ==, 0);
    g_assert_cmpuint(q.consumed_count, ==, QUEUE_ITEMS);
    g_assert_cmpuint(q.consumed_sum, ==,
                     (unsigned long)QUEUE_ITEMS * (QUEUE_ITEMS + 1) / 2);
    qemu_cond_destroy(&q.not_empty);
    qemu_cond_destroy(&q.not_full);
    qemu_mutex_destroy(&q.lock);
}

static void test_cond_timedwait_timeout(void)
{
    QemuMutex mutex;
    QemuCond cond;
    int i;

    qemu_mutex_init(&mutex);
    qemu_cond_init(&cond);
    qemu_mutex_lock(&mutex);
    /* Nobody signals: only a (rare) spurious wake-up may return true. */
    for (i = 0; i < 100; i++) {
        if (!qemu_cond_timedwait(&cond, &mutex, 1)) {
            break;
        }
    }
    g_assert_cmpint(i, <, 100);
    qemu_mutex_unlock(&mutex);
    qemu_cond_destroy(&cond);
    qemu_mutex_destroy(&mutex);
}

typedef struct CondFlag {
    QemuMutex mutex;
    QemuCond cond;
    bool flag;          /* under mutex */
} CondFlag;

static void *cond_signal_thread(void *opaque)
{
    CondFlag *cf = opaque;

    qemu_mutex_lock(&cf->mutex);
    cf->flag = true;
    qemu_cond_broadcast(&cf->cond);
    qemu_mutex_unlock(&cf->mutex);
    return NULL;
}

static void test_cond_timedwait_signalled(void)
{
    CondFlag cf = { .flag = false };
    QemuThread thread;
    int wakes = 0;

    qemu_mutex_init(&cf.mutex);
    qemu_cond_init(&cf.cond);
    qemu_mutex_lock(&cf.mutex);
    qemu_thread_create(&thread, "signal", cond_signal_thread, &cf,
                       QEMU_THREAD_JOINABLE);
    /* A day-long timeout that must end by the signal, not the clock. */
    while (!cf.flag) {
        g_assert_true(qemu_cond_timedwait(&cf.cond, &cf.mutex, 86400000));
        wakes++;
    }
    qemu_mutex_unlock(&cf.mutex);
    qemu_thread_join(&thread);
    g_assert_cmpint(wakes, >=, 1);
    qemu_cond_destroy(&cf.cond);
    qemu_mutex_destroy(&cf.mutex);
}

/* Semaphores */

#define SEM_POSTS 100000

static QemuSemaphore sem_items;
static unsigned long sem_taken[CONSUMERS];

static void *sem_consumer_thread(void *opaque)
{
    int id = GPOINTER_TO_INT(opaque);
    int i;

    for (i = 0; i < SEM_POSTS / CONSUMERS; i++) {
        qemu_sem_wait(&sem_items);
        sem_taken[id]++;
    }
    return NULL;
}

static void test_sem_producer_consumer(void)
{
    QemuThread consumers[CONSUMERS];
    int i;

    qemu_sem_init(&sem_items, 0);
    for (i = 0; i < CONSUMERS; i++) {
        sem_taken[i] = 0;
        qemu_thread_create(&consumers[i], "sem", sem_consumer_thread,
                           GINT_TO_POINTER(i), QEMU_THREAD_JOINABLE);
    }
    for (i = 0; i < SEM_POSTS; i++) {
        qemu_sem_post(&sem_items);
    }
    for (i = 0; i < CONSUMERS; i++) {
        qemu_thread_join(&consumers[i]);
        g_assert_cmpuint(sem_taken[i], ==, SEM_POSTS / CONSUMERS);
    }
    /* Every post was consumed exactly once. */
    g_assert_cmpint(qemu_sem_timedwait(&sem_items, 0), ==, -1);
    qemu_sem_destroy(&sem_items);
}

static void test_sem_timedwait(void)
{
    QemuSemaphore sem;

    qemu_sem_init(&sem, 0);
    g_assert_cmpint(qemu_sem_timedwait(&sem, 10), ==, -1);
    g_assert_cmpint(qemu_sem_timedwait(&sem, 0), ==, -1);
    qemu_sem_post(&sem);
    g_assert_cmpint(qemu_sem_timedwait(&sem, 10), ==, 0);
    g_assert_cmpint(qemu_sem_timedwait(&sem, 0), ==, -1);
    qemu_sem_destroy(&sem);

    qemu_sem_init(&sem, 3);
    g_assert_cmpint(qemu_sem_timedwait(&sem, 0), ==, 0);
    qemu_sem_wait(&sem);
    g_assert_cmpint(qemu_sem_timedwait(&sem, 0), ==, 0);
    g_assert_cmpint(qemu_sem_timedwait(&sem, 0), ==, -1);
    qemu_sem_destroy(&sem);
}

/* Events */

static void test_event_single_thread(void)
{
    QemuEvent ev;

    qemu_event_init(&ev, true);
    qemu_event_wait(&ev);           /* set: returns at once */
    qemu_event_wait(&ev);           /* and stays set */
    qemu_event_reset(&ev);
    qemu_event_reset(&ev);
    qemu_event_set(&ev);
    qemu_event_set(&ev);
    qemu_event_wait(&ev);
    qemu_event_destroy(&ev);

    qemu_event_init(&ev, false);
    qemu_event_set(&ev);
    qemu_event_wait(&ev);
    qemu_event_destroy(&ev);
}

#define PING_PONG_ROUNDS 100000

typedef struct PingPong {
    QemuEvent ping, pong;
    unsigned round;         /* written by main before ping, atomic */
    unsigned seen;          /* written by the pong thread only */
    bool in_order;
} PingPong;

static void *pong_thread(void *opaque)
{
    PingPong *pp = opaque;
    unsigned i;

    pp->in_order = true;
    for (i = 0; i < PING_PONG_ROUNDS; i++) {
        qemu_event_wait(&pp->ping);
        /* Reset before answering, so that the next ping comes after it. */
        qemu_event_reset(&pp->ping);
        if (qatomic_read(&pp->round) != i) {
            pp->in_order = false;
        }
        pp->seen++;
        qemu_event_set(&pp->pong);
    }
    return NULL;
}

static void test_event_ping_pong(void)
{
    PingPong pp = { .seen = 0 };
    QemuThread thread;
    unsigned i;

    qemu_event_init(&pp.ping, false);
    qemu_event_init(&pp.pong, false);
    qemu_thread_create(&thread, "pong", pong_thread, &pp,
                       QEMU_THREAD_JOINABLE);
    for (i = 0; i < PING_PONG_ROUNDS; i++) {
        /* Reset before pinging, so that the answer comes after it. */
        qemu_event_reset(&pp.pong);
        qatomic_set(&pp.round, i);
        qemu_event_set(&pp.ping);
        qemu_event_wait(&pp.pong);
    }
    qemu_thread_join(&thread);
    g_assert_cmpuint(pp.seen, ==, PING_PONG_ROUNDS);
    g_assert_true(pp.in_order);
    qemu_event_destroy(&pp.ping);
    qemu_event_destroy(&pp.pong);
}

#define EVENT_WAITERS 4

typedef struct EventWaiter {
    QemuEvent *go;
    QemuEvent ready;
    int tid;
    bool passed;
} EventWaiter;

static void *event_waiter_thread(void *opaque)
{
    EventWaiter *w = opaque;

    w->tid = qemu_get_thread_id();
    /* qemu_event_set never sleeps: the next sleep is in qemu_event_wait. */
    qemu_event_set(&w->ready);
    qemu_event_wait(w->go);
    w->passed = true;
    return NULL;
}

static void test_event_wakes_all(void)
{
    QemuEvent go;
    EventWaiter waiters[EVENT_WAITERS];
    QemuThread threads[EVENT_WAITERS];
    int i;

    qemu_event_init(&go, false);
    for (i = 0; i < EVENT_WAITERS; i++) {
        waiters[i] = (EventWaiter) { .go = &go };
        qemu_event_init(&waiters[i].ready, false);
        qemu_thread_create(&threads[i], "waiter", event_waiter_thread,
                           &waiters[i], QEMU_THREAD_JOINABLE);
    }
    /* All of them asleep in qemu_event_wait before the one set. */
    for (i = 0; i < EVENT_WAITERS; i++) {
        qemu_event_wait(&waiters[i].ready);
        g_assert_true(thread_probe_wait_sleeping(waiters[i].tid));
    }
    qemu_event_set(&go);
    for (i = 0; i < EVENT_WAITERS; i++) {
        qemu_thread_join(&threads[i]);
        g_assert_true(waiters[i].passed);
        qemu_event_destroy(&waiters[i].ready);
    }
    qemu_event_destroy(&go);
}

typedef struct ResetWaiter {
    QemuEvent ev;
    QemuEvent ready;
    int tid;
} ResetWaiter;

static void *reset_waiter_thread(void *opaque)
{
    ResetWaiter *w = opaque;

    w->tid = qemu_get_thread_id();
    qemu_event_set(&w->ready);
    qemu_event_wait(&w->ev);
    return NULL;
}

static void test_event_reset_keeps_sleepers(void)
{
    ResetWaiter w;
    QemuThread thread;

    qemu_event_init(&w.ev, false);
    qemu_event_init(&w.ready, false);
    qemu_thread_create(&thread, "waiter", reset_waiter_thread, &w,
                       QEMU_THREAD_JOINABLE);
    qemu_event_wait(&w.ready);
    g_assert_true(thread_probe_wait_sleeping(w.tid));
    /*
     * Resetting an event that is not set must not forget the sleeper: the
     * set below has to wake it, or the join hangs.
     */
    qemu_event_reset(&w.ev);
    qemu_event_set(&w.ev);
    qemu_thread_join(&thread);
    qemu_event_destroy(&w.ev);
    qemu_event_destroy(&w.ready);
}

/* Threads */

static void *comm_thread(void *opaque)
{
    return thread_probe_comm(qemu_get_thread_id());
}

static char *comm_of_new_thread(const char *name)
{
    QemuThread thread;

    qemu_thread_create(&thread, name, comm_thread, NULL,
                       QEMU_THREAD_JOINABLE);
    return qemu_thread_join(&thread);
}

static void test_thread_name(void)
{
    g_autofree char *shortname = comm_of_new_thread("qaio-short");
    g_autofree char *longname = comm_of_new_thread("qaio-a-rather-long-name");

    g_assert_cmpstr(shortname, ==, "qaio-short");
    /* Linux keeps 15 characters. */
    g_assert_cmpstr(longname, ==, "qaio-a-rather-l");
}

static void test_thread_naming_disabled(void)
{
    g_autofree char *mine = thread_probe_comm(qemu_get_thread_id());
    g_autofree char *theirs = NULL;

    g_assert_nonnull(mine);
    g_assert_cmpstr(mine, !=, "qaio-unnamed");
    qemu_thread_naming(false);
    theirs = comm_of_new_thread("qaio-unnamed");
    qemu_thread_naming(true);
    /* An unnamed thread keeps the name it inherited from its creator. */
    g_assert_cmpstr(theirs, ==, mine);
}

static const int async_signals[] = {
    SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD,
    SIGIO, SIGPIPE, SIGWINCH,
};
static const int fault_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL };

static void *mask_thread(void *opaque)
{
    sigset_t *mask = g_new(sigset_t, 1);

    pthread_sigmask(SIG_BLOCK, NULL, mask);
    return mask;
}

static void test_thread_signal_mask(void)
{
    g_autofree sigset_t *mask = NULL;
    sigset_t before, after;
    QemuThread thread;
    size_t i;

    pthread_sigmask(SIG_BLOCK, NULL, &before);
    g_assert_false(sigismember(&before, SIGUSR1));
    qemu_thread_create(&thread, "mask", mask_thread, NULL,
                       QEMU_THREAD_JOINABLE);
    mask = qemu_thread_join(&thread);
    pthread_sigmask(SIG_BLOCK, NULL, &after);

    for (i = 0; i < ARRAY_SIZE(async_signals); i++) {
        g_assert_true(sigismember(mask, async_signals[i]));
        /* The creator's own mask is back as it was. */
        g_assert_cmpint(sigismember(&after, async_signals[i]), ==,
                        sigismember(&before, async_signals[i]));
    }
    g_assert_true(sigismember(mask, SIGRTMIN));
    g_assert_true(sigismember(mask, SIGRTMAX));
    for (i = 0; i < ARRAY_SIZE(fault_signals); i++) {
        g_assert_false(sigismember(mask, fault_signals[i]));
    }
}

typedef struct DetachData {
    QemuSemaphore done;
    int detach_state;
} DetachData;

static void *detach_thread(void *opaque)
{
    DetachData *d = opaque;
    pthread_attr_t attr;

    g_assert_cmpint(pthread_getattr_np(pthread_self(), &attr), ==, 0);
    pthread_attr_getdetachstate(&attr, &d->detach_state);
    pthread_attr_destroy(&attr);
    qemu_sem_post(&d->done);
    return NULL;
}

static void test_thread_detached(void)
{
    /* Static: the detached thread may still be returning after our wait. */
    static DetachData d;
    QemuThread thread;

    qemu_sem_init(&d.done, 0);
    d.detach_state = -1;
    qemu_thread_create(&thread, "detached", detach_thread, &d,
                       QEMU_THREAD_DETACHED);
    qemu_sem_wait(&d.done);
    g_assert_cmpint(d.detach_state, ==, PTHREAD_CREATE_DETACHED);

    d.detach_state = -1;
    qemu_thread_create(&thread, "joinable", detach_thread, &d,
                       QEMU_THREAD_JOINABLE);
    qemu_sem_wait(&d.done);
    qemu_thread_join(&thread);
    g_assert_cmpint(d.detach_state, ==, PTHREAD_CREATE_JOINABLE);
}

typedef struct SelfData {
    QemuThread main_thread;
    bool main_is_self, own_is_self;
    int tid;
} SelfData;

static void *self_thread(void *opaque)
{
    SelfData *d = opaque;
    QemuThread me;

    qemu_thread_get_self(&me);
    d->own_is_self = qemu_thread_is_self(&me);
    d->main_is_self = qemu_thread_is_self(&d->main_thread);
    d->tid = qemu_get_thread_id();
    return NULL;
}

static void test_thread_self_and_id(void)
{
    SelfData d = { .tid = 0 };
    QemuThread thread;

    qemu_thread_get_self(&d.main_thread);
    g_assert_true(qemu_thread_is_self(&d.main_thread));
    qemu_thread_create(&thread, "self", self_thread, &d,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_join(&thread);
    g_assert_true(d.own_is_self);
    g_assert_false(d.main_is_self);
    g_assert_false(qemu_thread_is_self(&thread));
    /* The main thread's kernel id is the process id. */
    g_assert_cmpint(qemu_get_thread_id(), ==, getpid());
    g_assert_cmpint(d.tid, >, 0);
    g_assert_cmpint(d.tid, !=, qemu_get_thread_id());
}

static void *exit_thread(void *opaque)
{
    qemu_thread_exit(opaque);
}

static void test_thread_exit_value(void)
{
    QemuThread thread;
    int value;

    qemu_thread_create(&thread, "exit", exit_thread, &value,
                       QEMU_THREAD_JOINABLE);
    g_assert_true(qemu_thread_join(&thread) == &value);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/thread/mutex/excludes", test_mutex_excludes);
    g_test_add_func("/thread/mutex/trylock-busy-in-other-thread",
                    test_mutex_trylock);
    g_test_add_func("/thread/mutex/use-after-destroy-aborts",
                    test_mutex_use_after_destroy);
    g_test_add_func("/thread/rec-mutex/recursion", test_rec_mutex_recursion);
    g_test_add_func("/thread/rec-mutex/unlock-unowned-aborts",
                    test_rec_mutex_unlock_unowned);
    g_test_add_func("/thread/cond/producer-consumer",
                    test_cond_producer_consumer);
    g_test_add_func("/thread/cond/timedwait-times-out",
                    test_cond_timedwait_timeout);
    g_test_add_func("/thread/cond/timedwait-signalled",
                    test_cond_timedwait_signalled);
    g_test_add_func("/thread/sem/producer-consumer",
                    test_sem_producer_consumer);
    g_test_add_func("/thread/sem/timedwait", test_sem_timedwait);
    g_test_add_func("/thread/event/single-thread", test_event_single_thread);
    g_test_add_func("/thread/event/ping-pong", test_event_ping_pong);
    g_test_add_func("/thread/event/set-wakes-all-waiters",
                    test_event_wakes_all);
    g_test_add_func("/thread/event/reset-keeps-sleepers",
                    test_event_reset_keeps_sleepers);
    g_test_add_func("/thread/thread/name", test_thread_name);
    g_test_add_func("/thread/thread/naming-disabled",
                    test_thread_naming_disabled);
    g_test_add_func("/thread/thread/async-signals-blocked",
                    test_thread_signal_mask);
    g_test_add_func("/thread/thread/detached", test_thread_detached);
    g_test_add_func("/thread/thread/self-and-id", test_thread_self_and_id);
    g_test_add_func("/thread/thread/exit-value", test_thread_exit_value);
    return g_test_run();
}
