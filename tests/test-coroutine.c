/*
 * test-coroutine.c: coroutines on their own (qemu/coroutine-core.h,
 * qemu/coroutine-tls.h): create, enter, yield, terminate, nesting, the
 * pool (counted exactly with the library's stack counter, and in
 * /proc/self/maps), many live coroutines, stacks and their guard pages,
 * and the misuse that must abort.
 *
 * The same source runs against whichever switch backend the build picked
 * (`make check` and `make check-ucontext` cover both).  Abort cases run in
 * a subprocess (g_test_trap_subprocess) and match the message.  The
 * program sets QAIO_COROUTINE_STACK_SIZE=64K before the first coroutine,
 * so that 100,000 live coroutines fit in memory.
 *
 * Threading: single-threaded; cross-thread cases are in
 * test-aio-coroutine.c.
 */
#include "qemu/osdep.h"
#include <sys/mman.h>
#include "qemu/coroutine.h"
#include "qemu/coroutine-tls.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "../src/coroutine-int.h"
#include "../src/coroutine-backend.h"       /* co_stack_count() */

#ifdef CONFIG_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#define STACK_SIZE_ENV "64K"

/* ---- Helpers ------------------------------------------------------------ */

/* An event log: each step appends a number; tests compare whole logs. */
typedef struct Log {
    int events[64];
    int n;
} Log;

static void log_add(Log *log, int event)
{
    g_assert_cmpint(log->n, <, (int)ARRAY_SIZE(log->events));
    log->events[log->n++] = event;
}

static void log_assert(Log *log, const int *want, int n)
{
    int i;

    g_assert_cmpint(log->n, ==, n);
    for (i = 0; i < n; i++) {
        g_assert_cmpint(log->events[i], ==, want[i]);
    }
}

#define LOG_ASSERT(log, ...) do {                               \
        static const int want_[] = { __VA_ARGS__ };             \
        log_assert((log), want_, ARRAY_SIZE(want_));            \
    } while (0)

/* Lines of /proc/self/maps: one per mapping. */
static int count_mappings(void)
{
    g_autofree char *contents = NULL;
    int n = 0;
    char *p;

    g_assert_true(g_file_get_contents("/proc/self/maps", &contents, NULL,
                                      NULL));
    for (p = contents; *p; p++) {
        n += *p == '\n';
    }
    return n;
}

static bool running_on_valgrind(void)
{
#ifdef CONFIG_VALGRIND_H
    return RUNNING_ON_VALGRIND;
#else
    return false;
#endif
}

/* ---- Basics ------------------------------------------------------------- */

static void coroutine_fn set_flag_entry(void *opaque)
{
    *(int *)opaque += 1;
}

static void test_create_enter_terminate(void)
{
    int runs = 0;
    Coroutine *co = qemu_coroutine_create(set_flag_entry, &runs);

    g_assert_nonnull(co);
    g_assert_cmpint(runs, ==, 0);
    g_assert_false(qemu_coroutine_entered(co));
    qemu_coroutine_enter(co);
    g_assert_cmpint(runs, ==, 1);
}

typedef struct SelfData {
    Coroutine *co;
    Coroutine *seen_self;
    bool seen_in_coroutine;
    bool seen_entered;
    Coroutine *seen_caller;
} SelfData;

static void coroutine_fn self_entry(void *opaque)
{
    SelfData *d = opaque;

    d->seen_self = qemu_coroutine_self();
    d->seen_in_coroutine = qemu_in_coroutine();
    d->seen_entered = qemu_coroutine_entered(d->co);
    d->seen_caller = d->co->caller;
}

static void test_self_and_in_coroutine(void)
{
    Coroutine *leader = qemu_coroutine_self();
    SelfData d = { 0 };

    /* Outside: the thread's leader, stable, never NULL, not a coroutine. */
    g_assert_nonnull(leader);
    g_assert_true(qemu_coroutine_self() == leader);
    g_assert_false(qemu_in_coroutine());

    d.co = qemu_coroutine_create(self_entry, &d);
    qemu_coroutine_enter(d.co);
    g_assert_true(d.seen_self == d.co);
    g_assert_true(d.seen_in_coroutine);
    g_assert_true(d.seen_entered);
    g_assert_true(d.seen_caller == leader);

    g_assert_true(qemu_coroutine_self() == leader);
    g_assert_false(qemu_in_coroutine());
}

