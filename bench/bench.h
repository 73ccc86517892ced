/*
 * bench/bench.h: what the event-loop benchmark driver, its scenarios and its
 * peers share.
 *
 * A scenario (bench-<scenario>.c) owns one workload: its sizes, the state
 * every peer's callbacks update through the helpers below (so that each peer
 * does exactly the same work per event), and the check that the work was
 * really done.  A peer (peer-<name>.c) owns the glue to one library: it sets
 * the workload up with that library's closest primitive (named in a comment
 * there and in the table's "primitive" column), runs it, and stamps the start
 * and the end of the timed part.  The driver (qaio-bench-loop.c) repeats
 * every scenario for every peer and prints one table.
 *
 * Threading: everything runs in the driver's thread, except that the
 * ping-pong scenarios run a second loop in a second thread and a peer may
 * run its whole measurement in a thread of its own.  The fields two threads
 * share are marked "atomic".
 *
 * Peers report failure by printing one line to stderr and returning a
 * negative errno; the driver marks the row as failed and goes on.
 */
#ifndef QAIO_BENCH_H
#define QAIO_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds: every peer's timing uses this clock. */
static inline int64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec;
}

/* Tell the CPU we are spinning (both threads of a spin ping-pong share it). */
static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#else
    __asm__ volatile("" ::: "memory");
#endif
}

/* Deterministic PRNG (xorshift64*), so every peer gets the same deadlines. */
static inline uint64_t bench_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

/*
 * (a) resched: @ncallbacks callbacks, each scheduling itself again, until
 * @iterations callbacks have run in all.  With several, the ones already
 * scheduled when the count is reached still run (and count), so a peer
 * stops its loop as soon as @count reaches @iterations and the result is
 * per callback run.
 */
typedef struct BenchResched {
    unsigned ncallbacks;
    uint64_t iterations;    /* callbacks to run, at least */
    uint64_t count;         /* callbacks run so far */
    int64_t t_start, t_end;
} BenchResched;

static inline bool bench_resched_done(const BenchResched *s)
{
    return s->count >= s->iterations;
}

/* Count one callback; true if it must schedule itself again. */
static inline bool bench_resched_step(BenchResched *s)
{
    return ++s->count < s->iterations;
}

/*
 * (b) pingpong: thread A wakes thread B's loop, whose callback wakes A's.
 * A starts the first round trip; its callback counts the round trip and
 * starts the next one, or sets @stop and wakes B one last time so that B's
 * loop can see @stop and return.
 */
typedef struct BenchPingpong {
    uint64_t round_trips;   /* round trips to do */
    uint64_t count;         /* thread A only: round trips done */
    uint64_t hops_b;        /* thread B only: wake-ups that forwarded */
    bool stop;              /* atomic: A is done, B must return */
    int64_t t_start, t_end;
} BenchPingpong;

/* In A's callback: true to start another round trip, false when done. */
static inline bool bench_pingpong_a(BenchPingpong *s)
{
    if (++s->count < s->round_trips) {
        return true;
    }
    __atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
    return false;
}

/* In B's callback: true to wake A, false when B's loop must return. */
static inline bool bench_pingpong_b(BenchPingpong *s)
{
    if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        return false;
    }
    s->hops_b++;
    return true;
}

