//! qemu.conf: the TLS settings libvirt's QEMU driver takes from it, and the directory, peer
//! verification and role of each subsystem that uses TLS, by libvirt's own rules.
//!
//! The rules are those of libvirt's `src/qemu/qemu_conf.c` (9.0 and later):
//!
//! - a subsystem's directory is `<sub>_tls_x509_cert_dir` when set; else
//!   `/etc/pki/libvirt-<sub>` when that path exists (any file type); else
//!   `default_tls_x509_cert_dir` (built-in `/etc/pki/qemu`), whether or not it was set
//!   (`SET_TLS_X509_CERT_DEFAULT`);
//! - `<sub>_tls_x509_verify` when set; else `default_tls_x509_verify` when set; else the
//!   subsystem's own default: vnc 0, chardev, migrate and backup 1 (`SET_TLS_VERIFY_DEFAULT`).
//!   SPICE, NBD and VxHS have no such key;
//! - a set `default_tls_x509_cert_dir` or `<sub>_tls_x509_cert_dir` that does not exist stops
//!   the QEMU driver at start (`virQEMUDriverConfigValidate`);
//! - QEMU runs as `user`/`group` (Debian's build: `libvirt-qemu`/`libvirt-qemu`).
//!
//! The grammar is libvirt's, read by [`DaemonConf`]. A name qemu.conf does not know that
//! looks like one of its TLS names (`vnc_tls_x509_verfy`, `migrate_host`) is reported with the
//! name meant ([`super::keys::nearest_in`]): libvirt ignores it without a word.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{rerooted, DaemonConf, Setting, SettingError};
use crate::error::Result;

/// libvirt's built-in `default_tls_x509_cert_dir`.
pub const DEFAULT_CERT_DIR: &str = "/etc/pki/qemu";

/// Whether `bytes` are one encrypted PKCS#8 private key in PEM (`ENCRYPTED PRIVATE KEY`), the
/// form QEMU decrypts with the passphrase of the libvirt secret a `*_tls_x509_secret_uuid`
/// names (`passwordid=`; GnuTLS's PKCS#8 import). virtpki cannot open it without that
/// passphrase, but it can tell that the block holds an `EncryptedPrivateKeyInfo` (RFC 5208)
/// under a password-based scheme of PKCS#5 (PBES1, PBES2) or PKCS#12: markers around anything
/// else are nothing QEMU could decrypt, and are not this. Anything else in the file, or
/// OpenSSL's older `Proc-Type: 4,ENCRYPTED` form, is not this either.
pub fn is_encrypted_pkcs8(bytes: &[u8]) -> bool {
    const TAG: &str = "ENCRYPTED PRIVATE KEY";
    // No lossy copy: the bytes may be a private key in the clear, and PEM is ASCII.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let text = text.trim();
    text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        && text.ends_with("-----END ENCRYPTED PRIVATE KEY-----")
        && text.matches("-----BEGIN ").count() == 1
        && text.matches("-----END ").count() == 1
        && ::pem::parse(text)
            .is_ok_and(|b| b.tag() == TAG && is_encrypted_private_key_info(b.contents()))
}

/// Whether `der` is exactly one `EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm
/// AlgorithmIdentifier, encryptedData OCTET STRING }` with a non-empty ciphertext, its
/// algorithm under PKCS#5's arc (1.2.840.113549.1.5: PBES1, PBES2) or PKCS#12's PBE arc
/// (1.2.840.113549.1.12.1), the schemes GnuTLS decrypts with a password.
fn is_encrypted_private_key_info(der: &[u8]) -> bool {
    use crate::der::{oid_to_string, read, Tag};
    const OCTET_STRING: Tag = Tag(0x04);
    let Ok((outer, after)) = read(der) else {
        return false;
    };
    let Ok((algorithm, rest)) = read(outer.content) else {
        return false;
    };
    let Ok((data, rest)) = read(rest) else {
        return false;
    };
    let Ok((oid, _)) = read(algorithm.content) else {
        return false;
    };
    let scheme = (oid.tag == Tag::OID)
        .then(|| oid_to_string(oid.content))
        .flatten()
        .unwrap_or_default();
    after.is_empty()
        && rest.is_empty()
        && outer.tag == Tag::SEQUENCE
        && algorithm.tag == Tag::SEQUENCE
        && data.tag == OCTET_STRING
        && !data.content.is_empty()
        && (scheme.starts_with("1.2.840.113549.1.5.")
            || scheme.starts_with("1.2.840.113549.1.12.1."))
}

