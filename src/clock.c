/*
 * clock.c: the clocks (qemu_clock_*), virtual time, main_loop_tlg and the
 * poll-timeout helpers.
 *
 * Owns the per-clock chain of timer lists, which qemu_clock_notify,
 * qemu_clock_enable, qemu_clock_deadline_ns_all and virtual-time advances
 * walk.  A walker holds the clock's lists_lock only between lists: it marks
 * the list it is working on (walkers++) and drops the lock, so it may call
 * notify callbacks and timer callbacks that themselves create or free timer
 * lists.  timerlist_free of a list that a walker is using only marks it
 * dead; the last walker to leave it unlinks and frees it.
 *
 * QEMU_CLOCK_VIRTUAL is CLOCK_MONOTONIC plus an offset while running, and a
 * stored value while stopped.  Readers take no lock: a sequence counter
 * (odd while a writer is mid-update) lets them retry instead.  Writers
 * (qemu_clock_enable and qemu_clock_advance_virtual_time) are serialised by
 * vclock.lock.
 *
 * Threading: everything here may be called from any thread, except
 * qemu_clock_run_timers/qemu_clock_run_all_timers (main loop thread) and
 * qemu_clock_advance_virtual_time (callbacks run in its caller's thread).
 */
#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qemu/error-report.h"
#include "timer-int.h"

#ifdef CONFIG_LINUX
#include <sys/prctl.h>
#endif

QEMUTimerListGroup main_loop_tlg;
int use_rt_clock = 1;
int64_t clock_start;

QEMUClock qaio_int_clocks[QEMU_CLOCK_MAX];

/* Serialises qemu_clock_enable calls with each other. */
static QemuMutex enable_lock;

/* Serialises qemu_clock_advance_virtual_time calls with each other. */
static QemuMutex advance_lock;
/* Set while this thread is inside qemu_clock_advance_virtual_time. */
static __thread bool advancing;

static struct {
    /* Even when stable, odd while a writer updates; atomic. */
    unsigned seq;
    /* Stopped: the clock's value; running: its offset from get_clock(). */
    int64_t base;
    bool stopped;

    /* Writers hold lock; the reasons to stop are written under it. */
    QemuMutex lock;
    bool disabled;      /* by qemu_clock_enable */
    bool held;          /* by qemu_clock_advance_virtual_time */
} vclock;

static gsize clocks_initialized;

void qaio_int_clocks_init(void)
{
    struct timespec ts;

    if (!g_once_init_enter(&clocks_initialized)) {
        return;
    }
    use_rt_clock = clock_gettime(CLOCK_MONOTONIC, &ts) == 0;
    clock_start = get_clock();
    qemu_mutex_init(&enable_lock);
    qemu_mutex_init(&advance_lock);
    qemu_mutex_init(&vclock.lock);
    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        QEMUClock *clock = &qaio_int_clocks[type];

        qemu_mutex_init(&clock->lists_lock);
        QLIST_INIT(&clock->timerlists);
        clock->enabled = true;
    }
    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        main_loop_tlg.tl[type] = qaio_int_timerlist_create(type, NULL, NULL);
    }
    g_once_init_leave(&clocks_initialized, 1);
}

/*
 * So that main_loop_tlg is complete before main() and code reading
 * main_loop_tlg.tl[] directly never sees NULL; every entry point also
 * calls qaio_int_clocks_init in case it runs from an earlier constructor.
 */
static void __attribute__((constructor)) clocks_constructor(void)
{
    qaio_int_clocks_init();
}

static QEMUTimerList *main_loop_list(QEMUClockType type)
{
    qaio_int_clocks_init();
    return main_loop_tlg.tl[type];
}

static QEMUClock *clock_ptr(QEMUClockType type, const char *func)
{
    if ((unsigned)type >= QEMU_CLOCK_MAX) {
        error_report("%s: clock type %d does not exist", func, type);
        abort();
    }
    qaio_int_clocks_init();
    return &qaio_int_clocks[type];
}

/* The chain of timer lists */

