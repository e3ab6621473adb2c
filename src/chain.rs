//! Chain building against the loaded CA certificates, done by rustls-webpki.
//!
//! Every certificate of the CA file is a trust anchor, as with GnuTLS, so a bundle holding a
//! root and its intermediates works either way. webpki does the path building, signatures,
//! validity of the leaf and intermediates, and revocation; this module picks its options the
//! way libvirt's GnuTLS setup behaves and turns its errors into ours, with libvirt's reasons.
//!
//! [`verify_path`] also says *why* no path was accepted, as an [`Unverified`]: only "no loaded
//! CA issued this" may ever be overridden by a pin or a validator (see `verify.rs`); every
//! other reason, including webpki giving up on its work budget, is final.
//!
//! The trust anchor of a path is found by pointer identity in the anchor list webpki was
//! given, so that two CA certificates making the same anchor (a root and its renewal: same
//! name, same key) are told apart; a path whose anchor certificate is not valid now is refused
//! inside the search, so that webpki goes on to the next candidate (the renewal).

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy, VerifiedPath,
};

use std::cell::RefCell;
use std::sync::Arc;

use crate::cert::{Certificate, Validity};
use crate::crl::Crl;
use crate::error::{Error, ErrorKind, Result};
use crate::profile;
use crate::revocation;
use crate::timefmt::UnixSeconds;

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

/// Why no path was accepted.
#[derive(Debug)]
pub enum Unverified {
    /// No loaded CA issued the chain: webpki's own `UnknownIssuer` (no candidate path failed
    /// for any other reason), or every path it found went through a CA that a profile rule
    /// disqualifies as an issuer. The only reason a pin or a validator may override.
    NoIssuer(Error),
    /// Anything else (revoked, expired, bad signature, a CA not valid now, webpki's work budget
    /// exhausted, an error this module does not know): final.
    Refused(Error),
}

impl Unverified {
    /// The error, whatever the class.
    pub fn into_error(self) -> Error {
        match self {
            Unverified::NoIssuer(e) | Unverified::Refused(e) => e,
        }
    }
}

/// Checks `chain` (leaf first, then intermediates the peer sent) against `cas` and `crls`,
/// with the profile `rules` applied to each candidate path.
///
/// A CA with no CRL loaded counts as "not revoked" (GnuTLS's behaviour); a loaded CRL is
/// enforced for every certificate of the chain. An expired CRL is still applied.
///
/// For one's own credentials (the sanity check): a CA certificate valid now is preferred as
/// the anchor; when there is none, the path through one that is not valid now is returned, as
/// the check reports CA times itself.
pub fn verify(
    chain: &[Certificate],
    cas: &[Certificate],
    crls: &[Arc<Crl>],
    now: UnixSeconds,
    usage: impl ExtendedKeyUsageValidator,
    rules: Option<profile::Rules>,
) -> Result<VerifiedChain> {
    search_paths(None, chain, cas, crls, now, &usage, rules, true)
        .or_else(|_| search_paths(None, chain, cas, crls, now, &usage, rules, false))
        .map_err(Unverified::into_error)
}

/// [`verify`] for a peer's chain: a path through a CA certificate that is not valid now is
/// refused, and the reason for a failure is classified.
pub fn verify_path(
    chain: &[Certificate],
    cas: &[Certificate],
    crls: &[Arc<Crl>],
    now: UnixSeconds,
    usage: impl ExtendedKeyUsageValidator,
    rules: Option<profile::Rules>,
) -> std::result::Result<VerifiedChain, Unverified> {
    verify_path_of(None, chain, cas, crls, now, usage, rules)
}

/// [`verify_path`] with webpki's parse of `chain[0]` when the caller has it: a server's
/// verification parses the leaf once, for the path and the host name.
pub(crate) fn verify_path_of(
    parsed_leaf: Option<&EndEntityCert<'_>>,
    chain: &[Certificate],
    cas: &[Certificate],
    crls: &[Arc<Crl>],
    now: UnixSeconds,
    usage: impl ExtendedKeyUsageValidator,
    rules: Option<profile::Rules>,
) -> std::result::Result<VerifiedChain, Unverified> {
    search_paths(parsed_leaf, chain, cas, crls, now, &usage, rules, true)
}

