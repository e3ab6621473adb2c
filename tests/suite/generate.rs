//! `virtpki::generate`: the certificates and CRLs it makes, and what it refuses.

use crate::common;

use std::process::Command;

use common::openssl_args::NEW_P256_KEY;
use virtpki::cert::{KeyUsage, SubjectAltName};
use virtpki::generate::{
    create_ca, Attribute, CaParams, CertificateAuthority, ClientParams, KeyType, ServerParams,
    SubjectName, Validity, BACKDATE_SECONDS,
};
use virtpki::verify::VerifyFlags;
use virtpki::{CertDataType, Context, ContextFlags, ErrorKind, Role};

const NOW: i64 = 1_790_000_000; // 2026-09-21

fn validity(days: u32) -> Validity {
    Validity { now: NOW, days }
}

fn ca(name: &str) -> (virtpki::generate::Issued, CertificateAuthority) {
    let issued = create_ca(&CaParams {
        common_name: name.into(),
        organization: Some("Test".into()),
        validity: validity(3650),
        key_type: KeyType::EcdsaP256,
    })
    .unwrap();
    let authority = CertificateAuthority::from_issued(&issued).unwrap();
    (issued, authority)
}

fn server(
    ca: &CertificateAuthority,
    cn: &str,
    dns: &[&str],
    ips: &[&str],
) -> virtpki::Result<virtpki::generate::Issued> {
    ca.issue_server(&ServerParams {
        common_name: cn.into(),
        dns_names: dns.iter().map(|d| d.to_string()).collect(),
        ip_addresses: ips.iter().map(|i| i.parse().unwrap()).collect(),
        organization: None,
        validity: validity(365),
        key_type: KeyType::EcdsaP256,
    })
}

fn client(ca: &CertificateAuthority, dn: &str) -> virtpki::generate::Issued {
    ca.issue_client(&ClientParams {
        dn: SubjectName::parse(dn).unwrap(),
        validity: validity(365),
        key_type: KeyType::Ed25519,
    })
    .unwrap()
}

#[test]
fn subject_names_parse_as_libvirt_prints_them() {
    let parsed =
        SubjectName::parse(" c = GB , st=London,O=Acme\\, Inc.,emailAddress=a@b , CN=x\\+y\\  ")
            .unwrap();
    assert_eq!(
        parsed.attributes(),
        &[
            (Attribute::Country, "GB".into()),
            (Attribute::State, "London".into()),
            (Attribute::Organization, "Acme, Inc.".into()),
            (Attribute::Email, "a@b".into()),
            (Attribute::CommonName, "x+y ".into()),
        ]
    );
    assert_eq!(parsed.get(Attribute::CommonName), Some("x+y "));
    assert_eq!(parsed.get(Attribute::Locality), None);
    for (bad, why) in [
        ("", "empty"),
        ("CN", "no '=value'"),
        ("CN=a,", "no '=value'"),
        (",CN=a", "no '=value'"),
        ("CN=a+OU=b", "multi-valued"),
        ("CN=a,CN=b", "appears twice"),
        ("FOO=a", "unknown attribute"),
        ("CN=", "empty value"),
        ("CN=a\\", "lone backslash"),
        ("C\\N=a", "attribute name"),
        ("C=G", "two-letter"),
        ("C=1A", "two-letter"),
        ("DC=ünïcode", "only ASCII"),
        ("serialNumber=a_b", "only letters"),
        // The DER writer under rcgen panicked on a "?" (found by the subject_name fuzz target).
        ("serialNumber=a?", "only letters"),
        ("serialNumber=a*", "only letters"),
    ] {
        let err = SubjectName::parse(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArg, "{bad}");
        assert!(err.message().contains(why), "{bad:?}: {err}");
    }
}

