//! `virtpki show` and `virtpki dn`.

use crate::common;

use common::openssl_args::NEW_P256_KEY;
use common::{pki, revoke_client, s, virtpki};

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

    revoke_client(dir.path(), &p).expect(0);
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

// Issue 15: `show` of a CRL lists its serials with the subjects its CA directory names (item
// 5); `dn` takes several files and names what it expected (items 13, 12); `show` of a key
// names its type and size, with the certificate's labels (item 13).

#[test]
fn show_of_a_crl_lists_the_revoked_serials_and_their_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let client = p.client.join("clientcert.pem");
    let server = p.server.join("servercert.pem");
    virtpki(
        dir.path(),
        &[
            "crl",
            "revoke",
            "--ca-dir",
            s(&p.ca),
            s(&client),
            s(&server),
        ],
    )
    .expect(0);
    let serial = |path: &std::path::Path| common::certs(path)[0].serial_hex();
    let crl = p.ca.join("cacrl.pem");
    let run = virtpki(dir.path(), &["show", s(&crl)]).expect(0);
    let line = common::line_with(&run.stdout, &serial(&client));
    assert!(line.contains("C=GB,O=Test,CN=client1"), "{line}");
    let line = common::line_with(&run.stdout, &serial(&server));
    assert!(line.contains("CN=localhost"), "{line}");
    let v: serde_json::Value = serde_json::from_str(
        &virtpki(dir.path(), &["show", "--json", s(&crl)])
            .expect(0)
            .stdout,
    )
    .unwrap();
    let revoked = &v["crls"][0]["revoked"];
    assert_eq!(revoked[0]["serial"], serial(&client));
    assert_eq!(revoked[0]["subject"], "C=GB,O=Test,CN=client1");
    assert_eq!(revoked[1]["subject"], "CN=localhost");
    // A copy elsewhere, away from its CA directory: the serials, without subjects.
    let copy = dir.path().join("copy.pem");
    std::fs::copy(&crl, &copy).unwrap();
    let run = virtpki(dir.path(), &["show", s(&copy)]).expect(0);
    let line = common::line_with(&run.stdout, &serial(&client));
    assert!(!line.contains("CN=client1"), "{line}");
    let v: serde_json::Value = serde_json::from_str(
        &virtpki(dir.path(), &["show", "--json", s(&copy)])
            .expect(0)
            .stdout,
    )
    .unwrap();
    assert_eq!(
        v["crls"][0]["revoked"][0]["subject"],
        serde_json::Value::Null
    );
}

#[test]
fn dn_prints_each_files_dn_for_an_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let admin = dir.path().join("admin");
    common::issue_client(dir.path(), s(&p.ca), "C=GB,O=Test,CN=admin", s(&admin)).expect(0);
    let files = [
        p.client.join("clientcert.pem"),
        admin.join("clientcert.pem"),
    ];
    let run = virtpki(dir.path(), &["dn", s(&files[0]), s(&files[1])]).expect(0);
    assert_eq!(run.stdout, "C=GB,O=Test,CN=client1\nC=GB,O=Test,CN=admin\n");
    let run = virtpki(dir.path(), &["dn", "--json", s(&files[0]), s(&files[1])]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"file": s(&files[0]), "dn": "C=GB,O=Test,CN=client1"},
            {"file": s(&files[1]), "dn": "C=GB,O=Test,CN=admin"},
        ])
    );
    // One bad file: an error naming what `dn` expected, and no partial list.
    let key = p.client.join("clientkey.pem");
    let run = virtpki(dir.path(), &["dn", s(&files[0]), s(&key)]).expect(2);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("clientkey.pem: found a private key where a certificate was expected"),
        "{}",
        run.stderr
    );
    // Every path is checked first, each named.
    let run = virtpki(dir.path(), &["dn", s(&files[0]), "/nonexistent/a.pem"]).expect(2);
    assert!(run.stderr.contains("/nonexistent/a.pem"), "{}", run.stderr);
}

#[test]
fn show_of_a_key_names_its_type_and_size_with_the_certificates_labels() {
    use virtpki_tools::kit::{key, Alg};
    let dir = tempfile::tempdir().unwrap();
    for (alg, says) in [
        (Alg::Rsa2048, "Public key: RSA 2048 bits"),
        (Alg::EcdsaP256, "Public key: ECDSA P-256"),
        (Alg::Ed25519, "Public key: Ed25519"),
    ] {
        let path = virtpki_tools::kit::write(
            dir.path(),
            &format!("{}.pem", alg.name()),
            key(alg).serialize_pem(),
            0o600,
        );
        let run = virtpki(dir.path(), &["show", s(&path)]).expect(0);
        assert!(run.stdout.contains(says), "{}", run.stdout);
        let v: serde_json::Value = serde_json::from_str(
            &virtpki(dir.path(), &["show", "--json", s(&path)])
                .expect(0)
                .stdout,
        )
        .unwrap();
        assert_eq!(
            v["private_key"]["public_key"],
            says.strip_prefix("Public key: ").unwrap()
        );
    }
    // The key and its certificate: one label for the public key's fingerprint, one value.
    let p = pki(dir.path());
    let key_run = virtpki(dir.path(), &["show", s(&p.server.join("serverkey.pem"))]).expect(0);
    let cert_run = virtpki(dir.path(), &["show", s(&p.server.join("servercert.pem"))]).expect(0);
    for label in ["Public key fingerprint: ", "Public key: "] {
        assert_eq!(
            common::line_with(&key_run.stdout, label),
            common::line_with(&cert_run.stdout, label),
            "{label}"
        );
    }
}
