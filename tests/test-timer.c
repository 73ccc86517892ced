/*
 * test-timer.c: timer lists, timers and clocks (qemu/timer.h).
 *
 * Time is controlled without sleeping: deadlines in the past of
 * QEMU_CLOCK_REALTIME are due on any run, a disabled QEMU_CLOCK_VIRTUAL
 * stands still, and qemu_clock_advance_virtual_time moves it exactly.
 * Tests that need an exact "now" while the clock is enabled run inside a
 * virtual-time callback, where the clock is held at the callback's deadline.
 *
 * Threading: the multithreaded cases start their own threads; each test
 * leaves every clock enabled and no timer pending.
 */
#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qemu/thread.h"
#include "qemu/atomic.h"
#include "../src/timer-int.h"

#ifdef CONFIG_LINUX
#include <sys/prctl.h>
#endif

/* A cap for loops that wait for another thread; never reached when sane. */
#define SPIN_CAP 20000000ULL

typedef struct NotifyCount {
    int count;
    QEMUClockType type;
    GThread *thread;
} NotifyCount;

static void count_notify(void *opaque, QEMUClockType type)
{
    NotifyCount *n = opaque;

    n->type = type;
    n->thread = g_thread_self();
    qatomic_inc(&n->count);
}

static void ignore_notify(void *opaque, QEMUClockType type)
{
}

/* A timer that appends its id to a shared log when it fires. */
typedef struct LogTimer {
    QEMUTimer timer;
    int id;
    GArray *log;
    int64_t seen_clock;         /* its clock's value when it fired */
    void (*extra)(struct LogTimer *self);
    void *extra_opaque;
} LogTimer;

static void log_cb(void *opaque)
{
    LogTimer *t = opaque;

    g_assert_false(timer_pending(&t->timer));
    t->seen_clock = qemu_clock_get_ns(timerlist_get_clock(
                                          t->timer.timer_list));
    g_array_append_val(t->log, t->id);
    if (t->extra) {
        t->extra(t);
    }
}

static void log_timer_init(LogTimer *t, QEMUTimerListGroup *tlg,
                           QEMUClockType type, int id, GArray *log)
{
    memset(t, 0, sizeof(*t));
    t->id = id;
    t->log = log;
    timer_init_full(&t->timer, tlg, type, SCALE_NS, 0, log_cb, t);
}

static void assert_log(GArray *log, const int *expected, size_t n)
{
    g_assert_cmpuint(log->len, ==, n);
    for (size_t i = 0; i < n; i++) {
        g_assert_cmpint(g_array_index(log, int, i), ==, expected[i]);
    }
}

/*
 * Calls @fn with QEMU_CLOCK_VIRTUAL enabled but held still at the value
 * passed to @fn, from inside a qemu_clock_advance_virtual_time callback.
 */
typedef struct Frozen {
    void (*fn)(int64_t now, void *opaque);
    void *opaque;
    bool ran;
} Frozen;

static void frozen_cb(void *opaque)
{
    Frozen *f = opaque;

    f->fn(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), f->opaque);
    f->ran = true;
}

static void with_frozen_virtual_clock(void (*fn)(int64_t, void *),
                                      void *opaque)
{
    QEMUTimerListGroup tlg;
    QEMUTimer t;
    Frozen f = { .fn = fn, .opaque = opaque };
    int64_t now;

    timerlistgroup_init(&tlg, ignore_notify, NULL);
    timer_init_full(&t, &tlg, QEMU_CLOCK_VIRTUAL, SCALE_NS, 0, frozen_cb, &f);
    now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    timer_mod_ns(&t, now);
    qemu_clock_advance_virtual_time(now);
    g_assert_true(f.ran);
    timerlistgroup_deinit(&tlg);
}

/* Asserts every invariant of @q that timer-int.h describes. */
static void queue_check(TimerQueue *q)
{
    size_t dead = 0, live = 0;

    g_assert_cmpuint(q->n, <=, q->cap);
    g_assert_cmpuint(q->dead, <=, q->n);
    g_assert_true(!q->n || !timer_entry_dead(&q->heap[0]));
    for (size_t i = 0; i < q->n; i++) {
        const TimerEntry *e = &q->heap[i];

        g_assert_cmpint(e->expire_time, >=, 0);
        if (i) {
            size_t parent = (i - 1) / TIMER_HEAP_ARITY;

            g_assert_false(timer_entry_before(e, &q->heap[parent]));
        }
        g_assert_cmpuint(timer_entry_seq(e), <, q->next_seq);
        if (timer_entry_dead(e)) {
            dead++;
        } else {
            g_assert_cmpuint(e->ts->heap_index, ==, i);
            g_assert_cmpint(e->ts->expire_time, ==, e->expire_time);
        }
    }
    g_assert_cmpuint(dead, ==, q->dead);

    g_assert_cmpuint(q->run_tail - q->run_head, <=, q->run_cap);
    g_assert_true(q->run_head == q->run_tail ||
                  (timer_run_entry(q, q->run_head)->ts &&
                   timer_run_entry(q, q->run_tail - 1)->ts));
    for (uint64_t pos = q->run_head; pos != q->run_tail; pos++) {
        const TimerEntry *e = timer_run_entry(q, pos);

        if (!e->ts) {
            continue;
        }
        g_assert_cmpuint(e->ts->heap_index, ==, TIMER_IN_RUN | pos);
        g_assert_cmpint(e->ts->expire_time, ==, e->expire_time);
        /* Sorted: after the live entry before it. */
        for (uint64_t prev = pos; prev != q->run_head; prev--) {
            const TimerEntry *p = timer_run_entry(q, prev - 1);

            if (p->ts) {
                g_assert_true(timer_entry_before(p, e));
                break;
            }
        }
        live++;
    }
    g_assert_cmpuint(live, ==, q->run_live);
}

/* Clocks */

static void test_clock_virtual_stops_when_disabled(void)
{
    int64_t v1, v2, rt_before, v3, rt_after;

    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    v1 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    v2 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    g_assert_cmpint(v1, ==, v2);
    /* Disabling twice is harmless and does not move it. */
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), ==, v1);

    rt_before = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    v3 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    rt_after = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    /* Resumed from v1: it moved no more than real time since enabling. */
    g_assert_cmpint(v3, >=, v1);
    g_assert_cmpint(v3 - v1, <=, rt_after - rt_before);
}

static void test_clock_virtual_rt_ignores_virtual(void)
{
    int64_t a, b;

    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    a = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL_RT);
    b = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    /* Both read CLOCK_MONOTONIC, in that order. */
    g_assert_cmpint(a, <=, b);
    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL_RT), >=, b);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
}

static void test_clock_host_is_wall_clock(void)
{
    time_t t0 = time(NULL);
    int64_t host = qemu_clock_get_ns(QEMU_CLOCK_HOST);
    time_t t1 = time(NULL);

    g_assert_cmpint(host / NANOSECONDS_PER_SECOND, >=, t0);
    g_assert_cmpint(host / NANOSECONDS_PER_SECOND, <=, t1 + 1);
    g_assert_cmpint(qemu_clock_get_ms(QEMU_CLOCK_HOST), >=,
                    host / SCALE_MS);
    g_assert_cmpint(qemu_clock_get_us(QEMU_CLOCK_HOST), >=,
                    host / SCALE_US);
}

typedef struct AdvanceCtx {
    QEMUTimerListGroup tlg;
    GArray *log;
    LogTimer t[6];
    int64_t base;
} AdvanceCtx;

static void advance_arm_more(LogTimer *self)
{
    AdvanceCtx *a = self->extra_opaque;

    /* Inside the window: must fire in this advance, at its deadline. */
    timer_mod_ns(&a->t[4].timer, a->base + 25);
    /* Past the window: must stay pending. */
    timer_mod_ns(&a->t[5].timer, a->base + 100);
}

static void test_clock_advance_virtual_time_steps(void)
{
    AdvanceCtx a;
    static const int expected[] = { 0, 3, 2, 4, 1 };
    static const int64_t deadline[] = { 10, 30, 20, 10, 25 };

    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    a.base = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    a.log = g_array_new(false, false, sizeof(int));
    timerlistgroup_init(&a.tlg, ignore_notify, NULL);
    for (int i = 0; i < 6; i++) {
        log_timer_init(&a.t[i], &a.tlg, QEMU_CLOCK_VIRTUAL, i, a.log);
    }
    a.t[2].extra = advance_arm_more;
    a.t[2].extra_opaque = &a;
    for (int i = 0; i < 4; i++) {
        timer_mod_ns(&a.t[i].timer, a.base + deadline[i]);
    }

    /* Disabled: nothing runs and there is no deadline. */
    g_assert_false(timerlist_run_timers(a.tlg.tl[QEMU_CLOCK_VIRTUAL]));
    g_assert_cmpint(timerlist_deadline_ns(a.tlg.tl[QEMU_CLOCK_VIRTUAL]),
                    ==, -1);
    g_assert_cmpint(qemu_clock_deadline_ns_all(QEMU_CLOCK_VIRTUAL,
                                               QEMU_TIMER_ATTR_ALL), ==, -1);

    g_assert_cmpint(qemu_clock_advance_virtual_time(a.base + 50), ==,
                    a.base + 50);
    assert_log(a.log, expected, G_N_ELEMENTS(expected));
    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
        int id = expected[i];

        g_assert_cmpint(a.t[id].seen_clock, ==, a.base + deadline[id]);
    }
    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), ==, a.base + 50);
    g_assert_true(timer_pending(&a.t[5].timer));
    g_assert_cmpuint(timer_expire_time_ns(&a.t[5].timer), ==, a.base + 100);

    /* A target in the past does not move the clock back. */
    g_assert_cmpint(qemu_clock_advance_virtual_time(a.base + 40), ==,
                    a.base + 50);
    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), ==, a.base + 50);
    g_assert_cmpuint(a.log->len, ==, 5);

    /* Exactly at a deadline: the timer fires, the clock ends there. */
    g_assert_cmpint(qemu_clock_advance_virtual_time(a.base + 100), ==,
                    a.base + 100);
    g_assert_cmpuint(a.log->len, ==, 6);
    g_assert_cmpint(a.t[5].seen_clock, ==, a.base + 100);

    /* Expired-ness is still answered while disabled. */
    timer_mod_ns(&a.t[0].timer, a.base + 100);
    g_assert_true(timerlist_expired(a.tlg.tl[QEMU_CLOCK_VIRTUAL]));
    g_assert_true(timer_expired(&a.t[0].timer, a.base + 100));
    timer_mod_ns(&a.t[0].timer, a.base + 101);
    g_assert_false(timerlist_expired(a.tlg.tl[QEMU_CLOCK_VIRTUAL]));
    g_assert_false(timer_expired(&a.t[0].timer, a.base + 100));
    timer_del(&a.t[0].timer);

    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), >=, a.base + 100);
    timerlistgroup_deinit(&a.tlg);
    g_array_free(a.log, true);
}

