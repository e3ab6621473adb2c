//! Expiry as a finding: the sanity check warns of every certificate (the own one, each CA of its
//! chain, the other CAs of the bundle) and every CRL that expires within the context's horizon,
//! saying when, how many days are left, what stops working and how to replace it. Time is the
//! context's verify time, so nothing here depends on today's date.

use crate::common;

use common::shell::shell_words;
use common::*;
use virtpki::{
    CertDataType, Context, ContextFlags, ErrorKind, Finding, Report, Role, Rule, Severity,
    VerifyFlags,
};

const DAY: i64 = 86_400;

/// A context at `now()` holding `ca` and `leaf` as the identity of `role`.
fn ctx_with(ca: &Made, leaf: &Made, role: Role) -> Context {
    let ctx = Context::new(ContextFlags::NO_SANITY);
    ctx.set_verify_time(Some(now()));
    ctx.add_pem(CertDataType::CaCert, &ca.pem()).unwrap();
    ctx.add_pem(role.cert_type(), &leaf.pem()).unwrap();
    ctx.add_pem(role.key_type(), &leaf.key_pem()).unwrap();
    ctx
}

fn server_until(ca: &Made, not_after: i64) -> Made {
    signed_by(
        &Spec::server("host1.example.com").valid(date(2025, 1, 1), not_after),
        ca,
    )
}

fn expiring(report: &Report) -> Vec<&Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.rule == Rule::ExpiresSoon)
        .collect()
}

/// The one expiry warning of `report`.
/// The command that issues a new key and certificate, which the fix gives last, in brackets
/// after the renewal.
fn reissue_command(fix: &str) -> &str {
    let at = fix.find("virtpki issue").unwrap_or_else(|| panic!("{fix}"));
    fix[at..]
        .strip_suffix(')')
        .unwrap_or_else(|| panic!("{fix}"))
}

fn the_warning(report: &Report) -> &Finding {
    let found = expiring(report);
    assert_eq!(found.len(), 1, "{}", report.to_text());
    let f = found[0];
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.kind, ErrorKind::Expired);
    f
}

/// A CRL of `ca` whose next update is `next_update`.
fn crl_until(ca: &Made, next_update: i64) -> String {
    let t = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    rcgen::CertificateRevocationListParams {
        this_update: t(now() - 40 * DAY),
        next_update: t(next_update),
        crl_number: rcgen::SerialNumber::from(7u64),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer())
    .unwrap()
    .pem()
    .unwrap()
}

#[test]
fn the_own_server_certificate_near_expiry_is_a_warning_with_days_date_effect_and_command() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let server = server_until(&ca, now() + 12 * DAY + 10 * 3600);
    let report = ctx_with(&ca, &server, Role::Server).check(Role::Server);
    assert!(report.is_ok(), "{}", report.to_text());
    let f = the_warning(&report);
    assert!(
        f.message
            .contains("expires in 12 days, on 2026-06-13 10:00:00 UTC"),
        "{}",
        f.message
    );
    assert!(f.message.contains("libvirtd refuses to start"), "{f}");
    assert!(f.message.contains("clients refuse this server"), "{f}");
    assert_eq!(f.subject.as_deref(), Some(server.parsed().subject()));
    assert!(
        f.fix.contains(
            "virtpki issue server --ca-dir CA_DIR --dn CN=host1.example.com --out-dir DIR"
        ),
        "{}",
        f.fix
    );
    assert!(
        f.fix
            .contains("virtpki renew --ca-dir CA_DIR CERT --out-dir DIR on the CA's machine"),
        "{}",
        f.fix
    );
    assert!(
        f.fix
            .contains("virtpki install --role server --ca-dir CA_DIR --from DIR --reload"),
        "{}",
        f.fix
    );
    // The report's text line has the word and the days, as virPKIContextCheck returns it.
    let text = report.to_text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("warning: [expires-soon]") && l.contains("expires in 12 days")),
        "{text}"
    );
}

