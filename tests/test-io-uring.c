/*
 * test-io-uring.c: the io_uring block I/O engine (luring_*, block/raw-aio.h).
 *
 * Data written at random 4 KiB-aligned offsets, buffered and O_DIRECT,
 * single and multi-iovec, is read back through the engine and with
 * pread() and compared byte for byte.  Also: flush, reads at and past the
 * end of the file (exact zero-fill), short transfers and -EAGAIN
 * completions (forced through the engine's fault injection knobs, so the
 * resubmission paths run every time), 1,000 requests from 1,000
 * coroutines (more than the ring holds: the software queue and the
 * in-flight cap are exercised), batching counted exactly, two IOThreads
 * each with its own engine, the errors with their exact errno, setup
 * failure, and detach with requests outstanding.  Registered with
 * 'fdmon': the eventfd of the engine is watched by each fd monitor.
 *
 * O_DIRECT needs a file system that supports it (tmpfs does not): the
 * files go to the first of the current directory, $TMPDIR and /var/tmp
 * where an O_DIRECT write works; those cases skip if none does.
 *
 * Threading: the main thread runs the main loop's context; the IOThread
 * case drives two more engines from their own threads.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/raw-aio.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/main-loop.h"
#include "qaio/iothread.h"
#include "../src/io-uring-int.h"
#include <sys/resource.h>

/* Cap on aio_poll calls while waiting for requests to finish. */
#define MAX_ITERATIONS 1000000

#define BLOCK 4096
#define FILE_BLOCKS 256                     /* 1 MiB test region */
#define MAX_IOV 8

/* ---- Files -------------------------------------------------------------- */

static char *direct_dir;        /* where O_DIRECT works, or NULL */
static bool direct_probed;

static void *aligned_alloc_or_die(size_t size)
{
    void *p = NULL;

    g_assert_cmpint(posix_memalign(&p, BLOCK, size), ==, 0);
    return p;
}

/* A fresh, already unlinked file in @dir; O_DIRECT if @direct. */
static int open_temp_in(const char *dir, bool direct)
{
    char *path = g_build_filename(dir, "qaio-io-uring-XXXXXX", NULL);
    int fd = g_mkstemp(path);

    if (fd >= 0 && direct) {
        int dfd = open(path, O_RDWR | O_DIRECT);

        close(fd);
        fd = dfd;
    }
    if (fd >= 0) {
        unlink(path);
    }
    g_free(path);
    return fd;
}

static const char *find_direct_dir(void)
{
    g_autofree char *cwd = g_get_current_dir();
    const char *candidates[] = { cwd, g_get_tmp_dir(), "/var/tmp" };
    size_t i;

    if (direct_probed) {
        return direct_dir;
    }
    direct_probed = true;
    for (i = 0; i < G_N_ELEMENTS(candidates); i++) {
        int fd = open_temp_in(candidates[i], true);
        void *buf;
        bool ok;

        if (fd < 0) {
            continue;
        }
        buf = aligned_alloc_or_die(BLOCK);
        memset(buf, 0, BLOCK);
        ok = pwrite(fd, buf, BLOCK, 0) == BLOCK;
        free(buf);
        close(fd);
        if (ok) {
            direct_dir = g_strdup(candidates[i]);
            break;
        }
    }
    return direct_dir;
}

/* A temp file for buffered I/O (always available). */
static int open_buffered(void)
{
    g_autofree char *cwd = g_get_current_dir();
    int fd = open_temp_in(cwd, false);

    if (fd < 0) {
        fd = open_temp_in(g_get_tmp_dir(), false);
    }
    g_assert_cmpint(fd, >=, 0);
    return fd;
}

/* An O_DIRECT temp file, or -1 after g_test_skip(). */
static int open_direct(void)
{
    const char *dir = find_direct_dir();
    int fd;

    if (!dir) {
        g_test_skip("no directory here supports O_DIRECT");
        return -1;
    }
    fd = open_temp_in(dir, true);
    g_assert_cmpint(fd, >=, 0);
    return fd;
}

static void fill_random(void *buf, size_t len)
{
    uint32_t *p = buf;
    size_t i;

    g_assert(len % 4 == 0);
    for (i = 0; i < len / 4; i++) {
        p[i] = g_test_rand_int();
    }
}

static void pread_exact(int fd, void *buf, size_t len, off_t offset)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, offset + done);

        g_assert_cmpint(n, >, 0);
        done += n;
    }
}

/* ---- Requests from coroutines --------------------------------------- */

typedef struct Req {
    int fd;
    uint64_t offset;
    int type;
    struct iovec iov[MAX_IOV];
    QEMUIOVector qiov;
    bool has_qiov;
    int ret;
    bool done;
    /* If set, a second request after the first (chained requests). */
    int repeat;
    int *done_count;
    AioContext *expect_ctx;
} Req;

static void coroutine_fn req_co(void *opaque)
{
    Req *r = opaque;

    do {
        r->ret = luring_co_submit(NULL, r->fd, r->offset,
                                  r->has_qiov ? &r->qiov : NULL, r->type);
        if (r->expect_ctx) {
            g_assert(qemu_get_current_aio_context() == r->expect_ctx);
        }
    } while (r->ret == 0 && r->repeat-- > 0);
    r->done = true;
    if (r->done_count) {
        (*r->done_count)++;
    }
}