typedef struct VirtualReader {
    int stop;
    unsigned long reads;            /* atomic */
} VirtualReader;

static gpointer virtual_reader_thread(gpointer opaque)
{
    VirtualReader *r = opaque;
    int64_t last = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    while (!qatomic_read(&r->stop)) {
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

        g_assert_cmpint(now, >=, last);
        last = now;
        qatomic_set(&r->reads, r->reads + 1);
    }
    return NULL;
}

/*
 * Stopping, advancing and restarting the clock while another thread reads
 * it never shows that thread a smaller value than it saw before.
 */
static void test_clock_virtual_monotonic_across_threads(void)
{
    VirtualReader r = { 0 };
    GThread *reader = g_thread_new("vreader", virtual_reader_thread, &r);

    /* At least 20000 rounds, and on until the reader has overlapped. */
    for (int i = 0; i < 20000 ||
         (qatomic_read(&r.reads) < 20000 && i < 20000000); i++) {
        qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
        if (i % 3 == 0) {
            qemu_clock_advance_virtual_time(
                qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + 1000);
        }
        qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
        if (i % 5 == 0) {
            /* Advancing a running clock holds it, then lets it go. */
            qemu_clock_advance_virtual_time(
                qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + 500);
        }
    }
    qatomic_set(&r.stop, 1);
    g_thread_join(reader);
    g_assert_cmpuint(r.reads, >=, 20000);
}

typedef struct FreeOwnList {
    QEMUTimerListGroup tlg;
    int notified;
} FreeOwnList;

static void free_own_list_notify(void *opaque, QEMUClockType type)
{
    FreeOwnList *f = opaque;

    /* qemu_clock_notify is walking this list: freeing it is deferred. */
    f->notified++;
    timerlist_free(f->tlg.tl[type]);
    f->tlg.tl[type] = NULL;
}

static void test_clock_list_freed_while_walked(void)
{
    FreeOwnList *f = g_new0(FreeOwnList, 1);
    QEMUTimerListGroup other;
    NotifyCount n = { 0 };

    timerlistgroup_init(&f->tlg, free_own_list_notify, f);
    timerlistgroup_init(&other, count_notify, &n);
    init_clocks(ignore_notify);
    qemu_clock_notify(QEMU_CLOCK_VIRTUAL_RT);
    g_assert_cmpint(f->notified, ==, 1);
    g_assert_cmpint(n.count, ==, 1);
    g_assert_null(f->tlg.tl[QEMU_CLOCK_VIRTUAL_RT]);
    /* The freed list is gone from the clock's chain. */
    qemu_clock_notify(QEMU_CLOCK_VIRTUAL_RT);
    g_assert_cmpint(f->notified, ==, 1);
    g_assert_cmpint(n.count, ==, 2);
    timerlistgroup_deinit(&f->tlg);
    timerlistgroup_deinit(&other);
    g_free(f);
}

/* Timer lists: ordering */

static void test_list_order_by_deadline(void)
{
    QEMUTimerListGroup tlg;
    GArray *log = g_array_new(false, false, sizeof(int));
    LogTimer t[8];
    static const int64_t deadline[] = { 50, 10, 70, 0, 30, 20, 60, 40 };
    static const int expected[] = { 3, 1, 5, 4, 7, 0, 6, 2 };

    timerlistgroup_init(&tlg, ignore_notify, NULL);
    for (int i = 0; i < 8; i++) {
        log_timer_init(&t[i], &tlg, QEMU_CLOCK_REALTIME, i, log);
        timer_mod_ns(&t[i].timer, deadline[i]);
    }
    g_assert_true(timerlistgroup_run_timers(&tlg));
    assert_log(log, expected, 8);
    g_assert_false(timerlistgroup_run_timers(&tlg));
    g_assert_false(timerlist_has_timers(tlg.tl[QEMU_CLOCK_REALTIME]));
    timerlistgroup_deinit(&tlg);
    g_array_free(log, true);
}

#define EQUAL_TIMERS 1000

static void test_list_equal_deadlines_fire_in_arming_order(void)
{
    QEMUTimerListGroup tlg;
    GArray *log = g_array_new(false, false, sizeof(int));
    LogTimer *t = g_new(LogTimer, EQUAL_TIMERS);
    int *perm = g_new(int, EQUAL_TIMERS);
    GRand *rand = g_rand_new_with_seed(7);

    timerlistgroup_init(&tlg, ignore_notify, NULL);
    for (int i = 0; i < EQUAL_TIMERS; i++) {
        log_timer_init(&t[i], &tlg, QEMU_CLOCK_REALTIME, i, log);
        perm[i] = i;
    }
    for (int i = EQUAL_TIMERS - 1; i > 0; i--) {
        int j = g_rand_int_range(rand, 0, i + 1);
        int tmp = perm[i];

        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int i = 0; i < EQUAL_TIMERS; i++) {
        timer_mod_ns(&t[perm[i]].timer, 1000);
    }
    /* Re-arming with the same deadline moves a timer to the back. */
    timer_mod_ns(&t[perm[0]].timer, 1000);
    g_assert_true(timerlistgroup_run_timers(&tlg));
    g_assert_cmpuint(log->len, ==, EQUAL_TIMERS);
    for (int i = 1; i < EQUAL_TIMERS; i++) {
        g_assert_cmpint(g_array_index(log, int, i - 1), ==, perm[i]);
    }
    g_assert_cmpint(g_array_index(log, int, EQUAL_TIMERS - 1), ==, perm[0]);

    timerlistgroup_deinit(&tlg);
    g_rand_free(rand);
    g_free(perm);
    g_free(t);
    g_array_free(log, true);
}

/* Timer lists: callbacks that change timers */

typedef struct Chaos {
    QEMUTimerListGroup tlg;
    GArray *log;
    LogTimer t[6];
    int rearms;
} Chaos;

static void chaos_first(LogTimer *self)
{
    Chaos *c = self->extra_opaque;

    if (c->rearms++) {
        return;
    }
    /* A later timer deleted by an earlier callback must not fire. */
    timer_del(&c->t[1].timer);
    /* Re-arm itself, after t[2]. */
    timer_mod_ns(&self->timer, 25);
    /* Move t[3] earlier than t[2]: still due in this run. */
    timer_mod_ns(&c->t[3].timer, 15);
    /* Move t[4] into the future: not due in this run. */
    timer_mod_ns(&c->t[4].timer, INT64_MAX);
}

static void chaos_self_delete(LogTimer *self)
{
    timer_del(&self->timer);
    g_assert_false(timer_pending(&self->timer));
}

static void test_list_callbacks_change_timers(void)
{
    Chaos c = { .rearms = 0 };
    static const int64_t deadline[] = { 10, 20, 20, 30, 40, 50 };
    static const int expected[] = { 0, 3, 2, 0, 5 };

    c.log = g_array_new(false, false, sizeof(int));
    timerlistgroup_init(&c.tlg, ignore_notify, NULL);
    for (int i = 0; i < 6; i++) {
        log_timer_init(&c.t[i], &c.tlg, QEMU_CLOCK_REALTIME, i, c.log);
        timer_mod_ns(&c.t[i].timer, deadline[i]);
    }
    c.t[0].extra = chaos_first;
    c.t[0].extra_opaque = &c;
    c.t[5].extra = chaos_self_delete;

    g_assert_true(timerlist_run_timers(c.tlg.tl[QEMU_CLOCK_REALTIME]));
    assert_log(c.log, expected, G_N_ELEMENTS(expected));
    g_assert_false(timer_pending(&c.t[1].timer));
    g_assert_true(timer_pending(&c.t[4].timer));
    g_assert_cmpuint(timer_expire_time_ns(&c.t[4].timer), ==, INT64_MAX);
    timer_del(&c.t[4].timer);
    timerlistgroup_deinit(&c.tlg);
    g_array_free(c.log, true);
}

/* Timer lists: a million timers */

#define MANY_TIMERS 1000000

typedef struct Many {
    QEMUTimer *timers;
    int64_t *deadline;
    uint64_t *arm_seq;
    uint8_t *fired;
    uint32_t *order;
    size_t nfired;
} Many;

static Many many;

static void many_cb(void *opaque)
{
    uint32_t i = (uint32_t)(uintptr_t)opaque;

    many.fired[i]++;
    many.order[many.nfired++] = i;
}

static void many_arm(uint32_t i, int64_t deadline, uint64_t *seq)
{
    timer_mod_ns(&many.timers[i], deadline);
    many.deadline[i] = deadline;
    many.arm_seq[i] = (*seq)++;
}

/*
 * Deadlines below 2^19 ns after the monotonic clock's origin are long past,
 * so one run fires every pending timer.
 */
#define MANY_RANGE (1 << 19)

/* Random deadlines: nearly everything goes to the heap; many ties. */
static int64_t many_random_deadline(GRand *rand, uint32_t i)
{
    return g_rand_int_range(rand, 0, MANY_RANGE);
}

/*
 * Mostly ascending deadlines, four timers per value, one in eight a bit
 * earlier: most go to the sorted run, the rest to the heap, with ties
 * across the two.
 */
static int64_t many_ascending_deadline(GRand *rand, uint32_t i)
{
    int64_t d = i / 4;

    if (g_rand_int_range(rand, 0, 8) == 0) {
        d -= g_rand_int_range(rand, 0, 1000);
    }
    return MAX(d, 0);
}

