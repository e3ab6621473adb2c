/*
 * virPKIContextAddIdentity / virPKIContextAddIdentityFile: a further identity of a role,
 * checked as a pair, the first identity left as it is; every argument error; a reload reads
 * the files again.
 */
#include "check.h"

#include <limits.h>

/* The declarations, exactly as the header gives them. */
static int (*const add_fn)(virPKIContextPtr, int, const char *, const char *, unsigned int) =
    virPKIContextAddIdentity;
static int (*const add_file_fn)(virPKIContextPtr, int, const char *, const char *,
                                unsigned int) = virPKIContextAddIdentityFile;

static void test_arguments(void)
{
    char *cert = read_fixture("server.pem");
    char *key = read_fixture("server-key.pem");
    virPKIContextPtr ctx = new_context(0, 1);

    CHECK_FAILS(add_fn(NULL, VIR_PKI_ROLE_SERVER, cert, key, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "ctx");
    CHECK_FAILS(add_fn(ctx, VIR_PKI_ROLE_SERVER, NULL, key, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "certPem");
    CHECK_FAILS(add_fn(ctx, VIR_PKI_ROLE_SERVER, cert, NULL, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "keyPem");
    CHECK_FAILS(add_fn(ctx, 2, cert, key, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(add_fn(ctx, -1, cert, key, 0), VIR_PKI_ERR_INVALID_ARG);
    int bad_roles[] = {INT_MAX, INT_MIN, 256 + VIR_PKI_ROLE_SERVER};
    for (size_t i = 0; i < sizeof bad_roles / sizeof bad_roles[0]; i++) {
        CHECK_FAILS(add_fn(ctx, bad_roles[i], cert, key, 0), VIR_PKI_ERR_INVALID_ARG);
        CHECK_CONTAINS(virPKIGetLastErrorMessage(), "role");
        CHECK_FAILS(add_file_fn(ctx, bad_roles[i], fixture("server.pem"),
                                fixture("server-key.pem"), 0),
                    VIR_PKI_ERR_INVALID_ARG);
        CHECK_CONTAINS(virPKIGetLastErrorMessage(), "role");
    }
    unsigned bad_flags[] = {1, 2, 0x80, 1u << 31};
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        CHECK_FAILS(add_fn(ctx, VIR_PKI_ROLE_SERVER, cert, key, bad_flags[i]),
                    VIR_PKI_ERR_INVALID_ARG);
        CHECK_CONTAINS(virPKIGetLastErrorMessage(), "flags");
        CHECK_FAILS(add_file_fn(ctx, VIR_PKI_ROLE_SERVER, fixture("server.pem"),
                                fixture("server-key.pem"), bad_flags[i]),
                    VIR_PKI_ERR_INVALID_ARG);
    }
    CHECK_FAILS(add_fn(ctx, VIR_PKI_ROLE_SERVER, "not PEM", key, 0), VIR_PKI_ERR_PARSE);
    /* A key where the certificate goes. */
    CHECK_FAILS(add_fn(ctx, VIR_PKI_ROLE_SERVER, key, key, 0), VIR_PKI_ERR_WRONG_TYPE);
    /* A key of another certificate: refused, naming both. */
    char *other_key = read_fixture("selfsigned-key.pem");
    CHECK_FAILS(add_fn(ctx, VIR_PKI_ROLE_SERVER, cert, other_key, 0), VIR_PKI_ERR_KEY_MISMATCH);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "does not belong");

    CHECK_FAILS(add_file_fn(NULL, VIR_PKI_ROLE_SERVER, fixture("server.pem"),
                            fixture("server-key.pem"), 0),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(add_file_fn(ctx, VIR_PKI_ROLE_SERVER, NULL, fixture("server-key.pem"), 0),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "certPath");
    CHECK_FAILS(add_file_fn(ctx, VIR_PKI_ROLE_SERVER, fixture("server.pem"), NULL, 0),
                VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "keyPath");
    CHECK_FAILS(add_file_fn(ctx, VIR_PKI_ROLE_SERVER, fixture("server.pem"),
                            fixture("no-such-key.pem"), 0),
                VIR_PKI_ERR_IO);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "no-such-key.pem");
    CHECK_FAILS(add_file_fn(ctx, VIR_PKI_ROLE_SERVER, fixture("server.pem"),
                            fixture("server-key-open.pem"), 0),
                VIR_PKI_ERR_INSECURE_PERMISSIONS);

    /* Nothing refused was added: the server role still has no identity. */
    CHECK_FAILS(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, NULL), VIR_PKI_ERR_INVALID_ARG);
    virPKIContextFree(ctx);
    free(cert);
    free(key);
    free(other_key);
}

static void test_identities_and_reload(void)
{
    char *cert = read_fixture("server.pem");
    char *key = read_fixture("server-key.pem");
    char *client = read_fixture("client.pem");
    char *client_key = read_fixture("client-key.pem");
    virPKIContextPtr ctx = new_context(0, 1);
    CHECK_OK(virPKIContextAddCertData(ctx, VIR_CONNECT_CERT_SERVER_CERT, cert));
    CHECK_OK(virPKIContextAddCertData(ctx, VIR_CONNECT_CERT_SERVER_KEY, key));
    CHECK_OK(add_fn(ctx, VIR_PKI_ROLE_SERVER, cert, key, 0));
    CHECK_OK(add_fn(ctx, VIR_PKI_ROLE_CLIENT, client, client_key, 0));
    char *report = NULL;
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, &report));
    virPKIFree(report);
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_CLIENT, NULL));

    /* Files, read again by a reload; a key that no longer matches refuses it. */
    char *dir = make_temp_dir();
    char cert_path[4200], key_path[4200];
    snprintf(cert_path, sizeof cert_path, "%s/server-cert-0.pem", dir);
    snprintf(key_path, sizeof key_path, "%s/server-key-0.pem", dir);
    write_text(cert_path, cert, 0644);
    write_text(key_path, key, 0600);
    CHECK_OK(add_file_fn(ctx, VIR_PKI_ROLE_SERVER, cert_path, key_path, 0));
    CHECK_OK(virPKIContextReload(ctx, 0));
    char *other_key = read_fixture("selfsigned-key.pem");
    write_text(key_path, other_key, 0600);
    CHECK_FAILS(virPKIContextReload(ctx, 0), VIR_PKI_ERR_KEY_MISMATCH);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "server-key-0.pem");
    /* The old set stays. */
    CHECK_OK(virPKIContextCheck(ctx, VIR_PKI_ROLE_SERVER, NULL));

    virPKIContextFree(ctx);
    remove_tree(dir);
    free(cert);
    free(key);
    free(client);
    free(client_key);
    free(other_key);
}

int main(void)
{
    check_watchdog(300);
    test_arguments();
    test_identities_and_reload();
    return check_done();
}
