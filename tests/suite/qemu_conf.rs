//! qemu.conf's TLS model (`daemon_conf::qemu`): libvirt's directory fallback, the `*_verify`
//! rule, the roles, user and group, `migration_host`, misspelt keys.

use std::path::Path;

use virtpki::daemon_conf::qemu::{DirOrigin, Enabled, QemuConf, QemuRole, Subsystem};

fn conf(text: &str) -> QemuConf {
    QemuConf::parse(text.as_bytes(), "qemu.conf").unwrap()
}

#[test]
fn directories_follow_libvirt_s_fallback() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // Nothing set, nothing there: the built-in /etc/pki/qemu, for every subsystem.
    let c = QemuConf::empty();
    for sub in Subsystem::ALL {
        let d = c.dir(sub, r);
        assert_eq!(d.dir, r.join("etc/pki/qemu"), "{sub}");
    }
    assert_eq!(
        c.dir(Subsystem::Vnc, r).origin,
        DirOrigin::Default(None),
        "vnc"
    );
    // /etc/pki/libvirt-vnc exists: VNC takes it, the others do not.
    std::fs::create_dir_all(r.join("etc/pki/libvirt-vnc")).unwrap();
    let d = c.dir(Subsystem::Vnc, r);
    assert_eq!(d.dir, r.join("etc/pki/libvirt-vnc"));
    assert_eq!(d.origin, DirOrigin::Implicit);
    assert!(
        d.why().contains("/etc/pki/libvirt-vnc exists"),
        "{}",
        d.why()
    );
    assert_eq!(c.dir(Subsystem::Spice, r).dir, r.join("etc/pki/qemu"));
    // Migration's implicit directory is libvirt-migrate, not libvirt-migration.
    std::fs::create_dir_all(r.join("etc/pki/libvirt-migration")).unwrap();
    assert_eq!(c.dir(Subsystem::Migrate, r).dir, r.join("etc/pki/qemu"));
    std::fs::write(r.join("etc/pki/libvirt-migrate"), "").unwrap();
    // Any file type counts, as virFileExists.
    assert_eq!(
        c.dir(Subsystem::Migrate, r).dir,
        r.join("etc/pki/libvirt-migrate")
    );
    // A set key wins over the implicit directory; the default follows default_tls_x509_cert_dir.
    let c =
        conf("default_tls_x509_cert_dir = \"/srv/pki\"\nvnc_tls_x509_cert_dir = \"/srv/vnc\"\n");
    let d = c.dir(Subsystem::Vnc, r);
    assert_eq!((d.dir, d.origin), (r.join("srv/vnc"), DirOrigin::Set(2)));
    let d = c.dir(Subsystem::Chardev, r);
    assert_eq!(
        (d.dir, d.origin),
        (r.join("srv/pki"), DirOrigin::Default(Some(1)))
    );
    assert_eq!(c.dir(Subsystem::Default, r).origin, DirOrigin::Set(1));
}

#[test]
fn verify_resolution() {
    let c = QemuConf::empty();
    let v = |c: &QemuConf, s| c.verify(s).map(|v| v.value);
    assert_eq!(v(&c, Subsystem::Vnc), Some(false));
    assert_eq!(v(&c, Subsystem::Chardev), Some(true));
    assert_eq!(v(&c, Subsystem::Migrate), Some(true));
    assert_eq!(v(&c, Subsystem::Backup), Some(true));
    // SPICE, NBD and VxHS have no verify key at all.
    assert_eq!(v(&c, Subsystem::Spice), None);
    assert_eq!(v(&c, Subsystem::Nbd), None);
    assert_eq!(v(&c, Subsystem::Vxhs), None);
    // The default applies where the subsystem's own key is not set.
    let c = conf("default_tls_x509_verify = 1\nmigrate_tls_x509_verify = 0\n");
    assert_eq!(v(&c, Subsystem::Vnc), Some(true));
    assert_eq!(
        c.verify(Subsystem::Vnc).unwrap().set_by,
        Some(("default_tls_x509_verify".into(), 1))
    );
    assert_eq!(v(&c, Subsystem::Migrate), Some(false));
    let c = conf("default_tls_x509_verify = 0\n");
    assert_eq!(v(&c, Subsystem::Chardev), Some(false));
}

