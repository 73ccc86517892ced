/*
 * co-sleep.c: coroutines waiting for time: qemu_co_sleep*, qemu_co_sleep_wake
 * and qemu_co_timeout.
 *
 * A sleeping coroutine marks itself scheduled (Coroutine.scheduled, the
 * same field aio_co_schedule() uses), so that entering it by any route
 * other than qemu_co_sleep_wake() aborts, naming the sleep.  The timer of
 * a timed sleep lives on the sleeper's stack, on the AioContext of the
 * thread it sleeps in; its callback therefore runs in that thread, after
 * the sleeper has yielded.
 *
 * Threading: the coroutine_fn functions from coroutine context in a
 * thread that runs an AioContext.  qemu_co_sleep_wake() from anywhere: the
 * sleeper is claimed with an atomic exchange, so a timer and an early
 * wake-up racing each other wake it once.
 */
#include "qemu/osdep.h"
#include "qemu/coroutine.h"
#include "qemu/error-report.h"
#include "block/aio.h"
#include "coroutine-int.h"

/* The Coroutine.scheduled tag of a sleeper; compared by address. */
static const char qemu_co_sleep_ns__scheduled[] = "qemu_co_sleep_ns";

void qemu_co_sleep_wake(QemuCoSleep *w)
{
    /*
     * Claim the sleeper; pairs with the qatomic_set in qemu_co_sleep()
     * (made before its yield).
     */
    Coroutine *co = qatomic_xchg(&w->to_wake, NULL);
    const char *scheduled;

    if (!co) {
        return;
    }
    scheduled = qatomic_cmpxchg(&co->scheduled, qemu_co_sleep_ns__scheduled,
                                NULL);
    if (scheduled != qemu_co_sleep_ns__scheduled) {
        error_report("qemu_co_sleep_wake: coroutine %p is not sleeping "
                     "(scheduled by %s)", (void *)co,
                     scheduled ? scheduled : "nobody");
        abort();
    }
    aio_co_wake(co);
}

static void co_sleep_timer_cb(void *opaque)
{
    qemu_co_sleep_wake(opaque);
}

void coroutine_fn qemu_co_sleep(QemuCoSleep *w)
{
    Coroutine *co = qemu_coroutine_self();
    const char *scheduled;

    if (!qemu_in_coroutine()) {
        error_report("qemu_co_sleep: called outside coroutine context");
        abort();
    }
    /*
     * Mark ourselves before publishing to_wake, so that a waker that finds
     * to_wake also finds the mark (its cmpxchg in qemu_co_sleep_wake).
     */
    scheduled = qatomic_cmpxchg(&co->scheduled, NULL,
                                qemu_co_sleep_ns__scheduled);
    if (scheduled) {
        error_report("qemu_co_sleep: coroutine %p was already scheduled "
                     "in '%s'", (void *)co, scheduled);
        abort();
    }

    qatomic_set(&w->to_wake, co);
    qemu_coroutine_yield();

    /* Whoever woke us took to_wake first (qemu_co_sleep_wake). */
    assert(qatomic_read(&w->to_wake) == NULL);
}

void coroutine_fn qemu_co_sleep_ns_wakeable(QemuCoSleep *w,
                                            QEMUClockType type, int64_t ns)
{
    AioContext *ctx = qemu_get_current_aio_context();
    QEMUTimer ts;

    if (!ctx) {
        error_report("qemu_co_sleep_ns_wakeable: the calling thread runs "
                     "no AioContext to arm the timer on");
        abort();
    }
    aio_timer_init(ctx, &ts, type, SCALE_NS, co_sleep_timer_cb, w);
    timer_mod(&ts, qemu_clock_get_ns(type) + ns);

    /*
     * The callback runs in this thread's aio_poll(), so not before
     * qemu_co_sleep() has yielded: arming first cannot lose the wake-up.
     */
    qemu_co_sleep(w);
    timer_del(&ts);
}

/* ---- qemu_co_timeout ------------------------------------------------- */

/*
 * Shared by the caller and the coroutine running @entry, both in the same
 * context, so no atomics.  Whichever of the two finishes second frees it.
 */
typedef struct CoTimeoutState {
    CoroutineEntry *entry;
    void *opaque;
    CleanupFunc *clean;
    QemuCoSleep sleep;
    /* Set by the first to finish: @entry, or the caller on timeout. */
    bool marker;
} CoTimeoutState;

static void coroutine_fn co_timeout_entry(void *opaque)
{
    CoTimeoutState *s = opaque;

    s->entry(s->opaque);

    if (s->marker) {
        /* The caller timed out and left; we own @s and @opaque now. */
        if (s->clean) {
            s->clean(s->opaque);
        }
        g_free(s);
    } else {
        s->marker = true;
        qemu_co_sleep_wake(&s->sleep);
    }
}

int coroutine_fn qemu_co_timeout(CoroutineEntry *entry, void *opaque,
                                 uint64_t timeout_ns, CleanupFunc clean)
{
    CoTimeoutState *s;
    Coroutine *co;

    if (timeout_ns == 0) {
        entry(opaque);
        return 0;
    }

    s = g_new0(CoTimeoutState, 1);
    s->entry = entry;
    s->opaque = opaque;
    s->clean = clean;

    co = qemu_coroutine_create(co_timeout_entry, s);
    /* From coroutine context this queues @co until we yield below. */
    aio_co_enter(qemu_get_current_aio_context(), co);
    qemu_co_sleep_ns_wakeable(&s->sleep, QEMU_CLOCK_REALTIME,
                              MIN(timeout_ns, (uint64_t)INT64_MAX / 2));

    if (s->marker) {
        g_free(s);
        return 0;
    }
    /* @entry is still running; it frees @s when it finishes. */
    s->marker = true;
    return -ETIMEDOUT;
}
