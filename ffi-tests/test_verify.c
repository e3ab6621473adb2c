/*
 * Verification: virPKIContextVerifyServer and virPKIContextVerifyClient, with the verify time,
 * pinned certificates, the validator callback (arguments, answers, freecb), the known-servers
 * file and the allowed-DN list.
 */
#include "check.h"

/* What the validator saw on its last call, and what it answers. */
struct probe {
    int calls;
    int frees;
    int answer;
    int trusted;
    unsigned flags;
    char host[64];
    char fingerprint[80];
};

static int validate(const char *hostname, const char *cert, int trusted, unsigned int flags,
                    void *opaque)
{
    struct probe *p = opaque;
    p->calls++;
    p->trusted = trusted;
    p->flags = flags;
    snprintf(p->host, sizeof p->host, "%s", hostname ? hostname : "(null)");
    /* Calling back into the library from a validator works: an application shows this. */
    char *fp = virPKICertFingerprint(cert);
    snprintf(p->fingerprint, sizeof p->fingerprint, "%s", fp ? fp : "(none)");
    virPKIFree(fp);
    return p->answer;
}

static void release(void *opaque)
{
    ((struct probe *)opaque)->frees++;
}

static char *server, *server_fp, *client;

static void test_server_arguments(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    char *key = read_fixture("server-key.pem");
    char *huge = big_string(2 * 1024 * 1024);

    CHECK_FAILS(virPKIContextVerifyServer(NULL, "localhost", 0, server, 0),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, NULL, 0, server, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, NULL, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "", 0, server, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, "", 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "local\xffhost", 0, server, 0),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", -1, server, 0),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 65536, server, 0),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 65535, server, 0));
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, server, 2), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, server, 1u << 31),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, "garbage", 0), VIR_PKI_ERR_PARSE);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, key, 0), VIR_PKI_ERR_WRONG_TYPE);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, huge, 0), VIR_PKI_ERR_TOO_LARGE);

    CHECK_FAILS(virPKIContextVerifyClient(NULL, client, NULL, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyClient(ctx, NULL, NULL, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyClient(ctx, "", NULL, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyClient(ctx, "\xfe", NULL, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyClient(ctx, client, NULL, 2), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextVerifyClient(ctx, "garbage", NULL, 0), VIR_PKI_ERR_PARSE);
    CHECK_FAILS(virPKIContextVerifyClient(ctx, key, NULL, 0), VIR_PKI_ERR_WRONG_TYPE);
    CHECK_FAILS(virPKIContextVerifyClient(ctx, huge, NULL, 0), VIR_PKI_ERR_TOO_LARGE);

    free(key);
    free(huge);
    virPKIContextFree(ctx);
}

/* Verifies fixture `name` for `host` on `ctx`: 0 or the error code. */
static int server_code(virPKIContextPtr ctx, const char *host, const char *name, unsigned flags)
{
    char *pem = read_fixture(name);
    virPKIResetLastError();
    int r = virPKIContextVerifyServer(ctx, host, 0, pem, flags);
    free(pem);
    if (r == 0)
        return 0;
    if (r != -1 || virPKIGetLastErrorMessage() == NULL)
        return -1000; /* not a documented outcome */
    return virPKIGetLastErrorCode();
}

static void test_server_outcomes(void)
{
    virPKIContextPtr none = new_context(0, 0);
    CHECK_INT(server_code(none, "localhost", "server.pem", 0), VIR_PKI_ERR_NO_CA);
    virPKIContextFree(none);

    virPKIContextPtr ctx = new_context(0, 1);
    CHECK_INT(server_code(ctx, "localhost", "server.pem", 0), 0);
    CHECK_INT(server_code(ctx, "127.0.0.1", "server.pem", 0), 0);
    CHECK_INT(server_code(ctx, "other.example", "server.pem", 0), VIR_PKI_ERR_HOSTNAME_MISMATCH);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "other.example");
    CHECK_INT(server_code(ctx, "127.0.0.2", "server.pem", 0), VIR_PKI_ERR_HOSTNAME_MISMATCH);
    CHECK_INT(server_code(ctx, "localhost", "server-expired.pem", 0), VIR_PKI_ERR_EXPIRED);
    CHECK_INT(server_code(ctx, "localhost", "server-future.pem", 0), VIR_PKI_ERR_NOT_YET_VALID);
    CHECK_INT(server_code(ctx, "localhost", "server-ca2.pem", 0), VIR_PKI_ERR_UNKNOWN_ISSUER);
    CHECK_INT(server_code(ctx, "localhost", "selfsigned.pem", 0), VIR_PKI_ERR_UNKNOWN_ISSUER);
    /* A client certificate is not for a server (its CN matches the host asked for). */
    CHECK_INT(server_code(ctx, "client1", "client.pem", 0), VIR_PKI_ERR_PURPOSE);
    /* A certificate without SANs: the Common Name counts, unless REQUIRE_SAN. */
    CHECK_INT(server_code(ctx, "localhost", "server-cn-only.pem", 0), 0);
    virPKIContextPtr strict = new_context(VIR_PKI_CONTEXT_REQUIRE_SAN, 1);
    CHECK_INT(server_code(strict, "localhost", "server-cn-only.pem", 0),
              VIR_PKI_ERR_HOSTNAME_MISMATCH);
    CHECK_INT(server_code(strict, "localhost", "server.pem", 0), 0);
    virPKIContextFree(strict);

    /* Revocation applies once the CA's CRL is loaded. */
    CHECK_INT(server_code(ctx, "localhost", "server-revoked.pem", 0), 0);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CRL, fixture("crl.pem")));
    CHECK_INT(server_code(ctx, "localhost", "server-revoked.pem", 0), VIR_PKI_ERR_REVOKED);
    CHECK_INT(server_code(ctx, "localhost", "server.pem", 0), 0);

    /* NO_VERIFY accepts whatever is presented. */
    CHECK_INT(server_code(ctx, "other.example", "selfsigned.pem", VIR_PKI_VERIFY_NO_VERIFY), 0);
    CHECK_INT(server_code(ctx, "localhost", "server-revoked.pem", VIR_PKI_VERIFY_NO_VERIFY), 0);
    virPKIContextFree(ctx);
}

