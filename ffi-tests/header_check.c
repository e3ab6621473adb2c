/*
 * Compiled, not run: virtpki.h stands alone, is valid C11 (-Wpedantic) and C++17, and every
 * function has the signature of API.md (an assignment to a pointer of that type would not
 * compile otherwise), and the fixed values checked below are API.md's.
 */
#include <virtpki.h>

int virtpki_header_check(void);

int virtpki_header_check(void)
{
    int (*get_code)(void) = virPKIGetLastErrorCode;
    const char *(*get_message)(void) = virPKIGetLastErrorMessage;
    void (*reset)(void) = virPKIResetLastError;
    void (*free_fn)(void *) = virPKIFree;
    const char *(*version)(void) = virPKIVersion;

    int (*add_data)(int, const char *) = virConnectAddCertData;
    int (*add_file)(int, const char *) = virConnectAddCertDataFile;
    int (*set_validator)(virConnectCertificateValidator, void *, virFreeCallback) =
        virConnectSetCertificateValidator;
    virPKIContextPtr (*default_ctx)(void) = virPKIDefaultContext;

    virPKIContextPtr (*ctx_new)(unsigned int) = virPKIContextNew;
    void (*ctx_free)(virPKIContextPtr) = virPKIContextFree;
    int (*ctx_add_data)(virPKIContextPtr, int, const char *) = virPKIContextAddCertData;
    int (*ctx_add_file)(virPKIContextPtr, int, const char *) = virPKIContextAddCertDataFile;
    int (*load_default)(virPKIContextPtr, int, const char *, unsigned int) =
        virPKIContextLoadDefault;
    int (*ctx_set_validator)(virPKIContextPtr, virConnectCertificateValidator, void *,
                             virFreeCallback) = virPKIContextSetCertificateValidator;
    int (*set_known)(virPKIContextPtr, const char *) = virPKIContextSetKnownServersFile;
    int (*has_known)(virPKIContextPtr) = virPKIContextHasKnownServers;
    int (*set_dns)(virPKIContextPtr, const char *const *, int) = virPKIContextSetAllowedDNList;
    int (*set_time)(virPKIContextPtr, long long) = virPKIContextSetVerifyTime;

    int (*verify_server)(virPKIContextPtr, const char *, int, const char *, unsigned int) =
        virPKIContextVerifyServer;
    int (*verify_client)(virPKIContextPtr, const char *, char **, unsigned int) =
        virPKIContextVerifyClient;
    int (*check)(virPKIContextPtr, int, char **) = virPKIContextCheck;
    int (*reload)(virPKIContextPtr, unsigned int) = virPKIContextReload;
    int (*set_horizon)(virPKIContextPtr, unsigned int) = virPKIContextSetExpiryHorizon;
    int (*add_identity)(virPKIContextPtr, int, const char *, const char *, unsigned int) =
        virPKIContextAddIdentity;
    int (*add_identity_file)(virPKIContextPtr, int, const char *, const char *, unsigned int) =
        virPKIContextAddIdentityFile;

    char *(*get_dn)(const char *) = virPKICertGetDN;
    char *(*fingerprint)(const char *) = virPKICertFingerprint;
    char *(*describe)(const char *) = virPKICertDescribe;
    int (*dn_match)(const char *, const char *) = virPKIDNMatch;

    virPKISessionPtr (*new_client)(virPKIContextPtr, int, const char *, int, unsigned int) =
        virPKISessionNewClient;
    virPKISessionPtr (*new_server)(virPKIContextPtr, int, unsigned int) = virPKISessionNewServer;
    long long (*read_fn)(virPKISessionPtr, void *, size_t) = virPKISessionRead;
    long long (*write_fn)(virPKISessionPtr, const void *, size_t) = virPKISessionWrite;
    char *(*peer_dn)(virPKISessionPtr) = virPKISessionPeerDN;
    int (*close_fn)(virPKISessionPtr) = virPKISessionClose;
    void (*session_free)(virPKISessionPtr) = virPKISessionFree;
    virPKISessionPtr (*start_client)(virPKIContextPtr, int, const char *, int, unsigned int) =
        virPKISessionStartClient;
    virPKISessionPtr (*start_server)(virPKIContextPtr, int, unsigned int) =
        virPKISessionStartServer;
    int (*handshake)(virPKISessionPtr) = virPKISessionHandshake;
    int (*wants)(virPKISessionPtr) = virPKISessionWants;
    int (*record_peer)(virPKISessionPtr, unsigned int) = virPKISessionRecordPeer;

    /* The fixed values of API.md, checked when this file compiles (C and C++ alike: an array
       of negative size does not). */
    typedef char internal_is_22[VIR_PKI_ERR_INTERNAL == 22 ? 1 : -1];
    typedef char again_is_23[VIR_PKI_ERR_AGAIN == 23 ? 1 : -1];
    typedef char want_read_is_1[VIR_PKI_SESSION_WANT_READ == 1 ? 1 : -1];
    typedef char want_write_is_2[VIR_PKI_SESSION_WANT_WRITE == 2 ? 1 : -1];
    (void)sizeof(internal_is_22);
    (void)sizeof(again_is_23);
    (void)sizeof(want_read_is_1);
    (void)sizeof(want_write_is_2);

    /* The callback types, as an application writes them. */
    int (*validator)(const char *, const char *, int, unsigned int, void *) =
        (virConnectCertificateValidator)0;
    void (*freecb)(void *) = (virFreeCallback)0;

    return get_code && get_message && reset && free_fn && version && add_data && add_file &&
           set_validator && default_ctx && ctx_new && ctx_free && ctx_add_data &&
           ctx_add_file && load_default && ctx_set_validator && set_known && has_known && set_dns &&
           set_time && verify_server && verify_client && check && reload && set_horizon && add_identity &&
           add_identity_file && get_dn && fingerprint &&
           describe && dn_match && new_client && new_server && read_fn && write_fn &&
           peer_dn && close_fn && session_free && start_client && start_server && handshake &&
           wants && record_peer && !validator && !freecb;
}
