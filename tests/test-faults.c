/*
 * test-faults.c: the event loop and the block layer (thread pool, Linux
 * AIO and io_uring engines) given bad input and failing system calls.
 *
 * Faults are real: descriptor exhaustion through a low RLIMIT_NOFILE, and
 * system calls made to fail with a chosen errno by a seccomp filter
 * (eventfd2/pipe2 with ENFILE, epoll_create1, epoll_ctl, and epoll_pwait2
 * with ENOSYS as on kernels before 5.11).  Each case that lowers a limit,
 * installs a filter or must abort runs in a subprocess
 * (g_test_trap_subprocess), so the process running the suite goes on.
 * Bad input: setter parameters, timer scales and far deadlines, negative,
 * closed and regular-file fds, BHs deleted twice, the BQL released
 * without being held.  The block layer: engine setup without descriptors
 * or without io_uring (QAIO_DISABLE_IO_URING), bad fds, O_DIRECT
 * misalignment, offsets at the loff_t limit, empty and unknown requests,
 * extreme batch sizes, thread pool limits, a pool that cannot start a
 * thread (clone fails), and misuse that aborts (submitting outside a
 * coroutine, destroying a context with requests outstanding).  Registered
 * with 'fdmon' (QAIO_FDMON=poll, =epoll, =io_uring).
 *
 * What each fault does, and why that is the right outcome, is written in
 * docs/RELIABILITY.md.  Threading: single-threaded, except that IOThreads
 * are created and thread pool workers run jobs.  The block layer cases run
 * in subprocesses that make their context the thread's current one, which
 * the engines and the pool submit to.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/raw-aio.h"
#include "block/thread-pool.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qaio/fdmon.h"
#include "proc-count.h"
#include "qaio/iothread.h"
#include "qaio/metrics.h"
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

/*
 * The monitor of a context whose epoll failed, or that poll(2) serves
 * anyway: io_uring, if forced, is not affected.
 */
static const char *poll_unless_io_uring(void)
{
    return !strcmp(fdmon_env(), "io_uring") ? "io_uring" : "poll";
}

/* The default without io_uring: poll, moving to epoll at 64 fds. */
static AioContext *ctx_new_default_fdmon(void)
{
    char *saved = g_strdup(g_getenv("QAIO_FDMON"));
    AioContext *ctx;

    g_unsetenv("QAIO_FDMON");
    g_setenv("QAIO_DISABLE_IO_URING", "1", true);
    ctx = aio_context_new(&error_abort);
    g_unsetenv("QAIO_DISABLE_IO_URING");
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

    /* Two: epoll (or io_uring) too, where forced (a forced poll needs none). */
    release_fds(fds, 1);
    ctx = aio_context_new(&error_abort);
    g_assert_cmpint(count_open_fds(), ==,
                    open_fds - !strcmp(fdmon_env(), "poll"));
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==,
                    !strcmp(fdmon_env(), "epoll") ||
                    !strcmp(fdmon_env(), "io_uring") ? fdmon_env() : "poll");
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
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, poll_unless_io_uring());
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
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, poll_unless_io_uring());
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
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, poll_unless_io_uring());
    polls = polls_until_timer(ctx, 5);
    g_test_message("%ld polls in 5 ms with a closed fd registered", polls);

    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpint(polls_until_timer(ctx, 5), <=, 2);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, poll_unless_io_uring());
    ctx_settle(ctx);
    aio_context_unref(ctx);
}

/*
 * An fd closed while its handler is registered.  epoll forgets a closed
 * file by itself: the handler never runs, the loop sleeps, and the removal
 * (EBADF from epoll_ctl) is harmless.  poll(2) sees POLLNVAL as above.
 * io_uring's poll request keeps the file open, so closing the write end
 * is a hang-up it reports, but the fd it then asks (poll(2)) is closed:
 * the handler does not run there either.
 */
static void test_fd_closed_while_registered(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    const char *fdmon = qaio_fdmon_name(ctx);
    bool epoll = !strcmp(fdmon, "epoll");
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
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, fdmon);
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
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, poll_unless_io_uring());
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(fr.runs, ==, 1);
    g_assert_true(aio_poll(ctx, true));
    g_assert_cmpint(fr.runs, ==, 2);
    aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, NULL, NULL);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==, poll_unless_io_uring());
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

/* ---- Block layer: engines, thread pool ----------------------------------- */

enum { ENG_LAIO, ENG_LURING, ENG_KINDS };

static const char *const eng_names[ENG_KINDS] = { "Linux AIO", "io_uring" };

#define ENG_PAGE 4096

static bool eng_compiled(int engine)
{
#ifdef CONFIG_LINUX_AIO
    if (engine == ENG_LAIO) {
        return true;
    }
#endif
#ifdef CONFIG_LINUX_IO_URING
    if (engine == ENG_LURING) {
        return true;
    }
#endif
    return false;
}

static void *eng_setup(AioContext *ctx, int engine, Error **errp)
{
    if (engine == ENG_LAIO) {
        return aio_setup_linux_aio(ctx, errp);
    }
    return aio_setup_linux_io_uring(ctx, errp);
}

