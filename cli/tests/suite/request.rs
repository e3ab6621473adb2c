//! `virtpki request server|client` and `virtpki sign server|client`: the key stays where it
//! was made, the CA signs the request with `issue`'s template, and the result installs and
//! validates as an issued pair does.

use crate::common;

use common::{ca_init, certs, mode, s, virtpki};

#[test]
fn request_sign_install_validate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = d.join("ca");
    ca_init(d, &ca);
    for (role, names) in [
        (
            "server",
            vec!["--cn", "localhost", "--ip", "127.0.0.1", "--dns", "host1"],
        ),
        ("client", vec!["--dn", "C=GB,O=Test,CN=client1"]),
    ] {
        let host = d.join(format!("{role}-host"));
        let mut args = vec!["request", role];
        args.extend(&names);
        args.extend(["--key-type", "ecdsa", "--out-dir", s(&host)]);
        virtpki(d, &args).expect(0);
        assert_eq!(mode(&host.join(format!("{role}key.pem"))), 0o600);
        assert_eq!(mode(&host.join(format!("{role}req.pem"))), 0o644);
        let req = host.join(format!("{role}req.pem"));
        let text = std::fs::read_to_string(&req).unwrap();
        assert!(
            text.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
            "{text}"
        );
        // The CA's side: a CA directory and the request; no key path is taken.
        let signed = d.join(format!("{role}-signed"));
        let run = virtpki(
            d,
            &[
                "sign",
                role,
                "--ca-dir",
                s(&ca),
                "--request",
                s(&req),
                "--out-dir",
                s(&signed),
            ],
        )
        .expect(0);
        let cert_path = signed.join(format!("{role}cert.pem"));
        assert_eq!(mode(&cert_path), 0o644);
        assert!(!signed.join(format!("{role}key.pem")).exists());
        let cert = &certs(&cert_path)[0];
        if role == "client" {
            assert!(
                run.stdout
                    .contains("tls_allowed_dn_list = [\"C=GB,O=Test,CN=client1\"]"),
                "{}",
                run.stdout
            );
        } else {
            let sans: Vec<String> = cert
                .subject_alt_names()
                .iter()
                .map(|n| n.to_string())
                .collect();
            assert_eq!(sans, ["DNS:localhost", "DNS:host1", "IP:127.0.0.1"]);
        }
        assert!(
            run.stdout
                .contains(&format!("DN (libvirt's format): {}", cert.subject())),
            "{}",
            run.stdout
        );
        // Signing again without --force replaces nothing.
        let again = virtpki(
            d,
            &[
                "sign",
                role,
                "--ca-dir",
                s(&ca),
                "--request",
                s(&req),
                "--out-dir",
                s(&signed),
            ],
        )
        .expect(2);
        assert!(again.stderr.contains(s(&cert_path)), "{}", again.stderr);
        // The certificate goes back next to its key, and installs and validates.
        std::fs::copy(&cert_path, host.join(format!("{role}cert.pem"))).unwrap();
        let root = d.join(format!("{role}-root"));
        virtpki(
            d,
            &[
                "install",
                "--role",
                role,
                "--ca-dir",
                s(&ca),
                "--from",
                s(&host),
                "--root",
                s(&root),
            ],
        )
        .expect(0);
        let run = virtpki(d, &["validate", "--root", s(&root), "--system", role]);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }
}

