/*
 * test-fdmon-io-uring.c: the io_uring fd monitor (src/fdmon-io-uring.c).
 *
 * What the shared fd tests cannot see: exact dispatch counts through
 * multishot and one-shot poll requests (through a deferred ring and an
 * immediate one), handlers removed while the kernel
 * still holds their requests (ASan catches an early free), the same fd
 * removed and registered again in one iteration, a handler that closes
 * its own fd, a thousand fds, handlers changed from another thread while
 * the loop sleeps in the ring, handlers removed by another thread just as
 * their fd becomes ready (10,000 rounds), the move to poll(2) when GLib
 * drives the context and the handler count of a context GLib alone drives
 * through many adds and removals, a context waited on by a thread that
 * may not enter its deferred ring, and the fallback when io_uring cannot
 * be had.  The whole core suite also runs under QAIO_FDMON=io_uring
 * ('fdmon' in meson.build).
 *
 * Threading: the main thread is the home thread of every context; the
 * /mt/ cases add one helper thread that only calls aio_set_fd_handler(),
 * write() and aio_bh_schedule_oneshot(), except mt/other-thread-waits,
 * whose helper drives the context while the main thread leaves it alone.
 *
 * The cases set QAIO_FDMON (and QAIO_DISABLE_IO_URING,
 * QAIO_FDMON_IO_URING_ONESHOT, QAIO_FDMON_IO_URING_DEFER) themselves
 * before creating a context, so the program is registered once, outside
 * the fdmon matrix.  Without io_uring (not built in, or refused by the
 * kernel) they are skipped, except the fallback case.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"
#include "qaio/fdmon.h"
#include "../src/aio-int.h"         /* AioHandler: the handler count */
#include "sanitizer-scale.h"
#include <sys/resource.h>
#include <sys/socket.h>

#define WATCHDOG_MS 10000
#include "watchdog.h"

/* Cap for loops that drive the context until a condition holds. */
#define MAX_ITERATIONS 1000

#define MANY_FDS 1000

static bool have_io_uring;

/* ---- Contexts and environment --------------------------------------- */

typedef struct Env {
    const char *name;
    char *saved;
} Env;

/* Set (or with @value NULL unset) variable @name; env_restore() undoes it. */
static void env_set(Env *e, const char *name, const char *value)
{
    e->name = name;
    e->saved = g_strdup(g_getenv(name));
    if (value) {
        g_setenv(name, value, true);
    } else {
        g_unsetenv(name);
    }
}

static void env_restore(Env *e)
{
    if (e->saved) {
        g_setenv(e->name, e->saved, true);
    } else {
        g_unsetenv(e->name);
    }
    g_free(e->saved);
}

/*
 * A context created with QAIO_FDMON=@fdmon (NULL: unset) and, with
 * @oneshot, one-shot poll requests instead of multishot ones.
 */
static AioContext *ctx_new_with(const char *fdmon, bool oneshot)
{
    Env e1, e2;
    AioContext *ctx;

    env_set(&e1, "QAIO_FDMON", fdmon);
    env_set(&e2, "QAIO_FDMON_IO_URING_ONESHOT", oneshot ? "1" : NULL);
    ctx = aio_context_new(&error_abort);
    env_restore(&e2);
    env_restore(&e1);
    return ctx;
}

static AioContext *ctx_new_uring(bool oneshot)
{
    AioContext *ctx = ctx_new_with("io_uring", oneshot);

    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "io_uring");
    return ctx;
}

static void ctx_settle(AioContext *ctx)
{
    int i;

    for (i = 0; i < MAX_ITERATIONS && aio_poll(ctx, false); i++) {
        /* keep going */
    }
    g_assert_false(aio_poll(ctx, false));
}

/* Most cases need a working ring. */
static bool need_io_uring(void)
{
    if (!have_io_uring) {
        g_test_skip("io_uring is not available");
    }
    return have_io_uring;
}

/* ---- Pipes with counting handlers ----------------------------------- */

typedef struct Pipe {
    AioContext *ctx;
    int rfd;
    int wfd;
    int n_read;         /* calls of pipe_read_cb */
    int n_other;        /* calls of pipe_other_cb */
    int n_write;        /* calls of pipe_write_cb */
    bool drain;         /* read_cb reads everything */
    bool remove_self;   /* read_cb removes its handler */
    bool close_self;    /* ... and closes rfd (after removing, or before) */
    bool close_first;
    struct Pipe *readd; /* read_cb registers this pipe's handler instead */
} Pipe;

static void pipe_open(Pipe *p, AioContext *ctx)
{
    int fds[2];

    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    *p = (Pipe){ .ctx = ctx, .rfd = fds[0], .wfd = fds[1], .drain = true };
}

static void pipe_close(Pipe *p)
{
    if (p->rfd >= 0) {
        close(p->rfd);
    }
    close(p->wfd);
}

static void pipe_put(Pipe *p)
{
    g_assert_cmpint(write(p->wfd, "x", 1), ==, 1);
}

static void pipe_drain(Pipe *p)
{
    char buf[256];

    while (read(p->rfd, buf, sizeof(buf)) > 0) {
        /* empty it */
    }
}

static void pipe_other_cb(void *opaque);

