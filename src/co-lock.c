/*
 * co-lock.c: coroutine locks: CoMutex, CoQueue and CoRwlock.
 *
 * CoMutex works between coroutines of any contexts and threads.  Its
 * uncontended path is one compare-and-swap on @locked.  Contended lockers
 * count themselves in @locked, push a CoWaitRecord on the lock-free
 * @from_push stack and yield; the unlocker pops the oldest waiter and
 * restarts it with aio_co_wake(), handing it the lock directly (the lock
 * is never free while @locked says somebody waits).  At any time at most
 * one coroutine pops: the holder in unlock, or a locker that took over
 * the "hand-off" (below).  Popping moves @from_push, reversed, into
 * @to_pop, which gives FIFO order.
 *
 * The hand-off covers the window in which a locker has counted itself in
 * @locked but not yet pushed its record: an unlocker that finds nobody to
 * pop publishes a non-zero ticket in @handoff and looks again; the locker,
 * after pushing, looks at @handoff.  Full barriers on both sides ensure
 * that at least one sees the other; a compare-and-swap of the ticket back
 * to zero decides which of them pops and wakes.  Tickets come from a
 * sequence so that a stale ticket read by a slow locker cannot match a
 * later one.
 *
 * CoQueue and CoRwlock have no atomics of their own: a CoQueue is
 * protected by its user's lock, a CoRwlock by its internal CoMutex.
 *
 * Threading: all coroutine_fn functions from coroutine context, in any
 * thread that runs an AioContext.  qemu_co_enter_next_impl() and
 * qemu_co_enter_all_impl() from outside coroutine context too.
 */
#include "qemu/osdep.h"
#include "qemu/processor.h"
#include "qemu/coroutine.h"
#include "qemu/error-report.h"
#include "block/aio.h"
#include "coroutine-int.h"

/* How long a locker spins on a mutex held from another thread. */
#define CO_MUTEX_SPIN_MAX 1000

typedef struct CoWaitRecord {
    Coroutine *co;
    QSLIST_ENTRY(CoWaitRecord) next;
} CoWaitRecord;

static Coroutine *co_lock_self(const char *func, const void *lock)
{
    Coroutine *self = qemu_coroutine_self();

    if (!qemu_in_coroutine()) {
        error_report("%s(%p): coroutine locks can only be used from "
                     "coroutine context", func, lock);
        abort();
    }
    return self;
}

/* ---- CoMutex ---------------------------------------------------------- */

void qemu_co_mutex_init(CoMutex *mutex)
{
    memset(mutex, 0, sizeof(*mutex));
}

static void co_mutex_push_waiter(CoMutex *mutex, CoWaitRecord *w)
{
    w->co = qemu_coroutine_self();
    /*
     * Lock-free push; the atomic exchange inside publishes w->co to the
     * popper's QSLIST_MOVE_ATOMIC in co_mutex_pop_waiter().
     */
    QSLIST_INSERT_HEAD_ATOMIC(&mutex->from_push, w, next);
}

/*
 * Only the single popper (see the top of the file) may call this.  Lockers
 * peek at @to_pop concurrently (co_mutex_has_waiters), so its head is
 * written with qatomic_set.
 */
static CoWaitRecord *co_mutex_pop_waiter(CoMutex *mutex)
{
    CoWaitRecord *w = mutex->to_pop.slh_first;

    if (!w) {
        CoWaitRecord *pushed = qatomic_xchg(&mutex->from_push.slh_first,
                                            NULL);

        /* @pushed is newest first; reversing it gives arrival order. */
        while (pushed) {
            CoWaitRecord *older = pushed->next.sle_next;

            pushed->next.sle_next = w;
            w = pushed;
            pushed = older;
        }
        if (!w) {
            return NULL;
        }
    }
    qatomic_set(&mutex->to_pop.slh_first, w->next.sle_next);
    return w;
}

static bool co_mutex_has_waiters(CoMutex *mutex)
{
    return qatomic_read(&mutex->to_pop.slh_first) != NULL ||
           qatomic_read(&mutex->from_push.slh_first) != NULL;
}

