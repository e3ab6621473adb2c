//! virtpki: X.509 credentials for libvirt-style TLS connections.

pub mod cert;
mod der;
pub mod dn;
pub mod error;
pub mod source;
pub mod timefmt;

pub use cert::Certificate;
pub use error::{Error, ErrorKind, Result};
pub use source::Source;
