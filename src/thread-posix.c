/*
 * thread-posix.c: QemuMutex, QemuRecMutex, QemuCond, QemuSemaphore,
 * QemuEvent and QemuThread on top of pthreads (qemu/thread.h).
 *
 * Threading: every function here may be called from any thread; that is the
 * point of them.  init/destroy must not race with other uses of the same
 * object, as with pthreads.  A failing pthread call means a corrupted object
 * or a programming error, so it aborts with the name of our function and the
 * error string (through error_report, the only way the library prints).
 *
 * QemuEvent is the only lock-free piece: a futex word on Linux, see the state
 * machine above qemu_event_set.  Elsewhere the same word is waited for with
 * one process-wide mutex and condition variable, which is slow but only has
 * to be correct.
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"
#include "qemu/error-report.h"
#include "futex-int.h"

#ifdef CONFIG_LINUX
#include <sys/syscall.h>
#endif

static G_NORETURN void thread_fail(const char *func, int err)
{
    error_report("%s: %s", func, strerror(err));
    abort();
}

static void require_init(bool initialized, const char *func)
{
    if (unlikely(!initialized)) {
        error_report("%s: object used before init or after destroy", func);
        abort();
    }
}

/* QemuMutex */

void qemu_mutex_init(QemuMutex *mutex)
{
    int err = pthread_mutex_init(&mutex->lock, NULL);

    if (err) {
        thread_fail(__func__, err);
    }
    mutex->initialized = true;
}

void qemu_mutex_destroy(QemuMutex *mutex)
{
    int err;

    require_init(mutex->initialized, __func__);
    mutex->initialized = false;
    err = pthread_mutex_destroy(&mutex->lock);
    if (err) {
        thread_fail(__func__, err);
    }
}

void qemu_mutex_lock(QemuMutex *mutex)
{
    int err;

    require_init(mutex->initialized, __func__);
    err = pthread_mutex_lock(&mutex->lock);
    if (err) {
        thread_fail(__func__, err);
    }
}

int qemu_mutex_trylock(QemuMutex *mutex)
{
    int err;

    require_init(mutex->initialized, __func__);
    err = pthread_mutex_trylock(&mutex->lock);
    if (err == EBUSY) {
        return -EBUSY;
    }
    if (err) {
        thread_fail(__func__, err);
    }
    return 0;
}

void qemu_mutex_unlock(QemuMutex *mutex)
{
    int err;

    require_init(mutex->initialized, __func__);
    err = pthread_mutex_unlock(&mutex->lock);
    if (err) {
        thread_fail(__func__, err);
    }
}

/*
 * QemuRecMutex: the same pthread calls on a PTHREAD_MUTEX_RECURSIVE mutex.
 * Each function is spelled out so that a failure names the function the
 * caller actually used.
 */

