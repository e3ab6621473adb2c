//! `daemon_conf::ReloadCheck`: where a daemon's admin socket is, and which of its settings
//! make `virt-admin server-update-tls` load other files than the daemon uses.

use std::path::{Path, PathBuf};

use virtpki::daemon_conf::{ConfSource, Daemon, DaemonConf, ReloadCheck};
use virtpki::ErrorKind;
// A fake running daemon under a test root: its pid file, locked by a child process whose pid
// it names, and that pid's /proc/PID/status and cmdline under the root.
use virtpki_tools::daemon::{fake_proc, locked_pid_file, running, running_as, PidLock};

fn check(daemon: Daemon, text: &str, root: &Path) -> ReloadCheck {
    let conf = DaemonConf::parse(text.as_bytes(), "/etc/libvirt/libvirtd.conf").unwrap();
    ReloadCheck::of(daemon, Some(&conf), root)
}

#[test]
fn no_tls_paths_may_be_reloaded() {
    let root = Path::new("/r");
    for text in [
        "",
        "listen_tls = 1\ntls_port = \"16514\"\n",
        "cert_file = \"\"\n",
    ] {
        let c = check(Daemon::Libvirtd, text, root);
        assert!(c.other_files.is_empty(), "{text:?}: {:?}", c.other_files);
        assert_eq!(c.refusal(), None);
        assert_eq!(
            c.admin_socket,
            PathBuf::from("/r/run/libvirt/libvirt-admin-sock")
        );
    }
    let c = ReloadCheck::of(Daemon::Virtproxyd, None, Path::new("/"));
    assert_eq!(
        c.admin_socket,
        PathBuf::from("/run/libvirt/virtproxyd-admin-sock")
    );
    assert!(c.refusal().is_none());
    // Which file the daemon reads was not looked for: nothing is said about it (no
    // placeholder reason a user could see).
    assert_eq!(c.conf_source, None);
    assert_eq!(c.conf_note(), None);
}

#[test]
fn the_defaults_written_out_may_be_reloaded() {
    let c = check(
        Daemon::Libvirtd,
        "ca_file = \"/etc/pki/CA/cacert.pem\"\n\
         crl_file = \"/etc/pki/CA/cacrl.pem\"\n\
         cert_file = \"/etc/pki/libvirt//servercert.pem\"\n\
         key_file = \"/etc/pki/libvirt/private/./serverkey.pem\"\n",
        Path::new("/"),
    );
    assert!(c.other_files.is_empty(), "{:?}", c.other_files);
}

#[test]
fn other_paths_are_refused_each_with_its_line() {
    let c = check(
        Daemon::Libvirtd,
        "listen_tls = 1\n\
         cert_file = \"/srv/pki/server.pem\"\n\
         key_file = \"/etc/pki/libvirt/private/serverkey.pem\"\n\
         ca_file = \"ca.pem\"\n\
         crl_file = 7\n",
        Path::new("/"),
    );
    let got: Vec<(&str, usize)> = c.other_files.iter().map(|o| (o.setting, o.line)).collect();
    assert_eq!(got, [("ca_file", 4), ("crl_file", 5), ("cert_file", 2)]);
    let cert = &c.other_files[2];
    assert_eq!(cert.configured, "/srv/pki/server.pem");
    assert_eq!(
        cert.reload_reads.as_deref(),
        Some(Path::new("/etc/pki/libvirt/servercert.pem"))
    );
    assert_eq!(
        cert.message,
        "/etc/libvirt/libvirtd.conf:2: cert_file = \"/srv/pki/server.pem\", but a reload \
         reads /etc/pki/libvirt/servercert.pem"
    );
    // A relative path is another file, and a value of the wrong type cannot be classified.
    assert_eq!(c.other_files[0].configured, "ca.pem");
    assert!(
        c.other_files[1].message.contains("cannot be told"),
        "{}",
        c.other_files[1].message
    );
    let refusal = c.refusal().unwrap();
    assert!(refusal.starts_with("libvirtd: not reloaded"), "{refusal}");
    assert!(
        refusal.ends_with("restart it instead: systemctl restart libvirtd"),
        "{refusal}"
    );
    assert!(refusal.contains("libvirtd.conf:2: cert_file"), "{refusal}");
}

