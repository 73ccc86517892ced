/*
 * aio-context.c: the life of an AioContext.
 *
 * Owns creation, reference counting and finalization, the choice of fd
 * monitor (aio_context_setup is the only place that picks one), the
 * parameter setters, the per-thread current context, and the accessors of
 * the I/O engines and thread pool.
 *
 * The default fd monitor is poll(2), moving to epoll at 64 fds (what QEMU
 * does without io_uring); io_uring only when QAIO_FDMON=io_uring asks.
 * Measured with bench/'s workloads as CPU time per event or round trip,
 * each run paired with a bare epoll_wait() loop in the same process and
 * runs alternated: on sockets-100/1000/10000 (100 active) epoll costs
 * 1.01-1.03x that loop and io_uring 0.95-0.98x with its deferred task
 * work, 1.10-1.17x without (kernels before 6.1, sanitizers); with one
 * active socket of 100 or 1,000, epoll 0.97-1.04x and io_uring 1.10-1.23x,
 * since each wait that finds an fd costs io_uring an io_uring_enter() and
 * the poll(2) that keeps its multishot requests level-triggered, where
 * epoll needs one epoll_wait(); on pingpong (two fds, woken through the
 * eventfd) poll(2) and io_uring are level, each a few percent ahead in
 * some runs.  io_uring's few percent when a hundred fds are ready at once
 * do not pay for its loss when one is, nor for a ring per context that
 * must move to poll(2) when GLib or another thread takes the context over.
 *
 * Threading: aio_context_new/ref/unref and the setters may be called from
 * any thread.  Finalization runs in whichever thread drops the last
 * reference; by then nobody else may use the context.
 */
#include "qemu/osdep.h"
#include "aio-int.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qaio/fdmon.h"
#include "qaio/qaio.h"
#include "block/thread-pool.h"
#include "block/raw-aio.h"

static void aio_timerlist_notify(void *opaque, QEMUClockType type)
{
    aio_notify(opaque);
}

/*
 * Pick the fd monitor (see the top of the file for why this default).
 * QAIO_FDMON=poll|epoll|io_uring forces one; otherwise start on poll(2)
 * and let fdmon-poll move to epoll when the fd count grows.  A forced
 * io_uring that cannot be had warns once and takes the default.
 */
void aio_context_setup(AioContext *ctx)
{
    AioContextPriv *priv = aio_priv(ctx);
    const char *want = g_getenv("QAIO_FDMON");
    bool want_io_uring = want && !strcmp(want, "io_uring");
    int ret;

    qatomic_set(&ctx->fdmon_ops, &fdmon_poll_ops);
    ctx->epollfd = -1;

    if (want && !strcmp(want, "poll")) {
        priv->fdmon_forced = true;
        return;
    }

    if (want && !strcmp(want, "epoll")) {
        fdmon_epoll_setup(ctx);
        priv->fdmon_forced = true;
        if (ctx->epollfd >= 0) {
            qatomic_set(&ctx->fdmon_ops, &fdmon_epoll_ops);
        }
        return;
    }
    if (want && *want && !want_io_uring) {
        warn_report_once("QAIO_FDMON=%s is not a known fd monitor "
                         "(poll, epoll, io_uring); using the default", want);
    }

    if (want_io_uring) {
        /* No epoll fd for now: fdmon-io-uring makes one if it leaves. */
        ret = fdmon_io_uring_setup(ctx);
        if (ret == 0) {
            return;
        }
        warn_report_once("QAIO_FDMON=io_uring: cannot create an io_uring "
                         "(%s); using the default", strerror(-ret));
    }
    fdmon_epoll_setup(ctx);
}

void aio_context_destroy(AioContext *ctx)
{
    fdmon_io_uring_destroy(ctx);
    if (ctx->epollfd >= 0) {
        close(ctx->epollfd);
        ctx->epollfd = -1;
    }
    fdmon_poll_cleanup(ctx);
}

