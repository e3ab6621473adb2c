//! The TLS settings of a libvirtd.conf checked for what makes libvirtd refuse to start, what
//! silently weakens it and what has no effect, each with a fix.
//!
//! Every check is reported, including those that pass (their message says what libvirtd
//! does with the setting), so that a report can list what was looked at. The checks come in
//! two groups, [`audit_settings`] (values, repeats, files, CRL, switched-off checks) and
//! [`audit_listener`] (whether and how libvirtd listens), so that a report can put the
//! `tls_allowed_dn_list` checks ([`crate::dn_lint`]) between them; [`audit`] runs both.
//!
//! The file checks look at the file system: paths of the file are taken under a root
//! directory ([`rerooted`]), so that a chroot or a test tree can be checked.

use std::path::{Path, PathBuf};

use super::keys::{self, KeyKind};
use super::{DaemonConf, Setting, TlsSettings, Value};
use crate::severity::Severity;

/// The outcome of one check of libvirtd.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfCheck {
    /// The setting or settings checked, as libvirtd.conf spells them (`tls_port`,
    /// `key_file, cert_file, ca_file`).
    pub setting: String,
    /// The line of the setting, when the check is about one line.
    pub line: Option<usize>,
    /// How bad the problem is; `None` when the setting is fine.
    pub severity: Option<Severity>,
    /// What was found; it starts with `FILE:LINE: ` when it is about one line of the file
    /// (except for passed checks).
    pub message: String,
    /// What to do; `None` for a passed check.
    pub fix: Option<String>,
}

impl ConfCheck {
    fn pass(setting: &str, line: Option<usize>, message: String) -> ConfCheck {
        ConfCheck {
            setting: setting.to_owned(),
            line,
            severity: None,
            message,
            fix: None,
        }
    }

    fn problem(
        setting: &str,
        line: Option<usize>,
        severity: Severity,
        message: String,
        fix: String,
    ) -> ConfCheck {
        ConfCheck {
            setting: setting.to_owned(),
            line,
            severity: Some(severity),
            message,
            fix: Some(fix),
        }
    }
}

/// A path libvirtd.conf names, as seen from `root`: an absolute path is taken under it, a
/// relative one is left as it is (libvirtd would take it from its working directory).
pub fn rerooted(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(rel) => root.join(rel),
        Err(_) => path.to_path_buf(),
    }
}

/// Every check of `settings` (read from `conf`), with its files looked for under `root`:
/// [`audit_settings`], then [`audit_listener`]. Passed checks are included, with a message
/// that says what libvirtd does with the setting; `tls_allowed_dn_list` is
/// [`crate::dn_lint`]'s.
pub fn audit(conf: &DaemonConf, settings: &TlsSettings, root: &Path) -> Vec<ConfCheck> {
    let mut checks = audit_settings(conf, settings, root);
    checks.extend(audit_listener(conf, settings));
    checks
}

/// What libvirtd reads and whether it is safe: values it refuses, names it ignores, repeated
/// settings, the key, certificate and CA files, the CRL file and the settings that switch
/// checks off.
pub fn audit_settings(conf: &DaemonConf, settings: &TlsSettings, root: &Path) -> Vec<ConfCheck> {
    let mut checks = Vec::new();
    setting_errors(conf, settings, &mut checks);
    unknown_settings(conf, &mut checks);
    repeated_settings(conf, &mut checks);
    checks.extend(file_settings(conf, settings));
    checks.extend(crl_file(conf, settings, root));
    disabled_checks(conf, settings, &mut checks);
    checks
}

/// Whether and how libvirtd listens for TLS: listen_tls, tls_port and tls_priority.
pub fn audit_listener(conf: &DaemonConf, settings: &TlsSettings) -> Vec<ConfCheck> {
    let mut checks = Vec::new();
    if let Some(v) = settings.listen_tls.as_ref().filter(|v| !v.value) {
        checks.push(ConfCheck::problem(
            "listen_tls",
            Some(v.line),
            Severity::Warning,
            format!(
                "{}: listen_tls = 0: libvirtd (without socket activation) does not listen \
                 for TLS",
                conf.location(v.line)
            ),
            "set listen_tls = 1 and start libvirtd with --listen, or use socket \
             activation: systemctl enable --now libvirtd-tls.socket"
                .into(),
        ));
    }
    if let Some(v) = &settings.tls_port {
        checks.push(tls_port(conf, v));
    }
    if let Some(v) = &settings.tls_priority {
        checks.push(ConfCheck::pass(
            "tls_priority",
            Some(v.line),
            format!("GnuTLS priority string \"{}\" (not checked)", v.value),
        ));
    }
    checks
}

