//! The verification procedure without sockets: client verification, argument errors, and the
//! messages people read.

mod common;

use std::sync::Arc;

use common::*;
use virtpki::{
    Acceptance, CertDataType, Certificate, Context, ContextFlags, ErrorKind, Source,
    ValidatorAnswer, VerifyFlags,
};

fn cert(made: &Made) -> Certificate {
    Certificate::from_der(made.der(), Source::Peer).unwrap()
}

fn ctx_with_ca(ca: &Made, flags: ContextFlags) -> Context {
    let ctx = Context::new(flags);
    ctx.set_verify_time(Some(now()));
    ctx.add_pem(CertDataType::CaCert, &ca.pem()).unwrap();
    ctx
}

#[test]
fn client_verification_returns_the_dn_and_applies_the_allow_list() {
    let ca = self_signed(&Spec::ca("CA"));
    let client = signed_by(&Spec::client("client1"), &ca);
    let daemon = ctx_with_ca(&ca, ContextFlags::default());
    assert_eq!(
        daemon
            .verify_client(&[cert(&client)], VerifyFlags::default())
            .unwrap()
            .dn,
        "CN=client1"
    );
    daemon
        .set_allowed_dn_list(Some(&["CN=other", "CN=client?"]))
        .unwrap();
    daemon
        .verify_client(&[cert(&client)], VerifyFlags::default())
        .unwrap();
    // An empty list lets nobody in; NO_VERIFY lets it through with the reason kept.
    daemon.set_allowed_dn_list::<&str>(Some(&[])).unwrap();
    let err = daemon
        .verify_client(&[cert(&client)], VerifyFlags::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DnNotAllowed);
    assert!(err.message().contains("virt-pki-query-dn"), "{err}");
    let lax = daemon
        .verify_client(&[cert(&client)], VerifyFlags::NO_VERIFY)
        .unwrap();
    assert!(lax.failure.unwrap().contains("tls_allowed_dn_list"));
    // No list: no DN check.
    daemon.set_allowed_dn_list::<&str>(None).unwrap();
    daemon
        .verify_client(&[cert(&client)], VerifyFlags::default())
        .unwrap();
}

#[test]
fn client_purpose_fails_only_when_critical_and_cas_are_refused_as_clients() {
    let ca = self_signed(&Spec::ca("CA"));
    let daemon = ctx_with_ca(&ca, ContextFlags::default());
    let lax = signed_by(&Spec::client("c").eku(&[SERVER_AUTH], false), &ca);
    daemon
        .verify_client(&[cert(&lax)], VerifyFlags::default())
        .unwrap();
    let strict = signed_by(&Spec::client("c").eku(&[SERVER_AUTH], true), &ca);
    let err = daemon
        .verify_client(&[cert(&strict)], VerifyFlags::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Purpose, "{err}");
    let any = signed_by(&Spec::client("c").eku(&[ANY_EKU], true), &ca);
    daemon
        .verify_client(&[cert(&any)], VerifyFlags::default())
        .unwrap();
    let ca_as_client = signed_by(&Spec::ca("Sub CA"), &ca);
    let err = daemon
        .verify_client(&[cert(&ca_as_client)], VerifyFlags::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotCa, "{err}");
}

#[test]
fn server_purpose_is_enforced_whenever_present() {
    let ca = self_signed(&Spec::ca("CA"));
    let client = ctx_with_ca(&ca, ContextFlags::default());
    let client_only = signed_by(
        &Spec::server("h.example.com").eku(&[CLIENT_AUTH], false),
        &ca,
    );
    let err = client
        .verify_server(
            "h.example.com",
            None,
            &[cert(&client_only)],
            VerifyFlags::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Purpose, "{err}");
    let any = signed_by(&Spec::server("h.example.com").eku(&[ANY_EKU], false), &ca);
    client
        .verify_server("h.example.com", None, &[cert(&any)], VerifyFlags::default())
        .unwrap();
}

#[test]
fn critical_key_usage_rules_for_peers() {
    let ca = self_signed(&Spec::ca("CA"));
    let client = ctx_with_ca(&ca, ContextFlags::default());
    let rsa = signed_by(
        &Spec::server("h.example.com")
            .ku(KU_DIGITAL_SIGNATURE, true)
            .alg(Alg::Rsa2048),
        &ca,
    );
    let err = client
        .verify_server("h.example.com", None, &[cert(&rsa)], VerifyFlags::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyUsage, "{err}");
    assert!(err.message().contains("key encipherment"), "{err}");
    let ec = signed_by(
        &Spec::server("h.example.com").ku(KU_DIGITAL_SIGNATURE, true),
        &ca,
    );
    client
        .verify_server("h.example.com", None, &[cert(&ec)], VerifyFlags::default())
        .unwrap();
    let lax_rsa = signed_by(
        &Spec::server("h.example.com")
            .ku(KU_DIGITAL_SIGNATURE, false)
            .alg(Alg::Rsa2048),
        &ca,
    );
    client
        .verify_server(
            "h.example.com",
            None,
            &[cert(&lax_rsa)],
            VerifyFlags::default(),
        )
        .unwrap();
}

