//! The known-servers store: the server certificates a user has accepted, by host and port.
//!
//! A client that cannot verify a server against a CA can ask its user once ("trust this
//! certificate?") and remember the answer here, like SSH's `known_hosts`. Later connections
//! [`lookup`](KnownServers::lookup) the presented certificate and get a [`TrustStatus`]:
//! trusted, changed (with or without the same public key, so that a renewal can be told apart
//! from a new key) or unknown.
//!
//! [`KnownServersStore`] is the interface; [`KnownServers`] keeps the entries in a file,
//! [`MemoryKnownServers`] in memory, and applications may keep them anywhere else.
//!
//! # File format
//!
//! The file is text, and at the same time a valid PEM bundle, so that `grep`,
//! `openssl x509 -in FILE` or `openssl storeutl -certs FILE` can read it:
//!
//! ```text
//! # Known servers (virtpki). Each "# host" line names a server, the certificate below it is the one accepted.
//! # host example.com port 16514 cert SHA256:0F2A…(64 hex digits) spki SHA256:9B1C… added 2026-11-23T10:00:00Z
//! -----BEGIN CERTIFICATE-----
//! MIIBezCCASCgAwIBAgIU…
//! -----END CERTIFICATE-----
//! # host 2001:db8::1 port any cert SHA256:… spki SHA256:… added 2026-11-23T10:05:00Z
//! -----BEGIN CERTIFICATE-----
//! …
//! -----END CERTIFICATE-----
//! ```
//!
//! - An entry is a `# host NAME` line directly followed by a `CERTIFICATE` PEM block. After the
//!   host come `KEYWORD VALUE` pairs, each at most once, in any order: `port` (1–65535, or `any`,
//!   the default), `cert` and `spki` (the SHA-256 fingerprints of the certificate and of its
//!   public key, `SHA256:` and 64 hex digits), `added` (when the entry was written,
//!   informative). Only `# host NAME` is required, so entries can be written by hand. Host names
//!   are stored normalized: lowercase, without a trailing dot, IP addresses in their canonical
//!   text form.
//! - `# host *` (with `port any` or no port) trusts the certificate below it for any host and
//!   any port. `*` is never part of a host name, so it cannot be meant as one. Such trust
//!   ([`TrustStatus::TrustedAnyHost`]) vouches for the certificate in place of an unknown
//!   issuer, never for a host name it does not carry: only an entry bound to the host does that.
//! - A `cert` fingerprint is always checked against the certificate. When it matches and `spki`
//!   is given too, as in every entry the store writes, `spki` is believed rather than the
//!   certificate parsed again, which keeps opening a large store fast; otherwise the certificate
//!   is parsed and a given `spki` checked.
//! - A file of nothing but `CERTIFICATE` blocks and blank lines is a *plain bundle*: each of its
//!   certificates is trusted for any host and any port, so the certificate-management
//!   proposal's `server/trusted.pem` is a valid store. The first entry the store adds to such a
//!   file gives each of them the explicit `# host * port any` line, which keeps their meaning.
//! - In any other file (one with a `#` line or stray text), a certificate needs its own
//!   `# host` line directly above it (no blank line between); one without is a damaged entry
//!   and trusts nothing. So a header with a typo (`# Host a.example`, `# HOST …`,
//!   `# hostname …`, `# host: …`), a header cut off by a blank line, or one deleted from a store
//!   never makes a certificate trusted for every host: the entry is reported, with the line
//!   number, as damaged. A comment directly above a certificate is such a mistake too.
//! - Blank lines and other lines starting with `#` are comments.
//! - Anything else is a damaged entry: it is reported by [`KnownServers::problems`] with its line
//!   number, ignored by lookups and written back unchanged, as is every comment. A file read
//!   and written back without a change is byte for byte the same.
//!
//! # Concurrency and crashes
//!
//! Readers never lock: writers replace the file by `rename`, so a reader sees the old or the new
//! file. A writer holds an exclusive `flock` on `FILE.lock` while it reads the file afresh,
//! changes it and writes `FILE.tmp`, fsyncs it, renames it over the file and fsyncs the
//! directory; so concurrent writers lose nothing and a crash leaves the old or the new file.
//! The lock is on a separate file because the store file itself is replaced on every write: a
//! writer blocked on the old file's lock would get it after the rename and work on a stale file.
//!
//! A process that has the store open sees other processes' changes: each lookup `stat`s the
//! file (one system call) and reads it again when its device, inode, size, mtime or ctime
//! changed. An entry removed by `virtpki known remove` stops being trusted by a client already
//! running, at its next lookup.
//!
//! # Whose file
//!
//! Whoever may write the file or its directory decides which servers are trusted, so both must
//! belong to the caller or root and be writable by no one else. Each read, and each writer's
//! lock, read and replace, goes through the directory opened once and checked by its
//! descriptor, so a directory swapped in by path meanwhile is never used; the file is not
//! read through a symbolic link at its name (the directory of a link's target is never
//! checked, and a write replaces the link anyway). Root does not make a store below another
//! user's directory (`sudo -E` keeps that user's HOME): the user could not read it.
//!
//! # Network file systems
//!
//! `flock` is only as good as the file system's locking. On a local file system it excludes
//! every other writer. On NFS, Linux (since 2.6.12) emulates `flock` with a byte-range lock on
//! the whole file, taken on the server: NFSv4 in the protocol, NFSv2/v3 through the NLM lock
//! manager (`lockd`, `rpc.statd`). An NFSv2/v3 mount with `nolock`, `local_lock=flock` or
//! `local_lock=all` keeps the lock on the one client: it still excludes writers on that
//! machine, but writers on two clients do not see each other's lock, and when both add at
//! once one entry can be lost (each renames a file built from what it read). The file is never
//! torn even then, since every write is a whole-file rename, and readers take no lock. Keep a
//! store that several machines share written from one of them, or on a local disk. Also on
//! NFS: the lock file must be writable to be locked (an exclusive byte-range lock needs a file
//! open for writing; the store then reports that it cannot lock), and the client's attribute
//! cache can delay when a lookup's `stat` sees another client's change (up to `acregmax`,
//! 60 s by default; `noac` or `actimeo=0` removes the delay).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::certificate::X509CertificateParser;
use x509_parser::nom::Parser;

