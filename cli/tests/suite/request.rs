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
        &[
            "keyUsage=critical,digitalSignature",
            "subjectAltName=DNS:host1",
        ],
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
    // clientAuth asked in a request signed as a server; CA:TRUE; a CA's key usages.
    for ext in [
        "extendedKeyUsage=clientAuth",
        "basicConstraints=critical,CA:TRUE",
        "keyUsage=critical,keyCertSign",
        "keyUsage=digitalSignature,cRLSign",
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
        if ext.starts_with("keyUsage") {
            assert!(run.stderr.contains("a CA's key usage"), "{}", run.stderr);
        }
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

/// `openssl req -new` with `args` (key and digest options), for the subject `/CN=host`, a
/// DNS SAN `extra` asks for, written to `dir/NAME.pem`.
fn openssl_req(dir: &std::path::Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let req = dir.join(format!("{name}.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-new", "-nodes", "-subj", "/CN=host.example.com"])
        .args(args)
        .args([
            "-keyout",
            s(&dir.join(format!("{name}-key.pem"))),
            "-out",
            s(&req),
        ])
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    req
}

/// `virtpki sign server` of `req` into `dir/out`.
fn sign_server(d: &std::path::Path, ca: &std::path::Path, req: &std::path::Path) -> common::Run {
    virtpki(
        d,
        &[
            "sign",
            "server",
            "--ca-dir",
            s(ca),
            "--request",
            s(req),
            "--out-dir",
            "out",
            "--force",
        ],
    )
}

/// What the signature check cannot vouch for is said as it is: SHA-1 refused by name (it was
/// accepted), P-521 and RSA-PSS with a salt ring does not check as algorithms virtpki does not
/// check (they said "altered"); RSA-PSS the crypto provider verifies is signed.
#[test]
fn sign_says_which_signature_algorithms_it_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = d.join("ca");
    ca_init(d, &ca);
    let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let sha1 = openssl_req(d, "sha1", &[&p256[..], &["-sha1"]].concat());
    let run = sign_server(d, &ca, &sha1).expect(2);
    assert!(run.stderr.contains(s(&sha1)), "{}", run.stderr);
    assert!(
        run.stderr.contains("signed with SHA-1 (ecdsa-with-SHA1)")
            && run.stderr.contains("does not accept"),
        "{}",
        run.stderr
    );
    // RSA with SHA-1: x509-parser's check verified it, so it was signed.
    let rsa_sha1 = openssl_req(d, "rsa-sha1", &["-newkey", "rsa:2048", "-sha1"]);
    let run = sign_server(d, &ca, &rsa_sha1).expect(2);
    assert!(
        run.stderr
            .contains("signed with SHA-1 (sha1WithRSAEncryption)"),
        "{}",
        run.stderr
    );
    let p521 = openssl_req(
        d,
        "p521",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
            "-sha512",
        ],
    );
    let run = sign_server(d, &ca, &p521).expect(2);
    assert!(
        run.stderr
            .contains("by its ECDSA P-521 key, a signature algorithm virtpki does not check"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("altered"), "{}", run.stderr);
    let rsa = [
        "-newkey",
        "rsa:2048",
        "-sha256",
        "-sigopt",
        "rsa_padding_mode:pss",
    ];
    let pss_max = openssl_req(
        d,
        "pss-max",
        &[&rsa[..], &["-sigopt", "rsa_pss_saltlen:max"]].concat(),
    );
    let run = sign_server(d, &ca, &pss_max).expect(2);
    assert!(
        run.stderr.contains("RSASSA-PSS") && run.stderr.contains("does not check"),
        "{}",
        run.stderr
    );
    assert!(!d.join("out").exists());
    let pss = openssl_req(
        d,
        "pss",
        &[&rsa[..], &["-sigopt", "rsa_pss_saltlen:digest"]].concat(),
    );
    sign_server(d, &ca, &pss).expect(0);
    // A request file that cannot be read is named as a certificate request, not as a server
    // certificate.
    let run = sign_server(d, &ca, d).expect(2);
    assert!(run.stderr.contains("certificate request"), "{}", run.stderr);
    assert!(!run.stderr.contains("server certificate"), "{}", run.stderr);
}

/// More than 64 subject alternative names are refused by sign and issue alike; a wildcard
/// DNS name is signed and issued with the same warning in the summary.
#[test]
fn sign_and_issue_cap_the_names_and_warn_of_a_wildcard() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = d.join("ca");
    ca_init(d, &ca);
    let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let many: Vec<String> = (0..65).map(|i| format!("DNS:h{i}.example.com")).collect();
    let san = format!("subjectAltName={}", many.join(","));
    let req = openssl_req(d, "many", &[&p256[..], &["-addext", &san]].concat());
    let run = sign_server(d, &ca, &req).expect(2);
    assert!(run.stderr.contains("at most 64"), "{}", run.stderr);
    let mut args = vec![
        "issue",
        "server",
        "--ca-dir",
        s(&ca),
        "--cn",
        "host.example.com",
    ];
    let names: Vec<String> = (0..65).map(|i| format!("h{i}.example.com")).collect();
    for n in &names {
        args.extend(["--dns", n.as_str()]);
    }
    args.extend(["--key-type", "ecdsa", "--out-dir", "issued-many"]);
    let run = virtpki(d, &args).expect(2);
    assert!(run.stderr.contains("at most 64"), "{}", run.stderr);
    assert!(!d.join("issued-many").exists());

    let req = openssl_req(
        d,
        "wild",
        &[
            &p256[..],
            &["-addext", "subjectAltName=DNS:*.lab.example.com"],
        ]
        .concat(),
    );
    let signed = sign_server(d, &ca, &req).expect(0);
    let issued = virtpki(
        d,
        &[
            "issue",
            "server",
            "--ca-dir",
            s(&ca),
            "--cn",
            "host.example.com",
            "--dns",
            "*.lab.example.com",
            "--key-type",
            "ecdsa",
            "--out-dir",
            "issued-wild",
        ],
    )
    .expect(0);
    for run in [&signed, &issued] {
        assert!(
            run.stdout
                .contains("warning: DNS:*.lab.example.com is a wildcard: libvirt's GnuTLS"),
            "{}",
            run.stdout
        );
    }
    let plain = virtpki(
        d,
        &[
            "issue",
            "server",
            "--ca-dir",
            s(&ca),
            "--cn",
            "plain.example.com",
            "--key-type",
            "ecdsa",
            "--out-dir",
            "issued-plain",
        ],
    )
    .expect(0);
    assert!(!plain.stdout.contains("wildcard"), "{}", plain.stdout);
}
