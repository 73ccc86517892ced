/*
 * qemu/timer.h: clocks, timer lists and timers, under QEMU 9.x's names.
 *
 * A QEMUTimerList holds the armed timers of one clock for one owner (an
 * AioContext, or the main loop through main_loop_tlg); a QEMUTimerListGroup
 * is one list per clock.  Arming, re-arming and cancelling a timer cost
 * O(log n) at worst (O(1) for timers armed in deadline order, the usual
 * "now + timeout"), and timers with equal deadlines fire in the order they
 * were armed.
 *
 * Threading: timer_mod*, timer_del, timer_pending, timer_expired and
 * timer_expire_time_ns may be called from any thread; each list has a mutex
 * that protects its heap.  A list's timers are run (timerlist_run_timers) by
 * its owner's thread, without that mutex held, so a callback may re-arm or
 * delete any timer, itself included.  qemu_clock_get_ns takes no lock.
 *
 * Clocks:
 *   QEMU_CLOCK_REALTIME   CLOCK_MONOTONIC; runs even while the host sleeps
 *                         only as far as that clock does.
 *   QEMU_CLOCK_VIRTUAL    follows CLOCK_MONOTONIC while enabled (it starts
 *                         enabled and equal to QEMU_CLOCK_REALTIME).  While
 *                         disabled it stands still; it then moves only
 *                         through qemu_clock_advance_virtual_time.
 *                         Re-enabling resumes from the value it stood at.
 *   QEMU_CLOCK_HOST       CLOCK_REALTIME, the wall clock; may jump.
 *   QEMU_CLOCK_VIRTUAL_RT CLOCK_MONOTONIC.  Unlike QEMU (where it stops with
 *                         the VM) it is not affected by disabling
 *                         QEMU_CLOCK_VIRTUAL: there is no VM here, and
 *                         callers that want a clock that stops use VIRTUAL.
 * Disabling any clock (qemu_clock_enable) stops its timers from running:
 * timerlist_run_timers runs nothing and timerlist_deadline_ns returns -1.
 */
#ifndef QEMU_TIMER_H
#define QEMU_TIMER_H

#include "qemu/bitops.h"
#include "qemu/notify.h"
#include "qemu/host-utils.h"

#define NANOSECONDS_PER_SECOND 1000000000LL

/* timers */

#define SCALE_MS 1000000
#define SCALE_US 1000
#define SCALE_NS 1

/**
 * QEMUClockType:
 *
 * The type of clock used by a timer or timer list; see the top of this
 * file for what each one measures.
 */
typedef enum {
    QEMU_CLOCK_REALTIME = 0,
    QEMU_CLOCK_VIRTUAL = 1,
    QEMU_CLOCK_HOST = 2,
    QEMU_CLOCK_VIRTUAL_RT = 3,
    QEMU_CLOCK_MAX
} QEMUClockType;

/*
 * Timer attributes, a bit mask stored in each timer.
 *
 * QEMU_TIMER_ATTR_EXTERNAL: the timer drives something outside the guest
 * (in QEMU: I/O, not guest-visible state).  qemu_clock_deadline_ns_all can
 * leave such timers out.
 * QEMU_TIMER_ATTR_ALL: a mask that selects every timer.
 */
#define QEMU_TIMER_ATTR_EXTERNAL ((int)BIT(0))
#define QEMU_TIMER_ATTR_ALL      0xffffffff

typedef struct QEMUTimerList QEMUTimerList;

struct QEMUTimerListGroup {
    QEMUTimerList *tl[QEMU_CLOCK_MAX];
};

typedef void QEMUTimerCB(void *opaque);
typedef void QEMUTimerListNotifyCB(void *opaque, QEMUClockType type);

struct QEMUTimer {
    int64_t expire_time;        /* in nanoseconds; -1 when not pending */
    QEMUTimerList *timer_list;
    QEMUTimerCB *cb;
    void *opaque;
    QEMUTimer *next;            /* unused: kept for source compatibility */
    int attributes;
    int scale;

