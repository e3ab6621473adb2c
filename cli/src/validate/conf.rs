//! libvirtd.conf: found for the checked mode and read (a syntax error is a finding, not a
//! stop); its TLS settings are checked by the library ([`daemon_conf::audit`]) and reported
//! here. For the system files it is the file the running daemon reads, as `reload` finds it
//! ([`ConfSource::running`]): the one its `-f` names, else libvirt's default.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use virtpki::daemon_conf::{self, ConfCheck, ConfSource, Daemon, DaemonConf, Setting, TlsSettings};
use virtpki::display::shell_path;
use virtpki::locations::Environment;
use virtpki::{CertDataType, ErrorKind};

use super::files::FileSpec;
use super::{Mode, Scope, State, Validator};
use crate::ui::CliError;

const S: Scope = Scope::Conf;

/// Which daemon configuration file was read and why: `configuration` in the JSON report.
pub(super) struct ConfChoice {
    /// The daemon whose file it is (`None`: given with --libvirtd-conf).
    daemon: Option<Daemon>,
    file: PathBuf,
    /// `given`, or how the running daemon's file was found ([`ConfSource::name`]).
    source: &'static str,
    /// The running daemon's pid, from its pid file.
    pid: Option<u32>,
    /// The same for people.
    note: String,
}

impl ConfChoice {
    pub(super) fn json(&self) -> Value {
        json!({
            "daemon": self.daemon.map(Daemon::name),
            "file": self.file.display().to_string(),
            "source": self.source,
            "pid": self.pid,
            "note": self.note,
        })
    }
}

impl Validator {
    /// Reads libvirtd.conf: the one given (unreadable = exit 2), or the one the daemon reads
    /// if it exists ([`Validator::default_conf`]; unreadable = a line of the report, since
    /// nobody gave it). A syntax error is a check failure, not a stop.
    pub(super) fn read_conf(
        &mut self,
        given: Option<&Path>,
    ) -> Result<Option<(DaemonConf, TlsSettings)>, CliError> {
        let (path, found) = match given {
            // Checked with the other given paths (`crate::given`) before the command ran.
            Some(p) => {
                self.conf_choice = Some(ConfChoice {
                    daemon: None,
                    file: p.to_path_buf(),
                    source: "given",
                    pid: None,
                    note: format!("checked {}, given with --libvirtd-conf", p.display()),
                });
                (p.to_path_buf(), None)
            }
            None => match self.default_conf() {
                Some((p, found)) if p.exists() => (p, found),
                Some((p, source)) => {
                    let check = "Checking libvirtd.conf";
                    match source.as_ref().and_then(|(d, s)| match s {
                        ConfSource::CommandLine { pid, .. } => Some((*d, *pid)),
                        _ => None,
                    }) {
                        // libvirt does not start without it: gone since the start.
                        Some((daemon, pid)) => self.push(
                            S,
                            check,
                            State::Fail,
                            Some(&p),
                            format!(
                                "{} does not exist, but {} (pid {pid}) was started with it \
                                 (-f/--config): the settings it runs with cannot be checked, \
                                 and it would not start again",
                                p.display(),
                                daemon.name()
                            ),
                            Some(format!(
                                "put {} back, or restart {} with the file it should read",
                                p.display(),
                                daemon.name()
                            )),
                        ),
                        None => {
                            let daemon = source.map_or(Daemon::Libvirtd, |(d, _)| d);
                            self.pass(
                                S,
                                check,
                                Some(&p),
                                format!(
                                    "{} does not exist: {} uses its defaults",
                                    p.display(),
                                    daemon.name()
                                ),
                            )
                        }
                    }
                    return Ok(None);
                }
                None => return Ok(None),
            },
        };
        // The file the system daemon reads (or would); one given may be a draft anywhere.
        if self.mode == Mode::System && given.is_none() {
            self.conf_access(S, "file_mode", "Checking libvirtd.conf access", &path);
        }
        let name = "Parsing libvirtd.conf";
        match DaemonConf::read_file(&path) {
            Ok(conf) => {
                self.pass(S, name, Some(&path), format!("{} parses", path.display()));
                let settings = conf.tls_settings();
                Ok(Some((conf, settings)))
            }
            Err(e) if e.kind() == ErrorKind::Parse => {
                // The message starts "PATH:LINE: ".
                let line = e
                    .message()
                    .strip_prefix(&format!("{}:", path.display()))
                    .and_then(|r| r.split(':').next())
                    .map(str::to_owned);
                self.push(
                    S,
                    name,
                    State::Fail,
                    Some(&path),
                    format!("{e}: libvirtd refuses to start with this file"),
                    Some(match line {
                        Some(l) => format!("correct line {l} of {}", path.display()),
                        None => format!("correct {}", path.display()),
                    }),
                );
                Ok(None)
            }
            Err(e) if given.is_some() => Err(e.into()),
            Err(e) => {
                self.unreadable_conf(&path, &e, found);
                Ok(None)
            }
        }
    }

