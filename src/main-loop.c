/*
 * main-loop.c: QEMU's main loop on GLib's default main context, the
 * iohandler context and the big QEMU lock.
 *
 * Owns the main and iohandler AioContexts, main_loop_wait(), the notify
 * BH, and the BQL.
 *
 * Threading: qemu_init_main_loop() and main_loop_wait() run in the main
 * thread.  qemu_notify_event(), qemu_bh_new_full(), qemu_set_fd_handler()
 * and event_notifier_set_handler() may run in any thread once the main loop
 * exists.  The BQL is a plain mutex plus a per-thread "held" flag.
 */
#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "qemu/error-report.h"

static AioContext *qemu_aio_context;
static AioContext *iohandler_ctx;
static QEMUBH *qemu_notify_bh;

static QemuMutex bql;
static QAIO_THREAD_LOCAL bool bql_held;

static void qemu_bql_init(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        qemu_mutex_init(&bql);
        g_once_init_leave(&done, 1);
    }
}

bool bql_locked(void)
{
    return bql_held;
}

void bql_lock_impl(const char *file, int line)
{
    if (bql_held) {
        error_report("bql_lock at %s:%d: this thread holds the BQL already",
                     file, line);
        abort();
    }
    qemu_bql_init();
    qemu_mutex_lock(&bql);
    bql_held = true;
}

void bql_unlock(void)
{
    if (!bql_held) {
        error_report("bql_unlock: this thread does not hold the BQL");
        abort();
    }
    bql_held = false;
    qemu_mutex_unlock(&bql);
}

AioContext *qemu_get_aio_context(void)
{
    /*
     * Acquire, pairing with qemu_init_main_loop(): a thread that existed
     * before the main loop did and finds it here sees it set up.
     */
    return qatomic_load_acquire(&qemu_aio_context);
}

bool qemu_in_main_thread(void)
{
    AioContext *main_ctx = qemu_get_aio_context();

    return main_ctx && qemu_get_current_aio_context() == main_ctx;
}

static void notify_event_cb(void *opaque)
{
    /* Scheduling this BH woke the loop; that was all it was for. */
}

void qemu_notify_event(void)
{
    QEMUBH *bh = qatomic_load_acquire(&qemu_notify_bh);

    if (bh) {
        qemu_bh_schedule(bh);
    }
}

static void main_loop_timer_notify(void *opaque, QEMUClockType type)
{
    qemu_notify_event();
}

/* The iohandler context exists from qemu_init_main_loop() on, or on use. */
static AioContext *iohandler_ctx_get(void)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        AioContext *ctx = aio_context_new(&error_abort);

        qatomic_set(&iohandler_ctx, ctx);
        /* Not the current context of any thread: see qemu_get_current_aio_context(). */
        g_once_init_leave(&done, 1);
    }
    return qatomic_read(&iohandler_ctx);
}

AioContext *iohandler_get_aio_context(void)
{
    return iohandler_ctx_get();
}

GSource *iohandler_get_g_source(void)
{
    return aio_get_g_source(iohandler_ctx_get());
}

int qemu_init_main_loop(Error **errp)
{
    AioContext *ctx;
    GSource *src;

    if (qemu_get_aio_context()) {
        error_setg(errp, "qemu_init_main_loop: the main loop exists already");
        return -EEXIST;
    }

    init_clocks(main_loop_timer_notify);
    qemu_bql_init();

    ctx = aio_context_new(errp);
    if (!ctx) {
        return -EMFILE;
    }
    qemu_set_current_aio_context(ctx);
    /* Release: see qemu_get_aio_context() and qemu_notify_event(). */
    qatomic_store_release(&qemu_notify_bh,
                          aio_bh_new(ctx, notify_event_cb, NULL));
    qatomic_store_release(&qemu_aio_context, ctx);

    src = aio_get_g_source(ctx);
    g_source_set_name(src, "aio-context");
    g_source_attach(src, NULL);
    g_source_unref(src);

    src = iohandler_get_g_source();
    g_source_set_name(src, "io-handler");
    g_source_attach(src, NULL);
    g_source_unref(src);
    return 0;
}

void main_loop_wait(int nonblocking)
{
    static GPollFD *fds;
    static int fds_alloc;
    GMainContext *context = g_main_context_default();
    int64_t timeout_ns;
    gint max_priority;
    gint glib_timeout;
    bool unlocked = false;
    int n;

    if (!g_main_context_acquire(context)) {
        return;     /* another thread owns GLib's default context */
    }

    g_main_context_prepare(context, &max_priority);
    while ((n = g_main_context_query(context, max_priority, &glib_timeout,
                                     fds, fds_alloc)) > fds_alloc) {
        fds_alloc = n;
        fds = g_renew(GPollFD, fds, fds_alloc);
    }

    if (nonblocking) {
        timeout_ns = 0;
    } else {
        timeout_ns = glib_timeout < 0 ? -1 : glib_timeout * SCALE_MS;
        timeout_ns = qemu_soonest_timeout(timeout_ns,
                                          timerlistgroup_deadline_ns(
                                              &main_loop_tlg));
    }

    /* Do not sleep with the BQL held: other threads may need it. */
    if (timeout_ns != 0 && bql_held) {
        bql_unlock();
        unlocked = true;
    }
    if (qemu_poll_ns(fds, n, timeout_ns) < 0) {
        /* EINTR: nothing is ready; check() sees cleared revents. */
        int i;

        for (i = 0; i < n; i++) {
            fds[i].revents = 0;
        }
    }
    if (unlocked) {
        bql_lock();
    }

    if (g_main_context_check(context, max_priority, fds, n)) {
        g_main_context_dispatch(context);
    }
    g_main_context_release(context);

    qemu_clock_run_all_timers();
}

QEMUBH *qemu_bh_new_full(QEMUBHFunc *cb, void *opaque, const char *name,
                         MemReentrancyGuard *reentrancy_guard)
{
    AioContext *ctx = qemu_get_aio_context();

    if (!ctx) {
        error_report("qemu_bh_new(%s): qemu_init_main_loop() has not run",
                     name ? name : "(unnamed)");
        abort();
    }
    return aio_bh_new_full(ctx, cb, opaque, name, reentrancy_guard);
}

void qemu_set_fd_handler(int fd, IOHandler *fd_read, IOHandler *fd_write,
                         void *opaque)
{
    aio_set_fd_handler(iohandler_ctx_get(), fd, fd_read, fd_write,
                       NULL, NULL, opaque);
}

void event_notifier_set_handler(EventNotifier *e,
                                EventNotifierHandler *handler)
{
    aio_set_event_notifier(iohandler_ctx_get(), e, handler, NULL, NULL);
}
