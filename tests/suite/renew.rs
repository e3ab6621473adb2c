//! Renewal with the same key (issue 12, item 4): `CertificateAuthority::renew` for leaves and
//! `renew_ca` for the CA, and what they refuse.

use crate::common;

use std::sync::{Arc, Mutex};

use common::{self_signed, signed_by, Spec};
use virtpki::generate::{
    create_ca, CaParams, CertificateAuthority, ClientParams, Issued, KeyType, ServerDnParams,
    SubjectName, Validity,
};
use virtpki::known::TrustStatus;
use virtpki::verify::VerifyFlags;
use virtpki::{
    CertDataType, Certificate, Context, ContextFlags, ErrorKind, ValidateFlags, ValidationRequest,
    ValidatorAnswer,
};

const NOW: i64 = 1_790_000_000; // 2026-09-21
const LATER: i64 = NOW + 200 * 86_400;

fn validity(days: u32) -> Validity {
    Validity { now: NOW, days }
}

fn ca(name: &str) -> (Issued, CertificateAuthority) {
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

fn server(ca: &CertificateAuthority) -> Issued {
    ca.issue_server_dn(&ServerDnParams {
        dn: SubjectName::parse("C=GB,ST=London,L=London,O=Example,CN=host1.example.com").unwrap(),
        dns_names: vec!["host1".into()],
        ip_addresses: vec!["192.0.2.1".parse().unwrap()],
        validity: validity(365),
        key_type: KeyType::EcdsaP256,
    })
    .unwrap()
}

fn client(ca: &CertificateAuthority) -> Issued {
    ca.issue_client(&ClientParams {
        dn: SubjectName::parse("C=GB,O=Example,CN=admin").unwrap(),
        validity: validity(365),
        key_type: KeyType::Ed25519,
    })
    .unwrap()
}

/// Every extension of a certificate, as (OID, critical, value).
fn extensions(cert: &Certificate) -> Vec<(String, bool, Vec<u8>)> {
    use x509_parser::prelude::FromDer;
    let (_, x) = x509_parser::certificate::X509Certificate::from_der(cert.der()).unwrap();
    x.extensions()
        .iter()
        .map(|e| (e.oid.to_id_string(), e.critical, e.value.to_vec()))
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn a_renewed_leaf_keeps_subject_names_key_and_usages_byte_for_byte() {
    let (_, authority) = ca("Renew CA");
    for old in [server(&authority), client(&authority)] {
        let old = old.certificate;
        let renewed = authority
            .renew(
                &old,
                &Validity {
                    now: LATER,
                    days: 400,
                },
            )
            .unwrap();
        let new = &renewed.certificate;
        assert_eq!(new.subject_raw(), old.subject_raw());
        assert_eq!(new.subject(), old.subject());
        assert_eq!(new.issuer_raw(), old.issuer_raw());
        assert_eq!(new.subject_alt_names(), old.subject_alt_names());
        assert_eq!(new.spki_der(), old.spki_der());
        assert_eq!(new.spki_fingerprint(), old.spki_fingerprint());
        assert_eq!(new.key_usage(), old.key_usage());
        assert_eq!(new.extended_key_usage(), old.extended_key_usage());
        assert_eq!(new.basic_constraints(), old.basic_constraints());
        assert!(!new.is_ca());
        // Every extension as it was, the key identifiers included (same CA, same key).
        assert_eq!(sorted(extensions(new)), sorted(extensions(&old)));
        assert_ne!(new.raw_serial(), old.raw_serial());
        assert_ne!(new.fingerprint(), old.fingerprint());
        assert_eq!(new.not_after(), LATER + 400 * 86_400);
        assert!(renewed.not_carried.is_empty(), "{:?}", renewed.not_carried);
        assert_eq!(renewed.cert_pem, new.to_pem());
        assert!(new.is_issued_by(authority.certificate()));
    }
}

#[test]
fn a_certificate_of_another_ca_or_a_forged_one_is_not_renewed() {
    let (_, authority) = ca("Renew CA");
    let (_, other) = ca("Another CA");
    let stranger = client(&other).certificate;
    let e = authority.renew(&stranger, &validity(30)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownIssuer, "{e}");
    assert!(e.message().contains("was not issued by this CA"), "{e}");
    assert!(e.message().contains("cannot renew it"), "{e}");
    // The CA's very name, another key: the signature gives it away.
    let (_, twin) = ca("Renew CA");
    let forged = client(&twin).certificate;
    assert_eq!(forged.issuer_raw(), authority.certificate().subject_raw());
    let e = authority.renew(&forged, &validity(30)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadSignature, "{e}");
    assert!(
        e.message().contains("does not verify under this CA's key"),
        "{e}"
    );
}

#[test]
fn ca_certificates_are_renewed_by_renew_ca_only() {
    let ca_made = self_signed(&Spec::ca("Kit CA"));
    let authority = CertificateAuthority::from_pem(&ca_made.pem(), &ca_made.key_pem()).unwrap();
    let e = authority
        .renew(authority.certificate(), &validity(30))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    assert!(e.message().contains("this CA's own certificate"), "{e}");
    assert!(e.message().contains("virtpki ca renew"), "{e}");
    let sub = signed_by(&Spec::ca("Kit Sub CA"), &ca_made).parsed();
    let e = authority.renew(&sub, &validity(30)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    assert!(e.message().contains("is a CA certificate"), "{e}");
    // An intermediate CA is not made a root of its own.
    let sub_made = signed_by(&Spec::ca("Kit Sub CA"), &ca_made);
    let sub_ca = CertificateAuthority::from_pem(&sub_made.pem(), &sub_made.key_pem()).unwrap();
    let e = sub_ca.renew_ca(&validity(30)).unwrap_err();
    assert!(e.message().contains("is not self-signed"), "{e}");
}

#[test]
fn a_weak_key_an_unwritable_subject_or_a_longer_life_than_the_ca_is_refused() {
    use rsa::pkcs8::EncodePublicKey;
    let ca_made = self_signed(&Spec::ca("Kit CA"));
    let authority = CertificateAuthority::from_pem(&ca_made.pem(), &ca_made.key_pem()).unwrap();
    // A 1024-bit RSA key, certified by some earlier, laxer CA software.
    let weak = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    let spki = weak.to_public_key().to_public_key_der().unwrap();
    let spki = rcgen::SubjectPublicKeyInfo::from_der(spki.as_bytes()).unwrap();
    let old = Spec::client("weak")
        .params()
        .signed_by(&spki, &ca_made.issuer())
        .unwrap();
    let old = Certificate::from_der(old.der().to_vec(), virtpki::Source::Data).unwrap();
    let e = authority.renew(&old, &validity(30)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    assert!(e.message().contains("not one virtpki certifies"), "{e}");
    assert!(
        e.message().contains("RSA-1024") || e.message().contains("1024"),
        "{e}"
    );
    // A subject in a string type the issuer does not write: another name would be issued.
    let mut p = Spec::client("bmp").params();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        rcgen::DnValue::BmpString("bmp".try_into().unwrap()),
    );
    p.distinguished_name = dn;
    let key = common::key(common::Alg::EcdsaP256);
    let bmp = p.signed_by(&key, &ca_made.issuer()).unwrap();
    let bmp = Certificate::from_der(bmp.der().to_vec(), virtpki::Source::Data).unwrap();
    let e = authority.renew(&bmp, &validity(30)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    assert!(
        e.message().contains("cannot be written back exactly"),
        "{e}"
    );
    // The kit's CA ends in 2030.
    let fine = signed_by(&Spec::client("fine"), &ca_made).parsed();
    let e = authority.renew(&fine, &validity(3650)).unwrap_err();
    assert!(e.message().contains("would outlive its CA"), "{e}");
    let e = authority.renew(&fine, &validity(0)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg);
    authority.renew(&fine, &validity(30)).unwrap();
}

#[test]
fn extensions_that_are_not_carried_over_are_named() {
    let ca_made = self_signed(&Spec::ca("Kit CA"));
    let authority = CertificateAuthority::from_pem(&ca_made.pem(), &ca_made.key_pem()).unwrap();
    let mut spec = Spec::server("host.example");
    let mut private = rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 99999, 1],
        common::tlv(0x05, &[]),
    );
    private.set_criticality(false);
    spec.custom.push(private);
    let old = signed_by(&spec, &ca_made).parsed();
    let renewed = authority.renew(&old, &validity(30)).unwrap();
    assert_eq!(renewed.not_carried, ["1.3.6.1.4.1.99999.1"]);
    assert!(extensions(&renewed.certificate)
        .iter()
        .all(|(oid, _, _)| oid != "1.3.6.1.4.1.99999.1"));
    assert_eq!(renewed.certificate.subject_raw(), old.subject_raw());
}

/// A daemon context trusting `cas` (one PEM bundle) at `when`.
fn trusting(cas: &[&str], when: i64) -> Context {
    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(when));
    ctx.add_pem(CertDataType::CaCert, &cas.concat()).unwrap();
    ctx
}

#[test]
fn a_renewed_ca_keeps_its_name_key_and_identifier_and_its_certificates_verify() {
    let (old_ca, authority) = ca("Rolling CA");
    let srv = server(&authority).certificate;
    let cli = client(&authority).certificate;
    let renewed = authority
        .renew_ca(&Validity {
            now: LATER,
            days: 7300,
        })
        .unwrap();
    let (old, new) = (&old_ca.certificate, &renewed.certificate);
    assert_eq!(new.subject_raw(), old.subject_raw());
    assert_eq!(new.issuer_raw(), new.subject_raw());
    assert_eq!(new.spki_der(), old.spki_der());
    assert_eq!(new.profile().subject_key_id, old.profile().subject_key_id);
    assert!(new.profile().subject_key_id.is_some());
    assert_eq!(new.basic_constraints(), old.basic_constraints());
    assert_eq!(new.key_usage(), old.key_usage());
    assert_eq!(sorted(extensions(new)), sorted(extensions(old)));
    assert_ne!(new.raw_serial(), old.raw_serial());
    assert_eq!(new.not_after(), LATER + 7300 * 86_400);
    assert!(new.is_issued_by(new) && new.is_issued_by(old) && old.is_issued_by(new));
    assert!(renewed.not_carried.is_empty(), "{:?}", renewed.not_carried);
    // The old key signs with the new certificate.
    let again = CertificateAuthority::from_pem(&renewed.cert_pem, &old_ca.key_pem).unwrap();
    let fresh = client(&again).certificate;
    // Old leaves under the new CA alone, under both in either order; a leaf of the renewed CA
    // under the old one alone (hosts not yet changed over).
    let (o, n) = (old_ca.cert_pem.as_str(), renewed.cert_pem.as_str());
    for (bundle, what) in [
        (vec![n], "new"),
        (vec![o, n], "old, new"),
        (vec![n, o], "new, old"),
        (vec![o], "old"),
    ] {
        let ctx = trusting(&bundle, LATER + 60);
        for leaf in [&cli, &fresh] {
            ctx.verify_client(std::slice::from_ref(leaf), VerifyFlags::default())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        ctx.verify_server(
            "host1.example.com",
            None,
            std::slice::from_ref(&srv),
            VerifyFlags::default(),
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

type Seen = Arc<Mutex<Vec<ValidateFlags>>>;

struct Recorder(Seen);

impl virtpki::CertificateValidator for Recorder {
    fn validate(&self, request: &ValidationRequest<'_>) -> ValidatorAnswer {
        self.0.lock().unwrap().push(request.flags);
        ValidatorAnswer::AcceptOnce
    }
}

#[test]
fn a_client_that_trusted_the_old_server_certificate_sees_changed_same_key() {
    let (ca_issued, authority) = ca("Known CA");
    let old = server(&authority).certificate;
    let renewed = authority.renew(&old, &validity(400)).unwrap().certificate;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(virtpki::KnownServers::open(dir.path().join("known")).unwrap());
    store.add("host1.example.com", None, old.der()).unwrap();
    let ctx = trusting(&[&ca_issued.cert_pem], NOW + 60);
    ctx.set_known_servers(Some(store));
    let seen: Seen = Arc::default();
    ctx.set_validator(Some(Arc::new(Recorder(seen.clone()))));
    let verdict = ctx
        .verify_server(
            "host1.example.com",
            None,
            std::slice::from_ref(&renewed),
            VerifyFlags::default(),
        )
        .unwrap();
    assert_eq!(verdict.trust, TrustStatus::Changed { same_key: true });
    assert_eq!(
        *seen.lock().unwrap(),
        [ValidateFlags::CHANGED | ValidateFlags::SAME_KEY]
    );
    // A new key for the same name is a change, not the same key.
    let rekeyed = server(&authority).certificate;
    seen.lock().unwrap().clear();
    let verdict = ctx
        .verify_server(
            "host1.example.com",
            None,
            std::slice::from_ref(&rekeyed),
            VerifyFlags::default(),
        )
        .unwrap();
    assert_eq!(verdict.trust, TrustStatus::Changed { same_key: false });
    assert_eq!(*seen.lock().unwrap(), [ValidateFlags::CHANGED]);
}

#[test]
fn a_revoked_certificate_is_not_renewed() {
    let (_, authority) = ca("Revoking CA");
    let (revoked, kept) = (
        client(&authority).certificate,
        client(&authority).certificate,
    );
    let crl = authority
        .revoke(None, std::slice::from_ref(&revoked), &validity(30))
        .unwrap();
    let der = ::pem::parse(&crl.pem).unwrap().into_contents();
    let e = authority.check_not_revoked(&revoked, &der).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Revoked, "{e}");
    assert!(e.message().contains("is revoked by this CA's CRL"), "{e}");
    authority.check_not_revoked(&kept, &der).unwrap();
    // Another CA's list says nothing about this CA's certificates: refused, not ignored.
    let (_, other) = ca("Other Revoking CA");
    let foreign = other.revoke(None, &[], &validity(30)).unwrap();
    let foreign = ::pem::parse(&foreign.pem).unwrap().into_contents();
    let e = authority.check_not_revoked(&kept, &foreign).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadSignature, "{e}");
}

/// A subject the issuer would write another way (a repeated attribute, which rcgen writes once)
/// is refused after signing, by comparing the bytes: the renewal is dropped unseen.
#[test]
fn a_subject_the_issuer_would_rewrite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca_issued, authority) = ca("Openssl CA");
    common::write(d, "ca.pem", &ca_issued.cert_pem, 0o644);
    common::write(d, "ca.key", ca_issued.key_pem.as_bytes(), 0o600);
    let mut req = vec!["req", "-new"];
    req.extend_from_slice(common::openssl_args::NEW_P256_KEY);
    req.extend([
        "-keyout",
        "leaf.key",
        "-subj",
        "/OU=a/OU=b/CN=twice",
        "-out",
        "leaf.csr",
    ]);
    common::openssl(d, &req);
    common::openssl(
        d,
        &[
            "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "30",
            "-out", "leaf.pem",
        ],
    );
    let old = virtpki::pem::read_certificates_expecting(&d.join("leaf.pem"), "certificate")
        .unwrap()
        .remove(0);
    assert_eq!(old.subject(), "OU=a,OU=b,CN=twice");
    let e = authority
        .renew(&old, &Validity::days_from_now(10))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(
        e.message().contains("cannot be written back exactly"),
        "{e}"
    );
    assert!(e.message().contains("leaf.pem"), "{e}");
}

/// A subject with a control character (made before virtpki refused them, or by other
/// software) is not renewed: the renewal is a new certificate of this CA, and issue, sign and
/// ca init no longer write such a name; the refusal names the character escaped.
#[test]
fn a_subject_with_a_control_character_is_not_renewed() {
    let ca_made = self_signed(&Spec::ca("Kit CA"));
    let authority = CertificateAuthority::from_pem(&ca_made.pem(), &ca_made.key_pem()).unwrap();
    for cn in ["evil\x1b[2Jadmin", "a\nb", "bidi\u{202e}nimda"] {
        let old = signed_by(&Spec::client(cn), &ca_made).parsed();
        let e = authority.renew(&old, &validity(30)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArg, "{cn:?}: {e}");
        assert!(e.message().contains("not allowed in a DN value"), "{e}");
        assert!(
            !e.message().chars().any(virtpki::display::is_unsafe),
            "{e:?}"
        );
    }
    authority
        .renew(
            &signed_by(&Spec::client("fine"), &ca_made).parsed(),
            &validity(30),
        )
        .unwrap();
}
