/*
 * test-blk-linux-aio.c: what only the Linux AIO engine does (laio_*,
 * block/raw-aio.h); test-blk.c runs the cases every engine shares.
 *
 * The engine's private counters (src/blk-int.h) show how requests were
 * batched; io_submit() calls are counted exactly where the batching rules
 * fix their number.  Also: the fdsync probe, short writes, the kernel's
 * queue running full (reaping from the ring and with io_getevents()), busy
 * polling, a request refused in the middle of a batch, the request types
 * Linux AIO lacks, io_setup() failures and misuse.  Registered with
 * 'fdmon': completions come through an eventfd watched by each fd monitor
 * in turn.
 *
 * Threading: the main thread runs the main context; the queue-full and
 * busy-poll cases run the engine in an IOThread and wait on a semaphore.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/raw-aio.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/main-loop.h"
#include "qaio/iothread.h"
#include "../src/blk-int.h"
#include "blk-test-util.h"
#include <signal.h>
#include <sys/resource.h>

#define PAGE BLK_TEST_PAGE

static LinuxAioState *main_engine(void)
{
    return aio_setup_linux_aio(qemu_get_aio_context(), &error_abort);
}

/* In an IOThread: its engine, with counters from zero. */
static void *thread_engine(AioContext *ctx)
{
    LinuxAioState *s = aio_setup_linux_aio(ctx, &error_abort);

    qaio_int_laio_reset_stats(s);
    return s;
}

typedef struct StatsCall {
    LinuxAioState *s;
    LaioStats stats;
} StatsCall;

static void get_stats_fn(void *opaque)
{
    StatsCall *c = opaque;

    qaio_int_laio_get_stats(c->s, &c->stats);
}

/* The counters of a job's engine, read in the engine's thread. */
static LaioStats job_stats(BlkTestJob *j)
{
    StatsCall c = { .s = j->engine };

    blk_test_call_in(j->ctx, get_stats_fn, &c);
    return c.stats;
}

/* ---- fdsync ------------------------------------------------------------- */

/* Files with an fsync method can; pipes and bad fds cannot. */
static void test_has_fdsync(void)
{
    int fd = blk_test_open(false);
    int dfd = blk_test_direct_dir() ? blk_test_open(true) : -1;
    int pipefd[2];

    g_assert_true(laio_has_fdsync(fd));
    if (dfd >= 0) {
        g_assert_true(laio_has_fdsync(dfd));
        close(dfd);
    }
    g_assert_cmpint(pipe(pipefd), ==, 0);
    g_assert_false(laio_has_fdsync(pipefd[0]));
    g_assert_false(laio_has_fdsync(-1));
    close(pipefd[0]);
    close(pipefd[1]);
    close(fd);
}

/* ---- Short writes ------------------------------------------------------- */

/* A write cut short (here by RLIMIT_FSIZE) is -ENOSPC. */
static void test_short_write(void)
{
    uint8_t *buf = blk_test_alloc(PAGE);
    uint8_t back[100];
    struct rlimit old, lim;
    void (*old_handler)(int);
    int fd = blk_test_open(false);

    blk_test_fill_random(buf, PAGE);
    main_engine();
    g_assert_cmpint(getrlimit(RLIMIT_FSIZE, &old), ==, 0);
    lim = old;
    lim.rlim_cur = 10 * PAGE;
    /* Past the limit the kernel also raises SIGXFSZ. */
    old_handler = signal(SIGXFSZ, SIG_IGN);
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &lim), ==, 0);

    g_assert_cmpint(blk_test_run_buf(fd, 10 * PAGE - 100, buf, PAGE,
                                     QEMU_AIO_WRITE), ==, -ENOSPC);
    g_assert_cmpint(blk_test_run_buf(fd, 10 * PAGE, buf, PAGE,
                                     QEMU_AIO_WRITE), ==, -EFBIG);

    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &old), ==, 0);
    signal(SIGXFSZ, old_handler);
    /* What did get written is there. */
    blk_test_pread(fd, back, 100, 10 * PAGE - 100);
    g_assert_cmpmem(back, 100, buf, 100);
    close(fd);
    free(buf);
}

