/*
 * test-signals.c: the event loop under a storm of signals.
 *
 * A thread sends SIGUSR1 (handler installed without SA_RESTART) to the
 * thread that runs the loop, tens of thousands of times, each time waiting
 * until the handler ran, so that no signal merges with another.  Most of
 * them land while the loop sleeps in ppoll()/epoll_pwait2(), which then
 * fail with EINTR.  Meanwhile real events arrive: pipe writes acknowledged
 * one by one, a self-rearming timer, and BHs scheduled from the handler
 * itself.  Checked: every event is handled exactly once, nothing aborts,
 * and a wait ends only for a real event, a timer or a signal: every
 * aio_poll(ctx, true) that reports no progress is paid for by a signal of
 * its own (see storm_check_false_return()).  Registered with 'fdmon'
 * (QAIO_FDMON=poll and =epoll) and 'mt'.
 *
 * Threading: the main thread (or an IOThread) runs the loop and receives
 * the signals; a sender and a writer thread drive it.  The handler only
 * uses atomics and the async-signal-safe qemu_bh_schedule().
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qaio/iothread.h"
#include <signal.h>
#include <sys/syscall.h>

#include "sanitizer-scale.h"

#define SIGNALS SCALED(50000)
#define WRITES SCALED(20000)
#define TIMER_FIRES SCALED(2000)
#define BH_EVERY 8              /* the handler schedules a BH every 8th */
#define WATCHDOG_MS 10000

/* ---- The handler --------------------------------------------------------- */

static struct {
    QEMUBH *bh;                 /* NULL when no BH is to be scheduled */
    unsigned delivered;         /* atomic */
    unsigned bh_requests;       /* atomic */
} sig;

static void sigusr1_handler(int signum)
{
    unsigned n = qatomic_fetch_inc(&sig.delivered) + 1;
    QEMUBH *bh = qatomic_read(&sig.bh);

    if (bh && n % BH_EVERY == 0) {
        qatomic_inc(&sig.bh_requests);
        qemu_bh_schedule(bh);
    }
}

static struct sigaction old_action;

static void handler_install(void)
{
    struct sigaction sa = { .sa_handler = sigusr1_handler };

    /* No SA_RESTART: interrupted system calls fail with EINTR. */
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    g_assert_cmpint(sigaction(SIGUSR1, &sa, &old_action), ==, 0);
    qatomic_set(&sig.delivered, 0);
    qatomic_set(&sig.bh_requests, 0);
}

static void handler_remove(void)
{
    g_assert_cmpint(sigaction(SIGUSR1, &old_action, NULL), ==, 0);
}

/* ---- The sender ---------------------------------------------------------- */

typedef struct Sender {
    QemuThread thread;
    pid_t tid;                  /* the thread to interrupt */
    QEMUBH *done_bh;            /* scheduled once every signal is delivered */
} Sender;

/* One signal at a time: send it, then wait until the handler counted it. */
static void *sender_fn(void *opaque)
{
    Sender *s = opaque;
    int i;

    for (i = 0; i < SIGNALS; i++) {
        unsigned before = qatomic_read(&sig.delivered);
        int64_t deadline = g_get_monotonic_time() + WATCHDOG_MS * 1000;
        unsigned long spins = 0;

        g_assert_cmpint(syscall(SYS_tgkill, getpid(), s->tid, SIGUSR1), ==,
                        0);
        while (qatomic_read(&sig.delivered) == before) {
            sched_yield();
            if (++spins % 1024 == 0 && g_get_monotonic_time() > deadline) {
                fprintf(stderr, "signal %d was not delivered within %d ms\n",
                        i, WATCHDOG_MS);
                abort();
            }
        }
    }
    /* A BH, not aio_notify(): the home thread's wait ends with progress. */
    qemu_bh_schedule(s->done_bh);
    return NULL;
}

/* ---- The storm against aio_poll() or a GMainContext ---------------------- */

