/*
 * thread-pool-int.h: what the thread pool shows its tests (not installed).
 *
 * The pool's worker count and idle timeout are otherwise invisible; tests
 * need them to check the min/max rules and the idle exit without sleeping.
 *
 * Threading: any thread; each call takes the pool's lock.
 */
#ifndef QAIO_THREAD_POOL_INT_H
#define QAIO_THREAD_POOL_INT_H

#include "block/thread-pool.h"

/* How long a worker above the minimum stays idle before it exits (QEMU's). */
#define THREAD_POOL_IDLE_TIMEOUT_MS 10000

/*
 * Set @pool's idle timeout to @ms (> 0) and restart the idle waits of its
 * workers, so that the new value applies at once.
 */
G_GNUC_INTERNAL void qaio_int_thread_pool_set_idle_timeout(ThreadPool *pool,
                                                           int ms);

/* Workers alive now (started and not yet exited, or being started). */
G_GNUC_INTERNAL int qaio_int_thread_pool_threads(ThreadPool *pool);

/*
 * Block until @pool has exactly @n workers, all of them running their loop
 * (so named).  Returns false if that did not happen within @timeout_ms,
 * which a test uses as a hang detector, never as a timing assertion.
 */
G_GNUC_INTERNAL bool qaio_int_thread_pool_wait_threads(ThreadPool *pool, int n,
                                                       int timeout_ms);

/* Requests submitted whose completion has not run yet (home thread). */
G_GNUC_INTERNAL int qaio_int_thread_pool_in_flight(ThreadPool *pool);

#endif /* QAIO_THREAD_POOL_INT_H */