static void pipe_read_cb(void *opaque)
{
    Pipe *p = opaque;

    p->n_read++;
    if (p->drain) {
        pipe_drain(p);
    }
    if (p->close_self && p->close_first) {
        close(p->rfd);
    }
    if (p->remove_self) {
        aio_set_fd_handler(p->ctx, p->rfd, NULL, NULL, NULL, NULL, NULL);
    }
    if (p->close_self && !p->close_first) {
        close(p->rfd);
    }
    if (p->close_self) {
        p->rfd = -1;
    }
    if (p->readd) {
        aio_set_fd_handler(p->ctx, p->readd->rfd, pipe_other_cb, NULL, NULL,
                           NULL, p->readd);
    }
}

static void pipe_other_cb(void *opaque)
{
    Pipe *p = opaque;

    p->n_other++;
    if (p->drain) {
        pipe_drain(p);
    }
}

static void pipe_write_cb(void *opaque)
{
    Pipe *p = opaque;

    p->n_write++;
}

static void pipe_watch(Pipe *p)
{
    aio_set_fd_handler(p->ctx, p->rfd, pipe_read_cb, NULL, NULL, NULL, p);
}

static void pipe_unwatch(Pipe *p)
{
    aio_set_fd_handler(p->ctx, p->rfd, NULL, NULL, NULL, NULL, NULL);
}

/* ---- Selection and fallback ----------------------------------------- */

static void test_selected(void)
{
    AioContext *ctx;

    if (!need_io_uring()) {
        return;
    }
    ctx = ctx_new_with("io_uring", false);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "io_uring");
    aio_context_unref(ctx);

    /* Not the default, even though a ring can be had. */
    ctx = ctx_new_with(NULL, false);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    aio_context_unref(ctx);

    ctx = ctx_new_with("epoll", false);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "epoll");
    aio_context_unref(ctx);
    ctx = ctx_new_with("poll", false);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    aio_context_unref(ctx);
}

/* Register @n pipes, fire them all once, and count one dispatch each. */
static void fire_many(AioContext *ctx, Pipe *p, int n, int expect)
{
    int i;

    for (i = 0; i < n; i++) {
        pipe_put(&p[i]);
    }
    for (i = 0; i < MAX_ITERATIONS && aio_poll(ctx, false); i++) {
        /* a monitor may report them over several iterations */
    }
    for (i = 0; i < n; i++) {
        g_assert_cmpint(p[i].n_read, ==, expect);
    }
}

/*
 * Without io_uring (QAIO_DISABLE_IO_URING=1 makes ring creation fail as
 * an old kernel would) a context takes the default without it, poll with
 * the move to epoll at 64 fds, even when QAIO_FDMON=io_uring asked.
 */
static void fallback_case(const char *fdmon)
{
    Pipe p[70];
    Env e;
    AioContext *ctx;
    int i;

    env_set(&e, "QAIO_DISABLE_IO_URING", "1");
    ctx = ctx_new_with(fdmon, false);
    env_restore(&e);

    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    for (i = 0; i < 70; i++) {
        pipe_open(&p[i], ctx);
        pipe_watch(&p[i]);
    }
    fire_many(ctx, p, 70, 1);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "epoll");
    fire_many(ctx, p, 70, 2);
    for (i = 0; i < 70; i++) {
        pipe_unwatch(&p[i]);
        pipe_close(&p[i]);
    }
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

static void test_fallback_without_io_uring(void)
{
    fallback_case(NULL);
    fallback_case("io_uring");
}

/* ---- Dispatch counts ------------------------------------------------- */

/*
 * One byte, one call; a handler that leaves data is called again on every
 * iteration (level-triggered, even through an edge-triggered multishot
 * poll), and never after it has drained the pipe, nor for a byte that
 * someone else read after the kernel had reported it.
 */
static void dispatch_counts(bool oneshot)
{
    AioContext *ctx = ctx_new_uring(oneshot);
    Pipe a, b, w;
    int i;

    pipe_open(&a, ctx);
    pipe_open(&b, ctx);
    pipe_open(&w, ctx);
    pipe_watch(&a);
    pipe_watch(&b);
    ctx_settle(ctx);
    g_assert_cmpint(a.n_read + b.n_read, ==, 0);

    /* Data before the next wait: exactly one call each. */
    pipe_put(&a);
    pipe_put(&b);
    pipe_put(&b);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(a.n_read, ==, 1);
    g_assert_cmpint(b.n_read, ==, 1);
    g_assert_false(aio_poll(ctx, false));
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(a.n_read, ==, 1);
    g_assert_cmpint(b.n_read, ==, 1);

    /* A blocking poll wakes for the byte already there. */
    pipe_put(&a);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(a.n_read, ==, 2);
    g_assert_cmpint(b.n_read, ==, 1);

    /*
     * The CQE for this byte is posted when write() returns; the byte is
     * gone before the loop looks, so the handler is not called.
     */
    for (i = 0; i < 3; i++) {
        pipe_put(&a);
        pipe_drain(&a);
        g_assert_false(aio_poll(ctx, false));
    }
    g_assert_cmpint(a.n_read, ==, 2);

    /* Level-triggered: not drained, so called on every iteration. */
    a.drain = false;
    pipe_put(&a);
    for (i = 0; i < 5; i++) {
        g_assert_true(aio_poll(ctx, i % 2));
        g_assert_cmpint(a.n_read, ==, 3 + i);
    }
    a.drain = true;
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(a.n_read, ==, 8);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(a.n_read, ==, 8);
    g_assert_cmpint(b.n_read, ==, 1);

    /* A write handler on a pipe with room: every iteration. */
    aio_set_fd_handler(ctx, w.wfd, NULL, pipe_write_cb, NULL, NULL, &w);
    for (i = 0; i < 4; i++) {
        g_assert_true(aio_poll(ctx, false));
        g_assert_cmpint(w.n_write, ==, i + 1);
    }
    aio_set_fd_handler(ctx, w.wfd, NULL, NULL, NULL, NULL, NULL);
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(w.n_write, ==, 4);

    pipe_unwatch(&a);
    pipe_unwatch(&b);
    ctx_settle(ctx);
    pipe_close(&a);
    pipe_close(&b);
    pipe_close(&w);
    aio_context_unref(ctx);
}