static void many_timers_check(uint32_t count,
                              int64_t (*deadline)(GRand *, uint32_t),
                              bool cancel_most_of_second_half)
{
    QEMUTimerListGroup tlg;
    QEMUTimerList *tl;
    GRand *rand = g_rand_new_with_seed(12345);
    bool *pending = g_new0(bool, count);
    uint64_t seq = 0;
    size_t expected = 0;

    many.timers = g_new0(QEMUTimer, count);
    many.deadline = g_new(int64_t, count);
    many.arm_seq = g_new(uint64_t, count);
    many.fired = g_new0(uint8_t, count);
    many.order = g_new(uint32_t, count);
    many.nfired = 0;

    timerlistgroup_init(&tlg, ignore_notify, NULL);
    tl = tlg.tl[QEMU_CLOCK_REALTIME];
    for (uint32_t i = 0; i < count; i++) {
        timer_init_full(&many.timers[i], &tlg, QEMU_CLOCK_REALTIME, SCALE_NS,
                        0, many_cb, (void *)(uintptr_t)i);
        many_arm(i, deadline(rand, i), &seq);
        pending[i] = true;
    }
    g_assert_true(timerlist_has_timers(tl));
    queue_check(&tl->queue);
    for (uint32_t i = 0; i < count; i++) {
        if (i % 3 == 0 ||
            (cancel_most_of_second_half && i >= count / 2 && i % 5)) {
            timer_del(&many.timers[i]);
            pending[i] = false;
            g_assert_false(timer_pending(&many.timers[i]));
            g_assert_cmpuint(timer_expire_time_ns(&many.timers[i]), ==,
                             UINT64_MAX);
        }
    }
    queue_check(&tl->queue);
    for (uint32_t i = 0; i < count; i += 7) {
        many_arm(i, deadline(rand, i), &seq);
        pending[i] = true;
    }
    for (uint32_t i = 0; i < count; i += 11) {
        int64_t d = deadline(rand, count - 1 - i);

        if (!pending[i] || d < many.deadline[i]) {
            timer_mod_anticipate_ns(&many.timers[i], d);
            many.deadline[i] = d;
            many.arm_seq[i] = seq++;
            pending[i] = true;
        } else {
            timer_mod_anticipate_ns(&many.timers[i], d);
            g_assert_cmpuint(timer_expire_time_ns(&many.timers[i]), ==,
                             many.deadline[i]);
        }
    }
    for (uint32_t i = 0; i < count; i++) {
        g_assert_cmpint(timer_pending(&many.timers[i]), ==, pending[i]);
        expected += pending[i];
    }
    queue_check(&tl->queue);

    g_assert_true(timerlist_run_timers(tl));
    g_assert_cmpuint(many.nfired, ==, expected);
    g_assert_false(timerlist_has_timers(tl));
    for (size_t k = 1; k < many.nfired; k++) {
        uint32_t a = many.order[k - 1], b = many.order[k];

        g_assert_true(many.deadline[a] < many.deadline[b] ||
                      (many.deadline[a] == many.deadline[b] &&
                       many.arm_seq[a] < many.arm_seq[b]));
    }
    for (uint32_t i = 0; i < count; i++) {
        g_assert_cmpuint(many.fired[i], ==, pending[i]);
    }

    timerlistgroup_deinit(&tlg);
    g_rand_free(rand);
    g_free(pending);
    g_free(many.timers);
    g_free(many.deadline);
    g_free(many.arm_seq);
    g_free(many.fired);
    g_free(many.order);
}

static void test_list_million_random_timers(void)
{
    many_timers_check(MANY_TIMERS, many_random_deadline, false);
}

static void test_list_million_ascending_timers(void)
{
    many_timers_check(MANY_TIMERS, many_ascending_deadline, true);
}

/* Timer lists: deadlines */

typedef struct DeadlineCtx {
    QEMUTimerListGroup tlg;
    QEMUTimerListGroup other;
    QEMUTimer a, b, c;
} DeadlineCtx;

static void noop_cb(void *opaque)
{
}

static void deadline_frozen(int64_t now, void *opaque)
{
    DeadlineCtx *d = opaque;
    QEMUTimerList *tl = d->tlg.tl[QEMU_CLOCK_VIRTUAL];

    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), ==, now);
    g_assert_cmpint(timerlist_deadline_ns(tl), ==, -1);
    g_assert_false(timerlist_has_timers(tl));
    g_assert_false(timerlist_expired(tl));

    timer_mod_ns(&d->a, now + 1000);
    g_assert_cmpint(timerlist_deadline_ns(tl), ==, 1000);
    g_assert_false(timerlist_expired(tl));
    timer_mod_ns(&d->b, now + 300);
    g_assert_cmpint(timerlist_deadline_ns(tl), ==, 300);
    g_assert_cmpint(timerlistgroup_deadline_ns(&d->tlg), ==, 300);

    /* Attribute filtering, across lists of the clock. */
    timer_mod_ns(&d->c, now + 100);     /* EXTERNAL, on the other group */
    g_assert_cmpint(qemu_clock_deadline_ns_all(QEMU_CLOCK_VIRTUAL,
                                               QEMU_TIMER_ATTR_ALL), ==, 100);
    g_assert_cmpint(qemu_clock_deadline_ns_all(QEMU_CLOCK_VIRTUAL, 0), ==,
                    300);
    g_assert_cmpint(qemu_clock_deadline_ns_all(
                        QEMU_CLOCK_VIRTUAL, QEMU_TIMER_ATTR_EXTERNAL), ==,
                    100);
    /* EXTERNAL timer b, earlier than plain timer a: mask 0 skips it. */
    timer_del(&d->c);
    d->b.attributes = QEMU_TIMER_ATTR_EXTERNAL;
    g_assert_cmpint(qemu_clock_deadline_ns_all(QEMU_CLOCK_VIRTUAL, 0), ==,
                    1000);
    timer_del(&d->a);
    g_assert_cmpint(qemu_clock_deadline_ns_all(QEMU_CLOCK_VIRTUAL, 0), ==,
                    -1);
    d->b.attributes = 0;

    /* Due now, and overdue: 0. */
    timer_mod_ns(&d->b, now);
    g_assert_cmpint(timerlist_deadline_ns(tl), ==, 0);
    g_assert_true(timerlist_expired(tl));
    timer_mod_ns(&d->b, now - 50);
    g_assert_cmpint(timerlist_deadline_ns(tl), ==, 0);
    g_assert_cmpint(qemu_clock_deadline_ns_all(QEMU_CLOCK_VIRTUAL,
                                               QEMU_TIMER_ATTR_ALL), ==, 0);
    timer_del(&d->b);
    g_assert_cmpint(timerlist_deadline_ns(tl), ==, -1);
    g_assert_cmpint(timerlistgroup_deadline_ns(&d->tlg), ==, -1);
}

static void test_list_deadline(void)
{
    DeadlineCtx d;

    timerlistgroup_init(&d.tlg, ignore_notify, NULL);
    timerlistgroup_init(&d.other, ignore_notify, NULL);
    timer_init_full(&d.a, &d.tlg, QEMU_CLOCK_VIRTUAL, SCALE_NS, 0,
                    noop_cb, NULL);
    timer_init_full(&d.b, &d.tlg, QEMU_CLOCK_VIRTUAL, SCALE_NS, 0,
                    noop_cb, NULL);
    timer_init_full(&d.c, &d.other, QEMU_CLOCK_VIRTUAL, SCALE_NS,
                    QEMU_TIMER_ATTR_EXTERNAL, noop_cb, NULL);
    with_frozen_virtual_clock(deadline_frozen, &d);

    /* A disabled clock has no deadline even with timers armed. */
    timer_mod_ns(&d.a, 0);
    g_assert_cmpint(timerlist_deadline_ns(d.tlg.tl[QEMU_CLOCK_VIRTUAL]),
                    ==, 0);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    g_assert_cmpint(timerlist_deadline_ns(d.tlg.tl[QEMU_CLOCK_VIRTUAL]),
                    ==, -1);
    g_assert_cmpint(timerlistgroup_deadline_ns(&d.tlg), ==, -1);
    g_assert_true(timerlist_has_timers(d.tlg.tl[QEMU_CLOCK_VIRTUAL]));
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    timer_del(&d.a);

    timerlistgroup_deinit(&d.tlg);
    timerlistgroup_deinit(&d.other);
}

/* Timer lists: notification */

typedef struct NotifySeq {
    QEMUTimerListGroup tlg;
    NotifyCount n;
    QEMUTimer t[3];
    QEMUTimer probe;
    int counts[8];
} NotifySeq;

static void notify_and_lock(void *opaque, QEMUClockType type)
{
    NotifySeq *s = opaque;

    count_notify(&s->n, type);
    /*
     * The list's lock must not be held here: this takes it, and would
     * deadlock otherwise.
     */
    timer_mod_anticipate_ns(&s->probe, INT64_MAX);
}

static gpointer notify_seq_thread(gpointer opaque)
{
    NotifySeq *s = opaque;

    timer_mod_ns(&s->t[0], 100);        /* earliest: notify */
    s->counts[0] = qatomic_read(&s->n.count);
    timer_mod_ns(&s->t[1], 200);        /* behind t0: none */
    s->counts[1] = qatomic_read(&s->n.count);
    timer_mod_ns(&s->t[2], 50);         /* earliest: notify */
    s->counts[2] = qatomic_read(&s->n.count);
    timer_mod_ns(&s->t[1], 10);         /* re-armed to earliest: notify */
    s->counts[3] = qatomic_read(&s->n.count);
    timer_mod_ns(&s->t[0], 300);        /* later: none */
    s->counts[4] = qatomic_read(&s->n.count);
    timer_del(&s->t[1]);                /* deleting never notifies */
    s->counts[5] = qatomic_read(&s->n.count);
    timer_mod_ns(&s->t[2], 50);         /* same deadline, still head */
    s->counts[6] = qatomic_read(&s->n.count);
    timer_mod_ns(&s->t[1], 50);         /* equal to head: behind it */
    s->counts[7] = qatomic_read(&s->n.count);
    return NULL;
}

static void test_list_notify_when_earliest(void)
{
    NotifySeq s = { .n = { 0 } };
    static const int expected[] = { 1, 1, 2, 3, 3, 3, 4, 4 };
    GThread *thread;

    timerlistgroup_init(&s.tlg, notify_and_lock, &s);
    for (int i = 0; i < 3; i++) {
        timer_init_full(&s.t[i], &s.tlg, QEMU_CLOCK_HOST, SCALE_NS, 0,
                        noop_cb, NULL);
    }
    timer_init_full(&s.probe, &s.tlg, QEMU_CLOCK_HOST, SCALE_NS, 0,
                    noop_cb, NULL);
    thread = g_thread_new("notify-seq", notify_seq_thread, &s);
    g_thread_join(thread);
    for (int i = 0; i < 8; i++) {
        g_assert_cmpint(s.counts[i], ==, expected[i]);
    }
    g_assert_true(s.n.thread == thread);
    g_assert_cmpint(s.n.type, ==, QEMU_CLOCK_HOST);

    /*
     * timerlist_notify and qemu_clock_notify call it directly; the latter
     * also notifies main_loop_tlg, so give that a harmless callback.
     */
    init_clocks(ignore_notify);
    timerlist_notify(s.tlg.tl[QEMU_CLOCK_HOST]);
    g_assert_cmpint(s.n.count, ==, 5);
    qemu_clock_notify(QEMU_CLOCK_HOST);
    g_assert_cmpint(s.n.count, ==, 6);
    g_assert_true(s.n.thread == g_thread_self());

    for (int i = 0; i < 3; i++) {
        timer_del(&s.t[i]);
    }
    timer_del(&s.probe);
    timerlistgroup_deinit(&s.tlg);
}

