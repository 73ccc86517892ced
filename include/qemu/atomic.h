/*
 * qemu/atomic.h: QEMU's atomic operations and memory barriers, expressed
 * with the compiler's C11-model __atomic builtins.
 *
 * qatomic_read/qatomic_set are relaxed: they only promise the access is not
 * torn and not a data race.  Read-modify-write operations are sequentially
 * consistent and therefore also full barriers.  smp_mb/smp_wmb/smp_rmb order
 * the surrounding relaxed accesses; every use names the barrier it pairs with.
 */
#ifndef QEMU_ATOMIC_H
#define QEMU_ATOMIC_H

#include "qemu/compiler.h"

/* Compiler barrier: no reordering by the compiler, nothing for the CPU. */
#define barrier()   ({ asm volatile("" ::: "memory"); (void)0; })

#if defined(__x86_64__) && !defined(QEMU_SANITIZE_THREAD)
/*
 * On x86 a locked read-modify-write of a private stack word orders all
 * ordinary loads and stores like mfence does, at a fraction of the cost.
 * ThreadSanitizer builds keep the fence instruction; note that TSan does
 * not model fences at all, so code must not rely on a fence alone to make
 * TSan see an ordering: pair it with a release store or an RMW.
 */
#define smp_mb()            ({ asm volatile("lock; orl $0, -4(%%rsp)"     \
                                            ::: "memory", "cc"); (void)0; })
#else
#define smp_mb()            ({ barrier(); __atomic_thread_fence(__ATOMIC_SEQ_CST); })
#endif
#define smp_mb_release()    ({ barrier(); __atomic_thread_fence(__ATOMIC_RELEASE); })
#define smp_mb_acquire()    ({ barrier(); __atomic_thread_fence(__ATOMIC_ACQUIRE); })
#define smp_wmb()           smp_mb_release()
#define smp_rmb()           smp_mb_acquire()
#define smp_read_barrier_depends()  barrier()

/*
 * Read-modify-write operations below are already sequentially consistent on
 * every host we build for, so these only stop the compiler.
 */
#define smp_mb__before_rmw() barrier()
#define smp_mb__after_rmw()  barrier()

/* Refuse atomics on objects wider than a pointer: they would take a lock. */
#define ATOMIC_REG_SIZE sizeof(void *)
#define qatomic_check_size(ptr) \
    QEMU_BUILD_BUG_ON(sizeof(*(ptr)) > ATOMIC_REG_SIZE)

#define qatomic_read__nocheck(ptr)      __atomic_load_n(ptr, __ATOMIC_RELAXED)
#define qatomic_set__nocheck(ptr, i)    __atomic_store_n(ptr, i, __ATOMIC_RELAXED)

#define qatomic_read(ptr)                               \
    ({                                                  \
        qatomic_check_size(ptr);                        \
        qatomic_read__nocheck(ptr);                     \
    })

#define qatomic_set(ptr, i)                             \
    do {                                                \
        qatomic_check_size(ptr);                        \
        qatomic_set__nocheck(ptr, i);                   \
    } while (0)

#define qatomic_load_acquire(ptr)                       \
    ({                                                  \
        qatomic_check_size(ptr);                        \
        __atomic_load_n(ptr, __ATOMIC_ACQUIRE);         \
    })

#define qatomic_store_release(ptr, i)                   \
    do {                                                \
        qatomic_check_size(ptr);                        \
        __atomic_store_n(ptr, i, __ATOMIC_RELEASE);     \
    } while (0)

/*
 * Publication of a pointer (qatomic_rcu_set) and its dependent read
 * (qatomic_rcu_read).  Consume ordering is promoted to acquire by every
 * compiler, so say acquire and keep sanitizers informed.
 */
#define qatomic_rcu_read(ptr)       qatomic_load_acquire(ptr)
#define qatomic_rcu_set(ptr, i)     qatomic_store_release(ptr, i)

