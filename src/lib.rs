//! virtpki: X.509 credentials for libvirt-style TLS connections.

pub mod error;
pub mod known;

pub use error::{Error, ErrorKind, Result};
pub use known::{KnownServer, KnownServers, KnownServersStore, MemoryKnownServers, TrustStatus};
