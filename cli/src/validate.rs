//! `virtpki validate`: libvirt's TLS files checked as libvirt and virt-pki-validate check them.
//!
//! Everything virt-pki-validate checks (directories and files present, owners and modes, the
//! load-time sanity checks, the server certificate against this machine's names), plus the
//! library's findings and libvirtd.conf's TLS settings. Every problem comes with a fix.
//!
//! Where virt-pki-validate is stricter than it needs to be (any mode but the exact one fails),
//! a deviation that is not a risk is a warning: a key readable by its group (libvirt's qemu
//! group setups use 0640), a certificate readable by fewer users than 0644. What is a risk
//! fails: files or directories writable by other users, keys readable by other users (virtpki
//! refuses to load them), files owned by another user.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use virtpki::daemon_conf::{DaemonConf, TlsSettings};
use virtpki::dn_lint;
use virtpki::locations::{self, Environment, Origin};
use virtpki::pem::{self, Parsed};
use virtpki::{
    CertDataType, Certificate, Context, ContextFlags, ErrorKind, Role, Severity, Source,
};

use crate::ui::{print_json, CliError, CmdResult, Status, Ui};

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Check the system files (/etc/pki/...): the default when run as root.
    #[arg(long, short = 's', conflicts_with_all = ["user", "path"])]
    pub system: bool,
    /// Check the user's files (~/.pki/libvirt): the default for other users.
    #[arg(long, short = 'u', conflicts_with = "path")]
    pub user: bool,
    /// Check the files of a pkipath directory (DIR/cacert.pem, DIR/servercert.pem, ...).
    #[arg(long, short = 'p', value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// What to check: the CA (trust), the server's or the client's credentials; all three
    /// when omitted.
    #[arg(value_enum)]
    pub what: Option<What>,
    /// The name clients use to reach this server, instead of this machine's host names.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// The daemon configuration to check [default: ROOT/etc/libvirt/libvirtd.conf with
    /// --system, ~/.config/libvirt/libvirtd.conf with --user].
    #[arg(long, value_name = "FILE")]
    pub libvirtd_conf: Option<PathBuf>,
    /// Treat PATH as / for the system files and libvirtd.conf (for tests and chroots).
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The sections of virt-pki-validate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    Trust,
    Server,
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pass,
    Warn,
    Fail,
}

impl From<Severity> for State {
    fn from(severity: Severity) -> State {
        match severity {
            Severity::Error => State::Fail,
            Severity::Warning => State::Warn,
        }
    }
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Pass => "pass",
            State::Warn => "warn",
            State::Fail => "fail",
        }
    }
}

/// One line of the report.
struct Check {
    scope: &'static str,
    name: String,
    state: State,
    file: Option<PathBuf>,
    message: String,
    fix: Option<String>,
    rule: Option<String>,
    libvirt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    System,
    User,
    Path(PathBuf),
}

/// What kind of file an owner and mode check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    /// Certificates, CA certificates, CRLs: not secret.
    Public,
    Key,
}

/// A credential file and the rules its owner and mode are held to.
#[derive(Clone)]
struct FileSpec {
    ty: CertDataType,
    path: PathBuf,
    /// Root-owned, world-readable rules (system files) rather than the user's own.
    system: bool,
}

struct Validator {
    checks: Vec<Check>,
    reported: HashSet<String>,
    mode: Mode,
    root: PathBuf,
    uid: u32,
    gid: u32,
}

pub fn run(args: ValidateArgs, ui: Ui) -> CmdResult {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mode = match (&args.path, args.user, args.system) {
        (Some(dir), _, _) => Mode::Path(dir.clone()),
        (None, true, _) => Mode::User,
        (None, false, true) => Mode::System,
        (None, false, false) if uid == 0 => Mode::System,
        (None, false, false) => Mode::User,
    };
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    if !root.is_dir() {
        return Err(CliError(format!(
            "--root {}: not a directory",
            root.display()
        )));
    }
    let mut v = Validator {
        checks: Vec::new(),
        reported: HashSet::new(),
        mode,
        root,
        uid,
        gid,
    };
    let wants = |w: What| args.what.is_none_or(|x| x == w);
    let conf = if wants(What::Server) {
        v.read_conf(args.libvirtd_conf.as_deref())?
    } else {
        None
    };
    // The configuration is reported last, after the files it refers to.
    let conf_head: Vec<Check> = v.checks.drain(..).collect();
    if wants(What::Trust) {
        v.trust();
    }
    if wants(What::Server) {
        v.identity(Role::Server, conf.as_ref(), args.hostname.as_deref());
    }
    if wants(What::Client) {
        v.identity(Role::Client, None, None);
    }
    v.checks.extend(conf_head);
    if let Some((conf, settings)) = &conf {
        v.conf_checks(conf, settings);
    }
    v.print(&args, ui);
    let failed = v.checks.iter().any(|c| c.state == State::Fail);
    Ok(Status::problems_if(failed))
}

