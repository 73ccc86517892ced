/*
 * tools/qaio-bench.c: qaio-bench, the block I/O benchmark installed with
 * the library (what `make bench` runs).  In the spirit of `qemu-img bench`
 * and fio, built on qaio's public API only: one coroutine per request in
 * flight, IOThreads, and the engines (thread pool, Linux AIO, io_uring,
 * and a null engine that measures the loop alone).  `qaio-bench --help`
 * is the user's documentation; this file owns the command line, the file
 * under test and the output, qaio-bench-run.c the runs.
 *
 * --json prints one object:
 *   {
 *     "tool": "qaio-bench", "version": "0.1.0",
 *     "workload": {"rw": "randread", "bs": 4096, "depth": 32,
 *                  "iothreads": 0, "count": null, "time_s": 3.0,
 *                  "direct": false, "poll_max_ns": null, "verify": false},
 *     "file": {"path": "./qaio-bench.x1Y2z3", "size": 1073741824,
 *              "temporary": true}                  (null: no file used)
 *     "runs": [
 *       {"engine": "threads", "status": "ok",
 *        "requests": 123456, "bytes": 505675776, "seconds": 3.0012,
 *        "iops": 41135.2, "mib_s": 160.7,
 *        "latency_us": {"mean": 777.1, "min": 12.0, "p50": 701.0,
 *                       "p99": 2304.0, "p99_9": 4100.0, "max": 9120.4},
 *        "cpu_us_per_request": 9.81, "verified_bytes": 0},
 *       {"engine": "linux-aio", "status": "unavailable",
 *        "reason": "..."},
 *       ...
 *     ]
 *   }
 * "count" is null in --time mode and "time_s" null in --count mode;
 * "poll_max_ns" is null when the contexts keep their defaults.  A run's
 * status is "ok", "unavailable" (engine setup failed), "skipped" (null
 * with --verify), "failed" (I/O error or verify mismatch) or
 * "interrupted"; only "ok" runs have the numbers.
 *
 * Test hook: QAIO_BENCH_CORRUPT=1 flips one byte of one request's data
 * (after a read completes, or before a write is submitted), so that the
 * test suite can see --verify catch it.  It has no effect without --verify.
 *
 * Threading: main() runs in the main thread, which also runs the requests
 * when --iothreads is 0; the SIGINT handler only sets bench_interrupted.
 */
#include "qemu/osdep.h"
#include <getopt.h>
#include <math.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include "qapi/error.h"
#include "qemu/atomic.h"
#include "qemu/timer.h"
#include "qaio-bench.h"

#define TEMP_FILE_SIZE (1ull << 30)
#define MAX_BS (64ull << 20)
#define MAX_BUFFERS (4ull << 30)
#define MAX_IOTHREADS 64
#define MAX_DEPTH 65536

/* Exit statuses. */
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130

const char *const engine_names[ENGINE__MAX] = {
    [ENGINE_THREADS] = "threads",
    [ENGINE_LINUX_AIO] = "linux-aio",
    [ENGINE_IO_URING] = "io_uring",
    [ENGINE_NULL] = "null",
};

static const char *const status_names[] = {
    [RUN_OK] = "ok",
    [RUN_UNAVAILABLE] = "unavailable",
    [RUN_SKIPPED] = "skipped",
    [RUN_FAILED] = "failed",
    [RUN_INTERRUPTED] = "interrupted",
};

