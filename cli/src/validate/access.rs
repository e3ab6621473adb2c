//! Owners and modes of the credential files and their directories: the rules are the
//! library's [`virtpki::file_audit`]; this file turns its answer into a report line.

use std::path::Path;

use virtpki::file_audit::{self, FileKind, FileSet};

use super::files::Item;
use super::{Scope, State, Validator};

impl Validator {
    /// Whose files `system` means: root's, or those of the user running the check.
    fn file_set(&self, system: bool) -> FileSet {
        if system {
            FileSet::System
        } else {
            FileSet::User {
                uid: self.uid,
                gid: self.gid,
            }
        }
    }

    /// Owner and mode of `path` against the rules of its kind; `system` for the root-owned,
    /// world-readable rules of system files rather than a user's own.
    pub(super) fn access(
        &mut self,
        scope: Scope,
        what: Item,
        path: &Path,
        kind: FileKind,
        system: bool,
    ) {
        let name = format!("Checking {} access", what.what);
        let id = format!("{}_mode", what.key);
        let set = self.file_set(system);
        match file_audit::audit_path(path, kind, set) {
            Err(e) => self.push_id(
                scope,
                &id,
                name,
                State::Fail,
                Some(path),
                format!("cannot stat {}: {e}", path.display()),
                None,
            ),
            Ok((stat, None)) => self.pass_id(
                scope,
                &id,
                name,
                Some(path),
                format!(
                    "{}: owner {}, mode {:04o}",
                    path.display(),
                    set.owner_label(),
                    stat.mode
                ),
            ),
            Ok((_, Some(f))) => self.push_id(
                scope,
                &id,
                name,
                State::from(f.severity),
                Some(path),
                f.message,
                Some(f.fix),
            ),
        }
    }
}