void qaio_int_clock_attach(QEMUTimerList *tl)
{
    QEMUClock *clock = &qaio_int_clocks[tl->type];

    qemu_mutex_lock(&clock->lists_lock);
    QLIST_INSERT_HEAD(&clock->timerlists, tl, list);
    qemu_mutex_unlock(&clock->lists_lock);
}

void qaio_int_clock_detach(QEMUTimerList *tl)
{
    QEMUClock *clock = &qaio_int_clocks[tl->type];

    qemu_mutex_lock(&clock->lists_lock);
    if (tl->walkers) {
        /* The last walker to leave it frees it (clock_foreach_list). */
        tl->dead = true;
        qemu_mutex_unlock(&clock->lists_lock);
        return;
    }
    QLIST_REMOVE(tl, list);
    qemu_mutex_unlock(&clock->lists_lock);
    qaio_int_timerlist_destroy(tl);
}

/*
 * Calls @fn on each live list of @type without lists_lock held.  Lists
 * added meanwhile may or may not be visited.
 */
static void clock_foreach_list(QEMUClockType type,
                               void (*fn)(QEMUTimerList *tl, void *opaque),
                               void *opaque)
{
    QEMUClock *clock = &qaio_int_clocks[type];
    QEMUTimerList *tl, *next;

    qemu_mutex_lock(&clock->lists_lock);
    for (tl = QLIST_FIRST(&clock->timerlists); tl; tl = next) {
        if (!tl->dead) {
            tl->walkers++;
            qemu_mutex_unlock(&clock->lists_lock);
            fn(tl, opaque);
            qemu_mutex_lock(&clock->lists_lock);
            tl->walkers--;
        }
        /* tl is still linked: a dead list stays until walkers is 0. */
        next = QLIST_NEXT(tl, list);
        if (tl->dead && !tl->walkers) {
            QLIST_REMOVE(tl, list);
            qaio_int_timerlist_destroy(tl);
        }
    }
    qemu_mutex_unlock(&clock->lists_lock);
}

/* Virtual time */

/* Called with vclock.lock held. */
static void vclock_write_begin(void)
{
    qatomic_set(&vclock.seq, vclock.seq + 1);
    /*
     * Pairs with smp_rmb in vclock_read: the odd count is seen first.  A
     * full barrier, not just smp_wmb, because the writer reads the host
     * clock next: a reader must not see the old even count after reading
     * the host clock later than we do, or it would return a value above
     * the one we are about to freeze the clock at.
     */
    smp_mb();
}

static void vclock_write_end(void)
{
    /* Pairs with the acquire load in vclock_read. */
    qatomic_store_release(&vclock.seq, vclock.seq + 1);
}

static int64_t vclock_read(void)
{
    unsigned seq;
    int64_t value;

    for (;;) {
        /* Pairs with the release in vclock_write_end. */
        seq = qatomic_load_acquire(&vclock.seq);
        if (seq & 1) {
            continue;
        }
        if (qatomic_read(&vclock.stopped)) {
            value = qatomic_read(&vclock.base);
        } else {
            value = get_clock() + qatomic_read(&vclock.base);
        }
        /* Pairs with smp_wmb in vclock_write_begin. */
        smp_rmb();
        if (qatomic_read(&vclock.seq) == seq) {
            return value;
        }
    }
}

/*
 * Called with vclock.lock held after changing disabled or held: stops or
 * restarts the clock at its current value if that changed whether it runs.
 */
static void vclock_update_locked(void)
{
    bool stop = vclock.disabled || vclock.held;
    int64_t now;

    if (stop == vclock.stopped) {
        return;
    }
    vclock_write_begin();
    now = get_clock();
    if (stop) {
        qatomic_set(&vclock.base, now + vclock.base);
    } else {
        qatomic_set(&vclock.base, vclock.base - now);
    }
    qatomic_set(&vclock.stopped, stop);
    vclock_write_end();
}

/* Sets a stopped clock's value; the caller holds it (vclock.held). */
static void vclock_set(int64_t value)
{
    qemu_mutex_lock(&vclock.lock);
    assert(vclock.stopped);
    vclock_write_begin();
    qatomic_set(&vclock.base, value);
    vclock_write_end();
    qemu_mutex_unlock(&vclock.lock);
}

