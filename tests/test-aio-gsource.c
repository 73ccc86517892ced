/*
 * test-aio-gsource.c: the AioContext as a GSource.
 *
 * A context attached to a private GMainContext must do under
 * g_main_context_iteration() what aio_poll() does: run BHs, fd handlers and
 * timers, with the same counts.  Also checks bit 0 of notify_me across
 * prepare/check (driven by hand), and that aio_notify() from another thread
 * wakes a blocking iteration.  Registered with 'fdmon': meson runs it under
 * QAIO_FDMON=poll and =epoll.
 *
 * Threading: the main thread iterates the GMainContext and so is the
 * context's home thread; /gsource/wake/ cases add one notifying thread.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/thread.h"

/* Cap for loops that iterate until a condition holds. */
#define MAX_ITERATIONS 1000

typedef struct Fixture {
    AioContext *ctx;
    GMainContext *gctx;
} Fixture;

static void fixture_init(Fixture *f)
{
    GSource *src;

    f->ctx = aio_context_new(&error_abort);
    f->gctx = g_main_context_new();
    src = aio_get_g_source(f->ctx);
    g_assert_true(src == &f->ctx->source);
    g_source_attach(src, f->gctx);
    g_source_unref(src);
}

static void fixture_destroy(Fixture *f)
{
    g_source_destroy(&f->ctx->source);
    aio_context_unref(f->ctx);
    g_main_context_unref(f->gctx);
}

static bool iterate(Fixture *f, bool may_block)
{
    return g_main_context_iteration(f->gctx, may_block);
}

/* Iterate without blocking until nothing is dispatched any more. */
static void settle(Fixture *f)
{
    int i;

    for (i = 0; i < MAX_ITERATIONS && iterate(f, false); i++) {
        /* keep going */
    }
    g_assert_false(iterate(f, false));
    g_assert_false(g_main_context_pending(f->gctx));
}

/* ---- Bottom halves -------------------------------------------------- */

typedef struct BHData {
    QEMUBH *bh;
    int n;
    int max;                /* re-schedule itself until n reaches max */
} BHData;

static void bh_cb(void *opaque)
{
    BHData *d = opaque;

    d->n++;
    if (d->n < d->max) {
        qemu_bh_schedule(d->bh);
    }
}