/// The user and group QEMU runs as when qemu.conf sets none: Debian's build of libvirt
/// (`QEMU_USER`/`QEMU_GROUP`; other builds use `qemu`/`qemu`).
pub const DEFAULT_USER: &str = "libvirt-qemu";

/// See [`DEFAULT_USER`].
pub const DEFAULT_GROUP: &str = "libvirt-qemu";

/// A part of QEMU that uses TLS, each with its own directory in qemu.conf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subsystem {
    /// `default_tls_x509_cert_dir` itself.
    Default,
    /// The VNC server of each domain.
    Vnc,
    /// The SPICE server of each domain.
    Spice,
    /// TCP character devices (serial consoles): server for `mode='bind'`, client for
    /// `mode='connect'`.
    Chardev,
    /// Migration: server on the destination, client on the source, so both on every host.
    Migrate,
    /// Pull-mode backup NBD exports.
    Backup,
    /// Network disks over NBD: QEMU is the client.
    Nbd,
    /// VxHS disks (gone from QEMU; the keys remain in libvirt): client.
    Vxhs,
}

/// Which identities QEMU needs in a subsystem's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QemuRole {
    /// QEMU listens: the server's certificate and key.
    Server,
    /// QEMU connects out: the client's (optional unless the peer verifies).
    Client,
    /// Both, in the same directory (migration).
    Both,
    /// One or both, depending on the domains' devices (chardev: bind or connect).
    Either,
}

/// Whether a subsystem uses TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enabled {
    /// `<sub>_tls = 1`, on this line.
    On(usize),
    /// `<sub>_tls` not set or 0.
    Off,
    /// No switch: TLS is asked for per migration (`VIR_MIGRATE_TLS`, or always with
    /// `migrate_tls_force = 1`) or per backup job (`<server tls='yes'>`).
    PerUse,
}

impl Subsystem {
    /// Every subsystem, the default directory first.
    pub const ALL: [Subsystem; 8] = [
        Subsystem::Default,
        Subsystem::Vnc,
        Subsystem::Spice,
        Subsystem::Chardev,
        Subsystem::Migrate,
        Subsystem::Backup,
        Subsystem::Nbd,
        Subsystem::Vxhs,
    ];

    /// Its name in qemu.conf's keys (`vnc`, `migrate`, ...); `default` for the default dir.
    pub fn name(self) -> &'static str {
        match self {
            Subsystem::Default => "default",
            Subsystem::Vnc => "vnc",
            Subsystem::Spice => "spice",
            Subsystem::Chardev => "chardev",
            Subsystem::Migrate => "migrate",
            Subsystem::Backup => "backup",
            Subsystem::Nbd => "nbd",
            Subsystem::Vxhs => "vxhs",
        }
    }

    /// The subsystem of `name` ([`Subsystem::name`]).
    pub fn from_name(name: &str) -> Option<Subsystem> {
        Subsystem::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The key of its directory (`vnc_tls_x509_cert_dir`).
    pub fn dir_key(self) -> String {
        format!("{}_tls_x509_cert_dir", self.name())
    }

    /// The key of its peer verification, where it has one (not SPICE, NBD, VxHS).
    pub fn verify_key(self) -> Option<String> {
        match self {
            Subsystem::Spice | Subsystem::Nbd | Subsystem::Vxhs => None,
            _ => Some(format!("{}_tls_x509_verify", self.name())),
        }
    }

    /// The key that switches TLS on (`vnc_tls`), where there is one.
    pub fn switch_key(self) -> Option<String> {
        match self {
            Subsystem::Vnc
            | Subsystem::Spice
            | Subsystem::Chardev
            | Subsystem::Nbd
            | Subsystem::Vxhs => Some(format!("{}_tls", self.name())),
            Subsystem::Default | Subsystem::Migrate | Subsystem::Backup => None,
        }
    }

    /// The directory libvirt uses when it exists and the subsystem's own key is not set
    /// (`/etc/pki/libvirt-vnc`); none for the default dir.
    pub fn implicit_dir(self) -> Option<String> {
        (self != Subsystem::Default).then(|| format!("/etc/pki/libvirt-{}", self.name()))
    }

    /// The verification libvirt uses when neither key is set (`SET_TLS_VERIFY_DEFAULT`).
    fn builtin_verify(self) -> bool {
        !matches!(self, Subsystem::Vnc | Subsystem::Default)
    }

    /// The identities QEMU needs in its directory.
    pub fn qemu_role(self) -> QemuRole {
        match self {
            Subsystem::Vnc | Subsystem::Spice | Subsystem::Backup => QemuRole::Server,
            Subsystem::Nbd | Subsystem::Vxhs => QemuRole::Client,
            Subsystem::Migrate => QemuRole::Both,
            Subsystem::Chardev | Subsystem::Default => QemuRole::Either,
        }
    }
}

