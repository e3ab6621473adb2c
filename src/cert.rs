//! A parsed certificate and what people ask of it.
//!
//! Certificates are parsed once, when they are loaded, into plain owned fields: verification,
//! sanity checks, descriptions and the C API all read these fields and never re-parse. The two
//! fingerprints are hashed on first use: verifying a peer's chain needs them only for pins, the
//! known-servers store and validators.
//!
//! Two readers fill the fields. `cert::reader` reads the plain version 3 form in one pass over the
//! DER; x509-parser reads whatever it leaves, and gives the errors. The first only ever takes
//! what the second would, to the same fields ([`check_canonical_reader`] and the differential
//! tests below hold them to it), so which one read a certificate is never visible. After either,
//! `cert::import` applies the rules GnuTLS checks when it imports a certificate, which libvirt
//! therefore applies too.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use rustls_pki_types::CertificateDer;
use x509_parser::oid_registry::*;
use x509_parser::prelude::*;

use crate::display;
use crate::dn;
use crate::error::{Error, ErrorKind, Result};
use crate::role::Role;
use crate::source::Source;
use crate::timefmt::{self, UnixSeconds};

mod import;
mod reader;

/// One subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectAltName {
    /// A `dNSName`, as encoded (possibly a wildcard such as `*.example.com`).
    Dns(String),
    /// An `iPAddress` of 4 or 16 bytes.
    Ip(IpAddr),
    /// An `rfc822Name` (e-mail address).
    Email(String),
    /// A `uniformResourceIdentifier`.
    Uri(String),
    /// Any other form, described for people only.
    Other(String),
}

impl SubjectAltName {
    /// `DNS:name` and the like with the value as the certificate holds it, unquoted and
    /// unescaped: for data such as JSON, whose encoder escapes what it must. Text for people
    /// uses the `Display` form.
    pub fn to_raw_string(&self) -> String {
        match self {
            SubjectAltName::Dns(n) => format!("DNS:{n}"),
            SubjectAltName::Ip(a) => format!("IP:{a}"),
            SubjectAltName::Email(e) => format!("email:{e}"),
            SubjectAltName::Uri(u) => format!("URI:{u}"),
            SubjectAltName::Other(o) => o.clone(),
        }
    }
}

/// `DNS:name` and the like; a value that could read as more than one name (a comma or space in
/// it) or that holds escapes is quoted (see [`display::list_item`]).
impl std::fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use display::list_item;
        match self {
            SubjectAltName::Dns(n) => write!(f, "DNS:{}", list_item(n)),
            SubjectAltName::Ip(a) => write!(f, "IP:{a}"),
            SubjectAltName::Email(e) => write!(f, "email:{}", list_item(e)),
            SubjectAltName::Uri(u) => write!(f, "URI:{}", list_item(u)),
            SubjectAltName::Other(o) => f.write_str(o),
        }
    }
}

/// The basic constraints extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicConstraints {
    /// Whether the extension is marked critical.
    pub critical: bool,
    /// Whether the subject is a CA, that is, may sign certificates.
    pub ca: bool,
    /// How many intermediate CAs may follow below this one; `None` = no limit.
    pub path_len: Option<u32>,
}

/// The key usage bits of RFC 5280 §4.2.1.3, in bit order.
pub const KEY_USAGE_NAMES: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

/// The key usage extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    /// Whether the extension is marked critical.
    pub critical: bool,
    /// Bit `i` set = usage `KEY_USAGE_NAMES[i]` allowed.
    pub bits: u16,
}

impl KeyUsage {
    /// May sign data: what a TLS client or server does with an (EC)DHE key exchange.
    pub const DIGITAL_SIGNATURE: u16 = 1 << 0;
    /// May encrypt keys: RSA key exchange; libvirt asks it of RSA keys (RFC 8813 spares the others).
    pub const KEY_ENCIPHERMENT: u16 = 1 << 2;
    /// May sign certificates: what a CA needs.
    pub const KEY_CERT_SIGN: u16 = 1 << 5;
    /// May sign CRLs: what a CA that publishes revocations needs.
    pub const CRL_SIGN: u16 = 1 << 6;

    /// Whether every bit of `bits` is allowed.
    pub fn allows(&self, bits: u16) -> bool {
        self.bits & bits == bits
    }

    /// The names of the allowed usages.
    pub fn names(&self) -> Vec<&'static str> {
        (0..KEY_USAGE_NAMES.len())
            .filter(|i| self.bits & (1 << i) != 0)
            .map(|i| KEY_USAGE_NAMES[i])
            .collect()
    }
}

/// The extended key usage extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendedKeyUsage {
    /// Whether the extension is marked critical.
    pub critical: bool,
    /// anyExtendedKeyUsage: every purpose allowed.
    pub any: bool,
    /// TLS server authentication (id-kp-serverAuth).
    pub server_auth: bool,
    /// TLS client authentication (id-kp-clientAuth).
    pub client_auth: bool,
    /// Other purposes, as dotted OIDs or short names.
    pub others: Vec<String>,
}

impl ExtendedKeyUsage {
    /// Whether the extension allows `role`: the role's purpose or anyExtendedKeyUsage. The
    /// rule of the sanity check and of client verification, so the two cannot differ.
    pub fn allows(&self, role: Role) -> bool {
        self.any || self.allows_named(role)
    }

    /// libvirt's reading: the role's purpose, or any purpose it does not know (but not "any").
    /// The sanity check reports where it differs from [`allows`](Self::allows).
    pub fn libvirt_allows(&self, role: Role) -> bool {
        !self.others.is_empty() || self.allows_named(role)
    }

    /// Whether the role's own purpose (serverAuth, clientAuth) is listed.
    fn allows_named(&self, role: Role) -> bool {
        match role {
            Role::Server => self.server_auth,
            Role::Client => self.client_auth,
        }
    }
}

/// The algorithm and size of a certificate's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA.
    Rsa {
        /// The modulus length.
        bits: usize,
    },
    /// ECDSA.
    Ecdsa {
        /// The curve's name (`P-256`, ...), or its OID when it is not one of the known ones.
        curve: String,
    },
    /// Ed25519 (RFC 8410).
    Ed25519,
    /// Ed448 (RFC 8410).
    Ed448,
    /// A key of any other algorithm, named by its dotted OID.
    Other(String),
}

impl KeyAlgorithm {
    /// The algorithm and size of an encoded SubjectPublicKeyInfo (a private key's public half,
    /// [`crate::PrivateKey::public_key_der`]), named as for certificates.
    pub fn of_spki_der(der: &[u8]) -> KeyAlgorithm {
        match SubjectPublicKeyInfo::from_der(der) {
            Ok((_, spki)) => key_algorithm(&spki),
            Err(_) => KeyAlgorithm::Other("unreadable public key".to_owned()),
        }
    }

    /// Whether RFC 8813 lets the key do without keyEncipherment (it cannot encrypt anyway).
    pub fn is_signature_only(&self) -> bool {
        matches!(
            self,
            KeyAlgorithm::Ecdsa { .. } | KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed448
        )
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA {bits} bits"),
            KeyAlgorithm::Ecdsa { curve } => write!(f, "ECDSA {curve}"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
            KeyAlgorithm::Ed448 => f.write_str("Ed448"),
            KeyAlgorithm::Other(oid) => write!(f, "unknown algorithm {oid}"),
        }
    }
}

/// Facts of the RFC 5280 profile that webpki does not look at, read once at parse time for
/// [`crate::profile`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileFacts {
    /// Critical extensions webpki does not process (it knows KU, SAN, BC, NC, CRLDP, EKU).
    pub unknown_critical: Vec<String>,
    /// The subject key identifier, if present.
    pub subject_key_id: Option<Vec<u8>>,
    /// Whether an authority key identifier is present, and its key identifier.
    pub authority_key_id: Option<Option<Vec<u8>>>,
    /// Whether the subject alternative name extension is present, and critical.
    pub san_critical: Option<bool>,
    /// Name constraints that are empty or use a DNS base with a leading period.
    pub malformed_name_constraints: bool,
    /// An authority information access extension that does not parse or is empty.
    pub malformed_aia: bool,
}

/// Where a certificate stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// Between notBefore and notAfter.
    Valid,
    /// Past notAfter.
    Expired,
    /// Before notBefore: often a clock behind the issuer's.
    NotYetValid,
}

/// A parsed X.509 certificate.
///
/// Cloning is cheap: the parsed fields are shared (`Arc`), so a context's snapshot of
/// thousands of certificates is copied with reference counts, not bytes.
#[derive(Clone)]
pub struct Certificate {
    fields: Arc<Fields>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names and algorithms are worked out on first use: do it, so the output shows them.
        let _ = (
            self.subject(),
            self.issuer(),
            self.signature_algorithm(),
            self.key_algorithm(),
        );
        self.fields.fmt(f)
    }
}

/// What [`Certificate`] shares between its clones.
#[derive(Debug)]
struct Fields {
    der: CertificateDer<'static>,
    source: Source,
    read: ParsedFields,
    /// The names in libvirt's format, printed on first use (checked at parse time): a peer's
    /// chain verified for a server is never printed unless something fails or is asked.
    subject: OnceLock<String>,
    issuer: OnceLock<String>,
    /// The signature algorithm named on first use.
    signature_algorithm: OnceLock<String>,
    /// Read from `spki_der` on first use (checked to be a whole SPKI at parse time): the
    /// profile checks of a verification ask for the leaf's and the path's CAs', not for the
    /// other loaded CAs'.
    key_algorithm: OnceLock<KeyAlgorithm>,
    /// Computed on first use: a peer's chain is verified without them unless a pin, the
    /// known-servers store or a validator asks.
    fingerprint: OnceLock<Fingerprint>,
    spki_fingerprint: OnceLock<Fingerprint>,
}

/// What a certificate's DER says, read at parse time by [`reader::read`] or, for anything
/// that reader leaves, by x509-parser ([`read_with_x509_parser`]); both fill it the same way.
#[derive(Debug, PartialEq, Eq)]
struct ParsedFields {
    version: u32,
    serial: Vec<u8>,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    common_names: Vec<String>,
    not_before: UnixSeconds,
    not_after: UnixSeconds,
    subject_alt_names: Vec<SubjectAltName>,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    extended_key_usage: Option<ExtendedKeyUsage>,
    /// The signature algorithm's OID (content octets).
    signature_oid: Vec<u8>,
    has_name_constraints: bool,
    profile: ProfileFacts,
    spki_der: Vec<u8>,
}

impl Certificate {
    /// Parses one DER certificate; `source` says where it came from, for messages.
    pub fn from_der(der: Vec<u8>, source: Source) -> Result<Certificate> {
        let read = match reader::read(&der) {
            Some(read) => read,
            None => read_with_x509_parser(&der, &source)?,
        };
        import::check(&der, &read).map_err(|rule| {
            let why = "GnuTLS, and so libvirt, refuses to import such a certificate";
            Error::new(ErrorKind::Parse, format!("{source}: {rule} ({why})"))
        })?;
        Ok(Certificate {
            fields: Arc::new(Fields {
                read,
                subject: OnceLock::new(),
                issuer: OnceLock::new(),
                signature_algorithm: OnceLock::new(),
                key_algorithm: OnceLock::new(),
                fingerprint: OnceLock::new(),
                spki_fingerprint: OnceLock::new(),
                source,
                der: CertificateDer::from(der),
            }),
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.fields.der
    }

    /// Where the certificate was read from.
    pub fn source(&self) -> &Source {
        &self.fields.source
    }

    /// PEM text of the certificate.
    pub fn to_pem(&self) -> String {
        ::pem::encode(&::pem::Pem::new("CERTIFICATE", self.fields.der.to_vec()))
    }

    /// X.509 version: 1, 2 or 3.
    pub fn version(&self) -> u32 {
        self.fields.read.version
    }

    /// The serial number's DER content octets, as CRLs list them.
    pub fn raw_serial(&self) -> &[u8] {
        &self.fields.read.serial
    }

    /// Serial number as `01:ab:...` lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex_with_colons(&self.fields.read.serial)
    }

    /// Subject in libvirt's DN format (what `virt-pki-query-dn` prints).
    ///
    /// Printed on first use. The default never shows: `from_der` ran `dn::check_name` on
    /// these same bytes, and checking and printing are one walk whose only errors are the
    /// check's (`dn`'s random-name test holds them to that).
    pub fn subject(&self) -> &str {
        self.fields
            .subject
            .get_or_init(|| printed_name(&self.fields.read.subject_raw))
    }

    /// Issuer in libvirt's DN format, printed on first use as [`subject`](Self::subject).
    pub fn issuer(&self) -> &str {
        self.fields
            .issuer
            .get_or_init(|| printed_name(&self.fields.read.issuer_raw))
    }

    /// Whether `issuer` issued this certificate: its subject is this one's issuer name and its
    /// key made this one's signature. Nothing else is checked (no time, no path, no purpose):
    /// the question of a CA's own records, such as which certificate a CRL entry stands for.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        self.issuer_raw() == issuer.subject_raw()
            && match (
                X509Certificate::from_der(self.der()),
                X509Certificate::from_der(issuer.der()),
            ) {
                (Ok((_, cert)), Ok((_, ca))) => cert
                    .verify_signature(Some(&ca.tbs_certificate.subject_pki))
                    .is_ok(),
                _ => false,
            }
    }

