/*
 * timer.c: timer lists and timers (QEMUTimerList, QEMUTimerListGroup,
 * QEMUTimer).
 *
 * Each list keeps its pending timers in a TimerQueue (timer-queue.c),
 * ordered by (deadline, arming sequence number), so timers with equal
 * deadlines fire in arming order and arming, re-arming and cancelling cost
 * at most O(log n), amortised.
 *
 * Threading: timer_mod*, timer_del and the timerlist_* queries may be
 * called from any thread.  active_timers_lock (a TimerLock, timer-int.h;
 * the list's first user takes it without atomic read-modify-writes until
 * another thread needs it) protects the queue; a timer's expire_time and
 * the list's earliest are written under it and read atomically without it.
 * timerlist_run_timers belongs to the list owner's thread (one runner at a
 * time); it drops the lock around each callback, having first taken the
 * timer out of the queue, so callbacks may arm or delete any timer.
 */
#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "timer-int.h"

/*
 * The calling thread's nest of qaio_int_timerlist_run frames, so that
 * qemu_clock_enable can tell which running callbacks are its own callers.
 */
typedef struct TimerRunFrame {
    QEMUTimerList *tl;
    struct TimerRunFrame *up;
} TimerRunFrame;

static __thread TimerRunFrame *run_frames;

/*
 * Called under the lock after the queue changed in a way that may have
 * changed its earliest deadline.  Readers poll the word on every loop
 * iteration, so it is written only when the value changes.
 */
static inline void set_earliest(QEMUTimerList *tl, int64_t expire_time)
{
    if (tl->earliest != expire_time) {
        qatomic_set(&tl->earliest, expire_time);
    }
}

static inline void publish_earliest(QEMUTimerList *tl)
{
    set_earliest(tl, qaio_int_timer_queue_first_time(&tl->queue));
}

/* Timer lists */

QEMUTimerList *qaio_int_timerlist_create(QEMUClockType type,
                                         QEMUTimerListNotifyCB *cb,
                                         void *opaque)
{
    QEMUTimerList *tl = g_new0(QEMUTimerList, 1);

    tl->type = type;
    tl->earliest = -1;
    tl->notify_cb = cb;
    tl->notify_opaque = opaque;
    qemu_event_init(&tl->done_ev, true);
    qaio_int_clock_attach(tl);
    return tl;
}

QEMUTimerList *timerlist_new(QEMUClockType type,
                             QEMUTimerListNotifyCB *cb, void *opaque)
{
    if ((unsigned)type >= QEMU_CLOCK_MAX) {
        error_report("timerlist_new: clock type %d does not exist", type);
        abort();
    }
    qaio_int_clocks_init();
    return qaio_int_timerlist_create(type, cb, opaque);
}

void qaio_int_timerlist_destroy(QEMUTimerList *tl)
{
    qemu_event_destroy(&tl->done_ev);
    qaio_int_timer_queue_destroy(&tl->queue);
    g_free(tl);
}

void timerlist_free(QEMUTimerList *timer_list)
{
    if (timerlist_has_timers(timer_list)) {
        error_report("timerlist_free: a timer list of clock %d still has "
                     "%zu pending timers; delete them first",
                     timer_list->type,
                     qaio_int_timer_queue_count(&timer_list->queue));
        abort();
    }
    qaio_int_clock_detach(timer_list);
}

bool timerlist_has_timers(QEMUTimerList *timer_list)
{
    return qatomic_read(&timer_list->earliest) >= 0;
}

bool timerlist_expired(QEMUTimerList *timer_list)
{
    int64_t earliest = qatomic_read(&timer_list->earliest);

    return earliest >= 0 && earliest <= qemu_clock_get_ns(timer_list->type);
}

int64_t timerlist_deadline_ns(QEMUTimerList *timer_list)
{
    int64_t earliest = qatomic_read(&timer_list->earliest);
    int64_t delta;

    if (earliest < 0 || !qaio_int_clock_enabled(timer_list->type)) {
        return -1;
    }
    delta = earliest - qemu_clock_get_ns(timer_list->type);
    return delta > 0 ? delta : 0;
}