/* ---- Batching ----------------------------------------------------------- */

#define MANY 1000

/*
 * MANY one-page writes from as many coroutines, started before the loop
 * runs, then reads: each batch of LAIO_DEFAULT_MAX_BATCH goes to the
 * kernel at once, the rest from the bottom half.  (The data is
 * test-blk.c's business.)
 */
static void test_default_batch(const void *opaque)
{
    bool direct = GPOINTER_TO_INT(opaque);
    LinuxAioState *s = main_engine();
    g_autofree BlkTestReq *reqs = g_new0(BlkTestReq, MANY);
    g_autofree QEMUIOVector *qiovs = g_new(QEMUIOVector, MANY);
    uint8_t *mem = blk_test_alloc((size_t)MANY * PAGE);
    unsigned expected_calls = DIV_ROUND_UP(MANY, LAIO_DEFAULT_MAX_BATCH);
    LaioStats st;
    int fd = blk_test_open(direct);
    int pass, i;

    memset(mem, 0, (size_t)MANY * PAGE);
    for (pass = 0; pass < 2 && fd >= 0; pass++) {
        qaio_int_laio_reset_stats(s);
        for (i = 0; i < MANY; i++) {
            blk_test_page_req(&reqs[i], &qiovs[i], fd, mem, i,
                              pass == 0 ? QEMU_AIO_WRITE : QEMU_AIO_READ);
        }
        blk_test_run_all(reqs, MANY);
        for (i = 0; i < MANY; i++) {
            g_assert_cmpint(reqs[i].ret, ==, 0);
        }
        qaio_int_laio_get_stats(s, &st);
        g_test_message("%s pass: %" PRIu64 " io_submit calls, largest batch "
                       "%u, peak in flight %u, reaped %" PRIu64 " from the "
                       "ring and %" PRIu64 " by io_getevents",
                       pass == 0 ? "write" : "read", st.ioq.submit_calls,
                       st.ioq.largest_batch, st.ioq.max_in_flight,
                       st.ring_reaped, st.syscall_reaped);
        g_assert_cmpuint(st.ioq.submitted, ==, MANY);
        g_assert_cmpuint(st.ioq.kernel_full, ==, 0);
        g_assert_cmpuint(st.ioq.submit_calls, ==, expected_calls);
        g_assert_cmpuint(st.ioq.largest_batch, ==, LAIO_DEFAULT_MAX_BATCH);
        g_assert_cmpuint(st.ring_reaped + st.syscall_reaped, ==, MANY);
    }
    if (fd >= 0) {
        close(fd);
    }
    free(mem);
}

/* Run @n one-page writes at once; return the io_submit() calls made. */
static uint64_t batched_writes(int fd, int n, uint64_t dev_max_batch,
                               unsigned *largest)
{
    LinuxAioState *s = main_engine();
    g_autofree BlkTestReq *reqs = g_new0(BlkTestReq, n);
    g_autofree QEMUIOVector *qiovs = g_new(QEMUIOVector, n);
    uint8_t *buf = blk_test_alloc((size_t)n * PAGE);
    LaioStats st;
    int i;

    blk_test_fill_random(buf, (size_t)n * PAGE);
    qaio_int_laio_reset_stats(s);
    for (i = 0; i < n; i++) {
        blk_test_page_req(&reqs[i], &qiovs[i], fd, buf, i, QEMU_AIO_WRITE);
        reqs[i].dev_max_batch = dev_max_batch;
    }
    blk_test_run_all(reqs, n);
    for (i = 0; i < n; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
    }
    qaio_int_laio_get_stats(s, &st);
    g_assert_cmpuint(st.ioq.submitted, ==, n);
    *largest = st.ioq.largest_batch;
    free(buf);
    return st.ioq.submit_calls;
}