static void coroutine_fn co_mutex_lock_slowpath(CoMutex *mutex,
                                                AioContext *ctx)
{
    Coroutine *self = qemu_coroutine_self();
    CoWaitRecord w;
    unsigned ticket;

    co_mutex_push_waiter(mutex, &w);

    /*
     * Push before reading @handoff.  Pairs with the ticket's store plus
     * smp_mb in qemu_co_mutex_unlock() (ticket published, then waiters
     * checked): either the unlocker sees our record or we see its ticket.
     */
    smp_mb__after_rmw();

    ticket = qatomic_read(&mutex->handoff);
    if (ticket && co_mutex_has_waiters(mutex) &&
        qatomic_cmpxchg(&mutex->handoff, ticket, 0) == ticket) {
        /*
         * The unlocker left the job of waking a waiter to us, and the
         * ticket makes us the only popper.  The oldest waiter may be us.
         */
        CoWaitRecord *first = co_mutex_pop_waiter(mutex);

        if (first->co == self) {
            assert(first == &w);
            return;
        }
        aio_co_wake(first->co);
    }

    qemu_coroutine_yield();
    /* Woken by the unlocker or by a hand-off: the lock is ours now. */
}

void coroutine_fn qemu_co_mutex_lock(CoMutex *mutex)
{
    Coroutine *self = co_lock_self(__func__, mutex);
    AioContext *ctx = qemu_get_current_aio_context();
    unsigned waiters;
    int spins = 0;

    for (;;) {
        waiters = qatomic_cmpxchg(&mutex->locked, 0, 1);
        if (waiters == 0) {
            break;
        }
        /*
         * Held, nobody waiting, and the holder runs in another thread:
         * critical sections are usually much shorter than a yield and a
         * wake-up, so wait a little for it to finish.
         */
        while (waiters == 1 && ++spins < CO_MUTEX_SPIN_MAX &&
               qatomic_read(&mutex->ctx) != ctx) {
            cpu_relax();
            waiters = qatomic_read(&mutex->locked);
        }
        if (waiters == 0) {
            continue;
        }
        /* Count ourselves in.  If the holder left meanwhile, it is ours. */
        waiters = qatomic_fetch_inc(&mutex->locked);
        if (waiters != 0) {
            co_mutex_lock_slowpath(mutex, ctx);
        }
        break;
    }

    qatomic_set(&mutex->ctx, ctx);
    mutex->holder = self;
    self->locks_held++;
}

void coroutine_fn qemu_co_mutex_unlock(CoMutex *mutex)
{
    Coroutine *self = co_lock_self(__func__, mutex);

    if (!qatomic_read(&mutex->locked) || mutex->holder != self) {
        error_report("qemu_co_mutex_unlock(%p): the calling coroutine does "
                     "not hold this CoMutex", (void *)mutex);
        abort();
    }

    qatomic_set(&mutex->ctx, NULL);
    mutex->holder = NULL;
    self->locks_held--;
    /*
     * SEQ_CST: our critical section happens before that of the next
     * holder, whether it takes the lock with the compare-and-swap or
     * qatomic_fetch_inc() of qemu_co_mutex_lock(), or is woken below.
     */
    if (qatomic_fetch_dec(&mutex->locked) == 1) {
        return;     /* nobody waited */
    }

    for (;;) {
        CoWaitRecord *next = co_mutex_pop_waiter(mutex);
        unsigned ticket;

        if (next) {
            /* @next's record dies once it runs: read ->co first. */
            aio_co_wake(next->co);
            return;
        }

        /*
         * A locker is counted in @locked but has not pushed its record yet.
         * Offer it the job of waking a waiter (itself, normally).
         */
        if (++mutex->sequence == 0) {
            mutex->sequence = 1;
        }
        ticket = mutex->sequence;
        /*
         * Release: the locker that takes the ticket becomes the popper and
         * touches what we touched (the lists, @sequence once it holds the
         * lock).  The fence below comes after the store, so in C11 terms
         * it does not make the store a release (on x86 every store is
         * one), and ThreadSanitizer does not model fences at all.
         */
        qatomic_store_release(&mutex->handoff, ticket);
        /* Pairs with smp_mb__after_rmw() in co_mutex_lock_slowpath(). */
        smp_mb();
        if (!co_mutex_has_waiters(mutex)) {
            /* The locker has not pushed yet; it will see the ticket. */
            return;
        }
        /*
         * Somebody pushed.  Take the ticket back and pop ourselves, unless
         * a locker took it first; then popping is its job.
         */
        if (qatomic_cmpxchg(&mutex->handoff, ticket, 0) != ticket) {
            return;
        }
    }
}