typedef struct YieldData {
    Log *log;
    Coroutine *co;
    bool entered_while_running;
} YieldData;

static void coroutine_fn yield_order_entry(void *opaque)
{
    YieldData *d = opaque;

    log_add(d->log, 1);
    d->entered_while_running = qemu_coroutine_entered(d->co);
    qemu_coroutine_yield();
    log_add(d->log, 3);
    qemu_coroutine_yield();
    log_add(d->log, 5);
}

static void test_yield_order(void)
{
    Log log = { 0 };
    YieldData d = { .log = &log };

    d.co = qemu_coroutine_create(yield_order_entry, &d);
    log_add(&log, 0);
    qemu_coroutine_enter(d.co);
    g_assert_true(d.entered_while_running);
    g_assert_false(qemu_coroutine_entered(d.co));
    log_add(&log, 2);
    qemu_coroutine_enter(d.co);
    log_add(&log, 4);
    qemu_coroutine_enter(d.co);
    log_add(&log, 6);
    LOG_ASSERT(&log, 0, 1, 2, 3, 4, 5, 6);
}

static void coroutine_fn count_yields_entry(void *opaque)
{
    int *count = opaque;

    for (;;) {
        (*count)++;
        if (*count == 1000) {
            return;
        }
        qemu_coroutine_yield();
    }
}

static void test_yield_many(void)
{
    int count = 0;
    int enters = 0;
    Coroutine *co = qemu_coroutine_create(count_yields_entry, &count);

    while (count < 1000) {
        qemu_coroutine_enter(co);
        enters++;
        g_assert_cmpint(count, ==, enters);
    }
    g_assert_cmpint(enters, ==, 1000);
}

static void coroutine_fn inactive_entry(void *opaque)
{
    Coroutine *self = qemu_coroutine_self();
    int *runs = opaque;

    (*runs)++;
    /* Running: entering ourselves "if inactive" does nothing. */
    qemu_coroutine_enter_if_inactive(self);
    qemu_coroutine_yield();
    (*runs)++;
}

static void test_enter_if_inactive(void)
{
    int runs = 0;
    Coroutine *co = qemu_coroutine_create(inactive_entry, &runs);

    qemu_coroutine_enter_if_inactive(co);
    g_assert_cmpint(runs, ==, 1);
    qemu_coroutine_enter_if_inactive(co);
    g_assert_cmpint(runs, ==, 2);
}

static void coroutine_fn noop_yield_entry(void *opaque)
{
    qemu_coroutine_yield();
}

static void test_get_aio_context(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Coroutine *co = qemu_coroutine_create(noop_yield_entry, NULL);

    g_assert_null(qemu_coroutine_get_aio_context(co));
    qemu_aio_coroutine_enter(ctx, co);
    g_assert_true(qemu_coroutine_get_aio_context(co) == ctx);
    qemu_aio_coroutine_enter(ctx, co);
    aio_context_unref(ctx);
}

/* ---- Nesting ------------------------------------------------------------ */

#define NEST_DEPTH 128

typedef struct NestData {
    Coroutine *cos[NEST_DEPTH];
    int depth;          /* how deep the chain has got */
    int max_depth;
    int callers_ok;     /* levels whose caller was the level above */
    int returns;
} NestData;

static void coroutine_fn nest_entry(void *opaque)
{
    NestData *d = opaque;
    int level = d->depth;
    Coroutine *self = qemu_coroutine_self();

    g_assert_true(self == d->cos[level]);
    if (level > 0 && self->caller == d->cos[level - 1] &&
        qemu_coroutine_entered(d->cos[level - 1])) {
        d->callers_ok++;
    }
    d->max_depth = MAX(d->max_depth, level + 1);
    if (level + 1 < NEST_DEPTH) {
        d->depth++;
        d->cos[level + 1] = qemu_coroutine_create(nest_entry, d);
        qemu_coroutine_enter(d->cos[level + 1]);
        /* The inner one terminated: we run again, still ourselves. */
        g_assert_true(qemu_coroutine_self() == self);
    }
    d->returns++;
}

