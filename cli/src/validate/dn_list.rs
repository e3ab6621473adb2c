//! tls_allowed_dn_list: the patterns' mistakes (found by [`virtpki::dn_lint`]) and which
//! clients would get in ([`virtpki::AllowedDnList`]).
//!
//! The clients that matter are those that connect to this host, given with `--client-dn`.
//! This host's own client certificate is for connecting to *other* hosts (migration, a
//! management host): that this host's list rejects it is usually right, so without
//! `--client-dn` it is only a note.

use virtpki::daemon_conf::{DaemonConf, TlsSettings};
use virtpki::dn_lint::{self, DnFinding};
use virtpki::dn_match::pattern_matches;
use virtpki::pem::{self, Parsed};
use virtpki::{AllowedDnList, CertDataType, Role, Source};

use super::{Scope, State, Validator};

/// Whose DN is checked against the list.
enum Clients {
    /// The peers given with `--client-dn`: a rejected one is a warning.
    Given(Vec<String>),
    /// This host's own client certificate: a rejection is a note.
    Own(String),
    None,
}

impl Clients {
    fn dns(&self) -> &[String] {
        match self {
            Clients::Given(dns) => dns,
            Clients::Own(dn) => std::slice::from_ref(dn),
            Clients::None => &[],
        }
    }
}

impl Validator {
    /// The checks of `tls_allowed_dn_list`; `client_dns` are the `--client-dn` values.
    pub(super) fn dn_list_checks(
        &mut self,
        conf: &DaemonConf,
        s: &TlsSettings,
        client_dns: &[String],
    ) {
        // A value libvirtd refuses is reported (FAIL) by the library's audit: "not set"
        // would be a second, contradicting line about the same setting.
        if s.refused("tls_allowed_dn_list") {
            return;
        }
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
        let clients = if client_dns.is_empty() {
            self.own_client_dn().map_or(Clients::None, Clients::Own)
        } else {
            Clients::Given(client_dns.to_vec())
        };
        for pattern in &list.value {
            let pname = format!("Checking DN pattern \"{pattern}\"");
            let findings = lint_for_clients(pattern, clients.dns());
            if findings.is_empty() {
                self.conf_pass(conf, pname, "can match libvirt's DN strings");
            } else {
                self.dn_findings(conf, &pname, list.line, findings);
            }
        }
        let allowed = match AllowedDnList::new(&list.value) {
            Ok(allowed) => allowed,
            Err(e) => {
                let name = "Checking clients against tls_allowed_dn_list";
                return self.conf_push(conf, name, State::Fail, e.to_string(), None);
            }
        };
        match clients {
            Clients::Given(dns) => {
                for dn in dns {
                    self.peer_allowed(conf, &allowed, &dn);
                }
            }
            Clients::Own(dn) => self.own_allowed(conf, &allowed, &dn),
            Clients::None => {}
        }
    }

    /// `--client-dn` given, but no libvirtd.conf was checked: say that nothing was checked
    /// rather than ignore the option.
    pub(super) fn client_dns_unchecked(&mut self, client_dns: &[String]) {
        if client_dns.is_empty() {
            return;
        }
        self.push(
            Scope::Conf,
            "Checking --client-dn against tls_allowed_dn_list",
            State::Info,
            None,
            "no libvirtd.conf was checked, so the --client-dn values were not checked",
            Some(
                "give the daemon's configuration with --libvirtd-conf FILE, and check the \
                 server (no WHAT, or WHAT = server)"
                    .into(),
            ),
        );
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

    /// Whether libvirtd would let a peer given with `--client-dn` in: a warning if not.
    fn peer_allowed(&mut self, conf: &DaemonConf, list: &AllowedDnList, dn: &str) {
        let name = format!("Checking client DN \"{dn}\" against tls_allowed_dn_list");
        match list.matching_pattern(dn) {
            Some(p) => self.conf_pass(conf, name, format!("{dn} is allowed by \"{p}\"")),
            None => self.conf_push(
                conf,
                name,
                State::Warn,
                format!("the client DN {dn} is on no pattern: libvirtd would reject this client"),
                Some(format!(
                    "add \"{dn}\" to tls_allowed_dn_list, if this client is to connect (write \
                     the DN as `virtpki dn CLIENTCERT` prints it)"
                )),
            ),
        }
    }

    /// Whether this host's own client certificate would get in. It is meant for other
    /// hosts, so a rejection is a note, not counted as a warning.
    fn own_allowed(&mut self, conf: &DaemonConf, list: &AllowedDnList, dn: &str) {
        let name = "Checking this host's client certificate against tls_allowed_dn_list";
        match list.matching_pattern(dn) {
            Some(p) => self.conf_pass(
                conf,
                name,
                format!("this host's client DN {dn} is allowed by \"{p}\""),
            ),
            None => self.conf_push(
                conf,
                name,
                State::Info,
                format!(
                    "this host's client certificate ({dn}) is on no pattern, so it cannot \
                     connect to this host's libvirtd: as expected when it is for connecting \
                     to other hosts (migration)"
                ),
                Some(format!(
                    "check the clients that connect here with --client-dn DN (once for each); \
                     add \"{dn}\" to tls_allowed_dn_list only if this host connects to itself"
                )),
            ),
        }
    }

    /// The DN of the client certificate of the checked set, if there is one.
    fn own_client_dn(&self) -> Option<String> {
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

/// The lint of `pattern`, sharpened by the DNs of clients meant to connect
/// ([`dn_lint::lint_pattern`] takes one): a pattern that matches one of them is never
/// reported for its order; otherwise the DN whose reversal it matches (which makes the order
/// finding certain), or else the first.
fn lint_for_clients(pattern: &str, dns: &[String]) -> Vec<DnFinding> {
    let chosen = dns
        .iter()
        .find(|dn| pattern_matches(pattern, dn))
        .or_else(|| {
            dns.iter().find(|dn| {
                dn_lint::lint_pattern(pattern, Some(dn)).iter().any(|f| {
                    matches!(
                        f,
                        DnFinding::Rfc4514Order {
                            reversed_matches_client: true,
                            ..
                        }
                    )
                })
            })
        })
        .or(dns.first());
    dn_lint::lint_pattern(pattern, chosen.map(String::as_str))
}
