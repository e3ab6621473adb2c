/*
 * TLS sessions between two threads over a socketpair: virPKISessionNewClient/NewServer,
 * Read, Write, PeerDN, Close, Free, with and without libvirt's confirmation byte, and the
 * refusals (each must end in an error on both sides, never a hang: the watchdog kills a hang).
 */
#include "check.h"

#include <pthread.h>
#include <sys/socket.h>

/* One end of a connection: what it is given, and what happened. */
struct end {
    virPKIContextPtr ctx;
    int fd;
    unsigned flags;
    size_t expect;       /* server: bytes to read before replying */
    int free_ctx_early;  /* free ctx as soon as the session is established */
    /* results */
    int ok;              /* the session was established */
    int code;            /* else the error code */
    char message[1024];
    char *peer_dn;       /* server: the client's DN */
    char reply[64];      /* client: what the server answered */
    int eof;             /* client: a read after the reply returned 0 */
};

static void record_failure(struct end *e)
{
    e->code = virPKIGetLastErrorCode();
    const char *m = virPKIGetLastErrorMessage();
    snprintf(e->message, sizeof e->message, "%s", m ? m : "(no message)");
}

/* A client that fails closes its end, as an application would: the server sees the end of
   the stream instead of waiting for bytes that will not come. */
static void client_failed(struct end *e)
{
    record_failure(e);
    e->ok = 0;
    shutdown(e->fd, SHUT_RDWR);
}

/* The server: handshake, read `expect` bytes, answer "<count>:<sum>", close. */
static void *serve(void *arg)
{
    struct end *e = arg;
    virPKISessionPtr s = virPKISessionNewServer(e->ctx, e->fd, e->flags);
    if (!s) {
        record_failure(e);
        return NULL;
    }
    e->ok = 1;
    if (e->free_ctx_early) {
        virPKIContextFree(e->ctx);
        e->ctx = NULL;
    }
    e->peer_dn = virPKISessionPeerDN(s);
    size_t total = 0;
    unsigned long sum = 0;
    unsigned char buf[16384];
    while (total < e->expect) {
        long long n = virPKISessionRead(s, buf, sizeof buf);
        if (n <= 0) {
            record_failure(e);
            break;
        }
        for (long long i = 0; i < n; i++)
            sum += buf[i];
        total += (size_t)n;
    }
    char answer[64];
    int len = snprintf(answer, sizeof answer, "%zu:%lu", total, sum);
    if (virPKISessionWrite(s, answer, (size_t)len) != len || virPKISessionClose(s) != 0)
        record_failure(e);
    virPKISessionFree(s);
    return NULL;
}

/* The client: handshake, send `data`, read the answer and the end of the stream. */
static void run_client(struct end *e, const char *host, const unsigned char *data, size_t len)
{
    virPKIResetLastError();
    virPKISessionPtr s = virPKISessionNewClient(e->ctx, e->fd, host, 16514, e->flags);
    if (!s) {
        client_failed(e);
        return;
    }
    e->ok = 1;
    if (e->free_ctx_early) {
        virPKIContextFree(e->ctx);
        e->ctx = NULL;
    }
    if (virPKISessionWrite(s, data, len) != (long long)len) {
        client_failed(e);
        virPKISessionFree(s);
        return;
    }
    size_t got = 0;
    for (;;) {
        long long n = virPKISessionRead(s, e->reply + got, sizeof e->reply - 1 - got);
        if (n < 0) {
            client_failed(e);
            break;
        }
        if (n == 0) {
            e->eof = 1;
            break;
        }
        got += (size_t)n;
    }
    e->reply[got] = '\0';
    virPKISessionClose(s);
    virPKISessionFree(s);
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* A byte written on `from` arrives on `to`, after whatever TLS left unread (an alert). */
static int raw_bytes_pass(int from, int to)
{
    if (write(from, "z", 1) != 1)
        return 0;
    char buf[4096];
    for (;;) {
        ssize_t n = read(to, buf, sizeof buf);
        if (n <= 0)
            return 0;
        if (buf[n - 1] == 'z')
            return 1;
    }
}

/* Runs one connection: the server in a thread, the client here. */
static void connect_pair(struct end *server, struct end *client, const char *host,
                         const unsigned char *data, size_t len)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        die("socketpair");
    server->fd = fds[0];
    client->fd = fds[1];
    server->expect = len;
    pthread_t t;
    if (pthread_create(&t, NULL, serve, server) != 0)
        die("pthread_create");
    run_client(client, host, data, len);
    pthread_join(t, NULL);

    /* The library never closes the caller's fd: both are open, and still carry bytes unless
       the failed client shut the connection down. */
    CHECK(fd_is_open(fds[0]));
    CHECK(fd_is_open(fds[1]));
    if (client->ok) {
        CHECK(raw_bytes_pass(fds[1], fds[0]));
        CHECK(raw_bytes_pass(fds[0], fds[1]));
    }
    close(fds[0]);
    close(fds[1]);
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

static virPKIContextPtr client_context(int with_identity)
{
    virPKIContextPtr ctx = new_context(0, 1);
    if (with_identity) {
        CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CLIENT_CERT,
                                              fixture("client.pem")));
        CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CLIENT_KEY,
                                              fixture("client-key.pem")));
    }
    return ctx;
}

