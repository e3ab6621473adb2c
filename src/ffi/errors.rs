//! Per-thread last error, freeing, version.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};

use crate::error::Error;

/// Error codes (`virPKIErrorCode`): the reason the last failed call on this thread failed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum virPKIErrorCode {
    VIR_PKI_OK = 0,
    /// NULL, bad enum or flag, invalid UTF-8, empty input.
    VIR_PKI_ERR_INVALID_ARG = 1,
    /// A file cannot be read or written.
    VIR_PKI_ERR_IO = 2,
    /// Malformed PEM/DER, nothing of the expected kind found.
    VIR_PKI_ERR_PARSE = 3,
    /// E.g. a private key given as a certificate.
    VIR_PKI_ERR_WRONG_TYPE = 4,
    /// Input over the size limit.
    VIR_PKI_ERR_TOO_LARGE = 5,
    /// Private key file readable or writable by others.
    VIR_PKI_ERR_INSECURE_PERMISSIONS = 6,
    /// Private key does not belong to the certificate.
    VIR_PKI_ERR_KEY_MISMATCH = 7,
    /// Verification needs a CA certificate and none is loaded.
    VIR_PKI_ERR_NO_CA = 8,
    VIR_PKI_ERR_EXPIRED = 9,
    VIR_PKI_ERR_NOT_YET_VALID = 10,
    VIR_PKI_ERR_UNKNOWN_ISSUER = 11,
    /// An issuer or CA file entry is not a CA (basic constraints).
    VIR_PKI_ERR_NOT_CA = 12,
    VIR_PKI_ERR_KEY_USAGE = 13,
    /// Extended key usage forbids this role.
    VIR_PKI_ERR_PURPOSE = 14,
    VIR_PKI_ERR_REVOKED = 15,
    /// Invalid or insecure signature / algorithm.
    VIR_PKI_ERR_BAD_SIGNATURE = 16,
    VIR_PKI_ERR_HOSTNAME_MISMATCH = 17,
    VIR_PKI_ERR_DN_NOT_ALLOWED = 18,
    /// The application's validator rejected the certificate.
    VIR_PKI_ERR_REJECTED = 19,
    /// Known-servers store unreadable, corrupt or locked.
    VIR_PKI_ERR_STORE = 20,
    /// TLS handshake or I/O failure in a session.
    VIR_PKI_ERR_TLS = 21,
    VIR_PKI_ERR_INTERNAL = 22,
    /// The operation would block (non-blocking fd): call again when the fd is ready for what
    /// virPKISessionWants() says. Nothing was lost.
    VIR_PKI_ERR_AGAIN = 23,
}

struct LastError {
    code: c_int,
    message: Option<CString>,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = const { RefCell::new(LastError { code: 0, message: None }) };
}

/// What the getters say once this thread's error state has been destroyed: a thread-local
/// destructor (of the application's, or a C++ `thread_local`) may call into the library while
/// the thread exits, and `LocalKey::with` would abort the process there. Every access below
/// uses `try_with`; a failure that can no longer be recorded reads as an internal error.
const GONE_MESSAGE: &CStr = c"virtpki: this thread's error state is gone (the thread is exiting)";

/// Records `e` as this thread's last error (nothing, if the thread is exiting).
pub(crate) fn set_last_error(e: &Error) {
    // Messages are escaped when made (no NUL); the replacement is a second guard.
    let text = e.message().replace('\0', "\\x00");
    let _ = LAST_ERROR.try_with(|cell| {
        *cell.borrow_mut() = LastError {
            code: e.kind().code(),
            message: CString::new(text).ok(),
        }
    });
}

/// The code of this thread's last failure (`VIR_PKI_OK` when none); `VIR_PKI_ERR_INTERNAL`
/// while the thread exits and its error state is gone.
#[no_mangle]
pub extern "C" fn virPKIGetLastErrorCode() -> c_int {
    LAST_ERROR
        .try_with(|cell| cell.borrow().code)
        .unwrap_or(virPKIErrorCode::VIR_PKI_ERR_INTERNAL as c_int)
}

/// The message of this thread's last failure, or NULL when none; valid until the next call
/// into the library on this thread.
#[no_mangle]
pub extern "C" fn virPKIGetLastErrorMessage() -> *const c_char {
    LAST_ERROR
        .try_with(|cell| {
            cell.borrow()
                .message
                .as_ref()
                .map_or(std::ptr::null(), |m| m.as_ptr())
        })
        .unwrap_or(GONE_MESSAGE.as_ptr())
}

/// Clears this thread's last error (a successful call does not).
#[no_mangle]
pub extern "C" fn virPKIResetLastError() {
    let _ = LAST_ERROR.try_with(|cell| {
        *cell.borrow_mut() = LastError {
            code: 0,
            message: None,
        }
    });
}

/// Frees a char * the library returned, directly or through an out-parameter; NULL does
/// nothing. Not for contexts, sessions or the const char * of virPKIGetLastErrorMessage() and
/// virPKIVersion().
#[no_mangle]
pub unsafe extern "C" fn virPKIFree(ptr: *mut c_void) {
    // SAFETY: every string the library hands out comes from malloc (ffi::c_string).
    unsafe { libc::free(ptr) }
}

