/*
 * test-linux-aio.c: the Linux AIO engine (block/raw-aio.h laio_*).
 *
 * Data goes through real files, buffered and O_DIRECT, and is compared
 * byte for byte with a copy kept in memory.  The engine's private counters
 * (src/linux-aio-int.h) show how requests were batched; io_submit() calls
 * are counted exactly where the batching rules fix their number.  Error
 * cases check the exact errno.  Registered with 'fdmon': completions come
 * through an eventfd watched by each fd monitor in turn.
 *
 * O_DIRECT files are made in the temporary directory, or in the current
 * directory where the temporary one refuses O_DIRECT (older tmpfs); those
 * cases are skipped only if neither takes it.
 *
 * Threading: the main thread runs the main context; the queue-full,
 * two-IOThread and busy-poll cases run engines in IOThreads and wait on a
 * semaphore.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/raw-aio.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/main-loop.h"
#include "qaio/iothread.h"
#include "../src/linux-aio-int.h"
#include <signal.h>
#include <sys/resource.h>

/* Cap on aio_poll calls while waiting for requests to finish. */
#define MAX_ITERATIONS 1000000

#define PAGE 4096
#define SLOT_PAGES 4
#define SLOT (SLOT_PAGES * PAGE)

/* ---- Files and buffers --------------------------------------------------- */

/*
 * A new empty file, already unlinked.  With @direct, opened O_DIRECT in the
 * first directory that allows it; -1 if none does.
 */
static int open_tmp_file(bool direct)
{
    const char *dirs[] = { g_get_tmp_dir(), "." };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(dirs); i++) {
        g_autofree char *path = g_build_filename(dirs[i],
                                                 "test-linux-aio-XXXXXX",
                                                 NULL);
        int fd = g_mkstemp(path);
        int dfd;

        g_assert_cmpint(fd, >=, 0);
        if (!direct) {
            unlink(path);
            return fd;
        }
        close(fd);
        dfd = open(path, O_RDWR | O_DIRECT);
        unlink(path);
        if (dfd >= 0) {
            return dfd;
        }
        g_assert_cmpint(errno, ==, EINVAL);
    }
    return -1;
}

static int open_file_or_skip(bool direct)
{
    int fd = open_tmp_file(direct);

    if (fd < 0) {
        g_test_skip("no directory supports O_DIRECT");
    }
    return fd;
}

static uint8_t *alloc_buf(size_t len)
{
    void *p = NULL;

    g_assert_cmpint(posix_memalign(&p, PAGE, MAX(len, 1)), ==, 0);
    return p;
}

static void fill_random(uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        buf[i] = g_test_rand_int_range(0, 256);
    }
}

/*
 * Describe @buf as @qiov: one element, or several of random sizes
 * (multiples of PAGE when @aligned, as O_DIRECT needs).
 */
static void build_qiov(QEMUIOVector *qiov, uint8_t *buf, size_t len,
                       bool multi, bool aligned)
{
    size_t pos = 0;

    qemu_iovec_init(qiov, 8);
    while (pos < len) {
        size_t piece = len - pos;

        if (multi && piece > 1) {
            if (aligned) {
                piece = PAGE * g_test_rand_int_range(1, piece / PAGE + 1);
            } else {
                piece = g_test_rand_int_range(1, MIN(piece, 3 * PAGE) + 1);
            }
        }
        qemu_iovec_add(qiov, buf + pos, piece);
        pos += piece;
    }
}

/* ---- Requests from coroutines -------------------------------------------- */

typedef struct Req {
    int fd;
    uint64_t offset;
    QEMUIOVector *qiov;
    int type;
    uint64_t dev_max_batch;
    int ret;
    bool done;
    unsigned *pending;          /* decremented when done, if set */
    QemuSemaphore *all_done;    /* posted when *pending reaches 0, if set */
} Req;

static void coroutine_fn req_co(void *opaque)
{
    Req *r = opaque;

    r->ret = laio_co_submit(r->fd, r->offset, r->qiov, r->type,
                            r->dev_max_batch);
    r->done = true;
    if (r->pending && --*r->pending == 0 && r->all_done) {
        qemu_sem_post(r->all_done);
    }
}

static void start_req(Req *r)
{
    qemu_coroutine_enter(qemu_coroutine_create(req_co, r));
}

static LinuxAioState *main_engine(void)
{
    return aio_setup_linux_aio(qemu_get_aio_context(), &error_abort);
}

