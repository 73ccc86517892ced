/*
 * timer-int.h: what timer.c (timer lists, timers), timer-queue.c (the
 * ordered set of pending timers) and clock.c (clocks, virtual time,
 * main_loop_tlg) share and users never see.
 *
 * Owns the definition of QEMUTimerList, TimerQueue and QEMUClock.
 *
 * Threading: a list's queue is protected by its active_timers_lock (a
 * TimerLock, below); the fields marked atomic are read without it.  The
 * clock's chain of lists is protected by the clock's lists_lock; see
 * clock.c for how walkers and timerlist_free share it.
 */
#ifndef QAIO_TIMER_INT_H
#define QAIO_TIMER_INT_H

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qemu/thread.h"
#include "qemu/queue.h"
#include "futex-int.h"

/*
 * TimerLock: the lock of one timer list's queue.
 *
 * Arming and cancelling take it once each, for a critical section of a few
 * dozen instructions, and nearly always from one thread: a list is used by
 * its AioContext's thread, other threads arm its timers now and then.  An
 * atomic read-modify-write is cheap in itself, but on x86 it also waits
 * until every earlier store has reached the cache; the queue's stores miss
 * (the heap and the timers are large and touched at random), so a
 * compare-and-swap to lock and an exchange to unlock made each arm and
 * cancel wait out its own cache misses instead of overlapping them with
 * the next call's.  Hence two modes:
 *
 * Biased: the first thread to take the lock becomes its owner, and the
 * owner takes and drops it with plain stores to owner_in (set it, check
 * that the lock is still its own, clear it).  No other thread takes a
 * biased lock.
 *
 * Shared: word is a three-state futex mutex, 0 free, 1 held, 2 held and a
 * thread may sleep on it; only state 2 makes the unlocker pay for a
 * wake-up.  Without futexes, waiters yield instead of sleeping.
 *
 * The first time another thread wants a biased lock, it revokes the bias
 * for good (timer-lock.c): holding word, it marks the lock shared, makes
 * every thread of the process run a full memory barrier (membarrier(2)),
 * and waits for owner_in to drop.  That barrier stands in for the one the
 * owner leaves out between setting owner_in and re-reading owner, so
 * either the revoker sees owner_in set and waits, or the owner sees the
 * lock shared and takes word like everybody else.  Where membarrier is
 * missing, no lock is ever biased.
 */
typedef struct TimerLock {
    /* 0, 1 or 2 as above; atomic.  The only lock once shared. */
    unsigned word;
    /* Atomic: set by the owner while it holds the lock biased. */
    unsigned owner_in;
    /*
     * Atomic: NULL until claimed, TIMER_LOCK_SHARED once revoked (or where
     * biasing is unavailable), else the owner's qaio_int_timer_thread_id.
     * Changes only under word, and never back from TIMER_LOCK_SHARED.
     */
    const void *owner;
} TimerLock;

#define TIMER_LOCK_SHARED ((const void *)&qaio_int_timer_lock_shared)

/* Its address marks a shared lock. */
G_GNUC_INTERNAL extern const char qaio_int_timer_lock_shared;
/* Its address, which no other live thread shares, names the thread. */
G_GNUC_INTERNAL extern QAIO_THREAD_LOCAL char qaio_int_timer_thread_id;

/* timer-lock.c */
G_GNUC_INTERNAL void qaio_int_timer_lock_slow(TimerLock *lock);
/*
 * Called holding word on a lock that was not seen shared: claims an
 * unclaimed lock for the caller, revokes another thread's bias.
 */
G_GNUC_INTERNAL void qaio_int_timer_lock_settle(TimerLock *lock);
G_GNUC_INTERNAL void qaio_int_timer_unlock_wake(TimerLock *lock);

/* Takes word; the list is then the caller's whatever the mode. */
static inline void timer_lock_word(TimerLock *lock)
{
    unsigned free_word = 0;

    /* Acquire: pairs with the release in timer_unlock. */
    if (likely(__atomic_compare_exchange_n(&lock->word, &free_word, 1, false,
                                           __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED))) {
        return;
    }
    qaio_int_timer_lock_slow(lock);
}

