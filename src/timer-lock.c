/*
 * timer-lock.c: the slow paths of TimerLock, the lock of a timer list's
 * queue (timer-int.h describes the two modes and has the fast paths).
 *
 * Owns the futex sleep and wake of a shared lock, the claim of an
 * unclaimed lock, and the revocation of a biased one.
 *
 * Why revocation is safe.  The owner, to lock, stores owner_in = 1 and
 * then loads owner; the revoker stores owner = TIMER_LOCK_SHARED, calls
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) and then loads owner_in.
 * That is Dekker's handshake with the owner's fence left out.  The call
 * runs a full barrier on the calling CPU and interrupts every CPU that is
 * running another thread of the process to run one there too, at an
 * instruction boundary of that thread (a thread not running has passed
 * through a context switch, which is a barrier as well).  If the owner's
 * load comes before that barrier, so does its store, which the barrier
 * makes visible to the revoker's load after the call; if the load comes
 * after it, it sees TIMER_LOCK_SHARED, which the revoker stored before the
 * call.  Either the revoker waits for owner_in to drop (the owner's
 * release store then publishes its critical section), or the owner backs
 * off to word, which the revoker holds.  The owner never needs a barrier;
 * the revoker pays a few microseconds, once per list.
 *
 * The revoker holds word throughout, and an owner only ever claims a lock
 * under word, so claims and revocations are serialised; a lock never goes
 * back from shared to biased.
 *
 * A thread's identity is the address of a thread-local variable: unique
 * among live threads.  A new thread may inherit a dead owner's address
 * and with it the bias, which is harmless, since only one live thread has
 * it.
 *
 * membarrier's expedited command needs the process to register first;
 * registration happens once, before the first claim, and without it no
 * lock is ever biased.  A child of fork() loses the registration, so a
 * revocation that is refused registers again.
 *
 * Threading: any thread.  Claims and revocations run under word.
 */
#include "qemu/osdep.h"
#include "qemu/processor.h"
#include "qemu/error-report.h"
#include "timer-int.h"

#ifdef CONFIG_LINUX
#include <linux/membarrier.h>
#include <sys/syscall.h>
#endif

const char qaio_int_timer_lock_shared;
QAIO_THREAD_LOCAL char qaio_int_timer_thread_id;

/* Spins on a held lock before sleeping: critical sections are short. */
#define TIMER_LOCK_SPINS 100

void qaio_int_timer_lock_slow(TimerLock *lock)
{
    for (int i = 0; i < TIMER_LOCK_SPINS; i++) {
        unsigned word = qatomic_read(&lock->word);

        if (word == 0) {
            /* Acquire: pairs with the release in timer_unlock. */
            if (__atomic_compare_exchange_n(&lock->word, &word, 1, false,
                                            __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                return;
            }
        } else if (word == 2) {
            /* Others sleep already; spinning would only delay joining them. */
            break;
        }
        cpu_relax();
    }
    /*
     * Take the lock or announce a sleeper: whoever holds it now sees 2 when
     * it unlocks and wakes us.  Once woken we cannot know whether others
     * still sleep, so we take it in state 2 (at worst one needless wake).
     * Acquire: pairs with the release in timer_unlock.
     */
    while (__atomic_exchange_n(&lock->word, 2, __ATOMIC_ACQUIRE) != 0) {
#ifdef CONFIG_LINUX
        qemu_futex_wait(&lock->word, 2);
#else
        sched_yield();
#endif
    }
}

void qaio_int_timer_unlock_wake(TimerLock *lock)
{
#ifdef CONFIG_LINUX
    /*
     * Every sleeper wakes and all but one go back to sleep; contention on a
     * timer list is rare enough that this never matters.
     */
    qemu_futex_wake_all(&lock->word);
#endif
}

/* Biasing */

#ifdef CONFIG_LINUX
static int membarrier(int cmd)
{
    return syscall(__NR_membarrier, cmd, 0, 0);
}
#endif

/* 0: not known yet; 1: the process is registered; -1: no biasing.  Atomic. */
static int bias_state;

static bool bias_supported(void)
{
    int state = qatomic_read(&bias_state);

    if (likely(state)) {
        return state > 0;
    }
#ifdef CONFIG_LINUX
    /* Registering twice (two lists claimed at once) is harmless. */
    state = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 ? 1
                                                                       : -1;
#else
    state = -1;
#endif
    qatomic_set(&bias_state, state);
    return state > 0;
}

/* A full memory barrier in every running thread of the process. */
static void barrier_all_threads(void)
{
#ifdef CONFIG_LINUX
    if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
        return;
    }
    /* A child of fork() is not registered, though its parent was. */
    if (errno == EPERM &&
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
        return;
    }
    /* Slow (it waits for an RCU grace period) but needs no registration. */
    if (membarrier(MEMBARRIER_CMD_GLOBAL) == 0) {
        return;
    }
    error_report("timer list: membarrier failed (%s), so a timer list's "
                 "owner thread cannot be stopped from using it",
                 strerror(errno));
#endif
    abort();
}

/* Yields after this many spins waiting for the owner to leave. */
#define TIMER_REVOKE_SPINS 1000

static void bias_revoke(TimerLock *lock)
{
    unsigned spins = 0;

    /*
     * Relaxed: barrier_all_threads orders it before our load of owner_in
     * and before the owner's next load of owner (see the file comment).
     */
    qatomic_set(&lock->owner, TIMER_LOCK_SHARED);
    barrier_all_threads();
    /*
     * Acquire: pairs with the owner's release in timer_unlock (or in
     * timer_lock when it backs off), so its critical section happened
     * before ours.
     */
    while (qatomic_load_acquire(&lock->owner_in)) {
        if (++spins < TIMER_REVOKE_SPINS) {
            cpu_relax();
        } else {
            /* The owner was preempted inside: let it run. */
            sched_yield();
        }
    }
}

void qaio_int_timer_lock_settle(TimerLock *lock)
{
    const void *self = &qaio_int_timer_thread_id;
    const void *owner = qatomic_read(&lock->owner);

    if (owner == TIMER_LOCK_SHARED || owner == self) {
        /* Revoked meanwhile; or (harmless) already ours. */
        return;
    }
    if (owner) {
        bias_revoke(lock);
    } else {
        /*
         * Under word, which every other thread takes until it sees the
         * claim; once it does, it revokes under word before going on.
         */
        qatomic_set(&lock->owner, bias_supported() ? self
                                                   : TIMER_LOCK_SHARED);
    }
}