static void test_nesting(void)
{
    NestData d = { 0 };

    d.cos[0] = qemu_coroutine_create(nest_entry, &d);
    qemu_coroutine_enter(d.cos[0]);
    g_assert_cmpint(d.max_depth, ==, NEST_DEPTH);
    g_assert_cmpint(d.callers_ok, ==, NEST_DEPTH - 1);
    g_assert_cmpint(d.returns, ==, NEST_DEPTH);
    g_assert_false(qemu_in_coroutine());
}

typedef struct NestYieldData {
    Log *log;
    Coroutine *leader;
    Coroutine *outer;
    Coroutine *inner;
} NestYieldData;

static void coroutine_fn nest_yield_inner(void *opaque)
{
    NestYieldData *d = opaque;

    log_add(d->log, 2);
    g_assert_true(d->inner->caller == d->outer);
    qemu_coroutine_yield();             /* back to the outer coroutine */
    log_add(d->log, 6);
    /* Entered from the thread this time; the outer one is gone. */
    g_assert_true(d->inner->caller == d->leader);
}

static void coroutine_fn nest_yield_outer(void *opaque)
{
    NestYieldData *d = opaque;

    log_add(d->log, 1);
    d->inner = qemu_coroutine_create(nest_yield_inner, d);
    qemu_coroutine_enter(d->inner);
    log_add(d->log, 3);
    qemu_coroutine_yield();             /* back to the leader */
    log_add(d->log, 5);
}

static void test_nesting_yield_goes_to_caller(void)
{
    Log log = { 0 };
    NestYieldData d = { .log = &log, .leader = qemu_coroutine_self() };

    d.outer = qemu_coroutine_create(nest_yield_outer, &d);
    log_add(&log, 0);
    qemu_coroutine_enter(d.outer);
    log_add(&log, 4);
    qemu_coroutine_enter(d.outer);      /* outer terminates */
    qemu_coroutine_enter(d.inner);      /* inner terminates */
    log_add(&log, 7);
    LOG_ASSERT(&log, 0, 1, 2, 3, 4, 5, 6, 7);
}

/* ---- Coroutine TLS ------------------------------------------------------ */

QEMU_DEFINE_STATIC_CO_TLS(int, test_tls_int)

static void test_co_tls_accessors(void)
{
    int *p;

    g_assert_cmpint(get_test_tls_int(), ==, 0);
    set_test_tls_int(42);
    g_assert_cmpint(get_test_tls_int(), ==, 42);
    p = get_ptr_test_tls_int();
    *p = 7;
    g_assert_cmpint(get_test_tls_int(), ==, 7);
    set_test_tls_int(0);
}

/* ---- The pool ----------------------------------------------------------- */

static void coroutine_fn noop_entry(void *opaque)
{
}

static void test_pool_reuse(void)
{
    Coroutine *first, *co;
    int i, same = 0;

    if (!CONFIG_COROUTINE_POOL) {
        g_test_skip("built with -Dcoroutine_pool=false");
        return;
    }
    first = qemu_coroutine_create(noop_entry, NULL);
    qemu_coroutine_enter(first);
    for (i = 0; i < 10000; i++) {
        co = qemu_coroutine_create(noop_entry, NULL);
        same += co == first;
        qemu_coroutine_enter(co);
    }
    /* Terminated coroutines come back: the very same object each time. */
    g_assert_cmpint(same, ==, 10000);
}

#define POOL_TEST_LIVE 1000
#define POOL_LOCAL_MAX 64               /* the default per-thread pool */
#define POOL_GLOBAL_MAX (4 * POOL_LOCAL_MAX)
#define MAPS_SLACK 16                   /* GLib or libc may map a little */

/*
 * ThreadSanitizer maps memory for every fiber it has seen and keeps it,
 * and valgrind lays out (and merges) mappings its own way, so under them
 * only the library's own count of stacks means anything.
 */