/*
 * Takes @lock; returns true if it was taken biased, which the caller
 * passes to timer_unlock.
 */
static inline bool timer_lock(TimerLock *lock)
{
    const void *self = &qaio_int_timer_thread_id;
    const void *owner = qatomic_read(&lock->owner);

    if (likely(owner == self)) {
        qatomic_set(&lock->owner_in, 1);
        /*
         * Only a compiler barrier between the store above and the load
         * below: the revoker's membarrier supplies the processor's
         * (qaio_int_timer_lock_settle).
         */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (likely(qatomic_read(&lock->owner) == self)) {
            return true;
        }
        /* Revoked meanwhile; the revoker waits for this. */
        qatomic_store_release(&lock->owner_in, 0);
    }
    timer_lock_word(lock);
    if (unlikely(owner != TIMER_LOCK_SHARED)) {
        qaio_int_timer_lock_settle(lock);
    }
    return false;
}

static inline void timer_unlock(TimerLock *lock, bool biased)
{
    if (likely(biased)) {
        /*
         * Release: the critical section before the revoker's acquire load
         * of owner_in in qaio_int_timer_lock_settle.
         */
        qatomic_store_release(&lock->owner_in, 0);
        return;
    }
    /*
     * Release: pairs with the acquire in timer_lock_word and
     * qaio_int_timer_lock_slow.  An exchange rather than a store, to learn
     * whether someone announced (with 2) that it sleeps.
     */
    if (unlikely(__atomic_exchange_n(&lock->word, 0, __ATOMIC_RELEASE) == 2)) {
        qaio_int_timer_unlock_wake(lock);
    }
}

/*
 * A pending timer as the queue stores it: its deadline next to the timer,
 * 16 bytes, so four heap children fill one cache line and comparing them
 * rarely needs the timers themselves.  Equal deadlines are ordered by the
 * timers' arm_seq, the list's arming sequence number.
 *
 * A cancelled run entry is a hole: ts NULL.  A cancelled heap entry is a
 * tombstone (see TimerQueue): tag holds the cancelled arming's arm_seq,
 * shifted left, with bit 0 set, which no live entry has (timers are
 * aligned).  So a tombstone keeps its exact place in the order, and the
 * heap stays a heap around it.
 */
typedef struct TimerEntry {
    int64_t expire_time;                /* >= 0 */
    union {
        QEMUTimer *ts;
        uintptr_t tag;                  /* a tombstone: arm_seq << 1 | 1 */
    };
} TimerEntry;

/*
 * TimerQueue: the pending timers of one list, in two sorted structures.
 *
 * Most timers are armed at "now + timeout", so deadlines tend to arrive in
 * order.  A timer whose deadline is not below the newest one in the run is
 * appended to the run, a FIFO ring in (deadline, arm_seq) order: arming,
 * firing and cancelling it are O(1) and walk memory sequentially.  Any
 * other timer goes to a 4-ary min-heap.  The earliest timer is the smaller
 * of the heap's root and the run's head.
 *
 * The heap starts at a slot of its block chosen so that the four children
 * of any slot, heap[4i+1..4i+4], fill exactly one 64-byte cache line.  It
 * grows with realloc, which for large blocks remaps pages instead of
 * copying them.
 *
 * Cancelling a heap timer other than the root or the last entry leaves a
 * tombstone in its slot instead of moving the last entry there: moving it
 * means writing the moved timer's heap_index, a cache miss on a timer
 * anywhere in memory, and sifting it down, more misses.  The root is
 * always live: taking it out pops any tombstones that rise in its place.
 * When the last slot empties, the tombstones before it go too.  The heap
 * is rebuilt without tombstones when they outnumber its live entries three
 * to one, when one reaches the root and they are an eighth of the live
 * entries (popping each costs as much as firing a timer), and when it is
 * full and half tombstones (instead of growing); it is emptied outright
 * when its last live entry goes.
 *
 * A pending timer's heap_index says where it is: its heap slot, or
 * TIMER_IN_RUN plus its run position.  Run positions count up forever;
 * position p lives in run[p & (run_cap - 1)].  A cancelled run entry
 * becomes a hole; holes at either end are dropped at once, and the run is
 * compacted when holes outnumber live entries three to one, so its head
 * and tail are always live.
 *
 * All of it is under the owning list's active_timers_lock.  The operations
 * that arming and cancelling need are inline below (they are most of what
 * timer_mod_ns and timer_del do); growing, compacting and taking out the
 * root are in timer-queue.c.
 */
