/*
 * lockcnt.c: QemuLockCnt, a count of list walkers fused with the lock that
 * guards freeing list elements (qemu/lockcnt.h).
 *
 * Threading: every function may be called from any thread.  Walkers
 * (inc/dec) never block each other; inc blocks only while the count is zero
 * and another thread holds the lock, which is exactly the window in which a
 * lock holder may be freeing elements.  The lock is not recursive, and a
 * thread that holds it would wait for itself in qemu_lockcnt_inc at count
 * zero, and in dec_and_lock or dec_if_lock at count one.
 *
 * On Linux count and lock are one futex word; elsewhere a QemuMutex guards
 * the slow paths.  See the state machine below.
 */
#include "qemu/osdep.h"
#include "qemu/lockcnt.h"
#include "qemu/error-report.h"
#include "futex-int.h"

static G_NORETURN void lockcnt_misuse(const char *func, const char *rule)
{
    error_report("%s: QemuLockCnt %s", func, rule);
    abort();
}

#ifdef CONFIG_LINUX
/*
 * lockcnt->count holds the walker count in units of LC_COUNT_ONE and the
 * lock state in the two low bits:
 *
 *   LC_FREE     nobody holds the lock.
 *   LC_LOCKED   held, and nobody sleeps on the word.
 *   LC_WAITERS  held, and threads may sleep on the word: the unlock must
 *               wake them.
 *
 * Every change of the word is a sequentially consistent read-modify-write
 * (compare-and-swap or fetch-and-op) that keeps the bits it does not own:
 *
 *   inc            count>0: count+1 whatever the lock state.
 *                  count==0 and FREE: count 0->1.
 *                  count==0 and held: wait (see below), then decide again.
 *   dec            count-1, never waits, never wakes: nobody sleeps on
 *                  the count going down.
 *   dec_and_lock   count>1: count-1, return false.
 *                  count==1 and FREE: count 1->0 and FREE->LOCKED in one
 *                  step, return true.  Nobody can slip in between, since
 *                  an inc seeing 0 would find the lock held.
 *                  count==1 and held: wait with the count still 1 (so
 *                  other walkers keep going), then decide again.
 *   dec_if_lock    as dec_and_lock, but count>1 returns false and changes
 *                  nothing.
 *   lock           FREE->LOCKED; held: wait, then decide again.
 *   unlock         LOCKED or WAITERS -> FREE; from WAITERS, wake all.
 *   inc_and_unlock count+1 and -> FREE in one step; from WAITERS, wake all.
 *
 * Waiting: a thread that must wait for the lock first turns LOCKED into
 * WAITERS (a CAS that fails if anything in the word moved, in which case it
 * decides again), then sleeps on the futex for as long as the word keeps the
 * exact value it saw.  Hence nobody sleeps unless the word says WAITERS, and
 * the word only leaves WAITERS through unlock or inc_and_unlock, which then
 * wake every sleeper; so no wake-up is lost.  Waking all rather than one
 * keeps this argument that simple: a woken thread that loses the race for
 * the lock sets WAITERS again before sleeping.  Contention on a lockcnt is
 * rare, so the thundering herd does not matter.
 *
 * Memory ordering: the read-modify-writes are acquire and release, and since
 * every write to the word is one of them, each forms a release sequence with
 * all later ones.  So a lock holder that reads count==0 (an acquire load in
 * qemu_lockcnt_count) has seen the end of every earlier walk, and a walker
 * whose inc waited for the unlock sees everything the holder did.
 */
#define LC_FREE         0u
#define LC_LOCKED       1u
#define LC_WAITERS      2u
#define LC_STATE_MASK   3u
#define LC_COUNT_ONE    4u

static inline unsigned lc_state(unsigned val)
{
    return val & LC_STATE_MASK;
}

/*
 * @val is the word as last read, with the lock held by another thread.
 * Make sure that thread's unlock will wake us, and sleep until the word
 * changes.  Returns a fresh read of the word for the caller to decide again.
 */
