/*
 * thread-pool.c: placeholder until the thread pool lands (issue 4).
 */
#include "qemu/osdep.h"
#include "block/thread-pool.h"

ThreadPool *thread_pool_new(struct AioContext *ctx)
{
    return NULL;
}

void thread_pool_free(ThreadPool *pool)
{
}

void thread_pool_update_params(ThreadPool *pool, struct AioContext *ctx)
{
}
