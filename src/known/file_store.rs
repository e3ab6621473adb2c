//! The known-servers store in a file, [`KnownServers`]: the owner and mode checks, the lock
//! writers take, the atomic replacement of the file and the snapshot lookups read, refreshed
//! when the file changes. What the file says is parsed by the format module (`format.rs`).

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::fsutil::{self, Dir, LockError, ReadError, Replace, WriteSpec};

use super::format::{parse_chunks, serialize, update_banner, Chunk, Parsed, Text, NEW_FILE_BANNER};
use super::{
    decide, new_server, Added, CertFacts, Fingerprint, HostKey, KnownServer, KnownServersStore,
    StoreProblem, TrustStatus,
};

/// How long [`KnownServers::add`] and [`KnownServers::remove`] wait for another writer.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed file with its index: what lookups read.
#[derive(Default)]
struct Snapshot {
    chunks: Vec<Chunk>,
    /// The chunk of each host's entry, and its line for messages.
    by_host: HashMap<HostKey, (usize, usize)>,
    /// Certificates trusted for any host.
    any_host: HashSet<Fingerprint>,
    problems: Vec<StoreProblem>,
}

impl Snapshot {
    fn new(chunks: Vec<Chunk>) -> Snapshot {
        let mut snapshot = Snapshot {
            chunks,
            ..Snapshot::default()
        };
        let mut line = 1;
        for (index, chunk) in snapshot.chunks.iter().enumerate() {
            match chunk {
                Chunk::Comment(_) => {}
                Chunk::Damaged { why, .. } => snapshot.problems.push(StoreProblem::new(line, why)),
                Chunk::Server { server, .. } => match &server.key {
                    None => {
                        snapshot.any_host.insert(server.cert_sha256);
                    }
                    Some(key) => match snapshot.by_host.entry(key.clone()) {
                        MapEntry::Vacant(slot) => {
                            slot.insert((index, line));
                        }
                        MapEntry::Occupied(first) => snapshot.problems.push(StoreProblem::new(
                            line,
                            &format!(
                                "entry for {key}: ignored, the entry on line {} is used",
                                first.get().1
                            ),
                        )),
                    },
                },
            }
            line += chunk.text().lines();
        }
        snapshot
    }

    fn server(&self, key: &HostKey) -> Option<&KnownServer> {
        let (index, _) = self.by_host.get(key)?;
        match &self.chunks[*index] {
            Chunk::Server { server, .. } => Some(server),
            _ => None,
        }
    }

    fn lookup(&self, key: &HostKey, presented: &CertFacts) -> TrustStatus {
        let for_port = if key.port == 0 {
            None
        } else {
            self.server(key)
        };
        let any_port = self.server(&key.any_port());
        decide(
            [for_port, any_port],
            self.any_host.contains(&presented.cert),
            presented,
        )
    }

    /// The entries lookups use: not the duplicates that `problems` reports.
    fn entries(&self) -> Vec<KnownServer> {
        let used =
            |index: usize, key: &HostKey| self.by_host.get(key).map(|&(i, _)| i) == Some(index);
        self.chunks
            .iter()
            .enumerate()
            .filter_map(|(index, chunk)| match chunk {
                Chunk::Server { server, .. } => match &server.key {
                    Some(key) if !used(index, key) => None,
                    _ => Some(server.clone()),
                },
                _ => None,
            })
            .collect()
    }
}

fn store_error(message: String) -> Error {
    Error::new(ErrorKind::Store, message)
}

/// `PATH` with `suffix` appended to its file name, e.g. `known.pem.lock`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Another user who could write the file or its directory could make us trust any server.
/// `what` names the file or directory for the message, `path` is it.
fn check_owner_and_mode(what: &str, path: &Path, meta: &fs::Metadata) -> Result<()> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(store_error(format!(
            "{what} is writable by other users (mode {mode:04o}), so they could make you trust \
             any server; run `chmod go-w {}`",
            crate::display::shell_path(path)
        )));
    }
    // SAFETY: getuid cannot fail and has no preconditions.
    let me = unsafe { libc::getuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(store_error(format!(
            "{what} belongs to user id {}, not to you (user id {me}) nor to root, so they could \
             make you trust any server; run `chown {me} {}` or use another file",
            meta.uid(),
            crate::display::shell_path(path)
        )));
    }
    Ok(())
}

