//! virtpki: X.509 credentials for libvirt-style TLS connections.
//!
//! A [`Context`] holds CA certificates, CRLs, trusted server certificates and the client and
//! server identities, added from PEM text, files or libvirt's default locations
//! ([`locations`]). Every input is parsed and checked completely when it is added
//! ([`pem`]); certificates are modelled once ([`cert`]) with libvirt's DN string ([`dn`]).
//! [`sanity`] runs libvirt's load-time checks and reports every finding with a fix.

pub mod cert;
pub mod chain;
pub mod context;
pub mod crl;
mod der;
pub mod dn;
pub mod dn_match;
pub mod error;
pub mod locations;
pub mod pem;
pub mod sanity;
pub mod source;
pub mod timefmt;

pub use cert::Certificate;
pub use context::{Context, ContextFlags, Credentials, Identity, LoadReport};
pub use crl::Crl;
pub use dn_match::AllowedDnList;
pub use error::{Error, ErrorKind, Result};
pub use locations::Role;
pub use pem::{CertDataType, PrivateKey};
pub use sanity::{Finding, Report, Rule, Severity};
pub use source::Source;