static void poll_until_zero(unsigned *pending)
{
    AioContext *ctx = qemu_get_aio_context();
    int i;

    for (i = 0; i < MAX_ITERATIONS && *pending; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpuint(*pending, ==, 0);
}

/* Run one request in the main context and return its result. */
static int co_io(int fd, uint64_t offset, QEMUIOVector *qiov, int type)
{
    unsigned pending = 1;
    Req r = {
        .fd = fd, .offset = offset, .qiov = qiov, .type = type,
        .pending = &pending,
    };

    main_engine();
    start_req(&r);
    poll_until_zero(&pending);
    return r.ret;
}

static int co_rw_buf(int fd, uint64_t offset, void *buf, size_t len,
                     int type)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, len);
    return co_io(fd, offset, &qiov, type);
}

/* ---- Random data at random offsets --------------------------------------- */

#define RW_SLOTS 256
#define RW_REQUESTS 96

typedef struct RwCase {
    bool direct;
    bool multi;
} RwCase;

/*
 * RW_REQUESTS writes of 1 to SLOT_PAGES pages at random page offsets, each
 * within its own slot so that they can all be in flight at once; then
 * reads of the same ranges, also all at once, and one read of the whole
 * file, compared with the copy in memory.
 */
static void test_rw(const void *opaque)
{
    const RwCase *c = opaque;
    size_t file_size = (size_t)RW_SLOTS * SLOT;
    g_autofree uint8_t *shadow = g_malloc0(file_size);
    g_autofree int *slots = g_new(int, RW_SLOTS);
    Req reqs[RW_REQUESTS];
    QEMUIOVector qiovs[RW_REQUESTS];
    uint8_t *bufs[RW_REQUESTS];
    size_t lens[RW_REQUESTS];
    uint8_t *whole;
    QEMUIOVector whole_qiov;
    unsigned pending;
    int fd = open_file_or_skip(c->direct);
    int i;

    if (fd < 0) {
        return;
    }
    g_assert_cmpint(ftruncate(fd, file_size), ==, 0);
    for (i = 0; i < RW_SLOTS; i++) {
        slots[i] = i;
    }
    for (i = RW_SLOTS - 1; i > 0; i--) {
        int j = g_test_rand_int_range(0, i + 1);
        int t = slots[i];

        slots[i] = slots[j];
        slots[j] = t;
    }

    pending = RW_REQUESTS;
    for (i = 0; i < RW_REQUESTS; i++) {
        int pages = g_test_rand_int_range(1, SLOT_PAGES + 1);
        int first = g_test_rand_int_range(0, SLOT_PAGES - pages + 1);
        uint64_t offset = (uint64_t)slots[i] * SLOT + first * PAGE;

        lens[i] = pages * PAGE;
        bufs[i] = alloc_buf(lens[i]);
        fill_random(bufs[i], lens[i]);
        memcpy(shadow + offset, bufs[i], lens[i]);
        build_qiov(&qiovs[i], bufs[i], lens[i], c->multi, c->direct);
        reqs[i] = (Req) {
            .fd = fd, .offset = offset, .qiov = &qiovs[i],
            .type = QEMU_AIO_WRITE, .pending = &pending,
        };
    }
    main_engine();
    for (i = 0; i < RW_REQUESTS; i++) {
        start_req(&reqs[i]);
    }
    poll_until_zero(&pending);
    for (i = 0; i < RW_REQUESTS; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
        memset(bufs[i], 0xa5, lens[i]);
        reqs[i].type = QEMU_AIO_READ;
        reqs[i].done = false;
    }

    pending = RW_REQUESTS;
    for (i = 0; i < RW_REQUESTS; i++) {
        start_req(&reqs[i]);
    }
    poll_until_zero(&pending);
    for (i = 0; i < RW_REQUESTS; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
        g_assert_cmpmem(bufs[i], lens[i], shadow + reqs[i].offset, lens[i]);
        qemu_iovec_destroy(&qiovs[i]);
        free(bufs[i]);
    }

    /* The whole file: nothing written where it should not have been. */
    whole = alloc_buf(file_size);
    memset(whole, 0xa5, file_size);
    build_qiov(&whole_qiov, whole, file_size, c->multi, c->direct);
    g_assert_cmpint(co_io(fd, 0, &whole_qiov, QEMU_AIO_READ), ==, 0);
    g_assert_cmpmem(whole, file_size, shadow, file_size);
    qemu_iovec_destroy(&whole_qiov);
    free(whole);
    close(fd);
}

/* ---- Flush --------------------------------------------------------------- */

