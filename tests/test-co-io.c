/*
 * test-co-io.c: yield_until_fd_readable and coroutine socket I/O
 * (qemu_co_sendv_recvv and the send/recv helpers).
 *
 * Transfers go over AF_UNIX socket pairs with small buffers, so that
 * several megabytes take many partial sendmsg/recvmsg calls and many
 * waits for the socket; the data and byte counts are checked exactly, as
 * are the error codes (EOF, EPIPE, ENOTSOCK).  Registered with 'fdmon':
 * the fd waits run under each fd monitor.
 *
 * Threading: the main thread runs the main loop's context; one case sends
 * from a thread with its own context.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/main-loop.h"
#include "ctx-thread.h"
#include <sys/socket.h>

/* Cap on aio_poll calls while waiting for a transfer to finish. */
#define MAX_ITERATIONS 1000000

#define BIG (4 * 1024 * 1024 + 123)

static void make_socketpair(int sv[2], bool nonblocking)
{
    int size = 4096;
    int i;

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    for (i = 0; i < 2; i++) {
        g_assert_cmpint(setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size,
                                   sizeof(size)), ==, 0);
        g_assert_cmpint(setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &size,
                                   sizeof(size)), ==, 0);
        if (nonblocking) {
            g_assert_cmpint(fcntl(sv[i], F_SETFL, O_NONBLOCK), ==, 0);
        }
    }
}

static void poll_until(bool *flag)
{
    AioContext *ctx = qemu_get_aio_context();
    int i;

    for (i = 0; i < MAX_ITERATIONS && !qatomic_read(flag); i++) {
        aio_poll(ctx, true);
    }
    g_assert_true(qatomic_read(flag));
}

/* ---- yield_until_fd_readable ------------------------------------------- */

typedef struct FdReader {
    int fd;
    int wakeups;
    bool done;
} FdReader;

static void coroutine_fn fd_reader_co(void *opaque)
{
    FdReader *r = opaque;

    yield_until_fd_readable(r->fd);
    r->wakeups++;
    r->done = true;
}

static void test_yield_until_fd_readable(void)
{
    AioContext *ctx = qemu_get_aio_context();
    FdReader r = { 0 };
    int fds[2];
    char c = 'x';

    g_assert_cmpint(pipe(fds), ==, 0);
    r.fd = fds[0];
    qemu_coroutine_enter(qemu_coroutine_create(fd_reader_co, &r));
    g_assert_false(r.done);
    /* Nothing to read: nothing runs. */
    g_assert_false(aio_poll(ctx, false));
    g_assert_false(r.done);

    g_assert_cmpint(write(fds[1], &c, 1), ==, 1);
    poll_until(&r.done);
    g_assert_cmpint(r.wakeups, ==, 1);

    /* The handler went away with the wait: data left unread wakes nobody. */
    g_assert_false(aio_poll(ctx, false));
    g_assert_cmpint(r.wakeups, ==, 1);

    close(fds[0]);
    close(fds[1]);
}

static void test_yield_until_fd_hangup(void)
{
    FdReader r = { 0 };
    int fds[2];

    g_assert_cmpint(pipe(fds), ==, 0);
    r.fd = fds[0];
    qemu_coroutine_enter(qemu_coroutine_create(fd_reader_co, &r));
    g_assert_false(r.done);
    close(fds[1]);
    poll_until(&r.done);
    g_assert_cmpint(r.wakeups, ==, 1);
    close(fds[0]);
}

/* ---- Large transfers ---------------------------------------------------- */

typedef struct Transfer {
    int fd;
    struct iovec *iov;
    unsigned iov_cnt;
    size_t offset;
    size_t bytes;
    bool send;
    ssize_t ret;
    bool done;                  /* atomic */
    QemuSemaphore *done_sem;
} Transfer;

static void coroutine_fn transfer_co(void *opaque)
{
    Transfer *t = opaque;

    t->ret = qemu_co_sendv_recvv(t->fd, t->iov, t->iov_cnt, t->offset,
                                 t->bytes, t->send);
    qatomic_set(&t->done, true);
    if (t->done_sem) {
        qemu_sem_post(t->done_sem);
    }
}

static void fill_pattern(uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 7 + i / 251);
    }
}