/* The context's aio_max_batch and the device's limit, the smaller wins. */
static void test_max_batch(void)
{
    AioContext *ctx = qemu_get_aio_context();
    int fd = blk_test_open(false);
    unsigned largest;

    aio_context_set_aio_params(ctx, 8);
    g_assert_cmpuint(batched_writes(fd, 64, 0, &largest), ==, 8);
    g_assert_cmpuint(largest, ==, 8);
    g_assert_cmpuint(batched_writes(fd, 64, 4, &largest), ==, 16);
    g_assert_cmpuint(largest, ==, 4);
    g_assert_cmpuint(batched_writes(fd, 64, 100, &largest), ==, 8);
    g_assert_cmpuint(largest, ==, 8);
    /* Fewer than a batch: one io_submit from the bottom half. */
    g_assert_cmpuint(batched_writes(fd, 5, 0, &largest), ==, 1);
    g_assert_cmpuint(largest, ==, 5);

    aio_context_set_aio_params(ctx, 0);
    g_assert_cmpuint(batched_writes(fd, 64, 0, &largest), ==, 2);
    g_assert_cmpuint(largest, ==, LAIO_DEFAULT_MAX_BATCH);
    g_assert_cmpuint(batched_writes(fd, 64, 16, &largest), ==, 4);
    g_assert_cmpuint(largest, ==, 16);
    close(fd);
}

/*
 * Buffered reads complete inside io_submit(), so there is no device to
 * keep busy: reads issued while completions are handled (each coroutine
 * reads twice) still wait for one batch rather than go out one by one as
 * the device-starved rule would send them for O_DIRECT.
 */
#define INLINE_READERS 16

static void test_inline_completions_batched(void)
{
    LinuxAioState *s = main_engine();
    BlkTestReq reqs[INLINE_READERS];
    QEMUIOVector qiovs[INLINE_READERS];
    uint8_t *mem = blk_test_alloc((size_t)INLINE_READERS * PAGE);
    g_autofree uint8_t *expect = g_malloc((size_t)INLINE_READERS * PAGE);
    LaioStats st;
    int fd = blk_test_open(false);
    int i;

    blk_test_fill_random(expect, (size_t)INLINE_READERS * PAGE);
    g_assert_cmpint(pwrite(fd, expect, (size_t)INLINE_READERS * PAGE, 0), ==,
                    (ssize_t)INLINE_READERS * PAGE);
    memset(mem, 0, (size_t)INLINE_READERS * PAGE);
    for (i = 0; i < INLINE_READERS; i++) {
        blk_test_page_req(&reqs[i], &qiovs[i], fd, mem, i, QEMU_AIO_READ);
        reqs[i].repeat = 1;
    }
    qaio_int_laio_reset_stats(s);
    blk_test_run_all(reqs, INLINE_READERS);
    for (i = 0; i < INLINE_READERS; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
    }
    g_assert_cmpmem(mem, (size_t)INLINE_READERS * PAGE, expect,
                    (size_t)INLINE_READERS * PAGE);
    qaio_int_laio_get_stats(s, &st);
    g_assert_cmpuint(st.ioq.submitted, ==, 2 * INLINE_READERS);
    g_assert_cmpuint(st.ioq.submit_calls, ==, 2);
    g_assert_cmpuint(st.ioq.largest_batch, ==, INLINE_READERS);
    g_assert_cmpuint(st.ioq.early_submits, ==, 0);
    g_assert_cmpuint(st.ioq.submit_reaped, ==, 2 * INLINE_READERS);
    free(mem);
    close(fd);
}

/*
 * An engine allowed more requests in flight than its kernel context holds
 * (io_setup(1) gives a one-page ring of 127 events) and a batch limit above
 * MANY: the kernel runs out of room, the rest stays queued and goes in as
 * completions are reaped.  @opaque selects reaping with io_getevents().
 */
