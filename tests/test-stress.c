/*
 * test-stress.c: the core event loop under load, with exact accounting,
 * and the bug classes of docs/RELIABILITY.md that need more than one
 * thread or a long run to show up.
 *
 * Covers: producers x IOThreads mixing BHs, one-shot BHs, cross-thread
 * timer_mod and eventfd writes; IOThread churn with work in flight; fd
 * handlers added, modified and removed from other threads (handlers that
 * remove themselves or close their own fd), with and without crossing the
 * poll -> epoll threshold; a million schedule/ack round trips; stopping
 * idle IOThreads, and IOThreads onto which coroutines are being
 * scheduled; and single-threaded regressions: notify/accept, BHs that
 * delete each other, guarded re-entrancy, level-triggered fds, timer
 * rounding, io_poll_ready, adaptive polling and the CPU an idle context
 * burns.  The block layer: thread pool jobs submitted from IOThreads (by
 * callback and from coroutines) and cancelled while producers keep
 * scheduling into them; IOThread churn with pool jobs and Linux AIO /
 * io_uring requests in flight; many coroutines doing random reads and
 * writes through both engines with every byte checked; pools freed while
 * their workers exit on the idle timeout; and engines created by one
 * thread and driven by another at twice their queue depth.  Registered with
 * 'fdmon' (QAIO_FDMON=poll, =epoll, =io_uring) and 'mt'.
 *
 * Counts shrink under the sanitizers (SLOWDOWN); the assertions do not.
 * Nothing sleeps: waits are on semaphores or on the loop itself, and a
 * watchdog turns a hang into an abort that names what was stuck.  The only
 * timing assertion is the idle-CPU bound, with a 20x margin (see there).
 *
 * Threading: each case says which thread is the home thread of which
 * context.  Callbacks touch shared counters with atomics, or only from the
 * home thread and read them after a semaphore or a join.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/raw-aio.h"
#include "block/thread-pool.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qaio/fdmon.h"
#include "qaio/iothread.h"
#include "qaio/metrics.h"
#include "../src/blk-int.h"         /* LAIO_MAX_EVENTS */
#include "../src/thread-pool-int.h" /* worker counts, the idle timeout */
#include "thread-probe.h"
#include <sys/eventfd.h>

#include "sanitizer-scale.h"

/* ---- Hang detector ---------------------------------------------------- */

/*
 * A lost wake-up leaves a thread asleep for ever.  These turn that into
 * an abort naming the case after WATCHDOG_MS without progress; healthy
 * runs make progress thousands of times a second, so this is not a timing
 * assertion.
 */
#define WATCHDOG_MS 10000

#include "watchdog.h"
#include "proc-count.h"

/* ---- Helpers ------------------------------------------------------------ */

static void make_pipe(int fds[2])
{
    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
}

/* Run @ctx until it has nothing left to do. */
static void ctx_settle(AioContext *ctx)
{
    int i;

    for (i = 0; i < 1000 && aio_poll(ctx, false); i++) {
        /* keep going */
    }
    g_assert_false(aio_poll(ctx, false));
}

/*
 * The monitor a context ends up on once it watches many fds: the forced
 * one, or epoll by default.
 */
static const char *fdmon_when_many(void)
{
    const char *want = g_getenv("QAIO_FDMON");

    if (want && (!strcmp(want, "poll") || !strcmp(want, "io_uring"))) {
        return want;
    }
    return "epoll";
}

/*
 * Create a context, or an IOThread, with no QAIO_FDMON in the environment
 * and without io_uring, so that it starts on poll(2) and moves to epoll at
 * 64 fds.
 */
static char *fdmon_env_clear(void)
{
    char *saved = g_strdup(g_getenv("QAIO_FDMON"));

    g_unsetenv("QAIO_FDMON");
    g_setenv("QAIO_DISABLE_IO_URING", "1", true);
    return saved;
}

static void fdmon_env_restore(char *saved)
{
    g_unsetenv("QAIO_DISABLE_IO_URING");
    if (saved) {
        g_setenv("QAIO_FDMON", saved, true);
    }
    g_free(saved);
}

static int64_t now_ns(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

/* ======================================================================= */
/* Section 3: stress with exact accounting                                 */
/* ======================================================================= */

/* ---- Producers x IOThreads: BHs, one-shots, timers, eventfds ---------- */

#define MIX_PRODUCERS 4
#define MIX_CTXS 3
#define MIX_OPS SCALED(150000)          /* per producer */

enum {
    MIX_ONESHOT,
    MIX_BH,
    MIX_TIMER,
    MIX_EVENTFD,
    MIX_NOTIFY,                         /* noise: nothing to account */
    MIX_KINDS
};

typedef struct Mix Mix;

/* What one producer sends to one context. */
typedef struct MixLane {
    Mix *mix;
    AioContext *ctx;
    QEMUBH *bh;
    QEMUTimer timer;
    int efd;
    unsigned bh_pending;                /* atomic */
    unsigned timer_pending;             /* atomic */
    long produced[MIX_KINDS];           /* the producer's */
    long consumed[MIX_KINDS];           /* atomic: the IOThread's */
} MixLane;

/* One one-shot BH: it must run exactly once, in its lane's context. */
typedef struct MixItem {
    MixLane *lane;
    int runs;                           /* atomic */
} MixItem;

typedef struct MixProducer {
    Mix *mix;
    int index;
    QemuThread thread;
    uint8_t *ctx_of;                    /* the plan: context of op i */
    uint8_t *kind_of;                   /* and its kind */
    MixItem *items;
} MixProducer;

struct Mix {
    IOThread *iothreads[MIX_CTXS];
    MixLane lanes[MIX_PRODUCERS][MIX_CTXS];
    MixProducer producers[MIX_PRODUCERS];
    long expected;                      /* accountable operations */
    long consumed;                      /* atomic */
    int wrong_thread;                   /* atomic */
    QemuSemaphore done;
};

static void mix_consume(MixLane *lane, int kind, long n)
{
    Mix *mix = lane->mix;

    if (qemu_get_current_aio_context() != lane->ctx) {
        qatomic_inc(&mix->wrong_thread);
    }
    if (!n) {
        return;
    }
    qatomic_add(&lane->consumed[kind], n);
    if (qatomic_fetch_add(&mix->consumed, n) + n == mix->expected) {
        qemu_sem_post(&mix->done);
    }
    progress();
}

static void mix_oneshot_cb(void *opaque)
{
    MixItem *item = opaque;

    qatomic_inc(&item->runs);
    mix_consume(item->lane, MIX_ONESHOT, 1);
}

/* Each request is counted before the schedule, so none is lost. */
static void mix_bh_cb(void *opaque)
{
    MixLane *lane = opaque;

    mix_consume(lane, MIX_BH, qatomic_xchg(&lane->bh_pending, 0));
}

static void mix_timer_cb(void *opaque)
{
    MixLane *lane = opaque;

    mix_consume(lane, MIX_TIMER, qatomic_xchg(&lane->timer_pending, 0));
}

/* The eventfd counts the writes itself: one read takes them all. */
static void mix_efd_cb(void *opaque)
{
    MixLane *lane = opaque;
    uint64_t v = 0;

    if (read(lane->efd, &v, sizeof(v)) != sizeof(v)) {
        g_assert_cmpint(errno, ==, EAGAIN);
        v = 0;
    }
    mix_consume(lane, MIX_EVENTFD, v);
}

static void *mix_producer_fn(void *opaque)
{
    MixProducer *p = opaque;
    const uint64_t one = 1;
    int i;

    for (i = 0; i < MIX_OPS; i++) {
        MixLane *lane = &p->mix->lanes[p->index][p->ctx_of[i]];
        int kind = p->kind_of[i];

        lane->produced[kind]++;
        switch (kind) {
        case MIX_ONESHOT:
            p->items[i].lane = lane;
            aio_bh_schedule_oneshot(lane->ctx, mix_oneshot_cb, &p->items[i]);
            break;
        case MIX_BH:
            qatomic_inc(&lane->bh_pending);
            qemu_bh_schedule(lane->bh);
            break;
        case MIX_TIMER:
            qatomic_inc(&lane->timer_pending);
            timer_mod_ns(&lane->timer, now_ns() + (i % 4) * 20 * SCALE_US);
            break;
        case MIX_EVENTFD:
            g_assert_cmpint(write(lane->efd, &one, sizeof(one)), ==,
                            sizeof(one));
            break;
        case MIX_NOTIFY:
            aio_notify(lane->ctx);
            break;
        }
    }
    return NULL;
}

/*
 * MIX_PRODUCERS threads each run MIX_OPS operations of random kinds into
 * MIX_CTXS IOThreads.  Every one-shot BH runs exactly once, in the right
 * thread; every reusable-BH request, timer request and eventfd write is
 * consumed exactly once; nothing runs after the IOThreads are destroyed.
 */
static void test_mix(void)
{
    Mix *mix = g_new0(Mix, 1);
    int fds = count_fds();
    int64_t start;
    int p, c, k, i;

    qemu_sem_init(&mix->done, 0);
    for (c = 0; c < MIX_CTXS; c++) {
        g_autofree char *name = g_strdup_printf("mix%d", c);

        mix->iothreads[c] = iothread_create(name, &error_abort);
    }
    for (p = 0; p < MIX_PRODUCERS; p++) {
        MixProducer *prod = &mix->producers[p];
        GRand *rand = g_rand_new_with_seed(p + 1);

        for (c = 0; c < MIX_CTXS; c++) {
            MixLane *lane = &mix->lanes[p][c];

            lane->mix = mix;
            lane->ctx = iothread_get_aio_context(mix->iothreads[c]);
            lane->bh = aio_bh_new(lane->ctx, mix_bh_cb, lane);
            aio_timer_init(lane->ctx, &lane->timer, QEMU_CLOCK_REALTIME,
                           SCALE_NS, mix_timer_cb, lane);
            lane->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            g_assert_cmpint(lane->efd, >=, 0);
            /* Added from this thread while the IOThread polls. */
            aio_set_fd_handler(lane->ctx, lane->efd, mix_efd_cb, NULL, NULL,
                               NULL, lane);
        }

        *prod = (MixProducer){ .mix = mix, .index = p };
        prod->ctx_of = g_new(uint8_t, MIX_OPS);
        prod->kind_of = g_new(uint8_t, MIX_OPS);
        prod->items = g_new0(MixItem, MIX_OPS);
        for (i = 0; i < MIX_OPS; i++) {
            prod->ctx_of[i] = g_rand_int_range(rand, 0, MIX_CTXS);
            prod->kind_of[i] = g_rand_int_range(rand, 0, MIX_KINDS);
            if (prod->kind_of[i] != MIX_NOTIFY) {
                mix->expected++;
            }
        }
        g_rand_free(rand);
    }

    start = g_get_monotonic_time();
    for (p = 0; p < MIX_PRODUCERS; p++) {
        qemu_thread_create(&mix->producers[p].thread, "mix-producer",
                           mix_producer_fn, &mix->producers[p],
                           QEMU_THREAD_JOINABLE);
    }
    for (;;) {
        unsigned long before = qatomic_read(&wd_progress);

        if (qemu_sem_timedwait(&mix->done, WATCHDOG_MS) == 0) {
            break;
        }
        if (qatomic_read(&wd_progress) == before) {
            fprintf(stderr, "watchdog: mix stuck at %ld of %ld\n",
                    qatomic_read(&mix->consumed), mix->expected);
            abort();
        }
    }
    for (p = 0; p < MIX_PRODUCERS; p++) {
        qemu_thread_join(&mix->producers[p].thread);
    }
    g_test_message("mix: %d threads x %d IOThreads, %ld operations "
                   "(+ notifies) in %" PRId64 " ms",
                   MIX_PRODUCERS, MIX_CTXS, mix->expected,
                   (g_get_monotonic_time() - start) / 1000);

    /* Tear down from this thread while the IOThreads still run. */
    for (p = 0; p < MIX_PRODUCERS; p++) {
        for (c = 0; c < MIX_CTXS; c++) {
            MixLane *lane = &mix->lanes[p][c];

            aio_set_fd_handler(lane->ctx, lane->efd, NULL, NULL, NULL, NULL,
                               NULL);
            qemu_bh_delete(lane->bh);
            timer_del(&lane->timer);
        }
    }
    for (c = 0; c < MIX_CTXS; c++) {
        iothread_destroy(mix->iothreads[c]);
    }

    /* Exactly once each: a doubled run would push consumed past expected. */
    g_assert_cmpint(mix->consumed, ==, mix->expected);
    g_assert_cmpint(mix->wrong_thread, ==, 0);
    for (p = 0; p < MIX_PRODUCERS; p++) {
        MixProducer *prod = &mix->producers[p];

        for (c = 0; c < MIX_CTXS; c++) {
            MixLane *lane = &mix->lanes[p][c];

            for (k = 0; k < MIX_NOTIFY; k++) {
                g_assert_cmpint(lane->consumed[k], ==, lane->produced[k]);
            }
            g_assert_cmpuint(lane->bh_pending, ==, 0);
            g_assert_cmpuint(lane->timer_pending, ==, 0);
            timer_deinit(&lane->timer);
            close(lane->efd);
        }
        for (i = 0; i < MIX_OPS; i++) {
            g_assert_cmpint(prod->items[i].runs, ==,
                            prod->kind_of[i] == MIX_ONESHOT);
        }
        g_free(prod->ctx_of);
        g_free(prod->kind_of);
        g_free(prod->items);
    }
    g_assert_cmpint(count_fds(), ==, fds);
    qemu_sem_destroy(&mix->done);
    g_free(mix);
}

/* ---- IOThread churn with work in flight ------------------------------- */

#define CHURN_SLOTS 2
#define CHURN_PRODUCERS 2
#define CHURN_CYCLES SCALED(150)
#define CHURN_BURST 32

/* One IOThread's life in a slot. */
typedef struct ChurnGen {
    IOThread *iothread;
    AioContext *ctx;
    int stopping;           /* atomic: set just before iothread_destroy() */
    int destroyed;          /* atomic: set once iothread_destroy() returned */
    long scheduled;         /* atomic: one-shots queued */
    long must_run;          /* atomic: queued before "stopping" was set */
    long runs;              /* atomic: one-shots run */
    long bh_runs;           /* atomic: runs of BHs deleted right away */
    long late_runs;         /* atomic: runs after iothread_destroy() */
    long wrong_thread;      /* atomic */
} ChurnGen;

typedef struct ChurnSlot {
    QemuMutex lock;
    ChurnGen *cur;          /* under lock */
} ChurnSlot;

typedef struct Churn {
    ChurnSlot slots[CHURN_SLOTS];
    GPtrArray *gens;        /* every ChurnGen, freed at the end */
    int stop;               /* atomic: producers exit */
    long ops;               /* atomic */
    int cycle;
} Churn;

static void churn_check_cb(ChurnGen *g)
{
    if (qatomic_read(&g->destroyed)) {
        qatomic_inc(&g->late_runs);
    }
    if (qemu_get_current_aio_context() != g->ctx) {
        qatomic_inc(&g->wrong_thread);
    }
}

static void churn_oneshot_cb(void *opaque)
{
    ChurnGen *g = opaque;

    churn_check_cb(g);
    qatomic_inc(&g->runs);
}

static void churn_bh_cb(void *opaque)
{
    ChurnGen *g = opaque;

    churn_check_cb(g);
    qatomic_inc(&g->bh_runs);
}

static ChurnGen *churn_gen_new(Churn *ch, int slot)
{
    ChurnGen *g = g_new0(ChurnGen, 1);
    g_autofree char *name = g_strdup_printf("churn%d-%d", slot, ch->cycle);

    g->iothread = iothread_create(name, &error_abort);
    g->ctx = iothread_get_aio_context(g->iothread);
    /*
     * The test drops the last reference itself, after joining the
     * producers: GLib's reference count is invisible to ThreadSanitizer,
     * which would otherwise see the thread that frees the context race
     * with the others' last accesses.
     */
    aio_context_ref(g->ctx);
    g_ptr_array_add(ch->gens, g);
    return g;
}

/*
 * Producers may still hold references to the context and schedule into
 * it; what they queued before "stopping" must have run, and nothing runs
 * once iothread_destroy() has returned.
 */
static void churn_gen_retire(ChurnGen *g)
{
    qatomic_set(&g->stopping, 1);
    smp_mb();
    iothread_destroy(g->iothread);
    qatomic_set(&g->destroyed, 1);

    g_assert_cmpint(qatomic_read(&g->runs), >=, qatomic_read(&g->must_run));
}

static void *churn_producer_fn(void *opaque)
{
    Churn *ch = opaque;
    GRand *rand = g_rand_new_with_seed(g_str_hash("churn"));
    int i;

    while (!qatomic_read(&ch->stop)) {
        ChurnSlot *slot = &ch->slots[g_rand_int_range(rand, 0, CHURN_SLOTS)];
        ChurnGen *g;

        /* The reference keeps the context valid after its IOThread. */
        qemu_mutex_lock(&slot->lock);
        g = slot->cur;
        aio_context_ref(g->ctx);
        qemu_mutex_unlock(&slot->lock);

        for (i = 0; i < CHURN_BURST; i++) {
            aio_bh_schedule_oneshot(g->ctx, churn_oneshot_cb, g);
            qatomic_inc(&g->scheduled);
            /*
             * Pairs with the smp_mb() in churn_gen_retire(): if "stopping"
             * is still clear, our push came before iothread_stop()'s and
             * the BH must run.
             */
            smp_mb();
            if (!qatomic_read(&g->stopping)) {
                qatomic_inc(&g->must_run);
            }
            if (i % 8 == 0) {
                /* Scheduled and deleted at once: may or may not run. */
                QEMUBH *bh = aio_bh_new(g->ctx, churn_bh_cb, g);

                qemu_bh_schedule(bh);
                qemu_bh_delete(bh);
            }
        }
        aio_context_unref(g->ctx);
        qatomic_add(&ch->ops, CHURN_BURST);
        progress();
    }
    g_rand_free(rand);
    return NULL;
}

static void test_churn(void)
{
    Churn ch = { .gens = g_ptr_array_new_with_free_func(g_free) };
    QemuThread producers[CHURN_PRODUCERS];
    int threads = count_dir_entries("/proc/self/task");
    int fds = count_fds();
    long runs = 0, must = 0, sched = 0;
    int64_t start = g_get_monotonic_time();
    guint i;
    int s;

    for (s = 0; s < CHURN_SLOTS; s++) {
        qemu_mutex_init(&ch.slots[s].lock);
        ch.slots[s].cur = churn_gen_new(&ch, s);
    }
    watchdog_start("IOThread churn");
    for (i = 0; i < CHURN_PRODUCERS; i++) {
        qemu_thread_create(&producers[i], "churn-producer", churn_producer_fn,
                           &ch, QEMU_THREAD_JOINABLE);
    }

    for (ch.cycle = 1; ch.cycle <= CHURN_CYCLES; ch.cycle++) {
        for (s = 0; s < CHURN_SLOTS; s++) {
            ChurnGen *fresh = churn_gen_new(&ch, s);
            ChurnGen *old;

            qemu_mutex_lock(&ch.slots[s].lock);
            old = ch.slots[s].cur;
            ch.slots[s].cur = fresh;
            qemu_mutex_unlock(&ch.slots[s].lock);
            churn_gen_retire(old);
            progress();
        }
    }

    qatomic_set(&ch.stop, 1);
    for (i = 0; i < CHURN_PRODUCERS; i++) {
        qemu_thread_join(&producers[i]);
    }
    for (s = 0; s < CHURN_SLOTS; s++) {
        churn_gen_retire(ch.slots[s].cur);
        qemu_mutex_destroy(&ch.slots[s].lock);
    }
    watchdog_stop();

    for (i = 0; i < ch.gens->len; i++) {
        ChurnGen *g = g_ptr_array_index(ch.gens, i);

        /* The last reference: BHs still queued are freed, not run. */
        aio_context_unref(g->ctx);
        g_assert_cmpint(g->late_runs, ==, 0);
        g_assert_cmpint(g->wrong_thread, ==, 0);
        g_assert_cmpint(g->runs, >=, g->must_run);
        g_assert_cmpint(g->runs, <=, g->scheduled);
        runs += g->runs;
        must += g->must_run;
        sched += g->scheduled;
    }
    g_test_message("churn: %u IOThreads created and destroyed under %d "
                   "producers; %ld one-shots queued, %ld ran (%ld had to), "
                   "%" PRId64 " ms", ch.gens->len, CHURN_PRODUCERS, sched,
                   runs, must, (g_get_monotonic_time() - start) / 1000);
    /* Every context is gone with its descriptors, and every thread. */
    g_assert_cmpint(count_fds(), ==, fds);
    g_assert_true(threads_back_to(threads));
    g_ptr_array_free(ch.gens, true);
}

/* ---- fd handlers added, modified and removed from other threads ------- */

typedef enum {
    FDM_SELF_REMOVE,        /* the handler drains and removes itself */
    FDM_SELF_CLOSE,         /* ... then closes its own fd */
    FDM_MODIFY,             /* a never-draining handler replaced from outside */
    FDM_WRITE,              /* a write handler that removes itself */
    FDM_REMOVE_RACE,        /* removed and closed from outside while firing */
    FDM_MODES
} FdMode;

#define FD_MUTATORS 3
#define FD_SLOTS_PER_MUTATOR 4
#define FD_ROUNDS SCALED(1500)
#define FD_BACKGROUND 70

typedef struct FdStress FdStress;
typedef struct FdSlot FdSlot;

/*
 * One registration.  Home thread only, except that the mutator reads it
 * after an acknowledgement and the test at the end.
 */
typedef struct FdToken {
    FdSlot *slot;
    int fd;
    int runs;
    int runs_at_close;
    bool closed;            /* the handler may not run any more */
} FdToken;

struct FdSlot {
    FdStress *fs;
    int rfd, wfd;
    FdToken *level;         /* FDM_MODIFY: the handler being replaced */
    GPtrArray *round;       /* this round's tokens */
    GPtrArray *all;         /* every token, checked at the end */
    QemuSemaphore stage;    /* the level handler ran */
    QemuSemaphore ack;      /* a self-removing handler ran */
    QemuSemaphore barrier;  /* the round's barrier BH ran */
    long rounds[FDM_MODES];
    long race_runs;
};

struct FdStress {
    AioContext *ctx;
    IOThread *iothread;
    FdSlot slots[FD_MUTATORS][FD_SLOTS_PER_MUTATOR];
    int late;               /* home thread: runs of closed tokens */
    int background_runs;    /* atomic */
};

static FdToken *fd_token_new(FdSlot *slot, int fd)
{
    FdToken *t = g_new0(FdToken, 1);

    *t = (FdToken){ .slot = slot, .fd = fd };
    g_ptr_array_add(slot->round, t);
    g_ptr_array_add(slot->all, t);
    return t;
}

static void fd_token_close(FdToken *t)
{
    t->closed = true;
    t->runs_at_close = t->runs;
}

/* Every callback starts here: count, and catch a call after removal. */
static void fd_token_enter(FdToken *t)
{
    if (t->closed) {
        t->slot->fs->late++;
    }
    t->runs++;
    progress();
}

static void fd_drain(int fd)
{
    char buf[8];

    g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, 1);
}

