//! The DN string must be byte-identical to GnuTLS's `gnutls_x509_crt_get_dn()`, which libvirt
//! uses for `tls_allowed_dn_list` and `virt-pki-query-dn`. The expected strings below were
//! produced by `virt-pki-query-dn` of libvirt 9.0.0 with GnuTLS 3.7.9 (Debian 12) on the same
//! subjects; when that tool is installed, the test also asks it directly.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::openssl_args::NEW_P256_KEY;
use common::*;
use rcgen::{DistinguishedName, DnType, DnValue};
use virtpki::{Certificate, Source};

/// Subjects made by the openssl command (the only way to get multi-valued RDNs and repeated
/// attributes), with the DN GnuTLS prints for each.
const OPENSSL_SUBJECTS: &[(&str, &str)] = &[
    (
        "/C=GB/ST=London/L=London/O=Libvirt Project/CN=client1",
        "C=GB,ST=London,L=London,O=Libvirt Project,CN=client1",
    ),
    ("/O=Acme, Inc./CN=a\\+b", "O=Acme\\, Inc.,CN=a\\+b"),
    ("/CN=#hash", "CN=\\#hash"),
    ("/CN=a#b", "CN=a#b"),
    ("/CN=x;y<z>\"q\\\\r=s", "CN=x\\;y\\<z\\>\\\"q\\\\r=s"),
    ("/O=Zürich Ünïcode/CN=日本語", "O=Zürich Ünïcode,CN=日本語"),
    (
        "/DC=com/DC=example/UID=jdoe/emailAddress=jdoe@example.com/CN=J Doe",
        "DC=com,DC=example,UID=jdoe,EMAIL=jdoe@example.com,CN=J Doe",
    ),
    (
        "/serialNumber=1234/title=Dr/street=1 Main St/postalCode=AB1/CN=x",
        "serialNumber=1234,title=Dr,street=1 Main St,postalCode=AB1,CN=x",
    ),
    (
        "/GN=Ann/SN=Lee/initials=AL/description=d/pseudonym=p/CN=x",
        "givenName=Ann,surName=Lee,initials=AL,description=d,pseudonym=p,CN=x",
    ),
    ("/OU=b+CN=a/O=multi", "CN=a+OU=b,O=multi"),
    ("/C=GB/OU=one/OU=two/CN=c", "C=GB,OU=one,OU=two,CN=c"),
];

/// Subjects openssl writes with its "default" string mask, which makes T61Strings of
/// non-ASCII Latin-1 text: GnuTLS prints their octets in hex.
const T61_SUBJECTS: &[(&str, &str)] = &[
    ("/CN=Café", "CN=\\#436166e9"),
    ("/O=Org/CN=Zoë", "O=Org,CN=\\#5a6feb"),
];

/// Subjects made with rcgen, for string types the openssl command will not write.
fn rcgen_subjects() -> Vec<(DistinguishedName, &'static str)> {
    let one = |ty: DnType, v: DnValue| {
        let mut dn = DistinguishedName::new();
        dn.push(ty, v);
        dn
    };
    vec![
        // A country as UTF8String: GnuTLS wants PrintableString and prints hex.
        (
            one(DnType::CountryName, DnValue::Utf8String("GB".into())),
            "C=#0c024742",
        ),
        (
            one(
                DnType::CommonName,
                DnValue::BmpString("été".try_into().unwrap()),
            ),
            "CN=été",
        ),
        (
            one(
                DnType::CommonName,
                DnValue::TeletexString("plain".try_into().unwrap()),
            ),
            "CN=plain",
        ),
        (
            one(
                DnType::CommonName,
                DnValue::UniversalString("u".try_into().unwrap()),
            ),
            "CN=\\#00000075",
        ),
        (
            one(
                DnType::CommonName,
                DnValue::UniversalString("ú".try_into().unwrap()),
            ),
            "CN=\\#000000fa",
        ),
        (
            one(DnType::CommonName, DnValue::Utf8String("a\0b".into())),
            "CN=#0c03610062",
        ),
        (
            one(
                DnType::CustomDnType(vec![1, 2, 3, 4]),
                DnValue::Utf8String("foo".into()),
            ),
            "1.2.3.4=#0c03666f6f",
        ),
        (
            one(
                DnType::CommonName,
                DnValue::Ia5String("ia5".try_into().unwrap()),
            ),
            "CN=#1603696135",
        ),
        (
            one(
                DnType::CommonName,
                DnValue::PrintableString("p s".try_into().unwrap()),
            ),
            "CN=p s",
        ),
        (
            one(DnType::CommonName, DnValue::Utf8String(" both ".into())),
            "CN=\\ both\\ ",
        ),
        (
            one(
                DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
                DnValue::Utf8String("com".into()),
            ),
            "DC=#0c03636f6d",
        ),
    ]
}

