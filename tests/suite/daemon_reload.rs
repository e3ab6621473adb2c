//! `daemon_conf::ReloadCheck`: where a daemon's admin socket is, and which of its settings
//! make `virt-admin server-update-tls` load other files than the daemon uses.

use std::path::{Path, PathBuf};

use virtpki::daemon_conf::{Daemon, DaemonConf, ReloadCheck};
use virtpki::ErrorKind;

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
