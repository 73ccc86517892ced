/*
 * test-aio-multithread.c: one AioContext, several threads.
 *
 * The main thread is the context's home thread and runs aio_poll(); helper
 * threads schedule BHs (a million of them, each counted once), arm timers,
 * call aio_notify() against a sleeping poller, add and remove fd handlers
 * while the loop dispatches, and delete BHs.  A lost wake-up shows up as a
 * hang; a watchdog turns that into an abort naming the test.  Registered
 * with 'fdmon': meson runs it under QAIO_FDMON=poll and =epoll.
 *
 * Threading: per test, the main thread polls and the helpers only use the
 * thread-safe API (qemu_bh_schedule, aio_bh_schedule_oneshot, timer_mod,
 * aio_notify, aio_set_fd_handler, qemu_bh_delete).
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/thread.h"
#include "qaio/fdmon.h"

/* Cap for loops that drive the context until a condition holds. */
#define MAX_ITERATIONS 1000

/* ---- Hang detector ----------------------------------------------------- */

/*
 * Aborts if wd_progress does not move for WATCHDOG_MS: a lost wake-up
 * leaves the poller asleep for ever.  Not a timing assertion: healthy runs
 * make progress thousands of times per second.
 */
#define WATCHDOG_MS 10000

#include "watchdog.h"

static AioContext *ctx_new(void)
{
    return aio_context_new(&error_abort);
}

static void ctx_settle(AioContext *ctx)
{
    int i;

    for (i = 0; i < MAX_ITERATIONS && aio_poll(ctx, false); i++) {
        /* keep going */
    }
    g_assert_false(aio_poll(ctx, false));
}

/* Spin until @cond holds, yielding now and then (the other side runs). */
#define SPIN_UNTIL(cond)                                \
    do {                                                \
        unsigned long spins_ = 0;                       \
        while (!(cond)) {                               \
            if (++spins_ % 64 == 0) {                   \
                g_thread_yield();                       \
            }                                           \
        }                                               \
    } while (0)

/* ---- A million BHs from four threads ------------------------------------ */

#define SCHED_THREADS 4
#define SCHED_TOTAL 1000000
#define SCHED_PER_THREAD (SCHED_TOTAL / SCHED_THREADS)

typedef struct SchedData {
    AioContext *ctx;
    int index;
    QEMUBH *bh;
    unsigned pending;       /* requests not yet seen by the BH; atomic */
    long done;              /* home thread only */
    long *total;            /* home thread only */
} SchedData;

static void oneshot_count_cb(void *opaque)
{
    SchedData *sd = opaque;

    sd->done++;
    (*sd->total)++;
    if (*sd->total % 4096 == 0) {
        progress();
    }
}

static void *oneshot_producer(void *opaque)
{
    SchedData *sd = opaque;
    int i;

    for (i = 0; i < SCHED_PER_THREAD; i++) {
        aio_bh_schedule_oneshot(sd->ctx, oneshot_count_cb, sd);
    }
    return NULL;
}

static void test_bh_oneshot_million(void)
{
    AioContext *ctx = ctx_new();
    QemuThread threads[SCHED_THREADS];
    SchedData sd[SCHED_THREADS];
    long total = 0;
    int i;

    watchdog_start("bh/oneshot-million");
    for (i = 0; i < SCHED_THREADS; i++) {
        sd[i] = (SchedData){ .ctx = ctx, .index = i, .total = &total };
        qemu_thread_create(&threads[i], "producer", oneshot_producer, &sd[i],
                           QEMU_THREAD_JOINABLE);
    }
    /* Every callback made it: the poller never sleeps through the last. */
    while (total < SCHED_TOTAL) {
        aio_poll(ctx, true);
    }
    for (i = 0; i < SCHED_THREADS; i++) {
        qemu_thread_join(&threads[i]);
    }
    ctx_settle(ctx);
    watchdog_stop();

    g_assert_cmpint(total, ==, SCHED_TOTAL);
    for (i = 0; i < SCHED_THREADS; i++) {
        g_assert_cmpint(sd[i].done, ==, SCHED_PER_THREAD);
    }
    aio_context_unref(ctx);
}

