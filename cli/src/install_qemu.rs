//! `virtpki install --qemu`: the CA, CRL, certificate and key with QEMU's names in the
//! directory qemu.conf gives a subsystem, written by install's own machinery
//! ([`crate::install::apply`]: the same checks first, atomic writes, backups, no link
//! followed below --root).
//!
//! Names: ca-cert.pem, ca-crl.pem (server roles only: QEMU's clients never read it),
//! server-cert.pem/server-key.pem, client-cert.pem/client-key.pem; `--role both` writes both
//! pairs (migration: each host is the destination of some migrations and the source of
//! others). Owners and modes are [`virtpki::file_audit::qemu_mode`]'s: the directory
//! `root:<qemu group>` 0750, certificates 0644, keys `root:<qemu group>` 0440, so that QEMU (which
//! libvirt runs as qemu.conf's `user` and `group`) reads its key and nobody else does.
//! `validate --qemu` checks exactly that ([`virtpki::file_audit::audit_qemu`]).
//!
//! `--reload`: QEMU loads a `tls-creds-x509` object once, when a domain starts, a device is
//! hot-plugged or a migration or backup begins; nothing reloads it. So there is nothing to
//! tell: new domains, migrations and backups take the new files; running domains keep the
//! old credentials until restarted or migrated. Said, exit 0.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use virtpki::daemon_conf::qemu::{self, Account, QemuConf, QemuRole, Subsystem};
use virtpki::daemon_conf::rerooted;
use virtpki::file_audit::{self, FileKind};
use virtpki::fsutil::Owner;
use virtpki::{CertDataType, Role};

use crate::install::{self, Base, InstallArgs, Job, Planned, RoleArg, SubsystemArg};
use crate::ui::{CliError, CmdResult, Status, Ui};

impl SubsystemArg {
    fn subsystem(self) -> Subsystem {
        match self {
            SubsystemArg::Default => Subsystem::Default,
            SubsystemArg::Vnc => Subsystem::Vnc,
            SubsystemArg::Spice => Subsystem::Spice,
            SubsystemArg::Chardev => Subsystem::Chardev,
            SubsystemArg::Migrate => Subsystem::Migrate,
            SubsystemArg::Nbd => Subsystem::Nbd,
            SubsystemArg::Backup => Subsystem::Backup,
        }
    }
}

/// qemu.conf: `--qemu-conf`, else ROOT/etc/libvirt/qemu.conf when it exists, else libvirt's
/// built-in defaults. Shared with `validate --qemu`.
pub(crate) fn read_conf(given: Option<&Path>, root: &Path) -> Result<QemuConf, CliError> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let p = rerooted(root, Path::new("/etc/libvirt/qemu.conf"));
            if !p.exists() {
                return Ok(QemuConf::empty());
            }
            p
        }
    };
    QemuConf::read_file(&path).map_err(|e| CliError(format!("{}; nothing was done", e.message())))
}

/// Where `account` comes from, for messages: qemu.conf's line, or libvirt's default.
fn account_origin(conf: &QemuConf, key: &str, a: &Account) -> String {
    match a.line {
        Some(line) => format!("{key} = \"{}\" at {}", a.name, conf.location(line)),
        None => format!(
            "{key} \"{}\", libvirt's default (Debian's build) as qemu.conf sets none",
            a.name
        ),
    }
}

/// Where QEMU's user and group are looked up: this machine (getpwnam, ...), or, under a
/// --root that has them, that tree's own etc/passwd and etc/group (an image's accounts are not
/// the host's).
pub(crate) enum Accounts {
    Host,
    Files { passwd: String, group: String },
}

impl Accounts {
    /// The accounts of `root`: its etc/passwd and etc/group when it is not `/` and has them.
    pub(crate) fn of(root: &Path) -> Accounts {
        if root == Path::new("/") {
            return Accounts::Host;
        }
        // Read as every file virtpki trusts is: a FIFO there must not block the command.
        let read = |name: &str| {
            let path = root.join("etc").join(name);
            let read = virtpki::fsutil::read_regular(
                &path,
                virtpki::fsutil::Follow::Yes,
                crate::files::MAX_FILE_SIZE,
            );
            read.ok()
                .and_then(|r| String::from_utf8(r.bytes.to_vec()).ok())
        };
        match (read("passwd"), read("group")) {
            (Some(passwd), Some(group)) => Accounts::Files { passwd, group },
            _ => Accounts::Host,
        }
    }

