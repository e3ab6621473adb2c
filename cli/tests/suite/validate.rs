//! `virtpki validate` run as a program on fake roots (--root), never on /etc or ~.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{is_root, place_issued, write};
use serde_json::Value;
use virtpki::generate::{
    create_ca, CaParams, CertificateAuthority, ClientParams, Issued, KeyType, ServerParams,
    SubjectName, Validity,
};

const HOST: &str = "host.example.com";
const CLIENT_DN: &str = "C=GB,O=Test,CN=client1";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_virtpki"));
    c.env_remove("XDG_CONFIG_HOME").env("NO_COLOR", "1");
    c
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

struct Pki {
    ca: CertificateAuthority,
    ca_pem: String,
}

fn pki(dir: &Path) -> Pki {
    let ca = create_ca(&CaParams {
        common_name: "Test CA".into(),
        organization: Some("Test".into()),
        validity: Validity::days_from_now(3650),
        key_type: KeyType::EcdsaP256,
    })
    .unwrap();
    let cadir = dir.join("ca-private");
    write(&cadir.join("cacert.pem"), ca.cert_pem.as_bytes(), 0o644);
    write(&cadir.join("cakey.pem"), ca.key_pem.as_bytes(), 0o600);
    Pki {
        ca: CertificateAuthority::load_dir(&cadir).unwrap(),
        ca_pem: ca.cert_pem,
    }
}

impl Pki {
    fn server(&self, validity: Validity) -> Issued {
        self.ca
            .issue_server(&ServerParams {
                common_name: HOST.into(),
                dns_names: vec!["host".into()],
                ip_addresses: vec![],
                organization: None,
                validity,
                key_type: KeyType::EcdsaP256,
            })
            .unwrap()
    }
    fn client(&self) -> Issued {
        self.ca
            .issue_client(&ClientParams {
                dn: SubjectName::parse(CLIENT_DN).unwrap(),
                validity: Validity::days_from_now(365),
                key_type: KeyType::EcdsaP256,
            })
            .unwrap()
    }
}

/// A complete, correct system setup under `root`.
fn system_root(root: &Path) -> Pki {
    let p = pki(root);
    for d in [
        "etc/pki",
        "etc/pki/CA",
        "etc/pki/libvirt",
        "etc/pki/libvirt/private",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
        chmod(&root.join(d), 0o755);
    }
    write(
        &root.join("etc/pki/CA/cacert.pem"),
        p.ca_pem.as_bytes(),
        0o644,
    );
    let s = p.server(Validity::days_from_now(365));
    place_issued(root, "server", &s, 0o600);
    let c = p.client();
    place_issued(root, "client", &c, 0o600);
    p
}

fn run(root: &Path, args: &[&str]) -> Output {
    bin()
        .arg("validate")
        .arg("--root")
        .arg(root)
        .args(["--system", "--hostname", HOST])
        .args(args)
        .output()
        .unwrap()
}

fn json(root: &Path, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = run(root, &a);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap(), v)
}

fn checks(v: &Value) -> &Vec<Value> {
    v["checks"].as_array().unwrap()
}

/// The checks with this status whose message contains `text`.
fn find<'a>(v: &'a Value, status: &str, text: &str) -> Vec<&'a Value> {
    checks(v)
        .iter()
        .filter(|c| c["status"] == status && c["message"].as_str().unwrap().contains(text))
        .collect()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_correct_system_setup_passes() {
    if !is_root() {
        return; // the system rules want root-owned files
    }
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let out = run(dir.path(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(!t.contains("FAIL"), "{t}");
    assert!(t.contains(" TRUST: Checking if CA cert exists"), "{t}");
    assert!(t.contains("SERVER: Checking cert hostname match"), "{t}");
    assert!(t.contains("CLIENT: Checking cert properties"), "{t}");
    assert!(t.contains("0 failed"), "{t}");
    // The virt-pki-validate layout: "%6s: %-69s: STATUS".
    let line = t
        .lines()
        .find(|l| l.contains("Checking cert hostname match"))
        .unwrap();
    assert_eq!(line.find(": PASS"), Some(6 + 2 + 69), "{line}");
}

#[test]
fn json_lists_every_check_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let (code, v) = json(dir.path(), &[]);
    let all = checks(&v);
    assert!(all.len() > 10);
    for c in all {
        assert!(["pass", "info", "warn", "fail"].contains(&c["status"].as_str().unwrap()));
        assert!(c["name"].is_string() && c["message"].is_string());
        assert!(["trust", "server", "client", "conf"].contains(&c["scope"].as_str().unwrap()));
    }
    let s = &v["summary"];
    let total = ["pass", "info", "warn", "fail"]
        .iter()
        .map(|k| s[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(total as usize, all.len());
    assert_eq!(s["ok"], code == 0);
    assert_eq!(v["mode"], "system");
}

#[test]
fn one_section_only() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let (_, v) = json(dir.path(), &["client"]);
    assert!(checks(&v).iter().all(|c| c["scope"] == "client"), "{v}");
    let (_, v) = json(dir.path(), &["trust"]);
    assert!(checks(&v).iter().all(|c| c["scope"] == "trust"), "{v}");
}

#[test]
fn a_missing_ca_fails_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    fs::remove_file(dir.path().join("etc/pki/CA/cacert.pem")).unwrap();
    let (code, v) = json(dir.path(), &[]);
    assert_eq!(code, 1);
    let f = find(&v, "fail", "cacert.pem does not exist");
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["name"], "Checking if CA cert exists");
    assert!(f[0]["fix"].as_str().unwrap().contains("tlscerts.html"));
    // The server certificate is still checked without its CA: the hostname check ran.
    assert!(checks(&v)
        .iter()
        .any(|c| c["name"] == "Checking cert hostname match"));
}

#[test]
fn missing_server_files_and_directories_fail() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    fs::remove_file(dir.path().join("etc/pki/libvirt/private/serverkey.pem")).unwrap();
    let (code, v) = json(dir.path(), &["server"]);
    assert_eq!(code, 1);
    assert_eq!(
        find(&v, "fail", "serverkey.pem does not exist").len(),
        1,
        "{v}"
    );
    // Without its certificate, the section's "cert properties" cannot pass.
    fs::remove_file(dir.path().join("etc/pki/libvirt/servercert.pem")).unwrap();
    let (_, v) = json(dir.path(), &["server"]);
    assert!(
        checks(&v)
            .iter()
            .all(|c| !(c["name"] == "Checking cert properties" && c["status"] == "pass")),
        "{v}"
    );
    fs::remove_dir_all(dir.path().join("etc/pki/libvirt")).unwrap();
    let (_, v) = json(dir.path(), &["server"]);
    assert_eq!(
        find(&v, "fail", "etc/pki/libvirt does not exist").len(),
        1,
        "{v}"
    );
}

#[test]
fn key_modes_group_readable_warns_other_readable_fails() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let key = dir.path().join("etc/pki/libvirt/private/serverkey.pem");
    chmod(&key, 0o640);
    let (code, v) = json(dir.path(), &["server"]);
    let w = find(&v, "warn", "readable by its group");
    assert_eq!(w.len(), 1, "{v}");
    assert!(w[0]["fix"].as_str().unwrap().contains("qemu"));
    if is_root() {
        assert_eq!(code, 0, "{v}");
    }
    chmod(&key, 0o644);
    let (code, v) = json(dir.path(), &["server"]);
    assert_eq!(code, 1);
    let f = find(&v, "fail", "virtpki refuses to load it");
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["fix"], format!("chmod 0600 {}", key.display()));
    // The library refuses to load it too; that is not said a second time.
    assert!(
        find(&v, "fail", "private key file is readable by other users").is_empty(),
        "{v}"
    );
    assert_eq!(v["summary"]["fail"], 1, "{v}");
}

#[test]
fn writable_directories_fail_and_odd_modes_warn() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    chmod(&dir.path().join("etc/pki/CA"), 0o777);
    let (code, v) = json(dir.path(), &["trust"]);
    assert_eq!(code, 1);
    assert_eq!(find(&v, "fail", "writable by other users").len(), 1, "{v}");
    chmod(&dir.path().join("etc/pki/CA"), 0o755);
    chmod(&dir.path().join("etc/pki/CA/cacert.pem"), 0o600);
    let (_, v) = json(dir.path(), &["trust"]);
    let w = find(&v, "warn", "mode 0600, not 0644");
    assert_eq!(w.len(), 1, "{v}");
    assert!(w[0]["message"]
        .as_str()
        .unwrap()
        .contains("non-root clients"));
}

#[test]
fn wrong_owner_fails() {
    if !is_root() {
        return; // chown needs root
    }
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let cert = dir.path().join("etc/pki/libvirt/servercert.pem");
    std::os::unix::fs::chown(&cert, Some(65534), Some(65534)).unwrap();
    let (code, v) = json(dir.path(), &["server"]);
    assert_eq!(code, 1);
    let f = find(&v, "fail", "belongs to uid 65534");
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["fix"], format!("chown root:root {}", cert.display()));
}