impl fmt::Display for Subsystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a subsystem's directory is the one it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirOrigin {
    /// Its `<sub>_tls_x509_cert_dir` (or `default_tls_x509_cert_dir`) on this line.
    Set(usize),
    /// `/etc/pki/libvirt-<sub>` exists, so libvirt takes it.
    Implicit,
    /// `default_tls_x509_cert_dir`, set on this line (`None`: the built-in /etc/pki/qemu).
    Default(Option<usize>),
}

/// A subsystem's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubsystemDir {
    /// The subsystem.
    pub subsystem: Subsystem,
    /// The directory, under the root it was resolved for.
    pub dir: PathBuf,
    /// Why this one.
    pub origin: DirOrigin,
}

impl SubsystemDir {
    /// Why this directory, for messages.
    pub fn why(&self) -> String {
        match (&self.origin, self.subsystem) {
            (DirOrigin::Set(line), s) => format!("{} on line {line}", s.dir_key()),
            (DirOrigin::Implicit, s) => format!(
                "{} is not set and {} exists",
                s.dir_key(),
                s.implicit_dir().unwrap_or_default()
            ),
            (DirOrigin::Default(Some(line)), _) => {
                format!("default_tls_x509_cert_dir on line {line}")
            }
            (DirOrigin::Default(None), _) => {
                format!("the built-in default_tls_x509_cert_dir, {DEFAULT_CERT_DIR}")
            }
        }
    }
}

/// A resolved verification setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verify {
    /// Whether QEMU's server asks for and checks the client's certificate.
    pub value: bool,
    /// The key that decided it and its line; `None`: the subsystem's built-in default.
    pub set_by: Option<(String, usize)>,
}

/// A name qemu.conf does not know, that libvirt ignores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKey {
    /// The name as written.
    pub name: String,
    /// Its line.
    pub line: usize,
    /// The name probably meant.
    pub meant: Option<&'static str>,
}

/// A user or group name and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The name, or `+N` / `N` for a numeric id, as written.
    pub name: String,
    /// The line of `user`/`group`; `None`: the built-in default.
    pub line: Option<usize>,
}

impl Account {
    /// The numeric id forced with a leading `+` (`"+0"` is root), as libvirt reads it.
    pub fn forced_id(&self) -> Option<u32> {
        self.name.strip_prefix('+').and_then(|n| n.parse().ok())
    }
}

