//! `virtpki install`: a CA certificate (and CRL), a certificate and its key, copied to where
//! libvirt reads them, with the owners and modes virt-pki-validate expects.
//!
//! System set (root): /etc/pki/CA/cacert.pem and cacrl.pem 0644, /etc/pki/libvirt/ROLEcert.pem
//! 0644, /etc/pki/libvirt/private/ROLEkey.pem 0600, directories 0755, all root:root.
//! User set: ~/.pki/libvirt (0700) with every file 0600. The modes are those of
//! [`virtpki::file_audit`], whose rules `virtpki validate` checks, so the two cannot drift.
//! The files are checked with libvirt's load-time rules first; nothing is written when they
//! fail or when an existing different file would be replaced without --force (with --force
//! the old file is kept as FILE.bak-TIME). A newer CRL of the same CA is the exception: it
//! replaces the installed one without --force, which `crl revoke` has every host do.
//! An installed file with the right contents but another mode is given the right one; with
//! another owner it is written afresh (its owner may hold it open for writing).
//!
//! With `--reload` (the system's server files only), the running daemons are then told to
//! reload ([`crate::reload`]): the certificate and key may replace the installed pair without
//! --force, a daemon whose configuration names other files refuses the run before anything is
//! written, and the old files are put back (and the daemons told again) when one refuses.
//!
//! With `--qemu`, [`crate::install_qemu`] plans QEMU's names, directory, owners and modes, and
//! [`apply`] (the writing half of this command) installs them the same way.
//!
//! Each source is read once, through one descriptor that is not a symbolic link, and those
//! bytes are checked and written. The targets are read, replaced, backed up and repaired
//! through their directory's descriptor, never following a link at their names. Run as root
//! for `--user` (`sudo -E`), the files and directories are given to the home directory's owner.

use std::fs;
use std::path::{Path, PathBuf};

use virtpki::data_type::Content;
use virtpki::file_audit::{self, FileKind};
use virtpki::fsutil::{self, Dir, Owner, ReadError, ReadFile};
use virtpki::locations::{self, Environment};
use virtpki::pem::Parsed;
use virtpki::{pem, CertDataType, Context, ContextFlags, Role};

use virtpki::daemon_conf::Daemon;

use crate::files::{self, Replace};
use crate::reload;
use crate::ui::{CliError, CmdResult, Status, Ui};

/// Which role's files to install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Client,
    Server,
    /// Server and client together, in one QEMU directory (migration); --qemu only.
    Both,
}

impl RoleArg {
    /// The roles it stands for.
    pub(crate) fn roles(self) -> Vec<Role> {
        match self {
            RoleArg::Client => vec![Role::Client],
            RoleArg::Server => vec![Role::Server],
            RoleArg::Both => vec![Role::Server, Role::Client],
        }
    }
}

/// A QEMU subsystem whose directory qemu.conf names (`--subsystem`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SubsystemArg {
    /// default_tls_x509_cert_dir (/etc/pki/qemu).
    Default,
    Vnc,
    Spice,
    Chardev,
    Migrate,
    Nbd,
    Backup,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").args(["system", "user", "root"])))]
pub struct InstallArgs {
    /// Install the client's files (virsh, remote clients) or the daemon's; with --qemu also
    /// `both` (migration), and the subsystem's role when left out (vnc, spice, backup: server;
    /// nbd: client; migrate: both).
    #[arg(long, value_enum, required_unless_present = "qemu")]
    pub role: Option<RoleArg>,
    /// The CA directory: its cacert.pem (and cacrl.pem, when there is one) are installed.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// The directory `virtpki issue` wrote ROLEcert.pem and ROLEkey.pem to.
    #[arg(long, value_name = "OUT")]
    pub from: PathBuf,
    /// libvirt's system locations under /etc/pki (the default as root).
    #[arg(long)]
    pub system: bool,
    /// The user's locations, ~/.pki/libvirt (the default for other users).
    #[arg(long)]
    pub user: bool,
    /// The system locations under PATH instead of / (an image, a container, a test).
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// Replace existing different files (each is kept as FILE.bak-TIME; a newer CRL of the
    /// same CA needs no --force, an older one does); install a certificate whose purpose does
    /// not allow the role, where libvirt would only warn.
    #[arg(long)]
    pub force: bool,
    /// Say what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Then tell the running daemons to reload (virt-admin server-update-tls, as `virtpki
    /// reload`). The server's certificate and key may replace the installed ones without
    /// --force (each old file kept as FILE.bak-TIME), and so may a renewed CA (the same names
    /// and keys); another CA still needs --force. Refused before anything is written when a
    /// running daemon's configuration names other files; a daemon that refuses the new files
    /// gets the old ones back.
    #[arg(long)]
    pub reload: bool,
    /// Print what was done as JSON on standard output (the messages go to standard error).
    #[arg(long)]
    pub json: bool,
    /// Install for QEMU (VNC, SPICE, migration, NBD, ...): QEMU's file names (ca-cert.pem,
    /// server-cert.pem, server-key.pem, client-cert.pem, client-key.pem, ca-crl.pem) in the
    /// directory qemu.conf gives the subsystem, readable by QEMU's user and group.
    #[arg(long, conflicts_with = "user")]
    pub qemu: bool,
    /// With --qemu: the subsystem whose directory to install into [default: default, i.e.
    /// default_tls_x509_cert_dir].
    #[arg(long, value_enum, requires = "qemu")]
    pub subsystem: Option<SubsystemArg>,
    /// With --qemu: the qemu.conf to read [default: ROOT/etc/libvirt/qemu.conf, when it exists].
    #[arg(long, value_name = "FILE")]
    pub qemu_conf: Option<PathBuf>,
}

