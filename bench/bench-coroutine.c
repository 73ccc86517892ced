/*
 * bench-coroutine.c: what a coroutine switch costs, against baselines
 * measured in the same run.  A standalone program (bench-coroutine), not
 * part of the event-loop driver.
 *
 * Rows (each the median of --runs runs, with the spread min..max):
 *   qaio enter+yield         qemu_coroutine_enter + qemu_coroutine_yield,
 *                            the backend this build uses
 *   bare register switch     two hand-written swaps, nothing else: the floor
 *                            (returning with ret, and fcontext-style jmp)
 *   sigsetjmp, 2 levels      QEMU's ucontext-backend technique, called
 *                            through two function levels as an API does
 *   swapcontext              glibc's, with its two signal-mask syscalls
 *   create+enter+terminate   with the pool warm, then with no pool (a fresh
 *                            mmap'd stack each time)
 *   cross-thread bounce      a coroutine moved between two threads, each
 *                            running aio_poll on its own AioContext, by
 *                            aio_co_reschedule_self (one aio_co_schedule a
 *                            hop), against a BH ping-pong between the same
 *                            two contexts; per hop
 *
 * Usage: bench-coroutine [--runs N] [--quick]
 *
 * Threading: everything in main, except the two loop threads of the
 * cross-thread rows.
 *
 * Built with -U_FORTIFY_SOURCE: the baseline's siglongjmp crosses stacks.
 */
#include "qemu/osdep.h"
#include <setjmp.h>
#include <ucontext.h>
#include <sys/mman.h>
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/thread.h"

static int n_runs = 11;
static long scale = 1;          /* --quick divides the work by 10 */

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

typedef struct Result {
    double median, min, max;
} Result;

static Result summarize(double *v)
{
    Result r;

    qsort(v, n_runs, sizeof(*v), cmp_double);
    r.median = v[n_runs / 2];
    r.min = v[0];
    r.max = v[n_runs - 1];
    return r;
}

/* Run @fn(@iters) n_runs times; ns per iteration. */
static Result measure(double (*fn)(long iters), long iters)
{
    double *v = g_new(double, n_runs);
    Result r;
    int i;

    fn(iters / 10 + 1);                 /* warm up */
    for (i = 0; i < n_runs; i++) {
        v[i] = fn(iters);
    }
    r = summarize(v);
    g_free(v);
    return r;
}

typedef struct Scenario {
    double (*fn)(long iters);
    long iters;
    Result result;
} Scenario;

/*
 * Run several scenarios round-robin, one run of each per round, so that
 * a burst of noise from other processes hits all of them alike and the
 * ratios between them stay honest.
 */
static void measure_interleaved(Scenario *sc, int n)
{
    double *v = g_new(double, (size_t)n * n_runs);
    int i, j;

    for (j = 0; j < n; j++) {
        sc[j].fn(sc[j].iters / 10 + 1);         /* warm up */
    }
    for (i = 0; i < n_runs; i++) {
        for (j = 0; j < n; j++) {
            v[(size_t)j * n_runs + i] = sc[j].fn(sc[j].iters);
        }
    }
    for (j = 0; j < n; j++) {
        sc[j].result = summarize(&v[(size_t)j * n_runs]);
    }
    g_free(v);
}

static void print_row(const char *name, Result r, const char *vs_name,
                      Result vs)
{
    printf("%-34s %9.1f ns  (%7.1f .. %7.1f)", name, r.median, r.min, r.max);
    if (vs_name) {
        printf("  %5.2fx %s", r.median / vs.median, vs_name);
    }
    printf("\n");
}

/* ---- qaio enter + yield -------------------------------------------------- */

static void coroutine_fn yield_forever(void *opaque)
{
    for (;;) {
        qemu_coroutine_yield();
    }
}

static Coroutine *yield_co;

static double run_qaio_enter_yield(long iters)
{
    int64_t t0 = now_ns();
    long i;

    for (i = 0; i < iters; i++) {
        qemu_coroutine_enter(yield_co);
    }
    return (double)(now_ns() - t0) / iters;
}

/* ---- The floor: a bare register switch ----------------------------------- */

#if defined(__x86_64__) || defined(__aarch64__)
#define HAVE_BARE_SWITCH 1
void bench_bare_swap(void **save_sp, void *new_sp);
void bench_bare_start(void);

#if defined(__x86_64__)
#define HAVE_BARE_SWITCH_JMP 1
void bench_bare_swap_jmp(void **save_sp, void *new_sp);

