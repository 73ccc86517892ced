/*
 * block/aio-wait.h: waiting, from the main loop or a context's home thread,
 * for a condition that other threads make true.
 *
 * AIO_WAIT_WHILE(ctx, cond) runs an event loop until @cond is false.  In
 * @ctx's home thread it polls @ctx; anywhere else it must be the main
 * thread, and it polls the main context.  Code that makes @cond false from
 * another thread calls aio_wait_kick() afterwards, which wakes the main
 * loop if anybody waits.
 *
 * Threading: global_aio_wait.num_waiters is atomic.  AIO_WAIT_WHILE from
 * the home thread of @ctx or from the main thread, never from a coroutine;
 * aio_wait_kick from anywhere.
 */
#ifndef QEMU_AIO_WAIT_H
#define QEMU_AIO_WAIT_H

#include "block/aio.h"
#include "qemu/main-loop.h"

/**
 * AioWait: the waiters of AIO_WAIT_WHILE()
 * @num_waiters: how many AIO_WAIT_WHILE() loops are running; atomic
 */
typedef struct {
    unsigned num_waiters;
} AioWait;

extern AioWait global_aio_wait;

/**
 * AIO_WAIT_WHILE_INTERNAL: the body of AIO_WAIT_WHILE()
 * @ctx: the context whose work @cond depends on, or NULL for the main
 *       loop's
 * @cond: evaluated in the calling thread before each aio_poll()
 *
 * A statement expression.  The waiter is counted before @cond is first
 * evaluated and a full barrier separates the two; aio_wait_kick() has the
 * mirror image (its caller's writes, a barrier, then the count), so either
 * the waiter sees the new state of @cond or the kicker sees the waiter.
 *
 * Returns: true if it polled at least once.
 */
#define AIO_WAIT_WHILE_INTERNAL(ctx, cond) ({                           \
    bool waited_ = false;                                               \
    AioWait *wait_ = &global_aio_wait;                                  \
    AioContext *ctx_ = (ctx);                                           \
    qatomic_inc(&wait_->num_waiters);                                   \
    /* Pairs with smp_mb() in aio_wait_kick(). */                       \
    smp_mb__after_rmw();                                                \
    if (ctx_ && in_aio_context_home_thread(ctx_)) {                     \
        while ((cond)) {                                                \
            aio_poll(ctx_, true);                                       \
            waited_ = true;                                             \
        }                                                               \
    } else {                                                            \
        assert(qemu_get_current_aio_context() ==                        \
               qemu_get_aio_context());                                 \
        while ((cond)) {                                                \
            aio_poll(qemu_get_aio_context(), true);                     \
            waited_ = true;                                             \
        }                                                               \
    }                                                                   \
    qatomic_dec(&wait_->num_waiters);                                   \
    waited_; })

/**
 * AIO_WAIT_WHILE: run an event loop until @cond is false
 * @ctx: the context whose work @cond depends on, or NULL
 * @cond: the condition
 *
 * Context: @ctx's home thread, or the main thread (BQL held); not a
 * coroutine.
 * Returns: true if it polled at least once.
 */
#define AIO_WAIT_WHILE(ctx, cond) AIO_WAIT_WHILE_INTERNAL(ctx, cond)

/* The same; QEMU kept both names when AioContext locking went away. */
#define AIO_WAIT_WHILE_UNLOCKED(ctx, cond) AIO_WAIT_WHILE_INTERNAL(ctx, cond)

/**
 * aio_wait_kick: wake the main loop if an AIO_WAIT_WHILE() waits
 *
 * Call after making a waiter's condition false.  Cheap when nobody waits
 * (a barrier and a load).  Any thread.
 */
void aio_wait_kick(void);

/**
 * aio_wait_bh_oneshot: run @cb(@opaque) in @ctx and wait for it to finish
 * @ctx: the context to run it in
 * @cb: the callback
 * @opaque: its argument
 *
 * Context: the main thread, not a coroutine.
 */
void aio_wait_bh_oneshot(AioContext *ctx, QEMUBHFunc *cb, void *opaque);

/**
 * in_aio_context_home_thread: whether the caller may poll @ctx
 * @ctx: the context
 *
 * Returns: true if @ctx is the calling thread's current context, or if it
 * is the main context and the caller holds the BQL.
 */
static inline bool in_aio_context_home_thread(AioContext *ctx)
{
    if (ctx == qemu_get_current_aio_context()) {
        return true;
    }
    if (ctx == qemu_get_aio_context()) {
        return bql_locked();
    }
    return false;
}

#endif /* QEMU_AIO_WAIT_H */
