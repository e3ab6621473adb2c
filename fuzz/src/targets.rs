//! The bodies of the fuzz targets, as plain functions of the input bytes.
//!
//! Two builds include this file: the `virtpki-fuzz` crate (fuzz/, libFuzzer, `make fuzz`),
//! whose binaries in fuzz/fuzz_targets/ each call one function here, and the main crate's
//! `tests/suite/fuzz_corpora.rs`, which runs every file of fuzz/corpus/TARGET/ through the same
//! function on stable Rust in `cargo test`, so an input that once crashed stays fixed. So this
//! file depends on `virtpki` and std only.
//!
//! Every function panics (a crash for libFuzzer, a failed test for the replay) when the library
//! breaks a rule that must hold for any input: no `Internal` error, no panic, no control
//! character in text meant for people, and each target's own property.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use virtpki::cert::Validity as CertValidity;
use virtpki::daemon_conf::{audit, DaemonConf};
use virtpki::generate::{
    create_ca, CaParams, CertificateAuthority, ClientParams, KeyType, ServerParams, SubjectName,
    Validity,
};
use virtpki::pem::{self, Parsed};
use virtpki::{
    Acceptance, AllowedDnList, CertDataType, Certificate, Context, ContextFlags, Crl, ErrorKind,
    KnownServers, KnownServersStore, MemoryKnownServers, Role, Source, ValidatorAnswer,
    VerifyFlags,
};

/// One fuzz target: its name (the directory of its corpus) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order `make fuzz` runs them.
pub const TARGETS: &[Target] = &[
    ("pem_input", pem_input),
    ("certificate", certificate),
    ("crl", crl),
    ("known_servers", known_servers),
    ("daemon_conf", daemon_conf),
    ("dn_match", dn_match),
    ("subject_name", subject_name),
    ("verify", verify),
    ("c_api", c_api),
    ("vnc", vnc),
];

// ---- shared checks -------------------------------------------------------------------------

/// Fails on an `Internal` error: the library's word for "a bug in virtpki".
fn no_internal<T>(what: &str, result: &virtpki::Result<T>) {
    if let Err(e) = result {
        assert_ne!(e.kind(), ErrorKind::Internal, "{what}: INTERNAL error: {e}");
    }
}

/// Text shown to people may hold line breaks but no other control character: a certificate
/// must not be able to move the cursor or rewrite a terminal line.
fn assert_printable(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|&c| c.is_control() && c != '\n') {
        panic!("{what}: control character {c:?} in display text: {text:?}");
    }
}

/// The input read as a sequence of choices; past its end every choice is 0.
struct Choices<'a>(&'a [u8]);

impl<'a> Choices<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// A number below `n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A string of at most `max` bytes (lossy UTF-8), its length given by one byte.
    fn string(&mut self, max: usize) -> String {
        let len = self.below(max + 1).min(self.0.len());
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8_lossy(s).into_owned()
    }

    fn rest(&self) -> &'a [u8] {
        self.0
    }
}

/// A private directory for this process's files (known-servers stores), made once.
fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("virtpki-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .expect("chmod the scratch directory");
        dir
    })
}

/// Removes this process's scratch directory (the replay test calls it at the end).
pub fn remove_scratch_dir() {
    let _ = std::fs::remove_dir_all(scratch_dir());
}

// ---- PEM/DER input of every CertDataType ---------------------------------------------------

/// Byte 0: the `CertDataType` (low 3 bits) and the source (bit 3: a file, so DER is read;
/// bit 4: through a `Context`). The rest is the input.
pub fn pem_input(data: &[u8]) {
    let mut c = Choices(data);
    let sel = c.byte();
    let Some(ty) = CertDataType::from_code(i32::from(sel & 7) % 7) else {
        return;
    };
    let bytes = c.rest();
    let as_file = sel & 8 != 0;
    let source = if as_file {
        Source::File(PathBuf::from("/fuzz/input.pem"))
    } else {
        Source::Data
    };
    let parsed = pem::parse(ty, bytes, &source);
    no_internal("pem::parse", &parsed);
    if let Ok(parsed) = &parsed {
        match parsed {
            Parsed::Certificates(certs) => {
                assert!(!certs.is_empty(), "{ty}: accepted with no certificate");
                for cert in certs {
                    check_certificate(cert);
                }
            }
            Parsed::Crls(crls) => {
                assert!(!crls.is_empty(), "{ty}: accepted with no CRL");
                for crl in crls {
                    check_crl(crl);
                }
            }
            Parsed::PrivateKey(key) => {
                let _ = key.public_key_der();
                let _ = key.is_pkcs8_v2();
            }
        }
    }
    if sel & 16 != 0 {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let ctx = Context::new(ContextFlags::default());
            let added = ctx.add_pem(ty, text);
            no_internal("Context::add_pem", &added);
            for role in [Role::Client, Role::Server] {
                let report = ctx.check(role);
                assert_printable("Context::check", &report.to_text());
            }
        }
    }
}

