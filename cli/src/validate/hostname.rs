//! The server certificate against the names clients connect by: the one given with
//! --hostname, or this machine's names.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::path::Path;

use virtpki::names::NameMatch;
use virtpki::Certificate;

use super::{Scope, State, Validator};

impl Validator {
    /// Whether `cert` is valid for `given` or, without it, for any of this machine's names
    /// (a warning when not: clients may use a name this machine does not know itself by).
    pub(super) fn hostname(&mut self, cert: &Certificate, given: Option<&str>) {
        const S: Scope = Scope::Server;
        let names: Vec<String> = match given {
            Some(h) => vec![h.to_owned()],
            None => machine_names(),
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
        let mut last_err = String::new();
        for n in &names {
            match virtpki::names::check(cert, n, true) {
                Ok(how) => {
                    let how = match how {
                        NameMatch::SubjectAltName => "a subject alternative name",
                        NameMatch::CommonName => {
                            "the Common Name (the certificate has no DNS or IP SAN)"
                        }
                    };
                    return self.pass(S, name, file.as_deref(), format!("{n} matches {how}"));
                }
                Err(e) => last_err = e.message().to_owned(),
            }
        }
        self.push(
            S,
            name,
            State::Warn,
            file.as_deref(),
            format!(
                "Certificate {} owner does not match the hostname {} ({last_err})",
                cert.source(),
                names.join(" or ")
            ),
            Some(format!(
                "if clients connect by another name, check with --hostname NAME; otherwise \
                 re-issue the server certificate with every name clients use as DNS subject \
                 alternative names (certtool template: one dns_name line each: {})",
                names.join(", ")
            )),
        );
    }
}

/// This machine's names: the host name, its short form and its canonical (fully qualified)
/// name, since clients may use any of them.
fn machine_names() -> Vec<String> {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // (the last byte is kept 0 in case it truncates).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr(), buf.len() - 1) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: NUL-terminated, see above.
    let host = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let mut names = vec![host.clone()];
    if let Some((short, _)) = host.split_once('.') {
        names.push(short.to_owned());
    }
    if let Some(fqdn) = canonical_name(&host) {
        names.push(fqdn);
    }
    let mut seen = HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.to_ascii_lowercase()));
    names
}

/// The canonical name the resolver gives `host` (getaddrinfo with AI_CANONNAME).
fn canonical_name(host: &str) -> Option<String> {
    let c_host = CString::new(host).ok()?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; fields set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string, hints and out pointer; res is freed below on success.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is a valid list from getaddrinfo; ai_canonname, if set, is NUL-terminated.
    let name = unsafe {
        let p = (*res).ai_canonname;
        let name = (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned());
        libc::freeaddrinfo(res);
        name
    };
    name
}