/* Timers */

static void test_timer_mod_anticipate(void)
{
    QEMUTimerListGroup tlg;
    NotifyCount n = { 0 };
    QEMUTimer t, other;

    timerlistgroup_init(&tlg, count_notify, &n);
    timer_init_full(&t, &tlg, QEMU_CLOCK_REALTIME, SCALE_US, 0, noop_cb,
                    NULL);
    timer_init_full(&other, &tlg, QEMU_CLOCK_REALTIME, SCALE_NS, 0, noop_cb,
                    NULL);
    timer_mod_ns(&other, 5000);
    g_assert_cmpint(n.count, ==, 1);

    /* Not pending: arms, in units of the scale. */
    timer_mod_anticipate(&t, 10);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 10000);
    g_assert_cmpint(n.count, ==, 1);
    /* Later or equal: unchanged. */
    timer_mod_anticipate(&t, 20);
    timer_mod_anticipate_ns(&t, 10000);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 10000);
    g_assert_cmpint(n.count, ==, 1);
    /* Earlier: moved, and it becomes the head. */
    timer_mod_anticipate_ns(&t, 4000);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 4000);
    g_assert_cmpint(n.count, ==, 2);
    timer_mod_anticipate(&t, 3);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 3000);
    g_assert_cmpint(n.count, ==, 3);

    timer_del(&t);
    timer_del(&other);
    timerlistgroup_deinit(&tlg);
}

static void test_timer_scale_and_state(void)
{
    QEMUTimerListGroup tlg;
    QEMUTimer t;

    timerlistgroup_init(&tlg, ignore_notify, NULL);
    timer_init_full(&t, &tlg, QEMU_CLOCK_REALTIME, SCALE_MS, 0, noop_cb,
                    NULL);
    g_assert_false(timer_pending(&t));
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, UINT64_MAX);
    g_assert_false(timer_expired(&t, INT64_MAX / SCALE_MS));

    timer_mod(&t, 7);
    g_assert_true(timer_pending(&t));
    g_assert_cmpint(t.expire_time, ==, 7 * SCALE_MS);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 7 * SCALE_MS);
    /* timer_expired's time is in the timer's scale. */
    g_assert_false(timer_expired(&t, 6));
    g_assert_true(timer_expired(&t, 7));
    g_assert_true(timer_expired(&t, 8));

    /* Negative deadlines clamp to 0. */
    timer_mod_ns(&t, -5);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 0);
    timer_mod_anticipate_ns(&t, -9);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 0);

    timer_del(&t);
    g_assert_false(timer_pending(&t));
    timer_del(&t);
    timer_deinit(&t);
    g_assert_null(t.timer_list);
    timerlistgroup_deinit(&tlg);

    timer_free(NULL);
}

static int main_loop_fired;
static int main_loop_notified;

static void main_loop_cb(void *opaque)
{
    main_loop_fired++;
}

static void main_loop_notify(void *opaque, QEMUClockType type)
{
    g_assert_null(opaque);
    main_loop_notified++;
}

static void test_timer_main_loop_tlg(void)
{
    QEMUTimer *t;

    /* Timers default to main_loop_tlg, which exists before init_clocks. */
    t = timer_new_ns(QEMU_CLOCK_REALTIME, main_loop_cb, NULL);
    g_assert_nonnull(t->timer_list);
    g_assert_true(t->timer_list == main_loop_tlg.tl[QEMU_CLOCK_REALTIME]);
    g_assert_true(t->timer_list ==
                  qemu_clock_get_main_loop_timerlist(QEMU_CLOCK_REALTIME));
    g_assert_cmpint(t->scale, ==, SCALE_NS);

    /* Calling it again replaces the callback; the lists stay. */
    init_clocks(ignore_notify);
    init_clocks(main_loop_notify);
    g_assert_true(t->timer_list == main_loop_tlg.tl[QEMU_CLOCK_REALTIME]);
    g_assert_false(qemu_clock_has_timers(QEMU_CLOCK_REALTIME));
    g_assert_false(qemu_clock_expired(QEMU_CLOCK_REALTIME));

    timer_mod_ns(t, 0);
    g_assert_cmpint(main_loop_notified, ==, 1);
    g_assert_true(qemu_clock_has_timers(QEMU_CLOCK_REALTIME));
    g_assert_true(qemu_clock_expired(QEMU_CLOCK_REALTIME));
    g_assert_cmpint(qemu_clock_deadline_ns_all(QEMU_CLOCK_REALTIME,
                                               QEMU_TIMER_ATTR_ALL), ==, 0);
    g_assert_true(qemu_clock_run_all_timers());
    g_assert_cmpint(main_loop_fired, ==, 1);
    g_assert_false(qemu_clock_run_timers(QEMU_CLOCK_REALTIME));
    timer_free(t);

    t = timer_new_ms(QEMU_CLOCK_VIRTUAL, main_loop_cb, NULL);
    g_assert_cmpint(t->scale, ==, SCALE_MS);
    timer_free(t);
    t = timer_new_us(QEMU_CLOCK_HOST, main_loop_cb, NULL);
    g_assert_cmpint(t->scale, ==, SCALE_US);
    timer_free(t);
    init_clocks(ignore_notify);
}

static void test_list_free_with_pending_timer_aborts(void)
{
    if (g_test_subprocess()) {
        QEMUTimerList *tl = timerlist_new(QEMU_CLOCK_REALTIME, ignore_notify,
                                          NULL);
        QEMUTimerListGroup tlg = { .tl = { [QEMU_CLOCK_REALTIME] = tl } };
        QEMUTimer t;

        timer_init_full(&t, &tlg, QEMU_CLOCK_REALTIME, SCALE_NS, 0, noop_cb,
                        NULL);
        timer_mod_ns(&t, 10);
        timerlist_free(tl);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*timerlist_free*pending*");
}

/* Clock enable/disable and running callbacks */

typedef struct EnableCtx {
    QEMUTimerListGroup tlg;
    QEMUTimer t;
    int in_cb;
    int release;
    int disabler_returned;
    int seen_returned;
} EnableCtx;

static void blocking_cb(void *opaque)
{
    EnableCtx *e = opaque;
    uint64_t spins = 0;

    qatomic_set(&e->in_cb, 1);
    while (!qatomic_read(&e->release)) {
        g_assert_cmpuint(++spins, <, SPIN_CAP);
        g_thread_yield();
    }
    qatomic_set(&e->seen_returned, qatomic_read(&e->disabler_returned));
}

static gpointer runner_thread(gpointer opaque)
{
    EnableCtx *e = opaque;

    g_assert_true(timerlist_run_timers(e->tlg.tl[QEMU_CLOCK_HOST]));
    return NULL;
}

static gpointer disabler_thread(gpointer opaque)
{
    EnableCtx *e = opaque;

    qemu_clock_enable(QEMU_CLOCK_HOST, false);
    qatomic_set(&e->disabler_returned, 1);
    return NULL;
}

static void test_clock_disable_waits_for_running_callbacks(void)
{
    EnableCtx e = { .in_cb = 0 };
    QEMUTimerList *tl;
    GThread *runner, *disabler;
    uint64_t spins = 0;

    timerlistgroup_init(&e.tlg, ignore_notify, NULL);
    tl = e.tlg.tl[QEMU_CLOCK_HOST];
    timer_init_full(&e.t, &e.tlg, QEMU_CLOCK_HOST, SCALE_NS, 0,
                    blocking_cb, &e);
    timer_mod_ns(&e.t, 0);
    runner = g_thread_new("runner", runner_thread, &e);
    while (!qatomic_read(&e.in_cb)) {
        g_assert_cmpuint(++spins, <, SPIN_CAP);
        g_thread_yield();
    }
    disabler = g_thread_new("disabler", disabler_thread, &e);
    /* Wait until the disabler is blocked on this list. */
    while (!__atomic_load_n(&tl->waiters, __ATOMIC_SEQ_CST)) {
        g_assert_cmpuint(++spins, <, SPIN_CAP);
        g_thread_yield();
    }
    qatomic_set(&e.release, 1);
    g_thread_join(runner);
    g_thread_join(disabler);
    g_assert_cmpint(e.seen_returned, ==, 0);
    g_assert_cmpint(e.disabler_returned, ==, 1);

    /* Disabled: a due timer does not run, and there is no deadline. */
    timer_mod_ns(&e.t, 0);
    g_assert_false(timerlist_run_timers(tl));
    g_assert_true(timer_pending(&e.t));
    g_assert_cmpint(timerlist_deadline_ns(tl), ==, -1);
    g_assert_cmpint(qemu_clock_deadline_ns_all(QEMU_CLOCK_HOST,
                                               QEMU_TIMER_ATTR_ALL), ==, -1);
    qemu_clock_enable(QEMU_CLOCK_HOST, true);
    g_assert_cmpint(timerlist_deadline_ns(tl), ==, 0);
    timer_del(&e.t);
    timerlistgroup_deinit(&e.tlg);
}

typedef struct SelfDisable {
    int fired;
    int second_fired;
} SelfDisable;

static void self_disable_cb(void *opaque)
{
    SelfDisable *s = opaque;

    /* Must not wait for ourselves. */
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL_RT, false);
    s->fired++;
}

static void second_cb(void *opaque)
{
    SelfDisable *s = opaque;

    s->second_fired++;
}

static void test_clock_disable_from_own_callback(void)
{
    QEMUTimerListGroup tlg;
    QEMUTimer t1, t2;
    SelfDisable s = { 0 };

    timerlistgroup_init(&tlg, ignore_notify, NULL);
    timer_init_full(&t1, &tlg, QEMU_CLOCK_VIRTUAL_RT, SCALE_NS, 0,
                    self_disable_cb, &s);
    timer_init_full(&t2, &tlg, QEMU_CLOCK_VIRTUAL_RT, SCALE_NS, 0,
                    second_cb, &s);
    timer_mod_ns(&t1, 0);
    timer_mod_ns(&t2, 1);
    /*
     * As in QEMU, the enabled flag is read once per run: a run that has
     * started finishes the timers that were due.
     */
    g_assert_true(timerlist_run_timers(tlg.tl[QEMU_CLOCK_VIRTUAL_RT]));
    g_assert_cmpint(s.fired, ==, 1);
    g_assert_cmpint(s.second_fired, ==, 1);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL_RT, true);
    timerlistgroup_deinit(&tlg);
}

