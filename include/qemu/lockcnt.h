/*
 * qemu/lockcnt.h: QemuLockCnt, a counter of concurrent list walkers paired
 * with a lock for the code that frees list elements.
 *
 * Walkers bracket a traversal with qemu_lockcnt_inc/qemu_lockcnt_dec and may
 * run concurrently with each other and with inserters.  Code that wants to
 * free elements takes the lock and does so only when the count is zero;
 * qemu_lockcnt_inc waits for a lock holder only when the count is zero, so
 * walkers never see a half-freed list.
 *
 * On Linux the count and the lock share one word driven by a futex; the
 * uncontended inc/dec is a single compare-and-swap.
 */
#ifndef QEMU_LOCKCNT_H
#define QEMU_LOCKCNT_H

#include "qemu/thread.h"

typedef struct QemuLockCnt QemuLockCnt;

struct QemuLockCnt {
#ifndef CONFIG_LINUX
    QemuMutex mutex;
#endif
    unsigned count;
};

void qemu_lockcnt_init(QemuLockCnt *lockcnt);
void qemu_lockcnt_destroy(QemuLockCnt *lockcnt);

/* Start a walk.  Waits while the lock is held and the count is zero. */
void qemu_lockcnt_inc(QemuLockCnt *lockcnt);
/* End a walk. */
void qemu_lockcnt_dec(QemuLockCnt *lockcnt);
/*
 * End a walk; if the count drops to zero, return true with the lock held.
 * Otherwise return false with the lock not held.
 */
bool qemu_lockcnt_dec_and_lock(QemuLockCnt *lockcnt);
/*
 * If the caller is the only walker (count == 1), drop the count to zero and
 * return true with the lock held; otherwise change nothing and return false.
 */
bool qemu_lockcnt_dec_if_lock(QemuLockCnt *lockcnt);
void qemu_lockcnt_lock(QemuLockCnt *lockcnt);
void qemu_lockcnt_unlock(QemuLockCnt *lockcnt);
/* Increment the count and release the lock, atomically for walkers. */
void qemu_lockcnt_inc_and_unlock(QemuLockCnt *lockcnt);
/* The number of walkers; only exact while the lock is held. */
unsigned qemu_lockcnt_count(QemuLockCnt *lockcnt);

#endif /* QEMU_LOCKCNT_H */
