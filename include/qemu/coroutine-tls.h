/*
 * qemu/coroutine-tls.h: thread-local variables that coroutines can use.
 *
 * The problem: a coroutine can yield in one thread and resume in another
 * (aio_co_schedule).  Compilers assume a function runs in one thread
 * from start to end, so they may compute the address of a __thread
 * variable once and reuse it after the yield: the coroutine then reads or
 * writes the first thread's copy.  On x86-64 the fs-relative access
 * usually hides this; on aarch64 (tpidr_el0 kept in a register), with
 * the global-dynamic model (__tls_get_addr is a "const" function) and
 * with LTO it happens.
 *
 * The cure: reach the variable only through out-of-line accessors that the
 * optimizer may neither inline nor reason about (noinline, noipa where the
 * compiler has it, and an opaque asm statement so they are not "pure" or
 * "const" either).  Each call computes the address afresh in whichever
 * thread runs it.  get_ptr_<var>() also passes the address through the
 * asm statement: clang 14 (no noipa) treats a thread-local address as a
 * link-time constant and would otherwise propagate the returned value
 * into the caller, call or no call.  tests/test-aio-coroutine.c catches
 * that.
 *
 *   QEMU_DEFINE_STATIC_CO_TLS(int, my_count)
 *   ...
 *   set_my_count(get_my_count() + 1);
 *   int *p = get_ptr_my_count();   (valid until the next yield only)
 *
 * QEMU_DECLARE_CO_TLS(type, var) in a header and QEMU_DEFINE_CO_TLS(type,
 * var) in one .c file give accessors with external linkage;
 * QEMU_DEFINE_STATIC_CO_TLS(type, var) gives file-local ones.  Each
 * defines get_<var>(), set_<var>(value) and get_ptr_<var>().
 *
 * Threading: the variable is per thread, like any __thread variable; the
 * accessors just read the thread that calls them.
 */
#ifndef QEMU_COROUTINE_TLS_H
#define QEMU_COROUTINE_TLS_H

#include "qemu/osdep.h"

#if defined(__has_attribute)
#if __has_attribute(noipa)
#define QEMU_CO_TLS_NOIPA_ __attribute__((noipa))
#endif
#endif
#ifndef QEMU_CO_TLS_NOIPA_
#define QEMU_CO_TLS_NOIPA_
#endif

/* The attributes of every accessor: out of line and opaque to IPA. */
#define QEMU_CO_TLS_FN_ __attribute__((noinline)) QEMU_CO_TLS_NOIPA_

/*
 * An asm statement the compiler must assume reads and writes memory: it
 * keeps the accessor from being treated as pure or const, so two calls
 * are never merged into one.
 */
#define QEMU_CO_TLS_BARRIER_() asm volatile("" : : : "memory")

/*
 * The generator behind the public macros.  @fn_linkage goes in front of
 * each accessor ("static G_GNUC_UNUSED" or nothing), @storage is the
 * thread-local storage class of the variable itself.
 */
#define QEMU_CO_TLS_DEFINE_(fn_linkage, storage, type, var)             \
    storage type co_tls_##var;                                          \
    fn_linkage QEMU_CO_TLS_FN_ type get_##var(void)                     \
    {                                                                   \
        QEMU_CO_TLS_BARRIER_();                                         \
        return co_tls_##var;                                            \
    }                                                                   \
    fn_linkage QEMU_CO_TLS_FN_ void set_##var(type v)                   \
    {                                                                   \
        QEMU_CO_TLS_BARRIER_();                                         \
        co_tls_##var = v;                                               \
    }                                                                   \
    fn_linkage QEMU_CO_TLS_FN_ type *get_ptr_##var(void)                \
    {                                                                   \
        type *ptr = &co_tls_##var;                                      \
        /* Launder: for clang <= 15 the address is a constant. */       \
        asm volatile("" : "+r"(ptr) : : "memory");                      \
        return ptr;                                                     \
    }

/**
 * QEMU_DECLARE_CO_TLS: declare the accessors of a coroutine-safe
 * thread-local variable defined elsewhere with QEMU_DEFINE_CO_TLS
 * @type: the variable's type
 * @var: its name
 */
#define QEMU_DECLARE_CO_TLS(type, var)                                  \
    QEMU_CO_TLS_FN_ type get_##var(void);                               \
    QEMU_CO_TLS_FN_ void set_##var(type v);                             \
    QEMU_CO_TLS_FN_ type *get_ptr_##var(void);

/**
 * QEMU_DEFINE_CO_TLS: define a coroutine-safe thread-local variable with
 * accessors visible to other files
 * @type: the variable's type
 * @var: its name; the variable itself is private to this file
 */
#define QEMU_DEFINE_CO_TLS(type, var)                                   \
    QEMU_CO_TLS_DEFINE_(, static __thread, type, var)

/**
 * QEMU_DEFINE_STATIC_CO_TLS: define a coroutine-safe thread-local
 * variable and file-local accessors
 * @type: the variable's type
 * @var: its name
 */
#define QEMU_DEFINE_STATIC_CO_TLS(type, var)                            \
    QEMU_CO_TLS_DEFINE_(static G_GNUC_UNUSED, static __thread, type, var)

#endif /* QEMU_COROUTINE_TLS_H */
