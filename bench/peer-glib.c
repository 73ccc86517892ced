/*
 * bench/peer-glib.c: the scenarios on GLib's GMainContext (always built:
 * qaio depends on GLib anyway).
 *
 *   resched        an idle source (g_idle_source_new) whose callback
 *                  returns G_SOURCE_CONTINUE, under a GMainLoop: one full
 *                  prepare/poll/check/dispatch iteration per callback
 *   pingpong       a minimal GSource per thread made ready from the other
 *                  thread with g_source_set_ready_time(source, 0), which
 *                  takes the context's lock and wakes it; the dispatch
 *                  resets it to -1.  Cheaper than g_main_context_invoke,
 *                  which allocates an idle source per call.
 *   sockets      g_unix_fd_source_new(fd, G_IO_IN) on a private context
 *                  (what g_unix_fd_add does on the default one),
 *                  g_main_context_iteration(ctx, FALSE)
 *   timers-arm     g_timeout_source_new + g_source_attach, then
 *                  g_source_destroy + g_source_unref: a destroyed source
 *                  cannot be re-armed, so creating it is part of arming
 *   timers-late    a minimal GSource per timer with g_source_set_ready_time
 *                  (microseconds, monotonic), rather than g_timeout_source,
 *                  whose millisecond interval would add rounding
 *
 * Threading: each GMainContext is iterated by one thread only; in pingpong
 * the other thread only calls g_source_set_ready_time.
 */
#include "qemu/osdep.h"
#include <glib-unix.h>
#include "bench.h"

/* A source that is dispatched when its ready time passes, and nothing else. */
static gboolean gsrc_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    return cb(data);
}

static GSourceFuncs gsrc_funcs = {
    .dispatch = gsrc_dispatch,
};

/* (a) */

typedef struct GResched {
    BenchResched *s;
    GMainLoop *loop;
} GResched;

static gboolean g_resched_cb(gpointer opaque)
{
    GResched *r = opaque;

    if (bench_resched_step(r->s)) {
        return G_SOURCE_CONTINUE;
    }
    g_main_loop_quit(r->loop);
    return G_SOURCE_REMOVE;
}

static int g_resched(BenchResched *s)
{
    GMainContext *ctx = g_main_context_new();
    GResched r = { .s = s, .loop = g_main_loop_new(ctx, FALSE) };
    GSource **src = g_new(GSource *, s->ncallbacks);

    for (unsigned i = 0; i < s->ncallbacks; i++) {
        src[i] = g_idle_source_new();
        g_source_set_callback(src[i], g_resched_cb, &r, NULL);
    }
    s->t_start = bench_now_ns();
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        g_source_attach(src[i], ctx);
    }
    g_main_loop_run(r.loop);
    s->t_end = bench_now_ns();
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        if (!g_source_is_destroyed(src[i])) {
            g_source_destroy(src[i]);
        }
        g_source_unref(src[i]);
    }
    g_free(src);
    g_main_loop_unref(r.loop);
    g_main_context_unref(ctx);
    return 0;
}

/* (b) */

typedef struct GPingpong {
    BenchPingpong *s;
    GMainContext *ctx_a, *ctx_b;
    GMainLoop *loop_a, *loop_b;
    GSource *src_a, *src_b;
} GPingpong;

