/*
 * bench/peer-libev.c: the scenarios on libev (built when libev is found).
 *
 *   resched        ev_feed_event on the callback's own (unstarted) watcher:
 *                  libev's way to make a watcher pending again.  The loop
 *                  drains its pending queue before polling again, so the
 *                  chain runs without a trip through epoll, like libevent's
 *                  event_active; ev_idle would add an epoll_wait per
 *                  callback.
 *   pingpong       ev_async_send to the other thread's ev_async watcher
 *   sockets      ev_io watchers, ev_run(EVRUN_NOWAIT), default backend
 *                  (epoll)
 *   timers-arm     ev_timer_start / ev_timer_stop (ev_timer_init untimed,
 *                  ev_timer_set inside: it only stores the fields)
 *   timers-late    ev_timer_start after ev_now_update
 *
 * Threading: each loop is run by one thread only; ev_async_send is the only
 * call made across threads.
 */
#include "qemu/osdep.h"
#include <pthread.h>
#include <ev.h>
#include "bench.h"

static struct ev_loop *new_loop(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);

    if (!loop) {
        fprintf(stderr, "libev: ev_loop_new failed\n");
    }
    return loop;
}

/* (a) */

static void ev_resched_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    if (bench_resched_step(w->data)) {
        ev_feed_event(loop, w, EV_CUSTOM);
    }
}

static int ev_resched(BenchResched *s)
{
    struct ev_loop *loop = new_loop();
    ev_idle *w = g_new(ev_idle, s->ncallbacks);

    if (!loop) {
        g_free(w);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        ev_idle_init(&w[i], ev_resched_cb);
        w[i].data = s;
    }
    s->t_start = bench_now_ns();
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        ev_feed_event(loop, &w[i], EV_CUSTOM);
    }
    /* No watcher is active: one iteration, which drains every chain. */
    ev_run(loop, 0);
    s->t_end = bench_now_ns();
    ev_loop_destroy(loop);
    g_free(w);
    return 0;
}

/* (b) */

typedef struct EvPingpong {
    BenchPingpong *s;
    struct ev_loop *loop_a, *loop_b;
    ev_async async_a, async_b;
} EvPingpong;

static void ev_pp_a(struct ev_loop *loop, ev_async *w, int revents)
{
    EvPingpong *pp = w->data;
    bool more = bench_pingpong_a(pp->s);

    ev_async_send(pp->loop_b, &pp->async_b);
    if (!more) {
        ev_async_stop(loop, w);
    }
}

static void ev_pp_b(struct ev_loop *loop, ev_async *w, int revents)
{
    EvPingpong *pp = w->data;

    if (bench_pingpong_b(pp->s)) {
        ev_async_send(pp->loop_a, &pp->async_a);
    } else {
        ev_async_stop(loop, w);
    }
}

static void *ev_pp_thread_b(void *opaque)
{
    EvPingpong *pp = opaque;

    ev_run(pp->loop_b, 0);
    return NULL;
}

static int ev_pingpong(BenchPingpong *s)
{
    EvPingpong pp = { .s = s };
    pthread_t tb;
    int ret;

    pp.loop_a = new_loop();
    pp.loop_b = new_loop();
    if (!pp.loop_a || !pp.loop_b) {
        return -ENOMEM;
    }
    ev_async_init(&pp.async_a, ev_pp_a);
    ev_async_init(&pp.async_b, ev_pp_b);
    pp.async_a.data = pp.async_b.data = &pp;
    ev_async_start(pp.loop_a, &pp.async_a);
    ev_async_start(pp.loop_b, &pp.async_b);
    ret = -pthread_create(&tb, NULL, ev_pp_thread_b, &pp);
    if (ret < 0) {
        return bench_fail("libev", "pthread_create", -ret);
    }
    s->t_start = bench_now_ns();
    ev_async_send(pp.loop_b, &pp.async_b);
    ev_run(pp.loop_a, 0);
    s->t_end = bench_now_ns();
    pthread_join(tb, NULL);
    ev_loop_destroy(pp.loop_a);
    ev_loop_destroy(pp.loop_b);
    return 0;
}