static void test_dispatch_counts_multishot(void)
{
    if (need_io_uring()) {
        dispatch_counts(false);
    }
}

static void test_dispatch_counts_oneshot(void)
{
    if (need_io_uring()) {
        dispatch_counts(true);
    }
}

/* ---- Removal while the kernel holds the request ---------------------- */

/*
 * The byte is in the pipe, so a CQE naming the handler may already sit in
 * the ring when it is removed: it must neither run nor be freed before
 * that CQE (and the cancellation's) are in.  ASan checks the second part.
 */
static void remove_while_ready(bool oneshot)
{
    AioContext *ctx = ctx_new_uring(oneshot);
    Pipe p;
    int i;

    pipe_open(&p, ctx);
    for (i = 0; i < 20; i++) {
        pipe_watch(&p);
        ctx_settle(ctx);
        pipe_put(&p);
        pipe_unwatch(&p);
        g_assert_false(aio_poll(ctx, false));
        g_assert_false(aio_poll(ctx, false));
        pipe_drain(&p);
    }
    g_assert_cmpint(p.n_read, ==, 0);

    /* Removed and freed by the context's finalization instead. */
    pipe_watch(&p);
    ctx_settle(ctx);
    pipe_put(&p);
    pipe_unwatch(&p);
    aio_context_unref(ctx);
    g_assert_cmpint(p.n_read, ==, 0);
    pipe_close(&p);
}

static void test_remove_while_ready(void)
{
    if (need_io_uring()) {
        remove_while_ready(false);
        remove_while_ready(true);
    }
}

/*
 * Inside the callback, the fd's handler is removed and another registered
 * for the same fd: one iteration sees a removal and an add for one fd.
 * The first handler never runs again, the second runs once per byte.
 */
static void test_remove_readd_same_iteration(void)
{
    AioContext *ctx;
    Pipe p;

    if (!need_io_uring()) {
        return;
    }
    ctx = ctx_new_uring(false);
    pipe_open(&p, ctx);
    p.remove_self = true;
    p.readd = &p;
    pipe_watch(&p);
    ctx_settle(ctx);

    pipe_put(&p);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_cmpint(p.n_other, ==, 0);
    g_assert_false(aio_poll(ctx, false));

    pipe_put(&p);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_cmpint(p.n_other, ==, 1);

    /* The same from outside: replace and remove between two iterations. */
    aio_set_fd_handler(ctx, p.rfd, pipe_read_cb, NULL, NULL, NULL, &p);
    p.remove_self = false;
    p.readd = NULL;
    pipe_put(&p);
    pipe_unwatch(&p);
    aio_set_fd_handler(ctx, p.rfd, pipe_other_cb, NULL, NULL, NULL, &p);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_cmpint(p.n_other, ==, 2);
    g_assert_false(aio_poll(ctx, false));

    pipe_unwatch(&p);
    ctx_settle(ctx);
    pipe_close(&p);
    aio_context_unref(ctx);
}

/*
 * A handler that removes itself and closes its fd (in either order).  The
 * poll request holds the file open in the kernel until it is cancelled,
 * which the next iteration does: after it the writer sees a closed pipe.
 * A new pipe that gets the same fd number is watched on its own.
 */
static void closes_own_fd(bool close_first)
{
    AioContext *ctx = ctx_new_uring(false);
    Pipe p, q;
    int old_rfd;
    int i;

    pipe_open(&p, ctx);
    p.remove_self = true;
    p.close_self = true;
    p.close_first = close_first;
    old_rfd = p.rfd;
    pipe_watch(&p);
    ctx_settle(ctx);

    pipe_put(&p);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p.n_read, ==, 1);
    g_assert_cmpint(p.rfd, ==, -1);

    /* The cancellation is submitted by the next wait. */
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(write(p.wfd, "x", 1), ==, -1);
    g_assert_cmpint(errno, ==, EPIPE);

    /* The fd number comes back with another pipe. */
    pipe_open(&q, ctx);
    g_assert_cmpint(q.rfd, ==, old_rfd);
    pipe_watch(&q);
    for (i = 0; i < 3; i++) {
        pipe_put(&q);
        g_assert_true(aio_poll(ctx, false));
        g_assert_cmpint(q.n_read, ==, i + 1);
    }
    g_assert_cmpint(p.n_read, ==, 1);

    pipe_unwatch(&q);
    ctx_settle(ctx);
    pipe_close(&q);
    pipe_close(&p);
    aio_context_unref(ctx);
}

static void test_handler_closes_own_fd(void)
{
    if (need_io_uring()) {
        struct sigaction old, ign = { .sa_handler = SIG_IGN };

        sigaction(SIGPIPE, &ign, &old);
        closes_own_fd(false);
        closes_own_fd(true);
        sigaction(SIGPIPE, &old, NULL);
    }
}

/* ---- Many fds --------------------------------------------------------- */

static void raise_fd_limit(int need)
{
    struct rlimit rl;

    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &rl), ==, 0);
    if (rl.rlim_cur < (rlim_t)need && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = MIN(rl.rlim_max, (rlim_t)need);
        g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &rl), ==, 0);
    }
}

