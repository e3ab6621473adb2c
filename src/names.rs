//! Does a server certificate name the host the client asked for?
//!
//! An IP literal (`192.0.2.1`, `::1`, `[::1]`) matches only IP SANs. A DNS name matches the DNS
//! SANs (webpki's matching: case-insensitive, a wildcard only as the whole leftmost label); the
//! Common Name is used only when the certificate has no DNS or IP SAN at all, as GnuTLS does
//! (RFC 6125 §6.4.4), and only when the subject has exactly one Common Name (GnuTLS's
//! `certtool --verify-hostname` refuses a subject with several: which one is meant?), and
//! never when the caller requires SANs.
//!
//! An IPv6 zone (`fe80::1%eth0`) says which local link to use; a certificate cannot name one,
//! so the address is compared without it. (The known-servers store keeps the zone in its key:
//! the same link-local address on another link is another machine.)

use std::net::IpAddr;

use rustls_pki_types::ServerName;
use webpki::EndEntityCert;

use crate::cert::Certificate;
use crate::error::{Error, ErrorKind, Result};

/// The host name without the brackets of an IPv6 literal.
pub fn strip_brackets(hostname: &str) -> &str {
    hostname
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(hostname)
}

/// How a host name matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameMatch {
    /// A DNS or IP subject alternative name.
    SubjectAltName,
    /// The Common Name of a certificate without DNS or IP SAN.
    CommonName,
}

/// An IPv6 address with its zone id (`fe80::1%eth0`), without the zone; anything else as given
/// (and then no valid host name). A zone is an interface name or index: letters, digits and
/// `-._~` (RFC 6874's unreserved characters), so that junk after the address (`fe80::1%eth0]`,
/// `fe80::1%a%b`) is refused rather than ignored.
fn strip_zone(host: &str) -> &str {
    match host.split_once('%') {
        Some((address, zone)) if is_zone(zone) && address.parse::<std::net::Ipv6Addr>().is_ok() => {
            address
        }
        _ => host,
    }
}

/// Whether `zone` (what follows `%` in an IPv6 address) is an interface name or index: the
/// one rule for verification and the known-servers store, so an entry can be stored only for
/// a host that verification can match.
pub(crate) fn is_zone(zone: &str) -> bool {
    !zone.is_empty()
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
}

/// Checks `hostname` against `cert`; `cn_fallback` allows the Common Name for SAN-less certificates.
pub fn check(cert: &Certificate, hostname: &str, cn_fallback: bool) -> Result<NameMatch> {
    check_parsed(None, cert, hostname, cn_fallback)
}