static void *eng_get(AioContext *ctx, int engine)
{
    if (engine == ENG_LAIO) {
        return aio_get_linux_aio(ctx);
    }
    return aio_get_linux_io_uring(ctx);
}

typedef struct EngReq {
    int engine;
    int fd;
    uint64_t offset;
    QEMUIOVector *qiov;
    int type;
    uint64_t dev_max_batch;     /* Linux AIO only */
    int ret;
    bool done;
} EngReq;

static int coroutine_fn eng_submit(int engine, int fd, uint64_t offset,
                                   QEMUIOVector *qiov, int type,
                                   uint64_t dev_max_batch)
{
#ifdef CONFIG_LINUX_AIO
    if (engine == ENG_LAIO) {
        return laio_co_submit(fd, offset, qiov, type, dev_max_batch);
    }
#endif
#ifdef CONFIG_LINUX_IO_URING
    if (engine == ENG_LURING) {
        return luring_co_submit(NULL, fd, offset, qiov, type);
    }
#endif
    g_assert_not_reached();
}

static void coroutine_fn eng_req_co(void *opaque)
{
    EngReq *r = opaque;

    r->ret = eng_submit(r->engine, r->fd, r->offset, r->qiov, r->type,
                        r->dev_max_batch);
    r->done = true;
}

/* One request from a coroutine of @ctx, the calling thread's context. */
static int eng_run(AioContext *ctx, int engine, int fd, uint64_t offset,
                   QEMUIOVector *qiov, int type)
{
    EngReq r = {
        .engine = engine, .fd = fd, .offset = offset, .qiov = qiov,
        .type = type,
    };
    int i;

    qemu_coroutine_enter(qemu_coroutine_create(eng_req_co, &r));
    for (i = 0; i < 100000 && !r.done; i++) {
        aio_poll(ctx, true);
    }
    g_assert_true(r.done);
    return r.ret;
}

static int eng_run_buf(AioContext *ctx, int engine, int fd, uint64_t offset,
                       void *buf, size_t len, int type)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, len);
    return eng_run(ctx, engine, fd, offset, &qiov, type);
}

static uint8_t *eng_alloc(size_t len)
{
    void *p = NULL;

    g_assert_cmpint(posix_memalign(&p, ENG_PAGE, MAX(len, 1)), ==, 0);
    return p;
}

/*
 * An unlinked file holding @pages pages of @fill, written and synced, so
 * that its blocks are allocated (the kernel checks O_DIRECT alignment of
 * reads only where there is data: a hole reads as zeroes whatever the
 * alignment).  With @direct, opened O_DIRECT where a directory allows it,
 * else -1.
 */
static int eng_open_file(bool direct, int pages, uint8_t fill)
{
    g_autofree char *cwd = g_get_current_dir();
    const char *dirs[] = { g_get_tmp_dir(), cwd, "/var/tmp" };
    uint8_t *page = eng_alloc(ENG_PAGE);
    size_t i;
    int fd = -1;
    int k;

    memset(page, fill, ENG_PAGE);
    for (i = 0; i < G_N_ELEMENTS(dirs); i++) {
        g_autofree char *path = g_build_filename(dirs[i], "qaio-faults-XXXXXX",
                                                 NULL);
        int wfd = g_mkstemp(path);
        bool ok = wfd >= 0;

        for (k = 0; ok && k < pages; k++) {
            ok = pwrite(wfd, page, ENG_PAGE, (off_t)k * ENG_PAGE) == ENG_PAGE;
        }
        ok = ok && fsync(wfd) == 0;
        fd = !ok ? -1 : direct ? open(path, O_RDWR | O_DIRECT | O_CLOEXEC) :
             dup(wfd);
        if (wfd >= 0) {
            close(wfd);
            unlink(path);
        }
        /* Some file systems accept O_DIRECT and fail the I/O. */
        if (fd >= 0 && pread(fd, page, ENG_PAGE, 0) == ENG_PAGE) {
            break;
        }
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    free(page);
    return fd;
}

/* The whole file is still @pages pages of @fill. */
static void assert_file_is(int fd, int pages, uint8_t fill)
{
    size_t len = (size_t)pages * ENG_PAGE;
    uint8_t *buf = eng_alloc(len);
    size_t i;
    struct stat st;

    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, len);
    g_assert_cmpint(pread(fd, buf, len, 0), ==, len);
    for (i = 0; i < len; i++) {
        g_assert_cmpint(buf[i], ==, fill);
    }
    free(buf);
}

/*
 * In a subprocess: a context that this thread runs (the engines submit
 * from the calling thread's context), with @engine set up; NULL after
 * g_test_skip() where it is not compiled in.
 */
static AioContext *eng_subprocess_ctx(int engine)
{
    AioContext *ctx;

    if (!eng_compiled(engine)) {
        g_test_skip("engine not compiled in");
        return NULL;
    }
    ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(ctx);
    eng_setup(ctx, engine, &error_abort);
    return ctx;
}