#ifdef QEMU_SANITIZE_THREAD
#define MAPS_MEANINGFUL false
#else
#define MAPS_MEANINGFUL (!running_on_valgrind())
#endif

static void test_pool_mappings_bounded(void)
{
    Coroutine **cos = g_new(Coroutine *, POOL_TEST_LIVE);
    unsigned stacks_before, stacks_live, stacks_after;
    int maps_before, maps_live, maps_after, i;

    if (!CONFIG_COROUTINE_POOL) {
        g_test_skip("built with -Dcoroutine_pool=false");
        g_free(cos);
        return;
    }
    stacks_before = co_stack_count();
    maps_before = count_mappings();
    for (i = 0; i < POOL_TEST_LIVE; i++) {
        cos[i] = qemu_coroutine_create(noop_yield_entry, NULL);
        qemu_coroutine_enter(cos[i]);
    }
    stacks_live = co_stack_count();
    maps_live = count_mappings();
    for (i = 0; i < POOL_TEST_LIVE; i++) {
        qemu_coroutine_enter(cos[i]);
    }
    stacks_after = co_stack_count();
    maps_after = count_mappings();

    /*
     * The pools end up full (the local one and four batches in the
     * global one); every other stack is unmapped.
     */
    g_assert_cmpuint(stacks_live - stacks_after, ==,
                     POOL_TEST_LIVE - POOL_LOCAL_MAX - POOL_GLOBAL_MAX);
    g_assert_cmpuint(stacks_after, <=,
                     stacks_before + POOL_LOCAL_MAX + POOL_GLOBAL_MAX);

    /* Two mappings a stack (the stack and its guard page). */
    if (MAPS_MEANINGFUL) {
        g_assert_cmpint(maps_after, <=,
                        maps_before + 2 * (POOL_LOCAL_MAX + POOL_GLOBAL_MAX) +
                        MAPS_SLACK);
        g_assert_cmpint(maps_live - maps_after, >=,
                        2 * (POOL_TEST_LIVE - POOL_LOCAL_MAX -
                             POOL_GLOBAL_MAX) - MAPS_SLACK);
    }
    g_free(cos);
}

static void test_pool_size_adjust(void)
{
    Coroutine *cos[POOL_LOCAL_MAX];
    unsigned before, after;
    int i;

    if (!CONFIG_COROUTINE_POOL) {
        g_test_skip("built with -Dcoroutine_pool=false");
        return;
    }
    /* With no pool at all, every terminated coroutine is unmapped... */
    qemu_coroutine_dec_pool_size(POOL_LOCAL_MAX);
    for (i = 0; i < POOL_LOCAL_MAX; i++) {
        cos[i] = qemu_coroutine_create(noop_yield_entry, NULL);
        qemu_coroutine_enter(cos[i]);
    }
    before = co_stack_count();
    for (i = 0; i < POOL_LOCAL_MAX; i++) {
        qemu_coroutine_enter(cos[i]);
    }
    after = co_stack_count();
    g_assert_cmpuint(after, ==, before - POOL_LOCAL_MAX);

    /* ...and with the pool back, they are all kept. */
    qemu_coroutine_inc_pool_size(POOL_LOCAL_MAX);
    for (i = 0; i < POOL_LOCAL_MAX; i++) {
        cos[i] = qemu_coroutine_create(noop_yield_entry, NULL);
        qemu_coroutine_enter(cos[i]);
    }
    before = co_stack_count();
    for (i = 0; i < POOL_LOCAL_MAX; i++) {
        qemu_coroutine_enter(cos[i]);
    }
    after = co_stack_count();
    g_assert_cmpuint(after, ==, before);
}

/* ---- Many live coroutines ----------------------------------------------- */

#define MANY_LIVE 100000

static void coroutine_fn many_entry(void *opaque)
{
    long *runs = opaque;

    (*runs)++;
    qemu_coroutine_yield();
    (*runs)++;
}