/* Many threads arming and cancelling on shared lists */

#define STRESS_WORKERS 4
#define STRESS_TIMERS 64            /* per worker */
#define STRESS_OPS 10000            /* per worker */
#define STRESS_LISTS 2

enum { ST_IDLE, ST_FUTURE, ST_PAST };

typedef struct StressTimer {
    QEMUTimer timer;
    int state;                      /* worker-only */
    uint32_t token;                 /* worker writes only while no fire */
    uint8_t *fires;                 /* per token, written by callback */
    uint32_t max_tokens;
    int raced;                      /* worker: deleted while due */
} StressTimer;

typedef struct Stress {
    QEMUTimerListGroup tlg[STRESS_LISTS];
    StressTimer timers[STRESS_WORKERS][STRESS_TIMERS];
    unsigned passes;                /* runner iterations; atomic */
    int stop;                       /* atomic */
    int workers_done;               /* atomic */
    unsigned long fires_total;      /* runner only */
} Stress;

static Stress *stress;

static void stress_cb(void *opaque)
{
    StressTimer *st = opaque;
    uint32_t token = qatomic_read(&st->token);

    g_assert_cmpuint(token, <, st->max_tokens);
    qatomic_set(&st->fires[token], qatomic_read(&st->fires[token]) + 1);
    stress->fires_total++;
}

static gpointer stress_runner(gpointer opaque)
{
    while (!qatomic_read(&stress->stop)) {
        for (int l = 0; l < STRESS_LISTS; l++) {
            timerlist_run_timers(stress->tlg[l].tl[QEMU_CLOCK_REALTIME]);
        }
        qatomic_inc(&stress->passes);
    }
    return NULL;
}

/* Waits until every callback popped before now has returned. */
static void stress_wait_two_passes(void)
{
    unsigned start = qatomic_read(&stress->passes);
    uint64_t spins = 0;

    while (qatomic_read(&stress->passes) - start < 2) {
        g_assert_cmpuint(++spins, <, SPIN_CAP);
        g_thread_yield();
    }
}

static void stress_wait_fired(StressTimer *st)
{
    uint64_t spins = 0;

    while (!qatomic_read(&st->fires[st->token])) {
        g_assert_cmpuint(++spins, <, SPIN_CAP);
        g_thread_yield();
    }
}

static gpointer stress_worker(gpointer opaque)
{
    int w = (int)(uintptr_t)opaque;
    GRand *rand = g_rand_new_with_seed(100 + w);

    for (int op = 0; op < STRESS_OPS; op++) {
        StressTimer *st = &stress->timers[w][g_rand_int_range(rand, 0,
                                                              STRESS_TIMERS)];
        int choice = g_rand_int_range(rand, 0, 4);
        int64_t future = INT64_MAX - g_rand_int_range(rand, 0, 1000);
        int64_t past = g_rand_int_range(rand, 0, 1000);

        switch (st->state) {
        case ST_IDLE:
            qatomic_set(&st->token, st->token + 1);
            g_assert_cmpuint(st->token, <, st->max_tokens);
            if (choice < 2) {
                timer_mod_ns(&st->timer, past);
                st->state = ST_PAST;
            } else {
                timer_mod_ns(&st->timer, future);
                st->state = ST_FUTURE;
            }
            break;
        case ST_FUTURE:
            if (choice == 0) {
                timer_del(&st->timer);
                g_assert_false(timer_pending(&st->timer));
                st->state = ST_IDLE;
            } else if (choice == 1) {
                timer_mod_ns(&st->timer, future);
            } else if (choice == 2) {
                timer_mod_anticipate_ns(&st->timer, past);
                st->state = ST_PAST;
            } else {
                timer_mod_ns(&st->timer, past);
                st->state = ST_PAST;
            }
            break;
        case ST_PAST:
            if (choice == 0) {
                /* Races the runner: fires once or not at all. */
                timer_del(&st->timer);
                stress_wait_two_passes();
                g_assert_cmpuint(qatomic_read(&st->fires[st->token]), <=, 1);
                st->raced++;
            } else {
                stress_wait_fired(st);
            }
            st->state = ST_IDLE;
            break;
        }
    }
    /* Leave every timer idle with its last arm settled. */
    for (int i = 0; i < STRESS_TIMERS; i++) {
        StressTimer *st = &stress->timers[w][i];

        if (st->state == ST_FUTURE) {
            timer_del(&st->timer);
        } else if (st->state == ST_PAST) {
            stress_wait_fired(st);
        }
        st->state = ST_IDLE;
    }
    g_rand_free(rand);
    return NULL;
}

static void test_threads_mod_del_exact_callbacks(void)
{
    GThread *runner, *workers[STRESS_WORKERS];
    unsigned long fired = 0;

    stress = g_new0(Stress, 1);
    for (int l = 0; l < STRESS_LISTS; l++) {
        timerlistgroup_init(&stress->tlg[l], ignore_notify, NULL);
    }
    for (int w = 0; w < STRESS_WORKERS; w++) {
        for (int i = 0; i < STRESS_TIMERS; i++) {
            StressTimer *st = &stress->timers[w][i];

            st->max_tokens = STRESS_OPS + 2;
            st->fires = g_new0(uint8_t, st->max_tokens);
            timer_init_full(&st->timer, &stress->tlg[(w + i) % STRESS_LISTS],
                            QEMU_CLOCK_REALTIME, SCALE_NS, 0, stress_cb, st);
        }
    }
    runner = g_thread_new("stress-runner", stress_runner, NULL);
    for (int w = 0; w < STRESS_WORKERS; w++) {
        workers[w] = g_thread_new("stress-worker", stress_worker,
                                  (void *)(uintptr_t)w);
    }
    for (int w = 0; w < STRESS_WORKERS; w++) {
        g_thread_join(workers[w]);
    }
    qatomic_set(&stress->stop, 1);
    g_thread_join(runner);

    for (int w = 0; w < STRESS_WORKERS; w++) {
        for (int i = 0; i < STRESS_TIMERS; i++) {
            StressTimer *st = &stress->timers[w][i];

            g_assert_false(timer_pending(&st->timer));
            for (uint32_t k = 0; k < st->max_tokens; k++) {
                g_assert_cmpuint(st->fires[k], <=, 1);
                fired += st->fires[k];
            }
            g_free(st->fires);
        }
    }
    g_assert_cmpuint(fired, ==, stress->fires_total);
    for (int l = 0; l < STRESS_LISTS; l++) {
        g_assert_false(timerlist_has_timers(
                           stress->tlg[l].tl[QEMU_CLOCK_REALTIME]));
        timerlistgroup_deinit(&stress->tlg[l]);
    }
    g_free(stress);
}

/* Timer lists: the published earliest deadline and the list's lock */

#define MODEL_TIMERS 300
#define MODEL_OPS 59000

typedef struct ModelTimer {
    QEMUTimer timer;
    bool pending;
    int64_t deadline;
    uint64_t seq;
    int *fired_log;
    int *nfired;
} ModelTimer;

static ModelTimer *model_timers;

static void model_fire_cb(void *opaque)
{
    ModelTimer *m = opaque;

    m->fired_log[(*m->nfired)++] = (int)(m - model_timers);
}

static bool model_before(const ModelTimer *a, const ModelTimer *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->seq < b->seq);
}

/* The model's earliest pending timer other than @except, or NULL. */
static ModelTimer *model_first(ModelTimer *except)
{
    ModelTimer *first = NULL;

    for (int i = 0; i < MODEL_TIMERS; i++) {
        ModelTimer *m = &model_timers[i];

        if (m != except && m->pending && (!first || model_before(m, first))) {
            first = m;
        }
    }
    return first;
}

static int model_cmp(const void *a, const void *b)
{
    const ModelTimer *x = &model_timers[*(const int *)a];
    const ModelTimer *y = &model_timers[*(const int *)b];

    return model_before(x, y) ? -1 : model_before(y, x);
}

/*
 * Random arming, re-arming, anticipating and deleting, checked after every
 * step against a model: the list's published earliest deadline (which
 * timer_mod_ns and timer_del now update without a look at the queue when
 * they can), the queue's own answer, and a notification exactly when the
 * armed timer became the first.  Deadlines come in phases: a slowly rising
 * base (the sorted run), small random ones (the heap), and both mixed,
 * with many ties; the list is emptied now and then, and the heap grows
 * past its first allocation.  At the end everything fires in (deadline,
 * arming order).
 */
static void test_list_earliest_follows_model(void)
{
    QEMUTimerListGroup tlg;
    QEMUTimerList *tl;
    NotifyCount n = { 0 };
    GRand *rand = g_rand_new_with_seed(4242);
    int *fired_log = g_new(int, MODEL_TIMERS);
    int *expected = g_new(int, MODEL_TIMERS);
    int nfired = 0, npending = 0, notified = 0;
    uint64_t seq = 0;

    model_timers = g_new0(ModelTimer, MODEL_TIMERS);
    timerlistgroup_init(&tlg, count_notify, &n);
    tl = tlg.tl[QEMU_CLOCK_HOST];
    for (int i = 0; i < MODEL_TIMERS; i++) {
        model_timers[i].fired_log = fired_log;
        model_timers[i].nfired = &nfired;
        timer_init_full(&model_timers[i].timer, &tlg, QEMU_CLOCK_HOST,
                        SCALE_NS, 0, model_fire_cb, &model_timers[i]);
    }
    for (int op = 0; op < MODEL_OPS; op++) {
        ModelTimer *m = &model_timers[g_rand_int_range(rand, 0,
                                                       MODEL_TIMERS)];
        int choice = g_rand_int_range(rand, 0, 10);
        int phase = op / 1000 % 3;
        int64_t d = phase == 2 || (phase == 0 && g_rand_boolean(rand))
                    ? op / 8 + g_rand_int_range(rand, 0, 4)
                    : g_rand_int_range(rand, 0, 16);
        bool arms = false;
        ModelTimer *first;

        if (op % 1500 == 1499) {
            /* Empty the list now and then: both structures start over. */
            for (int i = 0; i < MODEL_TIMERS; i++) {
                timer_del(&model_timers[i].timer);
                model_timers[i].pending = false;
            }
            npending = 0;
            g_assert_cmpint(qatomic_read(&tl->earliest), ==, -1);
            continue;
        }
        if (choice < 6) {
            timer_mod_ns(&m->timer, d);
            arms = true;
        } else if (choice < 8) {
            arms = !m->pending || d < m->deadline;
            timer_mod_anticipate_ns(&m->timer, d);
        } else {
            timer_del(&m->timer);
            npending -= m->pending;
            m->pending = false;
        }
        if (arms) {
            npending += !m->pending;
            m->pending = true;
            m->deadline = d;
            m->seq = seq++;
            first = model_first(m);
            notified += !first || model_before(m, first);
        }
        first = model_first(NULL);
        g_assert_cmpint(qatomic_read(&n.count), ==, notified);
        g_assert_cmpint(qatomic_read(&tl->earliest), ==,
                        first ? first->deadline : -1);
        g_assert_cmpint(qaio_int_timerlist_earliest(tl, QEMU_TIMER_ATTR_ALL),
                        ==, first ? first->deadline : -1);
        g_assert_cmpint(timer_pending(&m->timer), ==, m->pending);
        g_assert_cmpuint(qaio_int_timer_queue_count(&tl->queue), ==,
                         npending);
        queue_check(&tl->queue);
    }
    g_assert_cmpuint(tl->queue.cap, >, 64);

    /* HOST time is far past every deadline: one run fires them all. */
    npending = 0;
    for (int i = 0; i < MODEL_TIMERS; i++) {
        if (model_timers[i].pending) {
            expected[npending++] = i;
        }
    }
    qsort(expected, npending, sizeof(int), model_cmp);
    g_assert_cmpint(npending, >, 0);
    g_assert_true(timerlistgroup_run_timers(&tlg));
    g_assert_cmpint(nfired, ==, npending);
    for (int i = 0; i < npending; i++) {
        g_assert_cmpint(fired_log[i], ==, expected[i]);
    }
    g_assert_cmpint(qatomic_read(&tl->earliest), ==, -1);
    g_assert_false(timerlistgroup_run_timers(&tlg));

    timerlistgroup_deinit(&tlg);
    g_rand_free(rand);
    g_free(model_timers);
    g_free(fired_log);
    g_free(expected);
}

