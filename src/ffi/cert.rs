//! Questions about one certificate.

use std::ffi::{c_char, c_int};

use super::{c_string, guard, str_arg};
use crate::cert::Certificate;
use crate::dn_match;
use crate::error::{Error, ErrorKind};
use crate::pem;

/// The first certificate of the PEM text; no certificate at all is a parse error.
unsafe fn first_certificate(pem_text: *const c_char) -> crate::Result<Certificate> {
    // SAFETY: see "Pointer arguments" in ffi/mod.rs.
    let chain = pem::parse_chain(unsafe { str_arg(pem_text, "certPEM") }?)?;
    chain
        .into_iter()
        .next()
        .ok_or_else(|| Error::new(ErrorKind::Parse, "certPEM holds no certificate"))
}

/// libvirt's DN string of the certificate, like virt-pki-query-dn; free with virPKIFree.
#[no_mangle]
pub unsafe extern "C" fn virPKICertGetDN(certPEM: *const c_char) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        c_string(unsafe { first_certificate(certPEM) }?.subject())
    })
}

/// "SHA256:" and 64 uppercase hex digits; free with virPKIFree.
#[no_mangle]
pub unsafe extern "C" fn virPKICertFingerprint(certPEM: *const c_char) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        c_string(&unsafe { first_certificate(certPEM) }?.fingerprint_string())
    })
}

/// A multi-line summary: subject, issuer, validity, SANs, key, usages, fingerprint; free with
/// virPKIFree.
#[no_mangle]
pub unsafe extern "C" fn virPKICertDescribe(certPEM: *const c_char) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        c_string(&unsafe { first_certificate(certPEM) }?.describe())
    })
}

/// 1 if `dn` matches `pattern` (tls_allowed_dn_list rules), 0 if not, -1 on error.
#[no_mangle]
pub unsafe extern "C" fn virPKIDNMatch(pattern: *const c_char, dn: *const c_char) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let pattern = unsafe { str_arg(pattern, "pattern") }?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let dn = unsafe { str_arg(dn, "dn") }?;
        Ok(c_int::from(dn_match::pattern_matches(pattern, dn)))
    })
}
