/*
 * coroutine-ucontext.c: the portable switch backend.
 *
 * Owns the backend object (CoroutineUContext), the per-thread leader, and
 * the sanitizer bookkeeping around each switch.
 *
 * A new coroutine starts with makecontext()/swapcontext(), once, at
 * creation: its start function saves a sigjmp_buf and goes straight back
 * (setcontext).  Every later switch is sigsetjmp(env, 0) + siglongjmp(), which
 * with a zero savemask is a register save and restore in user space: no
 * signal-mask system call, unlike swapcontext().
 *
 * Build quirk: this file is compiled with -U_FORTIFY_SOURCE.  The
 * fortified siglongjmp (__longjmp_chk) refuses, or asks the kernel about
 * sigaltstack, when it jumps to a frame on another stack, which is every
 * switch here.
 *
 * Threading: each thread has its own leader (its own stack, as a
 * pseudo-coroutine).  A coroutine may resume in another thread, so the
 * thread-local variables are touched only before the switch, by
 * out-of-line functions (see coroutine_current in coroutine-int.h).
 */
#include "qemu/osdep.h"
#include <setjmp.h>
#include <ucontext.h>
#include "qemu/coroutine-tls.h"     /* QEMU_CO_TLS_FN_ */
#include "qemu/error-report.h"
#include "coroutine-int.h"
#include "coroutine-backend.h"

#ifdef _FORTIFY_SOURCE
#error "coroutine-ucontext.c must be built with -U_FORTIFY_SOURCE"
#endif

typedef struct CoroutineUContext {
    Coroutine base;
    sigjmp_buf env;
    CoroutineStack stack;
    CoroutineFiber fiber;
} CoroutineUContext;

/* What qemu_coroutine_new() hands the start function. */
typedef struct CoroutineStart {
    CoroutineUContext *self;
    ucontext_t creator_uc;
    CoroutineFiber *creator_fiber;
} CoroutineStart;

/* The thread's leader; only coroutine_leader() takes its address. */
static QAIO_THREAD_LOCAL CoroutineUContext leader;

static CoroutineUContext *to_ucontext(Coroutine *co)
{
    return container_of(co, CoroutineUContext, base);
}

/*
 * makecontext() passes int arguments only: the CoroutineStart pointer
 * travels in two halves.
 */
static void coroutine_start(int hi, int lo)
{
    uintptr_t bits = ((uintptr_t)(unsigned)hi << 31 << 1) | (unsigned)lo;
    CoroutineStart *start = (CoroutineStart *)bits;
    CoroutineUContext *self = start->self;
    Coroutine *co = &self->base;

    co_fiber_switch_end(&self->fiber);
    if (!sigsetjmp(self->env, 0)) {
        /*
         * Ready: back into qemu_coroutine_new()'s swapcontext until the
         * first entry, which siglongjmps to the sigsetjmp above.  Going
         * back with setcontext rather than siglongjmp keeps
         * ThreadSanitizer's setjmp bookkeeping simple: its siglongjmp
         * checks only ever see a jump into the fiber that saved the buf.
         */
        co_fiber_switch_begin(&self->fiber, start->creator_fiber, false);
        setcontext(&start->creator_uc);
        abort();
    }
    /* @start was on the creator's stack and is gone now. */
    co_fiber_switch_end(&self->fiber);

    for (;;) {
        co->entry(co->entry_arg);
        /* Re-entered only after the pool hands us out again. */
        qemu_coroutine_switch(co, co->caller, COROUTINE_TERMINATE);
    }
}

Coroutine *qemu_coroutine_new(void)
{
    CoroutineUContext *co = g_new0(CoroutineUContext, 1);
    CoroutineUContext *creator = to_ucontext(qemu_coroutine_self());
    CoroutineStart start = {
        .self = co,
        .creator_fiber = &creator->fiber,
    };
    uintptr_t bits = (uintptr_t)&start;
    ucontext_t uc;

    co_stack_alloc(&co->stack);
    co_fiber_init(&co->fiber, &co->stack);

    if (getcontext(&uc) < 0) {
        error_report("qemu_coroutine_create: getcontext failed: %s",
                     g_strerror(errno));
        abort();
    }
    uc.uc_link = NULL;
    uc.uc_stack.ss_sp = co->stack.lo;
    uc.uc_stack.ss_size = (char *)co->stack.hi - (char *)co->stack.lo;
    uc.uc_stack.ss_flags = 0;
    makecontext(&uc, (void (*)(void))coroutine_start, 2,
                (int)(bits >> 31 >> 1), (int)(unsigned)bits);

    /*
     * One trip to the new stack and back, with the signal-mask system
     * calls of swapcontext/setcontext: once per stack, never per switch.
     */
    co_fiber_switch_begin(&creator->fiber, &co->fiber, false);
    if (swapcontext(&start.creator_uc, &uc) < 0) {
        error_report("qemu_coroutine_create: swapcontext failed: %s",
                     g_strerror(errno));
        abort();
    }
    co_fiber_switch_end(&creator->fiber);
    return &co->base;
}

void qemu_coroutine_delete(Coroutine *co_)
{
    CoroutineUContext *co = to_ucontext(co_);

    co_fiber_destroy(&co->fiber);
    co_stack_free(&co->stack);
    g_free(co);
}

/*
 * Out of line and opaque: the thread-local write happens before the
 * switch and nothing thread-local is read after it, and no caller may
 * carry a thread-local address across it.
 */
CoroutineAction QEMU_CO_TLS_FN_
qemu_coroutine_switch(Coroutine *from_, Coroutine *to_,
                      CoroutineAction action)
{
    CoroutineUContext *from = to_ucontext(from_);
    CoroutineUContext *to = to_ucontext(to_);
    int ret;

    coroutine_current = to_;
    ret = sigsetjmp(from->env, 0);
    if (ret == 0) {
        co_fiber_switch_begin(&from->fiber, &to->fiber,
                              action == COROUTINE_TERMINATE);
        siglongjmp(to->env, action);
    }
    co_fiber_switch_end(&from->fiber);

    /* Resumed by a yield or a termination: then our switch entered @to. */
    if (unlikely(coroutine_leave_needs_finish(to_, from_, ret))) {
        coroutine_enter_finish(from_, to_, ret);
    }
    return ret;
}

Coroutine * QEMU_CO_TLS_FN_ coroutine_leader(void)
{
    CoroutineUContext *l = &leader;

    co_fiber_init_leader(&l->fiber);
    QSIMPLEQ_INIT(&l->base.co_queue_wakeup);
    return &l->base;
}