static void fd_self_remove_cb(void *opaque)
{
    FdToken *t = opaque;

    fd_token_enter(t);
    fd_drain(t->fd);
    aio_set_fd_handler(t->slot->fs->ctx, t->fd, NULL, NULL, NULL, NULL, NULL);
    fd_token_close(t);
    qemu_sem_post(&t->slot->ack);
}

static void fd_self_close_cb(void *opaque)
{
    FdToken *t = opaque;

    fd_token_enter(t);
    fd_drain(t->fd);
    aio_set_fd_handler(t->slot->fs->ctx, t->fd, NULL, NULL, NULL, NULL, NULL);
    close(t->fd);
    fd_token_close(t);
    qemu_sem_post(&t->slot->ack);
}

/* Leaves the byte in: level-triggered, it runs on every iteration. */
static void fd_level_cb(void *opaque)
{
    FdToken *t = opaque;

    fd_token_enter(t);
    if (t->runs == 1) {
        qemu_sem_post(&t->slot->stage);
    }
}

/* Replaced fd_level_cb: from now on that one must never run again. */
static void fd_modified_cb(void *opaque)
{
    FdToken *t = opaque;

    fd_token_enter(t);
    fd_token_close(t->slot->level);
    fd_drain(t->fd);
    aio_set_fd_handler(t->slot->fs->ctx, t->fd, NULL, NULL, NULL, NULL, NULL);
    fd_token_close(t);
    qemu_sem_post(&t->slot->ack);
}

static void fd_write_cb(void *opaque)
{
    FdToken *t = opaque;

    fd_token_enter(t);
    aio_set_fd_handler(t->slot->fs->ctx, t->fd, NULL, NULL, NULL, NULL, NULL);
    fd_token_close(t);
    qemu_sem_post(&t->slot->ack);
}

/*
 * Does not touch the fd: the mutator may close it as soon as its removal
 * returns, while this runs.
 */
static void fd_race_cb(void *opaque)
{
    fd_token_enter(opaque);
}

static void fd_background_cb(void *opaque)
{
    FdStress *fs = opaque;

    qatomic_inc(&fs->background_runs);
}

/* Runs after every earlier dispatch: closes the round's registrations. */
static void fd_barrier_cb(void *opaque)
{
    FdSlot *slot = opaque;
    guint i;

    for (i = 0; i < slot->round->len; i++) {
        FdToken *t = g_ptr_array_index(slot->round, i);

        if (!t->closed) {
            fd_token_close(t);
        }
    }
    qemu_sem_post(&slot->barrier);
}

static void fd_round_start(FdSlot *slot, FdMode mode)
{
    AioContext *ctx = slot->fs->ctx;
    int fds[2];
    FdToken *t;

    make_pipe(fds);
    slot->rfd = fds[0];
    slot->wfd = fds[1];
    g_ptr_array_set_size(slot->round, 0);
    if (mode != FDM_WRITE) {
        g_assert_cmpint(write(slot->wfd, "x", 1), ==, 1);
    }

    switch (mode) {
    case FDM_SELF_REMOVE:
        t = fd_token_new(slot, slot->rfd);
        aio_set_fd_handler(ctx, slot->rfd, fd_self_remove_cb, NULL, NULL,
                           NULL, t);
        break;
    case FDM_SELF_CLOSE:
        t = fd_token_new(slot, slot->rfd);
        aio_set_fd_handler(ctx, slot->rfd, fd_self_close_cb, NULL, NULL,
                           NULL, t);
        break;
    case FDM_MODIFY:
        slot->level = fd_token_new(slot, slot->rfd);
        aio_set_fd_handler(ctx, slot->rfd, fd_level_cb, NULL, NULL, NULL,
                           slot->level);
        break;
    case FDM_WRITE:
        t = fd_token_new(slot, slot->wfd);
        aio_set_fd_handler(ctx, slot->wfd, NULL, fd_write_cb, NULL, NULL, t);
        break;
    case FDM_REMOVE_RACE:
        t = fd_token_new(slot, slot->rfd);
        aio_set_fd_handler(ctx, slot->rfd, fd_race_cb, NULL, NULL, NULL, t);
        break;
    default:
        g_assert_not_reached();
    }
}

static void fd_round_finish(FdSlot *slot, FdMode mode)
{
    AioContext *ctx = slot->fs->ctx;
    FdToken *t = g_ptr_array_index(slot->round, 0);
    FdToken *t2 = NULL;

    switch (mode) {
    case FDM_SELF_REMOVE:
    case FDM_SELF_CLOSE:
    case FDM_WRITE:
        sem_wait_or_abort(&slot->ack, "self-removing fd handler run");
        break;
    case FDM_MODIFY:
        sem_wait_or_abort(&slot->stage, "level-triggered fd handler run");
        /* Replace it while it keeps firing on the IOThread. */
        t2 = fd_token_new(slot, slot->rfd);
        aio_set_fd_handler(ctx, slot->rfd, fd_modified_cb, NULL, NULL, NULL,
                           t2);
        sem_wait_or_abort(&slot->ack, "modified fd handler run");
        break;
    case FDM_REMOVE_RACE:
        /* It may be running right now; close the fds at once anyway. */
        aio_set_fd_handler(ctx, slot->rfd, NULL, NULL, NULL, NULL, NULL);
        close(slot->rfd);
        close(slot->wfd);
        break;
    default:
        g_assert_not_reached();
    }

    aio_bh_schedule_oneshot(ctx, fd_barrier_cb, slot);
    sem_wait_or_abort(&slot->barrier, "barrier BH after fd handlers");

    switch (mode) {
    case FDM_SELF_REMOVE:
    case FDM_SELF_CLOSE:
    case FDM_WRITE:
        g_assert_cmpint(t->runs, ==, 1);
        break;
    case FDM_MODIFY:
        g_assert_cmpint(t->runs, >=, 1);
        g_assert_cmpint(t2->runs, ==, 1);
        break;
    case FDM_REMOVE_RACE:
        slot->race_runs += t->runs;
        break;
    default:
        break;
    }
    if (mode != FDM_REMOVE_RACE) {
        if (mode != FDM_SELF_CLOSE) {
            close(slot->rfd);
        }
        close(slot->wfd);
    }
    slot->rounds[mode]++;
}

static void *fd_mutator_fn(void *opaque)
{
    FdSlot *slots = opaque;
    int round, i;

    for (round = 0; round < FD_ROUNDS; round++) {
        for (i = 0; i < FD_SLOTS_PER_MUTATOR; i++) {
            fd_round_start(&slots[i], (round + i) % FDM_MODES);
        }
        for (i = 0; i < FD_SLOTS_PER_MUTATOR; i++) {
            fd_round_finish(&slots[i], (round + i) % FDM_MODES);
        }
    }
    return NULL;
}

static void fd_stress(bool default_fdmon, int background)
{
    FdStress *fs = g_new0(FdStress, 1);
    QemuThread mutators[FD_MUTATORS];
    int bg[FD_BACKGROUND][2];
    int fds = count_fds();
    int64_t start;
    long races = 0, total = 0;
    int m, i, k;
    guint j;

    if (default_fdmon) {
        char *saved = fdmon_env_clear();

        fs->iothread = iothread_create("fd-stress", &error_abort);
        fdmon_env_restore(saved);
    } else {
        fs->iothread = iothread_create("fd-stress", &error_abort);
    }
    fs->ctx = iothread_get_aio_context(fs->iothread);

    /* Idle fds that push the context over the epoll threshold. */
    for (i = 0; i < background; i++) {
        make_pipe(bg[i]);
        aio_set_fd_handler(fs->ctx, bg[i][0], fd_background_cb, NULL, NULL,
                           NULL, fs);
    }
    for (m = 0; m < FD_MUTATORS; m++) {
        for (i = 0; i < FD_SLOTS_PER_MUTATOR; i++) {
            FdSlot *slot = &fs->slots[m][i];

            slot->fs = fs;
            slot->round = g_ptr_array_new();
            slot->all = g_ptr_array_new_with_free_func(g_free);
            qemu_sem_init(&slot->stage, 0);
            qemu_sem_init(&slot->ack, 0);
            qemu_sem_init(&slot->barrier, 0);
        }
    }

    start = g_get_monotonic_time();
    for (m = 0; m < FD_MUTATORS; m++) {
        qemu_thread_create(&mutators[m], "fd-mutator", fd_mutator_fn,
                           fs->slots[m], QEMU_THREAD_JOINABLE);
    }
    for (m = 0; m < FD_MUTATORS; m++) {
        qemu_thread_join(&mutators[m]);
    }
    g_test_message("fd handlers: %d threads x %d slots x %d rounds "
                   "(%d background fds) in %" PRId64 " ms, monitor %s",
                   FD_MUTATORS, FD_SLOTS_PER_MUTATOR, FD_ROUNDS, background,
                   (g_get_monotonic_time() - start) / 1000,
                   qaio_fdmon_name(fs->ctx));
    if (background >= 64) {
        g_assert_cmpstr(qaio_fdmon_name(fs->ctx), ==,
                        default_fdmon ? "epoll" : fdmon_when_many());
    }

    for (i = 0; i < background; i++) {
        aio_set_fd_handler(fs->ctx, bg[i][0], NULL, NULL, NULL, NULL, NULL);
    }
    iothread_destroy(fs->iothread);

    /* Nothing ran once removed, then or later; every round accounted. */
    g_assert_cmpint(fs->late, ==, 0);
    g_assert_cmpint(fs->background_runs, ==, 0);
    for (m = 0; m < FD_MUTATORS; m++) {
        for (i = 0; i < FD_SLOTS_PER_MUTATOR; i++) {
            FdSlot *slot = &fs->slots[m][i];

            for (k = 0; k < FDM_MODES; k++) {
                total += slot->rounds[k];
            }
            for (j = 0; j < slot->all->len; j++) {
                FdToken *t = g_ptr_array_index(slot->all, j);

                g_assert_true(t->closed);
                g_assert_cmpint(t->runs, ==, t->runs_at_close);
            }
            races += slot->race_runs;
            g_ptr_array_free(slot->round, true);
            g_ptr_array_free(slot->all, true);
            qemu_sem_destroy(&slot->stage);
            qemu_sem_destroy(&slot->ack);
            qemu_sem_destroy(&slot->barrier);
        }
    }
    g_assert_cmpint(total, ==,
                    (long)FD_MUTATORS * FD_SLOTS_PER_MUTATOR * FD_ROUNDS);
    g_test_message("%ld registrations; removed-while-firing handlers ran "
                   "%ld times before their removal", total, races);
    for (i = 0; i < background; i++) {
        close(bg[i][0]);
        close(bg[i][1]);
    }
    g_assert_cmpint(count_fds(), ==, fds);
    g_free(fs);
}

static void test_fd_cross_thread(void)
{
    fd_stress(false, 0);
}

static void test_fd_cross_thread_many(void)
{
    fd_stress(false, FD_BACKGROUND);
}

static void test_fd_cross_thread_many_default_fdmon(void)
{
    fd_stress(true, FD_BACKGROUND);
}

/* ======================================================================= */
/* Section 5: the bug classes                                              */
/* ======================================================================= */

/* ---- 1. Lost wake-up: schedule and wait for the ack, a million times -- */

#define RT_THREADS 4
#define RT_ROUNDS SCALED(1000000)       /* in total */

typedef struct RtThread {
    QemuThread thread;
    AioContext *ctx;
    const char *loop;
    QEMUBH *bh;
    QemuSemaphore ack;
    int index;
} RtThread;

static void rt_ack_cb(void *opaque)
{
    RtThread *t = opaque;

    qemu_sem_post(&t->ack);
}

static void *rt_thread_fn(void *opaque)
{
    RtThread *t = opaque;
    long round;

    for (round = 0; round < RT_ROUNDS / RT_THREADS; round++) {
        if (round % 2) {
            qemu_bh_schedule(t->bh);
        } else {
            aio_bh_schedule_oneshot(t->ctx, rt_ack_cb, t);
        }
        if (qemu_sem_timedwait(&t->ack, WATCHDOG_MS) != 0) {
            fprintf(stderr, "round %ld of thread %d: its BH did not run "
                    "within %d ms (lost wake-up of the %s loop, "
                    "QAIO_FDMON=%s)\n", round, t->index, WATCHDOG_MS,
                    t->loop, g_getenv("QAIO_FDMON") ?: "");
            abort();
        }
    }
    return NULL;
}

