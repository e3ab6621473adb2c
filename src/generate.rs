//! Issuing a CA, server and client certificates and CRLs, as libvirt's TLS documentation does
//! with `certtool` templates, so that libvirt 9 daemons and clients accept them.
//!
//! - CA: `CN` (and `O`), CA:TRUE (critical), keyCertSign + cRLSign (critical), a subject key
//!   identifier.
//! - Server: `O` and `CN` (or a whole DN with a CN: C, ST, L, O, CN as libvirt's server
//!   template), the CN and every extra name as DNS SANs and every address as IP SANs
//!   (libvirt's docs: "all names"), serverAuth, digitalSignature + keyEncipherment.
//! - Client: the DN fields as given, in that order (the order libvirt prints and matches
//!   `tls_allowed_dn_list` against), clientAuth, digitalSignature + keyEncipherment.
//!
//! keyEncipherment is written for every key type: libvirt 9.0 refuses ECDSA and Ed25519 leaves
//! whose critical key usage lacks it, and TLS stacks that follow RFC 8813 ignore it for those
//! keys. Leaves carry an authority key identifier, which RFC 5280 verifiers (virtpki among
//! them) require. Serial numbers are 128 random bits.
//!
//! ```
//! use virtpki::generate::{
//!     create_ca, CaParams, CertificateAuthority, ClientParams, KeyType, SubjectName, Validity,
//! };
//!
//! let ca = create_ca(&CaParams {
//!     common_name: "Example CA".into(),
//!     organization: None,
//!     validity: Validity::days_from_now(3650),
//!     key_type: KeyType::EcdsaP256,
//! })?;
//! let client = CertificateAuthority::from_issued(&ca)?.issue_client(&ClientParams {
//!     dn: SubjectName::parse("C=GB,O=Example,CN=admin")?,
//!     validity: Validity::days_from_now(365),
//!     key_type: KeyType::EcdsaP256,
//! })?;
//! // The string the daemon's tls_allowed_dn_list is matched against.
//! assert_eq!(client.certificate.subject(), "C=GB,O=Example,CN=admin");
//! # Ok::<(), virtpki::Error>(())
//! ```

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PublicKeyData, RevokedCertParams, SanType, SerialNumber,
};
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

// Part of the issuing API (`ClientParams::dn`), defined with the DN model.
pub use crate::subject::{Attribute, SubjectName};

use crate::cert::{oid_name, Certificate};
use crate::data_type::CertDataType;
use crate::error::{Error, ErrorKind, Result};
use crate::source::Source;
use crate::subject::StringType;
use crate::timefmt::UnixSeconds;
use crate::Role;

/// How far before "now" a new certificate starts: hosts whose clocks are a few minutes behind
/// the issuer's would otherwise refuse it as "not yet active".
pub const BACKDATE_SECONDS: i64 = 5 * 60;

/// The key algorithm of a new certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA with the given modulus size, one of [`KeyType::RSA_BITS`] (2048, 3072 or 4096);
    /// signatures PKCS#1 v1.5 with SHA-256.
    Rsa {
        /// The modulus length in bits.
        bits: usize,
    },
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    /// certtool's default RSA size.
    pub const DEFAULT_RSA_BITS: usize = 3072;

    /// The RSA sizes virtpki can sign with, so the only ones it makes: ring, which signs,
    /// takes private keys of 2048 to 4096 bits whose two primes are a multiple of 512 bits
    /// long ("TooLarge" above 4096, "PrivateModulusLenNotMultipleOf512Bits" for 2560 bits).
    /// Verifying takes more (peers' keys up to 8192 bits).
    pub const RSA_BITS: [usize; 3] = crate::crypto::RSA_SIGNING_BITS;

    /// Refuses a key type that cannot be made or signed with, before any key is generated (a
    /// large RSA key takes minutes to make).
    pub fn check(self) -> Result<()> {
        match self {
            KeyType::Rsa { bits } if !KeyType::RSA_BITS.contains(&bits) => Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "RSA keys of {bits} bits are not supported: use {}",
                    crate::crypto::rsa_signing_sizes()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The key type for a name as the CLI spells it: `rsa`, `ecdsa`, `ed25519`.
    pub fn from_name(name: &str) -> Option<KeyType> {
        match name {
            "rsa" => Some(KeyType::Rsa {
                bits: KeyType::DEFAULT_RSA_BITS,
            }),
            "ecdsa" => Some(KeyType::EcdsaP256),
            "ed25519" => Some(KeyType::Ed25519),
            _ => None,
        }
    }

    /// Makes a new key pair of this type ([`KeyType::check`]ed first).
    pub fn generate(self) -> Result<KeyPair> {
        self.check()?;
        match self {
            KeyType::Rsa { bits } => rsa_key(bits),
            KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| internal("generating an ECDSA key", e)),
            KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519)
                .map_err(|e| internal("generating an Ed25519 key", e)),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyType::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyType::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// ring signs with RSA keys but cannot make them; the `rsa` crate does.
fn rsa_key(bits: usize) -> Result<KeyPair> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
        .map_err(|e| internal("generating an RSA key", e))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| internal("encoding an RSA key", e))?;
    KeyPair::from_pkcs8_der_and_sign_algo(&der.as_bytes().into(), &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| internal("loading the new RSA key", e))
}

fn internal(what: &str, e: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: {e}"))
}

/// When a certificate or CRL is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// The issuing time ("now"); the certificate starts [`BACKDATE_SECONDS`] earlier.
    pub now: UnixSeconds,
    /// Days from `now` until it expires.
    pub days: u32,
}

impl Validity {
    /// Valid for `days` from the system clock's now.
    pub fn days_from_now(days: u32) -> Validity {
        Validity {
            now: crate::timefmt::now(),
            days,
        }
    }

    fn apply(&self, params: &mut CertificateParams) -> Result<()> {
        if self.days == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                "a validity of 0 days makes a certificate that has already expired",
            ));
        }
        params.not_before = odt(self.now - BACKDATE_SECONDS)?;
        params.not_after = odt(self.now + i64::from(self.days) * 86_400)?;
        Ok(())
    }
}

fn odt(t: UnixSeconds) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map_err(|_| Error::new(ErrorKind::InvalidArg, format!("time {t} is out of range")))
}

/// A new certificate and its private key, both PEM.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// PKCS#8 `PRIVATE KEY`; wiped when dropped.
    pub key_pem: Zeroizing<String>,
    /// The certificate as virtpki reads it (DN, SANs, fingerprints, ...).
    pub certificate: Certificate,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("subject", &self.certificate.subject())
            .finish_non_exhaustive()
    }
}

/// What a new CA should be.
#[derive(Clone, Debug)]
pub struct CaParams {
    /// The CA's common name, which its certificates' issuer names carry.
    pub common_name: String,
    /// The organization (O), if any.
    pub organization: Option<String>,
    /// When it is valid.
    pub validity: Validity,
    /// The algorithm of the new key.
    pub key_type: KeyType,
}

/// What a new server certificate should be.
#[derive(Clone, Debug)]
pub struct ServerParams {
    /// The host name clients connect to; written as CN and as the first DNS SAN (or IP SAN,
    /// when it is an address).
    pub common_name: String,
    /// More host names the server is known by.
    pub dns_names: Vec<String>,
    /// Addresses clients connect to.
    pub ip_addresses: Vec<IpAddr>,
    /// The organization (O), if any.
    pub organization: Option<String>,
    /// When it is valid.
    pub validity: Validity,
    /// The algorithm of the new key.
    pub key_type: KeyType,
}

/// A server certificate with a whole subject, as libvirt's server template writes it (C, ST,
/// L, O and CN): what `virtpki issue server --dn` makes. [`ServerParams`] is the short form
/// (O and CN).
#[derive(Clone, Debug)]
pub struct ServerDnParams {
    /// The subject, in encoding order. Its CN, which it must have, is the host name clients
    /// connect to: written also as the first DNS SAN (or IP SAN, when it is an address).
    pub dn: SubjectName,
    /// More host names the server is known by.
    pub dns_names: Vec<String>,
    /// Addresses clients connect to.
    pub ip_addresses: Vec<IpAddr>,
    /// When it is valid.
    pub validity: Validity,
    /// The algorithm of the new key.
    pub key_type: KeyType,
}

/// What a new client certificate should be.
#[derive(Clone, Debug)]
pub struct ClientParams {
    /// The subject, in the order it is to be encoded (and printed by libvirt).
    pub dn: SubjectName,
    /// When it is valid.
    pub validity: Validity,
    /// The algorithm of the new key.
    pub key_type: KeyType,
}

/// The rcgen name of a subject name, each value in the string type its attribute is written
/// as ([`Attribute::string_type`]).
fn distinguished_name(name: &SubjectName) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    for (attr, value) in name.attributes() {
        dn.push(dn_type(*attr), dn_value(*attr, value)?);
    }
    Ok(dn)
}

/// The attribute's type in rcgen's terms.
fn dn_type(attr: Attribute) -> DnType {
    match attr {
        Attribute::Country => DnType::CountryName,
        Attribute::State => DnType::StateOrProvinceName,
        Attribute::Locality => DnType::LocalityName,
        Attribute::Organization => DnType::OrganizationName,
        Attribute::OrganizationalUnit => DnType::OrganizationalUnitName,
        Attribute::CommonName => DnType::CommonName,
        Attribute::DomainComponent => DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
        Attribute::UserId => DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
        Attribute::Email => DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
        Attribute::SerialNumber => DnType::CustomDnType(vec![2, 5, 4, 5]),
        Attribute::Title => DnType::CustomDnType(vec![2, 5, 4, 12]),
    }
}

