//! Whether `virt-admin server-update-tls` may reload a running daemon's TLS files, and where
//! its admin socket is.
//!
//! libvirt's `virNetServerUpdateTlsFiles` (since 6.2) does not re-read the files the daemon
//! started with: it locates them afresh with no pkipath, which for a system daemon is always
//! libvirt's default set (/etc/pki/CA/cacert.pem, cacrl.pem, /etc/pki/libvirt/servercert.pem,
//! private/serverkey.pem, as [`Environment::system_file`] has them), whatever the daemon's
//! `ca_file`, `cert_file`, `key_file` and `crl_file` say. A daemon configured with other files
//! would load something else on a reload (or fail, leaving it as it was), so such a daemon is
//! refused here with the fix of restarting it. Paths are compared as written (component by
//! component): a setting that names the default file through another spelling or a link is
//! refused too, which is safe, as a restart always reads what the configuration says.
//!
//! The admin socket is `RUNSTATEDIR/libvirt/PREFIX-admin-sock` for a system daemon, or
//! `UNIX_SOCK_DIR/PREFIX-admin-sock` when `unix_sock_dir` is set (libvirt's
//! `virDaemonUnixSocketPaths`), where PREFIX is `libvirt` for libvirtd and the daemon's name for
//! the modular ones. Under systemd socket activation (the distributions' default) libvirt does
//! not honour `unix_sock_dir`: the socket unit puts it in /run/libvirt, so both places are
//! tried ([`ReloadCheck::admin_sockets`]). A relative `unix_sock_dir` is below / (the daemon's
//! working directory under systemd and after `--daemon`).
//!
//! The CRL is the one file a reload may load where the start did not: with `ca_file`,
//! `cert_file` or `key_file` set, libvirtd loads only the CRL `crl_file` names (none when it is
//! not set), while a reload loads /etc/pki/CA/cacrl.pem whenever it is there.

use std::path::{Path, PathBuf};

use super::{audit::rerooted, DaemonConf, SettingError};
use crate::data_type::CertDataType;
use crate::error::{ErrorKind, Result};
use crate::locations::Environment;

/// Where system daemons put their sockets when `unix_sock_dir` is not set (RUNSTATEDIR is
/// /run on the distributions libvirt supports; /var/run links to it).
const RUN_DIR: &str = "/run/libvirt";

/// Where system daemons read their configuration files.
const CONF_DIR: &str = "/etc/libvirt";

/// Where system daemons write their pid files (RUNSTATEDIR).
const PID_DIR: &str = "/run";

/// The most a pid file or a process's command line may hold (Linux caps arguments at about
/// 2 MiB; a daemon's are a few words).
const MAX_PROC_FILE: u64 = 4 * 1024 * 1024;

/// A libvirt daemon that serves TLS and whose credentials `server-update-tls` reloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Daemon {
    /// The monolithic daemon.
    Libvirtd,
    /// The modular daemons' remote-access proxy.
    Virtproxyd,
}

impl Daemon {
    /// Every daemon that can serve TLS, in the order they are reloaded.
    pub const ALL: [Daemon; 2] = [Daemon::Libvirtd, Daemon::Virtproxyd];

    /// The daemon's name: also its admin server's name, its admin URI scheme and its systemd
    /// unit.
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Libvirtd => "libvirtd",
            Daemon::Virtproxyd => "virtproxyd",
        }
    }

    /// The prefix of its socket names (libvirtd keeps the historical `libvirt`).
    fn socket_prefix(self) -> &'static str {
        match self {
            Daemon::Libvirtd => "libvirt",
            Daemon::Virtproxyd => "virtproxyd",
        }
    }

    /// Its pid file under `root`: `/run/NAME.pid` (libvirt's `virPidFileConstructPath` for a
    /// privileged daemon; `-p FILE` puts it elsewhere, and then it is not found).
    pub fn pid_file(self, root: &Path) -> PathBuf {
        rerooted(
            root,
            &Path::new(PID_DIR).join(format!("{}.pid", self.name())),
        )
    }

    /// Its configuration file under `root`: `/etc/libvirt/NAME.conf`.
    pub fn conf_file(self, root: &Path) -> PathBuf {
        rerooted(
            root,
            &Path::new(CONF_DIR).join(format!("{}.conf", self.name())),
        )
    }

    /// The virt-admin URI that reaches the daemon through `socket`. The path is
    /// percent-encoded but for letters, digits and `-._~/` (libvirt decodes query values), so
    /// that a space, `&` or `#` in it cannot end the parameter or the URI.
    pub fn admin_uri(self, socket: &Path) -> String {
        use std::os::unix::ffi::OsStrExt;
        let mut path = String::new();
        for &b in socket.as_os_str().as_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                path.push(char::from(b));
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
        format!("{}:///system?socket={path}", self.name())
    }

    /// The command that takes every file afresh when a reload cannot.
    pub fn restart_command(self) -> String {
        format!("systemctl restart {}", self.name())
    }
}

