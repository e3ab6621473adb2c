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

// --- Review (issue 12 item 4): what a peer checks must survive a renewal, or it is refused. ---

/// A CA made by openssl as many sites make one: name constraints (critical), a policy, an
/// authority key identifier in its issuer+serial form; and a leaf it issued with a policy, a
/// CRL distribution point and the same AKI form. Returns the directory.
fn openssl_ca_and_leaf() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut req = vec!["req", "-x509"];
    req.extend_from_slice(common::openssl_args::NEW_P256_KEY);
    req.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3650",
        "-subj",
        "/O=Test/CN=Constrained CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "subjectKeyIdentifier=hash",
        "-addext",
        "authorityKeyIdentifier=keyid:always,issuer:always",
        "-addext",
        "nameConstraints=critical,permitted;DNS:.example.com",
        "-addext",
        "certificatePolicies=1.2.3.4",
    ]);
    common::openssl(d, &req);
    common::write(
        d,
        "leaf.ext",
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:host1.example.com\n\
         subjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid,issuer:always\n\
         certificatePolicies=1.2.3.4\n\
         crlDistributionPoints=URI:http://crl.example.com/ca.crl\n",
        0o644,
    );
    let mut req = vec!["req", "-new"];
    req.extend_from_slice(common::openssl_args::NEW_P256_KEY);
    req.extend([
        "-keyout",
        "leaf.key",
        "-subj",
        "/O=Example/CN=host1.example.com",
        "-out",
        "leaf.csr",
    ]);
    common::openssl(d, &req);
    common::openssl(
        d,
        &[
            "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "30",
            "-extfile", "leaf.ext", "-out", "leaf.pem",
        ],
    );
    dir
}

fn read_pem_cert(path: &std::path::Path) -> Certificate {
    virtpki::pem::read_certificates_expecting(path, "certificate")
        .unwrap()
        .remove(0)
}

fn openssl_ca(d: &std::path::Path) -> CertificateAuthority {
    let cert = std::fs::read_to_string(d.join("ca.pem")).unwrap();
    let key = std::fs::read_to_string(d.join("ca.key")).unwrap();
    CertificateAuthority::from_pem(&cert, &key).unwrap()
}

/// Whether `openssl verify -CAfile ca leaf` accepts (OpenSSL checks an AKI's issuer+serial
/// form against the issuer's serial; spice and other OpenSSL peers verify this way).
fn openssl_verifies(d: &std::path::Path, ca: &str, leaf: &str) -> bool {
    std::process::Command::new("openssl")
        .current_dir(d)
        .args(["verify", "-CAfile", ca, leaf])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_renewed_ca_keeps_its_name_constraints_and_policies() {
    let dir = openssl_ca_and_leaf();
    let authority = openssl_ca(dir.path());
    let old = authority.certificate().clone();
    assert!(old.has_name_constraints());
    let renewed = authority.renew_ca(&Validity::days_from_now(3650)).unwrap();
    let new = &renewed.certificate;
    // Dropped, the constraints would be gone from every host that installs the new CA: the
    // same key then vouches for any name.
    assert!(new.has_name_constraints(), "{:?}", renewed.not_carried);
    let kept = |c: &Certificate| {
        sorted(
            extensions(c)
                .into_iter()
                .filter(|(oid, _, _)| oid != "2.5.29.35")
                .collect(),
        )
    };
    assert_eq!(kept(new), kept(&old));
    assert!(renewed.not_carried.is_empty(), "{:?}", renewed.not_carried);
}

#[test]
fn a_renewed_ca_with_an_issuer_and_serial_aki_still_verifies_under_openssl() {
    let dir = openssl_ca_and_leaf();
    let d = dir.path();
    let authority = openssl_ca(d);
    let renewed = authority.renew_ca(&Validity::days_from_now(3650)).unwrap();
    common::write(d, "new.pem", &renewed.cert_pem, 0o644);
    // Copied as it was, the AKI names the old certificate's serial: OpenSSL then takes the new
    // CA for one issued by another certificate, and refuses it and everything under it.
    assert!(openssl_verifies(d, "new.pem", "new.pem"));
    let again = CertificateAuthority::from_pem(
        &renewed.cert_pem,
        &std::fs::read_to_string(d.join("ca.key")).unwrap(),
    )
    .unwrap();
    let leaf = again
        .renew(
            &read_pem_cert(&d.join("leaf.pem")),
            &Validity::days_from_now(20),
        )
        .unwrap();
    common::write(d, "renewed-leaf.pem", &leaf.cert_pem, 0o644);
    assert!(openssl_verifies(d, "new.pem", "renewed-leaf.pem"));
    assert!(openssl_verifies(d, "ca.pem", "renewed-leaf.pem"));
}

#[test]
fn a_renewed_leaf_keeps_its_policies_and_crl_distribution_points() {
    let dir = openssl_ca_and_leaf();
    let d = dir.path();
    let authority = openssl_ca(d);
    let old = read_pem_cert(&d.join("leaf.pem"));
    let renewed = authority.renew(&old, &Validity::days_from_now(20)).unwrap();
    // A peer that requires the policy, or fetches the CRL from the distribution point, would
    // refuse the renewal or stop checking its revocation.
    let kept = |c: &Certificate| {
        sorted(
            extensions(c)
                .into_iter()
                .filter(|(oid, _, _)| oid != "2.5.29.35")
                .collect(),
        )
    };
    assert_eq!(kept(&renewed.certificate), kept(&old));
    assert!(renewed.not_carried.is_empty(), "{:?}", renewed.not_carried);
}

#[test]
fn a_critical_extension_that_would_not_be_carried_over_is_refused() {
    let ca_made = self_signed(&Spec::ca("Kit CA"));
    let authority = CertificateAuthority::from_pem(&ca_made.pem(), &ca_made.key_pem()).unwrap();
    let mut spec = Spec::server("host.example");
    let mut private = rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 99999, 2],
        common::tlv(0x05, &[]),
    );
    private.set_criticality(true);
    spec.custom.push(private);
    let old = signed_by(&spec, &ca_made).parsed();
    // Left out, a critical extension no peer understood (so the old certificate was refused
    // everywhere) would be dropped and the renewal accepted: fail closed instead.
    let e = authority.renew(&old, &validity(30)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("1.3.6.1.4.1.99999.2"), "{e}");
    assert!(e.message().contains("critical"), "{e}");
}

