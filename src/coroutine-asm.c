/*
 * coroutine-asm.c: the assembly switch backend (x86-64 and aarch64).
 *
 * Owns the backend object (CoroutineAsm), the first frame of a new
 * coroutine, the per-thread leader, and the sanitizer bookkeeping around
 * each switch.  The register switch itself is coroutine_asm_switch() in
 * coroutine-asm-<arch>.S: it saves the callee-saved registers on the old
 * stack, stores the stack pointer, loads the new one and restores -- no
 * system call, no signal mask, no floating-point state beyond what the
 * ABI makes callee-saved (d8-d15 on aarch64; none on x86-64, see the .S
 * file for MXCSR and the x87 control word).
 *
 * No return instruction after a stack switch, on the common path: the
 * CPU predicts a return from the calls it has seen on this stack, and
 * after a switch those are the other stack's, so every such return
 * mispredicts.  qemu_aio_coroutine_enter() and qemu_coroutine_yield()
 * tail-call qemu_coroutine_switch(), which tail-calls the assembly, so
 * the resume address the assembly saves is the return address of
 * whoever called enter or yield; the other side later jumps straight
 * there (x86-64; aarch64 returns with ret, see its .S file).  Whatever
 * must run on the resumed side first -- coroutine_enter_finish() after
 * a coroutine terminated or woke others, the ASan fiber handshake -- the
 * switching side asks the assembly for: it then runs coroutine_asm_land()
 * on the resumed stack before it goes on to the resume address.
 *
 * Threading: each thread has its own leader (its own stack, as a
 * pseudo-coroutine).  A coroutine may resume in another thread, so the
 * thread-local variables are touched only before the switch, by
 * out-of-line functions (see coroutine_current in coroutine-int.h).
 */
#include "qemu/osdep.h"
#include "qemu/coroutine-tls.h"     /* QEMU_CO_TLS_FN_ */
#include "qemu/error-report.h"
#include "coroutine-int.h"
#include "coroutine-backend.h"

typedef struct CoroutineAsm {
    Coroutine base;
    /* The stack pointer saved by coroutine_asm_switch while switched out. */
    void *sp;
    CoroutineStack stack;
    CoroutineFiber fiber;
} CoroutineAsm;

/*
 * What the assembly runs on the resumed side of a switch, when that side
 * has work to do before it goes on, with @self the resumed coroutine,
 * @from the one that switched to it and @action what @from passed.  Its
 * result is what the resumed side's switch returns.
 */
typedef CoroutineAction CoroutineAsmLand(Coroutine *self, Coroutine *from,
                                         CoroutineAction action);

/*
 * coroutine-asm-<arch>.S.  Saves the callee-saved registers and the
 * resume address (its own return address) on the current stack, stores
 * the stack pointer in *@save_sp, switches to @new_sp and restores what
 * the other side saved there.  Then it "returns" @action to that side's
 * resume address -- unless @land is not NULL: then it runs
 * @land(@land_self, @land_from, @action) there first, and its result
 * is what returns.
 */
CoroutineAction coroutine_asm_switch(void **save_sp, void *new_sp,
                                     CoroutineAction action,
                                     CoroutineAsmLand *land,
                                     Coroutine *land_self,
                                     Coroutine *land_from)
    __attribute__((visibility("hidden")));
void coroutine_asm_start(void) __attribute__((visibility("hidden")));

/* Called by coroutine_asm_start on a new stack; never returns. */
void coroutine_asm_entry(CoroutineAsm *self)
    __attribute__((visibility("hidden"), noreturn));

/* The thread's leader; only coroutine_leader() takes its address. */
static QAIO_THREAD_LOCAL CoroutineAsm leader;

/*
 * The frame coroutine_asm_switch restores when it first switches to a
 * new stack: the callee-saved registers (zero, except the one carrying
 * @self), then the resume address, coroutine_asm_start.  Keep in step
 * with the push/pop order in the .S files.
 */
