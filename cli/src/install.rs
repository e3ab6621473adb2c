//! `virtpki install`: a CA certificate (and CRL), a certificate and its key, copied to where
//! libvirt reads them, with the owners and modes virt-pki-validate expects.
//!
//! System set (root): /etc/pki/CA/cacert.pem and cacrl.pem 0644, /etc/pki/libvirt/ROLEcert.pem
//! 0644, /etc/pki/libvirt/private/ROLEkey.pem 0600, directories 0755, all root:root.
//! User set: ~/.pki/libvirt (0700) with every file 0600. The files are checked with libvirt's
//! load-time rules first; nothing is written when they fail or when an existing different
//! file would be replaced without --force (with --force the old file is kept as FILE.bak-TIME).
//! An installed file with the right contents but another mode or owner is given the right ones.
//!
//! Each source is read once, through one descriptor that is not a symbolic link, and those
//! bytes are checked and written. The targets are read, replaced, backed up and repaired
//! through their directory's descriptor, never following a link at their names. Run as root
//! for `--user` (`sudo -E`), the files and directories are given to the home directory's owner.

use std::fs;
use std::path::PathBuf;

use virtpki::fsutil::{self, Dir, Follow, Owner, ReadError, ReadFile};
use virtpki::locations::{self, Environment};
use virtpki::{pem, CertDataType, Context, ContextFlags, Role};

use crate::files::{self, Replace};
use crate::ui::{CliError, CmdResult, Status, Ui};

