/*
 * bench/peer-libevent.c: the scenarios on libevent 2.1 (built when
 * libevent_core and libevent_pthreads are found).
 *
 *   resched        event_active on the callback's own event, in a base made
 *                  with EVENT_BASE_FLAG_NOLOCK.  libevent runs an event
 *                  activated from a callback in the same pass over its
 *                  active queue, with no trip through epoll.
 *   pingpong       event_active from the other thread on an event of this
 *                  thread's base: evthread_use_pthreads() and a locking,
 *                  notifiable base (it writes an eventfd to wake the loop)
 *   sockets      EV_READ | EV_PERSIST events, event_base_loop(
 *                  EVLOOP_NONBLOCK): libevent's own test/bench.c
 *   timers-arm     evtimer_add / evtimer_del (evtimer_assign untimed; a
 *                  relative timeval, so libevent reads its clock per add
 *                  when called outside the loop)
 *   timers-late    evtimer_add in a base with EVENT_BASE_FLAG_PRECISE_TIMER
 *                  (otherwise libevent may use a coarse clock)
 *
 * The single-threaded scenarios use NOLOCK bases: that is how libevent is
 * configured for one thread, and qaio's single-thread paths take no lock
 * either.
 *
 * Threading: each base is run by one thread only; in pingpong the other
 * thread calls event_active, which takes the base's lock.
 */
#include "qemu/osdep.h"
#include <dlfcn.h>
#include <pthread.h>
#include <event2/event.h>
#include <event2/thread.h>
#include "bench.h"

/*
 * libev.so exports a libevent emulation under the same names; in a process
 * that has both, the names go to whichever was linked first.  Refuse to
 * measure libev by mistake.
 */
static bool real_libevent(void)
{
    static int ok = -1;
    Dl_info info;
    void *sym;

    if (ok < 0) {
        sym = dlsym(RTLD_DEFAULT, "event_active");
        ok = sym && dladdr(sym, &info) && info.dli_fname &&
             strstr(info.dli_fname, "libevent");
        if (!ok) {
            fprintf(stderr, "libevent: event_active resolves to %s, not "
                    "libevent: link libevent before libev\n",
                    sym && info.dli_fname ? info.dli_fname : "nothing");
        }
    }
    return ok;
}

static struct event_base *new_base(int flags)
{
    struct event_config *cfg;
    struct event_base *base;

    if (!real_libevent()) {
        return NULL;
    }
    cfg = event_config_new();

    event_config_set_flag(cfg, flags);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!base) {
        fprintf(stderr, "libevent: event_base_new_with_config failed\n");
    }
    return base;
}

/* (a) */

typedef struct EvtResched {
    BenchResched *s;
    struct event *ev;
} EvtResched;

static void evt_resched_cb(evutil_socket_t fd, short what, void *opaque)
{
    EvtResched *r = opaque;

    if (bench_resched_step(r->s)) {
        event_active(r->ev, EV_READ, 0);
    }
}

static int evt_resched(BenchResched *s)
{
    struct event_base *base = new_base(EVENT_BASE_FLAG_NOLOCK);
    EvtResched *r = g_new(EvtResched, s->ncallbacks);

    if (!base) {
        g_free(r);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        r[i].s = s;
        r[i].ev = event_new(base, -1, 0, evt_resched_cb, &r[i]);
    }
    s->t_start = bench_now_ns();
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        event_active(r[i].ev, EV_READ, 0);
    }
    /* Returns when nothing is active or pending any more. */
    event_base_loop(base, 0);
    s->t_end = bench_now_ns();
    for (unsigned i = 0; i < s->ncallbacks; i++) {
        event_free(r[i].ev);
    }
    event_base_free(base);
    g_free(r);
    return 0;
}

/* (b) */

typedef struct EvtPingpong {
    BenchPingpong *s;
    struct event_base *base_a, *base_b;
    struct event *ev_a, *ev_b;
} EvtPingpong;

static void evt_pp_a(evutil_socket_t fd, short what, void *opaque)
{
    EvtPingpong *pp = opaque;
    bool more = bench_pingpong_a(pp->s);

    event_active(pp->ev_b, EV_READ, 0);
    if (!more) {
        event_base_loopbreak(pp->base_a);
    }
}

static void evt_pp_b(evutil_socket_t fd, short what, void *opaque)
{
    EvtPingpong *pp = opaque;

    if (bench_pingpong_b(pp->s)) {
        event_active(pp->ev_a, EV_READ, 0);
    } else {
        event_base_loopbreak(pp->base_b);
    }
}

