/*
 * A full mutual-TLS handshake with libvirt's 0x01 confirmation byte, over a socketpair, done by
 * GnuTLS the way libvirt does it and by virtpki's C API, timed the same way in one process.
 *
 * Usage: handshake DIR ITERATIONS ROUNDS
 *   DIR holds cacert.pem, servercert.pem, serverkey.pem, clientcert.pem, clientkey.pem (made by
 *   `virtpki ca init` and `virtpki issue`; the server certificate names HOST below).
 *
 * Fairness: both sides of both libraries run in this one thread over a non-blocking
 * socketpair, each step called in turn until both ends are done, so no thread scheduling is
 * timed. Credentials (certificates, keys, the CA) are loaded once, as a daemon and a client
 * do; every iteration makes new sessions and does a full handshake (no resumption: virtpki
 * builds its TLS configurations per session, GnuTLS is given no session data), the peer
 * verification each side does (GnuTLS: gnutls_certificate_verify_peers3 with the host name on
 * the client, verify_peers2 on the server, then importing the peer's certificate as libvirt's
 * virNetTLSContextCheckCertificate does) and the server's 0x01 byte read by the client. The
 * libraries alternate for ROUNDS rounds of ITERATIONS handshakes each; the median round
 * of each is printed, in wall and CPU time per handshake, with the TLS parameters each
 * negotiated. Built and run by `make bench-handshake` (part of `make bench`).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "virtpki.h"

#define HOST "bench.test"
/* libvirt's default tls_priority, and the same with X25519 first, the group rustls prefers:
 * GnuTLS 3.7's NORMAL picks SECP256R1, which costs more, so both are shown. */
static const char *const priorities[2] = {"NORMAL", "NORMAL:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1"};

static char dir[4096];

static const char *path(const char *name)
{
    static char buf[2][4200];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", dir, name);
    return buf[which];
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "handshake: %s: %s\n", what, why);
    exit(1);
}

static void pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        die("socketpair", strerror(errno));
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) != 0)
            die("fcntl", strerror(errno));
    }
}

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- GnuTLS, as libvirt's virnettlscontext.c uses it ------------------------------------ */

static gnutls_certificate_credentials_t g_server_cred, g_client_cred;
static gnutls_priority_t g_prio[2];

static void gnutls_setup(void)
{
    int r;
    if ((r = gnutls_global_init()) < 0)
        die("gnutls_global_init", gnutls_strerror(r));
    gnutls_certificate_credentials_t *creds[2] = {&g_server_cred, &g_client_cred};
    const char *cert[2] = {"servercert.pem", "clientcert.pem"};
    const char *key[2] = {"serverkey.pem", "clientkey.pem"};
    for (int i = 0; i < 2; i++) {
        if ((r = gnutls_certificate_allocate_credentials(creds[i])) < 0)
            die("credentials", gnutls_strerror(r));
        if ((r = gnutls_certificate_set_x509_trust_file(*creds[i], path("cacert.pem"),
                                                        GNUTLS_X509_FMT_PEM)) < 0)
            die("CA", gnutls_strerror(r));
        if ((r = gnutls_certificate_set_x509_key_file(*creds[i], path(cert[i]), path(key[i]),
                                                      GNUTLS_X509_FMT_PEM)) < 0)
            die("certificate and key", gnutls_strerror(r));
    }
    for (int i = 0; i < 2; i++)
        if ((r = gnutls_priority_init(&g_prio[i], priorities[i], NULL)) < 0)
            die("priority", gnutls_strerror(r));
}

static gnutls_session_t g_session(unsigned int end, int fd, int prio)
{
    gnutls_session_t s;
    int r;
    if ((r = gnutls_init(&s, end | GNUTLS_NONBLOCK)) < 0)
        die("gnutls_init", gnutls_strerror(r));
    gnutls_priority_set(s, g_prio[prio]);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
                           end == GNUTLS_SERVER ? g_server_cred : g_client_cred);
    if (end == GNUTLS_SERVER)
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
    else
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, HOST, strlen(HOST));
    gnutls_transport_set_int(s, fd);
    return s;
}

