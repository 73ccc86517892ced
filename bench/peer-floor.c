/*
 * bench/peer-floor.c: the floors, each scenario done without any library,
 * as the least code that does the same work; every other peer's ratio is
 * to these, measured in the same run.
 *
 *   resched        a call through a function pointer guarded by a flag,
 *                  in a loop over the callbacks
 *   pingpong       two threads, two eventfds, blocking read() then write():
 *                  two system calls per hop, the least a kernel wake-up costs
 *   pingpong-poll  two threads spinning on an atomic flag each
 *   sockets      epoll_wait with a zero timeout, one callback per event
 *   timers-arm     an indexed binary min-heap, insert then remove
 *   timers-late    the same heap, sleeping in ppoll until the earliest
 *                  deadline, with the thread's timer slack at 1 ns (the
 *                  default 50 us slack would dominate the result)
 *
 * Threading: the ping-pongs create their second thread and join it before
 * returning; everything else runs in the caller's thread.
 */
#include "qemu/osdep.h"
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include "bench.h"

/* (a) */

typedef struct FloorCb FloorCb;
struct FloorCb {
    void (*fn)(FloorCb *cb);
    BenchResched *s;
    bool pending;
};

static QEMU_NO_INLINE void floor_resched_cb(FloorCb *cb)
{
    if (bench_resched_step(cb->s)) {
        cb->pending = true;
    }
}

static int floor_resched(BenchResched *s)
{
    FloorCb *cb = g_new(FloorCb, s->ncallbacks);

    for (unsigned i = 0; i < s->ncallbacks; i++) {
        cb[i] = (FloorCb) { .fn = floor_resched_cb, .s = s, .pending = true };
    }
    s->t_start = bench_now_ns();
    while (!bench_resched_done(s)) {
        for (unsigned i = 0; i < s->ncallbacks; i++) {
            if (cb[i].pending) {
                void (*fn)(FloorCb *) = cb[i].fn;

                cb[i].pending = false;
                /* Hide the target so that the call stays an indirect one. */
                __asm__ volatile("" : "+r"(fn));
                fn(&cb[i]);
            }
        }
    }
    s->t_end = bench_now_ns();
    g_free(cb);
    return 0;
}

/* (b) */

typedef struct FloorPingpong {
    BenchPingpong *s;
    int efd_a, efd_b;
    /* spin flags on separate cache lines, as each has one writer per hop */
    unsigned turn_a QEMU_ALIGNED(64);
    unsigned turn_b QEMU_ALIGNED(64);
} FloorPingpong;

static int efd_wait(int fd)
{
    uint64_t v;

    return RETRY_ON_EINTR(read(fd, &v, sizeof(v))) == sizeof(v) ? 0 : -1;
}

static int efd_kick(int fd)
{
    uint64_t one = 1;

    return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : -1;
}

static void *floor_efd_b(void *opaque)
{
    FloorPingpong *pp = opaque;

    while (efd_wait(pp->efd_b) == 0 && bench_pingpong_b(pp->s)) {
        efd_kick(pp->efd_a);
    }
    return NULL;
}

static int floor_pingpong(BenchPingpong *s)
{
    FloorPingpong pp = { .s = s };
    pthread_t tb;
    int ret = 0;

    pp.efd_a = eventfd(0, EFD_CLOEXEC);
    pp.efd_b = eventfd(0, EFD_CLOEXEC);
    if (pp.efd_a < 0 || pp.efd_b < 0) {
        ret = bench_fail("floor", "eventfd", errno);
        goto out;
    }
    ret = -pthread_create(&tb, NULL, floor_efd_b, &pp);
    if (ret < 0) {
        bench_fail("floor", "pthread_create", -ret);
        goto out;
    }
    s->t_start = bench_now_ns();
    efd_kick(pp.efd_b);
    while (efd_wait(pp.efd_a) == 0) {
        bool more = bench_pingpong_a(s);

        efd_kick(pp.efd_b);
        if (!more) {
            break;
        }
    }
    s->t_end = bench_now_ns();
    pthread_join(tb, NULL);
out:
    if (pp.efd_a >= 0) {
        close(pp.efd_a);
    }
    if (pp.efd_b >= 0) {
        close(pp.efd_b);
    }
    return ret;
}

static void spin_wait(unsigned *flag)
{
    while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
        bench_cpu_relax();
    }
    __atomic_store_n(flag, 0, __ATOMIC_RELAXED);
}

static void spin_kick(unsigned *flag)
{
    /* Pairs with the acquire load in spin_wait. */
    __atomic_store_n(flag, 1, __ATOMIC_RELEASE);
}

static void *floor_spin_b(void *opaque)
{
    FloorPingpong *pp = opaque;

    for (;;) {
        spin_wait(&pp->turn_b);
        if (!bench_pingpong_b(pp->s)) {
            break;
        }
        spin_kick(&pp->turn_a);
    }
    return NULL;
}

static int floor_pingpong_poll(BenchPingpong *s)
{
    FloorPingpong pp = { .s = s };
    pthread_t tb;
    int ret;

    ret = -pthread_create(&tb, NULL, floor_spin_b, &pp);
    if (ret < 0) {
        return bench_fail("floor", "pthread_create", -ret);
    }
    s->t_start = bench_now_ns();
    spin_kick(&pp.turn_b);
    for (;;) {
        bool more;

        spin_wait(&pp.turn_a);
        more = bench_pingpong_a(s);
        spin_kick(&pp.turn_b);
        if (!more) {
            break;
        }
    }
    s->t_end = bench_now_ns();
    pthread_join(tb, NULL);
    return 0;
}