    /*
     * Private to src/timer-queue.c, protected by the list's lock: while the
     * timer is pending, where it sits in timer_list's queue, and when it
     * was armed (timers with equal deadlines fire in arming order).
     */
    uint64_t heap_index;
    uint64_t arm_seq;
};

extern QEMUTimerListGroup main_loop_tlg;

/*
 * QEMUClockType
 */

/**
 * qemu_clock_get_ns: read a clock
 * @type: the clock type
 *
 * Returns: the clock's current value in nanoseconds.  Takes no lock; safe
 * from any thread.  QEMU_CLOCK_VIRTUAL never goes backwards.
 */
int64_t qemu_clock_get_ns(QEMUClockType type);

/**
 * qemu_clock_get_ms: read a clock in milliseconds
 * @type: the clock type
 *
 * Returns: the clock's current value in milliseconds (truncated).
 */
static inline int64_t qemu_clock_get_ms(QEMUClockType type)
{
    return qemu_clock_get_ns(type) / SCALE_MS;
}

/**
 * qemu_clock_get_us: read a clock in microseconds
 * @type: the clock type
 *
 * Returns: the clock's current value in microseconds (truncated).
 */
static inline int64_t qemu_clock_get_us(QEMUClockType type)
{
    return qemu_clock_get_ns(type) / SCALE_US;
}

/**
 * qemu_clock_has_timers: whether the main loop's list of a clock has
 * armed timers
 * @type: the clock type
 *
 * Like QEMU, this (and qemu_clock_expired, qemu_clock_run_timers) looks at
 * main_loop_tlg only, never at the lists of AioContexts.
 *
 * Returns: true if main_loop_tlg's list for @type has a pending timer.
 */
bool qemu_clock_has_timers(QEMUClockType type);

/**
 * qemu_clock_expired: whether the main loop's list of a clock has an
 * expired timer
 * @type: the clock type
 *
 * Returns: true if main_loop_tlg's list for @type has a pending timer
 * whose deadline is not after the clock's current value.
 */
bool qemu_clock_expired(QEMUClockType type);

/**
 * qemu_clock_use_for_deadline: whether a clock's timers should bound the
 * poll timeout
 * @type: the clock type
 *
 * Returns: true (no clock here is driven by instruction counting).
 */
bool qemu_clock_use_for_deadline(QEMUClockType type);

/**
 * qemu_clock_deadline_ns_all: time until the earliest timer of a clock,
 * over every timer list of that clock
 * @type: the clock type
 * @attr_mask: consider only timers whose attributes are all in this mask
 *
 * Returns: -1 if no timer qualifies or the clock is disabled, 0 if a
 * qualifying timer has expired, otherwise the nanoseconds until the
 * earliest one.  Any thread.
 */
int64_t qemu_clock_deadline_ns_all(QEMUClockType type, int attr_mask);

/**
 * qemu_clock_get_main_loop_timerlist: main_loop_tlg's list for a clock
 * @type: the clock type
 *
 * Returns: the timer list.
 */
QEMUTimerList *qemu_clock_get_main_loop_timerlist(QEMUClockType type);

/**
 * qemu_clock_notify: call the notify callback of every list of a clock
 * @type: the clock type
 *
 * Wakes up every loop that may be sleeping on a timer of @type, so that it
 * recomputes its deadline.  Any thread.
 */
void qemu_clock_notify(QEMUClockType type);

/**
 * qemu_clock_enable: enable or disable a clock
 * @type: the clock type
 * @enabled: the new state
 *
 * While a clock is disabled its timers do not run and the deadlines of its
 * lists are -1; QEMU_CLOCK_VIRTUAL also stands still.  Enabling notifies
 * every list of the clock.  Disabling returns only after timer callbacks of
 * this clock running in other threads have returned; callbacks running
 * further up the calling thread's own stack are not waited for, so a
 * callback may disable its own clock.  Any thread.
 */
void qemu_clock_enable(QEMUClockType type, bool enabled);

