/*
 * test-blk-io_uring.c: what only the io_uring engine does (luring_*,
 * block/raw-aio.h); test-blk.c runs the cases every engine shares.
 *
 * Short transfers and -EAGAIN completions are forced through the engine's
 * fault injection knobs (src/blk-int.h), so the resubmission paths run
 * every time, and counted exactly; so is batching, and the in-flight cap
 * that keeps the CQ ring from overflowing.  Also: busy polling, discard
 * and write-zeroes, the request types io_uring lacks, detach with requests
 * outstanding, setup failure (QAIO_DISABLE_IO_URING) and misuse.
 * Registered with 'fdmon': the eventfd of the engine is watched by each fd
 * monitor.
 *
 * Threading: the main thread runs the main loop's context; the busy-poll
 * case drives an engine in an IOThread.
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

#define BLOCK BLK_TEST_PAGE

static int coroutine_fn submit(int fd, uint64_t offset, QEMUIOVector *qiov,
                               int type, uint64_t dev_max_batch)
{
    return luring_co_submit(NULL, fd, offset, qiov, type);
}

static LuringState *main_engine(void)
{
    return aio_setup_linux_io_uring(qemu_get_aio_context(), &error_abort);
}

static LuringStats engine_stats(LuringState *s)
{
    LuringStats st;

    qaio_int_luring_get_stats(s, &st);
    return st;
}

/*
 * Reads: @n one-block reads from as many coroutines, of a fresh file that
 * holds @data (or @n blocks of zeroes).
 */
typedef struct Reads {
    int n;
    int fd;
    const uint8_t *data;
    uint8_t *buf;
    BlkTestReq *reqs;
    QEMUIOVector *qiovs;
    unsigned pending;
} Reads;

/* Start every read (each submits and yields); none is waited for. */
static void reads_start(Reads *r, int n, const uint8_t *data)
{
    size_t len = (size_t)n * BLOCK;
    int i;

    *r = (Reads) {
        .n = n, .fd = blk_test_open(false), .data = data,
        .buf = g_malloc(len), .reqs = g_new(BlkTestReq, n),
        .qiovs = g_new(QEMUIOVector, n), .pending = n,
    };
    if (data) {
        g_assert_cmpint(pwrite(r->fd, data, len, 0), ==, len);
    } else {
        g_assert_cmpint(ftruncate(r->fd, len), ==, 0);
    }
    memset(r->buf, 0xaa, len);
    for (i = 0; i < n; i++) {
        blk_test_page_req(&r->reqs[i], &r->qiovs[i], r->fd, r->buf, i,
                          QEMU_AIO_READ);
        r->reqs[i].pending = &r->pending;
        blk_test_req_start(&r->reqs[i]);
    }
}

/* Wait for the reads; each must have read its block. */
static void reads_finish(Reads *r)
{
    size_t len = (size_t)r->n * BLOCK;
    g_autofree uint8_t *zeros = g_malloc0(len);
    int i;

    blk_test_poll_until_zero(&r->pending);
    for (i = 0; i < r->n; i++) {
        g_assert_cmpint(r->reqs[i].ret, ==, 0);
    }
    g_assert_cmpmem(r->buf, len, r->data ? r->data : zeros, len);
    close(r->fd);
    g_free(r->buf);
    g_free(r->reqs);
    g_free(r->qiovs);
}

/* ---- Setup and misuse --------------------------------------------------- */

static void test_setup_disabled(void)
{
    AioContext *ctx;
    Error *err = NULL;

    if (!g_test_subprocess()) {
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
        g_test_trap_assert_passed();
        return;
    }

    ctx = aio_context_new(&error_abort);
    g_assert_null(aio_get_linux_io_uring(ctx));

    g_setenv("QAIO_DISABLE_IO_URING", "1", true);
    g_assert_null(aio_setup_linux_io_uring(ctx, &err));
    g_unsetenv("QAIO_DISABLE_IO_URING");

    g_assert_nonnull(err);
    g_assert_nonnull(strstr(error_get_pretty(err), "io_uring"));
    g_assert_nonnull(strstr(error_get_pretty(err), g_strerror(ENOSYS)));
    error_free(err);
    g_assert_null(aio_get_linux_io_uring(ctx));

    /* Nothing was left behind: a later setup works. */
    g_assert_nonnull(aio_setup_linux_io_uring(ctx, &error_abort));
    aio_context_unref(ctx);
}