#[test]
fn unix_sock_dir_moves_the_admin_socket() {
    let c = check(
        Daemon::Virtproxyd,
        "unix_sock_dir = \"/var/lib/libvirt/sockets\"\n",
        Path::new("/tmp/root"),
    );
    assert_eq!(
        c.admin_socket,
        PathBuf::from("/tmp/root/var/lib/libvirt/sockets/virtproxyd-admin-sock")
    );
    assert!(c.other_files.is_empty());
    // Of the wrong type, the socket is not known: refused, not guessed.
    let c = check(Daemon::Libvirtd, "unix_sock_dir = 1\n", Path::new("/"));
    assert_eq!(c.other_files.len(), 1);
    assert_eq!(c.other_files[0].setting, "unix_sock_dir");
    assert!(c.refusal().is_some());
}

#[test]
fn the_conf_file_is_read_under_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Missing: libvirt's defaults.
    let c = ReloadCheck::read(Daemon::Libvirtd, root).unwrap();
    assert!(!c.conf_exists && c.other_files.is_empty());
    assert_eq!(c.conf_file, root.join("etc/libvirt/libvirtd.conf"));
    std::fs::create_dir_all(root.join("etc/libvirt")).unwrap();
    std::fs::write(
        root.join("etc/libvirt/virtproxyd.conf"),
        "key_file = \"/k.pem\"\n",
    )
    .unwrap();
    let c = ReloadCheck::read(Daemon::Virtproxyd, root).unwrap();
    assert!(c.conf_exists);
    assert_eq!(c.other_files[0].setting, "key_file");
    assert!(c
        .refusal()
        .unwrap()
        .contains("systemctl restart virtproxyd"));
    // A file that does not parse: an error naming the file and line, nothing assumed.
    let path = root.join("etc/libvirt/libvirtd.conf");
    std::fs::write(&path, "listen_tls = 1\ncert_file = \"/x\n").unwrap();
    let e = ReloadCheck::read(Daemon::Libvirtd, root).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse);
    assert!(
        e.message().starts_with(&format!("{}:2:", path.display())),
        "{}",
        e.message()
    );
}

#[test]
fn admin_uris_name_the_daemon_and_socket() {
    assert_eq!(
        Daemon::Libvirtd.admin_uri(Path::new("/run/libvirt/libvirt-admin-sock")),
        "libvirtd:///system?socket=/run/libvirt/libvirt-admin-sock"
    );
    // Whatever the path holds, it stays one parameter of one URI.
    assert_eq!(
        Daemon::Virtproxyd.admin_uri(Path::new("/tmp/a b&c#d?e%/virtproxyd-admin-sock")),
        "virtproxyd:///system?socket=/tmp/a%20b%26c%23d%3Fe%25/virtproxyd-admin-sock"
    );
    assert_eq!(
        Daemon::Virtproxyd.restart_command(),
        "systemctl restart virtproxyd"
    );
}

#[test]
fn under_socket_activation_the_socket_stays_in_run_libvirt() {
    // systemd's .socket units put the sockets in /run/libvirt, and libvirt does not honour
    // unix_sock_dir then: both places are where the daemon may listen.
    let c = check(
        Daemon::Libvirtd,
        "unix_sock_dir = \"/var/lib/libvirt/sockets\"\n",
        Path::new("/tmp/root"),
    );
    assert_eq!(
        c.admin_sockets(),
        [
            PathBuf::from("/tmp/root/var/lib/libvirt/sockets/libvirt-admin-sock"),
            PathBuf::from("/tmp/root/run/libvirt/libvirt-admin-sock"),
        ]
    );
    // Not set, or set to the default: one place.
    for text in ["", "unix_sock_dir = \"/run/libvirt\"\n"] {
        let c = check(Daemon::Virtproxyd, text, Path::new("/r"));
        assert_eq!(
            c.admin_sockets(),
            [PathBuf::from("/r/run/libvirt/virtproxyd-admin-sock")],
            "{text:?}"
        );
    }
}

