//! `virtpki reload`: which daemons run, which may be reloaded, and what virt-admin is asked and
//! says. virt-admin is a stand-in script here (VIRTPKI_VIRT_ADMIN) and the daemon a listening
//! socket the test holds: what libvirt does with the files is proven by `make interop`.

use crate::common;

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use common::{command, s};
use virtpki_tools::daemon::{fake_proc, running, running_as, PidLock};

/// A stand-in for virt-admin in `dir`: records its arguments, one a line, in `dir/argv` (a
/// line `--` between runs), prints `message` on standard error and exits with `code`.
pub fn fake_virt_admin(dir: &Path, code: i32, message: &str) -> PathBuf {
    let path = dir.join("virt-admin");
    let log = dir.join("argv");
    let said = dir.join("virt-admin-says");
    common::write(&said, message.as_bytes(), 0o644);
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\necho -- >> '{}'\n\
         cat '{}' >&2\nexit {code}\n",
        log.display(),
        log.display(),
        said.display()
    );
    common::write(&path, script.as_bytes(), 0o755);
    path
}

/// The runs the stand-in recorded, each its arguments (none when it never ran).
pub fn runs(dir: &Path) -> Vec<Vec<String>> {
    let Ok(text) = std::fs::read_to_string(dir.join("argv")) else {
        return Vec::new();
    };
    text.split("--\n")
        .filter(|r| !r.is_empty())
        .map(|r| r.lines().map(str::to_owned).collect())
        .collect()
}

/// A daemon's admin socket, listened on, at `root/run/libvirt/NAME-admin-sock`.
pub fn daemon(root: &Path, prefix: &str) -> (UnixListener, PathBuf) {
    let dir = root.join("run/libvirt");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{prefix}-admin-sock"));
    (UnixListener::bind(&path).unwrap(), path)
}

/// `virtpki ARGS` in `dir` with VIRTPKI_VIRT_ADMIN=`program` (when given).
pub fn run_with(dir: &Path, program: Option<&Path>, args: &[&str]) -> common::Run {
    let mut cmd = command(dir);
    cmd.current_dir(dir).args(args);
    match program {
        Some(p) => cmd.env("VIRTPKI_VIRT_ADMIN", p),
        None => cmd.env_remove("VIRTPKI_VIRT_ADMIN"),
    };
    let out = cmd.output().unwrap();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn reload(dir: &Path, program: &Path, root: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["reload", "--root", s(root)];
    args.extend_from_slice(extra);
    run_with(dir, Some(program), &args)
}

#[test]
fn no_admin_socket_is_no_daemon_running() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let va = fake_virt_admin(dir.path(), 0, "ok");
    let run = reload(dir.path(), &va, &root, &[]).expect(0);
    assert!(
        run.stdout
            .starts_with("no libvirt daemon is running (no admin socket at "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("run/libvirt/libvirt-admin-sock"));
    assert!(run.stdout.contains("run/libvirt/virtproxyd-admin-sock"));
    let run = reload(
        dir.path(),
        &va,
        &root,
        &["--daemon", "virtproxyd", "--json"],
    )
    .expect(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let d = &json["daemons"][0];
    assert_eq!(d["daemon"], "virtproxyd");
    assert_eq!(d["running"], false);
    assert_eq!(d["reloaded"], false);
    assert_eq!(json["ok"], true);
    assert_eq!(json["daemons"].as_array().unwrap().len(), 1);
    assert!(runs(dir.path()).is_empty(), "virt-admin was run");
}

#[test]
fn a_socket_nobody_listens_on_is_not_a_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(dir.path(), 0, "ok");
    // The daemon crashed: its socket file stayed.
    drop(daemon(&root, "libvirt"));
    let run = reload(dir.path(), &va, &root, &[]).expect(0);
    assert!(
        run.stdout.contains("is there but nothing listens on it"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.starts_with("no libvirt daemon is running"));
    assert!(runs(dir.path()).is_empty());
}

#[test]
fn a_running_daemon_is_told_through_its_admin_socket() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(dir.path(), 0, "Successfully updated TLS files");
    let (_listener, socket) = daemon(&root, "libvirt");
    let run = reload(dir.path(), &va, &root, &[]).expect(0);
    assert_eq!(
        runs(dir.path()),
        [[
            "-c".to_owned(),
            format!("libvirtd:///system?socket={}", socket.display()),
            "server-update-tls".to_owned(),
            "libvirtd".to_owned(),
        ]]
    );
    let line = common::line_with(&run.stdout, "libvirtd: reloaded");
    assert!(line.contains("server-update-tls libvirtd"), "{line}");
    assert!(run
        .stdout
        .contains("virt-admin: Successfully updated TLS files"));
    assert!(
        run.stdout.contains("virtproxyd: not running"),
        "{}",
        run.stdout
    );
}

#[test]
fn unix_sock_dir_moves_virtproxyds_socket() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(dir.path(), 0, "");
    common::write(
        &root.join("etc/libvirt/virtproxyd.conf"),
        b"unix_sock_dir = \"/srv/sock\"\n",
        0o644,
    );
    std::fs::create_dir_all(root.join("srv/sock")).unwrap();
    let socket = root.join("srv/sock/virtproxyd-admin-sock");
    let _listener = UnixListener::bind(&socket).unwrap();
    let run = reload(
        dir.path(),
        &va,
        &root,
        &["--daemon", "virtproxyd", "--json"],
    )
    .expect(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["daemons"][0]["reloaded"], true, "{json}");
    assert_eq!(json["daemons"][0]["socket"], s(&socket));
    assert_eq!(json["reloaded"][0], "virtproxyd");
    assert_eq!(
        runs(dir.path())[0][1],
        format!("virtproxyd:///system?socket={}", socket.display())
    );
    assert_eq!(runs(dir.path())[0][3], "virtproxyd");
}

