/*
 * Contexts and adding credentials: virPKIContextNew/Free, virPKIContextAddCertData(File),
 * virPKIContextSetAllowedDNList's arguments. Whether something was added is observed through
 * verification, the only window C has into a context.
 */
#include "check.h"

static const int all_types[] = {
    VIR_CONNECT_CERT_CA_CERT, VIR_CONNECT_CERT_CA_CRL, VIR_CONNECT_CERT_CLIENT_KEY,
    VIR_CONNECT_CERT_CLIENT_CERT, VIR_CONNECT_CERT_SERVER_TRUSTED,
    VIR_CONNECT_CERT_SERVER_KEY, VIR_CONNECT_CERT_SERVER_CERT,
};
#define NTYPES ((int)(sizeof all_types / sizeof all_types[0]))
static const int bad_types[] = {-1, 7, 99};

/* What each data type accepts, as a fixture file. */
static const char *fixture_for(int type)
{
    switch (type) {
    case VIR_CONNECT_CERT_CA_CERT: return "ca.pem";
    case VIR_CONNECT_CERT_CA_CRL: return "crl.pem";
    case VIR_CONNECT_CERT_CLIENT_KEY: return "client-key.pem";
    case VIR_CONNECT_CERT_CLIENT_CERT: return "client.pem";
    case VIR_CONNECT_CERT_SERVER_TRUSTED: return "selfsigned.pem";
    case VIR_CONNECT_CERT_SERVER_KEY: return "server-key.pem";
    default: return "server.pem";
    }
}

static int is_key_type(int type)
{
    return type == VIR_CONNECT_CERT_CLIENT_KEY || type == VIR_CONNECT_CERT_SERVER_KEY;
}

static void test_new_and_free(void)
{
    unsigned good[] = {0, VIR_PKI_CONTEXT_REQUIRE_SAN, VIR_PKI_CONTEXT_PROMPT_UNVERIFIED,
                       VIR_PKI_CONTEXT_NO_SANITY, 7};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        virPKIContextPtr ctx = virPKIContextNew(good[i]);
        CHECK(ctx != NULL);
        virPKIContextFree(ctx);
    }
    unsigned bad[] = {8, 1u << 31, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        virPKIResetLastError();
        virPKIContextPtr ctx = virPKIContextNew(bad[i]);
        CHECK(ctx == NULL);
        CHECK_ERROR(VIR_PKI_ERR_INVALID_ARG);
        virPKIContextFree(ctx);
    }
    virPKIResetLastError();
    virPKIContextFree(NULL);
    CHECK_INT(virPKIGetLastErrorCode(), VIR_PKI_OK);
}

static void test_every_type_accepts_its_data(void)
{
    for (int i = 0; i < NTYPES; i++) {
        virPKIContextPtr ctx = new_context(0, 0);
        char *pem = read_fixture(fixture_for(all_types[i]));
        CHECK_OK(virPKIContextAddCertData(ctx, all_types[i], pem));
        CHECK_OK(virPKIContextAddCertDataFile(ctx, all_types[i],
                                              fixture(fixture_for(all_types[i]))));
        free(pem);
        virPKIContextFree(ctx);
    }
}

