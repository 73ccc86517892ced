/*
 * glib-integration.c: an AioContext driven by a GLib main loop.
 *
 *   glib-integration [--rounds N]
 *
 * A program that already runs a GMainLoop (a GTK application, a D-Bus
 * service, ...) does not need a second loop for qaio: an AioContext is also
 * a GSource, and once attached to a GMainContext with g_source_attach(),
 * g_main_loop_run() runs the context's bottom halves, fd handlers and timers
 * along with every other GLib source.  QEMU itself works this way: its main
 * loop is GLib's.
 *
 * The demo wires the two sides into one chain of events:
 *
 *   GLib timeout (g_timeout_add, every 10 ms)
 *     writes one byte into a pipe
 *       -> AioContext fd handler: reads the bytes, and for each one
 *          schedules a one-shot bottom half
 *            -> the bottom half counts it
 *   AioContext timer (every 7 ms), independently, re-arming itself
 *
 * After N rounds of each the loop quits.  The program checks that every
 * source ran exactly as often as it should, and exits non-zero if not; the
 * test suite runs it as it is.
 *
 * Threading: one thread.  The AioContext's callbacks run in the thread
 * that runs the GMainLoop.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"

typedef struct Demo {
    GMainLoop *loop;
    AioContext *ctx;
    QEMUTimer timer;
    int pipe_fds[2];
    int rounds;

    int glib_ticks;     /* GLib timeout callbacks */
    int bytes_read;     /* bytes the fd handler consumed */
    int bh_runs;        /* one-shot bottom halves run */
    int timer_fires;    /* AioContext timer callbacks */
} Demo;

static void maybe_quit(Demo *d)
{
    if (d->glib_ticks == d->rounds && d->bh_runs == d->rounds &&
        d->timer_fires == d->rounds) {
        g_main_loop_quit(d->loop);
    }
}

/* GLib side: a plain GLib timeout, knowing nothing about qaio. */
static gboolean glib_tick(gpointer opaque)
{
    Demo *d = opaque;
    char byte = 'x';

    d->glib_ticks++;
    printf("glib   timeout    %d\n", d->glib_ticks);
    if (write(d->pipe_fds[1], &byte, 1) != 1) {
        error_report("write to pipe: %s", strerror(errno));
        abort();
    }
    maybe_quit(d);
    return d->glib_ticks < d->rounds ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* qaio side: a bottom half, run as soon as the loop gets to it. */
static void bh_run(void *opaque)
{
    Demo *d = opaque;

    d->bh_runs++;
    printf("qaio   bh         %d\n", d->bh_runs);
    maybe_quit(d);
}

/* qaio side: an fd handler, called while the pipe has bytes to read. */
static void pipe_readable(void *opaque)
{
    Demo *d = opaque;
    char buf[16];
    ssize_t n = read(d->pipe_fds[0], buf, sizeof(buf));
    ssize_t i;

    for (i = 0; i < n; i++) {
        d->bytes_read++;
        printf("qaio   fd handler %d\n", d->bytes_read);
        /*
         * A one-shot BH per byte: unlike qemu_bh_schedule() on one QEMUBH,
         * two of them scheduled before the loop gets to them both run.
         */
        aio_bh_schedule_oneshot(d->ctx, bh_run, d);
    }
}

/* qaio side: a timer on the context, re-armed from its own callback. */
static void timer_fired(void *opaque)
{
    Demo *d = opaque;

    d->timer_fires++;
    printf("qaio   timer      %d\n", d->timer_fires);
    if (d->timer_fires < d->rounds) {
        timer_mod(&d->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 7);
    }
    maybe_quit(d);
}

int main(int argc, char **argv)
{
    Demo d = { .rounds = 5 };
    GOptionEntry entries[] = {
        { "rounds", 'n', 0, G_OPTION_ARG_INT, &d.rounds,
          "events of each kind before quitting (default 5)", "N" },
        { NULL }
    };
    g_autoptr(GOptionContext) opts = g_option_context_new(
        "- an AioContext as a GSource in a GMainLoop");
    g_autoptr(GError) gerr = NULL;
    GSource *src;
    bool ok;

    g_option_context_add_main_entries(opts, entries, NULL);
    if (!g_option_context_parse(opts, &argc, &argv, &gerr) || argc != 1 ||
        d.rounds < 1) {
        error_report("%s", gerr ? gerr->message : "bad arguments (see --help)");
        return 2;
    }
    if (pipe2(d.pipe_fds, O_CLOEXEC) < 0) {
        error_report("pipe: %s", strerror(errno));
        return 1;
    }

    /* GLib's default main context, and a loop to run it. */
    d.loop = g_main_loop_new(NULL, false);

    /*
     * The AioContext joins it as one more source.  aio_get_g_source() hands
     * us a reference of our own, kept until we detach the source at the end.
     */
    d.ctx = aio_context_new(&error_fatal);
    src = aio_get_g_source(d.ctx);
    g_source_attach(src, NULL);

    g_timeout_add(10, glib_tick, &d);
    aio_set_fd_handler(d.ctx, d.pipe_fds[0], pipe_readable, NULL, NULL, NULL,
                       &d);
    aio_timer_init(d.ctx, &d.timer, QEMU_CLOCK_REALTIME, SCALE_MS,
                   timer_fired, &d);
    timer_mod(&d.timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 7);

    /* No aio_poll() anywhere: GLib runs both sides. */
    g_main_loop_run(d.loop);

    ok = d.glib_ticks == d.rounds && d.bytes_read == d.rounds &&
         d.bh_runs == d.rounds && d.timer_fires == d.rounds;
    printf("%s: %d GLib timeouts, %d fd events, %d bottom halves, "
           "%d timer expiries\n", ok ? "ok" : "WRONG", d.glib_ticks,
           d.bytes_read, d.bh_runs, d.timer_fires);

    /* Tear down in reverse: our handlers, then the source, then the loop. */
    timer_del(&d.timer);
    aio_set_fd_handler(d.ctx, d.pipe_fds[0], NULL, NULL, NULL, NULL, NULL);
    g_source_destroy(src);
    g_source_unref(src);
    aio_context_unref(d.ctx);
    g_main_loop_unref(d.loop);
    close(d.pipe_fds[0]);
    close(d.pipe_fds[1]);
    return ok ? 0 : 1;
}
