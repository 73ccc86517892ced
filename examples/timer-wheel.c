/*
 * timer-wheel.c: ten thousand timers on a clock the program controls.
 *
 *   timer-wheel [--timers N] [--seed S]
 *
 * QEMU_CLOCK_VIRTUAL is the clock QEMU gives a guest: it can be stopped
 * (qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false)) and then moves only when
 * the program says so, with qemu_clock_advance_virtual_time().  Advancing
 * runs every timer the clock passes, in deadline order, each one seeing the
 * clock read exactly its deadline.  Time becomes a variable: a program can
 * replay a second of timer activity in a few milliseconds, and the same way
 * every run, which is how QEMU's record/replay and its qtests use it.
 *
 * The demo arms N one-shot timers at pseudo-random deadlines within one
 * second of virtual time (with some deadlines shared, and one timer in ten
 * cancelled again), plus a periodic timer that re-arms itself every 100 ms.
 * It then advances the clock in ten steps of 100 ms and checks, as it goes,
 * that timers fire in deadline order (equal deadlines in the order they were
 * armed), exactly once, at their deadline, and never once cancelled.  It
 * exits 0 only if every check held, so the test suite simply runs it.
 *
 * Threading: everything runs in the main thread; the timer callbacks run
 * inside qemu_clock_advance_virtual_time().
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"

#define STEP_NS (100 * SCALE_MS)
#define STEPS 10
#define SPAN_NS (STEPS * STEP_NS)

typedef struct Wheel Wheel;

typedef struct Slot {
    QEMUTimer timer;
    Wheel *wheel;
    int64_t deadline;
    int index;          /* arming order */
    int fired;
    bool cancelled;
} Slot;

struct Wheel {
    Slot *slots;
    int n;
    int64_t start;

    /* What the callbacks saw. */
    int64_t last_deadline;
    int last_index;
    int fired;
    int ties;           /* fired right after a timer of equal deadline */
    int errors;

    QEMUTimer tick;
    int ticks;
};

static void check(Wheel *w, bool ok, const char *what, int index)
{
    if (!ok && w->errors++ < 10) {
        error_report("timer %d: %s", index, what);
    }
}

static void slot_fired(void *opaque)
{
    Slot *s = opaque;
    Wheel *w = s->wheel;

    /* The clock stands exactly at the deadline while the callback runs. */
    check(w, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) == s->deadline,
          "fired when the clock did not read its deadline", s->index);
    /* Deadline order, and arming order among equal deadlines. */
    check(w, s->deadline > w->last_deadline ||
             (s->deadline == w->last_deadline && s->index > w->last_index),
          "fired out of order", s->index);
    check(w, !s->cancelled, "fired although cancelled", s->index);
    check(w, ++s->fired == 1, "fired twice", s->index);
    w->ties += s->deadline == w->last_deadline;
    w->last_deadline = s->deadline;
    w->last_index = s->index;
    w->fired++;
}

/* The periodic timer: re-arming from the callback is how periods are made. */
static void tick_fired(void *opaque)
{
    Wheel *w = opaque;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    w->ticks++;
    check(w, now == w->start + w->ticks * STEP_NS, "tick off its period", -1);
    timer_mod_ns(&w->tick, now + STEP_NS);
}

int main(int argc, char **argv)
{
    int n = 10000;
    int seed = 42;
    GOptionEntry entries[] = {
        { "timers", 'n', 0, G_OPTION_ARG_INT, &n,
          "number of timers (default 10000)", "N" },
        { "seed", 's', 0, G_OPTION_ARG_INT, &seed,
          "seed of the pseudo-random deadlines (default 42)", "S" },
        { NULL }
    };
    g_autoptr(GOptionContext) opts = g_option_context_new(
        "- timers driven by the controllable QEMU_CLOCK_VIRTUAL");
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GRand) rand = NULL;
    AioContext *ctx;
    Wheel w = { 0 };
    int cancelled = 0;
    int step, i;

    g_option_context_add_main_entries(opts, entries, NULL);
    if (!g_option_context_parse(opts, &argc, &argv, &gerr) || argc != 1 ||
        n < 1 || n > 10000000) {
        error_report("%s", gerr ? gerr->message : "bad arguments (see --help)");
        return 2;
    }
    rand = g_rand_new_with_seed(seed);

    /*
     * The timers belong to an AioContext, as every QEMU timer belongs to
     * some event loop; but with the clock stopped nothing fires on its own,
     * and this program never runs the loop: only the advances below do.
     */
    ctx = aio_context_new(&error_fatal);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, false);
    w.start = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    w.last_deadline = INT64_MIN;

    w.n = n;
    w.slots = g_new0(Slot, n);
    for (i = 0; i < n; i++) {
        Slot *s = &w.slots[i];

        /*
         * Deadlines in whole microseconds, so that some of the 10,000
         * collide and the tie rule gets exercised too.
         */
        s->deadline = w.start +
                      g_rand_int_range(rand, 1, SPAN_NS / SCALE_US + 1) *
                      (int64_t)SCALE_US;
        s->index = i;
        s->wheel = &w;
        aio_timer_init(ctx, &s->timer, QEMU_CLOCK_VIRTUAL, SCALE_NS,
                       slot_fired, s);
        timer_mod_ns(&s->timer, s->deadline);
    }
    /* Change our mind about one in ten: a deleted timer never fires. */
    for (i = 0; i < n; i += 10) {
        timer_del(&w.slots[i].timer);
        w.slots[i].cancelled = true;
        cancelled++;
    }
    aio_timer_init(ctx, &w.tick, QEMU_CLOCK_VIRTUAL, SCALE_NS, tick_fired,
                   &w);
    timer_mod_ns(&w.tick, w.start + STEP_NS);
    printf("%d timers armed within %d ms of virtual time, %d cancelled\n",
           n, (int)(SPAN_NS / SCALE_MS), cancelled);

    for (step = 1; step <= STEPS; step++) {
        int64_t target = w.start + step * STEP_NS;
        int before = w.fired;
        int pending = 0;

        qemu_clock_advance_virtual_time(target);

        /* Everything due has fired; everything later is still armed. */
        for (i = 0; i < n; i++) {
            Slot *s = &w.slots[i];
            bool due = !s->cancelled && s->deadline <= target;

            check(&w, s->fired == (due ? 1 : 0), "fired count wrong", i);
            check(&w, timer_pending(&s->timer) ==
                      (!s->cancelled && !due), "pending state wrong", i);
            pending += timer_pending(&s->timer);
        }
        check(&w, w.ticks == step, "periodic timer missed a period", -1);
        printf("t = %4d ms: %5d timers fired, %5d still pending, "
               "tick %d\n", (int)((target - w.start) / SCALE_MS),
               w.fired - before, pending, w.ticks);
    }
    check(&w, w.fired == n - cancelled, "not every timer fired", -1);

    timer_del(&w.tick);
    for (i = 0; i < n; i++) {
        timer_del(&w.slots[i].timer);
    }
    g_free(w.slots);
    aio_context_unref(ctx);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);

    if (w.errors) {
        error_report("%d checks failed", w.errors);
        return 1;
    }
    printf("all %d timers fired once, in deadline order (%d sharing the "
           "deadline of the one before), at their deadline; the %d "
           "cancelled ones never did\n", n - cancelled, w.ties, cancelled);
    return 0;
}
