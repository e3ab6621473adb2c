//! Chain building against the loaded CA certificates, done by rustls-webpki.
//!
//! Every certificate of the CA file is a trust anchor, as with GnuTLS, so a bundle holding a
//! root and its intermediates works either way. webpki does the path building, signatures,
//! validity of the leaf and intermediates, and revocation; this module picks its options the
//! way libvirt's GnuTLS setup behaves and turns its errors into ours, with libvirt's reasons.

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy, VerifiedPath,
};

use std::cell::RefCell;
use std::sync::Arc;

use crate::cert::{Certificate, UnixSeconds};
use crate::crl::Crl;
use crate::error::{Error, ErrorKind, Result};
use crate::profile;
use crate::revocation;

/// Accepts every extended key usage: purposes are judged separately, with libvirt's rules.
pub struct AnyPurpose;

impl ExtendedKeyUsageValidator for AnyPurpose {
    fn validate(&self, _: KeyPurposeIdIter<'_, '_>) -> std::result::Result<(), webpki::Error> {
        Ok(())
    }
}

/// What a successful chain check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// Index in the CA list of the trust anchor the path ends at.
    pub anchor: usize,
    /// Indexes in the CA list of the CA certificates used as intermediates.
    pub ca_intermediates: Vec<usize>,
    /// Indexes in the presented chain of the intermediates used (leaf's issuer first).
    pub chain_intermediates: Vec<usize>,
}

/// Checks `chain` (leaf first, then intermediates the peer sent) against `cas` and `crls`,
/// with the profile `rules` applied to each candidate path.
///
/// A CA with no CRL loaded counts as "not revoked" (GnuTLS's behaviour); a loaded CRL is
/// enforced for every certificate of the chain. An expired CRL is still applied.
pub fn verify(
    chain: &[Certificate],
    cas: &[Certificate],
    crls: &[Arc<Crl>],
    now: UnixSeconds,
    usage: impl ExtendedKeyUsageValidator,
    rules: Option<profile::Rules>,
) -> Result<VerifiedChain> {
    let leaf = chain
        .first()
        .ok_or_else(|| Error::new(ErrorKind::InvalidArg, "an empty certificate chain"))?;
    if cas.is_empty() {
        return Err(Error::new(
            ErrorKind::NoCa,
            "no CA certificate is loaded to verify against",
        ));
    }
    let anchors: Vec<TrustAnchor<'_>> = cas
        .iter()
        .filter_map(|ca| webpki::anchor_from_trusted_cert(ca.der()).ok())
        .collect();
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .chain(cas.iter())
        .map(|c| c.der().clone())
        .collect();
    let ee = EndEntityCert::try_from(leaf.der()).map_err(|e| map_webpki_error(&e))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;

    // One path search by webpki, with or without revocation; returns the path found as our
    // certificates: leaf, intermediates, anchor.
    let search = |with_revocation: bool| -> Result<(VerifiedChain, Vec<&Certificate>)> {
        let webpki_crls: Vec<&CertRevocationList<'_>> = if with_revocation {
            crls.iter().map(|c| c.webpki()).collect()
        } else {
            Vec::new()
        };
        let revocation = RevocationOptionsBuilder::new(&webpki_crls).ok().map(|b| {
            b.with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Allow)
                .build()
        });
        // The first profile violation of a path webpki found, reported if none is accepted.
        let violation = RefCell::new(None);
        let check_profile = |path: &VerifiedPath<'_>| -> std::result::Result<(), webpki::Error> {
            let Some(rules) = rules else { return Ok(()) };
            let anchor = &cas[anchor_index(cas, path.anchor())];
            let path_cas = path_intermediates(path, chain, cas);
            profile::check_path(leaf, &path_cas, anchor, rules).map_err(|e| {
                violation.borrow_mut().get_or_insert(e);
                webpki::Error::UnknownIssuer
            })
        };
        let path = ee
            .verify_for_usage(
                algs,
                &anchors,
                &intermediates,
                time,
                &usage,
                revocation,
                Some(&check_profile),
            )
            .map_err(|e| {
                violation
                    .borrow_mut()
                    .take()
                    .unwrap_or_else(|| map_webpki_error(&e))
            })?;
        let anchor = anchor_index(cas, path.anchor());
        let position =
            |list: &[Certificate], der: &[u8]| list.iter().position(|c| c.der().as_ref() == der);
        let verified = VerifiedChain {
            anchor,
            ca_intermediates: path
                .intermediate_certificates()
                .filter_map(|c| position(cas, c.der().as_ref()))
                .collect(),
            chain_intermediates: path
                .intermediate_certificates()
                .filter_map(|c| position(chain, c.der().as_ref()))
                .collect(),
        };
        let mut certs = vec![leaf];
        certs.extend(path_intermediates(&path, chain, cas));
        certs.push(&cas[anchor]);
        Ok((verified, certs))
    };

    if !crls.is_empty() {
        // webpki re-verifies a CRL's signature on every call; when every CRL this path needs
        // is one webpki has already verified for that issuer, the serials are enough.
        if let Ok((verified, certs)) = search(false) {
            if revocation::known_not_revoked(&certs, crls) {
                return Ok(verified);
            }
        }
    }
    let (verified, certs) = search(true)?;
    revocation::remember_verified(&certs, crls);
    Ok(verified)
}

