/*
 * file-copy.c: copy a file with N requests in flight, on io_uring when the
 * kernel has it.
 *
 *   file-copy [--depth N] [--bs SIZE] [--engine NAME] SRC DST
 *   file-copy --self-test
 *
 * A plain copy loop (read a block, write it, repeat) keeps one request in
 * flight, and the disk idles while the program waits.  Here N coroutines
 * each run that same simple loop, taking the next block from a shared
 * cursor: a coroutine that waits for its read lets the others submit
 * theirs, so up to N requests are with the kernel at once (the "queue
 * depth").  All N run in the main thread; none of this code needs a lock.
 *
 * Requests go to one of three engines, tried in this order:
 *   io_uring    aio_setup_linux_io_uring(), then luring_co_submit()
 *   linux-aio   aio_setup_linux_aio(), then laio_co_submit()
 *   threads     thread_pool_submit_co() running pread()/pwrite() on the
 *               context's worker threads; always there
 * Each *_co_submit() call queues the request, yields the coroutine until the
 * kernel completes it, and returns 0 or -errno.  The engine's completions
 * arrive through the AioContext, so the program runs it with aio_poll()
 * until every coroutine has finished.
 *
 * --self-test writes a pseudo-random file whose size is not a multiple of
 * the block size, copies it with the engine a plain run would choose and
 * with every fallback after it, checks each copy byte for byte, and exits 0
 * only if all are identical.
 *
 * Threading: everything but the thread pool's workers runs in the main
 * thread.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/raw-aio.h"
#include "block/thread-pool.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/error-report.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"

typedef enum Engine {
    ENGINE_IO_URING,
    ENGINE_LINUX_AIO,
    ENGINE_THREADS,
    ENGINE__MAX,
} Engine;

static const char *const engine_names[ENGINE__MAX] = {
    [ENGINE_IO_URING] = "io_uring",
    [ENGINE_LINUX_AIO] = "linux-aio",
    [ENGINE_THREADS] = "threads",
};

typedef struct Copy {
    Engine engine;
    int src_fd;
    int dst_fd;
    uint64_t size;
    size_t bs;

    uint64_t next_offset;   /* the next block to hand out */
    int running;            /* coroutines still copying */
    int ret;                /* the first error, as -errno */
    uint64_t err_offset;
    bool err_writing;
} Copy;

/* ---- The engines -------------------------------------------------------- */

/* Set up @engine on @ctx; false, with @errp set, if it is not available. */
static bool engine_setup(Engine engine, AioContext *ctx, Error **errp)
{
    switch (engine) {
    case ENGINE_IO_URING:
#ifdef CONFIG_LINUX_IO_URING
        return aio_setup_linux_io_uring(ctx, errp) != NULL;
#else
        error_setg(errp, "qaio was built without io_uring");
        return false;
#endif
    case ENGINE_LINUX_AIO:
#ifdef CONFIG_LINUX_AIO
        return aio_setup_linux_aio(ctx, errp) != NULL;
#else
        error_setg(errp, "qaio was built without Linux AIO");
        return false;
#endif
    default:
        return true;        /* the thread pool is created on first use */
    }
}

/* A request for the thread pool: what a worker thread needs. */
typedef struct PoolRequest {
    int fd;
    uint64_t offset;
    char *buf;
    size_t len;
    bool write;
} PoolRequest;

/* Runs on a worker thread, where blocking is fine. */
static int pool_rw(void *opaque)
{
    PoolRequest *req = opaque;
    size_t done = 0;

    while (done < req->len) {
        ssize_t n;

        if (req->write) {
            n = pwrite(req->fd, req->buf + done, req->len - done,
                       req->offset + done);
        } else {
            n = pread(req->fd, req->buf + done, req->len - done,
                      req->offset + done);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            return req->write ? -ENOSPC : -EIO;  /* the file shrank */
        }
        done += n;
    }
    return 0;
}

/* Read or write all of @qiov at @offset; yields until done. */
static int coroutine_fn copy_rw(Copy *c, int fd, uint64_t offset,
                                QEMUIOVector *qiov, int type)
{
    PoolRequest req;

    switch (c->engine) {
#ifdef CONFIG_LINUX_IO_URING
    case ENGINE_IO_URING:
        return luring_co_submit(NULL, fd, offset, qiov, type);
#endif
#ifdef CONFIG_LINUX_AIO
    case ENGINE_LINUX_AIO:
        return laio_co_submit(fd, offset, qiov, type, 0);
#endif
    default:
        req = (PoolRequest) {
            .fd = fd,
            .offset = offset,
            .buf = qemu_iovec_buf(qiov),
            .len = qiov->size,
            .write = type == QEMU_AIO_WRITE,
        };
        return thread_pool_submit_co(pool_rw, &req);
    }
}

