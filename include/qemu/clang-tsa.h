/*
 * qemu/clang-tsa.h: clang thread-safety-analysis annotations.  QEMU code
 * uses them on lock functions; qaio does not run the analysis, so they
 * expand to nothing.
 */
#ifndef CLANG_TSA_H
#define CLANG_TSA_H

#define TSA_CAPABILITY(x)
#define TSA_GUARDED_BY(x)
#define TSA_PT_GUARDED_BY(x)
#define TSA_REQUIRES(...)
#define TSA_REQUIRES_SHARED(...)
#define TSA_EXCLUDES(...)
#define TSA_ACQUIRE(...)
#define TSA_ACQUIRE_SHARED(...)
#define TSA_RELEASE(...)
#define TSA_RELEASE_SHARED(...)
#define TSA_NO_TSA
#define TSA_ASSERT(...)
#define TSA_ASSERT_SHARED(...)

#endif /* CLANG_TSA_H */
