//! Test fixtures: certificates made on the fly with rcgen or the openssl command. The one home
//! of `date`, `now`, `Alg`, `Made` for the tests, the benchmarks and the fixture generators.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use virtpki::{CertDataType, Context, ContextFlags};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Seconds since the epoch for a civil date, for readable validity periods.
pub fn date(year: i32, month: u8, day: u8) -> i64 {
    let d =
        time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day).unwrap();
    d.midnight().assume_utc().unix_timestamp()
}

/// `t` (seconds since the epoch) as rcgen's time type.
pub fn odt(t: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t).unwrap()
}

/// The instant every fixture's validity is built around: 2026-06-01.
pub fn now() -> i64 {
    date(2026, 6, 1)
}

/// Which key algorithm a fixture uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    EcdsaP256,
    Ed25519,
    Rsa2048,
}

impl Alg {
    /// A short name, for benchmark labels.
    pub fn name(self) -> &'static str {
        match self {
            Alg::EcdsaP256 => "ecdsa_p256",
            Alg::Ed25519 => "ed25519",
            Alg::Rsa2048 => "rsa2048",
        }
    }

    /// The algorithm ring verifies signatures made with this key type with.
    pub fn ring_algorithm(self) -> &'static dyn ring::signature::VerificationAlgorithm {
        match self {
            Alg::EcdsaP256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
            Alg::Ed25519 => &ring::signature::ED25519,
            Alg::Rsa2048 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }

    /// A new key every call; RSA comes from the openssl command (ring cannot generate RSA
    /// keys), which is slow: [`key`] reuses one RSA key.
    pub fn new_key(self) -> KeyPair {
        match self {
            Alg::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            Alg::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
            Alg::Rsa2048 => {
                let out = Command::new("openssl")
                    .args([
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                    ])
                    .output()
                    .expect("openssl genpkey");
                assert!(
                    out.status.success(),
                    "openssl genpkey: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                KeyPair::from_pem(&String::from_utf8(out.stdout).unwrap()).unwrap()
            }
        }
    }
}

/// A key of `alg`: a new one, except RSA, made once per process (cached, it is slow).
pub fn key(alg: Alg) -> KeyPair {
    match alg {
        Alg::Rsa2048 => rsa_key(),
        other => other.new_key(),
    }
}

/// The one RSA key of this process.
fn rsa_key() -> KeyPair {
    use std::sync::OnceLock;
    static PEM: OnceLock<String> = OnceLock::new();
    let pem = PEM.get_or_init(|| Alg::Rsa2048.new_key().serialize_pem());
    KeyPair::from_pem(pem).unwrap()
}

/// What a fixture certificate should be.
#[derive(Clone)]
pub struct Spec {
    pub cn: String,
    /// An O before the CN: with `cn`, any text, control characters too (virtpki's own issuer
    /// refuses those), for tests of how hostile names read from files are shown.
    pub org: Option<String>,
    pub dns: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub ca: Option<bool>,
    pub key_usage: Option<Vec<KeyUsagePurpose>>,
    pub eku: Option<Vec<ExtendedKeyUsagePurpose>>,
    pub not_before: i64,
    pub not_after: i64,
    pub alg: Alg,
    pub serial: Option<u64>,
    /// Extensions written by hand, to control criticality (rcgen's own are then left out).
    pub custom: Vec<rcgen::CustomExtension>,
}

