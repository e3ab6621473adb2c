//! `virtpki install`: libvirt's locations, modes and owners; nothing replaced or half-done.

use crate::common;

use std::path::{Path, PathBuf};

use common::{
    home_of_another_user, install, install_user_client, is_root, issue_client, mode, pki,
    revoke_client, root_or_skip, s, virtpki,
};
use virtpki::locations::{self, Environment};
use virtpki::{Context, ContextFlags, Role};

#[test]
fn system_locations_under_a_root() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    revoke_client(dir.path(), &p).expect(0);
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
    if is_root() {
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
    // non-critical extended key usage a warning only, but install refuses it (issue 15,
    // item 4) unless --force, and then installs it with the warning.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::copy(
        p.client.join("clientcert.pem"),
        mixed.join("servercert.pem"),
    )
    .unwrap();
    std::fs::copy(p.client.join("clientkey.pem"), mixed.join("serverkey.pem")).unwrap();
    let mut args = vec![
        "install",
        "--role",
        "server",
        "--ca-dir",
        s(&p.ca),
        "--from",
        s(&mixed),
        "--root",
        s(&root),
    ];
    let run = virtpki(dir.path(), &args).expect(2);
    assert!(
        run.stderr.contains("give --role client") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert!(!root.exists());
    args.push("--force");
    let run = virtpki(dir.path(), &args).expect(0);
    assert!(
        run.stdout.contains("warning:") && run.stdout.contains("purpose"),
        "{}",
        run.stdout
    );
    std::fs::remove_dir_all(&root).unwrap();
    // Missing input, conflicting targets, a bad role.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (from, said) in [
        (s(&empty), format!("{}/servercert.pem", s(&empty))),
        // A --from that is not there is named as such (a_given_path_that_is_not_there_...).
        (
            "/nonexistent",
            "--from /nonexistent: no such directory".to_owned(),
        ),
    ] {
        let run = virtpki(
            dir.path(),
            &[
                "install",
                "--role",
                "server",
                "--ca-dir",
                s(&p.ca),
                "--from",
                from,
                "--root",
                s(&root),
            ],
        )
        .expect(2);
        assert!(run.stderr.contains(&said), "{}", run.stderr);
        assert!(!root.exists());
    }
    install(dir.path(), &["--system", "--user"], "server", &p).expect(2);
    virtpki(
        dir.path(),
        &[
            "install", "--role", "daemon", "--ca-dir", "x", "--from", "y",
        ],
    )
    .expect(2);
}

/// Item 15: a source swapped between the check and the copy. A thread keeps replacing
/// `from/clientcert.pem` by a valid certificate and by a symbolic link to a private file while
/// `install` runs again and again; the private bytes must never be installed.
#[test]
fn a_source_swapped_for_a_link_during_install_is_never_installed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "PRIVATE BYTES, root only\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cert = p.client.join("clientcert.pem");
    let valid = p.client.join("valid.pem");
    std::fs::copy(&cert, &valid).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, client, valid, secret) = (
            stop.clone(),
            p.client.clone(),
            valid.clone(),
            secret.clone(),
        );
        std::thread::spawn(move || {
            let (file, link) = (client.join("new-file"), client.join("new-link"));
            let target = client.join("clientcert.pem");
            while !stop.load(Ordering::Relaxed) {
                // Each swap is a rename, so the name always exists. (Errors end the loop: the
                // directory is gone when the test failed.)
                let _ = std::fs::remove_file(&link);
                let swapped = std::fs::copy(&valid, &file)
                    .and_then(|_| std::fs::rename(&file, &target))
                    .and_then(|_| std::os::unix::fs::symlink(&secret, &link))
                    .and_then(|_| std::fs::rename(&link, &target));
                if swapped.is_err() {
                    break;
                }
            }
        })
    };
    let (mut installed, mut refused) = (0, 0);
    for i in 0..300 {
        let root = dir.path().join(format!("root{i}"));
        let run = install(dir.path(), &["--root", s(&root)], "client", &p);
        let to = root.join("etc/pki/libvirt/clientcert.pem");
        match run.code {
            0 => {
                installed += 1;
                let bytes = std::fs::read(&to).unwrap();
                assert!(
                    bytes == std::fs::read(&valid).unwrap(),
                    "run {i} installed other bytes: {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            _ => {
                refused += 1;
                assert!(
                    !to.exists(),
                    "run {i} failed but installed {}",
                    to.display()
                );
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    // Both outcomes happened, so the race really ran.
    assert!(
        installed > 0 && refused > 0,
        "{installed} installed, {refused} refused"
    );
}

/// Item 16: a symbolic link at an installed file's name is neither followed to fix "its"
/// mode and owner nor read to back it up; it is refused, and what it points to is untouched.
#[test]
fn links_at_installed_names_are_refused_not_followed() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let ca_dir = root.join("etc/pki/CA");
    std::fs::create_dir_all(&ca_dir).unwrap();
    // Someone else's file with the very contents of the CA certificate.
    let theirs = dir.path().join("theirs.pem");
    std::fs::copy(p.ca.join("cacert.pem"), &theirs).unwrap();
    std::fs::set_permissions(&theirs, PermissionsExt::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink(&theirs, ca_dir.join("cacert.pem")).unwrap();
    let before = std::fs::metadata(&theirs).unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["--root", s(&root)];
        args.extend_from_slice(extra);
        let run = install(dir.path(), &args, "server", &p).expect(2);
        assert!(
            run.stderr.contains("cacert.pem") && run.stderr.contains("symbolic link"),
            "{}",
            run.stderr
        );
        let after = std::fs::metadata(&theirs).unwrap();
        assert_eq!(after.mode(), before.mode(), "{extra:?}");
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        // Nothing was kept from behind the link either.
        let copies = std::fs::read_dir(&ca_dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".bak-")
            })
            .count();
        assert_eq!(copies, 0);
    }
}