/*
 * RT_THREADS threads each schedule a BH into an IOThread that is usually
 * asleep, and wait for it to run before the next round.  The IOThreads:
 * aio_poll() without busy polling (where only the notify_me / notified
 * handshake prevents a lost wake-up), aio_poll() with it (the notifier's
 * io_poll also sees "notified"), and a GMainContext.  Odd rounds reuse a
 * BH, even rounds allocate a one-shot.  A lost wake-up stalls a round:
 * the thread aborts after WATCHDOG_MS, naming it.
 */
static void test_round_trips(void)
{
    static const char *const loops[] = {
        "aio_poll", "GMainContext", "aio_poll with busy polling",
    };
    IOThreadOptions opts[3] = {
        IOTHREAD_OPTIONS_DEFAULT, IOTHREAD_OPTIONS_DEFAULT,
        IOTHREAD_OPTIONS_DEFAULT,
    };
    IOThread *iothreads[3];
    RtThread t[RT_THREADS];
    int64_t start;
    int i;

    opts[0].poll_max_ns = 0;
    opts[1].run_gcontext = true;
    for (i = 0; i < 3; i++) {
        g_autofree char *name = g_strdup_printf("rt%d", i);

        iothreads[i] = iothread_create_full(name, &opts[i], &error_abort);
    }
    for (i = 0; i < RT_THREADS; i++) {
        int k = i < 3 ? i : 0;

        t[i] = (RtThread){ .index = i };
        t[i].ctx = iothread_get_aio_context(iothreads[k]);
        t[i].loop = loops[k];
        t[i].bh = aio_bh_new(t[i].ctx, rt_ack_cb, &t[i]);
        qemu_sem_init(&t[i].ack, 0);
    }
    start = g_get_monotonic_time();
    for (i = 0; i < RT_THREADS; i++) {
        qemu_thread_create(&t[i].thread, "round-trip", rt_thread_fn, &t[i],
                           QEMU_THREAD_JOINABLE);
    }
    for (i = 0; i < RT_THREADS; i++) {
        qemu_thread_join(&t[i].thread);
    }
    g_test_message("%d round trips from %d threads in %" PRId64 " ms",
                   RT_ROUNDS / RT_THREADS * RT_THREADS, RT_THREADS,
                   (g_get_monotonic_time() - start) / 1000);
    for (i = 0; i < RT_THREADS; i++) {
        qemu_bh_delete(t[i].bh);
    }
    for (i = 0; i < 3; i++) {
        iothread_destroy(iothreads[i]);
    }
    /* No callback ran twice: no acknowledgement is left over. */
    for (i = 0; i < RT_THREADS; i++) {
        g_assert_cmpint(qemu_sem_timedwait(&t[i].ack, 0), !=, 0);
        qemu_sem_destroy(&t[i].ack);
    }
}

/* ---- 2. notify / accept: a notification ends one wait, not more ------- */

typedef struct NotifyWait {
    AioContext *ctx;
    QEMUTimer timer;
    bool fired;
    int main_tid;
    int notifies;
    QemuThread thread;
} NotifyWait;

static void notify_timer_cb(void *opaque)
{
    NotifyWait *nw = opaque;

    nw->fired = true;
}

/* Notify the home thread once it sleeps. */
static void *notify_sleeper_fn(void *opaque)
{
    NotifyWait *nw = opaque;
    int i;

    g_assert_true(thread_probe_wait_sleeping(nw->main_tid));
    for (i = 0; i < nw->notifies; i++) {
        aio_notify(nw->ctx);
    }
    return NULL;
}

/*
 * Arm the 50 ms timer and take the notification that arming makes; then
 * notify from here (@local) or start the notifying thread; return how many
 * blocking polls it took until the timer fired.
 */
static int notify_polls_until_timer(NotifyWait *nw, int local)
{
    int polls = 0;
    int i;

    nw->fired = false;
    timer_mod_ns(&nw->timer, now_ns() + 50 * SCALE_MS);
    g_assert_false(aio_poll(nw->ctx, false));
    for (i = 0; i < local; i++) {
        aio_notify(nw->ctx);
    }
    if (nw->notifies) {
        qemu_thread_create(&nw->thread, "notifier", notify_sleeper_fn, nw,
                           QEMU_THREAD_JOINABLE);
    }
    while (!nw->fired) {
        aio_poll(nw->ctx, true);
        polls++;
        g_assert_cmpint(polls, <, 100000);
    }
    return polls;
}

/*
 * After aio_notify() one poll sees the notification and returns without
 * progress; the next sleeps until the timer.  Each notification ends at
 * most one wait, so n notifications from another thread cost at most n
 * extra polls.  A notification that is never accepted, or an eventfd left
 * set, would make every wait return at once: the poll count, not the
 * time, shows that.
 */
static void test_notify_then_sleep(void)
{
    NotifyWait nw = { .main_tid = qemu_get_thread_id() };
    int polls;

    nw.ctx = aio_context_new(&error_abort);
    aio_timer_init(nw.ctx, &nw.timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                   notify_timer_cb, &nw);
    ctx_settle(nw.ctx);

    /* From the home thread, outside the loop: no eventfd write needed. */
    aio_notify(nw.ctx);
    g_assert_true(qatomic_read(&nw.ctx->notified));
    g_assert_false(aio_poll(nw.ctx, false));
    g_assert_false(qatomic_read(&nw.ctx->notified));
    g_assert_false(aio_poll(nw.ctx, false));

    polls = notify_polls_until_timer(&nw, 2);
    g_assert_cmpint(polls, <=, 2);

    /* From other threads, against a sleeping poller: the eventfd path. */
    for (nw.notifies = 1; nw.notifies <= 3; nw.notifies++) {
        polls = notify_polls_until_timer(&nw, 0);
        qemu_thread_join(&nw.thread);
        g_assert_cmpint(polls, <=, nw.notifies + 1);
    }

    timer_del(&nw.timer);
    ctx_settle(nw.ctx);
    aio_context_unref(nw.ctx);
}

/* The same through the GSource: iterations, not aio_poll() calls. */
static void test_notify_then_sleep_gsource(void)
{
    NotifyWait nw = { .main_tid = qemu_get_thread_id() };
    GMainContext *gctx = g_main_context_new();
    GSource *src;
    int i, iters;

    nw.ctx = aio_context_new(&error_abort);
    src = aio_get_g_source(nw.ctx);
    g_source_attach(src, gctx);
    g_source_unref(src);
    aio_timer_init(nw.ctx, &nw.timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                   notify_timer_cb, &nw);
    while (g_main_context_iteration(gctx, false)) {
        /* settle */
    }

    for (i = 0; i < 3; i++) {
        nw.notifies = 2;
        nw.fired = false;
        timer_mod_ns(&nw.timer, now_ns() + 50 * SCALE_MS);
        /* Take the notification that arming makes. */
        while (g_main_context_iteration(gctx, false)) {
            /* nothing is due */
        }
        if (i == 0) {
            aio_notify(nw.ctx);
        } else {
            qemu_thread_create(&nw.thread, "notifier", notify_sleeper_fn,
                               &nw, QEMU_THREAD_JOINABLE);
        }
        for (iters = 0; !nw.fired; iters++) {
            g_main_context_iteration(gctx, true);
            g_assert_cmpint(iters, <, 100000);
        }
        if (i > 0) {
            qemu_thread_join(&nw.thread);
        }
        g_assert_cmpint(iters, <=, nw.notifies + 1);
    }

    timer_del(&nw.timer);
    g_source_destroy(&nw.ctx->source);
    aio_context_unref(nw.ctx);
    g_main_context_unref(gctx);
}

/* ---- 3. BHs deleting each other and freeing their guards ------------- */

#define MUTUAL_BHS 3000

typedef struct MutualOwner {
    MemReentrancyGuard guard;
    QEMUBH *bh;
    int index;
} MutualOwner;

static struct {
    AioContext *ctx;
    MutualOwner *owners[MUTUAL_BHS];    /* NULL once freed */
    int ran[MUTUAL_BHS];
    int killed[MUTUAL_BHS];
    int depth, max_depth;
} mutual;

static void mutual_free(int j)
{
    qemu_bh_delete(mutual.owners[j]->bh);
    g_free(mutual.owners[j]);
    mutual.owners[j] = NULL;
}

/*
 * Deletes two other BHs (freeing their owners, guards included), then its
 * own BH and owner, and only then, for one in five, polls nested: the
 * frames of this callback must not touch the freed guard.
 */
static void mutual_cb(void *opaque)
{
    MutualOwner *owner = opaque;
    int i = owner->index;
    int k;

    g_assert_true(owner->guard.engaged_in_io);
    mutual.ran[i]++;
    for (k = 1; k <= 2; k++) {
        int j = (i + k * 7) % MUTUAL_BHS;

        if (mutual.owners[j]) {
            mutual.killed[j]++;
            mutual_free(j);
        }
    }
    mutual_free(i);

    if (i % 5 == 0) {
        mutual.depth++;
        mutual.max_depth = MAX(mutual.max_depth, mutual.depth);
        aio_poll(mutual.ctx, false);
        mutual.depth--;
    }
}

static void test_bh_mutual_delete(void)
{
    int i;

    memset(&mutual, 0, sizeof(mutual));
    mutual.ctx = aio_context_new(&error_abort);
    for (i = 0; i < MUTUAL_BHS; i++) {
        MutualOwner *o = g_new0(MutualOwner, 1);

        o->index = i;
        o->bh = aio_bh_new_guarded(mutual.ctx, mutual_cb, o, &o->guard);
        mutual.owners[i] = o;
    }
    for (i = 0; i < MUTUAL_BHS; i++) {
        qemu_bh_schedule(mutual.owners[(i * 13) % MUTUAL_BHS]->bh);
    }
    g_assert_true(aio_poll(mutual.ctx, false));
    ctx_settle(mutual.ctx);

    /* Each owner freed exactly once: after running, or by a peer before. */
    for (i = 0; i < MUTUAL_BHS; i++) {
        g_assert_null(mutual.owners[i]);
        g_assert_cmpint(mutual.ran[i] + mutual.killed[i], ==, 1);
    }
    g_assert_cmpint(mutual.max_depth, >=, 1);
    /* LeakSanitizer checks that every BH was freed too. */
    aio_context_unref(mutual.ctx);
}

/* ---- 4. Re-entrancy: a BH that reschedules itself and polls nested ---- */

typedef struct Nest {
    AioContext *ctx;
    MemReentrancyGuard guard;
    QEMUBH *bh;
    int runs, depth, max_depth, limit;
} Nest;

static void nest_cb(void *opaque)
{
    Nest *n = opaque;

    n->runs++;
    n->depth++;
    n->max_depth = MAX(n->max_depth, n->depth);
    if (n->depth < n->limit) {
        qemu_bh_schedule(n->bh);
        aio_poll(n->ctx, false);
    }
    n->depth--;
}

static void nest_run(bool guarded)
{
    Nest n = { .limit = 3 };

    n.ctx = aio_context_new(&error_abort);
    n.bh = guarded ? aio_bh_new_guarded(n.ctx, nest_cb, &n, &n.guard)
                   : aio_bh_new(n.ctx, nest_cb, &n);
    qemu_bh_schedule(n.bh);
    g_assert_true(aio_poll(n.ctx, false));
    ctx_settle(n.ctx);

    if (guarded) {
        /* The nested run was refused, not deferred. */
        g_assert_cmpint(n.runs, ==, 1);
        g_assert_cmpint(n.max_depth, ==, 1);
        g_assert_false(n.guard.engaged_in_io);
    } else {
        g_assert_cmpint(n.runs, ==, 3);
        g_assert_cmpint(n.max_depth, ==, 3);
    }
    qemu_bh_delete(n.bh);
    ctx_settle(n.ctx);
    aio_context_unref(n.ctx);
}

static void test_bh_nested_self_guarded(void)
{
    if (g_test_subprocess()) {
        nest_run(true);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*bottom half 'nest_cb' not run*guard*");
}

static void test_bh_nested_self_unguarded(void)
{
    nest_run(false);
}

/* ---- 5. fds added from another thread across the epoll threshold ----- */

#define CROSS_FDS 100
#define CROSS_WAITED 50     /* the first ones: the adder waits for each */
#define CROSS_LAG_CAP 3     /* iterations from add to dispatch */

typedef struct Cross Cross;

typedef struct CrossFd {
    Cross *c;
    int index;
    int rfd, wfd;
    long added_at;          /* iterations done when the add returned */
    long fired_at;          /* iterations done when the handler ran */
    int runs;
} CrossFd;

struct Cross {
    AioContext *ctx;
    CrossFd fds[CROSS_FDS];
    long iters;             /* atomic: aio_poll() calls completed */
    int fired;              /* atomic */
    int adder_done;         /* atomic */
    QemuSemaphore ack;
    QEMUTimer failsafe;
};

static void cross_cb(void *opaque)
{
    CrossFd *f = opaque;

    fd_drain(f->rfd);
    f->runs++;
    f->fired_at = qatomic_read(&f->c->iters);
    qatomic_inc(&f->c->fired);
    progress();
    qemu_sem_post(&f->c->ack);
}

static void cross_failsafe_cb(void *opaque)
{
    Cross *c = opaque;

    timer_mod_ns(&c->failsafe, now_ns() + NANOSECONDS_PER_SECOND);
}

static void *cross_adder_fn(void *opaque)
{
    Cross *c = opaque;
    int i;

    for (i = 0; i < CROSS_FDS; i++) {
        CrossFd *f = &c->fds[i];

        /* Readable before it is added: only the add can make it fire. */
        g_assert_cmpint(write(f->wfd, "x", 1), ==, 1);
        aio_set_fd_handler(c->ctx, f->rfd, cross_cb, NULL, NULL, NULL, f);
        f->added_at = qatomic_read(&c->iters);
        if (i < CROSS_WAITED) {
            sem_wait_or_abort(&c->ack, "dispatch of an fd added from a "
                              "thread");
        }
    }
    qatomic_set(&c->adder_done, 1);
    aio_notify(c->ctx);
    return NULL;
}

/*
 * The home thread (this one) blocks in aio_poll() while another thread
 * adds readable fds, one at a time and then in a burst, taking the
 * context from 1 to 101 fds and (by default) from poll to epoll.  Each fd
 * fires exactly once, within CROSS_LAG_CAP iterations of its add; a lost
 * fd would leave the loop asleep (watchdog) or firing late.
 */
static void cross_threshold(bool default_fdmon)
{
    Cross *c = g_new0(Cross, 1);
    QemuThread adder;
    long max_lag = 0;
    int i;

    if (default_fdmon) {
        char *saved = fdmon_env_clear();

        c->ctx = aio_context_new(&error_abort);
        fdmon_env_restore(saved);
        g_assert_cmpstr(qaio_fdmon_name(c->ctx), ==, "poll");
    } else {
        c->ctx = aio_context_new(&error_abort);
    }
    qemu_sem_init(&c->ack, 0);
    for (i = 0; i < CROSS_FDS; i++) {
        int fds[2];

        make_pipe(fds);
        c->fds[i] = (CrossFd){ .c = c, .index = i, .rfd = fds[0],
                               .wfd = fds[1] };
    }
    aio_timer_init(c->ctx, &c->failsafe, QEMU_CLOCK_REALTIME, SCALE_NS,
                   cross_failsafe_cb, c);
    timer_mod_ns(&c->failsafe, now_ns() + NANOSECONDS_PER_SECOND);
    ctx_settle(c->ctx);

    watchdog_start("fds added across the epoll threshold");
    qemu_thread_create(&adder, "fd-adder", cross_adder_fn, c,
                       QEMU_THREAD_JOINABLE);
    while (!qatomic_read(&c->adder_done) ||
           qatomic_read(&c->fired) < CROSS_FDS) {
        aio_poll(c->ctx, true);
        qatomic_inc(&c->iters);
    }
    qemu_thread_join(&adder);
    watchdog_stop();

    for (i = 0; i < CROSS_FDS; i++) {
        CrossFd *f = &c->fds[i];

        g_assert_cmpint(f->runs, ==, 1);
        if (f->fired_at - f->added_at > CROSS_LAG_CAP) {
            g_error("fd %d (of %d) fired %ld iterations after its add "
                    "(cap %d, monitor %s)", i, CROSS_FDS,
                    f->fired_at - f->added_at, CROSS_LAG_CAP,
                    qaio_fdmon_name(c->ctx));
        }
        max_lag = MAX(max_lag, f->fired_at - f->added_at);
    }
    g_test_message("%d fds: %ld iterations, largest lag %ld, monitor %s",
                   CROSS_FDS, c->iters, max_lag, qaio_fdmon_name(c->ctx));
    g_assert_cmpstr(qaio_fdmon_name(c->ctx), ==,
                    default_fdmon ? "epoll" : fdmon_when_many());

    for (i = 0; i < CROSS_FDS; i++) {
        aio_set_fd_handler(c->ctx, c->fds[i].rfd, NULL, NULL, NULL, NULL,
                           NULL);
        close(c->fds[i].rfd);
        close(c->fds[i].wfd);
    }
    timer_del(&c->failsafe);
    ctx_settle(c->ctx);
    aio_context_unref(c->ctx);
    qemu_sem_destroy(&c->ack);
    g_free(c);
}

static void test_fd_cross_threshold(void)
{
    cross_threshold(false);
}

static void test_fd_cross_threshold_default_fdmon(void)
{
    cross_threshold(true);
}

/* ---- 8. Level-triggered: undrained fds run on every iteration -------- */

#define LEVEL_FDS 100       /* below the epoll monitor's 128 events/wait */
#define LEVEL_MANY_FDS 200  /* above it */
#define LEVEL_ITERS 20

typedef struct Level {
    int rfd, wfd;
    int runs;
} Level;

static void level_cb(void *opaque)
{
    ((Level *)opaque)->runs++;
}

typedef enum { LEVEL_AIO_POLL, LEVEL_DEFAULT_FDMON, LEVEL_GSOURCE } LevelHow;

/*
 * @n readable fds whose handlers never read: every iteration runs every
 * handler again.  With more than 128 ready fds the epoll monitor gets them
 * in turns (one epoll_wait() returns at most 128), so there each handler
 * runs at least on every other iteration.
 */
static void level_run(LevelHow how, int n)
{
    Level *l = g_new0(Level, n);
    GMainContext *gctx = NULL;
    AioContext *ctx;
    bool turns;
    int i, it;

    if (how == LEVEL_DEFAULT_FDMON) {
        char *saved = fdmon_env_clear();

        ctx = aio_context_new(&error_abort);
        fdmon_env_restore(saved);
    } else {
        ctx = aio_context_new(&error_abort);
    }
    if (how == LEVEL_GSOURCE) {
        GSource *src = aio_get_g_source(ctx);

        gctx = g_main_context_new();
        g_source_attach(src, gctx);
        g_source_unref(src);
    }
    for (i = 0; i < n; i++) {
        int fds[2];

        make_pipe(fds);
        l[i] = (Level){ .rfd = fds[0], .wfd = fds[1] };
        g_assert_cmpint(write(l[i].wfd, "x", 1), ==, 1);
        aio_set_fd_handler(ctx, l[i].rfd, level_cb, NULL, NULL, NULL, &l[i]);
    }

    for (it = 1; it <= LEVEL_ITERS; it++) {
        if (how == LEVEL_GSOURCE) {
            g_assert_true(g_main_context_iteration(gctx, true));
        } else {
            g_assert_true(aio_poll(ctx, true));
        }
        turns = how != LEVEL_GSOURCE && n > 128 &&
                !strcmp(qaio_fdmon_name(ctx), "epoll");
        for (i = 0; i < n; i++) {
            if (turns) {
                g_assert_cmpint(l[i].runs, >=, it / 2);
                g_assert_cmpint(l[i].runs, <=, it);
            } else if (l[i].runs != it) {
                g_error("fd %d of %d ran %d times in %d iterations "
                        "(monitor %s)", i, n, l[i].runs, it,
                        qaio_fdmon_name(ctx));
            }
        }
    }
    if (how == LEVEL_DEFAULT_FDMON) {
        g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "epoll");
    }

    for (i = 0; i < n; i++) {
        aio_set_fd_handler(ctx, l[i].rfd, NULL, NULL, NULL, NULL, NULL);
        close(l[i].rfd);
        close(l[i].wfd);
    }
    if (gctx) {
        while (g_main_context_iteration(gctx, false)) {
            /* settle */
        }
        g_source_destroy(&ctx->source);
        g_main_context_unref(gctx);
    } else {
        ctx_settle(ctx);
    }
    aio_context_unref(ctx);
    g_free(l);
}

