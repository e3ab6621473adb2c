//! The README's walkthrough (a CA, two hosts that migrate to each other, an administrator's
//! desktop), run word for word as `sh -e`, so the commands it shows cannot go stale.

use std::path::Path;
use std::process::Command;

/// The shell block between the README's walkthrough markers.
fn walkthrough_script() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let start = text
        .find("<!-- walkthrough:start -->")
        .expect("the README has the walkthrough's start marker");
    let end = text
        .find("<!-- walkthrough:end -->")
        .expect("the README has the walkthrough's end marker");
    let block = &text[start..end];
    let body = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.rsplit_once("```"))
        .expect("the walkthrough is one ```sh block")
        .0;
    body.to_owned()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let mut script = walkthrough_script();
    assert!(
        script.lines().filter(|l| l.starts_with("virtpki ")).count() >= 15,
        "{script}"
    );
    // The installed files are root's, as libvirt wants them: only root's validate can pass.
    if !is_root() {
        let cut = script
            .find("\nvirtpki validate")
            .expect("the walkthrough validates");
        script.truncate(cut + 1);
        eprintln!("not root: the walkthrough's validate steps are left out");
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_virtpki")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("sh")
        .arg("-ec")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

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
