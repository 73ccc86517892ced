/*
 * coroutine-asm-x86_64.S: the coroutine register switch for x86-64
 * (System V ABI), used by coroutine-asm.c.
 *
 * coroutine_asm_swap(void **save_sp, void *new_sp) pushes the registers
 * a callee must preserve (rbx, rbp, r12-r15) on the current stack, stores
 * rsp in *save_sp, switches to new_sp and pops the same registers from
 * there; its ret then returns into whoever saved new_sp.  Everything else
 * is caller-saved, so the C compiler has already spilled what it needs.
 *
 * Not saved: MXCSR and the x87 control word.  The ABI calls their control
 * bits callee-saved, but they are the thread's floating-point
 * environment (rounding mode, exception masks), not per-call state: like
 * glibc's setjmp/longjmp (QEMU's own switch) we leave them to the thread,
 * which saves two loads that serialize the pipeline.  A coroutine that
 * changes the rounding mode must restore it before it yields.
 *
 * coroutine_asm_start is where a new coroutine's first switch "returns"
 * to: rbx holds its CoroutineAsm and rsp is 16-byte aligned at the top
 * of its stack.  The unwind info ends the call chain there, so debuggers
 * and sanitizer stack traces stop cleanly.
 *
 * Threading: none; the caller owns both stacks.
 */

#if defined(__CET__) && (__CET__ & 1)
#define ENDBR endbr64
#else
#define ENDBR
#endif

    .text

    .globl  coroutine_asm_swap
    .hidden coroutine_asm_swap
    .type   coroutine_asm_swap, @function
    .p2align 4
coroutine_asm_swap:
    .cfi_startproc
    ENDBR
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   coroutine_asm_swap, .-coroutine_asm_swap

    .globl  coroutine_asm_start
    .hidden coroutine_asm_start
    .type   coroutine_asm_start, @function
    .p2align 4
coroutine_asm_start:
    .cfi_startproc
    .cfi_undefined rip
    ENDBR
    xorl    %ebp, %ebp
    movq    %rbx, %rdi
    call    coroutine_asm_entry
    ud2
    .cfi_endproc
    .size   coroutine_asm_start, .-coroutine_asm_start

    .section .note.GNU-stack, "", @progbits

#if defined(__CET__) && (__CET__ & 1)
    /*
     * GNU property note: IBT-compatible (endbr64 above).  Not shadow-stack
     * compatible -- the switch moves rsp under the shadow stack's feet --
     * so SHSTK is deliberately not claimed and the linker turns it off.
     */
    .pushsection .note.gnu.property, "a"
    .p2align 3
    .long   4                   /* name size */
    .long   16                  /* descriptor size */
    .long   5                   /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000002          /* GNU_PROPERTY_X86_FEATURE_1_AND */
    .long   4
    .long   1                   /* IBT */
    .long   0
    .popsection
#endif
