/*
 * test-blk.c: block I/O through each engine, one source for all of them:
 * the thread pool (with preadv/pwritev/fdatasync, as QEMU's file-posix
 * uses it), Linux AIO (laio_co_submit) and io_uring (luring_co_submit).
 *
 * QAIO_TEST_BLK_ENGINE=threads|linux-aio|io_uring selects the engine
 * (threads if unset); tests/meson.build runs the program once per engine
 * ('engines').  What only one engine does (its batching counters, its
 * fault injection, its setup failures) is in test-blk-linux-aio.c and
 * test-blk-io_uring.c.
 *
 * Data goes through real files, buffered and O_DIRECT, and is compared
 * byte for byte with what was written; errors are checked for their exact
 * errno.  O_DIRECT cases skip where no directory here takes O_DIRECT
 * (blk-test-util.h).
 *
 * Threading: the main thread runs the main context; the IOThread cases run
 * engines in two IOThreads and wait on semaphores.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/raw-aio.h"
#include "block/thread-pool.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "qaio/iothread.h"
#include "blk-test-util.h"

#define PAGE BLK_TEST_PAGE

/* ---- Engines ------------------------------------------------------------ */

typedef struct ThreadsIO {
    int fd;
    uint64_t offset;
    QEMUIOVector *qiov;
    int type;
} ThreadsIO;

/*
 * In a worker: the request with plain system calls.  Results as the other
 * engines give them: a read that reaches the end of the file has the rest
 * of its buffer zeroed, a write that stops making progress is -ENOSPC.
 */
static int threads_io_fn(void *opaque)
{
    ThreadsIO *io = opaque;
    bool write = (io->type & QEMU_AIO_TYPE_MASK) == QEMU_AIO_WRITE;
    g_autofree struct iovec *copy = NULL;
    struct iovec *iov;
    unsigned cnt;
    size_t done = 0;

    switch (io->type & QEMU_AIO_TYPE_MASK) {
    case QEMU_AIO_FLUSH:
        return fdatasync(io->fd) < 0 ? -errno : 0;
    case QEMU_AIO_READ:
    case QEMU_AIO_WRITE:
        break;
    default:
        return -ENOTSUP;
    }
    copy = g_memdup2(io->qiov->iov, io->qiov->niov * sizeof(*copy));
    iov = copy;
    cnt = io->qiov->niov;
    while (done < io->qiov->size) {
        ssize_t n = write ? pwritev(io->fd, iov, cnt, io->offset + done)
                          : preadv(io->fd, iov, cnt, io->offset + done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0 && write) {
            return -ENOSPC;
        }
        if (n == 0) {
            qemu_iovec_memset(io->qiov, done, 0, io->qiov->size - done);
            break;
        }
        done += n;
        iov_discard_front(&iov, &cnt, n);
    }
    return 0;
}

static int coroutine_fn threads_co_submit(int fd, uint64_t offset,
                                          QEMUIOVector *qiov, int type,
                                          uint64_t dev_max_batch)
{
    ThreadsIO io = { .fd = fd, .offset = offset, .qiov = qiov, .type = type };

    return thread_pool_submit_co(threads_io_fn, &io);
}

static void *threads_setup(AioContext *ctx)
{
    return aio_get_thread_pool(ctx);
}

static void *threads_get(AioContext *ctx)
{
    return ctx->thread_pool;
}

#ifdef CONFIG_LINUX_AIO
static void *laio_setup(AioContext *ctx)
{
    return aio_setup_linux_aio(ctx, &error_abort);
}

static void *laio_get(AioContext *ctx)
{
    return aio_get_linux_aio(ctx);
}
#endif

#ifdef CONFIG_LINUX_IO_URING
static int coroutine_fn luring_submit(int fd, uint64_t offset,
                                      QEMUIOVector *qiov, int type,
                                      uint64_t dev_max_batch)
{
    return luring_co_submit(NULL, fd, offset, qiov, type);
}

static void *luring_setup(AioContext *ctx)
{
    return aio_setup_linux_io_uring(ctx, &error_abort);
}

static void *luring_get(AioContext *ctx)
{
    return aio_get_linux_io_uring(ctx);
}
#endif

/*
 * @setup: the engine state of @ctx, created on first use (in @ctx's thread)
 * @get: the engine state of @ctx, NULL if there is none yet
 */