/// The value in the string type [`Attribute::string_type`] checked it for.
fn dn_value(attr: Attribute, text: &str) -> Result<DnValue> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::InvalidArg,
            format!("{}={text}: {why}", attr.name()),
        )
    };
    Ok(match attr.string_type(text)? {
        StringType::Printable => {
            DnValue::PrintableString(text.try_into().map_err(|_| bad("not printable"))?)
        }
        StringType::Ia5 => {
            DnValue::Ia5String(text.try_into().map_err(|_| bad("only ASCII is allowed"))?)
        }
        StringType::Utf8 => DnValue::Utf8String(text.to_owned()),
    })
}

/// A CA name no other CA has: `virtpki CA HOST TAG`, with the first label of `host` (left out
/// when empty) and 32 random bits as hex. Verifiers find an issuer by its name, so two CAs made
/// with one name on two machines would stand for each other in every chain search.
pub fn unique_ca_name(host: &str) -> Result<String> {
    let mut random = [0u8; 4];
    crate::crypto::fill_random(&mut random)?;
    let tag: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(match host.split('.').next().filter(|h| !h.is_empty()) {
        Some(h) => format!("virtpki CA {h} {tag}"),
        None => format!("virtpki CA {tag}"),
    })
}

/// Makes a self-signed CA.
pub fn create_ca(params: &CaParams) -> Result<Issued> {
    let mut attrs = Vec::new();
    if let Some(org) = &params.organization {
        attrs.push((Attribute::Organization, org.clone()));
    }
    attrs.push((Attribute::CommonName, params.common_name.clone()));
    let mut p = CertificateParams::default();
    p.distinguished_name = distinguished_name(&SubjectName::from_attributes(attrs)?)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.serial_number = Some(random_serial()?);
    params.validity.apply(&mut p)?;
    let key = params.key_type.generate()?;
    let cert = p
        .self_signed(&key)
        .map_err(|e| internal("signing the CA certificate", e))?;
    issued(cert.der().to_vec(), &key)
}

fn issued(der: Vec<u8>, key: &KeyPair) -> Result<Issued> {
    let certificate = Certificate::from_der(der, Source::Data)?;
    Ok(Issued {
        cert_pem: certificate.to_pem(),
        key_pem: key_pem(key)?,
        certificate,
    })
}

/// The key as PKCS#8 PEM that libvirt can read (see [`ed25519_pkcs8_v1`]).
fn key_pem(key: &KeyPair) -> Result<Zeroizing<String>> {
    let der = Zeroizing::new(key.serialize_der());
    let der = if key.algorithm() == &rcgen::PKCS_ED25519 {
        ed25519_pkcs8_v1(&der).ok_or_else(|| {
            internal(
                "writing the Ed25519 key",
                "unexpected PKCS#8 layout from the crypto library",
            )
        })?
    } else {
        der
    };
    Ok(Zeroizing::new(::pem::encode(&::pem::Pem::new(
        "PRIVATE KEY",
        der.to_vec(),
    ))))
}

/// An Ed25519 key in PKCS#8 v1 (RFC 8410's form: the 32-byte seed alone) from the v2 form
/// (RFC 5958, with the public key) that ring writes; `None` for anything else.
///
/// GnuTLS 3.7 — libvirt 9's — cannot parse v2 ("ASN1 parser: Error in DER parsing"), nor
/// OpenSSL 3.0, so keys for libvirt are written as v1.
pub fn ed25519_pkcs8_v1(v2: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    // SEQUENCE { INTEGER 1, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) },
    // [1] IMPLICIT BIT STRING public key }: the 83 bytes of ring's generate_pkcs8.
    const V2_PREFIX: [u8; 16] = [
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    const V1_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    if v2.len() != 83 || v2[..16] != V2_PREFIX || v2[48..51] != [0x81, 0x21, 0x00] {
        return None;
    }
    let mut v1 = Zeroizing::new(Vec::with_capacity(48));
    v1.extend_from_slice(&V1_PREFIX);
    v1.extend_from_slice(&v2[16..48]);
    Some(v1)
}

/// 128 random bits, positive and without a leading zero byte, as RFC 5280 asks.
fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    crate::crypto::fill_random(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The one certificate of a CA file or text.
fn single_certificate(bytes: &[u8], source: Source) -> Result<Certificate> {
    match crate::pem::parse(CertDataType::CaCert, bytes, &source)? {
        crate::pem::Parsed::Certificates(mut certs) if certs.len() == 1 => Ok(certs.remove(0)),
        crate::pem::Parsed::Certificates(certs) => Err(Error::new(
            ErrorKind::InvalidArg,
            format!(
                "{source}: holds {} certificates; a CA to sign with is one certificate",
                certs.len()
            ),
        )),
        _ => Err(Error::new(
            ErrorKind::WrongType,
            format!("{source}: not a CA certificate"),
        )),
    }
}

/// What a server's certificate request should ask for: the names of [`ServerDnParams`],
/// without validity (the CA decides it).
#[derive(Clone, Debug)]
pub struct ServerRequestParams {
    /// The subject; its CN, which it must have, is the host name clients connect to.
    pub dn: SubjectName,
    /// More host names the server is known by.
    pub dns_names: Vec<String>,
    /// Addresses clients connect to.
    pub ip_addresses: Vec<IpAddr>,
    /// The algorithm of the new key.
    pub key_type: KeyType,
}

/// A new key and a PKCS#10 request for it: the key stays on the host that made it, the
/// request goes to the CA ([`CertificateAuthority::sign_request`]).
pub struct Request {
    /// PKCS#8 `PRIVATE KEY`; wiped when dropped.
    pub key_pem: Zeroizing<String>,
    /// The request, PEM (`CERTIFICATE REQUEST`).
    pub csr_pem: String,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request").finish_non_exhaustive()
    }
}

/// A request for a server certificate: the subject and the SANs `issue` would write (checked
/// by the same template), nothing else — the CA adds the usages.
pub fn request_server(params: &ServerRequestParams) -> Result<Request> {
    params.key_type.check()?;
    let template = server_template(&params.dn, &params.dns_names, &params.ip_addresses)?;
    let mut p = CertificateParams::default();
    p.distinguished_name = template.distinguished_name;
    p.subject_alt_names = template.subject_alt_names;
    make_request(p, params.key_type)
}

/// A request for a client certificate with subject `dn`, which must have a CN.
pub fn request_client(dn: &SubjectName, key_type: KeyType) -> Result<Request> {
    key_type.check()?;
    let template = client_template(dn)?;
    let mut p = CertificateParams::default();
    p.distinguished_name = template.distinguished_name;
    make_request(p, key_type)
}

fn make_request(p: CertificateParams, key_type: KeyType) -> Result<Request> {
    let key = key_type.generate()?;
    let csr = p
        .serialize_request(&key)
        .map_err(|e| internal("signing the request", e))?;
    Ok(Request {
        key_pem: key_pem(&key)?,
        csr_pem: csr.pem().map_err(|e| internal("encoding the request", e))?,
    })
}

/// A certificate the CA signed for a request ([`CertificateAuthority::sign_request`]).
pub struct SignedRequest {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate as virtpki reads it.
    pub certificate: Certificate,
    /// The extensions the request asked for that the certificate does not carry (libvirt's
    /// template decides them), one description each, e.g. "keyUsage".
    pub ignored: Vec<String>,
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("subject", &self.certificate.subject())
            .field("ignored", &self.ignored)
            .finish_non_exhaustive()
    }
}

/// The attribute an X.520 attribute type OID stands for, among those virtpki writes.
fn attribute_of_oid(oid: &str) -> Option<Attribute> {
    Some(match oid {
        "2.5.4.6" => Attribute::Country,
        "2.5.4.8" => Attribute::State,
        "2.5.4.7" => Attribute::Locality,
        "2.5.4.10" => Attribute::Organization,
        "2.5.4.11" => Attribute::OrganizationalUnit,
        "2.5.4.3" => Attribute::CommonName,
        "0.9.2342.19200300.100.1.25" => Attribute::DomainComponent,
        "0.9.2342.19200300.100.1.1" => Attribute::UserId,
        "1.2.840.113549.1.9.1" => Attribute::Email,
        "2.5.4.5" => Attribute::SerialNumber,
        "2.5.4.12" => Attribute::Title,
        _ => return None,
    })
}

/// What a parsed request asks for, checked: subject, names (DNS, IP) and public key.
struct Asked {
    dn: SubjectName,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    spki: Vec<u8>,
    ignored: Vec<String>,
}

/// The signature algorithms that use SHA-1 (RSA, ECDSA, DSA), refused by name: collisions
/// of SHA-1 are practical, and the crypto provider does not verify them either.
const SHA1_SIGNATURES: [(&str, &str); 4] = [
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.3.14.3.2.29", "sha1WithRSASignature"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10040.4.3", "dsa-with-SHA1"),
];

/// The most subject alternative names a server certificate gets: libvirt's hosts need a few
/// (the host name, its short name, addresses); hundreds are a mistake or an attempt to make
/// one certificate stand for a fleet, and every peer would walk them on each handshake.
pub const MAX_SUBJECT_ALT_NAMES: usize = 64;

