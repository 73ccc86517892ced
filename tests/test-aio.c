/*
 * test-aio.c: the AioContext driven by aio_poll(), in one thread.
 *
 * Covers context life and parameters, bottom halves (scheduling, slices,
 * nesting, idle, guards, deletion), aio_notify, fd and event-notifier
 * handlers, timers, adaptive polling and the fd monitors.  Registered with
 * 'fdmon': meson runs it once with QAIO_FDMON=poll and once with =epoll;
 * the /aio/fdmon/ cases set the variable themselves where they need to.
 *
 * Threading: every case runs in the main thread, which acts as the home
 * thread of the contexts it creates.  Cross-thread behaviour is in
 * test-aio-multithread.c.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qaio/fdmon.h"
#include <sys/resource.h>
#include <sys/socket.h>

/* Cap for loops that drive the context until a condition holds. */
#define MAX_ITERATIONS 1000

static AioContext *ctx_new(void)
{
    Error *err = NULL;
    AioContext *ctx = aio_context_new(&err);

    g_assert_null(err);
    g_assert_nonnull(ctx);
    return ctx;
}

/*
 * Consume the notification left by registrations and parameter changes,
 * and check the context is idle: a non-blocking aio_poll() then returns
 * false.
 */
static void ctx_settle(AioContext *ctx)
{
    int i;

    for (i = 0; i < MAX_ITERATIONS && aio_poll(ctx, false); i++) {
        /* keep going */
    }
    g_assert_false(aio_poll(ctx, false));
}

/* ---- Bottom halves -------------------------------------------------- */

typedef struct BHData {
    AioContext *ctx;
    QEMUBH *bh;
    int n;                  /* times the callback ran */
    int max;                /* re-schedule itself until n reaches max */
    bool delete_self;       /* delete its own BH when done */
    struct BHData *peer;    /* another BH the callback acts on */
    MemReentrancyGuard *guard;
    bool guard_seen;        /* guard->engaged_in_io inside the callback */
} BHData;

static void bh_count_cb(void *opaque)
{
    BHData *d = opaque;

    d->n++;
    if (d->guard) {
        d->guard_seen = d->guard->engaged_in_io;
    }
    if (d->n < d->max) {
        qemu_bh_schedule(d->bh);
    } else if (d->delete_self) {
        qemu_bh_delete(d->bh);
        d->bh = NULL;
    }
}

static void bh_data_init(BHData *d, AioContext *ctx)
{
    *d = (BHData){ .ctx = ctx };
    d->bh = aio_bh_new(ctx, bh_count_cb, d);
}

static void test_bh_schedule(void)
{
    AioContext *ctx = ctx_new();
    BHData d;

    bh_data_init(&d, ctx);
    g_assert_false(aio_poll(ctx, false));

    qemu_bh_schedule(d.bh);
    g_assert_cmpint(d.n, ==, 0);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, 0);

    /* A scheduled BH makes the timeout 0: a blocking poll returns. */
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(d.n, ==, 1);

    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);

    qemu_bh_delete(d.bh);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);
    aio_context_unref(ctx);
}