typedef struct Engine {
    const char *name;
    BlkTestSubmitFn *submit;
    void *(*setup)(AioContext *ctx);
    void *(*get)(AioContext *ctx);
} Engine;

static const Engine engines[] = {
    { "threads", threads_co_submit, threads_setup, threads_get },
#ifdef CONFIG_LINUX_AIO
    { "linux-aio", laio_co_submit, laio_setup, laio_get },
#endif
#ifdef CONFIG_LINUX_IO_URING
    { "io_uring", luring_submit, luring_setup, luring_get },
#endif
};

static const Engine *engine;

/* The engine of the main context, created on first use. */
static void *main_engine(void)
{
    return engine->setup(qemu_get_aio_context());
}

/* ---- Random data at random offsets -------------------------------------- */

#define RW_PAGES 256

typedef struct RwCase {
    bool direct;
    bool multi;
} RwCase;

/*
 * Requests of 1 to 8 pages covering [0, RW_PAGES) in shuffled order, all
 * at once, reading or writing @mem at the same offsets.  Returns how many.
 */
static int split_region(BlkTestReq *reqs, QEMUIOVector *qiovs, int fd,
                        uint8_t *mem, int type, const RwCase *c)
{
    int n = 0;
    int page = 0;
    int i;

    while (page < RW_PAGES) {
        int pages = MIN(g_test_rand_int_range(1, 9), RW_PAGES - page);
        uint64_t offset = (uint64_t)page * PAGE;

        blk_test_qiov(&qiovs[n], mem + offset, (size_t)pages * PAGE,
                      c->multi, c->direct ? PAGE : 1);
        if (c->multi && pages > 1) {
            g_assert_cmpint(qiovs[n].niov, >, 1);
        }
        reqs[n] = (BlkTestReq) {
            .fd = fd, .offset = offset, .qiov = &qiovs[n], .type = type,
        };
        n++;
        page += pages;
    }
    for (i = n - 1; i > 0; i--) {
        int j = g_test_rand_int_range(0, i + 1);
        BlkTestReq t = reqs[i];

        reqs[i] = reqs[j];
        reqs[j] = t;
    }
    return n;
}

/*
 * The whole region written in random pieces at once and checked with
 * pread(); read back in a different split, and then in one request.
 */
static void test_rw(const void *opaque)
{
    const RwCase *c = opaque;
    size_t len = (size_t)RW_PAGES * PAGE;
    uint8_t *data = blk_test_alloc(len);
    uint8_t *back = blk_test_alloc(len);
    BlkTestReq reqs[RW_PAGES];
    QEMUIOVector qiovs[RW_PAGES];
    QEMUIOVector whole;
    int fd = blk_test_open(c->direct);
    int pass, n, i;

    if (fd >= 0) {
        main_engine();
        blk_test_fill_random(data, len);
        for (pass = 0; pass < 2; pass++) {
            bool writing = pass == 0;

            memset(back, 0xa5, len);
            n = split_region(reqs, qiovs, fd, writing ? data : back,
                             writing ? QEMU_AIO_WRITE : QEMU_AIO_READ, c);
            blk_test_run_all(reqs, n);
            for (i = 0; i < n; i++) {
                g_assert_cmpint(reqs[i].ret, ==, 0);
                qemu_iovec_destroy(&qiovs[i]);
            }
            if (writing) {
                blk_test_pread(fd, back, len, 0);
            }
            g_assert_cmpmem(back, len, data, len);
        }

        /* The whole file: nothing was written where it should not be. */
        memset(back, 0xa5, len);
        blk_test_qiov(&whole, back, len, c->multi, c->direct ? PAGE : 1);
        g_assert_cmpint(blk_test_run(fd, 0, &whole, QEMU_AIO_READ), ==, 0);
        g_assert_cmpmem(back, len, data, len);
        qemu_iovec_destroy(&whole);
        close(fd);
    }
    free(data);
    free(back);
}

/* ---- Flush -------------------------------------------------------------- */

static void test_flush(const void *opaque)
{
    bool direct = GPOINTER_TO_INT(opaque);
    uint8_t *buf = blk_test_alloc(PAGE);
    uint8_t *check = blk_test_alloc(PAGE);
    int fd = blk_test_open(direct);

    if (fd >= 0) {
        main_engine();
        blk_test_fill_random(buf, PAGE);
        g_assert_cmpint(blk_test_run_buf(fd, PAGE, buf, PAGE, QEMU_AIO_WRITE),
                        ==, 0);
        g_assert_cmpint(blk_test_run(fd, 0, NULL, QEMU_AIO_FLUSH), ==, 0);
        blk_test_pread(fd, check, PAGE, PAGE);
        g_assert_cmpmem(check, PAGE, buf, PAGE);
        close(fd);
    }
    free(buf);
    free(check);
}

