/*
 * virPKIContextReload: the files a context loaded are read again, all or nothing; text stays;
 * a broken or inconsistent set is refused with the old one kept; sessions already established
 * keep working, the next one uses the new set.
 */
#include "check.h"

#include <pthread.h>
#include <sys/socket.h>

/* The declaration, exactly as API.md gives it. */
static int (*const reload_fn)(virPKIContextPtr, unsigned int) = virPKIContextReload;

/* Copies fixture `name` to `dir`/`as` with `mode`. */
static void put(const char *dir, const char *as, const char *name, mode_t mode)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, as);
    char *text = read_fixture(name);
    write_text(path, text, mode);
    free(text);
}

static void put_text(const char *dir, const char *as, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, as);
    write_text(path, text, 0600);
}

static void test_arguments(void)
{
    CHECK_FAILS(reload_fn(NULL, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "ctx");
    virPKIContextPtr ctx = new_context(0, 1);
    unsigned bad_flags[] = {1, 2, 0x80, 1u << 31};
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        CHECK_FAILS(virPKIContextReload(ctx, bad_flags[i]), VIR_PKI_ERR_INVALID_ARG);
        CHECK_CONTAINS(virPKIGetLastErrorMessage(), "flags");
    }
    /* Refused flags changed nothing. */
    char *server = read_fixture("server.pem");
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0));
    virPKIContextFree(ctx);
    /* Nothing loaded, nothing to read again. */
    ctx = new_context(0, 0);
    CHECK_OK(virPKIContextReload(ctx, 0));
    virPKIContextFree(ctx);
    free(server);
}

/* A CA file replaced on disk is picked up; a CA added as text stays. */
static void test_replaced_ca_file(void)
{
    char *dir = make_temp_dir();
    put(dir, "ca.pem", "ca.pem", 0644);
    char path[4200];
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    char *server = read_fixture("server.pem");
    char *server_ca2 = read_fixture("server-ca2.pem");
    char *selfsigned = read_fixture("selfsigned.pem");

    virPKIContextPtr ctx = new_context(0, 0);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, path));
    CHECK_OK(virPKIContextAddCertData(ctx, VIR_CONNECT_CERT_SERVER_TRUSTED, selfsigned));
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0));
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, selfsigned, 0));
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, server_ca2, 0),
                VIR_PKI_ERR_UNKNOWN_ISSUER);

    put(dir, "ca.pem", "ca2.pem", 0644);
    CHECK_OK(virPKIContextReload(ctx, 0));
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server_ca2, 0));
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0),
                VIR_PKI_ERR_UNKNOWN_ISSUER);
    /* The pinned certificate, added as text, is still there. */
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, selfsigned, 0));

    /* The file is gone: refused, named, the CA loaded before stays. */
    CHECK(unlink(path) == 0);
    CHECK_FAILS(virPKIContextReload(ctx, 0), VIR_PKI_ERR_IO);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), path);
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server_ca2, 0));
    virPKIContextFree(ctx);

    free(server);
    free(server_ca2);
    free(selfsigned);
    remove_tree(dir);
}

/* A daemon's directory: a broken file, a key that is not the certificate's, then a good
   replacement. */
static void test_daemon_files(void)
{
    char *dir = make_temp_dir();
    put(dir, "cacert.pem", "ca.pem", 0644);
    put(dir, "servercert.pem", "server.pem", 0644);
    put(dir, "serverkey.pem", "server-key.pem", 0600);
    char *client = read_fixture("client.pem");
    char *client_ca2 = read_fixture("client-ca2.pem");

    virPKIContextPtr ctx = new_context(0, 0);
    CHECK_OK(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_SERVER, dir, 0));
    virPKIContextPtr lax = new_context(VIR_PKI_CONTEXT_NO_SANITY, 0);
    CHECK_OK(virPKIContextLoadDefault(lax, VIR_PKI_ROLE_SERVER, dir, 0));

    /* A certificate file that no longer parses. */
    put_text(dir, "servercert.pem",
             "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    CHECK_FAILS(virPKIContextReload(ctx, 0), VIR_PKI_ERR_PARSE);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "servercert.pem");
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, NULL));
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));

    /* A certificate whose key is not in serverkey.pem: an error finding, named. */
    put(dir, "servercert.pem", "server-newkey.pem", 0644);
    CHECK_FAILS(virPKIContextReload(ctx, 0), VIR_PKI_ERR_KEY_MISMATCH);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "serverkey.pem");
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "does not belong");
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, NULL));
    /* NO_SANITY takes it (libvirt's tls_no_sanity_certificate); the check still sees it. */
    CHECK_OK(virPKIContextReload(lax, 0));
    CHECK_FAILS(virPKIContextCheck(lax, VIR_PKI_ROLE_SERVER, NULL), VIR_PKI_ERR_KEY_MISMATCH);

    /* The CA and the certificate replaced together by another CA's: clients of the old CA
       are refused from now on. */
    put(dir, "cacert.pem", "ca2.pem", 0644);
    put(dir, "servercert.pem", "server-renewed.pem", 0644);
    CHECK_FAILS(virPKIContextReload(ctx, 0), VIR_PKI_ERR_UNKNOWN_ISSUER);
    put(dir, "cacert.pem", "ca.pem", 0644);
    CHECK_OK(virPKIContextReload(ctx, 0));
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, NULL));
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));
    CHECK_FAILS(virPKIContextVerifyClient(ctx, client_ca2, NULL, 0),
                VIR_PKI_ERR_UNKNOWN_ISSUER);

    virPKIContextFree(ctx);
    virPKIContextFree(lax);
    free(client);
    free(client_ca2);
    remove_tree(dir);
}