/// Review: a CA that has expired cannot renew anything; "ask for fewer days" sent people
/// hunting for a number of days that does not exist. The error says to renew the CA first.
#[test]
fn an_expired_ca_says_to_renew_the_ca_first() {
    let ca_made = self_signed(&Spec::ca("Kit CA")); // ends 2030-01-01
    let authority = CertificateAuthority::from_pem(&ca_made.pem(), &ca_made.key_pem()).unwrap();
    let old = signed_by(&Spec::client("late"), &ca_made).parsed();
    let after = Validity {
        now: common::date(2030, 6, 1),
        days: 1,
    };
    let e = authority.renew(&old, &after).unwrap_err();
    assert!(e.message().contains("has expired"), "{e}");
    assert!(e.message().contains("virtpki ca renew"), "{e}");
    assert!(!e.message().contains("fewer days"), "{e}");
    // Renewed, the CA signs again.
    let renewed = authority.renew_ca(&after).unwrap();
    let key = ca_made.key_pem();
    let again = CertificateAuthority::from_pem(&renewed.cert_pem, &key).unwrap();
    again.renew(&old, &after).unwrap();
}

/// Review: a leaf that carries its CA's own name (another key; openssl-made, say) was renewed,
/// where `sign` refuses to issue one: wherever certificates are found by name it stands for
/// the CA. Both refuse it now, by one check.
#[test]
fn a_leaf_with_its_cas_own_name_is_not_renewed() {
    let ca_made = self_signed(&Spec::ca("Kit CA"));
    let authority = CertificateAuthority::from_pem(&ca_made.pem(), &ca_made.key_pem()).unwrap();
    let twin = signed_by(&Spec::client("Kit CA"), &ca_made).parsed();
    assert_eq!(twin.subject_raw(), authority.certificate().subject_raw());
    let e = authority.renew(&twin, &validity(30)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("this CA's own name"), "{e}");
}

/// Review: a certificate whose issuer is the CA's name in other string types (the signature
/// verifies) was refused as "issuer \"CN=X\" was not issued by this CA \"CN=X\"": two equal
/// names. The error says the encodings differ.
#[test]
fn an_issuer_name_encoded_otherwise_is_refused_and_says_so() {
    let ca_made = self_signed(&Spec::ca("Kit CA"));
    let authority = CertificateAuthority::from_pem(&ca_made.pem(), &ca_made.key_pem()).unwrap();
    let mut renamed = ca_made.params.clone();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        rcgen::DnValue::PrintableString("Kit CA".try_into().unwrap()),
    );
    renamed.distinguished_name = dn;
    let issuer = rcgen::Issuer::from_params(&renamed, &ca_made.key);
    let key = common::key(common::Alg::EcdsaP256);
    let old = Spec::client("enc")
        .params()
        .signed_by(&key, &issuer)
        .unwrap();
    let old = Certificate::from_der(old.der().to_vec(), virtpki::Source::Data).unwrap();
    assert_eq!(old.issuer(), authority.certificate().subject());
    assert_ne!(old.issuer_raw(), authority.certificate().subject_raw());
    let e = authority.renew(&old, &validity(30)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownIssuer, "{e}");
    assert!(e.message().contains("encoded differently"), "{e}");
}