#[test]
fn a_ca_as_libvirt_wants_it() {
    let (issued, authority) = ca("Test CA");
    let cert = &issued.certificate;
    assert_eq!(cert.subject(), "O=Test,CN=Test CA");
    assert!(cert.is_ca() && cert.is_self_issued());
    assert!(cert.basic_constraints().unwrap().critical);
    let ku = cert.key_usage().unwrap();
    assert!(ku.critical && ku.allows(KeyUsage::KEY_CERT_SIGN | KeyUsage::CRL_SIGN));
    assert_eq!(cert.not_before(), NOW - BACKDATE_SECONDS);
    assert_eq!(cert.not_after(), NOW + 3650 * 86400);
    // 128-bit positive serials, all different.
    assert_eq!(cert.raw_serial().len(), 16);
    assert!(cert.raw_serial()[0] & 0x80 == 0 && cert.raw_serial()[0] != 0);
    assert_eq!(authority.certificate().fingerprint(), cert.fingerprint());
    let mut serials: Vec<Vec<u8>> = (0..20)
        .map(|_| client(&authority, "CN=c").certificate.raw_serial().to_vec())
        .collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 20);
    assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn servers_carry_every_name_and_verify() {
    let (issued, authority) = ca("Names CA");
    let server = server(
        &authority,
        "Host.Example.com",
        &["host.example.com", "alias", "*.pool.example"],
        &["192.0.2.1", "192.0.2.1", "::1"],
    )
    .unwrap();
    let sans = server.certificate.subject_alt_names();
    assert_eq!(
        sans,
        &[
            SubjectAltName::Dns("Host.Example.com".into()),
            SubjectAltName::Dns("alias".into()),
            SubjectAltName::Dns("*.pool.example".into()),
            SubjectAltName::Ip("192.0.2.1".parse().unwrap()),
            SubjectAltName::Ip("::1".parse().unwrap()),
        ]
    );
    let ku = server.certificate.key_usage().unwrap();
    assert!(ku.allows(KeyUsage::DIGITAL_SIGNATURE | KeyUsage::KEY_ENCIPHERMENT));
    let eku = server.certificate.extended_key_usage().unwrap();
    assert!(eku.server_auth && !eku.client_auth);
    let ctx = Context::new(ContextFlags::REQUIRE_SAN);
    ctx.set_verify_time(Some(NOW + 60));
    ctx.add_pem(CertDataType::CaCert, &issued.cert_pem).unwrap();
    let chain = [server.certificate.clone()];
    for host in [
        "host.example.com",
        "ALIAS",
        "a.pool.example",
        "192.0.2.1",
        "[::1]",
    ] {
        ctx.verify_server(host, None, &chain, VerifyFlags::default())
            .unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    for host in ["pool.example", "a.b.pool.example", "192.0.2.2"] {
        let err = ctx
            .verify_server(host, None, &chain, VerifyFlags::default())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{host}");
    }
    // An address as CN or as a name is an IP SAN, not a DNS one.
    let mixed = self::server(
        &authority,
        "h.example",
        &["192.0.2.5", "H.EXAMPLE"],
        &["192.0.2.5"],
    )
    .unwrap();
    assert_eq!(
        mixed.certificate.subject_alt_names(),
        &[
            SubjectAltName::Dns("h.example".into()),
            SubjectAltName::Ip("192.0.2.5".parse().unwrap()),
        ]
    );
    let by_ip = self::server(&authority, "198.51.100.4", &[], &[]).unwrap();
    assert_eq!(
        by_ip.certificate.subject_alt_names(),
        &[SubjectAltName::Ip("198.51.100.4".parse().unwrap())]
    );
    for bad in [
        "",
        "a..b",
        "-a",
        "a-",
        "a_b",
        "*",
        "a.*.b",
        "ü.example",
        &"a".repeat(64),
    ] {
        let err = self::server(&authority, "ok", &[bad], &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArg, "{bad:?}");
    }
}

#[test]
fn the_client_dn_is_the_string_libvirt_matches() {
    let (issued, authority) = ca("DN CA");
    let dn = "C=GB,ST=London,L=London,O=Libvirt Project,OU=Ops,CN=client1,UID=u1,DC=example,EMAIL=a@b.example,serialNumber=42,title=Admin";
    let c = client(&authority, dn);
    assert_eq!(c.certificate.subject(), dn);
    assert!(c.certificate.extended_key_usage().unwrap().client_auth);
    let daemon = Context::new(ContextFlags::default());
    daemon.set_verify_time(Some(NOW + 60));
    daemon
        .add_pem(CertDataType::CaCert, &issued.cert_pem)
        .unwrap();
    daemon
        .set_allowed_dn_list(Some(&[
            "C=GB,ST=London,L=London,O=Libvirt Project,OU=Ops,CN=client*",
        ]))
        .unwrap();
    let verdict = daemon
        .verify_client(std::slice::from_ref(&c.certificate), VerifyFlags::default())
        .unwrap();
    assert_eq!(verdict.dn, dn);
    // libvirt's own tool prints the same string.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pem");
    std::fs::write(&path, &c.cert_pem).unwrap();
    let out = Command::new("virt-pki-query-dn")
        .arg(&path)
        .output()
        .expect("virt-pki-query-dn (scripts/install-test-deps.sh)");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), dn);
}

