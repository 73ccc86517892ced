/*
 * tools/qaio-bench.h: what the three parts of qaio-bench share.
 *
 * qaio-bench.c parses the command line, prepares the file and prints the
 * results; qaio-bench-run.c runs one engine (IOThreads, request
 * coroutines, the engines' submit calls, --verify); qaio-bench-hist.c is
 * the latency histogram.
 *
 * Threading: Options and the file description are written by the main
 * thread before any run and only read afterwards.  Everything else is
 * described where it is defined.
 */
#ifndef QAIO_BENCH_H
#define QAIO_BENCH_H

#include "qemu/osdep.h"
#include "qaio/metrics.h"

/* ---- Latency histogram (qaio-bench-hist.c) ---------------------------- */

/*
 * Log-linear, in the manner of HdrHistogram: values below 2^HIST_SUB_BITS
 * nanoseconds have a bucket each; above that every power of two is split
 * into 2^HIST_SUB_BITS buckets of equal width, so a value is known within
 * 1 / 2^HIST_SUB_BITS (0.8%) whatever its size, in a fixed 58 KiB.
 */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct Hist {
    uint64_t count;
    uint64_t sum_ns;
    uint64_t min_ns;
    uint64_t max_ns;
    uint64_t buckets[HIST_BUCKETS];
} Hist;

void hist_reset(Hist *h);
void hist_add(Hist *h, uint64_t ns);
/* Add every sample of @src to @dst. */
void hist_merge(Hist *dst, const Hist *src);
/*
 * The value below which a fraction @q (0 < q <= 1) of the samples lie:
 * the middle of the bucket holding the sample of rank ceil(q * count),
 * clamped to [min, max].  0 when empty.
 */
uint64_t hist_quantile(const Hist *h, double q);

/* ---- Options --------------------------------------------------------- */

typedef enum EngineId {
    ENGINE_THREADS,
    ENGINE_LINUX_AIO,
    ENGINE_IO_URING,
    ENGINE_NULL,
    ENGINE__MAX,
} EngineId;

extern const char *const engine_names[ENGINE__MAX];

typedef struct Options {
    int engine;             /* an EngineId, or -1 for all of them */
    bool write;
    bool random;
    const char *rw;         /* as given: read, write, randread, randwrite */
    uint64_t bs;
    int depth;              /* requests in flight, over all IOThreads */
    uint64_t count;         /* requests per engine; 0: run for time_s */
    double time_s;
    int iothreads;          /* 0: the main thread runs the requests */
    bool direct;
    int64_t poll_max_ns;    /* -1: leave the contexts' defaults */
    bool verify;
    bool json;
    const char *file;       /* NULL: a temporary file (or none for null) */
} Options;

/* The file under test, as qaio-bench.c opened and sized it. */
typedef struct BenchFile {
    int fd;                 /* -1: no file (the null engine alone) */
    char *path;
    bool temporary;
    uint64_t size;
    uint64_t nblocks;       /* whole --bs blocks in the file */
    uint64_t seed;          /* of the pattern the file holds (--verify) */
} BenchFile;

/* ---- Running an engine (qaio-bench-run.c) ---------------------------- */

typedef enum RunStatus {
    RUN_OK,
    RUN_UNAVAILABLE,        /* the engine's setup failed */
    RUN_SKIPPED,            /* not meaningful with these options */
    RUN_FAILED,             /* an I/O error or a verify mismatch */
    RUN_INTERRUPTED,        /* SIGINT */
} RunStatus;

typedef struct RunResult {
    EngineId engine;
    RunStatus status;
    char *reason;           /* unless RUN_OK; owned */
    uint64_t requests;
    uint64_t bytes;
    uint64_t verified_bytes;
    double seconds;         /* first submission to last completion */
    double cpu_seconds;     /* user + system time of the process */
    Hist *hist;             /* RUN_OK only; owned */
    /*
     * What the loops did during the run (qaio/metrics.h): the counters'
     * growth, summed over the contexts that ran requests.
     */
    int contexts;
    QaioLoopMetrics loop;
    QaioThreadPoolMetrics pool;     /* counters only; gauges are zero */
} RunResult;

typedef struct Bench Bench;

/*
 * Create the contexts the runs use: the main thread's context (made the
 * thread's current one) and, with --iothreads N, N IOThreads.  NULL with
 * @errp set on failure.  Called once, from the main thread.
 */
Bench *bench_new(const Options *o, const BenchFile *f, Error **errp);
/* Run @engine once; fills @res (free with run_result_clear). */
void bench_run(Bench *b, EngineId engine, RunResult *res);
/* Stop and free the IOThreads and the contexts. */
void bench_free(Bench *b);
void run_result_clear(RunResult *res);

/* Set (async-signal-safe) by SIGINT: requests stop being issued. */
extern int bench_interrupted;

/* ---- The --verify pattern ------------------------------------------- */

/*
 * Byte @off of the file, under pattern @seed, is byte (off % 8) of a 64-bit
 * hash of (@seed, off / 8): every 8 bytes differ, and so do two runs.
 */
void pattern_fill(void *buf, uint64_t off, size_t len, uint64_t seed);
/*
 * Compare @buf with the pattern.  Returns: -1 when it matches, else the
 * index in @buf of the first byte that differs.
 */
ssize_t pattern_check(const void *buf, uint64_t off, size_t len,
                      uint64_t seed);
/* The byte the pattern has at @off. */
uint8_t pattern_byte(uint64_t off, uint64_t seed);
uint64_t bench_mix64(uint64_t x);

#endif /* QAIO_BENCH_H */