static void test_exchange(unsigned flags)
{
    struct end server = {.ctx = server_context(), .flags = flags};
    struct end client = {.ctx = client_context(1), .flags = flags};
    const unsigned char ping[] = "ping";
    connect_pair(&server, &client, "localhost", ping, 4);
    CHECK(server.ok);
    CHECK(client.ok);
    if (!server.ok || !client.ok)
        fprintf(stderr, "    server: %s\n    client: %s\n", server.message, client.message);
    CHECK_STR(server.peer_dn, "C=GB,O=Test,CN=client1");
    unsigned sum = 'p' + 'i' + 'n' + 'g';
    char expected[32];
    snprintf(expected, sizeof expected, "4:%u", sum);
    CHECK_STR(client.reply, expected);
    CHECK(client.eof);
    virPKIFree(server.peer_dn);
    virPKIContextFree(server.ctx);
    virPKIContextFree(client.ctx);
}

static void test_large_transfer(void)
{
    size_t len = 256 * 1024;
    unsigned char *data = malloc(len);
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++) {
        data[i] = (unsigned char)(i * 7 + 3);
        sum += data[i];
    }
    struct end server = {.ctx = server_context(), .flags = VIR_PKI_SESSION_LIBVIRT_CONFIRM};
    struct end client = {.ctx = client_context(1), .flags = VIR_PKI_SESSION_LIBVIRT_CONFIRM};
    connect_pair(&server, &client, "127.0.0.1", data, len);
    char expected[64];
    snprintf(expected, sizeof expected, "%zu:%lu", len, sum);
    CHECK_STR(client.reply, expected);
    CHECK(client.ok);
    if (!client.ok)
        fprintf(stderr, "    client: %s\n", client.message);
    virPKIFree(server.peer_dn);
    virPKIContextFree(server.ctx);
    virPKIContextFree(client.ctx);
    free(data);
}

/* The daemon's DN list refuses the client: the server fails with DN_NOT_ALLOWED, the client
   with TLS, at the handshake with CONFIRM, at the latest on its first read without. */
static void test_refused_by_dn_list(unsigned flags)
{
    struct end server = {.ctx = server_context(), .flags = flags};
    struct end client = {.ctx = client_context(1), .flags = flags};
    const char *only[] = {"C=GB,O=Test,CN=someone-else"};
    CHECK_OK(virPKIContextSetAllowedDNList(server.ctx, only, 1));
    const unsigned char ping[] = "ping";
    connect_pair(&server, &client, "localhost", ping, 4);
    CHECK(!server.ok);
    CHECK_INT(server.code, VIR_PKI_ERR_DN_NOT_ALLOWED);
    CHECK(!client.ok);
    CHECK_INT(client.code, VIR_PKI_ERR_TLS);
    if (flags & VIR_PKI_SESSION_LIBVIRT_CONFIRM)
        CHECK_CONTAINS(client.message, "did not confirm");
    virPKIContextFree(server.ctx);
    virPKIContextFree(client.ctx);
}

