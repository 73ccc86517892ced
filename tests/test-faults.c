/*
 * test-faults.c: the core event loop given bad input and failing system
 * calls.
 *
 * Faults are real: descriptor exhaustion through a low RLIMIT_NOFILE, and
 * system calls made to fail with a chosen errno by a seccomp filter
 * (eventfd2/pipe2 with ENFILE, epoll_create1, epoll_ctl, and epoll_pwait2
 * with ENOSYS as on kernels before 5.11).  Each case that lowers a limit,
 * installs a filter or must abort runs in a subprocess
 * (g_test_trap_subprocess), so the process running the suite goes on.
 * Bad input: setter parameters, timer scales and far deadlines, negative,
 * closed and regular-file fds, BHs deleted twice, the BQL released
 * without being held.  Registered with 'fdmon' (QAIO_FDMON=poll, =epoll).
 *
 * What each fault does, and why that is the right outcome, is written in
 * docs/RELIABILITY.md.  Threading: single-threaded, except that IOThread
 * creation is tried.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qaio/fdmon.h"
#include "qaio/iothread.h"
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

/* ---- Helpers ------------------------------------------------------------- */

/*
 * Open descriptors, found without opening one (a directory listing would
 * need a free descriptor, and there may be none).
 */
static int count_open_fds(void)
{
    struct rlimit rl;
    int n = 0;
    int fd;

    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &rl), ==, 0);
    for (fd = 0; fd < (int)MIN(rl.rlim_cur, 65536); fd++) {
        if (fcntl(fd, F_GETFD) != -1) {
            n++;
        }
    }
    return n;
}

static int count_threads(void)
{
    g_autoptr(GDir) dir = g_dir_open("/proc/self/task", 0, NULL);
    int n = 0;

    g_assert_nonnull(dir);
    while (g_dir_read_name(dir)) {
        n++;
    }
    return n;
}

static void ctx_settle(AioContext *ctx)
{
    int i;

    for (i = 0; i < 1000 && aio_poll(ctx, false); i++) {
        /* keep going */
    }
    g_assert_false(aio_poll(ctx, false));
}

static const char *fdmon_env(void)
{
    return g_getenv("QAIO_FDMON") ?: "";
}

static AioContext *ctx_new_default_fdmon(void)
{
    char *saved = g_strdup(g_getenv("QAIO_FDMON"));
    AioContext *ctx;

    g_unsetenv("QAIO_FDMON");
    ctx = aio_context_new(&error_abort);
    if (saved) {
        g_setenv("QAIO_FDMON", saved, true);
    }
    g_free(saved);
    return ctx;
}

/* Run the current test case in a subprocess that must pass. */
static bool in_subprocess(void)
{
    if (g_test_subprocess()) {
        return true;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    return false;
}

static void bh_count_cb(void *opaque)
{
    (*(int *)opaque)++;
}

/* A fresh context does real work: a BH, an fd handler, a timer wait. */
static void efd_count_cb(void *opaque)
{
    int *fd_and_count = opaque;
    uint64_t v;

    g_assert_cmpint(read(fd_and_count[0], &v, sizeof(v)), ==, sizeof(v));
    fd_and_count[1]++;
}

static void assert_ctx_works(AioContext *ctx)
{
    QEMUTimer timer;
    int bh_runs = 0, timer_runs = 0;
    int efd[2] = { eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC), 0 };
    QEMUBH *bh = aio_bh_new(ctx, bh_count_cb, &bh_runs);

    /* May fail when descriptors are short: then skip the fd part. */
    qemu_bh_schedule(bh);
    if (efd[0] >= 0) {
        aio_set_fd_handler(ctx, efd[0], efd_count_cb, NULL, NULL, NULL, efd);
    }
    aio_timer_init(ctx, &timer, QEMU_CLOCK_REALTIME, SCALE_MS, bh_count_cb,
                   &timer_runs);
    timer_mod(&timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 2);
    while (!timer_runs) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(bh_runs, ==, 1);
    if (efd[0] >= 0) {
        g_assert_cmpint(efd[1], ==, 1);
        aio_set_fd_handler(ctx, efd[0], NULL, NULL, NULL, NULL, NULL);
        close(efd[0]);
    }
    qemu_bh_delete(bh);
    ctx_settle(ctx);
}