/*
 * Reusable BHs: a producer counts a request, then schedules its BH; the
 * callback takes every request counted so far.  qemu_bh_schedule is
 * idempotent while pending, so most calls merge, yet a request made after
 * the callback started must make it run again: none may be lost.
 */
static void reusable_cb(void *opaque)
{
    SchedData *sd = opaque;
    unsigned got = qatomic_xchg(&sd->pending, 0);

    sd->done += got;
    *sd->total += got;
    progress();
}

static void *reusable_producer(void *opaque)
{
    SchedData *sd = opaque;
    int i;

    for (i = 0; i < SCHED_PER_THREAD; i++) {
        qatomic_inc(&sd->pending);
        qemu_bh_schedule(sd->bh);
    }
    return NULL;
}

static void test_bh_reusable_million(void)
{
    AioContext *ctx = ctx_new();
    QemuThread threads[SCHED_THREADS];
    SchedData sd[SCHED_THREADS];
    long total = 0;
    int i;

    watchdog_start("bh/reusable-million");
    for (i = 0; i < SCHED_THREADS; i++) {
        sd[i] = (SchedData){ .ctx = ctx, .index = i, .total = &total };
        sd[i].bh = aio_bh_new(ctx, reusable_cb, &sd[i]);
    }
    for (i = 0; i < SCHED_THREADS; i++) {
        qemu_thread_create(&threads[i], "producer", reusable_producer, &sd[i],
                           QEMU_THREAD_JOINABLE);
    }
    while (total < SCHED_TOTAL) {
        aio_poll(ctx, true);
    }
    for (i = 0; i < SCHED_THREADS; i++) {
        qemu_thread_join(&threads[i]);
    }
    ctx_settle(ctx);
    watchdog_stop();

    g_assert_cmpint(total, ==, SCHED_TOTAL);
    for (i = 0; i < SCHED_THREADS; i++) {
        g_assert_cmpint(sd[i].done, ==, SCHED_PER_THREAD);
        g_assert_cmpuint(sd[i].pending, ==, 0);
        qemu_bh_delete(sd[i].bh);
    }
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* ---- BH deletion from another thread ------------------------------------ */

#define DELETE_BHS 50000

typedef struct DeleteData {
    AioContext *ctx;
    int *runs;              /* per BH; home thread only */
    QEMUBH *bh;             /* the one the callback belongs to */
    long self_deleted;      /* even BHs that ran and deleted themselves */
} DeleteData;

typedef struct DeleteItem {
    DeleteData *dd;
    int index;
    QEMUBH *bh;
} DeleteItem;

static void delete_item_cb(void *opaque)
{
    DeleteItem *item = opaque;

    item->dd->runs[item->index]++;
    if (item->index % 2 == 0) {
        /* Even ones delete themselves: the thread never touches them. */
        qemu_bh_delete(item->bh);
        qatomic_inc(&item->dd->self_deleted);
        progress();
    }
}

static void *delete_thread(void *opaque)
{
    DeleteItem *items = opaque;
    int i;

    for (i = 0; i < DELETE_BHS; i++) {
        items[i].bh = aio_bh_new(items[i].dd->ctx, delete_item_cb, &items[i]);
        qemu_bh_schedule(items[i].bh);
        if (i % 2) {
            /* Odd ones: deleted at once, racing with the poller. */
            qemu_bh_delete(items[i].bh);
        }
    }
    return NULL;
}

static void test_bh_delete_from_thread(void)
{
    AioContext *ctx = ctx_new();
    DeleteData dd = { .ctx = ctx };
    DeleteItem *items = g_new0(DeleteItem, DELETE_BHS);
    QemuThread thread;
    int i;

    watchdog_start("bh/delete-from-thread");
    dd.runs = g_new0(int, DELETE_BHS);
    for (i = 0; i < DELETE_BHS; i++) {
        items[i] = (DeleteItem){ .dd = &dd, .index = i };
    }
    qemu_thread_create(&thread, "deleter", delete_thread, items,
                       QEMU_THREAD_JOINABLE);
    while (qatomic_read(&dd.self_deleted) < DELETE_BHS / 2) {
        aio_poll(ctx, true);
    }
    qemu_thread_join(&thread);
    /* Frees the odd ones still queued; LeakSanitizer checks the rest. */
    ctx_settle(ctx);
    watchdog_stop();

    for (i = 0; i < DELETE_BHS; i++) {
        if (i % 2 == 0) {
            g_assert_cmpint(dd.runs[i], ==, 1);
        } else {
            g_assert_cmpint(dd.runs[i], <=, 1);
        }
    }
    g_free(dd.runs);
    g_free(items);
    aio_context_unref(ctx);
}

/* ---- Guarded BH rescheduled while its callback polls -------------------- */

#define GUARD_THREADS 2
#define GUARD_ROUNDS 20000

typedef struct GuardData {
    AioContext *ctx;
    MemReentrancyGuard guard;
    QEMUBH *bh;
    int depth;              /* home thread only */
    int max_depth;
    long runs;
    long oneshots;          /* home thread only */
    long oneshots_expected;
    int producers_done;     /* atomic */
} GuardData;

static void guard_oneshot_cb(void *opaque)
{
    GuardData *gd = opaque;

    gd->oneshots++;
}

/*
 * Polls from inside; the producers keep rescheduling this BH meanwhile,
 * but its guard must keep it from running inside itself.
 */
static void guarded_cb(void *opaque)
{
    GuardData *gd = opaque;

    gd->depth++;
    gd->runs++;
    gd->max_depth = MAX(gd->max_depth, gd->depth);
    g_assert_true(gd->guard.engaged_in_io);
    aio_poll(gd->ctx, false);
    aio_poll(gd->ctx, false);
    gd->depth--;
    progress();
}

static void *guard_producer(void *opaque)
{
    GuardData *gd = opaque;
    int i;

    for (i = 0; i < GUARD_ROUNDS; i++) {
        qemu_bh_schedule(gd->bh);
        aio_bh_schedule_oneshot(gd->ctx, guard_oneshot_cb, gd);
    }
    qatomic_inc(&gd->producers_done);
    aio_notify(gd->ctx);
    return NULL;
}

static void guard_body(void)
{
    AioContext *ctx = ctx_new();
    GuardData gd = { .ctx = ctx };
    QemuThread threads[GUARD_THREADS];
    int i;

    gd.oneshots_expected = (long)GUARD_THREADS * GUARD_ROUNDS;
    gd.bh = aio_bh_new_guarded(ctx, guarded_cb, &gd, &gd.guard);
    watchdog_start("bh/guarded-never-reentered");
    for (i = 0; i < GUARD_THREADS; i++) {
        qemu_thread_create(&threads[i], "guard-producer", guard_producer, &gd,
                           QEMU_THREAD_JOINABLE);
    }
    while (qatomic_read(&gd.producers_done) < GUARD_THREADS ||
           gd.oneshots < gd.oneshots_expected) {
        aio_poll(ctx, true);
    }
    for (i = 0; i < GUARD_THREADS; i++) {
        qemu_thread_join(&threads[i]);
    }
    ctx_settle(ctx);
    watchdog_stop();

    g_assert_cmpint(gd.max_depth, ==, 1);
    g_assert_cmpint(gd.depth, ==, 0);
    g_assert_cmpint(gd.runs, >=, 1);
    g_assert_false(gd.guard.engaged_in_io);
    g_assert_cmpint(gd.oneshots, ==, gd.oneshots_expected);

    qemu_bh_delete(gd.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_guarded_never_reentered(void)
{
    /* Each blocked run prints a warning: keep them out of the TAP log. */
    if (g_test_subprocess()) {
        guard_body();
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
}

/* ---- Cross-thread timer_mod wakes a blocked aio_poll -------------------- */

#define TIMER_ROUNDS 1000

typedef struct TimerMT {
    AioContext *ctx;
    QEMUTimer timer;
    QemuSemaphore go;
    int fired;              /* home thread writes, atomic */
    int64_t deadline;
} TimerMT;

static void mt_timer_cb(void *opaque)
{
    TimerMT *tm = opaque;

    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_REALTIME), >=,
                    qatomic_read(&tm->deadline));
    qatomic_inc(&tm->fired);
    progress();
}

static void *timer_arming_thread(void *opaque)
{
    TimerMT *tm = opaque;
    int round;

    for (round = 1; round <= TIMER_ROUNDS; round++) {
        qemu_sem_wait(&tm->go);
        if (round % 4) {
            /* Mostly wait until the poller may be asleep. */
            SPIN_UNTIL(qatomic_read(&tm->ctx->notify_me) != 0);
        }
        qatomic_set(&tm->deadline, qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
        timer_mod_ns(&tm->timer, tm->deadline);
    }
    return NULL;
}

static void test_timer_mod_from_thread(void)
{
    AioContext *ctx = ctx_new();
    TimerMT tm = { .ctx = ctx };
    QemuThread thread;
    long empty_polls = 0;
    int round, i;

    aio_timer_init(ctx, &tm.timer, QEMU_CLOCK_REALTIME, SCALE_NS, mt_timer_cb,
                   &tm);
    qemu_sem_init(&tm.go, 0);
    ctx_settle(ctx);
    watchdog_start("timer/mod-from-thread");
    qemu_thread_create(&thread, "timer-arm", timer_arming_thread, &tm,
                       QEMU_THREAD_JOINABLE);
    for (round = 1; round <= TIMER_ROUNDS; round++) {
        g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);
        qemu_sem_post(&tm.go);
        /*
         * No timer is armed when this starts: only the other thread's
         * timer_mod can end the wait.  A notification left from the last
         * round may end one wait early, with no progress.
         */
        for (i = 0; i < MAX_ITERATIONS && qatomic_read(&tm.fired) < round;
             i++) {
            if (!aio_poll(ctx, true)) {
                empty_polls++;
            }
        }
        g_assert_cmpint(qatomic_read(&tm.fired), ==, round);
    }
    qemu_thread_join(&thread);
    ctx_settle(ctx);
    watchdog_stop();
    g_assert_cmpint(tm.fired, ==, TIMER_ROUNDS);
    /* A blocking poll without progress needs an aio_notify: one a round. */
    g_assert_cmpint(empty_polls, <=, TIMER_ROUNDS);
    g_test_message("%d rounds, %ld polls without progress", TIMER_ROUNDS,
                   empty_polls);
    g_assert_false(timer_pending(&tm.timer));

    qemu_sem_destroy(&tm.go);
    aio_context_unref(ctx);
}

/* ---- aio_notify against a sleeping poller ------------------------------- */

#define NOTIFY_ROUNDS 100000

typedef struct NotifyMT {
    AioContext *ctx;
    unsigned counter;       /* atomic */
    QemuSemaphore seen;
} NotifyMT;

static void *notifying_thread(void *opaque)
{
    NotifyMT *nm = opaque;
    int round;

    for (round = 1; round <= NOTIFY_ROUNDS; round++) {
        qatomic_inc(&nm->counter);
        aio_notify(nm->ctx);
        qemu_sem_wait(&nm->seen);
    }
    return NULL;
}

/*
 * The poller blocks until it sees the counter move; the notifier moves it
 * and calls aio_notify().  Each of the 100,000 rounds must end (the
 * watchdog catches a lost wake-up), and a poll that only a notification
 * ended reports no progress.
 */
static void test_notify_sleeping_poller(void)
{
    AioContext *ctx = ctx_new();
    NotifyMT nm = { .ctx = ctx };
    QemuThread thread;
    unsigned seen = 0;
    long polls = 0;

    qemu_sem_init(&nm.seen, 0);
    ctx_settle(ctx);
    watchdog_start("notify/sleeping-poller");
    qemu_thread_create(&thread, "notifier", notifying_thread, &nm,
                       QEMU_THREAD_JOINABLE);
    while (seen < NOTIFY_ROUNDS) {
        while (qatomic_read(&nm.counter) == seen) {
            g_assert_false(aio_poll(ctx, true));
            polls++;
        }
        seen++;
        g_assert_cmpuint(qatomic_read(&nm.counter), ==, seen);
        progress();
        qemu_sem_post(&nm.seen);
    }
    qemu_thread_join(&thread);
    ctx_settle(ctx);
    watchdog_stop();
    g_test_message("%d rounds took %ld blocking polls", NOTIFY_ROUNDS, polls);

    qemu_sem_destroy(&nm.seen);
    aio_context_unref(ctx);
}

/* ---- fd readable from another thread ------------------------------------ */

#define FD_WAKE_ROUNDS 2000

typedef struct FdWake {
    int rfd;
    int wfd;
    int n;
    QemuSemaphore go;
} FdWake;

static void fd_wake_read_cb(void *opaque)
{
    FdWake *fw = opaque;
    char c;

    g_assert_cmpint(read(fw->rfd, &c, 1), ==, 1);
    fw->n++;
    progress();
}

static void *fd_writer_thread(void *opaque)
{
    FdWake *fw = opaque;
    int round;
    char c = 'w';

    for (round = 0; round < FD_WAKE_ROUNDS; round++) {
        qemu_sem_wait(&fw->go);
        g_assert_cmpint(write(fw->wfd, &c, 1), ==, 1);
    }
    return NULL;
}

/* Each write from the other thread ends exactly one blocking poll. */
static void test_fd_wake_from_thread(void)
{
    AioContext *ctx = ctx_new();
    FdWake fw = { 0 };
    QemuThread thread;
    int fds[2];
    int round;

    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    fw.rfd = fds[0];
    fw.wfd = fds[1];
    qemu_sem_init(&fw.go, 0);
    aio_set_fd_handler(ctx, fw.rfd, fd_wake_read_cb, NULL, NULL, NULL, &fw);
    ctx_settle(ctx);

    watchdog_start("fd/wake-from-thread");
    qemu_thread_create(&thread, "writer", fd_writer_thread, &fw,
                       QEMU_THREAD_JOINABLE);
    for (round = 1; round <= FD_WAKE_ROUNDS; round++) {
        qemu_sem_post(&fw.go);
        g_assert_true(aio_poll(ctx, true));
        g_assert_cmpint(fw.n, ==, round);
    }
    qemu_thread_join(&thread);
    watchdog_stop();

    aio_set_fd_handler(ctx, fw.rfd, NULL, NULL, NULL, NULL, NULL);
    ctx_settle(ctx);
    qemu_sem_destroy(&fw.go);
    close(fw.rfd);
    close(fw.wfd);
    aio_context_unref(ctx);
}

/* ---- fd handlers added and removed from another thread ------------------ */

typedef struct FdPipe {
    struct FdChurn *fc;
    int rfd;
    int wfd;
    int n;                  /* dispatches; home thread only */
} FdPipe;

typedef struct FdChurn {
    AioContext *ctx;
    FdPipe *pipes;
    int npipes;
    int rounds;
    QemuSemaphore fired;    /* one post per dispatch */
    bool done;              /* atomic */
} FdChurn;

static void churn_read_cb(void *opaque)
{
    FdPipe *p = opaque;
    char buf[16];

    /* Empty: not readable again until the thread writes next round. */
    g_assert_cmpint(read(p->rfd, buf, sizeof(buf)), ==, 1);
    p->n++;
    progress();
    qemu_sem_post(&p->fc->fired);
}

/*
 * Each round: make every pipe readable, register its handler, wait until
 * every handler ran, remove them all.  A pipe is readable only while its
 * handler is registered, so each runs exactly once a round.
 */
static void *churn_thread(void *opaque)
{
    FdChurn *fc = opaque;
    int round, i;
    char c = 'c';

    for (round = 0; round < fc->rounds; round++) {
        for (i = 0; i < fc->npipes; i++) {
            FdPipe *p = &fc->pipes[i];

            g_assert_cmpint(write(p->wfd, &c, 1), ==, 1);
            aio_set_fd_handler(fc->ctx, p->rfd, churn_read_cb, NULL, NULL,
                               NULL, p);
        }
        for (i = 0; i < fc->npipes; i++) {
            qemu_sem_wait(&fc->fired);
        }
        for (i = 0; i < fc->npipes; i++) {
            aio_set_fd_handler(fc->ctx, fc->pipes[i].rfd, NULL, NULL, NULL,
                               NULL, NULL);
        }
    }
    qatomic_set(&fc->done, true);
    aio_notify(fc->ctx);
    return NULL;
}

static void fd_churn(AioContext *ctx, int npipes, int rounds)
{
    FdChurn fc = { .ctx = ctx, .npipes = npipes, .rounds = rounds };
    QemuThread thread;
    int i;

    fc.pipes = g_new0(FdPipe, npipes);
    for (i = 0; i < npipes; i++) {
        int fds[2];

        g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
        fc.pipes[i] = (FdPipe){ .fc = &fc, .rfd = fds[0], .wfd = fds[1] };
    }
    qemu_sem_init(&fc.fired, 0);

    qemu_thread_create(&thread, "churn", churn_thread, &fc,
                       QEMU_THREAD_JOINABLE);
    while (!qatomic_read(&fc.done)) {
        aio_poll(ctx, true);
    }
    qemu_thread_join(&thread);
    ctx_settle(ctx);

    for (i = 0; i < npipes; i++) {
        g_assert_cmpint(fc.pipes[i].n, ==, rounds);
        close(fc.pipes[i].rfd);
        close(fc.pipes[i].wfd);
    }
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);
    qemu_sem_destroy(&fc.fired);
    g_free(fc.pipes);
}

static void test_fd_churn_few(void)
{
    AioContext *ctx = ctx_new();

    watchdog_start("fd/add-remove-from-thread");
    fd_churn(ctx, 4, 2000);
    watchdog_stop();
    aio_context_unref(ctx);
}

/*
 * Seventy fds with the default monitor: the context moves from poll to
 * epoll while the other thread adds and removes handlers.
 */
static void test_fd_churn_many_default_fdmon(void)
{
    char *saved = g_strdup(g_getenv("QAIO_FDMON"));
    AioContext *ctx;

    /* The default without io_uring, which starts on poll. */
    g_unsetenv("QAIO_FDMON");
    g_setenv("QAIO_DISABLE_IO_URING", "1", true);
    ctx = ctx_new();
    g_unsetenv("QAIO_DISABLE_IO_URING");
    if (saved) {
        g_setenv("QAIO_FDMON", saved, true);
    }
    g_free(saved);

    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    watchdog_start("fd/add-remove-many-default-fdmon");
    fd_churn(ctx, 70, 200);
    watchdog_stop();
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "epoll");
    aio_context_unref(ctx);
}