/* ---- The copy ----------------------------------------------------------- */

/* Each of the N coroutines runs this until no block is left. */
static void coroutine_fn copy_co(void *opaque)
{
    Copy *c = opaque;
    void *buf = g_malloc(c->bs);

    while (c->ret == 0 && c->next_offset < c->size) {
        /* Nothing runs between these lines and the submission: no race. */
        uint64_t offset = c->next_offset;
        size_t len = MIN((uint64_t)c->bs, c->size - offset);
        QEMUIOVector qiov;
        bool writing = false;
        int ret;

        c->next_offset += len;
        qemu_iovec_init_buf(&qiov, buf, len);

        ret = copy_rw(c, c->src_fd, offset, &qiov, QEMU_AIO_READ);
        if (ret == 0) {
            writing = true;
            ret = copy_rw(c, c->dst_fd, offset, &qiov, QEMU_AIO_WRITE);
        }
        if (ret < 0 && c->ret == 0) {
            c->ret = ret;       /* the others stop at their next block */
            c->err_offset = offset;
            c->err_writing = writing;
        }
    }
    g_free(buf);
    c->running--;
}

/* Copy @src to @dst with @engine; 0 or -errno (and a message). */
static int copy_file(const char *src, const char *dst, Engine engine,
                     int depth, size_t bs)
{
    AioContext *ctx = qemu_get_aio_context();
    Copy c = {
        .engine = engine,
        .bs = bs,
        .running = depth,
        .dst_fd = -1,
    };
    struct stat st;
    int64_t start;
    double secs;
    int i;

    c.src_fd = open(src, O_RDONLY | O_CLOEXEC);
    if (c.src_fd < 0 || fstat(c.src_fd, &st) < 0) {
        c.ret = -errno;
        error_report("cannot open %s: %s", src, strerror(errno));
        goto out;
    }
    c.size = st.st_size;
    /*
     * Size the copy up front: the blocks land in whatever order the
     * requests complete, and the last, partial block sets no size.
     */
    c.dst_fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (c.dst_fd < 0 || ftruncate(c.dst_fd, c.size) < 0) {
        c.ret = -errno;
        error_report("cannot create %s: %s", dst, strerror(errno));
        goto out;
    }

    start = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    for (i = 0; i < depth; i++) {
        /* Runs until its first request is submitted, then comes back. */
        qemu_coroutine_enter(qemu_coroutine_create(copy_co, &c));
    }
    while (c.running > 0) {
        /* Completions arrive here and resume the coroutines. */
        aio_poll(ctx, true);
    }
    secs = (qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - start) / 1e9;

    if (c.ret < 0) {
        error_report("%s %s at offset %" PRIu64 ": %s",
                     c.err_writing ? "writing" : "reading",
                     c.err_writing ? dst : src, c.err_offset,
                     strerror(-c.ret));
    } else {
        printf("%s: copied %" PRIu64 " bytes in %.3f s (%.1f MiB/s), "
               "depth %d, %zu-byte blocks\n", engine_names[engine], c.size,
               secs, secs > 0 ? c.size / secs / (1024 * 1024) : 0.0, depth,
               bs);
    }
out:
    if (c.src_fd >= 0) {
        close(c.src_fd);
    }
    if (c.dst_fd >= 0) {
        close(c.dst_fd);
    }
    return c.ret;
}

/* The first engine that sets up, from @first on; prints what it skipped. */
static Engine choose_engine(Engine first, bool forced)
{
    Engine e;

    for (e = first; e < ENGINE__MAX; e++) {
        Error *err = NULL;

        if (engine_setup(e, qemu_get_aio_context(), &err)) {
            break;
        }
        if (forced) {
            error_reportf_err(err, "engine %s: ", engine_names[e]);
            exit(1);
        }
        printf("%s unavailable (%s), falling back\n", engine_names[e],
               error_get_pretty(err));
        error_free(err);
    }
    return e;
}

/* ---- Self-test ---------------------------------------------------------- */

#define TEST_SIZE (4 * 1024 * 1024 + 12345)    /* not a multiple of bs */
#define TEST_BS (64 * 1024)
#define TEST_DEPTH 16

