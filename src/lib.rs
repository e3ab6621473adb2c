//! virtpki: X.509 credentials for libvirt-style TLS connections.

pub mod error;

pub use error::{Error, ErrorKind, Result};
