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
    pub(super) fn hostname(&mut self, cert: &Certificate, given: Option<&str>) {
        const S: Scope = Scope::Server;
        let names: Vec<String> = match given {
            Some(h) => vec![h.to_owned()],
            None => machine_names::current(),
        };
        let name = "Checking cert hostname match";
        let file = cert.source().path().map(Path::to_path_buf);
        if names.is_empty() {
            return self.push(
                S,
                name,
                State::Warn,
                file.as_deref(),
                "cannot tell this machine's host name",
                Some("give --hostname NAME, the name clients connect to".into()),
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
                return self.pass(S, name, file.as_deref(), format!("{n} matches {how}"));
            }
            Err(e) => e,
        };
        self.push(
            S,
            name,
            State::Warn,
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