static void test_level_triggered(void)
{
    level_run(LEVEL_AIO_POLL, LEVEL_FDS);
    level_run(LEVEL_AIO_POLL, LEVEL_MANY_FDS);
}

static void test_level_triggered_default_fdmon(void)
{
    level_run(LEVEL_DEFAULT_FDMON, LEVEL_FDS);
}

static void test_level_triggered_gsource(void)
{
    level_run(LEVEL_GSOURCE, LEVEL_FDS);
    level_run(LEVEL_GSOURCE, LEVEL_MANY_FDS);
}

/* ---- 9. Timers: never early, and no spinning while waiting ----------- */

typedef struct EarlyTimer {
    QEMUTimer timer;
    int64_t deadline;
    bool fired;
} EarlyTimer;

static void early_timer_cb(void *opaque)
{
    EarlyTimer *et = opaque;
    int64_t now = now_ns();

    if (now < et->deadline) {
        g_error("timer fired %" PRId64 " ns early (QAIO_FDMON=%s)",
                et->deadline - now, g_getenv("QAIO_FDMON") ?: "");
    }
    et->fired = true;
}

#define EARLY_ROUNDS 10

/*
 * Timers at +0.5 ms (ns scale), +1.5 ms (us scale) and ~+20 ms (ms scale).
 * Each blocking wait ends at a deadline and runs at least one timer, so
 * three waits at most, each reporting progress: a timeout rounded down
 * (or lost to the ms granularity of epoll_wait) shows up as an extra wait
 * that returns false, or as a callback before its deadline.
 */
static void timers_not_early(bool gsource)
{
    AioContext *ctx = aio_context_new(&error_abort);
    GMainContext *gctx = NULL;
    EarlyTimer et[3];
    int round, i, waits;

    if (gsource) {
        GSource *src = aio_get_g_source(ctx);

        gctx = g_main_context_new();
        g_source_attach(src, gctx);
        g_source_unref(src);
    }
    aio_timer_init(ctx, &et[0].timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                   early_timer_cb, &et[0]);
    aio_timer_init(ctx, &et[1].timer, QEMU_CLOCK_REALTIME, SCALE_US,
                   early_timer_cb, &et[1]);
    aio_timer_init(ctx, &et[2].timer, QEMU_CLOCK_REALTIME, SCALE_MS,
                   early_timer_cb, &et[2]);

    for (round = 0; round < EARLY_ROUNDS; round++) {
        timer_mod(&et[0].timer, now_ns() + 500 * SCALE_US);
        timer_mod(&et[1].timer, qemu_clock_get_us(QEMU_CLOCK_REALTIME) +
                                1500);
        timer_mod(&et[2].timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 20);
        for (i = 0; i < 3; i++) {
            et[i].deadline = timer_expire_time_ns(&et[i].timer);
            et[i].fired = false;
        }
        /* Take the notification of the arming, without waiting. */
        if (gsource) {
            while (g_main_context_iteration(gctx, false)) {
                /* nothing due yet */
            }
        } else {
            aio_poll(ctx, false);
        }
        for (waits = 0; !(et[0].fired && et[1].fired && et[2].fired);
             waits++) {
            bool progress;

            if (gsource) {
                progress = g_main_context_iteration(gctx, true);
            } else {
                progress = aio_poll(ctx, true);
            }
            if (!progress) {
                g_error("a blocking wait returned before any deadline "
                        "(round %d, wait %d)", round, waits);
            }
        }
        g_assert_cmpint(waits, <=, 3);
    }

    for (i = 0; i < 3; i++) {
        timer_del(&et[i].timer);
    }
    if (gsource) {
        g_source_destroy(&ctx->source);
        g_main_context_unref(gctx);
    }
    aio_context_unref(ctx);
}

static void test_timers_not_early(void)
{
    timers_not_early(false);
}

static void test_timers_not_early_gsource(void)
{
    timers_not_early(true);
}

/* ---- 10. io_poll_ready only after io_poll returned true -------------- */

typedef struct PollReady {
    AioContext *ctx;
    EventNotifier e;
    EventNotifier kick;     /* ends waits; pollable, never ready by polling */
    QEMUTimer bound;        /* ends the waits that nothing else ends */
    bool pending;           /* work for io_poll to find */
    int trues;              /* true returns since the last io_poll_ready */
    long n_poll, n_true, n_ready, n_read;
    int depth, max_depth;
    bool nest;
} PollReady;

static bool pr_io_poll(void *opaque)
{
    PollReady *pr = container_of(opaque, PollReady, e);

    pr->n_poll++;
    if (pr->pending) {
        pr->trues++;
        pr->n_true++;
        return true;
    }
    return false;
}

static void pr_io_poll_ready(EventNotifier *e)
{
    PollReady *pr = container_of(e, PollReady, e);

    if (pr->trues == 0) {
        g_error("io_poll_ready called without a true io_poll since the "
                "last one (call %ld, depth %d)", pr->n_ready + 1, pr->depth);
    }
    pr->trues = 0;
    pr->n_ready++;
    pr->pending = false;            /* consumed, before any nested poll */
    pr->depth++;
    pr->max_depth = MAX(pr->max_depth, pr->depth);
    if (pr->nest) {
        /* Nothing is pending: only the bound timer ends this. */
        timer_mod_ns(&pr->bound, now_ns() + 200 * SCALE_US);
        aio_poll(pr->ctx, true);
    }
    pr->depth--;
}

static void pr_io_read(EventNotifier *e)
{
    PollReady *pr = container_of(e, PollReady, e);

    event_notifier_test_and_clear(e);
    pr->n_read++;
}

static void pr_bound_cb(void *opaque)
{
}

static bool pr_kick_poll(void *opaque)
{
    return false;
}

static void pr_kick_read(EventNotifier *e)
{
    event_notifier_test_and_clear(e);
}

/*
 * Busy polling on (1 ms window at most); io_poll reports work on every
 * third round.  Every io_poll_ready must follow a true io_poll, through
 * aio_poll() and through the GSource (whose prepare ends polling mode
 * with a last io_poll); with @nest it runs a blocking aio_poll() itself,
 * which must not call it again for work already consumed.
 */
static void io_poll_ready_run(bool nest)
{
    PollReady pr = { .nest = nest };
    GMainContext *gctx = g_main_context_new();
    GSource *src;
    long gsource_ready = 0;
    int left_polling = 0;
    int round;

    pr.ctx = aio_context_new(&error_abort);
    src = aio_get_g_source(pr.ctx);
    g_source_attach(src, gctx);
    g_source_unref(src);
    aio_context_set_poll_params(pr.ctx, SCALE_MS, 2, 2, &error_abort);
    aio_timer_init(pr.ctx, &pr.bound, QEMU_CLOCK_REALTIME, SCALE_NS,
                   pr_bound_cb, NULL);
    g_assert_cmpint(event_notifier_init(&pr.e, true), ==, 0);
    aio_set_event_notifier(pr.ctx, &pr.e, pr_io_read, pr_io_poll,
                           pr_io_poll_ready);
    g_assert_cmpint(event_notifier_init(&pr.kick, false), ==, 0);
    aio_set_event_notifier(pr.ctx, &pr.kick, pr_kick_read, pr_kick_poll,
                           NULL);
    /*
     * The first fd event puts the handler into the poll set.  With every
     * handler pollable, a poll that does not block (here: the one that
     * takes the notification of set_poll_params) leaves the fds to io_poll
     * and skips the kernel, so it takes a second, blocking one.
     */
    g_assert_false(aio_poll(pr.ctx, true));
    g_assert_true(aio_poll(pr.ctx, true));
    g_assert_cmpint(pr.n_read, ==, 1);

    /*
     * Rounds of four:
     * 0. aio_poll() with work: busy polling finds it and the context stays
     *    in polling mode;
     * 1. a GLib iteration with work: its prepare leaves polling mode, and
     *    the last io_poll finds it;
     * 2. aio_poll() without work, ended by another fd: it polls the window
     *    in vain, leaves polling mode (a last io_poll, false) and waits (unless
     *    the thread lost the CPU for the whole 100 ms timeout while polling);
     * 3. a GLib iteration with work but not polling: no io_poll, so no
     *    io_poll_ready.
     */
    for (round = 0; round < 400; round++) {
        int phase = round % 4;
        long before = pr.n_ready;
        bool started = pr.ctx->poll_started;

        pr.pending = phase != 2;
        switch (phase) {
        case 0:
            timer_mod_ns(&pr.bound, now_ns() + 200 * SCALE_US);
            aio_poll(pr.ctx, true);
            break;
        case 1:
            g_main_context_iteration(gctx, false);
            if (pr.n_ready > before) {
                /* Only the prepare of a context that was polling polls. */
                g_assert_true(started);
                gsource_ready += pr.n_ready - before;
            }
            break;
        case 2:
            timer_mod_ns(&pr.bound, now_ns() + 100 * SCALE_MS);
            aio_poll(pr.ctx, false);    /* takes the arming's notification */
            event_notifier_set(&pr.kick);
            aio_poll(pr.ctx, true);
            left_polling += !pr.ctx->poll_started;
            break;
        case 3:
            g_main_context_iteration(gctx, false);
            if (!started) {
                g_assert_cmpint(pr.n_ready, ==, before);
            }
            break;
        }
    }
    g_test_message("io_poll: %ld calls, %ld true; io_poll_ready: %ld "
                   "(%ld from the GSource), max depth %d", pr.n_poll,
                   pr.n_true, pr.n_ready, gsource_ready, pr.max_depth);
    g_assert_cmpint(pr.n_ready, >, 0);
    g_assert_cmpint(gsource_ready, >, 0);
    g_assert_cmpint(left_polling, >, 0);
    g_assert_cmpint(pr.n_ready, <=, pr.n_true);
    g_assert_cmpint(pr.max_depth, ==, 1);

    aio_set_event_notifier(pr.ctx, &pr.e, NULL, NULL, NULL);
    aio_set_event_notifier(pr.ctx, &pr.kick, NULL, NULL, NULL);
    timer_del(&pr.bound);
    ctx_settle(pr.ctx);
    event_notifier_cleanup(&pr.e);
    event_notifier_cleanup(&pr.kick);
    g_source_destroy(&pr.ctx->source);
    aio_context_unref(pr.ctx);
    g_main_context_unref(gctx);
}

static void test_io_poll_ready_after_true(void)
{
    io_poll_ready_run(false);
}

static void test_io_poll_ready_nested_poll(void)
{
    io_poll_ready_run(true);
}

/* ---- 11. Adaptive polling: the window, and an idle context's CPU ----- */

/*
 * QEMU 9.x keeps one polling window per context (ctx->poll_ns), not one
 * per handler.  What is deterministic: the window grows (x2 from 4 us)
 * while events come sooner than poll_max_ns but later than the window,
 * stays put while they come within it, and shrinks by poll_shrink after
 * a block longer than poll_max_ns.
 */
#define ADAPT_MAX_NS (100 * SCALE_MS)
#define ADAPT_PERIOD_NS (50 * SCALE_US)

typedef struct Adapt {
    AioContext *ctx;
    EventNotifier fast, never;
    QEMUTimer tick;
    bool fast_on;
    int64_t fast_last;
    long fast_ready, never_calls;
} Adapt;

/* Ready ADAPT_PERIOD_NS after it was last served: "within microseconds". */
static bool adapt_fast_poll(void *opaque)
{
    Adapt *a = container_of(opaque, Adapt, fast);

    return a->fast_on && now_ns() - a->fast_last >= ADAPT_PERIOD_NS;
}

static void adapt_fast_ready(EventNotifier *e)
{
    Adapt *a = container_of(e, Adapt, fast);

    a->fast_ready++;
    a->fast_last = now_ns();
}

static void adapt_fast_read(EventNotifier *e)
{
    Adapt *a = container_of(e, Adapt, fast);

    event_notifier_test_and_clear(e);
    a->fast_last = now_ns();
}

static bool adapt_never_poll(void *opaque)
{
    Adapt *a = container_of(opaque, Adapt, never);

    a->never_calls++;
    return false;
}

static void adapt_never_read(EventNotifier *e)
{
    g_error("the never-ready handler ran");
}

/* A 1 ms tick ends the waits while the window is too short to see "fast". */
static void adapt_tick_cb(void *opaque)
{
    Adapt *a = opaque;

    timer_mod_ns(&a->tick, now_ns() + SCALE_MS);
}

static void test_adaptive_window(void)
{
    Adapt a = { 0 };
    int64_t window, reached = 0;
    int i;

    a.ctx = aio_context_new(&error_abort);
    aio_context_set_poll_params(a.ctx, ADAPT_MAX_NS, 2, 2, &error_abort);
    g_assert_cmpint(event_notifier_init(&a.fast, true), ==, 0);
    g_assert_cmpint(event_notifier_init(&a.never, false), ==, 0);
    aio_set_event_notifier(a.ctx, &a.fast, adapt_fast_read, adapt_fast_poll,
                           adapt_fast_ready);
    aio_set_event_notifier(a.ctx, &a.never, adapt_never_read,
                           adapt_never_poll, NULL);
    aio_timer_init(a.ctx, &a.tick, QEMU_CLOCK_REALTIME, SCALE_NS,
                   adapt_tick_cb, &a);
    timer_mod_ns(&a.tick, now_ns() + SCALE_MS);
    a.fast_on = true;
    /* As in io_poll_ready_run(): "fast" joins the poll set. */
    g_assert_false(aio_poll(a.ctx, true));
    g_assert_true(aio_poll(a.ctx, true));

    /* Grow until polling catches "fast" before the tick. */
    for (i = 0; i < 200 && !reached; i++) {
        aio_poll(a.ctx, true);
        window = qatomic_read(&a.ctx->poll_ns);
        g_assert_cmpint(window, <=, ADAPT_MAX_NS);
        if (window >= ADAPT_PERIOD_NS) {
            reached = window;
        }
    }
    g_test_message("window %" PRId64 " ns after %d iterations", reached, i);
    g_assert_cmpint(reached, >=, ADAPT_PERIOD_NS);
    /* Never above what the growth rule can produce. */
    g_assert_cmpint(reached, <=, 2 * ADAPT_PERIOD_NS + 4000);
    for (i = 0; i < 200; i++) {
        aio_poll(a.ctx, true);
    }
    g_assert_cmpint(a.fast_ready, >, 0);
    /* A handler that never fired is not in the poll set: never polled. */
    g_assert_cmpint(a.never_calls, ==, 0);

    /* "fast" goes quiet; a 150 ms block halves the window, twice. */
    a.fast_on = false;
    timer_del(&a.tick);
    for (i = 0; i < 2; i++) {
        timer_mod_ns(&a.tick, now_ns() + ADAPT_MAX_NS * 3 / 2);
        aio_poll(a.ctx, false);         /* the arming's notification */
        window = qatomic_read(&a.ctx->poll_ns);
        g_assert_true(aio_poll(a.ctx, true));
        g_assert_cmpint(a.ctx->poll_ns, ==, window / 2);
        timer_del(&a.tick);
    }

    aio_set_event_notifier(a.ctx, &a.fast, NULL, NULL, NULL);
    aio_set_event_notifier(a.ctx, &a.never, NULL, NULL, NULL);
    ctx_settle(a.ctx);
    event_notifier_cleanup(&a.fast);
    event_notifier_cleanup(&a.never);
    aio_context_unref(a.ctx);
}

