/*
 * iov.c: scatter/gather helpers (qemu/iov.h): copying between flat buffers
 * and struct iovec arrays, slicing and trimming arrays without copying
 * data, and QEMUIOVector, the growable (or borrowed, or embedded) array
 * plus total size that describes the buffer of one I/O request.
 *
 * Threading: nothing here locks or keeps global state; a vector belongs to
 * whoever is building or completing its request.
 *
 * An offset past the end of a vector is a caller bug (the request and its
 * buffer disagree), so it aborts with a message, as QEMU asserts; a length
 * that runs past the end only makes the copy shorter, and the return
 * value says by how much.
 */
#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/error-report.h"
#include <sys/socket.h>

static G_NORETURN void iov_offset_past_end(const char *func, size_t offset,
                                           size_t size)
{
    error_report("%s: offset %zu is past the end of the %zu-byte I/O "
                 "vector", func, offset, size);
    abort();
}

size_t iov_size(const struct iovec *iov, const unsigned int iov_cnt)
{
    size_t total = 0;
    unsigned int i;

    for (i = 0; i < iov_cnt; i++) {
        total += iov[i].iov_len;
    }
    return total;
}

/*
 * The element that byte @offset falls into, and the offset inside it.
 * Zero-length elements before that byte are skipped; an @offset equal to
 * the total size yields index @iov_cnt.  Aborts if @offset is past the end.
 */
static unsigned int iov_locate(const char *func, const struct iovec *iov,
                               unsigned int iov_cnt, size_t *offset)
{
    size_t skipped = 0;
    unsigned int i;

    for (i = 0; i < iov_cnt; i++) {
        if (*offset < iov[i].iov_len) {
            return i;
        }
        *offset -= iov[i].iov_len;
        skipped += iov[i].iov_len;
    }
    if (*offset > 0) {
        iov_offset_past_end(func, skipped + *offset, skipped);
    }
    return iov_cnt;
}

size_t iov_from_buf_full(const struct iovec *iov, unsigned int iov_cnt,
                         size_t offset, const void *buf, size_t bytes)
{
    unsigned int i = iov_locate(__func__, iov, iov_cnt, &offset);
    size_t done = 0;

    for (; i < iov_cnt && done < bytes; i++) {
        size_t len = MIN(iov[i].iov_len - offset, bytes - done);

        memcpy((char *)iov[i].iov_base + offset, (const char *)buf + done,
               len);
        done += len;
        offset = 0;
    }
    return done;
}

size_t iov_to_buf_full(const struct iovec *iov, const unsigned int iov_cnt,
                       size_t offset, void *buf, size_t bytes)
{
    unsigned int i = iov_locate(__func__, iov, iov_cnt, &offset);
    size_t done = 0;

    for (; i < iov_cnt && done < bytes; i++) {
        size_t len = MIN(iov[i].iov_len - offset, bytes - done);

        memcpy((char *)buf + done, (const char *)iov[i].iov_base + offset,
               len);
        done += len;
        offset = 0;
    }
    return done;
}

size_t iov_memset(const struct iovec *iov, const unsigned int iov_cnt,
                  size_t offset, int fillc, size_t bytes)
{
    unsigned int i = iov_locate(__func__, iov, iov_cnt, &offset);
    size_t done = 0;

    for (; i < iov_cnt && done < bytes; i++) {
        size_t len = MIN(iov[i].iov_len - offset, bytes - done);

        memset((char *)iov[i].iov_base + offset, fillc, len);
        done += len;
        offset = 0;
    }
    return done;
}

/*
 * Batch size of iov_send_recv(): the caller's array is const and its first
 * and last elements usually need trimming, so each call works on a copy of
 * at most this many elements (well under IOV_MAX) and the loop moves on.
 */
#define IOV_SEND_RECV_BATCH 64

ssize_t iov_send_recv(int sockfd, const struct iovec *iov, unsigned iov_cnt,
                      size_t offset, size_t bytes, bool do_send)
{
    struct iovec local[IOV_SEND_RECV_BATCH];
    size_t total = 0;

    while (total < bytes) {
        struct msghdr msg = { .msg_iov = local };
        size_t pos = offset + total;
        ssize_t ret;

        /* Checked here so that a bad offset names this function. */
        iov_locate(__func__, iov, iov_cnt, &pos);
        msg.msg_iovlen = iov_copy(local, IOV_SEND_RECV_BATCH, iov, iov_cnt,
                                  offset + total, bytes - total);
        if (msg.msg_iovlen == 0) {
            break;                      /* the vector ended before @bytes */
        }

        /*
         * MSG_NOSIGNAL: a closed peer must give EPIPE, not kill the
         * process (QEMU ignores SIGPIPE process-wide; a library cannot).
         */
        if (do_send) {
            ret = sendmsg(sockfd, &msg, MSG_NOSIGNAL);
        } else {
            ret = recvmsg(sockfd, &msg, 0);
        }
        if (ret < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (total > 0) {
                break;                  /* report what did get through */
            }
            return -1;
        }
        if (ret == 0) {
            break;                      /* end of stream (or nothing sent) */
        }
        total += ret;
    }
    return total;
}