/*
 * A thousand fds: more than the ring's 128 SQEs at a time and more CQEs at
 * once than its completion queue holds.  Each byte is one call, and the
 * context stays on io_uring (no epoll takeover).
 */
static void many_fds(bool oneshot)
{
    AioContext *ctx = ctx_new_uring(oneshot);
    Pipe *p = g_new(Pipe, MANY_FDS);
    int i;

    for (i = 0; i < MANY_FDS; i++) {
        pipe_open(&p[i], ctx);
        pipe_watch(&p[i]);
    }
    ctx_settle(ctx);
    fire_many(ctx, p, MANY_FDS, 1);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "io_uring");
    fire_many(ctx, p, MANY_FDS, 2);

    /* Every other one removed; a byte for all: only the rest run. */
    for (i = 0; i < MANY_FDS; i += 2) {
        pipe_unwatch(&p[i]);
    }
    for (i = 0; i < MANY_FDS; i++) {
        pipe_put(&p[i]);
    }
    for (i = 0; i < MAX_ITERATIONS && aio_poll(ctx, false); i++) {
        /* drain */
    }
    for (i = 0; i < MANY_FDS; i++) {
        g_assert_cmpint(p[i].n_read, ==, i % 2 ? 3 : 2);
        pipe_drain(&p[i]);
    }

    /* ... and back again. */
    for (i = 0; i < MANY_FDS; i += 2) {
        pipe_watch(&p[i]);
        p[i].n_read = 3;
    }
    fire_many(ctx, p, MANY_FDS, 4);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "io_uring");

    for (i = 0; i < MANY_FDS; i++) {
        pipe_unwatch(&p[i]);
        pipe_close(&p[i]);
    }
    ctx_settle(ctx);
    aio_context_unref(ctx);
    g_free(p);
}

static void test_many_fds(void)
{
    if (need_io_uring()) {
        raise_fd_limit(2 * MANY_FDS + 64);
        many_fds(false);
        many_fds(true);
    }
}

/* ---- GLib ---------------------------------------------------------------- */

/*
 * aio_get_g_source() while nobody iterates the loop: the context moves to
 * poll at once, with its handlers, and from there to epoll at 64 fds.
 */
static void test_g_source_leaves_io_uring(void)
{
    AioContext *ctx;
    GMainContext *gctx;
    GSource *src;
    Pipe p[70];
    int i;

    if (!need_io_uring()) {
        return;
    }
    ctx = ctx_new_uring(false);
    for (i = 0; i < 3; i++) {
        pipe_open(&p[i], ctx);
        pipe_watch(&p[i]);
    }
    ctx_settle(ctx);
    /* One removed with a CQE still pending, one with data waiting. */
    pipe_put(&p[2]);
    pipe_unwatch(&p[2]);
    pipe_put(&p[1]);

    src = aio_get_g_source(ctx);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    gctx = g_main_context_new();
    g_source_attach(src, gctx);

    for (i = 0; i < MAX_ITERATIONS && p[1].n_read == 0; i++) {
        g_main_context_iteration(gctx, false);
    }
    g_assert_cmpint(p[1].n_read, ==, 1);
    pipe_put(&p[0]);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(p[0].n_read, ==, 1);
    g_assert_cmpint(p[2].n_read, ==, 0);
    pipe_drain(&p[2]);

    /* Back to the default without io_uring: epoll from 64 fds. */
    for (i = 3; i < 70; i++) {
        pipe_open(&p[i], ctx);
        pipe_watch(&p[i]);
    }
    pipe_watch(&p[2]);
    p[0].n_read = p[1].n_read = 0;
    fire_many(ctx, p, 70, 1);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "epoll");

    for (i = 0; i < 70; i++) {
        pipe_unwatch(&p[i]);
        pipe_close(&p[i]);
    }
    ctx_settle(ctx);
    g_source_destroy(src);
    g_source_unref(src);
    g_main_context_unref(gctx);
    aio_context_unref(ctx);
}

typedef struct GSourceLater {
    EventNotifier e;
    AioContext *ctx;
    GSource *src;
    const char *name_inside;
} GSourceLater;

static void get_g_source_cb(EventNotifier *e)
{
    GSourceLater *gl = container_of(e, GSourceLater, e);

    event_notifier_test_and_clear(e);
    gl->src = aio_get_g_source(gl->ctx);
    gl->name_inside = qaio_fdmon_name(gl->ctx);
}

/*
 * aio_get_g_source() from a handler, while aio_poll() walks the handlers:
 * the move waits for the next aio_poll() wait (@via_glib false) or for the
 * GSource's next prepare (@via_glib true).
 */
static void g_source_from_handler(bool via_glib)
{
    AioContext *ctx = ctx_new_uring(false);
    GSourceLater gl = { .ctx = ctx };
    GMainContext *gctx = NULL;
    Pipe p;
    int i;

    pipe_open(&p, ctx);
    pipe_watch(&p);
    g_assert_cmpint(event_notifier_init(&gl.e, false), ==, 0);
    aio_set_event_notifier(ctx, &gl.e, get_g_source_cb, NULL, NULL);
    ctx_settle(ctx);

    event_notifier_set(&gl.e);
    g_assert_true(aio_poll(ctx, false));
    g_assert_nonnull(gl.src);
    g_assert_cmpstr(gl.name_inside, ==, "io_uring");
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "io_uring");

    pipe_put(&p);
    if (via_glib) {
        gctx = g_main_context_new();
        g_source_attach(gl.src, gctx);
        for (i = 0; i < MAX_ITERATIONS && p.n_read == 0; i++) {
            g_main_context_iteration(gctx, false);
        }
    } else {
        g_assert_true(aio_poll(ctx, false));
    }
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    g_assert_cmpint(p.n_read, ==, 1);

    aio_set_event_notifier(ctx, &gl.e, NULL, NULL, NULL);
    event_notifier_cleanup(&gl.e);
    pipe_unwatch(&p);
    ctx_settle(ctx);
    pipe_close(&p);
    if (gctx) {
        g_source_destroy(gl.src);
    }
    g_source_unref(gl.src);
    if (gctx) {
        g_main_context_unref(gctx);
    }
    aio_context_unref(ctx);
}

