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

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::{PemObject, SectionKind};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::nom::Parser;

use crate::error::{Error, ErrorKind, Result};
use crate::fsutil::{self, Dir, LockError, ReadError, Replace, WriteSpec};

/// How long [`KnownServers::add`] and [`KnownServers::remove`] wait for another writer.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The comment that starts a new store file, for the person who opens it.
const NEW_FILE_BANNER: &str = "# Known servers (virtpki). Each \"# host\" line names a server, \
the certificate below it is the one accepted.\n# \"# host * port any\" trusts the certificate \
below it for any host; a certificate without a \"# host\" line is trusted for nothing.\n";

/// What stores written before `# host *` existed begin with; its second line is no longer
/// true, so it is replaced by [`NEW_FILE_BANNER`] when such a file is written again.
const OLD_FILE_BANNER: &str = "# Known servers (virtpki). Each \"# host\" line names a server, \
the certificate below it is the one accepted.\n# A certificate without a \"# host\" line is \
trusted for any host.\n";

/// The host of the `# host` line of an entry trusted for any host.
const ANY_HOST: &str = "*";

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A SHA-256 fingerprint, written `SHA256:` followed by 64 uppercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    const PREFIX: &'static str = "SHA256:";

    /// The fingerprint of `data`.
    pub fn of(data: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, data);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::PREFIX)?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Reads `SHA256:` and 64 hex digits (either case; no colons between them).
    fn from_str(text: &str) -> Result<Fingerprint> {
        let invalid = || {
            Error::new(
                ErrorKind::Parse,
                format!("{text:?} is not a fingerprint: expected \"SHA256:\" and 64 hex digits"),
            )
        };
        let hex = text.strip_prefix(Self::PREFIX).ok_or_else(invalid)?;
        if hex.len() != 64 {
            return Err(invalid());
        }
        let digit = |b: u8| char::from(b).to_digit(16);
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let (high, low) = digit(pair[0]).zip(digit(pair[1])).ok_or_else(invalid)?;
            *byte = (high << 4 | low) as u8;
        }
        Ok(Fingerprint(bytes))
    }
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
fn normalize_host(host: &str) -> Result<String> {
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

/// `2026-11-23T10:00:00Z` for `time`.
fn utc_timestamp(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .try_into()
        .unwrap_or(libc::time_t::MAX);
    // SAFETY: `tm` is plain integers and a pointer that may be null, so all-zero is a valid
    // value; gmtime_r reads `seconds` and writes only into the `tm` it is given.
    let converted = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        (!libc::gmtime_r(&seconds, &mut tm).is_null()).then_some(tm)
    };
    let Some(tm) = converted else {
        return "1970-01-01T00:00:00Z".to_owned();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

// ---------------------------------------------------------------------------------------------
// The file: parsing into chunks, and writing them back.

/// Bytes of the file: a range of the text that was read, or new text.
#[derive(Clone)]
enum Text {
    /// `lines` lines of the source, counted when read, as they are needed for every message.
    Original {
        range: Range<usize>,
        lines: usize,
    },
    New(Vec<u8>),
}

impl Text {
    fn bytes<'a>(&'a self, source: &'a [u8]) -> &'a [u8] {
        match self {
            Text::Original { range, .. } => &source[range.clone()],
            Text::New(bytes) => bytes,
        }
    }

    fn lines(&self) -> usize {
        match self {
            Text::Original { lines, .. } => *lines,
            Text::New(bytes) => bytes.iter().filter(|&&b| b == b'\n').count(),
        }
    }
}

/// A stretch of the file. The file is kept as the list of its chunks, so that writing it back
/// reproduces everything that was not changed byte for byte.
enum Chunk {
    /// Blank lines and comments.
    Comment(Text),
    /// Something that is not a usable entry, and why.
    Damaged { text: Text, why: String },
    /// A usable entry: a certificate with or without its `# host` line.
    Server { text: Text, server: KnownServer },
}

impl Chunk {
    fn text(&self) -> &Text {
        match self {
            Chunk::Comment(text) | Chunk::Damaged { text, .. } | Chunk::Server { text, .. } => text,
        }
    }

    fn is_entry_for(&self, key: &HostKey) -> bool {
        matches!(self, Chunk::Server { server, .. } if server.key.as_ref() == Some(key))
    }

    /// A chunk for a new entry, in the format the module documentation describes.
    fn for_new_server(server: KnownServer) -> Chunk {
        let mut text = header_line(&server);
        let block = pem::Pem::new("CERTIFICATE", server.cert_der.clone());
        let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        text.push_str(&pem::encode_config(&block, config));
        Chunk::Server {
            text: Text::New(text.into_bytes()),
            server,
        }
    }

    /// Gives an entry of a plain bundle, trusted for any host without a `# host` line, the
    /// explicit `# host *` line, its certificate block kept as it was. Done to each such entry
    /// when a plain bundle is written back: the new entry's `# host` line ends the file's
    /// being a plain bundle, and the certificates must keep their meaning.
    fn make_explicit(&mut self, source: &[u8]) {
        if let Chunk::Server { text, server } = self {
            if server.key.is_none() {
                let mut explicit = header_line(server).into_bytes();
                explicit.extend_from_slice(text.bytes(source));
                *text = Text::New(explicit);
            }
        }
    }
}

/// The `# host` line the store writes for `server`, with its newline.
fn header_line(server: &KnownServer) -> String {
    let (host, port) = match &server.key {
        Some(key) => (key.host.as_str(), key.port()),
        None => (ANY_HOST, None),
    };
    let mut line = format!(
        "# host {host} port {} cert {} spki {}",
        port.map_or("any".to_owned(), |p| p.to_string()),
        server.cert_sha256,
        server.spki_sha256
    );
    if let Some(added) = &server.added {
        line.push_str(" added ");
        line.push_str(added);
    }
    line.push('\n');
    line
}

/// A line of the file: where it is and what it looks like.
struct Line {
    /// The line without its end (`\n` or `\r\n`).
    content: Range<usize>,
    /// The line with its end.
    whole: Range<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Blank,
    Comment,
    Header,
    /// A comment that starts like a `# host` line but is not one: `# Host`, `# HOST`,
    /// `# hostname`, `# host:`. Directly above a certificate it makes a damaged entry.
    Misspelt,
    Begin,
    End,
    Other,
}

fn line_kind(content: &[u8]) -> LineKind {
    let trimmed = content.trim_ascii();
    if trimmed.is_empty() {
        LineKind::Blank
    } else if let Some(comment) = trimmed.strip_prefix(b"#") {
        let comment = comment.trim_ascii_start();
        match comment.strip_prefix(b"host") {
            Some(rest) if rest.first().is_none_or(u8::is_ascii_whitespace) => LineKind::Header,
            _ if comment
                .get(..4)
                .is_some_and(|word| word.eq_ignore_ascii_case(b"host")) =>
            {
                LineKind::Misspelt
            }
            _ => LineKind::Comment,
        }
    } else if trimmed.starts_with(b"-----BEGIN ") && trimmed.ends_with(b"-----") {
        LineKind::Begin
    } else if trimmed.starts_with(b"-----END ") && trimmed.ends_with(b"-----") {
        LineKind::End
    } else {
        LineKind::Other
    }
}

fn split_lines(source: &[u8]) -> Vec<Line> {
    // Base64 lines are 64 characters: a good guess saves regrowing a large vector.
    let mut lines = Vec::with_capacity(source.len() / 64 + 1);
    let mut start = 0;
    while start < source.len() {
        let (end, next) = match source[start..].iter().position(|&b| b == b'\n') {
            Some(offset) => (start + offset, start + offset + 1),
            None => (source.len(), source.len()),
        };
        let content_end = if end > start && source[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        lines.push(Line {
            content: start..content_end,
            whole: start..next,
        });
        start = next;
    }
    lines
}

/// What a `# host` line says.
struct Header {
    /// `None` for `# host *`: any host.
    key: Option<HostKey>,
    cert: Option<Fingerprint>,
    spki: Option<Fingerprint>,
    added: Option<String>,
}

fn parse_header(content: &[u8]) -> std::result::Result<Header, String> {
    let text = std::str::from_utf8(content).map_err(|_| "the line is not UTF-8 text".to_owned())?;
    let mut words = text
        .trim_start()
        .trim_start_matches('#')
        .split_ascii_whitespace();
    words.next(); // "host", as line_kind made sure
    let host = words.next().ok_or("the \"# host\" line names no host")?;
    let host = match host {
        ANY_HOST => None,
        name => Some(normalize_host(name).map_err(|e| e.message().to_owned())?),
    };
    let (mut port, mut cert, mut spki, mut added) = (None, None, None, None);
    while let Some(keyword) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("the keyword {keyword:?} has no value"))?;
        let twice = || format!("the keyword {keyword:?} is given twice");
        let fingerprint =
            |value: &str| Fingerprint::from_str(value).map_err(|e| e.message().to_owned());
        match keyword {
            "port" if port.is_some() => return Err(twice()),
            "port" if value == "any" => port = Some(0),
            "port" => {
                port = Some(value.parse::<u16>().map_err(|_| {
                    format!("the port {value:?} is not a number from 1 to 65535 or \"any\"")
                })?)
            }
            "cert" if cert.is_some() => return Err(twice()),
            "cert" => cert = Some(fingerprint(value)?),
            "spki" if spki.is_some() => return Err(twice()),
            "spki" => spki = Some(fingerprint(value)?),
            "added" if added.is_some() => return Err(twice()),
            "added" => added = Some(value.to_owned()),
            _ => {
                return Err(format!(
                    "unknown keyword {keyword:?} in the \"# host\" line"
                ))
            }
        }
    }
    let port = port.unwrap_or(0);
    if host.is_none() && port != 0 {
        return Err(format!(
            "an entry for any host (\"# host {ANY_HOST}\") is for any port, not port {port}"
        ));
    }
    Ok(Header {
        key: host.map(|host| HostKey { host, port }),
        cert,
        spki,
        added,
    })
}

/// Whether the file is a plain PEM bundle: nothing but PEM blocks and blank lines. Only there
/// does a certificate without a `# host` line stand for "any host"; any `#` line or stray text
/// makes the file a store, in which every certificate needs its own `# host` line. So no typo
/// in, or loss of, a header line can turn a certificate into one trusted for every host.
fn is_plain_bundle(kinds: &[LineKind]) -> bool {
    let mut in_block = false;
    for kind in kinds {
        match kind {
            LineKind::Blank => {}
            LineKind::Comment | LineKind::Header | LineKind::Misspelt => return false,
            LineKind::Begin => in_block = true,
            LineKind::End if in_block => in_block = false,
            LineKind::End => return false,
            LineKind::Other if in_block => {}
            LineKind::Other => return false,
        }
    }
    true
}

/// The file as chunks, and whether it is a plain bundle (see [`is_plain_bundle`]).
struct Parsed {
    chunks: Vec<Chunk>,
    plain_bundle: bool,
}

/// Splits the file into chunks. Linear in its size: each certificate is decoded once, and
/// parsed at most once.
fn parse_chunks(source: &[u8]) -> Parsed {
    let lines = split_lines(source);
    let kinds: Vec<LineKind> = lines
        .iter()
        .map(|line| line_kind(&source[line.content.clone()]))
        .collect();
    let plain_bundle = is_plain_bundle(&kinds);
    // The lines `from..to`, as text of the source.
    let span = |from: usize, to: usize| Text::Original {
        range: lines[from].whole.start..lines[to - 1].whole.end,
        lines: to - from,
    };
    let quoted = |line: usize| {
        let text = String::from_utf8_lossy(&source[lines[line].content.clone()]);
        format!("{:?}", text.trim())
    };
    // A PEM block starting at line `begin` ends after its END line (`true`); one that meets
    // another entry or the end of the file first is unterminated (`false`) and ends before it.
    let block_end = |begin: usize| -> (usize, bool) {
        for (i, kind) in kinds.iter().enumerate().skip(begin + 1) {
            match kind {
                LineKind::End => return (i + 1, true),
                LineKind::Begin | LineKind::Header => return (i, false),
                _ => {}
            }
        }
        (lines.len(), false)
    };

    let mut chunks: Vec<Chunk> = Vec::new();
    // A "# host" line cut off from its certificate by blank or comment lines, if any: the
    // certificate must not become trusted for any host by that mistake.
    let mut detached_header: Option<usize> = None;
    let mut i = 0;
    while i < lines.len() {
        let followed_by_block = kinds.get(i + 1) == Some(&LineKind::Begin);
        match kinds[i] {
            LineKind::Blank | LineKind::Comment => {
                push_comment(&mut chunks, span(i, i + 1));
                i += 1;
            }
            LineKind::Misspelt if !followed_by_block => {
                push_comment(&mut chunks, span(i, i + 1));
                i += 1;
            }
            LineKind::Header if !followed_by_block => {
                chunks.push(Chunk::Damaged {
                    text: span(i, i + 1),
                    why: "the \"# host\" line is not directly followed by a certificate".to_owned(),
                });
                detached_header = Some(i);
                i += 1;
            }
            LineKind::Header | LineKind::Misspelt | LineKind::Begin => {
                let header = (kinds[i] != LineKind::Begin).then_some(i);
                let begin = header.map_or(i, |h| h + 1);
                let (end, terminated) = block_end(begin);
                let text = span(i, end);
                let block = &source[lines[begin].whole.start..lines[end - 1].whole.end];
                let entry = match (kinds[i], detached_header.take()) {
                    (LineKind::Misspelt, _) => Err(format!(
                        "{} is not a \"# host\" line (that is \"# host\" in lowercase, a \
                         space, then the host name, or \"{ANY_HOST}\" for any host); the \
                         certificate below it is not trusted",
                        quoted(i)
                    )),
                    (LineKind::Begin, Some(h)) => Err(format!(
                        "the certificate is separated from its \"# host\" line (line {}); it \
                         is not trusted for any host",
                        h + 1
                    )),
                    (LineKind::Begin, None) if !plain_bundle => Err(format!(
                        "the certificate has no \"# host\" line directly above it, so it is \
                         not trusted; only in a file of nothing but certificates is one \
                         without it trusted for any host, elsewhere that is written \
                         \"# host {ANY_HOST} port any\""
                    )),
                    _ => read_entry(
                        header.map(|h| &source[lines[h].content.clone()]),
                        block,
                        terminated,
                    ),
                };
                chunks.push(match entry {
                    Ok(server) => Chunk::Server { text, server },
                    Err(why) => Chunk::Damaged { text, why },
                });
                i = end;
            }
            LineKind::End | LineKind::Other => {
                chunks.push(Chunk::Damaged {
                    text: span(i, i + 1),
                    why: "text outside any certificate block".to_owned(),
                });
                detached_header = None;
                i += 1;
            }
        }
    }
    Parsed {
        chunks,
        plain_bundle,
    }
}

/// Appends a comment line to the chunks: runs of comment lines become one chunk.
fn push_comment(chunks: &mut Vec<Chunk>, line: Text) {
    if let (
        Some(Chunk::Comment(Text::Original { range, lines })),
        Text::Original {
            range: next,
            lines: 1,
        },
    ) = (chunks.last_mut(), &line)
    {
        if range.end == next.start {
            range.end = next.end;
            *lines += 1;
            return;
        }
    }
    chunks.push(Chunk::Comment(line));
}

/// Reads one entry: its `# host` line, if any, and its PEM block.
///
/// An entry the store wrote carries both fingerprints. When the certificate's matches, the
/// bytes are the ones that were parsed when the entry was added, so the public key's is taken
/// from the line instead of parsing the certificate again: that parse would be most of the
/// cost of opening a large store. Any other certificate is parsed here.
fn read_entry(
    header: Option<&[u8]>,
    block: &[u8],
    terminated: bool,
) -> std::result::Result<KnownServer, String> {
    let header = header.map(parse_header).transpose()?;
    let context = |why: String| match header.as_ref().map(|h| &h.key) {
        Some(Some(key)) => format!("entry for {key}: {why}"),
        Some(None) => format!("entry for any host: {why}"),
        None => why,
    };
    if !terminated {
        return Err(context("the certificate block has no END line".to_owned()));
    }
    let label = pem_label(block);
    if label != b"CERTIFICATE" {
        let label = String::from_utf8_lossy(label);
        return Err(context(format!("a {label} block is not a certificate")));
    }
    let (_, der) = <(SectionKind, Vec<u8>)>::from_pem_slice(block)
        .map_err(|e| context(format!("bad PEM block: {e}")))?;
    let cert_sha256 = Fingerprint::of(&der);
    let (recorded_cert, recorded_spki) = header.as_ref().map_or((None, None), |h| (h.cert, h.spki));
    if recorded_cert.is_some_and(|recorded| recorded != cert_sha256) {
        return Err(context(format!(
            "the certificate's fingerprint is {cert_sha256}, not the one on the \"# host\" line"
        )));
    }
    let spki_sha256 = match (recorded_cert, recorded_spki) {
        (Some(_), Some(spki)) => spki,
        _ => {
            let facts = CertFacts::of(&der)
                .map_err(|e| context(format!("the certificate cannot be parsed: {e}")))?;
            if recorded_spki.is_some_and(|recorded| recorded != facts.spki) {
                return Err(context(format!(
                    "the public key's fingerprint is {}, not the one on the \"# host\" line",
                    facts.spki
                )));
            }
            facts.spki
        }
    };
    Ok(KnownServer {
        cert_der: der,
        cert_sha256,
        spki_sha256,
        added: header.as_ref().and_then(|h| h.added.clone()),
        key: header.and_then(|h| h.key),
    })
}

/// The label of a PEM block: `CERTIFICATE` for `-----BEGIN CERTIFICATE-----`.
fn pem_label(block: &[u8]) -> &[u8] {
    let first_line = block.split(|&b| b == b'\n').next().unwrap_or_default();
    let first_line = first_line.trim_ascii();
    first_line
        .strip_prefix(b"-----BEGIN ")
        .and_then(|rest| rest.strip_suffix(b"-----"))
        .unwrap_or(first_line)
}

/// The file's text from its chunks. A chunk that does not end a line (the file's last line,
/// without a newline) gets one only when another chunk follows it, so that a file read and
/// written back unchanged is the same byte for byte.
fn serialize(source: &[u8], chunks: &[Chunk]) -> Vec<u8> {
    let mut out = Vec::with_capacity(source.len() + 4096);
    for chunk in chunks {
        if out.last().is_some_and(|&b| b != b'\n') {
            out.push(b'\n');
        }
        out.extend_from_slice(chunk.text().bytes(source));
    }
    out
}

/// What writing the store back after reading `source`, with no change, would write: for the
/// fuzz target that checks it is `source` itself. Not a stable interface.
#[doc(hidden)]
pub fn rewrite_unchanged(source: &[u8]) -> Vec<u8> {
    serialize(source, &parse_chunks(source).chunks)
}

/// A parsed file with its index: what lookups read.
#[derive(Default)]
struct Snapshot {
    chunks: Vec<Chunk>,
    /// The chunk of each host's entry, and its line for messages.
    by_host: HashMap<HostKey, (usize, usize)>,
    /// Certificates trusted for any host.
    any_host: HashSet<Fingerprint>,
    problems: Vec<StoreProblem>,
}

impl Snapshot {
    fn new(chunks: Vec<Chunk>) -> Snapshot {
        let mut snapshot = Snapshot {
            chunks,
            ..Snapshot::default()
        };
        let mut line = 1;
        for (index, chunk) in snapshot.chunks.iter().enumerate() {
            match chunk {
                Chunk::Comment(_) => {}
                Chunk::Damaged { why, .. } => snapshot.problems.push(StoreProblem::new(line, why)),
                Chunk::Server { server, .. } => match &server.key {
                    None => {
                        snapshot.any_host.insert(server.cert_sha256);
                    }
                    Some(key) => match snapshot.by_host.entry(key.clone()) {
                        MapEntry::Vacant(slot) => {
                            slot.insert((index, line));
                        }
                        MapEntry::Occupied(first) => snapshot.problems.push(StoreProblem::new(
                            line,
                            &format!(
                                "entry for {key}: ignored, the entry on line {} is used",
                                first.get().1
                            ),
                        )),
                    },
                },
            }
            line += chunk.text().lines();
        }
        snapshot
    }

    fn server(&self, key: &HostKey) -> Option<&KnownServer> {
        let (index, _) = self.by_host.get(key)?;
        match &self.chunks[*index] {
            Chunk::Server { server, .. } => Some(server),
            _ => None,
        }
    }

    fn lookup(&self, key: &HostKey, presented: &CertFacts) -> TrustStatus {
        let for_port = if key.port == 0 {
            None
        } else {
            self.server(key)
        };
        let any_port = self.server(&key.any_port());
        decide(
            [for_port, any_port],
            self.any_host.contains(&presented.cert),
            presented,
        )
    }

    /// The entries lookups use: not the duplicates that `problems` reports.
    fn entries(&self) -> Vec<KnownServer> {
        let used =
            |index: usize, key: &HostKey| self.by_host.get(key).map(|&(i, _)| i) == Some(index);
        self.chunks
            .iter()
            .enumerate()
            .filter_map(|(index, chunk)| match chunk {
                Chunk::Server { server, .. } => match &server.key {
                    Some(key) if !used(index, key) => None,
                    _ => Some(server.clone()),
                },
                _ => None,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The file: permissions, locking, atomic replacement.

fn store_error(message: String) -> Error {
    Error::new(ErrorKind::Store, message)
}

/// `PATH` with `suffix` appended to its file name, e.g. `known.pem.lock`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Another user who could write the file or its directory could make us trust any server.
/// `what` names the file or directory for the message, `path` is it.
fn check_owner_and_mode(what: &str, path: &Path, meta: &fs::Metadata) -> Result<()> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(store_error(format!(
            "{what} is writable by other users (mode {mode:04o}), so they could make you trust \
             any server; run `chmod go-w {}`",
            crate::display::shell_path(path)
        )));
    }
    // SAFETY: getuid cannot fail and has no preconditions.
    let me = unsafe { libc::getuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(store_error(format!(
            "{what} belongs to user id {}, not to you (user id {me}) nor to root, so they could \
             make you trust any server; run `chown {me} {}` or use another file",
            meta.uid(),
            crate::display::shell_path(path)
        )));
    }
    Ok(())
}

/// The store's directory, opened once for one operation (a read, or a writer's lock, read and
/// replace) and checked through that descriptor: everything after is relative to it, so a
/// directory swapped in by path meanwhile is never the one used. `None` when it is missing.
fn open_directory(store: &Path) -> Result<Option<Dir>> {
    let path = directory_of(store);
    match Dir::open(path) {
        Ok(dir) => {
            check_directory(store, &dir)?;
            Ok(Some(dir))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(store_error(format!(
            "cannot open the directory {} of the known-servers store {}: {e}",
            path.display(),
            store.display()
        ))
        .with_source(e)),
    }
}

/// Checks the open directory of `store` by its `fstat` (owner and mode).
fn check_directory(store: &Path, dir: &Dir) -> Result<()> {
    let what = || {
        format!(
            "the directory {} of the known-servers store {}",
            dir.path().display(),
            store.display()
        )
    };
    match dir.metadata() {
        Ok(meta) => check_owner_and_mode(&what(), dir.path(), &meta),
        Err(e) => Err(store_error(format!("cannot check {}: {e}", what())).with_source(e)),
    }
}

/// Creates the missing directories of `store` (mode 0700, relative to the deepest existing
/// one, not through links) and returns its directory, open and checked.
///
/// Root making a store below another user's directory (`sudo -E` keeps that user's HOME) is
/// refused: the store would be a root-owned 0600 file in a root-owned directory of their home,
/// which they could neither read nor replace, and which root would refuse to read as theirs.
fn make_directory(store: &Path) -> Result<Dir> {
    let path = directory_of(store);
    let (existing, missing) = fsutil::existing_and_missing(path);
    let base = Dir::open(&existing).map_err(|e| Error::io("open the directory", &existing, e))?;
    let meta = base
        .metadata()
        .map_err(|e| Error::io("check the directory", &existing, e))?;
    // SAFETY: geteuid cannot fail and has no preconditions.
    if unsafe { libc::geteuid() } == 0 && meta.uid() != 0 {
        return Err(store_error(format!(
            "the known-servers store {} would be made by root in {}, which belongs to user id \
             {}: that user could not read it. Run this as that user (not with sudo -E), or \
             keep root's store in a directory of root's",
            store.display(),
            existing.display(),
            meta.uid()
        )));
    }
    let dir = fsutil::make_dirs_in(base, &missing, 0o700, None)
        .map_err(|e| Error::io("create the directory", path, e))?;
    check_directory(store, &dir)?;
    Ok(dir)
}

/// The store file's name in its directory.
fn file_name(store: &Path) -> &std::ffi::OsStr {
    store.file_name().unwrap_or_default()
}

/// The largest store file read: room for 100,000 entries (the size the design measures) of
/// RSA-4096 certificates, about 2.5 KB each with their host line. A bigger file is a mistake
/// or an attack on memory, refused before it is read.
pub const MAX_STORE_SIZE: u64 = 256 * 1024 * 1024;

/// The store file `path` as read through its open directory `dir`, and the `fstat` of the
/// descriptor read (its identity and mode). A missing file (or directory) is an empty store.
///
/// The file is opened not following a link at its name (the writer replaces it by rename, so
/// a link would be replaced by a file anyway, and the link's target directory could not be
/// checked), non-blocking so that a FIFO put in its place is refused instead of hanging, and
/// checked with `fstat` before it is read.
fn read_store(dir: Option<&Dir>, path: &Path) -> Result<(Vec<u8>, Option<fs::Metadata>)> {
    let Some(dir) = dir else {
        return Ok((Vec::new(), None));
    };
    let mut read = match dir.read(file_name(path), MAX_STORE_SIZE) {
        Ok(read) => read,
        Err(e) if e.is_not_found() => return Ok((Vec::new(), None)),
        Err(ReadError::TooLarge(len)) => {
            return Err(store_error(format!(
                "the known-servers store {} is {len} bytes, over the cap of {} MiB for a \
                 known-servers file; it is not read",
                path.display(),
                MAX_STORE_SIZE / (1024 * 1024)
            )))
        }
        Err(ReadError::Io(_, e)) if e.kind() == io::ErrorKind::InvalidInput => {
            return Err(
                store_error(format!("the known-servers store {}: {e}", path.display()))
                    .with_source(e),
            )
        }
        Err(ReadError::Io(op, e)) => {
            return Err(store_error(format!(
                "cannot {op} the known-servers store {}: {e}",
                path.display()
            ))
            .with_source(e))
        }
    };
    let what = format!("the known-servers store {}", path.display());
    check_owner_and_mode(&what, path, &read.meta)?;
    // The store holds certificates only, nothing to wipe.
    Ok((std::mem::take(&mut *read.bytes), Some(read.meta)))
}

/// An exclusive `flock` on `STORE.lock`, held by a writer from reading to renaming.
struct StoreLock {
    /// Released when dropped.
    _lock: fsutil::Lock,
}

impl StoreLock {
    /// Locks `store` through its open directory `dir`.
    fn acquire(dir: &Dir, store: &Path) -> Result<StoreLock> {
        let path = sibling(store, ".lock");
        let cannot = |e: io::Error| {
            store_error(format!(
                "cannot open the lock file {} of the known-servers store: {e}",
                path.display()
            ))
            .with_source(e)
        };
        let file = dir
            .open_lock_file(path.file_name().unwrap_or_default())
            .map_err(cannot)?;
        // Polling rather than blocking, so that a stuck writer becomes an error, not a hang.
        match fsutil::Lock::acquire(file, Some(LOCK_TIMEOUT)) {
            Ok(lock) => Ok(StoreLock { _lock: lock }),
            Err(LockError::TimedOut) => Err(store_error(format!(
                "the known-servers store {} is locked: another process has held {} for more \
                 than {} seconds",
                store.display(),
                path.display(),
                LOCK_TIMEOUT.as_secs()
            ))),
            Err(LockError::Io(e)) => Err(store_error(format!(
                "cannot lock {} for the known-servers store: {e}",
                path.display()
            ))
            .with_source(e)),
        }
    }
}

/// Replaces `path` (in its open directory `dir`) by `bytes` so that, whenever the process
/// dies, `path` is the old or the new file: write a temporary file beside it, fsync, rename,
/// fsync the directory. Returns the new file's identity, `None` if it cannot be taken (the
/// next lookup then reads the file again).
fn replace_file(dir: &Dir, path: &Path, bytes: &[u8], mode: u32) -> Result<Option<FileIdentity>> {
    let name = file_name(path);
    let spec = WriteSpec {
        mode,
        owner: None,
        replace: Replace::Allowed,
        temporary: sibling(Path::new(name), ".tmp").into_os_string(),
        // Only the lock holder writes the temporary file: one left by a killed writer is stale.
        remove_stale_temporary: true,
    };
    dir.write(name, bytes, &spec)
        .map_err(|e| Error::io("replace", path, e))?;
    Ok(dir
        .metadata_of(name)
        .ok()
        .map(|m| FileIdentity::of_metadata(&m)))
}

/// What tells one version of the store file from another without reading it, from one
/// `stat`: a write by rename (as the store writes) gives another inode and ctime, an edit in
/// place another size, mtime or ctime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    fn of_metadata(meta: &fs::Metadata) -> FileIdentity {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The identity of what is at `path` now (a link's own, as the file is read not through a
    /// link); `None` when it is missing (an empty store). One `lstat`, for the check before a
    /// lookup; what was read is identified by the `fstat` of the descriptor read.
    fn of(path: &Path) -> Result<Option<FileIdentity>> {
        match fs::symlink_metadata(path) {
            Ok(meta) => Ok(Some(FileIdentity::of_metadata(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(store_error(format!(
                "cannot check the known-servers store {}: {e}",
                path.display()
            ))
            .with_source(e)),
        }
    }
}

/// A snapshot and the version of the file it was read from.
#[derive(Default)]
struct Loaded {
    snapshot: Snapshot,
    /// `Some(None)`: read when the file was missing. `None`: the last read failed, so the
    /// snapshot is empty and the next use reads again.
    from: Option<Option<FileIdentity>>,
}

/// The known-servers store in a file, in the format the module documentation describes.
///
/// Opening reads and indexes the file; a lookup then costs the same however many entries there
/// are. Each [`lookup`](Self::lookup) first `stat`s the file and reads it again if it is
/// another file than the one read last (device, inode, size, mtime or ctime differ), so that an
/// entry another process removed stops being trusted at once; if that read fails, the lookup
/// fails, it does not fall back to what the old file said. [`add`](Self::add) and
/// [`remove`](Self::remove) re-read the file under the lock, so that they keep what other
/// processes wrote meanwhile, and leave the snapshot equal to the file they wrote.
/// [`entries`](Self::entries) and [`problems`](Self::problems) show the file as last read;
/// [`reload`](Self::reload) reads it again unconditionally. (Every write of the store makes a
/// new file, so none is missed; only an edit in place by another program that keeps the size
/// and lands in the same timestamp tick as the last read goes unseen until the next change.)
pub struct KnownServers {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

impl fmt::Debug for KnownServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnownServers")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KnownServers {
    /// Reads the store at `path`; a missing file is an empty store, created on the first add.
    ///
    /// Fails with [`ErrorKind::Store`] if the file cannot be read, or if the file or its
    /// directory is writable by other users or belongs to another user than the caller or root.
    /// Damaged entries do not fail it: see [`problems`](Self::problems).
    pub fn open(path: impl AsRef<Path>) -> Result<KnownServers> {
        let path = path.as_ref().to_owned();
        let loaded = Self::load(&path)?;
        Ok(KnownServers {
            path,
            loaded: RwLock::new(loaded),
        })
    }

    /// Reads the file through its directory, opened and checked once. Its identity is the
    /// `fstat` of the descriptor read, taken before reading, so that a change made while it
    /// is read makes the next use read it again rather than go unnoticed.
    fn load(path: &Path) -> Result<Loaded> {
        let dir = open_directory(path)?;
        let (source, meta) = read_store(dir.as_ref(), path)?;
        Ok(Loaded {
            snapshot: Snapshot::new(parse_chunks(&source).chunks),
            from: Some(meta.as_ref().map(FileIdentity::of_metadata)),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The damaged parts of the file as last read or written, by line. Lookups ignore them;
    /// writes keep them.
    pub fn problems(&self) -> Vec<StoreProblem> {
        self.loaded().snapshot.problems.clone()
    }

    /// Reads the file again, whether or not it changed. If that fails, the store is empty
    /// until a read succeeds.
    pub fn reload(&self) -> Result<()> {
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        *loaded = Self::load(&self.path).inspect_err(|_| *loaded = Loaded::default())?;
        Ok(())
    }

    fn loaded(&self) -> RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `use_it` on the snapshot of the file as it is now: one `stat`, and a read only if
    /// the file is not the one read last. A failed read is an error, and leaves the store
    /// empty: a trust decision is never made on a file that is no longer there.
    fn with_current<T>(&self, use_it: impl FnOnce(&Snapshot) -> T) -> Result<T> {
        let now = Some(FileIdentity::of(&self.path)?);
        {
            let loaded = self.loaded();
            if loaded.from == now {
                return Ok(use_it(&loaded.snapshot));
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have read it meanwhile.
        if loaded.from != now {
            *loaded = Self::load(&self.path).inspect_err(|_| *loaded = Loaded::default())?;
        }
        Ok(use_it(&loaded.snapshot))
    }

    /// See [`KnownServersStore::lookup`]. Reads the file again first if it changed.
    pub fn lookup(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<TrustStatus> {
        let key = HostKey::new(host, port)?;
        let presented = CertFacts::of_argument(cert_der, host)?;
        self.with_current(|snapshot| snapshot.lookup(&key, &presented))
    }
    /// See [`KnownServersStore::add`]. Creates the file (mode 0600), and its directory (mode
    /// 0700) if missing.
    pub fn add(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<()> {
        let key = HostKey::new(host, port)?;
        let facts = CertFacts::of_argument(cert_der, host)?;
        let server = new_server(key.clone(), cert_der, facts);
        let dir = match open_directory(&self.path)? {
            Some(dir) => dir,
            None => make_directory(&self.path)?,
        };
        self.rewrite(dir, |chunks| {
            // The same certificate recorded once already: leave the file (and its `added`
            // time) alone, so that a validator answering "always" costs no write.
            let mut entries = chunks.iter().filter(|c| c.is_entry_for(&key));
            if let (Some(Chunk::Server { server: old, .. }), None) =
                (entries.next(), entries.next())
            {
                if old.cert_der() == cert_der {
                    return false;
                }
            }
            let mut new = Some(Chunk::for_new_server(server));
            let mut kept = Vec::with_capacity(chunks.len() + 1);
            for chunk in chunks.drain(..) {
                if chunk.is_entry_for(&key) {
                    // The new entry takes the place of the first old one.
                    kept.extend(new.take());
                } else {
                    kept.push(chunk);
                }
            }
            if kept.is_empty() {
                kept.push(Chunk::Comment(Text::New(NEW_FILE_BANNER.into())));
            }
            kept.extend(new);
            *chunks = kept;
            true
        })
    }

    /// See [`KnownServersStore::remove`].
    pub fn remove(&self, host: &str, port: Option<u16>) -> Result<bool> {
        let key = HostKey::new(host, port)?;
        let Some(dir) = open_directory(&self.path)? else {
            // Nothing was ever stored there: no directory to create and lock just to say so.
            self.reload()?;
            return Ok(false);
        };
        let mut found = false;
        self.rewrite(dir, |chunks| {
            let before = chunks.len();
            chunks.retain(|chunk| !chunk.is_entry_for(&key));
            found = chunks.len() != before;
            found
        })?;
        Ok(found)
    }

    /// See [`KnownServersStore::entries`]. In file order, as last read or written.
    pub fn entries(&self) -> Vec<KnownServer> {
        self.loaded().snapshot.entries()
    }

    /// The read-modify-write cycle of every change, under the lock, all through `dir`, the
    /// store's directory opened (and checked) once. `change` returns whether it changed
    /// anything; if not, nothing is written.
    fn rewrite(&self, dir: Dir, change: impl FnOnce(&mut Vec<Chunk>) -> bool) -> Result<()> {
        let _lock = StoreLock::acquire(&dir, &self.path)?;
        let (source, meta) = read_store(Some(&dir), &self.path)?;
        let read_from = meta.as_ref().map(FileIdentity::of_metadata);
        let mode = meta.as_ref().map(|m| m.mode() & 0o777);
        let Parsed {
            mut chunks,
            plain_bundle,
        } = parse_chunks(&source);
        let from = if change(&mut chunks) {
            if plain_bundle {
                chunks.iter_mut().for_each(|c| c.make_explicit(&source));
            }
            update_banner(&mut chunks, &source);
            // Taken under the lock: no other writer of the store can have come between. If
            // it cannot be taken, the next lookup reads the file again.
            replace_file(
                &dir,
                &self.path,
                &serialize(&source, &chunks),
                mode.unwrap_or(0o600),
            )?
            .map(Some)
        } else {
            Some(read_from)
        };
        // Still under the lock, so that snapshots are replaced in the order files were written.
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = Loaded {
            snapshot: Snapshot::new(chunks),
            from,
        };
        Ok(())
    }
}

/// Replaces the banner of files written before `# host *` existed, whose second line says
/// what is no longer true. Only when the file is written anyway: reading changes nothing.
fn update_banner(chunks: &mut [Chunk], source: &[u8]) {
    if let Some(Chunk::Comment(text)) = chunks.first_mut() {
        if let Some(rest) = text.bytes(source).strip_prefix(OLD_FILE_BANNER.as_bytes()) {
            let mut updated = NEW_FILE_BANNER.as_bytes().to_vec();
            updated.extend_from_slice(rest);
            *text = Text::New(updated);
        }
    }
}

impl KnownServersStore for KnownServers {
    fn lookup(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<TrustStatus> {
        KnownServers::lookup(self, host, port, cert_der)
    }

    fn add(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<()> {
        KnownServers::add(self, host, port, cert_der)
    }

    fn remove(&self, host: &str, port: Option<u16>) -> Result<bool> {
        KnownServers::remove(self, host, port)
    }

    /// Reads the file again first if it changed.
    fn entries(&self) -> Result<Vec<KnownServer>> {
        self.with_current(Snapshot::entries)
    }
}

/// A known-servers store that lives only as long as the program: for tests, and for
/// applications that keep their trust decisions elsewhere and fill it at start.
#[derive(Debug, Default)]
pub struct MemoryKnownServers {
    servers: RwLock<HashMap<HostKey, KnownServer>>,
}

impl MemoryKnownServers {
    /// An empty store.
    pub fn new() -> MemoryKnownServers {
        MemoryKnownServers::default()
    }
}

impl KnownServersStore for MemoryKnownServers {
    fn lookup(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<TrustStatus> {
        let key = HostKey::new(host, port)?;
        let presented = CertFacts::of_argument(cert_der, host)?;
        let servers = self.servers.read().unwrap_or_else(PoisonError::into_inner);
        let for_port = if key.port == 0 {
            None
        } else {
            servers.get(&key)
        };
        let any_port = servers.get(&key.any_port());
        Ok(decide([for_port, any_port], false, &presented))
    }

    fn add(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<()> {
        let key = HostKey::new(host, port)?;
        let facts = CertFacts::of_argument(cert_der, host)?;
        let server = new_server(key.clone(), cert_der, facts);
        self.servers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, server);
        Ok(())
    }

    fn remove(&self, host: &str, port: Option<u16>) -> Result<bool> {
        let key = HostKey::new(host, port)?;
        let mut servers = self.servers.write().unwrap_or_else(PoisonError::into_inner);
        Ok(servers.remove(&key).is_some())
    }

    /// Sorted by host, then port (any port first).
    fn entries(&self) -> Result<Vec<KnownServer>> {
        let servers = self.servers.read().unwrap_or_else(PoisonError::into_inner);
        let mut entries: Vec<KnownServer> = servers.values().cloned().collect();
        entries.sort_by(|a, b| (a.host(), a.port()).cmp(&(b.host(), b.port())));
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, SerialNumber};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use tempfile::TempDir;

    /// A new self-signed certificate for `name`, and its key.
    fn new_cert(name: &str) -> (Vec<u8>, KeyPair) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (made.cert.der().to_vec(), made.signing_key)
    }

    /// Another certificate for the same key, as a renewal would be.
    fn renewal(name: &str, key: &KeyPair) -> Vec<u8> {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(2u64));
        params.self_signed(key).unwrap().der().to_vec()
    }

    fn pem_of(der: &[u8]) -> String {
        let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), config)
    }

    /// A store path in a fresh private directory (kept alive by the returned guard).
    fn store_path() -> (TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_servers.pem");
        (dir, path)
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn hosts_are_normalized() {
        let cases = [
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("0:0::1", "::1"),
            ("0000:0000:0000:0000:0000:0000:0000:0001", "::1"),
            ("2001:DB8::0:1", "2001:db8::1"),
            ("[2001:db8:0:0:0:0:0:1]", "2001:db8::1"),
            ("fe80::1%eth0", "fe80::1%eth0"),
            ("[FE80:0::1%eth0]", "fe80::1%eth0"),
            ("192.0.2.7", "192.0.2.7"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ];
        for (given, normalized) in cases {
            assert_eq!(normalize_host(given).unwrap(), normalized, "{given:?}");
        }
    }

    #[test]
    fn bad_hosts_are_invalid_arguments() {
        let bad = [
            "",
            ".",
            "exa mple.com",
            "example.com\n",
            "tab\there",
            "nul\0byte",
            "bell\u{7}",
            "[example.com]",
            "[::1",
            "[192.0.2.7]",
            "1:2:3",
            "host:16514",
            "fe80::1%",
            "fe80::1%a%b",
            "fe80::1%eth0]",
            "[fe80::1%a/b]",
            "192.0.2.7%eth0",
            "a]b",
            "*",
            "*.example.com",
        ];
        let (_dir, path) = store_path();
        let file = KnownServers::open(&path).unwrap();
        let memory = MemoryKnownServers::new();
        let (der, _) = new_cert("example.com");
        for host in bad {
            let e = normalize_host(host).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArg, "{host:?}");
            assert!(e.message().contains("invalid host name"), "{e}");
            let stores: [&dyn KnownServersStore; 2] = [&file, &memory];
            for store in stores {
                let kind = |r: Result<()>| r.unwrap_err().kind();
                assert_eq!(kind(store.add(host, Some(1), &der)), ErrorKind::InvalidArg);
                assert_eq!(
                    kind(store.lookup(host, None, &der).map(drop)),
                    ErrorKind::InvalidArg
                );
                assert_eq!(
                    kind(store.remove(host, None).map(drop)),
                    ErrorKind::InvalidArg
                );
            }
        }
        assert!(!path.exists(), "a refused add must not create the file");
    }

    #[test]
    fn fingerprints_are_sha256_in_uppercase_hex() {
        let abc = Fingerprint::of(b"abc");
        let text = "SHA256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        assert_eq!(abc.to_string(), text);
        assert_eq!(text.parse::<Fingerprint>().unwrap(), abc);
        assert_eq!(
            text.to_lowercase()
                .replace("sha256", "SHA256")
                .parse::<Fingerprint>()
                .unwrap(),
            abc
        );
        for bad in [
            &text[7..],
            "SHA256:BA",
            "SHA1:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "SHA256:BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C",
            "SHA256:ZA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
        ] {
            assert_eq!(
                bad.parse::<Fingerprint>().unwrap_err().kind(),
                ErrorKind::Parse,
                "{bad}"
            );
        }
    }

    /// The trust rules, which every store must follow.
    fn check_trust_decisions(store: &dyn KnownServersStore) {
        let (server, server_key) = new_cert("Server.Example.com");
        let (other, _) = new_cert("other.example.com");
        let renewed = renewal("server.example.com", &server_key);
        assert_ne!(renewed, server);

        assert_eq!(
            store
                .lookup("server.example.com", Some(16514), &server)
                .unwrap(),
            TrustStatus::Unknown
        );
        store
            .add("Server.Example.COM.", Some(16514), &server)
            .unwrap();
        for host in [
            "server.example.com",
            "SERVER.example.com",
            "server.example.com.",
        ] {
            assert_eq!(
                store.lookup(host, Some(16514), &server).unwrap(),
                TrustStatus::Trusted,
                "{host}"
            );
        }
        // An entry for one port says nothing about others, nor about "any port".
        assert_eq!(
            store
                .lookup("server.example.com", Some(16509), &server)
                .unwrap(),
            TrustStatus::Unknown
        );
        assert_eq!(
            store.lookup("server.example.com", None, &server).unwrap(),
            TrustStatus::Unknown
        );
        assert_eq!(
            store
                .lookup("server2.example.com", Some(16514), &server)
                .unwrap(),
            TrustStatus::Unknown
        );

        assert_eq!(
            store
                .lookup("server.example.com", Some(16514), &renewed)
                .unwrap(),
            TrustStatus::Changed { same_key: true }
        );
        assert_eq!(
            store
                .lookup("server.example.com", Some(16514), &other)
                .unwrap(),
            TrustStatus::Changed { same_key: false }
        );

        // An any-port entry counts for every port, and a port's own entry does not hide it.
        store.add("server.example.com", None, &renewed).unwrap();
        assert_eq!(
            store
                .lookup("server.example.com", Some(1), &renewed)
                .unwrap(),
            TrustStatus::Trusted
        );
        assert_eq!(
            store
                .lookup("server.example.com", Some(16514), &renewed)
                .unwrap(),
            TrustStatus::Trusted
        );
        assert_eq!(
            store
                .lookup("server.example.com", Some(16514), &server)
                .unwrap(),
            TrustStatus::Trusted
        );
        assert_eq!(
            store
                .lookup("server.example.com", Some(0), &renewed)
                .unwrap(),
            TrustStatus::Trusted
        );
        assert_eq!(
            store
                .lookup("server.example.com", Some(1), &server)
                .unwrap(),
            TrustStatus::Changed { same_key: true }
        );

        // IPv6 literals in any spelling are one host.
        store.add("[2001:db8::1]", Some(16514), &other).unwrap();
        for host in ["2001:db8::1", "2001:DB8:0:0::1", "[2001:0db8::0001]"] {
            assert_eq!(
                store.lookup(host, Some(16514), &other).unwrap(),
                TrustStatus::Trusted,
                "{host}"
            );
        }
        assert_eq!(
            store.lookup("2001:db8::2", Some(16514), &other).unwrap(),
            TrustStatus::Unknown
        );

        let mut listed: Vec<_> = store
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| (e.host().map(str::to_owned), e.port(), e.cert_sha256()))
            .collect();
        listed.sort();
        let mut expected = vec![
            (
                Some("2001:db8::1".to_owned()),
                Some(16514),
                Fingerprint::of(&other),
            ),
            (
                Some("server.example.com".to_owned()),
                None,
                Fingerprint::of(&renewed),
            ),
            (
                Some("server.example.com".to_owned()),
                Some(16514),
                Fingerprint::of(&server),
            ),
        ];
        expected.sort();
        assert_eq!(listed, expected);

        // Removing is by exact port.
        assert!(!store.remove("server.example.com", Some(1)).unwrap());
        assert!(store.remove("SERVER.example.com", None).unwrap());
        assert!(!store.remove("server.example.com", None).unwrap());
        assert_eq!(
            store
                .lookup("server.example.com", Some(1), &renewed)
                .unwrap(),
            TrustStatus::Unknown
        );
        assert!(store.remove("[::ffff:0:0]", None).is_ok_and(|found| !found));
        assert!(store.remove("2001:db8:0::1", Some(16514)).unwrap());
        assert_eq!(store.entries().unwrap().len(), 1);
    }

    #[test]
    fn memory_store_follows_the_trust_rules() {
        check_trust_decisions(&MemoryKnownServers::new());
    }

    #[test]
    fn file_store_follows_the_trust_rules() {
        let (_dir, path) = store_path();
        check_trust_decisions(&KnownServers::open(&path).unwrap());
        assert!(KnownServers::open(&path).unwrap().problems().is_empty());
    }

    #[test]
    fn entries_survive_reopening() {
        let (_dir, path) = store_path();
        let (a, _) = new_cert("a.example");
        let (b, b_key) = new_cert("b.example");
        {
            let store = KnownServers::open(&path).unwrap();
            store.add("a.example", Some(16514), &a).unwrap();
            store.add("B.example", None, &b).unwrap();
        }
        let store = KnownServers::open(&path).unwrap();
        assert!(store.problems().is_empty(), "{:?}", store.problems());
        assert_eq!(
            store.lookup("a.example", Some(16514), &a).unwrap(),
            TrustStatus::Trusted
        );
        assert_eq!(
            store.lookup("b.example", Some(7), &b).unwrap(),
            TrustStatus::Trusted
        );
        assert_eq!(
            store
                .lookup("b.example", Some(7), &renewal("b.example", &b_key))
                .unwrap(),
            TrustStatus::Changed { same_key: true }
        );
        let entries = store.entries();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].host(), Some("a.example"));
        assert_eq!(entries[0].port(), Some(16514));
        assert_eq!(entries[0].cert_der(), a.as_slice());
        assert_eq!(entries[1].host(), Some("b.example"));
        assert_eq!(entries[1].port(), None);
        let spki = {
            let (_, cert) = x509_parser::parse_x509_certificate(&b).unwrap();
            Fingerprint::of(cert.public_key().raw)
        };
        assert_eq!(entries[1].spki_sha256(), spki);
        let added = entries[1].added().unwrap();
        assert!(
            added.len() == 20 && added.starts_with("20") && added.ends_with('Z'),
            "{added}"
        );

        assert!(store.remove("a.example", Some(16514)).unwrap());
        let reopened = KnownServers::open(&path).unwrap();
        assert_eq!(
            reopened.lookup("a.example", Some(16514), &a).unwrap(),
            TrustStatus::Unknown
        );
        assert_eq!(reopened.entries().len(), 1);
    }

    #[test]
    fn the_file_is_a_readable_pem_bundle() {
        let (_dir, path) = store_path();
        let (a, _) = new_cert("a.example");
        let (b, _) = new_cert("b.example");
        let store = KnownServers::open(&path).unwrap();
        store.add("A.example", Some(16514), &a).unwrap();
        store.add("::1", None, &b).unwrap();

        let text = fs::read_to_string(&path).unwrap();
        let blocks = pem::parse_many(&text).unwrap();
        let ders: Vec<&[u8]> = blocks.iter().map(|p| p.contents()).collect();
        assert_eq!(ders, [a.as_slice(), b.as_slice()]);
        assert!(blocks.iter().all(|p| p.tag() == "CERTIFICATE"));

        let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("# host ")).collect();
        assert_eq!(headers.len(), 2, "{text}");
        let spki_a = store.entries()[0].spki_sha256();
        let expected = format!(
            "# host a.example port 16514 cert {} spki {} added ",
            Fingerprint::of(&a),
            spki_a
        );
        assert!(
            headers[0].starts_with(&expected),
            "{}\n{expected}",
            headers[0]
        );
        assert!(
            headers[1].starts_with("# host ::1 port any cert SHA256:"),
            "{}",
            headers[1]
        );
        assert!(!text.contains('\r'));
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn adding_again_replaces_the_entry_in_place() {
        let (_dir, path) = store_path();
        let store = KnownServers::open(&path).unwrap();
        let (first, _) = new_cert("s.example");
        let (middle, _) = new_cert("m.example");
        let (second, _) = new_cert("s.example");
        store.add("s.example", Some(16514), &first).unwrap();
        store.add("m.example", Some(16514), &middle).unwrap();
        store.add("S.EXAMPLE", Some(16514), &second).unwrap();
        let reopened = KnownServers::open(&path).unwrap();
        let hosts: Vec<_> = reopened
            .entries()
            .iter()
            .map(|e| e.cert_der().to_vec())
            .collect();
        assert_eq!(hosts, [second.clone(), middle]);
        assert_eq!(
            reopened.lookup("s.example", Some(16514), &second).unwrap(),
            TrustStatus::Trusted
        );
        assert_eq!(
            reopened.lookup("s.example", Some(16514), &first).unwrap(),
            TrustStatus::Changed { same_key: false }
        );
    }

    #[test]
    fn a_missing_store_is_empty_and_created_private_on_first_add() {
        let (dir, _) = store_path();
        let path = dir.path().join("pki").join("libvirt").join("known.pem");
        let store = KnownServers::open(&path).unwrap();
        assert!(store.entries().is_empty() && store.problems().is_empty());
        assert!(!store.remove("h.example", None).unwrap());
        assert!(
            !path.parent().unwrap().exists(),
            "a remove created the directory"
        );
        let (der, _) = new_cert("h.example");
        assert_eq!(
            store.lookup("h.example", None, &der).unwrap(),
            TrustStatus::Unknown
        );
        store.add("h.example", None, &der).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(path.parent().unwrap()), 0o700);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Known servers"), "{text}");
        assert_eq!(KnownServers::open(&path).unwrap().entries().len(), 1);
    }

    #[test]
    fn a_rewrite_keeps_the_files_mode() {
        let (_dir, path) = store_path();
        let (der, _) = new_cert("h.example");
        fs::write(&path, pem_of(&der)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        KnownServers::open(&path)
            .unwrap()
            .add("h.example", None, &der)
            .unwrap();
        assert_eq!(mode_of(&path), 0o644);
    }

    #[test]
    fn a_plain_pem_bundle_trusts_its_certificates_for_any_host() {
        let (_dir, path) = store_path();
        let (a, _) = new_cert("a.example");
        let (b, _) = new_cert("b.example");
        let (stranger, _) = new_cert("a.example");
        let bundle = format!("{}\n{}", pem_of(&a), pem_of(&b));
        fs::write(&path, &bundle).unwrap();

        let store = KnownServers::open(&path).unwrap();
        assert!(store.problems().is_empty(), "{:?}", store.problems());
        for (host, port) in [
            ("a.example", Some(16514)),
            ("anything.example", None),
            ("::1", Some(1)),
        ] {
            let any_host = TrustStatus::TrustedAnyHost;
            assert_eq!(store.lookup(host, port, &a).unwrap(), any_host);
            assert_eq!(store.lookup(host, port, &b).unwrap(), any_host);
            assert_eq!(
                store.lookup(host, port, &stranger).unwrap(),
                TrustStatus::Unknown
            );
        }
        let entries = store.entries();
        assert_eq!(entries.len(), 2);
        assert!(entries
            .iter()
            .all(|e| e.host().is_none() && e.port().is_none()));

        // A host entry added to the bundle ends its being a plain bundle: its certificates get
        // the explicit "# host *" line, their blocks kept as they were, and keep their meaning.
        store.add("a.example", Some(16514), &stranger).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let explicit = |der: &[u8]| {
            let spki = x509_parser::parse_x509_certificate(der)
                .unwrap()
                .1
                .public_key()
                .raw
                .to_vec();
            format!(
                "# host * port any cert {} spki {}\n{}",
                Fingerprint::of(der),
                Fingerprint::of(&spki),
                pem_of(der)
            )
        };
        assert!(
            text.starts_with(&format!("{}\n{}", explicit(&a), explicit(&b))),
            "{text}"
        );
        let reopened = KnownServers::open(&path).unwrap();
        assert!(reopened.problems().is_empty(), "{:?}", reopened.problems());
        // a.example is now recorded with another certificate: for it, the bundle's are a
        // change, not trusted; for other hosts they still stand in for an issuer.
        let changed = TrustStatus::Changed { same_key: false };
        for store in [&store, &reopened] {
            for (host, status) in [
                ("a.example", changed),
                ("anything.example", TrustStatus::TrustedAnyHost),
            ] {
                assert_eq!(store.lookup(host, Some(16514), &b).unwrap(), status);
                assert_eq!(store.lookup(host, Some(16514), &a).unwrap(), status);
            }
            assert_eq!(store.entries().len(), 3);
        }
        assert_eq!(
            store.lookup("a.example", Some(16514), &stranger).unwrap(),
            TrustStatus::Trusted
        );
    }

    #[test]
    fn damaged_entries_are_reported_by_line_and_kept_verbatim() {
        let (_dir, path) = store_path();
        let (good, _) = new_cert("good.example");
        let (victim, _) = new_cert("victim.example");
        let (late, _) = new_cert("late.example");
        let good_fp = Fingerprint::of(&good);
        let victim_pem = pem_of(&victim);
        let garbage = pem::encode_config(
            &pem::Pem::new("CERTIFICATE", b"not a certificate".to_vec()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        );
        let mut bad_base64 = victim_pem.clone();
        bad_base64.replace_range(40..44, "!!!!");

        let mut file = String::new();
        let mut expected_lines = Vec::new();
        let mut push = |file: &mut String, text: &str, damaged: bool| {
            if damaged {
                expected_lines.push(file.lines().count() + 1);
            }
            file.push_str(text);
        };
        push(&mut file, "# a comment\n\n", false);
        push(
            &mut file,
            &format!(
                "# host good.example port 1 cert {good_fp}\n{}",
                pem_of(&good)
            ),
            false,
        );
        push(
            &mut file,
            &format!("# host b64.example port 1\n{bad_base64}"),
            true,
        );
        push(&mut file, "# host lonely.example port 1\n", true);
        push(&mut file, "\n# a comment\n", false);
        push(&mut file, &victim_pem, true);
        push(
            &mut file,
            &format!("# host garbage.example\n{garbage}"),
            true,
        );
        push(
            &mut file,
            &format!("# host odd.example colour blue\n{victim_pem}"),
            true,
        );
        push(
            &mut file,
            &format!("# host liar.example cert {good_fp}\n{victim_pem}"),
            true,
        );
        let good_spki = Fingerprint::of(
            x509_parser::parse_x509_certificate(&good)
                .unwrap()
                .1
                .public_key()
                .raw,
        );
        push(
            &mut file,
            &format!("# host keyliar.example spki {good_spki}\n{victim_pem}"),
            true,
        );
        push(
            &mut file,
            &format!("# host bad..port.example port 70000\n{victim_pem}"),
            true,
        );
        push(&mut file, "some stray text\n", true);
        push(
            &mut file,
            &format!("# host good.example port 1\n{victim_pem}"),
            true,
        );
        let cut: String = victim_pem
            .lines()
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect();
        push(&mut file, &format!("# host cut.example\n{cut}"), true);
        push(
            &mut file,
            &format!("# host late.example port 2\n{}", pem_of(&late)),
            false,
        );
        fs::write(&path, &file).unwrap();

        let store = KnownServers::open(&path).unwrap();
        let problems = store.problems();
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, expected_lines, "{problems:#?}");
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        let detached = format!(
            "separated from its \"# host\" line (line {}); it is not trusted for any host",
            lines[1]
        );
        let expectations = [
            "bad PEM block",
            "not directly followed by a certificate",
            &detached,
            "cannot be parsed",
            "unknown keyword \"colour\"",
            "the certificate's fingerprint is",
            "the public key's fingerprint is",
            "70000",
            "outside any certificate block",
            "ignored, the entry on line 3 is used",
            "no END line",
        ];
        assert_eq!(messages.len(), expectations.len());
        for (message, expected) in messages.iter().zip(expectations) {
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
        assert!(
            messages[0].starts_with("entry for host b64.example port 1: "),
            "{}",
            messages[0]
        );
        assert_eq!(
            problems[2].to_string(),
            format!("line {}: {}", lines[2], messages[2])
        );

        // The good entries work, the damaged ones trust nothing.
        assert_eq!(
            store.lookup("good.example", Some(1), &good).unwrap(),
            TrustStatus::Trusted
        );
        assert_eq!(
            store.lookup("late.example", Some(2), &late).unwrap(),
            TrustStatus::Trusted
        );
        for host in [
            "b64.example",
            "odd.example",
            "liar.example",
            "keyliar.example",
            "cut.example",
            "x.example",
        ] {
            assert_eq!(
                store.lookup(host, Some(1), &victim).unwrap(),
                TrustStatus::Unknown,
                "{host}"
            );
        }
        let usable: Vec<_> = store
            .entries()
            .iter()
            .map(|e| (e.host().map(str::to_owned), e.port()))
            .collect();
        assert_eq!(
            usable,
            [
                (Some("good.example".to_owned()), Some(1)),
                (Some("late.example".to_owned()), Some(2))
            ]
        );

        // Writing keeps every damaged byte, and the line numbers still match the file.
        let (new, _) = new_cert("new.example");
        store.add("new.example", None, &new).unwrap();
        store.remove("late.example", Some(2)).unwrap();
        let written = fs::read_to_string(&path).unwrap();
        let late_entry = format!("# host late.example port 2\n{}", pem_of(&late));
        let before_late = file.strip_suffix(&late_entry).unwrap();
        assert!(written.starts_with(before_late), "{written}");
        assert!(written[before_late.len()..].starts_with("# host new.example port any"));
        let reopened = KnownServers::open(&path).unwrap();
        assert_eq!(reopened.problems(), problems);
        assert_eq!(store.problems(), problems);
        assert_eq!(
            reopened.lookup("new.example", Some(3), &new).unwrap(),
            TrustStatus::Trusted
        );
    }

    #[test]
    fn crlf_files_and_files_without_a_final_newline_are_read() {
        let (_dir, path) = store_path();
        let (a, _) = new_cert("a.example");
        let (b, _) = new_cert("b.example");
        let text = format!("# host a.example port 1\n{}", pem_of(&a)).replace('\n', "\r\n");
        fs::write(&path, text.trim_end()).unwrap();
        let store = KnownServers::open(&path).unwrap();
        assert!(store.problems().is_empty(), "{:?}", store.problems());
        assert_eq!(
            store.lookup("a.example", Some(1), &a).unwrap(),
            TrustStatus::Trusted
        );
        store.add("b.example", Some(1), &b).unwrap();
        let reopened = KnownServers::open(&path).unwrap();
        assert!(reopened.problems().is_empty(), "{:?}", reopened.problems());
        assert_eq!(reopened.entries().len(), 2);
        assert!(fs::read_to_string(&path)
            .unwrap()
            .starts_with(text.trim_end()));
    }

    #[test]
    fn insecure_files_and_directories_are_refused() {
        let (dir, path) = store_path();
        let (der, _) = new_cert("h.example");
        let store = KnownServers::open(&path).unwrap();
        store.add("h.example", None, &der).unwrap();

        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        for e in [
            KnownServers::open(&path).unwrap_err(),
            store.reload().unwrap_err(),
            store.add("g.example", None, &der).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Store, "{e}");
            assert!(e.message().contains(&path.display().to_string()), "{e}");
            assert!(
                e.message().contains("writable by other users (mode 0666)"),
                "{e}"
            );
            assert!(
                e.message()
                    .contains(&format!("chmod go-w {}", path.display())),
                "{e}"
            );
        }
        // The refused add wrote nothing.
        assert_eq!(mode_of(&path), 0o666);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o620)).unwrap();
        assert_eq!(
            KnownServers::open(&path).unwrap_err().kind(),
            ErrorKind::Store
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(KnownServers::open(&path).is_ok());

        for mode in [0o777, 0o1777, 0o770] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            let e = KnownServers::open(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Store, "{e}");
            assert!(
                e.message()
                    .contains(&format!("chmod go-w {}", dir.path().display())),
                "{e}"
            );
            assert!(e.message().contains(&path.display().to_string()), "{e}");
            // Even where the file does not exist yet.
            let e = KnownServers::open(dir.path().join("other.pem")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Store, "{e}");
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(KnownServers::open(&path).is_ok());

        // Only root can give a file away, so only then is that part testable.
        // SAFETY: no preconditions.
        if unsafe { libc::getuid() } == 0 {
            std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
            let e = KnownServers::open(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Store, "{e}");
            assert!(e.message().contains("belongs to user id 4242"), "{e}");
        }
    }

    #[test]
    fn stores_that_are_not_regular_files_are_refused() {
        let (dir, path) = store_path();
        fs::create_dir(&path).unwrap();
        let fifo = dir.path().join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        // A FIFO must be refused, not block the opening until someone writes to it.
        for path in [path, fifo] {
            let e = KnownServers::open(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Store, "{e}");
            assert!(e.message().contains("not a regular file"), "{e}");
        }
    }

    #[test]
    fn presented_garbage_is_a_parse_error() {
        let (_dir, path) = store_path();
        let file = KnownServers::open(&path).unwrap();
        let memory = MemoryKnownServers::new();
        let (der, _) = new_cert("h.example");
        let mut trailing = der.clone();
        trailing.push(0);
        let stores: [&dyn KnownServersStore; 2] = [&file, &memory];
        for store in stores {
            for bad in [&b"junk"[..], &der[..der.len() - 1], &trailing] {
                let e = store.lookup("h.example", None, bad).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Parse, "{e}");
                assert_eq!(
                    store.add("h.example", None, bad).unwrap_err().kind(),
                    ErrorKind::Parse
                );
            }
        }
        assert!(!path.exists());
    }

    #[test]
    fn threads_and_handles_adding_at_once_lose_nothing() {
        let (_dir, path) = store_path();
        let (der, _) = new_cert("t.example");
        let shared = Arc::new(KnownServers::open(&path).unwrap());
        let workers: Vec<_> = (0..6)
            .map(|worker| {
                // Half share one handle, half open their own: both must be safe.
                let store = if worker % 2 == 0 {
                    Arc::clone(&shared)
                } else {
                    Arc::new(KnownServers::open(&path).unwrap())
                };
                let der = der.clone();
                std::thread::spawn(move || {
                    for i in 0..8 {
                        store
                            .add(&format!("w{worker}-{i}.example"), Some(16514), &der)
                            .unwrap();
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let reopened = KnownServers::open(&path).unwrap();
        assert_eq!(reopened.entries().len(), 48);
        shared.reload().unwrap();
        assert_eq!(shared.entries().len(), 48);
        for worker in 0..6 {
            for i in 0..8 {
                let host = format!("w{worker}-{i}.example");
                assert_eq!(
                    reopened.lookup(&host, Some(16514), &der).unwrap(),
                    TrustStatus::Trusted
                );
            }
        }
    }

    #[test]
    fn reload_sees_what_another_handle_wrote() {
        let (_dir, path) = store_path();
        let (der, _) = new_cert("h.example");
        let reader = KnownServers::open(&path).unwrap();
        let writer = KnownServers::open(&path).unwrap();
        writer.add("h.example", None, &der).unwrap();
        assert!(
            reader.entries().is_empty(),
            "entries() shows the file as last read"
        );
        reader.reload().unwrap();
        assert_eq!(reader.entries().len(), 1);
        assert_eq!(
            reader.lookup("h.example", None, &der).unwrap(),
            TrustStatus::Trusted
        );
        // An add picks up the file's current content, not the handle's old snapshot.
        let (other, _) = new_cert("i.example");
        let stale = KnownServers::open(&path).unwrap();
        writer.add("i.example", None, &other).unwrap();
        let (third, _) = new_cert("j.example");
        stale.add("j.example", None, &third).unwrap();
        assert_eq!(stale.entries().len(), 3);
        assert_eq!(
            stale.lookup("i.example", None, &other).unwrap(),
            TrustStatus::Trusted
        );
    }

    #[test]
    fn adding_what_is_recorded_already_writes_nothing() {
        use std::os::unix::fs::MetadataExt;
        let (_dir, path) = store_path();
        let (der, _) = new_cert("h.example");
        let store = KnownServers::open(&path).unwrap();
        store.add("h.example", Some(16514), &der).unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        let text = fs::read_to_string(&path).unwrap();
        store.add("H.example.", Some(16514), &der).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().ino(),
            inode,
            "the file was rewritten"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        // Another certificate, or the same one for another port, is written.
        let (other, _) = new_cert("h.example");
        store.add("h.example", Some(16514), &other).unwrap();
        assert_ne!(fs::metadata(&path).unwrap().ino(), inode);
        store.add("h.example", None, &other).unwrap();
        assert_eq!(store.entries().len(), 2);
    }

    #[test]
    fn stores_are_shareable_trait_objects() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<KnownServers>();
        assert_send_sync::<MemoryKnownServers>();
        let store: Arc<dyn KnownServersStore> = Arc::new(MemoryKnownServers::new());
        let (der, _) = new_cert("h.example");
        let clone = Arc::clone(&store);
        std::thread::spawn(move || clone.add("h.example", Some(5), &der).unwrap())
            .join()
            .unwrap();
        assert_eq!(store.entries().unwrap().len(), 1);
    }

    /// The store file made of `text` with `{cert}` standing for the PEM of `der`.
    fn store_with(path: &Path, text: &str, der: &[u8]) -> KnownServers {
        fs::write(path, text.replace("{cert}", &pem_of(der))).unwrap();
        KnownServers::open(path).unwrap()
    }

    #[test]
    fn a_certificate_without_its_own_host_line_trusts_nobody_outside_a_plain_bundle() {
        let (_dir, path) = store_path();
        let (victim, _) = new_cert("a.example");
        let (other, _) = new_cert("o.example");
        let other_entry = format!("# host o.example port 1\n{}", pem_of(&other));
        // (file, the damaged entry's line, what its message says)
        let cases = [
            (
                "# Host a.example\n{cert}",
                1,
                "\"# Host a.example\" is not a \"# host\" line",
            ),
            (
                "# HOST a.example port 16514\n{cert}",
                1,
                "is not a \"# host\" line",
            ),
            (
                "# hostname a.example\n{cert}",
                1,
                "is not a \"# host\" line",
            ),
            ("# host: a.example\n{cert}", 1, "is not a \"# host\" line"),
            ("#Host=a.example\n{cert}", 1, "is not a \"# host\" line"),
            ("# Hosts\n\n{cert}", 3, "no \"# host\" line directly above"),
            (
                "# my bank's server\n{cert}",
                2,
                "no \"# host\" line directly above",
            ),
            (
                "# a comment\n\n{cert}",
                3,
                "no \"# host\" line directly above",
            ),
            (
                "host a.example\n{cert}",
                2,
                "no \"# host\" line directly above",
            ),
            (
                "subject=CN = a.example\n{cert}",
                2,
                "no \"# host\" line directly above",
            ),
            (
                "# host a.example\n\n{cert}",
                3,
                "separated from its \"# host\" line",
            ),
            ("# host a.example\n# note\n{cert}", 3, "separated from its"),
            (
                "# host * port 16514\n{cert}",
                1,
                "is for any port, not port 16514",
            ),
        ];
        for (text, line, message) in cases {
            for with_other in [false, true] {
                let text = if with_other {
                    format!("{other_entry}{text}")
                } else {
                    text.to_owned()
                };
                let shift = if with_other {
                    other_entry.lines().count()
                } else {
                    0
                };
                let store = store_with(&path, &text, &victim);
                for host in ["a.example", "bank.example"] {
                    assert_eq!(
                        store.lookup(host, Some(16514), &victim).unwrap(),
                        TrustStatus::Unknown,
                        "{host} in {text:?}"
                    );
                }
                let problems = store.problems();
                let damaged = problems
                    .iter()
                    .find(|p| p.line == line + shift && p.message.contains(message));
                assert!(damaged.is_some(), "{text:?}: {problems:#?}");
                assert!(
                    store.entries().iter().all(|e| e.host().is_some()),
                    "{text:?}"
                );
                assert_eq!(
                    store.lookup("o.example", Some(1), &other).unwrap(),
                    if with_other {
                        TrustStatus::Trusted
                    } else {
                        TrustStatus::Unknown
                    }
                );
                // Written back, the damaged entry stays as it was, and damaged.
                let before = fs::read(&path).unwrap();
                let (new, _) = new_cert("n.example");
                store.add("n.example", None, &new).unwrap();
                let after = fs::read(&path).unwrap();
                assert!(after.starts_with(&before), "{text:?}");
                assert_eq!(
                    KnownServers::open(&path)
                        .unwrap()
                        .lookup("bank.example", Some(16514), &victim)
                        .unwrap(),
                    TrustStatus::Unknown
                );
            }
        }
    }

    #[test]
    fn host_star_is_the_explicit_any_host_entry() {
        let (_dir, path) = store_path();
        let (der, _) = new_cert("a.example");
        let fingerprint = Fingerprint::of(&der);
        for header in [
            "# host *".to_owned(),
            "# host * port any".to_owned(),
            format!("# host * cert {fingerprint} added 2026-11-23T10:00:00Z"),
        ] {
            let store = store_with(&path, &format!("# a comment\n{header}\n{{cert}}"), &der);
            assert!(store.problems().is_empty(), "{:?}", store.problems());
            for (host, port) in [("a.example", Some(16514)), ("b.example", None)] {
                assert_eq!(
                    store.lookup(host, port, &der).unwrap(),
                    TrustStatus::TrustedAnyHost,
                    "{header}"
                );
            }
            let entries = store.entries();
            assert_eq!(entries.len(), 1);
            assert_eq!((entries[0].host(), entries[0].port()), (None, None));
        }
        // A wrong fingerprint damages it as it does any entry.
        let wrong = Fingerprint::of(b"other");
        let store = store_with(&path, &format!("# host * cert {wrong}\n{{cert}}"), &der);
        assert_eq!(
            store.lookup("a.example", None, &der).unwrap(),
            TrustStatus::Unknown
        );
        assert!(
            store.problems()[0]
                .message
                .starts_with("entry for any host: the certificate's fingerprint is"),
            "{:?}",
            store.problems()
        );
    }

    #[test]
    fn the_old_banner_is_replaced_when_the_file_is_written() {
        let (_dir, path) = store_path();
        let (a, _) = new_cert("a.example");
        let (b, _) = new_cert("b.example");
        let entry = format!("# host a.example port 1\n{}", pem_of(&a));
        let old = format!("{OLD_FILE_BANNER}{entry}");
        let store = store_with(&path, &old, &a);
        assert!(store.problems().is_empty());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            old,
            "reading changed it"
        );
        store.add("b.example", None, &b).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!("{NEW_FILE_BANNER}{entry}")),
            "{text}"
        );
        assert!(KnownServers::open(&path).unwrap().problems().is_empty());
    }

    #[test]
    fn a_file_read_and_written_back_unchanged_is_the_same_bytes() {
        let (der, _) = new_cert("a.example");
        let pem = pem_of(&der);
        let inputs = [
            String::new(),
            "\n".to_owned(),
            "# only a comment".to_owned(),
            pem.clone(),
            pem.trim_end().to_owned(),
            format!("# host a.example\n{pem}").replace('\n', "\r\n"),
            format!("# Host a.example\n{}", pem.trim_end()),
            format!("junk\n-----END CERTIFICATE-----\n# host x\n\n{pem}\n\n"),
            format!("{pem}{}", &pem[..40]),
            format!("# host * port 3\n{pem}# host\n#host b\r\n{pem}"),
        ];
        for input in inputs {
            assert_eq!(
                String::from_utf8(rewrite_unchanged(input.as_bytes())).unwrap(),
                input
            );
        }
    }

    #[test]
    fn a_lookup_sees_another_handles_changes_without_reload() {
        let (dir, path) = store_path();
        let (der, _) = new_cert("h.example");
        let (other, _) = new_cert("o.example");
        let reader = KnownServers::open(&path).unwrap();
        let writer = KnownServers::open(&path).unwrap();
        writer.add("h.example", Some(1), &der).unwrap();
        assert_eq!(
            reader.lookup("h.example", Some(1), &der).unwrap(),
            TrustStatus::Trusted
        );
        assert!(writer.remove("h.example", Some(1)).unwrap());
        assert_eq!(
            reader.lookup("h.example", Some(1), &der).unwrap(),
            TrustStatus::Unknown
        );

        // An edit in place, same inode and size: seen through the mtime and ctime.
        writer.add("h.example", Some(1), &der).unwrap();
        assert_eq!(
            reader.lookup("h.example", Some(1), &der).unwrap(),
            TrustStatus::Trusted
        );
        let inode = fs::metadata(&path).unwrap().ino();
        let text = fs::read_to_string(&path).unwrap();
        let edited = text.replace("# host h.example", "# host g.example");
        assert_eq!(edited.len(), text.len());
        fs::write(&path, &edited).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(
            reader.lookup("h.example", Some(1), &der).unwrap(),
            TrustStatus::Unknown
        );
        assert_eq!(
            reader.lookup("g.example", Some(1), &der).unwrap(),
            TrustStatus::Trusted
        );

        // A file that can no longer be read safely fails the lookup; it is not answered from
        // what the file said before.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let e = reader.lookup("g.example", Some(1), &der).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
        assert!(reader.entries().is_empty());
        let e = KnownServersStore::entries(&reader).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            reader.lookup("g.example", Some(1), &der).unwrap(),
            TrustStatus::Trusted
        );

        // A deleted file is an empty store.
        fs::remove_file(&path).unwrap();
        assert_eq!(
            reader.lookup("g.example", Some(1), &der).unwrap(),
            TrustStatus::Unknown
        );

        // An unchanged file is not read again: the directory's unsafe mode, which a read
        // would refuse, goes unnoticed until the file changes.
        writer.add("o.example", None, &other).unwrap();
        assert_eq!(
            reader.lookup("o.example", None, &other).unwrap(),
            TrustStatus::Trusted
        );
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            reader.lookup("o.example", None, &other).unwrap(),
            TrustStatus::Trusted
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let e = reader.lookup("o.example", None, &other).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Store, "{e}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let time = UNIX_EPOCH + Duration::from_secs(1_795_428_000);
        assert_eq!(utc_timestamp(time), "2026-11-23T10:00:00Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