/// `f` on webpki's parse of `cert`: `parsed` when the caller has it, else parsed here (where
/// [`check`] always parsed it, so errors come in the same order).
fn with_parsed<T>(
    parsed: Option<&EndEntityCert<'_>>,
    cert: &Certificate,
    f: impl FnOnce(&EndEntityCert<'_>) -> Result<T>,
) -> Result<T> {
    match parsed {
        Some(ee) => f(ee),
        None => {
            f(&EndEntityCert::try_from(cert.der())
                .map_err(|e| crate::chain::map_webpki_error(&e))?)
        }
    }
}

/// [`check`] with webpki's parse of `cert` when the caller has it (a server's verification
/// parses the leaf once, for the path and the name).
pub(crate) fn check_parsed(
    parsed: Option<&EndEntityCert<'_>>,
    cert: &Certificate,
    hostname: &str,
    cn_fallback: bool,
) -> Result<NameMatch> {
    let host = strip_zone(strip_brackets(hostname));
    let mismatch = |detail: String| {
        Error::new(
            ErrorKind::HostnameMismatch,
            format!("The certificate's owner does not match hostname '{hostname}': {detail}."),
        )
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return with_parsed(parsed, cert, |ee| {
            ee.verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into()))
                .map(|_| NameMatch::SubjectAltName)
                .map_err(|_| {
                    mismatch(format!(
                        "no IP address SAN is {ip} (a Common Name never matches an address)"
                    ))
                })
        });
    }
    let name = ServerName::try_from(host.to_owned()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidArg,
            format!("'{hostname}' is not a valid host name"),
        )
    })?;
    if with_parsed(parsed, cert, |ee| {
        Ok(ee.verify_is_valid_for_subject_name(&name).is_ok())
    })? {
        return Ok(NameMatch::SubjectAltName);
    }
    if cert.has_dns_or_ip_san() {
        return Err(mismatch(format!(
            "the subject alternative names are {}",
            san_list(cert)
        )));
    }
    if !cn_fallback {
        return Err(mismatch(
            "the certificate has no subject alternative name and the context requires one \
             (no Common Name fallback)"
                .to_owned(),
        ));
    }
    let cns = cert.common_names();
    if common_name_count(cert) != cns.len() {
        return Err(mismatch(
            "the certificate has no subject alternative name and a Common Name that cannot \
             be read as text; the Common Name stands for the host only when there is exactly \
             one"
            .to_owned(),
        ));
    }
    match cns {
        [cn] if dns_name_matches(cn, host) => Ok(NameMatch::CommonName),
        [cn] => Err(mismatch(format!(
            "the certificate has no subject alternative name and its Common Name is {}",
            crate::display::list_item(cn)
        ))),
        [] => Err(mismatch(
            "the certificate has no subject alternative name and no Common Name".to_owned(),
        )),
        several => Err(mismatch(format!(
            "the certificate has no subject alternative name and {} Common Names ({}); the \
             Common Name stands for the host only when there is exactly one",
            several.len(),
            several
                .iter()
                .map(|cn| crate::display::list_item(cn))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// How many Common Name attributes the subject has, readable or not: the certificate model
/// keeps only those it reads as text (not a BMPString), and a subject with one it cannot read
/// besides one it can has two. An unreadable subject counts as many.
fn common_name_count(cert: &Certificate) -> usize {
    use x509_parser::prelude::FromDer;
    match x509_parser::x509::X509Name::from_der(cert.subject_raw()) {
        Ok((_, name)) => name.iter_common_name().count(),
        Err(_) => usize::MAX,
    }
}

/// The first of `hostnames` that `cert` is valid for, and how it matched: a server is
/// reached by any of its names (short, fully qualified, canonical). The error is the last
/// name's; with no names at all, an [`ErrorKind::InvalidArg`] error.
pub fn first_match<'a>(
    cert: &Certificate,
    hostnames: &'a [String],
    cn_fallback: bool,
) -> Result<(&'a str, NameMatch)> {
    let mut last_err = Error::new(ErrorKind::InvalidArg, "no host name to check");
    for name in hostnames {
        match check(cert, name, cn_fallback) {
            Ok(how) => return Ok((name, how)),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

fn san_list(cert: &Certificate) -> String {
    cert.subject_alt_names()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Common Name against a host name: case-insensitive, one trailing dot ignored, `*` only as
/// the whole leftmost label of a name with at least two more labels.
pub fn dns_name_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern
        .strip_suffix('.')
        .unwrap_or(pattern)
        .to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if pattern.is_empty() || host.is_empty() {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(rest) if rest.contains('.') && !rest.contains('*') => host
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        Some(_) => false,
        None => !pattern.contains('*') && pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_matching_rules() {
        assert!(dns_name_matches("Host.Example.COM", "host.example.com"));
        assert!(dns_name_matches("host.example.com.", "host.example.com"));
        assert!(dns_name_matches("*.example.com", "a.example.com"));
        assert!(!dns_name_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("*.com", "example.com"));
        assert!(!dns_name_matches("a*.example.com", "ab.example.com"));
        assert!(!dns_name_matches("", ""));
        assert!(!dns_name_matches("host", "other"));
    }

    #[test]
    fn the_first_matching_name_wins() {
        use crate::generate::{
            create_ca, CaParams, CertificateAuthority, KeyType, ServerParams, Validity,
        };
        let ca = create_ca(&CaParams {
            common_name: "Names CA".into(),
            organization: None,
            validity: Validity::days_from_now(1),
            key_type: KeyType::EcdsaP256,
        })
        .unwrap();
        let ca = CertificateAuthority::from_pem(&ca.cert_pem, &ca.key_pem).unwrap();
        let server = ca
            .issue_server(&ServerParams {
                common_name: "host.example.com".into(),
                dns_names: vec!["host".into()],
                ip_addresses: vec![],
                organization: None,
                validity: Validity::days_from_now(1),
                key_type: KeyType::EcdsaP256,
            })
            .unwrap()
            .certificate;
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let list = names(&["other", "host", "host.example.com"]);
        assert_eq!(
            first_match(&server, &list, true).unwrap(),
            ("host", NameMatch::SubjectAltName)
        );
        let e = first_match(&server, &names(&["a", "b"]), true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::HostnameMismatch);
        assert!(e.message().contains("hostname 'b'"), "{}", e.message());
        let e = first_match(&server, &[], true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArg);
    }

    #[test]
    fn a_zone_is_stripped_only_from_an_ipv6_address() {
        assert_eq!(strip_zone("fe80::1%eth0"), "fe80::1");
        assert_eq!(strip_zone("fe80::1%"), "fe80::1%");
        assert_eq!(strip_zone("192.0.2.1%eth0"), "192.0.2.1%eth0");
        assert_eq!(strip_zone("host%eth0"), "host%eth0");
        assert_eq!(strip_zone("fe80::1"), "fe80::1");
        assert_eq!(strip_zone("fe80::1%eth0]"), "fe80::1%eth0]");
        assert_eq!(strip_zone("fe80::1%a%b"), "fe80::1%a%b");
        assert_eq!(strip_zone("fe80::1%br-lan.5"), "fe80::1");
    }

    #[test]
    fn brackets_are_stripped_only_in_pairs() {
        assert_eq!(strip_brackets("[::1]"), "::1");
        assert_eq!(strip_brackets("[::1"), "[::1");
        assert_eq!(strip_brackets("host"), "host");
    }
}