#[test]
fn the_own_client_certificate_near_expiry_says_servers_refuse_this_client() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let client = client_with_test_dn(
        &Spec::client("client1").valid(date(2025, 1, 1), now() + 3 * DAY),
        &ca,
    );
    let report = ctx_with(&ca, &client, Role::Client).check(Role::Client);
    let f = the_warning(&report);
    assert!(f.message.contains("expires in 3 days"), "{f}");
    assert!(f.message.contains("servers refuse this client"), "{f}");
    let cmd = reissue_command(&f.fix);
    assert_eq!(
        shell_words(cmd),
        [
            "virtpki",
            "issue",
            "client",
            "--ca-dir",
            "CA_DIR",
            "--dn",
            "C=GB,O=Test,CN=client1",
            "--out-dir",
            "DIR"
        ],
        "{}",
        f.fix
    );
}

/// The suggested command names the server's other names, and a subject chosen to break out
/// of the command stays one shell word.
#[test]
fn the_reissue_command_keeps_the_names_and_quotes_the_subject() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let spec = Spec {
        dns: vec!["host1.example.com; touch pwned".into(), "h1".into()],
        ips: vec!["192.0.2.7".parse().unwrap()],
        ..Spec::server("host1.example.com; touch pwned")
    }
    .valid(date(2025, 1, 1), now() + 2 * DAY);
    let server = signed_by(&spec, &ca);
    let report = ctx_with(&ca, &server, Role::Server).check(Role::Server);
    let f = the_warning(&report);
    let cmd = reissue_command(&f.fix);
    assert_eq!(
        shell_words(cmd),
        [
            "virtpki",
            "issue",
            "server",
            "--ca-dir",
            "CA_DIR",
            "--dn",
            server.parsed().subject(),
            "--dns",
            "h1",
            "--ip",
            "192.0.2.7",
            "--out-dir",
            "DIR"
        ],
        "{}",
        f.fix
    );
}

/// A subject with a newline cannot be given back on a command line (the fix would show it
/// escaped, as another name): the fix says what to do without a command to paste.
#[test]
fn a_subject_a_command_line_cannot_carry_gets_no_command() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let spec = Spec::server("a'b\n$(id)").valid(date(2025, 1, 1), now() + 2 * DAY);
    let server = signed_by(&spec, &ca);
    let report = ctx_with(&ca, &server, Role::Server).check(Role::Server);
    let f = the_warning(&report);
    assert!(!f.fix.contains("--dn"), "{}", f.fix);
    assert!(f.fix.contains("cannot carry"), "{}", f.fix);
}

#[test]
fn a_ca_of_the_chain_near_expiry_is_a_warning_about_everything_it_issued() {
    let ca = self_signed(&Spec::ca("Expiry CA").valid(date(2025, 1, 1), now() + 5 * DAY));
    let server = server_until(&ca, date(2030, 1, 1));
    let report = ctx_with(&ca, &server, Role::Server).check(Role::Server);
    let f = the_warning(&report);
    assert!(f.message.starts_with("The CA certificate"), "{f}");
    assert!(f.message.contains("expires in 5 days"), "{f}");
    assert!(
        f.message.contains("no certificate it issued verifies"),
        "{f}"
    );
    assert!(f.message.contains("libvirtd does not start"), "{f}");
    assert!(f.fix.contains("virtpki ca renew --dir CA_DIR"), "{f}");
    assert!(f.fix.contains("either order verifies"), "{f}");
    assert_eq!(f.subject.as_deref(), Some("CN=Expiry CA"));
}

/// An intermediate CA in the certificate file (leaf first) is on the chain too.
#[test]
fn an_intermediate_in_the_certificate_file_near_expiry_is_a_warning() {
    let root = self_signed(&Spec::ca("Expiry Root"));
    let inter = signed_by(
        &Spec::ca("Expiry Intermediate").valid(date(2025, 1, 1), now() + 9 * DAY),
        &root,
    );
    let server = server_until(&inter, date(2030, 1, 1));
    let ctx = Context::new(ContextFlags::NO_SANITY);
    ctx.set_verify_time(Some(now()));
    ctx.add_pem(CertDataType::CaCert, &root.pem()).unwrap();
    ctx.add_pem(
        CertDataType::ServerCert,
        &format!("{}{}", server.pem(), inter.pem()),
    )
    .unwrap();
    ctx.add_pem(CertDataType::ServerKey, &server.key_pem())
        .unwrap();
    let report = ctx.check(Role::Server);
    let f = the_warning(&report);
    assert_eq!(f.subject.as_deref(), Some("CN=Expiry Intermediate"));
    assert!(f.message.contains("expires in 9 days"), "{f}");
    // What stops is this server's own chain, not the CA file (it was said "libvirt refuses
    // the whole CA file", and the fix was a new root CA).
    assert!(
        f.message.contains("The intermediate CA certificate")
            && f.message.contains("issued by CN=Expiry Root")
            && f.message.contains("clients refuse this server"),
        "{f}"
    );
    assert!(!f.message.contains("CA file"), "{f}");
    assert!(
        f.fix
            .contains("have CN=Expiry Root issue this intermediate again"),
        "{f}"
    );
    assert!(!f.fix.contains("ca init"), "{f}");
}