// ---- certificates and DN strings -----------------------------------------------------------

/// Everything a certificate tells, asked once; display text must be printable.
fn check_certificate(cert: &Certificate) {
    let describe = cert.describe();
    assert_printable("Certificate::describe", &describe);
    // The DN string is libvirt's, byte for byte, so it is not escaped; but it must be what
    // the DN module makes of the raw name.
    let dn = virtpki::dn::name_to_libvirt_string(cert.subject_raw());
    assert_eq!(
        dn.as_deref().ok(),
        Some(cert.subject()),
        "subject DN string"
    );
    let issuer = virtpki::dn::name_to_libvirt_string(cert.issuer_raw());
    assert_eq!(
        issuer.as_deref().ok(),
        Some(cert.issuer()),
        "issuer DN string"
    );
    for san in cert.subject_alt_names() {
        let _ = san.to_string();
    }
    let _ = (
        cert.serial_hex(),
        cert.fingerprint_string(),
        cert.spki_fingerprint_string(),
    );
    let _ = (
        cert.validity_at(0),
        cert.validity_at(i64::MAX),
        cert.validity_at(i64::MIN),
    );
    let _ = (
        cert.key_usage().map(|k| k.names()),
        cert.extended_key_usage(),
    );
    let _ = (
        cert.basic_constraints(),
        cert.profile(),
        cert.key_algorithm().to_string(),
    );
    let _ = (cert.has_dns_or_ip_san(), cert.common_names(), cert.to_pem());
}

/// The input is one DER certificate; also a DER `Name` for the DN string.
pub fn certificate(data: &[u8]) {
    // The fast reader takes only what x509-parser reads, to the same fields (it panics if not).
    let canonical = virtpki::cert::check_canonical_reader(data);
    let cert = Certificate::from_der(data.to_vec(), Source::Peer);
    no_internal("Certificate::from_der", &cert);
    // Both readers agree then, so only GnuTLS's import rules (cert::import) may refuse it.
    if let (true, Err(e)) = (canonical, &cert) {
        assert!(
            e.message().contains("refuses to import"),
            "the canonical reader took a certificate that fails otherwise: {e}"
        );
    }
    if let Ok(cert) = cert {
        check_certificate(&cert);
        // Read again from PEM, as a file and as text: the same certificate.
        let pem = cert.to_pem();
        let again = pem::parse_chain(&pem).expect("the PEM of a parsed certificate parses");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].der().as_ref(), data);
    }
    no_internal(
        "name_to_libvirt_string",
        &virtpki::dn::name_to_libvirt_string(data),
    );
}

// ---- CRLs ------------------------------------------------------------------------------------

fn check_crl(crl: &Crl) {
    let _ = (crl.issuer(), crl.number().to_string(), crl.this_update());
    let _ = (crl.next_update(), crl.revoked_count(), crl.issuer_raw());
    let dn = virtpki::dn::name_to_libvirt_string(crl.issuer_raw());
    assert_eq!(
        dn.as_deref().ok(),
        Some(crl.issuer()),
        "CRL issuer DN string"
    );
}

/// The input is one DER CRL (and, read as a file, a PEM or DER CRL input).
pub fn crl(data: &[u8]) {
    let crl = Crl::from_der(data.to_vec(), Source::Peer, "fuzz CRL");
    no_internal("Crl::from_der", &crl);
    if let Ok(crl) = crl {
        check_crl(&crl);
    }
    let parsed = pem::parse(
        CertDataType::CaCrl,
        data,
        &Source::File(PathBuf::from("/fuzz/crl.pem")),
    );
    no_internal("pem::parse(CaCrl)", &parsed);
}

// ---- the known-servers file ----------------------------------------------------------------

/// A host no seed names: the round trip adds an entry for it and removes it again.
const ROUND_TRIP_HOST: &str = "round-trip.fuzz.invalid";

