//! Mistakes in `tls_allowed_dn_list` patterns that make them match nobody.
//!
//! libvirtd matches each client's DN string (see [`crate::dn`]) against the patterns with
//! GLib's simple wildcards ([`crate::dn_match`]). Whether a pattern parses is never in
//! question: any string is a pattern. What goes wrong is that the pattern is written in
//! another tool's DN format and so matches no DN libvirt will ever print:
//!
//! * a space after a comma (OpenSSL's `C = GB, O = Org` style; GnuTLS prints none);
//! * RFC 4514 order, CN first (`openssl x509 -nameopt RFC2253`, LDAP); libvirt writes the
//!   RDNs in the order the certificate encodes them, which is usually `C=...,...,CN=...`;
//! * attribute names libvirt does not print (`emailAddress`, `S`, `SN`, ...);
//! * an empty list, which lets no client in at all.
//!
//! [`lint_pattern`] and [`lint_list`] find these. With the DN of a client that should get
//! in, the order finding can tell a certain mistake (the pattern matches that DN reversed)
//! from a probable one.

use std::fmt;

use crate::dn_match::pattern_matches;
use crate::severity::Severity;
use crate::subject::Attribute;

/// One mistake in a `tls_allowed_dn_list`. Its [`Display`](fmt::Display) is the message,
/// [`fix`](DnFinding::fix) says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnFinding {
    /// The list holds no pattern: libvirtd lets no client connect.
    EmptyList,
    /// A comma between RDNs is followed by a space, which libvirt's DN strings never have.
    SpaceAfterComma {
        /// The pattern as written.
        pattern: String,
        /// The pattern without the spaces after its commas.
        without_spaces: String,
    },
    /// An attribute name that libvirt's DN strings do not contain.
    UnknownAttribute {
        /// The pattern as written.
        pattern: String,
        /// The attribute name as written.
        attribute: String,
        /// libvirt's name for what was probably meant (`EMAIL` for `emailAddress`).
        libvirt_name: Option<&'static str>,
    },
    /// The pattern names CN first, as RFC 4514 does, and does not match the client.
    Rfc4514Order {
        /// The pattern as written.
        pattern: String,
        /// The pattern with its RDNs in the opposite order.
        reversed: String,
        /// Whether `reversed` matches the client DN given: then the order is surely wrong.
        reversed_matches_client: bool,
    },
}

impl DnFinding {
    /// [`Severity::Error`] where the pattern (or list) certainly lets in no one it was meant
    /// for, [`Severity::Warning`] where it probably does.
    pub fn severity(&self) -> Severity {
        match self {
            DnFinding::SpaceAfterComma { .. } => Severity::Error,
            DnFinding::Rfc4514Order {
                reversed_matches_client: true,
                ..
            } => Severity::Error,
            DnFinding::EmptyList
            | DnFinding::UnknownAttribute { .. }
            | DnFinding::Rfc4514Order { .. } => Severity::Warning,
        }
    }

    /// What to change in the configuration.
    pub fn fix(&self) -> String {
        match self {
            DnFinding::EmptyList => "add the clients' DNs (virtpki dn clientcert.pem prints one), \
                                     or delete the setting to allow every client the CA certified"
                .into(),
            DnFinding::SpaceAfterComma { without_spaces, .. } => {
                format!("write it as \"{without_spaces}\"")
            }
            DnFinding::UnknownAttribute { .. } => format!(
                "use the names libvirt prints ({}, and the rest of GnuTLS's table); \
                 `virtpki dn clientcert.pem` shows a client's DN",
                Attribute::NAMES
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DnFinding::Rfc4514Order { reversed, .. } => format!(
                "write it as \"{reversed}\" (`virtpki dn clientcert.pem` prints a client's DN)"
            ),
        }
    }

    /// The pattern the finding is about; `None` for [`DnFinding::EmptyList`].
    pub fn pattern(&self) -> Option<&str> {
        match self {
            DnFinding::EmptyList => None,
            DnFinding::SpaceAfterComma { pattern, .. }
            | DnFinding::UnknownAttribute { pattern, .. }
            | DnFinding::Rfc4514Order { pattern, .. } => Some(pattern),
        }
    }
}

impl fmt::Display for DnFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnFinding::EmptyList => {
                f.write_str("tls_allowed_dn_list is empty: NO client may connect")
            }
            DnFinding::SpaceAfterComma { pattern, .. } => write!(
                f,
                "\"{pattern}\" has a space after a comma: libvirt's DN strings have none \
                 (OpenSSL prints them, GnuTLS does not), so it can never match"
            ),
            DnFinding::UnknownAttribute {
                pattern,
                attribute,
                libvirt_name,
            } => {
                write!(
                    f,
                    "\"{pattern}\": libvirt's DN strings have no attribute {attribute}"
                )?;
                if let Some(name) = libvirt_name {
                    write!(f, " (libvirt writes {name})")?;
                }
                f.write_str(": the pattern may never match")
            }
            DnFinding::Rfc4514Order {
                pattern,
                reversed_matches_client,
                ..
            } => write!(
                f,
                "\"{pattern}\" is in RFC 4514 order (CN first); libvirt writes the DN in the \
                 order of the certificate, usually C=...,CN=..., so it does not match {}",
                if *reversed_matches_client {
                    "the client certificate, whose DN it matches when reversed"
                } else {
                    "certificates issued the usual way"
                }
            ),
        }
    }
}

