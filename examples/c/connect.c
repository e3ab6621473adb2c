/*
 * Connect to a libvirt-style TLS server the way the certificate-management proposal does.
 *
 *   connect --ca cacert.pem --cert clientcert.pem --key clientkey.pem HOST:PORT
 *           [--trust once|always|never] [--known-servers FILE]
 *
 * Loads the CA certificate, the client certificate and its key, sets a certificate validator
 * that shows the server's certificate and asks whether to trust it (or answers from --trust),
 * connects over TCP, verifies the server in a TLS session that waits for libvirt's
 * confirmation byte, and says what happened. Exit status 0 when connected, 1 when not.
 *
 * Build: make examples (or cc -Iinclude connect.c -Ltarget/release -lvirtpki).
 */

#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "virtpki.h"

/* The C names of virPKIErrorCode, for messages. */
static const char *const error_names[] = {
    "VIR_PKI_OK",
    "VIR_PKI_ERR_INVALID_ARG",
    "VIR_PKI_ERR_IO",
    "VIR_PKI_ERR_PARSE",
    "VIR_PKI_ERR_WRONG_TYPE",
    "VIR_PKI_ERR_TOO_LARGE",
    "VIR_PKI_ERR_INSECURE_PERMISSIONS",
    "VIR_PKI_ERR_KEY_MISMATCH",
    "VIR_PKI_ERR_NO_CA",
    "VIR_PKI_ERR_EXPIRED",
    "VIR_PKI_ERR_NOT_YET_VALID",
    "VIR_PKI_ERR_UNKNOWN_ISSUER",
    "VIR_PKI_ERR_NOT_CA",
    "VIR_PKI_ERR_KEY_USAGE",
    "VIR_PKI_ERR_PURPOSE",
    "VIR_PKI_ERR_REVOKED",
    "VIR_PKI_ERR_BAD_SIGNATURE",
    "VIR_PKI_ERR_HOSTNAME_MISMATCH",
    "VIR_PKI_ERR_DN_NOT_ALLOWED",
    "VIR_PKI_ERR_REJECTED",
    "VIR_PKI_ERR_STORE",
    "VIR_PKI_ERR_TLS",
    "VIR_PKI_ERR_INTERNAL",
};

/* What the validator was told to answer (--trust), and what it answered. */
struct trust {
    const char *preset;  /* "once", "always", "never" or NULL: ask */
    const char *answer;  /* NULL until the validator is called */
};

static const char *
error_name(int code)
{
    if (code >= 0 && code < (int)(sizeof(error_names) / sizeof(error_names[0])))
        return error_names[code];
    return "unknown error";
}

/* Prints the library's last error for what failed; returns 1 (the exit status). */
static int
report_failure(const char *what)
{
    int code = virPKIGetLastErrorCode();
    const char *message = virPKIGetLastErrorMessage();

    printf("%s failed: %s (%d): %s\n", what, error_name(code), code,
           message ? message : "no message");
    return 1;
}

/* An answer from the terminal: "once", "always" or "never" (also at end of input). */
static const char *
ask(void)
{
    char line[64];

    for (;;) {
        printf("Trust it? o(nce), a(lways), n(ever): ");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin)) {
            printf("\n");
            return "never";
        }
        switch (line[0]) {
        case 'o': case 'O': return "once";
        case 'a': case 'A': return "always";
        case 'n': case 'N': return "never";
        }
        printf("Please answer o(nce), a(lways) or n(ever).\n");
    }
}

static int
validator(const char *hostname, const char *cert, int trusted, unsigned int flags, void *opaque)
{
    struct trust *trust = opaque;
    char *description = virPKICertDescribe(cert);
    char *line, *saveptr = NULL;

    printf("The server %s presents this certificate:\n", hostname);
    if (description) {
        for (line = strtok_r(description, "\n", &saveptr); line;
             line = strtok_r(NULL, "\n", &saveptr))
            printf("    %s\n", line);
        virPKIFree(description);
    }
    if (flags & VIR_CONNECT_CERT_VALIDATE_UNVERIFIED)
        printf("It could NOT be verified against your CA certificates.\n");
    if (trusted)
        printf("You already trust this certificate for %s.\n", hostname);
    else if (flags & VIR_CONNECT_CERT_VALIDATE_CHANGED)
        printf("WARNING: %s was trusted with a different certificate%s\n", hostname,
               flags & VIR_CONNECT_CERT_VALIDATE_SAME_KEY
                   ? " (this one has the same key: a renewal?)." : ".");
    else
        printf("It is not known for %s yet.\n", hostname);

    if (trust->preset) {
        trust->answer = trust->preset;
        printf("Trust it? o(nce), a(lways), n(ever): %s (--trust)\n", trust->answer);
    } else {
        trust->answer = ask();
    }
    if (strcmp(trust->answer, "once") == 0)
        return VIR_CONNECT_CERT_ACCEPT_ONCE;
    if (strcmp(trust->answer, "always") == 0)
        return VIR_CONNECT_CERT_ACCEPT_ALWAYS;
    return VIR_CONNECT_CERT_REJECT;
}

