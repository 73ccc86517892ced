/*
 * qaio/fdmon.h: which fd monitor a context uses (a qaio extension; QEMU
 * has no such call).
 *
 * A context starts on poll(2) and moves to epoll once it watches 64 fds or
 * more.  The environment variable QAIO_FDMON=poll|epoll, read when a
 * context is created, forces one monitor for it.
 */
#ifndef QAIO_FDMON_H
#define QAIO_FDMON_H

#include "block/aio.h"

/**
 * qaio_fdmon_name: the fd monitor @ctx uses right now
 * @ctx: the context
 *
 * Returns: "poll" or "epoll" (a static string).  Any thread.
 */
const char *qaio_fdmon_name(AioContext *ctx);

#endif /* QAIO_FDMON_H */
