/*
 * fdmon-poll.c: the poll(2) fd monitor.
 *
 * Every context starts here.  wait() builds a pollfd array from the handler
 * list and calls ppoll() with a nanosecond timeout, so a timer deadline is
 * honoured without rounding to milliseconds.  Building the array costs
 * O(fds) per wait, which is why a context with many fds moves to epoll
 * (fdmon_epoll_try_upgrade(), tried from here because only here do we know
 * how many fds are watched and that we are the sole walker).
 *
 * Threading: wait() runs in the home thread as a list_lock walker; the
 * arrays live in the context's private part and are only used inside one
 * wait(), so a nested aio_poll() may reuse them.
 */
#include "qemu/osdep.h"
#include "aio-int.h"

static void fdmon_poll_update(AioContext *ctx, AioHandler *old_node,
                              AioHandler *new_node)
{
    /* Nothing to do: wait() reads the handler list afresh each time. */
}

static void fdmon_poll_reserve(AioContextPriv *priv, unsigned n)
{
    if (n <= priv->pollfds_alloc) {
        return;
    }
    priv->pollfds_alloc = MAX(n, priv->pollfds_alloc * 2);
    priv->pollfds = g_renew(GPollFD, priv->pollfds, priv->pollfds_alloc);
    priv->pollfd_nodes = g_renew(AioHandler *, priv->pollfd_nodes,
                                 priv->pollfds_alloc);
}

static int fdmon_poll_wait(AioContext *ctx, AioHandlerList *ready_list,
                           int64_t timeout)
{
    AioContextPriv *priv = aio_priv(ctx);
    AioHandler *node;
    unsigned n = 0;
    unsigned i;
    int ret;

    AIO_HANDLERS_FOREACH(node, &ctx->aio_handlers) {
        if (!node->pfd.events || aio_node_is_deleted(node)) {
            continue;
        }
        fdmon_poll_reserve(priv, n + 1);
        priv->pollfds[n] = (GPollFD){ .fd = node->pfd.fd,
                                      .events = node->pfd.events };
        priv->pollfd_nodes[n] = node;
        n++;
    }

    if (fdmon_epoll_try_upgrade(ctx, n)) {
        return aio_fdmon(ctx)->wait(ctx, ready_list, timeout);
    }

    ret = qemu_poll_ns(priv->pollfds, n, timeout);
    if (ret <= 0) {
        return 0;       /* timeout, or EINTR: the caller loops */
    }

    for (i = 0; i < n; i++) {
        int revents = priv->pollfds[i].revents;

        if (revents) {
            aio_add_ready_handler(ready_list, priv->pollfd_nodes[i], revents);
        }
    }
    return ret;
}

void fdmon_poll_cleanup(AioContext *ctx)
{
    AioContextPriv *priv = aio_priv(ctx);

    g_free(priv->pollfds);
    g_free(priv->pollfd_nodes);
    priv->pollfds = NULL;
    priv->pollfd_nodes = NULL;
    priv->pollfds_alloc = 0;
}

const FDMonOps fdmon_poll_ops = {
    .update = fdmon_poll_update,
    .wait = fdmon_poll_wait,
    .need_wait = aio_poll_disabled,
};
