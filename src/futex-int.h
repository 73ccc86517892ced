/*
 * futex-int.h: sleep until a 32-bit word changes, and wake the sleepers.
 * Linux only; shared by QemuEvent (thread-posix.c) and QemuLockCnt
 * (lockcnt.c), which build their own state machines on top.
 *
 * Any thread may call either function.  Both are process-private futexes:
 * the words live in ordinary (not shared) memory.  The kernel compares the
 * word with @val under its own lock, so a wake that happens after the word
 * changed can never be lost; callers must still loop, because a wait also
 * returns on EINTR, on EAGAIN (the word already differed) and spuriously.
 */
#ifndef QAIO_FUTEX_INT_H
#define QAIO_FUTEX_INT_H

#ifdef CONFIG_LINUX
#include <linux/futex.h>
#include <sys/syscall.h>

/* Sleep while *@addr == @val. */
static inline void qemu_futex_wait(unsigned *addr, unsigned val)
{
    /*
     * Errors are all benign here (EAGAIN, EINTR); the caller re-reads the
     * word and decides again.
     */
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

/* Wake every thread sleeping on @addr. */
static inline void qemu_futex_wake_all(unsigned *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#endif

#endif /* QAIO_FUTEX_INT_H */
