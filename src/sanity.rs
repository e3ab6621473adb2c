//! libvirt's load-time checks ("sanity check"), as a list of findings.
//!
//! libvirt (virNetTLSContextSanityCheckCredentials) checks its own certificate and every CA
//! certificate when it loads credentials, and refuses to start on the first error. This module
//! runs the same rules and collects every finding, each with libvirt's message, the file, the
//! rule, a severity, and a fix a person can apply. Where libvirt is wrong, the verdict here is
//! the right one and the finding says how libvirt differs:
//!
//! - `anyExtendedKeyUsage` allows both roles (libvirt allows neither), and a purpose list with
//!   only unrelated purposes allows neither (libvirt allows both); QEMU agrees on
//!   `anyExtendedKeyUsage`, and on unrelated purposes only when the extension is critical;
//! - only the CA certificates on the own certificate's chain of trust can be errors: a problem
//!   with another CA of the bundle is a warning (libvirt refuses the whole bundle, and so does
//!   QEMU up to 10.1; QEMU 10.2 does not);
//! - keyEncipherment is not required of ECDSA and Ed25519 keys, which cannot encrypt (RFC 8813);
//!   a warning says that libvirt 9.x daemons still reject them when key usage is critical;
//! - the certificate file may hold the chain (leaf first), as QEMU accepts from 10.2 (QEMU up
//!   to 10.1, Debian 12's 7.2 included, refuses it as libvirt 9 does);
//! - the CA certificates' own validity is checked (webpki leaves trust anchors alone);
//! - what expires within a horizon (30 days unless the context says otherwise) is a warning
//!   that says when, what stops working then and how to replace it: libvirt says nothing until
//!   the day libvirtd no longer starts.

use std::fmt;

use crate::cert::{Certificate, KeyUsage, Validity};
use crate::chain::{self, AnyPurpose};
use crate::credentials::{Credentials, Identity};
use crate::display;
use crate::error::{Error, ErrorKind, Result};
use crate::profile;
use crate::role::Role;
use crate::severity::Severity;
use crate::source::Source;
use crate::timefmt::{self, UnixSeconds};

/// The rule a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// A required item is not loaded.
    Missing,
    /// Activation and expiration times.
    Time,
    /// Basic constraints: CAs say CA:TRUE, leaves do not.
    BasicConstraints,
    /// Key usage bits.
    KeyUsage,
    /// Extended key usage (purpose).
    Purpose,
    /// The own certificate against the CA file.
    Chain,
    /// The private key against the certificate.
    KeyPair,
    /// File permissions.
    FileMode,
    /// Revocation lists.
    Crl,
    /// A certificate or CRL that expires within the horizon (a warning; one already expired
    /// is a [`Rule::Time`] or [`Rule::Crl`] finding instead).
    ExpiresSoon,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Missing => "missing",
            Rule::Time => "time",
            Rule::BasicConstraints => "basic-constraints",
            Rule::KeyUsage => "key-usage",
            Rule::Purpose => "purpose",
            Rule::Chain => "chain",
            Rule::KeyPair => "key-pair",
            Rule::FileMode => "file-mode",
            Rule::Crl => "crl",
            Rule::ExpiresSoon => "expires-soon",
        })
    }
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Whether libvirt would refuse the credentials for it.
    pub severity: Severity,
    /// The check that found it.
    pub rule: Rule,
    /// The error code a failure of this rule is reported with.
    pub kind: ErrorKind,
    /// The file (or data) concerned.
    pub source: Source,
    /// The certificate's subject, when the finding is about one: libvirt's DN string as it is
    /// (for matching); escape it with [`display::escape`] to show it (`Display` does).
    pub subject: Option<String>,
    /// What is wrong, in libvirt's words where libvirt has some; control characters escaped
    /// (it quotes names and file names), like every text field below.
    pub message: String,
    /// What to do about it.
    pub fix: String,
    /// How libvirt's verdict differs, when it does.
    pub libvirt_differs: Option<String>,
}

impl Finding {
    /// The finding without its severity (`[rule] message (subject ...); fix: ...`), for a
    /// caller that says the severity itself, in its own words or colour: printing the
    /// `Display` form after a "warning:" of its own said it twice.
    pub fn detail(&self) -> String {
        let mut text = format!("[{}] {}", self.rule, self.message);
        if let Some(subject) = &self.subject {
            // The subject is kept as libvirt's DN string (for matching); shown, it is escaped.
            text.push_str(&format!(" (subject {})", display::escape(subject)));
        }
        text.push_str(&format!("; fix: {}", self.fix));
        if let Some(note) = &self.libvirt_differs {
            text.push_str(&format!("; libvirt: {note}"));
        }
        text
    }
}

impl fmt::Display for Finding {
    /// `error: ` or `warning: `, then [`Finding::detail`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.detail())
    }
}

/// All findings of one check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every finding, in the order found.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// Whether there is no error (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// One line per finding, errors first.
    pub fn to_text(&self) -> String {
        let mut lines: Vec<&Finding> = self.findings.iter().collect();
        lines.sort_by_key(|f| f.severity);
        lines.iter().map(|f| format!("{f}\n")).collect()
    }

    /// `Ok` when there is no error; else an error with the first error's kind, naming all.
    pub fn into_result(self) -> Result<Report> {
        let errors: Vec<&Finding> = self.errors().collect();
        match errors.first() {
            None => Ok(self),
            Some(first) => {
                let text: Vec<String> = errors.iter().map(|f| f.message.clone()).collect();
                Err(Error::new(first.kind, text.join("; ")))
            }
        }
    }
}

