//! The TRUST, SERVER and CLIENT sections: the credential files libvirt loads, present, with
//! safe owners and modes ([`access`](super::access)), loadable and passing libvirt's
//! load-time checks.

use std::path::{Path, PathBuf};

use virtpki::daemon_conf::{DaemonConf, TlsSettings};
use virtpki::display::shell_path;
use virtpki::file_audit::{self, FileKind};
use virtpki::locations::{self, Origin};
use virtpki::{CertDataType, Certificate, Context, ContextFlags, Error, ErrorKind, Role};

use super::report::Check;
use super::{Mode, Scope, State, Validator};

/// A credential file and the rules its owner and mode are held to.
#[derive(Clone)]
pub(super) struct FileSpec {
    pub ty: CertDataType,
    pub path: PathBuf,
    /// Root-owned, world-readable rules (system files) rather than the user's own.
    pub system: bool,
}

/// A file or directory of the report: its id in the report (`ca_cert`, with `_mode` for its
/// owner and mode) and its name in the report's sentences.
#[derive(Clone, Copy)]
pub(super) struct Item {
    pub key: &'static str,
    pub what: &'static str,
}

impl Item {
    const fn new(key: &'static str, what: &'static str) -> Item {
        Item { key, what }
    }
}

const PKI_DIR: Item = Item::new("pki_dir", "system PKI dir");
const CA_DIR: Item = Item::new("ca_dir", "system CA dir");
const CERT_DIR: Item = Item::new("cert_dir", "system cert dir");
const KEY_DIR: Item = Item::new("key_dir", "system key dir");
const CA_CERT: Item = Item::new("ca_cert", "CA cert");
const CA_CRL: Item = Item::new("ca_crl", "CA CRL");
const CERT: Item = Item::new("cert", "cert");
const KEY: Item = Item::new("key", "key");

/// How the report names the CA's files.
fn ca_item(ty: CertDataType) -> Item {
    if ty == CertDataType::CaCert {
        CA_CERT
    } else {
        CA_CRL
    }
}

/// The report's item for a credential file of type `ty`.
fn item_of(ty: CertDataType) -> Item {
    match ty {
        CertDataType::CaCert | CertDataType::CaCrl => ca_item(ty),
        CertDataType::ServerKey | CertDataType::ClientKey => KEY,
        _ => CERT,
    }
}

impl Validator {
    /// TRUST: the PKI directories, the CA certificate and the optional CRL.
    pub(super) fn trust(&mut self) {
        const S: Scope = Scope::Trust;
        match self.mode.clone() {
            Mode::System => self.system_dirs(
                S,
                &[(PKI_DIR, "/etc/pki"), (CA_DIR, "/etc/pki/CA")],
                "with the base system or openssl: mkdir",
            ),
            Mode::User | Mode::Path(_) => {
                let (what, dir) = match &self.mode {
                    Mode::Path(d) => ("custom PKI base dir", Some(d.clone())),
                    _ => ("user PKI base dir", self.env().user_dir()),
                };
                let item = Item::new("base_dir", what);
                match dir {
                    Some(dir) => {
                        let hint = mkdir_p(&dir, false);
                        self.present(S, item, &dir, FileKind::Dir, false, hint);
                    }
                    None => self.push_id(
                        S,
                        item.key,
                        format!("Checking if {what} exists"),
                        State::Fail,
                        None,
                        "there is no home directory ($HOME is not set)",
                        Some("set HOME, or give --path DIR".into()),
                    ),
                }
            }
        }
        let files = self.default_files(Role::Client);
        let mut load = Vec::new();
        if let Some(ca) = files.iter().find(|f| f.ty == CertDataType::CaCert) {
            let hint = format!(
                "the machine can act neither as client nor as server without it: copy the CA \
                 certificate there (virtpki install, or see \
                 https://libvirt.org/kbase/tlscerts.html#setting-up-a-certificate-authority-ca): {}",
                ca.path.display()
            );
            if self.present(S, CA_CERT, &ca.path, FileKind::Public, ca.system, hint) {
                load.push(ca.clone());
            }
        }
        if let Some(crl) = files.iter().find(|f| f.ty == CertDataType::CaCrl) {
            if crl.path.exists() {
                self.access(S, CA_CRL, &crl.path, FileKind::Public, crl.system);
                load.push(crl.clone());
            } else {
                self.pass_id(
                    S,
                    CA_CRL.key,
                    "Checking for a CA CRL",
                    Some(&crl.path),
                    format!("no CRL at {} (optional)", crl.path.display()),
                );
            }
        }
        self.load_and_check(S, Role::Client, &load);
    }