static void test_bh_schedule_idempotent(void)
{
    AioContext *ctx = ctx_new();
    BHData d;

    bh_data_init(&d, ctx);
    qemu_bh_schedule(d.bh);
    qemu_bh_schedule(d.bh);
    qemu_bh_schedule(d.bh);

    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);

    qemu_bh_delete(d.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/*
 * A BH that schedules itself runs once per aio_poll(): the new scheduling
 * lands after the slice that aio_bh_poll() is working on.
 */
static void test_bh_reschedule_self(void)
{
    AioContext *ctx = ctx_new();
    BHData d;
    int i;

    bh_data_init(&d, ctx);
    d.max = 10;
    qemu_bh_schedule(d.bh);

    for (i = 1; i <= 10; i++) {
        /* Alternate: a pending BH must not let a blocking poll sleep. */
        g_assert_true(aio_poll(ctx, i % 2 == 0));
        g_assert_cmpint(d.n, ==, i);
    }
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 10);

    qemu_bh_delete(d.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void bh_schedule_peer_cb(void *opaque)
{
    BHData *d = opaque;

    d->n++;
    qemu_bh_schedule(d->peer->bh);
}

static void test_bh_schedule_from_cb_next_slice(void)
{
    AioContext *ctx = ctx_new();
    BHData a, c;

    bh_data_init(&c, ctx);
    a = (BHData){ .ctx = ctx, .peer = &c };
    a.bh = aio_bh_new(ctx, bh_schedule_peer_cb, &a);

    qemu_bh_schedule(a.bh);
    g_assert_cmpint(aio_bh_poll(ctx), ==, 1);
    g_assert_cmpint(a.n, ==, 1);
    g_assert_cmpint(c.n, ==, 0);

    g_assert_cmpint(aio_bh_poll(ctx), ==, 1);
    g_assert_cmpint(a.n, ==, 1);
    g_assert_cmpint(c.n, ==, 1);

    g_assert_cmpint(aio_bh_poll(ctx), ==, 0);

    qemu_bh_delete(a.bh);
    qemu_bh_delete(c.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_cancel(void)
{
    AioContext *ctx = ctx_new();
    BHData d;

    bh_data_init(&d, ctx);
    qemu_bh_schedule(d.bh);
    qemu_bh_cancel(d.bh);

    /* Still queued, but no longer scheduled: nothing to wait for. */
    g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 0);

    /* Cancelling an idle BH is harmless; it can be scheduled again. */
    qemu_bh_cancel(d.bh);
    qemu_bh_schedule(d.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);

    /* Schedule, cancel, schedule: runs once. */
    qemu_bh_schedule(d.bh);
    qemu_bh_cancel(d.bh);
    qemu_bh_schedule(d.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 2);
    g_assert_false(aio_poll(ctx, false));

    qemu_bh_delete(d.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_delete_unscheduled(void)
{
    AioContext *ctx = ctx_new();
    BHData d;

    bh_data_init(&d, ctx);
    qemu_bh_delete(d.bh);
    /* The context frees it; LeakSanitizer checks that it did. */
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 0);
    aio_context_unref(ctx);
}

static void test_bh_delete_pending(void)
{
    AioContext *ctx = ctx_new();
    BHData d;

    bh_data_init(&d, ctx);
    qemu_bh_schedule(d.bh);
    qemu_bh_delete(d.bh);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 0);
    g_assert_false(aio_poll(ctx, false));
    aio_context_unref(ctx);
}

static void test_bh_delete_from_own_cb(void)
{
    AioContext *ctx = ctx_new();
    BHData d;

    bh_data_init(&d, ctx);
    d.max = 3;
    d.delete_self = true;
    qemu_bh_schedule(d.bh);

    g_assert_true(aio_poll(ctx, false));
    g_assert_true(aio_poll(ctx, false));
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 3);
    g_assert_null(d.bh);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 3);
    aio_context_unref(ctx);
}

/* Schedules the peer and deletes it at once: the peer must not run. */
static void bh_schedule_and_delete_peer_cb(void *opaque)
{
    BHData *d = opaque;

    d->n++;
    qemu_bh_schedule(d->peer->bh);
    qemu_bh_delete(d->peer->bh);
    d->peer->bh = NULL;
}

static void test_bh_delete_from_other_bh(void)
{
    AioContext *ctx = ctx_new();
    BHData a, b;

    bh_data_init(&b, ctx);
    a = (BHData){ .ctx = ctx, .peer = &b };
    a.bh = aio_bh_new(ctx, bh_schedule_and_delete_peer_cb, &a);

    qemu_bh_schedule(a.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(a.n, ==, 1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(b.n, ==, 0);

    qemu_bh_delete(a.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* Deletes the peer unless the peer already ran. */
static void bh_delete_peer_if_not_run_cb(void *opaque)
{
    BHData *d = opaque;

    d->n++;
    if (d->peer->n == 0) {
        qemu_bh_delete(d->peer->bh);
        d->peer->bh = NULL;
    }
}

/*
 * Two BHs of one slice that delete each other: whichever runs first
 * deletes the other, which must then not run, whatever the order.
 */
static void test_bh_delete_peer_in_same_slice(void)
{
    AioContext *ctx = ctx_new();
    BHData a = { .ctx = ctx }, b = { .ctx = ctx };

    a.peer = &b;
    b.peer = &a;
    a.bh = aio_bh_new(ctx, bh_delete_peer_if_not_run_cb, &a);
    b.bh = aio_bh_new(ctx, bh_delete_peer_if_not_run_cb, &b);
    qemu_bh_schedule(a.bh);
    qemu_bh_schedule(b.bh);

    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(a.n + b.n, ==, 1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(a.n + b.n, ==, 1);

    /* The survivor is the one that ran. */
    g_assert_true((a.n == 1) == (a.bh != NULL));
    g_assert_true((b.n == 1) == (b.bh != NULL));
    qemu_bh_delete(a.bh ? a.bh : b.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

#define NESTED_PEERS 8

typedef struct NestedData {
    AioContext *ctx;
    QEMUBH *outer;
    BHData peers[NESTED_PEERS];
    BHData late;            /* scheduled by the outer callback */
    int outer_runs;
    bool nested_result;
    int peers_before_nested;
} NestedData;

static int nested_peers_run(NestedData *nd)
{
    int i, sum = 0;

    for (i = 0; i < NESTED_PEERS; i++) {
        sum += nd->peers[i].n;
    }
    return sum;
}

static void bh_nested_poll_cb(void *opaque)
{
    NestedData *nd = opaque;
    int i;

    nd->outer_runs++;
    nd->peers_before_nested = nested_peers_run(nd);
    qemu_bh_schedule(nd->late.bh);

    nd->nested_result = aio_poll(nd->ctx, false);

    /* The nested call finished our own slice and ran the new BH too. */
    for (i = 0; i < NESTED_PEERS; i++) {
        g_assert_cmpint(nd->peers[i].n, ==, 1);
    }
    g_assert_cmpint(nd->late.n, ==, 1);
}

static void test_bh_nested_poll_runs_outer_slice(void)
{
    AioContext *ctx = ctx_new();
    NestedData nd = { .ctx = ctx };
    int i;

    for (i = 0; i < NESTED_PEERS; i++) {
        bh_data_init(&nd.peers[i], ctx);
    }
    bh_data_init(&nd.late, ctx);
    nd.outer = aio_bh_new(ctx, bh_nested_poll_cb, &nd);

    /* The outer BH lands somewhere among its peers in one slice. */
    qemu_bh_schedule(nd.peers[0].bh);
    qemu_bh_schedule(nd.peers[1].bh);
    qemu_bh_schedule(nd.peers[2].bh);
    qemu_bh_schedule(nd.peers[3].bh);
    qemu_bh_schedule(nd.outer);
    for (i = 4; i < NESTED_PEERS; i++) {
        qemu_bh_schedule(nd.peers[i].bh);
    }

    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(nd.outer_runs, ==, 1);
    g_assert_cmpint(nested_peers_run(&nd), ==, NESTED_PEERS);
    g_assert_cmpint(nd.late.n, ==, 1);
    /* The nested call always ran "late", so it made progress. */
    g_assert_true(nd.nested_result);
    g_assert_false(aio_poll(ctx, false));

    for (i = 0; i < NESTED_PEERS; i++) {
        qemu_bh_delete(nd.peers[i].bh);
    }
    qemu_bh_delete(nd.late.bh);
    qemu_bh_delete(nd.outer);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_poll_return(void)
{
    AioContext *ctx = ctx_new();
    BHData d;

    bh_data_init(&d, ctx);
    g_assert_cmpint(aio_bh_poll(ctx), ==, 0);

    qemu_bh_schedule(d.bh);
    g_assert_cmpint(aio_bh_poll(ctx), ==, 1);
    g_assert_cmpint(d.n, ==, 1);
    g_assert_cmpint(aio_bh_poll(ctx), ==, 0);

    qemu_bh_schedule(d.bh);
    qemu_bh_cancel(d.bh);
    g_assert_cmpint(aio_bh_poll(ctx), ==, 0);
    g_assert_cmpint(d.n, ==, 1);

    /* Idle BHs run but are not progress. */
    qemu_bh_schedule_idle(d.bh);
    g_assert_cmpint(aio_bh_poll(ctx), ==, 0);
    g_assert_cmpint(d.n, ==, 2);

    qemu_bh_delete(d.bh);
    g_assert_cmpint(aio_bh_poll(ctx), ==, 0);
    g_assert_cmpint(d.n, ==, 2);
    aio_context_unref(ctx);
}

static void bh_oneshot_cb(void *opaque)
{
    int *n = opaque;

    (*n)++;
}

static void test_bh_idle(void)
{
    AioContext *ctx = ctx_new();
    QEMUTimer timer;
    BHData d, t;
    int timer_runs = 0;
    int64_t before, deadline, timeout, after;

    bh_data_init(&d, ctx);
    bh_data_init(&t, ctx);
    ctx_settle(ctx);

    /* An idle BH caps the wait at 10 ms and is not progress. */
    qemu_bh_schedule_idle(d.bh);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, 10 * SCALE_MS);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);

    /* A blocking poll runs it too, and still reports no progress. */
    qemu_bh_schedule_idle(d.bh);
    g_assert_false(aio_poll(ctx, true));
    g_assert_cmpint(d.n, ==, 2);

    /* A later timer does not lengthen the cap... */
    aio_timer_init(ctx, &timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                   bh_oneshot_cb, &timer_runs);
    timer_mod(&timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
              3600 * NANOSECONDS_PER_SECOND);
    qemu_bh_schedule_idle(d.bh);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, 10 * SCALE_MS);

    /* ...an earlier one shortens it... */
    before = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    deadline = before + 5 * SCALE_MS;
    timer_mod(&timer, deadline);
    timeout = aio_compute_timeout(ctx);
    after = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    g_assert_cmpint(timeout, <=, deadline - before);
    g_assert_cmpint(timeout, >=, MAX(deadline - after, 0));
    timer_del(&timer);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, 10 * SCALE_MS);

    /* ...and a normal BH makes it 0. */
    qemu_bh_schedule(t.bh);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, 0);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(t.n, ==, 1);
    g_assert_cmpint(d.n, ==, 3);
    g_assert_cmpint(timer_runs, ==, 0);

    qemu_bh_delete(d.bh);
    qemu_bh_delete(t.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void bh_oneshot_resched_cb(void *opaque)
{
    BHData *d = opaque;

    d->n++;
    if (d->n < d->max) {
        aio_bh_schedule_oneshot(d->ctx, bh_oneshot_resched_cb, d);
    }
}

static void test_bh_oneshot(void)
{
    AioContext *ctx = ctx_new();
    BHData d = { .ctx = ctx, .max = 3 };
    int n = 0;

    aio_bh_schedule_oneshot(ctx, bh_oneshot_cb, &n);
    aio_bh_schedule_oneshot_full(ctx, bh_oneshot_cb, &n, "named-oneshot");
    g_assert_cmpint(aio_compute_timeout(ctx), ==, 0);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(n, ==, 2);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(n, ==, 2);

    /* One scheduled from its own callback waits for the next poll. */
    aio_bh_schedule_oneshot(ctx, bh_oneshot_resched_cb, &d);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 2);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 3);
    g_assert_false(aio_poll(ctx, false));
    aio_context_unref(ctx);
}

static void test_bh_new_full(void)
{
    AioContext *ctx = ctx_new();
    BHData d = { .ctx = ctx };

    d.bh = aio_bh_new_full(ctx, bh_count_cb, &d, "named-bh", NULL);
    qemu_bh_schedule(d.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);

    /* aio_bh_call runs the callback at once, scheduled or not. */
    aio_bh_call(d.bh);
    g_assert_cmpint(d.n, ==, 2);
    g_assert_false(aio_poll(ctx, false));

    qemu_bh_delete(d.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_guarded_runs_with_guard_engaged(void)
{
    AioContext *ctx = ctx_new();
    MemReentrancyGuard guard = { .engaged_in_io = false };
    BHData d = { .ctx = ctx, .guard = &guard };

    d.bh = aio_bh_new_guarded(ctx, bh_count_cb, &d, &guard);
    qemu_bh_schedule(d.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_true(d.guard_seen);
    g_assert_false(guard.engaged_in_io);

    aio_bh_call(d.bh);
    g_assert_cmpint(d.n, ==, 2);
    g_assert_true(d.guard_seen);
    g_assert_false(guard.engaged_in_io);

    qemu_bh_delete(d.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* Body of the subprocess: a guard engaged by its owner blocks the BH. */
static void guarded_blocked_body(void)
{
    AioContext *ctx = ctx_new();
    MemReentrancyGuard guard = { .engaged_in_io = true };
    BHData d = { .ctx = ctx, .guard = &guard };

    d.bh = aio_bh_new_guarded(ctx, bh_count_cb, &d, &guard);
    qemu_bh_schedule(d.bh);
    aio_poll(ctx, false);
    g_assert_cmpint(d.n, ==, 0);
    g_assert_true(guard.engaged_in_io);

    aio_bh_call(d.bh);
    g_assert_cmpint(d.n, ==, 0);
    g_assert_true(guard.engaged_in_io);

    /* Once the owner is out, the BH runs again. */
    guard.engaged_in_io = false;
    qemu_bh_schedule(d.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);

    qemu_bh_delete(d.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_guarded_engaged_not_run(void)
{
    if (g_test_subprocess()) {
        guarded_blocked_body();
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*warning*");
}

typedef struct ReentrantData {
    AioContext *ctx;
    MemReentrancyGuard guard;
    BHData inner;
    QEMUBH *outer;
    int outer_runs;
} ReentrantData;

static void bh_reenter_cb(void *opaque)
{
    ReentrantData *rd = opaque;

    rd->outer_runs++;
    g_assert_true(rd->guard.engaged_in_io);
    /* A BH of the same owner scheduled and polled from inside: blocked. */
    qemu_bh_schedule(rd->inner.bh);
    aio_poll(rd->ctx, false);
    g_assert_cmpint(rd->inner.n, ==, 0);
    g_assert_true(rd->guard.engaged_in_io);
}

static void reentrant_body(void)
{
    AioContext *ctx = ctx_new();
    ReentrantData rd = { .ctx = ctx };

    rd.inner = (BHData){ .ctx = ctx, .guard = &rd.guard };
    rd.inner.bh = aio_bh_new_guarded(ctx, bh_count_cb, &rd.inner, &rd.guard);
    rd.outer = aio_bh_new_guarded(ctx, bh_reenter_cb, &rd, &rd.guard);

    qemu_bh_schedule(rd.outer);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(rd.outer_runs, ==, 1);
    g_assert_false(rd.guard.engaged_in_io);
    ctx_settle(ctx);
    g_assert_cmpint(rd.inner.n, ==, 0);

    /* Outside the outer callback the inner BH runs normally. */
    qemu_bh_schedule(rd.inner.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(rd.inner.n, ==, 1);
    g_assert_true(rd.inner.guard_seen);
    g_assert_false(rd.guard.engaged_in_io);

    qemu_bh_delete(rd.inner.bh);
    qemu_bh_delete(rd.outer);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_guarded_reentrancy_blocked(void)
{
    if (g_test_subprocess()) {
        reentrant_body();
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*warning*");
}

/* A guarded BH deleting itself (freeing its owner) must not crash. */
typedef struct GuardOwner {
    MemReentrancyGuard guard;
    QEMUBH *bh;
    int *runs;
} GuardOwner;

static void bh_free_owner_cb(void *opaque)
{
    GuardOwner *owner = opaque;

    (*owner->runs)++;
    qemu_bh_delete(owner->bh);
    g_free(owner);
}

static void test_bh_guarded_delete_frees_owner(void)
{
    AioContext *ctx = ctx_new();
    GuardOwner *owner = g_new0(GuardOwner, 1);
    int runs = 0;

    owner->runs = &runs;
    owner->bh = aio_bh_new_guarded(ctx, bh_free_owner_cb, owner,
                                   &owner->guard);
    qemu_bh_schedule(owner->bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(runs, ==, 1);
    g_assert_false(aio_poll(ctx, false));
    aio_context_unref(ctx);
}

/* A BH run from a signal handler: qemu_bh_schedule is async-signal-safe. */
static QEMUBH *signal_bh;

static void sigusr1_handler(int sig)
{
    qemu_bh_schedule(signal_bh);
}

static void test_bh_schedule_from_signal(void)
{
    AioContext *ctx = ctx_new();
    struct sigaction sa = { .sa_handler = sigusr1_handler };
    struct sigaction old;
    BHData d;

    bh_data_init(&d, ctx);
    signal_bh = d.bh;
    sigemptyset(&sa.sa_mask);
    g_assert_cmpint(sigaction(SIGUSR1, &sa, &old), ==, 0);

    ctx_settle(ctx);
    g_assert_cmpint(raise(SIGUSR1), ==, 0);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(d.n, ==, 1);

    g_assert_cmpint(sigaction(SIGUSR1, &old, NULL), ==, 0);
    signal_bh = NULL;
    qemu_bh_delete(d.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* ---- Context life ---------------------------------------------------- */

/* Can this process create an io_uring?  Then QAIO_FDMON=io_uring gets it. */
static bool io_uring_works(void)
{
#ifdef CONFIG_LINUX_IO_URING
    const char *off = g_getenv("QAIO_DISABLE_IO_URING");
    struct io_uring ring;

    if ((off && *off && strcmp(off, "0")) ||
        io_uring_queue_init(2, &ring, 0) < 0) {
        return false;
    }
    io_uring_queue_exit(&ring);
    return true;
#else
    return false;
#endif
}

static void test_context_new_state(void)
{
    AioContext *ctx = ctx_new();
    const char *env = g_getenv("QAIO_FDMON");

    g_assert_cmpuint(ctx->notify_me, ==, 0);
    /* A bare context does not busy-poll (QEMU enables it per IOThread). */
    g_assert_cmpint(ctx->poll_max_ns, ==, 0);
    g_assert_cmpint(ctx->poll_ns, ==, 0);
    g_assert_false(ctx->poll_started);
    g_assert_cmpint(ctx->aio_max_batch, ==, 0);
    g_assert_cmpint(ctx->thread_pool_min, ==, 0);
    /* THREAD_POOL_MAX_THREADS_DEFAULT */
    g_assert_cmpint(ctx->thread_pool_max, ==, 64);
    /* Its own notifier has an io_poll callback. */
    g_assert_false(aio_poll_disabled(ctx));
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);
    g_assert_false(aio_poll(ctx, false));

    if (env && (!strcmp(env, "poll") || !strcmp(env, "epoll"))) {
        g_assert_cmpstr(qaio_fdmon_name(ctx), ==, env);
    } else if (env && !strcmp(env, "io_uring")) {
        g_assert_cmpstr(qaio_fdmon_name(ctx), ==,
                        io_uring_works() ? "io_uring" : "poll");
    } else {
        /* The default: poll, even where io_uring works. */
        g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    }
    aio_context_unref(ctx);
}

static void test_context_ref_unref(void)
{
    AioContext *ctx = ctx_new();
    BHData d;

    aio_context_ref(ctx);
    aio_context_ref(ctx);
    aio_context_unref(ctx);
    aio_context_unref(ctx);

    /* Still alive (AddressSanitizer would catch a use after free). */
    bh_data_init(&d, ctx);
    qemu_bh_schedule(d.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);
    qemu_bh_delete(d.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* Pending BHs die with the context, unrun; LeakSanitizer checks frees. */
static void test_context_unref_frees_deleted_bhs(void)
{
    AioContext *ctx = ctx_new();
    BHData a, b;

    bh_data_init(&a, ctx);
    bh_data_init(&b, ctx);
    qemu_bh_delete(a.bh);
    qemu_bh_schedule(b.bh);
    qemu_bh_delete(b.bh);
    aio_context_unref(ctx);
    g_assert_cmpint(a.n, ==, 0);
    g_assert_cmpint(b.n, ==, 0);
}

static void test_context_unref_frees_oneshot_bhs(void)
{
    AioContext *ctx = ctx_new();
    int n = 0;
    int i;

    for (i = 0; i < 10; i++) {
        aio_bh_schedule_oneshot(ctx, bh_oneshot_cb, &n);
    }
    aio_context_unref(ctx);
    g_assert_cmpint(n, ==, 0);
}

static void test_context_unref_frees_scheduled_bhs(void)
{
    if (g_test_subprocess()) {
        AioContext *ctx = ctx_new();
        BHData d;

        bh_data_init(&d, ctx);
        qemu_bh_schedule(d.bh);
        /* The context owns a queued BH; it goes with the context. */
        aio_context_unref(ctx);
        g_assert_cmpint(d.n, ==, 0);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
}

static void en_never_cb(EventNotifier *e)
{
    g_assert_not_reached();
}

/* Handlers still registered go with the context, without running. */
static void test_context_unref_with_handlers(void)
{
    AioContext *ctx = ctx_new();
    EventNotifier e;

    g_assert_cmpint(event_notifier_init(&e, true), ==, 0);
    aio_set_event_notifier(ctx, &e, en_never_cb, NULL, NULL);
    aio_context_unref(ctx);
    event_notifier_cleanup(&e);
}

/* No fds left: aio_context_new fails cleanly, and works again after. */
static void test_context_new_no_fds(void)
{
    struct rlimit old, lim;
    GArray *fds;
    Error *err = NULL;
    AioContext *ctx;
    guint i;

    if (!g_test_subprocess()) {
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        return;
    }

    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &old), ==, 0);
    lim = old;
    lim.rlim_cur = MIN(old.rlim_max, (rlim_t)256);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &lim), ==, 0);

    fds = g_array_new(false, false, sizeof(int));
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
            g_assert_cmpint(errno, ==, EMFILE);
            break;
        }
        g_array_append_val(fds, fd);
    }

    ctx = aio_context_new(&err);
    g_assert_null(ctx);
    g_assert_nonnull(err);
    error_free(err);

    for (i = 0; i < fds->len; i++) {
        close(g_array_index(fds, int, i));
    }
    g_array_free(fds, true);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);

    ctx = ctx_new();
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* ---- Parameters ------------------------------------------------------ */

static void test_params_poll(void)
{
    AioContext *ctx = ctx_new();
    Error *err = NULL;
    static const int64_t bad[][3] = {
        { -1, 2, 2 }, { 1000, -1, 2 }, { 1000, 2, -1 }, { INT64_MIN, 0, 0 },
    };
    size_t i;

    aio_context_set_poll_params(ctx, 32768, 3, 4, &err);
    g_assert_null(err);
    g_assert_cmpint(ctx->poll_max_ns, ==, 32768);
    g_assert_cmpint(ctx->poll_grow, ==, 3);
    g_assert_cmpint(ctx->poll_shrink, ==, 4);
    g_assert_cmpint(ctx->poll_ns, ==, 0);

    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        aio_context_set_poll_params(ctx, bad[i][0], bad[i][1], bad[i][2],
                                    &err);
        g_assert_nonnull(err);
        error_free(err);
        err = NULL;
        g_assert_cmpint(ctx->poll_max_ns, ==, 32768);
        g_assert_cmpint(ctx->poll_grow, ==, 3);
        g_assert_cmpint(ctx->poll_shrink, ==, 4);
    }

    /* Zero is valid everywhere: polling off, default factors. */
    aio_context_set_poll_params(ctx, 0, 0, 0, &error_abort);
    g_assert_cmpint(ctx->poll_max_ns, ==, 0);
    g_assert_cmpint(ctx->poll_grow, ==, 0);
    g_assert_cmpint(ctx->poll_shrink, ==, 0);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_params_aio(void)
{
    AioContext *ctx = ctx_new();

    aio_context_set_aio_params(ctx, 32);
    g_assert_cmpint(ctx->aio_max_batch, ==, 32);
    aio_context_set_aio_params(ctx, 0);
    g_assert_cmpint(ctx->aio_max_batch, ==, 0);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_params_thread_pool(void)
{
    AioContext *ctx = ctx_new();
    static const int64_t good[][2] = {
        { 0, 1 }, { 2, 8 }, { 8, 8 }, { 0, INT_MAX }, { INT_MAX, INT_MAX },
    };
    static const int64_t bad[][2] = {
        { -1, 4 }, { 0, 0 }, { 0, -1 }, { 5, 4 },
        { 0, (int64_t)INT_MAX + 1 },
        { (int64_t)INT_MAX + 1, (int64_t)INT_MAX + 2 },
        { INT64_MIN, INT64_MAX },
    };
    Error *err = NULL;
    size_t i;

    for (i = 0; i < ARRAY_SIZE(good); i++) {
        aio_context_set_thread_pool_params(ctx, good[i][0], good[i][1], &err);
        g_assert_null(err);
        g_assert_cmpint(ctx->thread_pool_min, ==, good[i][0]);
        g_assert_cmpint(ctx->thread_pool_max, ==, good[i][1]);
    }

    aio_context_set_thread_pool_params(ctx, 3, 7, &error_abort);
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        aio_context_set_thread_pool_params(ctx, bad[i][0], bad[i][1], &err);
        g_assert_nonnull(err);
        error_free(err);
        err = NULL;
        g_assert_cmpint(ctx->thread_pool_min, ==, 3);
        g_assert_cmpint(ctx->thread_pool_max, ==, 7);
    }
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/*
 * The I/O engines come with a later issue.  Until then a setup returns NULL
 * with an Error; once built it returns the same engine on every call.
 */
static void test_engines_setup(void)
{
    AioContext *ctx = ctx_new();
    struct ThreadPool *pool;
    struct LinuxAioState *laio;
    LuringState *luring;
    Error *err = NULL;

    pool = aio_get_thread_pool(ctx);
    g_assert_true(aio_get_thread_pool(ctx) == pool);

    laio = aio_setup_linux_aio(ctx, &err);
    if (laio) {
        g_assert_null(err);
        g_assert_true(aio_get_linux_aio(ctx) == laio);
        g_assert_true(aio_setup_linux_aio(ctx, &error_abort) == laio);
    } else {
        g_assert_nonnull(err);
        error_free(err);
        err = NULL;
    }

    luring = aio_setup_linux_io_uring(ctx, &err);
    if (luring) {
        g_assert_null(err);
        g_assert_true(aio_get_linux_io_uring(ctx) == luring);
        g_assert_true(aio_setup_linux_io_uring(ctx, &error_abort) == luring);
    } else {
        g_assert_nonnull(err);
        error_free(err);
    }

    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* ---- aio_notify ------------------------------------------------------ */

static void test_notify_is_not_progress(void)
{
    AioContext *ctx = ctx_new();

    g_assert_false(aio_poll(ctx, false));
    aio_notify(ctx);
    g_assert_false(aio_poll(ctx, false));

    /* A pending notification ends a blocking poll at once, as no work. */
    aio_notify(ctx);
    g_assert_false(aio_poll(ctx, true));
    g_assert_false(aio_poll(ctx, false));
    aio_context_unref(ctx);
}

static void test_notify_accept(void)
{
    AioContext *ctx = ctx_new();

    aio_notify_accept(ctx);
    g_assert_false(qatomic_read(&ctx->notified));
    aio_notify(ctx);
    g_assert_true(qatomic_read(&ctx->notified));
    aio_notify(ctx);
    g_assert_true(qatomic_read(&ctx->notified));
    aio_notify_accept(ctx);
    g_assert_false(qatomic_read(&ctx->notified));
    aio_context_unref(ctx);
}

/* With nobody about to sleep, aio_notify must not write the eventfd. */
static void test_notify_no_write_when_idle(void)
{
    AioContext *ctx = ctx_new();
    struct pollfd pfd = {
        .fd = event_notifier_get_fd(&ctx->notifier),
        .events = POLLIN,
    };
    int i;

    ctx_settle(ctx);
    g_assert_cmpuint(qatomic_read(&ctx->notify_me), ==, 0);
    for (i = 0; i < 3; i++) {
        aio_notify(ctx);
    }
    g_assert_cmpint(poll(&pfd, 1, 0), ==, 0);
    g_assert_false(aio_poll(ctx, false));
    aio_context_unref(ctx);
}

/* ---- fd handlers ----------------------------------------------------- */

typedef struct Pipe {
    AioContext *ctx;
    int rfd;
    int wfd;
    int n_read;
    int n_write;
    bool drain;             /* the read handler empties the pipe */
    bool remove_self;       /* the handlers unregister themselves */
    struct Pipe *peer;      /* removed by our read handler, if not run yet */
    int other_read;         /* runs of pipe_read_other_cb */
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
    if (p->rfd >= 0) {
        close(p->rfd);
    }
    if (p->wfd >= 0) {
        close(p->wfd);
    }
}

static void pipe_put(Pipe *p)
{
    char c = 'x';

    g_assert_cmpint(write(p->wfd, &c, 1), ==, 1);
}

static int fd_drain(int fd)
{
    char buf[256];
    int total = 0;
    ssize_t r;

    while ((r = read(fd, buf, sizeof(buf))) > 0) {
        total += r;
    }
    return total;
}

static void pipe_read_cb(void *opaque)
{
    Pipe *p = opaque;

    p->n_read++;
    if (p->drain) {
        fd_drain(p->rfd);
    }
    if (p->remove_self) {
        aio_set_fd_handler(p->ctx, p->rfd, NULL, NULL, NULL, NULL, NULL);
    }
    if (p->peer && p->peer->n_read == 0) {
        aio_set_fd_handler(p->ctx, p->peer->rfd, NULL, NULL, NULL, NULL,
                           NULL);
    }
}

static void pipe_read_other_cb(void *opaque)
{
    Pipe *p = opaque;

    p->other_read++;
    fd_drain(p->rfd);
}

static void pipe_write_cb(void *opaque)
{
    Pipe *p = opaque;

    p->n_write++;
    if (p->remove_self) {
        aio_set_fd_handler(p->ctx, p->wfd, NULL, NULL, NULL, NULL, NULL);
    }
}

static void test_fd_read_level_triggered(void)
{
    AioContext *ctx = ctx_new();
    Pipe p;

    pipe_open(&p, ctx);
    aio_set_fd_handler(ctx, p.rfd, pipe_read_cb, NULL, NULL, NULL, &p);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 1);
    ctx_settle(ctx);
    g_assert_cmpint(p.n_read, ==, 0);

    /* Not drained: the handler runs again on every poll. */
    pipe_put(&p);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 2);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(p.n_read, ==, 3);

    p.drain = true;
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 4);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 4);

    aio_set_fd_handler(ctx, p.rfd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);
    pipe_put(&p);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 4);

    ctx_settle(ctx);
    pipe_close(&p);
    aio_context_unref(ctx);
}

static void test_fd_write(void)
{
    AioContext *ctx = ctx_new();
    Pipe p;

    pipe_open(&p, ctx);
    aio_set_fd_handler(ctx, p.wfd, NULL, pipe_write_cb, NULL, NULL, &p);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_write, ==, 1);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(p.n_write, ==, 2);

    p.remove_self = true;
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_write, ==, 3);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(p.n_write, ==, 3);
    g_assert_cmpint(p.n_read, ==, 0);

    pipe_close(&p);
    aio_context_unref(ctx);
}

/* One handler for both directions runs both in one poll. */
static void test_fd_read_and_write(void)
{
    AioContext *ctx = ctx_new();
    int sv[2];
    Pipe p = { .ctx = ctx };
    char c = 'y';

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                               SOCK_CLOEXEC, 0, sv), ==, 0);
    p.rfd = sv[0];
    p.wfd = sv[1];
    p.drain = true;
    aio_set_fd_handler(ctx, sv[0], pipe_read_cb, pipe_write_cb, NULL, NULL,
                       &p);

    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 0);
    g_assert_cmpint(p.n_write, ==, 1);

    g_assert_cmpint(write(sv[1], &c, 1), ==, 1);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_cmpint(p.n_write, ==, 2);

    /* Drop the write side only: the read side keeps working. */
    aio_set_fd_handler(ctx, sv[0], pipe_read_cb, NULL, NULL, NULL, &p);
    ctx_settle(ctx);
    g_assert_cmpint(p.n_write, ==, 2);
    g_assert_cmpint(write(sv[1], &c, 1), ==, 1);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 2);
    g_assert_cmpint(p.n_write, ==, 2);

    aio_set_fd_handler(ctx, sv[0], NULL, NULL, NULL, NULL, NULL);
    ctx_settle(ctx);
    pipe_close(&p);
    aio_context_unref(ctx);
}

/* A hang-up is reported to the read handler. */
static void test_fd_hangup_runs_read(void)
{
    AioContext *ctx = ctx_new();
    Pipe p;

    pipe_open(&p, ctx);
    p.remove_self = true;
    aio_set_fd_handler(ctx, p.rfd, pipe_read_cb, NULL, NULL, NULL, &p);
    ctx_settle(ctx);

    close(p.wfd);
    p.wfd = -1;
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_false(aio_poll(ctx, false));

    pipe_close(&p);
    aio_context_unref(ctx);
}

static void test_fd_modify(void)
{
    AioContext *ctx = ctx_new();
    Pipe p;

    pipe_open(&p, ctx);
    aio_set_fd_handler(ctx, p.rfd, pipe_read_cb, NULL, NULL, NULL, &p);
    pipe_put(&p);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);

    /* Replace io_read: only the new callback runs. */
    aio_set_fd_handler(ctx, p.rfd, pipe_read_other_cb, NULL, NULL, NULL, &p);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 1);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_cmpint(p.other_read, ==, 1);
    g_assert_false(aio_poll(ctx, false));

    aio_set_fd_handler(ctx, p.rfd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);
    ctx_settle(ctx);
    pipe_close(&p);
    aio_context_unref(ctx);
}

/* Replaces its own handler from inside the callback. */
static void pipe_replace_self_cb(void *opaque)
{
    Pipe *p = opaque;

    p->n_read++;
    aio_set_fd_handler(p->ctx, p->rfd, pipe_read_other_cb, NULL, NULL, NULL,
                       p);
}

static void test_fd_modify_from_own_cb(void)
{
    AioContext *ctx = ctx_new();
    Pipe p;

    pipe_open(&p, ctx);
    aio_set_fd_handler(ctx, p.rfd, pipe_replace_self_cb, NULL, NULL, NULL,
                       &p);
    pipe_put(&p);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_cmpint(p.other_read, ==, 0);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_cmpint(p.other_read, ==, 1);
    g_assert_false(aio_poll(ctx, false));

    aio_set_fd_handler(ctx, p.rfd, NULL, NULL, NULL, NULL, NULL);
    ctx_settle(ctx);
    pipe_close(&p);
    aio_context_unref(ctx);
}

static void test_fd_remove_from_own_cb(void)
{
    AioContext *ctx = ctx_new();
    Pipe p;

    pipe_open(&p, ctx);
    p.remove_self = true;
    aio_set_fd_handler(ctx, p.rfd, pipe_read_cb, NULL, NULL, NULL, &p);
    pipe_put(&p);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    /* Still readable, but no longer watched. */
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);

    pipe_close(&p);
    aio_context_unref(ctx);
}

/* Two readable fds whose handlers remove each other: exactly one runs. */
static void test_fd_remove_from_other_handler(void)
{
    AioContext *ctx = ctx_new();
    Pipe a, b;
    int i;

    pipe_open(&a, ctx);
    pipe_open(&b, ctx);
    a.peer = &b;
    b.peer = &a;
    aio_set_fd_handler(ctx, a.rfd, pipe_read_cb, NULL, NULL, NULL, &a);
    aio_set_fd_handler(ctx, b.rfd, pipe_read_cb, NULL, NULL, NULL, &b);
    pipe_put(&a);
    pipe_put(&b);

    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(a.n_read + b.n_read, ==, 1);

    /* The survivor was not drained: it keeps running, the other does not. */
    for (i = 2; i <= 4; i++) {
        g_assert_true(aio_poll(ctx, false));
        g_assert_cmpint(MAX(a.n_read, b.n_read), ==, i);
        g_assert_cmpint(MIN(a.n_read, b.n_read), ==, 0);
    }
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 1);

    aio_set_fd_handler(ctx, a.n_read ? a.rfd : b.rfd, NULL, NULL, NULL, NULL,
                       NULL);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);
    ctx_settle(ctx);
    pipe_close(&a);
    pipe_close(&b);
    aio_context_unref(ctx);
}

