/*
 * bench/bench-timers-late.c: scenario (d2), 100,000 timers due at random
 * times spread uniformly over 200 ms: mean and 99th percentile lateness
 * (firing time minus due time), in microseconds.
 *
 * The first deadline is 100 ms after the start so that every peer can arm
 * all timers before any is due; a peer that takes longer gets a warning,
 * since its early timers are then late by construction.  Single-threaded.
 */
#include "qemu/osdep.h"
#include "bench.h"

void bench_timers_late_start(BenchTimersLate *s)
{
    s->t_start = bench_now_ns();
    for (size_t i = 0; i < s->n; i++) {
        s->due_ns[i] = s->t_start + s->lead_ns + s->offset_ns[i];
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int timers_late_run(const BenchScenario *sc, const BenchPeer *peer,
                           const BenchOptions *opt, double *out)
{
    BenchTimersLate s = {
        .n = 100000,
        .span_ns = 200 * INT64_C(1000000),
        .lead_ns = 100 * INT64_C(1000000),
    };
    uint64_t seed = 0x2545f4914f6cdd1dull;
    double sum = 0;
    int ret;

    s.offset_ns = g_new(int64_t, s.n);
    s.due_ns = g_new(int64_t, s.n);
    s.late_ns = g_new(int64_t, s.n);
    for (size_t i = 0; i < s.n; i++) {
        s.offset_ns[i] = bench_rand(&seed) % s.span_ns;
        s.late_ns[i] = INT64_MIN;
    }

    ret = peer->timers_late(&s);
    if (ret < 0) {
        goto out;
    }
    if (s.fired != s.n || s.dup) {
        fprintf(stderr, "%s: %s fired %zu timers (%zu twice), not %zu\n",
                peer->name, sc->name, s.fired, s.dup, s.n);
        ret = -EIO;
        goto out;
    }
    if (s.t_armed - s.t_start > s.lead_ns) {
        fprintf(stderr, "%s: %s: arming took %.1f ms, more than the %.0f ms "
                "lead; early timers are late by construction\n", peer->name,
                sc->name, (s.t_armed - s.t_start) / 1e6, s.lead_ns / 1e6);
    }
    for (size_t i = 0; i < s.n; i++) {
        sum += s.late_ns[i];
    }
    qsort(s.late_ns, s.n, sizeof(s.late_ns[0]), cmp_i64);
    out[0] = sum / s.n / 1000.0;
    out[1] = s.late_ns[(s.n * 99) / 100] / 1000.0;
out:
    g_free(s.offset_ns);
    g_free(s.due_ns);
    g_free(s.late_ns);
    return ret;
}

const BenchScenario bench_scenario_timers_late = {
    .name = "timers-late",
    .unit = "us",
    .kind = BENCH_TIMERS_LATE,
    .nmetrics = 2,
    .metric = { "mean", "p99" },
    .run = timers_late_run,
};
