//! A running libvirt daemon as `daemon_conf::ConfSource::find` sees it, under a test root:
//! `ROOT/run/NAME.pid` naming a live process that holds the file's lock (as libvirt's
//! `virPidFileAcquirePath` does: an `fcntl` write lock on its first byte), and that process's
//! `ROOT/proc/PID/status` and `cmdline`. The lock is real (the library asks the kernel who
//! holds it), so the pid is a real child's; /proc is the test root's.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A child process holding the lock of a pid file until this is dropped (its stdin closes,
/// it exits and the kernel releases the lock). It is `cat` with the locked descriptor kept
/// open across exec; it never writes the file.
pub struct PidLock {
    child: Child,
}

impl PidLock {
    /// Locks `path` (which must exist) as a running libvirt daemon locks its pid file: a
    /// write lock on byte 0, length 1, held by a new child process.
    pub fn hold(path: &Path) -> PidLock {
        PidLock::hold_as(path, libc::F_WRLCK)
    }

    /// [`hold`](Self::hold) with a read lock, which libvirt never takes on a pid file.
    pub fn hold_for_reading(path: &Path) -> PidLock {
        PidLock::hold_as(path, libc::F_RDLCK)
    }

    fn hold_as(path: &Path, kind: libc::c_int) -> PidLock {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let fd = file.as_raw_fd();
        let mut cmd = Command::new("cat");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure runs in the child between fork and exec and calls fcntl only,
        // which is async-signal-safe; `fd` is open there (fork copied it).
        unsafe {
            cmd.pre_exec(move || {
                let mut lock: libc::flock = std::mem::zeroed();
                lock.l_type = kind as libc::c_short;
                lock.l_whence = libc::SEEK_SET as libc::c_short;
                lock.l_start = 0;
                lock.l_len = 1;
                if libc::fcntl(fd, libc::F_SETLK, &lock) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Kept open across exec: record locks survive exec, not the descriptor's close.
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // spawn returns once the exec succeeded, so the lock is held from here on.
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
        PidLock { child }
    }

    /// The pid of the process holding the lock.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ROOT/proc/PID/status` (the Name and Uid lines: real, effective, saved and file-system
/// uids) and `ROOT/proc/PID/cmdline` (`args`, each ended by a NUL) of a process.
pub fn fake_proc(root: &Path, pid: u32, name: &str, args: &[&str], uids: [u32; 4]) {
    let proc_dir = root.join(format!("proc/{pid}"));
    std::fs::create_dir_all(&proc_dir).unwrap();
    let [r, e, s, f] = uids;
    std::fs::write(
        proc_dir.join("status"),
        format!("Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t{r}\t{e}\t{s}\t{f}\n"),
    )
    .unwrap();
    let mut cmdline = Vec::new();
    for a in args {
        cmdline.extend_from_slice(a.as_bytes());
        cmdline.push(0);
    }
    std::fs::write(proc_dir.join("cmdline"), cmdline).unwrap();
}

/// A new pid file at `path`, mode 0644, locked by a new child whose pid it names. An old file
/// there is removed first (as libvirt's daemons do when they stop), so a holder of its lock
/// that is still alive holds nothing of the new one.
pub fn locked_pid_file(path: &Path) -> PidLock {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{}: {e}", path.display()),
        _ => {}
    }
    std::fs::write(path, b"").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let lock = PidLock::hold(path);
    // Written in place (O_TRUNC, the same inode): the lock stays on it.
    std::fs::write(path, format!("{}\n", lock.pid())).unwrap();
    lock
}

/// A daemon `name` running under `root` as `uids`, started with `args`: its locked pid file
/// (ROOT/run/NAME.pid, [`locked_pid_file`]) and its /proc files ([`fake_proc`]). It runs
/// until the returned lock is dropped; its pid is the lock's.
pub fn running_as(root: &Path, name: &str, args: &[&str], uids: [u32; 4]) -> PidLock {
    let lock = locked_pid_file(&root.join(format!("run/{name}.pid")));
    fake_proc(root, lock.pid(), name, args, uids);
    lock
}

/// [`running_as`] the caller's effective uid (root's stand-in under a test root).
pub fn running(root: &Path, name: &str, args: &[&str]) -> PidLock {
    // SAFETY: no preconditions.
    let me = unsafe { libc::geteuid() };
    running_as(root, name, args, [me; 4])
}