/*
 * bench_bare_swap returns with ret; the _jmp variant pops the return
 * address and jumps (Boost.Context's fcontext does this, and so does
 * qaio's x86-64 switch since it is reached by tail calls),
 * which in a tight ping-pong the indirect predictor learns, while ret
 * always mispredicts after a stack switch.  Real callers return through
 * several frames after a switch either way.
 */
__asm__(".text\n"
        ".p2align 4\n"
        "bench_bare_swap:\n"
        "  pushq %rbp\n pushq %rbx\n pushq %r12\n"
        "  pushq %r13\n pushq %r14\n pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n popq %r14\n popq %r13\n"
        "  popq %r12\n popq %rbx\n popq %rbp\n"
        "  ret\n"
        ".p2align 4\n"
        "bench_bare_swap_jmp:\n"
        "  pushq %rbp\n pushq %rbx\n pushq %r12\n"
        "  pushq %r13\n pushq %r14\n pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n popq %r14\n popq %r13\n"
        "  popq %r12\n popq %rbx\n popq %rbp\n"
        "  popq %rcx\n jmp *%rcx\n"
        "bench_bare_start:\n"
        "  movq %rbx, %rdi\n"
        "  call bench_bare_body\n"
        "  ud2\n");
#else
__asm__(".text\n"
        ".p2align 4\n"
        "bench_bare_swap:\n"
        "  sub sp, sp, #160\n"
        "  stp x19, x20, [sp, #0]\n stp x21, x22, [sp, #16]\n"
        "  stp x23, x24, [sp, #32]\n stp x25, x26, [sp, #48]\n"
        "  stp x27, x28, [sp, #64]\n stp x29, x30, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n stp d10, d11, [sp, #112]\n"
        "  stp d12, d13, [sp, #128]\n stp d14, d15, [sp, #144]\n"
        "  mov x9, sp\n str x9, [x0]\n mov sp, x1\n"
        "  ldp x19, x20, [sp, #0]\n ldp x21, x22, [sp, #16]\n"
        "  ldp x23, x24, [sp, #32]\n ldp x25, x26, [sp, #48]\n"
        "  ldp x27, x28, [sp, #64]\n ldp x29, x30, [sp, #80]\n"
        "  ldp d8, d9, [sp, #96]\n ldp d10, d11, [sp, #112]\n"
        "  ldp d12, d13, [sp, #128]\n ldp d14, d15, [sp, #144]\n"
        "  add sp, sp, #160\n"
        "  ret\n"
        "bench_bare_start:\n"
        "  mov x0, x19\n"
        "  bl bench_bare_body\n"
        "  brk #0\n");
#endif

/* One ping-pong partner per swap flavour: [0] ret, [1] jmp. */
typedef struct BareCo {
    void *main_sp, *co_sp;
    void (*swap)(void **save_sp, void *new_sp);
} BareCo;

static BareCo bare_cos[2];

void bench_bare_body(void *opaque);
void bench_bare_body(void *opaque)
{
    BareCo *b = opaque;

    for (;;) {
        b->swap(&b->co_sp, b->main_sp);
    }
}

static void bare_setup_one(BareCo *b,
                           void (*swap)(void **save_sp, void *new_sp))
{
    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uintptr_t *sp;

    g_assert(stack != MAP_FAILED);
    b->swap = swap;
    sp = (uintptr_t *)(stack + size);
#if defined(__x86_64__)
    sp -= 7;
    memset(sp, 0, 7 * sizeof(*sp));
    sp[4] = (uintptr_t)b;                       /* rbx */
    sp[6] = (uintptr_t)bench_bare_start;
#else
    sp -= 20;
    memset(sp, 0, 20 * sizeof(*sp));
    sp[0] = (uintptr_t)b;                       /* x19 */
    sp[11] = (uintptr_t)bench_bare_start;
#endif
    b->co_sp = sp;
}

static void bare_setup(void)
{
    bare_setup_one(&bare_cos[0], bench_bare_swap);
#ifdef HAVE_BARE_SWITCH_JMP
    bare_setup_one(&bare_cos[1], bench_bare_swap_jmp);
#endif
}

static double run_bare_on(BareCo *b, long iters)
{
    int64_t t0 = now_ns();
    long i;

    for (i = 0; i < iters; i++) {
        b->swap(&b->main_sp, b->co_sp);
    }
    return (double)(now_ns() - t0) / iters;
}

static double run_bare(long iters)
{
    return run_bare_on(&bare_cos[0], iters);
}

#ifdef HAVE_BARE_SWITCH_JMP
static double run_bare_jmp(long iters)
{
    return run_bare_on(&bare_cos[1], iters);
}
#endif
#endif

/* ---- sigsetjmp/siglongjmp, two levels deep ------------------------------- */

