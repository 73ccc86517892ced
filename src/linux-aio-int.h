/*
 * linux-aio-int.h: what tests may see of the Linux AIO engine (linux-aio.c)
 * beyond block/raw-aio.h: its counters and the limits it is created with.
 *
 * Not installed, not exported on purpose: users get QEMU's API only.
 *
 * Threading: qaio_int_laio_get_stats() and qaio_int_laio_reset_stats() run
 * in the home thread of the context the engine is attached to (or while
 * nothing runs it).  qaio_int_laio_set_params() changes a process-wide
 * setting read by laio_init(): call it while no other thread creates an
 * engine.
 */
#ifndef QAIO_LINUX_AIO_INT_H
#define QAIO_LINUX_AIO_INT_H

#include "qemu/osdep.h"
#include "block/raw-aio.h"

#ifdef CONFIG_LINUX_AIO

/* Events asked of io_setup() and requests in flight at most, by default. */
#define LAIO_MAX_EVENTS 1024

/* Requests submitted at once when neither device nor context sets a limit. */
#define LAIO_DEFAULT_MAX_BATCH 32

/*
 * LaioStats: what the engine did since it was created (or last reset).
 *
 * @submit_calls: io_submit() calls, failed ones included
 * @submitted: requests the kernel accepted
 * @largest_batch: most requests accepted by one io_submit()
 * @max_in_flight: peak of requests submitted and not yet reaped
 * @queue_full: io_submit() calls that found the kernel's queue full
 *              (-EAGAIN or a partial submission) and left requests queued
 * @ring_reaped: completions read from the user-space ring
 * @syscall_reaped: completions read with io_getevents()
 * @polled: completions reaped because the io_poll handler saw them while
 *          the context was busy polling (the eventfd was not needed)
 */
typedef struct LaioStats {
    uint64_t submit_calls;
    uint64_t submitted;
    unsigned largest_batch;
    unsigned max_in_flight;
    uint64_t queue_full;
    uint64_t ring_reaped;
    uint64_t syscall_reaped;
    uint64_t polled;
} LaioStats;

/* Copy the counters of @s into @stats. */
void qaio_int_laio_get_stats(LinuxAioState *s, LaioStats *stats);

/* Zero the counters of @s. */
void qaio_int_laio_reset_stats(LinuxAioState *s);

/* Does @s read completions from the user-space ring (not io_getevents)? */
bool qaio_int_laio_uses_ring(LinuxAioState *s);

/*
 * LaioParams: how the following laio_init() calls create engines.
 *
 * @nr_events: passed to io_setup(); 0 means LAIO_MAX_EVENTS
 * @max_in_flight: the engine's own cap on requests in the kernel; 0 means
 *                 LAIO_MAX_EVENTS.  Setting it above what @nr_events lets
 *                 the kernel hold makes io_submit() run out of room, which
 *                 is how tests reach the queue-full path.
 * @no_ring: reap with io_getevents() even where the ring is readable
 */
typedef struct LaioParams {
    unsigned nr_events;
    unsigned max_in_flight;
    bool no_ring;
} LaioParams;

/* Set the parameters of later laio_init() calls; NULL restores defaults. */
void qaio_int_laio_set_params(const LaioParams *params);

#endif /* CONFIG_LINUX_AIO */

#endif /* QAIO_LINUX_AIO_INT_H */
