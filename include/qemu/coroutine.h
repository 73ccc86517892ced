/*
 * qemu/coroutine.h: synchronisation and waiting for coroutines.
 *
 * The coroutine core (create, enter, yield, CoMutex's functions) is in
 * qemu/coroutine-core.h, included here.  This header adds what coroutines
 * use to wait for each other and for the outside world: CoMutex's layout,
 * CoQueue, CoRwlock, sleeping on a clock, timeouts, waiting for an fd, and
 * socket I/O that yields instead of blocking.
 *
 * Threading: coroutines of different AioContexts (and so of different
 * threads) may share a CoMutex or a CoRwlock.  A CoQueue has no lock of its
 * own: its users protect it, normally with the lock passed to
 * qemu_co_queue_wait().  A coroutine woken by any of these primitives
 * resumes in the AioContext it last ran in (aio_co_wake); when that is the
 * waker's context and the waker is a coroutine, it runs once the waker
 * yields or terminates.
 */
#ifndef QEMU_COROUTINE_H
#define QEMU_COROUTINE_H

#include "qemu/osdep.h"
#include "qemu/coroutine-core.h"
#include "qemu/queue.h"
#include "qemu/timer.h"

/* ---- CoMutex ---------------------------------------------------------- */

/* A waiter of a CoMutex; private to the implementation. */
struct CoWaitRecord;

/**
 * CoMutex: a mutex for coroutines
 *
 * A coroutine that finds the lock taken yields until the lock is handed to
 * it; it does not block its thread.  Waiters are served in the order they
 * queued.  Lock-free when uncontended; safe between coroutines running in
 * different threads.  Initialize with qemu_co_mutex_init() (all-zero
 * memory is also a valid unlocked mutex).
 */
struct CoMutex {
    /*
     * Coroutines that called qemu_co_mutex_lock() and have not yet called
     * qemu_co_mutex_unlock(): the holder plus those waiting.  Atomic.
     */
    unsigned locked;

    /*
     * The context of the holder, or NULL.  A hint only: a locker spins
     * briefly when the holder runs in another thread, never when it runs
     * in its own (the holder could not progress meanwhile).
     */
    AioContext *ctx;

    /*
     * Waiters push themselves on from_push (lock-free, newest first); the
     * one coroutine allowed to pop moves them into to_pop, oldest first.
     */
    QSLIST_HEAD(, CoWaitRecord) from_push, to_pop;

    /*
     * The hand-off protocol between an unlock that finds a waiter counted
     * in @locked but not yet on a list, and that waiter.  See co-lock.c.
     */
    unsigned handoff, sequence;

    /* The coroutine that holds the lock, for assertions. */
    Coroutine *holder;
};

/**
 * qemu_co_mutex_assert_locked: assert that the calling coroutine holds
 * @mutex
 * @mutex: the mutex
 *
 * Context: coroutine.
 */
static inline coroutine_fn void qemu_co_mutex_assert_locked(CoMutex *mutex)
{
    /*
     * @holder needs no synchronisation when the assertion holds (the mutex
     * protects it); when it does not, any value read from another thread
     * makes the comparison fail just the same.
     */
    assert(qatomic_read(&mutex->locked) &&
           mutex->holder == qemu_coroutine_self());
}

/* ---- CoQueue ---------------------------------------------------------- */

typedef struct QemuLockable QemuLockable;

/**
 * CoQueue: coroutines waiting for a condition
 *
 * Like a condition variable: qemu_co_queue_wait() releases a lock, yields
 * until woken and re-takes the lock.  The queue itself is not thread-safe;
 * callers serialise access to it, normally with that same lock.
 */
typedef struct CoQueue {
    QSIMPLEQ_HEAD(, Coroutine) entries;
} CoQueue;

/**
 * qemu_co_queue_init: initialize an empty queue
 * @queue: the queue
 */
void qemu_co_queue_init(CoQueue *queue);

