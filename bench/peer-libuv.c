/*
 * bench/peer-libuv.c: the scenarios on libuv (built when libuv is found).
 *
 *   resched        uv_idle_t: libuv has no "run this callback again" short
 *                  of a loop iteration; an active idle handle runs once per
 *                  iteration and makes the poll phase non-blocking, which is
 *                  what a self-rescheduling BH does to aio_poll
 *   pingpong       uv_async_send to the other thread's uv_async_t
 *   sockets      uv_poll_t with UV_READABLE, uv_run(UV_RUN_NOWAIT)
 *   timers-arm     uv_timer_start / uv_timer_stop (handles initialised
 *                  untimed; relative timeouts in ms from the loop's time)
 *   timers-late    uv_timer_start with the timeout rounded up to libuv's
 *                  millisecond clock
 *
 * Threading: each uv_loop_t is run by one thread only; uv_async_send is the
 * only call made across threads.
 */
#include "qemu/osdep.h"
#include <pthread.h>
#include <uv.h>
#include "bench.h"

static int uv_fail(const char *what, int err)
{
    fprintf(stderr, "libuv: %s: %s\n", what, uv_strerror(err));
    return err < 0 ? err : -EIO;
}

static void close_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
}

/* (a) */

static void uv_resched_cb(uv_idle_t *idle)
{
    if (!bench_resched_step(idle->data)) {
        uv_idle_stop(idle);
    }
}

static int uv_resched(BenchResched *s)
{
    uv_idle_t *idle = g_new(uv_idle_t, s->ncallbacks);
    uv_loop_t loop;
    int ret;

    ret = uv_loop_init(&loop);
    if (ret < 0) {
        g_free(idle);
        return uv_fail("uv_loop_init", ret);
    }
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        uv_idle_init(&loop, &idle[i]);
        idle[i].data = s;
    }
    s->t_start = bench_now_ns();
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        uv_idle_start(&idle[i], uv_resched_cb);
    }
    /* Returns once every idle handle has stopped itself. */
    uv_run(&loop, UV_RUN_DEFAULT);
    s->t_end = bench_now_ns();
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        uv_close((uv_handle_t *)&idle[i], NULL);
    }
    close_loop(&loop);
    g_free(idle);
    return 0;
}

/* (b) */

typedef struct UvPingpong {
    BenchPingpong *s;
    uv_loop_t loop_a, loop_b;
    uv_async_t async_a, async_b;
} UvPingpong;

static void uv_pp_a(uv_async_t *h)
{
    UvPingpong *pp = h->data;
    bool more = bench_pingpong_a(pp->s);

    uv_async_send(&pp->async_b);
    if (!more) {
        uv_close((uv_handle_t *)h, NULL);
    }
}

static void uv_pp_b(uv_async_t *h)
{
    UvPingpong *pp = h->data;

    if (bench_pingpong_b(pp->s)) {
        uv_async_send(&pp->async_a);
    } else {
        uv_close((uv_handle_t *)h, NULL);
    }
}

static void *uv_pp_thread_b(void *opaque)
{
    UvPingpong *pp = opaque;

    uv_run(&pp->loop_b, UV_RUN_DEFAULT);
    return NULL;
}

static int uv_pingpong(BenchPingpong *s)
{
    UvPingpong pp = { .s = s };
    pthread_t tb;
    int ret;

    if (uv_loop_init(&pp.loop_a) < 0 || uv_loop_init(&pp.loop_b) < 0) {
        return uv_fail("uv_loop_init", -ENOMEM);
    }
    uv_async_init(&pp.loop_a, &pp.async_a, uv_pp_a);
    uv_async_init(&pp.loop_b, &pp.async_b, uv_pp_b);
    pp.async_a.data = pp.async_b.data = &pp;
    ret = -pthread_create(&tb, NULL, uv_pp_thread_b, &pp);
    if (ret < 0) {
        return bench_fail("libuv", "pthread_create", -ret);
    }
    s->t_start = bench_now_ns();
    uv_async_send(&pp.async_b);
    uv_run(&pp.loop_a, UV_RUN_DEFAULT);
    s->t_end = bench_now_ns();
    pthread_join(tb, NULL);
    close_loop(&pp.loop_a);
    close_loop(&pp.loop_b);
    return 0;
}

