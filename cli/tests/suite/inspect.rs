//! `virtpki show` and `virtpki dn`.

use crate::common;

use common::openssl_args::NEW_P256_KEY;
use common::{pki, s, virtpki};

#[test]
fn dn_is_virt_pki_query_dn_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    // openssl writes what virtpki cannot issue: multi-valued RDNs, repeated and odd attributes.
    let odd = dir.path().join("odd.pem");
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509"])
        .args(NEW_P256_KEY)
        .args([
            "-keyout",
            s(&dir.path().join("odd.key")),
            "-out",
            s(&odd),
            "-days",
            "2",
            "-multivalue-rdn",
            "-utf8",
            "-subj",
            "/C=GB/O=Acme, Inc./OU=a+OU=b/OU=c/CN= lead#=\"q\"\\\\ é/emailAddress=x@y/DC=org",
        ])
        .output()
        .expect("openssl (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for cert in [
        p.client.join("clientcert.pem"),
        p.server.join("servercert.pem"),
        odd,
    ] {
        let reference = std::process::Command::new("virt-pki-query-dn")
            .arg(&cert)
            .output()
            .expect("virt-pki-query-dn (scripts/install-test-deps.sh installs it)");
        assert!(reference.status.success());
        let ours = virtpki(dir.path(), &["dn", s(&cert)]).expect(0);
        assert_eq!(
            ours.stdout.as_bytes(),
            &reference.stdout[..],
            "{}",
            cert.display()
        );
    }
}

#[test]
fn show_describes_certificates_crls_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let bundle = dir.path().join("bundle.pem");
    let both = std::fs::read_to_string(p.server.join("servercert.pem")).unwrap()
        + &std::fs::read_to_string(p.ca.join("cacert.pem")).unwrap();
    std::fs::write(&bundle, both).unwrap();
    let run = virtpki(dir.path(), &["show", s(&bundle)]).expect(0);
    assert!(run.stdout.contains("Certificate 1 of 2") && run.stdout.contains("Certificate 2 of 2"));
    assert!(
        run.stdout
            .contains("Subject alternative names: DNS:localhost, IP:127.0.0.1"),
        "{}",
        run.stdout
    );
    let json = virtpki(dir.path(), &["show", "--json", s(&bundle)]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["certificates"][0]["subject"], "CN=localhost");
    assert_eq!(v["certificates"][1]["basic_constraints"]["ca"], true);
    assert_eq!(
        v["certificates"][0]["extended_key_usage"]["server_auth"],
        true
    );

    virtpki(
        dir.path(),
        &[
            "crl",
            "revoke",
            "--ca-dir",
            s(&p.ca),
            s(&p.client.join("clientcert.pem")),
        ],
    )
    .expect(0);
    let crl = virtpki(dir.path(), &["show", "--json", s(&p.ca.join("cacrl.pem"))]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&crl.stdout).unwrap();
    assert_eq!(v["crls"][0]["revoked_count"], 1);
    assert_eq!(v["crls"][0]["crl_number"], "1");

    // A key: its public half's fingerprint, never the secret.
    let key_path = p.server.join("serverkey.pem");
    let run = virtpki(dir.path(), &["show", s(&key_path)]).expect(0);
    let secret_line = std::fs::read_to_string(&key_path)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(run.stdout.contains("Private key (not shown)"));
    assert!(!run.stdout.contains(&secret_line));
    let cert = &common::certs(&p.server.join("servercert.pem"))[0];
    assert!(
        run.stdout.contains(&cert.spki_fingerprint_string()),
        "{}",
        run.stdout
    );
    let run = virtpki(dir.path(), &["show", "--json", s(&key_path)]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        v["private_key"]["public_key_sha256"],
        cert.spki_fingerprint_string()
    );
}

#[test]
fn unreadable_input_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    for cmd in ["show", "dn"] {
        let run = virtpki(dir.path(), &[cmd, s(&junk)]).expect(2);
        assert!(run.stderr.contains("junk.pem"), "{cmd}: {}", run.stderr);
        let run = virtpki(dir.path(), &[cmd, "/nonexistent/file.pem"]).expect(2);
        assert!(
            run.stderr.contains("/nonexistent/file.pem"),
            "{cmd}: {}",
            run.stderr
        );
        virtpki(dir.path(), &[cmd, s(dir.path())]).expect(2);
        virtpki(dir.path(), &[cmd]).expect(2);
    }
    // `dn` wants a certificate, not a key.
    let run = virtpki(dir.path(), &["dn", s(&p.client.join("clientkey.pem"))]).expect(2);
    assert!(run.stderr.contains("clientkey.pem"), "{}", run.stderr);
}
