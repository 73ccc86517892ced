/*
 * echo-server.c: a TCP echo server, one coroutine per connection, with the
 * connections spread over several IOThreads.
 *
 *   echo-server [--port N] [--iothreads N]    serve until Ctrl-C
 *   echo-server --self-test [--iothreads N]   serve clients of our own, check
 *                                             every byte they get back, exit
 *
 * How the pieces fit, for readers new to QEMU's event loop:
 *
 * - The main thread runs the main loop (qemu_init_main_loop(), then
 *   main_loop_wait()).  Its AioContext, qemu_get_aio_context(), watches the
 *   listening socket with an fd handler: a callback that runs in the main
 *   thread whenever the socket is readable, that is, when clients wait to
 *   be accepted.
 * - An IOThread (qaio/iothread.h) is a thread that runs an AioContext of
 *   its own.  The accept handler gives each new connection to the next
 *   IOThread in turn (round-robin).
 * - Each connection is served by a coroutine: a function that can pause
 *   (yield) in the middle and be resumed later, so it reads like blocking
 *   code while the thread underneath serves every other connection.  The
 *   coroutine is created in the main thread and started in its IOThread
 *   with aio_co_enter(); from then on it only ever runs there.
 * - When the socket has nothing to read, yield_until_fd_readable() pauses
 *   the coroutine until it has; when the peer is slow to read,
 *   qemu_co_send() pauses it until the socket can take more.
 *
 * Threading: the listening socket, the round-robin counter and the
 * statistics belong to the main thread.  The list of open connections is
 * shared with the IOThreads and protected by EchoServer.lock.  Each
 * Connection is used by its coroutine only, except that the main thread may
 * shutdown() its socket (under the lock) to make the coroutine finish.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/aio-wait.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/queue.h"
#include "qemu/thread.h"
#include "qaio/iothread.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

typedef struct Connection Connection;

typedef struct EchoServer {
    int listen_fd;
    IOThread **iothreads;
    int n_iothreads;
    unsigned next_iothread;         /* main thread only */
    unsigned *served;               /* connections per IOThread; main only */
    unsigned accepted;              /* main thread only */

    QemuMutex lock;
    QLIST_HEAD(, Connection) conns; /* open connections; under lock */
} EchoServer;

struct Connection {
    EchoServer *server;
    int fd;
    QLIST_ENTRY(Connection) next;   /* under server->lock */
};

/* ---- The server --------------------------------------------------------- */

static void connection_close(Connection *conn)
{
    EchoServer *s = conn->server;

    /*
     * Leave the list before closing, so that echo_server_stop() never calls
     * shutdown() on a number the kernel may already have reused.
     */
    qemu_mutex_lock(&s->lock);
    QLIST_REMOVE(conn, next);
    qemu_mutex_unlock(&s->lock);
    close(conn->fd);
    g_free(conn);

    /* echo_server_stop() may be waiting for the list to empty. */
    aio_wait_kick();
}

/* One of these runs for every connection, in the IOThread it was given. */
static void coroutine_fn echo_co(void *opaque)
{
    Connection *conn = opaque;
    char buf[4096];

    for (;;) {
        ssize_t n = recv(conn->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /*
             * Nothing to read yet: let the IOThread serve the others.
             * (qemu_co_recv() would not do here: it waits until the whole
             * buffer is full, and an echo must answer whatever arrived.)
             */
            yield_until_fd_readable(conn->fd);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;              /* the client hung up, or an error */
        }
        /* Yields for as long as the client is slow to read its echo. */
        if (qemu_co_send(conn->fd, buf, n) != n) {
            break;
        }
    }
    connection_close(conn);
}

/* fd handler of the listening socket; runs in the main thread. */
static void echo_accept(void *opaque)
{
    EchoServer *s = opaque;
    int one = 1;

    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        Connection *conn;
        Coroutine *co;
        unsigned i;

        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            /*
             * EAGAIN: nobody else waits to be accepted.  Anything else
             * (EMFILE, say) is reported; the handler, being level-triggered,
             * runs again next iteration, so a real server would also stop
             * watching the socket for a while.
             */
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                warn_report("accept: %s", strerror(errno));
            }
            return;
        }

        /*
         * Echoes go out in pieces as they arrive; without this, Nagle's
         * algorithm holds each piece back until the previous one is
         * acknowledged, which the client's delayed ACK puts off by 40 ms.
         */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        i = s->next_iothread++ % s->n_iothreads;
        conn = g_new0(Connection, 1);
        conn->server = s;
        conn->fd = fd;
        qemu_mutex_lock(&s->lock);
        QLIST_INSERT_HEAD(&s->conns, conn, next);
        qemu_mutex_unlock(&s->lock);
        s->accepted++;
        s->served[i]++;

        /*
         * The IOThread's context is not ours, so aio_co_enter() schedules
         * the coroutine there instead of running it here.
         */
        co = qemu_coroutine_create(echo_co, conn);
        aio_co_enter(iothread_get_aio_context(s->iothreads[i]), co);
    }
}