#[test]
fn every_key_type_passes_libvirts_checks() {
    for key_type in [
        KeyType::Rsa { bits: 2048 },
        KeyType::EcdsaP256,
        KeyType::Ed25519,
    ] {
        let issued = create_ca(&CaParams {
            common_name: format!("{key_type} CA"),
            organization: None,
            validity: validity(3650),
            key_type,
        })
        .unwrap();
        let authority = CertificateAuthority::from_issued(&issued).unwrap();
        let leaf = authority
            .issue_server(&ServerParams {
                common_name: "h.example".into(),
                dns_names: vec![],
                ip_addresses: vec![],
                organization: None,
                validity: validity(30),
                key_type,
            })
            .unwrap();
        let ctx = Context::new(ContextFlags::default());
        ctx.set_verify_time(Some(NOW + 60));
        // The 30-day leaf is inside the expiry horizon: that warning is not libvirt's
        // (tests/suite/expiry.rs tests it).
        ctx.set_expiry_horizon(0).unwrap();
        ctx.add_pem(CertDataType::CaCert, &issued.cert_pem).unwrap();
        ctx.add_pem(CertDataType::ServerCert, &leaf.cert_pem)
            .unwrap();
        ctx.add_pem(CertDataType::ServerKey, &leaf.key_pem).unwrap();
        let report = ctx.check(Role::Server);
        assert!(
            report.is_ok() && report.warnings().count() == 0,
            "{key_type}: {}",
            report.to_text()
        );
    }
    assert_eq!(KeyType::from_name("rsa"), Some(KeyType::Rsa { bits: 3072 }));
    // Ed25519 keys as PKCS#8 v1, which GnuTLS 3.7 (libvirt 9) reads; it cannot read v2.
    let ed = create_ca(&CaParams {
        common_name: "Ed CA".into(),
        organization: None,
        validity: validity(30),
        key_type: KeyType::Ed25519,
    })
    .unwrap();
    let der = ::pem::parse(ed.key_pem.as_bytes()).unwrap().into_contents();
    assert_eq!(
        (der.len(), &der[..5]),
        (48, &[0x30, 0x2e, 0x02, 0x01, 0x00][..])
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ed.key");
    std::fs::write(&path, ed.key_pem.as_bytes()).unwrap();
    let out = Command::new("certtool")
        .args(["-k", "--infile"])
        .arg(&path)
        .output()
        .expect("certtool (scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("EdDSA (Ed25519)"));
    assert_eq!(KeyType::from_name("dsa"), None);
    for bits in [1024, 9000] {
        assert_eq!(
            KeyType::Rsa { bits }.generate().unwrap_err().kind(),
            ErrorKind::InvalidArg
        );
    }
}

#[test]
fn validity_is_checked() {
    let (_, authority) = ca("Time CA");
    let long = authority.issue_client(&ClientParams {
        dn: SubjectName::parse("CN=c").unwrap(),
        validity: validity(3651),
        key_type: KeyType::EcdsaP256,
    });
    assert!(long.unwrap_err().message().contains("outlive its CA"));
    let zero = create_ca(&CaParams {
        common_name: "z".into(),
        organization: None,
        validity: validity(0),
        key_type: KeyType::EcdsaP256,
    });
    assert_eq!(zero.unwrap_err().kind(), ErrorKind::InvalidArg);
    let empty = create_ca(&CaParams {
        common_name: " ".into(),
        organization: None,
        validity: validity(1),
        key_type: KeyType::EcdsaP256,
    });
    assert_eq!(empty.unwrap_err().kind(), ErrorKind::InvalidArg);
}

#[test]
fn cas_that_cannot_sign_are_refused() {
    let (issued, authority) = ca("Signing CA");
    let (other, _) = ca("Other CA");
    let leaf = client(&authority, "CN=leaf");
    let err = CertificateAuthority::from_pem(&issued.cert_pem, &other.key_pem).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyMismatch);
    let err = CertificateAuthority::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotCa);
    let err = CertificateAuthority::from_pem(&issued.cert_pem, &issued.cert_pem).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Parse);
    let two = format!("{}{}", issued.cert_pem, other.cert_pem);
    let err = CertificateAuthority::from_pem(&two, &issued.key_pem).unwrap_err();
    assert!(err.message().contains("2 certificates"), "{err}");
    let err = CertificateAuthority::from_pem(&issued.key_pem, &issued.key_pem).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongType);
    // A CA openssl made with a multi-valued RDN: refused with a reason, not a panic.
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509"])
        .args(NEW_P256_KEY)
        .args(["-days", "9"])
        .args([
            "-multivalue-rdn",
            "-subj",
            "/O=a+OU=b/CN=multi",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = CertificateAuthority::from_pem(
        &std::fs::read_to_string(&cert).unwrap(),
        &std::fs::read_to_string(&key).unwrap(),
    )
    .unwrap_err();
    assert!(err.message().contains("multi-valued"), "{err}");
}

#[test]
fn crls_accumulate_and_are_enforced() {
    let (issued, authority) = ca("CRL CA");
    let (a, b) = (client(&authority, "CN=a"), client(&authority, "CN=b"));
    let first = authority
        .revoke(
            None,
            &[a.certificate.clone(), a.certificate.clone()],
            &validity(30),
        )
        .unwrap();
    // Backdated as certificates are, so that hosts a little behind do not see it as future.
    let parsed = virtpki::pem::parse(
        CertDataType::CaCrl,
        first.pem.as_bytes(),
        &virtpki::Source::Data,
    )
    .unwrap();
    let virtpki::pem::Parsed::Crls(parsed) = parsed else {
        unreachable!()
    };
    assert_eq!(parsed[0].this_update(), NOW - BACKDATE_SECONDS);
    assert_eq!(parsed[0].next_update(), Some(NOW + 30 * 86400));
    assert_eq!(
        (
            first.crl_number.as_str(),
            first.total,
            first.newly_revoked.len()
        ),
        ("1", 1, 1)
    );
    let der = pem_der(&first.pem);
    let second = authority
        .revoke(
            Some(&der),
            &[a.certificate.clone(), b.certificate.clone()],
            &validity(30),
        )
        .unwrap();
    assert_eq!((second.crl_number.as_str(), second.total), ("2", 2));
    assert_eq!(
        second.newly_revoked,
        vec![b.certificate.raw_serial().to_vec()]
    );
    let daemon = Context::new(ContextFlags::default());
    daemon.set_verify_time(Some(NOW + 60));
    daemon
        .add_pem(CertDataType::CaCert, &issued.cert_pem)
        .unwrap();
    daemon.add_pem(CertDataType::CaCrl, &second.pem).unwrap();
    for c in [&a, &b] {
        let err = daemon
            .verify_client(std::slice::from_ref(&c.certificate), VerifyFlags::default())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Revoked);
    }
    let fine = client(&authority, "CN=fine");
    daemon
        .verify_client(
            std::slice::from_ref(&fine.certificate),
            VerifyFlags::default(),
        )
        .unwrap();
    // Nothing of another CA: its certificates, its CRL.
    let (_, other) = ca("Other CRL CA");
    let stranger = client(&other, "CN=s");
    assert_eq!(
        authority
            .revoke(None, &[stranger.certificate], &validity(30))
            .unwrap_err()
            .kind(),
        ErrorKind::UnknownIssuer
    );
    let foreign = other.revoke(None, &[], &validity(30)).unwrap();
    let err = authority
        .revoke(
            Some(&pem_der(&foreign.pem)),
            std::slice::from_ref(&a.certificate),
            &validity(30),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadSignature);
    assert_eq!(
        authority
            .revoke(Some(b"junk"), &[], &validity(30))
            .unwrap_err()
            .kind(),
        ErrorKind::Parse
    );
    assert_eq!(
        authority
            .revoke(None, &[], &validity(0))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArg
    );
}

fn pem_der(pem: &str) -> Vec<u8> {
    match virtpki::pem::parse(CertDataType::CaCrl, pem.as_bytes(), &virtpki::Source::Data).unwrap()
    {
        virtpki::pem::Parsed::Crls(crls) => crls[0].der().to_vec(),
        _ => unreachable!(),
    }
}