/// A TLS file setting that names another file than the one a reload reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherFile {
    /// `ca_file`, `cert_file`, `key_file` or `crl_file`; or `unix_sock_dir` when its value
    /// cannot be read (a wrong type), so that the socket is not known.
    pub setting: &'static str,
    /// The value as the file gives it.
    pub configured: String,
    /// The file `server-update-tls` reads instead (none for `unix_sock_dir`).
    pub reload_reads: Option<PathBuf>,
    /// The line it is set on, counting from 1.
    pub line: usize,
    /// What is wrong, naming the file and line.
    pub message: String,
}

/// How the configuration file a running daemon reads was found ([`ConfSource::find`]).
///
/// libvirt's daemons take `-f FILE`/`--config FILE` (a packaging default such as Debian's
/// /etc/default/libvirtd may add it), and read that file instead of /etc/libvirt/NAME.conf.
/// The running daemon is the pid its pid file holds, when that process holds the file's lock;
/// who runs it is `/proc/PID/status`, its command line `/proc/PID/cmdline`. Nothing else in
/// /proc is read: no process is looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfSource {
    /// The daemon was started with `-f`/`--config` naming this file (as given: absolute).
    CommandLine {
        /// The running daemon's pid, from its pid file.
        pid: u32,
        /// The file its command line names.
        file: PathBuf,
    },
    /// The daemon's command line names no file: it reads libvirt's default one.
    Default {
        /// The running daemon's pid, from its pid file.
        pid: u32,
    },
    /// Which file it reads cannot be told (no pid file, one not trusted, one whose pid does
    /// not hold its lock, as a stale one's, a command line that cannot be read): libvirt's
    /// default is checked, and this says why.
    Unknown(String),
}