/// A path found, with our certificates on it (leaf, intermediates, anchor); or why none was.
type Searched<'a> = std::result::Result<(VerifiedChain, Vec<&'a Certificate>), Unverified>;

/// The path search; `anchor_valid_now` refuses paths through an anchor not valid at `now`;
/// `parsed_leaf` is webpki's parse of `chain[0]` when the caller has it.
#[allow(
    clippy::too_many_arguments,
    reason = "the path search's inputs; its public callers take fewer"
)]
fn search_paths<U: ExtendedKeyUsageValidator>(
    parsed_leaf: Option<&EndEntityCert<'_>>,
    chain: &[Certificate],
    cas: &[Certificate],
    crls: &[Arc<Crl>],
    now: UnixSeconds,
    usage: &U,
    rules: Option<profile::Rules>,
    anchor_valid_now: bool,
) -> std::result::Result<VerifiedChain, Unverified> {
    let leaf = chain.first().ok_or_else(|| {
        Unverified::Refused(Error::new(
            ErrorKind::InvalidArg,
            "an empty certificate chain",
        ))
    })?;
    if cas.is_empty() {
        return Err(Unverified::NoIssuer(Error::new(
            ErrorKind::NoCa,
            "no CA certificate is loaded to verify against",
        )));
    }
    // The anchors and, at the same position, the index of the CA certificate each was made
    // from: webpki hands back a reference into `anchors`, found again by address.
    let (anchor_cas, anchors): (Vec<usize>, Vec<TrustAnchor<'_>>) = cas
        .iter()
        .enumerate()
        .filter_map(|(i, ca)| Some((i, webpki::anchor_from_trusted_cert(ca.der()).ok()?)))
        .unzip();
    let anchor_index = |anchor: &TrustAnchor<'_>| {
        anchors
            .iter()
            .position(|a| std::ptr::eq(a, anchor))
            .map(|i| anchor_cas[i])
    };
    // The peer's certificates, then the loaded CAs of version 3: webpki parses every
    // candidate intermediate before comparing names and refuses versions 1 and 2, so one
    // such CA in the bundle (GnuTLS and webpki take it as an anchor, and old bundles have
    // them) would end every failed search, about any certificate, in that parse error, a
    // final one. (Checking the version costs nothing; a full parse of every CA on every
    // verification cost a third of it with 150 CAs.) Borrowed, not copied.
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .chain(cas.iter().filter(|c| c.version() == 3))
        .map(|c| CertificateDer::from(c.der().as_ref()))
        .collect();
    let parsed_here;
    let ee = match parsed_leaf {
        Some(ee) => ee,
        None => {
            parsed_here = EndEntityCert::try_from(leaf.der())
                .map_err(|e| Unverified::Refused(map_webpki_error(&e)))?;
            &parsed_here
        }
    };
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    let provider = crate::crypto::provider();
    let algs = provider.signature_verification_algorithms.all;

    // One path search by webpki, with or without revocation; returns the path found as our
    // certificates: leaf, intermediates, anchor.
    let search = |with_revocation: bool| -> Searched<'_> {
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
        // The first refusal of a path webpki found (a CA not valid now, a profile rule),
        // reported if none is accepted; the first final one (any kind but "this CA cannot
        // be an issuer") replaces an issuer one, so that a failure is overridable only
        // when every refused path was refused for its issuer.
        let violation: RefCell<Option<Error>> = RefCell::new(None);
        let check_path = |path: &VerifiedPath<'_>| -> std::result::Result<(), webpki::Error> {
            let refuse = |e: Error| {
                let mut first = violation.borrow_mut();
                let issuer = |e: &Error| e.kind() == ErrorKind::UnknownIssuer;
                if first.as_ref().is_none_or(|f| issuer(f) && !issuer(&e)) {
                    *first = Some(e);
                }
                Err(webpki::Error::UnknownIssuer)
            };
            let Some(index) = anchor_index(path.anchor()) else {
                return refuse(Error::new(
                    ErrorKind::Internal,
                    "rustls-webpki returned a trust anchor that is not one of ours",
                ));
            };
            let anchor = &cas[index];
            if let Some(e) = anchor_time_error(anchor, now).filter(|_| anchor_valid_now) {
                return refuse(e);
            }
            let Some(rules) = rules else { return Ok(()) };
            let path_cas = path_intermediates(path, chain, cas);
            match profile::check_path(leaf, &path_cas, anchor, rules) {
                Ok(()) => Ok(()),
                Err(e) => refuse(e),
            }
        };
        let path = ee
            .verify_for_usage(
                algs,
                &anchors,
                &intermediates,
                time,
                usage,
                revocation,
                Some(&check_path),
            )
            .map_err(|e| classify(&e, violation.borrow_mut().take()))?;
        let anchor = anchor_index(path.anchor()).ok_or_else(|| {
            Unverified::Refused(Error::new(
                ErrorKind::Internal,
                "rustls-webpki returned a trust anchor that is not one of ours",
            ))
        })?;
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

