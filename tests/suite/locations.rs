//! libvirt's default locations with a fake root and HOME: no test touches the real /etc/pki.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use virtpki::locations::{self, Environment, Origin};
use virtpki::{CertDataType, Context, ContextFlags, ErrorKind, Role};

fn env(root: &Path, uid: u32) -> Environment {
    Environment {
        root: root.join("sys"),
        home: Some(root.join("home")),
        uid,
    }
}

fn chosen(files: &locations::CredentialFiles, ty: CertDataType) -> (PathBuf, Origin) {
    let f = files.get(ty).unwrap();
    (f.path.clone(), f.origin)
}

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, "x").unwrap();
}

#[test]
fn root_uses_the_system_files_only() {
    let t = tempfile::tempdir().unwrap();
    let e = env(t.path(), 0);
    touch(&t.path().join("home/.pki/libvirt/cacert.pem"));
    let f = locations::libvirt(&e, Role::Server, None);
    let sys = t.path().join("sys");
    assert_eq!(
        chosen(&f, CertDataType::CaCert),
        (sys.join("etc/pki/CA/cacert.pem"), Origin::System)
    );
    assert_eq!(
        chosen(&f, CertDataType::CaCrl),
        (sys.join("etc/pki/CA/cacrl.pem"), Origin::System)
    );
    assert_eq!(
        chosen(&f, CertDataType::ServerCert),
        (sys.join("etc/pki/libvirt/servercert.pem"), Origin::System)
    );
    assert_eq!(
        chosen(&f, CertDataType::ServerKey),
        (
            sys.join("etc/pki/libvirt/private/serverkey.pem"),
            Origin::System
        )
    );
    let c = locations::libvirt(&e, Role::Client, None);
    assert_eq!(
        chosen(&c, CertDataType::ClientKey).0,
        sys.join("etc/pki/libvirt/private/clientkey.pem")
    );
    assert!(f.get(CertDataType::ServerCert).unwrap().required);
    assert!(!c.get(CertDataType::ClientCert).unwrap().required);
    assert!(c.get(CertDataType::CaCert).unwrap().required);
    assert!(!c.get(CertDataType::CaCrl).unwrap().required);
}

#[test]
fn non_root_prefers_user_files_with_per_item_fallbacks() {
    let t = tempfile::tempdir().unwrap();
    let e = env(t.path(), 1000);
    let user = t.path().join("home/.pki/libvirt");
    let sys = t.path().join("sys");
    // Only the user CA and the user certificate (without its key) exist.
    touch(&user.join("cacert.pem"));
    touch(&user.join("clientcert.pem"));
    let f = locations::libvirt(&e, Role::Client, None);
    assert_eq!(
        chosen(&f, CertDataType::CaCert),
        (user.join("cacert.pem"), Origin::User)
    );
    assert_eq!(
        chosen(&f, CertDataType::CaCrl),
        (sys.join("etc/pki/CA/cacrl.pem"), Origin::SystemFallback)
    );
    // Certificate and key fall back as a pair.
    assert_eq!(
        chosen(&f, CertDataType::ClientCert),
        (
            sys.join("etc/pki/libvirt/clientcert.pem"),
            Origin::SystemFallback
        )
    );
    assert_eq!(
        chosen(&f, CertDataType::ClientKey).1,
        Origin::SystemFallback
    );
    // With the key there too, the pair is the user's; user keys have no private/ directory.
    touch(&user.join("clientkey.pem"));
    touch(&user.join("cacrl.pem"));
    let f = locations::libvirt(&e, Role::Client, None);
    assert_eq!(
        chosen(&f, CertDataType::ClientKey),
        (user.join("clientkey.pem"), Origin::User)
    );
    assert_eq!(
        chosen(&f, CertDataType::CaCrl),
        (user.join("cacrl.pem"), Origin::User)
    );
    // The CA alone falls back when missing.
    std::fs::remove_file(user.join("cacert.pem")).unwrap();
    let f = locations::libvirt(&e, Role::Client, None);
    assert_eq!(
        chosen(&f, CertDataType::CaCert),
        (sys.join("etc/pki/CA/cacert.pem"), Origin::SystemFallback)
    );
}

