/*
 * qaio/fdmon.h: which fd monitor a context uses (a qaio extension; QEMU
 * has no such call).
 *
 * A context uses io_uring (one ring per context, poll requests for its
 * fds) when the kernel lets it create a ring; otherwise it starts on
 * poll(2) and moves to epoll once it watches 64 fds or more.  A context on
 * io_uring moves to poll(2), and then epoll, when GLib starts driving it
 * (aio_get_g_source()).  The environment variable
 * QAIO_FDMON=poll|epoll|io_uring, read when a context is created, forces
 * one monitor for it; if io_uring cannot be had, a warning says so once
 * and the context takes the default without it.
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
