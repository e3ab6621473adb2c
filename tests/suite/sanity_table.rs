//! libvirt's context test table (tests/virnettlscontexttest.c): CA and leaf variants, each
//! loaded through the sanity check for its role. `libvirt` is the verdict libvirt 9's rules give
//! (virNetTLSContextSanityCheckCredentials); `ours` is this library's, which differs only where
//! libvirt is wrong, and then the report must say so.

mod common;

use common::*;
use virtpki::{CertDataType, Context, ContextFlags, ErrorKind, Role, Severity};

struct Case {
    name: &'static str,
    role: Role,
    /// Certificates of the CA file, first one the issuer of the leaf.
    cas: Vec<Spec>,
    leaf: Spec,
    /// Whether the leaf is issued by a CA outside the CA file.
    foreign_issuer: bool,
    libvirt_ok: bool,
    /// `None` = accepted; else the error kind reported.
    ours: Option<ErrorKind>,
}

fn ca() -> Spec {
    Spec::ca("Test CA")
        .bc(Some(true), true)
        .ku(KU_KEY_CERT_SIGN | KU_CRL_SIGN, true)
}

fn server() -> Spec {
    Spec::server("server.example.com")
        .bc(Some(false), true)
        .ku(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, true)
        .eku(&[SERVER_AUTH], true)
}

fn client() -> Spec {
    Spec::client("client1")
        .bc(Some(false), true)
        .ku(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, true)
        .eku(&[CLIENT_AUTH], true)
}

fn case(
    name: &'static str,
    role: Role,
    ca: Spec,
    leaf: Spec,
    libvirt_ok: bool,
    ours: Option<ErrorKind>,
) -> Case {
    Case {
        name,
        role,
        cas: vec![ca],
        leaf,
        foreign_issuer: false,
        libvirt_ok,
        ours,
    }
}

