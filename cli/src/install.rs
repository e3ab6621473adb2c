//! `virtpki install`: a CA certificate (and CRL), a certificate and its key, copied to where
//! libvirt reads them, with the owners and modes virt-pki-validate expects.
//!
//! System set (root): /etc/pki/CA/cacert.pem and cacrl.pem 0644, /etc/pki/libvirt/ROLEcert.pem
//! 0644, /etc/pki/libvirt/private/ROLEkey.pem 0600, directories 0755, all root:root.
//! User set: ~/.pki/libvirt (0700) with every file 0600. The files are checked with libvirt's
//! load-time rules first; nothing is written when they fail or when an existing different
//! file would be replaced without --force (with --force the old file is kept as FILE.bak-TIME).
//! An installed file with the right contents but another mode or owner is given the right ones.

use std::fs;
use std::path::{Path, PathBuf};

use virtpki::locations::{self, Environment};
use virtpki::{CertDataType, Context, ContextFlags, Role};

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
    from: PathBuf,
    to: PathBuf,
    mode: u32,
    /// Whether to give it to root:root (system locations, when running as root).
    chown_root: bool,
}

pub fn run(args: InstallArgs, ui: Ui) -> CmdResult {
    let role = args.role.role();
    let env = Environment::current();
    let sources = [
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
    let warnings = check_sources(role, &sources)?;
    for warning in &warnings {
        println!("{} {warning}", ui.warn("warning:"));
    }
    let user = args.user || (!args.system && args.root.is_none() && env.uid != 0);
    let as_root = env.uid == 0;
    let mut plan = Vec::new();
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    for (ty, from) in sources {
        if ty == CertDataType::CaCrl && !from.exists() {
            continue;
        }
        let (to, mode) = if user {
            let dir = env.user_dir().ok_or_else(|| {
                CliError("no home directory ($HOME is not set): use --root or --system".into())
            })?;
            if !dirs.iter().any(|(d, _)| d == &dir) {
                dirs.push((dir.clone(), 0o700));
            }
            (dir.join(locations::libvirt_file_name(ty)), 0o600)
        } else {
            let root = Environment {
                root: args.root.clone().unwrap_or_else(|| PathBuf::from("/")),
                home: None,
                uid: 0,
            };
            let to = root.system_file(ty);
            for dir in to.ancestors().skip(1) {
                if dir == root.root || !dir.starts_with(&root.root) {
                    break;
                }
                if !dirs.iter().any(|(d, _)| d == dir) {
                    dirs.push((dir.to_owned(), 0o755));
                }
            }
            let key = matches!(ty, CertDataType::ClientKey | CertDataType::ServerKey);
            (to, if key { 0o600 } else { 0o644 })
        };
        plan.push(Planned {
            from,
            to,
            mode,
            chown_root: !user && as_root,
        });
    }
    // Decide everything before writing anything.
    let mut actions = Vec::new();
    for p in &plan {
        let new = fs::read(&p.from)
            .map_err(|e| CliError(format!("{}: cannot read: {e}", p.from.display())))?;
        let action = match fs::read(&p.to) {
            Ok(old) if old == new && has_mode_and_owner(p) => Action::Unchanged,
            // The right contents with the wrong mode or owner: libvirt's rules are about both.
            Ok(old) if old == new => Action::FixMode,
            Ok(_) if !args.force => {
                return Err(CliError(format!(
                    "{}: exists with other contents; nothing was installed (give --force to \
                     replace it; the old file is kept as {}.bak-TIME)",
                    p.to.display(),
                    p.to.display()
                )))
            }
            Ok(_) => Action::Replace,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Action::Create,
            Err(e) => return Err(CliError(format!("{}: cannot read: {e}", p.to.display()))),
        };
        actions.push((action, new));
    }
    dirs.sort_by_key(|(d, _)| d.components().count());
    if args.dry_run {
        for (dir, mode) in &dirs {
            if !dir.exists() {
                println!("would create {} (mode {mode:04o})", dir.display());
            }
        }
    }
    for (dir, mode) in &dirs {
        if !args.dry_run && !dir.exists() {
            files::create_dir(dir, *mode)?;
            if plan.iter().any(|p| p.chown_root) {
                chown_root(dir)?;
            }
        }
    }
    for (p, (action, contents)) in plan.iter().zip(actions) {
        let verb = match (action, args.dry_run) {
            (Action::Unchanged, _) => {
                println!("{} {}", ui.dim("unchanged"), p.to.display());
                continue;
            }
            (Action::Create, true) => "would install",
            (Action::Replace, true) => "would replace",
            (Action::FixMode, true) => "would fix the mode of",
            (Action::Create, false) => "installed",
            (Action::Replace, false) => "replaced",
            (Action::FixMode, false) => "fixed the mode of",
        };
        if !args.dry_run {
            match action {
                Action::Create => files::write_atomic(&p.to, &contents, p.mode, Replace::Never)?,
                Action::Replace => {
                    let kept = files::keep_copy(&p.to)?;
                    println!("{} {}", ui.dim("kept the old file as"), kept.display());
                    files::write_atomic(&p.to, &contents, p.mode, Replace::Allowed)?;
                }
                Action::FixMode => {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(&p.to, fs::Permissions::from_mode(p.mode)).map_err(
                        |e| CliError(format!("{}: cannot set its mode: {e}", p.to.display())),
                    )?;
                }
                Action::Unchanged => {}
            }
            if p.chown_root {
                chown_root(&p.to)?;
            }
        }
        println!(
            "{} {} -> {} (mode {:04o}{})",
            ui.pass(verb),
            p.from.display(),
            p.to.display(),
            p.mode,
            if p.chown_root { ", root:root" } else { "" }
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Create,
    Replace,
    /// The contents are right, the mode or owner is not.
    FixMode,
    Unchanged,
}

/// Whether the installed file has the planned mode (and owner root:root, when planned).
fn has_mode_and_owner(p: &Planned) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(&p.to).is_ok_and(|m| {
        m.mode() & 0o7777 == p.mode && (!p.chown_root || (m.uid() == 0 && m.gid() == 0))
    })
}

/// The files must load and pass libvirt's checks before they are put where libvirt reads them.
/// Returns the warnings: libvirt loads such files, but says something about them.
fn check_sources(role: Role, sources: &[(CertDataType, PathBuf)]) -> Result<Vec<String>, CliError> {
    let ctx = Context::new(ContextFlags::default());
    for (ty, path) in sources {
        if *ty == CertDataType::CaCrl && !path.exists() {
            continue;
        }
        ctx.add_file(*ty, path)?;
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

fn chown_root(path: &Path) -> Result<(), CliError> {
    std::os::unix::fs::chown(path, Some(0), Some(0)).map_err(|e| {
        CliError(format!(
            "{}: cannot give it to root:root: {e}",
            path.display()
        ))
    })
}