static void test_verify_time(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    CHECK_FAILS(virPKIContextSetVerifyTime(NULL, FIXTURE_NOW), VIR_PKI_ERR_INVALID_ARG);
    /* 2025-06-01: the expired certificate was valid then. */
    CHECK_OK(virPKIContextSetVerifyTime(ctx, 1748736000LL));
    CHECK_INT(server_code(ctx, "localhost", "server-expired.pem", 0), 0);
    CHECK_INT(server_code(ctx, "localhost", "server-future.pem", 0), VIR_PKI_ERR_NOT_YET_VALID);
    /* 2027-06-01: the future certificate is current, the expired one still expired. */
    CHECK_OK(virPKIContextSetVerifyTime(ctx, 1811808000LL));
    CHECK_INT(server_code(ctx, "localhost", "server-future.pem", 0), 0);
    CHECK_INT(server_code(ctx, "localhost", "server-expired.pem", 0), VIR_PKI_ERR_EXPIRED);
    /* 2031-01-01: the CA itself has expired. */
    CHECK_OK(virPKIContextSetVerifyTime(ctx, 1924992000LL));
    CHECK_INT(server_code(ctx, "localhost", "server.pem", 0), VIR_PKI_ERR_EXPIRED);
    virPKIContextFree(ctx);
}