/// Values of the wrong type: libvirtd refuses to start. In file order.
fn setting_errors(conf: &DaemonConf, s: &TlsSettings, checks: &mut Vec<ConfCheck>) {
    let mut errors: Vec<_> = s.errors.iter().collect();
    errors.sort_by_key(|e| e.line);
    for e in errors {
        // A string where a list is expected: the usual slip, with its fix written out.
        let value = conf.get(&e.name).map(|x| &x.value);
        let fix = match (keys::key_kind(&e.name), value, keys::minimum(&e.name)) {
            (Some(KeyKind::StringList), Some(v @ Value::String(_)), _) => {
                format!("{} = [{v}] (a list, in brackets)", e.name)
            }
            // A number below the bound libvirtd checks: the value to write.
            (_, Some(Value::Integer(_)), Some(m)) => m.fix.to_owned(),
            (Some(KeyKind::Mode), Some(Value::String(_)), _) => {
                format!(
                    "{} = \"0770\" (a mode in octal digits, as chmod takes it)",
                    e.name
                )
            }
            _ => format!("correct line {} of {}", e.line, conf.name),
        };
        checks.push(ConfCheck::problem(
            &e.name,
            Some(e.line),
            Severity::Error,
            format!("{}: libvirtd refuses to start", e.message),
            fix,
        ));
    }
}

/// Names libvirtd does not read: it ignores them without a word, so a misspelt setting is
/// as good as absent. One warning for each line, with the key it was probably meant to be.
fn unknown_settings(conf: &DaemonConf, checks: &mut Vec<ConfCheck>) {
    for e in conf.entries() {
        if keys::key_kind(&e.name).is_some() {
            continue;
        }
        let location = conf.location(e.line);
        let (message, fix) = match keys::nearest_key(&e.name) {
            Some(key) => {
                // What the typo costs: the setting meant keeps its default.
                let effect = if conf.get(key).is_some() {
                    String::new()
                } else if key == "tls_allowed_dn_list" {
                    format!(
                        ", so {key} is not set: every client with a certificate from the CA \
                         may connect"
                    )
                } else {
                    format!(", so {key} keeps its default")
                };
                let case = if e.name.eq_ignore_ascii_case(key) {
                    " Names are case-sensitive."
                } else {
                    ""
                };
                (
                    format!(
                        "{location}: unknown setting {} (did you mean {key}?{case}): libvirtd \
                         ignores it{effect}",
                        e.name
                    ),
                    format!(
                        "rename {} to {key} on line {} of {}",
                        e.name, e.line, conf.name
                    ),
                )
            }
            None => (
                format!(
                    "{location}: unknown setting {}: libvirtd reads no setting of this name \
                     and ignores it",
                    e.name
                ),
                format!(
                    "correct the name on line {} of {}, or delete the line",
                    e.line, conf.name
                ),
            ),
        };
        checks.push(ConfCheck::problem(
            &e.name,
            Some(e.line),
            Severity::Warning,
            message,
            fix,
        ));
    }
}

/// A setting given twice: the later lines are silently ignored. Unknown names are left to
/// [`unknown_settings`], which reports every line of them.
fn repeated_settings(conf: &DaemonConf, checks: &mut Vec<ConfCheck>) {
    for d in conf.duplicates() {
        if keys::key_kind(&d.name).is_none() {
            continue;
        }
        let first = conf.get(&d.name).map_or(0, |e| e.line);
        checks.push(ConfCheck::problem(
            &d.name,
            Some(d.line),
            Severity::Warning,
            format!(
                "{}: {} is set again; libvirt uses only the first setting (line {first})",
                conf.location(d.line),
                d.name
            ),
            format!("keep one {} line", d.name),
        ));
    }
}