static void test_fd_remove_unregistered(void)
{
    AioContext *ctx = ctx_new();
    Pipe p;

    pipe_open(&p, ctx);
    ctx_settle(ctx);
    aio_set_fd_handler(ctx, p.rfd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);
    pipe_put(&p);
    g_assert_false(aio_poll(ctx, false));

    /* Removing twice is harmless too. */
    aio_set_fd_handler(ctx, p.rfd, pipe_read_cb, NULL, NULL, NULL, &p);
    aio_set_fd_handler(ctx, p.rfd, NULL, NULL, NULL, NULL, NULL);
    aio_set_fd_handler(ctx, p.rfd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 0);

    pipe_close(&p);
    aio_context_unref(ctx);
}

/* ---- Event notifiers -------------------------------------------------- */

typedef struct ENData {
    EventNotifier e;
    AioContext *ctx;
    int n;
    int active;             /* re-set the notifier until n reaches this */
    bool auto_set;
} ENData;

static void en_read_cb(EventNotifier *e)
{
    ENData *d = container_of(e, ENData, e);

    g_assert_true(event_notifier_test_and_clear(e));
    d->n++;
    if (d->auto_set && d->n < d->active) {
        event_notifier_set(e);
    }
}

static void test_event_notifier(void)
{
    AioContext *ctx = ctx_new();
    ENData d = { .ctx = ctx };

    g_assert_cmpint(event_notifier_init(&d.e, false), ==, 0);
    aio_set_event_notifier(ctx, &d.e, en_read_cb, NULL, NULL);
    g_assert_true(aio_poll_disabled(ctx));
    ctx_settle(ctx);
    g_assert_cmpint(d.n, ==, 0);

    event_notifier_set(&d.e);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_false(aio_poll(ctx, false));

    event_notifier_set(&d.e);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(d.n, ==, 2);
    g_assert_false(aio_poll(ctx, false));

    /* A callback that sets its notifier again runs once per poll. */
    d.auto_set = true;
    d.active = 12;
    event_notifier_set(&d.e);
    while (d.n < d.active) {
        int before = d.n;

        g_assert_true(aio_poll(ctx, false));
        g_assert_cmpint(d.n, ==, before + 1);
    }
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 12);

    aio_set_event_notifier(ctx, &d.e, NULL, NULL, NULL);
    g_assert_false(aio_poll_disabled(ctx));
    event_notifier_set(&d.e);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 12);

    event_notifier_cleanup(&d.e);
    aio_context_unref(ctx);
}

