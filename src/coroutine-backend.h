/*
 * coroutine-backend.h: what the two switch backends (coroutine-asm.c,
 * coroutine-ucontext.c) share: coroutine stacks (coroutine-stack.c) and
 * the annotations that tell AddressSanitizer, ThreadSanitizer and
 * valgrind about stack switches.
 *
 * Threading: a CoroutineStack and a CoroutineFiber belong to one
 * coroutine (or one thread's leader) and are touched only by whoever runs
 * or switches to it.  co_stack_alloc/free may be called from any thread.
 */
#ifndef QAIO_COROUTINE_BACKEND_H
#define QAIO_COROUTINE_BACKEND_H

#include "qemu/osdep.h"

#ifdef QEMU_SANITIZE_ADDRESS
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef QEMU_SANITIZE_THREAD
#include <sanitizer/tsan_interface.h>
#endif

/* ---- Stacks (coroutine-stack.c) ----------------------------------------- */

/*
 * A coroutine stack: [lo, hi) is usable, the stack grows down from hi.
 * Normally a mapping of its own with a PROT_NONE guard page just below
 * lo, so that an overflow faults instead of corrupting memory.
 */
typedef struct CoroutineStack {
    void *lo;
    void *hi;
    void *map;              /* the mapping, guard page included */
    size_t map_size;
    bool slab;              /* carved from a slab: see coroutine-stack.c */
    unsigned valgrind_id;
} CoroutineStack;

/*
 * Allocate a stack of co_stack_size() bytes; aborts with a message if the
 * address space or the mapping count is exhausted.
 */
void co_stack_alloc(CoroutineStack *st);
void co_stack_free(CoroutineStack *st);

/*
 * Usable bytes of every stack: QAIO_COROUTINE_STACK_SIZE (bytes, or with a
 * K/M suffix) read once, else 1 MiB, rounded up to whole pages.
 */
size_t co_stack_size(void);

/* Stacks allocated and not freed yet, guarded or not (for tests). */
unsigned co_stack_count(void);

/*
 * How many coroutines the pools may keep without endangering the
 * process's limit on memory mappings (vm.max_map_count): each pooled
 * coroutine holds two mappings.
 */
unsigned co_stack_pool_hard_max(void);

/* ---- Sanitizer fibers --------------------------------------------------- */

/*
 * Per coroutine (and per thread leader) sanitizer state.  Empty unless
 * the library is built with -fsanitize=address or =thread.
 */
typedef struct CoroutineFiber {
#ifdef QEMU_SANITIZE_ADDRESS
    /* ASan's fake stack of this fiber while it is switched out. */
    void *asan_fake_stack;
    /* The stack ASan must move to when switching here. */
    const void *asan_bottom;
    size_t asan_size;
    /* Who switched to us last: we tell ASan its stack bounds. */
    struct CoroutineFiber *asan_resumer;
#endif
#ifdef QEMU_SANITIZE_THREAD
    void *tsan_fiber;
    bool tsan_owned;        /* created by us, not the thread's own */
#endif
    char unused_;           /* keeps the struct non-empty */
} CoroutineFiber;

/* A coroutine's fiber, running on @st. */
static inline void co_fiber_init(CoroutineFiber *f, const CoroutineStack *st)
{
#ifdef QEMU_SANITIZE_ADDRESS
    f->asan_fake_stack = NULL;
    f->asan_bottom = st->lo;
    f->asan_size = (char *)st->hi - (char *)st->lo;
#endif
#ifdef QEMU_SANITIZE_THREAD
    f->tsan_fiber = __tsan_create_fiber(0);
    f->tsan_owned = true;
#endif
}

/*
 * A thread's leader: the thread's own stack.  ASan learns its bounds when
 * the leader first switches away (co_fiber_switch_end in the coroutine).
 */
static inline void co_fiber_init_leader(CoroutineFiber *f)
{
#ifdef QEMU_SANITIZE_THREAD
    f->tsan_fiber = __tsan_get_current_fiber();
    f->tsan_owned = false;
#endif
}

static inline void co_fiber_destroy(CoroutineFiber *f)
{
#ifdef QEMU_SANITIZE_THREAD
    if (f->tsan_owned) {
        __tsan_destroy_fiber(f->tsan_fiber);
    }
#endif
}

/*
 * Call right before the machine switch from @from to @to.  A terminating
 * coroutine hands ASan no fake-stack slot, so ASan frees its fake frames:
 * they are dead (the pool restarts the coroutine's loop afresh).
 *
 * Always inlined: under ThreadSanitizer a function of its own would enter
 * on one fiber's shadow call stack and, after __tsan_switch_to_fiber,
 * return on the other's, which corrupts both.
 */
static inline QEMU_ALWAYS_INLINE
void co_fiber_switch_begin(CoroutineFiber *from, CoroutineFiber *to,
                           bool terminating)
{
#ifdef QEMU_SANITIZE_ADDRESS
    to->asan_resumer = from;
    if (terminating) {
        from->asan_fake_stack = NULL;
    }
    __sanitizer_start_switch_fiber(terminating ? NULL : &from->asan_fake_stack,
                                   to->asan_bottom, to->asan_size);
#endif
#ifdef QEMU_SANITIZE_THREAD
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
}

/*
 * Whether co_fiber_switch_end() does anything in this build: a backend
 * that would otherwise run no code of its own on the resumed side (see
 * coroutine-asm.c) must arrange to when it does.
 */
#ifdef QEMU_SANITIZE_ADDRESS
#define CO_FIBER_HAS_SWITCH_END 1
#else
#define CO_FIBER_HAS_SWITCH_END 0
#endif

/* Call first thing once @self runs again after a switch. */
static inline QEMU_ALWAYS_INLINE
void co_fiber_switch_end(CoroutineFiber *self)
{
#ifdef QEMU_SANITIZE_ADDRESS
    CoroutineFiber *resumer = self->asan_resumer;

    __sanitizer_finish_switch_fiber(self->asan_fake_stack,
                                    &resumer->asan_bottom,
                                    &resumer->asan_size);
#endif
}

#endif /* QAIO_COROUTINE_BACKEND_H */