    /// The encoded subject name, for chain matching.
    pub fn subject_raw(&self) -> &[u8] {
        &self.fields.read.subject_raw
    }

    /// The encoded issuer name, for chain matching.
    pub fn issuer_raw(&self) -> &[u8] {
        &self.fields.read.issuer_raw
    }

    /// Whether subject and issuer are the same name (a root or a self-signed leaf).
    pub fn is_self_issued(&self) -> bool {
        self.fields.read.subject_raw == self.fields.read.issuer_raw
    }

    /// The subject's Common Names that are text.
    pub fn common_names(&self) -> &[String] {
        &self.fields.read.common_names
    }

    /// Start of validity.
    pub fn not_before(&self) -> UnixSeconds {
        self.fields.read.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> UnixSeconds {
        self.fields.read.not_after
    }

    /// Where the certificate stands at `now`.
    pub fn validity_at(&self, now: UnixSeconds) -> Validity {
        if now < self.fields.read.not_before {
            Validity::NotYetValid
        } else if now > self.fields.read.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }

    /// Subject alternative names in encoded order.
    pub fn subject_alt_names(&self) -> &[SubjectAltName] {
        &self.fields.read.subject_alt_names
    }

    /// Whether there is any DNS or IP subject alternative name (RFC 6125: then the CN is not used).
    pub fn has_dns_or_ip_san(&self) -> bool {
        self.fields
            .read
            .subject_alt_names
            .iter()
            .any(|s| matches!(s, SubjectAltName::Dns(_) | SubjectAltName::Ip(_)))
    }

    /// The basic constraints extension, if present.
    pub fn basic_constraints(&self) -> Option<BasicConstraints> {
        self.fields.read.basic_constraints
    }

    /// Whether basic constraints say CA:TRUE.
    pub fn is_ca(&self) -> bool {
        self.fields.read.basic_constraints.is_some_and(|bc| bc.ca)
    }

    /// The key usage extension, if present.
    pub fn key_usage(&self) -> Option<KeyUsage> {
        self.fields.read.key_usage
    }

    /// The extended key usage extension, if present.
    pub fn extended_key_usage(&self) -> Option<&ExtendedKeyUsage> {
        self.fields.read.extended_key_usage.as_ref()
    }

    /// Whether the certificate carries a name constraints extension (a constrained CA).
    pub fn has_name_constraints(&self) -> bool {
        self.fields.read.has_name_constraints
    }

    /// Profile facts webpki leaves aside.
    pub fn profile(&self) -> &ProfileFacts {
        &self.fields.read.profile
    }

    /// Signature algorithm name, e.g. `sha256WithRSAEncryption`.
    pub fn signature_algorithm(&self) -> &str {
        self.fields.signature_algorithm.get_or_init(|| {
            oid_name(&x509_parser::der_parser::oid::Oid::new(
                self.fields.read.signature_oid.as_slice().into(),
            ))
        })
    }

    /// Public key algorithm and size.
    pub fn key_algorithm(&self) -> &KeyAlgorithm {
        self.fields
            .key_algorithm
            .get_or_init(|| KeyAlgorithm::of_spki_der(&self.fields.read.spki_der))
    }

    /// The SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.fields.read.spki_der
    }

    /// SHA-256 of the whole certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        *self
            .fields
            .fingerprint
            .get_or_init(|| Fingerprint::of(&self.fields.der))
    }

    /// SHA-256 of the SubjectPublicKeyInfo: equal across renewals with the same key.
    pub fn spki_fingerprint(&self) -> Fingerprint {
        *self
            .fields
            .spki_fingerprint
            .get_or_init(|| Fingerprint::of(&self.fields.read.spki_der))
    }

    /// [`fingerprint`](Self::fingerprint) as text, `SHA256:` and 64 uppercase hex digits: the
    /// C API's fingerprint format.
    pub fn fingerprint_string(&self) -> String {
        self.fingerprint().to_string()
    }

    /// [`spki_fingerprint`](Self::spki_fingerprint) as text, in the same format.
    pub fn spki_fingerprint_string(&self) -> String {
        self.spki_fingerprint().to_string()
    }

    /// A short description for a person: what `certtool -i` says, without the noise.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        // Every line passes through the display escaping: names, SANs and policy OIDs come
        // from whoever made the certificate.
        let mut line = |text: std::fmt::Arguments<'_>| {
            s.push_str(&display::escape(&text.to_string()));
            s.push('\n');
        };
        line(format_args!("Subject: {}", self.subject()));
        line(format_args!("Issuer: {}", self.issuer()));
        line(format_args!("Serial: {}", self.serial_hex()));
        line(format_args!("Version: {}", self.fields.read.version));
        line(format_args!(
            "Validity: {} to {}",
            timefmt::utc(self.fields.read.not_before),
            timefmt::utc(self.fields.read.not_after)
        ));
        if !self.fields.read.subject_alt_names.is_empty() {
            let names: Vec<String> = self
                .fields
                .read
                .subject_alt_names
                .iter()
                .map(|n| n.to_string())
                .collect();
            line(format_args!(
                "Subject alternative names: {}",
                names.join(", ")
            ));
        }
        line(format_args!("Public key: {}", self.key_algorithm()));
        line(format_args!(
            "Signature algorithm: {}",
            self.signature_algorithm()
        ));
        if let Some(bc) = self.fields.read.basic_constraints {
            let path = bc
                .path_len
                .map(|n| format!(", path length {n}"))
                .unwrap_or_default();
            line(format_args!(
                "Basic constraints: CA:{}{path}{}",
                if bc.ca { "TRUE" } else { "FALSE" },
                critical_suffix(bc.critical)
            ));
        }
        if let Some(ku) = self.fields.read.key_usage {
            line(format_args!(
                "Key usage: {}{}",
                ku.names().join(", "),
                critical_suffix(ku.critical)
            ));
        }
        if let Some(eku) = &self.fields.read.extended_key_usage {
            let mut purposes = Vec::new();
            if eku.server_auth {
                purposes.push("TLS server (serverAuth)".to_owned());
            }
            if eku.client_auth {
                purposes.push("TLS client (clientAuth)".to_owned());
            }
            if eku.any {
                purposes.push("any (anyExtendedKeyUsage)".to_owned());
            }
            purposes.extend(eku.others.iter().cloned());
            line(format_args!(
                "Extended key usage: {}{}",
                purposes.join(", "),
                critical_suffix(eku.critical)
            ));
        }
        line(format_args!("Fingerprint: {}", self.fingerprint_string()));
        line(format_args!(
            "Public key fingerprint: {}",
            self.spki_fingerprint_string()
        ));
        s
    }
}

/// Whether the canonical reader ([`reader::read`]) takes `der`, after checking that x509-parser
/// reads it to the same fields; panics when they disagree. For the differential tests and the
/// `certificate` fuzz target, not a stable interface.
#[doc(hidden)]
pub fn check_canonical_reader(der: &[u8]) -> bool {
    let Some(read) = reader::read(der) else {
        return false;
    };
    match read_with_x509_parser(der, &Source::Data) {
        Ok(expected) if read == expected => true,
        Ok(expected) => panic!("the readers differ: {read:?} and {expected:?} for {der:02x?}"),
        Err(e) => panic!("the reader took what x509-parser refuses ({e}): {der:02x?}"),
    }
}

/// Reads a certificate with x509-parser: every certificate [`reader::read`] leaves, and the
/// errors of all that do not parse.
fn read_with_x509_parser(der: &[u8], source: &Source) -> Result<ParsedFields> {
    let bad = |what: String| Error::new(ErrorKind::Parse, format!("{source}: {what}"));
    let (rest, x509) = X509Certificate::from_der(der)
        .map_err(|e| bad(format!("not a valid X.509 certificate ({e})")))?;
    if !rest.is_empty() {
        return Err(bad(format!(
            "{} bytes of garbage after the certificate",
            rest.len()
        )));
    }
    let subject_raw = x509.subject().as_raw().to_vec();
    let issuer_raw = x509.issuer().as_raw().to_vec();
    dn::check_name(&subject_raw).map_err(|e| e.context(source))?;
    dn::check_name(&issuer_raw).map_err(|e| e.context(source))?;
    let common_names = x509
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    let ext = |e: X509Error| bad(format!("invalid or duplicate extension ({e})"));
    let basic_constraints = x509
        .basic_constraints()
        .map_err(ext)?
        .map(|bc| BasicConstraints {
            critical: bc.critical,
            ca: bc.value.ca,
            path_len: bc.value.path_len_constraint,
        });
    let key_usage = x509.key_usage().map_err(ext)?.map(|ku| KeyUsage {
        critical: ku.critical,
        bits: ku.value.flags,
    });
    let extended_key_usage = x509
        .extended_key_usage()
        .map_err(ext)?
        .map(|eku| ExtendedKeyUsage {
            critical: eku.critical,
            any: eku.value.any,
            server_auth: eku.value.server_auth,
            client_auth: eku.value.client_auth,
            others: other_purposes(eku.value),
        });
    let subject_alt_names = match x509.subject_alternative_name().map_err(ext)? {
        Some(san) => san.value.general_names.iter().map(convert_san).collect(),
        None => Vec::new(),
    };
    let has_name_constraints = x509.name_constraints().map_err(ext)?.is_some();
    let profile = profile_facts(&x509);
    let spki = x509.public_key();
    // x509-parser skips data after the key inside the SubjectPublicKeyInfo and leaves it
    // out of `raw`, whose header still counts it; GnuTLS refuses such a certificate. The
    // key's algorithm (on first use) and its fingerprint are read from these bytes.
    if !matches!(crate::der::read(spki.raw), Ok((_, rest)) if rest.is_empty()) {
        return Err(bad(
            "the subject public key info has data after the key".to_owned()
        ));
    }
    let spki_der = spki.raw.to_vec();
    let signature_oid = x509.signature_algorithm.algorithm.as_bytes().to_vec();
    Ok(ParsedFields {
        version: x509.version().0.saturating_add(1),
        serial: x509.raw_serial().to_vec(),
        subject_raw,
        issuer_raw,
        common_names,
        not_before: x509.validity().not_before.timestamp(),
        not_after: x509.validity().not_after.timestamp(),
        subject_alt_names,
        basic_constraints,
        key_usage,
        extended_key_usage,
        signature_oid,
        has_name_constraints,
        profile,
        spki_der,
    })
}

/// Extension OIDs webpki processes (so a critical one is fine for it). Compared as encoded
/// OIDs: formatting every extension's OID as text was a tenth of parsing a peer's chain.
const WEBPKI_EXTENSIONS: [Oid<'static>; 6] = [
    OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_SUBJECT_ALT_NAME,
    OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_NAME_CONSTRAINTS,
    OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
    OID_X509_EXT_EXTENDED_KEY_USAGE,
];

