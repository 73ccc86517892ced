/*
 * fdmon-io-uring.h: what the two files of the io_uring fd monitor share.
 *
 * fdmon-io-uring.c owns the monitor as the context sees it: the FDMonOps,
 * the life of the ring, which thread may enter it, and the wait loop.
 * fdmon-io-uring-ring.c owns the traffic through the ring: the submit list
 * turned into SQEs, CQEs turned into ready handlers, and the recheck list
 * that keeps multishot polls level-triggered.  Nothing else includes this.
 *
 * Threading: fdmon_io_uring_enqueue() runs in any thread (see there);
 * everything else only inside wait(), in the thread that may enter the
 * ring, as a list_lock walker.
 */
#ifndef QAIO_FDMON_IO_URING_H
#define QAIO_FDMON_IO_URING_H

#include "aio-int.h"

#ifdef CONFIG_LINUX_IO_URING

/* Flag @node and put it on ctx->submit_list unless it is there already. */
void fdmon_io_uring_enqueue(AioContext *ctx, AioHandler *node,
                            unsigned flags);

/*
 * Turn ctx->submit_list into SQEs; removed nodes the kernel no longer
 * knows go to @release.  False if a node must wait for room in the ring.
 */
bool fdmon_io_uring_fill_sq(AioContext *ctx, AioHandlerSList *release);

/* Submit what is queued without waiting.  0 or -errno. */
int fdmon_io_uring_submit(AioContext *ctx);

/*
 * Submit and wait up to @timeout ns (-1: no limit) for a CQE.  A negative
 * errno (-ETIME, -EINTR, ...) or a non-negative number.
 */
int fdmon_io_uring_submit_and_wait(AioContext *ctx, int64_t timeout);

/* Take every CQE there is.  Returns how many handlers became ready. */
int fdmon_io_uring_reap(AioContext *ctx, AioHandlerList *ready_list,
                        AioHandlerSList *release);

/*
 * Ask the fds on the recheck list with one zero-timeout poll(2).  Returns
 * how many handlers became ready.
 */
int fdmon_io_uring_recheck(AioContext *ctx, AioHandlerList *ready_list);

/* Drop removed nodes from the recheck list (end of wait()). */
void fdmon_io_uring_recheck_prune(AioContext *ctx);

/* Must a blocking wait be a ppoll() on the ring fd (TSan, valgrind)? */
bool fdmon_io_uring_block_in_ppoll(void);

#endif /* CONFIG_LINUX_IO_URING */

#endif /* QAIO_FDMON_IO_URING_H */