impl Validator {
    fn env(&self) -> Environment {
        let mut env = Environment::current();
        env.root = self.root.clone();
        // Environment's uid only picks system versus user files: --user as root means the
        // user files, so that root can check its own ~/.pki/libvirt.
        env.uid = if self.mode == Mode::System { 0 } else { 1 };
        env
    }

    fn sys(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// A path from libvirtd.conf, under --root when one is given.
    fn rerooted(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => path.to_path_buf(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        scope: &'static str,
        name: impl Into<String>,
        state: State,
        file: Option<&Path>,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            scope,
            name: name.into(),
            state,
            file: file.map(Path::to_path_buf),
            message: message.into(),
            fix,
            rule: None,
            libvirt: None,
        });
    }

    fn pass(
        &mut self,
        scope: &'static str,
        name: impl Into<String>,
        file: Option<&Path>,
        msg: impl Into<String>,
    ) {
        self.push(scope, name, State::Pass, file, msg, None);
    }

    // ----- files, owners, modes -----

    /// Whether `path` exists; a failure with `hint` when it does not.
    fn exists(&mut self, scope: &'static str, what: &str, path: &Path, hint: String) -> bool {
        let name = format!("Checking if {what} exists");
        if std::fs::metadata(path).is_ok() {
            self.pass(
                scope,
                name,
                Some(path),
                format!("{} exists", path.display()),
            );
            true
        } else {
            self.push(
                scope,
                name,
                State::Fail,
                Some(path),
                format!("{} does not exist", path.display()),
                Some(hint),
            );
            false
        }
    }