    /// Where, for messages.
    fn what(&self) -> &'static str {
        match self {
            Accounts::Host => "on this system",
            Accounts::Files { .. } => "in the root's etc/passwd and etc/group",
        }
    }

    /// The uid and primary gid of the user `name`.
    fn user(&self, name: &str) -> Option<(u32, u32)> {
        match self {
            Accounts::Host => lookup_user(name),
            Accounts::Files { passwd, .. } => fields(passwd)
                .find(|f| f[0] == name)
                .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))),
        }
    }

    /// The name and primary gid of the user `uid`.
    fn user_of_uid(&self, uid: u32) -> Option<(String, u32)> {
        match self {
            Accounts::Host => user_of_uid(uid),
            Accounts::Files { passwd, .. } => fields(passwd)
                .find(|f| f.get(2).and_then(|u| u.parse().ok()) == Some(uid))
                .and_then(|f| Some((f[0].to_owned(), f.get(3)?.parse().ok()?))),
        }
    }

    /// The gid of the group `name`.
    fn group(&self, name: &str) -> Option<u32> {
        match self {
            Accounts::Host => lookup_group(name),
            Accounts::Files { group, .. } => fields(group)
                .find(|f| f[0] == name)
                .and_then(|f| f.get(2)?.parse().ok()),
        }
    }

    /// The groups of the user `name` whose primary group is `gid` (getgrouplist).
    fn groups_of(&self, name: &str, gid: u32) -> Vec<u32> {
        match self {
            Accounts::Host => CString::new(name)
                .map(|c| supplementary_groups(&c, gid))
                .unwrap_or_default(),
            Accounts::Files { group, .. } => std::iter::once(gid)
                .chain(
                    fields(group)
                        .filter(|f| f.get(3).is_some_and(|m| m.split(',').any(|m| m == name)))
                        .filter_map(|f| f.get(2)?.parse().ok()),
                )
                .collect(),
        }
    }
}

/// The colon-separated fields of each line of a passwd or group file.
fn fields(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// The uid of qemu.conf's `user` and the gid of its `group` (names first, then numbers; a
/// leading `+` forces a number, as libvirt reads them), and every group the user has, from
/// the accounts of `root` ([`Accounts::of`]).
pub(crate) fn qemu_ids(conf: &QemuConf, root: &Path) -> Result<file_audit::QemuIds, CliError> {
    let accounts = Accounts::of(root);
    let (user, group) = (conf.user(), conf.group());
    let unknown = |key: &str, a: &Account, what: &str| {
        CliError(format!(
            "QEMU's {what} is unknown {}: {}; nothing was done",
            accounts.what(),
            account_origin(conf, key, a)
        ))
        .with_fix(format!(
            "install libvirt's QEMU driver (it creates the {what}), or set `{key}` in qemu.conf \
             (--qemu-conf FILE) to the {what} QEMU runs as"
        ))
    };
    let (uid, primary) = match user.forced_id() {
        Some(id) => (id, None),
        None => accounts
            .user(&user.name)
            .map(|(uid, gid)| (uid, Some(gid)))
            .or_else(|| user.name.parse().ok().map(|id| (id, None)))
            .ok_or_else(|| unknown("user", &user, "user"))?,
    };
    let gid = match group.forced_id() {
        Some(id) => id,
        None => accounts
            .group(&group.name)
            .or_else(|| group.name.parse().ok())
            .ok_or_else(|| unknown("group", &group, "group"))?,
    };
    let mut groups = vec![gid];
    groups.extend(primary);
    // libvirt finds the user's groups by uid (virGetGroupList), so a user given by number
    // (`+N`, or a number that is no name) has them too.
    if let Some((name, primary)) = accounts.user_of_uid(uid) {
        groups.push(primary);
        groups.extend(accounts.groups_of(&name, primary));
    }
    groups.sort_unstable();
    groups.dedup();
    Ok(file_audit::QemuIds {
        uid,
        gid,
        groups,
        label: format!("{}:{}", user.name, group.name),
    })
}

/// getpwnam: the uid and primary gid of `name`.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid C string; the result is read at once, before any other call that
    // may reuse its static storage.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null, as getpwnam returned it.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some((uid, gid))
}

