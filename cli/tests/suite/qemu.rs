//! `virtpki install --qemu` and `virtpki validate --qemu`: QEMU's names in the directory
//! qemu.conf gives each subsystem, owners and modes for QEMU's user, and QEMU's own rules.

use crate::common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{is_root, mode, pki, s, virtpki, Pki, Run};

/// A qemu.conf naming users that exist here (Debian's libvirt-qemu does not), then `extra`.
fn qemu_conf(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("qemu.conf");
    std::fs::write(
        &path,
        format!("user = \"nobody\"\ngroup = \"nogroup\"\n{extra}"),
    )
    .unwrap();
    path
}

/// `p`'s server and client pairs in one directory (what `--role both` reads).
fn both_dir(dir: &Path, p: &Pki) -> PathBuf {
    let out = dir.join("both");
    std::fs::create_dir_all(&out).unwrap();
    for (from, name) in [
        (&p.server, "servercert.pem"),
        (&p.server, "serverkey.pem"),
        (&p.client, "clientcert.pem"),
        (&p.client, "clientkey.pem"),
    ] {
        std::fs::copy(from.join(name), out.join(name)).unwrap();
        std::fs::set_permissions(
            out.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    out
}

fn install_qemu(dir: &Path, p: &Pki, from: &Path, conf: &Path, extra: &[&str]) -> Run {
    let root = dir.join("root");
    let mut args = vec![
        "install",
        "--qemu",
        "--ca-dir",
        s(&p.ca),
        "--from",
        s(from),
        "--root",
        s(&root),
        "--qemu-conf",
        s(conf),
    ];
    args.extend_from_slice(extra);
    virtpki(dir, &args)
}

/// A PKI, and its server files installed for VNC below `dir/root` by a qemu.conf with
/// `vnc_tls = 1`, which is returned (what most validate tests start from).
fn vnc_installed(dir: &Path) -> PathBuf {
    let p = pki(dir);
    let conf = qemu_conf(dir, "vnc_tls = 1\n");
    install_qemu(dir, &p, &p.server, &conf, &["--subsystem", "vnc"]).expect(0);
    conf
}

fn validate_qemu(dir: &Path, conf: &Path, extra: &[&str]) -> Run {
    let root = dir.join("root");
    let mut args = vec![
        "validate",
        "--qemu",
        "--root",
        s(&root),
        "--qemu-conf",
        s(conf),
    ];
    args.extend_from_slice(extra);
    virtpki(dir, &args)
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// The report line of `id` in validate's JSON.
fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report:#}"))
}

/// (subsystem, extra arguments, directory, files expected, files not expected)
type Case<'a> = (
    &'a str,
    &'a [&'a str],
    &'a str,
    &'a [&'a str],
    &'a [&'a str],
);

#[test]
fn each_subsystem_gets_its_role_s_files_in_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    // A CRL that revokes another client.
    let gone = d.join("gone");
    common::issue_client(d, s(&p.ca), "C=GB,O=Test,CN=gone", s(&gone)).expect(0);
    let gone_cert = gone.join("clientcert.pem");
    virtpki(d, &["crl", "revoke", "--ca-dir", s(&p.ca), s(&gone_cert)]).expect(0);
    let both = both_dir(d, &p);
    let conf = qemu_conf(
        d,
        "vnc_tls_x509_cert_dir = \"/etc/pki/libvirt-vnc\"\n\
         spice_tls_x509_cert_dir = \"/srv/spice\"\n\
         nbd_tls_x509_cert_dir = \"/srv/nbd\"\n\
         backup_tls_x509_cert_dir = \"/srv/backup\"\n\
         chardev_tls_x509_cert_dir = \"/srv/chardev\"\n\
         migrate_tls_x509_cert_dir = \"/srv/migrate\"\n",
    );
    let root = d.join("root");
    // (subsystem, extra arguments, directory, files expected, files not expected)
    let server = [
        "ca-cert.pem",
        "ca-crl.pem",
        "server-cert.pem",
        "server-key.pem",
    ];
    let cases: [Case; 6] = [
        (
            "vnc",
            &[],
            "etc/pki/libvirt-vnc",
            &server,
            &["client-cert.pem"],
        ),
        ("spice", &[], "srv/spice", &server, &["client-key.pem"]),
        ("backup", &[], "srv/backup", &server, &["client-key.pem"]),
        (
            "nbd",
            &[],
            "srv/nbd",
            &["ca-cert.pem", "client-cert.pem", "client-key.pem"],
            // QEMU's clients never read the CRL.
            &["ca-crl.pem", "server-cert.pem"],
        ),
        (
            "chardev",
            &["--role", "server"],
            "srv/chardev",
            &server,
            &["client-cert.pem"],
        ),
        (
            "migrate",
            &[],
            "srv/migrate",
            &[
                "ca-cert.pem",
                "ca-crl.pem",
                "server-cert.pem",
                "server-key.pem",
                "client-cert.pem",
                "client-key.pem",
            ],
            &[],
        ),
    ];
    for (sub, extra, target, present, absent) in cases {
        let mut args = vec!["--subsystem", sub];
        args.extend_from_slice(extra);
        let run = install_qemu(d, &p, &both, &conf, &args).expect(0);
        let at = root.join(target);
        assert!(
            run.stdout.contains(&format!("QEMU {sub} directory")),
            "{}",
            run.stdout
        );
        assert_eq!(mode(&at), 0o750, "{sub}");
        for f in present {
            let want = if f.ends_with("-key.pem") {
                0o440
            } else {
                0o644
            };
            assert_eq!(mode(&at.join(f)), want, "{sub} {f}");
            if is_root() {
                let m = std::fs::metadata(at.join(f)).unwrap();
                assert_eq!((m.uid(), m.gid()), (0, 65534), "{sub} {f}: root:nogroup");
            }
        }
        for f in absent {
            assert!(!at.join(f).exists(), "{sub}: {f} must not be installed");
        }
    }
    // The directories above QEMU's are everyone's.
    assert_eq!(mode(&root.join("srv")), 0o755);
    // Installed again: unchanged.
    let run = install_qemu(d, &p, &both, &conf, &["--subsystem", "vnc"]).expect(0);
    assert!(run.stdout.contains("unchanged"), "{}", run.stdout);
    // And each passes QEMU's checks (vnc verification is off by default: a warning only).
    let conf2 = qemu_conf(
        d,
        "vnc_tls = 1\nspice_tls = 1\nnbd_tls = 1\nchardev_tls = 1\n\
         vnc_tls_x509_cert_dir = \"/etc/pki/libvirt-vnc\"\n\
         spice_tls_x509_cert_dir = \"/srv/spice\"\n\
         nbd_tls_x509_cert_dir = \"/srv/nbd\"\n\
         backup_tls_x509_cert_dir = \"/srv/backup\"\n\
         chardev_tls_x509_cert_dir = \"/srv/chardev\"\n\
         migrate_tls_x509_cert_dir = \"/srv/migrate\"\n",
    );
    // A CRL in a client's directory: QEMU never reads it (a note).
    std::fs::copy(p.ca.join("cacrl.pem"), root.join("srv/nbd/ca-crl.pem")).unwrap();
    let run = validate_qemu(d, &conf2, &["--json", "--hostname", "localhost"]);
    let report = json(&run);
    assert_eq!(run.code, 0, "{report:#}");
    assert_eq!(report["mode"], "qemu");
    for id in [
        "qemu.vnc.server.cert_properties",
        "qemu.spice.server.cert_properties",
        "qemu.nbd.client.cert_properties",
        "qemu.chardev.server.cert_properties",
        "qemu.migrate.server.cert_properties",
        "qemu.migrate.client.cert_properties",
        "qemu.backup.server.cert_properties",
        "qemu.migrate.server.key_mode",
        "qemu.vnc.hostname",
    ] {
        assert_eq!(check(&report, id)["status"], "pass", "{id}");
    }
    assert_eq!(check(&report, "qemu.vnc.verify")["status"], "warn");
    assert_eq!(check(&report, "qemu.nbd.crl")["status"], "info");
}