/* (c) */

static void ev_sp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    bench_sockets_readable(w->data);
}

static int ev_sockets(BenchSockets *s)
{
    struct ev_loop *loop = new_loop();
    ev_io *w = g_new(ev_io, s->nsockets);

    if (!loop) {
        g_free(w);
        return -ENOMEM;
    }
    for (int i = 0; i < s->nsockets; i++) {
        ev_io_init(&w[i], ev_sp_cb, s->reader[i].fd, EV_READ);
        w[i].data = &s->reader[i];
        ev_io_start(loop, &w[i]);
    }
    /* Let the loop register the fds with the kernel, untimed. */
    ev_run(loop, EVRUN_NOWAIT);
    bench_sockets_start(s);
    while (!bench_sockets_done(s)) {
        ev_run(loop, EVRUN_NOWAIT);
    }
    s->t_end = bench_now_ns();
    for (int i = 0; i < s->nsockets; i++) {
        ev_io_stop(loop, &w[i]);
    }
    ev_loop_destroy(loop);
    g_free(w);
    return 0;
}

/* (d) */

static void ev_timer_never(struct ev_loop *loop, ev_timer *w, int revents)
{
    abort();
}

static int ev_timers_arm(BenchTimersArm *s)
{
    struct ev_loop *loop = new_loop();
    ev_timer *t = g_new(ev_timer, s->n);

    if (!loop) {
        g_free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        ev_timer_init(&t[i], ev_timer_never, 0., 0.);
    }
    s->t_start = bench_now_ns();
    for (size_t i = 0; i < s->n; i++) {
        ev_timer_set(&t[i], s->rel_ns[i] * 1e-9, 0.);
        ev_timer_start(loop, &t[i]);
    }
    for (size_t i = 0; i < s->n; i++) {
        ev_timer_stop(loop, &t[i]);
    }
    s->t_end = bench_now_ns();
    ev_loop_destroy(loop);
    g_free(t);
    return 0;
}

typedef struct EvLate {
    BenchTimersLate *s;
    ev_timer *t;
} EvLate;

static void ev_late_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    EvLate *el = w->data;

    bench_timers_late_fire(el->s, w - el->t);
}

static int ev_timers_late(BenchTimersLate *s)
{
    struct ev_loop *loop = new_loop();
    EvLate el = { .s = s, .t = g_new(ev_timer, s->n) };
    int64_t ref;

    if (!loop) {
        g_free(el.t);
        return -ENOMEM;
    }
    bench_timers_late_start(s);
    /*
     * Relative timers count from the loop's cached monotonic time; read our
     * clock first so that libev's is not older and no timer fires early.
     */
    ref = bench_now_ns();
    ev_now_update(loop);
    for (size_t i = 0; i < s->n; i++) {
        ev_timer_init(&el.t[i], ev_late_cb, (s->due_ns[i] - ref) * 1e-9, 0.);
        el.t[i].data = &el;
        ev_timer_start(loop, &el.t[i]);
    }
    s->t_armed = bench_now_ns();
    while (s->fired < s->n) {
        ev_run(loop, EVRUN_ONCE);
    }
    ev_loop_destroy(loop);
    g_free(el.t);
    return 0;
}

const BenchPeer bench_peer_libev = {
    .name = "libev",
    .how = {
        [BENCH_RESCHED] = "ev_feed_event (no poll)",
        [BENCH_PINGPONG] = "ev_async_send",
        [BENCH_SOCKETS] = "ev_io",
        [BENCH_TIMERS_ARM] = "ev_timer_start/stop",
        [BENCH_TIMERS_LATE] = "ev_timer",
    },
    .resched = ev_resched,
    .pingpong = ev_pingpong,
    .sockets = ev_sockets,
    .timers_arm = ev_timers_arm,
    .timers_late = ev_timers_late,
};