/* Split @buf into @n pieces of unequal sizes. */
static void split_iov(struct iovec *iov, unsigned n, uint8_t *buf, size_t len)
{
    size_t pos = 0;
    unsigned i;

    for (i = 0; i < n; i++) {
        size_t piece = (i == n - 1) ? len - pos : len / n + 1000 * i - 777;

        iov[i].iov_base = buf + pos;
        iov[i].iov_len = piece;
        pos += piece;
    }
    g_assert_cmpuint(pos, ==, len);
}

static void test_sendv_recvv_large(void)
{
    g_autofree uint8_t *src = g_malloc(BIG);
    g_autofree uint8_t *dst = g_malloc0(BIG);
    struct iovec siov[3], riov[5];
    Transfer snd = { 0 }, rcv = { 0 };
    int sv[2];

    fill_pattern(src, BIG);
    split_iov(siov, 3, src, BIG);
    split_iov(riov, 5, dst, BIG);
    make_socketpair(sv, true);

    snd = (Transfer) {
        .fd = sv[0], .iov = siov, .iov_cnt = 3, .bytes = BIG, .send = true,
    };
    rcv = (Transfer) {
        .fd = sv[1], .iov = riov, .iov_cnt = 5, .bytes = BIG,
    };

    /* Nobody reads yet: the sender fills the socket and waits. */
    qemu_coroutine_enter(qemu_coroutine_create(transfer_co, &snd));
    g_assert_false(snd.done);
    qemu_coroutine_enter(qemu_coroutine_create(transfer_co, &rcv));
    g_assert_false(rcv.done);

    poll_until(&snd.done);
    poll_until(&rcv.done);
    g_assert_cmpint(snd.ret, ==, BIG);
    g_assert_cmpint(rcv.ret, ==, BIG);
    g_assert_true(memcmp(src, dst, BIG) == 0);

    /* Both handlers are gone. */
    g_assert_false(aio_poll(qemu_get_aio_context(), false));
    close(sv[0]);
    close(sv[1]);
}

static void send_start_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(transfer_co, opaque));
}

/* The sender's coroutine lives in another thread's context. */
static void test_sendv_recvv_threads(void)
{
    g_autofree uint8_t *src = g_malloc(BIG);
    g_autofree uint8_t *dst = g_malloc0(BIG);
    struct iovec siov[4], riov[2];
    Transfer snd, rcv;
    QemuSemaphore sent;
    CtxThread t;
    int sv[2];

    fill_pattern(src, BIG);
    split_iov(siov, 4, src, BIG);
    split_iov(riov, 2, dst, BIG);
    make_socketpair(sv, true);
    qemu_sem_init(&sent, 0);
    ctx_thread_start(&t, "co-io-sender");

    snd = (Transfer) {
        .fd = sv[0], .iov = siov, .iov_cnt = 4, .bytes = BIG, .send = true,
        .done_sem = &sent,
    };
    rcv = (Transfer) {
        .fd = sv[1], .iov = riov, .iov_cnt = 2, .bytes = BIG,
    };
    aio_bh_schedule_oneshot(t.ctx, send_start_bh, &snd);
    qemu_coroutine_enter(qemu_coroutine_create(transfer_co, &rcv));
    poll_until(&rcv.done);
    ctx_thread_sem_wait_or_abort(&sent, "sender thread");

    g_assert_cmpint(snd.ret, ==, BIG);
    g_assert_cmpint(rcv.ret, ==, BIG);
    g_assert_true(memcmp(src, dst, BIG) == 0);

    ctx_thread_stop(&t);
    qemu_sem_destroy(&sent);
    close(sv[0]);
    close(sv[1]);
}

/* ---- Offsets, EOF, errors --------------------------------------------- */

