//! libvirt's context test table (tests/virnettlscontexttest.c; the rows are
//! `virtpki_tools::variants`): CA and leaf variants, each loaded through the sanity check for its
//! role. `libvirt_ok` is the verdict libvirt 9's rules give
//! (virNetTLSContextSanityCheckCredentials); `ours` is this library's, which differs only where
//! libvirt is wrong, and then the report must say so.

use crate::common;

use common::*;
use virtpki::{CertDataType, Context, ContextFlags, ErrorKind, Role, Severity};
use virtpki_tools::variants::{self, Times, Variant};

/// The table's rows (virtpki_tools::variants, which `sanity_variants` writes for interop/ too).
type Case = Variant;

fn table() -> Vec<Case> {
    variants::table(&Times::fixed())
}

fn ca() -> Spec {
    variants::ca(&Times::fixed())
}

fn server() -> Spec {
    variants::server(&Times::fixed())
}

/// Writes the case's files as a pkipath directory and loads them through the sanity check.
fn run(case: &Case, dir: &std::path::Path) -> virtpki::Result<virtpki::Report> {
    variants::write_pkipath(case, dir);
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

/// Issue 15, item 4: the purpose finding is said in words ("does not allow use as a TLS
/// client", not libvirt's "use for with"), and [`virtpki::Finding::detail`] is the finding
/// without its severity, for a caller that prints "warning:" itself (the CLI printed
/// "warning: warning: [purpose] ...").
#[test]
fn a_purpose_finding_is_grammatical_and_its_detail_has_no_severity() {
    let root = self_signed(&ca());
    let leaf = signed_by(&server().eku(&[SERVER_AUTH], false), &root);
    let ctx = Context::new(ContextFlags::NO_SANITY);
    ctx.set_verify_time(Some(now()));
    ctx.add_pem(CertDataType::CaCert, &root.pem()).unwrap();
    ctx.add_pem(CertDataType::ClientCert, &leaf.pem()).unwrap();
    ctx.add_pem(CertDataType::ClientKey, &leaf.key_pem())
        .unwrap();
    let report = ctx.check(Role::Client);
    let w: Vec<_> = report.warnings().collect();
    assert_eq!(w.len(), 1, "{}", report.to_text());
    assert_eq!(
        w[0].message,
        "Certificate data purpose does not allow use as a TLS client"
    );
    let detail = w[0].detail();
    assert!(detail.starts_with("[purpose] Certificate "), "{detail}");
    assert_eq!(w[0].to_string(), format!("warning: {detail}"));
    for f in &report.findings {
        assert!(!f.message.contains("use for with"), "{}", f.message);
    }
}
