/*
 * iothread.c: IOThreads, an AioContext run by a thread of its own
 * (qaio/iothread.h, docs/qaio-iothread.md).
 *
 * Owns struct IOThread, the thread's loop, the lazily created GMainContext
 * and the registry of live IOThreads by name.
 *
 * The loop: aio_poll(ctx, true) until a GMainContext exists, then
 * g_main_loop_run() on that GMainContext, to which the AioContext's GSource
 * is attached, so that one blocking wait serves both (QEMU's design).  The
 * thread never calls aio_poll() on the context while it iterates the
 * GMainContext, and never iterates the GMainContext while in aio_poll():
 * the switch happens between two aio_poll() calls and is one-way.
 *
 * Stopping: a bottom half in the IOThread's own context clears "running"
 * (and quits the GMainLoop), so the wake-up is that of any BH and the loop
 * ends after the iteration that ran it.  The thread is then joined.
 *
 * Threading: "running", "main_loop" and the thread-default GMainContext
 * belong to the IOThread.  "worker_context" is published once, with a
 * release store under gctx_lock.  "joined" is under stop_lock.  The
 * registry is under iothreads_lock.  Everything else is written before the
 * thread starts (thread_id: before the start-up handshake) and then only
 * read, until iothread_destroy(), which the caller must not race with
 * other calls on the same IOThread.
 */
#include "qemu/osdep.h"
#include "qaio/iothread.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/thread.h"
#include <sys/eventfd.h>

struct IOThread {
    char *name;
    AioContext *ctx;
    QemuThread thread;
    int thread_id;

    /* Posted by the thread once it runs with its current context set. */
    QemuSemaphore init_done;

    /* Serialises the creation of worker_context. */
    QemuMutex gctx_lock;
    /* NULL until a GMainContext is wanted; then set once, never cleared. */
    GMainContext *worker_context;

    /* IOThread only: cleared by iothread_stop_bh(). */
    bool running;
    /* IOThread only: the GMainLoop once the thread runs worker_context. */
    GMainLoop *main_loop;

    /* Serialises iothread_stop(): the first caller joins, the others wait. */
    QemuMutex stop_lock;
    bool joined;                        /* under stop_lock */

    QLIST_ENTRY(IOThread) next;         /* iothreads, under iothreads_lock */
};

/* IOThreads created and not yet destroyed; names are unique among them. */
static GMutex iothreads_lock;
static QLIST_HEAD(, IOThread) iothreads = QLIST_HEAD_INITIALIZER(iothreads);

/*
 * The IOThread whose loop this thread runs.  Compared with the IOThread
 * itself rather than with its pthread_t: a stopped thread's pthread_t may
 * be reused by a new thread.
 */
static QAIO_THREAD_LOCAL IOThread *my_iothread;

static void iothread_assert_not_self(IOThread *iothread, const char *fn)
{
    if (my_iothread == iothread) {
        error_report("%s: IOThread '%s' cannot stop itself from one of its "
                     "own callbacks (it would join its own thread); call "
                     "it from another thread", fn, iothread->name);
        abort();
    }
}

/* ---- The thread ------------------------------------------------------ */

static void iothread_stop_bh(void *opaque)
{
    IOThread *iothread = opaque;

    iothread->running = false;
    if (iothread->main_loop) {
        g_main_loop_quit(iothread->main_loop);
    }
}

static void *iothread_run(void *opaque)
{
    IOThread *iothread = opaque;
    GMainContext *gctx = NULL;

    my_iothread = iothread;
    qemu_set_current_aio_context(iothread->ctx);
    iothread->thread_id = qemu_get_thread_id();
    qemu_sem_post(&iothread->init_done);

    while (iothread->running) {
        if (!iothread->main_loop) {
            /*
             * Pairs with the release store in iothread_attach_gcontext():
             * once we see the GMainContext, the AioContext's GSource is
             * attached to it.  aio_notify() makes the aio_poll() below
             * return so that we get here.
             */
            gctx = qatomic_load_acquire(&iothread->worker_context);
            if (!gctx) {
                aio_poll(iothread->ctx, true);
                continue;
            }
            /* GLib code run by our callbacks should use this context. */
            g_main_context_push_thread_default(gctx);
            iothread->main_loop = g_main_loop_new(gctx, false);
        }
        /* Returns when iothread_stop_bh() quits the loop. */
        g_main_loop_run(iothread->main_loop);
    }

    if (iothread->main_loop) {
        g_main_loop_unref(iothread->main_loop);
        iothread->main_loop = NULL;
        g_main_context_pop_thread_default(gctx);
    }
    return NULL;
}

