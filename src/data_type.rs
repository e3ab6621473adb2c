//! The kinds of credential data (the C API's `virConnectCertDataType`) and what each holds.
//!
//! A module of its own because the reader ([`crate::pem`]), the file locations
//! ([`crate::locations`]), a role's items ([`crate::role`]) and the file audit
//! ([`crate::file_audit`]) all name these kinds, and none of them should need another for it.

use std::fmt;

/// The kinds of credential data of the certificate-management proposal
/// (`virConnectCertDataType`), extended with the daemon's own identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum CertDataType {
    /// CA certificate(s); a bundle may hold several.
    CaCert = 0,
    /// Certificate revocation list(s).
    CaCrl = 1,
    /// The client's private key.
    ClientKey = 2,
    /// The client's certificate, optionally followed by intermediates.
    ClientCert = 3,
    /// Trusted (pinned) server certificate(s).
    ServerTrusted = 4,
    /// The daemon's private key.
    ServerKey = 5,
    /// The daemon's certificate, optionally followed by intermediates.
    ServerCert = 6,
}

/// One MiB.
pub(crate) const MIB: usize = 1024 * 1024;

impl CertDataType {
    /// Every type, in code order.
    pub const ALL: [CertDataType; 7] = [
        CertDataType::CaCert,
        CertDataType::CaCrl,
        CertDataType::ClientKey,
        CertDataType::ClientCert,
        CertDataType::ServerTrusted,
        CertDataType::ServerKey,
        CertDataType::ServerCert,
    ];

    /// The type for a C `dataType` value.
    pub fn from_code(code: i32) -> Option<CertDataType> {
        CertDataType::ALL
            .iter()
            .copied()
            .find(|t| *t as i32 == code)
    }

    /// What the input must contain.
    pub fn content(self) -> Content {
        match self {
            CertDataType::CaCrl => Content::Crls,
            CertDataType::ClientKey | CertDataType::ServerKey => Content::PrivateKey,
            _ => Content::Certificates,
        }
    }

    /// The largest input accepted: 1 MiB of certificates, 64 MiB of CRLs (a CRL with 100,000
    /// serials is about 4 MiB), 64 KiB for a private key (an 8192-bit RSA key is 6.5 KiB).
    pub fn size_limit(self) -> usize {
        match self.content() {
            Content::Certificates => MIB,
            Content::Crls => 64 * MIB,
            Content::PrivateKey => 64 * 1024,
        }
    }
}

impl fmt::Display for CertDataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertDataType::CaCert => "CA certificate",
            CertDataType::CaCrl => "certificate revocation list",
            CertDataType::ClientKey => "client private key",
            CertDataType::ClientCert => "client certificate",
            CertDataType::ServerTrusted => "trusted server certificate",
            CertDataType::ServerKey => "server private key",
            CertDataType::ServerCert => "server certificate",
        })
    }
}

/// What an input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// One or more certificates.
    Certificates,
    /// One or more CRLs.
    Crls,
    /// Exactly one private key.
    PrivateKey,
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Content::Certificates => "certificate",
            Content::Crls => "certificate revocation list",
            Content::PrivateKey => "private key",
        })
    }
}