#[test]
fn a_relative_unix_sock_dir_is_under_the_root_not_the_callers_directory() {
    // The daemon runs in / (systemd, and libvirtd --daemon changes to it): a relative
    // directory is below /, under the root given, never where virtpki happens to run.
    let c = check(
        Daemon::Libvirtd,
        "unix_sock_dir = \"sock\"\n",
        Path::new("/r"),
    );
    assert_eq!(c.admin_socket, PathBuf::from("/r/sock/libvirt-admin-sock"));
    assert!(c.admin_socket.is_absolute());
}

#[test]
fn a_crl_the_daemon_did_not_load_at_start_refuses_the_reload() {
    // With ca_file, cert_file or key_file set, libvirtd loads the CRL crl_file names, and
    // none when it is not set; server-update-tls loads /etc/pki/CA/cacrl.pem whenever it is
    // there. A reload would apply a CRL the daemon does not use (and a restart drops again).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let explicit = "ca_file = \"/etc/pki/CA/cacert.pem\"\n\
                    cert_file = \"/etc/pki/libvirt/servercert.pem\"\n\
                    key_file = \"/etc/pki/libvirt/private/serverkey.pem\"\n";
    // No CRL there: the reload loads none either.
    let c = check(Daemon::Libvirtd, explicit, root);
    assert!(c.other_files.is_empty(), "{:?}", c.other_files);
    std::fs::create_dir_all(root.join("etc/pki/CA")).unwrap();
    std::fs::write(root.join("etc/pki/CA/cacrl.pem"), "crl").unwrap();
    let c = check(Daemon::Libvirtd, explicit, root);
    assert_eq!(c.other_files.len(), 1, "{:?}", c.other_files);
    let o = &c.other_files[0];
    assert_eq!(o.setting, "crl_file");
    assert_eq!(o.reload_reads, Some(PathBuf::from("/etc/pki/CA/cacrl.pem")));
    assert!(
        o.message.contains("crl_file is not set") && o.message.contains("/etc/pki/CA/cacrl.pem"),
        "{}",
        o.message
    );
    // One sentence, not a run of spaces where the source line broke.
    assert!(
        o.message.contains("so the daemon loaded no CRL"),
        "{}",
        o.message
    );
    // An empty crl_file is no CRL too.
    let c = check(
        Daemon::Libvirtd,
        &format!("{explicit}crl_file = \"\"\n"),
        root,
    );
    assert_eq!(c.other_files.len(), 1, "{:?}", c.other_files);
    // crl_file naming the default, or no file setting at all (libvirt's defaults, CRL
    // included): what the daemon loaded at start.
    let with_crl = format!("{explicit}crl_file = \"/etc/pki/CA/cacrl.pem\"\n");
    for text in [with_crl.as_str(), "", "listen_tls = 1\n"] {
        let c = check(Daemon::Libvirtd, text, root);
        assert!(c.other_files.is_empty(), "{text:?}: {:?}", c.other_files);
    }
}

/// The daemon's `-f`/`--config`, read from its command line as libvirt's getopt_long reads
/// it: every spelling, the last one winning, `--` ending the options.
#[test]
fn the_conf_file_a_daemon_was_started_with_is_found_on_its_command_line() {
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["/usr/sbin/libvirtd"], None),
        (&["/usr/sbin/libvirtd", "--timeout", "120"], None),
        (
            &["/usr/sbin/libvirtd", "-f", "/etc/a.conf"],
            Some("/etc/a.conf"),
        ),
        (
            &["/usr/sbin/libvirtd", "-f/etc/a.conf"],
            Some("/etc/a.conf"),
        ),
        (
            &["libvirtd", "--config", "/etc/a.conf"],
            Some("/etc/a.conf"),
        ),
        (&["libvirtd", "--config=/etc/a.conf"], Some("/etc/a.conf")),
        // An unambiguous prefix of a long option is that option (getopt_long).
        (&["libvirtd", "--conf", "/etc/a.conf"], Some("/etc/a.conf")),
        (&["libvirtd", "--c=/etc/a.conf"], Some("/etc/a.conf")),
        // Short options joined: the value is the rest, or the next argument.
        (&["libvirtd", "-ldf", "/etc/a.conf"], Some("/etc/a.conf")),
        (&["libvirtd", "-vf/etc/a.conf"], Some("/etc/a.conf")),
        // The last one wins.
        (
            &["libvirtd", "-f", "/etc/a.conf", "--config", "/etc/b.conf"],
            Some("/etc/b.conf"),
        ),
        // Values of other options are not options.
        (&["libvirtd", "-p", "-f", "--pid-file", "--config"], None),
        (&["libvirtd", "--pid-file=/run/x.pid", "-t", "-f"], None),
        (&["libvirtd", "--", "-f", "/etc/a.conf"], None),
    ];
    for (args, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let daemon = running(root, "libvirtd", args);
        let pid = daemon.pid();
        let found = ConfSource::find(Daemon::Libvirtd, root).unwrap();
        let expected = match want {
            Some(f) => ConfSource::CommandLine {
                pid,
                file: PathBuf::from(f),
            },
            None => ConfSource::Default { pid },
        };
        assert_eq!(found, expected, "{args:?}");
    }
}