/* The client refuses the server: not the host asked for. */
static void test_wrong_host(void)
{
    const unsigned char ping[] = "ping";
    struct end server = {.ctx = server_context()};
    struct end client = {.ctx = client_context(1)};
    connect_pair(&server, &client, "other.example", ping, 4);
    CHECK(!client.ok);
    CHECK_INT(client.code, VIR_PKI_ERR_HOSTNAME_MISMATCH);
    CHECK_CONTAINS(client.message, "other.example");
    CHECK(!server.ok);
    CHECK_INT(server.code, VIR_PKI_ERR_TLS);
    virPKIContextFree(client.ctx);
    virPKIContextFree(server.ctx);
}

static int reject_all(const char *h, const char *c, int t, unsigned int f, void *o)
{
    (void)h, (void)c, (void)t, (void)f;
    ++*(int *)o;
    return VIR_CONNECT_CERT_REJECT;
}

static void test_validator_rejects(void)
{
    int calls = 0;
    struct end server = {.ctx = server_context()};
    struct end client = {.ctx = client_context(1)};
    CHECK_OK(virPKIContextSetCertificateValidator(client.ctx, reject_all, &calls, NULL));
    const unsigned char ping[] = "ping";
    connect_pair(&server, &client, "localhost", ping, 4);
    CHECK_INT(calls, 1);
    CHECK(!client.ok);
    CHECK_INT(client.code, VIR_PKI_ERR_REJECTED);
    CHECK(!server.ok);
    virPKIContextFree(server.ctx);
    virPKIContextFree(client.ctx);
}

struct validator_counts {
    int calls;
    int frees;
};

static int accept_once_counting(const char *h, const char *c, int t, unsigned int f, void *o)
{
    (void)h, (void)c, (void)t, (void)f;
    ((struct validator_counts *)o)->calls++;
    return VIR_CONNECT_CERT_ACCEPT_ONCE;
}

static void count_free(void *o)
{
    ((struct validator_counts *)o)->frees++;
}

/* A session does not need its context to stay: both contexts are freed right after the
   handshake, before any data moves (valgrind and ASan check nothing is used after), and the
   client's validator is released exactly once, by the time its session is freed. */
static void test_contexts_freed_before_sessions(void)
{
    struct validator_counts counts = {0, 0};
    struct end server = {.ctx = server_context(), .free_ctx_early = 1};
    struct end client = {.ctx = client_context(1), .free_ctx_early = 1};
    CHECK_OK(virPKIContextSetCertificateValidator(client.ctx, accept_once_counting, &counts,
                                                  count_free));
    const unsigned char ping[] = "ping";
    connect_pair(&server, &client, "localhost", ping, 4);
    CHECK(server.ok);
    CHECK(client.ok);
    if (!server.ok || !client.ok)
        fprintf(stderr, "    server: %s\n    client: %s\n", server.message, client.message);
    CHECK(server.ctx == NULL && client.ctx == NULL);
    CHECK_STR(server.peer_dn, "C=GB,O=Test,CN=client1");
    char expected[32];
    snprintf(expected, sizeof expected, "4:%u", (unsigned)('p' + 'i' + 'n' + 'g'));
    CHECK_STR(client.reply, expected);
    CHECK(client.eof);
    CHECK_INT(counts.calls, 1);
    CHECK_INT(counts.frees, 1);
    virPKIFree(server.peer_dn);
}

/* A client without a certificate is refused by the daemon (libvirt requires one). */
static void test_client_without_certificate(void)
{
    struct end server = {.ctx = server_context(), .flags = VIR_PKI_SESSION_LIBVIRT_CONFIRM};
    struct end client = {.ctx = client_context(0), .flags = VIR_PKI_SESSION_LIBVIRT_CONFIRM};
    const unsigned char ping[] = "ping";
    connect_pair(&server, &client, "localhost", ping, 4);
    CHECK(!server.ok);
    CHECK(server.code != VIR_PKI_OK);
    CHECK(!client.ok);
    CHECK_INT(client.code, VIR_PKI_ERR_TLS);
    virPKIContextFree(server.ctx);
    virPKIContextFree(client.ctx);
}

