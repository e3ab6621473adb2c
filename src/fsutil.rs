//! The one file layer: reading a file that a trust decision depends on, and writing files
//! atomically with exactly their mode and owner.
//!
//! Everything a caller checks must be what it uses, so every operation acts on a descriptor,
//! never on a path looked up twice:
//!
//! - [`read_regular`] looks up the path once (`O_PATH`, which opens nothing; `O_NOFOLLOW`
//!   when asked), `fstat`s that descriptor and refuses anything but a regular file, then opens
//!   that same inode through `/proc/self/fd` (`O_NONBLOCK`), caps the size and reads it.
//! - [`Dir`] is an open directory; files in it are named relative to its descriptor
//!   (`openat`, `renameat`, `linkat`), never followed when they are symbolic links, and their
//!   modes and owners are set with `fchmod`/`fchown` on the file's own descriptor.
//!   [`Dir::write`] replaces a file atomically (temporary file with its final mode, fsync,
//!   rename or link, fsync of the directory; never what is not a regular file or a link),
//!   [`Dir::fix_mode_and_owner`] repairs an existing file and [`Dir::keep_copy`] makes a
//!   backup from the open file, with its mode and owner.
//! - [`make_dirs`] creates directories with exactly their mode (`mkdirat`, then
//!   `O_DIRECTORY|O_NOFOLLOW`, then `fchmod`/`fchown` on the new directory).
//! - [`Lock`] is an exclusive `flock` held until dropped.
//!
//! Errors are `io::Error`s; the callers name the file and what it is for. Nothing here prints.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};

/// Whether the last component of a path may be a symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Follow it (a file the user named, e.g. `--ca-file`).
    Yes,
    /// Refuse it: the file is in a directory others may control, or it is checked and then
    /// used, and a link swapped in between would make the check worthless.
    No,
}

/// A file's bytes (wiped when dropped: they may be a private key) and its `fstat`.
pub struct ReadFile {
    /// The contents, at most the limit the caller gave.
    pub bytes: Zeroizing<Vec<u8>>,
    /// The `fstat` of the descriptor read, so owner and mode are those of the bytes.
    pub meta: Metadata,
}

impl std::fmt::Debug for ReadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bytes: they may be a private key.
        f.debug_struct("ReadFile")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// Why [`read_regular`] failed.
#[derive(Debug)]
pub enum ReadError {
    /// The operation (`"open"`, `"read"`, ...) and its error. Anything that is not a regular
    /// file, a symbolic link not followed included, is an `InvalidInput` error saying what it is.
    Io(&'static str, io::Error),
    /// Over the cap: the size seen (from `fstat`, or the bytes read when it grew).
    TooLarge(u64),
}

/// The error in words, without the path (the caller names the file): the I/O error's own
/// text, or the size. The one wording of a read error for messages that are not an [`Error`].
impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(_, e) => write!(f, "{e}"),
            ReadError::TooLarge(n) => write!(f, "{n} bytes, too large"),
        }
    }
}

impl ReadError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(_, e) if e.kind() == io::ErrorKind::NotFound)
    }

    /// The library's error for reading `path`, `what` naming what it should be ("CA
    /// certificate file"); `too_large` words the size error, whose limit the caller knows.
    pub fn into_error(
        self,
        path: &Path,
        what: &str,
        too_large: impl FnOnce(u64) -> Error,
    ) -> Error {
        match self {
            ReadError::Io(_, e) if e.kind() == io::ErrorKind::InvalidInput => Error::new(
                ErrorKind::Io,
                format!("{}: {e}; a {what} must be one", path.display()),
            )
            .with_source(e),
            ReadError::Io(op, e) => Error::io(op, path, e),
            ReadError::TooLarge(len) => too_large(len),
        }
    }
}

/// What a file of this type is, for messages: "a directory", "a named pipe (FIFO)", ...
pub fn kind_of(meta: &Metadata) -> &'static str {
    kind_of_mode(meta.mode())
}

/// [`kind_of`] from a `st_mode`.
fn kind_of_mode(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFIFO => "a named pipe (FIFO)",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR | libc::S_IFBLK => "a device",
        _ => "not a file",
    }
}

fn not_regular(meta: &Metadata) -> io::Error {
    not_regular_kind(kind_of(meta))
}

