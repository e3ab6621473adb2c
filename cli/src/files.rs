//! Writing certificates and keys without losing anything and without a moment of exposure.
//!
//! A file is written to a temporary name beside its target, created with its final mode (a key
//! is never readable by others, not even briefly), synced, renamed over the target and the
//! directory synced: a crash leaves the old file or the new one. An existing file is replaced
//! only when the caller says so (`--force`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::ui::CliError;

/// Whether an existing target may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    Never,
    Allowed,
}

/// Refuses to go on when any of `paths` exists and may not be replaced: checked for all the
/// files of a command before it writes the first, so that it writes all or nothing.
pub fn check_free(paths: &[&Path], replace: Replace) -> Result<(), CliError> {
    if replace == Replace::Allowed {
        return Ok(());
    }
    for path in paths {
        if fs::symlink_metadata(path).is_ok() {
            return Err(CliError(format!(
                "{}: already exists; not replaced (give --force to replace it)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Creates `dir` and its missing parents, each with exactly `mode` (not narrowed by the
/// umask: libvirt's directories are 0755 and virt-pki-validate checks them).
///
/// Each is created with `mode` less the umask, never wider than asked, then widened to `mode`.
pub fn create_dir(dir: &Path, mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // A relative path ends in "", which is the current directory, not one to create.
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    for d in missing.into_iter().rev() {
        let err =
            |e: std::io::Error| CliError(format!("{}: cannot create directory: {e}", d.display()));
        match fs::DirBuilder::new().mode(mode).create(d) {
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(mode)).map_err(err)?,
            // Made meanwhile by someone else: theirs, left as it is.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(())
}

/// Writes `contents` to `path` with `mode`, atomically (see the module docs).
///
/// With [`Replace::Never`] the file is put in place with `link`, which fails when the target
/// exists, so a file that appeared since [`check_free`] (another run, another program) is not
/// replaced.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    replace: Replace,
) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |what: &str, e: std::io::Error| CliError(format!("{}: {what}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError(format!("{}: not a file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| err("cannot create a temporary file beside it", e))?;
    // From here on the temporary file is ours, and is removed if anything fails.
    let result = (|| {
        // The umask may have taken bits away from `mode`; set exactly what was asked for.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| err("cannot set its mode", e))?;
        file.write_all(contents)
            .map_err(|e| err("cannot write", e))?;
        file.sync_all().map_err(|e| err("cannot sync", e))?;
        match replace {
            Replace::Allowed => fs::rename(&tmp, path)
                .map_err(|e| err("cannot rename the temporary file onto it", e)),
            Replace::Never => match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(CliError(format!(
                    "{}: appeared while virtpki was working; not replaced (give --force \
                         to replace it)",
                    path.display()
                ))),
                Err(e) => Err(err("cannot put the new file in place", e)),
            },
        }
    })();
    if result.is_err() || replace == Replace::Never {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Keeps a copy of `path` as `PATH.bak-TIME` (`-TIME-N` when that exists), with its mode;
/// an earlier copy is never overwritten, nor a file or link planted at the name.
pub fn keep_copy(path: &Path) -> Result<std::path::PathBuf, CliError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |what: &str, e: std::io::Error| CliError(format!("{}: {what}: {e}", path.display()));
    let contents = fs::read(path).map_err(|e| err("cannot read it to keep a copy", e))?;
    let mode = fs::metadata(path)
        .map_err(|e| err("cannot stat it", e))?
        .permissions()
        .mode()
        & 0o7777;
    let stamp = virtpki::timefmt::now();
    for n in 0..100 {
        let name = match n {
            0 => format!("{}.bak-{stamp}", path.display()),
            n => format!("{}.bak-{stamp}-{n}", path.display()),
        };
        let backup = std::path::PathBuf::from(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&backup)
        {
            Ok(mut f) => {
                f.set_permissions(fs::Permissions::from_mode(mode))
                    .and_then(|_| f.write_all(&contents))
                    .and_then(|_| f.sync_all())
                    .map_err(|e| err(&format!("cannot write the copy {}", backup.display()), e))?;
                return Ok(backup);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(&format!("cannot create {}", backup.display()), e)),
        }
    }
    Err(CliError(format!(
        "{}: cannot find a free name to keep a copy under",
        path.display()
    )))
}

/// An exclusive advisory lock on a directory, held until dropped (`flock`, as the
/// known-servers store uses on its file).
pub struct DirLock {
    /// Closing the descriptor releases the lock.
    _file: fs::File,
}

/// Locks `dir`, waiting for another holder to finish.
pub fn lock_dir(dir: &Path) -> Result<DirLock, CliError> {
    use std::os::fd::AsRawFd;
    let file = fs::File::open(dir)
        .map_err(|e| CliError(format!("{}: cannot open to lock it: {e}", dir.display())))?;
    // SAFETY: the descriptor is open and owned by `file` for the whole call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(CliError(format!(
            "{}: cannot lock: {}",
            dir.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_file_that_appeared_is_not_replaced_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("key.pem");
        // Free when checked...
        check_free(&[&target], Replace::Never).unwrap();
        // ...then someone else writes it before we do.
        fs::write(&target, "theirs").unwrap();
        let err = write_atomic(&target, b"ours", 0o600, Replace::Never).unwrap_err();
        assert!(
            err.0.contains("appeared while virtpki was working"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "theirs");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomic(&target, b"ours", 0o600, Replace::Allowed).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "ours");
        assert_eq!(mode(&target), 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_stale_temporary_file_is_someone_elses_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("cert.pem");
        let tmp = dir
            .path()
            .join(format!(".cert.pem.tmp-{}", std::process::id()));
        fs::write(&tmp, "not ours").unwrap();
        assert!(write_atomic(&target, b"x", 0o644, Replace::Never).is_err());
        assert_eq!(fs::read_to_string(&tmp).unwrap(), "not ours");
        assert!(!target.exists());
    }

    #[test]
    fn copies_never_overwrite_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "one").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let first = keep_copy(&file).unwrap();
        fs::write(&file, "two").unwrap();
        let second = keep_copy(&file).unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read_to_string(&first).unwrap(), "one");
        assert_eq!(fs::read_to_string(&second).unwrap(), "two");
        assert_eq!(mode(&second), 0o600);
    }

    #[test]
    fn directories_get_their_mode_and_relative_paths_work() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir(&deep, 0o755).unwrap();
        for d in [dir.path().join("a"), dir.path().join("a/b"), deep.clone()] {
            assert_eq!(mode(&d), 0o755, "{}", d.display());
        }
        // An existing directory is left as it is.
        fs::set_permissions(&deep, fs::Permissions::from_mode(0o700)).unwrap();
        create_dir(&deep, 0o755).unwrap();
        assert_eq!(mode(&deep), 0o700);
        // Under a regular file: an error that names the directory.
        fs::write(deep.join("file"), "").unwrap();
        let err = create_dir(&deep.join("file/x"), 0o755).unwrap_err();
        assert!(err.0.contains("file/x: cannot create directory"), "{err}");
    }
}
