//! `virPKIContext`: credentials and policy, the validator, known servers, allowed DNs, time;
//! and the process-wide default context the `virConnect*` functions use.

use std::ffi::{c_char, c_int, c_longlong, c_uint, c_void, CString};
use std::sync::{Arc, OnceLock};

use super::{bad_value, guard, outside_entry_point, path_arg, ref_arg, str_arg};
use crate::context::{Context, ContextFlags};
use crate::data_type::CertDataType;
use crate::error::{Error, ErrorKind};
use crate::role::Role;
use crate::validator::{CertificateValidator, ValidationRequest, ValidatorAnswer};

/// Credential data types (the proposal's `virConnectCertDataType`, with the daemon's identity).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum virConnectCertDataType {
    /// CA certificate(s); a bundle may hold several.
    VIR_CONNECT_CERT_CA_CERT = 0,
    /// Certificate revocation list(s).
    VIR_CONNECT_CERT_CA_CRL = 1,
    /// Client private key.
    VIR_CONNECT_CERT_CLIENT_KEY = 2,
    /// Client certificate, optionally followed by intermediates.
    VIR_CONNECT_CERT_CLIENT_CERT = 3,
    /// Trusted (pinned) server certificate(s), for any host: such a certificate stands in for
    /// an issuer the CA certificates do not know, never for a host name it does not carry (a
    /// known-servers entry bound to the host does that). Expired, revoked or badly signed
    /// certificates are refused, pinned or not.
    VIR_CONNECT_CERT_SERVER_TRUSTED = 4,
    /// Daemon's private key.
    VIR_CONNECT_CERT_SERVER_KEY = 5,
    /// Daemon's certificate, optionally followed by intermediates.
    VIR_CONNECT_CERT_SERVER_CERT = 6,
}

/// Flags of virPKIContextNew.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum virPKIContextFlags {
    /// No Common Name fallback for host names.
    VIR_PKI_CONTEXT_REQUIRE_SAN = 1,
    /// Also ask the validator about certificates that failed CA validation.
    VIR_PKI_CONTEXT_PROMPT_UNVERIFIED = 2,
    /// Skip load-time sanity checks (libvirt's no_sanity).
    VIR_PKI_CONTEXT_NO_SANITY = 4,
}

/// Which end of a connection (virPKIContextLoadDefault, virPKIContextCheck).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum virPKIRole {
    VIR_PKI_ROLE_CLIENT = 0,
    VIR_PKI_ROLE_SERVER = 1,
}

/// Flags passed to a certificate validator.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum virConnectCertificateValidateFlags {
    /// The host was trusted with a different certificate.
    VIR_CONNECT_CERT_VALIDATE_CHANGED = 1,
    /// ... and the new one has the same public key (renewal).
    VIR_CONNECT_CERT_VALIDATE_SAME_KEY = 2,
    /// Failed CA validation; only with VIR_PKI_CONTEXT_PROMPT_UNVERIFIED.
    VIR_CONNECT_CERT_VALIDATE_UNVERIFIED = 4,
}

/// What a certificate validator returns; anything else rejects.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum virConnectCertificateValidatorResult {
    VIR_CONNECT_CERT_REJECT = 0,
    /// Accept for this verification only.
    VIR_CONNECT_CERT_ACCEPT_ONCE = 1,
    /// Accept and record in the known-servers store.
    VIR_CONNECT_CERT_ACCEPT_ALWAYS = 2,
}

/// A credential context (opaque): from virPKIContextNew(), freed with virPKIContextFree();
/// or the default context, which is never freed. Safe to use from several threads at once.
pub struct virPKIContext {
    pub(crate) inner: Arc<Context>,
}

/// Pointer to a context.
pub type virPKIContextPtr = *mut virPKIContext;

/// Called once with the validator's opaque pointer when the library lets go of it: the
/// validator was replaced or removed, or its context freed. It may run on another thread than
/// the one that set the validator (see virPKIContextSetCertificateValidator).
pub type virFreeCallback = Option<unsafe extern "C" fn(opaque: *mut c_void)>;

/// The application's say on a server certificate: hostname as given, the leaf as PEM, whether
/// it is already trusted for this host, VIR_CONNECT_CERT_VALIDATE_* flags, the opaque pointer.
/// Returns a virConnectCertificateValidatorResult. hostname and cert are valid only during the
/// call. It runs on the verifying thread, on several at once when they share the context.
pub type virConnectCertificateValidator = Option<
    unsafe extern "C" fn(
        hostname: *const c_char,
        cert: *const c_char,
        trusted: c_int,
        flags: c_uint,
        opaque: *mut c_void,
    ) -> c_int,