/// Item 16: the backup of a private key keeps the key's mode and owner, and the output says
/// how many copies of the key there are.
#[test]
fn backups_of_keys_keep_mode_and_owner_and_are_counted() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let key = root.join("etc/pki/libvirt/private/serverkey.pem");
    let as_root = is_root();
    for n in 1..=2 {
        std::fs::write(&key, format!("an old key {n}\n")).unwrap();
        std::fs::set_permissions(&key, PermissionsExt::from_mode(0o640)).unwrap();
        if as_root {
            std::os::unix::fs::chown(&key, Some(65534), Some(65534)).unwrap();
        }
        let run = install(dir.path(), &["--root", s(&root), "--force"], "server", &p).expect(0);
        let line = common::line_with(&run.stdout, "kept the old file as");
        assert!(
            line.contains("serverkey.pem.bak-")
                && line.contains(&if n == 1 {
                    "1 copy of this private key".to_owned()
                } else {
                    format!("{n} copies of this private key")
                }),
            "{}",
            run.stdout
        );
        let kept: Vec<_> = std::fs::read_dir(key.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("serverkey.pem.bak-"))
            .collect();
        assert_eq!(kept.len(), n);
        for copy in kept {
            let meta = std::fs::metadata(&copy).unwrap();
            assert_eq!(meta.mode() & 0o7777, 0o640, "{}", copy.display());
            if as_root {
                assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
            }
        }
        assert_eq!(mode(&key), 0o600);
    }
}

/// Item 17: `sudo -E virtpki install --user` (root, with the user's HOME) gives the user's
/// files and directories to the owner of the home directory, who could not read them
/// otherwise. Needs root; as another user it checks nothing and says so.
#[test]
fn user_install_as_root_gives_the_files_to_the_home_owner() {
    use std::os::unix::fs::MetadataExt;
    if !root_or_skip("the sudo -E case cannot be simulated") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let home = home_of_another_user(dir.path(), "home");
    let out = install_user_client(&home, &p);
    assert!(out.status.success(), "{out:?}");
    let user = home.join(".pki/libvirt");
    for path in [
        home.join(".pki"),
        user.clone(),
        user.join("cacert.pem"),
        user.join("clientcert.pem"),
        user.join("clientkey.pem"),
    ] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (65534, 65533),
            "{}",
            path.display()
        );
    }
    assert_eq!(mode(&user), 0o700);
    assert_eq!(mode(&user.join("clientkey.pem")), 0o600);
    // A link planted below the home directory is not followed by root.
    std::fs::remove_dir_all(home.join(".pki")).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, home.join(".pki")).unwrap();
    let out = install_user_client(&home, &p);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symbolic link"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

/// Item 17, review: a directory left below the home by an earlier `sudo -E` run (root's, 0700)
/// would keep the user from the files given to them; it is refused before anything is
/// written, with what to do, rather than reported as installed.
#[test]
fn user_install_as_root_refuses_a_directory_the_user_cannot_enter() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !root_or_skip("the sudo -E case cannot be simulated") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let home = home_of_another_user(dir.path(), "home");
    // What the old `sudo -E virtpki install --user` left: ~/.pki/libvirt, root's, 0700.
    let user = home.join(".pki/libvirt");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::set_permissions(home.join(".pki"), PermissionsExt::from_mode(0o700)).unwrap();
    let out = install_user_client(&home, &p);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr.contains(&*home.join(".pki").to_string_lossy())
            && stderr.contains("chown")
            && stderr.contains("nothing was installed"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&user).unwrap().count(), 0);
    // Given to the user, the same command installs.
    for d in [home.join(".pki"), user.clone()] {
        std::os::unix::fs::chown(&d, Some(65534), Some(65533)).unwrap();
    }
    let out = install_user_client(&home, &p);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::metadata(user.join("clientkey.pem")).unwrap().uid(),
        65534
    );
}

/// Item 16, review: `--root` is an image or a container's tree, maybe built by someone else;
/// a symbolic link below it (an absolute one would point into the host's own /etc) is
/// refused, not followed, when reading what is installed and when writing.
#[test]
fn links_below_the_root_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let host = dir.path().join("host-pki");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(host.join("CA")).unwrap();
    std::os::unix::fs::symlink(&host, root.join("etc/pki")).unwrap();
    for extra in [&[][..], &["--force"][..], &["--dry-run"][..]] {
        let mut args = vec!["--root", s(&root)];
        args.extend_from_slice(extra);
        let run = install(dir.path(), &args, "server", &p).expect(2);
        assert!(
            run.stderr.contains("symbolic link") && run.stderr.contains("etc/pki"),
            "{extra:?}: {}",
            run.stderr
        );
        let found: Vec<_> = walk(&host);
        assert_eq!(
            found,
            [host.join("CA")],
            "{extra:?}: written behind the link"
        );
    }
}

/// Every path below `dir`, sorted.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found.sort();
    found
}

/// Item 15, review: the source directory is looked up once. `--from` is a link that a loop
/// keeps pointing at one complete certificate and key, then at another; a certificate from one
/// and a key from the other (say, a key root may read and the user may not, next to its
/// public certificate) must never be read together: every run installs a matching pair.
#[test]
fn a_source_directory_swapped_during_install_gives_one_consistent_pair() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let other = dir.path().join("client2");
    issue_client(dir.path(), s(&p.ca), "C=GB,O=Test,CN=client2", s(&other)).expect(0);
    let from = dir.path().join("from");
    std::os::unix::fs::symlink(&p.client, &from).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, a, b, from) = (stop.clone(), p.client.clone(), other.clone(), from.clone());
        let new = dir.path().join("from.new");
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for target in [&b, &a] {
                    let _ = std::fs::remove_file(&new);
                    let swapped = std::os::unix::fs::symlink(target, &new)
                        .and_then(|_| std::fs::rename(&new, &from));
                    if swapped.is_err() {
                        return;
                    }
                }
            }
        })
    };
    let pairs = [&p.client, &other].map(|d| {
        (
            std::fs::read(d.join("clientcert.pem")).unwrap(),
            std::fs::read(d.join("clientkey.pem")).unwrap(),
        )
    });
    let mut failures = Vec::new();
    for i in 0..250 {
        let root = dir.path().join(format!("root{i}"));
        let run = virtpki(
            dir.path(),
            &[
                "install",
                "--role",
                "client",
                "--ca-dir",
                s(&p.ca),
                "--from",
                s(&from),
                "--root",
                s(&root),
            ],
        );
        if run.code != 0 {
            failures.push(format!("run {i}: {}", run.stderr));
            continue;
        }
        let libvirt = root.join("etc/pki/libvirt");
        let installed = (
            std::fs::read(libvirt.join("clientcert.pem")).unwrap(),
            std::fs::read(libvirt.join("private/clientkey.pem")).unwrap(),
        );
        assert!(pairs.contains(&installed), "run {i} installed a mixed pair");
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Item 16, review: an installed file with the right contents but another owner (a user's,
/// in an image's tree) is not given to root in place: its old owner may hold it open for
/// writing and would keep that access to the file now root's. It is written afresh.
#[test]
fn a_file_of_another_owner_is_rewritten_not_given_away() {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !root_or_skip("files of another owner cannot be made") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let ca = root.join("etc/pki/CA/cacert.pem");
    std::fs::create_dir_all(ca.parent().unwrap()).unwrap();
    std::fs::copy(p.ca.join("cacert.pem"), &ca).unwrap();
    std::fs::set_permissions(&ca, PermissionsExt::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&ca, Some(65534), Some(65534)).unwrap();
    // The old owner keeps it open for writing.
    let mut kept_open = std::fs::OpenOptions::new().write(true).open(&ca).unwrap();
    let run = install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let meta = std::fs::metadata(&ca).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 0, 0o644)
    );
    kept_open.write_all(b"someone else's CA\n").unwrap();
    drop(kept_open);
    let installed = std::fs::read(&ca).unwrap();
    assert!(
        installed == std::fs::read(p.ca.join("cacert.pem")).unwrap(),
        "the old owner's descriptor still writes the installed file:\n{}",
        String::from_utf8_lossy(&installed)
    );
    // No copy of identical contents is kept.
    assert_eq!(std::fs::read_dir(ca.parent().unwrap()).unwrap().count(), 1);
    assert!(run.stdout.contains("rewrote"), "{}", run.stdout);
}

