//! The verification procedure without sockets: client verification, argument errors, and the
//! messages people read.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::openssl_args::NEW_P256_KEY;
use common::*;
use virtpki::{
    Acceptance, CertDataType, Certificate, Context, ContextFlags, ErrorKind, KnownServersStore,
    ServerVerdict, Source, ValidateFlags, ValidatorAnswer, VerifyFlags,
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

/// A self-signed server certificate that is not a CA: what a user pins or records by hand.
fn own_server(name: &str) -> Made {
    let mut spec = Spec::server(name);
    spec.ca = Some(false);
    self_signed(&spec)
}

/// The server certificate for h.example.com with serial 77, the serial the lists here revoke.
fn leaf_77(issuer: &Made) -> Made {
    signed_by(
        &Spec {
            serial: Some(77),
            ..Spec::server("h.example.com")
        },
        issuer,
    )
}

/// A self-signed CA `name` whose name constraints permit the DNS subtree `permitted` only.
fn ca_permitting_only(name: &str, permitted: &str) -> Made {
    let mut params = Spec::ca(name).params();
    params.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName(permitted.into())],
        excluded_subtrees: vec![],
    });
    let key = common::key(Alg::EcdsaP256);
    Made {
        cert: params.self_signed(&key).unwrap(),
        key,
        params,
    }
}

/// Two NO_SANITY contexts, one trusting the CA bundle `a` then `b`, the other `b` then `a`
/// (PEM text).
fn contexts_with_both_ca_orders(a: &str, b: &str) -> [Context; 2] {
    [(a, b), (b, a)].map(|(first, second)| {
        let ctx = Context::new(ContextFlags::NO_SANITY);
        ctx.set_verify_time(Some(now()));
        ctx.add_pem(CertDataType::CaCert, &format!("{first}{second}"))
            .unwrap();
        ctx
    })
}

/// Trusts `made` for any host (pinned server data).
fn pin(ctx: &Context, made: &Made) {
    ctx.add_pem(CertDataType::ServerTrusted, &made.pem())
        .unwrap();
}

/// Pins a new h.example.com certificate of `issuer` (not revoked) and checks that `ctx`
/// accepts it as pinned.
fn assert_a_pinned_leaf_of_is_accepted(ctx: &Context, issuer: &Made) {
    let good = signed_by(&Spec::server("h.example.com"), issuer);
    pin(ctx, &good);
    let v = verify(ctx, "h.example.com", &[cert(&good)]).unwrap();
    assert_eq!(v.acceptance, Acceptance::Pinned);
}

/// Gives `ctx` an in-memory known-servers store that records `made` for `host`, any port.
fn know(ctx: &Context, host: &str, made: &Made) {
    let store = Arc::new(virtpki::MemoryKnownServers::new());
    store.add(host, None, &made.der()).unwrap();
    ctx.set_known_servers(Some(store));
}

/// Server verification as most tests here ask for it: no port, default flags.
fn verify(ctx: &Context, host: &str, chain: &[Certificate]) -> virtpki::Result<ServerVerdict> {
    ctx.verify_server(host, None, chain, VerifyFlags::default())
}

/// Sets a validator that answers `answer`; the counter says how often it was asked.
fn count_validator_calls(ctx: &Context, answer: ValidatorAnswer) -> Arc<AtomicUsize> {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    ctx.set_validator(Some(Arc::new(move |_: &virtpki::ValidationRequest<'_>| {
        counter.fetch_add(1, Ordering::SeqCst);
        answer
    })));
    asked
}

