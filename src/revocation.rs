//! Revocation answers that do not need webpki to check a CRL's signature again.
//!
//! webpki verifies the signature of every CRL it consults on every verification; for a CRL
//! of 100,000 serials that is 2.3 ms of hashing, 94% of the whole verification. After webpki
//! has accepted a path with revocation checking on, the authoritative CRL of each certificate
//! on it is known to be signed by that certificate's issuer: this module remembers that (per
//! CRL, by the issuer's public key) and, next time, answers "not revoked" from the serials
//! alone. Anything else, a serial on the list, a CRL not yet verified for this issuer key, a
//! CRL with an issuing distribution point, goes back to webpki's full check, which stays the
//! only source of "revoked" and of every error on a path.
//!
//! [`revoked_without_path`] answers for certificates no path was found for (a pinned leaf),
//! so that a revoked certificate is never accepted by an override.

use std::sync::Arc;

use crate::cert::Certificate;
use crate::crl::Crl;

/// The CRL webpki consults for `cert`: the first one from its issuer. `None` when no CRL has
/// that issuer (then the certificate counts as not revoked), `Err` when the first one has an
/// issuing distribution point, whose scope rules are webpki's to apply.
fn authoritative<'a>(cert: &Certificate, crls: &'a [Arc<Crl>]) -> Result<Option<&'a Crl>, ()> {
    match crls.iter().find(|c| c.issuer_raw() == cert.issuer_raw()) {
        Some(crl) if crl.webpki().issuing_distribution_point().is_some() => Err(()),
        other => Ok(other.map(|c| &**c)),
    }
}

/// Whether every certificate of `path` (leaf, intermediates, anchor) but the anchor is known
/// not to be revoked, from CRLs already verified for its issuer.
pub fn known_not_revoked(path: &[&Certificate], crls: &[Arc<Crl>]) -> bool {
    path.windows(2).all(|pair| {
        let (cert, issuer) = (pair[0], pair[1]);
        match authoritative(cert, crls) {
            Err(()) => false,
            Ok(None) => true,
            Ok(Some(crl)) => {
                crl.is_verified_for(&issuer.spki_fingerprint())
                    && matches!(crl.webpki().find_serial(cert.raw_serial()), Ok(None))
            }
        }
    })
}

/// Records that webpki accepted `path` with revocation checking: each authoritative CRL on it
/// is signed by the issuer's key.
pub fn remember_verified(path: &[&Certificate], crls: &[Arc<Crl>]) {
    for pair in path.windows(2) {
        if let Ok(Some(crl)) = authoritative(pair[0], crls) {
            crl.mark_verified_for(pair[1].spki_fingerprint());
        }
    }
}

/// The first of `certs` that a loaded CRL revokes, checked without a path: for a peer whose
/// chain does not verify, before a pin or a validator may accept it anyway.
///
/// Every loaded list with the certificate's issuer name counts, whether or not its signature
/// can be checked: with no path the issuer is usually not at hand (a leaf pinned without its
/// intermediate), and a CA of that name that is loaded may hold another key, so "verified by
/// some CA of that name" says nothing about this certificate's issuer. The lists come from
/// the administrator's files; GnuTLS, as libvirt sets it up, consults them all likewise. A list
/// whose serials cannot be read counts as revoking: this check fails closed. It may refuse
/// where a path would not (a hold released by a newer list, a list of a same-name CA), never
/// accept where a path would refuse.
pub fn revoked_without_path<'a>(
    certs: &'a [Certificate],
    crls: &[Arc<Crl>],
) -> Option<&'a Certificate> {
    certs.iter().find(|cert| {
        crls.iter()
            .filter(|crl| crl.issuer_raw() == cert.issuer_raw())
            .any(|crl| !matches!(crl.webpki().find_serial(cert.raw_serial()), Ok(None)))
    })
}
