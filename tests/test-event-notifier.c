/*
 * test-event-notifier.c: EventNotifier (qemu/event_notifier.h).
 *
 * Every backend-dependent case runs twice from the same code, under
 * /event-notifier/eventfd/ and /event-notifier/pipe/; the pipe runs are
 * forced with QAIO_EVENT_NOTIFIER=pipe around event_notifier_init, and each
 * init checks it got the backend it asked for.
 */
#include "qemu/osdep.h"
#include "qemu/event_notifier.h"
#include "qemu/thread.h"
#include <sys/eventfd.h>
#include <sys/resource.h>

static bool is_pipe_mode(const void *mode)
{
    return strcmp(mode, "pipe") == 0;
}

static void assert_fd_flags(int fd)
{
    g_assert_cmpint(fcntl(fd, F_GETFL) & O_NONBLOCK, ==, O_NONBLOCK);
    g_assert_cmpint(fcntl(fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
}

/* What /proc says fd @fd is: "anon_inode:[eventfd]", "pipe:[1234]"... */
static char *fd_kind(int fd)
{
    g_autofree char *link = g_strdup_printf("/proc/self/fd/%d", fd);

    return g_file_read_link(link, NULL);
}

static int notifier_init(EventNotifier *e, int active, const void *mode)
{
    int ret;

    if (is_pipe_mode(mode)) {
        g_setenv("QAIO_EVENT_NOTIFIER", "pipe", TRUE);
    } else {
        g_unsetenv("QAIO_EVENT_NOTIFIER");
    }
    ret = event_notifier_init(e, active);
    g_unsetenv("QAIO_EVENT_NOTIFIER");
    return ret;
}

static void init_checked(EventNotifier *e, int active, const void *mode)
{
    int rfd, wfd;
    g_autofree char *rkind = NULL;
    g_autofree char *wkind = NULL;

    g_assert_cmpint(notifier_init(e, active, mode), ==, 0);
    rfd = event_notifier_get_fd(e);
    wfd = event_notifier_get_wfd(e);
    g_assert_cmpint(rfd, >=, 0);
    g_assert_cmpint(wfd, >=, 0);
    assert_fd_flags(rfd);
    assert_fd_flags(wfd);
    rkind = fd_kind(rfd);
    wkind = fd_kind(wfd);
    if (is_pipe_mode(mode)) {
        g_assert_cmpint(rfd, !=, wfd);
        g_assert_true(g_str_has_prefix(rkind, "pipe:"));
        g_assert_true(g_str_has_prefix(wkind, "pipe:"));
    } else {
        g_assert_cmpint(rfd, ==, wfd);
        g_assert_cmpstr(rkind, ==, "anon_inode:[eventfd]");
    }
}

static bool readable(EventNotifier *e)
{
    struct pollfd pfd = { .fd = event_notifier_get_fd(e), .events = POLLIN };
    int ret = poll(&pfd, 1, 0);

    g_assert_cmpint(ret, >=, 0);
    return ret == 1 && (pfd.revents & POLLIN);
}

static void assert_closed(int fd)
{
    errno = 0;
    g_assert_cmpint(fcntl(fd, F_GETFD), ==, -1);
    g_assert_cmpint(errno, ==, EBADF);
}

static void test_init_inactive(const void *mode)
{
    EventNotifier e;

    init_checked(&e, false, mode);
    g_assert_false(readable(&e));
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 0);
    event_notifier_cleanup(&e);
}

static void test_init_active(const void *mode)
{
    EventNotifier e;

    init_checked(&e, true, mode);
    g_assert_true(readable(&e));
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 1);
    g_assert_false(readable(&e));
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 0);
    event_notifier_cleanup(&e);
}

static void test_set_and_clear(const void *mode)
{
    EventNotifier e;
    int i;

    init_checked(&e, false, mode);
    for (i = 0; i < 3; i++) {
        g_assert_cmpint(event_notifier_set(&e), ==, 0);
        g_assert_true(readable(&e));
        g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 1);
        g_assert_false(readable(&e));
        g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 0);
    }
    event_notifier_cleanup(&e);
}

/* More sets than a 64 KiB pipe holds: the rest find it full (EAGAIN). */
#define MANY_SETS 100000

static void test_many_sets_one_clear(const void *mode)
{
    EventNotifier e;
    int i;

    init_checked(&e, false, mode);
    for (i = 0; i < MANY_SETS; i++) {
        g_assert_cmpint(event_notifier_set(&e), ==, 0);
    }
    g_assert_true(readable(&e));
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 1);
    g_assert_false(readable(&e));
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 0);
    event_notifier_cleanup(&e);
}

static void test_cleanup_idempotent(const void *mode)
{
    EventNotifier e;
    int rfd, wfd, spare;

    init_checked(&e, true, mode);
    rfd = event_notifier_get_fd(&e);
    wfd = event_notifier_get_wfd(&e);
    event_notifier_cleanup(&e);
    assert_closed(rfd);
    assert_closed(wfd);
    g_assert_cmpint(event_notifier_get_fd(&e), ==, -1);
    g_assert_cmpint(event_notifier_get_wfd(&e), ==, -1);
    g_assert_cmpint(event_notifier_set(&e), ==, -EBADF);
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 0);

    /* A second cleanup must not close whatever reuses those numbers. */
    spare = eventfd(0, EFD_CLOEXEC);
    g_assert_cmpint(spare, >=, 0);
    g_assert_cmpint(dup2(spare, rfd), ==, rfd);
    g_assert_cmpint(dup2(spare, wfd), ==, wfd);
    event_notifier_cleanup(&e);
    g_assert_cmpint(fcntl(rfd, F_GETFD), >=, 0);
    g_assert_cmpint(fcntl(wfd, F_GETFD), >=, 0);
    close(rfd);
    if (wfd != rfd) {
        close(wfd);
    }
    close(spare);
}