/* CPU time of thread @tid in ns, from /proc (schedstat: time on CPU). */
static int64_t thread_cpu_ns(int tid)
{
    g_autofree char *path =
        g_strdup_printf("/proc/self/task/%d/schedstat", tid);
    g_autofree char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return -1;
    }
    return g_ascii_strtoll(text, NULL, 10);
}

static int64_t self_cpu_ns(void)
{
    struct timespec ts;

    g_assert_cmpint(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), ==, 0);
    return ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
}

static void idle_tick_cb(void *opaque)
{
    bool *fired = opaque;

    *fired = true;
}

#define IDLE_NS (2 * NANOSECONDS_PER_SECOND)
#define IDLE_CPU_CAP_NS (100 * SCALE_MS)

/*
 * A context with IOThread polling parameters and its window wide open (as
 * after a burst of fast events), then idle for 2 s with a timer at +2 s;
 * an IOThread with the defaults sits idle over the same 2 s.  Each may use
 * 5% of a core, 100 ms; a healthy one uses well under 1 ms (it polls for
 * 32 us, then sleeps).  A resource bound with a 20x margin: a loop that
 * spins instead of sleeping burns the whole 2 s.
 */
static void test_idle_cpu(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    IOThread *iothread = iothread_create("idle-cpu", &error_abort);
    int tid = iothread_get_thread_id(iothread);
    QEMUTimer tick;
    bool fired;
    int64_t cpu0, io0, cpu, io, start;
    int i;

    aio_context_set_poll_params(ctx, IOTHREAD_POLL_MAX_NS_DEFAULT, 2, 2,
                                &error_abort);
    aio_timer_init(ctx, &tick, QEMU_CLOCK_REALTIME, SCALE_NS, idle_tick_cb,
                   &fired);
    /* Its own notifier fires once and so joins the busy-poll set. */
    event_notifier_set(&ctx->notifier);
    for (i = 0; i < 2; i++) {
        aio_poll(ctx, true);
    }
    /*
     * Open the window by hand, as a burst of fast events would: growing it
     * takes waits that end a little after the window, which a test cannot
     * time reliably on a loaded machine.
     */
    qatomic_set(&ctx->poll_ns, IOTHREAD_POLL_MAX_NS_DEFAULT);

    g_assert_true(thread_probe_wait_sleeping(tid));
    io0 = thread_cpu_ns(tid);
    cpu0 = self_cpu_ns();
    start = now_ns();
    fired = false;
    timer_mod_ns(&tick, start + IDLE_NS);
    while (!fired) {
        aio_poll(ctx, true);
    }
    cpu = self_cpu_ns() - cpu0;
    io = thread_cpu_ns(tid) - io0;
    g_test_message("idle %" PRId64 " ms: home thread %" PRId64 " us CPU, "
                   "IOThread %" PRId64 " us CPU", (now_ns() - start) / 1000000,
                   cpu / 1000, io0 >= 0 ? io / 1000 : -1);
    g_assert_cmpint(cpu, <, IDLE_CPU_CAP_NS);
    /*
     * It polled, then slept longer than poll_max_ns: the window halved, at
     * least once (a slow run may take more than one long wait to fire).
     */
    g_assert_cmpint(ctx->poll_ns, <=, IOTHREAD_POLL_MAX_NS_DEFAULT / 2);
    if (io0 >= 0) {
        g_assert_cmpint(io, <, IDLE_CPU_CAP_NS);
    }

    iothread_destroy(iothread);
    timer_del(&tick);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* ---- 16. Stopping IOThreads blocked with nothing registered ---------- */

#define STOP_CYCLES SCALED(200)

static void test_stop_idle_blocked(void)
{
    IOThreadOptions opts = IOTHREAD_OPTIONS_DEFAULT;
    int threads = count_dir_entries("/proc/self/task");
    int fds;
    int i;

    /* Its first use takes a descriptor for good: count after that. */
    g_main_context_default();
    fds = count_fds();
    watchdog_start("stop of an idle, blocked IOThread");
    for (i = 0; i < STOP_CYCLES; i++) {
        IOThread *iothread;

        opts.run_gcontext = i % 2;
        iothread = iothread_create_full("idle-stop", &opts, &error_abort);
        g_assert_true(thread_probe_wait_sleeping(
                          iothread_get_thread_id(iothread)));
        iothread_stop(iothread);
        iothread_destroy(iothread);
        progress();
    }
    watchdog_stop();
    g_assert_true(threads_back_to(threads));
    g_assert_cmpint(count_fds(), ==, fds);
}

/* ---- 16. Coroutines scheduled onto an IOThread while it stops -------- */

#define COSTOP_CYCLES SCALED(1000)
#define COSTOP_PRODUCERS 2
#define COSTOP_FIRST 20             /* coroutines run before the stop */
#define COSTOP_AFTER 8              /* per producer, after the stop returned */
#define COSTOP_BEFORE 64           /* per producer, at most, before that */
#define COSTOP_SPIN_CAP 100000000L

typedef struct CoStop CoStop;

/* One coroutine.  Its fields are written by whoever runs it, once. */
typedef struct CoStopRec {
    CoStop *cs;
    int runs;                   /* atomic */
    int tid;                    /* thread that ran it */
    bool ctx_ok;                /* ran with the context as its current one */
    bool must_run;              /* scheduled before iothread_stop() began */
    bool after_stop;            /* scheduled after iothread_stop() returned */
} CoStopRec;

struct CoStop {
    AioContext *ctx;
    int stopping;               /* atomic: set before iothread_stop() */
    int stopped;                /* atomic: set after it returned */
    long ran;                   /* atomic */
    QemuSemaphore first;        /* COSTOP_FIRST coroutines have run */
    GPtrArray *recs[COSTOP_PRODUCERS];  /* each producer's own */
};

static void coroutine_fn costop_co(void *opaque)
{
    CoStopRec *r = opaque;

    r->tid = qemu_get_thread_id();
    r->ctx_ok = qemu_get_current_aio_context() == r->cs->ctx;
    qatomic_inc(&r->runs);
    if (qatomic_fetch_inc(&r->cs->ran) + 1 == COSTOP_FIRST) {
        qemu_sem_post(&r->cs->first);
    }
    progress();
}

typedef struct CoStopProducer {
    CoStop *cs;
    int index;
    QemuThread thread;
} CoStopProducer;

static void *costop_producer_fn(void *opaque)
{
    CoStopProducer *p = opaque;
    CoStop *cs = p->cs;
    GPtrArray *recs = cs->recs[p->index];
    int after = 0;

    /* The test's reference keeps the context valid throughout. */
    while (after < COSTOP_AFTER) {
        CoStopRec *r;
        long spins;

        /* At most COSTOP_BEFORE before the stop: wait for it then. */
        for (spins = 0; recs->len >= COSTOP_BEFORE &&
                        !qatomic_read(&cs->stopped); spins++) {
            g_assert_cmpint(spins, <, COSTOP_SPIN_CAP);
            g_thread_yield();
        }
        r = g_new0(CoStopRec, 1);

        r->cs = cs;
        r->after_stop = qatomic_read(&cs->stopped);
        g_ptr_array_add(recs, r);
        aio_co_schedule(cs->ctx, qemu_coroutine_create(costop_co, r));
        /*
         * Pairs with the smp_mb() before iothread_stop(): if "stopping"
         * is still clear, our co_schedule_bh was queued before the stop's
         * BH, so the IOThread runs this coroutine before it ends.
         */
        smp_mb();
        r->must_run = !qatomic_read(&cs->stopping);
        after += r->after_stop;
    }
    g_assert_cmpint(after, ==, COSTOP_AFTER);
    return NULL;
}

typedef struct CoStopAdopter {
    AioContext *ctx;
    int tid;
    int polls;
} CoStopAdopter;

/*
 * A thread that takes the stopped IOThread's context over and runs it.
 * Its own reference is safe to take: the coroutines still queued hold
 * theirs; the last coroutine's is dropped while the loop runs.
 */
static void *costop_adopter_fn(void *opaque)
{
    CoStopAdopter *a = opaque;

    a->tid = qemu_get_thread_id();
    aio_context_ref(a->ctx);
    qemu_set_current_aio_context(a->ctx);
    while (a->polls < 1000 && aio_poll(a->ctx, false)) {
        a->polls++;
    }
    g_assert_false(aio_poll(a->ctx, false));
    aio_context_unref(a->ctx);
    return NULL;
}

/*
 * Producers keep scheduling coroutines onto an IOThread with
 * aio_co_schedule() while it is stopped (in aio_poll() mode and, every
 * other cycle, GMainContext mode) and go on after the stop until each has
 * scheduled COSTOP_AFTER more; then the IOThread is destroyed.  The stop
 * returns (no hang); every coroutine queued before the stop began ran in
 * the IOThread; none ran after iothread_stop() returned; the rest hold
 * their context until a thread that takes it over runs them, each exactly
 * once -- in half of the cycles the test has dropped its own reference by
 * then, so that theirs are all that keep the context (ASan would catch a
 * use-after-free).  Then the last reference frees the context, and no
 * thread or descriptor is left.
 */
static void test_co_schedule_while_stopping(void)
{
    IOThreadOptions opts = IOTHREAD_OPTIONS_DEFAULT;
    int threads = count_threads();
    long must = 0, late = 0, in_iothread = 0, adopted = 0;
    int fds, cycle, i;
    guint j;

    g_main_context_default();
    fds = count_fds();
    watchdog_start("coroutines scheduled onto a stopping IOThread");
    for (cycle = 0; cycle < COSTOP_CYCLES; cycle++) {
        CoStop cs = { 0 };
        CoStopProducer prod[COSTOP_PRODUCERS];
        CoStopAdopter adopter = { 0 };
        QemuThread adopter_thread;
        IOThread *iothread;
        long ran_at_stop, total = 0, cycle_adopted = 0;
        int iot_tid;

        opts.run_gcontext = cycle % 2;
        iothread = iothread_create_full("co-stop", &opts, &error_abort);
        iot_tid = iothread_get_thread_id(iothread);
        cs.ctx = iothread_get_aio_context(iothread);
        aio_context_ref(cs.ctx);
        qemu_sem_init(&cs.first, 0);
        for (i = 0; i < COSTOP_PRODUCERS; i++) {
            cs.recs[i] = g_ptr_array_new_with_free_func(g_free);
            prod[i] = (CoStopProducer){ .cs = &cs, .index = i };
            qemu_thread_create(&prod[i].thread, "co-stop-producer",
                               costop_producer_fn, &prod[i],
                               QEMU_THREAD_JOINABLE);
        }

        sem_wait_or_abort(&cs.first, "first coroutines in the IOThread");
        qatomic_set(&cs.stopping, 1);
        smp_mb();
        iothread_stop(iothread);
        ran_at_stop = qatomic_read(&cs.ran);
        qatomic_set(&cs.stopped, 1);
        for (i = 0; i < COSTOP_PRODUCERS; i++) {
            qemu_thread_join(&prod[i].thread);
        }
        /* Nothing runs the context now. */
        g_assert_cmpint(qatomic_read(&cs.ran), ==, ran_at_stop);
        iothread_destroy(iothread);
        g_assert_cmpint(qatomic_read(&cs.ran), ==, ran_at_stop);
        if (cycle % 4 >= 2) {
            /*
             * Only the coroutines' references keep the context now (it
             * is freed with the adopter's); without them this would be
             * a use-after-free.
             */
            aio_context_unref(cs.ctx);
        }

        adopter.ctx = cs.ctx;
        qemu_thread_create(&adopter_thread, "co-stop-adopter",
                           costop_adopter_fn, &adopter,
                           QEMU_THREAD_JOINABLE);
        qemu_thread_join(&adopter_thread);
        g_assert_cmpint(adopter.tid, !=, iot_tid);

        for (i = 0; i < COSTOP_PRODUCERS; i++) {
            for (j = 0; j < cs.recs[i]->len; j++) {
                CoStopRec *r = g_ptr_array_index(cs.recs[i], j);

                g_assert_cmpint(r->runs, ==, 1);
                g_assert_true(r->ctx_ok);
                g_assert_true(r->tid == iot_tid || r->tid == adopter.tid);
                if (r->must_run) {
                    g_assert_cmpint(r->tid, ==, iot_tid);
                    must++;
                }
                if (r->after_stop) {
                    g_assert_cmpint(r->tid, ==, adopter.tid);
                    late++;
                }
                in_iothread += r->tid == iot_tid;
                cycle_adopted += r->tid == adopter.tid;
            }
            total += cs.recs[i]->len;
            g_ptr_array_free(cs.recs[i], true);
        }
        /* Each exactly once: before the stop, or by the new thread. */
        g_assert_cmpint(qatomic_read(&cs.ran), ==, total);
        g_assert_cmpint(cycle_adopted, ==, total - ran_at_stop);
        adopted += cycle_adopted;
        qemu_sem_destroy(&cs.first);
        if (cycle % 4 < 2) {
            /* The last reference: the context is freed now. */
            aio_context_unref(cs.ctx);
        }
    }
    watchdog_stop();
    g_test_message("%d cycles: %ld coroutines ran in their IOThread (%ld "
                   "of them had to), %ld in the thread that took the "
                   "context over (%ld scheduled after the stop)",
                   COSTOP_CYCLES, in_iothread, must, adopted, late);
    g_assert_cmpint(late, ==,
                    (long)COSTOP_CYCLES * COSTOP_PRODUCERS * COSTOP_AFTER);
    g_assert_true(threads_back_to(threads));
    g_assert_cmpint(count_fds(), ==, fds);
}

/* ======================================================================= */
/* Section 3, block layer: thread pool jobs and I/O engine requests        */
/* ======================================================================= */

/* ---- Thread pool jobs from IOThreads, with cancellation --------------- */

#define POOL_CTXS 3
#define POOL_PRODUCERS 2
#define POOL_OPS SCALED(15000)          /* per producer */
#define POOL_BATCH 4                    /* jobs per submitting BH */
#define POOL_CO_JOBS 3                  /* jobs per coroutine, one by one */
/* Two workers per context, so that queues form and cancels can win. */
#define POOL_MAX_THREADS 2

enum {
    POOL_OP_AIO,        /* a BH submits POOL_BATCH jobs and cancels some */
    POOL_OP_CO,         /* a coroutine runs POOL_CO_JOBS jobs in turn */
    POOL_OP_GATED,      /* both workers held: cancels with known outcome */
    POOL_OP_BH,         /* a plain one-shot BH */
    POOL_OP_KINDS
};

/* What happens to a job of a POOL_OP_AIO batch after its submission. */
enum {
    POOL_KEEP,
    POOL_CANCEL_NOW,    /* bdrv_aio_cancel_async() right away */
    POOL_CANCEL_LATER,  /* the same from a later BH, unless completed */
    POOL_CANCEL_SYNC,   /* bdrv_aio_cancel(): returns after the callback */
};

typedef struct PoolStress PoolStress;

typedef struct PoolCtx {
    PoolStress *ps;
    IOThread *iothread;
    AioContext *ctx;
    QemuSemaphore started;      /* a gate job has a worker */
    QemuSemaphore gate;         /* lets a gate job return */
    long jobs;                  /* atomic: jobs submitted here */
    long cancelled;             /* atomic: completions with -ECANCELED */
} PoolCtx;

/*
 * One job.  The plan (id, cancel, gate, co) is written before the threads
 * start; acb only in the home thread; the rest is read by the test once
 * the IOThreads are gone.
 */
typedef struct PoolJob {
    PoolCtx *pc;
    int id;                     /* what the function returns */
    int cancel;                 /* POOL_KEEP, ... */
    bool gate;                  /* holds its worker until pc->gate */
    bool co;                    /* submitted with thread_pool_submit_co */
    bool must_cancel;           /* cancelled while surely queued */
    bool must_complete;         /* cancelled while surely running */
    BlockAIOCB *acb;            /* until the callback */
    int func_runs;              /* atomic */
    int cb_runs;                /* atomic: callbacks, or returns to the co */
    int ret;                    /* what the callback (or coroutine) got */
} PoolJob;

typedef struct PoolOp {
    PoolCtx *pc;
    int kind;
    PoolJob *jobs;
    int n_jobs;
} PoolOp;

typedef struct PoolProducer {
    PoolStress *ps;
    QemuThread thread;
    PoolOp *ops;
} PoolProducer;

struct PoolStress {
    PoolCtx ctxs[POOL_CTXS];
    PoolProducer producers[POOL_PRODUCERS];
    GPtrArray *jobs;            /* every PoolJob */
    long expected;              /* completions + coroutine jobs + BHs */
    long settled;               /* atomic */
    int errors;                 /* atomic: checks failed in other threads */
    QemuSemaphore done;
};

/* A check failed in a thread where g_assert would hide the others. */
static void pool_error(PoolStress *ps, const char *what, int id)
{
    if (qatomic_fetch_inc(&ps->errors) < 10) {
        fprintf(stderr, "thread pool stress: job %d: %s\n", id, what);
    }
}

static void pool_settle(PoolStress *ps)
{
    if (qatomic_fetch_inc(&ps->settled) + 1 == ps->expected) {
        qemu_sem_post(&ps->done);
    }
    progress();
}

/* Worker threads run no AioContext. */
static int pool_job_fn(void *opaque)
{
    PoolJob *j = opaque;

    if (qemu_get_current_aio_context()) {
        pool_error(j->pc->ps, "function ran in a thread with a context",
                   j->id);
    }
    qatomic_inc(&j->func_runs);
    if (j->gate) {
        qemu_sem_post(&j->pc->started);
        qemu_sem_wait(&j->pc->gate);
    }
    return j->id;
}

static void pool_job_cb(void *opaque, int ret)
{
    PoolJob *j = opaque;

    if (qemu_get_current_aio_context() != j->pc->ctx) {
        pool_error(j->pc->ps, "callback ran in the wrong thread", j->id);
    }
    if (ret == -ECANCELED) {
        qatomic_inc(&j->pc->cancelled);
    }
    j->ret = ret;
    j->acb = NULL;
    qatomic_inc(&j->cb_runs);
    pool_settle(j->pc->ps);
}

static void pool_submit(PoolJob *j)
{
    qatomic_inc(&j->pc->jobs);
    /* The callback runs from a later BH of this thread, never in here. */
    j->acb = thread_pool_submit_aio(pool_job_fn, j, pool_job_cb, j);
}

static bool pool_job_pending(PoolJob *j)
{
    return !qatomic_read(&j->cb_runs);
}

static void pool_cancel_later_bh(void *opaque)
{
    PoolJob *j = opaque;

    /* Once the callback has run the AIOCB is gone. */
    if (pool_job_pending(j)) {
        bdrv_aio_cancel_async(j->acb);
    }
}

static void pool_aio_bh(void *opaque)
{
    PoolOp *op = opaque;
    int i;

    for (i = 0; i < op->n_jobs; i++) {
        pool_submit(&op->jobs[i]);
    }
    /*
     * A synchronous cancel polls nested and may complete the others:
     * each cancel looks first.
     */
    for (i = 0; i < op->n_jobs; i++) {
        PoolJob *j = &op->jobs[i];

        if (!pool_job_pending(j)) {
            continue;
        }
        switch (j->cancel) {
        case POOL_CANCEL_NOW:
            bdrv_aio_cancel_async(j->acb);
            break;
        case POOL_CANCEL_LATER:
            aio_bh_schedule_oneshot(op->pc->ctx, pool_cancel_later_bh, j);
            break;
        case POOL_CANCEL_SYNC:
            bdrv_aio_cancel(j->acb);
            if (qatomic_read(&j->cb_runs) != 1) {
                pool_error(op->pc->ps, "bdrv_aio_cancel returned before "
                           "the callback ran", j->id);
            }
            break;
        }
    }
}

/*
 * POOL_MAX_THREADS gate jobs, then followers.  Every gate job of earlier
 * gated ops has started (each op waited for its own), and at most as many
 * gate jobs have returned as gates were opened before this op; so once
 * this op's gates have started, at least POOL_MAX_THREADS gate jobs hold
 * workers, which is all the pool may have.  A follower cancelled now is
 * still queued and must get -ECANCELED; this op's first gate job is
 * running (or done) and must complete normally.
 */
static void pool_gated_bh(void *opaque)
{
    PoolOp *op = opaque;
    PoolCtx *pc = op->pc;
    int i;

    for (i = 0; i < POOL_MAX_THREADS; i++) {
        pool_submit(&op->jobs[i]);
    }
    for (i = 0; i < POOL_MAX_THREADS; i++) {
        sem_wait_or_abort(&pc->started, "gate job start");
    }
    op->jobs[0].must_complete = true;
    bdrv_aio_cancel_async(op->jobs[0].acb);
    for (i = POOL_MAX_THREADS; i < op->n_jobs; i++) {
        pool_submit(&op->jobs[i]);
    }
    for (i = POOL_MAX_THREADS; i < op->n_jobs; i += 2) {
        op->jobs[i].must_cancel = true;
        bdrv_aio_cancel_async(op->jobs[i].acb);
    }
    for (i = 0; i < POOL_MAX_THREADS; i++) {
        qemu_sem_post(&pc->gate);
    }
}

static void coroutine_fn pool_co(void *opaque)
{
    PoolOp *op = opaque;
    int i;

    for (i = 0; i < op->n_jobs; i++) {
        PoolJob *j = &op->jobs[i];

        qatomic_inc(&op->pc->jobs);
        j->ret = thread_pool_submit_co(pool_job_fn, j);
        if (qemu_get_current_aio_context() != op->pc->ctx) {
            pool_error(op->pc->ps, "coroutine resumed in the wrong thread",
                       j->id);
        }
        qatomic_inc(&j->cb_runs);
        pool_settle(op->pc->ps);
    }
}

static void pool_plain_bh(void *opaque)
{
    PoolOp *op = opaque;

    if (qemu_get_current_aio_context() != op->pc->ctx) {
        pool_error(op->pc->ps, "BH ran in the wrong thread", -1);
    }
    pool_settle(op->pc->ps);
}

static void *pool_producer_fn(void *opaque)
{
    PoolProducer *p = opaque;
    int i;

    for (i = 0; i < POOL_OPS; i++) {
        PoolOp *op = &p->ops[i];

        switch (op->kind) {
        case POOL_OP_AIO:
            aio_bh_schedule_oneshot(op->pc->ctx, pool_aio_bh, op);
            break;
        case POOL_OP_CO:
            /* Created here, run there: aio_co_schedule across threads. */
            aio_co_schedule(op->pc->ctx, qemu_coroutine_create(pool_co, op));
            break;
        case POOL_OP_GATED:
            aio_bh_schedule_oneshot(op->pc->ctx, pool_gated_bh, op);
            break;
        case POOL_OP_BH:
            aio_bh_schedule_oneshot(op->pc->ctx, pool_plain_bh, op);
            break;
        }
    }
    return NULL;
}

/* Plan @op: its kind's jobs, each with its fate. */
static void pool_plan_op(PoolStress *ps, PoolOp *op, GRand *rand)
{
    static const int n_jobs[POOL_OP_KINDS] = {
        [POOL_OP_AIO] = POOL_BATCH,
        [POOL_OP_CO] = POOL_CO_JOBS,
        [POOL_OP_GATED] = POOL_MAX_THREADS + POOL_BATCH,
    };
    int r = g_rand_int_range(rand, 0, 100);
    int i;

    op->pc = &ps->ctxs[g_rand_int_range(rand, 0, POOL_CTXS)];
    op->kind = r < 40 ? POOL_OP_AIO : r < 70 ? POOL_OP_CO :
               r < 80 ? POOL_OP_GATED : POOL_OP_BH;
    op->n_jobs = n_jobs[op->kind];
    op->jobs = g_new0(PoolJob, op->n_jobs);
    ps->expected += op->kind == POOL_OP_BH ? 1 : op->n_jobs;
    for (i = 0; i < op->n_jobs; i++) {
        PoolJob *j = &op->jobs[i];

        j->pc = op->pc;
        j->id = ps->jobs->len;
        j->co = op->kind == POOL_OP_CO;
        j->gate = op->kind == POOL_OP_GATED && i < POOL_MAX_THREADS;
        if (op->kind == POOL_OP_AIO) {
            r = g_rand_int_range(rand, 0, 100);
            j->cancel = r < 25 ? POOL_CANCEL_NOW : r < 40 ? POOL_CANCEL_LATER :
                        r < 45 ? POOL_CANCEL_SYNC : POOL_KEEP;
        }
        g_ptr_array_add(ps->jobs, j);
    }
}

/*
 * POOL_PRODUCERS threads schedule POOL_OPS operations each into
 * POOL_CTXS IOThreads (two pool workers each): BHs that submit jobs with
 * thread_pool_submit_aio() and cancel some of them (asynchronously at
 * once or later, or synchronously), coroutines that run jobs with
 * thread_pool_submit_co(), gated rounds whose cancels have a known
 * outcome, and plain BHs.  Every function ran exactly once, in a worker,
 * unless its job was cancelled before it ran (then the callback got
 * -ECANCELED); every callback ran exactly once, in its IOThread; the
 * pool's own counters agree.
 */
static void test_pool_mix(void)
{
    PoolStress *ps = g_new0(PoolStress, 1);
    int threads = count_dir_entries("/proc/self/task");
    int fds = count_fds();
    long cancelled = 0, must_cancel = 0, must_complete = 0, co_jobs = 0;
    long aio_jobs = 0, cancel_tries = 0;
    int64_t start;
    guint i;
    int c, p;

    qemu_sem_init(&ps->done, 0);
    ps->jobs = g_ptr_array_new();
    for (c = 0; c < POOL_CTXS; c++) {
        g_autofree char *name = g_strdup_printf("pool%d", c);
        IOThreadOptions opts = IOTHREAD_OPTIONS_DEFAULT;
        PoolCtx *pc = &ps->ctxs[c];

        pc->ps = ps;
        opts.thread_pool_min = 0;
        opts.thread_pool_max = POOL_MAX_THREADS;
        pc->iothread = iothread_create_full(name, &opts, &error_abort);
        pc->ctx = iothread_get_aio_context(pc->iothread);
        qemu_sem_init(&pc->started, 0);
        qemu_sem_init(&pc->gate, 0);
    }
    for (p = 0; p < POOL_PRODUCERS; p++) {
        GRand *rand = g_rand_new_with_seed(100 + p);
        PoolProducer *prod = &ps->producers[p];

        prod->ps = ps;
        prod->ops = g_new0(PoolOp, POOL_OPS);
        for (i = 0; i < POOL_OPS; i++) {
            pool_plan_op(ps, &prod->ops[i], rand);
        }
        g_rand_free(rand);
    }

    start = g_get_monotonic_time();
    watchdog_start("thread pool stress");
    for (p = 0; p < POOL_PRODUCERS; p++) {
        qemu_thread_create(&ps->producers[p].thread, "pool-producer",
                           pool_producer_fn, &ps->producers[p],
                           QEMU_THREAD_JOINABLE);
    }
    sem_wait_or_abort(&ps->done, "end of the thread pool stress");
    for (p = 0; p < POOL_PRODUCERS; p++) {
        qemu_thread_join(&ps->producers[p].thread);
    }
    watchdog_stop();

    /* The pools count what the callbacks saw, before anything is freed. */
    for (c = 0; c < POOL_CTXS; c++) {
        PoolCtx *pc = &ps->ctxs[c];
        QaioThreadPoolMetrics m;

        g_assert_true(qaio_thread_pool_metrics_get(pc->ctx, &m));
        g_assert_cmpuint(m.submitted, ==, pc->jobs);
        g_assert_cmpuint(m.completed, ==, pc->jobs);
        g_assert_cmpuint(m.cancelled, ==, pc->cancelled);
        g_assert_cmpuint(m.queued, ==, 0);
        g_assert_cmpuint(m.running, ==, 0);
        g_assert_cmpuint(m.threads, <=, POOL_MAX_THREADS);
    }
    for (c = 0; c < POOL_CTXS; c++) {
        iothread_destroy(ps->ctxs[c].iothread);
    }
    g_test_message("thread pool: %d threads x %d IOThreads, %ld operations, "
                   "%u jobs in %" PRId64 " ms", POOL_PRODUCERS, POOL_CTXS,
                   (long)POOL_PRODUCERS * POOL_OPS, ps->jobs->len,
                   (g_get_monotonic_time() - start) / 1000);

    g_assert_cmpint(ps->errors, ==, 0);
    g_assert_cmpint(ps->settled, ==, ps->expected);
    for (i = 0; i < ps->jobs->len; i++) {
        PoolJob *j = g_ptr_array_index(ps->jobs, i);

        g_assert_cmpint(j->cb_runs, ==, 1);
        if (j->ret == -ECANCELED) {
            /* Cancelled before it ran: the function never did. */
            g_assert_false(j->co);
            g_assert_true(j->cancel != POOL_KEEP || j->must_cancel);
            g_assert_false(j->must_complete);
            g_assert_cmpint(j->func_runs, ==, 0);
            cancelled++;
        } else {
            g_assert_cmpint(j->ret, ==, j->id);
            g_assert_false(j->must_cancel);
            g_assert_cmpint(j->func_runs, ==, 1);
        }
        cancel_tries += j->cancel != POOL_KEEP || j->must_cancel ||
                        j->must_complete;
        must_cancel += j->must_cancel;
        must_complete += j->must_complete;
        co_jobs += j->co;
        aio_jobs += !j->co;
    }
    g_test_message("thread pool: %ld jobs by callback, %ld from coroutines; "
                   "%ld cancels tried, %ld won (%ld had to), %ld of those "
                   "cancelled while running completed normally",
                   aio_jobs, co_jobs, cancel_tries, cancelled, must_cancel,
                   must_complete);
    g_assert_cmpint(must_cancel, >, 0);
    g_assert_cmpint(must_complete, >, 0);

    for (c = 0; c < POOL_CTXS; c++) {
        qemu_sem_destroy(&ps->ctxs[c].started);
        qemu_sem_destroy(&ps->ctxs[c].gate);
    }
    for (p = 0; p < POOL_PRODUCERS; p++) {
        for (i = 0; i < POOL_OPS; i++) {
            g_free(ps->producers[p].ops[i].jobs);
        }
        g_free(ps->producers[p].ops);
    }
    g_ptr_array_free(ps->jobs, true);
    qemu_sem_destroy(&ps->done);
    g_free(ps);
    g_assert_cmpint(count_fds(), ==, fds);
    g_assert_true(threads_back_to(threads));
}

/* ---- I/O engines: helpers --------------------------------------------- */

#define ENG_PAGE 4096

enum { ENG_LAIO, ENG_LURING, ENG_KINDS };

static const char *const eng_names[ENG_KINDS] = { "linux-aio", "io_uring" };

/*
 * Can @engine be set up here?  Tried on a scratch context; if not, the
 * reason goes into @why (for g_test_skip).
 */
static bool eng_available(int engine, char **why)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Error *err = NULL;
    bool ok;

    if (engine == ENG_LAIO) {
        ok = aio_setup_linux_aio(ctx, &err) != NULL;
    } else {
        ok = aio_setup_linux_io_uring(ctx, &err) != NULL;
    }
    if (!ok) {
        *why = g_strdup_printf("%s: %s", eng_names[engine],
                               error_get_pretty(err));
        error_free(err);
    }
    aio_context_unref(ctx);
    return ok;
}