static void test_pinned(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_TRUSTED,
                                          fixture("selfsigned.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_TRUSTED,
                                          fixture("server-expired.pem")));
    /* Pinned: an unknown issuer is forgiven ... */
    CHECK_INT(server_code(ctx, "localhost", "selfsigned.pem", 0), 0);
    /* ... an expired certificate never is. */
    CHECK_INT(server_code(ctx, "localhost", "server-expired.pem", 0), VIR_PKI_ERR_EXPIRED);
    /* Pinning one certificate does not vouch for another. */
    CHECK_INT(server_code(ctx, "localhost", "server-ca2.pem", 0), VIR_PKI_ERR_UNKNOWN_ISSUER);

    /* The validator hears that a pinned certificate is trusted. */
    struct probe p = {.answer = VIR_CONNECT_CERT_ACCEPT_ONCE};
    CHECK_OK(virPKIContextSetCertificateValidator(ctx, validate, &p, release));
    CHECK_INT(server_code(ctx, "localhost", "selfsigned.pem", 0), 0);
    CHECK_INT(p.calls, 0); /* accepted as pinned before any question */
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_TRUSTED,
                                          fixture("server.pem")));
    CHECK_INT(server_code(ctx, "localhost", "server.pem", 0), 0);
    CHECK_INT(p.calls, 1);
    CHECK_INT(p.trusted, 1);
    CHECK_INT(p.flags, 0);
    virPKIContextFree(ctx);
    CHECK_INT(p.frees, 1);
}

static void test_validator_arguments_and_answers(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    struct probe p = {.answer = VIR_CONNECT_CERT_ACCEPT_ONCE};
    CHECK_FAILS(virPKIContextSetCertificateValidator(NULL, validate, &p, release),
                VIR_PKI_ERR_INVALID_ARG);
    /* A failed set leaves the opaque the caller's: not released. */
    CHECK_INT(p.frees, 0);
    CHECK_OK(virPKIContextSetCertificateValidator(ctx, validate, &p, release));

    /* hostname exactly as given (not lower-cased), the leaf as PEM, not trusted, no flags. */
    CHECK_INT(server_code(ctx, "LocalHost", "server.pem", 0), 0);
    CHECK_INT(p.calls, 1);
    CHECK_STR(p.host, "LocalHost");
    CHECK_STR(p.fingerprint, server_fp);
    CHECK_INT(p.trusted, 0);
    CHECK_INT(p.flags, 0);

    /* Only 1 and 2 accept. */
    int rejecting[] = {VIR_CONNECT_CERT_REJECT, 3, -1, 42};
    for (size_t i = 0; i < sizeof rejecting / sizeof rejecting[0]; i++) {
        p.answer = rejecting[i];
        CHECK_INT(server_code(ctx, "localhost", "server.pem", 0), VIR_PKI_ERR_REJECTED);
        CHECK_CONTAINS(virPKIGetLastErrorMessage(), "localhost");
    }
    p.answer = VIR_CONNECT_CERT_ACCEPT_ALWAYS; /* no known-servers file: accepted this time */
    CHECK_INT(server_code(ctx, "localhost", "server.pem", 0), 0);
    CHECK_INT(p.calls, 6);

    /* Not asked: under NO_VERIFY, and about a certificate that failed validation. */
    p.answer = VIR_CONNECT_CERT_ACCEPT_ONCE;
    CHECK_INT(server_code(ctx, "localhost", "server.pem", VIR_PKI_VERIFY_NO_VERIFY), 0);
    CHECK_INT(server_code(ctx, "localhost", "selfsigned.pem", 0), VIR_PKI_ERR_UNKNOWN_ISSUER);
    CHECK_INT(server_code(ctx, "localhost", "server-expired.pem", 0), VIR_PKI_ERR_EXPIRED);
    CHECK_INT(p.calls, 6);

    /* freecb: once when replaced, once when the context goes; never twice. */
    struct probe q = {.answer = VIR_CONNECT_CERT_REJECT};
    CHECK_OK(virPKIContextSetCertificateValidator(ctx, validate, &q, release));
    CHECK_INT(p.frees, 1);
    CHECK_INT(q.frees, 0);
    CHECK_INT(server_code(ctx, "localhost", "server.pem", 0), VIR_PKI_ERR_REJECTED);
    CHECK_INT(q.calls, 1);
    CHECK_INT(p.calls, 6);
    virPKIContextFree(ctx);
    CHECK_INT(q.frees, 1);
    CHECK_INT(p.frees, 1);

    /* Removing the validator (NULL cb) releases the old one, and accepts again. */
    struct probe r = {.answer = VIR_CONNECT_CERT_REJECT};
    ctx = new_context(0, 1);
    CHECK_OK(virPKIContextSetCertificateValidator(ctx, validate, &r, release));
    CHECK_OK(virPKIContextSetCertificateValidator(ctx, NULL, NULL, NULL));
    CHECK_INT(r.frees, 1);
    CHECK_INT(server_code(ctx, "localhost", "server.pem", 0), 0);
    CHECK_INT(r.calls, 0);
    virPKIContextFree(ctx);
    CHECK_INT(r.frees, 1);
}