static void usage_text(void)
{
    printf(
"Usage: qaio-bench [--engine threads|linux-aio|io_uring|null]\n"
"                  [--rw read|write|randread|randwrite] [--bs SIZE]\n"
"                  [--depth N] [--count N | --time SECONDS] [--iothreads N]\n"
"                  [--direct] [--poll-max-ns N] [--verify] [--json] [FILE]\n"
"\n"
"Block I/O benchmark on qaio's event loop: every request in flight is a\n"
"coroutine that submits through one of qaio's engines and yields until the\n"
"completion wakes it.  Without options: a temporary 1 GiB file, 4 KiB\n"
"random reads at depth 32 for 3 s on each engine this machine supports,\n"
"one table.\n"
"\n"
"  --engine E       threads, linux-aio, io_uring or null (default: each in\n"
"                   turn; one that cannot be set up is reported unavailable)\n"
"  --rw RW          read, write, randread or randwrite (default randread)\n"
"  --bs SIZE        bytes per request; K, M, G suffixes (default 4K, at\n"
"                   most 64M; a multiple of 512 with --direct)\n"
"  --depth N        requests in flight in total (default 32)\n"
"  --count N        requests per engine, instead of a time\n"
"  --time SECONDS   how long each engine runs (default 3)\n"
"  --iothreads N    run the requests in N IOThreads, each with its share of\n"
"                   --depth, which stays the total (default 0: the main\n"
"                   thread runs them)\n"
"  --direct         open the file with O_DIRECT (bypass the page cache)\n"
"  --poll-max-ns N  busy-polling window of the contexts running requests\n"
"                   (default as in QEMU: 0, no polling, in the main thread;\n"
"                   32768 in IOThreads)\n"
"  --verify         check every byte: read workloads first write a pattern\n"
"                   over the file and check each read against it; write\n"
"                   workloads write the pattern and read back every block\n"
"                   written at the end (costs CPU: not for measuring)\n"
"  --json           print the results as one JSON object (see below)\n"
"  -h, --help       print this help\n"
"\n"
"FILE is a file or block device; without it a 1 GiB file full of data is\n"
"created in $TMPDIR (or the current directory); it is unlinked at once, so\n"
"it goes away however qaio-bench ends.  Write workloads and --verify\n"
"overwrite FILE.  Ctrl-C stops the run (exit status 130).\n"
"\n"
"Engines: threads = thread pool workers doing preadv/pwritev; linux-aio =\n"
"io_submit (synchronous in the kernel unless --direct); io_uring; null = no\n"
"device: the coroutine yields and a one-shot BH wakes it again, which\n"
"measures the request path through coroutine, loop and completion alone\n"
"(its MiB/s is nominal).\n"
"\n"
"Results: IOPS, MiB/s, latency (submission to wake-up) mean, p50, p99 and\n"
"p99.9 in microseconds from a log-linear histogram (within 0.8%%), and CPU\n"
"time (user + system, all threads) per request.  A progress line goes to\n"
"stderr when it is a terminal.\n"
"\n"
"--json: {\"tool\", \"version\", \"workload\": {\"rw\", \"bs\",\n"
"\"depth\", \"iothreads\", \"count\", \"time_s\", \"direct\",\n"
"\"poll_max_ns\", \"verify\"}, \"file\": {\"path\", \"size\",\n"
"\"temporary\"} or null, \"runs\": [{\"engine\",\n"
"\"status\": ok|unavailable|skipped|failed|interrupted, \"reason\" (not ok),\n"
"\"requests\", \"bytes\", \"seconds\", \"iops\", \"mib_s\", \"latency_us\":\n"
"{\"mean\", \"min\", \"p50\", \"p99\", \"p99_9\", \"max\"},\n"
"\"cpu_us_per_request\", \"verified_bytes\"}]}\n"
"\n"
"Exit status: 0 success, 1 runtime error (file, engine, I/O, verify),\n"
"2 bad arguments, 130 interrupted.\n");
}

/* ---- Command line --------------------------------------------------- */