impl ConfSource {
    /// Finds the configuration file `daemon` runs with under `root`: its pid file
    /// ([`Daemon::pid_file`]), then `/proc/PID/status` and `/proc/PID/cmdline` under the same
    /// root. Fails when the command line names a file that cannot be known (a relative path:
    /// it was relative to the daemon's working directory at its start, which it has since
    /// left).
    ///
    /// What is trusted to name the daemon: a pid file that only root can have written (root's,
    /// not writable by group or others, not a symbolic link), locked by the process it names
    /// (a running libvirt daemon holds a write lock on its pid file's first byte, and a stale
    /// file's pid may since have been given to any process, root's included: an unlocked
    /// file is no running daemon), which root started (real, effective and saved uids root,
    /// from `status`: the owner of `cmdline` is root for any process that made itself
    /// non-dumpable, and a set-user-ID program runs as root with its caller's arguments).
    /// Both files are read through one descriptor of `/proc/PID`, opened before the lock is
    /// asked about again, so they are of the lock's holder even if the pid is reused
    /// meanwhile. Under a test root (not `/`), the caller's own uid stands in for root; the
    /// lock is asked of the real file.
    ///
    /// Not for the daemon itself: `F_GETLK` never reports the caller's own lock, and closing
    /// the pid file's descriptor here would drop it (a POSIX record lock belongs to the
    /// process, and any close of the file releases it). libvirt locks with `fcntl` `F_SETLK`
    /// (`virFileLock`), not open-file-description locks, which is what this asks about.
    pub fn find(daemon: Daemon, root: &Path) -> Result<ConfSource> {
        use std::os::unix::fs::MetadataExt;
        let pid_file = daemon.pid_file(root);
        let trusted = super::access::root_stand_in(root);
        let opened = crate::fsutil::open_regular(&pid_file, crate::fsutil::Follow::No)
            .map_err(|e| crate::fsutil::ReadError::Io("open", e))
            .and_then(|(file, meta)| {
                crate::fsutil::read_capped(&file, meta, MAX_PROC_FILE).map(|r| (file, r))
            });
        let (file, pid) = match opened {
            Ok((_, r)) if !trusted(r.meta.uid()) => {
                return Ok(ConfSource::Unknown(format!(
                    "its pid file {} belongs to uid {}, not root: not trusted to name the daemon",
                    pid_file.display(),
                    r.meta.uid()
                )))
            }
            Ok((_, r)) if r.meta.mode() & 0o022 != 0 => {
                return Ok(ConfSource::Unknown(format!(
                    "its pid file {} is writable by others (mode {:04o}): not trusted to name \
                     the daemon",
                    pid_file.display(),
                    r.meta.mode() & 0o7777
                )))
            }
            Ok((file, r)) => (
                file,
                String::from_utf8_lossy(&r.bytes).trim().parse::<u32>().ok(),
            ),
            Err(e) if e.is_not_found() => {
                return Ok(ConfSource::Unknown(format!(
                    "no pid file at {} (the daemon does not run, or was started with -p)",
                    pid_file.display()
                )))
            }
            Err(e) => {
                return Ok(ConfSource::Unknown(format!(
                    "its pid file {} cannot be read: {e}",
                    pid_file.display()
                )))
            }
        };
        let Some(pid) = pid.filter(|&p| p > 0) else {
            return Ok(ConfSource::Unknown(format!(
                "its pid file {} holds no pid",
                pid_file.display()
            )));
        };
        // A pid file outlives its daemon after a crash, and its pid may then be anyone's,
        // even another root process's: only the daemon holding the file's lock is believed.
        if let Some(why) = lock_refusal(&file, pid, &pid_file) {
            return Ok(ConfSource::Unknown(why));
        }
        let proc_dir = rerooted(root, &Path::new("/proc").join(pid.to_string()));
        // Past the lock check the process ran: a file of its /proc gone since is its exit.
        let gone = |path: &Path| {
            ConfSource::Unknown(format!(
                "{} is not there: pid {pid} of {} has exited while it was looked at",
                path.display(),
                pid_file.display()
            ))
        };
        let dir = match crate::fsutil::Dir::open(&proc_dir) {
            Ok(dir) => dir,
            // It holds the lock, so it runs: this /proc does not show it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConfSource::Unknown(format!(
                    "{} is not there, though pid {pid} runs (it holds the lock of {}): the \
                     root's /proc is not the daemon's, or hides other users' processes \
                     (mounted with hidepid: run as root)",
                    proc_dir.display(),
                    pid_file.display()
                )))
            }
            Err(e) => {
                return Ok(ConfSource::Unknown(format!(
                    "{} (pid {pid} of {}) cannot be opened: {e}",
                    proc_dir.display(),
                    pid_file.display()
                )))
            }
        };
        // The directory is of the process that had the pid when it was opened; that it still
        // holds the lock now makes it the daemon (a process that took the pid since would
        // hold no lock, and the directory of one gone reads nothing).
        if let Some(why) = lock_refusal(&file, pid, &pid_file) {
            return Ok(ConfSource::Unknown(why));
        }
        // Relative to the one descriptor: the same process for both, or an error (ESRCH)
        // once it is gone.
        let read = |name: &str| {
            dir.read(std::ffi::OsStr::new(name), MAX_PROC_FILE)
                .map(|r| r.bytes)
                .map_err(|e| {
                    if e.is_not_found() {
                        return gone(&proc_dir.join(name));
                    }
                    ConfSource::Unknown(format!(
                        "{} (pid {pid} of {}) cannot be read: {e}",
                        proc_dir.join(name).display(),
                        pid_file.display()
                    ))
                })
        };
        let status = match read("status") {
            Ok(bytes) => bytes,
            Err(unknown) => return Ok(unknown),
        };
        let status_path = proc_dir.join("status");
        match process_uids(&status) {
            None => {
                return Ok(ConfSource::Unknown(format!(
                    "{} has no Uid line with real, effective and saved uids: who runs pid {pid} of \
                     {} cannot be told",
                    status_path.display(),
                    pid_file.display()
                )))
            }
            // A system daemon runs as root: another user's process (one root let hold the
            // lock) has a command line (any file after -f) that user chooses.
            Some(uids) if !uids.iter().all(|&u| trusted(u)) => {
                let uid = uids.iter().copied().find(|&u| !trusted(u)).unwrap_or(0);
                return Ok(ConfSource::Unknown(format!(
                    "pid {pid} of {} runs as uid {uid}, not root (real, effective and saved uids \
                     {}, {}, {} in {}): not a system daemon root started (a set-user-ID \
                     program, or one another user runs)",
                    pid_file.display(),
                    uids[0],
                    uids[1],
                    uids[2],
                    status_path.display()
                )));
            }
            Some(_) => {}
        }
        let mut bytes = match read("cmdline") {
            Ok(bytes) => bytes,
            Err(unknown) => return Ok(unknown),
        };
        // Each argument ends with a NUL: there is no empty argument after the last one.
        if bytes.last() == Some(&0) {
            bytes.pop();
        }
        let args: Vec<&[u8]> = bytes.split(|&b| b == 0).collect();
        let program = args.first().filter(|a| !a.is_empty()).map(|a| {
            let name = a.rsplit(|&b| b == b'/').next().unwrap_or(a);
            String::from_utf8_lossy(name).into_owned()
        });
        if program.as_deref() != Some(daemon.name()) {
            return Ok(ConfSource::Unknown(format!(
                "pid {pid} of {} is not {} but {}: it holds the pid file's lock, but is not \
                 the daemon",
                pid_file.display(),
                daemon.name(),
                crate::display::escape(program.as_deref().unwrap_or(
                    "a process with an empty command line (one that has exited, or a kernel \
                     thread)"
                ))
            )));
        }
        match config_option(&args[1..]) {
            None => Ok(ConfSource::Default { pid }),
            Some(file) => {
                use std::os::unix::ffi::OsStrExt;
                let file = PathBuf::from(std::ffi::OsStr::from_bytes(file));
                if !file.is_absolute() {
                    return Err(crate::error::Error::new(
                        ErrorKind::InvalidArg,
                        format!(
                            "{} (pid {pid}) was started with the configuration file \"{}\", \
                             a relative path: which file that was cannot be told (it was \
                             relative to the directory the daemon started in)",
                            daemon.name(),
                            crate::display::escape(&file.display().to_string())
                        ),
                    ));
                }
                Ok(ConfSource::CommandLine { pid, file })
            }
        }
    }

    /// The daemon whose configuration serves TLS on this host, and how its file was found:
    /// the first of [`Daemon::ALL`] that runs ([`ConfSource::find`] names its pid), else
    /// libvirtd, with why its file cannot be told (under the modular daemons virtproxyd
    /// listens for TLS, and only one of the two runs). The daemon comes with the result, an
    /// error included: `find` of that daemon failed (its relative `-f`), and what reports it
    /// names that daemon.
    pub fn running(root: &Path) -> (Daemon, Result<ConfSource>) {
        let mut first = None;
        for daemon in Daemon::ALL {
            match ConfSource::find(daemon, root) {
                Ok(source) if source.pid().is_none() => {
                    first.get_or_insert((daemon, Ok(source)));
                }
                found => return (daemon, found),
            }
        }
        first.expect("Daemon::ALL is not empty")
    }

    /// The running daemon's pid, when its pid file names it; `None` for
    /// [`ConfSource::Unknown`].
    pub fn pid(&self) -> Option<u32> {
        match self {
            ConfSource::CommandLine { pid, .. } | ConfSource::Default { pid } => Some(*pid),
            ConfSource::Unknown(_) => None,
        }
    }

    /// The stable name of how the file was found, for machine-readable reports:
    /// `command_line`, `default` or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            ConfSource::CommandLine { .. } => "command_line",
            ConfSource::Default { .. } => "default",
            ConfSource::Unknown(_) => "unknown",
        }
    }

    /// The configuration file `daemon` reads under `root`, as this says: the one its command
    /// line names, else libvirt's default ([`Daemon::conf_file`]).
    pub fn file(&self, daemon: Daemon, root: &Path) -> PathBuf {
        match self {
            ConfSource::CommandLine { file, .. } => rerooted(root, file),
            _ => daemon.conf_file(root),
        }
    }

    /// Which file was checked (`file`, [`ConfSource::file`]) and why that one, for people:
    /// the one the running `daemon` ("it") was started with, libvirt's default it runs with,
    /// or the default because which one it reads cannot be told.
    pub fn note(&self, daemon: Daemon, file: &Path) -> String {
        let file = file.display();
        match self {
            ConfSource::CommandLine { pid, .. } => format!(
                "checked {file}, the configuration file it was started with (-f/--config, pid \
                 {pid}), not {}",
                daemon.conf_file(Path::new("/")).display()
            ),
            ConfSource::Default { pid } => {
                format!("checked {file}, the configuration file it runs with (pid {pid})")
            }
            ConfSource::Unknown(why) => format!(
                "checked {file}, libvirt's default configuration file: which one the daemon \
                 reads cannot be told ({why})"
            ),
        }
    }
}