/// `ReloadCheck::read` checks the file the running daemon was started with: one that names
/// other TLS files refuses the reload although /etc/libvirt's file names none, and the note
/// says which file was checked and why.
#[test]
fn a_daemon_started_with_another_conf_file_is_checked_against_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc/libvirt")).unwrap();
    std::fs::write(root.join("etc/libvirt/libvirtd.conf"), "listen_tls = 1\n").unwrap();
    std::fs::write(
        root.join("etc/libvirt/custom.conf"),
        "listen_tls = 1\ncert_file = \"/srv/pki/cert.pem\"\n",
    )
    .unwrap();
    // Without a pid file: the default, which allows the reload, and that is said.
    let c = ReloadCheck::read(Daemon::Libvirtd, root).unwrap();
    assert_eq!(c.conf_file, root.join("etc/libvirt/libvirtd.conf"));
    assert!(c.refusal().is_none());
    assert!(
        matches!(&c.conf_source, Some(ConfSource::Unknown(why)) if why.contains("no pid file"))
    );
    let note = c.conf_note().unwrap();
    assert!(
        note.contains("libvirt's default")
            && note.contains(&root.join("run/libvirtd.pid").display().to_string()),
        "{note}"
    );
    // Started with -f custom.conf: that file, refused.
    let d = running(
        root,
        "libvirtd",
        &[
            "/usr/sbin/libvirtd",
            "--timeout",
            "120",
            "-f",
            "/etc/libvirt/custom.conf",
        ],
    );
    let c = ReloadCheck::read(Daemon::Libvirtd, root).unwrap();
    assert_eq!(c.conf_file, root.join("etc/libvirt/custom.conf"));
    assert_eq!(c.other_files[0].setting, "cert_file");
    let refusal = c.refusal().unwrap();
    assert!(refusal.contains("custom.conf:2"), "{refusal}");
    let note = c.conf_note().unwrap();
    assert!(
        note.contains("custom.conf")
            && note.contains("started with")
            && note.contains(&format!("pid {}", d.pid())),
        "{note}"
    );
    // Started with no -f: the default file, said to be the one it runs with.
    let d = running(root, "libvirtd", &["/usr/sbin/libvirtd", "-d"]);
    let c = ReloadCheck::read(Daemon::Libvirtd, root).unwrap();
    assert_eq!(c.conf_source, Some(ConfSource::Default { pid: d.pid() }));
    assert!(c.refusal().is_none());
    // A file named on the command line that is gone: what the daemon uses cannot be known.
    let _d = running(
        root,
        "libvirtd",
        &["libvirtd", "-f", "/etc/libvirt/gone.conf"],
    );
    let e = ReloadCheck::read(Daemon::Libvirtd, root).unwrap_err();
    assert!(
        e.message().contains("gone.conf") && e.message().contains("command line"),
        "{e}"
    );
    // A relative one: relative to where the daemon started, which cannot be told.
    let _d = running(root, "libvirtd", &["libvirtd", "--config=custom.conf"]);
    let e = ReloadCheck::read(Daemon::Libvirtd, root).unwrap_err();
    assert!(e.message().contains("relative path"), "{e}");
    // An empty one (`-f ""`) is no file either, and is seen in the message.
    let _d = running(root, "libvirtd", &["libvirtd", "-f", ""]);
    let e = ReloadCheck::read(Daemon::Libvirtd, root).unwrap_err();
    assert!(
        e.message()
            .contains("configuration file \"\", a relative path"),
        "{e}"
    );
}