#[test]
fn enabled_subsystems_and_roles() {
    let c = conf("vnc_tls = 1\nspice_tls = 0\nnbd_tls = 1\n");
    assert_eq!(c.enabled(Subsystem::Vnc), Enabled::On(1));
    assert_eq!(c.enabled(Subsystem::Spice), Enabled::Off);
    assert_eq!(c.enabled(Subsystem::Chardev), Enabled::Off);
    assert_eq!(c.enabled(Subsystem::Nbd), Enabled::On(3));
    assert_eq!(c.enabled(Subsystem::Migrate), Enabled::PerUse);
    assert_eq!(c.enabled(Subsystem::Backup), Enabled::PerUse);
    assert_eq!(Subsystem::Vnc.qemu_role(), QemuRole::Server);
    assert_eq!(Subsystem::Spice.qemu_role(), QemuRole::Server);
    assert_eq!(Subsystem::Backup.qemu_role(), QemuRole::Server);
    assert_eq!(Subsystem::Nbd.qemu_role(), QemuRole::Client);
    assert_eq!(Subsystem::Migrate.qemu_role(), QemuRole::Both);
    assert_eq!(Subsystem::Chardev.qemu_role(), QemuRole::Either);
    assert_eq!(Subsystem::from_name("migrate"), Some(Subsystem::Migrate));
    assert_eq!(Subsystem::from_name("migration"), None);
}

#[test]
fn user_group_and_migration_host() {
    let c = QemuConf::empty();
    assert_eq!(c.user().name, "libvirt-qemu");
    assert_eq!(c.group().name, "libvirt-qemu");
    assert_eq!(c.user().line, None);
    let c = conf("user = \"qemu\"\ngroup = \"+0\"\nmigration_host = \"[2001:db8::1]\"\n");
    assert_eq!((c.user().name.as_str(), c.user().line), ("qemu", Some(1)));
    assert_eq!(c.group().forced_id(), Some(0));
    assert_eq!(c.migration_host().unwrap().value, "2001:db8::1");
    assert!(c.errors().is_empty(), "{:?}", c.errors());
    // libvirt refuses a migration_host that is this machine itself.
    for local in ["localhost", "localhost.localdomain", "127.0.0.1", "::1"] {
        let c = conf(&format!("migration_host = \"{local}\"\n"));
        let e = c.errors();
        assert_eq!(e.len(), 1, "{local}");
        assert!(
            e[0].message
                .contains("must not be the address of the local machine"),
            "{}",
            e[0].message
        );
    }
}

#[test]
fn wrong_types_are_errors_with_lines() {
    let c = conf("vnc_tls = 2\nvnc_tls_x509_cert_dir = 5\nuser = [\"a\"]\n");
    let e = c.errors();
    assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(e[0].message.starts_with("qemu.conf:1:"), "{}", e[0].message);
}

#[test]
fn misspelt_keys_name_the_key_meant() {
    let c = conf(
        "migrate_host = \"a\"\nvnc_tls_x509_verfy = 1\nvnc_listen = \"0.0.0.0\"\n\
         spice_tls_x509_verify = 1\nsome_future_setting = 1\n",
    );
    let u = c.unknown_keys();
    let got: Vec<(&str, Option<&str>)> = u.iter().map(|k| (k.name.as_str(), k.meant)).collect();
    assert_eq!(
        got,
        [
            ("migrate_host", Some("migration_host")),
            ("vnc_tls_x509_verfy", Some("vnc_tls_x509_verify")),
            // Not a key of libvirt's: SPICE has no verify setting.
            ("spice_tls_x509_verify", None),
        ]
    );
}

#[test]
fn set_directories_that_do_not_exist_stop_the_driver() {
    let root = tempfile::tempdir().unwrap();
    let c = conf("default_tls_x509_cert_dir = \"/nope\"\nnbd_tls_x509_cert_dir = \"/\"\n");
    let m = c.missing_dirs(root.path());
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].message,
        "qemu.conf:1: default_tls_x509_cert_dir directory '/nope' does not exist"
    );
    // The built-in default need not exist.
    assert!(QemuConf::empty()
        .missing_dirs(Path::new("/nonexistent"))
        .is_empty());
}

