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
 * dozen instructions, and nearly always without contention (a list is used
 * by its AioContext's thread; other threads arm its timers now and then).
 * So the uncontended path is inline and is one compare-and-swap to take the
 * lock and one exchange to drop it, where a QemuMutex costs two layers of
 * calls into pthreads each way.
 *
 * The word is 0 when free, 1 when held, 2 when held and a thread may be
 * sleeping on it (the classic three-state futex mutex): only the 2 state
 * makes the unlocker pay for a wake-up.  Without futexes, waiters yield
 * instead of sleeping.
 */
typedef struct TimerLock {
    unsigned word;
} TimerLock;

G_GNUC_INTERNAL void qaio_int_timer_lock_slow(TimerLock *lock);
G_GNUC_INTERNAL void qaio_int_timer_unlock_wake(TimerLock *lock);

static inline void timer_lock(TimerLock *lock)
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

static inline void timer_unlock(TimerLock *lock)
{
    /*
     * Release: pairs with the acquire in timer_lock and
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
 */
typedef struct TimerEntry {
    int64_t expire_time;                /* >= 0 */
    QEMUTimer *ts;                      /* NULL: a cancelled run entry */
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
 * A pending timer's heap_index says where it is: its heap slot, or
 * TIMER_IN_RUN plus its run position.  Run positions count up forever;
 * position p lives in run[p & (run_cap - 1)].  A cancelled run entry
 * becomes a hole; holes at either end are dropped at once, and the run is
 * compacted when holes outnumber live entries three to one, so its head
 * and tail are always live.
 *
 * All of it is under the owning list's active_timers_lock.  The operations
 * that arming and cancelling need are inline below (they are most of what
 * timer_mod_ns and timer_del do); growing, compacting and the rarer sifts
 * are in timer-queue.c.
 */
typedef struct TimerQueue {
    TimerEntry *heap;
    void *heap_alloc;                   /* the block heap points into */
    size_t n;
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
/* Makes room for one more heap entry. */
G_GNUC_INTERNAL void qaio_int_timer_heap_grow(TimerQueue *q);
/* Makes room for one more run entry. */
G_GNUC_INTERNAL void qaio_int_timer_run_grow(TimerQueue *q);
/* Puts @e at heap slot @i, moving it towards the root / the leaves. */
G_GNUC_INTERNAL void qaio_int_timer_heap_sift_up(TimerQueue *q, size_t i,
                                                 TimerEntry e);
G_GNUC_INTERNAL void qaio_int_timer_heap_sift_down(TimerQueue *q, size_t i,
                                                   TimerEntry e);
/* Takes the run entry at position @pos out. */
G_GNUC_INTERNAL void qaio_int_timer_run_remove(TimerQueue *q, uint64_t pos);

static inline size_t qaio_int_timer_queue_count(TimerQueue *q)
{
    return q->n + q->run_live;
}

/* Whether live entry @a fires before live entry @b. */
static inline bool timer_entry_before(const TimerEntry *a,
                                      const TimerEntry *b)
{
    if (likely(a->expire_time != b->expire_time)) {
        return a->expire_time < b->expire_time;
    }
    return a->ts->arm_seq < b->ts->arm_seq;
}

static inline TimerEntry *timer_run_entry(TimerQueue *q, uint64_t pos)
{
    return &q->run[pos & (q->run_cap - 1)];
}

static inline void timer_heap_place(TimerEntry *heap, size_t i, TimerEntry e)
{
    heap[i] = e;
    e.ts->heap_index = i;
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
static inline bool qaio_int_timer_queue_insert(TimerQueue *q, QEMUTimer *ts,
                                               int64_t expire_time)
{
    TimerEntry e = { .expire_time = expire_time, .ts = ts };
    TimerEntry *heap;
    size_t i;

    /*
     * Armed last, @ts goes behind any timer with an equal deadline: behind
     * the run's tail, below an equal parent, and it is the earliest only
     * if strictly earlier than the other structure's first entry.
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
static inline void qaio_int_timer_queue_remove(TimerQueue *q, QEMUTimer *ts)
{
    uint64_t i = ts->heap_index;
    size_t last;
    TimerEntry e;

    if (unlikely(i & TIMER_IN_RUN)) {
        qaio_int_timer_run_remove(q, i & ~TIMER_IN_RUN);
        return;
    }
    last = --q->n;
    e = q->heap[last];
    /*
     * The last entry fills the hole, and its timer learns its new slot.
     * That timer is anywhere in memory; start fetching its line now, so
     * that the miss overlaps the one on the hole's line just below instead
     * of following it.
     */
    __builtin_prefetch(&e.ts->heap_index, 1);
    assert(i <= last && q->heap[i].ts == ts);
    if (i == last) {
        return;
    }
    /*
     * Comparing with the departing entry first costs nothing (that line is
     * being written anyway): when the last entry is later, as a leaf's
     * entry usually is, it can only move down, and at a leaf slot (three
     * in four) it stays.
     */
    if (timer_entry_before(&e, &q->heap[i])) {
        qaio_int_timer_heap_sift_up(q, i, e);
    } else if (TIMER_HEAP_ARITY * i + 1 < last) {
        qaio_int_timer_heap_sift_down(q, i, e);
    } else {
        timer_heap_place(q->heap, i, e);
    }
}

/* The earliest timer, or NULL; its deadline in *@expire_time. */
static inline QEMUTimer *qaio_int_timer_queue_first(TimerQueue *q,
                                                    int64_t *expire_time)
{
    const TimerEntry *first;

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
        /* The run's head is live (see TimerQueue). */
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
