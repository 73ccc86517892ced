/*
 * block/raw-aio.h: asynchronous file I/O engines (Linux AIO and io_uring).
 *
 * An engine state belongs to one AioContext at a time (attach/detach); the
 * usual way to get one is aio_setup_linux_aio() / aio_setup_linux_io_uring(),
 * which create the state of a context on first use and free it with the
 * context.  The *_co_submit functions run in a coroutine, submit in the
 * calling thread's current AioContext, batch with the other requests of
 * that context and yield until the request completes.
 *
 * Threading: everything except *_init runs in the home thread of the
 * context the state is attached to.
 */
#ifndef BLOCK_RAW_AIO_H
#define BLOCK_RAW_AIO_H

#include "block/aio.h"
#include "qemu/iov.h"

/* Request types. */
#define QEMU_AIO_READ         0x0001
#define QEMU_AIO_WRITE        0x0002
#define QEMU_AIO_IOCTL        0x0004
#define QEMU_AIO_FLUSH        0x0008
#define QEMU_AIO_DISCARD      0x0010
#define QEMU_AIO_WRITE_ZEROES 0x0020
#define QEMU_AIO_COPY_RANGE   0x0040
#define QEMU_AIO_TRUNCATE     0x0080
#define QEMU_AIO_ZONE_REPORT  0x0100
#define QEMU_AIO_ZONE_MGMT    0x0200
#define QEMU_AIO_ZONE_APPEND  0x0400
#define QEMU_AIO_TYPE_MASK \
        (QEMU_AIO_READ | \
         QEMU_AIO_WRITE | \
         QEMU_AIO_IOCTL | \
         QEMU_AIO_FLUSH | \
         QEMU_AIO_DISCARD | \
         QEMU_AIO_WRITE_ZEROES | \
         QEMU_AIO_COPY_RANGE | \
         QEMU_AIO_TRUNCATE | \
         QEMU_AIO_ZONE_REPORT | \
         QEMU_AIO_ZONE_MGMT | \
         QEMU_AIO_ZONE_APPEND)

/* Flags, ORed into the type. */
#define QEMU_AIO_MISALIGNED   0x1000
#define QEMU_AIO_BLKDEV       0x2000
#define QEMU_AIO_NO_FALLBACK  0x4000

#ifdef CONFIG_LINUX_AIO
typedef struct LinuxAioState LinuxAioState;

/* Create a Linux AIO engine (io_setup); NULL with @errp set on failure. */
LinuxAioState *laio_init(Error **errp);
/* Free a detached engine. */
void laio_cleanup(LinuxAioState *s);

/**
 * laio_co_submit: submit one request and yield until it completes
 * @fd: the file
 * @offset: byte offset in the file
 * @qiov: the buffer (NULL for QEMU_AIO_FLUSH)
 * @type: QEMU_AIO_READ, QEMU_AIO_WRITE or QEMU_AIO_FLUSH
 * @dev_max_batch: the device's batch limit, 0 for the context's default
 *
 * Runs in a coroutine; the engine is the one of the current context
 * (aio_setup_linux_aio() must have succeeded there).  QEMU_AIO_FLUSH is an
 * asynchronous fdatasync, submitted whatever the file: where
 * laio_has_fdsync() says no, it fails with the kernel's -EINVAL.
 *
 * Returns: 0 when the whole request was done, a negative errno otherwise
 * (a short read is completed with zeroes, a short write is -ENOSPC; other
 * request types are -ENOTSUP; a read or write of more than 2 GiB - 4 KiB,
 * the kernel's limit for one request, is -EINVAL).
 */
int coroutine_fn laio_co_submit(int fd, uint64_t offset, QEMUIOVector *qiov,
                                int type, uint64_t dev_max_batch);

/* Can the kernel do an asynchronous fdatasync on @fd (IOCB_CMD_FDSYNC)? */
bool laio_has_fdsync(int fd);

void laio_detach_aio_context(LinuxAioState *s, AioContext *old_context);
void laio_attach_aio_context(LinuxAioState *s, AioContext *new_context);
#endif

#ifdef CONFIG_LINUX_IO_URING
/* Create an io_uring engine; NULL with @errp set on failure. */
LuringState *luring_init(Error **errp);
/* Free a detached engine. */
void luring_cleanup(LuringState *s);

/**
 * luring_co_submit: submit one request and yield until it completes
 * @bs: the block device (may be NULL; not used by qaio)
 * @fd: the file
 * @offset: byte offset in the file
 * @qiov: the buffer (NULL for QEMU_AIO_FLUSH); for QEMU_AIO_DISCARD and
 *        QEMU_AIO_WRITE_ZEROES only its size counts: the length of the range
 * @type: QEMU_AIO_READ, QEMU_AIO_WRITE, QEMU_AIO_FLUSH, QEMU_AIO_DISCARD
 *        (punch a hole) or QEMU_AIO_WRITE_ZEROES
 *
 * Runs in a coroutine; the engine is the one of the current context
 * (aio_setup_linux_io_uring() must have succeeded there).
 *
 * Returns: 0 when the whole request was done, a negative errno otherwise
 * (other request types are -ENOTSUP).  Short reads are resubmitted for the
 * rest; reading past the end of the file fills the remainder with zeroes.
 */
int coroutine_fn luring_co_submit(BlockDriverState *bs, int fd,
                                  uint64_t offset, QEMUIOVector *qiov,
                                  int type);

void luring_detach_aio_context(LuringState *s, AioContext *old_context);
void luring_attach_aio_context(LuringState *s, AioContext *new_context);
#endif

#endif /* BLOCK_RAW_AIO_H */