/// Item 15, review: a source key with another hard link is refused. Where
/// `fs.protected_hardlinks` is 0, whoever may write `--from` can link a key only root may read
/// (beside a copy of its public certificate), and `sudo -E virtpki install --user` would hand
/// it to them; a key file has one name.
#[test]
fn a_source_key_with_another_hard_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let other_name = dir.path().join("the key elsewhere.pem");
    std::fs::hard_link(p.client.join("clientkey.pem"), &other_name).unwrap();
    let run = install(dir.path(), &["--root", s(&root)], "client", &p).expect(2);
    assert!(
        run.stderr.contains("clientkey.pem") && run.stderr.contains("2 hard links"),
        "{}",
        run.stderr
    );
    assert!(!root.exists());
    std::fs::remove_file(&other_name).unwrap();
    install(dir.path(), &["--root", s(&root)], "client", &p).expect(0);
}

/// What `install` writes passes `validate`'s owner-and-mode rules (the library's
/// `file_audit`), for each role, in the system locations and the user's: both take their
/// modes from there. Each file and directory install made is audited with its real mode and
/// the owner it is meant to have (so the test means the same run as any user); run as root,
/// `virtpki validate` of the result is clean as well.
#[test]
fn installed_modes_are_the_ones_validate_checks() {
    use std::os::unix::fs::MetadataExt;
    use virtpki::file_audit::{audit, FileKind, FileSet, FileStat};
    use virtpki::CertDataType;
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    // A CRL, so that cacrl.pem is installed too.
    let revoked = dir.path().join("revoked");
    issue_client(dir.path(), s(&p.ca), "CN=revoked", s(&revoked)).expect(0);
    virtpki(
        dir.path(),
        &[
            "crl",
            "revoke",
            "--ca-dir",
            s(&p.ca),
            s(&revoked.join("clientcert.pem")),
        ],
    )
    .expect(0);
    let kind_of = |name: &str| {
        let ty = match name {
            "cacert.pem" => CertDataType::CaCert,
            "cacrl.pem" => CertDataType::CaCrl,
            "servercert.pem" => CertDataType::ServerCert,
            "serverkey.pem" => CertDataType::ServerKey,
            "clientcert.pem" => CertDataType::ClientCert,
            "clientkey.pem" => CertDataType::ClientKey,
            other => panic!("install wrote {other}"),
        };
        FileKind::of(ty)
    };
    for role in ["server", "client"] {
        for system in [true, false] {
            let home = dir.path().join(format!("home-{role}-{system}"));
            std::fs::create_dir(&home).unwrap();
            let root = dir.path().join(format!("root-{role}-{system}"));
            let (location, top, set) = if system {
                (vec!["--root", s(&root)], root.clone(), FileSet::System)
            } else {
                let (uid, gid) = (common_uid(), common_gid());
                (
                    vec!["--user"],
                    home.join(".pki"),
                    FileSet::User { uid, gid },
                )
            };
            install(&home, &location, role, &p).expect(0);
            let mut written = walk(&top);
            written.push(top.clone());
            assert!(written.len() >= if system { 10 } else { 6 }, "{written:?}");
            for path in written {
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let kind = if meta.is_dir() {
                    FileKind::Dir
                } else {
                    kind_of(path.file_name().unwrap().to_str().unwrap())
                };
                let (uid, gid) = match set {
                    FileSet::System => (0, 0),
                    FileSet::User { uid, gid } => (uid, gid),
                };
                let stat = FileStat {
                    uid,
                    gid,
                    mode: meta.mode() & 0o7777,
                    is_dir: meta.is_dir(),
                };
                assert_eq!(
                    audit(&path, kind, set, &stat),
                    None,
                    "{role} {system}: {}",
                    path.display()
                );
            }
            if is_root() {
                let mut args = vec!["validate", "--json", "--hostname", "localhost"];
                if system {
                    args.extend(["--system", "--root", s(&root)]);
                } else {
                    args.push("--user");
                }
                args.push(role);
                let run = virtpki(&home, &args);
                let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                assert_eq!(v["summary"]["fail"], 0, "{v}");
                assert_eq!(v["summary"]["warn"], 0, "{v}");
                assert_eq!(run.code, 0, "{v}");
            }
        }
    }
}

fn common_uid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

fn common_gid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::getegid() }
}