    /// SERVER or CLIENT: the role's certificate and key (for the server, the files
    /// libvirtd.conf names if it names them), loaded with the CA; then, for the server, its
    /// names.
    pub(super) fn identity(
        &mut self,
        role: Role,
        conf: Option<&(DaemonConf, TlsSettings)>,
        hostname: &[String],
    ) {
        let scope = Scope::of(role);
        let r = role.name();
        let from_conf = conf.and_then(|(_, s)| self.conf_files(s));
        let conf_used = from_conf.is_some();
        let files = match from_conf {
            Some(files) => {
                let paths: Vec<String> =
                    files.iter().map(|f| f.path.display().to_string()).collect();
                self.pass_id(
                    scope,
                    "conf_files",
                    "Checking which files libvirtd loads",
                    None,
                    format!(
                        "key_file, cert_file and ca_file of libvirtd.conf: {}",
                        paths.join(", ")
                    ),
                );
                files
            }
            None => {
                if self.mode == Mode::System {
                    self.system_dirs(
                        scope,
                        &[
                            (CERT_DIR, "/etc/pki/libvirt"),
                            (KEY_DIR, "/etc/pki/libvirt/private"),
                        ],
                        "with libvirt: mkdir -p",
                    );
                }
                self.default_files(role)
            }
        };
        let mut load = Vec::new();
        let kb = format!("https://libvirt.org/kbase/tlscerts.html#issuing-{r}-certificates");
        for f in &files {
            let (what, kind) = match f.ty {
                CertDataType::CaCert | CertDataType::CaCrl => {
                    // Checked in TRUST, unless libvirtd.conf names other files.
                    if f.path.exists() {
                        if conf_used {
                            self.access(scope, ca_item(f.ty), &f.path, FileKind::Public, f.system);
                        }
                        load.push(f.clone());
                    }
                    continue;
                }
                ty if ty == role.key_type() => (KEY, FileKind::Key(role)),
                _ => (CERT, FileKind::Public),
            };
            let hint = format!(
                "the machine cannot act as a {r} without it: issue a {r} certificate and key \
                 (virtpki issue {r}; see {kb}) and install them as {}",
                f.path.display()
            );
            if self.present(scope, what, &f.path, kind, f.system, hint) {
                load.push(f.clone());
            }
        }
        let cert = self.load_and_check(scope, role, &load);
        if role == Role::Server {
            if let Some(cert) = cert {
                self.hostname(&cert, hostname);
            }
        }
    }

    /// Whether this machine has `role`'s certificate or key where libvirt looks for them.
    pub(super) fn has_files(&self, role: Role) -> bool {
        self.default_files(role)
            .iter()
            .filter(|f| f.ty == role.cert_type() || f.ty == role.key_type())
            .any(|f| std::fs::symlink_metadata(&f.path).is_ok())
    }

    /// The line that says `role` was not checked, and why: no files for it (see
    /// [`has_files`](Self::has_files)), and no WHAT that asked for it.
    pub(super) fn skipped(&mut self, role: Role) {
        let r = role.name();
        let paths: Vec<String> = self
            .default_files(role)
            .iter()
            .filter(|f| f.ty == role.cert_type() || f.ty == role.key_type())
            .map(|f| f.path.display().to_string())
            .collect();
        let conf = if role == Role::Server {
            " (and libvirtd.conf's TLS settings, which are the server's)"
        } else {
            ""
        };
        self.push_id(
            Scope::of(role),
            "skipped",
            format!("Checking {r} files"),
            State::Skip,
            None,
            format!(
                "no {r} certificate or key ({}): this machine is not set up as a {r}, so the \
                 {r} checks{conf} are skipped",
                paths.join(", ")
            ),
            Some(format!(
                "to check them anyway, name the role: virtpki validate ... {r}"
            )),
        );
    }

    /// The files libvirt loads for `role` by default, in the checked mode.
    pub(super) fn default_files(&self, role: Role) -> Vec<FileSpec> {
        let env = self.env();
        let pkipath = match &self.mode {
            Mode::Path(d) => Some(d.as_path()),
            _ => None,
        };
        locations::libvirt(&env, role, pkipath)
            .files
            .into_iter()
            .map(|f| FileSpec {
                ty: f.ty,
                system: matches!(f.origin, Origin::System | Origin::SystemFallback),
                path: f.path,
            })
            .collect()
    }

    /// System directories (paths under --root) that must exist with the system rules;
    /// `installed` says where they usually come from and the `mkdir` that makes one.
    fn system_dirs(&mut self, scope: Scope, dirs: &[(Item, &str)], installed: &str) {
        let mode = file_audit::mode_for(FileKind::Dir, true);
        for (what, dir) in dirs {
            let dir = self.sys(dir);
            let hint = format!(
                "it is usually installed {installed} -m {mode:04o} {}",
                shell_path(&dir)
            );
            self.present(scope, *what, &dir, FileKind::Dir, true, hint);
        }
    }