use crate::error::{Error, ErrorKind, Result};

// The file format, the file store and the memory store each have their own file; everything
// public is re-exported here, so that the paths are `virtpki::known::X`.
mod file_store;
mod format;
mod memory;
#[cfg(test)]
mod tests;

pub use file_store::{KnownServers, MAX_STORE_SIZE};
#[doc(hidden)]
pub use format::rewrite_unchanged;
pub use memory::MemoryKnownServers;

/// Where the store's fingerprints come from; re-exported so that `known::Fingerprint` names it.
pub use crate::cert::Fingerprint;

/// Where a user's known-servers file lives when the application names none:
/// `$XDG_CONFIG_HOME/virtpki/known_servers`, else `~/.config/virtpki/known_servers` (the XDG
/// base-directory rule; a relative or empty `XDG_CONFIG_HOME` is ignored, as the spec says).
/// `None` when there is no home directory either. `virtpki known` and `virtpki probe` share it.
pub fn default_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            crate::locations::Environment::current()
                .home
                .map(|h| h.join(".config"))
        })?;
    Some(config.join("virtpki").join("known_servers"))
}

/// What the store says about a certificate a server presented.
///
/// More statuses may come, so a `match` outside this crate needs a wildcard arm, and that arm
/// should treat what it does not know as not trusted. Without one it does not compile:
///
/// ```compile_fail
/// use virtpki::TrustStatus;
/// fn trusted(s: TrustStatus) -> bool {
///     match s {
///         TrustStatus::Trusted | TrustStatus::TrustedAnyHost => true,
///         TrustStatus::Changed { .. } | TrustStatus::Unknown => false,
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustStatus {
    /// This very certificate is recorded for the host and port, or for the host on any port.
    Trusted,
    /// This very certificate is recorded for any host (a `# host *` entry, or a certificate
    /// of a plain bundle, which has no `#` lines at all), and
    /// nothing is recorded for this host. It vouches for the certificate, not for its names:
    /// verification lets it override an unknown issuer, never a host name mismatch.
    TrustedAnyHost,
    /// The host has another certificate recorded for this port or for any port.
    Changed {
        /// The recorded certificate has the same public key: likely a renewal, not a new key.
        same_key: bool,
    },
    /// Nothing is recorded for the host and port.
    Unknown,
}

/// One accepted certificate, as [`KnownServersStore::entries`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownServer {
    key: Option<HostKey>,
    cert_der: Vec<u8>,
    cert_sha256: Fingerprint,
    spki_sha256: Fingerprint,
    added: Option<String>,
}

impl KnownServer {
    /// The normalized host name or address; `None` for a certificate trusted for any host.
    pub fn host(&self) -> Option<&str> {
        self.key.as_ref().map(|key| key.host.as_str())
    }

    /// The port; `None` for any port.
    pub fn port(&self) -> Option<u16> {
        self.key.as_ref().and_then(|key| key.port())
    }

    /// The certificate, DER-encoded.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The SHA-256 fingerprint of the whole certificate.
    pub fn cert_sha256(&self) -> Fingerprint {
        self.cert_sha256
    }