static void test_bad_arguments(void)
{
    virPKIContextPtr ctx = new_context(0, 0);
    char *ca = read_fixture("ca.pem");

    CHECK_FAILS(virPKIContextAddCertData(NULL, VIR_CONNECT_CERT_CA_CERT, ca),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextAddCertDataFile(NULL, VIR_CONNECT_CERT_CA_CERT, fixture("ca.pem")),
                VIR_PKI_ERR_INVALID_ARG);
    for (int i = 0; i < NTYPES; i++) {
        CHECK_FAILS(virPKIContextAddCertData(ctx, all_types[i], NULL), VIR_PKI_ERR_INVALID_ARG);
        CHECK_FAILS(virPKIContextAddCertDataFile(ctx, all_types[i], NULL),
                    VIR_PKI_ERR_INVALID_ARG);
        /* Empty input, and input that is only white space. */
        CHECK_FAILS(virPKIContextAddCertData(ctx, all_types[i], ""), VIR_PKI_ERR_INVALID_ARG);
        CHECK_FAILS(virPKIContextAddCertData(ctx, all_types[i], " \n\t\n"),
                    VIR_PKI_ERR_INVALID_ARG);
        /* An empty path would be the current directory's business: refused as empty input. */
        CHECK_FAILS(virPKIContextAddCertDataFile(ctx, all_types[i], ""),
                    VIR_PKI_ERR_INVALID_ARG);
        CHECK_FAILS(virPKIContextAddCertData(ctx, all_types[i], "\xff\xfe not UTF-8"),
                    VIR_PKI_ERR_INVALID_ARG);
        CHECK_FAILS(virPKIContextAddCertData(ctx, all_types[i], "no PEM here"),
                    VIR_PKI_ERR_PARSE);
    }
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        CHECK_FAILS(virPKIContextAddCertData(ctx, bad_types[i], ca), VIR_PKI_ERR_INVALID_ARG);
        CHECK_CONTAINS(virPKIGetLastErrorMessage(), "dataType");
        CHECK_FAILS(virPKIContextAddCertDataFile(ctx, bad_types[i], fixture("ca.pem")),
                    VIR_PKI_ERR_INVALID_ARG);
    }
    CHECK_FAILS(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, "\xc3\x28.pem"),
                VIR_PKI_ERR_INVALID_ARG);

    /* A valid PEM text with one invalid UTF-8 byte in the text around it. */
    size_t len = strlen(ca);
    char *dirty = malloc(len + 8);
    memcpy(dirty, "\x80junk\n", 6);
    memcpy(dirty + 6, ca, len + 1);
    CHECK_FAILS(virPKIContextAddCertData(ctx, VIR_CONNECT_CERT_CA_CERT, dirty),
                VIR_PKI_ERR_INVALID_ARG);
    free(dirty);

    /* None of that added anything. */
    char *server = read_fixture("server.pem");
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0), VIR_PKI_ERR_NO_CA);
    free(server);
    free(ca);
    virPKIContextFree(ctx);
}

static void test_garbage_and_huge_inputs(void)
{
    virPKIContextPtr ctx = new_context(0, 0);
    /* A PEM block whose contents are not DER. */
    CHECK_FAILS(virPKIContextAddCertData(ctx, VIR_CONNECT_CERT_CA_CERT,
                                         "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n"
                                         "-----END CERTIFICATE-----\n"),
                VIR_PKI_ERR_PARSE);
    /* A block cut off before its end line. */
    char *ca = read_fixture("ca.pem");
    ca[strlen(ca) / 2] = '\0';
    CHECK_FAILS(virPKIContextAddCertData(ctx, VIR_CONNECT_CERT_CA_CERT, ca), VIR_PKI_ERR_PARSE);
    free(ca);

    /* 2 MiB is over the 1 MiB cap of certificates and the 64 KiB cap of keys. */
    char *huge = big_string(2 * 1024 * 1024);
    int capped[] = {VIR_CONNECT_CERT_CA_CERT, VIR_CONNECT_CERT_CLIENT_CERT,
                    VIR_CONNECT_CERT_SERVER_TRUSTED, VIR_CONNECT_CERT_SERVER_CERT,
                    VIR_CONNECT_CERT_CLIENT_KEY, VIR_CONNECT_CERT_SERVER_KEY};
    for (size_t i = 0; i < sizeof capped / sizeof capped[0]; i++)
        CHECK_FAILS(virPKIContextAddCertData(ctx, capped[i], huge), VIR_PKI_ERR_TOO_LARGE);
    /* A file as well: the cap is checked before reading. */
    char *dir = make_temp_dir();
    char path[4200];
    snprintf(path, sizeof path, "%s/huge.pem", dir);
    write_text(path, huge, 0600);
    CHECK_FAILS(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, path),
                VIR_PKI_ERR_TOO_LARGE);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), path);
    free(huge);
    remove_tree(dir);
    virPKIContextFree(ctx);
}