/* A pipe has no fsync method: the kernel refuses the flush. */
static void test_flush_pipe(void)
{
    int pipefd[2];

    main_engine();
    g_assert_cmpint(pipe(pipefd), ==, 0);
    g_assert_cmpint(blk_test_run(pipefd[1], 0, NULL, QEMU_AIO_FLUSH),
                    ==, -EINVAL);
    close(pipefd[0]);
    close(pipefd[1]);
}

/* ---- End of file -------------------------------------------------------- */

#define EOF_TAIL 100
#define EOF_SIZE (2 * PAGE + EOF_TAIL)

/*
 * Read @len bytes at @offset into a buffer of 0xa5; the file holds @data
 * (@size bytes): what lies in it must be read, what lies past its end must
 * be zeroes, and nothing after @len may be touched.
 */
static void check_read(int fd, const uint8_t *data, size_t size,
                       uint64_t offset, QEMUIOVector *qiov, uint8_t *buf)
{
    size_t len = qiov->size;
    size_t in_file = offset < size ? MIN(len, size - offset) : 0;
    g_autofree uint8_t *zeros = g_malloc0(len);

    g_assert_cmpint(blk_test_run(fd, offset, qiov, QEMU_AIO_READ), ==, 0);
    g_assert_cmpmem(buf, in_file, data + offset, in_file);
    g_assert_cmpmem(buf + in_file, len - in_file, zeros, len - in_file);
}

static void check_read_buf(int fd, const uint8_t *data, size_t size,
                           uint64_t offset, size_t len, uint8_t *buf)
{
    QEMUIOVector qiov;

    memset(buf, 0xa5, len + 1);
    qemu_iovec_init_buf(&qiov, buf, len);
    check_read(fd, data, size, offset, &qiov, buf);
    g_assert_cmpuint(buf[len], ==, 0xa5);
}

static void test_eof(const void *opaque)
{
    bool direct = GPOINTER_TO_INT(opaque);
    uint8_t data[EOF_SIZE];
    uint8_t *buf = blk_test_alloc(5 * PAGE);
    QEMUIOVector qiov;
    int fd = blk_test_open(direct);
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
    int wfd;

    if (fd < 0) {
        free(buf);
        return;
    }
    main_engine();
    blk_test_fill_random(data, EOF_SIZE);
    /* An unaligned size needs a buffered write, even for O_DIRECT files. */
    wfd = open(path, O_RDWR);
    g_assert_cmpint(wfd, >=, 0);
    g_assert_cmpint(pwrite(wfd, data, EOF_SIZE, 0), ==, EOF_SIZE);
    close(wfd);

    /* Straddling the end: the file's bytes, then zeroes. */
    check_read_buf(fd, data, EOF_SIZE, 2 * PAGE, 2 * PAGE, buf);

    /* The same across several elements, the last one wholly past it. */
    memset(buf, 0xa5, 4 * PAGE);
    qemu_iovec_init(&qiov, 3);
    if (direct) {
        qemu_iovec_add(&qiov, buf, PAGE);
        qemu_iovec_add(&qiov, buf + PAGE, 2 * PAGE);
        qemu_iovec_add(&qiov, buf + 3 * PAGE, PAGE);
    } else {
        qemu_iovec_add(&qiov, buf, PAGE + 50);
        qemu_iovec_add(&qiov, buf + PAGE + 50, 2 * PAGE);
        qemu_iovec_add(&qiov, buf + 3 * PAGE + 50, PAGE - 50);
    }
    check_read(fd, data, EOF_SIZE, PAGE, &qiov, buf);
    qemu_iovec_destroy(&qiov);

    /* Wholly past the end, near and far: all zeroes. */
    check_read_buf(fd, data, EOF_SIZE, 4 * PAGE, 2 * PAGE, buf);
    check_read_buf(fd, data, EOF_SIZE, 256 * PAGE, PAGE, buf);

    if (!direct) {
        /* At the exact end, and a few bytes before it. */
        check_read_buf(fd, data, EOF_SIZE, EOF_SIZE, 77, buf);
        check_read_buf(fd, data, EOF_SIZE, EOF_SIZE - 3, 10, buf);
    }

    /* An empty file reads as zeroes too. */
    g_assert_cmpint(ftruncate(fd, 0), ==, 0);
    check_read_buf(fd, data, 0, 0, 4 * PAGE, buf);
    close(fd);
    free(buf);
}