static void test_queue_full(const void *opaque)
{
    bool no_ring = GPOINTER_TO_INT(opaque);
    IOThreadOptions opts = IOTHREAD_OPTIONS_DEFAULT;
    LaioParams params = {
        .nr_events = 1, .max_in_flight = 4 * MANY, .no_ring = no_ring,
    };
    size_t len = (size_t)MANY * PAGE;
    g_autofree uint8_t *expect = NULL;
    IOThread *iothread;
    BlkTestJob j;
    LaioStats st;
    int fd = blk_test_open(false);

    opts.aio_max_batch = 2 * MANY;
    iothread = iothread_create_full("laio-full", &opts, &error_abort);
    qaio_int_laio_set_params(&params);
    blk_test_job_init(&j, iothread_get_aio_context(iothread), laio_co_submit,
                      thread_engine, fd, MANY);
    expect = g_memdup2(j.mem, len);

    blk_test_job_start(&j, true);
    blk_test_job_wait(&j);
    qaio_int_laio_set_params(NULL);
    st = job_stats(&j);
    g_test_message("%" PRIu64 " io_submit calls, %" PRIu64 " found the "
                   "kernel full, largest batch %u, peak in flight %u",
                   st.ioq.submit_calls, st.ioq.kernel_full,
                   st.ioq.largest_batch, st.ioq.max_in_flight);
    g_assert_cmpuint(st.ioq.submitted, ==, MANY);
    g_assert_cmpuint(st.ioq.kernel_full, >=, 1);
    g_assert_cmpuint(st.ioq.largest_batch, <, 127);
    g_assert_cmpuint(st.ioq.max_in_flight, <, 127);
    g_assert_cmpint(qaio_int_laio_uses_ring(j.engine), ==, !no_ring);
    if (no_ring) {
        g_assert_cmpuint(st.ring_reaped, ==, 0);
        g_assert_cmpuint(st.syscall_reaped, ==, MANY);
    } else {
        g_assert_cmpuint(st.ring_reaped, ==, MANY);
        g_assert_cmpuint(st.syscall_reaped, ==, 0);
    }

    memset(j.mem, 0xa5, len);
    blk_test_job_start(&j, false);
    blk_test_job_wait(&j);
    g_assert_cmpmem(j.mem, len, expect, len);
    iothread_destroy(iothread);
    close(fd);
    blk_test_job_destroy(&j);
}

/*
 * One coroutine in an IOThread that busy-polls with a long window: O_DIRECT
 * requests one at a time, so most completions arrive while the loop polls
 * and are reaped through the io_poll handler.  How many is up to the
 * device's timing, so it is reported, not asserted; the data is.
 */
#define POLLED_REQUESTS 200

typedef struct PollJob {
    int fd;
    uint8_t *data;
    uint8_t *back;
    int ret;
    LaioStats stats;
    QemuSemaphore done;
} PollJob;

static void coroutine_fn poll_job_co(void *opaque)
{
    PollJob *p = opaque;
    LinuxAioState *s = thread_engine(qemu_get_current_aio_context());
    QEMUIOVector qiov;
    int i;

    p->ret = 0;
    for (i = 0; i < 2 * POLLED_REQUESTS && p->ret == 0; i++) {
        bool write = i < POLLED_REQUESTS;
        int page = i % POLLED_REQUESTS;
        uint8_t *mem = write ? p->data : p->back;

        qemu_iovec_init_buf(&qiov, mem + (size_t)page * PAGE, PAGE);
        p->ret = laio_co_submit(p->fd, (uint64_t)page * PAGE, &qiov,
                                write ? QEMU_AIO_WRITE : QEMU_AIO_READ, 0);
    }
    qaio_int_laio_get_stats(s, &p->stats);
    qemu_sem_post(&p->done);
}

static void poll_job_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(poll_job_co, opaque));
}

static void test_busy_poll(void)
{
    IOThreadOptions opts = IOTHREAD_OPTIONS_DEFAULT;
    size_t len = (size_t)POLLED_REQUESTS * PAGE;
    IOThread *iothread;
    PollJob p = { 0 };

    p.fd = blk_test_open(true);
    if (p.fd < 0) {
        return;
    }
    opts.poll_max_ns = 1000 * 1000 * 1000;
    iothread = iothread_create_full("laio-poll", &opts, &error_abort);
    p.data = blk_test_alloc(len);
    p.back = blk_test_alloc(len);
    blk_test_fill_random(p.data, len);
    memset(p.back, 0xa5, len);
    qemu_sem_init(&p.done, 0);

    aio_bh_schedule_oneshot(iothread_get_aio_context(iothread), poll_job_bh,
                            &p);
    qemu_sem_wait(&p.done);
    g_assert_cmpint(p.ret, ==, 0);
    g_assert_cmpmem(p.back, len, p.data, len);
    g_assert_cmpuint(p.stats.ioq.submitted, ==, 2 * POLLED_REQUESTS);
    g_test_message("%" PRIu64 " of %d completions reaped by busy polling",
                   p.stats.ioq.poll_reaped, 2 * POLLED_REQUESTS);

    iothread_destroy(iothread);
    qemu_sem_destroy(&p.done);
    free(p.data);
    free(p.back);
    close(p.fd);
}

