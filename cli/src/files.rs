//! Writing certificates and keys without losing anything and without a moment of exposure.
//!
//! The CLI's words around the library's one file layer, [`virtpki::fsutil`]: a file is written
//! to a temporary name beside its target, created with its final mode (a key is never readable
//! by others, not even briefly), synced, renamed over the target and the directory synced: a
//! crash leaves the old file or the new one. An existing file is replaced only when the caller
//! says so (`--force`). Everything acts on descriptors and never follows a link at a target.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};

pub use virtpki::fsutil::Replace;
use virtpki::fsutil::{self, Dir, Owner, ReadError, WriteSpec};

use crate::ui::CliError;

/// The largest file kept as a copy or compared before it is replaced: the largest input the
/// library takes (a CRL, 64 MiB).
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

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
/// umask: libvirt's directories are 0755 and virt-pki-validate checks them) and `owner`, and
/// returns it open. An existing directory is left as it is.
pub fn create_dir_owned(dir: &Path, mode: u32, owner: Option<Owner>) -> Result<Dir, CliError> {
    let (existing, missing) = fsutil::existing_and_missing(dir);
    fsutil::make_dirs(&existing, &missing, mode, owner)
        .map_err(|e| CliError(format!("{}: cannot create directory: {e}", dir.display())))
}

/// [`create_dir_owned`], keeping the owner the process gives.
pub fn create_dir(dir: &Path, mode: u32) -> Result<(), CliError> {
    create_dir_owned(dir, mode, None).map(|_| ())
}

/// The directory and file name of `path`.
pub fn split(path: &Path) -> Result<(PathBuf, &OsStr), CliError> {
    let name = path
        .file_name()
        .ok_or_else(|| CliError(format!("{}: not a file name", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// Opens the directory of `path`, and returns it with the file name.
pub fn open_dir_of(path: &Path) -> Result<(Dir, &OsStr), CliError> {
    let (dir, name) = split(path)?;
    let dir = Dir::open(&dir).map_err(|e| {
        CliError(format!(
            "{}: cannot open its directory: {e}",
            path.display()
        ))
    })?;
    Ok((dir, name))
}

/// Writes `contents` as `name` in `dir` with `mode` and `owner`, atomically (see the module
/// docs).
///
/// With [`Replace::Never`] the file is put in place with `link`, which fails when the target
/// exists, so a file that appeared since [`check_free`] (another run, another program) is not
/// replaced.
pub fn write_in(
    dir: &Dir,
    name: &OsStr,
    contents: &[u8],
    mode: u32,
    owner: Option<Owner>,
    replace: Replace,
) -> Result<(), CliError> {
    let path = dir.path().join(name);
    let mut temporary = OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".tmp-{}", std::process::id()));
    let spec = WriteSpec {
        mode,
        owner,
        replace,
        temporary,
        remove_stale_temporary: false,
    };
    dir.write(name, contents, &spec)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists if replace == Replace::Never => CliError(format!(
                "{}: appeared while virtpki was working (or a temporary file of that name is \
             in the way); not replaced (give --force to replace it)",
                path.display()
            )),
            _ => CliError(format!("{}: cannot write: {e}", path.display())),
        })
}

/// Writes `contents` to `path` with `mode`, atomically: [`write_in`] its directory.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    replace: Replace,
) -> Result<(), CliError> {
    let (dir, name) = open_dir_of(path)?;
    write_in(&dir, name, contents, mode, None, replace)
}

/// Keeps a copy of `name` in `dir` as `NAME.bak-TIME` (`-TIME-N` when that exists), made from
/// the open file with its mode and owner; an earlier copy is never overwritten, nor a file or
/// link planted at the name. Returns the copy's path and how many copies of `name` there are.
pub fn keep_copy_in(dir: &Dir, name: &OsStr) -> Result<(PathBuf, usize), CliError> {
    let path = dir.path().join(name);
    let kept = dir
        .keep_copy(name, &virtpki::timefmt::now().to_string(), MAX_FILE_SIZE)
        .map_err(|e| match &e {
            ReadError::Io(op, _) => CliError(format!("{}: cannot {op} it: {e}", path.display())),
            ReadError::TooLarge(_) => {
                CliError(format!("{}: {e} to keep a copy of", path.display()))
            }
        })?;
    let mut prefix = name.to_string_lossy().into_owned();
    prefix.push_str(".bak-");
    let count = dir.names_starting_with(&prefix).map_or(1, |n| n.len());
    Ok((dir.path().join(kept), count))
}

/// An exclusive advisory lock on a directory, held until dropped (`flock`, as the
/// known-servers store uses on its lock file).
pub struct DirLock {
    _lock: fsutil::Lock,
}

/// Locks `dir`, waiting for another holder to finish.
pub fn lock_dir(dir: &Path) -> Result<DirLock, CliError> {
    let cannot = |e: std::io::Error| CliError(format!("{}: cannot lock: {e}", dir.display()));
    let file = Dir::open(dir)
        .and_then(|d| d.try_clone_file())
        .map_err(|e| CliError(format!("{}: cannot open to lock it: {e}", dir.display())))?;
    match fsutil::Lock::acquire(file, None) {
        Ok(lock) => Ok(DirLock { _lock: lock }),
        Err(fsutil::LockError::Io(e)) => Err(cannot(e)),
        Err(fsutil::LockError::TimedOut) => Err(cannot(std::io::ErrorKind::TimedOut.into())),
    }
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
            err.message().contains("appeared while virtpki was working"),
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
        let d = Dir::open(dir.path()).unwrap();
        let (first, n) = keep_copy_in(&d, OsStr::new("f")).unwrap();
        assert_eq!(n, 1);
        fs::write(&file, "two").unwrap();
        let (second, n) = keep_copy_in(&d, OsStr::new("f")).unwrap();
        assert_eq!(n, 2);
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
        assert!(
            err.message().contains("file/x: cannot create directory"),
            "{err}"
        );
    }
}