/*
 * What QEMU's ucontext backend does on every switch, reached through an
 * enter function and a switch function, as a coroutine API is.
 */
typedef struct SjCo {
    sigjmp_buf env;
    sigjmp_buf *caller_env;
} SjCo;

static SjCo sj_main, sj_co;
static ucontext_t sj_uc, sj_old_uc;

static int __attribute__((noinline)) sj_switch(SjCo *from, SjCo *to, int val)
{
    int ret = sigsetjmp(from->env, 0);

    if (ret == 0) {
        siglongjmp(to->env, val);
    }
    return ret;
}

static void __attribute__((noinline)) sj_enter(SjCo *co)
{
    sj_switch(&sj_main, co, 1);
}

static void __attribute__((noinline)) sj_yield(SjCo *self)
{
    sj_switch(self, &sj_main, 2);
}

static void sj_body(void)
{
    if (!sigsetjmp(sj_co.env, 0)) {
        siglongjmp(sj_main.env, 1);
    }
    for (;;) {
        sj_yield(&sj_co);
    }
}

static void sj_setup(void)
{
    size_t size = 64 * 1024;
    void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    g_assert(stack != MAP_FAILED);
    getcontext(&sj_uc);
    sj_uc.uc_stack.ss_sp = stack;
    sj_uc.uc_stack.ss_size = size;
    sj_uc.uc_link = NULL;
    makecontext(&sj_uc, sj_body, 0);
    if (!sigsetjmp(sj_main.env, 0)) {
        swapcontext(&sj_old_uc, &sj_uc);
    }
}

static double run_sigsetjmp(long iters)
{
    int64_t t0 = now_ns();
    long i;

    for (i = 0; i < iters; i++) {
        sj_enter(&sj_co);
    }
    return (double)(now_ns() - t0) / iters;
}

/* ---- swapcontext --------------------------------------------------------- */

static ucontext_t sc_main, sc_co;

static void sc_body(void)
{
    for (;;) {
        swapcontext(&sc_co, &sc_main);
    }
}

static void sc_setup(void)
{
    size_t size = 64 * 1024;
    void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    g_assert(stack != MAP_FAILED);
    getcontext(&sc_co);
    sc_co.uc_stack.ss_sp = stack;
    sc_co.uc_stack.ss_size = size;
    sc_co.uc_link = NULL;
    makecontext(&sc_co, sc_body, 0);
}

static double run_swapcontext(long iters)
{
    int64_t t0 = now_ns();
    long i;

    for (i = 0; i < iters; i++) {
        swapcontext(&sc_main, &sc_co);
    }
    return (double)(now_ns() - t0) / iters;
}

/* ---- create + enter + terminate ------------------------------------------ */

static void coroutine_fn nothing(void *opaque)
{
}

static double run_lifecycle(long iters)
{
    int64_t t0 = now_ns();
    long i;

    for (i = 0; i < iters; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(nothing, NULL));
    }
    return (double)(now_ns() - t0) / iters;
}

/* ---- Cross-thread: coroutine bounce and BH ping-pong --------------------- */

typedef struct LoopThread {
    QemuThread thread;
    AioContext *ctx;
    bool stop;                  /* atomic */
    QemuSemaphore ready;
} LoopThread;

static LoopThread loops[2];
static QemuSemaphore xt_done;

static void *loop_thread_fn(void *opaque)
{
    LoopThread *t = opaque;

    qemu_set_current_aio_context(t->ctx);
    qemu_sem_post(&t->ready);
    while (!qatomic_read(&t->stop)) {
        aio_poll(t->ctx, true);
    }
    return NULL;
}

static void stop_bh(void *opaque)
{
    qatomic_set(&((LoopThread *)opaque)->stop, true);
}

static void loops_start(void)
{
    int i;

    qemu_sem_init(&xt_done, 0);
    for (i = 0; i < 2; i++) {
        loops[i].ctx = aio_context_new(&error_abort);
        loops[i].stop = false;
        qemu_sem_init(&loops[i].ready, 0);
        qemu_thread_create(&loops[i].thread, "bench-loop", loop_thread_fn,
                           &loops[i], QEMU_THREAD_JOINABLE);
        qemu_sem_wait(&loops[i].ready);
    }
}

static void loops_stop(void)
{
    int i;

    for (i = 0; i < 2; i++) {
        aio_bh_schedule_oneshot(loops[i].ctx, stop_bh, &loops[i]);
        qemu_thread_join(&loops[i].thread);
        aio_context_unref(loops[i].ctx);
        qemu_sem_destroy(&loops[i].ready);
    }
    qemu_sem_destroy(&xt_done);
}