    /// The line for a daemon configuration file nobody gave that cannot be read (`e`): a
    /// caller not allowed to read it is a warning (root can check it), anything else (not a
    /// regular file, too large) a failure, for the daemon `found` runs with it (or would
    /// start with it).
    fn unreadable_conf(
        &mut self,
        path: &Path,
        e: &virtpki::Error,
        found: Option<(Daemon, ConfSource)>,
    ) {
        let denied = std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
        let (daemon, pid) = found.map_or((Daemon::Libvirtd, None), |(d, s)| (d, s.pid()));
        let who = match pid {
            Some(pid) => format!("{} (pid {pid})", daemon.name()),
            None => daemon.name().to_owned(),
        };
        let (state, message, fix) = if denied {
            (
                State::Warn,
                format!("{e}: the settings {who} reads are not checked"),
                "run virtpki validate as root".to_owned(),
            )
        } else {
            (
                State::Fail,
                format!("{e}: {who} would refuse it when it starts"),
                format!(
                    "make {} a regular file under libvirt's limit of 10 MiB, or start {} with \
                     the file it should read",
                    shell_path(path),
                    daemon.name()
                ),
            )
        };
        self.push(
            S,
            "Parsing libvirtd.conf",
            state,
            Some(path),
            message,
            Some(fix),
        );
    }

    /// A warning for each other daemon that runs beside `checked` (libvirtd and virtproxyd
    /// both, which libvirt's units do not allow but a manual start does): its file is not the
    /// one checked, and either may be the one that listens for TLS.
    fn other_running(&mut self, checked: Daemon) {
        for other in Daemon::ALL.into_iter().filter(|&d| d != checked) {
            let Ok(source) = ConfSource::find(other, &self.root) else {
                continue;
            };
            let Some(pid) = source.pid() else { continue };
            let file = source.file(other, &self.root);
            self.push_id(
                S,
                "other_daemon",
                format!("Finding {}'s configuration file", other.name()),
                State::Warn,
                Some(&file),
                format!(
                    "{} (pid {pid}) runs too, with {}: only {}'s file is checked, and which of \
                     the two listens for TLS is not told",
                    other.name(),
                    file.display(),
                    checked.name()
                ),
                Some(format!(
                    "check it with --libvirtd-conf {}, and run only one of {} and {}",
                    shell_path(&file),
                    checked.name(),
                    other.name()
                )),
            );
        }
    }

    /// Who may change a system daemon's configuration file (libvirtd.conf, qemu.conf), which
    /// it reads as root at its start ([`daemon_conf::conf_writers`]): anyone but root is a
    /// failure, since that user would choose its TLS settings (switch verification off, name
    /// another key). The line's id is `id` in `scope`, its name `name`.
    pub(super) fn conf_access(&mut self, scope: Scope, id: &str, name: &str, path: &Path) {
        match daemon_conf::conf_writers(path, &self.root) {
            None => self.pass_id(
                scope,
                id,
                name,
                Some(path),
                format!(
                    "{}: only root can change it (the file and its directories)",
                    path.display()
                ),
            ),
            Some((at, why)) => {
                let fix = if at == path {
                    let at = shell_path(&at);
                    format!("chown root:root {at}; chmod go-w {at}")
                } else {
                    format!(
                        "keep the file in a directory only root may write (as /etc/libvirt), or \
                         make {} root's and not writable by others (chmod go-w)",
                        shell_path(&at)
                    )
                };
                self.push_id(
                    scope,
                    id,
                    name,
                    State::Fail,
                    Some(path),
                    format!(
                        "{why}: another user than root could change the configuration the \
                         daemon reads as root when it starts (its TLS settings: turn \
                         verification off, name another key)"
                    ),
                    Some(fix),
                )
            }
        }
    }