static bool echo_server_has_connections(EchoServer *s)
{
    bool ret;

    qemu_mutex_lock(&s->lock);
    ret = !QLIST_EMPTY(&s->conns);
    qemu_mutex_unlock(&s->lock);
    return ret;
}

/* Listen on 127.0.0.1:@port (0 picks a free port) with @n_iothreads. */
static EchoServer *echo_server_start(int port, int n_iothreads, Error **errp)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET,
        .sin_port = htons(port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    int one = 1;
    EchoServer *s;
    int fd, i;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "socket");
        return NULL;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_setg_errno(errp, errno, "cannot listen on 127.0.0.1:%d", port);
        close(fd);
        return NULL;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        error_setg_errno(errp, errno, "listen");
        close(fd);
        return NULL;
    }

    s = g_new0(EchoServer, 1);
    s->listen_fd = fd;
    s->n_iothreads = n_iothreads;
    s->iothreads = g_new0(IOThread *, n_iothreads);
    s->served = g_new0(unsigned, n_iothreads);
    qemu_mutex_init(&s->lock);
    QLIST_INIT(&s->conns);
    for (i = 0; i < n_iothreads; i++) {
        g_autofree char *name = g_strdup_printf("echo%d", i);

        /* Starts the thread; it waits in its event loop for work. */
        s->iothreads[i] = iothread_create(name, &error_fatal);
    }

    aio_set_fd_handler(qemu_get_aio_context(), fd, echo_accept, NULL,
                       NULL, NULL, s);
    return s;
}

static int echo_server_port(EchoServer *s)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);

    if (getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) < 0) {
        return -1;
    }
    return ntohs(addr.sin_port);
}

/* Stop accepting, close every connection, join the IOThreads, free. */
static void echo_server_stop(EchoServer *s)
{
    Connection *conn;
    int i;

    aio_set_fd_handler(qemu_get_aio_context(), s->listen_fd, NULL, NULL,
                       NULL, NULL, NULL);
    close(s->listen_fd);

    /*
     * A shut-down socket reads as end of file, so each coroutine, wherever
     * it waits, wakes up, leaves its loop and closes the connection.
     */
    qemu_mutex_lock(&s->lock);
    QLIST_FOREACH(conn, &s->conns, next) {
        shutdown(conn->fd, SHUT_RDWR);
    }
    qemu_mutex_unlock(&s->lock);

    /*
     * Run the main loop until the last connection is gone; connection_close()
     * kicks us each time.  Only then may the IOThreads stop: a coroutine
     * whose thread is gone would never run again.
     */
    AIO_WAIT_WHILE(NULL, echo_server_has_connections(s));

    for (i = 0; i < s->n_iothreads; i++) {
        iothread_destroy(s->iothreads[i]);
    }
    qemu_mutex_destroy(&s->lock);
    g_free(s->iothreads);
    g_free(s->served);
    g_free(s);
}

/* ---- Serving until Ctrl-C ----------------------------------------------- */

static QEMUBH *quit_bh;

static void quit_bh_cb(void *opaque)
{
    *(bool *)opaque = true;
}

/* Scheduling a bottom half is async-signal-safe; most things are not. */
static void on_signal(int signo)
{
    qemu_bh_schedule(quit_bh);
}

static int serve(EchoServer *s)
{
    struct sigaction sa = { .sa_handler = on_signal };
    bool quit = false;

    quit_bh = qemu_bh_new(quit_bh_cb, &quit);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    printf("echo server on 127.0.0.1:%d with %d IOThreads; try "
           "`nc 127.0.0.1 %d`, Ctrl-C to stop\n",
           echo_server_port(s), s->n_iothreads, echo_server_port(s));
    fflush(stdout);             /* in case it goes to a pipe or a log */
    while (!quit) {
        main_loop_wait(false);
    }

    printf("\nstopping after %u connections\n", s->accepted);
    echo_server_stop(s);
    qemu_bh_delete(quit_bh);
    return 0;
}

/* ---- Self-test: clients on plain blocking sockets ----------------------- */

#define TEST_CLIENTS 16
#define TEST_MESSAGES 200

typedef struct Client {
    QemuThread thread;
    int id;
    int port;
    bool ok;
    size_t bytes;
} Client;

static unsigned clients_running;    /* atomic */

