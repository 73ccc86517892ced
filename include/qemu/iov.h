/*
 * qemu/iov.h: scatter/gather vectors (struct iovec helpers and QEMUIOVector).
 *
 * A QEMUIOVector describes the buffer of one I/O request as a list of
 * iovecs plus their total size.  It either owns a growable array (from
 * qemu_iovec_init) or borrows one (qemu_iovec_init_external), or embeds a
 * single element (qemu_iovec_init_buf / QEMU_IOVEC_INIT_BUF).
 *
 * Threading: none of these functions lock; a vector belongs to whoever is
 * building or completing the request.
 */
#ifndef QEMU_IOV_H
#define QEMU_IOV_H

#include "qemu/osdep.h"
#include <sys/uio.h>

/* ---- Plain iovec arrays ----------------------------------------------- */

/* The total length of @iov_cnt elements. */
size_t iov_size(const struct iovec *iov, const unsigned int iov_cnt);

/*
 * Copy @bytes from @buf into the vector, starting @offset bytes into it.
 * Returns: the number of bytes copied (less than @bytes if the vector ends).
 */
size_t iov_from_buf_full(const struct iovec *iov, unsigned int iov_cnt,
                         size_t offset, const void *buf, size_t bytes);

/*
 * Copy @bytes starting @offset bytes into the vector out to @buf.
 * Returns: the number of bytes copied.
 */
size_t iov_to_buf_full(const struct iovec *iov, const unsigned int iov_cnt,
                       size_t offset, void *buf, size_t bytes);

static inline size_t iov_from_buf(const struct iovec *iov,
                                  unsigned int iov_cnt, size_t offset,
                                  const void *buf, size_t bytes)
{
    /* The common single-element case without a call. */
    if (__builtin_constant_p(bytes) && iov_cnt &&
        offset <= iov[0].iov_len && bytes <= iov[0].iov_len - offset) {
        memcpy((char *)iov[0].iov_base + offset, buf, bytes);
        return bytes;
    }
    return iov_from_buf_full(iov, iov_cnt, offset, buf, bytes);
}

static inline size_t iov_to_buf(const struct iovec *iov,
                                const unsigned int iov_cnt, size_t offset,
                                void *buf, size_t bytes)
{
    if (__builtin_constant_p(bytes) && iov_cnt &&
        offset <= iov[0].iov_len && bytes <= iov[0].iov_len - offset) {
        memcpy(buf, (char *)iov[0].iov_base + offset, bytes);
        return bytes;
    }
    return iov_to_buf_full(iov, iov_cnt, offset, buf, bytes);
}

/*
 * Set @bytes of the vector to @fillc, starting at @offset.
 * Returns: the number of bytes set.
 */
size_t iov_memset(const struct iovec *iov, const unsigned int iov_cnt,
                  size_t offset, int fillc, size_t bytes);

/*
 * Send or receive @bytes starting at @offset of the vector on socket @sockfd
 * (sendmsg/recvmsg), retrying on partial transfers.
 * Returns: bytes transferred, or -1 with errno set if nothing was
 * transferred (EAGAIN included for a non-blocking socket).
 */
ssize_t iov_send_recv(int sockfd, const struct iovec *iov, unsigned iov_cnt,
                      size_t offset, size_t bytes, bool do_send);
#define iov_recv(sockfd, iov, iov_cnt, offset, bytes) \
    iov_send_recv(sockfd, iov, iov_cnt, offset, bytes, false)
#define iov_send(sockfd, iov, iov_cnt, offset, bytes) \
    iov_send_recv(sockfd, iov, iov_cnt, offset, bytes, true)

/* Print at most @limit bytes of the vector as a hex dump to @fp. */
void iov_hexdump(const struct iovec *iov, const unsigned int iov_cnt,
                 FILE *fp, const char *prefix, size_t limit);

/*
 * Make @dst_iov (room for @dst_iov_cnt elements) describe @bytes of
 * @iov starting at @offset, without copying data.
 * Returns: the number of elements used.
 */
unsigned iov_copy(struct iovec *dst_iov, unsigned int dst_iov_cnt,
                  const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, size_t bytes);

/*
 * Drop @bytes from the front (back) of the vector in place, advancing
 * *@iov and decreasing *@iov_cnt as whole elements are consumed.
 * Returns: the number of bytes dropped.
 */
size_t iov_discard_front(struct iovec **iov, unsigned int *iov_cnt,
                         size_t bytes);
size_t iov_discard_back(struct iovec *iov, unsigned int *iov_cnt,
                        size_t bytes);

/* What iov_discard_undo() needs to restore a vector. */
typedef struct {
    struct iovec *modified_iov;
    struct iovec orig;
} IOVDiscardUndo;

size_t iov_discard_front_undoable(struct iovec **iov, unsigned int *iov_cnt,
                                  size_t bytes, IOVDiscardUndo *undo);