static void test_prompt_unverified(void)
{
    virPKIContextPtr ctx = new_context(VIR_PKI_CONTEXT_PROMPT_UNVERIFIED, 1);
    struct probe p = {.answer = VIR_CONNECT_CERT_ACCEPT_ONCE};
    CHECK_OK(virPKIContextSetCertificateValidator(ctx, validate, &p, release));
    /* Unknown issuer, and host name: asked, with UNVERIFIED. */
    CHECK_INT(server_code(ctx, "localhost", "selfsigned.pem", 0), 0);
    CHECK_INT(p.calls, 1);
    CHECK_INT(p.flags, VIR_CONNECT_CERT_VALIDATE_UNVERIFIED);
    CHECK_INT(p.trusted, 0);
    CHECK_INT(server_code(ctx, "other.example", "server.pem", 0), 0);
    CHECK_INT(p.calls, 2);
    CHECK_INT(p.flags, VIR_CONNECT_CERT_VALIDATE_UNVERIFIED);
    p.answer = VIR_CONNECT_CERT_REJECT;
    CHECK_INT(server_code(ctx, "localhost", "selfsigned.pem", 0), VIR_PKI_ERR_REJECTED);
    /* A verified certificate: asked without UNVERIFIED. */
    CHECK_INT(server_code(ctx, "localhost", "server.pem", 0), VIR_PKI_ERR_REJECTED);
    CHECK_INT(p.flags, 0);
    /* Expired: never asked. */
    p.answer = VIR_CONNECT_CERT_ACCEPT_ONCE;
    int calls = p.calls;
    CHECK_INT(server_code(ctx, "localhost", "server-expired.pem", 0), VIR_PKI_ERR_EXPIRED);
    CHECK_INT(p.calls, calls);
    virPKIContextFree(ctx);
    CHECK_INT(p.frees, 1);
}