/// Who holds a lock on byte 0 of a file (fcntl's `F_GETLK` for a write lock there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LockHolder {
    /// Nobody: the daemon that wrote the pid file does not run.
    Nobody,
    /// A process holds a write lock, as libvirt's daemons do: its pid as this process sees it
    /// (0 when it is in a pid namespace this one cannot see into).
    Writer(i64),
    /// A read lock (libvirt takes none), or a write lock of no process (an open file
    /// description's, pid -1): not a daemon's.
    Other {
        /// The pid fcntl gives.
        pid: i64,
        /// A read lock (`F_RDLCK`); else a write lock of no process.
        read: bool,
    },
}

/// Who holds the lock a running libvirt daemon keeps on its pid file: libvirt's
/// `virPidFileAcquirePath` takes a POSIX record lock (`fcntl` `F_SETLK`, `F_WRLCK`) on the
/// file's first byte (start 0, length 1) and holds it until it exits. `F_GETLK` asks, without
/// taking a lock, which lock would conflict with a write lock on that byte; the caller's own
/// locks never do (it holds none on a daemon's pid file). Reading needs no write access.
fn lock_holder(file: &std::fs::File) -> std::io::Result<LockHolder> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero flock is a valid value, filled in below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 1;
    // SAFETY: a descriptor `file` owns and a flock fcntl may write.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let pid = i64::from(lock.l_pid);
    Ok(match i32::from(lock.l_type) {
        libc::F_UNLCK => LockHolder::Nobody,
        libc::F_WRLCK if pid >= 0 => LockHolder::Writer(pid),
        t => LockHolder::Other {
            pid,
            read: t == libc::F_RDLCK,
        },
    })
}