#[test]
fn a_default_ca_name_holds_the_short_host_name_and_random_bits() {
    let a = virtpki::generate::unique_ca_name("host1.example.com").unwrap();
    let b = virtpki::generate::unique_ca_name("host1.example.com").unwrap();
    for name in [&a, &b] {
        let tag = name.strip_prefix("virtpki CA host1 ").expect(name);
        assert!(
            tag.len() == 8 && tag.bytes().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
    }
    assert_ne!(a, b, "two CAs must not share a name");
    let nameless = virtpki::generate::unique_ca_name("").unwrap();
    assert!(nameless.starts_with("virtpki CA ") && nameless.len() == "virtpki CA ".len() + 8);
}

// Issue 15: DN syntax, client DNs without CN, a CA revoking itself, the CRL's entries, and
// the expectation named in "found X where Y was expected".

/// The error of `SubjectName::parse(text)`, which must fail.
fn dn_error(text: &str) -> String {
    let err = SubjectName::parse(text).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg, "{text}: {err}");
    err.message().to_owned()
}

#[test]
fn a_value_running_into_a_known_attribute_is_refused_with_the_fix() {
    // The walkthrough's case: a missing comma made a subject without CN.
    let msg = dn_error("O=Example CN=admin");
    assert!(msg.contains("a comma is missing"), "{msg}");
    assert!(msg.contains("did you mean 'O=Example,CN=admin'?"), "{msg}");
    // Each run-together attribute is fixed, in any case, with blanks around '='.
    let msg = dn_error("C=GB O=Example  cn = admin");
    assert!(
        msg.contains("did you mean 'C=GB,O=Example,cn = admin'?"),
        "{msg}"
    );
    // ';' separators: told to use commas, not "a country is a two-letter code".
    for (text, fixed) in [
        ("C=GB;O=Example;CN=admin", "C=GB,O=Example,CN=admin"),
        ("C=GB; O=Example; CN=admin", "C=GB,O=Example,CN=admin"),
        ("C=GB,O=Example;CN=admin", "C=GB,O=Example,CN=admin"),
    ] {
        let msg = dn_error(text);
        assert!(msg.contains("separated by commas, not ';'"), "{msg}");
        assert!(msg.contains(&format!("did you mean '{fixed}'?")), "{msg}");
        assert!(!msg.contains("two-letter"), "{msg}");
    }
    // What is no attribute, or follows an escaped ';', stays part of the value.
    for (text, value) in [
        ("O=Example Org,CN=a", "Example Org"),
        ("O=a=b,CN=a", "a=b"),
        ("O=Example foo=bar,CN=a", "Example foo=bar"),
        ("O=Example\\;CN\\=x,CN=a", "Example;CN=x"),
        ("O=CN=x,CN=a", "CN=x"),
        ("O=\\ CN=x,CN=a", " CN=x"),
    ] {
        let name = SubjectName::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(name.get(Attribute::Organization), Some(value), "{text}");
    }
    // An escaped '=' or blank is no way around it: GnuTLS prints neither escaped, so the DN
    // string would read as two attributes and would not parse back to this name.
    for text in ["O=Example CN\\=admin,CN=a", "O=Example\\ CN\\=admin,CN=a"] {
        let msg = dn_error(text);
        assert!(msg.contains("did you mean"), "{msg}");
    }
}

/// Every name `parse` takes, issued, prints a DN string that parses back to it: what
/// `virtpki issue client --dn "$(virtpki dn old.pem)"` relies on to re-issue a client.
#[test]
fn an_issued_dn_string_parses_back_to_its_name() {
    let (_, authority) = ca("Round trip CA");
    for text in [
        "C=GB,O=Example Org,CN=admin",
        "O=a=b,CN=a",
        "O=Example\\;CN\\=x,CN=a",
        "O=Example foo=bar,CN=a",
        "O=\\ CN=x,CN=a",
        "O=Acme\\, Inc.,CN=a b",
    ] {
        let name = SubjectName::parse(text).unwrap();
        let printed = client(&authority, text).certificate.subject().to_owned();
        assert_eq!(
            SubjectName::parse(&printed).ok().as_ref(),
            Some(&name),
            "{text} printed as {printed}"
        );
    }
}

#[test]
fn a_client_dn_without_cn_is_refused_before_a_key_is_made() {
    let (_, authority) = ca("CN rule CA");
    for dn in ["C=GB,O=Example", "O=Example,OU=Admins", "UID=admin"] {
        let err = authority
            .issue_client(&ClientParams {
                dn: SubjectName::parse(dn).unwrap(),
                validity: validity(365),
                // A key this size takes seconds: the refusal comes first.
                key_type: KeyType::Rsa { bits: 8192 },
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArg, "{dn}");
        assert!(err.message().contains("needs one"), "{err}");
    }
    // With a CN, anywhere in the order, it is issued.
    assert_eq!(
        client(&authority, "CN=admin,O=Example")
            .certificate
            .subject(),
        "CN=admin,O=Example"
    );
}

#[test]
fn a_ca_cannot_revoke_its_own_certificate() {
    let (issued, authority) = ca("Self CA");
    let err = authority
        .revoke(
            None,
            std::slice::from_ref(&issued.certificate),
            &validity(30),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    assert!(err.message().contains("this CA's own certificate"), "{err}");
    // Nor with another certificate it revokes in the same call: nothing is made.
    let leaf = client(&authority, "CN=a");
    assert!(authority
        .revoke(
            None,
            &[leaf.certificate.clone(), issued.certificate],
            &validity(30)
        )
        .is_err());
    let ok = authority
        .revoke(None, std::slice::from_ref(&leaf.certificate), &validity(30))
        .unwrap();
    assert_eq!(ok.total, 1);
}

#[test]
fn a_crl_lists_its_serials_and_names_the_certificates_they_stand_for() {
    let (_, authority) = ca("List CA");
    let (_, other) = ca("List CA 2");
    let a = client(&authority, "CN=a");
    let b = server(&authority, "b.example", &[], &[]).unwrap();
    let stranger = client(&other, "CN=a");
    let made = authority
        .revoke(
            None,
            &[a.certificate.clone(), b.certificate.clone()],
            &validity(30),
        )
        .unwrap();
    let crl = virtpki::Crl::from_der(pem_der(&made.pem), virtpki::Source::Data, "crl").unwrap();
    let entries = crl.revoked();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].serial_hex(), a.certificate.serial_hex());
    assert_eq!(entries[1].serial, b.certificate.raw_serial());
    assert_eq!(entries[0].revoked_at, NOW - BACKDATE_SECONDS);
    assert!(crl.entry_is(&entries[0], &a.certificate));
    assert!(!crl.entry_is(&entries[0], &b.certificate));
    // Another CA's certificate with the same serial is not the one listed.
    let mut same_serial = entries[0].clone();
    same_serial.serial = stranger.certificate.raw_serial().to_vec();
    assert!(!crl.entry_is(&same_serial, &stranger.certificate));
}