/* In the home thread of @ctx: the engine it will submit to. */
static void eng_setup(AioContext *ctx, int engine)
{
    if (engine == ENG_LAIO) {
        aio_setup_linux_aio(ctx, &error_abort);
    } else {
        aio_setup_linux_io_uring(ctx, &error_abort);
    }
}

static int coroutine_fn eng_submit(int engine, int fd, uint64_t offset,
                                   QEMUIOVector *qiov, int type)
{
#ifdef CONFIG_LINUX_AIO
    if (engine == ENG_LAIO) {
        return laio_co_submit(fd, offset, qiov, type, 0);
    }
#endif
#ifdef CONFIG_LINUX_IO_URING
    if (engine == ENG_LURING) {
        return luring_co_submit(NULL, fd, offset, qiov, type);
    }
#endif
    g_assert_not_reached();
}

/* @len bytes aligned for O_DIRECT; release with free(). */
static uint8_t *eng_alloc(size_t len)
{
    void *p = NULL;

    g_assert_cmpint(posix_memalign(&p, ENG_PAGE, len), ==, 0);
    return p;
}

/*
 * A fresh file of @size bytes of zeroes, already unlinked: O_DIRECT where
 * some directory allows it (the engines are asynchronous only then).
 */
static int eng_open_file(off_t size, bool *direct)
{
    g_autofree char *cwd = g_get_current_dir();
    const char *dirs[] = { g_get_tmp_dir(), cwd, "/var/tmp" };
    uint8_t *page = eng_alloc(ENG_PAGE);
    size_t i;
    int fd = -1;

    memset(page, 0, ENG_PAGE);
    for (i = 0; i < G_N_ELEMENTS(dirs) * 2; i++) {
        g_autofree char *path = g_build_filename(dirs[i % 3],
                                                 "qaio-stress-XXXXXX", NULL);

        *direct = i < G_N_ELEMENTS(dirs);
        fd = g_mkstemp(path);
        if (fd < 0) {
            continue;
        }
        if (*direct) {
            int dfd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);

            close(fd);
            fd = dfd;
        }
        unlink(path);
        /* Some file systems accept O_DIRECT and fail the first write. */
        if (fd >= 0 && pwrite(fd, page, ENG_PAGE, 0) == ENG_PAGE &&
            ftruncate(fd, size) == 0) {
            break;
        }
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    free(page);
    g_assert_cmpint(fd, >=, 0);
    return fd;
}

/* ---- IOThread churn with thread pool jobs and I/O in flight ----------- */

#define PCHURN_SLOTS 2
#define PCHURN_CYCLES SCALED(40)
#define PCHURN_JOBS 8               /* followers per IOThread */
#define PCHURN_MAX_GATES 2
#define PCHURN_IO 8                 /* engine coroutines per IOThread */
#define PCHURN_LIVE 4               /* > IOThreads alive at once (3) */

typedef struct PChurnGen PChurnGen;

typedef struct PChurnJob {
    PChurnGen *g;
    int id;
    bool gate;
    bool cancel;                /* cancelled while surely queued */
    int func_runs;              /* atomic */
    int cb_runs;                /* atomic */
    int late;                   /* atomic: after iothread_destroy() */
    bool in_home;               /* the callback ran in the IOThread */
    int ret;
} PChurnJob;

typedef struct PChurnIo {
    PChurnGen *g;
    int engine;
    uint64_t offset;
    uint8_t *data;              /* written, then read back into buf */
    uint8_t *buf;
    int write_ret;
    int read_ret;
    bool same;
} PChurnIo;