#[test]
fn pkipath_requires_its_ca_but_lets_crl_and_pair_fall_back() {
    let t = tempfile::tempdir().unwrap();
    let e = env(t.path(), 1000);
    let dir = t.path().join("pki");
    std::fs::create_dir_all(&dir).unwrap();
    let f = locations::libvirt(&e, Role::Server, Some(&dir));
    assert_eq!(
        chosen(&f, CertDataType::CaCert),
        (dir.join("cacert.pem"), Origin::PkiPath)
    );
    assert_eq!(chosen(&f, CertDataType::CaCrl).1, Origin::SystemFallback);
    assert_eq!(
        chosen(&f, CertDataType::ServerCert).1,
        Origin::SystemFallback
    );
    touch(&dir.join("cacrl.pem"));
    touch(&dir.join("servercert.pem"));
    touch(&dir.join("serverkey.pem"));
    let f = locations::libvirt(&e, Role::Server, Some(&dir));
    assert_eq!(
        chosen(&f, CertDataType::CaCrl),
        (dir.join("cacrl.pem"), Origin::PkiPath)
    );
    assert_eq!(
        chosen(&f, CertDataType::ServerKey),
        (dir.join("serverkey.pem"), Origin::PkiPath)
    );
}

#[test]
fn qemu_directory_names_and_numbered_identities() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let f = locations::qemu_dir(d, Role::Server);
    assert_eq!(
        chosen(&f, CertDataType::CaCert),
        (d.join("ca-cert.pem"), Origin::QemuDir)
    );
    assert_eq!(chosen(&f, CertDataType::CaCrl).0, d.join("ca-crl.pem"));
    assert_eq!(
        chosen(&f, CertDataType::ServerCert).0,
        d.join("server-cert.pem")
    );
    for n in [0, 2] {
        touch(&d.join(format!("server-cert-{n}.pem")));
        touch(&d.join(format!("server-key-{n}.pem")));
    }
    touch(&d.join("server-cert-3.pem")); // after the gap: never read
    let f = locations::qemu_dir(d, Role::Server);
    assert_eq!(
        chosen(&f, CertDataType::ServerCert).0,
        d.join("server-cert-0.pem")
    );
    assert_eq!(
        chosen(&f, CertDataType::ServerKey).0,
        d.join("server-key-0.pem")
    );
    // QEMU 10.2 stops at the first missing number: -1 is missing, so -2 is never read.
    assert!(f.extra_identities.is_empty());
    touch(&d.join("server-cert.pem"));
    touch(&d.join("server-key.pem"));
    let f = locations::qemu_dir(d, Role::Server);
    assert_eq!(
        chosen(&f, CertDataType::ServerCert).0,
        d.join("server-cert.pem")
    );
    assert_eq!(
        f.extra_identities,
        vec![(d.join("server-cert-0.pem"), d.join("server-key-0.pem"))]
    );
    let c = locations::qemu_dir(d, Role::Client);
    assert_eq!(
        chosen(&c, CertDataType::ClientKey).0,
        d.join("client-key.pem")
    );
    assert!(c.extra_identities.is_empty());
}

#[test]
fn the_proposal_tree() {
    let d = Path::new("/srv/certs");
    let f = locations::proposal_tree(d);
    assert_eq!(chosen(&f, CertDataType::CaCert).0, d.join("ca/cert.pem"));
    assert_eq!(chosen(&f, CertDataType::CaCrl).0, d.join("ca/ca-crl.pem"));
    assert_eq!(
        chosen(&f, CertDataType::ClientCert).0,
        d.join("client/cert.pem")
    );
    assert_eq!(
        chosen(&f, CertDataType::ClientKey).0,
        d.join("client/key.pem")
    );
    assert_eq!(
        chosen(&f, CertDataType::ServerTrusted).0,
        d.join("server/trusted.pem")
    );
}

/// A complete libvirt tree for `role` under the fake root's system locations.
fn system_tree(root: &Path, role: Role) -> Made {
    let e = env(root, 0);
    let ca = self_signed(&Spec::ca("Tree CA"));
    let leaf = match role {
        Role::Server => signed_by(&Spec::server("host.example.com"), &ca),
        Role::Client => signed_by(&Spec::client("client1"), &ca),
    };
    let at = |ty| {
        e.system_file(ty)
            .strip_prefix(&e.root)
            .unwrap()
            .to_path_buf()
    };
    write(
        &e.root,
        at(CertDataType::CaCert).to_str().unwrap(),
        ca.pem(),
        0o644,
    );
    write(
        &e.root,
        at(role.cert_type()).to_str().unwrap(),
        leaf.pem(),
        0o644,
    );
    write(
        &e.root,
        at(role.key_type()).to_str().unwrap(),
        leaf.key_pem(),
        0o600,
    );
    leaf
}

fn context() -> Context {
    let c = Context::new(ContextFlags::default());
    c.set_verify_time(Some(now()));
    c
}