/// The TLS keys of qemu.conf and whether each is a boolean.
const TLS_KEYS: &[(&str, bool)] = &[
    ("default_tls_x509_cert_dir", false),
    ("default_tls_x509_verify", true),
    ("default_tls_x509_secret_uuid", false),
    ("vnc_tls", true),
    ("vnc_tls_x509_cert_dir", false),
    ("vnc_tls_x509_verify", true),
    ("vnc_tls_x509_secret_uuid", false),
    ("spice_tls", true),
    ("spice_tls_x509_cert_dir", false),
    ("chardev_tls", true),
    ("chardev_tls_x509_cert_dir", false),
    ("chardev_tls_x509_verify", true),
    ("chardev_tls_x509_secret_uuid", false),
    ("migrate_tls_x509_cert_dir", false),
    ("migrate_tls_x509_verify", true),
    ("migrate_tls_x509_secret_uuid", false),
    ("migrate_tls_force", true),
    ("backup_tls_x509_cert_dir", false),
    ("backup_tls_x509_verify", true),
    ("backup_tls_x509_secret_uuid", false),
    ("nbd_tls", true),
    ("nbd_tls_x509_cert_dir", false),
    ("nbd_tls_x509_secret_uuid", false),
    ("vxhs_tls", true),
    ("vxhs_tls_x509_cert_dir", false),
    ("vxhs_tls_x509_secret_uuid", false),
    ("migration_host", false),
    ("migration_address", false),
    ("user", false),
    ("group", false),
];

/// The other keys of the qemu.conf Debian 12 ships (libvirt 9.0), so that they are not taken
/// for misspelt TLS keys.
const OTHER_KEYS: &[&str] = &[
    "auto_dump_bypass_cache",
    "auto_dump_path",
    "auto_start_bypass_cache",
    "bridge_helper",
    "capability_filters",
    "cgroup_controllers",
    "cgroup_device_acl",
    "dbus_daemon",
    "deprecation_behavior",
    "dump_guest_core",
    "dump_image_format",
    "dynamic_ownership",
    "gluster_debug_level",
    "hugetlbfs_mount",
    "keepalive_count",
    "keepalive_interval",
    "lock_manager",
    "log_timestamp",
    "mac_filter",
    "max_core",
    "max_files",
    "max_processes",
    "max_queued",
    "max_threads_per_process",
    "memory_backing_dir",
    "migration_port_max",
    "migration_port_min",
    "namespaces",
    "nographics_allow_host_audio",
    "nvram",
    "pr_helper",
    "relaxed_acs_check",
    "remember_owner",
    "remote_display_port_max",
    "remote_display_port_min",
    "remote_websocket_port_max",
    "remote_websocket_port_min",
    "save_image_format",
    "sched_core",
    "seccomp_sandbox",
    "security_default_confined",
    "security_driver",
    "security_require_confined",
    "set_process_name",
    "slirp_helper",
    "snapshot_image_format",
    "spice_auto_unix_socket",
    "spice_listen",
    "spice_password",
    "spice_sasl",
    "spice_sasl_dir",
    "stdio_handler",
    "swtpm_group",
    "swtpm_user",
    "virtiofsd_debug",
    "vnc_allow_host_audio",
    "vnc_auto_unix_socket",
    "vnc_listen",
    "vnc_password",
    "vnc_sasl",
    "vnc_sasl_dir",
];

/// qemu.conf, read for its TLS settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QemuConf {
    conf: DaemonConf,
}

impl QemuConf {
    /// Parses qemu.conf text; `name` is used in messages.
    pub fn parse(bytes: &[u8], name: &str) -> Result<QemuConf> {
        DaemonConf::parse(bytes, name).map(QemuConf::from)
    }

    /// Reads and parses qemu.conf at `path` (libvirt's size limit, errors naming the line).
    pub fn read_file(path: &Path) -> Result<QemuConf> {
        DaemonConf::read_file(path).map(QemuConf::from)
    }

    /// No qemu.conf: every built-in default.
    pub fn empty() -> QemuConf {
        QemuConf {
            conf: DaemonConf {
                name: "qemu.conf (absent)".into(),
                entries: Vec::new(),
            },
        }
    }

    /// The parsed file.
    pub fn conf(&self) -> &DaemonConf {
        &self.conf
    }

    /// `FILE:LINE`.
    pub fn location(&self, line: usize) -> String {
        self.conf.location(line)
    }