static void test_bh(void)
{
    Fixture f;
    BHData d = { 0 };

    fixture_init(&f);
    d.bh = aio_bh_new(f.ctx, bh_cb, &d);
    settle(&f);

    qemu_bh_schedule(d.bh);
    qemu_bh_schedule(d.bh);
    g_assert_true(g_main_context_pending(f.gctx));
    g_assert_true(iterate(&f, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_false(iterate(&f, false));

    /* A pending BH does not let a blocking iteration sleep. */
    qemu_bh_schedule(d.bh);
    g_assert_true(iterate(&f, true));
    g_assert_cmpint(d.n, ==, 2);

    /* Re-scheduled from its callback: once per iteration. */
    d.max = 12;
    qemu_bh_schedule(d.bh);
    while (d.n < d.max) {
        int before = d.n;

        g_assert_true(iterate(&f, before % 2 == 0));
        g_assert_cmpint(d.n, ==, before + 1);
    }
    g_assert_false(iterate(&f, false));

    qemu_bh_cancel(d.bh);
    qemu_bh_schedule(d.bh);
    qemu_bh_cancel(d.bh);
    settle(&f);
    g_assert_cmpint(d.n, ==, 12);

    qemu_bh_delete(d.bh);
    settle(&f);
    fixture_destroy(&f);
}

static void oneshot_cb(void *opaque)
{
    int *n = opaque;

    (*n)++;
}

static void test_bh_oneshot_and_idle(void)
{
    Fixture f;
    BHData d = { 0 };
    int n = 0;

    fixture_init(&f);
    d.bh = aio_bh_new(f.ctx, bh_cb, &d);
    settle(&f);

    aio_bh_schedule_oneshot(f.ctx, oneshot_cb, &n);
    aio_bh_schedule_oneshot(f.ctx, oneshot_cb, &n);
    g_assert_true(iterate(&f, false));
    g_assert_cmpint(n, ==, 2);
    g_assert_false(iterate(&f, false));

    /* An idle BH is seen by a non-blocking iteration. */
    qemu_bh_schedule_idle(d.bh);
    g_assert_true(iterate(&f, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_false(iterate(&f, false));

    /* A blocking one waits at most about 10 ms for it. */
    qemu_bh_schedule_idle(d.bh);
    g_assert_true(iterate(&f, true));
    g_assert_cmpint(d.n, ==, 2);

    qemu_bh_delete(d.bh);
    settle(&f);
    fixture_destroy(&f);
}

typedef struct NestedData {
    AioContext *ctx;
    BHData peers[4];
    BHData late;
    bool nested_result;
} NestedData;

/* aio_poll() nested in a callback that GLib dispatched. */
static void nested_cb(void *opaque)
{
    NestedData *nd = opaque;
    int i;

    qemu_bh_schedule(nd->late.bh);
    nd->nested_result = aio_poll(nd->ctx, false);
    for (i = 0; i < 4; i++) {
        g_assert_cmpint(nd->peers[i].n, ==, 1);
    }
    g_assert_cmpint(nd->late.n, ==, 1);
}

static void test_bh_nested_aio_poll(void)
{
    Fixture f;
    NestedData nd = { 0 };
    QEMUBH *outer;
    int i;

    fixture_init(&f);
    nd.ctx = f.ctx;
    for (i = 0; i < 4; i++) {
        nd.peers[i].bh = aio_bh_new(f.ctx, bh_cb, &nd.peers[i]);
    }
    nd.late.bh = aio_bh_new(f.ctx, bh_cb, &nd.late);
    outer = aio_bh_new(f.ctx, nested_cb, &nd);

    qemu_bh_schedule(nd.peers[0].bh);
    qemu_bh_schedule(nd.peers[1].bh);
    qemu_bh_schedule(outer);
    qemu_bh_schedule(nd.peers[2].bh);
    qemu_bh_schedule(nd.peers[3].bh);
    g_assert_true(iterate(&f, false));
    g_assert_true(nd.nested_result);
    for (i = 0; i < 4; i++) {
        g_assert_cmpint(nd.peers[i].n, ==, 1);
    }
    g_assert_cmpint(nd.late.n, ==, 1);
    settle(&f);

    for (i = 0; i < 4; i++) {
        qemu_bh_delete(nd.peers[i].bh);
    }
    qemu_bh_delete(nd.late.bh);
    qemu_bh_delete(outer);
    settle(&f);
    fixture_destroy(&f);
}

/* ---- fd handlers ----------------------------------------------------- */

typedef struct Pipe {
    AioContext *ctx;
    int rfd;
    int wfd;
    int n_read;
    int n_write;
    bool drain;
    bool remove_self;
} Pipe;

static void pipe_open(Pipe *p, AioContext *ctx)
{
    int fds[2];

    *p = (Pipe){ .ctx = ctx };
    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    p->rfd = fds[0];
    p->wfd = fds[1];
}

static void pipe_close(Pipe *p)
{
    close(p->rfd);
    close(p->wfd);
}

static void pipe_put(Pipe *p)
{
    char c = 'x';

    g_assert_cmpint(write(p->wfd, &c, 1), ==, 1);
}

static void pipe_read_cb(void *opaque)
{
    Pipe *p = opaque;
    char buf[64];

    p->n_read++;
    if (p->drain) {
        while (read(p->rfd, buf, sizeof(buf)) > 0) {
            /* empty it */
        }
    }
    if (p->remove_self) {
        aio_set_fd_handler(p->ctx, p->rfd, NULL, NULL, NULL, NULL, NULL);
    }
}

static void pipe_write_cb(void *opaque)
{
    Pipe *p = opaque;

    p->n_write++;
    aio_set_fd_handler(p->ctx, p->wfd, NULL, NULL, NULL, NULL, NULL);
}

static void test_fd(void)
{
    Fixture f;
    Pipe p;
    int i;

    fixture_init(&f);
    pipe_open(&p, f.ctx);
    aio_set_fd_handler(f.ctx, p.rfd, pipe_read_cb, NULL, NULL, NULL, &p);
    settle(&f);
    g_assert_cmpint(p.n_read, ==, 0);

    /* Level-triggered: not drained, it runs on every iteration. */
    pipe_put(&p);
    for (i = 1; i <= 3; i++) {
        g_assert_true(iterate(&f, i == 2));
        g_assert_cmpint(p.n_read, ==, i);
    }
    p.drain = true;
    g_assert_true(iterate(&f, false));
    g_assert_cmpint(p.n_read, ==, 4);
    settle(&f);

    /* Removed from its own callback: runs once more, then never. */
    p.remove_self = true;
    p.drain = false;
    pipe_put(&p);
    g_assert_true(iterate(&f, true));
    g_assert_cmpint(p.n_read, ==, 5);
    settle(&f);
    g_assert_cmpint(p.n_read, ==, 5);

    /* Write handler, removing itself. */
    aio_set_fd_handler(f.ctx, p.wfd, NULL, pipe_write_cb, NULL, NULL, &p);
    g_assert_true(iterate(&f, false));
    g_assert_cmpint(p.n_write, ==, 1);
    settle(&f);
    g_assert_cmpint(p.n_write, ==, 1);

    pipe_close(&p);
    fixture_destroy(&f);
}

#define MANY_FDS 70

/* Many fds: GLib polls them itself, whatever the monitor. */
static void test_fd_many(void)
{
    Fixture f;
    Pipe p[MANY_FDS];
    int round, i;

    fixture_init(&f);
    for (i = 0; i < MANY_FDS; i++) {
        pipe_open(&p[i], f.ctx);
        p[i].drain = true;
        aio_set_fd_handler(f.ctx, p[i].rfd, pipe_read_cb, NULL, NULL, NULL,
                           &p[i]);
    }
    settle(&f);

    for (round = 1; round <= 3; round++) {
        for (i = 0; i < MANY_FDS; i++) {
            pipe_put(&p[i]);
        }
        g_assert_true(iterate(&f, round == 2));
        settle(&f);
        for (i = 0; i < MANY_FDS; i++) {
            g_assert_cmpint(p[i].n_read, ==, round);
        }
        /* aio_poll() on the same context agrees. */
        g_assert_false(aio_poll(f.ctx, false));
    }

    for (i = 0; i < MANY_FDS; i++) {
        aio_set_fd_handler(f.ctx, p[i].rfd, NULL, NULL, NULL, NULL, NULL);
        pipe_close(&p[i]);
    }
    settle(&f);
    fixture_destroy(&f);
}

typedef struct ENData {
    EventNotifier e;
    int n;
} ENData;

static void en_cb(EventNotifier *e)
{
    ENData *d = container_of(e, ENData, e);

    g_assert_true(event_notifier_test_and_clear(e));
    d->n++;
}

static void test_event_notifier(void)
{
    Fixture f;
    ENData d = { 0 };

    fixture_init(&f);
    g_assert_cmpint(event_notifier_init(&d.e, false), ==, 0);
    aio_set_event_notifier(f.ctx, &d.e, en_cb, NULL, NULL);
    settle(&f);

    event_notifier_set(&d.e);
    g_assert_true(iterate(&f, true));
    g_assert_cmpint(d.n, ==, 1);
    settle(&f);

    /* Alternate drivers on one context. */
    event_notifier_set(&d.e);
    g_assert_true(aio_poll(f.ctx, true));
    g_assert_cmpint(d.n, ==, 2);
    event_notifier_set(&d.e);
    g_assert_true(iterate(&f, false));
    g_assert_cmpint(d.n, ==, 3);
    settle(&f);
    g_assert_false(aio_poll(f.ctx, false));

    aio_set_event_notifier(f.ctx, &d.e, NULL, NULL, NULL);
    event_notifier_set(&d.e);
    settle(&f);
    g_assert_cmpint(d.n, ==, 3);
    event_notifier_cleanup(&d.e);
    fixture_destroy(&f);
}

/* ---- Timers ------------------------------------------------------------ */

typedef struct TimerData {
    QEMUTimer timer;
    int64_t deadline;
    int n;
} TimerData;

static void timer_cb(void *opaque)
{
    TimerData *td = opaque;

    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_REALTIME), >=, td->deadline);
    td->n++;
}

/*
 * Blocking iterations run a timer 1 ms ahead, and never before its
 * deadline: GLib's millisecond timeout is rounded up.  More than one
 * iteration may be needed: a stale bit 0 of notify_me (prepare reported
 * ready, so GLib skipped check) makes timer_mod_ns() write the eventfd,
 * and that alone wakes an iteration, as the specification allows.
 */
static void test_timer(void)
{
    Fixture f;
    TimerData td = { 0 };
    int round;
    int i;

    fixture_init(&f);
    aio_timer_init(f.ctx, &td.timer, QEMU_CLOCK_REALTIME, SCALE_NS, timer_cb,
                   &td);
    settle(&f);
    for (round = 1; round <= 10; round++) {
        td.deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + SCALE_MS;
        timer_mod_ns(&td.timer, td.deadline);
        for (i = 0; td.n < round && i < MAX_ITERATIONS; i++) {
            iterate(&f, true);
        }
        g_assert_cmpint(td.n, ==, round);
    }
    settle(&f);

    /* A deleted timer never runs. */
    td.deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + SCALE_US;
    timer_mod_ns(&td.timer, td.deadline);
    timer_del(&td.timer);
    settle(&f);
    g_assert_cmpint(td.n, ==, 10);
    fixture_destroy(&f);
}

/* ---- prepare / query / check / dispatch by hand ------------------------ */

static bool notifier_readable(AioContext *ctx)
{
    struct pollfd pfd = {
        .fd = event_notifier_get_fd(&ctx->notifier),
        .events = POLLIN,
    };

    return poll(&pfd, 1, 0) == 1;
}

typedef struct Iteration {
    gint prio;
    gint timeout;
    GPollFD fds[16];
    gint nfds;
} Iteration;

static gboolean iteration_prepare(Fixture *f, Iteration *it)
{
    gboolean ready;

    g_assert_true(g_main_context_acquire(f->gctx));
    ready = g_main_context_prepare(f->gctx, &it->prio);
    it->nfds = g_main_context_query(f->gctx, it->prio, &it->timeout, it->fds,
                                    G_N_ELEMENTS(it->fds));
    g_assert_cmpint(it->nfds, <=, G_N_ELEMENTS(it->fds));
    return ready;
}

static void iteration_finish(Fixture *f, Iteration *it)
{
    g_assert_cmpint(g_poll(it->fds, it->nfds, 0), >=, 0);
    if (g_main_context_check(f->gctx, it->prio, it->fds, it->nfds)) {
        g_main_context_dispatch(f->gctx);
    }
    g_main_context_release(f->gctx);
}

static void test_notify_me_bit0(void)
{
    Fixture f;
    Iteration it;
    BHData d = { 0 };

    fixture_init(&f);
    d.bh = aio_bh_new(f.ctx, bh_cb, &d);
    settle(&f);
    g_assert_cmpuint(qatomic_read(&f.ctx->notify_me), ==, 0);

    /* Between prepare and check, aio_notify must write the eventfd. */
    g_assert_false(iteration_prepare(&f, &it));
    g_assert_cmpint(it.timeout, ==, -1);
    g_assert_cmpuint(qatomic_read(&f.ctx->notify_me) & 1, ==, 1);
    g_assert_false(notifier_readable(f.ctx));
    aio_notify(f.ctx);
    g_assert_true(notifier_readable(f.ctx));
    iteration_finish(&f, &it);
    g_assert_cmpuint(qatomic_read(&f.ctx->notify_me), ==, 0);
    /* Dispatch drained it. */
    g_assert_false(notifier_readable(f.ctx));

    /* After check, nobody may sleep: no write. */
    aio_notify(f.ctx);
    g_assert_false(notifier_readable(f.ctx));
    settle(&f);

    /* A scheduled BH makes prepare report ready with timeout 0. */
    qemu_bh_schedule(d.bh);
    g_assert_true(iteration_prepare(&f, &it));
    g_assert_cmpint(it.timeout, ==, 0);
    g_assert_cmpuint(qatomic_read(&f.ctx->notify_me) & 1, ==, 1);
    iteration_finish(&f, &it);
    g_assert_cmpint(d.n, ==, 1);
    /*
     * GLib skips check() for a source whose prepare() said ready, so bit 0
     * stays set until the next check(): the next iteration clears it.
     */
    settle(&f);
    g_assert_cmpuint(qatomic_read(&f.ctx->notify_me), ==, 0);

    /* A prepare that is never checked leaves the bit set; harmless. */
    g_assert_false(iteration_prepare(&f, &it));
    g_main_context_release(f.gctx);
    g_assert_cmpuint(qatomic_read(&f.ctx->notify_me) & 1, ==, 1);
    aio_notify(f.ctx);
    g_assert_true(notifier_readable(f.ctx));
    /* aio_poll() keeps its own share apart from bit 0. */
    g_assert_false(aio_poll(f.ctx, false));
    g_assert_cmpuint(qatomic_read(&f.ctx->notify_me), ==, 1);
    settle(&f);
    g_assert_cmpuint(qatomic_read(&f.ctx->notify_me), ==, 0);
    g_assert_false(notifier_readable(f.ctx));

    qemu_bh_delete(d.bh);
    settle(&f);
    fixture_destroy(&f);
}

/* The timeout GLib gets is the timer deadline, rounded up to ms. */
static void test_prepare_timeout(void)
{
    Fixture f;
    Iteration it;
    TimerData td = { 0 };
    int64_t before, after;

    fixture_init(&f);
    aio_timer_init(f.ctx, &td.timer, QEMU_CLOCK_REALTIME, SCALE_NS, timer_cb,
                   &td);
    settle(&f);

    before = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    td.deadline = before + 3600 * NANOSECONDS_PER_SECOND + 1;
    timer_mod_ns(&td.timer, td.deadline);
    g_assert_false(iteration_prepare(&f, &it));
    after = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    g_assert_cmpint(it.timeout, <=,
                    qemu_timeout_ns_to_ms(td.deadline - before));
    g_assert_cmpint(it.timeout, >=,
                    qemu_timeout_ns_to_ms(td.deadline - after));
    iteration_finish(&f, &it);

    timer_del(&td.timer);
    settle(&f);
    g_assert_cmpint(td.n, ==, 0);
    fixture_destroy(&f);
}

/* aio_prepare / aio_pending / aio_dispatch on their own. */
static void test_prepare_pending_dispatch(void)
{
    Fixture f;
    BHData d = { 0 };

    fixture_init(&f);
    d.bh = aio_bh_new(f.ctx, bh_cb, &d);
    settle(&f);

    g_assert_false(aio_prepare(f.ctx));
    g_assert_false(aio_pending(f.ctx));
    aio_dispatch(f.ctx);

    qemu_bh_schedule(d.bh);
    aio_dispatch(f.ctx);
    g_assert_cmpint(d.n, ==, 1);
    aio_dispatch(f.ctx);
    g_assert_cmpint(d.n, ==, 1);

    qemu_bh_delete(d.bh);
    settle(&f);
    fixture_destroy(&f);
}

/* ---- Wake-ups from another thread -------------------------------------- */

#define WAKE_ROUNDS 2000

typedef struct WakeData {
    AioContext *ctx;
    QemuSemaphore go;
    BHData d;
    int rounds;
} WakeData;

/*
 * For each round, wait until the iteration has prepared (bit 0 of
 * notify_me set: it may be asleep or about to be), then wake it: with a
 * bare aio_notify() on odd rounds, with a BH on even ones.
 */
static void *waker_thread(void *opaque)
{
    WakeData *wd = opaque;
    int round;

    for (round = 1; round <= wd->rounds; round++) {
        long spins = 0;

        qemu_sem_wait(&wd->go);
        while (!(qatomic_read(&wd->ctx->notify_me) & 1)) {
            if (++spins % 1000 == 0) {
                g_thread_yield();
            }
        }
        if (round % 2) {
            aio_notify(wd->ctx);
        } else {
            qemu_bh_schedule(wd->d.bh);
        }
    }
    return NULL;
}

static void test_wake_from_thread(void)
{
    Fixture f;
    WakeData wd = { 0 };
    QemuThread thread;
    int round;

    fixture_init(&f);
    wd.ctx = f.ctx;
    wd.rounds = WAKE_ROUNDS;
    wd.d.bh = aio_bh_new(f.ctx, bh_cb, &wd.d);
    qemu_sem_init(&wd.go, 0);
    settle(&f);

    qemu_thread_create(&thread, "waker", waker_thread, &wd,
                       QEMU_THREAD_JOINABLE);
    for (round = 1; round <= WAKE_ROUNDS; round++) {
        qemu_sem_post(&wd.go);
        /* Nothing else can end this wait: a lost wake-up hangs here. */
        iterate(&f, true);
        g_assert_cmpint(wd.d.n, ==, round / 2);
    }
    qemu_thread_join(&thread);
    settle(&f);
    g_assert_cmpint(wd.d.n, ==, WAKE_ROUNDS / 2);

    qemu_sem_destroy(&wd.go);
    qemu_bh_delete(wd.d.bh);
    settle(&f);
    fixture_destroy(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    init_clocks(NULL);

    g_test_add_func("/gsource/bh/schedule", test_bh);
    g_test_add_func("/gsource/bh/oneshot-and-idle", test_bh_oneshot_and_idle);
    g_test_add_func("/gsource/bh/nested-aio-poll", test_bh_nested_aio_poll);
    g_test_add_func("/gsource/fd/read-write-remove", test_fd);
    g_test_add_func("/gsource/fd/many", test_fd_many);
    g_test_add_func("/gsource/event-notifier", test_event_notifier);
    g_test_add_func("/gsource/timer/realtime-blocking", test_timer);
    g_test_add_func("/gsource/prepare/notify-me-bit0", test_notify_me_bit0);
    g_test_add_func("/gsource/prepare/timeout-is-timer-deadline",
                    test_prepare_timeout);
    g_test_add_func("/gsource/prepare-pending-dispatch",
                    test_prepare_pending_dispatch);
    g_test_add_func("/gsource/wake/notify-from-thread",
                    test_wake_from_thread);

    return g_test_run();
}
