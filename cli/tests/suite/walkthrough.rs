//! The README's walkthrough (a CA, two hosts that migrate to each other, an administrator's
//! desktop) and its life of a certificate (request, sign, install, expiry, renew, reload, CA
//! renewal), each run word for word as `sh -e`, so the commands they show cannot go stale.

use std::path::Path;
use std::process::Command;

/// The shell block between the README's `<!-- NAME:start -->` and `<!-- NAME:end -->`.
fn readme_script(name: &str) -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let start = text
        .find(&format!("<!-- {name}:start -->"))
        .unwrap_or_else(|| panic!("the README has the {name} start marker"));
    let end = text
        .find(&format!("<!-- {name}:end -->"))
        .unwrap_or_else(|| panic!("the README has the {name} end marker"));
    let block = &text[start..end];
    let body = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.rsplit_once("```"))
        .unwrap_or_else(|| panic!("the {name} is one ```sh block"))
        .0;
    body.to_owned()
}

/// Runs `script` with `sh -e` in `dir`, the virtpki just built first on PATH.
fn run_script(script: &str, dir: &Path) -> (String, String) {
    let bin = Path::new(env!("CARGO_BIN_EXE_virtpki")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Leaves out the script's `virtpki validate` steps and what follows when not root: the
/// installed files are root's, as libvirt wants them, so only root's validate can pass.
fn validate_only_as_root(script: &mut String) {
    if !is_root() {
        let cut = script
            .find("\nvirtpki validate")
            .expect("the script validates");
        script.truncate(cut + 1);
        eprintln!("not root: the validate steps are left out");
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let mut script = readme_script("walkthrough");
    assert!(
        script.lines().filter(|l| l.starts_with("virtpki ")).count() >= 15,
        "{script}"
    );
    validate_only_as_root(&mut script);
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = run_script(&script, dir.path());

    // `virtpki dn` printed the allow-list entries in the order of its files.
    let dns: Vec<&str> = stdout.lines().filter(|l| l.starts_with("C=GB,")).collect();
    assert_eq!(
        dns,
        [
            "C=GB,O=Example,CN=host1.example.com",
            "C=GB,O=Example,CN=host2.example.com",
            "C=GB,O=Example,CN=admin"
        ],
        "{stdout}"
    );
    for (root, file) in [
        ("root-host1", "etc/pki/libvirt/private/serverkey.pem"),
        ("root-host1", "etc/pki/libvirt/private/clientkey.pem"),
        ("root-host2", "etc/pki/libvirt/servercert.pem"),
        ("root-desktop", "etc/pki/libvirt/clientcert.pem"),
        ("root-desktop", "etc/pki/CA/cacert.pem"),
    ] {
        assert!(dir.path().join(root).join(file).is_file(), "{root}/{file}");
    }
    assert!(!dir
        .path()
        .join("root-desktop/etc/pki/libvirt/servercert.pem")
        .exists());

    if is_root() {
        let summaries: Vec<&str> = stdout.lines().filter(|l| l.contains(" checks: ")).collect();
        assert_eq!(summaries.len(), 3, "{stdout}");
        for summary in &summaries {
            assert!(
                summary.contains(" 0 failed") && summary.ends_with(": OK"),
                "{summary}\n{stdout}"
            );
        }
        assert!(summaries[2].contains("skipped"), "{stdout}");
    }
}

/// The life of a certificate as the README tells it: the key made by `request` is the one
/// installed, renewed and installed again; the renewal changed the certificate and nothing a
/// peer checks; the CA renewal kept the CA's key and name; no daemon, so nothing reloaded.
#[test]
fn the_readme_life_of_a_certificate_runs_as_written() {
    use virtpki::pem;
    let mut script = readme_script("life");
    for step in [
        "virtpki request server",
        "virtpki sign server",
        "virtpki install",
        "virtpki expiry",
        "virtpki renew",
        "--reload",
        "virtpki reload",
        "virtpki ca renew",
    ] {
        assert!(script.contains(step), "no {step}:\n{script}");
    }
    validate_only_as_root(&mut script);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (stdout, stderr) = run_script(&script, d);
    let one = |path: &Path| {
        let mut certs = pem::read_certificates(path).unwrap();
        assert_eq!(certs.len(), 1, "{}", path.display());
        certs.remove(0)
    };
    let signed = one(&d.join("signed/servercert.pem"));
    let renewed = one(&d.join("renewed/servercert.pem"));
    let installed = one(&d.join("host1/etc/pki/libvirt/servercert.pem"));
    assert_eq!(installed.der(), renewed.der());
    assert_ne!(renewed.fingerprint(), signed.fingerprint());
    assert_eq!(renewed.spki_der(), signed.spki_der());
    assert_eq!(renewed.subject_raw(), signed.subject_raw());
    assert_eq!(renewed.subject_alt_names(), signed.subject_alt_names());
    // The key made by `request` never moved but to its installed place.
    let key = std::fs::read(d.join("host1-files/serverkey.pem")).unwrap();
    assert_eq!(
        std::fs::read(d.join("host1/etc/pki/libvirt/private/serverkey.pem")).unwrap(),
        key
    );
    assert!(!d.join("signed/serverkey.pem").exists());
    assert!(!d.join("renewed/serverkey.pem").exists());
    // The first certificate, kept when the renewed one replaced it.
    let backups: Vec<_> = std::fs::read_dir(d.join("host1/etc/pki/libvirt"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("servercert.pem.bak-")
        })
        .collect();
    assert!(!backups.is_empty(), "{stdout}");
    // The renewed CA: the same key and name, another certificate, installed on the host.
    let ca_backups: Vec<_> = std::fs::read_dir(d.join("ca"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("cacert.pem.bak-")
        })
        .collect();
    assert_eq!(ca_backups.len(), 1, "{stdout}");
    let old_ca = one(&ca_backups[0].path());
    let new_ca = one(&d.join("ca/cacert.pem"));
    assert_ne!(old_ca.fingerprint(), new_ca.fingerprint());
    assert_eq!(old_ca.spki_der(), new_ca.spki_der());
    assert_eq!(old_ca.subject_raw(), new_ca.subject_raw());
    assert_eq!(
        one(&d.join("host1/etc/pki/CA/cacert.pem")).der(),
        new_ca.der()
    );
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("nothing to reload"), "{all}");
    let prom = std::fs::read_to_string(d.join("host1-virtpki.prom")).unwrap();
    assert!(
        prom.contains("virtpki_certificate_not_after_seconds{"),
        "{prom}"
    );
    if is_root() {
        let summary = stdout
            .lines()
            .find(|l| l.contains(" checks: "))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(
            summary.contains(" 0 failed") && summary.ends_with(": OK"),
            "{summary}\n{stdout}"
        );
    }
}
