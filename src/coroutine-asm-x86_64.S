/*
 * coroutine-asm-x86_64.S: the coroutine register switch for x86-64
 * (System V ABI), used by coroutine-asm.c.
 *
 * coroutine_asm_switch(void **save_sp, void *new_sp, int action,
 * land, land_self, land_from) pushes the registers a callee must
 * preserve (rbx, rbp, r12-r15) on the current stack, above which its own
 * return address already sits, stores rsp in *save_sp, switches to
 * new_sp and pops the same registers from there.  Everything else is
 * caller-saved, so the C compiler has already spilled what it needs.
 * The return address left on the new stack is where that side resumes:
 * we pop it and jump there with eax = action, as if the call that saved
 * it returned -- after calling land(land_self, land_from, action), whose
 * result eax then is, if land is not NULL.
 *
 * Why pop and jump rather than ret: the return stack predictor holds the
 * calls made on the stack we just left, so a ret here always
 * mispredicts (and so does the next one up, and so on), while the
 * indirect-branch predictor learns where this jump goes.  coroutine-asm.c
 * tail-calls us, so the saved address is already the caller of
 * qemu_aio_coroutine_enter or qemu_coroutine_yield: no ret on either
 * side of a switch.  With IBT on (-fcf-protection=branch) an indirect
 * jump must land on endbr64, which return addresses are not, so that
 * build resumes with ret.
 *
 * Not saved: MXCSR and the x87 control word.  The ABI calls their control
 * bits callee-saved, but they are the thread's floating-point
 * environment (rounding mode, exception masks), not per-call state: like
 * glibc's setjmp/longjmp (QEMU's own switch) we leave them to the thread,
 * which saves two loads that serialize the pipeline.  A coroutine that
 * changes the rounding mode must restore it before it yields.
 *
 * coroutine_asm_start is the resume address of a new coroutine's first
 * frame: rbx holds its CoroutineAsm and rsp is 16-byte aligned at the top
 * of its stack.  The unwind info ends the call chain there, so debuggers
 * and sanitizer stack traces stop cleanly.
 *
 * Threading: none; the caller owns both stacks.
 */

#if defined(__CET__) && (__CET__ & 1)
#define ENDBR endbr64
#define CET_IBT 1
#else
#define ENDBR
#define CET_IBT 0
#endif

    .text

    .globl  coroutine_asm_switch
    .hidden coroutine_asm_switch
    .type   coroutine_asm_switch, @function
    .p2align 4
coroutine_asm_switch:
    .cfi_startproc
    ENDBR
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    movq    %rsp, (%rdi)
    /* The other side's frame has the same shape: the CFA rule holds. */
    movq    %rsi, %rsp
    popq    %r15
    .cfi_adjust_cfa_offset -8
    popq    %r14
    .cfi_adjust_cfa_offset -8
    popq    %r13
    .cfi_adjust_cfa_offset -8
    popq    %r12
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    testq   %rcx, %rcx
    jnz     2f
    movl    %edx, %eax
1:
#if CET_IBT
    ret
#else
    .cfi_remember_state
    popq    %rcx
    .cfi_adjust_cfa_offset -8
    .cfi_register rip, rcx
    jmpq    *%rcx
    .cfi_restore_state
#endif
2:
    /*
     * land(land_self, land_from, action), action already in edx.  Called
     * rather than jumped to, so that its ret is one the predictor saw
     * coming; the pad keeps the stack aligned as at the resume address.
     */
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    movq    %r8, %rdi
    movq    %r9, %rsi
    callq   *%rcx
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    jmp     1b
    .cfi_endproc
    .size   coroutine_asm_switch, .-coroutine_asm_switch

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