static void req_init(Req *r, int fd, uint64_t offset, int type)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->offset = offset;
    r->type = type;
    r->ret = -EINPROGRESS;
}

/* One buffer of @len bytes at @buf as a single-element vector. */
static void req_set_buf(Req *r, void *buf, size_t len)
{
    r->iov[0].iov_base = buf;
    r->iov[0].iov_len = len;
    qemu_iovec_init_external(&r->qiov, r->iov, 1);
    r->has_qiov = true;
}

/*
 * @buf split into up to @max_iov pieces, each a multiple of @granule
 * bytes (the granule is 1 for buffered I/O, 4096 for O_DIRECT).
 */
static void req_set_split_buf(Req *r, void *buf, size_t len, int max_iov,
                              size_t granule)
{
    size_t units = len / granule;
    size_t pos = 0;
    int n = 0;

    g_assert(len % granule == 0);
    while (pos < len) {
        size_t left = (len - pos) / granule;
        size_t take;

        if (n == max_iov - 1 || left == 1) {
            take = left;
        } else {
            /* Never all of it at once: at least two elements. */
            take = g_test_rand_int_range(1, MIN(left - 1,
                                                MAX(units / 2, 1)) + 1);
        }
        r->iov[n].iov_base = (char *)buf + pos;
        r->iov[n].iov_len = take * granule;
        pos += take * granule;
        n++;
    }
    qemu_iovec_init_external(&r->qiov, r->iov, n);
    r->has_qiov = true;
}

static void wait_for(int *count, int n)
{
    AioContext *ctx = qemu_get_aio_context();
    int i;

    for (i = 0; i < MAX_ITERATIONS && *count < n; i++) {
        aio_poll(ctx, true);
    }
    g_assert_cmpint(*count, ==, n);
}

/* Start all @n requests (each submits and yields), then run the loop. */
static void run_reqs(Req *reqs, int n)
{
    int done = 0;
    int i;

    for (i = 0; i < n; i++) {
        reqs[i].done_count = &done;
        qemu_coroutine_enter(qemu_coroutine_create(req_co, &reqs[i]));
    }
    wait_for(&done, n);
}

