/*
 * test-iov.c: the struct iovec helpers and QEMUIOVector (qemu/iov.h).
 *
 * Most cases use one awkward layout: elements of uneven sizes, some of
 * them empty, laid out in a backing buffer with guard bytes between them.
 * A flat "model" array says what the vector's bytes should be, so every
 * copy is checked byte for byte, over every offset and length, and the
 * guards show that nothing was written outside the elements.  Misuse that
 * aborts runs in a subprocess and its message is checked.
 *
 * Threading: single-threaded (the send/recv cases use a socket pair).
 */
#include "qemu/osdep.h"
#include "qemu/iov.h"
#include <sys/socket.h>

#define GUARD 0xEE

/* Element sizes of the awkward layout: empty ones first, middle, last. */
static const size_t layout[] = { 0, 3, 1, 0, 7, 16, 0, 5, 2, 0 };
#define NLAYOUT ((unsigned)ARRAY_SIZE(layout))
#define LAYOUT_SIZE 34

typedef struct Vec {
    struct iovec iov[64];
    unsigned cnt;
    size_t size;
    uint8_t *backing;           /* elements with two guard bytes after each */
    size_t backing_len;
} Vec;

static void vec_init(Vec *v, const size_t *sizes, unsigned n)
{
    size_t pos = 0;
    unsigned i;

    g_assert_cmpuint(n, <=, ARRAY_SIZE(v->iov));
    v->cnt = n;
    v->size = 0;
    for (i = 0; i < n; i++) {
        v->backing_len += sizes[i] + 2;
    }
    v->backing = g_malloc(v->backing_len);
    memset(v->backing, GUARD, v->backing_len);
    for (i = 0; i < n; i++) {
        v->iov[i].iov_base = v->backing + pos;
        v->iov[i].iov_len = sizes[i];
        pos += sizes[i] + 2;
        v->size += sizes[i];
    }
}

static void vec_layout(Vec *v)
{
    memset(v, 0, sizeof(*v));
    vec_init(v, layout, NLAYOUT);
    g_assert_cmpuint(v->size, ==, LAYOUT_SIZE);
}

static void vec_free(Vec *v)
{
    g_free(v->backing);
}

/* Fill the elements from @model (v->size bytes), leaving the guards. */
static void vec_set(Vec *v, const uint8_t *model)
{
    size_t off = 0;
    unsigned i;

    for (i = 0; i < v->cnt; i++) {
        memcpy(v->iov[i].iov_base, model + off, v->iov[i].iov_len);
        off += v->iov[i].iov_len;
    }
}

/* The elements hold exactly @model and every guard byte is intact. */
static void vec_check(Vec *v, const uint8_t *model)
{
    size_t off = 0;
    unsigned i;

    for (i = 0; i < v->cnt; i++) {
        uint8_t *p = v->iov[i].iov_base;

        g_assert_cmpmem(p, v->iov[i].iov_len, model + off,
                        v->iov[i].iov_len);
        g_assert_cmphex(p[v->iov[i].iov_len], ==, GUARD);
        g_assert_cmphex(p[v->iov[i].iov_len + 1], ==, GUARD);
        off += v->iov[i].iov_len;
    }
}

static void fill_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed + i * 7 + 1);
    }
}

/* ---- Plain iovec arrays ----------------------------------------------- */

static void test_size(void)
{
    Vec v;

    vec_layout(&v);
    g_assert_cmpuint(iov_size(v.iov, v.cnt), ==, 34);
    g_assert_cmpuint(iov_size(v.iov, 0), ==, 0);
    g_assert_cmpuint(iov_size(v.iov, 1), ==, 0);
    g_assert_cmpuint(iov_size(v.iov, 3), ==, 4);
    vec_free(&v);
}

/* Every offset, every length (running past the end too), both ways. */
static void test_to_from_buf(void)
{
    uint8_t model[LAYOUT_SIZE], buf[LAYOUT_SIZE + 8], src[LAYOUT_SIZE + 8];
    size_t off, len;
    Vec v;

    vec_layout(&v);
    fill_pattern(model, sizeof(model), 0);
    for (off = 0; off <= LAYOUT_SIZE; off++) {
        for (len = 0; len <= LAYOUT_SIZE - off + 4; len++) {
            size_t want = MIN(len, LAYOUT_SIZE - off);
            uint8_t expect[LAYOUT_SIZE];

            vec_set(&v, model);
            memset(buf, 0xAA, sizeof(buf));
            g_assert_cmpuint(iov_to_buf_full(v.iov, v.cnt, off, buf, len),
                             ==, want);
            g_assert_cmpmem(buf, want, model + off, want);
            g_assert_cmphex(buf[want], ==, 0xAA);

            fill_pattern(src, sizeof(src), 100 + off);
            memcpy(expect, model, sizeof(expect));
            memcpy(expect + off, src, want);
            g_assert_cmpuint(iov_from_buf_full(v.iov, v.cnt, off, src, len),
                             ==, want);
            vec_check(&v, expect);
        }
    }
    vec_free(&v);
}