/// An intermediate in the CA file: everything under it and libvirt's CA file stop, and its
/// issuer renews it (a new root, the fix for a root, is not the fix).
#[test]
fn an_intermediate_in_the_ca_file_near_expiry_is_renewed_by_its_issuer() {
    let root = self_signed(&Spec::ca("Expiry Root"));
    let inter = signed_by(
        &Spec::ca("Expiry Intermediate").valid(date(2025, 1, 1), now() + 9 * DAY),
        &root,
    );
    let server = server_until(&inter, date(2030, 1, 1));
    let ctx = ctx_with(&root, &server, Role::Server);
    ctx.add_pem(CertDataType::CaCert, &inter.pem()).unwrap();
    let report = ctx.check(Role::Server);
    let f = the_warning(&report);
    assert!(
        f.message.starts_with("The intermediate CA certificate")
            && f.message
                .contains("no certificate issued under it verifies")
            && f.message.contains("refuses the whole CA file"),
        "{f}"
    );
    assert!(
        f.fix
            .contains("have CN=Expiry Root issue this intermediate again"),
        "{f}"
    );
    assert!(!f.fix.contains("ca init"), "{f}");
}

#[test]
fn another_ca_of_the_bundle_near_expiry_is_a_warning_too() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let other = self_signed(&Spec::ca("Other CA").valid(date(2025, 1, 1), now() + 20 * DAY));
    let server = server_until(&ca, date(2030, 1, 1));
    let ctx = ctx_with(&ca, &server, Role::Server);
    ctx.add_pem(CertDataType::CaCert, &other.pem()).unwrap();
    let report = ctx.check(Role::Server);
    let f = the_warning(&report);
    assert_eq!(f.subject.as_deref(), Some("CN=Other CA"));
    assert!(f.message.contains("expires in 20 days"), "{f}");
    assert!(f.message.contains("refuses the whole CA file"), "{f}");
}

#[test]
fn a_crl_whose_next_update_is_near_is_a_warning_and_a_stale_one_only_the_old_warning() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let server = server_until(&ca, date(2030, 1, 1));
    let ctx = ctx_with(&ca, &server, Role::Server);
    ctx.add_pem(CertDataType::CaCrl, &crl_until(&ca, now() + 4 * DAY))
        .unwrap();
    let report = ctx.check(Role::Server);
    let f = the_warning(&report);
    assert!(
        f.message.starts_with("The revocation list of CN=Expiry CA"),
        "{f}"
    );
    assert!(f.message.contains("expires in 4 days"), "{f}");
    assert!(f.message.contains("its next update"), "{f}");
    assert!(f.fix.contains("virtpki crl revoke --ca-dir CA_DIR"), "{f}");
    assert!(!report.findings.iter().any(|f| f.rule == Rule::Crl));

    let stale = ctx_with(&ca, &server, Role::Server);
    stale
        .add_pem(CertDataType::CaCrl, &crl_until(&ca, now() - DAY))
        .unwrap();
    let report = stale.check(Role::Server);
    assert!(expiring(&report).is_empty(), "{}", report.to_text());
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == Rule::Crl && f.message.contains("was due for renewal"))
        .unwrap_or_else(|| panic!("{}", report.to_text()));
    assert!(
        f.message
            .contains("still applied, by libvirt (GnuTLS) and by virtpki alike"),
        "{f}"
    );
}

