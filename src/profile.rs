//! RFC 5280 profile rules that rustls-webpki leaves aside, applied to a path it has built.
//!
//! webpki checks signatures, validity, basic constraints and key usage of intermediates, names
//! and revocation. It does not look at the trust anchor's extensions, at key identifiers, or at
//! several properties of the leaf that RFC 5280 and the CA/Browser Forum require. These rules
//! close that gap (they bring the x509-limbo server vectors from 39 accepted-but-invalid chains
//! to 13; see the README). Each one was checked against certificates made the way libvirt's
//! documentation and current openssl/certtool make them.
//!
//! They run as webpki's path callback, so a path that breaks one is dropped and webpki goes on
//! looking for another; the rules therefore only ever concern certificates on the path, never
//! an unrelated CA of the bundle.
//!
//! A violation of kind [`ErrorKind::UnknownIssuer`] means "this CA cannot be an issuer": when
//! every path fails that way, the certificate has no usable issuer, which a pinned certificate
//! may stand in for (see `verify.rs`). Every other kind is final, never overridden; a rule
//! about the leaf itself must never use `UnknownIssuer`.

use crate::cert::{Certificate, KeyAlgorithm, KeyUsage, SubjectAltName};
use crate::error::{Error, ErrorKind};

/// Which rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Also check the leaf's own profile (server certificates; client certificates keep
    /// libvirt's more lenient treatment).
    pub leaf: bool,
}

/// Checks the path `leaf`, `intermediates` (leaf's issuer first), `anchor`.
pub fn check_path(
    leaf: &Certificate,
    intermediates: &[&Certificate],
    anchor: &Certificate,
    rules: Rules,
) -> Result<(), Error> {
    check_anchor(anchor)?;
    for ca in intermediates {
        check_intermediate(ca)?;
    }
    if rules.leaf {
        check_leaf(leaf)?;
    }
    Ok(())
}

fn violation(kind: ErrorKind, cert: &Certificate, role: &str, rule: &str) -> Error {
    Error::new(
        kind,
        format!(
            "The {role} certificate {} ({}) {rule}.",
            cert.source(),
            cert.subject()
        ),
    )
}

fn check_anchor(ca: &Certificate) -> Result<(), Error> {
    let role = "CA";
    let facts = ca.profile();
    if let Some(oid) = facts.unknown_critical.first() {
        return Err(violation(
            ErrorKind::UnknownIssuer,
            ca,
            role,
            &format!("has a critical extension {oid} that cannot be processed"),
        ));
    }
    match ca.basic_constraints() {
        None => {
            return Err(violation(
                ErrorKind::NotCa,
                ca,
                role,
                "is missing basic constraints for a CA",
            ))
        }
        Some(bc) if !bc.ca => {
            return Err(violation(
                ErrorKind::NotCa,
                ca,
                role,
                "basic constraints do not show a CA",
            ))
        }
        Some(bc) if !bc.critical => {
            return Err(violation(
                ErrorKind::NotCa,
                ca,
                role,
                "has basic constraints that are not marked critical (RFC 5280 §4.2.1.9)",
            ))
        }
        Some(_) => {}
    }
    if ca
        .key_usage()
        .is_some_and(|ku| !ku.allows(KeyUsage::KEY_CERT_SIGN))
    {
        return Err(violation(
            ErrorKind::KeyUsage,
            ca,
            role,
            "usage does not permit certificate signing",
        ));
    }
    if ca.is_self_issued() {
        if let Some(aki) = &facts.authority_key_id {
            let consistent = match (aki, &facts.subject_key_id) {
                (None, _) => false,
                (Some(id), Some(ski)) => id == ski,
                (Some(_), None) => true,
            };
            if !consistent {
                return Err(violation(
                    ErrorKind::UnknownIssuer,
                    ca,
                    role,
                    "has an authority key identifier that does not match its own key identifier",
                ));
            }
        }
    }
    check_ca_common(ca, role)
}

fn check_intermediate(ca: &Certificate) -> Result<(), Error> {
    let role = "intermediate CA";
    check_ca_common(ca, role)?;
    if !ca.is_self_issued() {
        check_authority_key_id(ca, role)?;
    }
    Ok(())
}