/* The server end of test_sessions: one session, echo 4 bytes, twice if asked. */
struct server_end {
    virPKIContextPtr ctx;
    int fd;
    int ok;
};

static void *serve_echo(void *arg)
{
    struct server_end *e = arg;
    virPKISessionPtr s = virPKISessionNewServer(e->ctx, e->fd, 0);
    if (!s)
        return NULL;
    char buf[4];
    if (virPKISessionRead(s, buf, sizeof buf) == 4 && virPKISessionWrite(s, buf, 4) == 4 &&
        virPKISessionClose(s) == 0)
        e->ok = 1;
    virPKISessionFree(s);
    return NULL;
}

/* What the client's validator saw: the server certificate's PEM. */
struct seen {
    char pem[8192];
};

static int record_server(const char *h, const char *cert, int t, unsigned int f, void *opaque)
{
    (void)h, (void)t, (void)f;
    struct seen *seen = opaque;
    snprintf(seen->pem, sizeof seen->pem, "%s", cert);
    return VIR_CONNECT_CERT_ACCEPT_ONCE;
}

/* Opens a session pair over a socketpair; the server runs in `thread`. */
static virPKISessionPtr open_pair(virPKIContextPtr client, struct server_end *server,
                                  pthread_t *thread, int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        die("socketpair");
    server->fd = fds[1];
    server->ok = 0;
    if (pthread_create(thread, NULL, serve_echo, server) != 0)
        die("pthread_create");
    return virPKISessionNewClient(client, fds[0], "localhost", 16514, 0);
}

/* A session established before the reload keeps working; the next one is served with the
   new certificate. */
static void test_sessions(void)
{
    char *dir = make_temp_dir();
    put(dir, "cacert.pem", "ca.pem", 0644);
    put(dir, "servercert.pem", "server.pem", 0644);
    put(dir, "serverkey.pem", "server-key.pem", 0600);
    char *server_pem = read_fixture("server.pem");
    char *renewed_pem = read_fixture("server-renewed.pem");

    struct server_end server = {.ctx = new_context(0, 0)};
    CHECK_OK(virPKIContextLoadDefault(server.ctx, VIR_PKI_ROLE_SERVER, dir, 0));
    virPKIContextPtr client = new_context(0, 1);
    CHECK_OK(virPKIContextAddCertDataFile(client, VIR_CONNECT_CERT_CLIENT_CERT,
                                          fixture("client.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(client, VIR_CONNECT_CERT_CLIENT_KEY,
                                          fixture("client-key.pem")));
    struct seen seen = {{0}};
    CHECK_OK(virPKIContextSetCertificateValidator(client, record_server, &seen, NULL));

    pthread_t thread;
    int fds[2];
    virPKISessionPtr s = open_pair(client, &server, &thread, fds);
    CHECK(s != NULL);
    char *fp_seen = virPKICertFingerprint(seen.pem);
    char *fp_server = virPKICertFingerprint(server_pem);
    CHECK(fp_seen && fp_server && strcmp(fp_seen, fp_server) == 0);
    virPKIFree(fp_seen);
    virPKIFree(fp_server);

    /* The certificate is renewed on disk (same key) and the daemon reloads. */
    put(dir, "servercert.pem", "server-renewed.pem", 0644);
    CHECK_OK(virPKIContextReload(server.ctx, 0));
    char buf[5] = {0};
    CHECK(s && virPKISessionWrite(s, "ping", 4) == 4);
    CHECK(s && virPKISessionRead(s, buf, 4) == 4);
    CHECK_STR(buf, "ping");
    virPKISessionFree(s);
    pthread_join(thread, NULL);
    CHECK(server.ok);
    close(fds[0]);
    close(fds[1]);

    s = open_pair(client, &server, &thread, fds);
    CHECK(s != NULL);
    fp_seen = virPKICertFingerprint(seen.pem);
    char *fp_renewed = virPKICertFingerprint(renewed_pem);
    CHECK(fp_seen && fp_renewed && strcmp(fp_seen, fp_renewed) == 0);
    virPKIFree(fp_seen);
    virPKIFree(fp_renewed);
    CHECK(s && virPKISessionWrite(s, "pong", 4) == 4);
    CHECK(s && virPKISessionRead(s, buf, 4) == 4);
    CHECK_STR(buf, "pong");
    virPKISessionFree(s);
    pthread_join(thread, NULL);
    CHECK(server.ok);
    close(fds[0]);
    close(fds[1]);

    virPKIContextFree(server.ctx);
    virPKIContextFree(client);
    free(server_pem);
    free(renewed_pem);
    remove_tree(dir);
}

int main(void)
{
    check_watchdog(300);
    test_arguments();
    test_replaced_ca_file();
    test_daemon_files();
    test_sessions();
    return check_done();
}