/// Why the pid file `file` (at `path`, naming `pid`) does not name a running daemon, from who
/// holds its lock ([`lock_holder`]); `None` when `pid` does, as the daemon that wrote it does.
fn lock_refusal(file: &std::fs::File, pid: u32, path: &Path) -> Option<String> {
    let path = path.display();
    match lock_holder(file) {
        Ok(LockHolder::Writer(holder)) if holder == i64::from(pid) => None,
        Ok(LockHolder::Nobody) => Some(format!(
            "its pid file {path} (pid {pid}) is not locked: a running daemon holds a lock on its \
             pid file, so the daemon does not run (a stale pid file, left by one that stopped)"
        )),
        Ok(LockHolder::Writer(0)) => Some(format!(
            "its pid file {path} names pid {pid} but is locked by a process of another pid \
             namespace: not trusted to name the daemon"
        )),
        Ok(LockHolder::Writer(holder)) => Some(format!(
            "its pid file {path} names pid {pid} but is locked by pid {holder} (a daemon locks \
             its own pid file): not trusted to name the daemon"
        )),
        Ok(LockHolder::Other { pid: holder, read }) => Some(format!(
            "its pid file {path} (pid {pid}) is locked {}, not for writing by a process as a \
             libvirt daemon locks it: not trusted to name the daemon",
            if read {
                format!("for reading by pid {holder}")
            } else {
                "by an open file description".to_owned()
            }
        )),
        Err(e) => Some(format!(
            "whether a daemon holds the lock on its pid file {path} cannot be told: {e}"
        )),
    }
}