fn openssl_cert(dir: &Path, i: usize, subject: &str) -> PathBuf {
    openssl_cert_with(dir, &format!("openssl{i}.pem"), subject, &[])
}

/// A certificate made with `openssl req` and its `extra` arguments.
fn openssl_cert_with(dir: &Path, name: &str, subject: &str, extra: &[&str]) -> PathBuf {
    let mut args = [
        &["req", "-x509", "-new"],
        NEW_P256_KEY,
        &[
            "-keyout",
            "/dev/null",
            "-days",
            "1",
            "-utf8",
            "-multivalue-rdn",
            "-subj",
            subject,
            "-out",
            name,
        ],
    ]
    .concat();
    args.extend_from_slice(extra);
    openssl(dir, &args);
    dir.join(name)
}

/// A certificate whose subject openssl encodes with its "default" string mask (T61String).
fn t61_cert(dir: &Path, i: usize, subject: &str) -> PathBuf {
    let config = dir.join("t61.cnf");
    std::fs::write(
        &config,
        "[req]\ndistinguished_name = dn\nstring_mask = default\n[dn]\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    openssl_cert_with(dir, &format!("t61-{i}.pem"), subject, &["-config", &config])
}

fn rcgen_cert(dir: &Path, i: usize, dn: DistinguishedName) -> PathBuf {
    let mut params = Spec::client("x").params();
    params.distinguished_name = dn;
    let key = key(Alg::EcdsaP256);
    let cert = params.self_signed(&key).unwrap();
    write(dir, &format!("rcgen{i}.pem"), cert.pem(), 0o644)
}

fn our_dn(path: &Path) -> String {
    let der = ::pem::parse(std::fs::read(path).unwrap())
        .unwrap()
        .into_contents();
    Certificate::from_der(der, Source::File(path.into()))
        .unwrap()
        .subject()
        .to_owned()
}

/// Every fixture with its expected DN.
fn fixtures(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut all = Vec::new();
    for (i, (subject, expected)) in OPENSSL_SUBJECTS.iter().enumerate() {
        all.push((openssl_cert(dir, i, subject), *expected));
    }
    for (i, (subject, expected)) in T61_SUBJECTS.iter().enumerate() {
        all.push((t61_cert(dir, i, subject), *expected));
    }
    for (i, (dn, expected)) in rcgen_subjects().into_iter().enumerate() {
        all.push((rcgen_cert(dir, i, dn), expected));
    }
    all
}

#[test]
fn dn_strings_equal_gnutls_compat_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for (path, expected) in fixtures(dir.path()) {
        let ours = our_dn(&path);
        if ours != expected {
            wrong.push(format!(
                "{}: ours {ours:?}, GnuTLS {expected:?}",
                path.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Cross-check with the real tool where it is installed (CI installs libvirt-clients).
#[test]
fn dn_strings_equal_virt_pki_query_dn() {
    let Ok(tool) = which("virt-pki-query-dn") else {
        // CI installs it (scripts/install-test-deps.sh): there its absence is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "virt-pki-query-dn is not installed"
        );
        eprintln!("virt-pki-query-dn not installed: cross-check not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for (path, _) in fixtures(dir.path()) {
        let out = Command::new(&tool).arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_owned();
        let ours = our_dn(&path);
        if ours != theirs {
            wrong.push(format!(
                "{}: ours {ours:?}, virt-pki-query-dn {theirs:?}",
                path.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn which(tool: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or(())
}