/**
 * qemu_clock_run_timers: run the expired timers of main_loop_tlg's list
 * for a clock
 * @type: the clock type
 *
 * Context: the main loop's thread.
 * Returns: true if a callback ran.
 */
bool qemu_clock_run_timers(QEMUClockType type);

/**
 * qemu_clock_run_all_timers: qemu_clock_run_timers for every clock
 *
 * Returns: true if a callback ran.
 */
bool qemu_clock_run_all_timers(void);

/**
 * qemu_clock_advance_virtual_time: move a stopped QEMU_CLOCK_VIRTUAL
 * forward, running the timers it passes
 * @target_ns: the value to move the clock to
 *
 * Steps the clock from deadline to deadline, in deadline order, through
 * every timer of QEMU_CLOCK_VIRTUAL due by @target_ns on every list, so each
 * callback sees qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) equal to its deadline
 * (or to the current value, for a timer armed in the past); timers armed by
 * those callbacks within the window fire too.  Ends with the clock at
 * @target_ns and notifies every list of the clock.  A @target_ns in the past
 * does not move the clock back.  If the clock is enabled it is held for the
 * duration and then runs on from @target_ns.
 *
 * Context: the callbacks run in the calling thread; only one call runs at a
 * time.  Must not be called from a timer callback.
 * Returns: the clock's new value.
 */
int64_t qemu_clock_advance_virtual_time(int64_t target_ns);

/*
 * QEMUTimerList
 */

/**
 * timerlist_new: create a timer list
 * @type: the clock type
 * @cb: the notify callback, called when a timer becomes the list's
 * earliest (NULL means qemu_notify_event)
 * @opaque: the notify callback's opaque pointer
 *
 * Returns: the new list.  Any thread.
 */
QEMUTimerList *timerlist_new(QEMUClockType type,
                             QEMUTimerListNotifyCB *cb, void *opaque);

/**
 * timerlist_free: destroy a timer list
 * @timer_list: the list, which must have no pending timer
 *
 * Aborts if a timer is still pending on the list.  Safe while other
 * threads walk the clock's lists (qemu_clock_notify, ...); as in QEMU, not
 * from a callback that timerlist_run_timers is running for this list.
 */
void timerlist_free(QEMUTimerList *timer_list);

/**
 * timerlist_has_timers: whether a timer list has pending timers
 * @timer_list: the list
 *
 * Returns: true if a timer is pending.  Lock-free.
 */
bool timerlist_has_timers(QEMUTimerList *timer_list);

/**
 * timerlist_expired: whether a timer list has an expired timer
 * @timer_list: the list
 *
 * Returns: true if the earliest timer's deadline is not after the clock's
 * current value (whether or not the clock is enabled).
 */
bool timerlist_expired(QEMUTimerList *timer_list);

/**
 * timerlist_deadline_ns: time until a timer list's earliest timer
 * @timer_list: the list
 *
 * Returns: -1 if no timer is pending or the clock is disabled, 0 if the
 * earliest timer has expired, otherwise the nanoseconds until it expires.
 */
int64_t timerlist_deadline_ns(QEMUTimerList *timer_list);

/**
 * timerlist_get_clock: the clock of a timer list
 * @timer_list: the list
 *
 * Returns: the list's clock type.
 */
QEMUClockType timerlist_get_clock(QEMUTimerList *timer_list);

/**
 * timerlist_run_timers: run the expired timers of a list
 * @timer_list: the list
 *
 * Reads the clock once and runs every timer whose deadline is not after
 * that value, in deadline order and, for equal deadlines, in arming order.
 * Each timer is disarmed before its callback runs, without the list's lock
 * held.  Timers armed by callbacks run in the same call when due by the
 * clock value read at the start.  Runs nothing if the clock is disabled.
 *
 * Context: the list owner's thread.
 * Returns: true if a callback ran.
 */
bool timerlist_run_timers(QEMUTimerList *timer_list);

