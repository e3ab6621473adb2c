//! The known-servers store's tests: the trust rules every store follows, the file format
//! (damaged entries, plain bundles, byte-for-byte rewrites) and the file store's permissions,
//! locking and change detection.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair, SerialNumber};
use tempfile::TempDir;

use super::format::{NEW_FILE_BANNER, OLD_FILE_BANNER};
use super::*;

/// A new self-signed certificate for `name`, and its key.
fn new_cert(name: &str) -> (Vec<u8>, KeyPair) {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    (made.cert.der().to_vec(), made.signing_key)
}

/// Another certificate for the same key, as a renewal would be.
fn renewal(name: &str, key: &KeyPair) -> Vec<u8> {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.serial_number = Some(SerialNumber::from(2u64));
    params.self_signed(key).unwrap().der().to_vec()
}

fn pem_of(der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), config)
}

/// A store path in a fresh private directory (kept alive by the returned guard).
fn store_path() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_servers.pem");
    (dir, path)
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o777
}

#[test]
fn hosts_are_normalized() {
    let cases = [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("0:0::1", "::1"),
        ("0000:0000:0000:0000:0000:0000:0000:0001", "::1"),
        ("2001:DB8::0:1", "2001:db8::1"),
        ("[2001:db8:0:0:0:0:0:1]", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("[FE80:0::1%eth0]", "fe80::1%eth0"),
        ("192.0.2.7", "192.0.2.7"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ];
    for (given, normalized) in cases {
        assert_eq!(normalize_host(given).unwrap(), normalized, "{given:?}");
    }
}

#[test]
fn bad_hosts_are_invalid_arguments() {
    let bad = [
        "",
        ".",
        "exa mple.com",
        "example.com\n",
        "tab\there",
        "nul\0byte",
        "bell\u{7}",
        "[example.com]",
        "[::1",
        "[192.0.2.7]",
        "1:2:3",
        "host:16514",
        "fe80::1%",
        "fe80::1%a%b",
        "fe80::1%eth0]",
        "[fe80::1%a/b]",
        "192.0.2.7%eth0",
        "a]b",
        "*",
        "*.example.com",
    ];
    let (_dir, path) = store_path();
    let file = KnownServers::open(&path).unwrap();
    let memory = MemoryKnownServers::new();
    let (der, _) = new_cert("example.com");
    for host in bad {
        let e = normalize_host(host).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArg, "{host:?}");
        assert!(e.message().contains("invalid host name"), "{e}");
        let stores: [&dyn KnownServersStore; 2] = [&file, &memory];
        for store in stores {
            let kind = |r: Result<()>| r.unwrap_err().kind();
            assert_eq!(kind(store.add(host, Some(1), &der)), ErrorKind::InvalidArg);
            assert_eq!(
                kind(store.lookup(host, None, &der).map(drop)),
                ErrorKind::InvalidArg
            );
            assert_eq!(
                kind(store.remove(host, None).map(drop)),
                ErrorKind::InvalidArg
            );
        }
    }
    assert!(!path.exists(), "a refused add must not create the file");
}

#[test]
fn fingerprints_are_sha256_in_uppercase_hex() {
    let abc = Fingerprint::of(b"abc");
    let text = "SHA256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
    assert_eq!(abc.to_string(), text);
    assert_eq!(text.parse::<Fingerprint>().unwrap(), abc);
    assert_eq!(
        text.to_lowercase()
            .replace("sha256", "SHA256")
            .parse::<Fingerprint>()
            .unwrap(),
        abc
    );
    for bad in [
        &text[7..],
        "SHA256:BA",
        "SHA1:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
        "SHA256:BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C",
        "SHA256:ZA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
    ] {
        assert_eq!(
            bad.parse::<Fingerprint>().unwrap_err().kind(),
            ErrorKind::Parse,
            "{bad}"
        );
    }
}

/// The trust rules, which every store must follow.
fn check_trust_decisions(store: &dyn KnownServersStore) {
    let (server, server_key) = new_cert("Server.Example.com");
    let (other, _) = new_cert("other.example.com");
    let renewed = renewal("server.example.com", &server_key);
    assert_ne!(renewed, server);

    assert_eq!(
        store
            .lookup("server.example.com", Some(16514), &server)
            .unwrap(),
        TrustStatus::Unknown
    );
    store
        .add("Server.Example.COM.", Some(16514), &server)
        .unwrap();
    for host in [
        "server.example.com",
        "SERVER.example.com",
        "server.example.com.",
    ] {
        assert_eq!(
            store.lookup(host, Some(16514), &server).unwrap(),
            TrustStatus::Trusted,
            "{host}"
        );
    }
    // An entry for one port says nothing about others, nor about "any port".
    assert_eq!(
        store
            .lookup("server.example.com", Some(16509), &server)
            .unwrap(),
        TrustStatus::Unknown
    );
    assert_eq!(
        store.lookup("server.example.com", None, &server).unwrap(),
        TrustStatus::Unknown
    );
    assert_eq!(
        store
            .lookup("server2.example.com", Some(16514), &server)
            .unwrap(),
        TrustStatus::Unknown
    );

    assert_eq!(
        store
            .lookup("server.example.com", Some(16514), &renewed)
            .unwrap(),
        TrustStatus::Changed { same_key: true }
    );
    assert_eq!(
        store
            .lookup("server.example.com", Some(16514), &other)
            .unwrap(),
        TrustStatus::Changed { same_key: false }
    );

    // An any-port entry counts for every port, and a port's own entry does not hide it.
    store.add("server.example.com", None, &renewed).unwrap();
    assert_eq!(
        store
            .lookup("server.example.com", Some(1), &renewed)
            .unwrap(),
        TrustStatus::Trusted
    );
    assert_eq!(
        store
            .lookup("server.example.com", Some(16514), &renewed)
            .unwrap(),
        TrustStatus::Trusted
    );
    assert_eq!(
        store
            .lookup("server.example.com", Some(16514), &server)
            .unwrap(),
        TrustStatus::Trusted
    );
    assert_eq!(
        store
            .lookup("server.example.com", Some(0), &renewed)
            .unwrap(),
        TrustStatus::Trusted
    );
    assert_eq!(
        store
            .lookup("server.example.com", Some(1), &server)
            .unwrap(),
        TrustStatus::Changed { same_key: true }
    );

    // IPv6 literals in any spelling are one host.
    store.add("[2001:db8::1]", Some(16514), &other).unwrap();
    for host in ["2001:db8::1", "2001:DB8:0:0::1", "[2001:0db8::0001]"] {
        assert_eq!(
            store.lookup(host, Some(16514), &other).unwrap(),
            TrustStatus::Trusted,
            "{host}"
        );
    }
    assert_eq!(
        store.lookup("2001:db8::2", Some(16514), &other).unwrap(),
        TrustStatus::Unknown
    );

    let mut listed: Vec<_> = store
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.host().map(str::to_owned), e.port(), e.cert_sha256()))
        .collect();
    listed.sort();
    let mut expected = vec![
        (
            Some("2001:db8::1".to_owned()),
            Some(16514),
            Fingerprint::of(&other),
        ),
        (
            Some("server.example.com".to_owned()),
            None,
            Fingerprint::of(&renewed),
        ),
        (
            Some("server.example.com".to_owned()),
            Some(16514),
            Fingerprint::of(&server),
        ),
    ];
    expected.sort();
    assert_eq!(listed, expected);

    // Removing is by exact port.
    assert!(!store.remove("server.example.com", Some(1)).unwrap());
    assert!(store.remove("SERVER.example.com", None).unwrap());
    assert!(!store.remove("server.example.com", None).unwrap());
    assert_eq!(
        store
            .lookup("server.example.com", Some(1), &renewed)
            .unwrap(),
        TrustStatus::Unknown
    );
    assert!(store.remove("[::ffff:0:0]", None).is_ok_and(|found| !found));
    assert!(store.remove("2001:db8:0::1", Some(16514)).unwrap());
    assert_eq!(store.entries().unwrap().len(), 1);
}