/* Starts set: the first poll sees it. */
static void test_event_notifier_initially_set(void)
{
    AioContext *ctx = ctx_new();
    ENData d = { .ctx = ctx };

    g_assert_cmpint(event_notifier_init(&d.e, true), ==, 0);
    aio_set_event_notifier(ctx, &d.e, en_read_cb, NULL, NULL);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(d.n, ==, 1);
    g_assert_false(aio_poll(ctx, false));

    aio_set_event_notifier(ctx, &d.e, NULL, NULL, NULL);
    ctx_settle(ctx);
    event_notifier_cleanup(&d.e);
    aio_context_unref(ctx);
}

/* Setting poll callbacks of a notifier that is not registered: no-op. */
static void test_event_notifier_poll_unregistered(void)
{
    AioContext *ctx = ctx_new();
    EventNotifier e;

    g_assert_cmpint(event_notifier_init(&e, true), ==, 0);
    aio_set_event_notifier_poll(ctx, &e, en_never_cb, en_never_cb);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);
    event_notifier_cleanup(&e);
    aio_context_unref(ctx);
}

/* ---- Adaptive polling ------------------------------------------------- */

typedef struct PollData {
    EventNotifier e;
    AioContext *ctx;
    int n_read;
    int n_poll;             /* io_poll calls */
    int n_ready;
    int n_begin;
    int n_end;
    bool poll_result;       /* what io_poll reports */
    int64_t begin_spin_ns;  /* io_poll_begin spins this long, once */
} PollData;