static int run_one(int fd, uint64_t offset, void *buf, size_t len, int type)
{
    Req r;

    req_init(&r, fd, offset, type);
    if (buf || len) {
        req_set_buf(&r, buf, len);
    }
    run_reqs(&r, 1);
    return r.ret;
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

/* ---- Setup ------------------------------------------------------------ */

static void test_setup_same_state(void)
{
    AioContext *ctx = qemu_get_aio_context();
    LuringState *s1 = aio_setup_linux_io_uring(ctx, &error_abort);
    LuringState *s2 = aio_setup_linux_io_uring(ctx, &error_abort);

    g_assert_nonnull(s1);
    g_assert(s1 == s2);
    g_assert(aio_get_linux_io_uring(ctx) == s1);
}

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
    char buf[16];
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

/* ---- Data integrity ----------------------------------------------------- */

/*
 * Write the whole region in random-sized requests at random positions
 * (all at once, non-overlapping), check it with pread, then read it back
 * through the engine in a different random split and compare.
 */
static void check_random_rw(int fd, bool direct, bool multi_iov)
{
    size_t len = FILE_BLOCKS * BLOCK;
    uint8_t *data = aligned_alloc_or_die(len);
    uint8_t *back = aligned_alloc_or_die(len);
    uint8_t *check = aligned_alloc_or_die(len);
    size_t granule = direct ? BLOCK : 1;
    int order[FILE_BLOCKS];
    Req *reqs = g_new(Req, FILE_BLOCKS);
    int pass;
    int i;

    fill_random(data, len);
    for (pass = 0; pass < 2; pass++) {
        bool writing = pass == 0;
        int n = 0;
        int b = 0;

        /* Chunks of 1-8 blocks covering the region, in shuffled order. */
        while (b < FILE_BLOCKS) {
            int nb = MIN(g_test_rand_int_range(1, 9), FILE_BLOCKS - b);

            order[n++] = b | (nb << 16);
            b += nb;
        }
        for (i = n - 1; i > 0; i--) {
            int j = g_test_rand_int_range(0, i + 1);
            int t = order[i];

            order[i] = order[j];
            order[j] = t;
        }

        memset(back, 0x5a, len);
        for (i = 0; i < n; i++) {
            int blk = order[i] & 0xffff;
            size_t bytes = (size_t)(order[i] >> 16) * BLOCK;
            uint8_t *buf = (writing ? data : back) + (size_t)blk * BLOCK;

            req_init(&reqs[i], fd, (uint64_t)blk * BLOCK,
                     writing ? QEMU_AIO_WRITE : QEMU_AIO_READ);
            if (multi_iov) {
                req_set_split_buf(&reqs[i], buf, bytes, MAX_IOV, granule);
            } else {
                req_set_buf(&reqs[i], buf, bytes);
            }
            if (multi_iov && bytes > BLOCK) {
                g_assert_cmpint(reqs[i].qiov.niov, >, 1);
            }
        }
        run_reqs(reqs, n);
        for (i = 0; i < n; i++) {
            g_assert_cmpint(reqs[i].ret, ==, 0);
        }
        if (writing) {
            pread_exact(fd, check, len, 0);
            g_assert(memcmp(check, data, len) == 0);
        } else {
            g_assert(memcmp(back, data, len) == 0);
        }
    }

    g_free(reqs);
    free(check);
    free(back);
    free(data);
}

static void test_rw_buffered_single(void)
{
    int fd = open_buffered();

    main_engine();
    check_random_rw(fd, false, false);
    close(fd);
}

static void test_rw_buffered_multi(void)
{
    int fd = open_buffered();

    main_engine();
    check_random_rw(fd, false, true);
    close(fd);
}

static void test_rw_direct_single(void)
{
    int fd = open_direct();

    if (fd < 0) {
        return;
    }
    main_engine();
    check_random_rw(fd, true, false);
    close(fd);
}

static void test_rw_direct_multi(void)
{
    int fd = open_direct();

    if (fd < 0) {
        return;
    }
    main_engine();
    check_random_rw(fd, true, true);
    close(fd);
}

static void test_flush(void)
{
    int fd = open_buffered();
    int dfd = open_direct();
    uint8_t *buf = aligned_alloc_or_die(BLOCK);
    uint8_t *check = g_malloc(BLOCK);

    main_engine();
    fill_random(buf, BLOCK);
    g_assert_cmpint(run_one(fd, 0, buf, BLOCK, QEMU_AIO_WRITE), ==, 0);
    g_assert_cmpint(run_one(fd, 0, NULL, 0, QEMU_AIO_FLUSH), ==, 0);
    pread_exact(fd, check, BLOCK, 0);
    g_assert(memcmp(buf, check, BLOCK) == 0);
    if (dfd >= 0) {
        g_assert_cmpint(run_one(dfd, BLOCK, buf, BLOCK, QEMU_AIO_WRITE), ==,
                        0);
        g_assert_cmpint(run_one(dfd, 0, NULL, 0, QEMU_AIO_FLUSH), ==, 0);
        close(dfd);
    }
    free(buf);
    g_free(check);
    close(fd);
}

/* ---- End of file ----------------------------------------------------- */

#define EOF_SIZE 10000

static void test_read_eof(void)
{
    LuringState *s = main_engine();
    int fd = open_buffered();
    uint8_t *data = g_malloc(EOF_SIZE);
    uint8_t *buf = g_malloc(4 * BLOCK);
    uint8_t *zero = g_malloc0(4 * BLOCK);
    LuringStats st;
    Req r;
    int i;

    fill_random(data, EOF_SIZE);
    g_assert_cmpint(pwrite(fd, data, EOF_SIZE, 0), ==, EOF_SIZE);
    qaio_int_luring_reset_stats(s);

    /* Across the end: the file's bytes, then zeroes. */
    memset(buf, 0xaa, 4 * BLOCK);
    g_assert_cmpint(run_one(fd, 0, buf, 4 * BLOCK, QEMU_AIO_READ), ==, 0);
    g_assert(memcmp(buf, data, EOF_SIZE) == 0);
    g_assert(memcmp(buf + EOF_SIZE, zero, 4 * BLOCK - EOF_SIZE) == 0);
    st = engine_stats(s);
    /* 10000 bytes, then a resubmission that returned 0. */
    g_assert_cmpuint(st.short_resubmits, ==, 1);
    g_assert_cmpuint(st.sqes_submitted, ==, 2);

    /* The same with a vector whose elements straddle the end. */
    memset(buf, 0xaa, 4 * BLOCK);
    req_init(&r, fd, 2 * BLOCK, QEMU_AIO_READ);
    for (i = 0; i < 4; i++) {
        r.iov[i].iov_base = buf + i * 1000;
        r.iov[i].iov_len = 1000;
    }
    qemu_iovec_init_external(&r.qiov, r.iov, 4);
    r.has_qiov = true;
    run_reqs(&r, 1);
    g_assert_cmpint(r.ret, ==, 0);
    g_assert(memcmp(buf, data + 2 * BLOCK, EOF_SIZE - 2 * BLOCK) == 0);
    g_assert(memcmp(buf + EOF_SIZE - 2 * BLOCK, zero,
                    4000 - (EOF_SIZE - 2 * BLOCK)) == 0);
    g_assert_cmpint(buf[4000], ==, 0xaa);

    /* Exactly at the end, and far beyond it: all zeroes. */
    memset(buf, 0xaa, BLOCK);
    g_assert_cmpint(run_one(fd, EOF_SIZE, buf, BLOCK, QEMU_AIO_READ), ==, 0);
    g_assert(memcmp(buf, zero, BLOCK) == 0);
    memset(buf, 0xaa, BLOCK);
    g_assert_cmpint(run_one(fd, 1 << 20, buf, BLOCK, QEMU_AIO_READ), ==, 0);
    g_assert(memcmp(buf, zero, BLOCK) == 0);
    g_assert_cmpint(buf[BLOCK], ==, 0xaa);

    /* An empty file reads as zeroes too. */
    g_assert_cmpint(ftruncate(fd, 0), ==, 0);
    memset(buf, 0xaa, 4 * BLOCK);
    g_assert_cmpint(run_one(fd, 0, buf, 4 * BLOCK, QEMU_AIO_READ), ==, 0);
    g_assert(memcmp(buf, zero, 4 * BLOCK) == 0);

    g_free(zero);
    g_free(buf);
    g_free(data);
    close(fd);
}

/* ---- Resubmission ------------------------------------------------------ */

#define SHORT_LEN (16 * BLOCK)
#define SHORT_STEP (BLOCK + 100)        /* cuts inside vector elements */

static void test_short_read_resubmit(void)
{
    LuringState *s = main_engine();
    int fd = open_buffered();
    uint8_t *data = g_malloc(SHORT_LEN);
    uint8_t *buf = g_malloc(SHORT_LEN);
    Req r[3];
    LuringStats st;
    int i;

    fill_random(data, SHORT_LEN);
    g_assert_cmpint(pwrite(fd, data, SHORT_LEN, 0), ==, SHORT_LEN);
    qaio_int_luring_reset_stats(s);

    /* Three concurrent reads, each in 16 pieces of SHORT_STEP bytes. */
    qaio_int_luring_inject_short(s, SHORT_STEP, 3);
    memset(buf, 0xaa, SHORT_LEN);
    for (i = 0; i < 3; i++) {
        size_t off = i * (SHORT_LEN / 4);

        req_init(&r[i], fd, off, QEMU_AIO_READ);
        req_set_split_buf(&r[i], buf + off, SHORT_LEN / 4 + (i == 2 ?
                          SHORT_LEN / 4 : 0), MAX_IOV, 512);
    }
    run_reqs(r, 3);
    for (i = 0; i < 3; i++) {
        g_assert_cmpint(r[i].ret, ==, 0);
    }
    g_assert(memcmp(buf, data, SHORT_LEN) == 0);

    st = engine_stats(s);
    /* Two 4-block reads (4 pieces each) and one 8-block read (9 pieces). */
    g_assert_cmpuint(st.short_resubmits, ==, 3 + 3 + 7);
    g_assert_cmpuint(st.sqes_submitted, ==, 4 + 4 + 8);

    /* The knob is used up: the next read is whole. */
    qaio_int_luring_reset_stats(s);
    memset(buf, 0xaa, SHORT_LEN);
    g_assert_cmpint(run_one(fd, 0, buf, SHORT_LEN, QEMU_AIO_READ), ==, 0);
    g_assert(memcmp(buf, data, SHORT_LEN) == 0);
    g_assert_cmpuint(engine_stats(s).short_resubmits, ==, 0);

    g_free(buf);
    g_free(data);
    close(fd);
}

static void test_short_write_resubmit(void)
{
    LuringState *s = main_engine();
    int fd = open_buffered();
    uint8_t *data = g_malloc(SHORT_LEN);
    uint8_t *check = g_malloc(SHORT_LEN);
    Req r;

    fill_random(data, SHORT_LEN);
    qaio_int_luring_reset_stats(s);
    qaio_int_luring_inject_short(s, SHORT_STEP, 1);

    req_init(&r, fd, 0, QEMU_AIO_WRITE);
    req_set_split_buf(&r, data, SHORT_LEN, MAX_IOV, 1);
    run_reqs(&r, 1);
    g_assert_cmpint(r.ret, ==, 0);
    pread_exact(fd, check, SHORT_LEN, 0);
    g_assert(memcmp(check, data, SHORT_LEN) == 0);
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
    fd = open_buffered();
    data = g_malloc(4 * BLOCK);
    check = g_malloc(4 * BLOCK);
    fill_random(data, 4 * BLOCK);
    signal(SIGXFSZ, SIG_IGN);
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &rl), ==, 0);
    qaio_int_luring_reset_stats(s);

    g_assert_cmpint(run_one(fd, 2 * BLOCK, data, 2 * BLOCK, QEMU_AIO_WRITE),
                    ==, -EFBIG);
    g_assert_cmpuint(engine_stats(s).short_resubmits, ==, 1);
    pread_exact(fd, check, BLOCK, 2 * BLOCK);
    g_assert(memcmp(check, data, BLOCK) == 0);

    g_free(check);
    g_free(data);
    close(fd);
}