#[test]
fn directories_fall_back_as_libvirt_s_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let conf = qemu_conf(d, "");
    let root = d.join("root");
    // Nothing set, nothing there: /etc/pki/qemu.
    let run = install_qemu(d, &p, &p.server, &conf, &["--subsystem", "vnc", "--json"]).expect(0);
    let out = json(&run);
    assert_eq!(out["qemu"]["dir"], s(&root.join("etc/pki/qemu")));
    assert_eq!(out["role"], "server");
    assert!(out["qemu"]["why"].as_str().unwrap().contains("built-in"));
    // /etc/pki/libvirt-spice exists: SPICE's files go there.
    std::fs::create_dir_all(root.join("etc/pki/libvirt-spice")).unwrap();
    let run = install_qemu(d, &p, &p.server, &conf, &["--subsystem", "spice", "--json"]);
    let out = json(&run.expect(0));
    assert_eq!(out["qemu"]["dir"], s(&root.join("etc/pki/libvirt-spice")));
    assert!(root.join("etc/pki/libvirt-spice/server-key.pem").exists());
    // default_tls_x509_cert_dir moves the default for the others.
    let conf = qemu_conf(d, "default_tls_x509_cert_dir = \"/srv/qemu\"\n");
    let run = install_qemu(d, &p, &p.client, &conf, &["--subsystem", "nbd", "--json"]);
    let out = json(&run.expect(0));
    assert_eq!(out["qemu"]["dir"], s(&root.join("srv/qemu")));
    assert_eq!(out["role"], "client");
    // Outside Debian's AppArmor profile: said.
    assert!(
        out["qemu"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("AppArmor"),
        "{out:#}"
    );
}