/// The real, effective and saved uids of `/proc/PID/status` (its `Uid:` line); `None` when
/// there is no such line with three numbers.
fn process_uids(status: &[u8]) -> Option<[u32; 3]> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut uids = line.split_whitespace().map(|u| u.parse::<u32>().ok());
    Some([uids.next()??, uids.next()??, uids.next()??])
}

/// The value of the last `-f`/`--config` in a daemon's arguments, read as libvirt's
/// `getopt_long` reads them (options `ldf:p:t:vVh`; long options by any unambiguous prefix,
/// their value joined with `=` or the next argument; `--` ends the options). `None` when
/// there is none.
fn config_option<'a>(args: &[&'a [u8]]) -> Option<&'a [u8]> {
    const LONG: [(&str, bool); 8] = [
        ("verbose", false),
        ("daemon", false),
        ("listen", false),
        ("config", true),
        ("timeout", true),
        ("pid-file", true),
        ("version", false),
        ("help", false),
    ];
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        i += 1;
        if arg == b"--" {
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, inline) = match long.iter().position(|&b| b == b'=') {
                Some(at) => (&long[..at], Some(&long[at + 1..])),
                None => (long, None),
            };
            let exact = LONG.iter().find(|(n, _)| n.as_bytes() == name);
            let mut prefixed = LONG.iter().filter(|(n, _)| n.as_bytes().starts_with(name));
            let option = exact.or_else(|| match (prefixed.next(), prefixed.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            });
            let Some(&(option, takes_value)) = option.filter(|_| !name.is_empty()) else {
                continue;
            };
            if takes_value {
                let value = inline.or_else(|| {
                    let v = args.get(i).copied();
                    i += 1;
                    v
                });
                if option == "config" {
                    found = value.or(found);
                }
            }
            continue;
        }
        let Some(shorts) = arg.strip_prefix(b"-").filter(|s| !s.is_empty()) else {
            // Not an option (getopt permutes; the daemon refuses such arguments).
            continue;
        };
        for (at, &c) in shorts.iter().enumerate() {
            if matches!(c, b'f' | b'p' | b't') {
                let rest = &shorts[at + 1..];
                let value = if rest.is_empty() {
                    let v = args.get(i).copied();
                    i += 1;
                    v
                } else {
                    Some(rest)
                };
                if c == b'f' {
                    found = value.or(found);
                }
                break;
            }
        }
    }
    found
}

/// What a reload of one daemon would do: where to reach it and what stops it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadCheck {
    /// The daemon.
    pub daemon: Daemon,
    /// How the configuration file was chosen: the running daemon's `-f`, or libvirt's default
    /// (and why). `None` when nobody looked ([`ReloadCheck::of`], given a parsed file); set by
    /// [`ReloadCheck::read`].
    pub conf_source: Option<ConfSource>,
    /// The configuration file read (under the root), or where it would be.
    pub conf_file: PathBuf,
    /// Whether that file exists (a missing one means libvirt's defaults).
    pub conf_exists: bool,
    /// The daemon's admin socket, under the root.
    pub admin_socket: PathBuf,
    /// Where the socket is under systemd socket activation, when `unix_sock_dir` names
    /// another place: libvirt does not honour `unix_sock_dir` then (under the root).
    pub activation_socket: Option<PathBuf>,
    /// The settings that make a reload load other files than the daemon uses: a reload is
    /// refused when there is any.
    pub other_files: Vec<OtherFile>,
}

