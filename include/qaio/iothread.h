/*
 * qaio/iothread.h: an AioContext run by a thread of its own (a qaio
 * extension).
 *
 * QEMU has IOThread as a QOM object (include/sysemu/iothread.h, created
 * with -object iothread,id=...).  QOM does not exist here, so qaio gives
 * the same behaviour through plain functions: create one with a name, hand
 * its AioContext to whatever should run there, stop and destroy it.  The
 * thread's loop, its defaults (adaptive polling with a 32768 ns window) and
 * its optional GMainContext behave as QEMU's do.  docs/qaio-iothread.md has
 * the full story.
 *
 * Threading: every function may be called from any thread, except that an
 * IOThread cannot stop or destroy itself (from one of its own callbacks):
 * that aborts, because the thread would have to join itself.
 */
#ifndef QAIO_IOTHREAD_H
#define QAIO_IOTHREAD_H

#include "block/aio.h"

/* QEMU's IOThread default polling window, in nanoseconds. */
#define IOTHREAD_POLL_MAX_NS_DEFAULT 32768

/* The thread pool limits of a new AioContext (aio_context_new()). */
#define IOTHREAD_THREAD_POOL_MIN_DEFAULT 0
#define IOTHREAD_THREAD_POOL_MAX_DEFAULT 64

/*
 * IOThreadOptions: how iothread_create_full() sets up the context.
 *
 * Start from IOTHREAD_OPTIONS_DEFAULT and change what you need; a zeroed
 * struct is not valid (its thread_pool_max of 0 is rejected).
 *
 * @poll_max_ns: longest busy-polling window; 0 disables polling
 * @poll_grow: factor the window grows by; 0 means 2
 * @poll_shrink: divisor the window shrinks by; 0 means back to 0 at once
 * @aio_max_batch: most requests an I/O engine submits at once; 0 means the
 *                 engine's default
 * @thread_pool_min: worker threads kept alive while idle
 * @thread_pool_max: most worker threads
 * @run_gcontext: also run a GMainContext in the thread from the start, as
 *                iothread_get_g_main_context() would arrange later
 *
 * These are QEMU's -object iothread properties poll-max-ns, poll-grow,
 * poll-shrink, aio-max-batch, thread-pool-min and thread-pool-max, with
 * the same defaults.
 */
typedef struct IOThreadOptions {
    int64_t poll_max_ns;
    int64_t poll_grow;
    int64_t poll_shrink;
    int64_t aio_max_batch;
    int thread_pool_min;
    int thread_pool_max;
    bool run_gcontext;
} IOThreadOptions;

/* The options iothread_create() uses, as an initializer. */
#define IOTHREAD_OPTIONS_DEFAULT                                \
    ((IOThreadOptions){                                         \
        .poll_max_ns = IOTHREAD_POLL_MAX_NS_DEFAULT,            \
        .poll_grow = 2,                                         \
        .poll_shrink = 2,                                       \
        .aio_max_batch = 0,                                     \
        .thread_pool_min = IOTHREAD_THREAD_POOL_MIN_DEFAULT,    \
        .thread_pool_max = IOTHREAD_THREAD_POOL_MAX_DEFAULT,    \
        .run_gcontext = false,                                  \
    })

/**
 * iothread_create_full: start a thread running a new AioContext
 * @name: a name unique among the IOThreads not yet destroyed, not empty
 * @opts: the context's parameters; NULL means IOTHREAD_OPTIONS_DEFAULT
 * @errp: where to report failure
 *
 * Creates the AioContext, applies @opts, and starts a thread named
 * "IO <name>" (truncated to the 15 characters Linux keeps) that runs the
 * context's loop.  Returns only once the thread runs, with the context set
 * as its current one (qemu_get_current_aio_context() there returns it).
 *
 * Fails, with @errp set and nothing left behind (no thread, no context, no
 * file descriptor), when @name is NULL, empty or taken, when an option is
 * out of range (negative poll or batch values; thread pool limits outside
 * 0 <= min <= max, 1 <= max), or when the context cannot get its file
 * descriptors.  A failure to create the thread itself aborts, as
 * qemu_thread_create() does.
 *
 * Returns: the new IOThread, or NULL on failure.
 */