#[test]
fn refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let root = d.join("root");
    // The default user, libvirt-qemu, does not exist on this machine.
    let bare = d.join("bare.conf");
    std::fs::write(&bare, "").unwrap();
    let run = install_qemu(d, &p, &p.server, &bare, &["--role", "server"]).expect(2);
    assert!(
        run.stderr.contains(
            "QEMU's user is unknown on this system: user \"libvirt-qemu\", libvirt's default"
        ),
        "{}",
        run.stderr
    );
    std::fs::write(&bare, "user = \"no-such-user-x\"\ngroup = \"nogroup\"\n").unwrap();
    let run = install_qemu(d, &p, &p.server, &bare, &["--role", "server"]).expect(2);
    assert!(run.stderr.contains("bare.conf:1"), "{}", run.stderr);
    assert!(!root.exists());
    let conf = qemu_conf(d, "");
    // chardev: QEMU is server or client, depending on the domains: --role needed.
    let run = install_qemu(d, &p, &p.server, &conf, &["--subsystem", "chardev"]).expect(2);
    assert!(run.stderr.contains("give --role server"), "{}", run.stderr);
    // both needs both pairs.
    let run = install_qemu(d, &p, &p.server, &conf, &["--role", "both"]).expect(2);
    assert!(
        run.stderr.contains("--role both installs"),
        "{}",
        run.stderr
    );
    assert!(!root.exists());
    // --role both and --subsystem are --qemu's.
    let run = virtpki(
        d,
        &[
            "install",
            "--role",
            "both",
            "--ca-dir",
            s(&p.ca),
            "--from",
            s(&p.server),
            "--root",
            s(&root),
        ],
    )
    .expect(2);
    assert!(
        run.stderr.contains("--role both is for QEMU"),
        "{}",
        run.stderr
    );
    let run = virtpki(
        d,
        &[
            "install",
            "--role",
            "server",
            "--subsystem",
            "vnc",
            "--ca-dir",
            s(&p.ca),
            "--from",
            s(&p.server),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    // A different installed file is not replaced without --force.
    install_qemu(d, &p, &p.server, &conf, &["--role", "server"]).expect(0);
    let key = root.join("etc/pki/qemu/server-key.pem");
    let other = d.join("other");
    common::issue_server(d, s(&p.ca), "other.example", s(&other)).expect(0);
    let run = install_qemu(d, &p, &other, &conf, &["--role", "server"]).expect(2);
    assert!(
        run.stderr.contains("exists with other contents"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        std::fs::read(p.server.join("serverkey.pem")).unwrap()
    );
    let run = install_qemu(d, &p, &other, &conf, &["--role", "server", "--force"]).expect(0);
    assert!(
        run.stdout.contains("kept the old file as"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        std::fs::read(other.join("serverkey.pem")).unwrap()
    );
}

#[test]
fn dry_run_json_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let conf = qemu_conf(d, "");
    let run = install_qemu(
        d,
        &p,
        &p.server,
        &conf,
        &["--subsystem", "vnc", "--dry-run", "--json"],
    )
    .expect(0);
    assert!(!d.join("root").exists(), "a dry run writes nothing");
    let out = json(&run);
    assert_eq!(out["dry_run"], true);
    assert_eq!(out["qemu"]["subsystem"], "vnc");
    assert_eq!(out["files"].as_array().unwrap().len(), 3);
    assert_eq!(out["files"][2]["mode"], "0440");
    assert!(run.stderr.contains("would create"), "{}", run.stderr);
    // QEMU has nothing to reload: said, exit 0.
    let run = install_qemu(d, &p, &p.server, &conf, &["--subsystem", "vnc", "--reload"]).expect(0);
    assert!(
        run.stdout
            .contains("running domains keep the old credentials until restarted or migrated"),
        "{}",
        run.stdout
    );
}

#[test]
fn validate_findings_each_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let root = d.join("root");
    let both = both_dir(d, &p);
    let conf = qemu_conf(
        d,
        "vnc_tls = 1\nvnc_tls_x509_verify = 1\nmigrate_host = \"x\"\n\
         migration_host = \"mig.example\"\nmigrate_tls_force = 1\n",
    );
    install_qemu(d, &p, &both, &conf, &["--role", "both"]).expect(0);
    let run = validate_qemu(d, &conf, &["--json", "--hostname", "localhost"]);
    let report = json(&run);
    // migration_host is not in the certificate: every migration to this host fails.
    let h = check(&report, "qemu.migrate.hostname");
    assert_eq!(h["status"], "fail", "{h:#}");
    assert!(h["message"].as_str().unwrap().contains("mig.example"));
    assert!(h["fix"].as_str().unwrap().contains("--dns NAME"));
    let u = check(&report, "qemu.conf.unknown_setting");
    assert_eq!(u["status"], "warn");
    assert!(u["message"]
        .as_str()
        .unwrap()
        .contains("probably `migration_host`"));
    assert_eq!(check(&report, "qemu.vnc.verify")["status"], "pass");
    // Same directory for vnc and migrate: checked once.
    assert!(check(&report, "qemu.migrate.server")["message"]
        .as_str()
        .unwrap()
        .contains("checked above"));
    assert_eq!(run.code, 1);

    // Verification off, a key QEMU cannot read, a lone client half, a missing set directory.
    let conf = qemu_conf(
        d,
        "vnc_tls = 1\ndefault_tls_x509_verify = 0\nnbd_tls = 1\n\
         nbd_tls_x509_cert_dir = \"/srv/nbd\"\nspice_tls = 1\n\
         spice_tls_x509_cert_dir = \"/srv/none\"\n",
    );
    let key = root.join("etc/pki/qemu/server-key.pem");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&key, Some(0), Some(0)).unwrap();
    }
    std::fs::create_dir_all(root.join("srv/nbd")).unwrap();
    std::fs::copy(p.ca.join("cacert.pem"), root.join("srv/nbd/ca-cert.pem")).unwrap();
    std::fs::copy(
        p.client.join("clientcert.pem"),
        root.join("srv/nbd/client-cert.pem"),
    )
    .unwrap();
    let run = validate_qemu(d, &conf, &["--json"]);
    let report = json(&run);
    assert_eq!(run.code, 1);
    let v = check(&report, "qemu.vnc.verify");
    assert_eq!(v["status"], "warn");
    assert!(v["fix"]
        .as_str()
        .unwrap()
        .contains("vnc_tls_x509_verify = 1"));
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("default_tls_x509_verify"));
    if is_root() {
        let k = check(&report, "qemu.vnc.server.key_mode");
        assert_eq!(k["status"], "fail", "{k:#}");
        assert!(k["message"].as_str().unwrap().contains("cannot read"));
        assert!(k["fix"].as_str().unwrap().contains("chmod 0440"));
    }
    let pair = check(&report, "qemu.nbd.client.pair");
    assert_eq!(pair["status"], "warn");
    assert!(pair["message"]
        .as_str()
        .unwrap()
        .contains("QEMU >= 10.2 refuses"));
    let m = check(&report, "qemu.conf.missing_dir");
    assert_eq!(m["status"], "fail");
    assert!(m["message"]
        .as_str()
        .unwrap()
        .contains("spice_tls_x509_cert_dir directory '/srv/none' does not exist"));
    // Every problem has a fix.
    for c in report["checks"].as_array().unwrap() {
        if c["status"] == "fail" || c["status"] == "warn" {
            assert!(c["fix"].is_string(), "{c:#}");
        }
    }
}

#[test]
fn validate_sees_a_missing_server_file_and_qemu_s_chain_rule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = vnc_installed(d);
    let root = d.join("root");
    std::fs::remove_file(root.join("etc/pki/qemu/server-cert.pem")).unwrap();
    let run = validate_qemu(d, &conf, &["--json"]);
    let report = json(&run);
    let m = check(&report, "qemu.vnc.server.missing");
    assert_eq!(m["status"], "fail");
    assert!(m["message"]
        .as_str()
        .unwrap()
        .contains("Unable to access credentials"));
    assert!(m["fix"]
        .as_str()
        .unwrap()
        .starts_with("virtpki install --qemu --subsystem vnc"));
    // No qemu.conf switches anything on: a note, exit 0.
    let off = qemu_conf(d, "");
    let run = validate_qemu(d, &off, &[]).expect(0);
    assert!(
        run.stdout.contains("switches TLS on for no subsystem"),
        "{}",
        run.stdout
    );
    // A qemu.conf libvirt cannot parse: the report says where.
    let bad = d.join("bad.conf");
    std::fs::write(&bad, "vnc_tls = \n").unwrap();
    let run = validate_qemu(d, &bad, &[]).expect(1);
    assert!(run.stdout.contains("bad.conf:1"), "{}", run.stdout);
}