/// When which file the daemon reads cannot be told, the default is checked and the reason
/// said: a pid file without a pid, a pid that does not run, a pid that is another program.
/// /proc is read for that pid only.
#[test]
fn an_unknown_conf_file_is_said_with_why() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("run")).unwrap();
    std::fs::write(root.join("run/virtproxyd.pid"), "nonsense\n").unwrap();
    let why = |root: &Path| match ConfSource::find(Daemon::Virtproxyd, root).unwrap() {
        ConfSource::Unknown(why) => why,
        other => panic!("{other:?}"),
    };
    assert!(why(root).contains("holds no pid"), "{}", why(root));
    // A pid nobody holds the lock of: the daemon that wrote it is gone.
    std::fs::write(root.join("run/virtproxyd.pid"), "4242\n").unwrap();
    let w = why(root);
    assert!(
        w.contains("is not locked") && w.contains("stale pid file"),
        "{w}"
    );
    // Locked by the pid it names, which the root's /proc does not have: it runs (it holds
    // the lock), so the pid file is not called stale; /proc is not the daemon's or hides it
    // (hidepid, for a caller that is not root).
    let d = locked_pid_file(&root.join("run/virtproxyd.pid"));
    let w = why(root);
    assert!(
        w.contains(&format!("proc/{} is not there", d.pid()))
            && w.contains(&format!("pid {} runs (it holds the lock", d.pid()))
            && w.contains("hidepid")
            && !w.contains("stale"),
        "{w}"
    );
    let _d = running(root, "virtproxyd", &["/usr/bin/bash", "-f", "/etc/x.conf"]);
    let w = why(root);
    assert!(w.contains("is not virtproxyd but bash"), "{w}");
    // A process that has exited (a zombie's command line is empty).
    let _d = running(root, "virtproxyd", &[]);
    let w = why(root);
    assert!(
        w.contains("is not virtproxyd but a process with an empty command line"),
        "{w}"
    );
    // Another user's process under a pid that went stale: its command line is that user's
    // to choose, so it is not read as the daemon's. Who runs it is /proc/PID/status's Uid
    // line: the owner of /proc/PID/cmdline is root for any process that made itself
    // non-dumpable (prctl PR_SET_DUMPABLE), and a set-user-ID program runs as root with its
    // caller's arguments (real uid the caller's).
    for uids in [
        [1234; 4],
        [1234, 0, 0, 0],
        [0, 0, 1234, 0],
        [0, 1234, 1234, 1234],
    ] {
        let d = running_as(
            root,
            "virtproxyd",
            &["/usr/sbin/virtproxyd", "-f", "/tmp/x.conf"],
            uids,
        );
        let w = why(root);
        assert!(w.contains("runs as uid 1234, not root"), "{uids:?}: {w}");
        assert!(
            w.contains(&format!("proc/{}/status", d.pid())),
            "{uids:?}: {w}"
        );
    }
    // A status without a Uid line cannot tell who runs it: not taken as the daemon.
    let d = running(root, "virtproxyd", &["/usr/sbin/virtproxyd"]);
    let status_file = root.join(format!("proc/{}/status", d.pid()));
    for status in ["Name:\tvirtproxyd\n", "Uid:\t0\t0\n", "Uid:\t0\tx\t0\t0\n"] {
        std::fs::write(&status_file, status).unwrap();
        let w = why(root);
        assert!(
            w.contains("no Uid line with real, effective and saved"),
            "{status:?}: {w}"
        );
    }
    std::fs::remove_file(&status_file).unwrap();
    let w = why(root);
    assert!(w.contains("status"), "{w}");
    drop(d);
    // A FIFO as the pid file does not block.
    std::fs::remove_file(root.join("run/virtproxyd.pid")).unwrap();
    let c = std::ffi::CString::new(
        root.join("run/virtproxyd.pid")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    assert!(why(root).contains("FIFO"), "{}", why(root));
}