/// How many days ahead the sanity check warns of expiry, unless told otherwise
/// ([`Context::set_expiry_horizon`](crate::Context::set_expiry_horizon)).
pub const DEFAULT_EXPIRY_HORIZON_DAYS: u32 = 30;

/// The longest horizon a context takes (ten years): a larger number is a mistake, such as -1
/// passed as an unsigned int through the C API.
pub const MAX_EXPIRY_HORIZON_DAYS: u32 = 3650;

const DAY: UnixSeconds = 86_400;

/// Whole days from `now` until `deadline`, rounded down (as certbot and Python's `timedelta`
/// count): 4 for 4 days and 23 hours; negative once `deadline` has passed.
pub fn days_left(deadline: UnixSeconds, now: UnixSeconds) -> i64 {
    deadline.saturating_sub(now).div_euclid(DAY)
}

/// Checks what `creds` holds for `role` at time `now`, warning of what expires within
/// [`DEFAULT_EXPIRY_HORIZON_DAYS`].
pub fn check(creds: &Credentials, role: Role, now: UnixSeconds) -> Report {
    check_with_horizon(creds, role, now, DEFAULT_EXPIRY_HORIZON_DAYS)
}

/// [`check`], warning of every certificate and CRL that expires within `horizon_days` of
/// `now` ([`Rule::ExpiresSoon`]); 0 warns of nothing (what has expired is still an error).
pub fn check_with_horizon(
    creds: &Credentials,
    role: Role,
    now: UnixSeconds,
    horizon_days: u32,
) -> Report {
    // Several identities (QEMU 10.2's numbered files): every rule runs on each, as QEMU
    // checks each; what a further identity adds is named with its place in the load order.
    if creds.more_identities(role).is_empty() {
        return check_one(creds, role, now, horizon_days);
    }
    let identities: Vec<&Identity> = creds.identities(role).collect();
    let mut report = check_one(
        &creds.with_only_identity(role, identities[0]),
        role,
        now,
        horizon_days,
    );
    for (index, identity) in identities.iter().enumerate().skip(1) {
        let more = check_one(
            &creds.with_only_identity(role, identity),
            role,
            now,
            horizon_days,
        );
        for mut finding in more.findings {
            if !report.findings.contains(&finding) {
                finding.message = format!(
                    "{} identity {} ({}): {}",
                    role.name(),
                    index + 1,
                    identity
                        .certificate()
                        .map_or_else(String::new, |c| c.source().to_string()),
                    finding.message
                );
                report.findings.push(finding);
            }
        }
    }
    report
}

/// [`check_with_horizon`] of the first identity of `role` only.
fn check_one(creds: &Credentials, role: Role, now: UnixSeconds, horizon_days: u32) -> Report {
    let mut checker = Checker {
        findings: Vec::new(),
        role,
        now,
        horizon: i64::from(horizon_days) * DAY,
    };
    checker.run(creds);
    Report {
        findings: checker.findings,
    }
}

struct Checker {
    findings: Vec<Finding>,
    role: Role,
    now: UnixSeconds,
    /// Seconds ahead of `now` within which an expiry is a warning.
    horizon: UnixSeconds,
}

/// Whose certificate is about to expire: what stops working then differs.
#[derive(Clone, Copy)]
enum Whose {
    /// The own certificate, of the checked role.
    Own,
    /// A CA certificate of the CA file: a root, or an intermediate CA there.
    Ca,
    /// An intermediate CA certificate that follows the own certificate in its file (the chain
    /// it sends).
    ChainIntermediate,
}

/// A finding under construction.
struct Draft {
    rule: Rule,
    kind: ErrorKind,
    message: String,
    fix: String,
}

impl Checker {
    fn run(&mut self, creds: &Credentials) {
        let identity = creds.identity(self.role);
        if creds.ca_certs.is_empty() {
            self.push(
                Severity::Error,
                &Source::Data,
                None,
                Draft {
                    rule: Rule::Missing,
                    kind: ErrorKind::NoCa,
                    message: "no CA certificate is loaded".into(),
                    fix: "load the CA certificate that issued the peers' certificates \
                          (libvirt: /etc/pki/CA/cacert.pem)"
                        .into(),
                },
                None,
            );
        }
        self.check_identity_present(identity);
        let leaf = identity.certificate();
        // Which CAs the own certificate's chain of trust uses; without an own certificate
        // that verifies, every CA may be the one a peer is checked against.
        let on_chain: Option<Vec<usize>> = match leaf {
            Some(_) if !creds.ca_certs.is_empty() => self.check_chain(creds, identity),
            _ => None,
        };
        if let Some(leaf) = leaf {
            self.check_leaf(leaf);
            self.check_intermediates(identity);
        }
        if let Some(key) = &identity.key {
            if key.is_pkcs8_v2() {
                self.push(
                    Severity::Warning,
                    key.source(),
                    None,
                    Draft {
                        rule: Rule::KeyPair,
                        kind: ErrorKind::Parse,
                        message: format!(
                            "The private key {} is PKCS#8 version 2 (with its public key inside)",
                            key.source()
                        ),
                        fix: "write the key as PKCS#8 version 1, or issue a new certificate \
                              and key with virtpki issue, which writes version 1"
                            .into(),
                    },
                    Some(
                        "libvirt 9 cannot read it (GnuTLS 3.7: \"ASN1 parser: Error in DER \
                         parsing\") and does not start; virtpki and QEMU with newer GnuTLS do"
                            .into(),
                    ),
                );
            }
        }
        if let (Some(leaf), Some(key)) = (leaf, &identity.key) {
            if !key.matches(leaf) {
                self.push(
                    Severity::Error,
                    key.source(),
                    Some(leaf),
                    Draft {
                        rule: Rule::KeyPair,
                        kind: ErrorKind::KeyMismatch,
                        message: format!(
                            "The private key {} does not belong to the certificate {}",
                            key.source(),
                            leaf.source()
                        ),
                        fix: "install the key that was generated with this certificate, or \
                              issue a new certificate for this key"
                            .into(),
                    },
                    None,
                );
            }
        }
        if let Some(key) = &identity.key {
            self.check_key_mode(key.source(), key.file_mode());
        }
        for (index, ca) in creds.ca_certs.iter().enumerate() {
            let relevant = on_chain.as_ref().is_none_or(|used| used.contains(&index));
            self.check_ca(ca, relevant);
        }
        self.check_crls(creds);
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        severity: Severity,
        source: &Source,
        cert: Option<&Certificate>,
        draft: Draft,
        libvirt_differs: Option<String>,
    ) {
        self.findings.push(Finding {
            severity,
            rule: draft.rule,
            kind: draft.kind,
            source: source.clone(),
            subject: cert.map(|c| c.subject().to_owned()),
            // Messages quote subjects, issuers and file names, which whoever made the
            // certificate or file chose: escaped here, once, for every finding.
            message: display::escape(&draft.message).into_owned(),
            fix: display::escape(&draft.fix).into_owned(),
            libvirt_differs: libvirt_differs.map(|n| display::escape(&n).into_owned()),
        });
    }

