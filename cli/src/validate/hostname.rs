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
        const ID: &str = "hostname";
        let name = "Checking cert hostname match";
        let file = cert.source().path().map(Path::to_path_buf);
        // Under --root the files are another machine's (an image, a container): this
        // machine's names say nothing about them, and a mismatch would advise re-issuing.
        if given.is_none() && self.root != Path::new("/") {
            return self.push_id(
                S,
                ID,
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
        let names: Vec<String> = match given {
            Some(h) => vec![h.to_owned()],
            None => machine_names::current(),
        };
        if names.is_empty() {
            return self.push_id(
                S,
                ID,
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
                return self.pass_id(S, ID, name, file.as_deref(), format!("{n} matches {how}"));
            }
            Err(e) => e,
        };
        self.push_id(
            S,
            ID,
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
