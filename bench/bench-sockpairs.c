/*
 * bench/bench-sockpairs.c: scenario (c), the classic libevent "bench"
 * workload, in nanoseconds per event (per read callback).
 *
 * @npairs AF_UNIX stream socket pairs are all watched for reading; 100 of
 * them, spread evenly, get a byte; every read callback reads one byte and,
 * while writes remain, writes one byte to the next pair; 10,000 writes in
 * all.  As in libevent's test/bench.c the loop runs non-blocking iterations
 * until every byte written has been read, and registering the watchers is
 * not timed.  It measures what a loop costs per ready fd when most of its
 * fds are idle.  Single-threaded.
 *
 * Fresh socket pairs for every run: 10,000 pairs need 20,000 descriptors,
 * which is why the driver raises RLIMIT_NOFILE.
 */
#include "qemu/osdep.h"
#include <sys/socket.h>
#include "bench.h"

void bench_sockpairs_start(BenchSockpairs *s)
{
    int space = s->npairs / s->active;

    s->fired = 0;
    s->count = 0;
    s->failures = 0;
    s->writes_left = s->writes;
    for (int i = 0; i < s->active; i++) {
        if (send(s->fds[2 * (i * space) + 1], "e", 1, 0) != 1) {
            s->failures++;
        }
        s->fired++;
    }
    s->t_start = bench_now_ns();
}

void bench_sockpairs_readable(BenchSockpairsFd *f)
{
    BenchSockpairs *s = f->s;
    unsigned char ch;
    int next;

    if (recv(f->fd, &ch, 1, 0) == 1) {
        s->count++;
    } else {
        s->failures++;
    }
    if (s->writes_left > 0) {
        next = f->idx + 1 == s->npairs ? 0 : f->idx + 1;
        if (send(s->fds[2 * next + 1], "e", 1, 0) != 1) {
            s->failures++;
        }
        s->writes_left--;
        s->fired++;
    }
}

static void sockpairs_close(BenchSockpairs *s, int opened)
{
    for (int i = 0; i < opened; i++) {
        close(s->fds[i]);
    }
    g_free(s->fds);
    g_free(s->reader);
}

static int sockpairs_run(const BenchScenario *sc, const BenchPeer *peer,
                         const BenchOptions *opt, double *out)
{
    BenchSockpairs s = {
        .npairs = sc->param,
        .active = 100,
        .writes = 10000,
    };
    int opened = 0;
    int ret = 0;

    s.fds = g_new(int, 2 * s.npairs);
    s.reader = g_new0(BenchSockpairsFd, s.npairs);
    for (int i = 0; i < s.npairs; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       &s.fds[2 * i]) < 0) {
            ret = bench_fail(peer->name, "socketpair", errno);
            goto out;
        }
        opened += 2;
        s.reader[i] = (BenchSockpairsFd) {
            .s = &s, .idx = i, .fd = s.fds[2 * i],
        };
    }

    ret = peer->sockpairs(&s);
    if (ret < 0) {
        goto out;
    }
    if (s.failures || s.count != s.active + s.writes) {
        fprintf(stderr, "%s: %s read %d bytes (%d failures), not %d\n",
                peer->name, sc->name, s.count, s.failures,
                s.active + s.writes);
        ret = -EIO;
        goto out;
    }
    out[0] = (double)(s.t_end - s.t_start) / s.count;
out:
    sockpairs_close(&s, opened);
    return ret;
}

#define SOCKPAIRS(n)                                    \
    const BenchScenario bench_scenario_sockpairs_##n = {  \
        .name = "sockpairs-" #n,                        \
        .unit = "ns/event",                             \
        .kind = BENCH_SOCKPAIRS,                        \
        .nmetrics = 1,                                  \
        .metric = { "" },                               \
        .param = n,                                     \
        .run = sockpairs_run,                           \
    }

SOCKPAIRS(100);
SOCKPAIRS(1000);
SOCKPAIRS(10000);