static void coroutine_fn submit_without_engine_co(void *opaque)
{
    char buf[16] = { 0 };
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    luring_co_submit(NULL, 0, 0, &qiov, QEMU_AIO_READ);
}

static void test_submit_without_engine(void)
{
    if (!g_test_subprocess()) {
        g_test_trap_subprocess(NULL, 0, 0);
        g_test_trap_assert_failed();
        g_test_trap_assert_stderr("*has no io_uring engine*"
                                  "aio_setup_linux_io_uring*");
        return;
    }
    /* A fresh process: the main context has no engine yet. */
    qemu_coroutine_enter(qemu_coroutine_create(submit_without_engine_co,
                                               NULL));
}

/* ---- Resubmission ------------------------------------------------------- */

#define EOF_SIZE 10000

/*
 * Across the end of the file: the kernel's short read is resubmitted for
 * the rest, which returns 0, and the rest is zero-filled.  (Every engine's
 * reads at the end of the file are test-blk.c's business.)
 */
static void test_eof_resubmits_once(void)
{
    LuringState *s = main_engine();
    int fd = blk_test_open(false);
    uint8_t data[EOF_SIZE];
    uint8_t *buf = blk_test_alloc(4 * BLOCK);
    uint8_t zero[4 * BLOCK - EOF_SIZE] = { 0 };
    LuringStats st;

    blk_test_fill_random(data, EOF_SIZE);
    g_assert_cmpint(pwrite(fd, data, EOF_SIZE, 0), ==, EOF_SIZE);
    qaio_int_luring_reset_stats(s);

    memset(buf, 0xaa, 4 * BLOCK);
    g_assert_cmpint(blk_test_run_buf(fd, 0, buf, 4 * BLOCK, QEMU_AIO_READ),
                    ==, 0);
    g_assert_cmpmem(buf, EOF_SIZE, data, EOF_SIZE);
    g_assert_cmpmem(buf + EOF_SIZE, sizeof(zero), zero, sizeof(zero));
    st = engine_stats(s);
    g_assert_cmpuint(st.short_resubmits, ==, 1);
    g_assert_cmpuint(st.ioq.submitted, ==, 2);
    free(buf);
    close(fd);
}

#define SHORT_LEN (16 * BLOCK)
#define SHORT_STEP (BLOCK + 100)        /* cuts inside vector elements */

static void test_short_read_resubmit(void)
{
    LuringState *s = main_engine();
    int fd = blk_test_open(false);
    uint8_t *data = g_malloc(SHORT_LEN);
    uint8_t *buf = g_malloc(SHORT_LEN);
    BlkTestReq r[3];
    QEMUIOVector qiovs[3];
    LuringStats st;
    int i;

    blk_test_fill_random(data, SHORT_LEN);
    g_assert_cmpint(pwrite(fd, data, SHORT_LEN, 0), ==, SHORT_LEN);
    qaio_int_luring_reset_stats(s);

    /* Three concurrent reads, cut into pieces of SHORT_STEP bytes. */
    qaio_int_luring_inject_short(s, SHORT_STEP, 3);
    memset(buf, 0xaa, SHORT_LEN);
    for (i = 0; i < 3; i++) {
        size_t off = i * (SHORT_LEN / 4);

        blk_test_qiov(&qiovs[i], buf + off,
                      SHORT_LEN / 4 + (i == 2 ? SHORT_LEN / 4 : 0), true,
                      512);
        r[i] = (BlkTestReq) {
            .fd = fd, .offset = off, .qiov = &qiovs[i],
            .type = QEMU_AIO_READ,
        };
    }
    blk_test_run_all(r, 3);
    for (i = 0; i < 3; i++) {
        g_assert_cmpint(r[i].ret, ==, 0);
        qemu_iovec_destroy(&qiovs[i]);
    }
    g_assert_cmpmem(buf, SHORT_LEN, data, SHORT_LEN);

    st = engine_stats(s);
    /* Two 4-block reads (4 pieces each) and one 8-block read (8 pieces). */
    g_assert_cmpuint(st.short_resubmits, ==, 3 + 3 + 7);
    g_assert_cmpuint(st.ioq.submitted, ==, 4 + 4 + 8);

    /* The knob is used up: the next read is whole. */
    qaio_int_luring_reset_stats(s);
    memset(buf, 0xaa, SHORT_LEN);
    g_assert_cmpint(blk_test_run_buf(fd, 0, buf, SHORT_LEN, QEMU_AIO_READ),
                    ==, 0);
    g_assert_cmpmem(buf, SHORT_LEN, data, SHORT_LEN);
    g_assert_cmpuint(engine_stats(s).short_resubmits, ==, 0);

    g_free(buf);
    g_free(data);
    close(fd);
}