static void *evt_pp_thread_b(void *opaque)
{
    EvtPingpong *pp = opaque;

    event_base_loop(pp->base_b, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int evt_pingpong(BenchPingpong *s)
{
    static bool threads_on;
    EvtPingpong pp = { .s = s };
    pthread_t tb;
    int ret;

    if (!threads_on) {
        if (evthread_use_pthreads() < 0) {
            fprintf(stderr, "libevent: evthread_use_pthreads failed\n");
            return -EIO;
        }
        threads_on = true;
    }
    pp.base_a = new_base(0);
    pp.base_b = new_base(0);
    if (!pp.base_a || !pp.base_b) {
        return -ENOMEM;
    }
    pp.ev_a = event_new(pp.base_a, -1, 0, evt_pp_a, &pp);
    pp.ev_b = event_new(pp.base_b, -1, 0, evt_pp_b, &pp);
    ret = -pthread_create(&tb, NULL, evt_pp_thread_b, &pp);
    if (ret < 0) {
        return bench_fail("libevent", "pthread_create", -ret);
    }
    s->t_start = bench_now_ns();
    event_active(pp.ev_b, EV_READ, 0);
    event_base_loop(pp.base_a, EVLOOP_NO_EXIT_ON_EMPTY);
    s->t_end = bench_now_ns();
    pthread_join(tb, NULL);
    event_free(pp.ev_a);
    event_free(pp.ev_b);
    event_base_free(pp.base_a);
    event_base_free(pp.base_b);
    return 0;
}

/* (c) */

static void evt_sp_cb(evutil_socket_t fd, short what, void *opaque)
{
    bench_sockets_readable(opaque);
}

static int evt_sockets(BenchSockets *s)
{
    struct event_base *base = new_base(EVENT_BASE_FLAG_NOLOCK);
    struct event **ev = g_new0(struct event *, s->nsockets);
    int ret = 0;

    if (!base) {
        g_free(ev);
        return -ENOMEM;
    }
    for (int i = 0; i < s->nsockets; i++) {
        ev[i] = event_new(base, s->reader[i].fd, EV_READ | EV_PERSIST,
                          evt_sp_cb, &s->reader[i]);
        if (!ev[i] || event_add(ev[i], NULL) < 0) {
            fprintf(stderr, "libevent: event_add failed\n");
            ret = -EIO;
            goto out;
        }
    }
    /* Let the loop register the fds with the kernel, untimed. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    bench_sockets_start(s);
    while (!bench_sockets_done(s)) {
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    s->t_end = bench_now_ns();
out:
    for (int i = 0; i < s->nsockets; i++) {
        if (ev[i]) {
            event_free(ev[i]);
        }
    }
    event_base_free(base);
    g_free(ev);
    return ret;
}

/* (d) */

static void evt_timer_never(evutil_socket_t fd, short what, void *opaque)
{
    abort();
}

static struct timeval ns_to_tv(int64_t ns)
{
    int64_t us = ns > 0 ? (ns + 999) / 1000 : 0;

    return (struct timeval) {
        .tv_sec = us / 1000000,
        .tv_usec = us % 1000000,
    };
}

static int evt_timers_arm(BenchTimersArm *s)
{
    struct event_base *base = new_base(EVENT_BASE_FLAG_NOLOCK);
    /* evtimer_assign needs the struct's size, known only to the library */
    size_t sz = event_get_struct_event_size();
    char *t = g_malloc(sz * s->n);

    if (!base) {
        g_free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        evtimer_assign((struct event *)(t + i * sz), base, evt_timer_never,
                       NULL);
    }
    s->t_start = bench_now_ns();
    for (size_t i = 0; i < s->n; i++) {
        struct timeval tv = ns_to_tv(s->rel_ns[i]);

        evtimer_add((struct event *)(t + i * sz), &tv);
    }
    for (size_t i = 0; i < s->n; i++) {
        evtimer_del((struct event *)(t + i * sz));
    }
    s->t_end = bench_now_ns();
    event_base_free(base);
    g_free(t);
    return 0;
}

typedef struct EvtLate {
    BenchTimersLate *s;
    size_t idx;
    struct event *ev;
} EvtLate;

static void evt_late_cb(evutil_socket_t fd, short what, void *opaque)
{
    EvtLate *el = opaque;

    bench_timers_late_fire(el->s, el->idx);
}

static int evt_timers_late(BenchTimersLate *s)
{
    struct event_base *base = new_base(EVENT_BASE_FLAG_NOLOCK |
                                       EVENT_BASE_FLAG_PRECISE_TIMER);
    EvtLate *el = g_new(EvtLate, s->n);

    if (!base) {
        g_free(el);
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        el[i] = (EvtLate) { .s = s, .idx = i };
        el[i].ev = evtimer_new(base, evt_late_cb, &el[i]);
    }
    bench_timers_late_start(s);
    for (size_t i = 0; i < s->n; i++) {
        /*
         * Read our clock before libevent reads its own in evtimer_add, so
         * the relative timeout never lands before the due time.
         */
        struct timeval tv = ns_to_tv(s->due_ns[i] - bench_now_ns());

        evtimer_add(el[i].ev, &tv);
    }
    s->t_armed = bench_now_ns();
    while (s->fired < s->n) {
        event_base_loop(base, EVLOOP_ONCE);
    }
    for (size_t i = 0; i < s->n; i++) {
        event_free(el[i].ev);
    }
    event_base_free(base);
    g_free(el);
    return 0;
}

const BenchPeer bench_peer_libevent = {
    .name = "libevent",
    .how = {
        [BENCH_RESCHED] = "event_active, NOLOCK (no poll)",
        [BENCH_PINGPONG] = "event_active, locked base",
        [BENCH_SOCKETS] = "event EV_PERSIST",
        [BENCH_TIMERS_ARM] = "evtimer_add/del",
        [BENCH_TIMERS_LATE] = "evtimer_add, PRECISE_TIMER",
    },
    .resched = evt_resched,
    .pingpong = evt_pingpong,
    .sockets = evt_sockets,
    .timers_arm = evt_timers_arm,
    .timers_late = evt_timers_late,
};