/// key_file, cert_file, ca_file: all or none. Nothing to say when one of them has a value
/// libvirtd refuses: that error is the finding, and the set would be reported as incomplete
/// (or as not set) for the same line.
fn file_settings(conf: &DaemonConf, s: &TlsSettings) -> Option<ConfCheck> {
    const SETTING: &str = "key_file, cert_file, ca_file";
    if ["key_file", "cert_file", "ca_file"]
        .iter()
        .any(|n| s.refused(n))
    {
        return None;
    }
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
    Some(match set.len() {
        0 => ConfCheck::pass(
            SETTING,
            None,
            "not set: libvirtd loads its default files".into(),
        ),
        3 => ConfCheck::pass(
            SETTING,
            None,
            "all set: the SERVER checks above use these files".into(),
        ),
        _ => ConfCheck::problem(
            SETTING,
            None,
            Severity::Error,
            format!(
                "{} set but not {}: libvirtd refuses to start (\"No ... path set to match \
                 server ...\"); the SERVER checks above use the default files",
                set.join(", "),
                unset.join(", ")
            ),
            format!(
                "set all three of key_file, cert_file and ca_file in {}, or none",
                conf.name
            ),
        ),
    })
}

/// crl_file: a missing file is silently skipped, and an unset one leaves the default CRL
/// unused once ca_file is set. `None` when there is nothing to say (or when crl_file has a
/// value libvirtd refuses, which is said already).
fn crl_file(conf: &DaemonConf, s: &TlsSettings, root: &Path) -> Option<ConfCheck> {
    const SETTING: &str = "crl_file";
    if s.refused(SETTING) {
        return None;
    }
    let Some(crl) = &s.crl_file else {
        let default = root.join("etc/pki/CA/cacrl.pem");
        let files_set = s.ca_file.is_some() && s.cert_file.is_some() && s.key_file.is_some();
        return (files_set && default.exists()).then(|| {
            ConfCheck::problem(
                SETTING,
                None,
                Severity::Warning,
                format!(
                    "crl_file is not set, so {} is not used: with ca_file set, libvirtd loads \
                     only the CRL crl_file names",
                    default.display()
                ),
                "crl_file = \"/etc/pki/CA/cacrl.pem\"".into(),
            )
        });
    };
    let path = rerooted(root, &crl.value);
    if path.exists() {
        return Some(ConfCheck::pass(
            SETTING,
            Some(crl.line),
            format!("libvirtd loads the CRL {}", path.display()),
        ));
    }
    let sibling = path.with_file_name("cacrl.pem");
    // libvirt's documentation once called the file crl.pem.
    let fix = if path.file_name().is_some_and(|n| n == "crl.pem") && sibling.exists() {
        format!(
            "crl_file = \"{}\": the default name is cacrl.pem (crl.pem comes from a mistake in \
             libvirt's documentation)",
            crl.value.with_file_name("cacrl.pem").display()
        )
    } else {
        format!(
            "install the CA's CRL as {}, or point crl_file at it",
            path.display()
        )
    };
    Some(ConfCheck::problem(
        SETTING,
        Some(crl.line),
        Severity::Warning,
        format!(
            "{}: crl_file {} does not exist: libvirtd silently skips it, so NO CERTIFICATE IS \
             TREATED AS REVOKED",
            conf.location(crl.line),
            path.display()
        ),
        fix,
    ))
}