/* libvirt's check of the peer: the chain verified, then the certificate imported (for its
 * times, and the host name on the client). */
static void gnutls_check_peer(gnutls_session_t s, int client)
{
    unsigned int status = 0;
    int r = client ? gnutls_certificate_verify_peers3(s, HOST, &status)
                   : gnutls_certificate_verify_peers2(s, &status);
    if (r < 0 || status != 0)
        die("GnuTLS peer verification", r < 0 ? gnutls_strerror(r) : "status not 0");
    unsigned int n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    gnutls_x509_crt_t crt;
    if (!certs || n == 0 || gnutls_x509_crt_init(&crt) < 0 ||
        gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0)
        die("GnuTLS peer certificate", "cannot import");
    time_t t = time(NULL);
    if (gnutls_x509_crt_get_expiration_time(crt) < t ||
        gnutls_x509_crt_get_activation_time(crt) > t)
        die("GnuTLS peer certificate", "not valid now");
    if (client && !gnutls_x509_crt_check_hostname(crt, HOST))
        die("GnuTLS peer certificate", "host name");
    gnutls_x509_crt_deinit(crt);
}

static void gnutls_once(int print, int prio)
{
    int fds[2];
    pair(fds);
    gnutls_session_t srv = g_session(GNUTLS_SERVER, fds[0], prio);
    gnutls_session_t cli = g_session(GNUTLS_CLIENT, fds[1], prio);
    /* States: 0 handshaking, 1 verified (server: byte sent; client: waiting for it), 2 done. */
    int ss = 0, cs = 0;
    while (ss < 2 || cs < 2) {
        if (ss == 0) {
            int r = gnutls_handshake(srv);
            if (r == 0) {
                gnutls_check_peer(srv, 0);
                ss = 1;
            } else if (gnutls_error_is_fatal(r))
                die("GnuTLS server handshake", gnutls_strerror(r));
        }
        if (ss == 1) {
            ssize_t r = gnutls_record_send(srv, "\1", 1);
            if (r == 1)
                ss = 2;
            else if (r < 0 && r != GNUTLS_E_AGAIN)
                die("GnuTLS send", gnutls_strerror((int)r));
        }
        if (cs == 0) {
            int r = gnutls_handshake(cli);
            if (r == 0) {
                gnutls_check_peer(cli, 1);
                cs = 1;
            } else if (gnutls_error_is_fatal(r))
                die("GnuTLS client handshake", gnutls_strerror(r));
        }
        if (cs == 1) {
            char b;
            ssize_t r = gnutls_record_recv(cli, &b, 1);
            if (r == 1 && b == 1)
                cs = 2;
            else if (r >= 0 || (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED))
                die("GnuTLS confirmation byte", r < 0 ? gnutls_strerror((int)r) : "not 0x01");
        }
    }
    if (print) {
        char *desc = gnutls_session_get_desc(cli);
        printf("  GnuTLS %s, \"%s\": %s\n", gnutls_check_version(NULL), priorities[prio], desc);
        gnutls_free(desc);
    }
    gnutls_deinit(cli);
    gnutls_deinit(srv);
    close(fds[0]);
    close(fds[1]);
}

static void gnutls_normal(int print)
{
    gnutls_once(print, 0);
}

static void gnutls_x25519(int print)
{
    gnutls_once(print, 1);
}

/* ---- virtpki ------------------------------------------------------------------------------ */

static virPKIContextPtr v_server_ctx, v_client_ctx;

static virPKIContextPtr v_context(int cert_type, const char *cert, int key_type, const char *key)
{
    virPKIContextPtr ctx = virPKIContextNew(0);
    if (!ctx || virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, path("cacert.pem")) ||
        virPKIContextAddCertDataFile(ctx, cert_type, path(cert)) ||
        virPKIContextAddCertDataFile(ctx, key_type, path(key)))
        die("virtpki context", virPKIGetLastErrorMessage());
    return ctx;
}

