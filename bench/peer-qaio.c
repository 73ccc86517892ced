/*
 * bench/peer-qaio.c: the scenarios on qaio's AioContext, through the public
 * QEMU-compatible API only.
 *
 *   resched        a QEMUBH whose callback calls qemu_bh_schedule on
 *                  itself, driven by aio_poll(ctx, true): one aio_poll per
 *                  callback, since a BH scheduled while aio_bh_poll runs
 *                  waits for the next call
 *   pingpong       each thread owns an AioContext; A's BH schedules a BH in
 *                  B's context and B's BH one in A's; busy polling off
 *                  (aio_context_set_poll_params(ctx, 0, 0, 0))
 *   pingpong-poll  the same with adaptive polling on (max 32768 ns, grow 2,
 *                  shrink 2: what an IOThread uses by default)
 *   sockets      aio_set_fd_handler(io_read), aio_poll(ctx, false)
 *   timers-arm     timer_mod_ns / timer_del on the context's timer list
 *                  group (aio_timer_init untimed; one qemu_clock_get_ns for
 *                  all the deadlines, as the API takes absolute times)
 *   timers-late    aio_timer_init + timer_mod_ns, aio_poll(ctx, true)
 *
 * Threading: every measurement runs in a thread of its own, which creates
 * its AioContext and makes it the thread's current context, as an IOThread
 * does (a thread runs one context for its whole life).  In the ping-pongs
 * that thread is A and starts B; qemu_bh_schedule is the only call made
 * into the other thread's context.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qemu/timer.h"
#include "qemu/thread.h"
#include "qapi/error.h"
#include "bench.h"

typedef struct QaioRun {
    int (*fn)(AioContext *ctx, void *arg);
    void *arg;
    int ret;
} QaioRun;

static AioContext *new_context(void)
{
    Error *err = NULL;
    AioContext *ctx = aio_context_new(&err);

    if (!ctx) {
        fprintf(stderr, "qaio: aio_context_new: %s\n", error_get_pretty(err));
        error_free(err);
    }
    return ctx;
}

static void *qaio_run_thread(void *opaque)
{
    QaioRun *run = opaque;
    AioContext *ctx = new_context();

    if (!ctx) {
        run->ret = -ENOMEM;
        return NULL;
    }
    qemu_set_current_aio_context(ctx);
    /*
     * What a QEMU program's threads get from qemu_init_main_loop() (done
     * before they are created): init_clocks() asks for no timer slack.
     */
    init_clocks(NULL);
    run->ret = run->fn(ctx, run->arg);
    aio_context_unref(ctx);
    return NULL;
}

/* Run @fn in a new thread that owns a new AioContext. */
static int qaio_run(int (*fn)(AioContext *ctx, void *arg), void *arg)
{
    QaioRun run = { .fn = fn, .arg = arg };
    QemuThread thread;

    qemu_thread_create(&thread, "bench-qaio", qaio_run_thread, &run,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_join(&thread);
    return run.ret;
}

/* (a) */

typedef struct QaioResched {
    BenchResched *s;
    QEMUBH *bh;
} QaioResched;

static void qaio_resched_cb(void *opaque)
{
    QaioResched *r = opaque;

    if (bench_resched_step(r->s)) {
        qemu_bh_schedule(r->bh);
    }
}

static int qaio_resched_in(AioContext *ctx, void *arg)
{
    BenchResched *s = arg;
    QaioResched *r = g_new(QaioResched, s->ncallbacks);

    for (unsigned i = 0; i < s->ncallbacks; i++) {
        r[i].s = s;
        r[i].bh = aio_bh_new(ctx, qaio_resched_cb, &r[i]);
    }
    s->t_start = bench_now_ns();
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        qemu_bh_schedule(r[i].bh);
    }
    while (!bench_resched_done(s)) {
        aio_poll(ctx, true);
    }
    s->t_end = bench_now_ns();
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        qemu_bh_delete(r[i].bh);
    }
    g_free(r);
    return 0;
}

static int qaio_resched(BenchResched *s)
{
    return qaio_run(qaio_resched_in, s);
}

/* (b) */

typedef struct QaioPingpong {
    BenchPingpong *s;
    int64_t poll_max_ns;
    AioContext *ctx_b;
    QEMUBH *bh_a, *bh_b;
} QaioPingpong;

static void qaio_pp_a(void *opaque)
{
    QaioPingpong *pp = opaque;

    bench_pingpong_a(pp->s);
    /* The last one tells B to stop. */
    qemu_bh_schedule(pp->bh_b);
}

static void qaio_pp_b(void *opaque)
{
    QaioPingpong *pp = opaque;

    if (bench_pingpong_b(pp->s)) {
        qemu_bh_schedule(pp->bh_a);
    }
}

static void *qaio_pp_thread_b(void *opaque)
{
    QaioPingpong *pp = opaque;

    qemu_set_current_aio_context(pp->ctx_b);
    while (!bench_pingpong_stopped(pp->s)) {
        aio_poll(pp->ctx_b, true);
    }
    return NULL;
}

static bool set_poll(AioContext *ctx, int64_t max_ns)
{
    Error *err = NULL;

    aio_context_set_poll_params(ctx, max_ns, max_ns ? 2 : 0, max_ns ? 2 : 0,
                                &err);
    if (err) {
        fprintf(stderr, "qaio: aio_context_set_poll_params: %s\n",
                error_get_pretty(err));
        error_free(err);
        return false;
    }
    return true;
}