typedef struct TimerQueue {
    TimerEntry *heap;
    void *heap_alloc;                   /* the block heap points into */
    size_t n;                           /* heap slots in use */
    size_t dead;                        /* tombstones among them */
    size_t cap;

    TimerEntry *run;
    size_t run_cap;                     /* a power of two, or 0 */
    uint64_t run_head;                  /* position of the first entry */
    uint64_t run_tail;                  /* one past the last */
    size_t run_live;                    /* entries that are not holes */

    uint64_t next_seq;
} TimerQueue;

#define TIMER_IN_RUN (UINT64_C(1) << 63)
#define TIMER_HEAP_ARITY 4

struct QEMUTimerList {
    QEMUClockType type;                 /* immutable */

    TimerLock active_timers_lock;
    TimerQueue queue;                   /* under active_timers_lock */

    /*
     * The earliest deadline, -1 when empty: written under the lock, only
     * when it changes; read atomically without it.
     */
    int64_t earliest;

    /* Atomic: init_clocks changes main_loop_tlg's callback. */
    QEMUTimerListNotifyCB *notify_cb;
    void *notify_opaque;                /* immutable */

    /*
     * How qemu_clock_enable(false) waits for running callbacks: running
     * counts threads inside qaio_int_timerlist_run, waiters counts threads
     * in qemu_clock_enable waiting on done_ev.  Both atomic, sequentially
     * consistent; clock.c explains the pairing.
     */
    unsigned running;
    unsigned waiters;
    QemuEvent done_ev;

    /* Callbacks run (qaio/metrics.h): under the lock, read atomically. */
    uint64_t fired;

    /* The clock's chain; all three under the clock's lists_lock. */
    QLIST_ENTRY(QEMUTimerList) list;
    unsigned walkers;                   /* walkers using it unlocked */
    bool dead;                          /* freed while walked: reap later */
};

typedef struct QEMUClock {
    /* Protects timerlists and the chain fields of each list. */
    QemuMutex lists_lock;
    QLIST_HEAD(, QEMUTimerList) timerlists;
    /* Atomic, sequentially consistent: see qemu_clock_enable. */
    bool enabled;
} QEMUClock;

G_GNUC_INTERNAL extern QEMUClock qaio_int_clocks[QEMU_CLOCK_MAX];

/* clock.c */

/* Sets up the clocks and main_loop_tlg once; cheap after the first call. */
G_GNUC_INTERNAL void qaio_int_clocks_init(void);
/* Links a new list into its clock's chain. */
G_GNUC_INTERNAL void qaio_int_clock_attach(QEMUTimerList *tl);
/* Unlinks and destroys a list, or leaves that to the last walker. */
G_GNUC_INTERNAL void qaio_int_clock_detach(QEMUTimerList *tl);

static inline bool qaio_int_clock_enabled(QEMUClockType type)
{
    /* Sequentially consistent: pairs with the store in qemu_clock_enable. */
    return __atomic_load_n(&qaio_int_clocks[type].enabled, __ATOMIC_SEQ_CST);
}

/* timer-queue.c; all under the owning list's active_timers_lock */

/* Frees the queue's memory; it must be empty. */
G_GNUC_INTERNAL void qaio_int_timer_queue_destroy(TimerQueue *q);
/*
 * The earliest deadline among timers whose attributes all lie outside
 * @excluded, or -1.
 */
G_GNUC_INTERNAL int64_t qaio_int_timer_queue_earliest_matching(
    TimerQueue *q, unsigned excluded);