/**
 * timerlist_notify: call a timer list's notify callback
 * @timer_list: the list
 *
 * Calls the callback given to timerlist_new with its opaque pointer and
 * the list's clock type, or qemu_notify_event() if it was NULL.
 */
void timerlist_notify(QEMUTimerList *timer_list);

/*
 * QEMUTimerListGroup
 */

/**
 * timerlistgroup_init: create one timer list per clock
 * @tlg: the group
 * @cb: the notify callback of every list
 * @opaque: the notify callback's opaque pointer
 */
void timerlistgroup_init(QEMUTimerListGroup *tlg,
                         QEMUTimerListNotifyCB *cb, void *opaque);

/**
 * timerlistgroup_deinit: free a group's timer lists
 * @tlg: the group; no timer may be pending on it
 */
void timerlistgroup_deinit(QEMUTimerListGroup *tlg);

/**
 * timerlistgroup_run_timers: run the expired timers of every list of a
 * group
 * @tlg: the group
 *
 * Returns: true if a callback ran.
 */
bool timerlistgroup_run_timers(QEMUTimerListGroup *tlg);

/**
 * timerlistgroup_deadline_ns: time until the earliest timer of a group
 * @tlg: the group
 *
 * Returns: the soonest of timerlist_deadline_ns over the group's lists
 * whose clocks qemu_clock_use_for_deadline accepts; -1 for none.
 */
int64_t timerlistgroup_deadline_ns(QEMUTimerListGroup *tlg);

/*
 * QEMUTimer
 */

/**
 * timer_init_full: initialise a timer
 * @ts: the timer
 * @timer_list_group: the group to attach it to, NULL for main_loop_tlg
 * @type: the clock type
 * @scale: the unit of timer_mod/timer_mod_anticipate, in nanoseconds
 * @attributes: QEMU_TIMER_ATTR_* bits
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 *
 * The timer starts disarmed.  It needs no destruction beyond timer_del.
 */
void timer_init_full(QEMUTimer *ts,
                     QEMUTimerListGroup *timer_list_group, QEMUClockType type,
                     int scale, int attributes,
                     QEMUTimerCB *cb, void *opaque);

/**
 * timer_init: initialise a timer on main_loop_tlg
 * @ts: the timer
 * @type: the clock type
 * @scale: the unit of timer_mod, in nanoseconds
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 */
static inline void timer_init(QEMUTimer *ts, QEMUClockType type, int scale,
                              QEMUTimerCB *cb, void *opaque)
{
    timer_init_full(ts, NULL, type, scale, 0, cb, opaque);
}

/**
 * timer_init_ns: timer_init with nanosecond scale
 * @ts: the timer
 * @type: the clock type
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 */
static inline void timer_init_ns(QEMUTimer *ts, QEMUClockType type,
                                 QEMUTimerCB *cb, void *opaque)
{
    timer_init(ts, type, SCALE_NS, cb, opaque);
}

/**
 * timer_init_us: timer_init with microsecond scale
 * @ts: the timer
 * @type: the clock type
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 */
static inline void timer_init_us(QEMUTimer *ts, QEMUClockType type,
                                 QEMUTimerCB *cb, void *opaque)
{
    timer_init(ts, type, SCALE_US, cb, opaque);
}

/**
 * timer_init_ms: timer_init with millisecond scale
 * @ts: the timer
 * @type: the clock type
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 */
static inline void timer_init_ms(QEMUTimer *ts, QEMUClockType type,
                                 QEMUTimerCB *cb, void *opaque)
{
    timer_init(ts, type, SCALE_MS, cb, opaque);
}

/**
 * timer_new_full: allocate and initialise a timer
 * @timer_list_group: the group to attach it to, NULL for main_loop_tlg
 * @type: the clock type
 * @scale: the unit of timer_mod, in nanoseconds
 * @attributes: QEMU_TIMER_ATTR_* bits
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 *
 * Returns: the timer, to be released with timer_free.
 */