QEMUClockType timerlist_get_clock(QEMUTimerList *timer_list)
{
    return timer_list->type;
}

int64_t qaio_int_timerlist_earliest(QEMUTimerList *tl, int attr_mask)
{
    int64_t earliest;
    bool biased;

    if (qatomic_read(&tl->earliest) < 0) {
        return -1;
    }
    biased = timer_lock(&tl->active_timers_lock);
    earliest = qaio_int_timer_queue_earliest_matching(&tl->queue,
                                                      ~(unsigned)attr_mask);
    timer_unlock(&tl->active_timers_lock, biased);
    return earliest;
}

unsigned qaio_int_timerlist_runs_here(QEMUTimerList *tl)
{
    unsigned count = 0;

    for (TimerRunFrame *f = run_frames; f; f = f->up) {
        count += f->tl == tl;
    }
    return count;
}

bool qaio_int_timerlist_run(QEMUTimerList *tl, int64_t now, bool force)
{
    TimerRunFrame frame = { .tl = tl, .up = run_frames };
    bool progress = false;

    run_frames = &frame;

    /*
     * Announce ourselves before looking at the enabled flag.  Sequentially
     * consistent, pairing with qemu_clock_enable's store to enabled and its
     * load of running: either it sees us and waits, or we see the clock
     * disabled and run nothing.
     */
    __atomic_fetch_add(&tl->running, 1, __ATOMIC_SEQ_CST);
    if (force || qaio_int_clock_enabled(tl->type)) {
        QEMUTimer *ts;
        int64_t expire_time;
        bool biased = timer_lock(&tl->active_timers_lock);

        while ((ts = qaio_int_timer_queue_first(&tl->queue, &expire_time)) &&
               expire_time <= now) {
            QEMUTimerCB *cb = ts->cb;
            void *opaque = ts->opaque;

            qaio_int_timer_queue_remove(&tl->queue, ts);
            publish_earliest(tl);
            qatomic_set(&ts->expire_time, -1);
            __atomic_store_n(&tl->fired, tl->fired + 1, __ATOMIC_RELAXED);

            /* The timer is out of the queue: the callback may re-arm it. */
            timer_unlock(&tl->active_timers_lock, biased);
            cb(opaque);
            progress = true;
            biased = timer_lock(&tl->active_timers_lock);
        }
        timer_unlock(&tl->active_timers_lock, biased);
    }

    /*
     * Sequentially consistent, pairing with the waiter's increment of
     * waiters and its reset-then-load of running in qemu_clock_enable:
     * either it sees our decrement, or we see it waiting and wake it.
     */
    __atomic_fetch_sub(&tl->running, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&tl->waiters, __ATOMIC_SEQ_CST)) {
        qemu_event_set(&tl->done_ev);
    }

    run_frames = frame.up;
    return progress;
}

bool timerlist_run_timers(QEMUTimerList *timer_list)
{
    int64_t earliest = qatomic_read(&timer_list->earliest);
    int64_t now;

    /*
     * A stale look is harmless: a timer armed as the new earliest after it
     * notifies the list, and the owner comes back here.
     */
    if (earliest < 0 || !qaio_int_clock_enabled(timer_list->type)) {
        return false;
    }
    now = qemu_clock_get_ns(timer_list->type);
    if (earliest > now) {
        return false;
    }
    return qaio_int_timerlist_run(timer_list, now, false);
}

void timerlist_notify(QEMUTimerList *timer_list)
{
    QEMUTimerListNotifyCB *cb = qatomic_read(&timer_list->notify_cb);

    if (cb) {
        cb(timer_list->notify_opaque, timer_list->type);
    } else {
        qemu_notify_event();
    }
}

/* Timer list groups */

void timerlistgroup_init(QEMUTimerListGroup *tlg,
                         QEMUTimerListNotifyCB *cb, void *opaque)
{
    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        tlg->tl[type] = timerlist_new(type, cb, opaque);
    }
}

void timerlistgroup_deinit(QEMUTimerListGroup *tlg)
{
    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        if (tlg->tl[type]) {
            timerlist_free(tlg->tl[type]);
            tlg->tl[type] = NULL;
        }
    }
}