#[test]
fn a_key_that_does_not_match_fails() {
    let dir = tempfile::tempdir().unwrap();
    let p = system_root(dir.path());
    let other = p.server(Validity::days_from_now(365));
    write(
        &dir.path().join("etc/pki/libvirt/private/serverkey.pem"),
        other.key_pem.as_bytes(),
        0o600,
    );
    let (code, v) = json(dir.path(), &["server"]);
    assert_eq!(code, 1);
    let f: Vec<_> = checks(&v)
        .iter()
        .filter(|c| c["rule"] == "key-pair")
        .collect();
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["status"], "fail");
    assert!(f[0]["message"]
        .as_str()
        .unwrap()
        .contains("does not belong"));
}

#[test]
fn an_expired_server_certificate_fails() {
    let dir = tempfile::tempdir().unwrap();
    let p = system_root(dir.path());
    let old = p.server(Validity {
        now: virtpki::timefmt::now() - 10 * 86_400,
        days: 1,
    });
    place_issued(dir.path(), "server", &old, 0o600);
    let (code, v) = json(dir.path(), &["server"]);
    assert_eq!(code, 1);
    let f = find(&v, "fail", "has expired");
    assert!(!f.is_empty(), "{v}");
    assert!(f.iter().any(|c| c["rule"] == "time"));
}

#[test]
fn a_certificate_from_another_ca_fails_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let stranger = pki(&dir.path().join("other"));
    let s = stranger.server(Validity::days_from_now(5));
    place_issued(dir.path(), "server", &s, 0o600);
    let (code, v) = json(dir.path(), &["server"]);
    assert_eq!(code, 1);
    assert!(
        checks(&v)
            .iter()
            .any(|c| c["rule"] == "chain" && c["status"] == "fail"),
        "{v}"
    );
}

#[test]
fn garbage_instead_of_a_certificate_fails_to_load() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    write(
        &dir.path().join("etc/pki/libvirt/clientcert.pem"),
        b"not a certificate\n",
        0o644,
    );
    let (code, v) = json(dir.path(), &["client"]);
    assert_eq!(code, 1);
    let f: Vec<_> = checks(&v)
        .iter()
        .filter(|c| c["name"] == "Loading client certificate")
        .collect();
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["fix"].as_str().unwrap().contains("virtpki show"));
}

#[test]
fn hostname_mismatch_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let out = bin()
        .args([
            "validate",
            "--json",
            "--system",
            "server",
            "--hostname",
            "other.example.org",
            "--root",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = find(&v, "warn", "does not match the hostname other.example.org");
    assert_eq!(w.len(), 1, "{v}");
    if is_root() {
        assert_eq!(out.status.code(), Some(0), "{v}");
    }
    // The short name is in the certificate too.
    let out = bin()
        .args([
            "validate",
            "--json",
            "--system",
            "server",
            "--hostname",
            "host",
            "--root",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        checks(&v)
            .iter()
            .any(|c| c["name"] == "Checking cert hostname match" && c["status"] == "pass"),
        "{v}"
    );
}

fn conf(root: &Path, text: &str) -> PathBuf {
    let p = root.join("etc/libvirt/libvirtd.conf");
    write(&p, text.as_bytes(), 0o644);
    p
}

#[test]
fn libvirtd_conf_syntax_error_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    conf(
        dir.path(),
        "listen_tls = 1\n\nkey_file = \"/etc/pki/x.pem\n",
    );
    let (code, v) = json(dir.path(), &[]);
    assert_eq!(code, 1);
    let f = find(&v, "fail", "libvirtd.conf:3: unterminated string");
    assert_eq!(f.len(), 1, "{v}");
    assert!(f[0]["fix"].as_str().unwrap().starts_with("correct line 3"));
}

#[test]
fn libvirtd_conf_needs_all_of_key_cert_ca() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    conf(
        dir.path(),
        "ca_file = \"/etc/pki/CA/cacert.pem\"\nkey_file = \"\"\n",
    );
    let (code, v) = json(dir.path(), &[]);
    assert_eq!(code, 1);
    let f = find(&v, "fail", "ca_file set but not key_file, cert_file");
    assert_eq!(f.len(), 1, "{v}");
}

#[test]
fn libvirtd_conf_files_are_the_ones_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = system_root(dir.path());
    let s = p.server(Validity::days_from_now(365));
    write(
        &dir.path().join("srv/tls/cert.pem"),
        s.cert_pem.as_bytes(),
        0o644,
    );
    write(
        &dir.path().join("srv/tls/key.pem"),
        s.key_pem.as_bytes(),
        0o600,
    );
    // The default server files are gone: only the configured ones exist.
    fs::remove_file(dir.path().join("etc/pki/libvirt/servercert.pem")).unwrap();
    conf(
        dir.path(),
        "key_file = \"/srv/tls/key.pem\"\ncert_file = \"/srv/tls/cert.pem\"\nca_file = \"/etc/pki/CA/cacert.pem\"\n",
    );
    let (_, v) = json(dir.path(), &["server"]);
    let server: Vec<_> = checks(&v)
        .iter()
        .filter(|c| c["scope"] == "server")
        .collect();
    assert!(server.iter().all(|c| c["status"] != "fail"), "{v}");
    assert!(
        server.iter().any(|c| c["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("srv/tls/key.pem"))),
        "{v}"
    );
    assert!(find(&v, "pass", "all set").len() == 1, "{v}");
}

#[test]
fn libvirtd_conf_traps() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    write(&dir.path().join("etc/pki/CA/cacrl.pem"), b"", 0o644);
    conf(
        dir.path(),
        "tls_no_verify_certificate = 1\ntls_no_verify_address = 1\ntls_no_sanity_certificate = 1\n\
         crl_file = \"/etc/pki/CA/crl.pem\"\ntls_port = 16514\nlisten_tls = 0\n",
    );
    let (code, v) = json(dir.path(), &["server"]);
    assert_eq!(code, 1, "tls_port as an integer stops libvirtd: {v}");
    assert_eq!(
        find(&v, "warn", "CLIENT CERTIFICATES ARE NOT VERIFIED").len(),
        1,
        "{v}"
    );
    assert_eq!(
        find(&v, "warn", "tls_no_verify_address is no longer read").len(),
        1,
        "{v}"
    );
    assert_eq!(
        find(&v, "warn", "skips its load-time checks").len(),
        1,
        "{v}"
    );
    let crl = find(&v, "warn", "NO CERTIFICATE IS TREATED AS REVOKED");
    assert_eq!(crl.len(), 1, "{v}");
    assert!(crl[0]["fix"]
        .as_str()
        .unwrap()
        .contains("/etc/pki/CA/cacrl.pem"));
    assert_eq!(
        find(&v, "fail", "expected a string for 'tls_port'").len(),
        1,
        "{v}"
    );
    assert_eq!(find(&v, "warn", "listen_tls = 0").len(), 1, "{v}");
}

#[test]
fn tls_allowed_dn_list_patterns() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    conf(
        dir.path(),
        "tls_allowed_dn_list = [\"CN=client1,O=Test,C=GB\",\n  \"C=GB, O=Test, CN=*\",\n  \"C=GB,emailAddress=x,CN=y\"]\n",
    );
    let (_, v) = json(dir.path(), &[]);
    let rfc = find(&v, "fail", "is in RFC 4514 order");
    assert_eq!(rfc.len(), 1, "{v}");
    assert!(rfc[0]["fix"]
        .as_str()
        .unwrap()
        .contains(&format!("\"{CLIENT_DN}\"")));
    let spaces = find(&v, "fail", "has a space after a comma");
    assert_eq!(spaces.len(), 1, "{v}");
    assert!(spaces[0]["fix"]
        .as_str()
        .unwrap()
        .contains("\"C=GB,O=Test,CN=*\""));
    assert_eq!(
        find(
            &v,
            "warn",
            "no attribute emailAddress (libvirt writes EMAIL)"
        )
        .len(),
        1,
        "{v}"
    );
    // This host's own client certificate is for other hosts: a note (issue 15, item 10).
    assert_eq!(
        find(&v, "info", "cannot connect to this host's libvirtd").len(),
        1,
        "{v}"
    );

    conf(
        dir.path(),
        &format!("tls_allowed_dn_list = [\"{CLIENT_DN}\"]\n"),
    );
    let (_, v) = json(dir.path(), &[]);
    assert_eq!(find(&v, "pass", "is allowed by").len(), 1, "{v}");
    assert!(find(&v, "warn", "RFC 4514").is_empty());

    conf(dir.path(), "tls_allowed_dn_list = []\n");
    let (_, v) = json(dir.path(), &[]);
    assert_eq!(find(&v, "warn", "NO client may connect").len(), 1, "{v}");
}

#[test]
fn an_explicit_conf_file_is_read_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let other = dir.path().join("my.conf");
    write(&other, b"tls_allowed_dn_list = []\n", 0o644);
    let (_, v) = json(dir.path(), &["--libvirtd-conf", other.to_str().unwrap()]);
    assert_eq!(find(&v, "warn", "NO client may connect").len(), 1, "{v}");
    let out = run(
        dir.path(),
        &["--libvirtd-conf", "/nonexistent/libvirtd.conf"],
    );
    assert_eq!(out.status.code(), Some(2));
    // Said first, in the report (see a_given_path_that_is_not_there_is_the_first_line).
    assert!(text(&out).starts_with("  ARGS: Checking --libvirtd-conf"));
    assert!(text(&out).contains("--libvirtd-conf /nonexistent/libvirtd.conf: no such file"));
}