/// A path given on the command line that is not there, or not what its option takes, is the
/// first thing `install` says, with its fix, and nothing is written (the `--root` tree is not
/// made). The other commands' table is in issue.rs, `validate`'s in validate.rs.
#[test]
fn a_given_path_that_is_not_there_is_said_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let file = d.join("a-file");
    std::fs::write(&file, "").unwrap();
    let below = file.join("sub");
    let missing = d.join("missing");
    let root = d.join("root");
    let (m, f, b, r) = (s(&missing), s(&file), s(&below), s(&root));
    let (ca, from) = (s(&p.ca), s(&p.client));
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (
            &["--ca-dir", m, "--from", from, "--root", r],
            "--ca-dir",
            m,
            "no such directory",
        ),
        (
            &["--ca-dir", f, "--from", from, "--root", r],
            "--ca-dir",
            f,
            "not a directory: it is a regular file",
        ),
        (
            &["--ca-dir", ca, "--from", m, "--root", r],
            "--from",
            m,
            "no such directory",
        ),
        (
            &["--ca-dir", ca, "--from", b, "--root", r],
            "--from",
            b,
            &format!("no such directory: {f} is not a directory"),
        ),
        (
            &["--ca-dir", ca, "--from", from, "--root", f],
            "--root",
            f,
            "not a directory: it is a regular file",
        ),
        (
            &["--ca-dir", ca, "--from", from, "--root", b],
            "--root",
            b,
            &format!("cannot be made: {f} is not a directory"),
        ),
        (
            &["--ca-dir", m, "--from", from, "--user"],
            "--ca-dir",
            m,
            "no such directory",
        ),
    ];
    for (args, option, path, what) in cases {
        let mut all = vec!["install", "--role", "client"];
        all.extend_from_slice(args);
        let run = virtpki(d, &all).expect(2);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(
            lines[0],
            format!("virtpki: {option} {path}: {what}"),
            "{args:?}\n{}",
            run.stderr
        );
        assert!(
            lines[1].starts_with(&format!("  fix: check the path: {option} takes ")),
            "{args:?}\n{}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(!root.exists() && !d.join(".pki").exists(), "{args:?} wrote");
    }
    // A missing --root is made, as before.
    install(d, &["--root", r], "client", &p).expect(0);
}

// Issue 15 (a careful administrator's walkthrough): install refuses what the role cannot use.

/// Issue 15, item 4: a server's certificate and key renamed to clientcert.pem/clientkey.pem
/// and installed with `--role client` were installed, with a garbled warning ("warning:
/// warning: ... does not allow use for with a TLS client"). Now it is an error that says the
/// certificate is a server's and how to override; `--force` installs it with the warning, said
/// once and in words.
#[test]
fn a_certificate_whose_purpose_forbids_the_role_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let renamed = dir.path().join("renamed");
    std::fs::create_dir(&renamed).unwrap();
    std::fs::copy(
        p.server.join("servercert.pem"),
        renamed.join("clientcert.pem"),
    )
    .unwrap();
    std::fs::copy(
        p.server.join("serverkey.pem"),
        renamed.join("clientkey.pem"),
    )
    .unwrap();
    let mut args = vec![
        "install",
        "--role",
        "client",
        "--ca-dir",
        s(&p.ca),
        "--from",
        s(&renamed),
        "--root",
        s(&root),
    ];
    let run = virtpki(dir.path(), &args).expect(2);
    let cert = renamed.join("clientcert.pem");
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "virtpki: {}: its purpose allows use as a TLS server (serverAuth), not as a TLS \
             client (it is a server certificate under a client's name: for a client, issue its \
             own certificate with virtpki issue client; if it is meant for the server, rename \
             it and its key: mv {r}/clientcert.pem {r}/servercert.pem; mv {r}/clientkey.pem \
             {r}/serverkey.pem; then give --role server); nothing was installed; give --force \
             to install it anyway (libvirt loads it with a warning)",
            s(&cert),
            r = s(&renamed),
        )
    );
    assert!(!root.exists(), "nothing is written");

    args.push("--force");
    let run = virtpki(dir.path(), &args).expect(0);
    let warning = common::line_with(&run.stdout, "[purpose]");
    assert_eq!(
        warning,
        format!(
            "warning: [purpose] Certificate {} purpose does not allow use as a TLS client \
             (subject CN=localhost); fix: re-issue with extended key usage clientAuth \
             (virtpki issue client; certtool template: tls_www_client)",
            s(&cert)
        )
    );
    assert!(!run.stdout.contains("warning: warning"), "{}", run.stdout);
    assert!(root.join("etc/pki/libvirt/clientcert.pem").exists());
}

/// Issue 15, item 4: `--role client --from DIR` where DIR holds only a server's files said
/// "cannot open DIR/clientcert.pem"; it says they are a server's and to give --role server.
#[test]
fn the_other_roles_files_name_the_role_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let run = virtpki(
        dir.path(),
        &[
            "install",
            "--role",
            "client",
            "--ca-dir",
            s(&p.ca),
            "--from",
            s(&p.server),
            "--root",
            s(&root),
        ],
    )
    .expect(2);
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "virtpki: {} holds servercert.pem but no clientcert.pem: these are a server's \
             files, not a client's; nothing was installed (to install them, give --role \
             server; for a client, issue its own certificate: virtpki issue client)",
            s(&p.server)
        )
    );
    // And the other way round.
    let run = install(
        dir.path(),
        &["--root", s(&root)],
        "server",
        &common::Pki {
            ca: p.ca.clone(),
            server: p.client.clone(),
            client: p.client.clone(),
        },
    )
    .expect(2);
    assert!(run.stderr.contains("give --role client"), "{}", run.stderr);
    assert!(!root.exists());
}

/// Issue 15 review: after `crl revoke`, every host installs the new CRL; that needed --force,
/// which also switches off the purpose check. A newer CRL of the same CA (signed by the CA
/// certificate installed with it, a higher CRL number) replaces the installed one without
/// --force, kept as a --force replacement keeps it; an older or equal one is a rollback and
/// still needs --force.
#[test]
fn a_newer_crl_of_the_same_ca_replaces_the_installed_one_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let revoke = |cert: &Path| {
        virtpki(
            dir.path(),
            &["crl", "revoke", "--ca-dir", s(&p.ca), s(cert)],
        )
        .expect(0)
    };
    revoke(&p.client.join("clientcert.pem"));
    let first = std::fs::read(p.ca.join("cacrl.pem")).unwrap();
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let installed = root.join("etc/pki/CA/cacrl.pem");
    assert_eq!(std::fs::read(&installed).unwrap(), first);

    let other = dir.path().join("other");
    issue_client(dir.path(), s(&p.ca), "C=GB,O=Test,CN=client2", s(&other)).expect(0);
    revoke(&other.join("clientcert.pem"));
    let second = std::fs::read(p.ca.join("cacrl.pem")).unwrap();
    let run = install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    assert!(
        run.stdout
            .contains("replaced the CRL (number 1 \u{2192} 2)"),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read(&installed).unwrap(), second);
    let kept: Vec<Vec<u8>> = std::fs::read_dir(installed.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("cacrl.pem.bak-"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(kept, std::slice::from_ref(&first));
    assert!(run.stdout.contains("(1 old copy kept in"), "{}", run.stdout);

    // The older list over the newer one: a rollback, refused and nothing changed.
    std::fs::write(p.ca.join("cacrl.pem"), &first).unwrap();
    let run = install(dir.path(), &["--root", s(&root)], "server", &p).expect(2);
    assert!(
        run.stderr.contains(
            "the new CRL has number 1, not higher than the installed one's 2: installing it \
             would roll back revocations"
        ) && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&installed).unwrap(), second);
    // The same number is no update either.
    std::fs::write(p.ca.join("cacrl.pem"), &second).unwrap();
    std::fs::write(&installed, &second).unwrap();
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
}