void iov_hexdump(const struct iovec *iov, const unsigned int iov_cnt,
                 FILE *fp, const char *prefix, size_t limit)
{
    size_t size = MIN(iov_size(iov, iov_cnt), limit);
    g_autofree uint8_t *buf = g_malloc(size ? size : 1);
    size_t line;

    iov_to_buf(iov, iov_cnt, 0, buf, size);
    for (line = 0; line < size; line += 16) {
        size_t n = MIN(size - line, (size_t)16);
        size_t b;

        fprintf(fp, "%s: %04zx:", prefix, line);
        for (b = 0; b < 16; b++) {
            if (b < n) {
                fprintf(fp, " %02x", buf[line + b]);
            } else {
                fprintf(fp, "   ");
            }
        }
        fprintf(fp, "  ");
        for (b = 0; b < n; b++) {
            uint8_t c = buf[line + b];

            fputc(c >= 0x20 && c < 0x7f ? c : '.', fp);
        }
        fputc('\n', fp);
    }
}

unsigned iov_copy(struct iovec *dst_iov, unsigned int dst_iov_cnt,
                  const struct iovec *iov, unsigned int iov_cnt,
                  size_t offset, size_t bytes)
{
    unsigned int i = iov_locate(__func__, iov, iov_cnt, &offset);
    unsigned int j = 0;

    for (; i < iov_cnt && j < dst_iov_cnt && bytes > 0; i++) {
        size_t len = MIN(iov[i].iov_len - offset, bytes);

        if (len == 0) {
            continue;                   /* an empty element: nothing to say */
        }
        dst_iov[j].iov_base = (char *)iov[i].iov_base + offset;
        dst_iov[j].iov_len = len;
        j++;
        bytes -= len;
        offset = 0;
    }
    return j;
}

size_t iov_discard_front_undoable(struct iovec **iov, unsigned int *iov_cnt,
                                  size_t bytes, IOVDiscardUndo *undo)
{
    struct iovec *cur = *iov;
    size_t total = 0;

    if (undo) {
        undo->modified_iov = NULL;
    }
    /*
     * Elements that the discard covers exactly are dropped whole (so are
     * empty ones at the front); only one element can end up trimmed, and
     * that is the one the undo record keeps.
     */
    while (*iov_cnt > 0) {
        if (cur->iov_len > bytes) {
            if (undo) {
                undo->modified_iov = cur;
                undo->orig = *cur;
            }
            cur->iov_base = (char *)cur->iov_base + bytes;
            cur->iov_len -= bytes;
            total += bytes;
            break;
        }
        bytes -= cur->iov_len;
        total += cur->iov_len;
        cur++;
        (*iov_cnt)--;
    }
    *iov = cur;
    return total;
}

size_t iov_discard_back_undoable(struct iovec *iov, unsigned int *iov_cnt,
                                 size_t bytes, IOVDiscardUndo *undo)
{
    size_t total = 0;

    if (undo) {
        undo->modified_iov = NULL;
    }
    while (*iov_cnt > 0) {
        struct iovec *cur = &iov[*iov_cnt - 1];

        if (cur->iov_len > bytes) {
            if (undo) {
                undo->modified_iov = cur;
                undo->orig = *cur;
            }
            cur->iov_len -= bytes;
            total += bytes;
            break;
        }
        bytes -= cur->iov_len;
        total += cur->iov_len;
        (*iov_cnt)--;
    }
    return total;
}

size_t iov_discard_front(struct iovec **iov, unsigned int *iov_cnt,
                         size_t bytes)
{
    return iov_discard_front_undoable(iov, iov_cnt, bytes, NULL);
}

size_t iov_discard_back(struct iovec *iov, unsigned int *iov_cnt,
                        size_t bytes)
{
    return iov_discard_back_undoable(iov, iov_cnt, bytes, NULL);
}

void iov_discard_undo(IOVDiscardUndo *undo)
{
    /* The caller restores its own array pointer and count. */
    if (undo->modified_iov) {
        *undo->modified_iov = undo->orig;
    }
}