/* ---- Fault injection with seccomp ---------------------------------------- */

#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

typedef struct SyscallFault {
    long nr;
    int err;
} SyscallFault;

#define MAX_FAULTS 4

/*
 * From now on, in this process, make each listed system call fail with its
 * errno without running it.  Returns false (and the case skips) where that
 * is impossible: other architectures, or a seccomp-less environment such as
 * valgrind.
 */
static bool inject_syscall_faults(const SyscallFault *faults, int n)
{
#ifdef SECCOMP_ARCH
    struct sock_filter filter[4 + 2 * MAX_FAULTS + 1];
    struct sock_fprog prog = { .filter = filter };
    int len = 0;
    int i;

    g_assert_cmpint(n, <=, MAX_FAULTS);
    filter[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                    offsetof(struct seccomp_data, arch));
    filter[len++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                    SECCOMP_ARCH, 1, 0);
    filter[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                    SECCOMP_RET_ALLOW);
    filter[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                    offsetof(struct seccomp_data, nr));
    for (i = 0; i < n; i++) {
        filter[len++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ |
                        BPF_K, faults[i].nr, 0, 1);
        filter[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                        SECCOMP_RET_ERRNO | (faults[i].err & SECCOMP_RET_DATA));
    }
    filter[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                    SECCOMP_RET_ALLOW);
    prog.len = len;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        return false;
    }
    return true;
#else
    return false;
#endif
}

/* ---- Descriptor exhaustion ----------------------------------------------- */

/* Lower RLIMIT_NOFILE to 256 and take every descriptor left. */
static GArray *exhaust_fds(void)
{
    GArray *fds = g_array_new(false, false, sizeof(int));
    struct rlimit lim;

    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &lim), ==, 0);
    lim.rlim_cur = MIN(lim.rlim_max, (rlim_t)256);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &lim), ==, 0);
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
            g_assert_cmpint(errno, ==, EMFILE);
            break;
        }
        g_array_append_val(fds, fd);
    }
    return fds;
}

static void release_fds(GArray *fds, guint n)
{
    while (n-- && fds->len) {
        close(g_array_index(fds, int, fds->len - 1));
        g_array_set_size(fds, fds->len - 1);
    }
}

/*
 * With no descriptor left, aio_context_new() and iothread_create() fail
 * with an Error naming the cause and give back everything they took.
 * With one, a context works on poll(2) even where epoll was asked for (the
 * epoll fd is an optimisation); with two it gets epoll if asked.  Nothing
 * leaks either way, and the process goes on.
 */