fn table() -> Vec<Case> {
    use ErrorKind::*;
    use Role::{Client, Server};
    let past = date(2020, 1, 1);
    let expired = (date(2019, 1, 1), date(2025, 1, 1));
    let future = (date(2027, 1, 1), date(2030, 1, 1));
    let _ = past;
    vec![
        // A perfect CA, perfect client and server.
        case("perfect server", Server, ca(), server(), true, None),
        case("perfect client", Client, ca(), client(), true, None),
        // Other CAs that are good.
        case(
            "CA without key usage",
            Server,
            ca().ku(0, false).bc(Some(true), true),
            server(),
            true,
            None,
        ),
        case(
            "CA non-critical basic constraints",
            Server,
            Spec::ca("CA")
                .bc(Some(true), false)
                .ku(KU_KEY_CERT_SIGN, true),
            server(),
            true,
            None,
        ),
        // libvirt's own table calls this acceptable, but libvirt 9.0 with GnuTLS 3.7.9 does
        // not start with it (GnuTLS enforces keyCertSign whatever the criticality), as
        // `make interop` shows.
        case(
            "CA non-critical key usage without certSign",
            Server,
            ca().ku(KU_CRL_SIGN, false),
            server(),
            false,
            Some(KeyUsage),
        ),
        // Bad CAs.
        case(
            "CA without basic constraints",
            Server,
            Spec::ca("CA").bc(None, false).ku(KU_KEY_CERT_SIGN, true),
            server(),
            false,
            Some(NotCa),
        ),
        case(
            "CA with CA:FALSE",
            Server,
            Spec::ca("CA")
                .bc(Some(false), true)
                .ku(KU_KEY_CERT_SIGN, true),
            server(),
            false,
            Some(NotCa),
        ),
        case(
            "CA critical key usage without certSign",
            Server,
            ca().ku(KU_DIGITAL_SIGNATURE, true),
            server(),
            false,
            Some(KeyUsage),
        ),
        // Good server and client certificates.
        case(
            "server without key usage",
            Server,
            ca(),
            server().ku(0, false).bc(Some(false), true),
            true,
            None,
        ),
        case(
            "server non-critical key usage certSign only",
            Server,
            ca(),
            server().ku(KU_KEY_CERT_SIGN, false),
            true,
            None,
        ),
        case(
            "server non-critical clientAuth purpose",
            Server,
            ca(),
            server().eku(&[CLIENT_AUTH], false),
            true,
            None,
        ),
        case(
            "server both purposes",
            Server,
            ca(),
            server().eku(&[CLIENT_AUTH, SERVER_AUTH], true),
            true,
            None,
        ),
        case(
            "client non-critical serverAuth purpose",
            Client,
            ca(),
            client().eku(&[SERVER_AUTH], false),
            true,
            None,
        ),
        // Bad server and client certificates.
        case(
            "server is a CA",
            Server,
            ca(),
            server().bc(Some(true), true),
            false,
            Some(NotCa),
        ),
        case(
            "server critical key usage certSign only",
            Server,
            ca(),
            server().ku(KU_KEY_CERT_SIGN, true),
            false,
            Some(KeyUsage),
        ),
        case(
            "RSA server critical key usage without keyEncipherment",
            Server,
            ca(),
            server().ku(KU_DIGITAL_SIGNATURE, true).alg(Alg::Rsa2048),
            false,
            Some(KeyUsage),
        ),
        case(
            "server critical clientAuth purpose",
            Server,
            ca(),
            server().eku(&[CLIENT_AUTH], true),
            false,
            Some(Purpose),
        ),
        case(
            "client critical serverAuth purpose",
            Client,
            ca(),
            client().eku(&[SERVER_AUTH], true),
            false,
            Some(Purpose),
        ),
        case(
            "client is a CA",
            Client,
            ca(),
            client().bc(Some(true), true),
            false,
            Some(NotCa),
        ),
        // Where libvirt is wrong.
        case(
            "ECDSA server without keyEncipherment (RFC 8813)",
            Server,
            ca(),
            server().ku(KU_DIGITAL_SIGNATURE, true),
            false,
            None,
        ),
        case(
            "Ed25519 client without keyEncipherment (RFC 8813)",
            Client,
            ca(),
            client().ku(KU_DIGITAL_SIGNATURE, true).alg(Alg::Ed25519),
            false,
            None,
        ),
        case(
            "server anyExtendedKeyUsage",
            Server,
            ca(),
            server().eku(&[ANY_EKU], true),
            false,
            None,
        ),
        case(
            "server codeSigning purpose only",
            Server,
            ca(),
            server().eku(&[CODE_SIGNING], true),
            true,
            Some(Purpose),
        ),
        // Times.
        case(
            "expired CA",
            Server,
            ca().valid(expired.0, expired.1),
            server(),
            false,
            Some(Expired),
        ),
        case(
            "CA not yet active",
            Server,
            ca().valid(future.0, future.1),
            server(),
            false,
            Some(NotYetValid),
        ),
        case(
            "expired server",
            Server,
            ca(),
            server().valid(expired.0, expired.1),
            false,
            Some(Expired),
        ),
        case(
            "client not yet active",
            Client,
            ca(),
            client().valid(future.0, future.1),
            false,
            Some(NotYetValid),
        ),
        // Chains and bundles.
        Case {
            name: "CA bundle with root and intermediate",
            role: Server,
            cas: vec![
                ca(),
                Spec::ca("Intermediate CA")
                    .bc(Some(true), true)
                    .ku(KU_KEY_CERT_SIGN, true),
            ],
            leaf: server(),
            foreign_issuer: false,
            libvirt_ok: true,
            ours: None,
        },
        Case {
            name: "unrelated expired CA in the bundle",
            role: Server,
            cas: vec![ca(), Spec::ca("Old CA").valid(expired.0, expired.1)],
            leaf: server(),
            foreign_issuer: false,
            libvirt_ok: false,
            ours: None,
        },
        Case {
            name: "server issued by another CA",
            role: Server,
            cas: vec![ca()],
            leaf: server(),
            foreign_issuer: true,
            libvirt_ok: false,
            ours: Some(UnknownIssuer),
        },
    ]
}

