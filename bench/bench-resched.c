/*
 * bench/bench-resched.c: scenario (a), a callback that schedules itself
 * again, in nanoseconds per iteration.
 *
 * It measures the fixed cost of one trip through a loop's deferred-callback
 * machinery with nothing else to do.  Single-threaded.
 */
#include "qemu/osdep.h"
#include "bench.h"

static int resched_run(const BenchScenario *sc, const BenchPeer *peer,
                       const BenchOptions *opt, double *out)
{
    BenchResched s = {
        .iterations = opt->full ? 10000000 : 1000000,
    };
    int ret;

    ret = peer->resched(&s);
    if (ret < 0) {
        return ret;
    }
    if (s.count != s.iterations) {
        fprintf(stderr, "%s: resched ran %" PRIu64 " callbacks, not %"
                PRIu64 "\n", peer->name, s.count, s.iterations);
        return -EIO;
    }
    out[0] = (double)(s.t_end - s.t_start) / s.count;
    return 0;
}

const BenchScenario bench_scenario_resched = {
    .name = "resched",
    .unit = "ns/iter",
    .kind = BENCH_RESCHED,
    .nmetrics = 1,
    .metric = { "" },
    .run = resched_run,
};