    /// The SHA-256 fingerprint of the certificate's SubjectPublicKeyInfo.
    pub fn spki_sha256(&self) -> Fingerprint {
        self.spki_sha256
    }

    /// When the entry was written (UTC, e.g. `2026-11-23T10:00:00Z`), if the file says so.
    pub fn added(&self) -> Option<&str> {
        self.added.as_deref()
    }
}

/// What [`KnownServers::add_entry`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    /// A new entry was written.
    New,
    /// This very certificate was recorded for the host and port already; nothing was written.
    AlreadyThere,
    /// The entry with this other certificate was replaced.
    Replaced(KnownServer),
    /// Another certificate is recorded for the host and port and replacing was not asked for:
    /// that entry, kept; nothing was written.
    Kept(KnownServer),
}

/// Refuses a certificate that cannot stand for a server, before a person pins it: a CA
/// certificate (basic constraints CA:TRUE; a verifier refuses a CA as a peer's certificate,
/// so the pin could never be used, and pinning the CA is the likely mistake) and a
/// certificate whose extended key usage forbids serverAuth (a client certificate), by the
/// rule verification applies ([`crate::cert::ExtendedKeyUsage::allows`]).
///
/// Not part of [`KnownServersStore::add`]: "accept always" records only what verification
/// let the validator see, which these rules already passed.
pub fn check_server_certificate(cert: &crate::Certificate) -> Result<()> {
    if cert.is_ca() {
        return Err(Error::new(
            ErrorKind::NotCa,
            format!(
                "{}: \"{}\" is a CA certificate (basic constraints CA:TRUE), not a server's: a \
                 client refuses a CA as the certificate a server presents; pin the server's own \
                 certificate (servercert.pem)",
                cert.source(),
                cert.subject()
            ),
        ));
    }
    if let Some(eku) = cert.extended_key_usage() {
        if !eku.allows(crate::Role::Server) {
            let client = if eku.client_auth {
                " (it is a client certificate)"
            } else {
                ""
            };
            return Err(Error::new(
                ErrorKind::Purpose,
                format!(
                    "{}: \"{}\" is not a server certificate: its extended key usage does not \
                     allow TLS server authentication (serverAuth){client}; pin the server's own \
                     certificate (servercert.pem)",
                    cert.source(),
                    cert.subject()
                ),
            ));
        }
    }
    Ok(())
}

/// A damaged part of a store file: ignored by lookups, kept in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreProblem {
    /// The first line of the damaged part, counting from 1.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl StoreProblem {
    /// A problem on `line`; the message is escaped, since it may quote the file's own text
    /// (a PEM label, a host) and is shown to people.
    fn new(line: usize, message: &str) -> StoreProblem {
        StoreProblem {
            line,
            message: crate::display::escape(message).into_owned(),
        }
    }
}

impl fmt::Display for StoreProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Where accepted server certificates are kept. Implement it to keep them elsewhere than in a
/// file, e.g. in an application's own database.
///
/// `port` is `None` (or `Some(0)`) for "any port". Host names are compared case-insensitively,
/// without a trailing dot, and IP addresses by value (`::1`, `[::1]` and `0:0::1` are one host).
pub trait KnownServersStore: Send + Sync {
    /// What the store says about `cert_der` presented by `host` on `port`.
    ///
    /// With a port, the entry for that port and the host's any-port entry both count; without
    /// one, only the any-port entry does. A certificate trusted for any host
    /// is [`TrustStatus::TrustedAnyHost`] only when nothing is recorded for this host: a host
    /// recorded with another certificate is [`TrustStatus::Changed`], so a bundle never hides
    /// that change.
    fn lookup(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<TrustStatus>;

    /// Records `cert_der` for `host` and `port`, replacing what was recorded for that pair.
    fn add(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<()>;

    /// Forgets the entry for `host` and exactly `port` (`None`: the any-port entry); true if
    /// there was one.
    fn remove(&self, host: &str, port: Option<u16>) -> Result<bool>;

    /// Every usable entry.
    fn entries(&self) -> Result<Vec<KnownServer>>;
}

/// A host and port in normalized form: the key of the store's index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct HostKey {
    host: String,
    /// 0 for any port.
    port: u16,
}

impl HostKey {
    fn new(host: &str, port: Option<u16>) -> Result<HostKey> {
        Ok(HostKey {
            host: normalize_host(host)?,
            port: port.unwrap_or(0),
        })
    }

    fn port(&self) -> Option<u16> {
        (self.port != 0).then_some(self.port)
    }

