/*
 * qemu/main-loop.h: QEMU's main loop, standalone.
 *
 * qemu_init_main_loop() gives the calling thread (the main thread) an
 * AioContext, qemu_get_aio_context(), plus a second one for plain fd
 * handlers, the iohandler context; both are attached as GSources to GLib's
 * default main context.  main_loop_wait() or g_main_context_iteration(NULL,
 * ...) then drives everything: BHs, fd handlers, timers of both contexts
 * and of main_loop_tlg, and any other GLib source.
 *
 * The big QEMU lock (BQL) is an ordinary mutex here: main_loop_wait()
 * releases it while it sleeps if the caller holds it.
 *
 * Threading: qemu_init_main_loop() once, in the main thread.  The *_bh_*,
 * notify and fd-handler functions may be called from any thread.
 */
#ifndef QEMU_MAIN_LOOP_H
#define QEMU_MAIN_LOOP_H

#include "block/aio.h"

/**
 * qemu_init_main_loop: set up the main loop
 * @errp: where to report failure
 *
 * Initialises the clocks, creates the main context and makes it the
 * calling thread's current context, creates the iohandler context, and
 * attaches both to GLib's default main context.
 *
 * Returns: 0, or a negative value with @errp set.
 */
int qemu_init_main_loop(Error **errp);

/**
 * main_loop_wait: run one iteration of the main loop
 * @nonblocking: if non-zero, do not sleep
 *
 * Waits (unless @nonblocking) for the first of: a GLib source, an fd, a
 * BH, or a timer of main_loop_tlg; then dispatches and runs expired
 * main_loop_tlg timers.  Main thread only.
 */
void main_loop_wait(int nonblocking);

/* The main thread's AioContext (NULL before qemu_init_main_loop()). */
AioContext *qemu_get_aio_context(void);

/* Wake the main loop. */
void qemu_notify_event(void);

/**
 * qemu_set_fd_handler: watch @fd from the main loop
 * @fd: the file descriptor
 * @fd_read: called when readable, or NULL
 * @fd_write: called when writable, or NULL
 * @opaque: their argument
 *
 * Registers on the iohandler context; NULL for both removes the handler.
 */
void qemu_set_fd_handler(int fd, IOHandler *fd_read, IOHandler *fd_write,
                         void *opaque);

/* Watch an EventNotifier from the main loop (iohandler context). */
void event_notifier_set_handler(EventNotifier *e,
                                EventNotifierHandler *handler);

/* The iohandler context's GSource (a new reference), and the context. */
GSource *iohandler_get_g_source(void);
AioContext *iohandler_get_aio_context(void);

/* Whether the calling thread holds the BQL. */
bool bql_locked(void);

/* True in the thread whose current context is the main loop's context. */
bool qemu_in_main_thread(void);

/* Take the BQL; aborts if this thread holds it already. */
#define bql_lock() bql_lock_impl(__FILE__, __LINE__)
void bql_lock_impl(const char *file, int line);
/* Release the BQL; aborts if this thread does not hold it. */
void bql_unlock(void);

/* Bottom halves of the main context. */
#define qemu_bh_new(cb, opaque) \
    qemu_bh_new_full((cb), (opaque), (stringify(cb)), NULL)
#define qemu_bh_new_guarded(cb, opaque, guard) \
    qemu_bh_new_full((cb), (opaque), (stringify(cb)), guard)
QEMUBH *qemu_bh_new_full(QEMUBHFunc *cb, void *opaque, const char *name,
                         MemReentrancyGuard *reentrancy_guard);

/**
 * qemu_bh_schedule_idle: schedule @bh as idle work
 * @bh: the bottom half
 *
 * Like qemu_bh_schedule() (it wakes the loop the same way), but the loop
 * does not treat the BH as urgent: an aio_poll() with nothing else to do
 * may sleep up to 10 ms before running it, and running it does not count
 * as progress.
 */
void qemu_bh_schedule_idle(QEMUBH *bh);

/* Assertions of QEMU's code classes. */
#define GLOBAL_STATE_CODE() \
    do { \
        assert(qemu_in_main_thread()); \
    } while (0)
#define IO_CODE() do { } while (0)
#define IO_OR_GS_CODE() do { } while (0)

#endif /* QEMU_MAIN_LOOP_H */