/* One IOThread's life. */
struct PChurnGen {
    IOThread *iothread;
    AioContext *ctx;
    int serial;
    int fd;                     /* the file of every generation */
    int n_gates;
    bool engines[ENG_KINDS];
    PChurnJob jobs[PCHURN_MAX_GATES + PCHURN_JOBS];
    PChurnIo io[PCHURN_IO];
    /* io_uring only: a read of a pipe, in flight until retirement. */
    int pipe[2];
    uint8_t pipe_byte;
    int pipe_ret;
    int io_pending;             /* home thread */
    int destroyed;              /* atomic */
    QemuSemaphore started;      /* a gate job has its worker */
    QemuSemaphore gate;
    QemuSemaphore setup_done;
    QemuSemaphore io_done;
};

static int pchurn_job_fn(void *opaque)
{
    PChurnJob *j = opaque;

    qatomic_inc(&j->func_runs);
    if (j->gate) {
        qemu_sem_post(&j->g->started);
        qemu_sem_wait(&j->g->gate);
    }
    return j->id;
}

static void pchurn_job_cb(void *opaque, int ret)
{
    PChurnJob *j = opaque;

    if (qatomic_read(&j->g->destroyed)) {
        qatomic_inc(&j->late);
    }
    j->in_home = qemu_get_current_aio_context() == j->g->ctx;
    j->ret = ret;
    qatomic_inc(&j->cb_runs);
    progress();
}

static void coroutine_fn pchurn_io_co(void *opaque)
{
    PChurnIo *io = opaque;
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, io->data, ENG_PAGE);
    io->write_ret = eng_submit(io->engine, io->g->fd, io->offset, &qiov,
                               QEMU_AIO_WRITE);
    qemu_iovec_init_buf(&qiov, io->buf, ENG_PAGE);
    io->read_ret = eng_submit(io->engine, io->g->fd, io->offset, &qiov,
                              QEMU_AIO_READ);
    io->same = !memcmp(io->data, io->buf, ENG_PAGE);
    progress();
    if (--io->g->io_pending == 0) {
        qemu_sem_post(&io->g->io_done);
    }
}

static void coroutine_fn pchurn_pipe_co(void *opaque)
{
    PChurnGen *g = opaque;
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, &g->pipe_byte, 1);
    g->pipe_ret = eng_submit(ENG_LURING, g->pipe[0], 0, &qiov,
                             QEMU_AIO_READ);
    progress();
    if (--g->io_pending == 0) {
        qemu_sem_post(&g->io_done);
    }
}

/*
 * In the new IOThread: engines set up and their coroutines started; gate
 * jobs holding every worker (n_gates is the pool's maximum), then
 * followers queued behind them, every other one cancelled at once.
 */
static void pchurn_setup_bh(void *opaque)
{
    PChurnGen *g = opaque;
    int n = g->n_gates + PCHURN_JOBS;
    int e, i;

    for (e = 0; e < ENG_KINDS; e++) {
        if (g->engines[e]) {
            eng_setup(g->ctx, e);
        }
    }
    if (g->engines[ENG_LAIO] || g->engines[ENG_LURING]) {
        g->io_pending = PCHURN_IO + g->engines[ENG_LURING];
        for (i = 0; i < PCHURN_IO; i++) {
            aio_co_enter(g->ctx, qemu_coroutine_create(pchurn_io_co,
                                                       &g->io[i]));
        }
        if (g->engines[ENG_LURING]) {
            aio_co_enter(g->ctx, qemu_coroutine_create(pchurn_pipe_co, g));
        }
    } else {
        qemu_sem_post(&g->io_done);
    }

    for (i = 0; i < n; i++) {
        PChurnJob *j = &g->jobs[i];
        BlockAIOCB *acb = thread_pool_submit_aio(pchurn_job_fn, j,
                                                 pchurn_job_cb, j);

        if (i == g->n_gates - 1) {
            int k;

            for (k = 0; k < g->n_gates; k++) {
                sem_wait_or_abort(&g->started, "churn gate job start");
            }
        }
        if (j->cancel) {
            bdrv_aio_cancel_async(acb);
        }
    }
    qemu_sem_post(&g->setup_done);
}

static PChurnGen *pchurn_start(int serial, int fd, const bool *engines)
{
    PChurnGen *g = g_new0(PChurnGen, 1);
    g_autofree char *name = g_strdup_printf("pchurn%d", serial);
    IOThreadOptions opts = IOTHREAD_OPTIONS_DEFAULT;
    int n, i;

    g->serial = serial;
    g->fd = fd;
    g->n_gates = 1 + serial % PCHURN_MAX_GATES;
    memcpy(g->engines, engines, sizeof(g->engines));
    g_assert_cmpint(pipe2(g->pipe, O_CLOEXEC), ==, 0);
    qemu_sem_init(&g->started, 0);
    qemu_sem_init(&g->gate, 0);
    qemu_sem_init(&g->setup_done, 0);
    qemu_sem_init(&g->io_done, 0);
    n = g->n_gates + PCHURN_JOBS;
    for (i = 0; i < n; i++) {
        g->jobs[i] = (PChurnJob) {
            .g = g, .id = serial * 100 + i, .gate = i < g->n_gates,
            .cancel = i >= g->n_gates && (i - g->n_gates) % 2 == 0,
        };
    }
    for (i = 0; i < PCHURN_IO; i++) {
        PChurnIo *io = &g->io[i];

        io->g = g;
        /* Even ones on Linux AIO, odd ones on io_uring, where available. */
        io->engine = engines[i % 2] ? i % 2 : 1 - i % 2;
        /* Pages of their own: at most three generations are alive. */
        io->offset = (uint64_t)((serial % PCHURN_LIVE) * PCHURN_IO + i) *
                     ENG_PAGE;
        io->data = eng_alloc(ENG_PAGE);
        io->buf = eng_alloc(ENG_PAGE);
        for (n = 0; n < ENG_PAGE; n += 4) {
            uint32_t r = g_test_rand_int();

            memcpy(io->data + n, &r, 4);
        }
    }

    opts.thread_pool_min = 0;
    opts.thread_pool_max = g->n_gates;
    g->iothread = iothread_create_full(name, &opts, &error_abort);
    g->ctx = iothread_get_aio_context(g->iothread);
    aio_bh_schedule_oneshot(g->ctx, pchurn_setup_bh, g);
    sem_wait_or_abort(&g->setup_done, "churn IOThread setup");
    return g;
}

/*
 * The engines' coroutines finish first: detaching an engine with requests
 * outstanding aborts by design (Linux AIO always, io_uring outside the
 * context's thread, which finalization from here is).  The io_uring read
 * of the pipe was in flight all along, while other IOThreads came and
 * went; the byte it waits for comes now.  The pool's jobs are still held
 * when the IOThread stops; the gates open only then, so every completion
 * but the cancelled ones runs in iothread_destroy()'s finalization, in
 * this thread, and none after it returns.
 */
static void pchurn_retire(PChurnGen *g)
{
    uint8_t byte = g->serial;
    int n = g->n_gates + PCHURN_JOBS;
    int i;

    g_assert_cmpint(write(g->pipe[1], &byte, 1), ==, 1);
    sem_wait_or_abort(&g->io_done, "churn engine coroutines");
    iothread_stop(g->iothread);
    for (i = 0; i < g->n_gates; i++) {
        qemu_sem_post(&g->gate);
    }
    iothread_destroy(g->iothread);
    qatomic_set(&g->destroyed, 1);

    for (i = 0; i < n; i++) {
        PChurnJob *j = &g->jobs[i];

        g_assert_cmpint(j->cb_runs, ==, 1);
        g_assert_cmpint(j->late, ==, 0);
        if (j->cancel) {
            g_assert_cmpint(j->ret, ==, -ECANCELED);
            g_assert_cmpint(j->func_runs, ==, 0);
        } else {
            g_assert_cmpint(j->ret, ==, j->id);
            g_assert_cmpint(j->func_runs, ==, 1);
            g_assert_false(j->in_home);
        }
    }
    for (i = 0; i < PCHURN_IO; i++) {
        PChurnIo *io = &g->io[i];

        if (g->engines[ENG_LAIO] || g->engines[ENG_LURING]) {
            g_assert_cmpint(io->write_ret, ==, 0);
            g_assert_cmpint(io->read_ret, ==, 0);
            g_assert_true(io->same);
        }
        free(io->data);
        free(io->buf);
    }
    if (g->engines[ENG_LURING]) {
        g_assert_cmpint(g->pipe_ret, ==, 0);
        g_assert_cmpint(g->pipe_byte, ==, byte);
    }
    close(g->pipe[0]);
    close(g->pipe[1]);
    qemu_sem_destroy(&g->started);
    qemu_sem_destroy(&g->gate);
    qemu_sem_destroy(&g->setup_done);
    qemu_sem_destroy(&g->io_done);
    g_free(g);
}

/*
 * IOThreads created and destroyed, PCHURN_SLOTS alive at a time (a third
 * being born while one dies), each with thread pool jobs in flight when
 * it is destroyed and Linux AIO and io_uring requests in flight while the
 * others come and go.  Every pool completion runs exactly once, none after
 * the destruction; every I/O completes with the right data; no thread,
 * descriptor or ring is left.
 */
static void test_pool_engine_churn(void)
{
    PChurnGen *gens[PCHURN_SLOTS];
    int threads = count_dir_entries("/proc/self/task");
    int fds = count_fds();
    bool engines[ENG_KINDS];
    int64_t start = g_get_monotonic_time();
    bool direct;
    int serial = 0;
    int fd, e, s, cycle;

    for (e = 0; e < ENG_KINDS; e++) {
        g_autofree char *why = NULL;

        engines[e] = eng_available(e, &why);
        if (!engines[e]) {
            g_test_message("without %s", why);
        }
    }
    fd = eng_open_file((off_t)PCHURN_LIVE * PCHURN_IO * ENG_PAGE, &direct);

    watchdog_start("IOThread churn with pool jobs and I/O");
    for (s = 0; s < PCHURN_SLOTS; s++) {
        gens[s] = pchurn_start(serial++, fd, engines);
    }
    for (cycle = 0; cycle < PCHURN_CYCLES; cycle++) {
        for (s = 0; s < PCHURN_SLOTS; s++) {
            PChurnGen *fresh = pchurn_start(serial++, fd, engines);

            pchurn_retire(gens[s]);
            gens[s] = fresh;
        }
    }
    for (s = 0; s < PCHURN_SLOTS; s++) {
        pchurn_retire(gens[s]);
    }
    watchdog_stop();
    close(fd);

    g_test_message("churn: %d IOThreads, each with %d+ pool jobs in flight "
                   "at destruction and %d requests (%s%s%s, %s%s) in %" PRId64
                   " ms", serial, PCHURN_JOBS, PCHURN_IO,
                   engines[ENG_LAIO] ? "linux-aio" : "",
                   engines[ENG_LAIO] && engines[ENG_LURING] ? " + " : "",
                   engines[ENG_LURING] ? "io_uring" : "",
                   direct ? "O_DIRECT" : "buffered",
                   engines[ENG_LURING] ? "; + a pipe read in flight while "
                   "others come and go" : "",
                   (g_get_monotonic_time() - start) / 1000);
    g_assert_cmpint(count_fds(), ==, fds);
    g_assert_true(threads_back_to(threads));
}

/* ---- Engines: random reads and writes from many coroutines ----------- */

#define ENGS_IOTHREADS 2
#define ENGS_COS 16                 /* per IOThread */
#define ENGS_OPS SCALED(600)        /* per coroutine */
#define ENGS_CHUNK 8                /* pages each coroutine owns */
#define ENGS_MAX_PAGES 4            /* per request */

typedef struct EngStress EngStress;

/* One coroutine: the only one to touch its ENGS_CHUNK pages. */
typedef struct EngCo {
    EngStress *es;
    int index;
    AioContext *ctx;
    GRand *rand;                /* its coroutine's only */
    uint8_t *buf;               /* ENGS_MAX_PAGES pages, aligned */
    long reads, writes, multi;
} EngCo;

struct EngStress {
    unsigned engines;           /* 1 << ENG_LAIO | 1 << ENG_LURING */
    int fd;
    IOThread *iothreads[ENGS_IOTHREADS];
    EngCo cos[ENGS_IOTHREADS * ENGS_COS];
    uint8_t *shadow;            /* what the file must hold */
    int running;                /* atomic: coroutines not finished */
    int errors;                 /* atomic */
    QemuSemaphore done;
};

static void eng_error(EngStress *es, EngCo *c, const char *what, int ret)
{
    if (qatomic_fetch_inc(&es->errors) < 10) {
        fprintf(stderr, "engine stress: coroutine %d: %s (%d)\n", c->index,
                what, ret);
    }
}

static void coroutine_fn eng_co(void *opaque)
{
    EngCo *c = opaque;
    EngStress *es = c->es;
    uint64_t base = (uint64_t)c->index * ENGS_CHUNK;
    int i;

    for (i = 0; i < ENGS_OPS; i++) {
        int page = g_rand_int_range(c->rand, 0, ENGS_CHUNK);
        int npages = g_rand_int_range(c->rand, 1,
                                      MIN(ENGS_MAX_PAGES,
                                          ENGS_CHUNK - page) + 1);
        size_t len = (size_t)npages * ENG_PAGE;
        uint64_t offset = (base + page) * ENG_PAGE;
        bool write = g_rand_boolean(c->rand);
        int engine = es->engines == 3 ? g_rand_int_range(c->rand, 0, 2) :
                     es->engines == 1 << ENG_LAIO ? ENG_LAIO : ENG_LURING;
        QEMUIOVector qiov;
        int ret;

        qemu_iovec_init(&qiov, 2);
        if (npages > 1 && g_rand_boolean(c->rand)) {
            size_t split = (size_t)g_rand_int_range(c->rand, 1, npages) *
                           ENG_PAGE;

            qemu_iovec_add(&qiov, c->buf, split);
            qemu_iovec_add(&qiov, c->buf + split, len - split);
            c->multi++;
        } else {
            qemu_iovec_add(&qiov, c->buf, len);
        }
        if (write) {
            uint32_t seed = g_rand_int(c->rand);
            size_t k;

            for (k = 0; k < len; k += 4) {
                uint32_t v = seed ^ (uint32_t)(offset + k) * 2654435761u;

                memcpy(c->buf + k, &v, 4);
            }
            ret = eng_submit(engine, es->fd, offset, &qiov, QEMU_AIO_WRITE);
            memcpy(es->shadow + offset, c->buf, len);
            c->writes++;
        } else {
            memset(c->buf, 0xa5, len);
            ret = eng_submit(engine, es->fd, offset, &qiov, QEMU_AIO_READ);
            if (ret == 0 && memcmp(c->buf, es->shadow + offset, len)) {
                eng_error(es, c, "read back other data", 0);
            }
            c->reads++;
        }
        if (ret != 0) {
            eng_error(es, c, write ? "write failed" : "read failed", ret);
        }
        if (qemu_get_current_aio_context() != c->ctx) {
            eng_error(es, c, "resumed in the wrong thread", 0);
        }
        qemu_iovec_destroy(&qiov);
        progress();
    }
    if (qatomic_fetch_dec(&es->running) == 1) {
        qemu_sem_post(&es->done);
    }
}

/* In each IOThread: its engines, then its coroutines, all at once. */
static void eng_start_bh(void *opaque)
{
    EngCo *first = opaque;
    EngStress *es = first->es;
    int e, i;

    for (e = 0; e < ENG_KINDS; e++) {
        if (es->engines & (1u << e)) {
            eng_setup(first->ctx, e);
        }
    }
    for (i = 0; i < ENGS_COS; i++) {
        aio_co_enter(first->ctx, qemu_coroutine_create(eng_co, &first[i]));
    }
}

/*
 * ENGS_IOTHREADS x ENGS_COS coroutines, each doing ENGS_OPS random reads
 * and writes (1-4 pages, one or two vector elements) on pages of its own
 * in one shared file, through Linux AIO, io_uring or both at random.
 * Every request succeeds, every read returns exactly what the last write
 * to those pages put there, and the file ends up byte for byte as the
 * test's shadow copy.
 */
static void test_engine_stress(gconstpointer data)
{
    EngStress *es = g_new0(EngStress, 1);
    size_t size = (size_t)G_N_ELEMENTS(es->cos) * ENGS_CHUNK * ENG_PAGE;
    int fds = count_fds();
    long reads = 0, writes = 0, multi = 0;
    int64_t start;
    uint8_t *file;
    bool direct;
    int e, i;

    es->engines = GPOINTER_TO_UINT(data);
    for (e = 0; e < ENG_KINDS; e++) {
        g_autofree char *why = NULL;

        if ((es->engines & (1u << e)) && !eng_available(e, &why)) {
            g_test_skip(why);
            g_free(es);
            return;
        }
    }
    es->fd = eng_open_file(size, &direct);
    es->shadow = g_malloc0(size);
    es->running = G_N_ELEMENTS(es->cos);
    qemu_sem_init(&es->done, 0);

    for (i = 0; i < ENGS_IOTHREADS; i++) {
        g_autofree char *name = g_strdup_printf("engine%d", i);

        es->iothreads[i] = iothread_create(name, &error_abort);
    }
    for (i = 0; i < (int)G_N_ELEMENTS(es->cos); i++) {
        EngCo *c = &es->cos[i];

        c->es = es;
        c->index = i;
        c->ctx = iothread_get_aio_context(es->iothreads[i / ENGS_COS]);
        c->rand = g_rand_new_with_seed(1000 + i);
        c->buf = eng_alloc(ENGS_MAX_PAGES * ENG_PAGE);
    }

    start = g_get_monotonic_time();
    watchdog_start("engine stress");
    for (i = 0; i < ENGS_IOTHREADS; i++) {
        EngCo *first = &es->cos[i * ENGS_COS];

        aio_bh_schedule_oneshot(first->ctx, eng_start_bh, first);
    }
    sem_wait_or_abort(&es->done, "end of the engine stress");
    watchdog_stop();
    for (i = 0; i < ENGS_IOTHREADS; i++) {
        iothread_destroy(es->iothreads[i]);
    }
    g_assert_cmpint(es->errors, ==, 0);

    file = eng_alloc(size);
    g_assert_cmpint(pread(es->fd, file, size, 0), ==, size);
    g_assert_true(memcmp(file, es->shadow, size) == 0);
    free(file);

    for (i = 0; i < (int)G_N_ELEMENTS(es->cos); i++) {
        EngCo *c = &es->cos[i];

        reads += c->reads;
        writes += c->writes;
        multi += c->multi;
        g_rand_free(c->rand);
        free(c->buf);
    }
    g_test_message("%s: %d IOThreads x %d coroutines, %ld reads + %ld "
                   "writes (%ld with two vector elements), %s, in %" PRId64
                   " ms", es->engines == 3 ? "linux-aio + io_uring" :
                   eng_names[es->engines == 1 << ENG_LAIO ? ENG_LAIO :
                             ENG_LURING],
                   ENGS_IOTHREADS, ENGS_COS, reads, writes, multi,
                   direct ? "O_DIRECT" : "buffered",
                   (g_get_monotonic_time() - start) / 1000);
    g_assert_cmpint(reads + writes, ==, (long)G_N_ELEMENTS(es->cos) *
                    ENGS_OPS);

    close(es->fd);
    g_assert_cmpint(count_fds(), ==, fds);
    qemu_sem_destroy(&es->done);
    g_free(es->shadow);
    g_free(es);
}

