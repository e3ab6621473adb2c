//! The proposal's process-wide functions, on one default context created on first use.

use std::ffi::{c_char, c_int, c_void};

use super::context::{
    context, default_context, set_validator, virConnectCertificateValidator, virFreeCallback,
    virPKIContextAddCertData, virPKIContextAddCertDataFile, virPKIContextPtr,
};
use super::guard;

/// The process-wide default context, created on first use. Borrowed: it lives for the whole
/// process and must never be freed (virPKIContextFree() leaves it alone).
#[no_mangle]
pub extern "C" fn virPKIDefaultContext() -> virPKIContextPtr {
    guard(std::ptr::null_mut(), || Ok(default_context()))
}

/// Adds PEM data of a virConnectCertDataType to the default context.
#[no_mangle]
pub unsafe extern "C" fn virConnectAddCertData(dataType: c_int, data: *const c_char) -> c_int {
    // SAFETY: the default context pointer is valid for the whole process.
    unsafe { virPKIContextAddCertData(default_context(), dataType, data) }
}

/// Adds a PEM or DER file of a virConnectCertDataType to the default context.
#[no_mangle]
pub unsafe extern "C" fn virConnectAddCertDataFile(
    dataType: c_int,
    dataFile: *const c_char,
) -> c_int {
    // SAFETY: as above.
    unsafe { virPKIContextAddCertDataFile(default_context(), dataType, dataFile) }
}

/// Sets the default context's certificate validator; the previous one's freecb is called.
/// opaque and freecb as for virPKIContextSetCertificateValidator(); the default context is
/// never freed, so a validator's freecb runs only when it is replaced or removed.
#[no_mangle]
pub unsafe extern "C" fn virConnectSetCertificateValidator(
    cb: virConnectCertificateValidator,
    opaque: *mut c_void,
    freecb: virFreeCallback,
) -> c_int {
    guard(-1, || {
        // SAFETY: the default context pointer is valid for the whole process.
        let ctx = unsafe { context(default_context()) }?;
        set_validator(ctx, cb, opaque, freecb);
        Ok(0)
    })
}