/// A user setup under a fake HOME: ~/.pki/libvirt, 0700, files 0600.
fn user_home(home: &Path) -> PathBuf {
    let p = pki(home);
    let d = home.join(".pki/libvirt");
    fs::create_dir_all(&d).unwrap();
    chmod(&d, 0o700);
    write(&d.join("cacert.pem"), p.ca_pem.as_bytes(), 0o600);
    let c = p.client();
    write(&d.join("clientcert.pem"), c.cert_pem.as_bytes(), 0o600);
    write(&d.join("clientkey.pem"), c.key_pem.as_bytes(), 0o600);
    d
}

/// `validate --json ARGS` with HOME=`home`. Not under a --root, which checks the system
/// files only (issue 15, item 8): `root` is the directory to run in.
fn run_user(home: &Path, root: &Path, args: &[&str]) -> (i32, Value) {
    let out = bin()
        .env("HOME", home)
        .current_dir(root)
        .args(["validate", "--json"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

#[test]
fn user_mode_checks_the_home_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let d = user_home(&dir.path().join("home"));
    let (code, v) = run_user(&dir.path().join("home"), &root, &["--user", "client"]);
    assert_eq!(v["mode"], "user");
    assert_eq!(code, 0, "{v}");
    let (code, v) = run_user(&dir.path().join("home"), &root, &["--user", "trust"]);
    assert_eq!(code, 0, "{v}");
    chmod(&d, 0o755);
    let (code, v) = run_user(&dir.path().join("home"), &root, &["--user", "trust"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(find(&v, "warn", "mode 0755, not 0700").len(), 1, "{v}");
    chmod(&d.join("cacert.pem"), 0o666);
    let (code, v) = run_user(&dir.path().join("home"), &root, &["--user", "trust"]);
    assert_eq!(code, 1);
    assert_eq!(find(&v, "fail", "writable by other users").len(), 1, "{v}");
}

#[test]
fn path_mode_checks_the_directory_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = user_home(dir.path());
    let (code, v) = run_user(
        dir.path(),
        dir.path(),
        &["--path", d.to_str().unwrap(), "client"],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["mode"], "path");
    assert!(checks(&v)
        .iter()
        .any(|c| c["file"].as_str() == Some(d.join("clientkey.pem").to_str().unwrap())));
    // A server is not set up there: its files fall back to the system ones, absent (unless
    // this machine is a libvirt server: --root cannot be combined with --path to fake them).
    if Path::new("/etc/pki/libvirt/servercert.pem").exists() {
        return;
    }
    let (code, v) = run_user(
        dir.path(),
        dir.path(),
        &["--path", d.to_str().unwrap(), "server"],
    );
    assert_eq!(code, 1);
    assert!(
        !find(&v, "fail", "servercert.pem does not exist").is_empty(),
        "{v}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--system", "--user"][..],
        &["--user", "--path", "/tmp"],
        &["everything"],
        &["trust", "server"],
        &["--hostname"],
    ] {
        let out = bin()
            .arg("validate")
            .arg("--root")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = bin()
        .args(["validate", "--root", "/nonexistent/root"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--root /nonexistent/root: no such directory"));
}

/// A path given on the command line that is not there, or not what its option takes, is the
/// first line of the report, text and JSON, with its fix, and the report holds nothing else:
/// every other line would be about other files. `validate --path DIR client` with a mistyped
/// DIR printed two failures about /etc/pki/libvirt (libvirt's fallbacks) and never named DIR.
#[test]
fn a_given_path_that_is_not_there_is_the_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let file = dir.path().join("a-file");
    write(&file, b"", 0o644);
    let missing = dir.path().join("missing");
    let (r, f, m) = (
        root.to_str().unwrap(),
        file.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--path", m, "client"], "--path", "no such directory"),
        (
            &["--path", f],
            "--path",
            "not a directory: it is a regular file",
        ),
        (&["--root", m, "--system"], "--root", "no such directory"),
        (
            &["--root", f, "--system", "trust"],
            "--root",
            "not a directory: it is a regular file",
        ),
        (
            &["--root", r, "--system", "--libvirtd-conf", m],
            "--libvirtd-conf",
            "no such file",
        ),
        (
            &["--root", r, "--system", "--libvirtd-conf", r],
            "--libvirtd-conf",
            "not a file: it is a directory",
        ),
    ];
    for (args, option, what) in cases {
        let path = args[args.iter().position(|a| a == option).unwrap() + 1];
        let first = format!("{option} {path}: {what}");
        let out = bin()
            .arg("validate")
            .args(*args)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let t = text(&out);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!("  ARGS: {:<69}: FAIL", format!("Checking {option}")),
            "{t}"
        );
        assert_eq!(lines[1].trim(), first, "{t}");
        assert!(
            lines[2]
                .trim()
                .starts_with(&format!("fix: check the path: {option} takes ")),
            "{t}"
        );
        assert!(!t.contains("/etc/pki"), "{t}");
        assert!(
            t.ends_with("1 check: 0 passed, 0 warnings, 1 failed: FAILED\n"),
            "{t}"
        );

        let out = bin()
            .arg("validate")
            .arg("--json")
            .args(*args)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let c = &checks(&v)[0];
        assert_eq!(c["scope"], "args", "{v}");
        assert_eq!(c["status"], "fail", "{v}");
        assert_eq!(c["message"], first.as_str(), "{v}");
        assert_eq!(c["file"], *path, "{v}");
        assert!(c["fix"].as_str().unwrap().contains(option), "{v}");
        assert_eq!(checks(&v).len(), 1, "{v}");
    }
    // A missing pkipath directory may be one yet to be made: the fix offers the mkdir, with
    // the mode `validate` then expects.
    let out = bin()
        .args(["validate", "--json", "--path", m])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        checks(&v)[0]["fix"]
            .as_str()
            .unwrap()
            .ends_with(&format!("; or make it: `mkdir -p -m 0700 {m}`")),
        "{v}"
    );
    // Each wrong path is named, in the order of the options' table (--root and --path
    // cannot be given together: issue 15, item 8).
    for (first, path) in [("--root", m), ("--path", f)] {
        let out = bin()
            .args(["validate", "--json", first, path, "--libvirtd-conf", m])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let names: Vec<&str> = checks(&v)
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                format!("Checking {first}"),
                "Checking --libvirtd-conf".into()
            ],
            "{v}"
        );
    }
}

/// A name with terminal escapes, a forged line and a bidi override (a NUL would make the DN
/// string print the value in hex, as libvirt does).
const HOSTILE: &str = "evil\x1b[1A\x1b[2K\x1b[32mPASS\r\n\u{202e}x";

/// A server certificate from a CA whose name attacks the terminal: the findings quote the
/// issuer and the subject, and the text report prints them escaped (it printed them raw).
#[test]
fn names_from_certificates_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    // virtpki refuses to issue such names: the fixture kit makes them, as an attacker would.
    use virtpki_tools::kit::{self, Spec};
    let ca = kit::self_signed(&Spec::ca(HOSTILE).org(HOSTILE));
    let leaf = kit::signed_by(
        &Spec::server(HOST)
            .org(HOSTILE)
            .valid(kit::now() - 86400, kit::now() + 5 * 86400),
        &ca,
    );
    write(
        &dir.path().join("etc/pki/libvirt/servercert.pem"),
        leaf.pem().as_bytes(),
        0o644,
    );
    write(
        &dir.path().join("etc/pki/libvirt/private/serverkey.pem"),
        leaf.key_pem().as_bytes(),
        0o600,
    );
    let out = run(dir.path(), &["server"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out);
    let raw: Vec<char> = stdout
        .chars()
        .filter(|c| *c != '\n' && virtpki::display::is_unsafe(*c))
        .collect();
    assert_eq!(raw, vec![], "{stdout:?}");
    assert!(
        stdout.contains("\\x1b[32mPASS\\x0d\\x0a\\u{202e}x"),
        "{stdout}"
    );
    assert!(!stdout.lines().any(|l| l.starts_with("PASS")), "{stdout}");
}

// Issue 15, items 1 and 10: libvirtd.conf names libvirtd ignores, a string for a list, and
// which clients are checked against tls_allowed_dn_list.

/// `validate` of the system setup under `root` with `--libvirtd-conf FILE`, as text.
fn run_conf(root: &Path, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--libvirtd-conf", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(root, &args)
}

/// The same as JSON.
fn json_conf(root: &Path, file: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--libvirtd-conf", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    json(root, &args).1
}

