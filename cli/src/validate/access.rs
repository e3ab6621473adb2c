//! Owners and modes of the credential files and their directories (see the module docs of
//! `validate` for which deviations fail and which only warn).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{Scope, State, Validator};

/// What kind of file an owner and mode check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    /// Certificates, CA certificates, CRLs: not secret.
    Public,
    Key,
}

impl Kind {
    /// The mode virt-pki-validate asks for: system files are root's and readable by every
    /// user (clients fall back to them), a user's files are for that user alone.
    fn ideal_mode(self, system: bool) -> u32 {
        match (self, system) {
            (Kind::Dir, true) => 0o755,
            (Kind::Dir, false) => 0o700,
            (Kind::Public, true) => 0o644,
            (Kind::Public, false) | (Kind::Key, _) => 0o600,
        }
    }
}

/// What is wrong with an owner or a mode, and what to do.
struct Problem {
    state: State,
    message: String,
    fix: String,
}

impl Problem {
    fn fail(message: String, fix: String) -> Option<Problem> {
        Some(Problem {
            state: State::Fail,
            message,
            fix,
        })
    }

    fn warn(message: String, fix: String) -> Option<Problem> {
        Some(Problem {
            state: State::Warn,
            message,
            fix,
        })
    }
}

impl Validator {
    /// Owner and mode of `path` against the rules of its kind; `system` for the root-owned,
    /// world-readable rules of system files rather than a user's own.
    pub(super) fn access(
        &mut self,
        scope: Scope,
        what: &str,
        path: &Path,
        kind: Kind,
        system: bool,
    ) {
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
        let owner_name = if system {
            "root:root".to_owned()
        } else {
            format!("{}:{}", self.uid, self.gid)
        };
        match self.access_problem(scope, path, &meta, kind, system, &owner_name) {
            None => self.pass(
                scope,
                name,
                Some(path),
                format!(
                    "{}: owner {owner_name}, mode {:04o}",
                    path.display(),
                    meta.mode() & 0o7777
                ),
            ),
            Some(p) => self.push(scope, name, p.state, Some(path), p.message, Some(p.fix)),
        }
    }

    /// The first problem of `path`'s owner and mode, worst first.
    fn access_problem(
        &self,
        scope: Scope,
        path: &Path,
        meta: &Metadata,
        kind: Kind,
        system: bool,
        owner_name: &str,
    ) -> Option<Problem> {
        let p = path.display();
        let mode = meta.mode() & 0o7777;
        let ideal = kind.ideal_mode(system);
        let chmod = format!("chmod {ideal:04o} {p}");
        let owner = meta.uid();
        let want_owner = if system { 0 } else { self.uid };
        if kind == Kind::Dir && !meta.is_dir() {
            return Problem::fail(
                format!("{p} is not a directory"),
                format!("remove it and create the directory: mkdir -m {ideal:04o} {p}"),
            );
        }
        if owner != want_owner {
            let whom = if system { "root" } else { "this user" };
            return Problem::fail(
                format!("{p} belongs to uid {owner}, not to {whom}"),
                format!("chown {owner_name} {p}"),
            );
        }
        if mode & 0o022 != 0 {
            return Problem::fail(
                format!("{p} is writable by other users (mode {mode:04o}): they can replace it"),
                chmod,
            );
        }
        if kind == Kind::Key && mode & 0o007 != 0 {
            let note = if system && scope == Scope::Client {
                " (virt-pki-validate asks for 0644 on the system client key; that exposes it \
                 to every user)"
            } else {
                ""
            };
            return Problem::fail(
                format!(
                    "the private key {p} is readable by other users (mode {mode:04o}); virtpki \
                     refuses to load it{note}"
                ),
                chmod,
            );
        }
        if kind == Kind::Key && mode & 0o070 != 0 {
            return Problem::warn(
                format!(
                    "the private key {p} is readable by its group (mode {mode:04o}, gid {})",
                    meta.gid()
                ),
                format!(
                    "fine when the group is a service group such as qemu (libvirt's QEMU TLS \
                     setups use root:qemu 0640); otherwise {chmod}"
                ),
            );
        }
        if system && kind != Kind::Key && meta.gid() != 0 {
            return Problem::warn(
                format!("{p} has group {} rather than root", meta.gid()),
                format!("chown {owner_name} {p}"),
            );
        }
        if mode != ideal {
            let why = match (kind, system) {
                (Kind::Dir, true) | (Kind::Public, true)
                    if mode & 0o005 != 0o005 && mode & 0o004 == 0 =>
                {
                    "non-root clients, which fall back to the system files, cannot read it"
                }
                (_, true) => "virt-pki-validate expects exactly this mode",
                (_, false) => "virt-pki-validate expects exactly this mode; only you need it",
            };
            return Problem::warn(
                format!("{p} has mode {mode:04o}, not {ideal:04o}: {why}"),
                chmod,
            );
        }
        None
    }
}