static inline bool bench_pingpong_stopped(BenchPingpong *s)
{
    return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

/*
 * (c) sockets: the classic libevent "bench" workload.  @nsockets sockets
 * all watched for reading; @active of them get a byte; each read callback
 * reads its byte and, while writes remain, sends one that makes the next
 * socket readable.  Done when every byte written has been read.
 */
typedef struct BenchSockets BenchSockets;

/* The opaque a peer passes to its read callback for socket @idx. */
typedef struct BenchSocketsFd {
    BenchSockets *s;
    int idx;
    int fd;                 /* the socket to watch */
} BenchSocketsFd;

struct BenchSockets {
    int nsockets, active, writes;
    int *fds;               /* socket pairs: [i] and [i ^ 1] are peers */
    BenchSocketsFd *reader; /* [i] watches fds[i] */
    int writes_left, fired, count, failures;
    int64_t t_start, t_end;
};

/* Send the first @active bytes and stamp t_start.  After registering. */
void bench_sockets_start(BenchSockets *s);
/* The read callback's whole job. */
void bench_sockets_readable(BenchSocketsFd *f);

static inline bool bench_sockets_done(const BenchSockets *s)
{
    return s->count == s->fired;
}

/*
 * (d1) timers-arm: arm @n timers at random deadlines, then cancel them all.
 * Deadlines are relative to "now", in [1 s, 1001 s): none fires, and they
 * are distinct even at a millisecond resolution.
 */
typedef struct BenchTimersArm {
    size_t n;
    int64_t *rel_ns;
    int64_t t_start, t_end;
} BenchTimersArm;

/*
 * (d2) timers-late: @n timers due at random times spread uniformly over
 * @span_ns, the first possible one @lead_ns after the start, which leaves
 * the peer time to arm them all.  Lateness is the firing callback's
 * bench_now_ns() minus the due time.
 */
typedef struct BenchTimersLate {
    size_t n;
    int64_t span_ns, lead_ns;
    int64_t *offset_ns;     /* in [0, span_ns) */
    int64_t *due_ns;        /* CLOCK_MONOTONIC; bench_timers_late_start */
    int64_t *late_ns;       /* INT64_MIN until the timer fired */
    size_t fired, dup;
    int64_t t_start;
    int64_t t_armed;        /* stamped by the peer when all are armed */
} BenchTimersLate;

/* Compute the due times from now; stamps t_start. */
void bench_timers_late_start(BenchTimersLate *s);

static inline void bench_timers_late_fire(BenchTimersLate *s, size_t i)
{
    int64_t now = bench_now_ns();

    if (s->late_ns[i] != INT64_MIN) {
        s->dup++;
        return;
    }
    s->late_ns[i] = now - s->due_ns[i];
    s->fired++;
}

/* One entry of a peer per scenario kind; NULL when the peer has none. */
typedef enum BenchKind {
    BENCH_RESCHED,
    BENCH_PINGPONG,         /* wake-ups through the kernel */
    BENCH_PINGPONG_POLL,    /* busy polling allowed */
    BENCH_SOCKETS,
    BENCH_TIMERS_ARM,
    BENCH_TIMERS_LATE,
    BENCH_KIND_MAX,
} BenchKind;

typedef struct BenchPeer {
    const char *name;
    /* Short name of the primitive used, per kind; NULL if not implemented. */
    const char *how[BENCH_KIND_MAX];
    int (*resched)(BenchResched *s);
    int (*pingpong)(BenchPingpong *s);
    int (*pingpong_poll)(BenchPingpong *s);
    int (*sockets)(BenchSockets *s);
    int (*timers_arm)(BenchTimersArm *s);
    int (*timers_late)(BenchTimersLate *s);
} BenchPeer;

extern const BenchPeer bench_peer_floor;
extern const BenchPeer bench_peer_qaio;
extern const BenchPeer bench_peer_libuv;
extern const BenchPeer bench_peer_libev;
extern const BenchPeer bench_peer_libevent;
extern const BenchPeer bench_peer_glib;

typedef struct BenchOptions {
    bool full;              /* the long version: bigger counts */
} BenchOptions;

#define BENCH_MAX_METRICS 2

typedef struct BenchScenario {
    const char *name;
    const char *unit;
    BenchKind kind;
    int nmetrics;
    const char *metric[BENCH_MAX_METRICS];  /* "" when there is only one */
    int param;
    /* Run @peer once; fill @out[0 .. nmetrics-1]; negative errno on error. */
    int (*run)(const struct BenchScenario *sc, const BenchPeer *peer,
               const BenchOptions *opt, double *out);
} BenchScenario;

extern const BenchScenario bench_scenario_resched;
extern const BenchScenario bench_scenario_resched_1000;
extern const BenchScenario bench_scenario_pingpong;
extern const BenchScenario bench_scenario_pingpong_poll;
extern const BenchScenario bench_scenario_sockets_100;
extern const BenchScenario bench_scenario_sockets_1000;
extern const BenchScenario bench_scenario_sockets_10000;
extern const BenchScenario bench_scenario_timers_arm;
extern const BenchScenario bench_scenario_timers_late;

/* Print "peer: what failed: strerror" to stderr and return -errno. */
int bench_fail(const char *peer, const char *what, int err);

#endif /* QAIO_BENCH_H */