#[test]
fn misspelt_libvirtd_conf_keys_warn_with_the_key_meant() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let file = dir.path().join("typo.conf");
    write(
        &file,
        b"listen_tls = 1\ntls_alowed_dn_list = [\"C=GB,O=Test,CN=client1\"]\n\
          tls_no_verify_cert = 1\nlsiten_tcp = 1\nmy_own_key = 1\n",
        0o644,
    );
    let v = json_conf(dir.path(), &file, &[]);
    let f = file.display();
    for (line, typo, meant) in [
        (2, "tls_alowed_dn_list", "tls_allowed_dn_list"),
        (3, "tls_no_verify_cert", "tls_no_verify_certificate"),
        (4, "lsiten_tcp", "listen_tcp"),
    ] {
        let w = find(
            &v,
            "warn",
            &format!("{f}:{line}: unknown setting {typo} (did you mean {meant}?)"),
        );
        assert_eq!(w.len(), 1, "{typo}: {v}");
        assert_eq!(
            w[0]["fix"],
            format!("rename {typo} to {meant} on line {line} of {f}"),
            "{v}"
        );
    }
    // The cost of the first typo is said: the list is not applied.
    assert_eq!(
        find(
            &v,
            "warn",
            "so tls_allowed_dn_list is not set: every client"
        )
        .len(),
        1,
        "{v}"
    );
    // An unrelated name: a warning without a guess.
    let w = find(
        &v,
        "warn",
        "unknown setting my_own_key: libvirtd reads no setting",
    );
    assert_eq!(w.len(), 1, "{v}");
    assert!(v["summary"]["warn"].as_u64().unwrap() >= 4, "{v}");

    let out = run_conf(dir.path(), &file, &[]);
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "{f}:2: unknown setting tls_alowed_dn_list (did you mean tls_allowed_dn_list?)"
        )),
        "{t}"
    );
    assert!(t.contains("WARN"), "{t}");
    assert!(!t.trim_end().ends_with(": OK"), "{t}");
}

#[test]
fn a_string_where_libvirtd_wants_a_list_is_one_fail() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let file = dir.path().join("string.conf");
    write(
        &file,
        format!("tls_allowed_dn_list = \"{CLIENT_DN}\"\n").as_bytes(),
        0o644,
    );
    let (code, v) = json(dir.path(), &["--libvirtd-conf", file.to_str().unwrap()]);
    assert_eq!(code, 1, "libvirtd refuses to start: {v}");
    let about: Vec<&Value> = checks(&v)
        .iter()
        .filter(|c| c["name"].as_str().unwrap().contains("tls_allowed_dn_list"))
        .collect();
    assert_eq!(about.len(), 1, "one line for the setting: {about:#?}");
    assert_eq!(about[0]["status"], "fail");
    assert!(about[0]["message"]
        .as_str()
        .unwrap()
        .contains("expected a list of strings for 'tls_allowed_dn_list'"));
    assert_eq!(
        about[0]["fix"],
        format!("tls_allowed_dn_list = [\"{CLIENT_DN}\"] (a list, in brackets)")
    );

    let t = text(&run_conf(dir.path(), &file, &[]));
    let lines: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("Checking tls_allowed_dn_list"))
        .collect();
    assert_eq!(lines.len(), 1, "{t}");
    assert!(lines[0].ends_with("FAIL"), "{t}");
}

#[test]
fn the_host_s_own_client_certificate_is_a_note_and_peers_are_checked_with_client_dn() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    // host1's list lets host2 in; host1's own client certificate (CLIENT_DN) is for
    // connecting to host2.
    let host2 = "C=GB,O=Test,CN=host2";
    let file = dir.path().join("host1.conf");
    write(
        &file,
        format!("tls_allowed_dn_list = [\"{host2}\"]\n").as_bytes(),
        0o644,
    );

    // Without --client-dn: a note, not a warning.
    let v = json_conf(dir.path(), &file, &[]);
    let note = find(&v, "info", "this host's client certificate");
    assert_eq!(note.len(), 1, "{v}");
    assert!(note[0]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("({CLIENT_DN}) is on no pattern")));
    assert!(note[0]["fix"].as_str().unwrap().contains("--client-dn DN"));
    assert!(find(&v, "warn", "would reject").is_empty(), "{v}");
    assert_eq!(v["summary"]["info"], 1, "{v}");
    let t = text(&run_conf(dir.path(), &file, &[]));
    let line = t
        .lines()
        .find(|l| l.contains("this host's client certificate against"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(line.ends_with("INFO"), "{t}");
    assert!(t.contains(", 1 note: "), "{t}");

    // With --client-dn: each peer checked, a rejected one warns; the own certificate is
    // not the question any more.
    let admin = "C=GB,O=Test,CN=admin";
    let args = ["--client-dn", host2, "--client-dn", admin];
    let v = json_conf(dir.path(), &file, &args);
    assert_eq!(
        find(&v, "pass", &format!("{host2} is allowed by \"{host2}\"")).len(),
        1,
        "{v}"
    );
    let w = find(
        &v,
        "warn",
        &format!("the client DN {admin} is on no pattern: libvirtd would reject this client"),
    );
    assert_eq!(w.len(), 1, "{v}");
    assert!(w[0]["fix"]
        .as_str()
        .unwrap()
        .starts_with(&format!("add \"{admin}\" to tls_allowed_dn_list")));
    assert!(
        find(&v, "info", "this host's client certificate").is_empty(),
        "{v}"
    );
    let t = text(&run_conf(dir.path(), &file, &args));
    assert!(
        t.contains(&format!("the client DN {admin} is on no pattern")),
        "{t}"
    );

    // --client-dn where no libvirtd.conf is checked: said, not ignored.
    let (_, v) = json(dir.path(), &["trust", "--client-dn", admin]);
    assert_eq!(
        find(&v, "info", "the --client-dn values were not checked").len(),
        1,
        "{v}"
    );
}

#[test]
fn client_dn_sharpens_the_order_finding_of_a_pattern() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let file = dir.path().join("rfc.conf");
    write(
        &file,
        b"tls_allowed_dn_list = [\"CN=host2,O=Test,C=GB\"]\n",
        0o644,
    );
    // The own certificate (CN=client1) is no evidence: a probable mistake, a warning.
    let v = json_conf(dir.path(), &file, &[]);
    assert_eq!(
        find(
            &v,
            "warn",
            "does not match certificates issued the usual way"
        )
        .len(),
        1,
        "{v}"
    );
    // The peer that connects matches it reversed: a certain mistake.
    let v = json_conf(dir.path(), &file, &["--client-dn", "C=GB,O=Test,CN=host2"]);
    assert_eq!(
        find(&v, "fail", "whose DN it matches when reversed").len(),
        1,
        "{v}"
    );
    assert_eq!(
        find(
            &v,
            "warn",
            "the client DN C=GB,O=Test,CN=host2 is on no pattern"
        )
        .len(),
        1,
        "{v}"
    );
}

// Issue 15 (a careful administrator's walkthrough): items 7, 8 and 9.

/// `validate ARGS` under `root` (no --system, no --hostname: as the walkthrough ran it).
fn plain(root: &Path, args: &[&str]) -> Output {
    bin()
        .arg("validate")
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn plain_json(root: &Path, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = plain(root, &a);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap(), v)
}

/// Issue 15, item 7: a plain `virtpki validate --root R` on a client-only machine FAILed on
/// the absent server files. Without WHAT, trust and the roles with files are checked, and
/// the report says the server was skipped and why; naming the role still checks it.
#[test]
fn a_client_only_machine_skips_the_server_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    fs::remove_file(root.join("etc/pki/libvirt/servercert.pem")).unwrap();
    fs::remove_file(root.join("etc/pki/libvirt/private/serverkey.pem")).unwrap();
    let (code, v) = plain_json(root, &[]);
    let server: Vec<&Value> = checks(&v)
        .iter()
        .filter(|c| c["scope"] == "server")
        .collect();
    assert_eq!(server.len(), 1, "{v}");
    assert_eq!(server[0]["id"], "server.skipped", "{v}");
    assert_eq!(server[0]["status"], "skip", "{v}");
    let msg = server[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("servercert.pem") && msg.contains("not set up as a server"),
        "{msg}"
    );
    assert!(
        server[0]["fix"].as_str().unwrap().ends_with(" server"),
        "{v}"
    );
    // libvirtd.conf is the server's: not checked either.
    assert!(checks(&v).iter().all(|c| c["scope"] != "conf"), "{v}");
    assert!(checks(&v)
        .iter()
        .any(|c| c["id"] == "client.cert_properties"));
    assert_eq!(v["summary"]["skip"], 1, "{v}");
    if is_root() {
        assert_eq!(code, 0, "{v}");
    }
    let t = text(&plain(root, &[]));
    assert!(
        t.contains(&format!("SERVER: {:<69}: SKIP", "Checking server files")),
        "{t}"
    );
    assert!(t.contains(", 1 skipped: "), "{t}");
    // Asked for, the server is checked, and fails.
    let (code, v) = plain_json(root, &["server"]);
    assert_eq!(code, 1, "{v}");
    assert!(!find(&v, "fail", "servercert.pem does not exist").is_empty());
    // The same for a server without client files.
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    fs::remove_file(dir.path().join("etc/pki/libvirt/clientcert.pem")).unwrap();
    fs::remove_file(dir.path().join("etc/pki/libvirt/private/clientkey.pem")).unwrap();
    let (_, v) = plain_json(dir.path(), &["--hostname", HOST]);
    let client: Vec<&Value> = checks(&v)
        .iter()
        .filter(|c| c["scope"] == "client")
        .collect();
    assert_eq!(client.len(), 1, "{v}");
    assert_eq!(client[0]["status"], "skip", "{v}");
    assert!(checks(&v).iter().any(|c| c["id"] == "server.hostname"));
}

