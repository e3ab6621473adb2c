//! Owners and modes of libvirt's credential files and directories, held to
//! virt-pki-validate's expectations.
//!
//! virt-pki-validate wants system files root-owned (directories 0755, certificates 0644,
//! keys 0600) and a user's files that user's alone (directory 0700, files 0600), and fails on
//! any other mode. Here a deviation that is no risk only warns: a key readable by its group
//! (libvirt's QEMU setups use `root:qemu 0640`), a certificate readable by fewer users. What is
//! a risk is an error: another owner, anything writable by other users, a key readable by
//! other users (virtpki refuses to load it).
//!
//! [`audit`] is pure, so that every rule is testable without root: it takes what the file is,
//! whose set it belongs to and the file's [`FileStat`]. [`audit_path`] stats a path and calls it.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::data_type::CertDataType;
use crate::role::Role;
use crate::severity::Severity;

/// What a file is, since each kind has its own mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A directory holding credentials.
    Dir,
    /// Certificates, CA certificates, CRLs: not secret.
    Public,
    /// The private key of a role; the role matters for the system client key, which
    /// virt-pki-validate wants world-readable.
    Key(Role),
}

impl FileKind {
    /// The kind of a credential file of type `ty`.
    pub fn of(ty: CertDataType) -> FileKind {
        match ty {
            CertDataType::ServerKey => FileKind::Key(Role::Server),
            CertDataType::ClientKey => FileKind::Key(Role::Client),
            _ => FileKind::Public,
        }
    }

    fn is_key(self) -> bool {
        matches!(self, FileKind::Key(_))
    }
}

/// Whose set of files a file belongs to, which fixes its expected owner and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSet {
    /// The system files: root's, readable by every user (clients fall back to them).
    System,
    /// One user's files (`~/.pki/libvirt`, a pkipath directory): that user's alone.
    User {
        /// The user expected to own the files.
        uid: u32,
        /// The group a `chown` fix gives them.
        gid: u32,
    },
}

impl FileSet {
    /// The owner the files should have, as `chown` takes it: `root:root` or `UID:GID`.
    pub fn owner_label(self) -> String {
        match self {
            FileSet::System => "root:root".to_owned(),
            FileSet::User { uid, gid } => format!("{uid}:{gid}"),
        }
    }

    fn owner_uid(self) -> u32 {
        match self {
            FileSet::System => 0,
            FileSet::User { uid, .. } => uid,
        }
    }

    fn is_system(self) -> bool {
        self == FileSet::System
    }
}

/// The mode virt-pki-validate asks for a file of `kind` in `set`.
pub fn ideal_mode(kind: FileKind, set: FileSet) -> u32 {
    mode_for(kind, set.is_system())
}

/// [`ideal_mode`] in the system set (`system`) or in any user's: the mode for whoever makes
/// the files and directories (`virtpki install`, a suggested `mkdir`), so that they pass the
/// audit by construction.
pub fn mode_for(kind: FileKind, system: bool) -> u32 {
    match (kind, system) {
        (FileKind::Dir, true) => 0o755,
        (FileKind::Dir, false) => 0o700,
        (FileKind::Public, true) => 0o644,
        (FileKind::Public, false) | (FileKind::Key(_), _) => 0o600,
    }
}

/// The facts of a file the rules look at: given as values, so that the rules can be run on
/// any owner and mode without creating such a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// The owning user.
    pub uid: u32,
    /// The owning group.
    pub gid: u32,
    /// The permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Whether it is a directory (the rules for directories differ).
    pub is_dir: bool,
}

impl FileStat {
    /// The owner, group, permission bits and type of `meta`.
    pub fn from_metadata(meta: &Metadata) -> FileStat {
        FileStat {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
            is_dir: meta.is_dir(),
        }
    }
}

/// What is wrong with a file's owner or mode, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFinding {
    /// An error is a risk (or a wrong file type); a warning a deviation from
    /// virt-pki-validate's exact expectation that is not.
    pub severity: Severity,
    /// What is wrong, naming the file.
    pub message: String,
    /// A command or step that fixes it.
    pub fix: String,
}

impl FileFinding {
    fn error(message: String, fix: String) -> Option<FileFinding> {
        Some(FileFinding {
            severity: Severity::Error,
            message,
            fix,
        })
    }

    fn warning(message: String, fix: String) -> Option<FileFinding> {
        Some(FileFinding {
            severity: Severity::Warning,
            message,
            fix,
        })
    }
}