/// What the stale-CRL finding says is what virtpki does: a CRL past its next update still
/// refuses the certificates it lists, and refuses no other for its age.
#[test]
fn a_crl_past_its_next_update_is_still_applied() {
    let ca = self_signed(&Spec::ca("Stale CRL CA"));
    let listed = signed_by(
        &Spec {
            serial: Some(4343),
            ..Spec::client("revoked-client")
        },
        &ca,
    );
    let other = signed_by(&Spec::client("other-client"), &ca);
    let server = server_until(&ca, date(2030, 1, 1));
    let crl = kit_crl_until(&ca, 4343, now() - 2 * DAY);
    let ctx = ctx_with(&ca, &server, Role::Server);
    ctx.add_pem(CertDataType::CaCrl, &crl).unwrap();
    let e = ctx
        .verify_client(&[listed.parsed()], VerifyFlags::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Revoked, "{e}");
    ctx.verify_client(&[other.parsed()], VerifyFlags::default())
        .unwrap();
}

/// A CRL of `ca` revoking `serial`, whose next update is `next_update`.
fn kit_crl_until(ca: &Made, serial: u64, next_update: i64) -> String {
    let t = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    rcgen::CertificateRevocationListParams {
        this_update: t(now() - 40 * DAY),
        next_update: t(next_update),
        crl_number: rcgen::SerialNumber::from(8u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(serial),
            revocation_time: t(now() - 41 * DAY),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer())
    .unwrap()
    .pem()
    .unwrap()
}

/// Outside the horizon (30 days by default): nothing; the last second inside it: a warning.
#[test]
fn outside_the_horizon_there_is_no_warning() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    for (not_after, warned) in [
        (now() + 31 * DAY, None),
        (now() + 30 * DAY, None),
        (now() + 30 * DAY - 1, Some("expires in 29 days")),
        (now() + 5 * 3600, Some("expires in 0 days (5 hours left)")),
        (
            now() + 59,
            Some("expires in 0 days (less than an hour left)"),
        ),
        (now(), Some("expires in 0 days (less than an hour left)")),
    ] {
        let server = server_until(&ca, not_after);
        let report = ctx_with(&ca, &server, Role::Server).check(Role::Server);
        match warned {
            None => assert!(expiring(&report).is_empty(), "{}", report.to_text()),
            Some(words) => {
                let f = the_warning(&report);
                assert!(f.message.contains(words), "{words}: {f}");
            }
        }
    }
}

/// What has expired keeps its error (rule time) and is not also "about to expire".
#[test]
fn an_expired_certificate_is_the_old_error_only() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let server = server_until(&ca, now() - 1);
    let report = ctx_with(&ca, &server, Role::Server).check(Role::Server);
    assert!(expiring(&report).is_empty(), "{}", report.to_text());
    assert!(report
        .errors()
        .any(|f| f.rule == Rule::Time && f.kind == ErrorKind::Expired));

    let old_ca = self_signed(&Spec::ca("Expired CA").valid(date(2025, 1, 1), now() - DAY));
    let ctx = ctx_with(&ca, &server_until(&ca, date(2030, 1, 1)), Role::Server);
    ctx.add_pem(CertDataType::CaCert, &old_ca.pem()).unwrap();
    let report = ctx.check(Role::Server);
    assert!(expiring(&report).is_empty(), "{}", report.to_text());
    assert!(report.findings.iter().any(|f| f.rule == Rule::Time));
}

#[test]
fn the_horizon_is_set_by_the_api() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let ctx = ctx_with(&ca, &server_until(&ca, now() + 5 * DAY), Role::Server);
    assert_eq!(ctx.expiry_horizon(), 30);
    assert_eq!(expiring(&ctx.check(Role::Server)).len(), 1);

    ctx.set_expiry_horizon(3).unwrap();
    assert_eq!(ctx.expiry_horizon(), 3);
    assert!(expiring(&ctx.check(Role::Server)).is_empty());

    // 0: off.
    ctx.set_expiry_horizon(0).unwrap();
    assert!(expiring(&ctx.check(Role::Server)).is_empty());

    // A longer horizon reaches the CA too (2030-01-01 is 1310 days after 2026-06-01).
    ctx.set_expiry_horizon(3650).unwrap();
    let report = ctx.check(Role::Server);
    let found = expiring(&report);
    assert_eq!(found.len(), 2, "{}", report.to_text());
    assert!(
        found[1].message.contains("expires in 1310 days"),
        "{}",
        found[1]
    );

    let err = ctx.set_expiry_horizon(3651).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArg);
    assert!(err.message().contains("3651"), "{err}");
    assert_eq!(
        ctx.expiry_horizon(),
        3650,
        "a refused horizon changes nothing"
    );
    assert_eq!(
        ctx.set_expiry_horizon(u32::MAX).unwrap_err().kind(),
        ErrorKind::InvalidArg
    );
}