size_t iov_discard_back_undoable(struct iovec *iov, unsigned int *iov_cnt,
                                 size_t bytes, IOVDiscardUndo *undo);
/* Restore the element the last undoable discard changed. */
void iov_discard_undo(IOVDiscardUndo *undo);

/* ---- QEMUIOVector ------------------------------------------------------ */

typedef struct QEMUIOVector {
    struct iovec *iov;
    int niov;

    /*
     * An owned vector keeps its capacity in nalloc; an embedded one
     * (nalloc == -1) keeps its single element in local_iov.  Either way
     * 'size' is the total length: it shares storage with local_iov.iov_len,
     * which is why an embedded vector needs no separate size field.
     */
    union {
        struct {
            int nalloc;
            struct iovec local_iov;
        };
        struct {
            char __pad[sizeof(int) + offsetof(struct iovec, iov_len)];
            size_t size;
        };
    };
} QEMUIOVector;

QEMU_BUILD_BUG_ON(offsetof(QEMUIOVector, size) !=
                  offsetof(QEMUIOVector, local_iov.iov_len));

#define QEMU_IOVEC_INIT_BUF(self, buf, len)              \
{                                                        \
    .iov = &(self).local_iov,                            \
    .niov = 1,                                           \
    .nalloc = -1,                                        \
    .local_iov = {                                       \
        .iov_base = (void *)(buf), /* cast away const */ \
        .iov_len = (len),                                \
    },                                                   \
}

/* An embedded single-element vector over @buf; needs no destroy. */
static inline void qemu_iovec_init_buf(QEMUIOVector *qiov,
                                       const void *buf, size_t len)
{
    *qiov = (QEMUIOVector) QEMU_IOVEC_INIT_BUF(*qiov, buf, len);
}

/* The buffer of a vector made by qemu_iovec_init_buf(). */
static inline void *qemu_iovec_buf(QEMUIOVector *qiov)
{
    assert(qiov->nalloc == -1);
    return qiov->local_iov.iov_base;
}

/* An empty owned vector with room for @alloc_hint elements. */
void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint);
/* A vector over the caller's array; qemu_iovec_add() is not allowed. */
void qemu_iovec_init_external(QEMUIOVector *qiov, struct iovec *iov,
                              int niov);
/*
 * A vector describing @len bytes of @source from @offset, without copying
 * data: embedded when the range lies in one element of @source, owned
 * otherwise.  Destroy it with qemu_iovec_destroy() either way; do not
 * qemu_iovec_add() to it.
 */
void qemu_iovec_init_slice(QEMUIOVector *qiov, QEMUIOVector *source,
                           size_t offset, size_t len);
/*
 * The elements of @qiov covering [@offset, @offset + @len): returns the
 * first one, with *@head bytes to skip in it, *@tail bytes to ignore at the
 * end of the last one, and their count in *@niov.
 */
struct iovec *qemu_iovec_slice(QEMUIOVector *qiov, size_t offset,
                               size_t len, size_t *head, size_t *tail,
                               int *niov);
/* How many elements qemu_iovec_slice() would return. */
int qemu_iovec_subvec_niov(QEMUIOVector *qiov, size_t offset, size_t len);
/* Append an element to an owned vector, growing it as needed. */
void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len);
/* Append @sbytes of @src from @soffset to @dst (no data copied). */
void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src,
                       size_t soffset, size_t sbytes);
size_t qemu_iovec_concat_iov(QEMUIOVector *dst, struct iovec *src_iov,
                             unsigned int src_cnt, size_t soffset,
                             size_t sbytes);
/* Are @bytes of the vector from @qiov_offset all zero? */
bool qemu_iovec_is_zero(QEMUIOVector *qiov, size_t qiov_offset,
                        size_t bytes);
/* Free an owned vector's array; a no-op for embedded vectors. */
void qemu_iovec_destroy(QEMUIOVector *qiov);
/* Empty an owned vector, keeping its capacity. */
void qemu_iovec_reset(QEMUIOVector *qiov);
size_t qemu_iovec_to_buf(QEMUIOVector *qiov, size_t offset,
                         void *buf, size_t bytes);
size_t qemu_iovec_from_buf(QEMUIOVector *qiov, size_t offset,
                           const void *buf, size_t bytes);
size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset,
                         int fillc, size_t bytes);
/*
 * Compare two vectors' contents.
 * Returns: the offset of the first difference, or -1 if they are equal.
 */
ssize_t qemu_iovec_compare(QEMUIOVector *a, QEMUIOVector *b);
/* Make @dest a vector of @src's shape over the flat buffer @buf. */
void qemu_iovec_clone(QEMUIOVector *dest, const QEMUIOVector *src,
                      void *buf);
/* Drop @bytes from the end of the vector. */
void qemu_iovec_discard_back(QEMUIOVector *qiov, size_t bytes);

#endif /* QEMU_IOV_H */
