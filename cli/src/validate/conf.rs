//! libvirtd.conf: found for the checked mode and read (a syntax error is a finding, not a
//! stop); its TLS settings are checked by the library ([`daemon_conf::audit`]) and reported
//! here.

use std::path::{Path, PathBuf};

use virtpki::daemon_conf::{self, ConfCheck, DaemonConf, Setting, TlsSettings};
use virtpki::locations::Environment;
use virtpki::{CertDataType, ErrorKind};

use super::files::FileSpec;
use super::{Mode, Scope, State, Validator};
use crate::ui::CliError;

const S: Scope = Scope::Conf;

impl Validator {
    /// Reads libvirtd.conf: the one given (unreadable = exit 2), or the default one if it
    /// exists. A syntax error is a check failure, not a stop.
    pub(super) fn read_conf(
        &mut self,
        given: Option<&Path>,
    ) -> Result<Option<(DaemonConf, TlsSettings)>, CliError> {
        let path = match given {
            // Checked with the other given paths (`crate::given`) before the command ran.
            Some(p) => p.to_path_buf(),
            None => match self.default_conf() {
                Some(p) if p.exists() => p,
                Some(p) => {
                    self.pass(
                        S,
                        "Checking libvirtd.conf",
                        Some(&p),
                        format!("{} does not exist: libvirtd uses its defaults", p.display()),
                    );
                    return Ok(None);
                }
                None => return Ok(None),
            },
        };
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
            Err(e) => Err(e.into()),
        }
    }

    /// The libvirtd.conf of the checked mode's daemon (none for a pkipath directory).
    fn default_conf(&self) -> Option<PathBuf> {
        match &self.mode {
            Mode::System => Some(self.sys("/etc/libvirt/libvirtd.conf")),
            Mode::User => std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| Environment::current().home.map(|h| h.join(".config")))
                .map(|d| d.join("libvirt/libvirtd.conf")),
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
