/*
 * tools/qaio-bench-run.c: one qaio-bench run of one engine, on the public
 * API only.
 *
 * A worker is an AioContext with its share of the --depth requests: the
 * main thread's own context when --iothreads is 0, else one IOThread each.
 * Each request slot is a coroutine that loops: pick an offset, submit
 * through the engine (which yields until the completion wakes it), record
 * the latency, go again, until the worker's share of --count is issued or
 * --time has passed.  The main thread only starts and collects: it sends
 * each worker a one-shot BH (set up the engine, then start the coroutines)
 * and runs its own context until every worker has sent a BH back.
 *
 * The engines (all submit in the worker's context, the current one of the
 * coroutine's thread):
 *   threads    thread_pool_submit_co() of a function doing preadv/pwritev
 *   linux-aio  laio_co_submit() after aio_setup_linux_aio()
 *   io_uring   luring_co_submit() after aio_setup_linux_io_uring()
 *   null       no device: the coroutine schedules a one-shot BH that
 *              aio_co_wake()s it, and yields.  Each request thus costs what
 *              every engine's completion path costs around the device:
 *              coroutine switch out, a BH scheduled (allocated, queued,
 *              aio_notify), one dispatch by aio_poll(), and aio_co_wake()
 *              switching back in, plus the two clock reads and the
 *              histogram update every engine pays.  It is the ceiling the
 *              loop allows, comparable to qemu-img bench on null-aio.
 *
 * Threading: a Worker's run fields belong to its context's home thread
 * from the start BH until the worker's last coroutine sends the done BH;
 * the main thread sets them before and reads them after (the BH hand-offs
 * order the accesses).  Only 'completed' (progress) and the Bench's 'stop',
 * 'written' and 'corrupt_next' are touched concurrently, atomically.
 */
#include "qemu/osdep.h"
#include <sys/resource.h>
#include "block/aio.h"
#include "block/raw-aio.h"
#include "block/thread-pool.h"
#include "qapi/error.h"
#include "qemu/atomic.h"
#include "qemu/coroutine.h"
#include "qemu/iov.h"
#include "qemu/timer.h"
#include "qaio/iothread.h"
#include "qaio-bench.h"

int bench_interrupted;

typedef struct Worker Worker;

/* One request slot: a coroutine and its buffer. */
typedef struct Req {
    Worker *w;
    uint8_t *buf;           /* --bs bytes, 4 KiB aligned for O_DIRECT */
    QEMUIOVector qiov;      /* over buf */
    int fd;
    bool write;
    uint64_t offset;        /* of the request in flight (threads engine) */
} Req;

struct Worker {
    Bench *b;
    IOThread *iothread;     /* NULL: the main thread's context */
    AioContext *ctx;
    int depth;
    Req *reqs;

    /* Home thread of ctx during a run; the main thread between runs. */
    char *setup_error;
    uint64_t quota;         /* --count: requests still to issue */
    uint64_t rng;
    uint64_t seq_next;      /* sequential: the next block */
    int active;             /* coroutines still running */
    uint64_t verified_bytes;
    char *error;            /* the first failure */
    Hist hist;

    uint64_t completed;     /* atomic: read by the progress line */
};

struct Bench {
    const Options *o;
    const BenchFile *f;
    AioContext *main_ctx;
    Worker *workers;
    int nworkers;
    uint64_t nblocks;
    int runs;

    /* Set by the main thread before a run, read by the workers. */
    EngineId engine;
    uint64_t write_seed;
    int64_t deadline_ns;

    int stop;               /* atomic: a worker failed, everyone stops */
    int corrupt_next;       /* atomic: test hook, see qaio-bench.c */
    uint8_t *written;       /* atomic bytes: blocks written (--verify) */

    /* Main thread only. */
    int pending;            /* workers yet to send their BH back */
    bool show_progress;
    QEMUTimer progress;
    int64_t start_ns;
    int64_t last_ns;
    uint64_t last_completed;
};

/* ---- The --verify pattern ------------------------------------------- */