/* Makes room for one more heap entry: drops tombstones or grows. */
G_GNUC_INTERNAL void qaio_int_timer_heap_grow(TimerQueue *q);
/* Rebuilds the heap without its tombstones. */
G_GNUC_INTERNAL void qaio_int_timer_heap_compact(TimerQueue *q);
/* Takes out the live entry at heap slot @i, the root or the last. */
G_GNUC_INTERNAL void qaio_int_timer_heap_remove_end(TimerQueue *q, size_t i);
/* Makes room for one more run entry. */
G_GNUC_INTERNAL void qaio_int_timer_run_grow(TimerQueue *q);
/* Takes the run entry at position @pos out. */
G_GNUC_INTERNAL void qaio_int_timer_run_remove(TimerQueue *q, uint64_t pos);

/*
 * Rebuild the heap when there are at least TIMER_HEAP_DEAD_MIN tombstones
 * and they outnumber live entries TIMER_HEAP_DEAD_RATIO to one, or one
 * reaches the root and they are at least 1 / TIMER_HEAP_POP_RATIO of the
 * live entries.
 */
#define TIMER_HEAP_DEAD_MIN 64
#define TIMER_HEAP_DEAD_RATIO 3
#define TIMER_HEAP_POP_RATIO 8

static inline size_t qaio_int_timer_queue_count(TimerQueue *q)
{
    return q->n - q->dead + q->run_live;
}

static inline bool timer_entry_dead(const TimerEntry *e)
{
    return e->tag & 1;
}

/* The arming sequence number of heap entry @e, live or not. */
static inline uint64_t timer_entry_seq(const TimerEntry *e)
{
    return unlikely(timer_entry_dead(e)) ? e->tag >> 1 : e->ts->arm_seq;
}

/* Whether entry @a fires (or would have fired) before entry @b. */
static inline bool timer_entry_before(const TimerEntry *a,
                                      const TimerEntry *b)
{
    if (likely(a->expire_time != b->expire_time)) {
        return a->expire_time < b->expire_time;
    }
    return timer_entry_seq(a) < timer_entry_seq(b);
}

static inline TimerEntry *timer_run_entry(TimerQueue *q, uint64_t pos)
{
    return &q->run[pos & (q->run_cap - 1)];
}

static inline void timer_heap_place(TimerEntry *heap, size_t i, TimerEntry e)
{
    heap[i] = e;
    if (likely(!timer_entry_dead(&e))) {
        e.ts->heap_index = i;
    }
}

static inline void timer_run_append(TimerQueue *q, TimerEntry e)
{
    if (unlikely(q->run_tail - q->run_head == q->run_cap)) {
        qaio_int_timer_run_grow(q);
    }
    *timer_run_entry(q, q->run_tail) = e;
    e.ts->heap_index = TIMER_IN_RUN | q->run_tail;
    q->run_tail++;
    q->run_live++;
}

/*
 * Makes @ts, which is not in @q, pending at @expire_time (>= 0).  Returns
 * true if @ts is now the earliest timer of @q, which falls out of where it
 * went: a new earliest timer ends at the heap's root or starts an empty
 * run.
 */
static inline QEMU_ALWAYS_INLINE bool qaio_int_timer_queue_insert(
    TimerQueue *q, QEMUTimer *ts, int64_t expire_time)
{
    TimerEntry e = { .expire_time = expire_time, .ts = ts };
    TimerEntry *heap;
    size_t i;

    /*
     * Armed last, @ts goes behind any timer with an equal deadline: behind
     * the run's tail, below an equal parent (tombstones included: theirs
     * are older armings), and it is the earliest only if strictly earlier
     * than the other structure's first entry.
     */
    ts->arm_seq = q->next_seq++;
    if (unlikely(q->run_head == q->run_tail)) {
        timer_run_append(q, e);
        return !q->n || expire_time < q->heap[0].expire_time;
    }
    if (expire_time >= timer_run_entry(q, q->run_tail - 1)->expire_time) {
        timer_run_append(q, e);
        return false;
    }
    if (unlikely(q->n == q->cap)) {
        qaio_int_timer_heap_grow(q);
    }
    heap = q->heap;
    i = q->n++;
    while (i > 0) {
        size_t parent = (i - 1) / TIMER_HEAP_ARITY;

        if (expire_time >= heap[parent].expire_time) {
            break;
        }
        timer_heap_place(heap, i, heap[parent]);
        i = parent;
    }
    timer_heap_place(heap, i, e);
    return i == 0 &&
           expire_time < timer_run_entry(q, q->run_head)->expire_time;
}

