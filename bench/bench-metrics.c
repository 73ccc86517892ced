/*
 * bench/bench-metrics.c: what the always-on loop counters (qaio/metrics.h)
 * cost.  Built twice from this file: bench-metrics against libqaio, and
 * bench-metrics-off against the same sources compiled with
 * -DQAIO_DISABLE_METRICS.  Run without arguments, bench-metrics runs both
 * builds as children, alternating, and prints the median of each, the
 * spread, and their ratio.
 *
 * Workloads, both chosen to make the counters as expensive as they can be
 * relative to the work:
 *   resched: a BH that reschedules itself (an iteration and a BH call are
 *            counted per round, and nothing else happens);
 *   wake:    a same-thread eventfd write followed by aio_poll(ctx, true),
 *            a blocking wait that returns at once (two clock reads for
 *            the blocked-time counter per round, against three syscalls).
 *
 * Usage: bench-metrics [--runs N]      (default 7)
 *        bench-metrics[-off] --child   one measurement: "resched wake" ns
 *
 * Threading: single-threaded.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/timer.h"

#define RESCHED_ROUNDS 2000000
#define WAKE_ROUNDS 200000

static QEMUBH *resched_bh;

static int64_t now_ns(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

static void resched_cb(void *opaque)
{
    qemu_bh_schedule(resched_bh);
}

static double bench_resched(AioContext *ctx)
{
    int64_t start;
    int i;

    resched_bh = aio_bh_new(ctx, resched_cb, NULL);
    qemu_bh_schedule(resched_bh);
    start = now_ns();
    for (i = 0; i < RESCHED_ROUNDS; i++) {
        aio_poll(ctx, false);
    }
    start = now_ns() - start;
    qemu_bh_delete(resched_bh);
    aio_poll(ctx, false);
    return (double)start / RESCHED_ROUNDS;
}

static void wake_read(EventNotifier *e)
{
    event_notifier_test_and_clear(e);
}

static double bench_wake(AioContext *ctx)
{
    EventNotifier e;
    int64_t start;
    int i;

    if (event_notifier_init(&e, false) < 0) {
        fprintf(stderr, "bench-metrics: cannot create an eventfd\n");
        exit(1);
    }
    aio_set_event_notifier(ctx, &e, wake_read, NULL, NULL);
    aio_poll(ctx, false);
    start = now_ns();
    for (i = 0; i < WAKE_ROUNDS; i++) {
        event_notifier_set(&e);
        aio_poll(ctx, true);
    }
    start = now_ns() - start;
    aio_set_event_notifier(ctx, &e, NULL, NULL, NULL);
    event_notifier_cleanup(&e);
    return (double)start / WAKE_ROUNDS;
}

static int child(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    double resched = bench_resched(ctx);
    double wake = bench_wake(ctx);

    printf("%.3f %.3f\n", resched, wake);
    aio_context_unref(ctx);
    return 0;
}

/* Run @path --child and parse its two figures. */
static void run_child(const char *path, double *resched, double *wake)
{
    char *cmd = g_strdup_printf("'%s' --child", path);
    FILE *p = popen(cmd, "r");

    if (!p || fscanf(p, "%lf %lf", resched, wake) != 2 || pclose(p) != 0) {
        fprintf(stderr, "bench-metrics: %s failed\n", cmd);
        exit(1);
    }
    g_free(cmd);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    g_autofree char *self = NULL;
    g_autofree char *off = NULL;
    double on_r[64], on_w[64], off_r[64], off_w[64];
    double mr_on, mr_off, mw_on, mw_off;
    int runs = 7;
    int i;

    if (argc == 2 && !strcmp(argv[1], "--child")) {
        return child();
    }
    if (argc == 3 && !strcmp(argv[1], "--runs")) {
        runs = atoi(argv[2]);
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench-metrics [--runs N]\n");
        return 2;
    }
    if (runs < 1 || runs > 64) {
        fprintf(stderr, "bench-metrics: --runs must be 1..64\n");
        return 2;
    }

    self = g_file_read_link("/proc/self/exe", NULL);
    if (!self) {
        fprintf(stderr, "bench-metrics: cannot find its own path\n");
        return 1;
    }
    off = g_strconcat(self, "-off", NULL);

    /* Alternate which build goes first, so drifts hit both alike. */
    for (i = 0; i < runs; i++) {
        if (i % 2) {
            run_child(off, &off_r[i], &off_w[i]);
            run_child(self, &on_r[i], &on_w[i]);
        } else {
            run_child(self, &on_r[i], &on_w[i]);
            run_child(off, &off_r[i], &off_w[i]);
        }
    }

    mr_on = median(on_r, runs);         /* sorts too: [0] is the min */
    mr_off = median(off_r, runs);
    mw_on = median(on_w, runs);
    mw_off = median(off_w, runs);
    printf("loop counters (qaio/metrics.h): cost, %d runs of each build, "
           "ns per round\n", runs);
    printf("%-8s %9s %9s %8s   %-19s %-19s %s\n", "workload", "on", "off",
           "on/off", "on min..max", "off min..max", "min on/off");
    printf("%-8s %9.2f %9.2f %8.3f   %8.2f..%-9.2f %8.2f..%-9.2f %.3f\n",
           "resched", mr_on, mr_off, mr_on / mr_off, on_r[0], on_r[runs - 1],
           off_r[0], off_r[runs - 1], on_r[0] / off_r[0]);
    printf("%-8s %9.2f %9.2f %8.3f   %8.2f..%-9.2f %8.2f..%-9.2f %.3f\n",
           "wake", mw_on, mw_off, mw_on / mw_off, on_w[0], on_w[runs - 1],
           off_w[0], off_w[runs - 1], on_w[0] / off_w[0]);
    printf("(medians; \"min on/off\" compares the least disturbed runs, "
           "the better estimate on a busy machine)\n");
    return 0;
}