/// The pid file is what names the daemon: one others could have written (not root's, writable
/// by group or others, a symbolic link to anywhere) is not trusted to, so the default file is
/// checked and why said.
#[test]
fn a_pid_file_others_could_write_does_not_name_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let why = |root: &Path| match ConfSource::find(Daemon::Libvirtd, root).unwrap() {
        ConfSource::Unknown(why) => why,
        other => panic!("{other:?}"),
    };
    let d = running(root, "libvirtd", &["libvirtd", "-f", "/home/x/evil.conf"]);
    let pid_file = root.join("run/libvirtd.pid");
    assert!(matches!(
        ConfSource::find(Daemon::Libvirtd, root).unwrap(),
        ConfSource::CommandLine { pid, .. } if pid == d.pid()
    ));
    for mode in [0o666, 0o664, 0o646] {
        std::fs::set_permissions(&pid_file, std::fs::Permissions::from_mode(mode)).unwrap();
        let w = why(root);
        assert!(
            w.contains(&format!("{mode:04o}")) && w.contains("writable by others"),
            "{mode:o}: {w}"
        );
    }
    std::fs::set_permissions(&pid_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A symbolic link to a file anyone may write.
    let elsewhere = root.join("elsewhere.pid");
    std::fs::rename(&pid_file, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &pid_file).unwrap();
    let w = why(root);
    assert!(w.contains("symbolic link"), "{w}");
    std::fs::remove_file(&pid_file).unwrap();
    std::fs::rename(&elsewhere, &pid_file).unwrap();
    // Another user's pid file (as root only: chown needs it).
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&pid_file, Some(1234), None).unwrap();
        let w = why(root);
        assert!(w.contains("belongs to uid 1234"), "{w}");
    }
}

/// A pid file names the running daemon only while the process it names holds the lock
/// libvirt's daemons keep on their pid file (`virPidFileAcquirePath`: an fcntl write lock on
/// its first byte). A stale file's pid may since be any process's, root's included, even one
/// whose command line is `libvirtd -f FILE`: unlocked, locked by another process, or locked
/// otherwise than libvirt locks it, it is not believed, the default file is what counts and
/// why is said.
#[test]
fn only_the_process_holding_the_pid_files_lock_is_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pid_file = root.join("run/libvirtd.pid");
    let args = ["/usr/sbin/libvirtd", "-f", "/etc/libvirt/other.conf"];
    let why = |root: &Path| match ConfSource::find(Daemon::Libvirtd, root).unwrap() {
        ConfSource::Unknown(why) => why,
        other => panic!("{other:?}"),
    };
    // Locked by the process it names: believed.
    let d = running(root, "libvirtd", &args);
    assert_eq!(
        ConfSource::find(Daemon::Libvirtd, root).unwrap(),
        ConfSource::CommandLine {
            pid: d.pid(),
            file: PathBuf::from("/etc/libvirt/other.conf")
        }
    );
    // The daemon gone, its pid file left behind (a crash): nobody holds the lock.
    let pid = d.pid();
    drop(d);
    let w = why(root);
    assert!(
        w.contains(&format!("{} (pid {pid}) is not locked", pid_file.display()))
            && w.contains("the daemon does not run (a stale pid file"),
        "{w}"
    );
    // A live root process under the pid (this test's own), the root's /proc saying it is
    // libvirtd with -f: it holds no lock, so it is not the daemon.
    let me = std::process::id();
    std::fs::write(&pid_file, format!("{me}\n")).unwrap();
    fake_proc(root, me, "libvirtd", &args, [0; 4]);
    let w = why(root);
    assert!(w.contains(&format!("(pid {me}) is not locked")), "{w}");
    // Locked by another process than the one it names.
    let other = PidLock::hold(&pid_file);
    fake_proc(root, other.pid(), "libvirtd", &args, [0; 4]);
    let w = why(root);
    assert!(
        w.contains(&format!(
            "names pid {me} but is locked by pid {}",
            other.pid()
        )),
        "{w}"
    );
    drop(other);
    // Locked by the process it names, but for reading: not as a libvirt daemon locks it.
    let reader = PidLock::hold_for_reading(&pid_file);
    std::fs::write(&pid_file, format!("{}\n", reader.pid())).unwrap();
    fake_proc(root, reader.pid(), "libvirtd", &args, [0; 4]);
    let w = why(root);
    assert!(
        w.contains(&format!("is locked for reading by pid {}", reader.pid())),
        "{w}"
    );
    drop(reader);
    // ReloadCheck::read falls back to the default file, and says why.
    let c = ReloadCheck::read(Daemon::Libvirtd, root).unwrap();
    assert_eq!(c.conf_file, root.join("etc/libvirt/libvirtd.conf"));
    let note = c.conf_note().unwrap();
    assert!(
        note.contains("libvirt's default") && note.contains("is not locked"),
        "{note}"
    );
}