/// Settings that switch checks off, or that no longer switch anything.
fn disabled_checks(conf: &DaemonConf, s: &TlsSettings, checks: &mut Vec<ConfCheck>) {
    if let Some(v) = s.no_sanity_certificate.as_ref().filter(|v| v.value) {
        checks.push(ConfCheck::problem(
            "tls_no_sanity_certificate",
            Some(v.line),
            Severity::Warning,
            format!(
                "{}: tls_no_sanity_certificate = 1: libvirtd skips its load-time checks of its \
                 certificates (virtpki ran them anyway, above)",
                conf.location(v.line)
            ),
            "fix what the checks report, then set tls_no_sanity_certificate = 0".into(),
        ));
    }
    if let Some(v) = s.no_verify_certificate.as_ref().filter(|v| v.value) {
        checks.push(ConfCheck::problem(
            "tls_no_verify_certificate",
            Some(v.line),
            Severity::Warning,
            format!(
                "{}: tls_no_verify_certificate = 1: CLIENT CERTIFICATES ARE NOT VERIFIED. Any \
                 client that completes the TLS handshake is let in, whoever issued its \
                 certificate, and tls_allowed_dn_list is not applied",
                conf.location(v.line)
            ),
            format!(
                "delete the line (or set tls_no_verify_certificate = 0) in {} and restart \
                 libvirtd",
                conf.name
            ),
        ));
    }
    if let Some(line) = s.obsolete_no_verify_address {
        checks.push(ConfCheck::problem(
            "tls_no_verify_address",
            Some(line),
            Severity::Warning,
            format!(
                "{}: tls_no_verify_address is no longer read by libvirt: it has no effect",
                conf.location(line)
            ),
            "delete the line; clients skip the host name check with the URI parameter \
             no_verify=1"
                .into(),
        ));
    }
}

