//! What a context holds: the CA certificates, CRLs, trusted server certificates and the
//! identities of each role, as one immutable snapshot.
//!
//! Each role has a first identity (`client`, `server`: what `AddCertData` of a certificate or
//! key type replaces, as it always has) and may have further ones (QEMU 10.2's
//! `server-cert-N.pem`, or [`Context::add_identity`](crate::Context::add_identity)), kept in
//! load order: a server presents the first one whose key can sign with a scheme the client
//! offered, as GnuTLS (and so QEMU) does with the same directory.
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

    /// An identity of a parsed certificate chain and key, as they were (a key of another
    /// certificate stays for the sanity check to name: `KEY_MISMATCH`).
    pub(crate) fn from_parsed(cert: Parsed, key: Parsed) -> Result<Identity> {
        match (cert, key) {
            (Parsed::Certificates(chain), Parsed::PrivateKey(key)) if !chain.is_empty() => {
                Ok(Identity {
                    chain,
                    key: Some(Arc::new(key)),
                })
            }
            _ => Err(Error::new(
                ErrorKind::Internal,
                "an identity needs a certificate chain and a private key",
            )),
        }
    }

    /// [`from_parsed`](Self::from_parsed), refusing a key that does not belong to the
    /// certificate (`KEY_MISMATCH`, naming both): an identity added as a pair is checked as
    /// one, whatever the sanity flags, as GnuTLS checks every pair it loads.
    pub(crate) fn checked_pair(cert: Parsed, key: Parsed) -> Result<Identity> {
        let identity = Identity::from_parsed(cert, key)?;
        if let (Some(leaf), Some(key)) = (identity.certificate(), &identity.key) {
            if !key.matches(leaf) {
                return Err(Error::new(
                    ErrorKind::KeyMismatch,
                    format!(
                        "The private key {} does not belong to the certificate {}",
                        key.source(),
                        leaf.source()
                    ),
                ));
            }
        }
        Ok(identity)
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
    /// Further client identities, in load order, each with both halves.
    pub more_clients: Vec<Identity>,
    /// Further server identities, in load order, each with both halves.
    pub more_servers: Vec<Identity>,
}

impl Credentials {
    /// The identity of `role`.
    pub fn identity(&self, role: Role) -> &Identity {
        match role {
            Role::Client => &self.client,
            Role::Server => &self.server,
        }
    }

    /// The further identities of `role` (after the first), in load order.
    pub fn more_identities(&self, role: Role) -> &[Identity] {
        match role {
            Role::Client => &self.more_clients,
            Role::Server => &self.more_servers,
        }
    }

    /// Every identity of `role` in the order a peer is offered them: the first one (unless
    /// nothing of it is loaded), then the further ones.
    pub fn identities(&self, role: Role) -> impl Iterator<Item = &Identity> {
        let first = self.identity(role);
        (!first.is_empty())
            .then_some(first)
            .into_iter()
            .chain(self.more_identities(role))
    }

    /// A copy whose first identity of `role` is `identity` and which has no further ones: what
    /// the sanity check runs its per-identity rules on, one identity at a time.
    pub(crate) fn with_only_identity(&self, role: Role, identity: &Identity) -> Credentials {
        let mut copy = self.clone();
        match role {
            Role::Client => {
                copy.client = identity.clone();
                copy.more_clients.clear();
            }
            Role::Server => {
                copy.server = identity.clone();
                copy.more_servers.clear();
            }
        }
        copy
    }

    /// Appends a further identity of `role` (both halves, checked to belong together by the
    /// caller).
    pub(crate) fn push_identity(&mut self, role: Role, identity: Identity) {
        match role {
            Role::Client => self.more_clients.push(identity),
            Role::Server => self.more_servers.push(identity),
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