/// Builds the case's files: CA file (root first; an "Intermediate" CA is issued by the root
/// and issues the leaf), certificate and key; loads them through the sanity check.
fn run(case: &Case, dir: &std::path::Path) -> virtpki::Result<virtpki::Report> {
    let root = self_signed(&case.cas[0]);
    let mut ca_pem = root.pem();
    let mut issuer = &root;
    let intermediates: Vec<Made> = case.cas[1..]
        .iter()
        .map(|spec| {
            if spec.cn.starts_with("Intermediate") {
                signed_by(spec, &root)
            } else {
                self_signed(spec)
            }
        })
        .collect();
    for (spec, made) in case.cas[1..].iter().zip(&intermediates) {
        ca_pem.push_str(&made.pem());
        if spec.cn.starts_with("Intermediate") {
            issuer = made;
        }
    }
    let foreign = self_signed(&Spec {
        cn: "Other CA".into(),
        ..ca()
    });
    if case.foreign_issuer {
        issuer = &foreign;
    }
    let leaf = signed_by(&case.leaf, issuer);
    let role = case.role.name();
    write(dir, "cacert.pem", ca_pem, 0o644);
    write(dir, &format!("{role}cert.pem"), leaf.pem(), 0o644);
    write(dir, &format!("{role}key.pem"), leaf.key_pem(), 0o600);
    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(now()));
    let env = virtpki::locations::Environment {
        root: dir.join("no-root"),
        home: None,
        uid: 0,
    };
    let files = virtpki::locations::libvirt(&env, case.role, Some(dir));
    ctx.load_files(&files)?;
    Ok(ctx.check(case.role))
}