/// The worst problem of `stat` for a file of `kind` in `set`, or `None` when its owner and
/// mode are as they should be; `path` only names the file in the message and fix.
pub fn audit(path: &Path, kind: FileKind, set: FileSet, stat: &FileStat) -> Option<FileFinding> {
    let p = path.display();
    // The path as one word of the suggested commands: a file name may hold `; touch pwned`.
    let word = crate::display::shell_path(path);
    let mode = stat.mode;
    let ideal = ideal_mode(kind, set);
    let chmod = format!("chmod {ideal:04o} {word}");
    let system = set.is_system();
    if kind == FileKind::Dir && !stat.is_dir {
        return FileFinding::error(
            format!("{p} is not a directory"),
            format!("remove it and create the directory: mkdir -m {ideal:04o} {word}"),
        );
    }
    if stat.uid != set.owner_uid() {
        let whom = if system { "root" } else { "this user" };
        return FileFinding::error(
            format!("{p} belongs to uid {}, not to {whom}", stat.uid),
            format!("chown {} {word}", set.owner_label()),
        );
    }
    if mode & 0o022 != 0 {
        return FileFinding::error(
            format!("{p} is writable by other users (mode {mode:04o}): they can replace it"),
            chmod,
        );
    }
    if kind.is_key() && mode & 0o007 != 0 {
        let note = if system && kind == FileKind::Key(Role::Client) {
            " (virt-pki-validate asks for 0644 on the system client key; that exposes it \
             to every user)"
        } else {
            ""
        };
        return FileFinding::error(
            format!(
                "the private key {p} is readable by other users (mode {mode:04o}); virtpki \
                 refuses to load it{note}"
            ),
            chmod,
        );
    }
    if kind.is_key() && mode & 0o070 != 0 {
        return FileFinding::warning(
            format!(
                "the private key {p} is readable by its group (mode {mode:04o}, gid {})",
                stat.gid
            ),
            format!(
                "fine when the group is a service group such as qemu (libvirt's QEMU TLS \
                 setups use root:qemu 0640); otherwise {chmod}"
            ),
        );
    }
    if system && !kind.is_key() && stat.gid != 0 {
        return FileFinding::warning(
            format!("{p} has group {} rather than root", stat.gid),
            format!("chown {} {word}", set.owner_label()),
        );
    }
    if mode != ideal {
        let why = match (kind, system) {
            (FileKind::Dir | FileKind::Public, true)
                if mode & 0o005 != 0o005 && mode & 0o004 == 0 =>
            {
                "non-root clients, which fall back to the system files, cannot read it"
            }
            (_, true) => "virt-pki-validate expects exactly this mode",
            (_, false) => "virt-pki-validate expects exactly this mode; only you need it",
        };
        return FileFinding::warning(
            format!("{p} has mode {mode:04o}, not {ideal:04o}: {why}"),
            chmod,
        );
    }
    None
}

/// [`audit`] of the file at `path` (symbolic links followed, as libvirt opens them), with the
/// facts it looked at.
pub fn audit_path(
    path: &Path,
    kind: FileKind,
    set: FileSet,
) -> io::Result<(FileStat, Option<FileFinding>)> {
    let meta = std::fs::metadata(path)?;
    let stat = FileStat::from_metadata(&meta);
    let finding = not_a_file(path, kind, &meta).or_else(|| audit(path, kind, set, &stat));
    Ok((stat, finding))
}

/// A socket, FIFO, device or directory where a credential file belongs: nothing can load it,
/// so its owner and mode are beside the point (an error naming what it is). `None` for a
/// regular file, and for [`FileKind::Dir`], whose own rule says "not a directory".
fn not_a_file(path: &Path, kind: FileKind, meta: &Metadata) -> Option<FileFinding> {
    if kind == FileKind::Dir || meta.is_file() {
        return None;
    }
    FileFinding::error(
        format!(
            "{} is {}, not a regular file: a credential file must be one (libvirt and QEMU \
             cannot load it)",
            path.display(),
            crate::fsutil::kind_of(meta)
        ),
        format!(
            "remove {} and put the file there (virtpki install)",
            crate::display::shell_path(path)
        ),
    )
}

/// The user and groups a QEMU process runs with (qemu.conf's `user`, its `group` and the
/// user's other groups, which libvirt gives QEMU too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuIds {
    /// The user id.
    pub uid: u32,
    /// The group of qemu.conf, which install gives the files to.
    pub gid: u32,
    /// Every group QEMU has (`gid` included).
    pub groups: Vec<u32>,
    /// `user:group` as qemu.conf names them, for messages.
    pub label: String,
}

