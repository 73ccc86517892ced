/*
 * io-uring-int.h: what tests may see of the io_uring engine (io-uring.c)
 * beyond block/raw-aio.h: its counters and its fault injection knobs.
 *
 * Not installed, not exported on purpose: users get QEMU's API only.
 *
 * Threading: like the rest of the engine, these run in the home thread of
 * the context the engine is attached to (or while nothing runs it).
 */
#ifndef QAIO_IO_URING_INT_H
#define QAIO_IO_URING_INT_H

#include "qemu/osdep.h"
#include "block/raw-aio.h"

#ifdef CONFIG_LINUX_IO_URING

/* Submission queue entries of the engine's ring (the CQ gets twice that). */
#define LURING_RING_ENTRIES 128

/*
 * LuringStats: what the engine did since it was created (or last reset).
 *
 * @submit_calls: io_uring_submit() calls, failed ones included
 * @sqes_submitted: entries the kernel accepted, resubmissions included
 * @largest_batch: most entries accepted by one io_uring_submit()
 * @max_in_flight: peak of requests in the ring or the kernel, not yet reaped
 * @in_flight_limit: the cap on that (the CQ ring size: no CQE is ever lost)
 * @queue_stalls: submissions that had to leave requests in the software
 *                queue because the SQ ring or the in-flight cap was full
 * @short_resubmits: short reads and writes resubmitted for the rest
 * @retry_resubmits: -EAGAIN / -EINTR completions resubmitted unchanged
 * @eventfd_reaped: CQEs reaped because the eventfd fired
 * @poll_reaped: CQEs reaped because io_poll saw them while busy polling
 * @bh_reaped: CQEs left to the completion BH by a nested event loop
 */
typedef struct LuringStats {
    uint64_t submit_calls;
    uint64_t sqes_submitted;
    unsigned largest_batch;
    unsigned max_in_flight;
    unsigned in_flight_limit;
    uint64_t queue_stalls;
    uint64_t short_resubmits;
    uint64_t retry_resubmits;
    uint64_t eventfd_reaped;
    uint64_t poll_reaped;
    uint64_t bh_reaped;
} LuringStats;

/* Copy the counters of @s into @stats. */
void qaio_int_luring_get_stats(LuringState *s, LuringStats *stats);

/* Zero the counters of @s (the in-flight limit stays). */
void qaio_int_luring_reset_stats(LuringState *s);

/*
 * qaio_int_luring_inject_short: make transfers short on purpose
 * @s: the engine
 * @max_bytes: every submission of an affected read or write asks the
 *             kernel for at most this many bytes (must be > 0)
 * @count: how many of the following reads and writes larger than
 *         @max_bytes are affected
 *
 * The kernel really transfers only @max_bytes at a time, so the engine's
 * resubmissions of the rest are what make the request complete.
 */
void qaio_int_luring_inject_short(LuringState *s, size_t max_bytes,
                                  unsigned count);

/*
 * qaio_int_luring_inject_eagain: report completions as -EAGAIN
 * @s: the engine
 * @count: how many of the following read or write completions are
 *         replaced by -EAGAIN (their data is transferred again)
 */
void qaio_int_luring_inject_eagain(LuringState *s, unsigned count);

#endif /* CONFIG_LINUX_IO_URING */

#endif /* QAIO_IO_URING_INT_H */
