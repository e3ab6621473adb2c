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
//! `--qemu` checks QEMU's directories instead, as qemu.conf gives them ([`qemu`]).
//!
//! A path given with `--path`, `--root` or `--libvirtd-conf` that is not there (or not what
//! the option takes) is the whole report, in an ARGS section: said first, with its fix.

mod access;
mod conf;
mod dn_list;
mod files;
mod hostname;
mod qemu;
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
    /// The name clients use to reach this server, instead of this machine's host names;
    /// give it once for each name (each must be in the certificate).
    #[arg(long, value_name = "NAME")]
    pub hostname: Vec<String>,
    /// The daemon configuration to check [default: with --system, the one the running
    /// libvirtd (or virtproxyd) was started with (-f), else ROOT/etc/libvirt/libvirtd.conf;
    /// ~/.config/libvirt/libvirtd.conf with --user].
    #[arg(long, value_name = "FILE")]
    pub libvirtd_conf: Option<PathBuf>,
    /// Treat PATH as / for the system files and libvirtd.conf (for tests and chroots);
    /// checks the system files, so not with --user or --path.
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// The DN of a client that connects to this host, as `virtpki dn CERT` prints it:
    /// checked against libvirtd.conf's tls_allowed_dn_list (a warning if it would be
    /// rejected). Give it once for each client. Without it, this host's own client
    /// certificate is checked, as a note: it is for connecting to other hosts.
    #[arg(long, value_name = "DN")]
    pub client_dn: Vec<String>,
    /// Warn of every certificate and CRL that expires within N days (0: no such warning;
    /// what has expired always fails).
    #[arg(long, value_name = "N", default_value_t = virtpki::sanity::DEFAULT_EXPIRY_HORIZON_DAYS,
          value_parser = clap::value_parser!(u32).range(..=i64::from(virtpki::sanity::MAX_EXPIRY_HORIZON_DAYS)))]
    pub warn_days: u32,
    /// Check QEMU's directories instead of libvirt's: those of every subsystem qemu.conf
    /// enables (VNC, SPICE, chardev, NBD; migration and backup when their directory is set or
    /// there), with QEMU's load-time rules, its user's access, the *_verify settings, expiry
    /// and the names the server certificate must carry.
    #[arg(long, conflicts_with_all = ["user", "path", "what", "libvirtd_conf", "client_dn"])]
    pub qemu: bool,
    /// With --qemu: the qemu.conf to read [default: ROOT/etc/libvirt/qemu.conf, when it exists].
    #[arg(long, value_name = "FILE")]
    pub qemu_conf: Option<PathBuf>,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Text: also each passed check's message and every line's id, file and rule.
    #[arg(long, short = 'v')]
    pub verbose: bool,
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
    /// `validate --qemu`: QEMU's directories and qemu.conf.
    Qemu,
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
            Scope::Qemu => "QEMU",
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
    /// The expiry horizon of the sanity check, in days (--warn-days).
    warn_days: u32,
    /// `--qemu`: QEMU's directories.
    qemu: bool,
    /// Which daemon configuration file was read and why (`configuration` in JSON).
    conf_choice: Option<conf::ConfChoice>,
}