#[test]
fn memory_store_follows_the_trust_rules() {
    check_trust_decisions(&MemoryKnownServers::new());
}

#[test]
fn file_store_follows_the_trust_rules() {
    let (_dir, path) = store_path();
    check_trust_decisions(&KnownServers::open(&path).unwrap());
    assert!(KnownServers::open(&path).unwrap().problems().is_empty());
}

#[test]
fn entries_survive_reopening() {
    let (_dir, path) = store_path();
    let (a, _) = new_cert("a.example");
    let (b, b_key) = new_cert("b.example");
    {
        let store = KnownServers::open(&path).unwrap();
        store.add("a.example", Some(16514), &a).unwrap();
        store.add("B.example", None, &b).unwrap();
    }
    let store = KnownServers::open(&path).unwrap();
    assert!(store.problems().is_empty(), "{:?}", store.problems());
    assert_eq!(
        store.lookup("a.example", Some(16514), &a).unwrap(),
        TrustStatus::Trusted
    );
    assert_eq!(
        store.lookup("b.example", Some(7), &b).unwrap(),
        TrustStatus::Trusted
    );
    assert_eq!(
        store
            .lookup("b.example", Some(7), &renewal("b.example", &b_key))
            .unwrap(),
        TrustStatus::Changed { same_key: true }
    );
    let entries = store.entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].host(), Some("a.example"));
    assert_eq!(entries[0].port(), Some(16514));
    assert_eq!(entries[0].cert_der(), a.as_slice());
    assert_eq!(entries[1].host(), Some("b.example"));
    assert_eq!(entries[1].port(), None);
    let spki = {
        let (_, cert) = x509_parser::parse_x509_certificate(&b).unwrap();
        Fingerprint::of(cert.public_key().raw)
    };
    assert_eq!(entries[1].spki_sha256(), spki);
    let added = entries[1].added().unwrap();
    assert!(
        added.len() == 20 && added.starts_with("20") && added.ends_with('Z'),
        "{added}"
    );

    assert!(store.remove("a.example", Some(16514)).unwrap());
    let reopened = KnownServers::open(&path).unwrap();
    assert_eq!(
        reopened.lookup("a.example", Some(16514), &a).unwrap(),
        TrustStatus::Unknown
    );
    assert_eq!(reopened.entries().len(), 1);
}