/// The elements of the DER SEQUENCE `der`, each whole (tag and length included).
fn der_elements(der: &[u8]) -> Option<Vec<&[u8]>> {
    use x509_parser::asn1_rs::{Any, FromDer};
    let (_, seq) = Any::from_der(der).ok()?;
    let mut rest = seq.data;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (after, _) = Any::from_der(rest).ok()?;
        out.push(&rest[..rest.len() - after.len()]);
        rest = after;
    }
    Some(out)
}

/// The contents of the DER element `der`: of an AlgorithmIdentifier, its OID and parameters,
/// the form the crypto provider's algorithms are identified by.
fn der_contents(der: &[u8]) -> Option<&[u8]> {
    use x509_parser::asn1_rs::{Any, FromDer};
    Any::from_der(der).ok().map(|(_, any)| any.data)
}

/// Checks that `csr` (`der`, as read) is signed by its own key with an algorithm of the crypto
/// provider, the same set path building verifies certificates with ([`crate::crypto`]):
/// ECDSA P-256 and P-384, Ed25519, RSA of 2048 to 8192 bits (PKCS#1 v1.5 or PSS, SHA-256 to
/// SHA-512). What it cannot check is said as such, never as "altered": SHA-1 by name, any
/// other algorithm (P-521, say) as one virtpki does not check.
fn check_request_signature(
    csr: &x509_parser::certification_request::X509CertificationRequest<'_>,
    der: &[u8],
) -> std::result::Result<(), (ErrorKind, String)> {
    use x509_parser::public_key::PublicKey;
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let sig_oid = &csr.signature_algorithm.algorithm;
    let sig_name = oid_name(sig_oid);
    let sig_id = sig_oid.to_id_string();
    if let Some((_, sha1_name)) = SHA1_SIGNATURES.iter().find(|(id, _)| *id == sig_id) {
        return Err((
            ErrorKind::BadSignature,
            format!(
                "it is signed with SHA-1 ({sha1_name}), which virtpki does not accept: make it \
                 again with SHA-256 (virtpki request does; openssl req -sha256)"
            ),
        ));
    }
    if let Ok(PublicKey::RSA(rsa)) = spki.parsed() {
        let bits = rsa.key_size();
        if !(2048..=8192).contains(&bits) {
            return Err((
                ErrorKind::InvalidArg,
                format!(
                    "its RSA key has {bits} bits; virtpki certifies RSA keys of 2048 to 8192 bits"
                ),
            ));
        }
    }
    let key_name = match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve.as_ref().map(|c| c.to_id_string()).as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_owned(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_owned(),
                Some("1.3.132.0.35") => "ECDSA P-521".to_owned(),
                _ => format!("ECDSA {}", curve.map_or("?".into(), |c| oid_name(&c))),
            }
        }
        "1.2.840.113549.1.1.1" => "RSA".to_owned(),
        "1.2.840.113549.1.1.10" => "RSA-PSS".to_owned(),
        _ => oid_name(&spki.algorithm.algorithm),
    };
    let sig_name = if sig_id == "1.2.840.113549.1.1.10" {
        "RSASSA-PSS with these parameters (virtpki checks PSS whose salt is as long as its \
         hash)"
            .to_owned()
    } else {
        sig_name
    };
    let unreadable = || (ErrorKind::Parse, "its structure cannot be read".to_owned());
    let outer = der_elements(der).ok_or_else(unreadable)?;
    let sig_alg = outer
        .get(1)
        .and_then(|e| der_contents(e))
        .ok_or_else(unreadable)?;
    let key_alg = der_elements(spki.raw)
        .and_then(|e| e.first().and_then(|a| der_contents(a)))
        .ok_or_else(unreadable)?;
    let provider = crate::crypto::provider();
    let algs: Vec<_> = provider
        .signature_verification_algorithms
        .all
        .iter()
        .filter(|a| {
            a.signature_alg_id().as_ref() == sig_alg && a.public_key_alg_id().as_ref() == key_alg
        })
        .collect();
    if algs.is_empty() {
        return Err((
            ErrorKind::BadSignature,
            format!(
                "it is signed with {sig_name} by its {key_name} key, a signature algorithm \
                 virtpki does not check (it checks ECDSA P-256 and P-384, Ed25519, and RSA \
                 2048 to 8192 bits with SHA-256, SHA-384 or SHA-512, PKCS#1 v1.5 or PSS): make \
                 the request with one of those"
            ),
        ));
    }
    let key = &spki.subject_public_key.data;
    let signature = &csr.signature_value.data;
    if algs
        .iter()
        .any(|a| a.verify_signature(key, info.raw, signature).is_ok())
    {
        return Ok(());
    }
    Err((
        ErrorKind::BadSignature,
        format!(
            "its signature does not verify with its own public key ({sig_name}): it was \
             altered after it was signed, or signed with another key"
        ),
    ))
}

/// Reads a certificate request file as text: a regular file within the size cap of a
/// certificate file, its errors naming it as a certificate request.
pub fn read_request_file(path: &Path) -> Result<String> {
    let what = "certificate request";
    let limit = CertDataType::CaCert.size_limit();
    let read = crate::fsutil::read_regular(path, crate::fsutil::Follow::Yes, limit as u64)
        .map_err(|e| {
            e.into_error(path, &format!("{what} file"), |len| {
                Error::new(
                    ErrorKind::TooLarge,
                    format!(
                        "{}: {len} bytes is over the {} KiB limit for a {what}",
                        path.display(),
                        limit / 1024
                    ),
                )
            })
        })?;
    String::from_utf8(read.bytes.to_vec()).map_err(|_| {
        Error::new(
            ErrorKind::Parse,
            format!("{}: not a PEM {what} (not text)", path.display()),
        )
    })
}

/// The OID of PKCS#9's extensionRequest attribute, as DER contents.
const EXTENSION_REQUEST_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];

/// Checks that every extensionRequest attribute of the CertificationRequestInfo `info` (DER)
/// holds one value, as PKCS#9 says it does: x509-parser reads only the first value of the
/// attribute's SET, so extensions in a second would go unchecked and unlisted.
fn check_one_extension_request_value(info: &[u8]) -> std::result::Result<(), String> {
    let unreadable = || "its attributes cannot be read".to_owned();
    let fields = der_elements(info).ok_or_else(unreadable)?;
    let Some(attributes) = fields.get(3) else {
        return Ok(());
    };
    for attribute in der_elements(attributes).ok_or_else(unreadable)? {
        let parts = der_elements(attribute).ok_or_else(unreadable)?;
        let [oid, values] = parts.as_slice() else {
            return Err(unreadable());
        };
        if der_contents(oid) != Some(EXTENSION_REQUEST_OID) {
            continue;
        }
        let n = der_elements(values).ok_or_else(unreadable)?.len();
        if n != 1 {
            return Err(format!(
                "its extensionRequest attribute has {n} values; it has one (PKCS#9), and the \
                 extensions of any other would go unchecked"
            ));
        }
    }
    Ok(())
}