    /// The configuration file of the checked mode's daemon (none for a pkipath directory),
    /// with the running system daemon it is of and how that was found. For the system files
    /// it is the one the running daemon reads ([`ConfSource::running`]); which file and why is
    /// a line of the report and its `configuration`. A daemon whose file cannot be told (a
    /// relative `-f`) is a warning, and no file is read.
    fn default_conf(&mut self) -> Option<(PathBuf, Option<(Daemon, ConfSource)>)> {
        let name = |d: Daemon| format!("Finding {}'s configuration file", d.name());
        match &self.mode {
            Mode::System => {
                let (daemon, source) = match ConfSource::running(&self.root) {
                    (daemon, Ok(source)) => (daemon, source),
                    (daemon, Err(e)) => {
                        self.push(
                            S,
                            name(daemon),
                            State::Warn,
                            None,
                            format!("{e}: its settings are not checked"),
                            Some(
                                "give the file it reads with --libvirtd-conf FILE (and restart \
                                 it with an absolute -f path)"
                                    .into(),
                            ),
                        );
                        return None;
                    }
                };
                let file = source.file(daemon, &self.root);
                let note = source.note(daemon, &file);
                self.pass(S, name(daemon), Some(&file), note.clone());
                if source.pid().is_some() {
                    self.other_running(daemon);
                }
                self.conf_choice = Some(ConfChoice {
                    daemon: Some(daemon),
                    file: file.clone(),
                    source: source.name(),
                    pid: source.pid(),
                    note,
                });
                Some((file, Some((daemon, source))))
            }
            Mode::User => {
                let file = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .or_else(|| Environment::current().home.map(|h| h.join(".config")))
                    .map(|d| d.join("libvirt/libvirtd.conf"))?;
                self.conf_choice = Some(ConfChoice {
                    daemon: Some(Daemon::Libvirtd),
                    file: file.clone(),
                    source: "unknown",
                    pid: None,
                    note: format!(
                        "checked {}, the session daemon's default configuration file (which \
                         one a running session daemon reads is not looked for)",
                        file.display()
                    ),
                });
                Some((file, None))
            }
            Mode::Path(_) => None,
        }
    }

    /// Every check of libvirtd.conf's TLS settings ([`daemon_conf::audit`]), in the report's
    /// order: the `tls_allowed_dn_list` checks (with the `--client-dn` values) come before
    /// the listener's.
    pub(super) fn conf_checks(
        &mut self,
        conf: &DaemonConf,
        s: &TlsSettings,
        client_dns: &[String],
    ) {
        for check in daemon_conf::audit_settings(conf, s, &self.root) {
            self.conf_line(conf, check);
        }
        self.dn_list_checks(conf, s, client_dns);
        for check in daemon_conf::audit_listener(conf, s) {
            self.conf_line(conf, check);
        }
    }

    /// The report line of a library check of `conf`.
    fn conf_line(&mut self, conf: &DaemonConf, check: ConfCheck) {
        let state = check.severity.map_or(State::Pass, State::from);
        self.conf_push(
            conf,
            format!("Checking {}", check.setting),
            state,
            check.message,
            check.fix,
        );
    }

    /// A CONF line about `conf`.
    pub(super) fn conf_push(
        &mut self,
        conf: &DaemonConf,
        name: impl Into<String>,
        state: State,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        self.push(S, name, state, Some(Path::new(&conf.name)), message, fix);
    }

    /// A passed CONF check of `conf`.
    pub(super) fn conf_pass(
        &mut self,
        conf: &DaemonConf,
        name: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.conf_push(conf, name, State::Pass, message, None);
    }

    /// The files libvirtd.conf names, when it names all of key, certificate and CA.
    pub(super) fn conf_files(&self, s: &TlsSettings) -> Option<Vec<FileSpec>> {
        let file = |ty, setting: &Setting<PathBuf>| FileSpec {
            ty,
            path: daemon_conf::rerooted(&self.root, &setting.value),
            system: self.mode == Mode::System,
        };
        let mut files = vec![file(CertDataType::CaCert, s.ca_file.as_ref()?)];
        let (cert, key) = (s.cert_file.as_ref()?, s.key_file.as_ref()?);
        if let Some(crl) = &s.crl_file {
            files.push(file(CertDataType::CaCrl, crl));
        }
        files.push(file(CertDataType::ServerCert, cert));
        files.push(file(CertDataType::ServerKey, key));
        Some(files)
    }
}
