//! The proposal's process-wide functions, on one default context created on first use.

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, OnceLock};

use super::context::{
    virConnectCertificateValidator, virFreeCallback, virPKIContext, virPKIContextAddCertData,
    virPKIContextAddCertDataFile, virPKIContextPtr,
};
use super::guard;
use crate::context::{Context, ContextFlags};

/// The default context's address: it lives for the whole process and is never freed.
struct DefaultContext(*mut virPKIContext);

// SAFETY: the pointee is a virPKIContext, whose Context is Send + Sync; the pointer itself is
// never written after creation.
unsafe impl Send for DefaultContext {}
// SAFETY: as above.
unsafe impl Sync for DefaultContext {}

static DEFAULT: OnceLock<DefaultContext> = OnceLock::new();

fn default_context() -> virPKIContextPtr {
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

/// The process-wide default context (borrowed: never free it).
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
#[no_mangle]
pub unsafe extern "C" fn virConnectSetCertificateValidator(
    cb: virConnectCertificateValidator,
    opaque: *mut c_void,
    freecb: virFreeCallback,
) -> c_int {
    guard(-1, || {
        // SAFETY: the default context pointer is valid for the whole process.
        let ctx = unsafe { super::context::context(default_context()) }?;
        super::context::set_validator(ctx, cb, opaque, freecb);
        Ok(0)
    })
}
