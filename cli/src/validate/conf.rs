//! libvirtd.conf: read (a syntax error is a finding, not a stop) and its TLS settings checked
//! for what makes libvirtd refuse to start, weakens it silently or has no effect.

use std::path::{Path, PathBuf};

use virtpki::daemon_conf::{DaemonConf, Setting, TlsSettings};
use virtpki::locations::Environment;
use virtpki::{CertDataType, ErrorKind};

use super::files::FileSpec;
use super::{Mode, Scope, State, Validator};
use crate::ui::CliError;

const S: Scope = Scope::Conf;

/// `FILE:LINE`, where a setting is.
pub(super) fn at(conf: &DaemonConf, line: usize) -> String {
    format!("{}:{line}", conf.name)
}

impl Validator {
    /// Reads libvirtd.conf: the one given (unreadable = exit 2), or the default one if it
    /// exists. A syntax error is a check failure, not a stop.
    pub(super) fn read_conf(
        &mut self,
        given: Option<&Path>,
    ) -> Result<Option<(DaemonConf, TlsSettings)>, CliError> {
        let path = match given {
            Some(p) => {
                if let Err(e) = std::fs::metadata(p) {
                    return Err(CliError(format!("--libvirtd-conf {}: {e}", p.display())));
                }
                p.to_path_buf()
            }
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

    /// Every check of libvirtd.conf's TLS settings, in the report's order.
    pub(super) fn conf_checks(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        self.setting_errors(conf, s);
        self.repeated_settings(conf);
        self.file_settings(conf, s);
        self.crl_checks(conf, s);
        self.disabled_checks(conf, s);
        self.dn_list_checks(conf, s);
        self.listener_checks(conf, s);
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

    /// Values of the wrong type: libvirtd refuses to start.
    fn setting_errors(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        for e in &s.errors {
            self.conf_push(
                conf,
                format!("Checking {}", e.name),
                State::Fail,
                format!("{}: libvirtd refuses to start", e.message),
                Some(format!("correct line {} of {}", e.line, conf.name)),
            );
        }
    }

    /// A setting given twice: the later lines are silently ignored.
    fn repeated_settings(&mut self, conf: &DaemonConf) {
        for d in conf.duplicates() {
            let first = conf.get(&d.name).map_or(0, |e| e.line);
            self.conf_push(
                conf,
                format!("Checking {}", d.name),
                State::Warn,
                format!(
                    "{}: {} is set again; libvirt uses only the first setting (line {first})",
                    at(conf, d.line),
                    d.name
                ),
                Some(format!("keep one {} line", d.name)),
            );
        }
    }

    /// key_file, cert_file, ca_file: all or none.
    fn file_settings(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        let name = "Checking key_file, cert_file, ca_file";
        let trio = [
            ("key_file", s.key_file.is_some()),
            ("cert_file", s.cert_file.is_some()),
            ("ca_file", s.ca_file.is_some()),
        ];
        let names = |set: bool| -> Vec<&str> {
            trio.iter()
                .filter(|(_, is_set)| *is_set == set)
                .map(|(n, _)| *n)
                .collect()
        };
        let (set, unset) = (names(true), names(false));
        match set.len() {
            0 => self.conf_pass(conf, name, "not set: libvirtd loads its default files"),
            3 => self.conf_pass(
                conf,
                name,
                "all set: the SERVER checks above use these files",
            ),
            _ => self.conf_push(
                conf,
                name,
                State::Fail,
                format!(
                    "{} set but not {}: libvirtd refuses to start (\"No ... path set to match \
                     server ...\"); the SERVER checks above use the default files",
                    set.join(", "),
                    unset.join(", ")
                ),
                Some(format!(
                    "set all three of key_file, cert_file and ca_file in {}, or none",
                    conf.name
                )),
            ),
        }
    }

    /// The files libvirtd.conf names, when it names all of key, certificate and CA.
    pub(super) fn conf_files(&self, s: &TlsSettings) -> Option<Vec<FileSpec>> {
        let file = |ty, setting: &Setting<PathBuf>| FileSpec {
            ty,
            path: self.rerooted(&setting.value),
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

    /// crl_file: a missing file is silently skipped, and an unset one leaves the default
    /// CRL unused.
    fn crl_checks(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        let name = "Checking crl_file";
        match &s.crl_file {
            Some(crl) => {
                let path = self.rerooted(&crl.value);
                if path.exists() {
                    return self.conf_pass(
                        conf,
                        name,
                        format!("libvirtd loads the CRL {}", path.display()),
                    );
                }
                let sibling = path.with_file_name("cacrl.pem");
                let fix = if path.file_name().is_some_and(|n| n == "crl.pem") && sibling.exists() {
                    format!(
                        "crl_file = \"{}\": the default name is cacrl.pem (crl.pem comes from a \
                         mistake in libvirt's documentation)",
                        crl.value.with_file_name("cacrl.pem").display()
                    )
                } else {
                    format!(
                        "install the CA's CRL as {}, or point crl_file at it",
                        path.display()
                    )
                };
                self.conf_push(
                    conf,
                    name,
                    State::Warn,
                    format!(
                        "{}: crl_file {} does not exist: libvirtd silently skips it, so NO \
                         CERTIFICATE IS TREATED AS REVOKED",
                        at(conf, crl.line),
                        path.display()
                    ),
                    Some(fix),
                );
            }
            None if s.ca_file.is_some() && s.cert_file.is_some() && s.key_file.is_some() => {
                let default = self.sys("/etc/pki/CA/cacrl.pem");
                if default.exists() {
                    self.conf_push(
                        conf,
                        name,
                        State::Warn,
                        format!(
                            "crl_file is not set, so {} is not used: with ca_file set, libvirtd \
                             loads only the CRL crl_file names",
                            default.display()
                        ),
                        Some("crl_file = \"/etc/pki/CA/cacrl.pem\"".into()),
                    );
                }
            }
            None => {}
        }
    }

    /// Settings that switch checks off, or that no longer switch anything.
    fn disabled_checks(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        if let Some(v) = s.no_sanity_certificate.as_ref().filter(|v| v.value) {
            self.conf_push(
                conf,
                "Checking tls_no_sanity_certificate",
                State::Warn,
                format!(
                    "{}: tls_no_sanity_certificate = 1: libvirtd skips its load-time checks \
                     of its certificates (virtpki ran them anyway, above)",
                    at(conf, v.line)
                ),
                Some("fix what the checks report, then set tls_no_sanity_certificate = 0".into()),
            );
        }
        if let Some(v) = s.no_verify_certificate.as_ref().filter(|v| v.value) {
            self.conf_push(
                conf,
                "Checking tls_no_verify_certificate",
                State::Warn,
                format!(
                    "{}: tls_no_verify_certificate = 1: CLIENT CERTIFICATES ARE NOT VERIFIED. \
                     Any client that completes the TLS handshake is let in, whoever issued its \
                     certificate, and tls_allowed_dn_list is not applied",
                    at(conf, v.line)
                ),
                Some(format!(
                    "delete the line (or set tls_no_verify_certificate = 0) in {} and restart \
                     libvirtd",
                    conf.name
                )),
            );
        }
        if let Some(line) = s.obsolete_no_verify_address {
            self.conf_push(
                conf,
                "Checking tls_no_verify_address",
                State::Warn,
                format!(
                    "{}: tls_no_verify_address is no longer read by libvirt: it has no effect",
                    at(conf, line)
                ),
                Some(
                    "delete the line; clients skip the host name check with the URI parameter \
                     no_verify=1"
                        .into(),
                ),
            );
        }
    }

    /// listen_tls, tls_port and tls_priority: whether and how libvirtd listens for TLS.
    fn listener_checks(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        if let Some(v) = s.listen_tls.as_ref().filter(|v| !v.value) {
            self.conf_push(
                conf,
                "Checking listen_tls",
                State::Warn,
                format!(
                    "{}: listen_tls = 0: libvirtd (without socket activation) does not listen \
                     for TLS",
                    at(conf, v.line)
                ),
                Some(
                    "set listen_tls = 1 and start libvirtd with --listen, or use socket \
                     activation: systemctl enable --now libvirtd-tls.socket"
                        .into(),
                ),
            );
        }
        if let Some(v) = &s.tls_port {
            self.tls_port(conf, v);
        }
        if let Some(v) = &s.tls_priority {
            self.conf_pass(
                conf,
                "Checking tls_priority",
                format!("GnuTLS priority string \"{}\" (not checked)", v.value),
            );
        }
    }

    /// tls_port: a port number; a name is looked up in /etc/services.
    fn tls_port(&mut self, conf: &DaemonConf, v: &Setting<String>) {
        let name = "Checking tls_port";
        let (state, problem) = match v.value.parse::<u32>() {
            Ok(p) if (1..=65535).contains(&p) => {
                return self.conf_pass(conf, name, format!("TLS port {p}"))
            }
            Ok(p) => (
                State::Fail,
                format!("tls_port \"{p}\" is not a port (1-65535)"),
            ),
            Err(_) => (
                State::Warn,
                format!(
                    "tls_port \"{}\" is not a number: it must be a service name of \
                     /etc/services",
                    v.value
                ),
            ),
        };
        self.conf_push(
            conf,
            name,
            state,
            format!("{}: {problem}", at(conf, v.line)),
            Some("tls_port = \"16514\" (libvirt's default)".into()),
        );
    }
}
