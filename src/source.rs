//! Where a credential came from, so that every message can name it.

use std::fmt;
use std::path::{Path, PathBuf};

/// The origin of loaded data: a file, or PEM text handed over by the application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// PEM text passed in memory (`virConnectAddCertData`).
    Data,
    /// A file (`virConnectAddCertDataFile`, libvirt's default locations).
    File(PathBuf),
    /// Sent by the peer of a TLS session (libvirt calls it `[session]`).
    Peer,
}

impl Source {
    /// The file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::Data | Source::Peer => None,
            Source::File(p) => Some(p),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Data => f.write_str("data"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Peer => f.write_str("[session]"),
        }
    }
}
