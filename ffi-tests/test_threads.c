/*
 * Threads: eight threads verify on one context while another adds CRLs and swaps the
 * validator; errors stay per thread; the default context is created once under a race.
 */
#include "check.h"

#include <pthread.h>

#define VERIFIERS 8
#define ROUNDS 40

static virPKIContextPtr shared;
static char *server, *client, *foreign_server;
static char crl_other[1024]; /* fixture() is not for threads: the path is copied first */
static atomic_int validator_calls;
static atomic_int validator_frees;

static int accept_once(const char *h, const char *c, int t, unsigned int f, void *opaque)
{
    (void)h, (void)c, (void)t, (void)f;
    atomic_fetch_add(&validator_calls, 1);
    return *(int *)opaque;
}

static void release(void *opaque)
{
    (void)opaque;
    atomic_fetch_add(&validator_frees, 1);
}

struct verifier {
    int index;
    int accepted;       /* good verifications that passed */
    int own_errors;     /* failures whose last error was this thread's own */
    int wrong;          /* anything else */
    char first_problem[512];
};

static void problem(struct verifier *v, const char *what)
{
    if (v->wrong++ == 0) {
        const char *m = virPKIGetLastErrorMessage();
        snprintf(v->first_problem, sizeof v->first_problem, "%s: code %d, %s", what,
                 virPKIGetLastErrorCode(), m ? m : "(null)");
    }
}

static void *verify_loop(void *arg)
{
    struct verifier *v = arg;
    /* Even threads fail on the host name, odd ones on the issuer: if the last error were
       shared, a thread would now and then read the other kind. */
    int own = v->index % 2 ? VIR_PKI_ERR_UNKNOWN_ISSUER : VIR_PKI_ERR_HOSTNAME_MISMATCH;
    for (int i = 0; i < ROUNDS; i++) {
        if (virPKIContextVerifyServer(shared, "localhost", 0, server, 0) == 0)
            v->accepted++;
        else
            problem(v, "server");
        char *dn = NULL;
        if (virPKIContextVerifyClient(shared, client, &dn, 0) == 0 && dn &&
            strcmp(dn, "C=GB,O=Test,CN=client1") == 0)
            v->accepted++;
        else
            problem(v, "client");
        virPKIFree(dn);

        int r = v->index % 2 ? virPKIContextVerifyServer(shared, "localhost", 0, foreign_server, 0)
                             : virPKIContextVerifyServer(shared, "elsewhere", 0, server, 0);
        if (r == -1 && virPKIGetLastErrorCode() == own)
            v->own_errors++;
        else
            problem(v, "own error");
    }
    return NULL;
}

static int answer = VIR_CONNECT_CERT_ACCEPT_ONCE;
static int crl_adds;
static int validator_sets;

/* Adds the CA's first CRL again and again, and swaps the validator in between. */
static void *change_loop(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (virPKIContextAddCertDataFile(shared, VIR_CONNECT_CERT_CA_CRL, crl_other) == 0)
            crl_adds++;
        if (virPKIContextSetCertificateValidator(shared, accept_once, &answer, release) == 0)
            validator_sets++;
    }
    return NULL;
}

static void test_verify_while_changing(void)
{
    shared = new_context(0, 1);
    pthread_t changer, threads[VERIFIERS];
    struct verifier v[VERIFIERS];
    memset(v, 0, sizeof v);
    CHECK_INT(pthread_create(&changer, NULL, change_loop, NULL), 0);
    for (int i = 0; i < VERIFIERS; i++) {
        v[i].index = i;
        CHECK_INT(pthread_create(&threads[i], NULL, verify_loop, &v[i]), 0);
    }
    for (int i = 0; i < VERIFIERS; i++)
        pthread_join(threads[i], NULL);
    pthread_join(changer, NULL);

    for (int i = 0; i < VERIFIERS; i++) {
        CHECK_INT(v[i].accepted, 2 * ROUNDS);
        CHECK_INT(v[i].own_errors, ROUNDS);
        CHECK_INT(v[i].wrong, 0);
        if (v[i].wrong)
            fprintf(stderr, "    thread %d: %s\n", i, v[i].first_problem);
    }
    CHECK_INT(crl_adds, ROUNDS);
    CHECK_INT(validator_sets, ROUNDS);
    /* Every replaced validator was released exactly once, even while others used it. */
    CHECK_INT(atomic_load(&validator_frees), ROUNDS - 1);
    CHECK(atomic_load(&validator_calls) <= VERIFIERS * ROUNDS);

    /* After all that, the context still works and takes the newer CRL. */
    char *revoked = read_fixture("server-revoked.pem");
    CHECK_OK(virPKIContextVerifyServer(shared, "localhost", 0, revoked, 0));
    CHECK_OK(virPKIContextAddCertDataFile(shared, VIR_CONNECT_CERT_CA_CRL, fixture("crl.pem")));
    CHECK_FAILS(virPKIContextVerifyServer(shared, "localhost", 0, revoked, 0),
                VIR_PKI_ERR_REVOKED);
    free(revoked);
    virPKIContextFree(shared);
    CHECK_INT(atomic_load(&validator_frees), ROUNDS);
}

static void *get_default(void *arg)
{
    *(virPKIContextPtr *)arg = virPKIDefaultContext();
    return NULL;
}

static void test_default_context_race(void)
{
    pthread_t threads[VERIFIERS];
    virPKIContextPtr seen[VERIFIERS];
    for (int i = 0; i < VERIFIERS; i++)
        pthread_create(&threads[i], NULL, get_default, &seen[i]);
    for (int i = 0; i < VERIFIERS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < VERIFIERS; i++) {
        CHECK(seen[i] != NULL);
        CHECK(seen[i] == seen[0]);
    }
    CHECK(virPKIDefaultContext() == seen[0]);
}

int main(void)
{
    check_watchdog(600);
    server = read_fixture("server.pem");
    client = read_fixture("client.pem");
    foreign_server = read_fixture("server-ca2.pem");
    snprintf(crl_other, sizeof crl_other, "%s", fixture("crl-other.pem"));
    test_default_context_race();
    test_verify_while_changing();
    free(server);
    free(client);
    free(foreign_server);
    return check_done();
}