static void test_eagain_retry(void)
{
    LuringState *s = main_engine();
    int fd = open_buffered();
    uint8_t *data = g_malloc(8 * BLOCK);
    uint8_t *buf = g_malloc(8 * BLOCK);
    Req r[8];
    int i;

    fill_random(data, 8 * BLOCK);
    g_assert_cmpint(pwrite(fd, data, 8 * BLOCK, 0), ==, 8 * BLOCK);
    qaio_int_luring_reset_stats(s);

    /* Eight reads, five -EAGAIN completions: all eight still succeed. */
    qaio_int_luring_inject_eagain(s, 5);
    memset(buf, 0xaa, 8 * BLOCK);
    for (i = 0; i < 8; i++) {
        req_init(&r[i], fd, i * BLOCK, QEMU_AIO_READ);
        req_set_buf(&r[i], buf + i * BLOCK, BLOCK);
    }
    run_reqs(r, 8);
    for (i = 0; i < 8; i++) {
        g_assert_cmpint(r[i].ret, ==, 0);
    }
    g_assert(memcmp(buf, data, 8 * BLOCK) == 0);
    g_assert_cmpuint(engine_stats(s).retry_resubmits, ==, 5);
    g_assert_cmpuint(engine_stats(s).sqes_submitted, ==, 8 + 5);

    g_free(buf);
    g_free(data);
    close(fd);
}