fn profile_facts(x509: &X509Certificate<'_>) -> ProfileFacts {
    let mut facts = ProfileFacts::default();
    for ext in x509.extensions() {
        if ext.critical && !WEBPKI_EXTENSIONS.contains(&ext.oid) {
            facts.unknown_critical.push(ext.oid.to_id_string());
        }
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => facts.subject_key_id = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                facts.authority_key_id = Some(aki.key_identifier.as_ref().map(|k| k.0.to_vec()))
            }
            ParsedExtension::SubjectAlternativeName(_) => facts.san_critical = Some(ext.critical),
            ParsedExtension::NameConstraints(nc) => {
                let subtrees = |t: &Option<Vec<GeneralSubtree<'_>>>| t.as_ref().map_or(0, Vec::len);
                let leading_dot = nc
                    .permitted_subtrees
                    .iter()
                    .chain(nc.excluded_subtrees.iter())
                    .flatten()
                    .any(|t| matches!(t.base, GeneralName::DNSName(d) if d.starts_with('.')));
                facts.malformed_name_constraints = leading_dot
                    || subtrees(&nc.permitted_subtrees) + subtrees(&nc.excluded_subtrees) == 0;
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                facts.malformed_aia = aia.accessdescs.is_empty()
            }
            ParsedExtension::ParseError { .. } if ext.oid == OID_PKIX_AUTHORITY_INFO_ACCESS => {
                facts.malformed_aia = true
            }
            ParsedExtension::ParseError { .. } if ext.oid == OID_X509_EXT_NAME_CONSTRAINTS => {
                facts.malformed_name_constraints = true
            }
            _ => {}
        }
    }
    facts
}

/// A name checked by `dn::check_name` at parse time, printed. Checking and printing are one
/// walk, so printing cannot fail here; were they ever to disagree, debug builds say so rather
/// than hand an empty DN to the allowed-DN list.
fn printed_name(name_der: &[u8]) -> String {
    dn::name_to_libvirt_string(name_der).unwrap_or_else(|e| {
        debug_assert!(false, "a name checked at parse time does not print: {e}");
        String::new()
    })
}

fn critical_suffix(critical: bool) -> &'static str {
    if critical {
        " (critical)"
    } else {
        ""
    }
}

/// A SHA-256 fingerprint of a certificate or a public key, written `SHA256:` followed by 64
/// uppercase hex digits: the form of the C API, the CLI and the known-servers file.
///
/// [`Fingerprint::of`] is the one place the library computes SHA-256 for fingerprints, so that
/// every fingerprint it shows or compares is computed and written the same way.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    const PREFIX: &'static str = "SHA256:";

    /// The fingerprint of `data`.
    pub fn of(data: &[u8]) -> Fingerprint {
        Fingerprint(crate::crypto::sha256(data))
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::PREFIX)?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Reads `SHA256:` and 64 hex digits (either case; no colons between them).
    fn from_str(text: &str) -> Result<Fingerprint> {
        let invalid = || {
            Error::new(
                ErrorKind::Parse,
                format!("{text:?} is not a fingerprint: expected \"SHA256:\" and 64 hex digits"),
            )
        };
        let hex = text.strip_prefix(Self::PREFIX).ok_or_else(invalid)?;
        if hex.len() != 64 {
            return Err(invalid());
        }
        let digit = |b: u8| char::from(b).to_digit(16);
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let (high, low) = digit(pair[0]).zip(digit(pair[1])).ok_or_else(invalid)?;
            *byte = (high << 4 | low) as u8;
        }
        Ok(Fingerprint(bytes))
    }
}

pub(crate) fn hex_with_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An OID's OpenSSL short name (`sha256WithRSAEncryption`, `secp521r1`), else its dotted text.
pub(crate) fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_owned)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn other_purposes(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<String> {
    let mut others = named_purposes(
        eku.code_signing,
        eku.email_protection,
        eku.time_stamping,
        eku.ocsp_signing,
    );
    others.extend(eku.other.iter().map(oid_name));
    others
}

/// The names of the purposes x509-parser gives flags, in its order: how both readers list
/// an extended key usage's other purposes.
fn named_purposes(
    code_signing: bool,
    email_protection: bool,
    time_stamping: bool,
    ocsp_signing: bool,
) -> Vec<String> {
    [
        (code_signing, "codeSigning"),
        (email_protection, "emailProtection"),
        (time_stamping, "timeStamping"),
        (ocsp_signing, "OCSPSigning"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_owned())
    .collect()
}

fn convert_san(name: &GeneralName<'_>) -> SubjectAltName {
    match name {
        GeneralName::DNSName(n) => SubjectAltName::Dns((*n).to_owned()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => SubjectAltName::Ip(IpAddr::from(
                <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
            )),
            16 => SubjectAltName::Ip(IpAddr::from(
                <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
            )),
            n => SubjectAltName::Other(format!("IP:<{n} bytes>")),
        },
        GeneralName::RFC822Name(e) => SubjectAltName::Email((*e).to_owned()),
        GeneralName::URI(u) => SubjectAltName::Uri((*u).to_owned()),
        GeneralName::DirectoryName(n) => SubjectAltName::Other(format!(
            "dirName:{}",
            dn::name_to_libvirt_string(n.as_raw())
                .map(|dn| display::list_item(&dn).into_owned())
                .unwrap_or_else(|_| "<malformed>".into())
        )),
        other => SubjectAltName::Other(format!("{other:?}")),
    }
}

/// An RSA-PSS key (id-RSASSA-PSS, not rsaEncryption) is `Other`: x509-parser does not read
/// it, webpki cannot verify with it and virtpki does not certify it (as before OIDs were
/// compared encoded; the PSS test here never matched).
fn key_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> KeyAlgorithm {
    let oid = &spki.algorithm.algorithm;
    if *oid == OID_PKCS1_RSAENCRYPTION {
        match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => KeyAlgorithm::Rsa {
                bits: bit_length(rsa.modulus),
            },
            _ => KeyAlgorithm::Other(oid.to_id_string()),
        }
    } else if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            // Only a namedCurve OID names a curve (x509-parser's `as_oid` reads any tag).
            .filter(|p| {
                p.tag() == x509_parser::der_parser::asn1_rs::Tag::Oid
                    && crate::der::oid_is_well_formed(p.data)
            })
            .and_then(|p| p.as_oid().ok())
            .map(|c| match c {
                c if c == OID_EC_P256 => "P-256".to_owned(),
                c if c == OID_NIST_EC_P384 => "P-384".to_owned(),
                c if c == OID_NIST_EC_P521 => "P-521".to_owned(),
                other => other.to_id_string(),
            })
            .unwrap_or_else(|| "unknown curve".to_owned());
        KeyAlgorithm::Ecdsa { curve }
    } else if *oid == OID_SIG_ED25519 {
        KeyAlgorithm::Ed25519
    } else if *oid == OID_SIG_ED448 {
        KeyAlgorithm::Ed448
    } else {
        KeyAlgorithm::Other(oid.to_id_string())
    }
}