#[test]
fn libvirt_context_table() {
    let mut failures = Vec::new();
    for case in table() {
        let dir = tempfile::tempdir().unwrap();
        let result = run(&case, dir.path());
        let got = result.as_ref().err().map(|e| e.kind());
        if got != case.ours {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                case.name,
                case.ours,
                result.map(|r| r.to_text())
            ));
            continue;
        }
        if let Err(e) = &result {
            // The message names the file concerned.
            if !e.message().contains(dir.path().to_str().unwrap()) {
                failures.push(format!(
                    "{}: message does not name the file: {e}",
                    case.name
                ));
            }
        }
        // Where libvirt's verdict differs, the findings must say so (when loaded, the check
        // reports them as warnings; when refused, the load error's findings carry the note).
        let differs = case.libvirt_ok != case.ours.is_none();
        let ctx_report = {
            let ctx = Context::new(ContextFlags::NO_SANITY);
            ctx.set_verify_time(Some(now()));
            let role = case.role.name();
            let d = dir.path();
            ctx.add_file(CertDataType::CaCert, &d.join("cacert.pem"))
                .unwrap();
            ctx.add_file(case.role.cert_type(), &d.join(format!("{role}cert.pem")))
                .unwrap();
            ctx.add_file(case.role.key_type(), &d.join(format!("{role}key.pem")))
                .unwrap();
            ctx.check(case.role)
        };
        let noted = ctx_report
            .findings
            .iter()
            .any(|f| f.libvirt_differs.is_some());
        let chain_case = case.name.contains("intermediate");
        if differs && !noted && !chain_case {
            failures.push(format!(
                "{}: libvirt differs but no finding says so:\n{}",
                case.name,
                ctx_report.to_text()
            ));
        }
        // When both accept, nothing may claim that libvirt refuses (a note that libvirt accepts
        // what RFC 5280 verifiers refuse from a peer is fine).
        let claims_refusal = ctx_report.findings.iter().any(|f| {
            f.libvirt_differs
                .as_deref()
                .is_some_and(|n| !n.starts_with("libvirt accepts"))
        });
        if !differs && case.libvirt_ok && claims_refusal {
            failures.push(format!(
                "{}: a finding claims libvirt differs:\n{}",
                case.name,
                ctx_report.to_text()
            ));
        }
        // NO_SANITY loads what the check refuses; the check itself still finds the error.
        if case.ours.is_some() && ctx_report.is_ok() {
            failures.push(format!("{}: Context::check found no error", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unrelated_expired_ca_is_a_warning_naming_libvirt() {
    let case = table()
        .into_iter()
        .find(|c| c.name == "unrelated expired CA in the bundle")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = run(&case, dir.path()).unwrap();
    let w: Vec<_> = report.warnings().collect();
    assert_eq!(w.len(), 1, "{}", report.to_text());
    assert_eq!(w[0].kind, ErrorKind::Expired);
    assert_eq!(w[0].subject.as_deref(), Some("CN=Old CA"));
    assert!(
        w[0].message.starts_with("The CA certificate "),
        "{}",
        w[0].message
    );
    assert!(
        w[0].message.ends_with("cacert.pem has expired"),
        "{}",
        w[0].message
    );
    assert_eq!(w[0].severity, Severity::Warning);
}

#[test]
fn a_chain_in_the_certificate_file_is_a_warning_naming_libvirt() {
    let root = self_signed(&ca());
    let intermediate = signed_by(
        &Spec::ca("Intermediate CA")
            .bc(Some(true), true)
            .ku(KU_KEY_CERT_SIGN, true),
        &root,
    );
    let leaf = signed_by(&server(), &intermediate);
    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(now()));
    ctx.add_pem(CertDataType::CaCert, &root.pem()).unwrap();
    ctx.add_pem(
        CertDataType::ServerCert,
        &(leaf.pem() + &intermediate.pem()),
    )
    .unwrap();
    ctx.add_pem(CertDataType::ServerKey, &leaf.key_pem())
        .unwrap();
    let report = ctx.check(Role::Server);
    assert!(report.is_ok(), "{}", report.to_text());
    let w: Vec<_> = report.warnings().collect();
    assert_eq!(w.len(), 1, "{}", report.to_text());
    assert!(
        w[0].message.contains("holds a chain (2 certificates)"),
        "{}",
        w[0]
    );
    assert!(w[0]
        .libvirt_differs
        .as_deref()
        .unwrap()
        .contains("hasn't got a known issuer"));
    // The certificate alone: no warning.
    let alone = Context::new(ContextFlags::default());
    alone.set_verify_time(Some(now()));
    alone
        .add_pem(CertDataType::CaCert, &(root.pem() + &intermediate.pem()))
        .unwrap();
    alone
        .add_pem(CertDataType::ServerCert, &leaf.pem())
        .unwrap();
    alone
        .add_pem(CertDataType::ServerKey, &leaf.key_pem())
        .unwrap();
    let report = alone.check(Role::Server);
    assert_eq!(report.findings.len(), 0, "{}", report.to_text());
}

#[test]
fn pkcs8_v2_keys_are_a_warning_naming_libvirt() {
    let root = self_signed(&ca());
    let leaf = signed_by(&server().alg(Alg::Ed25519), &root);
    for (key, warned) in [
        (leaf.key_pem_as_ring_writes(), true),
        (leaf.key_pem(), false),
    ] {
        let ctx = Context::new(ContextFlags::default());
        ctx.set_verify_time(Some(now()));
        ctx.add_pem(CertDataType::CaCert, &root.pem()).unwrap();
        ctx.add_pem(CertDataType::ServerCert, &leaf.pem()).unwrap();
        ctx.add_pem(CertDataType::ServerKey, &key).unwrap();
        let report = ctx.check(Role::Server);
        assert!(report.is_ok(), "{}", report.to_text());
        let v2: Vec<_> = report
            .warnings()
            .filter(|w| w.message.contains("PKCS#8 version 2"))
            .collect();
        assert_eq!(v2.len(), usize::from(warned), "{}", report.to_text());
        if warned {
            assert!(v2[0]
                .libvirt_differs
                .as_deref()
                .unwrap()
                .contains("libvirt 9 cannot read it"));
        }
    }
}