#[test]
fn a_wrong_type_names_what_the_caller_expected() {
    let (issued, _) = ca("Type CA");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, issued.key_pem.as_bytes()).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let err = virtpki::pem::read_certificates_expecting(&key, "server certificate").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongType);
    assert!(
        err.message()
            .ends_with("key.pem: found a private key where a server certificate was expected"),
        "{err}"
    );
    // Without an expectation: "a certificate", not "a CA certificate".
    let err = virtpki::pem::read_certificates(&key).unwrap_err();
    assert!(
        err.message()
            .ends_with("found a private key where a certificate was expected"),
        "{err}"
    );
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "\n").unwrap();
    let err =
        virtpki::pem::read_certificates_expecting(&empty, "certificate to revoke").unwrap_err();
    assert!(
        err.message().contains("expected a certificate to revoke"),
        "{err}"
    );
}

#[test]
fn a_certificate_is_issued_by_its_ca_and_not_by_another_of_the_same_name() {
    let (ca_issued, authority) = ca("Twin CA");
    let (twin_issued, _) = ca("Twin CA");
    let leaf = client(&authority, "C=GB,O=Test,CN=twin-test").certificate;
    let (ca_cert, twin) = (ca_issued.certificate, twin_issued.certificate);
    assert_eq!(ca_cert.subject(), twin.subject());
    assert!(leaf.is_issued_by(&ca_cert));
    assert!(!leaf.is_issued_by(&twin), "same name, another key");
    assert!(!ca_cert.is_issued_by(&leaf));
    assert!(ca_cert.is_issued_by(&ca_cert), "self-signed");
}

/// Issue 15 review: `install` takes a newer CRL without --force only when it is of the same
/// CA, signed by the CA certificate installed with it, and numbered higher
/// ([`virtpki::Crl::check_update_of`]); a rollback, another CA's list or one of a same-named
/// CA with another key is refused with the rule that failed.
#[test]
fn a_crl_update_is_of_the_same_ca_signed_by_it_and_numbered_higher() {
    use virtpki_tools::kit::{crl_pem_numbered, self_signed, Spec};
    let crl =
        |pem: String| virtpki::Crl::from_der(pem_der(&pem), virtpki::Source::Data, "crl").unwrap();
    let ca = self_signed(&Spec::ca("Update CA"));
    let same_name = self_signed(&Spec::ca("Update CA"));
    let other = self_signed(&Spec::ca("Other CA"));
    let cert = ca.parsed();
    let installed = crl(crl_pem_numbered(&ca, 5, &[1]));
    let newer = crl(crl_pem_numbered(&ca, 6, &[1, 2]));
    assert!(newer.is_signed_by(&cert));
    newer.check_update_of(&installed, &cert).unwrap();
    for (number, what) in [(5, "equal"), (4, "older")] {
        let e = crl(crl_pem_numbered(&ca, number, &[]))
            .check_update_of(&installed, &cert)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArg, "{what}");
        assert!(e.message().contains("roll back revocations"), "{e}");
    }
    let forged = crl(crl_pem_numbered(&same_name, 9, &[]));
    assert!(!forged.is_signed_by(&cert));
    let e = forged.check_update_of(&installed, &cert).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadSignature, "{e}");
    let e = crl(crl_pem_numbered(&other, 9, &[]))
        .check_update_of(&installed, &cert)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownIssuer, "{e}");
}

// Requests and signing (issue 12, item 3): the key never leaves the requester.

/// Every extension of a certificate except the key identifiers (which differ per key), as
/// (OID, critical, value).
fn template_extensions(pem: &str) -> Vec<(String, bool, Vec<u8>)> {
    use x509_parser::prelude::FromDer;
    let der = ::pem::parse(pem).unwrap().into_contents();
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    cert.extensions()
        .iter()
        .map(|e| (e.oid.to_id_string(), e.critical, e.value.to_vec()))
        .filter(|(oid, _, _)| oid != "2.5.29.14" && oid != "2.5.29.35")
        .collect()
}

