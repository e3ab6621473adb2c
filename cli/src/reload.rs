//! `virtpki reload`: tells the running libvirt daemons to take their TLS files afresh, with
//! `virt-admin server-update-tls` (libvirt 6.2 and later), without a restart.
//!
//! Which daemons run is told by their admin sockets: a socket file nobody listens on (left by
//! a crash) is not a running daemon. A daemon whose configuration names other TLS files than
//! libvirt's defaults is not reloaded, because the reload reads the defaults
//! ([`virtpki::daemon_conf::ReloadCheck`], which decides); the fix is a restart. The program
//! is `virt-admin` from PATH, or the one `VIRTPKI_VIRT_ADMIN` names. `install --reload` uses
//! the same steps ([`find`], [`virt_admin`], [`reload`]).
//!
//! What a daemon does with the files is libvirt's: this module is tested with a stand-in
//! program; the real daemon is proven by `make interop`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use virtpki::daemon_conf::{Daemon, OtherFile, ReloadCheck};

use crate::ui::{escape, print_json, CliError, CmdResult, Status, Ui};

/// How long virt-admin may take before it is stopped and the reload counted as failed.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that names the virt-admin program to run.
pub const PROGRAM_VAR: &str = "VIRTPKI_VIRT_ADMIN";

/// A daemon that can be named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DaemonArg {
    Libvirtd,
    Virtproxyd,
}