/* ---- Many coroutines ---------------------------------------------------- */

#define MANY 1000

/*
 * MANY coroutines write a page each, all started before the loop runs,
 * then read them back the same way: more than any engine takes at once.
 */
static void test_many_coroutines(const void *opaque)
{
    bool direct = GPOINTER_TO_INT(opaque);
    g_autofree BlkTestReq *reqs = g_new0(BlkTestReq, MANY);
    g_autofree QEMUIOVector *qiovs = g_new(QEMUIOVector, MANY);
    size_t len = (size_t)MANY * PAGE;
    uint8_t *data = blk_test_alloc(len);
    uint8_t *back = blk_test_alloc(len);
    int fd = blk_test_open(direct);
    int pass, i;

    if (fd >= 0) {
        main_engine();
        blk_test_fill_random(data, len);
        memset(back, 0xa5, len);
        for (pass = 0; pass < 2; pass++) {
            uint8_t *mem = pass == 0 ? data : back;

            for (i = 0; i < MANY; i++) {
                /* Scattered over the file: 997 is prime, MANY is not. */
                blk_test_page_req(&reqs[i], &qiovs[i], fd, mem,
                                  (uint64_t)i * 997 % MANY,
                                  pass == 0 ? QEMU_AIO_WRITE : QEMU_AIO_READ);
            }
            blk_test_run_all(reqs, MANY);
            for (i = 0; i < MANY; i++) {
                g_assert_cmpint(reqs[i].ret, ==, 0);
            }
        }
        g_assert_cmpmem(back, len, data, len);
        close(fd);
    }
    free(data);
    free(back);
}

/* Woken coroutines submit again at once, from inside the completion. */
static void test_chained_requests(void)
{
    enum { NCO = 64, REPEAT = 50 };
    size_t len = NCO * PAGE;
    uint8_t *data = blk_test_alloc(len);
    uint8_t *back = blk_test_alloc(len);
    BlkTestReq reqs[NCO];
    QEMUIOVector qiovs[NCO];
    int fd = blk_test_open(false);
    int i;

    main_engine();
    blk_test_fill_random(data, len);
    g_assert_cmpint(pwrite(fd, data, len, 0), ==, len);
    memset(back, 0xa5, len);
    for (i = 0; i < NCO; i++) {
        blk_test_page_req(&reqs[i], &qiovs[i], fd, back, i, QEMU_AIO_READ);
        reqs[i].repeat = REPEAT - 1;
    }
    blk_test_run_all(reqs, NCO);
    for (i = 0; i < NCO; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
        g_assert_cmpint(reqs[i].repeat, ==, -1);
    }
    g_assert_cmpmem(back, len, data, len);
    close(fd);
    free(data);
    free(back);
}

/* ---- Errors ------------------------------------------------------------- */

static void test_bad_fd(void)
{
    uint8_t *buf = blk_test_alloc(PAGE);
    int fd = blk_test_open(false);
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
    int closed, rdonly;

    /* First, so that the engine's own fds do not take the closed number. */
    main_engine();
    closed = dup(fd);
    rdonly = open(path, O_RDONLY);
    g_assert_cmpint(rdonly, >=, 0);
    g_assert_cmpint(close(closed), ==, 0);

    g_assert_cmpint(blk_test_run_buf(-1, 0, buf, PAGE, QEMU_AIO_READ),
                    ==, -EBADF);
    g_assert_cmpint(blk_test_run_buf(-1, 0, buf, PAGE, QEMU_AIO_WRITE),
                    ==, -EBADF);
    g_assert_cmpint(blk_test_run(-1, 0, NULL, QEMU_AIO_FLUSH), ==, -EBADF);
    g_assert_cmpint(blk_test_run_buf(closed, 0, buf, PAGE, QEMU_AIO_READ),
                    ==, -EBADF);
    g_assert_cmpint(blk_test_run_buf(closed, 0, buf, PAGE, QEMU_AIO_WRITE),
                    ==, -EBADF);
    g_assert_cmpint(blk_test_run(closed, 0, NULL, QEMU_AIO_FLUSH), ==, -EBADF);
    /* Writing through a read-only descriptor. */
    g_assert_cmpint(blk_test_run_buf(rdonly, 0, buf, PAGE, QEMU_AIO_WRITE),
                    ==, -EBADF);
    close(rdonly);
    close(fd);
    free(buf);
}