/// Sets a validator that rejects and logs each request's `trusted` and `flags`.
fn log_validator_requests(ctx: &Context) -> Arc<Mutex<Vec<(bool, ValidateFlags)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    ctx.set_validator(Some(Arc::new(move |r: &virtpki::ValidationRequest<'_>| {
        log.lock().unwrap().push((r.trusted, r.flags));
        ValidatorAnswer::Reject
    })));
    seen
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
    let err = verify(&client, "h.example.com", &[cert(&client_only)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Purpose, "{err}");
    let any = signed_by(&Spec::server("h.example.com").eku(&[ANY_EKU], false), &ca);
    verify(&client, "h.example.com", &[cert(&any)]).unwrap();
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
    let err = verify(&client, "h.example.com", &[cert(&rsa)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyUsage, "{err}");
    assert!(err.message().contains("key encipherment"), "{err}");
    let ec = signed_by(
        &Spec::server("h.example.com").ku(KU_DIGITAL_SIGNATURE, true),
        &ca,
    );
    verify(&client, "h.example.com", &[cert(&ec)]).unwrap();
    let lax_rsa = signed_by(
        &Spec::server("h.example.com")
            .ku(KU_DIGITAL_SIGNATURE, false)
            .alg(Alg::Rsa2048),
        &ca,
    );
    verify(&client, "h.example.com", &[cert(&lax_rsa)]).unwrap();
}

#[test]
fn every_failure_is_named_in_one_message() {
    let ca = self_signed(&Spec::ca("CA"));
    let other = self_signed(&Spec::ca("Other"));
    let client = ctx_with_ca(&ca, ContextFlags::default());
    let leaf = signed_by(&Spec::server("h.example.com"), &other);
    let err = verify(&client, "wrong.example.com", &[cert(&leaf)]).unwrap_err();
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
        verify(&client, "h.example.com", &[]).unwrap_err().kind(),
        ErrorKind::InvalidArg
    );
    assert_eq!(
        verify(&client, "", &[cert(&leaf)]).unwrap_err().kind(),
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
    let err = verify(&empty, "h.example.com", &[cert(&leaf)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoCa, "{err}");
    // A validator can still be asked about it with PROMPT_UNVERIFIED (trust on first use).
    let tofu = Context::new(ContextFlags::PROMPT_UNVERIFIED);
    tofu.set_verify_time(Some(now()));
    tofu.set_validator(Some(Arc::new(|_: &virtpki::ValidationRequest<'_>| {
        ValidatorAnswer::AcceptOnce
    })));
    let v = verify(&tofu, "h.example.com", &[cert(&leaf)]).unwrap();
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
    let err = verify(&client, "h.example.com", &[cert(&expired)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
}

#[test]
fn ip_literals_match_only_ip_sans_in_any_spelling() {
    ip_san_matches_only(
        "2001:db8::1",
        &["2001:db8::1", "[2001:db8::1]", "2001:DB8:0:0:0:0:0:1"],
        "2001:db8::2",
    );
}

/// A CA's server certificate with the IP SAN `ip` verifies for each spelling in `matching` and
/// is a host name mismatch for `other`; the context trusting the CA is returned.
fn ip_san_matches_only(ip: &str, matching: &[&str], other: &str) -> Context {
    let ca = self_signed(&Spec::ca("CA"));
    let mut spec = Spec::server("h.example.com");
    spec.ips = vec![ip.parse().unwrap()];
    let leaf = signed_by(&spec, &ca);
    let client = ctx_with_ca(&ca, ContextFlags::default());
    for host in matching {
        verify(&client, host, &[cert(&leaf)]).unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    let err = verify(&client, other, &[cert(&leaf)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{other}: {err}");
    client
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
    verify(&client, "h.example.com", &chain).unwrap();
    client
        .add_pem(CertDataType::CaCrl, &crl_pem(&root, &[77]))
        .unwrap();
    let err = verify(&client, "h.example.com", &chain).unwrap_err();
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
    let err = verify(&client, "h.example.com", &[cert(&leaf)]).unwrap_err();
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
    let err = verify(&client, "bad_name.example.com", &[cert(&leaf)]).unwrap_err();
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
    let revoked = leaf_77(&root);
    let client = ctx_with_ca(&root, ContextFlags::default());
    client
        .add_pem(CertDataType::CaCrl, &crl_pem(&root, &[77]))
        .unwrap();
    let crl = Arc::clone(&client.credentials().crls[0]);
    let root_key = cert(&root).spki_fingerprint();
    assert!(!crl.is_verified_for(&root_key));
    for round in 0..3 {
        verify(&client, "h.example.com", &[cert(&good)]).unwrap();
        assert!(crl.is_verified_for(&root_key), "round {round}");
        let err = verify(&client, "h.example.com", &[cert(&revoked)]).unwrap_err();
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
        let err = verify(&client, "h.example.com", &[cert(&leaf)]).unwrap_err();
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
        let err = verify(&ctx, "h.example.com", &chain).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Revoked, "{err}");
    }
}

/// Self-issued certificates named `name`, each signed by its own throwaway key: junk a peer
/// appends to make webpki's path search explode.
fn junk_claiming(name: &str, count: usize) -> Vec<Certificate> {
    (0..count)
        .map(|_| cert(&self_signed(&Spec::ca(name))))
        .collect()
}

/// A CA, a server leaf with serial 77 that the CA's loaded CRL revokes, and that leaf followed
/// by five junk certificates claiming the CA's name (about 2 KB).
fn revoked_leaf_with_junk() -> (Made, Made, Vec<Certificate>) {
    let ca = self_signed(&Spec::ca("CA"));
    let leaf = leaf_77(&ca);
    let mut chain = vec![cert(&leaf)];
    chain.extend(junk_claiming("CA", 5));
    (ca, leaf, chain)
}

fn ctx_with_crl(ca: &Made, flags: ContextFlags) -> Context {
    let ctx = ctx_with_ca(ca, flags);
    ctx.add_pem(CertDataType::CaCrl, &crl_pem(ca, &[77]))
        .unwrap();
    ctx
}

#[test]
fn junk_certificates_do_not_turn_a_revoked_leaf_into_an_unknown_issuer() {
    let (ca, _, chain) = revoked_leaf_with_junk();
    let plain = ctx_with_crl(&ca, ContextFlags::default());
    let err = verify(&plain, "h.example.com", &chain).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "{err}");
    assert!(!err.message().contains("known issuer"), "{err}");
}

#[test]
fn a_pinned_revoked_leaf_behind_junk_certificates_is_refused() {
    let (ca, leaf, chain) = revoked_leaf_with_junk();
    let client = ctx_with_crl(&ca, ContextFlags::default());
    pin(&client, &leaf);
    let err = verify(&client, "h.example.com", &chain).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "{err}");
    assert!(err.message().contains("revoked"), "{err}");
}

#[test]
fn a_known_revoked_leaf_behind_junk_certificates_is_refused() {
    let (ca, leaf, chain) = revoked_leaf_with_junk();
    let client = ctx_with_crl(&ca, ContextFlags::default());
    let store = Arc::new(virtpki::MemoryKnownServers::new());
    store
        .add("h.example.com", Some(16514), &leaf.der())
        .unwrap();
    client.set_known_servers(Some(store));
    let err = client
        .verify_server("h.example.com", Some(16514), &chain, VerifyFlags::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "{err}");
    assert!(err.message().contains("revoked"), "{err}");
}

#[test]
fn the_validator_is_not_asked_about_a_revoked_leaf_behind_junk_certificates() {
    let (ca, _, chain) = revoked_leaf_with_junk();
    let client = ctx_with_crl(&ca, ContextFlags::PROMPT_UNVERIFIED);
    let asked = count_validator_calls(&client, ValidatorAnswer::AcceptOnce);
    let err = verify(&client, "h.example.com", &chain).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "{err}");
    assert_eq!(asked.load(Ordering::SeqCst), 0);
}

#[test]
fn a_pin_stands_in_for_a_disqualified_ca_but_not_for_a_revoked_leaf() {
    // The loaded CA breaks a profile rule (no subject key identifier): no usable path, an
    // issuer failure, which a pin may override; a revoked leaf stays refused.
    let key = key(Alg::EcdsaP256);
    let ca_params = Spec::ca("CA").bc(Some(true), true).params();
    let ca = Made {
        cert: ca_params.self_signed(&key).unwrap(),
        key,
        params: ca_params,
    };
    let leaf = leaf_77(&ca);
    let client = ctx_with_crl(&ca, ContextFlags::default());
    pin(&client, &leaf);
    let err = verify(&client, "h.example.com", &[cert(&leaf)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "{err}");
    // Not revoked: the pin stands in for the unusable CA.
    assert_a_pinned_leaf_of_is_accepted(&client, &ca);
}

#[test]
fn an_expired_certificate_sent_along_with_a_pinned_leaf_is_refused() {
    let ca = self_signed(&Spec::ca("CA"));
    let other = self_signed(&Spec::ca("Other"));
    let leaf = signed_by(&Spec::server("h.example.com"), &other);
    let stale = signed_by(
        &Spec::ca("Stale").valid(date(2020, 1, 1), date(2026, 1, 1)),
        &other,
    );
    let client = ctx_with_ca(&ca, ContextFlags::default());
    pin(&client, &leaf);
    let v = verify(&client, "h.example.com", &[cert(&leaf)]).unwrap();
    assert_eq!(v.acceptance, Acceptance::Pinned);
    let err = verify(&client, "h.example.com", &[cert(&leaf), cert(&stale)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired, "{err}");
    assert!(err.message().contains("CN=Stale"), "{err}");
}

#[test]
fn a_peer_chain_is_capped_at_sixteen_certificates() {
    let ca = self_signed(&Spec::ca("CA"));
    let server = signed_by(&Spec::server("h.example.com"), &ca);
    let client_leaf = signed_by(&Spec::client("c"), &ca);
    let ctx = ctx_with_ca(&ca, ContextFlags::default());
    let padding = junk_claiming("Unrelated", 16);
    for (n, ok) in [(16, true), (17, false)] {
        let mut chain = vec![cert(&server)];
        chain.extend(padding[..n - 1].iter().cloned());
        let result = verify(&ctx, "h.example.com", &chain);
        assert_eq!(result.is_ok(), ok, "{n}: {:?}", result.err());
        chain[0] = cert(&client_leaf);
        let result = ctx.verify_client(&chain, VerifyFlags::default());
        assert_eq!(result.is_ok(), ok, "{n}: {:?}", result.err());
        if !ok {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
            assert!(err.message().contains("17 certificates"), "{err}");
        }
    }
    // Pinned or not.
    ctx.add_pem(CertDataType::ServerTrusted, &server.pem())
        .unwrap();
    let mut chain = vec![cert(&server)];
    chain.extend(padding.iter().cloned());
    let err = verify(&ctx, "h.example.com", &chain).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
}

#[test]
fn a_certificate_trusted_for_any_host_does_not_stand_in_for_another_host_name() {
    let ca = self_signed(&Spec::ca("CA"));
    let pinned = own_server("a.example.com");
    let client = ctx_with_ca(&ca, ContextFlags::default());
    pin(&client, &pinned);
    // Its own name: the pin stands in for the unknown issuer.
    let v = verify(&client, "a.example.com", &[cert(&pinned)]).unwrap();
    assert_eq!(v.acceptance, Acceptance::Pinned);
    assert_eq!(v.trust, virtpki::TrustStatus::TrustedAnyHost);
    // Another host: refused, with the name as the reason.
    let err = verify(&client, "bank.example", &[cert(&pinned)]).unwrap_err();
    assert!(err.message().contains("bank.example"), "{err}");
    assert!(
        err.message()
            .contains("stands in for an unknown issuer only"),
        "{err}"
    );
    // Also a certificate from the loaded CA: the issuer is fine, the name is not.
    let issued = signed_by(&Spec::server("a.example.com"), &ca);
    pin(&client, &issued);
    let err = verify(&client, "bank.example", &[cert(&issued)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{err}");
    // With PROMPT_UNVERIFIED the validator may still be asked, and is told it is not trusted
    // for that host.
    let prompt = ctx_with_ca(&ca, ContextFlags::PROMPT_UNVERIFIED);
    pin(&prompt, &issued);
    let seen = log_validator_requests(&prompt);
    let err = verify(&prompt, "bank.example", &[cert(&issued)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    let trusted: Vec<bool> = seen.lock().unwrap().iter().map(|r| r.0).collect();
    assert_eq!(trusted, [false]);
}

#[test]
fn an_any_host_store_entry_overrides_the_issuer_only_a_host_entry_the_name_too() {
    let ca = self_signed(&Spec::ca("CA"));
    let server = own_server("a.example.com");
    let dir = tempfile::tempdir().unwrap();
    // A plain bundle: any host.
    let path = dir.path().join("known");
    std::fs::write(&path, server.pem()).unwrap();
    let store = Arc::new(virtpki::KnownServers::open(&path).unwrap());
    let client = ctx_with_ca(&ca, ContextFlags::default());
    client.set_known_servers(Some(store.clone()));
    let chain = [cert(&server)];
    let v = client
        .verify_server("a.example.com", Some(16514), &chain, VerifyFlags::default())
        .unwrap();
    assert_eq!(v.acceptance, Acceptance::Pinned);
    assert_eq!(v.trust, virtpki::TrustStatus::TrustedAnyHost);
    let err = client
        .verify_server("bank.example", Some(16514), &chain, VerifyFlags::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{err}");
    assert!(err.message().contains("bank.example"), "{err}");
    // An entry bound to the host (and port) overrides the name as well.
    store
        .add("bank.example", Some(16514), &server.der())
        .unwrap();
    let v = client
        .verify_server("bank.example", Some(16514), &chain, VerifyFlags::default())
        .unwrap();
    assert_eq!(v.acceptance, Acceptance::Pinned);
    assert_eq!(v.trust, virtpki::TrustStatus::Trusted);
    assert!(client
        .verify_server("bank.example", Some(1), &chain, VerifyFlags::default())
        .is_err());
}

/// A SAN-less server certificate with two Common Names, issued by `ca` with openssl (rcgen
/// keeps one value per attribute type).
fn two_common_names(ca: &Made, dir: &std::path::Path) -> Certificate {
    openssl_leaf(ca, dir, "/CN=evil.example/CN=victim.example", &[])
}

/// A SAN-less server certificate with the subject `subj` (openssl's -subj syntax, `extra`
/// arguments to `openssl req`), issued by `ca` with openssl.
fn openssl_leaf(ca: &Made, dir: &std::path::Path, subj: &str, extra: &[&str]) -> Certificate {
    write(dir, "ca.pem", ca.pem(), 0o600);
    write(dir, "ca.key", ca.key_pem(), 0o600);
    write(
        dir,
        "ext.cnf",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid\n",
        0o600,
    );
    openssl(
        dir,
        &[
            &["req", "-new"],
            NEW_P256_KEY,
            &["-keyout", "leaf.key", "-subj", subj, "-out", "leaf.csr"],
            extra,
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "9",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-out",
            "leaf.pem",
        ],
    );
    let pem = std::fs::read_to_string(dir.join("leaf.pem")).unwrap();
    virtpki::pem::parse_chain(&pem).unwrap().remove(0)
}

#[test]
fn the_common_name_fallback_needs_exactly_one_common_name() {
    let ca = self_signed(&Spec::ca("CA"));
    let dir = tempfile::tempdir().unwrap();
    let leaf = two_common_names(&ca, dir.path());
    assert_eq!(leaf.common_names().len(), 2);
    let client = ctx_with_ca(&ca, ContextFlags::default());
    // openssl x509 (before 3.4) issues from the current time only.
    client.set_verify_time(None);
    for host in ["evil.example", "victim.example"] {
        let err = verify(&client, host, std::slice::from_ref(&leaf)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{host}: {err}");
        assert!(err.message().contains("exactly one"), "{err}");
    }
    // One Common Name still works (libvirt's old certificates).
    let mut spec = Spec::server("victim.example");
    spec.dns.clear();
    let one = signed_by(&spec, &ca);
    client.set_verify_time(Some(now()));
    verify(&client, "victim.example", &[cert(&one)]).unwrap();
}

#[test]
fn a_renewed_root_verifies_in_either_bundle_order() {
    // The same name and key: the expired root and its renewal make identical webpki anchors.
    let key = key(Alg::EcdsaP256);
    let old_params = Spec::ca("Root")
        .valid(date(2016, 1, 1), date(2026, 1, 1))
        .params();
    let new_params = Spec::ca("Root")
        .valid(date(2025, 6, 1), date(2035, 1, 1))
        .params();
    let old = old_params.self_signed(&key).unwrap();
    let new = new_params.self_signed(&key).unwrap();
    let issuer = rcgen::Issuer::from_params(&new_params, &key);
    let leaf = Spec::server("h.example.com").params();
    let leaf_key = common::key(Alg::EcdsaP256);
    let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let client_params = Spec::client("c").params();
    let client_leaf = client_params.signed_by(&leaf_key, &issuer).unwrap();
    for bundle in [
        format!("{}{}", old.pem(), new.pem()),
        format!("{}{}", new.pem(), old.pem()),
    ] {
        let ctx = Context::new(ContextFlags::default());
        ctx.set_verify_time(Some(now()));
        ctx.add_pem(CertDataType::CaCert, &bundle).unwrap();
        let chain = [Certificate::from_der(leaf.der().to_vec(), Source::Peer).unwrap()];
        verify(&ctx, "h.example.com", &chain).unwrap_or_else(|e| panic!("{bundle}: {e}"));
        let chain = [Certificate::from_der(client_leaf.der().to_vec(), Source::Peer).unwrap()];
        ctx.verify_client(&chain, VerifyFlags::default())
            .unwrap_or_else(|e| panic!("{bundle}: {e}"));
    }
    // Only the expired one: refused, naming it.
    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(now()));
    ctx.add_pem(CertDataType::CaCert, &old.pem()).unwrap();
    let chain = [Certificate::from_der(leaf.der().to_vec(), Source::Peer).unwrap()];
    let err = verify(&ctx, "h.example.com", &chain).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired, "{err}");
    assert!(err.message().contains("CA certificate"), "{err}");
}

#[test]
fn profile_rules_apply_to_the_root_webpki_chose() {
    // Two roots of one name and key, both valid: the first breaks a profile rule (no subject
    // key identifier), the second does not. The path through the second is the good one.
    let key = key(Alg::EcdsaP256);
    let bad_params = Spec::ca("Root").bc(Some(true), true).params();
    let good_params = Spec::ca("Root").params();
    let bad = bad_params.self_signed(&key).unwrap();
    let good = good_params.self_signed(&key).unwrap();
    let issuer = rcgen::Issuer::from_params(&good_params, &key);
    let leaf_key = common::key(Alg::EcdsaP256);
    let leaf = Spec::server("h.example.com")
        .params()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let chain = [Certificate::from_der(leaf.der().to_vec(), Source::Peer).unwrap()];
    for ctx in contexts_with_both_ca_orders(&bad.pem(), &good.pem()) {
        verify(&ctx, "h.example.com", &chain).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn ipv6_zone_ids_are_compared_without_the_zone() {
    let client = ip_san_matches_only(
        "fe80::1",
        &["fe80::1%eth0", "[fe80::1%eth0]", "FE80:0::1%25"],
        "fe80::2%eth0",
    );
    // The store keys by the address with its zone: another link is another machine.
    let mut spec = Spec::server("h.example.com");
    spec.ca = Some(false);
    spec.ips = vec!["fe80::1".parse().unwrap()];
    let unknown = self_signed(&spec);
    know(&client, "fe80::1%eth0", &unknown);
    let v = verify(&client, "[fe80::1%eth0]", &[cert(&unknown)]).unwrap();
    assert_eq!(v.acceptance, Acceptance::Pinned);
    let err = verify(&client, "fe80::1%eth1", &[cert(&unknown)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownIssuer, "{err}");
}

#[test]
fn a_chain_webpki_gives_up_on_is_refused_pinned_or_not_with_its_own_message() {
    // A pinned self-signed server that sends junk claiming its own name: webpki's path search
    // goes past its limits (path depth here). That is not an unknown issuer; nothing
    // overrides it.
    let ca = self_signed(&Spec::ca("CA"));
    let pinned = own_server("h.example.com");
    let mut chain = vec![cert(&pinned)];
    chain.extend(junk_claiming("h.example.com", 7));
    let client = ctx_with_ca(&ca, ContextFlags::PROMPT_UNVERIFIED);
    pin(&client, &pinned);
    client.set_validator(Some(Arc::new(|_: &virtpki::ValidationRequest<'_>| {
        ValidatorAnswer::AcceptOnce
    })));
    let err = verify(&client, "h.example.com", &chain).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert!(err.message().contains("gave up"), "{err}");
    // The same certificate alone is accepted as pinned.
    let v = verify(&client, "h.example.com", &chain[..1]).unwrap();
    assert_eq!(v.acceptance, Acceptance::Pinned);
}

// ---- Review R2: attacks on the trust decisions ----

#[test]
fn a_pinned_leaf_revoked_by_its_intermediates_crl_is_refused_without_the_intermediate() {
    // The CA file holds the root, the CRL file the intermediate's list revoking the leaf. The
    // peer sends only the pinned leaf: no path (the intermediate is unknown), so webpki never
    // reads the list, and the intermediate is not there to verify its signature. A list the
    // administrator loaded names the leaf: it is refused, pinned, known or asked about.
    let root = self_signed(&Spec::ca("Root"));
    let inter = signed_by(&Spec::ca("Inter"), &root);
    let leaf = leaf_77(&inter);
    let client = ctx_with_ca(&root, ContextFlags::PROMPT_UNVERIFIED);
    client
        .add_pem(CertDataType::CaCrl, &crl_pem(&inter, &[77]))
        .unwrap();
    // With the intermediate, the path says revoked.
    let err = verify(&client, "h.example.com", &[cert(&leaf), cert(&inter)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "{err}");
    let asked = count_validator_calls(&client, ValidatorAnswer::AcceptOnce);
    let err = verify(&client, "h.example.com", &[cert(&leaf)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "validator: {err}");
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    pin(&client, &leaf);
    let err = verify(&client, "h.example.com", &[cert(&leaf)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Revoked, "pinned: {err}");
    assert!(err.message().contains("revoked"), "{err}");
    // A leaf of that intermediate not on its list is still accepted as pinned.
    assert_a_pinned_leaf_of_is_accepted(&client, &inter);
}

#[test]
fn a_crl_of_the_same_name_from_another_key_never_lets_a_pinned_revoked_leaf_through() {
    // Two lists named "Inter": one from a loaded CA of that name but another key (it does not
    // list the leaf), one from the leaf's real issuer, which is not loaded (it does). The list
    // that can be verified is not the leaf's issuer's: it must not clear the leaf.
    let root = self_signed(&Spec::ca("Root"));
    let inter = signed_by(&Spec::ca("Inter"), &root);
    let other_inter = signed_by(&Spec::ca("Inter"), &root);
    let leaf = leaf_77(&inter);
    for order in [[true, false], [false, true]] {
        let client = ctx_with_ca(&root, ContextFlags::NO_SANITY);
        client
            .add_pem(CertDataType::CaCert, &other_inter.pem())
            .unwrap();
        for real in order {
            let list = if real {
                common::crl_pem_numbered(&inter, 1, &[77])
            } else {
                common::crl_pem_numbered(&other_inter, 9, &[5])
            };
            client.add_pem(CertDataType::CaCrl, &list).unwrap();
        }
        pin(&client, &leaf);
        let result = verify(&client, "h.example.com", &[cert(&leaf)]);
        assert!(
            result.is_err(),
            "{order:?}: {:?}",
            result.map(|v| v.acceptance)
        );
    }
}

#[test]
fn a_common_name_that_cannot_be_read_still_counts_as_a_common_name() {
    // Two Common Names, the first a BMPString (which the certificate model does not read as
    // text), the second "victim.example": that is a subject with two Common Names, and the
    // fallback must not pick the one it could read.
    let ca = self_signed(&Spec::ca("CA"));
    let mut spec = Spec::server("victim.example");
    spec.dns.clear();
    let mut params = spec.params();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 3]),
        rcgen::DnValue::BmpString("evil.example".try_into().unwrap()),
    );
    dn.push(rcgen::DnType::CommonName, "victim.example");
    params.distinguished_name = dn;
    let leaf_key = common::key(Alg::EcdsaP256);
    let leaf = params.signed_by(&leaf_key, &ca.issuer()).unwrap();
    let leaf = Certificate::from_der(leaf.der().to_vec(), Source::Peer).unwrap();
    let client = ctx_with_ca(&ca, ContextFlags::default());
    let err = verify(&client, "victim.example", std::slice::from_ref(&leaf)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{err}");
}

#[test]
fn a_certificate_trusted_for_any_host_keeps_the_changed_warning_for_the_validator() {
    // The store knows b.example with certificate X. A server presents P, pinned for any host
    // (from an unknown CA, naming a.example only). With PROMPT_UNVERIFIED the validator is
    // asked about the name mismatch: it must hear that b.example was trusted with another
    // certificate, the very sign of an impostor.
    let ca = self_signed(&Spec::ca("CA"));
    let x = own_server("b.example");
    let p = own_server("a.example");
    let client = ctx_with_ca(&ca, ContextFlags::PROMPT_UNVERIFIED);
    pin(&client, &p);
    know(&client, "b.example", &x);
    let seen = log_validator_requests(&client);
    let err = verify(&client, "b.example", &[cert(&p)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (trusted, flags) = seen[0];
    assert!(!trusted);
    assert!(
        flags.contains(ValidateFlags::CHANGED) && flags.contains(ValidateFlags::UNVERIFIED),
        "{flags:?}"
    );
}

#[test]
fn a_version_1_ca_in_the_bundle_does_not_turn_an_unknown_issuer_into_a_final_failure() {
    // GnuTLS takes version 1 CA certificates; a messy bundle has one. webpki reads every CA
    // of the bundle as a possible intermediate too and fails on the v1 one while looking for
    // the issuer of an unrelated certificate: a pinned server then was refused as "X.509
    // version 1", naming the wrong certificate.
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            &["req", "-new"],
            NEW_P256_KEY,
            &[
                "-keyout",
                "v1.key",
                "-subj",
                "/CN=Old V1 CA",
                "-out",
                "v1.csr",
            ],
        ]
        .concat(),
    );
    openssl(
        dir.path(),
        &[
            "x509", "-req", "-in", "v1.csr", "-key", "v1.key", "-days", "30", "-out", "v1.pem",
        ],
    );
    let v1 = std::fs::read_to_string(dir.path().join("v1.pem")).unwrap();
    let ca = self_signed(&Spec::ca("CA"));
    let pinned = own_server("h.example.com");
    let client = Context::new(ContextFlags::NO_SANITY);
    client
        .add_pem(CertDataType::CaCert, &format!("{v1}{}", ca.pem()))
        .unwrap();
    pin(&client, &pinned);
    let v = verify(&client, "h.example.com", &[cert(&pinned)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.acceptance, Acceptance::Pinned);
    // And a certificate the CA issued still verifies.
    let issued = signed_by(&Spec::server("h.example.com"), &ca);
    verify(&client, "h.example.com", &[cert(&issued)]).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn no_final_failure_is_overridden_by_a_host_entry_a_pin_or_the_validator() {
    // Every overrider at once: the certificate is pinned for any host, recorded for this host
    // in the store, and the validator (PROMPT_UNVERIFIED) accepts anything. None of these
    // failures may be overridden, and the validator is not even asked.
    let ca = self_signed(&Spec::ca("CA"));
    let host = "h.example.com";
    let own = |mut spec: Spec| {
        spec.ca = Some(false);
        self_signed(&spec)
    };
    let lab = ca_permitting_only("Lab CA", "lab.example");
    let not_a_ca = signed_by(&Spec::server("inter.example").bc(Some(false), true), &ca);
    let impostor = self_signed(&Spec::ca("CA"));
    let mut ca_leaf = Spec::server(host);
    ca_leaf.ca = Some(true);
    let cases: Vec<(&str, Vec<Made>, ErrorKind)> = vec![
        (
            "client purpose only",
            vec![own(Spec::server(host).eku(&[CLIENT_AUTH], false))],
            ErrorKind::Purpose,
        ),
        (
            "critical key usage without digitalSignature",
            vec![own(Spec::server(host).ku(KU_KEY_ENCIPHERMENT, true))],
            ErrorKind::KeyUsage,
        ),
        (
            "a CA as server",
            vec![self_signed(&ca_leaf)],
            ErrorKind::NotCa,
        ),
        (
            "outside the CA's name constraints",
            vec![signed_by(&Spec::server(host), &lab)],
            ErrorKind::NotCa,
        ),
        (
            "issued by a certificate that is not a CA",
            vec![signed_by(&Spec::server(host), &not_a_ca), not_a_ca],
            ErrorKind::NotCa,
        ),
        (
            "the CA's name, another key",
            vec![signed_by(&Spec::server(host), &impostor)],
            ErrorKind::BadSignature,
        ),
        (
            "expired",
            vec![own(
                Spec::server(host).valid(date(2020, 1, 1), date(2026, 1, 1))
            )],
            ErrorKind::Expired,
        ),
        (
            "not yet valid",
            vec![own(
                Spec::server(host).valid(date(2027, 1, 1), date(2028, 1, 1))
            )],
            ErrorKind::NotYetValid,
        ),
    ];
    for (what, made, kind) in cases {
        let client = ctx_with_ca(&ca, ContextFlags::PROMPT_UNVERIFIED);
        client.add_pem(CertDataType::CaCert, &lab.pem()).unwrap();
        pin(&client, &made[0]);
        know(&client, host, &made[0]);
        let asked = count_validator_calls(&client, ValidatorAnswer::AcceptOnce);
        let chain: Vec<Certificate> = made.iter().map(cert).collect();
        let err = verify(&client, host, &chain)
            .map(|v| v.acceptance)
            .expect_err(what);
        assert_eq!(err.kind(), kind, "{what}: {err}");
        assert!(err.message().contains("CN=h.example.com"), "{what}: {err}");
        assert!(
            err.message().contains("never overrides this failure"),
            "{what}: {err}"
        );
        assert_eq!(asked.load(Ordering::SeqCst), 0, "{what}");
    }
}

/// The C API's answer (0, or the error code) for a server verification.
fn c_verify_server(
    ctx: virtpki::ffi::context::virPKIContextPtr,
    host: &str,
    chain: &[&Made],
) -> i32 {
    use std::ffi::CString;
    let host = CString::new(host).unwrap();
    let pem: String = chain.iter().map(|m| m.pem()).collect();
    let pem = CString::new(pem).unwrap();
    // SAFETY: NUL-terminated strings that outlive the call, and the caller's live context.
    let rc = unsafe {
        virtpki::ffi::verify::virPKIContextVerifyServer(ctx, host.as_ptr(), 0, pem.as_ptr(), 0)
    };
    if rc == 0 {
        0
    } else {
        virtpki::ffi::errors::virPKIGetLastErrorCode()
    }
}

#[test]
fn the_c_api_gives_the_same_answers_as_the_rust_api() {
    use std::ffi::CString;
    let root = self_signed(&Spec::ca("Root"));
    let inter = signed_by(&Spec::ca("Inter"), &root);
    let revoked = leaf_77(&inter);
    let good = signed_by(&Spec::server("h.example.com"), &inter);
    let ctx = virtpki::ffi::context::virPKIContextNew(0);
    assert!(!ctx.is_null());
    let add = |kind: CertDataType, pem: String| {
        let pem = CString::new(pem).unwrap();
        // SAFETY: a NUL-terminated string that outlives the call, and a live context.
        let rc = unsafe {
            virtpki::ffi::context::virPKIContextAddCertData(ctx, kind as i32, pem.as_ptr())
        };
        assert_eq!(rc, 0);
    };
    // SAFETY: a live context from virPKIContextNew.
    unsafe { virtpki::ffi::context::virPKIContextSetVerifyTime(ctx, now()) };
    add(CertDataType::CaCert, root.pem());
    add(CertDataType::CaCrl, crl_pem(&inter, &[77]));
    add(CertDataType::ServerTrusted, revoked.pem());
    add(CertDataType::ServerTrusted, good.pem());
    let rust = Context::new(ContextFlags::default());
    rust.set_verify_time(Some(now()));
    rust.add_pem(CertDataType::CaCert, &root.pem()).unwrap();
    rust.add_pem(CertDataType::CaCrl, &crl_pem(&inter, &[77]))
        .unwrap();
    rust.add_pem(CertDataType::ServerTrusted, &revoked.pem())
        .unwrap();
    rust.add_pem(CertDataType::ServerTrusted, &good.pem())
        .unwrap();
    let cases: [(&str, Vec<&Made>); 5] = [
        ("h.example.com", vec![&good, &inter]),
        ("h.example.com", vec![&good]),
        ("other.example", vec![&good]),
        ("h.example.com", vec![&revoked]),
        ("h.example.com", vec![&revoked, &inter]),
    ];
    let mut answers = Vec::new();
    for (host, chain) in &cases {
        let certs: Vec<Certificate> = chain.iter().map(|m| cert(m)).collect();
        let expected = match verify(&rust, host, &certs) {
            Ok(_) => 0,
            Err(e) => e.kind().code(),
        };
        assert_eq!(c_verify_server(ctx, host, chain), expected, "{host}");
        answers.push(expected);
    }
    assert_eq!(
        answers,
        [
            0,
            0,
            ErrorKind::HostnameMismatch.code(),
            ErrorKind::Revoked.code(),
            ErrorKind::Revoked.code()
        ]
    );
    // SAFETY: the context from virPKIContextNew, freed once and not used after.
    unsafe { virtpki::ffi::context::virPKIContextFree(ctx) };
}

#[test]
fn common_names_in_one_multi_valued_rdn_or_empty_do_not_stand_for_a_host() {
    let ca = self_signed(&Spec::ca("CA"));
    let dir = tempfile::tempdir().unwrap();
    let client = ctx_with_ca(&ca, ContextFlags::default());
    client.set_verify_time(None);
    let multi = openssl_leaf(
        &ca,
        dir.path(),
        "/CN=evil.example+CN=victim.example",
        &["-multivalue-rdn"],
    );
    assert_eq!(multi.common_names().len(), 2);
    for host in ["evil.example", "victim.example"] {
        let err = verify(&client, host, std::slice::from_ref(&multi)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{host}: {err}");
    }
    // A CN with an empty value next to a real one: two Common Names (openssl skips an empty
    // value; rcgen writes it, as a second attribute of the CN type).
    let mut spec = Spec::server("victim.example");
    spec.dns.clear();
    let mut params = spec.params();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 3]),
        rcgen::DnValue::Utf8String(String::new()),
    );
    dn.push(rcgen::DnType::CommonName, "victim.example");
    params.distinguished_name = dn;
    let leaf_key = common::key(Alg::EcdsaP256);
    let with_empty = params.signed_by(&leaf_key, &ca.issuer()).unwrap();
    let with_empty = Certificate::from_der(with_empty.der().to_vec(), Source::Peer).unwrap();
    assert_eq!(with_empty.common_names().len(), 2);
    let err = verify(&client, "victim.example", std::slice::from_ref(&with_empty)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{err}");
}

#[test]
fn hostile_zone_and_address_spellings_never_match() {
    let ca = self_signed(&Spec::ca("CA"));
    let mut spec = Spec::server("h.example.com");
    spec.ips = vec!["fe80::1".parse().unwrap(), "192.0.2.1".parse().unwrap()];
    let leaf = signed_by(&spec, &ca);
    // A CN-only certificate whose CN is an address: a CN never matches an address.
    let mut spec = Spec::server("192.0.2.1");
    spec.dns.clear();
    let cn_address = signed_by(&spec, &ca);
    let client = ctx_with_ca(&ca, ContextFlags::default());
    for host in [
        "fe80::1%eth0",
        "[fe80::1%eth0]",
        "fe80::1%25eth0",
        "192.0.2.1",
    ] {
        verify(&client, host, &[cert(&leaf)]).unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    for host in [
        "fe80::1%",
        "%eth0",
        "[fe80::1]%eth0",
        "fe80::1%eth0]",
        "192.0.2.1%eth0",
        "192.0.2.1%x",
        "h.example.com%eth0",
        "fe80::2%fe80::1",
        "fe80::1%eth0%x",
        "fe80::1%eth 0",
        "192.0.2.1.",
        "3221225985",
        "0xc0.0.2.1",
    ] {
        for chain in [[cert(&leaf)], [cert(&cn_address)]] {
            let err = verify(&client, host, &chain)
                .map(|v| v.acceptance)
                .expect_err(host);
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::InvalidArg | ErrorKind::HostnameMismatch
                ),
                "{host}: {err}"
            );
        }
    }
}

#[test]
fn two_roots_of_one_name_and_different_keys_each_keep_their_own_constraints() {
    // "Root" twice: one with name constraints (it issued the CN-only leaf), one without. The
    // Common Name fallback is off under a constrained CA; the anchor webpki used is the
    // constrained one, in either bundle order (found by identity, not by name).
    let constrained = ca_permitting_only("Root", "lab.example");
    let free = self_signed(&Spec::ca("Root"));
    let mut spec = Spec::server("victim.example");
    spec.dns.clear();
    let leaf = signed_by(&spec, &constrained);
    let sound = signed_by(&Spec::server("victim.example"), &free);
    for ctx in contexts_with_both_ca_orders(&free.pem(), &constrained.pem()) {
        let err = verify(&ctx, "victim.example", &[cert(&leaf)])
            .map(|v| v.acceptance)
            .expect_err("CN fallback under a constrained root");
        assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{err}");
        verify(&ctx, "victim.example", &[cert(&sound)]).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_server_profile_applies_to_a_certificate_accepted_in_place_of_its_issuer() {
    // A pin, a host entry or the validator stands in for an unknown issuer, not for the
    // server certificate's own profile: what a loaded CA's server certificate is refused for
    // (final) is refused pinned too. On main these rules ran only on a path to a loaded CA.
    let ca = self_signed(&Spec::ca("CA"));
    let unknown = self_signed(&Spec::ca("Unknown CA"));
    let host = "h.example.com";
    let mut nc = Spec::server(host).params();
    nc.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("example.com".into())],
        excluded_subtrees: vec![],
    });
    let nc_key = common::key(Alg::EcdsaP256);
    let nc = Made {
        cert: nc.signed_by(&nc_key, &unknown.issuer()).unwrap(),
        key: nc_key,
        params: nc,
    };
    let cases: Vec<(&str, Made, ErrorKind)> = vec![
        (
            "keyCertSign without being a CA",
            signed_by(
                &Spec::server(host).ku(KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN, true),
                &unknown,
            ),
            ErrorKind::KeyUsage,
        ),
        ("name constraints on a server", nc, ErrorKind::Parse),
    ];
    for (what, made, kind) in cases {
        let client = ctx_with_ca(&ca, ContextFlags::PROMPT_UNVERIFIED);
        pin(&client, &made);
        know(&client, host, &made);
        client.set_validator(Some(Arc::new(|_: &virtpki::ValidationRequest<'_>| {
            ValidatorAnswer::AcceptOnce
        })));
        let err = verify(&client, host, &[cert(&made)])
            .map(|v| v.acceptance)
            .expect_err(what);
        assert_eq!(err.kind(), kind, "{what}: {err}");
        // The same certificate from the loaded CA: refused for the same reason.
    }
}

#[test]
fn an_any_host_store_entry_keeps_the_changed_warning_for_the_validator() {
    // As a_certificate_trusted_for_any_host_keeps_the_changed_warning_for_the_validator, with
    // the any-host trust in the known-servers file ("# host *") instead of pinned data.
    let ca = self_signed(&Spec::ca("CA"));
    let x = own_server("b.example");
    let p = own_server("a.example");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known");
    std::fs::write(&path, p.pem()).unwrap();
    let store = Arc::new(virtpki::KnownServers::open(&path).unwrap());
    store.add("b.example", None, &x.der()).unwrap();
    let client = ctx_with_ca(&ca, ContextFlags::PROMPT_UNVERIFIED);
    client.set_known_servers(Some(store));
    let seen = log_validator_requests(&client);
    let err = verify(&client, "b.example", &[cert(&p)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let flags = seen[0].1;
    assert!(flags.contains(ValidateFlags::CHANGED), "{flags:?}");
}