const char *qaio_fdmon_name(AioContext *ctx)
{
    const FDMonOps *ops = aio_fdmon(ctx);

    if (ops == &fdmon_epoll_ops) {
        return "epoll";
    }
#ifdef CONFIG_LINUX_IO_URING
    if (ops == &fdmon_io_uring_ops) {
        return "io_uring";
    }
#endif
    return "poll";
}

AioContext *aio_context_new(Error **errp)
{
    AioContext *ctx;
    int ret;

    /* g_source_new() zeroes the whole allocation, private part included. */
    ctx = (AioContext *)g_source_new(&aio_source_funcs,
                                     sizeof(AioContextPriv));
    ctx->epollfd = -1;
    QSLIST_INIT(&ctx->bh_list);
    QSIMPLEQ_INIT(&ctx->bh_slice_list);
    QLIST_INIT(&ctx->aio_handlers);
    QLIST_INIT(&ctx->deleted_aio_handlers);
    QLIST_INIT(&ctx->poll_aio_handlers);
    QSLIST_INIT(&ctx->scheduled_coroutines);
    aio_co_schedule_init(ctx);
    qemu_lockcnt_init(&ctx->list_lock);
    aio_priv(ctx)->fd_handlers = g_hash_table_new(NULL, NULL);
    qemu_rec_mutex_init(&ctx->lock);
    timerlistgroup_init(&ctx->tlg, aio_timerlist_notify, ctx);
    ctx->thread_pool_min = 0;
    ctx->thread_pool_max = THREAD_POOL_MAX_THREADS_DEFAULT;

    ret = event_notifier_init(&ctx->notifier, false);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to initialize event notifier");
        goto fail;
    }
    g_source_set_can_recurse(&ctx->source, true);

    aio_context_setup(ctx);
    aio_context_notifier_register(ctx);
    register_aiocontext(ctx);
    return ctx;

fail:
    g_source_unref(&ctx->source);
    return NULL;
}

void aio_context_ref(AioContext *ctx)
{
    g_source_ref(&ctx->source);
}

/*
 * GLib counts references with atomics ThreadSanitizer cannot see (GLib is
 * not instrumented), so it would take the free in the thread that drops
 * the last reference for a race with the last use in another thread.
 * Every unref releases, finalization acquires.
 */
void aio_context_unref(AioContext *ctx)
{
    qaio_tsan_release(ctx);
    g_source_unref(&ctx->source);
}

static void aio_context_free_engines(AioContext *ctx);

/* GSource finalize(): also the error path of aio_context_new(). */
void aio_ctx_finalize(GSource *source)
{
    AioContext *ctx = (AioContext *)source;

    qaio_tsan_acquire(ctx);         /* pairs with aio_context_unref() */
    aio_context_free_engines(ctx);
    aio_co_schedule_cleanup(ctx);
    aio_bh_list_free_all(ctx);

    if (ctx->notifier.initialized) {
        aio_set_event_notifier(ctx, &ctx->notifier, NULL, NULL, NULL);
        event_notifier_cleanup(&ctx->notifier);
    }
    aio_free_all_handlers(ctx);
    g_hash_table_destroy(aio_priv(ctx)->fd_handlers);

    timerlistgroup_deinit(&ctx->tlg);
    qemu_rec_mutex_destroy(&ctx->lock);
    qemu_lockcnt_destroy(&ctx->list_lock);
    if (ctx->bdrv_graph) {
        unregister_aiocontext(ctx);
    }
    aio_context_destroy(ctx);
}

/* ---- Current context of a thread ----------------------------------- */

static QAIO_THREAD_LOCAL AioContext *my_aiocontext;

AioContext *qemu_get_current_aio_context(void)
{
    if (my_aiocontext) {
        return my_aiocontext;
    }
    if (bql_locked()) {
        /* The BQL holder may act for the main loop. */
        return qemu_get_aio_context();
    }
    return NULL;
}

void qemu_set_current_aio_context(AioContext *ctx)
{
    if (my_aiocontext) {
        error_report("qemu_set_current_aio_context: this thread already "
                     "runs AioContext %p; a thread runs one context for "
                     "its whole life", (void *)my_aiocontext);
        abort();
    }
    my_aiocontext = ctx;
}

/* ---- Parameters ----------------------------------------------------- */