/* ---- Errors ------------------------------------------------------------- */

/*
 * A refused request in the middle of a batch fails alone: io_submit takes
 * the three before it, refuses it on the next call, takes the rest on the
 * third.
 */
static void test_bad_fd_in_batch(void)
{
    AioContext *ctx = qemu_get_aio_context();
    LinuxAioState *s = main_engine();
    uint8_t *buf = blk_test_alloc(8 * PAGE);
    QEMUIOVector qiovs[8];
    BlkTestReq reqs[8];
    LaioStats st;
    int fd = blk_test_open(false);
    int i;

    blk_test_fill_random(buf, 8 * PAGE);
    aio_context_set_aio_params(ctx, 8);
    qaio_int_laio_reset_stats(s);
    for (i = 0; i < 8; i++) {
        blk_test_page_req(&reqs[i], &qiovs[i], i == 3 ? -1 : fd, buf, i,
                          QEMU_AIO_WRITE);
    }
    blk_test_run_all(reqs, 8);
    aio_context_set_aio_params(ctx, 0);
    for (i = 0; i < 8; i++) {
        g_assert_cmpint(reqs[i].ret, ==, i == 3 ? -EBADF : 0);
    }
    qaio_int_laio_get_stats(s, &st);
    g_assert_cmpuint(st.ioq.submit_calls, ==, 3);
    g_assert_cmpuint(st.ioq.submitted, ==, 7);
    g_assert_cmpuint(st.ioq.largest_batch, ==, 4);
    g_assert_cmpuint(st.ioq.kernel_full, ==, 1);
    close(fd);
    free(buf);
}

/* Linux AIO has no discard, write-zeroes or truncate command. */
static void test_unsupported_types(void)
{
    uint8_t *buf = blk_test_alloc(PAGE);
    int fd = blk_test_open(false);

    main_engine();
    g_assert_cmpint(blk_test_run_buf(fd, 0, buf, PAGE, QEMU_AIO_DISCARD),
                    ==, -ENOTSUP);
    g_assert_cmpint(blk_test_run_buf(fd, 0, buf, PAGE,
                                     QEMU_AIO_WRITE_ZEROES), ==, -ENOTSUP);
    g_assert_cmpint(blk_test_run(fd, 0, NULL, QEMU_AIO_TRUNCATE), ==,
                    -ENOTSUP);
    close(fd);
    free(buf);
}

/*
 * The kernel moves at most 2 GiB - 4 KiB per request and would report a
 * bigger one as short (end of file for a read, a full disk for a write):
 * the engine refuses it before submitting.  The buffer is never touched.
 */
static void test_over_kernel_limit(void)
{
    uint8_t *buf = blk_test_alloc(PAGE);
    int fd = blk_test_open(false);
    struct iovec iov[2] = {
        { .iov_base = buf, .iov_len = (size_t)1 << 30 },
        { .iov_base = buf, .iov_len = (size_t)1 << 30 },
    };
    QEMUIOVector qiov;

    main_engine();
    qemu_iovec_init_external(&qiov, iov, 2);
    g_assert_cmpint(blk_test_run(fd, 0, &qiov, QEMU_AIO_READ), ==, -EINVAL);
    g_assert_cmpint(blk_test_run(fd, 0, &qiov, QEMU_AIO_WRITE), ==, -EINVAL);
    close(fd);
    free(buf);
}

/* ---- Setup -------------------------------------------------------------- */

