/*
 * qemu/processor.h: cpu_relax(), the hint to put in a spin-wait loop (it
 * lets a sibling hyperthread run and saves power).  As in QEMU.
 */
#ifndef QEMU_PROCESSOR_H
#define QEMU_PROCESSOR_H

#include "qemu/atomic.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#else
    barrier();
#endif
}

#endif /* QEMU_PROCESSOR_H */