fn not_regular_kind(kind: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {kind}, not a regular file"),
    )
}

/// What `name` in `dir` is when it is there and neither a regular file nor (with
/// [`Follow::No`]) a symbolic link; found with `fstatat`, without opening it. A replacing
/// write asks before its rename, which would replace a device, FIFO or socket.
fn not_regular_at(dir: RawFd, name: &CStr, follow: Follow) -> Option<&'static str> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let at = match follow {
        Follow::Yes => 0,
        Follow::No => libc::AT_SYMLINK_NOFOLLOW,
    };
    // SAFETY: `name` is NUL-terminated and `st` is a stat fstatat may write.
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, at) } != 0 {
        return None;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFLNK => None,
        mode => Some(kind_of_mode(mode)),
    }
}

fn cstring(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a file name"))
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `openat`, retried on EINTR; a symbolic link refused by `O_NOFOLLOW` is reported as one.
fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int, mode: u32) -> io::Result<File> {
    loop {
        // SAFETY: `name` is NUL-terminated; the descriptor returned is owned by the File.
        let fd = unsafe {
            libc::openat(
                dir,
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd >= 0 {
            // SAFETY: a fresh descriptor nobody else owns.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            // ELOOP, or ENOTDIR with O_DIRECTORY: say when it is because of a link.
            Some(libc::ELOOP | libc::ENOTDIR)
                if flags & libc::O_NOFOLLOW != 0 && is_symlink_at(dir, name) =>
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a symbolic link, which is not followed here",
                ))
            }
            _ => return Err(e),
        }
    }
}

fn is_symlink_at(dir: RawFd, name: &CStr) -> bool {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated and `st` is a stat fstatat may write.
    let ret = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    ret == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// Opens `path` to read it: non-blocking (a FIFO cannot hang the open), not following a final
/// symbolic link unless `follow` says so, and only if the descriptor is a regular file.
pub fn open_regular(path: &Path, follow: Follow) -> io::Result<(File, Metadata)> {
    open_regular_at(libc::AT_FDCWD, &cstring(path.as_os_str())?, follow)
}

fn open_regular_at(dir: RawFd, name: &CStr, follow: Follow) -> io::Result<(File, Metadata)> {
    // First a descriptor that opens nothing (O_PATH): its fstat says what is there, so that what
    // is not a regular file is never opened (opening a device may act: a watchdog arms, a tape
    // rewinds; a socket cannot be opened at all: ENXIO, "No such device or address", which
    // names neither the file nor the rule). Then that same inode is opened to be read, through
    // /proc/self/fd: whatever is put at the path meanwhile is not what is opened.
    let nofollow = match follow {
        Follow::Yes => 0,
        Follow::No => libc::O_NOFOLLOW,
    };
    let handle = open_at(dir, name, libc::O_PATH | nofollow, 0)?;
    let seen = handle.metadata()?;
    if seen.file_type().is_symlink() {
        // O_PATH|O_NOFOLLOW gives the link itself.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is a symbolic link, which is not followed here",
        ));
    }
    if !seen.is_file() {
        return Err(not_regular(&seen));
    }
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    let same = CString::new(format!("/proc/self/fd/{}", handle.as_raw_fd()))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a file name"))?;
    let file = match open_at(libc::AT_FDCWD, &same, flags, 0) {
        Ok(file) => file,
        // No /proc: the path once more (non-blocking, the link rule kept); the descriptor's
        // fstat below decides, and it must be the file looked at.
        Err(e)
            if e.raw_os_error() == Some(libc::ENOENT) && !Path::new("/proc/self/fd").exists() =>
        {
            open_at(dir, name, flags | nofollow, 0)?
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    if (meta.dev(), meta.ino()) != (seen.dev(), seen.ino()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it was replaced while it was opened",
        ));
    }
    Ok((file, meta))
}

/// Reads what [`open_regular`] opened, at most `limit` bytes. The caller keeps the descriptor,
/// to ask more of the same file (who holds a lock on it).
pub fn read_capped(mut file: &File, meta: Metadata, limit: u64) -> Result<ReadFile, ReadError> {
    if meta.len() > limit {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io("read", e))?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(ReadFile { bytes, meta })
}