fn bit_length(big_endian: &[u8]) -> usize {
    let trimmed: &[u8] = {
        let zeros = big_endian.iter().take_while(|b| **b == 0).count();
        &big_endian[zeros..]
    };
    match trimmed.first() {
        None => 0,
        Some(top) => trimmed.len() * 8 - top.leading_zeros() as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_format_is_uppercase_without_colons() {
        let fp = Fingerprint::of(b"abc").to_string();
        assert_eq!(
            fp,
            "SHA256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
    }

    #[test]
    fn bit_length_ignores_leading_zero_bytes() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[]), 0);
    }

    /// The fields worked out on first use: many threads asking at once, on clones sharing the
    /// fields, all get the SHA-256 of the DER and of the SubjectPublicKeyInfo, and the same
    /// names and algorithms as a certificate asked from one thread.
    #[test]
    fn lazy_fingerprints_agree_across_threads() {
        let der = first_certificate_of(include_str!("../fuzz/corpus/pem_input/client-chain-text"));
        let cert = Certificate::from_der(der.clone(), Source::Data).unwrap();
        let spki = Fingerprint::of(cert.spki_der());
        let alone = Certificate::from_der(der.clone(), Source::Data).unwrap();
        let facts = |c: &Certificate| {
            (
                c.subject().to_owned(),
                c.issuer().to_owned(),
                c.signature_algorithm().to_owned(),
                c.key_algorithm().clone(),
            )
        };
        let expected = facts(&alone);
        assert_eq!(expected.0, "C=GB,O=Seed,CN=client");
        assert_eq!(expected.1, "CN=Seed CA");
        assert_eq!(expected.3, KeyAlgorithm::Ed25519);
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for i in 0..8 {
                let (cert, barrier, der, expected) = (cert.clone(), &barrier, &der, &expected);
                s.spawn(move || {
                    barrier.wait();
                    if i % 2 == 0 {
                        assert_eq!(cert.fingerprint(), Fingerprint::of(der));
                    }
                    assert_eq!(cert.spki_fingerprint(), spki);
                    assert_eq!(cert.fingerprint(), Fingerprint::of(der));
                    assert_eq!(facts(&cert), *expected);
                });
            }
        });
        assert_eq!(cert.fingerprint_string(), Fingerprint::of(&der).to_string());
    }

    /// A name x509-parser reads but libvirt's format cannot print (an attribute type that is
    /// not a complete OID) fails when the certificate is parsed, although the names are
    /// printed only when asked.
    #[test]
    fn a_name_that_cannot_be_printed_fails_at_parse_time() {
        let der = first_certificate_of(include_str!("../fuzz/corpus/pem_input/client-chain-text"));
        let cn = [0x06, 0x03, 0x55, 0x04, 0x03];
        let at = der.windows(cn.len()).position(|w| w == cn).unwrap();
        let mut broken = der.clone();
        broken[at + 4] = 0x83;
        let err = Certificate::from_der(broken, Source::Data).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Parse);
        assert!(
            err.message()
                .contains("malformed distinguished name: attribute OID"),
            "{err}"
        );
        // An attribute type not in DER's shortest form (2.5.4 with the 4 written `80 04`):
        // x509-parser reads it, GnuTLS (libtasn1) refuses the certificate, and so does this.
        let mut non_minimal = der.clone();
        non_minimal[at + 2..at + 5].copy_from_slice(&[0x55, 0x80, 0x04]);
        let err = Certificate::from_der(non_minimal, Source::Data).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Parse);
        assert!(
            err.message()
                .contains("malformed distinguished name: attribute OID"),
            "{err}"
        );
        let cert = Certificate::from_der(der, Source::Data).unwrap();
        assert!(cert.subject().contains("CN="), "{}", cert.subject());
        assert!(format!("{cert:?}").contains(cert.issuer()));
    }

    /// x509-parser skips data after the key inside a SubjectPublicKeyInfo and leaves it out of
    /// the SPKI's raw bytes, whose header still counts it: those bytes are not DER, so the key
    /// algorithm read from them on first use would be "unreadable public key" where the
    /// certificate's own parse said Ed25519, and the SPKI fingerprint would hash a fragment.
    /// GnuTLS (libtasn1) refuses such a certificate; so does the parse here.
    #[test]
    fn data_after_the_key_in_the_public_key_info_fails_at_parse_time() {
        let der = first_certificate_of(include_str!("../fuzz/corpus/pem_input/client-chain-text"));
        let cert = Certificate::from_der(der.clone(), Source::Data).unwrap();
        assert_eq!(*cert.key_algorithm(), KeyAlgorithm::Ed25519);
        // The certificate with `05 00` (a NULL) after the key, inside the SPKI.
        let (spki, _) = crate::der::read(cert.spki_der()).unwrap();
        let mut content = spki.content.to_vec();
        content.extend([0x05, 0x00]);
        let padded = replace_element(&der, spki.raw, &crate::der::encode(0x30, &content));
        assert_eq!(padded.len(), der.len() + 2);
        match Certificate::from_der(padded, Source::Data) {
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Parse);
                assert!(err.message().contains("public key info"), "{err}");
            }
            Ok(cert) => panic!("loaded, key {}", cert.key_algorithm()),
        }
    }

    /// The key's algorithm, now compared as encoded OIDs, names every kind as the dotted-text
    /// comparison did: RSA by modulus size, RSA-PSS keys as other, the NIST curves by name, other
    /// curves by OID, missing or malformed curve parameters, Ed25519, Ed448, unknown keys.
    #[test]
    fn key_algorithms_are_named_as_before() {
        use crate::der::encode;
        let spki = |alg: &[u8], params: &[u8], key: &[u8]| {
            let mut id = encode(0x06, alg);
            id.extend(params);
            let mut bits = vec![0];
            bits.extend(key);
            let mut body = encode(0x30, &id);
            body.extend(encode(0x03, &bits));
            encode(0x30, &body)
        };
        let rsa_key = {
            let mut modulus = vec![0x00, 0xc0];
            modulus.extend([0x01; 127]);
            let mut key = encode(0x02, &modulus);
            key.extend(encode(0x02, &[0x01, 0x00, 0x01]));
            encode(0x30, &key)
        };
        let rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        let pss = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
        let ec = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let point = [0x04; 65];
        let null = [0x05, 0x00];
        let curve = |oid: &[u8]| encode(0x06, oid);
        let ecdsa = |name: &str| KeyAlgorithm::Ecdsa {
            curve: name.to_owned(),
        };
        for (der, expected) in [
            (
                spki(&rsa, &null, &rsa_key),
                KeyAlgorithm::Rsa { bits: 1024 },
            ),
            (
                spki(&pss, &[], &rsa_key),
                KeyAlgorithm::Other("1.2.840.113549.1.1.10".into()),
            ),
            (
                spki(&rsa, &null, b"not a key"),
                KeyAlgorithm::Other("1.2.840.113549.1.1.1".into()),
            ),
            (
                spki(
                    &ec,
                    &curve(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
                    &point,
                ),
                ecdsa("P-256"),
            ),
            (
                spki(&ec, &curve(&[0x2b, 0x81, 0x04, 0x00, 0x22]), &point),
                ecdsa("P-384"),
            ),
            (
                spki(&ec, &curve(&[0x2b, 0x81, 0x04, 0x00, 0x23]), &point),
                ecdsa("P-521"),
            ),
            (
                spki(&ec, &curve(&[0x2b, 0x81, 0x04, 0x00, 0x0a]), &point),
                ecdsa("1.3.132.0.10"),
            ),
            // Before, NULL parameters named the curve "" and an OCTET STRING holding the
            // P-256 OID named it P-256 (x509-parser's `as_oid` reads any tag).
            (spki(&ec, &null, &point), ecdsa("unknown curve")),
            (
                spki(
                    &ec,
                    &encode(0x04, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
                    &point,
                ),
                ecdsa("unknown curve"),
            ),
            (spki(&ec, &curve(&[]), &point), ecdsa("unknown curve")),
            (spki(&ec, &[], &point), ecdsa("unknown curve")),
            (
                spki(&[0x2b, 0x65, 0x70], &[], &[7; 32]),
                KeyAlgorithm::Ed25519,
            ),
            (
                spki(&[0x2b, 0x65, 0x71], &[], &[7; 57]),
                KeyAlgorithm::Ed448,
            ),
            (
                spki(&[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01], &[], &[7; 8]),
                KeyAlgorithm::Other("1.2.840.10040.4.1".into()),
            ),
            (
                b"not a key".to_vec(),
                KeyAlgorithm::Other("unreadable public key".into()),
            ),
        ] {
            assert_eq!(KeyAlgorithm::of_spki_der(&der), expected, "{der:02x?}");
        }
    }

    /// Differential for the fields worked out on first use: for byte-mutated certificates of
    /// the fuzz corpus, every one that loads names its subject, issuer, signature and key
    /// algorithms as the eager parse did (x509-parser's parse of the whole certificate).
    #[test]
    fn lazy_fields_agree_with_the_eager_parse_on_mutated_certificates() {
        let seeds: [&[u8]; 3] = [
            include_bytes!("../fuzz/corpus/certificate/ca.der"),
            include_bytes!("../fuzz/corpus/certificate/client.der"),
            include_bytes!("../fuzz/corpus/certificate/server.der"),
        ];
        let mut rng = crate::test_rng::XorShift(0x9e37_79b9_7f4a_7c15);
        let mut below = |n: usize| rng.below(n);
        let mut loaded = 0;
        for seed in seeds {
            for _ in 0..3000 {
                let mut der = seed.to_vec();
                for _ in 0..=below(3) {
                    let at = below(der.len());
                    der[at] = match below(4) {
                        0 => der[at] ^ (1 << below(8)),
                        1 => 0x80,
                        2 => 0x00,
                        _ => below(256) as u8,
                    };
                }
                let Ok(cert) = Certificate::from_der(der.clone(), Source::Data) else {
                    continue;
                };
                loaded += 1;
                let (_, x509) = X509Certificate::from_der(&der).unwrap();
                let eager =
                    |name: &X509Name<'_>| dn::name_to_libvirt_string(name.as_raw()).unwrap();
                assert_eq!(cert.subject(), eager(x509.subject()));
                assert_eq!(cert.issuer(), eager(x509.issuer()));
                assert_eq!(
                    cert.signature_algorithm(),
                    oid_name(&x509.signature_algorithm.algorithm)
                );
                assert_eq!(*cert.key_algorithm(), key_algorithm(x509.public_key()));
            }
        }
        assert!(loaded > 1000, "{loaded}");
    }

    /// What libvirt hosts use takes the canonical reader: the fuzz corpus's certificates and
    /// what virtpki issues, with RSA, ECDSA and Ed25519 keys; CAs, servers with DNS and IP
    /// names, clients with a whole DN.
    #[test]
    fn the_usual_certificates_take_the_canonical_reader() {
        let mut ders: Vec<Vec<u8>> = [
            &include_bytes!("../fuzz/corpus/certificate/ca.der")[..],
            include_bytes!("../fuzz/corpus/certificate/client.der"),
            include_bytes!("../fuzz/corpus/certificate/server.der"),
        ]
        .map(<[u8]>::to_vec)
        .into();
        #[cfg(feature = "generate")]
        {
            use crate::generate::*;
            use crate::subject::SubjectName;
            let rsa = KeyType::Rsa { bits: 2048 };
            for key_type in [KeyType::EcdsaP256, KeyType::Ed25519, rsa] {
                let validity = Validity::days_from_now(30);
                let issued = create_ca(&CaParams {
                    common_name: "Test CA".into(),
                    organization: Some("Example".into()),
                    validity,
                    key_type,
                })
                .unwrap();
                let ca = CertificateAuthority::from_issued(&issued).unwrap();
                let server = ca
                    .issue_server(&ServerParams {
                        common_name: "host.example.com".into(),
                        dns_names: vec!["host.example.com".into(), "*.example.org".into()],
                        ip_addresses: vec![
                            "192.0.2.7".parse().unwrap(),
                            "2001:db8::7".parse().unwrap(),
                        ],
                        organization: None,
                        validity,
                        key_type,
                    })
                    .unwrap();
                let client = ca
                    .issue_client(&ClientParams {
                        dn: SubjectName::parse("C=GB,ST=London,L=London,O=Example,CN=client1")
                            .unwrap(),
                        validity,
                        key_type,
                    })
                    .unwrap();
                for made in [issued, server, client] {
                    ders.push(made.certificate.der().to_vec());
                }
            }
        }
        for (i, der) in ders.iter().enumerate() {
            assert!(check_canonical_reader(der), "certificate {i}: {der:02x?}");
        }
    }

    /// Byte-mutated certificates: those the reader takes read as with x509-parser, and the
    /// rest still load (or fail) through x509-parser, as before the reader.
    #[test]
    fn the_reader_agrees_with_x509_parser_on_mutated_certificates() {
        let seeds: [&[u8]; 3] = [
            include_bytes!("../fuzz/corpus/certificate/ca.der"),
            include_bytes!("../fuzz/corpus/certificate/client.der"),
            include_bytes!("../fuzz/corpus/certificate/server.der"),
        ];
        let mut rng = crate::test_rng::XorShift(0x2545_f491_4f6c_dd1d);
        let mut below = |n: usize| rng.below(n);
        let (mut taken, mut left) = (0, 0);
        for seed in seeds {
            for _ in 0..6000 {
                let mut der = seed.to_vec();
                // Half the changes fall in the part before the key, where the structure is.
                let structure = seed
                    .windows(2)
                    .position(|w| w == [0x30, 0x59] || w == [0x30, 0x2a]);
                for _ in 0..=below(2) {
                    let at = match structure {
                        Some(end) if below(2) == 0 => below(end),
                        _ => below(der.len()),
                    };
                    der[at] = match below(5) {
                        0 => der[at] ^ (1 << below(8)),
                        1 => 0x80,
                        2 => 0x00,
                        3 => 0xff,
                        _ => below(256) as u8,
                    };
                }
                if check_canonical_reader(&der) {
                    taken += 1;
                } else if read_with_x509_parser(&der, &Source::Data).is_ok() {
                    left += 1;
                }
            }
        }
        // Many changes land in a signature, a key or a string, and keep the form.
        assert!(taken > 5000, "{taken}");
        assert!(left > 1000, "{left}");
    }

    /// Every certificate of the x509-limbo vectors (thousands, from many issuers, many of
    /// them malformed on purpose): the reader takes the plain ones and agrees on each.
    #[test]
    fn the_reader_agrees_with_x509_parser_on_the_limbo_certificates() {
        use std::io::Read;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/x509-limbo/limbo-server-subset.json.gz"
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let (mut taken, mut total) = (0, 0);
        for case in doc["testcases"].as_array().unwrap() {
            let pems = std::iter::once(&case["peer_certificate"])
                .chain(case["untrusted_intermediates"].as_array().unwrap())
                .chain(case["trusted_certs"].as_array().unwrap());
            for pem_text in pems.filter_map(serde_json::Value::as_str) {
                let der = ::pem::parse(pem_text).unwrap().into_contents();
                total += 1;
                if check_canonical_reader(&der) {
                    taken += 1;
                }
            }
        }
        assert!(total > 5000, "{total}");
        // About three quarters; the rest carry forms left to x509-parser.
        assert!(taken * 3 > total * 2, "{taken} of {total}");
    }

    /// Forms the reader leaves to x509-parser, each still loading as before: a length in long
    /// form, an explicit FALSE, a version 1 certificate, name constraints, an unknown critical
    /// extension, a registered-ID alternative name.
    #[test]
    fn the_reader_leaves_unusual_forms_to_x509_parser() {
        use crate::der::{encode, read};
        let der = &include_bytes!("../fuzz/corpus/certificate/server.der")[..];
        assert!(check_canonical_reader(der));
        let subject = Certificate::from_der(der.to_vec(), Source::Data)
            .unwrap()
            .subject()
            .to_owned();
        let tbs = read(read(der).unwrap().0.content).unwrap().0;
        let tbs_parts = all_elements(tbs.content);
        let (version, serial) = (&tbs_parts[0], &tbs_parts[1]);
        let extensions = read(tbs_parts.last().unwrap().content).unwrap().0;
        let san = all_elements(extensions.content)
            .into_iter()
            .find(|e| e.content.starts_with(&[0x06, 0x03, 0x55, 0x1d, 0x11]))
            .unwrap();
        let extension = |oid: &[u8], critical: &[u8], value: &[u8]| {
            let mut body = encode(0x06, oid);
            body.extend(critical);
            body.extend(encode(0x04, value));
            encode(0x30, &body)
        };
        let with_extra = |extra: Vec<u8>| {
            let mut content = extensions.content.to_vec();
            content.extend(extra);
            replace_element(der, extensions.raw, &encode(0x30, &content))
        };
        let mut long_serial = vec![0x02, 0x81, serial.content.len() as u8];
        long_serial.extend(serial.content);
        let name_constraints = encode(
            0x30,
            &encode(0xa0, &encode(0x30, &encode(0x82, b"example.com"))),
        );
        let registered_id = encode(0x30, &encode(0x88, &[0x2a, 0x03]));
        let critical = [0x01, 0x01, 0xff];
        for (what, changed) in [
            (
                "long-form length",
                replace_element(der, serial.raw, &long_serial),
            ),
            // Without its extensions: GnuTLS refuses them in a version 1 certificate.
            (
                "version 1",
                replace_element(
                    &replace_element(der, version.raw, &[]),
                    tbs_parts.last().unwrap().raw,
                    &[],
                ),
            ),
            (
                "explicit FALSE",
                with_extra(extension(&[0x2a, 0x03, 0x05], &[0x01, 0x01, 0x00], &[5, 0])),
            ),
            (
                "name constraints",
                with_extra(extension(&[0x55, 0x1d, 0x1e], &critical, &name_constraints)),
            ),
            (
                "unknown critical extension",
                with_extra(extension(&[0x2a, 0x03, 0x04], &critical, &[0x05, 0x00])),
            ),
            (
                "registered-ID name",
                replace_element(
                    der,
                    san.raw,
                    &extension(&[0x55, 0x1d, 0x11], &[], &registered_id),
                ),
            ),
        ] {
            assert_ne!(changed.as_slice(), der, "{what}");
            assert!(reader::read(&changed).is_none(), "{what}");
            let cert = Certificate::from_der(changed, Source::Data)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(cert.subject(), subject, "{what}");
        }
    }

    /// `der` with the element whose encoding is `old` replaced by `new`, every enclosing
    /// length fixed.
    fn replace_element(der: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = der;
        while !rest.is_empty() {
            let (element, next) = crate::der::read(rest).unwrap();
            if element.raw == old {
                out.extend(new);
            } else if element.tag.0 & 0x20 != 0 {
                let content = replace_element(element.content, old, new);
                out.extend(crate::der::encode(element.tag.0, &content));
            } else {
                out.extend(element.raw);
            }
            rest = next;
        }
        out
    }

    /// A critical extension of a type webpki processes, its OID not in DER's shortest form:
    /// webpki (and x509-parser) compare OIDs by their bytes and so do not process it (before
    /// OIDs were compared encoded, its dotted text passed it as processed, and a CA
    /// certificate carrying it was a usable anchor). GnuTLS's libtasn1 cannot decode such an
    /// OID and refuses the certificate, and so, since the import rules, does the parse here.
    #[test]
    fn a_non_minimal_extension_oid_fails_at_parse_time() {
        let der = include_bytes!("../fuzz/corpus/certificate/ca.der");
        let ca = Certificate::from_der(der.to_vec(), Source::Data).unwrap();
        assert!(ca.key_usage().unwrap().critical);
        assert!(ca.profile().unknown_critical.is_empty());
        let key_usage = [0x06, 0x03, 0x55, 0x1d, 0x0f];
        let non_minimal = [0x06, 0x04, 0x55, 0x1d, 0x80, 0x0f];
        let changed = replace_element(der, &key_usage, &non_minimal);
        assert_eq!(changed.len(), der.len() + 1);
        refused_at_import(changed, "an extension identifier does not decode");
    }

    /// The server certificate of the fuzz corpus, taken apart for the adversarial tests of the
    /// canonical reader: each builds variants of one part and asks [`check_canonical_reader`],
    /// which panics when the two readers disagree.
    struct Variants {
        der: Vec<u8>,
    }

    impl Variants {
        fn server() -> Variants {
            Variants {
                der: include_bytes!("../fuzz/corpus/certificate/server.der").to_vec(),
            }
        }

        /// The elements of the TBSCertificate: version, serial, signature, issuer, validity,
        /// subject, key info, extensions.
        fn tbs_parts(&self) -> Vec<crate::der::Element<'_>> {
            let tbs = crate::der::read(crate::der::read(&self.der).unwrap().0.content)
                .unwrap()
                .0;
            all_elements(tbs.content)
        }

        /// The certificate with TBS part `index` replaced by `new` (whole encodings).
        fn with_part(&self, index: usize, new: &[u8]) -> Vec<u8> {
            replace_element(&self.der, self.tbs_parts()[index].raw, new)
        }

        /// The certificate with these extensions (whole `Extension` encodings) instead of its own.
        fn with_extensions(&self, extensions: &[Vec<u8>]) -> Vec<u8> {
            let sequence = crate::der::encode(0x30, &extensions.concat());
            self.with_part(7, &crate::der::encode(0xa3, &sequence))
        }

        /// The certificate with its own extensions plus `extra`.
        fn with_extra_extension(&self, extra: Vec<u8>) -> Vec<u8> {
            let parts = self.tbs_parts();
            let own = crate::der::read(parts[7].content).unwrap().0;
            let mut extensions: Vec<Vec<u8>> = all_elements(own.content)
                .iter()
                .map(|e| e.raw.to_vec())
                .collect();
            extensions.push(extra);
            self.with_extensions(&extensions)
        }

        /// The certificate with the extension of OID `oid` (content octets) replaced by `new`.
        fn with_extension_replaced(&self, oid: &[u8], new: Vec<u8>) -> Vec<u8> {
            let parts = self.tbs_parts();
            let own = crate::der::read(parts[7].content).unwrap().0;
            let id = crate::der::encode(0x06, oid);
            let mut found = false;
            let extensions: Vec<Vec<u8>> = all_elements(own.content)
                .iter()
                .map(|e| {
                    if !found && e.content.starts_with(&id) {
                        found = true;
                        new.clone()
                    } else {
                        e.raw.to_vec()
                    }
                })
                .collect();
            assert!(found, "no extension {oid:02x?}");
            self.with_extensions(&extensions)
        }
    }

    fn all_elements(mut content: &[u8]) -> Vec<crate::der::Element<'_>> {
        let mut out = Vec::new();
        while !content.is_empty() {
            let (element, rest) = crate::der::read(content).unwrap();
            out.push(element);
            content = rest;
        }
        out
    }

    fn extension(oid: &[u8], critical: &[u8], value: &[u8]) -> Vec<u8> {
        let mut body = crate::der::encode(0x06, oid);
        body.extend(critical);
        body.extend(crate::der::encode(0x04, value));
        crate::der::encode(0x30, &body)
    }

    /// Runs the differential check on each variant; how many the reader took.
    fn agreeing(variants: impl IntoIterator<Item = Vec<u8>>) -> usize {
        variants
            .into_iter()
            .filter(|der| check_canonical_reader(der))
            .count()
    }

    /// UTCTime and GeneralizedTime at the edges: both centuries of a two-digit year, leap
    /// days, second 60, hour 24, years 0000 and 9999, fractions, offsets, missing parts.
    #[test]
    fn the_readers_agree_on_times() {
        let v = Variants::server();
        let mut times: Vec<(u8, String)> = Vec::new();
        for yy in 0..100 {
            for date in [
                "0229", "0228", "0230", "0101", "1231", "0431", "1301", "0001", "0100",
            ] {
                times.push((0x17, format!("{yy:02}{date}000000Z")));
            }
        }
        for clock in [
            "235959Z",
            "240000Z",
            "235960Z",
            "236000Z",
            "0000Z",
            "000000",
            "000000+0000",
            "000000-0100",
            "000000z",
            "00000aZ",
            "000000ZZ",
            "000000.5Z",
        ] {
            times.push((0x17, format!("491231{clock}")));
            times.push((0x18, format!("20491231{clock}")));
        }
        for year in [
            "0000", "0001", "0099", "1900", "1949", "1950", "1996", "1999", "2000", "2049", "2050",
            "2100", "2400", "9999",
        ] {
            for date in ["0229", "0101", "1231", "0230"] {
                times.push((0x18, format!("{year}{date}120000Z")));
            }
        }
        for odd in [
            "20500101120000.0Z",
            "20500101120000.5Z",
            "205001011200Z",
            "2050010112Z",
        ] {
            times.push((0x18, odd.to_owned()));
        }
        times.push((0x17, String::new()));
        times.push((0x13, "500101000000Z".to_owned()));
        times.push((0x37, "500101000000Z".to_owned()));
        let plain = crate::der::encode(0x17, b"500101000000Z");
        let variants = times.iter().flat_map(|(tag, text)| {
            let time = crate::der::encode(*tag, text.as_bytes());
            [[time.clone(), plain.clone()], [plain.clone(), time]]
                .map(|pair| v.with_part(4, &crate::der::encode(0x30, &pair.concat())))
        });
        let taken = agreeing(variants);
        assert!(taken > 500, "{taken}");
    }

    /// Names: every universal primitive value tag with text, empty, invalid UTF-8 and
    /// characters outside the type's set, for a common name and another attribute;
    /// multi-valued, empty and repeated RDNs; attribute OIDs not well-formed.
    #[test]
    fn the_readers_agree_on_names() {
        use crate::der::encode;
        let v = Variants::server();
        let cn = [0x55, 0x04, 0x03];
        let org = [0x55, 0x04, 0x0a];
        let attribute = |oid: &[u8], value: Vec<u8>| {
            let mut body = encode(0x06, oid);
            body.extend(value);
            encode(0x30, &body)
        };
        let name = |rdns: &[Vec<u8>]| encode(0x30, &rdns.concat());
        let rdn = |attributes: &[Vec<u8>]| encode(0x31, &attributes.concat());
        let mut names = Vec::new();
        let contents: [&[u8]; 8] = [
            b"host",
            b"",
            &[0xff, 0xfe],
            "h\u{e9}te".as_bytes(),
            b"a@b*c",
            &[0x00],
            b"12 34",
            &[0x00, 0x68, 0x00, 0x69],
        ];
        for tag in 0..0x1f {
            for content in contents {
                for oid in [&cn[..], &org] {
                    names.push(name(&[rdn(&[attribute(oid, encode(tag, content))])]));
                }
            }
        }
        let host = encode(0x0c, b"host");
        let cn_host = attribute(&cn, host.clone());
        let org_host = attribute(&org, host.clone());
        let cn_rdn = rdn(std::slice::from_ref(&cn_host));
        names.extend([
            name(&[]),
            name(&[rdn(&[])]),
            name(&[rdn(&[cn_host.clone(), org_host.clone()])]),
            name(&[rdn(&[org_host.clone(), cn_host.clone()])]),
            name(&[cn_rdn.clone(), cn_rdn.clone()]),
            name(&[cn_rdn.clone(), rdn(&[])]),
            name(&[rdn(&[attribute(&[0x55, 0x04, 0x83], host.clone())])]),
            name(&[rdn(&[attribute(&[0x55, 0x80, 0x04, 0x03], host.clone())])]),
            name(&[rdn(&[attribute(&[0x2a, 0x03, 0x04], host.clone())])]),
            name(&[rdn(&[attribute(
                &cn,
                [host.clone(), host.clone()].concat(),
            )])]),
            name(&[rdn(&[attribute(&cn, encode(0x2c, &host))])]),
            name(&[rdn(&[attribute(&cn, encode(0x8c, b"host"))])]),
            name(&[rdn(&[encode(0x30, &encode(0x06, &cn))])]),
            name(&[encode(0x30, &cn_host)]),
            name(&[rdn(&[encode(0x31, &cn_host)])]),
        ]);
        let mut taken = 0;
        for name in &names {
            taken += agreeing([v.with_part(5, name), v.with_part(3, name)]);
        }
        assert!(taken > 100, "{taken} of {}", names.len() * 2);
    }

    /// Key usage bit strings of zero to three bytes, with 0 to 8 unused bits, critical or not.
    #[test]
    fn the_readers_agree_on_key_usage() {
        let v = Variants::server();
        let ku = [0x55, 0x1d, 0x0f];
        let mut variants = Vec::new();
        let datas: Vec<Vec<u8>> = std::iter::once(vec![])
            .chain((0..=255u8).map(|b| vec![b]))
            .chain(
                [
                    [0x80, 0x00],
                    [0x05, 0x80],
                    [0xff, 0x80],
                    [0xff, 0xff],
                    [0x00, 0x01],
                ]
                .map(Vec::from),
            )
            .chain([vec![0x80, 0x80, 0x80], vec![0x01, 0x00, 0x00]])
            .collect();
        for data in &datas {
            for unused in [0u8, 1, 3, 5, 7, 8] {
                let mut bits = vec![unused];
                bits.extend(data);
                for critical in [&[][..], &[0x01, 0x01, 0xff]] {
                    let value = crate::der::encode(0x03, &bits);
                    variants.push(v.with_extension_replaced(&ku, extension(&ku, critical, &value)));
                }
            }
        }
        let taken = agreeing(variants);
        assert!(taken > 500, "{taken}");
    }

    /// Basic constraints: every form of cA (absent, TRUE, FALSE, BER true) and of the path
    /// length (0, 127, 128, 255, negative, not minimal, beyond 32 bits), in either order.
    #[test]
    fn the_readers_agree_on_basic_constraints() {
        let v = Variants::server();
        let bc = [0x55, 0x1d, 0x13];
        let cas: [&[u8]; 6] = [
            &[],
            &[0x01, 0x01, 0xff],
            &[0x01, 0x01, 0x00],
            &[0x01, 0x01, 0x01],
            &[0x01, 0x02, 0xff, 0xff],
            &[0x01, 0x00],
        ];
        let path_lens: [&[u8]; 12] = [
            &[],
            &[0x02, 0x01, 0x00],
            &[0x02, 0x01, 0x01],
            &[0x02, 0x01, 0x7f],
            &[0x02, 0x02, 0x00, 0x80],
            &[0x02, 0x02, 0x00, 0xff],
            &[0x02, 0x01, 0x80],
            &[0x02, 0x01, 0xff],
            &[0x02, 0x02, 0x00, 0x05],
            &[0x02, 0x00],
            &[0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00],
            &[0x0a, 0x01, 0x01],
        ];
        let mut variants = Vec::new();
        for ca in cas {
            for path_len in path_lens {
                for swapped in [false, true] {
                    let body = if swapped {
                        [path_len, ca].concat()
                    } else {
                        [ca, path_len].concat()
                    };
                    for critical in [&[][..], &[0x01, 0x01, 0xff]] {
                        let value = crate::der::encode(0x30, &body);
                        variants
                            .push(v.with_extension_replaced(&bc, extension(&bc, critical, &value)));
                    }
                }
            }
        }
        let taken = agreeing(variants);
        assert!(taken >= 12, "{taken}");
    }

    /// Extended key usage: the named purposes in several orders, repeated, with another
    /// purpose, empty, or with an OID that is not well-formed.
    #[test]
    fn the_readers_agree_on_extended_key_usage() {
        let v = Variants::server();
        let eku = [0x55, 0x1d, 0x25];
        let kp = |n: u8| crate::der::encode(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, n]);
        let any = crate::der::encode(0x06, &[0x55, 0x1d, 0x25, 0x00]);
        let lists: Vec<Vec<Vec<u8>>> = vec![
            vec![],
            vec![kp(1)],
            vec![kp(2), kp(1)],
            vec![kp(9), kp(8), kp(4), kp(3), kp(2), kp(1), any.clone()],
            vec![kp(3), kp(3), kp(1), kp(1)],
            vec![any.clone(), any.clone()],
            vec![kp(1), kp(5)],
            vec![
                kp(1),
                crate::der::encode(
                    0x06,
                    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x80, 0x01],
                ),
            ],
            vec![kp(1), crate::der::encode(0x06, &[])],
            vec![kp(1), crate::der::encode(0x04, &[0x01])],
        ];
        let mut variants = Vec::new();
        for list in &lists {
            for critical in [&[][..], &[0x01, 0x01, 0xff]] {
                let value = crate::der::encode(0x30, &list.concat());
                variants.push(v.with_extension_replaced(&eku, extension(&eku, critical, &value)));
            }
        }
        let taken = agreeing(variants);
        assert!(taken >= 10, "{taken}");
    }

    /// Alternative names: DNS, e-mail and URI names empty, non-ASCII, not UTF-8 or with
    /// control characters; IP addresses of 0 to 17 bytes; other kinds; constructed forms.
    #[test]
    fn the_readers_agree_on_alternative_names() {
        use crate::der::encode;
        let v = Variants::server();
        let san = [0x55, 0x1d, 0x11];
        let mut names: Vec<Vec<u8>> = Vec::new();
        for tag in [0x81, 0x82, 0x86, 0xa2, 0x02, 0x16] {
            for text in [
                &b"host.example"[..],
                b"",
                "h\u{e9}".as_bytes(),
                &[0xff],
                b"a\x00b",
                b"a\x7fb",
                b" ",
            ] {
                names.push(encode(tag, text));
            }
        }
        for len in 0..=17 {
            names.push(encode(0x87, &vec![7u8; len]));
        }
        names.push(encode(0xa7, &encode(0x04, &[1, 2, 3, 4])));
        names.push(encode(0x88, &[0x2a, 0x03]));
        names.push(encode(0xa4, &encode(0x30, &[])));
        names.push(encode(0xa0, &[0x06, 0x01, 0x2a, 0xa0, 0x02, 0x05, 0x00]));
        let mut variants = Vec::new();
        for name in &names {
            for list in [vec![name.clone()], vec![encode(0x82, b"a"), name.clone()]] {
                for critical in [&[][..], &[0x01, 0x01, 0xff]] {
                    let value = encode(0x30, &list.concat());
                    variants
                        .push(v.with_extension_replaced(&san, extension(&san, critical, &value)));
                }
            }
        }
        variants.push(v.with_extension_replaced(&san, extension(&san, &[], &encode(0x30, &[]))));
        let mut trailing = encode(0x30, &encode(0x82, b"a"));
        trailing.extend([0x05, 0x00]);
        variants.push(v.with_extension_replaced(&san, extension(&san, &[], &trailing)));
        let taken = agreeing(variants);
        assert!(taken > 30, "{taken}");
    }

    /// Key identifiers: the authority's with its key identifier only, empty, with issuer and
    /// serial, without an identifier, constructed; the subject's empty, not an OCTET STRING,
    /// critical.
    #[test]
    fn the_readers_agree_on_key_identifiers() {
        use crate::der::encode;
        let v = Variants::server();
        let aki = [0x55, 0x1d, 0x23];
        let ski = [0x55, 0x1d, 0x0e];
        let issuer = encode(0xa1, &encode(0xa4, &encode(0x30, &[])));
        let serial = encode(0x82, &[0x01]);
        let akis: Vec<Vec<u8>> = vec![
            encode(0x80, &[1, 2, 3]),
            encode(0x80, &[]),
            [encode(0x80, &[1]), issuer.clone(), serial.clone()].concat(),
            [issuer.clone(), serial.clone()].concat(),
            vec![],
            encode(0xa0, &encode(0x04, &[1])),
            encode(0x81, &[1]),
            [encode(0x80, &[1]), encode(0x80, &[2])].concat(),
            [issuer.clone(), encode(0x80, &[1])].concat(),
            [serial.clone(), issuer.clone()].concat(),
            [encode(0x80, &[1]), encode(0x82, &[0x00, 0x01])].concat(),
            [encode(0x80, &[1]), encode(0x82, &[])].concat(),
            [encode(0x80, &[1]), encode(0xa1, &[0x05, 0x00, 0xff])].concat(),
            [encode(0x80, &[1]), encode(0xa1, &encode(0x82, &[0xff]))].concat(),
            [
                encode(0x80, &[1]),
                encode(0xa1, &encode(0xa4, &[0x05, 0x00])),
            ]
            .concat(),
            [encode(0x80, &[1]), encode(0x81, &[1])].concat(),
            [encode(0x80, &[1]), encode(0xa2, &[1])].concat(),
        ];
        let skis: Vec<Vec<u8>> = vec![
            encode(0x04, &[1, 2, 3]),
            encode(0x04, &[]),
            encode(0x03, &[0, 1]),
            encode(0x24, &encode(0x04, &[1])),
            [encode(0x04, &[1]), vec![0x05, 0x00]].concat(),
        ];
        let mut variants = Vec::new();
        for critical in [&[][..], &[0x01, 0x01, 0xff]] {
            for body in &akis {
                let value = encode(0x30, body);
                variants.push(v.with_extension_replaced(&aki, extension(&aki, critical, &value)));
            }
            for value in &skis {
                variants.push(v.with_extension_replaced(&ski, extension(&ski, critical, value)));
            }
        }
        let taken = agreeing(variants);
        assert_eq!(taken, 12);
        // OpenSSL's `keyid,issuer:always` (easy-rsa's default) takes the reader.
        let easy_rsa = encode(0x30, &akis[2]);
        assert!(check_canonical_reader(
            &v.with_extension_replaced(&aki, extension(&aki, &[], &easy_rsa))
        ));
    }

    /// Authority information access: OCSP and CA issuers URIs (as FreeIPA and Active
    /// Directory write them) take the reader; empty, other names, odd access methods, text
    /// that is not printable ASCII and trailing elements agree with x509-parser's account.
    #[test]
    fn the_readers_agree_on_authority_info_access() {
        use crate::der::encode;
        let v = Variants::server();
        let aia = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
        let ocsp = encode(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01]);
        let ca_issuers = encode(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02]);
        let uri = |text: &[u8]| encode(0x86, text);
        let description = |parts: &[&[u8]]| encode(0x30, &parts.concat());
        let ipa = description(&[&ocsp, &uri(b"http://ipa-ca.example.com/ca/ocsp")]);
        let lists: Vec<Vec<Vec<u8>>> = vec![
            vec![ipa.clone()],
            vec![
                ipa.clone(),
                description(&[&ca_issuers, &uri(b"http://ipa.example.com/ca.crt")]),
            ],
            vec![],
            vec![description(&[&ocsp, &uri(b"")])],
            vec![description(&[&ocsp, &uri("h\u{e9}".as_bytes())])],
            vec![description(&[&ocsp, &uri(&[0xff])])],
            vec![description(&[&ocsp, &encode(0x82, b"ocsp.example")])],
            vec![description(&[&ocsp, &encode(0xa4, &encode(0x30, &[]))])],
            vec![description(&[&ocsp, &encode(0x16, b"http://x")])],
            vec![description(&[&ocsp])],
            vec![description(&[&uri(b"http://x")])],
            vec![description(&[
                &encode(0x06, &[0x2b, 0x80, 0x06]),
                &uri(b"http://x"),
            ])],
            vec![description(&[&ocsp, &uri(b"http://x"), &[0x05, 0x00]])],
            vec![ipa.clone(), vec![0x05, 0x00]],
            vec![encode(0x31, &[&ocsp[..], &uri(b"http://x")].concat())],
        ];
        let mut variants = Vec::new();
        for list in &lists {
            for critical in [&[][..], &[0x01, 0x01, 0xff]] {
                let value = encode(0x30, &list.concat());
                variants.push(v.with_extra_extension(extension(&aia, critical, &value)));
            }
        }
        variants.push(v.with_extra_extension(extension(&aia, &[], &[0x05, 0x00])));
        let taken = agreeing(variants);
        assert_eq!(taken, 3);
        let freeipa =
            v.with_extra_extension(extension(&aia, &[], &encode(0x30, &lists[1].concat())));
        assert!(check_canonical_reader(&freeipa));
        let cert = Certificate::from_der(freeipa, Source::Data).unwrap();
        assert!(!cert.profile().malformed_aia);
    }

    /// The extensions' envelope: an empty list, OIDs not well-formed, every form of the
    /// critical flag, elements after the value, duplicates, unknown and known critical
    /// extensions with values that do not parse, other tags for [3].
    #[test]
    fn the_readers_agree_on_extension_envelopes() {
        use crate::der::encode;
        let v = Variants::server();
        let parts = v.tbs_parts();
        let own_extensions = parts[7].content.to_vec();
        let crl_dp = [0x55, 0x1d, 0x1f];
        let policies = [0x55, 0x1d, 0x20];
        let mut variants = vec![
            v.with_extensions(&[]),
            v.with_part(7, &encode(0xa3, &[])),
            v.with_part(7, &[]),
            v.with_part(7, &encode(0x83, &own_extensions)),
            v.with_part(7, &encode(0xa2, &own_extensions)),
            v.with_part(7, &encode(0xe3, &own_extensions)),
            v.with_part(
                7,
                &[encode(0xa3, &own_extensions), vec![0x05, 0x00]].concat(),
            ),
        ];
        for critical in [
            &[][..],
            &[0x01, 0x01, 0xff],
            &[0x01, 0x01, 0x00],
            &[0x01, 0x01, 0x01],
            &[0x01, 0x00],
            &[0x01, 0x02, 0xff, 0xff],
            &[0x81, 0x01, 0xff],
        ] {
            for oid in [
                &[0x2a, 0x03, 0x04][..],
                &[0x2a, 0x80, 0x03],
                &[0x2a, 0x83],
                &[],
                &crl_dp,
                &policies,
                &[0x55, 0x1d, 0x0f],
                &[0x55, 0x1d, 0x11],
            ] {
                for value in [&[0x05, 0x00][..], &[0x30, 0x00], &[], &[0xff]] {
                    variants.push(v.with_extra_extension(extension(oid, critical, value)));
                }
            }
        }
        let mut trailing = extension(&[0x2a, 0x03, 0x04], &[], &[0x05, 0x00]);
        trailing.extend([0x05, 0x00]);
        let mut with_extra_element = crate::der::read(&trailing).unwrap().0.content.to_vec();
        with_extra_element.extend([0x05, 0x00]);
        variants.push(v.with_extra_extension(trailing));
        variants.push(v.with_extra_extension(encode(0x30, &with_extra_element)));
        variants.push(v.with_extra_extension(encode(0x31, &[0x06, 0x01, 0x2a, 0x04, 0x00])));
        variants.push(
            v.with_extra_extension(encode(0x30, &[0x06, 0x01, 0x2a, 0x24, 0x02, 0x04, 0x00])),
        );
        let taken = agreeing(variants);
        assert!(taken > 10, "{taken}");
    }

    /// Algorithm identifiers of the signature (inside and outside the TBS) and of the key:
    /// no parameter, NULL, NULL with content, two parameters, constructed and context tags.
    #[test]
    fn the_readers_agree_on_algorithm_identifiers() {
        use crate::der::encode;
        let v = Variants::server();
        let ecdsa_sha256 = encode(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
        let params: [&[u8]; 10] = [
            &[],
            &[0x05, 0x00],
            &[0x05, 0x01, 0x00],
            &[0x05, 0x00, 0x05, 0x00],
            &[0x30, 0x00],
            &[0x30, 0x02, 0x05, 0x00],
            &[0xa0, 0x00],
            &[0x01, 0x01, 0x01],
            &[0x06, 0x01, 0x80],
            &[0x24, 0x00],
        ];
        let signature_raw = v.tbs_parts()[2].raw.to_vec();
        let outer = all_elements(crate::der::read(&v.der).unwrap().0.content)[1]
            .raw
            .to_vec();
        assert_eq!(signature_raw, outer);
        let mut variants = Vec::new();
        for param in params {
            let algorithm = encode(0x30, &[&ecdsa_sha256[..], param].concat());
            // `replace_element` replaces both, inside and outside the TBS.
            variants.push(replace_element(&v.der, &signature_raw, &algorithm));
            let tbs_only = v.with_part(2, &[0x30, 0x03, 0x06, 0x01, 0x2a]);
            variants.push(replace_element(&tbs_only, &signature_raw, &algorithm));
            let key_info = v.tbs_parts()[6].raw.to_vec();
            let key_parts = all_elements(crate::der::read(&key_info).unwrap().0.content);
            let key_algorithm = all_elements(key_parts[0].content);
            let changed = encode(0x30, &[key_algorithm[0].raw, param].concat());
            variants.push(replace_element(&v.der, key_parts[0].raw, &changed));
        }
        let taken = agreeing(variants);
        assert!(taken >= 10, "{taken}");
    }

    /// Serial numbers and versions: empty, one to 21 bytes, negative, not minimal; versions
    /// 1 to 4 and a version not minimally encoded.
    #[test]
    fn the_readers_agree_on_serials_and_versions() {
        use crate::der::encode;
        let v = Variants::server();
        let mut variants = Vec::new();
        for len in 0..=21 {
            for first in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut serial = vec![0x5a; len];
                if let Some(b) = serial.first_mut() {
                    *b = first;
                }
                variants.push(v.with_part(1, &encode(0x02, &serial)));
            }
        }
        variants.push(v.with_part(1, &encode(0x0a, &[1])));
        for version in [
            &[0x02, 0x01, 0x00][..],
            &[0x02, 0x01, 0x01],
            &[0x02, 0x01, 0x03],
            &[0x02, 0x02, 0x00, 0x02],
            &[0x02, 0x01, 0x02, 0x05, 0x00],
            &[0x0a, 0x01, 0x02],
        ] {
            variants.push(v.with_part(0, &encode(0xa0, version)));
            variants.push(v.with_part(0, &encode(0x80, version)));
        }
        let taken = agreeing(variants);
        assert!(taken > 50, "{taken}");
    }

    /// Trailing and leading bytes at every level: for each element of the corpus certificates
    /// (inside extension values too), the same with an extra NULL at the end or the start of
    /// its content, emptied, or with its tag's class or constructed bit changed.
    #[test]
    fn the_readers_agree_with_an_element_more_or_changed_anywhere() {
        /// Whether `element`'s content is DER the reader reads: constructed, or an extension
        /// value (an OCTET STRING holding one element).
        fn nested(element: &crate::der::Element<'_>) -> bool {
            element.tag.0 & 0x20 != 0
                || (element.tag == crate::der::Tag::OCTET_STRING
                    && crate::der::read(element.content).is_ok_and(|(_, rest)| rest.is_empty()))
        }
        /// `der` with the element at byte offset `at` (of the whole input) replaced by `new`,
        /// every enclosing length fixed.
        fn replace_at(der: &[u8], base: usize, at: usize, new: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut rest = der;
            while !rest.is_empty() {
                let (element, next) = crate::der::read(rest).unwrap();
                let offset = base + (der.len() - rest.len());
                let header = element.raw.len() - element.content.len();
                if offset == at {
                    out.extend(new);
                } else if nested(&element) && (offset..offset + element.raw.len()).contains(&at) {
                    let content = replace_at(element.content, offset + header, at, new);
                    out.extend(crate::der::encode(element.tag.0, &content));
                } else {
                    out.extend(element.raw);
                }
                rest = next;
            }
            out
        }
        /// Every element of `content` with its offset.
        fn walk<'a>(
            content: &'a [u8],
            base: usize,
            out: &mut Vec<(usize, crate::der::Element<'a>)>,
        ) {
            let mut rest = content;
            while let Ok((element, next)) = crate::der::read(rest) {
                let offset = base + (content.len() - rest.len());
                let header = element.raw.len() - element.content.len();
                if nested(&element) {
                    walk(element.content, offset + header, out);
                }
                out.push((offset, element));
                rest = next;
            }
        }
        let (mut taken, mut total) = (0, 0);
        for seed in [
            &include_bytes!("../fuzz/corpus/certificate/ca.der")[..],
            include_bytes!("../fuzz/corpus/certificate/client.der"),
            include_bytes!("../fuzz/corpus/certificate/server.der"),
        ] {
            let mut elements = Vec::new();
            walk(seed, 0, &mut elements);
            for (at, element) in elements {
                let (tag, content) = (element.tag.0, element.content);
                let mut changed = vec![
                    crate::der::encode(tag ^ 0x20, content),
                    crate::der::encode(tag ^ 0x80, content),
                    crate::der::encode(tag ^ 0x40, content),
                ];
                if nested(&element) {
                    changed.push(crate::der::encode(tag, &[content, &[0x05, 0x00]].concat()));
                    changed.push(crate::der::encode(tag, &[&[0x05, 0x00], content].concat()));
                    changed.push(crate::der::encode(tag, &[]));
                }
                for new in changed {
                    total += 1;
                    taken += agreeing([replace_at(seed, 0, at, &new)]);
                }
            }
        }
        assert!(total > 500, "{total}");
        assert!(taken > 0, "{taken}");
    }

    /// The DER of the first certificate of a PEM text.
    fn first_certificate_of(text: &str) -> Vec<u8> {
        use base64::Engine;
        let b64: String = text
            .lines()
            .skip_while(|l| !l.ends_with("BEGIN CERTIFICATE-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .unwrap()
    }

    #[test]
    fn garbage_is_a_parse_error_naming_the_source() {
        let err =
            Certificate::from_der(vec![0x30, 0x03, 0x02, 0x01, 0x00], Source::Data).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Parse);
        assert!(err.message().starts_with("data"), "{err}");
    }

    /// The server certificate with these TBS elements (whole encodings) and this outer
    /// signature algorithm, its signature kept: for the import rules, which look at what the
    /// signature covers and at what it does not.
    fn assembled(v: &Variants, tbs: &[&[u8]], outer_algorithm: &[u8]) -> Vec<u8> {
        use crate::der::encode;
        let signature = all_elements(crate::der::read(&v.der).unwrap().0.content)[2]
            .raw
            .to_vec();
        let tbs = encode(0x30, &tbs.concat());
        encode(0x30, &[&tbs[..], outer_algorithm, &signature].concat())
    }

    /// `der` refused at parse time by the import rules alone: x509-parser reads it, and the
    /// message names the source and `rule`.
    #[track_caller]
    fn refused_at_import(der: Vec<u8>, rule: &str) {
        assert!(read_with_x509_parser(&der, &Source::Data).is_ok(), "{rule}");
        let source = Source::File("/etc/pki/CA/cacert.pem".into());
        let e = Certificate::from_der(der, source).expect_err(rule);
        assert_eq!(e.kind(), ErrorKind::Parse, "{e}");
        assert!(e.message().starts_with("/etc/pki/CA/cacert.pem: "), "{e}");
        assert!(e.message().contains(rule), "{rule:?} not in {e}");
    }

    /// GnuTLS's `compare_sig_algorithm`: the algorithm outside the signed part must be the one
    /// inside, OID and parameters, a NULL parameter counting as none. A certificate the
    /// canonical reader takes is held to it as well as one x509-parser reads.
    #[test]
    fn a_signature_algorithm_differing_from_the_signed_one_fails_at_parse_time() {
        use crate::der::encode;
        let v = Variants::server();
        let parts = v.tbs_parts();
        let raw: Vec<&[u8]> = parts.iter().map(|p| p.raw).collect();
        let signature = raw[2];
        let ecdsa = |last: u8, parameters: &[u8]| {
            let oid = encode(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, last]);
            encode(0x30, &[&oid[..], parameters].concat())
        };
        assert_eq!(signature, ecdsa(2, &[]));
        let with_signature = |inner: &[u8], outer: &[u8]| {
            let mut tbs = raw.clone();
            tbs[2] = inner;
            assembled(&v, &tbs, outer)
        };
        let rule = "the signature algorithm outside the signed part differs";
        let sha384 = ecdsa(3, &[]);
        let sequence = ecdsa(2, &[0x30, 0x00]);
        let other_sequence = ecdsa(2, &[0x30, 0x02, 0x05, 0x00]);
        let null = ecdsa(2, &[0x05, 0x00]);
        let plain = with_signature(signature, signature);
        assert!(check_canonical_reader(&plain));
        Certificate::from_der(plain, Source::Data).unwrap();
        let different = with_signature(&sha384, signature);
        assert!(check_canonical_reader(&different));
        refused_at_import(different, rule);
        refused_at_import(with_signature(signature, &sha384), rule);
        refused_at_import(with_signature(&sequence, signature), rule);
        refused_at_import(with_signature(signature, &sequence), rule);
        refused_at_import(with_signature(&sequence, &other_sequence), rule);
        refused_at_import(with_signature(&null, &sequence), rule);
        // Absent and NULL parameters are the same to GnuTLS; equal ones are equal.
        for (inner, outer) in [
            (&null[..], signature),
            (signature, &null),
            (&null, &null),
            (&sequence, &sequence),
        ] {
            let der = with_signature(inner, outer);
            Certificate::from_der(der, Source::Data).unwrap();
        }
        // An OID with an incomplete last arc libtasn1 reads; the same in both places is the
        // same algorithm to GnuTLS (certtool -i imports it).
        let incomplete = encode(
            0x30,
            &encode(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x82]),
        );
        let der = with_signature(&incomplete, &incomplete);
        Certificate::from_der(der, Source::Data).unwrap();
    }

    /// libtasn1 decodes the public key's algorithm OID at import: one with an arc led by a 0x80
    /// group (the first included) fails GnuTLS's import (`certtool -i`: "Error in DER parsing")
    /// and so the load here; an incomplete last arc libtasn1 reads (the reader leaves it).
    #[test]
    fn a_key_algorithm_oid_libtasn1_cannot_decode_fails_at_parse_time() {
        let der = include_bytes!("../fuzz/corpus/certificate/server.der");
        let ec_public_key = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let at = der
            .windows(ec_public_key.len())
            .position(|w| w == ec_public_key)
            .unwrap();
        let with_oid = |content: [u8; 7]| {
            let mut changed = der.to_vec();
            changed[at + 2..at + 9].copy_from_slice(&content);
            changed
        };
        let rule = "the public key's algorithm identifier does not decode";
        refused_at_import(with_oid([0x80, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]), rule);
        refused_at_import(with_oid([0x2a, 0x80, 0x48, 0xce, 0x3d, 0x02, 0x01]), rule);
        let incomplete = with_oid([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x81]);
        assert!(!check_canonical_reader(&incomplete));
        Certificate::from_der(incomplete, Source::Data).unwrap();
    }

    /// GnuTLS's version rules: one byte of version (version 128 at most), no extensions
    /// before version 3, no unique identifiers in version 1. A version 4 certificate is
    /// imported; so is a version 2 one with unique identifiers.
    #[test]
    fn gnutls_version_rules_fail_at_parse_time() {
        use crate::der::encode;
        let v = Variants::server();
        let parts = v.tbs_parts();
        let raw: Vec<&[u8]> = parts.iter().map(|p| p.raw).collect();
        let (fields, extensions) = (&raw[1..7], raw[7]);
        let version = |n: &[u8]| encode(0xa0, &encode(0x02, n));
        let (v1, v2, v4) = (version(&[0]), version(&[1]), version(&[3]));
        let with = |version: &[u8], after: &[&[u8]]| {
            let tbs: Vec<&[u8]> = [&[version][..], fields, after].concat();
            assembled(&v, &tbs, raw[2])
        };
        let issuer_id = [0x81, 0x02, 0x00, 0x01];
        let subject_id = [0x82, 0x02, 0x00, 0x01];
        refused_at_import(
            with(&[], &[extensions]),
            "a version 1 certificate has extensions",
        );
        refused_at_import(
            with(&v1, &[extensions]),
            "a version 1 certificate has extensions",
        );
        refused_at_import(
            with(&v2, &[extensions]),
            "a version 2 certificate has extensions",
        );
        refused_at_import(
            with(&[], &[&issuer_id]),
            "a version 1 certificate has a unique identifier",
        );
        refused_at_import(
            with(&[], &[&subject_id]),
            "a version 1 certificate has a unique identifier",
        );
        refused_at_import(with(&version(&[0, 0x80]), &[extensions]), "version 129");
        // x509-parser reads this one, and adding one to it overflowed (a panic in a debug
        // build).
        refused_at_import(
            with(&version(&[0, 0xff, 0xff, 0xff, 0xff]), &[extensions]),
            "version 4294967295",
        );
        for (what, der) in [
            ("version 1", with(&[], &[])),
            (
                "version 2 with identifiers",
                with(&v2, &[&issuer_id, &subject_id]),
            ),
            (
                "version 3 with identifiers",
                with(raw[0], &[&subject_id, extensions]),
            ),
            ("version 4", with(&v4, &[extensions])),
            ("version 128", with(&version(&[0x7f]), &[extensions])),
        ] {
            Certificate::from_der(der, Source::Data).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }

    /// Times GnuTLS cannot read (libtasn1's strict DER and `_gnutls_x509_generalTime2gtime`):
    /// a fraction of a second, an offset from UTC. Without seconds is fine for both.
    #[test]
    fn times_gnutls_cannot_read_fail_at_parse_time() {
        use crate::der::encode;
        let v = Variants::server();
        let validity = |not_before: &[u8], not_after: &[u8]| {
            v.with_part(4, &encode(0x30, &[not_before, not_after].concat()))
        };
        let plain = encode(0x17, b"500101000000Z");
        for (tag, text, which) in [
            (0x18, &b"20501231235959.5Z"[..], "notAfter"),
            (0x17, b"491231235959+0100", "notAfter"),
            (0x17, b"491231235959-0000", "notAfter"),
        ] {
            let time = encode(tag, text);
            refused_at_import(validity(&plain, &time), &format!("the {which} time"));
            refused_at_import(validity(&time, &plain), "the notBefore time");
        }
        for (tag, text) in [(0x17, &b"4912312359Z"[..]), (0x18, b"205012312359Z")] {
            let der = validity(&plain, &encode(tag, text));
            Certificate::from_der(der, Source::Data).unwrap();
        }
    }

    /// GnuTLS's `cache_alt_names`: the subject and issuer alternative names it reads at
    /// import hold only names of the types it knows, none empty but an other name; the
    /// issuer's, which virtpki does not otherwise read, must decode.
    #[test]
    fn alternative_names_gnutls_refuses_fail_at_parse_time() {
        use crate::der::encode;
        let v = Variants::server();
        let san_oid = [0x55, 0x1d, 0x11];
        let ian_oid = [0x55, 0x1d, 0x12];
        let variants = |name: &[u8]| {
            let names = encode(0x30, name);
            [
                v.with_extension_replaced(&san_oid, extension(&san_oid, &[], &names)),
                v.with_extra_extension(extension(&ian_oid, &[], &names)),
            ]
        };
        let refused: [&[u8]; 6] = [
            &[0x82, 0x00],
            &[0x81, 0x00],
            &[0x86, 0x00],
            &[0x87, 0x00],
            &[0xa3, 0x02, 0x30, 0x00],
            &[0xa5, 0x03, 0x81, 0x01, 0x61],
        ];
        for name in refused {
            let [san, ian] = variants(name);
            refused_at_import(san, "the subject alternative name extension");
            refused_at_import(ian, "the issuer alternative name extension");
        }
        // An other name libtasn1 cannot decode (no type, no value, an empty value) and a
        // registered ID libtasn1 cannot decode (an arc led by 0x80): certtool -i refuses each.
        // A directory name that is not a Name (an OCTET STRING, a SEQUENCE of a NULL, a
        // SET), too.
        let malformed: [&[u8]; 7] = [
            &[0xa0, 0x00],
            &[0xa0, 0x03, 0x06, 0x01, 0x2a],
            &[0xa0, 0x05, 0x06, 0x01, 0x2a, 0xa0, 0x00],
            &[0x88, 0x02, 0x80, 0x01],
            &[0xa4, 0x03, 0x04, 0x01, 0x00],
            &[0xa4, 0x04, 0x30, 0x02, 0x05, 0x00],
            &[0xa4, 0x02, 0x31, 0x00],
        ];
        for name in malformed {
            let [san, ian] = variants(name);
            refused_at_import(san, "the subject alternative name extension");
            refused_at_import(ian, "the issuer alternative name extension");
        }
        let garbage = v.with_extra_extension(extension(&ian_oid, &[], &[0x04, 0x00]));
        refused_at_import(garbage, "the issuer alternative name extension");
        // An empty DNS name reaches the canonical reader, which takes it.
        let [empty_dns, _] = variants(&[0x82, 0x00]);
        assert!(check_canonical_reader(&empty_dns));
        let accepted: [&[u8]; 7] = [
            &[0xa0, 0x08, 0x06, 0x01, 0x2a, 0xa0, 0x03, 0x0c, 0x01, 0x61],
            &[0xa4, 0x02, 0x30, 0x00],
            &[0x87, 0x05, 1, 2, 3, 4, 5],
            &[0x88, 0x02, 0x2a, 0x03],
            // An incomplete last arc: libtasn1 reads it, certtool -i imports it.
            &[0x88, 0x02, 0x2a, 0x83],
            &[0xa0, 0x08, 0x06, 0x01, 0x83, 0xa0, 0x03, 0x0c, 0x01, 0x61],
            &[],
        ];
        for name in accepted {
            for der in variants(name) {
                Certificate::from_der(der, Source::Data)
                    .unwrap_or_else(|e| panic!("{name:02x?}: {e}"));
            }
        }
    }

    /// `_gnutls_check_cert_sanity` refuses a version 3 certificate with two extensions of
    /// one OID, whatever the OID (GNUTLS_E_X509_DUPLICATE_EXTENSION), and libtasn1 refuses
    /// an extension identifier with an arc led by 0x80: certtool -i refuses each, x509-parser
    /// reads them. An incomplete last arc libtasn1 reads, and certtool -i imports.
    #[test]
    fn duplicate_or_malformed_extension_ids_fail_at_parse_time() {
        let v = Variants::server();
        let ian_oid = [0x55, 0x1d, 0x12];
        let ian = extension(&ian_oid, &[], &[0x30, 0x03, 0x82, 0x01, 0x61]);
        let twice = v.with_extra_extension([&ian[..], &ian].concat());
        refused_at_import(twice, "two extensions 2.5.29.18");
        let unknown = extension(&[0x2a, 0x03, 0x05], &[], &[0x05, 0x00]);
        let twice = v.with_extra_extension([&unknown[..], &unknown].concat());
        refused_at_import(twice, "two extensions 1.2.3.5");
        let san = extension(&[0x55, 0x1d, 0x11], &[], &[0x30, 0x03, 0x82, 0x01, 0x61]);
        // x509-parser refuses two of this one itself.
        let e = Certificate::from_der(v.with_extra_extension(san), Source::Data).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse, "{e}");
        let bad_id = extension(&[0x2a, 0x80, 0x05], &[], &[0x05, 0x00]);
        refused_at_import(
            v.with_extra_extension(bad_id),
            "an extension identifier does not decode",
        );
        let once = v.with_extra_extension([&ian[..], &unknown].concat());
        Certificate::from_der(once, Source::Data).unwrap();
        let incomplete = extension(&[0x2a, 0x03, 0x85], &[], &[0x05, 0x00]);
        Certificate::from_der(v.with_extra_extension(incomplete.clone()), Source::Data).unwrap();
        // Twice: named by its bytes, which have no dotted text.
        let twice = v.with_extra_extension([&incomplete[..], &incomplete].concat());
        refused_at_import(twice, "two extensions of the OID encoded 2a:03:85");
        // gnutls_x509_crt_get_extension_info reads the identifier into 128 bytes: 126
        // characters dotted are imported, 127 are not (certtool -i).
        let long_id = |arcs: usize| {
            let oid = [&[0x2a][..], &vec![0x01; arcs], &[0x0a]].concat();
            let text = crate::der::oid_to_string(&oid).unwrap();
            (
                v.with_extra_extension(extension(&oid, &[], &[0x05, 0x00])),
                text.len(),
            )
        };
        let (der, length) = long_id(60);
        assert_eq!(length, 126);
        Certificate::from_der(der, Source::Data).unwrap();
        let (der, length) = long_id(61);
        assert_eq!(length, 128);
        refused_at_import(der, "longer than the 126 characters GnuTLS reads");
    }
}