/* ---- The GMainContext ------------------------------------------------ */

/*
 * Attach the AioContext's GSource to @gctx and publish @gctx.  Called with
 * gctx_lock held, or before the thread starts.
 */
static void iothread_attach_gcontext(IOThread *iothread, GMainContext *gctx)
{
    AioContext *ctx = iothread->ctx;
    g_autofree char *source_name =
        g_strdup_printf("IO %s aio-context", iothread->name);
    GSource *source = aio_get_g_source(ctx);

    g_source_set_name(source, source_name);

    /*
     * aio_set_fd_handler() adds its GPollFD to the source under list_lock,
     * possibly from another thread; attaching walks the source's GPollFDs,
     * so it must not run concurrently with that.
     */
    qemu_lockcnt_lock(&ctx->list_lock);
    g_source_attach(source, gctx);
    qemu_lockcnt_unlock(&ctx->list_lock);
    g_source_unref(source);

    qatomic_store_release(&iothread->worker_context, gctx);
}

/*
 * A new GMainContext for the IOThread.  The IOThread makes it its thread
 * default, and g_main_context_push_thread_default() creates GLib's global
 * default context if nobody has yet; create that here, so that GLib's
 * abort when it runs out of descriptors happens in the caller rather than
 * later in the IOThread.
 */
static GMainContext *iothread_new_gcontext(void)
{
    g_main_context_default();
    return g_main_context_new();
}

/* Can we get one more eventfd right now? */
static bool iothread_fd_available(Error **errp)
{
    int fd = eventfd(0, EFD_CLOEXEC);

    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create the IOThread's "
                         "GMainContext");
        return false;
    }
    close(fd);
    return true;
}

/*
 * GLib aborts when a new GMainContext cannot get its wake-up eventfd.  Try
 * for the descriptors iothread_new_gcontext() needs first, so that running
 * out of them is an Error.  Only a check: another thread could take the
 * last descriptor in between.
 */
static bool iothread_gcontext_possible(Error **errp)
{
    if (!iothread_fd_available(errp)) {
        return false;
    }
    /* GLib's default context is global and created once: no leak. */
    g_main_context_default();
    return iothread_fd_available(errp);
}

GMainContext *iothread_get_g_main_context(IOThread *iothread)
{
    GMainContext *gctx = qatomic_load_acquire(&iothread->worker_context);

    if (gctx) {
        return gctx;
    }

    qemu_mutex_lock(&iothread->gctx_lock);
    gctx = iothread->worker_context;
    if (!gctx) {
        gctx = iothread_new_gcontext();
        iothread_attach_gcontext(iothread, gctx);
        /* The thread may be asleep in aio_poll(): let it switch loops. */
        aio_notify(iothread->ctx);
    }
    qemu_mutex_unlock(&iothread->gctx_lock);
    return gctx;
}

/* ---- Life cycle ------------------------------------------------------ */

/* Apply @opts to @ctx; false with @errp set if one is out of range. */
static bool iothread_apply_options(AioContext *ctx,
                                   const IOThreadOptions *opts, Error **errp)
{
    ERRP_GUARD();

    if (opts->aio_max_batch < 0) {
        error_setg(errp, "aio_max_batch %" PRId64 " must be in range "
                   "[0, %" PRId64 "]", opts->aio_max_batch, INT64_MAX);
        return false;
    }
    aio_context_set_poll_params(ctx, opts->poll_max_ns, opts->poll_grow,
                                opts->poll_shrink, errp);
    if (*errp) {
        return false;
    }
    aio_context_set_thread_pool_params(ctx, opts->thread_pool_min,
                                       opts->thread_pool_max, errp);
    if (*errp) {
        return false;
    }
    aio_context_set_aio_params(ctx, opts->aio_max_batch);
    return true;
}

static IOThread *iothread_find_locked(const char *name)
{
    IOThread *iothread;

    QLIST_FOREACH(iothread, &iothreads, next) {
        if (!strcmp(iothread->name, name)) {
            return iothread;
        }
    }
    return NULL;
}