static void test_arguments(void)
{
    virPKIContextPtr ctx = client_context(1);
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        die("socketpair");
    virPKISessionPtr s;
#define CHECK_NO_SESSION(call) \
    do { \
        virPKIResetLastError(); \
        s = (call); \
        CHECK(s == NULL); \
        CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG); \
        virPKISessionFree(s); \
    } while (0)
    /* All refused before any I/O: nothing waits for a peer. */
    CHECK_NO_SESSION(virPKISessionNewClient(NULL, fds[0], "localhost", 0, 0));
    CHECK_NO_SESSION(virPKISessionNewClient(ctx, -1, "localhost", 0, 0));
    CHECK_NO_SESSION(virPKISessionNewClient(ctx, fds[0], NULL, 0, 0));
    CHECK_NO_SESSION(virPKISessionNewClient(ctx, fds[0], "local\xffhost", 0, 0));
    CHECK_NO_SESSION(virPKISessionNewClient(ctx, fds[0], "localhost", -1, 0));
    CHECK_NO_SESSION(virPKISessionNewClient(ctx, fds[0], "localhost", 65536, 0));
    CHECK_NO_SESSION(virPKISessionNewClient(ctx, fds[0], "localhost", 0, 2));
    CHECK_NO_SESSION(virPKISessionNewClient(ctx, fds[0], "localhost", 0, 1u << 31));
    CHECK_NO_SESSION(virPKISessionNewServer(NULL, fds[0], 0));
    CHECK_NO_SESSION(virPKISessionNewServer(ctx, -1, 0));
    CHECK_NO_SESSION(virPKISessionNewServer(ctx, fds[0], 2));
#undef CHECK_NO_SESSION

    /* A daemon context without its certificate cannot serve (and reads nothing). */
    virPKIResetLastError();
    s = virPKISessionNewServer(ctx, fds[0], 0);
    CHECK(s == NULL);
    CHECK(virPKIGetLastErrorCode() != VIR_PKI_OK);
    virPKISessionFree(s);

    char buf[8];
    CHECK_FAILS((int)virPKISessionRead(NULL, buf, sizeof buf), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS((int)virPKISessionWrite(NULL, "x", 1), VIR_PKI_ERR_INVALID_ARG);
    CHECK_NULL_STR(virPKISessionPeerDN(NULL), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKISessionClose(NULL), VIR_PKI_ERR_INVALID_ARG);
    virPKIResetLastError();
    virPKISessionFree(NULL);
    CHECK_INT(virPKIGetLastErrorCode(), VIR_PKI_OK);

    CHECK(fd_is_open(fds[0]) && fd_is_open(fds[1]));
    close(fds[0]);
    close(fds[1]);
    virPKIContextFree(ctx);
}

/* Read and Write with a NULL buffer, on a live session. */
struct null_buffers {
    virPKIContextPtr ctx;
    int fd;
};

static void *serve_and_wait(void *arg)
{
    struct null_buffers *n = arg;
    virPKISessionPtr s = virPKISessionNewServer(n->ctx, n->fd, 0);
    char buf[8];
    /* Wait for the client's close_notify. */
    while (s && virPKISessionRead(s, buf, sizeof buf) > 0) {
    }
    virPKISessionFree(s);
    return NULL;
}

static void test_null_buffers(void)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        die("socketpair");
    struct null_buffers srv = {.ctx = server_context(), .fd = fds[0]};
    virPKIContextPtr ctx = client_context(1);
    pthread_t t;
    pthread_create(&t, NULL, serve_and_wait, &srv);
    virPKISessionPtr s = virPKISessionNewClient(ctx, fds[1], "localhost", 0, 0);
    CHECK(s != NULL);
    CHECK_FAILS((int)virPKISessionRead(s, NULL, 1), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS((int)virPKISessionWrite(s, NULL, 1), VIR_PKI_ERR_INVALID_ARG);
    CHECK_INT(virPKISessionRead(s, NULL, 0), 0);
    CHECK_INT(virPKISessionWrite(s, NULL, 0), 0);
    CHECK_INT(virPKISessionWrite(s, "abc", 3), 3);
    CHECK_OK(virPKISessionClose(s));
    virPKISessionFree(s);
    pthread_join(t, NULL);
    CHECK(fd_is_open(fds[0]) && fd_is_open(fds[1]));
    close(fds[0]);
    close(fds[1]);
    virPKIContextFree(ctx);
    virPKIContextFree(srv.ctx);
}