/*
 * aio_poll() calls the two group functions below on every iteration, so
 * lists without timers cost one atomic load of earliest each and no call.
 * All four empty (the common case) is one test of the AND of the four
 * words: each is -1 when its list is empty and non-negative otherwise, so
 * the sign bit of the AND is set exactly when every list is empty.
 */
QEMU_BUILD_BUG_ON(QEMU_CLOCK_MAX != 4);

static inline bool group_is_empty(QEMUTimerListGroup *tlg)
{
    return (qatomic_read(&tlg->tl[0]->earliest) &
            qatomic_read(&tlg->tl[1]->earliest) &
            qatomic_read(&tlg->tl[2]->earliest) &
            qatomic_read(&tlg->tl[3]->earliest)) < 0;
}

/*
 * The loops are out of line so that the empty case does not pay for their
 * register saves: it is the eight loads above, a test and a return.
 */
static QEMU_NO_INLINE bool group_run_timers(QEMUTimerListGroup *tlg)
{
    bool progress = false;

    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        QEMUTimerList *tl = tlg->tl[type];

        if (qatomic_read(&tl->earliest) >= 0) {
            progress |= timerlist_run_timers(tl);
        }
    }
    return progress;
}

bool timerlistgroup_run_timers(QEMUTimerListGroup *tlg)
{
    if (group_is_empty(tlg)) {
        return false;
    }
    return group_run_timers(tlg);
}

static QEMU_NO_INLINE int64_t group_deadline_ns(QEMUTimerListGroup *tlg)
{
    int64_t deadline = -1;

    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        QEMUTimerList *tl = tlg->tl[type];

        if (qatomic_read(&tl->earliest) >= 0 &&
            qemu_clock_use_for_deadline(type)) {
            int64_t d = timerlist_deadline_ns(tl);

            deadline = qemu_soonest_timeout(deadline, d);
        }
    }
    return deadline;
}

int64_t timerlistgroup_deadline_ns(QEMUTimerListGroup *tlg)
{
    if (group_is_empty(tlg)) {
        return -1;
    }
    return group_deadline_ns(tlg);
}

/* Timers */

void timer_init_full(QEMUTimer *ts,
                     QEMUTimerListGroup *timer_list_group, QEMUClockType type,
                     int scale, int attributes,
                     QEMUTimerCB *cb, void *opaque)
{
    if ((unsigned)type >= QEMU_CLOCK_MAX) {
        error_report("timer_init_full: clock type %d does not exist", type);
        abort();
    }
    if (!timer_list_group) {
        qaio_int_clocks_init();
        timer_list_group = &main_loop_tlg;
    }
    ts->expire_time = -1;
    ts->timer_list = timer_list_group->tl[type];
    ts->cb = cb;
    ts->opaque = opaque;
    ts->next = NULL;
    ts->attributes = attributes;
    ts->scale = scale;
    ts->heap_index = 0;
    ts->arm_seq = 0;
}

void timer_deinit(QEMUTimer *ts)
{
    if (timer_pending(ts)) {
        error_report("timer_deinit: the timer is still pending; call "
                     "timer_del first");
        abort();
    }
    ts->timer_list = NULL;
}

/*
 * Takes @ts out of its list's queue if it is there.  Only a timer whose
 * deadline equals the earliest can have been the first, so the others
 * leave the published earliest as it is without a look at the queue.
 */
static inline QEMU_ALWAYS_INLINE void timer_del_locked(QEMUTimerList *tl,
                                                       QEMUTimer *ts)
{
    int64_t old = ts->expire_time;

    if (old < 0) {
        return;
    }
    qaio_int_timer_queue_remove(&tl->queue, ts);
    qatomic_set(&ts->expire_time, -1);
    if (old == tl->earliest) {
        publish_earliest(tl);
    }
}

/*
 * Arms or re-arms @ts; returns true if it is now the earliest timer of
 * @tl, in which case the caller notifies the list once the lock is dropped.
 */