static void vclock_hold(bool held)
{
    qemu_mutex_lock(&vclock.lock);
    vclock.held = held;
    vclock_update_locked();
    qemu_mutex_unlock(&vclock.lock);
}

static void list_earliest_all(QEMUTimerList *tl, void *opaque)
{
    int64_t *earliest = opaque;

    *earliest = qemu_soonest_timeout(*earliest,
                                     qaio_int_timerlist_earliest(
                                         tl, QEMU_TIMER_ATTR_ALL));
}

static void list_run_forced(QEMUTimerList *tl, void *opaque)
{
    qaio_int_timerlist_run(tl, *(int64_t *)opaque, true);
}

int64_t qemu_clock_advance_virtual_time(int64_t target_ns)
{
    int64_t now;

    clock_ptr(QEMU_CLOCK_VIRTUAL, __func__);
    if (advancing) {
        error_report("qemu_clock_advance_virtual_time: called from a timer "
                     "callback it is running");
        abort();
    }
    qemu_mutex_lock(&advance_lock);
    advancing = true;
    vclock_hold(true);
    now = vclock_read();
    for (;;) {
        int64_t earliest = -1;

        clock_foreach_list(QEMU_CLOCK_VIRTUAL, list_earliest_all, &earliest);
        if (earliest < 0 || earliest > target_ns) {
            break;
        }
        if (earliest > now) {
            vclock_set(earliest);
            now = earliest;
        }
        clock_foreach_list(QEMU_CLOCK_VIRTUAL, list_run_forced, &now);
    }
    if (target_ns > now) {
        vclock_set(target_ns);
        now = target_ns;
    }
    vclock_hold(false);
    advancing = false;
    qemu_mutex_unlock(&advance_lock);
    qemu_clock_notify(QEMU_CLOCK_VIRTUAL);
    return now;
}

/* Clocks */

int64_t qemu_clock_get_ns(QEMUClockType type)
{
    switch (type) {
    case QEMU_CLOCK_REALTIME:
    case QEMU_CLOCK_VIRTUAL_RT:
        return get_clock();
    case QEMU_CLOCK_VIRTUAL:
        return vclock_read();
    case QEMU_CLOCK_HOST:
        return get_clock_realtime();
    default:
        error_report("qemu_clock_get_ns: clock type %d does not exist", type);
        abort();
    }
}

bool qemu_clock_use_for_deadline(QEMUClockType type)
{
    /* QEMU leaves out VIRTUAL only under icount, which does not exist here. */
    return true;
}

QEMUTimerList *qemu_clock_get_main_loop_timerlist(QEMUClockType type)
{
    clock_ptr(type, __func__);
    return main_loop_list(type);
}

bool qemu_clock_has_timers(QEMUClockType type)
{
    return timerlist_has_timers(qemu_clock_get_main_loop_timerlist(type));
}

bool qemu_clock_expired(QEMUClockType type)
{
    return timerlist_expired(qemu_clock_get_main_loop_timerlist(type));
}

bool qemu_clock_run_timers(QEMUClockType type)
{
    return timerlist_run_timers(qemu_clock_get_main_loop_timerlist(type));
}

bool qemu_clock_run_all_timers(void)
{
    bool progress = false;

    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        if (qemu_clock_use_for_deadline(type)) {
            progress |= qemu_clock_run_timers(type);
        }
    }
    return progress;
}

typedef struct DeadlineWalk {
    int attr_mask;
    int64_t earliest;
} DeadlineWalk;

static void list_earliest_masked(QEMUTimerList *tl, void *opaque)
{
    DeadlineWalk *walk = opaque;

    walk->earliest = qemu_soonest_timeout(walk->earliest,
                                          qaio_int_timerlist_earliest(
                                              tl, walk->attr_mask));
}

int64_t qemu_clock_deadline_ns_all(QEMUClockType type, int attr_mask)
{
    DeadlineWalk walk = { .attr_mask = attr_mask, .earliest = -1 };
    int64_t delta;

    clock_ptr(type, __func__);
    if (!qaio_int_clock_enabled(type)) {
        return -1;
    }
    clock_foreach_list(type, list_earliest_masked, &walk);
    if (walk.earliest < 0) {
        return -1;
    }
    delta = walk.earliest - qemu_clock_get_ns(type);
    return delta > 0 ? delta : 0;
}