#[test]
fn a_conf_naming_other_files_is_refused_and_virt_admin_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(dir.path(), 0, "ok");
    let _d = daemon(&root, "libvirt");
    let conf = root.join("etc/libvirt/libvirtd.conf");
    common::write(
        &conf,
        b"listen_tls = 1\ncert_file = \"/srv/pki/server.pem\"\n",
        0o644,
    );
    let run = reload(dir.path(), &va, &root, &[]).expect(1);
    assert!(runs(dir.path()).is_empty(), "virt-admin was run");
    let text = &run.stdout;
    assert!(text.contains("libvirtd: not reloaded"), "{text}");
    assert!(
        text.contains(&format!(
            "{}:2: cert_file = \"/srv/pki/server.pem\", but a reload reads \
             /etc/pki/libvirt/servercert.pem",
            conf.display()
        )),
        "{text}"
    );
    assert!(text.contains("systemctl restart libvirtd"), "{text}");
    // A setting a line, not escaped line ends.
    assert!(!text.contains("\\x0a"), "{text}");
    let run = reload(dir.path(), &va, &root, &["--json"]).expect(1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let refused = &json["daemons"][0]["refused_settings"][0];
    assert_eq!(refused["setting"], "cert_file");
    assert_eq!(refused["line"], 2);
    assert_eq!(refused["reload_reads"], "/etc/pki/libvirt/servercert.pem");
    assert_eq!(json["ok"], false);
    // A conf that does not parse: the files cannot be known, refused too.
    common::write(&conf, b"cert_file = \"/srv\n", 0o644);
    let run = reload(dir.path(), &va, &root, &[]).expect(1);
    assert!(run.stdout.contains("cannot be read"), "{}", run.stdout);
    assert!(runs(dir.path()).is_empty());
}