/// `ConfSource::running`: the daemon whose configuration serves TLS is the first of
/// libvirtd and virtproxyd that runs; with neither, libvirtd's default file and why. `file`
/// is the file a source says the daemon reads, under the root; `note`, `pid` and `name` say
/// it for people and scripts (one wording for reload and validate).
#[test]
fn the_running_daemon_and_its_conf_file_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (daemon, source) = ConfSource::running(root);
    let source = source.unwrap();
    assert_eq!(daemon, Daemon::Libvirtd);
    assert!(matches!(&source, ConfSource::Unknown(why) if why.contains("no pid file")));
    assert_eq!(
        (source.pid(), source.name()),
        (None, "unknown"),
        "{source:?}"
    );
    let default = root.join("etc/libvirt/libvirtd.conf");
    assert_eq!(source.file(daemon, root), default);
    assert!(source
        .note(daemon, &default)
        .starts_with(&format!("checked {}, libvirt's default", default.display())));
    // virtproxyd runs with -f, libvirtd does not.
    let proxy = running(root, "virtproxyd", &["virtproxyd", "-f", "/etc/p.conf"]);
    let (daemon, source) = ConfSource::running(root);
    let source = source.unwrap();
    assert_eq!(daemon, Daemon::Virtproxyd);
    assert_eq!(
        (source.pid(), source.name()),
        (Some(proxy.pid()), "command_line")
    );
    let file = source.file(daemon, root);
    assert_eq!(file, root.join("etc/p.conf"));
    assert_eq!(
        source.note(daemon, &file),
        format!(
            "checked {}, the configuration file it was started with (-f/--config, pid {}), \
             not /etc/libvirt/virtproxyd.conf",
            file.display(),
            proxy.pid()
        )
    );
    // libvirtd runs too: it comes first.
    let d = running(root, "libvirtd", &["/usr/sbin/libvirtd"]);
    let (daemon, source) = ConfSource::running(root);
    let source = source.unwrap();
    assert_eq!(daemon, Daemon::Libvirtd);
    assert_eq!(source, ConfSource::Default { pid: d.pid() });
    assert_eq!(source.name(), "default");
    assert_eq!(source.file(daemon, root), default);
    // A relative -f of the running one fails, as find does.
    let _d = running(root, "libvirtd", &["libvirtd", "-f", "x.conf"]);
    let (daemon, e) = ConfSource::running(root);
    let e = e.unwrap_err();
    assert_eq!(daemon, Daemon::Libvirtd);
    assert!(e.message().contains("relative path"), "{e}");
    // virtproxyd's relative -f, libvirtd not running: the failure is virtproxyd's.
    drop(_d);
    drop(d);
    drop(proxy);
    let _proxy = running(root, "virtproxyd", &["virtproxyd", "-f", "p.conf"]);
    let (daemon, e) = ConfSource::running(root);
    assert_eq!(daemon, Daemon::Virtproxyd);
    assert!(e.unwrap_err().message().starts_with("virtproxyd (pid"));
}