/* Text that mentions a BEGIN line but holds no complete block is a parse error for every
   type (it used to be an empty input that succeeded), and the certificate functions fail
   with PARSE too (they used to panic, caught as INTERNAL). */
static void test_no_complete_pem_block(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    const char *texts[] = {"-----BEGIN", "-----BEGIN-----",
                           "-----BEGINCERTIFICATE-----\nMAMCAQA=\n-----ENDCERTIFICATE-----\n",
                           "----BEGIN X509 CRL----\nMAMCAQA=\n----END X509 CRL----\n-----BEGIN"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (int type = VIR_CONNECT_CERT_CA_CERT; type <= VIR_CONNECT_CERT_SERVER_CERT; type++)
            CHECK_FAILS(virPKIContextAddCertData(ctx, type, texts[i]), VIR_PKI_ERR_PARSE);
        CHECK_NULL_STR(virPKICertGetDN(texts[i]), VIR_PKI_ERR_PARSE);
        CHECK_NULL_STR(virPKICertDescribe(texts[i]), VIR_PKI_ERR_PARSE);
    }
    virPKIContextFree(ctx);
}

static void test_wrong_types(void)
{
    virPKIContextPtr ctx = new_context(0, 0);
    char *key = read_fixture("server-key.pem");
    char *cert = read_fixture("server.pem");
    char *crl = read_fixture("crl.pem");
    for (int i = 0; i < NTYPES; i++) {
        int t = all_types[i];
        if (t == VIR_CONNECT_CERT_CA_CRL) {
            CHECK_FAILS(virPKIContextAddCertData(ctx, t, cert), VIR_PKI_ERR_WRONG_TYPE);
        } else if (is_key_type(t)) {
            CHECK_FAILS(virPKIContextAddCertData(ctx, t, cert), VIR_PKI_ERR_WRONG_TYPE);
            CHECK_FAILS(virPKIContextAddCertData(ctx, t, crl), VIR_PKI_ERR_WRONG_TYPE);
        } else {
            CHECK_FAILS(virPKIContextAddCertData(ctx, t, key), VIR_PKI_ERR_WRONG_TYPE);
            CHECK_FAILS(virPKIContextAddCertData(ctx, t, crl), VIR_PKI_ERR_WRONG_TYPE);
            CHECK_FAILS(virPKIContextAddCertDataFile(ctx, t, fixture("server-key.pem")),
                        VIR_PKI_ERR_WRONG_TYPE);
        }
    }
    free(key);
    free(cert);
    free(crl);
    virPKIContextFree(ctx);
}

static void test_all_or_nothing(void)
{
    virPKIContextPtr ctx = new_context(0, 0);
    char *ca = read_fixture("ca.pem");
    char *key = read_fixture("server-key.pem");
    char *server = read_fixture("server.pem");
    size_t len = strlen(ca) + strlen(key) + 128;
    char *bundle = malloc(len);

    /* A good CA followed by a key, then by a broken block: nothing of either is added. */
    snprintf(bundle, len, "%s%s", ca, key);
    CHECK_FAILS(virPKIContextAddCertData(ctx, VIR_CONNECT_CERT_CA_CERT, bundle),
                VIR_PKI_ERR_WRONG_TYPE);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "block 2");
    snprintf(bundle, len, "%s-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
             ca);
    CHECK_FAILS(virPKIContextAddCertData(ctx, VIR_CONNECT_CERT_CA_CERT, bundle),
                VIR_PKI_ERR_PARSE);
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0), VIR_PKI_ERR_NO_CA);

    /* The good CA alone is added. */
    CHECK_OK(virPKIContextAddCertData(ctx, VIR_CONNECT_CERT_CA_CERT, ca));
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0));

    free(bundle);
    free(ca);
    free(key);
    free(server);
    virPKIContextFree(ctx);
}

