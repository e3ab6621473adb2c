/*
 * virPKIContextLoadDefault with a pkipath directory, and virPKIContextCheck with its report.
 */
#include "check.h"

/* Copies fixture `name` to `dir`/`as` with `mode`. */
static void put(const char *dir, const char *as, const char *name, mode_t mode)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, as);
    char *text = read_fixture(name);
    write_text(path, text, mode);
    free(text);
}

static void test_arguments(void)
{
    virPKIContextPtr ctx = new_context(0, 0);
    const char *pki = fixture("pki");
    CHECK_FAILS(virPKIContextLoadDefault(NULL, VIR_PKI_ROLE_SERVER, pki, 0),
                VIR_PKI_ERR_INVALID_ARG);
    int bad_roles[] = {-1, 2, 7, 99};
    for (size_t i = 0; i < sizeof bad_roles / sizeof bad_roles[0]; i++) {
        CHECK_FAILS(virPKIContextLoadDefault(ctx, bad_roles[i], pki, 0), VIR_PKI_ERR_INVALID_ARG);
        CHECK_CONTAINS(virPKIGetLastErrorMessage(), "role");
        CHECK_FAILS(virPKIContextCheck(ctx, bad_roles[i], NULL), VIR_PKI_ERR_INVALID_ARG);
    }
    CHECK_FAILS(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_SERVER, pki, 1),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_SERVER, pki, 1u << 31),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_SERVER, "\xff/pki", 0),
                VIR_PKI_ERR_INVALID_ARG);
    /* "" is not "the current directory": refused as empty input. */
    CHECK_FAILS(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_SERVER, "", 0),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIContextCheck(NULL, VIR_PKI_ROLE_SERVER, NULL), VIR_PKI_ERR_INVALID_ARG);
    /* The header says to free *reportOut either way: on a refused argument it is NULL, not
     * whatever the caller left there. */
    char *stale = (char *)"not a report";
    CHECK_FAILS(virPKIContextCheck(NULL, VIR_PKI_ROLE_SERVER, &stale), VIR_PKI_ERR_INVALID_ARG);
    CHECK(stale == NULL);
    stale = (char *)"not a report";
    CHECK_FAILS(virPKIContextCheck(ctx, 99, &stale), VIR_PKI_ERR_INVALID_ARG);
    CHECK(stale == NULL);
    virPKIFree(stale);

    /* A directory that does not exist: the CA is required, and named. */
    const char *missing = fixture("no-such-pki");
    CHECK_FAILS(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_CLIENT, missing, 0), VIR_PKI_ERR_IO);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), missing);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "cacert.pem");
    virPKIContextFree(ctx);
}

static void test_load_server_and_client(void)
{
    char *client = read_fixture("client.pem");
    char *server = read_fixture("server.pem");
    char *revoked = read_fixture("server-revoked.pem");

    /* The daemon: CA, CRL, its certificate and key, then the sanity check. */
    virPKIContextPtr daemon = new_context(0, 0);
    CHECK_OK(virPKIContextLoadDefault(daemon, VIR_PKI_ROLE_SERVER, fixture("pki"), 0));
    char *dn = NULL;
    CHECK_OK(virPKIContextVerifyClient(daemon, client, &dn, 0));
    CHECK_STR(dn, "C=GB,O=Test,CN=client1");
    virPKIFree(dn);
    CHECK_OK(virPKIContextCheck(daemon, VIR_PKI_ROLE_SERVER, NULL));
    virPKIContextFree(daemon);

    /* The client: the CRL of the directory is applied. */
    virPKIContextPtr ctx = new_context(0, 0);
    CHECK_OK(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_CLIENT, fixture("pki"), 0));
    CHECK_OK(virPKIContextVerifyServer(ctx, "localhost", 0, server, 0));
    CHECK_FAILS(virPKIContextVerifyServer(ctx, "localhost", 0, revoked, 0), VIR_PKI_ERR_REVOKED);
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_CLIENT, NULL));
    virPKIContextFree(ctx);

    free(client);
    free(server);
    free(revoked);
}

static void test_sanity_at_load(void)
{
    /* A daemon given the client's key for its certificate: libvirt refuses to start. */
    char *dir = make_temp_dir();
    put(dir, "cacert.pem", "ca.pem", 0644);
    put(dir, "servercert.pem", "server.pem", 0644);
    put(dir, "serverkey.pem", "client-key.pem", 0600);
    char *client = read_fixture("client.pem");

    virPKIContextPtr ctx = new_context(0, 0);
    CHECK_FAILS(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_SERVER, dir, 0),
                VIR_PKI_ERR_KEY_MISMATCH);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "serverkey.pem");
    /* All or nothing: not even the CA was kept. */
    CHECK_FAILS(virPKIContextVerifyClient(ctx, client, NULL, 0), VIR_PKI_ERR_NO_CA);
    virPKIContextFree(ctx);

    /* NO_SANITY loads it all the same (libvirt's tls_no_sanity_certificate). */
    ctx = new_context(VIR_PKI_CONTEXT_NO_SANITY, 0);
    CHECK_OK(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_SERVER, dir, 0));
    CHECK_OK(virPKIContextVerifyClient(ctx, client, NULL, 0));
    /* ... and the check still finds what is wrong. */
    char *report = NULL;
    CHECK_FAILS(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, &report), VIR_PKI_ERR_KEY_MISMATCH);
    CHECK_CONTAINS(report, "serverkey.pem");
    virPKIFree(report);
    virPKIContextFree(ctx);

    /* A key file others may read is refused, naming it. */
    put(dir, "servercert.pem", "server.pem", 0644);
    put(dir, "serverkey.pem", "server-key.pem", 0644);
    ctx = new_context(0, 0);
    CHECK_FAILS(virPKIContextLoadDefault(ctx, VIR_PKI_ROLE_SERVER, dir, 0),
                VIR_PKI_ERR_INSECURE_PERMISSIONS);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "serverkey.pem");
    virPKIContextFree(ctx);

    free(client);
    remove_tree(dir);
}

static void test_check_report(void)
{
    /* Nothing loaded: a daemon cannot run; the report says so. */
    virPKIContextPtr ctx = new_context(0, 0);
    char *report = NULL;
    virPKIResetLastError();
    CHECK(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, &report) == -1);
    CHECK(virPKIGetLastErrorCode() != VIR_PKI_OK);
    CHECK(report != NULL && report[0] != '\0');
    virPKIFree(report);

    /* A key that is not the certificate's: KEY_MISMATCH, one finding per line. */
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, fixture("ca.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_CERT,
                                          fixture("server.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_KEY,
                                          fixture("selfsigned-key.pem")));
    report = NULL;
    CHECK_FAILS(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, &report), VIR_PKI_ERR_KEY_MISMATCH);
    CHECK_CONTAINS(report, "selfsigned-key.pem");
    CHECK(report != NULL && report[strlen(report) - 1] == '\n');
    virPKIFree(report);
    /* reportOut may be NULL. */
    CHECK_FAILS(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, NULL), VIR_PKI_ERR_KEY_MISMATCH);

    /* Fixed: the daemon role passes; the report holds no error line. */
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_KEY,
                                          fixture("server-key.pem")));
    report = NULL;
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, &report));
    CHECK(report != NULL);
    virPKIFree(report);
    virPKIContextFree(ctx);
}

int main(void)
{
    check_watchdog(300);
    test_arguments();
    test_load_server_and_client();
    test_sanity_at_load();
    test_check_report();
    return check_done();
}
