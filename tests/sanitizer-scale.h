/*
 * sanitizer-scale.h: operation counts for the stress tests, shrunk under
 * sanitizers.
 *
 * ThreadSanitizer makes this code ~5-10x slower, AddressSanitizer ~2x;
 * SCALED(n) shrinks a count with them so that a run takes about as long
 * as without sanitizers (and never reaches zero).
 */
#ifndef QAIO_TESTS_SANITIZER_SCALE_H
#define QAIO_TESTS_SANITIZER_SCALE_H

#include "qemu/osdep.h"

#if defined(QEMU_SANITIZE_THREAD)
#define SLOWDOWN 10
#elif defined(QEMU_SANITIZE_ADDRESS)
#define SLOWDOWN 2
#else
#define SLOWDOWN 1
#endif
#define SCALED(n) ((n) / SLOWDOWN > 0 ? (n) / SLOWDOWN : 1)

#endif