>;

/// A validator written in C; its `freecb` runs when the last reference goes.
struct CValidator {
    callback:
        unsafe extern "C" fn(*const c_char, *const c_char, c_int, c_uint, *mut c_void) -> c_int,
    opaque: *mut c_void,
    freecb: virFreeCallback,
}

// SAFETY: the C API requires validators to be callable from any thread; the opaque pointer is
// only handed back to the application's own functions.
unsafe impl Send for CValidator {}
// SAFETY: as above.
unsafe impl Sync for CValidator {}

impl CertificateValidator for CValidator {
    fn validate(&self, request: &ValidationRequest<'_>) -> ValidatorAnswer {
        let (Ok(host), Ok(pem)) = (
            CString::new(request.hostname),
            CString::new(request.certificate.to_pem()),
        ) else {
            return ValidatorAnswer::Reject;
        };
        // SAFETY: the callback was given by the application for exactly this call signature;
        // the strings live until it returns.
        let answer = outside_entry_point(|| unsafe {
            (self.callback)(
                host.as_ptr(),
                pem.as_ptr(),
                c_int::from(request.trusted),
                request.flags.bits(),
                self.opaque,
            )
        });
        ValidatorAnswer::from_code(answer)
    }
}

impl Drop for CValidator {
    fn drop(&mut self) {
        if let Some(free) = self.freecb {
            // SAFETY: the application asked for this call when the validator is released.
            outside_entry_point(|| unsafe { free(self.opaque) })
        }
    }
}

/// Installs a C validator on `ctx` (NULL `cb` removes it); the old one's freecb runs.
pub(crate) fn set_validator(
    ctx: &Context,
    cb: virConnectCertificateValidator,
    opaque: *mut c_void,
    freecb: virFreeCallback,
) {
    let validator = cb.map(|callback| {
        Arc::new(CValidator {
            callback,
            opaque,
            freecb,
        }) as Arc<dyn CertificateValidator>
    });
    if validator.is_none() {
        if let Some(free) = freecb {
            // SAFETY: nothing will call back with `opaque`; release it as asked.
            outside_entry_point(|| unsafe { free(opaque) })
        }
    }
    drop(ctx.set_validator(validator));
}

pub(crate) fn data_type(code: c_int) -> crate::Result<CertDataType> {
    CertDataType::from_code(code).ok_or_else(|| bad_value("dataType", code))
}

pub(crate) fn role(code: c_int) -> crate::Result<Role> {
    Role::from_code(code).ok_or_else(|| bad_value("role", code))
}

/// The context behind a C pointer.
pub(crate) unsafe fn context<'a>(ctx: virPKIContextPtr) -> crate::Result<&'a Arc<Context>> {
    // SAFETY: a non-NULL context pointer comes from virPKIContextNew or virPKIDefaultContext.
    Ok(&unsafe { ref_arg(ctx, "ctx") }?.inner)
}

/// The default context's address: it lives for the whole process and is never freed.
struct DefaultContext(*mut virPKIContext);

// SAFETY: the pointee is a virPKIContext, whose Context is Send + Sync; the pointer itself is
// never written after creation.
unsafe impl Send for DefaultContext {}
// SAFETY: as above.
unsafe impl Sync for DefaultContext {}

static DEFAULT: OnceLock<DefaultContext> = OnceLock::new();

pub(crate) fn default_context() -> virPKIContextPtr {
    DEFAULT
        .get_or_init(|| {
            DefaultContext(Box::into_raw(Box::new(virPKIContext {
                inner: Arc::new(Context::new(ContextFlags::default())),
            })))
        })
        .0
}

/// Whether `ctx` is the default context (which virPKIContextFree must not free).
pub(crate) fn is_default(ctx: virPKIContextPtr) -> bool {
    DEFAULT.get().is_some_and(|d| d.0 == ctx)
}

/// A new context with VIR_PKI_CONTEXT_* flags; NULL on failure. Free it with
/// virPKIContextFree().
#[no_mangle]
pub extern "C" fn virPKIContextNew(flags: c_uint) -> virPKIContextPtr {
    guard(std::ptr::null_mut(), || {
        let flags = ContextFlags::from_bits(flags).ok_or_else(|| bad_value("flags", flags))?;
        Ok(Box::into_raw(Box::new(virPKIContext {
            inner: Arc::new(Context::new(flags)),
        })))
    })
}