/// The load's sanity gate uses the horizon too, and a warning never fails a load.
#[test]
fn a_load_with_an_expiry_warning_succeeds() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let server = server_until(&ca, now() + 2 * DAY);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cacert.pem", ca.pem(), 0o644);
    write(dir.path(), "servercert.pem", server.pem(), 0o644);
    write(dir.path(), "serverkey.pem", server.key_pem(), 0o600);
    let env = virtpki::locations::Environment {
        root: dir.path().join("no-root"),
        home: None,
        uid: 0,
    };
    let files = virtpki::locations::libvirt(&env, Role::Server, Some(dir.path()));
    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(now()));
    ctx.load_files(&files).unwrap();
    let f = the_warning(&ctx.check(Role::Server)).clone();
    assert_eq!(
        f.source,
        virtpki::Source::File(dir.path().join("servercert.pem"))
    );
}

#[test]
fn days_left_rounds_down() {
    use virtpki::sanity::days_left;
    assert_eq!(days_left(now() + 5 * DAY - 1, now()), 4);
    assert_eq!(days_left(now() + 5 * DAY, now()), 5);
    assert_eq!(days_left(now(), now()), 0);
    assert_eq!(days_left(now() - 1, now()), -1);
    assert_eq!(days_left(i64::MAX, i64::MIN), i64::MAX / DAY);
}

/// A server certificate with names in SANs only: `issue server --dn` needs a CN, so the
/// command names the server by its first SAN.
#[test]
fn the_reissue_command_of_a_server_without_cn_uses_its_first_name() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let spec = Spec {
        dns: vec!["a.example".into(), "b.example".into()],
        ..Spec::server("unused")
    }
    .valid(date(2025, 1, 1), now() + 2 * DAY);
    // Leave the CN out: only an organization in the subject.
    let mut params = spec.params();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "Example");
    params.distinguished_name = dn;
    let key = key(spec.alg);
    let cert = params.signed_by(&key, &ca.issuer()).unwrap();
    let server = Made { cert, key, params };
    let report = ctx_with(&ca, &server, Role::Server).check(Role::Server);
    let f = the_warning(&report);
    let cmd = reissue_command(&f.fix);
    assert_eq!(
        shell_words(cmd),
        [
            "virtpki",
            "issue",
            "server",
            "--ca-dir",
            "CA_DIR",
            "--cn",
            "a.example",
            "--dns",
            "b.example",
            "--out-dir",
            "DIR"
        ],
        "{}",
        f.fix
    );
}

/// A certificate read from a file: the renewal command names that file, quoted for a shell.
#[test]
fn the_renewal_command_names_the_certificate_file() {
    let ca = self_signed(&Spec::ca("Expiry CA"));
    let server = server_until(&ca, now() + 3 * DAY);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("my certs").join("servercert.pem");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    std::fs::write(&file, server.pem()).unwrap();
    let ctx = Context::new(ContextFlags::NO_SANITY);
    ctx.set_verify_time(Some(now()));
    ctx.add_pem(CertDataType::CaCert, &ca.pem()).unwrap();
    ctx.add_file(CertDataType::ServerCert, &file).unwrap();
    ctx.add_pem(CertDataType::ServerKey, &server.key_pem())
        .unwrap();
    let f = the_warning(&ctx.check(Role::Server)).clone();
    let words = shell_words(
        f.fix
            .split(": ")
            .nth(1)
            .and_then(|rest| rest.split(" on the CA's machine").next())
            .unwrap(),
    );
    assert_eq!(
        words,
        [
            "virtpki",
            "renew",
            "--ca-dir",
            "CA_DIR",
            file.to_str().unwrap(),
            "--out-dir",
            "DIR"
        ],
        "{}",
        f.fix
    );
}
