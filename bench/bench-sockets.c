/*
 * bench/bench-sockets.c: scenario (c), the classic libevent "bench"
 * workload, in nanoseconds per event (per read callback).
 *
 * N sockets (100, 1,000, 10,000) are all watched for reading; 100 of them,
 * spread evenly, get a byte; every read callback reads one byte and, while
 * writes remain, sends one byte that makes the next socket readable; 10,000
 * writes in all.  As in libevent's test/bench.c the loop runs non-blocking
 * iterations until every byte written has been read, and registering the
 * watchers is not timed: each peer runs one non-blocking iteration before
 * the first byte is sent, because libev, libuv and qaio (when it switches
 * to epoll) only tell the kernel about new fds when the loop next runs, and
 * 10,000 epoll_ctl calls would otherwise be charged to the events.  It
 * measures what a loop costs per ready fd when most of its fds are idle.
 * Single-threaded.
 *
 * One difference from test/bench.c, which watches one end of each of N
 * socket pairs: here both ends of N/2 AF_UNIX stream pairs are watched, and
 * a byte for socket i is sent from its peer.  The loop sees the same thing
 * (N watched sockets, a byte arriving on one), but it takes N descriptors
 * instead of 2N: 10,000 pairs would need 20,000 and more, and machines
 * whose RLIMIT_NOFILE hard limit is 20,000 (the driver raises the soft
 * limit to the hard one) could not run it.  Fresh sockets for every run.
 */
#include "qemu/osdep.h"
#include <sys/socket.h>
#include "bench.h"

static void send_to(BenchSockets *s, int idx)
{
    /* Writing to a socket makes its peer readable. */
    if (send(s->fds[idx ^ 1], "e", 1, 0) != 1) {
        s->failures++;
    }
}

void bench_sockets_start(BenchSockets *s)
{
    int space = s->nsockets / s->active;

    s->fired = 0;
    s->count = 0;
    s->failures = 0;
    s->writes_left = s->writes;
    for (int i = 0; i < s->active; i++) {
        send_to(s, i * space);
        s->fired++;
    }
    s->t_start = bench_now_ns();
}

void bench_sockets_readable(BenchSocketsFd *f)
{
    BenchSockets *s = f->s;
    unsigned char ch;

    if (recv(f->fd, &ch, 1, 0) == 1) {
        s->count++;
    } else {
        s->failures++;
    }
    if (s->writes_left > 0) {
        send_to(s, f->idx + 1 == s->nsockets ? 0 : f->idx + 1);
        s->writes_left--;
        s->fired++;
    }
}

static int sockets_run(const BenchScenario *sc, const BenchPeer *peer,
                       const BenchOptions *opt, double *out)
{
    BenchSockets s = {
        .nsockets = sc->param,
        .active = 100,
        .writes = 10000,
    };
    int opened = 0;
    int ret = 0;

    s.fds = g_new(int, s.nsockets);
    s.reader = g_new0(BenchSocketsFd, s.nsockets);
    for (int i = 0; i < s.nsockets; i += 2) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       &s.fds[i]) < 0) {
            ret = bench_fail(peer->name, "socketpair", errno);
            goto out;
        }
        opened += 2;
    }
    for (int i = 0; i < s.nsockets; i++) {
        s.reader[i] = (BenchSocketsFd) { .s = &s, .idx = i, .fd = s.fds[i] };
    }

    ret = peer->sockets(&s);
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
    for (int i = 0; i < opened; i++) {
        close(s.fds[i]);
    }
    g_free(s.fds);
    g_free(s.reader);
    return ret;
}

#define SOCKETS(n)                                      \
    const BenchScenario bench_scenario_sockets_##n = {  \
        .name = "sockets-" #n,                          \
        .unit = "ns/event",                             \
        .kind = BENCH_SOCKETS,                          \
        .nmetrics = 1,                                  \
        .metric = { "" },                               \
        .param = n,                                     \
        .run = sockets_run,                             \
    }

SOCKETS(100);
SOCKETS(1000);
SOCKETS(10000);