/* ---- Another thread acts on a BH while its callback runs ---------------- */

typedef struct RunningData {
    AioContext *ctx;
    QEMUBH *bh;
    int n;                  /* runs; home thread only */
    bool delete;            /* the helper also deletes the BH */
    QemuSemaphore in_cb;    /* the first run has started */
    QemuSemaphore acted;    /* the helper has scheduled (and deleted) */
} RunningData;

static void running_cb(void *opaque)
{
    RunningData *rd = opaque;

    rd->n++;
    progress();
    if (rd->n == 1) {
        qemu_sem_post(&rd->in_cb);
        sem_wait_or_abort(&rd->acted, "schedule from the helper");
    }
}

static void *running_helper(void *opaque)
{
    RunningData *rd = opaque;

    sem_wait_or_abort(&rd->in_cb, "first run of the BH");
    qemu_bh_schedule(rd->bh);
    qemu_bh_schedule(rd->bh);       /* idempotent: still one more run */
    if (rd->delete) {
        qemu_bh_delete(rd->bh);
    }
    qemu_sem_post(&rd->acted);
    return NULL;
}

/*
 * The callback blocks until the helper has acted, so the schedule (and
 * delete) lands while the callback runs.
 */
static void bh_act_while_running(bool delete, const char *what)
{
    AioContext *ctx = ctx_new();
    RunningData rd = { .ctx = ctx, .delete = delete };
    QemuThread thread;

    watchdog_start(what);
    qemu_sem_init(&rd.in_cb, 0);
    qemu_sem_init(&rd.acted, 0);
    rd.bh = aio_bh_new(ctx, running_cb, &rd);
    qemu_thread_create(&thread, "helper", running_helper, &rd,
                       QEMU_THREAD_JOINABLE);

    qemu_bh_schedule(rd.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(rd.n, ==, 1);
    qemu_thread_join(&thread);

    if (!delete) {
        /* Exactly one more run, and the loop does not sleep before it. */
        g_assert_cmpint(aio_compute_timeout(ctx), ==, 0);
        g_assert_true(aio_poll(ctx, true));
        g_assert_cmpint(rd.n, ==, 2);
        qemu_bh_delete(rd.bh);
    }
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(rd.n, ==, delete ? 1 : 2);
    ctx_settle(ctx);
    watchdog_stop();

    qemu_sem_destroy(&rd.in_cb);
    qemu_sem_destroy(&rd.acted);
    aio_context_unref(ctx);
}

static void test_bh_schedule_while_running(void)
{
    bh_act_while_running(false, "bh/schedule-while-running");
}

static void test_bh_delete_while_running(void)
{
    bh_act_while_running(true, "bh/schedule-and-delete-while-running");
}

/*
 * Unsynchronised: a helper schedules the BH again as soon as the callback
 * has acknowledged the previous request, so its schedule races with the
 * end of the callback and with what aio_bh_poll does after it.  Each
 * request comes after the run that acknowledged the previous one started,
 * so each gives exactly one run: none lost, none doubled.
 */
#define RACE_ROUNDS 100000

typedef struct RaceData {
    AioContext *ctx;
    QEMUBH *bh;
    int runs;               /* atomic: the helper reads it */
    QemuSemaphore ack;
} RaceData;

static void race_cb(void *opaque)
{
    RaceData *rc = opaque;

    qatomic_set(&rc->runs, rc->runs + 1);
    if (rc->runs % 1024 == 0) {
        progress();
    }
    qemu_sem_post(&rc->ack);
}

static void *race_helper(void *opaque)
{
    RaceData *rc = opaque;
    int i;

    for (i = 0; i < RACE_ROUNDS; i++) {
        qemu_bh_schedule(rc->bh);
        sem_wait_or_abort(&rc->ack, "run after a schedule");
    }
    return NULL;
}

static void test_bh_schedule_races_release(void)
{
    AioContext *ctx = ctx_new();
    RaceData rc = { .ctx = ctx };
    QemuThread thread;

    watchdog_start("bh/schedule-races-release");
    qemu_sem_init(&rc.ack, 0);
    rc.bh = aio_bh_new(ctx, race_cb, &rc);
    qemu_thread_create(&thread, "helper", race_helper, &rc,
                       QEMU_THREAD_JOINABLE);
    while (qatomic_read(&rc.runs) < RACE_ROUNDS) {
        aio_poll(ctx, true);
    }
    qemu_thread_join(&thread);
    ctx_settle(ctx);
    watchdog_stop();

    g_assert_cmpint(rc.runs, ==, RACE_ROUNDS);
    qemu_bh_delete(rc.bh);
    ctx_settle(ctx);
    qemu_sem_destroy(&rc.ack);
    aio_context_unref(ctx);
}

/*
 * A helper deletes each BH as soon as its callback has started: the
 * delete races with the end of the callback and with what aio_bh_poll
 * does after it; the BH is freed by this or a later aio_bh_poll, or by
 * the context.  AddressSanitizer and ThreadSanitizer check the free;
 * each runs once.
 */
#define DELETE_RACE_BHS 20000

typedef struct DeleteRace {
    AioContext *ctx;
    QEMUBH *bh;
    int runs;               /* home thread only */
    QemuSemaphore started;
} DeleteRace;

static void delete_race_cb(void *opaque)
{
    DeleteRace *dr = opaque;

    dr->runs++;
    progress();
    qemu_sem_post(&dr->started);
}

static void *delete_race_helper(void *opaque)
{
    DeleteRace *items = opaque;
    int i;

    for (i = 0; i < DELETE_RACE_BHS; i++) {
        qemu_bh_schedule(items[i].bh);
        sem_wait_or_abort(&items[i].started, "run of a BH to delete");
        qemu_bh_delete(items[i].bh);
    }
    return NULL;
}

static void test_bh_delete_races_release(void)
{
    AioContext *ctx = ctx_new();
    DeleteRace *items = g_new0(DeleteRace, DELETE_RACE_BHS);
    QemuThread thread;
    int i, done;

    watchdog_start("bh/delete-races-release");
    for (i = 0; i < DELETE_RACE_BHS; i++) {
        items[i].ctx = ctx;
        items[i].bh = aio_bh_new(ctx, delete_race_cb, &items[i]);
        qemu_sem_init(&items[i].started, 0);
    }
    qemu_thread_create(&thread, "deleter", delete_race_helper, items,
                       QEMU_THREAD_JOINABLE);
    /* The last BH's run is the last one: items run in order. */
    while (items[DELETE_RACE_BHS - 1].runs == 0) {
        aio_poll(ctx, true);
    }
    qemu_thread_join(&thread);
    ctx_settle(ctx);
    watchdog_stop();

    for (i = 0, done = 0; i < DELETE_RACE_BHS; i++) {
        done += items[i].runs;
        qemu_sem_destroy(&items[i].started);
    }
    g_assert_cmpint(done, ==, DELETE_RACE_BHS);
    g_free(items);
    aio_context_unref(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    init_clocks(NULL);

    g_test_add_func("/aio-mt/bh/oneshot-million", test_bh_oneshot_million);
    g_test_add_func("/aio-mt/bh/reusable-million", test_bh_reusable_million);
    g_test_add_func("/aio-mt/bh/delete-from-thread",
                    test_bh_delete_from_thread);
    g_test_add_func("/aio-mt/bh/guarded-never-reentered",
                    test_bh_guarded_never_reentered);
    g_test_add_func("/aio-mt/timer/mod-from-thread-wakes-poll",
                    test_timer_mod_from_thread);
    g_test_add_func("/aio-mt/notify/sleeping-poller",
                    test_notify_sleeping_poller);
    g_test_add_func("/aio-mt/fd/wake-from-thread", test_fd_wake_from_thread);
    g_test_add_func("/aio-mt/fd/add-remove-from-thread", test_fd_churn_few);
    g_test_add_func("/aio-mt/fd/add-remove-many-default-fdmon",
                    test_fd_churn_many_default_fdmon);

    g_test_add_func("/aio-mt/bh/schedule-while-running-runs-once-more",
                    test_bh_schedule_while_running);
    g_test_add_func("/aio-mt/bh/schedule-and-delete-while-running",
                    test_bh_delete_while_running);
    g_test_add_func("/aio-mt/bh/schedule-races-release",
                    test_bh_schedule_races_release);
    g_test_add_func("/aio-mt/bh/delete-races-release",
                    test_bh_delete_races_release);

    return g_test_run();
}