/*
 * Ties between the two structures a list keeps (timer-int.h): a timer armed
 * at the deadline of the earliest one is not the first, whichever
 * structure either is in, so it neither notifies nor fires first.
 */
static void test_list_ties_across_run_and_heap(void)
{
    QEMUTimerListGroup tlg;
    GArray *log = g_array_new(false, false, sizeof(int));
    NotifyCount n = { 0 };
    LogTimer t[6];
    static const int expected[] = { 3, 1, 2, 4, 5 };

    timerlistgroup_init(&tlg, count_notify, &n);
    for (int i = 0; i < 6; i++) {
        log_timer_init(&t[i], &tlg, QEMU_CLOCK_HOST, i, log);
    }
    timer_mod_ns(&t[0].timer, 10);      /* empty: starts the run; first */
    g_assert_cmpint(n.count, ==, 1);
    timer_mod_ns(&t[1].timer, 5);       /* below the run's tail: heap root */
    g_assert_cmpint(n.count, ==, 2);
    timer_del(&t[0].timer);             /* the run is empty, the heap not */
    timer_mod_ns(&t[2].timer, 5);       /* starts the run, ties the root */
    g_assert_cmpint(n.count, ==, 2);
    timer_mod_ns(&t[3].timer, 4);       /* heap, strictly first */
    g_assert_cmpint(n.count, ==, 3);
    timer_mod_ns(&t[4].timer, 7);       /* run */
    timer_mod_ns(&t[5].timer, 7);       /* run, behind t4 */
    g_assert_cmpint(n.count, ==, 3);
    g_assert_cmpint(qatomic_read(&tlg.tl[QEMU_CLOCK_HOST]->earliest), ==, 4);
    g_assert_true(timerlistgroup_run_timers(&tlg));
    assert_log(log, expected, 5);
    g_assert_cmpint(n.count, ==, 3);
    timerlistgroup_deinit(&tlg);
    g_array_free(log, true);
}

/*
 * Deadlines in a coarse scale saturate instead of wrapping: INT64_MAX ms
 * ("never") stays the farthest deadline, a hugely negative one is due.
 */
static void test_timer_coarse_scale_saturates(void)
{
    QEMUTimerListGroup tlg;
    QEMUTimer t;

    timerlistgroup_init(&tlg, ignore_notify, NULL);
    timer_init_full(&t, &tlg, QEMU_CLOCK_HOST, SCALE_MS, 0, noop_cb, NULL);
    timer_mod(&t, INT64_MAX);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, INT64_MAX);
    g_assert_false(timer_expired(&t, INT64_MAX / SCALE_MS));
    g_assert_true(timer_expired(&t, INT64_MAX));
    timer_mod_anticipate(&t, INT64_MAX / 2);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, INT64_MAX);
    timer_mod_anticipate(&t, 5);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 5 * SCALE_MS);
    timer_mod(&t, INT64_MIN / 2);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 0);
    g_assert_true(timerlist_run_timers(tlg.tl[QEMU_CLOCK_HOST]));
    g_assert_false(timer_pending(&t));
    timerlistgroup_deinit(&tlg);
}

typedef struct LockSleeper {
    QEMUTimer timer;
    bool done;
} LockSleeper;

static gpointer lock_sleeper_thread(gpointer opaque)
{
    LockSleeper *ls = opaque;

    timer_mod_ns(&ls->timer, 77);       /* blocks until the lock is free */
    qatomic_set(&ls->done, true);
    return NULL;
}

/*
 * A thread that finds the list's lock held spins briefly, then announces
 * itself (the lock word goes to 2) and sleeps; the unlock must wake it.
 */
static void test_list_lock_wakes_sleeper(void)
{
    QEMUTimerListGroup tlg;
    QEMUTimerList *tl;
    LockSleeper ls = { .done = false };
    GThread *thread;
    uint64_t spins = 0;

    timerlistgroup_init(&tlg, ignore_notify, NULL);
    tl = tlg.tl[QEMU_CLOCK_HOST];
    timer_init_full(&ls.timer, &tlg, QEMU_CLOCK_HOST, SCALE_NS, 0, noop_cb,
                    NULL);

    /* The list's first lock takes word, whether it claims the bias or not. */
    g_assert_false(timer_lock(&tl->active_timers_lock));
    g_assert_cmpuint(qatomic_read(&tl->active_timers_lock.word), ==, 1);
    thread = g_thread_new("lock-sleeper", lock_sleeper_thread, &ls);
    while (qatomic_read(&tl->active_timers_lock.word) != 2) {
        g_assert_cmpuint(++spins, <, SPIN_CAP);
        g_thread_yield();
    }
    g_assert_false(qatomic_read(&ls.done));
    timer_unlock(&tl->active_timers_lock, false);
    g_thread_join(thread);

    g_assert_true(ls.done);
    g_assert_cmpuint(qatomic_read(&tl->active_timers_lock.word), ==, 0);
    g_assert_true(timer_pending(&ls.timer));
    g_assert_cmpint(qatomic_read(&tl->earliest), ==, 77);
    timer_del(&ls.timer);
    g_assert_cmpint(qatomic_read(&tl->earliest), ==, -1);
    timerlistgroup_deinit(&tlg);
}

/* The heap's tombstones (timer-int.h) */

#define TOMB_TIMERS 400

typedef struct Tomb {
    LogTimer t[TOMB_TIMERS];
    int64_t deadline[TOMB_TIMERS];
    uint64_t seq[TOMB_TIMERS];
    bool pending[TOMB_TIMERS];
    uint64_t next_seq;
    GArray *log;
    QEMUTimerListGroup tlg;
    TimerQueue *q;
} Tomb;

static void tomb_arm(Tomb *tb, int i, int64_t deadline)
{
    timer_mod_ns(&tb->t[i].timer, deadline);
    tb->deadline[i] = deadline;
    tb->seq[i] = tb->next_seq++;
    tb->pending[i] = true;
    queue_check(tb->q);
}

static void tomb_cancel(Tomb *tb, int i)
{
    timer_del(&tb->t[i].timer);
    tb->pending[i] = false;
    queue_check(tb->q);
}

/* A fresh list (its heap at the first capacity) for the next phase. */
static void tomb_new_list(Tomb *tb)
{
    if (tb->q) {
        timerlistgroup_deinit(&tb->tlg);
    }
    timerlistgroup_init(&tb->tlg, ignore_notify, NULL);
    tb->q = &tb->tlg.tl[QEMU_CLOCK_HOST]->queue;
    for (int i = 0; i < TOMB_TIMERS; i++) {
        log_timer_init(&tb->t[i], &tb->tlg, QEMU_CLOCK_HOST, i, tb->log);
    }
}

static bool tomb_in_heap_middle(Tomb *tb, int i)
{
    uint64_t slot = tb->t[i].timer.heap_index;

    return tb->pending[i] && !(slot & TIMER_IN_RUN) && slot != 0 &&
           slot != tb->q->n - 1;
}

static Tomb *tomb_sorted;

static int tomb_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    Tomb *tb = tomb_sorted;

    if (tb->deadline[x] != tb->deadline[y]) {
        return tb->deadline[x] < tb->deadline[y] ? -1 : 1;
    }
    return tb->seq[x] < tb->seq[y] ? -1 : tb->seq[x] > tb->seq[y];
}

/* Fires everything (HOST time is far past every deadline) and checks. */
static void tomb_fire_all(Tomb *tb)
{
    int expected[TOMB_TIMERS];
    int n = 0;

    for (int i = 0; i < TOMB_TIMERS; i++) {
        if (tb->pending[i]) {
            expected[n++] = i;
        }
    }
    tomb_sorted = tb;
    qsort(expected, n, sizeof(int), tomb_cmp);
    g_array_set_size(tb->log, 0);
    g_assert_cmpint(timerlistgroup_run_timers(&tb->tlg), ==, n > 0);
    assert_log(tb->log, expected, n);
    memset(tb->pending, 0, sizeof(tb->pending));
    g_assert_cmpuint(tb->q->n, ==, 0);
    g_assert_cmpuint(tb->q->dead, ==, 0);
}

/*
 * Cancelling a heap timer in the middle leaves a tombstone that keeps its
 * place in the order, ties included; the root is taken out for real and
 * tombstones that rise to it are popped; the heap is rebuilt when
 * tombstones outnumber live entries three to one, when it is full and half
 * tombstones instead of growing, and when many tombstones reach the root;
 * the last live entry takes the tombstones with it.  The queue's
 * invariants are checked after every step, the firing order at the end of
 * each phase.
 */
