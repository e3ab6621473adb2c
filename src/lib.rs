//! virtpki: X.509 credentials for libvirt-style TLS connections.

pub mod dn_match;
pub mod error;

pub use dn_match::AllowedDnList;
pub use error::{Error, ErrorKind, Result};