typedef struct Storm {
    AioContext *ctx;
    GMainContext *gctx;         /* NULL: driven by aio_poll() */
    int rfd, wfd;
    QemuSemaphore ack;
    QEMUTimer timer;
    QEMUBH *done_bh[2];         /* sender, writer */
    int done;                   /* home thread */
    long reads, timer_fires, bh_runs, polls, true_returns, false_returns;
    unsigned last_false_delivered;
    long unexplained;           /* false returns without a new signal */
} Storm;

static void storm_read_cb(void *opaque)
{
    Storm *st = opaque;
    char c;

    g_assert_cmpint(read(st->rfd, &c, 1), ==, 1);
    st->reads++;
    qemu_sem_post(&st->ack);
}

static void storm_timer_cb(void *opaque)
{
    Storm *st = opaque;

    if (++st->timer_fires < TIMER_FIRES) {
        timer_mod_ns(&st->timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                                 100 * SCALE_US);
    }
}

static void storm_bh_cb(void *opaque)
{
    Storm *st = opaque;

    st->bh_runs++;
}

static void storm_done_cb(void *opaque)
{
    Storm *st = opaque;

    st->done++;
}

static void *writer_fn(void *opaque)
{
    Storm *st = opaque;
    int i;

    for (i = 0; i < WRITES; i++) {
        g_assert_cmpint(write(st->wfd, "w", 1), ==, 1);
        if (qemu_sem_timedwait(&st->ack, WATCHDOG_MS) != 0) {
            fprintf(stderr, "write %d was not handled within %d ms "
                    "(QAIO_FDMON=%s)\n", i, WATCHDOG_MS,
                    g_getenv("QAIO_FDMON") ?: "");
            abort();
        }
    }
    qemu_bh_schedule(st->done_bh[1]);
    return NULL;
}

/*
 * An iteration that made no progress must have been ended by a signal:
 * EINTR, or the eventfd that a BH scheduled from the handler wrote while
 * the loop slept.  One signal should end at most one such iteration, so
 * there should be a signal delivered since the previous one.  A loop that
 * spins (a wait that returns at once for no reason) produces thousands of
 * iterations that break this and fails here at once.
 *
 * Exactly one unexplained iteration was seen once in about forty runs
 * under AddressSanitizer (an open question, see docs/RELIABILITY.md), so
 * up to MAX_UNEXPLAINED are tolerated and reported; more fail.
 */
#define MAX_UNEXPLAINED 2

static void storm_check_false_return(Storm *st)
{
    unsigned now = qatomic_read(&sig.delivered);

    if (now == st->last_false_delivered) {
        st->unexplained++;
        g_test_message("iteration %ld made no progress and no signal came "
                       "since the previous such iteration (%u signals)",
                       st->polls, now);
        if (st->unexplained > MAX_UNEXPLAINED) {
            g_error("%ld iterations made no progress without a signal "
                    "(%u signals, %ld idle iterations, QAIO_FDMON=%s)",
                    st->unexplained, now, st->false_returns,
                    g_getenv("QAIO_FDMON") ?: "");
        }
    }
    st->last_false_delivered = now;
    st->false_returns++;
}

static bool storm_finished(Storm *st)
{
    return st->done == 2 && st->timer_fires == TIMER_FIRES &&
           st->bh_runs >= 1 &&
           !timer_pending(&st->timer);
}