#[test]
fn install_warns_of_what_older_qemu_refuses() {
    use virtpki_tools::kit::{self, Spec, KU_KEY_CERT_SIGN};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root_ca = kit::self_signed(&Spec::ca("Test Root CA"));
    let intermediate = kit::signed_by(
        &Spec::ca("Test Intermediate CA")
            .bc(Some(true), true)
            .ku(KU_KEY_CERT_SIGN, true),
        &root_ca,
    );
    let leaf = kit::signed_by(&Spec::server("localhost"), &intermediate);
    let ca = d.join("ca");
    let from = d.join("out");
    common::write(&ca.join("cacert.pem"), root_ca.pem().as_bytes(), 0o644);
    common::write(
        &from.join("servercert.pem"),
        (leaf.pem() + &intermediate.pem()).as_bytes(),
        0o644,
    );
    common::write(
        &from.join("serverkey.pem"),
        leaf.key_pem().as_bytes(),
        0o600,
    );
    let conf = qemu_conf(d, "");
    let run = virtpki(
        d,
        &[
            "install",
            "--qemu",
            "--role",
            "server",
            "--ca-dir",
            s(&ca),
            "--from",
            s(&from),
            "--root",
            s(&d.join("root")),
            "--qemu-conf",
            s(&conf),
        ],
    )
    .expect(0);
    let line = common::line_with(&run.stdout, "qemu: QEMU >= 10.2 accepts the chain");
    assert!(line.contains("QEMU <= 10.1"), "{line}");
}

#[test]
fn validate_checks_each_numbered_identity() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = vnc_installed(d);
    let qdir = d.join("root/etc/pki/qemu");
    // A second identity, as QEMU 10.2 reads it; its key readable by everyone.
    std::fs::copy(qdir.join("server-cert.pem"), qdir.join("server-cert-0.pem")).unwrap();
    std::fs::copy(qdir.join("server-key.pem"), qdir.join("server-key-0.pem")).unwrap();
    std::fs::set_permissions(
        qdir.join("server-key-0.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o444),
    )
    .unwrap();
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let info = check(&report, "qemu.vnc.server.identity2");
    assert_eq!(info["status"], "info");
    assert!(info["message"]
        .as_str()
        .unwrap()
        .contains("QEMU >= 10.2 only"));
    let key = check(&report, "qemu.vnc.server.identity2.key_mode");
    assert_eq!(key["status"], "fail", "{key:#}");
    assert!(key["message"]
        .as_str()
        .unwrap()
        .contains("readable by every user"));
    // A numbered pair after a gap (no -1) is never read by QEMU: said, naming the file.
    std::fs::copy(qdir.join("server-cert.pem"), qdir.join("server-cert-2.pem")).unwrap();
    std::fs::copy(qdir.join("server-key.pem"), qdir.join("server-key-2.pem")).unwrap();
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let gap = check(&report, "qemu.vnc.server.identities.gap");
    assert_eq!(gap["status"], "warn", "{gap:#}");
    assert!(
        gap["file"].as_str().unwrap().ends_with("server-cert-2.pem"),
        "{gap:#}"
    );
    // A number QEMU never builds (it writes N without leading zeros).
    std::fs::copy(
        qdir.join("server-cert.pem"),
        qdir.join("server-cert-01.pem"),
    )
    .unwrap();
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let zero = check(&report, "qemu.vnc.server.identities.leading_zero");
    assert!(
        zero["file"]
            .as_str()
            .unwrap()
            .ends_with("server-cert-01.pem"),
        "{zero:#}"
    );
}

#[test]
fn hostname_may_be_given_more_than_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let root = d.join("root");
    common::install(d, &["--root", s(&root)], "server", &p).expect(0);
    let validate = |names: &[&str]| {
        let mut args = vec!["validate", "--root", s(&root), "server", "--json"];
        for n in names {
            args.extend(["--hostname", n]);
        }
        json(&virtpki(d, &args))
    };
    let report = validate(&["localhost", "127.0.0.1"]);
    assert_eq!(check(&report, "server.hostname")["status"], "pass");
    let report = validate(&["localhost", "other.example"]);
    let h = check(&report, "server.hostname");
    assert_eq!(h["status"], "warn");
    let msg = h["message"].as_str().unwrap();
    assert!(
        msg.contains("other.example") && !msg.contains("localhost nor"),
        "{msg}"
    );
}

#[test]
fn validate_warns_of_expiry_within_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::ca_init(d, &d.join("ca"));
    virtpki(
        d,
        &[
            "issue",
            "server",
            "--ca-dir",
            s(&d.join("ca")),
            "--cn",
            "localhost",
            "--days",
            "10",
            "--key-type",
            "ecdsa",
            "--out-dir",
            s(&d.join("out")),
        ],
    )
    .expect(0);
    let conf = qemu_conf(d, "vnc_tls = 1\n");
    let run = virtpki(
        d,
        &[
            "install",
            "--qemu",
            "--subsystem",
            "vnc",
            "--ca-dir",
            s(&d.join("ca")),
            "--from",
            s(&d.join("out")),
            "--root",
            s(&d.join("root")),
            "--qemu-conf",
            s(&conf),
        ],
    );
    run.expect(0);
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let e = check(&report, "qemu.vnc.server.cert_properties.expires_soon");
    assert_eq!(e["status"], "warn", "{e:#}");
    // Review: the fix is QEMU's install, not libvirt's (which writes /etc/pki/libvirt and
    // reloads libvirtd), and the message says what QEMU does.
    let fix = e["fix"].as_str().unwrap();
    assert!(
        fix.contains("virtpki install --qemu --role server"),
        "{fix}"
    );
    assert!(!fix.contains("--reload"), "{fix}");
    let message = e["message"].as_str().unwrap();
    assert!(!message.contains("libvirtd"), "{message}");
    assert!(message.contains("QEMU"), "{message}");
    // --warn-days 5: not yet.
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost", "--warn-days", "5"],
    ));
    assert_eq!(
        check(&report, "qemu.vnc.server.cert_properties")["status"],
        "pass"
    );
}

