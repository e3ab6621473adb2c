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
//!
//! The pieces: this file runs the sections and collects the report's lines; [`report`]
//! prints them; [`files`] checks the TRUST, SERVER and CLIENT files, [`access`] their owners
//! and modes and [`hostname`] the server certificate against this machine's names; [`conf`]
//! checks libvirtd.conf and [`dn_list`] its `tls_allowed_dn_list`. The rules themselves are
//! the library's ([`virtpki::file_audit`], [`virtpki::daemon_conf::audit`], ...): these files
//! gather the paths, call them and turn their answers into report lines.
//!
//! A path given with `--path`, `--root` or `--libvirtd-conf` that is not there (or not what
//! the option takes) is the whole report, in an ARGS section: said first, with its fix.

mod access;
mod conf;
mod dn_list;
mod files;
mod hostname;
mod report;

pub(crate) use files::mkdir_p;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use virtpki::locations::Environment;
use virtpki::Role;

use crate::given::Problem;
use crate::ui::{CmdResult, Status, Ui};
use report::{Check, State};

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Check the system files (/etc/pki/...): the default when run as root.
    #[arg(long, short = 's', conflicts_with_all = ["user", "path"])]
    pub system: bool,
    /// Check the user's files (~/.pki/libvirt): the default for other users.
    #[arg(long, short = 'u', conflicts_with = "path")]
    pub user: bool,
    /// Check the files of a pkipath directory (DIR/cacert.pem, DIR/servercert.pem, ...).
    /// Also spelt --pkipath.
    #[arg(long, short = 'p', alias = "pkipath", value_name = "DIR")]
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

/// The section a line of the report belongs to; virt-pki-validate's names, plus CONF, and
/// ARGS for the paths given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Args,
    Trust,
    Server,
    Client,
    Conf,
}

impl Scope {
    fn of(role: Role) -> Scope {
        match role {
            Role::Server => Scope::Server,
            Role::Client => Scope::Client,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Scope::Args => "ARGS",
            Scope::Trust => "TRUST",
            Scope::Server => "SERVER",
            Scope::Client => "CLIENT",
            Scope::Conf => "CONF",
        }
    }
}

/// Whose files are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    System,
    User,
    /// A pkipath directory (--path DIR).
    Path(PathBuf),
}

/// Runs the checks and collects the lines of the report.
struct Validator {
    checks: Vec<Check>,
    /// Failures already on the report: a broken file loaded for two roles is reported once.
    reported: HashSet<String>,
    mode: Mode,
    root: PathBuf,
    uid: u32,
    gid: u32,
}

/// Runs the checks `args` ask for and prints the report. A path given on the command line
/// that is not what its option takes (`given`, checked by [`crate::given`]) is the report:
/// every later check would be about other files (libvirt's fallbacks under /etc/pki) or
/// none.
pub fn run(args: ValidateArgs, given: &[Problem], ui: Ui) -> CmdResult {
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
    let mut v = Validator {
        checks: Vec::new(),
        reported: HashSet::new(),
        mode,
        root,
        uid,
        gid,
    };
    if !given.is_empty() {
        for p in given {
            v.push(
                Scope::Args,
                format!("Checking {}", p.option),
                State::Fail,
                Some(&p.path),
                p.to_string(),
                Some(p.fix.clone()),
            );
        }
        v.print(&args, ui);
        return Ok(Status::BadInput);
    }
    let wants = |w: What| args.what.is_none_or(|x| x == w);
    // Read first, since it may name the server's files; reported last, after those files.
    let conf = if wants(What::Server) {
        v.read_conf(args.libvirtd_conf.as_deref())?
    } else {
        None
    };
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
    /// libvirt's file locations for the checked mode, under --root.
    fn env(&self) -> Environment {
        let mut env = Environment::current();
        env.root = self.root.clone();
        // Environment's uid only picks system versus user files: --user as root means the
        // user files, so that root can check its own ~/.pki/libvirt.
        env.uid = if self.mode == Mode::System { 0 } else { 1 };
        env
    }

    /// A system path (absolute) under --root.
    fn sys(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Adds a line to the report.
    fn push(
        &mut self,
        scope: Scope,
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

    /// Adds a passed check: its message is shown only in the JSON report.
    fn pass(
        &mut self,
        scope: Scope,
        name: impl Into<String>,
        file: Option<&Path>,
        message: impl Into<String>,
    ) {
        self.push(scope, name, State::Pass, file, message, None);
    }
}