static void list_notify(QEMUTimerList *tl, void *opaque)
{
    timerlist_notify(tl);
}

void qemu_clock_notify(QEMUClockType type)
{
    clock_ptr(type, __func__);
    clock_foreach_list(type, list_notify, NULL);
}

/*
 * Waits until no thread but the caller's own stack frames is running @tl's
 * callbacks, or the clock is enabled again (a waiter racing a re-enable
 * must not wait for callbacks that are allowed to run).
 */
static void list_wait_idle(QEMUTimerList *tl, void *opaque)
{
    unsigned mine = qaio_int_timerlist_runs_here(tl);

    /*
     * Sequentially consistent, like the accesses in
     * qaio_int_timerlist_run: we announce ourselves before the reset and
     * look at running after it, the runner decrements running before it
     * looks at waiters.  Either we see its decrement, or it sees us and
     * sets done_ev after our reset, so the wait returns.
     */
    __atomic_fetch_add(&tl->waiters, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        qemu_event_reset(&tl->done_ev);
        if (__atomic_load_n(&tl->running, __ATOMIC_SEQ_CST) <= mine ||
            qaio_int_clock_enabled(tl->type)) {
            break;
        }
        qemu_event_wait(&tl->done_ev);
    }
    __atomic_fetch_sub(&tl->waiters, 1, __ATOMIC_SEQ_CST);
}

void qemu_clock_enable(QEMUClockType type, bool enabled)
{
    QEMUClock *clock = clock_ptr(type, __func__);
    bool old;

    qemu_mutex_lock(&enable_lock);
    old = qaio_int_clock_enabled(type);
    if (type == QEMU_CLOCK_VIRTUAL) {
        /* Stop the value before the timers, restart it before them. */
        qemu_mutex_lock(&vclock.lock);
        vclock.disabled = !enabled;
        vclock_update_locked();
        qemu_mutex_unlock(&vclock.lock);
    }
    /*
     * Sequentially consistent, pairing with the increment of running and
     * the load of enabled in qaio_int_timerlist_run.
     */
    __atomic_store_n(&clock->enabled, enabled, __ATOMIC_SEQ_CST);
    qemu_mutex_unlock(&enable_lock);

    if (enabled && !old) {
        qemu_clock_notify(type);
    } else if (!enabled && old) {
        clock_foreach_list(type, list_wait_idle, NULL);
    }
}

void init_clocks(QEMUTimerListNotifyCB *notify_cb)
{
    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        qatomic_set(&main_loop_list(type)->notify_cb, notify_cb);
    }
#ifdef CONFIG_LINUX
    /*
     * The kernel may end a ppoll up to the thread's timer slack after its
     * timeout (50 us by default) to batch wake-ups, so every timer would
     * fire that much late.  One nanosecond asks for no slack; QEMU does
     * the same here.  It applies to the calling thread and to the threads
     * it creates from now on (IOThreads among them); failure only costs
     * precision.
     */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
}

/* Poll helpers */

int qemu_timeout_ns_to_ms(int64_t ns)
{
    int64_t ms;

    if (ns < 0) {
        return -1;
    }
    if (!ns) {
        return 0;
    }
    /* Round up, so a timer is never polled for before it is due. */
    ms = ns / SCALE_MS + (ns % SCALE_MS != 0);
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* ppoll reads GPollFD arrays as struct pollfd arrays. */
QEMU_BUILD_BUG_ON(sizeof(GPollFD) != sizeof(struct pollfd));
QEMU_BUILD_BUG_ON(offsetof(GPollFD, revents) !=
                  offsetof(struct pollfd, revents));

int qemu_poll_ns(GPollFD *fds, guint nfds, int64_t timeout)
{
    struct timespec ts;

    if (timeout < 0) {
        return ppoll((struct pollfd *)fds, nfds, NULL, NULL);
    }
    ts.tv_sec = timeout / NANOSECONDS_PER_SECOND;
    ts.tv_nsec = timeout % NANOSECONDS_PER_SECOND;
    return ppoll((struct pollfd *)fds, nfds, &ts, NULL);
}