    /// The values of the TLS keys (and `user`, `group`, `migration_host`) that libvirt
    /// refuses: a wrong type, a boolean not 0 or 1. The QEMU driver does not start.
    pub fn errors(&self) -> Vec<SettingError> {
        let mut errors = Vec::new();
        for (key, boolean) in TLS_KEYS {
            if *boolean {
                let _ = self.conf.boolean(key, &mut errors);
            } else {
                let _ = self.conf.string(key, &mut errors);
            }
        }
        // libvirt refuses both at load when they name this machine itself.
        for key in ["migration_host", "migration_address"] {
            let Some(h) = self.string(key).map(|s| Setting {
                value: s
                    .value
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                line: s.line,
            }) else {
                continue;
            };
            if is_local_address(&h.value) {
                errors.push(SettingError {
                    name: key.into(),
                    line: h.line,
                    message: format!(
                        "{}: {key} must not be the address of the local machine: {}",
                        self.location(h.line),
                        h.value
                    ),
                });
            }
        }
        errors.sort_by_key(|e| e.line);
        errors
    }

    fn string(&self, key: &str) -> Option<Setting<String>> {
        self.conf.string(key, &mut Vec::new())
    }

    fn boolean(&self, key: &str) -> Option<Setting<bool>> {
        self.conf.boolean(key, &mut Vec::new())
    }

    /// `default_tls_x509_cert_dir` under `root`, and the line it is set on.
    pub fn default_dir(&self, root: &Path) -> (PathBuf, Option<usize>) {
        match self.string("default_tls_x509_cert_dir") {
            Some(s) => (conf_path(root, &s.value), Some(s.line)),
            None => (rerooted(root, Path::new(DEFAULT_CERT_DIR)), None),
        }
    }

    /// The directory libvirt gives QEMU for `sub`, every path under `root`.
    pub fn dir(&self, sub: Subsystem, root: &Path) -> SubsystemDir {
        let (default, default_line) = self.default_dir(root);
        if sub == Subsystem::Default {
            let origin = match default_line {
                Some(line) => DirOrigin::Set(line),
                None => DirOrigin::Default(None),
            };
            return SubsystemDir {
                subsystem: sub,
                dir: default,
                origin,
            };
        }
        if let Some(s) = self.string(&sub.dir_key()) {
            return SubsystemDir {
                subsystem: sub,
                dir: conf_path(root, &s.value),
                origin: DirOrigin::Set(s.line),
            };
        }
        let implicit = rerooted(root, Path::new(&sub.implicit_dir().unwrap_or_default()));
        // virFileExists: any file type, a dangling link is absent.
        if implicit.exists() {
            return SubsystemDir {
                subsystem: sub,
                dir: implicit,
                origin: DirOrigin::Implicit,
            };
        }
        SubsystemDir {
            subsystem: sub,
            dir: default,
            origin: DirOrigin::Default(default_line),
        }
    }

    /// Whether QEMU's server in `sub` verifies its clients; `None` where the subsystem has no
    /// such setting (SPICE, NBD, VxHS).
    pub fn verify(&self, sub: Subsystem) -> Option<Verify> {
        let key = sub.verify_key()?;
        let decided = |k: String| {
            self.boolean(&k).map(|s| Verify {
                value: s.value,
                set_by: Some((k, s.line)),
            })
        };
        Some(
            decided(key)
                .or_else(|| decided("default_tls_x509_verify".into()))
                .unwrap_or(Verify {
                    value: sub.builtin_verify(),
                    set_by: None,
                }),
        )
    }

    /// Whether `sub` uses TLS.
    pub fn enabled(&self, sub: Subsystem) -> Enabled {
        match sub.switch_key() {
            Some(key) => match self.boolean(&key) {
                Some(s) if s.value => Enabled::On(s.line),
                _ => Enabled::Off,
            },
            None if sub == Subsystem::Default => Enabled::Off,
            None => Enabled::PerUse,
        }
    }

    /// Why the directory of `sub`, whose TLS a domain or a migration asks for (migration,
    /// backup: [`Enabled::PerUse`]), is in use on this host below `root`: set or present
    /// (`/etc/pki/libvirt-<sub>`), `migrate_tls_force = 1`, or the migration client's files in
    /// the default directory. `None`: nothing says this host uses it.
    pub fn per_use_reason(&self, sub: Subsystem, root: &Path) -> Option<String> {
        let d = self.dir(sub, root);
        match d.origin {
            DirOrigin::Set(_) | DirOrigin::Implicit => Some(d.why()),
            _ if sub == Subsystem::Migrate && self.migrate_tls_force() => {
                Some("migrate_tls_force = 1".into())
            }
            _ if sub == Subsystem::Migrate && d.dir.join("client-cert.pem").exists() => {
                Some(format!(
                    "{} holds client-cert.pem (migration's client)",
                    d.dir.display()
                ))
            }
            _ => None,
        }
    }