/* Message @i of client @id: its length varies from 1 byte to 12 KiB. */
static size_t make_message(char *buf, int id, int i)
{
    size_t len = 1 + (size_t)(id * 7919 + i * 104729) % (12 * 1024);
    size_t j;

    for (j = 0; j < len; j++) {
        buf[j] = (char)(id + i + j * 31);
    }
    return len;
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= n;
    }
    return true;
}

static bool recv_all(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= n;
    }
    return true;
}

static void *client_thread(void *opaque)
{
    Client *c = opaque;
    struct sockaddr_in addr = {
        .sin_family = AF_INET,
        .sin_port = htons(c->port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    g_autofree char *msg = g_malloc(12 * 1024);
    g_autofree char *echo = g_malloc(12 * 1024);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int i;

    c->ok = fd >= 0 &&
            connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    for (i = 0; c->ok && i < TEST_MESSAGES; i++) {
        size_t len = make_message(msg, c->id, i);

        c->ok = send_all(fd, msg, len) && recv_all(fd, echo, len) &&
                memcmp(msg, echo, len) == 0;
        c->bytes += len;
    }
    if (!c->ok) {
        error_report("client %d: message %d was not echoed intact", c->id,
                     i - 1);
    }
    if (fd >= 0) {
        close(fd);
    }

    qatomic_dec(&clients_running);
    aio_wait_kick();            /* the main thread waits for the count */
    return NULL;
}

static int self_test(EchoServer *s)
{
    Client clients[TEST_CLIENTS] = { 0 };
    size_t bytes = 0;
    bool ok = true;
    int i;

    qatomic_set(&clients_running, TEST_CLIENTS);
    for (i = 0; i < TEST_CLIENTS; i++) {
        clients[i].id = i;
        clients[i].port = echo_server_port(s);
        qemu_thread_create(&clients[i].thread, "echo-client", client_thread,
                           &clients[i], QEMU_THREAD_JOINABLE);
    }

    /* Serve (the accept handler runs in here) until every client is done. */
    AIO_WAIT_WHILE(NULL, qatomic_read(&clients_running) > 0);

    for (i = 0; i < TEST_CLIENTS; i++) {
        qemu_thread_join(&clients[i].thread);
        ok = ok && clients[i].ok;
        bytes += clients[i].bytes;
    }
    if (s->accepted != TEST_CLIENTS) {
        error_report("accepted %u connections, expected %d", s->accepted,
                     TEST_CLIENTS);
        ok = false;
    }
    /* Round-robin: every IOThread got its share, give or take one. */
    for (i = 0; i < s->n_iothreads; i++) {
        unsigned fair = TEST_CLIENTS / s->n_iothreads;

        printf("IOThread %s served %u connections\n",
               iothread_get_name(s->iothreads[i]), s->served[i]);
        if (s->served[i] < fair || s->served[i] > fair + 1) {
            error_report("IOThread %d served %u connections, expected %u%s",
                         i, s->served[i], fair,
                         TEST_CLIENTS % s->n_iothreads ? " or one more" : "");
            ok = false;
        }
    }

    echo_server_stop(s);
    if (!ok) {
        return 1;
    }
    printf("self-test passed: %d clients x %d messages, %zu bytes echoed "
           "intact\n", TEST_CLIENTS, TEST_MESSAGES, bytes);
    return 0;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int port = 7777;
    int n_iothreads = 2;
    gboolean self_test_mode = false;
    GOptionEntry entries[] = {
        { "port", 'p', 0, G_OPTION_ARG_INT, &port,
          "TCP port on 127.0.0.1 (default 7777)", "N" },
        { "iothreads", 't', 0, G_OPTION_ARG_INT, &n_iothreads,
          "IOThreads serving the connections (default 2)", "N" },
        { "self-test", 0, 0, G_OPTION_ARG_NONE, &self_test_mode,
          "run built-in clients against an ephemeral port, check, exit",
          NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) opts = g_option_context_new(
        "- TCP echo server on qaio coroutines and IOThreads");
    g_autoptr(GError) gerr = NULL;
    Error *err = NULL;
    EchoServer *s;

    g_option_context_add_main_entries(opts, entries, NULL);
    if (!g_option_context_parse(opts, &argc, &argv, &gerr) || argc != 1 ||
        n_iothreads < 1 || n_iothreads > 64 || port < 0 || port > 65535) {
        error_report("%s", gerr ? gerr->message : "bad arguments (see --help)");
        return 2;
    }

    qemu_init_main_loop(&error_fatal);
    s = echo_server_start(self_test_mode ? 0 : port, n_iothreads, &err);
    if (!s) {
        error_report_err(err);
        return 1;
    }
    return self_test_mode ? self_test(s) : serve(s);
}
