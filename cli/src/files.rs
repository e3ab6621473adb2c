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
pub fn create_dir(dir: &Path, mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    // A relative path ends in "", which is the current directory, not one to create.
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    for d in missing.into_iter().rev() {
        fs::create_dir(d)
            .and_then(|_| fs::set_permissions(d, fs::Permissions::from_mode(mode)))
            .map_err(|e| CliError(format!("{}: cannot create directory: {e}", d.display())))?;
    }
    Ok(())
}

/// Writes `contents` to `path` with `mode`, atomically (see the module docs).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), CliError> {
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
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| err("cannot create a temporary file beside it", e))?;
        // The umask may have taken bits away from `mode`; set exactly what was asked for.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| err("cannot set its mode", e))?;
        file.write_all(contents)
            .map_err(|e| err("cannot write", e))?;
        file.sync_all().map_err(|e| err("cannot sync", e))?;
        fs::rename(&tmp, path).map_err(|e| err("cannot rename the temporary file onto it", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