/// The library version, a static string such as "0.1.0".
#[no_mangle]
pub extern "C" fn virPKIVersion() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// The `VIR_PKI_*` enumerators of `virPKIErrorCode` in the committed header, in order.
    fn header_error_codes() -> Vec<(String, i32)> {
        let header = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/include/virtpki.h"));
        let start = header
            .find("typedef enum virPKIErrorCode {")
            .expect("the header declares virPKIErrorCode");
        let body = &header[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find("} virPKIErrorCode;").unwrap()];
        // Drop the doc comments, then read `NAME = VALUE` entries.
        let mut text = String::new();
        let mut rest = body;
        while let Some(open) = rest.find("/*") {
            text.push_str(&rest[..open]);
            rest = &rest[open + rest[open..].find("*/").expect("closed comment") + 2..];
        }
        text.push_str(rest);
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let (name, value) = entry.split_once('=').expect("NAME = VALUE");
                (
                    name.trim().to_owned(),
                    value.trim().parse().expect("a number"),
                )
            })
            .collect()
    }

    /// Every `ErrorKind` variant, written once: the list and an exhaustive `match` over it come
    /// from the same macro input, so a new variant does not compile until it is listed here,
    /// and then the test fails until `ErrorKind::ALL` has it too.
    macro_rules! every_kind {
        ($($variant:ident),* $(,)?) => {{
            #[allow(dead_code)]
            fn exhaustive(kind: ErrorKind) {
                match kind {
                    $(ErrorKind::$variant)|* => {}
                }
            }
            [$(ErrorKind::$variant),*]
        }};
    }

    /// `ErrorKind`, `ErrorKind::ALL`, `ErrorKind::c_name` and the C enum in virtpki.h are four
    /// lists of the same codes: this ties them together.
    #[test]
    fn the_error_kinds_and_the_c_enum_are_one_list() {
        let every = every_kind![
            InvalidArg,
            Io,
            Parse,
            WrongType,
            TooLarge,
            InsecurePermissions,
            KeyMismatch,
            NoCa,
            Expired,
            NotYetValid,
            UnknownIssuer,
            NotCa,
            KeyUsage,
            Purpose,
            Revoked,
            BadSignature,
            HostnameMismatch,
            DnNotAllowed,
            Rejected,
            Store,
            Tls,
            Internal,
            Again,
        ];
        assert_eq!(
            ErrorKind::ALL.to_vec(),
            every.to_vec(),
            "ErrorKind::ALL must hold every variant, in code order"
        );

        let header = header_error_codes();
        assert_eq!(header.first(), Some(&("VIR_PKI_OK".to_owned(), 0)));
        assert_eq!(virPKIErrorCode::VIR_PKI_OK as c_int, 0);
        let from_rust: Vec<(String, i32)> = ErrorKind::ALL
            .iter()
            .map(|kind| (kind.c_name().to_owned(), kind.code()))
            .collect();
        assert_eq!(
            header[1..].to_vec(),
            from_rust,
            "virPKIErrorCode in include/virtpki.h and ErrorKind (c_name, code) differ"
        );
        assert_eq!(header.len(), ErrorKind::ALL.len() + 1);

        for (name, code) in &header[1..] {
            let kind = ErrorKind::from_code(*code)
                .unwrap_or_else(|| panic!("{name} = {code} is no ErrorKind"));
            assert_eq!(kind.c_name(), name);
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::from_code(header.len() as i32), None);
    }

    /// Set in the child process of `the_getters_work_from_a_thread_local_destructor`.
    const TLS_CHILD: &str = "VIRTPKI_TEST_TLS_CHILD";

    /// Calls the getters when dropped, as a thread-local destructor would.
    struct AtExit;

    impl Drop for AtExit {
        fn drop(&mut self) {
            let code = virPKIGetLastErrorCode();
            let message = virPKIGetLastErrorMessage();
            virPKIResetLastError();
            assert_eq!(code, virPKIErrorCode::VIR_PKI_ERR_INTERNAL as c_int);
            assert!(!message.is_null());
            println!("destructor ran: code {code}");
        }
    }

    thread_local! {
        static AT_EXIT: AtExit = const { AtExit };
    }

    /// The child: `AT_EXIT` is registered before `LAST_ERROR`, so it is destroyed after it
    /// (destructors run in reverse order) and its getters find the error state gone.
    #[test]
    fn tls_child() {
        if std::env::var_os(TLS_CHILD).is_none() {
            return;
        }
        std::thread::spawn(|| {
            AT_EXIT.with(|_| {});
            set_last_error(&Error::new(crate::ErrorKind::Parse, "x"));
            assert_eq!(virPKIGetLastErrorCode(), 3);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_getters_work_from_a_thread_local_destructor() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ffi::errors::tests::tls_child", "--nocapture"])
            .env(TLS_CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
        assert!(stdout.contains("destructor ran: code 22"), "{stdout}");
    }
}