/* The inline fast path (a constant length within the first element). */
static void test_inline_first_element(void)
{
    uint8_t a[8], out[4];
    struct iovec iov = { .iov_base = a, .iov_len = sizeof(a) };

    fill_pattern(a, sizeof(a), 3);
    g_assert_cmpuint(iov_to_buf(&iov, 1, 4, out, 4), ==, 4);
    g_assert_cmpmem(out, 4, a + 4, 4);
    g_assert_cmpuint(iov_from_buf(&iov, 1, 0, "wxyz", 4), ==, 4);
    g_assert_cmpmem(a, 4, "wxyz", 4);
    /* Runs past the end: falls back to the full version. */
    g_assert_cmpuint(iov_to_buf(&iov, 1, 6, out, 4), ==, 2);
    g_assert_cmpmem(out, 2, a + 6, 2);
}

static void test_memset(void)
{
    uint8_t model[LAYOUT_SIZE];
    size_t off, len;
    Vec v;

    vec_layout(&v);
    fill_pattern(model, sizeof(model), 9);
    for (off = 0; off <= LAYOUT_SIZE; off++) {
        for (len = 0; len <= LAYOUT_SIZE - off + 4; len++) {
            size_t want = MIN(len, LAYOUT_SIZE - off);
            uint8_t expect[LAYOUT_SIZE];

            vec_set(&v, model);
            memcpy(expect, model, sizeof(expect));
            memset(expect + off, 0x5A, want);
            g_assert_cmpuint(iov_memset(v.iov, v.cnt, off, 0x5A, len), ==,
                             want);
            vec_check(&v, expect);
        }
    }
    vec_free(&v);
}

/* At the very end there is nothing to copy; one byte further is a bug. */
static void test_offset_at_end(void)
{
    uint8_t b = 0;
    Vec v;

    vec_layout(&v);
    g_assert_cmpuint(iov_to_buf(v.iov, v.cnt, LAYOUT_SIZE, &b, 1), ==, 0);
    g_assert_cmpuint(iov_from_buf(v.iov, v.cnt, LAYOUT_SIZE, &b, 1), ==, 0);
    g_assert_cmpuint(iov_memset(v.iov, v.cnt, LAYOUT_SIZE, 0, 1), ==, 0);
    g_assert_cmpuint(iov_to_buf(v.iov, 0, 0, &b, 1), ==, 0);
    vec_free(&v);
}

static void test_offset_past_end_aborts(void)
{
    if (g_test_subprocess()) {
        uint8_t b;
        Vec v;

        vec_layout(&v);
        iov_to_buf(v.iov, v.cnt, LAYOUT_SIZE + 1, &b, 1);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*iov_to_buf_full: offset 35 is past the end "
                              "of the 34-byte I/O vector*");
}

/* 1,000 elements of 1..13 bytes: copies cross hundreds of boundaries. */
static void test_many_elements(void)
{
    size_t sizes[1000];
    struct iovec *iov = g_new(struct iovec, 1000);
    g_autofree uint8_t *backing = NULL;
    g_autofree uint8_t *src = NULL, *dst = NULL;
    size_t total = 0, pos = 0, off, len;
    unsigned i;

    for (i = 0; i < 1000; i++) {
        sizes[i] = 1 + (i * 5) % 13;
        total += sizes[i];
    }
    backing = g_malloc0(total);
    for (i = 0; i < 1000; i++) {
        iov[i].iov_base = backing + pos;
        iov[i].iov_len = sizes[i];
        pos += sizes[i];
    }
    g_assert_cmpuint(iov_size(iov, 1000), ==, total);

    src = g_malloc(total);
    dst = g_malloc(total);
    fill_pattern(src, total, 42);
    g_assert_cmpuint(iov_from_buf(iov, 1000, 0, src, total), ==, total);
    g_assert_cmpmem(backing, total, src, total);

    for (off = 0; off < total; off += 997) {
        len = MIN(total - off, (size_t)3001);
        memset(dst, 0, total);
        g_assert_cmpuint(iov_to_buf(iov, 1000, off, dst, len), ==, len);
        g_assert_cmpmem(dst, len, src + off, len);
    }
    g_free(iov);
}