fn read_request(role: Role, csr_pem: &str) -> Result<Asked> {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::cri_attributes::ParsedCriAttribute;
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let bad = |kind: ErrorKind, why: String| Error::new(kind, format!("the request: {why}"));
    let blocks = ::pem::parse_many(csr_pem.trim_start_matches('\u{feff}'))
        .map_err(|e| bad(ErrorKind::Parse, format!("not PEM ({e})")))?;
    // One request, one certificate: a second block would be signed or dropped unseen.
    let block = match blocks.as_slice() {
        [one] => one,
        [] => return Err(bad(ErrorKind::Parse, "no PEM block in it".into())),
        more => {
            return Err(bad(
                ErrorKind::InvalidArg,
                format!("{} PEM blocks in it; a request file holds one", more.len()),
            ))
        }
    };
    if block.tag() != "CERTIFICATE REQUEST" && block.tag() != "NEW CERTIFICATE REQUEST" {
        return Err(bad(
            ErrorKind::WrongType,
            format!(
                "a PEM \"{}\" block, not a \"CERTIFICATE REQUEST\" (PKCS#10)",
                block.tag()
            ),
        ));
    }
    let (rest, csr) = X509CertificationRequest::from_der(block.contents())
        .map_err(|e| bad(ErrorKind::Parse, format!("not a PKCS#10 request ({e})")))?;
    if !rest.is_empty() {
        return Err(bad(
            ErrorKind::Parse,
            "trailing bytes after the request".into(),
        ));
    }
    // The signature proves the requester holds the key the certificate will name.
    check_request_signature(&csr, block.contents()).map_err(|(kind, why)| bad(kind, why))?;
    let info = &csr.certification_request_info;
    let mut attrs = Vec::new();
    for rdn in info.subject.iter() {
        let mut values = rdn.iter();
        let (Some(atv), None) = (values.next(), values.next()) else {
            return Err(bad(
                ErrorKind::Parse,
                format!(
                    "its subject \"{}\" has an empty or multi-valued RDN",
                    info.subject
                ),
            ));
        };
        let oid = atv.attr_type().to_id_string();
        let attr = attribute_of_oid(&oid).ok_or_else(|| {
            bad(
                ErrorKind::InvalidArg,
                format!("its subject has an attribute virtpki cannot write ({oid})"),
            )
        })?;
        let value = atv.as_str().map_err(|_| {
            bad(
                ErrorKind::Parse,
                format!("the {} of its subject is not a text string", attr.name()),
            )
        })?;
        attrs.push((attr, value.to_owned()));
    }
    let dn = SubjectName::from_attributes(attrs)?;
    let (mut dns, mut ips, mut ignored) = (Vec::new(), Vec::new(), Vec::new());
    let other = match role {
        Role::Server => "clientAuth",
        Role::Client => "serverAuth",
    };
    // Every extensionRequest attribute: x509-parser's requested_extensions() gives the first
    // only, and what a second one asks for would go unchecked and unlisted.
    let requested = info
        .iter_attributes()
        .flat_map(|attr| match attr.parsed_attribute() {
            ParsedCriAttribute::ExtensionRequest(r) => r.extensions.iter().collect::<Vec<_>>(),
            _ => Vec::new(),
        });
    check_one_extension_request_value(info.raw).map_err(|why| bad(ErrorKind::Parse, why))?;
    let mut san_count = 0usize;
    for ext in requested.map(|e| e.parsed_extension()) {
        match ext {
            ParsedExtension::BasicConstraints(bc) if bc.ca => {
                return Err(bad(
                    ErrorKind::InvalidArg,
                    "it asks for a CA certificate (basicConstraints CA:TRUE); a CA signs \
                     only server and client certificates"
                        .into(),
                ))
            }
            ParsedExtension::BasicConstraints(_) => ignored.push("basicConstraints".into()),
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let wrong = match role {
                    Role::Server => eku.client_auth,
                    Role::Client => eku.server_auth,
                };
                if wrong {
                    return Err(bad(
                        ErrorKind::Purpose,
                        format!(
                            "it asks for {other} (extendedKeyUsage), the purpose of a {} \
                             certificate, in a {} request",
                            if role == Role::Server {
                                "client"
                            } else {
                                "server"
                            },
                            role.name()
                        ),
                    ));
                }
                ignored.push("extendedKeyUsage".into());
            }
            // keyCertSign or cRLSign is a CA's power, asked for without CA:TRUE: refused
            // like CA:TRUE, not passed over as a usage the template replaces.
            ParsedExtension::KeyUsage(ku) if ku.key_cert_sign() || ku.crl_sign() => {
                return Err(bad(
                    ErrorKind::InvalidArg,
                    format!(
                        "it asks for a CA's key usage ({}): a CA signs only server and client \
                         certificates",
                        [
                            ("keyCertSign", ku.key_cert_sign()),
                            ("cRLSign", ku.crl_sign())
                        ]
                        .iter()
                        .filter(|(_, on)| *on)
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                    ),
                ))
            }
            ParsedExtension::KeyUsage(_) => ignored.push("keyUsage".into()),
            ParsedExtension::SubjectAlternativeName(san) if role == Role::Server => {
                san_count += san.general_names.len();
                if san_count > MAX_SUBJECT_ALT_NAMES {
                    return Err(bad(
                        ErrorKind::InvalidArg,
                        format!(
                            "it asks for {} subject alternative names or more; a server \
                             certificate gets at most {MAX_SUBJECT_ALT_NAMES}",
                            san_count
                        ),
                    ));
                }
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                        GeneralName::IPAddress(b) => ips.push(ip_of(b).ok_or_else(|| {
                            bad(ErrorKind::Parse, "an IP SAN of a wrong length".into())
                        })?),
                        other => {
                            return Err(bad(
                                ErrorKind::InvalidArg,
                                format!(
                                    "it asks for a subject alternative name a libvirt \
                                     server certificate does not carry ({other})"
                                ),
                            ))
                        }
                    }
                }
            }
            ParsedExtension::SubjectAlternativeName(_) => {
                ignored.push("subjectAltName (a client certificate has none)".into())
            }
            ParsedExtension::UnsupportedExtension { oid } => ignored.push(oid.to_id_string()),
            ParsedExtension::ParseError { error } => {
                return Err(bad(
                    ErrorKind::Parse,
                    format!("an extension it asks for cannot be read ({error})"),
                ))
            }
            other => ignored.push(
                format!("{other:?}")
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or("extension")
                    .to_owned(),
            ),
        }
    }
    // Each kind once: a request of thousands of one extension is one item of the summary.
    let mut seen = std::collections::HashSet::new();
    ignored.retain(|name| seen.insert(name.clone()));
    Ok(Asked {
        dn,
        dns,
        ips,
        spki: info.subject_pki.raw.to_vec(),
        ignored,
    })
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// An existing CA, loaded to sign with.
pub struct CertificateAuthority {
    certificate: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &self.certificate.subject())
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// The CA certificate file of a CA directory.
    pub fn cert_path(dir: &Path) -> PathBuf {
        dir.join("cacert.pem")
    }

    /// The CA key file of a CA directory.
    pub fn key_path(dir: &Path) -> PathBuf {
        dir.join("cakey.pem")
    }

    /// The CRL file of a CA directory, which `virtpki crl revoke` writes.
    pub fn crl_path(dir: &Path) -> PathBuf {
        dir.join("cacrl.pem")
    }

    /// Where a CA directory keeps a copy of each certificate it revoked (`SERIAL.pem`, the
    /// serial in hex): the CRL holds serials only, and these give them their subjects.
    pub fn revoked_dir(dir: &Path) -> PathBuf {
        dir.join("revoked")
    }

    /// Loads `DIR/cacert.pem` and `DIR/cakey.pem` (the key must not be open to other users).
    pub fn load_dir(dir: &Path) -> Result<CertificateAuthority> {
        let cert_path = CertificateAuthority::cert_path(dir);
        let key_path = CertificateAuthority::key_path(dir);
        let (cert_bytes, _) = crate::pem::read_file(&cert_path, CertDataType::CaCert)?;
        let (key_bytes, _) = crate::pem::read_file(&key_path, CertDataType::ServerKey)?;
        let cert = single_certificate(&cert_bytes, Source::File(cert_path))?;
        CertificateAuthority::with_key(cert, &key_bytes, &key_path.display().to_string())
    }

    /// A CA from PEM text, e.g. what [`create_ca`] returned.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority> {
        let cert = single_certificate(cert_pem.as_bytes(), Source::Data)?;
        CertificateAuthority::with_key(cert, key_pem.as_bytes(), "the CA key")
    }

    /// The CA just made by [`create_ca`].
    pub fn from_issued(ca: &Issued) -> Result<CertificateAuthority> {
        CertificateAuthority::from_pem(&ca.cert_pem, &ca.key_pem)
    }

    /// Checks that `cert` can sign and that `key` (PEM; `key_name` names it in errors) is its.
    fn with_key(cert: Certificate, key: &[u8], key_name: &str) -> Result<CertificateAuthority> {
        let unusable = |why: String| {
            Error::new(
                ErrorKind::Parse,
                format!(
                    "{key_name}: cannot sign with this private key ({why}); virtpki signs with \
                     unencrypted PKCS#8 RSA ({}), ECDSA P-256/P-384 and Ed25519 keys",
                    crate::crypto::rsa_signing_sizes()
                ),
            )
        };
        let text = std::str::from_utf8(key).map_err(|_| unusable("not PEM text".into()))?;
        let key = KeyPair::from_pem(text).map_err(|e| unusable(e.to_string()))?;
        let subject = cert.subject().to_owned();
        if !cert.is_ca() {
            return Err(Error::new(
                ErrorKind::NotCa,
                format!(
                    "{}: \"{subject}\" is not a CA (its basic constraints do not say CA:TRUE)",
                    cert.source()
                ),
            ));
        }
        if let Some(ku) = cert.key_usage() {
            if !ku.allows(crate::cert::KeyUsage::KEY_CERT_SIGN) {
                return Err(Error::new(
                    ErrorKind::KeyUsage,
                    format!(
                        "{}: the key usage of \"{subject}\" does not permit certificate signing",
                        cert.source()
                    ),
                ));
            }
        }
        if key.subject_public_key_info() != cert.spki_der() {
            return Err(Error::new(
                ErrorKind::KeyMismatch,
                format!(
                    "{key_name}: this key does not belong to the CA certificate {} (\"{subject}\")",
                    cert.source()
                ),
            ));
        }
        // rcgen re-reads the subject; it panics on an empty RDN and refuses multi-valued ones.
        let simple_subject = x509_parser::certificate::X509Certificate::from_der(cert.der())
            .map(|(_, c)| c.subject().iter().all(|rdn| rdn.iter().count() == 1))
            .unwrap_or(false);
        if !simple_subject {
            return Err(Error::new(
                ErrorKind::Parse,
                format!(
                    "{}: cannot sign with this CA: its subject \"{subject}\" has an empty or \
                     multi-valued RDN",
                    cert.source()
                ),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(cert.der(), key).map_err(|e| {
            Error::new(
                ErrorKind::Parse,
                format!(
                    "{}: cannot sign with this CA: its subject or extensions are not \
                     understood ({e})",
                    cert.source()
                ),
            )
        })?;
        Ok(CertificateAuthority {
            certificate: cert,
            issuer,
        })
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Issues a server certificate: CN and every name as DNS SANs, every address as IP SAN.
    pub fn issue_server(&self, params: &ServerParams) -> Result<Issued> {
        self.issue_server_dn(&ServerDnParams {
            dn: SubjectName::host(&params.common_name, params.organization.as_deref())?,
            dns_names: params.dns_names.clone(),
            ip_addresses: params.ip_addresses.clone(),
            validity: params.validity,
            key_type: params.key_type,
        })
    }

    /// Issues a server certificate with a whole subject: its CN and every name as DNS SANs,
    /// every address as IP SAN. A DN without CN is refused: libvirt's documentation puts the
    /// host name there, and host-name checks that predate SANs read it.
    pub fn issue_server_dn(&self, params: &ServerDnParams) -> Result<Issued> {
        let p = server_template(&params.dn, &params.dns_names, &params.ip_addresses)?;
        params.key_type.check()?;
        self.sign(p, &params.validity, params.key_type)
    }

    /// Issues a client certificate with `params.dn` as its subject, which must have a CN:
    /// libvirt's documentation names clients by it and every `tls_allowed_dn_list` matches it.
    pub fn issue_client(&self, params: &ClientParams) -> Result<Issued> {
        let p = client_template(&params.dn)?;
        self.sign(p, &params.validity, params.key_type)
    }

    /// Signs a PKCS#10 request (PEM) as a `role` certificate, without ever seeing its key.
    ///
    /// The request's signature must verify; its subject and (for a server) DNS and IP names
    /// are taken and written by the same template as [`issue_server_dn`](Self::issue_server_dn)
    /// and [`issue_client`](Self::issue_client) (a CN required). Its other extensions are not
    /// copied: they are listed in [`SignedRequest::ignored`]. A request for CA:TRUE, for the
    /// other role's purpose or for names the template cannot write is refused.
    pub fn sign_request(
        &self,
        role: Role,
        csr_pem: &str,
        validity: &Validity,
    ) -> Result<SignedRequest> {
        let asked = read_request(role, csr_pem)?;
        let p = match role {
            Role::Server => server_template(&asked.dn, &asked.dns, &asked.ips)?,
            Role::Client => client_template(&asked.dn)?,
        };
        let certificate = self.certify(p, validity, &asked.spki, "the request")?;
        Ok(SignedRequest {
            cert_pem: certificate.to_pem(),
            certificate,
            ignored: asked.ignored,
        })
    }

    /// Renews a server or client certificate this CA issued: a new certificate for the same
    /// public key, with a new serial and `validity`, and the same subject (byte for byte, as
    /// `tls_allowed_dn_list` and the known-servers store compare it), subject alternative
    /// names, key usage, extended key usage, basic constraints and subject key identifier,
    /// each extension copied as the old certificate encodes it. The CA needs the old
    /// certificate only, never its key: a client that trusted the old one sees
    /// [`ValidateFlags::CHANGED`](crate::ValidateFlags::CHANGED) |
    /// [`SAME_KEY`](crate::ValidateFlags::SAME_KEY).
    ///
    /// Refused: a certificate this CA did not issue (another issuer name, or a signature that
    /// does not verify under this CA's key), a CA certificate (renewed by
    /// [`renew_ca`](Self::renew_ca)), the CA's own certificate or key, a public key virtpki
    /// does not certify, a subject the issuer cannot write back exactly, and a validity that
    /// outlives the CA. Other extensions are not copied: [`Renewed::not_carried`] names them.
    pub fn renew(&self, old: &Certificate, validity: &Validity) -> Result<Renewed> {
        let src = old.source().to_string();
        if old.spki_der() == self.certificate.spki_der() {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "{src}: \"{}\" is this CA's own certificate (or another certificate of its \
                     key); renew the CA with `virtpki ca renew`",
                    old.subject()
                ),
            ));
        }
        if old.is_ca() {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "{src}: \"{}\" is a CA certificate (basic constraints CA:TRUE); renew only \
                     server and client certificates here, a CA with `virtpki ca renew` in its \
                     own directory",
                    old.subject()
                ),
            ));
        }
        self.check_issued_here(old, "this CA cannot renew it")?;
        check_renewable_subject(old)?;
        let (mut p, not_carried, _) = reissue_params(old, LEAF_COPIED)?;
        p.use_authority_key_identifier_extension = true;
        let certificate = self.certify(p, validity, old.spki_der(), &src)?;
        check_same_subject(old, &certificate)?;
        Ok(Renewed {
            cert_pem: certificate.to_pem(),
            certificate,
            not_carried,
            issued_name_old_serial: false,
        })
    }

    /// Refuses `cert` when `crl`, this CA's current CRL (DER), revokes it: renewed, a
    /// revoked certificate's key (perhaps thought stolen) would be trusted again under a
    /// serial no CRL lists. A CRL of another CA is refused too.
    pub fn check_not_revoked(&self, cert: &Certificate, crl: &[u8]) -> Result<()> {
        let (entries, _) = self.read_own_crl(crl)?;
        if entries
            .iter()
            .any(|r| r.serial_number.as_ref() == cert.raw_serial())
        {
            return Err(Error::new(
                ErrorKind::Revoked,
                format!(
                    "{}: \"{}\" (serial {}) is revoked by this CA's CRL; renewing it would \
                     trust its key again: make a new key and certificate instead (virtpki \
                     request, or virtpki issue)",
                    cert.source(),
                    cert.subject(),
                    cert.serial_hex()
                ),
            ));
        }
        Ok(())
    }

    /// Re-issues the CA certificate, self-signed with the same key: the same subject (byte
    /// for byte), subject key identifier (the authority key identifier of every certificate
    /// it issued, by which GnuTLS finds their issuer), basic constraints and key usage; a new
    /// serial and `validity`. Every certificate the CA issued verifies under the new one, and
    /// old and new may sit in one CA file in either order while hosts change over.
    ///
    /// Refused for a CA that is not self-signed (an intermediate is renewed by the CA above
    /// it) and for a subject the issuer cannot write back exactly.
    pub fn renew_ca(&self, validity: &Validity) -> Result<Renewed> {
        let old = &self.certificate;
        if !old.is_self_issued() || !old.is_issued_by(old) {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "{}: \"{}\" is not self-signed (its issuer is \"{}\"): a CA below another \
                     is renewed by the CA above it",
                    old.source(),
                    old.subject(),
                    old.issuer()
                ),
            ));
        }
        let (mut p, not_carried, issued_name_old_serial) = reissue_params(old, CA_COPIED)?;
        p.serial_number = Some(random_serial()?);
        validity.apply(&mut p)?;
        let cert = p
            .self_signed(self.issuer.key())
            .map_err(|e| internal("signing the CA certificate", e))?;
        let certificate = Certificate::from_der(cert.der().to_vec(), Source::Data)?;
        check_same_subject(old, &certificate)?;
        if certificate.issuer_raw() != certificate.subject_raw()
            || certificate.spki_der() != old.spki_der()
            || certificate.profile().subject_key_id != old.profile().subject_key_id
        {
            return Err(internal(
                "renewing the CA certificate",
                "the new certificate's issuer, key or key identifier differs from the old one's",
            ));
        }
        Ok(Renewed {
            cert_pem: certificate.to_pem(),
            certificate,
            not_carried,
            issued_name_old_serial,
        })
    }

    /// Makes a key of `key_type` and signs `p` for it.
    fn sign(&self, p: CertificateParams, validity: &Validity, key_type: KeyType) -> Result<Issued> {
        let key = key_type.generate()?;
        let certificate = self.sign_for(p, validity, &key)?;
        Ok(Issued {
            cert_pem: certificate.to_pem(),
            key_pem: key_pem(&key)?,
            certificate,
        })
    }

    /// Signs `p` for a public key the CA never holds the private half of (a request's, a
    /// renewed certificate's; `whose` names it in errors): refused when the key is the CA's
    /// own or one virtpki does not certify ([`check_certifiable_key`]), or the subject is the
    /// CA's own name.
    fn certify(
        &self,
        p: CertificateParams,
        validity: &Validity,
        spki: &[u8],
        whose: &str,
    ) -> Result<Certificate> {
        // A leaf with its CA's key would stand for the CA wherever keys are compared.
        if spki == self.certificate.spki_der() {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "{whose} carries this CA's own public key: a leaf never shares its CA's key"
                ),
            ));
        }
        check_certifiable_key(spki, whose)?;
        let key = rcgen::SubjectPublicKeyInfo::from_der(spki).map_err(|e| {
            Error::new(
                ErrorKind::Parse,
                format!("{whose}: its public key cannot be certified ({e})"),
            )
        })?;
        let certificate = self.sign_for(p, validity, &key)?;
        if certificate.spki_der() != spki {
            return Err(internal(
                "signing the certificate",
                "the certificate's public key differs from the one asked for",
            ));
        }
        if certificate.subject_raw() == self.certificate.subject_raw() {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "{whose}: its subject is this CA's own name \"{}\": a leaf with its CA's \
                     name would stand for the CA wherever certificates are found by name",
                    self.certificate.subject()
                ),
            ));
        }
        Ok(certificate)
    }

    /// Signs `p` for `public_key`: the one place a leaf certificate is signed, for `issue`
    /// (a key made here) and for a request (the requester's key).
    fn sign_for(
        &self,
        mut p: CertificateParams,
        validity: &Validity,
        public_key: &impl PublicKeyData,
    ) -> Result<Certificate> {
        validity.apply(&mut p)?;
        let ca_end = self.certificate.not_after();
        if validity.now > ca_end {
            return Err(Error::new(
                ErrorKind::Expired,
                format!(
                    "{}: the CA \"{}\" has expired (on {}): it signs nothing until it is \
                     renewed with its key and name (virtpki ca renew), which keeps what it \
                     issued valid",
                    self.certificate.source(),
                    self.certificate.subject(),
                    crate::timefmt::utc(ca_end)
                ),
            ));
        }
        if p.not_after.unix_timestamp() > ca_end {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "the certificate would outlive its CA \"{}\" (which expires {}): \
                     ask for fewer days",
                    self.certificate.subject(),
                    crate::timefmt::utc(ca_end)
                ),
            ));
        }
        let cert = p
            .signed_by(public_key, &self.issuer)
            .map_err(|e| internal("signing the certificate", e))?;
        let certificate = Certificate::from_der(cert.der().to_vec(), Source::Data)?;
        // rcgen writes the issuer name from its own reading of the CA's subject: make sure it
        // is byte for byte the CA's, or no verifier would chain the two.
        if certificate.issuer_raw() != self.certificate.subject_raw() {
            return Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "{}: the CA's subject \"{}\" cannot be written back exactly; issue with \
                     a CA made by `virtpki ca init`",
                    self.certificate.source(),
                    self.certificate.subject()
                ),
            ));
        }
        Ok(certificate)
    }

    /// A CRL that revokes `certs` besides what `previous` (this CA's current CRL, DER)
    /// revokes, with the next CRL number. Returns the PEM and the serials newly revoked.
    pub fn revoke(
        &self,
        previous: Option<&[u8]>,
        certs: &[Certificate],
        validity: &Validity,
    ) -> Result<Revocation> {
        let mut revoked: Vec<RevokedCertParams> = Vec::new();
        let mut number = num_bigint_one();
        if let Some(der) = previous {
            let (entries, prev_number) = self.read_own_crl(der)?;
            revoked = entries;
            number = prev_number + 1u8;
        }
        let mut newly = Vec::new();
        for cert in certs {
            self.check_issued_here(cert, "a CRL of this CA cannot revoke it")?;
            self.check_not_self(cert)?;
            let serial = cert.raw_serial().to_vec();
            if revoked
                .iter()
                .any(|r| r.serial_number.as_ref() == serial.as_slice())
                || newly.contains(&serial)
            {
                continue;
            }
            revoked.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: odt(validity.now - BACKDATE_SECONDS)?,
                reason_code: None,
                invalidity_date: None,
            });
            newly.push(serial);
        }
        if validity.days == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                "a CRL valid for 0 days is stale when it is written",
            ));
        }
        let total = revoked.len();
        let params = CertificateRevocationListParams {
            // Backdated like certificates: GnuTLS flags a CRL "issued in the future" on a
            // host whose clock is a little behind.
            this_update: odt(validity.now - BACKDATE_SECONDS)?,
            next_update: odt(validity.now + i64::from(validity.days) * 86_400)?,
            crl_number: SerialNumber::from_slice(&number.to_bytes_be()),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::PreSpecified(self.key_identifier()),
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(|e| internal("signing the CRL", e))?;
        let pem = crl.pem().map_err(|e| internal("encoding the CRL", e))?;
        Ok(Revocation {
            pem,
            newly_revoked: newly,
            crl_number: number.to_string(),
            total,
        })
    }

    /// The CA's subject key identifier (RFC 5280 wants the CRL's AKI to match it).
    fn key_identifier(&self) -> Vec<u8> {
        x509_parser::certificate::X509Certificate::from_der(self.certificate.der())
            .ok()
            .and_then(|(_, c)| {
                c.extensions()
                    .iter()
                    .find_map(|e| match e.parsed_extension() {
                        x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                            Some(k.0.to_vec())
                        }
                        _ => None,
                    })
            })
            .unwrap_or_else(|| self.certificate.spki_fingerprint().as_bytes()[..20].to_vec())
    }

    /// Refuses a certificate this CA did not sign (`then` says what that rules out: "a CRL
    /// of this CA cannot revoke it"): its issuer name must be this CA's subject, byte for
    /// byte, and its signature must verify under this CA's key. A same-named CA with another
    /// key, or a forger who copied the name, fails the second.
    fn check_issued_here(&self, cert: &Certificate, then: &str) -> Result<()> {
        if cert.issuer_raw() != self.certificate.subject_raw() {
            // Equal as text, other bytes: verifiers compare the bytes and never chain the two.
            let how = if cert.issuer() == self.certificate.subject() {
                " (its issuer is this CA's name encoded differently, in other string types, \
                 and verifiers compare the bytes)"
            } else {
                ""
            };
            return Err(Error::new(
                ErrorKind::UnknownIssuer,
                format!(
                    "{}: \"{}\" (issuer \"{}\") was not issued by this CA \"{}\"{how}; {then}",
                    cert.source(),
                    cert.subject(),
                    cert.issuer(),
                    self.certificate.subject()
                ),
            ));
        }
        if !cert.is_issued_by(&self.certificate) {
            return Err(Error::new(
                ErrorKind::BadSignature,
                format!(
                    "{}: \"{}\" carries this CA's name \"{}\" as its issuer, but its \
                     signature does not verify under this CA's key: another CA of that name \
                     (or a forger) made it; {then}",
                    cert.source(),
                    cert.subject(),
                    self.certificate.subject()
                ),
            ));
        }
        Ok(())
    }

    /// Refuses the CA's own certificate (or another certificate of its key): a CA's CRL lists
    /// what the CA issued, and no verifier checks a trust anchor against it, so the entry would
    /// change nothing while seeming to retire the CA.
    fn check_not_self(&self, cert: &Certificate) -> Result<()> {
        if cert.spki_der() == self.certificate.spki_der() {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "{}: \"{}\" is this CA's own certificate; a CA cannot revoke itself (a CRL \
                     lists the certificates the CA issued, and verifiers never check the CA \
                     against it). To retire the CA, remove it from every host's CA certificate \
                     file and issue from a new one (virtpki ca init)",
                    cert.source(),
                    cert.subject()
                ),
            ));
        }
        Ok(())
    }

    /// The entries and number of this CA's current CRL; refuses another CA's.
    fn read_own_crl(
        &self,
        der: &[u8],
    ) -> Result<(Vec<RevokedCertParams>, x509_parser::num_bigint::BigUint)> {
        use x509_parser::revocation_list::CertificateRevocationList;
        let bad = |why: String| Error::new(ErrorKind::Parse, format!("the current CRL: {why}"));
        let (_, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| bad(format!("not a CRL ({e})")))?;
        let ca = x509_parser::certificate::X509Certificate::from_der(self.certificate.der())
            .map_err(|e| bad(format!("CA certificate unreadable ({e})")))?
            .1;
        if crl.tbs_cert_list.issuer.as_raw() != self.certificate.subject_raw()
            || crl
                .verify_signature(&ca.tbs_certificate.subject_pki)
                .is_err()
        {
            return Err(Error::new(
                ErrorKind::BadSignature,
                format!(
                    "the current CRL was not signed by this CA \"{}\" (its issuer is \"{}\"); \
                     move it away or give the CA that made it",
                    self.certificate.subject(),
                    crl.tbs_cert_list.issuer
                ),
            ));
        }
        let number = crl
            .crl_number()
            .cloned()
            .unwrap_or_else(x509_parser::num_bigint::BigUint::default);
        let mut entries = Vec::new();
        for r in crl.iter_revoked_certificates() {
            entries.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(r.raw_serial()),
                revocation_time: odt(r.revocation_date.timestamp())?,
                reason_code: r.reason_code().and_then(|(_, code)| reason(code.0)),
                invalidity_date: None,
            });
        }
        Ok((entries, number))
    }
}