/// Frees a context: its credentials, settings and validator, as soon as nothing uses them any
/// more. Sessions made from it keep working; the validator's freecb runs now, or later on the
/// thread that frees the last session still using the validator. No verification on the
/// context may be running when it is freed.
/// NULL and the default context are left alone.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextFree(ctx: virPKIContextPtr) {
    guard((), || {
        if !ctx.is_null() && !is_default(ctx) {
            // SAFETY: the pointer came from virPKIContextNew and is freed once.
            drop(unsafe { Box::from_raw(ctx) });
        }
        Ok(())
    })
}

/// Adds PEM data of a virConnectCertDataType; all or nothing.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextAddCertData(
    ctx: virPKIContextPtr,
    dataType: c_int,
    data: *const c_char,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        let ty = data_type(dataType)?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        ctx.add_pem(ty, unsafe { str_arg(data, "data") }?)?;
        Ok(0)
    })
}

/// Adds a PEM or DER file of a virConnectCertDataType; all or nothing.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextAddCertDataFile(
    ctx: virPKIContextPtr,
    dataType: c_int,
    path: *const c_char,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        let ty = data_type(dataType)?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        ctx.add_file(ty, unsafe { path_arg(path, "path") }?)?;
        Ok(0)
    })
}

/// Adds a further identity of `role` (VIR_PKI_ROLE_CLIENT or VIR_PKI_ROLE_SERVER): `certPem`,
/// the certificate (intermediates may follow it), and `keyPem`, its private key, checked as a
/// pair (VIR_PKI_ERR_KEY_MISMATCH). The first identity, which virPKIContextAddCertData of a
/// certificate or key type replaces, stays as it is; identities are offered in the order
/// added, after the first: a server presents the first one whose key can sign with a scheme
/// the client offered, a client answers with the first one the server's request allows and,
/// if the request names CAs, that is issued under one of them, else with none (as GnuTLS and
/// QEMU 10.2 do with server-cert-N.pem). All or nothing; the text is copied (the
/// caller keeps its strings) and parsed again by virPKIContextReload. `flags` must be 0.
/// Returns 0, or -1: VIR_PKI_ERR_INVALID_ARG (NULL `ctx`, `certPem` or `keyPem`, a bad
/// role or flags), VIR_PKI_ERR_PARSE or VIR_PKI_ERR_WRONG_TYPE (bad PEM),
/// VIR_PKI_ERR_KEY_MISMATCH. Safe to call while other threads use `ctx`: a handshake under
/// way keeps the identities it started with.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextAddIdentity(
    ctx: virPKIContextPtr,
    role: c_int,
    certPem: *const c_char,
    keyPem: *const c_char,
    flags: c_uint,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        let role = self::role(role)?;
        if flags != 0 {
            return Err(bad_value("flags", flags));
        }
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let cert = unsafe { str_arg(certPem, "certPem") }?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let key = unsafe { str_arg(keyPem, "keyPem") }?;
        ctx.add_identity(role, cert, key)?;
        Ok(0)
    })
}

/// virPKIContextAddIdentity from a certificate file and a key file (PEM or DER; the key file
/// must not be readable by others, as for virPKIContextAddCertDataFile); virPKIContextReload
/// reads both again. `flags` must be 0. Errors as virPKIContextAddIdentity, and
/// VIR_PKI_ERR_IO / VIR_PKI_ERR_INSECURE_PERMISSIONS naming the file.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextAddIdentityFile(
    ctx: virPKIContextPtr,
    role: c_int,
    certPath: *const c_char,
    keyPath: *const c_char,
    flags: c_uint,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        let role = self::role(role)?;
        if flags != 0 {
            return Err(bad_value("flags", flags));
        }
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let cert = unsafe { path_arg(certPath, "certPath") }?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let key = unsafe { path_arg(keyPath, "keyPath") }?;
        ctx.add_identity_files(role, cert, key)?;
        Ok(0)
    })
}

/// Loads libvirt's default files for a role: `pkipath` NULL = libvirt's rules for this
/// process's uid; else that directory. `flags` must be 0.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextLoadDefault(
    ctx: virPKIContextPtr,
    role: c_int,
    pkipath: *const c_char,
    flags: c_uint,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        let role = self::role(role)?;
        if flags != 0 {
            return Err(bad_value("flags", flags));
        }
        let dir = if pkipath.is_null() {
            None
        } else {
            // SAFETY: see "Pointer arguments" in ffi/mod.rs.
            Some(unsafe { path_arg(pkipath, "pkipath") }?)
        };
        ctx.load_default(role, dir)?;
        Ok(0)
    })
}