#[test]
fn a_refusing_daemon_is_exit_1_with_what_virt_admin_said() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(
        dir.path(),
        1,
        "error: Cannot read CA certificate '/etc/pki/CA/cacert.pem'",
    );
    let _d = daemon(&root, "libvirt");
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(1);
    assert!(
        run.stdout
            .contains("libvirtd: not reloaded: virt-admin failed (exit status 1)"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("virt-admin: error: Cannot read CA certificate '/etc/pki/CA/cacert.pem'"));
    // A daemon without a TLS listener reads none of the files: said, not a failure.
    let va = fake_virt_admin(
        dir.path(),
        1,
        "error: internal error: no tls service found, unable to update tls files",
    );
    let run = reload(dir.path(), &va, &root, &[]).expect(0);
    assert!(
        run.stdout.contains("libvirtd: serves no TLS"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_missing_virt_admin_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let _d = daemon(&root, "libvirt");
    let nowhere = dir.path().join("no/virt-admin");
    let run = reload(dir.path(), &nowhere, &root, &[]).expect(2);
    assert!(
        run.stderr.contains(&format!(
            "VIRTPKI_VIRT_ADMIN={}: no such program",
            nowhere.display()
        )),
        "{}",
        run.stderr
    );
    // Not installed at all: the package to install is named.
    let empty = dir.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    let out = command(dir.path())
        .env_remove("VIRTPKI_VIRT_ADMIN")
        .env("PATH", &empty)
        .args(["reload", "--root", s(&root)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("virt-admin is not installed"), "{stderr}");
    assert!(stderr.contains("libvirt-clients"), "{stderr}");
    // A --root that is not there is said first.
    let run = reload(dir.path(), &nowhere, &dir.path().join("absent"), &[]).expect(2);
    assert!(run.stderr.contains("--root"), "{}", run.stderr);
}

#[test]
fn a_socket_activated_daemon_is_found_where_systemd_put_its_socket() {
    // Under systemd socket activation libvirt does not honour unix_sock_dir: the socket
    // unit keeps the admin socket in /run/libvirt. Looking only in unix_sock_dir said "not
    // running" (exit 0) while the daemon served the old certificate.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(dir.path(), 0, "");
    common::write(
        &root.join("etc/libvirt/libvirtd.conf"),
        b"unix_sock_dir = \"/srv/sock\"\n",
        0o644,
    );
    let (_listener, socket) = daemon(&root, "libvirt");
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd", "--json"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["daemons"][0]["reloaded"], true, "{json}");
    assert_eq!(json["daemons"][0]["socket"], s(&socket));
    assert_eq!(
        runs(dir.path())[0][1],
        format!("libvirtd:///system?socket={}", socket.display())
    );
    // Neither place: both named.
    drop(_listener);
    std::fs::remove_file(&socket).unwrap();
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(0);
    assert!(
        run.stdout.contains("srv/sock/libvirt-admin-sock"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("run/libvirt/libvirt-admin-sock"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_virt_admin_that_leaves_a_child_holding_its_output_does_not_hang_the_reload() {
    // A wrapper (or anything VIRTPKI_VIRT_ADMIN names) that starts a background process
    // keeps the output pipes open after it exits: waiting for their end waited for that
    // process, past the timeout. The program's own exit is what counts.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = dir.path().join("virt-admin");
    common::write(
        &va,
        b"#!/bin/sh\necho 'Successfully updated TLS files'\nsleep 40 &\nexit 0\n",
        0o755,
    );
    let _d = daemon(&root, "libvirt");
    let start = std::time::Instant::now();
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(0);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert!(run.stdout.contains("libvirtd: reloaded"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("virt-admin: Successfully updated TLS files"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_admin_socket_of_another_user_is_not_talked_to() {
    // A system daemon's admin socket is root's. One that belongs to someone else (a
    // unix_sock_dir others can write to) may be anyone's listener: told "reloaded" it would
    // hide that nothing was; told "refused" it would make install --reload put the old files
    // back. virt-admin is not run, and the reason is said (exit 1: not reloaded).
    if !common::root_or_skip("chown of the socket to another user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(dir.path(), 0, "");
    let (_listener, socket) = daemon(&root, "libvirt");
    let c = std::ffi::CString::new(s(&socket)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(1);
    assert!(runs(dir.path()).is_empty(), "virt-admin was run");
    let line = common::line_with(&run.stdout, "libvirtd: not reloaded");
    assert!(line.contains("belongs to uid 65534"), "{line}");
    assert!(line.contains(s(&socket)), "{line}");
}

#[test]
fn a_relative_path_entry_never_finds_virt_admin_in_the_current_directory() {
    // An empty or relative PATH entry means the current directory: run as root from a
    // directory others write to (/tmp), that would run their "virt-admin". Only absolute
    // entries are searched (as Go's exec.LookPath does).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let _d = daemon(&root, "libvirt");
    let planted = fake_virt_admin(dir.path(), 0, "planted");
    assert!(planted.starts_with(dir.path()));
    let empty = dir.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    for path in [
        format!(":{}", empty.display()),
        ".".to_owned(),
        String::new(),
    ] {
        let out = command(dir.path())
            .current_dir(dir.path())
            .env_remove("VIRTPKI_VIRT_ADMIN")
            .env("PATH", &path)
            .args(["reload", "--root", s(&root)])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "PATH={path:?}: {stderr}");
        assert!(stderr.contains("virt-admin is not installed"), "{stderr}");
        assert!(
            runs(dir.path()).is_empty(),
            "PATH={path:?}: the planted one ran"
        );
    }
}

/// A daemon started with `-f FILE` reads FILE, not /etc/libvirt/libvirtd.conf: reload checks
/// FILE and says so; FILE naming other TLS files refuses the reload (virt-admin never runs),
/// though the default file names none. Without a pid file the default is checked, and that
/// is said with why.
#[test]
fn a_daemon_started_with_another_conf_file_is_checked_against_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(dir.path(), 0, "Successfully updated TLS files");
    let _d = daemon(&root, "libvirt");
    common::write(
        &root.join("etc/libvirt/libvirtd.conf"),
        b"listen_tls = 1\n",
        0o644,
    );
    let custom = root.join("etc/libvirt/custom.conf");
    common::write(&custom, b"listen_tls = 1\n", 0o644);
    // No pid file: the default file, said.
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(0);
    let line = common::line_with(&run.stdout, "checked ");
    assert!(
        line.contains(&format!(
            "checked {}, libvirt's default configuration file",
            root.join("etc/libvirt/libvirtd.conf").display()
        )) && line.contains("no pid file at"),
        "{}",
        run.stdout
    );
    // Started with -f custom.conf, which allows the reload: reloaded, and custom.conf named.
    let d = running(
        &root,
        "libvirtd",
        &[
            "/usr/sbin/libvirtd",
            "--timeout",
            "120",
            "--config",
            "/etc/libvirt/custom.conf",
        ],
    );
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(0);
    assert!(
        run.stdout.contains(&format!(
            "checked {}, the configuration file it was started with (-f/--config, pid {})",
            custom.display(),
            d.pid()
        )),
        "{}",
        run.stdout
    );
    assert_eq!(runs(dir.path()).len(), 2);
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd", "--json"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let conf = &json["daemons"][0]["configuration"];
    assert_eq!(conf["file"], s(&custom), "{json}");
    assert_eq!(conf["source"], "command_line", "{json}");
    // custom.conf names another certificate: refused, naming custom.conf's line.
    common::write(
        &custom,
        b"listen_tls = 1\ncert_file = \"/srv/pki/server.pem\"\n",
        0o644,
    );
    let before = runs(dir.path()).len();
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(1);
    assert!(
        run.stdout
            .contains(&format!("{}:2: cert_file", custom.display())),
        "{}",
        run.stdout
    );
    assert_eq!(runs(dir.path()).len(), before, "virt-admin was run");
    // install --reload refuses before writing anything, for the same reason.
    let p = common::pki(dir.path());
    let run = common::install(dir.path(), &["--root", s(&root), "--reload"], "server", &p);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("custom.conf:2"), "{}", run.stderr);
    assert!(!root.join("etc/pki/libvirt/servercert.pem").exists());
    // custom.conf gone since the start: what the daemon uses cannot be known: refused.
    std::fs::remove_file(&custom).unwrap();
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(1);
    assert!(
        run.stdout.contains("its command line names") && run.stdout.contains("custom.conf"),
        "{}",
        run.stdout
    );
    assert_eq!(runs(dir.path()).len(), before, "virt-admin was run");
}

/// A pid file gone stale whose pid now names another user's process, started with `-f` and a
/// file of that user's allowing the reload: that file is not what the daemon reads, so the
/// default one is checked (here refusing), and why is said. Who runs the process is
/// /proc/PID/status's Uid line, which a non-dumpable process cannot make root's as it can
/// the owner of its /proc files.
#[test]
fn another_users_process_under_the_pid_does_not_choose_the_conf_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(dir.path(), 0, "Successfully updated TLS files");
    let _d = daemon(&root, "libvirt");
    common::write(
        &root.join("etc/libvirt/libvirtd.conf"),
        b"listen_tls = 1\ncert_file = \"/srv/pki/server.pem\"\n",
        0o644,
    );
    let theirs = root.join("home/x/free.conf");
    common::write(&theirs, b"listen_tls = 1\n", 0o644);
    let _d = running_as(
        &root,
        "libvirtd",
        &["libvirtd", "-f", "/home/x/free.conf"],
        [4321; 4],
    );
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(1);
    assert!(
        run.stdout.contains("libvirtd.conf:2: cert_file")
            && run.stdout.contains("runs as uid 4321, not root")
            && run.stdout.contains("libvirt's default configuration file"),
        "{}",
        run.stdout
    );
    assert!(runs(dir.path()).is_empty(), "virt-admin was run");
}

/// A pid file left by a daemon that stopped, whose pid is now another root process's whose
/// command line names a file allowing the reload: that process does not hold the pid file's
/// lock (as a running libvirt daemon does), so it is not the daemon; the default file is
/// checked (here refusing) and why is said. Locked by another process than the one it names:
/// the same.
#[test]
fn a_pid_file_nobody_holds_the_lock_of_does_not_choose_the_conf_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let va = fake_virt_admin(dir.path(), 0, "Successfully updated TLS files");
    let _d = daemon(&root, "libvirt");
    common::write(
        &root.join("etc/libvirt/libvirtd.conf"),
        b"listen_tls = 1\ncert_file = \"/srv/pki/server.pem\"\n",
        0o644,
    );
    common::write(
        &root.join("etc/libvirt/free.conf"),
        b"listen_tls = 1\n",
        0o644,
    );
    let args = ["/usr/sbin/libvirtd", "-f", "/etc/libvirt/free.conf"];
    // This test's own process stands for the live root process under the stale pid.
    let me = std::process::id();
    let pid_file = root.join("run/libvirtd.pid");
    common::write(&pid_file, format!("{me}\n").as_bytes(), 0o644);
    fake_proc(&root, me, "libvirtd", &args, [0; 4]);
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd"]).expect(1);
    assert!(
        run.stdout.contains("libvirtd.conf:2: cert_file")
            && run.stdout.contains(&format!(
                "its pid file {} (pid {me}) is not locked",
                pid_file.display()
            ))
            && run.stdout.contains("libvirt's default configuration file"),
        "{}",
        run.stdout
    );
    let other = PidLock::hold(&pid_file);
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd", "--json"]).expect(1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let conf = &json["daemons"][0]["configuration"];
    assert_eq!(conf["source"], "unknown", "{json}");
    assert!(
        conf["note"].as_str().unwrap().contains(&format!(
            "names pid {me} but is locked by pid {}",
            other.pid()
        )),
        "{json}"
    );
    assert!(runs(dir.path()).is_empty(), "virt-admin was run");
    // Once the process it names holds the lock, it is the daemon: free.conf, reloaded.
    drop(other);
    let d = running(&root, "libvirtd", &args);
    let run = reload(dir.path(), &va, &root, &["--daemon", "libvirtd", "--json"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let conf = &json["daemons"][0]["configuration"];
    assert_eq!(conf["source"], "command_line", "{json}");
    assert!(
        conf["note"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", d.pid())),
        "{json}"
    );
}