/// The mode `virtpki install --qemu` gives a file of `kind` in a QEMU directory, owned by
/// `root:<qemu group>`: directory 0750 (QEMU's group may enter, nobody else), certificates
/// and CRLs 0644, keys 0440 (root and QEMU's group read, nobody writes).
pub fn qemu_mode(kind: FileKind) -> u32 {
    match kind {
        FileKind::Dir => 0o750,
        FileKind::Public => 0o644,
        FileKind::Key(_) => 0o440,
    }
}

/// What QEMU (running as `qemu`) can do with a file: read it (or, for a directory, enter it).
fn qemu_can(stat: &FileStat, qemu: &QemuIds) -> bool {
    let want = if stat.is_dir { 0o1 } else { 0o4 };
    let bits = if qemu.uid == 0 {
        return true;
    } else if stat.uid == qemu.uid {
        stat.mode >> 6
    } else if qemu.groups.contains(&stat.gid) {
        stat.mode >> 3
    } else {
        stat.mode
    };
    bits & want != 0
}

/// Whether QEMU (not root) can replace a file: it owns it (and so may change its mode), or
/// its mode lets QEMU's groups write (everyone writing is its own, worse, finding).
fn qemu_can_write(stat: &FileStat, qemu: &QemuIds) -> bool {
    stat.uid == qemu.uid || (qemu.groups.contains(&stat.gid) && stat.mode & 0o020 != 0)
}

/// The worst problem of `stat` for a file of `kind` in a QEMU directory: QEMU must read it
/// (enter the directory), nobody else may read a key, nobody but root and QEMU may replace
/// anything. Modes other than [`qemu_mode`] that meet this are fine (a key `qemu:qemu 0400`,
/// certificates 0444).
pub fn audit_qemu(
    path: &Path,
    kind: FileKind,
    qemu: &QemuIds,
    stat: &FileStat,
) -> Option<FileFinding> {
    let p = path.display();
    let word = crate::display::shell_path(path);
    let mode = stat.mode;
    let ideal = qemu_mode(kind);
    let chown = format!("chown root:{} {word}", qemu.gid);
    let chmod = format!("chmod {ideal:04o} {word}");
    if kind == FileKind::Dir && !stat.is_dir {
        return FileFinding::error(
            format!("{p} is not a directory"),
            format!("remove it and create the directory: mkdir -m {ideal:04o} {word}; {chown}"),
        );
    }
    if stat.uid != 0 && stat.uid != qemu.uid {
        return FileFinding::error(
            format!(
                "{p} belongs to uid {}, neither root nor QEMU's user ({})",
                stat.uid, qemu.label
            ),
            format!("{chown}; {chmod}"),
        );
    }
    // What QEMU trusts must not be QEMU's to replace: through its directory it could swap
    // any file, and a CA, CRL or certificate of its own choosing holds for every domain of
    // the host. Its own key may be its own (QEMU's documentation: the user's, 0400 or 0600).
    if qemu.uid != 0 && !kind.is_key() && mode & 0o002 == 0 && qemu_can_write(stat, qemu) {
        return FileFinding::error(
            format!(
                "QEMU can replace {p} (it runs as {}; owner {}:{}, mode {mode:04o}): a \
                 compromised QEMU could put its own CA, an older CRL or another certificate \
                 in place for every domain of this host",
                qemu.label, stat.uid, stat.gid
            ),
            format!("{chown}; {chmod}"),
        );
    }
    let group_ok = stat.gid == 0 || qemu.groups.contains(&stat.gid);
    if mode & 0o002 != 0 || (mode & 0o020 != 0 && !group_ok) {
        return FileFinding::error(
            format!("{p} is writable by other users (mode {mode:04o}): they can replace it"),
            format!("{chown}; {chmod}"),
        );
    }
    if kind.is_key() && mode & 0o004 != 0 {
        return FileFinding::error(
            format!("the private key {p} is readable by every user (mode {mode:04o})"),
            format!("{chown}; {chmod}"),
        );
    }
    if kind.is_key() && mode & 0o040 != 0 && !group_ok {
        return FileFinding::error(
            format!(
                "the private key {p} is readable by group {}, which is not QEMU's ({})",
                stat.gid, qemu.label
            ),
            format!("{chown}; {chmod}"),
        );
    }
    if !qemu_can(stat, qemu) {
        let what = if stat.is_dir {
            format!(
                "QEMU (running as {}) cannot enter {p} (owner {}:{}, mode {mode:04o}): it \
                 fails with \"Unable to access credentials {p}/ca-cert.pem: Permission denied\"",
                qemu.label, stat.uid, stat.gid
            )
        } else {
            format!(
                "QEMU (running as {}) cannot read {p} (owner {}:{}, mode {mode:04o}): it fails \
                 with \"Cannot load certificate ... Error while reading file\" (QEMU >= 10.2: \
                 \"Unable to access credentials {p}: Permission denied\")",
                qemu.label, stat.uid, stat.gid
            )
        };
        return FileFinding::error(what, format!("{chown}; {chmod}"));
    }
    if kind == FileKind::Dir && mode & 0o005 != 0 {
        return FileFinding::warning(
            format!(
                "{p} can be entered by every user (mode {mode:04o}): the key's own mode is \
                 all that keeps it from them"
            ),
            format!("{chown}; {chmod}"),
        );
    }
    None
}