static void test_copy(void)
{
    struct iovec dst[16];
    Vec v;

    vec_layout(&v);

    /* Bytes 2..13: the rest of element 1, element 2, element 4, 1 of 5. */
    g_assert_cmpuint(iov_copy(dst, 16, v.iov, v.cnt, 2, 10), ==, 4);
    g_assert_true(dst[0].iov_base == (uint8_t *)v.iov[1].iov_base + 2);
    g_assert_cmpuint(dst[0].iov_len, ==, 1);
    g_assert_true(dst[1].iov_base == v.iov[2].iov_base);
    g_assert_cmpuint(dst[1].iov_len, ==, 1);
    g_assert_true(dst[2].iov_base == v.iov[4].iov_base);
    g_assert_cmpuint(dst[2].iov_len, ==, 7);
    g_assert_true(dst[3].iov_base == v.iov[5].iov_base);
    g_assert_cmpuint(dst[3].iov_len, ==, 1);

    /* The whole vector: the non-empty elements only. */
    g_assert_cmpuint(iov_copy(dst, 16, v.iov, v.cnt, 0, SIZE_MAX), ==, 6);
    g_assert_cmpuint(iov_size(dst, 6), ==, LAYOUT_SIZE);

    /* A destination of two elements takes the first two. */
    g_assert_cmpuint(iov_copy(dst, 2, v.iov, v.cnt, 0, SIZE_MAX), ==, 2);
    g_assert_cmpuint(iov_size(dst, 2), ==, 4);

    /* Nothing asked for, or nothing left. */
    g_assert_cmpuint(iov_copy(dst, 16, v.iov, v.cnt, 5, 0), ==, 0);
    g_assert_cmpuint(iov_copy(dst, 16, v.iov, v.cnt, LAYOUT_SIZE, 9), ==, 0);
    vec_free(&v);
}

static void test_discard_front(void)
{
    struct iovec *iov;
    unsigned cnt;
    Vec v;

    vec_layout(&v);

    /* 0 bytes: only the empty element at the front goes. */
    iov = v.iov;
    cnt = v.cnt;
    g_assert_cmpuint(iov_discard_front(&iov, &cnt, 0), ==, 0);
    g_assert_true(iov == &v.iov[1]);
    g_assert_cmpuint(cnt, ==, 9);
    g_assert_cmpuint(iov[0].iov_len, ==, 3);

    /* 3 more: element 1 exactly, so it goes whole. */
    g_assert_cmpuint(iov_discard_front(&iov, &cnt, 3), ==, 3);
    g_assert_true(iov == &v.iov[2]);
    g_assert_cmpuint(cnt, ==, 8);

    /* 5 more: element 2 (1), the empty one, 4 of element 4's 7. */
    g_assert_cmpuint(iov_discard_front(&iov, &cnt, 5), ==, 5);
    g_assert_true(iov == &v.iov[4]);
    g_assert_cmpuint(cnt, ==, 6);
    g_assert_cmpuint(iov[0].iov_len, ==, 3);
    g_assert_true(iov[0].iov_base ==
                  (uint8_t *)v.backing + 0 + 2 + 3 + 2 + 1 + 2 + 0 + 2 + 4);
    g_assert_cmpuint(iov_size(iov, cnt), ==, LAYOUT_SIZE - 8);

    /* Too much: everything that is left, and an empty vector. */
    g_assert_cmpuint(iov_discard_front(&iov, &cnt, 1000), ==,
                     LAYOUT_SIZE - 8);
    g_assert_cmpuint(cnt, ==, 0);
    g_assert_true(iov == &v.iov[10]);
    g_assert_cmpuint(iov_discard_front(&iov, &cnt, 1), ==, 0);
    vec_free(&v);
}

static void test_discard_back(void)
{
    unsigned cnt;
    Vec v;

    vec_layout(&v);
    cnt = v.cnt;

    /* 0 bytes: the empty last element goes. */
    g_assert_cmpuint(iov_discard_back(v.iov, &cnt, 0), ==, 0);
    g_assert_cmpuint(cnt, ==, 9);

    /* 3: element 8 (2) whole and 1 of element 7. */
    g_assert_cmpuint(iov_discard_back(v.iov, &cnt, 3), ==, 3);
    g_assert_cmpuint(cnt, ==, 8);
    g_assert_cmpuint(v.iov[7].iov_len, ==, 4);

    g_assert_cmpuint(iov_discard_back(v.iov, &cnt, 1000), ==,
                     LAYOUT_SIZE - 3);
    g_assert_cmpuint(cnt, ==, 0);
    g_assert_cmpuint(iov_discard_back(v.iov, &cnt, 1), ==, 0);
    vec_free(&v);
}