/// Issue 15 review: `--from DIR` whose clientcert.pem is a server certificate was told "give
/// --role server", which reads DIR/servercert.pem, not there. Without it, the hint says to
/// issue a client certificate or rename the pair, and the rename it gives works; with a
/// servercert.pem in DIR, "give --role server" is what works.
#[test]
fn a_server_certificate_under_a_clients_name_gets_a_hint_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let renamed = dir.path().join("renamed");
    std::fs::create_dir(&renamed).unwrap();
    for (from, to) in [
        ("servercert.pem", "clientcert.pem"),
        ("serverkey.pem", "clientkey.pem"),
    ] {
        std::fs::copy(p.server.join(from), renamed.join(to)).unwrap();
    }
    let args = |role: &'static str| {
        vec![
            "install".to_owned(),
            "--role".into(),
            role.into(),
            "--ca-dir".into(),
            s(&p.ca).into(),
            "--from".into(),
            s(&renamed).into(),
            "--root".into(),
            s(&root).into(),
        ]
    };
    let client = args("client");
    let client: Vec<&str> = client.iter().map(String::as_str).collect();
    let run = virtpki(dir.path(), &client).expect(2);
    assert!(
        !run.stderr.contains(": give --role server"),
        "{}",
        run.stderr
    );
    let r = s(&renamed);
    let mv = [
        format!("mv {r}/clientcert.pem {r}/servercert.pem"),
        format!("mv {r}/clientkey.pem {r}/serverkey.pem"),
    ];
    for m in &mv {
        assert!(run.stderr.contains(m.as_str()), "{}", run.stderr);
    }
    assert!(
        run.stderr.contains("virtpki issue client")
            && run.stderr.contains("then give --role server"),
        "{}",
        run.stderr
    );
    assert!(!root.exists());
    // Doing what it says installs the pair for the server.
    for m in &mv {
        let status = std::process::Command::new("sh")
            .args(["-ec", m])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let server = args("server");
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    virtpki(dir.path(), &server).expect(0);
    assert!(root.join("etc/pki/libvirt/servercert.pem").exists());

    // With the server's own file there too, --role server is the hint, and it works.
    let _ = std::fs::remove_dir_all(&root);
    std::fs::copy(
        renamed.join("servercert.pem"),
        renamed.join("clientcert.pem"),
    )
    .unwrap();
    std::fs::copy(renamed.join("serverkey.pem"), renamed.join("clientkey.pem")).unwrap();
    let run = virtpki(dir.path(), &client).expect(2);
    assert!(
        run.stderr
            .contains("(it is a server certificate: give --role server)"),
        "{}",
        run.stderr
    );
}

/// `install --role server --root ROOT --reload` of `from`, with the stand-in virt-admin
/// `program` and `extra` arguments.
fn install_reload(
    dir: &Path,
    program: &Path,
    p: &common::Pki,
    from: &Path,
    root: &Path,
    extra: &[&str],
) -> common::Run {
    let mut args = vec![
        "install",
        "--role",
        "server",
        "--ca-dir",
        s(&p.ca),
        "--from",
        s(from),
        "--root",
        s(root),
        "--reload",
    ];
    args.extend_from_slice(extra);
    crate::reload::run_with(dir, Some(program), &args)
}

/// The installed server pair under `root`.
fn installed_pair(root: &Path) -> (Vec<u8>, Vec<u8>) {
    let etc = root.join("etc/pki/libvirt");
    (
        std::fs::read(etc.join("servercert.pem")).unwrap(),
        std::fs::read(etc.join("private/serverkey.pem")).unwrap(),
    )
}

fn pair_of(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(dir.join("servercert.pem")).unwrap(),
        std::fs::read(dir.join("serverkey.pem")).unwrap(),
    )
}

#[test]
fn reload_rotates_the_server_pair_and_tells_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let va = crate::reload::fake_virt_admin(dir.path(), 0, "Successfully updated TLS files");
    // No daemon yet: installed, nothing to reload.
    let run = install_reload(dir.path(), &va, &p, &p.server, &root, &[]).expect(0);
    assert!(
        run.stdout.contains("no daemon running: nothing to reload"),
        "{}",
        run.stdout
    );
    assert!(crate::reload::runs(dir.path()).is_empty());
    // A renewed pair, a running libvirtd: replaced without --force, old files kept, told.
    let new = dir.path().join("new");
    common::issue_server(dir.path(), s(&p.ca), "localhost", s(&new)).expect(0);
    let (_listener, socket) = crate::reload::daemon(&root, "libvirt");
    let dry = install_reload(dir.path(), &va, &p, &new, &root, &["--dry-run"]).expect(0);
    assert!(
        dry.stdout.contains("would reload libvirtd"),
        "{}",
        dry.stdout
    );
    assert_eq!(installed_pair(&root), pair_of(&p.server), "a dry run wrote");
    let run = install_reload(dir.path(), &va, &p, &new, &root, &["--json"]).expect(0);
    assert_eq!(installed_pair(&root), pair_of(&new));
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["changed"], true);
    let files = json["files"].as_array().unwrap();
    let actions: Vec<&str> = files
        .iter()
        .map(|f| f["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unchanged", "replaced", "replaced"], "{json}");
    let backup = files[1]["backup"].as_str().unwrap();
    assert_eq!(std::fs::read(backup).unwrap(), pair_of(&p.server).0);
    assert_eq!(json["reload"]["daemons"][0]["reloaded"], true);
    assert_eq!(
        crate::reload::runs(dir.path()),
        [[
            "-c".to_owned(),
            format!("libvirtd:///system?socket={}", socket.display()),
            "server-update-tls".to_owned(),
            "libvirtd".to_owned(),
        ]]
    );
    // Run again: nothing changes, and the daemon is told again (idempotent for Ansible).
    let run = install_reload(dir.path(), &va, &p, &new, &root, &["--json"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["changed"], false, "{json}");
}