    fn role_name(&self) -> &'static str {
        self.role.name()
    }

    fn check_identity_present(&mut self, identity: &Identity) {
        let role = self.role_name();
        let missing = match (identity.certificate().is_some(), identity.key.is_some()) {
            (true, true) => None,
            (false, false) if self.role == Role::Client => None,
            (false, false) => Some(format!("no {role} certificate and key are loaded")),
            (true, false) => Some(format!("the {role} certificate is loaded but not its key")),
            (false, true) => Some(format!("the {role} key is loaded but not its certificate")),
        };
        if let Some(message) = missing {
            self.push(
                Severity::Error,
                &Source::Data,
                None,
                Draft {
                    rule: Rule::Missing,
                    kind: ErrorKind::InvalidArg,
                    message,
                    fix: format!(
                        "load both {role}cert.pem and {role}key.pem (libvirt: \
                         /etc/pki/libvirt/{role}cert.pem, /etc/pki/libvirt/private/{role}key.pem)"
                    ),
                },
                None,
            );
        }
    }

    /// The pair check; returns the CA indexes the chain of trust uses, if it verifies.
    fn check_chain(&mut self, creds: &Credentials, identity: &Identity) -> Option<Vec<usize>> {
        let leaf = identity.certificate()?;
        match chain::verify(
            &identity.chain,
            &creds.ca_certs,
            &creds.crls,
            self.now,
            AnyPurpose,
            None,
        ) {
            Ok(path) => {
                self.check_profile(creds, identity, &path);
                let mut used = path.ca_intermediates;
                used.push(path.anchor);
                Some(used)
            }
            Err(e) => {
                let ca_file = creds.ca_certs[0].source().to_string();
                let fix = match e.kind() {
                    ErrorKind::UnknownIssuer => format!(
                        "make sure {} was issued by a CA in {ca_file}: compare its Issuer \
                         (virtpki show) with the CA's Subject; install the CA that signed it, \
                         or re-issue the certificate from this CA",
                        leaf.source()
                    ),
                    ErrorKind::Revoked => format!(
                        "the CA has revoked {}: issue a new {} certificate",
                        leaf.source(),
                        self.role_name()
                    ),
                    ErrorKind::BadSignature => "re-issue the certificate with SHA-256 or better \
                                                and a key of at least 2048 bits (RSA)"
                        .into(),
                    _ => format!(
                        "issue a new {} certificate from the CA in {ca_file}",
                        self.role_name()
                    ),
                };
                self.push(
                    Severity::Error,
                    leaf.source(),
                    Some(leaf),
                    Draft {
                        rule: Rule::Chain,
                        kind: e.kind(),
                        message: format!(
                            "Our own certificate {} failed validation against {ca_file}: {}",
                            leaf.source(),
                            e.message()
                        ),
                        fix,
                    },
                    None,
                );
                None
            }
        }
    }

    /// libvirt accepts what the RFC 5280 profile rules refuse; verifiers that follow them (virtpki
    /// itself, webpki, pyca/cryptography) refuse these credentials as a peer's: a warning.
    fn check_profile(
        &mut self,
        creds: &Credentials,
        identity: &Identity,
        path: &chain::VerifiedChain,
    ) {
        let Some(leaf) = identity.certificate() else {
            return;
        };
        let mut intermediates: Vec<&Certificate> = path
            .chain_intermediates
            .iter()
            .map(|i| &identity.chain[*i])
            .collect();
        intermediates.extend(path.ca_intermediates.iter().map(|i| &creds.ca_certs[*i]));
        let anchor = &creds.ca_certs[path.anchor];
        let rules = profile::Rules {
            leaf: self.role == Role::Server,
        };
        if let Err(e) = profile::check_path(leaf, &intermediates, anchor, rules) {
            self.push(
                Severity::Warning,
                leaf.source(),
                Some(leaf),
                Draft {
                    rule: Rule::Chain,
                    kind: e.kind(),
                    message: e.message().to_owned(),
                    fix: "re-issue the certificate concerned with virtpki issue (or certtool or \
                          OpenSSL 3), which follow RFC 5280"
                        .into(),
                },
                Some(
                    "libvirt accepts it, but virtpki clients and other RFC 5280 verifiers \
                     refuse this chain from a peer"
                        .into(),
                ),
            );
        }
    }

    fn check_leaf(&mut self, leaf: &Certificate) {
        let role = self.role_name();
        self.check_time(leaf, role, Severity::Error);
        self.check_expiry(leaf, Whose::Own);
        if leaf.is_ca() {
            self.push(
                Severity::Error,
                leaf.source(),
                Some(leaf),
                Draft {
                    rule: Rule::BasicConstraints,
                    kind: ErrorKind::NotCa,
                    message: format!(
                        "The certificate {} basic constraints show a CA, but we need one for a {role}",
                        leaf.source()
                    ),
                    fix: format!(
                        "issue a separate {role} certificate signed by the CA (virtpki issue \
                         {role}; certtool template without \"ca\"); do not use a CA certificate \
                         here"
                    ),
                },
                None,
            );
        }
        self.check_leaf_key_usage(leaf);
        self.check_purpose(leaf);
    }

    /// Intermediates in the certificate file must follow the leaf in issuing order.
    fn check_intermediates(&mut self, identity: &Identity) {
        for ca in identity.chain.iter().skip(1) {
            self.check_expiry(ca, Whose::ChainIntermediate);
        }
        if let [leaf, _, ..] = identity.chain.as_slice() {
            self.push(
                Severity::Warning,
                leaf.source(),
                Some(leaf),
                Draft {
                    rule: Rule::Chain,
                    kind: ErrorKind::UnknownIssuer,
                    message: format!(
                        "The certificate file {} holds a chain ({} certificates), not the \
                         certificate alone",
                        leaf.source(),
                        identity.chain.len()
                    ),
                    fix: "for libvirt, keep only the certificate in this file and put the \
                          intermediate CA certificates into the CA file (cacert.pem)"
                        .into(),
                },
                Some(
                    "libvirt 9 uses only the first certificate of the file and then refuses \
                     it (\"The certificate hasn't got a known issuer\"); virtpki and QEMU >= 10.2 \
                     use the chain; QEMU <= 10.1 (Debian 12's 7.2) refuses it as libvirt does"
                        .into(),
                ),
            );
        }
        for pair in identity.chain.windows(2) {
            let (child, parent) = (&pair[0], &pair[1]);
            if child.issuer_raw() != parent.subject_raw() {
                self.push(
                    Severity::Error,
                    child.source(),
                    Some(child),
                    Draft {
                        rule: Rule::Chain,
                        kind: ErrorKind::UnknownIssuer,
                        message: format!(
                            "The certificate file {} holds a chain out of order: {} was not \
                             issued by the next certificate, {}",
                            child.source(),
                            child.subject(),
                            parent.subject()
                        ),
                        fix: "put the certificate first, then the CA that issued it, then \
                              that CA's issuer, and so on"
                            .into(),
                    },
                    None,
                );
            }
            if !parent.is_ca() {
                self.push(
                    Severity::Error,
                    parent.source(),
                    Some(parent),
                    Draft {
                        rule: Rule::BasicConstraints,
                        kind: ErrorKind::NotCa,
                        message: format!(
                            "The certificate {} basic constraints do not show a CA",
                            parent.source()
                        ),
                        fix: "an intermediate certificate must be a CA (CA:TRUE)".into(),
                    },
                    None,
                );
            }
        }
    }

    /// `expires in N days, on DATE` when `deadline` is within the horizon and not yet past
    /// (what is past is another rule's finding, reported once).
    fn expires_within_horizon(&self, deadline: UnixSeconds) -> Option<String> {
        if deadline < self.now || deadline.saturating_sub(self.now) >= self.horizon {
            return None;
        }
        let on = timefmt::utc(deadline);
        Some(match days_left(deadline, self.now) {
            0 => {
                let hours = (deadline - self.now) / 3600;
                let left = match hours {
                    0 => "less than an hour left".to_owned(),
                    1 => "1 hour left".to_owned(),
                    h => format!("{h} hours left"),
                };
                format!("in 0 days ({left}), on {on}")
            }
            1 => format!("in 1 day, on {on}"),
            days => format!("in {days} days, on {on}"),
        })
    }

    /// A warning when `cert`, valid now, expires within the horizon: when, what stops working
    /// then, and the command that replaces it.
    fn check_expiry(&mut self, cert: &Certificate, whose: Whose) {
        if cert.validity_at(self.now) != Validity::Valid {
            return; // not yet valid or expired: check_time's finding
        }
        let Some(when) = self.expires_within_horizon(cert.not_after()) else {
            return;
        };
        let role = self.role_name();
        let src = cert.source();
        // The renewal keeps the key, so the CA needs only this file; a certificate given as
        // text has no file to name.
        let cert_file = src
            .path()
            .map_or("CERT".to_owned(), crate::display::shell_path);
        let (message, fix) = match whose {
            Whose::Own => {
                let then = match self.role {
                    Role::Server => {
                        "libvirtd refuses to start with it, and clients refuse this server"
                    }
                    Role::Client => "libvirt refuses to load it, and servers refuse this client",
                };
                (
                    format!("The {role} certificate {src} expires {when}: then {then}"),
                    format!(
                        "renew it before then with the same key: virtpki renew --ca-dir CA_DIR \
                         {cert_file} --out-dir DIR on the CA's machine, then, with the renewed \
                         certificate and this key in DIR, virtpki install --role {role} \
                         --ca-dir CA_DIR --from DIR --reload (or issue a new key and \
                         certificate: {})",
                        reissue_command(cert, self.role)
                    ),
                )
            }
            // A root: nothing above it; the next CA is made and spread.
            Whose::Ca if cert.is_self_issued() => {
                // The same words for either role: `validate` reports it once, under TRUST.
                (
                    format!(
                        "The CA certificate {src} expires {when}: then no certificate it \
                         issued verifies any more, and libvirt, which checks every CA of the \
                         file, refuses the whole CA file: libvirtd does not start and \
                         clients cannot connect"
                    ),
                    "renew it before then with the same key and name, so that every \
                     certificate it issued stays valid: virtpki ca renew --dir CA_DIR, then put \
                     the new cacert.pem into every host's CA file (next to this one until \
                     every host has it: either order verifies)"
                        .to_owned(),
                )
            }
            // An intermediate is renewed by the CA above it, not replaced by a new root.
            Whose::Ca => (
                format!(
                    "The intermediate CA certificate {src} (issued by {}) expires {when}: then \
                     no certificate issued under it verifies any more, and libvirt, which \
                     checks every CA of the file, refuses the whole CA file: libvirtd does not \
                     start and clients cannot connect",
                    cert.issuer()
                ),
                format!(
                    "before then, have {} issue this intermediate again with the same key and \
                     subject (the certificates under it stay valid) and replace it in every \
                     host's CA file",
                    cert.issuer()
                ),
            ),
            // In the certificate file it is only sent to peers: this role's own chain breaks.
            Whose::ChainIntermediate => {
                let peers = match self.role {
                    Role::Server => "clients refuse this server",
                    Role::Client => "servers refuse this client",
                };
                (
                    format!(
                        "The intermediate CA certificate {src} (issued by {}), which the {role} \
                         certificate file sends after the {role} certificate, expires {when}: \
                         then the {role} certificate's chain through it no longer verifies: \
                         {peers}",
                        cert.issuer()
                    ),
                    format!(
                        "before then, have {} issue this intermediate again with the same key \
                         and subject and replace it in the {role} certificate file (and in the \
                         CA files that hold it)",
                        cert.issuer()
                    ),
                )
            }
        };
        self.push(
            Severity::Warning,
            src,
            Some(cert),
            Draft {
                rule: Rule::ExpiresSoon,
                kind: ErrorKind::Expired,
                message,
                fix,
            },
            None,
        );
    }

    fn check_time(&mut self, cert: &Certificate, what: &str, severity: Severity) {
        let (kind, verb, fix) = match cert.validity_at(self.now) {
            Validity::Valid => return,
            Validity::Expired => (
                ErrorKind::Expired,
                "has expired",
                format!(
                    "it expired at {}: issue a new {what} certificate and install it",
                    timefmt::utc(cert.not_after())
                ),
            ),
            Validity::NotYetValid => (
                ErrorKind::NotYetValid,
                "is not yet active",
                format!(
                    "it becomes valid at {}: check the system clock (date -u) or wait",
                    timefmt::utc(cert.not_before())
                ),
            ),
        };
        let label = if what == "CA" { "CA" } else { what };
        self.push(
            severity,
            cert.source(),
            Some(cert),
            Draft {
                rule: Rule::Time,
                kind,
                message: format!("The {label} certificate {} {verb}", cert.source()),
                fix,
            },
            unrelated_ca_note(severity, what),
        );
    }

    fn check_ca(&mut self, ca: &Certificate, relevant: bool) {
        let severity = if relevant {
            Severity::Error
        } else {
            Severity::Warning
        };
        self.check_time(ca, "CA", severity);
        self.check_expiry(ca, Whose::Ca);
        let bc_problem = match ca.basic_constraints() {
            None => Some("is missing basic constraints for a CA"),
            Some(bc) if !bc.ca => Some("basic constraints do not show a CA"),
            Some(_) => None,
        };
        if let Some(problem) = bc_problem {
            self.push(
                severity,
                ca.source(),
                Some(ca),
                Draft {
                    rule: Rule::BasicConstraints,
                    kind: ErrorKind::NotCa,
                    message: format!("The certificate {} {problem}", ca.source()),
                    fix: "re-issue the CA certificate with basic constraints CA:TRUE \
                          (virtpki ca init; certtool template: \"ca\"), or remove this \
                          certificate from the CA file"
                        .into(),
                },
                unrelated_ca_note(severity, "CA"),
            );
        }
        let usage = ca.key_usage().unwrap_or(KeyUsage {
            critical: false,
            bits: KeyUsage::KEY_CERT_SIGN,
        });
        if !usage.allows(KeyUsage::KEY_CERT_SIGN) {
            // libvirt's own rule makes a non-critical extension a warning, but GnuTLS then
            // refuses to verify the own certificate under this CA (critical or not), so
            // libvirt 9 does not start: an error for the CA on the chain of trust.
            let sev = if usage.critical || relevant {
                severity
            } else {
                Severity::Warning
            };
            let why = if usage.critical || !relevant {
                String::new()
            } else {
                "; GnuTLS therefore refuses to verify certificates it issued (\"The \
                 certificate is not trusted\"), although the extension is not critical"
                    .to_owned()
            };
            self.push(
                sev,
                ca.source(),
                Some(ca),
                Draft {
                    rule: Rule::KeyUsage,
                    kind: ErrorKind::KeyUsage,
                    message: format!(
                        "Certificate {} usage does not permit certificate signing{why}",
                        ca.source()
                    ),
                    fix: "re-issue the CA with key usage keyCertSign (virtpki ca init; certtool \
                          template: cert_signing_key)"
                        .into(),
                },
                unrelated_ca_note(sev, "CA").filter(|_| usage.critical),
            );
        }
    }

    fn check_leaf_key_usage(&mut self, leaf: &Certificate) {
        let Some(usage) = leaf.key_usage() else {
            return; // absent: every usage allowed
        };
        let severity = if usage.critical {
            Severity::Error
        } else {
            Severity::Warning
        };
        if !usage.allows(KeyUsage::DIGITAL_SIGNATURE) {
            self.push(
                severity,
                leaf.source(),
                Some(leaf),
                Draft {
                    rule: Rule::KeyUsage,
                    kind: ErrorKind::KeyUsage,
                    message: format!(
                        "Certificate {} usage does not permit digital signature",
                        leaf.source()
                    ),
                    fix: "re-issue with key usage digitalSignature (virtpki issue; certtool \
                          template: signing_key)"
                        .into(),
                },
                None,
            );
        }
        if !usage.allows(KeyUsage::KEY_ENCIPHERMENT) {
            let message = format!(
                "Certificate {} usage does not permit key encipherment",
                leaf.source()
            );
            let fix = "re-issue with key usage keyEncipherment (virtpki issue adds it; \
                       certtool template: encryption_key)";
            if !leaf.key_algorithm().is_signature_only() {
                self.push(
                    severity,
                    leaf.source(),
                    Some(leaf),
                    Draft {
                        rule: Rule::KeyUsage,
                        kind: ErrorKind::KeyUsage,
                        message,
                        fix: fix.into(),
                    },
                    None,
                );
            } else if usage.critical {
                self.push(
                    Severity::Warning,
                    leaf.source(),
                    Some(leaf),
                    Draft {
                        rule: Rule::KeyUsage,
                        kind: ErrorKind::KeyUsage,
                        message: format!(
                            "{message}; an {} key cannot encrypt, so RFC 8813 does not require it",
                            leaf.key_algorithm()
                        ),
                        fix: format!("for libvirt 9.x peers, {fix}"),
                    },
                    Some(
                        "libvirt 9.x daemons refuse this certificate (they want keyEncipherment \
                         whenever key usage is critical); newer libvirt and QEMU >= 10.2 (and \
                         Debian 12's 7.2.22) accept it; QEMU <= 10.1 without that backport \
                         refuses it too"
                            .into(),
                    ),
                );
            }
        }
    }

    fn check_purpose(&mut self, leaf: &Certificate) {
        let Some(eku) = leaf.extended_key_usage() else {
            return; // absent: both roles allowed
        };
        let ours = eku.allows(self.role);
        let libvirt = eku.libvirt_allows(self.role);
        let role = self.role_name();
        let severity = if eku.critical {
            Severity::Error
        } else {
            Severity::Warning
        };
        let differs = |libvirt_ok: bool| {
            Some(if libvirt_ok {
                "libvirt accepts it, because it reads an unrecognised purpose as allowing both \
                 roles"
                    .to_owned()
            } else {
                "libvirt rejects it, because it reads anyExtendedKeyUsage as allowing neither \
                 role; reissue with the explicit purpose for libvirt"
                    .to_owned()
            })
        };
        if !ours {
            self.push(
                severity,
                leaf.source(),
                Some(leaf),
                Draft {
                    rule: Rule::Purpose,
                    kind: ErrorKind::Purpose,
                    message: format!(
                        "Certificate {} purpose does not allow use as a TLS {role}",
                        leaf.source()
                    ),
                    fix: format!(
                        "re-issue with extended key usage {} (virtpki issue {role}; certtool template: \
                         tls_www_{role})",
                        if self.role == Role::Server {
                            "serverAuth"
                        } else {
                            "clientAuth"
                        }
                    ),
                },
                (libvirt != ours).then(|| differs(libvirt)).flatten(),
            );
        } else if !libvirt && eku.critical {
            self.push(
                Severity::Warning,
                leaf.source(),
                Some(leaf),
                Draft {
                    rule: Rule::Purpose,
                    kind: ErrorKind::Purpose,
                    message: format!(
                        "Certificate {} purpose is anyExtendedKeyUsage without an explicit TLS \
                         {role} purpose",
                        leaf.source()
                    ),
                    fix: format!("add extended key usage tls_www_{role} for libvirt peers"),
                },
                differs(false),
            );
        }
    }

    fn check_key_mode(&mut self, source: &Source, mode: Option<u32>) {
        let Some(mode) = mode else { return };
        if mode & 0o070 != 0 {
            self.push(
                Severity::Warning,
                source,
                None,
                Draft {
                    rule: Rule::FileMode,
                    kind: ErrorKind::InsecurePermissions,
                    message: format!(
                        "The private key {source} is accessible to its group (mode {mode:04o})"
                    ),
                    fix: format!(
                        "fine when the group is a service group such as qemu; otherwise \
                         chmod 0600 {}",
                        crate::display::shell_word(&source.to_string())
                    ),
                },
                None,
            );
        }
    }

    fn check_crls(&mut self, creds: &Credentials) {
        for crl in &creds.crls {
            let source = crl.source().clone();
            if let Some(next) = crl.next_update() {
                if let Some(when) = self.expires_within_horizon(next) {
                    self.push(
                        Severity::Warning,
                        &source,
                        None,
                        Draft {
                            rule: Rule::ExpiresSoon,
                            kind: ErrorKind::Expired,
                            message: format!(
                                "The revocation list of {} ({source}) expires {when} (its next \
                                 update): then it is stale, and virtpki validate warns that it \
                                 was due for renewal. {STALE_CRL}",
                                crl.issuer()
                            ),
                            fix: "write a fresh CRL before then and install it: virtpki crl \
                                  revoke --ca-dir CA_DIR with a certificate already revoked \
                                  (one of CA_DIR/revoked/) writes the next list without revoking \
                                  more; or certtool --generate-crl"
                                .into(),
                        },
                        None,
                    );
                }
                if next < self.now {
                    self.push(
                        Severity::Warning,
                        &source,
                        None,
                        Draft {
                            rule: Rule::Crl,
                            kind: ErrorKind::Expired,
                            message: format!(
                                "The revocation list of {} was due for renewal at {}. \
                                 {STALE_CRL}",
                                crl.issuer(),
                                timefmt::utc(next)
                            ),
                            fix: "generate a fresh CRL (virtpki crl revoke, or certtool \
                                  --generate-crl) and install it"
                                .into(),
                        },
                        None,
                    );
                }
            }
            if !creds
                .ca_certs
                .iter()
                .any(|ca| ca.subject_raw() == crl.issuer_raw())
            {
                self.push(
                    Severity::Warning,
                    &source,
                    None,
                    Draft {
                        rule: Rule::Crl,
                        kind: ErrorKind::UnknownIssuer,
                        message: format!(
                            "The revocation list of {} applies to no loaded CA certificate",
                            crl.issuer()
                        ),
                        fix: "load the CRL of the CA that issues the peers' certificates".into(),
                    },
                    None,
                );
            }
        }
    }
}