static void test_known_servers(void)
{
    char *dir = make_temp_dir();
    char known[4200];
    snprintf(known, sizeof known, "%s/sub/known_servers", dir);

    virPKIContextPtr ctx = new_context(VIR_PKI_CONTEXT_PROMPT_UNVERIFIED, 1);
    CHECK_FAILS(virPKIContextSetKnownServersFile(NULL, known), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextSetKnownServersFile(ctx, NULL), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextSetKnownServersFile(ctx, ""), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextSetKnownServersFile(ctx, "\xff"), VIR_PKI_ERR_INVALID_ARG);
    CHECK_OK(virPKIContextSetKnownServersFile(ctx, known));
    struct probe p = {.answer = VIR_CONNECT_CERT_ACCEPT_ONCE};
    CHECK_OK(virPKIContextSetCertificateValidator(ctx, validate, &p, release));

    /* ACCEPT_ONCE records nothing. */
    char *pem = read_fixture("server.pem");
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 16514, pem, 0));
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 16514, pem, 0));
    CHECK_INT(p.trusted, 0);
    /* ACCEPT_ALWAYS records (host, port) -> certificate, in the file. */
    p.answer = VIR_CONNECT_CERT_ACCEPT_ALWAYS;
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 16514, pem, 0));
    CHECK_INT(p.trusted, 0);
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 16514, pem, 0));
    CHECK_INT(p.trusted, 1);
    /* A self-signed server accepted always while unverified. */
    char *self = read_fixture("selfsigned.pem");
    CHECK_OK(virPKIContextVerifyServer(ctx, "127.0.0.1", 16514, self, 0));
    CHECK_INT(p.flags, VIR_CONNECT_CERT_VALIDATE_UNVERIFIED);
    CHECK(access(known, F_OK) == 0);
    virPKIContextFree(ctx);
    CHECK_INT(p.frees, 1);

    /* A second context on the same file sees both. */
    virPKIContextPtr again = new_context(0, 1);
    CHECK_OK(virPKIContextSetKnownServersFile(again, known));
    struct probe q = {.answer = VIR_CONNECT_CERT_REJECT};
    CHECK_OK(virPKIContextSetCertificateValidator(again, validate, &q, release));
    CHECK_FAILS(virPKIContextVerifyServer(again, "localhost", 16514, pem, 0), VIR_PKI_ERR_REJECTED);
    CHECK_INT(q.trusted, 1);
    CHECK_INT(q.flags, 0);
    /* Keyed by port: another port knows nothing. */
    CHECK_FAILS(virPKIContextVerifyServer(again, "localhost", 22, pem, 0), VIR_PKI_ERR_REJECTED);
    CHECK_INT(q.trusted, 0);
    /* The recorded self-signed certificate is pinned for its host: no question asked. */
    int calls = q.calls;
    CHECK_OK(virPKIContextVerifyServer(again, "127.0.0.1", 16514, self, 0));
    CHECK_INT(q.calls, calls);
    CHECK_FAILS(virPKIContextVerifyServer(again, "127.0.0.1", 22, self, 0),
                VIR_PKI_ERR_UNKNOWN_ISSUER);

    /* The host now presents another certificate: CHANGED; a renewal keeps the key. */
    char *newkey = read_fixture("server-newkey.pem");
    char *renewed = read_fixture("server-renewed.pem");
    CHECK_FAILS(virPKIContextVerifyServer(again, "localhost", 16514, newkey, 0),
                VIR_PKI_ERR_REJECTED);
    CHECK_INT(q.trusted, 0);
    CHECK_INT(q.flags, VIR_CONNECT_CERT_VALIDATE_CHANGED);
    CHECK_FAILS(virPKIContextVerifyServer(again, "localhost", 16514, renewed, 0),
                VIR_PKI_ERR_REJECTED);
    CHECK_INT(q.flags, VIR_CONNECT_CERT_VALIDATE_CHANGED | VIR_CONNECT_CERT_VALIDATE_SAME_KEY);
    /* Accepting the renewal always replaces the entry. */
    q.answer = VIR_CONNECT_CERT_ACCEPT_ALWAYS;
    CHECK_OK(virPKIContextVerifyServer(again, "localhost", 16514, renewed, 0));
    q.answer = VIR_CONNECT_CERT_REJECT;
    CHECK_FAILS(virPKIContextVerifyServer(again, "localhost", 16514, renewed, 0),
                VIR_PKI_ERR_REJECTED);
    CHECK_INT(q.trusted, 1);
    CHECK_FAILS(virPKIContextVerifyServer(again, "localhost", 16514, pem, 0), VIR_PKI_ERR_REJECTED);
    CHECK_INT(q.flags, VIR_CONNECT_CERT_VALIDATE_CHANGED | VIR_CONNECT_CERT_VALIDATE_SAME_KEY);
    virPKIContextFree(again);
    CHECK_INT(q.frees, 1);

    /* A directory where the file should be cannot be a store. */
    virPKIContextPtr bad = new_context(0, 1);
    virPKIResetLastError();
    CHECK(virPKIContextSetKnownServersFile(bad, dir) == -1);
    CHECK(virPKIGetLastErrorCode() == VIR_PKI_ERR_STORE ||
          virPKIGetLastErrorCode() == VIR_PKI_ERR_IO);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), dir);
    virPKIContextFree(bad);

    free(pem);
    free(self);
    free(newkey);
    free(renewed);
    remove_tree(dir);
}

