//! When the certificates and CRLs of a machine run out: every one of a set of files with its
//! subject (a CRL: its issuer), file, role and deadline, soonest first, for `virtpki expiry`.
//!
//! The sanity check ([`crate::sanity`]) warns of what one context holds; this lists what sits
//! in files, including those no context loads (a CA directory of `virtpki ca init`), so a person
//! or a monitoring system sees the whole machine at once. Days left are
//! [`sanity::days_left`]'s, so both say the same number.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::data_type::CertDataType;
use crate::error::{Error, ErrorKind, Result};
use crate::locations::{self, Environment};
use crate::pem;
use crate::role::Role as TlsRole;
use crate::sanity;
use crate::timefmt::UnixSeconds;

/// What a listed item is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A CA certificate (CA:TRUE, or found where libvirt keeps the CA).
    Ca,
    /// A server certificate (libvirt's servercert.pem, or serverAuth only).
    Server,
    /// A client certificate (libvirt's clientcert.pem, or clientAuth only).
    Client,
    /// A certificate revocation list: its deadline is the next update.
    Crl,
    /// Any other certificate.
    Other,
}

impl Role {
    /// The lower-case name scripts and metrics use: `ca`, `server`, `client`, `crl`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Ca => "ca",
            Role::Server => "server",
            Role::Client => "client",
            Role::Crl => "crl",
            Role::Other => "other",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A file to list, with what its place says it holds (`None`: judged from each certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The file.
    pub path: PathBuf,
    /// What libvirt keeps there, which names the role of a certificate without CA:TRUE.
    pub holds: Option<CertDataType>,
}

impl Target {
    /// A file given by name: certificates or CRLs, judged from what is in it.
    pub fn file(path: impl Into<PathBuf>) -> Target {
        Target {
            path: path.into(),
            holds: None,
        }
    }
}

/// One certificate or CRL and when it runs out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The certificate's subject, a CRL's issuer, as libvirt prints DNs.
    pub subject: String,
    /// The file it is in.
    pub file: PathBuf,
    /// The position in its file (0 for the first): a bundle holds several.
    pub index: usize,
    /// What it is for.
    pub role: Role,
    /// The certificate's not-after, a CRL's next update (`None`: a CRL without one).
    pub not_after: Option<UnixSeconds>,
    /// Whole days from `now` to `not_after`, negative once past ([`sanity::days_left`]).
    pub days_left: Option<i64>,
}

impl Entry {
    /// Whether it has run out at `now`, or runs out within `horizon_days` of it: the rule of
    /// the sanity check's expiry warning ([`sanity::check_with_horizon`]).
    pub fn needs_attention(&self, now: UnixSeconds, horizon_days: u32) -> bool {
        // Past is negative, below any horizon, 0 included.
        self.not_after
            .is_some_and(|t| t.saturating_sub(now) < i64::from(horizon_days) * 86_400)
    }
}

/// Whether anything sits at `path`, whatever it is, not following a link: a link to nothing, a
/// FIFO or a directory where libvirt reads a file is listed, and [`list`] reports it (libvirt
/// would fail to read it, or treat a CRL there as missing), instead of being passed over as if
/// no file were there. [`list`] never opens such a thing for reading (a FIFO would block).
fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// libvirt's CA, CRL, server and client certificate files of `env` (`pkipath` as libvirt's URI
/// parameter): those present, each once, including what is no readable file (a link to
/// nothing, a FIFO), which [`list`] then reports. Keys are left out: they do not expire.
pub fn libvirt_targets(env: &Environment, pkipath: Option<&Path>) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    for role in [TlsRole::Server, TlsRole::Client] {
        for located in locations::libvirt(env, role, pkipath).files {
            let wanted = matches!(
                located.ty,
                CertDataType::CaCert
                    | CertDataType::CaCrl
                    | CertDataType::ServerCert
                    | CertDataType::ClientCert
            );
            if wanted && present(&located.path) && !targets.iter().any(|t| t.path == located.path) {
                targets.push(Target {
                    path: located.path,
                    holds: Some(located.ty),
                });
            }
        }
    }
    targets
}

