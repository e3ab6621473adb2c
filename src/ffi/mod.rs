//! The C ABI: thin shims over the Rust API, one file per C "class".
//!
//! Every entry point runs inside `guard`: arguments are checked (NULL, enum and flag values,
//! UTF-8), the Rust API is called, a failure is stored as the thread's last error, and a panic
//! is caught and reported as `VIR_PKI_ERR_INTERNAL` instead of unwinding into C. Strings handed
//! to C are allocated with `malloc` and released with `virPKIFree`.
//!
//! # Pointer arguments
//!
//! C cannot show Rust what a pointer points to; every `unsafe` use of a pointer argument in
//! this module relies on the caller's side of the contract, as any C library does. A pointer
//! argument is NULL (the helpers `str_arg`, `path_arg`, `ref_arg`, `set_out`,
//! `context::context` and `session::with_session` check that and fail with
//! `VIR_PKI_ERR_INVALID_ARG`) or:
//! - a string: NUL-terminated and readable until the call returns;
//! - a context or session: one this library returned and that is not freed before the call
//!   returns (the objects behind them are `Sync`, so calls from several threads may share one);
//! - an out-parameter: writable storage for one pointer;
//! - a buffer with a length, or an array with a count: at least that many readable (for a
//!   read: writable) bytes or elements.
//!
//! A call site that relies on this says `// SAFETY: see "Pointer arguments" in ffi/mod.rs.`

#![allow(non_camel_case_types, non_snake_case, clippy::missing_safety_doc)]