    /// The `*_tls_x509_secret_uuid` that applies to `sub` (the passphrase of an encrypted
    /// key): the first of [`QemuConf::secret_settings`] that is set, so the inheritance rule
    /// lives in one place. SPICE has none.
    pub fn secret_uuid(&self, sub: Subsystem) -> Option<Setting<String>> {
        self.secret_settings(sub)
            .iter()
            .find_map(|key| self.string(key))
    }

    /// The settings that would give `sub` a secret for an encrypted key, in the order libvirt
    /// looks at them (the one home of that rule; [`QemuConf::secret_uuid`] takes the first
    /// set): its own `<sub>_tls_x509_secret_uuid`, and
    /// `default_tls_x509_secret_uuid` while `<sub>_tls_x509_cert_dir` is not set. None for
    /// SPICE (spice-server reads keys unencrypted only).
    pub fn secret_settings(&self, sub: Subsystem) -> Vec<String> {
        match sub {
            Subsystem::Spice => Vec::new(),
            Subsystem::Default => vec!["default_tls_x509_secret_uuid".into()],
            _ => {
                let mut keys = vec![format!("{}_tls_x509_secret_uuid", sub.name())];
                if self.conf.get(&sub.dir_key()).is_none() {
                    keys.push("default_tls_x509_secret_uuid".into());
                }
                keys
            }
        }
    }

    /// `migration_host`, the name other hosts migrate to this one by (IPv6 brackets removed).
    pub fn migration_host(&self) -> Option<Setting<String>> {
        self.string("migration_host")
            .filter(|s| !s.value.is_empty())
            .map(|s| Setting {
                value: s
                    .value
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                line: s.line,
            })
    }

    /// Whether `migrate_tls_force = 1`: every migration uses TLS.
    pub fn migrate_tls_force(&self) -> bool {
        self.boolean("migrate_tls_force").is_some_and(|s| s.value)
    }

    /// The user QEMU runs as.
    pub fn user(&self) -> Account {
        self.account("user", DEFAULT_USER)
    }

    /// The group QEMU runs as.
    pub fn group(&self) -> Account {
        self.account("group", DEFAULT_GROUP)
    }

    fn account(&self, key: &str, default: &str) -> Account {
        match self.string(key) {
            Some(s) => Account {
                name: s.value,
                line: Some(s.line),
            },
            None => Account {
                name: default.into(),
                line: None,
            },
        }
    }

    /// Names libvirt ignores that look like a TLS key (a typo, `migrate_host`, anything with
    /// `tls` in it), each with the key probably meant.
    pub fn unknown_keys(&self) -> Vec<UnknownKey> {
        let known = || {
            TLS_KEYS
                .iter()
                .map(|(k, _)| *k)
                .chain(OTHER_KEYS.iter().copied())
        };
        let mut out = Vec::new();
        for e in self.conf.entries() {
            if known().any(|k| k == e.name) {
                continue;
            }
            let meant = match e.name.as_str() {
                "migrate_host" => Some("migration_host"),
                "migrate_address" => Some("migration_address"),
                name => super::keys::nearest_in(name, known()),
            };
            if meant.is_some() || e.name.to_ascii_lowercase().contains("tls") {
                out.push(UnknownKey {
                    name: e.name.clone(),
                    line: e.line,
                    meant,
                });
            }
        }
        out
    }

    /// What stops libvirt's QEMU driver at start (`virQEMUDriverConfigValidate`): a set
    /// `default_tls_x509_cert_dir` or `<sub>_tls_x509_cert_dir` that does not exist under
    /// `root`, in libvirt's words.
    pub fn missing_dirs(&self, root: &Path) -> Vec<SettingError> {
        let mut out = Vec::new();
        for sub in Subsystem::ALL {
            let key = sub.dir_key();
            if let Some(s) = self.string(&key) {
                let p = conf_path(root, &s.value);
                if !p.exists() {
                    out.push(SettingError {
                        name: key.clone(),
                        line: s.line,
                        message: format!(
                            "{}: {key} directory '{}' does not exist",
                            self.location(s.line),
                            s.value
                        ),
                    });
                }
            }
        }
        out
    }
}

