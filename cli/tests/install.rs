//! `virtpki install`: libvirt's locations, modes and owners; nothing replaced or half-done.

mod common;

use std::path::Path;

use common::{mode, pki, s, virtpki};
use virtpki::locations::{self, Environment};
use virtpki::{Context, ContextFlags, Role};

fn install(dir: &Path, extra: &[&str], role: &str, p: &common::Pki) -> common::Run {
    let from = if role == "server" {
        &p.server
    } else {
        &p.client
    };
    let mut args = vec![
        "install",
        "--role",
        role,
        "--ca-dir",
        s(&p.ca),
        "--from",
        s(from),
    ];
    args.extend_from_slice(extra);
    virtpki(dir, &args)
}

#[test]
fn system_locations_under_a_root() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    virtpki(
        dir.path(),
        &[
            "crl",
            "revoke",
            "--ca-dir",
            s(&p.ca),
            s(&p.client.join("clientcert.pem")),
        ],
    )
    .expect(0);
    let root = dir.path().join("root");
    let run = install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    assert!(
        run.stdout.contains("virtpki validate --root"),
        "{}",
        run.stdout
    );
    let etc = root.join("etc/pki");
    for (file, want) in [
        ("CA/cacert.pem", 0o644),
        ("CA/cacrl.pem", 0o644),
        ("libvirt/servercert.pem", 0o644),
        ("libvirt/private/serverkey.pem", 0o600),
        ("CA", 0o755),
        ("libvirt", 0o755),
        ("libvirt/private", 0o755),
    ] {
        assert_eq!(mode(&etc.join(file)), want, "{file}");
    }
    assert_eq!(
        std::fs::read(etc.join("libvirt/private/serverkey.pem")).unwrap(),
        std::fs::read(p.server.join("serverkey.pem")).unwrap()
    );
    // The daemon's own rules find and accept them.
    let env = Environment {
        root: root.clone(),
        home: None,
        uid: 0,
    };
    let ctx = Context::new(ContextFlags::default());
    let report = ctx
        .load_files(&locations::libvirt(&env, Role::Server, None))
        .unwrap();
    assert_eq!(report.loaded.len(), 4, "{report}");
    // Running as root, the files are root's.
    use std::os::unix::fs::MetadataExt;
    if unsafe { libc_geteuid() } == 0 {
        assert_eq!(
            std::fs::metadata(etc.join("libvirt/private/serverkey.pem"))
                .unwrap()
                .uid(),
            0
        );
    }
    // Again: nothing changes.
    let run = install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    assert_eq!(run.stdout.matches("unchanged").count(), 4, "{}", run.stdout);
    // A key someone opened up is closed again, although its contents are right.
    let key = etc.join("libvirt/private/serverkey.pem");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = install(dir.path(), &["--root", s(&root), "--dry-run"], "server", &p).expect(0);
    assert!(
        run.stdout.contains("would fix the mode of"),
        "{}",
        run.stdout
    );
    assert_eq!(mode(&key), 0o644, "a dry run changed nothing");
    let run = install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    assert!(run.stdout.contains("fixed the mode of"), "{}", run.stdout);
    assert_eq!(mode(&key), 0o600);
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn client_files_and_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let run = install(dir.path(), &["--root", s(&root), "--dry-run"], "client", &p).expect(0);
    assert!(run.stdout.contains("would install"), "{}", run.stdout);
    assert!(!root.exists(), "a dry run created {}", root.display());
    install(dir.path(), &["--root", s(&root)], "client", &p).expect(0);
    assert_eq!(
        mode(&root.join("etc/pki/libvirt/private/clientkey.pem")),
        0o600
    );
    assert!(root.join("etc/pki/libvirt/clientcert.pem").exists());
    assert!(
        !root.join("etc/pki/CA/cacrl.pem").exists(),
        "no CRL was made, none is installed"
    );
}