/// The input is a known-servers file. It is opened and looked up in; then an entry is added
/// and removed again, which writes the file twice: what was there must come back byte for
/// byte (a final newline is added to a last line without one).
pub fn known_servers(data: &[u8]) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let path = scratch_dir().join(format!("known-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, data).expect("write the store");
    run_known_servers(data, &path);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("lock"));
    let mut lock = path.clone().into_os_string();
    lock.push(".lock");
    let _ = std::fs::remove_file(lock);
}

fn run_known_servers(data: &[u8], path: &Path) {
    let store = KnownServers::open(path);
    no_internal("KnownServers::open", &store);
    let Ok(store) = store else { return };
    for problem in store.problems() {
        assert_printable("known-servers problem", &problem.to_string());
    }
    let entries = store.entries();
    let pool = pool();
    for host in ["host.example", "127.0.0.1", "::1", "a"] {
        for port in [None, Some(16514)] {
            let found = store.lookup(host, port, pool.server_ok.der());
            no_internal("KnownServers::lookup", &found);
        }
    }
    for entry in &entries {
        let _ = (entry.host(), entry.port(), entry.added());
    }
    // Read and written back unchanged, any file is the same bytes.
    assert!(
        virtpki::known::rewrite_unchanged(data) == data,
        "known-servers file not written back byte for byte: {:?}",
        String::from_utf8_lossy(data)
    );
    if data
        .windows(ROUND_TRIP_HOST.len())
        .any(|w| w.eq_ignore_ascii_case(ROUND_TRIP_HOST.as_bytes()))
        || data.is_empty()
    {
        // An entry for the host already there would be replaced; an empty file gets a
        // banner comment: no identity to expect.
        return;
    }
    let meaning = |store: &KnownServers| -> Vec<String> {
        let mut all: Vec<String> = store
            .entries()
            .iter()
            .map(|e| format!("{:?} {:?} {}", e.host(), e.port(), e.cert_sha256()))
            .collect();
        all.sort();
        all
    };
    let before = meaning(&store);
    let added = store.add(ROUND_TRIP_HOST, Some(1), pool.server_ok.der());
    no_internal("KnownServers::add", &added);
    if added.is_err() {
        return;
    }
    let removed = store.remove(ROUND_TRIP_HOST, Some(1));
    no_internal("KnownServers::remove", &removed);
    assert_eq!(removed.ok(), Some(true), "the entry just added is removed");
    // Nothing gained or lost, whatever the file looked like.
    let reopened = KnownServers::open(path).expect("reopen the store");
    assert_eq!(
        before,
        meaning(&reopened),
        "entries changed by add + remove"
    );
    let after = std::fs::read(path).expect("read the store back");
    // The first write may rightly change two things: a plain bundle (no '#' line) gets the
    // explicit "# host *" line above each certificate, and the old banner, which said the
    // opposite of what the store now does, is replaced. Anything else stays byte for byte.
    let plain_bundle = !data.contains(&b'#');
    let old_banner = data.starts_with(b"# Known servers (virtpki).");
    if plain_bundle || old_banner {
        return;
    }
    let mut expected = data.to_vec();
    if expected.last() != Some(&b'\n') {
        expected.push(b'\n');
    }
    assert!(
        after == expected,
        "known-servers file changed by add + remove:\nbefore {:?}\nafter  {:?}",
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(&after)
    );
}

// ---- libvirtd.conf -----------------------------------------------------------------------------

/// The input is a libvirtd.conf; it is parsed, its TLS settings read and audited (file checks
/// look under a directory that does not exist).
pub fn daemon_conf(data: &[u8]) {
    let conf = DaemonConf::parse(data, "libvirtd.conf");
    no_internal("DaemonConf::parse", &conf);
    let Ok(conf) = conf else { return };
    let settings = conf.tls_settings();
    for entry in conf.entries() {
        let _ = conf.location(entry.line);
    }
    let _ = conf.duplicates();
    let checks = audit(
        &conf,
        &settings,
        Path::new("/nonexistent/virtpki-fuzz-root"),
    );
    for check in checks {
        let _ = (
            check.setting,
            check.line,
            check.severity,
            check.message,
            check.fix,
        );
    }
}

// ---- tls_allowed_dn_list -----------------------------------------------------------------------