    /// Owner and mode of `path` against the rules of its kind (see the module docs).
    fn access(&mut self, scope: &'static str, what: &str, path: &Path, kind: Kind, system: bool) {
        let name = format!("Checking {what} access");
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                return self.push(
                    scope,
                    name,
                    State::Fail,
                    Some(path),
                    format!("cannot stat {}: {e}", path.display()),
                    None,
                )
            }
        };
        let p = path.display();
        let mode = meta.mode() & 0o7777;
        let (owner, want_owner, owner_name) = if system {
            (meta.uid(), 0, "root:root".to_owned())
        } else {
            (meta.uid(), self.uid, format!("{}:{}", self.uid, self.gid))
        };
        let ideal = match (kind, system) {
            (Kind::Dir, true) => 0o755,
            (Kind::Dir, false) => 0o700,
            (Kind::Public, true) => 0o644,
            (Kind::Public, false) | (Kind::Key, _) => 0o600,
        };
        let chmod = format!("chmod {ideal:04o} {p}");
        let mut result: Option<(State, String, String)> = None;
        if kind == Kind::Dir && !meta.is_dir() {
            result = Some((
                State::Fail,
                format!("{p} is not a directory"),
                format!("remove it and create the directory: mkdir -m {ideal:04o} {p}"),
            ));
        } else if owner != want_owner {
            result = Some((
                State::Fail,
                format!(
                    "{p} belongs to uid {owner}, not to {}",
                    if system { "root" } else { "this user" }
                ),
                format!("chown {owner_name} {p}"),
            ));
        } else if mode & 0o022 != 0 {
            result = Some((
                State::Fail,
                format!("{p} is writable by other users (mode {mode:04o}): they can replace it"),
                chmod.clone(),
            ));
        } else if kind == Kind::Key && mode & 0o007 != 0 {
            let note = if system && scope == "CLIENT" {
                " (virt-pki-validate asks for 0644 on the system client key; that exposes it \
                 to every user)"
            } else {
                ""
            };
            result = Some((
                State::Fail,
                format!(
                    "the private key {p} is readable by other users (mode {mode:04o}); virtpki \
                     refuses to load it{note}"
                ),
                chmod.clone(),
            ));
        } else if kind == Kind::Key && mode & 0o070 != 0 {
            result = Some((
                State::Warn,
                format!(
                    "the private key {p} is readable by its group (mode {mode:04o}, gid {})",
                    meta.gid()
                ),
                format!(
                    "fine when the group is a service group such as qemu (libvirt's QEMU TLS \
                     setups use root:qemu 0640); otherwise {chmod}"
                ),
            ));
        } else if system && kind != Kind::Key && meta.gid() != 0 {
            result = Some((
                State::Warn,
                format!("{p} has group {} rather than root", meta.gid()),
                format!("chown {owner_name} {p}"),
            ));
        } else if mode != ideal {
            let why = match (kind, system) {
                (Kind::Dir, true) | (Kind::Public, true)
                    if mode & 0o005 != 0o005 && mode & 0o004 == 0 =>
                {
                    "non-root clients, which fall back to the system files, cannot read it"
                }
                (_, true) => "virt-pki-validate expects exactly this mode",
                (_, false) => "virt-pki-validate expects exactly this mode; only you need it",
            };
            result = Some((
                State::Warn,
                format!("{p} has mode {mode:04o}, not {ideal:04o}: {why}"),
                chmod.clone(),
            ));
        }
        match result {
            None => self.pass(
                scope,
                name,
                Some(path),
                format!("{p}: owner {owner_name}, mode {mode:04o}"),
            ),
            Some((state, message, fix)) => {
                self.push(scope, name, state, Some(path), message, Some(fix))
            }
        }
    }

    // ----- the sections -----

    fn trust(&mut self) {
        const S: &str = "TRUST";
        let env = self.env();
        match self.mode.clone() {
            Mode::System => {
                for (what, dir) in [
                    ("system PKI dir", "/etc/pki"),
                    ("system CA dir", "/etc/pki/CA"),
                ] {
                    let dir = self.sys(dir);
                    let hint = format!(
                        "it is usually installed with the base system or openssl: \
                         mkdir -m 0755 {}",
                        dir.display()
                    );
                    if self.exists(S, what, &dir, hint) {
                        self.access(S, what, &dir, Kind::Dir, true);
                    }
                }
            }
            Mode::User | Mode::Path(_) => {
                let (what, dir) = match &self.mode {
                    Mode::Path(d) => ("custom PKI base dir", Some(d.clone())),
                    _ => ("user PKI base dir", env.user_dir()),
                };
                match dir {
                    Some(dir) => {
                        let hint = format!("mkdir -p -m 0700 {}", dir.display());
                        if self.exists(S, what, &dir, hint) {
                            self.access(S, what, &dir, Kind::Dir, false);
                        }
                    }
                    None => self.push(
                        S,
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
        let ca = files.iter().find(|f| f.ty == CertDataType::CaCert);
        let crl = files.iter().find(|f| f.ty == CertDataType::CaCrl);
        let mut load = Vec::new();
        if let Some(ca) = ca {
            let hint = format!(
                "the machine can act neither as client nor as server without it: copy the CA \
                 certificate there (virtpki install, or see \
                 https://libvirt.org/kbase/tlscerts.html#setting-up-a-certificate-authority-ca): {}",
                ca.path.display()
            );
            if self.exists(S, "CA cert", &ca.path, hint) {
                self.access(S, "CA cert", &ca.path, Kind::Public, ca.system);
                load.push(ca.clone());
            }
        }
        if let Some(crl) = crl {
            if crl.path.exists() {
                self.access(S, "CA CRL", &crl.path, Kind::Public, crl.system);
                load.push(crl.clone());
            } else {
                self.pass(
                    S,
                    "Checking for a CA CRL",
                    Some(&crl.path),
                    format!("no CRL at {} (optional)", crl.path.display()),
                );
            }
        }
        self.sanity(S, Role::Client, &load);
    }

    fn default_files(&self, role: Role) -> Vec<FileSpec> {
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

    fn identity(
        &mut self,
        role: Role,
        conf: Option<&(DaemonConf, TlsSettings)>,
        hostname: Option<&str>,
    ) {
        let scope: &'static str = match role {
            Role::Server => "SERVER",
            Role::Client => "CLIENT",
        };
        let r = role.name();
        let from_conf = conf.and_then(|(_, s)| self.conf_files(s));
        let conf_used = from_conf.is_some();
        let files = match from_conf {
            Some(files) => {
                self.pass(
                    scope,
                    "Checking which files libvirtd loads",
                    None,
                    format!(
                        "key_file, cert_file and ca_file of libvirtd.conf: {}",
                        files
                            .iter()
                            .map(|f| f.path.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                files
            }
            None => {
                if self.mode == Mode::System {
                    for (what, dir) in [
                        ("system cert dir", "/etc/pki/libvirt"),
                        ("system key dir", "/etc/pki/libvirt/private"),
                    ] {
                        let dir = self.sys(dir);
                        let hint = format!(
                            "it is usually installed with libvirt: mkdir -p -m 0755 {}",
                            dir.display()
                        );
                        if self.exists(scope, what, &dir, hint) {
                            self.access(scope, what, &dir, Kind::Dir, true);
                        }
                    }
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
                            let what = if f.ty == CertDataType::CaCert {
                                "CA cert"
                            } else {
                                "CA CRL"
                            };
                            self.access(scope, what, &f.path, Kind::Public, f.system);
                        }
                        load.push(f.clone());
                    }
                    continue;
                }
                ty if ty == role.key_type() => ("key", Kind::Key),
                _ => ("cert", Kind::Public),
            };
            let hint = format!(
                "the machine cannot act as a {r} without it: issue a {r} certificate and key \
                 (virtpki issue {r}; see {kb}) and install them as {}",
                f.path.display()
            );
            if self.exists(scope, what, &f.path, hint) {
                self.access(scope, what, &f.path, kind, f.system);
                load.push(f.clone());
            }
        }
        let cert = self.sanity(scope, role, &load);
        if role == Role::Server {
            if let Some(cert) = cert {
                self.hostname(&cert, hostname);
            }
        }
    }

    /// The files libvirtd.conf names, when it names all of key, certificate and CA.
    fn conf_files(&self, s: &TlsSettings) -> Option<Vec<FileSpec>> {
        let (ca, cert, key) = (
            s.ca_file.as_ref()?,
            s.cert_file.as_ref()?,
            s.key_file.as_ref()?,
        );
        let system = self.mode == Mode::System;
        let mut files = vec![FileSpec {
            ty: CertDataType::CaCert,
            path: self.rerooted(&ca.value),
            system,
        }];
        if let Some(crl) = &s.crl_file {
            files.push(FileSpec {
                ty: CertDataType::CaCrl,
                path: self.rerooted(&crl.value),
                system,
            });
        }
        files.push(FileSpec {
            ty: CertDataType::ServerCert,
            path: self.rerooted(&cert.value),
            system,
        });
        files.push(FileSpec {
            ty: CertDataType::ServerKey,
            path: self.rerooted(&key.value),
            system,
        });
        Some(files)
    }

    /// Loads `files` one by one (each failure reported) and runs the library's sanity check
    /// for `role`. Returns the role's certificate, when it loaded.
    fn sanity(
        &mut self,
        scope: &'static str,
        role: Role,
        files: &[FileSpec],
    ) -> Option<Certificate> {
        let ctx = Context::new(ContextFlags::NO_SANITY);
        let mut all_loaded = true;
        for f in files {
            if let Err(e) = ctx.add_file(f.ty, &f.path) {
                all_loaded = false;
                let fix = match e.kind() {
                    ErrorKind::InsecurePermissions => format!("chmod 0600 {}", f.path.display()),
                    ErrorKind::TooLarge => {
                        "this is not a certificate file; install the right one".into()
                    }
                    _ => format!(
                        "{} must hold a PEM {}: look at it with `virtpki show {}` and install \
                         the right file",
                        f.path.display(),
                        f.ty,
                        f.path.display()
                    ),
                };
                let msg = e.to_string();
                if self.reported.insert(msg.clone()) {
                    self.push(
                        scope,
                        format!("Loading {}", f.ty),
                        State::Fail,
                        Some(&f.path),
                        msg,
                        Some(fix),
                    );
                }
            }
        }
        let report = ctx.check(role);
        let mut any = false;
        for finding in &report.findings {
            // A missing item has been reported as a missing or unreadable file already.
            if finding.rule == virtpki::Rule::Missing {
                continue;
            }
            let key = format!("{}|{}", finding.source, finding.message);
            if !self.reported.insert(key) {
                continue;
            }
            any = true;
            let mut message = finding.message.clone();
            if let Some(subject) = &finding.subject {
                message.push_str(&format!(" (subject {subject})"));
            }
            self.checks.push(Check {
                scope,
                name: format!("Checking cert properties: {}", finding.rule),
                state: State::from(finding.severity),
                file: finding.source.path().map(Path::to_path_buf),
                message,
                fix: Some(finding.fix.clone()),
                rule: Some(finding.rule.to_string()),
                libvirt: finding.libvirt_differs.clone(),
            });
        }
        if !any && all_loaded && !files.is_empty() {
            self.pass(
                scope,
                "Checking cert properties",
                None,
                format!("libvirt's load-time checks pass for the {}", role.name()),
            );
        }
        ctx.credentials().identity(role).certificate().cloned()
    }

    fn hostname(&mut self, cert: &Certificate, given: Option<&str>) {
        const S: &str = "SERVER";
        let names: Vec<String> = match given {
            Some(h) => vec![h.to_owned()],
            None => machine_names(),
        };
        let name = "Checking cert hostname match";
        let file = cert.source().path().map(Path::to_path_buf);
        if names.is_empty() {
            return self.push(
                S,
                name,
                State::Warn,
                file.as_deref(),
                "cannot tell this machine's host name",
                Some("give --hostname NAME, the name clients connect to".into()),
            );
        }
        let mut last_err = String::new();
        for n in &names {
            match virtpki::names::check(cert, n, true) {
                Ok(how) => {
                    let how = match how {
                        virtpki::names::NameMatch::SubjectAltName => "a subject alternative name",
                        virtpki::names::NameMatch::CommonName => {
                            "the Common Name (the certificate has no DNS or IP SAN)"
                        }
                    };
                    return self.pass(S, name, file.as_deref(), format!("{} matches {how}", n));
                }
                Err(e) => last_err = e.message().to_owned(),
            }
        }
        self.push(
            S,
            name,
            State::Warn,
            file.as_deref(),
            format!(
                "Certificate {} owner does not match the hostname {} ({last_err})",
                cert.source(),
                names.join(" or ")
            ),
            Some(format!(
                "if clients connect by another name, check with --hostname NAME; otherwise \
                 re-issue the server certificate with every name clients use as DNS subject \
                 alternative names (certtool template: one dns_name line each: {})",
                names.join(", ")
            )),
        );
    }

    // ----- libvirtd.conf -----

    /// Reads libvirtd.conf: the one given (unreadable = exit 2), or the default one if it
    /// exists. A syntax error is a check failure, not a stop.
    fn read_conf(
        &mut self,
        given: Option<&Path>,
    ) -> Result<Option<(DaemonConf, TlsSettings)>, CliError> {
        const S: &str = "CONF";
        let path = match given {
            Some(p) => {
                if let Err(e) = std::fs::metadata(p) {
                    return Err(CliError(format!("--libvirtd-conf {}: {e}", p.display())));
                }
                p.to_path_buf()
            }
            None => {
                let default = match &self.mode {
                    Mode::System => Some(self.sys("/etc/libvirt/libvirtd.conf")),
                    Mode::User => std::env::var_os("XDG_CONFIG_HOME")
                        .map(PathBuf::from)
                        .filter(|p| p.is_absolute())
                        .or_else(|| Environment::current().home.map(|h| h.join(".config")))
                        .map(|d| d.join("libvirt/libvirtd.conf")),
                    Mode::Path(_) => None,
                };
                match default {
                    Some(p) if p.exists() => p,
                    Some(p) => {
                        self.pass(
                            S,
                            "Checking libvirtd.conf",
                            Some(&p),
                            format!("{} does not exist: libvirtd uses its defaults", p.display()),
                        );
                        return Ok(None);
                    }
                    None => return Ok(None),
                }
            }
        };
        match DaemonConf::read_file(&path) {
            Ok(conf) => {
                self.pass(
                    S,
                    "Parsing libvirtd.conf",
                    Some(&path),
                    format!("{} parses", path.display()),
                );
                let settings = conf.tls_settings();
                Ok(Some((conf, settings)))
            }
            Err(e) if e.kind() == ErrorKind::Parse => {
                let line = e
                    .message()
                    .strip_prefix(&format!("{}:", path.display()))
                    .and_then(|r| r.split(':').next())
                    .map(str::to_owned);
                self.push(
                    S,
                    "Parsing libvirtd.conf",
                    State::Fail,
                    Some(&path),
                    format!("{e}: libvirtd refuses to start with this file"),
                    Some(match line {
                        Some(l) => format!("correct line {l} of {}", path.display()),
                        None => format!("correct {}", path.display()),
                    }),
                );
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn conf_checks(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        const S: &str = "CONF";
        let file = PathBuf::from(&conf.name);
        let f = Some(file.as_path());
        for e in &s.errors {
            self.push(
                S,
                format!("Checking {}", e.name),
                State::Fail,
                f,
                format!("{}: libvirtd refuses to start", e.message),
                Some(format!("correct line {} of {}", e.line, conf.name)),
            );
        }
        for d in conf.duplicates() {
            let first = conf.get(&d.name).map_or(0, |e| e.line);
            self.push(
                S,
                format!("Checking {}", d.name),
                State::Warn,
                f,
                format!(
                    "{}:{}: {} is set again; libvirt uses only the first setting (line {first})",
                    conf.name, d.line, d.name
                ),
                Some(format!("keep one {} line", d.name)),
            );
        }
        // key_file, cert_file, ca_file: all or none.
        let trio = [
            ("key_file", &s.key_file),
            ("cert_file", &s.cert_file),
            ("ca_file", &s.ca_file),
        ];
        let set: Vec<&str> = trio
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
        let unset: Vec<&str> = trio
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        let name = "Checking key_file, cert_file, ca_file";
        match set.len() {
            0 => self.pass(S, name, f, "not set: libvirtd loads its default files"),
            3 => self.pass(
                S,
                name,
                f,
                "all set: the SERVER checks above use these files",
            ),
            _ => self.push(
                S,
                name,
                State::Fail,
                f,
                format!(
                    "{} set but not {}: libvirtd refuses to start (\"No ... path set to match \
                     server ...\"); the SERVER checks above use the default files",
                    set.join(", "),
                    unset.join(", ")
                ),
                Some(format!(
                    "set all three of key_file, cert_file and ca_file in {}, or none",
                    conf.name
                )),
            ),
        }
        self.crl_checks(conf, s);
        if let Some(v) = &s.no_sanity_certificate {
            if v.value {
                self.push(
                    S,
                    "Checking tls_no_sanity_certificate",
                    State::Warn,
                    f,
                    format!(
                        "{}:{}: tls_no_sanity_certificate = 1: libvirtd skips its load-time \
                         checks of its certificates (virtpki ran them anyway, above)",
                        conf.name, v.line
                    ),
                    Some(
                        "fix what the checks report, then set tls_no_sanity_certificate = 0".into(),
                    ),
                );
            }
        }
        if let Some(v) = &s.no_verify_certificate {
            if v.value {
                self.push(
                    S,
                    "Checking tls_no_verify_certificate",
                    State::Warn,
                    f,
                    format!(
                        "{}:{}: tls_no_verify_certificate = 1: CLIENT CERTIFICATES ARE NOT \
                         VERIFIED. Any client that completes the TLS handshake is let in, \
                         whoever issued its certificate, and tls_allowed_dn_list is not applied",
                        conf.name, v.line
                    ),
                    Some(format!(
                        "delete the line (or set tls_no_verify_certificate = 0) in {} and \
                         restart libvirtd",
                        conf.name
                    )),
                );
            }
        }
        if let Some(line) = s.obsolete_no_verify_address {
            self.push(
                S,
                "Checking tls_no_verify_address",
                State::Warn,
                f,
                format!(
                    "{}:{line}: tls_no_verify_address is no longer read by libvirt: it has no \
                     effect",
                    conf.name
                ),
                Some("delete the line; clients skip the host name check with the URI parameter no_verify=1".into()),
            );
        }
        self.dn_list_checks(conf, s);
        if let Some(v) = &s.listen_tls {
            if !v.value {
                self.push(
                    S,
                    "Checking listen_tls",
                    State::Warn,
                    f,
                    format!("{}:{}: listen_tls = 0: libvirtd (without socket activation) does not listen for TLS", conf.name, v.line),
                    Some("set listen_tls = 1 and start libvirtd with --listen, or use socket activation: systemctl enable --now libvirtd-tls.socket".into()),
                );
            }
        }
        if let Some(v) = &s.tls_port {
            let name = "Checking tls_port";
            match v.value.parse::<u32>() {
                Ok(p) if (1..=65535).contains(&p) => self.pass(S, name, f, format!("TLS port {p}")),
                Ok(p) => self.push(
                    S,
                    name,
                    State::Fail,
                    f,
                    format!(
                        "{}:{}: tls_port \"{p}\" is not a port (1-65535)",
                        conf.name, v.line
                    ),
                    Some("tls_port = \"16514\" (libvirt's default)".into()),
                ),
                Err(_) => self.push(
                    S,
                    name,
                    State::Warn,
                    f,
                    format!(
                        "{}:{}: tls_port \"{}\" is not a number: it must be a service name of \
                         /etc/services",
                        conf.name, v.line, v.value
                    ),
                    Some("tls_port = \"16514\" (libvirt's default)".into()),
                ),
            }
        }
        if let Some(v) = &s.tls_priority {
            self.pass(
                S,
                "Checking tls_priority",
                f,
                format!("GnuTLS priority string \"{}\" (not checked)", v.value),
            );
        }
    }

    fn crl_checks(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        const S: &str = "CONF";
        let f = Some(Path::new(&conf.name));
        let name = "Checking crl_file";
        match &s.crl_file {
            Some(crl) => {
                let path = self.rerooted(&crl.value);
                if path.exists() {
                    return self.pass(
                        S,
                        name,
                        f,
                        format!("libvirtd loads the CRL {}", path.display()),
                    );
                }
                let sibling = path.with_file_name("cacrl.pem");
                let fix = if path.file_name().is_some_and(|n| n == "crl.pem") && sibling.exists() {
                    format!(
                        "crl_file = \"{}\": the default name is cacrl.pem (crl.pem comes from a \
                         mistake in libvirt's documentation)",
                        crl.value.with_file_name("cacrl.pem").display()
                    )
                } else {
                    format!(
                        "install the CA's CRL as {}, or point crl_file at it",
                        path.display()
                    )
                };
                self.push(
                    S,
                    name,
                    State::Warn,
                    f,
                    format!(
                        "{}:{}: crl_file {} does not exist: libvirtd silently skips it, so NO \
                         CERTIFICATE IS TREATED AS REVOKED",
                        conf.name,
                        crl.line,
                        path.display()
                    ),
                    Some(fix),
                );
            }
            None if s.ca_file.is_some() && s.cert_file.is_some() && s.key_file.is_some() => {
                let default = self.sys("/etc/pki/CA/cacrl.pem");
                if default.exists() {
                    self.push(
                        S,
                        name,
                        State::Warn,
                        f,
                        format!(
                            "crl_file is not set, so {} is not used: with ca_file set, libvirtd \
                             loads only the CRL crl_file names",
                            default.display()
                        ),
                        Some("crl_file = \"/etc/pki/CA/cacrl.pem\"".into()),
                    );
                }
            }
            None => {}
        }
    }

    fn dn_list_checks(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        const S: &str = "CONF";
        let f = Some(Path::new(&conf.name));
        let name = "Checking tls_allowed_dn_list";
        let Some(list) = &s.allowed_dn_list else {
            return self.pass(
                S,
                name,
                f,
                "not set: every client with a certificate from the CA may connect",
            );
        };
        if list.value.is_empty() {
            for finding in dn_lint::lint_list(&list.value, None) {
                self.push(
                    S,
                    name,
                    State::from(finding.severity()),
                    f,
                    format!("{}:{}: {finding}", conf.name, list.line),
                    Some(finding.fix()),
                );
            }
            return;
        }
        let client_dn = self.client_dn();
        for pattern in &list.value {
            let pname = format!("Checking DN pattern \"{pattern}\"");
            let findings = dn_lint::lint_pattern(pattern, client_dn.as_deref());
            if findings.is_empty() {
                self.pass(S, pname.clone(), f, "can match libvirt's DN strings");
            }
            for finding in findings {
                self.push(
                    S,
                    pname.clone(),
                    State::from(finding.severity()),
                    f,
                    format!("{}:{}: {finding}", conf.name, list.line),
                    Some(finding.fix()),
                );
            }
        }
        if let Some(dn) = client_dn {
            let cname = "Checking the client certificate against tls_allowed_dn_list";
            match virtpki::AllowedDnList::new(&list.value) {
                Ok(l) => match l.matching_pattern(&dn) {
                    Some(p) => self.pass(S, cname, f, format!("the client DN {dn} is allowed by \"{p}\"")),
                    None => self.push(
                        S,
                        cname,
                        State::Warn,
                        f,
                        format!("the client certificate's DN {dn} is on no pattern: libvirtd would reject this client"),
                        Some(format!("add \"{dn}\" to tls_allowed_dn_list, if this client is to connect")),
                    ),
                },
                Err(e) => self.push(S, cname, State::Fail, f, e.to_string(), None),
            }
        }
    }

    /// The DN of the client certificate of the checked set, if there is one.
    fn client_dn(&self) -> Option<String> {
        let files = self.default_files(Role::Client);
        let cert = files.iter().find(|f| f.ty == CertDataType::ClientCert)?;
        let (bytes, _) = pem::read_file(&cert.path, CertDataType::ClientCert).ok()?;
        match pem::parse(
            CertDataType::ClientCert,
            &bytes,
            &Source::File(cert.path.clone()),
        )
        .ok()?
        {
            Parsed::Certificates(certs) => certs.first().map(|c| c.subject().to_owned()),
            _ => None,
        }
    }

    // ----- output -----

    fn print(&self, args: &ValidateArgs, ui: Ui) {
        let count = |s: State| self.checks.iter().filter(|c| c.state == s).count();
        let (pass, warn, fail) = (count(State::Pass), count(State::Warn), count(State::Fail));
        if args.json {
            let checks: Vec<Value> = self
                .checks
                .iter()
                .map(|c| {
                    json!({
                        "scope": c.scope.to_ascii_lowercase(),
                        "name": c.name,
                        "status": c.state.name(),
                        "file": c.file.as_ref().map(|p| p.display().to_string()),
                        "message": c.message,
                        "fix": c.fix,
                        "rule": c.rule,
                        "libvirt_differs": c.libvirt,
                    })
                })
                .collect();
            print_json(&json!({
                "mode": match &self.mode {
                    Mode::System => "system".to_owned(),
                    Mode::User => "user".to_owned(),
                    Mode::Path(_) => "path".to_owned(),
                },
                "path": match &self.mode { Mode::Path(p) => Some(p.display().to_string()), _ => None },
                "root": self.root.display().to_string(),
                "checks": checks,
                "summary": { "pass": pass, "warn": warn, "fail": fail, "ok": fail == 0 },
            }));
            return;
        }
        for c in &self.checks {
            let state = match c.state {
                State::Pass => ui.pass("PASS"),
                State::Warn => ui.warn("WARN"),
                State::Fail => ui.fail("FAIL"),
            };
            println!("{:>6}: {:<69}: {state}", c.scope, c.name);
            if c.state != State::Pass {
                println!("        {}", c.message);
                if let Some(fix) = &c.fix {
                    println!("        {} {fix}", ui.bold("fix:"));
                }
                if let Some(note) = &c.libvirt {
                    println!("        {}", ui.dim(&format!("libvirt: {note}")));
                }
            }
        }
        println!();
        let verdict = if fail > 0 {
            ui.fail("FAILED")
        } else if warn > 0 {
            ui.warn("OK, with warnings")
        } else {
            ui.pass("OK")
        };
        println!(
            "{} checks: {pass} passed, {warn} warnings, {fail} failed: {verdict}",
            pass + warn + fail
        );
    }
}

/// This machine's names: the host name, its short form and its canonical (fully qualified)
/// name, since clients may use any of them.
fn machine_names() -> Vec<String> {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // (the last byte is kept 0 in case it truncates).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr(), buf.len() - 1) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: NUL-terminated, see above.
    let host = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let mut names = vec![host.clone()];
    if let Some((short, _)) = host.split_once('.') {
        names.push(short.to_owned());
    }
    if let Some(fqdn) = canonical_name(&host) {
        names.push(fqdn);
    }
    let mut seen = HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.to_ascii_lowercase()));
    names
}

fn canonical_name(host: &str) -> Option<String> {
    let c_host = CString::new(host).ok()?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; fields set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string, hints and out pointer; res is freed below on success.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is a valid list from getaddrinfo; ai_canonname, if set, is NUL-terminated.
    let name = unsafe {
        let p = (*res).ai_canonname;
        let name = (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned());
        libc::freeaddrinfo(res);
        name
    };
    name
}
