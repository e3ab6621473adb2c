//! `virtpki::expiry::list`: every certificate and CRL of a set of files, with role and days
//! left, soonest first; libvirt's files of a location and a CA directory as targets.

use crate::common;

use common::*;
use virtpki::expiry::{self, Role, Target};
use virtpki::locations::Environment;
use virtpki::ErrorKind;

const DAY: i64 = 86_400;

fn crl_until(ca: &Made, next_update: i64) -> String {
    rcgen::CertificateRevocationListParams {
        this_update: odt(now() - DAY),
        next_update: odt(next_update),
        crl_number: rcgen::SerialNumber::from(3u64),
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
fn soonest_first_with_role_days_and_crl_next_update() {
    let dir = tempfile::tempdir().unwrap();
    let now = now();
    let ca = self_signed(&Spec::ca("List CA").valid(now - DAY, now + 5 * DAY + 60));
    let server = signed_by(
        &Spec::server("host1.example.com").valid(now - DAY, now + 100 * DAY + 60),
        &ca,
    );
    let old = signed_by(
        &Spec::client("old").valid(now - 10 * DAY, now - 2 * DAY - 60),
        &ca,
    );
    let ca_file = write(dir.path(), "ca.pem", ca.pem(), 0o644);
    let server_file = write(dir.path(), "srv.pem", server.pem(), 0o644);
    let old_file = write(dir.path(), "old.pem", old.pem(), 0o644);
    let crl_file = write(
        dir.path(),
        "crl.pem",
        crl_until(&ca, now + 20 * DAY + 60),
        0o644,
    );
    let targets = [&server_file, &crl_file, &ca_file, &old_file, &server_file]
        .map(|p| Target::file(p.clone()));
    let list = expiry::list(&targets, now).unwrap();
    let got: Vec<(Role, Option<i64>, &str)> = list
        .iter()
        .map(|e| (e.role, e.days_left, e.subject.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Role::Client, Some(-3), "CN=old"),
            (Role::Ca, Some(5), "CN=List CA"),
            (Role::Crl, Some(20), "CN=List CA"),
            (Role::Server, Some(100), "CN=host1.example.com"),
        ],
        "{list:#?}"
    );
    assert_eq!(list[3].file, server_file, "listed twice, read once");
    assert!(list[0].needs_attention(now, 0), "expired");
    assert!(list[1].needs_attention(now, 30));
    assert!(!list[1].needs_attention(now, 5));
    assert!(!list[3].needs_attention(now, 30));
}

#[test]
fn a_key_or_a_missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = self_signed(&Spec::ca("List CA"));
    let key = write(dir.path(), "key.pem", ca.key_pem(), 0o600);
    let e = expiry::list(&[Target::file(key.clone())], now()).unwrap_err();
    assert!(e.to_string().contains(&key.display().to_string()), "{e}");
    assert!(e.to_string().contains("neither a certificate nor"), "{e}");
    let missing = dir.path().join("nothing.pem");
    let e = expiry::list(&[Target::file(missing.clone())], now()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.to_string().contains("nothing.pem"), "{e}");
}

#[test]
fn libvirt_system_files_under_a_root_and_a_ca_directory() {
    let root = tempfile::tempdir().unwrap();
    let p = pki();
    let ca_dir = root.path().join("etc/pki/CA");
    let lv = root.path().join("etc/pki/libvirt");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::create_dir_all(lv.join("private")).unwrap();
    write(&ca_dir, "cacert.pem", p.ca.pem(), 0o644);
    write(&lv, "servercert.pem", p.server.pem(), 0o644);
    write(
        &lv.join("private"),
        "serverkey.pem",
        p.server.key_pem(),
        0o600,
    );
    let env = Environment {
        root: root.path().to_owned(),
        home: None,
        uid: 0,
    };
    let targets = expiry::libvirt_targets(&env, None);
    let paths: Vec<_> = targets.iter().map(|t| t.path.clone()).collect();
    assert_eq!(
        paths,
        [ca_dir.join("cacert.pem"), lv.join("servercert.pem")],
        "existing files only, no key, each once"
    );
    let list = expiry::list(&targets, now()).unwrap();
    let mut roles: Vec<Role> = list.iter().map(|e| e.role).collect();
    roles.sort();
    assert_eq!(roles, [Role::Ca, Role::Server]);
    let from_ca_dir = expiry::ca_dir_targets(&ca_dir);
    assert_eq!(from_ca_dir.len(), 1, "no cacrl.pem yet: the CA only");
}

/// A link to nothing or a FIFO where libvirt reads a file is listed and reported as an error
/// naming it (both were passed over as absent: `expiry --system` said all was well); the FIFO
/// is never opened for reading, which would block.
#[test]
fn a_dangling_link_or_a_fifo_at_a_libvirt_location_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let p = pki();
    let ca_dir = root.path().join("etc/pki/CA");
    let lv = root.path().join("etc/pki/libvirt");
    std::fs::create_dir_all(&lv).unwrap();
    write(&ca_dir, "cacert.pem", p.ca.pem(), 0o644);
    let link = lv.join("servercert.pem");
    std::os::unix::fs::symlink(root.path().join("gone.pem"), &link).unwrap();
    let fifo = ca_dir.join("cacrl.pem");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let env = Environment {
        root: root.path().to_owned(),
        home: None,
        uid: 0,
    };
    let targets = expiry::libvirt_targets(&env, None);
    let paths: Vec<_> = targets.iter().map(|t| t.path.clone()).collect();
    assert_eq!(
        paths,
        [ca_dir.join("cacert.pem"), fifo.clone(), link.clone()],
        "what sits there is listed, readable or not"
    );
    assert_eq!(expiry::ca_dir_targets(&ca_dir).len(), 2, "the FIFO too");
    // Each alone, in a thread: a read that blocks fails the test instead of hanging it.
    for (bad, why) in [(&link, "is a link to nothing"), (&fifo, "FIFO")] {
        let target: Vec<Target> = targets
            .iter()
            .filter(|t| t.path == *bad || t.path.ends_with("cacert.pem"))
            .cloned()
            .collect();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(expiry::list(&target, now())).unwrap());
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("list returned (it must not open a FIFO for reading)");
        let e = result.unwrap_err();
        assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }
}
