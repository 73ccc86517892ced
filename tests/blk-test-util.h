/*
 * blk-test-util.h: what the block I/O tests share (test-blk.c,
 * test-blk-linux-aio.c, test-blk-io_uring.c): temporary files, O_DIRECT
 * where some directory allows it, aligned buffers of random data, I/O
 * vectors in one piece or several, requests run from coroutines, and jobs
 * of many requests run in an IOThread.
 *
 * Every request goes through a BlkTestSubmitFn with laio_co_submit()'s
 * arguments; blk_test_submit is the program's default, which a request
 * may override (a test that drives several engines at once).
 *
 * Threading: files and buffers from the main thread.  A request runs in
 * the context its coroutine was entered in; the blk_test_run* helpers use
 * the main loop's context, a BlkTestJob the context it was given and a
 * semaphore to report back to the main thread.
 */
#ifndef QAIO_TESTS_BLK_TEST_UTIL_H
#define QAIO_TESTS_BLK_TEST_UTIL_H

#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/iov.h"
#include "qemu/thread.h"

/* Cap on aio_poll calls while waiting for requests to finish. */
#define BLK_TEST_MAX_ITERATIONS 1000000

/* The alignment O_DIRECT needs here, and the size of a test's page. */
#define BLK_TEST_PAGE 4096

/* Most elements of a vector built by blk_test_qiov(). */
#define BLK_TEST_MAX_IOV 8

typedef int coroutine_fn BlkTestSubmitFn(int fd, uint64_t offset,
                                         QEMUIOVector *qiov, int type,
                                         uint64_t dev_max_batch);

/* The program's engine; set by main() before any request runs. */
static BlkTestSubmitFn *blk_test_submit;

/* ---- Files -------------------------------------------------------------- */

/* A fresh, already unlinked file in @dir (O_DIRECT if @direct), or -1. */
static inline int blk_test_open_in(const char *dir, bool direct)
{
    g_autofree char *path = g_build_filename(dir, "qaio-blk-XXXXXX", NULL);
    int fd = g_mkstemp(path);

    if (fd >= 0 && direct) {
        int dfd = open(path, O_RDWR | O_DIRECT);

        close(fd);
        fd = dfd;
    }
    if (fd >= 0) {
        unlink(path);
    }
    return fd;
}

/*
 * The first of $TMPDIR, the current directory and /var/tmp where an
 * O_DIRECT write works (tmpfs refuses O_DIRECT, or some versions accept the
 * open and fail the write), or NULL.  Probed once.
 */
static inline const char *blk_test_direct_dir(void)
{
    static char *dir;
    static bool probed;
    g_autofree char *cwd = g_get_current_dir();
    const char *candidates[] = { g_get_tmp_dir(), cwd, "/var/tmp" };
    size_t i;

    if (probed) {
        return dir;
    }
    probed = true;
    for (i = 0; i < G_N_ELEMENTS(candidates); i++) {
        int fd = blk_test_open_in(candidates[i], true);
        void *buf = NULL;
        bool ok;

        if (fd < 0) {
            continue;
        }
        g_assert_cmpint(posix_memalign(&buf, BLK_TEST_PAGE, BLK_TEST_PAGE),
                        ==, 0);
        memset(buf, 0, BLK_TEST_PAGE);
        ok = pwrite(fd, buf, BLK_TEST_PAGE, 0) == BLK_TEST_PAGE;
        free(buf);
        close(fd);
        if (ok) {
            dir = g_strdup(candidates[i]);
            break;
        }
    }
    return dir;
}

/*
 * An empty temporary file, already unlinked.  With @direct, opened O_DIRECT
 * where that works; if nowhere, the case is skipped and -1 returned.
 */
static inline int blk_test_open(bool direct)
{
    int fd;

    if (direct) {
        const char *dir = blk_test_direct_dir();

        if (!dir) {
            g_test_skip("no directory here supports O_DIRECT");
            return -1;
        }
        fd = blk_test_open_in(dir, true);
    } else {
        fd = blk_test_open_in(g_get_tmp_dir(), false);
    }
    g_assert_cmpint(fd, >=, 0);
    return fd;
}

/* ---- Buffers and vectors ------------------------------------------------ */

/* @len bytes (at least one) aligned for O_DIRECT; release with free(). */
static inline uint8_t *blk_test_alloc(size_t len)
{
    void *p = NULL;

    g_assert_cmpint(posix_memalign(&p, BLK_TEST_PAGE, MAX(len, 1)), ==, 0);
    return p;
}