#define qatomic_xchg__nocheck(ptr, i) \
    __atomic_exchange_n(ptr, (i), __ATOMIC_SEQ_CST)
#define qatomic_xchg(ptr, i)    ({                      \
    qatomic_check_size(ptr);                            \
    qatomic_xchg__nocheck(ptr, i);                      \
})

/* Returns the value found at *ptr, which equals @old iff the swap happened. */
#define qatomic_cmpxchg__nocheck(ptr, old, new)    ({                   \
    typeof_strip_qual(*ptr) _old = (old);                               \
    (void)__atomic_compare_exchange_n(ptr, &_old, new, false,           \
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
    _old;                                                               \
})
#define qatomic_cmpxchg(ptr, old, new)    ({                            \
    qatomic_check_size(ptr);                                            \
    qatomic_cmpxchg__nocheck(ptr, old, new);                            \
})

#define qatomic_fetch_inc(ptr)  __atomic_fetch_add(ptr, 1, __ATOMIC_SEQ_CST)
#define qatomic_fetch_dec(ptr)  __atomic_fetch_sub(ptr, 1, __ATOMIC_SEQ_CST)
#define qatomic_fetch_add(ptr, n) __atomic_fetch_add(ptr, n, __ATOMIC_SEQ_CST)
#define qatomic_fetch_sub(ptr, n) __atomic_fetch_sub(ptr, n, __ATOMIC_SEQ_CST)
#define qatomic_fetch_and(ptr, n) __atomic_fetch_and(ptr, n, __ATOMIC_SEQ_CST)
#define qatomic_fetch_or(ptr, n)  __atomic_fetch_or(ptr, n, __ATOMIC_SEQ_CST)
#define qatomic_fetch_xor(ptr, n) __atomic_fetch_xor(ptr, n, __ATOMIC_SEQ_CST)

#define qatomic_inc_fetch(ptr)    __atomic_add_fetch(ptr, 1, __ATOMIC_SEQ_CST)
#define qatomic_dec_fetch(ptr)    __atomic_sub_fetch(ptr, 1, __ATOMIC_SEQ_CST)
#define qatomic_add_fetch(ptr, n) __atomic_add_fetch(ptr, n, __ATOMIC_SEQ_CST)
#define qatomic_sub_fetch(ptr, n) __atomic_sub_fetch(ptr, n, __ATOMIC_SEQ_CST)
#define qatomic_and_fetch(ptr, n) __atomic_and_fetch(ptr, n, __ATOMIC_SEQ_CST)
#define qatomic_or_fetch(ptr, n)  __atomic_or_fetch(ptr, n, __ATOMIC_SEQ_CST)
#define qatomic_xor_fetch(ptr, n) __atomic_xor_fetch(ptr, n, __ATOMIC_SEQ_CST)

#define qatomic_inc(ptr)        ((void) qatomic_fetch_inc(ptr))
#define qatomic_dec(ptr)        ((void) qatomic_fetch_dec(ptr))
#define qatomic_add(ptr, n)     ((void) qatomic_fetch_add(ptr, n))
#define qatomic_sub(ptr, n)     ((void) qatomic_fetch_sub(ptr, n))
#define qatomic_and(ptr, n)     ((void) qatomic_fetch_and(ptr, n))
#define qatomic_or(ptr, n)      ((void) qatomic_fetch_or(ptr, n))
#define qatomic_xor(ptr, n)     ((void) qatomic_fetch_xor(ptr, n))

/* 64-bit accessors QEMU offers for hosts without native 64-bit atomics. */
#define qatomic_read_i64(P)     qatomic_read__nocheck(P)
#define qatomic_read_u64(P)     qatomic_read__nocheck(P)
#define qatomic_set_i64(P, V)   qatomic_set__nocheck(P, V)
#define qatomic_set_u64(P, V)   qatomic_set__nocheck(P, V)

#endif /* QEMU_ATOMIC_H */