    fn any_port(&self) -> HostKey {
        HostKey {
            host: self.host.clone(),
            port: 0,
        }
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port() {
            Some(port) => write!(f, "host {} port {port}", self.host),
            None => write!(f, "host {} port any", self.host),
        }
    }
}

/// The one spelling of a host under which it is stored and looked up.
///
/// Lowercase (ASCII), one trailing dot dropped, IP addresses as `IpAddr` displays them, with an
/// IPv6 zone (`%eth0`: an interface name or index, the rule verification uses) kept as
/// written. Names that could break the file format or that cannot be a host (empty, white
/// space, control characters, a colon outside an IPv6 address) are refused.
pub fn normalize_host(host: &str) -> Result<String> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidArg,
            format!("invalid host name {host:?}: {why}"),
        )
    };
    if host.is_empty() {
        return Err(invalid("it is empty"));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains white space or control characters"));
    }
    // "*" is how the file writes "any host"; no host name has one.
    if host.contains('*') {
        return Err(invalid("'*' is not part of a host name"));
    }
    let unbracketed = match host.strip_prefix('[') {
        Some(inside) => Some(
            inside
                .strip_suffix(']')
                .ok_or_else(|| invalid("the '[' has no matching ']'"))?,
        ),
        None => None,
    };
    let bare = unbracketed.unwrap_or(host);
    let (address, zone) = match bare.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (bare, None),
    };
    match (address.parse::<IpAddr>(), zone) {
        (Ok(ip @ IpAddr::V6(_)), Some(zone)) if crate::names::is_zone(zone) => {
            return Ok(format!("{ip}%{zone}"))
        }
        (Ok(IpAddr::V6(_)), Some(_)) => {
            return Err(invalid(
                "the zone after '%' must be an interface name or index (letters, digits, '-._~')",
            ))
        }
        (Ok(ip), None) if unbracketed.is_none() || ip.is_ipv6() => return Ok(ip.to_string()),
        _ => {}
    }
    if unbracketed.is_some() || bare.contains(':') {
        return Err(invalid("it is not a valid IPv6 address"));
    }
    if bare.contains(['[', ']', '%']) {
        return Err(invalid("brackets and '%' belong only in IPv6 addresses"));
    }
    let name = bare.strip_suffix('.').unwrap_or(bare);
    if name.is_empty() {
        return Err(invalid("it has no name before the dot"));
    }
    Ok(name.to_ascii_lowercase())
}

/// What lookups need to know of a certificate: its fingerprints.
#[derive(Clone, Copy)]
struct CertFacts {
    cert: Fingerprint,
    spki: Fingerprint,
}

impl CertFacts {
    /// Parses `der` as one X.509 certificate (extensions unparsed, they are not needed) and
    /// fingerprints it.
    fn of(der: &[u8]) -> std::result::Result<CertFacts, String> {
        let (rest, cert) = X509CertificateParser::new()
            .with_deep_parse_extensions(false)
            .parse(der)
            .map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!(
                "{} bytes of other data follow the certificate",
                rest.len()
            ));
        }
        Ok(CertFacts {
            cert: Fingerprint::of(der),
            spki: Fingerprint::of(cert.public_key().raw),
        })
    }

    /// The facts of a certificate given to [`KnownServersStore::add`] or `lookup`.
    fn of_argument(der: &[u8], host: &str) -> Result<CertFacts> {
        CertFacts::of(der).map_err(|why| {
            Error::new(
                ErrorKind::Parse,
                format!(
                    "the certificate given for host {host:?} is not an X.509 certificate: {why}"
                ),
            )
        })
    }
}

/// The decision shared by every store: `recorded` are the host's entries for the port and for
/// any port.
fn decide(
    recorded: [Option<&KnownServer>; 2],
    trusted_for_any_host: bool,
    presented: &CertFacts,
) -> TrustStatus {
    let recorded = recorded.iter().flatten();
    // What is recorded for this host wins over any-host trust: a host known by another
    // certificate is a change, whatever a bundle says, so the change is never hidden.
    if recorded.clone().any(|s| s.cert_sha256 == presented.cert) {
        TrustStatus::Trusted
    } else if recorded.clone().next().is_some() {
        TrustStatus::Changed {
            same_key: recorded.clone().any(|s| s.spki_sha256 == presented.spki),
        }
    } else if trusted_for_any_host {
        TrustStatus::TrustedAnyHost
    } else {
        TrustStatus::Unknown
    }
}

fn new_server(key: HostKey, cert_der: &[u8], facts: CertFacts) -> KnownServer {
    KnownServer {
        key: Some(key),
        cert_der: cert_der.to_vec(),
        cert_sha256: facts.cert,
        spki_sha256: facts.spki,
        added: Some(utc_timestamp(SystemTime::now())),
    }
}

/// `2026-11-23T10:00:00Z` for `time` (a clock before 1970, or past what RFC 3339 can write, gives
/// the epoch).
fn utc_timestamp(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .try_into()
        .unwrap_or(i64::MAX);
    crate::timefmt::rfc3339(seconds).unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}