impl Spec {
    /// A CA: CA:TRUE, keyCertSign + cRLSign (rcgen marks both extensions critical).
    pub fn ca(cn: &str) -> Spec {
        Spec {
            cn: cn.into(),
            org: None,
            dns: vec![],
            ips: vec![],
            ca: Some(true),
            key_usage: Some(vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]),
            eku: None,
            not_before: date(2025, 1, 1),
            not_after: date(2030, 1, 1),
            alg: Alg::EcdsaP256,
            serial: None,
            custom: Vec::new(),
        }
    }

    /// A server leaf for `cn`, with it as DNS SAN, as libvirt's docs issue them.
    pub fn server(cn: &str) -> Spec {
        Spec {
            cn: cn.into(),
            dns: vec![cn.into()],
            ca: Some(false),
            key_usage: Some(vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ]),
            eku: Some(vec![ExtendedKeyUsagePurpose::ServerAuth]),
            ..Spec::ca(cn)
        }
    }

    /// A client leaf.
    pub fn client(cn: &str) -> Spec {
        Spec {
            dns: vec![],
            eku: Some(vec![ExtendedKeyUsagePurpose::ClientAuth]),
            ..Spec::server(cn)
        }
    }

    pub fn params(&self) -> CertificateParams {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(org) = &self.org {
            dn.push(DnType::OrganizationName, org.as_str());
        }
        dn.push(DnType::CommonName, self.cn.as_str());
        p.distinguished_name = dn;
        p.subject_alt_names = self
            .dns
            .iter()
            .map(|d| SanType::DnsName(d.clone().try_into().unwrap()))
            .chain(self.ips.iter().map(|ip| SanType::IpAddress(*ip)))
            .collect();
        p.is_ca = match self.ca {
            Some(true) => IsCa::Ca(BasicConstraints::Unconstrained),
            Some(false) => IsCa::ExplicitNoCa,
            None => IsCa::NoCa,
        };
        p.key_usages = self.key_usage.clone().unwrap_or_default();
        p.extended_key_usages = self.eku.clone().unwrap_or_default();
        p.not_before = odt(self.not_before);
        p.not_after = odt(self.not_after);
        if let Some(s) = self.serial {
            p.serial_number = Some(rcgen::SerialNumber::from(s));
        }
        p.use_authority_key_identifier_extension = true;
        p.custom_extensions = self.custom.clone();
        p
    }

    /// Replaces the key usage extension with one of `bits` (bit 0 = digitalSignature);
    /// `bits == 0` leaves the extension out.
    pub fn ku(mut self, bits: u16, critical: bool) -> Spec {
        self.key_usage = None;
        self.set_custom(&[2, 5, 29, 15], None);
        if bits != 0 {
            self.set_custom(
                &[2, 5, 29, 15],
                Some(ext(&[2, 5, 29, 15], key_usage_der(bits), critical)),
            );
        }
        self
    }

    fn set_custom(&mut self, oid: &[u64], extension: Option<rcgen::CustomExtension>) {
        self.custom
            .retain(|e| !e.oid_components().eq(oid.iter().copied()));
        self.custom.extend(extension);
    }

    /// Replaces the extended key usage extension with these purposes.
    pub fn eku(mut self, purposes: &[&[u8]], critical: bool) -> Spec {
        self.eku = None;
        let mut content = Vec::new();
        for oid in purposes {
            content.extend(tlv(0x06, oid));
        }
        self.set_custom(
            &[2, 5, 29, 37],
            Some(ext(&[2, 5, 29, 37], tlv(0x30, &content), critical)),
        );
        self
    }

    /// Replaces basic constraints with CA:`ca`, or removes them (`None`).
    pub fn bc(mut self, ca: Option<bool>, critical: bool) -> Spec {
        self.ca = None;
        self.set_custom(&[2, 5, 29, 19], None);
        if let Some(ca) = ca {
            let content = if ca { tlv(0x01, &[0xff]) } else { Vec::new() };
            self.set_custom(
                &[2, 5, 29, 19],
                Some(ext(&[2, 5, 29, 19], tlv(0x30, &content), critical)),
            );
        }
        self
    }

    /// With an O of `org` before the CN.
    pub fn org(mut self, org: &str) -> Spec {
        self.org = Some(org.into());
        self
    }

    pub fn valid(mut self, not_before: i64, not_after: i64) -> Spec {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    pub fn alg(mut self, alg: Alg) -> Spec {
        self.alg = alg;
        self
    }
}

/// Extended key usage OIDs (content octets).
pub const SERVER_AUTH: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 1];
pub const CLIENT_AUTH: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 2];
pub const CODE_SIGNING: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 3, 3];
pub const ANY_EKU: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// Key usage bits.
pub const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
pub const KU_KEY_ENCIPHERMENT: u16 = 1 << 2;
pub const KU_KEY_CERT_SIGN: u16 = 1 << 5;
pub const KU_CRL_SIGN: u16 = 1 << 6;

fn ext(oid: &[u64], content: Vec<u8>, critical: bool) -> rcgen::CustomExtension {
    let mut e = rcgen::CustomExtension::from_oid_content(oid, content);
    e.set_criticality(critical);
    e
}

/// A DER element with a short or long length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        let len = (content.len() as u32).to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn key_usage_der(bits: u16) -> Vec<u8> {
    let mut bytes = [0u8; 2];
    for i in 0..9 {
        if bits & (1 << i) != 0 {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
    }
    let len = if bytes[1] != 0 { 2 } else { 1 };
    let last = bytes[len - 1];
    let unused = if last == 0 {
        0
    } else {
        last.trailing_zeros() as u8
    };
    let mut content = vec![unused];
    content.extend_from_slice(&bytes[..len]);
    tlv(0x03, &content)
}

/// A certificate and its key.
pub struct Made {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
    pub params: CertificateParams,
}

impl Made {
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
    /// The key as libvirt can read it (PKCS#8 v1 for Ed25519, as `virtpki issue` writes).
    pub fn key_pem(&self) -> String {
        match virtpki::generate::ed25519_pkcs8_v1(&self.key.serialize_der()) {
            Some(v1) => ::pem::encode(&::pem::Pem::new("PRIVATE KEY", v1.to_vec())),
            None => self.key.serialize_pem(),
        }
    }
    /// The key as rcgen (ring) writes it: PKCS#8 v2 for Ed25519.
    pub fn key_pem_as_ring_writes(&self) -> String {
        self.key.serialize_pem()
    }
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
    /// The certificate as the library models it, as if a peer had sent it.
    pub fn parsed(&self) -> virtpki::Certificate {
        virtpki::Certificate::from_der(self.der(), virtpki::Source::Peer).expect("a certificate")
    }
}