/// Review: a CA whose authority key identifier names it by issuer and serial (OpenSSL's
/// `authorityKeyIdentifier=keyid,issuer`) most likely wrote that form into every certificate
/// it issued. Those name the old CA certificate's serial, and OpenSSL matches it: under the
/// renewed CA alone they stop verifying there (GnuTLS, hence libvirt, does not look). The
/// renewal says so, so the person keeps the old CA in the bundle or renews them.
#[test]
fn a_renewed_ca_says_when_its_certificates_name_the_old_serial() {
    let dir = openssl_ca_and_leaf();
    let d = dir.path();
    let renewed = openssl_ca(d)
        .renew_ca(&Validity::days_from_now(3650))
        .unwrap();
    assert!(renewed.issued_name_old_serial);
    common::write(d, "new.pem", &renewed.cert_pem, 0o644);
    let mut both = renewed.cert_pem.clone();
    both.push_str(&std::fs::read_to_string(d.join("ca.pem")).unwrap());
    common::write(d, "both.pem", &both, 0o644);
    // What the warning is about, and its remedy.
    assert!(!openssl_verifies(d, "new.pem", "leaf.pem"));
    assert!(openssl_verifies(d, "both.pem", "leaf.pem"));
    // A CA of virtpki's (key identifier only) has nothing to say.
    let (_, authority) = ca("Plain CA");
    let renewed = authority.renew_ca(&validity(3650)).unwrap();
    assert!(!renewed.issued_name_old_serial);
}

/// Whether GnuTLS (`certtool --verify`, libvirt's library) chains `leaf` to the CA file `ca`.
fn gnutls_verifies(d: &std::path::Path, ca: &str, leaf: &str) -> bool {
    std::process::Command::new("certtool")
        .current_dir(d)
        .args(["--verify", "--load-ca-certificate", ca, "--infile", leaf])
        .output()
        .expect("certtool (scripts/install-test-deps.sh)")
        .status
        .success()
}

/// Review, GnuTLS's view (libvirt's): after `renew_ca` of an openssl-made CA, the leaf it
/// issued and its renewal by virtpki verify under the old CA, the new one, and both in either
/// order; so do they under OpenSSL, except the old leaf (issuer+serial AKI) under the new CA
/// alone, which [`Renewed::issued_name_old_serial`] warns of.
#[test]
fn gnutls_and_openssl_chain_old_and_renewed_leaves_to_old_and_renewed_cas() {
    let dir = openssl_ca_and_leaf();
    let d = dir.path();
    let key = std::fs::read_to_string(d.join("ca.key")).unwrap();
    let old_ca = std::fs::read_to_string(d.join("ca.pem")).unwrap();
    let renewed_ca = openssl_ca(d)
        .renew_ca(&Validity::days_from_now(3650))
        .unwrap();
    let new_ca = CertificateAuthority::from_pem(&renewed_ca.cert_pem, &key).unwrap();
    let leaf = new_ca
        .renew(
            &read_pem_cert(&d.join("leaf.pem")),
            &Validity::days_from_now(20),
        )
        .unwrap();
    common::write(d, "renewed.pem", &leaf.cert_pem, 0o644);
    common::write(d, "new.pem", &renewed_ca.cert_pem, 0o644);
    common::write(
        d,
        "old-new.pem",
        old_ca.clone() + &renewed_ca.cert_pem,
        0o644,
    );
    common::write(
        d,
        "new-old.pem",
        renewed_ca.cert_pem.clone() + &old_ca,
        0o644,
    );
    for ca in ["ca.pem", "new.pem", "old-new.pem", "new-old.pem"] {
        for l in ["leaf.pem", "renewed.pem"] {
            assert!(gnutls_verifies(d, ca, l), "GnuTLS: {l} under {ca}");
            if (ca, l) != ("new.pem", "leaf.pem") {
                assert!(openssl_verifies(d, ca, l), "OpenSSL: {l} under {ca}");
            }
        }
    }
}

/// A leaf's authority key identifier is written anew from the CA, so even one marked critical
/// (against RFC 5280) is not a critical extension "left out".
#[test]
fn a_leafs_critical_authority_key_identifier_is_replaced_not_refused() {
    let ca_made = self_signed(&Spec::ca("Kit CA"));
    let authority = CertificateAuthority::from_pem(&ca_made.pem(), &ca_made.key_pem()).unwrap();
    let mut p = Spec::server("host.example").params();
    p.use_authority_key_identifier_extension = false;
    let mut aki = rcgen::CustomExtension::from_oid_content(
        &[2, 5, 29, 35],
        common::tlv(0x30, &common::tlv(0x80, &[1, 2, 3, 4])),
    );
    aki.set_criticality(true);
    p.custom_extensions.push(aki);
    let key = common::key(common::Alg::EcdsaP256);
    let old = p.signed_by(&key, &ca_made.issuer()).unwrap();
    let old = Certificate::from_der(old.der().to_vec(), virtpki::Source::Data).unwrap();
    let renewed = authority.renew(&old, &validity(30)).unwrap();
    let akis: Vec<_> = extensions(&renewed.certificate)
        .into_iter()
        .filter(|(oid, _, _)| oid == "2.5.29.35")
        .collect();
    assert_eq!(akis.len(), 1);
    assert!(!akis[0].1, "written non-critical");
    assert!(renewed.not_carried.is_empty(), "{:?}", renewed.not_carried);
}
