/*
 * virPKISessionRecordPeer: a validator that answers after the handshake (ACCEPT_ONCE inside
 * it) records the server's certificate as ACCEPT_ALWAYS would have, in the context's
 * known-servers file; the next handshake is then trusted without asking the validator. Only
 * what the validator was asked about in the session's completed handshake: NULL, bad flags,
 * a server session, a handshake not done, nothing asked, no store, a store that cannot be
 * written are errors. virPKIContextHasKnownServers says whether there is a store.
 */
#include "check.h"

#include <sys/socket.h>

static int accept_once_counting(const char *h, const char *c, int t, unsigned int f, void *o)
{
    (void)h, (void)c, (void)t, (void)f;
    ++*(int *)o;
    return VIR_CONNECT_CERT_ACCEPT_ONCE;
}

/* A client that does not know the server's CA (it trusts ca2.pem) and asks its validator
   about certificates that fail CA validation; `store` NULL: no known-servers file. */
static virPKIContextPtr prompting_client(int *calls, const char *store)
{
    virPKIContextPtr ctx = new_context(VIR_PKI_CONTEXT_PROMPT_UNVERIFIED, 0);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT, fixture("ca2.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CLIENT_CERT,
                                          fixture("client.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CLIENT_KEY,
                                          fixture("client-key.pem")));
    CHECK_OK(virPKIContextSetCertificateValidator(ctx, accept_once_counting, calls, NULL));
    if (store)
        CHECK_OK(virPKIContextSetKnownServersFile(ctx, store));
    return ctx;
}

static virPKIContextPtr server_context(void)
{
    virPKIContextPtr ctx = new_context(0, 1);
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_CERT,
                                          fixture("server.pem")));
    CHECK_OK(virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_SERVER_KEY,
                                          fixture("server-key.pem")));
    return ctx;
}

struct pair {
    int fds[2];
    virPKIContextPtr server_ctx;
    virPKISessionPtr client, server;
};

/* Both ends of a non-blocking socketpair, started (no handshake yet). */
static void start_pair(struct pair *p, virPKIContextPtr client)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, p->fds) != 0)
        die("socketpair");
    for (int i = 0; i < 2; i++)
        if (fcntl(p->fds[i], F_SETFL, fcntl(p->fds[i], F_GETFL) | O_NONBLOCK) != 0)
            die("fcntl");
    p->server_ctx = server_context();
    p->client = virPKISessionStartClient(client, p->fds[0], "localhost", 16514,
                                         VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    p->server = virPKISessionStartServer(p->server_ctx, p->fds[1],
                                         VIR_PKI_SESSION_LIBVIRT_CONFIRM);
    CHECK(p->client != NULL && p->server != NULL);
}

/* Steps both handshakes in turn until both are done: 0, or the client's error code. */
static int handshake_pair(struct pair *p)
{
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 1000 && !(cdone && sdone); i++) {
        if (!cdone) {
            if (virPKISessionHandshake(p->client) == 0)
                cdone = 1;
            else if (virPKIGetLastErrorCode() != VIR_PKI_ERR_AGAIN)
                return virPKIGetLastErrorCode();
        }
        if (!sdone) {
            if (virPKISessionHandshake(p->server) == 0)
                sdone = 1;
            else if (virPKIGetLastErrorCode() != VIR_PKI_ERR_AGAIN)
                sdone = 1; /* the client's error is the one reported */
        }
    }
    return cdone ? 0 : VIR_PKI_ERR_INTERNAL;
}

static void end_pair(struct pair *p)
{
    virPKISessionFree(p->client);
    virPKISessionFree(p->server);
    virPKIContextFree(p->server_ctx);
    close(p->fds[0]);
    close(p->fds[1]);
}