static void test_sendv_offset(void)
{
    char a[] = "abc", b[] = "defgh", c[] = "ij";
    struct iovec iov[3] = {
        { a, 3 }, { b, 5 }, { c, 2 },
    };
    char got[8] = { 0 };
    Transfer snd = { 0 }, rcv = { 0 };
    struct iovec riov = { got, 5 };
    int sv[2];

    make_socketpair(sv, true);
    /* Bytes 4..8 of "abc" "defgh" "ij": "efghi". */
    snd = (Transfer) {
        .fd = sv[0], .iov = iov, .iov_cnt = 3, .offset = 4, .bytes = 5,
        .send = true,
    };
    rcv = (Transfer) { .fd = sv[1], .iov = &riov, .iov_cnt = 1, .bytes = 5 };
    qemu_coroutine_enter(qemu_coroutine_create(transfer_co, &snd));
    g_assert_true(snd.done);
    g_assert_cmpint(snd.ret, ==, 5);
    qemu_coroutine_enter(qemu_coroutine_create(transfer_co, &rcv));
    g_assert_true(rcv.done);
    g_assert_cmpint(rcv.ret, ==, 5);
    g_assert_cmpstr(got, ==, "efghi");
    close(sv[0]);
    close(sv[1]);
}

typedef struct Simple {
    int fd;
    void *buf;
    size_t bytes;
    bool send;
    ssize_t ret;
    bool done;
} Simple;

static void coroutine_fn simple_co(void *opaque)
{
    Simple *s = opaque;

    if (s->send) {
        s->ret = qemu_co_send(s->fd, s->buf, s->bytes);
    } else {
        s->ret = qemu_co_recv(s->fd, s->buf, s->bytes);
    }
    s->done = true;
}

static ssize_t run_simple(Simple *s)
{
    s->done = false;
    qemu_coroutine_enter(qemu_coroutine_create(simple_co, s));
    poll_until(&s->done);
    return s->ret;
}

/*
 * A receive stops at end of file with what it got.  The sockets are left
 * blocking: the first receive, with nothing to read, must still yield
 * rather than block the thread.
 */
static void test_recv_eof(void)
{
    char out[100], in[200];
    Simple rcv = { 0 }, snd = { 0 };
    int sv[2];

    memset(out, 'q', sizeof(out));
    make_socketpair(sv, false);

    rcv = (Simple) { .fd = sv[1], .buf = in, .bytes = sizeof(in) };
    qemu_coroutine_enter(qemu_coroutine_create(simple_co, &rcv));
    g_assert_false(rcv.done);

    snd = (Simple) {
        .fd = sv[0], .buf = out, .bytes = sizeof(out), .send = true,
    };
    g_assert_cmpint(run_simple(&snd), ==, 100);
    g_assert_cmpint(shutdown(sv[0], SHUT_WR), ==, 0);
    poll_until(&rcv.done);
    g_assert_cmpint(rcv.ret, ==, 100);
    g_assert_true(memcmp(in, out, 100) == 0);

    /* At end of file: 0, at once. */
    g_assert_cmpint(run_simple(&rcv), ==, 0);
    close(sv[0]);
    close(sv[1]);
}

static void test_send_epipe(void)
{
    char out[10] = "0123456789";
    Simple snd;
    int sv[2];

    make_socketpair(sv, true);
    close(sv[1]);
    snd = (Simple) {
        .fd = sv[0], .buf = out, .bytes = sizeof(out), .send = true,
    };
    /* MSG_NOSIGNAL: an error code, no SIGPIPE. */
    g_assert_cmpint(run_simple(&snd), ==, -EPIPE);
    close(sv[0]);
}

static void test_recv_not_a_socket(void)
{
    char in[4];
    Simple rcv;
    int fds[2];

    g_assert_cmpint(pipe(fds), ==, 0);
    rcv = (Simple) { .fd = fds[0], .buf = in, .bytes = sizeof(in) };
    g_assert_cmpint(run_simple(&rcv), ==, -ENOTSOCK);
    close(fds[0]);
    close(fds[1]);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);

    g_test_add_func("/co-io/yield-until-fd-readable",
                    test_yield_until_fd_readable);
    g_test_add_func("/co-io/yield-until-fd-hangup",
                    test_yield_until_fd_hangup);
    g_test_add_func("/co-io/sendv-recvv/large", test_sendv_recvv_large);
    g_test_add_func("/co-io/sendv-recvv/threads", test_sendv_recvv_threads);
    g_test_add_func("/co-io/sendv-recvv/offset", test_sendv_offset);
    g_test_add_func("/co-io/recv/eof", test_recv_eof);
    g_test_add_func("/co-io/send/epipe", test_send_epipe);
    g_test_add_func("/co-io/recv/not-a-socket", test_recv_not_a_socket);

    return g_test_run();
}