static void virtpki_setup(void)
{
    v_server_ctx = v_context(VIR_CONNECT_CERT_SERVER_CERT, "servercert.pem",
                             VIR_CONNECT_CERT_SERVER_KEY, "serverkey.pem");
    v_client_ctx = v_context(VIR_CONNECT_CERT_CLIENT_CERT, "clientcert.pem",
                             VIR_CONNECT_CERT_CLIENT_KEY, "clientkey.pem");
}

static void virtpki_once(int print)
{
    int fds[2];
    pair(fds);
    virPKISessionPtr srv =
        virPKISessionStartServer(v_server_ctx, fds[0], VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    virPKISessionPtr cli =
        virPKISessionStartClient(v_client_ctx, fds[1], HOST, 16514, VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    if (!srv || !cli)
        die("virtpki session", virPKIGetLastErrorMessage());
    int sdone = 0, cdone = 0;
    while (!sdone || !cdone) {
        if (!sdone) {
            if (virPKISessionHandshake(srv) == 0)
                sdone = 1;
            else if (virPKIGetLastErrorCode() != VIR_PKI_ERR_AGAIN)
                die("virtpki server handshake", virPKIGetLastErrorMessage());
        }
        if (!cdone) {
            if (virPKISessionHandshake(cli) == 0)
                cdone = 1;
            else if (virPKIGetLastErrorCode() != VIR_PKI_ERR_AGAIN)
                die("virtpki client handshake", virPKIGetLastErrorMessage());
        }
    }
    (void)print; /* the C API does not report the negotiated parameters */
    virPKISessionFree(cli);
    virPKISessionFree(srv);
    close(fds[0]);
    close(fds[1]);
}

/* ---- timing ------------------------------------------------------------------------------- */

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s DIR ITERATIONS ROUNDS\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    int n = atoi(argv[2]), rounds = atoi(argv[3]);
    if (n <= 0 || rounds <= 0 || rounds > 64)
        die("arguments", "ITERATIONS > 0, 0 < ROUNDS <= 64");
    gnutls_setup();
    virtpki_setup();
    enum { N = 3 };
    void (*impl[N])(int) = {gnutls_normal, gnutls_x25519, virtpki_once};
    const char *name[N] = {"GnuTLS NORMAL", "GnuTLS X25519", "virtpki"};
    double wall[N][64], cpu[N][64];
    for (int i = 0; i < N; i++)
        for (int w = 0; w < 10; w++) /* warm up */
            impl[i](w == 0);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < N; i++) {
            double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
            for (int k = 0; k < n; k++)
                impl[i](0);
            wall[i][r] = (now(CLOCK_MONOTONIC) - w0) / n;
            cpu[i][r] = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / n;
        }
    double med_cpu[N];
    for (int i = 0; i < N; i++) {
        qsort(wall[i], rounds, sizeof(double), cmp);
        qsort(cpu[i], rounds, sizeof(double), cmp);
        med_cpu[i] = cpu[i][rounds / 2];
        printf("%-14s %2d rounds x %d handshakes: median %.1f us wall, %.1f us CPU per handshake "
               "(CPU min %.1f, max %.1f)\n",
               name[i], rounds, n, wall[i][rounds / 2] * 1e6, med_cpu[i] * 1e6, cpu[i][0] * 1e6,
               cpu[i][rounds - 1] * 1e6);
    }
    printf("virtpki / GnuTLS (median CPU time): %.2fx against NORMAL, %.2fx against X25519\n",
           med_cpu[2] / med_cpu[0], med_cpu[2] / med_cpu[1]);
    virPKIContextFree(v_server_ctx);
    virPKIContextFree(v_client_ctx);
    gnutls_certificate_free_credentials(g_server_cred);
    gnutls_certificate_free_credentials(g_client_cred);
    gnutls_priority_deinit(g_prio[0]);
    gnutls_priority_deinit(g_prio[1]);
    gnutls_global_deinit();
    return 0;
}
