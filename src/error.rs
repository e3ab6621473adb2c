//! One error type for the whole library.
//!
//! Every failure carries an [`ErrorKind`], which maps one-to-one onto the C error codes of
//! `virPKIErrorCode`, and a message written for a person: it names the file, the certificate
//! subject or the host concerned and the rule that failed, in the spirit of libvirt's own texts.
//!
//! Messages quote names from certificates, which whoever made them chose: every message goes
//! through [`crate::display::escape`] when it is made, so no error can carry a terminal escape
//! sequence, a forged line or a NUL to the person (or C string) it reaches.

use std::fmt;
use std::path::Path;

/// What went wrong, coarsely: the value is the C API's `virPKIErrorCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A required value is missing, or a value is out of range, not UTF-8, or empty.
    InvalidArg = 1,
    /// A file cannot be read or written.
    Io = 2,
    /// Malformed PEM or DER, or nothing of the expected kind found.
    Parse = 3,
    /// Input of another kind than expected, e.g. a private key given as a certificate.
    WrongType = 4,
    /// Input over the size limit for its type.
    TooLarge = 5,
    /// A private key file is readable or writable by other users.
    InsecurePermissions = 6,
    /// The private key does not belong to the certificate.
    KeyMismatch = 7,
    /// Verification needs a CA certificate and none is loaded.
    NoCa = 8,
    /// A certificate has expired.
    Expired = 9,
    /// A certificate is not yet valid.
    NotYetValid = 10,
    /// No chain to a loaded CA certificate could be built.
    UnknownIssuer = 11,
    /// An issuer or CA file entry is not a CA (basic constraints), or a peer leaf is a CA.
    NotCa = 12,
    /// The key usage extension forbids the use.
    KeyUsage = 13,
    /// The extended key usage forbids this role.
    Purpose = 14,
    /// A certificate is revoked by a loaded CRL.
    Revoked = 15,
    /// An invalid or insecure signature or algorithm.
    BadSignature = 16,
    /// The certificate does not name the host that was asked for.
    HostnameMismatch = 17,
    /// The client's distinguished name is not on the allowed list.
    DnNotAllowed = 18,
    /// The application's validator rejected the certificate.
    Rejected = 19,
    /// The known-servers store is unreadable, corrupt or locked.
    Store = 20,
    /// A TLS handshake or I/O failure in a session.
    Tls = 21,
    /// A bug in this library (a caught panic, a broken invariant).
    Internal = 22,
    /// The operation would block on a non-blocking fd: call again when the fd is ready for
    /// what the session wants ([`crate::session::SharedSession::wants`]).
    Again = 23,
}

impl ErrorKind {
    /// Every kind, in code order; handy for tables and tests.
    pub const ALL: [ErrorKind; 23] = [
        ErrorKind::InvalidArg,
        ErrorKind::Io,
        ErrorKind::Parse,
        ErrorKind::WrongType,
        ErrorKind::TooLarge,
        ErrorKind::InsecurePermissions,
        ErrorKind::KeyMismatch,
        ErrorKind::NoCa,
        ErrorKind::Expired,
        ErrorKind::NotYetValid,
        ErrorKind::UnknownIssuer,
        ErrorKind::NotCa,
        ErrorKind::KeyUsage,
        ErrorKind::Purpose,
        ErrorKind::Revoked,
        ErrorKind::BadSignature,
        ErrorKind::HostnameMismatch,
        ErrorKind::DnNotAllowed,
        ErrorKind::Rejected,
        ErrorKind::Store,
        ErrorKind::Tls,
        ErrorKind::Internal,
        ErrorKind::Again,
    ];