/// The spec's parameters for `key`, with a subject key identifier even where rcgen leaves it
/// out (it writes one only with its own basic constraints).
fn params_for(spec: &Spec, key: &KeyPair) -> CertificateParams {
    let mut params = spec.params();
    if !matches!(spec.ca, Some(true) | Some(false)) {
        let id = params.key_identifier(key);
        params
            .custom_extensions
            .push(ext(&[2, 5, 29, 14], tlv(0x04, &id), false));
    }
    params
}

/// A self-signed certificate.
pub fn self_signed(spec: &Spec) -> Made {
    let key = key(spec.alg);
    let params = params_for(spec, &key);
    let cert = params.self_signed(&key).unwrap();
    Made { cert, key, params }
}

/// A certificate signed by `issuer`.
pub fn signed_by(spec: &Spec, issuer: &Made) -> Made {
    let key = key(spec.alg);
    let params = params_for(spec, &key);
    let cert = params.signed_by(&key, &issuer.issuer()).unwrap();
    Made { cert, key, params }
}

/// A client certificate of `spec` with the DN "C=GB,O=Test,CN=<cn>", signed by `issuer`; the
/// country is a PrintableString, as GnuTLS wants it (else libvirt's DN shows it in hex).
pub fn client_with_test_dn(spec: &Spec, issuer: &Made) -> Made {
    let mut params = spec.params();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        rcgen::DnValue::PrintableString("GB".try_into().unwrap()),
    );
    dn.push(DnType::OrganizationName, "Test");
    dn.push(DnType::CommonName, spec.cn.as_str());
    params.distinguished_name = dn;
    let key = key(spec.alg);
    let cert = params.signed_by(&key, &issuer.issuer()).unwrap();
    Made { cert, key, params }
}

/// Writes `contents` to `dir/name` with `mode`, returning the path.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Runs openssl with `args` in `dir`, panicking with its stderr on failure.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CRL from `ca` revoking `serials`, valid around `now()`, with CRL number 1.
pub fn crl_pem(ca: &Made, serials: &[u64]) -> String {
    crl_pem_numbered(ca, 1, serials)
}

/// A CRL from `ca` with CRL number `number` revoking `serials`, valid around `now()`.
pub fn crl_pem_numbered(ca: &Made, number: u64, serials: &[u64]) -> String {
    let t = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    rcgen::CertificateRevocationListParams {
        this_update: t(now() - 86400),
        next_update: t(now() + 86400 * 30),
        crl_number: rcgen::SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(*s),
                revocation_time: t(now() - 3600),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer())
    .unwrap()
    .pem()
    .unwrap()
}

/// A CA ("Session CA") with a server for "localhost" and 127.0.0.1 and a client
/// "C=GB,O=Test,CN=client1": the two ends of the loopback TLS tests.
pub struct Pki {
    pub ca: Made,
    pub server: Made,
    pub client: Made,
}

pub fn pki() -> Pki {
    let ca = self_signed(&Spec::ca("Session CA"));
    let mut server_spec = Spec::server("localhost");
    server_spec.ips = vec!["127.0.0.1".parse().unwrap()];
    let server = signed_by(&server_spec, &ca);
    let client = client_with_test_dn(&Spec::client("client1"), &ca);
    Pki { ca, server, client }
}

/// A context checking at [`now`], trusting `ca` if given.
pub fn context(flags: ContextFlags, ca: Option<&Made>) -> Arc<Context> {
    let ctx = Arc::new(Context::new(flags));
    ctx.set_verify_time(Some(now()));
    if let Some(ca) = ca {
        ctx.add_pem(CertDataType::CaCert, &ca.pem()).unwrap();
    }
    ctx
}

/// Gives `ctx` the certificate and key of `made`, as its server or its client identity.
pub fn with_identity(ctx: &Arc<Context>, made: &Made, server: bool) {
    let (c, k) = if server {
        (CertDataType::ServerCert, CertDataType::ServerKey)
    } else {
        (CertDataType::ClientCert, CertDataType::ClientKey)
    };
    ctx.add_pem(c, &made.pem()).unwrap();
    ctx.add_pem(k, &made.key_pem()).unwrap();
}

/// The daemon's context of `p`: its CA and server identity.
pub fn server_ctx(p: &Pki) -> Arc<Context> {
    let ctx = context(ContextFlags::default(), Some(&p.ca));
    with_identity(&ctx, &p.server, true);
    ctx
}

/// The client's context of `p`: its CA and client identity.
pub fn client_ctx(p: &Pki, flags: ContextFlags) -> Arc<Context> {
    let ctx = context(flags, Some(&p.ca));
    with_identity(&ctx, &p.client, false);
    ctx
}

/// Accepts one loopback TCP connection on `port` (0: any) in a thread, with a read timeout so
/// that a test cannot hang, and hands it to `then`; returns the port and the thread.
pub fn serve_one<T: Send + 'static>(
    port: u16,
    then: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
) -> (u16, std::thread::JoinHandle<T>) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        then(stream)
    });
    (port, handle)
}