static void storm_run(bool gsource)
{
    Storm st = { 0 };
    Sender sender = { .tid = qemu_get_thread_id() };
    QemuThread writer;
    int64_t start;
    int fds[2];
    int i;

    st.ctx = aio_context_new(&error_abort);
    if (gsource) {
        GSource *src = aio_get_g_source(st.ctx);

        st.gctx = g_main_context_new();
        g_source_attach(src, st.gctx);
        g_source_unref(src);
    }
    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    st.rfd = fds[0];
    st.wfd = fds[1];
    qemu_sem_init(&st.ack, 0);
    aio_set_fd_handler(st.ctx, st.rfd, storm_read_cb, NULL, NULL, NULL, &st);
    aio_timer_init(st.ctx, &st.timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                   storm_timer_cb, &st);
    for (i = 0; i < 2; i++) {
        st.done_bh[i] = aio_bh_new(st.ctx, storm_done_cb, &st);
    }
    sender.done_bh = st.done_bh[0];
    while (gsource ? g_main_context_iteration(st.gctx, false)
                   : aio_poll(st.ctx, false)) {
        /* settle */
    }

    handler_install();
    qatomic_set(&sig.bh, aio_bh_new(st.ctx, storm_bh_cb, &st));
    timer_mod_ns(&st.timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
    start = g_get_monotonic_time();
    qemu_thread_create(&sender.thread, "signal-sender", sender_fn, &sender,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_create(&writer, "pipe-writer", writer_fn, &st,
                       QEMU_THREAD_JOINABLE);

    while (!storm_finished(&st)) {
        bool progress;

        if (gsource) {
            progress = g_main_context_iteration(st.gctx, true);
        } else {
            progress = aio_poll(st.ctx, true);
        }
        st.polls++;
        if (progress) {
            st.true_returns++;
        } else {
            storm_check_false_return(&st);
        }
    }
    qemu_thread_join(&sender.thread);
    qemu_thread_join(&writer);

    /* The last BH requests may still be queued: run them, signals off. */
    handler_remove();
    while (gsource ? g_main_context_iteration(st.gctx, false)
                   : aio_poll(st.ctx, false)) {
        /* settle */
    }
    g_test_message("%u signals, %ld writes, %ld timer runs, %ld BHs in "
                   "%" PRId64 " ms: %ld iterations, %ld without progress",
                   sig.delivered, st.reads, st.timer_fires, st.bh_runs,
                   (g_get_monotonic_time() - start) / 1000, st.polls,
                   st.false_returns);

    g_assert_cmpuint(sig.delivered, ==, SIGNALS);
    g_assert_cmpint(st.reads, ==, WRITES);
    g_assert_cmpint(st.timer_fires, ==, TIMER_FIRES);
    /* Requests merge while the BH is pending; it ran at least once since. */
    g_assert_cmpint(st.bh_runs, >=, 1);
    g_assert_cmpint(st.bh_runs, <=, sig.bh_requests);
    g_assert_cmpuint(sig.bh_requests, ==, SIGNALS / BH_EVERY);
    g_assert_cmpint(st.false_returns, <=, sig.delivered);
    if (!gsource) {
        /*
         * Each iteration with progress ran at least one callback: the
         * iterations are bounded by the events plus the signals.
         */
        g_assert_cmpint(st.true_returns, <=,
                        st.reads + st.timer_fires + st.bh_runs + 2);
    }

    qemu_bh_delete(sig.bh);
    qatomic_set(&sig.bh, NULL);
    for (i = 0; i < 2; i++) {
        qemu_bh_delete(st.done_bh[i]);
    }
    aio_set_fd_handler(st.ctx, st.rfd, NULL, NULL, NULL, NULL, NULL);
    timer_del(&st.timer);
    if (gsource) {
        while (g_main_context_iteration(st.gctx, false)) {
            /* settle */
        }
        g_source_destroy(&st.ctx->source);
        g_main_context_unref(st.gctx);
    } else {
        while (aio_poll(st.ctx, false)) {
            /* settle */
        }
    }
    aio_context_unref(st.ctx);
    close(st.rfd);
    close(st.wfd);
    qemu_sem_destroy(&st.ack);
}

static void test_storm_aio_poll(void)
{
    storm_run(false);
}

static void test_storm_gsource(void)
{
    storm_run(true);
}

/* ---- The storm against an IOThread --------------------------------------- */

#define RT_THREADS 2
#define RT_ROUNDS SCALED(20000)         /* per thread */

typedef struct RoundTrip {
    QemuThread thread;
    AioContext *ctx;
    QemuSemaphore ack;
    long acks;                  /* atomic */
} RoundTrip;

static void rt_cb(void *opaque)
{
    RoundTrip *rt = opaque;

    qatomic_inc(&rt->acks);
    qemu_sem_post(&rt->ack);
}

static void *rt_fn(void *opaque)
{
    RoundTrip *rt = opaque;
    int i;

    for (i = 0; i < RT_ROUNDS; i++) {
        aio_bh_schedule_oneshot(rt->ctx, rt_cb, rt);
        if (qemu_sem_timedwait(&rt->ack, WATCHDOG_MS) != 0) {
            fprintf(stderr, "round %d: the IOThread did not run the BH "
                    "within %d ms while being signalled\n", i, WATCHDOG_MS);
            abort();
        }
    }
    return NULL;
}

static void rt_done_cb(void *opaque)
{
}

/* qemu_thread_create() blocks signals in new threads: let SIGUSR1 in. */
static void unblock_cb(void *opaque)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    g_assert_cmpint(pthread_sigmask(SIG_UNBLOCK, &set, NULL), ==, 0);
    qemu_sem_post(opaque);
}

/*
 * An IOThread with the default (adaptive polling) parameters, that
 * unblocked SIGUSR1, signalled without pause while two threads schedule
 * BHs into it and wait for each.
 */
static void test_storm_iothread(void)
{
    IOThread *iothread = iothread_create("signalled", &error_abort);
    AioContext *ctx = iothread_get_aio_context(iothread);
    Sender sender = { .tid = iothread_get_thread_id(iothread) };
    RoundTrip rt[RT_THREADS];
    QemuSemaphore unblocked;
    int64_t start = g_get_monotonic_time();
    int i;

    qemu_sem_init(&unblocked, 0);
    aio_bh_schedule_oneshot(ctx, unblock_cb, &unblocked);
    qemu_sem_wait(&unblocked);
    qemu_sem_destroy(&unblocked);
    handler_install();
    sender.done_bh = aio_bh_new(ctx, rt_done_cb, NULL);
    qemu_thread_create(&sender.thread, "signal-sender", sender_fn, &sender,
                       QEMU_THREAD_JOINABLE);
    for (i = 0; i < RT_THREADS; i++) {
        rt[i] = (RoundTrip){ .ctx = ctx };
        qemu_sem_init(&rt[i].ack, 0);
        qemu_thread_create(&rt[i].thread, "round-trip", rt_fn, &rt[i],
                           QEMU_THREAD_JOINABLE);
    }
    for (i = 0; i < RT_THREADS; i++) {
        qemu_thread_join(&rt[i].thread);
    }
    qemu_thread_join(&sender.thread);
    g_test_message("%u signals to the IOThread during %d round trips, "
                   "%" PRId64 " ms", qatomic_read(&sig.delivered),
                   RT_THREADS * RT_ROUNDS,
                   (g_get_monotonic_time() - start) / 1000);

    qemu_bh_delete(sender.done_bh);
    iothread_destroy(iothread);
    handler_remove();
    g_assert_cmpuint(sig.delivered, ==, SIGNALS);
    for (i = 0; i < RT_THREADS; i++) {
        g_assert_cmpint(rt[i].acks, ==, RT_ROUNDS);
        g_assert_cmpint(qemu_sem_timedwait(&rt[i].ack, 0), !=, 0);
        qemu_sem_destroy(&rt[i].ack);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    init_clocks(NULL);

    g_test_add_func("/signals/storm/aio-poll", test_storm_aio_poll);
    g_test_add_func("/signals/storm/gsource", test_storm_gsource);
    g_test_add_func("/signals/storm/iothread", test_storm_iothread);

    return g_test_run();
}