fn num_bigint_one() -> x509_parser::num_bigint::BigUint {
    x509_parser::num_bigint::BigUint::from(1u8)
}

fn reason(code: u8) -> Option<rcgen::RevocationReason> {
    use rcgen::RevocationReason as R;
    Some(match code {
        0 => R::Unspecified,
        1 => R::KeyCompromise,
        2 => R::CaCompromise,
        3 => R::AffiliationChanged,
        4 => R::Superseded,
        5 => R::CessationOfOperation,
        6 => R::CertificateHold,
        8 => R::RemoveFromCrl,
        9 => R::PrivilegeWithdrawn,
        10 => R::AaCompromise,
        _ => return None,
    })
}

/// A CRL made by [`CertificateAuthority::revoke`].
#[derive(Debug)]
pub struct Revocation {
    /// The CRL, PEM.
    pub pem: String,
    /// Serial numbers (DER content bytes) this CRL revokes that the previous one did not.
    pub newly_revoked: Vec<Vec<u8>>,
    /// The CRL number, in decimal.
    pub crl_number: String,
    /// How many certificates it revokes in all.
    pub total: usize,
}

/// A certificate renewed with its key by [`CertificateAuthority::renew`] or
/// [`CertificateAuthority::renew_ca`].
pub struct Renewed {
    /// The new certificate, PEM.
    pub cert_pem: String,
    /// The new certificate as virtpki reads it.
    pub certificate: Certificate,
    /// The old certificate's extensions that the new one does not carry, by name ("CRL
    /// distribution points") or dotted OID.
    pub not_carried: Vec<String>,
    /// A renewed CA only: the old CA certificate's authority key identifier named it by issuer
    /// and serial (OpenSSL's `authorityKeyIdentifier=keyid,issuer`), so the certificates it
    /// issued most likely do too. OpenSSL matches that serial, the old one's: under the
    /// renewed CA alone they do not verify there (GnuTLS, hence libvirt, does not look), only
    /// while the old CA certificate stays in the bundle or once they are renewed.
    pub issued_name_old_serial: bool,
}