/// tls_port: a port number; a name is looked up in /etc/services.
fn tls_port(conf: &DaemonConf, v: &Setting<String>) -> ConfCheck {
    const SETTING: &str = "tls_port";
    let (severity, problem) = match v.value.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => {
            return ConfCheck::pass(SETTING, Some(v.line), format!("TLS port {p}"))
        }
        Ok(p) => (
            Severity::Error,
            format!("tls_port \"{p}\" is not a port (1-65535)"),
        ),
        Err(_) => (
            Severity::Warning,
            format!(
                "tls_port \"{}\" is not a number: it must be a service name of /etc/services",
                v.value
            ),
        ),
    };
    ConfCheck::problem(
        SETTING,
        Some(v.line),
        severity,
        format!("{}: {problem}", conf.location(v.line)),
        "tls_port = \"16514\" (libvirt's default)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks of `text`, with files looked for under `root`.
    fn checks_under(root: &Path, text: &str) -> Vec<ConfCheck> {
        let conf = DaemonConf::parse(text.as_bytes(), "l.conf").unwrap();
        audit(&conf, &conf.tls_settings(), root)
    }

    fn checks(text: &str) -> Vec<ConfCheck> {
        checks_under(Path::new("/nonexistent-root"), text)
    }

    /// The problems only: (setting, line, severity).
    fn problems(text: &str) -> Vec<(String, Option<usize>, Severity)> {
        checks(text)
            .into_iter()
            .filter_map(|c| c.severity.map(|s| (c.setting, c.line, s)))
            .collect()
    }

    fn one(checks: &[ConfCheck], setting: &str) -> ConfCheck {
        let found: Vec<&ConfCheck> = checks.iter().filter(|c| c.setting == setting).collect();
        assert_eq!(found.len(), 1, "{setting}: {checks:#?}");
        found[0].clone()
    }

    fn p(setting: &str, line: usize, s: Severity) -> (String, Option<usize>, Severity) {
        (setting.to_owned(), Some(line), s)
    }

    #[test]
    fn an_empty_file_passes_with_the_defaults() {
        let c = checks("");
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(c[0].setting, "key_file, cert_file, ca_file");
        assert_eq!(c[0].severity, None);
        assert_eq!(c[0].message, "not set: libvirtd loads its default files");
    }

    #[test]
    fn key_cert_and_ca_are_all_or_none() {
        let c = checks("key_file = \"/k\"\nca_file = \"/ca\"");
        let trio = one(&c, "key_file, cert_file, ca_file");
        assert_eq!(trio.severity, Some(Severity::Error));
        assert!(
            trio.message
                .starts_with("key_file, ca_file set but not cert_file: libvirtd refuses"),
            "{}",
            trio.message
        );
        assert_eq!(
            trio.fix.unwrap(),
            "set all three of key_file, cert_file and ca_file in l.conf, or none"
        );
        let c = checks("key_file = \"/k\"\ncert_file = \"/c\"\nca_file = \"/ca\"");
        assert_eq!(one(&c, "key_file, cert_file, ca_file").severity, None);
        // An empty string is not set.
        let c = checks("key_file = \"\"");
        assert_eq!(one(&c, "key_file, cert_file, ca_file").severity, None);
    }

    #[test]
    fn values_libvirtd_refuses_fail_at_their_line() {
        let c = checks("listen_tls = \"yes\"\ntls_no_verify_certificate = 2");
        let listen = one(&c, "listen_tls");
        assert_eq!(listen.line, Some(1));
        assert_eq!(listen.severity, Some(Severity::Error));
        assert!(listen.message.starts_with("l.conf:1: expected an integer"));
        assert!(listen.message.ends_with(": libvirtd refuses to start"));
        assert_eq!(listen.fix.unwrap(), "correct line 1 of l.conf");
        assert_eq!(
            one(&c, "tls_no_verify_certificate").severity,
            Some(Severity::Error)
        );
    }

    #[test]
    fn repeated_settings_warn_at_the_later_line() {
        let c = checks("tls_port = \"1\"\nlisten_tls = 1\ntls_port = \"2\"");
        let repeat = c
            .iter()
            .find(|c| c.setting == "tls_port" && c.severity.is_some())
            .unwrap();
        assert_eq!(repeat.line, Some(3));
        assert_eq!(repeat.severity, Some(Severity::Warning));
        assert_eq!(
            repeat.message,
            "l.conf:3: tls_port is set again; libvirt uses only the first setting (line 1)"
        );
        assert_eq!(repeat.fix.as_deref(), Some("keep one tls_port line"));
    }

    #[test]
    fn a_missing_crl_file_warns_that_nothing_is_revoked() {
        let c = checks("crl_file = \"/etc/pki/CA/other.pem\"");
        let crl = one(&c, "crl_file");
        assert_eq!(crl.severity, Some(Severity::Warning));
        assert_eq!(crl.line, Some(1));
        assert!(crl.message.contains("NO CERTIFICATE IS TREATED AS REVOKED"));
        assert_eq!(
            crl.fix.unwrap(),
            "install the CA's CRL as /nonexistent-root/etc/pki/CA/other.pem, or point \
             crl_file at it"
        );
    }

    #[test]
    fn crl_pem_next_to_cacrl_pem_is_the_documentation_trap() {
        let root = tempfile::tempdir().unwrap();
        let ca_dir = root.path().join("etc/pki/CA");
        std::fs::create_dir_all(&ca_dir).unwrap();
        std::fs::write(ca_dir.join("cacrl.pem"), b"").unwrap();
        let c = checks_under(root.path(), "crl_file = \"/etc/pki/CA/crl.pem\"");
        let fix = one(&c, "crl_file").fix.unwrap();
        assert!(
            fix.starts_with("crl_file = \"/etc/pki/CA/cacrl.pem\": the default name"),
            "{fix}"
        );
        // Pointing at the existing file passes.
        let c = checks_under(root.path(), "crl_file = \"/etc/pki/CA/cacrl.pem\"");
        let crl = one(&c, "crl_file");
        assert_eq!(crl.severity, None);
        assert!(crl.message.starts_with("libvirtd loads the CRL "));
    }

    #[test]
    fn with_ca_file_set_an_unset_crl_file_leaves_the_default_crl_unused() {
        let root = tempfile::tempdir().unwrap();
        let files = "key_file = \"/k\"\ncert_file = \"/c\"\nca_file = \"/ca\"";
        // No default CRL: nothing to say.
        assert!(checks_under(root.path(), files)
            .iter()
            .all(|c| c.setting != "crl_file"));
        let ca_dir = root.path().join("etc/pki/CA");
        std::fs::create_dir_all(&ca_dir).unwrap();
        std::fs::write(ca_dir.join("cacrl.pem"), b"").unwrap();
        let c = checks_under(root.path(), files);
        let crl = one(&c, "crl_file");
        assert_eq!(crl.severity, Some(Severity::Warning));
        assert_eq!(crl.line, None);
        assert_eq!(
            crl.fix.as_deref(),
            Some("crl_file = \"/etc/pki/CA/cacrl.pem\"")
        );
        // Without ca_file libvirtd loads the default CRL itself.
        assert!(checks_under(root.path(), "")
            .iter()
            .all(|c| c.setting != "crl_file"));
    }

    #[test]
    fn switched_off_checks_warn() {
        assert_eq!(
            problems(
                "tls_no_sanity_certificate = 1\ntls_no_verify_certificate = 1\n\
                 tls_no_verify_address = 0"
            ),
            [
                p("tls_no_sanity_certificate", 1, Severity::Warning),
                p("tls_no_verify_certificate", 2, Severity::Warning),
                p("tls_no_verify_address", 3, Severity::Warning),
            ]
        );
        let c = checks("tls_no_verify_certificate = 1");
        assert!(one(&c, "tls_no_verify_certificate")
            .message
            .starts_with("l.conf:1: tls_no_verify_certificate = 1: CLIENT CERTIFICATES ARE NOT"));
        assert!(
            problems("tls_no_sanity_certificate = 0\ntls_no_verify_certificate = 0").is_empty()
        );
    }

    #[test]
    fn listener_settings() {
        assert_eq!(
            problems("listen_tls = 0"),
            [p("listen_tls", 1, Severity::Warning)]
        );
        assert!(problems("listen_tls = 1").is_empty());
        let c = checks("tls_port = \"16514\"\ntls_priority = \"NORMAL\"");
        assert_eq!(one(&c, "tls_port").message, "TLS port 16514");
        assert_eq!(one(&c, "tls_port").severity, None);
        let priority = one(&c, "tls_priority");
        assert_eq!(priority.severity, None);
        assert_eq!(priority.line, Some(2));
        assert_eq!(
            problems("tls_port = \"0\""),
            [p("tls_port", 1, Severity::Error)]
        );
        assert_eq!(
            problems("tls_port = \"70000\""),
            [p("tls_port", 1, Severity::Error)]
        );
        let c = checks("tls_port = \"libvirt-tls\"");
        let port = one(&c, "tls_port");
        assert_eq!(port.severity, Some(Severity::Warning));
        assert_eq!(
            port.message,
            "l.conf:1: tls_port \"libvirt-tls\" is not a number: it must be a service name of \
             /etc/services"
        );
    }

    #[test]
    fn the_groups_come_in_order() {
        let text = "listen_tls = 0\ntls_no_verify_certificate = 1\nlisten_tls = 1";
        let conf = DaemonConf::parse(text.as_bytes(), "l.conf").unwrap();
        let s = conf.tls_settings();
        let settings = audit_settings(&conf, &s, Path::new("/"));
        let listener = audit_listener(&conf, &s);
        let order: Vec<&str> = settings
            .iter()
            .chain(&listener)
            .map(|c| c.setting.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "listen_tls",
                "key_file, cert_file, ca_file",
                "tls_no_verify_certificate",
                "listen_tls"
            ]
        );
        assert_eq!(
            audit(&conf, &s, Path::new("/")),
            [settings, listener].concat()
        );
    }

    #[test]
    fn unknown_keys_warn_with_the_nearest_key() {
        let c = checks(
            "tls_alowed_dn_list = [\"C=GB,CN=a\"]\ntls_no_verify_cert = 1\nlsiten_tcp = 1\n\
             future_key = 2\nlisten_tcp = 0\nfuture_key = 3",
        );
        let dn = one(&c, "tls_alowed_dn_list");
        assert_eq!(dn.severity, Some(Severity::Warning));
        assert_eq!(dn.line, Some(1));
        assert_eq!(
            dn.message,
            "l.conf:1: unknown setting tls_alowed_dn_list (did you mean tls_allowed_dn_list?): \
             libvirtd ignores it, so tls_allowed_dn_list is not set: every client with a \
             certificate from the CA may connect"
        );
        assert_eq!(
            dn.fix.as_deref(),
            Some("rename tls_alowed_dn_list to tls_allowed_dn_list on line 1 of l.conf")
        );
        let verify = one(&c, "tls_no_verify_cert");
        assert!(
            verify.message.contains(
                "(did you mean tls_no_verify_certificate?): libvirtd ignores it, so \
                 tls_no_verify_certificate keeps its default"
            ),
            "{}",
            verify.message
        );
        // listen_tcp is set further down: no word about its default.
        let listen = one(&c, "lsiten_tcp");
        assert!(
            listen
                .message
                .ends_with("(did you mean listen_tcp?): libvirtd ignores it"),
            "{}",
            listen.message
        );
        let case = checks("Listen_TLS = 1");
        assert!(
            one(&case, "Listen_TLS").message.starts_with(
                "l.conf:1: unknown setting Listen_TLS (did you mean listen_tls? Names are \
                 case-sensitive.): libvirtd ignores it, so listen_tls keeps its default"
            ),
            "{case:#?}"
        );
        // No suggestion for an unrelated name; each of its lines is reported, and its
        // repetition is not reported again as a repeat.
        let future: Vec<&ConfCheck> = c.iter().filter(|c| c.setting == "future_key").collect();
        assert_eq!(future.len(), 2, "{c:#?}");
        assert_eq!(future[1].line, Some(6));
        assert!(
            future[0]
                .message
                .starts_with("l.conf:4: unknown setting future_key: libvirtd reads no setting"),
            "{}",
            future[0].message
        );
        assert_eq!(
            future[0].fix.as_deref(),
            Some("correct the name on line 4 of l.conf, or delete the line")
        );
        // Every name of libvirt's sample file is known.
        let all: String = keys::KEYS
            .iter()
            .map(|(k, _)| format!("{k} = 0\n"))
            .collect();
        let conf = DaemonConf::parse(all.as_bytes(), "l.conf").unwrap();
        let mut c = Vec::new();
        unknown_settings(&conf, &mut c);
        assert!(c.is_empty(), "{c:#?}");
    }

    #[test]
    fn a_string_for_a_list_is_one_error_with_the_brackets_as_fix() {
        let c = checks("tls_allowed_dn_list = \"C=GB,CN=a\"");
        let found: Vec<&ConfCheck> = c
            .iter()
            .filter(|c| c.setting == "tls_allowed_dn_list")
            .collect();
        assert_eq!(found.len(), 1, "{c:#?}");
        assert_eq!(found[0].severity, Some(Severity::Error));
        assert_eq!(
            found[0].fix.as_deref(),
            Some("tls_allowed_dn_list = [\"C=GB,CN=a\"] (a list, in brackets)")
        );
        assert!(TlsSettings::refused(
            &DaemonConf::parse(b"tls_allowed_dn_list = \"x\"", "l")
                .unwrap()
                .tls_settings(),
            "tls_allowed_dn_list"
        ));
    }

    #[test]
    fn a_refused_file_setting_is_not_also_reported_as_unset() {
        // key_file refused: no "set but not key_file" and no "not set" beside the error.
        for text in [
            "key_file = 1\ncert_file = \"/c\"\nca_file = \"/ca\"",
            "key_file = 1",
        ] {
            let c = checks(text);
            assert!(
                c.iter()
                    .all(|c| c.setting != "key_file, cert_file, ca_file"),
                "{c:#?}"
            );
            assert_eq!(one(&c, "key_file").severity, Some(Severity::Error));
        }
        let root = tempfile::tempdir().unwrap();
        let ca_dir = root.path().join("etc/pki/CA");
        std::fs::create_dir_all(&ca_dir).unwrap();
        std::fs::write(ca_dir.join("cacrl.pem"), b"").unwrap();
        let c = checks_under(
            root.path(),
            "key_file = \"/k\"\ncert_file = \"/c\"\nca_file = \"/ca\"\ncrl_file = [\"/x\"]",
        );
        assert_eq!(one(&c, "crl_file").severity, Some(Severity::Error));
    }

    #[test]
    fn every_known_key_is_read_with_its_type() {
        assert_eq!(
            problems(
                "max_workers = \"20\"\nkeepalive_interval = -1\nkeepalive_count = -1\n\
                 audit_logging = 2\naccess_drivers = \"polkit\"\nauth_tls = \"sals\"\n\
                 auth_tcp = \"sasl\"\nlog_outputs = 3\nmin_workers = 4294967296\n\
                 keepalive_required = \"anything\""
            ),
            [
                p("max_workers", 1, Severity::Error),
                p("keepalive_count", 3, Severity::Error),
                p("audit_logging", 4, Severity::Error),
                p("access_drivers", 5, Severity::Error),
                p("auth_tls", 6, Severity::Error),
                p("log_outputs", 8, Severity::Error),
                p("min_workers", 9, Severity::Error),
            ]
        );
        let c = checks("auth_tls = \"sals\"\nkeepalive_count = -1");
        assert_eq!(
            one(&c, "auth_tls").message,
            "l.conf:1: unsupported auth \"sals\" for 'auth_tls' (none, sasl or polkit): \
             libvirtd refuses to start"
        );
        assert_eq!(
            one(&c, "keepalive_count").message,
            "l.conf:2: 'keepalive_count' must be an integer from 0 to 4294967295, not -1: \
             libvirtd refuses to start"
        );
    }

    #[test]
    fn numbers_below_libvirtd_s_bounds_stop_it() {
        // daemonConfigLoadOptions refuses both; the issue's exact values.
        let c = checks("max_workers = 0\ntcp_min_ssf = 10\nmin_workers = 0");
        let workers = one(&c, "max_workers");
        assert_eq!(workers.line, Some(1));
        assert_eq!(workers.severity, Some(Severity::Error));
        assert_eq!(
            workers.message,
            "l.conf:1: max_workers = 0: 'max_workers' must be greater than 0: libvirtd \
             refuses to start"
        );
        assert_eq!(
            workers.fix.unwrap(),
            "max_workers = 20 (libvirt's default), or any number from 1"
        );
        let ssf = one(&c, "tcp_min_ssf");
        assert_eq!(ssf.line, Some(2));
        assert_eq!(ssf.severity, Some(Severity::Error));
        assert!(ssf.message.contains("lower than 112 are not supported"));
        assert!(ssf.fix.unwrap().starts_with("tcp_min_ssf = 112"));
        // min_workers has no bound of its own; the bounds themselves pass; a value libvirtd
        // refuses for its type is reported once.
        assert!(c.iter().all(|c| c.setting != "min_workers"));
        assert_eq!(problems("max_workers = 1\ntcp_min_ssf = 112"), []);
        assert_eq!(
            problems("max_workers = -1"),
            [p("max_workers", 1, Severity::Error)]
        );
        assert_eq!(
            one(&checks("tcp_min_ssf = -1"), "tcp_min_ssf").fix.unwrap(),
            "tcp_min_ssf = 112, or delete the line (the default, 56, is allowed only unset)"
        );
    }

    #[test]
    fn a_socket_mode_libvirtd_cannot_parse_stops_it() {
        let c = checks(
            "unix_sock_rw_perms = \"rwxrwx---\"\nunix_sock_ro_perms = \"0778\"\n\
             unix_sock_admin_perms = \"0700\"",
        );
        let rw = one(&c, "unix_sock_rw_perms");
        assert_eq!(rw.line, Some(1));
        assert_eq!(rw.severity, Some(Severity::Error));
        assert_eq!(
            rw.message,
            "l.conf:1: unix_sock_rw_perms = \"rwxrwx---\" is not an octal mode: libvirtd \
             fails to parse it: libvirtd refuses to start"
        );
        assert_eq!(
            rw.fix.unwrap(),
            "unix_sock_rw_perms = \"0770\" (a mode in octal digits, as chmod takes it)"
        );
        assert_eq!(one(&c, "unix_sock_ro_perms").line, Some(2));
        assert!(c.iter().all(|c| c.setting != "unix_sock_admin_perms"));
        // What strtol in base 8 takes whole passes; a number, not a string, is a type error.
        for ok in ["0777", "770", " 0700", "+0700", "0"] {
            let text = format!("unix_sock_ro_perms = \"{ok}\"");
            assert_eq!(problems(&text), [], "{ok}");
        }
        for bad in ["", "0700 ", "0x1ff", "9", "077777777777"] {
            let text = format!("unix_sock_ro_perms = \"{bad}\"");
            assert_eq!(
                problems(&text),
                [p("unix_sock_ro_perms", 1, Severity::Error)],
                "{bad:?}"
            );
        }
        assert!(
            one(&checks("unix_sock_ro_perms = 777"), "unix_sock_ro_perms")
                .message
                .contains("expected a string")
        );
    }

    #[test]
    fn paths_are_taken_under_the_root() {
        let root = Path::new("/r");
        assert_eq!(rerooted(root, Path::new("/etc/x")), Path::new("/r/etc/x"));
        assert_eq!(rerooted(root, Path::new("rel/x")), Path::new("rel/x"));
    }
}