/* (c) */

static void uv_sp_cb(uv_poll_t *h, int status, int events)
{
    bench_sockets_readable(h->data);
}

static int uv_sockets(BenchSockets *s)
{
    uv_loop_t loop;
    uv_poll_t *polls = g_new(uv_poll_t, s->nsockets);
    int ret = 0;
    int n;

    uv_loop_init(&loop);
    for (n = 0; n < s->nsockets; n++) {
        ret = uv_poll_init(&loop, &polls[n], s->reader[n].fd);
        if (ret < 0) {
            uv_fail("uv_poll_init", ret);
            goto out;
        }
        polls[n].data = &s->reader[n];
        uv_poll_start(&polls[n], UV_READABLE, uv_sp_cb);
    }
    /* Let the loop register the fds with the kernel, untimed. */
    uv_run(&loop, UV_RUN_NOWAIT);
    bench_sockets_start(s);
    while (!bench_sockets_done(s)) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    s->t_end = bench_now_ns();
out:
    for (int i = 0; i < n; i++) {
        uv_close((uv_handle_t *)&polls[i], NULL);
    }
    close_loop(&loop);
    g_free(polls);
    return ret;
}

/* (d) */

static void uv_timer_never(uv_timer_t *t)
{
    abort();
}

static int uv_timers_arm(BenchTimersArm *s)
{
    uv_loop_t loop;
    uv_timer_t *t = g_new(uv_timer_t, s->n);

    uv_loop_init(&loop);
    for (size_t i = 0; i < s->n; i++) {
        uv_timer_init(&loop, &t[i]);
    }
    s->t_start = bench_now_ns();
    for (size_t i = 0; i < s->n; i++) {
        uv_timer_start(&t[i], uv_timer_never, s->rel_ns[i] / 1000000, 0);
    }
    for (size_t i = 0; i < s->n; i++) {
        uv_timer_stop(&t[i]);
    }
    s->t_end = bench_now_ns();
    for (size_t i = 0; i < s->n; i++) {
        uv_close((uv_handle_t *)&t[i], NULL);
    }
    close_loop(&loop);
    g_free(t);
    return 0;
}

typedef struct UvLate {
    BenchTimersLate *s;
    uv_timer_t *t;
} UvLate;

static void uv_late_cb(uv_timer_t *h)
{
    UvLate *ul = h->data;

    bench_timers_late_fire(ul->s, h - ul->t);
}

static int uv_timers_late(BenchTimersLate *s)
{
    UvLate ul = { .s = s, .t = g_new(uv_timer_t, s->n) };
    uv_loop_t loop;
    uint64_t now_ms;

    uv_loop_init(&loop);
    for (size_t i = 0; i < s->n; i++) {
        uv_timer_init(&loop, &ul.t[i]);
        ul.t[i].data = &ul;
    }
    bench_timers_late_start(s);
    /* libuv's loop time is uv_hrtime() (CLOCK_MONOTONIC) in whole ms. */
    uv_update_time(&loop);
    now_ms = uv_now(&loop);
    for (size_t i = 0; i < s->n; i++) {
        uint64_t due_ms = (s->due_ns[i] + 999999) / 1000000;

        uv_timer_start(&ul.t[i], uv_late_cb,
                       due_ms > now_ms ? due_ms - now_ms : 0, 0);
    }
    s->t_armed = bench_now_ns();
    while (s->fired < s->n) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < s->n; i++) {
        uv_close((uv_handle_t *)&ul.t[i], NULL);
    }
    close_loop(&loop);
    g_free(ul.t);
    return 0;
}

const BenchPeer bench_peer_libuv = {
    .name = "libuv",
    .how = {
        [BENCH_RESCHED] = "uv_idle_t",
        [BENCH_PINGPONG] = "uv_async_send",
        [BENCH_SOCKETS] = "uv_poll_t",
        [BENCH_TIMERS_ARM] = "uv_timer_start/stop",
        [BENCH_TIMERS_LATE] = "uv_timer_start (ms)",
    },
    .resched = uv_resched,
    .pingpong = uv_pingpong,
    .sockets = uv_sockets,
    .timers_arm = uv_timers_arm,
    .timers_late = uv_timers_late,
};