/* ---- Many requests, batching ---------------------------------------- */

#define MANY 1000

static void test_many_coroutines(void)
{
    LuringState *s = main_engine();
    int fd = open_buffered();
    size_t len = (size_t)MANY * BLOCK;
    uint8_t *data = g_malloc(len);
    uint8_t *buf = g_malloc(len);
    Req *reqs = g_new(Req, MANY);
    LuringStats st;
    int pass;
    int i;

    fill_random(data, len);
    for (pass = 0; pass < 2; pass++) {
        int type = pass == 0 ? QEMU_AIO_WRITE : QEMU_AIO_READ;
        int done = 0;

        qaio_int_luring_reset_stats(s);
        memset(buf, 0xaa, len);
        for (i = 0; i < MANY; i++) {
            /* Block i goes to position (i * 7) mod MANY: scattered. */
            size_t pos = (size_t)((i * 7) % MANY) * BLOCK;

            req_init(&reqs[i], fd, pos, type);
            req_set_buf(&reqs[i], (pass == 0 ? data : buf) + pos, BLOCK);
            reqs[i].done_count = &done;
            qemu_coroutine_enter(qemu_coroutine_create(req_co, &reqs[i]));
        }

        /*
         * No completion has been reaped yet: full batches went out until
         * the cap, the rest wait in the software queue.
         */
        st = engine_stats(s);
        g_assert_cmpuint(st.in_flight_limit, ==, 2 * LURING_RING_ENTRIES);
        g_assert_cmpuint(st.max_in_flight, ==, st.in_flight_limit);
        g_assert_cmpuint(st.sqes_submitted, ==, st.in_flight_limit);
        g_assert_cmpuint(st.largest_batch, ==, LURING_RING_ENTRIES);
        g_assert_cmpint(done, ==, 0);

        wait_for(&done, MANY);
        for (i = 0; i < MANY; i++) {
            g_assert_cmpint(reqs[i].ret, ==, 0);
        }
        st = engine_stats(s);
        g_assert_cmpuint(st.sqes_submitted, ==, MANY);
        g_assert_cmpuint(st.max_in_flight, ==, st.in_flight_limit);
        g_assert_cmpuint(st.queue_stalls, >, 0);
        /* The first two calls took 128 each: batching happened. */
        g_assert_cmpuint(st.submit_calls, <=, MANY - 2 * 127);
        g_assert_cmpuint(st.short_resubmits + st.retry_resubmits, ==, 0);

        if (pass == 0) {
            pread_exact(fd, buf, len, 0);
        }
        g_assert(memcmp(buf, data, len) == 0);
    }

    g_free(reqs);
    g_free(buf);
    g_free(data);
    close(fd);
}

/*
 * @n coroutines each queue a read before the loop runs: with
 * aio_max_batch @max_batch they must go out in exactly @calls submits.
 */
