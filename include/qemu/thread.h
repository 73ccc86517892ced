/*
 * qemu/thread.h: mutexes, condition variables, semaphores, events, spin
 * locks and threads, under QEMU's names (POSIX implementation).
 *
 * All of these are thread-safe by definition.  A failure of the underlying
 * pthread call means a corrupted object or a programming error (destroying a
 * locked mutex, for instance); it aborts with a message naming the
 * function, as QEMU does.  Mutexes are default pthread mutexes: unlocking
 * one this thread does not hold is undefined and not detected.
 */
#ifndef QEMU_THREAD_H
#define QEMU_THREAD_H

#include <pthread.h>
#include "qemu/atomic.h"
#include "qemu/processor.h"

typedef struct QemuMutex {
    pthread_mutex_t lock;
    bool initialized;
} QemuMutex;

/* A distinct type (not a typedef of QemuMutex) so _Generic can tell them apart. */
typedef struct QemuRecMutex {
    QemuMutex m;
} QemuRecMutex;

typedef struct QemuCond {
    pthread_cond_t cond;
    bool initialized;
} QemuCond;

typedef struct QemuSemaphore {
    QemuMutex mutex;
    QemuCond cond;
    unsigned int count;
} QemuSemaphore;

/*
 * A manual-reset event: qemu_event_set wakes every waiter and stays set until
 * qemu_event_reset.  Cheap when nobody waits (a futex on Linux).
 */
typedef struct QemuEvent {
    unsigned value;
    bool initialized;
} QemuEvent;

typedef struct QemuThread {
    pthread_t thread;
} QemuThread;

#define QEMU_THREAD_JOINABLE 0
#define QEMU_THREAD_DETACHED 1

void qemu_mutex_init(QemuMutex *mutex);
void qemu_mutex_destroy(QemuMutex *mutex);
void qemu_mutex_lock(QemuMutex *mutex);
/* Returns 0 when the mutex was taken, -EBUSY when another thread holds it. */
int qemu_mutex_trylock(QemuMutex *mutex);
void qemu_mutex_unlock(QemuMutex *mutex);

void qemu_rec_mutex_init(QemuRecMutex *mutex);
void qemu_rec_mutex_destroy(QemuRecMutex *mutex);
void qemu_rec_mutex_lock(QemuRecMutex *mutex);
/* Returns 0 when the mutex was taken, -EBUSY when another thread holds it. */
int qemu_rec_mutex_trylock(QemuRecMutex *mutex);
void qemu_rec_mutex_unlock(QemuRecMutex *mutex);

void qemu_cond_init(QemuCond *cond);
void qemu_cond_destroy(QemuCond *cond);
void qemu_cond_signal(QemuCond *cond);
void qemu_cond_broadcast(QemuCond *cond);
void qemu_cond_wait(QemuCond *cond, QemuMutex *mutex);
/* Waits at most @ms milliseconds; returns false on timeout. */
bool qemu_cond_timedwait(QemuCond *cond, QemuMutex *mutex, int ms);

void qemu_sem_init(QemuSemaphore *sem, int init);
void qemu_sem_destroy(QemuSemaphore *sem);
void qemu_sem_post(QemuSemaphore *sem);
void qemu_sem_wait(QemuSemaphore *sem);
/* Waits at most @ms milliseconds; returns 0, or -1 on timeout. */
int qemu_sem_timedwait(QemuSemaphore *sem, int ms);

void qemu_event_init(QemuEvent *ev, bool init);
void qemu_event_destroy(QemuEvent *ev);
void qemu_event_set(QemuEvent *ev);
void qemu_event_reset(QemuEvent *ev);
void qemu_event_wait(QemuEvent *ev);

/*
 * qemu_thread_create: start @start_routine(@arg) in a new thread named
 * @name (visible in /proc and debuggers when naming is enabled, which it is
 * by default).  @mode is QEMU_THREAD_JOINABLE or QEMU_THREAD_DETACHED.
 * The new thread starts with all signals blocked that QEMU blocks (none of
 * SIGBUS/SIGSEGV/SIGFPE/SIGILL), so that signals go to the main thread.
 * Aborts if the thread cannot be created, as QEMU does.
 */
void qemu_thread_create(QemuThread *thread, const char *name,
                        void *(*start_routine)(void *),
                        void *arg, int mode);
void *qemu_thread_join(QemuThread *thread);
void qemu_thread_get_self(QemuThread *thread);
bool qemu_thread_is_self(QemuThread *thread);
G_NORETURN void qemu_thread_exit(void *retval);
void qemu_thread_naming(bool enable);
/* The kernel's id of the calling thread (gettid). */
int qemu_get_thread_id(void);

/*
 * QemuSpin: a test-and-test-and-set spin lock for very short critical
 * sections.  No fairness, no sleeping.
 */
typedef struct QemuSpin {
    int value;
} QemuSpin;

static inline void qemu_spin_init(QemuSpin *spin)
{
    qatomic_set(&spin->value, 0);
}

static inline void qemu_spin_destroy(QemuSpin *spin)
{
    (void)spin;
}

static inline void qemu_spin_lock(QemuSpin *spin)
{
    while (unlikely(qatomic_xchg(&spin->value, 1))) {
        while (qatomic_read(&spin->value)) {
            cpu_relax();
        }
    }
}

/* Returns true if the lock was *not* taken (QEMU's convention). */
static inline bool qemu_spin_trylock(QemuSpin *spin)
{
    return qatomic_xchg(&spin->value, 1);
}

static inline bool qemu_spin_locked(QemuSpin *spin)
{
    return qatomic_read(&spin->value);
}

static inline void qemu_spin_unlock(QemuSpin *spin)
{
    qatomic_store_release(&spin->value, 0);
}

#endif /* QEMU_THREAD_H */