/// A dry run must change nothing: under systemd socket activation a connection to the admin
/// socket starts a stopped daemon. It says which sockets are there, and connects to none.
#[test]
fn a_dry_run_reload_never_connects_to_an_admin_socket() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let va = crate::reload::fake_virt_admin(dir.path(), 0, "Successfully updated TLS files");
    install_reload(dir.path(), &va, &p, &p.server, &root, &[]).expect(0);
    let new = dir.path().join("new");
    common::issue_server(dir.path(), s(&p.ca), "localhost", s(&new)).expect(0);
    // Both daemons' sockets, listened on by the test: a connection would wait in the queue.
    let (libvirtd, socket) = crate::reload::daemon(&root, "libvirt");
    let (virtproxyd, proxy_socket) = crate::reload::daemon(&root, "virtproxyd");
    for extra in [&["--dry-run"][..], &["--dry-run", "--json"][..]] {
        let run = install_reload(dir.path(), &va, &p, &new, &root, extra).expect(0);
        for listener in [&libvirtd, &virtproxyd] {
            listener.set_nonblocking(true).unwrap();
            let got = listener.accept();
            assert!(
                matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
                "a dry run connected to an admin socket ({extra:?}): {got:?}"
            );
        }
        if extra.contains(&"--json") {
            let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            assert_eq!(
                json["reload"]["would_reload"],
                serde_json::json!(["libvirtd", "virtproxyd"]),
                "{json}"
            );
            assert_eq!(json["reload"]["connected"], false, "{json}");
            assert_eq!(
                json["reload"]["sockets"],
                serde_json::json!([s(&socket), s(&proxy_socket)]),
                "{json}"
            );
        } else {
            for (name, sock) in [("libvirtd", &socket), ("virtproxyd", &proxy_socket)] {
                assert!(
                    run.stdout
                        .contains(&format!("would reload {name} if it runs"))
                        && run.stdout.contains(&format!("{} is there", sock.display())),
                    "{}",
                    run.stdout
                );
            }
            assert!(run.stdout.contains("does not connect"), "{}", run.stdout);
        }
    }
    // A pid file naming the daemon (which holds its lock) tells that it runs, without a
    // connection either.
    let d = virtpki_tools::daemon::running(&root, "libvirtd", &["/usr/sbin/libvirtd"]);
    let pid = d.pid();
    let run = install_reload(dir.path(), &va, &p, &new, &root, &["--dry-run"]).expect(0);
    assert!(
        run.stdout
            .contains(&format!("would reload libvirtd (it runs: pid {pid})"))
            && run
                .stdout
                .contains(&format!("the configuration file it runs with (pid {pid})")),
        "{}",
        run.stdout
    );
    let run = install_reload(dir.path(), &va, &p, &new, &root, &["--dry-run", "--json"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["reload"]["pids"],
        serde_json::json!([pid, null]),
        "{json}"
    );
    libvirtd.set_nonblocking(true).unwrap();
    assert!(libvirtd.accept().is_err(), "a dry run connected");
    std::fs::remove_file(root.join("run/libvirtd.pid")).unwrap();
    drop(d);
    // A socket file nobody listens on (a stopped socket-activated daemon looks the same from
    // outside) is named too, still without connecting; nothing was written or run.
    drop(virtproxyd);
    let run = install_reload(dir.path(), &va, &p, &new, &root, &["--dry-run"]).expect(0);
    assert!(
        run.stdout.contains("would reload virtproxyd if it runs"),
        "{}",
        run.stdout
    );
    assert_eq!(installed_pair(&root), pair_of(&p.server), "a dry run wrote");
    assert!(crate::reload::runs(dir.path()).is_empty());
    // Without a socket: nothing to reload, and said so.
    std::fs::remove_file(&socket).unwrap();
    std::fs::remove_file(&proxy_socket).unwrap();
    let run = install_reload(dir.path(), &va, &p, &new, &root, &["--dry-run"]).expect(0);
    assert!(
        run.stdout.contains("no daemon running: nothing to reload"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_daemon_refusing_the_new_files_gets_the_old_ones_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let new = dir.path().join("new");
    common::issue_server(dir.path(), s(&p.ca), "localhost", s(&new)).expect(0);
    let _d = crate::reload::daemon(&root, "libvirt");
    let va = crate::reload::fake_virt_admin(
        dir.path(),
        1,
        "error: Cannot read CA certificate '/etc/pki/CA/cacert.pem'",
    );
    let run = install_reload(dir.path(), &va, &p, &new, &root, &[]).expect(1);
    // Byte for byte the files that were there, with the backups named.
    assert_eq!(installed_pair(&root), pair_of(&p.server));
    let out = &run.stdout;
    assert!(
        out.contains("virt-admin: error: Cannot read CA certificate"),
        "{out}"
    );
    let cert = root.join("etc/pki/libvirt/servercert.pem");
    let line = common::line_with(out, &format!("put back {}", cert.display()));
    assert!(line.contains("kept also as"), "{line}");
    assert!(
        out.contains("the previous files are installed again"),
        "{out}"
    );
    assert!(!out.contains("Next: virtpki validate"), "{out}");
    assert_eq!(crate::reload::runs(dir.path()).len(), 1);
}

#[test]
fn reload_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let new = dir.path().join("new");
    common::issue_server(dir.path(), s(&p.ca), "localhost", s(&new)).expect(0);
    let _d = crate::reload::daemon(&root, "libvirt");
    let va = crate::reload::fake_virt_admin(dir.path(), 0, "");
    std::fs::create_dir_all(root.join("etc/libvirt")).unwrap();
    let before = walk(&root);
    // The daemon's configuration names other files: a reload would load something else.
    let conf = root.join("etc/libvirt/libvirtd.conf");
    common::write(&conf, b"key_file = \"/srv/key.pem\"\n", 0o644);
    let run = install_reload(dir.path(), &va, &p, &new, &root, &[]).expect(2);
    assert!(run.stderr.contains("--reload refused"), "{}", run.stderr);
    assert!(run
        .stderr
        .contains(&format!("{}:1: key_file", conf.display())));
    assert!(
        run.stderr.contains("systemctl restart libvirtd"),
        "{}",
        run.stderr
    );
    std::fs::remove_file(&conf).unwrap();
    // A broken pair: the new certificate with the old key.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::copy(new.join("servercert.pem"), broken.join("servercert.pem")).unwrap();
    common::write(
        &broken.join("serverkey.pem"),
        &std::fs::read(p.server.join("serverkey.pem")).unwrap(),
        0o600,
    );
    let run = install_reload(dir.path(), &va, &p, &broken, &root, &[]).expect(2);
    assert!(
        run.stderr.contains("nothing was installed"),
        "{}",
        run.stderr
    );
    // The findings on the same line, readable: no line break escaped as \x0a.
    assert!(
        run.stderr
            .contains("nothing was installed: error: [key-pair]"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("\\x0a"), "{}", run.stderr);
    // Another CA still needs --force: replacing it breaks every peer.
    let other = dir.path().join("other-ca");
    common::ca_init(dir.path(), &other);
    let other_server = dir.path().join("other-server");
    common::issue_server(dir.path(), s(&other), "localhost", s(&other_server)).expect(0);
    let q = common::Pki {
        ca: other,
        server: other_server.clone(),
        client: p.client.clone(),
    };
    let run = install_reload(dir.path(), &va, &q, &other_server, &root, &[]).expect(2);
    assert!(run.stderr.contains("not the CA"), "{}", run.stderr);
    assert_eq!(walk(&root), before);
    assert_eq!(installed_pair(&root), pair_of(&p.server));
    assert!(
        crate::reload::runs(dir.path()).is_empty(),
        "virt-admin was run"
    );
    // Not for a client's files, nor for the user's.
    let run = install(dir.path(), &["--root", s(&root), "--reload"], "client", &p).expect(2);
    assert!(run.stderr.contains("--reload"), "{}", run.stderr);
    let run = install(dir.path(), &["--user", "--reload"], "server", &p).expect(2);
    assert!(run.stderr.contains("user's own daemons"), "{}", run.stderr);
}

#[test]
fn when_one_daemon_refuses_the_one_that_reloaded_is_told_again() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let new = dir.path().join("new");
    common::issue_server(dir.path(), s(&p.ca), "localhost", s(&new)).expect(0);
    let _l = crate::reload::daemon(&root, "libvirt");
    let _v = crate::reload::daemon(&root, "virtproxyd");
    // libvirtd takes the files, virtproxyd refuses them.
    let log = dir.path().join("argv");
    let va = dir.path().join("virt-admin");
    let script = format!(
        "#!/bin/sh\necho \"$4\" >> '{}'\nif [ \"$4\" = virtproxyd ]; then echo 'error: refused' >&2; \
         exit 1; fi\n",
        log.display()
    );
    common::write(&va, script.as_bytes(), 0o755);
    let run = install_reload(dir.path(), &va, &p, &new, &root, &["--json"]).expect(1);
    assert_eq!(installed_pair(&root), pair_of(&p.server));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "libvirtd\nvirtproxyd\nlibvirtd\n"
    );
    assert!(
        run.stderr
            .contains("libvirtd reloaded again: it serves the previous files"),
        "{}",
        run.stderr
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["changed"], false);
    assert_eq!(json["reload"]["rolled_back"], true);
    assert_eq!(json["reload"]["reloaded_again"][0]["daemon"], "libvirtd");
    assert_eq!(json["reload"]["reloaded_again"][0]["reloaded"], true);
    assert_eq!(json["reload"]["daemons"][1]["output"], "error: refused");
}