static void test_many_live(void)
{
    Coroutine **cos;
    long runs = 0;
    int i;

    if (running_on_valgrind()) {
        /* valgrind's address space manager runs out of segments. */
        g_test_skip("100,000 stacks are beyond valgrind's segment table");
        return;
    }
#ifdef QEMU_SANITIZE_THREAD
    /* TSan maps a trace buffer of 256 KiB per fiber: 25 GB here. */
    g_test_skip("100,000 ThreadSanitizer fibers do not fit in memory");
    return;
#endif
    cos = g_new(Coroutine *, MANY_LIVE);
    for (i = 0; i < MANY_LIVE; i++) {
        cos[i] = qemu_coroutine_create(many_entry, &runs);
        qemu_coroutine_enter(cos[i]);
    }
    g_assert_cmpint(runs, ==, MANY_LIVE);
    for (i = 0; i < MANY_LIVE; i++) {
        g_assert_false(qemu_coroutine_entered(cos[i]));
        qemu_coroutine_enter(cos[i]);
    }
    g_assert_cmpint(runs, ==, 2 * MANY_LIVE);
    g_free(cos);
}

/* ---- Stack overflow ----------------------------------------------------- */

static uintptr_t guard_lo, guard_hi;

/* Find the guard page below the stack that holds @addr. */
static void find_guard(uintptr_t addr)
{
    g_autofree char *contents = NULL;
    g_auto(GStrv) lines = NULL;
    uintptr_t prev_lo = 0, prev_hi = 0;
    bool prev_none = false;
    int i;

    g_assert_true(g_file_get_contents("/proc/self/maps", &contents, NULL,
                                      NULL));
    lines = g_strsplit(contents, "\n", -1);
    for (i = 0; lines[i] && *lines[i]; i++) {
        unsigned long lo, hi;
        char perms[8];

        g_assert_cmpint(sscanf(lines[i], "%lx-%lx %7s", &lo, &hi, perms),
                        ==, 3);
        if (addr >= lo && addr < hi) {
            g_assert_true(prev_none);
            g_assert_true(prev_hi == lo);
            guard_lo = prev_lo;
            guard_hi = prev_hi;
            return;
        }
        prev_lo = lo;
        prev_hi = hi;
        prev_none = !strcmp(perms, "---p");
    }
    g_assert_not_reached();
}

static void segv_handler(int sig, siginfo_t *info, void *ucontext)
{
    uintptr_t addr = (uintptr_t)info->si_addr;
    static const char in_guard[] = "SIGSEGV in the coroutine's guard page\n";
    static const char elsewhere[] = "SIGSEGV outside the guard page\n";

    if (addr >= guard_lo && addr < guard_hi) {
        write(2, in_guard, sizeof(in_guard) - 1);
    } else {
        write(2, elsewhere, sizeof(elsewhere) - 1);
    }
    _exit(1);
}

/* Deeper than any stack; volatile so the compiler cannot tell. */
static volatile int recurse_limit = INT_MAX;

static int __attribute__((noinline)) recurse(int depth)
{
    volatile char buf[512];

    if (depth == recurse_limit) {
        return 0;
    }
    buf[0] = depth;
    buf[sizeof(buf) - 1] = depth;
    /* Not a tail call: buf is used after the call returns. */
    return recurse(depth + 1) + buf[0] + buf[sizeof(buf) - 1];
}

static void coroutine_fn overflow_entry(void *opaque)
{
    /* Not a local's address: ASan may keep locals on a heap "fake stack". */
    find_guard((uintptr_t)__builtin_frame_address(0));
    *(int *)opaque = recurse(0);
}

static void test_stack_overflow_faults(void)
{
    if (g_test_subprocess()) {
        static char altstack[64 * 1024];
        stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
        struct sigaction sa = {
            .sa_sigaction = segv_handler,
            .sa_flags = SA_SIGINFO | SA_ONSTACK,
        };
        int result = 0;

        g_assert_cmpint(sigaltstack(&ss, NULL), ==, 0);
        g_assert_cmpint(sigaction(SIGSEGV, &sa, NULL), ==, 0);
        qemu_coroutine_enter(qemu_coroutine_create(overflow_entry, &result));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*SIGSEGV in the coroutine's guard page*");
}

/* ---- Misuse that aborts -------------------------------------------------- */

static void coroutine_fn enter_self_entry(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_self());
}