/// Opens `path` with [`open_regular`] and reads at most `limit` bytes of that same descriptor.
pub fn read_regular(path: &Path, follow: Follow, limit: u64) -> Result<ReadFile, ReadError> {
    let (file, meta) = open_regular(path, follow).map_err(|e| ReadError::Io("open", e))?;
    read_capped(&file, meta, limit)
}

/// A user and group to give files to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The user ID.
    pub uid: u32,
    /// The group ID.
    pub gid: u32,
}

impl Owner {
    /// root:root.
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };

    /// The owner of `meta`'s file.
    pub fn of(meta: &Metadata) -> Owner {
        Owner {
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
}

/// Sets exactly `mode` (the umask does not apply to `fchmod`) and, if given, the owner.
/// The owner first: `fchown` clears set-id bits, which `mode` then states.
fn set_mode_and_owner(file: &File, mode: u32, owner: Option<Owner>) -> io::Result<()> {
    if let Some(o) = owner {
        // SAFETY: a descriptor owned by `file`.
        cvt(unsafe { libc::fchown(file.as_raw_fd(), o.uid, o.gid) })?;
    }
    // SAFETY: as above.
    cvt(unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) })?;
    Ok(())
}

/// Whether an existing target may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Put the file in place with `linkat`, which fails (`AlreadyExists`) when the target
    /// exists, so a file that appeared meanwhile is never replaced.
    Never,
    /// `renameat` over the target.
    Allowed,
}

/// How [`Dir::write`] writes one file.
#[derive(Clone, Debug)]
pub struct WriteSpec {
    /// The permission bits, set exactly (the umask does not apply).
    pub mode: u32,
    /// The owner to give the file; `None` = the writing process's.
    pub owner: Option<Owner>,
    /// Whether a file already at the target may be replaced.
    pub replace: Replace,
    /// The temporary name beside the target. It is created exclusively; a file already at
    /// that name is left alone and the write fails, unless `remove_stale_temporary` (a caller
    /// holding a lock knows a leftover is from a killed writer).
    pub temporary: OsString,
    /// Remove a file left at the temporary name (only under a lock: see `temporary`).
    pub remove_stale_temporary: bool,
}

/// An open directory; the files in it are named relative to its descriptor.
#[derive(Debug)]
pub struct Dir {
    file: File,
    path: PathBuf,
}