IOThread *iothread_create_full(const char *name, const IOThreadOptions *opts,
                               Error **errp);

/**
 * iothread_create: start an IOThread with the default options
 * @name: as for iothread_create_full()
 * @errp: where to report failure
 *
 * Returns: iothread_create_full(@name, NULL, @errp).
 */
IOThread *iothread_create(const char *name, Error **errp);

/**
 * iothread_get_aio_context: the context the IOThread runs
 * @iothread: the IOThread
 *
 * Valid until iothread_destroy(); take a reference with aio_context_ref()
 * to keep it longer.  Schedule work into it from any thread.
 *
 * Returns: the AioContext (never NULL).
 */
AioContext *iothread_get_aio_context(IOThread *iothread);

/**
 * iothread_get_g_main_context: the GMainContext the IOThread also runs
 * @iothread: the IOThread
 *
 * On the first call (unless the IOThread was created with run_gcontext)
 * creates the GMainContext, attaches the AioContext's GSource to it and
 * wakes the thread, which from then on runs g_main_loop_run() on it in
 * place of aio_poll(): sources attached to it are dispatched in the
 * IOThread, and the AioContext keeps being served through its GSource.
 * The IOThread makes it its thread-default main context while it runs it.
 *
 * Do not iterate the returned context yourself; the IOThread owns it.
 * Aborts if GLib cannot create its wake-up file descriptor.
 *
 * Returns: the context, valid until iothread_destroy() (no new reference).
 */
GMainContext *iothread_get_g_main_context(IOThread *iothread);

/**
 * iothread_stop: stop the IOThread's loop and join its thread
 * @iothread: the IOThread
 *
 * Schedules a bottom half in the IOThread's context that ends the loop
 * after the iteration it runs in, then waits for the thread to exit.
 * Bottom halves scheduled into the context before this call (ahead of that
 * request) still run; bottom halves scheduled later, timers that have not
 * fired and ready fd handlers stay queued in the context and are not run
 * by this IOThread again.  Idempotent; concurrent calls all return once
 * the thread is gone.  The AioContext stays valid (with its pending work)
 * until iothread_destroy().
 *
 * Must not be called from the IOThread itself: that aborts.
 */
void iothread_stop(IOThread *iothread);

/**
 * iothread_destroy: stop the IOThread and free it
 * @iothread: the IOThread, or NULL (nothing happens)
 *
 * iothread_stop(), then releases the GMainContext (sources still attached
 * to it are destroyed) and the IOThread's reference to its AioContext.
 * When that is the last reference, bottom halves still queued are freed
 * without running (a one-shot BH's opaque is not touched) and the context
 * is finalized: delete your own QEMUBHs, timers and fd handlers first, as
 * for aio_context_unref().  The name becomes free for a new IOThread.
 * No callback of the IOThread runs after this returns.
 *
 * Must not be called from the IOThread itself: that aborts.
 */
void iothread_destroy(IOThread *iothread);

/**
 * iothread_get_name: the name given at creation
 * @iothread: the IOThread
 *
 * Returns: the name, owned by @iothread and valid until iothread_destroy().
 */
const char *iothread_get_name(IOThread *iothread);

/**
 * iothread_get_thread_id: the kernel's id of the IOThread's thread
 * @iothread: the IOThread
 *
 * Returns: the thread id (gettid()), also after the thread has stopped.
 */
int iothread_get_thread_id(IOThread *iothread);

/**
 * iothread_by_name: find a live IOThread
 * @name: its name
 *
 * Finds IOThreads that have been created and not yet destroyed (stopped
 * ones included).  The caller must make sure that the one found is not
 * destroyed meanwhile.
 *
 * Returns: the IOThread named @name, or NULL.
 */
IOThread *iothread_by_name(const char *name);

#endif /* QAIO_IOTHREAD_H */