/// One file to install.
pub(crate) struct Planned {
    pub ty: CertDataType,
    pub from: PathBuf,
    pub to: PathBuf,
    pub mode: u32,
    /// Whom to give it (and the directories made for it) to: root:root for the system
    /// locations when running as root, the home directory's owner for `--user` as root.
    pub owner: Option<Owner>,
}

impl Planned {
    fn owner_label(&self) -> String {
        match self.owner {
            None => String::new(),
            Some(Owner::ROOT) => ", root:root".into(),
            Some(o) => format!(", {}:{}", o.uid, o.gid),
        }
    }
}

pub fn run(args: InstallArgs, ui: Ui) -> CmdResult {
    // With --json, standard output is the JSON document: the messages go to standard error.
    let json = args.json;
    macro_rules! say {
        ($($t:tt)*) => {
            if json {
                eprintln!($($t)*)
            } else {
                println!($($t)*)
            }
        };
    }
    if args.qemu {
        return crate::install_qemu::run(args, ui);
    }
    if args.qemu_conf.is_some() {
        return Err(
            CliError("--qemu-conf is read by --qemu only; nothing was installed".into())
                .with_fix("add --qemu, or leave out --qemu-conf"),
        );
    }
    let role =
        match args.role {
            Some(RoleArg::Client) => Role::Client,
            Some(RoleArg::Server) => Role::Server,
            Some(RoleArg::Both) | None => return Err(CliError(
                "--role both is for QEMU's directories (--qemu): libvirt keeps a host's server \
                 and client files apart; nothing was installed"
                    .into(),
            )
            .with_fix("give --role server and --role client in two runs, or add --qemu")),
        };
    let env = Environment::current();
    // Each source directory is opened once (following links: the paths are the caller's), and
    // its files are read relative to it: a certificate and its key come from one directory,
    // even if the path is made to lead elsewhere meanwhile.
    let ca_dir = open_source_dir(&args.ca_dir, "cacert.pem")?;
    let cert_name = format!("{}cert.pem", role.name());
    let from_dir = open_source_dir(&args.from, &cert_name)?;
    other_role_files(role, &args.from)?;
    let candidates = [
        (CertDataType::CaCert, &ca_dir, "cacert.pem".to_owned()),
        (CertDataType::CaCrl, &ca_dir, "cacrl.pem".to_owned()),
        (role.cert_type(), &from_dir, cert_name),
        (
            role.key_type(),
            &from_dir,
            format!("{}key.pem", role.name()),
        ),
    ];
    // Each source is opened once, not through a link, and the bytes checked are the bytes
    // written: a file swapped after the check cannot be what gets installed.
    let mut sources = Vec::new();
    for (ty, (dir, shown), name) in candidates {
        let path = shown.join(&name);
        match read_source(dir, &path, ty) {
            Ok(read) => sources.push((ty, path, read)),
            Err(e) if ty == CertDataType::CaCrl && is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let warnings = check_sources(role, &args.from, &sources, args.force, false)?;
    for warning in &warnings {
        say!("{} {warning}", ui.warn("warning:"));
    }
    let user = args.user || (!args.system && args.root.is_none() && env.uid != 0);
    // Which daemons to reload, refused before anything is written.
    let reloading = if args.reload {
        Some(plan_reload(&args, role, user)?)
    } else {
        None
    };
    let as_root = env.uid == 0;
    let user_owner = if user && as_root {
        home_owner(&env)?
    } else {
        None
    };
    let mut plan = Vec::new();
    for (ty, from, read) in sources {
        // The mode virt-pki-validate, and so `virtpki validate`, holds the file to.
        let mode = file_audit::mode_for(FileKind::of(ty), !user);
        let (to, owner) = if user {
            let dir = env.user_dir().ok_or_else(|| {
                CliError("no home directory ($HOME is not set): use --root or --system".into())
            })?;
            (dir.join(locations::libvirt_file_name(ty)), user_owner)
        } else {
            let root = Environment {
                root: args.root.clone().unwrap_or_else(|| PathBuf::from("/")),
                home: None,
                uid: 0,
            };
            (root.system_file(ty), as_root.then_some(Owner::ROOT))
        };
        plan.push((
            Planned {
                ty,
                from,
                to,
                mode,
                owner,
            },
            read,
        ));
    }
    // Below the home directory (`--user` as root) or the `--root` tree, someone else may own
    // the directories: no link there is followed, neither when reading nor when writing.
    let base = match (&user_owner, &env.home, &args.root) {
        (Some(owner), Some(home), _) if user => Some(Base {
            path: home.clone(),
            must_belong_to: Some(*owner),
        }),
        (_, _, Some(root)) if !user => Some(Base {
            path: root.clone(),
            must_belong_to: None,
        }),
        _ => None,
    };
    let job = Job {
        plan: &plan,
        base,
        dir_mode: dir_mode(user),
        parents_mode: None,
        force: args.force,
        dry_run: args.dry_run,
        rotating: if args.reload {
            vec![role.cert_type(), role.key_type()]
        } else {
            Vec::new()
        },
        reloading: args.reload,
        json,
    };
    let (files_json, written) = apply(&job, ui)?;
    let scope = if user {
        "--user".to_owned()
    } else if let Some(root) = &args.root {
        format!("--root {}", virtpki::display::shell_path(root))
    } else {
        "--system".to_owned()
    };
    let mut status = Status::Ok;
    let mut reload_json = serde_json::Value::Null;
    if let Some(r) = &reloading {
        let (ok, lines, value) = reload_after(r, &written, args.dry_run, ui);
        for line in lines {
            say!("{line}");
        }
        reload_json = value;
        if !ok {
            status = Status::Problems;
        }
    }
    if !args.dry_run && status == Status::Ok {
        say!("\nNext: virtpki validate {scope} {}", role.name());
    }
    if json {
        let changed = files_json.iter().any(|f| f["action"] != "unchanged");
        crate::ui::print_json(&serde_json::json!({
            "role": role.name(),
            "dry_run": args.dry_run,
            // Put back whole, nothing changed; a rollback that could not finish left changes.
            "changed": changed && reload_json["rolled_back"] != true,
            "files": files_json,
            "reload": reload_json,
            "ok": status == Status::Ok,
        }));
    }
    Ok(status)
}

/// What [`apply`] installs, and how.
pub(crate) struct Job<'a> {
    /// Each file with the bytes read from its source (and checked).
    pub plan: &'a [(Planned, ReadFile)],
    /// The tree below which no link is followed.
    pub base: Option<Base>,
    /// The mode of the directories made.
    pub dir_mode: u32,
    /// The mode of the directories above the files' own, when the caller makes them with
    /// another mode (QEMU's /etc/pki: 0755 above a 0750 directory).
    pub parents_mode: Option<u32>,
    pub force: bool,
    pub dry_run: bool,
    /// The types that may replace an installed file without --force (--reload's rotation).
    pub rotating: Vec<CertDataType>,
    /// `--reload` was given (a CA that differs gets a word on why it is not replaced).
    pub reloading: bool,
    /// Messages go to standard error.
    pub json: bool,
}

/// Installs `job.plan`: decides every file's action before writing anything (refusing an
/// existing different file without --force), then writes each atomically, keeping the old
/// one as FILE.bak-TIME, through directories opened without following links below the base.
/// Returns the JSON line of each file and what was written (for a rollback).
pub(crate) fn apply(
    job: &Job<'_>,
    ui: Ui,
) -> Result<(Vec<serde_json::Value>, Vec<Written>), CliError> {
    let json = job.json;
    macro_rules! say {
        ($($t:tt)*) => {
            if json {
                eprintln!($($t)*)
            } else {
                println!($($t)*)
            }
        };
    }
    let plan = job.plan;
    // Decide everything before writing anything. An installed file is read through its
    // directory, never through a link planted at its name.
    let mut actions = Vec::new();
    for (p, new) in plan {
        let new = &new.bytes;
        let (dir, name) = files::split(&p.to)?;
        let existing = match open_existing(&dir, job.base.as_ref())? {
            Some(d) => match d.read(name, files::MAX_FILE_SIZE) {
                Ok(old) => Some(old),
                Err(e) if e.is_not_found() => None,
                Err(e @ ReadError::Io(..)) => {
                    return Err(CliError(format!(
                        "{}: cannot read the installed file: {e}; nothing was installed",
                        p.to.display()
                    )))
                }
                Err(e @ ReadError::TooLarge(_)) => {
                    return Err(CliError(format!(
                        "{}: the installed file is {e} to compare; nothing was installed",
                        p.to.display()
                    )))
                }
            },
            None => None,
        };
        let previous = existing.as_ref().map(|old| ReadFile {
            bytes: old.bytes.clone(),
            meta: old.meta.clone(),
        });
        let action = match existing {
            Some(old) if *old.bytes == **new && has_mode_and_owner(p, &old.meta) => {
                Action::Unchanged
            }
            // The right contents and owner with the wrong mode: libvirt's rules are about both.
            Some(old)
                if *old.bytes == **new && p.owner.is_none_or(|o| o == Owner::of(&old.meta)) =>
            {
                Action::FixMode(old.meta)
            }
            // The right contents with another owner: written afresh, not given away in place;
            // its owner may hold it open for writing and would keep that access.
            Some(old) if *old.bytes == **new => Action::Rewrite,
            // A newer CRL of the same CA is what `crl revoke` asks every host to install:
            // no --force, which would also switch off the purpose check.
            Some(old) if p.ty == CertDataType::CaCrl && !job.force => {
                let ca = plan
                    .iter()
                    .find(|(c, _)| c.ty == CertDataType::CaCert)
                    .map(|(c, read)| (c.from.as_path(), &read.bytes[..]));
                match crl_update(&p.to, &old.bytes, &p.from, new, ca) {
                    Ok((from, to)) => Action::NewerCrl { from, to },
                    Err(why) => {
                        return Err(CliError(format!(
                            "{}: exists with other contents: {why}; nothing was installed \
                             (give --force to replace it anyway; the old file is kept as \
                             {}.bak-TIME)",
                            p.to.display(),
                            p.to.display()
                        )))
                    }
                }
            }
            // Rotation: the pair was checked together above; the old one is kept.
            Some(_) if job.rotating.contains(&p.ty) => Action::Replace,
            // A renewed CA (`ca renew`: the same names and keys), alone or bundled with the
            // installed one: every peer that verified under the installed CA still does, and
            // no other CA is trusted; rotated like the pair.
            Some(old)
                if job.reloading && p.ty == CertDataType::CaCert && same_cas(&old.bytes, new) =>
            {
                Action::Replace
            }
            Some(_) if !job.force => {
                let why = if job.reloading && p.ty == CertDataType::CaCert {
                    " (--reload replaces the certificate and key, not the CA: a new CA breaks \
                     every peer that trusts the old one until it has the new one)"
                } else {
                    ""
                };
                return Err(CliError(format!(
                    "{}: exists with other contents{why}; nothing was installed (give --force \
                     to replace it; the old file is kept as {}.bak-TIME)",
                    p.to.display(),
                    p.to.display()
                )));
            }
            Some(_) => Action::Replace,
            None => Action::Create,
        };
        actions.push((action, previous));
    }
    if job.dry_run {
        let mut shown = Vec::new();
        for (p, _) in plan {
            let (existing, missing) = fsutil::existing_and_missing(p.to.parent().unwrap_or(&p.to));
            let mut dir = existing;
            for c in missing.components() {
                dir.push(c);
                if !shown.contains(&dir) {
                    let mode = match job.parents_mode {
                        Some(m) if !p.to.parent().is_some_and(|t| dir.ends_with(t)) => m,
                        _ => job.dir_mode,
                    };
                    say!("would create {} (mode {mode:04o})", dir.display());
                    shown.push(dir.clone());
                }
            }
        }
    }
    // What was written, to put back if a daemon refuses it, and what JSON reports.
    let mut written: Vec<Written> = Vec::new();
    let mut files_json = Vec::new();
    for ((p, read), (action, previous)) in plan.iter().zip(actions) {
        let contents = &read.bytes;
        let label = action.label();
        let mut backup = None;
        let crl_numbers = match &action {
            Action::NewerCrl { from, to } => Some(format!("(number {from} \u{2192} {to})")),
            _ => None,
        };
        let verb = match (&action, job.dry_run) {
            (Action::Unchanged, _) => {
                say!("{} {}", ui.dim("unchanged"), p.to.display());
                files_json.push(file_json(p, label, None));
                continue;
            }
            (Action::Create, true) => "would install",
            (Action::Replace | Action::NewerCrl { .. }, true) => "would replace",
            (Action::FixMode(_), true) => "would fix the mode of",
            (Action::Rewrite, true) => "would rewrite, for its owner,",
            (Action::Create, false) => "installed",
            (Action::Replace | Action::NewerCrl { .. }, false) => "replaced",
            (Action::FixMode(_), false) => "fixed the mode of",
            (Action::Rewrite, false) => "rewrote, for its owner,",
        };
        if !job.dry_run {
            let (dir, name) = files::split(&p.to)?;
            let dir = match job.base.as_ref().filter(|b| dir.starts_with(&b.path)) {
                // Each directory below the base opened without following a link.
                Some(b) => {
                    let below = dir.strip_prefix(&b.path).unwrap_or(&dir);
                    let top = if b.must_belong_to.is_some() {
                        // The home directory exists; it is not the command's to make.
                        Dir::open(&b.path).map_err(|e| {
                            CliError(format!("{}: cannot open: {e}", b.path.display()))
                        })?
                    } else {
                        files::create_dir_owned(&b.path, job.dir_mode, p.owner)?
                    };
                    fsutil::make_dirs_in(top, below, job.dir_mode, p.owner).map_err(|e| {
                        CliError(format!("{}: cannot create directory: {e}", dir.display()))
                    })?
                }
                None => files::create_dir_owned(&dir, job.dir_mode, p.owner)?,
            };
            match action {
                Action::Create => {
                    files::write_in(&dir, name, contents, p.mode, p.owner, Replace::Never)?
                }
                Action::Replace | Action::NewerCrl { .. } => {
                    let (kept, count) = files::keep_copy_in(&dir, name)?;
                    backup = Some(kept.clone());
                    let what = if p.ty.content() == Content::PrivateKey {
                        crate::ui::count(
                            count,
                            "copy of this private key",
                            "copies of this private key",
                        )
                    } else {
                        crate::ui::count(count, "old copy", "old copies")
                    };
                    say!(
                        "{} {} ({what} kept in {}: remove the ones no longer needed)",
                        ui.dim("kept the old file as"),
                        kept.display(),
                        dir.path().display()
                    );
                    files::write_in(&dir, name, contents, p.mode, p.owner, Replace::Allowed)?;
                }
                // The same contents: nothing to keep a copy of.
                Action::Rewrite => {
                    files::write_in(&dir, name, contents, p.mode, p.owner, Replace::Allowed)?
                }
                Action::FixMode(seen) => dir
                    .fix_mode_and_owner(name, p.mode, p.owner, &seen)
                    .map_err(|e| {
                        CliError(format!(
                            "{}: cannot set its mode and owner: {e}",
                            p.to.display()
                        ))
                    })?,
                Action::Unchanged => {}
            }
            if !matches!(label, "mode_fixed" | "unchanged") {
                written.push(Written {
                    to: p.to.clone(),
                    owned: p.owner.is_some(),
                    dir,
                    name: name.to_owned(),
                    previous,
                    wrote: contents.to_vec(),
                    backup: backup.clone(),
                });
            }
        }
        files_json.push(file_json(p, label, backup.as_deref()));
        say!(
            "{} {} -> {} (mode {:04o}{})",
            ui.pass(verb),
            p.from.display(),
            p.to.display(),
            p.mode,
            p.owner_label()
        );
        if let Some(numbers) = crl_numbers {
            let verb = if job.dry_run {
                "would replace the CRL"
            } else {
                "replaced the CRL"
            };
            say!("  {verb} {numbers}");
        }
    }
    Ok((files_json, written))
}

/// The daemons `--reload` will tell, found and checked before anything is written.
struct Reloading {
    /// Where the daemons are looked for: found again right before they are told.
    root: PathBuf,
    targets: Vec<reload::Target>,
    /// virt-admin, when a daemon runs.
    program: Option<PathBuf>,
}

/// Checks that `--reload` can do its work, before anything is written: for the system's
/// server files only; every running daemon's configuration names the files a reload reads;
/// virt-admin is there when a daemon runs.
fn plan_reload(args: &InstallArgs, role: Role, user: bool) -> Result<Reloading, CliError> {
    if role != Role::Server {
        return Err(CliError(
            "--reload tells the daemons to reload their server files; a client's files are \
             read afresh at each connection; nothing was installed"
                .into(),
        )
        .with_fix("leave out --reload"));
    }
    if user {
        return Err(CliError(
            "--reload is for the system daemons: a user's own daemons (~/.pki/libvirt) do not \
             listen for TLS, so there is nothing to reload; nothing was installed"
                .into(),
        )
        .with_fix("leave out --reload, or give --system (as root) or --root PATH"));
    }
    let root = reload::root_of(args.root.as_ref());
    // A dry run never connects: under socket activation that starts a stopped daemon.
    let probe = if args.dry_run {
        reload::Probe::Look
    } else {
        reload::Probe::Connect
    };
    let targets = reload::find(&Daemon::ALL, &root, probe);
    let refusals: Vec<String> = targets.iter().filter_map(reload::Target::refusal).collect();
    if !refusals.is_empty() {
        let restart: Vec<String> = targets
            .iter()
            .filter(|t| t.refusal().is_some())
            .map(|t| t.daemon.restart_command())
            .collect();
        return Err(CliError(format!(
            "--reload refused: {}; nothing was installed",
            refusals.join("; ").replace('\n', " ")
        ))
        .with_fix(format!(
            "install without --reload, then restart the daemon: {}",
            restart.join("; ")
        )));
    }
    let program = if targets.iter().any(|t| t.not_running.is_none()) {
        Some(reload::virt_admin("nothing was installed")?)
    } else {
        None
    };
    Ok(Reloading {
        root,
        targets,
        program,
    })
}

/// A file install wrote, and what was there before (`None`: nothing).
pub(crate) struct Written {
    to: PathBuf,
    /// Whether install gave it an owner (running as root): the old owner is given back.
    owned: bool,
    dir: Dir,
    name: std::ffi::OsString,
    previous: Option<ReadFile>,
    /// What install wrote: a file that no longer holds it was changed by someone else since,
    /// and the rollback leaves it.
    wrote: Vec<u8>,
    backup: Option<PathBuf>,
}

/// One file's line of the JSON output.
fn file_json(p: &Planned, action: &str, backup: Option<&Path>) -> serde_json::Value {
    serde_json::json!({
        "file": p.to.display().to_string(),
        "from": p.from.display().to_string(),
        "action": action,
        "mode": format!("{:04o}", p.mode),
        "backup": backup.map(|b| b.display().to_string()),
    })
}

/// Tells the running daemons of `r` to reload; if one refuses, puts `written` back as it was
/// and tells the daemons that did reload to reload again. Returns whether all went well, the
/// lines to say, and the JSON of it.
fn reload_after(
    r: &Reloading,
    written: &[Written],
    dry_run: bool,
    ui: Ui,
) -> (bool, Vec<String>, serde_json::Value) {
    let mut lines = Vec::new();
    let running: Vec<&reload::Target> = r
        .targets
        .iter()
        .filter(|t| t.not_running.is_none())
        .collect();
    if running.is_empty() {
        lines.push(format!(
            "no daemon running: nothing to reload ({})",
            reload::none_running(&r.targets)
                .trim_start_matches("no libvirt daemon is running (")
                .trim_end_matches(')')
        ));
        let value = serde_json::json!({ "daemons": [], "rolled_back": false });
        return (true, lines, value);
    }
    if dry_run {
        // The targets were only looked for (plan_reload): a socket is there, whether anything
        // listens is not known, and not asked.
        for t in &running {
            let socket = t.listening.as_ref().map_or_else(
                || "its admin socket".to_owned(),
                |s| crate::ui::escape(&s.display().to_string()).into_owned(),
            );
            // Its pid file tells that it runs without a connection; else it may.
            let runs = t.pid().map_or_else(
                || "if it runs".to_owned(),
                |pid| format!("(it runs: pid {pid})"),
            );
            lines.push(format!(
                "would reload {} {runs} (virt-admin server-update-tls {}): {socket} is \
                 there; a dry run does not connect to it, since under systemd socket \
                 activation that starts a stopped daemon",
                t.daemon.name(),
                t.daemon.name()
            ));
            if let Some(note) = t.check.as_ref().ok().and_then(|c| c.conf_note()) {
                lines.push(format!("  {}", crate::ui::escape(&note)));
            }
        }
        let names: Vec<&str> = running.iter().map(|t| t.daemon.name()).collect();
        let sockets: Vec<Option<String>> = running
            .iter()
            .map(|t| t.listening.as_ref().map(|s| s.display().to_string()))
            .collect();
        return (
            true,
            lines,
            serde_json::json!({
                "would_reload": names,
                "sockets": sockets,
                "pids": running.iter().map(|t| t.pid()).collect::<Vec<_>>(),
                "connected": false,
            }),
        );
    }
    // Found and checked again now that the files are written: a CRL this run installed, or a
    // configuration changed meanwhile, may make a reload load other files than the daemon
    // uses; such a daemon is refused (and counts as a refusal: the old files go back).
    let names: Vec<Daemon> = running.iter().map(|t| t.daemon).collect();
    let fresh = reload::find(&names, &r.root, reload::Probe::Connect);
    let running: Vec<&reload::Target> = fresh.iter().collect();
    let outcomes: Vec<reload::Outcome> = running
        .iter()
        .map(|t| reload::reload(t, r.program.as_deref()))
        .collect();
    for o in &outcomes {
        lines.extend(o.lines(ui));
    }
    let daemons: Vec<serde_json::Value> = outcomes.iter().map(reload::Outcome::to_json).collect();
    if !outcomes.iter().any(reload::Outcome::failed) {
        let value = serde_json::json!({ "daemons": daemons, "rolled_back": false });
        return (true, lines, value);
    }
    // A daemon refused the new files: the old ones go back, and the daemons that took the new
    // ones take the old ones again.
    lines.push(format!(
        "{} a daemon refused the new files: putting the previous files back",
        ui.fail("rollback:")
    ));
    let mut restored = Vec::new();
    let mut rollback_ok = true;
    for w in written.iter().rev() {
        // A file that no longer holds what install wrote was written by someone else since:
        // theirs is left as it is.
        let changed = match w.dir.read(&w.name, files::MAX_FILE_SIZE) {
            Ok(f) if *f.bytes == *w.wrote => None,
            Ok(_) => {
                Some("changed since it was installed (by someone else?): left as it is".into())
            }
            Err(e) if e.is_not_found() => None,
            Err(e @ ReadError::Io(..)) => Some(format!(
                "cannot be read to compare with what was installed ({e}): left as it is"
            )),
            Err(ReadError::TooLarge(_)) => {
                Some("changed since it was installed (by someone else?): left as it is".into())
            }
        };
        if let Some(why) = changed {
            rollback_ok = false;
            lines.push(format!(
                "  {} {}: {why}",
                ui.fail("not put back:"),
                w.to.display()
            ));
            continue;
        }
        let done = match &w.previous {
            Some(old) => {
                use std::os::unix::fs::MetadataExt;
                let owner = w.owned.then(|| Owner::of(&old.meta));
                files::write_in(
                    &w.dir,
                    &w.name,
                    &old.bytes,
                    old.meta.mode() & 0o7777,
                    owner,
                    Replace::Allowed,
                )
                .map(|()| match &w.backup {
                    Some(b) => format!(
                        "put back {} (as it was, kept also as {})",
                        w.to.display(),
                        b.display()
                    ),
                    None => format!("put back {} (as it was)", w.to.display()),
                })
                .map_err(|e| e.message().to_owned())
            }
            None => w
                .dir
                .remove(&w.name)
                .map(|()| format!("removed {} (it was not there before)", w.to.display()))
                .map_err(|e| format!("{}: cannot remove it: {e}", w.to.display())),
        };
        match done {
            Ok(line) => {
                lines.push(format!("  {line}"));
                restored.push(w.to.display().to_string());
            }
            Err(e) => {
                rollback_ok = false;
                lines.push(format!("  {} {e}", ui.fail("not put back:")));
            }
        }
    }
    let mut again = Vec::new();
    for (t, o) in running.iter().zip(&outcomes) {
        if !o.reloaded {
            continue;
        }
        // Not all the previous files are back: a reload would load a mix of old and new (a
        // certificate with another key, a CA that did not issue it).
        if !rollback_ok {
            lines.push(format!(
                "  {} {} was not told to reload again, as the previous files are not all back: \
                 it keeps the new files; put back the files above by hand (or install again), \
                 then: virtpki reload --daemon {} (or {})",
                ui.fail("attention:"),
                t.daemon.name(),
                t.daemon.name(),
                t.daemon.restart_command()
            ));
            continue;
        }
        let second = reload::reload(t, r.program.as_deref());
        if second.reloaded {
            lines.push(format!(
                "  {} reloaded again: it serves the previous files",
                t.daemon.name()
            ));
        } else {
            lines.push(format!(
                "  {} {} took the new files and did not take the previous ones back: restart \
                 it: {}",
                ui.fail("attention:"),
                t.daemon.name(),
                t.daemon.restart_command()
            ));
            lines.extend(second.lines(ui));
        }
        again.push(second.to_json());
    }
    if rollback_ok {
        lines.push(
            "the previous files are installed again; the new ones were not kept (fix what the \
             daemon said, then install again)"
                .into(),
        );
    }
    let value = serde_json::json!({
        "daemons": daemons,
        "rolled_back": rollback_ok,
        "restored": restored,
        "reloaded_again": again,
    });
    (false, lines, value)
}

/// A directory that is followed by path, below which nothing is: the home directory when root
/// installs for its owner, the `--root` tree.
pub(crate) struct Base {
    pub path: PathBuf,
    /// For `--user` as root: the home's owner, who must own every directory below it that the
    /// files go to, or they could not reach the files given to them.
    pub must_belong_to: Option<Owner>,
}

/// Opens the existing directory `dir` of installed files, to read what is there; `None` when
/// it does not exist yet. Below `base`, each directory is opened relative to its parent and a
/// symbolic link is refused; a directory that does not belong to `base.must_belong_to` is
/// refused with what to do.
fn open_existing(dir: &Path, base: Option<&Base>) -> Result<Option<Dir>, CliError> {
    use std::os::unix::fs::MetadataExt;
    let cannot = |e: std::io::Error| {
        CliError(format!(
            "{}: cannot open: {e}; nothing was installed",
            dir.display()
        ))
    };
    let Some(base) = base.filter(|b| dir.starts_with(&b.path)) else {
        return match Dir::open(dir) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(cannot(e)),
        };
    };
    let below = dir.strip_prefix(&base.path).unwrap_or(dir);
    let opened = Dir::open(&base.path).and_then(|top| {
        top.open_below(below, |d, meta| match base.must_belong_to {
            Some(owner) if owner.uid != meta.uid() => Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "it belongs to user id {}, not to user id {} whose home directory this \
                     is, who could not reach the files installed below it (give it to them \
                     with `chown -R {}:{} {}`, or remove it, and run the command again)",
                    meta.uid(),
                    owner.uid,
                    owner.uid,
                    owner.gid,
                    virtpki::display::shell_path(d.path())
                ),
            )),
            _ => Ok(()),
        })
    });
    match opened {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(cannot(e)),
    }
}