static void test_flush(void)
{
    uint8_t *buf = alloc_buf(PAGE);
    int fd = open_tmp_file(false);
    int pipefd[2];

    fill_random(buf, PAGE);
    g_assert_cmpint(co_rw_buf(fd, 0, buf, PAGE, QEMU_AIO_WRITE), ==, 0);
    g_assert_true(laio_has_fdsync(fd));
    g_assert_cmpint(co_io(fd, 0, NULL, QEMU_AIO_FLUSH), ==, 0);

    /* No fsync method on a pipe: no FDSYNC, and a flush is refused. */
    g_assert_cmpint(pipe(pipefd), ==, 0);
    g_assert_false(laio_has_fdsync(pipefd[0]));
    g_assert_cmpint(co_io(pipefd[1], 0, NULL, QEMU_AIO_FLUSH), ==, -EINVAL);
    g_assert_false(laio_has_fdsync(-1));
    close(pipefd[0]);
    close(pipefd[1]);
    close(fd);
    free(buf);
}

static void test_flush_direct(void)
{
    uint8_t *buf = alloc_buf(PAGE);
    int fd = open_file_or_skip(true);

    if (fd >= 0) {
        fill_random(buf, PAGE);
        g_assert_cmpint(co_rw_buf(fd, PAGE, buf, PAGE, QEMU_AIO_WRITE),
                        ==, 0);
        g_assert_true(laio_has_fdsync(fd));
        g_assert_cmpint(co_io(fd, 0, NULL, QEMU_AIO_FLUSH), ==, 0);
        close(fd);
    }
    free(buf);
}

/* ---- End of file --------------------------------------------------------- */

#define EOF_TAIL 100
#define EOF_SIZE (2 * PAGE + EOF_TAIL)

/* The file holds EOF_SIZE bytes of @data (written with plain pwrite). */
static void check_eof_reads(int fd, const uint8_t *data, bool direct)
{
    uint8_t *buf = alloc_buf(4 * PAGE);
    uint8_t zeros[2 * PAGE] = { 0 };
    QEMUIOVector qiov;

    /* Straddling the end: the file's bytes, then zeroes. */
    memset(buf, 0xa5, 2 * PAGE);
    g_assert_cmpint(co_rw_buf(fd, 2 * PAGE, buf, 2 * PAGE, QEMU_AIO_READ),
                    ==, 0);
    g_assert_cmpmem(buf, EOF_TAIL, data + 2 * PAGE, EOF_TAIL);
    g_assert_cmpmem(buf + EOF_TAIL, 2 * PAGE - EOF_TAIL,
                    zeros, 2 * PAGE - EOF_TAIL);

    /* The same across several elements. */
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
    g_assert_cmpint(co_io(fd, PAGE, &qiov, QEMU_AIO_READ), ==, 0);
    g_assert_cmpmem(buf, PAGE + EOF_TAIL, data + PAGE, PAGE + EOF_TAIL);
    g_assert_cmpmem(buf + PAGE + EOF_TAIL, sizeof(zeros) - EOF_TAIL,
                    zeros, sizeof(zeros) - EOF_TAIL);
    g_assert_cmpmem(buf + 3 * PAGE, PAGE, zeros, PAGE);
    qemu_iovec_destroy(&qiov);

    /* Wholly past the end: all zeroes. */
    memset(buf, 0xa5, 2 * PAGE);
    g_assert_cmpint(co_rw_buf(fd, 4 * PAGE, buf, 2 * PAGE, QEMU_AIO_READ),
                    ==, 0);
    g_assert_cmpmem(buf, 2 * PAGE, zeros, 2 * PAGE);

    if (!direct) {
        /* At the exact end, and a few bytes before it. */
        memset(buf, 0xa5, PAGE);
        g_assert_cmpint(co_rw_buf(fd, EOF_SIZE, buf, 77, QEMU_AIO_READ),
                        ==, 0);
        g_assert_cmpmem(buf, 77, zeros, 77);
        g_assert_cmpuint(buf[77], ==, 0xa5);

        memset(buf, 0xa5, PAGE);
        g_assert_cmpint(co_rw_buf(fd, EOF_SIZE - 3, buf, 10, QEMU_AIO_READ),
                        ==, 0);
        g_assert_cmpmem(buf, 3, data + EOF_SIZE - 3, 3);
        g_assert_cmpmem(buf + 3, 7, zeros, 7);
        g_assert_cmpuint(buf[10], ==, 0xa5);
    }
    free(buf);
}

static void test_eof(const void *opaque)
{
    bool direct = GPOINTER_TO_INT(opaque);
    uint8_t data[EOF_SIZE];
    int fd = open_file_or_skip(direct);
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
    int wfd;

    if (fd < 0) {
        return;
    }
    fill_random(data, EOF_SIZE);
    /* An unaligned size needs a buffered write, even for O_DIRECT files. */
    wfd = open(path, O_RDWR);
    g_assert_cmpint(wfd, >=, 0);
    g_assert_cmpint(pwrite(wfd, data, EOF_SIZE, 0), ==, EOF_SIZE);
    close(wfd);
    check_eof_reads(fd, data, direct);
    close(fd);
}