static void test_list_heap_tombstones(void)
{
    Tomb *tb = g_new0(Tomb, 1);
    bool rebuilt = false;
    size_t cap;
    int i;

    tb->log = g_array_new(false, false, sizeof(int));
    tomb_new_list(tb);

    /* t0 starts the run high; the rest go to the heap, four per deadline. */
    tomb_arm(tb, 0, 1000000);
    for (i = 1; i < TOMB_TIMERS; i++) {
        tomb_arm(tb, i, (i * 37) % 100);
    }
    g_assert_cmpuint(tb->q->n, ==, TOMB_TIMERS - 1);

    /* A middle entry leaves a tombstone; nothing moves. */
    for (i = 1; !tomb_in_heap_middle(tb, i); i++) {
        continue;
    }
    tomb_cancel(tb, i);
    g_assert_cmpuint(tb->q->n, ==, TOMB_TIMERS - 1);
    g_assert_cmpuint(tb->q->dead, ==, 1);

    /* Re-armed at its old deadline it goes behind its equals, alive. */
    tomb_arm(tb, i, tb->deadline[i]);
    g_assert_cmpuint(tb->q->dead, ==, 1);

    /* Cancel the root again and again: tombstones rising to it pop. */
    for (int k = 0; k < 40; k++) {
        QEMUTimer *root = tb->q->heap[0].ts;

        for (int j = 1; j < TOMB_TIMERS; j++) {
            if (tomb_in_heap_middle(tb, j) && tb->deadline[j] < 50 &&
                j % 3 == k % 3) {
                tomb_cancel(tb, j);
                break;
            }
        }
        tomb_cancel(tb, (LogTimer *)root - tb->t);
    }
    g_assert_cmpuint(tb->q->dead, >, 0);

    /* Three tombstones to one live entry: rebuilt without them. */
    for (i = 1; i < TOMB_TIMERS; i++) {
        size_t before = tb->q->n;

        if (tomb_in_heap_middle(tb, i) && i % 8) {
            tomb_cancel(tb, i);
            if (tb->q->n < before - 1) {
                g_assert_cmpuint(tb->q->dead, ==, 0);
                rebuilt = true;
                break;
            }
        }
    }
    g_assert_true(rebuilt);
    tomb_fire_all(tb);

    /*
     * A full heap half tombstones is rebuilt instead of growing.  t0 in
     * the run again; then the heap gets exactly its capacity.
     */
    tomb_new_list(tb);
    tomb_arm(tb, 0, 1000000);
    tomb_arm(tb, 1, 37);
    cap = tb->q->cap;
    g_assert_cmpuint(cap, <, TOMB_TIMERS);
    for (i = 2; i <= (int)cap; i++) {
        tomb_arm(tb, i, (i * 37) % 100);
    }
    g_assert_cmpuint(tb->q->n, ==, cap);
    for (i = 1; tb->q->dead < cap / 2; i++) {
        if (tomb_in_heap_middle(tb, i)) {
            tomb_cancel(tb, i);
        }
    }
    g_assert_cmpuint(tb->q->n, ==, cap);
    tomb_arm(tb, cap + 1, 42);
    g_assert_cmpuint(tb->q->cap, ==, cap);
    g_assert_cmpuint(tb->q->dead, ==, 0);
    tomb_fire_all(tb);

    /*
     * Tombstones at the front: once one reaches the root and they are an
     * eighth of the live entries, the heap is rebuilt instead of popping
     * them one by one.
     */
    tomb_new_list(tb);
    tomb_arm(tb, 0, 1000000);
    for (i = 1; i < TOMB_TIMERS; i++) {
        tomb_arm(tb, i, (i * 37) % TOMB_TIMERS);
    }
    for (int64_t d = 0; tb->q->dead < TIMER_HEAP_DEAD_MIN; d++) {
        for (i = 1; i < TOMB_TIMERS; i++) {
            if (tb->deadline[i] == d && tomb_in_heap_middle(tb, i)) {
                tomb_cancel(tb, i);
            }
        }
    }
    g_assert_cmpuint(tb->q->dead * TIMER_HEAP_POP_RATIO, >=,
                     tb->q->n - tb->q->dead);
    tomb_cancel(tb, (LogTimer *)tb->q->heap[0].ts - tb->t);
    g_assert_cmpuint(tb->q->dead, ==, 0);
    tomb_fire_all(tb);

    /* Cancelling the last live heap entry empties the heap outright. */
    tomb_arm(tb, 0, 1000000);
    for (i = 1; i < 100; i++) {
        tomb_arm(tb, i, 1000 - i);
    }
    for (i = 1; i < 99; i++) {
        if (tomb_in_heap_middle(tb, i)) {
            tomb_cancel(tb, i);
        }
    }
    g_assert_cmpuint(tb->q->dead, >, 0);
    for (i = 1; i < 100; i++) {
        if (tb->pending[i]) {
            tomb_cancel(tb, i);
        }
    }
    g_assert_cmpuint(tb->q->n, ==, 0);
    g_assert_cmpuint(tb->q->dead, ==, 0);
    g_assert_cmpint(qatomic_read(&tb->tlg.tl[QEMU_CLOCK_HOST]->earliest), ==,
                    1000000);
    tomb_fire_all(tb);

    timerlistgroup_deinit(&tb->tlg);
    g_array_free(tb->log, true);
    g_free(tb);
}

/* The lock's bias (timer-int.h) */

typedef struct BiasArm {
    QEMUTimer *timer;
    int64_t deadline;
} BiasArm;

static gpointer bias_arm_thread(gpointer opaque)
{
    BiasArm *ba = opaque;

    timer_mod_ns(ba->timer, ba->deadline);
    return NULL;
}

/*
 * The first thread to lock a list owns it and locks without touching the
 * lock word; another thread's timer_mod revokes that for good, still
 * notifies the list when it arms the earliest timer, and from then on
 * both take the word.
 */
static void test_list_lock_bias_claim_and_revoke(void)
{
    QEMUTimerListGroup tlg;
    QEMUTimerList *tl;
    TimerLock *lock;
    NotifyCount n = { 0 };
    QEMUTimer a, b;
    BiasArm ba = { .timer = &b, .deadline = 10 };

    timerlistgroup_init(&tlg, count_notify, &n);
    tl = tlg.tl[QEMU_CLOCK_HOST];
    lock = &tl->active_timers_lock;
    timer_init_full(&a, &tlg, QEMU_CLOCK_HOST, SCALE_NS, 0, noop_cb, NULL);
    timer_init_full(&b, &tlg, QEMU_CLOCK_HOST, SCALE_NS, 0, noop_cb, NULL);
    g_assert_null(qatomic_read(&lock->owner));

    timer_mod_ns(&a, 100);
    if (qatomic_read(&lock->owner) == TIMER_LOCK_SHARED) {
        timer_del(&a);
        timerlistgroup_deinit(&tlg);
        g_test_skip("membarrier(2) is unavailable: no lock is biased");
        return;
    }
    g_assert_true(qatomic_read(&lock->owner) == &qaio_int_timer_thread_id);
    g_assert_cmpint(n.count, ==, 1);
    g_assert_true(timer_lock(lock));
    g_assert_cmpuint(qatomic_read(&lock->word), ==, 0);
    g_assert_cmpuint(qatomic_read(&lock->owner_in), ==, 1);
    timer_unlock(lock, true);
    g_assert_cmpuint(qatomic_read(&lock->owner_in), ==, 0);

    /* Another thread arms an earlier timer: revoked, and notified. */
    g_thread_join(g_thread_new("bias-arm", bias_arm_thread, &ba));
    g_assert_true(qatomic_read(&lock->owner) == TIMER_LOCK_SHARED);
    g_assert_cmpint(n.count, ==, 2);
    g_assert_true(n.thread != g_thread_self());
    g_assert_cmpint(qatomic_read(&tl->earliest), ==, 10);

    /* The old owner takes the word now, and it stays shared. */
    g_assert_false(timer_lock(lock));
    g_assert_cmpuint(qatomic_read(&lock->word), ==, 1);
    timer_unlock(lock, false);
    g_assert_cmpuint(qatomic_read(&lock->word), ==, 0);
    timer_del(&b);
    timer_del(&a);
    g_assert_true(qatomic_read(&lock->owner) == TIMER_LOCK_SHARED);
    g_assert_false(timerlist_has_timers(tl));
    timerlistgroup_deinit(&tlg);
}

#define BIAS_ROUNDS 200
#define BIAS_TIMERS 64

typedef struct BiasRace {
    QEMUTimerListGroup tlg;
    QEMUTimer owner_timers[BIAS_TIMERS];
    QEMUTimer other_timers[BIAS_TIMERS];
    unsigned owner_ops;         /* atomic */
    bool stop;                  /* atomic */
} BiasRace;

/* Arms and cancels its own timers on a random walk until told to stop. */
static void bias_churn(QEMUTimer *timers, GRand *rand, unsigned *ops,
                       bool *stop, unsigned max_ops)
{
    for (unsigned op = 0; op < max_ops && !(stop && qatomic_read(stop));
         op++) {
        QEMUTimer *t = &timers[g_rand_int_range(rand, 0, BIAS_TIMERS)];

        if (g_rand_int_range(rand, 0, 3)) {
            /* Far in the future, so that nothing fires. */
            timer_mod_ns(t, INT64_MAX - g_rand_int_range(rand, 0, 64));
        } else {
            timer_del(t);
        }
        if (ops) {
            qatomic_set(ops, op + 1);
        }
    }
}

static gpointer bias_owner_thread(gpointer opaque)
{
    BiasRace *br = opaque;
    GRand *rand = g_rand_new_with_seed(7);

    bias_churn(br->owner_timers, rand, &br->owner_ops, &br->stop, UINT_MAX);
    g_rand_free(rand);
    return NULL;
}

/*
 * A list's owner arms and cancels timers as fast as it can while another
 * thread starts doing the same on the same list, over and over with fresh
 * lists: the revocation must wait for the owner to leave the queue, and
 * the owner must see it and take the word.  A lost handshake corrupts the
 * queue, which the check and the final counts catch (and ThreadSanitizer
 * reports it as a race).
 */