#[test]
fn secret_uuid_inheritance() {
    let c = conf(
        "default_tls_x509_secret_uuid = \"u0\"\nvnc_tls_x509_cert_dir = \"/v\"\n\
         chardev_tls_x509_secret_uuid = \"u1\"\n",
    );
    assert_eq!(c.secret_uuid(Subsystem::Migrate).unwrap().value, "u0");
    assert!(c.secret_uuid(Subsystem::Vnc).is_none());
    assert_eq!(c.secret_uuid(Subsystem::Chardev).unwrap().value, "u1");
    assert!(c.secret_uuid(Subsystem::Spice).is_none());
}

/// Review: a relative directory in qemu.conf is taken by libvirt and QEMU against their own
/// working directory (/ for the system daemon), never against the caller's: under a root it
/// must stay under the root (install wrote into the caller's working directory, outside
/// --root).
#[test]
fn a_relative_directory_stays_under_the_root() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let c = conf("default_tls_x509_cert_dir = \"pki/qemu\"\nvnc_tls_x509_cert_dir = \"pki/vnc\"\n");
    assert_eq!(c.dir(Subsystem::Vnc, r).dir, r.join("pki/vnc"));
    assert_eq!(c.dir(Subsystem::Spice, r).dir, r.join("pki/qemu"));
    assert_eq!(c.default_dir(r).0, r.join("pki/qemu"));
    // libvirt's start check looks there too.
    let missing = c.missing_dirs(r);
    assert_eq!(missing.len(), 2, "{missing:?}");
    std::fs::create_dir_all(r.join("pki/vnc")).unwrap();
    std::fs::create_dir_all(r.join("pki/qemu")).unwrap();
    assert!(c.missing_dirs(r).is_empty());
    // And it is said: the meaning depends on the daemon's working directory.
    let warned = c.relative_dirs();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(
        warned[0].message.contains("not an absolute path"),
        "{}",
        warned[0].message
    );
}

/// Review: libvirt uses the first of two lines of one name; the later one (an admin's
/// `vnc_tls_x509_verify = 1` appended below an old `= 0`) is silently ignored: say so.
#[test]
fn a_repeated_tls_setting_is_reported_at_the_later_line() {
    let c =
        conf("vnc_tls_x509_verify = 0\nvnc_tls = 1\nvnc_tls_x509_verify = 1\nfoo = 1\nfoo = 2\n");
    assert!(
        !c.verify(Subsystem::Vnc).unwrap().value,
        "the first line wins"
    );
    let r = c.repeated();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].line, 3);
    assert_eq!(
        r[0].message,
        "qemu.conf:3: vnc_tls_x509_verify is set again; libvirt uses only the first setting \
         (line 1)"
    );
}

/// Review: libvirt refuses a loopback `migration_address` at load just as a loopback
/// `migration_host` (facts 1.1: both, brackets removed first).
#[test]
fn a_loopback_migration_address_is_refused_too() {
    for local in ["localhost", "127.0.0.1", "[::1]"] {
        let c = conf(&format!("migration_address = \"{local}\"\n"));
        let e = c.errors();
        assert_eq!(e.len(), 1, "{local}: {e:?}");
        assert!(
            e[0].message
                .contains("migration_address must not be the address of the local machine"),
            "{}",
            e[0].message
        );
    }
    assert!(conf("migration_address = \"0.0.0.0\"\n")
        .errors()
        .is_empty());
}

/// Review: AppArmor matches the path the kernel resolves: `..` leading out of an allowed
/// directory is not in it.
#[test]
fn apparmor_sees_through_dot_dot() {
    use virtpki::daemon_conf::qemu::apparmor_allows;
    assert!(apparmor_allows(Path::new("/etc/pki/qemu")));
    assert!(apparmor_allows(Path::new("/etc/pki/qemu/./vnc")));
    assert!(apparmor_allows(Path::new("/srv/../etc/pki/libvirt-vnc")));
    assert!(!apparmor_allows(Path::new(
        "/etc/pki/qemu/../../../srv/vnc"
    )));
    assert!(!apparmor_allows(Path::new("/etc/pki/qemu/..")));
}