#[test]
fn sign_refuses_what_is_not_a_good_request_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = d.join("ca");
    ca_init(d, &ca);
    virtpki(
        d,
        &[
            "request",
            "client",
            "--dn",
            "O=Test,CN=c1",
            "--key-type",
            "ecdsa",
            "--out-dir",
            "host",
        ],
    )
    .expect(0);
    let sign = |role: &str, req: &std::path::Path| {
        virtpki(
            d,
            &[
                "sign",
                role,
                "--ca-dir",
                s(&ca),
                "--request",
                s(req),
                "--out-dir",
                "out",
            ],
        )
    };
    // A key given as the request.
    let key = d.join("host/clientkey.pem");
    let run = sign("client", &key).expect(2);
    assert!(run.stderr.contains(s(&key)), "{}", run.stderr);
    assert!(run.stderr.contains("CERTIFICATE REQUEST"), "{}", run.stderr);
    // A request whose signature does not verify.
    let req = d.join("host/clientreq.pem");
    // A base64 character near the end changed: a byte of the signature's last integer.
    let text = std::fs::read_to_string(&req).unwrap();
    let end = text.find("\n-----END").unwrap();
    let at = text[..end]
        .rfind(|c: char| c.is_ascii_alphanumeric())
        .unwrap()
        - 2;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let bad = d.join("bad.pem");
    std::fs::write(&bad, bytes).unwrap();
    let run = sign("client", &bad).expect(2);
    assert!(run.stderr.contains(s(&bad)), "{}", run.stderr);
    assert!(
        run.stderr.contains("signature does not verify"),
        "{}",
        run.stderr
    );
    // A request that is not there.
    let run = sign("server", &d.join("missing.pem")).expect(2);
    assert!(run.stderr.contains("missing.pem"), "{}", run.stderr);
    assert!(!d.join("out").exists());
    // request: a client DN without CN.
    let run = virtpki(
        d,
        &["request", "client", "--dn", "O=Test", "--out-dir", "host2"],
    )
    .expect(2);
    assert!(run.stderr.contains("has no CN"), "{}", run.stderr);
    assert!(!d.join("host2").exists());
}

/// A request made by openssl with the extensions `addext` asks for.
fn openssl_request(dir: &std::path::Path, subj: &str, addext: &[&str]) -> std::path::PathBuf {
    let req = dir.join("openssl-req.pem");
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["req", "-new", "-nodes", "-subj", subj])
        .args(common::openssl_args::NEW_P256_KEY)
        .args(["-keyout", s(&dir.join("openssl-key.pem")), "-out", s(&req)]);
    for ext in addext {
        cmd.args(["-addext", ext]);
    }
    let out = cmd.output().expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    req
}

#[test]
fn sign_lists_the_extensions_it_ignores_and_refuses_the_other_roles_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = d.join("ca");
    ca_init(d, &ca);
    let req = openssl_request(
        d,
        "/CN=host1.example.com",
        &["keyUsage=critical,keyCertSign", "subjectAltName=DNS:host1"],
    );
    let run = virtpki(
        d,
        &[
            "sign",
            "server",
            "--ca-dir",
            s(&ca),
            "--request",
            s(&req),
            "--out-dir",
            "out",
        ],
    )
    .expect(0);
    assert!(
        run.stdout
            .contains("ignored: the request also asked for keyUsage"),
        "{}",
        run.stdout
    );
    let cert = &certs(&d.join("out/servercert.pem"))[0];
    assert!(!cert
        .key_usage()
        .unwrap()
        .allows(virtpki::cert::KeyUsage::KEY_CERT_SIGN));
    let sans: Vec<String> = cert
        .subject_alt_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(sans, ["DNS:host1.example.com", "DNS:host1"]);
    // clientAuth asked in a request signed as a server; CA:TRUE.
    for ext in [
        "extendedKeyUsage=clientAuth",
        "basicConstraints=critical,CA:TRUE",
    ] {
        let req = openssl_request(d, "/CN=host2.example.com", &[ext]);
        let run = virtpki(
            d,
            &[
                "sign",
                "server",
                "--ca-dir",
                s(&ca),
                "--request",
                s(&req),
                "--out-dir",
                "out2",
            ],
        )
        .expect(2);
        assert!(run.stderr.contains(s(&req)), "{}", run.stderr);
        assert!(!d.join("out2").exists());
    }
}

/// A request whose subject holds a control character is refused, the character escaped in
/// the message (the CA signed it: a DN that prints differently in logs and allow-lists).
#[test]
fn sign_refuses_a_subject_with_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = d.join("ca");
    ca_init(d, &ca);
    let req = openssl_request(d, "/O=Test/CN=evil\x1b[32mOK", &[]);
    let run = virtpki(
        d,
        &[
            "sign",
            "client",
            "--ca-dir",
            s(&ca),
            "--request",
            s(&req),
            "--out-dir",
            "out",
        ],
    )
    .expect(2);
    assert!(run.stderr.contains(s(&req)), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("CN=evil\\x1b[32mOK: the control character \\x1b"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    assert!(!d.join("out").exists());
}