/// The store's directory, opened once for one operation (a read, or a writer's lock, read and
/// replace) and checked through that descriptor: everything after is relative to it, so a
/// directory swapped in by path meanwhile is never the one used. `None` when it is missing.
fn open_directory(store: &Path) -> Result<Option<Dir>> {
    let path = directory_of(store);
    match Dir::open(path) {
        Ok(dir) => {
            check_directory(store, &dir)?;
            Ok(Some(dir))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(store_error(format!(
            "cannot open the directory {} of the known-servers store {}: {e}",
            path.display(),
            store.display()
        ))
        .with_source(e)),
    }
}

/// Checks the open directory of `store` by its `fstat` (owner and mode).
fn check_directory(store: &Path, dir: &Dir) -> Result<()> {
    let what = || {
        format!(
            "the directory {} of the known-servers store {}",
            dir.path().display(),
            store.display()
        )
    };
    match dir.metadata() {
        Ok(meta) => check_owner_and_mode(&what(), dir.path(), &meta),
        Err(e) => Err(store_error(format!("cannot check {}: {e}", what())).with_source(e)),
    }
}

/// Creates the missing directories of `store` (mode 0700, relative to the deepest existing
/// one, not through links) and returns its directory, open and checked.
///
/// Root making a store below another user's directory (`sudo -E` keeps that user's HOME) is
/// refused: the store would be a root-owned 0600 file in a root-owned directory of their home,
/// which they could neither read nor replace, and which root would refuse to read as theirs.
fn make_directory(store: &Path) -> Result<Dir> {
    let path = directory_of(store);
    let (existing, missing) = fsutil::existing_and_missing(path);
    let base = Dir::open(&existing).map_err(|e| Error::io("open the directory", &existing, e))?;
    let meta = base
        .metadata()
        .map_err(|e| Error::io("check the directory", &existing, e))?;
    // SAFETY: geteuid cannot fail and has no preconditions.
    if unsafe { libc::geteuid() } == 0 && meta.uid() != 0 {
        return Err(store_error(format!(
            "the known-servers store {} would be made by root in {}, which belongs to user id \
             {}: that user could not read it. Run this as that user (not with sudo -E), or \
             keep root's store in a directory of root's",
            store.display(),
            existing.display(),
            meta.uid()
        )));
    }
    let dir = fsutil::make_dirs_in(base, &missing, 0o700, None)
        .map_err(|e| Error::io("create the directory", path, e))?;
    check_directory(store, &dir)?;
    Ok(dir)
}

/// The store file's name in its directory.
fn file_name(store: &Path) -> &std::ffi::OsStr {
    store.file_name().unwrap_or_default()
}

/// The largest store file read: room for 100,000 entries (the size the design measures) of
/// RSA-4096 certificates, about 2.5 KB each with their host line. A bigger file is a mistake
/// or an attack on memory, refused before it is read.
pub const MAX_STORE_SIZE: u64 = 256 * 1024 * 1024;

/// The store file `path` as read through its open directory `dir`, and the `fstat` of the
/// descriptor read (its identity and mode). A missing file (or directory) is an empty store.
///
/// The file is opened not following a link at its name (the writer replaces it by rename, so
/// a link would be replaced by a file anyway, and the link's target directory could not be
/// checked), non-blocking so that a FIFO put in its place is refused instead of hanging, and
/// checked with `fstat` before it is read.
fn read_store(dir: Option<&Dir>, path: &Path) -> Result<(Vec<u8>, Option<fs::Metadata>)> {
    let Some(dir) = dir else {
        return Ok((Vec::new(), None));
    };
    let mut read = match dir.read(file_name(path), MAX_STORE_SIZE) {
        Ok(read) => read,
        Err(e) if e.is_not_found() => return Ok((Vec::new(), None)),
        Err(ReadError::TooLarge(len)) => {
            return Err(store_error(format!(
                "the known-servers store {} is {len} bytes, over the cap of {} MiB for a \
                 known-servers file; it is not read",
                path.display(),
                MAX_STORE_SIZE / (1024 * 1024)
            )))
        }
        Err(ReadError::Io(_, e)) if e.kind() == io::ErrorKind::InvalidInput => {
            return Err(
                store_error(format!("the known-servers store {}: {e}", path.display()))
                    .with_source(e),
            )
        }
        Err(ReadError::Io(op, e)) => {
            return Err(store_error(format!(
                "cannot {op} the known-servers store {}: {e}",
                path.display()
            ))
            .with_source(e))
        }
    };
    let what = format!("the known-servers store {}", path.display());
    check_owner_and_mode(&what, path, &read.meta)?;
    // The store holds certificates only, nothing to wipe.
    Ok((std::mem::take(&mut *read.bytes), Some(read.meta)))
}

/// An exclusive `flock` on `STORE.lock`, held by a writer from reading to renaming.
struct StoreLock {
    /// Released when dropped.
    _lock: fsutil::Lock,
}

impl StoreLock {
    /// Locks `store` through its open directory `dir`.
    fn acquire(dir: &Dir, store: &Path) -> Result<StoreLock> {
        let path = sibling(store, ".lock");
        let cannot = |e: io::Error| {
            store_error(format!(
                "cannot open the lock file {} of the known-servers store: {e}",
                path.display()
            ))
            .with_source(e)
        };
        let file = dir
            .open_lock_file(path.file_name().unwrap_or_default())
            .map_err(cannot)?;
        // Polling rather than blocking, so that a stuck writer becomes an error, not a hang.
        match fsutil::Lock::acquire(file, Some(LOCK_TIMEOUT)) {
            Ok(lock) => Ok(StoreLock { _lock: lock }),
            Err(LockError::TimedOut) => Err(store_error(format!(
                "the known-servers store {} is locked: another process has held {} for more \
                 than {} seconds",
                store.display(),
                path.display(),
                LOCK_TIMEOUT.as_secs()
            ))),
            Err(LockError::Io(e)) => Err(store_error(format!(
                "cannot lock {} for the known-servers store: {e}",
                path.display()
            ))
            .with_source(e)),
        }
    }
}

/// Replaces `path` (in its open directory `dir`) by `bytes` so that, whenever the process
/// dies, `path` is the old or the new file: write a temporary file beside it, fsync, rename,
/// fsync the directory. Returns the new file's identity, `None` if it cannot be taken (the
/// next lookup then reads the file again).
fn replace_file(dir: &Dir, path: &Path, bytes: &[u8], mode: u32) -> Result<Option<FileIdentity>> {
    let name = file_name(path);
    let spec = WriteSpec {
        mode,
        owner: None,
        replace: Replace::Allowed,
        temporary: sibling(Path::new(name), ".tmp").into_os_string(),
        // Only the lock holder writes the temporary file: one left by a killed writer is stale.
        remove_stale_temporary: true,
    };
    dir.write(name, bytes, &spec)
        .map_err(|e| Error::io("replace", path, e))?;
    Ok(dir
        .metadata_of(name)
        .ok()
        .map(|m| FileIdentity::of_metadata(&m)))
}

/// What tells one version of the store file from another without reading it, from one
/// `stat`: a write by rename (as the store writes) gives another inode and ctime, an edit in
/// place another size, mtime or ctime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    fn of_metadata(meta: &fs::Metadata) -> FileIdentity {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The identity of what is at `path` now (a link's own, as the file is read not through a
    /// link); `None` when it is missing (an empty store). One `lstat`, for the check before a
    /// lookup; what was read is identified by the `fstat` of the descriptor read.
    fn of(path: &Path) -> Result<Option<FileIdentity>> {
        match fs::symlink_metadata(path) {
            Ok(meta) => Ok(Some(FileIdentity::of_metadata(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(store_error(format!(
                "cannot check the known-servers store {}: {e}",
                path.display()
            ))
            .with_source(e)),
        }
    }
}

/// A snapshot and the version of the file it was read from.
#[derive(Default)]
struct Loaded {
    snapshot: Snapshot,
    /// `Some(None)`: read when the file was missing. `None`: the last read failed, so the
    /// snapshot is empty and the next use reads again.
    from: Option<Option<FileIdentity>>,
}

/// The known-servers store in a file, in the format the module documentation describes.
///
/// Opening reads and indexes the file; a lookup then costs the same however many entries there
/// are. Each [`lookup`](Self::lookup) first `stat`s the file and reads it again if it is
/// another file than the one read last (device, inode, size, mtime or ctime differ), so that an
/// entry another process removed stops being trusted at once; if that read fails, the lookup
/// fails, it does not fall back to what the old file said. [`add`](Self::add) and
/// [`remove`](Self::remove) re-read the file under the lock, so that they keep what other
/// processes wrote meanwhile, and leave the snapshot equal to the file they wrote.
/// [`entries`](Self::entries) and [`problems`](Self::problems) show the file as last read;
/// [`reload`](Self::reload) reads it again unconditionally. (Every write of the store makes a
/// new file, so none is missed; only an edit in place by another program that keeps the size
/// and lands in the same timestamp tick as the last read goes unseen until the next change.)
pub struct KnownServers {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

impl fmt::Debug for KnownServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnownServers")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KnownServers {
    /// Reads the store at `path`; a missing file is an empty store, created on the first add.
    ///
    /// Fails with [`ErrorKind::Store`] if the file cannot be read, or if the file or its
    /// directory is writable by other users or belongs to another user than the caller or root.
    /// Damaged entries do not fail it: see [`problems`](Self::problems).
    pub fn open(path: impl AsRef<Path>) -> Result<KnownServers> {
        let path = path.as_ref().to_owned();
        let loaded = Self::load(&path)?;
        Ok(KnownServers {
            path,
            loaded: RwLock::new(loaded),
        })
    }

    /// Reads the file through its directory, opened and checked once. Its identity is the
    /// `fstat` of the descriptor read, taken before reading, so that a change made while it
    /// is read makes the next use read it again rather than go unnoticed.
    fn load(path: &Path) -> Result<Loaded> {
        let dir = open_directory(path)?;
        let (source, meta) = read_store(dir.as_ref(), path)?;
        Ok(Loaded {
            snapshot: Snapshot::new(parse_chunks(&source).chunks),
            from: Some(meta.as_ref().map(FileIdentity::of_metadata)),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The damaged parts of the file as last read or written, by line. Lookups ignore them;
    /// writes keep them.
    pub fn problems(&self) -> Vec<StoreProblem> {
        self.loaded().snapshot.problems.clone()
    }

    /// Reads the file again, whether or not it changed. If that fails, the store is empty
    /// until a read succeeds.
    pub fn reload(&self) -> Result<()> {
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        *loaded = Self::load(&self.path).inspect_err(|_| *loaded = Loaded::default())?;
        Ok(())
    }

    fn loaded(&self) -> RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `use_it` on the snapshot of the file as it is now: one `stat`, and a read only if
    /// the file is not the one read last. A failed read is an error, and leaves the store
    /// empty: a trust decision is never made on a file that is no longer there.
    fn with_current<T>(&self, use_it: impl FnOnce(&Snapshot) -> T) -> Result<T> {
        let now = Some(FileIdentity::of(&self.path)?);
        {
            let loaded = self.loaded();
            if loaded.from == now {
                return Ok(use_it(&loaded.snapshot));
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have read it meanwhile.
        if loaded.from != now {
            *loaded = Self::load(&self.path).inspect_err(|_| *loaded = Loaded::default())?;
        }
        Ok(use_it(&loaded.snapshot))
    }

    /// See [`KnownServersStore::lookup`]. Reads the file again first if it changed.
    pub fn lookup(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<TrustStatus> {
        let key = HostKey::new(host, port)?;
        let presented = CertFacts::of_argument(cert_der, host)?;
        self.with_current(|snapshot| snapshot.lookup(&key, &presented))
    }
    /// See [`KnownServersStore::add`]. Creates the file (mode 0600), and its directory (mode
    /// 0700) if missing.
    pub fn add(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<()> {
        self.add_entry(host, port, cert_der, true).map(|_| ())
    }

    /// [`add`](Self::add) for a person's explicit choice (`virtpki known add`): with `replace`
    /// false, an entry for this host and port with another certificate is kept and returned
    /// ([`Added::Kept`]), decided under the store's lock so that no other writer comes
    /// between. Pinning is no verification: check the certificate first
    /// ([`super::check_server_certificate`]).
    pub fn add_entry(
        &self,
        host: &str,
        port: Option<u16>,
        cert_der: &[u8],
        replace: bool,
    ) -> Result<Added> {
        let key = HostKey::new(host, port)?;
        let facts = CertFacts::of_argument(cert_der, host)?;
        let server = new_server(key.clone(), cert_der, facts);
        let dir = match open_directory(&self.path)? {
            Some(dir) => dir,
            None => make_directory(&self.path)?,
        };
        let mut added = Added::New;
        self.rewrite(dir, |chunks| {
            // The same certificate recorded once already: leave the file (and its `added`
            // time) alone, so that a validator answering "always" costs no write.
            let mut entries = chunks.iter().filter(|c| c.is_entry_for(&key));
            let first = entries.next();
            if let (Some(Chunk::Server { server: old, .. }), None) = (first, entries.next()) {
                if old.cert_der() == cert_der {
                    added = Added::AlreadyThere;
                    return false;
                }
            }
            if let Some(Chunk::Server { server: old, .. }) = first {
                if !replace {
                    added = Added::Kept(old.clone());
                    return false;
                }
                added = Added::Replaced(old.clone());
            }
            let mut new = Some(Chunk::for_new_server(server));
            let mut kept = Vec::with_capacity(chunks.len() + 1);
            for chunk in chunks.drain(..) {
                if chunk.is_entry_for(&key) {
                    // The new entry takes the place of the first old one.
                    kept.extend(new.take());
                } else {
                    kept.push(chunk);
                }
            }
            if kept.is_empty() {
                kept.push(Chunk::Comment(Text::New(NEW_FILE_BANNER.into())));
            }
            kept.extend(new);
            *chunks = kept;
            true
        })?;
        Ok(added)
    }

    /// See [`KnownServersStore::remove`].
    pub fn remove(&self, host: &str, port: Option<u16>) -> Result<bool> {
        let key = HostKey::new(host, port)?;
        let Some(dir) = open_directory(&self.path)? else {
            // Nothing was ever stored there: no directory to create and lock just to say so.
            self.reload()?;
            return Ok(false);
        };
        let mut found = false;
        self.rewrite(dir, |chunks| {
            let before = chunks.len();
            chunks.retain(|chunk| !chunk.is_entry_for(&key));
            found = chunks.len() != before;
            found
        })?;
        Ok(found)
    }

    /// See [`KnownServersStore::entries`]. In file order, as last read or written.
    pub fn entries(&self) -> Vec<KnownServer> {
        self.loaded().snapshot.entries()
    }

    /// The read-modify-write cycle of every change, under the lock, all through `dir`, the
    /// store's directory opened (and checked) once. `change` returns whether it changed
    /// anything; if not, nothing is written.
    fn rewrite(&self, dir: Dir, change: impl FnOnce(&mut Vec<Chunk>) -> bool) -> Result<()> {
        let _lock = StoreLock::acquire(&dir, &self.path)?;
        let (source, meta) = read_store(Some(&dir), &self.path)?;
        let read_from = meta.as_ref().map(FileIdentity::of_metadata);
        let mode = meta.as_ref().map(|m| m.mode() & 0o777);
        let Parsed {
            mut chunks,
            plain_bundle,
        } = parse_chunks(&source);
        let from = if change(&mut chunks) {
            if plain_bundle {
                chunks.iter_mut().for_each(|c| c.make_explicit(&source));
            }
            update_banner(&mut chunks, &source);
            // Taken under the lock: no other writer of the store can have come between. If
            // it cannot be taken, the next lookup reads the file again.
            replace_file(
                &dir,
                &self.path,
                &serialize(&source, &chunks),
                mode.unwrap_or(0o600),
            )?
            .map(Some)
        } else {
            Some(read_from)
        };
        // Still under the lock, so that snapshots are replaced in the order files were written.
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = Loaded {
            snapshot: Snapshot::new(chunks),
            from,
        };
        Ok(())
    }
}

impl KnownServersStore for KnownServers {
    fn lookup(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<TrustStatus> {
        KnownServers::lookup(self, host, port, cert_der)
    }

    fn add(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<()> {
        KnownServers::add(self, host, port, cert_der)
    }

    fn remove(&self, host: &str, port: Option<u16>) -> Result<bool> {
        KnownServers::remove(self, host, port)
    }

    /// Reads the file again first if it changed.
    fn entries(&self) -> Result<Vec<KnownServer>> {
        self.with_current(Snapshot::entries)
    }
}