/// Review: a relative directory in qemu.conf stays under --root (install wrote into the
/// caller's working directory), and is reported.
#[test]
fn a_relative_directory_stays_under_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let conf = qemu_conf(d, "vnc_tls = 1\nvnc_tls_x509_cert_dir = \"pki/vnc\"\n");
    let run = install_qemu(d, &p, &p.server, &conf, &["--subsystem", "vnc"]).expect(0);
    assert!(
        d.join("root/pki/vnc/ca-cert.pem").exists(),
        "{}",
        run.stdout
    );
    assert!(!d.join("pki").exists(), "written outside --root");
    assert!(
        run.stdout.contains("not an absolute path"),
        "{}",
        run.stdout
    );
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let c = check(&report, "qemu.conf.relative_dir");
    assert_eq!(c["status"], "warn", "{c:#}");
    assert!(c["fix"].as_str().unwrap().contains("/pki/vnc"), "{c:#}");
    assert_eq!(
        check(&report, "qemu.vnc.dir")["file"],
        s(&d.join("root/pki/vnc"))
    );
}

/// Review: a directory QEMU's user owns, or its group may write, lets QEMU replace its own
/// CA: validate fails it, and install says so when it installs into one.
#[test]
fn qemu_may_not_replace_its_own_ca() {
    if !is_root() {
        return eprintln!("not root: owners cannot be given");
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let conf = qemu_conf(d, "vnc_tls = 1\n");
    let qdir = d.join("root/etc/pki/qemu");
    std::fs::create_dir_all(&qdir).unwrap();
    let nobody = nix_ids("nobody");
    std::os::unix::fs::chown(&qdir, Some(nobody.0), Some(nobody.1)).unwrap();
    std::fs::set_permissions(&qdir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let run = install_qemu(d, &p, &p.server, &conf, &["--subsystem", "vnc"]).expect(0);
    assert!(run.stdout.contains("QEMU can replace"), "{}", run.stdout);
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let c = check(&report, "qemu.vnc.dir_mode");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"].as_str().unwrap().contains("QEMU can replace"),
        "{c:#}"
    );
    // root:<qemu group> 0770: the group writes, the same.
    std::os::unix::fs::chown(&qdir, Some(0), Some(nobody.1)).unwrap();
    std::fs::set_permissions(&qdir, std::fs::Permissions::from_mode(0o770)).unwrap();
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    assert_eq!(check(&report, "qemu.vnc.dir_mode")["status"], "fail");
}

/// The uid and gid of `user` (getpwnam).
fn nix_ids(user: &str) -> (u32, u32) {
    let c = std::ffi::CString::new(user).unwrap();
    // SAFETY: a valid C string; the result is read at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    assert!(!pw.is_null(), "no user {user}");
    // SAFETY: non-null.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

/// Review: a TLS setting repeated later in qemu.conf is ignored by libvirt: validate and
/// install say which line counts.
#[test]
fn a_repeated_setting_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let conf = qemu_conf(
        d,
        "vnc_tls = 1\nvnc_tls_x509_verify = 0\nvnc_tls_x509_verify = 1\n",
    );
    let run = install_qemu(d, &p, &p.server, &conf, &["--subsystem", "vnc"]).expect(0);
    assert!(
        run.stdout.contains("vnc_tls_x509_verify is set again"),
        "{}",
        run.stdout
    );
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let c = check(&report, "qemu.conf.repeated");
    assert_eq!(c["status"], "warn", "{c:#}");
    assert!(c["message"].as_str().unwrap().contains(":5:"), "{c:#}");
    // The first line counts: verification is off.
    assert_eq!(check(&report, "qemu.vnc.verify")["status"], "warn");
}

/// Review: a server directory with numbered identities only (server-cert-0.pem, no
/// server-cert.pem) is refused by every QEMU before 10.2 (tested: qemu-img 10.0.2 and
/// Debian 12's 7.2 say "Unable to access credentials .../server-cert.pem"): validate said
/// nothing of it and passed; and the names check looked at server-cert.pem only.
#[test]
fn numbered_identities_only_are_refused_before_qemu_10_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = vnc_installed(d);
    let qdir = d.join("root/etc/pki/qemu");
    std::fs::rename(qdir.join("server-cert.pem"), qdir.join("server-cert-0.pem")).unwrap();
    std::fs::rename(qdir.join("server-key.pem"), qdir.join("server-key-0.pem")).unwrap();
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "wrong.example"],
    ));
    let c = check(&report, "qemu.vnc.server.identities.needs_qemu_10_2");
    assert_ne!(c["status"], "pass", "{c:#}");
    assert!(
        c["message"].as_str().unwrap().contains("server-cert.pem"),
        "{c:#}"
    );
    // The names are checked on the identity QEMU 10.2 serves.
    let h = check(&report, "qemu.vnc.hostname");
    assert_eq!(h["status"], "warn", "{h:#}");
    assert!(
        h["message"].as_str().unwrap().contains("wrong.example"),
        "{h:#}"
    );
}

/// Review: QEMU's server reads dh-params.pem when it is there and refuses the directory when
/// it is malformed (tested: qemu-img 10.0.2 and Debian 12's 7.2, "Unable to load DH
/// parameters from ..."); validate did not look at it and passed.
#[test]
fn a_malformed_dh_params_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = vnc_installed(d);
    let dh = d.join("root/etc/pki/qemu/dh-params.pem");
    std::fs::write(
        &dh,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let run = validate_qemu(d, &conf, &["--json", "--hostname", "localhost"]);
    let report = json(&run);
    let c = check(&report, "qemu.vnc.server.dh_params");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("Unable to load DH parameters"),
        "{c:#}"
    );
    assert!(c["fix"].as_str().unwrap().contains("rm "), "{c:#}");
    assert_eq!(run.code, 1);
}