/* Every discard length, front and back, undone to the exact original. */
static void test_discard_undo(void)
{
    size_t bytes;
    Vec v;

    vec_layout(&v);
    for (bytes = 0; bytes <= LAYOUT_SIZE + 1; bytes++) {
        struct iovec orig[NLAYOUT];
        struct iovec *iov = v.iov;
        unsigned cnt = v.cnt;
        IOVDiscardUndo undo;

        memcpy(orig, v.iov, sizeof(orig));
        g_assert_cmpuint(iov_discard_front_undoable(&iov, &cnt, bytes,
                                                    &undo), ==,
                         MIN(bytes, (size_t)LAYOUT_SIZE));
        g_assert_cmpuint(iov_size(iov, cnt), ==,
                         LAYOUT_SIZE - MIN(bytes, (size_t)LAYOUT_SIZE));
        iov_discard_undo(&undo);
        g_assert_cmpmem(v.iov, sizeof(orig), orig, sizeof(orig));

        cnt = v.cnt;
        g_assert_cmpuint(iov_discard_back_undoable(v.iov, &cnt, bytes,
                                                   &undo), ==,
                         MIN(bytes, (size_t)LAYOUT_SIZE));
        g_assert_cmpuint(iov_size(v.iov, cnt), ==,
                         LAYOUT_SIZE - MIN(bytes, (size_t)LAYOUT_SIZE));
        iov_discard_undo(&undo);
        g_assert_cmpmem(v.iov, sizeof(orig), orig, sizeof(orig));
    }

    /*
     * Everything: whole elements only, nothing to restore.  (A discard
     * ending on a boundary inside the vector still records the next
     * element, trimmed by 0 bytes, as QEMU does.)
     */
    {
        struct iovec *iov = v.iov;
        unsigned cnt = v.cnt;
        IOVDiscardUndo undo;

        iov_discard_front_undoable(&iov, &cnt, LAYOUT_SIZE, &undo);
        g_assert_null(undo.modified_iov);
        iov_discard_undo(&undo);
        iov = v.iov;
        cnt = v.cnt;
        iov_discard_front_undoable(&iov, &cnt, 4, &undo);
        g_assert_true(undo.modified_iov == &v.iov[4]);
        g_assert_cmpuint(undo.modified_iov->iov_len, ==, 7);
    }
    vec_free(&v);
}

static void make_socketpair(int sv[2])
{
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
}

static void test_send_recv(void)
{
    uint8_t model[LAYOUT_SIZE], got[LAYOUT_SIZE];
    Vec src, dst;
    int sv[2];

    vec_layout(&src);
    vec_layout(&dst);
    fill_pattern(model, sizeof(model), 77);
    vec_set(&src, model);
    memset(got, 0, sizeof(got));
    vec_set(&dst, got);
    make_socketpair(sv);

    /* Bytes 5..29 of one vector land at 2..26 of the other. */
    g_assert_cmpint(iov_send(sv[0], src.iov, src.cnt, 5, 25), ==, 25);
    g_assert_cmpint(iov_recv(sv[1], dst.iov, dst.cnt, 2, 25), ==, 25);
    memcpy(got + 2, model + 5, 25);
    vec_check(&dst, got);

    /* Peer closed after 4 bytes: recv returns what came, then 0. */
    g_assert_cmpint(iov_send(sv[0], src.iov, src.cnt, 0, 4), ==, 4);
    close(sv[0]);
    g_assert_cmpint(iov_recv(sv[1], dst.iov, dst.cnt, 0, 10), ==, 4);
    g_assert_cmpint(iov_recv(sv[1], dst.iov, dst.cnt, 0, 10), ==, 0);
    close(sv[1]);

    /* Nothing asked for. */
    make_socketpair(sv);
    g_assert_cmpint(iov_send(sv[0], src.iov, src.cnt, 0, 0), ==, 0);

    /* Non-blocking and nothing there: -1 with EAGAIN. */
    g_assert_cmpint(fcntl(sv[1], F_SETFL, O_NONBLOCK), ==, 0);
    errno = 0;
    g_assert_cmpint(iov_recv(sv[1], dst.iov, dst.cnt, 0, 4), ==, -1);
    g_assert_cmpint(errno, ==, EAGAIN);

    /* A closed peer: EPIPE, and no SIGPIPE kills us. */
    close(sv[1]);
    errno = 0;
    g_assert_cmpint(iov_send(sv[0], src.iov, src.cnt, 0, 4), ==, -1);
    g_assert_cmpint(errno, ==, EPIPE);
    close(sv[0]);

    vec_free(&src);
    vec_free(&dst);
}

/* More elements than one sendmsg takes at a time, 1 MiB through. */
static void test_send_recv_many(void)
{
    enum { N = 1000, EACH = 1049 };
    struct iovec *siov = g_new(struct iovec, N), *riov = g_new(struct iovec, N);
    g_autofree uint8_t *sbuf = g_malloc(N * EACH);
    g_autofree uint8_t *rbuf = g_malloc0(N * EACH);
    size_t total = (size_t)N * EACH - 100;
    ssize_t sent = 0, got = 0;
    int sv[2], i;

    for (i = 0; i < N; i++) {
        siov[i] = (struct iovec){ sbuf + i * EACH, EACH };
        riov[i] = (struct iovec){ rbuf + i * EACH, EACH };
    }
    fill_pattern(sbuf, N * EACH, 5);
    make_socketpair(sv);
    g_assert_cmpint(fcntl(sv[0], F_SETFL, O_NONBLOCK), ==, 0);
    g_assert_cmpint(fcntl(sv[1], F_SETFL, O_NONBLOCK), ==, 0);

    /* Alternate until all is through; each call moves what fits. */
    while (got < (ssize_t)total) {
        ssize_t r;

        if (sent < (ssize_t)total) {
            r = iov_send(sv[0], siov, N, 100 + sent, total - sent);
            if (r < 0) {
                g_assert_cmpint(errno, ==, EAGAIN);
            } else {
                sent += r;
            }
        }
        r = iov_recv(sv[1], riov, N, got, total - got);
        if (r < 0) {
            g_assert_cmpint(errno, ==, EAGAIN);
        } else {
            got += r;
        }
    }
    g_assert_cmpint(got, ==, total);
    g_assert_cmpmem(rbuf, total, sbuf + 100, total);
    close(sv[0]);
    close(sv[1]);
    g_free(siov);
    g_free(riov);
}