/// Issue 15, item 7: under --root the host-name check compared the certificate with THIS
/// machine's names (and advised re-issuing for them). Without --hostname it is skipped,
/// saying that it needs --hostname; with it, it runs.
#[test]
fn under_a_root_the_hostname_check_needs_hostname() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let (_, v) = plain_json(dir.path(), &["server"]);
    let h: Vec<&Value> = checks(&v)
        .iter()
        .filter(|c| c["id"] == "server.hostname")
        .collect();
    assert_eq!(h.len(), 1, "{v}");
    assert_eq!(h[0]["status"], "skip", "{v}");
    assert!(
        h[0]["fix"]
            .as_str()
            .unwrap()
            .starts_with("give --hostname NAME"),
        "{v}"
    );
    assert!(
        !h[0]["message"].as_str().unwrap().contains("re-issue"),
        "{v}"
    );
    assert_eq!(v["summary"]["warn"], 0, "{v}");
    let (_, v) = plain_json(dir.path(), &["server", "--hostname", HOST]);
    assert!(
        checks(&v)
            .iter()
            .any(|c| c["id"] == "server.hostname" && c["status"] == "pass"),
        "{v}"
    );
}

/// Issue 15, item 8: `--root` with `--path` or `--user` was accepted and mixed the files of
/// both; it is refused (exit 2) with the reason, and nothing is checked. A --root that does
/// not exist is said to be missing, not "not a directory".
#[test]
fn root_with_path_or_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    system_root(&root);
    let d = user_home(&dir.path().join("home"));
    for other in [&["--path", d.to_str().unwrap()][..], &["--user"]] {
        let out = bin()
            .env("HOME", dir.path().join("home"))
            .arg("validate")
            .arg("--root")
            .arg(&root)
            .args(other)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{other:?}");
        assert!(out.stdout.is_empty(), "{other:?}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            e.starts_with(&format!(
                "error: the argument '--root {}' cannot be used with '{}': --root checks the \
                 system files under that directory",
                root.display(),
                other[0]
            )),
            "{e}"
        );
        assert!(e.contains("would mix the two"), "{e}");
    }
    let missing = dir.path().join("missing");
    let out = plain(&missing, &[]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(
        t.contains(&format!("--root {}: no such directory", missing.display())),
        "{t}"
    );
    assert!(!t.contains("not a directory"), "{t}");
}

/// Issue 15, item 9: "Checking for a CA CRL: PASS" meant "no CRL (optional)" and "Checking
/// libvirtd.conf: PASS" meant "does not exist", said only in JSON. The text says it under
/// the PASS; --verbose says every pass's message and each line's id and file.
#[test]
fn text_shows_what_a_pass_found_and_verbose_shows_the_details() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let t = text(&run(dir.path(), &[]));
    let after = |name: &str| -> String {
        let lines: Vec<&str> = t.lines().collect();
        let i = lines
            .iter()
            .position(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no {name} in {t}"));
        assert!(lines[i].ends_with(": PASS"), "{t}");
        lines[i + 1].trim().to_owned()
    };
    let crl = dir.path().join("etc/pki/CA/cacrl.pem");
    assert_eq!(
        after("Checking for a CA CRL"),
        format!("no CRL at {} (optional)", crl.display())
    );
    let conf = dir.path().join("etc/libvirt/libvirtd.conf");
    assert_eq!(
        after("Checking libvirtd.conf"),
        format!(
            "{} does not exist: libvirtd uses its defaults",
            conf.display()
        )
    );
    // Other passes stay one line.
    let lines: Vec<&str> = t.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains("Checking if CA cert exists"))
        .unwrap();
    assert!(lines[i + 1].contains("Checking CA cert access"), "{t}");

    let t = text(&run(dir.path(), &["--verbose", "trust"]));
    let cacert = dir.path().join("etc/pki/CA/cacert.pem");
    assert!(
        t.contains(&format!(
            "Checking if CA cert exists{}: PASS\n        {} exists\n        id: trust.ca_cert, \
             file: {}\n",
            " ".repeat(69 - "Checking if CA cert exists".len()),
            cacert.display(),
            cacert.display()
        )),
        "{t}"
    );
}

/// Issue 15, item 9: a group-readable key was reported twice, as "Checking key access"
/// (the file audit) and "Checking cert properties: file-mode" (the sanity check). Once now.
#[test]
fn a_group_readable_key_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    chmod(
        &dir.path().join("etc/pki/libvirt/private/serverkey.pem"),
        0o640,
    );
    let (_, v) = json(dir.path(), &["server"]);
    let about: Vec<&Value> = checks(&v)
        .iter()
        .filter(|c| c["status"] == "warn" && c["message"].as_str().unwrap().contains("group"))
        .collect();
    assert_eq!(about.len(), 1, "{v}");
    assert_eq!(about[0]["id"], "server.key_mode", "{v}");
    assert!(checks(&v).iter().all(|c| c["rule"] != "file-mode"), "{v}");
    if is_root() {
        assert_eq!(v["summary"]["warn"], 1, "{v}");
    }
}

/// Issue 15, item 9: every check has an id in JSON, unique in the report, and these ids are
/// stable: scripts use them instead of the sentences. The list is the contract; change it
/// only by adding.
#[test]
fn every_check_has_a_stable_unique_id() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    conf(
        dir.path(),
        "listen_tls = 1\ntls_allowed_dn_list = [\"C=GB,O=Test,CN=client1\", \"CN=other\"]\n",
    );
    let (_, v) = json(dir.path(), &[]);
    let ids: Vec<&str> = checks(&v)
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    let expected = [
        "trust.pki_dir",
        "trust.pki_dir_mode",
        "trust.ca_dir",
        "trust.ca_dir_mode",
        "trust.ca_cert",
        "trust.ca_cert_mode",
        "trust.ca_crl",
        "trust.cert_properties",
        "server.cert_dir",
        "server.cert_dir_mode",
        "server.key_dir",
        "server.key_dir_mode",
        "server.cert",
        "server.cert_mode",
        "server.key",
        "server.key_mode",
        "server.cert_properties",
        "server.hostname",
        "client.cert_dir",
        "client.cert_dir_mode",
        "client.key_dir",
        "client.key_dir_mode",
        "client.cert",
        "client.cert_mode",
        "client.key",
        "client.key_mode",
        "client.cert_properties",
        "conf.parse",
        "conf.key_file_cert_file_ca_file",
        "conf.tls_allowed_dn_list.pattern",
        "conf.tls_allowed_dn_list.pattern.2",
        "conf.tls_allowed_dn_list.client",
    ];
    for id in expected {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    for id in &ids {
        let (scope, item) = id.split_once('.').unwrap();
        assert!(
            ["trust", "server", "client", "conf"].contains(&scope),
            "{id}"
        );
        assert!(
            item.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c)),
            "{id}"
        );
    }
    // A finding's id names its rule; the CRL and a load failure have theirs.
    chmod(
        &dir.path().join("etc/pki/libvirt/private/serverkey.pem"),
        0o600,
    );
    write(
        &dir.path().join("etc/pki/libvirt/clientcert.pem"),
        b"not a certificate\n",
        0o644,
    );
    let (_, v) = json(dir.path(), &["client"]);
    assert!(
        checks(&v).iter().any(|c| c["id"] == "client.cert_load"),
        "{v}"
    );
}

/// Issue 15, item 7: what makes a machine without server files a server all the same: a
/// libvirtd.conf that listens for TLS or names the server's files. A libvirtd.conf that
/// libvirtd cannot parse is reported on a client-only machine too.
#[test]
fn libvirtd_conf_decides_whether_a_client_only_machine_is_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    fs::remove_file(root.join("etc/pki/libvirt/servercert.pem")).unwrap();
    fs::remove_file(root.join("etc/pki/libvirt/private/serverkey.pem")).unwrap();
    conf(root, "listen_tls = 1\n");
    let (code, v) = plain_json(root, &[]);
    assert_eq!(code, 1, "{v}");
    assert!(!find(&v, "fail", "servercert.pem does not exist").is_empty());
    conf(root, "listen_tls = 0\n");
    let (_, v) = plain_json(root, &[]);
    assert!(
        checks(&v).iter().any(|c| c["id"] == "server.skipped"),
        "{v}"
    );
    assert!(checks(&v).iter().all(|c| c["scope"] != "conf"), "{v}");
    conf(root, "listen_tls = [\n");
    let (code, v) = plain_json(root, &[]);
    assert_eq!(code, 1, "{v}");
    assert!(
        checks(&v).iter().any(|c| c["id"] == "server.skipped"),
        "{v}"
    );
    assert!(
        checks(&v)
            .iter()
            .any(|c| c["id"] == "conf.parse" && c["status"] == "fail"),
        "{v}"
    );
}

/// A setting libvirtd does not know has an id of its own (`conf.unknown_setting.NAME`): a typo
/// in another case (`LISTEN_TCP`) must not take the id of the setting it resembles.
#[test]
fn an_unknown_setting_never_takes_a_known_settings_id() {
    let dir = tempfile::tempdir().unwrap();
    system_root(dir.path());
    let file = dir.path().join("case.conf");
    write(&file, b"LISTEN_TCP = 1\ntls_alowed_dn_list = []\n", 0o644);
    let v = json_conf(dir.path(), &file, &[]);
    let ids: Vec<&str> = checks(&v)
        .iter()
        .filter_map(|c| c["id"].as_str())
        .filter(|id| id.starts_with("conf."))
        .collect();
    assert!(ids.contains(&"conf.unknown_setting.listen_tcp"), "{ids:?}");
    assert!(
        ids.contains(&"conf.unknown_setting.tls_alowed_dn_list"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"conf.listen_tcp"), "{ids:?}");
}