static void test_direct_unaligned(void)
{
    uint8_t *buf = blk_test_alloc(4 * PAGE);
    QEMUIOVector qiov;
    int fd = blk_test_open(true);
    int type;

    if (fd < 0) {
        free(buf);
        return;
    }
    main_engine();
    /* Real blocks: reads of a hole are served without the checks. */
    blk_test_fill_random(buf, 4 * PAGE);
    g_assert_cmpint(blk_test_run_buf(fd, 0, buf, 4 * PAGE, QEMU_AIO_WRITE),
                    ==, 0);
    for (type = QEMU_AIO_READ; type <= QEMU_AIO_WRITE; type <<= 1) {
        /* Buffer, offset and length, each off by a few bytes. */
        g_assert_cmpint(blk_test_run_buf(fd, 0, buf + 1, PAGE, type),
                        ==, -EINVAL);
        g_assert_cmpint(blk_test_run_buf(fd, 1, buf, PAGE, type),
                        ==, -EINVAL);
        g_assert_cmpint(blk_test_run_buf(fd, 100, buf, PAGE, type),
                        ==, -EINVAL);
        g_assert_cmpint(blk_test_run_buf(fd, 0, buf, PAGE + 1, type),
                        ==, -EINVAL);
        g_assert_cmpint(blk_test_run_buf(fd, 0, buf, 100, type), ==, -EINVAL);
        /* One element of a vector. */
        qemu_iovec_init(&qiov, 2);
        qemu_iovec_add(&qiov, buf, PAGE);
        qemu_iovec_add(&qiov, buf + PAGE + 7, PAGE);
        g_assert_cmpint(blk_test_run(fd, 0, &qiov, type), ==, -EINVAL);
        qemu_iovec_destroy(&qiov);
        /* The same file still works with aligned requests. */
        g_assert_cmpint(blk_test_run_buf(fd, PAGE, buf, 2 * PAGE, type),
                        ==, 0);
    }
    close(fd);
    free(buf);
}

/* ---- Setup -------------------------------------------------------------- */

static void test_setup_same_state(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    void *s;

    g_assert_null(engine->get(ctx));
    s = engine->setup(ctx);
    g_assert_nonnull(s);
    g_assert_true(engine->setup(ctx) == s);
    g_assert_true(engine->get(ctx) == s);
    /* Freed with the context (the sanitizer builds check nothing leaks). */
    aio_context_unref(ctx);
}

/* ---- IOThreads ---------------------------------------------------------- */

#define THREAD_REQUESTS 400

/*
 * Run @jobs (THREAD_REQUESTS pages each, in IOThreads), all at once:
 * their writes, then their reads, which must give back what was written.
 */
static void run_thread_jobs(BlkTestJob *jobs, int n)
{
    size_t len = (size_t)THREAD_REQUESTS * PAGE;
    g_autofree uint8_t **expect = g_new(uint8_t *, n);
    int i;

    for (i = 0; i < n; i++) {
        expect[i] = g_memdup2(jobs[i].mem, len);
        blk_test_job_start(&jobs[i], true);
    }
    for (i = 0; i < n; i++) {
        blk_test_job_wait(&jobs[i]);
        memset(jobs[i].mem, 0xa5, len);
    }
    for (i = 0; i < n; i++) {
        blk_test_job_start(&jobs[i], false);
    }
    for (i = 0; i < n; i++) {
        blk_test_job_wait(&jobs[i]);
        g_assert_cmpmem(jobs[i].mem, len, expect[i], len);
        g_free(expect[i]);
    }
}

static int open_direct_or_buffered(void)
{
    int fd = blk_test_direct_dir() ? blk_test_open(true) : -1;

    return fd >= 0 ? fd : blk_test_open(false);
}

