//! virtpki: X.509 credentials for libvirt-style TLS connections.
//!
//! A [`Context`] holds CA certificates, CRLs, trusted server certificates and the client and
//! server identities, added from PEM text, files or libvirt's default locations
//! ([`locations`]). Every input is parsed and checked completely when it is added
//! ([`pem`]); certificates are modelled once ([`cert`]) with libvirt's DN string ([`dn`]).
//! [`sanity`] runs libvirt's load-time checks and reports every finding with a fix.
//! [`verify`] decides on every connection: server and client verification, the application's
//! validator and the [`known`] servers store. [`daemon_conf`] reads libvirtd.conf's TLS settings;
//! [`dn_match`] decides `tls_allowed_dn_list` as libvirt does and [`dn_lint`] finds the patterns
//! in it that can match no DN libvirt prints. [`file_audit`] holds the owners and modes of the
//! credential files to virt-pki-validate's expectations, and [`fsutil`] reads and writes files
//! through descriptors, so what is checked is what is used; [`machine_names`] gives the names a
//! server certificate should hold.
//!
//! The types these modules share have homes of their own, so that no module needs another
//! only for a type and the modules import each other without a circle (a test,
//! `tests/module_graph.rs`, keeps it so): [`credentials`] (what a context holds), [`role`] and
//! [`data_type`] (the C API's roles and kinds of data), [`severity`] (of every finding),
//! [`subject`] (libvirt's DN form, apart from the issuer [`generate`], which nothing on the
//! verification side imports), [`validator`] (the application's callback) and [`timefmt`]
//! (the time unit).

pub mod cert;
pub mod chain;
pub mod context;
pub mod credentials;
pub mod crl;
pub mod crypto;
pub mod daemon_conf;
pub mod data_type;
mod der;
pub mod display;
pub mod dn;
pub mod dn_lint;
pub mod dn_match;
pub mod error;
#[doc(hidden)]
pub mod ffi;
pub mod file_audit;
pub mod fsutil;
#[cfg(feature = "generate")]
pub mod generate;
pub mod known;
pub mod locations;
pub mod machine_names;
pub mod names;
pub mod pem;
pub mod profile;
pub mod revocation;
pub mod role;
pub mod sanity;
pub mod session;
pub mod severity;
pub mod source;
pub mod subject;
pub mod timefmt;
pub mod tls;
pub mod validator;
pub mod verify;

pub use cert::Certificate;
pub use context::{Context, ContextFlags, LoadReport};
pub use credentials::{Credentials, Identity};
pub use crl::Crl;
pub use data_type::CertDataType;
pub use dn_match::AllowedDnList;
pub use error::{Error, ErrorKind, Result};
pub use known::{KnownServer, KnownServers, KnownServersStore, MemoryKnownServers, TrustStatus};
pub use pem::PrivateKey;
pub use role::Role;
pub use sanity::{Finding, Report, Rule};
pub use severity::Severity;
pub use source::Source;
pub use validator::{CertificateValidator, ValidateFlags, ValidationRequest, ValidatorAnswer};
pub use verify::{Acceptance, ClientVerdict, ServerVerdict, VerifyFlags};