/* A TCP connection to host:port, or -1. */
static int
tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res, *ai;
    int fd = -1, rc;

    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        printf("Cannot resolve %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        printf("Cannot connect to %s port %s\n", host, port);
    return fd;
}

static void
usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --ca FILE --cert FILE --key FILE [--trust once|always|never]\n"
            "          [--known-servers FILE] HOST:PORT\n", argv0);
    exit(2);
}

int
main(int argc, char **argv)
{
    static const struct option options[] = {
        { "ca", required_argument, NULL, 'c' },
        { "cert", required_argument, NULL, 'e' },
        { "key", required_argument, NULL, 'k' },
        { "trust", required_argument, NULL, 't' },
        { "known-servers", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    const char *ca = NULL, *cert = NULL, *key = NULL, *known = NULL;
    struct trust trust = { NULL, NULL };
    char host[256], connect_host[256];
    const char *port;
    char *colon, *dn, *end;
    long port_number;
    virPKIContextPtr ctx = NULL;
    virPKISessionPtr session = NULL;
    int opt, fd = -1, ret = 1;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'c': ca = optarg; break;
        case 'e': cert = optarg; break;
        case 'k': key = optarg; break;
        case 's': known = optarg; break;
        case 't':
            if (strcmp(optarg, "once") && strcmp(optarg, "always") && strcmp(optarg, "never"))
                usage(argv[0]);
            trust.preset = optarg;
            break;
        default: usage(argv[0]);
        }
    }
    if (!ca || !cert || !key || optind != argc - 1)
        usage(argv[0]);

    /* HOST:PORT or [IPv6]:PORT; the host goes to the library as given. */
    colon = strrchr(argv[optind], ':');
    if (!colon || colon == argv[optind] || !colon[1] ||
        (size_t)(colon - argv[optind]) >= sizeof(host))
        usage(argv[0]);
    snprintf(host, sizeof(host), "%.*s", (int)(colon - argv[optind]), argv[optind]);
    port = colon + 1;
    port_number = strtol(port, &end, 10);
    if (*end || port_number < 1 || port_number > 65535)
        usage(argv[0]);
    if (host[0] == '[' && host[strlen(host) - 1] == ']')
        snprintf(connect_host, sizeof(connect_host), "%.*s", (int)strlen(host) - 2, host + 1);
    else
        snprintf(connect_host, sizeof(connect_host), "%s", host);

    /* A server that drops the connection must not kill us with SIGPIPE (libvirt ignores it
     * too). */
    signal(SIGPIPE, SIG_IGN);

    if (!(ctx = virPKIContextNew(0)))
        return report_failure("Creating the context");
    if (virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, ca) < 0 ||
        virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CLIENT_CERT, cert) < 0 ||
        virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CLIENT_KEY, key) < 0) {
        report_failure("Loading the credentials");
        goto cleanup;
    }
    if (known && virPKIContextSetKnownServersFile(ctx, known) < 0) {
        report_failure("Opening the known-servers file");
        goto cleanup;
    }
    /* &trust outlives the context, so no free callback is needed. */
    if (virPKIContextSetCertificateValidator(ctx, validator, &trust, NULL) < 0) {
        report_failure("Setting the validator");
        goto cleanup;
    }

    printf("Connecting to %s port %s...\n", host, port);
    if ((fd = tcp_connect(connect_host, port)) < 0)
        goto cleanup;
    session = virPKISessionNewClient(ctx, fd, host, (int)port_number,
                                     VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    if (!session) {
        char what[600];
        snprintf(what, sizeof(what), "Connection to %s:%s", host, port);
        report_failure(what);
        goto cleanup;
    }

    printf("Connected to %s:%s: ", host, port);
    if (!trust.answer)
        printf("the certificate is pinned, nobody was asked.\n");
    else if (strcmp(trust.answer, "always") == 0 && known)
        printf("the certificate was accepted and recorded in %s.\n", known);
    else
        printf("the certificate was accepted for this connection.\n");
    if ((dn = virPKISessionPeerDN(session))) {
        printf("Server: %s\n", dn);
        virPKIFree(dn);
    }
    if (virPKISessionClose(session) < 0)
        report_failure("Closing the session");
    ret = 0;

 cleanup:
    virPKISessionFree(session);
    if (fd >= 0)
        close(fd);
    virPKIContextFree(ctx);
    return ret;
}
