/*
 * A libvirt-style TLS client on a GLib main loop: nothing blocks but the question to the person.
 *
 *   glib_client --ca cacert.pem --cert clientcert.pem --key clientkey.pem HOST:PORT
 *               [--trust once|always|never] [--known-servers FILE] [--timeout SECONDS]
 *
 * The same credentials, validator and messages as connect.c, driven by events instead of
 * blocking calls: a non-blocking TCP connect (each address in turn), the TLS handshake and
 * libvirt's confirmation byte with virPKISessionStartClient and virPKISessionHandshake, the fd
 * watched (g_unix_fd_add) for what virPKISessionWants says after each VIR_PKI_ERR_AGAIN; then
 * one libvirt RPC call, REMOTE_PROC_AUTH_LIST (allowed before a driver is opened), its reply
 * read and checked, and close_notify. A g_timeout_add_seconds timer (--timeout, default 30)
 * ends whatever is still waiting.
 *
 * Exit status: 0 connected and the call answered; 1 failed (the message says what and why);
 * 2 usage; 3 timed out (the message says while doing what).
 *
 * The validator runs inside virPKISessionHandshake, on the loop's thread: with --trust it
 * answers at once; without, the question on the terminal holds the loop until answered, as a
 * modal dialog would (the library asks synchronously).
 *
 * Build: make examples (or cc -Iinclude glib_client.c $(pkg-config --cflags --libs glib-2.0)
 * -Ltarget/release -lvirtpki).
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>

#include "virtpki.h"

/* Exit statuses. */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };

/* libvirt's RPC (src/rpc/virnetprotocol.x, src/remote/remote_protocol.x): a 4-byte length
 * (itself included), then program, version, procedure, type, serial and status, big-endian. */
#define REMOTE_PROGRAM 0x20008086u
#define REMOTE_PROTOCOL_VERSION 1u
#define REMOTE_PROC_AUTH_LIST 66
#define RPC_HEADER_LEN 28 /* length word + six header words */
#define RPC_MAX_REPLY 4096 /* an auth list is a few words; anything larger is not one */

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
    "VIR_PKI_ERR_AGAIN",
};

/* What the validator was told to answer (--trust), and what it answered. */
struct trust {
    const char *preset;  /* "once", "always", "never" or NULL: ask */
    const char *answer;  /* NULL until the validator is called */
};

/* Where the client is; each step runs until it would block, then waits for the fd. */
enum step { CONNECTING, HANDSHAKING, CALLING, RECEIVING, CLOSING };

/* For "Timed out after N s <step> HOST:PORT". */
static const char *const step_names[] = {
    "connecting to", "in the TLS handshake with", "sending the call to",
    "waiting for the reply from", "closing the session with",
};

struct client {
    GMainLoop *loop;
    enum step step;
    int finished, status;      /* the exit status, once finished */
    guint fd_watch;            /* 0 when none: each watch fires once, then advance() decides */
    guint timer;
    unsigned timeout;

    const char *host, *port, *known;
    int port_number;
    struct addrinfo *addresses, *next_address;
    int connect_errno;         /* of the last address tried */
    int fd;

    virPKIContextPtr ctx;
    virPKISessionPtr session;
    struct trust trust;

    unsigned char call[RPC_HEADER_LEN];
    size_t call_sent;
    unsigned char reply[RPC_MAX_REPLY];
    size_t reply_len;
};

static gboolean on_fd(gint fd, GIOCondition condition, gpointer opaque);
static void advance(struct client *c);

static const char *
error_name(int code)
{
    if (code >= 0 && code < (int)(sizeof(error_names) / sizeof(error_names[0])))
        return error_names[code];
    return "unknown error";
}

/* Ends the loop with an exit status; the first call wins. */
static void
finish(struct client *c, int status)
{
    if (!c->finished) {
        c->finished = 1;
        c->status = status;
    }
    g_main_loop_quit(c->loop);
}