pub mod cert;
pub mod connect;
pub mod context;
pub mod errors;
pub mod record;
pub mod session;
pub mod verify;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// Runs `body`; on failure or panic records the error and returns `failed`.
///
/// A caught panic is reported as `VIR_PKI_ERR_INTERNAL` and never printed: the library must
/// not write to the host application's stderr (see [`quiet_panics`]).
pub(crate) fn guard<T>(failed: T, body: impl FnOnce() -> Result<T>) -> T {
    let result = quiet_panics::within_entry_point(|| catch_unwind(AssertUnwindSafe(body)));
    match result {
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

/// Silence for panics inside C entry points, and only there.
///
/// The default panic hook prints the message (and maybe a backtrace) on stderr before
/// `catch_unwind` sees the panic. The hook is process-wide and belongs to the host
/// application, so it is not replaced outright: on the first entry into the C API a hook is
/// installed that stays silent while the panicking thread is inside a virtpki entry point (a
/// thread-local flag) and hands every other panic to the hook that was there before. An
/// application that installs its own hook after that takes the decision back (its hook then
/// sees virtpki's caught panics too); that is its call to make.
mod quiet_panics {
    use std::cell::Cell;
    use std::sync::Once;

    thread_local! {
        static INSIDE: Cell<bool> = const { Cell::new(false) };
    }

    static INSTALL: Once = Once::new();

    fn install() {
        // take_hook panics on a panicking thread (a C entry point called from a destructor
        // during unwinding): install on a later call instead.
        if std::thread::panicking() {
            return;
        }
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                // During thread exit the flag may be gone: then it is not our call.
                if !INSIDE.try_with(Cell::get).unwrap_or(false) {
                    previous(info);
                }
            }));
        });
    }

    /// Runs `f` with this thread marked as inside an entry point; nesting restores the mark.
    pub(super) fn within_entry_point<R>(f: impl FnOnce() -> R) -> R {
        marked(true, f)
    }

    /// Runs the application's code `f` (a validator or free callback) with the mark taken
    /// off: a panic there that the application catches itself is its own and reaches its
    /// hook, not virtpki's silence.
    pub(crate) fn outside_entry_point<R>(f: impl FnOnce() -> R) -> R {
        marked(false, f)
    }

    fn marked<R>(inside: bool, f: impl FnOnce() -> R) -> R {
        install();
        /// Puts the outer mark back however `f` ends, unwinding included, so a panic that
        /// leaves `f` never leaves the thread marked the wrong way.
        struct Restore(bool);
        impl Drop for Restore {
            fn drop(&mut self) {
                let _ = INSIDE.try_with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(INSIDE.try_with(|c| c.replace(inside)).unwrap_or(false));
        f()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_mark_is_restored_when_the_code_inside_unwinds() {
            within_entry_point(|| {
                let unwound = std::panic::catch_unwind(|| {
                    outside_entry_point(|| panic!("the application's own panic"))
                });
                assert!(unwound.is_err());
                assert!(INSIDE.with(Cell::get), "still inside the entry point");
            });
            assert!(!INSIDE.with(Cell::get), "outside again");
        }
    }
}

pub(crate) use quiet_panics::outside_entry_point;

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

/// A required path argument: a non-empty string. An empty path is refused rather than left to
/// the file system, where a directory "" would silently mean the current directory.
pub(crate) unsafe fn path_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a Path> {
    // SAFETY: as for str_arg.
    let path = unsafe { str_arg(ptr, name) }?;
    if path.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArg,
            format!("{name} is empty"),
        ));
    }
    Ok(Path::new(path))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error_not_an_unwind() {
        errors::virPKIResetLastError();
        let value = guard(-1, || -> Result<i32> { panic!("boom") });
        assert_eq!(value, -1);
        assert_eq!(errors::virPKIGetLastErrorCode(), ErrorKind::Internal.code());
        // SAFETY: after a failure the message is a NUL-terminated string owned by this thread.
        let message = unsafe { CStr::from_ptr(errors::virPKIGetLastErrorMessage()) };
        assert!(message.to_str().unwrap().contains("boom"));
    }

    /// Runs the test `name` of this test binary alone in a child process with the variable `env`
    /// set (panic hooks are process-wide); checks that it ran and passed, returns its stderr.
    fn run_child(name: &str, env: &str) -> String {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture"])
            .args(["--test-threads", "1"])
            .env(env, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}");
        stderr
    }

    /// Set in the child process of `a_caught_panic_prints_nothing`.
    const PANIC_CHILD: &str = "VIRTPKI_TEST_PANIC_CHILD";

    /// The child: one panic inside an entry point, one outside (which must still be printed).
    #[test]
    fn panic_child() {
        if std::env::var_os(PANIC_CHILD).is_none() {
            return;
        }
        let value = guard(-1, || -> Result<i32> { panic!("boom inside virtpki") });
        assert_eq!(value, -1);
        assert_eq!(errors::virPKIGetLastErrorCode(), ErrorKind::Internal.code());
        let outside = std::panic::catch_unwind(|| panic!("boom outside virtpki"));
        assert!(outside.is_err());
    }

    #[test]
    fn a_caught_panic_prints_nothing_other_panics_reach_the_previous_hook() {
        let stderr = run_child("ffi::tests::panic_child", PANIC_CHILD);
        assert!(!stderr.contains("boom inside"), "printed: {stderr}");
        assert!(stderr.contains("boom outside"), "not delegated: {stderr}");
    }

    /// Set in the child process of `the_applications_own_panics_in_callbacks_reach_its_hook`.
    const CALLBACK_CHILD: &str = "VIRTPKI_TEST_CALLBACK_PANIC_CHILD";

    /// The application's validator and free callback: each panics and catches it itself.
    unsafe extern "C" fn app_validator(
        _host: *const c_char,
        _pem: *const c_char,
        _trusted: std::ffi::c_int,
        _flags: std::ffi::c_uint,
        _opaque: *mut std::ffi::c_void,
    ) -> std::ffi::c_int {
        let caught = std::panic::catch_unwind(|| panic!("app panic in its validator"));
        i32::from(caught.is_err())
    }

    unsafe extern "C" fn app_free(_opaque: *mut std::ffi::c_void) {
        let _ = std::panic::catch_unwind(|| panic!("app panic in its free callback"));
    }

    /// The child: a verification through the C API calls the validator, freeing the context
    /// calls the free callback; a virtpki panic in between must stay silent.
    #[test]
    fn callback_panic_child() {
        use crate::generate::{
            create_ca, CaParams, CertificateAuthority, KeyType, ServerParams, Validity,
        };
        if std::env::var_os(CALLBACK_CHILD).is_none() {
            return;
        }
        let params = CaParams {
            common_name: "Callback CA".into(),
            organization: None,
            validity: Validity::days_from_now(30),
            key_type: KeyType::EcdsaP256,
        };
        let ca = create_ca(&params).unwrap();
        let server = CertificateAuthority::from_issued(&ca)
            .unwrap()
            .issue_server(&ServerParams {
                common_name: "host.example".into(),
                dns_names: Vec::new(),
                ip_addresses: Vec::new(),
                organization: None,
                validity: Validity::days_from_now(30),
                key_type: KeyType::EcdsaP256,
            })
            .unwrap();
        let ca_pem = std::ffi::CString::new(ca.cert_pem.clone()).unwrap();
        let chain = std::ffi::CString::new(server.cert_pem.clone()).unwrap();
        let host = c"host.example";
        // SAFETY: every argument is a live C string or the context made here, freed once.
        unsafe {
            let ctx = context::virPKIContextNew(0);
            assert_eq!(
                context::virPKIContextAddCertData(ctx, 0, ca_pem.as_ptr()),
                0
            );
            assert_eq!(
                context::virPKIContextSetCertificateValidator(
                    ctx,
                    Some(app_validator),
                    std::ptr::null_mut(),
                    Some(app_free),
                ),
                0
            );
            // The validator answers ACCEPT_ONCE (1) when its own panic was caught.
            assert_eq!(
                verify::virPKIContextVerifyServer(ctx, host.as_ptr(), 0, chain.as_ptr(), 0),
                0,
                "{}",
                errors::virPKIGetLastErrorCode()
            );
            context::virPKIContextFree(ctx);
        }
        assert_eq!(
            guard(-1, || -> Result<i32> { panic!("boom inside virtpki") }),
            -1
        );
    }

    #[test]
    fn the_applications_own_panics_in_callbacks_reach_its_hook() {
        let stderr = run_child("ffi::tests::callback_panic_child", CALLBACK_CHILD);
        assert!(stderr.contains("app panic in its validator"), "{stderr}");
        assert!(
            stderr.contains("app panic in its free callback"),
            "{stderr}"
        );
        assert!(!stderr.contains("boom inside"), "printed: {stderr}");
    }

    #[test]
    fn ports_and_strings() {
        assert_eq!(port_arg(0).unwrap(), None);
        assert_eq!(port_arg(16514).unwrap(), Some(16514));
        assert_eq!(port_arg(-1).unwrap_err().kind(), ErrorKind::InvalidArg);
        assert_eq!(port_arg(65536).unwrap_err().kind(), ErrorKind::InvalidArg);
        let s = c_string("abc").unwrap();
        // SAFETY: c_string returns a NUL-terminated string from malloc.
        assert_eq!(unsafe { CStr::from_ptr(s) }.to_str().unwrap(), "abc");
        // SAFETY: as above; freed once.
        unsafe { errors::virPKIFree(s as *mut std::ffi::c_void) };
        assert_eq!(c_string("a\0b").unwrap_err().kind(), ErrorKind::Internal);
        assert_eq!(
            // SAFETY: NULL is checked before any read.
            unsafe { str_arg(std::ptr::null(), "x") }
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArg
        );
        let bad = [0xffu8, 0];
        assert_eq!(
            // SAFETY: `bad` is NUL-terminated and outlives the call.
            unsafe { str_arg(bad.as_ptr() as *const c_char, "x") }
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArg
        );
    }
}