/* (c) */

static int floor_sockets(BenchSockets *s)
{
    enum { MAX_EVENTS = 1024 };
    struct epoll_event *evs;
    int ep;
    int ret = 0;

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        return bench_fail("floor", "epoll_create1", errno);
    }
    evs = g_new(struct epoll_event, MAX_EVENTS);
    for (int i = 0; i < s->nsockets; i++) {
        struct epoll_event ev = {
            .events = EPOLLIN,
            .data.ptr = &s->reader[i],
        };

        if (epoll_ctl(ep, EPOLL_CTL_ADD, s->reader[i].fd, &ev) < 0) {
            ret = bench_fail("floor", "epoll_ctl", errno);
            goto out;
        }
    }
    bench_sockets_start(s);
    while (!bench_sockets_done(s)) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, 0);

        for (int i = 0; i < n; i++) {
            bench_sockets_readable(evs[i].data.ptr);
        }
    }
    s->t_end = bench_now_ns();
out:
    g_free(evs);
    close(ep);
    return ret;
}

/* (d): an indexed binary min-heap, the structure every peer's timers use */

typedef struct FloorTimer {
    int64_t deadline;
    size_t pos;
} FloorTimer;

typedef struct FloorHeap {
    FloorTimer **a;
    size_t n;
} FloorHeap;

static void heap_place(FloorHeap *h, size_t i, FloorTimer *t)
{
    h->a[i] = t;
    t->pos = i;
}

static void heap_up(FloorHeap *h, size_t i, FloorTimer *t)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (h->a[parent]->deadline <= t->deadline) {
            break;
        }
        heap_place(h, i, h->a[parent]);
        i = parent;
    }
    heap_place(h, i, t);
}

static void heap_down(FloorHeap *h, size_t i, FloorTimer *t)
{
    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= h->n) {
            break;
        }
        if (c + 1 < h->n && h->a[c + 1]->deadline < h->a[c]->deadline) {
            c++;
        }
        if (t->deadline <= h->a[c]->deadline) {
            break;
        }
        heap_place(h, i, h->a[c]);
        i = c;
    }
    heap_place(h, i, t);
}

static void heap_insert(FloorHeap *h, FloorTimer *t)
{
    heap_up(h, h->n++, t);
}

static void heap_remove(FloorHeap *h, FloorTimer *t)
{
    FloorTimer *last = h->a[--h->n];
    size_t i = t->pos;

    if (last == t) {
        return;
    }
    if (i > 0 && last->deadline < h->a[(i - 1) / 2]->deadline) {
        heap_up(h, i, last);
    } else {
        heap_down(h, i, last);
    }
}

static int floor_timers_arm(BenchTimersArm *s)
{
    FloorTimer *t = g_new(FloorTimer, s->n);
    FloorHeap h = { .a = g_new(FloorTimer *, s->n) };
    int64_t now;
    int ret = 0;

    s->t_start = bench_now_ns();
    now = bench_now_ns();
    for (size_t i = 0; i < s->n; i++) {
        t[i].deadline = now + s->rel_ns[i];
        heap_insert(&h, &t[i]);
    }
    for (size_t i = 0; i < s->n; i++) {
        heap_remove(&h, &t[i]);
    }
    s->t_end = bench_now_ns();
    if (h.n != 0) {
        fprintf(stderr, "floor: heap holds %zu timers after cancelling\n",
                h.n);
        ret = -EIO;
    }
    g_free(h.a);
    g_free(t);
    return ret;
}

static int floor_timers_late(BenchTimersLate *s)
{
    FloorTimer *t = g_new(FloorTimer, s->n);
    FloorHeap h = { .a = g_new(FloorTimer *, s->n) };

    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    bench_timers_late_start(s);
    for (size_t i = 0; i < s->n; i++) {
        t[i].deadline = s->due_ns[i];
        heap_insert(&h, &t[i]);
    }
    s->t_armed = bench_now_ns();
    while (h.n > 0) {
        FloorTimer *first = h.a[0];
        int64_t wait = first->deadline - bench_now_ns();

        if (wait <= 0) {
            heap_remove(&h, first);
            bench_timers_late_fire(s, first - t);
        } else {
            struct timespec ts = {
                .tv_sec = wait / 1000000000,
                .tv_nsec = wait % 1000000000,
            };

            ppoll(NULL, 0, &ts, NULL);
        }
    }
    g_free(h.a);
    g_free(t);
    return 0;
}

const BenchPeer bench_peer_floor = {
    .name = "floor",
    .how = {
        [BENCH_RESCHED] = "fn pointer + flag",
        [BENCH_PINGPONG] = "eventfd, blocking read",
        [BENCH_PINGPONG_POLL] = "atomic flag spin",
        [BENCH_SOCKETS] = "bare epoll_wait",
        [BENCH_TIMERS_ARM] = "binary heap",
        [BENCH_TIMERS_LATE] = "binary heap + ppoll",
    },
    .resched = floor_resched,
    .pingpong = floor_pingpong,
    .pingpong_poll = floor_pingpong_poll,
    .sockets = floor_sockets,
    .timers_arm = floor_timers_arm,
    .timers_late = floor_timers_late,
};