static void test_accumulate_and_replace(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    char *other = read_fixture("server-ca2.pem");
    char *revoked = read_fixture("server-revoked.pem");

    /* CA certificates accumulate: the second CA adds to the first. */
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, other, 0),
                VIR_PKI_ERR_UNKNOWN_ISSUER);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, fixture("ca2.pem")));
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, other, 0));
    char *server = read_fixture("server.pem");
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0));

    /* CRLs accumulate: the CA's first CRL, then its newer one that revokes; adding the first
       again does not undo the revocation. */
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CRL, fixture("crl-other.pem")));
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, revoked, 0));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CRL, fixture("crl.pem")));
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, revoked, 0),
                VIR_PKI_ERR_REVOKED);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CRL, fixture("crl-other.pem")));
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, revoked, 0),
                VIR_PKI_ERR_REVOKED);

    /* A key replaces the previous key of its identity: the check sees the last one. */
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_CERT,
                                          fixture("server.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_KEY,
                                          fixture("client-key.pem")));
    CHECK_FAILS(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, NULL), VIR_PKI_ERR_KEY_MISMATCH);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_KEY,
                                          fixture("server-key.pem")));
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, NULL));
    /* And a certificate the previous certificate (this one has another key). */
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_CERT,
                                          fixture("server-newkey.pem")));
    CHECK_FAILS(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, NULL), VIR_PKI_ERR_KEY_MISMATCH);

    free(server);
    free(other);
    free(revoked);
    virPKIContextFree(ctx);
}

static void test_files(void)
{
    virPKIContextPtr ctx = new_context(0, 0);
    char *server = read_fixture("server.pem");

    /* DER files are accepted. */
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, fixture("ca.der")));
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0));

    /* Missing files and directories fail with IO, naming the path. */
    const char *missing = fixture("does-not-exist.pem");
    for (int i = 0; i < NTYPES; i++) {
        CHECK_FAILS(virPKIContextAddCertDataFile(ctx, all_types[i], missing), VIR_PKI_ERR_IO);
        CHECK_CONTAINS(virPKIGetLastErrorMessage(), missing);
    }
    CHECK_FAILS(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, FIXTURE_DIR),
                VIR_PKI_ERR_IO);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), FIXTURE_DIR);

    /* A private key readable by others is refused, naming the file; the same key at 0600 is
       taken. */
    const char *open_key = fixture("server-key-open.pem");
    CHECK_FAILS(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_KEY, open_key),
                VIR_PKI_ERR_INSECURE_PERMISSIONS);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), open_key);
    CHECK_FAILS(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CLIENT_KEY, open_key),
                VIR_PKI_ERR_INSECURE_PERMISSIONS);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_KEY,
                                          fixture("server-key.pem")));

    /* A garbage file is a parse error that names the file. */
    char *dir = make_temp_dir();
    char path[4200];
    snprintf(path, sizeof path, "%s/garbage.pem", dir);
    write_text(path, "this is not a certificate\n", 0644);
    CHECK_FAILS(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, path),
                VIR_PKI_ERR_PARSE);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), path);
    remove_tree(dir);

    free(server);
    virPKIContextFree(ctx);
}

static void test_allowed_dn_list_arguments(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    char *client = read_fixture("client.pem");
    const char *allow[] = {"C=GB,O=Test,CN=client1"};
    const char *with_null[] = {"CN=nobody", NULL};
    const char *not_utf8[] = {"CN=nobody", "CN=\xff"};

    CHECK_FAILS(virPKIContextSetAllowedDNList(NULL, allow, 1), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextSetAllowedDNList(ctx, NULL, 1), VIR_PKI_ERR_INVALID_ARG);
    /* NULL is fine where no pattern is read. */
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, NULL, -1));
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, NULL, 0));
    CHECK_FAILS(virPKIContextVerifyClient(ctx, client, NULL, 0), VIR_PKI_ERR_DN_NOT_ALLOWED);

    /* A list that fails to be set leaves the previous one in place. */
    CHECK_OK(virPKIContextSetAllowedDNList(ctx, allow, 1));
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));
    CHECK_FAILS(virPKIContextSetAllowedDNList(ctx, with_null, 2), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "patterns[1]");
    CHECK_FAILS(virPKIContextSetAllowedDNList(ctx, not_utf8, 2), VIR_PKI_ERR_INVALID_ARG);
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));

    CHECK_FAILS(virPKIContextSetVerifyTime(NULL, FIXTURE_NOW), VIR_PKI_ERR_INVALID_ARG);
    free(client);
    virPKIContextFree(ctx);
}