/* Add @iothread to the registry unless its name is taken. */
static bool iothread_register(IOThread *iothread, Error **errp)
{
    bool ok;

    g_mutex_lock(&iothreads_lock);
    ok = !iothread_find_locked(iothread->name);
    if (ok) {
        QLIST_INSERT_HEAD(&iothreads, iothread, next);
    }
    g_mutex_unlock(&iothreads_lock);

    if (!ok) {
        error_setg(errp, "an IOThread named '%s' already exists",
                   iothread->name);
    }
    return ok;
}

/* Free @iothread and what it owns; its thread has exited or never ran. */
static void iothread_free(IOThread *iothread)
{
    GMainContext *gctx = iothread->worker_context;

    if (gctx) {
        /*
         * Detach the AioContext explicitly: a user may hold a reference to
         * the GMainContext, which must not keep the AioContext attached.
         */
        g_source_destroy(&iothread->ctx->source);
        g_main_context_unref(gctx);
    }
    if (iothread->ctx) {
        aio_context_unref(iothread->ctx);
    }
    qemu_mutex_destroy(&iothread->stop_lock);
    qemu_mutex_destroy(&iothread->gctx_lock);
    qemu_sem_destroy(&iothread->init_done);
    g_free(iothread->name);
    g_free(iothread);
}

IOThread *iothread_create_full(const char *name, const IOThreadOptions *opts,
                               Error **errp)
{
    IOThreadOptions defaults = IOTHREAD_OPTIONS_DEFAULT;
    g_autofree char *thread_name = NULL;
    IOThread *iothread;

    if (!name || !*name) {
        error_setg(errp, "an IOThread needs a non-empty name");
        return NULL;
    }
    if (!opts) {
        opts = &defaults;
    }

    iothread = g_new0(IOThread, 1);
    iothread->name = g_strdup(name);
    iothread->thread_id = -1;
    iothread->running = true;
    qemu_sem_init(&iothread->init_done, 0);
    qemu_mutex_init(&iothread->gctx_lock);
    qemu_mutex_init(&iothread->stop_lock);

    iothread->ctx = aio_context_new(errp);
    if (!iothread->ctx) {
        goto fail;
    }
    if (!iothread_apply_options(iothread->ctx, opts, errp)) {
        goto fail;
    }
    if (opts->run_gcontext) {
        if (!iothread_gcontext_possible(errp)) {
            goto fail;
        }
        /* Nobody else knows the context yet: no locking needed. */
        iothread_attach_gcontext(iothread, iothread_new_gcontext());
    }
    if (!iothread_register(iothread, errp)) {
        goto fail;
    }

    /* QEMU names its IOThreads' threads the same way. */
    thread_name = g_strdup_printf("IO %s", name);
    qemu_thread_create(&iothread->thread, thread_name, iothread_run,
                       iothread, QEMU_THREAD_JOINABLE);
    qemu_sem_wait(&iothread->init_done);
    return iothread;

fail:
    iothread_free(iothread);
    return NULL;
}

IOThread *iothread_create(const char *name, Error **errp)
{
    return iothread_create_full(name, NULL, errp);
}

void iothread_stop(IOThread *iothread)
{
    iothread_assert_not_self(iothread, __func__);

    qemu_mutex_lock(&iothread->stop_lock);
    if (!iothread->joined) {
        /*
         * Behind every BH already queued: those run before the loop ends,
         * since one aio_bh_poll() runs everything queued when it starts.
         */
        aio_bh_schedule_oneshot(iothread->ctx, iothread_stop_bh, iothread);
        qemu_thread_join(&iothread->thread);
        iothread->joined = true;
    }
    qemu_mutex_unlock(&iothread->stop_lock);
}

void iothread_destroy(IOThread *iothread)
{
    if (!iothread) {
        return;
    }
    iothread_assert_not_self(iothread, __func__);
    iothread_stop(iothread);

    g_mutex_lock(&iothreads_lock);
    QLIST_REMOVE(iothread, next);
    g_mutex_unlock(&iothreads_lock);

    iothread_free(iothread);
}

/* ---- Accessors ------------------------------------------------------- */

AioContext *iothread_get_aio_context(IOThread *iothread)
{
    return iothread->ctx;
}

const char *iothread_get_name(IOThread *iothread)
{
    return iothread->name;
}

int iothread_get_thread_id(IOThread *iothread)
{
    return iothread->thread_id;
}

IOThread *iothread_by_name(const char *name)
{
    IOThread *iothread;

    if (!name) {
        return NULL;
    }
    g_mutex_lock(&iothreads_lock);
    iothread = iothread_find_locked(name);
    g_mutex_unlock(&iothreads_lock);
    return iothread;
}