/* Prints the library's last error for what failed and ends the loop (status 1). */
static void
fail_with_library_error(struct client *c, const char *what)
{
    int code = virPKIGetLastErrorCode();
    const char *message = virPKIGetLastErrorMessage();

    printf("%s failed: %s (%d): %s\n", what, error_name(code), code,
           message ? message : "no message");
    finish(c, EXIT_FAILED);
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

/* Waits once for the fd to be ready for `condition` (G_IO_IN, G_IO_OUT or both), then
 * advances: what to wait for next is decided after each step. */
static void
watch(struct client *c, GIOCondition condition)
{
    if (c->fd_watch)
        g_source_remove(c->fd_watch);
    c->fd_watch = g_unix_fd_add(c->fd, condition, on_fd, c);
}

/* After VIR_PKI_ERR_AGAIN: wait for what the session wants. Nothing wanted after AGAIN would
 * wait forever, so it is an error rather than a hang. */
static void
wait_for_session(struct client *c)
{
    int wants = virPKISessionWants(c->session);
    GIOCondition condition = 0;

    if (wants > 0 && (wants & VIR_PKI_SESSION_WANT_READ))
        condition |= G_IO_IN;
    if (wants > 0 && (wants & VIR_PKI_SESSION_WANT_WRITE))
        condition |= G_IO_OUT;
    if (!condition) {
        printf("Nothing to wait for after VIR_PKI_ERR_AGAIN (virPKISessionWants returned %d)\n",
               wants);
        finish(c, EXIT_FAILED);
        return;
    }
    watch(c, condition);
}

/* True when the last library call would have blocked (the caller then waits for the fd). */
static int
would_block(void)
{
    return virPKIGetLastErrorCode() == VIR_PKI_ERR_AGAIN;
}

/* Starts a non-blocking connect to the next address; CONNECTING waits for the fd to be
 * writable. When no address is left, fails naming the last error. */
static void
connect_next(struct client *c)
{
    while (c->next_address) {
        struct addrinfo *ai = c->next_address;

        c->next_address = ai->ai_next;
        c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       ai->ai_protocol);
        if (c->fd < 0) {
            c->connect_errno = errno;
            continue;
        }
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            watch(c, G_IO_OUT);
            return;
        }
        c->connect_errno = errno;
        close(c->fd);
        c->fd = -1;
    }
    printf("Cannot connect to %s port %s: %s\n", c->host, c->port, g_strerror(c->connect_errno));
    finish(c, EXIT_FAILED);
}