uint64_t bench_mix64(uint64_t x)
{
    /* The splitmix64 finalizer: every input bit moves every output bit. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static inline uint64_t pattern_word(uint64_t word_index, uint64_t seed)
{
    return bench_mix64(seed ^ (word_index * 0x9e3779b97f4a7c15ull));
}

uint8_t pattern_byte(uint64_t off, uint64_t seed)
{
    uint64_t word = pattern_word(off >> 3, seed);
    uint8_t bytes[8];

    memcpy(bytes, &word, 8);
    return bytes[off & 7];
}

void pattern_fill(void *buf, uint64_t off, size_t len, uint64_t seed)
{
    uint8_t *p = buf;
    size_t i = 0;

    while (i < len) {
        uint64_t pos = off + i;
        uint64_t word = pattern_word(pos >> 3, seed);

        if ((pos & 7) == 0 && len - i >= 8) {
            memcpy(p + i, &word, 8);
            i += 8;
        } else {
            p[i] = pattern_byte(pos, seed);
            i++;
        }
    }
}

ssize_t pattern_check(const void *buf, uint64_t off, size_t len,
                      uint64_t seed)
{
    const uint8_t *p = buf;
    size_t i = 0;

    while (i < len) {
        uint64_t pos = off + i;

        if ((pos & 7) == 0 && len - i >= 8) {
            uint64_t word = pattern_word(pos >> 3, seed);

            if (memcmp(p + i, &word, 8) == 0) {
                i += 8;
                continue;
            }
        }
        if (p[i] != pattern_byte(pos, seed)) {
            return i;
        }
        i++;
    }
    return -1;
}

/* ---- Requests ------------------------------------------------------- */

/* The threads engine's blocking part, on a pool worker. */
static int pool_rw(void *opaque)
{
    Req *r = opaque;
    size_t len = r->qiov.size;
    size_t done = 0;

    while (done < len) {
        struct iovec iov = {
            .iov_base = r->buf + done,
            .iov_len = len - done,
        };
        ssize_t n = r->write ? pwritev(r->fd, &iov, 1, r->offset + done)
                             : preadv(r->fd, &iov, 1, r->offset + done);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            if (r->write) {
                return -ENOSPC;
            }
            /* Past the end of the file: zeroes, as the other engines do. */
            memset(r->buf + done, 0, len - done);
            break;
        }
        done += n;
    }
    return 0;
}

static void null_complete_bh(void *opaque)
{
    aio_co_wake(opaque);
}

/* Submit through the run's engine; 0 or a negative errno. */
static int coroutine_fn engine_submit(Worker *w, Req *r, uint64_t offset)
{
    int type = r->write ? QEMU_AIO_WRITE : QEMU_AIO_READ;

    switch (w->b->engine) {
    case ENGINE_THREADS:
        r->offset = offset;
        return thread_pool_submit_co(pool_rw, r);
    case ENGINE_LINUX_AIO:
#ifdef CONFIG_LINUX_AIO
        return laio_co_submit(r->fd, offset, &r->qiov, type, 0);
#else
        break;
#endif
    case ENGINE_IO_URING:
#ifdef CONFIG_LINUX_IO_URING
        return luring_co_submit(NULL, r->fd, offset, &r->qiov, type);
#else
        break;
#endif
    case ENGINE_NULL:
        aio_bh_schedule_oneshot(w->ctx, null_complete_bh,
                                qemu_coroutine_self());
        qemu_coroutine_yield();
        return 0;
    default:
        break;
    }
    (void)type;
    abort();                    /* setup_bh let an unbuilt engine through */
}

static uint64_t next_block(Worker *w)
{
    uint64_t n = w->b->nblocks;

    if (w->b->o->random) {
        /* xorshift64*, then a multiply to map it onto [0, n) */
        w->rng ^= w->rng >> 12;
        w->rng ^= w->rng << 25;
        w->rng ^= w->rng >> 27;
        return (uint64_t)(((unsigned __int128)(w->rng * 2685821657736338717ull)
                           * n) >> 64);
    } else {
        uint64_t block = w->seq_next;

        w->seq_next = block + 1 == n ? 0 : block + 1;
        return block;
    }
}

static void worker_fail(Worker *w, char *msg)
{
    if (!w->error) {
        w->error = msg;
    } else {
        g_free(msg);
    }
    qatomic_set(&w->b->stop, 1);
}