/// The findings for a whole list: [`DnFinding::EmptyList`] for an empty one, otherwise
/// those of each pattern ([`lint_pattern`]) in list order.
pub fn lint_list(patterns: &[impl AsRef<str>], client_dn: Option<&str>) -> Vec<DnFinding> {
    if patterns.is_empty() {
        return vec![DnFinding::EmptyList];
    }
    patterns
        .iter()
        .flat_map(|p| lint_pattern(p.as_ref(), client_dn))
        .collect()
}

/// The findings for one pattern, none when it can match libvirt's DN strings.
///
/// `client_dn`, the DN (libvirt's string) of a client that is meant to connect, sharpens
/// the order finding: a pattern that matches it is never reported for its order, and one
/// that matches it reversed is an error rather than a warning.
pub fn lint_pattern(pattern: &str, client_dn: Option<&str>) -> Vec<DnFinding> {
    let rdns = split_rdns(pattern);
    let mut findings = Vec::new();
    if rdns.iter().skip(1).any(|rdn| rdn.starts_with(' ')) {
        findings.push(DnFinding::SpaceAfterComma {
            pattern: pattern.to_owned(),
            without_spaces: join_trimmed(rdns.iter()),
        });
    }
    // Attribute names written out; `*=x` or `C*=y` name none.
    let attributes: Vec<&str> = rdns
        .iter()
        .filter_map(|rdn| rdn.split_once('=').map(|(name, _)| name.trim()))
        .filter(|name| !name.contains(['*', '?']))
        .collect();
    for name in &attributes {
        if !is_dotted_oid(name) && !libvirt_attribute_names().any(|n| n == *name) {
            findings.push(DnFinding::UnknownAttribute {
                pattern: pattern.to_owned(),
                attribute: (*name).to_owned(),
                libvirt_name: libvirt_name_for(name),
            });
        }
    }
    let matches = |p: &str| client_dn.is_some_and(|dn| pattern_matches(p, dn));
    if !matches(pattern) && attributes.len() >= 2 && attributes[0] == "CN" {
        let reversed = join_trimmed(rdns.iter().rev());
        findings.push(DnFinding::Rfc4514Order {
            pattern: pattern.to_owned(),
            reversed_matches_client: matches(&reversed),
            reversed,
        });
    }
    findings
}

/// The attribute names of libvirt's (GnuTLS's) DN strings.
fn libvirt_attribute_names() -> impl Iterator<Item = &'static str> {
    crate::dn::attribute_names()
}

/// libvirt's name for an attribute written the way other tools write it.
fn libvirt_name_for(attribute: &str) -> Option<&'static str> {
    let alias = match attribute.to_ascii_lowercase().as_str() {
        "emailaddress" | "e" => Some("EMAIL"),
        "s" | "state" | "stateorprovincename" => Some("ST"),
        // OpenSSL's SN is the surname, not the serial number.
        "sn" => Some("surName"),
        "gn" => Some("givenName"),
        _ => None,
    };
    alias.or_else(|| libvirt_attribute_names().find(|n| n.eq_ignore_ascii_case(attribute)))
}

/// An attribute type as libvirt prints one it has no name for: `2.5.4.45`.
fn is_dotted_oid(name: &str) -> bool {
    name.split('.')
        .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
}

/// The RDNs joined by bare commas, without the spaces that started them.
fn join_trimmed<'a>(rdns: impl Iterator<Item = &'a &'a str>) -> String {
    rdns.map(|rdn| rdn.trim_start())
        .collect::<Vec<_>>()
        .join(",")
}