/* A whole read and write of page 0 work, with the data checked. */
static void assert_engine_works(AioContext *ctx, int engine)
{
    int fd = eng_open_file(false, 1, 0x11);
    uint8_t *buf = eng_alloc(ENG_PAGE);

    g_assert_cmpint(fd, >=, 0);
    memset(buf, 0x22, ENG_PAGE);
    g_assert_cmpint(eng_run_buf(ctx, engine, fd, 0, buf, ENG_PAGE,
                                QEMU_AIO_WRITE), ==, 0);
    memset(buf, 0, ENG_PAGE);
    g_assert_cmpint(eng_run_buf(ctx, engine, fd, 0, buf, ENG_PAGE,
                                QEMU_AIO_READ), ==, 0);
    assert_file_is(fd, 1, 0x22);
    g_assert_cmpint(buf[0], ==, 0x22);
    g_assert_cmpint(buf[ENG_PAGE - 1], ==, 0x22);
    free(buf);
    close(fd);
}

/*
 * No descriptor left: both engines' setup fails with an Error naming the
 * engine and "Too many open files", gives back what it took and leaves the
 * context without an engine.  io_uring needs two descriptors (the ring and
 * the completion eventfd): with one, it fails on the second and closes the
 * ring.  Linux AIO needs one (io_setup takes none).  Once descriptors are
 * back, both set up and do I/O.  Leaks would fail the ASan job.
 */
static void test_nofile_engines(void)
{
    g_autoptr(GArray) fds = NULL;
    AioContext *ctx;
    Error *err = NULL;
    int open_fds, e;

    if (!in_subprocess()) {
        return;
    }
    if (!eng_compiled(ENG_LAIO) || !eng_compiled(ENG_LURING)) {
        g_test_skip("both engines are needed");
        return;
    }
    ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(ctx);
    fds = exhaust_fds();
    open_fds = count_open_fds();

    for (e = 0; e < ENG_KINDS; e++) {
        g_assert_null(eng_setup(ctx, e, &err));
        g_assert_nonnull(err);
        g_test_message("%s, no fd: %s", eng_names[e], error_get_pretty(err));
        g_assert_nonnull(strstr(error_get_pretty(err), g_strerror(EMFILE)));
        g_assert_nonnull(strstr(error_get_pretty(err), eng_names[e]));
        error_free(err);
        err = NULL;
        g_assert_null(eng_get(ctx, e));
        g_assert_cmpint(count_open_fds(), ==, open_fds);
    }

    /* One: io_uring gets its ring but not its eventfd. */
    release_fds(fds, 1);
    g_assert_null(eng_setup(ctx, ENG_LURING, &err));
    g_assert_nonnull(err);
    g_test_message("io_uring, one fd: %s", error_get_pretty(err));
    g_assert_nonnull(strstr(error_get_pretty(err), g_strerror(EMFILE)));
    g_assert_nonnull(strstr(error_get_pretty(err), "io_uring"));
    error_free(err);
    err = NULL;
    g_assert_null(eng_get(ctx, ENG_LURING));
    g_assert_cmpint(count_open_fds(), ==, open_fds - 1);

    /* ... which is all Linux AIO needs. */
    g_assert_nonnull(eng_setup(ctx, ENG_LAIO, &error_abort));
    g_assert_cmpint(count_open_fds(), ==, open_fds);

    release_fds(fds, fds->len);
    g_assert_nonnull(eng_setup(ctx, ENG_LURING, &error_abort));
    for (e = 0; e < ENG_KINDS; e++) {
        assert_engine_works(ctx, e);
    }
    aio_context_unref(ctx);
}

/*
 * io_uring unavailable (QAIO_DISABLE_IO_URING=1 makes ring creation fail
 * with ENOSYS, as a kernel without io_uring does): a new context and an
 * IOThread work on another fd monitor (a forced QAIO_FDMON=io_uring
 * warns and takes the default); aio_setup_linux_io_uring() fails with an
 * Error naming io_uring and the cause, leaking nothing, while Linux AIO
 * still sets up.  With io_uring back, the same context sets it up.
 */
