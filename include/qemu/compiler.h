/*
 * qemu/compiler.h: compiler attributes and helper macros QEMU code expects.
 *
 * Pulled in by qemu/osdep.h; never include it directly.  Everything here is
 * a macro or a type trick, with no code of its own.
 */
#ifndef QEMU_COMPILER_H
#define QEMU_COMPILER_H

#define QEMU_NORETURN __attribute__((__noreturn__))
#define QEMU_WARN_UNUSED_RESULT __attribute__((warn_unused_result))
#define QEMU_SENTINEL __attribute__((sentinel))
#define QEMU_PACKED __attribute__((packed))
#define QEMU_ALWAYS_INLINE __attribute__((always_inline))
#define QEMU_NO_INLINE __attribute__((noinline))
#define QEMU_FLATTEN __attribute__((flatten))
#define QEMU_ALIGNED(X) __attribute__((aligned(X)))
#define QEMU_UNUSED __attribute__((unused))
#define QEMU_FALLTHROUGH __attribute__((fallthrough))

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#define xglue(x, y) x ## y
#define glue(x, y) xglue(x, y)
#define stringify(s) tostring(s)
#define tostring(s) #s

#ifndef container_of
#define container_of(ptr, type, member) ({                      \
        const typeof(((type *) 0)->member) *__mptr = (ptr);     \
        (type *) ((char *) __mptr - offsetof(type, member));})
#endif

#define sizeof_field(type, field) sizeof(((type *)0)->field)

#define typeof_strip_qual(expr) typeof(({ __auto_type __x = (expr); __x; }))

/* A compile-time assertion usable wherever a statement or declaration is. */
#define QEMU_BUILD_BUG_MSG(x, msg) _Static_assert(!(x), msg)
#define QEMU_BUILD_BUG_ON(x) QEMU_BUILD_BUG_MSG(x, "not expecting: " #x)
#define QEMU_BUILD_BUG_ON_ZERO(x) (sizeof(struct { int:(x) ? -1 : 1; }) - \
                                   sizeof(struct { int:1; }))

#define QEMU_IS_ARRAY(x) (!__builtin_types_compatible_p(typeof(x), \
                                                        typeof(&(x)[0])))

/*
 * Coroutine annotations.  QEMU checks them with a clang plugin; for a
 * compiler they are documentation, so they expand to nothing.
 *   coroutine_fn        may only be called from coroutine context
 *   no_coroutine_fn     must not be called from coroutine context
 *   coroutine_mixed_fn  may be called from either
 */
#define coroutine_fn
#define no_coroutine_fn
#define coroutine_mixed_fn

/*
 * Thread-local storage for hot paths inside the library: the initial-exec
 * model makes an access one instruction instead of a call, at the price of
 * static TLS space (glibc reserves enough for a few such variables even
 * when the library is dlopen'ed).
 */
#define QAIO_THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))

#if defined(__SANITIZE_ADDRESS__)
#define QEMU_SANITIZE_ADDRESS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QEMU_SANITIZE_ADDRESS 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define QEMU_SANITIZE_THREAD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define QEMU_SANITIZE_THREAD 1
#endif
#endif

/*
 * Happens-before edges that ThreadSanitizer cannot see by itself (through
 * the kernel, or through uninstrumented libraries such as GLib).  Nothing
 * in other builds.
 */
#ifdef QEMU_SANITIZE_THREAD
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define qaio_tsan_acquire(addr) __tsan_acquire((void *)(addr))
#define qaio_tsan_release(addr) __tsan_release((void *)(addr))
#else
#define qaio_tsan_acquire(addr) ((void)(addr))
#define qaio_tsan_release(addr) ((void)(addr))
#endif

#endif /* QEMU_COMPILER_H */