/// `conf_writers`: who besides root could change a configuration file the daemon reads as
/// root: the file itself, any directory on its path as given (a symbolic link there may be
/// replaced) or as resolved; a sticky directory holding root's entry is safe; what cannot
/// be looked at fails closed.
#[test]
fn a_conf_file_only_root_may_change_is_told_from_others() {
    use std::os::unix::fs::PermissionsExt;
    use virtpki::daemon_conf::conf_writers;
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let etc = root.join("etc/libvirt");
    std::fs::create_dir_all(&etc).unwrap();
    let file = etc.join("libvirtd.conf");
    std::fs::write(&file, "listen_tls = 1\n").unwrap();
    mode(&file, 0o600).unwrap();
    assert_eq!(conf_writers(&file, root), None);
    mode(&file, 0o620).unwrap();
    let (at, why) = conf_writers(&file, root).unwrap();
    assert_eq!(at, file);
    assert!(
        why.ends_with("is writable by its group (mode 0620)"),
        "{why}"
    );
    mode(&file, 0o644).unwrap();
    mode(&etc, 0o757).unwrap();
    let (at, why) = conf_writers(&file, root).unwrap();
    assert_eq!(at, etc);
    assert!(why.contains("writable by every user (mode 0757)"), "{why}");
    mode(&etc, 0o755).unwrap();
    // Reached through a link in a directory anyone may write: that directory.
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    mode(&tmp, 0o777).unwrap();
    std::os::unix::fs::symlink(&file, tmp.join("link.conf")).unwrap();
    assert_eq!(conf_writers(&tmp.join("link.conf"), root).unwrap().0, tmp);
    // Sticky (as /tmp): others cannot replace root's entries.
    mode(&tmp, 0o1777).unwrap();
    assert_eq!(conf_writers(&tmp.join("link.conf"), root), None);
    // A link to a file in a directory anyone may write: the directory it resolves into.
    let open = root.join("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::write(open.join("x.conf"), "").unwrap();
    mode(&open, 0o777).unwrap();
    std::os::unix::fs::symlink(open.join("x.conf"), etc.join("x.conf")).unwrap();
    assert_eq!(conf_writers(&etc.join("x.conf"), root).unwrap().0, open);
    // Under a root (a chroot, an image), the directories above it are not the daemon's: a
    // root inside a directory anyone may write is not held against its files.
    let outer = root.join("outer");
    let inner = outer.join("root");
    std::fs::create_dir_all(inner.join("etc/libvirt")).unwrap();
    let inner_file = inner.join("etc/libvirt/libvirtd.conf");
    std::fs::write(&inner_file, "").unwrap();
    mode(&inner_file, 0o644).unwrap();
    mode(&outer, 0o777).unwrap();
    assert_eq!(conf_writers(&inner_file, &inner), None);
    // The same file with the host's / as root (where only root's files are root's: as
    // root), the directory counts.
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(conf_writers(&inner_file, Path::new("/")).unwrap().0, outer);
    }
    // Not there: cannot be told, not "root's".
    let (_, why) = conf_writers(&etc.join("gone.conf"), root).unwrap();
    assert!(why.contains("cannot be told"), "{why}");
    // Another user's file (as root only: chown needs it).
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&file, Some(1234), None).unwrap();
        let (at, why) = conf_writers(&file, root).unwrap();
        assert_eq!(at, file);
        assert!(why.contains("belongs to uid 1234, not root"), "{why}");
        std::os::unix::fs::chown(&file, Some(0), None).unwrap();
        // A link in the sticky directory that another user owns: its owner may delete it
        // and put another in its place, so the link's own owner counts (it points at root's
        // file, which passes). A link to a directory, the same.
        let link = tmp.join("link.conf");
        std::os::unix::fs::lchown(&link, Some(1234), None).unwrap();
        let (at, why) = conf_writers(&link, root).unwrap();
        assert_eq!(at, link);
        assert!(why.contains("symbolic link belonging to uid 1234"), "{why}");
        let dir_link = tmp.join("d");
        std::os::unix::fs::symlink(&etc, &dir_link).unwrap();
        std::os::unix::fs::lchown(&dir_link, Some(1234), None).unwrap();
        let (at, _) = conf_writers(&dir_link.join("libvirtd.conf"), root).unwrap();
        assert_eq!(at, dir_link);
        std::os::unix::fs::lchown(&dir_link, Some(0), None).unwrap();
        assert_eq!(conf_writers(&dir_link.join("libvirtd.conf"), root), None);
    }
}