static void test_abort_enter_running(void)
{
    if (g_test_subprocess()) {
        qemu_coroutine_enter(qemu_coroutine_create(enter_self_entry, NULL));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*Co-routine * re-entered recursively*");
}

static void coroutine_fn enter_caller_entry(void *opaque)
{
    /* The outer coroutine is running too: it entered us. */
    qemu_coroutine_enter(opaque);
}

static void coroutine_fn enter_caller_outer(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(enter_caller_entry,
                                               qemu_coroutine_self()));
}

static void test_abort_enter_caller(void)
{
    if (g_test_subprocess()) {
        qemu_coroutine_enter(qemu_coroutine_create(enter_caller_outer,
                                                   NULL));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*Co-routine * re-entered recursively*");
}

static void test_abort_enter_terminated(void)
{
    if (!CONFIG_COROUTINE_POOL) {
        /* Without a pool the object is freed: nothing left to check. */
        g_test_skip("built with -Dcoroutine_pool=false");
        return;
    }
    if (g_test_subprocess()) {
        Coroutine *co = qemu_coroutine_create(noop_entry, NULL);

        qemu_coroutine_enter(co);
        qemu_coroutine_enter(co);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*Co-routine * has terminated*");
}

static void test_abort_yield_outside(void)
{
    if (g_test_subprocess()) {
        qemu_coroutine_yield();
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_coroutine_yield: not in a coroutine*");
}

static void test_abort_dec_pool_size_below_zero(void)
{
    if (!CONFIG_COROUTINE_POOL) {
        g_test_skip("built with -Dcoroutine_pool=false");
        return;
    }
    if (g_test_subprocess()) {
        /* More than the default size and any increase made before. */
        qemu_coroutine_dec_pool_size(100000);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_coroutine_dec_pool_size: removing "
                              "100000 from a pool size of *each decrease "
                              "must undo an earlier "
                              "qemu_coroutine_inc_pool_size*");
}

int main(int argc, char **argv)
{
    /* Before the first stack is mapped: it is read once. */
    g_setenv("QAIO_COROUTINE_STACK_SIZE", STACK_SIZE_ENV, true);
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/coroutine/basic/create-enter-terminate",
                    test_create_enter_terminate);
    g_test_add_func("/coroutine/basic/self-and-in-coroutine",
                    test_self_and_in_coroutine);
    g_test_add_func("/coroutine/basic/yield-order", test_yield_order);
    g_test_add_func("/coroutine/basic/yield-1000-times", test_yield_many);
    g_test_add_func("/coroutine/basic/enter-if-inactive",
                    test_enter_if_inactive);
    g_test_add_func("/coroutine/basic/get-aio-context",
                    test_get_aio_context);
    g_test_add_func("/coroutine/nesting/128-deep", test_nesting);
    g_test_add_func("/coroutine/nesting/yield-returns-to-caller",
                    test_nesting_yield_goes_to_caller);
    g_test_add_func("/coroutine/tls/accessors", test_co_tls_accessors);
    g_test_add_func("/coroutine/pool/same-object-reused", test_pool_reuse);
    g_test_add_func("/coroutine/pool/mappings-bounded",
                    test_pool_mappings_bounded);
    g_test_add_func("/coroutine/pool/size-adjust", test_pool_size_adjust);
    g_test_add_func("/coroutine/many/100000-live", test_many_live);
    g_test_add_func("/coroutine/stack/overflow-faults-at-guard",
                    test_stack_overflow_faults);
    g_test_add_func("/coroutine/abort/enter-running",
                    test_abort_enter_running);
    g_test_add_func("/coroutine/abort/enter-running-caller",
                    test_abort_enter_caller);
    g_test_add_func("/coroutine/abort/enter-terminated",
                    test_abort_enter_terminated);
    g_test_add_func("/coroutine/abort/yield-outside-coroutine",
                    test_abort_yield_outside);
    g_test_add_func("/coroutine/abort/dec-pool-size-below-zero",
                    test_abort_dec_pool_size_below_zero);
    return g_test_run();
}