#[test]
fn the_file_is_a_readable_pem_bundle() {
    let (_dir, path) = store_path();
    let (a, _) = new_cert("a.example");
    let (b, _) = new_cert("b.example");
    let store = KnownServers::open(&path).unwrap();
    store.add("A.example", Some(16514), &a).unwrap();
    store.add("::1", None, &b).unwrap();

    let text = fs::read_to_string(&path).unwrap();
    let blocks = pem::parse_many(&text).unwrap();
    let ders: Vec<&[u8]> = blocks.iter().map(|p| p.contents()).collect();
    assert_eq!(ders, [a.as_slice(), b.as_slice()]);
    assert!(blocks.iter().all(|p| p.tag() == "CERTIFICATE"));

    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("# host ")).collect();
    assert_eq!(headers.len(), 2, "{text}");
    let spki_a = store.entries()[0].spki_sha256();
    let expected = format!(
        "# host a.example port 16514 cert {} spki {} added ",
        Fingerprint::of(&a),
        spki_a
    );
    assert!(
        headers[0].starts_with(&expected),
        "{}\n{expected}",
        headers[0]
    );
    assert!(
        headers[1].starts_with("# host ::1 port any cert SHA256:"),
        "{}",
        headers[1]
    );
    assert!(!text.contains('\r'));
    assert_eq!(mode_of(&path), 0o600);
}

#[test]
fn adding_again_replaces_the_entry_in_place() {
    let (_dir, path) = store_path();
    let store = KnownServers::open(&path).unwrap();
    let (first, _) = new_cert("s.example");
    let (middle, _) = new_cert("m.example");
    let (second, _) = new_cert("s.example");
    store.add("s.example", Some(16514), &first).unwrap();
    store.add("m.example", Some(16514), &middle).unwrap();
    store.add("S.EXAMPLE", Some(16514), &second).unwrap();
    let reopened = KnownServers::open(&path).unwrap();
    let hosts: Vec<_> = reopened
        .entries()
        .iter()
        .map(|e| e.cert_der().to_vec())
        .collect();
    assert_eq!(hosts, [second.clone(), middle]);
    assert_eq!(
        reopened.lookup("s.example", Some(16514), &second).unwrap(),
        TrustStatus::Trusted
    );
    assert_eq!(
        reopened.lookup("s.example", Some(16514), &first).unwrap(),
        TrustStatus::Changed { same_key: false }
    );
}

#[test]
fn a_missing_store_is_empty_and_created_private_on_first_add() {
    let (dir, _) = store_path();
    let path = dir.path().join("pki").join("libvirt").join("known.pem");
    let store = KnownServers::open(&path).unwrap();
    assert!(store.entries().is_empty() && store.problems().is_empty());
    assert!(!store.remove("h.example", None).unwrap());
    assert!(
        !path.parent().unwrap().exists(),
        "a remove created the directory"
    );
    let (der, _) = new_cert("h.example");
    assert_eq!(
        store.lookup("h.example", None, &der).unwrap(),
        TrustStatus::Unknown
    );
    store.add("h.example", None, &der).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(path.parent().unwrap()), 0o700);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# Known servers"), "{text}");
    assert_eq!(KnownServers::open(&path).unwrap().entries().len(), 1);
}

