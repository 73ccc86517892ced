/*
 * bench/bench-pingpong.c: scenario (b), two threads with a loop each
 * bouncing a wake-up back and forth, in nanoseconds per round trip.
 *
 * "pingpong" wakes the other loop through the kernel (qaio with busy
 * polling off; the floor is a bare eventfd ping-pong); "pingpong-poll"
 * lets the loops busy-poll (qaio with adaptive polling on; the floor is an
 * atomic spin ping-pong).  The peer creates the second thread; the calling
 * thread is A.
 */
#include "qemu/osdep.h"
#include "bench.h"

static int pingpong_run(const BenchScenario *sc, const BenchPeer *peer,
                        const BenchOptions *opt, double *out)
{
    BenchPingpong s = {
        .round_trips = opt->full ? 100000 : 10000,
    };
    int ret;

    if (sc->kind == BENCH_PINGPONG_POLL) {
        /* Spinning is cheap: give the median more samples. */
        s.round_trips *= 5;
        ret = peer->pingpong_poll(&s);
    } else {
        ret = peer->pingpong(&s);
    }
    if (ret < 0) {
        return ret;
    }
    if (s.count != s.round_trips || s.hops_b != s.round_trips) {
        fprintf(stderr, "%s: %s did %" PRIu64 "/%" PRIu64 " round trips, "
                "not %" PRIu64 "\n", peer->name, sc->name, s.count, s.hops_b,
                s.round_trips);
        return -EIO;
    }
    out[0] = (double)(s.t_end - s.t_start) / s.count;
    return 0;
}

const BenchScenario bench_scenario_pingpong = {
    .name = "pingpong",
    .unit = "ns/rt",
    .kind = BENCH_PINGPONG,
    .nmetrics = 1,
    .metric = { "" },
    .run = pingpong_run,
};

const BenchScenario bench_scenario_pingpong_poll = {
    .name = "pingpong-poll",
    .unit = "ns/rt",
    .kind = BENCH_PINGPONG_POLL,
    .nmetrics = 1,
    .metric = { "" },
    .run = pingpong_run,
};