/// Why a CA certificate cannot anchor a path now, if it cannot.
fn anchor_time_error(ca: &Certificate, now: UnixSeconds) -> Option<Error> {
    let (kind, verb) = match ca.validity_at(now) {
        Validity::Valid => return None,
        Validity::Expired => (ErrorKind::Expired, "has expired"),
        Validity::NotYetValid => (ErrorKind::NotYetValid, "is not yet active"),
    };
    Some(Error::new(
        kind,
        format!(
            "The CA certificate {} ({}) {verb}",
            ca.source(),
            ca.subject()
        ),
    ))
}

/// The reason webpki's search failed, from its error and the first path this module refused.
///
/// webpki's `UnknownIssuer` is its "nothing more specific" answer; then the path refused here
/// explains more, and only a refusal of kind `UnknownIssuer` (a CA that cannot be an issuer)
/// keeps the failure in the overridable class. Any other webpki error is final and reported as
/// itself when it is one that must never be hidden (revocation, the work budget), else the
/// refused path is the better explanation.
fn classify(e: &webpki::Error, refused: Option<Error>) -> Unverified {
    use webpki::Error as W;
    match (e, refused) {
        (W::UnknownIssuer, None) => Unverified::NoIssuer(map_webpki_error(e)),
        (W::UnknownIssuer, Some(r)) if r.kind() == ErrorKind::UnknownIssuer => {
            Unverified::NoIssuer(r)
        }
        (W::UnknownIssuer, Some(r)) => Unverified::Refused(r),
        (
            W::CertRevoked
            | W::MaximumSignatureChecksExceeded
            | W::MaximumPathBuildCallsExceeded
            | W::MaximumNameConstraintComparisonsExceeded
            | W::MaximumPathDepthExceeded,
            _,
        ) => Unverified::Refused(map_webpki_error(e)),
        (_, Some(r)) if r.kind() != ErrorKind::UnknownIssuer => Unverified::Refused(r),
        (_, _) => Unverified::Refused(map_webpki_error(e)),
    }
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

/// Our kind and libvirt's reason (where it has one) for a webpki failure.
///
/// Only webpki's `UnknownIssuer` becomes [`ErrorKind::UnknownIssuer`]. Its work limits (too
/// many signatures, path-building calls or name comparisons, too deep a path) are
/// [`ErrorKind::TooLarge`], as for a peer chain over the length cap; an error this library does
/// not know (a newer webpki) is [`ErrorKind::BadSignature`], "the chain cannot be trusted":
/// both are never overridden.
#[allow(deprecated)]
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
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | W::UnsupportedSignatureAlgorithm
        | W::UnsupportedSignatureAlgorithmForPublicKey => (
            ErrorKind::BadSignature,
            "The certificate uses an insecure algorithm".to_owned(),
        ),
        W::InvalidSignatureForPublicKey | W::SignatureAlgorithmMismatch => (
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
        W::PathLenConstraintViolated => (
            ErrorKind::NotCa,
            "An issuer in the chain is not allowed that many CAs below it (basic constraints \
             path length)."
                .to_owned(),
        ),
        W::NameConstraintViolation => (
            ErrorKind::NotCa,
            "An issuer in the chain is not allowed to issue for the certificate's names (name \
             constraints)."
                .to_owned(),
        ),
        W::RequiredEkuNotFoundContext(_) | W::RequiredEkuNotFound => (
            ErrorKind::Purpose,
            "The certificate's purpose (extended key usage) does not allow this use.".to_owned(),
        ),
        W::CertNotValidForName(_) => (
            ErrorKind::HostnameMismatch,
            "The certificate's owner does not match the host name.".to_owned(),
        ),
        W::CrlExpired { .. } => (
            ErrorKind::Revoked,
            "The revocation list has expired.".to_owned(),
        ),
        W::InvalidCrlSignatureForPublicKey
        | W::UnsupportedCrlSignatureAlgorithmContext(_)
        | W::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_)
        | W::UnsupportedCrlSignatureAlgorithm
        | W::UnsupportedCrlSignatureAlgorithmForPublicKey => (
            ErrorKind::BadSignature,
            "The revocation list's signature is invalid or insecure.".to_owned(),
        ),
        W::IssuerNotCrlSigner => (
            ErrorKind::KeyUsage,
            "The revocation list's issuer may not sign CRLs (key usage).".to_owned(),
        ),
        W::UnknownRevocationStatus
        | W::InvalidCrlNumber
        | W::UnsupportedCrlVersion
        | W::UnsupportedDeltaCrl
        | W::UnsupportedIndirectCrl
        | W::UnsupportedRevocationReason
        | W::UnsupportedRevocationReasonsPartitioning
        | W::UnsupportedCrlIssuingDistributionPoint => (
            ErrorKind::Revoked,
            format!("The revocation status cannot be determined: the CRL is unusable ({e:?})."),
        ),
        W::MaximumSignatureChecksExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumNameConstraintComparisonsExceeded
        | W::MaximumPathDepthExceeded => (
            ErrorKind::TooLarge,
            format!(
                "The certificate chain is refused: rustls-webpki gave up building a path \
                 within its limits ({e:?}); the peer sent certificates that do not form a \
                 plain chain."
            ),
        ),
        W::UnsupportedCertVersion => (
            ErrorKind::Parse,
            "The certificate is X.509 version 1, which rustls-webpki does not accept (GnuTLS \
             does); re-issue it as version 3 (any certificate with extensions is)."
                .to_owned(),
        ),
        W::UnsupportedCriticalExtension => (
            ErrorKind::Parse,
            "A certificate of the chain has a critical extension that cannot be processed."
                .to_owned(),
        ),
        W::BadDer
        | W::BadDerTime
        | W::TrailingData(_)
        | W::MalformedDnsIdentifier
        | W::MalformedNameConstraint
        | W::MalformedExtensions
        | W::ExtensionValueInvalid
        | W::InvalidCertValidity
        | W::InvalidSerialNumber
        | W::InvalidNetworkMaskConstraint
        | W::EmptyEkuExtension
        | W::UnsupportedNameType => (
            ErrorKind::Parse,
            format!("The certificate cannot be read ({e:?})."),
        ),
        other => (
            ErrorKind::BadSignature,
            format!(
                "The certificate is not trusted: rustls-webpki refused it for a reason this \
                 library does not classify ({other:?})."
            ),
        ),
    };
    Error::new(kind, reason)
}
