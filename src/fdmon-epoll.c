/*
 * fdmon-epoll.c: the epoll(7) fd monitor.
 *
 * The kernel keeps the interest set, so wait() costs O(ready fds) instead
 * of O(fds).  A context moves here from poll(2) when it watches
 * FDMON_EPOLL_THRESHOLD fds or more (or at once with QAIO_FDMON=epoll).
 *
 * Kernel quirks that shaped it:
 *  - epoll refuses regular files (EPERM) where poll(2) reports them always
 *    ready; any epoll_ctl failure other than on removal moves the context
 *    back to poll for good.
 *  - epoll always reports EPOLLERR/EPOLLHUP, even with no events asked
 *    for; a handler with no events (io_poll only) is therefore not added,
 *    or a hung-up fd would make every wait return at once.
 *  - A closed fd leaves the interest set by itself, so EBADF/ENOENT on
 *    removal are harmless.
 *  - epoll_wait() takes milliseconds; epoll_pwait2() (Linux 5.11) takes a
 *    timespec.  Without it a positive timeout is waited with ppoll() on the
 *    epoll fd, then collected with a zero-timeout epoll_wait().
 *
 * Threading: update() runs under list_lock (any thread); wait() in the home
 * thread as a walker.  The epoll fd is only closed by aio_context_destroy(),
 * never while a wait might use it.
 */
#include "qemu/osdep.h"
#include "aio-int.h"
#include <sys/epoll.h>
#include <sys/syscall.h>

/*
 * A handler reaches wait() through the kernel (epoll_event.data.ptr), which
 * orders epoll_ctl() before the epoll_wait() that reports it.
 * ThreadSanitizer cannot see that edge, so tell it.
 */
#define fdmon_epoll_publish(node)   qaio_tsan_release(node)
#define fdmon_epoll_received(node)  qaio_tsan_acquire(node)

#define FDMON_EPOLL_THRESHOLD 64
#define FDMON_EPOLL_MAX_EVENTS 128

static uint32_t epoll_events_from_pfd(int pfd_events)
{
    return (pfd_events & G_IO_IN ? EPOLLIN : 0) |
           (pfd_events & G_IO_OUT ? EPOLLOUT : 0) |
           (pfd_events & G_IO_HUP ? EPOLLHUP : 0) |
           (pfd_events & G_IO_ERR ? EPOLLERR : 0);
}

static int pfd_events_from_epoll(uint32_t epoll_events)
{
    return (epoll_events & EPOLLIN ? G_IO_IN : 0) |
           (epoll_events & EPOLLOUT ? G_IO_OUT : 0) |
           (epoll_events & EPOLLHUP ? G_IO_HUP : 0) |
           (epoll_events & EPOLLERR ? G_IO_ERR : 0);
}

/* epoll failed: fall back to poll(2) for good.  Called under list_lock. */
void fdmon_epoll_disable(AioContext *ctx)
{
    aio_priv(ctx)->epoll_broken = true;
    qatomic_set(&ctx->fdmon_ops, &fdmon_poll_ops);
}

static void fdmon_epoll_update(AioContext *ctx, AioHandler *old_node,
                               AioHandler *new_node)
{
    bool was_watched = old_node && old_node->pfd.events;
    bool watch = new_node && new_node->pfd.events;
    struct epoll_event event = { 0 };
    int r;

    if (watch) {
        event.events = epoll_events_from_pfd(new_node->pfd.events);
        event.data.ptr = new_node;
        fdmon_epoll_publish(new_node);
        r = epoll_ctl(ctx->epollfd, was_watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                      new_node->pfd.fd, &event);
        if (r < 0) {
            fdmon_epoll_disable(ctx);
        }
    } else if (was_watched) {
        r = epoll_ctl(ctx->epollfd, EPOLL_CTL_DEL, old_node->pfd.fd, &event);
        if (r < 0 && errno != EBADF && errno != ENOENT) {
            fdmon_epoll_disable(ctx);
        }
    }
}

static int epoll_wait_ns(int epfd, struct epoll_event *events, int max,
                         int64_t timeout)
{
#ifdef SYS_epoll_pwait2
    static bool no_pwait2;

    if (timeout > 0 && !qatomic_read(&no_pwait2)) {
        struct timespec ts = {
            .tv_sec = timeout / NANOSECONDS_PER_SECOND,
            .tv_nsec = timeout % NANOSECONDS_PER_SECOND,
        };
        int ret = syscall(SYS_epoll_pwait2, epfd, events, max, &ts, NULL, 0);

        if (ret >= 0 || errno != ENOSYS) {
            return ret;
        }
        qatomic_set(&no_pwait2, true);
    }
#endif
    if (timeout > 0) {
        GPollFD pfd = { .fd = epfd, .events = G_IO_IN };
        int ret = qemu_poll_ns(&pfd, 1, timeout);

        if (ret <= 0) {
            return ret;
        }
        timeout = 0;
    }
    return epoll_wait(epfd, events, max, timeout < 0 ? -1 : 0);
}

static int fdmon_epoll_wait(AioContext *ctx, AioHandlerList *ready_list,
                            int64_t timeout)
{
    struct epoll_event events[FDMON_EPOLL_MAX_EVENTS];
    int ret;
    int i;

    ret = epoll_wait_ns(ctx->epollfd, events, FDMON_EPOLL_MAX_EVENTS, timeout);
    if (ret <= 0) {
        return 0;       /* timeout, or EINTR: the caller loops */
    }

    for (i = 0; i < ret; i++) {
        AioHandler *node = events[i].data.ptr;

        fdmon_epoll_received(node);
        aio_add_ready_handler(ready_list, node,
                              pfd_events_from_epoll(events[i].events));
    }
    return ret;
}

/* Move the context from poll to epoll.  Called by fdmon-poll's wait(). */
bool fdmon_epoll_try_upgrade(AioContext *ctx, unsigned npfd)
{
    AioContextPriv *priv = aio_priv(ctx);
    AioHandler *node;
    bool ok = true;

    if (npfd < FDMON_EPOLL_THRESHOLD || priv->fdmon_forced ||
        priv->epoll_broken || ctx->epollfd < 0) {
        return false;
    }

    /* Swap monitors only when nobody else walks the handler list. */
    if (!qemu_lockcnt_dec_if_lock(&ctx->list_lock)) {
        return false;
    }

    AIO_HANDLERS_FOREACH(node, &ctx->aio_handlers) {
        struct epoll_event event = {
            .events = epoll_events_from_pfd(node->pfd.events),
            .data.ptr = node,
        };

        if (aio_node_is_deleted(node) || !node->pfd.events) {
            continue;
        }
        fdmon_epoll_publish(node);
        if (epoll_ctl(ctx->epollfd, EPOLL_CTL_ADD, node->pfd.fd, &event) < 0) {
            ok = false;
            break;
        }
    }

    if (ok) {
        qatomic_set(&ctx->fdmon_ops, &fdmon_epoll_ops);
    } else {
        /* Nobody else can be using the epoll fd: drop it now. */
        close(ctx->epollfd);
        ctx->epollfd = -1;
        priv->epoll_broken = true;
    }

    qemu_lockcnt_inc_and_unlock(&ctx->list_lock);
    return ok;
}

/* Create the epoll fd; the context stays on poll(2) if that fails. */
void fdmon_epoll_setup(AioContext *ctx)
{
    ctx->epollfd = epoll_create1(EPOLL_CLOEXEC);
}

const FDMonOps fdmon_epoll_ops = {
    .update = fdmon_epoll_update,
    .wait = fdmon_epoll_wait,
    .need_wait = aio_poll_disabled,
};