static void test_short_write_resubmit(void)
{
    LuringState *s = main_engine();
    int fd = blk_test_open(false);
    uint8_t *data = g_malloc(SHORT_LEN);
    uint8_t *check = g_malloc(SHORT_LEN);
    QEMUIOVector qiov;

    blk_test_fill_random(data, SHORT_LEN);
    qaio_int_luring_reset_stats(s);
    qaio_int_luring_inject_short(s, SHORT_STEP, 1);

    blk_test_qiov(&qiov, data, SHORT_LEN, true, 1);
    g_assert_cmpint(blk_test_run(fd, 0, &qiov, QEMU_AIO_WRITE), ==, 0);
    qemu_iovec_destroy(&qiov);
    blk_test_pread(fd, check, SHORT_LEN, 0);
    g_assert_cmpmem(check, SHORT_LEN, data, SHORT_LEN);
    g_assert_cmpuint(engine_stats(s).short_resubmits, ==,
                     DIV_ROUND_UP(SHORT_LEN, SHORT_STEP) - 1);

    g_free(check);
    g_free(data);
    close(fd);
}

/*
 * A real short write: RLIMIT_FSIZE lets the kernel write only up to the
 * limit, so the first completion is short and the resubmission of the rest
 * fails with -EFBIG, which is what the caller gets.  In a subprocess, as
 * the limit applies to the whole process.
 */
static void test_short_write_real(void)
{
    struct rlimit rl = { .rlim_cur = 3 * BLOCK, .rlim_max = RLIM_INFINITY };
    LuringState *s;
    uint8_t *data;
    uint8_t *check;
    int fd;

    if (!g_test_subprocess()) {
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
        g_test_trap_assert_passed();
        return;
    }

    s = main_engine();
    fd = blk_test_open(false);
    data = g_malloc(4 * BLOCK);
    check = g_malloc(4 * BLOCK);
    blk_test_fill_random(data, 4 * BLOCK);
    signal(SIGXFSZ, SIG_IGN);
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &rl), ==, 0);
    qaio_int_luring_reset_stats(s);

    g_assert_cmpint(blk_test_run_buf(fd, 2 * BLOCK, data, 2 * BLOCK,
                                     QEMU_AIO_WRITE), ==, -EFBIG);
    g_assert_cmpuint(engine_stats(s).short_resubmits, ==, 1);
    blk_test_pread(fd, check, BLOCK, 2 * BLOCK);
    g_assert_cmpmem(check, BLOCK, data, BLOCK);

    g_free(check);
    g_free(data);
    close(fd);
}