/// Rules for every CA of the path.
fn check_ca_common(ca: &Certificate, role: &str) -> Result<(), Error> {
    let facts = ca.profile();
    if ca.subject_raw() == [0x30, 0x00] {
        return Err(violation(
            ErrorKind::UnknownIssuer,
            ca,
            role,
            "has an empty subject",
        ));
    }
    if facts.subject_key_id.is_none() {
        return Err(violation(
            ErrorKind::UnknownIssuer,
            ca,
            role,
            "has no subject key identifier (RFC 5280 §4.2.1.2)",
        ));
    }
    if facts.malformed_name_constraints {
        return Err(violation(
            ErrorKind::UnknownIssuer,
            ca,
            role,
            "has malformed name constraints (empty, or a DNS name starting with '.')",
        ));
    }
    check_common(ca, role)
}

/// Rules for every certificate of the path.
fn check_common(cert: &Certificate, role: &str) -> Result<(), Error> {
    if cert.profile().malformed_aia {
        return Err(violation(
            ErrorKind::Parse,
            cert,
            role,
            "has a malformed authority information access extension",
        ));
    }
    if let KeyAlgorithm::Rsa { bits } = cert.key_algorithm() {
        if bits % 8 != 0 {
            return Err(violation(
                ErrorKind::BadSignature,
                cert,
                role,
                &format!("has an RSA key of {bits} bits, not a whole number of bytes"),
            ));
        }
    }
    Ok(())
}

fn check_authority_key_id(cert: &Certificate, role: &str) -> Result<(), Error> {
    match &cert.profile().authority_key_id {
        Some(Some(_)) => Ok(()),
        _ => Err(violation(
            ErrorKind::Parse,
            cert,
            role,
            "has no authority key identifier (RFC 5280 §4.2.1.1): re-issue it (virtpki issue, certtool and OpenSSL 3 add one)",
        )),
    }
}

/// The server certificate's own rules, without a path: for a certificate a pin, a
/// known-servers entry or the validator accepts in place of its issuer. They are about the
/// certificate, not its issuer, so no override lifts them.
pub fn check_server_leaf(leaf: &Certificate) -> Result<(), Error> {
    check_leaf(leaf)
}

fn check_leaf(leaf: &Certificate) -> Result<(), Error> {
    let role = "server";
    check_common(leaf, role)?;
    if !leaf.is_self_issued() {
        check_authority_key_id(leaf, role)?;
    }
    if leaf.has_name_constraints() {
        return Err(violation(
            ErrorKind::Parse,
            leaf,
            role,
            "carries name constraints, which only a CA may",
        ));
    }
    if !leaf.is_ca()
        && leaf
            .key_usage()
            .is_some_and(|ku| ku.allows(KeyUsage::KEY_CERT_SIGN))
    {
        return Err(violation(
            ErrorKind::KeyUsage,
            leaf,
            role,
            "asserts certificate signing (keyCertSign) without being a CA",
        ));
    }
    if let Some(critical) = leaf.profile().san_critical {
        let empty_subject = leaf.subject_raw() == [0x30, 0x00];
        if empty_subject != critical {
            let rule = if critical {
                "marks its subject alternative names critical although it has a subject (RFC 5280 §4.2.1.6)"
            } else {
                "has an empty subject, so its subject alternative names must be critical (RFC 5280 §4.2.1.6)"
            };
            return Err(violation(ErrorKind::Parse, leaf, role, rule));
        }
    }
    for san in leaf.subject_alt_names() {
        if let SubjectAltName::Dns(name) = san {
            if !is_ldh_name(name) {
                return Err(violation(ErrorKind::Parse, leaf, role, &format!("has a DNS name '{name}' that is not a valid host name (letters, digits, hyphens)")));
            }
        }
    }
    Ok(())
}

/// A host name of letters, digits and hyphens, optionally `*.` in front and `.` at the end.
pub fn is_ldh_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::is_ldh_name;

    #[test]
    fn host_names() {
        for good in [
            "a",
            "host.example.com",
            "*.example.com",
            "x-1.example.com.",
            "xn--bcher-kva.example",
        ] {
            assert!(is_ldh_name(good), "{good}");
        }
        for bad in [
            "",
            "_srv.example.com",
            "a..b",
            "-a.example",
            "a-.example",
            "*",
            "a.*.example",
            "host name",
        ] {
            assert!(!is_ldh_name(bad), "{bad}");
        }
    }
}
