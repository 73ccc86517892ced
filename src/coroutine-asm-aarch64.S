/*
 * coroutine-asm-aarch64.S: the coroutine register switch for aarch64
 * (AAPCS64), used by coroutine-asm.c.
 *
 * coroutine_asm_switch(void **save_sp, void *new_sp, int action, land,
 * land_self, land_from) stores the registers a callee must preserve --
 * x19-x28, the frame pointer x29, the link register x30 and the low
 * halves d8-d15 of v8-v15 -- in a 160-byte frame on the current stack,
 * stores sp in *save_sp, switches to new_sp and loads the same frame from
 * there.  With land NULL it then returns action to the x30 it holds;
 * else it tail-calls land(land_self, land_from, action), which returns
 * there.  Unlike the x86-64 version this resumes with ret, which the
 * return predictor gets wrong after a stack switch: a BTI-guarded br may
 * land only on a bti instruction, which return addresses are not.  Frame
 * layout (offsets from sp): x19/x20 0, x21/x22 16, x23/x24 32, x25/x26 48,
 * x27/x28 64, x29/x30 80, d8/d9 96, d10/d11 112, d12/d13 128, d14/d15 144;
 * coroutine_asm_first_frame() in coroutine-asm.c builds the first one.
 * FPCR (rounding mode) is the thread's, as with glibc's longjmp.
 *
 * coroutine_asm_start is where a new coroutine's first switch returns
 * to (directly or through land): x19 holds its CoroutineAsm.  The unwind
 * info ends the call chain.
 *
 * Threading: none; the caller owns both stacks.
 */

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI_C hint 34
#else
#define BTI_C
#endif

    .text

    .globl  coroutine_asm_switch
    .hidden coroutine_asm_switch
    .type   coroutine_asm_switch, %function
    .p2align 4
coroutine_asm_switch:
    .cfi_startproc
    BTI_C
    sub     sp, sp, #160
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160
    cbnz    x3, 1f
    mov     w0, w2
    ret
1:
    /*
     * land(land_self, land_from, action), action already in w2, x30 the
     * resume address.  Through x16: BTI lets br x16 land on bti c.
     */
    mov     x0, x4
    mov     x1, x5
    mov     x16, x3
    br      x16
    .cfi_endproc
    .size   coroutine_asm_switch, .-coroutine_asm_switch

    .globl  coroutine_asm_start
    .hidden coroutine_asm_start
    .type   coroutine_asm_start, %function
    .p2align 4
coroutine_asm_start:
    .cfi_startproc
    .cfi_undefined x30
    /* Reached by ret, which BTI does not check: no landing pad. */
    mov     x29, #0
    mov     x0, x19
    bl      coroutine_asm_entry
    brk     #0
    .cfi_endproc
    .size   coroutine_asm_start, .-coroutine_asm_start

    .section .note.GNU-stack, "", %progbits

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
    /* GNU property note: this object is BTI-compatible. */
    .pushsection .note.gnu.property, "a"
    .p2align 3
    .word   4                   /* name size */
    .word   16                  /* descriptor size */
    .word   5                   /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .word   0xc0000000          /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .word   4
    .word   1                   /* BTI */
    .word   0
    .popsection
#endif