#[test]
fn user_locations() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    install(dir.path(), &["--user"], "client", &p).expect(0);
    let user = dir.path().join(".pki/libvirt");
    assert_eq!(mode(&user), 0o700);
    for file in ["cacert.pem", "clientcert.pem", "clientkey.pem"] {
        assert_eq!(mode(&user.join(file)), 0o600, "{file}");
    }
    let env = Environment {
        root: dir.path().join("no-system"),
        home: Some(dir.path().into()),
        uid: 1000,
    };
    let ctx = Context::new(ContextFlags::default());
    ctx.load_files(&locations::libvirt(&env, Role::Client, None))
        .unwrap();
}

#[test]
fn a_different_file_is_replaced_only_with_force_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let ca = root.join("etc/pki/CA/cacert.pem");
    std::fs::create_dir_all(ca.parent().unwrap()).unwrap();
    std::fs::write(&ca, "someone else's CA\n").unwrap();
    let run = install(dir.path(), &["--root", s(&root)], "server", &p).expect(2);
    assert!(
        run.stderr.contains("exists with other contents") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    // All or nothing: not even the files that were free were written.
    assert!(!root.join("etc/pki/libvirt").exists());
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), "someone else's CA\n");
    install(dir.path(), &["--root", s(&root), "--force"], "server", &p).expect(0);
    let backups: Vec<_> = std::fs::read_dir(ca.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("cacert.pem.bak-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        std::fs::read_to_string(ca.parent().unwrap().join(&backups[0])).unwrap(),
        "someone else's CA\n"
    );
    // Replaced again within the same second: the first copy is not overwritten.
    std::fs::write(&ca, "a third CA\n").unwrap();
    install(dir.path(), &["--root", s(&root), "--force"], "server", &p).expect(0);
    std::fs::write(&ca, "a fourth CA\n").unwrap();
    install(dir.path(), &["--root", s(&root), "--force"], "server", &p).expect(0);
    let mut kept: Vec<String> = std::fs::read_dir(ca.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("cacert.pem.bak-"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        ["a fourth CA\n", "a third CA\n", "someone else's CA\n"]
    );
}

#[test]
fn files_libvirt_would_refuse_are_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    // The client's key beside the server's certificate.
    std::fs::copy(
        p.client.join("clientkey.pem"),
        p.server.join("serverkey.pem"),
    )
    .unwrap();
    let run = install(dir.path(), &["--root", s(&root)], "server", &p).expect(2);
    assert!(run.stderr.contains("serverkey.pem"), "{}", run.stderr);
    assert!(!root.exists());
    // The client's certificate installed as the server's: libvirt's purpose rule makes a
    // non-critical extended key usage a warning only, so it is installed, with the warning.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::copy(
        p.client.join("clientcert.pem"),
        mixed.join("servercert.pem"),
    )
    .unwrap();
    std::fs::copy(p.client.join("clientkey.pem"), mixed.join("serverkey.pem")).unwrap();
    let run = virtpki(
        dir.path(),
        &[
            "install",
            "--role",
            "server",
            "--ca-dir",
            s(&p.ca),
            "--from",
            s(&mixed),
            "--root",
            s(&root),
        ],
    )
    .expect(0);
    assert!(
        run.stdout.contains("warning:") && run.stdout.contains("purpose"),
        "{}",
        run.stdout
    );
    std::fs::remove_dir_all(&root).unwrap();
    // Missing input, conflicting targets, a bad role.
    let run = virtpki(
        dir.path(),
        &[
            "install",
            "--role",
            "server",
            "--ca-dir",
            s(&p.ca),
            "--from",
            "/nonexistent",
            "--root",
            s(&root),
        ],
    )
    .expect(2);
    assert!(
        run.stderr.contains("/nonexistent/servercert.pem"),
        "{}",
        run.stderr
    );
    install(dir.path(), &["--system", "--user"], "server", &p).expect(2);
    virtpki(
        dir.path(),
        &[
            "install", "--role", "daemon", "--ca-dir", "x", "--from", "y",
        ],
    )
    .expect(2);
}