static void test_init_fails_with_errno(const void *mode)
{
    if (g_test_subprocess()) {
        EventNotifier e;
        struct rlimit old, low;
        int lowest = dup(0);
        int ret;

        g_assert_cmpint(lowest, >=, 0);
        close(lowest);
        g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &old), ==, 0);
        /* No new descriptor can be had. */
        low = old;
        low.rlim_cur = lowest;
        g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
        ret = notifier_init(&e, true, mode);
        g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);
        g_assert_cmpint(ret, ==, -EMFILE);
        g_assert_cmpint(event_notifier_get_fd(&e), ==, -1);
        event_notifier_cleanup(&e);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
}

/* Two notifiers bounced between two threads, each side blocking in poll */

#define BOUNCES 10000

typedef struct Bounce {
    EventNotifier to_thread, to_main;
    unsigned count;     /* written by the thread only */
} Bounce;

static void wait_and_clear(EventNotifier *e)
{
    struct pollfd pfd = { .fd = event_notifier_get_fd(e), .events = POLLIN };

    g_assert_cmpint(RETRY_ON_EINTR(poll(&pfd, 1, -1)), ==, 1);
    g_assert_cmpint(event_notifier_test_and_clear(e), ==, 1);
}

static void *bounce_thread(void *opaque)
{
    Bounce *b = opaque;
    int i;

    for (i = 0; i < BOUNCES; i++) {
        wait_and_clear(&b->to_thread);
        b->count++;
        g_assert_cmpint(event_notifier_set(&b->to_main), ==, 0);
    }
    return NULL;
}

static void test_cross_thread(const void *mode)
{
    Bounce b = { .count = 0 };
    QemuThread thread;
    int i;

    init_checked(&b.to_thread, false, mode);
    init_checked(&b.to_main, false, mode);
    qemu_thread_create(&thread, "bounce", bounce_thread, &b,
                       QEMU_THREAD_JOINABLE);
    for (i = 0; i < BOUNCES; i++) {
        g_assert_cmpint(event_notifier_set(&b.to_thread), ==, 0);
        wait_and_clear(&b.to_main);
    }
    qemu_thread_join(&thread);
    g_assert_cmpuint(b.count, ==, BOUNCES);
    g_assert_false(readable(&b.to_thread));
    g_assert_false(readable(&b.to_main));
    event_notifier_cleanup(&b.to_thread);
    event_notifier_cleanup(&b.to_main);
}

static void test_uninitialized(void)
{
    EventNotifier e = { .rfd = 5, .wfd = 5, .initialized = false };

    g_assert_cmpint(event_notifier_get_fd(&e), ==, -1);
    g_assert_cmpint(event_notifier_get_wfd(&e), ==, -1);
    g_assert_cmpint(event_notifier_set(&e), ==, -EBADF);
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 0);
    event_notifier_cleanup(&e);
}

static void test_init_fd(void)
{
    EventNotifier e;
    uint64_t value = 0;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    event_notifier_init_fd(&e, fd);
    g_assert_cmpint(event_notifier_get_fd(&e), ==, fd);
    g_assert_cmpint(event_notifier_get_wfd(&e), ==, fd);

    /* A set is one eventfd increment. */
    g_assert_cmpint(event_notifier_set(&e), ==, 0);
    g_assert_cmpint(read(fd, &value, sizeof(value)), ==, sizeof(value));
    g_assert_cmpuint(value, ==, 1);

    g_assert_cmpint(event_notifier_set(&e), ==, 0);
    g_assert_cmpint(event_notifier_set(&e), ==, 0);
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 1);
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 0);

    /* The notifier owns the fd now. */
    event_notifier_cleanup(&e);
    assert_closed(fd);
}

static void test_set_keeps_errno(const void *mode)
{
    EventNotifier e;
    int i;

    init_checked(&e, false, mode);
    /* Fill it, so that later sets fail with EAGAIN inside. */
    for (i = 0; i < MANY_SETS; i++) {
        event_notifier_set(&e);
    }
    errno = ENOTTY;
    g_assert_cmpint(event_notifier_set(&e), ==, 0);
    g_assert_cmpint(errno, ==, ENOTTY);
    g_assert_cmpint(event_notifier_test_and_clear(&e), ==, 1);
    g_assert_cmpint(errno, ==, ENOTTY);
    event_notifier_cleanup(&e);
}

static void add_mode_test(const char *mode, const char *name,
                          GTestDataFunc fn)
{
    g_autofree char *path = g_strdup_printf("/event-notifier/%s/%s",
                                            mode, name);

    g_test_add_data_func(path, mode, fn);
}

int main(int argc, char **argv)
{
    static const char *const modes[] = { "eventfd", "pipe" };
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < ARRAY_SIZE(modes); i++) {
        add_mode_test(modes[i], "init-inactive", test_init_inactive);
        add_mode_test(modes[i], "init-active", test_init_active);
        add_mode_test(modes[i], "set-then-clear", test_set_and_clear);
        add_mode_test(modes[i], "many-sets-one-clear",
                      test_many_sets_one_clear);
        add_mode_test(modes[i], "cleanup-idempotent",
                      test_cleanup_idempotent);
        add_mode_test(modes[i], "init-fails-with-errno",
                      test_init_fails_with_errno);
        add_mode_test(modes[i], "set-keeps-errno", test_set_keeps_errno);
        add_mode_test(modes[i], "cross-thread", test_cross_thread);
    }
    g_test_add_func("/event-notifier/uninitialized", test_uninitialized);
    g_test_add_func("/event-notifier/init-fd", test_init_fd);
    return g_test_run();
}