/* The server goes away: handshake, then its session and socket are closed. */
static void *serve_and_vanish(void *arg)
{
    struct null_buffers *n = arg;
    virPKISessionPtr s = virPKISessionNewServer(n->ctx, n->fd, 0);
    virPKISessionFree(s);
    close(n->fd);
    return NULL;
}

/* Writing to a peer that has gone is an error, not a SIGPIPE (left at its default here, so
   a signal would kill this test). */
static void test_peer_gone(void)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        die("socketpair");
    struct null_buffers srv = {.ctx = server_context(), .fd = fds[0]};
    virPKIContextPtr ctx = client_context(1);
    pthread_t t;
    pthread_create(&t, NULL, serve_and_vanish, &srv);
    virPKISessionPtr s = virPKISessionNewClient(ctx, fds[1], "localhost", 0, 0);
    CHECK(s != NULL);
    pthread_join(t, NULL);
    virPKIResetLastError();
    long long r = 0;
    for (int i = 0; i < 4 && r >= 0; i++)
        r = virPKISessionWrite(s, "data", 4);
    CHECK_INT(r, -1);
    CHECK_ERROR(VIR_PKI_ERR_TLS);
    virPKISessionFree(s);
    CHECK(fd_is_open(fds[1]));
    close(fds[1]);
    virPKIContextFree(ctx);
    virPKIContextFree(srv.ctx);
}

/* The server sends "hello" and leaves: with close_notify (notify) or with a bare shutdown of
   the socket, which anyone on the path could forge. */
struct truncation {
    virPKIContextPtr ctx;
    int fd;
    int notify;
};

static void *serve_hello_and_leave(void *arg)
{
    struct truncation *t = arg;
    virPKISessionPtr s = virPKISessionNewServer(t->ctx, t->fd, 0);
    if (s) {
        virPKISessionWrite(s, "hello", 5);
        if (t->notify)
            virPKISessionClose(s);
        virPKISessionFree(s);
    }
    shutdown(t->fd, SHUT_RDWR);
    return NULL;
}

/* Only close_notify is the end of the stream (0); a connection closed without it is -1 with
   VIR_PKI_ERR_TLS: what was read may have been cut short. */
static void test_close_without_close_notify(int notify)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        die("socketpair");
    struct truncation srv = {.ctx = server_context(), .fd = fds[0], .notify = notify};
    virPKIContextPtr ctx = client_context(1);
    pthread_t t;
    pthread_create(&t, NULL, serve_hello_and_leave, &srv);
    virPKISessionPtr s = virPKISessionNewClient(ctx, fds[1], "localhost", 0, 0);
    CHECK(s != NULL);
    char buf[16];
    size_t got = 0;
    while (s && got < 5) {
        long long n = virPKISessionRead(s, buf + got, sizeof buf - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK_INT((int)got, 5);
    virPKIResetLastError();
    long long n = s ? virPKISessionRead(s, buf, sizeof buf) : -2;
    if (notify) {
        CHECK_INT((int)n, 0);
    } else {
        CHECK_INT((int)n, -1);
        CHECK_ERROR(VIR_PKI_ERR_TLS);
        CHECK_CONTAINS(virPKIGetLastErrorMessage(), "close_notify");
    }
    pthread_join(t, NULL);
    virPKISessionFree(s);
    close(fds[0]);
    close(fds[1]);
    virPKIContextFree(ctx);
    virPKIContextFree(srv.ctx);
}

int main(void)
{
    check_watchdog(600);
    test_arguments();
    test_exchange(0);
    test_exchange(VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    test_large_transfer();
    test_null_buffers();
    test_refused_by_dn_list(VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    test_refused_by_dn_list(0);
    test_wrong_host();
    test_validator_rejects();
    test_contexts_freed_before_sessions();
    test_client_without_certificate();
    test_peer_gone();
    test_close_without_close_notify(1);
    test_close_without_close_notify(0);
    return check_done();
}