static void test_io_uring_disabled(void)
{
    AioContext *ctx;
    IOThread *iothread;
    Error *err = NULL;
    int open_fds, bh_runs = 0;

    if (!g_test_subprocess()) {
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        if (!strcmp(fdmon_env(), "io_uring")) {
            g_test_trap_assert_stderr("*QAIO_FDMON=io_uring: cannot create "
                                      "an io_uring*using the default*");
        }
        return;
    }
    g_setenv("QAIO_DISABLE_IO_URING", "1", true);
    ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(ctx);
    g_assert_cmpstr(qaio_fdmon_name(ctx), ==,
                    !strcmp(fdmon_env(), "epoll") ? "epoll" : "poll");
    assert_ctx_works(ctx);

    iothread = iothread_create("no-io-uring", &error_abort);
    g_assert_cmpstr(qaio_fdmon_name(iothread_get_aio_context(iothread)),
                    !=, "io_uring");
    aio_bh_schedule_oneshot(iothread_get_aio_context(iothread), bh_count_cb,
                            &bh_runs);
    iothread_destroy(iothread);
    g_assert_cmpint(bh_runs, ==, 1);

    if (!eng_compiled(ENG_LURING)) {
        g_unsetenv("QAIO_DISABLE_IO_URING");
        aio_context_unref(ctx);
        g_test_skip("io_uring not compiled in");
        return;
    }
    open_fds = count_open_fds();
    g_assert_null(aio_setup_linux_io_uring(ctx, &err));
    g_assert_nonnull(err);
    g_test_message("aio_setup_linux_io_uring: %s", error_get_pretty(err));
    g_assert_nonnull(strstr(error_get_pretty(err), "io_uring"));
    g_assert_nonnull(strstr(error_get_pretty(err), g_strerror(ENOSYS)));
    error_free(err);
    g_assert_null(aio_get_linux_io_uring(ctx));
    g_assert_cmpint(count_open_fds(), ==, open_fds);
    if (eng_compiled(ENG_LAIO)) {
        g_assert_nonnull(aio_setup_linux_aio(ctx, &error_abort));
        assert_engine_works(ctx, ENG_LAIO);
    }

    g_unsetenv("QAIO_DISABLE_IO_URING");
    g_assert_nonnull(aio_setup_linux_io_uring(ctx, &error_abort));
    assert_engine_works(ctx, ENG_LURING);
    aio_context_unref(ctx);
}

/*
 * Bad or closed descriptors: -EBADF for reads, writes and flushes, from
 * both engines (Linux AIO: io_submit refuses the request alone; io_uring:
 * the completion carries it).
 */
static void test_engine_bad_fd(gconstpointer data)
{
    int engine = GPOINTER_TO_INT(data);
    static const int types[] = {
        QEMU_AIO_READ, QEMU_AIO_WRITE, QEMU_AIO_FLUSH,
    };
    AioContext *ctx;
    uint8_t *buf;
    int closed, i;

    if (!in_subprocess() || !(ctx = eng_subprocess_ctx(engine))) {
        return;
    }
    buf = eng_alloc(ENG_PAGE);
    memset(buf, 0, ENG_PAGE);
    closed = eng_open_file(false, 1, 0);
    close(closed);
    for (i = 0; i < (int)G_N_ELEMENTS(types); i++) {
        QEMUIOVector qiov;
        QEMUIOVector *q = types[i] == QEMU_AIO_FLUSH ? NULL : &qiov;

        qemu_iovec_init_buf(&qiov, buf, ENG_PAGE);
        g_assert_cmpint(eng_run(ctx, engine, -1, 0, q, types[i]), ==,
                        -EBADF);
        g_assert_cmpint(eng_run(ctx, engine, closed, 0, q, types[i]), ==,
                        -EBADF);
    }
    free(buf);
    /* The engine is fine afterwards. */
    assert_engine_works(ctx, engine);
    aio_context_unref(ctx);
}

/*
 * O_DIRECT with an offset, a length or a buffer address that is not a
 * multiple of the logical block size: -EINVAL from both engines, reads
 * and writes, and the file is untouched.  (Unaligned by one byte, which
 * no block size allows.)
 */
static void test_engine_direct_unaligned(gconstpointer data)
{
    int engine = GPOINTER_TO_INT(data);
    AioContext *ctx;
    uint8_t *buf;
    int fd, type;

    if (!in_subprocess() || !(ctx = eng_subprocess_ctx(engine))) {
        return;
    }
    fd = eng_open_file(true, 2, 0x5a);
    if (fd < 0) {
        g_test_skip("no directory here supports O_DIRECT");
        aio_context_unref(ctx);
        return;
    }
    buf = eng_alloc(2 * ENG_PAGE);
    memset(buf, 0xc3, 2 * ENG_PAGE);
    for (type = QEMU_AIO_READ; type <= QEMU_AIO_WRITE; type <<= 1) {
        /* Offset, length, buffer. */
        g_assert_cmpint(eng_run_buf(ctx, engine, fd, 1, buf, ENG_PAGE, type),
                        ==, -EINVAL);
        g_assert_cmpint(eng_run_buf(ctx, engine, fd, 0, buf, 100, type),
                        ==, -EINVAL);
        g_assert_cmpint(eng_run_buf(ctx, engine, fd, 0, buf + 1, ENG_PAGE,
                                    type), ==, -EINVAL);
    }
    assert_file_is(fd, 2, 0x5a);
    /* The aligned request still works, on the same engine and file. */
    g_assert_cmpint(eng_run_buf(ctx, engine, fd, ENG_PAGE, buf, ENG_PAGE,
                                QEMU_AIO_READ), ==, 0);
    g_assert_cmpint(buf[0], ==, 0x5a);
    free(buf);
    close(fd);
    aio_context_unref(ctx);
}

/*
 * Offsets near and past the end of what a file offset can be (the kernel
 * takes loff_t, a signed 64-bit number):
 * - the last page below 2^63 (INT64_MAX aligned down): offset + length
 *   overflows, -EINVAL for reads and writes;
 * - the page before it: a read is past the end of the file, so it returns
 *   zeroes and succeeds; a write is beyond the largest file the file
 *   system allows, -EFBIG (ext4, the CI machine's: 16 TiB; a file system
 *   with larger files may accept it);
 * - 2^64 - 4096, negative as a loff_t: -EINVAL.
 * The same from both engines; the file keeps its size.
 */