static unsigned lockcnt_wait(QemuLockCnt *lockcnt, unsigned val)
{
    if (lc_state(val) == LC_LOCKED) {
        unsigned expected = val;
        unsigned waiting = (val & ~LC_STATE_MASK) | LC_WAITERS;

        val = qatomic_cmpxchg(&lockcnt->count, expected, waiting);
        if (val != expected) {
            return val;
        }
        val = waiting;
    }
    qemu_futex_wait(&lockcnt->count, val);
    return qatomic_read(&lockcnt->count);
}

void qemu_lockcnt_init(QemuLockCnt *lockcnt)
{
    lockcnt->count = 0;
}

void qemu_lockcnt_destroy(QemuLockCnt *lockcnt)
{
    if (qatomic_read(&lockcnt->count) != 0) {
        lockcnt_misuse(__func__, "destroyed with walkers or lock held");
    }
}

void qemu_lockcnt_inc(QemuLockCnt *lockcnt)
{
    unsigned val = qatomic_read(&lockcnt->count);

    for (;;) {
        if (val >= LC_COUNT_ONE || lc_state(val) == LC_FREE) {
            unsigned expected = val;

            val = qatomic_cmpxchg(&lockcnt->count, expected,
                                  expected + LC_COUNT_ONE);
            if (val == expected) {
                return;
            }
        } else {
            val = lockcnt_wait(lockcnt, val);
        }
    }
}

void qemu_lockcnt_dec(QemuLockCnt *lockcnt)
{
    unsigned old = qatomic_fetch_sub(&lockcnt->count, LC_COUNT_ONE);

    if (old < LC_COUNT_ONE) {
        lockcnt_misuse(__func__, "count was already zero");
    }
}

/* The common loop of dec_and_lock (@only_if_last false) and dec_if_lock. */
static bool lockcnt_dec_lock(QemuLockCnt *lockcnt, bool only_if_last,
                             const char *func)
{
    unsigned val = qatomic_read(&lockcnt->count);

    for (;;) {
        unsigned expected = val;

        if (val < LC_COUNT_ONE) {
            lockcnt_misuse(func, "count was already zero");
        }
        if (val >= 2 * LC_COUNT_ONE) {
            if (only_if_last) {
                return false;
            }
            val = qatomic_cmpxchg(&lockcnt->count, expected,
                                  expected - LC_COUNT_ONE);
            if (val == expected) {
                return false;
            }
        } else if (lc_state(val) == LC_FREE) {
            val = qatomic_cmpxchg(&lockcnt->count, expected,
                                  (expected - LC_COUNT_ONE) | LC_LOCKED);
            if (val == expected) {
                return true;
            }
        } else {
            val = lockcnt_wait(lockcnt, val);
        }
    }
}

bool qemu_lockcnt_dec_and_lock(QemuLockCnt *lockcnt)
{
    return lockcnt_dec_lock(lockcnt, false, __func__);
}

bool qemu_lockcnt_dec_if_lock(QemuLockCnt *lockcnt)
{
    return lockcnt_dec_lock(lockcnt, true, __func__);
}

void qemu_lockcnt_lock(QemuLockCnt *lockcnt)
{
    unsigned val = qatomic_read(&lockcnt->count);

    for (;;) {
        if (lc_state(val) == LC_FREE) {
            unsigned expected = val;

            val = qatomic_cmpxchg(&lockcnt->count, expected,
                                  expected | LC_LOCKED);
            if (val == expected) {
                return;
            }
        } else {
            val = lockcnt_wait(lockcnt, val);
        }
    }
}

void qemu_lockcnt_unlock(QemuLockCnt *lockcnt)
{
    unsigned old = qatomic_fetch_and(&lockcnt->count, ~LC_STATE_MASK);

    if (lc_state(old) == LC_FREE) {
        lockcnt_misuse(__func__, "unlocked while not locked");
    }
    if (lc_state(old) == LC_WAITERS) {
        qemu_futex_wake_all(&lockcnt->count);
    }
}