impl DaemonArg {
    fn daemon(self) -> Daemon {
        match self {
            DaemonArg::Libvirtd => Daemon::Libvirtd,
            DaemonArg::Virtproxyd => Daemon::Virtproxyd,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ReloadArgs {
    /// Only this daemon (default: every one that runs).
    #[arg(long, value_enum)]
    pub daemon: Option<DaemonArg>,
    /// Look for the daemons' configuration and sockets under PATH instead of / (a container, a
    /// test).
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// Print the result of each daemon as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One daemon, as found before anything is done.
pub struct Target {
    pub daemon: Daemon,
    /// Its configuration checked for a reload, or why it cannot be read.
    pub check: Result<ReloadCheck, String>,
    /// `None` when it runs (something listens on its admin socket), else why it does not.
    pub not_running: Option<String>,
    /// The admin socket something listens on (of [`ReloadCheck::admin_sockets`]).
    pub listening: Option<PathBuf>,
    /// Why that socket is not talked to: it belongs to another user than root (or the one
    /// running virtpki), so it may be anyone's listener.
    pub foreign: Option<String>,
}

/// How [`find`] tells whether a daemon runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Connect to its admin socket: something must listen.
    Connect,
    /// Only look for the socket file, never connecting (a dry run): under systemd socket
    /// activation a connection starts a stopped daemon, and a dry run must change nothing.
    Look,
}

impl Target {
    /// Whether a reload must be refused for it: it runs and its configuration cannot be read
    /// or names other files. The message says why and what to do.
    pub fn refusal(&self) -> Option<String> {
        if self.not_running.is_some() {
            return None;
        }
        if let Some(why) = &self.foreign {
            return Some(format!("{}: not reloaded: {why}", self.daemon.name()));
        }
        match &self.check {
            Err(e) => Some(format!(
                "{}: not reloaded: its configuration cannot be read, so the files it uses \
                 cannot be known: {e}",
                self.daemon.name()
            )),
            Ok(check) => check.refusal(),
        }
    }

    /// The pid its pid file names, when that process is the daemon (it holds the pid file's
    /// lock, is root's and runs the daemon's program): known to run without connecting to it.
    pub fn pid(&self) -> Option<u32> {
        self.check.as_ref().ok()?.conf_source.as_ref()?.pid()
    }

    fn socket(&self) -> Option<&Path> {
        self.listening
            .as_deref()
            .or_else(|| self.check.as_ref().ok().map(|c| c.admin_socket.as_path()))
    }
}

/// Finds each of `daemons` under `root`: its configuration read and checked, whether it runs
/// (told as `probe` says).
pub fn find(daemons: &[Daemon], root: &Path, probe: Probe) -> Vec<Target> {
    daemons
        .iter()
        .map(|&daemon| {
            let check = ReloadCheck::read(daemon, root).map_err(|e| e.to_string());
            let (not_running, socket) = match &check {
                // The configured place first, then socket activation's (which does not honour
                // unix_sock_dir): the daemon runs when something listens on either.
                Ok(c) => {
                    let mut why = Vec::new();
                    let mut found = None;
                    for socket in c.admin_sockets() {
                        let seen = match probe {
                            Probe::Connect => listening(&socket),
                            Probe::Look => socket_there(&socket),
                        };
                        match seen {
                            Ok(()) => {
                                found = Some(socket);
                                break;
                            }
                            Err(e) => why.push(e),
                        }
                    }
                    match found {
                        Some(s) => (None, Some(s)),
                        None => (Some(why.join("; ")), None),
                    }
                }
                // The socket's place depends on the file: unknown, so counted as running,
                // which refuses the reload (libvirt does not start with a file it cannot
                // parse: it was changed after the daemon started, or the daemon is down).
                Err(_) => (None, None),
            };
            let foreign = socket.as_deref().and_then(foreign_owner);
            Target {
                daemon,
                check,
                not_running,
                listening: socket,
                foreign,
            }
        })
        .collect()
}

/// Whether something listens on the unix socket at `path`; else why it is taken as not
/// running. A socket that cannot be tried for another reason (permissions) counts as running:
/// virt-admin then says what is wrong. The connection is tried on a thread of its own: a
/// listener that accepts nothing, its queue full, blocks `connect` for good; after
/// [`CONNECT_WAIT`] it counts as running (and virt-admin's own timeout applies).
fn listening(path: &Path) -> Result<(), String> {
    use std::io::ErrorKind as K;
    let (send, receive) = std::sync::mpsc::channel();
    let socket = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = send.send(std::os::unix::net::UnixStream::connect(socket).map(drop));
    });
    match receive.recv_timeout(CONNECT_WAIT) {
        Ok(Err(e)) if e.kind() == K::NotFound => {
            Err(format!("no admin socket at {}", path.display()))
        }
        Ok(Err(e)) if e.kind() == K::ConnectionRefused => Err(format!(
            "{} is there but nothing listens on it (left by a daemon that stopped)",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// Whether a socket file is at `path`, without connecting to it; else why the daemon is taken
/// as not running. A path that cannot be looked at for another reason (permissions) counts
/// as there, as in [`listening`]; a symbolic link is followed, as the connection follows it.
fn socket_there(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_socket() => Ok(()),
        Ok(_) => Err(format!("{} is there but is not a socket", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("no admin socket at {}", path.display()))
        }
        Err(_) => Ok(()),
    }
}

/// Why the socket at `path` is not a system daemon's: it belongs to another user than root
/// or the one running virtpki (a daemon under `--root` in a test is that user's). A socket
/// whose owner cannot be read is refused too.
fn foreign_owner(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: no preconditions.
    let me = unsafe { libc::geteuid() };
    match std::fs::metadata(path) {
        Ok(m) if m.uid() == 0 || m.uid() == me => None,
        Ok(m) => Some(format!(
            "its admin socket {} belongs to uid {}, not root: it may be anyone's listener, so \
             virt-admin is not run (a system daemon's socket is root's; check unix_sock_dir \
             and who can write there)",
            path.display(),
            m.uid()
        )),
        Err(e) => Some(format!(
            "its admin socket {} cannot be checked: {e}",
            path.display()
        )),
    }
}

/// How long a daemon's admin socket may take to take a connection.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// The virt-admin program: the one `VIRTPKI_VIRT_ADMIN` names, else `virt-admin` from PATH
/// (its absolute entries).
/// `nothing` ends the error: what was not done ("nothing was reloaded").
pub fn virt_admin(nothing: &str) -> Result<PathBuf, CliError> {
    let named = std::env::var_os(PROGRAM_VAR).filter(|v| !v.is_empty());
    let wanted = named
        .clone()
        .map_or_else(|| PathBuf::from("virt-admin"), PathBuf::from);
    let found = if wanted.components().count() > 1 {
        wanted.is_file().then(|| wanted.clone())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            // An empty or relative entry is the current directory, maybe one others write
            // to: only absolute ones are searched, and the program found is run by that path.
            std::env::split_paths(&paths)
                .filter(|d| d.is_absolute())
                .map(|d| d.join(&wanted))
                .find(|p| p.is_file())
        })
    };
    found.ok_or_else(|| match named {
        Some(_) => CliError(format!(
            "{PROGRAM_VAR}={}: no such program; {nothing}",
            wanted.display()
        ))
        .with_fix(format!(
            "set {PROGRAM_VAR} to virt-admin's path, or unset it to use virt-admin from PATH"
        )),
        None => CliError(format!(
            "virt-admin is not installed (not found in PATH), and it is what tells a running \
             daemon to reload; {nothing}"
        ))
        .with_fix(
            "install the package that has it: apt install libvirt-clients (Debian, Ubuntu), \
             dnf install libvirt-client (Fedora, RHEL)",
        ),
    })
}

/// What reloading one daemon did.
pub struct Outcome {
    pub daemon: Daemon,
    pub socket: Option<PathBuf>,
    pub running: bool,
    pub reloaded: bool,
    /// virt-admin said the daemon has no TLS service (it does not listen for TLS, so it
    /// reads none of these files): not a failure.
    pub no_tls: bool,
    /// What happened, in one sentence (or the refusal, with its fix).
    pub message: String,
    /// The settings that refused the reload.
    pub refused: Vec<OtherFile>,
    /// The command run, if one was.
    pub command: Vec<String>,
    /// virt-admin's exit status (`None`: not run, or stopped by a signal or the timeout).
    pub status: Option<i32>,
    /// What it printed, standard output then standard error, trimmed.
    pub output: String,
    /// The configuration file checked, how it was chosen, and that said for people
    /// ([`ReloadCheck::conf_note`]); `None` when it could not be read.
    pub conf: Option<(PathBuf, &'static str, String)>,
}

impl Outcome {
    fn new(t: &Target, message: String) -> Outcome {
        Outcome {
            daemon: t.daemon,
            socket: t.socket().map(Path::to_path_buf),
            running: t.not_running.is_none(),
            reloaded: false,
            no_tls: false,
            message,
            refused: t
                .check
                .as_ref()
                .map(|c| c.other_files.clone())
                .unwrap_or_default(),
            command: Vec::new(),
            status: None,
            output: String::new(),
            // Every check here is ReloadCheck::read's, which looked for the file.
            conf: t.check.as_ref().ok().and_then(|c| {
                let source = c.conf_source.as_ref()?.name();
                Some((c.conf_file.clone(), source, c.conf_note()?))
            }),
        }
    }

    /// A failure: a running daemon not reloaded.
    pub fn failed(&self) -> bool {
        self.running && !self.reloaded && !self.no_tls
    }

    /// The outcome as JSON, for configuration management.
    pub fn to_json(&self) -> serde_json::Value {
        let refused: Vec<serde_json::Value> = self
            .refused
            .iter()
            .map(|o| {
                serde_json::json!({
                    "setting": o.setting,
                    "configured": o.configured,
                    "reload_reads": o.reload_reads.as_ref().map(|p| p.display().to_string()),
                    "line": o.line,
                    "message": o.message,
                })
            })
            .collect();
        serde_json::json!({
            "daemon": self.daemon.name(),
            "socket": self.socket.as_ref().map(|p| p.display().to_string()),
            "running": self.running,
            "reloaded": self.reloaded,
            "serves_tls": !self.no_tls,
            "message": self.message,
            "refused_settings": refused,
            "command": self.command,
            "exit_status": self.status,
            "output": self.output,
            "configuration": self.conf.as_ref().map(|(file, source, note)| serde_json::json!({
                "file": file.display().to_string(),
                "source": source,
                "note": note,
            })),
        })
    }

    /// The outcome for people, a line each.
    pub fn lines(&self, ui: Ui) -> Vec<String> {
        let head = if self.reloaded {
            ui.pass(self.daemon.name())
        } else if self.failed() {
            ui.fail(self.daemon.name())
        } else {
            ui.dim(self.daemon.name())
        };
        let message = self
            .message
            .strip_prefix(self.daemon.name())
            .unwrap_or(&self.message);
        // Each line of the message escaped on its own: a refusal lists a setting a line.
        let mut text = message.lines().map(|l| escape(l).into_owned());
        let mut lines = vec![format!("{head}{}", text.next().unwrap_or_default())];
        lines.extend(text);
        // Which configuration file the decision rests on: a daemon started with -f reads
        // another one than /etc/libvirt.
        if let (true, Some((_, _, note))) = (self.running, &self.conf) {
            lines.push(format!("  {}", escape(note)));
        }
        lines.extend(
            self.output
                .lines()
                .map(|l| format!("  virt-admin: {}", escape(l))),
        );
        lines
    }
}

/// Tells `t` to reload with `program` (a running daemon whose configuration allows it; else
/// the outcome says why not, and nothing is run).
pub fn reload(t: &Target, program: Option<&Path>) -> Outcome {
    let name = t.daemon.name();
    if let Some(why) = &t.not_running {
        return Outcome::new(t, format!("{name}: not running ({why}): nothing to reload"));
    }
    if let Some(refusal) = t.refusal() {
        return Outcome::new(t, refusal);
    }
    let (Some(program), Some(socket)) = (program, t.socket()) else {
        return Outcome::new(t, format!("{name}: not reloaded: no virt-admin to run"));
    };
    let args = [
        "-c".to_owned(),
        t.daemon.admin_uri(socket),
        "server-update-tls".to_owned(),
        name.to_owned(),
    ];
    let mut out = Outcome::new(t, String::new());
    out.command = std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .collect();
    match run(program, &args, TIMEOUT) {
        Err(e) => {
            out.message = format!(
                "{name}: not reloaded: cannot run {}: {e}",
                program.display()
            )
        }
        Ok(ran) => {
            out.status = ran.status;
            out.output = ran.output;
            out.reloaded = ran.status == Some(0);
            // libvirt's words for a daemon without a TLS listener (virNetServerUpdateTlsFiles).
            out.no_tls = !out.reloaded && out.output.contains("no tls service found");
            out.message = if out.reloaded {
                format!(
                    "{name}: reloaded its CA, CRL, certificate and key (virt-admin \
                     server-update-tls {name}); connections already open keep theirs"
                )
            } else if out.no_tls {
                format!(
                    "{name}: serves no TLS (it has no TLS listener), so it reads none of these \
                     files: nothing to reload"
                )
            } else if ran.timed_out {
                format!(
                    "{name}: not reloaded: virt-admin gave no answer in {} seconds and was \
                     stopped",
                    TIMEOUT.as_secs()
                )
            } else {
                format!(
                    "{name}: not reloaded: virt-admin failed ({}); the daemon keeps the \
                     credentials it had",
                    ran.status
                        .map_or("stopped by a signal".to_owned(), |s| format!(
                            "exit status {s}"
                        ))
                )
            };
        }
    }
    out
}

/// How long the output pipes may stay open after virt-admin has ended.
const PIPE_WAIT: Duration = Duration::from_secs(2);

struct Ran {
    status: Option<i32>,
    output: String,
    timed_out: bool,
}

/// Runs `program` with `args`, its standard output and error collected, stopped after
/// `timeout`.
fn run(program: &Path, args: &[String], timeout: Duration) -> std::io::Result<Ran> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Each pipe is read on a thread into a buffer shared with this one, which takes what is
    // there once the program has ended and its pipes were given [`PIPE_WAIT`] to close: a
    // process it left behind may hold them open for good, and is not waited for.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let collect = |r: Option<Box<dyn Read + Send>>| {
        let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = std::sync::Arc::clone(&kept);
        let done = done.clone();
        std::thread::spawn(move || {
            if let Some(mut r) = r {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = r.read(&mut chunk) {
                    let mut kept = into.lock().unwrap_or_else(|e| e.into_inner());
                    // At most 64 KiB is kept: virt-admin says a line or two.
                    let room = (64 * 1024usize).saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
            let _ = done.send(());
        });
        kept
    };
    let stdout = collect(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = collect(child.stderr.take().map(|s| Box::new(s) as _));
    drop(done);
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let until = Instant::now() + PIPE_WAIT;
    for _ in 0..2 {
        if finished
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .is_err()
        {
            break;
        }
    }
    let text = |kept: std::sync::Arc<std::sync::Mutex<Vec<u8>>>| {
        let bytes = kept.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    };
    let parts: Vec<String> = [text(stdout), text(stderr)]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect();
    Ok(Ran {
        status: if timed_out { None } else { status.code() },
        output: parts.join("\n"),
        timed_out,
    })
}

/// The root the daemons are looked for under, absolute: the socket's path goes into
/// virt-admin's URI, which takes no relative path.
pub fn root_of(root: Option<&PathBuf>) -> PathBuf {
    match root {
        None => PathBuf::from("/"),
        Some(r) => std::path::absolute(r).unwrap_or_else(|_| r.clone()),
    }
}

/// "no libvirt daemon is running (...)": what is said when none of `targets` runs.
pub fn none_running(targets: &[Target]) -> String {
    let why: Vec<&str> = targets
        .iter()
        .filter_map(|t| t.not_running.as_deref())
        .collect();
    format!("no libvirt daemon is running ({})", why.join("; "))
}

pub fn run_cmd(args: ReloadArgs, ui: Ui) -> CmdResult {
    let root = root_of(args.root.as_ref());
    let daemons: Vec<Daemon> = match args.daemon {
        Some(d) => vec![d.daemon()],
        None => Daemon::ALL.to_vec(),
    };
    let targets = find(&daemons, &root, Probe::Connect);
    let any_running = targets.iter().any(|t| t.not_running.is_none());
    // Only wanted when a daemon runs and may be reloaded.
    let program = if targets
        .iter()
        .any(|t| t.not_running.is_none() && t.refusal().is_none())
    {
        Some(virt_admin("nothing was reloaded")?)
    } else {
        None
    };
    let outcomes: Vec<Outcome> = targets
        .iter()
        .map(|t| reload(t, program.as_deref()))
        .collect();
    let failed = outcomes.iter().any(Outcome::failed);
    if args.json {
        let json: Vec<serde_json::Value> = outcomes.iter().map(Outcome::to_json).collect();
        print_json(&serde_json::json!({
            "daemons": json,
            "reloaded": outcomes.iter().filter(|o| o.reloaded).map(|o| o.daemon.name()).collect::<Vec<_>>(),
            "ok": !failed,
        }));
    } else if !any_running {
        println!("{}: nothing to reload", escape(&none_running(&targets)));
    } else {
        for o in &outcomes {
            for line in o.lines(ui) {
                println!("{line}");
            }
        }
    }
    Ok(Status::problems_if(failed))
}
