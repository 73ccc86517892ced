/*
 * bench/qaio-bench-loop.c: the event-loop benchmark driver.  Runs every
 * scenario for every peer built in, several times, and prints one table.
 *
 * Usage: qaio-bench-loop [--runs N] [--scenario LIST] [--peer LIST] [--full]
 *                        [--json FILE] [--list]
 *   (no options)     the short version: 3 runs of everything with every
 *                    peer built in, well under a minute on 2 cores
 *   --full           7 runs and bigger counts (what `make bench-peers` runs)
 *   --runs N         repetitions of each scenario for each peer
 *   --scenario LIST  comma-separated names or prefixes ("sockets", "timers")
 *   --peer LIST      comma-separated peers; the floor always runs, since the
 *                    ratios are to it
 *   --json FILE      also write every sample to FILE (see bench/results/)
 *   --list           print the scenarios and peers with their primitives
 *
 * Reading the table: "median" is the median of the runs, "min..max" their
 * spread, "x floor" the median divided by the floor's median for the same
 * scenario in the same invocation.  Runs are interleaved (run 1 of every
 * peer, then run 2, ...), starting from a different peer each time, so slow
 * drifts of the machine hit every peer alike.  Run it on an otherwise idle
 * machine: with 2 cores anything else running shows up as noise, most of
 * all in pingpong-poll (both threads spin) and timers-late.  Peers (libuv,
 * libev, libevent) are optional at build time: `make bench-peers` installs
 * them.
 *
 * Threading: single-threaded; peers start and join their own threads.
 */
#include "qemu/osdep.h"
#include <getopt.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include "bench.h"

static const BenchPeer *const peers[] = {
    &bench_peer_floor,      /* first: the ratios need it */
#ifdef HAVE_QAIO
    &bench_peer_qaio,
#endif
#ifdef HAVE_LIBUV
    &bench_peer_libuv,
#endif
#ifdef HAVE_LIBEV
    &bench_peer_libev,
#endif
#ifdef HAVE_LIBEVENT
    &bench_peer_libevent,
#endif
    &bench_peer_glib,
};

static const BenchScenario *const scenarios[] = {
    &bench_scenario_resched,
    &bench_scenario_resched_1000,
    &bench_scenario_pingpong,
    &bench_scenario_pingpong_poll,
    &bench_scenario_sockets_100,
    &bench_scenario_sockets_1000,
    &bench_scenario_sockets_10000,
    &bench_scenario_timers_arm,
    &bench_scenario_timers_late,
};

#define NPEERS ARRAY_SIZE(peers)

typedef struct Row {
    const BenchScenario *sc;
    const BenchPeer *peer;
    int metric;
    int nvalues;
    double *values;
    double median, min, max, ratio;     /* ratio < 0: none */
    bool failed;
} Row;

static GArray *rows;
static unsigned long timerslack_ns;

int bench_fail(const char *peer, const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", peer, what, strerror(err));
    return -err;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void row_stats(Row *r)
{
    int n = r->nvalues;
    double *v = g_new(double, n);

    memcpy(v, r->values, n * sizeof(double));

    qsort(v, n, sizeof(double), cmp_double);
    r->min = v[0];
    r->max = v[n - 1];
    r->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    g_free(v);
}

static bool is_scenario_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++) {
        if (!strcmp(scenarios[i]->name, name)) {
            return true;
        }
    }
    return false;
}

/*
 * Is @name in the comma-separated @list (NULL: everything)?  With @prefix,
 * an item that is not itself a scenario name also selects every scenario
 * it begins, so that "sockets" means all three but "sockets-100" only one.
 */
static bool name_in_list(const char *name, const char *list, bool prefix)
{
    g_auto(GStrv) items = NULL;

    if (!list) {
        return true;
    }
    items = g_strsplit(list, ",", -1);
    for (int i = 0; items[i]; i++) {
        if (!strcmp(items[i], name) ||
            (prefix && items[i][0] && !is_scenario_name(items[i]) &&
             g_str_has_prefix(name, items[i]))) {
            return true;
        }
    }
    return false;
}

