//! Verification verdicts and the sanity check.

use std::ffi::{c_char, c_int, c_uint};

use super::context::{context, role, virPKIContextPtr};
use super::{bad_value, guard, port_arg, set_out, str_arg};
use crate::pem;
use crate::verify::VerifyFlags;

/// Flags of the two verify functions.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum virPKIVerifyFlags {
    /// libvirt's no_verify=1 / tls_no_verify_certificate=1: never fails on certificate checks.
    VIR_PKI_VERIFY_NO_VERIFY = 1,
}

fn verify_flags(flags: c_uint) -> crate::Result<VerifyFlags> {
    VerifyFlags::from_bits(flags).ok_or_else(|| bad_value("flags", flags))
}

/// Client role: is this server, presenting this chain (leaf first, PEM), the host we wanted?
/// port: the TCP port the known-servers entry is keyed by; 0 = any port.
/// Returns 0 if accepted, -1 if not (the error code says why). A chain of more than 16
/// certificates is refused first (VIR_PKI_ERR_TOO_LARGE), even with VIR_PKI_VERIFY_NO_VERIFY.
/// The context's validator, when asked, runs on this thread before this returns.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextVerifyServer(
    ctx: virPKIContextPtr,
    hostname: *const c_char,
    port: c_int,
    chainPEM: *const c_char,
    flags: c_uint,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let hostname = unsafe { str_arg(hostname, "hostname") }?;
        let port = port_arg(port)?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let chain = pem::parse_chain(unsafe { str_arg(chainPEM, "chainPEM") }?)?;
        ctx.verify_server(hostname, port, &chain, verify_flags(flags)?)?;
        Ok(0)
    })
}

/// Server role: is this client, presenting this chain, allowed in? On success, if dnOut is
/// not NULL, *dnOut gets the client's DN (free with virPKIFree). A chain of more than 16
/// certificates is refused first (VIR_PKI_ERR_TOO_LARGE), even with VIR_PKI_VERIFY_NO_VERIFY.
#[no_mangle]
pub unsafe extern "C" fn virPKIContextVerifyClient(
    ctx: virPKIContextPtr,
    chainPEM: *const c_char,
    dnOut: *mut *mut c_char,
    flags: c_uint,
) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let chain = pem::parse_chain(unsafe { str_arg(chainPEM, "chainPEM") }?)?;
        let verdict = ctx.verify_client(&chain, verify_flags(flags)?)?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe { set_out(dnOut, &verdict.dn) }?;
        Ok(0)
    })
}

/// Load-time sanity checks of what the context holds for a role. Returns 0 when there is no
/// error (warnings allowed), -1 otherwise; *reportOut (if not NULL) gets one finding per line,
/// also when -1 is returned for findings, and NULL when an argument is refused (so freeing it
/// with virPKIFree is right either way).
#[no_mangle]
pub unsafe extern "C" fn virPKIContextCheck(
    ctx: virPKIContextPtr,
    role: c_int,
    reportOut: *mut *mut c_char,
) -> c_int {
    guard(-1, || {
        if !reportOut.is_null() {
            // SAFETY: see "Pointer arguments" in ffi/mod.rs: a non-NULL out pointer is
            // writable.
            unsafe { *reportOut = std::ptr::null_mut() };
        }
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        let report = ctx.check(self::role(role)?);
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe { set_out(reportOut, &report.to_text()) }?;
        report.into_result().map(|_| 0)
    })
}