/// Migration and backup use TLS when a domain or a migration asks for it: their directory is
/// checked only when something says this host uses it, and the reason names that thing.
#[test]
fn a_per_use_directory_is_in_use_only_when_something_says_so() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let plain = conf("");
    assert_eq!(plain.per_use_reason(Subsystem::Migrate, r), None);
    assert_eq!(plain.per_use_reason(Subsystem::Backup, r), None);
    // Set in qemu.conf.
    let set = conf("migrate_tls_x509_cert_dir = \"/etc/pki/mig\"\n");
    let why = set.per_use_reason(Subsystem::Migrate, r).unwrap();
    assert!(why.contains("migrate_tls_x509_cert_dir"), "{why}");
    // Forced.
    let forced = conf("migrate_tls_force = 1\n");
    assert_eq!(
        forced.per_use_reason(Subsystem::Migrate, r).as_deref(),
        Some("migrate_tls_force = 1")
    );
    assert_eq!(forced.per_use_reason(Subsystem::Backup, r), None);
    // The migration client's files in the default directory (backup has no client side).
    let default = r.join("etc/pki/qemu");
    std::fs::create_dir_all(&default).unwrap();
    std::fs::write(default.join("client-cert.pem"), "x").unwrap();
    let why = plain.per_use_reason(Subsystem::Migrate, r).unwrap();
    assert!(why.contains("client-cert.pem"), "{why}");
    assert_eq!(plain.per_use_reason(Subsystem::Backup, r), None);
    // /etc/pki/libvirt-backup present: libvirt's implicit directory.
    std::fs::create_dir_all(r.join("etc/pki/libvirt-backup")).unwrap();
    assert!(plain.per_use_reason(Subsystem::Backup, r).is_some());
}

/// The settings that could give a subsystem a secret follow the same inheritance as
/// `secret_uuid`: its own always, the default's only while its directory is not set; SPICE
/// none.
#[test]
fn secret_settings_name_what_secret_uuid_would_read() {
    let c = conf("vnc_tls_x509_cert_dir = \"/v\"\n");
    assert_eq!(
        c.secret_settings(Subsystem::Vnc),
        ["vnc_tls_x509_secret_uuid"]
    );
    assert_eq!(
        c.secret_settings(Subsystem::Migrate),
        [
            "migrate_tls_x509_secret_uuid",
            "default_tls_x509_secret_uuid"
        ]
    );
    assert_eq!(
        c.secret_settings(Subsystem::Default),
        ["default_tls_x509_secret_uuid"]
    );
    assert!(c.secret_settings(Subsystem::Spice).is_empty());
    // Each setting named does give a secret where the subsystem's directory allows it.
    for sub in Subsystem::ALL {
        for key in c.secret_settings(sub) {
            let with = conf(&format!("vnc_tls_x509_cert_dir = \"/v\"\n{key} = \"u\"\n"));
            assert_eq!(with.secret_uuid(sub).unwrap().value, "u", "{sub} {key}");
        }
    }
}

/// One PEM `ENCRYPTED PRIVATE KEY` block holding an EncryptedPrivateKeyInfo (here PBES2,
/// whose parameters and ciphertext are not looked into) is a key QEMU decrypts with a secret.
#[test]
fn an_encrypted_pkcs8_key_is_told_from_everything_else() {
    use virtpki::daemon_conf::qemu::is_encrypted_pkcs8;
    let block = |b64: &str| {
        format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{b64}\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
    };
    let sealed = &block("MBUwDQYJKoZIhvcNAQUNMAAEBN6tvu8=");
    assert!(is_encrypted_pkcs8(sealed.as_bytes()));
    assert!(is_encrypted_pkcs8(format!("\n{sealed}\n").as_bytes()));
    for not in [
        "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n".to_owned(),
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n\
         MAA=\n-----END RSA PRIVATE KEY-----\n"
            .to_owned(),
        format!("{sealed}{sealed}"),
        // The markers with no EncryptedPrivateKeyInfo inside: nothing QEMU could decrypt, so
        // not installed as one (the key is then refused as any unreadable key is).
        block("MAA="),
        block("not base64"),
        // rsaEncryption is no password-based encryption scheme.
        block("MBUwDQYJKoZIhvcNAQEBBQAEBN6tvu8="),
        // A byte after the structure, or no ciphertext.
        block("MBUwDQYJKoZIhvcNAQUNMAAEBN6tvu8A"),
        block("MA8wDQYJKoZIhvcNAQUNMAA="),
        format!("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n{sealed}"),
        String::new(),
    ] {
        assert!(!is_encrypted_pkcs8(not.as_bytes()), "{not}");
    }
}