/// GLib's `g_pattern_match_simple`, written the obvious way: `*` any run of characters, `?`
/// one character, anything else itself, over the whole text. Dynamic programming over
/// (pattern position, text position), so it is slow but plainly right.
fn reference_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // row[j]: pattern[..i] matches text[..j].
    let mut row = vec![false; t.len() + 1];
    row[0] = true;
    for &pc in &p {
        let mut next = vec![false; t.len() + 1];
        if pc == '*' {
            let mut any = false;
            for j in 0..=t.len() {
                any |= row[j];
                next[j] = any;
            }
        } else {
            for j in 1..=t.len() {
                next[j] = row[j - 1] && (pc == '?' || pc == t[j - 1]);
            }
        }
        row = next;
    }
    row[t.len()]
}

/// The input is lines: every line but the last is a pattern, the last is the DN. The list's
/// first match must be the first pattern the reference matcher accepts.
pub fn dn_match(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let dn = lines.pop().unwrap_or("");
    if lines.len() > 64 || lines.iter().any(|l| l.len() > 256) || dn.len() > 1024 {
        return;
    }
    for pattern in &lines {
        assert_eq!(
            virtpki::dn_match::pattern_matches(pattern, dn),
            reference_match(pattern, dn),
            "pattern_matches({pattern:?}, {dn:?})"
        );
    }
    let list = AllowedDnList::new(&lines);
    let has_nul = lines.iter().any(|l| l.contains('\0'));
    match list {
        Err(e) => {
            assert!(has_nul, "AllowedDnList::new refused {lines:?}: {e}");
            assert_eq!(e.kind(), ErrorKind::InvalidArg);
        }
        Ok(list) => {
            assert!(!has_nul, "a pattern with NUL was accepted");
            let expected = lines.iter().copied().find(|p| reference_match(p, dn));
            assert_eq!(list.matching_pattern(dn), expected, "first match of {dn:?}");
            assert_eq!(list.is_allowed(dn), expected.is_some());
        }
    }
}

// ---- SubjectName -> issue -> DN string -----------------------------------------------------------

/// GnuTLS's escaping of one value in a DN string (see src/dn.rs): `\` before the specials,
/// a leading `#` or space and a trailing space.
fn reference_escape(value: &str) -> String {
    let mut out = String::new();
    let n = value.chars().count();
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';');
        if special || (i == 0 && (c == '#' || c == ' ')) || (i + 1 == n && c == ' ') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The input is a DN as `virtpki ca issue --dn` takes it. If it parses, a client certificate
/// is issued with it, and its DN string must be the attributes in order, escaped; parsing
/// that DN string must give back the same name.
pub fn subject_name(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let name = SubjectName::parse(text);
    no_internal("SubjectName::parse", &name);
    let Ok(name) = name else { return };
    let pool = pool();
    let issued = pool.ca1.issue_client(&ClientParams {
        dn: name.clone(),
        validity: Validity::days_from_now(30),
        key_type: KeyType::Ed25519,
    });
    no_internal("issue_client", &issued);
    let Ok(issued) = issued else { return };
    let dn = issued.certificate.subject();
    let parts: Vec<String> = name
        .attributes()
        .iter()
        .map(|(attr, value)| {
            if value.contains('\0') {
                // GnuTLS prints such a value as hex of its DER; checked loosely.
                format!("{}=#", attr.name())
            } else {
                format!("{}={}", attr.name(), reference_escape(value))
            }
        })
        .collect();
    if name.attributes().iter().any(|(_, v)| v.contains('\0')) {
        for part in &parts {
            assert!(dn.contains(part.as_str()), "{dn:?} lacks {part:?}");
        }
        return;
    }
    assert_eq!(dn, parts.join(","), "DN string of the issued certificate");
    let again = SubjectName::parse(dn);
    assert_eq!(
        again.ok().as_ref(),
        Some(&name),
        "the DN string {dn:?} parsed again"
    );
    assert_printable("describe", &issued.certificate.describe());
}

// ---- verification over a pool of certificates ------------------------------------------------

/// Certificates made once per process: two CAs with the same name and different keys, leaves
/// that are good, expired, not yet valid and revoked under both, clashing host names and DNs,
/// and junk "CA" certificates that claim the CAs' name but are signed by throwaway keys.
struct Pool {
    ca1: CertificateAuthority,
    ca1_pem: String,
    ca2_pem: String,
    crl1_pem: String,
    crl2_pem: String,
    server_ok: Certificate,
    /// Every leaf: PEM, certificate, and whether it is revoked by its CA's CRL.
    leaves: Vec<Leaf>,
    /// Self-issued certificates with the CAs' subject, throwaway keys.
    junk: Vec<Certificate>,
}