static long bounce_hops;

static void coroutine_fn bounce_entry(void *opaque)
{
    long i;

    for (i = 0; i < bounce_hops; i++) {
        aio_co_reschedule_self(loops[(i + 1) & 1].ctx);
    }
    qemu_sem_post(&xt_done);
}

static double run_bounce(long iters)
{
    int64_t t0 = now_ns();

    bounce_hops = iters;
    aio_co_schedule(loops[0].ctx, qemu_coroutine_create(bounce_entry, NULL));
    qemu_sem_wait(&xt_done);
    return (double)(now_ns() - t0) / iters;
}

static QEMUBH *pp_bh[2];
static long pp_left;

static void pp_cb(void *opaque)
{
    long side = (long)opaque;

    if (--pp_left == 0) {
        qemu_sem_post(&xt_done);
        return;
    }
    qemu_bh_schedule(pp_bh[!side]);
}

static double run_bh_pingpong(long iters)
{
    int64_t t0 = now_ns();

    pp_left = iters;
    qemu_bh_schedule(pp_bh[0]);
    qemu_sem_wait(&xt_done);
    return (double)(now_ns() - t0) / iters;
}

int main(int argc, char **argv)
{
    Result qaio, lifecycle, fresh, bounce, pp, sj, sc_;
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            n_runs = MAX(1, atoi(argv[++i]));
        } else if (!strcmp(argv[i], "--quick")) {
            scale = 10;
        } else {
            fprintf(stderr, "usage: %s [--runs N] [--quick]\n", argv[0]);
            return 2;
        }
    }

    printf("coroutine switch benchmark (backend: %s), %d runs, "
           "median (min .. max)\n\n",
#if defined(QAIO_COROUTINE_BACKEND)
           QAIO_COROUTINE_BACKEND,
#else
           "?",
#endif
           n_runs);

    /* Like a main loop or an IOThread: this thread runs a context. */
    qemu_set_current_aio_context(aio_context_new(&error_abort));

    yield_co = qemu_coroutine_create(yield_forever, NULL);
    qemu_coroutine_enter(yield_co);
    sj_setup();
    sc_setup();

    {
        Scenario sc[] = {
            { run_qaio_enter_yield, 5000000 / scale },
            { run_sigsetjmp, 5000000 / scale },
            { run_swapcontext, 200000 / scale },
#ifdef HAVE_BARE_SWITCH
            { run_bare, 5000000 / scale },
#endif
#ifdef HAVE_BARE_SWITCH_JMP
            { run_bare_jmp, 5000000 / scale },
#endif
        };

#ifdef HAVE_BARE_SWITCH
        bare_setup();
#endif
        measure_interleaved(sc, ARRAY_SIZE(sc));
        qaio = sc[0].result;
        sj = sc[1].result;
        sc_ = sc[2].result;
#ifdef HAVE_BARE_SWITCH
        print_row("bare register switch, ret", sc[3].result, NULL, qaio);
#endif
#ifdef HAVE_BARE_SWITCH_JMP
        print_row("bare register switch, jmp", sc[4].result, NULL, qaio);
#endif
    }
    print_row("sigsetjmp/siglongjmp, 2 levels", sj, NULL, sj);
    print_row("swapcontext (round trip)", sc_, NULL, sc_);
    print_row("qaio enter+yield", qaio, "sigsetjmp", sj);

    lifecycle = measure(run_lifecycle, 2000000 / scale);
    print_row("qaio create+enter+terminate, pool", lifecycle, NULL,
              lifecycle);
    qemu_coroutine_dec_pool_size(64);
    fresh = measure(run_lifecycle, 20000 / scale);
    qemu_coroutine_inc_pool_size(64);
    print_row("  same, no pool (fresh stack)", fresh, "pool", lifecycle);

    loops_start();
    pp_bh[0] = aio_bh_new(loops[0].ctx, pp_cb, (void *)0L);
    pp_bh[1] = aio_bh_new(loops[1].ctx, pp_cb, (void *)1L);
    {
        Scenario sc[] = {
            { run_bh_pingpong, 100000 / scale },
            { run_bounce, 100000 / scale },
        };

        measure_interleaved(sc, ARRAY_SIZE(sc));
        pp = sc[0].result;
        bounce = sc[1].result;
    }
    qemu_bh_delete(pp_bh[0]);
    qemu_bh_delete(pp_bh[1]);
    loops_stop();
    print_row("cross-thread BH ping-pong (hop)", pp, NULL, pp);
    print_row("cross-thread coroutine bounce (hop)", bounce, "BH ping-pong",
              pp);
    return 0;
}