/// The mode of the libvirt directories install makes, as [`file_audit`] holds them to
/// (0700 for the user's, 0755 for the system's).
fn dir_mode(user: bool) -> u32 {
    file_audit::mode_for(FileKind::Dir, !user)
}

/// Opens a source directory the caller named (`--ca-dir`, `--from`), naming the file wanted
/// from it when it cannot be opened.
pub(crate) fn open_source_dir<'a>(dir: &'a Path, first: &str) -> Result<(Dir, &'a Path), CliError> {
    Dir::open(dir).map(|d| (d, dir)).map_err(|e| {
        CliError(format!(
            "{}: cannot open its directory: {e}",
            dir.join(first).display()
        ))
    })
}

/// Reads the source `path`, of type `ty`, through its open directory `dir` with the library's
/// rules (`pem::read_file_in`: not through a link at its name, only a regular file, the size
/// cap, a key closed to others), and for a private key only if it has no other hard link.
pub(crate) fn read_source(dir: &Dir, path: &Path, ty: CertDataType) -> virtpki::Result<ReadFile> {
    use std::os::unix::fs::MetadataExt;
    let read = pem::read_file_in(dir, path.file_name().unwrap_or_default(), ty)?;
    if ty.content() == Content::PrivateKey {
        // Whoever may write the source directory could link in a key only root may read
        // (where fs.protected_hardlinks is 0), for root to install where they can read it.
        if read.meta.nlink() > 1 {
            return Err(virtpki::Error::new(
                virtpki::ErrorKind::InsecurePermissions,
                format!(
                    "{}: the private key file has {} hard links, so it is also another file, \
                     maybe one that must stay where it is; install a copy of it",
                    path.display(),
                    read.meta.nlink()
                ),
            ));
        }
    }
    Ok(read)
}