#[test]
fn a_signed_request_follows_the_template_issue_writes() {
    use virtpki::generate::{request_client, request_server, ServerRequestParams};
    let (_, ca) = ca("Request CA");
    for key_type in [
        KeyType::EcdsaP256,
        KeyType::Ed25519,
        KeyType::Rsa { bits: 2048 },
    ] {
        let req = request_server(&ServerRequestParams {
            dn: SubjectName::parse("O=Example,CN=host1.example.com").unwrap(),
            dns_names: vec!["host1".into()],
            ip_addresses: vec!["192.0.2.1".parse().unwrap()],
            key_type,
        })
        .unwrap();
        let signed = ca
            .sign_request(Role::Server, &req.csr_pem, &validity(365))
            .unwrap();
        assert!(signed.ignored.is_empty(), "{:?}", signed.ignored);
        let issued = ca
            .issue_server_dn(&virtpki::generate::ServerDnParams {
                dn: SubjectName::parse("O=Example,CN=host1.example.com").unwrap(),
                dns_names: vec!["host1".into()],
                ip_addresses: vec!["192.0.2.1".parse().unwrap()],
                validity: validity(365),
                key_type,
            })
            .unwrap();
        assert_eq!(signed.certificate.subject(), issued.certificate.subject());
        // Key usage, EKU, basic constraints and the SANs in their order, byte for byte.
        assert_eq!(
            template_extensions(&signed.cert_pem),
            template_extensions(&issued.cert_pem),
            "{key_type}"
        );
        // The certificate and the requester's key make a pair libvirt loads.
        let ctx = Context::new(ContextFlags::default());
        ctx.add_pem(CertDataType::CaCert, &ca.certificate().to_pem())
            .unwrap();
        ctx.add_pem(CertDataType::ServerCert, &signed.cert_pem)
            .unwrap();
        ctx.add_pem(CertDataType::ServerKey, &req.key_pem).unwrap();
        let report = ctx.check(Role::Server);
        assert!(report.is_ok(), "{key_type}: {}", report.to_text());

        let req = request_client(
            &SubjectName::parse("C=GB,O=Example,CN=admin").unwrap(),
            key_type,
        )
        .unwrap();
        let signed = ca
            .sign_request(Role::Client, &req.csr_pem, &validity(365))
            .unwrap();
        let issued = client(&ca, "C=GB,O=Example,CN=admin");
        assert_eq!(signed.certificate.subject(), "C=GB,O=Example,CN=admin");
        assert_eq!(
            template_extensions(&signed.cert_pem),
            template_extensions(&issued.cert_pem)
        );
        let ctx = Context::new(ContextFlags::default());
        ctx.add_pem(CertDataType::CaCert, &ca.certificate().to_pem())
            .unwrap();
        ctx.add_pem(CertDataType::ClientCert, &signed.cert_pem)
            .unwrap();
        ctx.add_pem(CertDataType::ClientKey, &req.key_pem).unwrap();
        let report = ctx.check(Role::Client);
        assert!(report.is_ok(), "{key_type}: {}", report.to_text());
    }
}

/// A request made with rcgen directly, asking for whatever a test wants.
fn raw_request(
    dn: &[(rcgen::DnType, &str)],
    tweak: impl FnOnce(&mut rcgen::CertificateParams),
) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    for (t, v) in dn {
        p.distinguished_name.push(t.clone(), *v);
    }
    tweak(&mut p);
    p.serialize_request(&key).unwrap().pem().unwrap()
}

#[test]
fn a_request_is_refused_for_a_bad_signature_ca_true_or_the_other_roles_purpose() {
    use rcgen::{DnType, ExtendedKeyUsagePurpose as Eku, IsCa, KeyUsagePurpose as Ku};
    let (_, ca) = ca("Refusing CA");
    let cn = [(DnType::CommonName, "host1.example.com")];
    // A flipped byte of the signature.
    let good = raw_request(&cn, |_| {});
    let mut der = ::pem::parse(&good).unwrap().into_contents();
    let last = der.len() - 1;
    der[last] ^= 1;
    let flipped = ::pem::encode(&::pem::Pem::new("CERTIFICATE REQUEST", der));
    let e = ca
        .sign_request(Role::Server, &flipped, &validity(30))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadSignature, "{e}");
    assert!(e.message().contains("signature does not verify"), "{e}");
    // CA:TRUE.
    let csr = raw_request(&cn, |p| {
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained)
    });
    let e = ca
        .sign_request(Role::Server, &csr, &validity(30))
        .unwrap_err();
    assert!(e.message().contains("CA:TRUE"), "{e}");
    // clientAuth in a server request, serverAuth in a client one.
    let csr = raw_request(&cn, |p| p.extended_key_usages = vec![Eku::ClientAuth]);
    let e = ca
        .sign_request(Role::Server, &csr, &validity(30))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Purpose, "{e}");
    let csr = raw_request(&[(DnType::CommonName, "admin")], |p| {
        p.extended_key_usages = vec![Eku::ServerAuth]
    });
    let e = ca
        .sign_request(Role::Client, &csr, &validity(30))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Purpose, "{e}");
    // A CA's key usage is asking for a CA's powers: refused like CA:TRUE.
    for ku in [Ku::KeyCertSign, Ku::CrlSign] {
        let csr = raw_request(&cn, |p| p.key_usages = vec![Ku::DigitalSignature, ku]);
        let e = ca
            .sign_request(Role::Server, &csr, &validity(30))
            .unwrap_err();
        assert!(e.message().contains("a CA's key usage"), "{e}");
    }
    // Key usage and the role's own purpose are ignored (the template decides), and said.
    let csr = raw_request(&cn, |p| {
        p.key_usages = vec![Ku::DigitalSignature, Ku::DataEncipherment];
        p.extended_key_usages = vec![Eku::ServerAuth];
    });
    let signed = ca.sign_request(Role::Server, &csr, &validity(30)).unwrap();
    assert_eq!(signed.ignored, ["keyUsage", "extendedKeyUsage"]);
    assert!(!signed.certificate.key_usage().unwrap().allows(1 << 3));
    // A client DN without CN, a server DN without CN.
    let e = virtpki::generate::request_client(
        &SubjectName::parse("C=GB,O=Example").unwrap(),
        KeyType::EcdsaP256,
    )
    .unwrap_err();
    assert!(e.message().contains("has no CN"), "{e}");
    let csr = raw_request(&[(DnType::OrganizationName, "Example")], |_| {});
    let e = ca
        .sign_request(Role::Client, &csr, &validity(30))
        .unwrap_err();
    assert!(e.message().contains("has no CN"), "{e}");
    let e = ca
        .sign_request(Role::Server, &csr, &validity(30))
        .unwrap_err();
    assert!(e.message().contains("needs a CN"), "{e}");
    // A weak key: RSA of 1024 bits (made with openssl; neither ring nor virtpki makes one).
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-subj",
            "/CN=host1",
        ])
        .args(["-keyout", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csr = String::from_utf8(out.stdout).unwrap();
    // Refused for its key size before its signature is checked, as the key of a certificate
    // is (it was "RSA under 2048 bits" among the reasons of a signature that failed).
    let e = ca
        .sign_request(Role::Server, &csr, &validity(30))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("RSA key has 1024 bits"), "{e}");
    // Two requests in one text, or none.
    let two = format!("{good}{good}");
    let e = ca
        .sign_request(Role::Server, &two, &validity(30))
        .unwrap_err();
    assert!(e.message().contains("2 PEM blocks"), "{e}");
    let e = ca
        .sign_request(Role::Server, "hello", &validity(30))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse, "{e}");
    // Not a request at all.
    let e = ca
        .sign_request(Role::Server, &ca.certificate().to_pem(), &validity(30))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongType, "{e}");
}