/// The RDNs of a pattern, split at the commas no backslash escapes (libvirt's DN strings
/// write a comma inside a value as `\,`).
fn split_rdns(pattern: &str) -> Vec<&str> {
    let mut rdns = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in pattern.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                rdns.push(&pattern[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    rdns.push(&pattern[start..]);
    rdns
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "C=GB,O=Test,CN=client1";

    #[test]
    fn patterns_libvirt_can_match_have_no_findings() {
        for pattern in [
            "C=GB,O=Org,CN=*",
            "*",
            "O=Acme\\, Inc.,CN=x",
            "C=GB,O=Test,CN=client1",
            "C=GB,2.5.4.45=x,CN=y",
            "street=1 Main St,givenName=Ann,surName=Lee,CN=x",
            "*=x,C*=y,CN",
            "CN=*",
            "",
        ] {
            assert_eq!(lint_pattern(pattern, None), [], "{pattern:?}");
            assert_eq!(lint_pattern(pattern, Some(CLIENT)), [], "{pattern:?}");
        }
        assert_eq!(lint_list(&["*", "C=GB,O=Org,CN=*"], Some(CLIENT)), []);
    }

    #[test]
    fn an_empty_list_lets_nobody_in() {
        let findings = lint_list(&[] as &[&str], Some(CLIENT));
        assert_eq!(findings, [DnFinding::EmptyList]);
        assert_eq!(findings[0].severity(), Severity::Warning);
        assert_eq!(findings[0].pattern(), None);
        assert!(findings[0].to_string().contains("NO client may connect"));
    }

    #[test]
    fn a_space_after_a_comma_is_an_error() {
        let findings = lint_pattern("C=GB, O=Test, CN=*", None);
        assert_eq!(
            findings,
            [DnFinding::SpaceAfterComma {
                pattern: "C=GB, O=Test, CN=*".into(),
                without_spaces: "C=GB,O=Test,CN=*".into(),
            }]
        );
        assert_eq!(findings[0].severity(), Severity::Error);
        assert_eq!(findings[0].fix(), "write it as \"C=GB,O=Test,CN=*\"");
        assert!(findings[0]
            .to_string()
            .contains("has a space after a comma"));
        // An escaped comma is part of a value: the space after it is too.
        assert_eq!(lint_pattern("O=Acme\\, Inc.", None), []);
    }

    #[test]
    fn attribute_names_libvirt_does_not_print_are_warnings() {
        let findings = lint_pattern("C=GB,emailAddress=x,foo=y", None);
        assert_eq!(
            findings,
            [
                DnFinding::UnknownAttribute {
                    pattern: "C=GB,emailAddress=x,foo=y".into(),
                    attribute: "emailAddress".into(),
                    libvirt_name: Some("EMAIL"),
                },
                DnFinding::UnknownAttribute {
                    pattern: "C=GB,emailAddress=x,foo=y".into(),
                    attribute: "foo".into(),
                    libvirt_name: None,
                },
            ]
        );
        assert!(findings.iter().all(|f| f.severity() == Severity::Warning));
        assert!(findings[0]
            .to_string()
            .contains("no attribute emailAddress (libvirt writes EMAIL)"));
        assert!(findings[1]
            .to_string()
            .ends_with("no attribute foo: the pattern may never match"));
        assert!(findings[0]
            .fix()
            .contains("C, ST, L, O, OU, CN, DC, UID, EMAIL, serialNumber, title"));
        for (written, libvirt) in [
            ("S", "ST"),
            ("state", "ST"),
            ("E", "EMAIL"),
            ("SN", "surName"),
            ("GN", "givenName"),
            ("serialnumber", "serialNumber"),
            ("cn", "CN"),
        ] {
            let findings = lint_pattern(&format!("{written}=x"), None);
            assert!(
                matches!(&findings[..], [DnFinding::UnknownAttribute { libvirt_name: Some(n), .. }] if *n == libvirt),
                "{written}: {findings:?}"
            );
        }
    }

    #[test]
    fn rfc_4514_order_is_an_error_when_the_client_matches_it_reversed() {
        let findings = lint_pattern("CN=client1,O=Test,C=GB", Some(CLIENT));
        assert_eq!(
            findings,
            [DnFinding::Rfc4514Order {
                pattern: "CN=client1,O=Test,C=GB".into(),
                reversed: CLIENT.into(),
                reversed_matches_client: true,
            }]
        );
        assert_eq!(findings[0].severity(), Severity::Error);
        assert!(findings[0].fix().contains(&format!("\"{CLIENT}\"")));
        assert!(findings[0]
            .to_string()
            .contains("whose DN it matches when reversed"));
    }

    #[test]
    fn rfc_4514_order_is_a_warning_otherwise() {
        for client in [None, Some(CLIENT)] {
            let findings = lint_pattern("CN=a,O=b", client);
            assert_eq!(
                findings,
                [DnFinding::Rfc4514Order {
                    pattern: "CN=a,O=b".into(),
                    reversed: "O=b,CN=a".into(),
                    reversed_matches_client: false,
                }]
            );
            assert_eq!(findings[0].severity(), Severity::Warning);
            assert!(findings[0]
                .to_string()
                .contains("certificates issued the usual way"));
        }
        // A CN-first pattern that matches the client is what the client's DN looks like.
        assert_eq!(lint_pattern("CN=x,O=y", Some("CN=x,O=y")), []);
    }

    #[test]
    fn spaces_and_order_are_both_reported() {
        let findings = lint_pattern("CN=client1, O=Test, C=GB", Some(CLIENT));
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(matches!(findings[0], DnFinding::SpaceAfterComma { .. }));
        assert!(matches!(
            &findings[1],
            DnFinding::Rfc4514Order { reversed, reversed_matches_client: true, .. } if reversed == CLIENT
        ));
        assert_eq!(
            lint_list(&["CN=client1, O=Test, C=GB"], Some(CLIENT)),
            findings
        );
    }
}