pub(crate) fn is_not_found(e: &virtpki::Error) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
}

/// Running as root for `--user` (`sudo -E virtpki install --user`): the files are for the
/// owner of the home directory, who must be able to read them, so they are given to that user.
/// `None` when that is root itself.
fn home_owner(env: &Environment) -> Result<Option<Owner>, CliError> {
    let home = env.home.as_ref().ok_or_else(|| {
        CliError("no home directory ($HOME is not set): use --root or --system".into())
    })?;
    let meta = fs::metadata(home).map_err(|e| {
        CliError(format!(
            "{}: cannot find out whose home directory this is: {e}",
            home.display()
        ))
    })?;
    let owner = Owner::of(&meta);
    Ok((owner.uid != 0).then_some(owner))
}

#[derive(Debug)]
enum Action {
    Create,
    Replace,
    /// The installed CRL replaced by a newer one of the same CA (its number and the new one's),
    /// kept as a --force replacement keeps it.
    NewerCrl {
        from: String,
        to: String,
    },
    /// The contents and owner are right, the mode is not; the file as read and compared.
    FixMode(std::fs::Metadata),
    /// The contents are right, the owner is not: a new file replaces it.
    Rewrite,
    Unchanged,
}

impl Action {
    /// Its name in the JSON output.
    fn label(&self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Replace | Action::NewerCrl { .. } => "replaced",
            Action::FixMode(_) => "mode_fixed",
            Action::Rewrite => "rewritten",
            Action::Unchanged => "unchanged",
        }
    }
}