/// What happens with a CRL past its next update, said by both CRL findings. virtpki's
/// verification applies it as before (rustls-webpki's default expiration policy, `Ignore`,
/// which [`crate::chain`] keeps), and so does libvirt: GnuTLS's revocation check compares
/// issuer and serial numbers only, and `gnutls_certificate_set_x509_crl_file` does not check
/// the list's dates.
const STALE_CRL: &str = "A list past its next update is still applied, by libvirt (GnuTLS) \
     and by virtpki alike: the certificates it lists stay refused and no connection is \
     refused for its age, but a certificate revoked after it was written is accepted until a \
     newer list is installed";

/// The `virtpki issue` command that makes a certificate with `cert`'s subject (and, for a
/// server, its other names), each value one shell word: the subject is whoever made the
/// certificate's choice. A server certificate without a CN (names in SANs only) is named by
/// its first SAN, as `issue server --dn` needs a CN.
fn reissue_command(cert: &Certificate, role: Role) -> String {
    use crate::cert::SubjectAltName;
    let word = |s: &str| display::shell_word(s).into_owned();
    let mut names: Vec<(&str, String)> = Vec::new();
    if role == Role::Server {
        for san in cert.subject_alt_names() {
            match san {
                SubjectAltName::Dns(name) => names.push(("--dns", name.clone())),
                SubjectAltName::Ip(ip) => names.push(("--ip", ip.to_string())),
                _ => {}
            }
        }
    }
    // A name with a control or invisible character cannot be typed back as an argument (it
    // would show escaped, as something else): no command then, only what to do.
    let typeable = |s: &str| !s.chars().any(display::is_unsafe);
    if !typeable(cert.subject()) || !names.iter().all(|(_, n)| typeable(n)) {
        return format!(
            "virtpki issue {} --ca-dir CA_DIR with the same subject and names (they hold \
             characters a command line cannot carry as shown: see virtpki show)",
            role.name()
        );
    }
    let subject = if role == Role::Server && cert.common_names().is_empty() && !names.is_empty() {
        let (_, first) = names.remove(0);
        format!("--cn {}", word(&first))
    } else {
        format!("--dn {}", word(cert.subject()))
    };
    let mut cmd = format!("virtpki issue {} --ca-dir CA_DIR {subject}", role.name());
    // `issue server` writes its CN as a SAN itself.
    let is_cn = |name: &str| {
        cert.common_names()
            .iter()
            .any(|cn| cn.eq_ignore_ascii_case(name))
    };
    for (option, name) in names.iter().filter(|(_, name)| !is_cn(name)) {
        cmd.push_str(&format!(" {option} {}", word(name)));
    }
    cmd.push_str(" --out-dir DIR");
    cmd
}

