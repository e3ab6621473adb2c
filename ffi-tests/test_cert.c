/*
 * Questions about one certificate: virPKICertGetDN, virPKICertFingerprint,
 * virPKICertDescribe; and virPKIDNMatch.
 */
#include "check.h"

#include <ctype.h>

typedef char *(*cert_fn)(const char *);

static void test_dn(void)
{
    char *client = read_fixture("client.pem");
    char *server = read_fixture("server.pem");
    char *ca = read_fixture("ca.pem");

    char *dn = virPKICertGetDN(client);
    CHECK_STR(dn, "C=GB,O=Test,CN=client1");
    virPKIFree(dn);
    dn = virPKICertGetDN(server);
    CHECK_STR(dn, "CN=localhost");
    virPKIFree(dn);

    /* Of a chain, the first certificate counts. */
    size_t len = strlen(client) + strlen(ca) + 1;
    char *chain = malloc(len);
    snprintf(chain, len, "%s%s", client, ca);
    dn = virPKICertGetDN(chain);
    CHECK_STR(dn, "C=GB,O=Test,CN=client1");
    virPKIFree(dn);

    free(chain);
    free(client);
    free(server);
    free(ca);
}

static void test_fingerprint(void)
{
    const char *names[] = {"server", "client"};
    for (size_t i = 0; i < 2; i++) {
        char pem_name[32], fp_name[32];
        snprintf(pem_name, sizeof pem_name, "%s.pem", names[i]);
        snprintf(fp_name, sizeof fp_name, "%s.fp", names[i]);
        char *pem = read_fixture(pem_name);
        char *expected = read_fixture(fp_name); /* computed by make_fixtures.rs with ring */
        char *fp = virPKICertFingerprint(pem);
        CHECK_STR(fp, expected);
        /* "SHA256:" and 64 uppercase hex digits, nothing else. */
        CHECK(fp != NULL && strlen(fp) == 7 + 64 && strncmp(fp, "SHA256:", 7) == 0);
        int hex = fp != NULL;
        for (const char *c = fp ? fp + 7 : ""; *c; c++)
            hex &= isxdigit((unsigned char)*c) && !islower((unsigned char)*c);
        CHECK(hex);
        virPKIFree(fp);
        free(pem);
        free(expected);
    }
}

static void test_describe(void)
{
    char *server = read_fixture("server.pem");
    char *fp = virPKICertFingerprint(server);
    char *text = virPKICertDescribe(server);
    CHECK_CONTAINS(text, "CN=localhost");
    CHECK_CONTAINS(text, "CN=FFI Test CA");
    CHECK_CONTAINS(text, "DNS:localhost");
    CHECK_CONTAINS(text, "IP:127.0.0.1");
    CHECK_CONTAINS(text, "2030-01-01");
    CHECK_CONTAINS(text, "serverAuth");
    CHECK_CONTAINS(text, fp);
    int lines = 0;
    for (const char *c = text ? text : ""; *c; c++)
        lines += *c == '\n';
    CHECK(lines >= 7);
    virPKIFree(text);
    virPKIFree(fp);
    free(server);
}

/* Every bad input fails the same way for the three functions. */
static void test_bad_inputs(void)
{
    cert_fn fns[] = {virPKICertGetDN, virPKICertFingerprint, virPKICertDescribe};
    char *key = read_fixture("server-key.pem");
    char *crl = read_fixture("crl.pem");
    char *cut = read_fixture("server.pem");
    cut[strlen(cut) - 40] = '\0';
    char *huge = big_string(2 * 1024 * 1024);
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        CHECK_NULL_STR(fns[i](NULL), VIR_PKI_ERR_INVALID_ARG);
        CHECK_NULL_STR(fns[i](""), VIR_PKI_ERR_INVALID_ARG);
        CHECK_NULL_STR(fns[i]("\n\n"), VIR_PKI_ERR_INVALID_ARG);
        CHECK_NULL_STR(fns[i]("\xc0\xaf"), VIR_PKI_ERR_INVALID_ARG);
        CHECK_NULL_STR(fns[i]("hello"), VIR_PKI_ERR_PARSE);
        CHECK_NULL_STR(fns[i](cut), VIR_PKI_ERR_PARSE);
        CHECK_NULL_STR(fns[i](key), VIR_PKI_ERR_WRONG_TYPE);
        CHECK_NULL_STR(fns[i](crl), VIR_PKI_ERR_WRONG_TYPE);
        CHECK_NULL_STR(fns[i](huge), VIR_PKI_ERR_TOO_LARGE);
    }
    free(key);
    free(crl);
    free(cut);
    free(huge);
}

static void test_dn_match(void)
{
    const char *dn = "C=GB,O=Test,CN=client1";
    virPKIResetLastError();
    CHECK_INT(virPKIDNMatch(dn, dn), 1);
    CHECK_INT(virPKIDNMatch("C=GB,O=Test,CN=*", dn), 1);
    CHECK_INT(virPKIDNMatch("C=GB,O=Test,CN=client?", dn), 1);
    CHECK_INT(virPKIDNMatch("*", dn), 1);
    CHECK_INT(virPKIDNMatch("C=GB,*,CN=client1", dn), 1);
    /* No match is 0, not an error. */
    CHECK_INT(virPKIDNMatch("C=GB,O=Test,CN=client", dn), 0);
    CHECK_INT(virPKIDNMatch("C=GB,O=Test,CN=client??", dn), 0);
    CHECK_INT(virPKIDNMatch("CN=client1", dn), 0);
    CHECK_INT(virPKIDNMatch("c=gb,o=test,cn=client1", dn), 0);
    CHECK_INT(virPKIDNMatch("", dn), 0);
    CHECK_INT(virPKIDNMatch("", ""), 1);
    CHECK_INT(virPKIGetLastErrorCode(), VIR_PKI_OK);

    CHECK_FAILS(virPKIDNMatch(NULL, dn), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIDNMatch(dn, NULL), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIDNMatch(NULL, NULL), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIDNMatch("CN=\xff", dn), VIR_PKI_ERR_INVALID_ARG);
    CHECK_FAILS(virPKIDNMatch("*", "CN=\xff"), VIR_PKI_ERR_INVALID_ARG);
}

int main(void)
{
    check_watchdog(300);
    test_dn();
    test_fingerprint();
    test_describe();
    test_bad_inputs();
    test_dn_match();
    return check_done();
}
