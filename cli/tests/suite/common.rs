//! Helpers of the CLI tests: run the built `virtpki`, make a CA and certificates with it.
#![allow(dead_code)]

/// The shell-word splitter and the shared `openssl req` arguments of the library's tests: one
/// copy for both crates, in the fixture kit (tools/).
pub use virtpki_tools::{openssl_args, shell};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What one run of `virtpki` did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the exit status is `code`.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit status {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The binary, with an environment that cannot reach the real home or configuration.
pub fn command(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_virtpki"));
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    cmd
}

/// Runs `virtpki ARGS` in `dir` with HOME=`dir`.
pub fn virtpki(dir: &Path, args: &[&str]) -> Run {
    finish(
        command(dir)
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run virtpki"),
    )
}

/// `virtpki ca init --dir CA` with an ECDSA key (fast), which must succeed.
pub fn ca_init(dir: &Path, ca: &Path) {
    virtpki(dir, &["ca", "init", "--dir", s(ca), "--key-type", "ecdsa"]).expect(0);
}

/// The first line of `text` that contains `needle`; panics with the whole text if none does.
pub fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

/// `virtpki issue client --dn DN` from the CA directory `ca` into `out`, with an ECDSA key.
pub fn issue_client(dir: &Path, ca: &str, dn: &str, out: &str) -> Run {
    virtpki(
        dir,
        &[
            "issue",
            "client",
            "--ca-dir",
            ca,
            "--dn",
            dn,
            "--key-type",
            "ecdsa",
            "--out-dir",
            out,
        ],
    )
}

/// `virtpki issue server --cn CN` from the CA directory `ca` into `out`, with an ECDSA key.
pub fn issue_server(dir: &Path, ca: &str, cn: &str, out: &str) -> Run {
    virtpki(
        dir,
        &[
            "issue",
            "server",
            "--ca-dir",
            ca,
            "--cn",
            cn,
            "--key-type",
            "ecdsa",
            "--out-dir",
            out,
        ],
    )
}

/// A CA in DIR/ca, a server certificate for localhost and 127.0.0.1 in DIR/server, a client
/// C=GB,O=Test,CN=client1 in DIR/client; ECDSA (fast).
pub fn pki(dir: &Path) -> Pki {
    let p = Pki {
        ca: dir.join("ca"),
        server: dir.join("server"),
        client: dir.join("client"),
    };
    ca_init(dir, &p.ca);
    virtpki(
        dir,
        &[
            "issue",
            "server",
            "--ca-dir",
            s(&p.ca),
            "--cn",
            "localhost",
            "--ip",
            "127.0.0.1",
            "--key-type",
            "ecdsa",
            "--out-dir",
            s(&p.server),
        ],
    )
    .expect(0);
    issue_client(dir, s(&p.ca), "C=GB,O=Test,CN=client1", s(&p.client)).expect(0);
    p
}

/// `virtpki crl revoke` of the client certificate of `p` (run in `dir`).
pub fn revoke_client(dir: &Path, p: &Pki) -> Run {
    let client = p.client.join("clientcert.pem");
    virtpki(dir, &["crl", "revoke", "--ca-dir", s(&p.ca), s(&client)])
}

pub struct Pki {
    pub ca: PathBuf,
    pub server: PathBuf,
    pub client: PathBuf,
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The certificates of a PEM file, parsed by the library.
pub fn certs(p: &Path) -> Vec<virtpki::Certificate> {
    virtpki::pem::parse_chain(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Whether the tests run as root (some cases only root can make).
pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the tests run as root; if not, says on stderr why the calling test checks nothing.
pub fn root_or_skip(why: &str) -> bool {
    let root = is_root();
    if !root {
        eprintln!("not root: {why}");
    }
    root
}

/// A home directory DIR/`name` that belongs to another user (uid 65534, gid 65533).
pub fn home_of_another_user(dir: &Path, name: &str) -> PathBuf {
    let home = dir.join(name);
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65533)).unwrap();
    home
}

/// `virtpki install --role ROLE` of `p`'s files for that role, then the `extra` arguments.
pub fn install(dir: &Path, extra: &[&str], role: &str, p: &Pki) -> Run {
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

/// `virtpki install --user --role client` of `p`'s client files, with HOME=`home`.
pub fn install_user_client(home: &Path, p: &Pki) -> Output {
    command(home)
        .args([
            "install",
            "--user",
            "--role",
            "client",
            "--ca-dir",
            s(&p.ca),
            "--from",
            s(&p.client),
        ])
        .output()
        .unwrap()
}

/// Writes `contents` to `path` with `mode`, making the missing directories above it.
pub fn write(path: &Path, contents: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Puts the certificate and key `issued` for `role` ("server" or "client") where libvirt
/// reads them under `root`: the certificate 0644, the key with `key_mode`.
pub fn place_issued(root: &Path, role: &str, issued: &virtpki::generate::Issued, key_mode: u32) {
    write(
        &root.join(format!("etc/pki/libvirt/{role}cert.pem")),
        issued.cert_pem.as_bytes(),
        0o644,
    );
    write(
        &root.join(format!("etc/pki/libvirt/private/{role}key.pem")),
        issued.key_pem.as_bytes(),
        key_mode,
    );
}

/// Fails the test unless `tool` is installed: scripts/install-test-deps.sh installs every tool
/// the tests use, so a missing one is a broken setup, never a reason to pass unchecked.
pub fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: run scripts/install-test-deps.sh (make test does)"
    );
}

/// [`virtpki`], stopped and failed after `secs` seconds: for a run that would block for good
/// (a read of a FIFO nobody writes to).
pub fn virtpki_within(dir: &Path, args: &[&str], secs: u64) -> Run {
    use std::process::Stdio;
    let out = tempfile::tempdir().unwrap();
    let (o, e) = (out.path().join("out"), out.path().join("err"));
    let mut child = command(dir)
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::from(std::fs::File::create(&o).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&e).unwrap()))
        .spawn()
        .expect("run virtpki");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed().as_secs() >= secs {
            let _ = child.kill();
            let _ = child.wait();
            panic!("virtpki {args:?} still ran after {secs} s (blocked on a FIFO?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&std::fs::read(&o).unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&std::fs::read(&e).unwrap()).into_owned(),
    }
}

/// What can stand where a credential file belongs without being one, as `virtpki` names it.
pub const NOT_FILES: [&str; 4] = ["a socket", "a named pipe (FIFO)", "a directory", "a device"];

/// Makes `kind` (one of [`NOT_FILES`]) at `path`; a device is a link to /dev/null (making a
/// device node needs root). The socket's listener is returned, to be kept while it is used.
pub fn make_not_file(path: &Path, kind: &str) -> Option<std::os::unix::net::UnixListener> {
    let _ = std::fs::remove_file(path);
    match kind {
        "a socket" => return Some(std::os::unix::net::UnixListener::bind(path).unwrap()),
        "a named pipe (FIFO)" => {
            assert!(Command::new("mkfifo").arg(path).status().unwrap().success())
        }
        "a directory" => std::fs::create_dir(path).unwrap(),
        "a device" => std::os::unix::fs::symlink("/dev/null", path).unwrap(),
        _ => unreachable!("{kind}"),
    }
    None
}

/// Takes away what [`make_not_file`] made.
pub fn remove_not_file(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir(path).unwrap();
    } else {
        std::fs::remove_file(path).unwrap();
    }
}