impl ReloadCheck {
    /// Reads `daemon`'s configuration file under `root` (a missing file is libvirt's
    /// defaults) and checks it. A file that does not parse is an error naming its file and
    /// line: the daemon's files cannot be known, so nothing may be reloaded.
    ///
    /// The file is the one the running daemon reads ([`ConfSource::find`]): the one its
    /// command line names (which must be there: libvirt does not start without it), else
    /// libvirt's default.
    pub fn read(daemon: Daemon, root: &Path) -> Result<ReloadCheck> {
        let source = ConfSource::find(daemon, root)?;
        let path = source.file(daemon, root);
        let named = matches!(source, ConfSource::CommandLine { .. });
        let conf = match DaemonConf::read_file(&path) {
            Ok(conf) => Some(conf),
            Err(e) if e.kind() == ErrorKind::Io && !named && !path.exists() => None,
            Err(e) if named => {
                return Err(crate::error::Error::new(
                    e.kind(),
                    format!(
                        "{} runs with the configuration file its command line names ({}): {}",
                        daemon.name(),
                        path.display(),
                        e.message()
                    ),
                ))
            }
            Err(e) => return Err(e),
        };
        let mut check = ReloadCheck::of(daemon, conf.as_ref(), root);
        check.conf_file = path;
        check.conf_exists = conf.is_some();
        check.conf_source = Some(source);
        Ok(check)
    }

    /// Which configuration file was checked and why that one, for people: the one the running
    /// daemon was started with, libvirt's default it runs with, or the default because which
    /// one it reads cannot be told. `None` when which file the daemon reads was not looked for
    /// ([`ReloadCheck::of`]): there is nothing to say.
    pub fn conf_note(&self) -> Option<String> {
        let source = self.conf_source.as_ref()?;
        Some(source.note(self.daemon, &self.conf_file))
    }

    /// Checks `daemon`'s parsed configuration (`None`: no file, libvirt's defaults), with its
    /// paths looked for under `root`. Which file the running daemon reads is not looked for:
    /// [`ReloadCheck::conf_source`] is `None` (see [`ReloadCheck::read`]).
    pub fn of(daemon: Daemon, conf: Option<&DaemonConf>, root: &Path) -> ReloadCheck {
        let mut other_files = Vec::new();
        let socket_dir = match conf {
            None => None,
            Some(conf) => {
                let mut errors: Vec<SettingError> = Vec::new();
                let dir = conf.string("unix_sock_dir", &mut errors);
                other_files.extend(errors.into_iter().map(|e| {
                    OtherFile {
                        setting: "unix_sock_dir",
                        configured: conf
                            .get("unix_sock_dir")
                            .map(|e| e.value.to_string())
                            .unwrap_or_default(),
                        reload_reads: None,
                        line: e.line,
                        message: format!(
                            "{}: the admin socket cannot be found, so the daemon cannot be told",
                            e.message
                        ),
                    }
                }));
                other_files.extend(other_file_settings(conf, root));
                dir.map(|d| d.value).filter(|d| !d.is_empty())
            }
        };
        let name = format!("{}-admin-sock", daemon.socket_prefix());
        let default = Path::new(RUN_DIR).join(&name);
        // Relative: below / (the daemon's working directory), never the caller's.
        let socket =
            socket_dir.map_or_else(|| default.clone(), |d| Path::new("/").join(d).join(&name));
        let activation_socket =
            (socket.components().ne(default.components())).then(|| rerooted(root, &default));
        ReloadCheck {
            daemon,
            conf_source: None,
            conf_file: daemon.conf_file(root),
            conf_exists: conf.is_some(),
            admin_socket: rerooted(root, &socket),
            activation_socket,
            other_files,
        }
    }