/// A finding of [`check_qemu`]: the sanity check's finding, and how QEMU's own load-time
/// check (`crypto/tlscredsx509.c`) differs from it, by QEMU version, when it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuFinding {
    /// The finding, as [`check_with_horizon`] makes it.
    pub finding: Finding,
    /// `QEMU ...`: what QEMU does where it differs from virtpki (and libvirt).
    pub qemu: Option<String>,
}

/// QEMU's cap on the certificates of `ca-cert.pem` up to 10.1 (`MAX_CERTS`).
pub const QEMU_MAX_CA_CERTS: usize = 16;

/// The sanity check of a QEMU directory's credentials for `role` (QEMU's `endpoint`): the
/// rules of [`check_with_horizon`], which QEMU's load-time check shares with libvirt's, each
/// finding with how QEMU differs; plus QEMU's own rule of at most
/// [`QEMU_MAX_CA_CERTS`] CA certificates (up to 10.1). File modes are left out: QEMU reads
/// its files as its own user, which [`crate::file_audit::audit_qemu`] checks.
pub fn check_qemu(
    creds: &Credentials,
    role: Role,
    now: UnixSeconds,
    horizon_days: u32,
) -> Vec<QemuFinding> {
    let report = check_with_horizon(creds, role, now, horizon_days);
    let mut out: Vec<QemuFinding> = report
        .findings
        .into_iter()
        .filter(|f| f.rule != Rule::FileMode)
        .map(|mut finding| {
            let qemu = qemu_note(&finding);
            in_qemu_s_words(&mut finding);
            QemuFinding { finding, qemu }
        })
        .collect();
    if creds.ca_certs.len() > QEMU_MAX_CA_CERTS {
        let source = creds.ca_certs[0].source().clone();
        out.push(QemuFinding {
            finding: Finding {
                severity: Severity::Warning,
                rule: Rule::Chain,
                kind: ErrorKind::Parse,
                message: format!(
                    "{source} holds {} CA certificates, more than the {QEMU_MAX_CA_CERTS} QEMU \
                     reads",
                    creds.ca_certs.len()
                ),
                fix: "keep only the CAs this host's peers are issued by in ca-cert.pem".into(),
                source,
                subject: None,
                libvirt_differs: None,
            },
            qemu: Some(
                "QEMU <= 10.1 refuses it (\"Unable to import CA certificate list\"); QEMU >= \
                 10.2 reads any number"
                    .into(),
            ),
        });
    }
    out
}