static bool list_is_known(const char *list, bool scenario)
{
    g_auto(GStrv) items = NULL;
    bool ok = true;

    if (!list) {
        return true;
    }
    items = g_strsplit(list, ",", -1);
    for (int i = 0; items[i]; i++) {
        bool found = false;

        if (scenario) {
            for (size_t j = 0; j < ARRAY_SIZE(scenarios); j++) {
                found |= name_in_list(scenarios[j]->name, items[i], true);
            }
        } else {
            for (size_t j = 0; j < NPEERS; j++) {
                found |= !strcmp(peers[j]->name, items[i]);
            }
        }
        if (!found) {
            fprintf(stderr, "qaio-bench-loop: unknown or unbuilt %s '%s' "
                    "(see --list)\n", scenario ? "scenario" : "peer",
                    items[i]);
            ok = false;
        }
    }
    return ok;
}

/* sockets-10000 needs 10,000 descriptors and a few more. */
static void raise_nofile(void)
{
    const rlim_t want = 10000 + 256;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        return;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        struct rlimit more = { .rlim_cur = want, .rlim_max = want };

        /* Only with CAP_SYS_RESOURCE; otherwise the hard limit stands. */
        if (setrlimit(RLIMIT_NOFILE, &more) == 0) {
            return;
        }
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static const char *fmt_value(char *buf, size_t len, double v)
{
    double a = v < 0 ? -v : v;

    snprintf(buf, len, a < 10 ? "%.2f" : a < 1000 ? "%.1f" : "%.0f", v);
    return buf;
}

static void print_header(const BenchOptions *opt, int runs)
{
    printf("qaio-bench-loop: %s version, %d run%s each; median, spread "
           "(min..max) and ratio to the floor's median, same runs\n\n",
           opt->full ? "full" : "short", runs, runs == 1 ? "" : "s");
    printf("%-18s %-9s %-31s %10s %-8s %21s %8s\n", "scenario", "peer",
           "primitive", "median", "unit", "min..max", "x floor");
    fflush(stdout);
}

static void print_row(const Row *r)
{
    char name[64], med[32], lo[32], hi[32], spread[80], ratio[32];

    snprintf(name, sizeof(name), "%s%s%s", r->sc->name,
             r->sc->metric[r->metric][0] ? " " : "",
             r->sc->metric[r->metric]);
    if (r->failed) {
        printf("%-18s %-9s %-31s %10s\n", name, r->peer->name,
               r->peer->how[r->sc->kind], "failed");
        return;
    }
    snprintf(spread, sizeof(spread), "%s..%s",
             fmt_value(lo, sizeof(lo), r->min),
             fmt_value(hi, sizeof(hi), r->max));
    if (r->ratio >= 0) {
        snprintf(ratio, sizeof(ratio), "%.2f", r->ratio);
    } else {
        snprintf(ratio, sizeof(ratio), "-");
    }
    printf("%-18s %-9s %-31s %10s %-8s %21s %8s\n", name, r->peer->name,
           r->peer->how[r->sc->kind], fmt_value(med, sizeof(med), r->median),
           r->sc->unit, spread, ratio);
}

static void run_scenario(const BenchScenario *sc, const char *peer_list,
                         const BenchOptions *opt, int runs)
{
    const BenchPeer *sel[NPEERS];
    double vals[NPEERS][BENCH_MAX_METRICS][runs];
    bool failed[NPEERS] = { false };
    int n = 0;

    for (size_t i = 0; i < NPEERS; i++) {
        if (peers[i]->how[sc->kind] &&
            (peers[i] == &bench_peer_floor ||
             name_in_list(peers[i]->name, peer_list, false))) {
            sel[n++] = peers[i];
        }
    }
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < n; k++) {
            int p = (k + r) % n;
            double out[BENCH_MAX_METRICS] = { 0 };

            if (failed[p]) {
                continue;
            }
            /* A peer may lower its thread's timer slack; undo that. */
            prctl(PR_SET_TIMERSLACK, timerslack_ns, 0UL, 0UL, 0UL);
            if (sc->run(sc, sel[p], opt, out) < 0) {
                fprintf(stderr, "qaio-bench-loop: %s failed for %s\n",
                        sc->name, sel[p]->name);
                failed[p] = true;
                continue;
            }
            for (int m = 0; m < sc->nmetrics; m++) {
                vals[p][m][r] = out[m];
            }
        }
    }
    prctl(PR_SET_TIMERSLACK, timerslack_ns, 0UL, 0UL, 0UL);

    for (int m = 0; m < sc->nmetrics; m++) {
        size_t first = rows->len;

        for (int p = 0; p < n; p++) {
            Row r = {
                .sc = sc, .peer = sel[p], .metric = m, .nvalues = runs,
                .failed = failed[p], .ratio = -1,
            };

            if (!r.failed) {
                r.values = g_new(double, runs);
                memcpy(r.values, vals[p][m], runs * sizeof(double));
                row_stats(&r);
            }
            g_array_append_val(rows, r);
        }
        /* The floor is sel[0] whenever it implements the scenario. */
        for (int p = 0; p < n; p++) {
            Row *r = &g_array_index(rows, Row, first + p);
            Row *floor = &g_array_index(rows, Row, first);

            if (!r->failed && floor->peer == &bench_peer_floor &&
                !floor->failed && floor->median != 0) {
                r->ratio = r->median / floor->median;
            }
            print_row(r);
        }
    }
    fflush(stdout);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', f);
        }
        if ((unsigned char)*s >= 0x20) {
            fputc(*s, f);
        }
    }
    fputc('"', f);
}

