/*
 * qemu/osdep.h: the umbrella header.  QEMU code includes it first, before
 * anything else; so does every qaio source file and every user program.
 *
 * It pulls in the build configuration (qaio/config.h), the C library headers
 * QEMU code takes for granted, GLib, and the compiler helpers.
 */
#ifndef QEMU_OSDEP_H
#define QEMU_OSDEP_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "qaio/config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include <signal.h>
#include <assert.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <poll.h>

#include <glib.h>

#include "qemu/compiler.h"
#include "qemu/typedefs.h"

/* GLib defines MIN/MAX without typeof; QEMU's evaluate their arguments once. */
#undef MIN
#define MIN(a, b)                                       \
    ({                                                  \
        typeof(1 ? (a) : (b)) _a = (a), _b = (b);       \
        _a < _b ? _a : _b;                              \
    })
#undef MAX
#define MAX(a, b)                                       \
    ({                                                  \
        typeof(1 ? (a) : (b)) _a = (a), _b = (b);       \
        _a > _b ? _a : _b;                              \
    })
/* For constant expressions (array sizes, case labels). */
#define MIN_CONST(a, b) ((a) < (b) ? (a) : (b))
#define MAX_CONST(a, b) ((a) > (b) ? (a) : (b))

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))
#endif

#ifndef DIV_ROUND_UP
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#endif
#define ROUND_UP(n, d) ({                                   \
    typeof(n) _n = (n);                                     \
    typeof(d) _d = (d);                                     \
    ((_n + _d - 1) / _d) * _d;                              \
})
#define QEMU_ALIGN_DOWN(n, m) ((n) / (m) * (m))
#define QEMU_ALIGN_UP(n, m) QEMU_ALIGN_DOWN((n) + (m) - 1, (m))
#define QEMU_IS_ALIGNED(n, m) (((n) % (m)) == 0)
#define QEMU_PTR_IS_ALIGNED(p, n) QEMU_IS_ALIGNED((uintptr_t)(p), (n))

#ifndef TIME_MAX
#define TIME_MAX INT64_MAX
#endif

/* Retry a system call while it fails with EINTR. */
#define RETRY_ON_EINTR(expr)                            \
    (__extension__ ({                                   \
        typeof(expr) __result;                          \
        do {                                            \
            __result = (expr);                          \
        } while (__result == -1 && errno == EINTR);     \
        __result;                                       \
    }))

#endif /* QEMU_OSDEP_H */
