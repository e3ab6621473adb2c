/*
 * Non-blocking sessions and full duplex: virPKISessionStartClient/StartServer, Handshake,
 * Wants and VIR_PKI_ERR_AGAIN from Read/Write/Close, driven by a poll() loop over a
 * socketpair and over TCP against a blocking server thread; and one session read and written
 * by two threads at once. The watchdog turns a hang into a failure.
 */
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define BIG (8u << 20)

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static virPKIContextPtr server_context(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_CERT,
                                          fixture("server.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_KEY,
                                          fixture("server-key.pem")));
    return ctx;
}

static virPKIContextPtr client_context(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CLIENT_CERT,
                                          fixture("client.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CLIENT_KEY,
                                          fixture("client-key.pem")));
    return ctx;
}

static int accept_once_counting(const char *h, const char *c, int t, unsigned int f, void *o)
{
    (void)h, (void)c, (void)t, (void)f;
    ++*(int *)o;
    return VIR_CONNECT_CERT_ACCEPT_ONCE;
}

static void set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        die("fcntl");
}

/* A connected pair: a socketpair, or loopback TCP. */
static void connected_pair(int tcp, int fds[2])
{
    if (!tcp) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
            die("socketpair");
        return;
    }
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) != 0)
        die("listen");
    fds[1] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[1] < 0 || connect(fds[1], (struct sockaddr *)&a, sizeof a) != 0)
        die("connect");
    fds[0] = accept(l, NULL, NULL);
    if (fds[0] < 0)
        die("accept");
    close(l);
}

/* Waits (up to 10 s) until the fd is ready for what the session wants. */
static void wait_for(virPKISessionPtr s, int fd)
{
    int w = virPKISessionWants(s);
    CHECK(w > 0);
    struct pollfd p = {.fd = fd, .events = 0};
    if (w & VIR_PKI_SESSION_WANT_READ)
        p.events |= POLLIN;
    if (w & VIR_PKI_SESSION_WANT_WRITE)
        p.events |= POLLOUT;
    CHECK(poll(&p, 1, 10000) == 1);
}

/* Runs the handshake with a poll() loop: 0 or the error code; *agains counts AGAIN. */
static int poll_handshake(virPKISessionPtr s, int fd, int *agains)
{
    for (;;) {
        if (virPKISessionHandshake(s) == 0)
            return 0;
        int code = virPKIGetLastErrorCode();
        if (code != VIR_PKI_ERR_AGAIN)
            return code;
        ++*agains;
        wait_for(s, fd);
    }
}