/* ---- CoQueue ---------------------------------------------------------- */

void qemu_co_queue_init(CoQueue *queue)
{
    QSIMPLEQ_INIT(&queue->entries);
}

void coroutine_fn qemu_co_queue_wait_impl(CoQueue *queue, QemuLockable *lock,
                                          CoQueueWaitFlags flags)
{
    Coroutine *self = co_lock_self(__func__, queue);

    if (flags & CO_QUEUE_WAIT_FRONT) {
        QSIMPLEQ_INSERT_HEAD(&queue->entries, self, co_queue_next);
    } else {
        QSIMPLEQ_INSERT_TAIL(&queue->entries, self, co_queue_next);
    }

    if (lock) {
        qemu_lockable_unlock(lock);
    }

    /*
     * A waker in another thread may dequeue us between the unlock and the
     * yield; that is harmless: aio_co_wake() then schedules us into our
     * own context, which cannot enter us before this yield returns to it.
     */
    qemu_coroutine_yield();

    if (lock) {
        qemu_lockable_lock(lock);
    }
}

bool qemu_co_enter_next_impl(CoQueue *queue, QemuLockable *lock)
{
    Coroutine *next = QSIMPLEQ_FIRST(&queue->entries);

    if (!next) {
        return false;
    }
    QSIMPLEQ_REMOVE_HEAD(&queue->entries, co_queue_next);

    /* From outside coroutine context the woken coroutine may run now. */
    if (lock) {
        qemu_lockable_unlock(lock);
    }
    aio_co_wake(next);
    if (lock) {
        qemu_lockable_lock(lock);
    }
    return true;
}

bool coroutine_fn qemu_co_queue_next(CoQueue *queue)
{
    /* In coroutine context the woken coroutine waits for us to yield. */
    return qemu_co_enter_next_impl(queue, NULL);
}

void qemu_co_enter_all_impl(CoQueue *queue, QemuLockable *lock)
{
    while (qemu_co_enter_next_impl(queue, lock)) {
        /* next */
    }
}

void coroutine_fn qemu_co_queue_restart_all(CoQueue *queue)
{
    qemu_co_enter_all_impl(queue, NULL);
}

bool qemu_co_queue_empty(CoQueue *queue)
{
    return QSIMPLEQ_FIRST(&queue->entries) == NULL;
}

/* ---- CoRwlock --------------------------------------------------------- */

struct CoRwTicket {
    bool read;
    Coroutine *co;
    QSIMPLEQ_ENTRY(CoRwTicket) next;
};

void qemu_co_rwlock_init(CoRwlock *lock)
{
    qemu_co_mutex_init(&lock->mutex);
    lock->owners = 0;
    QSIMPLEQ_INIT(&lock->tickets);
}

/*
 * Grant the lock to the head of the line if it can have it now, then drop
 * lock->mutex.  The grant (lock->owners) is made here, before the wake-up,
 * so that nobody can slip in between.  A woken reader calls this again, so
 * a run of readers at the head wakes one after the other.
 */
static void coroutine_fn co_rwlock_grant_and_unlock(CoRwlock *lock)
{
    CoRwTicket *first = QSIMPLEQ_FIRST(&lock->tickets);
    Coroutine *co = NULL;

    if (first) {
        if (first->read && lock->owners >= 0) {
            lock->owners++;
            co = first->co;
        } else if (!first->read && lock->owners == 0) {
            lock->owners = -1;
            co = first->co;
        }
    }
    if (co) {
        QSIMPLEQ_REMOVE_HEAD(&lock->tickets, next);
    }
    qemu_co_mutex_unlock(&lock->mutex);
    if (co) {
        aio_co_wake(co);
    }
}