/// [`audit_qemu`] of the file at `path` (links followed, as QEMU opens them).
pub fn audit_qemu_path(
    path: &Path,
    kind: FileKind,
    qemu: &QemuIds,
) -> io::Result<(FileStat, Option<FileFinding>)> {
    let meta = std::fs::metadata(path)?;
    let stat = FileStat::from_metadata(&meta);
    let finding = not_a_file(path, kind, &meta).or_else(|| audit_qemu(path, kind, qemu, &stat));
    Ok((stat, finding))
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: FileSet = FileSet::User {
        uid: 1000,
        gid: 1000,
    };
    const SERVER_KEY: FileKind = FileKind::Key(Role::Server);
    const CLIENT_KEY: FileKind = FileKind::Key(Role::Client);

    fn file(uid: u32, gid: u32, mode: u32) -> FileStat {
        FileStat {
            uid,
            gid,
            mode,
            is_dir: false,
        }
    }

    fn dir(uid: u32, gid: u32, mode: u32) -> FileStat {
        FileStat {
            is_dir: true,
            ..file(uid, gid, mode)
        }
    }

    fn run(kind: FileKind, set: FileSet, stat: FileStat) -> Option<FileFinding> {
        audit(Path::new("/p"), kind, set, &stat)
    }

    fn severity(kind: FileKind, set: FileSet, stat: FileStat) -> Option<Severity> {
        run(kind, set, stat).map(|f| f.severity)
    }

    #[test]
    fn virt_pki_validate_modes_pass() {
        let sys = FileSet::System;
        assert_eq!(run(FileKind::Dir, sys, dir(0, 0, 0o755)), None);
        assert_eq!(run(FileKind::Public, sys, file(0, 0, 0o644)), None);
        assert_eq!(run(SERVER_KEY, sys, file(0, 0, 0o600)), None);
        assert_eq!(run(CLIENT_KEY, sys, file(0, 0, 0o600)), None);
        assert_eq!(run(FileKind::Dir, USER, dir(1000, 1000, 0o700)), None);
        assert_eq!(run(FileKind::Public, USER, file(1000, 1000, 0o600)), None);
        assert_eq!(run(CLIENT_KEY, USER, file(1000, 1000, 0o600)), None);
    }

    #[test]
    fn ideal_modes() {
        assert_eq!(ideal_mode(FileKind::Dir, FileSet::System), 0o755);
        assert_eq!(ideal_mode(FileKind::Public, FileSet::System), 0o644);
        assert_eq!(ideal_mode(SERVER_KEY, FileSet::System), 0o600);
        assert_eq!(ideal_mode(FileKind::Dir, USER), 0o700);
        assert_eq!(ideal_mode(FileKind::Public, USER), 0o600);
        assert_eq!(FileKind::of(CertDataType::ClientKey), CLIENT_KEY);
        for kind in [FileKind::Dir, FileKind::Public, SERVER_KEY, CLIENT_KEY] {
            assert_eq!(mode_for(kind, true), ideal_mode(kind, FileSet::System));
            assert_eq!(mode_for(kind, false), ideal_mode(kind, USER));
        }
        assert_eq!(FileKind::of(CertDataType::CaCrl), FileKind::Public);
    }

    #[test]
    fn a_file_where_a_directory_belongs_fails() {
        let f = run(FileKind::Dir, FileSet::System, file(0, 0, 0o755)).unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.message, "/p is not a directory");
        assert_eq!(
            f.fix,
            "remove it and create the directory: mkdir -m 0755 /p"
        );
    }

    #[test]
    fn another_owner_fails() {
        let f = run(FileKind::Public, FileSet::System, file(1234, 0, 0o644)).unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.message, "/p belongs to uid 1234, not to root");
        assert_eq!(f.fix, "chown root:root /p");
        let f = run(FileKind::Public, USER, file(0, 0, 0o600)).unwrap();
        assert_eq!(f.message, "/p belongs to uid 0, not to this user");
        assert_eq!(f.fix, "chown 1000:1000 /p");
    }

    #[test]
    fn writable_by_others_fails() {
        for mode in [0o775, 0o757, 0o777] {
            let f = run(FileKind::Dir, FileSet::System, dir(0, 0, mode)).unwrap();
            assert_eq!(f.severity, Severity::Error, "{mode:o}");
            assert!(
                f.message.contains("writable by other users"),
                "{}",
                f.message
            );
            assert_eq!(f.fix, "chmod 0755 /p");
        }
        assert_eq!(
            severity(FileKind::Public, USER, file(1000, 1000, 0o620)),
            Some(Severity::Error)
        );
    }

    #[test]
    fn keys_readable_by_others_fail() {
        let f = run(SERVER_KEY, FileSet::System, file(0, 0, 0o604)).unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.message.ends_with("virtpki refuses to load it"),
            "{}",
            f.message
        );
        assert_eq!(f.fix, "chmod 0600 /p");
        // The system client key gets a word on virt-pki-validate's 0644.
        let f = run(CLIENT_KEY, FileSet::System, file(0, 0, 0o644)).unwrap();
        assert!(f.message.contains("asks for 0644"), "{}", f.message);
        let f = run(CLIENT_KEY, USER, file(1000, 1000, 0o644)).unwrap();
        assert!(!f.message.contains("asks for 0644"), "{}", f.message);
    }

    #[test]
    fn group_readable_keys_warn() {
        let f = run(SERVER_KEY, FileSet::System, file(0, 107, 0o640)).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.message,
            "the private key /p is readable by its group (mode 0640, gid 107)"
        );
        assert!(f.fix.ends_with("otherwise chmod 0600 /p"), "{}", f.fix);
    }

    #[test]
    fn a_system_file_of_another_group_warns() {
        let f = run(FileKind::Public, FileSet::System, file(0, 1234, 0o644)).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.message, "/p has group 1234 rather than root");
        assert_eq!(f.fix, "chown root:root /p");
        // A key's group is its readers' business, a user's group the user's.
        assert_eq!(run(SERVER_KEY, FileSet::System, file(0, 1234, 0o600)), None);
        assert_eq!(run(FileKind::Public, USER, file(1000, 5, 0o600)), None);
    }

    #[test]
    fn other_modes_warn_with_the_reason() {
        let f = run(FileKind::Public, FileSet::System, file(0, 0, 0o600)).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.message,
            "/p has mode 0600, not 0644: non-root clients, which fall back to the system \
             files, cannot read it"
        );
        let f = run(FileKind::Dir, FileSet::System, dir(0, 0, 0o711)).unwrap();
        assert!(f.message.ends_with("cannot read it"), "{}", f.message);
        let f = run(FileKind::Public, FileSet::System, file(0, 0, 0o444)).unwrap();
        assert!(
            f.message
                .ends_with(": virt-pki-validate expects exactly this mode"),
            "{}",
            f.message
        );
        let f = run(SERVER_KEY, FileSet::System, file(0, 0, 0o400)).unwrap();
        assert!(
            f.message.ends_with("expects exactly this mode"),
            "{}",
            f.message
        );
        let f = run(FileKind::Dir, USER, dir(1000, 1000, 0o755)).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.message.ends_with("only you need it"), "{}", f.message);
    }

    #[test]
    fn the_worst_problem_is_reported() {
        // Another owner and writable by others: the owner comes first.
        let f = run(FileKind::Public, FileSet::System, file(1, 1, 0o666)).unwrap();
        assert!(f.message.contains("belongs to uid 1"), "{}", f.message);
        // Writable and group-readable key: the failure, not the warning.
        assert_eq!(
            severity(SERVER_KEY, FileSet::System, file(0, 0, 0o660)),
            Some(Severity::Error)
        );
    }

    #[test]
    fn audit_path_stats_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (stat, finding) =
            audit_path(&path, FileKind::Public, FileSet::User { uid, gid }).unwrap();
        assert_eq!(stat.mode, 0o640);
        assert!(!stat.is_dir);
        assert_eq!(finding.unwrap().severity, Severity::Warning);
        assert!(audit_path(&dir.path().join("none"), FileKind::Public, FileSet::System).is_err());
    }
}