impl QemuConf {
    /// The TLS settings (and `user`, `group`, `migration_host`) set again on a later line:
    /// libvirt uses the first and ignores the rest without a word.
    pub fn repeated(&self) -> Vec<SettingError> {
        self.conf
            .duplicates()
            .into_iter()
            .filter(|d| TLS_KEYS.iter().any(|(k, _)| *k == d.name))
            .map(|d| {
                let first = self.conf.get(&d.name).map_or(0, |e| e.line);
                SettingError {
                    name: d.name.clone(),
                    line: d.line,
                    message: format!(
                        "{}: {} is set again; libvirt uses only the first setting (line {first})",
                        self.location(d.line),
                        d.name
                    ),
                }
            })
            .collect()
    }

    /// The directory settings whose value is not an absolute path: libvirt and QEMU take it
    /// against their own working directory (`/` for the system daemon), whatever the admin's
    /// is, and virtpki takes it against the root ([`QemuConf::dir`]).
    pub fn relative_dirs(&self) -> Vec<SettingError> {
        Subsystem::ALL
            .into_iter()
            .filter_map(|sub| {
                let key = sub.dir_key();
                let s = self.string(&key)?;
                (!Path::new(&s.value).is_absolute()).then(|| SettingError {
                    message: format!(
                        "{}: {key} \"{}\" is not an absolute path: libvirt and QEMU take it \
                         against their working directory (/ for the system daemon), not yours",
                        self.location(s.line),
                        s.value
                    ),
                    name: key,
                    line: s.line,
                })
            })
            .collect()
    }
}

/// A path of qemu.conf under `root`; a relative one is taken against the daemon's working
/// directory, `/`, so that it never leads out of the root (or into the caller's directory).
fn conf_path(root: &Path, value: &str) -> PathBuf {
    rerooted(root, &Path::new("/").join(value))
}

impl From<DaemonConf> for QemuConf {
    fn from(conf: DaemonConf) -> QemuConf {
        QemuConf { conf }
    }
}

/// libvirt's refusal of a `migration_host` that names this machine itself: `localhost...`
/// or a loopback address.
fn is_local_address(host: &str) -> bool {
    host.starts_with("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The directories Debian's AppArmor abstraction lets QEMU read
/// (`/etc/apparmor.d/abstractions/libvirt-qemu` of libvirt 9.0: `/etc/pki/qemu/**`,
/// `/etc/pki/libvirt{,-spice,-vnc}/**`; `/etc/pki/CA/*` holds no QEMU directory).
pub const APPARMOR_DIRS: &[&str] = &[
    "/etc/pki/qemu",
    "/etc/pki/libvirt",
    "/etc/pki/libvirt-vnc",
    "/etc/pki/libvirt-spice",
];

/// Whether Debian's AppArmor abstraction lets QEMU read the directory `dir` (a path on the
/// host, without any test root).
pub fn apparmor_allows(dir: &Path) -> bool {
    // AppArmor matches the resolved path: `..` is taken away here, links by the caller.
    let mut plain = PathBuf::from("/");
    for c in dir.components() {
        match c {
            std::path::Component::Normal(name) => plain.push(name),
            std::path::Component::ParentDir => {
                plain.pop();
            }
            _ => {}
        }
    }
    APPARMOR_DIRS.iter().any(|d| plain.starts_with(d))
}

/// What to add to `/etc/apparmor.d/local/abstractions/libvirt-qemu` so that QEMU may read
/// `dir` on an AppArmor host.
pub fn apparmor_fix(dir: &Path) -> String {
    format!(
        "on AppArmor hosts add the line `{}/** r,` to \
         /etc/apparmor.d/local/abstractions/libvirt-qemu (then restart the domains)",
        dir.display()
    )
}