/// The intermediates of a path found by webpki, as our certificates (leaf's issuer first).
fn path_intermediates<'a>(
    path: &VerifiedPath<'_>,
    chain: &'a [Certificate],
    cas: &'a [Certificate],
) -> Vec<&'a Certificate> {
    path.intermediate_certificates()
        .filter_map(|der| {
            chain[1..]
                .iter()
                .chain(cas)
                .find(|c| c.der().as_ref() == der.der().as_ref())
        })
        .collect()
}

/// The CA certificate a webpki trust anchor was made from.
fn anchor_index(cas: &[Certificate], anchor: &TrustAnchor<'_>) -> usize {
    cas.iter()
        .position(|ca| {
            webpki::anchor_from_trusted_cert(ca.der()).is_ok_and(|a| {
                a.subject.as_ref() == anchor.subject.as_ref()
                    && a.subject_public_key_info.as_ref() == anchor.subject_public_key_info.as_ref()
            })
        })
        .unwrap_or(0)
}

/// Our kind and libvirt's reason (where it has one) for a webpki failure.
pub fn map_webpki_error(e: &webpki::Error) -> Error {
    use webpki::Error as W;
    let (kind, reason) = match e {
        W::UnknownIssuer => (
            ErrorKind::UnknownIssuer,
            "The certificate hasn't got a known issuer.".to_owned(),
        ),
        W::CertExpired { .. } => (
            ErrorKind::Expired,
            "The certificate has expired.".to_owned(),
        ),
        W::CertNotValidYet { .. } => (
            ErrorKind::NotYetValid,
            "The certificate is not yet active.".to_owned(),
        ),
        W::CertRevoked => (
            ErrorKind::Revoked,
            "The certificate has been revoked.".to_owned(),
        ),
        W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => (
            ErrorKind::BadSignature,
            "The certificate uses an insecure algorithm".to_owned(),
        ),
        W::InvalidSignatureForPublicKey => (
            ErrorKind::BadSignature,
            "The certificate is not trusted: its signature is invalid.".to_owned(),
        ),
        W::CaUsedAsEndEntity => (
            ErrorKind::NotCa,
            "The certificate's basic constraints show a CA, but a TLS peer must not be one."
                .to_owned(),
        ),
        W::EndEntityUsedAsCa => (
            ErrorKind::NotCa,
            "An issuer in the chain is not a CA (basic constraints).".to_owned(),
        ),
        W::RequiredEkuNotFoundContext(_) => (
            ErrorKind::Purpose,
            "The certificate's purpose (extended key usage) does not allow this use.".to_owned(),
        ),
        W::CrlExpired { .. } => (
            ErrorKind::Revoked,
            "The revocation list has expired.".to_owned(),
        ),
        W::InvalidCrlSignatureForPublicKey
        | W::UnsupportedCrlSignatureAlgorithmContext(_)
        | W::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => (
            ErrorKind::BadSignature,
            "The revocation list's signature is invalid or insecure.".to_owned(),
        ),
        W::IssuerNotCrlSigner => (
            ErrorKind::KeyUsage,
            "The revocation list's issuer may not sign CRLs (key usage).".to_owned(),
        ),
        W::UnsupportedCertVersion => (
            ErrorKind::Parse,
            "The certificate is X.509 version 1, which rustls-webpki does not accept (GnuTLS \
             does); re-issue it as version 3 (any certificate with extensions is)."
                .to_owned(),
        ),
        W::BadDer | W::BadDerTime | W::TrailingData(_) => (
            ErrorKind::Parse,
            format!("The certificate cannot be read ({e:?})."),
        ),
        other => (
            ErrorKind::UnknownIssuer,
            format!("The certificate is not trusted ({other:?})."),
        ),
    };
    Error::new(kind, reason)
}
