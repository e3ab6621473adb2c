/*
 * The per-thread last error, virPKIFree, virPKIVersion, and the enum values of API.md.
 */
#include "check.h"

#include <pthread.h>

#ifndef EXPECTED_VERSION
#error "EXPECTED_VERSION must be Cargo.toml's version"
#endif

/* The header must carry API.md's numbers: they are the ABI. */
static void test_enum_values(void)
{
    int codes[] = {
        VIR_PKI_OK, VIR_PKI_ERR_INVALID_ARG, VIR_PKI_ERR_IO, VIR_PKI_ERR_PARSE,
        VIR_PKI_ERR_WRONG_TYPE, VIR_PKI_ERR_TOO_LARGE, VIR_PKI_ERR_INSECURE_PERMISSIONS,
        VIR_PKI_ERR_KEY_MISMATCH, VIR_PKI_ERR_NO_CA, VIR_PKI_ERR_EXPIRED,
        VIR_PKI_ERR_NOT_YET_VALID, VIR_PKI_ERR_UNKNOWN_ISSUER, VIR_PKI_ERR_NOT_CA,
        VIR_PKI_ERR_KEY_USAGE, VIR_PKI_ERR_PURPOSE, VIR_PKI_ERR_REVOKED,
        VIR_PKI_ERR_BAD_SIGNATURE, VIR_PKI_ERR_HOSTNAME_MISMATCH, VIR_PKI_ERR_DN_NOT_ALLOWED,
        VIR_PKI_ERR_REJECTED, VIR_PKI_ERR_STORE, VIR_PKI_ERR_TLS, VIR_PKI_ERR_INTERNAL,
    };
    for (int i = 0; i < (int)(sizeof codes / sizeof codes[0]); i++)
        CHECK_INT(codes[i], i);

    int types[] = {
        VIR_CONNECT_CERT_CA_CERT, VIR_CONNECT_CERT_CA_CRL, VIR_CONNECT_CERT_CLIENT_KEY,
        VIR_CONNECT_CERT_CLIENT_CERT, VIR_CONNECT_CERT_SERVER_TRUSTED,
        VIR_CONNECT_CERT_SERVER_KEY, VIR_CONNECT_CERT_SERVER_CERT,
    };
    for (int i = 0; i < (int)(sizeof types / sizeof types[0]); i++)
        CHECK_INT(types[i], i);

    CHECK_INT(VIR_CONNECT_CERT_VALIDATE_CHANGED, 1);
    CHECK_INT(VIR_CONNECT_CERT_VALIDATE_SAME_KEY, 2);
    CHECK_INT(VIR_CONNECT_CERT_VALIDATE_UNVERIFIED, 4);
    CHECK_INT(VIR_CONNECT_CERT_REJECT, 0);
    CHECK_INT(VIR_CONNECT_CERT_ACCEPT_ONCE, 1);
    CHECK_INT(VIR_CONNECT_CERT_ACCEPT_ALWAYS, 2);
    CHECK_INT(VIR_PKI_CONTEXT_REQUIRE_SAN, 1);
    CHECK_INT(VIR_PKI_CONTEXT_PROMPT_UNVERIFIED, 2);
    CHECK_INT(VIR_PKI_CONTEXT_NO_SANITY, 4);
    CHECK_INT(VIR_PKI_ROLE_CLIENT, 0);
    CHECK_INT(VIR_PKI_ROLE_SERVER, 1);
    CHECK_INT(VIR_PKI_VERIFY_NO_VERIFY, 1);
    CHECK_INT(VIR_PKI_SESSION_LIBVIRT_CONFIRM, 1);
}

static void test_version(void)
{
    const char *v = virPKIVersion();
    CHECK_STR(v, EXPECTED_VERSION);
    /* A static string: the same pointer every time, nothing to free. */
    CHECK(virPKIVersion() == v);
    /* Asking for the version is not a failure. */
    virPKIResetLastError();
    (void)virPKIVersion();
    CHECK_INT(virPKIGetLastErrorCode(), VIR_PKI_OK);
}

