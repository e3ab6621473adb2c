//! The two ends of a connection (the C API's `virPKIRole`) and the credential items of each.
//!
//! A module of its own because the context, the sanity check, verification, the file audit
//! and the certificate model's purpose rule all ask "for which role", and none of them should
//! need the file locations ([`crate::locations`]) to say it.

use crate::data_type::CertDataType;

/// Which end of the connection the credentials are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Role {
    /// A client (virsh, a management application): verifies servers.
    Client = 0,
    /// A daemon (libvirtd, virtproxyd): verifies clients.
    Server = 1,
}

impl Role {
    /// The role for a C `virPKIRole` value.
    pub fn from_code(code: i32) -> Option<Role> {
        match code {
            0 => Some(Role::Client),
            1 => Some(Role::Server),
            _ => None,
        }
    }

    /// `client` or `server`, as in libvirt's file names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }

    /// The data type of this role's certificate.
    pub fn cert_type(self) -> CertDataType {
        match self {
            Role::Client => CertDataType::ClientCert,
            Role::Server => CertDataType::ServerCert,
        }
    }

    /// The data type of this role's private key.
    pub fn key_type(self) -> CertDataType {
        match self {
            Role::Client => CertDataType::ClientKey,
            Role::Server => CertDataType::ServerKey,
        }
    }
}