void qemu_rec_mutex_init(QemuRecMutex *mutex)
{
    pthread_mutexattr_t attr;
    int err;

    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    err = pthread_mutex_init(&mutex->m.lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (err) {
        thread_fail(__func__, err);
    }
    mutex->m.initialized = true;
}

void qemu_rec_mutex_destroy(QemuRecMutex *mutex)
{
    int err;

    require_init(mutex->m.initialized, __func__);
    mutex->m.initialized = false;
    err = pthread_mutex_destroy(&mutex->m.lock);
    if (err) {
        thread_fail(__func__, err);
    }
}

void qemu_rec_mutex_lock(QemuRecMutex *mutex)
{
    int err;

    require_init(mutex->m.initialized, __func__);
    err = pthread_mutex_lock(&mutex->m.lock);
    if (err) {
        thread_fail(__func__, err);
    }
}

int qemu_rec_mutex_trylock(QemuRecMutex *mutex)
{
    int err;

    require_init(mutex->m.initialized, __func__);
    err = pthread_mutex_trylock(&mutex->m.lock);
    if (err == EBUSY) {
        return -EBUSY;
    }
    if (err) {
        thread_fail(__func__, err);
    }
    return 0;
}

void qemu_rec_mutex_unlock(QemuRecMutex *mutex)
{
    int err;

    require_init(mutex->m.initialized, __func__);
    err = pthread_mutex_unlock(&mutex->m.lock);
    if (err) {
        thread_fail(__func__, err);
    }
}

/* QemuCond */

void qemu_cond_init(QemuCond *cond)
{
    pthread_condattr_t attr;
    int err;

    /*
     * Timed waits measure against CLOCK_MONOTONIC so that setting the wall
     * clock neither cuts a wait short nor stretches it.
     */
    pthread_condattr_init(&attr);
    err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (err) {
        thread_fail(__func__, err);
    }
    err = pthread_cond_init(&cond->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (err) {
        thread_fail(__func__, err);
    }
    cond->initialized = true;
}

void qemu_cond_destroy(QemuCond *cond)
{
    int err;

    require_init(cond->initialized, __func__);
    cond->initialized = false;
    err = pthread_cond_destroy(&cond->cond);
    if (err) {
        thread_fail(__func__, err);
    }
}

void qemu_cond_signal(QemuCond *cond)
{
    int err;

    require_init(cond->initialized, __func__);
    err = pthread_cond_signal(&cond->cond);
    if (err) {
        thread_fail(__func__, err);
    }
}

void qemu_cond_broadcast(QemuCond *cond)
{
    int err;

    require_init(cond->initialized, __func__);
    err = pthread_cond_broadcast(&cond->cond);
    if (err) {
        thread_fail(__func__, err);
    }
}

void qemu_cond_wait(QemuCond *cond, QemuMutex *mutex)
{
    int err;

    require_init(cond->initialized, __func__);
    require_init(mutex->initialized, __func__);
    err = pthread_cond_wait(&cond->cond, &mutex->lock);
    if (err) {
        thread_fail(__func__, err);
    }
}

/* The CLOCK_MONOTONIC time @ms milliseconds from now (now if @ms < 0). */
static struct timespec deadline_after_ms(int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms > 0) {
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    return ts;
}

/* Returns false on timeout.  @func names the public caller for failures. */
static bool cond_wait_until(QemuCond *cond, QemuMutex *mutex,
                            const struct timespec *deadline, const char *func)
{
    int err;

    require_init(cond->initialized, func);
    require_init(mutex->initialized, func);
    err = pthread_cond_timedwait(&cond->cond, &mutex->lock, deadline);
    if (err == ETIMEDOUT) {
        return false;
    }
    if (err) {
        thread_fail(func, err);
    }
    return true;
}

bool qemu_cond_timedwait(QemuCond *cond, QemuMutex *mutex, int ms)
{
    struct timespec deadline = deadline_after_ms(ms);

    return cond_wait_until(cond, mutex, &deadline, __func__);
}

/* QemuSemaphore: a count protected by sem->mutex, waited for on sem->cond. */

void qemu_sem_init(QemuSemaphore *sem, int init)
{
    if (init < 0) {
        error_report("qemu_sem_init: negative initial count %d", init);
        abort();
    }
    qemu_mutex_init(&sem->mutex);
    qemu_cond_init(&sem->cond);
    sem->count = init;
}

void qemu_sem_destroy(QemuSemaphore *sem)
{
    qemu_cond_destroy(&sem->cond);
    qemu_mutex_destroy(&sem->mutex);
}

void qemu_sem_post(QemuSemaphore *sem)
{
    qemu_mutex_lock(&sem->mutex);
    if (sem->count == UINT_MAX) {
        thread_fail(__func__, EOVERFLOW);
    }
    sem->count++;
    /* One post can satisfy one waiter; the count covers the rest. */
    qemu_cond_signal(&sem->cond);
    qemu_mutex_unlock(&sem->mutex);
}

void qemu_sem_wait(QemuSemaphore *sem)
{
    qemu_mutex_lock(&sem->mutex);
    while (sem->count == 0) {
        qemu_cond_wait(&sem->cond, &sem->mutex);
    }
    sem->count--;
    qemu_mutex_unlock(&sem->mutex);
}

int qemu_sem_timedwait(QemuSemaphore *sem, int ms)
{
    /* One deadline for the whole wait, however often we are woken. */
    struct timespec deadline = deadline_after_ms(ms);
    int ret = -1;

    qemu_mutex_lock(&sem->mutex);
    while (sem->count == 0) {
        if (!cond_wait_until(&sem->cond, &sem->mutex, &deadline, __func__)) {
            break;
        }
    }
    /* A post may have raced with the timeout; take it if it is there. */
    if (sem->count > 0) {
        sem->count--;
        ret = 0;
    }
    qemu_mutex_unlock(&sem->mutex);
    return ret;
}

/*
 * QemuEvent.  ev->value has three states:
 *
 *   EV_SET   set; qemu_event_wait returns at once.
 *   EV_FREE  not set, and no thread sleeps on the word.
 *   EV_BUSY  not set, and threads may sleep on the word: the next
 *            qemu_event_set must wake them.
 *
 *   qemu_event_set:    FREE -> SET (no syscall), BUSY -> SET + wake all,
 *                      SET stays SET (no write at all).
 *   qemu_event_reset:  SET -> FREE; FREE and BUSY stay as they are (a BUSY
 *                      word still has sleepers that a set must wake).
 *   qemu_event_wait:   FREE -> BUSY, then sleep while the word is BUSY.
 *
 * A waiter sleeps only while the word reads BUSY in the kernel's check, and
 * only set leaves BUSY, waking everybody after its exchange; so a set can
 * never slip between a waiter's decision to sleep and its sleep.
 */
#define EV_SET  0u
#define EV_FREE 1u
#define EV_BUSY 2u

#ifdef CONFIG_LINUX
static void event_sleep(QemuEvent *ev)
{
    qemu_futex_wait(&ev->value, EV_BUSY);
}

static void event_wake_all(QemuEvent *ev)
{
    qemu_futex_wake_all(&ev->value);
}
#else
/*
 * Without futexes every event shares one mutex and condition variable.  The
 * waiter checks the word under the mutex and the waker broadcasts under it,
 * after changing the word, so the check-then-sleep cannot miss the wake.
 */
static pthread_mutex_t event_park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t event_park_cond = PTHREAD_COND_INITIALIZER;

static void event_sleep(QemuEvent *ev)
{
    pthread_mutex_lock(&event_park_lock);
    if (qatomic_read(&ev->value) == EV_BUSY) {
        pthread_cond_wait(&event_park_cond, &event_park_lock);
    }
    pthread_mutex_unlock(&event_park_lock);
}

static void event_wake_all(QemuEvent *ev)
{
    pthread_mutex_lock(&event_park_lock);
    pthread_cond_broadcast(&event_park_cond);
    pthread_mutex_unlock(&event_park_lock);
}
#endif

void qemu_event_init(QemuEvent *ev, bool init)
{
    ev->value = init ? EV_SET : EV_FREE;
    ev->initialized = true;
}

void qemu_event_destroy(QemuEvent *ev)
{
    require_init(ev->initialized, __func__);
    ev->initialized = false;
}

void qemu_event_set(QemuEvent *ev)
{
    require_init(ev->initialized, __func__);

    /*
     * Order the caller's earlier writes (the condition the waiter will look
     * at) before our read of the word.  Pairs with the read-modify-write in
     * qemu_event_reset: either the resetting thread sees our writes when it
     * checks its condition after the reset, or we see its reset here and
     * write SET again.
     */
    smp_mb();
    if (qatomic_read(&ev->value) != EV_SET) {
        /*
         * The exchange is a release: a waiter that reads SET also sees
         * everything we wrote before this call.
         */
        if (qatomic_xchg(&ev->value, EV_SET) == EV_BUSY) {
            event_wake_all(ev);
        }
    }
}

void qemu_event_reset(QemuEvent *ev)
{
    require_init(ev->initialized, __func__);

    /*
     * An unconditional read-modify-write, so that it is a full barrier even
     * when the event was not set: the caller's next look at its condition
     * must not move above it.  Pairs with smp_mb in qemu_event_set.
     */
    qatomic_cmpxchg(&ev->value, EV_SET, EV_FREE);
    smp_mb__after_rmw();
}

void qemu_event_wait(QemuEvent *ev)
{
    unsigned value;

    require_init(ev->initialized, __func__);
    for (;;) {
        /* Acquire pairs with the exchange in qemu_event_set. */
        value = qatomic_load_acquire(&ev->value);
        if (value == EV_SET) {
            return;
        }
        if (value == EV_FREE) {
            /*
             * Announce a sleeper before sleeping, so that the set that
             * ends our wait knows to make the system call.
             */
            value = qatomic_cmpxchg(&ev->value, EV_FREE, EV_BUSY);
            if (value == EV_SET) {
                return;
            }
        }
        event_sleep(ev);
    }
}

/* QemuThread */

static bool name_threads = true;

void qemu_thread_naming(bool enable)
{
    qatomic_set(&name_threads, enable);
}

typedef struct ThreadStart {
    void *(*start_routine)(void *);
    void *arg;
    /* Empty when the thread is not to be named; 15 chars + NUL is Linux's. */
    char name[16];
} ThreadStart;

static void *thread_start(void *opaque)
{
    ThreadStart start = *(ThreadStart *)opaque;

    g_free(opaque);
    /*
     * Naming ourselves before running the payload means the name is in
     * place before any of its code runs.  Failure to name is harmless.
     */
    if (start.name[0]) {
        pthread_setname_np(pthread_self(), start.name);
    }
    return start.start_routine(start.arg);
}

void qemu_thread_create(QemuThread *thread, const char *name,
                        void *(*start_routine)(void *),
                        void *arg, int mode)
{
    ThreadStart *start = g_new0(ThreadStart, 1);
    sigset_t blocked, old;
    pthread_attr_t attr;
    int err;

    start->start_routine = start_routine;
    start->arg = arg;
    if (name && qatomic_read(&name_threads)) {
        g_strlcpy(start->name, name, sizeof(start->name));
    }

    err = pthread_attr_init(&attr);
    if (err) {
        thread_fail(__func__, err);
    }
    if (mode == QEMU_THREAD_DETACHED) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    }

    /*
     * The new thread inherits our signal mask: block every asynchronous
     * signal there so that they are delivered to the main thread.  The
     * synchronous fault signals stay open, since a fault raised with them
     * blocked kills the process without running any handler.
     */
    sigfillset(&blocked);
    sigdelset(&blocked, SIGSEGV);
    sigdelset(&blocked, SIGBUS);
    sigdelset(&blocked, SIGFPE);
    sigdelset(&blocked, SIGILL);
    pthread_sigmask(SIG_SETMASK, &blocked, &old);
    err = pthread_create(&thread->thread, &attr, thread_start, start);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err) {
        thread_fail(__func__, err);
    }
}

void *qemu_thread_join(QemuThread *thread)
{
    void *ret;
    int err = pthread_join(thread->thread, &ret);

    if (err) {
        thread_fail(__func__, err);
    }
    return ret;
}

void qemu_thread_get_self(QemuThread *thread)
{
    thread->thread = pthread_self();
}

bool qemu_thread_is_self(QemuThread *thread)
{
    return pthread_equal(pthread_self(), thread->thread);
}

void qemu_thread_exit(void *retval)
{
    pthread_exit(retval);
}

int qemu_get_thread_id(void)
{
#ifdef CONFIG_LINUX
    return syscall(SYS_gettid);
#else
    return getpid();
#endif
}