static void pd_read_cb(EventNotifier *e)
{
    PollData *pd = container_of(e, PollData, e);

    event_notifier_test_and_clear(e);
    pd->n_read++;
}

static bool pd_poll_cb(void *opaque)
{
    PollData *pd = container_of((EventNotifier *)opaque, PollData, e);

    pd->n_poll++;
    return pd->poll_result;
}

static void pd_ready_cb(EventNotifier *e)
{
    PollData *pd = container_of(e, PollData, e);

    pd->n_ready++;
    pd->poll_result = false;
}

/*
 * Spinning here makes the aio_poll() that enters polling mode last at
 * least begin_spin_ns: the input the adaptive window reacts to.
 */
static void pd_begin_cb(EventNotifier *e)
{
    PollData *pd = container_of(e, PollData, e);
    int64_t end;

    pd->n_begin++;
    if (pd->begin_spin_ns) {
        end = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + pd->begin_spin_ns;
        pd->begin_spin_ns = 0;
        while (qemu_clock_get_ns(QEMU_CLOCK_REALTIME) <= end) {
            /* spin */
        }
    }
}

static void pd_end_cb(EventNotifier *e)
{
    PollData *pd = container_of(e, PollData, e);

    pd->n_end++;
}

static void pd_setup(PollData *pd, AioContext *ctx)
{
    *pd = (PollData){ .ctx = ctx };
    g_assert_cmpint(event_notifier_init(&pd->e, false), ==, 0);
    aio_set_event_notifier(ctx, &pd->e, pd_read_cb, pd_poll_cb, pd_ready_cb);
    aio_set_event_notifier_poll(ctx, &pd->e, pd_begin_cb, pd_end_cb);
}

static void pd_teardown(PollData *pd)
{
    aio_set_event_notifier(pd->ctx, &pd->e, NULL, NULL, NULL);
    ctx_settle(pd->ctx);
    event_notifier_cleanup(&pd->e);
}

/* Runs one aio_poll; *elapsed bounds its blocked time from above. */
static bool poll_timed(AioContext *ctx, bool blocking, int64_t *elapsed)
{
    int64_t t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    bool ret = aio_poll(ctx, blocking);

    *elapsed = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0;
    return ret;
}

/*
 * Turns polling on and checks that the window grows from 0 to 4000 ns on
 * the first aio_poll: its blocked time is positive and, when the machine
 * did not stall for poll_max_ns, below poll_max_ns.  On a stall the
 * outcome may differ legitimately; then start over.
 */
static void pd_start(PollData *pd, int64_t max_ns, int64_t shrink)
{
    int attempt;

    for (attempt = 0; attempt < 100; attempt++) {
        int64_t elapsed;

        aio_context_set_poll_params(pd->ctx, max_ns, 2, shrink, &error_abort);
        g_assert_cmpint(pd->ctx->poll_ns, ==, 0);
        g_assert_false(poll_timed(pd->ctx, false, &elapsed));
        if (elapsed < max_ns) {
            g_assert_cmpint(pd->ctx->poll_ns, ==, 4000);
            return;
        }
    }
    g_assert_not_reached();
}

/*
 * Fires the notifier through its fd so that its handler joins the poll
 * set.  Leaves polling mode off.
 */
static void pd_join(PollData *pd)
{
    int reads = pd->n_read;

    event_notifier_set(&pd->e);
    g_assert_true(aio_poll(pd->ctx, true));
    g_assert_cmpint(pd->n_read, ==, reads + 1);
    g_assert_false(pd->ctx->poll_started);
}

static void test_poll_off_by_default(void)
{
    AioContext *ctx = ctx_new();
    PollData pd;
    BHData d;
    int i;

    pd_setup(&pd, ctx);
    bh_data_init(&d, ctx);
    ctx_settle(ctx);
    for (i = 0; i < 5; i++) {
        event_notifier_set(&pd.e);
        g_assert_true(aio_poll(ctx, true));
        qemu_bh_schedule(d.bh);
        g_assert_true(aio_poll(ctx, true));
    }
    g_assert_cmpint(pd.n_read, ==, 5);
    g_assert_cmpint(d.n, ==, 5);
    g_assert_cmpint(ctx->poll_ns, ==, 0);
    g_assert_cmpint(pd.n_begin, ==, 0);
    g_assert_cmpint(pd.n_end, ==, 0);
    g_assert_cmpint(pd.n_ready, ==, 0);
    g_assert_false(ctx->poll_started);

    qemu_bh_delete(d.bh);
    pd_teardown(&pd);
    aio_context_unref(ctx);
}

/* A handler without io_poll disables polling; the count is exact. */
static void test_poll_disabled_count(void)
{
    AioContext *ctx = ctx_new();
    PollData pd;
    Pipe a, b;

    pipe_open(&a, ctx);
    pipe_open(&b, ctx);
    g_assert_false(aio_poll_disabled(ctx));

    pd_setup(&pd, ctx);
    g_assert_false(aio_poll_disabled(ctx));
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);

    aio_set_fd_handler(ctx, a.rfd, pipe_read_cb, NULL, NULL, NULL, &a);
    g_assert_true(aio_poll_disabled(ctx));
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 1);
    aio_set_fd_handler(ctx, b.rfd, NULL, pipe_write_cb, NULL, NULL, &b);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 2);

    /* Giving one an io_poll callback takes it out of the count. */
    aio_set_fd_handler(ctx, a.rfd, pipe_read_cb, NULL, pd_poll_cb, NULL,
                       &pd.e);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 1);
    aio_set_fd_handler(ctx, b.rfd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);
    g_assert_false(aio_poll_disabled(ctx));
    aio_set_fd_handler(ctx, a.rfd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, 0);

    pd_teardown(&pd);
    pipe_close(&a);
    pipe_close(&b);
    aio_context_unref(ctx);
}

/*
 * io_poll_begin/io_poll_end around polling mode, and the window doubling
 * when a poll outlasts it.
 */
static void test_poll_begin_end_and_grow(void)
{
    AioContext *ctx = ctx_new();
    const int64_t max_ns = 10 * NANOSECONDS_PER_SECOND;
    PollData pd;
    int64_t window;
    int64_t elapsed;

    pd_setup(&pd, ctx);
    pd_start(&pd, max_ns, 2);
    pd_join(&pd);
    /* It joined while polling was off: nobody to tell. */
    g_assert_cmpint(pd.n_begin, ==, 0);
    g_assert_cmpint(pd.n_end, ==, 0);
    g_assert_cmpint(pd.n_ready, ==, 0);

    /* io_poll reports work at once: polling starts and succeeds. */
    pd.poll_result = true;
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(pd.n_begin, ==, 1);
    g_assert_cmpint(pd.n_end, ==, 0);
    g_assert_cmpint(pd.n_ready, ==, 1);
    g_assert_cmpint(pd.n_read, ==, 1);
    g_assert_cmpint(pd.n_poll, >=, 1);
    g_assert_true(ctx->poll_started);

    /*
     * Nothing for io_poll now: it polls the whole window, then leaves
     * polling mode (io_poll_end) and sleeps until the fd fires.  Blocked
     * for longer than the window but below poll_max_ns: the window
     * doubles.
     */
    window = ctx->poll_ns;
    g_assert_cmpint(window, >=, 4000);
    event_notifier_set(&pd.e);
    g_assert_true(poll_timed(ctx, true, &elapsed));
    g_assert_cmpint(pd.n_begin, ==, 1);
    g_assert_cmpint(pd.n_end, ==, 1);
    g_assert_cmpint(pd.n_read, ==, 2);
    g_assert_cmpint(pd.n_ready, ==, 1);
    g_assert_false(ctx->poll_started);
    g_assert_cmpint(elapsed, >=, window);
    if (elapsed < max_ns) {
        g_assert_cmpint(ctx->poll_ns, ==, MIN(window * 2, max_ns));
    }

    /* Polling mode again, ended by a successful io_poll. */
    pd.poll_result = true;
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(pd.n_begin, ==, 2);
    g_assert_cmpint(pd.n_end, ==, 1);
    g_assert_cmpint(pd.n_ready, ==, 2);

    /* A non-blocking poll never busy-polls: io_poll is not called. */
    pd.n_poll = 0;
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(pd.n_poll, ==, 0);

    pd_teardown(&pd);
    aio_context_unref(ctx);
}

/*
 * A poll blocked for longer than poll_max_ns shrinks the window (to 0 with
 * shrink 0).  io_poll_begin spins past poll_max_ns inside the poll.
 */
static void poll_shrink(int64_t shrink)
{
    AioContext *ctx = ctx_new();
    const int64_t max_ns = 50 * SCALE_MS;
    PollData pd;
    int64_t window = 0;
    int attempt;

    pd_setup(&pd, ctx);
    for (attempt = 0; attempt < 10 && !window; attempt++) {
        /* A stall during pd_join may have shrunk the window; retry. */
        pd_start(&pd, max_ns, shrink);
        pd_join(&pd);
        window = ctx->poll_ns;
    }
    g_assert_cmpint(window, >, 0);

    pd.n_begin = 0;
    pd.poll_result = true;
    pd.begin_spin_ns = max_ns + 1;
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(pd.n_begin, ==, 1);
    g_assert_cmpint(pd.n_ready, ==, 1);
    g_assert_cmpint(ctx->poll_ns, ==, shrink ? window / shrink : 0);

    /* Setting the parameters resets the window. */
    aio_context_set_poll_params(ctx, max_ns, 2, 2, &error_abort);
    g_assert_cmpint(ctx->poll_ns, ==, 0);

    pd_teardown(&pd);
    aio_context_unref(ctx);
}

static void test_poll_shrink(void)
{
    poll_shrink(2);
}

static void test_poll_shrink_to_zero(void)
{
    poll_shrink(0);
}

/* ---- Timers ------------------------------------------------------------ */

typedef struct TimerData {
    QEMUTimer timer;
    AioContext *ctx;
    QEMUClockType type;
    int n;
    int max;                /* re-arm until n reaches max */
    int64_t period;         /* ns between re-arms */
    int64_t deadline;       /* current expiry, ns */
    int64_t fired_at;       /* the clock in the last callback */
    int *order;             /* shared run-order log */
    int *order_len;
    int id;
} TimerData;

static void timer_cb(void *opaque)
{
    TimerData *td = opaque;

    td->fired_at = qemu_clock_get_ns(td->type);
    g_assert_cmpint(td->fired_at, >=, td->deadline);
    td->n++;
    if (td->order) {
        td->order[(*td->order_len)++] = td->id;
    }
    if (td->n < td->max) {
        td->deadline = qemu_clock_get_ns(td->type) + td->period;
        timer_mod_ns(&td->timer, td->deadline);
    }
}

static void td_init(TimerData *td, AioContext *ctx, QEMUClockType type)
{
    *td = (TimerData){ .ctx = ctx, .type = type };
    aio_timer_init(ctx, &td->timer, type, SCALE_NS, timer_cb, td);
}

static void td_arm(TimerData *td, int64_t deadline)
{
    td->deadline = deadline;
    timer_mod_ns(&td->timer, deadline);
}