static void test_threads_lock_bias_revoked_under_load(void)
{
    BiasRace *br = g_new0(BiasRace, 1);
    GRand *rand = g_rand_new_with_seed(8);

    for (int round = 0; round < BIAS_ROUNDS; round++) {
        QEMUTimerList *tl;
        GThread *owner;
        uint64_t spins = 0;
        size_t pending = 0;

        memset(br, 0, sizeof(*br));
        timerlistgroup_init(&br->tlg, ignore_notify, NULL);
        tl = br->tlg.tl[QEMU_CLOCK_HOST];
        for (int i = 0; i < BIAS_TIMERS; i++) {
            timer_init_full(&br->owner_timers[i], &br->tlg, QEMU_CLOCK_HOST,
                            SCALE_NS, 0, noop_cb, NULL);
            timer_init_full(&br->other_timers[i], &br->tlg, QEMU_CLOCK_HOST,
                            SCALE_NS, 0, noop_cb, NULL);
        }
        owner = g_thread_new("bias-owner", bias_owner_thread, br);
        while (qatomic_read(&br->owner_ops) < 100) {
            g_assert_cmpuint(++spins, <, SPIN_CAP);
            g_thread_yield();
        }
        bias_churn(br->other_timers, rand, NULL, NULL, 200);
        qatomic_set(&br->stop, true);
        g_thread_join(owner);

        g_assert_true(qatomic_read(&tl->active_timers_lock.owner) ==
                      TIMER_LOCK_SHARED);
        g_assert_cmpuint(qatomic_read(&tl->active_timers_lock.owner_in), ==,
                         0);
        queue_check(&tl->queue);
        for (int i = 0; i < BIAS_TIMERS; i++) {
            pending += timer_pending(&br->owner_timers[i]);
            pending += timer_pending(&br->other_timers[i]);
        }
        g_assert_cmpuint(qaio_int_timer_queue_count(&tl->queue), ==,
                         pending);
        for (int i = 0; i < BIAS_TIMERS; i++) {
            timer_del(&br->owner_timers[i]);
            timer_del(&br->other_timers[i]);
        }
        g_assert_false(timerlist_has_timers(tl));
        timerlistgroup_deinit(&br->tlg);
    }
    g_rand_free(rand);
    g_free(br);
}

/*
 * The group functions skip all-empty groups with one test; a timer on any
 * single clock must still be seen by both.
 */
static void test_list_group_sees_each_clock(void)
{
    QEMUTimerListGroup tlg;
    GArray *log = g_array_new(false, false, sizeof(int));
    LogTimer t[QEMU_CLOCK_MAX];

    timerlistgroup_init(&tlg, ignore_notify, NULL);
    g_assert_false(timerlistgroup_run_timers(&tlg));
    g_assert_cmpint(timerlistgroup_deadline_ns(&tlg), ==, -1);
    for (int type = 0; type < QEMU_CLOCK_MAX; type++) {
        log_timer_init(&t[type], &tlg, type, type, log);

        timer_mod_ns(&t[type].timer, INT64_MAX);
        g_assert_cmpint(timerlistgroup_deadline_ns(&tlg), >, 0);
        g_assert_false(timerlistgroup_run_timers(&tlg));
        timer_mod_ns(&t[type].timer, 0);
        g_assert_cmpint(timerlistgroup_deadline_ns(&tlg), ==, 0);
        g_assert_true(timerlistgroup_run_timers(&tlg));
        g_assert_cmpuint(log->len, ==, type + 1);
        g_assert_cmpint(g_array_index(log, int, type), ==, type);
        g_assert_false(timerlistgroup_run_timers(&tlg));
        g_assert_cmpint(timerlistgroup_deadline_ns(&tlg), ==, -1);
    }
    timerlistgroup_deinit(&tlg);
    g_array_free(log, true);
}

#ifdef CONFIG_LINUX
static gpointer init_clocks_slack_thread(gpointer opaque)
{
    int *slack = opaque;

    prctl(PR_SET_TIMERSLACK, 50000UL, 0UL, 0UL, 0UL);
    slack[0] = prctl(PR_GET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);
    init_clocks(ignore_notify);
    slack[1] = prctl(PR_GET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);
    return NULL;
}

/* init_clocks asks for no timer slack, so ppoll timeouts end on time. */
static void test_clock_init_clocks_sets_timer_slack(void)
{
    int slack[2] = { -1, -1 };

    /* In a thread of its own: the setting is per thread. */
    g_thread_join(g_thread_new("init-clocks-slack", init_clocks_slack_thread,
                               slack));
    g_assert_cmpint(slack[0], ==, 50000);
    g_assert_cmpint(slack[1], ==, 1);
}
#endif

/* Utilities */

static void test_util_timeout_ns_to_ms(void)
{
    static const struct {
        int64_t ns;
        int ms;
    } table[] = {
        { -1, -1 },
        { -1000000, -1 },
        { 0, 0 },
        { 1, 1 },
        { 999999, 1 },
        { 1000000, 1 },
        { 1000001, 2 },
        { 1999999, 2 },
        { 2000000, 2 },
        { (int64_t)INT32_MAX * 1000000, INT32_MAX },
        { (int64_t)INT32_MAX * 1000000 + 1, INT32_MAX },
        { INT64_MAX, INT32_MAX },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
        g_assert_cmpint(qemu_timeout_ns_to_ms(table[i].ns), ==, table[i].ms);
    }
}

static void test_util_soonest_timeout(void)
{
    static const struct {
        int64_t a, b, soonest;
    } table[] = {
        { -1, -1, -1 },
        { -1, 0, 0 },
        { 0, -1, 0 },
        { -1, 5, 5 },
        { 5, -1, 5 },
        { 3, 5, 3 },
        { 5, 3, 3 },
        { 7, 7, 7 },
        { INT64_MAX, -1, INT64_MAX },
        { 0, INT64_MAX, 0 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
        g_assert_cmpint(qemu_soonest_timeout(table[i].a, table[i].b), ==,
                        table[i].soonest);
    }
}

static void test_util_poll_ns(void)
{
    int fds[2];
    GPollFD pfd;

    g_assert_cmpint(pipe(fds), ==, 0);
    pfd = (GPollFD) { .fd = fds[0], .events = G_IO_IN };
    /* Nothing to read: a zero timeout returns at once. */
    g_assert_cmpint(qemu_poll_ns(&pfd, 1, 0), ==, 0);
    g_assert_cmpint(pfd.revents, ==, 0);
    g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
    g_assert_cmpint(qemu_poll_ns(&pfd, 1, -1), ==, 1);
    g_assert_cmpint(pfd.revents, ==, G_IO_IN);
    pfd.revents = 0;
    g_assert_cmpint(qemu_poll_ns(&pfd, 1, 3 * NANOSECONDS_PER_SECOND + 5),
                    ==, 1);
    g_assert_cmpint(pfd.revents, ==, G_IO_IN);
    close(fds[0]);
    close(fds[1]);
}

static void test_util_host_clocks(void)
{
    int64_t a = get_clock(), b = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    g_assert_cmpint(use_rt_clock, !=, 0);
    g_assert_cmpint(clock_start, >, 0);
    g_assert_cmpint(clock_start, <=, a);
    g_assert_cmpint(a, <=, b);
    g_assert_cmpint(get_max_clock_jump(), ==, 60 * NANOSECONDS_PER_SECOND);
    g_assert_cmpint(get_clock_realtime(), >, 0);
    (void)cpu_get_host_ticks();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* First, so that it runs before anything calls init_clocks. */
    g_test_add_func("/timer/timer/main-loop-tlg", test_timer_main_loop_tlg);
    g_test_add_func("/timer/clock/virtual-stops-when-disabled",
                    test_clock_virtual_stops_when_disabled);
    g_test_add_func("/timer/clock/virtual-rt-ignores-virtual",
                    test_clock_virtual_rt_ignores_virtual);
    g_test_add_func("/timer/clock/host-is-wall-clock",
                    test_clock_host_is_wall_clock);
    g_test_add_func("/timer/clock/advance-virtual-time-steps",
                    test_clock_advance_virtual_time_steps);
    g_test_add_func("/timer/clock/disable-waits-for-running-callbacks",
                    test_clock_disable_waits_for_running_callbacks);
    g_test_add_func("/timer/clock/disable-from-own-callback",
                    test_clock_disable_from_own_callback);
    g_test_add_func("/timer/clock/virtual-monotonic-across-threads",
                    test_clock_virtual_monotonic_across_threads);
    g_test_add_func("/timer/clock/list-freed-while-walked",
                    test_clock_list_freed_while_walked);
    g_test_add_func("/timer/list/order-by-deadline",
                    test_list_order_by_deadline);
    g_test_add_func("/timer/list/equal-deadlines-fire-in-arming-order",
                    test_list_equal_deadlines_fire_in_arming_order);
    g_test_add_func("/timer/list/callbacks-change-timers",
                    test_list_callbacks_change_timers);
    g_test_add_func("/timer/list/million-random-timers",
                    test_list_million_random_timers);
    g_test_add_func("/timer/list/million-ascending-timers",
                    test_list_million_ascending_timers);
    g_test_add_func("/timer/list/deadline", test_list_deadline);
    g_test_add_func("/timer/list/notify-when-earliest",
                    test_list_notify_when_earliest);
    g_test_add_func("/timer/list/free-with-pending-timer-aborts",
                    test_list_free_with_pending_timer_aborts);
    g_test_add_func("/timer/timer/mod-anticipate", test_timer_mod_anticipate);
    g_test_add_func("/timer/timer/scale-and-state",
                    test_timer_scale_and_state);
    g_test_add_func("/timer/threads/mod-del-exact-callbacks",
                    test_threads_mod_del_exact_callbacks);
    g_test_add_func("/timer/util/timeout-ns-to-ms",
                    test_util_timeout_ns_to_ms);
    g_test_add_func("/timer/util/soonest-timeout", test_util_soonest_timeout);
    g_test_add_func("/timer/util/poll-ns", test_util_poll_ns);
    g_test_add_func("/timer/util/host-clocks", test_util_host_clocks);
    g_test_add_func("/timer/list/earliest-follows-model",
                    test_list_earliest_follows_model);
    g_test_add_func("/timer/list/ties-across-run-and-heap",
                    test_list_ties_across_run_and_heap);
    g_test_add_func("/timer/timer/coarse-scale-saturates",
                    test_timer_coarse_scale_saturates);
    g_test_add_func("/timer/list/lock-wakes-sleeper",
                    test_list_lock_wakes_sleeper);
    g_test_add_func("/timer/list/group-sees-each-clock",
                    test_list_group_sees_each_clock);
    g_test_add_func("/timer/list/heap-tombstones", test_list_heap_tombstones);
    g_test_add_func("/timer/list/lock-bias-claim-and-revoke",
                    test_list_lock_bias_claim_and_revoke);
    g_test_add_func("/timer/threads/lock-bias-revoked-under-load",
                    test_threads_lock_bias_revoked_under_load);
#ifdef CONFIG_LINUX
    g_test_add_func("/timer/clock/init-clocks-sets-timer-slack",
                    test_clock_init_clocks_sets_timer_slack);
#endif
    return g_test_run();
}