static inline void blk_test_fill_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t i;

    for (i = 0; i + 4 <= len; i += 4) {
        uint32_t r = g_test_rand_int();

        memcpy(p + i, &r, 4);
    }
    for (; i < len; i++) {
        p[i] = g_test_rand_int_range(0, 256);
    }
}

/* Read exactly @len bytes at @offset with pread() (the engines' witness). */
static inline void blk_test_pread(int fd, void *buf, size_t len,
                                  off_t offset)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, offset + done);

        g_assert_cmpint(n, >, 0);
        done += n;
    }
}

/*
 * Describe @buf as @qiov (to be destroyed): one element, or with @multi
 * 2..BLK_TEST_MAX_IOV elements (as many as @len allows) of random sizes,
 * each a multiple of @granule (1 for buffered I/O, the page for O_DIRECT).
 */
static inline void blk_test_qiov(QEMUIOVector *qiov, void *buf, size_t len,
                                 bool multi, size_t granule)
{
    size_t pos = 0;

    g_assert_cmpuint(len % granule, ==, 0);
    qemu_iovec_init(qiov, BLK_TEST_MAX_IOV);
    while (pos < len) {
        size_t left = (len - pos) / granule;
        size_t take = left;

        if (multi && left > 1 && qiov->niov < BLK_TEST_MAX_IOV - 1) {
            /* Never the rest at once while it can still be split. */
            take = g_test_rand_int_range(1, MAX(left / 2, 1) + 1);
        }
        qemu_iovec_add(qiov, (uint8_t *)buf + pos, take * granule);
        pos += take * granule;
    }
}

/* ---- Requests ----------------------------------------------------------- */

/*
 * BlkTestReq: one request, run by blk_test_req_co() in a coroutine.
 *
 * @submit: the engine; NULL for blk_test_submit
 * @repeat: submit it again this many times while it succeeds
 * @pending: decremented when done, if set
 * @all_done: posted when *@pending reaches 0, if set
 */
typedef struct BlkTestReq {
    BlkTestSubmitFn *submit;
    int fd;
    uint64_t offset;
    QEMUIOVector *qiov;
    int type;
    uint64_t dev_max_batch;
    int repeat;
    int ret;
    bool done;
    unsigned *pending;
    QemuSemaphore *all_done;
} BlkTestReq;

/* @r: page @page of @fd, from or to page @page of @mem. */
static inline void blk_test_page_req(BlkTestReq *r, QEMUIOVector *qiov,
                                     int fd, uint8_t *mem, uint64_t page,
                                     int type)
{
    qemu_iovec_init_buf(qiov, mem + page * BLK_TEST_PAGE, BLK_TEST_PAGE);
    *r = (BlkTestReq) {
        .fd = fd, .offset = page * BLK_TEST_PAGE, .qiov = qiov, .type = type,
    };
}

static inline void coroutine_fn blk_test_req_co(void *opaque)
{
    BlkTestReq *r = opaque;
    BlkTestSubmitFn *submit = r->submit ? r->submit : blk_test_submit;
    AioContext *ctx = qemu_get_current_aio_context();

    do {
        r->ret = submit(r->fd, r->offset, r->qiov, r->type,
                        r->dev_max_batch);
        /* The coroutine comes back in the context it submitted from. */
        g_assert(qemu_get_current_aio_context() == ctx);
    } while (r->ret == 0 && r->repeat-- > 0);
    r->done = true;
    if (r->pending && --*r->pending == 0 && r->all_done) {
        qemu_sem_post(r->all_done);
    }
}

/* Enter a coroutine that runs @r; it returns at its first yield. */
static inline void blk_test_req_start(BlkTestReq *r)
{
    qemu_coroutine_enter(qemu_coroutine_create(blk_test_req_co, r));
}

/* Run the main loop's context until *@pending is 0 (with a cap). */
static inline void blk_test_poll_until_zero(unsigned *pending)
{
    AioContext *ctx = qemu_get_aio_context();
    int i;

    for (i = 0; i < BLK_TEST_MAX_ITERATIONS && *pending; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpuint(*pending, ==, 0);
}

/* Start @n requests at once in the main context and wait for them all. */
static inline void blk_test_run_all(BlkTestReq *reqs, int n)
{
    unsigned pending = n;
    int i;

    for (i = 0; i < n; i++) {
        reqs[i].pending = &pending;
        reqs[i].done = false;
        blk_test_req_start(&reqs[i]);
    }
    blk_test_poll_until_zero(&pending);
}

/* One request through blk_test_submit in the main context: its result. */
static inline int blk_test_run(int fd, uint64_t offset, QEMUIOVector *qiov,
                               int type)
{
    BlkTestReq r = {
        .fd = fd, .offset = offset, .qiov = qiov, .type = type,
    };

    blk_test_run_all(&r, 1);
    return r.ret;
}

/* The same for one buffer (@buf may be NULL with a zero @len). */
static inline int blk_test_run_buf(int fd, uint64_t offset, void *buf,
                                   size_t len, int type)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, len);
    return blk_test_run(fd, offset, &qiov, type);
}