// Issue 15 review (i15r-lib): numbers libvirtd refuses to start with.

/// `max_workers = 0` and `tcp_min_ssf = 10` in libvirtd.conf: libvirt's
/// daemonConfigLoadOptions refuses both, so libvirtd does not start, while a plain
/// `validate --root R` said nothing. Each is a FAIL at its line with the value to write.
#[test]
fn libvirtd_conf_numbers_that_stop_libvirtd_fail_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    let file = conf(root, "max_workers = 0\ntcp_min_ssf = 10\n");
    let (code, v) = plain_json(root, &["--hostname", HOST]);
    assert_eq!(code, 1, "libvirtd refuses to start: {v}");
    let f = file.display();
    let workers = find(
        &v,
        "fail",
        &format!("{f}:1: max_workers = 0: 'max_workers' must be greater than 0"),
    );
    assert_eq!(workers.len(), 1, "{v}");
    assert!(workers[0]["message"]
        .as_str()
        .unwrap()
        .ends_with("libvirtd refuses to start"));
    assert_eq!(
        workers[0]["fix"],
        "max_workers = 20 (libvirt's default), or any number from 1"
    );
    let ssf = find(
        &v,
        "fail",
        &format!("{f}:2: tcp_min_ssf = 10: minimum SSF levels lower than 112"),
    );
    assert_eq!(ssf.len(), 1, "{v}");
    assert!(ssf[0]["fix"]
        .as_str()
        .unwrap()
        .starts_with("tcp_min_ssf = 112"));

    let out = plain(root, &["--hostname", HOST]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("'max_workers' must be greater than 0"), "{t}");
    assert!(!t.trim_end().ends_with(": OK"), "{t}");

    // The bounds themselves are fine.
    conf(root, "max_workers = 1\ntcp_min_ssf = 112\n");
    let (_, v) = plain_json(root, &["--hostname", HOST]);
    assert!(find(&v, "fail", "max_workers").is_empty(), "{v}");
    assert!(find(&v, "fail", "tcp_min_ssf").is_empty(), "{v}");
}

/// The rest of the class: a `unix_sock_*_perms` mode libvirtd cannot parse as octal makes
/// it exit while setting up its sockets (remote_daemon.c); validate said nothing.
#[test]
fn a_socket_mode_libvirtd_cannot_parse_fails_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    let file = conf(
        root,
        "unix_sock_group = \"libvirt\"\nunix_sock_rw_perms = \"rwxrwx---\"\n",
    );
    let (code, v) = plain_json(root, &["--hostname", HOST]);
    assert_eq!(code, 1, "{v}");
    let found = find(
        &v,
        "fail",
        &format!(
            "{}:2: unix_sock_rw_perms = \"rwxrwx---\" is not an octal mode",
            file.display()
        ),
    );
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(
        found[0]["fix"],
        "unix_sock_rw_perms = \"0770\" (a mode in octal digits, as chmod takes it)"
    );
}

