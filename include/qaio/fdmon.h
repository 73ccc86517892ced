/*
 * qaio/fdmon.h: which fd monitor a context uses (a qaio extension; QEMU
 * has no such call).
 *
 * A context starts on poll(2) and moves to epoll once it watches 64 fds
 * or more (src/aio-context.c says why that is the default).
 * The environment variable QAIO_FDMON=poll|epoll|io_uring, read when a
 * context is created, forces one monitor for it.  io_uring (one ring per
 * context, poll requests for its fds) is used only when asked for; if a
 * ring cannot be created, a warning says so once and the context takes
 * the default.  A context on io_uring moves to poll(2), and then epoll,
 * when GLib starts driving it (aio_get_g_source()).
 */
#ifndef QAIO_FDMON_H
#define QAIO_FDMON_H

#include "block/aio.h"

/**
 * qaio_fdmon_name: the fd monitor @ctx uses right now
 * @ctx: the context
 *
 * Returns: "poll", "epoll" or "io_uring" (a static string).  Any thread.
 */
const char *qaio_fdmon_name(AioContext *ctx);

#endif /* QAIO_FDMON_H */