/* A write cut short (here by RLIMIT_FSIZE) is -ENOSPC. */
static void test_short_write(void)
{
    uint8_t *buf = alloc_buf(PAGE);
    struct rlimit old, lim;
    void (*old_handler)(int);
    int fd = open_tmp_file(false);

    fill_random(buf, PAGE);
    main_engine();
    g_assert_cmpint(getrlimit(RLIMIT_FSIZE, &old), ==, 0);
    lim = old;
    lim.rlim_cur = 10 * PAGE;
    /* Past the limit the kernel also raises SIGXFSZ. */
    old_handler = signal(SIGXFSZ, SIG_IGN);
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &lim), ==, 0);

    g_assert_cmpint(co_rw_buf(fd, 10 * PAGE - 100, buf, PAGE,
                              QEMU_AIO_WRITE), ==, -ENOSPC);
    g_assert_cmpint(co_rw_buf(fd, 10 * PAGE, buf, PAGE, QEMU_AIO_WRITE),
                    ==, -EFBIG);

    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &old), ==, 0);
    signal(SIGXFSZ, old_handler);
    /* What did get written is there. */
    {
        uint8_t back[100];

        g_assert_cmpint(pread(fd, back, 100, 10 * PAGE - 100), ==, 100);
        g_assert_cmpmem(back, 100, buf, 100);
    }
    close(fd);
    free(buf);
}

/* ---- Many coroutines, batching ------------------------------------------- */

#define MANY 1000

/*
 * MANY coroutines write a page each, started before the loop runs, then
 * read them back the same way.  Each batch of LAIO_DEFAULT_MAX_BATCH goes
 * to the kernel at once; the rest goes from the bottom half.
 */
static void test_many_coroutines(const void *opaque)
{
    bool direct = GPOINTER_TO_INT(opaque);
    LinuxAioState *s = main_engine();
    g_autofree Req *reqs = g_new0(Req, MANY);
    g_autofree QEMUIOVector *qiovs = g_new(QEMUIOVector, MANY);
    uint8_t *data = alloc_buf((size_t)MANY * PAGE);
    uint8_t *back = alloc_buf((size_t)MANY * PAGE);
    unsigned expected_calls = (MANY + LAIO_DEFAULT_MAX_BATCH - 1) /
                              LAIO_DEFAULT_MAX_BATCH;
    unsigned pending;
    LaioStats st;
    int fd = open_file_or_skip(direct);
    int pass, i;

    if (fd < 0) {
        free(data);
        free(back);
        return;
    }
    fill_random(data, (size_t)MANY * PAGE);
    memset(back, 0xa5, (size_t)MANY * PAGE);
    for (pass = 0; pass < 2; pass++) {
        uint8_t *mem = pass == 0 ? data : back;

        qaio_int_laio_reset_stats(s);
        pending = MANY;
        for (i = 0; i < MANY; i++) {
            /* Scattered over the file: 997 is prime, MANY is not. */
            uint64_t slot = (uint64_t)i * 997 % MANY;

            qemu_iovec_init_buf(&qiovs[i], mem + i * PAGE, PAGE);
            reqs[i] = (Req) {
                .fd = fd, .offset = slot * PAGE, .qiov = &qiovs[i],
                .type = pass == 0 ? QEMU_AIO_WRITE : QEMU_AIO_READ,
                .pending = &pending,
            };
            start_req(&reqs[i]);
        }
        poll_until_zero(&pending);
        for (i = 0; i < MANY; i++) {
            g_assert_cmpint(reqs[i].ret, ==, 0);
        }
        qaio_int_laio_get_stats(s, &st);
        g_test_message("%s pass: %" PRIu64 " io_submit calls, largest batch "
                       "%u, peak in flight %u, reaped %" PRIu64 " from the "
                       "ring and %" PRIu64 " by io_getevents",
                       pass == 0 ? "write" : "read", st.submit_calls,
                       st.largest_batch, st.max_in_flight, st.ring_reaped,
                       st.syscall_reaped);
        g_assert_cmpuint(st.submitted, ==, MANY);
        g_assert_cmpuint(st.queue_full, ==, 0);
        g_assert_cmpuint(st.submit_calls, ==, expected_calls);
        g_assert_cmpuint(st.largest_batch, ==, LAIO_DEFAULT_MAX_BATCH);
        g_assert_cmpuint(st.ring_reaped + st.syscall_reaped, ==, MANY);
    }
    g_assert_cmpmem(back, (size_t)MANY * PAGE, data, (size_t)MANY * PAGE);
    close(fd);
    free(data);
    free(back);
}