/// getpwuid: the name and primary gid of `uid`.
fn user_of_uid(uid: u32) -> Option<(String, u32)> {
    // SAFETY: getpwuid has no preconditions; the result is copied at once, before any other
    // call that may reuse its static storage.
    let pw = unsafe { libc::getpwuid(uid) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null; pw_name is a NUL-terminated string owned by libc.
    let (name, gid) = unsafe { (std::ffi::CStr::from_ptr((*pw).pw_name), (*pw).pw_gid) };
    Some((name.to_string_lossy().into_owned(), gid))
}

/// getgrnam: the gid of `name`.
fn lookup_group(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: as in lookup_user.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        return None;
    }
    // SAFETY: gr is non-null.
    Some(unsafe { (*gr).gr_gid })
}

/// getgrouplist: the groups `user` has besides `gid` (libvirt gives them to QEMU too).
fn supplementary_groups(user: &CString, gid: u32) -> Vec<u32> {
    let mut room: libc::c_int = 64;
    // A user in more groups: glibc says how many in `n`; asked again with that room.
    for _ in 0..4 {
        let mut groups = vec![0 as libc::gid_t; usize::try_from(room).unwrap_or(0)];
        let mut n = room;
        // SAFETY: groups has room for n entries; getgrouplist writes at most n and sets n.
        let r = unsafe { libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if r >= 0 {
            groups.truncate(usize::try_from(n).unwrap_or(0));
            return groups;
        }
        room = n.max(room.saturating_mul(2));
    }
    Vec::new()
}

/// The roles to install: `--role`, else the subsystem's (facts of libvirt's call sites).
fn roles_of(arg: Option<RoleArg>, sub: Subsystem) -> Result<Vec<Role>, CliError> {
    if let Some(r) = arg {
        return Ok(r.roles());
    }
    match sub.qemu_role() {
        QemuRole::Server => Ok(vec![Role::Server]),
        QemuRole::Client => Ok(vec![Role::Client]),
        QemuRole::Both => Ok(vec![Role::Server, Role::Client]),
        QemuRole::Either => Err(CliError(format!(
            "--subsystem {sub}: QEMU is the server (chardev mode='bind', VNC, ...) or the client \
             (mode='connect', NBD disks) of this directory depending on the domains; say which; \
             nothing was installed"
        ))
        .with_fix("give --role server, --role client or --role both")),
    }
}

pub fn run(args: InstallArgs, ui: Ui) -> CmdResult {
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
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let conf = read_conf(args.qemu_conf.as_deref(), &root)?;
    let sub = args.subsystem.unwrap_or(SubsystemArg::Default).subsystem();
    let roles = roles_of(args.role, sub)?;
    let resolved = conf.dir(sub, &root);
    let dir = resolved.dir.clone();
    for e in conf.errors() {
        say!(
            "{} {} (libvirt's QEMU driver refuses it)",
            ui.warn("warning:"),
            e.message
        );
    }
    for e in conf.relative_dirs().into_iter().chain(conf.repeated()) {
        say!("{} {}", ui.warn("warning:"), e.message);
    }
    for k in conf.unknown_keys() {
        if let Some(meant) = k.meant {
            say!(
                "{} {}: libvirt ignores `{}`; did you mean `{meant}`?",
                ui.warn("warning:"),
                conf.location(k.line),
                k.name
            );
        }
    }
    let ids = qemu_ids(&conf, &root)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let as_root = unsafe { libc::geteuid() } == 0;
    let owner = as_root.then_some(Owner {
        uid: 0,
        gid: ids.gid,
    });
    let server = roles.contains(&Role::Server);
    let ca_dir = install::open_source_dir(&args.ca_dir, "cacert.pem")?;
    let mut sources = Vec::new();
    let mut ca_sources = Vec::new();
    for (ty, name, to) in [
        (CertDataType::CaCert, "cacert.pem", "ca-cert.pem"),
        (CertDataType::CaCrl, "cacrl.pem", "ca-crl.pem"),
    ] {
        let path = args.ca_dir.join(name);
        if ty == CertDataType::CaCrl && !server {
            if path.exists() {
                say!(
                    "note: {} is not installed: QEMU reads ca-crl.pem only as a server, and this \
                     directory is a client's",
                    path.display()
                );
            }
            continue;
        }
        match install::read_source(&ca_dir.0, &path, ty) {
            Ok(read) => ca_sources.push((ty, path, read, to.to_owned())),
            Err(e) if ty == CertDataType::CaCrl && install::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let from_dir = install::open_source_dir(&args.from, "servercert.pem")?;
    let mut warnings = Vec::new();
    // Encrypted keys installed for QEMU to decrypt, each said.
    let mut sealed_keys = Vec::new();
    for &role in &roles {
        let mut pair = Vec::new();
        for (ty, name) in [
            (role.cert_type(), format!("{}cert.pem", role.name())),
            (role.key_type(), format!("{}key.pem", role.name())),
        ] {
            let path = args.from.join(&name);
            let read = install::read_source(&from_dir.0, &path, ty).map_err(|e| {
                let both = if roles.len() == 2 {
                    " (--role both installs the server's and the client's pair: issue both \
                     into this directory)"
                } else {
                    ""
                };
                CliError(format!("{}{both}", e.message()))
            })?;
            let to = format!(
                "{}-{}.pem",
                role.name(),
                if ty == role.cert_type() {
                    "cert"
                } else {
                    "key"
                }
            );
            pair.push((ty, path, read, to));
        }
        // An encrypted key: QEMU decrypts it with the libvirt secret qemu.conf names for the
        // subsystem (passwordid=), and fails without one. With one, it is installed as it is
        // and the certificate checked without it (virtpki has no passphrase).
        let key = &pair[1];
        let sealed = qemu::is_encrypted_pkcs8(&key.2.bytes);
        // The markers without a key QEMU could decrypt inside: said as such where a secret
        // would otherwise let it in as it is (the key check's "decrypt it" misses the point).
        let marked = !sealed && {
            const MARKER: &[u8] = b"-----BEGIN ENCRYPTED PRIVATE KEY";
            key.2.bytes.windows(MARKER.len()).any(|w| w == MARKER)
        };
        if let (true, Some(uuid)) = (marked, conf.secret_uuid(sub)) {
            return Err(CliError(format!(
                "{}: the private key is marked ENCRYPTED PRIVATE KEY but is not one encrypted \
                 PKCS#8 key (an EncryptedPrivateKeyInfo under a PKCS#5 or PKCS#12 password \
                 scheme, alone in the file), so QEMU could not decrypt it with libvirt secret {} \
                 ({}); nothing was installed",
                key.1.display(),
                uuid.value,
                conf.location(uuid.line)
            ))
            .with_file(&key.1)
            .with_fix(
                "export the key again: openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out NEWKEY",
            ));
        }
        if sealed {
            let Some(uuid) = conf.secret_uuid(sub) else {
                return Err(CliError(format!(
                    "{}: the private key is encrypted, and qemu.conf names no libvirt secret for \
                     {sub} ({}), so QEMU could not open it (\"Decryption has failed\"); nothing \
                     was installed",
                    key.1.display(),
                    match conf.secret_settings(sub).as_slice() {
                        [] => "SPICE has no such setting".to_owned(),
                        [one] => format!("{one} is not set"),
                        keys => format!("neither {} is set", keys.join(" nor ")),
                    }
                ))
                .with_file(&key.1)
                .with_fix(secret_fix(&conf.secret_settings(sub))));
            };
            sealed_keys.push(format!(
                "{} is encrypted: it goes in as it is; QEMU decrypts it with libvirt secret {} \
                 ({}); virtpki cannot open it, so it checked neither the key nor that it \
                 matches {}: make sure the secret holds its passphrase (virsh \
                 secret-get-value {})",
                key.1.display(),
                uuid.value,
                conf.location(uuid.line),
                pair[0].1.display(),
                uuid.value
            ));
        }
        // Each role's pair is checked with the CA (and CRL), as QEMU's endpoint loads them.
        let checked: Vec<_> = ca_sources
            .iter()
            .map(|(ty, p, r, _)| (*ty, p.clone(), clone_read(r)))
            .chain(
                pair.iter()
                    .filter(|(ty, ..)| !(sealed && *ty == role.key_type()))
                    .map(|(ty, p, r, _)| (*ty, p.clone(), clone_read(r))),
            )
            .collect();
        warnings.extend(install::check_sources(
            role, &args.from, &checked, args.force, sealed,
        )?);
        warnings.extend(qemu_warnings(role, &checked));
        sources.extend(pair);
    }
    for w in &warnings {
        say!("{} {w}", ui.warn("warning:"));
    }
    let mut plan = Vec::new();
    for (ty, from, read, name) in ca_sources.into_iter().chain(sources) {
        plan.push((
            Planned {
                ty,
                from,
                to: dir.join(name),
                mode: file_audit::qemu_mode(FileKind::of(ty)),
                owner,
            },
            read,
        ));
    }
    let base = args.root.as_ref().map(|r| Base {
        path: r.clone(),
        must_belong_to: None,
    });
    say!(
        "QEMU {sub} directory: {} ({}); QEMU runs as {}",
        dir.display(),
        resolved.why(),
        ids.label
    );
    // The directories above QEMU's (/etc/pki) are everyone's: 0755 and root's, as libvirt's
    // own; only QEMU's directory is closed to all but its group.
    if !args.dry_run {
        if let Some(parent) = dir.parent() {
            let root_owner = as_root.then_some(Owner::ROOT);
            match &base {
                Some(b) if parent.starts_with(&b.path) => {
                    let below = parent.strip_prefix(&b.path).unwrap_or(parent);
                    let top = crate::files::create_dir_owned(&b.path, 0o755, root_owner)?;
                    virtpki::fsutil::make_dirs_in(top, below, 0o755, root_owner).map_err(|e| {
                        CliError(format!(
                            "{}: cannot create directory: {e}",
                            parent.display()
                        ))
                    })?;
                }
                _ => {
                    crate::files::create_dir_owned(parent, 0o755, root_owner)?;
                }
            }
        }
    }
    // Numbered identities already there stay: QEMU >= 10.2 loads them next to the new pair.
    for role in &roles {
        let left: Vec<String> = (0..virtpki::locations::QEMU_NUMBERED_IDENTITIES)
            .map(|n| format!("{}-cert-{n}.pem", role.name()))
            .filter(|name| dir.join(name).exists())
            .collect();
        if !left.is_empty() {
            say!(
                "{} {} holds {}: QEMU >= 10.2 loads them too, next to the {} pair installed \
                 now; remove them (and their keys) if they are not meant to be served",
                ui.warn("warning:"),
                dir.display(),
                left.join(", "),
                role.name()
            );
        }
    }
    // An existing directory keeps its owner and mode: one QEMU may write lets QEMU replace
    // the CA installed into it (validate --qemu fails it); said before writing.
    if let Ok((_, Some(f))) = file_audit::audit_qemu_path(&dir, FileKind::Dir, &ids) {
        say!("{} {}; fix: {}", ui.warn("warning:"), f.message, f.fix);
    }
    let job = Job {
        plan: &plan,
        base,
        dir_mode: file_audit::qemu_mode(FileKind::Dir),
        parents_mode: Some(0o755),
        force: args.force,
        dry_run: args.dry_run,
        rotating: Vec::new(),
        reloading: false,
        json,
    };
    let (files_json, _written) = install::apply(&job, ui)?;
    let host_dir = match dir.strip_prefix(&root) {
        Ok(rel) => Path::new("/").join(rel),
        Err(_) => dir.clone(),
    };
    let mut notes = Vec::new();
    if !qemu::apparmor_allows(&host_dir) {
        notes.push(format!(
            "AppArmor: Debian's profile for QEMU does not cover {}: {}",
            host_dir.display(),
            qemu::apparmor_fix(&host_dir)
        ));
    }
    if sub == Subsystem::Migrate || roles.len() == 2 {
        notes.push(
            "migration: install the same way on every host (each is the source of some \
             migrations and the destination of others), and make each server certificate name \
             every address peers migrate to it by (migration_host, the host name)"
                .into(),
        );
    }
    let reload_text = "QEMU loads its TLS credentials when a domain starts, a device is \
                       hot-plugged or a migration or backup begins: new ones take the new files; \
                       running domains keep the old credentials until restarted or migrated; \
                       there is nothing to reload";
    if args.reload {
        notes.push(format!("--reload: {reload_text}"));
    }
    // An encrypted key is installed unchecked (against its certificate too): a warning, not a
    // note, in words; among the notes in JSON.
    for k in &sealed_keys {
        say!("{} {k}", ui.warn("warning:"));
    }
    for n in &notes {
        say!("note: {n}");
    }
    notes.extend(sealed_keys);
    if !args.dry_run {
        let mut next = String::from("virtpki validate --qemu");
        if let Some(r) = &args.root {
            next.push_str(&format!(" --root {}", virtpki::display::shell_path(r)));
        }
        if let Some(c) = &args.qemu_conf {
            next.push_str(&format!(" --qemu-conf {}", virtpki::display::shell_path(c)));
        }
        say!("\nNext: {next}");
    }
    if json {
        let changed = files_json.iter().any(|f| f["action"] != "unchanged");
        let role = match roles.as_slice() {
            [r] => r.name(),
            _ => "both",
        };
        crate::ui::print_json(&serde_json::json!({
            "role": role,
            "dry_run": args.dry_run,
            "changed": changed,
            "files": files_json,
            "qemu": {
                "subsystem": sub.name(),
                "dir": dir.display().to_string(),
                "why": resolved.why(),
                "user": conf.user().name,
                "group": conf.group().name,
                "owner": owner.map(|o| format!("{}:{}", o.uid, o.gid)),
                "notes": notes,
            },
            "reload": if args.reload { serde_json::json!({ "qemu": reload_text }) } else { serde_json::Value::Null },
            "ok": true,
        }));
    }
    Ok(Status::Ok)
}

/// A copy of a read source, for the check (the plan keeps the original).
fn clone_read(r: &virtpki::fsutil::ReadFile) -> virtpki::fsutil::ReadFile {
    virtpki::fsutil::ReadFile {
        bytes: r.bytes.clone(),
        meta: r.meta.clone(),
    }
}

/// What QEMU's own check says of files libvirt's rules accept: the findings where a QEMU
/// version refuses what libvirt 9 accepts (a chain in the certificate file up to 10.1, ...).
fn qemu_warnings(
    role: Role,
    sources: &[(CertDataType, PathBuf, virtpki::fsutil::ReadFile)],
) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let ctx = virtpki::Context::new(virtpki::ContextFlags::NO_SANITY);
    for (ty, path, read) in sources {
        if ctx
            .add_file_data(*ty, path, &read.bytes, read.meta.mode() & 0o7777)
            .is_err()
        {
            return Vec::new();
        }
    }
    virtpki::sanity::check_qemu(&ctx.credentials(), role, virtpki::timefmt::now(), 0)
        .into_iter()
        .filter_map(|f| {
            f.qemu
                .map(|q| format!("[{}] {}; qemu: {q}", f.finding.rule, f.finding.message))
        })
        .collect()
}

/// What to do about an encrypted key no secret applies to: decrypt it, or set one of
/// `settings` (QEMU then decrypts it). Shared with `validate --qemu`.
pub(crate) fn secret_fix(settings: &[String]) -> String {
    match settings {
        [] => "decrypt it (openssl pkey -in KEY -out NEWKEY, mode 0600): spice-server reads \
               keys unencrypted only"
            .to_owned(),
        _ => format!(
            "decrypt it (openssl pkey -in KEY -out NEWKEY, mode 0600), or set {} in qemu.conf to \
             the UUID of a libvirt secret holding its passphrase (QEMU then decrypts it)",
            settings.join(" or ")
        ),
    }
}