static void test_engine_huge_offset(gconstpointer data)
{
    int engine = GPOINTER_TO_INT(data);
    const uint64_t last = (uint64_t)INT64_MAX & ~(uint64_t)(ENG_PAGE - 1);
    AioContext *ctx;
    uint8_t *buf;
    int fd, type;
    size_t i;

    if (!in_subprocess() || !(ctx = eng_subprocess_ctx(engine))) {
        return;
    }
    fd = eng_open_file(false, 1, 0x77);
    g_assert_cmpint(fd, >=, 0);
    buf = eng_alloc(ENG_PAGE);
    memset(buf, 0xee, ENG_PAGE);
    for (type = QEMU_AIO_READ; type <= QEMU_AIO_WRITE; type <<= 1) {
        g_assert_cmpint(eng_run_buf(ctx, engine, fd, last, buf, ENG_PAGE,
                                    type), ==, -EINVAL);
        g_assert_cmpint(eng_run_buf(ctx, engine, fd, UINT64_MAX - ENG_PAGE + 1,
                                    buf, ENG_PAGE, type), ==, -EINVAL);
    }
    g_assert_cmpint(eng_run_buf(ctx, engine, fd, last - ENG_PAGE, buf,
                                ENG_PAGE, QEMU_AIO_WRITE), ==, -EFBIG);
    g_assert_cmpint(eng_run_buf(ctx, engine, fd, last - ENG_PAGE, buf,
                                ENG_PAGE, QEMU_AIO_READ), ==, 0);
    for (i = 0; i < ENG_PAGE; i++) {
        g_assert_cmpint(buf[i], ==, 0);
    }
    assert_file_is(fd, 1, 0x77);
    free(buf);
    close(fd);
    aio_context_unref(ctx);
}

/*
 * Zero-length requests, as an empty vector and as one empty element,
 * buffered and O_DIRECT: 0, nothing transferred.
 */
static void test_engine_zero_length(gconstpointer data)
{
    int engine = GPOINTER_TO_INT(data);
    AioContext *ctx;
    uint8_t *buf;
    int direct, type;

    if (!in_subprocess() || !(ctx = eng_subprocess_ctx(engine))) {
        return;
    }
    buf = eng_alloc(ENG_PAGE);
    for (direct = 0; direct < 2; direct++) {
        int fd = eng_open_file(direct, 1, 0x33);

        if (fd < 0) {
            g_test_message("no directory here supports O_DIRECT");
            continue;
        }
        for (type = QEMU_AIO_READ; type <= QEMU_AIO_WRITE; type <<= 1) {
            QEMUIOVector empty;

            memset(buf, 0x44, ENG_PAGE);
            qemu_iovec_init(&empty, 1);
            g_assert_cmpint(eng_run(ctx, engine, fd, 0, &empty, type), ==, 0);
            qemu_iovec_destroy(&empty);
            g_assert_cmpint(eng_run_buf(ctx, engine, fd, ENG_PAGE, buf, 0,
                                        type), ==, 0);
            g_assert_cmpint(buf[0], ==, 0x44);
        }
        assert_file_is(fd, 1, 0x33);
        close(fd);
    }
    free(buf);
    aio_context_unref(ctx);
}

/*
 * A vector of more elements than the kernel takes (IOV_MAX, 1024): -EINVAL
 * from both engines, reads and writes, and nothing written.
 */
static void test_engine_too_many_iovecs(gconstpointer data)
{
    int engine = GPOINTER_TO_INT(data);
    enum { N = 2048, LEN = 16 };
    AioContext *ctx;
    uint8_t *buf;
    int fd, type, i;

    if (!in_subprocess() || !(ctx = eng_subprocess_ctx(engine))) {
        return;
    }
    g_assert_cmpint(N, >, IOV_MAX);
    fd = eng_open_file(false, N * LEN / ENG_PAGE, 0x21);
    g_assert_cmpint(fd, >=, 0);
    buf = eng_alloc(N * LEN);
    memset(buf, 0x12, N * LEN);
    for (type = QEMU_AIO_READ; type <= QEMU_AIO_WRITE; type <<= 1) {
        QEMUIOVector qiov;

        qemu_iovec_init(&qiov, N);
        for (i = 0; i < N; i++) {
            qemu_iovec_add(&qiov, buf + i * LEN, LEN);
        }
        g_assert_cmpint(eng_run(ctx, engine, fd, 0, &qiov, type), ==,
                        -EINVAL);
        qemu_iovec_destroy(&qiov);
    }
    assert_file_is(fd, N * LEN / ENG_PAGE, 0x21);
    g_assert_cmpint(buf[0], ==, 0x12);
    free(buf);
    close(fd);
    aio_context_unref(ctx);
}

/*
 * Request types an engine does not do: -ENOTSUP, with nothing submitted.
 * Linux AIO does READ, WRITE and FLUSH; io_uring also DISCARD and
 * WRITE_ZEROES.  Flag bits (QEMU_AIO_MISALIGNED, ...) do not change the
 * type.
 */