    /// The C API's error code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The kind for a C error code, if it is one.
    pub fn from_code(code: i32) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// The C enumerator's name, e.g. `VIR_PKI_ERR_EXPIRED`.
    pub fn c_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArg => "VIR_PKI_ERR_INVALID_ARG",
            ErrorKind::Io => "VIR_PKI_ERR_IO",
            ErrorKind::Parse => "VIR_PKI_ERR_PARSE",
            ErrorKind::WrongType => "VIR_PKI_ERR_WRONG_TYPE",
            ErrorKind::TooLarge => "VIR_PKI_ERR_TOO_LARGE",
            ErrorKind::InsecurePermissions => "VIR_PKI_ERR_INSECURE_PERMISSIONS",
            ErrorKind::KeyMismatch => "VIR_PKI_ERR_KEY_MISMATCH",
            ErrorKind::NoCa => "VIR_PKI_ERR_NO_CA",
            ErrorKind::Expired => "VIR_PKI_ERR_EXPIRED",
            ErrorKind::NotYetValid => "VIR_PKI_ERR_NOT_YET_VALID",
            ErrorKind::UnknownIssuer => "VIR_PKI_ERR_UNKNOWN_ISSUER",
            ErrorKind::NotCa => "VIR_PKI_ERR_NOT_CA",
            ErrorKind::KeyUsage => "VIR_PKI_ERR_KEY_USAGE",
            ErrorKind::Purpose => "VIR_PKI_ERR_PURPOSE",
            ErrorKind::Revoked => "VIR_PKI_ERR_REVOKED",
            ErrorKind::BadSignature => "VIR_PKI_ERR_BAD_SIGNATURE",
            ErrorKind::HostnameMismatch => "VIR_PKI_ERR_HOSTNAME_MISMATCH",
            ErrorKind::DnNotAllowed => "VIR_PKI_ERR_DN_NOT_ALLOWED",
            ErrorKind::Rejected => "VIR_PKI_ERR_REJECTED",
            ErrorKind::Store => "VIR_PKI_ERR_STORE",
            ErrorKind::Tls => "VIR_PKI_ERR_TLS",
            ErrorKind::Internal => "VIR_PKI_ERR_INTERNAL",
            ErrorKind::Again => "VIR_PKI_ERR_AGAIN",
        }
    }
}

/// A failure: a kind for programs and a message for people.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message for a person (control characters escaped).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: escaped(message.into()),
            source: None,
        }
    }

    /// Attach the lower-level cause (kept for `source()`, not repeated in the message).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// An I/O failure on `path`, with the operation named ("read", "open", ...).
    pub fn io(op: &str, path: &Path, err: std::io::Error) -> Error {
        Error::new(
            ErrorKind::Io,
            format!("cannot {op} {}: {err}", path.display()),
        )
        .with_source(err)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message for a person.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front of the message ("file X: ...").
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = escaped(format!("{context}: {}", self.message));
        self
    }
}

/// `text` through the display escaping, reusing it when nothing needs escaping.
fn escaped(text: String) -> String {
    match crate::display::escape(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_c_values_and_round_trip() {
        assert_eq!(ErrorKind::InvalidArg.code(), 1);
        assert_eq!(ErrorKind::Store.code(), 20);
        assert_eq!(ErrorKind::Internal.code(), 22);
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.code(), i as i32 + 1);
            assert_eq!(ErrorKind::from_code(kind.code()), Some(*kind));
        }
        assert_eq!(ErrorKind::from_code(0), None);
        assert_eq!(ErrorKind::Again.code(), 23);
        assert_eq!(ErrorKind::Again.c_name(), "VIR_PKI_ERR_AGAIN");
        assert_eq!(ErrorKind::from_code(24), None);
    }

    #[test]
    fn context_prefixes_the_message_and_keeps_the_kind() {
        let e = Error::new(ErrorKind::Parse, "no certificate found").context("/tmp/x.pem");
        assert_eq!(e.kind(), ErrorKind::Parse);
        assert_eq!(e.to_string(), "/tmp/x.pem: no certificate found");
    }

    #[test]
    fn messages_carry_no_control_characters() {
        let e = Error::new(ErrorKind::Parse, "CN=\x1b[32mTrusted\r\n\0").context("file\x07");
        assert_eq!(e.message(), "file\\x07: CN=\\x1b[32mTrusted\\x0d\\x0a\\x00");
    }

    #[test]
    fn io_errors_name_the_path_and_keep_the_cause() {
        let e = Error::io(
            "read",
            Path::new("/nowhere/cacert.pem"),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.message().contains("/nowhere/cacert.pem"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
