/*
 * co-io.c: coroutines waiting for file descriptors: yield_until_fd_readable
 * and socket I/O that yields instead of blocking (qemu_co_sendv_recvv,
 * qemu_co_send_recv).
 *
 * A waiting coroutine installs a one-shot fd handler on its thread's
 * AioContext; the handler removes itself and restarts the coroutine.  The
 * handler's state lives on the coroutine's stack, which stays valid until
 * the coroutine runs again.
 *
 * Socket calls are made with MSG_DONTWAIT, so that a socket left in
 * blocking mode cannot block the thread, and sends with MSG_NOSIGNAL, so
 * that a closed peer yields -EPIPE instead of killing the process (QEMU
 * ignores SIGPIPE process-wide; a library cannot).
 *
 * Threading: coroutine context, in a thread that runs an AioContext.
 */
#include "qemu/osdep.h"
#include "qemu/coroutine.h"
#include "qemu/error-report.h"
#include "qemu/iov.h"
#include "block/aio.h"
#include <sys/socket.h>

typedef struct FDWait {
    AioContext *ctx;
    Coroutine *co;
    int fd;
} FDWait;

static void fd_wait_ready(void *opaque)
{
    FDWait *wait = opaque;

    aio_set_fd_handler(wait->ctx, wait->fd, NULL, NULL, NULL, NULL, NULL);
    aio_co_wake(wait->co);
}

static void coroutine_fn co_wait_fd(const char *func, int fd, bool writable)
{
    FDWait wait = {
        .ctx = qemu_get_current_aio_context(),
        .co = qemu_coroutine_self(),
        .fd = fd,
    };

    if (!qemu_in_coroutine()) {
        error_report("%s(%d): called outside coroutine context", func, fd);
        abort();
    }
    if (!wait.ctx) {
        error_report("%s(%d): the calling thread runs no AioContext to "
                     "watch the fd", func, fd);
        abort();
    }
    aio_set_fd_handler(wait.ctx, fd, writable ? NULL : fd_wait_ready,
                       writable ? fd_wait_ready : NULL, NULL, NULL, &wait);
    qemu_coroutine_yield();
}

void coroutine_fn yield_until_fd_readable(int fd)
{
    co_wait_fd(__func__, fd, false);
}

/*
 * One sendmsg/recvmsg over the part of @iov from byte @offset, at most
 * @bytes long.  Returns what the call returned, or -errno.
 */
static ssize_t co_io_once(int sockfd, struct iovec *iov, unsigned iov_cnt,
                          size_t offset, size_t bytes, bool do_send)
{
    struct iovec local[64];
    struct msghdr msg = { .msg_iov = local };
    ssize_t ret;

    if (offset + bytes > iov_size(iov, iov_cnt)) {
        error_report("qemu_co_sendv_recvv: the I/O vector is shorter than "
                     "offset + bytes");
        abort();
    }
    /* One call moves at most ARRAY_SIZE(local) buffers; the caller loops. */
    msg.msg_iovlen = iov_copy(local, ARRAY_SIZE(local), iov, iov_cnt,
                              offset, bytes);

    do {
        if (do_send) {
            ret = sendmsg(sockfd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        } else {
            ret = recvmsg(sockfd, &msg, MSG_DONTWAIT);
        }
    } while (ret < 0 && errno == EINTR);
    return ret < 0 ? -errno : ret;
}

ssize_t coroutine_fn qemu_co_sendv_recvv(int sockfd, struct iovec *iov,
                                         unsigned iov_cnt, size_t offset,
                                         size_t bytes, bool do_send)
{
    size_t done = 0;

    while (done < bytes) {
        ssize_t ret = co_io_once(sockfd, iov, iov_cnt, offset + done,
                                 bytes - done, do_send);

        if (ret > 0) {
            done += ret;
        } else if (ret == -EAGAIN || ret == -EWOULDBLOCK) {
            co_wait_fd(__func__, sockfd, do_send);
        } else if (ret < 0) {
            /* Report the error only if nothing was transferred. */
            return done ? (ssize_t)done : ret;
        } else if (!do_send) {
            break;      /* end of file */
        }
    }
    return done;
}

ssize_t coroutine_fn qemu_co_send_recv(int sockfd, void *buf, size_t bytes,
                                       bool do_send)
{
    struct iovec iov = {
        .iov_base = buf,
        .iov_len = bytes,
    };

    return qemu_co_sendv_recvv(sockfd, &iov, 1, 0, bytes, do_send);
}