static inline QEMUTimer *timer_new_full(QEMUTimerListGroup *timer_list_group,
                                        QEMUClockType type,
                                        int scale, int attributes,
                                        QEMUTimerCB *cb, void *opaque)
{
    QEMUTimer *ts = g_new0(QEMUTimer, 1);

    timer_init_full(ts, timer_list_group, type, scale, attributes, cb, opaque);
    return ts;
}

/**
 * timer_new: allocate a timer on main_loop_tlg
 * @type: the clock type
 * @scale: the unit of timer_mod, in nanoseconds
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 *
 * Returns: the timer, to be released with timer_free.
 */
static inline QEMUTimer *timer_new(QEMUClockType type, int scale,
                                   QEMUTimerCB *cb, void *opaque)
{
    return timer_new_full(NULL, type, scale, 0, cb, opaque);
}

/**
 * timer_new_ns: timer_new with nanosecond scale
 * @type: the clock type
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 *
 * Returns: the timer.
 */
static inline QEMUTimer *timer_new_ns(QEMUClockType type, QEMUTimerCB *cb,
                                      void *opaque)
{
    return timer_new(type, SCALE_NS, cb, opaque);
}

/**
 * timer_new_us: timer_new with microsecond scale
 * @type: the clock type
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 *
 * Returns: the timer.
 */
static inline QEMUTimer *timer_new_us(QEMUClockType type, QEMUTimerCB *cb,
                                      void *opaque)
{
    return timer_new(type, SCALE_US, cb, opaque);
}

/**
 * timer_new_ms: timer_new with millisecond scale
 * @type: the clock type
 * @cb: the callback
 * @opaque: the callback's opaque pointer
 *
 * Returns: the timer.
 */
static inline QEMUTimer *timer_new_ms(QEMUClockType type, QEMUTimerCB *cb,
                                      void *opaque)
{
    return timer_new(type, SCALE_MS, cb, opaque);
}

/**
 * timer_deinit: detach a disarmed timer from its list
 * @ts: the timer, which must not be pending
 */
void timer_deinit(QEMUTimer *ts);

/**
 * timer_del: disarm a timer
 * @ts: the timer
 *
 * No-op if the timer is not pending.  Does not wait for a callback that is
 * already running.  Any thread.
 */
void timer_del(QEMUTimer *ts);

/**
 * timer_free: disarm and free a timer made by timer_new*
 * @ts: the timer, or NULL
 */
static inline void timer_free(QEMUTimer *ts)
{
    if (ts) {
        timer_del(ts);
        g_free(ts);
    }
}

/**
 * timer_mod_ns: arm or re-arm a timer
 * @ts: the timer
 * @expire_time: the deadline in nanoseconds on the timer's clock; negative
 * values mean 0
 *
 * A re-armed timer goes behind the timers already armed with the same
 * deadline.  If it becomes the earliest timer of its list, the list's notify
 * callback runs (after the list's lock is dropped).  Any thread.
 */
void timer_mod_ns(QEMUTimer *ts, int64_t expire_time);

/**
 * timer_mod_anticipate_ns: arm a timer, or move its deadline earlier
 * @ts: the timer
 * @expire_time: the deadline in nanoseconds
 *
 * Like timer_mod_ns, but a pending timer whose deadline is already at or
 * before @expire_time is left alone.
 */
void timer_mod_anticipate_ns(QEMUTimer *ts, int64_t expire_time);

/**
 * timer_mod: arm or re-arm a timer, in units of its scale
 * @ts: the timer
 * @expire_timer: the deadline in units of @ts->scale
 */
void timer_mod(QEMUTimer *ts, int64_t expire_timer);

/**
 * timer_mod_anticipate: timer_mod_anticipate_ns in units of the timer's
 * scale
 * @ts: the timer
 * @expire_time: the deadline in units of @ts->scale
 */
void timer_mod_anticipate(QEMUTimer *ts, int64_t expire_time);

/**
 * timer_pending: whether a timer is armed
 * @ts: the timer
 *
 * Returns: true if the timer is armed and its callback has not started.
 */