/// A socket, FIFO, device or directory at dh-params.pem or server-key.pem: validate --qemu
/// says what it is, naming the file, and never blocks (it read both with a plain read, which a
/// FIFO holds for good).
#[test]
fn what_is_not_a_file_in_a_qemu_directory_is_named_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = vnc_installed(d);
    let qemu_dir = d.join("root/etc/pki/qemu");
    for (name, id) in [
        ("dh-params.pem", "qemu.vnc.server.dh_params"),
        ("server-key.pem", "qemu.vnc.server.key_mode"),
    ] {
        let path = qemu_dir.join(name);
        for kind in common::NOT_FILES {
            let _listener = common::make_not_file(&path, kind);
            let mut args = vec!["validate", "--qemu", "--root"];
            let root = d.join("root");
            args.extend([s(&root), "--qemu-conf", s(&conf), "--json"]);
            args.extend(["--hostname", "localhost"]);
            let run = common::virtpki_within(d, &args, 20);
            let report = json(&run);
            let c = check(&report, id);
            assert_eq!(c["status"], "fail", "{name}, {kind}: {c:#}");
            assert!(
                c["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{kind}, not a regular file"))
                    && c["message"].as_str().unwrap().contains(s(&path)),
                "{name}, {kind}: {c:#}"
            );
            assert_eq!(run.code, 1, "{name}, {kind}");
            common::remove_not_file(&path);
        }
    }
}

/// Review: /etc/pki/libvirt-vnc as a plain file still takes VNC away from the default
/// directory (libvirt's virFileExists): validate's fix must be to remove it, not to install
/// into it; a dangling link does not count, as for libvirt.
#[test]
fn an_implicit_directory_that_is_a_file_is_to_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = vnc_installed(d);
    let implicit = d.join("root/etc/pki/libvirt-vnc");
    std::os::unix::fs::symlink(d.join("nowhere"), &implicit).unwrap();
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    assert_eq!(
        check(&report, "qemu.vnc.dir")["file"],
        s(&d.join("root/etc/pki/qemu"))
    );
    std::fs::remove_file(&implicit).unwrap();
    std::fs::write(&implicit, "").unwrap();
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let c = check(&report, "qemu.vnc.dir_exists");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"].as_str().unwrap().contains("Not a directory"),
        "{c:#}"
    );
    let fix = c["fix"].as_str().unwrap();
    assert!(fix.starts_with("rm "), "{fix}");
    assert!(fix.contains("libvirt-vnc"), "{fix}");
}

/// Review: libvirt gives QEMU its user's supplementary groups looked up by uid
/// (virGetGroupList), also when qemu.conf names the user by number (`user = "+N"`); a key
/// readable through such a group is readable by QEMU.
#[test]
fn supplementary_groups_count_for_a_numeric_user() {
    if !is_root() {
        return eprintln!("not root: owners cannot be given");
    }
    // A user that is a member of a group other than its own, from /etc/group.
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let Some((gid, member)) = groups.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let member = f.get(3)?.split(',').find(|m| !m.is_empty())?;
        Some((f[2].parse::<u32>().ok()?, member.to_owned()))
    }) else {
        return eprintln!("no user with a supplementary group here");
    };
    let (uid, _) = nix_ids(&member);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    for user in [member.clone(), format!("+{uid}")] {
        let path = d.join("qemu.conf");
        std::fs::write(
            &path,
            format!("user = \"{user}\"\ngroup = \"nogroup\"\nvnc_tls = 1\n"),
        )
        .unwrap();
        install_qemu(d, &p, &p.server, &path, &["--subsystem", "vnc"]).expect(0);
        let qdir = d.join("root/etc/pki/qemu");
        let key = qdir.join("server-key.pem");
        std::os::unix::fs::chown(&key, Some(0), Some(gid)).unwrap();
        // The directory too: entered through the supplementary group only.
        std::os::unix::fs::chown(&qdir, Some(0), Some(gid)).unwrap();
        let report = json(&validate_qemu(
            d,
            &path,
            &["--json", "--hostname", "localhost"],
        ));
        let k = check(&report, "qemu.vnc.server.key_mode");
        assert_eq!(k["status"], "pass", "user {user}: {k:#}");
        assert_eq!(
            check(&report, "qemu.vnc.dir_mode")["status"],
            "pass",
            "user {user}"
        );
    }
}

/// Review: the AppArmor check looks at the directory QEMU really opens: /etc/pki/qemu as a
/// link to /srv/qemu is outside Debian's profile (AppArmor resolves links).
#[test]
fn apparmor_follows_a_linked_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = vnc_installed(d);
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != "qemu.vnc.apparmor"),
        "{report:#}"
    );
    std::fs::create_dir_all(d.join("root/srv")).unwrap();
    std::fs::rename(d.join("root/etc/pki/qemu"), d.join("root/srv/qemu")).unwrap();
    std::os::unix::fs::symlink("../../srv/qemu", d.join("root/etc/pki/qemu")).unwrap();
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let a = check(&report, "qemu.vnc.apparmor");
    assert!(
        a["message"].as_str().unwrap().contains("/srv/qemu"),
        "{a:#}"
    );
}

/// Review: an encrypted server key is what a `*_tls_x509_secret_uuid` is for (libvirt gives
/// QEMU the passphrase): validate failed it all the same, saying virtpki "like libvirt" needs
/// it unencrypted. Without a secret it fails with QEMU's words and both fixes.
#[test]
fn an_encrypted_key_with_a_secret_is_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = vnc_installed(d);
    let key = d.join("root/etc/pki/qemu/server-key.pem");
    // Rewritten in place: its owner and group stay install's.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    // An EncryptedPrivateKeyInfo (PBES2) whose ciphertext is not looked into.
    std::fs::write(
        &key,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMBUwDQYJKoZIhvcNAQUNMAAEBN6tvu8=\n\
         -----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o440)).unwrap();
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let c = check(&report, "qemu.vnc.server.load");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("Decryption has failed"),
        "{c:#}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("vnc_tls_x509_secret_uuid"),
        "{c:#}"
    );
    let conf = qemu_conf(
        d,
        "vnc_tls = 1\nvnc_tls_x509_secret_uuid = \"0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f\"\n",
    );
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let c = check(&report, "qemu.vnc.server.load");
    assert_eq!(c["status"], "info", "{c:#}");
    assert!(
        c["message"].as_str().unwrap().contains("encrypted"),
        "{c:#}"
    );
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] != "fail"),
        "{report:#}"
    );
}