static void check_batching(int64_t max_batch, int n, unsigned calls)
{
    AioContext *ctx = qemu_get_aio_context();
    LuringState *s = main_engine();
    int fd = open_buffered();
    uint8_t *buf = g_malloc0((size_t)n * BLOCK);
    Req *reqs = g_new(Req, n);
    LuringStats st;
    int done = 0;
    int i;

    g_assert_cmpint(ftruncate(fd, (off_t)n * BLOCK), ==, 0);
    aio_context_set_aio_params(ctx, max_batch);
    qaio_int_luring_reset_stats(s);

    for (i = 0; i < n; i++) {
        req_init(&reqs[i], fd, (uint64_t)i * BLOCK, QEMU_AIO_READ);
        req_set_buf(&reqs[i], buf + (size_t)i * BLOCK, BLOCK);
        reqs[i].done_count = &done;
        qemu_coroutine_enter(qemu_coroutine_create(req_co, &reqs[i]));
    }
    /* Full batches went out already; a partial one waits for the BH. */
    st = engine_stats(s);
    g_assert_cmpuint(st.submit_calls, ==, max_batch ? n / max_batch : 0);

    wait_for(&done, n);
    st = engine_stats(s);
    g_assert_cmpuint(st.submit_calls, ==, calls);
    g_assert_cmpuint(st.sqes_submitted, ==, n);
    g_assert_cmpuint(st.largest_batch, ==, max_batch ? MIN(max_batch, n) : n);
    for (i = 0; i < n; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
    }

    aio_context_set_aio_params(ctx, 0);
    g_free(reqs);
    g_free(buf);
    close(fd);
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

/* Woken coroutines submit again right away: completion re-entrancy. */
static void test_chained_requests(void)
{
    LuringState *s = main_engine();
    int fd = open_buffered();
    enum { NCO = 64, REPEAT = 50 };
    uint8_t *data = g_malloc(NCO * BLOCK);
    uint8_t *buf = g_malloc(NCO * BLOCK);
    Req reqs[NCO];
    int i;

    fill_random(data, NCO * BLOCK);
    g_assert_cmpint(pwrite(fd, data, NCO * BLOCK, 0), ==, NCO * BLOCK);
    qaio_int_luring_reset_stats(s);
    memset(buf, 0xaa, NCO * BLOCK);
    for (i = 0; i < NCO; i++) {
        req_init(&reqs[i], fd, (uint64_t)i * BLOCK, QEMU_AIO_READ);
        req_set_buf(&reqs[i], buf + i * BLOCK, BLOCK);
        reqs[i].repeat = REPEAT - 1;
    }
    run_reqs(reqs, NCO);
    for (i = 0; i < NCO; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
        g_assert_cmpint(reqs[i].repeat, ==, -1);
    }
    g_assert(memcmp(buf, data, NCO * BLOCK) == 0);
    g_assert_cmpuint(engine_stats(s).sqes_submitted, ==, NCO * REPEAT);

    g_free(buf);
    g_free(data);
    close(fd);
}

/* ---- Two IOThreads ---------------------------------------------------- */

#define IOT_REQS 200

typedef struct IOThreadJob {
    IOThread *iothread;
    AioContext *ctx;
    LuringState *engine;
    int fd;
    uint8_t *data;
    uint8_t *back;
    Req reqs[IOT_REQS];
    int next;                       /* the IOThread's only */
    int done;                       /* the IOThread's only */
    QemuSemaphore finished;
} IOThreadJob;

/* Write one block, then read it back into the job's second buffer. */
static void coroutine_fn iothread_write_read_co(void *opaque)
{
    IOThreadJob *job = opaque;
    int i = job->next++;            /* this coroutine's block */
    Req *r = &job->reqs[i];
    QEMUIOVector wq;

    qemu_iovec_init_buf(&wq, job->data + r->offset, BLOCK);
    r->ret = luring_co_submit(NULL, r->fd, r->offset, &wq, QEMU_AIO_WRITE);
    g_assert(qemu_get_current_aio_context() == job->ctx);
    if (r->ret == 0) {
        r->ret = luring_co_submit(NULL, r->fd, r->offset, &r->qiov,
                                  QEMU_AIO_READ);
        g_assert(qemu_get_current_aio_context() == job->ctx);
    }
    r->done = true;
    if (++job->done == IOT_REQS) {
        qemu_sem_post(&job->finished);
    }
}

static void coroutine_fn iothread_job_co(void *opaque)
{
    IOThreadJob *job = opaque;
    int i;

    /* The engine of this context, set up from its own thread. */
    g_assert(qemu_get_current_aio_context() == job->ctx);
    job->engine = aio_setup_linux_io_uring(job->ctx, &error_abort);

    for (i = 0; i < IOT_REQS; i++) {
        Req *r = &job->reqs[i];
        size_t pos = (size_t)i * BLOCK;

        req_init(r, job->fd, pos, QEMU_AIO_READ);
        req_set_buf(r, job->back + pos, BLOCK);
    }
    /* The coroutines run once this one is done; each takes a block. */
    for (i = 0; i < IOT_REQS; i++) {
        aio_co_enter(job->ctx,
                     qemu_coroutine_create(iothread_write_read_co, job));
    }
}

static void test_two_iothreads(void)
{
    IOThreadJob *jobs = g_new0(IOThreadJob, 2);
    size_t len = (size_t)IOT_REQS * BLOCK;
    int i, k;

    for (k = 0; k < 2; k++) {
        IOThreadJob *job = &jobs[k];

        job->iothread = iothread_create(k ? "uring-b" : "uring-a",
                                        &error_abort);
        job->ctx = iothread_get_aio_context(job->iothread);
        job->fd = open_buffered();
        job->data = g_malloc(len);
        job->back = g_malloc(len);
        fill_random(job->data, len);
        memset(job->back, 0xaa, len);
        qemu_sem_init(&job->finished, 0);
    }
    /* Both at once. */
    for (k = 0; k < 2; k++) {
        aio_co_enter(jobs[k].ctx,
                     qemu_coroutine_create(iothread_job_co, &jobs[k]));
    }
    for (k = 0; k < 2; k++) {
        qemu_sem_wait(&jobs[k].finished);
    }
    /* Stopped, the IOThreads no longer touch their engines. */
    for (k = 0; k < 2; k++) {
        iothread_stop(jobs[k].iothread);
    }

    g_assert_nonnull(jobs[0].engine);
    g_assert_nonnull(jobs[1].engine);
    g_assert(jobs[0].engine != jobs[1].engine);

    for (k = 0; k < 2; k++) {
        IOThreadJob *job = &jobs[k];
        uint8_t *check = g_malloc(len);

        g_assert(aio_get_linux_io_uring(job->ctx) == job->engine);
        g_assert_cmpuint(engine_stats(job->engine).sqes_submitted, ==,
                         2 * IOT_REQS);
        for (i = 0; i < IOT_REQS; i++) {
            g_assert_true(job->reqs[i].done);
            g_assert_cmpint(job->reqs[i].ret, ==, 0);
        }
        g_assert(memcmp(job->back, job->data, len) == 0);
        pread_exact(job->fd, check, len, 0);
        g_assert(memcmp(check, job->data, len) == 0);
        g_free(check);

        /* Destroying the context frees its engine (nothing in flight). */
        iothread_destroy(job->iothread);
        qemu_sem_destroy(&job->finished);
        close(job->fd);
        g_free(job->data);
        g_free(job->back);
    }
    g_free(jobs);
}

/*
 * Busy polling: an IOThread polls by default (32 us window), and the
 * engine's io_poll reads the CQ ring, so once the window has opened a
 * completion is reaped without the eventfd.  Sequential reads, up to a cap,
 * until that has happened.
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
             engine_stats(job->engine).poll_reaped == 0);
    qemu_sem_post(&job->finished);
}

static void test_poll_reaps_without_eventfd(void)
{
    IOThread *iothread = iothread_create("uring-poll", &error_abort);
    PollJob job = {
        .ctx = iothread_get_aio_context(iothread),
        .fd = open_buffered(),
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
                   "(eventfd: %" PRIu64 ")", job.reads, st.eventfd_reaped);
    g_assert_cmpuint(st.poll_reaped, >, 0);
    g_assert_cmpuint(st.poll_reaped + st.eventfd_reaped + st.bh_reaped, ==,
                     job.reads);

    iothread_destroy(iothread);
    qemu_sem_destroy(&job.finished);
    close(job.fd);
}

/* ---- Errors ------------------------------------------------------------ */

static void test_error_bad_fd(void)
{
    int fd = open_buffered();
    int rofd;
    char path[64];
    uint8_t buf[BLOCK] = { 0 };

    main_engine();
    g_assert_cmpint(run_one(-1, 0, buf, BLOCK, QEMU_AIO_READ), ==, -EBADF);
    g_assert_cmpint(run_one(-1, 0, buf, BLOCK, QEMU_AIO_WRITE), ==, -EBADF);
    g_assert_cmpint(run_one(-1, 0, NULL, 0, QEMU_AIO_FLUSH), ==, -EBADF);

    /* A closed fd. */
    close(fd);
    g_assert_cmpint(run_one(fd, 0, buf, BLOCK, QEMU_AIO_READ), ==, -EBADF);

    /* Writing through a read-only fd. */
    fd = open_buffered();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    rofd = open(path, O_RDONLY);
    g_assert_cmpint(rofd, >=, 0);
    g_assert_cmpint(run_one(rofd, 0, buf, BLOCK, QEMU_AIO_WRITE), ==,
                    -EBADF);
    close(rofd);
    close(fd);
}

static void test_error_direct_unaligned(void)
{
    int fd = open_direct();
    uint8_t *buf;
    int type;

    if (fd < 0) {
        return;
    }
    main_engine();
    buf = aligned_alloc_or_die(4 * BLOCK);
    fill_random(buf, 4 * BLOCK);
    g_assert_cmpint(run_one(fd, 0, buf, 2 * BLOCK, QEMU_AIO_WRITE), ==, 0);

    for (type = QEMU_AIO_READ; type <= QEMU_AIO_WRITE; type <<= 1) {
        /* Buffer, offset and length, each off by one byte. */
        g_assert_cmpint(run_one(fd, 0, buf + 1, BLOCK, type), ==, -EINVAL);
        g_assert_cmpint(run_one(fd, 1, buf, BLOCK, type), ==, -EINVAL);
        g_assert_cmpint(run_one(fd, 0, buf, BLOCK + 1, type), ==, -EINVAL);
        /* Aligned still works. */
        g_assert_cmpint(run_one(fd, 0, buf, BLOCK, type), ==, 0);
    }
    free(buf);
    close(fd);
}

static void test_unsupported_type(void)
{
    uint8_t buf[16];

    main_engine();
    g_assert_cmpint(run_one(0, 0, buf, sizeof(buf), QEMU_AIO_IOCTL), ==,
                    -ENOTSUP);
    g_assert_cmpint(run_one(0, 0, buf, sizeof(buf), QEMU_AIO_TRUNCATE), ==,
                    -ENOTSUP);
}

/* ---- Discard and write-zeroes (fallocate) ------------------------------- */

static void test_discard_write_zeroes(void)
{
    int fd = open_buffered();
    size_t len = 16 * BLOCK;
    uint8_t *data = g_malloc(len);
    uint8_t *check = g_malloc(len);
    uint8_t *zero = g_malloc0(len);
    struct stat st;
    int ret;

    main_engine();
    fill_random(data, len);
    g_assert_cmpint(pwrite(fd, data, len, 0), ==, len);

    /* The range is the vector's size; its buffer is not used. */
    ret = run_one(fd, BLOCK, NULL, 2 * BLOCK, QEMU_AIO_WRITE_ZEROES);
    if (ret == -ENOTSUP) {
        g_test_skip("the file system cannot zero ranges");
        goto out;
    }
    g_assert_cmpint(ret, ==, 0);
    memset(data + BLOCK, 0, 2 * BLOCK);

    ret = run_one(fd, 8 * BLOCK, NULL, 4 * BLOCK, QEMU_AIO_DISCARD);
    if (ret == -ENOTSUP) {
        g_test_skip("the file system cannot punch holes");
        goto out;
    }
    g_assert_cmpint(ret, ==, 0);
    memset(data + 8 * BLOCK, 0, 4 * BLOCK);

    pread_exact(fd, check, len, 0);
    g_assert(memcmp(check, data, len) == 0);

    /* Write-zeroes past the end grows the file; discard does not. */
    g_assert_cmpint(run_one(fd, len, NULL, BLOCK, QEMU_AIO_WRITE_ZEROES), ==,
                    0);
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, len + BLOCK);
    g_assert_cmpint(run_one(fd, len + BLOCK, NULL, BLOCK, QEMU_AIO_DISCARD),
                    ==, 0);
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, len + BLOCK);
    pread_exact(fd, check, BLOCK, len);
    g_assert(memcmp(check, zero, BLOCK) == 0);