impl fmt::Debug for Renewed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renewed")
            .field("subject", &self.certificate.subject())
            .field("not_carried", &self.not_carried)
            .finish_non_exhaustive()
    }
}

/// The public keys virtpki certifies, for requests and renewals alike (`whose` names the key
/// in the error): RSA of 2048 to 8192 bits, ECDSA P-256/P-384/P-521 and Ed25519. Anything
/// else libvirt's peers would refuse, or is weak.
fn check_certifiable_key(spki: &[u8], whose: &str) -> Result<()> {
    use crate::cert::KeyAlgorithm;
    let algorithm = KeyAlgorithm::of_spki_der(spki);
    let strong = match &algorithm {
        KeyAlgorithm::Rsa { bits } => (2048..=8192).contains(bits),
        KeyAlgorithm::Ecdsa { curve } => ["P-256", "P-384", "P-521"].contains(&curve.as_str()),
        KeyAlgorithm::Ed25519 => true,
        _ => false,
    };
    if !strong {
        return Err(Error::new(
            ErrorKind::InvalidArg,
            format!(
                "{whose}: its public key ({algorithm}) is not one virtpki certifies: RSA of \
                 2048 to 8192 bits, ECDSA P-256/P-384/P-521 or Ed25519"
            ),
        ));
    }
    Ok(())
}