static void G_GNUC_PRINTF(1, 2) complain(const char *fmt, ...)
{
    va_list ap;

    /* Over the progress line (or the terminal's ^C), if any. */
    fputs(isatty(STDERR_FILENO) ? "\r\033[Kqaio-bench: " : "qaio-bench: ",
          stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static bool parse_u64(const char *s, uint64_t *out, const char **end)
{
    char *e;

    if (!g_ascii_isdigit(*s)) {
        return false;           /* strtoull would take "-1" and " 1" */
    }
    errno = 0;
    *out = strtoull(s, &e, 10);
    if (errno || e == s) {
        return false;
    }
    *end = e;
    return true;
}

/* A whole decimal number in [min, max]. */
static bool parse_int_opt(const char *opt, const char *s, uint64_t min,
                          uint64_t max, uint64_t *out)
{
    const char *end;

    if (!parse_u64(s, out, &end) || *end) {
        complain("%s: '%s' is not a number", opt, s);
        return false;
    }
    if (*out < min || *out > max) {
        complain("%s must be between %" PRIu64 " and %" PRIu64 " (got %s)",
                 opt, min, max, s);
        return false;
    }
    return true;
}

/* "4096", "4K", "4k", "4KiB", "1M", "1G": binary multiples. */
static bool parse_size(const char *s, uint64_t *out)
{
    const char *end;
    unsigned shift = 0;
    uint64_t v;

    if (!parse_u64(s, &v, &end)) {
        return false;
    }
    switch (g_ascii_toupper(*end)) {
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case '\0':
        break;
    default:
        return false;
    }
    if (shift) {
        end++;
        if (!strcmp(end, "iB") || !strcmp(end, "B")) {
            end += strlen(end);
        }
    }
    if (*end || v > (UINT64_MAX >> shift)) {
        return false;
    }
    *out = v << shift;
    return true;
}

enum {
    OPT_ENGINE = 256,
    OPT_RW,
    OPT_BS,
    OPT_DEPTH,
    OPT_COUNT,
    OPT_TIME,
    OPT_IOTHREADS,
    OPT_DIRECT,
    OPT_POLL_MAX_NS,
    OPT_VERIFY,
    OPT_JSON,
};

static const struct option long_options[] = {
    { "engine", required_argument, NULL, OPT_ENGINE },
    { "rw", required_argument, NULL, OPT_RW },
    { "bs", required_argument, NULL, OPT_BS },
    { "depth", required_argument, NULL, OPT_DEPTH },
    { "count", required_argument, NULL, OPT_COUNT },
    { "time", required_argument, NULL, OPT_TIME },
    { "iothreads", required_argument, NULL, OPT_IOTHREADS },
    { "direct", no_argument, NULL, OPT_DIRECT },
    { "poll-max-ns", required_argument, NULL, OPT_POLL_MAX_NS },
    { "verify", no_argument, NULL, OPT_VERIFY },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Returns: -1 to go on, else the exit status (0 after --help). */
static int parse_args(int argc, char **argv, Options *o)
{
    bool time_given = false;
    uint64_t v;
    int c, i;

    *o = (Options) {
        .engine = -1,
        .random = true,
        .rw = "randread",
        .bs = 4096,
        .depth = 32,
        .time_s = 3,
        .poll_max_ns = -1,
    };

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_ENGINE:
            o->engine = -2;
            for (i = 0; i < ENGINE__MAX; i++) {
                if (!strcmp(optarg, engine_names[i])) {
                    o->engine = i;
                }
            }
            if (o->engine < 0) {
                complain("unknown engine '%s' (threads, linux-aio, io_uring "
                         "or null)", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_RW:
            if (strcmp(optarg, "read") && strcmp(optarg, "write") &&
                strcmp(optarg, "randread") && strcmp(optarg, "randwrite")) {
                complain("unknown --rw '%s' (read, write, randread or "
                         "randwrite)", optarg);
                return EXIT_USAGE;
            }
            o->rw = optarg;
            o->random = g_str_has_prefix(optarg, "rand");
            o->write = g_str_has_suffix(optarg, "write");
            break;
        case OPT_BS:
            if (!parse_size(optarg, &o->bs)) {
                complain("--bs: '%s' is not a size (a number, optionally "
                         "followed by K, M or G)", optarg);
                return EXIT_USAGE;
            }
            if (o->bs == 0 || o->bs > MAX_BS) {
                complain("--bs must be greater than 0 and at most 64M "
                         "(got %s)", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_DEPTH:
            if (!parse_int_opt("--depth", optarg, 1, MAX_DEPTH, &v)) {
                return EXIT_USAGE;
            }
            o->depth = v;
            break;
        case OPT_COUNT:
            if (!parse_int_opt("--count", optarg, 1, UINT64_MAX / 2,
                               &o->count)) {
                return EXIT_USAGE;
            }
            break;
        case OPT_TIME: {
            char *end;

            errno = 0;
            o->time_s = strtod(optarg, &end);
            if (errno || end == optarg || *end || !isfinite(o->time_s) ||
                o->time_s <= 0 || o->time_s > 1e6) {
                complain("--time must be a number of seconds greater than 0 "
                         "(got '%s')", optarg);
                return EXIT_USAGE;
            }
            time_given = true;
            break;
        }
        case OPT_IOTHREADS:
            if (!parse_int_opt("--iothreads", optarg, 0, MAX_IOTHREADS, &v)) {
                return EXIT_USAGE;
            }
            o->iothreads = v;
            break;
        case OPT_DIRECT:
            o->direct = true;
            break;
        case OPT_POLL_MAX_NS:
            if (!parse_int_opt("--poll-max-ns", optarg, 0, INT64_MAX, &v)) {
                return EXIT_USAGE;
            }
            o->poll_max_ns = v;
            break;
        case OPT_VERIFY:
            o->verify = true;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case 'h':
            usage_text();
            return 0;
        case ':':
            complain("option '%s' needs an argument", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            complain("bad option '%s' (see --help)", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        o->file = argv[optind++];
    }
    if (optind < argc) {
        complain("one FILE only (got '%s' and '%s')", o->file, argv[optind]);
        return EXIT_USAGE;
    }

    if (o->count && time_given) {
        complain("--count and --time are mutually exclusive");
        return EXIT_USAGE;
    }
    if (o->direct && o->bs % 512) {
        complain("--bs must be a multiple of 512 with --direct (got %" PRIu64
                 ")", o->bs);
        return EXIT_USAGE;
    }
    if (o->depth < o->iothreads) {
        complain("--depth %d is less than --iothreads %d: each IOThread "
                 "needs a request", o->depth, o->iothreads);
        return EXIT_USAGE;
    }
    if (o->bs * o->depth > MAX_BUFFERS) {
        complain("--bs times --depth must be at most 4G of buffers");
        return EXIT_USAGE;
    }
    if (o->verify && o->engine == ENGINE_NULL) {
        complain("--verify needs an engine that moves data; null does not");
        return EXIT_USAGE;
    }
    return -1;
}

/* ---- The file under test -------------------------------------------- */

static void on_signal(int sig)
{
    qatomic_set(&bench_interrupted, 1);
}

/* "4 KiB", "1 GiB", "1000 bytes": exact, for the table's header. */
static char *size_str(uint64_t n)
{
    static const char *const units[] = { "bytes", "KiB", "MiB", "GiB",
                                         "TiB" };
    unsigned u = 0;

    while (u + 1 < ARRAY_SIZE(units) && n >= 1024 && n % 1024 == 0) {
        n /= 1024;
        u++;
    }
    return g_strdup_printf("%" PRIu64 " %s", n, units[u]);
}

/*
 * Write the pattern of f->seed over [0, @len) of f->fd, in chunks of whole
 * blocks (O_DIRECT needs them).  Returns: NULL or the problem.
 */
static char *fill_file(BenchFile *f, uint64_t len, uint64_t bs)
{
    uint64_t chunk = bs * MAX((uint64_t)1, (1ull << 20) / bs);
    uint64_t off = 0;
    bool tty = isatty(STDERR_FILENO);
    void *buf;
    char *msg = NULL;

    if (posix_memalign(&buf, 4096, chunk)) {
        return g_strdup("out of memory");
    }
    while (off < len && !msg) {
        size_t n = MIN(chunk, len - off);
        ssize_t ret;

        if (tty && off % (64 << 20) < n) {
            fprintf(stderr, "\rwriting the data of %s: %" PRIu64 "%%\033[K",
                    f->path, off * 100 / len);
        }
        if (qatomic_read(&bench_interrupted)) {
            msg = g_strdup("interrupted");
            break;
        }
        pattern_fill(buf, off, n, f->seed);
        ret = pwrite(f->fd, buf, n, off);
        if (ret < 0 && errno == EINTR) {
            continue;
        }
        if (ret != (ssize_t)n) {
            msg = g_strdup_printf("%s: writing the data failed: %s", f->path,
                                  ret < 0 ? strerror(errno) : "short write");
        }
        off += n;
    }
    if (tty) {
        fprintf(stderr, "\r\033[K");
    }
    free(buf);
    return msg;
}

/* Returns: NULL, or the problem (a runtime error). */
static char *file_prepare(const Options *o, BenchFile *f, bool need_file)
{
    struct stat st;
    int flags;

    f->fd = -1;
    f->seed = bench_mix64((uint64_t)get_clock_realtime() ^
                          ((uint64_t)getpid() << 32));

    if (!o->file && !need_file) {
        /* The null engine alone: offsets within a 1 GiB that is not there. */
        f->size = TEMP_FILE_SIZE;
        f->nblocks = f->size / o->bs;
        return NULL;
    }

    if (!o->file) {
        const char *dir = g_getenv("TMPDIR");
        char *msg;

        f->path = g_build_filename(dir && *dir ? dir : ".",
                                   "qaio-bench.XXXXXX", NULL);
        f->temporary = true;
        f->fd = mkostemp(f->path, O_CLOEXEC);
        if (f->fd < 0) {
            return g_strdup_printf("cannot create a temporary file %s: %s",
                                   f->path, strerror(errno));
        }
        /* Gone from the directory at once: nothing is left behind, ever. */
        unlink(f->path);
        f->size = TEMP_FILE_SIZE;
        f->nblocks = f->size / o->bs;
        msg = fill_file(f, f->size, o->bs);
        if (msg) {
            return msg;
        }
        if (o->direct) {
            /* O_DIRECT reads must find the data on the device. */
            if (fdatasync(f->fd) < 0) {
                return g_strdup_printf("%s: fdatasync: %s", f->path,
                                       strerror(errno));
            }
            flags = fcntl(f->fd, F_GETFL);
            if (fcntl(f->fd, F_SETFL, flags | O_DIRECT) < 0) {
                return g_strdup_printf("%s: the file system refuses "
                                       "O_DIRECT (%s)", f->path,
                                       strerror(errno));
            }
        }
        return NULL;
    }

    f->path = g_strdup(o->file);
    flags = (o->write || o->verify ? O_RDWR : O_RDONLY) | O_CLOEXEC |
            (o->direct ? O_DIRECT : 0);
    f->fd = open(f->path, flags);
    if (f->fd < 0) {
        int err = errno;

        if (err == EINVAL && o->direct) {
            return g_strdup_printf("%s: the file system refuses O_DIRECT",
                                   f->path);
        }
        return g_strdup_printf("%s: %s", f->path, strerror(err));
    }
    if (fstat(f->fd, &st) < 0) {
        return g_strdup_printf("%s: %s", f->path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        return g_strdup_printf("%s: is a directory", f->path);
    } else if (S_ISREG(st.st_mode)) {
        f->size = st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        uint64_t bytes;

        if (ioctl(f->fd, BLKGETSIZE64, &bytes) < 0) {
            return g_strdup_printf("%s: cannot get the device size: %s",
                                   f->path, strerror(errno));
        }
        f->size = bytes;
    } else {
        return g_strdup_printf("%s: not a regular file or block device",
                               f->path);
    }
    if (f->size < o->bs) {
        return g_strdup_printf("%s: the file (%" PRIu64 " bytes) is smaller "
                               "than --bs (%" PRIu64 " bytes)", f->path,
                               f->size, o->bs);
    }
    f->nblocks = f->size / o->bs;
    if (o->verify && !o->write) {
        return fill_file(f, f->nblocks * o->bs, o->bs);
    }
    return NULL;
}

/* ---- Output --------------------------------------------------------- */

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = *s;

        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

typedef struct Summary {
    double iops, mib_s, mean, min, p50, p99, p999, max, cpu_us;
} Summary;

static void summarize(const Options *o, const RunResult *r, Summary *s)
{
    const Hist *h = r->hist;
    double secs = r->seconds > 0 ? r->seconds : 1e-9;

    s->iops = (double)r->requests / secs;
    s->mib_s = (double)r->bytes / secs / (1024.0 * 1024.0);
    s->mean = h->count ? (double)h->sum_ns / (double)h->count / 1e3 : 0;
    s->min = h->count ? (double)h->min_ns / 1e3 : 0;
    s->p50 = (double)hist_quantile(h, 0.50) / 1e3;
    s->p99 = (double)hist_quantile(h, 0.99) / 1e3;
    s->p999 = (double)hist_quantile(h, 0.999) / 1e3;
    s->max = (double)h->max_ns / 1e3;
    s->cpu_us = r->requests ? r->cpu_seconds * 1e6 / (double)r->requests : 0;
}

/* The loop and thread pool counters of a run (see qaio/metrics.h). */
static void print_json_metrics(const RunResult *r)
{
    const QaioLoopMetrics *l = &r->loop;
    const QaioThreadPoolMetrics *p = &r->pool;

    printf("   \"loop\": {\"contexts\": %d, \"iterations\": %" PRIu64
           ", \"bh_calls\": %" PRIu64 ", \"fd_dispatches\": %" PRIu64
           ", \"timers_fired\": %" PRIu64 ", \"blocking_waits\": %" PRIu64
           ",\n            \"blocked_ns\": %" PRIu64 ", \"poll_ns\": %"
           PRIu64 ", \"poll_hits\": %" PRIu64 ", \"poll_misses\": %"
           PRIu64 "},\n", r->contexts, l->iterations, l->bh_calls,
           l->fd_dispatches, l->timers_fired, l->blocking_waits,
           l->blocked_ns, l->poll_ns, l->poll_hits, l->poll_misses);
    printf("   \"thread_pool\": {\"submitted\": %" PRIu64
           ", \"completed\": %" PRIu64 ", \"cancelled\": %" PRIu64
           ", \"wait_ns\": %" PRIu64 ", \"wait_max_ns\": %" PRIu64 "}",
           p->submitted, p->completed, p->cancelled, p->wait_ns,
           p->wait_max_ns);
}

static void print_json(const Options *o, const BenchFile *f,
                       const RunResult *res, int nres)
{
    int i;

    printf("{\"tool\": \"qaio-bench\", \"version\": \"%s\",\n", QAIO_VERSION);
    printf(" \"workload\": {\"rw\": \"%s\", \"bs\": %" PRIu64 ", "
           "\"depth\": %d, \"iothreads\": %d, ", o->rw, o->bs, o->depth,
           o->iothreads);
    if (o->count) {
        printf("\"count\": %" PRIu64 ", \"time_s\": null, ", o->count);
    } else {
        printf("\"count\": null, \"time_s\": %g, ", o->time_s);
    }
    printf("\"direct\": %s, ", o->direct ? "true" : "false");
    if (o->poll_max_ns >= 0) {
        printf("\"poll_max_ns\": %" PRId64 ", ", o->poll_max_ns);
    } else {
        printf("\"poll_max_ns\": null, ");
    }
    printf("\"verify\": %s},\n", o->verify ? "true" : "false");
    if (f->fd >= 0) {
        printf(" \"file\": {\"path\": ");
        json_string(f->path);
        printf(", \"size\": %" PRIu64 ", \"temporary\": %s},\n", f->size,
               f->temporary ? "true" : "false");
    } else {
        printf(" \"file\": null,\n");
    }
    printf(" \"runs\": [");
    for (i = 0; i < nres; i++) {
        const RunResult *r = &res[i];

        printf("%s\n  {\"engine\": \"%s\", \"status\": \"%s\"",
               i ? "," : "", engine_names[r->engine],
               status_names[r->status]);
        if (r->status == RUN_OK) {
            Summary s;

            summarize(o, r, &s);
            printf(", \"requests\": %" PRIu64 ", \"bytes\": %" PRIu64 ", "
                   "\"seconds\": %.6f, \"iops\": %.1f, \"mib_s\": %.3f,\n"
                   "   \"latency_us\": {\"mean\": %.3f, \"min\": %.3f, "
                   "\"p50\": %.3f, \"p99\": %.3f, \"p99_9\": %.3f, "
                   "\"max\": %.3f},\n"
                   "   \"cpu_us_per_request\": %.3f, \"verified_bytes\": %"
                   PRIu64 ",\n", r->requests, r->bytes, r->seconds, s.iops,
                   s.mib_s, s.mean, s.min, s.p50, s.p99, s.p999, s.max,
                   s.cpu_us, r->verified_bytes);
            print_json_metrics(r);
            printf("}");
        } else {
            printf(", \"reason\": ");
            json_string(r->reason ? r->reason : "");
            printf("}");
        }
    }
    printf("\n ]\n}\n");
}

/*
 * What the event loops did per request (qaio/metrics.h): iterations, BH
 * calls and fd callbacks per request, the share of time the contexts spent
 * asleep in the kernel, how often busy polling found work, and how long
 * thread pool requests waited for a worker.
 */
static void print_metrics_table(const RunResult *res, int nres)
{
    int i;

    printf("\n%-10s %9s %9s %9s %10s %10s %12s\n", "loop", "iter/req",
           "BH/req", "fd/req", "blocked %", "poll hit %", "pool wait us");
    for (i = 0; i < nres; i++) {
        const RunResult *r = &res[i];
        const QaioLoopMetrics *l = &r->loop;
        double n = r->requests ? (double)r->requests : 1;
        double span = r->seconds * 1e9 * (r->contexts ? r->contexts : 1);
        uint64_t polls = l->poll_hits + l->poll_misses;
        uint64_t picked = r->pool.submitted - r->pool.cancelled;
        char hit[16], wait[16];

        if (r->status != RUN_OK) {
            continue;
        }
        if (polls) {
            snprintf(hit, sizeof(hit), "%.1f", 100.0 * l->poll_hits / polls);
        } else {
            snprintf(hit, sizeof(hit), "-");
        }
        if (picked) {
            snprintf(wait, sizeof(wait), "%.1f",
                     (double)r->pool.wait_ns / picked / 1e3);
        } else {
            snprintf(wait, sizeof(wait), "-");
        }
        printf("%-10s %9.2f %9.2f %9.2f %10.1f %10s %12s\n",
               engine_names[r->engine], l->iterations / n, l->bh_calls / n,
               l->fd_dispatches / n,
               span > 0 ? 100.0 * (double)l->blocked_ns / span : 0.0,
               hit, wait);
    }
}

static void print_table(const Options *o, const BenchFile *f,
                        const RunResult *res, int nres)
{
    g_autofree char *bs = size_str(o->bs);
    int i;

    printf("qaio-bench %s: %s, %s blocks, depth %d, ", QAIO_VERSION, o->rw,
           bs, o->depth);
    if (o->iothreads) {
        printf("%d IOThread%s, ", o->iothreads, o->iothreads > 1 ? "s" : "");
    } else {
        printf("main thread, ");
    }
    if (o->count) {
        printf("%" PRIu64 " requests per engine", o->count);
    } else {
        printf("%g s per engine", o->time_s);
    }
    if (o->poll_max_ns >= 0) {
        printf(", poll-max-ns %" PRId64, o->poll_max_ns);
    }
    printf("%s\n", o->verify ? ", verified" : "");
    if (f->fd >= 0) {
        g_autofree char *size = size_str(f->size);

        printf("file %s (%s%s, %s)\n", f->path, size,
               f->temporary ? ", temporary" : "",
               o->direct ? "O_DIRECT" : "page cache");
    }
    printf("%-10s %10s %9s %9s %9s %9s %9s %9s\n", "engine", "IOPS",
           "MiB/s", "mean us", "p50 us", "p99 us", "p99.9 us", "CPU us");
    for (i = 0; i < nres; i++) {
        const RunResult *r = &res[i];
        Summary s;

        if (r->status != RUN_OK) {
            printf("%-10s %s: %s\n", engine_names[r->engine],
                   status_names[r->status], r->reason);
            continue;
        }
        summarize(o, r, &s);
        printf("%-10s %10.0f %9.1f %9.1f %9.1f %9.1f %9.1f %9.2f\n",
               engine_names[r->engine], s.iops, s.mib_s, s.mean, s.p50,
               s.p99, s.p999, s.cpu_us);
    }
    printf("latency: submission to completion; CPU: user + system time of "
           "all threads per request\n");
    print_metrics_table(res, nres);
}

/* ---- main ----------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_handler = on_signal,
                            .sa_flags = SA_RESETHAND };
    EngineId engines[ENGINE__MAX];
    RunResult res[ENGINE__MAX] = {};
    BenchFile file = { .fd = -1 };
    Options o;
    Bench *b = NULL;
    Error *err = NULL;
    char *msg;
    bool need_file = false;
    int nengines = 0, nres = 0, status, i;

    status = parse_args(argc, argv, &o);
    if (status >= 0) {
        return status;
    }
    status = 0;
    for (i = 0; i < ENGINE__MAX; i++) {
        if (o.engine < 0 || o.engine == i) {
            engines[nengines++] = i;
            need_file |= i != ENGINE_NULL;
        }
    }

    /*
     * Ctrl-C stops issuing requests, lets those in flight finish, and exits
     * with 130; a second one kills at once.  Nothing needs cleaning up
     * either way: the temporary file is unlinked as soon as it is created.
     * SIGTERM keeps its default action, so a stuck device cannot keep
     * the process alive.
     */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    msg = file_prepare(&o, &file, need_file);
    if (msg) {
        goto runtime_error;
    }
    b = bench_new(&o, &file, &err);
    if (!b) {
        msg = g_strdup(error_get_pretty(err));
        error_free(err);
        goto runtime_error;
    }

    for (i = 0; i < nengines; i++) {
        RunResult *r = &res[nres++];

        if (engines[i] == ENGINE_NULL && o.verify) {
            r->engine = ENGINE_NULL;
            r->status = RUN_SKIPPED;
            r->reason = g_strdup("no data to --verify");
            continue;
        }
        bench_run(b, engines[i], r);
        if (r->status == RUN_INTERRUPTED) {
            break;
        }
        if (o.engine >= 0 && r->status == RUN_UNAVAILABLE) {
            msg = g_strdup_printf("engine %s is unavailable: %s",
                                  engine_names[r->engine], r->reason);
            goto runtime_error;
        }
        if (o.engine >= 0 && r->status == RUN_FAILED) {
            msg = g_strdup_printf("%s: %s", engine_names[r->engine],
                                  r->reason);
            goto runtime_error;
        }
    }
    if (qatomic_read(&bench_interrupted)) {
        msg = g_strdup("interrupted");
        goto runtime_error;
    }

    if (o.json) {
        print_json(&o, &file, res, nres);
    } else {
        print_table(&o, &file, res, nres);
    }
    for (i = 0; i < nres; i++) {
        if (res[i].status == RUN_FAILED) {
            complain("%s: %s", engine_names[res[i].engine], res[i].reason);
            status = EXIT_RUNTIME;
        }
    }
    goto out;

runtime_error:
    complain("%s", msg);
    g_free(msg);
    status = qatomic_read(&bench_interrupted) ? EXIT_INTERRUPTED
                                              : EXIT_RUNTIME;
out:
    for (i = 0; i < nres; i++) {
        run_result_clear(&res[i]);
    }
    if (b) {
        bench_free(b);
    }
    if (file.fd >= 0) {
        close(file.fd);
    }
    g_free(file.path);
    return status;
}
