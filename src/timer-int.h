/*
 * timer-int.h: what timer.c (timer lists, timers) and clock.c (clocks,
 * virtual time, main_loop_tlg) share and users never see.
 *
 * Owns the definition of QEMUTimerList and QEMUClock.
 *
 * Threading: a list's heap is protected by its active_timers_lock; the
 * fields marked atomic are read without it.  The clock's chain of lists is
 * protected by the clock's lists_lock; see clock.c for how walkers and
 * timerlist_free share it.
 */
#ifndef QAIO_TIMER_INT_H
#define QAIO_TIMER_INT_H

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qemu/thread.h"
#include "qemu/queue.h"

/*
 * A heap key: the deadline in the high 64 bits, the arming sequence number
 * in the low 64 bits, so one unsigned comparison orders timers by deadline
 * and then by arming order.  Deadlines are never negative.
 */
typedef unsigned __int128 TimerKey;

struct QEMUTimerList {
    QEMUClockType type;                 /* immutable */

    /*
     * A 4-ary min-heap kept as two parallel arrays: keys[i] and timers[i]
     * describe slot i, and timers[i]->heap_index == i.  Comparisons touch
     * only keys, and the four children of a slot share one cache line.
     * All of it under active_timers_lock.
     */
    QemuMutex active_timers_lock;
    TimerKey *keys;
    QEMUTimer **timers;
    void *keys_alloc;                   /* the block keys points into */
    size_t n;
    size_t cap;
    uint64_t next_seq;

    /* keys[0]'s deadline, -1 when empty: written under the lock, atomic. */
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