/// Whether QEMU's server can load `bytes` as `dh-params.pem`, which it reads when the file
/// is there (GnuTLS `gnutls_dh_params_import_pkcs3`, PEM): a "DH PARAMETERS" block whose
/// contents are a DER SEQUENCE (PKCS#3 DHParameter; the numbers are GnuTLS's to judge). The
/// error is what is wrong, for a message after QEMU's "Unable to load DH parameters from
/// FILE".
pub fn check_qemu_dh_params(bytes: &[u8]) -> std::result::Result<(), String> {
    let blocks = ::pem::parse_many(bytes).map_err(|e| format!("not PEM: {e}"))?;
    let block = blocks
        .iter()
        .find(|b| b.tag() == "DH PARAMETERS")
        .ok_or("no \"-----BEGIN DH PARAMETERS-----\" block")?;
    match block.contents().first() {
        Some(0x30) => Ok(()),
        _ => Err("the DH PARAMETERS block is not a DER SEQUENCE (PKCS#3 DHParameter)".into()),
    }
}

/// The expiry warnings say what libvirtd does and name libvirt's install: for a QEMU
/// directory, what QEMU does and `install --qemu` (QEMU has nothing to reload: running domains
/// keep what they loaded).
fn in_qemu_s_words(f: &mut Finding) {
    if f.rule != Rule::ExpiresSoon {
        return;
    }
    for (libvirt, qemu) in [
        (
            "libvirtd refuses to start with it",
            "QEMU refuses to load it (domains, migrations and backups using it fail to start)",
        ),
        (
            "libvirt refuses to load it",
            "QEMU refuses to load it (domains, migrations and backups using it fail to start)",
        ),
        (
            "libvirtd does not start and clients cannot connect",
            "QEMU refuses to load the directory",
        ),
    ] {
        f.message = f.message.replace(libvirt, qemu);
    }
    for role in ["server", "client"] {
        f.fix = f.fix.replace(
            &format!("virtpki install --role {role} --ca-dir CA_DIR --from DIR --reload"),
            &format!(
                "virtpki install --qemu --role {role} --ca-dir CA_DIR --from DIR (running \
                 domains keep the old files until restarted or migrated)"
            ),
        );
    }
}