impl Dir {
    /// Opens the directory `path` (following symbolic links in it: the caller trusts them).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let file = open_at(
            libc::AT_FDCWD,
            &cstring(path.as_os_str())?,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )?;
        Ok(Dir {
            file,
            path: path.to_owned(),
        })
    }

    /// Opens the directory `below` names under the open directory `self`, each component
    /// relative to its parent, refusing a symbolic link among them (as [`make_dirs`] walks,
    /// without creating anything). `each` sees every directory opened, to refuse one (by its
    /// owner, say). An error names the directory it happened on; a missing one is `NotFound`.
    pub fn open_below(
        self,
        below: &Path,
        mut each: impl FnMut(&Dir, &Metadata) -> io::Result<()>,
    ) -> io::Result<Dir> {
        let mut dir = self;
        for name in plain_components(below)? {
            let child = dir
                .open_child(name)
                .map_err(|e| at(&dir.path.join(name), e))?;
            child
                .metadata()
                .and_then(|meta| each(&child, &meta))
                .map_err(|e| at(&child.path, e))?;
            dir = child;
        }
        Ok(dir)
    }

    /// Opens the subdirectory `name`, refusing a symbolic link.
    pub fn open_child(&self, name: &OsStr) -> io::Result<Dir> {
        let file = open_at(
            self.fd(),
            &cstring(name)?,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
        Ok(Dir {
            file,
            path: self.path.join(name),
        })
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `fstat` of the directory itself.
    pub fn metadata(&self) -> io::Result<Metadata> {
        self.file.metadata()
    }

    fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Opens the regular file `name` (never a symbolic link) and reads at most `limit` bytes.
    pub fn read(&self, name: &OsStr, limit: u64) -> Result<ReadFile, ReadError> {
        let name = cstring(name).map_err(|e| ReadError::Io("open", e))?;
        let (file, meta) =
            open_regular_at(self.fd(), &name, Follow::No).map_err(|e| ReadError::Io("open", e))?;
        read_capped(&file, meta, limit)
    }

    /// Removes `name`; nothing there is not an error.
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: a valid descriptor and NUL-terminated name.
        match cvt(unsafe { libc::unlinkat(self.fd(), c.as_ptr(), 0) }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes `bytes` as `name`: a temporary file created with no access for anyone, given its
    /// owner and final mode on its descriptor, written, synced, then renamed or linked to
    /// `name` and the directory synced. A crash leaves the old file or the new one.
    pub fn write(&self, name: &OsStr, bytes: &[u8], spec: &WriteSpec) -> io::Result<()> {
        let target = cstring(name)?;
        let temporary = cstring(&spec.temporary)?;
        // A FIFO, socket, device or directory at the target is someone's (`--output
        // /dev/null`): never replaced by a regular file, as the rename would for all but a
        // directory. A symbolic link is replaced (the link, not its target).
        if let Some(kind) = not_regular_at(self.fd(), &target, Follow::No) {
            return Err(not_regular_kind(kind));
        }
        if spec.remove_stale_temporary {
            self.remove(&spec.temporary)?;
        }
        let mut file = open_at(
            self.fd(),
            &temporary,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o600 & spec.mode,
        )?;
        // From here on the temporary file is ours, and is removed if anything fails.
        let result = (|| {
            set_mode_and_owner(&file, spec.mode, spec.owner)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            match spec.replace {
                // SAFETY: a valid descriptor and NUL-terminated names.
                Replace::Allowed => cvt(unsafe {
                    libc::renameat(self.fd(), temporary.as_ptr(), self.fd(), target.as_ptr())
                }),
                // SAFETY: as above; flags 0: a link at the temporary name is not followed.
                Replace::Never => cvt(unsafe {
                    libc::linkat(self.fd(), temporary.as_ptr(), self.fd(), target.as_ptr(), 0)
                }),
            }
        })();
        if result.is_err() || spec.replace == Replace::Never {
            let _ = self.remove(&spec.temporary);
        }
        result?;
        self.sync()
    }

    /// fsyncs the directory, so that a rename in it survives a crash.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    /// Gives the existing regular file `name` (never a symbolic link) exactly `mode` and, if
    /// given, `owner`, on its own descriptor; only if it is still the file `seen` describes
    /// (what the caller read and compared), and not one with other hard links: a link to
    /// someone else's file must not be given away.
    pub fn fix_mode_and_owner(
        &self,
        name: &OsStr,
        mode: u32,
        owner: Option<Owner>,
        seen: &Metadata,
    ) -> io::Result<()> {
        let (file, meta) = open_regular_at(self.fd(), &cstring(name)?, Follow::No)?;
        if (meta.dev(), meta.ino()) != (seen.dev(), seen.ino()) {
            return Err(io::Error::other(
                "it was replaced while virtpki was working; run the command again",
            ));
        }
        if meta.nlink() > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "it has {} hard links, so changing its mode or owner would change another \
                     file too; remove it and run the command again",
                    meta.nlink()
                ),
            ));
        }
        set_mode_and_owner(&file, mode, owner)
    }

    /// Keeps a copy of the regular file `name` as `NAME.bak-STAMP` (`-STAMP-N` when that
    /// exists), made from the open file: same bytes, mode and owner (a key's backup is as
    /// private as the key). An earlier copy is never overwritten, nor a file or link planted at
    /// the name. Returns the copy's name.
    pub fn keep_copy(&self, name: &OsStr, stamp: &str, limit: u64) -> Result<OsString, ReadError> {
        let old = self.read(name, limit)?;
        let mode = old.meta.mode() & 0o7777;
        for n in 0..100 {
            let mut backup = name.to_owned();
            match n {
                0 => backup.push(format!(".bak-{stamp}")),
                n => backup.push(format!(".bak-{stamp}-{n}")),
            }
            let c = cstring(&backup).map_err(|e| ReadError::Io("name", e))?;
            let mut file = match open_at(
                self.fd(),
                &c,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0o600 & mode,
            ) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ReadError::Io("create a copy of", e)),
            };
            let written = set_mode_and_owner(&file, mode, Some(Owner::of(&old.meta)))
                .and_then(|_| file.write_all(&old.bytes))
                .and_then(|_| file.sync_all());
            if let Err(e) = written {
                let _ = self.remove(&backup);
                return Err(ReadError::Io("write a copy of", e));
            }
            return Ok(backup);
        }
        Err(ReadError::Io(
            "find a free name for a copy of",
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "100 copies with this time stamp",
            ),
        ))
    }

    /// The names of the entries that start with `prefix` (never `.` or `..`), sorted. Listed
    /// through the descriptor: the directory's path may lead elsewhere by now.
    pub fn names_starting_with(&self, prefix: &str) -> io::Result<Vec<OsString>> {
        // A new open file description (not a dup, which would share the read position with
        // `self.file`), owned by the stream from `fdopendir` on.
        let fd = open_at(self.fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?.into_raw_fd();
        // SAFETY: `fd` is an open directory descriptor nobody else owns.
        let stream = unsafe { libc::fdopendir(fd) };
        if stream.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so `fd` is still ours to close.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        let stream = DirStream(stream);
        let mut names = Vec::new();
        loop {
            // readdir returns NULL at the end and on an error; only errno tells them apart.
            // SAFETY: errno is this thread's; the stream is open until `stream` drops, and an
            // entry is valid until the next readdir on it.
            let entry = unsafe {
                *libc::__errno_location() = 0;
                libc::readdir(stream.0)
            };
            if entry.is_null() {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(0) | None => break,
                    _ => return Err(e),
                }
            }
            // SAFETY: `d_name` of an entry readdir returned is NUL-terminated.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
            if name != b"." && name != b".." && name.starts_with(prefix.as_bytes()) {
                names.push(OsStr::from_bytes(name).to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Opens (creating it, mode 0600, never through a link) the lock file `name`. A lock file
    /// made by root is still good to lock read-only: flock needs no write access.
    pub fn open_lock_file(&self, name: &OsStr) -> io::Result<File> {
        let c = cstring(name)?;
        match open_at(
            self.fd(),
            &c,
            libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            0o600,
        ) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => open_at(
                self.fd(),
                &c,
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
                0,
            ),
            other => other,
        }
    }

    /// Whether this, opened by name right after `mkdirat` made it, can be the new directory:
    /// an empty one. Someone who may write the parent can rename another directory over the
    /// new, empty one in between; that one, with what is in it, must not be given a mode and
    /// owner. (An empty directory swapped in is indistinguishable, and holds nothing to give
    /// away. The owner is not compared: on NFS with root squashing root's new directory is
    /// nobody's.)
    fn check_just_made(&self) -> io::Result<()> {
        if !self.names_starting_with("")?.is_empty() {
            return Err(io::Error::other(
                "another directory was put there while virtpki was making it; run the \
                 command again",
            ));
        }
        Ok(())
    }

    /// The `fstat` of `name` in this directory, not through a link at `name` (a link's own):
    /// what is there now, found from the descriptor rather than the directory's path.
    pub fn metadata_of(&self, name: &OsStr) -> io::Result<Metadata> {
        open_at(
            self.fd(),
            &cstring(name)?,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
        )?
        .metadata()
    }

    /// A second descriptor of the directory itself, e.g. to lock it.
    pub fn try_clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }
}

/// A `DIR` stream of `fdopendir`, closed (with its descriptor) when dropped.
struct DirStream(*mut libc::DIR);

impl Drop for DirStream {
    fn drop(&mut self) {
        // SAFETY: a stream fdopendir returned, closed once, here.
        unsafe { libc::closedir(self.0) };
    }
}

/// Creates the directories `below` names under `base` (which must exist), each with exactly
/// `mode` and, if given, `owner`; returns the last one, open.
///
/// `base` is opened by path (its symbolic links are the caller's choice); every component of
/// `below` is opened relative to its parent with `O_NOFOLLOW`, so a link planted there is
/// refused rather than followed. An existing directory is left as it is. A new one is made
/// with `mkdirat` (the umask may narrow it, never widen it), then opened and given its mode
/// and owner on its own descriptor.
pub fn make_dirs(base: &Path, below: &Path, mode: u32, owner: Option<Owner>) -> io::Result<Dir> {
    make_dirs_in(Dir::open(base)?, below, mode, owner)
}

/// [`make_dirs`] below a directory already open, so that it is not looked up again by path.
pub fn make_dirs_in(base: Dir, below: &Path, mode: u32, owner: Option<Owner>) -> io::Result<Dir> {
    let mut dir = base;
    for name in plain_components(below)? {
        let c = cstring(name)?;
        // SAFETY: a valid descriptor and NUL-terminated name.
        let made = match cvt(unsafe { libc::mkdirat(dir.fd(), c.as_ptr(), mode as libc::mode_t) }) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(at(&dir.path.join(name), e)),
        };
        let child = dir
            .open_child(name)
            .map_err(|e| at(&dir.path.join(name), e))?;
        if made {
            child.check_just_made().map_err(|e| at(&child.path, e))?;
            set_mode_and_owner(&child.file, mode, owner).map_err(|e| at(&child.path, e))?;
        }
        dir = child;
    }
    Ok(dir)
}