/* The test hook: spoil one request's data (qaio-bench.c, top comment). */
static bool take_corruption(Bench *b)
{
    return unlikely(qatomic_read(&b->corrupt_next)) &&
           qatomic_xchg(&b->corrupt_next, 0);
}

static void worker_reply_bh(void *opaque)
{
    Worker *w = opaque;

    w->b->pending--;
}

static void coroutine_fn request_co(void *opaque)
{
    Req *r = opaque;
    Worker *w = r->w;
    Bench *b = w->b;
    const Options *o = b->o;

    for (;;) {
        uint64_t block, offset;
        int64_t start, end;
        int ret;

        if (qatomic_read(&b->stop) || qatomic_read(&bench_interrupted)) {
            break;
        }
        if (o->count) {
            if (!w->quota) {
                break;
            }
            w->quota--;
        } else if (get_clock() >= b->deadline_ns) {
            break;
        }
        block = next_block(w);
        offset = block * o->bs;
        if (r->write && o->verify) {
            pattern_fill(r->buf, offset, o->bs, b->write_seed);
            if (take_corruption(b)) {
                r->buf[0] ^= 0xff;
            }
        }

        start = get_clock();
        ret = engine_submit(w, r, offset);
        end = get_clock();

        if (ret < 0) {
            worker_fail(w, g_strdup_printf("%s of %" PRIu64 " bytes at "
                                           "offset %" PRIu64 " failed: %s",
                                           r->write ? "write" : "read",
                                           o->bs, offset, strerror(-ret)));
            break;
        }
        if (o->verify && r->write) {
            qatomic_set(&b->written[block], 1);
        } else if (o->verify) {
            ssize_t bad;

            if (take_corruption(b)) {
                r->buf[0] ^= 0xff;
            }
            bad = pattern_check(r->buf, offset, o->bs, b->f->seed);
            if (bad >= 0) {
                worker_fail(w, g_strdup_printf(
                    "verify failed: byte at offset %" PRIu64 " read 0x%02x, "
                    "expected 0x%02x", offset + bad, r->buf[bad],
                    pattern_byte(offset + bad, b->f->seed)));
                break;
            }
            w->verified_bytes += o->bs;
        }
        hist_add(&w->hist, end - start);
        qatomic_set(&w->completed, w->completed + 1);
    }

    if (--w->active == 0) {
        aio_bh_schedule_oneshot(b->main_ctx, worker_reply_bh, w);
    }
}

/* ---- Workers -------------------------------------------------------- */

/* In the worker's thread: create the engine's state of its context. */
static void setup_bh(void *opaque)
{
    Worker *w = opaque;
    Error *err = NULL;

    switch (w->b->engine) {
    case ENGINE_THREADS:
        if (!aio_get_thread_pool(w->ctx)) {
            error_setg(&err, "the thread pool cannot be created");
        }
        break;
    case ENGINE_LINUX_AIO:
#ifdef CONFIG_LINUX_AIO
        aio_setup_linux_aio(w->ctx, &err);
#else
        error_setg(&err, "qaio was built without Linux AIO (libaio)");
#endif
        break;
    case ENGINE_IO_URING:
#ifdef CONFIG_LINUX_IO_URING
        aio_setup_linux_io_uring(w->ctx, &err);
#else
        error_setg(&err, "qaio was built without io_uring (liburing)");
#endif
        break;
    default:
        break;
    }
    if (err) {
        w->setup_error = g_strdup(error_get_pretty(err));
        error_free(err);
    }
    aio_bh_schedule_oneshot(w->b->main_ctx, worker_reply_bh, w);
}

/* In the worker's thread: start its coroutines. */
static void start_bh(void *opaque)
{
    Worker *w = opaque;
    int i;

    /* All counted first: one may finish before the next is created. */
    w->active = w->depth;
    for (i = 0; i < w->depth; i++) {
        aio_co_enter(w->ctx, qemu_coroutine_create(request_co, &w->reqs[i]));
    }
}

/* Main thread: run the main context until every worker has replied. */
static void wait_workers(Bench *b)
{
    while (b->pending > 0) {
        aio_poll(b->main_ctx, true);
    }
}