/// How QEMU's verdict differs on `f`, found from the libvirt note the finding carries.
fn qemu_note(f: &Finding) -> Option<String> {
    let libvirt = f.libvirt_differs.as_deref().unwrap_or("");
    let note = if libvirt.contains("uses only the first certificate") {
        "QEMU >= 10.2 accepts the chain; QEMU <= 10.1 (Debian 12's 7.2 and 10.0) refuses it \
         (\"Our own certificate ... failed validation ... hasn't got a known issuer\"): put \
         the intermediates into ca-cert.pem"
    } else if libvirt.contains("not on the chain of trust") {
        "QEMU <= 10.1 checks every CA of ca-cert.pem and refuses the whole file for it; QEMU \
         >= 10.2 checks only the chain of trust"
    } else if libvirt.contains("keyEncipherment") {
        "QEMU <= 10.1 refuses it when key usage is critical (\"usage does not permit key \
         encipherment\"), except stable releases with the fix backported (Debian 12's 7.2.22 \
         accepts it; qemu-img 10.0.2 of bookworm-backports refuses it); QEMU >= 10.2 accepts it"
    } else if f.rule == Rule::KeyUsage && f.message.contains("does not permit key encipherment") {
        // An RSA leaf: libvirt refuses it too, so no libvirt note carries the QEMU one.
        "QEMU <= 10.1 refuses it as libvirt does, except stable releases with the fix \
         backported (Debian 12's 7.2.22 accepts it; qemu-img 10.0.2 of bookworm-backports \
         refuses it); QEMU >= 10.2 accepts it"
    } else if libvirt.contains("anyExtendedKeyUsage") {
        "QEMU reads anyExtendedKeyUsage as allowing both roles and accepts it"
    } else if libvirt.contains("unrecognised purpose") {
        "QEMU loads it unless the extension is critical, as libvirt; peers that check the \
         purpose refuse it"
    } else if libvirt.contains("PKCS#8 version 2") || f.message.contains("PKCS#8 version 2") {
        "QEMU reads it only with a GnuTLS newer than 3.7 (not Debian 12's QEMU)"
    } else {
        return None;
    };
    Some(note.to_owned())
}

fn unrelated_ca_note(severity: Severity, what: &str) -> Option<String> {
    (severity == Severity::Warning && what == "CA").then(|| {
        "this CA is not on the chain of trust of the own certificate; libvirt 9 still refuses \
         the whole CA file because of it, and so does QEMU up to 10.1 (QEMU >= 10.2 \
         ignores it)"
            .to_owned()
    })
}
