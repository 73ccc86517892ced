/*
 * qemu/bitops.h: the bit helpers qemu/timer.h and QEMU code expect.
 */
#ifndef BITOPS_H
#define BITOPS_H

#include "qemu/osdep.h"

#define BITS_PER_BYTE           CHAR_BIT
#define BITS_PER_LONG           (sizeof(unsigned long) * BITS_PER_BYTE)
#define BIT(nr)                 (1UL << (nr))
#define BIT_ULL(nr)             (1ULL << (nr))
#define MAKE_64BIT_MASK(shift, length) \
    (((~0ULL) >> (64 - (length))) << (shift))

#endif /* BITOPS_H */
