/*
 * bench/bench-resched.c: scenario (a), callbacks that schedule themselves
 * again, in nanoseconds per callback.  "resched" has one callback: the
 * fixed cost of a trip through a loop's deferred-callback machinery with
 * nothing else to do.  "resched-1000" has 1,000, so that each loop
 * iteration runs 1,000 callbacks: the cost per callback once the cost per
 * iteration is spread over them.  Single-threaded.
 */
#include "qemu/osdep.h"
#include "bench.h"

static int resched_run(const BenchScenario *sc, const BenchPeer *peer,
                       const BenchOptions *opt, double *out)
{
    BenchResched s = {
        .ncallbacks = sc->param,
        .iterations = opt->full ? 5000000 : 500000,
    };
    int ret;

    ret = peer->resched(&s);
    if (ret < 0) {
        return ret;
    }
    /* Those already scheduled may run after the target is reached. */
    if (s.count < s.iterations || s.count >= s.iterations + s.ncallbacks) {
        fprintf(stderr, "%s: %s ran %" PRIu64 " callbacks, not %" PRIu64
                "\n", peer->name, sc->name, s.count, s.iterations);
        return -EIO;
    }
    out[0] = (double)(s.t_end - s.t_start) / s.count;
    return 0;
}

const BenchScenario bench_scenario_resched = {
    .name = "resched",
    .unit = "ns/call",
    .kind = BENCH_RESCHED,
    .nmetrics = 1,
    .metric = { "" },
    .param = 1,
    .run = resched_run,
};

const BenchScenario bench_scenario_resched_1000 = {
    .name = "resched-1000",
    .unit = "ns/call",
    .kind = BENCH_RESCHED,
    .nmetrics = 1,
    .metric = { "" },
    .param = 1000,
    .run = resched_run,
};