#[test]
fn a_rewrite_keeps_the_files_mode() {
    let (_dir, path) = store_path();
    let (der, _) = new_cert("h.example");
    fs::write(&path, pem_of(&der)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    KnownServers::open(&path)
        .unwrap()
        .add("h.example", None, &der)
        .unwrap();
    assert_eq!(mode_of(&path), 0o644);
}

#[test]
fn a_plain_pem_bundle_trusts_its_certificates_for_any_host() {
    let (_dir, path) = store_path();
    let (a, _) = new_cert("a.example");
    let (b, _) = new_cert("b.example");
    let (stranger, _) = new_cert("a.example");
    let bundle = format!("{}\n{}", pem_of(&a), pem_of(&b));
    fs::write(&path, &bundle).unwrap();

    let store = KnownServers::open(&path).unwrap();
    assert!(store.problems().is_empty(), "{:?}", store.problems());
    for (host, port) in [
        ("a.example", Some(16514)),
        ("anything.example", None),
        ("::1", Some(1)),
    ] {
        let any_host = TrustStatus::TrustedAnyHost;
        assert_eq!(store.lookup(host, port, &a).unwrap(), any_host);
        assert_eq!(store.lookup(host, port, &b).unwrap(), any_host);
        assert_eq!(
            store.lookup(host, port, &stranger).unwrap(),
            TrustStatus::Unknown
        );
    }
    let entries = store.entries();
    assert_eq!(entries.len(), 2);
    assert!(entries
        .iter()
        .all(|e| e.host().is_none() && e.port().is_none()));

    // A host entry added to the bundle ends its being a plain bundle: its certificates get
    // the explicit "# host *" line, their blocks kept as they were, and keep their meaning.
    store.add("a.example", Some(16514), &stranger).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let explicit = |der: &[u8]| {
        let spki = x509_parser::parse_x509_certificate(der)
            .unwrap()
            .1
            .public_key()
            .raw
            .to_vec();
        format!(
            "# host * port any cert {} spki {}\n{}",
            Fingerprint::of(der),
            Fingerprint::of(&spki),
            pem_of(der)
        )
    };
    assert!(
        text.starts_with(&format!("{}\n{}", explicit(&a), explicit(&b))),
        "{text}"
    );
    let reopened = KnownServers::open(&path).unwrap();
    assert!(reopened.problems().is_empty(), "{:?}", reopened.problems());
    // a.example is now recorded with another certificate: for it, the bundle's are a
    // change, not trusted; for other hosts they still stand in for an issuer.
    let changed = TrustStatus::Changed { same_key: false };
    for store in [&store, &reopened] {
        for (host, status) in [
            ("a.example", changed),
            ("anything.example", TrustStatus::TrustedAnyHost),
        ] {
            assert_eq!(store.lookup(host, Some(16514), &b).unwrap(), status);
            assert_eq!(store.lookup(host, Some(16514), &a).unwrap(), status);
        }
        assert_eq!(store.entries().len(), 3);
    }
    assert_eq!(
        store.lookup("a.example", Some(16514), &stranger).unwrap(),
        TrustStatus::Trusted
    );
}

#[test]
fn damaged_entries_are_reported_by_line_and_kept_verbatim() {
    let (_dir, path) = store_path();
    let (good, _) = new_cert("good.example");
    let (victim, _) = new_cert("victim.example");
    let (late, _) = new_cert("late.example");
    let good_fp = Fingerprint::of(&good);
    let victim_pem = pem_of(&victim);
    let garbage = pem::encode_config(
        &pem::Pem::new("CERTIFICATE", b"not a certificate".to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    let mut bad_base64 = victim_pem.clone();
    bad_base64.replace_range(40..44, "!!!!");

    let mut file = String::new();
    let mut expected_lines = Vec::new();
    let mut push = |file: &mut String, text: &str, damaged: bool| {
        if damaged {
            expected_lines.push(file.lines().count() + 1);
        }
        file.push_str(text);
    };
    push(&mut file, "# a comment\n\n", false);
    push(
        &mut file,
        &format!(
            "# host good.example port 1 cert {good_fp}\n{}",
            pem_of(&good)
        ),
        false,
    );
    push(
        &mut file,
        &format!("# host b64.example port 1\n{bad_base64}"),
        true,
    );
    push(&mut file, "# host lonely.example port 1\n", true);
    push(&mut file, "\n# a comment\n", false);
    push(&mut file, &victim_pem, true);
    push(
        &mut file,
        &format!("# host garbage.example\n{garbage}"),
        true,
    );
    push(
        &mut file,
        &format!("# host odd.example colour blue\n{victim_pem}"),
        true,
    );
    push(
        &mut file,
        &format!("# host liar.example cert {good_fp}\n{victim_pem}"),
        true,
    );
    let good_spki = Fingerprint::of(
        x509_parser::parse_x509_certificate(&good)
            .unwrap()
            .1
            .public_key()
            .raw,
    );
    push(
        &mut file,
        &format!("# host keyliar.example spki {good_spki}\n{victim_pem}"),
        true,
    );
    push(
        &mut file,
        &format!("# host bad..port.example port 70000\n{victim_pem}"),
        true,
    );
    push(&mut file, "some stray text\n", true);
    push(
        &mut file,
        &format!("# host good.example port 1\n{victim_pem}"),
        true,
    );
    let cut: String = victim_pem
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    push(&mut file, &format!("# host cut.example\n{cut}"), true);
    push(
        &mut file,
        &format!("# host late.example port 2\n{}", pem_of(&late)),
        false,
    );
    fs::write(&path, &file).unwrap();

    let store = KnownServers::open(&path).unwrap();
    let problems = store.problems();
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, expected_lines, "{problems:#?}");
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    let detached = format!(
        "separated from its \"# host\" line (line {}); it is not trusted for any host",
        lines[1]
    );
    let expectations = [
        "bad PEM block",
        "not directly followed by a certificate",
        &detached,
        "cannot be parsed",
        "unknown keyword \"colour\"",
        "the certificate's fingerprint is",
        "the public key's fingerprint is",
        "70000",
        "outside any certificate block",
        "ignored, the entry on line 3 is used",
        "no END line",
    ];
    assert_eq!(messages.len(), expectations.len());
    for (message, expected) in messages.iter().zip(expectations) {
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    assert!(
        messages[0].starts_with("entry for host b64.example port 1: "),
        "{}",
        messages[0]
    );
    assert_eq!(
        problems[2].to_string(),
        format!("line {}: {}", lines[2], messages[2])
    );

    // The good entries work, the damaged ones trust nothing.
    assert_eq!(
        store.lookup("good.example", Some(1), &good).unwrap(),
        TrustStatus::Trusted
    );
    assert_eq!(
        store.lookup("late.example", Some(2), &late).unwrap(),
        TrustStatus::Trusted
    );
    for host in [
        "b64.example",
        "odd.example",
        "liar.example",
        "keyliar.example",
        "cut.example",
        "x.example",
    ] {
        assert_eq!(
            store.lookup(host, Some(1), &victim).unwrap(),
            TrustStatus::Unknown,
            "{host}"
        );
    }
    let usable: Vec<_> = store
        .entries()
        .iter()
        .map(|e| (e.host().map(str::to_owned), e.port()))
        .collect();
    assert_eq!(
        usable,
        [
            (Some("good.example".to_owned()), Some(1)),
            (Some("late.example".to_owned()), Some(2))
        ]
    );

    // Writing keeps every damaged byte, and the line numbers still match the file.
    let (new, _) = new_cert("new.example");
    store.add("new.example", None, &new).unwrap();
    store.remove("late.example", Some(2)).unwrap();
    let written = fs::read_to_string(&path).unwrap();
    let late_entry = format!("# host late.example port 2\n{}", pem_of(&late));
    let before_late = file.strip_suffix(&late_entry).unwrap();
    assert!(written.starts_with(before_late), "{written}");
    assert!(written[before_late.len()..].starts_with("# host new.example port any"));
    let reopened = KnownServers::open(&path).unwrap();
    assert_eq!(reopened.problems(), problems);
    assert_eq!(store.problems(), problems);
    assert_eq!(
        reopened.lookup("new.example", Some(3), &new).unwrap(),
        TrustStatus::Trusted
    );
}

#[test]
fn crlf_files_and_files_without_a_final_newline_are_read() {
    let (_dir, path) = store_path();
    let (a, _) = new_cert("a.example");
    let (b, _) = new_cert("b.example");
    let text = format!("# host a.example port 1\n{}", pem_of(&a)).replace('\n', "\r\n");
    fs::write(&path, text.trim_end()).unwrap();
    let store = KnownServers::open(&path).unwrap();
    assert!(store.problems().is_empty(), "{:?}", store.problems());
    assert_eq!(
        store.lookup("a.example", Some(1), &a).unwrap(),
        TrustStatus::Trusted
    );
    store.add("b.example", Some(1), &b).unwrap();
    let reopened = KnownServers::open(&path).unwrap();
    assert!(reopened.problems().is_empty(), "{:?}", reopened.problems());
    assert_eq!(reopened.entries().len(), 2);
    assert!(fs::read_to_string(&path)
        .unwrap()
        .starts_with(text.trim_end()));
}

#[test]
fn insecure_files_and_directories_are_refused() {
    let (dir, path) = store_path();
    let (der, _) = new_cert("h.example");
    let store = KnownServers::open(&path).unwrap();
    store.add("h.example", None, &der).unwrap();

    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    for e in [
        KnownServers::open(&path).unwrap_err(),
        store.reload().unwrap_err(),
        store.add("g.example", None, &der).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
        assert!(e.message().contains(&path.display().to_string()), "{e}");
        assert!(
            e.message().contains("writable by other users (mode 0666)"),
            "{e}"
        );
        assert!(
            e.message()
                .contains(&format!("chmod go-w {}", path.display())),
            "{e}"
        );
    }
    // The refused add wrote nothing.
    assert_eq!(mode_of(&path), 0o666);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o620)).unwrap();
    assert_eq!(
        KnownServers::open(&path).unwrap_err().kind(),
        ErrorKind::Store
    );
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(KnownServers::open(&path).is_ok());

    for mode in [0o777, 0o1777, 0o770] {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
        let e = KnownServers::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
        assert!(
            e.message()
                .contains(&format!("chmod go-w {}", dir.path().display())),
            "{e}"
        );
        assert!(e.message().contains(&path.display().to_string()), "{e}");
        // Even where the file does not exist yet.
        let e = KnownServers::open(dir.path().join("other.pem")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
    }
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    assert!(KnownServers::open(&path).is_ok());

    // Only root can give a file away, so only then is that part testable.
    // SAFETY: no preconditions.
    if unsafe { libc::getuid() } == 0 {
        std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
        let e = KnownServers::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
        assert!(e.message().contains("belongs to user id 4242"), "{e}");
    }
}

#[test]
fn stores_that_are_not_regular_files_are_refused() {
    let (dir, path) = store_path();
    fs::create_dir(&path).unwrap();
    let fifo = dir.path().join("fifo");
    let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    // A FIFO must be refused, not block the opening until someone writes to it.
    for path in [path, fifo] {
        let e = KnownServers::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
        assert!(e.message().contains("not a regular file"), "{e}");
    }
}

#[test]
fn presented_garbage_is_a_parse_error() {
    let (_dir, path) = store_path();
    let file = KnownServers::open(&path).unwrap();
    let memory = MemoryKnownServers::new();
    let (der, _) = new_cert("h.example");
    let mut trailing = der.clone();
    trailing.push(0);
    let stores: [&dyn KnownServersStore; 2] = [&file, &memory];
    for store in stores {
        for bad in [&b"junk"[..], &der[..der.len() - 1], &trailing] {
            let e = store.lookup("h.example", None, bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Parse, "{e}");
            assert_eq!(
                store.add("h.example", None, bad).unwrap_err().kind(),
                ErrorKind::Parse
            );
        }
    }
    assert!(!path.exists());
}

#[test]
fn threads_and_handles_adding_at_once_lose_nothing() {
    let (_dir, path) = store_path();
    let (der, _) = new_cert("t.example");
    let shared = Arc::new(KnownServers::open(&path).unwrap());
    let workers: Vec<_> = (0..6)
        .map(|worker| {
            // Half share one handle, half open their own: both must be safe.
            let store = if worker % 2 == 0 {
                Arc::clone(&shared)
            } else {
                Arc::new(KnownServers::open(&path).unwrap())
            };
            let der = der.clone();
            std::thread::spawn(move || {
                for i in 0..8 {
                    store
                        .add(&format!("w{worker}-{i}.example"), Some(16514), &der)
                        .unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let reopened = KnownServers::open(&path).unwrap();
    assert_eq!(reopened.entries().len(), 48);
    shared.reload().unwrap();
    assert_eq!(shared.entries().len(), 48);
    for worker in 0..6 {
        for i in 0..8 {
            let host = format!("w{worker}-{i}.example");
            assert_eq!(
                reopened.lookup(&host, Some(16514), &der).unwrap(),
                TrustStatus::Trusted
            );
        }
    }
}

#[test]
fn reload_sees_what_another_handle_wrote() {
    let (_dir, path) = store_path();
    let (der, _) = new_cert("h.example");
    let reader = KnownServers::open(&path).unwrap();
    let writer = KnownServers::open(&path).unwrap();
    writer.add("h.example", None, &der).unwrap();
    assert!(
        reader.entries().is_empty(),
        "entries() shows the file as last read"
    );
    reader.reload().unwrap();
    assert_eq!(reader.entries().len(), 1);
    assert_eq!(
        reader.lookup("h.example", None, &der).unwrap(),
        TrustStatus::Trusted
    );
    // An add picks up the file's current content, not the handle's old snapshot.
    let (other, _) = new_cert("i.example");
    let stale = KnownServers::open(&path).unwrap();
    writer.add("i.example", None, &other).unwrap();
    let (third, _) = new_cert("j.example");
    stale.add("j.example", None, &third).unwrap();
    assert_eq!(stale.entries().len(), 3);
    assert_eq!(
        stale.lookup("i.example", None, &other).unwrap(),
        TrustStatus::Trusted
    );
}

#[test]
fn adding_what_is_recorded_already_writes_nothing() {
    use std::os::unix::fs::MetadataExt;
    let (_dir, path) = store_path();
    let (der, _) = new_cert("h.example");
    let store = KnownServers::open(&path).unwrap();
    store.add("h.example", Some(16514), &der).unwrap();
    let inode = fs::metadata(&path).unwrap().ino();
    let text = fs::read_to_string(&path).unwrap();
    store.add("H.example.", Some(16514), &der).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().ino(),
        inode,
        "the file was rewritten"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    // Another certificate, or the same one for another port, is written.
    let (other, _) = new_cert("h.example");
    store.add("h.example", Some(16514), &other).unwrap();
    assert_ne!(fs::metadata(&path).unwrap().ino(), inode);
    store.add("h.example", None, &other).unwrap();
    assert_eq!(store.entries().len(), 2);
}

#[test]
fn stores_are_shareable_trait_objects() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KnownServers>();
    assert_send_sync::<MemoryKnownServers>();
    let store: Arc<dyn KnownServersStore> = Arc::new(MemoryKnownServers::new());
    let (der, _) = new_cert("h.example");
    let clone = Arc::clone(&store);
    std::thread::spawn(move || clone.add("h.example", Some(5), &der).unwrap())
        .join()
        .unwrap();
    assert_eq!(store.entries().unwrap().len(), 1);
}

/// The store file made of `text` with `{cert}` standing for the PEM of `der`.
fn store_with(path: &Path, text: &str, der: &[u8]) -> KnownServers {
    fs::write(path, text.replace("{cert}", &pem_of(der))).unwrap();
    KnownServers::open(path).unwrap()
}

#[test]
fn a_certificate_without_its_own_host_line_trusts_nobody_outside_a_plain_bundle() {
    let (_dir, path) = store_path();
    let (victim, _) = new_cert("a.example");
    let (other, _) = new_cert("o.example");
    let other_entry = format!("# host o.example port 1\n{}", pem_of(&other));
    // (file, the damaged entry's line, what its message says)
    let cases = [
        (
            "# Host a.example\n{cert}",
            1,
            "\"# Host a.example\" is not a \"# host\" line",
        ),
        (
            "# HOST a.example port 16514\n{cert}",
            1,
            "is not a \"# host\" line",
        ),
        (
            "# hostname a.example\n{cert}",
            1,
            "is not a \"# host\" line",
        ),
        ("# host: a.example\n{cert}", 1, "is not a \"# host\" line"),
        ("#Host=a.example\n{cert}", 1, "is not a \"# host\" line"),
        ("# Hosts\n\n{cert}", 3, "no \"# host\" line directly above"),
        (
            "# my bank's server\n{cert}",
            2,
            "no \"# host\" line directly above",
        ),
        (
            "# a comment\n\n{cert}",
            3,
            "no \"# host\" line directly above",
        ),
        (
            "host a.example\n{cert}",
            2,
            "no \"# host\" line directly above",
        ),
        (
            "subject=CN = a.example\n{cert}",
            2,
            "no \"# host\" line directly above",
        ),
        (
            "# host a.example\n\n{cert}",
            3,
            "separated from its \"# host\" line",
        ),
        ("# host a.example\n# note\n{cert}", 3, "separated from its"),
        (
            "# host * port 16514\n{cert}",
            1,
            "is for any port, not port 16514",
        ),
    ];
    for (text, line, message) in cases {
        for with_other in [false, true] {
            let text = if with_other {
                format!("{other_entry}{text}")
            } else {
                text.to_owned()
            };
            let shift = if with_other {
                other_entry.lines().count()
            } else {
                0
            };
            let store = store_with(&path, &text, &victim);
            for host in ["a.example", "bank.example"] {
                assert_eq!(
                    store.lookup(host, Some(16514), &victim).unwrap(),
                    TrustStatus::Unknown,
                    "{host} in {text:?}"
                );
            }
            let problems = store.problems();
            let damaged = problems
                .iter()
                .find(|p| p.line == line + shift && p.message.contains(message));
            assert!(damaged.is_some(), "{text:?}: {problems:#?}");
            assert!(
                store.entries().iter().all(|e| e.host().is_some()),
                "{text:?}"
            );
            assert_eq!(
                store.lookup("o.example", Some(1), &other).unwrap(),
                if with_other {
                    TrustStatus::Trusted
                } else {
                    TrustStatus::Unknown
                }
            );
            // Written back, the damaged entry stays as it was, and damaged.
            let before = fs::read(&path).unwrap();
            let (new, _) = new_cert("n.example");
            store.add("n.example", None, &new).unwrap();
            let after = fs::read(&path).unwrap();
            assert!(after.starts_with(&before), "{text:?}");
            assert_eq!(
                KnownServers::open(&path)
                    .unwrap()
                    .lookup("bank.example", Some(16514), &victim)
                    .unwrap(),
                TrustStatus::Unknown
            );
        }
    }
}

#[test]
fn host_star_is_the_explicit_any_host_entry() {
    let (_dir, path) = store_path();
    let (der, _) = new_cert("a.example");
    let fingerprint = Fingerprint::of(&der);
    for header in [
        "# host *".to_owned(),
        "# host * port any".to_owned(),
        format!("# host * cert {fingerprint} added 2026-11-23T10:00:00Z"),
    ] {
        let store = store_with(&path, &format!("# a comment\n{header}\n{{cert}}"), &der);
        assert!(store.problems().is_empty(), "{:?}", store.problems());
        for (host, port) in [("a.example", Some(16514)), ("b.example", None)] {
            assert_eq!(
                store.lookup(host, port, &der).unwrap(),
                TrustStatus::TrustedAnyHost,
                "{header}"
            );
        }
        let entries = store.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].host(), entries[0].port()), (None, None));
    }
    // A wrong fingerprint damages it as it does any entry.
    let wrong = Fingerprint::of(b"other");
    let store = store_with(&path, &format!("# host * cert {wrong}\n{{cert}}"), &der);
    assert_eq!(
        store.lookup("a.example", None, &der).unwrap(),
        TrustStatus::Unknown
    );
    assert!(
        store.problems()[0]
            .message
            .starts_with("entry for any host: the certificate's fingerprint is"),
        "{:?}",
        store.problems()
    );
}

#[test]
fn the_old_banner_is_replaced_when_the_file_is_written() {
    let (_dir, path) = store_path();
    let (a, _) = new_cert("a.example");
    let (b, _) = new_cert("b.example");
    let entry = format!("# host a.example port 1\n{}", pem_of(&a));
    let old = format!("{OLD_FILE_BANNER}{entry}");
    let store = store_with(&path, &old, &a);
    assert!(store.problems().is_empty());
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        old,
        "reading changed it"
    );
    store.add("b.example", None, &b).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(&format!("{NEW_FILE_BANNER}{entry}")),
        "{text}"
    );
    assert!(KnownServers::open(&path).unwrap().problems().is_empty());
}

#[test]
fn a_file_read_and_written_back_unchanged_is_the_same_bytes() {
    let (der, _) = new_cert("a.example");
    let pem = pem_of(&der);
    let inputs = [
        String::new(),
        "\n".to_owned(),
        "# only a comment".to_owned(),
        pem.clone(),
        pem.trim_end().to_owned(),
        format!("# host a.example\n{pem}").replace('\n', "\r\n"),
        format!("# Host a.example\n{}", pem.trim_end()),
        format!("junk\n-----END CERTIFICATE-----\n# host x\n\n{pem}\n\n"),
        format!("{pem}{}", &pem[..40]),
        format!("# host * port 3\n{pem}# host\n#host b\r\n{pem}"),
    ];
    for input in inputs {
        assert_eq!(
            String::from_utf8(rewrite_unchanged(input.as_bytes())).unwrap(),
            input
        );
    }
}

#[test]
fn a_lookup_sees_another_handles_changes_without_reload() {
    let (dir, path) = store_path();
    let (der, _) = new_cert("h.example");
    let (other, _) = new_cert("o.example");
    let reader = KnownServers::open(&path).unwrap();
    let writer = KnownServers::open(&path).unwrap();
    writer.add("h.example", Some(1), &der).unwrap();
    assert_eq!(
        reader.lookup("h.example", Some(1), &der).unwrap(),
        TrustStatus::Trusted
    );
    assert!(writer.remove("h.example", Some(1)).unwrap());
    assert_eq!(
        reader.lookup("h.example", Some(1), &der).unwrap(),
        TrustStatus::Unknown
    );

    // An edit in place, same inode and size: seen through the mtime and ctime.
    writer.add("h.example", Some(1), &der).unwrap();
    assert_eq!(
        reader.lookup("h.example", Some(1), &der).unwrap(),
        TrustStatus::Trusted
    );
    let inode = fs::metadata(&path).unwrap().ino();
    let text = fs::read_to_string(&path).unwrap();
    let edited = text.replace("# host h.example", "# host g.example");
    assert_eq!(edited.len(), text.len());
    fs::write(&path, &edited).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(
        reader.lookup("h.example", Some(1), &der).unwrap(),
        TrustStatus::Unknown
    );
    assert_eq!(
        reader.lookup("g.example", Some(1), &der).unwrap(),
        TrustStatus::Trusted
    );

    // A file that can no longer be read safely fails the lookup; it is not answered from
    // what the file said before.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    let e = reader.lookup("g.example", Some(1), &der).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store, "{e}");
    assert!(reader.entries().is_empty());
    let e = KnownServersStore::entries(&reader).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store, "{e}");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        reader.lookup("g.example", Some(1), &der).unwrap(),
        TrustStatus::Trusted
    );

    // A deleted file is an empty store.
    fs::remove_file(&path).unwrap();
    assert_eq!(
        reader.lookup("g.example", Some(1), &der).unwrap(),
        TrustStatus::Unknown
    );

    // An unchanged file is not read again: the directory's unsafe mode, which a read
    // would refuse, goes unnoticed until the file changes.
    writer.add("o.example", None, &other).unwrap();
    assert_eq!(
        reader.lookup("o.example", None, &other).unwrap(),
        TrustStatus::Trusted
    );
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(
        reader.lookup("o.example", None, &other).unwrap(),
        TrustStatus::Trusted
    );
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let e = reader.lookup("o.example", None, &other).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store, "{e}");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn timestamps_are_utc_rfc3339() {
    let time = UNIX_EPOCH + Duration::from_secs(1_795_428_000);
    assert_eq!(utc_timestamp(time), "2026-11-23T10:00:00Z");
    assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    // A clock before 1970 or past 9999 writes the epoch: `added` is informative only.
    let before = UNIX_EPOCH - Duration::from_secs(1);
    assert_eq!(utc_timestamp(before), "1970-01-01T00:00:00Z");
    let past_9999 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
    assert_eq!(utc_timestamp(past_9999), "1970-01-01T00:00:00Z");
}