typedef enum {
    /* Queue at the front rather than at the back: woken next. */
    CO_QUEUE_WAIT_FRONT = 0x1,
} CoQueueWaitFlags;

/**
 * qemu_co_queue_wait: wait on @queue until woken
 * @queue: the queue
 * @lock: a QemuMutex *, QemuRecMutex *, CoMutex *, QemuSpin * held by the
 *        caller, or NULL
 *
 * Releases @lock while waiting and takes it again before returning.  The
 * wake-up can be spurious with respect to the caller's condition: check it
 * again in a loop.  Context: coroutine.
 */
#define qemu_co_queue_wait(queue, lock) \
    qemu_co_queue_wait_impl(queue, QEMU_MAKE_LOCKABLE(lock), 0)

/**
 * qemu_co_queue_wait_flags: qemu_co_queue_wait() with #CoQueueWaitFlags
 * @queue: the queue
 * @lock: as for qemu_co_queue_wait()
 * @flags: CO_QUEUE_WAIT_FRONT to be woken before the coroutines already
 *         waiting
 */
#define qemu_co_queue_wait_flags(queue, lock, flags) \
    qemu_co_queue_wait_impl(queue, QEMU_MAKE_LOCKABLE(lock), (flags))

/**
 * qemu_co_queue_wait_impl: the function behind qemu_co_queue_wait()
 * @queue: the queue
 * @lock: the lock to release while waiting, or NULL
 * @flags: #CoQueueWaitFlags
 *
 * Context: coroutine.
 */
void coroutine_fn qemu_co_queue_wait_impl(CoQueue *queue, QemuLockable *lock,
                                          CoQueueWaitFlags flags);

/**
 * qemu_co_queue_next: wake the first coroutine of @queue
 * @queue: the queue
 *
 * The coroutine is removed from the queue and restarted with aio_co_wake():
 * in the caller's context it runs after the caller yields.
 *
 * Context: coroutine.
 * Returns: true if a coroutine was woken, false if the queue was empty.
 */
bool coroutine_fn qemu_co_queue_next(CoQueue *queue);

/**
 * qemu_co_queue_restart_all: wake every coroutine of @queue, in order
 * @queue: the queue
 *
 * Context: coroutine.
 */
void coroutine_fn qemu_co_queue_restart_all(CoQueue *queue);

/**
 * qemu_co_enter_next: wake the first coroutine of @queue, from outside
 * coroutine context
 * @queue: the queue
 * @lock: the lock protecting @queue, held by the caller, or NULL
 *
 * @lock is released around the wake-up: a coroutine of the caller's own
 * context runs at once, and it will want the lock.
 *
 * Returns: true if a coroutine was woken, false if the queue was empty.
 */
#define qemu_co_enter_next(queue, lock) \
    qemu_co_enter_next_impl(queue, QEMU_MAKE_LOCKABLE(lock))

/* The function behind qemu_co_enter_next(). */
bool qemu_co_enter_next_impl(CoQueue *queue, QemuLockable *lock);

/**
 * qemu_co_enter_all: qemu_co_enter_next() until @queue is empty
 * @queue: the queue
 * @lock: as for qemu_co_enter_next()
 */
#define qemu_co_enter_all(queue, lock) \
    qemu_co_enter_all_impl(queue, QEMU_MAKE_LOCKABLE(lock))

/* The function behind qemu_co_enter_all(). */
void qemu_co_enter_all_impl(CoQueue *queue, QemuLockable *lock);

/**
 * qemu_co_queue_empty: whether nobody waits on @queue
 * @queue: the queue
 *
 * Returns: true if @queue is empty.
 */
bool qemu_co_queue_empty(CoQueue *queue);

/* ---- CoRwlock --------------------------------------------------------- */

/* A queued request for a CoRwlock; lives on the waiter's stack. */
typedef struct CoRwTicket CoRwTicket;

/**
 * CoRwlock: a readers-writer lock for coroutines
 *
 * FIFO-fair: once a writer queues, later readers queue behind it, and a
 * reader upgrading while a writer is queued goes behind that writer.
 * Safe between coroutines of different threads.
 */
