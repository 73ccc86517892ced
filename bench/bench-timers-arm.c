/*
 * bench/bench-timers-arm.c: scenario (d1), arming 1,000,000 timers (500,000
 * in the short version) at random deadlines and then cancelling them all,
 * in nanoseconds per arm + cancel pair.
 *
 * Deadlines are 1 to 1001 s away, so nothing fires and every peer keeps all
 * one million armed at the peak: the cost is the timer structure's insert
 * and remove at that size.  Initialising the timer objects is not timed
 * where a library lets a timer be re-armed; GLib cannot (a destroyed GSource
 * is gone), so there creating the source is part of arming.  Single-threaded.
 */
#include "qemu/osdep.h"
#include "bench.h"

static int timers_arm_run(const BenchScenario *sc, const BenchPeer *peer,
                          const BenchOptions *opt, double *out)
{
    BenchTimersArm s = {
        /* The short version keeps the run under a minute. */
        .n = opt->full ? 1000000 : 500000,
    };
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int ret;

    s.rel_ns = g_new(int64_t, s.n);
    for (size_t i = 0; i < s.n; i++) {
        /* Microsecond steps: distinct for the peers that round to ms too. */
        s.rel_ns[i] = INT64_C(1000000000) +
                      (int64_t)(bench_rand(&seed) % 1000000000) * 1000;
    }
    ret = peer->timers_arm(&s);
    if (ret == 0) {
        out[0] = (double)(s.t_end - s.t_start) / s.n;
    }
    g_free(s.rel_ns);
    return ret;
}

const BenchScenario bench_scenario_timers_arm = {
    .name = "timers-arm",
    .unit = "ns/pair",
    .kind = BENCH_TIMERS_ARM,
    .nmetrics = 1,
    .metric = { "" },
    .run = timers_arm_run,
};