/* ---- 13. A pool torn down while its workers exit on their idle timeout */

#define PTEAR_ROUNDS 1000           /* also under ASan and TSan */
#define PTEAR_WORKERS 3
#define PTEAR_SPIN_CAP 100000000L

typedef struct PoolTear {
    QemuSemaphore started;      /* a job holds a worker */
    QemuSemaphore gate;
    int func_runs;              /* atomic */
    int cb_runs;                /* home thread; read after the join */
    int cb_wrong;               /* callbacks with a wrong result */
    int exited_early;           /* rounds where a worker had timed out */
} PoolTear;

static int ptear_gate_fn(void *opaque)
{
    PoolTear *pt = opaque;

    qatomic_inc(&pt->func_runs);
    qemu_sem_post(&pt->started);
    qemu_sem_wait(&pt->gate);
    return 7;
}

static int ptear_fn(void *opaque)
{
    PoolTear *pt = opaque;

    qatomic_inc(&pt->func_runs);
    return 7;
}

static void ptear_cb(void *opaque, int ret)
{
    PoolTear *pt = opaque;

    pt->cb_runs++;
    pt->cb_wrong += ret != 7;
}

typedef struct PoolTearRound {
    PoolTear *pt;
    int round;
} PoolTearRound;

/*
 * One round, on a thread of its own with a fresh context (the pool is
 * per context and freed with it): PTEAR_WORKERS workers start (each held
 * by a job until all are running, so the pool really has that many),
 * finish and go idle together with a 1 ms idle timeout, and the context
 * is freed -- at once (workers woken by the stop), as soon as the first
 * worker has timed out (the others are timing out meanwhile), or once all
 * have exited (free joins threads that exited on their own).  Every other
 * round submits one more job just before the free, racing the exits.
 */
static void *ptear_round_fn(void *opaque)
{
    PoolTearRound *pr = opaque;
    PoolTear *pt = pr->pt;
    AioContext *ctx = aio_context_new(&error_abort);
    ThreadPool *pool;
    int before = pt->cb_runs;
    int want = PTEAR_WORKERS;
    long spins;
    int i;

    qemu_set_current_aio_context(ctx);
    aio_context_set_thread_pool_params(ctx, 0, PTEAR_WORKERS, &error_abort);
    pool = aio_get_thread_pool(ctx);
    qaio_int_thread_pool_set_idle_timeout(pool, 1);
    for (i = 0; i < PTEAR_WORKERS; i++) {
        thread_pool_submit_aio(ptear_gate_fn, pt, ptear_cb, pt);
    }
    for (i = 0; i < PTEAR_WORKERS; i++) {
        sem_wait_or_abort(&pt->started, "pool worker");
    }
    for (i = 0; i < PTEAR_WORKERS; i++) {
        qemu_sem_post(&pt->gate);
    }
    for (i = 0; i < 100000 && pt->cb_runs - before < PTEAR_WORKERS; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(pt->cb_runs - before, ==, PTEAR_WORKERS);

    switch (pr->round % 3) {
    case 0:
        break;
    case 1:
        /* Bounded by iterations; a worker times out after 1 ms. */
        for (spins = 0; qaio_int_thread_pool_threads(pool) == PTEAR_WORKERS;
             spins++) {
            g_assert_cmpint(spins, <, PTEAR_SPIN_CAP);
            g_thread_yield();
        }
        pt->exited_early++;
        break;
    case 2:
        g_assert_true(qaio_int_thread_pool_wait_threads(pool, 0,
                                                        WATCHDOG_MS));
        break;
    }
    if (pr->round % 2) {
        thread_pool_submit_aio(ptear_fn, pt, ptear_cb, pt);
        want++;
    }
    /* The last reference: frees the pool, joining its workers. */
    aio_context_unref(ctx);
    /* A job submitted last completed in the free, here, exactly once. */
    g_assert_cmpint(pt->cb_runs - before, ==, want);
    progress();
    return NULL;
}

static void test_pool_teardown_idle_exit(void)
{
    PoolTear pt = { 0 };
    int threads = count_threads();
    int fds = count_fds();
    int expect = 0;
    int round;

    qemu_sem_init(&pt.started, 0);
    qemu_sem_init(&pt.gate, 0);
    watchdog_start("thread pool teardown during idle exits");
    for (round = 0; round < PTEAR_ROUNDS; round++) {
        PoolTearRound pr = { .pt = &pt, .round = round };
        QemuThread thread;

        qemu_thread_create(&thread, "pool-tear", ptear_round_fn, &pr,
                           QEMU_THREAD_JOINABLE);
        qemu_thread_join(&thread);
        expect += PTEAR_WORKERS + round % 2;
    }
    watchdog_stop();
    g_test_message("%d pools freed with %d workers idling out (1 ms), "
                   "%d of them after a worker had exited", PTEAR_ROUNDS,
                   PTEAR_WORKERS, pt.exited_early);
    g_assert_cmpint(qatomic_read(&pt.func_runs), ==, expect);
    g_assert_cmpint(pt.cb_runs, ==, expect);
    g_assert_cmpint(pt.cb_wrong, ==, 0);
    g_assert_true(threads_back_to(threads));
    g_assert_cmpint(count_fds(), ==, fds);
    qemu_sem_destroy(&pt.started);
    qemu_sem_destroy(&pt.gate);
}

/* ---- 15. Engines set up in one thread, driven by another -------------- */

/*
 * Per engine: twice what it keeps in the kernel at once (Linux AIO: its
 * io_setup() events; io_uring: its completion ring, twice the
 * submission ring).
 */
#ifdef CONFIG_LINUX_AIO
#define XRING_LAIO_REQS (2 * LAIO_MAX_EVENTS)
#else
#define XRING_LAIO_REQS 0
#endif
#ifdef CONFIG_LINUX_IO_URING
#define XRING_LURING_REQS (2 * 2 * LURING_RING_ENTRIES)
#else
#define XRING_LURING_REQS 0
#endif
#define XRING_REQS (XRING_LAIO_REQS > XRING_LURING_REQS ? XRING_LAIO_REQS \
                                                        : XRING_LURING_REQS)

typedef struct XRing XRing;

typedef struct XRingCo {
    XRing *xr;
    int page;
    int engine;
    bool write;
    int ret;
    bool right_ctx;
} XRingCo;

struct XRing {
    AioContext *ctx;
    int fd;
    bool stop;                  /* loop thread only (set by a BH) */
    int loop_tid;
    uint8_t *buf;               /* XRING_REQS pages */
    XRingCo cos[XRING_REQS];
    int n;                      /* requests per pass, this engine's */
    int pending;                /* loop thread only */
    int submitted_at_once;      /* loop thread: in flight when the BH ended */
    QemuSemaphore ready;
    QemuSemaphore done;
};

static void *xring_loop_fn(void *opaque)
{
    XRing *xr = opaque;

    /* The context and its engines were made by the main thread. */
    qemu_set_current_aio_context(xr->ctx);
    xr->loop_tid = qemu_get_thread_id();
    qemu_sem_post(&xr->ready);
    while (!xr->stop) {
        aio_poll(xr->ctx, true);
    }
    return NULL;
}

static void xring_stop_bh(void *opaque)
{
    XRing *xr = opaque;

    xr->stop = true;
}

static void coroutine_fn xring_co(void *opaque)
{
    XRingCo *c = opaque;
    XRing *xr = c->xr;
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, xr->buf + (size_t)c->page * ENG_PAGE,
                        ENG_PAGE);
    c->ret = eng_submit(c->engine, xr->fd, (uint64_t)c->page * ENG_PAGE,
                        &qiov, c->write ? QEMU_AIO_WRITE : QEMU_AIO_READ);
    c->right_ctx = qemu_get_current_aio_context() == xr->ctx;
    if (--xr->pending == 0) {
        qemu_sem_post(&xr->done);
    }
    progress();
}

/* In the loop thread: every request at once, before any is reaped. */
static void xring_start_bh(void *opaque)
{
    XRing *xr = opaque;
    int i;

    xr->pending = xr->n;
    for (i = 0; i < xr->n; i++) {
        aio_co_enter(xr->ctx, qemu_coroutine_create(xring_co, &xr->cos[i]));
    }
    xr->submitted_at_once = xr->pending;
}

/*
 * QEMU's layout: the context (and, under QAIO_FDMON=io_uring, its fd
 * monitor's ring) and both engines -- the io_uring ring, the Linux AIO
 * kernel context -- are created by the main thread, then another thread
 * runs the context.  That thread submits one-page writes at once, twice
 * as many as the engine keeps in the kernel (the excess waits in its
 * queue), then as many reads, per engine: every request succeeds, every
 * coroutine resumes in the loop thread, and the data read back is the
 * data written.  Nothing is in flight when the main thread frees it all.
 */
static void test_engine_cross_thread_depth(void)
{
    XRing *xr = g_new0(XRing, 1);
    uint8_t *expect = g_malloc((size_t)XRING_REQS * ENG_PAGE);
    QemuThread loop;
    int fds = count_fds();
    int engines = 0;
    bool direct;
    int e, i, pass;

    xr->ctx = aio_context_new(&error_abort);
    for (e = 0; e < ENG_KINDS; e++) {
        g_autofree char *why = NULL;

        if (eng_available(e, &why)) {
            eng_setup(xr->ctx, e);
            engines |= 1 << e;
        } else {
            g_test_message("skipping %s", why);
        }
    }
    if (!engines) {
        g_test_skip("no I/O engine can be set up here");
        aio_context_unref(xr->ctx);
        g_free(expect);
        g_free(xr);
        return;
    }
    xr->fd = eng_open_file((off_t)XRING_REQS * ENG_PAGE, &direct);
    xr->buf = eng_alloc((size_t)XRING_REQS * ENG_PAGE);
    qemu_sem_init(&xr->ready, 0);
    qemu_sem_init(&xr->done, 0);
    qemu_thread_create(&loop, "xring-loop", xring_loop_fn, xr,
                       QEMU_THREAD_JOINABLE);
    sem_wait_or_abort(&xr->ready, "loop thread start");
    g_assert_cmpint(xr->loop_tid, !=, qemu_get_thread_id());

    watchdog_start("requests at twice the queue depth, cross-thread ring");
    for (e = 0; e < ENG_KINDS; e++) {
        size_t len;

        if (!(engines & (1 << e))) {
            continue;
        }
        xr->n = e == ENG_LAIO ? XRING_LAIO_REQS : XRING_LURING_REQS;
        len = (size_t)xr->n * ENG_PAGE;
        for (i = 0; i < (int)len; i += 4) {
            uint32_t v = (uint32_t)i * 2654435761u ^ (uint32_t)e;

            memcpy(expect + i, &v, 4);
        }
        for (pass = 0; pass < 2; pass++) {
            if (pass == 0) {
                memcpy(xr->buf, expect, len);
            } else {
                memset(xr->buf, 0xa5, len);
            }
            for (i = 0; i < xr->n; i++) {
                xr->cos[i] = (XRingCo){
                    .xr = xr, .page = i, .engine = e, .write = pass == 0,
                };
            }
            aio_bh_schedule_oneshot(xr->ctx, xring_start_bh, xr);
            sem_wait_or_abort(&xr->done, "requests at twice the depth");
            /* The semaphore orders the loop thread's writes before these. */
            for (i = 0; i < xr->n; i++) {
                g_assert_cmpint(xr->cos[i].ret, ==, 0);
                g_assert_true(xr->cos[i].right_ctx);
            }
            g_test_message("%s %s (%s): %d requests, %d still in flight "
                           "when the last was submitted", eng_names[e],
                           pass ? "reads" : "writes",
                           direct ? "O_DIRECT" : "buffered", xr->n,
                           xr->submitted_at_once);
        }
        g_assert_true(memcmp(xr->buf, expect, len) == 0);
    }
    watchdog_stop();

    aio_bh_schedule_oneshot(xr->ctx, xring_stop_bh, xr);
    qemu_thread_join(&loop);
    /* The engines go with the context, freed where they were made. */
    aio_context_unref(xr->ctx);
    close(xr->fd);
    free(xr->buf);
    qemu_sem_destroy(&xr->ready);
    qemu_sem_destroy(&xr->done);
    g_free(expect);
    g_free(xr);
    g_assert_cmpint(count_fds(), ==, fds);
}

static void *noop_thread_fn(void *opaque)
{
    return NULL;
}

int main(int argc, char **argv)
{
    QemuThread noop;

    g_test_init(&argc, &argv, NULL);
    init_clocks(NULL);
    /*
     * ThreadSanitizer starts a thread of its own with the first thread
     * created: do that now, so that a case counting threads (whichever
     * runs first with -p) does not count it as a leak.
     */
    qemu_thread_create(&noop, "noop", noop_thread_fn, NULL,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_join(&noop);

    /* Section 3 */
    g_test_add_func("/stress/mix/threads-x-iothreads", test_mix);
    g_test_add_func("/stress/churn/iothreads-with-work-in-flight",
                    test_churn);
    g_test_add_func("/stress/fd/cross-thread-add-modify-remove",
                    test_fd_cross_thread);
    g_test_add_func("/stress/fd/cross-thread-add-modify-remove-many",
                    test_fd_cross_thread_many);
    g_test_add_func("/stress/fd/cross-thread-add-modify-remove-many-"
                    "default-fdmon", test_fd_cross_thread_many_default_fdmon);
    g_test_add_func("/stress/thread-pool/threads-x-iothreads-cancel",
                    test_pool_mix);
    g_test_add_func("/stress/churn/iothreads-with-pool-jobs-and-io-in-flight",
                    test_pool_engine_churn);
    g_test_add_data_func("/stress/engine/linux-aio/random-rw-2-iothreads",
                         GUINT_TO_POINTER(1u << ENG_LAIO),
                         test_engine_stress);
    g_test_add_data_func("/stress/engine/io_uring/random-rw-2-iothreads",
                         GUINT_TO_POINTER(1u << ENG_LURING),
                         test_engine_stress);
    g_test_add_data_func("/stress/engine/both/random-rw-2-iothreads",
                         GUINT_TO_POINTER(1u << ENG_LAIO | 1u << ENG_LURING),
                         test_engine_stress);
    g_test_add_func("/stress/engine/set-up-elsewhere-twice-queue-depth",
                    test_engine_cross_thread_depth);

    /* Section 5 */
    g_test_add_func("/stress/wakeup/million-round-trips", test_round_trips);
    g_test_add_func("/stress/notify/blocking-poll-sleeps-after-notify",
                    test_notify_then_sleep);
    g_test_add_func("/stress/notify/gsource-sleeps-after-notify",
                    test_notify_then_sleep_gsource);
    g_test_add_func("/stress/bh/delete-each-other-freeing-guards",
                    test_bh_mutual_delete);
    g_test_add_func("/stress/bh/guarded-self-reschedule-nested-refused",
                    test_bh_nested_self_guarded);
    g_test_add_func("/stress/bh/unguarded-self-reschedule-nested-runs",
                    test_bh_nested_self_unguarded);
    g_test_add_func("/stress/fd/added-from-thread-across-threshold",
                    test_fd_cross_threshold);
    g_test_add_func("/stress/fd/added-from-thread-across-threshold-"
                    "default-fdmon", test_fd_cross_threshold_default_fdmon);
    g_test_add_func("/stress/fd/level-triggered", test_level_triggered);
    g_test_add_func("/stress/fd/level-triggered-default-fdmon",
                    test_level_triggered_default_fdmon);
    g_test_add_func("/stress/fd/level-triggered-gsource",
                    test_level_triggered_gsource);
    g_test_add_func("/stress/timer/never-early-no-spin",
                    test_timers_not_early);
    g_test_add_func("/stress/timer/never-early-no-spin-gsource",
                    test_timers_not_early_gsource);
    g_test_add_func("/stress/poll/io-poll-ready-only-after-true",
                    test_io_poll_ready_after_true);
    g_test_add_func("/stress/poll/io-poll-ready-nested-poll-no-recursion",
                    test_io_poll_ready_nested_poll);
    g_test_add_func("/stress/poll/adaptive-window", test_adaptive_window);
    g_test_add_func("/stress/poll/idle-cpu-under-5-percent", test_idle_cpu);
    g_test_add_func("/stress/iothread/stop-idle-blocked",
                    test_stop_idle_blocked);
    g_test_add_func("/stress/iothread/co-schedule-while-stopping",
                    test_co_schedule_while_stopping);
    g_test_add_func("/stress/thread-pool/free-while-workers-idle-exit",
                    test_pool_teardown_idle_exit);

    return g_test_run();
}