static void test_arguments(void)
{
    CHECK_FAILS(virPKISessionRecordPeer(NULL, 0), VIR_PKI_ERR_INVALID_ARG);
    int calls = 0;
    virPKIContextPtr ctx = prompting_client(&calls, NULL);
    struct pair p;
    start_pair(&p, ctx);
    CHECK_FAILS(virPKISessionRecordPeer(p.client, 1), VIR_PKI_ERR_INVALID_ARG);
    /* Not handshaken: nothing was asked yet. */
    CHECK_FAILS(virPKISessionRecordPeer(p.client, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "before the handshake is done");
    CHECK_INT(handshake_pair(&p), 0);
    CHECK_INT(calls, 1);
    /* The server cannot record its client. */
    CHECK_FAILS(virPKISessionRecordPeer(p.server, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "server session");
    /* Flags are checked after a successful handshake too. */
    CHECK_FAILS(virPKISessionRecordPeer(p.client, 2), VIR_PKI_ERR_INVALID_ARG);
    /* No known-servers store: a clear error naming the host. */
    CHECK_FAILS(virPKISessionRecordPeer(p.client, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "no known-servers store");
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "localhost");
    end_pair(&p);
    virPKIContextFree(ctx);
}

static void test_records_and_the_next_handshake_is_trusted(void)
{
    char *dir = make_temp_dir();
    char store[4200];
    snprintf(store, sizeof store, "%s/known_servers", dir);
    int calls = 0;
    virPKIContextPtr ctx = prompting_client(&calls, store);
    struct pair p;
    start_pair(&p, ctx);
    CHECK_INT(handshake_pair(&p), 0);
    CHECK_INT(calls, 1);
    /* Accepted once: nothing in the file yet. */
    CHECK(access(store, F_OK) != 0);
    CHECK_OK(virPKISessionRecordPeer(p.client, 0));
    CHECK(access(store, F_OK) == 0);
    /* Twice: the same entry, no error. */
    CHECK_OK(virPKISessionRecordPeer(p.client, 0));
    /* The session is unchanged: data still flows. */
    CHECK(virPKISessionWrite(p.client, "ping", 4) == 4);
    end_pair(&p);

    /* The next connection is trusted by the entry: the validator is not asked, so this
       session has nothing to record. */
    start_pair(&p, ctx);
    CHECK_INT(handshake_pair(&p), 0);
    CHECK_INT(calls, 1);
    CHECK_FAILS(virPKISessionRecordPeer(p.client, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "was not asked");
    end_pair(&p);

    /* Another context opening the file trusts it too, for that host and port only. */
    virPKIContextPtr other = new_context(0, 0);
    CHECK_OK(virPKIContextAddCertDataFile(other, VIR_CONNECT_CERT_CA_CERT, fixture("ca2.pem")));
    CHECK_OK(virPKIContextSetKnownServersFile(other, store));
    char *pem = read_fixture("server.pem");
    CHECK_OK(virPKIContextVerifyServer(other, "localhost", 16514, pem, 0));
    CHECK_FAILS(virPKIContextVerifyServer(other, "localhost", 16515, pem, 0),
                VIR_PKI_ERR_UNKNOWN_ISSUER);
    free(pem);
    virPKIContextFree(other);
    virPKIContextFree(ctx);
    remove_tree(dir);
}

static void test_store_write_error(void)
{
    char *dir = make_temp_dir();
    char store[4200];
    snprintf(store, sizeof store, "%s/known_servers", dir);
    int calls = 0;
    virPKIContextPtr ctx = prompting_client(&calls, store);
    struct pair p;
    start_pair(&p, ctx);
    CHECK_INT(handshake_pair(&p), 0);
    /* The store's directory became writable by everyone after the handshake: the store
       refuses to write there, and says so. */
    CHECK(chmod(dir, 0777) == 0);
    CHECK_FAILS(virPKISessionRecordPeer(p.client, 0), VIR_PKI_ERR_STORE);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), dir);
    CHECK(access(store, F_OK) != 0);
    end_pair(&p);
    virPKIContextFree(ctx);
    remove_tree(dir);
}

/* The validator was told what the store it was asked against knew (CHANGED or not): a store
   set or replaced after the handshake may hold another certificate for the host, which a
   record would replace without the validator having been warned. Refused, nothing written. */
static void test_a_store_set_after_the_handshake_is_not_written(void)
{
    char *dir = make_temp_dir();
    char first[4200], second[4200];
    snprintf(first, sizeof first, "%s/first", dir);
    snprintf(second, sizeof second, "%s/second", dir);
    int calls = 0;
    /* No store when asked, one set afterwards. */
    virPKIContextPtr ctx = prompting_client(&calls, NULL);
    struct pair p;
    start_pair(&p, ctx);
    CHECK_INT(handshake_pair(&p), 0);
    CHECK_OK(virPKIContextSetKnownServersFile(ctx, second));
    CHECK_FAILS(virPKISessionRecordPeer(p.client, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "set or replaced");
    CHECK(access(second, F_OK) != 0);
    end_pair(&p);
    virPKIContextFree(ctx);

    /* Asked against one file, the context switched to another (even the same path opened
       again is another store: what it held when asked is not known). */
    ctx = prompting_client(&calls, first);
    start_pair(&p, ctx);
    CHECK_INT(handshake_pair(&p), 0);
    CHECK_OK(virPKIContextSetKnownServersFile(ctx, second));
    CHECK_FAILS(virPKISessionRecordPeer(p.client, 0), VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(virPKIGetLastErrorMessage(), "set or replaced");
    CHECK(access(first, F_OK) != 0);
    CHECK(access(second, F_OK) != 0);
    end_pair(&p);
    virPKIContextFree(ctx);
    remove_tree(dir);
}

/* virPKIContextHasKnownServers: whether an ACCEPT_ALWAYS would be recorded (bindings ask it
   instead of remembering what they set). NULL is an error; a call that fails to set a store
   leaves the answer as it was. The C API has no call that removes a store. */
static void test_has_known_servers(void)
{
    CHECK_FAILS(virPKIContextHasKnownServers(NULL), VIR_PKI_ERR_INVALID_ARG);
    char *dir = make_temp_dir();
    char store[4200];
    snprintf(store, sizeof store, "%s/known_servers", dir);
    virPKIContextPtr ctx = new_context(0, 0);
    CHECK_INT(virPKIContextHasKnownServers(ctx), 0);
    CHECK_FAILS(virPKIContextSetKnownServersFile(ctx, NULL), VIR_PKI_ERR_INVALID_ARG);
    CHECK_INT(virPKIContextHasKnownServers(ctx), 0);
    CHECK_OK(virPKIContextSetKnownServersFile(ctx, store));
    CHECK_INT(virPKIContextHasKnownServers(ctx), 1);
    CHECK_FAILS(virPKIContextSetKnownServersFile(ctx, NULL), VIR_PKI_ERR_INVALID_ARG);
    CHECK_INT(virPKIContextHasKnownServers(ctx), 1);
    virPKIContextFree(ctx);
    remove_tree(dir);
}

struct inside {
    virPKISessionPtr session;
    int calls, record, code;
    char message[512];
};

static int records_from_inside(const char *h, const char *c, int t, unsigned int f, void *o)
{
    (void)h, (void)c, (void)t, (void)f;
    struct inside *in = o;
    in->calls++;
    virPKIResetLastError();
    in->record = virPKISessionRecordPeer(in->session, 0);
    in->code = virPKIGetLastErrorCode();
    const char *m = virPKIGetLastErrorMessage();
    snprintf(in->message, sizeof in->message, "%s", m ? m : "");
    return VIR_CONNECT_CERT_ACCEPT_ONCE;
}

/* The validator calls back into the session its handshake is running for: an error, not a
   deadlock on the session's own lock (the watchdog ends a hang); the handshake goes on. */
static void test_a_call_from_inside_the_validator(void)
{
    char *dir = make_temp_dir();
    char store[4200];
    snprintf(store, sizeof store, "%s/known_servers", dir);
    struct inside in = {0};
    int calls = 0;
    virPKIContextPtr ctx = prompting_client(&calls, store);
    CHECK_OK(virPKIContextSetCertificateValidator(ctx, records_from_inside, &in, NULL));
    struct pair p;
    start_pair(&p, ctx);
    in.session = p.client;
    CHECK_INT(handshake_pair(&p), 0);
    CHECK_INT(in.calls, 1);
    CHECK_INT(in.record, -1);
    CHECK_INT(in.code, VIR_PKI_ERR_INVALID_ARG);
    CHECK_CONTAINS(in.message, "before the handshake is done");
    CHECK(access(store, F_OK) != 0);
    /* After the handshake, the same call records. */
    CHECK_OK(virPKISessionRecordPeer(p.client, 0));
    CHECK(access(store, F_OK) == 0);
    end_pair(&p);
    virPKIContextFree(ctx);
    remove_tree(dir);
}

int main(void)
{
    check_watchdog(120);
    test_arguments();
    test_records_and_the_next_handshake_is_trusted();
    test_store_write_error();
    test_a_store_set_after_the_handshake_is_not_written();
    test_a_call_from_inside_the_validator();
    test_has_known_servers();
    return check_done();
}