/* Queue at the back with lock->mutex held; returns once granted. */
static void coroutine_fn co_rwlock_wait(CoRwlock *lock, bool read,
                                        bool grant_first)
{
    CoRwTicket ticket = {
        .read = read,
        .co = qemu_coroutine_self(),
    };

    QSIMPLEQ_INSERT_TAIL(&lock->tickets, &ticket, next);
    if (grant_first) {
        co_rwlock_grant_and_unlock(lock);
    } else {
        qemu_co_mutex_unlock(&lock->mutex);
    }
    qemu_coroutine_yield();
}

void coroutine_fn qemu_co_rwlock_rdlock(CoRwlock *lock)
{
    Coroutine *self = co_lock_self(__func__, lock);

    qemu_co_mutex_lock(&lock->mutex);
    /* Readers share, but never overtake somebody already in line. */
    if (lock->owners >= 0 && QSIMPLEQ_EMPTY(&lock->tickets)) {
        lock->owners++;
        qemu_co_mutex_unlock(&lock->mutex);
    } else {
        co_rwlock_wait(lock, true, false);
        /* The next in line may be a reader too. */
        qemu_co_mutex_lock(&lock->mutex);
        /* Other readers change the count; read it under the mutex. */
        assert(lock->owners >= 1);
        co_rwlock_grant_and_unlock(lock);
    }
    self->locks_held++;
}

void coroutine_fn qemu_co_rwlock_wrlock(CoRwlock *lock)
{
    Coroutine *self = co_lock_self(__func__, lock);

    qemu_co_mutex_lock(&lock->mutex);
    if (lock->owners == 0 && QSIMPLEQ_EMPTY(&lock->tickets)) {
        lock->owners = -1;
        qemu_co_mutex_unlock(&lock->mutex);
    } else {
        co_rwlock_wait(lock, false, false);
        assert(lock->owners == -1);
    }
    self->locks_held++;
}

void coroutine_fn qemu_co_rwlock_unlock(CoRwlock *lock)
{
    Coroutine *self = co_lock_self(__func__, lock);

    qemu_co_mutex_lock(&lock->mutex);
    if (lock->owners > 0) {
        lock->owners--;
    } else if (lock->owners == -1) {
        lock->owners = 0;
    } else {
        error_report("qemu_co_rwlock_unlock(%p): the lock is not held",
                     (void *)lock);
        abort();
    }
    self->locks_held--;
    co_rwlock_grant_and_unlock(lock);
}

void coroutine_fn qemu_co_rwlock_downgrade(CoRwlock *lock)
{
    co_lock_self(__func__, lock);

    qemu_co_mutex_lock(&lock->mutex);
    if (lock->owners != -1) {
        error_report("qemu_co_rwlock_downgrade(%p): the lock is not held "
                     "for writing", (void *)lock);
        abort();
    }
    lock->owners = 1;
    /* Readers at the head of the line may join us now. */
    co_rwlock_grant_and_unlock(lock);
}

void coroutine_fn qemu_co_rwlock_upgrade(CoRwlock *lock)
{
    co_lock_self(__func__, lock);

    qemu_co_mutex_lock(&lock->mutex);
    if (lock->owners <= 0) {
        error_report("qemu_co_rwlock_upgrade(%p): the lock is not held "
                     "for reading", (void *)lock);
        abort();
    }
    if (lock->owners == 1 && QSIMPLEQ_EMPTY(&lock->tickets)) {
        /* The only reader, nobody in line: upgrade in place. */
        lock->owners = -1;
        qemu_co_mutex_unlock(&lock->mutex);
    } else {
        /*
         * Give up the read lock and queue for writing at the back: waiters
         * already in line (a writer, say) go first.
         */
        lock->owners--;
        co_rwlock_wait(lock, false, true);
        assert(lock->owners == -1);
    }
}