const OID_SKI: &str = "2.5.29.14";
const OID_KU: &str = "2.5.29.15";
const OID_SAN: &str = "2.5.29.17";
const OID_BC: &str = "2.5.29.19";
const OID_AKI: &str = "2.5.29.35";
const OID_EKU: &str = "2.5.29.37";
const OID_NAME_CONSTRAINTS: &str = "2.5.29.30";
const OID_CRL_DP: &str = "2.5.29.31";
const OID_POLICIES: &str = "2.5.29.32";
const OID_POLICY_MAPPINGS: &str = "2.5.29.33";
const OID_POLICY_CONSTRAINTS: &str = "2.5.29.36";
const OID_FRESHEST_CRL: &str = "2.5.29.46";
const OID_INHIBIT_ANY_POLICY: &str = "2.5.29.54";
const OID_AIA: &str = "1.3.6.1.5.5.7.1.1";

/// The extensions a renewed leaf keeps as they are: what peers check (usages, names,
/// policies) and where they look for the CA and its CRL (the same CA). Its authority key
/// identifier is the CA's, written anew.
const LEAF_COPIED: &[&str] = &[
    OID_SKI,
    OID_KU,
    OID_SAN,
    OID_BC,
    OID_EKU,
    OID_POLICIES,
    OID_CRL_DP,
    OID_FRESHEST_CRL,
    OID_AIA,
];
/// The extensions a renewed CA keeps as they are, its constraints above all: dropped, name
/// or policy constraints would vanish from every host that installs the renewed CA. Its
/// authority key identifier (self-signed: its own key) keeps only the key identifier
/// ([`self_key_identifier`]).
const CA_COPIED: &[&str] = &[
    OID_SKI,
    OID_KU,
    OID_SAN,
    OID_BC,
    OID_EKU,
    OID_AKI,
    OID_NAME_CONSTRAINTS,
    OID_POLICIES,
    OID_POLICY_MAPPINGS,
    OID_POLICY_CONSTRAINTS,
    OID_INHIBIT_ANY_POLICY,
    OID_CRL_DP,
    OID_FRESHEST_CRL,
    OID_AIA,
];

/// What re-issuing `old` writes: its subject as it is encoded, the extensions of `copied` as
/// they are encoded (OID, criticality and value; an authority key identifier reduced to its
/// key identifier), and a new serial; the names of the other extensions, which are left out;
/// whether a copied authority key identifier named an issuer and serial.
/// A critical extension that would be left out is refused: a peer that did not understand it
/// refused the old certificate, and the renewal must not mean less than the old one.
fn reissue_params(
    old: &Certificate,
    copied: &[&str],
) -> Result<(CertificateParams, Vec<String>, bool)> {
    let unreadable = |e: String| {
        Error::new(
            ErrorKind::Parse,
            format!("{}: cannot be read to renew it ({e})", old.source()),
        )
    };
    let (_, x509) = x509_parser::certificate::X509Certificate::from_der(old.der())
        .map_err(|e| unreadable(e.to_string()))?;
    let mut p = CertificateParams::default();
    p.distinguished_name = written_name(old, x509.subject())?;
    // Nothing of rcgen's own (it would add a subject key identifier of its choice): every
    // extension kept is the old certificate's, byte for byte.
    p.is_ca = IsCa::NoCa;
    p.serial_number = Some(random_serial()?);
    let mut not_carried = Vec::new();
    let mut named_serial = false;
    for ext in x509.extensions() {
        let oid = ext.oid.to_id_string();
        let name = || oid_name(&ext.oid);
        if copied.contains(&oid.as_str()) {
            let arcs: Vec<u64> = ext
                .oid
                .iter()
                .ok_or_else(|| unreadable(format!("extension {oid} has an arc over 64 bits")))?
                .collect();
            let value = if oid == OID_AKI {
                named_serial = names_issuer_and_serial(ext);
                match self_key_identifier(ext) {
                    Some(value) => value,
                    None => {
                        not_carried.push(name());
                        continue;
                    }
                }
            } else {
                ext.value.to_vec()
            };
            let mut copy = rcgen::CustomExtension::from_oid_content(&arcs, value);
            copy.set_criticality(ext.critical);
            p.custom_extensions.push(copy);
        } else if oid == OID_AKI {
            // A leaf's: the CA's written anew.
        } else if ext.critical {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "{}: its critical extension {} ({oid}) is not one virtpki carries over; \
                     a renewal without it would be accepted where the old certificate was \
                     not: issue a new certificate instead",
                    old.source(),
                    name()
                ),
            ));
        } else {
            not_carried.push(name());
        }
    }
    Ok((p, not_carried, named_serial))
}

/// Whether an authority key identifier names its issuer by name and serial.
fn names_issuer_and_serial(ext: &x509_parser::extensions::X509Extension<'_>) -> bool {
    matches!(
        ext.parsed_extension(),
        x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki)
            if aki.authority_cert_serial.is_some() || aki.authority_cert_issuer.is_some()
    )
}

/// A self-signed certificate's authority key identifier as the renewal writes it: its key
/// identifier alone. The issuer+serial form names the old certificate's serial, and OpenSSL
/// then takes the renewed CA for one issued by another, refusing it and all under it. `None`
/// when the old one has no key identifier (it is left out then).
fn self_key_identifier(ext: &x509_parser::extensions::X509Extension<'_>) -> Option<Vec<u8>> {
    match ext.parsed_extension() {
        x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
            let id = aki.key_identifier.as_ref()?;
            // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
            let mut inner = vec![0x80];
            push_der_length(&mut inner, id.0.len());
            inner.extend_from_slice(id.0);
            let mut value = vec![0x30];
            push_der_length(&mut value, inner.len());
            value.extend(inner);
            Some(value)
        }
        _ => None,
    }
}

/// Appends a DER length.
fn push_der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// The rcgen name that writes `name` (the subject of `cert`) back: each attribute with its
/// type and string type. Whether the result is byte for byte the same is checked on the
/// signed certificate ([`check_same_subject`]); what rcgen cannot write at all is refused here.
fn written_name(
    cert: &Certificate,
    name: &x509_parser::x509::X509Name<'_>,
) -> Result<DistinguishedName> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let cannot = |why: &str| cannot_write_subject(cert, why);
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        let mut values = rdn.iter();
        let (Some(atv), None) = (values.next(), values.next()) else {
            return Err(cannot("an empty or multi-valued RDN"));
        };
        let arcs: Vec<u64> = atv
            .attr_type()
            .iter()
            .ok_or_else(|| cannot("an attribute type with an arc over 64 bits"))?
            .collect();
        let data = atv.attr_value().data;
        let text = std::str::from_utf8(data).map_err(|_| cannot("a value that is not text"))?;
        let value = match atv.attr_value().header.tag() {
            Tag::PrintableString => DnValue::PrintableString(
                text.try_into()
                    .map_err(|_| cannot("a PrintableString with other characters"))?,
            ),
            Tag::Ia5String => DnValue::Ia5String(
                text.try_into()
                    .map_err(|_| cannot("an IA5String that is not ASCII"))?,
            ),
            Tag::Utf8String => DnValue::Utf8String(text.to_owned()),
            _ => return Err(cannot("a value in a string type virtpki does not write")),
        };
        dn.push(DnType::from_oid(&arcs), value);
    }
    Ok(dn)
}

/// Refuses to renew a leaf whose subject has a value virtpki would not write today (a control
/// character, a bidirectional override: [`crate::subject::refused_in_value`]), made by older
/// software or an older virtpki: a renewal is a new certificate of this CA, and the name would
/// live on printing otherwise in libvirt's logs than it compares. A CA's own name is not
/// checked here: `ca renew` refusing it would leave a new root as the only way on.
fn check_renewable_subject(old: &Certificate) -> Result<()> {
    let (_, x509) =
        x509_parser::certificate::X509Certificate::from_der(old.der()).map_err(|e| {
            Error::new(
                ErrorKind::Parse,
                format!("{}: cannot be read to renew it ({e})", old.source()),
            )
        })?;
    use x509_parser::der_parser::asn1_rs::Tag;
    for atv in x509.subject().iter_attributes() {
        // The string types written back; any other written_name refuses.
        let tag = atv.attr_value().header.tag();
        if ![Tag::Utf8String, Tag::PrintableString, Tag::Ia5String].contains(&tag) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(atv.attr_value().data) else {
            continue; // not text: written_name refuses it
        };
        if let Some(why) = crate::subject::refused_in_value(text) {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "{}: its subject \"{}\" is not renewed: {why}; issue a new certificate with \
                     a name without it (and update tls_allowed_dn_list)",
                    old.source(),
                    crate::display::escape(old.subject())
                ),
            ));
        }
    }
    Ok(())
}