static void test_fresh_thread_has_no_error(void)
{
    CHECK_INT(virPKIGetLastErrorCode(), VIR_PKI_OK);
    CHECK(virPKIGetLastErrorMessage() == NULL);
}

static void test_failure_success_reset(void)
{
    /* A failure sets the code and a message. */
    CHECK(virPKIContextNew(1u << 31) == NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "flags");
    char *before = strdup(virPKIGetLastErrorMessage());

    /* A successful call does not clear it. */
    virPKIContextPtr ctx = virPKIContextNew(0);
    CHECK(ctx != NULL);
    char *pem = read_fixture("client.pem");
    char *dn = virPKICertGetDN(pem);
    CHECK(dn != NULL);
    CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
    CHECK_STR(virPKIGetLastErrorMessage(), before);

    /* A later failure replaces it, and the message names the file. */
    const char *missing = fixture("no-such-file.pem");
    CHECK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, missing) == -1);
    CHECK_ERROR(VIR_PKI_ERR_IO);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), missing);

    /* Reset clears both, and is harmless twice. */
    virPKIResetLastError();
    CHECK_INT(virPKIGetLastErrorCode(), VIR_PKI_OK);
    CHECK(virPKIGetLastErrorMessage() == NULL);
    virPKIResetLastError();
    CHECK_INT(virPKIGetLastErrorCode(), VIR_PKI_OK);

    free(before);
    free(pem);
    virPKIFree(dn);
    virPKIContextFree(ctx);
}

struct thread_errors {
    int code_at_start;
    int had_message_at_start;
    int code_after_failure;
};

static void *fail_in_thread(void *arg)
{
    struct thread_errors *r = arg;
    r->code_at_start = virPKIGetLastErrorCode();
    r->had_message_at_start = virPKIGetLastErrorMessage() != NULL;
    /* A different failure from the main thread's. */
    (void)virPKIDNMatch(NULL, "CN=x");
    r->code_after_failure = virPKIGetLastErrorCode();
    return NULL;
}

static void test_errors_are_per_thread(void)
{
    virPKIResetLastError();
    CHECK(virPKIContextAddCertDataFile(NULL, VIR_CONNECT_CERT_CA_CERT, "x") == -1);
    CHECK(virPKIContextAddCertData(NULL, 0, NULL) == -1);
    const char *missing = fixture("missing.pem");
    virPKIContextPtr ctx = new_context(0, 0);
    CHECK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, missing) == -1);
    CHECK_ERROR(VIR_PKI_ERR_IO);

    struct thread_errors r;
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, fail_in_thread, &r), 0);
    pthread_join(t, NULL);
    /* The new thread started clean and saw its own failure ... */
    CHECK_INT(r.code_at_start, VIR_PKI_OK);
    CHECK(!r.had_message_at_start);
    CHECK_INT(r.code_after_failure, VIR_PKI_ERR_INVALID_ARG);
    /* ... and this thread's error is untouched. */
    CHECK_ERROR(VIR_PKI_ERR_IO);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), missing);
    virPKIContextFree(ctx);
    virPKIResetLastError();
}

static void test_free(void)
{
    /* NULL does nothing, and is not an error. */
    virPKIResetLastError();
    virPKIFree(NULL);
    CHECK_INT(virPKIGetLastErrorCode(), VIR_PKI_OK);
    /* Strings the library returns are the caller's (valgrind and ASan check the pairing). */
    char *pem = read_fixture("server.pem");
    char *fp = virPKICertFingerprint(pem);
    CHECK(fp != NULL);
    virPKIFree(fp);
    free(pem);
}

int main(void)
{
    check_watchdog(300);
    test_fresh_thread_has_no_error();
    test_enum_values();
    test_version();
    test_failure_success_reset();
    test_errors_are_per_thread();
    test_free();
    return check_done();
}