/// Issue 15 review: the text summary said "1 warnings" (and "1 checks"); one is singular.
#[test]
fn the_summary_says_one_warning_in_the_singular() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let d = user_home(&home);
    chmod(&d, 0o755);
    let out = bin()
        .env("HOME", &home)
        .current_dir(dir.path())
        .args(["validate", "--user", "trust"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let summary = t.lines().last().unwrap();
    assert!(
        summary.contains(" passed, 1 warning, 0 failed") && summary.ends_with("OK, with warnings"),
        "{t}"
    );
    assert!(!t.contains("1 warnings"), "{t}");
}

/// The issue's case: a server certificate five days from expiry gave "11 passed, 0 warnings:
/// OK". Issued with `--days 5` and installed by the CLI, it is now a WARN with the days left
/// (text and JSON, with an id), the exit status stays 0, `--warn-days` moves the horizon, and
/// the command the fix suggests makes a certificate that no longer warns.
#[test]
fn a_server_certificate_five_days_from_expiry_warns_with_the_days_left() {
    use common::shell::shell_words;
    use common::{ca_init, s, virtpki};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = d.join("root");
    ca_init(d, &d.join("ca"));
    let issue = |out: &str, extra: &[&str]| {
        let mut args = vec!["issue", "server", "--ca-dir", "ca", "--key-type", "ecdsa"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out-dir", out]);
        virtpki(d, &args).expect(0);
        let from = d.join(out);
        virtpki(
            d,
            &[
                "install",
                "--role",
                "server",
                "--ca-dir",
                "ca",
                "--from",
                s(&from),
                "--root",
                s(&root),
                "--force",
            ],
        )
        .expect(0);
    };
    issue("soon", &["--cn", HOST, "--days", "5"]);

    let out = run(&root, &["server"]);
    let t = text(&out);
    let line = t
        .lines()
        .find(|l| l.contains("Checking cert properties: expires-soon"))
        .unwrap_or_else(|| panic!("no expiry line:\n{t}"));
    assert!(line.ends_with(": WARN"), "{t}");
    // `--days 5` a moment ago: 5 days, or 4 whole days and some hours, left.
    assert!(
        t.contains("expires in 4 days, on ") || t.contains("expires in 5 days, on "),
        "{t}"
    );
    assert!(t.contains("libvirtd refuses to start"), "{t}");
    assert!(!t.contains(" 0 warnings"), "{t}");
    if is_root() {
        // As root the rest of the setup is right: warnings only.
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert!(t.trim_end().ends_with("OK, with warnings"), "{t}");
    }

    let (_, v) = json(&root, &["server"]);
    let warned = find(&v, "warn", "expires in ");
    assert_eq!(warned.len(), 1, "{v}");
    let w = warned[0];
    assert_eq!(w["id"], "server.cert_properties.expires_soon", "{w}");
    assert_eq!(w["rule"], "expires-soon", "{w}");
    assert_eq!(
        w["file"],
        s(&root.join("etc/pki/libvirt/servercert.pem")),
        "{w}"
    );
    let fix = w["fix"].as_str().unwrap();

    // The horizon: at most 5 days left is outside 3 days, inside 6; 0 is off.
    for (days, warns) in [("3", false), ("6", true), ("0", false), ("3650", true)] {
        let (_, v) = json(&root, &["server", "--warn-days", days]);
        let found = find(&v, "warn", "The server certificate").len();
        assert_eq!(found, usize::from(warns), "--warn-days {days}: {v}");
    }
    for bad in ["3651", "-1", "many"] {
        let out = run(&root, &["server", "--warn-days", bad]);
        assert_eq!(out.status.code(), Some(2), "--warn-days {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        // clap names the option, or (for -1) takes it for an option of its own.
        assert!(err.contains("--warn-days") || err.contains("'-1'"), "{err}");
    }

    let fill = |cmd: &str| -> Vec<String> {
        shell_words(cmd)
            .into_iter()
            .map(|w| match w.as_str() {
                "CA_DIR" => "ca".to_owned(),
                "DIR" => "renewed".to_owned(),
                _ => w,
            })
            .collect()
    };
    // The fix's renewal, its placeholders filled in, run as written (the installed certificate
    // named, the key kept), makes the warning go.
    let at = fix.find("virtpki renew").unwrap();
    let renew = fill(fix[at..].split(" on the CA's machine").next().unwrap());
    assert_eq!(
        renew,
        [
            "virtpki",
            "renew",
            "--ca-dir",
            "ca",
            s(&root.join("etc/pki/libvirt/servercert.pem")),
            "--out-dir",
            "renewed"
        ],
        "{fix}"
    );
    let renew_args: Vec<&str> = renew[1..].iter().map(String::as_str).collect();
    virtpki(d, &renew_args).expect(0);
    std::fs::copy(
        root.join("etc/pki/libvirt/private/serverkey.pem"),
        d.join("renewed/serverkey.pem"),
    )
    .unwrap();
    virtpki(
        d,
        &[
            "install",
            "--role",
            "server",
            "--ca-dir",
            "ca",
            "--from",
            "renewed",
            "--root",
            s(&root),
            "--force",
        ],
    )
    .expect(0);
    let (_, v) = json(&root, &["server"]);
    assert!(find(&v, "warn", "expires in").is_empty(), "{v}");
    std::fs::remove_dir_all(d.join("renewed")).unwrap();

    // The fix's other way, a new key and certificate, issues one that does not warn either.
    let at = fix.find("virtpki issue server").unwrap();
    let words = fill(fix[at..].strip_suffix(')').unwrap());
    assert_eq!(words[..3], ["virtpki", "issue", "server"], "{fix}");
    // Between "virtpki issue server --ca-dir ca" and "--out-dir renewed".
    assert_eq!(words[3..5], ["--ca-dir", "ca"], "{fix}");
    assert_eq!(words[words.len() - 2..], ["--out-dir", "renewed"], "{fix}");
    let extra: Vec<&str> = words[5..words.len() - 2]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(extra, ["--dn", &format!("CN={HOST}")], "{fix}");
    issue("renewed", &extra);
    let (_, v) = json(&root, &["server"]);
    assert!(find(&v, "warn", "expires in").is_empty(), "{v}");
}

/// A CA near its end is said once, under TRUST, although the server's and the client's checks
/// load it too; each role's own certificate has its own line.
#[test]
fn a_ca_near_expiry_is_reported_once() {
    use common::{s, virtpki};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = d.join("root");
    virtpki(
        d,
        &[
            "ca",
            "init",
            "--dir",
            "ca",
            "--key-type",
            "ecdsa",
            "--days",
            "10",
        ],
    )
    .expect(0);
    for (role, name, out) in [("server", "--cn", HOST), ("client", "--dn", CLIENT_DN)] {
        virtpki(
            d,
            &[
                "issue",
                role,
                "--ca-dir",
                "ca",
                name,
                out,
                "--days",
                "9",
                "--key-type",
                "ecdsa",
                "--out-dir",
                role,
            ],
        )
        .expect(0);
        let from = d.join(role);
        virtpki(
            d,
            &[
                "install",
                "--role",
                role,
                "--ca-dir",
                "ca",
                "--from",
                s(&from),
                "--root",
                s(&root),
            ],
        )
        .expect(0);
    }
    let (_, v) = json(&root, &[]);
    let ca = find(&v, "warn", "The CA certificate");
    assert_eq!(ca.len(), 1, "{v}");
    assert_eq!(ca[0]["id"], "trust.cert_properties.expires_soon", "{v}");
    assert_eq!(find(&v, "warn", "The server certificate").len(), 1, "{v}");
    assert_eq!(find(&v, "warn", "The client certificate").len(), 1, "{v}");
}

/// With the system files and no --libvirtd-conf, the configuration checked is the one the
/// running daemon reads, found as `reload` finds it (its locked pid file, /proc/PID under the
/// root): the file its `-f` names, not /etc/libvirt/libvirtd.conf. Which file and why is a
/// line of the report (`conf.source`, its message shown in text) and `configuration` in JSON.
#[test]
fn the_conf_file_the_running_daemon_was_started_with_is_checked() {
    use virtpki_tools::daemon::running;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    let default = conf(root, "listen_tls = 1\n");
    let custom = root.join("etc/libvirt/custom.conf");
    write(&custom, b"tls_allowed_dn_list = []\n", 0o644);
    let no_client = "NO client may connect";
    // No daemon: the default file, and why.
    let (_, v) = json(root, &[]);
    assert!(find(&v, "warn", no_client).is_empty(), "{v}");
    let c = &v["configuration"];
    assert_eq!(c["file"], default.to_str().unwrap(), "{v}");
    assert_eq!(c["source"], "unknown", "{v}");
    assert_eq!(c["daemon"], "libvirtd", "{v}");
    assert_eq!(c["pid"], Value::Null, "{v}");
    assert!(
        c["note"].as_str().unwrap().contains("no pid file at"),
        "{v}"
    );
    // Started with -f custom.conf: that file is checked, and said.
    let d = running(
        root,
        "libvirtd",
        &[
            "/usr/sbin/libvirtd",
            "--listen",
            "-f",
            "/etc/libvirt/custom.conf",
        ],
    );
    let (_, v) = json(root, &[]);
    assert_eq!(find(&v, "warn", no_client).len(), 1, "{v}");
    let c = &v["configuration"];
    assert_eq!(c["file"], custom.to_str().unwrap(), "{v}");
    assert_eq!(c["source"], "command_line", "{v}");
    assert_eq!(c["pid"], d.pid(), "{v}");
    let line = checks(&v)
        .iter()
        .find(|c| c["id"] == "conf.source")
        .unwrap_or_else(|| panic!("no conf.source in {v}"));
    assert_eq!(line["status"], "pass", "{v}");
    assert_eq!(line["file"], custom.to_str().unwrap(), "{v}");
    let t = text(&run(root, &[]));
    let said = format!(
        "checked {}, the configuration file it was started with (-f/--config, pid {}), not \
         /etc/libvirt/libvirtd.conf",
        custom.display(),
        d.pid()
    );
    let lines: Vec<&str> = t.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains("Finding libvirtd's configuration file"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(lines[i].ends_with(": PASS"), "{t}");
    assert_eq!(lines[i + 1].trim(), said, "{t}");
    // --libvirtd-conf wins over the running daemon's.
    let (_, v) = json(root, &["--libvirtd-conf", default.to_str().unwrap()]);
    assert!(find(&v, "warn", no_client).is_empty(), "{v}");
    assert_eq!(v["configuration"]["source"], "given", "{v}");
    assert_eq!(v["configuration"]["file"], default.to_str().unwrap(), "{v}");
    assert!(!checks(&v).iter().any(|c| c["id"] == "conf.source"), "{v}");
    // The daemon gone, its pid file left (unlocked): the default file again, and why.
    drop(d);
    let (_, v) = json(root, &[]);
    assert!(find(&v, "warn", no_client).is_empty(), "{v}");
    assert_eq!(v["configuration"]["source"], "unknown", "{v}");
    assert!(
        v["configuration"]["note"]
            .as_str()
            .unwrap()
            .contains("is not locked"),
        "{v}"
    );
    // Started without -f: the default file, the one it runs with.
    let d = running(root, "libvirtd", &["/usr/sbin/libvirtd", "--listen"]);
    let (_, v) = json(root, &[]);
    assert_eq!(v["configuration"]["source"], "default", "{v}");
    assert_eq!(v["configuration"]["pid"], d.pid(), "{v}");
    assert_eq!(v["configuration"]["file"], default.to_str().unwrap(), "{v}");
}

/// Under the modular daemons virtproxyd listens for TLS: when libvirtd does not run and
/// virtproxyd does, its file is the one checked (here the one its -f names).
#[test]
fn the_running_virtproxyds_conf_file_is_checked_when_libvirtd_does_not_run() {
    use virtpki_tools::daemon::running;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    conf(root, "listen_tls = 1\n");
    let proxy = root.join("etc/libvirt/proxy.conf");
    write(&proxy, b"tls_allowed_dn_list = []\n", 0o644);
    let d = running(
        root,
        "virtproxyd",
        &["/usr/sbin/virtproxyd", "--config=/etc/libvirt/proxy.conf"],
    );
    let (_, v) = json(root, &[]);
    assert_eq!(find(&v, "warn", "NO client may connect").len(), 1, "{v}");
    let c = &v["configuration"];
    assert_eq!(c["daemon"], "virtproxyd", "{v}");
    assert_eq!(c["file"], proxy.to_str().unwrap(), "{v}");
    assert_eq!(c["pid"], d.pid(), "{v}");
    let t = text(&run(root, &[]));
    assert!(t.contains("Finding virtproxyd's configuration file"), "{t}");
    // Without -f: /etc/libvirt/virtproxyd.conf, which is not there: its defaults.
    let d = running(root, "virtproxyd", &["/usr/sbin/virtproxyd"]);
    let (_, v) = json(root, &[]);
    let file = root.join("etc/libvirt/virtproxyd.conf");
    assert_eq!(v["configuration"]["file"], file.to_str().unwrap(), "{v}");
    assert_eq!(v["configuration"]["pid"], d.pid(), "{v}");
    assert_eq!(
        find(
            &v,
            "pass",
            "virtproxyd.conf does not exist: virtproxyd uses its defaults"
        )
        .len(),
        1,
        "{v}"
    );
}

/// A running daemon whose configuration file cannot be checked: one named by a relative -f
/// (which file cannot be told) is a warning with the fix; one gone since the start fails
/// (the daemon would not start again). Neither falls back to the default file.
#[test]
fn a_running_daemons_conf_file_that_cannot_be_read_is_said() {
    use virtpki_tools::daemon::running;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    conf(root, "tls_allowed_dn_list = []\n");
    let _d = running(root, "libvirtd", &["libvirtd", "-f", "custom.conf"]);
    let (_, v) = json(root, &[]);
    let w = find(&v, "warn", "a relative path");
    assert_eq!(w.len(), 1, "{v}");
    assert_eq!(w[0]["id"], "conf.source", "{v}");
    assert!(
        w[0]["fix"].as_str().unwrap().contains("--libvirtd-conf"),
        "{v}"
    );
    assert!(find(&v, "warn", "NO client may connect").is_empty(), "{v}");
    assert_eq!(v["configuration"], Value::Null, "{v}");
    let d = running(
        root,
        "libvirtd",
        &["libvirtd", "-f", "/etc/libvirt/gone.conf"],
    );
    let (code, v) = json(root, &[]);
    assert_eq!(code, 1, "{v}");
    let f = find(&v, "fail", "gone.conf does not exist, but libvirtd");
    assert_eq!(f.len(), 1, "{v}");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("(pid {}) was started with it", d.pid())),
        "{v}"
    );
    assert!(find(&v, "warn", "NO client may connect").is_empty(), "{v}");
    assert_eq!(v["configuration"]["source"], "command_line", "{v}");
}

/// The default configuration file, which nobody gave, that the caller may not read: a warning
/// naming the file and saying to run as root (who can check it), not a failure saying libvirtd
/// would refuse it, nor exit 2 with no report. As root (who reads any file) validate runs as
/// nobody through setpriv, on root's 0600 file; otherwise on the caller's file made 0000.
#[test]
fn a_conf_file_the_caller_may_not_read_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    let file = conf(root, "listen_tls = 1\n");
    let out = if is_root() {
        if Command::new("setpriv").arg("--version").output().is_err() {
            return; // no way to drop root here
        }
        chmod(&file, 0o600);
        chmod(root, 0o755);
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_virtpki"))
            .args(["validate", "--root"])
            .arg(root)
            .args(["--system", "--hostname", HOST, "--json"])
            .output()
            .unwrap()
    } else {
        chmod(&file, 0o000);
        run(root, &["--json"])
    };
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_ne!(out.status.code(), Some(2), "{v}");
    let line = checks(&v)
        .iter()
        .find(|c| c["id"] == "conf.parse")
        .unwrap_or_else(|| panic!("no conf.parse line: {v}"));
    assert_eq!(line["status"], "warn", "{v}");
    assert_eq!(line["file"], file.to_str().unwrap(), "{v}");
    let message = line["message"].as_str().unwrap();
    assert!(message.contains(file.to_str().unwrap()), "{v}");
    assert!(
        message.contains("the settings libvirtd reads are not checked"),
        "{v}"
    );
    assert_eq!(line["fix"], "run virtpki validate as root", "{v}");
}

/// The line about a running daemon whose file cannot be told names that daemon: virtproxyd
/// (libvirtd not running) started with a relative -f is "Finding virtproxyd's configuration
/// file", not libvirtd's.
#[test]
fn a_relative_conf_file_of_virtproxyd_is_said_of_virtproxyd() {
    use virtpki_tools::daemon::running;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    conf(root, "listen_tls = 1\n");
    let _d = running(root, "virtproxyd", &["virtproxyd", "-f", "proxy.conf"]);
    let (_, v) = json(root, &[]);
    let w = find(&v, "warn", "a relative path");
    assert_eq!(w.len(), 1, "{v}");
    assert_eq!(w[0]["id"], "conf.source", "{v}");
    assert_eq!(
        w[0]["name"], "Finding virtproxyd's configuration file",
        "{v}"
    );
    assert!(
        w[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("virtproxyd (pid"),
        "{v}"
    );
}

/// The daemon reads its configuration file as root when it starts: a file another user may
/// write, or one reached through a directory (or a symbolic link in one) another user may
/// write, hands that user the daemon's TLS settings (tls_no_verify_certificate, the key).
/// With the system files that is a failure naming the file or directory; only root's files
/// in root's directories pass (a sticky directory such as /tmp holding root's file passes).
/// A file given with --libvirtd-conf (a draft, maybe) is not held to it.
#[test]
fn a_conf_file_others_may_write_fails() {
    use std::os::unix::fs::PermissionsExt;
    use virtpki_tools::daemon::running;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    let default = conf(root, "listen_tls = 1\n");
    let access = |v: &Value| -> Value {
        checks(v)
            .iter()
            .find(|c| c["id"] == "conf.file_mode")
            .unwrap_or_else(|| panic!("no conf.file_mode in {v}"))
            .clone()
    };
    let (_, v) = json(root, &[]);
    assert_eq!(access(&v)["status"], "pass", "{v}");
    // The file itself writable by group or others.
    for mode in [0o664, 0o646] {
        chmod(&default, mode);
        let (code, v) = json(root, &[]);
        let c = access(&v);
        assert_eq!((code, c["status"].as_str()), (1, Some("fail")), "{v}");
        let m = c["message"].as_str().unwrap();
        assert!(
            m.contains(&format!("{} is writable", default.display()))
                && m.contains(&format!("{mode:04o}")),
            "{m}"
        );
        assert!(c["fix"].as_str().unwrap().contains("chmod go-w"), "{v}");
    }
    chmod(&default, 0o644);
    // Given with --libvirtd-conf: a file to check, maybe a draft anywhere, not the one the
    // daemon reads: not held to the rule.
    chmod(&default, 0o666);
    let (_, v) = json(root, &["--libvirtd-conf", default.to_str().unwrap()]);
    assert!(
        !checks(&v).iter().any(|c| c["id"] == "conf.file_mode"),
        "{v}"
    );
    chmod(&default, 0o644);
    // A running daemon's -f: a symbolic link in a directory others may write, to root's file.
    let home = root.join("home/alice");
    fs::create_dir_all(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&default, home.join("libvirtd.conf")).unwrap();
    let _d = running(
        root,
        "libvirtd",
        &["/usr/sbin/libvirtd", "-f", "/home/alice/libvirtd.conf"],
    );
    let (code, v) = json(root, &[]);
    assert_eq!(v["configuration"]["source"], "command_line", "{v}");
    let c = access(&v);
    assert_eq!((code, c["status"].as_str()), (1, Some("fail")), "{v}");
    let m = c["message"].as_str().unwrap();
    assert!(
        m.contains(&format!("{} is writable", home.display())),
        "{m}"
    );
    let fix = c["fix"].as_str().unwrap();
    assert!(
        fix.starts_with("keep the file in a directory only root may write")
            && !fix.contains("chown"),
        "{fix}"
    );
    // A sticky directory others may write (as /tmp) holding root's file is safe.
    fs::remove_file(home.join("libvirtd.conf")).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(&default, home.join("libvirtd.conf")).unwrap();
    chmod(&home.join("libvirtd.conf"), 0o600);
    let (_, v) = json(root, &[]);
    assert_eq!(access(&v)["status"], "pass", "{v}");
}

/// The configuration file a running daemon was started with that cannot be read (here a
/// directory) is a failed line naming the file, and the rest of the report is still given
/// (exit 1, not 2: the file was not given on the command line, so it is no usage error).
#[test]
fn a_running_daemons_conf_file_that_is_no_file_is_a_failed_line() {
    use virtpki_tools::daemon::running;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    conf(root, "listen_tls = 1\n");
    let d_conf = root.join("etc/libvirt/d.conf");
    fs::create_dir_all(&d_conf).unwrap();
    let _d = running(
        root,
        "libvirtd",
        &["/usr/sbin/libvirtd", "-f", "/etc/libvirt/d.conf"],
    );
    let (code, v) = json(root, &[]);
    assert_eq!(code, 1, "{v}");
    let f = find(&v, "fail", "is a directory");
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["id"], "conf.parse", "{v}");
    assert_eq!(f[0]["file"], d_conf.to_str().unwrap(), "{v}");
    assert!(
        f[0]["message"].as_str().unwrap().contains("libvirtd (pid"),
        "{v}"
    );
    assert!(!find(&v, "pass", "libvirt's load-time checks pass for the server").is_empty());
    // Given with --libvirtd-conf, the same is a usage error (exit 2), as before.
    let out = run(root, &["--libvirtd-conf", d_conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// libvirtd and virtproxyd both running (libvirt's units conflict, a manual start does not):
/// libvirtd's file is checked, and virtproxyd's, which is not, is a warning naming it and
/// its pid, with how to check it.
#[test]
fn a_second_running_daemon_whose_file_is_not_checked_is_said() {
    use virtpki_tools::daemon::running;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    let default = conf(root, "listen_tls = 1\n");
    let _lv = running(root, "libvirtd", &["/usr/sbin/libvirtd"]);
    let (_, v) = json(root, &[]);
    assert!(find(&v, "warn", "runs too").is_empty(), "{v}");
    let proxy = running(
        root,
        "virtproxyd",
        &["/usr/sbin/virtproxyd", "-f", "/etc/libvirt/p.conf"],
    );
    let (_, v) = json(root, &[]);
    assert_eq!(v["configuration"]["daemon"], "libvirtd", "{v}");
    assert_eq!(v["configuration"]["file"], default.to_str().unwrap(), "{v}");
    let w = find(&v, "warn", "virtproxyd (pid");
    assert_eq!(w.len(), 1, "{v}");
    assert_eq!(w[0]["id"], "conf.other_daemon", "{v}");
    assert_eq!(
        w[0]["name"], "Finding virtproxyd's configuration file",
        "{v}"
    );
    let p = root.join("etc/libvirt/p.conf");
    let m = w[0]["message"].as_str().unwrap();
    assert!(
        m.contains(&format!("virtproxyd (pid {}) runs too", proxy.pid()))
            && m.contains(&p.display().to_string()),
        "{m}"
    );
    assert!(
        w[0]["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("--libvirtd-conf {}", p.display())),
        "{v}"
    );
}

/// validate run in a pid namespace of its own (a container) while the pid file's lock is held
/// outside it: fcntl names no pid it can see (0), so the pid file is not believed and that
/// is said. As root with unshare(1) only (a new pid namespace needs it).
#[test]
fn a_pid_file_locked_from_another_pid_namespace_is_not_believed() {
    use virtpki_tools::daemon::running;
    if !is_root() {
        eprintln!("skipped: a new pid namespace needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    system_root(root);
    conf(root, "listen_tls = 1\n");
    let _d = running(root, "libvirtd", &["/usr/sbin/libvirtd"]);
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            env!("CARGO_BIN_EXE_virtpki"),
            "validate",
            "--json",
        ])
        .arg("--root")
        .arg(root)
        .args(["--system", "--hostname", HOST])
        .output()
        .expect("unshare(1), from util-linux");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["configuration"]["source"], "unknown", "{v}");
    assert!(
        v["configuration"]["note"]
            .as_str()
            .unwrap()
            .contains("is locked by a process of another pid namespace"),
        "{v}"
    );
}
