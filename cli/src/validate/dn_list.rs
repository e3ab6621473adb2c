//! tls_allowed_dn_list: the patterns' mistakes (found by [`virtpki::dn_lint`]) and whether
//! the client certificate of the checked set would get in ([`virtpki::AllowedDnList`]).

use virtpki::daemon_conf::{DaemonConf, TlsSettings};
use virtpki::dn_lint::{self, DnFinding};
use virtpki::pem::{self, Parsed};
use virtpki::{AllowedDnList, CertDataType, Role, Source};

use super::{State, Validator};

impl Validator {
    pub(super) fn dn_list_checks(&mut self, conf: &DaemonConf, s: &TlsSettings) {
        let name = "Checking tls_allowed_dn_list";
        let Some(list) = &s.allowed_dn_list else {
            return self.conf_pass(
                conf,
                name,
                "not set: every client with a certificate from the CA may connect",
            );
        };
        if list.value.is_empty() {
            let findings = dn_lint::lint_list(&list.value, None);
            return self.dn_findings(conf, name, list.line, findings);
        }
        let client_dn = self.client_dn();
        for pattern in &list.value {
            let pname = format!("Checking DN pattern \"{pattern}\"");
            let findings = dn_lint::lint_pattern(pattern, client_dn.as_deref());
            if findings.is_empty() {
                self.conf_pass(conf, pname, "can match libvirt's DN strings");
            } else {
                self.dn_findings(conf, &pname, list.line, findings);
            }
        }
        if let Some(dn) = client_dn {
            self.client_allowed(conf, &list.value, &dn);
        }
    }

    /// One line for each finding, at the list's line.
    fn dn_findings(
        &mut self,
        conf: &DaemonConf,
        name: &str,
        line: usize,
        findings: Vec<DnFinding>,
    ) {
        for finding in findings {
            self.conf_push(
                conf,
                name,
                State::from(finding.severity()),
                format!("{}: {finding}", conf.location(line)),
                Some(finding.fix()),
            );
        }
    }

    /// Whether libvirtd would let the client certificate's `dn` in.
    fn client_allowed(&mut self, conf: &DaemonConf, patterns: &[String], dn: &str) {
        let name = "Checking the client certificate against tls_allowed_dn_list";
        let list = match AllowedDnList::new(patterns) {
            Ok(list) => list,
            Err(e) => return self.conf_push(conf, name, State::Fail, e.to_string(), None),
        };
        match list.matching_pattern(dn) {
            Some(p) => self.conf_pass(
                conf,
                name,
                format!("the client DN {dn} is allowed by \"{p}\""),
            ),
            None => self.conf_push(
                conf,
                name,
                State::Warn,
                format!(
                    "the client certificate's DN {dn} is on no pattern: libvirtd would reject \
                     this client"
                ),
                Some(format!(
                    "add \"{dn}\" to tls_allowed_dn_list, if this client is to connect"
                )),
            ),
        }
    }

    /// The DN of the client certificate of the checked set, if there is one.
    fn client_dn(&self) -> Option<String> {
        let files = self.default_files(Role::Client);
        let cert = files.iter().find(|f| f.ty == CertDataType::ClientCert)?;
        let (bytes, _) = pem::read_file(&cert.path, CertDataType::ClientCert).ok()?;
        let source = Source::File(cert.path.clone());
        match pem::parse(CertDataType::ClientCert, &bytes, &source).ok()? {
            Parsed::Certificates(certs) => certs.first().map(|c| c.subject().to_owned()),
            _ => None,
        }
    }
}