/* The fixtures' server certificate and CA expire at 2030-01-01T00:00:00Z (tools/src/kit.rs);
   five days and an hour before that, both are inside the default horizon of 30 days. */
#define FIVE_DAYS_BEFORE_FIXTURES_EXPIRE (1893456000LL - 5 * 86400 - 3600)

/* The report of virPKIContextCheck for the server role (NULL when there is none). */
static char *server_report(virPKIContextPtr ctx)
{
    char *report = NULL;
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, &report));
    CHECK(report != NULL);
    return report;
}

static void test_expiry_horizon(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_CERT,
                                          fixture("server.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_KEY,
                                          fixture("server-key.pem")));

    /* At the fixtures' time nothing is near its end: no "expires" line. */
    char *report = server_report(ctx);
    CHECK(report && strstr(report, "expires") == NULL);
    virPKIFree(report);

    /* Five days before: a warning line each for the certificate and the CA, with the word
       and the days; warnings do not fail the check. */
    CHECK_OK(virPKIContextSetVerifyTime(ctx, FIVE_DAYS_BEFORE_FIXTURES_EXPIRE));
    report = server_report(ctx);
    CHECK_CONTAINS(report, "warning: [expires-soon] The server certificate");
    CHECK_CONTAINS(report, "expires in 5 days, on 2030-01-01 00:00:00 UTC");
    CHECK_CONTAINS(report, "libvirtd refuses to start");
    CHECK_CONTAINS(report, "virtpki issue server --ca-dir CA_DIR");
    CHECK_CONTAINS(report, "warning: [expires-soon] The CA certificate");
    virPKIFree(report);

    /* A horizon of 3 days: no "expires" line. */
    CHECK_OK(virPKIContextSetExpiryHorizon(ctx, 3));
    report = server_report(ctx);
    CHECK(report && strstr(report, "expires") == NULL);
    virPKIFree(report);

    /* Refused: NULL, more than ten years, -1 passed as unsigned; the horizon stays 3. */
    CHECK_FAILS(virPKIContextSetExpiryHorizon(NULL, 30), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextSetExpiryHorizon(ctx, 3651), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "3651");
    CHECK_FAILS(virPKIContextSetExpiryHorizon(ctx, (unsigned int)-1), VIR_PKI_ERR_INVALID_ARG);
    report = server_report(ctx);
    CHECK(report && strstr(report, "expires") == NULL);
    virPKIFree(report);

    /* 3650 is allowed; 0 turns the warning off. */
    CHECK_OK(virPKIContextSetExpiryHorizon(ctx, 3650));
    report = server_report(ctx);
    CHECK_CONTAINS(report, "expires in 5 days");
    virPKIFree(report);
    CHECK_OK(virPKIContextSetExpiryHorizon(ctx, 0));
    report = server_report(ctx);
    CHECK(report && strstr(report, "expires") == NULL);
    virPKIFree(report);

    virPKIContextFree(ctx);
}

int main(void)
{
    check_watchdog(300);
    test_new_and_free();
    test_every_type_accepts_its_data();
    test_bad_arguments();
    test_garbage_and_huge_inputs();
    test_no_complete_pem_block();
    test_wrong_types();
    test_all_or_nothing();
    test_accumulate_and_replace();
    test_files();
    test_allowed_dn_list_arguments();
    test_expiry_horizon();
    return check_done();
}