static void test_nofile(void)
{
    g_autoptr(GArray) fds = NULL;
    Error *err = NULL;
    AioContext *ctx;
    int threads, open_fds;

    if (!in_subprocess()) {
        return;
    }
    threads = count_threads();
    fds = exhaust_fds();
    open_fds = count_open_fds();

    g_assert_null(aio_context_new(&err));
    g_assert_nonnull(err);
    g_test_message("aio_context_new: %s", error_get_pretty(err));
    g_assert_nonnull(strstr(error_get_pretty(err), g_strerror(EMFILE)));
    error_free(err);
    err = NULL;
    g_assert_cmpint(count_open_fds(), ==, open_fds);

    g_assert_null(iothread_create("starved", &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_cmpint(count_open_fds(), ==, open_fds);
    g_assert_null(iothread_by_name("starved"));

    /* One descriptor: the notifier gets it, epoll does not. */
    release_fds(fds, 1);
    g_assert_cmpint(count_threads(), ==, threads);    /* needs an fd */
    ctx = aio_context_new(&error_abort);
    g_assert_cmpint(count_open_fds(), ==, open_fds);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    assert_ctx_works(ctx);
    aio_context_unref(ctx);
    g_assert_cmpint(count_open_fds(), ==, open_fds - 1);

    /* Two: epoll too, where it is forced (a forced poll needs none). */
    release_fds(fds, 1);
    ctx = aio_context_new(&error_abort);
    g_assert_cmpint(count_open_fds(), ==,
                    open_fds - !strcmp(fdmon_env(), "poll"));
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==,
                    !strcmp(fdmon_env(), "epoll") ? "epoll" : "poll");
    assert_ctx_works(ctx);
    aio_context_unref(ctx);
    g_assert_cmpint(count_open_fds(), ==, open_fds - 2);

    release_fds(fds, fds->len);
    ctx = aio_context_new(&error_abort);
    assert_ctx_works(ctx);
    aio_context_unref(ctx);
}

/*
 * The system-wide file table is full (ENFILE): eventfd and its pipe
 * fallback both fail.  aio_context_new() and iothread_create() report it
 * and leak nothing; a context made before keeps working.
 */
static void test_enfile(void)
{
    static const SyscallFault faults[] = {
        { __NR_eventfd2, ENFILE },
        { __NR_pipe2, ENFILE },
    };
    AioContext *before_ctx, *ctx;
    Error *err = NULL;
    int threads, open_fds;

    if (!in_subprocess()) {
        return;
    }
    before_ctx = aio_context_new(&error_abort);
    threads = count_threads();
    if (!inject_syscall_faults(faults, G_N_ELEMENTS(faults))) {
        g_test_skip("seccomp filters are not available");
        aio_context_unref(before_ctx);
        return;
    }
    open_fds = count_open_fds();

    ctx = aio_context_new(&err);
    g_assert_null(ctx);
    g_assert_nonnull(err);
    g_test_message("aio_context_new: %s", error_get_pretty(err));
    g_assert_nonnull(strstr(error_get_pretty(err), g_strerror(ENFILE)));
    error_free(err);
    err = NULL;

    g_assert_null(iothread_create("no-file-table", &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(error_get_pretty(err), g_strerror(ENFILE)));
    error_free(err);
    g_assert_cmpint(count_open_fds(), ==, open_fds);
    g_assert_cmpint(count_threads(), ==, threads);

    assert_ctx_works(before_ctx);
    aio_context_unref(before_ctx);
}

/* ---- epoll failing ------------------------------------------------------- */

#define MANY_FDS 70

typedef struct Many {
    int fds[MANY_FDS][2];
    int runs[MANY_FDS];
} Many;

static void many_cb(void *opaque)
{
    (*(int *)opaque)++;
}

/* MANY_FDS readable pipes: every handler runs in one poll. */
static void many_run(AioContext *ctx, Many *m)
{
    int i;

    for (i = 0; i < MANY_FDS; i++) {
        g_assert_cmpint(pipe2(m->fds[i], O_NONBLOCK | O_CLOEXEC), ==, 0);
        g_assert_cmpint(write(m->fds[i][1], "x", 1), ==, 1);
        m->runs[i] = 0;
        aio_set_fd_handler(ctx, m->fds[i][0], many_cb, NULL, NULL, NULL,
                           &m->runs[i]);
    }
    aio_poll(ctx, false);
    g_assert_true(aio_poll(ctx, true));
    for (i = 0; i < MANY_FDS; i++) {
        g_assert_cmpint(m->runs[i], >=, 1);
        aio_set_fd_handler(ctx, m->fds[i][0], NULL, NULL, NULL, NULL, NULL);
        close(m->fds[i][0]);
        close(m->fds[i][1]);
    }
}

/*
 * epoll_create1 fails: every context stays on poll(2), forced or not,
 * and still serves many fds.
 */
static void test_epoll_create_fails(void)
{
    static const SyscallFault faults[] = { { __NR_epoll_create1, EMFILE } };
    Many m;
    AioContext *ctx;

    if (!in_subprocess()) {
        return;
    }
    if (!inject_syscall_faults(faults, G_N_ELEMENTS(faults))) {
        g_test_skip("seccomp filters are not available");
        return;
    }
    ctx = aio_context_new(&error_abort);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    assert_ctx_works(ctx);
    aio_context_unref(ctx);

    ctx = ctx_new_default_fdmon();
    many_run(ctx, &m);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/*
 * epoll_ctl fails (ENOMEM): a context forced onto epoll falls back to
 * poll(2) as soon as it registers its own notifier; one moving to epoll at
 * 64 fds gives up, closes its epoll fd and stays on poll.  No handler is
 * lost either way.
 */
static void test_epoll_ctl_fails(void)
{
    static const SyscallFault faults[] = { { __NR_epoll_ctl, ENOMEM } };
    Many m;
    AioContext *ctx;
    int open_fds;

    if (!in_subprocess()) {
        return;
    }
    if (!inject_syscall_faults(faults, G_N_ELEMENTS(faults))) {
        g_test_skip("seccomp filters are not available");
        return;
    }
    ctx = aio_context_new(&error_abort);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    assert_ctx_works(ctx);
    aio_context_unref(ctx);

    ctx = ctx_new_default_fdmon();
    open_fds = count_open_fds();
    many_run(ctx, &m);
    ctx_settle(ctx);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    /* The useless epoll fd is gone. */
    g_assert_cmpint(count_open_fds(), ==, open_fds - 1);
    assert_ctx_works(ctx);
    aio_context_unref(ctx);
}

typedef struct EarlyTimer {
    QEMUTimer timer;
    int64_t deadline;
    bool fired;
} EarlyTimer;

static void early_timer_cb(void *opaque)
{
    EarlyTimer *et = opaque;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    if (now < et->deadline) {
        g_error("timer fired %" PRId64 " ns early", et->deadline - now);
    }
    et->fired = true;
}

/*
 * No epoll_pwait2 (ENOSYS, as before Linux 5.11): the epoll monitor waits
 * with ppoll() on the epoll fd, then collects with epoll_wait(0).  Timers
 * at +0.5, +1.5 and +20 ms still never fire early, and each wait ends with
 * a timer run: no millisecond rounding.
 */
static void test_epoll_no_pwait2(void)
{
    static const SyscallFault faults[] = {
        { __NR_epoll_pwait2, ENOSYS },
    };
    static const int64_t offsets_us[] = { 500, 1500, 20000 };
    EarlyTimer et[3];
    AioContext *ctx;
    int round, i, waits;

    if (!in_subprocess()) {
        return;
    }
    if (!inject_syscall_faults(faults, G_N_ELEMENTS(faults))) {
        g_test_skip("seccomp filters are not available");
        return;
    }
    ctx = aio_context_new(&error_abort);
    for (i = 0; i < 3; i++) {
        aio_timer_init(ctx, &et[i].timer, QEMU_CLOCK_REALTIME, SCALE_NS,
                       early_timer_cb, &et[i]);
    }
    for (round = 0; round < 10; round++) {
        int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

        for (i = 0; i < 3; i++) {
            et[i].deadline = now + offsets_us[i] * SCALE_US;
            et[i].fired = false;
            timer_mod_ns(&et[i].timer, et[i].deadline);
        }
        aio_poll(ctx, false);
        for (waits = 0; !(et[0].fired && et[1].fired && et[2].fired);
             waits++) {
            if (!aio_poll(ctx, true)) {
                g_error("a wait ended before any deadline (round %d, "
                        "monitor %s)", round, qaio_fdmon_name(ctx));
            }
        }
        g_assert_cmpint(waits, <=, 3);
    }
    for (i = 0; i < 3; i++) {
        timer_del(&et[i].timer);
    }
    aio_context_unref(ctx);
}

/* ---- Parameters ---------------------------------------------------------- */

/*
 * aio_context_set_aio_params() has no Error: a negative batch size is
 * refused with a warning and the old value stays.  (The poll and thread
 * pool setters are covered by test-aio's /aio/params/ cases.)
 */
static void test_aio_params_negative(void)
{
    AioContext *ctx;

    if (!in_subprocess()) {
        g_test_trap_assert_stderr("*ignoring negative max_batch -1*"
                                  "*ignoring negative max_batch "
                                  "-9223372036854775808*");
        return;
    }
    ctx = aio_context_new(&error_abort);
    aio_context_set_aio_params(ctx, 32);
    aio_context_set_aio_params(ctx, -1);
    g_assert_cmpint(ctx->aio_max_batch, ==, 32);
    aio_context_set_aio_params(ctx, INT64_MIN);
    g_assert_cmpint(ctx->aio_max_batch, ==, 32);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* ---- Timers -------------------------------------------------------------- */

static void timer_count_cb(void *opaque)
{
    (*(int *)opaque)++;
}

/*
 * A timer's scale is not checked; it only multiplies timer_mod()'s
 * argument (as in QEMU).  Scale 0 makes every timer_mod() a deadline of 0,
 * and a negative product clamps to 0 like a negative timer_mod_ns(): such
 * a timer is due at once and runs on the next poll.
 */
static void test_timer_odd_scales(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    QEMUTimer t;
    int runs = 0;

    aio_timer_init(ctx, &t, QEMU_CLOCK_REALTIME, 0, timer_count_cb, &runs);
    timer_mod(&t, 123456789);
    g_assert_true(timer_pending(&t));
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 0);
    g_assert_true(timer_expired(&t, 0));
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(runs, ==, 1);

    aio_timer_init(ctx, &t, QEMU_CLOCK_REALTIME, -SCALE_US, timer_count_cb,
                   &runs);
    timer_mod(&t, 5);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 0);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(runs, ==, 2);

    aio_timer_init(ctx, &t, QEMU_CLOCK_REALTIME, SCALE_MS, timer_count_cb,
                   &runs);
    timer_mod(&t, -3);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 0);
    timer_mod_anticipate(&t, -7);
    g_assert_cmpuint(timer_expire_time_ns(&t), ==, 0);
    g_assert_true(aio_poll(ctx, false));
    g_assert_cmpint(runs, ==, 3);

    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/*
 * INT64_MAX in a coarse scale ("never") overflows the product in
 * nanoseconds.  The deadline must stay in the far future: the timer is
 * pending and does not run.  (With a wrapping multiply INT64_MAX ms is
 * -1,000,000 ns, clamped to 0: the timer would fire at once.)
 */
static void test_timer_far_deadline(void)
{
    static const int scales[] = { SCALE_MS, SCALE_US };
    AioContext *ctx = aio_context_new(&error_abort);
    int64_t year_ns = 365LL * 24 * 3600 * NANOSECONDS_PER_SECOND;
    QEMUTimer t;
    int runs = 0;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(scales); i++) {
        aio_timer_init(ctx, &t, QEMU_CLOCK_REALTIME, scales[i],
                       timer_count_cb, &runs);
        timer_mod(&t, INT64_MAX);
        g_assert_true(timer_pending(&t));
        g_assert_cmpuint(timer_expire_time_ns(&t), >,
                         qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + year_ns);
        ctx_settle(ctx);
        g_assert_cmpint(runs, ==, 0);
        timer_del(&t);

        timer_mod_anticipate(&t, INT64_MAX / 2);
        g_assert_cmpuint(timer_expire_time_ns(&t), >,
                         qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + year_ns);
        ctx_settle(ctx);
        g_assert_cmpint(runs, ==, 0);
        timer_del(&t);
    }
    aio_context_unref(ctx);
}

/* ---- Bad fds ------------------------------------------------------------- */

static void fd_never_cb(void *opaque)
{
    g_error("a handler of a bad fd was called");
}

/*
 * A negative fd is refused with a warning and nothing is registered;
 * removing one is silently nothing.
 */
static void test_fd_negative(void)
{
    AioContext *ctx;
    int disabled;

    if (!in_subprocess()) {
        g_test_trap_assert_stderr("*ignoring invalid fd -1*");
        g_test_trap_assert_stderr_unmatched("*-5*");
        return;
    }
    ctx = aio_context_new(&error_abort);
    ctx_settle(ctx);
    disabled = ctx->poll_disable_cnt;
    aio_set_fd_handler(ctx, -1, fd_never_cb, fd_never_cb, NULL, NULL, NULL);
    g_assert_cmpint(ctx->poll_disable_cnt, ==, disabled);
    aio_set_fd_handler(ctx, -5, NULL, NULL, NULL, NULL, NULL);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/* Blocking polls until a timer @ms away fires; the count is returned. */
static long polls_until_timer(AioContext *ctx, int ms)
{
    QEMUTimer t;
    int runs = 0;
    long polls = 0;

    aio_timer_init(ctx, &t, QEMU_CLOCK_REALTIME, SCALE_MS, timer_count_cb,
                   &runs);
    timer_mod(&t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + ms);
    aio_poll(ctx, false);
    while (!runs) {
        aio_poll(ctx, true);
        polls++;
        g_assert_cmpint(polls, <, 100000000);
    }
    return polls;
}

/*
 * A handler for an fd number that is not open.  poll(2) reports POLLNVAL,
 * which is not an event the handler asked for: it is never called, but
 * every wait returns at once until the handler is removed.  epoll refuses
 * the fd (EBADF), and the context falls back to poll(2) for good.  No
 * crash, no hang; after removal the loop sleeps again.
 */
static void test_fd_closed(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    int fd = eventfd(0, EFD_CLOEXEC);
    long polls;

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    aio_set_fd_handler(ctx, fd, fd_never_cb, NULL, NULL, NULL, NULL);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    polls = polls_until_timer(ctx, 5);
    g_test_message("%ld polls in 5 ms with a closed fd registered", polls);

    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpint(polls_until_timer(ctx, 5), <=, 2);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/*
 * An fd closed while its handler is registered.  epoll forgets a closed
 * file by itself: the handler never runs, the loop sleeps, and the removal
 * (EBADF from epoll_ctl) is harmless.  poll(2) sees POLLNVAL as above.
 */
static void test_fd_closed_while_registered(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    bool epoll = !strcmp(qaio_fdmon_name(ctx), "epoll");
    int fds[2];
    long polls;

    g_assert_cmpint(pipe2(fds, O_NONBLOCK | O_CLOEXEC), ==, 0);
    aio_set_fd_handler(ctx, fds[0], fd_never_cb, NULL, NULL, NULL, NULL);
    ctx_settle(ctx);
    close(fds[0]);
    close(fds[1]);

    polls = polls_until_timer(ctx, 5);
    g_test_message("%ld polls in 5 ms after the close", polls);
    if (epoll) {
        g_assert_cmpint(polls, <=, 2);
    }
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, epoll ? "epoll" : "poll");
    g_assert_cmpint(polls_until_timer(ctx, 5), <=, 2);
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

typedef struct FileRead {
    int runs;
} FileRead;

static void file_read_cb(void *opaque)
{
    ((FileRead *)opaque)->runs++;
}

/*
 * A regular file: always readable for poll(2), refused by epoll (EPERM).
 * A context on epoll moves to poll(2) for good and the handler runs, on
 * every iteration (level-triggered); one moving to epoll at 64 fds stays
 * on poll(2) and gives its epoll fd back.
 */
static void test_fd_regular_file(void)
{
    g_autofree char *path = NULL;
    AioContext *ctx = aio_context_new(&error_abort);
    FileRead fr = { 0 };
    Many m;
    int open_fds;
    int fd;

    fd = g_file_open_tmp("qaio-faults-XXXXXX", &path, NULL);
    g_assert_cmpint(fd, >=, 0);
    unlink(path);

    aio_set_fd_handler(ctx, fd, file_read_cb, NULL, NULL, NULL, &fr);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(fr.runs, ==, 1);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(fr.runs, ==, 2);
    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    ctx_settle(ctx);
    aio_context_unref(ctx);

    ctx = ctx_new_default_fdmon();
    aio_set_fd_handler(ctx, fd, file_read_cb, NULL, NULL, NULL, &fr);
    open_fds = count_open_fds();
    many_run(ctx, &m);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, "poll");
    g_assert_cmpint(count_open_fds(), ==, open_fds - 1);
    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL, NULL);
    ctx_settle(ctx);
    aio_context_unref(ctx);
    close(fd);
}

/* ---- Programmer errors that abort ---------------------------------------- */

static void named_bh_cb(void *opaque)
{
    g_error("a deleted BH ran");
}

/* Deleting a BH twice before it is freed aborts, naming the BH. */
static void test_bh_delete_twice_pending(void)
{
    AioContext *ctx;
    QEMUBH *bh;

    if (g_test_subprocess()) {
        ctx = aio_context_new(&error_abort);
        bh = aio_bh_new(ctx, named_bh_cb, NULL);
        qemu_bh_schedule(bh);
        qemu_bh_delete(bh);
        qemu_bh_delete(bh);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_bh_delete*'named_bh_cb'*deleted twice*");
}

static void test_bh_delete_twice_idle(void)
{
    AioContext *ctx;
    QEMUBH *bh;

    if (g_test_subprocess()) {
        ctx = aio_context_new(&error_abort);
        bh = aio_bh_new(ctx, named_bh_cb, NULL);
        qemu_bh_delete(bh);
        qemu_bh_delete(bh);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_bh_delete*'named_bh_cb'*deleted twice*");
}

static void test_bql_unlock_unheld(void)
{
    if (g_test_subprocess()) {
        bql_unlock();
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*bql_unlock*does not hold the BQL*");
}

static void test_bql_lock_twice(void)
{
    if (g_test_subprocess()) {
        bql_lock();
        bql_lock();
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*bql_lock*test-faults.c*holds the BQL "
                              "already*");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    init_clocks(NULL);

    g_test_add_func("/faults/nofile/context-and-iothread", test_nofile);
    g_test_add_func("/faults/enfile/context-and-iothread", test_enfile);
    g_test_add_func("/faults/epoll/create-fails", test_epoll_create_fails);
    g_test_add_func("/faults/epoll/ctl-fails", test_epoll_ctl_fails);
    g_test_add_func("/faults/epoll/no-pwait2-timers-not-early",
                    test_epoll_no_pwait2);
    g_test_add_func("/faults/params/aio-negative", test_aio_params_negative);
    g_test_add_func("/faults/timer/odd-scales", test_timer_odd_scales);
    g_test_add_func("/faults/timer/far-deadline-does-not-fire",
                    test_timer_far_deadline);
    g_test_add_func("/faults/fd/negative", test_fd_negative);
    g_test_add_func("/faults/fd/closed", test_fd_closed);
    g_test_add_func("/faults/fd/closed-while-registered",
                    test_fd_closed_while_registered);
    g_test_add_func("/faults/fd/regular-file", test_fd_regular_file);
    g_test_add_func("/faults/bh/delete-twice-pending-aborts",
                    test_bh_delete_twice_pending);
    g_test_add_func("/faults/bh/delete-twice-aborts",
                    test_bh_delete_twice_idle);
    g_test_add_func("/faults/bql/unlock-unheld-aborts",
                    test_bql_unlock_unheld);
    g_test_add_func("/faults/bql/lock-twice-aborts", test_bql_lock_twice);

    return g_test_run();
}