/* ---- QEMUIOVector ------------------------------------------------------ */

/* Embedded and external vectors have no array of their own to grow. */
static void qiov_require_owned(const QEMUIOVector *qiov, const char *func)
{
    if (qiov->nalloc == -1) {
        error_report("%s: QEMUIOVector %p does not own its array (it was "
                     "made by qemu_iovec_init_external or "
                     "qemu_iovec_init_buf); only qemu_iovec_init vectors "
                     "can be changed", func, (void *)qiov);
        abort();
    }
}

void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint)
{
    if (alloc_hint < 0) {
        error_report("qemu_iovec_init: negative alloc_hint %d", alloc_hint);
        abort();
    }
    qiov->iov = g_new(struct iovec, alloc_hint);
    qiov->niov = 0;
    qiov->nalloc = alloc_hint;
    qiov->size = 0;
}

void qemu_iovec_init_external(QEMUIOVector *qiov, struct iovec *iov,
                              int niov)
{
    qiov->iov = iov;
    qiov->niov = niov;
    qiov->nalloc = -1;
    qiov->size = iov_size(iov, niov);
}

void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len)
{
    qiov_require_owned(qiov, __func__);
    if (qiov->niov == qiov->nalloc) {
        /* Doubling keeps a long run of adds linear overall. */
        qiov->nalloc = 2 * qiov->nalloc + 1;
        qiov->iov = g_renew(struct iovec, qiov->iov, qiov->nalloc);
    }
    qiov->iov[qiov->niov].iov_base = base;
    qiov->iov[qiov->niov].iov_len = len;
    qiov->niov++;
    qiov->size += len;
}

size_t qemu_iovec_concat_iov(QEMUIOVector *dst, struct iovec *src_iov,
                             unsigned int src_cnt, size_t soffset,
                             size_t sbytes)
{
    unsigned int i;
    size_t done = 0;

    if (sbytes == 0) {
        return 0;
    }
    qiov_require_owned(dst, __func__);
    i = iov_locate(__func__, src_iov, src_cnt, &soffset);
    for (; i < src_cnt && done < sbytes; i++) {
        size_t len = MIN(src_iov[i].iov_len - soffset, sbytes - done);

        if (len > 0) {
            qemu_iovec_add(dst, (char *)src_iov[i].iov_base + soffset, len);
            done += len;
        }
        soffset = 0;
    }
    return done;
}

void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src,
                       size_t soffset, size_t sbytes)
{
    qemu_iovec_concat_iov(dst, src->iov, src->niov, soffset, sbytes);
}

static void qiov_require_range(const QEMUIOVector *qiov, size_t offset,
                               size_t len, const char *func)
{
    if (offset > qiov->size || len > qiov->size - offset) {
        error_report("%s: range [%zu, +%zu) is outside the %zu-byte "
                     "QEMUIOVector %p", func, offset, len, qiov->size,
                     (void *)qiov);
        abort();
    }
}

struct iovec *qemu_iovec_slice(QEMUIOVector *qiov, size_t offset,
                               size_t len, size_t *head, size_t *tail,
                               int *niov)
{
    struct iovec *first;
    int i;
    size_t end;

    qiov_require_range(qiov, offset, len, __func__);

    /*
     * The first element is the one byte @offset is in; with nothing left
     * to skip we stop at once, so leading empty elements stay in.
     */
    i = 0;
    while (offset > 0 && offset >= qiov->iov[i].iov_len) {
        offset -= qiov->iov[i].iov_len;
        i++;
    }
    first = &qiov->iov[i];
    *head = offset;

    /* Then the element that holds the last byte of the range. */
    end = offset + len;
    while (end > 0 && end >= qiov->iov[i].iov_len) {
        end -= qiov->iov[i].iov_len;
        i++;
    }
    if (end > 0) {
        /* The range stops inside element i: it is in, partly. */
        *tail = qiov->iov[i].iov_len - end;
        i++;
    } else {
        *tail = 0;
    }
    *niov = (int)(&qiov->iov[i] - first);
    return first;
}

int qemu_iovec_subvec_niov(QEMUIOVector *qiov, size_t offset, size_t len)
{
    size_t head, tail;
    int niov;

    qemu_iovec_slice(qiov, offset, len, &head, &tail, &niov);
    return niov;
}