/* Run @n one-page writes at once; return the io_submit() calls made. */
static uint64_t batched_writes(int fd, int n, uint64_t dev_max_batch,
                               unsigned *largest)
{
    LinuxAioState *s = main_engine();
    g_autofree Req *reqs = g_new0(Req, n);
    g_autofree QEMUIOVector *qiovs = g_new(QEMUIOVector, n);
    uint8_t *buf = alloc_buf(PAGE);
    unsigned pending = n;
    LaioStats st;
    int i;

    fill_random(buf, PAGE);
    qaio_int_laio_reset_stats(s);
    for (i = 0; i < n; i++) {
        qemu_iovec_init_buf(&qiovs[i], buf, PAGE);
        reqs[i] = (Req) {
            .fd = fd, .offset = (uint64_t)i * PAGE, .qiov = &qiovs[i],
            .type = QEMU_AIO_WRITE, .dev_max_batch = dev_max_batch,
            .pending = &pending,
        };
        start_req(&reqs[i]);
    }
    poll_until_zero(&pending);
    for (i = 0; i < n; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
    }
    qaio_int_laio_get_stats(s, &st);
    g_assert_cmpuint(st.submitted, ==, n);
    *largest = st.largest_batch;
    free(buf);
    return st.submit_calls;
}

/* The context's aio_max_batch and the device's limit, the smaller wins. */
static void test_max_batch(void)
{
    AioContext *ctx = qemu_get_aio_context();
    int fd = open_tmp_file(false);
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

/* ---- Engines in IOThreads ------------------------------------------------ */

typedef struct ThreadJob {
    IOThread *iothread;
    LinuxAioState *engine;
    int fd;
    int n;
    bool write;
    uint8_t *mem;               /* n pages */
    Req *reqs;
    QEMUIOVector *qiovs;
    unsigned pending;
    QemuSemaphore done;
    LaioStats stats;
} ThreadJob;

/* In the IOThread: start every request of the job. */
static void thread_job_bh(void *opaque)
{
    ThreadJob *j = opaque;
    int i;

    j->engine = aio_setup_linux_aio(qemu_get_current_aio_context(),
                                    &error_abort);
    qaio_int_laio_reset_stats(j->engine);
    j->pending = j->n;
    for (i = 0; i < j->n; i++) {
        qemu_iovec_init_buf(&j->qiovs[i], j->mem + (size_t)i * PAGE, PAGE);
        j->reqs[i] = (Req) {
            .fd = j->fd, .offset = (uint64_t)i * PAGE, .qiov = &j->qiovs[i],
            .type = j->write ? QEMU_AIO_WRITE : QEMU_AIO_READ,
            .pending = &j->pending, .all_done = &j->done,
        };
        start_req(&j->reqs[i]);
    }
}

static void thread_stats_bh(void *opaque)
{
    ThreadJob *j = opaque;

    qaio_int_laio_get_stats(j->engine, &j->stats);
    qemu_sem_post(&j->done);
}

static void thread_job_init(ThreadJob *j, const char *name,
                            const IOThreadOptions *opts, int fd, int n)
{
    memset(j, 0, sizeof(*j));
    j->iothread = iothread_create_full(name, opts, &error_abort);
    j->fd = fd;
    j->n = n;
    j->mem = alloc_buf((size_t)n * PAGE);
    j->reqs = g_new0(Req, n);
    j->qiovs = g_new(QEMUIOVector, n);
    qemu_sem_init(&j->done, 0);
}

static void thread_job_start(ThreadJob *j, bool write)
{
    j->write = write;
    aio_bh_schedule_oneshot(iothread_get_aio_context(j->iothread),
                            thread_job_bh, j);
}

/* Wait for the job, check its results and fetch the engine's counters. */
static void thread_job_wait(ThreadJob *j)
{
    int i;

    qemu_sem_wait(&j->done);
    for (i = 0; i < j->n; i++) {
        g_assert_true(j->reqs[i].done);
        g_assert_cmpint(j->reqs[i].ret, ==, 0);
    }
    aio_bh_schedule_oneshot(iothread_get_aio_context(j->iothread),
                            thread_stats_bh, j);
    qemu_sem_wait(&j->done);
}

static void thread_job_destroy(ThreadJob *j)
{
    iothread_destroy(j->iothread);
    qemu_sem_destroy(&j->done);
    free(j->mem);
    g_free(j->reqs);
    g_free(j->qiovs);
}

#define THREAD_REQUESTS 400

/* Two IOThreads, each with its own engine, writing and reading at once. */
static void test_two_iothreads(void)
{
    ThreadJob jobs[2];
    uint8_t *expect[2];
    bool direct = true;
    int i;

    for (i = 0; i < 2; i++) {
        int fd = open_tmp_file(direct);

        if (fd < 0) {
            direct = false;
            fd = open_tmp_file(false);
        }
        thread_job_init(&jobs[i], i == 0 ? "laio-a" : "laio-b", NULL, fd,
                        THREAD_REQUESTS);
        fill_random(jobs[i].mem, (size_t)THREAD_REQUESTS * PAGE);
        expect[i] = g_memdup2(jobs[i].mem, (size_t)THREAD_REQUESTS * PAGE);
    }
    for (i = 0; i < 2; i++) {
        thread_job_start(&jobs[i], true);
    }
    for (i = 0; i < 2; i++) {
        thread_job_wait(&jobs[i]);
        g_assert_cmpuint(jobs[i].stats.submitted, ==, THREAD_REQUESTS);
        memset(jobs[i].mem, 0xa5, (size_t)THREAD_REQUESTS * PAGE);
    }
    g_assert_true(jobs[0].engine != jobs[1].engine);
    g_assert_true(jobs[0].engine != aio_get_linux_aio(qemu_get_aio_context()));

    for (i = 0; i < 2; i++) {
        thread_job_start(&jobs[i], false);
    }
    for (i = 0; i < 2; i++) {
        thread_job_wait(&jobs[i]);
        g_assert_cmpuint(jobs[i].stats.submitted, ==, THREAD_REQUESTS);
        g_assert_cmpmem(jobs[i].mem, (size_t)THREAD_REQUESTS * PAGE,
                        expect[i], (size_t)THREAD_REQUESTS * PAGE);
    }
    for (i = 0; i < 2; i++) {
        close(jobs[i].fd);
        thread_job_destroy(&jobs[i]);
        g_free(expect[i]);
    }
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
    ThreadJob j;
    g_autofree uint8_t *expect = NULL;
    int fd = open_tmp_file(false);

    opts.aio_max_batch = 2 * MANY;
    qaio_int_laio_set_params(&params);
    thread_job_init(&j, "laio-full", &opts, fd, MANY);
    fill_random(j.mem, (size_t)MANY * PAGE);
    expect = g_memdup2(j.mem, (size_t)MANY * PAGE);

    thread_job_start(&j, true);
    thread_job_wait(&j);
    qaio_int_laio_set_params(NULL);
    g_test_message("%" PRIu64 " io_submit calls, %" PRIu64 " found the "
                   "kernel full, largest batch %u, peak in flight %u",
                   j.stats.submit_calls, j.stats.queue_full,
                   j.stats.largest_batch, j.stats.max_in_flight);
    g_assert_cmpuint(j.stats.submitted, ==, MANY);
    g_assert_cmpuint(j.stats.queue_full, >=, 1);
    g_assert_cmpuint(j.stats.largest_batch, <, 127);
    g_assert_cmpuint(j.stats.max_in_flight, <, 127);
    g_assert_cmpint(qaio_int_laio_uses_ring(j.engine), ==, !no_ring);
    if (no_ring) {
        g_assert_cmpuint(j.stats.ring_reaped, ==, 0);
        g_assert_cmpuint(j.stats.syscall_reaped, ==, MANY);
    } else {
        g_assert_cmpuint(j.stats.ring_reaped, ==, MANY);
        g_assert_cmpuint(j.stats.syscall_reaped, ==, 0);
    }

    memset(j.mem, 0xa5, (size_t)MANY * PAGE);
    thread_job_start(&j, false);
    thread_job_wait(&j);
    g_assert_cmpmem(j.mem, (size_t)MANY * PAGE, expect, (size_t)MANY * PAGE);
    close(fd);
    thread_job_destroy(&j);
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
    LinuxAioState *s = aio_setup_linux_aio(qemu_get_current_aio_context(),
                                           &error_abort);
    QEMUIOVector qiov;
    int i;

    qaio_int_laio_reset_stats(s);
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
    IOThread *iothread;
    PollJob p = { 0 };

    p.fd = open_file_or_skip(true);
    if (p.fd < 0) {
        return;
    }
    opts.poll_max_ns = 1000 * 1000 * 1000;
    iothread = iothread_create_full("laio-poll", &opts, &error_abort);
    p.data = alloc_buf((size_t)POLLED_REQUESTS * PAGE);
    p.back = alloc_buf((size_t)POLLED_REQUESTS * PAGE);
    fill_random(p.data, (size_t)POLLED_REQUESTS * PAGE);
    memset(p.back, 0xa5, (size_t)POLLED_REQUESTS * PAGE);
    qemu_sem_init(&p.done, 0);

    aio_bh_schedule_oneshot(iothread_get_aio_context(iothread), poll_job_bh,
                            &p);
    qemu_sem_wait(&p.done);
    g_assert_cmpint(p.ret, ==, 0);
    g_assert_cmpmem(p.back, (size_t)POLLED_REQUESTS * PAGE,
                    p.data, (size_t)POLLED_REQUESTS * PAGE);
    g_assert_cmpuint(p.stats.submitted, ==, 2 * POLLED_REQUESTS);
    g_test_message("%" PRIu64 " of %d completions reaped by busy polling",
                   p.stats.polled, 2 * POLLED_REQUESTS);

    iothread_destroy(iothread);
    qemu_sem_destroy(&p.done);
    free(p.data);
    free(p.back);
    close(p.fd);
}

/* ---- Errors -------------------------------------------------------------- */

static void test_bad_fd(void)
{
    uint8_t *buf = alloc_buf(PAGE);
    int fd = open_tmp_file(false);
    g_autofree char *path = g_strdup_printf("/proc/self/fd/%d", fd);
    int closed, rdonly;

    /* First, so that its eventfd does not take the number we close. */
    main_engine();
    closed = dup(fd);
    rdonly = open(path, O_RDONLY);
    g_assert_cmpint(close(closed), ==, 0);
    g_assert_cmpint(co_rw_buf(-1, 0, buf, PAGE, QEMU_AIO_READ), ==, -EBADF);
    g_assert_cmpint(co_rw_buf(closed, 0, buf, PAGE, QEMU_AIO_READ),
                    ==, -EBADF);
    g_assert_cmpint(co_rw_buf(closed, 0, buf, PAGE, QEMU_AIO_WRITE),
                    ==, -EBADF);
    g_assert_cmpint(co_io(closed, 0, NULL, QEMU_AIO_FLUSH), ==, -EBADF);
    g_assert_cmpint(co_rw_buf(rdonly, 0, buf, PAGE, QEMU_AIO_WRITE),
                    ==, -EBADF);
    close(rdonly);
    close(fd);
    free(buf);
}

/*
 * A refused request in the middle of a batch fails alone: io_submit takes
 * the three before it, refuses it on the next call, takes the rest on the
 * third.
 */
static void test_bad_fd_in_batch(void)
{
    AioContext *ctx = qemu_get_aio_context();
    LinuxAioState *s = main_engine();
    uint8_t *buf = alloc_buf(PAGE);
    QEMUIOVector qiovs[8];
    Req reqs[8];
    unsigned pending = 8;
    LaioStats st;
    int fd = open_tmp_file(false);
    int i;

    fill_random(buf, PAGE);
    aio_context_set_aio_params(ctx, 8);
    qaio_int_laio_reset_stats(s);
    for (i = 0; i < 8; i++) {
        qemu_iovec_init_buf(&qiovs[i], buf, PAGE);
        reqs[i] = (Req) {
            .fd = i == 3 ? -1 : fd, .offset = (uint64_t)i * PAGE,
            .qiov = &qiovs[i], .type = QEMU_AIO_WRITE, .pending = &pending,
        };
        start_req(&reqs[i]);
    }
    poll_until_zero(&pending);
    aio_context_set_aio_params(ctx, 0);
    for (i = 0; i < 8; i++) {
        g_assert_cmpint(reqs[i].ret, ==, i == 3 ? -EBADF : 0);
    }
    qaio_int_laio_get_stats(s, &st);
    g_assert_cmpuint(st.submit_calls, ==, 3);
    g_assert_cmpuint(st.submitted, ==, 7);
    g_assert_cmpuint(st.largest_batch, ==, 4);
    g_assert_cmpuint(st.queue_full, ==, 1);
    close(fd);
    free(buf);
}

static void test_direct_unaligned(void)
{
    uint8_t *buf = alloc_buf(4 * PAGE);
    QEMUIOVector qiov;
    int fd = open_file_or_skip(true);

    if (fd < 0) {
        free(buf);
        return;
    }
    /* Real blocks: reads of a hole are served without the checks. */
    fill_random(buf, 4 * PAGE);
    g_assert_cmpint(co_rw_buf(fd, 0, buf, 4 * PAGE, QEMU_AIO_WRITE), ==, 0);
    /* Buffer, offset, length, and one element of a vector. */
    g_assert_cmpint(co_rw_buf(fd, 0, buf + 1, PAGE, QEMU_AIO_READ),
                    ==, -EINVAL);
    g_assert_cmpint(co_rw_buf(fd, 0, buf + 1, PAGE, QEMU_AIO_WRITE),
                    ==, -EINVAL);
    g_assert_cmpint(co_rw_buf(fd, 1, buf, PAGE, QEMU_AIO_READ), ==, -EINVAL);
    g_assert_cmpint(co_rw_buf(fd, 100, buf, PAGE, QEMU_AIO_WRITE),
                    ==, -EINVAL);
    g_assert_cmpint(co_rw_buf(fd, 0, buf, PAGE + 1, QEMU_AIO_READ),
                    ==, -EINVAL);
    g_assert_cmpint(co_rw_buf(fd, 0, buf, 100, QEMU_AIO_WRITE), ==, -EINVAL);
    qemu_iovec_init(&qiov, 2);
    qemu_iovec_add(&qiov, buf, PAGE);
    qemu_iovec_add(&qiov, buf + PAGE + 7, PAGE);
    g_assert_cmpint(co_io(fd, 0, &qiov, QEMU_AIO_READ), ==, -EINVAL);
    qemu_iovec_destroy(&qiov);
    /* The same file still works with aligned requests. */
    g_assert_cmpint(co_rw_buf(fd, PAGE, buf, 2 * PAGE, QEMU_AIO_READ), ==, 0);
    close(fd);
    free(buf);
}

static void test_unsupported_types(void)
{
    uint8_t *buf = alloc_buf(PAGE);
    int fd = open_tmp_file(false);

    g_assert_cmpint(co_rw_buf(fd, 0, buf, PAGE, QEMU_AIO_DISCARD),
                    ==, -ENOTSUP);
    g_assert_cmpint(co_rw_buf(fd, 0, buf, PAGE, QEMU_AIO_WRITE_ZEROES),
                    ==, -ENOTSUP);
    g_assert_cmpint(co_io(fd, 0, NULL, QEMU_AIO_TRUNCATE), ==, -ENOTSUP);
    close(fd);
    free(buf);
}

/* ---- Setup --------------------------------------------------------------- */

static void test_setup_same_state(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    LinuxAioState *s;

    g_assert_null(aio_get_linux_aio(ctx));
    s = aio_setup_linux_aio(ctx, &error_abort);
    g_assert_nonnull(s);
    g_assert_true(aio_setup_linux_aio(ctx, &error_abort) == s);
    g_assert_true(aio_get_linux_aio(ctx) == s);
    /* Freed with the context (the sanitizer builds check nothing leaks). */
    aio_context_unref(ctx);
}

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

/* ---- Misuse -------------------------------------------------------------- */

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
    static const RwCase rw_cases[] = {
        { false, false }, { false, true }, { true, false }, { true, true },
    };

    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);

    g_test_add_data_func("/linux-aio/rw/buffered/single", &rw_cases[0],
                         test_rw);
    g_test_add_data_func("/linux-aio/rw/buffered/multi-iovec", &rw_cases[1],
                         test_rw);
    g_test_add_data_func("/linux-aio/rw/direct/single", &rw_cases[2],
                         test_rw);
    g_test_add_data_func("/linux-aio/rw/direct/multi-iovec", &rw_cases[3],
                         test_rw);
    g_test_add_func("/linux-aio/flush/buffered", test_flush);
    g_test_add_func("/linux-aio/flush/direct", test_flush_direct);
    g_test_add_data_func("/linux-aio/eof/buffered", GINT_TO_POINTER(false),
                         test_eof);
    g_test_add_data_func("/linux-aio/eof/direct", GINT_TO_POINTER(true),
                         test_eof);
    g_test_add_func("/linux-aio/short-write-is-enospc", test_short_write);
    g_test_add_data_func("/linux-aio/many-coroutines/buffered",
                         GINT_TO_POINTER(false), test_many_coroutines);
    g_test_add_data_func("/linux-aio/many-coroutines/direct",
                         GINT_TO_POINTER(true), test_many_coroutines);
    g_test_add_func("/linux-aio/max-batch", test_max_batch);
    g_test_add_func("/linux-aio/two-iothreads", test_two_iothreads);
    g_test_add_data_func("/linux-aio/queue-full/ring",
                         GINT_TO_POINTER(false), test_queue_full);
    g_test_add_data_func("/linux-aio/queue-full/io-getevents",
                         GINT_TO_POINTER(true), test_queue_full);
    g_test_add_func("/linux-aio/busy-poll", test_busy_poll);
    g_test_add_func("/linux-aio/error/bad-fd", test_bad_fd);
    g_test_add_func("/linux-aio/error/bad-fd-in-batch", test_bad_fd_in_batch);
    g_test_add_func("/linux-aio/error/direct-unaligned",
                    test_direct_unaligned);
    g_test_add_func("/linux-aio/error/unsupported-types",
                    test_unsupported_types);
    g_test_add_func("/linux-aio/setup/same-state", test_setup_same_state);
    g_test_add_func("/linux-aio/setup/io-setup-fails", test_init_fails);
    g_test_add_func("/linux-aio/misuse/no-engine", test_no_engine);

    return g_test_run();
}
