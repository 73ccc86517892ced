/*
 * block/thread-pool.h: run blocking functions on worker threads and complete
 * them in an AioContext.
 *
 * Each AioContext has at most one pool (aio_get_thread_pool() creates it on
 * first use).  A request goes to the pool of the *calling thread's* current
 * context (qemu_get_current_aio_context()); its function runs on a worker
 * thread, and its completion (callback or coroutine wake-up) runs later in
 * that context's loop, never on the worker.
 *
 * Threading: submit from the home thread of the context (or with the BQL for
 * the main context).  Workers start on demand up to the context's
 * thread_pool_max; at least thread_pool_min stay alive; idle workers above
 * the minimum exit after a few seconds.
 */
#ifndef BLOCK_THREAD_POOL_H
#define BLOCK_THREAD_POOL_H

#include "block/aio.h"

#define THREAD_POOL_MAX_THREADS_DEFAULT 64

/* The blocking work: runs on a worker; the result goes to the completion. */
typedef int ThreadPoolFunc(void *opaque);

typedef struct ThreadPool ThreadPool;

/*
 * thread_pool_new: create the pool of @ctx.  Users normally call
 * aio_get_thread_pool() instead, which creates it on first use.
 */
ThreadPool *thread_pool_new(struct AioContext *ctx);

/*
 * thread_pool_free: destroy @pool (NULL is allowed).
 *
 * Requests still queued or running are waited for and their completions are
 * run first: nothing is lost and nothing runs after the free.  Called from
 * the pool's context home thread.
 */
void thread_pool_free(ThreadPool *pool);

/**
 * thread_pool_submit_aio: run @func(@arg) on a worker thread
 * @func: the blocking function
 * @arg: its argument
 * @cb: completion, called in the context's loop with @func's return value
 *      (or -ECANCELED if the request was cancelled before it ran); may be
 *      NULL
 * @opaque: @cb's first argument
 *
 * Returns: the AIOCB, usable with bdrv_aio_cancel() / bdrv_aio_cancel_async()
 * until @cb has been called.
 */
BlockAIOCB *thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                                   BlockCompletionFunc *cb, void *opaque);

/**
 * thread_pool_submit_co: run @func(@arg) on a worker and yield until done
 *
 * Returns: @func's return value.
 */
int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func, void *arg);

/* thread_pool_submit: fire and forget; thread_pool_submit_aio with no cb. */
void thread_pool_submit(ThreadPoolFunc *func, void *arg);

/*
 * thread_pool_update_params: apply @ctx's thread_pool_min/max to @pool now
 * (start workers up to the new minimum, let extra ones exit).
 */
void thread_pool_update_params(ThreadPool *pool, struct AioContext *ctx);

#endif /* BLOCK_THREAD_POOL_H */