static void test_timer_compute_timeout(void)
{
    AioContext *ctx = ctx_new();
    TimerData td;
    BHData d;
    int64_t before, after, timeout, deadline;

    td_init(&td, ctx, QEMU_CLOCK_REALTIME);
    bh_data_init(&d, ctx);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);

    before = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    deadline = before + 3600 * NANOSECONDS_PER_SECOND;
    td_arm(&td, deadline);
    timeout = aio_compute_timeout(ctx);
    after = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    g_assert_cmpint(timeout, <=, deadline - before);
    g_assert_cmpint(timeout, >=, deadline - after);

    qemu_bh_schedule(d.bh);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, 0);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(td.n, ==, 0);

    /* An expired timer: 0. */
    td_arm(&td, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - 1);
    g_assert_cmpint(aio_compute_timeout(ctx), ==, 0);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(td.n, ==, 1);

    td_arm(&td, deadline);
    timer_del(&td.timer);
    g_assert_false(timer_pending(&td.timer));
    g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);
    ctx_settle(ctx);
    g_assert_cmpint(td.n, ==, 1);

    qemu_bh_delete(d.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/*
 * A blocking poll with a timer 1 ms ahead returns true with the timer run:
 * the wait did not end before the deadline (timer_cb checks the clock).
 */
static void test_timer_realtime_blocking(void)
{
    AioContext *ctx = ctx_new();
    TimerData td;
    int round;

    td_init(&td, ctx, QEMU_CLOCK_REALTIME);
    for (round = 1; round <= 20; round++) {
        td_arm(&td, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + SCALE_MS);
        /* Consumes timer_mod's notification; the timer may be due already. */
        if (!aio_poll(ctx, false)) {
            g_assert_cmpint(td.n, ==, round - 1);
            g_assert_true(aio_poll(ctx, true));
        }
        g_assert_cmpint(td.n, ==, round);
        g_assert_false(timer_pending(&td.timer));
    }
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* A timer re-arming itself runs once per poll that reports progress. */
static void test_timer_rearm_in_callback(void)
{
    AioContext *ctx = ctx_new();
    TimerData td;
    int progress = 0;
    int i;

    td_init(&td, ctx, QEMU_CLOCK_REALTIME);
    td.max = 5;
    td.period = 100 * SCALE_US;
    td_arm(&td, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + td.period);
    for (i = 0; i < MAX_ITERATIONS && td.n < td.max; i++) {
        int before = td.n;

        if (aio_poll(ctx, true)) {
            progress++;
            g_assert_cmpint(td.n, ==, before + 1);
        } else {
            g_assert_cmpint(td.n, ==, before);
        }
    }
    g_assert_cmpint(td.n, ==, 5);
    g_assert_cmpint(progress, ==, 5);
    g_assert_false(timer_pending(&td.timer));
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/*
 * VIRTUAL stopped: it stands still, and advancing it runs the timers that
 * became due in deadline order, each seeing the clock at its deadline.
 */
static void test_timer_virtual_advance(void)
{
    AioContext *ctx = ctx_new();
    TimerData td[4];
    static const int64_t offset[4] = { 3000, 1000, 2000, 1000 };
    int order[8];
    int order_len = 0;
    int64_t v0;
    int i;

    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    v0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    for (i = 0; i < 4; i++) {
        td_init(&td[i], ctx, QEMU_CLOCK_VIRTUAL);
        td[i].id = i;
        td[i].order = order;
        td[i].order_len = &order_len;
        td_arm(&td[i], v0 + offset[i]);
    }

    ctx_settle(ctx);
    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), ==, v0);
    g_assert_cmpint(order_len, ==, 0);

    g_assert_cmpint(qemu_clock_advance_virtual_time(v0 + 999), ==, v0 + 999);
    ctx_settle(ctx);
    g_assert_cmpint(order_len, ==, 0);
    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), ==, v0 + 999);

    /* Equal deadlines fire in arming order. */
    g_assert_cmpint(qemu_clock_advance_virtual_time(v0 + 1000), ==,
                    v0 + 1000);
    ctx_settle(ctx);
    g_assert_cmpint(order_len, ==, 2);
    g_assert_cmpint(order[0], ==, 1);
    g_assert_cmpint(order[1], ==, 3);
    g_assert_cmpint(td[1].fired_at, ==, v0 + 1000);

    g_assert_cmpint(qemu_clock_advance_virtual_time(v0 + 10000), ==,
                    v0 + 10000);
    ctx_settle(ctx);
    g_assert_cmpint(order_len, ==, 4);
    g_assert_cmpint(order[2], ==, 2);
    g_assert_cmpint(order[3], ==, 0);
    g_assert_cmpint(td[2].fired_at, ==, v0 + 2000);
    g_assert_cmpint(td[0].fired_at, ==, v0 + 3000);
    for (i = 0; i < 4; i++) {
        g_assert_cmpint(td[i].n, ==, 1);
    }
    g_assert_cmpint(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), ==, v0 + 10000);

    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    aio_context_unref(ctx);
}

/* ---- fd monitors ------------------------------------------------------- */

#define MANY_FDS 70

/*
 * Creates a context with QAIO_FDMON set to @fdmon (NULL: unset, and the
 * default without io_uring, which starts on poll).  io_uring has its own
 * tests (test-fdmon-io-uring.c).
 */
static AioContext *ctx_new_with_fdmon(const char *fdmon)
{
    char *saved = g_strdup(g_getenv("QAIO_FDMON"));
    AioContext *ctx;

    if (fdmon) {
        g_setenv("QAIO_FDMON", fdmon, true);
    } else {
        g_unsetenv("QAIO_FDMON");
        g_setenv("QAIO_DISABLE_IO_URING", "1", true);
    }
    ctx = ctx_new();
    g_unsetenv("QAIO_DISABLE_IO_URING");
    if (saved) {
        g_setenv("QAIO_FDMON", saved, true);
    } else {
        g_unsetenv("QAIO_FDMON");
    }
    g_free(saved);
    return ctx;
}

static Pipe *pipes_open(AioContext *ctx, int n)
{
    Pipe *p = g_new(Pipe, n);
    int i;

    for (i = 0; i < n; i++) {
        pipe_open(&p[i], ctx);
        p[i].drain = true;
    }
    return p;
}

static void pipes_register(Pipe *p, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        aio_set_fd_handler(p[i].ctx, p[i].rfd, pipe_read_cb, NULL, NULL,
                           NULL, &p[i]);
    }
}

static void pipes_close(Pipe *p, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        aio_set_fd_handler(p[i].ctx, p[i].rfd, NULL, NULL, NULL, NULL, NULL);
        pipe_close(&p[i]);
    }
    g_free(p);
}

/* Every pipe readable once: each handler runs exactly once more. */
static void pipes_fire_all(AioContext *ctx, Pipe *p, int n, int expect)
{
    int i;

    for (i = 0; i < n; i++) {
        pipe_put(&p[i]);
    }
    g_assert_true(aio_poll(ctx, false));
    for (i = 0; i < MAX_ITERATIONS && aio_poll(ctx, false); i++) {
        /* a monitor may report the fds over several polls */
    }
    for (i = 0; i < n; i++) {
        g_assert_cmpint(p[i].n_read, ==, expect);
    }
}

static void many_fds(const char *env, int n, const char *before,
                     const char *after)
{
    AioContext *ctx = ctx_new_with_fdmon(env);
    Pipe *p = pipes_open(ctx, n);

    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, before);
    pipes_register(p, n);
    /* The switch happens inside a wait, not at registration. */
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, before);

    pipes_fire_all(ctx, p, n, 1);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, after);
    pipes_fire_all(ctx, p, n, 2);

    /* Removing them all keeps the monitor: there is no downgrade. */
    pipes_close(p, n);
    ctx_settle(ctx);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, after);
    aio_context_unref(ctx);
}

static void test_fdmon_default_switches_to_epoll(void)
{
    many_fds(NULL, MANY_FDS, "poll", "epoll");
}

static void test_fdmon_default_stays_on_poll_below_threshold(void)
{
    many_fds(NULL, 40, "poll", "poll");
}

static void test_fdmon_forced_poll_never_upgrades(void)
{
    many_fds("poll", MANY_FDS, "poll", "poll");
}

static void test_fdmon_forced_epoll(void)
{
    many_fds("epoll", 3, "epoll", "epoll");
    many_fds("epoll", MANY_FDS, "epoll", "epoll");
}

typedef struct SwitchData {
    AioContext *ctx;
    Pipe *pipes;
    EventNotifier trigger;
    const char *name_in_nested;
    bool nested_result;
} SwitchData;

/*
 * Registers the fds and polls from inside an fd handler, where the outer
 * aio_poll still walks the handler list (it is dispatching its ready
 * list): no switch then, yet every fd is served.
 */
static void trigger_register_and_poll_cb(EventNotifier *e)
{
    SwitchData *sd = container_of(e, SwitchData, trigger);
    int i;

    event_notifier_test_and_clear(e);

    pipes_register(sd->pipes, MANY_FDS);
    for (i = 0; i < MANY_FDS; i++) {
        pipe_put(&sd->pipes[i]);
    }
    sd->nested_result = aio_poll(sd->ctx, false);
    sd->name_in_nested = qaio_fdmon_name(sd->ctx);
}

static void test_fdmon_switch_only_as_sole_walker(void)
{
    AioContext *ctx = ctx_new_with_fdmon(NULL);
    SwitchData sd = { .ctx = ctx };
    int i;

    sd.pipes = pipes_open(ctx, MANY_FDS);
    g_assert_cmpint(event_notifier_init(&sd.trigger, true), ==, 0);
    aio_set_event_notifier(ctx, &sd.trigger, trigger_register_and_poll_cb,
                           NULL, NULL);

    g_assert_true(aio_poll(ctx, false));
    g_assert_true(sd.nested_result);
    g_assert_cmpstr(sd.name_in_nested, ==, "poll");
    for (i = 0; i < MANY_FDS; i++) {
        g_assert_cmpint(sd.pipes[i].n_read, ==, 1);
    }
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");

    /* The next top-level poll is the sole walker and switches. */
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "epoll");
    pipes_fire_all(ctx, sd.pipes, MANY_FDS, 2);

    aio_set_event_notifier(ctx, &sd.trigger, NULL, NULL, NULL);
    event_notifier_cleanup(&sd.trigger);
    pipes_close(sd.pipes, MANY_FDS);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* epoll keeps working through modify and remove, and with timers. */