static void test_engine_unknown_type(gconstpointer data)
{
    int engine = GPOINTER_TO_INT(data);
    const int bad[] = {
        0, QEMU_AIO_IOCTL, QEMU_AIO_READ | QEMU_AIO_WRITE,
        QEMU_AIO_COPY_RANGE, QEMU_AIO_TRUNCATE, QEMU_AIO_ZONE_REPORT,
        QEMU_AIO_ZONE_MGMT, QEMU_AIO_ZONE_APPEND, 0x8000, -1,
        QEMU_AIO_DISCARD, QEMU_AIO_WRITE_ZEROES,
    };
    /* The last two are io_uring's. */
    int n_bad = G_N_ELEMENTS(bad) - (engine == ENG_LURING ? 2 : 0);
    AioContext *ctx;
    uint8_t *buf;
    int fd, i;

    if (!in_subprocess() || !(ctx = eng_subprocess_ctx(engine))) {
        return;
    }
    fd = eng_open_file(false, 1, 0x66);
    g_assert_cmpint(fd, >=, 0);
    buf = eng_alloc(ENG_PAGE);
    memset(buf, 0x99, ENG_PAGE);
    for (i = 0; i < n_bad; i++) {
        g_assert_cmpint(eng_run_buf(ctx, engine, fd, 0, buf, ENG_PAGE,
                                    bad[i]), ==, -ENOTSUP);
    }
    assert_file_is(fd, 1, 0x66);
    g_assert_cmpint(eng_run_buf(ctx, engine, fd, 0, buf, ENG_PAGE,
                                QEMU_AIO_READ | QEMU_AIO_MISALIGNED |
                                QEMU_AIO_NO_FALLBACK), ==, 0);
    g_assert_cmpint(buf[0], ==, 0x66);
    free(buf);
    close(fd);
    aio_context_unref(ctx);
}

/*
 * Batch limits at their extremes: aio_max_batch 1, INT64_MAX and 0 (the
 * engine's default), with (Linux AIO) a device limit of UINT64_MAX on
 * every other request: 64 requests at once all complete with their data.
 */
static void test_engine_batch_extremes(gconstpointer data)
{
    int engine = GPOINTER_TO_INT(data);
    static const int64_t batches[] = { 1, INT64_MAX, 0 };
    enum { N = 64 };
    AioContext *ctx;
    uint8_t *buf;
    int fd, b;

    if (!in_subprocess() || !(ctx = eng_subprocess_ctx(engine))) {
        return;
    }
    fd = eng_open_file(false, N, 0);
    g_assert_cmpint(fd, >=, 0);
    buf = eng_alloc((size_t)N * ENG_PAGE);
    for (b = 0; b < (int)G_N_ELEMENTS(batches); b++) {
        EngReq reqs[N];
        QEMUIOVector qiovs[N];
        int i, k, pending = N;

        aio_context_set_aio_params(ctx, batches[b]);
        for (i = 0; i < N; i++) {
            memset(buf + (size_t)i * ENG_PAGE, b * N + i, ENG_PAGE);
            qemu_iovec_init_buf(&qiovs[i], buf + (size_t)i * ENG_PAGE,
                                ENG_PAGE);
            reqs[i] = (EngReq) {
                .engine = engine, .fd = fd,
                .offset = (uint64_t)i * ENG_PAGE, .qiov = &qiovs[i],
                .type = QEMU_AIO_WRITE,
                .dev_max_batch = i % 2 ? UINT64_MAX : 0,
            };
            qemu_coroutine_enter(qemu_coroutine_create(eng_req_co,
                                                       &reqs[i]));
        }
        for (k = 0; k < 100000 && pending; k++) {
            aio_poll(ctx, true);
            for (pending = 0, i = 0; i < N; i++) {
                pending += !reqs[i].done;
            }
        }
        for (i = 0; i < N; i++) {
            uint8_t byte;

            g_assert_true(reqs[i].done);
            g_assert_cmpint(reqs[i].ret, ==, 0);
            g_assert_cmpint(pread(fd, &byte, 1, (off_t)i * ENG_PAGE), ==, 1);
            g_assert_cmpint(byte, ==, (uint8_t)(b * N + i));
        }
    }
    free(buf);
    close(fd);
    aio_context_unref(ctx);
}

/* ---- Block layer misuse that aborts -------------------------------------- */