#[test]
fn every_failure_is_named_in_one_message() {
    let ca = self_signed(&Spec::ca("CA"));
    let other = self_signed(&Spec::ca("Other"));
    let client = ctx_with_ca(&ca, ContextFlags::default());
    let leaf = signed_by(&Spec::server("h.example.com"), &other);
    let err = client
        .verify_server(
            "wrong.example.com",
            None,
            &[cert(&leaf)],
            VerifyFlags::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownIssuer);
    let m = err.message();
    assert!(
        m.contains("CN=h.example.com") && m.contains("issuer CN=Other"),
        "{m}"
    );
    assert!(
        m.contains("known issuer") && m.contains("wrong.example.com"),
        "{m}"
    );
}

#[test]
fn argument_errors_and_a_context_without_ca() {
    let ca = self_signed(&Spec::ca("CA"));
    let leaf = signed_by(&Spec::server("h.example.com"), &ca);
    let client = ctx_with_ca(&ca, ContextFlags::default());
    assert_eq!(
        client
            .verify_server("h.example.com", None, &[], VerifyFlags::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArg
    );
    assert_eq!(
        client
            .verify_server("", None, &[cert(&leaf)], VerifyFlags::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArg
    );
    assert_eq!(
        client
            .verify_client(&[], VerifyFlags::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArg
    );
    let empty = Context::new(ContextFlags::default());
    empty.set_verify_time(Some(now()));
    let err = empty
        .verify_server(
            "h.example.com",
            None,
            &[cert(&leaf)],
            VerifyFlags::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoCa, "{err}");
    // A validator can still be asked about it with PROMPT_UNVERIFIED (trust on first use).
    let tofu = Context::new(ContextFlags::PROMPT_UNVERIFIED);
    tofu.set_verify_time(Some(now()));
    tofu.set_validator(Some(Arc::new(|_: &virtpki::ValidationRequest<'_>| {
        ValidatorAnswer::AcceptOnce
    })));
    let v = tofu
        .verify_server(
            "h.example.com",
            None,
            &[cert(&leaf)],
            VerifyFlags::default(),
        )
        .unwrap();
    assert_eq!(v.acceptance, Acceptance::ValidatorOnce);
    assert!(v.failure.unwrap().contains("no CA certificate"));
}

#[test]
fn a_validator_cannot_rescue_an_expired_certificate() {
    let ca = self_signed(&Spec::ca("CA"));
    let expired = signed_by(
        &Spec::server("h.example.com").valid(date(2020, 1, 1), date(2026, 1, 1)),
        &ca,
    );
    let client = ctx_with_ca(&ca, ContextFlags::PROMPT_UNVERIFIED);
    client.set_validator(Some(Arc::new(|_: &virtpki::ValidationRequest<'_>| {
        ValidatorAnswer::AcceptAlways
    })));
    let err = client
        .verify_server(
            "h.example.com",
            None,
            &[cert(&expired)],
            VerifyFlags::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
}

#[test]
fn ip_literals_match_only_ip_sans_in_any_spelling() {
    let ca = self_signed(&Spec::ca("CA"));
    let mut spec = Spec::server("h.example.com");
    spec.ips = vec!["2001:db8::1".parse().unwrap()];
    let leaf = signed_by(&spec, &ca);
    let client = ctx_with_ca(&ca, ContextFlags::default());
    for host in ["2001:db8::1", "[2001:db8::1]", "2001:DB8:0:0:0:0:0:1"] {
        client
            .verify_server(host, None, &[cert(&leaf)], VerifyFlags::default())
            .unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    let err = client
        .verify_server("2001:db8::2", None, &[cert(&leaf)], VerifyFlags::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostnameMismatch);
}

#[test]
fn revocation_applies_to_intermediates_and_a_ca_without_crl_is_not_revoked() {
    let root = self_signed(&Spec::ca("Root"));
    let inter = signed_by(
        &Spec {
            serial: Some(77),
            ..Spec::ca("Inter")
        },
        &root,
    );
    let leaf = signed_by(&Spec::server("h.example.com"), &inter);
    let client = ctx_with_ca(&root, ContextFlags::default());
    let chain = [cert(&leaf), cert(&inter)];
    client
        .verify_server("h.example.com", None, &chain, VerifyFlags::default())
        .unwrap();
    client
        .add_pem(CertDataType::CaCrl, &crl_pem(&root, &[77]))
        .unwrap();
    let err = client
        .verify_server("h.example.com", None, &chain, VerifyFlags::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "{err}");
}

#[test]
fn profile_rules_refuse_peers_and_warn_about_own_credentials() {
    // A CA without a subject key identifier: rcgen's params with hand-made basic constraints
    // and no SKI extension.
    let ca_spec = Spec::ca("No SKI CA").bc(Some(true), true);
    let key = key(Alg::EcdsaP256);
    let ca_params = ca_spec.params();
    let ca_cert = ca_params.self_signed(&key).unwrap();
    let ca = Made {
        cert: ca_cert,
        key,
        params: ca_params,
    };
    let leaf = signed_by(&Spec::server("h.example.com"), &ca);
    let client = ctx_with_ca(&ca, ContextFlags::default());
    let err = client
        .verify_server(
            "h.example.com",
            None,
            &[cert(&leaf)],
            VerifyFlags::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownIssuer, "{err}");
    assert!(err.message().contains("no subject key identifier"), "{err}");
    // libvirt accepts these as the daemon's own credentials: a warning, not an error.
    let daemon = ctx_with_ca(&ca, ContextFlags::default());
    daemon
        .add_pem(CertDataType::ServerCert, &leaf.pem())
        .unwrap();
    daemon
        .add_pem(CertDataType::ServerKey, &leaf.key_pem())
        .unwrap();
    let report = daemon.check(virtpki::Role::Server);
    assert!(report.is_ok(), "{}", report.to_text());
    let w: Vec<_> = report.warnings().collect();
    assert!(
        w.iter()
            .any(|f| f.message.contains("no subject key identifier")),
        "{}",
        report.to_text()
    );
}

#[test]
fn a_server_certificate_with_an_underscore_name_is_refused() {
    let ca = self_signed(&Spec::ca("CA"));
    let leaf = signed_by(&Spec::server("bad_name.example.com"), &ca);
    let client = ctx_with_ca(&ca, ContextFlags::default());
    let err = client
        .verify_server(
            "bad_name.example.com",
            None,
            &[cert(&leaf)],
            VerifyFlags::default(),
        )
        .unwrap_err();
    assert!(err.message().contains("not a valid host name"), "{err}");
}

#[test]
fn crl_answers_stay_right_once_the_signature_is_remembered() {
    let root = self_signed(&Spec::ca("Root"));
    let good = signed_by(
        &Spec {
            serial: Some(5),
            ..Spec::server("h.example.com")
        },
        &root,
    );
    let revoked = signed_by(
        &Spec {
            serial: Some(77),
            ..Spec::server("h.example.com")
        },
        &root,
    );
    let client = ctx_with_ca(&root, ContextFlags::default());
    client
        .add_pem(CertDataType::CaCrl, &crl_pem(&root, &[77]))
        .unwrap();
    let crl = Arc::clone(&client.credentials().crls[0]);
    let root_key = cert(&root).spki_fingerprint();
    assert!(!crl.is_verified_for(&root_key));
    for round in 0..3 {
        client
            .verify_server(
                "h.example.com",
                None,
                &[cert(&good)],
                VerifyFlags::default(),
            )
            .unwrap();
        assert!(crl.is_verified_for(&root_key), "round {round}");
        let err = client
            .verify_server(
                "h.example.com",
                None,
                &[cert(&revoked)],
                VerifyFlags::default(),
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Revoked, "round {round}: {err}");
    }
}

#[test]
fn a_crl_signed_by_another_key_of_the_same_name_is_never_trusted() {
    let root = self_signed(&Spec::ca("Root"));
    let impostor = self_signed(&Spec::ca("Root"));
    let leaf = signed_by(&Spec::server("h.example.com"), &root);
    let client = ctx_with_ca(&root, ContextFlags::default());
    client
        .add_pem(CertDataType::CaCrl, &crl_pem(&impostor, &[1]))
        .unwrap();
    for _ in 0..2 {
        let err = client
            .verify_server(
                "h.example.com",
                None,
                &[cert(&leaf)],
                VerifyFlags::default(),
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadSignature, "{err}");
    }
    assert!(!client.credentials().crls[0].is_verified_for(&cert(&root).spki_fingerprint()));
}

#[test]
fn the_newest_crl_of_a_ca_applies_in_whichever_order_the_lists_are_added() {
    // webpki consults only the first list that covers a certificate: a newer list added after
    // an older one was once never read.
    let ca = self_signed(&Spec::ca("CA"));
    let leaf = signed_by(
        &Spec {
            serial: Some(0x2002),
            ..Spec::server("h.example.com")
        },
        &ca,
    );
    let chain = [cert(&leaf)];
    let t = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    let crl = |number: u64, serial: u64| {
        rcgen::CertificateRevocationListParams {
            this_update: t(now() - 10),
            next_update: t(now() + 1000),
            crl_number: rcgen::SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: vec![rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(serial),
                revocation_time: t(now() - 5),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&ca.issuer())
        .unwrap()
        .pem()
        .unwrap()
    };
    let (older, newer) = (crl(1, 0x9999), crl(2, 0x2002));
    for order in [[&older, &newer], [&newer, &older]] {
        let ctx = ctx_with_ca(&ca, ContextFlags::default());
        for list in order {
            ctx.add_pem(CertDataType::CaCrl, list).unwrap();
        }
        let err = ctx
            .verify_server("h.example.com", None, &chain, VerifyFlags::default())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Revoked, "{err}");
    }
}