static void test_fdmon_epoll_modify_remove_timer(void)
{
    AioContext *ctx = ctx_new_with_fdmon(NULL);
    Pipe *p = pipes_open(ctx, MANY_FDS);
    TimerData td;
    int i;

    pipes_register(p, MANY_FDS);
    pipes_fire_all(ctx, p, MANY_FDS, 1);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "epoll");

    /* Modify one, remove another. */
    aio_set_fd_handler(ctx, p[0].rfd, pipe_read_other_cb, NULL, NULL, NULL,
                       &p[0]);
    aio_set_fd_handler(ctx, p[1].rfd, NULL, NULL, NULL, NULL, NULL);
    for (i = 0; i < MANY_FDS; i++) {
        pipe_put(&p[i]);
    }
    g_assert_true(aio_poll(ctx, false));
    for (i = 0; i < MAX_ITERATIONS && aio_poll(ctx, false); i++) {
        /* drain */
    }
    g_assert_cmpint(p[0].n_read, ==, 1);
    g_assert_cmpint(p[0].other_read, ==, 1);
    g_assert_cmpint(p[1].n_read, ==, 1);
    for (i = 2; i < MANY_FDS; i++) {
        g_assert_cmpint(p[i].n_read, ==, 2);
    }

    /* A blocking wait in epoll mode honours a nanosecond deadline. */
    td_init(&td, ctx, QEMU_CLOCK_REALTIME);
    td_arm(&td, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 300 * SCALE_US);
    if (!aio_poll(ctx, false)) {
        g_assert_true(aio_poll(ctx, true));
    }
    g_assert_cmpint(td.n, ==, 1);

    pipes_close(p, MANY_FDS);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* ---- Bottom halves rescheduled while their callback runs ------------ */

/*
 * A BH that reschedules itself, next to one scheduled from outside before
 * each call: each call runs both once, and between calls the timeout says
 * work is pending (a blocking aio_poll must not sleep).
 */