typedef struct CoRwlock {
    /* Protects the other fields. */
    CoMutex mutex;

    /* Number of readers holding the lock, or -1 when a writer holds it. */
    int owners;

    /* Waiters, in arrival order. */
    QSIMPLEQ_HEAD(, CoRwTicket) tickets;
} CoRwlock;

/**
 * qemu_co_rwlock_init: initialize an unlocked rwlock
 * @lock: the lock
 */
void qemu_co_rwlock_init(CoRwlock *lock);

/**
 * qemu_co_rwlock_rdlock: take @lock for reading
 * @lock: the lock
 *
 * Waits while a writer holds the lock or is queued.  Context: coroutine.
 */
void coroutine_fn qemu_co_rwlock_rdlock(CoRwlock *lock);

/**
 * qemu_co_rwlock_upgrade: turn a read lock into a write lock
 * @lock: the lock, held for reading by the caller
 *
 * Waits until the other readers leave.  Not atomic: if another reader or a
 * writer is around, the caller gives up its read lock and queues for the
 * write lock at the back, so the protected data may change meanwhile.
 * Context: coroutine.
 */
void coroutine_fn qemu_co_rwlock_upgrade(CoRwlock *lock);

/**
 * qemu_co_rwlock_downgrade: turn a write lock into a read lock
 * @lock: the lock, held for writing by the caller
 *
 * Readers queued at the head of the line may join at once.
 * Context: coroutine.
 */
void coroutine_fn qemu_co_rwlock_downgrade(CoRwlock *lock);

/**
 * qemu_co_rwlock_wrlock: take @lock for writing
 * @lock: the lock
 *
 * Context: coroutine.
 */
void coroutine_fn qemu_co_rwlock_wrlock(CoRwlock *lock);

/**
 * qemu_co_rwlock_unlock: release a read or write lock on @lock
 * @lock: the lock
 *
 * Context: coroutine.
 */
void coroutine_fn qemu_co_rwlock_unlock(CoRwlock *lock);

/* ---- Sleeping --------------------------------------------------------- */

/**
 * QemuCoSleep: a coroutine sleeping in qemu_co_sleep() or
 * qemu_co_sleep_ns_wakeable(), for qemu_co_sleep_wake()
 * @to_wake: the sleeping coroutine, or NULL when nobody sleeps
 */
typedef struct QemuCoSleep {
    Coroutine *to_wake;
} QemuCoSleep;

/**
 * qemu_co_sleep_ns_wakeable: sleep @ns nanoseconds of clock @type, unless
 * woken earlier
 * @w: the handle qemu_co_sleep_wake() wakes the caller with
 * @type: the clock
 * @ns: how long
 *
 * The timer is on the calling thread's current AioContext.
 * Context: coroutine.
 */
void coroutine_fn qemu_co_sleep_ns_wakeable(QemuCoSleep *w,
                                            QEMUClockType type, int64_t ns);

/**
 * qemu_co_sleep: yield until woken with qemu_co_sleep_wake()
 * @w: the handle
 *
 * The coroutine counts as scheduled meanwhile: entering it by any other
 * means aborts.  Context: coroutine.
 */
void coroutine_fn qemu_co_sleep(QemuCoSleep *w);

/**
 * qemu_co_sleep_ns: sleep @ns nanoseconds of clock @type
 * @type: the clock
 * @ns: how long
 *
 * Context: coroutine.
 */
static inline void coroutine_fn qemu_co_sleep_ns(QEMUClockType type,
                                                 int64_t ns)
{
    QemuCoSleep w = { 0 };

    qemu_co_sleep_ns_wakeable(&w, type, ns);
}

/**
 * qemu_co_sleep_wake: wake the coroutine sleeping on @w early
 * @w: the handle
 *
 * Cancels its timer, if any.  Does nothing if nobody sleeps on @w.
 * Any context and any thread, provided @w outlives the call.
 */