out:
    g_free(zero);
    g_free(check);
    g_free(data);
    close(fd);
}

/* ---- Detach ---------------------------------------------------------- */

static void test_detach_drains(void)
{
    AioContext *ctx = qemu_get_aio_context();
    LuringState *s = main_engine();
    int fd = open_buffered();
    enum { N = 300 };
    uint8_t *data = g_malloc(N * BLOCK);
    uint8_t *buf = g_malloc(N * BLOCK);
    Req *reqs = g_new(Req, N);
    int done = 0;
    int i;

    fill_random(data, N * BLOCK);
    g_assert_cmpint(pwrite(fd, data, N * BLOCK, 0), ==, N * BLOCK);
    memset(buf, 0xaa, N * BLOCK);

    /* More than the cap: some in flight, some still queued. */
    for (i = 0; i < N; i++) {
        req_init(&reqs[i], fd, (uint64_t)i * BLOCK, QEMU_AIO_READ);
        req_set_buf(&reqs[i], buf + i * BLOCK, BLOCK);
        reqs[i].done_count = &done;
        qemu_coroutine_enter(qemu_coroutine_create(req_co, &reqs[i]));
    }
    g_assert_cmpint(done, ==, 0);

    luring_detach_aio_context(s, ctx);
    g_assert_cmpint(done, ==, N);
    for (i = 0; i < N; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
    }
    g_assert(memcmp(buf, data, N * BLOCK) == 0);

    /* Attached again, it works as before. */
    luring_attach_aio_context(s, ctx);
    memset(buf, 0xaa, BLOCK);
    g_assert_cmpint(run_one(fd, 0, buf, BLOCK, QEMU_AIO_READ), ==, 0);
    g_assert(memcmp(buf, data, BLOCK) == 0);

    g_free(reqs);
    g_free(buf);
    g_free(data);
    close(fd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);

    g_test_add_func("/io-uring/setup/same-state", test_setup_same_state);
    g_test_add_func("/io-uring/setup/disabled-fails-with-error",
                    test_setup_disabled);
    g_test_add_func("/io-uring/submit/without-engine-aborts",
                    test_submit_without_engine);
    g_test_add_func("/io-uring/rw/buffered-single-iov",
                    test_rw_buffered_single);
    g_test_add_func("/io-uring/rw/buffered-multi-iov",
                    test_rw_buffered_multi);
    g_test_add_func("/io-uring/rw/direct-single-iov", test_rw_direct_single);
    g_test_add_func("/io-uring/rw/direct-multi-iov", test_rw_direct_multi);
    g_test_add_func("/io-uring/flush", test_flush);
    g_test_add_func("/io-uring/read/eof-zero-fill", test_read_eof);
    g_test_add_func("/io-uring/resubmit/short-read", test_short_read_resubmit);
    g_test_add_func("/io-uring/resubmit/short-write",
                    test_short_write_resubmit);
    g_test_add_func("/io-uring/resubmit/short-write-rlimit",
                    test_short_write_real);
    g_test_add_func("/io-uring/resubmit/eagain", test_eagain_retry);
    g_test_add_func("/io-uring/many/1000-coroutines", test_many_coroutines);
    g_test_add_func("/io-uring/batch/default-one-submit", test_batch_default);
    g_test_add_func("/io-uring/batch/aio-max-batch", test_batch_max_batch);
    g_test_add_func("/io-uring/chained-requests", test_chained_requests);
    g_test_add_func("/io-uring/iothreads/two-engines", test_two_iothreads);
    g_test_add_func("/io-uring/poll/reaps-without-eventfd",
                    test_poll_reaps_without_eventfd);
    g_test_add_func("/io-uring/error/bad-fd", test_error_bad_fd);
    g_test_add_func("/io-uring/error/direct-unaligned",
                    test_error_direct_unaligned);
    g_test_add_func("/io-uring/error/unsupported-type", test_unsupported_type);
    g_test_add_func("/io-uring/fallocate/discard-write-zeroes",
                    test_discard_write_zeroes);
    g_test_add_func("/io-uring/detach/drains-outstanding",
                    test_detach_drains);

    return g_test_run();
}