static void test_eagain_retry(void)
{
    LuringState *s = main_engine();
    uint8_t data[8 * BLOCK];
    Reads r;

    blk_test_fill_random(data, sizeof(data));
    qaio_int_luring_reset_stats(s);

    /* Eight reads, five -EAGAIN completions: all eight still succeed. */
    qaio_int_luring_inject_eagain(s, 5);
    reads_start(&r, 8, data);
    reads_finish(&r);
    g_assert_cmpuint(engine_stats(s).retry_resubmits, ==, 5);
    g_assert_cmpuint(engine_stats(s).ioq.submitted, ==, 8 + 5);
}

/*
 * io_uring_submit() failing (as when the kernel is short of memory) leaves
 * the entries in the ring: the queue calls again from the next iteration
 * and nothing is lost, also with more requests than the SQ ring holds.
 */
static void test_submit_fail_retry(void)
{
    LuringState *s = main_engine();
    enum { N = 2 * LURING_RING_ENTRIES + 10 };
    uint8_t *data = g_malloc(N * BLOCK);
    LuringStats st;
    Reads r;

    blk_test_fill_random(data, N * BLOCK);
    qaio_int_luring_reset_stats(s);
    qaio_int_luring_inject_submit_fail(s, 3);
    reads_start(&r, N, data);
    reads_finish(&r);
    st = engine_stats(s);
    g_assert_cmpuint(st.ioq.submitted, ==, N);
    g_assert_cmpuint(st.retry_resubmits, ==, 0);
    g_free(data);
}

/* ---- Batching and the in-flight cap ------------------------------------- */

#define MANY 1000

/*
 * MANY one-block reads from as many coroutines, more than the ring holds:
 * full batches go out until the cap, the rest waits in the software queue
 * and goes out as completions are reaped.  (The data is test-blk.c's.)
 */
static void test_in_flight_cap(void)
{
    LuringState *s = main_engine();
    LuringStats st;
    Reads r;

    qaio_int_luring_reset_stats(s);
    reads_start(&r, MANY, NULL);

    /* No completion has been reaped yet. */
    st = engine_stats(s);
    g_assert_cmpuint(st.ioq.in_flight_limit, ==, 2 * LURING_RING_ENTRIES);
    g_assert_cmpuint(st.ioq.max_in_flight, ==, st.ioq.in_flight_limit);
    g_assert_cmpuint(st.ioq.submitted, ==, st.ioq.in_flight_limit);
    g_assert_cmpuint(st.ioq.largest_batch, ==, LURING_RING_ENTRIES);
    g_assert_cmpuint(r.pending, ==, MANY);

    reads_finish(&r);
    st = engine_stats(s);
    g_assert_cmpuint(st.ioq.submitted, ==, MANY);
    g_assert_cmpuint(st.ioq.max_in_flight, ==, st.ioq.in_flight_limit);
    g_assert_cmpuint(st.ioq.stalled, >, 0);
    /* The first two calls took 128 each: batching happened. */
    g_assert_cmpuint(st.ioq.submit_calls, <=, MANY - 2 * 127);
    g_assert_cmpuint(st.short_resubmits + st.retry_resubmits, ==, 0);
}

/*
 * @n coroutines each queue a read before the loop runs: with
 * aio_max_batch @max_batch they must go out in exactly @calls submits.
 */
static void check_batching(int64_t max_batch, int n, unsigned calls)
{
    AioContext *ctx = qemu_get_aio_context();
    LuringState *s = main_engine();
    LuringStats st;
    Reads r;

    aio_context_set_aio_params(ctx, max_batch);
    qaio_int_luring_reset_stats(s);
    reads_start(&r, n, NULL);
    /* Full batches went out already; a partial one waits for the BH. */
    st = engine_stats(s);
    g_assert_cmpuint(st.ioq.submit_calls, ==, max_batch ? n / max_batch : 0);

    reads_finish(&r);
    st = engine_stats(s);
    g_assert_cmpuint(st.ioq.submit_calls, ==, calls);
    g_assert_cmpuint(st.ioq.submitted, ==, n);
    g_assert_cmpuint(st.ioq.largest_batch, ==,
                     max_batch ? MIN(max_batch, n) : n);
    aio_context_set_aio_params(ctx, 0);
}