/// Runs the checks `args` ask for and prints the report. A path given on the command line
/// that is not what its option takes (`given`, checked by [`crate::given`]) is the report:
/// every later check would be about other files (libvirt's fallbacks under /etc/pki) or
/// none.
pub fn run(args: ValidateArgs, given: &[Problem], ui: Ui) -> CmdResult {
    if let Some(status) = root_conflicts(&args) {
        return Ok(status);
    }
    if args.qemu_conf.is_some() && !args.qemu {
        return Err(crate::ui::CliError(
            "--qemu-conf is read by --qemu only (libvirtd.conf is --libvirtd-conf)".into(),
        )
        .with_fix("add --qemu, or leave out --qemu-conf"));
    }
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let mode = match (&args.path, args.user, args.system) {
        (Some(dir), _, _) => Mode::Path(dir.clone()),
        (None, true, _) => Mode::User,
        (None, false, true) => Mode::System,
        // --root is a system tree: its files, whoever checks them.
        (None, false, false) if uid == 0 || args.root.is_some() => Mode::System,
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
        warn_days: args.warn_days,
        qemu: args.qemu,
        conf_choice: None,
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
    if args.qemu {
        v.qemu_checks(&args);
        v.print(&args, ui);
        let failed = v.checks.iter().any(|c| c.state == State::Fail);
        return Ok(Status::problems_if(failed));
    }
    let wants = |w: What| args.what.is_none_or(|x| x == w);
    // Read first, since it may name the server's files; reported last, after those files.
    let mut conf = if wants(What::Server) {
        v.read_conf(args.libvirtd_conf.as_deref())?
    } else {
        None
    };
    let mut conf_head: Vec<Check> = v.checks.drain(..).collect();
    // Without WHAT, the roles this machine has files for: a client-only machine's report is
    // not a list of missing server files. With files for neither, both are checked (and
    // their failures say what to install).
    let mut roles = Vec::new();
    if wants(What::Server) {
        roles.push(Role::Server);
    }
    if wants(What::Client) {
        roles.push(Role::Client);
    }
    let mut skipped = Vec::new();
    if args.what.is_none() {
        let conf_wants_server = args.libvirtd_conf.is_some()
            || conf.as_ref().is_some_and(|(_, s)| {
                v.conf_files(s).is_some() || s.listen_tls.as_ref().is_some_and(|l| l.value)
            });
        let present: Vec<Role> = roles
            .iter()
            .copied()
            .filter(|&r| v.has_files(r) || (r == Role::Server && conf_wants_server))
            .collect();
        if !present.is_empty() {
            skipped = roles
                .iter()
                .copied()
                .filter(|r| !present.contains(r))
                .collect();
            roles = present;
        }
    }
    if skipped.contains(&Role::Server) {
        // libvirtd.conf's TLS settings are the server's: skipped with it. A file libvirtd
        // cannot parse stays on the report: the daemon does not start, TLS or not.
        conf = None;
        conf_head.retain(|c| c.state == State::Fail);
    }
    if wants(What::Trust) {
        v.trust();
    }
    for role in [Role::Server, Role::Client] {
        if roles.contains(&role) {
            let (conf, hostname) = match role {
                Role::Server => (conf.as_ref(), args.hostname.as_slice()),
                Role::Client => (None, &[][..]),
            };
            v.identity(role, conf, hostname);
        } else if skipped.contains(&role) {
            v.skipped(role);
        }
    }
    // Their ids were made unique when they were added.
    v.checks.extend(conf_head);
    match &conf {
        Some((conf, settings)) => v.conf_checks(conf, settings, &args.client_dn),
        None => v.client_dns_unchecked(&args.client_dn),
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

    /// Adds a line to the report, its id made from its name ([`report::id_of_name`]): for
    /// the lines whose code names no id.
    fn push(
        &mut self,
        scope: Scope,
        name: impl Into<String>,
        state: State,
        file: Option<&Path>,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        let name = name.into();
        let id = report::id_of_name(&name);
        self.push_id(scope, &id, name, state, file, message, fix);
    }

    /// Adds a line to the report; `id` is the item's (`ca_cert`, `key_mode`), the scope is
    /// put before it.
    #[allow(clippy::too_many_arguments)]
    fn push_id(
        &mut self,
        scope: Scope,
        id: &str,
        name: impl Into<String>,
        state: State,
        file: Option<&Path>,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        self.add(Check {
            id: id.to_owned(),
            scope,
            name: name.into(),
            state,
            file: file.map(Path::to_path_buf),
            message: message.into(),
            fix,
            rule: None,
            libvirt: None,
            qemu: None,
        });
    }

    /// Adds a passed check: its message is shown in the JSON report, and in text with
    /// --verbose or when the report notes it (`report::NOTED`).
    fn pass(
        &mut self,
        scope: Scope,
        name: impl Into<String>,
        file: Option<&Path>,
        message: impl Into<String>,
    ) {
        self.push(scope, name, State::Pass, file, message, None);
    }

    /// [`pass`](Self::pass) with the item's id.
    fn pass_id(
        &mut self,
        scope: Scope,
        id: &str,
        name: impl Into<String>,
        file: Option<&Path>,
        message: impl Into<String>,
    ) {
        self.push_id(scope, id, name, State::Pass, file, message, None);
    }
}

/// `--root` with `--user` or `--path`: refused (exit 2), since the report would mix the
/// system files under the root with the user's or the directory's (`install` refuses it
/// too). Said as clap says a conflict, with the reason.
fn root_conflicts(args: &ValidateArgs) -> Option<Status> {
    use clap::CommandFactory;
    let root = args.root.as_ref()?;
    let other = if args.user {
        "--user"
    } else if args.path.is_some() {
        "--path"
    } else {
        return None;
    };
    let mut cli = crate::Cli::command();
    cli.build();
    let cmd = cli.find_subcommand_mut("validate")?.clone();
    let e = clap::Error::raw(
        clap::error::ErrorKind::ArgumentConflict,
        format!(
            "the argument '--root {}' cannot be used with '{other}': --root checks the system \
             files under that directory, {other} other files, and the report would mix the \
             two; give one of them\n",
            root.display()
        ),
    )
    .with_cmd(&cmd);
    let _ = e.print();
    Some(Status::BadInput)
}
