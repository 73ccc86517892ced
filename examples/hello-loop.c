/*
 * hello-loop.c: the README example.  A bottom half, a timer and a pipe
 * handler on one AioContext, driven by aio_poll().
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"

static int events;

static void say(void *msg) { printf("%s\n", (char *)msg); events++; }

static void on_readable(void *opaque)
{
    char buf[64];
    ssize_t n = read(*(int *)opaque, buf, sizeof(buf) - 1);

    buf[n > 0 ? n : 0] = '\0';
    say(buf);
}

int main(void)
{
    AioContext *ctx = aio_context_new(&error_fatal);
    QEMUTimer timer;
    int fds[2];

    aio_bh_schedule_oneshot(ctx, say, "bottom half");
    aio_timer_init(ctx, &timer, QEMU_CLOCK_REALTIME, SCALE_MS, say, "timer");
    timer_mod(&timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
    if (pipe(fds) < 0 || write(fds[1], "fd handler", 10) != 10) {
        return 1;
    }
    aio_set_fd_handler(ctx, fds[0], on_readable, NULL, NULL, NULL, &fds[0]);

    while (events < 3) {
        aio_poll(ctx, true);
    }

    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL, NULL);
    aio_context_unref(ctx);
    return 0;
}