/// A stand-in virt-admin that lets libvirtd reload, and for virtproxyd runs `then` (shell)
/// and refuses; each run's daemon is logged in `dir/daemons`.
fn virtproxyd_refuses_after(dir: &Path, then: &str) -> PathBuf {
    let log = dir.join("daemons");
    let va = dir.join("virt-admin");
    let script = format!(
        "#!/bin/sh\necho \"$4\" >> '{}'\nif [ \"$4\" = virtproxyd ]; then {then}\n\
         echo 'error: refused' >&2; exit 1; fi\n",
        log.display()
    );
    common::write(&va, script.as_bytes(), 0o755);
    va
}

#[test]
fn a_rollback_that_cannot_put_every_file_back_does_not_reload_the_mixed_set() {
    // libvirtd took the new pair; virtproxyd refused; the key's directory went away, so the
    // old key cannot be put back while the old certificate can. Telling libvirtd to reload
    // then would load the old certificate with the new key: it keeps the new pair instead,
    // and the output says what is on disk and what to do.
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let new = dir.path().join("new");
    common::issue_server(dir.path(), s(&p.ca), "localhost", s(&new)).expect(0);
    let _l = crate::reload::daemon(&root, "libvirt");
    let _v = crate::reload::daemon(&root, "virtproxyd");
    let private = root.join("etc/pki/libvirt/private");
    let va = virtproxyd_refuses_after(dir.path(), &format!("rm -rf '{}'", private.display()));
    let run = install_reload(dir.path(), &va, &p, &new, &root, &["--json"]).expect(1);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("daemons")).unwrap(),
        "libvirtd\nvirtproxyd\n",
        "the half-restored set was reloaded"
    );
    // The certificate went back; the key could not.
    assert_eq!(
        std::fs::read(root.join("etc/pki/libvirt/servercert.pem")).unwrap(),
        pair_of(&p.server).0
    );
    let err = &run.stderr;
    assert!(err.contains("not put back:"), "{err}");
    let line = common::line_with(err, "libvirtd was not told to reload again");
    assert!(line.contains("keeps the new files"), "{line}");
    assert!(
        !err.contains("the previous files are installed again"),
        "{err}"
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["reload"]["rolled_back"], false);
    assert_eq!(json["reload"]["reloaded_again"], serde_json::json!([]));
    // The files on disk are not what they were: changed, for configuration management.
    assert_eq!(json["changed"], true, "{json}");
}