/// A request is hostile input: it gets no subject the issuer would rewrite (a repeated
/// attribute, kept once in silence), and neither its CA's name nor its CA's key.
#[test]
fn a_request_cannot_take_a_rewritten_subject_or_its_cas_name_or_key() {
    use rcgen::DnType;
    use virtpki::subject::{Attribute, SubjectName};
    let twice = SubjectName::from_attributes(vec![
        (Attribute::CommonName, "admin".into()),
        (Attribute::Organization, "Org".into()),
        (Attribute::CommonName, "client1".into()),
    ])
    .unwrap_err();
    assert!(twice.message().contains("CN appears twice"), "{twice}");

    let (issued, ca) = ca("Named CA");
    let own_name = raw_request(
        &[
            (DnType::OrganizationName, "Test"),
            (DnType::CommonName, "Named CA"),
        ],
        |_| {},
    );
    let e = ca
        .sign_request(Role::Client, &own_name, &validity(30))
        .unwrap_err();
    assert!(e.message().contains("this CA's own name"), "{e}");

    let ca_key = rcgen::KeyPair::from_pem(&issued.key_pem).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "admin");
    let own_key = p.serialize_request(&ca_key).unwrap().pem().unwrap();
    let e = ca
        .sign_request(Role::Client, &own_key, &validity(30))
        .unwrap_err();
    assert!(e.message().contains("this CA's own public key"), "{e}");
}

/// A PKCS#10 request for `CN=cn` with the attributes `attrs` (each a whole Attribute), signed
/// (ECDSA P-256, SHA-256) by a new key: requests openssl cannot make, two extensionRequest
/// attributes among them.
fn request_with_attributes(cn: &str, attrs: &[Vec<u8>]) -> String {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    use virtpki_tools::kit::tlv;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let oid = |bytes: &[u8]| tlv(0x06, bytes);
    let cn_atv = [oid(&[0x55, 4, 3]), tlv(0x0c, cn.as_bytes())].concat();
    let name = tlv(0x30, &tlv(0x31, &tlv(0x30, &cn_atv)));
    let ec_alg = [
        oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
        oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
    ]
    .concat();
    let point = [&[0u8][..], key.public_key().as_ref()].concat();
    let spki = tlv(0x30, &[tlv(0x30, &ec_alg), tlv(0x03, &point)].concat());
    let info = tlv(
        0x30,
        &[tlv(0x02, &[0]), name, spki, tlv(0xa0, &attrs.concat())].concat(),
    );
    let sig = key.sign(&rng, &info).unwrap();
    let alg = tlv(
        0x30,
        &oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
    );
    let bits = [&[0u8][..], sig.as_ref()].concat();
    let der = tlv(0x30, &[info, alg, tlv(0x03, &bits)].concat());
    pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der))
}

/// An extensionRequest attribute asking for `exts`, each `(OID bytes, extnValue)`.
fn extension_request(exts: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
    use virtpki_tools::kit::tlv;
    let exts: Vec<u8> = exts
        .iter()
        .flat_map(|(oid, value)| tlv(0x30, &[tlv(0x06, oid), tlv(0x04, value)].concat()))
        .collect();
    let ext_req_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
    tlv(
        0x30,
        &[tlv(0x06, &ext_req_oid), tlv(0x31, &tlv(0x30, &exts))].concat(),
    )
}

/// Every extensionRequest attribute of a request is read (only the first was): a CA's key
/// usage asked in the second is refused, names and unknown extensions in the second are
/// taken and listed.
#[test]
fn sign_request_reads_every_extension_request() {
    use virtpki_tools::kit::tlv;
    const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    const SAN: &[u8] = &[0x55, 0x1d, 0x11];
    let (_, authority) = ca("Ext CA");
    let digital_signature = tlv(0x03, &[7, 0x80]);
    let key_cert_sign = tlv(0x03, &[2, 0x04]);
    let csr = request_with_attributes(
        "c1",
        &[
            extension_request(&[(KEY_USAGE, digital_signature)]),
            extension_request(&[(KEY_USAGE, key_cert_sign)]),
        ],
    );
    let e = authority
        .sign_request(Role::Client, &csr, &validity(30))
        .unwrap_err();
    assert!(
        e.message().contains("a CA's key usage (keyCertSign)"),
        "{e}"
    );
    let csr = request_with_attributes(
        "host.example.com",
        &[
            extension_request(&[(SAN, tlv(0x30, &tlv(0x82, b"a.example.com")))]),
            extension_request(&[
                (SAN, tlv(0x30, &tlv(0x82, b"b.example.com"))),
                (&[0x2a, 3, 4], tlv(0x05, &[])),
            ]),
        ],
    );
    let signed = authority
        .sign_request(Role::Server, &csr, &validity(30))
        .unwrap();
    let sans: Vec<String> = signed
        .certificate
        .subject_alt_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        sans,
        [
            "DNS:host.example.com",
            "DNS:a.example.com",
            "DNS:b.example.com"
        ]
    );
    assert_eq!(signed.ignored, ["1.2.3.4"]);
}