// Issue 15: `virtpki known add` replaces only when asked, and pins only server certificates.

#[test]
fn add_entry_replaces_another_certificate_only_when_asked() {
    let (_dir, path) = store_path();
    let store = KnownServers::open(&path).unwrap();
    let (first, _) = new_cert("a.example");
    let (second, _) = new_cert("a.example");
    assert_eq!(
        store.add_entry("a.example", None, &first, false).unwrap(),
        Added::New
    );
    assert_eq!(
        store.add_entry("A.example.", None, &first, false).unwrap(),
        Added::AlreadyThere
    );
    let before = fs::read(&path).unwrap();
    match store.add_entry("a.example", None, &second, false).unwrap() {
        Added::Kept(old) => assert_eq!(old.cert_der(), &first[..]),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), before, "nothing is written");
    assert_eq!(
        store.lookup("a.example", None, &first).unwrap(),
        TrustStatus::Trusted
    );
    // Another port is another entry, not a replacement.
    assert_eq!(
        store
            .add_entry("a.example", Some(16514), &second, false)
            .unwrap(),
        Added::New
    );
    match store.add_entry("a.example", None, &second, true).unwrap() {
        Added::Replaced(old) => assert_eq!(old.cert_der(), &first[..]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.lookup("a.example", None, &second).unwrap(),
        TrustStatus::Trusted
    );
    // `add`, as "accept always" calls it, still replaces.
    store.add("a.example", None, &first).unwrap();
    assert_eq!(
        store.lookup("a.example", None, &first).unwrap(),
        TrustStatus::Trusted
    );
}