/* Takes pending timer @ts out of @q. */
static inline QEMU_ALWAYS_INLINE void qaio_int_timer_queue_remove(
    TimerQueue *q, QEMUTimer *ts)
{
    uint64_t i = ts->heap_index;
    TimerEntry *e;

    if (unlikely(i & TIMER_IN_RUN)) {
        qaio_int_timer_run_remove(q, i & ~TIMER_IN_RUN);
        return;
    }
    e = &q->heap[i];
    assert(i < q->n && e->ts == ts);
    if (unlikely(i == 0 || i == q->n - 1)) {
        qaio_int_timer_heap_remove_end(q, i);
        return;
    }
    /* arm_seq < 2^63: a billion armings a second for three centuries. */
    e->tag = ts->arm_seq << 1 | 1;
    q->dead++;
    if (unlikely(q->dead > TIMER_HEAP_DEAD_RATIO * (q->n - q->dead) &&
                 q->dead >= TIMER_HEAP_DEAD_MIN)) {
        qaio_int_timer_heap_compact(q);
    }
}

/* The earliest timer, or NULL; its deadline in *@expire_time. */
static inline QEMUTimer *qaio_int_timer_queue_first(TimerQueue *q,
                                                    int64_t *expire_time)
{
    const TimerEntry *first;

    /* The heap's root and the run's head are live (see TimerQueue). */
    if (q->run_head == q->run_tail) {
        if (!q->n) {
            return NULL;
        }
        first = &q->heap[0];
    } else {
        first = timer_run_entry(q, q->run_head);
        if (q->n && timer_entry_before(&q->heap[0], first)) {
            first = &q->heap[0];
        }
    }
    *expire_time = first->expire_time;
    return first->ts;
}

/* The earliest deadline in @q, or -1 when it is empty. */
static inline int64_t qaio_int_timer_queue_first_time(TimerQueue *q)
{
    int64_t first = -1;

    if (q->run_head != q->run_tail) {
        first = timer_run_entry(q, q->run_head)->expire_time;
    }
    if (q->n && (first < 0 || q->heap[0].expire_time < first)) {
        first = q->heap[0].expire_time;
    }
    return first;
}

/* timer.c */

/* timerlist_new without the initialisation check (clock.c's init uses it). */
G_GNUC_INTERNAL QEMUTimerList *qaio_int_timerlist_create(
    QEMUClockType type, QEMUTimerListNotifyCB *cb, void *opaque);
/* Frees a list's memory; the list is already out of the clock's chain. */
G_GNUC_INTERNAL void qaio_int_timerlist_destroy(QEMUTimerList *tl);
/*
 * Runs the timers of @tl due by @now; with @force, even if the clock is
 * disabled (qemu_clock_advance_virtual_time).  Returns true if one ran.
 */
G_GNUC_INTERNAL bool qaio_int_timerlist_run(QEMUTimerList *tl, int64_t now,
                                            bool force);
/*
 * The earliest deadline among @tl's pending timers whose attributes all lie
 * in @attr_mask, or -1.  Ignores whether the clock is enabled.
 */
G_GNUC_INTERNAL int64_t qaio_int_timerlist_earliest(QEMUTimerList *tl,
                                                    int attr_mask);
/* How many frames of the calling thread's stack are running @tl's timers. */
G_GNUC_INTERNAL unsigned qaio_int_timerlist_runs_here(QEMUTimerList *tl);

#endif /* QAIO_TIMER_INT_H */