static void test_client(void)
{
    virPKIContextPtr none = new_context(0, 0);
    CHECK_FAILS(virPKIContextVerifyClient(none, client, NULL, 0), VIR_PKI_ERR_NO_CA);
    virPKIContextFree(none);

    virPKIContextPtr ctx = new_context(0, 1);
    char *dn = NULL;
    CHECK_OK(virPKIContextVerifyClient(ctx, client, &dn, 0));
    CHECK_STR(dn, "C=GB,O=Test,CN=client1");
    virPKIFree(dn);
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));

    /* On failure *dnOut is left alone. */
    char *other = read_fixture("client-ca2.pem");
    char sentinel[] = "untouched";
    dn = sentinel;
    CHECK_FAILS(virPKIContextVerifyClient(ctx, other, &dn, 0), VIR_PKI_ERR_UNKNOWN_ISSUER);
    CHECK(dn == sentinel);
    /* NO_VERIFY lets it in, with its DN. */
    dn = NULL;
    CHECK_OK(virPKIContextVerifyClient(ctx, other, &dn, VIR_PKI_VERIFY_NO_VERIFY));
    CHECK_STR(dn, "C=GB,O=Test,CN=client2");
    virPKIFree(dn);

    /* A CA is not a client. */
    char *ca = read_fixture("ca.pem");
    CHECK_FAILS(virPKIContextVerifyClient(ctx, ca, NULL, 0), VIR_PKI_ERR_NOT_CA);
    char *expired = read_fixture("server-expired.pem");
    CHECK_FAILS(virPKIContextVerifyClient(ctx, expired, NULL, 0), VIR_PKI_ERR_EXPIRED);

    /* The allowed-DN list: -1 nobody checked, 0 nobody allowed, else the patterns. */
    const char *exact[] = {"C=GB,O=Test,CN=client1"};
    const char *wild[] = {"CN=nobody", "C=GB,O=Test,CN=client?"};
    const char *star[] = {"C=GB,O=*"};
    const char *wrong[] = {"CN=client1", "C=GB,O=Test,CN=client", "C=GB,O=Test,CN=client1,*"};
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, NULL, 0));
    CHECK_FAILS(virPKIContextVerifyClient(ctx, client, NULL, 0), VIR_PKI_ERR_DN_NOT_ALLOWED);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "C=GB,O=Test,CN=client1");
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, exact, 1));
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, wild, 2));
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));
    /* Only the first n patterns count. */
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, wild, 1));
    CHECK_FAILS(virPKIContextVerifyClient(ctx, client, NULL, 0), VIR_PKI_ERR_DN_NOT_ALLOWED);
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, star, 1));
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, wrong, 3));
    CHECK_FAILS(virPKIContextVerifyClient(ctx, client, NULL, 0), VIR_PKI_ERR_DN_NOT_ALLOWED);
    /* NO_VERIFY overrides the list too (libvirt's tls_no_verify_certificate). */
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, VIR_PKI_VERIFY_NO_VERIFY));
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, NULL, -1));
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));

    free(other);
    free(ca);
    free(expired);
    virPKIContextFree(ctx);
}

int main(void)
{
    check_watchdog(300);
    server = read_fixture("server.pem");
    server_fp = read_fixture("server.fp");
    client = read_fixture("client.pem");
    test_server_arguments();
    test_server_outcomes();
    test_verify_time();
    test_pinned();
    test_validator_arguments_and_answers();
    test_prompt_unverified();
    test_known_servers();
    test_client();
    free(server);
    free(server_fp);
    free(client);
    return check_done();
}