#[test]
fn a_file_replaced_meanwhile_is_not_overwritten_by_the_rollback() {
    // Between the install and the rollback someone else wrote the certificate: the rollback
    // leaves their file, says so, and puts back the rest.
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let new = dir.path().join("new");
    common::issue_server(dir.path(), s(&p.ca), "localhost", s(&new)).expect(0);
    let _v = crate::reload::daemon(&root, "virtproxyd");
    let cert = root.join("etc/pki/libvirt/servercert.pem");
    let va = virtproxyd_refuses_after(
        dir.path(),
        &format!(
            "printf 'theirs' > '{}.tmp'; mv '{0}.tmp' '{0}'",
            cert.display()
        ),
    );
    let run = install_reload(dir.path(), &va, &p, &new, &root, &[]).expect(1);
    assert_eq!(std::fs::read(&cert).unwrap(), b"theirs");
    assert_eq!(
        std::fs::read(root.join("etc/pki/libvirt/private/serverkey.pem")).unwrap(),
        pair_of(&p.server).1
    );
    let line = common::line_with(&run.stdout, "not put back:");
    assert!(line.contains(s(&cert)), "{line}");
    assert!(line.contains("changed since it was installed"), "{line}");
    assert!(
        !run.stdout
            .contains("the previous files are installed again"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_crl_installed_for_a_daemon_that_loads_none_refuses_the_reload() {
    // The daemon names its files (the defaults) but no crl_file: it loaded no CRL. This run
    // installs cacrl.pem, which a reload would load: checked again after writing, refused,
    // and the files go back.
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let revoked = dir.path().join("revoked");
    common::issue_client(dir.path(), s(&p.ca), "CN=revoked", s(&revoked)).expect(0);
    virtpki(
        dir.path(),
        &[
            "crl",
            "revoke",
            "--ca-dir",
            s(&p.ca),
            s(&revoked.join("clientcert.pem")),
        ],
    )
    .expect(0);
    let new = dir.path().join("new");
    common::issue_server(dir.path(), s(&p.ca), "localhost", s(&new)).expect(0);
    common::write(
        &root.join("etc/libvirt/libvirtd.conf"),
        b"ca_file = \"/etc/pki/CA/cacert.pem\"\ncert_file = \"/etc/pki/libvirt/servercert.pem\"\n\
          key_file = \"/etc/pki/libvirt/private/serverkey.pem\"\n",
        0o644,
    );
    let _l = crate::reload::daemon(&root, "libvirt");
    let va = crate::reload::fake_virt_admin(dir.path(), 0, "");
    let run = install_reload(dir.path(), &va, &p, &new, &root, &[]).expect(1);
    assert!(
        crate::reload::runs(dir.path()).is_empty(),
        "virt-admin was run"
    );
    assert!(run.stdout.contains("crl_file is not set"), "{}", run.stdout);
    assert!(!root.join("etc/pki/CA/cacrl.pem").exists());
    assert_eq!(installed_pair(&root), pair_of(&p.server));
}

#[test]
fn a_renewed_ca_is_rotated_by_reload_without_force_another_ca_is_not() {
    // `ca renew` keeps the CA's name and key, and says to run install --reload on each host:
    // every peer that verified under the old CA verifies under the renewed one, and no other
    // CA is trusted, so it is rotation like the pair. Old and renewed in one bundle too.
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    install(dir.path(), &["--root", s(&root)], "server", &p).expect(0);
    let old_ca = std::fs::read(p.ca.join("cacert.pem")).unwrap();
    virtpki(dir.path(), &["ca", "renew", "--dir", s(&p.ca)]).expect(0);
    let renewed = std::fs::read(p.ca.join("cacert.pem")).unwrap();
    assert_ne!(old_ca, renewed);
    let _l = crate::reload::daemon(&root, "libvirt");
    let va = crate::reload::fake_virt_admin(dir.path(), 0, "");
    let run = install_reload(dir.path(), &va, &p, &p.server, &root, &["--json"]).expect(0);
    let installed = root.join("etc/pki/CA/cacert.pem");
    assert_eq!(std::fs::read(&installed).unwrap(), renewed);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["files"][0]["action"], "replaced", "{json}");
    let backup = json["files"][0]["backup"].as_str().unwrap();
    assert_eq!(std::fs::read(backup).unwrap(), old_ca);
    assert_eq!(crate::reload::runs(dir.path()).len(), 1);
    // The bundle of both, as ca renew suggests while hosts change over.
    let bundle_dir = dir.path().join("bundle");
    std::fs::create_dir(&bundle_dir).unwrap();
    let bundle = [old_ca.clone(), renewed.clone()].concat();
    common::write(&bundle_dir.join("cacert.pem"), &bundle, 0o644);
    let q = common::Pki {
        ca: bundle_dir.clone(),
        server: p.server.clone(),
        client: p.client.clone(),
    };
    install_reload(dir.path(), &va, &q, &p.server, &root, &[]).expect(0);
    assert_eq!(std::fs::read(&installed).unwrap(), bundle);
    // A bundle that adds another CA trusts more: --force, as for another CA.
    let other = dir.path().join("other-ca");
    common::ca_init(dir.path(), &other);
    let more = [
        bundle.clone(),
        std::fs::read(other.join("cacert.pem")).unwrap(),
    ]
    .concat();
    common::write(&bundle_dir.join("cacert.pem"), &more, 0o644);
    let run = install_reload(dir.path(), &va, &q, &p.server, &root, &[]).expect(2);
    assert!(run.stderr.contains("not the CA"), "{}", run.stderr);
    assert_eq!(std::fs::read(&installed).unwrap(), bundle);
}

/// A dry run and the run itself find the same daemons: an admin socket reached through a
/// symbolic link (a real run connects through it) is there for the dry run too (it looked at
/// the link itself, and said no daemon runs).
#[test]
fn a_dry_run_finds_an_admin_socket_behind_a_link_as_the_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let root = dir.path().join("root");
    let va = crate::reload::fake_virt_admin(dir.path(), 0, "Successfully updated TLS files");
    install_reload(dir.path(), &va, &p, &p.server, &root, &[]).expect(0);
    let new = dir.path().join("new");
    common::issue_server(dir.path(), s(&p.ca), "localhost", s(&new)).expect(0);
    std::fs::create_dir_all(root.join("run/libvirt")).unwrap();
    std::fs::create_dir_all(root.join("srv")).unwrap();
    let real = root.join("srv/admin-sock");
    let listener = std::os::unix::net::UnixListener::bind(&real).unwrap();
    let link = root.join("run/libvirt/libvirt-admin-sock");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let run = install_reload(dir.path(), &va, &p, &new, &root, &["--dry-run"]).expect(0);
    assert!(
        run.stdout.contains("would reload libvirtd")
            && run.stdout.contains(&format!("{} is there", link.display())),
        "{}",
        run.stdout
    );
    listener.set_nonblocking(true).unwrap();
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a dry run connected"
    );
    assert_eq!(installed_pair(&root), pair_of(&p.server), "a dry run wrote");
}