/* Two IOThreads, each with its own state of the engine under test. */
static void test_two_iothreads(void)
{
    IOThread *iothreads[2];
    BlkTestJob jobs[2];
    int i;

    for (i = 0; i < 2; i++) {
        iothreads[i] = iothread_create(i == 0 ? "blk-a" : "blk-b",
                                       &error_abort);
        blk_test_job_init(&jobs[i], iothread_get_aio_context(iothreads[i]),
                          engine->submit, engine->setup,
                          open_direct_or_buffered(), THREAD_REQUESTS);
    }
    run_thread_jobs(jobs, 2);
    g_assert_true(jobs[0].engine != jobs[1].engine);
    g_assert_true(jobs[0].engine != engine->get(qemu_get_aio_context()));
    for (i = 0; i < 2; i++) {
        g_assert_true(engine->get(jobs[i].ctx) == jobs[i].engine);
        /* Destroying the context frees the engine (nothing in flight). */
        iothread_destroy(iothreads[i]);
        close(jobs[i].fd);
        blk_test_job_destroy(&jobs[i]);
    }
}

/*
 * Two IOThreads, each driving every engine at once: a job per engine and
 * thread.  The same whichever engine the program was started for.
 */
static void test_all_engines(void)
{
    enum { N = 2 * G_N_ELEMENTS(engines) };
    IOThread *iothreads[2];
    BlkTestJob jobs[N];
    int i;

    for (i = 0; i < 2; i++) {
        iothreads[i] = iothread_create(i == 0 ? "blk-all-a" : "blk-all-b",
                                       &error_abort);
    }
    for (i = 0; i < N; i++) {
        const Engine *e = &engines[i / 2];

        blk_test_job_init(&jobs[i],
                          iothread_get_aio_context(iothreads[i % 2]),
                          e->submit, e->setup, open_direct_or_buffered(),
                          THREAD_REQUESTS);
    }
    run_thread_jobs(jobs, N);
    for (i = 0; i < N; i++) {
        g_assert_true(engines[i / 2].get(jobs[i].ctx) == jobs[i].engine);
    }
    for (i = 0; i < 2; i++) {
        iothread_destroy(iothreads[i]);
    }
    for (i = 0; i < N; i++) {
        close(jobs[i].fd);
        blk_test_job_destroy(&jobs[i]);
    }
}

int main(int argc, char **argv)
{
    static const RwCase rw_cases[] = {
        { false, false }, { false, true }, { true, false }, { true, true },
    };
    const char *name = g_getenv("QAIO_TEST_BLK_ENGINE");
    size_t i;

    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);

    if (!name) {
        name = "threads";
    }
    for (i = 0; i < G_N_ELEMENTS(engines); i++) {
        if (!strcmp(engines[i].name, name)) {
            engine = &engines[i];
        }
    }
    if (!engine) {
        g_printerr("QAIO_TEST_BLK_ENGINE=%s: no such engine in this build\n",
                   name);
        return 1;
    }
    blk_test_submit = engine->submit;
    g_test_message("engine: %s", engine->name);

    g_test_add_data_func("/blk/rw/buffered/single", &rw_cases[0], test_rw);
    g_test_add_data_func("/blk/rw/buffered/multi-iovec", &rw_cases[1],
                         test_rw);
    g_test_add_data_func("/blk/rw/direct/single", &rw_cases[2], test_rw);
    g_test_add_data_func("/blk/rw/direct/multi-iovec", &rw_cases[3],
                         test_rw);
    g_test_add_data_func("/blk/flush/buffered", GINT_TO_POINTER(false),
                         test_flush);
    g_test_add_data_func("/blk/flush/direct", GINT_TO_POINTER(true),
                         test_flush);
    g_test_add_func("/blk/flush/pipe-is-einval", test_flush_pipe);
    g_test_add_data_func("/blk/eof/buffered", GINT_TO_POINTER(false),
                         test_eof);
    g_test_add_data_func("/blk/eof/direct", GINT_TO_POINTER(true), test_eof);
    g_test_add_data_func("/blk/many-coroutines/buffered",
                         GINT_TO_POINTER(false), test_many_coroutines);
    g_test_add_data_func("/blk/many-coroutines/direct",
                         GINT_TO_POINTER(true), test_many_coroutines);
    g_test_add_func("/blk/chained-requests", test_chained_requests);
    g_test_add_func("/blk/error/bad-fd", test_bad_fd);
    g_test_add_func("/blk/error/direct-unaligned", test_direct_unaligned);
    g_test_add_func("/blk/setup/same-state", test_setup_same_state);
    g_test_add_func("/blk/iothreads/two-engines", test_two_iothreads);
    g_test_add_func("/blk/iothreads/all-engines-at-once", test_all_engines);

    return g_test_run();
}
