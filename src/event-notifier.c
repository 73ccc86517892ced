/*
 * event-notifier.c: EventNotifier, a level-triggered wake-up flag backed by
 * an eventfd, or by a non-blocking pipe where eventfd is missing
 * (qemu/event_notifier.h).
 *
 * Threading: event_notifier_set may be called from any thread and from
 * signal handlers (it makes one write(2) and keeps errno intact).
 * test_and_clear belongs to the thread that polls the read fd; init,
 * init_fd and cleanup must not race with anything else on the notifier.
 *
 * Backend: an eventfd has rfd == wfd and counts writes of 8-byte values;
 * the pipe has two fds and holds one byte per set.  Both are non-blocking,
 * so a set on a full pipe (or a saturated eventfd counter) fails with
 * EAGAIN, which only means "already set" and counts as success.  Setting
 * QAIO_EVENT_NOTIFIER=pipe in the environment forces the pipe, so that
 * tests can cover it on hosts that have eventfd.
 */
#include "qemu/osdep.h"
#include "qemu/event_notifier.h"

#ifdef CONFIG_LINUX
#include <sys/eventfd.h>
#endif

static bool force_pipe(void)
{
    const char *mode = getenv("QAIO_EVENT_NOTIFIER");

    return mode && strcmp(mode, "pipe") == 0;
}

/* Returns 0 or -errno; both ends are non-blocking and close-on-exec. */
static int make_pipe(int fds[2])
{
#ifdef CONFIG_LINUX
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        return -errno;
    }
#else
    int i;

    if (pipe(fds) < 0) {
        return -errno;
    }
    for (i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0 ||
            fcntl(fds[i], F_SETFL, O_NONBLOCK) < 0) {
            int err = -errno;

            close(fds[0]);
            close(fds[1]);
            return err;
        }
    }
#endif
    return 0;
}

int event_notifier_init(EventNotifier *e, int active)
{
    int fds[2];
    int ret;

    e->rfd = e->wfd = -1;
    e->initialized = false;

#ifdef CONFIG_LINUX
    if (!force_pipe()) {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

        if (fd >= 0) {
            e->rfd = e->wfd = fd;
        }
        /* On failure try a pipe: if fds are short it fails the same way. */
    }
#else
    (void)force_pipe;
#endif
    if (e->rfd < 0) {
        ret = make_pipe(fds);
        if (ret < 0) {
            return ret;
        }
        e->rfd = fds[0];
        e->wfd = fds[1];
    }
    e->initialized = true;

    if (active) {
        ret = event_notifier_set(e);
        if (ret < 0) {
            event_notifier_cleanup(e);
            return ret;
        }
    }
    return 0;
}

void event_notifier_init_fd(EventNotifier *e, int fd)
{
    e->rfd = fd;
    e->wfd = fd;
    e->initialized = true;
}

void event_notifier_cleanup(EventNotifier *e)
{
    if (!e->initialized) {
        return;
    }
    if (e->rfd != e->wfd) {
        close(e->wfd);
    }
    close(e->rfd);
    e->rfd = e->wfd = -1;
    e->initialized = false;
}

int event_notifier_get_fd(const EventNotifier *e)
{
    return e->initialized ? e->rfd : -1;
}

int event_notifier_get_wfd(const EventNotifier *e)
{
    return e->initialized ? e->wfd : -1;
}

int event_notifier_set(EventNotifier *e)
{
    static const uint64_t one = 1;
    int saved_errno = errno;
    ssize_t len;
    int ret = 0;

    if (!e->initialized) {
        return -EBADF;
    }
    /* An eventfd takes exactly 8 bytes; any write will do for a pipe. */
    len = RETRY_ON_EINTR(write(e->wfd, &one, sizeof(one)));
    if (len < 0 && errno != EAGAIN) {
        ret = -errno;
    }
    errno = saved_errno;
    return ret;
}

int event_notifier_test_and_clear(EventNotifier *e)
{
    /* Any multiple of 8 bytes: an eventfd needs 8, a pipe drains faster. */
    char buffer[512];
    int saved_errno = errno;
    bool was_set = false;
    ssize_t len;

    if (!e->initialized) {
        return 0;
    }
    /*
     * One read resets an eventfd.  A pipe may hold many sets: keep reading
     * while reads come back full, i.e. until one comes back short (empty
     * now) or fails with EAGAIN (empty already).
     */
    do {
        len = RETRY_ON_EINTR(read(e->rfd, buffer, sizeof(buffer)));
        if (len > 0) {
            was_set = true;
        }
    } while (len == sizeof(buffer));
    errno = saved_errno;
    return was_set;
}