static void test_g_source_from_handler(void)
{
    if (need_io_uring()) {
        g_source_from_handler(false);
        g_source_from_handler(true);
    }
}

/*
 * Handler nodes the context holds, live and removed-but-not-yet-freed
 * (home thread, nobody else touching the context).
 */
static int count_nodes(AioContext *ctx)
{
    AioHandler *node;
    int n = 0;

    QLIST_FOREACH(node, &ctx->aio_handlers, node) {
        n++;
    }
    return n;
}

#define GS_ROUNDS 10000
#define GS_LIVE 2           /* handlers that stay registered throughout */

/*
 * A context that GLib alone drives (no aio_poll() at all) while a handler
 * is added and removed GS_ROUNDS times, by itself from its callback or by
 * the test between iterations: removed handlers must be freed by the
 * removal or by the GSource's own dispatch, so that at the end of every
 * round the context holds exactly its live handlers and its notifier.  Two
 * handlers removed while their poll requests were still in the ring when
 * GLib took over are freed by the move to poll(2), before the first round
 * ends.
 */
static void test_g_source_add_remove_bounded(void)
{
    AioContext *ctx;
    GMainContext *gctx;
    GSource *src;
    Pipe live[GS_LIVE], held[2], cyc;
    int round, i;

    if (!need_io_uring()) {
        return;
    }
    ctx = ctx_new_uring(false);
    for (i = 0; i < GS_LIVE; i++) {
        pipe_open(&live[i], ctx);
        pipe_watch(&live[i]);
    }
    for (i = 0; i < 2; i++) {
        pipe_open(&held[i], ctx);
        pipe_watch(&held[i]);
    }
    ctx_settle(ctx);
    /* The ring holds their requests: removed, but not yet freeable. */
    pipe_put(&held[0]);
    pipe_unwatch(&held[0]);
    pipe_unwatch(&held[1]);

    src = aio_get_g_source(ctx);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    gctx = g_main_context_new();
    g_source_attach(src, gctx);

    pipe_open(&cyc, ctx);
    for (round = 0; round < GS_ROUNDS; round++) {
        int want = cyc.n_read + 1;

        cyc.remove_self = round % 2 == 0;
        pipe_watch(&cyc);
        if (round % 3 == 0) {
            /* Registered and dispatched in the same GLib iteration. */
            pipe_put(&cyc);
        } else {
            /* One iteration with the handler idle, then data. */
            g_main_context_iteration(gctx, false);
            pipe_put(&cyc);
        }
        for (i = 0; i < MAX_ITERATIONS && cyc.n_read < want; i++) {
            g_main_context_iteration(gctx, false);
        }
        g_assert_cmpint(cyc.n_read, ==, want);
        if (!cyc.remove_self) {
            pipe_unwatch(&cyc);
        }
        /*
         * Whatever this round removed is freed by now (by the removal
         * itself, or by the dispatch in which the callback removed
         * itself): the live handlers and the context's notifier remain.
         */
        g_main_context_iteration(gctx, false);
        g_assert_cmpint(count_nodes(ctx), ==, GS_LIVE + 1);
    }
    g_assert_cmpint(cyc.n_read, ==, GS_ROUNDS);
    for (i = 0; i < GS_LIVE; i++) {
        g_assert_cmpint(live[i].n_read, ==, 0);
    }
    g_assert_cmpint(held[0].n_read + held[1].n_read, ==, 0);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");

    for (i = 0; i < GS_LIVE; i++) {
        pipe_unwatch(&live[i]);
        pipe_close(&live[i]);
    }
    g_main_context_iteration(gctx, false);
    g_assert_cmpint(count_nodes(ctx), ==, 1);
    pipe_close(&held[0]);
    pipe_close(&held[1]);
    pipe_close(&cyc);
    g_source_destroy(src);
    g_source_unref(src);
    g_main_context_unref(gctx);
    aio_context_unref(ctx);
}

/* ---- Another thread changes the handlers while the loop sleeps ---------- */

#define MT_ROUNDS 300

typedef struct MtData {
    AioContext *ctx;
    Pipe p;
    QemuSemaphore step;     /* the home thread saw what the helper did */
    int marker;             /* BHs run, atomic */
    int empty;              /* calls that found no byte */
    bool done;              /* atomic */
} MtData;

/*
 * A call that finds no byte is counted, not fatal, so that the case can
 * report it: a CQE racing with the arming of a request, or arriving after
 * the byte was read, must not call the handler (the fd is asked first).
 */
static bool mt_took_byte(MtData *d)
{
    char c;

    if (read(d->p.rfd, &c, 1) == 1) {
        return true;
    }
    d->empty++;
    return false;
}

static void mt_read_a(void *opaque)
{
    MtData *d = opaque;

    if (mt_took_byte(d)) {
        d->p.n_read++;
        qemu_sem_post(&d->step);
    }
}