static void *coroutine_asm_first_frame(CoroutineAsm *self)
{
    uintptr_t *hi = (uintptr_t *)((uintptr_t)self->stack.hi & ~(uintptr_t)15);
    uintptr_t *sp;

#if defined(__x86_64__)
    /*
     * From the saved stack pointer up: r15 r14 r13 r12 rbx rbp, return
     * address.  The return address sits just below @hi, so that
     * coroutine_asm_start runs with rsp == hi, 16-byte aligned (the
     * assembly pops the return address and jumps to it), and its call
     * gives coroutine_asm_entry the alignment the ABI promises.
     */
    sp = hi - 7;
    memset(sp, 0, 7 * sizeof(*sp));
    sp[4] = (uintptr_t)self;                        /* rbx */
    sp[6] = (uintptr_t)coroutine_asm_start;         /* return address */
#elif defined(__aarch64__)
    /*
     * 20 slots from the saved stack pointer up: x19..x28, x29, x30,
     * d8..d15.  x19 carries @self, x30 is where the final ret goes.
     */
    sp = hi - 20;
    memset(sp, 0, 20 * sizeof(*sp));
    sp[0] = (uintptr_t)self;                        /* x19 */
    sp[11] = (uintptr_t)coroutine_asm_start;        /* x30 */
#else
#error "coroutine_backend=asm supports x86_64 and aarch64 only"
#endif
    return sp;
}

Coroutine *qemu_coroutine_new(void)
{
    CoroutineAsm *co = g_new0(CoroutineAsm, 1);

    co_stack_alloc(&co->stack);
    co_fiber_init(&co->fiber, &co->stack);
    co->sp = coroutine_asm_first_frame(co);
    return &co->base;
}

void qemu_coroutine_delete(Coroutine *co_)
{
    CoroutineAsm *co = container_of(co_, CoroutineAsm, base);

    co_fiber_destroy(&co->fiber);
    co_stack_free(&co->stack);
    g_free(co);
}

/*
 * Reached through coroutine_asm_land (sanitizer builds) or straight from
 * the first switch: the fiber handshake is coroutine_asm_land's.
 */
void coroutine_asm_entry(CoroutineAsm *self)
{
    Coroutine *co = &self->base;

    for (;;) {
        co->entry(co->entry_arg);
        /* Re-entered only after the pool hands us out again. */
        qemu_coroutine_switch(co, co->caller, COROUTINE_TERMINATE);
    }
}

/*
 * The first thing @self runs after a switch, when there is something to
 * do: ASan's end of the switch (every switch in such a build), then the
 * end of the enter that @from gives control back from.
 */
static CoroutineAction coroutine_asm_land(Coroutine *self, Coroutine *from,
                                          CoroutineAction action)
{
    co_fiber_switch_end(&container_of(self, CoroutineAsm, base)->fiber);
    if (coroutine_leave_needs_finish(from, self, action)) {
        coroutine_enter_finish(self, from, action);
    }
    return action;
}

/*
 * Out of line and opaque: the thread-local write happens before the
 * switch and nothing thread-local is read after it, and no caller may
 * carry a thread-local address across it.
 *
 * Ends in a tail call of the assembly (nothing to do after it here), so
 * that the assembly saves our caller's return address as the resume
 * address.  ThreadSanitizer's instrumentation puts its function-exit
 * hook after the call, which then is an ordinary call: the hook runs
 * once we are back, on our own fiber, as it must.
 */
CoroutineAction QEMU_CO_TLS_FN_
qemu_coroutine_switch(Coroutine *from_, Coroutine *to_,
                      CoroutineAction action)
{
    CoroutineAsm *from = container_of(from_, CoroutineAsm, base);
    CoroutineAsm *to = container_of(to_, CoroutineAsm, base);
    CoroutineAsmLand *land = NULL;

    coroutine_current = to_;
    if (CO_FIBER_HAS_SWITCH_END ||
        unlikely(coroutine_leave_needs_finish(from_, to_, action))) {
        land = coroutine_asm_land;
    }
    co_fiber_switch_begin(&from->fiber, &to->fiber,
                          action == COROUTINE_TERMINATE);
    return coroutine_asm_switch(&from->sp, to->sp, action, land, to_, from_);
}

Coroutine * QEMU_CO_TLS_FN_ coroutine_leader(void)
{
    CoroutineAsm *l = &leader;

    co_fiber_init_leader(&l->fiber);
    QSIMPLEQ_INIT(&l->base.co_queue_wakeup);
    return &l->base;
}