#[test]
fn loading_reports_where_each_item_came_from() {
    let t = tempfile::tempdir().unwrap();
    system_tree(t.path(), Role::Server);
    let c = context();
    let report = c
        .load_files(&locations::libvirt(&env(t.path(), 0), Role::Server, None))
        .unwrap();
    let loaded: Vec<_> = report.loaded.iter().map(|(ty, _, o)| (*ty, *o)).collect();
    assert_eq!(
        loaded,
        [
            (CertDataType::CaCert, Origin::System),
            (CertDataType::ServerCert, Origin::System),
            (CertDataType::ServerKey, Origin::System)
        ]
    );
    assert_eq!(report.absent.len(), 1);
    assert_eq!(report.absent[0].0, CertDataType::CaCrl);
    let text = report.to_string();
    assert!(
        text.contains("etc/pki/libvirt/servercert.pem (system location)"),
        "{text}"
    );
    assert!(text.contains("certificate revocation list: none"), "{text}");
    assert_eq!(
        c.credentials().server.chain[0].subject(),
        "CN=host.example.com"
    );
}

#[test]
fn a_missing_ca_or_daemon_identity_fails_a_client_may_go_without() {
    let t = tempfile::tempdir().unwrap();
    let e = env(t.path(), 0);
    let c = context();
    let err = c
        .load_files(&locations::libvirt(&e, Role::Client, None))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(
        err.message().contains("Cannot read CA certificate"),
        "{err}"
    );
    assert!(err.message().contains("etc/pki/CA/cacert.pem"), "{err}");
    // A client with just a CA loads.
    let ca = self_signed(&Spec::ca("CA"));
    write(&e.root, "etc/pki/CA/cacert.pem", ca.pem(), 0o644);
    c.load_files(&locations::libvirt(&e, Role::Client, None))
        .unwrap();
    assert!(c.credentials().client.is_empty());
    // A daemon needs its certificate.
    let err = Context::new(ContextFlags::default())
        .load_files(&locations::libvirt(&e, Role::Server, None))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("servercert.pem"), "{err}");
}

#[test]
fn loading_runs_the_sanity_check_and_adds_nothing_on_failure() {
    let t = tempfile::tempdir().unwrap();
    system_tree(t.path(), Role::Server);
    // Replace the key with another one: KEY_MISMATCH.
    let e = env(t.path(), 0);
    write(
        &e.root,
        "etc/pki/libvirt/private/serverkey.pem",
        key(Alg::EcdsaP256).serialize_pem(),
        0o600,
    );
    let c = context();
    let err = c
        .load_files(&locations::libvirt(&e, Role::Server, None))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyMismatch, "{err}");
    assert!(
        err.message()
            .contains("serverkey.pem does not belong to the certificate"),
        "{err}"
    );
    assert!(c.credentials().ca_certs.is_empty());
    // NO_SANITY loads it anyway, as libvirt's tls_no_sanity_certificate does.
    let lax = Context::new(ContextFlags::NO_SANITY);
    lax.load_files(&locations::libvirt(&e, Role::Server, None))
        .unwrap();
    assert_eq!(
        lax.check(Role::Server).errors().next().unwrap().kind,
        ErrorKind::KeyMismatch
    );
}

#[test]
fn a_certificate_file_may_hold_the_chain() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let root = self_signed(&Spec::ca("Root CA"));
    let inter = signed_by(&Spec::ca("Intermediate CA"), &root);
    let leaf = signed_by(&Spec::server("host"), &inter);
    write(d, "cacert.pem", root.pem(), 0o644);
    write(
        d,
        "servercert.pem",
        format!("{}{}", leaf.pem(), inter.pem()),
        0o644,
    );
    write(d, "serverkey.pem", leaf.key_pem(), 0o600);
    let e = env(d, 0);
    context()
        .load_files(&locations::libvirt(&e, Role::Server, Some(d)))
        .unwrap();
    // Out of order, the check says how to fix it.
    write(
        d,
        "servercert.pem",
        format!("{}{}", inter.pem(), leaf.pem()),
        0o644,
    );
    let lax = Context::new(ContextFlags::NO_SANITY);
    lax.set_verify_time(Some(now()));
    lax.load_files(&locations::libvirt(&e, Role::Server, Some(d)))
        .unwrap();
    let text = lax.check(Role::Server).to_text();
    assert!(
        text.contains("out of order") || text.contains("basic constraints show a CA"),
        "{text}"
    );
    assert!(!lax.check(Role::Server).is_ok());
}

#[test]
fn group_readable_keys_load_with_a_warning() {
    let t = tempfile::tempdir().unwrap();
    system_tree(t.path(), Role::Client);
    let e = env(t.path(), 0);
    let key = e.system_file(CertDataType::ClientKey);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let c = context();
    c.load_files(&locations::libvirt(&e, Role::Client, None))
        .unwrap();
    let report = c.check(Role::Client);
    let w: Vec<_> = report.warnings().collect();
    assert_eq!(w.len(), 1, "{}", report.to_text());
    assert!(
        w[0].message.contains("accessible to its group (mode 0640)"),
        "{}",
        w[0].message
    );
}
