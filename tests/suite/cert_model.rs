//! The certificate model against what openssl says about the same certificates.

use crate::common;

use std::net::IpAddr;
use std::process::Command;

use common::openssl_args::NEW_P256_KEY;
use common::*;
use virtpki::cert::{KeyAlgorithm, SubjectAltName, Validity};
use virtpki::{CertDataType, Certificate, Context, ContextFlags, ErrorKind, Role, Source};

fn parse(pem: &str) -> Certificate {
    let der = ::pem::parse(pem).unwrap().into_contents();
    Certificate::from_der(der, Source::Data).unwrap()
}

fn openssl_output(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn fingerprints_equal_openssls() {
    let dir = tempfile::tempdir().unwrap();
    let made = self_signed(&Spec::server("fp.example.com"));
    write(dir.path(), "c.pem", made.pem(), 0o644);
    let theirs = openssl_output(
        dir.path(),
        &["x509", "-in", "c.pem", "-noout", "-fingerprint", "-sha256"],
    );
    let theirs = theirs.trim().rsplit('=').next().unwrap().replace(':', "");
    let cert = parse(&made.pem());
    assert_eq!(cert.fingerprint_string(), format!("SHA256:{theirs}"));
    // The public key's fingerprint: SHA-256 of the DER SubjectPublicKeyInfo.
    let spki = Command::new("sh")
        .current_dir(dir.path())
        .args(["-c", "openssl x509 -in c.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r"])
        .output()
        .unwrap();
    let spki_hex = String::from_utf8(spki.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_uppercase();
    assert_eq!(cert.spki_fingerprint_string(), format!("SHA256:{spki_hex}"));
}

#[test]
fn renewal_keeps_the_public_key_fingerprint() {
    let key = key(Alg::EcdsaP256);
    let spec = Spec::server("renew.example.com");
    let first = parse(&spec.params().self_signed(&key).unwrap().pem());
    let renewed = parse(
        &Spec {
            not_after: date(2031, 1, 1),
            ..spec.clone()
        }
        .params()
        .self_signed(&key)
        .unwrap()
        .pem(),
    );
    let rekeyed = parse(&self_signed(&spec).pem());
    assert_ne!(first.fingerprint(), renewed.fingerprint());
    assert_eq!(first.spki_fingerprint(), renewed.spki_fingerprint());
    assert_ne!(first.spki_fingerprint(), rekeyed.spki_fingerprint());
}

#[test]
fn names_validity_and_extensions() {
    let mut spec = Spec::server("host.example.com");
    spec.dns.push("*.example.com".into());
    spec.ips = vec!["192.0.2.7".parse().unwrap(), "2001:db8::1".parse().unwrap()];
    let cert = parse(&self_signed(&spec.eku(&[SERVER_AUTH, ANY_EKU, CODE_SIGNING], true)).pem());
    assert_eq!(
        cert.subject_alt_names(),
        [
            SubjectAltName::Dns("host.example.com".into()),
            SubjectAltName::Dns("*.example.com".into()),
            SubjectAltName::Ip("192.0.2.7".parse::<IpAddr>().unwrap()),
            SubjectAltName::Ip("2001:db8::1".parse::<IpAddr>().unwrap()),
        ]
    );
    assert!(cert.has_dns_or_ip_san());
    assert_eq!(cert.common_names(), ["host.example.com"]);
    assert_eq!(cert.validity_at(now()), Validity::Valid);
    assert_eq!(cert.validity_at(date(2024, 1, 1)), Validity::NotYetValid);
    assert_eq!(cert.validity_at(date(2031, 1, 1)), Validity::Expired);
    let bc = cert.basic_constraints().unwrap();
    assert!(!bc.ca && bc.critical);
    let ku = cert.key_usage().unwrap();
    assert_eq!(ku.names(), ["digitalSignature", "keyEncipherment"]);
    let eku = cert.extended_key_usage().unwrap();
    assert!(eku.server_auth && eku.any && !eku.client_auth && eku.critical);
    assert_eq!(eku.others, ["codeSigning"]);
    assert_eq!(
        cert.key_algorithm(),
        &KeyAlgorithm::Ecdsa {
            curve: "P-256".into()
        }
    );
    assert_eq!(cert.signature_algorithm(), "ecdsa-with-SHA256");
    assert_eq!(cert.version(), 3);
    let text = cert.describe();
    for line in [
        "Subject: CN=host.example.com\n",
        "Subject alternative names: DNS:host.example.com, DNS:*.example.com, IP:192.0.2.7, IP:2001:db8::1\n",
        "Validity: 2025-01-01 00:00:00 UTC to 2030-01-01 00:00:00 UTC\n",
        "Public key: ECDSA P-256\n",
        "Key usage: digitalSignature, keyEncipherment (critical)\n",
        "Extended key usage: TLS server (serverAuth), any (anyExtendedKeyUsage), codeSigning (critical)\n",
        "Basic constraints: CA:FALSE (critical)\n",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    assert!(text.contains(&cert.fingerprint_string()));
}

#[test]
fn key_algorithms_and_sizes() {
    let rsa = parse(&self_signed(&Spec::ca("r").alg(Alg::Rsa2048)).pem());
    assert_eq!(rsa.key_algorithm(), &KeyAlgorithm::Rsa { bits: 2048 });
    assert_eq!(rsa.signature_algorithm(), "sha256WithRSAEncryption");
    let ed = parse(&self_signed(&Spec::ca("e").alg(Alg::Ed25519)).pem());
    assert_eq!(ed.key_algorithm(), &KeyAlgorithm::Ed25519);
    assert!(ed.key_algorithm().is_signature_only() && !rsa.key_algorithm().is_signature_only());
}

#[test]
fn cn_only_certificates_have_no_san() {
    let cert = parse(
        &self_signed(&Spec {
            dns: vec![],
            ..Spec::server("cnonly.example.com")
        })
        .pem(),
    );
    assert!(cert.subject_alt_names().is_empty());
    assert!(!cert.has_dns_or_ip_san());
    assert_eq!(cert.common_names(), ["cnonly.example.com"]);
}

#[test]
fn version_1_certificates_from_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            &["req", "-new"],
            NEW_P256_KEY,
            &["-keyout", "k.pem", "-subj", "/CN=Old CA", "-out", "r.csr"],
        ]
        .concat(),
    );
    openssl(
        d,
        &[
            "x509", "-req", "-in", "r.csr", "-signkey", "k.pem", "-days", "3650", "-out", "v1.pem",
        ],
    );
    let cert = parse(&std::fs::read_to_string(d.join("v1.pem")).unwrap());
    assert_eq!(cert.version(), 1);
    assert!(cert.basic_constraints().is_none() && cert.key_usage().is_none());
    assert!(cert.describe().contains("Version: 1\n"));
    // As a CA, libvirt's rule applies: a CA must carry basic constraints.
    let ctx = Context::new(ContextFlags::default());
    ctx.add_file(CertDataType::CaCert, &d.join("v1.pem"))
        .unwrap();
    let report = ctx.check(Role::Client);
    let err = report.errors().next().unwrap();
    assert_eq!(err.kind, ErrorKind::NotCa);
    assert!(
        err.message
            .ends_with("v1.pem is missing basic constraints for a CA"),
        "{}",
        err.message
    );
}