void aio_context_set_aio_params(AioContext *ctx, int64_t max_batch)
{
    if (max_batch < 0) {
        warn_report("aio_context_set_aio_params: ignoring negative "
                    "max_batch %" PRId64, max_batch);
        return;
    }
    qatomic_set(&ctx->aio_max_batch, max_batch);
    aio_notify(ctx);
}

void aio_context_set_thread_pool_params(AioContext *ctx, int64_t min,
                                        int64_t max, Error **errp)
{
    if (min < 0 || max < 1 || min > max || max > INT_MAX) {
        error_setg(errp, "invalid thread pool size: min %" PRId64 " max %"
                   PRId64 " (need 0 <= min <= max, 1 <= max <= %d)",
                   min, max, INT_MAX);
        return;
    }
    qatomic_set(&ctx->thread_pool_min, (int)min);
    qatomic_set(&ctx->thread_pool_max, (int)max);
    if (ctx->thread_pool) {
        thread_pool_update_params(ctx->thread_pool, ctx);
    }
}

/* ---- I/O engines: one of each per context, made on first use --------- */

struct ThreadPool *aio_get_thread_pool(AioContext *ctx)
{
    if (!ctx->thread_pool) {
        /* Published for qaio_thread_pool_metrics_get() in other threads. */
        qatomic_store_release(&ctx->thread_pool, thread_pool_new(ctx));
    }
    return ctx->thread_pool;
}

struct LinuxAioState *aio_setup_linux_aio(AioContext *ctx, Error **errp)
{
#ifdef CONFIG_LINUX_AIO
    if (!ctx->linux_aio) {
        LinuxAioState *s = laio_init(errp);

        if (!s) {
            return NULL;
        }
        laio_attach_aio_context(s, ctx);
        ctx->linux_aio = s;
    }
    return ctx->linux_aio;
#else
    error_setg(errp, "Linux AIO support is not compiled into this qaio");
    return NULL;
#endif
}

struct LinuxAioState *aio_get_linux_aio(AioContext *ctx)
{
#ifdef CONFIG_LINUX_AIO
    return ctx->linux_aio;
#else
    return NULL;
#endif
}

LuringState *aio_setup_linux_io_uring(AioContext *ctx, Error **errp)
{
#ifdef CONFIG_LINUX_IO_URING
    if (!ctx->linux_io_uring) {
        LuringState *s = luring_init(errp);

        if (!s) {
            return NULL;
        }
        luring_attach_aio_context(s, ctx);
        ctx->linux_io_uring = s;
    }
    return ctx->linux_io_uring;
#else
    error_setg(errp, "io_uring support is not compiled into this qaio");
    return NULL;
#endif
}

LuringState *aio_get_linux_io_uring(AioContext *ctx)
{
#ifdef CONFIG_LINUX_IO_URING
    return ctx->linux_io_uring;
#else
    return NULL;
#endif
}

/*
 * The engines go first when a context is destroyed: their completions are
 * BHs and fd handlers of the context, which must still exist while the
 * engines drain.
 */
static void aio_context_free_engines(AioContext *ctx)
{
    thread_pool_free(ctx->thread_pool);
    ctx->thread_pool = NULL;
#ifdef CONFIG_LINUX_AIO
    if (ctx->linux_aio) {
        laio_detach_aio_context(ctx->linux_aio, ctx);
        laio_cleanup(ctx->linux_aio);
        ctx->linux_aio = NULL;
    }
#endif
#ifdef CONFIG_LINUX_IO_URING
    if (ctx->linux_io_uring) {
        luring_detach_aio_context(ctx->linux_io_uring, ctx);
        luring_cleanup(ctx->linux_io_uring);
        ctx->linux_io_uring = NULL;
    }
#endif
}

/* ---- Build information (qaio/qaio.h) -------------------------------- */

const char *qaio_version(void)
{
    return QAIO_VERSION;
}

size_t qaio_sizeof_aio_context(void)
{
    return sizeof(AioContext);
}

size_t qaio_offsetof_aio_context_fdmon_ops(void)
{
    return offsetof(AioContext, fdmon_ops);
}