static void test_hexdump(void)
{
    char text[] = "Hello, qaio!\x01\x7f" "0123456789";
    struct iovec iov[2] = {
        { text, 5 },
        { text + 5, sizeof(text) - 1 - 5 },
    };
    g_autofree char *expect = NULL;
    char *out = NULL;
    size_t outlen = 0;
    FILE *fp = open_memstream(&out, &outlen);

    iov_hexdump(iov, 2, fp, "p", 20);
    fclose(fp);
    /* The short last line pads the 12 missing bytes' columns. */
    expect = g_strdup_printf(
        "p: 0000: 48 65 6c 6c 6f 2c 20 71 61 69 6f 21 01 7f 30 31"
        "  Hello, qaio!..01\n"
        "p: 0010: 32 33 34 35%*s  2345\n", 12 * 3, "");
    g_assert_cmpstr(out, ==, expect);
    free(out);
}

/* ---- QEMUIOVector ----------------------------------------------------- */

static void test_qiov_init_add(void)
{
    uint8_t buf[300];
    QEMUIOVector q;
    int i;

    qemu_iovec_init(&q, 0);
    g_assert_cmpint(q.niov, ==, 0);
    g_assert_cmpuint(q.size, ==, 0);

    /* 100 adds from no capacity: it grows and keeps every element. */
    for (i = 0; i < 100; i++) {
        qemu_iovec_add(&q, buf + i * 3, 3);
    }
    g_assert_cmpint(q.niov, ==, 100);
    g_assert_cmpuint(q.size, ==, 300);
    g_assert_cmpint(q.nalloc, >=, 100);
    for (i = 0; i < 100; i++) {
        g_assert_true(q.iov[i].iov_base == buf + i * 3);
        g_assert_cmpuint(q.iov[i].iov_len, ==, 3);
    }

    /* reset keeps the array; the vector refills from the start. */
    {
        int nalloc = q.nalloc;
        struct iovec *arr = q.iov;

        qemu_iovec_reset(&q);
        g_assert_cmpint(q.niov, ==, 0);
        g_assert_cmpuint(q.size, ==, 0);
        g_assert_cmpint(q.nalloc, ==, nalloc);
        g_assert_true(q.iov == arr);
    }
    qemu_iovec_add(&q, buf, 7);
    g_assert_cmpuint(q.size, ==, 7);

    qemu_iovec_destroy(&q);
    g_assert_null(q.iov);
    g_assert_cmpint(q.niov, ==, 0);
    g_assert_cmpuint(q.size, ==, 0);

    /* A hint of 4 means no growth for 4 adds. */
    qemu_iovec_init(&q, 4);
    {
        struct iovec *arr = q.iov;

        for (i = 0; i < 4; i++) {
            qemu_iovec_add(&q, buf, 1);
        }
        g_assert_true(q.iov == arr);
    }
    qemu_iovec_destroy(&q);
}

static void test_qiov_init_buf(void)
{
    uint8_t buf[64], out[64];
    QEMUIOVector q;
    QEMUIOVector s = QEMU_IOVEC_INIT_BUF(s, buf, 16);

    g_assert_cmpint(s.niov, ==, 1);
    g_assert_cmpuint(s.size, ==, 16);
    g_assert_true(s.iov == &s.local_iov);

    qemu_iovec_init_buf(&q, buf, sizeof(buf));
    g_assert_cmpint(q.niov, ==, 1);
    g_assert_cmpint(q.nalloc, ==, -1);
    g_assert_cmpuint(q.size, ==, 64);
    g_assert_true(qemu_iovec_buf(&q) == buf);

    fill_pattern(buf, sizeof(buf), 1);
    g_assert_cmpuint(qemu_iovec_to_buf(&q, 10, out, 100), ==, 54);
    g_assert_cmpmem(out, 54, buf + 10, 54);
    g_assert_cmpuint(qemu_iovec_memset(&q, 60, 0, 10), ==, 4);
    g_assert_true(qemu_iovec_is_zero(&q, 60, 4));
    g_assert_false(qemu_iovec_is_zero(&q, 59, 5));
    g_assert_cmpuint(qemu_iovec_from_buf(&q, 0, "abc", 3), ==, 3);
    g_assert_cmpmem(buf, 3, "abc", 3);
    qemu_iovec_destroy(&q);         /* a no-op on the buffer */
    g_assert_cmpmem(buf, 3, "abc", 3);

    /* Zero length is a valid vector. */
    qemu_iovec_init_buf(&q, buf, 0);
    g_assert_cmpuint(q.size, ==, 0);
    g_assert_cmpuint(qemu_iovec_to_buf(&q, 0, out, 1), ==, 0);
}