static unsigned read_aio_max_nr(void)
{
    g_autofree char *text = NULL;

    g_assert_true(g_file_get_contents("/proc/sys/fs/aio-max-nr", &text,
                                      NULL, NULL));
    return (unsigned)g_ascii_strtoull(text, NULL, 10);
}

static void check_init_fails(unsigned nr_events, int err)
{
    LaioParams params = { .nr_events = nr_events };
    AioContext *ctx = aio_context_new(&error_abort);
    g_autofree char *expect = NULL;
    Error *local_err = NULL;

    qaio_int_laio_set_params(&params);
    g_assert_null(laio_init(&local_err));
    g_assert_nonnull(local_err);
    expect = g_strdup_printf("io_setup(%u) failed", nr_events);
    g_assert_nonnull(strstr(error_get_pretty(local_err), expect));
    g_assert_nonnull(strstr(error_get_pretty(local_err), g_strerror(err)));
    error_free(local_err);
    local_err = NULL;

    /* Through the context: no state is left behind, and a retry works. */
    g_assert_null(aio_setup_linux_aio(ctx, &local_err));
    g_assert_nonnull(local_err);
    g_assert_null(aio_get_linux_aio(ctx));
    error_free(local_err);
    qaio_int_laio_set_params(NULL);
    g_assert_nonnull(aio_setup_linux_aio(ctx, &error_abort));
    aio_context_unref(ctx);
}

static void test_init_fails(void)
{
    unsigned max_nr = read_aio_max_nr();

    /* More events than the kernel's ring can ever hold. */
    check_init_fails(0x7fffffff, EINVAL);
    /* More than fs.aio-max-nr allows (when the ring could hold them). */
    if (max_nr < 0x10000000U / 32 / 2) {
        check_init_fails(max_nr + 1, EAGAIN);
    } else {
        g_test_message("fs.aio-max-nr %u is too large to exceed", max_nr);
    }
}

/* ---- Misuse ------------------------------------------------------------- */

static void coroutine_fn submit_without_engine_co(void *opaque)
{
    laio_co_submit(0, 0, NULL, QEMU_AIO_FLUSH, 0);
}

static void test_no_engine(void)
{
    if (g_test_subprocess()) {
        /* The subprocess never set up an engine in the main context. */
        qemu_coroutine_enter(qemu_coroutine_create(submit_without_engine_co,
                                                   NULL));
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*has no Linux AIO engine*"
                              "aio_setup_linux_aio*");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);
    blk_test_submit = laio_co_submit;

    g_test_add_func("/blk-linux-aio/has-fdsync", test_has_fdsync);
    g_test_add_func("/blk-linux-aio/short-write-is-enospc", test_short_write);
    g_test_add_data_func("/blk-linux-aio/batch/default/buffered",
                         GINT_TO_POINTER(false), test_default_batch);
    g_test_add_data_func("/blk-linux-aio/batch/default/direct",
                         GINT_TO_POINTER(true), test_default_batch);
    g_test_add_func("/blk-linux-aio/batch/max-batch", test_max_batch);
    g_test_add_func("/blk-linux-aio/batch/inline-completions-batched",
                    test_inline_completions_batched);
    g_test_add_data_func("/blk-linux-aio/queue-full/ring",
                         GINT_TO_POINTER(false), test_queue_full);
    g_test_add_data_func("/blk-linux-aio/queue-full/io-getevents",
                         GINT_TO_POINTER(true), test_queue_full);
    g_test_add_func("/blk-linux-aio/busy-poll", test_busy_poll);
    g_test_add_func("/blk-linux-aio/error/bad-fd-in-batch",
                    test_bad_fd_in_batch);
    g_test_add_func("/blk-linux-aio/error/unsupported-types",
                    test_unsupported_types);
    g_test_add_func("/blk-linux-aio/error/over-kernel-limit",
                    test_over_kernel_limit);
    g_test_add_func("/blk-linux-aio/setup/io-setup-fails", test_init_fails);
    g_test_add_func("/blk-linux-aio/misuse/no-engine", test_no_engine);

    return g_test_run();
}