static int self_test(void)
{
    g_autofree char *dir = g_dir_make_tmp("file-copy-XXXXXX", NULL);
    g_autofree char *src = NULL;
    g_autofree char *data = g_malloc(TEST_SIZE);
    g_autoptr(GRand) rand = g_rand_new_with_seed(2024);
    int copies = 0;
    bool ok = true;
    Engine e;
    size_t i;

    if (!dir) {
        error_report("cannot create a temporary directory");
        return 1;
    }
    src = g_build_filename(dir, "src", NULL);
    for (i = 0; i < TEST_SIZE; i++) {
        data[i] = g_rand_int(rand);
    }
    if (!g_file_set_contents(src, data, TEST_SIZE, NULL)) {
        error_report("cannot write %s", src);
        return 1;
    }

    /*
     * The engine a plain run would pick, as a plain run picks it; then
     * every engine after it too, so that each one this machine offers is
     * checked.
     */
    e = choose_engine(ENGINE_IO_URING, false);
    printf("engine: %s\n", engine_names[e]);
    for (; e < ENGINE__MAX; e++) {
        g_autofree char *dst = g_build_filename(dir, engine_names[e], NULL);
        g_autofree char *copy = NULL;
        gsize len = 0;
        Error *err = NULL;

        if (!engine_setup(e, qemu_get_aio_context(), &err)) {
            printf("%s: skipped (%s)\n", engine_names[e],
                   error_get_pretty(err));
            error_free(err);
            continue;
        }
        if (copy_file(src, dst, e, TEST_DEPTH, TEST_BS) < 0 ||
            !g_file_get_contents(dst, &copy, &len, NULL) ||
            len != TEST_SIZE || memcmp(copy, data, TEST_SIZE) != 0) {
            error_report("%s: the copy differs from the original",
                         engine_names[e]);
            ok = false;
        }
        unlink(dst);
        copies++;
    }
    unlink(src);
    rmdir(dir);

    if (!ok || copies == 0) {
        return 1;
    }
    printf("self-test passed: %d engine(s) copied %d bytes intact\n",
           copies, TEST_SIZE);
    return 0;
}

/* ---- main --------------------------------------------------------------- */

/* "4096", "64K", "1M": a block size in bytes, or 0 if invalid. */
static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);

    switch (*end) {
    case 'k':
    case 'K':
        v *= 1024;
        end++;
        break;
    case 'm':
    case 'M':
        v *= 1024 * 1024;
        end++;
        break;
    }
    return *end || end == s || v > 64 * 1024 * 1024 ? 0 : v;
}

int main(int argc, char **argv)
{
    int depth = 16;
    g_autofree char *bs_arg = NULL;
    g_autofree char *engine_arg = NULL;
    gboolean self_test_mode = false;
    GOptionEntry entries[] = {
        { "depth", 'd', 0, G_OPTION_ARG_INT, &depth,
          "requests in flight (default 16)", "N" },
        { "bs", 'b', 0, G_OPTION_ARG_STRING, &bs_arg,
          "block size, e.g. 4096, 64K, 1M (default 64K)", "SIZE" },
        { "engine", 'e', 0, G_OPTION_ARG_STRING, &engine_arg,
          "io_uring, linux-aio or threads (default: the first that works)",
          "NAME" },
        { "self-test", 0, 0, G_OPTION_ARG_NONE, &self_test_mode,
          "copy a generated file with every engine, compare, exit", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) opts = g_option_context_new(
        "SRC DST - copy a file with a queue depth");
    g_autoptr(GError) gerr = NULL;
    Engine first = ENGINE_IO_URING;
    size_t bs = 64 * 1024;

    g_option_context_add_main_entries(opts, entries, NULL);
    if (!g_option_context_parse(opts, &argc, &argv, &gerr)) {
        error_report("%s", gerr->message);
        return 2;
    }
    if (bs_arg && !(bs = parse_size(bs_arg))) {
        error_report("--bs: '%s' is not a size from 1 byte to 64M", bs_arg);
        return 2;
    }
    if (engine_arg) {
        for (first = 0; first < ENGINE__MAX; first++) {
            if (!strcmp(engine_arg, engine_names[first])) {
                break;
            }
        }
        if (first == ENGINE__MAX) {
            error_report("--engine: unknown engine '%s'", engine_arg);
            return 2;
        }
    }
    if (depth < 1 || depth > 4096) {
        error_report("--depth: %d is not from 1 to 4096", depth);
        return 2;
    }
    if (self_test_mode ? argc != 1 : argc != 3) {
        error_report("expected SRC and DST (see --help)");
        return 2;
    }

    /* The main loop's context is the one the engines submit to. */
    qemu_init_main_loop(&error_fatal);
    if (self_test_mode) {
        return self_test();
    }
    first = choose_engine(first, engine_arg != NULL);
    printf("engine: %s\n", engine_names[first]);
    return copy_file(argv[1], argv[2], first, depth, bs) < 0 ? 1 : 0;
}