/// Whether the CA files `old` and `new` hold the same CAs: the same set of (subject, public
/// key), whatever the certificates' other contents (a renewal) and how often each appears
/// (a bundle of old and renewed). Trust follows the name and key: a certificate that verifies
/// under one verifies under the other. Anything that does not parse is not the same.
fn same_cas(old: &[u8], new: &[u8]) -> bool {
    use std::collections::BTreeSet;
    let cas = |bytes: &[u8]| -> Option<BTreeSet<(Vec<u8>, Vec<u8>)>> {
        match pem::parse(CertDataType::CaCert, bytes, &virtpki::Source::Data) {
            Ok(Parsed::Certificates(certs)) if !certs.is_empty() => Some(
                certs
                    .iter()
                    .map(|c| (c.subject_raw().to_vec(), c.spki_der().to_vec()))
                    .collect(),
            ),
            _ => None,
        }
    };
    matches!((cas(old), cas(new)), (Some(a), Some(b)) if a == b)
}

/// Whether the installed file has the planned mode (and owner, when planned).
fn has_mode_and_owner(p: &Planned, meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.mode() & 0o7777 == p.mode && p.owner.is_none_or(|o| o == Owner::of(meta))
}

/// Whether the CRL `new` (from `new_path`) may replace the installed `old` (at `installed`)
/// without --force: one list in each, of the same CA, the new one signed by the CA certificate
/// of this install and with a higher number ([`virtpki::Crl::check_update_of`]). Returns the
/// two numbers, or why not.
fn crl_update(
    installed: &Path,
    old: &[u8],
    new_path: &Path,
    new: &[u8],
    ca: Option<(&Path, &[u8])>,
) -> Result<(String, String), String> {
    let one = |bytes: &[u8], path: &Path| -> Result<virtpki::Crl, String> {
        match pem::parse(
            CertDataType::CaCrl,
            bytes,
            &virtpki::Source::File(path.to_owned()),
        ) {
            Ok(Parsed::Crls(mut crls)) if crls.len() == 1 => Ok(crls.remove(0)),
            Ok(Parsed::Crls(crls)) => Err(format!(
                "{} holds {} lists, which install does not compare",
                path.display(),
                crls.len()
            )),
            Ok(_) => Err(format!("{} holds no CRL", path.display())),
            Err(e) => Err(e.to_string()),
        }
    };
    let old = one(old, installed)?;
    let new = one(new, new_path)?;
    let ca = match ca.map(|(path, bytes)| {
        pem::parse(
            CertDataType::CaCert,
            bytes,
            &virtpki::Source::File(path.to_owned()),
        )
    }) {
        Some(Ok(Parsed::Certificates(certs))) => certs,
        _ => Vec::new(),
    };
    // The CA file may hold several CAs: the one whose name the list bears counts.
    let ca = ca
        .iter()
        .find(|c| new.is_signed_by(c))
        .or_else(|| ca.first())
        .ok_or("the CA certificate being installed cannot be read")?;
    new.check_update_of(&old, ca).map_err(|e| e.to_string())?;
    Ok((old.number().to_string(), new.number().to_string()))
}

