//! What a context holds: the CA certificates, CRLs, trusted server certificates and the two
//! identities, as one immutable snapshot.
//!
//! A module of its own because the context ([`crate::context`]) keeps these snapshots while
//! the sanity check ([`crate::sanity`]) and verification ([`crate::verify`]) read them: a
//! check reads credentials, not the context that holds them.

use std::sync::Arc;

use crate::cert::Certificate;
use crate::crl::Crl;
use crate::data_type::CertDataType;
use crate::error::{Error, ErrorKind, Result};
use crate::pem::{Parsed, PrivateKey};
use crate::role::Role;

/// A certificate (with the intermediates that follow it) and its private key.
///
/// The two halves are added separately, so either may be missing for a while; a key that does
/// not belong to the certificate is reported by the sanity check (`KEY_MISMATCH`).
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// The leaf certificate first, then the intermediates sent with it.
    pub chain: Vec<Certificate>,
    /// The private key, shared between snapshots without copying it.
    pub key: Option<Arc<PrivateKey>>,
}

impl Identity {
    /// The leaf certificate.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.chain.first()
    }

    /// Whether neither half is loaded.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty() && self.key.is_none()
    }
}

/// One snapshot of everything a context holds.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The CA certificates that anchor every verification.
    pub ca_certs: Vec<Certificate>,
    /// Newest first per issuer (see `apply`): the order webpki consults them in.
    pub crls: Vec<Arc<Crl>>,
    /// Server certificates trusted as they are, for any host that they name (pinned).
    pub trusted_servers: Vec<Certificate>,
    /// What a client presents.
    pub client: Identity,
    /// What a server presents.
    pub server: Identity,
}

impl Credentials {
    /// The identity of `role`.
    pub fn identity(&self, role: Role) -> &Identity {
        match role {
            Role::Client => &self.client,
            Role::Server => &self.server,
        }
    }

    /// Applies one parsed input of type `ty`: lists accumulate, identity halves replace.
    ///
    /// Fails only before changing anything (see [`Context::update`]).
    ///
    /// [`Context::update`]: crate::context::Context::update
    pub(crate) fn apply(&mut self, ty: CertDataType, parsed: Parsed) -> Result<()> {
        let fits = matches!(
            (ty, &parsed),
            (
                CertDataType::CaCert
                    | CertDataType::ServerTrusted
                    | CertDataType::ClientCert
                    | CertDataType::ServerCert,
                Parsed::Certificates(_)
            ) | (CertDataType::CaCrl, Parsed::Crls(_))
                | (
                    CertDataType::ClientKey | CertDataType::ServerKey,
                    Parsed::PrivateKey(_)
                )
        );
        if !fits {
            return Err(Error::new(
                ErrorKind::Internal,
                format!("parsed data does not fit the {ty} slot"),
            ));
        }
        match (ty, parsed) {
            (CertDataType::CaCert, Parsed::Certificates(c)) => self.ca_certs.extend(c),
            (CertDataType::ServerTrusted, Parsed::Certificates(c)) => {
                self.trusted_servers.extend(c)
            }
            (CertDataType::ClientCert, Parsed::Certificates(c)) => self.client.chain = c,
            (CertDataType::ServerCert, Parsed::Certificates(c)) => self.server.chain = c,
            (CertDataType::CaCrl, Parsed::Crls(c)) => {
                // Newest first: webpki consults the first list of an issuer, so a CA's newer
                // list (higher CRL number; on a tie, the later addition) must come before.
                let mut crls: Vec<Arc<Crl>> = c.into_iter().rev().map(Arc::new).collect();
                crls.append(&mut self.crls);
                crls.sort_by(|a, b| b.number().cmp(a.number()));
                self.crls = crls;
            }
            (CertDataType::ClientKey, Parsed::PrivateKey(k)) => self.client.key = Some(Arc::new(k)),
            (CertDataType::ServerKey, Parsed::PrivateKey(k)) => self.server.key = Some(Arc::new(k)),
            // Checked above.
            _ => {}
        }
        Ok(())
    }
}
