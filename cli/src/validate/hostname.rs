//! The server certificate against the names clients connect by: the one given with
//! --hostname, or this machine's names ([`virtpki::machine_names`]), matched by
//! [`virtpki::names::first_match`].

use std::path::Path;

use virtpki::names::{self, NameMatch};
use virtpki::{machine_names, Certificate};

use super::{Scope, State, Validator};

impl Validator {
    /// Whether `cert` is valid for `given` or, without it, for any of this machine's names
    /// (a warning when not: clients may use a name this machine does not know itself by).
    pub(super) fn hostname(&mut self, cert: &Certificate, given: &[String]) {
        self.hostname_in(Scope::Server, "hostname", cert, given, State::Warn);
    }

    /// [`hostname`](Self::hostname) in `scope` with the id `id`: every name of `given` must
    /// match (a `missing` line for those that do not); without names, any of this machine's.
    pub(super) fn hostname_in(
        &mut self,
        scope: Scope,
        id: &str,
        cert: &Certificate,
        given: &[String],
        missing: State,
    ) {
        let name = "Checking cert hostname match";
        let file = cert.source().path().map(Path::to_path_buf);
        // Under --root the files are another machine's (an image, a container): this
        // machine's names say nothing about them, and a mismatch would advise re-issuing.
        if given.is_empty() && self.root != Path::new("/") {
            return self.push_id(
                scope,
                id,
                name,
                State::Skip,
                file.as_deref(),
                format!(
                    "the files under --root {} are another system's: this machine's host \
                     names are not the ones its clients connect to",
                    self.root.display()
                ),
                Some("give --hostname NAME, the name clients connect to that system by".into()),
            );
        }
        let names: Vec<String> = if given.is_empty() {
            machine_names::current()
        } else {
            given.to_vec()
        };
        if names.is_empty() {
            return self.push_id(
                scope,
                id,
                name,
                State::Warn,
                file.as_deref(),
                "cannot tell this machine's host name",
                Some("give --hostname NAME, the name clients connect to".into()),
            );
        }
        // Given names: each one is used by a peer, so each must match.
        if given.len() > 1 {
            let failed: Vec<(String, String)> = given
                .iter()
                .filter_map(|n| {
                    names::first_match(cert, std::slice::from_ref(n), true)
                        .err()
                        .map(|e| (n.clone(), e.message().to_owned()))
                })
                .collect();
            if failed.is_empty() {
                return self.pass_id(
                    scope,
                    id,
                    name,
                    file.as_deref(),
                    format!("{} match the certificate", given.join(", ")),
                );
            }
            let bad: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
            return self.push_id(
                scope,
                id,
                name,
                missing,
                file.as_deref(),
                format!(
                    "Certificate {} owner does not match the hostname {} ({})",
                    cert.source(),
                    bad.join(" nor "),
                    failed[0].1
                ),
                Some(format!(
                    "re-issue the server certificate with every name peers use as DNS (or IP) \
                     subject alternative names: virtpki issue server --dns NAME for each of {}",
                    given.join(", ")
                )),
            );
        }
        let err = match names::first_match(cert, &names, true) {
            Ok((n, how)) => {
                let how = match how {
                    NameMatch::SubjectAltName => "a subject alternative name",
                    NameMatch::CommonName => {
                        "the Common Name (the certificate has no DNS or IP SAN)"
                    }
                };
                return self.pass_id(
                    scope,
                    id,
                    name,
                    file.as_deref(),
                    format!("{n} matches {how}"),
                );
            }
            Err(e) => e,
        };
        self.push_id(
            scope,
            id,
            name,
            missing,
            file.as_deref(),
            format!(
                "Certificate {} owner does not match the hostname {} ({})",
                cert.source(),
                names.join(" or "),
                err.message()
            ),
            Some(format!(
                "if clients connect by another name, check with --hostname NAME; otherwise \
                 re-issue the server certificate with every name clients use as DNS subject \
                 alternative names (virtpki issue server --dns NAME for each; certtool \
                 template: one dns_name line each: {})",
                names.join(", ")
            )),
        );
    }
}