void qemu_lockcnt_inc_and_unlock(QemuLockCnt *lockcnt)
{
    unsigned val = qatomic_read(&lockcnt->count);
    unsigned expected;

    do {
        expected = val;
        if (lc_state(expected) == LC_FREE) {
            lockcnt_misuse(__func__, "unlocked while not locked");
        }
        val = qatomic_cmpxchg(&lockcnt->count, expected,
                              (expected & ~LC_STATE_MASK) + LC_COUNT_ONE);
    } while (val != expected);

    if (lc_state(expected) == LC_WAITERS) {
        qemu_futex_wake_all(&lockcnt->count);
    }
}

unsigned qemu_lockcnt_count(QemuLockCnt *lockcnt)
{
    /* Acquire: see "Memory ordering" above. */
    return qatomic_load_acquire(&lockcnt->count) / LC_COUNT_ONE;
}

#else /* !CONFIG_LINUX */

/*
 * Without futexes: lockcnt->count is the plain walker count, changed only
 * by atomic read-modify-writes, and lockcnt->mutex is the lock.  A count
 * leaves zero only with the mutex held and reaches zero in dec_and_lock and
 * dec_if_lock only with the mutex held, so a mutex holder that reads zero
 * knows no walk can start until it unlocks.
 */

void qemu_lockcnt_init(QemuLockCnt *lockcnt)
{
    qemu_mutex_init(&lockcnt->mutex);
    lockcnt->count = 0;
}

void qemu_lockcnt_destroy(QemuLockCnt *lockcnt)
{
    if (qatomic_read(&lockcnt->count) != 0) {
        lockcnt_misuse(__func__, "destroyed with walkers");
    }
    qemu_mutex_destroy(&lockcnt->mutex);
}

void qemu_lockcnt_inc(QemuLockCnt *lockcnt)
{
    unsigned val = qatomic_read(&lockcnt->count);

    while (val != 0) {
        unsigned expected = val;

        val = qatomic_cmpxchg(&lockcnt->count, expected, expected + 1);
        if (val == expected) {
            return;
        }
    }
    qemu_mutex_lock(&lockcnt->mutex);
    qatomic_inc(&lockcnt->count);
    qemu_mutex_unlock(&lockcnt->mutex);
}

void qemu_lockcnt_dec(QemuLockCnt *lockcnt)
{
    if (qatomic_fetch_dec(&lockcnt->count) == 0) {
        lockcnt_misuse(__func__, "count was already zero");
    }
}

bool qemu_lockcnt_dec_and_lock(QemuLockCnt *lockcnt)
{
    unsigned val = qatomic_read(&lockcnt->count);

    while (val > 1) {
        unsigned expected = val;

        val = qatomic_cmpxchg(&lockcnt->count, expected, expected - 1);
        if (val == expected) {
            return false;
        }
    }
    qemu_mutex_lock(&lockcnt->mutex);
    val = qatomic_fetch_dec(&lockcnt->count);
    if (val == 0) {
        lockcnt_misuse(__func__, "count was already zero");
    }
    if (val == 1) {
        return true;
    }
    qemu_mutex_unlock(&lockcnt->mutex);
    return false;
}

bool qemu_lockcnt_dec_if_lock(QemuLockCnt *lockcnt)
{
    if (qatomic_read(&lockcnt->count) > 1) {
        return false;
    }
    qemu_mutex_lock(&lockcnt->mutex);
    if (qatomic_cmpxchg(&lockcnt->count, 1, 0) == 1) {
        return true;
    }
    qemu_mutex_unlock(&lockcnt->mutex);
    return false;
}

void qemu_lockcnt_lock(QemuLockCnt *lockcnt)
{
    qemu_mutex_lock(&lockcnt->mutex);
}

void qemu_lockcnt_unlock(QemuLockCnt *lockcnt)
{
    qemu_mutex_unlock(&lockcnt->mutex);
}

void qemu_lockcnt_inc_and_unlock(QemuLockCnt *lockcnt)
{
    qatomic_inc(&lockcnt->count);
    qemu_mutex_unlock(&lockcnt->mutex);
}

unsigned qemu_lockcnt_count(QemuLockCnt *lockcnt)
{
    return qatomic_load_acquire(&lockcnt->count);
}

#endif /* CONFIG_LINUX */
