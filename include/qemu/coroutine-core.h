/*
 * qemu/coroutine-core.h: the coroutine types block/aio.h refers to.
 *
 * The coroutine implementation (create/enter/yield, CoMutex) comes with the
 * coroutine layer; until then this header only names the types, so that
 * block/aio.h keeps QEMU's include structure.
 */
#ifndef QEMU_COROUTINE_CORE_H
#define QEMU_COROUTINE_CORE_H

#include "qemu/osdep.h"

typedef struct Coroutine Coroutine;
typedef struct CoMutex CoMutex;

/* The entry point of a coroutine; it runs until it returns or yields. */
typedef void coroutine_fn CoroutineEntry(void *opaque);

#endif /* QEMU_COROUTINE_CORE_H */