static void test_qiov_external(void)
{
    uint8_t model[LAYOUT_SIZE], out[LAYOUT_SIZE];
    QEMUIOVector q;
    Vec v;

    vec_layout(&v);
    fill_pattern(model, sizeof(model), 8);
    vec_set(&v, model);
    qemu_iovec_init_external(&q, v.iov, v.cnt);
    g_assert_cmpuint(q.size, ==, LAYOUT_SIZE);
    g_assert_cmpint(q.niov, ==, (int)NLAYOUT);
    g_assert_true(q.iov == v.iov);
    g_assert_cmpuint(qemu_iovec_to_buf(&q, 0, out, sizeof(out)), ==,
                     LAYOUT_SIZE);
    g_assert_cmpmem(out, sizeof(out), model, sizeof(model));
    qemu_iovec_destroy(&q);         /* does not free the caller's array */
    g_assert_cmpuint(v.iov[4].iov_len, ==, 7);
    vec_free(&v);
}

static void test_qiov_external_add_aborts(void)
{
    if (g_test_subprocess()) {
        struct iovec iov = { NULL, 0 };
        QEMUIOVector q;

        qemu_iovec_init_external(&q, &iov, 1);
        qemu_iovec_add(&q, NULL, 1);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_iovec_add: QEMUIOVector * does not own "
                              "its array*");
}

/*
 * For every range of the layout: the slice covers exactly the range's
 * bytes, starting at the right address, and init_slice describes the same
 * bytes.
 */
static void test_qiov_slice(void)
{
    uint8_t model[LAYOUT_SIZE];
    QEMUIOVector q;
    size_t off, len;
    Vec v;

    vec_layout(&v);
    fill_pattern(model, sizeof(model), 30);
    vec_set(&v, model);
    qemu_iovec_init_external(&q, v.iov, v.cnt);

    for (off = 0; off <= LAYOUT_SIZE; off++) {
        for (len = 0; len <= LAYOUT_SIZE - off; len++) {
            size_t head, tail, covered;
            struct iovec *first;
            QEMUIOVector s;
            uint8_t out[LAYOUT_SIZE];
            int niov;

            first = qemu_iovec_slice(&q, off, len, &head, &tail, &niov);
            covered = iov_size(first, niov);
            g_assert_cmpuint(covered - head - tail, ==, len);
            if (len > 0) {
                /* Empty elements may lead (as in QEMU), never trail. */
                int k = 0;

                while (first[k].iov_len == 0) {
                    g_assert_cmpuint(head, ==, 0);
                    k++;
                }
                g_assert_cmpint(k, <, niov);
                g_assert_cmpuint(head, <, first[k].iov_len);
                g_assert_cmpuint(tail, <, first[niov - 1].iov_len);
                g_assert_cmphex(((uint8_t *)first[k].iov_base)[head], ==,
                                model[off]);
            }
            g_assert_cmpint(qemu_iovec_subvec_niov(&q, off, len), ==, niov);

            qemu_iovec_init_slice(&s, &q, off, len);
            g_assert_cmpuint(s.size, ==, len);
            g_assert_cmpuint(qemu_iovec_to_buf(&s, 0, out, len), ==, len);
            g_assert_cmpmem(out, len, model + off, len);
            qemu_iovec_destroy(&s);
        }
    }

    /* Exact answers for two ranges. */
    {
        size_t head, tail;
        int niov;
        struct iovec *first;

        /* Bytes 2..12: from inside element 1 to inside element 5. */
        first = qemu_iovec_slice(&q, 2, 11, &head, &tail, &niov);
        g_assert_true(first == &v.iov[1]);
        g_assert_cmpuint(head, ==, 2);
        g_assert_cmpint(niov, ==, 5);
        g_assert_cmpuint(tail, ==, 14);

        /* Exactly element 5. */
        first = qemu_iovec_slice(&q, 11, 16, &head, &tail, &niov);
        g_assert_true(first == &v.iov[5]);
        g_assert_cmpuint(head, ==, 0);
        g_assert_cmpuint(tail, ==, 0);
        g_assert_cmpint(niov, ==, 1);

        /* Exactly element 4: the empty element 3 before it comes along. */
        first = qemu_iovec_slice(&q, 4, 7, &head, &tail, &niov);
        g_assert_true(first == &v.iov[3]);
        g_assert_cmpuint(head, ==, 0);
        g_assert_cmpuint(tail, ==, 0);
        g_assert_cmpint(niov, ==, 2);
    }
    vec_free(&v);
}

static void test_qiov_slice_out_of_range_aborts(void)
{
    if (g_test_subprocess()) {
        uint8_t buf[8];
        QEMUIOVector q, s;

        qemu_iovec_init_buf(&q, buf, sizeof(buf));
        qemu_iovec_init_slice(&s, &q, 4, 5);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qemu_iovec_slice: range [4, +5) is outside "
                              "the 8-byte QEMUIOVector*");
}