/* The blocking server: handshake, read "hello", answer "world", then `tail` bytes, close. */
struct server {
    virPKIContextPtr ctx;
    int fd;
    unsigned flags;
    size_t tail;
    int notify;  /* send close_notify at the end */
    int hangup;  /* close (close_notify) right after the handshake */
    int ok;
    char got[8];
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    /* Late, so that the client's first handshake step surely finds nothing to read. */
    sleep_ms(50);
    virPKISessionPtr s = virPKISessionNewServer(sv->ctx, sv->fd, sv->flags);
    if (!s)
        return NULL;
    if (sv->hangup) {
        sv->ok = virPKISessionClose(s) == 0;
        virPKISessionFree(s);
        return NULL;
    }
    size_t got = 0;
    while (got < 5) {
        long long n = virPKISessionRead(s, sv->got + got, 5 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    int ok = got == 5 && virPKISessionWrite(s, "world", 5) == 5;
    if (sv->tail) {
        unsigned char *data = malloc(sv->tail);
        for (size_t i = 0; i < sv->tail; i++)
            data[i] = (unsigned char)(i % 251);
        ok = ok && virPKISessionWrite(s, data, sv->tail) == (long long)sv->tail;
        free(data);
    }
    if (sv->notify)
        ok = ok && virPKISessionClose(s) == 0;
    sv->ok = ok;
    virPKISessionFree(s);
    return NULL;
}

/* Reads exactly len bytes with a poll() loop; 0 or the error code. */
static int poll_read(virPKISessionPtr s, int fd, unsigned char *buf, size_t len, int *agains)
{
    size_t got = 0;
    while (got < len) {
        long long n = virPKISessionRead(s, buf + got, len - got);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            return -1;
        } else if (virPKIGetLastErrorCode() == VIR_PKI_ERR_AGAIN) {
            ++*agains;
            wait_for(s, fd);
        } else {
            return virPKIGetLastErrorCode();
        }
    }
    return 0;
}

/* A poll() client against the blocking server: handshake with AGAIN, the validator once,
   data both ways, close_notify. */
static void test_poll_client(int tcp, unsigned flags)
{
    int fds[2], calls = 0, agains = 0;
    connected_pair(tcp, fds);
    struct server sv = {.ctx = server_context(), .fd = fds[0], .flags = flags,
                        .tail = 1u << 20, .notify = 1};
    virPKIContextPtr cctx = client_context();
    CHECK_OK(virPKIContextSetCertificateValidator(cctx, accept_once_counting, &calls, NULL));
    set_nonblocking(fds[1]);
    pthread_t t;
    if (pthread_create(&t, NULL, serve, &sv) != 0)
        die("pthread_create");

    virPKISessionPtr s = virPKISessionStartClient(cctx, fds[1], "localhost", 16514, flags);
    CHECK(s != NULL);
    /* No I/O yet: the ClientHello waits to be written. */
    CHECK_INT(virPKISessionWants(s), VIR_PKI_SESSION_WANT_WRITE);
    CHECK_INT(calls, 0);
    /* Not established: read and write refuse. */
    char c;
    CHECK_FAILS(virPKISessionRead(s, &c, 1), VIR_PKI_ERR_INVALID_ARG);
    CHECK_INT(poll_handshake(s, fds[1], &agains), 0);
    CHECK(agains > 0);
    CHECK_INT(calls, 1);
    CHECK_INT(virPKISessionHandshake(s), 0);
    CHECK_INT(calls, 1);

    long long n;
    while ((n = virPKISessionWrite(s, "hello", 5)) < 0 &&
           virPKIGetLastErrorCode() == VIR_PKI_ERR_AGAIN)
        wait_for(s, fds[1]);
    CHECK_INT(n, 5);
    unsigned char word[5];
    int ragains = 0;
    CHECK_INT(poll_read(s, fds[1], word, 5, &ragains), 0);
    CHECK(memcmp(word, "world", 5) == 0);
    unsigned char *tail = malloc(sv.tail);
    CHECK_INT(poll_read(s, fds[1], tail, sv.tail, &ragains), 0);
    size_t bad = 0;
    for (size_t i = 0; i < sv.tail; i++)
        bad += tail[i] != (unsigned char)(i % 251);
    CHECK_INT(bad, 0);
    free(tail);
    /* Then close_notify: the end of the stream. */
    for (;;) {
        n = virPKISessionRead(s, &c, 1);
        if (n >= 0 || virPKIGetLastErrorCode() != VIR_PKI_ERR_AGAIN)
            break;
        wait_for(s, fds[1]);
    }
    CHECK_INT(n, 0);
    while (virPKISessionClose(s) != 0) {
        CHECK_ERROR(VIR_PKI_ERR_AGAIN);
        wait_for(s, fds[1]);
    }
    pthread_join(t, NULL);
    CHECK(sv.ok);
    CHECK(memcmp(sv.got, "hello", 5) == 0);
    virPKISessionFree(s);
    virPKIContextFree(cctx);
    virPKIContextFree(sv.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* The server sends no 0x01 byte: a client that waits for it is refused, after AGAINs. */
static void test_no_confirmation_byte(void)
{
    int fds[2], agains = 0;
    connected_pair(0, fds);
    struct server sv = {.ctx = server_context(), .fd = fds[0], .flags = 0, .hangup = 1};
    virPKIContextPtr cctx = client_context();
    set_nonblocking(fds[1]);
    pthread_t t;
    if (pthread_create(&t, NULL, serve, &sv) != 0)
        die("pthread_create");
    virPKISessionPtr s = virPKISessionStartClient(cctx, fds[1], "localhost", 0,
                                                  VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    CHECK(s != NULL);
    CHECK_INT(poll_handshake(s, fds[1], &agains), VIR_PKI_ERR_TLS);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "0x01");
    /* The failure stays. */
    CHECK_FAILS(virPKISessionHandshake(s), VIR_PKI_ERR_TLS);
    CHECK(agains > 0);
    virPKISessionFree(s);
    pthread_join(t, NULL);
    virPKIContextFree(cctx);
    virPKIContextFree(sv.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* EOF without close_notify on a non-blocking read: VIR_PKI_ERR_TLS, not 0. */
static void test_eof_without_close_notify(void)
{
    int fds[2], agains = 0;
    connected_pair(0, fds);
    struct server sv = {.ctx = server_context(), .fd = fds[0], .flags = 0, .notify = 0};
    virPKIContextPtr cctx = client_context();
    set_nonblocking(fds[1]);
    pthread_t t;
    if (pthread_create(&t, NULL, serve, &sv) != 0)
        die("pthread_create");
    virPKISessionPtr s = virPKISessionStartClient(cctx, fds[1], "localhost", 0, 0);
    CHECK_INT(poll_handshake(s, fds[1], &agains), 0);
    while (virPKISessionWrite(s, "hello", 5) < 0 && virPKIGetLastErrorCode() == VIR_PKI_ERR_AGAIN)
        wait_for(s, fds[1]);
    unsigned char word[5];
    CHECK_INT(poll_read(s, fds[1], word, 5, &agains), 0);
    pthread_join(t, NULL);
    shutdown(fds[0], SHUT_RDWR);
    char c;
    long long n;
    while ((n = virPKISessionRead(s, &c, 1)) < 0 &&
           virPKIGetLastErrorCode() == VIR_PKI_ERR_AGAIN)
        wait_for(s, fds[1]);
    CHECK_INT(n, -1);
    CHECK_ERROR(VIR_PKI_ERR_TLS);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "close_notify");
    virPKISessionFree(s);
    virPKIContextFree(cctx);
    virPKIContextFree(sv.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* The peer reads the ClientHello and vanishes: an error, not AGAIN forever. */
static void test_peer_vanishes_mid_handshake(int tcp)
{
    int fds[2], agains = 0;
    connected_pair(tcp, fds);
    virPKIContextPtr cctx = client_context();
    set_nonblocking(fds[1]);
    virPKISessionPtr s = virPKISessionStartClient(cctx, fds[1], "localhost", 0, 0);
    CHECK_FAILS(virPKISessionHandshake(s), VIR_PKI_ERR_AGAIN);
    CHECK_INT(virPKISessionWants(s), VIR_PKI_SESSION_WANT_READ);
    char hello[256];
    CHECK(read(fds[0], hello, sizeof hello) > 0);
    close(fds[0]);
    CHECK_INT(poll_handshake(s, fds[1], &agains), VIR_PKI_ERR_TLS);
    CHECK_FAILS(virPKISessionHandshake(s), VIR_PKI_ERR_TLS);
    CHECK_INT(virPKISessionWants(s), 0);
    virPKISessionFree(s);
    virPKIContextFree(cctx);
    close(fds[1]);
}

/* A blocking reader of `len` bytes that starts late, so that the writer fills the socket. */
struct sink {
    virPKIContextPtr ctx;
    int fd;
    size_t len;
    size_t got;
    unsigned long sum;
    int eof;  /* read on to the end: 1 when it was close_notify */
};

static void *late_sink(void *arg)
{
    struct sink *k = arg;
    virPKISessionPtr s = virPKISessionNewServer(k->ctx, k->fd, 0);
    if (!s)
        return NULL;
    sleep_ms(200);
    unsigned char buf[65536];
    while (k->got < k->len) {
        long long n = virPKISessionRead(s, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long long i = 0; i < n; i++)
            k->sum += (unsigned long)buf[i] * (unsigned long)((k->got + (size_t)i) % 7 + 1);
        k->got += (size_t)n;
    }
    if (k->eof)
        k->eof = virPKISessionRead(s, buf, sizeof buf) == 0;
    virPKISessionFree(s);
    return NULL;
}

/* The write contract: a short count is what was taken, AGAIN took nothing, len 0 flushes;
   the receiver gets every byte once, in order. */
static void test_write_contract(void)
{
    int fds[2], agains = 0;
    connected_pair(0, fds);
    size_t len = 4u << 20;
    struct sink k = {.ctx = server_context(), .fd = fds[0], .len = len};
    virPKIContextPtr cctx = client_context();
    set_nonblocking(fds[1]);
    pthread_t t;
    if (pthread_create(&t, NULL, late_sink, &k) != 0)
        die("pthread_create");
    virPKISessionPtr s = virPKISessionStartClient(cctx, fds[1], "localhost", 0, 0);
    CHECK_INT(poll_handshake(s, fds[1], &agains), 0);
    unsigned char *data = malloc(len);
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++) {
        data[i] = (unsigned char)(i * 31 % 256);
        sum += (unsigned long)data[i] * (unsigned long)(i % 7 + 1);
    }
    size_t sent = 0;
    int shorts = 0, wagains = 0;
    while (sent < len) {
        long long n = virPKISessionWrite(s, data + sent, len - sent);
        if (n > 0) {
            CHECK(sent + (size_t)n <= len);
            shorts += (size_t)n < len - sent;
            sent += (size_t)n;
        } else {
            CHECK_INT(n, -1);
            CHECK_ERROR(VIR_PKI_ERR_AGAIN);
            CHECK(virPKISessionWants(s) & VIR_PKI_SESSION_WANT_WRITE);
            wagains++;
            wait_for(s, fds[1]);
        }
    }
    /* Push what the last write took but could not send yet. */
    long long n;
    while ((n = virPKISessionWrite(s, NULL, 0)) != 0) {
        CHECK_ERROR(VIR_PKI_ERR_AGAIN);
        wait_for(s, fds[1]);
    }
    CHECK(shorts > 0);
    CHECK(wagains > 0);
    pthread_join(t, NULL);
    CHECK(k.got == len);
    CHECK(k.sum == sum);
    free(data);
    virPKISessionFree(s);
    virPKIContextFree(cctx);
    virPKIContextFree(k.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* Close on a full socket: AGAIN until close_notify is out, after every byte taken before. */
static void test_close_again(void)
{
    int fds[2], agains = 0;
    connected_pair(0, fds);
    struct sink k = {.ctx = server_context(), .fd = fds[0], .len = (size_t)-1, .eof = 1};
    virPKIContextPtr cctx = client_context();
    set_nonblocking(fds[1]);
    pthread_t t;
    if (pthread_create(&t, NULL, late_sink, &k) != 0)
        die("pthread_create");
    virPKISessionPtr s = virPKISessionStartClient(cctx, fds[1], "localhost", 0, 0);
    CHECK_INT(poll_handshake(s, fds[1], &agains), 0);
    static unsigned char chunk[65536];
    unsigned long sum = 0;
    size_t sent = 0;
    for (;;) {
        long long n = virPKISessionWrite(s, chunk, sizeof chunk);
        if (n < 0)
            break;
        for (long long i = 0; i < n; i++)
            sum += chunk[i] * (unsigned long)((sent + (size_t)i) % 7 + 1);
        sent += (size_t)n;
    }
    CHECK_ERROR(VIR_PKI_ERR_AGAIN);
    CHECK(sent > 0);
    /* The sink has not started reading: close_notify cannot go out yet. */
    CHECK_FAILS(virPKISessionClose(s), VIR_PKI_ERR_AGAIN);
    CHECK(virPKISessionWants(s) & VIR_PKI_SESSION_WANT_WRITE);
    /* A write meanwhile takes nothing. */
    CHECK_FAILS(virPKISessionWrite(s, chunk, 1), VIR_PKI_ERR_AGAIN);
    while (virPKISessionClose(s) != 0) {
        CHECK_ERROR(VIR_PKI_ERR_AGAIN);
        wait_for(s, fds[1]);
    }
    CHECK_INT(virPKISessionWants(s), 0);
    /* Once closed, a write is refused. */
    CHECK_FAILS(virPKISessionWrite(s, chunk, 1), VIR_PKI_ERR_TLS);
    pthread_join(t, NULL);
    CHECK(k.got == sent);
    CHECK(k.sum == sum);
    CHECK_INT(k.eof, 1);
    virPKISessionFree(s);
    virPKIContextFree(cctx);
    virPKIContextFree(k.ctx);
    close(fds[0]);
    close(fds[1]);
}

static void test_arguments(void)
{
    virPKIContextPtr ctx = client_context();
    int fds[2];
    connected_pair(0, fds);
    CHECK(virPKISessionStartClient(NULL, fds[1], "localhost", 0, 0) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK(virPKISessionStartClient(ctx, -1, "localhost", 0, 0) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK(virPKISessionStartClient(ctx, fds[1], NULL, 0, 0) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK(virPKISessionStartClient(ctx, fds[1], "localhost", 70000, 0) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK(virPKISessionStartClient(ctx, fds[1], "localhost", 0, 2) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK(virPKISessionStartServer(NULL, fds[0], 0) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK(virPKISessionStartServer(ctx, -1, 0) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK(virPKISessionStartServer(ctx, fds[0], 0x80) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKISessionHandshake(NULL), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKISessionWants(NULL), VIR_PKI_ERR_INVALID_ARG);
    /* The blocking constructor on a non-blocking fd: refused, with the way out named. */
    set_nonblocking(fds[1]);
    CHECK(virPKISessionNewClient(ctx, fds[1], "localhost", 0, 0) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "virPKISessionStartClient");
    /* A started session: write before the handshake is refused; Free without a handshake. */
    virPKISessionPtr s = virPKISessionStartClient(ctx, fds[1], "localhost", 0, 0);
    CHECK(s != NULL);
    CHECK_FAILS(virPKISessionWrite(s, "x", 1), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKISessionRead(s, NULL, 1), VIR_PKI_ERR_INVALID_ARG);
    /* A length no buffer can have (over PTRDIFF_MAX): refused, not a slice built on it. */
    char small[4];
    CHECK_FAILS((int)virPKISessionRead(s, small, SIZE_MAX), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS((int)virPKISessionWrite(s, small, SIZE_MAX), VIR_PKI_ERR_INVALID_ARG);
    virPKISessionFree(s);
    CHECK_INT(VIR_PKI_ERR_AGAIN, 23);
    CHECK_INT(VIR_PKI_SESSION_WANT_READ, 1);
    CHECK_INT(VIR_PKI_SESSION_WANT_WRITE, 2);
    virPKIContextFree(ctx);
    close(fds[0]);
    close(fds[1]);
}

/* Full duplex: one thread writes BIG bytes while another reads BIG, on each end, blocking. */
struct half {
    virPKISessionPtr s;
    unsigned long sum;
    size_t done;
};

static void *duplex_writer(void *arg)
{
    struct half *h = arg;
    unsigned char *data = malloc(BIG);
    for (size_t i = 0; i < BIG; i++) {
        data[i] = (unsigned char)(i % 253);
        h->sum += data[i];
    }
    long long n = virPKISessionWrite(h->s, data, BIG);
    h->done = n == (long long)BIG ? BIG : 0;
    free(data);
    return NULL;
}

static void *duplex_reader(void *arg)
{
    struct half *h = arg;
    unsigned char buf[65536];
    while (h->done < BIG) {
        long long n = virPKISessionRead(h->s, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long long i = 0; i < n; i++)
            h->sum += buf[i];
        h->done += (size_t)n;
    }
    return NULL;
}

struct accept_arg {
    virPKIContextPtr ctx;
    int fd;
    virPKISessionPtr s;
};

static void *accept_blocking(void *arg)
{
    struct accept_arg *a = arg;
    a->s = virPKISessionNewServer(a->ctx, a->fd, VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    return NULL;
}

static void test_full_duplex(int tcp)
{
    int fds[2];
    connected_pair(tcp, fds);
    struct accept_arg a = {.ctx = server_context(), .fd = fds[0]};
    virPKIContextPtr cctx = client_context();
    pthread_t t;
    if (pthread_create(&t, NULL, accept_blocking, &a) != 0)
        die("pthread_create");
    virPKISessionPtr c = virPKISessionNewClient(cctx, fds[1], "localhost", 0,
                                                VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    pthread_join(t, NULL);
    CHECK(c != NULL && a.s != NULL);
    if (!c || !a.s)
        return;
    struct half h[4] = {{.s = c}, {.s = c}, {.s = a.s}, {.s = a.s}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        if (pthread_create(&th[i], NULL, i % 2 ? duplex_reader : duplex_writer, &h[i]) != 0)
            die("pthread_create");
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        CHECK(h[i].done == BIG);
    CHECK(h[0].sum == h[3].sum); /* client -> server */
    CHECK(h[2].sum == h[1].sum); /* server -> client */
    virPKISessionFree(c);
    virPKISessionFree(a.s);
    virPKIContextFree(cctx);
    virPKIContextFree(a.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* A close from a third thread wakes a reader blocked in Read: VIR_PKI_ERR_TLS. */
static void test_close_wakes_reader(void)
{
    int fds[2];
    connected_pair(0, fds);
    struct accept_arg a = {.ctx = server_context(), .fd = fds[0]};
    virPKIContextPtr cctx = client_context();
    pthread_t t;
    if (pthread_create(&t, NULL, accept_blocking, &a) != 0)
        die("pthread_create");
    virPKISessionPtr c = virPKISessionNewClient(cctx, fds[1], "localhost", 0,
                                                VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    pthread_join(t, NULL);
    CHECK(c != NULL && a.s != NULL);
    struct half h = {.s = c};
    if (pthread_create(&t, NULL, duplex_reader, &h) != 0)
        die("pthread_create");
    sleep_ms(200);
    CHECK_INT(virPKISessionClose(c), 0);
    pthread_join(t, NULL);
    CHECK_INT(h.done, 0);
    /* The server got close_notify before the shutdown. */
    char byte;
    CHECK_INT(virPKISessionRead(a.s, &byte, 1), 0);
    virPKISessionFree(c);
    virPKISessionFree(a.s);
    virPKIContextFree(cctx);
    virPKIContextFree(a.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* xorshift64: reproducible sizes. */
static unsigned long long next_rand(unsigned long long *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

#define MIXED (4u << 20)

/* Writes MIXED numbered bytes in pieces of mixed sizes (each one TLS record): tiny ones and
   full ones, so that one socket read holds the end of a large record and many small ones. */
static void *mixed_writer(void *arg)
{
    struct accept_arg *a = arg;
    a->s = virPKISessionNewServer(a->ctx, a->fd, 0);
    if (!a->s)
        return NULL;
    unsigned char *data = malloc(MIXED);
    for (size_t i = 0; i < MIXED; i++)
        data[i] = (unsigned char)(i % 241);
    unsigned long long rng = 1;
    size_t sent = 0;
    while (sent < MIXED) {
        unsigned long long r = next_rand(&rng);
        size_t size = r % 3 == 0 ? 1 + (r >> 8) % 40
                    : r % 3 == 1 ? 16384 - (r >> 8) % 64 : 1 + (r >> 8) % 16384;
        if (size > MIXED - sent)
            size = MIXED - sent;
        long long n = virPKISessionWrite(a->s, data + sent, size);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    free(data);
    return NULL;
}

/* A blocking reader of records of mixed sizes gets every byte: many small records behind a
   large one in one socket read failed the read with "received plaintext buffer full". */
static void test_records_of_mixed_sizes(void)
{
    int fds[2];
    connected_pair(0, fds);
    struct accept_arg a = {.ctx = server_context(), .fd = fds[0]};
    virPKIContextPtr cctx = client_context();
    pthread_t t;
    if (pthread_create(&t, NULL, mixed_writer, &a) != 0)
        die("pthread_create");
    virPKISessionPtr c = virPKISessionNewClient(cctx, fds[1], "localhost", 0, 0);
    CHECK(c != NULL);
    unsigned char *buf = malloc(65536);
    size_t got = 0, bad = 0;
    while (c && got < MIXED) {
        long long n = virPKISessionRead(c, buf, 65536);
        if (n <= 0) {
            fprintf(stderr, "read after %zu bytes: %s\n", got, virPKIGetLastErrorMessage());
            break;
        }
        for (long long i = 0; i < n; i++)
            bad += buf[i] != (unsigned char)((got + (size_t)i) % 241);
        got += (size_t)n;
    }
    CHECK(got == MIXED);
    CHECK_INT(bad, 0);
    free(buf);
    if (c)
        virPKISessionClose(c);
    pthread_join(t, NULL);
    virPKISessionFree(c);
    virPKISessionFree(a.s);
    virPKIContextFree(cctx);
    virPKIContextFree(a.ctx);
    close(fds[0]);
    close(fds[1]);
}

struct blocked_handshake {
    virPKISessionPtr s;
    int rc;
    int code;
};

static void *handshake_thread(void *arg)
{
    struct blocked_handshake *b = arg;
    b->rc = virPKISessionHandshake(b->s);
    b->code = virPKIGetLastErrorCode();
    return NULL;
}

/* A close from another thread wakes a handshake blocked on a silent peer: VIR_PKI_ERR_TLS. */
static void test_close_wakes_handshake(void)
{
    int fds[2];
    connected_pair(0, fds);
    virPKIContextPtr cctx = client_context();
    struct blocked_handshake b = {
        .s = virPKISessionStartClient(cctx, fds[1], "localhost", 0, 0), .rc = 1};
    CHECK(b.s != NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, handshake_thread, &b) != 0)
        die("pthread_create");
    sleep_ms(200);
    virPKISessionClose(b.s);
    /* The watchdog fails the test if the handshake stays blocked. */
    pthread_join(t, NULL);
    CHECK_INT(b.rc, -1);
    CHECK_INT(b.code, VIR_PKI_ERR_TLS);
    virPKISessionFree(b.s);
    virPKIContextFree(cctx);
    close(fds[0]);
    close(fds[1]);
}

static void *close_then_junk(void *arg)
{
    struct accept_arg *a = arg;
    a->s = virPKISessionNewServer(a->ctx, a->fd, 0);
    if (!a->s)
        return NULL;
    if (virPKISessionWrite(a->s, "last", 4) != 4 || virPKISessionClose(a->s) != 0)
        return NULL;
    /* Bytes behind close_notify, as anyone on the path can append them: more than rustls
       takes in one go, so that it is asked again after close_notify. */
    static unsigned char junk[10000];
    memset(junk, 0x17, sizeof junk);
    if (write(a->fd, junk, sizeof junk) != (ssize_t)sizeof junk)
        die("write");
    return NULL;
}

/* Bytes after close_notify: Read returns the data, then 0 (it spun forever, holding the
   session's lock). */
static void test_bytes_after_close_notify(void)
{
    int fds[2];
    connected_pair(0, fds);
    struct accept_arg a = {.ctx = server_context(), .fd = fds[0]};
    virPKIContextPtr cctx = client_context();
    pthread_t t;
    if (pthread_create(&t, NULL, close_then_junk, &a) != 0)
        die("pthread_create");
    virPKISessionPtr c = virPKISessionNewClient(cctx, fds[1], "localhost", 0, 0);
    CHECK(c != NULL);
    pthread_join(t, NULL);
    char buf[16];
    CHECK_INT(virPKISessionRead(c, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "last", 4) == 0);
    CHECK_INT(virPKISessionRead(c, buf, sizeof buf), 0);
    virPKISessionFree(c);
    virPKISessionFree(a.s);
    virPKIContextFree(cctx);
    virPKIContextFree(a.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* ---- A validator that calls back into the session it verifies (it ran with the TLS lock
   held: each of these calls deadlocked). Every wait is bounded: a deadlock fails the test. */

/* Waits up to 20 s for *done, then joins; a thread still stuck is a deadlock: fail now. */
static void join_within(pthread_t t, atomic_int *done, const char *what)
{
    for (int i = 0; i < 2000 && !atomic_load(done); i++)
        sleep_ms(10);
    if (!atomic_load(done)) {
        fprintf(stderr, "%s:%d: FAILED: deadlock: %s never returned\n", __FILE__, __LINE__, what);
        printf("%d passed, %d failed\n", atomic_load(&check_passed),
               atomic_load(&check_failed) + 1);
        exit(EXIT_FAILURE);
    }
    pthread_join(t, NULL);
}

enum reentry_call { RE_PEER_DN, RE_READ, RE_READ0, RE_WRITE, RE_WANTS, RE_HANDSHAKE, RE_CLOSE,
                    RE_WAIT };

struct reentry {
    virPKISessionPtr s;
    enum reentry_call call;
    int calls;
    long long rc;   /* what the call returned (PeerDN: 0, or -1 for NULL) */
    int code;       /* its error code */
    atomic_int entered, go;
};

static int reentrant_validator(const char *h, const char *c, int t, unsigned int f, void *o)
{
    (void)h, (void)c, (void)t, (void)f;
    struct reentry *r = o;
    r->calls++;
    virPKIResetLastError();
    char buf[8];
    switch (r->call) {
    case RE_PEER_DN: {
        char *dn = virPKISessionPeerDN(r->s);
        r->rc = dn ? 0 : -1;
        virPKIFree(dn);
        break;
    }
    case RE_READ:
        r->rc = virPKISessionRead(r->s, buf, sizeof buf);
        break;
    case RE_READ0:
        r->rc = virPKISessionRead(r->s, buf, 0);
        break;
    case RE_WRITE:
        r->rc = virPKISessionWrite(r->s, "leak", 4);
        break;
    case RE_WANTS:
        r->rc = virPKISessionWants(r->s);
        break;
    case RE_HANDSHAKE:
        r->rc = virPKISessionHandshake(r->s);
        break;
    case RE_CLOSE:
        r->rc = virPKISessionClose(r->s);
        break;
    case RE_WAIT:
        /* Asks "the user" (the main thread), who closes the connection meanwhile. */
        atomic_store(&r->entered, 1);
        for (int i = 0; i < 2000 && !atomic_load(&r->go); i++)
            sleep_ms(10);
        r->rc = atomic_load(&r->go) ? 0 : -1;
        break;
    }
    r->code = virPKIGetLastErrorCode();
    return VIR_CONNECT_CERT_ACCEPT_ONCE;
}

struct bounded_handshake {
    virPKISessionPtr s;
    int rc, code;
    atomic_int done;
};

static void *bounded_handshake_thread(void *arg)
{
    struct bounded_handshake *b = arg;
    b->rc = virPKISessionHandshake(b->s);
    b->code = virPKIGetLastErrorCode();
    atomic_store(&b->done, 1);
    return NULL;
}

struct bounded_close {
    virPKISessionPtr s;
    int rc, code;
    char message[512];
    atomic_int done;
};

static void *bounded_close_thread(void *arg)
{
    struct bounded_close *b = arg;
    b->rc = virPKISessionClose(b->s);
    b->code = virPKIGetLastErrorCode();
    const char *m = virPKIGetLastErrorMessage();
    snprintf(b->message, sizeof b->message, "%s", m ? m : "");
    atomic_store(&b->done, 1);
    return NULL;
}

static void test_validator_calls_back(enum reentry_call call)
{
    int fds[2];
    connected_pair(0, fds);
    struct accept_arg a = {.ctx = server_context(), .fd = fds[0]};
    pthread_t server;
    if (pthread_create(&server, NULL, accept_blocking, &a) != 0)
        die("pthread_create");
    virPKIContextPtr cctx = client_context();
    struct reentry r = {.call = call, .rc = 99};
    CHECK_OK(virPKIContextSetCertificateValidator(cctx, reentrant_validator, &r, NULL));
    r.s = virPKISessionStartClient(cctx, fds[1], "localhost", 0, VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    CHECK(r.s != NULL);
    struct bounded_handshake b = {.s = r.s};
    pthread_t t;
    if (pthread_create(&t, NULL, bounded_handshake_thread, &b) != 0)
        die("pthread_create");
    if (call == RE_WAIT) {
        for (int i = 0; i < 2000 && !atomic_load(&r.entered); i++)
            sleep_ms(10);
        CHECK(atomic_load(&r.entered));
        /* Other threads meanwhile: no data in or out before the decision. */
        char byte;
        CHECK_FAILS((int)virPKISessionWrite(r.s, "early", 5), VIR_PKI_ERR_INVALID_ARG);
        CHECK_FAILS((int)virPKISessionRead(r.s, &byte, 1), VIR_PKI_ERR_INVALID_ARG);
        /* A close from here returns at once (it waited for the validator). */
        struct bounded_close cl = {.s = r.s};
        pthread_t ct;
        if (pthread_create(&ct, NULL, bounded_close_thread, &cl) != 0)
            die("pthread_create");
        join_within(ct, &cl.done, "virPKISessionClose while the validator runs");
        CHECK_INT(cl.rc, -1);
        CHECK_INT(cl.code, VIR_PKI_ERR_TLS);
        /* Nor a second one: close_notify was never sent (it returned 0 before the review). */
        struct bounded_close cl2 = {.s = r.s};
        if (pthread_create(&ct, NULL, bounded_close_thread, &cl2) != 0)
            die("pthread_create");
        join_within(ct, &cl2.done, "a second virPKISessionClose while the validator runs");
        CHECK_INT(cl2.rc, -1);
        CHECK_INT(cl2.code, VIR_PKI_ERR_TLS);
        atomic_store(&r.go, 1);
    }
    join_within(t, &b.done, "virPKISessionHandshake with a validator calling back");
    pthread_join(server, NULL);
    CHECK_INT(r.calls, 1);
    char buf[8];
    switch (call) {
    case RE_PEER_DN:
        /* Not the session's peer before the decision; known after it. */
        CHECK_INT(r.rc, -1);
        CHECK_INT(r.code, VIR_PKI_ERR_INVALID_ARG);
        CHECK_INT(b.rc, 0);
        char *dn = virPKISessionPeerDN(r.s);
        CHECK_STR(dn, "CN=localhost");
        virPKIFree(dn);
        break;
    case RE_READ:
    case RE_READ0:
    case RE_WRITE:
    case RE_HANDSHAKE:
        CHECK_INT(r.rc, -1);
        CHECK_INT(r.code, VIR_PKI_ERR_INVALID_ARG);
        CHECK_INT(b.rc, 0);
        CHECK(a.s != NULL);
        /* The first bytes the server gets are the ones written after the handshake. */
        CHECK_INT(virPKISessionWrite(r.s, "ping", 4), 4);
        if (a.s) {
            CHECK_INT(virPKISessionRead(a.s, buf, sizeof buf), 4);
            CHECK(memcmp(buf, "ping", 4) == 0);
        }
        break;
    case RE_WANTS:
        /* What the handshake waited for before it took the peer's messages in: a read. */
        CHECK_INT(r.rc, VIR_PKI_SESSION_WANT_READ);
        CHECK_INT(b.rc, 0);
        break;
    case RE_CLOSE:
    case RE_WAIT:
        if (call == RE_CLOSE) {
            CHECK_INT(r.rc, -1);
            CHECK_INT(r.code, VIR_PKI_ERR_TLS);
        } else {
            CHECK_INT(r.rc, 0); /* released, not timed out */
        }
        /* Closed: the handshake fails, the server sees the connection end. */
        CHECK_INT(b.rc, -1);
        CHECK_INT(b.code, VIR_PKI_ERR_TLS);
        CHECK(a.s == NULL);
        CHECK_FAILS((int)virPKISessionWrite(r.s, "x", 1), VIR_PKI_ERR_TLS);
        break;
    }
    virPKISessionFree(r.s);
    virPKISessionFree(a.s);
    virPKIContextFree(cctx);
    virPKIContextFree(a.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* ---- Close on a blocking fd whose peer stopped reading: close_notify must not hold it. */

/* Fills fd's send buffer (and the peer's receive buffer) with bytes nobody reads. */
static void fill_send_buffer(int fd)
{
    static char junk[65536];
    for (;;) {
        size_t took = 0;
        ssize_t n;
        while ((n = send(fd, junk, sizeof junk, MSG_DONTWAIT)) > 0)
            took += (size_t)n;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            die("send");
        if (took == 0)
            return;
        sleep_ms(100);
    }
}

struct blocked_call {
    virPKISessionPtr s;
    int write; /* 1: Write 1 MiB, 0: Read */
    long long rc;
    int code;
    atomic_int done;
};

static void *blocked_call_thread(void *arg)
{
    struct blocked_call *b = arg;
    if (b->write) {
        static char data[1 << 20];
        b->rc = virPKISessionWrite(b->s, data, sizeof data);
    } else {
        char buf[64];
        b->rc = virPKISessionRead(b->s, buf, sizeof buf);
    }
    b->code = virPKIGetLastErrorCode();
    atomic_store(&b->done, 1);
    return NULL;
}

/* A blocking client and server over a socketpair, handshaken; the server never reads. */
static virPKISessionPtr stuck_client(int fds[2], virPKIContextPtr *cctx, struct accept_arg *a)
{
    connected_pair(0, fds);
    a->ctx = server_context();
    a->fd = fds[0];
    *cctx = client_context();
    pthread_t t;
    if (pthread_create(&t, NULL, accept_blocking, a) != 0)
        die("pthread_create");
    virPKISessionPtr c = virPKISessionNewClient(*cctx, fds[1], "localhost", 0,
                                                VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    pthread_join(t, NULL);
    CHECK(c != NULL && a->s != NULL);
    if (!c || !a->s)
        exit(EXIT_FAILURE);
    fill_send_buffer(fds[1]);
    return c;
}

/* A peer that never reads, a reader and (with_writer) a writer blocked in other threads, a
   Close from this one: everything returns, with VIR_PKI_ERR_TLS (Close blocked in send
   forever, and the reader with it). */
static void test_close_on_a_full_socket(int with_writer)
{
    int fds[2];
    virPKIContextPtr cctx;
    struct accept_arg a = {0};
    virPKISessionPtr c = stuck_client(fds, &cctx, &a);
    struct blocked_call r = {.s = c}, w = {.s = c, .write = 1};
    pthread_t rt, wt;
    if (pthread_create(&rt, NULL, blocked_call_thread, &r) != 0 ||
        (with_writer && pthread_create(&wt, NULL, blocked_call_thread, &w) != 0))
        die("pthread_create");
    sleep_ms(300);
    struct bounded_close cl = {.s = c};
    pthread_t ct;
    if (pthread_create(&ct, NULL, bounded_close_thread, &cl) != 0)
        die("pthread_create");
    join_within(ct, &cl.done, "virPKISessionClose on a full socket");
    CHECK_INT(cl.rc, -1);
    CHECK_INT(cl.code, VIR_PKI_ERR_TLS);
    CHECK_CONTAINS(cl.message, "close_notify not sent");
    join_within(rt, &r.done, "a Read after Close");
    CHECK_INT(r.rc, -1);
    CHECK_INT(r.code, VIR_PKI_ERR_TLS);
    if (with_writer) {
        join_within(wt, &w.done, "a Write after Close");
        CHECK_INT(w.rc, -1);
        CHECK_INT(w.code, VIR_PKI_ERR_TLS);
    }
    virPKISessionFree(c);
    virPKISessionFree(a.s);
    virPKIContextFree(cctx);
    virPKIContextFree(a.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* A single-threaded program closes a stuck connection: Close waits for room at most
   SO_SNDTIMEO (here 200 ms; 5 s without), then shuts the fd down (it is not closed). */
static void test_close_alone_on_a_full_socket(void)
{
    int fds[2];
    virPKIContextPtr cctx;
    struct accept_arg a = {0};
    virPKISessionPtr c = stuck_client(fds, &cctx, &a);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    if (setsockopt(fds[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        die("setsockopt");
    struct bounded_close cl = {.s = c};
    pthread_t ct;
    if (pthread_create(&ct, NULL, bounded_close_thread, &cl) != 0)
        die("pthread_create");
    join_within(ct, &cl.done, "virPKISessionClose alone on a full socket");
    CHECK_INT(cl.rc, -1);
    CHECK_INT(cl.code, VIR_PKI_ERR_TLS);
    CHECK_CONTAINS(cl.message, "close_notify not sent");
    CHECK_CONTAINS(cl.message, "shut down");
    /* Shut down: a read fails at once instead of waiting for a peer that never writes. */
    char byte;
    CHECK_FAILS((int)virPKISessionRead(c, &byte, 1), VIR_PKI_ERR_TLS);
    CHECK_FAILS((int)virPKISessionWrite(c, "x", 1), VIR_PKI_ERR_TLS);
    CHECK(fcntl(fds[1], F_GETFD) >= 0);
    virPKISessionFree(c);
    virPKISessionFree(a.s);
    virPKIContextFree(cctx);
    virPKIContextFree(a.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* ---- virPKISessionRead with len 0: 0 at once, no I/O, nothing consumed or signalled. */

static void test_read_of_zero_bytes(void)
{
    int fds[2];
    connected_pair(0, fds);
    struct accept_arg a = {.ctx = server_context(), .fd = fds[0]};
    virPKIContextPtr cctx = client_context();
    pthread_t t;
    if (pthread_create(&t, NULL, accept_blocking, &a) != 0)
        die("pthread_create");
    virPKISessionPtr c = virPKISessionStartClient(cctx, fds[1], "localhost", 0,
                                                  VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    char buf[16];
    /* Before the handshake: refused like any read. */
    CHECK_FAILS((int)virPKISessionRead(c, buf, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_INT(virPKISessionHandshake(c), 0);
    pthread_join(t, NULL);
    CHECK(a.s != NULL);
    if (!a.s)
        return;
    /* Before any data, on a blocking fd: 0 at once (it does not wait for data). */
    CHECK_INT(virPKISessionRead(c, buf, 0), 0);
    CHECK_INT(virPKISessionRead(c, NULL, 0), 0);
    /* After data: 0, and the data is still there. */
    CHECK_INT(virPKISessionWrite(a.s, "abc", 3), 3);
    sleep_ms(50);
    CHECK_INT(virPKISessionRead(c, buf, 0), 0);
    CHECK_INT(virPKISessionRead(c, buf, sizeof buf), 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    /* Non-blocking, nothing pending: 0, not AGAIN; it asks for nothing (Wants stays 0)
       and a real read still says AGAIN. A loop must not take this 0 for the end. */
    set_nonblocking(fds[1]);
    CHECK_INT(virPKISessionRead(c, buf, 0), 0);
    CHECK_INT(virPKISessionWants(c), 0);
    CHECK_FAILS((int)virPKISessionRead(c, buf, sizeof buf), VIR_PKI_ERR_AGAIN);
    CHECK_INT(virPKISessionWants(c), VIR_PKI_SESSION_WANT_READ);
    CHECK_INT(virPKISessionRead(c, buf, 0), 0);
    CHECK_INT(virPKISessionWants(c), VIR_PKI_SESSION_WANT_READ);
    /* After the end of the stream: 0, as every read. */
    CHECK_INT(virPKISessionWrite(a.s, "z", 1), 1);
    CHECK_OK(virPKISessionClose(a.s));
    long long n;
    while ((n = virPKISessionRead(c, buf, sizeof buf)) < 0 &&
           virPKIGetLastErrorCode() == VIR_PKI_ERR_AGAIN)
        wait_for(c, fds[1]);
    CHECK_INT(n, 1);
    while ((n = virPKISessionRead(c, buf, sizeof buf)) < 0 &&
           virPKIGetLastErrorCode() == VIR_PKI_ERR_AGAIN)
        wait_for(c, fds[1]);
    CHECK_INT(n, 0);
    CHECK_INT(virPKISessionRead(c, buf, 0), 0);
    CHECK_INT(virPKISessionRead(c, buf, sizeof buf), 0);
    virPKISessionFree(c);
    virPKISessionFree(a.s);
    virPKIContextFree(cctx);
    virPKIContextFree(a.ctx);
    close(fds[0]);
    close(fds[1]);
}

/* ---- Found by review: a Handshake waiting in another thread for one whose validator rejects
   must return that failure, not read the failed connection (the peer here stays silent and
   keeps the fd open: such a read never returns). Repeated: the two race for the session. */

struct rejecting {
    atomic_int entered, go;
};

static int rejecting_validator(const char *h, const char *c, int t, unsigned int f, void *o)
{
    (void)h, (void)c, (void)t, (void)f;
    struct rejecting *r = o;
    atomic_store(&r->entered, 1);
    for (int i = 0; i < 2000 && !atomic_load(&r->go); i++)
        sleep_ms(10);
    return VIR_CONNECT_CERT_REJECT;
}

static void test_waiting_handshake_after_a_rejection(void)
{
    for (int round = 0; round < 100; round++) {
        int fds[2];
        connected_pair(0, fds);
        struct accept_arg a = {.ctx = server_context(), .fd = fds[0]};
        pthread_t server;
        if (pthread_create(&server, NULL, accept_blocking, &a) != 0)
            die("pthread_create");
        virPKIContextPtr cctx = client_context();
        struct rejecting r = {0};
        CHECK_OK(virPKIContextSetCertificateValidator(cctx, rejecting_validator, &r, NULL));
        virPKISessionPtr s = virPKISessionStartClient(cctx, fds[1], "localhost", 0, 0);
        struct bounded_handshake first = {.s = s}, second = {.s = s};
        pthread_t t1, t2;
        if (pthread_create(&t1, NULL, bounded_handshake_thread, &first) != 0)
            die("pthread_create");
        for (int i = 0; i < 2000 && !atomic_load(&r.entered); i++)
            sleep_ms(1);
        if (pthread_create(&t2, NULL, bounded_handshake_thread, &second) != 0)
            die("pthread_create");
        sleep_ms(2);
        atomic_store(&r.go, 1);
        join_within(t1, &first.done, "the rejected handshake");
        join_within(t2, &second.done, "a Handshake waiting for a rejected one");
        CHECK_INT(first.rc, -1);
        CHECK_INT(second.rc, -1);
        CHECK_INT(second.code, first.code);
        pthread_join(server, NULL);
        CHECK(a.s == NULL);
        virPKISessionFree(s);
        virPKIContextFree(cctx);
        virPKIContextFree(a.ctx);
        close(fds[0]);
        close(fds[1]);
    }
}

/* ---- Found by review: Close on a full non-blocking fd while a Read runs in another thread
   said AGAIN but had shut the fd down, so the retry failed. AGAIN must keep its promise. */

struct spinning_reader {
    virPKISessionPtr s;
    atomic_int stop;
};

static void *spinning_reader_thread(void *arg)
{
    struct spinning_reader *sr = arg;
    char buf[64];
    while (!atomic_load(&sr->stop))
        virPKISessionRead(sr->s, buf, sizeof buf);
    return NULL;
}

static void test_close_again_with_a_reader_running(void)
{
    /* Every round must say AGAIN (the socket is full; a busy send side is AGAIN too, never a
       shut-down fd). Counted, so that the test cannot pass without taking that branch. */
    int agains = 0;
    for (int round = 0; round < 20; round++) {
        int fds[2];
        virPKIContextPtr cctx;
        struct accept_arg a = {0};
        virPKISessionPtr c = stuck_client(fds, &cctx, &a);
        set_nonblocking(fds[1]);
        struct spinning_reader sr = {.s = c};
        pthread_t rt;
        if (pthread_create(&rt, NULL, spinning_reader_thread, &sr) != 0)
            die("pthread_create");
        sleep_ms(5);
        int rc = virPKISessionClose(c);
        int code = virPKIGetLastErrorCode();
        atomic_store(&sr.stop, 1);
        pthread_join(rt, NULL);
        CHECK_INT(rc, -1);
        CHECK_INT(code, VIR_PKI_ERR_AGAIN);
        if (code == VIR_PKI_ERR_AGAIN) {
            agains++;
            /* Nothing lost: alone now, Close still says AGAIN (the peer still reads nothing). */
            CHECK_FAILS(virPKISessionClose(c), VIR_PKI_ERR_AGAIN);
        }
        virPKISessionFree(c);
        virPKISessionFree(a.s);
        virPKIContextFree(cctx);
        virPKIContextFree(a.ctx);
        close(fds[0]);
        close(fds[1]);
    }
    CHECK_INT(agains, 20);
}

/* ---- Found by review: after close_notify went out, Close on a non-blocking fd still shut it
   down when another call was in progress at that instant (and when a write held the send side,
   it shut it down and failed): a Read in another thread waiting for the peer's reply then
   failed with "closed in another thread", depending on timing. Now a non-blocking fd is never
   shut down: the reader gets the peer's close_notify (0). */

struct reply_reader {
    virPKISessionPtr s;
    long long rc;
    int code;
    char message[512];
    atomic_int done;
};

static void *reply_reader_thread(void *arg)
{
    struct reply_reader *r = arg;
    char buf[64];
    /* Bounded: 20 s of AGAIN and it gives up (rc 99), so the join below cannot hang. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        r->rc = virPKISessionRead(r->s, buf, sizeof buf);
        r->code = virPKIGetLastErrorCode();
        if (r->rc != -1 || r->code != VIR_PKI_ERR_AGAIN)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 20) {
            r->rc = 99;
            break;
        }
    }
    const char *m = r->rc == -1 ? virPKIGetLastErrorMessage() : NULL;
    snprintf(r->message, sizeof r->message, "%s", m ? m : "");
    atomic_store(&r->done, 1);
    return NULL;
}

static void test_nonblocking_close_keeps_the_fd_up_for_a_reader(void)
{
    int close_agains = 0;
    for (int round = 0; round < 50; round++) {
        int fds[2];
        connected_pair(0, fds);
        struct accept_arg a = {.ctx = server_context(), .fd = fds[0]};
        virPKIContextPtr cctx = client_context();
        pthread_t t;
        if (pthread_create(&t, NULL, accept_blocking, &a) != 0)
            die("pthread_create");
        virPKISessionPtr c = virPKISessionNewClient(cctx, fds[1], "localhost", 0,
                                                    VIR_PKI_SESSION_LIBVIRT_CONFIRM);
        pthread_join(t, NULL);
        CHECK(c != NULL && a.s != NULL);
        if (!c || !a.s)
            exit(EXIT_FAILURE);
        set_nonblocking(fds[1]);
        /* The peer's reads below are bounded too. */
        struct timeval tv = {.tv_sec = 20};
        setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct reply_reader r = {.s = c};
        pthread_t rt;
        if (pthread_create(&rt, NULL, reply_reader_thread, &r) != 0)
            die("pthread_create");
        sleep_ms(1);
        for (int i = 0;; i++) {
            int rc = virPKISessionClose(c);
            if (rc == 0)
                break;
            CHECK_INT(virPKIGetLastErrorCode(), VIR_PKI_ERR_AGAIN);
            if (virPKIGetLastErrorCode() != VIR_PKI_ERR_AGAIN || i > 100000)
                die("virPKISessionClose never got through");
            close_agains++;
            sched_yield();
        }
        /* The peer receives close_notify and answers it on a socket still up. */
        char buf[64];
        CHECK_INT(virPKISessionRead(a.s, buf, sizeof buf), 0);
        CHECK_OK(virPKISessionClose(a.s));
        join_within(rt, &r.done, "a Read waiting for the peer's close_notify");
        CHECK_INT(r.rc, 0);
        if (r.rc != 0)
            fprintf(stderr, "round %d: the reader got %lld, code %d: %s\n", round, r.rc, r.code,
                    r.message);
        virPKISessionFree(c);
        virPKISessionFree(a.s);
        virPKIContextFree(cctx);
        virPKIContextFree(a.ctx);
        close(fds[0]);
        close(fds[1]);
    }
    printf("non-blocking Close with a reader running: %d AGAIN in 50 rounds\n", close_agains);
}

/* ---- Found by review: Handshake on an established session ("again 0 on later calls") waited
   for a Read blocked in another thread; a program that asks before each write, the write the
   peer waits for, waited for good. */

static void test_handshake_when_done_with_a_reader_blocked(void)
{
    int fds[2];
    virPKIContextPtr cctx;
    struct accept_arg a = {0};
    virPKISessionPtr c = stuck_client(fds, &cctx, &a);
    struct blocked_call r = {.s = c};
    pthread_t rt;
    if (pthread_create(&rt, NULL, blocked_call_thread, &r) != 0)
        die("pthread_create");
    sleep_ms(200);
    struct bounded_handshake b = {.s = c};
    pthread_t t;
    if (pthread_create(&t, NULL, bounded_handshake_thread, &b) != 0)
        die("pthread_create");
    join_within(t, &b.done, "virPKISessionHandshake with a Read blocked in another thread");
    CHECK_INT(b.rc, 0);
    CHECK_INT(virPKISessionClose(c), -1); /* wakes the reader; close_notify does not fit */
    join_within(rt, &r.done, "a Read after Close");
    CHECK_INT(r.rc, -1);
    virPKISessionFree(c);
    virPKISessionFree(a.s);
    virPKIContextFree(cctx);
    virPKIContextFree(a.ctx);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    check_watchdog(600);
    test_arguments();
    test_poll_client(0, 0);
    test_poll_client(0, VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    test_poll_client(1, VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    test_no_confirmation_byte();
    test_eof_without_close_notify();
    test_peer_vanishes_mid_handshake(0);
    test_peer_vanishes_mid_handshake(1);
    test_write_contract();
    test_close_again();
    test_full_duplex(0);
    test_full_duplex(1);
    test_close_wakes_reader();
    test_records_of_mixed_sizes();
    test_close_wakes_handshake();
    test_bytes_after_close_notify();
    for (int call = RE_PEER_DN; call <= RE_WAIT; call++)
        test_validator_calls_back((enum reentry_call)call);
    test_close_on_a_full_socket(0);
    test_close_on_a_full_socket(1);
    test_close_alone_on_a_full_socket();
    test_read_of_zero_bytes();
    test_waiting_handshake_after_a_rejection();
    test_close_again_with_a_reader_running();
    test_nonblocking_close_keeps_the_fd_up_for_a_reader();
    test_handshake_when_done_with_a_reader_blocked();
    return check_done();
}