static char *cpu_model(void)
{
    g_autofree char *info = NULL;
    g_auto(GStrv) lines = NULL;

    if (g_file_get_contents("/proc/cpuinfo", &info, NULL, NULL)) {
        lines = g_strsplit(info, "\n", -1);
        for (int i = 0; lines[i]; i++) {
            if (g_str_has_prefix(lines[i], "model name")) {
                char *colon = strchr(lines[i], ':');

                if (colon) {
                    return g_strstrip(g_strdup(colon + 1));
                }
            }
        }
    }
    return g_strdup("unknown");
}

static int write_json(const char *path, const BenchOptions *opt, int runs)
{
    g_autofree char *cpu = cpu_model();
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *date = g_date_time_format_iso8601(now);
    /* Write beside and rename, so an interrupted run leaves only a .tmp. */
    g_autofree char *tmp = g_strdup_printf("%s.tmp", path);
    struct utsname uts;
    FILE *f = fopen(tmp, "w");

    if (!f) {
        fprintf(stderr, "qaio-bench-loop: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    uname(&uts);
    fprintf(f, "{\n  \"tool\": \"qaio-bench-loop\",\n  \"version\": ");
    json_str(f, QAIO_VERSION);
    fprintf(f, ",\n  \"date\": ");
    json_str(f, date);
    fprintf(f, ",\n  \"full\": %s,\n  \"runs\": %d,\n",
            opt->full ? "true" : "false", runs);
    fprintf(f, "  \"machine\": {\"cpus\": %ld, \"cpu\": ",
            sysconf(_SC_NPROCESSORS_ONLN));
    json_str(f, cpu);
    fprintf(f, ", \"kernel\": ");
    json_str(f, uts.release);
    fprintf(f, ", \"compiler\": ");
#ifdef __clang__
    json_str(f, __VERSION__);
#else
    json_str(f, "gcc " __VERSION__);
#endif
    fprintf(f, "},\n  \"results\": [");
    for (guint i = 0; i < rows->len; i++) {
        const Row *r = &g_array_index(rows, Row, i);

        fprintf(f, "%s\n    {\"scenario\": ", i ? "," : "");
        json_str(f, r->sc->name);
        fprintf(f, ", \"metric\": ");
        json_str(f, r->sc->metric[r->metric]);
        fprintf(f, ", \"unit\": ");
        json_str(f, r->sc->unit);
        fprintf(f, ", \"peer\": ");
        json_str(f, r->peer->name);
        fprintf(f, ", \"primitive\": ");
        json_str(f, r->peer->how[r->sc->kind]);
        if (r->failed) {
            fprintf(f, ", \"failed\": true}");
            continue;
        }
        fprintf(f, ", \"median\": %.6g, \"min\": %.6g, \"max\": %.6g, "
                "\"ratio_to_floor\": ", r->median, r->min, r->max);
        if (r->ratio >= 0) {
            fprintf(f, "%.4g", r->ratio);
        } else {
            fprintf(f, "null");
        }
        fprintf(f, ", \"values\": [");
        for (int v = 0; v < r->nvalues; v++) {
            fprintf(f, "%s%.6g", v ? ", " : "", r->values[v]);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "qaio-bench-loop: %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void list(void)
{
    static const char *const kind_name[BENCH_KIND_MAX] = {
        [BENCH_RESCHED] = "resched*",
        [BENCH_PINGPONG] = "pingpong",
        [BENCH_PINGPONG_POLL] = "pingpong-poll",
        [BENCH_SOCKETS] = "sockets-*",
        [BENCH_TIMERS_ARM] = "timers-arm",
        [BENCH_TIMERS_LATE] = "timers-late",
    };

    printf("scenarios:");
    for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++) {
        printf(" %s", scenarios[i]->name);
    }
    printf("\npeers built in, with the primitive each uses:\n");
    for (size_t i = 0; i < NPEERS; i++) {
        printf("  %s\n", peers[i]->name);
        for (int k = 0; k < BENCH_KIND_MAX; k++) {
            printf("    %-15s %s\n", kind_name[k],
                   peers[i]->how[k] ? peers[i]->how[k] : "-");
        }
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: qaio-bench-loop [--runs N] [--scenario LIST] "
            "[--peer LIST] [--full]\n"
            "                       [--json FILE] [--list]\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "runs", required_argument, NULL, 'r' },
        { "scenario", required_argument, NULL, 's' },
        { "peer", required_argument, NULL, 'p' },
        { "full", no_argument, NULL, 'f' },
        { "json", required_argument, NULL, 'j' },
        { "list", no_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    BenchOptions opt = { 0 };
    const char *scenario_list = NULL, *peer_list = NULL, *json = NULL;
    int runs = 0;
    int c;

    while ((c = getopt_long(argc, argv, "r:s:p:fj:lh", longopts, NULL)) != -1) {
        char *end;

        switch (c) {
        case 'r':
            runs = strtol(optarg, &end, 10);
            if (*end || runs < 1 || runs > 1000) {
                fprintf(stderr, "qaio-bench-loop: --runs wants 1..1000, "
                        "not '%s'\n", optarg);
                return 2;
            }
            break;
        case 's':
            scenario_list = optarg;
            break;
        case 'p':
            peer_list = optarg;
            break;
        case 'f':
            opt.full = true;
            break;
        case 'j':
            json = optarg;
            break;
        case 'l':
            list();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qaio-bench-loop: unexpected argument '%s'\n",
                argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!list_is_known(scenario_list, true) ||
        !list_is_known(peer_list, false)) {
        return 2;
    }
    if (!runs) {
        runs = opt.full ? 7 : 3;
    }

    raise_nofile();
    timerslack_ns = prctl(PR_GET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);
    rows = g_array_new(FALSE, TRUE, sizeof(Row));

    print_header(&opt, runs);
    for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++) {
        if (name_in_list(scenarios[i]->name, scenario_list, true)) {
            run_scenario(scenarios[i], peer_list, &opt, runs);
        }
    }
    if (json && write_json(json, &opt, runs) < 0) {
        return 1;
    }
    for (guint i = 0; i < rows->len; i++) {
        g_free(g_array_index(rows, Row, i).values);
    }
    g_array_free(rows, TRUE);
    return 0;
}