    /// Whether `path` exists (a failure with `hint` when not); its owner and mode are
    /// checked when it does.
    fn present(
        &mut self,
        scope: Scope,
        what: Item,
        path: &Path,
        kind: FileKind,
        system: bool,
        hint: String,
    ) -> bool {
        let name = format!("Checking if {} exists", what.what);
        if std::fs::metadata(path).is_err() {
            self.push_id(
                scope,
                what.key,
                name,
                State::Fail,
                Some(path),
                format!("{} does not exist", path.display()),
                Some(hint),
            );
            return false;
        }
        self.pass_id(
            scope,
            what.key,
            name,
            Some(path),
            format!("{} exists", path.display()),
        );
        self.access(scope, what, path, kind, system);
        true
    }

    /// Loads `files` one by one (each failure reported) and runs the library's sanity check
    /// for `role`. Returns the role's certificate, when it loaded.
    fn load_and_check(
        &mut self,
        scope: Scope,
        role: Role,
        files: &[FileSpec],
    ) -> Option<Certificate> {
        let ctx = Context::new(ContextFlags::NO_SANITY);
        // clap holds --warn-days to the library's limit; were it not, the report says so.
        if let Err(e) = ctx.set_expiry_horizon(self.warn_days) {
            self.push(
                scope,
                "Checking --warn-days",
                State::Fail,
                None,
                e.to_string(),
                None,
            );
        }
        let mut all_loaded = true;
        for f in files {
            if let Err(e) = ctx.add_file(f.ty, &f.path) {
                all_loaded = false;
                // The access check of the same file has said this already, with its fix.
                if e.kind() == ErrorKind::InsecurePermissions {
                    continue;
                }
                let msg = e.to_string();
                if self.reported.insert(msg.clone()) {
                    self.push_id(
                        scope,
                        &format!("{}_load", item_of(f.ty).key),
                        format!("Loading {}", f.ty),
                        State::Fail,
                        Some(&f.path),
                        msg,
                        Some(load_fix(&e, f)),
                    );
                }
            }
        }
        let any = self.sanity_findings(scope, &ctx, role);
        // A server or client section passes only with its own certificate loaded.
        let own_loaded =
            scope == Scope::Trust || ctx.credentials().identity(role).certificate().is_some();
        if !any && all_loaded && own_loaded && !files.is_empty() {
            self.pass_id(
                scope,
                "cert_properties",
                "Checking cert properties",
                None,
                format!("libvirt's load-time checks pass for the {}", role.name()),
            );
        }
        ctx.credentials().identity(role).certificate().cloned()
    }

    /// The library's load-time findings for `role`, each once; whether there were any.
    fn sanity_findings(&mut self, scope: Scope, ctx: &Context, role: Role) -> bool {
        let mut any = false;
        for finding in &ctx.check(role).findings {
            // A missing item has been reported as a missing or unreadable file already, and a
            // key's mode by the access check of every file loaded here (with the same words
            // and fix, from file_audit): said once, not twice under two names.
            if matches!(
                finding.rule,
                virtpki::Rule::Missing | virtpki::Rule::FileMode
            ) {
                continue;
            }
            if !self
                .reported
                .insert(format!("{}|{}", finding.source, finding.message))
            {
                continue;
            }
            any = true;
            let mut message = finding.message.clone();
            if let Some(subject) = &finding.subject {
                message.push_str(&format!(" (subject {subject})"));
            }
            self.add(Check {
                id: format!("cert_properties.{}", finding.rule).replace('-', "_"),
                scope,
                name: format!("Checking cert properties: {}", finding.rule),
                state: State::from(finding.severity),
                file: finding.source.path().map(Path::to_path_buf),
                message,
                fix: Some(finding.fix.clone()),
                rule: Some(finding.rule.to_string()),
                libvirt: finding.libvirt_differs.clone(),
                qemu: None,
            });
        }
        any
    }
}

/// What to do about a file that did not load.
fn load_fix(e: &Error, f: &FileSpec) -> String {
    // A socket, FIFO, device or directory where the file belongs: no content to look at.
    if let Ok(m) = std::fs::metadata(&f.path) {
        if !m.is_file() {
            return format!(
                "{} is {}: remove it and put the {} there (virtpki install)",
                f.path.display(),
                virtpki::fsutil::kind_of(&m),
                f.ty
            );
        }
    }
    match e.kind() {
        ErrorKind::InsecurePermissions => format!(
            "chmod {:04o} {}",
            file_audit::mode_for(FileKind::of(f.ty), f.system),
            shell_path(&f.path)
        ),
        ErrorKind::TooLarge => "this is not a certificate file; install the right one".into(),
        _ => format!(
            "{} must hold a PEM {}: look at it with `virtpki show {}` and install the right \
             file",
            f.path.display(),
            f.ty,
            shell_path(&f.path)
        ),
    }
}

/// The command that makes the directory `dir` of the system set (`system`) or a user's, with
/// the mode [`file_audit`] holds it to.
pub(crate) fn mkdir_p(dir: &Path, system: bool) -> String {
    format!(
        "mkdir -p -m {:04o} {}",
        file_audit::mode_for(FileKind::Dir, system),
        shell_path(dir)
    )
}