static int qaio_pingpong_in(AioContext *ctx, void *arg)
{
    QaioPingpong *pp = arg;
    BenchPingpong *s = pp->s;
    QemuThread tb;

    pp->ctx_b = new_context();
    if (!pp->ctx_b) {
        return -ENOMEM;
    }
    if (!set_poll(ctx, pp->poll_max_ns) ||
        !set_poll(pp->ctx_b, pp->poll_max_ns)) {
        aio_context_unref(pp->ctx_b);
        return -EINVAL;
    }
    pp->bh_a = aio_bh_new(ctx, qaio_pp_a, pp);
    pp->bh_b = aio_bh_new(pp->ctx_b, qaio_pp_b, pp);
    qemu_thread_create(&tb, "bench-qaio-b", qaio_pp_thread_b, pp,
                       QEMU_THREAD_JOINABLE);
    s->t_start = bench_now_ns();
    qemu_bh_schedule(pp->bh_b);
    while (s->count < s->round_trips) {
        aio_poll(ctx, true);
    }
    s->t_end = bench_now_ns();
    qemu_thread_join(&tb);
    qemu_bh_delete(pp->bh_a);
    qemu_bh_delete(pp->bh_b);
    aio_context_unref(pp->ctx_b);
    return 0;
}

static int qaio_pingpong(BenchPingpong *s)
{
    QaioPingpong pp = { .s = s, .poll_max_ns = 0 };

    return qaio_run(qaio_pingpong_in, &pp);
}

static int qaio_pingpong_poll(BenchPingpong *s)
{
    QaioPingpong pp = { .s = s, .poll_max_ns = 32768 };

    return qaio_run(qaio_pingpong_in, &pp);
}

/* (c) */

static void qaio_sp_read(void *opaque)
{
    bench_sockets_readable(opaque);
}

static int qaio_sockets_in(AioContext *ctx, void *arg)
{
    BenchSockets *s = arg;

    for (int i = 0; i < s->nsockets; i++) {
        aio_set_fd_handler(ctx, s->reader[i].fd, qaio_sp_read, NULL, NULL,
                           NULL, &s->reader[i]);
    }
    /* Let the loop register the fds with the kernel, untimed. */
    aio_poll(ctx, false);
    bench_sockets_start(s);
    while (!bench_sockets_done(s)) {
        aio_poll(ctx, false);
    }
    s->t_end = bench_now_ns();
    for (int i = 0; i < s->nsockets; i++) {
        aio_set_fd_handler(ctx, s->reader[i].fd, NULL, NULL, NULL, NULL,
                           NULL);
    }
    return 0;
}

static int qaio_sockets(BenchSockets *s)
{
    return qaio_run(qaio_sockets_in, s);
}

/* (d) */

static void qaio_timer_never(void *opaque)
{
    abort();
}

static int qaio_timers_arm_in(AioContext *ctx, void *arg)
{
    BenchTimersArm *s = arg;
    QEMUTimer *t = g_new(QEMUTimer, s->n);
    int64_t now;

    for (size_t i = 0; i < s->n; i++) {
        aio_timer_init(ctx, &t[i], QEMU_CLOCK_REALTIME, SCALE_NS,
                       qaio_timer_never, NULL);
    }
    s->t_start = bench_now_ns();
    now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    for (size_t i = 0; i < s->n; i++) {
        timer_mod_ns(&t[i], now + s->rel_ns[i]);
    }
    for (size_t i = 0; i < s->n; i++) {
        timer_del(&t[i]);
    }
    s->t_end = bench_now_ns();
    g_free(t);
    return 0;
}

static int qaio_timers_arm(BenchTimersArm *s)
{
    return qaio_run(qaio_timers_arm_in, s);
}

typedef struct QaioLate {
    QEMUTimer timer;
    BenchTimersLate *s;
    size_t idx;
} QaioLate;

static void qaio_late_cb(void *opaque)
{
    QaioLate *ql = opaque;

    bench_timers_late_fire(ql->s, ql->idx);
}

static int qaio_timers_late_in(AioContext *ctx, void *arg)
{
    BenchTimersLate *s = arg;
    QaioLate *ql = g_new(QaioLate, s->n);
    int64_t before, offset;

    for (size_t i = 0; i < s->n; i++) {
        ql[i].s = s;
        ql[i].idx = i;
        aio_timer_init(ctx, &ql[i].timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                       qaio_late_cb, &ql[i]);
    }
    bench_timers_late_start(s);
    /*
     * Map CLOCK_MONOTONIC to QEMU_CLOCK_REALTIME; reading ours first errs
     * on the late side, so that no timer can fire before its due time.
     */
    before = bench_now_ns();
    offset = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - before;
    for (size_t i = 0; i < s->n; i++) {
        timer_mod_ns(&ql[i].timer, s->due_ns[i] + offset);
    }
    s->t_armed = bench_now_ns();
    while (s->fired < s->n) {
        aio_poll(ctx, true);
    }
    g_free(ql);
    return 0;
}

static int qaio_timers_late(BenchTimersLate *s)
{
    return qaio_run(qaio_timers_late_in, s);
}

const BenchPeer bench_peer_qaio = {
    .name = "qaio",
    .how = {
        [BENCH_RESCHED] = "QEMUBH, aio_poll",
        [BENCH_PINGPONG] = "qemu_bh_schedule, poll off",
        [BENCH_PINGPONG_POLL] = "qemu_bh_schedule, poll 32us",
        [BENCH_SOCKETS] = "aio_set_fd_handler",
        [BENCH_TIMERS_ARM] = "timer_mod_ns/timer_del",
        [BENCH_TIMERS_LATE] = "timer_mod_ns, aio_poll",
    },
    .resched = qaio_resched,
    .pingpong = qaio_pingpong,
    .pingpong_poll = qaio_pingpong_poll,
    .sockets = qaio_sockets,
    .timers_arm = qaio_timers_arm,
    .timers_late = qaio_timers_late,
};
