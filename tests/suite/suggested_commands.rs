//! Shell commands the library suggests ("chmod 0600 PATH") name the file as one shell word,
//! and names from certificates in error messages are quoted list items: a file called
//! `key.pem; touch pwned`, pasted as the fix says, must not run `touch pwned`.

use crate::common;

use std::path::{Path, PathBuf};

use common::openssl_args::NEW_P256_KEY;
use common::shell::shell_words;
use common::*;
use virtpki::file_audit::{self, FileKind, FileSet, FileStat};
use virtpki::{Certificate, Context, ContextFlags, KnownServers, Role, Rule, Source};

const EVIL: &str = "; touch pwned";

/// The command in `text` that starts with `start` and runs to the end or a closing backtick.
fn command_in<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in {text:?}"));
    let rest = &text[at..];
    rest.split('`').next().unwrap()
}

fn assert_command(text: &str, expected: &[&str]) {
    let cmd = command_in(text, &format!("{} ", expected[0]));
    assert_eq!(shell_words(cmd), expected, "{text}");
}

#[test]
fn the_test_splitter_refuses_what_a_shell_would_run() {
    assert_eq!(shell_words(r"a 'b c'\''d' e\ f"), ["a", "b c'd", "e f"]);
    assert!(std::panic::catch_unwind(|| shell_words("chmod 0600 k.pem; touch pwned")).is_err());
}

#[test]
fn file_audit_fixes_name_the_path_as_one_word() {
    let path = format!("/home/u/.pki/libvirt/clientkey.pem{EVIL}");
    let p = Path::new(&path);
    let set = FileSet::User {
        uid: 1000,
        gid: 1000,
    };
    let key = FileKind::Key(Role::Client);
    let stat = |uid, mode, is_dir| FileStat {
        uid,
        gid: 1000,
        mode,
        is_dir,
    };
    let other_readable = file_audit::audit(p, key, set, &stat(1000, 0o644, false)).unwrap();
    assert_command(&other_readable.fix, &["chmod", "0600", &path]);
    let group_readable = file_audit::audit(p, key, set, &stat(1000, 0o640, false)).unwrap();
    assert_command(&group_readable.fix, &["chmod", "0600", &path]);
    let other_owner = file_audit::audit(p, key, set, &stat(0, 0o600, false)).unwrap();
    assert_command(&other_owner.fix, &["chown", "1000:1000", &path]);
    let not_dir = file_audit::audit(p, FileKind::Dir, set, &stat(1000, 0o700, false)).unwrap();
    assert_command(&not_dir.fix, &["mkdir", "-m", "0700", &path]);
    let system_group = file_audit::audit(
        p,
        FileKind::Public,
        FileSet::System,
        &FileStat {
            uid: 0,
            gid: 5,
            mode: 0o644,
            is_dir: false,
        },
    )
    .unwrap();
    assert_command(&system_group.fix, &["chown", "root:root", &path]);
}

/// A client's files in `dir`, the key readable by its group, loaded as libvirt would.
fn load_with_group_readable_key(dir: &Path) -> virtpki::Report {
    let ca = self_signed(&Spec::ca("Test CA"));
    let leaf = signed_by(&Spec::client("client"), &ca);
    write(dir, "cacert.pem", ca.pem(), 0o644);
    write(dir, "clientcert.pem", leaf.pem(), 0o644);
    write(dir, "clientkey.pem", leaf.key_pem(), 0o640);
    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(now()));
    let env = virtpki::locations::Environment {
        root: dir.join("no-root"),
        home: None,
        uid: 0,
    };
    let files = virtpki::locations::libvirt(&env, Role::Client, Some(dir));
    ctx.load_files(&files).unwrap();
    ctx.check(Role::Client)
}

#[test]
fn sanity_key_mode_fix_names_the_key_as_one_word() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(format!("pki{EVIL}"));
    std::fs::create_dir(&dir).unwrap();
    let report = load_with_group_readable_key(&dir);
    let finding = report
        .findings
        .iter()
        .find(|f| f.rule == Rule::FileMode)
        .unwrap_or_else(|| panic!("no file mode finding: {}", report.to_text()));
    let key = dir.join("clientkey.pem");
    assert_command(&finding.fix, &["chmod", "0600", key.to_str().unwrap()]);
}

#[test]
fn known_servers_permission_errors_name_the_file_as_one_word() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(format!("known{EVIL}"));
    std::fs::create_dir(&dir).unwrap();
    let file: PathBuf = write(&dir, "known.pem", "", 0o666);
    // The file itself writable by others.
    let err = KnownServers::open(&file).unwrap_err().to_string();
    assert_command(&err, &["chmod", "go-w", file.to_str().unwrap()]);
    // Its directory writable by others.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = KnownServers::open(&file).unwrap_err().to_string();
    assert_command(&err, &["chmod", "go-w", dir.to_str().unwrap()]);
}

#[test]
fn a_common_name_in_a_mismatch_is_one_quoted_item() {
    let spec = Spec {
        dns: vec![],
        ..Spec::server("evil.example, victim.example")
    };
    let ca = self_signed(&Spec::ca("Test CA"));
    let leaf = signed_by(&spec, &ca);
    let cert = Certificate::from_der(leaf.der(), Source::Peer).unwrap();
    let err = virtpki::names::check(&cert, "victim.example", true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"its Common Name is "evil.example, victim.example""#),
        "{err}"
    );
}

#[test]
fn several_common_names_in_a_mismatch_are_quoted_items() {
    let dir = tempfile::tempdir().unwrap();
    // rcgen keeps one value per attribute type: openssl writes the two Common Names.
    openssl(
        dir.path(),
        &[
            &["req", "-x509"],
            NEW_P256_KEY,
            &[
                "-keyout",
                "k.pem",
                "-subj",
                "/CN=evil.example, victim.example/CN=x.example",
                "-out",
                "c.pem",
            ],
        ]
        .concat(),
    );
    let pem = std::fs::read_to_string(dir.path().join("c.pem")).unwrap();
    let cert = &virtpki::pem::parse_chain(&pem).unwrap()[0];
    let err = virtpki::names::check(cert, "victim.example", true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"2 Common Names ("evil.example, victim.example", x.example)"#),
        "{err}"
    );
}