static void send_to_workers(Bench *b, QEMUBHFunc *fn)
{
    int i;

    b->pending = b->nworkers;
    for (i = 0; i < b->nworkers; i++) {
        aio_bh_schedule_oneshot(b->workers[i].ctx, fn, &b->workers[i]);
    }
}

static uint64_t completed_so_far(Bench *b)
{
    uint64_t n = 0;
    int i;

    for (i = 0; i < b->nworkers; i++) {
        n += qatomic_read(&b->workers[i].completed);
    }
    return n;
}

/* Once a second, on a terminal: "\r<engine>: <where it is>, <IOPS>". */
static void progress_cb(void *opaque)
{
    Bench *b = opaque;
    int64_t now = get_clock();
    uint64_t done = completed_so_far(b);
    double rate = (double)(done - b->last_completed) * 1e9 /
                  (double)MAX(now - b->last_ns, (int64_t)1);

    if (b->o->count) {
        fprintf(stderr, "\r%s: %" PRIu64 "/%" PRIu64 " requests, "
                "%.0f IOPS\033[K", engine_names[b->engine], done,
                b->o->count, rate);
    } else {
        fprintf(stderr, "\r%s: %.0f/%g s, %.0f IOPS\033[K",
                engine_names[b->engine], (double)(now - b->start_ns) / 1e9,
                b->o->time_s, rate);
    }
    b->last_completed = done;
    b->last_ns = now;
    timer_mod(&b->progress, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1000);
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Main thread, after a --verify write run: read back every block written. */
static char *verify_written(Bench *b, uint64_t *verified)
{
    uint64_t bs = b->o->bs;
    uint64_t block;
    void *buf;
    char *msg = NULL;

    if (posix_memalign(&buf, 4096, bs)) {
        return g_strdup("out of memory for the read-back buffer");
    }
    for (block = 0; block < b->nblocks && !msg; block++) {
        uint64_t off = block * bs;
        ssize_t n, bad;

        if (!qatomic_read(&b->written[block])) {
            continue;
        }
        do {
            n = pread(b->f->fd, buf, bs, off);
        } while (n < 0 && errno == EINTR);
        if (n != (ssize_t)bs) {
            msg = g_strdup_printf("reading back offset %" PRIu64 " after "
                                  "the writes failed: %s", off,
                                  n < 0 ? strerror(errno) : "short read");
            break;
        }
        bad = pattern_check(buf, off, bs, b->write_seed);
        if (bad >= 0) {
            msg = g_strdup_printf("verify failed after the writes: byte at "
                                  "offset %" PRIu64 " reads 0x%02x, "
                                  "expected 0x%02x", off + bad,
                                  ((uint8_t *)buf)[bad],
                                  pattern_byte(off + bad, b->write_seed));
        }
        *verified += bs;
    }
    free(buf);
    return msg;
}

void run_result_clear(RunResult *res)
{
    g_free(res->reason);
    g_free(res->hist);
    memset(res, 0, sizeof(*res));
}

/* Sum the counters of the contexts that run requests; subtract @base. */
static void metrics_sum(Bench *b, QaioLoopMetrics *loop,
                        QaioThreadPoolMetrics *pool)
{
    int i;

    memset(loop, 0, sizeof(*loop));
    memset(pool, 0, sizeof(*pool));
    for (i = 0; i < b->nworkers; i++) {
        QaioLoopMetrics l;
        QaioThreadPoolMetrics p;

        qaio_loop_metrics_get(b->workers[i].ctx, &l);
        loop->iterations += l.iterations;
        loop->bh_calls += l.bh_calls;
        loop->fd_dispatches += l.fd_dispatches;
        loop->timers_fired += l.timers_fired;
        loop->blocking_waits += l.blocking_waits;
        loop->blocked_ns += l.blocked_ns;
        loop->poll_ns += l.poll_ns;
        loop->poll_hits += l.poll_hits;
        loop->poll_misses += l.poll_misses;
        if (qaio_thread_pool_metrics_get(b->workers[i].ctx, &p)) {
            pool->submitted += p.submitted;
            pool->completed += p.completed;
            pool->cancelled += p.cancelled;
            pool->wait_ns += p.wait_ns;
            pool->wait_max_ns = MAX(pool->wait_max_ns, p.wait_max_ns);
        }
    }
}

static void metrics_delta(RunResult *res, const QaioLoopMetrics *l0,
                          const QaioThreadPoolMetrics *p0)
{
    QaioLoopMetrics *l = &res->loop;
    QaioThreadPoolMetrics *p = &res->pool;

    l->iterations -= l0->iterations;
    l->bh_calls -= l0->bh_calls;
    l->fd_dispatches -= l0->fd_dispatches;
    l->timers_fired -= l0->timers_fired;
    l->blocking_waits -= l0->blocking_waits;
    l->blocked_ns -= l0->blocked_ns;
    l->poll_ns -= l0->poll_ns;
    l->poll_hits -= l0->poll_hits;
    l->poll_misses -= l0->poll_misses;
    p->submitted -= p0->submitted;
    p->completed -= p0->completed;
    p->cancelled -= p0->cancelled;
    p->wait_ns -= p0->wait_ns;
    /* wait_max_ns stays the all-time maximum: it cannot be subtracted. */
}

void bench_run(Bench *b, EngineId engine, RunResult *res)
{
    QaioLoopMetrics loop0;
    QaioThreadPoolMetrics pool0;
    const Options *o = b->o;
    double cpu0;
    int64_t end;
    int i;

    memset(res, 0, sizeof(*res));
    res->engine = engine;
    b->engine = engine;

    send_to_workers(b, setup_bh);
    wait_workers(b);
    for (i = 0; i < b->nworkers; i++) {
        Worker *w = &b->workers[i];

        if (w->setup_error && res->status == RUN_OK) {
            res->status = RUN_UNAVAILABLE;
            res->reason = w->setup_error;
        } else {
            g_free(w->setup_error);
        }
        w->setup_error = NULL;
    }
    if (res->status != RUN_OK) {
        return;
    }

    b->runs++;
    b->write_seed = bench_mix64(b->f->seed + b->runs);
    qatomic_set(&b->stop, 0);
    if (b->written) {
        memset(b->written, 0, b->nblocks);
    }
    for (i = 0; i < b->nworkers; i++) {
        Worker *w = &b->workers[i];

        w->quota = o->count / b->nworkers +
                   ((uint64_t)i < o->count % b->nworkers);
        w->rng = bench_mix64(b->write_seed + i) | 1;
        w->seq_next = b->nblocks * i / b->nworkers;
        w->verified_bytes = 0;
        w->completed = 0;
        hist_reset(&w->hist);
    }

    metrics_sum(b, &loop0, &pool0);
    cpu0 = cpu_seconds();
    b->start_ns = b->last_ns = get_clock();
    b->last_completed = 0;
    b->deadline_ns = b->start_ns + (int64_t)(o->time_s * 1e9);
    send_to_workers(b, start_bh);
    if (b->show_progress) {
        timer_mod(&b->progress, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1000);
    }
    wait_workers(b);
    end = get_clock();
    res->cpu_seconds = cpu_seconds() - cpu0;
    metrics_sum(b, &res->loop, &res->pool);
    metrics_delta(res, &loop0, &pool0);
    res->contexts = b->nworkers;
    res->seconds = (double)(end - b->start_ns) / 1e9;
    if (b->show_progress) {
        timer_del(&b->progress);
        fprintf(stderr, "\r\033[K");
    }

    res->hist = g_new(Hist, 1);
    hist_reset(res->hist);
    for (i = 0; i < b->nworkers; i++) {
        Worker *w = &b->workers[i];

        hist_merge(res->hist, &w->hist);
        res->verified_bytes += w->verified_bytes;
        if (w->error && res->status == RUN_OK) {
            res->status = RUN_FAILED;
            res->reason = w->error;
        } else {
            g_free(w->error);
        }
        w->error = NULL;
    }
    res->requests = res->hist->count;
    res->bytes = res->requests * o->bs;
    if (res->status == RUN_OK && qatomic_read(&bench_interrupted)) {
        res->status = RUN_INTERRUPTED;
        res->reason = g_strdup("interrupted");
    }
    if (res->status == RUN_OK && b->written) {
        res->reason = verify_written(b, &res->verified_bytes);
        if (res->reason) {
            res->status = RUN_FAILED;
        }
    }
    if (res->status != RUN_OK) {
        g_clear_pointer(&res->hist, g_free);
    }
}

/* ---- Setting up and tearing down ------------------------------------ */

static bool worker_init(Bench *b, Worker *w, int index, Error **errp)
{
    const Options *o = b->o;
    IOThreadOptions opts = IOTHREAD_OPTIONS_DEFAULT;
    int i;

    w->b = b;
    w->depth = o->depth / b->nworkers + (index < o->depth % b->nworkers);
    w->reqs = g_new0(Req, w->depth);
    for (i = 0; i < w->depth; i++) {
        Req *r = &w->reqs[i];
        void *buf;

        if (posix_memalign(&buf, 4096, o->bs)) {
            error_setg(errp, "cannot allocate %d buffers of %" PRIu64
                       " bytes", o->depth, o->bs);
            return false;
        }
        /* Real data for writes that are not --verify ones. */
        pattern_fill(buf, 0, o->bs, b->f->seed ^ i);
        r->w = w;
        r->buf = buf;
        r->fd = b->f->fd;
        r->write = o->write;
        qemu_iovec_init_buf(&r->qiov, buf, o->bs);
    }

    if (!o->iothreads) {
        w->ctx = b->main_ctx;
        return true;
    }
    if (o->poll_max_ns >= 0) {
        opts.poll_max_ns = o->poll_max_ns;
    }
    /* One pool thread per request in flight: the pool must not cap it. */
    opts.thread_pool_max = MAX(opts.thread_pool_max, w->depth);
    {
        g_autofree char *name = g_strdup_printf("qaio-bench-%d", index);

        w->iothread = iothread_create_full(name, &opts, errp);
    }
    if (!w->iothread) {
        return false;
    }
    w->ctx = iothread_get_aio_context(w->iothread);
    return true;
}

Bench *bench_new(const Options *o, const BenchFile *f, Error **errp)
{
    Bench *b = g_new0(Bench, 1);
    const char *corrupt = g_getenv("QAIO_BENCH_CORRUPT");
    int i;

    b->o = o;
    b->f = f;
    b->nblocks = f->nblocks;
    b->corrupt_next = corrupt && *corrupt && strcmp(corrupt, "0") != 0;
    b->show_progress = isatty(STDERR_FILENO);
    b->main_ctx = aio_context_new(errp);
    if (!b->main_ctx) {
        g_free(b);
        return NULL;
    }
    qemu_set_current_aio_context(b->main_ctx);
    aio_timer_init(b->main_ctx, &b->progress, QEMU_CLOCK_REALTIME, SCALE_MS,
                   progress_cb, b);
    if (!o->iothreads) {
        IOThreadOptions def = IOTHREAD_OPTIONS_DEFAULT;

        if (o->poll_max_ns >= 0) {
            aio_context_set_poll_params(b->main_ctx, o->poll_max_ns,
                                        def.poll_grow, def.poll_shrink,
                                        &error_abort);
        }
        aio_context_set_thread_pool_params(b->main_ctx, 0,
                                           MAX(def.thread_pool_max,
                                               o->depth), &error_abort);
    }
    if (o->write && o->verify) {
        b->written = g_malloc0(b->nblocks);
    }

    b->nworkers = o->iothreads ? o->iothreads : 1;
    b->workers = g_new0(Worker, b->nworkers);
    for (i = 0; i < b->nworkers; i++) {
        if (!worker_init(b, &b->workers[i], i, errp)) {
            bench_free(b);
            return NULL;
        }
    }
    return b;
}

void bench_free(Bench *b)
{
    int i, j;

    for (i = 0; i < b->nworkers; i++) {
        Worker *w = &b->workers[i];

        /* The IOThread goes first: its engines may still hold the buffers. */
        iothread_destroy(w->iothread);
        for (j = 0; j < w->depth && w->reqs; j++) {
            free(w->reqs[j].buf);
        }
        g_free(w->reqs);
    }
    g_free(b->workers);
    g_free(b->written);
    timer_del(&b->progress);
    timer_deinit(&b->progress);
    aio_context_unref(b->main_ctx);
    g_free(b);
}