void qemu_co_sleep_wake(QemuCoSleep *w);

/* Called with the opaque of a timed-out qemu_co_timeout() when it ends. */
typedef void CleanupFunc(void *opaque);

/**
 * qemu_co_timeout: run @entry with a time limit
 * @entry: the function to run, in a new coroutine of the current context
 * @opaque: its argument
 * @timeout_ns: the limit, on QEMU_CLOCK_REALTIME; 0 means none (and then
 *              @entry runs in the calling coroutine)
 * @clean: if not NULL, called with @opaque once a timed-out @entry finishes
 *
 * A running coroutine cannot be cancelled: on timeout @entry keeps running
 * in the background, and @clean (not the caller) must dispose of @opaque.
 *
 * Context: coroutine.
 * Returns: 0 if @entry finished in time, -ETIMEDOUT otherwise.
 */
int coroutine_fn qemu_co_timeout(CoroutineEntry *entry, void *opaque,
                                 uint64_t timeout_ns, CleanupFunc clean);

/* ---- Waiting for fds, socket I/O -------------------------------------- */

/**
 * yield_until_fd_readable: yield until @fd is readable (or hung up)
 * @fd: the file descriptor
 *
 * Installs a read handler for @fd on the current AioContext for the
 * duration, replacing any handler @fd had.  Context: coroutine, in a thread
 * that runs an AioContext.
 */
void coroutine_fn yield_until_fd_readable(int fd);

/*
 * Coroutine pool sizing; implemented by the coroutine core.  Raise the
 * pool's capacity by @additional_pool_size coroutines, or lower it again.
 */
void qemu_coroutine_inc_pool_size(unsigned int additional_pool_size);
void qemu_coroutine_dec_pool_size(unsigned int additional_pool_size);

/**
 * qemu_co_sendv_recvv: send or receive @bytes bytes of @iov, yielding
 * while the socket is not ready
 * @sockfd: the socket (ideally non-blocking; calls are made with
 *          MSG_DONTWAIT either way, and sends with MSG_NOSIGNAL)
 * @iov: the buffers
 * @iov_cnt: their number
 * @offset: where in @iov to start, in bytes
 * @bytes: how much to transfer
 * @do_send: send if true, receive if false
 *
 * On EAGAIN the coroutine yields until @sockfd is ready (a handler for
 * @sockfd is installed on the current AioContext meanwhile, replacing any
 * other).  Stops early at end of file, or on an error after some bytes
 * were transferred.
 *
 * Context: coroutine.
 * Returns: the number of bytes transferred, or -errno if an error came
 * before any byte.
 */
ssize_t coroutine_fn qemu_co_sendv_recvv(int sockfd, struct iovec *iov,
                                         unsigned iov_cnt, size_t offset,
                                         size_t bytes, bool do_send);
#define qemu_co_recvv(sockfd, iov, iov_cnt, offset, bytes) \
    qemu_co_sendv_recvv(sockfd, iov, iov_cnt, offset, bytes, false)
#define qemu_co_sendv(sockfd, iov, iov_cnt, offset, bytes) \
    qemu_co_sendv_recvv(sockfd, iov, iov_cnt, offset, bytes, true)

/**
 * qemu_co_send_recv: qemu_co_sendv_recvv() on one buffer
 * @sockfd: the socket
 * @buf: the buffer
 * @bytes: its length
 * @do_send: send if true, receive if false
 *
 * Context: coroutine.
 * Returns: as qemu_co_sendv_recvv().
 */
ssize_t coroutine_fn qemu_co_send_recv(int sockfd, void *buf, size_t bytes,
                                       bool do_send);
#define qemu_co_recv(sockfd, buf, bytes) \
    qemu_co_send_recv(sockfd, buf, bytes, false)
#define qemu_co_send(sockfd, buf, bytes) \
    qemu_co_send_recv(sockfd, buf, bytes, true)

#include "qemu/lockable.h"

#endif /* QEMU_COROUTINE_H */
