/*
 * The default context and the proposal's process-wide functions: virPKIDefaultContext,
 * virConnectAddCertData(File), virConnectSetCertificateValidator.
 *
 * The default context lives for the whole process, so the order of the tests matters: it
 * starts empty, and each test leaves it as the next one expects.
 */
#include "check.h"

struct probe {
    int calls;
    int frees;
    int answer;
    int trusted;
    unsigned flags;
    char host[64];
};

static int validate(const char *hostname, const char *cert, int trusted, unsigned int flags,
                    void *opaque)
{
    struct probe *p = opaque;
    p->calls++;
    p->trusted = trusted;
    p->flags = flags;
    snprintf(p->host, sizeof p->host, "%s", hostname);
    (void)cert;
    return p->answer;
}

static void release(void *opaque)
{
    ((struct probe *)opaque)->frees++;
}

static void test_default_context_is_one_and_never_freed(void)
{
    virPKIContextPtr ctx = virPKIDefaultContext();
    CHECK(ctx != NULL);
    CHECK(virPKIDefaultContext() == ctx);
    /* Freeing it does nothing (valgrind and ASan would see a use after free below). */
    virPKIContextFree(ctx);
    virPKIContextFree(virPKIDefaultContext());
    CHECK(virPKIDefaultContext() == ctx);
    CHECK_OK(virPKIContextSetVerifyTime(ctx, FIXTURE_NOW));

    /* It starts empty. */
    char *server = read_fixture("server.pem");
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0), VIR_PKI_ERR_NO_CA);
    free(server);
}

static void test_add_cert_data(void)
{
    char *ca = read_fixture("ca.pem");
    char *key = read_fixture("server-key.pem");
    char *server = read_fixture("server.pem");
    char *huge = big_string(2 * 1024 * 1024);
    int bad_types[] = {-1, 7, 99};

    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++)
        CHECK_FAILS(virConnectAddCertData(bad_types[i], ca), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virConnectAddCertData(VIR_CONNECT_CERT_CA_CERT, NULL), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virConnectAddCertData(VIR_CONNECT_CERT_CA_CERT, ""), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virConnectAddCertData(VIR_CONNECT_CERT_CA_CERT, "\xff"),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virConnectAddCertData(VIR_CONNECT_CERT_CA_CERT, "garbage"), VIR_PKI_ERR_PARSE);
    CHECK_FAILS(virConnectAddCertData(VIR_CONNECT_CERT_CA_CERT, huge), VIR_PKI_ERR_TOO_LARGE);
    CHECK_FAILS(virConnectAddCertData(VIR_CONNECT_CERT_CA_CERT, key), VIR_PKI_ERR_WRONG_TYPE);
    CHECK_FAILS(virConnectAddCertData(VIR_CONNECT_CERT_CLIENT_KEY, ca), VIR_PKI_ERR_WRONG_TYPE);
    /* Nothing of that reached the default context ... */
    CHECK_FAILS(virPKIContextVerifyServer(virPKIDefaultContext(), "localhost", 0, server, 0),
                VIR_PKI_ERR_NO_CA);
    /* ... but this does. */
    CHECK_OK(virConnectAddCertData(VIR_CONNECT_CERT_CA_CERT, ca));
    CHECK_OK(virPKIContextVerifyServer(virPKIDefaultContext(), "localhost", 0, server, 0));

    free(ca);
    free(key);
    free(server);
    free(huge);
}

static void test_add_cert_data_file(void)
{
    char *revoked = read_fixture("server-revoked.pem");
    int bad_types[] = {-1, 7, 99};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++)
        CHECK_FAILS(virConnectAddCertDataFile(bad_types[i], fixture("crl.pem")),
                    VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virConnectAddCertDataFile(VIR_CONNECT_CERT_CA_CRL, NULL),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virConnectAddCertDataFile(VIR_CONNECT_CERT_CA_CRL, ""), VIR_PKI_ERR_INVALID_ARG);
    const char *missing = fixture("missing-crl.pem");
    CHECK_FAILS(virConnectAddCertDataFile(VIR_CONNECT_CERT_CA_CRL, missing), VIR_PKI_ERR_IO);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), missing);
    CHECK_FAILS(virConnectAddCertDataFile(VIR_CONNECT_CERT_CA_CRL, fixture("ca.pem")),
                VIR_PKI_ERR_WRONG_TYPE);
    CHECK_OK(virPKIContextVerifyServer(virPKIDefaultContext(), "localhost", 0, revoked, 0));

    CHECK_OK(virConnectAddCertDataFile(VIR_CONNECT_CERT_CA_CRL, fixture("crl.pem")));
    CHECK_FAILS(virPKIContextVerifyServer(virPKIDefaultContext(), "localhost", 0, revoked, 0),
                VIR_PKI_ERR_REVOKED);
    free(revoked);
}

static void test_set_certificate_validator(void)
{
    virPKIContextPtr ctx = virPKIDefaultContext();
    char *server = read_fixture("server.pem");
    struct probe a = {.answer = VIR_CONNECT_CERT_REJECT};
    struct probe b = {.answer = VIR_CONNECT_CERT_ACCEPT_ONCE};

    /* The validator set process-wide is the default context's. */
    CHECK_OK(virConnectSetCertificateValidator(validate, &a, release));
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0), VIR_PKI_ERR_REJECTED);
    CHECK_INT(a.calls, 1);
    CHECK_STR(a.host, "localhost");

    /* Replacing it releases the old opaque once, and only that. */
    CHECK_OK(virConnectSetCertificateValidator(validate, &b, release));
    CHECK_INT(a.frees, 1);
    CHECK_INT(b.frees, 0);
    CHECK_OK(virPKIContextVerifyServer(ctx, "127.0.0.1", 0, server, 0));
    CHECK_INT(a.calls, 1);
    CHECK_INT(b.calls, 1);
    CHECK_STR(b.host, "127.0.0.1");

    /* Freeing the default context is a no-op: the validator stays, nothing is released. */
    virPKIContextFree(ctx);
    CHECK_INT(b.frees, 0);
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0));
    CHECK_INT(b.calls, 2);

    /* A validator without freecb, then none at all: b was released exactly once. */
    struct probe c = {.answer = VIR_CONNECT_CERT_REJECT};
    CHECK_OK(virConnectSetCertificateValidator(validate, &c, NULL));
    CHECK_INT(b.frees, 1);
    CHECK_OK(virConnectSetCertificateValidator(NULL, NULL, NULL));
    CHECK_INT(c.frees, 0);
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0));
    CHECK_INT(c.calls, 0);

    /* Removing with a freecb: nothing will use that opaque, so it is released at once. */
    struct probe d = {.answer = VIR_CONNECT_CERT_REJECT};
    CHECK_OK(virConnectSetCertificateValidator(NULL, &d, release));
    CHECK_INT(d.frees, 1);
    CHECK_INT(a.frees, 1);
    CHECK_INT(b.frees, 1);
    free(server);
}

int main(void)
{
    check_watchdog(300);
    test_default_context_is_one_and_never_freed();
    test_add_cert_data();
    test_add_cert_data_file();
    test_set_certificate_validator();
    return check_done();
}