static void test_qiov_concat(void)
{
    uint8_t model[LAYOUT_SIZE], out[LAYOUT_SIZE];
    uint8_t extra[3] = { 1, 2, 3 };
    QEMUIOVector src, dst;
    Vec v;

    vec_layout(&v);
    fill_pattern(model, sizeof(model), 50);
    vec_set(&v, model);
    qemu_iovec_init_external(&src, v.iov, v.cnt);

    qemu_iovec_init(&dst, 1);
    qemu_iovec_add(&dst, extra, 3);
    /* Bytes 2..21 of src: 4 elements (1 of e1, e2, e4, 11 of e5). */
    qemu_iovec_concat(&dst, &src, 2, 20);
    g_assert_cmpint(dst.niov, ==, 5);
    g_assert_cmpuint(dst.size, ==, 23);
    g_assert_cmpuint(qemu_iovec_to_buf(&dst, 0, out, 23), ==, 23);
    g_assert_cmpmem(out, 3, extra, 3);
    g_assert_cmpmem(out + 3, 20, model + 2, 20);
    /* Elements point into src's memory; nothing was copied. */
    g_assert_true(dst.iov[1].iov_base == (uint8_t *)v.iov[1].iov_base + 2);

    /* Zero bytes, and more than src has. */
    g_assert_cmpuint(qemu_iovec_concat_iov(&dst, v.iov, v.cnt, 5, 0), ==, 0);
    g_assert_cmpint(dst.niov, ==, 5);
    g_assert_cmpuint(qemu_iovec_concat_iov(&dst, v.iov, v.cnt, 30, 100), ==,
                     4);
    g_assert_cmpuint(dst.size, ==, 27);
    qemu_iovec_destroy(&dst);
    vec_free(&v);
}

static void test_qiov_compare(void)
{
    uint8_t a[LAYOUT_SIZE], b[LAYOUT_SIZE];
    QEMUIOVector qa, qb, flat;
    size_t i;
    Vec va, vb;

    vec_layout(&va);
    vec_layout(&vb);
    fill_pattern(a, sizeof(a), 60);
    vec_set(&va, a);
    qemu_iovec_init_external(&qa, va.iov, va.cnt);
    qemu_iovec_init_external(&qb, vb.iov, vb.cnt);
    qemu_iovec_init_buf(&flat, b, sizeof(b));

    for (i = 0; i < LAYOUT_SIZE; i++) {
        memcpy(b, a, sizeof(b));
        vec_set(&vb, b);
        g_assert_cmpint(qemu_iovec_compare(&qa, &qb), ==, -1);
        g_assert_cmpint(qemu_iovec_compare(&qa, &flat), ==, -1);
        b[i] ^= 0x10;
        vec_set(&vb, b);
        /* Same shape and a different shape find the same byte. */
        g_assert_cmpint(qemu_iovec_compare(&qa, &qb), ==, (ssize_t)i);
        g_assert_cmpint(qemu_iovec_compare(&qa, &flat), ==, (ssize_t)i);
        g_assert_cmpint(qemu_iovec_compare(&flat, &qa), ==, (ssize_t)i);
    }
    vec_free(&va);
    vec_free(&vb);
}

static void test_qiov_clone(void)
{
    uint8_t flat[LAYOUT_SIZE];
    QEMUIOVector src, dst;
    int i;
    Vec v;

    vec_layout(&v);
    qemu_iovec_init_external(&src, v.iov, v.cnt);
    qemu_iovec_init(&dst, 0);
    qemu_iovec_add(&dst, flat, 1);      /* clone resets first */
    qemu_iovec_clone(&dst, &src, flat);
    g_assert_cmpint(dst.niov, ==, src.niov);
    g_assert_cmpuint(dst.size, ==, src.size);
    {
        size_t off = 0;

        for (i = 0; i < dst.niov; i++) {
            g_assert_true(dst.iov[i].iov_base == flat + off);
            g_assert_cmpuint(dst.iov[i].iov_len, ==, v.iov[i].iov_len);
            off += v.iov[i].iov_len;
        }
    }
    qemu_iovec_destroy(&dst);
    vec_free(&v);
}

static void test_qiov_is_zero(void)
{
    uint8_t zeros[LAYOUT_SIZE] = { 0 };
    QEMUIOVector q;
    size_t nz, off, len;
    Vec v;

    vec_layout(&v);
    qemu_iovec_init_external(&q, v.iov, v.cnt);
    vec_set(&v, zeros);
    g_assert_true(qemu_iovec_is_zero(&q, 0, LAYOUT_SIZE));
    g_assert_true(qemu_iovec_is_zero(&q, LAYOUT_SIZE, 0));

    /* One non-zero byte at each position: exactly the ranges over it. */
    for (nz = 0; nz < LAYOUT_SIZE; nz++) {
        uint8_t model[LAYOUT_SIZE] = { 0 };

        model[nz] = 0x80;
        vec_set(&v, model);
        for (off = 0; off <= LAYOUT_SIZE; off++) {
            for (len = 0; len <= LAYOUT_SIZE - off; len++) {
                bool want = !(nz >= off && nz < off + len);

                g_assert_cmpint(qemu_iovec_is_zero(&q, off, len), ==, want);
            }
        }
    }
    vec_free(&v);
}