#[test]
fn only_a_server_certificate_may_be_pinned() {
    use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose as Eku, IsCa};
    let make = |ca: bool, eku: &[Eku]| {
        let mut p = CertificateParams::new(vec!["s.example".to_owned()]).unwrap();
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        p.extended_key_usages = eku.to_vec();
        let key = KeyPair::generate().unwrap();
        let der = p.self_signed(&key).unwrap().der().to_vec();
        crate::Certificate::from_der(der, crate::Source::Data).unwrap()
    };
    let kind = |cert: &crate::Certificate| check_server_certificate(cert).map_err(|e| e.kind());
    assert_eq!(kind(&make(true, &[])), Err(ErrorKind::NotCa));
    assert_eq!(
        kind(&make(false, &[Eku::ClientAuth])),
        Err(ErrorKind::Purpose)
    );
    let err = check_server_certificate(&make(false, &[Eku::ClientAuth])).unwrap_err();
    assert!(err.message().contains("client certificate"), "{err}");
    assert_eq!(kind(&make(false, &[Eku::ServerAuth])), Ok(()));
    assert_eq!(
        kind(&make(false, &[Eku::ServerAuth, Eku::ClientAuth])),
        Ok(())
    );
    // No extended key usage allows every purpose; anyExtendedKeyUsage too.
    assert_eq!(kind(&make(false, &[])), Ok(()));
    assert_eq!(kind(&make(false, &[Eku::Any])), Ok(()));
}