bool timer_pending(QEMUTimer *ts);

/**
 * timer_expired: whether a timer is armed with a deadline not after a time
 * @timer_head: the timer
 * @current_time: the time, in units of the timer's scale
 *
 * Returns: true if the timer is pending and due by @current_time.
 */
bool timer_expired(QEMUTimer *timer_head, int64_t current_time);

/**
 * timer_expire_time_ns: a timer's deadline
 * @ts: the timer
 *
 * Returns: the deadline in nanoseconds, or (uint64_t)-1 if not pending.
 */
uint64_t timer_expire_time_ns(QEMUTimer *ts);

/*
 * General utility functions
 */

/**
 * qemu_timeout_ns_to_ms: convert a poll timeout to milliseconds
 * @ns: the timeout in nanoseconds, -1 for infinite
 *
 * Returns: -1 for -1, 0 for 0, otherwise @ns rounded up to whole
 * milliseconds and capped at INT32_MAX.
 */
int qemu_timeout_ns_to_ms(int64_t ns);

/**
 * qemu_poll_ns: poll() with a nanosecond timeout
 * @fds: the descriptors
 * @nfds: how many
 * @timeout: the timeout in nanoseconds, -1 for infinite
 *
 * Returns: as poll(): the number of ready descriptors, 0 on timeout, -1
 * with errno set on error.
 */
int qemu_poll_ns(GPollFD *fds, guint nfds, int64_t timeout);

/**
 * qemu_soonest_timeout: the sooner of two timeouts
 * @timeout1: a timeout in nanoseconds, -1 for infinite
 * @timeout2: a timeout in nanoseconds, -1 for infinite
 *
 * Returns: the smaller of the two, where -1 (compared as the largest
 * unsigned value) loses to any other.
 */
static inline int64_t qemu_soonest_timeout(int64_t timeout1, int64_t timeout2)
{
    return ((uint64_t)timeout1 < (uint64_t)timeout2) ? timeout1 : timeout2;
}

/**
 * init_clocks: set up main_loop_tlg
 * @notify_cb: the notify callback of main_loop_tlg's lists (NULL means
 * qemu_notify_event)
 *
 * The lists exist from program start; this sets their notify callback and
 * may be called again to change it.  On Linux it also sets the calling
 * thread's timer slack to 1 ns (PR_SET_TIMERSLACK), as QEMU does, so that
 * its poll timeouts, and those of threads it creates later, end on time
 * instead of up to 50 us late.
 */
void init_clocks(QEMUTimerListNotifyCB *notify_cb);

/*
 * Host clocks
 */

static inline int64_t get_max_clock_jump(void)
{
    /*
     * How far the host clock may jump before QEMU treats it as a reset:
     * small enough that an emulated RTC does not fire a storm of catch-up
     * interrupts, large enough that idle guests are not reset needlessly.
     */
    return 60 * NANOSECONDS_PER_SECOND;
}

/* CLOCK_REALTIME (the wall clock) in nanoseconds. */
static inline int64_t get_clock_realtime(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
}

/* Nonzero when CLOCK_MONOTONIC works (always on Linux). */
extern int use_rt_clock;
/* get_clock() when the library was loaded. */
extern int64_t clock_start;

/* CLOCK_MONOTONIC in nanoseconds (the wall clock if it is unavailable). */
static inline int64_t get_clock(void)
{
    if (use_rt_clock) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
    }
    return get_clock_realtime();
}

/* The CPU's cycle counter, or a nanosecond clock where there is none. */
static inline int64_t cpu_get_host_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;

    asm volatile("rdtsc" : "=a" (lo), "=d" (hi));
    return (int64_t)(((uint64_t)hi << 32) | lo);
#elif defined(__aarch64__)
    int64_t val;

    asm volatile("mrs %0, cntvct_el0" : "=r" (val));
    return val;
#else
    return get_clock();
#endif
}

#endif /* QEMU_TIMER_H */