static void test_batch_default(void)
{
    /* Everything queued before the loop ran goes out in one submit. */
    check_batching(0, 64, 1);
}

static void test_batch_max_batch(void)
{
    check_batching(16, 64, 4);
    check_batching(16, 70, 5);
}

/*
 * A wave: WAVE reads, each on its own empty pipe, are all in flight; then
 * every pipe gets a byte at once, so the kernel has completed all of them
 * before the loop looks.  Each read's coroutine reads again at once
 * (the pipe is empty again, so that one stays in flight).  The device has
 * nothing left to do while the loop handles the wave: the first new read
 * goes to the kernel alone, before the other completions are handled,
 * and the rest in batches as large as what the device still has: 1, 1, 2,
 * 4, 8.  Batched in one call at the end, they would all reach the device
 * only after the whole wave was handled.
 */
#define WAVE 16

typedef struct WaveReader {
    int fds[2];
    uint8_t byte;
    int reads;
    int ret;
    unsigned *pending;
} WaveReader;

static void coroutine_fn wave_reader_co(void *opaque)
{
    WaveReader *w = opaque;
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, &w->byte, 1);
    for (w->reads = 0; w->reads < 2; w->reads++) {
        w->ret = luring_co_submit(NULL, w->fds[0], 0, &qiov, QEMU_AIO_READ);
        if (w->ret < 0) {
            break;
        }
    }
    (*w->pending)--;
}

/* Give each reader a byte, then wait until the kernel has posted @n CQEs. */
static void wave_feed(LuringState *s, WaveReader *w, uint8_t byte, int n)
{
    int i;

    for (i = 0; i < WAVE; i++) {
        g_assert_cmpint(write(w[i].fds[1], &byte, 1), ==, 1);
    }
    /*
     * The reads complete in this thread's task work, which runs when the
     * write returns: the CQEs are all there now.
     */
    g_assert_cmpuint(qaio_int_luring_waiting(s), ==, n);
}

static void test_wave_resubmits_early(void)
{
    AioContext *ctx = qemu_get_aio_context();
    LuringState *s = main_engine();
    WaveReader w[WAVE];
    unsigned pending = WAVE;
    LuringStats st;
    int i;

    for (i = 0; i < WAVE; i++) {
        w[i] = (WaveReader) { .pending = &pending };
        g_assert_cmpint(pipe(w[i].fds), ==, 0);
        qemu_coroutine_enter(qemu_coroutine_create(wave_reader_co, &w[i]));
    }
    /* Queued before the loop ran: one batch, from the bottom half. */
    qaio_int_luring_reset_stats(s);
    for (i = 0; i < BLK_TEST_MAX_ITERATIONS && !engine_stats(s).ioq.submitted;
         i++) {
        aio_poll(ctx, false);
    }
    st = engine_stats(s);
    g_assert_cmpuint(st.ioq.submit_calls, ==, 1);
    g_assert_cmpuint(st.ioq.submitted, ==, WAVE);
    g_assert_cmpuint(st.ioq.early_submits, ==, 0);

    qaio_int_luring_reset_stats(s);
    wave_feed(s, w, 0x5a, WAVE);
    for (i = 0; i < BLK_TEST_MAX_ITERATIONS &&
         engine_stats(s).ioq.submitted < WAVE; i++) {
        aio_poll(ctx, true);
    }
    st = engine_stats(s);
    g_assert_cmpuint(st.ioq.submitted, ==, WAVE);
    g_assert_cmpuint(st.ioq.submit_calls, ==, 5);
    g_assert_cmpuint(st.ioq.early_submits, ==, 5);
    g_assert_cmpuint(st.ioq.largest_batch, ==, 8);
    for (i = 0; i < WAVE; i++) {
        g_assert_cmpint(w[i].ret, ==, 0);
        g_assert_cmpint(w[i].reads, ==, 1);
        g_assert_cmpuint(w[i].byte, ==, 0x5a);
    }

    /* The second reads complete too; nobody reads again. */
    wave_feed(s, w, 0xa5, WAVE);
    blk_test_poll_until_zero(&pending);
    for (i = 0; i < WAVE; i++) {
        g_assert_cmpint(w[i].ret, ==, 0);
        g_assert_cmpint(w[i].reads, ==, 2);
        g_assert_cmpuint(w[i].byte, ==, 0xa5);
        close(w[i].fds[0]);
        close(w[i].fds[1]);
    }
}