static void test_bh_reschedule_self_with_peer(void)
{
    AioContext *ctx = ctx_new();
    BHData a, b;
    int i;

    bh_data_init(&a, ctx);
    bh_data_init(&b, ctx);
    a.max = 5;
    qemu_bh_schedule(a.bh);

    for (i = 1; i <= 5; i++) {
        qemu_bh_schedule(b.bh);
        g_assert_cmpint(aio_compute_timeout(ctx), ==, 0);
        if (i % 2) {
            g_assert_cmpint(aio_bh_poll(ctx), ==, 1);
        } else {
            g_assert_true(aio_poll(ctx, true));
        }
        g_assert_cmpint(a.n, ==, i);
        g_assert_cmpint(b.n, ==, i);
        g_assert_cmpint(aio_compute_timeout(ctx), ==, i < 5 ? 0 : -1);
    }
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(a.n, ==, 5);
    g_assert_cmpint(b.n, ==, 5);

    qemu_bh_delete(a.bh);
    qemu_bh_delete(b.bh);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

typedef enum {
    AGAIN_NOTHING,          /* the second run does nothing */
    AGAIN_DELETE,           /* ... deletes its own BH */
    AGAIN_RESCHEDULE,       /* ... schedules it once more */
} AgainAction;

typedef struct AgainData {
    AioContext *ctx;
    QEMUBH *bh;
    int n;                  /* runs so far */
    int n_after_nested;     /* n when the nested loop ended */
    bool reschedule;        /* the first run schedules itself */
    AgainAction second;
} AgainData;

/*
 * The first run waits in a nested loop for its own next run, as a callback
 * using AIO_WAIT_WHILE would; a blocking aio_poll() that overlooked the
 * running BH would sleep for ever, so check the timeout first.
 */
static void bh_wait_for_own_run_cb(void *opaque)
{
    AgainData *ad = opaque;
    int i;

    ad->n++;
    if (ad->n == 1) {
        if (ad->reschedule) {
            qemu_bh_schedule(ad->bh);
            for (i = 0; i < MAX_ITERATIONS && ad->n < 2; i++) {
                /* Scheduled, so a blocking poll must not sleep. */
                g_assert_cmpint(aio_compute_timeout(ad->ctx), ==, 0);
                aio_poll(ad->ctx, true);
            }
        } else {
            g_assert_cmpint(aio_compute_timeout(ad->ctx), ==, -1);
            g_assert_false(aio_poll(ad->ctx, false));
        }
        ad->n_after_nested = ad->n;
    } else if (ad->n == 2) {
        switch (ad->second) {
        case AGAIN_NOTHING:
            break;
        case AGAIN_DELETE:
            qemu_bh_delete(ad->bh);
            ad->bh = NULL;
            break;
        case AGAIN_RESCHEDULE:
            qemu_bh_schedule(ad->bh);
            break;
        }
    }
}

static void bh_wait_for_own_run(bool reschedule, AgainAction second)
{
    AioContext *ctx = ctx_new();
    AgainData ad = { .ctx = ctx, .reschedule = reschedule, .second = second };

    ad.bh = aio_bh_new(ctx, bh_wait_for_own_run_cb, &ad);
    qemu_bh_schedule(ad.bh);
    g_assert_true(aio_poll(ctx, false));

    if (!reschedule) {
        /* The nested call did not run it, nor did it queue it again. */
        g_assert_cmpint(ad.n_after_nested, ==, 1);
        g_assert_cmpint(ad.n, ==, 1);
        g_assert_false(aio_poll(ctx, false));
        g_assert_cmpint(ad.n, ==, 1);
    } else {
        /* The nested call ran it; the outer one left it alone after. */
        g_assert_cmpint(ad.n_after_nested, ==, 2);
        g_assert_cmpint(ad.n, ==, 2);
        if (second == AGAIN_RESCHEDULE) {
            g_assert_cmpint(aio_compute_timeout(ctx), ==, 0);
            g_assert_true(aio_poll(ctx, false));
            g_assert_cmpint(ad.n, ==, 3);
        }
        g_assert_false(aio_poll(ctx, false));
        g_assert_cmpint(ad.n, ==, second == AGAIN_RESCHEDULE ? 3 : 2);
    }
    g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);

    if (ad.bh) {
        qemu_bh_delete(ad.bh);
    }
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_nested_poll_without_reschedule(void)
{
    bh_wait_for_own_run(false, AGAIN_NOTHING);
}

static void test_bh_reschedule_then_nested_poll(void)
{
    bh_wait_for_own_run(true, AGAIN_NOTHING);
}

static void test_bh_reschedule_then_nested_poll_deletes(void)
{
    bh_wait_for_own_run(true, AGAIN_DELETE);
}

static void test_bh_reschedule_then_nested_poll_reschedules(void)
{
    bh_wait_for_own_run(true, AGAIN_RESCHEDULE);
}

typedef enum {
    SELF_SCHEDULE_DELETE,   /* schedule, then delete: freed, not run */
    SELF_DELETE_IN_NESTED,  /* delete, then a nested poll: freed there */
    SELF_SCHEDULE_CANCEL,   /* schedule, then cancel: not run again */
    SELF_SCHEDULE_IDLE,     /* schedule as idle: runs, not progress */
} SelfAction;

typedef struct SelfData {
    AioContext *ctx;
    QEMUBH *bh;
    int n;
    SelfAction action;
    bool nested_result;
} SelfData;

static void bh_self_action_cb(void *opaque)
{
    SelfData *sd = opaque;

    if (++sd->n > 1) {
        return;
    }
    switch (sd->action) {
    case SELF_SCHEDULE_DELETE:
        qemu_bh_schedule(sd->bh);
        qemu_bh_delete(sd->bh);
        sd->bh = NULL;
        break;
    case SELF_DELETE_IN_NESTED:
        qemu_bh_delete(sd->bh);
        sd->bh = NULL;
        sd->nested_result = aio_poll(sd->ctx, false);
        break;
    case SELF_SCHEDULE_CANCEL:
        qemu_bh_schedule(sd->bh);
        qemu_bh_cancel(sd->bh);
        break;
    case SELF_SCHEDULE_IDLE:
        qemu_bh_schedule_idle(sd->bh);
        break;
    }
}

static void bh_self_action(SelfAction action)
{
    AioContext *ctx = ctx_new();
    SelfData sd = { .ctx = ctx, .action = action };

    sd.bh = aio_bh_new(ctx, bh_self_action_cb, &sd);
    qemu_bh_schedule(sd.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(sd.n, ==, 1);
    g_assert_false(sd.nested_result);

    if (action == SELF_SCHEDULE_IDLE) {
        g_assert_cmpint(aio_compute_timeout(ctx), ==, 10 * SCALE_MS);
        g_assert_false(aio_poll(ctx, false));
        g_assert_cmpint(sd.n, ==, 2);
    }
    g_assert_cmpint(aio_compute_timeout(ctx), ==, -1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(sd.n, ==, action == SELF_SCHEDULE_IDLE ? 2 : 1);

    /* The deleted ones are gone already (LeakSanitizer, valgrind). */
    if (sd.bh) {
        qemu_bh_delete(sd.bh);
    }
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_schedule_then_delete_self(void)
{
    bh_self_action(SELF_SCHEDULE_DELETE);
}

static void test_bh_delete_self_then_nested_poll(void)
{
    bh_self_action(SELF_DELETE_IN_NESTED);
}

static void test_bh_schedule_then_cancel_self(void)
{
    bh_self_action(SELF_SCHEDULE_CANCEL);
}

static void test_bh_reschedule_self_idle(void)
{
    bh_self_action(SELF_SCHEDULE_IDLE);
}

/*
 * A signal handler that interrupts a BH's own callback and schedules or
 * deletes that BH: the schedule gives exactly one more run, the delete
 * frees it after the callback.
 */
static QEMUBH *signal_self_bh;
static bool signal_self_delete;

static void sigusr2_handler(int sig)
{
    if (signal_self_delete) {
        qemu_bh_delete(signal_self_bh);
    } else {
        qemu_bh_schedule(signal_self_bh);
    }
}

static void bh_raise_cb(void *opaque)
{
    int *n = opaque;

    if (++*n == 1) {
        g_assert_cmpint(raise(SIGUSR2), ==, 0);
    }
}

static void bh_signal_during_own_cb(bool delete)
{
    AioContext *ctx = ctx_new();
    struct sigaction sa = { .sa_handler = sigusr2_handler };
    struct sigaction old;
    int n = 0;

    signal_self_bh = aio_bh_new(ctx, bh_raise_cb, &n);
    signal_self_delete = delete;
    sigemptyset(&sa.sa_mask);
    g_assert_cmpint(sigaction(SIGUSR2, &sa, &old), ==, 0);

    qemu_bh_schedule(signal_self_bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(n, ==, 1);
    if (!delete) {
        g_assert_true(aio_poll(ctx, true));
        g_assert_cmpint(n, ==, 2);
        qemu_bh_delete(signal_self_bh);
    }
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(n, ==, delete ? 1 : 2);

    g_assert_cmpint(sigaction(SIGUSR2, &old, NULL), ==, 0);
    signal_self_bh = NULL;
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_bh_signal_schedules_running_bh(void)
{
    bh_signal_during_own_cb(false);
}

static void test_bh_signal_deletes_running_bh(void)
{
    bh_signal_during_own_cb(true);
}

/* A BH that rescheduled itself dies with the context too. */
static void test_context_unref_frees_rescheduled_bhs(void)
{
    AioContext *ctx = ctx_new();
    BHData a;

    bh_data_init(&a, ctx);
    a.max = 100;
    qemu_bh_schedule(a.bh);
    g_assert_true(aio_poll(ctx, false));
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(a.n, ==, 2);
    qemu_bh_delete(a.bh);
    aio_context_unref(ctx);
    g_assert_cmpint(a.n, ==, 2);
}

/*
 * A timer signal schedules a BH over and over while the home thread runs
 * it, so the handler lands at arbitrary points of aio_bh_poll(): while the
 * BH is queued, being dequeued, running, or being finished with.  Each
 * request must leave the BH visibly scheduled until it runs.  How many
 * signals land where varies from run to run; a lost schedule is caught
 * when one does.
 */
#define STORM_SIGNALS 20000
#define STORM_MAX_POLLS 50000000

static QEMUBH *storm_bh;
static unsigned storm_pending;      /* requests not yet seen by the BH */
static unsigned storm_signals;

static void storm_handler(int sig)
{
    qatomic_inc(&storm_pending);
    qatomic_inc(&storm_signals);
    qemu_bh_schedule(storm_bh);
}

static void storm_cb(void *opaque)
{
    int *runs = opaque;

    qatomic_xchg(&storm_pending, 0);
    /* Every other run reschedules itself, so both ends are exercised. */
    if (++*runs % 2) {
        qemu_bh_schedule(storm_bh);
    }
}

static void test_bh_signal_storm(void)
{
    AioContext *ctx = ctx_new();
    struct sigaction sa = { .sa_handler = storm_handler };
    struct itimerval it = {
        .it_interval = { .tv_usec = 20 },
        .it_value = { .tv_usec = 20 },
    };
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    struct timespec zero = { 0, 0 };
    struct sigaction old;
    sigset_t alrm, old_mask;
    int runs = 0;
    long i;

    storm_bh = aio_bh_new(ctx, storm_cb, &runs);
    qatomic_set(&storm_pending, 0);
    qatomic_set(&storm_signals, 0);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    g_assert_cmpint(sigaction(SIGALRM, &sa, &old), ==, 0);
    g_assert_cmpint(setitimer(ITIMER_REAL, &it, NULL), ==, 0);

    for (i = 0; i < STORM_MAX_POLLS &&
                qatomic_read(&storm_signals) < STORM_SIGNALS; i++) {
        /*
         * Outside aio_poll() nothing runs the BH, so a request seen here
         * (its handler has returned) must have left it scheduled.
         */
        if (qatomic_read(&storm_pending)) {
            g_assert_cmpint(aio_compute_timeout(ctx), ==, 0);
        }
        aio_poll(ctx, false);
    }

    /*
     * Consume a signal still pending before the old action comes back:
     * under valgrind, delivery lags behind the timer.
     */
    g_assert_cmpint(setitimer(ITIMER_REAL, &off, NULL), ==, 0);
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    g_assert_cmpint(pthread_sigmask(SIG_BLOCK, &alrm, &old_mask), ==, 0);
    while (sigtimedwait(&alrm, NULL, &zero) == SIGALRM) {
        /* drained */
    }
    g_assert_cmpint(sigaction(SIGALRM, &old, NULL), ==, 0);
    g_assert_cmpint(pthread_sigmask(SIG_SETMASK, &old_mask, NULL), ==, 0);
    for (i = 0; i < MAX_ITERATIONS && aio_poll(ctx, false); i++) {
        /* let the last requests run */
    }
    g_assert_cmpuint(qatomic_read(&storm_pending), ==, 0);
    g_assert_false(aio_poll(ctx, false));
    g_test_message("%u signals, %d runs", storm_signals, runs);

    qemu_bh_delete(storm_bh);
    storm_bh = NULL;
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    init_clocks(NULL);

    g_test_add_func("/aio/context/new-state", test_context_new_state);
    g_test_add_func("/aio/context/ref-unref", test_context_ref_unref);
    g_test_add_func("/aio/context/unref-frees-deleted-bhs",
                    test_context_unref_frees_deleted_bhs);
    g_test_add_func("/aio/context/unref-frees-oneshot-bhs",
                    test_context_unref_frees_oneshot_bhs);
    g_test_add_func("/aio/context/unref-frees-scheduled-bhs",
                    test_context_unref_frees_scheduled_bhs);
    g_test_add_func("/aio/context/unref-frees-handlers",
                    test_context_unref_with_handlers);
    g_test_add_func("/aio/context/new-fails-without-fds",
                    test_context_new_no_fds);

    g_test_add_func("/aio/params/poll", test_params_poll);
    g_test_add_func("/aio/params/aio", test_params_aio);
    g_test_add_func("/aio/params/thread-pool", test_params_thread_pool);
    g_test_add_func("/aio/params/engines-setup", test_engines_setup);

    g_test_add_func("/aio/bh/schedule", test_bh_schedule);
    g_test_add_func("/aio/bh/schedule-idempotent",
                    test_bh_schedule_idempotent);
    g_test_add_func("/aio/bh/reschedule-self-once-per-poll",
                    test_bh_reschedule_self);
    g_test_add_func("/aio/bh/scheduled-in-cb-waits-next-slice",
                    test_bh_schedule_from_cb_next_slice);
    g_test_add_func("/aio/bh/cancel", test_bh_cancel);
    g_test_add_func("/aio/bh/delete-unscheduled", test_bh_delete_unscheduled);
    g_test_add_func("/aio/bh/delete-pending-not-run", test_bh_delete_pending);
    g_test_add_func("/aio/bh/delete-from-own-cb", test_bh_delete_from_own_cb);
    g_test_add_func("/aio/bh/delete-from-other-bh",
                    test_bh_delete_from_other_bh);
    g_test_add_func("/aio/bh/delete-peer-in-same-slice",
                    test_bh_delete_peer_in_same_slice);
    g_test_add_func("/aio/bh/nested-poll-runs-outer-slice",
                    test_bh_nested_poll_runs_outer_slice);
    g_test_add_func("/aio/bh/poll-return", test_bh_poll_return);
    g_test_add_func("/aio/bh/idle", test_bh_idle);
    g_test_add_func("/aio/bh/oneshot", test_bh_oneshot);
    g_test_add_func("/aio/bh/new-full-and-call", test_bh_new_full);
    g_test_add_func("/aio/bh/guarded/engaged-while-running",
                    test_bh_guarded_runs_with_guard_engaged);
    g_test_add_func("/aio/bh/guarded/engaged-guard-blocks",
                    test_bh_guarded_engaged_not_run);
    g_test_add_func("/aio/bh/guarded/reentrancy-blocked",
                    test_bh_guarded_reentrancy_blocked);
    g_test_add_func("/aio/bh/guarded/delete-frees-owner",
                    test_bh_guarded_delete_frees_owner);
    g_test_add_func("/aio/bh/schedule-from-signal-handler",
                    test_bh_schedule_from_signal);

    g_test_add_func("/aio/notify/not-progress", test_notify_is_not_progress);
    g_test_add_func("/aio/notify/accept", test_notify_accept);
    g_test_add_func("/aio/notify/no-eventfd-write-when-idle",
                    test_notify_no_write_when_idle);

    g_test_add_func("/aio/fd/read-level-triggered",
                    test_fd_read_level_triggered);
    g_test_add_func("/aio/fd/write", test_fd_write);
    g_test_add_func("/aio/fd/read-and-write", test_fd_read_and_write);
    g_test_add_func("/aio/fd/hangup-runs-read", test_fd_hangup_runs_read);
    g_test_add_func("/aio/fd/modify", test_fd_modify);
    g_test_add_func("/aio/fd/modify-from-own-cb", test_fd_modify_from_own_cb);
    g_test_add_func("/aio/fd/remove-from-own-cb", test_fd_remove_from_own_cb);
    g_test_add_func("/aio/fd/remove-from-other-handler",
                    test_fd_remove_from_other_handler);
    g_test_add_func("/aio/fd/remove-unregistered-is-noop",
                    test_fd_remove_unregistered);

    g_test_add_func("/aio/event-notifier/set-and-clear", test_event_notifier);
    g_test_add_func("/aio/event-notifier/initially-set",
                    test_event_notifier_initially_set);
    g_test_add_func("/aio/event-notifier/poll-cbs-on-unregistered-noop",
                    test_event_notifier_poll_unregistered);

    g_test_add_func("/aio/poll/off-by-default", test_poll_off_by_default);
    g_test_add_func("/aio/poll/disabled-count", test_poll_disabled_count);
    g_test_add_func("/aio/poll/begin-end-and-grow",
                    test_poll_begin_end_and_grow);
    g_test_add_func("/aio/poll/shrink", test_poll_shrink);
    g_test_add_func("/aio/poll/shrink-to-zero", test_poll_shrink_to_zero);

    g_test_add_func("/aio/timer/compute-timeout", test_timer_compute_timeout);
    g_test_add_func("/aio/timer/realtime-blocking",
                    test_timer_realtime_blocking);
    g_test_add_func("/aio/timer/rearm-in-callback",
                    test_timer_rearm_in_callback);
    g_test_add_func("/aio/timer/virtual-advance", test_timer_virtual_advance);

    g_test_add_func("/aio/fdmon/default-switches-to-epoll",
                    test_fdmon_default_switches_to_epoll);
    g_test_add_func("/aio/fdmon/default-stays-on-poll-below-threshold",
                    test_fdmon_default_stays_on_poll_below_threshold);
    g_test_add_func("/aio/fdmon/forced-poll-never-upgrades",
                    test_fdmon_forced_poll_never_upgrades);
    g_test_add_func("/aio/fdmon/forced-epoll", test_fdmon_forced_epoll);
    g_test_add_func("/aio/fdmon/switch-only-as-sole-walker",
                    test_fdmon_switch_only_as_sole_walker);
    g_test_add_func("/aio/fdmon/epoll-modify-remove-timer",
                    test_fdmon_epoll_modify_remove_timer);

    g_test_add_func("/aio/bh/running/reschedule-self-with-peer",
                    test_bh_reschedule_self_with_peer);
    g_test_add_func("/aio/bh/running/nested-poll-without-reschedule",
                    test_bh_nested_poll_without_reschedule);
    g_test_add_func("/aio/bh/running/reschedule-then-nested-poll-runs-it",
                    test_bh_reschedule_then_nested_poll);
    g_test_add_func("/aio/bh/running/nested-run-deletes-itself",
                    test_bh_reschedule_then_nested_poll_deletes);
    g_test_add_func("/aio/bh/running/nested-run-reschedules-itself",
                    test_bh_reschedule_then_nested_poll_reschedules);
    g_test_add_func("/aio/bh/running/schedule-then-delete-self",
                    test_bh_schedule_then_delete_self);
    g_test_add_func("/aio/bh/running/delete-self-then-nested-poll",
                    test_bh_delete_self_then_nested_poll);
    g_test_add_func("/aio/bh/running/schedule-then-cancel-self",
                    test_bh_schedule_then_cancel_self);
    g_test_add_func("/aio/bh/running/reschedule-self-idle",
                    test_bh_reschedule_self_idle);
    g_test_add_func("/aio/bh/running/signal-schedules-running-bh",
                    test_bh_signal_schedules_running_bh);
    g_test_add_func("/aio/bh/running/signal-deletes-running-bh",
                    test_bh_signal_deletes_running_bh);
    g_test_add_func("/aio/bh/running/signal-storm-loses-nothing",
                    test_bh_signal_storm);
    g_test_add_func("/aio/context/unref-frees-self-rescheduled-bhs",
                    test_context_unref_frees_rescheduled_bhs);

    return g_test_run();
}
