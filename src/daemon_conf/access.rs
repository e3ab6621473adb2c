//! Who besides root may change the files a daemon reads as root: its configuration files
//! ([`conf_writers`]). The rule for whose files count as root's (root, or the caller under a
//! test root: `root_stand_in`) is also the one for the pid file `ConfSource::find` believes,
//! so `validate` and `reload` never disagree about whom a file belongs to.

use std::path::{Path, PathBuf};

/// Why another user than root could change a daemon configuration file at `path`, which the
/// daemon reads as root when it starts: the file (symbolic links followed, as libvirt opens
/// it), or a directory on its path as given or as its links resolve (whoever may write one
/// may put another file or link in its place), is not root's or is writable by group or
/// others, or is a symbolic link not root's; a sticky directory (as /tmp) is safe for root's
/// entries, which others cannot replace. `None` when only root can. The path named comes with the why. Under a test root
/// (not `/`) the caller stands in for root ([`super::ConfSource::find`]'s rule), and the
/// directories above the root (a chroot's, an image's) are not the daemon's: not looked at.
pub fn conf_writers(path: &Path, root: &Path) -> Option<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    let trusted = root_stand_in(root);
    // The directories of `p` up to the root (`top`, spelled as `p` is), or all of them for a
    // path outside it.
    let dirs_of = |p: &Path, top: &Path| -> Vec<PathBuf> {
        let under = p.starts_with(top);
        p.ancestors()
            .skip(1)
            .filter(|d| !d.as_os_str().is_empty() && (!under || d.starts_with(top)))
            .map(Path::to_path_buf)
            .collect()
    };
    let mut dirs = dirs_of(path, root);
    if let Ok(real) = std::fs::canonicalize(path) {
        let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        dirs.extend(dirs_of(&real, &real_root));
    }
    let writers = |p: &Path, dir: bool| -> Option<String> {
        let shown = p.display();
        // A link's owner may delete it and put another in its place wherever the directory
        // lets entries' owners do that (a sticky one, as /tmp): the link itself counts.
        if let Ok(link) = std::fs::symlink_metadata(p) {
            if link.file_type().is_symlink() && !trusted(link.uid()) {
                return Some(format!(
                    "{shown} is a symbolic link belonging to uid {}, not root: its owner may \
                     replace it with one pointing elsewhere",
                    link.uid()
                ));
            }
        }
        let meta = match std::fs::metadata(p) {
            Ok(meta) => meta,
            // Fails closed: what cannot be looked at is not known to be root's.
            Err(e) => return Some(format!("who may write {shown} cannot be told: {e}")),
        };
        let mode = meta.mode() & 0o7777;
        if !trusted(meta.uid()) {
            return Some(format!(
                "{shown} belongs to uid {}, not root (mode {mode:04o})",
                meta.uid()
            ));
        }
        let sticky = dir && mode & 0o1000 != 0;
        (mode & 0o022 != 0 && !sticky).then(|| {
            format!(
                "{shown} is writable by {} (mode {mode:04o})",
                if mode & 0o002 != 0 {
                    "every user"
                } else {
                    "its group"
                }
            )
        })
    };
    std::iter::once((path, false))
        .chain(dirs.iter().map(|d| (d.as_path(), true)))
        .find_map(|(p, dir)| writers(p, dir).map(|why| (p.to_path_buf(), why)))
}

/// Whether a uid is root's under `root`: root, or under a test root (not the host's /,
/// however spelled: `/tmp/..`, a link to /) the caller too, whose files stand in for root's.
pub(super) fn root_stand_in(root: &Path) -> impl Fn(u32) -> bool {
    let host =
        root == Path::new("/") || std::fs::canonicalize(root).is_ok_and(|r| r == Path::new("/"));
    let me = my_uid();
    move |uid| uid == 0 || (!host && uid == me)
}

/// The caller's effective uid.
fn my_uid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}