void qemu_iovec_init_slice(QEMUIOVector *qiov, QEMUIOVector *source,
                           size_t offset, size_t len)
{
    struct iovec *first;
    size_t head, tail;
    int niov;

    first = qemu_iovec_slice(source, offset, len, &head, &tail, &niov);
    if (niov == 1) {
        /* One element needs no array: embed it. */
        qemu_iovec_init_buf(qiov, (char *)first->iov_base + head, len);
    } else {
        qemu_iovec_init(qiov, niov);
        qemu_iovec_concat_iov(qiov, first, niov, head, len);
    }
}

bool qemu_iovec_is_zero(QEMUIOVector *qiov, size_t qiov_offset,
                        size_t bytes)
{
    unsigned int i;

    qiov_require_range(qiov, qiov_offset, bytes, __func__);
    i = iov_locate(__func__, qiov->iov, qiov->niov, &qiov_offset);
    for (; bytes > 0; i++) {
        const uint8_t *p = (const uint8_t *)qiov->iov[i].iov_base +
                           qiov_offset;
        size_t len = MIN(qiov->iov[i].iov_len - qiov_offset, bytes);

        /*
         * Zero iff the first byte is zero and every byte equals the one
         * after it: lets memcmp() do the scan at its speed.
         */
        if (len > 0 && (p[0] != 0 || memcmp(p, p + 1, len - 1) != 0)) {
            return false;
        }
        bytes -= len;
        qiov_offset = 0;
    }
    return true;
}

void qemu_iovec_destroy(QEMUIOVector *qiov)
{
    if (qiov->nalloc != -1) {
        g_free(qiov->iov);
    }
    memset(qiov, 0, sizeof(*qiov));
}

void qemu_iovec_reset(QEMUIOVector *qiov)
{
    qiov_require_owned(qiov, __func__);
    qiov->niov = 0;
    qiov->size = 0;
}

size_t qemu_iovec_to_buf(QEMUIOVector *qiov, size_t offset,
                         void *buf, size_t bytes)
{
    return iov_to_buf(qiov->iov, qiov->niov, offset, buf, bytes);
}

size_t qemu_iovec_from_buf(QEMUIOVector *qiov, size_t offset,
                           const void *buf, size_t bytes)
{
    return iov_from_buf(qiov->iov, qiov->niov, offset, buf, bytes);
}

size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset,
                         int fillc, size_t bytes)
{
    return iov_memset(qiov->iov, qiov->niov, offset, fillc, bytes);
}

ssize_t qemu_iovec_compare(QEMUIOVector *a, QEMUIOVector *b)
{
    unsigned int ia = 0, ib = 0;
    size_t oa = 0, ob = 0;
    size_t pos = 0;

    if (a->size != b->size) {
        error_report("qemu_iovec_compare: QEMUIOVectors %p and %p differ "
                     "in size (%zu and %zu bytes); compare equal sizes",
                     (void *)a, (void *)b, a->size, b->size);
        abort();
    }
    /* Walk both in step; the two may be split differently. */
    while (pos < a->size) {
        const uint8_t *pa, *pb;
        size_t len, k;

        if (oa == a->iov[ia].iov_len) {
            ia++;
            oa = 0;
            continue;
        }
        if (ob == b->iov[ib].iov_len) {
            ib++;
            ob = 0;
            continue;
        }
        pa = (const uint8_t *)a->iov[ia].iov_base + oa;
        pb = (const uint8_t *)b->iov[ib].iov_base + ob;
        len = MIN(a->iov[ia].iov_len - oa, b->iov[ib].iov_len - ob);
        if (memcmp(pa, pb, len) != 0) {
            for (k = 0; pa[k] == pb[k]; k++) {
                /* find the byte */
            }
            return pos + k;
        }
        oa += len;
        ob += len;
        pos += len;
    }
    return -1;
}

void qemu_iovec_clone(QEMUIOVector *dest, const QEMUIOVector *src,
                      void *buf)
{
    size_t offset = 0;
    int i;

    qemu_iovec_reset(dest);
    for (i = 0; i < src->niov; i++) {
        qemu_iovec_add(dest, (char *)buf + offset, src->iov[i].iov_len);
        offset += src->iov[i].iov_len;
    }
}

void qemu_iovec_discard_back(QEMUIOVector *qiov, size_t bytes)
{
    unsigned int niov = qiov->niov;
    size_t new_size;

    qiov_require_range(qiov, 0, bytes, __func__);
    new_size = qiov->size - bytes;
    iov_discard_back(qiov->iov, &niov, bytes);
    qiov->niov = niov;
    /*
     * Assign rather than subtract: in an embedded vector 'size' is the
     * element's own length, which the discard may already have shortened.
     */
    qiov->size = new_size;
}