/// Review: SPICE's directory is read by spice-server (OpenSSL), not by QEMU's tls-creds-x509:
/// the findings must not carry QEMU's load-time notes ("QEMU <= 10.1 refuses ...") there.
#[test]
fn spice_findings_do_not_carry_qemu_s_load_notes() {
    use virtpki_tools::kit::{self_signed, signed_by, Spec, KU_KEY_CERT_SIGN};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root_ca = self_signed(&Spec::ca("Test CA"));
    let int = signed_by(
        &Spec::ca("Intermediate CA")
            .bc(Some(true), true)
            .ku(KU_KEY_CERT_SIGN, true),
        &root_ca,
    );
    let leaf = signed_by(&Spec::server("localhost"), &int);
    let q = d.join("root/etc/pki/qemu");
    std::fs::create_dir_all(&q).unwrap();
    std::fs::write(q.join("ca-cert.pem"), root_ca.pem()).unwrap();
    std::fs::write(q.join("server-cert.pem"), leaf.pem() + &int.pem()).unwrap();
    std::fs::write(q.join("server-key.pem"), leaf.key_pem()).unwrap();
    std::fs::set_permissions(
        q.join("server-key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    for (switch, starts) in [
        ("vnc_tls = 1\n", "QEMU >= 10.2"),
        ("spice_tls = 1\n", "SPICE:"),
    ] {
        let conf = qemu_conf(d, switch);
        let report = json(&validate_qemu(
            d,
            &conf,
            &["--json", "--hostname", "localhost"],
        ));
        let sub = if switch.starts_with("vnc") {
            "vnc"
        } else {
            "spice"
        };
        let c = check(&report, &format!("qemu.{sub}.server.cert_properties.chain"));
        let note = c["qemu_differs"].as_str().unwrap();
        assert!(note.starts_with(starts), "{sub}: {note}");
    }
}

/// Review: under --root (an image, a container) QEMU's user and group are the root's own
/// accounts (ROOT/etc/passwd, ROOT/etc/group), not this machine's: the host has no
/// libvirt-qemu, or another uid for it.
#[test]
fn accounts_come_from_the_root_s_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let etc = d.join("root/etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         libvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("group"),
        "root:x:0:\nkvm:x:108:\nlibvirt-qemu:x:64055:libvirt-qemu\nssl:x:200:libvirt-qemu\n",
    )
    .unwrap();
    // No user or group in qemu.conf: Debian's libvirt-qemu, found in the root's files.
    let conf = d.join("qemu.conf");
    std::fs::write(&conf, "vnc_tls = 1\n").unwrap();
    let run = install_qemu(d, &p, &p.server, &conf, &["--subsystem", "vnc"]).expect(0);
    assert!(
        run.stdout
            .contains("QEMU runs as libvirt-qemu:libvirt-qemu"),
        "{}",
        run.stdout
    );
    let key = d.join("root/etc/pki/qemu/server-key.pem");
    if is_root() {
        assert_eq!(std::fs::metadata(&key).unwrap().gid(), 64055);
    }
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    let u = check(&report, "qemu.conf.user");
    assert_eq!(u["status"], "pass", "{u:#}");
    assert!(
        u["message"]
            .as_str()
            .unwrap()
            .contains("uid 64055, gid 64055"),
        "{u:#}"
    );
    if is_root() {
        // A key readable through the supplementary group ssl (200) of the root's group file.
        std::os::unix::fs::chown(&key, Some(0), Some(200)).unwrap();
        let report = json(&validate_qemu(
            d,
            &conf,
            &["--json", "--hostname", "localhost"],
        ));
        assert_eq!(check(&report, "qemu.vnc.server.key_mode")["status"], "pass");
    }
}

/// Review: install --qemu writes the unnumbered pair; numbered identities already in the
/// directory (an older key, another algorithm) stay, and QEMU >= 10.2 serves them too: said.
#[test]
fn install_names_further_identities_left_in_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let conf = qemu_conf(d, "vnc_tls = 1\n");
    let q = d.join("root/etc/pki/qemu");
    std::fs::create_dir_all(&q).unwrap();
    std::fs::write(q.join("server-cert-0.pem"), "old").unwrap();
    std::fs::write(q.join("server-key-0.pem"), "old").unwrap();
    let run = install_qemu(d, &p, &p.server, &conf, &["--subsystem", "vnc"]).expect(0);
    assert!(run.stdout.contains("server-cert-0.pem"), "{}", run.stdout);
    assert!(run.stdout.contains("QEMU >= 10.2"), "{}", run.stdout);
}

/// `dir/sealed`: `p`'s server certificate and its key encrypted as PKCS#8 by openssl (what
/// QEMU decrypts with a libvirt secret's passphrase), the key 0600.
fn sealed_server(dir: &Path, p: &Pki) -> PathBuf {
    common::require("openssl");
    let out = dir.join("sealed");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(p.server.join("servercert.pem"), out.join("servercert.pem")).unwrap();
    let key = out.join("serverkey.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:qemu",
        ])
        .arg("-in")
        .arg(p.server.join("serverkey.pem"))
        .arg("-out")
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    out
}