struct Leaf {
    pem: String,
    cert: Certificate,
    /// Which CA issued it: 0 or 1.
    ca: usize,
    /// Revoked by that CA's CRL.
    revoked: bool,
    /// The host names and addresses it names (normalized: lowercase, no final dot).
    names: Vec<String>,
}

/// A host as the known-servers store keys it, for the pool's host names.
fn normalized(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

const HOSTS: [&str; 6] = [
    "host.example",
    "other.example",
    "HOST.EXAMPLE.",
    "127.0.0.1",
    "::1",
    "fe80::1%eth0",
];

const CA_NAME: &str = "Fuzz CA";

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(make_pool)
}

fn make_pool() -> Pool {
    let now = virtpki::timefmt::now();
    let day = 86_400;
    let ca_params = CaParams {
        common_name: CA_NAME.into(),
        organization: Some("Fuzz".into()),
        validity: Validity {
            now: now - 1000 * day,
            days: 5000,
        },
        key_type: KeyType::Ed25519,
    };
    let ca1_issued = create_ca(&ca_params).expect("CA 1");
    let ca2_issued = create_ca(&ca_params).expect("CA 2");
    let ca1 = CertificateAuthority::from_issued(&ca1_issued).expect("CA 1");
    let ca2 = CertificateAuthority::from_issued(&ca2_issued).expect("CA 2");
    let windows = [
        (Validity { now, days: 365 }, "ok"),
        (
            Validity {
                now: now - 400 * day,
                days: 30,
            },
            "expired",
        ),
        (
            Validity {
                now: now + 30 * day,
                days: 30,
            },
            "not yet valid",
        ),
        (Validity { now, days: 365 }, "revoked"),
    ];
    let mut leaves = Vec::new();
    let mut crls = Vec::new();
    for (i, ca) in [&ca1, &ca2].into_iter().enumerate() {
        let mut to_revoke = Vec::new();
        for (validity, what) in windows {
            let server = ca
                .issue_server(&ServerParams {
                    common_name: "host.example".into(),
                    dns_names: vec!["other.example".into()],
                    ip_addresses: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
                    organization: None,
                    validity,
                    key_type: KeyType::Ed25519,
                })
                .expect("server leaf");
            let client = ca
                .issue_client(&ClientParams {
                    dn: SubjectName::parse("C=GB,O=Fuzz,CN=client").unwrap(),
                    validity,
                    key_type: KeyType::Ed25519,
                })
                .expect("client leaf");
            let server_names = ["host.example", "other.example", "127.0.0.1", "::1"];
            for (issued, names) in [(server, &server_names[..]), (client, &[][..])] {
                if what == "revoked" {
                    to_revoke.push(issued.certificate.clone());
                }
                leaves.push(Leaf {
                    pem: issued.cert_pem,
                    cert: issued.certificate,
                    ca: i,
                    revoked: what == "revoked",
                    names: names.iter().map(|n| n.to_string()).collect(),
                });
            }
        }
        // A server certificate for another host only, whose CN is a clashing name.
        let other = ca
            .issue_server(&ServerParams {
                common_name: format!("host{i}.example"),
                dns_names: vec![],
                ip_addresses: vec![],
                organization: Some(CA_NAME.into()),
                validity: Validity { now, days: 365 },
                key_type: KeyType::Ed25519,
            })
            .expect("other leaf");
        leaves.push(Leaf {
            pem: other.cert_pem,
            cert: other.certificate,
            ca: i,
            revoked: false,
            names: vec![format!("host{i}.example")],
        });
        let crl = ca
            .revoke(None, &to_revoke, &Validity { now, days: 30 })
            .expect("CRL");
        crls.push(crl.pem);
    }
    let junk = (0..6)
        .map(|_| create_ca(&ca_params).expect("junk CA").certificate)
        .collect();
    let crl2_pem = crls.pop().expect("CRL 2");
    let crl1_pem = crls.pop().expect("CRL 1");
    Pool {
        ca1,
        ca1_pem: ca1_issued.cert_pem,
        ca2_pem: ca2_issued.cert_pem,
        crl1_pem,
        crl2_pem,
        server_ok: leaves[0].cert.clone(),
        leaves,
        junk,
    }
}