/* In the subprocess of an abort test: submit from outside a coroutine. */
static void test_engine_submit_outside_coroutine(gconstpointer data)
{
    int engine = GPOINTER_TO_INT(data);

    if (g_test_subprocess()) {
        AioContext *ctx = eng_subprocess_ctx(engine);
        uint8_t buf[512];
        QEMUIOVector qiov;

        g_assert_nonnull(ctx);
        qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
        eng_submit(engine, 0, 0, &qiov, QEMU_AIO_READ, 0);
        g_error("%s: a request submitted outside a coroutine returned",
                eng_names[engine]);
    }
    if (!eng_compiled(engine)) {
        g_test_skip("engine not compiled in");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr(engine == ENG_LAIO ?
                              "*laio_co_submit: *outside a coroutine*" :
                              "*luring_co_submit: *outside a coroutine*");
}

/*
 * A context destroyed with a Linux AIO request still queued aborts, by
 * design: the request's coroutine would wait for ever and the kernel
 * might still write into its buffer.  The message says what to do.
 */
static void test_laio_destroy_with_request_aborts(void)
{
    if (g_test_subprocess()) {
        AioContext *ctx = eng_subprocess_ctx(ENG_LAIO);
        int fd = eng_open_file(false, 1, 0);
        uint8_t *buf = eng_alloc(ENG_PAGE);
        QEMUIOVector qiov;
        EngReq r = {
            .engine = ENG_LAIO, .fd = fd, .qiov = &qiov,
            .type = QEMU_AIO_READ,
        };

        qemu_iovec_init_buf(&qiov, buf, ENG_PAGE);
        qemu_coroutine_enter(qemu_coroutine_create(eng_req_co, &r));
        g_assert_false(r.done);
        aio_context_unref(ctx);
        g_error("the context was destroyed with a request outstanding");
    }
    if (!eng_compiled(ENG_LAIO)) {
        g_test_skip("engine not compiled in");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*laio_detach_aio_context: Linux AIO engine "
                              "*still has 1 requests queued and 0 in flight; "
                              "drain them before detaching it or destroying "
                              "its AioContext*");
}

/*
 * io_uring drains instead, when the context is destroyed in its own
 * thread: the request completes (with its data) during the destruction,
 * and its coroutine runs to the end.
 */
static void test_luring_destroy_in_home_thread_drains(void)
{
    AioContext *ctx;
    uint8_t *buf;
    QEMUIOVector qiov;
    EngReq r = { .engine = ENG_LURING, .type = QEMU_AIO_READ };
    int fd;

    if (!in_subprocess() || !(ctx = eng_subprocess_ctx(ENG_LURING))) {
        return;
    }
    fd = eng_open_file(false, 1, 0x3c);
    buf = eng_alloc(ENG_PAGE);
    memset(buf, 0, ENG_PAGE);
    qemu_iovec_init_buf(&qiov, buf, ENG_PAGE);
    r.fd = fd;
    r.qiov = &qiov;
    qemu_coroutine_enter(qemu_coroutine_create(eng_req_co, &r));
    g_assert_false(r.done);
    aio_context_unref(ctx);
    g_assert_true(r.done);
    g_assert_cmpint(r.ret, ==, 0);
    g_assert_cmpint(buf[0], ==, 0x3c);
    g_assert_cmpint(buf[ENG_PAGE - 1], ==, 0x3c);
    free(buf);
    close(fd);
}

typedef struct PipeRead {
    int fds[2];
    uint8_t buf[16];
    QEMUIOVector qiov;
    EngReq r;
    QemuSemaphore submitted;
} PipeRead;

/* In the IOThread: a read of an empty pipe, which stays in flight. */
static void pipe_read_bh(void *opaque)
{
    PipeRead *p = opaque;

    eng_setup(qemu_get_current_aio_context(), ENG_LURING, &error_abort);
    qemu_iovec_init_buf(&p->qiov, p->buf, sizeof(p->buf));
    p->r = (EngReq) {
        .engine = ENG_LURING, .fd = p->fds[0], .qiov = &p->qiov,
        .type = QEMU_AIO_READ,
    };
    qemu_coroutine_enter(qemu_coroutine_create(eng_req_co, &p->r));
    qemu_sem_post(&p->submitted);
}

/*
 * ... but destroyed from another thread (here: the last reference of an
 * IOThread's context, dropped by iothread_destroy() in the main thread)
 * with a request in flight, it cannot run the loop, and aborts naming the
 * way out.
 */
static void test_luring_destroy_elsewhere_aborts(void)
{
    if (g_test_subprocess()) {
        IOThread *iothread = iothread_create("in-flight", &error_abort);
        PipeRead p;

        g_assert_cmpint(pipe2(p.fds, O_CLOEXEC), ==, 0);
        qemu_sem_init(&p.submitted, 0);
        aio_bh_schedule_oneshot(iothread_get_aio_context(iothread),
                                pipe_read_bh, &p);
        qemu_sem_wait(&p.submitted);
        iothread_destroy(iothread);
        g_error("the context was destroyed with a request outstanding");
    }
    if (!eng_compiled(ENG_LURING)) {
        g_test_skip("engine not compiled in");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*luring_detach_aio_context: io_uring engine "
                              "*still has * requests queued and * in flight; "
                              "detach it from its AioContext in that "
                              "context's thread, or drain them first*");
}

/* ---- Thread pool --------------------------------------------------------- */

static int pool_job_fn(void *opaque)
{
    return 7;
}

static void pool_job_cb(void *opaque, int ret)
{
    g_assert_cmpint(ret, ==, 7);
    (*(int *)opaque)++;
}

/*
 * Invalid limits: an Error that names both values and the rule, and the
 * limits in force do not change; the pool then runs jobs within them.
 */
static void test_pool_params_invalid(void)
{
    static const int64_t bad[][2] = {
        { -1, 4 }, { 0, 0 }, { 0, -1 }, { 5, 4 },
        { 0, (int64_t)INT_MAX + 1 }, { INT64_MIN, INT64_MAX },
    };
    AioContext *ctx;
    QaioThreadPoolMetrics m;
    int done = 0;
    int i;

    if (!in_subprocess()) {
        return;
    }
    ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(ctx);
    aio_context_set_thread_pool_params(ctx, 1, 2, &error_abort);
    for (i = 0; i < (int)G_N_ELEMENTS(bad); i++) {
        g_autofree char *want = g_strdup_printf(
            "invalid thread pool size: min %" PRId64 " max %" PRId64
            " (need 0 <= min <= max, 1 <= max <= %d)",
            bad[i][0], bad[i][1], INT_MAX);
        Error *err = NULL;

        aio_context_set_thread_pool_params(ctx, bad[i][0], bad[i][1], &err);
        g_assert_nonnull(err);
        g_assert_cmpstr(error_get_pretty(err), ==, want);
        error_free(err);
        g_assert_cmpint(ctx->thread_pool_min, ==, 1);
        g_assert_cmpint(ctx->thread_pool_max, ==, 2);
    }
    for (i = 0; i < 8; i++) {
        thread_pool_submit_aio(pool_job_fn, NULL, pool_job_cb, &done);
    }
    for (i = 0; i < 100000 && done < 8; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(done, ==, 8);
    g_assert_true(qaio_thread_pool_metrics_get(ctx, &m));
    g_assert_cmpuint(m.completed, ==, 8);
    g_assert_cmpuint(m.threads, >=, 1);
    g_assert_cmpuint(m.threads, <=, 2);
    aio_context_unref(ctx);
}

/*
 * No thread can be created (clone3 and clone fail with EAGAIN, what a
 * low RLIMIT_NPROC gives; the limit itself does not bind root): the first
 * submission, which must start a worker, aborts naming qemu_thread_create
 * and the cause, as in QEMU.  There is no worker to run the job, so
 * going on would hang its completion for ever.
 */
static void test_pool_no_thread_aborts(void)
{
    static const SyscallFault faults[] = {
        { __NR_clone3, EAGAIN },
        { __NR_clone, EAGAIN },
    };

    if (g_test_subprocess()) {
        AioContext *ctx = aio_context_new(&error_abort);
        int done = 0;

        qemu_set_current_aio_context(ctx);
        if (!inject_syscall_faults(faults, G_N_ELEMENTS(faults))) {
            /* The parent sees a pass and skips. */
            aio_context_unref(ctx);
            return;
        }
        thread_pool_submit_aio(pool_job_fn, NULL, pool_job_cb, &done);
        g_error("a thread pool job was submitted without a worker");
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    if (g_test_trap_has_passed()) {
        g_test_skip("seccomp filters are not available");
        return;
    }
    g_test_trap_assert_stderr("*qemu_thread_create: "
                              "Resource temporarily unavailable*");
}

int main(int argc, char **argv)
{
    int e;

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

    /* The block layer */
    g_test_add_func("/faults/nofile/engines", test_nofile_engines);
    g_test_add_func("/faults/io-uring/disabled-falls-back",
                    test_io_uring_disabled);
    for (e = 0; e < ENG_KINDS; e++) {
        static const char *const dir[ENG_KINDS] = { "linux-aio", "io-uring" };
        static const struct {
            const char *name;
            GTestDataFunc fn;
        } cases[] = {
            { "bad-fd", test_engine_bad_fd },
            { "direct-unaligned", test_engine_direct_unaligned },
            { "huge-offset", test_engine_huge_offset },
            { "zero-length", test_engine_zero_length },
            { "too-many-iovecs", test_engine_too_many_iovecs },
            { "unknown-type", test_engine_unknown_type },
            { "batch-extremes", test_engine_batch_extremes },
            { "submit-outside-coroutine-aborts",
              test_engine_submit_outside_coroutine },
        };
        size_t i;

        for (i = 0; i < G_N_ELEMENTS(cases); i++) {
            g_autofree char *path = g_strdup_printf("/faults/%s/%s", dir[e],
                                                    cases[i].name);

            g_test_add_data_func(path, GINT_TO_POINTER(e), cases[i].fn);
        }
    }
    g_test_add_func("/faults/linux-aio/destroy-with-request-queued-aborts",
                    test_laio_destroy_with_request_aborts);
    g_test_add_func("/faults/io-uring/destroy-in-home-thread-drains",
                    test_luring_destroy_in_home_thread_drains);
    g_test_add_func("/faults/io-uring/destroy-elsewhere-in-flight-aborts",
                    test_luring_destroy_elsewhere_aborts);
    g_test_add_func("/faults/thread-pool/params-invalid",
                    test_pool_params_invalid);
    g_test_add_func("/faults/thread-pool/no-thread-aborts",
                    test_pool_no_thread_aborts);

    return g_test_run();
}