/// An encrypted source key: QEMU decrypts it with the libvirt secret a
/// `*_tls_x509_secret_uuid` names for the subsystem. Without one it is refused, naming the
/// settings that would give one (as libvirt inherits them) and nothing is written; with one
/// it is installed byte for byte, the certificate still checked against the CA, and said.
#[test]
fn an_encrypted_key_is_installed_only_where_a_secret_decrypts_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let from = sealed_server(d, &p);
    let qemu_dir = d.join("root/etc/pki/qemu");
    // No secret for vnc: refused, nothing written.
    let conf = qemu_conf(d, "vnc_tls = 1\n");
    let run = install_qemu(d, &p, &from, &conf, &["--subsystem", "vnc"]).expect(2);
    assert!(
        run.stderr.contains("the private key is encrypted")
            && run.stderr.contains(
                "neither vnc_tls_x509_secret_uuid nor default_tls_x509_secret_uuid is set"
            )
            && run.stderr.contains("Decryption has failed")
            && run.stderr.contains("openssl pkey"),
        "{}",
        run.stderr
    );
    assert!(!qemu_dir.exists(), "a refusal wrote {}", qemu_dir.display());
    // vnc has its own directory: the default secret is not inherited (libvirt's rule), so
    // default_tls_x509_secret_uuid does not help, and only vnc's own setting is named.
    let vnc_dir = d.join("root/etc/pki/vnc");
    std::fs::create_dir_all(&vnc_dir).unwrap();
    let conf = qemu_conf(
        d,
        "vnc_tls = 1\nvnc_tls_x509_cert_dir = \"/etc/pki/vnc\"\n\
         default_tls_x509_secret_uuid = \"0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f\"\n",
    );
    let run = install_qemu(d, &p, &from, &conf, &["--subsystem", "vnc"]).expect(2);
    assert!(
        run.stderr.contains("(vnc_tls_x509_secret_uuid is not set)"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(&vnc_dir).unwrap().count(), 0);
    // SPICE has no secret at all.
    let conf = qemu_conf(
        d,
        "spice_tls = 1\ndefault_tls_x509_secret_uuid = \"0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f\"\n",
    );
    let run = install_qemu(d, &p, &from, &conf, &["--subsystem", "spice"]).expect(2);
    assert!(
        run.stderr.contains("SPICE has no such setting"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("unencrypted only"), "{}", run.stderr);
    // vnc's own secret: installed as it is, and said; validate --qemu passes with a note.
    let conf = qemu_conf(
        d,
        "vnc_tls = 1\nvnc_tls_x509_secret_uuid = \"0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f\"\n",
    );
    let run = install_qemu(d, &p, &from, &conf, &["--subsystem", "vnc", "--json"]).expect(0);
    let out = json(&run);
    let installed = qemu_dir.join("server-key.pem");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(from.join("serverkey.pem")).unwrap()
    );
    assert_eq!(mode(&installed), 0o440);
    // In words, a warning: neither the key nor the pair could be checked.
    let run = install_qemu(d, &p, &from, &conf, &["--subsystem", "vnc", "--dry-run"]).expect(0);
    let line = common::line_with(&run.stdout, "is encrypted");
    assert!(
        line.starts_with("warning: ") && line.contains("checked neither the key nor"),
        "{}",
        run.stdout
    );
    let notes = out["qemu"]["notes"].to_string();
    assert!(
        notes.contains("is encrypted")
            && notes.contains("0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f")
            && notes.contains(&format!("{}:4", conf.display())),
        "{notes}"
    );
    let report = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    assert_eq!(check(&report, "qemu.vnc.server.load")["status"], "info");
    // The certificate is still checked: one of another CA is refused, key encrypted or not.
    let other = d.join("other");
    common::ca_init(d, &other);
    let run = virtpki(
        d,
        &[
            "install",
            "--qemu",
            "--ca-dir",
            s(&other),
            "--from",
            s(&from),
            "--root",
            s(&d.join("root2")),
            "--qemu-conf",
            s(&conf),
            "--subsystem",
            "vnc",
        ],
    )
    .expect(2);
    assert!(
        run.stderr.contains("fail libvirt's checks"),
        "{}",
        run.stderr
    );
    assert!(!d.join("root2/etc/pki/qemu").exists());
}

/// The markers of an encrypted PKCS#8 key around what is no EncryptedPrivateKeyInfo are
/// nothing QEMU could decrypt: not installed "as it is" where a secret applies (it was, with a
/// note saying only that the passphrase is needed), but refused as an unreadable key, naming
/// it; nothing is written.
#[test]
fn encrypted_key_markers_around_junk_are_refused_even_with_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let from = sealed_server(d, &p);
    let key = from.join("serverkey.pem");
    std::fs::write(
        &key,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let conf = qemu_conf(
        d,
        "vnc_tls = 1\nvnc_tls_x509_secret_uuid = \"0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f\"\n",
    );
    let run = install_qemu(d, &p, &from, &conf, &["--subsystem", "vnc"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(s(&key)), "{}", run.stderr);
    assert!(
        run.stderr.contains("is not one encrypted PKCS#8 key")
            && run.stderr.contains("0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f"),
        "{}",
        run.stderr
    );
    assert!(!d.join("root/etc/pki/qemu").exists());
}

/// qemu.conf is read by libvirtd as root, as libvirtd.conf is: the root's one another user
/// may change (here writable by every user) fails `qemu.conf.file_mode`, naming it; root's
/// alone passes. One given with --qemu-conf (a draft, maybe) is not held to the rule.
#[test]
fn validate_fails_a_qemu_conf_others_may_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let both = both_dir(d, &p);
    let conf = qemu_conf(d, "vnc_tls = 1\n");
    install_qemu(d, &p, &both, &conf, &["--role", "both"]).expect(0);
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let given = json(&validate_qemu(
        d,
        &conf,
        &["--json", "--hostname", "localhost"],
    ));
    assert!(
        !given["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "qemu.conf.file_mode"),
        "{given:#}"
    );
    // The root's own qemu.conf, as libvirtd reads it.
    let root = d.join("root");
    std::fs::create_dir_all(root.join("etc/libvirt")).unwrap();
    let conf = root.join("etc/libvirt/qemu.conf");
    std::fs::copy(d.join("qemu.conf"), &conf).unwrap();
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let validate = || {
        virtpki(
            d,
            &[
                "validate",
                "--qemu",
                "--root",
                s(&root),
                "--json",
                "--hostname",
                "localhost",
            ],
        )
    };
    assert_eq!(
        check(&json(&validate()), "qemu.conf.file_mode")["status"],
        "pass"
    );
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let run = validate();
    let report = json(&run);
    let c = check(&report, "qemu.conf.file_mode");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} is writable by every user", conf.display())),
        "{c:#}"
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
}