static void mt_read_b(void *opaque)
{
    MtData *d = opaque;

    if (mt_took_byte(d)) {
        d->p.n_other++;
        qemu_sem_post(&d->step);
    }
}

static void mt_marker_bh(void *opaque)
{
    MtData *d = opaque;

    qatomic_inc(&d->marker);
    qemu_sem_post(&d->step);
}

/*
 * Each round: add a handler for a pipe with data (the sleeping home thread
 * must wake, arm it and call it), replace it (only the new one runs),
 * remove it and write again (nothing runs: a BH scheduled after the
 * removal proves the home thread went round).
 */
static void *mt_helper(void *opaque)
{
    MtData *d = opaque;
    int round;

    for (round = 0; round < MT_ROUNDS; round++) {
        pipe_put(&d->p);
        aio_set_fd_handler(d->ctx, d->p.rfd, mt_read_a, NULL, NULL, NULL, d);
        qemu_sem_wait(&d->step);

        aio_set_fd_handler(d->ctx, d->p.rfd, mt_read_b, NULL, NULL, NULL, d);
        pipe_put(&d->p);
        qemu_sem_wait(&d->step);

        aio_set_fd_handler(d->ctx, d->p.rfd, NULL, NULL, NULL, NULL, NULL);
        pipe_put(&d->p);
        aio_bh_schedule_oneshot(d->ctx, mt_marker_bh, d);
        qemu_sem_wait(&d->step);
        g_assert_true(mt_took_byte(d));
        progress();
    }
    qatomic_set(&d->done, true);
    aio_notify(d->ctx);
    return NULL;
}

static void mt_case(bool oneshot)
{
    MtData d = { 0 };
    QemuThread thread;

    d.ctx = ctx_new_uring(oneshot);
    pipe_open(&d.p, d.ctx);
    qemu_sem_init(&d.step, 0);
    ctx_settle(d.ctx);

    watchdog_start(oneshot ? "mt/change-while-waiting (one-shot)"
                           : "mt/change-while-waiting");
    qemu_thread_create(&thread, "fdmon-helper", mt_helper, &d,
                       QEMU_THREAD_JOINABLE);
    while (!qatomic_read(&d.done)) {
        aio_poll(d.ctx, true);
    }
    qemu_thread_join(&thread);
    watchdog_stop();

    /* Exactly one call of each handler per round; none after removal. */
    g_assert_cmpint(d.empty, ==, 0);
    g_assert_cmpint(d.p.n_read, ==, MT_ROUNDS);
    g_assert_cmpint(d.p.n_other, ==, MT_ROUNDS);
    g_assert_cmpint(qatomic_read(&d.marker), ==, MT_ROUNDS);
    ctx_settle(d.ctx);
    g_assert_cmpint(d.p.n_read, ==, MT_ROUNDS);
    g_assert_cmpint(d.p.n_other, ==, MT_ROUNDS);

    qemu_sem_destroy(&d.step);
    pipe_close(&d.p);
    aio_context_unref(d.ctx);
}

static void test_mt_change_while_waiting(void)
{
    if (need_io_uring()) {
        mt_case(false);
        mt_case(true);
    }
}

/* ---- Another thread removes a handler just as its fd becomes ready ----- */

/*
 * 10,000 rounds with multishot requests (the default), ASan included, and
 * a fifth of that with one-shot ones; a third of both under TSan.
 */
#ifdef QEMU_SANITIZE_THREAD
#define RACE_ROUNDS 3000
#else
#define RACE_ROUNDS 10000
#endif
#define RACE_ROUNDS_ONESHOT (RACE_ROUNDS / 5)

typedef struct RaceData RaceData;

/* One round's registration.  Home thread, read by the helper after @step. */
typedef struct RaceToken {
    RaceData *d;
    int runs;
    bool closed;            /* the round's barrier BH has run */
} RaceToken;

struct RaceData {
    AioContext *ctx;
    Pipe p;
    RaceToken *tokens;
    QemuSemaphore step;
    int late;               /* home thread: calls after the barrier */
    int empty;              /* home thread: calls that found no byte */
    int ran;                /* helper: rounds whose handler took the byte */
    int rounds;
    bool done;              /* atomic */
};

static void race_read_cb(void *opaque)
{
    RaceToken *t = opaque;
    char c;

    if (t->closed) {
        t->d->late++;
    }
    t->runs++;
    if (read(t->d->p.rfd, &c, 1) != 1) {
        t->d->empty++;
    }
    progress();
}

static void race_step_bh(void *opaque)
{
    RaceData *d = opaque;

    qemu_sem_post(&d->step);
}

/*
 * Runs after every dispatch that could still see the removed handler:
 * removal marks the node deleted at once, and a ready list built before
 * that is dispatched in the iteration that runs this BH or earlier.
 */
static void race_barrier_bh(void *opaque)
{
    RaceToken *t = opaque;

    t->closed = true;
    qemu_sem_post(&t->d->step);
}

/*
 * Each round: register the read handler, let the home thread arm its poll
 * request (two BH round trips: the second one's iteration starts with a
 * wait that submitted it; every fourth round skips this, so the removal
 * also races the arming), then make the fd readable and remove the
 * handler, in either order, while the home thread sleeps in the ring.
 * The kernel's CQE and the removal cross; the handler runs at most once
 * (never when the removal came first), always finds its byte, and never
 * after the round's barrier BH.  The same
 * fd is registered again next round while the previous request may still
 * be being cancelled.
 */