/* The fd is writable: the connect is done, for better or worse (SO_ERROR says). */
static void
connected(struct client *c)
{
    int error = 0;
    socklen_t len = sizeof(error);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
        error = errno;
    if (error) {
        c->connect_errno = error;
        close(c->fd);
        c->fd = -1;
        connect_next(c);
        return;
    }
    c->session = virPKISessionStartClient(c->ctx, c->fd, c->host, c->port_number,
                                          VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    if (!c->session) {
        fail_with_library_error(c, "Starting the session");
        return;
    }
    c->step = HANDSHAKING;
    advance(c);
}

static void
put_be32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static uint32_t
get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
handshake_done(struct client *c)
{
    char *dn;

    printf("Connected to %s:%s: ", c->host, c->port);
    if (!c->trust.answer)
        printf("the certificate is pinned, nobody was asked.\n");
    else if (strcmp(c->trust.answer, "always") == 0 && c->known)
        printf("the certificate was accepted and recorded in %s.\n", c->known);
    else
        printf("the certificate was accepted for this connection.\n");
    if ((dn = virPKISessionPeerDN(c->session))) {
        printf("Server: %s\n", dn);
        virPKIFree(dn);
    }

    /* REMOTE_PROC_AUTH_LIST: a call (type 0), serial 1, status OK (0), no arguments. */
    put_be32(c->call, RPC_HEADER_LEN);
    put_be32(c->call + 4, REMOTE_PROGRAM);
    put_be32(c->call + 8, REMOTE_PROTOCOL_VERSION);
    put_be32(c->call + 12, REMOTE_PROC_AUTH_LIST);
    put_be32(c->call + 16, 0);
    put_be32(c->call + 20, 1);
    put_be32(c->call + 24, 0);
    c->step = CALLING;
}

/* Checks the reply to the call and prints the server's authentication types. */
static int
reply_ok(struct client *c)
{
    static const char *const auth_names[] = { "none", "sasl", "polkit" };
    const unsigned char *r = c->reply;
    uint32_t count, i;

    if (get_be32(r + 4) != REMOTE_PROGRAM || get_be32(r + 8) != REMOTE_PROTOCOL_VERSION ||
        get_be32(r + 12) != REMOTE_PROC_AUTH_LIST || get_be32(r + 16) != 1 /* reply */ ||
        get_be32(r + 20) != 1 /* our serial */) {
        printf("The server's answer is not a reply to the call\n");
        return 0;
    }
    if (get_be32(r + 24) != 0) {
        printf("The server refused the call REMOTE_PROC_AUTH_LIST (status %u)\n",
               (unsigned)get_be32(r + 24));
        return 0;
    }
    if (c->reply_len < RPC_HEADER_LEN + 4 ||
        (count = get_be32(r + RPC_HEADER_LEN)) > (c->reply_len - RPC_HEADER_LEN - 4) / 4) {
        printf("The reply to REMOTE_PROC_AUTH_LIST is malformed (%zu bytes)\n", c->reply_len);
        return 0;
    }
    printf("REMOTE_PROC_AUTH_LIST: authentication");
    if (!count)
        printf(" (none listed)");
    for (i = 0; i < count; i++) {
        uint32_t type = get_be32(r + RPC_HEADER_LEN + 4 + 4 * i);
        if (type < sizeof(auth_names) / sizeof(auth_names[0]))
            printf(" %s", auth_names[type]);
        else
            printf(" %u", (unsigned)type);
    }
    printf("\n");
    return 1;
}

/* Runs the current step until it is done or would block. */
static void
advance(struct client *c)
{
    long long n;

    for (;;) {
        switch (c->step) {
        case CONNECTING:
            connected(c);
            return;

        case HANDSHAKING:
            if (virPKISessionHandshake(c->session) < 0) {
                if (would_block()) {
                    wait_for_session(c);
                } else {
                    char what[600];
                    snprintf(what, sizeof(what), "Connection to %s:%s", c->host, c->port);
                    fail_with_library_error(c, what);
                }
                return;
            }
            handshake_done(c);
            break;

        case CALLING:
            /* What Write took is queued in the session: len 0 pushes it out, 0 when gone. */
            n = virPKISessionWrite(c->session, c->call + c->call_sent,
                                   sizeof(c->call) - c->call_sent);
            if (n < 0) {
                if (would_block())
                    wait_for_session(c);
                else
                    fail_with_library_error(c, "Sending the call");
                return;
            }
            c->call_sent += (size_t)n;
            if (c->call_sent == sizeof(c->call))
                c->step = RECEIVING;
            break;

        case RECEIVING: {
            /* The length word first, then as much as it says: never more, so nothing of a
             * later message is taken. Read until AGAIN: the session may hold decrypted data
             * the fd will not signal again. */
            size_t want = c->reply_len < 4 ? 4 : get_be32(c->reply);

            if (c->reply_len == 4 && (want < RPC_HEADER_LEN || want > sizeof(c->reply))) {
                printf("The server's answer is not an RPC reply (length %zu)\n", want);
                finish(c, EXIT_FAILED);
                return;
            }
            if (c->reply_len == want && want >= RPC_HEADER_LEN) {
                if (!reply_ok(c)) {
                    finish(c, EXIT_FAILED);
                    return;
                }
                c->step = CLOSING;
                break;
            }
            n = virPKISessionRead(c->session, c->reply + c->reply_len, want - c->reply_len);
            if (n < 0) {
                if (would_block())
                    wait_for_session(c);
                else
                    fail_with_library_error(c, "Receiving the reply");
                return;
            }
            if (n == 0) {
                printf("The server closed the connection before replying\n");
                finish(c, EXIT_FAILED);
                return;
            }
            c->reply_len += (size_t)n;
            break;
        }

        case CLOSING:
            if (virPKISessionClose(c->session) < 0) {
                if (would_block()) {
                    wait_for_session(c);
                    return;
                }
                /* The call was answered: a server that hangs up first is only reported. */
                int code = virPKIGetLastErrorCode();
                const char *message = virPKIGetLastErrorMessage();
                printf("Closing the session failed: %s (%d): %s\n", error_name(code), code,
                       message ? message : "no message");
            }
            finish(c, EXIT_OK);
            return;
        }
    }
}

static gboolean
on_fd(gint fd, GIOCondition condition, gpointer opaque)
{
    struct client *c = opaque;

    (void)fd;
    (void)condition; /* HUP or ERR: the next call on the fd says what happened */
    c->fd_watch = 0; /* this one is done; advance() sets the next, if any */
    advance(c);
    return G_SOURCE_REMOVE;
}

static gboolean
on_timeout(gpointer opaque)
{
    struct client *c = opaque;

    printf("Timed out after %u s %s %s:%s\n", c->timeout, step_names[c->step], c->host, c->port);
    c->timer = 0;
    finish(c, EXIT_TIMEOUT);
    return G_SOURCE_REMOVE;
}

static void
usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --ca FILE --cert FILE --key FILE [--trust once|always|never]\n"
            "          [--known-servers FILE] [--timeout SECONDS] HOST:PORT\n", argv0);
    exit(EXIT_USAGE);
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
        { "timeout", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct client c = { .status = EXIT_FAILED, .fd = -1, .timeout = 30 };
    const char *ca = NULL, *cert = NULL, *key = NULL;
    char host[256], connect_host[256];
    char *colon, *end;
    long number;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'c': ca = optarg; break;
        case 'e': cert = optarg; break;
        case 'k': key = optarg; break;
        case 's': c.known = optarg; break;
        case 't':
            if (strcmp(optarg, "once") && strcmp(optarg, "always") && strcmp(optarg, "never"))
                usage(argv[0]);
            c.trust.preset = optarg;
            break;
        case 'T':
            errno = 0;
            number = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || number < 1 || number > 86400)
                usage(argv[0]);
            c.timeout = (unsigned)number;
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
    c.host = host;
    c.port = colon + 1;
    number = strtol(c.port, &end, 10);
    if (*end || number < 1 || number > 65535)
        usage(argv[0]);
    c.port_number = (int)number;
    if (host[0] == '[' && host[strlen(host) - 1] == ']')
        snprintf(connect_host, sizeof(connect_host), "%.*s", (int)strlen(host) - 2, host + 1);
    else
        snprintf(connect_host, sizeof(connect_host), "%s", host);

    /* A server that drops the connection must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    c.loop = g_main_loop_new(NULL, FALSE);
    if (!(c.ctx = virPKIContextNew(0))) {
        fail_with_library_error(&c, "Creating the context");
    } else if (virPKIContextAddCertDataFile(c.ctx, VIR_CONNECT_CERT_CA_CERT, ca) < 0 ||
        virPKIContextAddCertDataFile(c.ctx, VIR_CONNECT_CERT_CLIENT_CERT, cert) < 0 ||
        virPKIContextAddCertDataFile(c.ctx, VIR_CONNECT_CERT_CLIENT_KEY, key) < 0) {
        fail_with_library_error(&c, "Loading the credentials");
    } else if (c.known && virPKIContextSetKnownServersFile(c.ctx, c.known) < 0) {
        fail_with_library_error(&c, "Opening the known-servers file");
    } else if (virPKIContextSetCertificateValidator(c.ctx, validator, &c.trust, NULL) < 0) {
        /* &c.trust outlives the context, so no free callback is needed. */
        fail_with_library_error(&c, "Setting the validator");
    } else if ((rc = getaddrinfo(connect_host, c.port, &hints, &c.addresses)) != 0) {
        printf("Cannot resolve %s: %s\n", connect_host, gai_strerror(rc));
        c.addresses = NULL;
        finish(&c, EXIT_FAILED);
    } else {
        /* The name is resolved before the loop runs (getaddrinfo blocks; a program that must
         * not wait on DNS would use GResolver or a thread). */
        printf("Connecting to %s port %s...\n", c.host, c.port);
        c.next_address = c.addresses;
        c.connect_errno = EHOSTUNREACH;
        c.timer = g_timeout_add_seconds(c.timeout, on_timeout, &c);
        connect_next(&c);
        if (!c.finished)
            g_main_loop_run(c.loop);
    }
    fflush(stdout);

    if (c.timer)
        g_source_remove(c.timer);
    if (c.fd_watch)
        g_source_remove(c.fd_watch);
    virPKISessionFree(c.session);
    if (c.fd >= 0)
        close(c.fd);
    if (c.addresses)
        freeaddrinfo(c.addresses);
    virPKIContextFree(c.ctx);
    g_main_loop_unref(c.loop);
    return c.status;
}