/// Sets the certificate validator (NULL cb removes it); the previous one's freecb is called.
/// The library keeps opaque until it calls freecb(opaque) (if freecb is not NULL), once: when
/// this validator is replaced or the context freed, on the thread that lets go of it last,
/// which may be a thread still verifying with it; at once if cb is NULL. If the call fails,
/// freecb is not called and opaque stays the caller's.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextSetCertificateValidator(
    ctx: virPKIContextPtr,
    cb: virConnectCertificateValidator,
    opaque: *mut c_void,
    freecb: virFreeCallback,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        set_validator(ctx, cb, opaque, freecb);
        Ok(0)
    })
}

/// Uses the known-servers file at `path` (created on the first accepted-always certificate).
#[no_mangle]
pub unsafe extern "C" fn virPKIContextSetKnownServersFile(
    ctx: virPKIContextPtr,
    path: *const c_char,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        ctx.set_known_servers_file(unsafe { path_arg(path, "path") }?)?;
        Ok(0)
    })
}

/// 1 if the context has a known-servers store (virPKIContextSetKnownServersFile, or one set
/// through the Rust API), 0 if not; -1 (VIR_PKI_ERR_INVALID_ARG) if ctx is NULL. With a
/// store, an ACCEPT_ALWAYS answer is recorded in it; without, it is accepted this time only.
/// Bindings ask this rather than remembering what they set, so a store set by another layer
/// on the same context counts. Safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextHasKnownServers(ctx: virPKIContextPtr) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        Ok(c_int::from(ctx.known_servers().is_some()))
    })
}

/// tls_allowed_dn_list: npatterns < 0 = no DN check; 0 = nobody; '*' and '?' as in libvirt.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextSetAllowedDNList(
    ctx: virPKIContextPtr,
    patterns: *const *const c_char,
    npatterns: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        if npatterns < 0 {
            ctx.set_allowed_dn_list::<&str>(None)?;
            return Ok(0);
        }
        if npatterns > 0 && patterns.is_null() {
            return Err(Error::new(ErrorKind::InvalidArg, "patterns is NULL"));
        }
        let mut list = Vec::with_capacity(npatterns as usize);
        for i in 0..npatterns as usize {
            // SAFETY: the caller passes an array of at least npatterns pointers.
            let p = unsafe { *patterns.add(i) };
            // SAFETY: see "Pointer arguments" in ffi/mod.rs.
            list.push(unsafe { str_arg(p, &format!("patterns[{i}]")) }?);
        }
        ctx.set_allowed_dn_list(Some(&list))?;
        Ok(0)
    })
}

/// The verification time, in seconds since the epoch; 0 = the system clock.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextSetVerifyTime(
    ctx: virPKIContextPtr,
    unixTime: c_longlong,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        ctx.set_verify_time((unixTime != 0).then_some(unixTime));
        Ok(0)
    })
}

/// Re-reads every file this context loaded (virPKIContextAddCertDataFile,
/// virPKIContextLoadDefault), all or nothing, the way they were loaded and in the same order;
/// data added as text (virPKIContextAddCertData) stays as it was. Unless
/// VIR_PKI_CONTEXT_NO_SANITY, a new set with an error finding is refused: -1, the old
/// credentials stay, the message names the file and the finding. On success the new set
/// replaces the old one atomically: sessions already established, and verifications under
/// way, keep what they started with; every later handshake and verification uses the new set.
/// Safe to call while other threads verify or run sessions on the context; an addition made
/// meanwhile waits for the reload. An error finding the credentials in use already have (a
/// pinned server without a CA: "no CA") does not refuse a reload; a new one does. Every
/// addition stays recorded, so take a renewed file with a reload, not by adding it again.
/// `flags` must be 0 (any other bit: VIR_PKI_ERR_INVALID_ARG).
#[no_mangle]
pub unsafe extern "C" fn virPKIContextReload(ctx: virPKIContextPtr, flags: c_uint) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        if flags != 0 {
            return Err(bad_value("flags", flags));
        }
        ctx.reload()?;
        Ok(0)
    })
}

/// The sanity check (virPKIContextCheck, and the one loading runs) warns of every certificate
/// and CRL that expires within `days` days of the verification time: a line with "expires" and
/// the days left. 30 by default; 0 turns the warning off (what has expired stays an error).
/// Warnings never fail a load. Returns 0, or -1 with VIR_PKI_ERR_INVALID_ARG for a NULL `ctx`
/// or `days` above 3650 (the horizon then unchanged). Safe to call while other threads use
/// `ctx`: a check takes the horizon once, when it starts.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextSetExpiryHorizon(
    ctx: virPKIContextPtr,
    days: c_uint,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        ctx.set_expiry_horizon(days)?;
        Ok(0)
    })
}