static void *race_helper(void *opaque)
{
    RaceData *d = opaque;
    char c;
    int round;

    for (round = 0; round < d->rounds; round++) {
        RaceToken *t = &d->tokens[round];

        aio_set_fd_handler(d->ctx, d->p.rfd, race_read_cb, NULL, NULL, NULL,
                           t);
        if (round % 4 != 3) {
            aio_bh_schedule_oneshot(d->ctx, race_step_bh, d);
            sem_wait_or_abort(&d->step, "arming BH");
            aio_bh_schedule_oneshot(d->ctx, race_step_bh, d);
            sem_wait_or_abort(&d->step, "arming BH");
        }
        if (round % 2) {
            pipe_put(&d->p);
            aio_set_fd_handler(d->ctx, d->p.rfd, NULL, NULL, NULL, NULL,
                               NULL);
        } else {
            aio_set_fd_handler(d->ctx, d->p.rfd, NULL, NULL, NULL, NULL,
                               NULL);
            pipe_put(&d->p);
        }
        aio_bh_schedule_oneshot(d->ctx, race_barrier_bh, t);
        sem_wait_or_abort(&d->step, "barrier BH after removal");

        /*
         * The semaphore orders the home thread's writes before these.
         * Removed before the byte came: the handler cannot have run.
         */
        g_assert_cmpint(t->runs, <=, round % 2);
        if (t->runs) {
            d->ran++;
            g_assert_cmpint(read(d->p.rfd, &c, 1), ==, -1);
        } else {
            g_assert_cmpint(read(d->p.rfd, &c, 1), ==, 1);
        }
        progress();
    }
    qatomic_set(&d->done, true);
    aio_notify(d->ctx);
    return NULL;
}

static void remove_race_case(bool oneshot)
{
    RaceData d = { 0 };
    QemuThread thread;
    int i, runs = 0;

    d.ctx = ctx_new_uring(oneshot);
    d.rounds = oneshot ? RACE_ROUNDS_ONESHOT : RACE_ROUNDS;
    d.tokens = g_new0(RaceToken, d.rounds);
    for (i = 0; i < d.rounds; i++) {
        d.tokens[i].d = &d;
    }
    pipe_open(&d.p, d.ctx);
    qemu_sem_init(&d.step, 0);
    ctx_settle(d.ctx);

    watchdog_start(oneshot ? "mt/remove-as-ready (one-shot)"
                           : "mt/remove-as-ready");
    qemu_thread_create(&thread, "fdmon-remover", race_helper, &d,
                       QEMU_THREAD_JOINABLE);
    while (!qatomic_read(&d.done)) {
        aio_poll(d.ctx, true);
    }
    qemu_thread_join(&thread);
    ctx_settle(d.ctx);
    watchdog_stop();

    g_test_message("%s: %d rounds, the handler won the race in %d",
                   oneshot ? "one-shot" : "multishot", d.rounds, d.ran);
    for (i = 0; i < d.rounds; i++) {
        g_assert_true(d.tokens[i].closed);
        runs += d.tokens[i].runs;
    }
    g_assert_cmpint(d.late, ==, 0);
    g_assert_cmpint(d.empty, ==, 0);
    g_assert_cmpint(runs, ==, d.ran);
    g_assert_cmpstr(qaio_fdmon_name(d.ctx), ==, "io_uring");

    qemu_sem_destroy(&d.step);
    pipe_close(&d.p);
    aio_context_unref(d.ctx);
    g_free(d.tokens);
}

static void test_mt_remove_as_ready(void)
{
    if (need_io_uring()) {
        remove_race_case(false);
        remove_race_case(true);
    }
}

/* ---- A context waited on by another thread ------------------------- */

/*
 * Drive @ctx from the calling thread: @rounds times one byte, exactly one
 * call, then nothing.
 */
static void wait_rounds(AioContext *ctx, Pipe *p, int rounds)
{
    int r, i;

    for (r = 0; r < rounds; r++) {
        int want = p->n_read + 1;

        pipe_put(p);
        for (i = 0; i < MAX_ITERATIONS && p->n_read < want; i++) {
            aio_poll(ctx, true);
        }
        g_assert_cmpint(p->n_read, ==, want);
        g_assert_false(aio_poll(ctx, false));
        g_assert_cmpint(p->n_read, ==, want);
    }
}

/* Does @ctx's ring defer task work, so that only one thread may enter it? */
static bool ctx_ring_deferred(AioContext *ctx)
{
#ifdef CONFIG_LINUX_IO_URING
    return aio_priv(ctx)->io_uring_deferred;
#else
    return false;
#endif
}

typedef struct OtherWaiter {
    AioContext *ctx;
    Pipe *p;
} OtherWaiter;

static void *other_waiter_thread(void *opaque)
{
    OtherWaiter *w = opaque;

    wait_rounds(w->ctx, w->p, 3);
    return NULL;
}

/* Three rounds of wait_rounds() in a new thread, which then exits. */
static void wait_rounds_in_thread(AioContext *ctx, Pipe *p)
{
    OtherWaiter w = { .ctx = ctx, .p = p };
    QemuThread thread;

    qemu_thread_create(&thread, "other-waiter", other_waiter_thread, &w,
                       QEMU_THREAD_JOINABLE);
    qemu_thread_join(&thread);
}

/*
 * A deferred ring (IORING_SETUP_DEFER_TASKRUN) may only be entered by the
 * thread that first waited on it.  When another thread waits (the context
 * handed over, or its first waiter gone), the context moves to poll(2)
 * and no byte is lost or reported twice; a handler that the kernel still
 * held is freed (ASan).  While a walker other than the waiter exists the
 * move waits, and poll(2) serves in the meantime.  An immediate ring
 * (the default; ThreadSanitizer, valgrind) serves every
 * thread and stays.
 */