/// An extensionRequest attribute is a SET OF Extensions: x509-parser reads its first value
/// only, so a CA's key usage asked for in a second value went unchecked and unlisted.
#[test]
fn sign_request_refuses_an_extension_request_with_two_values() {
    use virtpki_tools::kit::tlv;
    const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    let (_, authority) = ca("Ext CA");
    let extensions = |bits: &[u8]| {
        tlv(
            0x30,
            &tlv(
                0x30,
                &[tlv(0x06, KEY_USAGE), tlv(0x04, &tlv(0x03, bits))].concat(),
            ),
        )
    };
    let ext_req_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
    let two = tlv(
        0x30,
        &[
            tlv(0x06, &ext_req_oid),
            tlv(
                0x31,
                &[extensions(&[7, 0x80]), extensions(&[2, 0x04])].concat(),
            ),
        ]
        .concat(),
    );
    let csr = request_with_attributes("c1", &[two]);
    let e = authority
        .sign_request(Role::Client, &csr, &validity(30))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse, "{e}");
    assert!(e.message().contains("extensionRequest"), "{e}");
    // One value, as every tool writes it, is still read.
    let one = tlv(
        0x30,
        &[tlv(0x06, &ext_req_oid), tlv(0x31, &extensions(&[7, 0x80]))].concat(),
    );
    let signed = authority
        .sign_request(
            Role::Client,
            &request_with_attributes("c1", &[one]),
            &validity(30),
        )
        .unwrap();
    assert_eq!(signed.ignored, ["keyUsage"]);
}

/// The cap on names counts the CN, which is written as the first DNS SAN: 64 other names and
/// a CN among none of them would be 65 SANs in the certificate.
#[test]
fn the_name_cap_counts_the_common_name() {
    let (_, authority) = ca("Cap CA");
    let names: Vec<String> = (0..64).map(|i| format!("h{i}.example.com")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let e = server(&authority, "host.example.com", &refs, &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("at most 64"), "{e}");
    // The CN among the names, or 63 others: 64 SANs, issued.
    let issued = server(&authority, "h0.example.com", &refs, &[]).unwrap();
    assert_eq!(issued.certificate.subject_alt_names().len(), 64);
    let issued = server(&authority, "host.example.com", &refs[..63], &[]).unwrap();
    assert_eq!(issued.certificate.subject_alt_names().len(), 64);
}

/// A wildcard needs two labels after it: GnuTLS matches `*.com` (or `*.example.`) to no host
/// at all, so libvirt's clients refuse the certificate; the warning printed for wildcards
/// ("every host name one label under it") would say the opposite. In the CN (written as the
/// first DNS SAN) as in the names.
#[test]
fn a_wildcard_over_a_single_label_is_refused() {
    let (_, authority) = ca("Wild CA");
    for bad in ["*.com", "*.example.", "*.com.", "*.example.com."] {
        let e = server(&authority, "host.example.com", &[bad], &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArg, "{bad}: {e}");
        assert!(e.message().contains("two labels after"), "{bad}: {e}");
        let e = server(&authority, bad, &[], &[]).unwrap_err();
        assert!(e.message().contains("two labels after"), "{bad}: {e}");
    }
    server(&authority, "host.example.com", &["*.example.com"], &[]).unwrap();
    server(&authority, "*.pool.example", &[], &[]).unwrap();
}

/// The cap on names counts across extensionRequest attributes: 33 names in each of two is
/// refused as 66 would be in one.
#[test]
fn the_name_cap_counts_every_extension_request() {
    use virtpki_tools::kit::tlv;
    const SAN: &[u8] = &[0x55, 0x1d, 0x11];
    let (_, authority) = ca("Cap CA");
    let names = |from: usize| {
        let list: Vec<u8> = (from..from + 33)
            .flat_map(|i| tlv(0x82, format!("h{i}.example.com").as_bytes()))
            .collect();
        extension_request(&[(SAN, tlv(0x30, &list))])
    };
    let csr = request_with_attributes("host.example.com", &[names(0), names(33)]);
    let e = authority
        .sign_request(Role::Server, &csr, &validity(30))
        .unwrap_err();
    assert!(e.message().contains("at most 64"), "{e}");
}

/// What a request asks for and is ignored is listed once per kind: 60,000 copies of one
/// unknown extension (a request near the 1 MiB cap) are one line of the summary, not 60,000.
#[test]
fn ignored_extensions_are_listed_once() {
    let (_, authority) = ca("Huge CA");
    let exts: Vec<(&[u8], Vec<u8>)> = (0..60_000)
        .map(|_| (&[0x2a, 3, 4][..], virtpki_tools::kit::tlv(0x05, &[])))
        .collect();
    let csr = request_with_attributes("c1", &[extension_request(&exts)]);
    assert!(csr.len() < 1024 * 1024);
    let signed = authority
        .sign_request(Role::Client, &csr, &validity(30))
        .unwrap();
    assert_eq!(signed.ignored, ["1.2.3.4"]);
}