static inline QEMU_ALWAYS_INLINE bool timer_mod_ns_locked(QEMUTimerList *tl,
                                                          QEMUTimer *ts,
                                                          int64_t expire_time)
{
    int64_t old = ts->expire_time;
    bool first;

    if (old >= 0) {
        qaio_int_timer_queue_remove(&tl->queue, ts);
    }
    first = qaio_int_timer_queue_insert(&tl->queue, ts, expire_time);
    qatomic_set(&ts->expire_time, expire_time);
    if (first) {
        set_earliest(tl, expire_time);
    } else if (old >= 0 && old == tl->earliest) {
        /* It may have been the first and moved back: look again. */
        publish_earliest(tl);
    }
    return first;
}

void timer_del(QEMUTimer *ts)
{
    QEMUTimerList *tl = ts->timer_list;
    bool biased;

    /*
     * Not pending: nothing to take off.  A concurrent arm from another
     * thread is unordered with this call anyway.
     */
    if (!tl || qatomic_read(&ts->expire_time) < 0) {
        return;
    }
    biased = timer_lock(&tl->active_timers_lock);
    timer_del_locked(tl, ts);
    timer_unlock(&tl->active_timers_lock, biased);
}

/* Misuse check shared by the timer_mod* functions. */
static inline QEMUTimerList *timer_list_of(QEMUTimer *ts, const char *func)
{
    if (unlikely(!ts->timer_list)) {
        error_report("%s: the timer is not initialised (or was passed to "
                     "timer_deinit)", func);
        abort();
    }
    return ts->timer_list;
}

void timer_mod_ns(QEMUTimer *ts, int64_t expire_time)
{
    QEMUTimerList *tl = timer_list_of(ts, __func__);
    bool biased, rearm;

    expire_time = MAX(expire_time, 0);
    biased = timer_lock(&tl->active_timers_lock);
    rearm = timer_mod_ns_locked(tl, ts, expire_time);
    timer_unlock(&tl->active_timers_lock, biased);
    if (rearm) {
        timerlist_notify(tl);
    }
}

void timer_mod_anticipate_ns(QEMUTimer *ts, int64_t expire_time)
{
    QEMUTimerList *tl = timer_list_of(ts, __func__);
    bool biased, rearm = false;

    expire_time = MAX(expire_time, 0);
    biased = timer_lock(&tl->active_timers_lock);
    if (ts->expire_time < 0 || ts->expire_time > expire_time) {
        rearm = timer_mod_ns_locked(tl, ts, expire_time);
    }
    timer_unlock(&tl->active_timers_lock, biased);
    if (rearm) {
        timerlist_notify(tl);
    }
}

/*
 * @time in @ts's scale, in nanoseconds.  Saturating: "never" is often
 * written INT64_MAX in a coarse scale, and a wrapped product would be a
 * deadline in the past (or undefined behaviour).
 */
static inline int64_t timer_scaled_ns(QEMUTimer *ts, int64_t time)
{
    int64_t ns;

    if (unlikely(__builtin_mul_overflow(time, (int64_t)ts->scale, &ns))) {
        return (time < 0) == (ts->scale < 0) ? INT64_MAX : INT64_MIN;
    }
    return ns;
}

void timer_mod(QEMUTimer *ts, int64_t expire_timer)
{
    timer_mod_ns(ts, timer_scaled_ns(ts, expire_timer));
}

void timer_mod_anticipate(QEMUTimer *ts, int64_t expire_time)
{
    timer_mod_anticipate_ns(ts, timer_scaled_ns(ts, expire_time));
}

bool timer_pending(QEMUTimer *ts)
{
    return qatomic_read(&ts->expire_time) >= 0;
}

bool timer_expired(QEMUTimer *timer_head, int64_t current_time)
{
    int64_t expire_time = qatomic_read(&timer_head->expire_time);

    return expire_time >= 0 &&
           expire_time <= timer_scaled_ns(timer_head, current_time);
}

uint64_t timer_expire_time_ns(QEMUTimer *ts)
{
    int64_t expire_time = qatomic_read(&ts->expire_time);

    return expire_time >= 0 ? (uint64_t)expire_time : (uint64_t)-1;
}