fn cannot_write_subject(cert: &Certificate, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArg,
        format!(
            "{}: its subject \"{}\" cannot be written back exactly ({why}); a renewal with \
             another name would not match tls_allowed_dn_list or the known-servers store: \
             issue a new certificate instead",
            cert.source(),
            crate::display::escape(cert.subject())
        ),
    )
}

/// Refuses a renewal whose subject is not the old one byte for byte (rcgen writes a repeated
/// attribute once, for one).
fn check_same_subject(old: &Certificate, new: &Certificate) -> Result<()> {
    if new.subject_raw() != old.subject_raw() {
        return Err(cannot_write_subject(
            old,
            "the issuer encodes it differently",
        ));
    }
    Ok(())
}

/// libvirt's server template for `dn` (which must have a CN, a host name): the CN and every
/// name as DNS SANs, every address as IP SAN. Shared by `issue` and by signed requests.
fn server_template(
    dn: &SubjectName,
    dns_names: &[String],
    ip_addresses: &[IpAddr],
) -> Result<CertificateParams> {
    let common_name = dn.get(Attribute::CommonName).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidArg,
            format!(
                "a server certificate's DN needs a CN, the host name clients connect to: \
                 add CN=HOST to \"{}\"",
                dn.attributes()
                    .iter()
                    .map(|(a, v)| format!("{}={v}", a.name()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )
    })?;
    let asked = dns_names.len() + ip_addresses.len();
    if asked > MAX_SUBJECT_ALT_NAMES {
        return Err(Error::new(
            ErrorKind::InvalidArg,
            format!(
                "{asked} subject alternative names asked for; a server certificate gets at \
                 most {MAX_SUBJECT_ALT_NAMES}"
            ),
        ));
    }
    let mut p = leaf_params(dn, ExtendedKeyUsagePurpose::ServerAuth)?;
    // The CN first, then the other names; an address given as a name is an IP SAN (a DNS
    // SAN "192.0.2.1" would match nothing). Repeats, in any case, are written once.
    let mut dns: Vec<&str> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    let names = std::iter::once(common_name).chain(dns_names.iter().map(String::as_str));
    for name in names {
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => {
                check_host_name(name)?;
                if !dns.iter().any(|d| d.eq_ignore_ascii_case(name)) {
                    dns.push(name);
                }
            }
        }
    }
    ips.extend(ip_addresses);
    // Counted again as written: the CN is a SAN too, unless it is among the names.
    let distinct = ips.iter().fold(Vec::new(), |mut seen, ip| {
        if !seen.contains(ip) {
            seen.push(*ip);
        }
        seen
    });
    if dns.len() + distinct.len() > MAX_SUBJECT_ALT_NAMES {
        return Err(Error::new(
            ErrorKind::InvalidArg,
            format!(
                "{} subject alternative names with the CN (written as the first); a server \
                 certificate gets at most {MAX_SUBJECT_ALT_NAMES}",
                dns.len() + distinct.len()
            ),
        ));
    }
    for name in dns {
        let ia5 = name.try_into().map_err(|_| bad_host(name, "not ASCII"))?;
        p.subject_alt_names.push(SanType::DnsName(ia5));
    }
    let mut written: Vec<IpAddr> = Vec::new();
    for ip in ips {
        if !written.contains(&ip) {
            p.subject_alt_names.push(SanType::IpAddress(ip));
            written.push(ip);
        }
    }
    Ok(p)
}

/// libvirt's client template for `dn`, which must have a CN.
fn client_template(dn: &SubjectName) -> Result<CertificateParams> {
    if dn.get(Attribute::CommonName).is_none() {
        return Err(Error::new(
            ErrorKind::InvalidArg,
            "the DN has no CN: a client certificate needs one, as libvirt's documentation \
             issues them and tls_allowed_dn_list patterns match them (add e.g. \
             \",CN=client1\")",
        ));
    }
    leaf_params(dn, ExtendedKeyUsagePurpose::ClientAuth)
}

fn leaf_params(name: &SubjectName, purpose: ExtendedKeyUsagePurpose) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    p.distinguished_name = distinguished_name(name)?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![purpose];
    p.serial_number = Some(random_serial()?);
    Ok(p)
}

/// The warning for the wildcard DNS names (`*.example.com`) of a certificate, `issue server`'s
/// and `sign server`'s alike: libvirt's GnuTLS (and virtpki's verification) accept the
/// certificate for every host name one label under the wildcard, so whoever holds its key can
/// stand for all of those hosts, including ones added later.
pub fn wildcard_warning(cert: &Certificate) -> Option<String> {
    let wild: Vec<String> = cert
        .subject_alt_names()
        .iter()
        .filter(|n| matches!(n, crate::cert::SubjectAltName::Dns(d) if d.starts_with('*')))
        .map(|n| n.to_string())
        .collect();
    if wild.is_empty() {
        return None;
    }
    Some(format!(
        "{} {} a wildcard: libvirt's GnuTLS accepts this certificate for every host name one \
         label under it, so its key stands for all of those hosts (name each host instead \
         unless that is meant)",
        wild.join(", "),
        if wild.len() == 1 { "is" } else { "are" }
    ))
}

fn bad_host(name: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArg,
        format!("\"{name}\" is not a host name: {why}"),
    )
}

/// A DNS SAN must be a host name (letters, digits, hyphens; a leading `*.` label at most):
/// virtpki peers refuse anything else.
fn check_host_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 253 {
        return Err(bad_host(name, "empty or over 253 characters"));
    }
    // GnuTLS matches a wildcard only with two labels after it and no final dot: `*.com` and
    // `*.example.com.` stand for no host, and libvirt's clients would refuse the certificate.
    if name.starts_with("*.") && (name.ends_with('.') || name.split('.').count() < 3) {
        return Err(bad_host(
            name,
            "a wildcard needs two labels after it and no final dot (*.example.com): GnuTLS \
             matches this one to no host",
        ));
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    for (i, label) in name.split('.').enumerate() {
        if i == 0 && label == "*" && name.contains('.') {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return Err(bad_host(name, "a label is empty or over 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(bad_host(
                name,
                "labels are letters, digits and inner hyphens (IDN names in their xn-- form)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rsa_sizes_ring_signs_with_are_made() {
        for bits in KeyType::RSA_BITS {
            assert!(KeyType::Rsa { bits }.check().is_ok(), "{bits}");
        }
        for bits in [
            0,
            1024,
            2047,
            2049,
            2560,
            3000,
            4097,
            6144,
            8192,
            usize::MAX,
        ] {
            let started = std::time::Instant::now();
            let e = KeyType::Rsa { bits }.generate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArg);
            assert!(e.message().contains("use 2048, 3072 or 4096 bits"), "{e}");
            // Refused before a key is made, not after minutes of generation.
            assert!(started.elapsed().as_millis() < 100, "{bits}");
        }
        assert!(KeyType::EcdsaP256.check().is_ok() && KeyType::Ed25519.check().is_ok());
    }

    /// libvirt's server template: C, ST, L, O and CN, the CN also the first SAN; no CN, no
    /// certificate.
    #[test]
    fn a_server_with_a_whole_dn() {
        let ca = create_ca(&CaParams {
            common_name: "DN CA".into(),
            organization: None,
            validity: Validity::days_from_now(30),
            key_type: KeyType::EcdsaP256,
        })
        .unwrap();
        let ca = CertificateAuthority::from_issued(&ca).unwrap();
        let params = |dn: &str| ServerDnParams {
            dn: SubjectName::parse(dn).unwrap(),
            dns_names: vec!["host1".into()],
            ip_addresses: vec!["192.0.2.1".parse().unwrap()],
            validity: Validity::days_from_now(10),
            key_type: KeyType::EcdsaP256,
        };
        let dn = "C=GB,ST=London,L=London,O=Example,CN=host1.example.com";
        let issued = ca.issue_server_dn(&params(dn)).unwrap();
        assert_eq!(issued.certificate.subject(), dn);
        let sans: Vec<String> = issued
            .certificate
            .subject_alt_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(sans, ["DNS:host1.example.com", "DNS:host1", "IP:192.0.2.1"]);
        let e = ca.issue_server_dn(&params("C=GB,O=Example")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArg);
        assert!(e.message().contains("needs a CN"), "{e}");
        // The CN is checked as a host name, as --cn is.
        let e = ca
            .issue_server_dn(&params("O=Example,CN=not a host"))
            .unwrap_err();
        assert!(e.message().contains("is not a host name"), "{e}");
    }

    /// Why the sizes are a list, not a range: ring refuses a key between them.
    #[test]
    fn ring_refuses_an_rsa_key_of_2560_bits() {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2560).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let e =
            KeyPair::from_pkcs8_der_and_sign_algo(&der.as_bytes().into(), &rcgen::PKCS_RSA_SHA256)
                .unwrap_err();
        assert!(e.to_string().contains("512"), "{e}");
    }
}
