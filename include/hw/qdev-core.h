/*
 * hw/qdev-core.h: compatibility header.  QEMU's device model lives here; qaio
 * only carries MemReentrancyGuard, which block/aio.h needs for guarded
 * bottom halves.
 */
#ifndef HW_QDEV_CORE_H
#define HW_QDEV_CORE_H

#include "qemu/osdep.h"

/*
 * Set while a guarded callback runs.  A guarded bottom half whose guard is
 * already engaged is not run (it would re-enter its owner); see aio_bh_call.
 */
struct MemReentrancyGuard {
    bool engaged_in_io;
};

#endif /* HW_QDEV_CORE_H */