static gboolean g_pp_a(gpointer opaque)
{
    GPingpong *pp = opaque;
    bool more;

    g_source_set_ready_time(pp->src_a, -1);
    more = bench_pingpong_a(pp->s);
    g_source_set_ready_time(pp->src_b, 0);
    if (!more) {
        g_main_loop_quit(pp->loop_a);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean g_pp_b(gpointer opaque)
{
    GPingpong *pp = opaque;

    g_source_set_ready_time(pp->src_b, -1);
    if (bench_pingpong_b(pp->s)) {
        g_source_set_ready_time(pp->src_a, 0);
    } else {
        g_main_loop_quit(pp->loop_b);
    }
    return G_SOURCE_CONTINUE;
}

static gpointer g_pp_thread_b(gpointer opaque)
{
    GPingpong *pp = opaque;

    g_main_context_push_thread_default(pp->ctx_b);
    g_main_loop_run(pp->loop_b);
    g_main_context_pop_thread_default(pp->ctx_b);
    return NULL;
}

static GSource *g_pp_source(GMainContext *ctx, GSourceFunc cb, GPingpong *pp)
{
    GSource *src = g_source_new(&gsrc_funcs, sizeof(GSource));

    g_source_set_ready_time(src, -1);
    g_source_set_callback(src, cb, pp, NULL);
    g_source_attach(src, ctx);
    return src;
}

static int g_pingpong(BenchPingpong *s)
{
    GPingpong pp = { .s = s };
    GThread *tb;

    pp.ctx_a = g_main_context_new();
    pp.ctx_b = g_main_context_new();
    pp.loop_a = g_main_loop_new(pp.ctx_a, FALSE);
    pp.loop_b = g_main_loop_new(pp.ctx_b, FALSE);
    pp.src_a = g_pp_source(pp.ctx_a, g_pp_a, &pp);
    pp.src_b = g_pp_source(pp.ctx_b, g_pp_b, &pp);
    tb = g_thread_new("bench-glib-b", g_pp_thread_b, &pp);
    s->t_start = bench_now_ns();
    g_source_set_ready_time(pp.src_b, 0);
    g_main_loop_run(pp.loop_a);
    s->t_end = bench_now_ns();
    g_thread_join(tb);
    g_source_destroy(pp.src_a);
    g_source_destroy(pp.src_b);
    g_source_unref(pp.src_a);
    g_source_unref(pp.src_b);
    g_main_loop_unref(pp.loop_a);
    g_main_loop_unref(pp.loop_b);
    g_main_context_unref(pp.ctx_a);
    g_main_context_unref(pp.ctx_b);
    return 0;
}

/* (c) */

static gboolean g_sp_cb(gint fd, GIOCondition cond, gpointer opaque)
{
    bench_sockets_readable(opaque);
    return G_SOURCE_CONTINUE;
}

static int g_sockets(BenchSockets *s)
{
    GMainContext *ctx = g_main_context_new();
    GSource **src = g_new(GSource *, s->nsockets);

    for (int i = 0; i < s->nsockets; i++) {
        src[i] = g_unix_fd_source_new(s->reader[i].fd, G_IO_IN);
        g_source_set_callback(src[i], G_SOURCE_FUNC(g_sp_cb), &s->reader[i],
                              NULL);
        g_source_attach(src[i], ctx);
    }
    g_main_context_acquire(ctx);
    /* Let the loop register the fds with the kernel, untimed. */
    g_main_context_iteration(ctx, FALSE);
    bench_sockets_start(s);
    while (!bench_sockets_done(s)) {
        g_main_context_iteration(ctx, FALSE);
    }
    s->t_end = bench_now_ns();
    g_main_context_release(ctx);
    for (int i = 0; i < s->nsockets; i++) {
        g_source_destroy(src[i]);
        g_source_unref(src[i]);
    }
    g_free(src);
    g_main_context_unref(ctx);
    return 0;
}

/* (d) */

static gboolean g_timer_never(gpointer opaque)
{
    abort();
}

static int g_timers_arm(BenchTimersArm *s)
{
    GMainContext *ctx = g_main_context_new();
    GSource **src = g_new(GSource *, s->n);

    s->t_start = bench_now_ns();
    for (size_t i = 0; i < s->n; i++) {
        src[i] = g_timeout_source_new(s->rel_ns[i] / 1000000);
        g_source_set_callback(src[i], g_timer_never, NULL, NULL);
        g_source_attach(src[i], ctx);
    }
    for (size_t i = 0; i < s->n; i++) {
        g_source_destroy(src[i]);
        g_source_unref(src[i]);
    }
    s->t_end = bench_now_ns();
    g_free(src);
    g_main_context_unref(ctx);
    return 0;
}

typedef struct GLate {
    GSource src;
    BenchTimersLate *s;
    size_t idx;
} GLate;

static gboolean g_late_cb(gpointer opaque)
{
    GLate *gl = opaque;

    bench_timers_late_fire(gl->s, gl->idx);
    return G_SOURCE_REMOVE;
}

static int g_timers_late(BenchTimersLate *s)
{
    GMainContext *ctx = g_main_context_new();
    GLate **gl = g_new(GLate *, s->n);

    g_main_context_acquire(ctx);
    bench_timers_late_start(s);
    for (size_t i = 0; i < s->n; i++) {
        gl[i] = (GLate *)g_source_new(&gsrc_funcs, sizeof(GLate));
        gl[i]->s = s;
        gl[i]->idx = i;
        /* GLib's monotonic time is CLOCK_MONOTONIC in microseconds. */
        g_source_set_ready_time(&gl[i]->src, (s->due_ns[i] + 999) / 1000);
        g_source_set_callback(&gl[i]->src, g_late_cb, gl[i], NULL);
        g_source_attach(&gl[i]->src, ctx);
    }
    s->t_armed = bench_now_ns();
    while (s->fired < s->n) {
        g_main_context_iteration(ctx, TRUE);
    }
    g_main_context_release(ctx);
    for (size_t i = 0; i < s->n; i++) {
        g_source_unref(&gl[i]->src);
    }
    g_free(gl);
    g_main_context_unref(ctx);
    return 0;
}

const BenchPeer bench_peer_glib = {
    .name = "glib",
    .how = {
        [BENCH_RESCHED] = "idle source, GMainLoop",
        [BENCH_PINGPONG] = "g_source_set_ready_time(0)",
        [BENCH_SOCKETS] = "g_unix_fd_source",
        [BENCH_TIMERS_ARM] = "g_timeout_source attach/destroy",
        [BENCH_TIMERS_LATE] = "g_source_set_ready_time(us)",
    },
    .resched = g_resched,
    .pingpong = g_pingpong,
    .sockets = g_sockets,
    .timers_arm = g_timers_arm,
    .timers_late = g_timers_late,
};