/* ---- Busy polling ------------------------------------------------------- */

/*
 * An IOThread polls by default (32 us window), and the engine's io_poll
 * reads the CQ ring, so once the window has opened a completion is reaped
 * without the eventfd.  Sequential reads, up to a cap, until that has
 * happened.
 */
#define POLL_MAX_READS 10000

typedef struct PollJob {
    AioContext *ctx;
    LuringState *engine;
    int fd;
    int reads;
    int ret;
    QemuSemaphore finished;
} PollJob;

static void coroutine_fn poll_job_co(void *opaque)
{
    PollJob *job = opaque;
    uint8_t buf[512];
    QEMUIOVector qiov;

    job->engine = aio_setup_linux_io_uring(job->ctx, &error_abort);
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    do {
        job->ret = luring_co_submit(NULL, job->fd, 0, &qiov, QEMU_AIO_READ);
        job->reads++;
    } while (job->ret == 0 && job->reads < POLL_MAX_READS &&
             engine_stats(job->engine).ioq.poll_reaped == 0);
    qemu_sem_post(&job->finished);
}

static void test_poll_reaps_without_eventfd(void)
{
    IOThread *iothread = iothread_create("uring-poll", &error_abort);
    PollJob job = {
        .ctx = iothread_get_aio_context(iothread),
        .fd = blk_test_open(false),
    };
    LuringStats st;

    g_assert_cmpint(ftruncate(job.fd, BLOCK), ==, 0);
    qemu_sem_init(&job.finished, 0);
    aio_co_enter(job.ctx, qemu_coroutine_create(poll_job_co, &job));
    qemu_sem_wait(&job.finished);

    /* Stopped, the IOThread no longer touches the engine. */
    iothread_stop(iothread);
    g_assert_cmpint(job.ret, ==, 0);
    st = engine_stats(job.engine);
    g_test_message("%d reads until the first CQE reaped by polling "
                   "(eventfd: %" PRIu64 ")", job.reads,
                   st.ioq.eventfd_reaped);
    g_assert_cmpuint(st.ioq.poll_reaped, >, 0);
    g_assert_cmpuint(st.ioq.poll_reaped + st.ioq.eventfd_reaped +
                     st.ioq.bh_reaped + st.ioq.submit_reaped, ==, job.reads);

    iothread_destroy(iothread);
    qemu_sem_destroy(&job.finished);
    close(job.fd);
}

/* ---- Request types ------------------------------------------------------ */

static void test_unsupported_type(void)
{
    uint8_t buf[16];

    main_engine();
    g_assert_cmpint(blk_test_run_buf(0, 0, buf, sizeof(buf), QEMU_AIO_IOCTL),
                    ==, -ENOTSUP);
    g_assert_cmpint(blk_test_run_buf(0, 0, buf, sizeof(buf),
                                     QEMU_AIO_TRUNCATE), ==, -ENOTSUP);
}

