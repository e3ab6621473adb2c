//! The C ABI: thin shims over the Rust API, one file per C "class".
//!
//! Every entry point runs inside `guard`: arguments are checked (NULL, enum and flag values,
//! UTF-8), the Rust API is called, a failure is stored as the thread's last error, and a panic
//! is caught and reported as `VIR_PKI_ERR_INTERNAL` instead of unwinding into C. Strings handed
//! to C are allocated with `malloc` and released with `virPKIFree`.

#![allow(non_camel_case_types, non_snake_case, clippy::missing_safety_doc)]

pub mod cert;
pub mod connect;
pub mod context;
pub mod errors;
pub mod session;
pub mod verify;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorKind, Result};

/// Runs `body`; on failure or panic records the error and returns `failed`.
pub(crate) fn guard<T>(failed: T, body: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => {
            errors::set_last_error(&e);
            failed
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            errors::set_last_error(&Error::new(
                ErrorKind::Internal,
                format!("internal error in virtpki: {what}"),
            ));
            failed
        }
    }
}

/// A required string argument: not NULL, UTF-8.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::new(ErrorKind::InvalidArg, format!("{name} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string that outlives the call.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| Error::new(ErrorKind::InvalidArg, format!("{name} is not valid UTF-8")))
}

/// A required non-NULL pointer argument.
pub(crate) unsafe fn ref_arg<'a, T>(ptr: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: a non-NULL pointer from the caller points to a live object of this type.
    unsafe { ptr.as_ref() }
        .ok_or_else(|| Error::new(ErrorKind::InvalidArg, format!("{name} is NULL")))
}

/// An invalid-argument error for an out-of-range value.
pub(crate) fn bad_value(name: &str, value: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidArg,
        format!("{name} has no meaning for the value {value}"),
    )
}

/// A port: 0 = any port; 1..=65535; anything else is an error.
pub(crate) fn port_arg(port: i32) -> Result<Option<u16>> {
    match port {
        0 => Ok(None),
        1..=65535 => Ok(Some(port as u16)),
        other => Err(bad_value("port", other)),
    }
}

/// Copies `s` into a `malloc`ed NUL-terminated string for the caller (freed with virPKIFree).
pub(crate) fn c_string(s: &str) -> Result<*mut c_char> {
    if s.as_bytes().contains(&0) {
        return Err(Error::new(ErrorKind::Internal, "a string with a NUL byte"));
    }
    // SAFETY: malloc has no preconditions; the result is checked for NULL before use.
    let ptr = unsafe { libc::malloc(s.len() + 1) } as *mut c_char;
    if ptr.is_null() {
        return Err(Error::new(ErrorKind::Internal, "out of memory"));
    }
    // SAFETY: `ptr` has room for the bytes and the terminating NUL.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr() as *const c_char, ptr, s.len());
        *ptr.add(s.len()) = 0;
    }
    Ok(ptr)
}

/// Stores a string in an optional out-parameter.
pub(crate) unsafe fn set_out(out: *mut *mut c_char, s: &str) -> Result<()> {
    if !out.is_null() {
        let value = c_string(s)?;
        // SAFETY: a non-NULL out-parameter points to writable storage for a pointer.
        unsafe { *out = value };
    }
    Ok(())
}