/// `--from DIR` without the role's certificate but with the other role's: the files of the
/// other role, given the wrong `--role` (a server's files read as a client's would fail later
/// with "cannot open clientcert.pem", which does not say what to do).
fn other_role_files(role: Role, from: &Path) -> Result<(), CliError> {
    let other = match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let name = |r: Role| format!("{}cert.pem", r.name());
    if from.join(name(role)).exists() || !from.join(name(other)).exists() {
        return Ok(());
    }
    Err(CliError(format!(
        "{} holds {} but no {}: these are a {other_name}'s files, not a {role_name}'s; \
         nothing was installed (to install them, give --role {other_name}; for a \
         {role_name}, issue its own certificate: virtpki issue {role_name})",
        from.display(),
        name(other),
        name(role),
        other_name = other.name(),
        role_name = role.name(),
    )))
}

/// What to do with `from`'s certificate for `role` that is really an `other`'s: give
/// `--role other` only where that role's file is in `from` (that role reads its own name,
/// not this one); otherwise re-issue, or rename the pair for the other role.
fn other_role_hint(other: Role, role: Role, from: &Path) -> String {
    let (o, r) = (other.name(), role.name());
    if from.join(format!("{o}cert.pem")).exists() {
        return format!(" (it is a {o} certificate: give --role {o})");
    }
    let path = |name: String| virtpki::display::shell_path(&from.join(name));
    format!(
        " (it is a {o} certificate under a {r}'s name: for a {r}, issue its own certificate \
         with virtpki issue {r}; if it is meant for the {o}, rename it and its key: mv {} {}; \
         mv {} {}; then give --role {o})",
        path(format!("{r}cert.pem")),
        path(format!("{o}cert.pem")),
        path(format!("{r}key.pem")),
        path(format!("{o}key.pem")),
    )
}