/* ---- Jobs in other threads ---------------------------------------------- */

typedef struct BlkTestCall {
    void (*fn)(void *opaque);
    void *opaque;
    QemuSemaphore done;
} BlkTestCall;

static inline void blk_test_call_bh(void *opaque)
{
    BlkTestCall *c = opaque;

    c->fn(c->opaque);
    qemu_sem_post(&c->done);
}

/* Run @fn(@opaque) in the thread of @ctx (an IOThread's) and wait for it. */
static inline void blk_test_call_in(AioContext *ctx, void (*fn)(void *),
                                    void *opaque)
{
    BlkTestCall c = { .fn = fn, .opaque = opaque };

    qemu_sem_init(&c.done, 0);
    aio_bh_schedule_oneshot(ctx, blk_test_call_bh, &c);
    qemu_sem_wait(&c.done);
    qemu_sem_destroy(&c.done);
}

/*
 * BlkTestJob: @n one-page requests at once in @ctx, page i of @mem at
 * offset i * BLK_TEST_PAGE of @fd.
 *
 * @setup: run in @ctx's thread before the requests start: sets up the
 *         engine there and returns it (kept in @engine); or NULL
 */
typedef struct BlkTestJob {
    AioContext *ctx;
    BlkTestSubmitFn *submit;
    void *(*setup)(AioContext *ctx);
    void *engine;
    int fd;
    int n;
    bool write;
    uint8_t *mem;
    BlkTestReq *reqs;
    QEMUIOVector *qiovs;
    unsigned pending;           /* @ctx's thread only */
    QemuSemaphore done;
} BlkTestJob;

/* In the job's thread: start every request. */
static inline void blk_test_job_bh(void *opaque)
{
    BlkTestJob *j = opaque;
    int i;

    if (j->setup) {
        j->engine = j->setup(j->ctx);
    }
    j->pending = j->n;
    for (i = 0; i < j->n; i++) {
        blk_test_page_req(&j->reqs[i], &j->qiovs[i], j->fd, j->mem, i,
                          j->write ? QEMU_AIO_WRITE : QEMU_AIO_READ);
        j->reqs[i].submit = j->submit;
        j->reqs[i].pending = &j->pending;
        j->reqs[i].all_done = &j->done;
        blk_test_req_start(&j->reqs[i]);
    }
}

/* @mem gets @n pages of random data. */
static inline void blk_test_job_init(BlkTestJob *j, AioContext *ctx,
                                     BlkTestSubmitFn *submit,
                                     void *(*setup)(AioContext *ctx),
                                     int fd, int n)
{
    *j = (BlkTestJob) {
        .ctx = ctx, .submit = submit, .setup = setup, .fd = fd, .n = n,
    };
    j->mem = blk_test_alloc((size_t)n * BLK_TEST_PAGE);
    blk_test_fill_random(j->mem, (size_t)n * BLK_TEST_PAGE);
    j->reqs = g_new0(BlkTestReq, n);
    j->qiovs = g_new(QEMUIOVector, n);
    qemu_sem_init(&j->done, 0);
}

static inline void blk_test_job_start(BlkTestJob *j, bool write)
{
    j->write = write;
    aio_bh_schedule_oneshot(j->ctx, blk_test_job_bh, j);
}

/* Wait for the job; every request must have succeeded. */
static inline void blk_test_job_wait(BlkTestJob *j)
{
    int i;

    qemu_sem_wait(&j->done);
    for (i = 0; i < j->n; i++) {
        g_assert_true(j->reqs[i].done);
        g_assert_cmpint(j->reqs[i].ret, ==, 0);
    }
}

/* Frees the buffers; the file and the context are the caller's. */
static inline void blk_test_job_destroy(BlkTestJob *j)
{
    qemu_sem_destroy(&j->done);
    free(j->mem);
    g_free(j->reqs);
    g_free(j->qiovs);
}

#endif /* QAIO_TESTS_BLK_TEST_UTIL_H */