    /// Every place the daemon's admin socket may be, in the order to try them: the one its
    /// configuration gives, then the one of socket activation.
    pub fn admin_sockets(&self) -> Vec<PathBuf> {
        std::iter::once(self.admin_socket.clone())
            .chain(self.activation_socket.clone())
            .collect()
    }

    /// Why the daemon must not be reloaded, with the fix; `None` when it may.
    pub fn refusal(&self) -> Option<String> {
        if self.other_files.is_empty() {
            return None;
        }
        let lines: Vec<&str> = self
            .other_files
            .iter()
            .map(|o| o.message.as_str())
            .collect();
        Some(format!(
            "{}: not reloaded: virt-admin server-update-tls re-reads libvirt's default files, \
             not the ones its configuration names, so a reload would load other files than \
             the daemon uses:\n  {}\nrestart it instead: {}",
            self.daemon.name(),
            lines.join("\n  "),
            self.daemon.restart_command()
        ))
    }
}

/// The TLS file settings of `conf` that name other files than the defaults a reload reads,
/// and those libvirt would refuse (a wrong type: which file is meant cannot be told); and an
/// unset `crl_file` that a reload would not leave unset (the default CRL is under `root`).
fn other_file_settings(conf: &DaemonConf, root: &Path) -> Vec<OtherFile> {
    let settings = conf.tls_settings();
    let defaults = Environment {
        root: PathBuf::from("/"),
        home: None,
        uid: 0,
    };
    let files = [
        ("ca_file", CertDataType::CaCert, &settings.ca_file),
        ("crl_file", CertDataType::CaCrl, &settings.crl_file),
        ("cert_file", CertDataType::ServerCert, &settings.cert_file),
        ("key_file", CertDataType::ServerKey, &settings.key_file),
    ];
    let mut found = Vec::new();
    for (name, ty, setting) in files {
        let reads = defaults.system_file(ty);
        if let Some(e) = settings.errors.iter().find(|e| e.name == name) {
            found.push(OtherFile {
                setting: name,
                configured: conf
                    .get(name)
                    .map(|e| e.value.to_string())
                    .unwrap_or_default(),
                reload_reads: Some(reads),
                line: e.line,
                message: format!("{} (which file is meant cannot be told)", e.message),
            });
            continue;
        }
        let Some(s) = setting else { continue };
        // Compared component by component: `//` and `/./` do not make another file.
        if s.value.is_absolute() && s.value.components().eq(reads.components()) {
            continue;
        }
        found.push(OtherFile {
            setting: name,
            configured: s.value.display().to_string(),
            reload_reads: Some(reads.clone()),
            line: s.line,
            message: format!(
                "{}: {name} = \"{}\", but a reload reads {}",
                conf.location(s.line),
                s.value.display(),
                reads.display()
            ),
        });
    }
    // libvirtd takes its files from the settings as soon as one of these three is set
    // (remote_daemon.c), and then loads no CRL unless crl_file names one; the reload loads the
    // default CRL when it is there. An empty value is set for that test (libvirt checks for
    // NULL), and an empty crl_file loads nothing.
    let explicit = ["ca_file", "cert_file", "key_file"]
        .iter()
        .filter_map(|n| conf.get(n))
        .map(|e| e.line)
        .min();
    let crl = defaults.system_file(CertDataType::CaCrl);
    let there = rerooted(root, &crl);
    if let Some(first) = explicit.filter(|_| {
        settings.crl_file.is_none()
            && !settings.refused("crl_file")
            && (there.exists() || there.is_symlink())
    }) {
        // The line of an empty crl_file, else the first setting that made the files explicit.
        let (line, configured) = conf
            .get("crl_file")
            .map_or((first, String::new()), |e| (e.line, e.value.to_string()));
        let place = conf.location(line);
        found.push(OtherFile {
            setting: "crl_file",
            configured,
            reload_reads: Some(crl.clone()),
            line,
            message: format!(
                "{place}: crl_file is not set while ca_file, cert_file or key_file is, so the \
                 daemon loaded no CRL, but a reload loads {} (set crl_file = \"{}\" to use it \
                 from the next start on)",
                crl.display(),
                crl.display()
            ),
        });
    }
    found
}