/// The CA certificate and CRL of a directory made by `virtpki ca init` (`cacert.pem`, and
/// `cacrl.pem` when anything is there: `virtpki crl revoke` makes it). The key is left out.
pub fn ca_dir_targets(dir: &Path) -> Vec<Target> {
    [CertDataType::CaCert, CertDataType::CaCrl]
        .into_iter()
        .map(|ty| Target {
            path: dir.join(locations::libvirt_file_name(ty)),
            holds: Some(ty),
        })
        .filter(|t| t.holds == Some(CertDataType::CaCert) || present(&t.path))
        .collect()
}

/// Every certificate and CRL of `targets` at `now`, soonest deadline first (a CRL without a
/// next update last); a file listed twice is read once. A file that cannot be read, or holds
/// neither certificates nor CRLs (a key), is an error naming it: a monitoring run must not
/// report "all well" for a file it could not judge.
pub fn list(targets: &[Target], now: UnixSeconds) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut seen: Vec<&Path> = Vec::new();
    for target in targets {
        if seen.contains(&target.path.as_path()) {
            continue;
        }
        seen.push(&target.path);
        entries.extend(read(target, now)?);
    }
    entries.sort_by(|a, b| {
        (a.not_after.is_none(), a.not_after, &a.file, a.index).cmp(&(
            b.not_after.is_none(),
            b.not_after,
            &b.file,
            b.index,
        ))
    });
    Ok(entries)
}

fn read(target: &Target, now: UnixSeconds) -> Result<Vec<Entry>> {
    let path = &target.path;
    // A link to nothing: said as such ("No such file" reads as if nothing were there).
    if let (Ok(to), Err(e)) = (std::fs::read_link(path), std::fs::metadata(path)) {
        if e.kind() == std::io::ErrorKind::NotFound {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{}: is a link to nothing ({} does not exist): libvirt finds no file there \
                     (a CA or a server's certificate: it does not start; a CRL: it applies none)",
                    path.display(),
                    to.display()
                ),
            ));
        }
    }
    let entry = |index, subject: &str, role, not_after: Option<UnixSeconds>| Entry {
        subject: subject.to_owned(),
        file: path.clone(),
        index,
        role,
        not_after,
        days_left: not_after.map(|t| sanity::days_left(t, now)),
    };
    let crls = |e: Option<Error>| match pem::read_crls(path) {
        Ok(crls) => Ok(crls
            .iter()
            .enumerate()
            .map(|(i, c)| entry(i, c.issuer(), Role::Crl, c.next_update()))
            .collect()),
        // A file that reads as a CRL but not a usable one: its own error, not "found a CRL
        // where a certificate was expected".
        Err(crl_error) => Err(match e {
            Some(e) if !e.message().contains("found a certificate revocation list") => e,
            _ => crl_error,
        }),
    };
    if target.holds == Some(CertDataType::CaCrl) {
        return crls(None);
    }
    match pem::read_certificates(path) {
        Ok(certs) => Ok(certs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let role = match target.holds {
                    _ if c.is_ca() => Role::Ca,
                    Some(CertDataType::CaCert) => Role::Ca,
                    Some(CertDataType::ServerCert) => Role::Server,
                    Some(CertDataType::ClientCert) => Role::Client,
                    _ => match c.extended_key_usage() {
                        Some(eku) if eku.server_auth && !eku.client_auth => Role::Server,
                        Some(eku) if eku.client_auth && !eku.server_auth => Role::Client,
                        _ => Role::Other,
                    },
                };
                entry(i, c.subject(), role, Some(c.not_after()))
            })
            .collect()),
        // A file given by name may be a CRL: try it as one, else say it holds neither.
        Err(e) if target.holds.is_none() && e.kind() != ErrorKind::Io => crls(Some(Error::new(
            ErrorKind::Parse,
            format!(
                "{}: holds neither a certificate nor a certificate revocation list ({})",
                path.display(),
                e
            ),
        ))),
        Err(e) => Err(e),
    }
}
