//! Commands the CLI suggests ("Next: virtpki install --from DIR", "fix: chmod 0600 PATH") name
//! each file or directory as one shell word: pasted as printed, a directory called
//! `pki; touch pwned` must not run `touch pwned`.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::shell::shell_words;
use common::{
    home_of_another_user, install, install_user_client, issue_client, issue_server, place_issued,
    root_or_skip, s, virtpki, write,
};
use serde_json::Value;
use virtpki::generate::{create_ca, CaParams, ClientParams, KeyType, SubjectName, Validity};

const EVIL: &str = "; touch pwned";

/// The words of the command in `text` that starts with `start` and ends at `end` (a backtick,
/// a line end, or what follows the command in the sentence).
fn command_in(text: &str, start: &str, end: &str) -> Vec<String> {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in {text:?}"));
    let rest = &text[at..];
    let cmd = rest[..rest.find(end).unwrap_or(rest.len())].trim_end();
    shell_words(cmd)
}

#[test]
fn issue_next_steps_quote_the_directories() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join(format!("ca{EVIL}"));
    let out_dir = dir.path().join(format!("client{EVIL}"));
    let run = virtpki(
        dir.path(),
        &["ca", "init", "--dir", s(&ca), "--key-type", "ecdsa"],
    )
    .expect(0);
    assert_eq!(
        command_in(&run.stdout, "virtpki issue server", ","),
        [
            "virtpki",
            "issue",
            "server",
            "--ca-dir",
            s(&ca),
            "--cn",
            "HOST",
            "--out-dir",
            "DIR"
        ],
        "{}",
        run.stdout
    );
    let run = issue_client(dir.path(), s(&ca), "C=GB,O=Test,CN=client1", s(&out_dir)).expect(0);
    assert_eq!(
        command_in(&run.stdout, "virtpki install", "\n"),
        [
            "virtpki",
            "install",
            "--role",
            "client",
            "--ca-dir",
            s(&ca),
            "--from",
            s(&out_dir)
        ],
        "{}",
        run.stdout
    );
    let server_dir = dir.path().join(format!("server{EVIL}"));
    let run = issue_server(dir.path(), s(&ca), "localhost", s(&server_dir)).expect(0);
    assert_eq!(
        command_in(&run.stdout, "virtpki install", ", then"),
        [
            "virtpki",
            "install",
            "--role",
            "server",
            "--ca-dir",
            s(&ca),
            "--from",
            s(&server_dir)
        ],
        "{}",
        run.stdout
    );
}

/// A system client setup under `root`, the client key readable by every user.
fn system_client(root: &Path) {
    let ca = create_ca(&CaParams {
        common_name: "Test CA".into(),
        organization: None,
        validity: Validity::days_from_now(30),
        key_type: KeyType::EcdsaP256,
    })
    .unwrap();
    let cadir = root.join("ca-private");
    write(&cadir.join("cacert.pem"), ca.cert_pem.as_bytes(), 0o644);
    write(&cadir.join("cakey.pem"), ca.key_pem.as_bytes(), 0o600);
    let ca = virtpki::generate::CertificateAuthority::load_dir(&cadir).unwrap();
    let client = ca
        .issue_client(&ClientParams {
            dn: SubjectName::parse("C=GB,O=Test,CN=client1").unwrap(),
            validity: Validity::days_from_now(10),
            key_type: KeyType::EcdsaP256,
        })
        .unwrap();
    write(
        &root.join("etc/pki/CA/cacert.pem"),
        ca.certificate().to_pem().as_bytes(),
        0o644,
    );
    place_issued(root, "client", &client, 0o644);
    for d in [
        "etc/pki",
        "etc/pki/CA",
        "etc/pki/libvirt",
        "etc/pki/libvirt/private",
    ] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `virtpki validate --json ARGS`: the fixes of its checks, by the file each is about.
fn validate_fixes(dir: &Path, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["validate", "--json"];
    all.extend_from_slice(args);
    let run = virtpki(dir, &all);
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", run.stdout, run.stderr));
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            Some((
                c["file"].as_str().unwrap_or("").to_owned(),
                c["fix"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn fix_for<'a>(fixes: &'a [(String, String)], file: &Path, has: &str) -> &'a str {
    fixes
        .iter()
        .find(|(f, fix)| f == s(file) && fix.contains(has))
        .map(|(_, fix)| fix.as_str())
        .unwrap_or_else(|| panic!("no fix with {has:?} for {}: {fixes:?}", file.display()))
}

#[test]
fn validate_fixes_quote_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(format!("root{EVIL}"));
    system_client(&root);
    let key = root.join("etc/pki/libvirt/private/clientkey.pem");
    let fixes = validate_fixes(dir.path(), &["--root", s(&root), "--system", "client"]);
    assert_eq!(
        command_in(fix_for(&fixes, &key, "chmod"), "chmod", "`"),
        ["chmod", "0600", s(&key)]
    );

    // A certificate file that does not load: look at it with `virtpki show PATH`.
    let cert = root.join("etc/pki/libvirt/clientcert.pem");
    write(&cert, b"not a certificate\n", 0o644);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let fixes = validate_fixes(dir.path(), &["--root", s(&root), "--system", "client"]);
    assert_eq!(
        command_in(fix_for(&fixes, &cert, "virtpki show"), "virtpki show", "`"),
        ["virtpki", "show", s(&cert)]
    );

    // A missing system directory: it is usually installed with libvirt: mkdir ... DIR.
    fs::remove_dir_all(root.join("etc/pki/libvirt")).unwrap();
    let fixes = validate_fixes(dir.path(), &["--root", s(&root), "--system", "client"]);
    let libvirt_dir = root.join("etc/pki/libvirt");
    assert_eq!(
        command_in(fix_for(&fixes, &libvirt_dir, "mkdir"), "mkdir", "`"),
        ["mkdir", "-p", "-m", "0755", s(&libvirt_dir)]
    );

    // A missing --path directory: mkdir -p -m 0700 DIR.
    let missing = dir.path().join(format!("pki{EVIL}"));
    let fixes = validate_fixes(dir.path(), &["--path", s(&missing), "trust"]);
    assert_eq!(
        command_in(fix_for(&fixes, &missing, "mkdir"), "mkdir", "`"),
        ["mkdir", "-p", "-m", "0700", s(&missing)]
    );
}

/// As root, `install --user` refuses a directory below the home that the home's owner cannot
/// enter, and says to `chown -R` it: the directory is one word of that command.
#[test]
fn install_chown_advice_quotes_the_directory() {
    if !root_or_skip("the sudo -E case cannot be simulated") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = common::pki(dir.path());
    let home = home_of_another_user(dir.path(), &format!("home{EVIL}"));
    let below = home.join(".pki");
    fs::create_dir_all(below.join("libvirt")).unwrap();
    fs::set_permissions(&below, fs::Permissions::from_mode(0o700)).unwrap();
    let out = install_user_client(&home, &p);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        command_in(&stderr, "chown -R", "`"),
        ["chown", "-R", "65534:65533", s(&below)],
        "{stderr}"
    );
}

#[test]
fn install_next_step_quotes_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let p = common::pki(dir.path());
    let root = dir.path().join(format!("root{EVIL}"));
    let run = install(dir.path(), &["--root", s(&root)], "client", &p).expect(0);
    assert_eq!(
        command_in(&run.stdout, "virtpki validate", "\n"),
        ["virtpki", "validate", "--root", s(&root), "client"],
        "{}",
        run.stdout
    );
}