/// The directory names of `below` in order, `.` skipped, for the walks that stay below their
/// base ([`Dir::open_below`], [`make_dirs_in`]): `..`, a root or a prefix is an error, found
/// before the walk starts.
fn plain_components(below: &Path) -> io::Result<Vec<&OsStr>> {
    // All checked before the caller acts on any: "a/../b" must not make "a" and then fail.
    below
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(Ok(name)),
            Component::CurDir => None,
            _ => Some(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a plain relative directory name", below.display()),
            ))),
        })
        .collect()
}

/// The same error, with the path it happened on in front.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// `path` split into its deepest existing ancestor (or `path` itself) and the missing rest.
pub fn existing_and_missing(path: &Path) -> (PathBuf, PathBuf) {
    let mut existing = path;
    let mut missing = Vec::new();
    while !existing.as_os_str().is_empty() && std::fs::symlink_metadata(existing).is_err() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                existing = parent;
            }
            _ => break,
        }
    }
    let base = if existing.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        existing.to_owned()
    };
    (base, missing.iter().rev().collect())
}

/// An exclusive `flock`, released when dropped.
#[derive(Debug)]
pub struct Lock(File);

/// Why [`Lock::acquire`] failed.
#[derive(Debug)]
pub enum LockError {
    /// The lock file could not be opened or locked.
    Io(io::Error),
    /// Another holder kept it past the timeout.
    TimedOut,
}