/// Structure-aware: the bytes choose the context (which CAs and CRLs, flags, pins, a
/// validator), the leaf, the certificates after it and the host. Whatever is chosen, an
/// expired, not-yet-valid or revoked leaf (revoked by a CRL the context holds) is never
/// accepted unless `NO_VERIFY` is asked for.
pub fn verify(data: &[u8]) {
    let pool = pool();
    let mut c = Choices(data);
    let setup = c.byte();
    let mut flags = ContextFlags::default();
    if setup & 1 != 0 {
        flags = flags | ContextFlags::REQUIRE_SAN;
    }
    if setup & 2 != 0 {
        flags = flags | ContextFlags::PROMPT_UNVERIFIED;
    }
    let ctx = Context::new(flags | ContextFlags::NO_SANITY);
    let mut crl1 = false;
    let mut crl2 = false;
    let ca1 = setup & 4 != 0;
    let ca2 = setup & 8 != 0;
    if ca1 {
        no_internal(
            "add CA 1",
            &ctx.add_pem(CertDataType::CaCert, &pool.ca1_pem),
        );
    }
    if ca2 {
        no_internal(
            "add CA 2",
            &ctx.add_pem(CertDataType::CaCert, &pool.ca2_pem),
        );
    }
    if setup & 16 != 0 {
        crl1 = ctx.add_pem(CertDataType::CaCrl, &pool.crl1_pem).is_ok();
    }
    if setup & 32 != 0 {
        crl2 = ctx.add_pem(CertDataType::CaCrl, &pool.crl2_pem).is_ok();
    }
    let leaf_index = c.below(pool.leaves.len());
    let leaf = &pool.leaves[leaf_index];
    // Pins: SERVER_TRUSTED (any host) and known-servers entries for chosen hosts.
    let pins = c.byte();
    if pins & 1 != 0 {
        let _ = ctx.add_pem(CertDataType::ServerTrusted, &leaf.pem);
    }
    if pins & 2 != 0 {
        let other = &pool.leaves[c.below(pool.leaves.len())];
        let _ = ctx.add_pem(CertDataType::ServerTrusted, &other.pem);
    }
    let store = Arc::new(MemoryKnownServers::new());
    // What the store holds for each (host, port): the last certificate added wins.
    let mut bound: Vec<(String, Option<u16>, &Certificate)> = Vec::new();
    let n_known = c.below(4);
    for _ in 0..n_known {
        let host = HOSTS[c.below(HOSTS.len())];
        let port = if c.flag() { Some(16514) } else { None };
        let which = &pool.leaves[c.below(pool.leaves.len())];
        let pin = if c.flag() { &leaf.cert } else { &which.cert };
        if store.add(host, port, pin.der()).is_ok() {
            bound.retain(|(h, p, _)| !(*h == normalized(host) && *p == port));
            bound.push((normalized(host), port, pin));
        }
    }
    ctx.set_known_servers(Some(store));
    if pins & 4 != 0 {
        let answer = if pins & 8 != 0 {
            ValidatorAnswer::AcceptAlways
        } else {
            ValidatorAnswer::AcceptOnce
        };
        ctx.set_validator(Some(Arc::new(move |_: &virtpki::ValidationRequest<'_>| {
            answer
        })));
    }
    // The chain: the leaf, then up to 8 certificates from the pool, the junk or the CAs.
    let mut chain = vec![leaf.cert.clone()];
    for _ in 0..c.below(9) {
        let pick = c.below(pool.leaves.len() + pool.junk.len() + 2);
        let cert = if pick < pool.leaves.len() {
            pool.leaves[pick].cert.clone()
        } else if pick < pool.leaves.len() + pool.junk.len() {
            pool.junk[pick - pool.leaves.len()].clone()
        } else {
            let pem = if pick % 2 == 0 {
                &pool.ca1_pem
            } else {
                &pool.ca2_pem
            };
            pem::parse_chain(pem).expect("CA PEM").remove(0)
        };
        chain.push(cert);
    }
    let host_pick = c.below(HOSTS.len() + 1);
    let host = if host_pick < HOSTS.len() {
        HOSTS[host_pick].to_owned()
    } else {
        c.string(40)
    };
    let port = match c.below(3) {
        0 => None,
        1 => Some(16514),
        _ => Some(1),
    };
    let no_verify = c.byte() & 1 == 1;
    let vflags = if no_verify {
        VerifyFlags::NO_VERIFY
    } else {
        VerifyFlags::default()
    };
    if c.flag() {
        let patterns = [c.string(30), "C=GB,O=Fuzz,CN=*".to_owned()];
        let n = c.below(3);
        let _ = ctx.set_allowed_dn_list(Some(&patterns[..n.min(2)]));
    }

    let now = ctx.now();
    let validity = leaf.cert.validity_at(now);
    // Revoked as far as this context can know: its CA's CRL is loaded, and so is the CA (a
    // CRL whose issuer is not loaded cannot be checked, so it is not counted on here).
    let revoked = leaf.revoked && [crl1 && ca1, crl2 && ca2][leaf.ca];
    let bad = match validity {
        CertValidity::Expired => Some("expired"),
        CertValidity::NotYetValid => Some("not yet valid"),
        CertValidity::Valid if revoked => Some("revoked"),
        CertValidity::Valid => None,
    };

    let server = ctx.verify_server(&host, port, &chain, vflags);
    no_internal("verify_server", &server);
    if let (Ok(verdict), Some(why), false) = (&server, bad, no_verify) {
        panic!(
            "verify_server accepted a {why} leaf ({}) for {host:?}: {:?}, chain of {}",
            leaf.cert.subject(),
            verdict.acceptance,
            chain.len()
        );
    }
    // A certificate that does not name the host passes only through an entry for this host
    // (and port, or any port) holding exactly it: not through a trusted certificate for any
    // host, nor through verification. (The validator may accept it: the application's call.)
    if let (Ok(verdict), false, true) = (&server, no_verify, host_pick < HOSTS.len()) {
        let host_n = normalized(&host);
        let names_host = leaf.names.contains(&host_n);
        let pinned_here = bound.iter().any(|(h, p, cert)| {
            *h == host_n && (p.is_none() || *p == port) && cert.der() == leaf.cert.der()
        });
        let allowed = match verdict.acceptance {
            Acceptance::Verified => names_host,
            Acceptance::Pinned => names_host || pinned_here,
            _ => true,
        };
        assert!(
            allowed,
            "verify_server accepted {} for {host:?} port {port:?} ({:?}), which it does not \
             name, without an entry for that host",
            leaf.cert.subject(),
            verdict.acceptance
        );
    }
    let client = ctx.verify_client(&chain, vflags);
    no_internal("verify_client", &client);
    if let (Ok(_), Some(why), false) = (&client, bad, no_verify) {
        panic!(
            "verify_client accepted a {why} leaf ({}), chain of {}",
            leaf.cert.subject(),
            chain.len()
        );
    }
    if let Err(e) = &server {
        assert_printable("verify_server error", e.message());
    }
}