/// Which role's files to install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Client,
    Server,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Client => Role::Client,
            RoleArg::Server => Role::Server,
        }
    }
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").args(["system", "user", "root"])))]
pub struct InstallArgs {
    /// Install the client's files (virsh, remote clients) or the daemon's.
    #[arg(long, value_enum)]
    pub role: RoleArg,
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
    /// Replace existing different files (each is kept as FILE.bak-TIME).
    #[arg(long)]
    pub force: bool,
    /// Say what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One file to install.
struct Planned {
    ty: CertDataType,
    from: PathBuf,
    to: PathBuf,
    mode: u32,
    /// Whom to give it (and the directories made for it) to: root:root for the system
    /// locations when running as root, the home directory's owner for `--user` as root.
    owner: Option<Owner>,
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
    let role = args.role.role();
    let env = Environment::current();
    let candidates = [
        (CertDataType::CaCert, args.ca_dir.join("cacert.pem")),
        (CertDataType::CaCrl, args.ca_dir.join("cacrl.pem")),
        (
            role.cert_type(),
            args.from.join(format!("{}cert.pem", role.name())),
        ),
        (
            role.key_type(),
            args.from.join(format!("{}key.pem", role.name())),
        ),
    ];
    // Each source is opened once, not through a link, and the bytes checked are the bytes
    // written: a file swapped after the check cannot be what gets installed.
    let mut sources = Vec::new();
    for (ty, path) in candidates {
        match pem::read_file_as(&path, ty, Follow::No) {
            Ok(read) => sources.push((ty, path, read)),
            Err(e) if ty == CertDataType::CaCrl && is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let warnings = check_sources(role, &sources)?;
    for warning in &warnings {
        println!("{} {warning}", ui.warn("warning:"));
    }
    let user = args.user || (!args.system && args.root.is_none() && env.uid != 0);
    let as_root = env.uid == 0;
    let user_owner = if user && as_root {
        home_owner(&env)?
    } else {
        None
    };
    let mut plan = Vec::new();
    for (ty, from, read) in sources {
        let (to, mode, owner) = if user {
            let dir = env.user_dir().ok_or_else(|| {
                CliError("no home directory ($HOME is not set): use --root or --system".into())
            })?;
            (
                dir.join(locations::libvirt_file_name(ty)),
                0o600,
                user_owner,
            )
        } else {
            let root = Environment {
                root: args.root.clone().unwrap_or_else(|| PathBuf::from("/")),
                home: None,
                uid: 0,
            };
            let key = matches!(ty, CertDataType::ClientKey | CertDataType::ServerKey);
            (
                root.system_file(ty),
                if key { 0o600 } else { 0o644 },
                as_root.then_some(Owner::ROOT),
            )
        };
        plan.push((
            Planned {
                ty,
                from,
                to,
                mode,
                owner,
            },
            read.bytes,
        ));
    }
    // Decide everything before writing anything. An installed file is read through its
    // directory, never through a link planted at its name.
    let mut actions = Vec::new();
    for (p, new) in &plan {
        let (dir, name) = files::split(&p.to)?;
        let opened = match (user_owner, &env.home) {
            // Another user's directories, walked without following links (as when writing).
            (Some(_), Some(home)) if dir.starts_with(home) => {
                Dir::open_below(home, dir.strip_prefix(home).unwrap_or(&dir))
            }
            _ => Dir::open(&dir),
        };
        let existing = match opened {
            Ok(d) => match d.read(name, files::MAX_FILE_SIZE) {
                Ok(old) => Some(old),
                Err(e) if e.is_not_found() => None,
                Err(ReadError::Io(_, e)) => {
                    return Err(CliError(format!(
                        "{}: cannot read the installed file: {e}; nothing was installed",
                        p.to.display()
                    )))
                }
                Err(ReadError::TooLarge(n)) => {
                    return Err(CliError(format!(
                        "{}: the installed file is {n} bytes, too large to compare; nothing \
                         was installed",
                        p.to.display()
                    )))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(CliError(format!(
                    "{}: cannot open its directory: {e}",
                    p.to.display()
                )))
            }
        };
        let action = match existing {
            Some(old) if *old.bytes == **new && has_mode_and_owner(p, &old.meta) => {
                Action::Unchanged
            }
            // The right contents with the wrong mode or owner: libvirt's rules are about both.
            Some(old) if *old.bytes == **new => Action::FixMode(old.meta),
            Some(_) if !args.force => {
                return Err(CliError(format!(
                    "{}: exists with other contents; nothing was installed (give --force to \
                     replace it; the old file is kept as {}.bak-TIME)",
                    p.to.display(),
                    p.to.display()
                )))
            }
            Some(_) => Action::Replace,
            None => Action::Create,
        };
        actions.push(action);
    }
    if args.dry_run {
        let mut shown = Vec::new();
        for (p, _) in &plan {
            let (existing, missing) = fsutil::existing_and_missing(p.to.parent().unwrap_or(&p.to));
            let mut dir = existing;
            for c in missing.components() {
                dir.push(c);
                if !shown.contains(&dir) {
                    println!(
                        "would create {} (mode {:04o})",
                        dir.display(),
                        dir_mode(user)
                    );
                    shown.push(dir.clone());
                }
            }
        }
    }
    for ((p, contents), action) in plan.iter().zip(actions) {
        let verb = match (&action, args.dry_run) {
            (Action::Unchanged, _) => {
                println!("{} {}", ui.dim("unchanged"), p.to.display());
                continue;
            }
            (Action::Create, true) => "would install",
            (Action::Replace, true) => "would replace",
            (Action::FixMode(_), true) => "would fix the mode of",
            (Action::Create, false) => "installed",
            (Action::Replace, false) => "replaced",
            (Action::FixMode(_), false) => "fixed the mode of",
        };
        if !args.dry_run {
            let (dir, name) = files::split(&p.to)?;
            let dir = match (user_owner, &env.home) {
                // Root writing into another user's home: every directory below the home is
                // theirs, so none of them is followed if it is a link.
                (Some(_), Some(home)) if dir.starts_with(home) => {
                    let below = dir.strip_prefix(home).unwrap_or(&dir);
                    fsutil::make_dirs(home, below, dir_mode(user), p.owner).map_err(|e| {
                        CliError(format!("{}: cannot create directory: {e}", dir.display()))
                    })?
                }
                _ => files::create_dir_owned(&dir, dir_mode(user), p.owner)?,
            };
            match action {
                Action::Create => {
                    files::write_in(&dir, name, contents, p.mode, p.owner, Replace::Never)?
                }
                Action::Replace => {
                    let (kept, count) = files::keep_copy_in(&dir, name)?;
                    let what = if p.ty.content() == pem::Content::PrivateKey {
                        "copies of this private key"
                    } else {
                        "old copies"
                    };
                    println!(
                        "{} {} ({count} {what} kept in {}: remove the ones no longer needed)",
                        ui.dim("kept the old file as"),
                        kept.display(),
                        dir.path().display()
                    );
                    files::write_in(&dir, name, contents, p.mode, p.owner, Replace::Allowed)?;
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
        }
        println!(
            "{} {} -> {} (mode {:04o}{})",
            ui.pass(verb),
            p.from.display(),
            p.to.display(),
            p.mode,
            p.owner_label()
        );
    }
    let scope = if user {
        "--user".to_owned()
    } else if let Some(root) = &args.root {
        format!("--root {}", root.display())
    } else {
        "--system".to_owned()
    };
    if !args.dry_run {
        println!("\nNext: virtpki validate {scope} {}", role.name());
    }
    Ok(Status::Ok)
}

/// libvirt's directories: 0700 for the user's, 0755 for the system's.
fn dir_mode(user: bool) -> u32 {
    if user {
        0o700
    } else {
        0o755
    }
}

fn is_not_found(e: &virtpki::Error) -> bool {
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
    /// The contents are right, the mode or owner is not; the file as read and compared.
    FixMode(std::fs::Metadata),
    Unchanged,
}

/// Whether the installed file has the planned mode (and owner, when planned).
fn has_mode_and_owner(p: &Planned, meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.mode() & 0o7777 == p.mode && p.owner.is_none_or(|o| o == Owner::of(meta))
}

/// The files must load and pass libvirt's checks before they are put where libvirt reads them.
/// Returns the warnings: libvirt loads such files, but says something about them.
fn check_sources(
    role: Role,
    sources: &[(CertDataType, PathBuf, ReadFile)],
) -> Result<Vec<String>, CliError> {
    use std::os::unix::fs::MetadataExt;
    let ctx = Context::new(ContextFlags::default());
    for (ty, path, read) in sources {
        ctx.add_file_data(*ty, path, &read.bytes, read.meta.mode() & 0o7777)?;
    }
    let report = ctx.check(role);
    if !report.is_ok() {
        return Err(CliError(format!(
            "these files fail libvirt's checks, so libvirt would refuse them; nothing was \
             installed:\n{}",
            report.to_text()
        )));
    }
    Ok(report.warnings().map(|w| w.to_string()).collect())
}