impl Lock {
    /// Locks `file`, polling until `timeout` (a stuck holder becomes an error, not a hang), or
    /// waiting as long as it takes when `timeout` is `None`.
    pub fn acquire(file: File, timeout: Option<Duration>) -> Result<Lock, LockError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut pause = Duration::from_millis(1);
        let how = if deadline.is_some() {
            libc::LOCK_EX | libc::LOCK_NB
        } else {
            libc::LOCK_EX
        };
        loop {
            // SAFETY: flock on a descriptor owned by `file`; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), how) } == 0 {
                return Ok(Lock(file));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(code) if code == libc::EWOULDBLOCK || code == libc::EAGAIN => {}
                _ => return Err(LockError::Io(e)),
            }
            match deadline {
                Some(d) if Instant::now() >= d => return Err(LockError::TimedOut),
                _ => {}
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Explicit, in case a forked child shares the descriptor; closing would not release it.
        // SAFETY: as in `acquire`.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mkfifo(path: &Path) {
        let c = cstring(path.as_os_str()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn only_regular_files_are_read_and_links_only_when_followed() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let e = read_regular(&fifo, Follow::Yes, 100).unwrap_err();
        assert!(format!("{e:?}").contains("FIFO"), "{e:?}");
        let file = dir.path().join("f");
        std::fs::write(&file, "12345").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(
            &*read_regular(&link, Follow::Yes, 5).unwrap().bytes,
            b"12345"
        );
        let e = read_regular(&link, Follow::No, 5).unwrap_err();
        assert!(format!("{e:?}").contains("symbolic link"), "{e:?}");
        assert!(matches!(
            read_regular(&file, Follow::No, 4),
            Err(ReadError::TooLarge(5))
        ));
        assert!(read_regular(&dir.path().join("absent"), Follow::No, 4)
            .unwrap_err()
            .is_not_found());
    }

    /// The one wording of a read error (the CLI's validate and files, the reload check use it):
    /// the I/O error's text or the size, never the path, which the caller gives.
    #[test]
    fn a_read_error_in_words() {
        let e = ReadError::Io("open", io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(
            e.to_string(),
            io::Error::from_raw_os_error(libc::EACCES).to_string()
        );
        assert_eq!(ReadError::TooLarge(5).to_string(), "5 bytes, too large");
    }

    /// A replacing write never puts a regular file in place of a FIFO, socket, device or
    /// directory (the rename would, for all but the directory): refused, saying what is there,
    /// which is left as it was. A symbolic link is replaced, as before (the link, not its
    /// target).
    #[test]
    fn a_replacing_write_leaves_what_is_not_a_regular_file() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let spec = WriteSpec {
            mode: 0o644,
            owner: None,
            replace: Replace::Allowed,
            temporary: ".t.tmp".into(),
            remove_stale_temporary: false,
        };
        mkfifo(&dir.path().join("fifo"));
        let _l = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        std::fs::create_dir(dir.path().join("dir")).unwrap();
        for (name, kind) in [
            ("fifo", "a named pipe (FIFO)"),
            ("sock", "a socket"),
            ("dir", "a directory"),
        ] {
            let e = d.write(OsStr::new(name), b"x", &spec).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name}: {e}");
            assert!(
                e.to_string()
                    .contains(&format!("it is {kind}, not a regular file")),
                "{e}"
            );
            assert!(!dir.path().join(".t.tmp").exists());
        }
        let t = std::fs::symlink_metadata(dir.path().join("fifo"))
            .unwrap()
            .file_type();
        assert!(t.is_fifo());
        let t = std::fs::symlink_metadata(dir.path().join("sock"))
            .unwrap()
            .file_type();
        assert!(t.is_socket());
        // A regular file and a link are replaced.
        std::fs::write(dir.path().join("f"), "old").unwrap();
        d.write(OsStr::new("f"), b"new", &spec).unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"new");
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        d.write(OsStr::new("l"), b"link", &spec).unwrap();
        assert!(std::fs::symlink_metadata(dir.path().join("l"))
            .unwrap()
            .is_file());
    }

    #[test]
    fn made_directories_have_their_mode_and_links_below_the_base_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let made = make_dirs(dir.path(), Path::new("a/b"), 0o751, None).unwrap();
        assert_eq!(made.path(), dir.path().join("a/b"));
        for d in ["a", "a/b"] {
            let mode = std::fs::metadata(dir.path().join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o751, "{d}");
        }
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("l")).unwrap();
        let e = make_dirs(dir.path(), Path::new("l/b"), 0o700, None).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }

    #[test]
    fn both_walks_skip_dot_and_refuse_to_leave_their_base() {
        let dir = tempfile::tempdir().unwrap();
        let made = make_dirs(dir.path(), Path::new("./a/./b"), 0o700, None).unwrap();
        assert_eq!(made.path(), dir.path().join("a/b"));
        let opened = Dir::open(dir.path())
            .unwrap()
            .open_below(Path::new("./a/b"), |_, _| Ok(()))
            .unwrap();
        assert_eq!(opened.path(), dir.path().join("a/b"));
        for below in ["a/../b", "/a", ".."] {
            let e = make_dirs(dir.path(), Path::new(below), 0o700, None).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{below}: {e}");
            let e = Dir::open(dir.path())
                .unwrap()
                .open_below(Path::new(below), |_, _| Ok(()))
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{below}: {e}");
            assert!(e.to_string().contains("not a plain relative"), "{e}");
        }
        assert!(!dir.path().join("b").exists());
        // Refused before anything is made.
        let e = make_dirs(dir.path(), Path::new("c/../d"), 0o700, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(!dir.path().join("c").exists());
    }

    #[test]
    fn copies_keep_mode_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dir::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("k"), "one").unwrap();
        std::fs::set_permissions(dir.path().join("k"), PermissionsExt::from_mode(0o640)).unwrap();
        let first = d.keep_copy(OsStr::new("k"), "T", 100).unwrap();
        let second = d.keep_copy(OsStr::new("k"), "T", 100).unwrap();
        assert_eq!(first, "k.bak-T");
        assert_eq!(second, "k.bak-T-1");
        let meta = std::fs::metadata(dir.path().join(&second)).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!(d.names_starting_with("k.bak-").unwrap().len(), 2);
    }
}