#[test]
fn sha1_signatures_fail_the_pair_check_as_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-subj",
            "/CN=SHA CA",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "serverkey.pem",
            "-subj",
            "/CN=sha1.example.com",
            "-out",
            "s.csr",
        ],
    );
    write(
        d,
        "ext.cnf",
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:sha1.example.com\n",
        0o644,
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "s.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-sha1",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-out",
            "servercert.pem",
        ],
    );
    let ctx = Context::new(ContextFlags::default());
    ctx.add_file(CertDataType::CaCert, &d.join("ca.pem"))
        .unwrap();
    ctx.add_file(CertDataType::ServerCert, &d.join("servercert.pem"))
        .unwrap();
    std::fs::set_permissions(
        d.join("serverkey.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    ctx.add_file(CertDataType::ServerKey, &d.join("serverkey.pem"))
        .unwrap();
    assert_eq!(
        ctx.credentials().server.chain[0].signature_algorithm(),
        "sha1WithRSAEncryption"
    );
    let report = ctx.check(Role::Server);
    let err = report.errors().next().expect("an error");
    assert_eq!(err.kind, ErrorKind::BadSignature, "{}", report.to_text());
    assert!(
        err.message.contains("Our own certificate") && err.message.contains("insecure algorithm"),
        "{}",
        err.message
    );
}

#[test]
fn version_1_leaves_are_refused_with_a_clear_reason() {
    // GnuTLS accepts version 1 leaves; rustls-webpki does not, and the check says so.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = self_signed(&Spec::ca("CA"));
    write(d, "ca.pem", ca.pem(), 0o644);
    write(d, "ca.key", ca.key_pem(), 0o600);
    openssl(
        d,
        &[
            &["req", "-new"],
            NEW_P256_KEY,
            &[
                "-keyout",
                "clientkey.pem",
                "-subj",
                "/CN=v1 client",
                "-out",
                "c.csr",
            ],
        ]
        .concat(),
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "c.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            "clientcert.pem",
        ],
    );
    let ctx = Context::new(ContextFlags::default());
    ctx.add_file(CertDataType::CaCert, &d.join("ca.pem"))
        .unwrap();
    ctx.add_file(CertDataType::ClientCert, &d.join("clientcert.pem"))
        .unwrap();
    assert_eq!(ctx.credentials().client.chain[0].version(), 1);
    std::fs::set_permissions(
        d.join("clientkey.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    ctx.add_file(CertDataType::ClientKey, &d.join("clientkey.pem"))
        .unwrap();
    let report = ctx.check(Role::Client);
    let err = report.errors().next().expect("an error");
    assert_eq!(err.kind, ErrorKind::Parse, "{}", report.to_text());
    assert!(err.message.contains("version 1"), "{}", err.message);
}

/// A certificate whose names carry terminal escapes, a forged line, a bidi override and a NUL
/// (in a SAN: in the subject, the DN string prints a NUL as hex, as libvirt does).
fn hostile_certificate() -> Made {
    let mut spec = Spec::server("evil\u{1b}[2K\u{1b}[32mTrusted\r\nNext\u{202e}txt.exe");
    spec.dns = vec![
        "host.example".into(),
        "x\u{0}.example".into(),
        "\u{1b}[1A\u{1b}[2Kok.example\u{7}".into(),
    ];
    self_signed(&spec)
}

/// Display text has no control character but its own line ends, in Rust and through the C
/// API (where a NUL in a SAN used to make virPKICertDescribe fail with INTERNAL).
#[test]
fn describe_escapes_control_characters_from_the_certificate() {
    let made = hostile_certificate();
    let cert = parse(&made.pem());
    let text = cert.describe();
    let unsafe_chars = |t: &str| {
        t.lines()
            .flat_map(str::chars)
            .filter(|c| virtpki::display::is_unsafe(*c))
            .count()
    };
    assert_eq!(unsafe_chars(&text), 0, "{text:?}");
    assert!(
        text.contains("\\x1b[32mTrusted\\x0d\\x0aNext\\u{202e}txt.exe"),
        "{text}"
    );
    assert!(text.contains("DNS:\"x\\x00.example\""), "{text}");
    assert!(text.lines().count() >= 8, "{text}");
    // The DN used for matching keeps the bytes (NUL is printed as hex there, as libvirt does).
    assert!(cert.subject().contains('\u{1b}'), "{:?}", cert.subject());

    let pem = std::ffi::CString::new(made.pem()).unwrap();
    // SAFETY: a NUL-terminated string that outlives the call.
    let described = unsafe { virtpki::ffi::cert::virPKICertDescribe(pem.as_ptr()) };
    assert!(
        !described.is_null(),
        "code {}",
        virtpki::ffi::errors::virPKIGetLastErrorCode()
    );
    // SAFETY: not NULL (asserted above): a NUL-terminated string the library returned.
    let c_text = unsafe { std::ffi::CStr::from_ptr(described) }
        .to_str()
        .unwrap()
        .to_owned();
    // SAFETY: the library's string, freed once and not used after.
    unsafe { virtpki::ffi::errors::virPKIFree(described.cast()) };
    assert_eq!(c_text, text);
}

/// Error messages that quote such a name are escaped as well.
#[test]
fn error_messages_quoting_certificate_names_are_escaped() {
    let made = hostile_certificate();
    let ctx = Context::new(ContextFlags::default());
    ctx.add_pem(
        CertDataType::CaCert,
        &self_signed(&Spec::ca("Other CA")).pem(),
    )
    .unwrap();
    let chain = virtpki::pem::parse_chain(&made.pem()).unwrap();
    let err = ctx
        .verify_server(
            "host.example",
            None,
            &chain,
            virtpki::VerifyFlags::default(),
        )
        .unwrap_err();
    assert!(
        !err.message().chars().any(virtpki::display::is_unsafe),
        "{:?}",
        err.message()
    );
}

/// A SAN whose value spells a list ("a.example, DNS:b.example") is shown as one quoted name, in
/// `describe` and in the host name mismatch error, so it cannot pass for a second name; and a
/// SAN that spells an escape (the four characters `\x1b`) reads differently from one holding
/// an ESC.
#[test]
fn a_san_cannot_pass_for_two_names_or_an_escape() {
    let mut spec = Spec::server("real.example");
    spec.dns = vec![
        "real.example".into(),
        "evil.example, DNS:libvirt.example".into(),
        r"spelt\x1b.example".into(),
        "esc\u{1b}.example".into(),
    ];
    let ca = self_signed(&Spec::ca("SAN CA"));
    let made = signed_by(&spec, &ca);
    let text = parse(&made.pem()).describe();
    let sans = text
        .lines()
        .find(|l| l.starts_with("Subject alternative names: "))
        .unwrap();
    assert_eq!(
        sans,
        r#"Subject alternative names: DNS:real.example, DNS:"evil.example, DNS:libvirt.example", DNS:"spelt\\x1b.example", DNS:"esc\x1b.example""#
    );

    // A directoryName SAN: the DN's own commas do not split it either.
    let cn = tlv(0x0c, b"x, DNS:libvirt.example");
    let atv = tlv(0x30, &[tlv(0x06, &[0x55, 4, 3]), cn].concat());
    let name = tlv(0x30, &tlv(0x31, &atv));
    let mut dir_spec = Spec::ca("Dir");
    dir_spec
        .custom
        .push(rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 17],
            tlv(0x30, &tlv(0xa4, &name)),
        ));
    let dir_text = parse(&self_signed(&dir_spec).pem()).describe();
    assert!(
        dir_text.contains(r#"Subject alternative names: dirName:"CN=x\\, DNS:libvirt.example""#),
        "{dir_text}"
    );

    let ctx = Context::new(ContextFlags::default());
    ctx.add_pem(CertDataType::CaCert, &ca.pem()).unwrap();
    ctx.set_verify_time(Some(date(2026, 1, 1)));
    let chain = virtpki::pem::parse_chain(&made.pem()).unwrap();
    let err = ctx
        .verify_server(
            "libvirt.example",
            None,
            &chain,
            virtpki::VerifyFlags::default(),
        )
        .unwrap_err();
    assert!(
        err.message()
            .contains(r#"DNS:"evil.example, DNS:libvirt.example""#),
        "{}",
        err.message()
    );
}

/// Characters that show as nothing (zero-width space, BOM, soft hyphen, tags) are escaped:
/// "libvirt\u{200B}.example" must not read as "libvirt.example" where a person decides.
#[test]
fn invisible_characters_in_names_are_shown() {
    let made = self_signed(&Spec::ca("libvirt\u{200B}.example\u{FEFF}\u{AD}\u{E0041}"));
    let text = parse(&made.pem()).describe();
    assert!(
        text.contains(r"CN=libvirt\u{200b}.example\u{feff}\u{00ad}\u{e0041}"),
        "{text}"
    );
    let err = Context::new(ContextFlags::default())
        .add_pem(
            CertDataType::ClientKey,
            "-----BEGIN X\u{200B}-----\nAAAA\n-----END X\u{200B}-----\n",
        )
        .unwrap_err();
    assert!(err.message().contains(r"X\u{200b}"), "{}", err.message());
}