static void test_discard_write_zeroes(void)
{
    int fd = blk_test_open(false);
    size_t len = 16 * BLOCK;
    uint8_t *data = g_malloc(len);
    uint8_t *check = g_malloc(len);
    uint8_t *zero = g_malloc0(len);
    struct stat st;
    int ret;

    main_engine();
    blk_test_fill_random(data, len);
    g_assert_cmpint(pwrite(fd, data, len, 0), ==, len);

    /* The range is the vector's size; its buffer is not used. */
    ret = blk_test_run_buf(fd, BLOCK, NULL, 2 * BLOCK, QEMU_AIO_WRITE_ZEROES);
    if (ret == -ENOTSUP) {
        g_test_skip("the file system cannot zero ranges");
        goto out;
    }
    g_assert_cmpint(ret, ==, 0);
    memset(data + BLOCK, 0, 2 * BLOCK);

    ret = blk_test_run_buf(fd, 8 * BLOCK, NULL, 4 * BLOCK, QEMU_AIO_DISCARD);
    if (ret == -ENOTSUP) {
        g_test_skip("the file system cannot punch holes");
        goto out;
    }
    g_assert_cmpint(ret, ==, 0);
    memset(data + 8 * BLOCK, 0, 4 * BLOCK);

    blk_test_pread(fd, check, len, 0);
    g_assert_cmpmem(check, len, data, len);

    /* Write-zeroes past the end grows the file; discard does not. */
    g_assert_cmpint(blk_test_run_buf(fd, len, NULL, BLOCK,
                                     QEMU_AIO_WRITE_ZEROES), ==, 0);
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, len + BLOCK);
    g_assert_cmpint(blk_test_run_buf(fd, len + BLOCK, NULL, BLOCK,
                                     QEMU_AIO_DISCARD), ==, 0);
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, len + BLOCK);
    blk_test_pread(fd, check, BLOCK, len);
    g_assert_cmpmem(check, BLOCK, zero, BLOCK);

out:
    g_free(zero);
    g_free(check);
    g_free(data);
    close(fd);
}

/* ---- Detach ------------------------------------------------------------- */

/* Detaching in the home thread completes what is outstanding first. */
static void test_detach_drains(void)
{
    AioContext *ctx = qemu_get_aio_context();
    LuringState *s = main_engine();
    enum { N = 300 };
    uint8_t *data = g_malloc(N * BLOCK);
    Reads r;

    blk_test_fill_random(data, N * BLOCK);
    /* More than the cap: some in flight, some still queued. */
    reads_start(&r, N, data);
    g_assert_cmpuint(r.pending, ==, N);

    luring_detach_aio_context(s, ctx);
    g_assert_cmpuint(r.pending, ==, 0);

    /* Attached again, it works as before. */
    luring_attach_aio_context(s, ctx);
    reads_finish(&r);
    reads_start(&r, 1, data);
    reads_finish(&r);
    g_free(data);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);
    blk_test_submit = submit;

    g_test_add_func("/blk-io_uring/setup/disabled-fails-with-error",
                    test_setup_disabled);
    g_test_add_func("/blk-io_uring/submit/without-engine-aborts",
                    test_submit_without_engine);
    g_test_add_func("/blk-io_uring/resubmit/eof-once",
                    test_eof_resubmits_once);
    g_test_add_func("/blk-io_uring/resubmit/short-read",
                    test_short_read_resubmit);
    g_test_add_func("/blk-io_uring/resubmit/short-write",
                    test_short_write_resubmit);
    g_test_add_func("/blk-io_uring/resubmit/short-write-rlimit",
                    test_short_write_real);
    g_test_add_func("/blk-io_uring/resubmit/eagain", test_eagain_retry);
    g_test_add_func("/blk-io_uring/resubmit/submit-fails",
                    test_submit_fail_retry);
    g_test_add_func("/blk-io_uring/batch/in-flight-cap", test_in_flight_cap);
    g_test_add_func("/blk-io_uring/batch/default-one-submit",
                    test_batch_default);
    g_test_add_func("/blk-io_uring/batch/aio-max-batch",
                    test_batch_max_batch);
    g_test_add_func("/blk-io_uring/batch/wave-resubmits-early",
                    test_wave_resubmits_early);
    g_test_add_func("/blk-io_uring/poll/reaps-without-eventfd",
                    test_poll_reaps_without_eventfd);
    g_test_add_func("/blk-io_uring/error/unsupported-type",
                    test_unsupported_type);
    g_test_add_func("/blk-io_uring/fallocate/discard-write-zeroes",
                    test_discard_write_zeroes);
    g_test_add_func("/blk-io_uring/detach/drains-outstanding",
                    test_detach_drains);

    return g_test_run();
}