/// The files must load and pass libvirt's checks before they are put where libvirt reads them.
/// Returns the warnings (each without its "warning: ", which the caller prints): libvirt loads
/// such files, but says something about them.
///
/// A certificate whose purpose (extended key usage) does not allow `role` is refused here
/// although libvirt only warns when the extension is not critical: it cannot do the role's
/// job (the peers that check the purpose refuse it), and it is nearly always the other role's
/// certificate installed by mistake. `force` installs it anyway, with the warning.
///
/// `key_sealed`: the role's key is not among `sources` because it is encrypted for a reader
/// that has its passphrase (QEMU with a libvirt secret): the certificate is checked without
/// it, and only the finding that its key is not loaded is left out.
pub(crate) fn check_sources(
    role: Role,
    from: &Path,
    sources: &[(CertDataType, PathBuf, ReadFile)],
    force: bool,
    key_sealed: bool,
) -> Result<Vec<String>, CliError> {
    use std::os::unix::fs::MetadataExt;
    let ctx = Context::new(ContextFlags::default());
    for (ty, path, read) in sources {
        ctx.add_file_data(*ty, path, &read.bytes, read.meta.mode() & 0o7777)?;
    }
    let mut report = ctx.check(role);
    if key_sealed {
        report.findings.retain(|f| {
            !(f.rule == virtpki::Rule::Missing && f.kind == virtpki::ErrorKind::InvalidArg)
        });
    }
    let creds = ctx.credentials();
    let cert = creds.identity(role).certificate();
    let forbidden = cert
        .and_then(|c| c.extended_key_usage())
        .filter(|eku| !eku.allows(role));
    if let (Some(cert), Some(eku)) = (cert, forbidden) {
        let mut allowed: Vec<&str> = Vec::new();
        if eku.server_auth {
            allowed.push("a TLS server (serverAuth)");
        }
        if eku.client_auth {
            allowed.push("a TLS client (clientAuth)");
        }
        allowed.extend(eku.others.iter().map(String::as_str));
        let allowed = if allowed.is_empty() {
            "nothing".to_owned()
        } else {
            allowed.join(", ")
        };
        let other = match role {
            Role::Client if eku.server_auth => other_role_hint(Role::Server, role, from),
            Role::Server if eku.client_auth => other_role_hint(Role::Client, role, from),
            _ => String::new(),
        };
        // libvirt refuses a critical extension itself: --force cannot make that work.
        let force_hint = if eku.critical {
            "; the extension is critical, so libvirt refuses it too"
        } else if force {
            ""
        } else {
            "; give --force to install it anyway (libvirt loads it with a warning)"
        };
        if eku.critical || !force {
            return Err(CliError(format!(
                "{}: its purpose allows use as {allowed}, not as a TLS {role}{other}; \
                 nothing was installed{force_hint}",
                cert.source(),
                role = role.name(),
            )));
        }
    }
    if !report.is_ok() {
        // One line (the message is escaped whole): the findings one after another.
        let text = report.to_text();
        let findings: Vec<&str> = text.lines().map(str::trim).collect();
        return Err(CliError(format!(
            "these files fail libvirt's checks, so libvirt would refuse them; nothing was \
             installed: {}",
            findings.join("; ")
        )));
    }
    Ok(report.warnings().map(|w| w.detail()).collect())
}