static void other_thread_case(bool immediate)
{
    AioContext *ctx;
    Pipe p, held;
    bool deferred;
    Env e;

    env_set(&e, "QAIO_FDMON_IO_URING_DEFER", immediate ? "0" : "1");
    ctx = ctx_new_uring(false);
    env_restore(&e);
    deferred = ctx_ring_deferred(ctx);
    g_assert_true(!immediate || !deferred);
    pipe_open(&p, ctx);
    pipe_open(&held, ctx);
    pipe_watch(&p);
    pipe_watch(&held);

    /* This thread waits first, so a deferred ring is its own. */
    wait_rounds(ctx, &p, 3);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "io_uring");
    pipe_put(&held);
    pipe_unwatch(&held);

    /* Another thread waits while this one counts as a walker. */
    qemu_lockcnt_inc(&ctx->list_lock);
    wait_rounds_in_thread(ctx, &p);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "io_uring");
    qemu_lockcnt_dec(&ctx->list_lock);

    /* Back here: the move that had to wait happens now. */
    wait_rounds(ctx, &p, 3);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, deferred ? "poll" : "io_uring");
    pipe_unwatch(&p);
    ctx_settle(ctx);
    aio_context_unref(ctx);
    g_assert_cmpint(p.n_read, ==, 9);
    g_assert_cmpint(held.n_read, ==, 0);

    /* A first waiter that exits: the next one takes over. */
    pipe_drain(&held);
    env_set(&e, "QAIO_FDMON_IO_URING_DEFER", immediate ? "0" : "1");
    ctx = ctx_new_uring(false);
    env_restore(&e);
    p.ctx = ctx;
    held.ctx = ctx;
    pipe_watch(&p);
    pipe_watch(&held);
    wait_rounds_in_thread(ctx, &p);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "io_uring");
    pipe_put(&held);
    pipe_unwatch(&held);
    wait_rounds(ctx, &p, 3);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, deferred ? "poll" : "io_uring");
    pipe_unwatch(&p);
    ctx_settle(ctx);
    aio_context_unref(ctx);
    g_assert_cmpint(p.n_read, ==, 15);
    g_assert_cmpint(held.n_read, ==, 0);

    pipe_close(&p);
    pipe_close(&held);
}

static void test_mt_other_thread_waits(void)
{
    if (need_io_uring()) {
        other_thread_case(false);
        other_thread_case(true);
    }
}

/* The dispatch counts through a ring that runs task work at once. */
static void test_dispatch_counts_immediate(void)
{
    Env e;

    if (need_io_uring()) {
        env_set(&e, "QAIO_FDMON_IO_URING_DEFER", "0");
        dispatch_counts(false);
        dispatch_counts(true);
        env_restore(&e);
    }
}

/* The same through the opt-in deferred ring (where the kernel has it). */
static void test_dispatch_counts_deferred(void)
{
    Env e;

    if (need_io_uring()) {
        env_set(&e, "QAIO_FDMON_IO_URING_DEFER", "1");
        dispatch_counts(false);
        dispatch_counts(true);
        env_restore(&e);
    }
}

int main(int argc, char **argv)
{
    AioContext *probe;

    g_test_init(&argc, &argv, NULL);
    init_clocks(NULL);

    probe = ctx_new_with("io_uring", false);
    have_io_uring = !strcmp(qaio_fdmon_name(probe), "io_uring");
    aio_context_unref(probe);

    g_test_add_func("/fdmon-io-uring/selected", test_selected);
    g_test_add_func("/fdmon-io-uring/fallback-without-io-uring",
                    test_fallback_without_io_uring);
    g_test_add_func("/fdmon-io-uring/dispatch-counts/multishot",
                    test_dispatch_counts_multishot);
    g_test_add_func("/fdmon-io-uring/dispatch-counts/oneshot",
                    test_dispatch_counts_oneshot);
    g_test_add_func("/fdmon-io-uring/dispatch-counts/immediate",
                    test_dispatch_counts_immediate);
    g_test_add_func("/fdmon-io-uring/dispatch-counts/deferred",
                    test_dispatch_counts_deferred);
    g_test_add_func("/fdmon-io-uring/remove-while-ready",
                    test_remove_while_ready);
    g_test_add_func("/fdmon-io-uring/remove-readd-same-iteration",
                    test_remove_readd_same_iteration);
    g_test_add_func("/fdmon-io-uring/handler-closes-own-fd",
                    test_handler_closes_own_fd);
    g_test_add_func("/fdmon-io-uring/many-fds", test_many_fds);
    g_test_add_func("/fdmon-io-uring/g-source/leaves-io-uring",
                    test_g_source_leaves_io_uring);
    g_test_add_func("/fdmon-io-uring/g-source/from-handler",
                    test_g_source_from_handler);
    g_test_add_func("/fdmon-io-uring/g-source/add-remove-bounded",
                    test_g_source_add_remove_bounded);
    g_test_add_func("/fdmon-io-uring/mt/change-while-waiting",
                    test_mt_change_while_waiting);
    g_test_add_func("/fdmon-io-uring/mt/remove-as-ready",
                    test_mt_remove_as_ready);
    g_test_add_func("/fdmon-io-uring/mt/other-thread-waits",
                    test_mt_other_thread_waits);

    return g_test_run();
}