static void test_qiov_discard_back(void)
{
    uint8_t buf[32];
    QEMUIOVector q;

    /* Owned: trims the last element, then drops whole ones. */
    qemu_iovec_init(&q, 4);
    qemu_iovec_add(&q, buf, 10);
    qemu_iovec_add(&q, buf + 10, 5);
    qemu_iovec_add(&q, buf + 15, 6);
    qemu_iovec_discard_back(&q, 4);
    g_assert_cmpint(q.niov, ==, 3);
    g_assert_cmpuint(q.size, ==, 17);
    g_assert_cmpuint(q.iov[2].iov_len, ==, 2);
    qemu_iovec_discard_back(&q, 7);
    g_assert_cmpint(q.niov, ==, 1);
    g_assert_cmpuint(q.size, ==, 10);
    qemu_iovec_discard_back(&q, 10);
    g_assert_cmpint(q.niov, ==, 0);
    g_assert_cmpuint(q.size, ==, 0);
    qemu_iovec_destroy(&q);

    /* Embedded: size is the element's length, counted once. */
    qemu_iovec_init_buf(&q, buf, 32);
    qemu_iovec_discard_back(&q, 12);
    g_assert_cmpint(q.niov, ==, 1);
    g_assert_cmpuint(q.size, ==, 20);
    g_assert_cmpuint(q.local_iov.iov_len, ==, 20);
    g_assert_cmpuint(iov_size(q.iov, q.niov), ==, 20);
    qemu_iovec_discard_back(&q, 20);
    g_assert_cmpuint(q.size, ==, 0);
    g_assert_cmpuint(iov_size(q.iov, q.niov), ==, 0);
}

/* The qemu_iovec_* copies are the iov_* ones over the whole vector. */
static void test_qiov_copies(void)
{
    uint8_t model[LAYOUT_SIZE], out[LAYOUT_SIZE + 4];
    QEMUIOVector q;
    Vec v;

    vec_layout(&v);
    qemu_iovec_init_external(&q, v.iov, v.cnt);
    fill_pattern(model, sizeof(model), 90);
    g_assert_cmpuint(qemu_iovec_from_buf(&q, 0, model, sizeof(model) + 0),
                     ==, LAYOUT_SIZE);
    vec_check(&v, model);
    g_assert_cmpuint(qemu_iovec_to_buf(&q, 30, out, sizeof(out)), ==, 4);
    g_assert_cmpmem(out, 4, model + 30, 4);
    g_assert_cmpuint(qemu_iovec_memset(&q, 1, 0, 2), ==, 2);
    model[1] = model[2] = 0;
    vec_check(&v, model);
    vec_free(&v);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/iov/size", test_size);
    g_test_add_func("/iov/to-from-buf/every-range", test_to_from_buf);
    g_test_add_func("/iov/to-from-buf/inline-first-element",
                    test_inline_first_element);
    g_test_add_func("/iov/memset/every-range", test_memset);
    g_test_add_func("/iov/offset-at-end-copies-nothing", test_offset_at_end);
    g_test_add_func("/iov/offset-past-end-aborts",
                    test_offset_past_end_aborts);
    g_test_add_func("/iov/many-elements", test_many_elements);
    g_test_add_func("/iov/copy", test_copy);
    g_test_add_func("/iov/discard-front", test_discard_front);
    g_test_add_func("/iov/discard-back", test_discard_back);
    g_test_add_func("/iov/discard-undo-restores", test_discard_undo);
    g_test_add_func("/iov/send-recv", test_send_recv);
    g_test_add_func("/iov/send-recv/many-elements", test_send_recv_many);
    g_test_add_func("/iov/hexdump", test_hexdump);
    g_test_add_func("/qiov/init-add-reset-destroy", test_qiov_init_add);
    g_test_add_func("/qiov/init-buf", test_qiov_init_buf);
    g_test_add_func("/qiov/external", test_qiov_external);
    g_test_add_func("/qiov/external-add-aborts",
                    test_qiov_external_add_aborts);
    g_test_add_func("/qiov/slice/every-range", test_qiov_slice);
    g_test_add_func("/qiov/slice/out-of-range-aborts",
                    test_qiov_slice_out_of_range_aborts);
    g_test_add_func("/qiov/concat", test_qiov_concat);
    g_test_add_func("/qiov/compare/first-difference", test_qiov_compare);
    g_test_add_func("/qiov/clone", test_qiov_clone);
    g_test_add_func("/qiov/is-zero/every-range", test_qiov_is_zero);
    g_test_add_func("/qiov/discard-back", test_qiov_discard_back);
    g_test_add_func("/qiov/to-from-buf-memset", test_qiov_copies);

    return g_test_run();
}
