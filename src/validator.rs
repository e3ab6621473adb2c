//! The application's say on server certificates: the validator callback (the proposal's
//! certificate validator), what it is asked and what it answers.
//!
//! A module of its own because a context ([`crate::context`]) holds the validator and
//! verification ([`crate::verify`]) asks it: the callback's types belong to neither.

use crate::cert::Certificate;
use crate::error::Error;

/// What the validator is told besides the certificate; the C API's
/// `VIR_CONNECT_CERT_VALIDATE_*` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValidateFlags(u32);

impl ValidateFlags {
    /// The host was trusted with a different certificate.
    pub const CHANGED: ValidateFlags = ValidateFlags(1 << 0);
    /// ... and the new one has the same public key (a renewal).
    pub const SAME_KEY: ValidateFlags = ValidateFlags(1 << 1);
    /// The certificate failed CA validation (only with `PROMPT_UNVERIFIED`).
    pub const UNVERIFIED: ValidateFlags = ValidateFlags(1 << 2);

    /// The C bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: ValidateFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for ValidateFlags {
    type Output = ValidateFlags;
    fn bitor(self, rhs: ValidateFlags) -> ValidateFlags {
        ValidateFlags(self.0 | rhs.0)
    }
}

/// The application's answer; the C API's `VIR_CONNECT_CERT_*` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidatorAnswer {
    /// Reject: verification fails.
    Reject = 0,
    /// Accept for this verification only.
    AcceptOnce = 1,
    /// Accept and record in the known-servers store.
    AcceptAlways = 2,
}

impl ValidatorAnswer {
    /// The answer for a C return value: anything but 1 and 2 rejects (fail closed).
    pub fn from_code(code: i32) -> ValidatorAnswer {
        match code {
            1 => ValidatorAnswer::AcceptOnce,
            2 => ValidatorAnswer::AcceptAlways,
            _ => ValidatorAnswer::Reject,
        }
    }
}

/// What the validator is asked about.
#[derive(Debug)]
pub struct ValidationRequest<'a> {
    /// The host name as the caller gave it.
    pub hostname: &'a str,
    /// The port the known-servers entry is keyed by; `None` = any port.
    pub port: Option<u16>,
    /// The server's leaf certificate.
    pub certificate: &'a Certificate,
    /// Whether this exact certificate is already trusted for this host: recorded for it, or
    /// trusted for any host (pinned) and naming it.
    pub trusted: bool,
    /// What else the validator is told (a changed certificate, a failed CA validation).
    pub flags: ValidateFlags,
    /// Why CA validation failed, with [`ValidateFlags::UNVERIFIED`].
    pub failure: Option<&'a Error>,
}

/// The application's say on server certificates (the proposal's certificate validator).
pub trait CertificateValidator: Send + Sync {
    /// Decides on one server certificate; called on the thread that verifies.
    fn validate(&self, request: &ValidationRequest<'_>) -> ValidatorAnswer;
}

impl<F> CertificateValidator for F
where
    F: Fn(&ValidationRequest<'_>) -> ValidatorAnswer + Send + Sync,
{
    fn validate(&self, request: &ValidationRequest<'_>) -> ValidatorAnswer {
        self(request)
    }
}