// ---- the C entry points ------------------------------------------------------------------------

/// The input is NUL-separated strings; byte 0 chooses the entry points and their integer
/// arguments. Every failure must have a code other than INTERNAL; returned text is freed.
pub fn c_api(data: &[u8]) {
    use std::ffi::{c_char, CStr, CString};
    use virtpki::ffi::{cert, context, errors, verify};

    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut strings: Vec<CString> = rest
        .split(|&b| b == 0)
        .map(|s| CString::new(s).expect("split on NUL"))
        .collect();
    while strings.len() < 4 {
        strings.push(CString::default());
    }
    let s = |i: usize| strings[i % strings.len()].as_ptr();
    let check = |what: &str, failed: bool| {
        if failed {
            let code = errors::virPKIGetLastErrorCode();
            let msg = errors::virPKIGetLastErrorMessage();
            let msg = if msg.is_null() {
                String::new()
            } else {
                // SAFETY: the library's NUL-terminated message, valid until the next call.
                unsafe { CStr::from_ptr(msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            assert_ne!(code, ErrorKind::Internal.code(), "{what}: INTERNAL: {msg}");
        }
        errors::virPKIResetLastError();
    };
    let take = |what: &str, p: *mut c_char| {
        check(what, p.is_null());
        if !p.is_null() {
            // SAFETY: a string the library returned, freed once below.
            let text = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
            if what == "virPKICertDescribe" {
                assert_printable(what, &text);
            }
            // SAFETY: the library's string, freed once and not used after.
            unsafe { errors::virPKIFree(p.cast()) };
        }
    };
    // SAFETY: (every call below) valid NUL-terminated strings that outlive the call, and a
    // context from virPKIContextNew freed once at the end.
    unsafe {
        match sel % 4 {
            0 => {
                take("virPKICertGetDN", cert::virPKICertGetDN(s(0)));
                take("virPKICertFingerprint", cert::virPKICertFingerprint(s(0)));
                take("virPKICertDescribe", cert::virPKICertDescribe(s(0)));
                let m = cert::virPKIDNMatch(s(1), s(2));
                check("virPKIDNMatch", m < 0);
            }
            _ => {
                let ctx = context::virPKIContextNew(u32::from(sel >> 4) & 7);
                assert!(!ctx.is_null());
                let pool = pool();
                if sel & 4 != 0 {
                    let ca = CString::new(pool.ca1_pem.clone()).unwrap();
                    let r = context::virPKIContextAddCertData(ctx, 0, ca.as_ptr());
                    check("virPKIContextAddCertData(CA)", r != 0);
                }
                let ty = i32::from(sel >> 5) - 1;
                let r = context::virPKIContextAddCertData(ctx, ty, s(0));
                check("virPKIContextAddCertData", r != 0);
                let patterns = [s(1), s(2)];
                let n = i32::from(sel & 3) - 1;
                let r = context::virPKIContextSetAllowedDNList(ctx, patterns.as_ptr(), n.min(2));
                check("virPKIContextSetAllowedDNList", r != 0);
                let r = verify::virPKIContextVerifyServer(
                    ctx,
                    s(2),
                    i32::from(sel & 8) * 2000,
                    s(3),
                    0,
                );
                check("virPKIContextVerifyServer", r != 0);
                let mut dn: *mut c_char = std::ptr::null_mut();
                let r = verify::virPKIContextVerifyClient(ctx, s(3), &mut dn, 0);
                check("virPKIContextVerifyClient", r != 0);
                if !dn.is_null() {
                    errors::virPKIFree(dn.cast());
                }
                for role in 0..2 {
                    let mut report: *mut c_char = std::ptr::null_mut();
                    let r = verify::virPKIContextCheck(ctx, role, &mut report);
                    // A failed check is an answer, not an error of the call.
                    if r != 0 {
                        check("virPKIContextCheck", true);
                    }
                    if !report.is_null() {
                        let text = CStr::from_ptr(report).to_string_lossy().into_owned();
                        assert_printable("virPKIContextCheck report", &text);
                        errors::virPKIFree(report.cast());
                    }
                }
                context::virPKIContextFree(ctx);
            }
        }
    }
}

// ---- VNC: RFB and VeNCrypt up to the TLS switch --------------------------------------------------

/// A server that says `input` whatever the client does; the client's bytes are kept.
struct Scripted<'a> {
    input: &'a [u8],
    sent: Vec<u8>,
}

impl std::io::Read for Scripted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte at a time now and then, as a network may deliver it.
        let n = buf
            .len()
            .min(self.input.len())
            .min(if self.input.len().is_multiple_of(3) {
                1
            } else {
                7
            });
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl std::io::Write for Scripted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sent.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The input is what the server sends. The client never fails with INTERNAL, its messages are
/// printable, it sends at most the 19 bytes of its side (plus a "cannot choose" 0), and what it
/// chose is an x509 sub-type the server offered and acknowledged with 1.
pub fn vnc(data: &[u8]) {
    let mut peer = Scripted {
        input: data,
        sent: Vec::new(),
    };
    let result = virtpki::vnc::negotiate(&mut peer);
    no_internal("vnc::negotiate", &result);
    assert!(
        peer.sent.len() <= 19,
        "the client sent {} bytes",
        peer.sent.len()
    );
    match result {
        Ok(n) => {
            assert!(n.chosen.is_x509(), "chose {}", n.chosen);
            assert!(n.subtypes.contains(&n.chosen));
            assert!(n.security_types.contains(&virtpki::vnc::SECURITY_VENCRYPT));
            assert_eq!(peer.sent.len(), 19);
            assert_eq!(&peer.sent[15..], &n.chosen.0.to_be_bytes());
            // The acknowledgement byte was the last one used and it was 1.
            let used = data.len() - peer.input.len();
            assert_eq!(data[used - 1], 1);
        }
        Err(e) => assert_printable("vnc::negotiate error", e.message()),
    }
}
