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
//! - A `cert` fingerprint is always checked against the certificate. When it matches and `spki`
//!   is given too, as in every entry the store writes, `spki` is believed rather than the
//!   certificate parsed again, which keeps opening a large store fast; otherwise the certificate
//!   is parsed and a given `spki` checked.
//! - A `CERTIFICATE` block without a `# host` line trusts that certificate for any host and any
//!   port. So a plain PEM bundle, like the certificate-management proposal's
//!   `server/trusted.pem`, is a valid store. (Except a block that only blank or comment lines
//!   separate from a `# host` line: that is a mistake, reported, and trusts nothing.)
//! - Blank lines and other lines starting with `#` are comments.
//! - Anything else is a damaged entry: it is reported by [`KnownServers::problems`] with its line
//!   number, ignored by lookups and written back unchanged, as is every comment.
//!
//! # Concurrency and crashes
//!
//! Readers never lock: writers replace the file by `rename`, so a reader sees the old or the new
//! file. A writer holds an exclusive `flock` on `FILE.lock` while it reads the file afresh,
//! changes it and writes `FILE.tmp`, fsyncs it, renames it over the file and fsyncs the
//! directory; so concurrent writers lose nothing and a crash leaves the old or the new file.
//! The lock is on a separate file because the store file itself is replaced on every write: a
//! writer blocked on the old file's lock would get it after the rename and work on a stale file.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::{PemObject, SectionKind};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::nom::Parser;

use crate::error::{Error, ErrorKind, Result};

/// How long [`KnownServers::add`] and [`KnownServers::remove`] wait for another writer.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The comment that starts a new store file, for the person who opens it.
const NEW_FILE_BANNER: &str = "# Known servers (virtpki). Each \"# host\" line names a server, \
the certificate below it is the one accepted.\n# A certificate without a \"# host\" line is \
trusted for any host.\n";

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
    /// This very certificate is recorded for any host (a block without a host line), and not
    /// for this host. It vouches for the certificate, not for its names: verification lets it
    /// override an unknown issuer, never a host name mismatch.
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
    /// is [`TrustStatus::TrustedAnyHost`] (unless it is also recorded for this host).
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
/// IPv6 zone (`%eth0`) kept as written. Names that could break the file format or that cannot
/// be a host (empty, white space, control characters, a colon outside an IPv6 address) are
/// refused.
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
        (Ok(ip @ IpAddr::V6(_)), Some(zone)) if !zone.is_empty() => {
            return Ok(format!("{ip}%{zone}"))
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
    if recorded.clone().any(|s| s.cert_sha256 == presented.cert) {
        TrustStatus::Trusted
    } else if trusted_for_any_host {
        TrustStatus::TrustedAnyHost
    } else if recorded.clone().next().is_some() {
        TrustStatus::Changed {
            same_key: recorded.clone().any(|s| s.spki_sha256 == presented.spki),
        }
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
        let key = server.key.as_ref().expect("a new entry has a host");
        let mut text = format!(
            "# host {} port {} cert {} spki {}",
            key.host,
            key.port().map_or("any".to_owned(), |p| p.to_string()),
            server.cert_sha256,
            server.spki_sha256
        );
        if let Some(added) = &server.added {
            text.push_str(" added ");
            text.push_str(added);
        }
        text.push('\n');
        let block = pem::Pem::new("CERTIFICATE", server.cert_der.clone());
        let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        text.push_str(&pem::encode_config(&block, config));
        Chunk::Server {
            text: Text::New(text.into_bytes()),
            server,
        }
    }
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
    key: HostKey,
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
    let host = normalize_host(host).map_err(|e| e.message().to_owned())?;
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
    Ok(Header {
        key: HostKey {
            host,
            port: port.unwrap_or(0),
        },
        cert,
        spki,
        added,
    })
}

/// Splits the file into chunks. Linear in its size: each certificate is decoded once, and
/// parsed at most once.
fn parse_chunks(source: &[u8]) -> Vec<Chunk> {
    let lines = split_lines(source);
    let kinds: Vec<LineKind> = lines
        .iter()
        .map(|line| line_kind(&source[line.content.clone()]))
        .collect();
    // The lines `from..to`, as text of the source.
    let span = |from: usize, to: usize| Text::Original {
        range: lines[from].whole.start..lines[to - 1].whole.end,
        lines: to - from,
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
        match kinds[i] {
            LineKind::Blank | LineKind::Comment => {
                // Runs of comment lines become one chunk.
                if let Some(Chunk::Comment(Text::Original {
                    range,
                    lines: count,
                })) = chunks.last_mut()
                {
                    if range.end == lines[i].whole.start {
                        range.end = lines[i].whole.end;
                        *count += 1;
                        i += 1;
                        continue;
                    }
                }
                chunks.push(Chunk::Comment(span(i, i + 1)));
                i += 1;
            }
            LineKind::Header if kinds.get(i + 1) != Some(&LineKind::Begin) => {
                chunks.push(Chunk::Damaged {
                    text: span(i, i + 1),
                    why: "the \"# host\" line is not directly followed by a certificate".to_owned(),
                });
                detached_header = Some(i);
                i += 1;
            }
            LineKind::Header | LineKind::Begin => {
                let header = (kinds[i] == LineKind::Header).then_some(i);
                let begin = header.map_or(i, |h| h + 1);
                let (end, terminated) = block_end(begin);
                let text = span(i, end);
                let block = &source[lines[begin].whole.start..lines[end - 1].whole.end];
                let header_content = header.map(|h| &source[lines[h].content.clone()]);
                let entry = match detached_header.take() {
                    Some(h) if header.is_none() => Err(format!(
                        "the certificate is separated from its \"# host\" line (line {}); it \
                         is not trusted for any host",
                        h + 1
                    )),
                    _ => read_entry(header_content, block, terminated),
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
    chunks
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
    let context = |why: String| match &header {
        Some(header) => format!("entry for {}: {why}", header.key),
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
        key: header.map(|h| h.key),
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

/// The file's text from its chunks; the last line ends with a newline.
fn serialize(source: &[u8], chunks: &[Chunk]) -> Vec<u8> {
    let mut out = Vec::with_capacity(source.len() + 4096);
    for chunk in chunks {
        out.extend_from_slice(chunk.text().bytes(source));
        if out.last().is_some_and(|&b| b != b'\n') {
            out.push(b'\n');
        }
    }
    out
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
                Chunk::Damaged { why, .. } => snapshot.problems.push(StoreProblem {
                    line,
                    message: why.clone(),
                }),
                Chunk::Server { server, .. } => match &server.key {
                    None => {
                        snapshot.any_host.insert(server.cert_sha256);
                    }
                    Some(key) => match snapshot.by_host.entry(key.clone()) {
                        MapEntry::Vacant(slot) => {
                            slot.insert((index, line));
                        }
                        MapEntry::Occupied(first) => snapshot.problems.push(StoreProblem {
                            line,
                            message: format!(
                                "entry for {key}: ignored, the entry on line {} is used",
                                first.get().1
                            ),
                        }),
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
            path.display()
        )));
    }
    // SAFETY: getuid cannot fail and has no preconditions.
    let me = unsafe { libc::getuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(store_error(format!(
            "{what} belongs to user id {}, not to you (user id {me}) nor to root, so they could \
             make you trust any server; run `chown {me} {}` or use another file",
            meta.uid(),
            path.display()
        )));
    }
    Ok(())
}

fn check_directory(store: &Path) -> Result<()> {
    let dir = directory_of(store);
    let what = || {
        format!(
            "the directory {} of the known-servers store {}",
            dir.display(),
            store.display()
        )
    };
    match fs::metadata(dir) {
        Ok(meta) => check_owner_and_mode(&what(), dir, &meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(store_error(format!("cannot check {}: {e}", what())).with_source(e)),
    }
}

/// The store file as read, and its mode, to keep on rewrite. A missing file is an empty store.
fn read_store(path: &Path) -> Result<(Vec<u8>, Option<u32>)> {
    check_directory(path)?;
    let cannot = |op: &str, e: io::Error| {
        store_error(format!(
            "cannot {op} the known-servers store {}: {e}",
            path.display()
        ))
        .with_source(e)
    };
    // Non-blocking, so that a FIFO put in its place is refused below instead of hanging here.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(cannot("open", e)),
    };
    let meta = file.metadata().map_err(|e| cannot("check", e))?;
    if !meta.is_file() {
        return Err(store_error(format!(
            "the known-servers store {} is not a regular file",
            path.display()
        )));
    }
    let what = format!("the known-servers store {}", path.display());
    check_owner_and_mode(&what, path, &meta)?;
    let mut source = Vec::with_capacity(meta.len().try_into().unwrap_or(0));
    file.read_to_end(&mut source)
        .map_err(|e| cannot("read", e))?;
    Ok((source, Some(meta.mode() & 0o777)))
}

/// An exclusive `flock` on `STORE.lock`, held by a writer from reading to renaming.
struct StoreLock(File);

impl StoreLock {
    fn acquire(store: &Path) -> Result<StoreLock> {
        let path = sibling(store, ".lock");
        let cannot = |e: io::Error| {
            store_error(format!(
                "cannot open the lock file {} of the known-servers store: {e}",
                path.display()
            ))
            .with_source(e)
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            // A lock file made by root is still good to lock: flock needs no write access.
            .or_else(|e| match e.kind() {
                io::ErrorKind::PermissionDenied => File::open(&path),
                _ => Err(e),
            })
            .map_err(cannot)?;
        // Polling rather than blocking, so that a stuck writer becomes an error, not a hang.
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(StoreLock(file));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(code) if code == libc::EWOULDBLOCK || code == libc::EAGAIN => {}
                _ => {
                    return Err(store_error(format!(
                        "cannot lock {} for the known-servers store: {e}",
                        path.display()
                    ))
                    .with_source(e))
                }
            }
            if Instant::now() >= deadline {
                return Err(store_error(format!(
                    "the known-servers store {} is locked: another process has held {} for \
                     more than {} seconds",
                    store.display(),
                    path.display(),
                    LOCK_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Explicit, in case a forked child shares the descriptor; closing would not release it.
        // SAFETY: as in `acquire`.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Replaces `path` by `bytes` so that, whenever the process dies, `path` is the old or the new
/// file: write a temporary file beside it, fsync, rename, fsync the directory.
fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let temporary = sibling(path, ".tmp");
    let failed = |op: &str, on: &Path, e: io::Error| Error::io(op, on, e);
    // Only the lock holder writes the temporary file: one left by a killed writer is stale.
    match fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("remove the stale", &temporary, e)),
    }
    let write = || -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)
            .map_err(|e| failed("create", &temporary, e))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| failed("set the mode of", &temporary, e))?;
        file.write_all(bytes)
            .map_err(|e| failed("write", &temporary, e))?;
        file.sync_all().map_err(|e| failed("sync", &temporary, e))?;
        fs::rename(&temporary, path).map_err(|e| failed("replace", path, e))
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&temporary);
        return Err(e);
    }
    let dir = directory_of(path);
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| failed("sync the directory", dir, e))
}

/// The known-servers store in a file, in the format the module documentation describes.
///
/// Opening reads and indexes the file once; lookups then use that snapshot and cost the same
/// however many entries there are. [`add`](Self::add) and [`remove`](Self::remove) re-read the
/// file under the lock, so that they keep what other processes wrote meanwhile, and leave the
/// snapshot equal to the file they wrote. [`reload`](Self::reload) picks up other processes'
/// changes otherwise.
pub struct KnownServers {
    path: PathBuf,
    snapshot: RwLock<Snapshot>,
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
        let snapshot = Self::read(&path)?;
        Ok(KnownServers {
            path,
            snapshot: RwLock::new(snapshot),
        })
    }

    fn read(path: &Path) -> Result<Snapshot> {
        let (source, _) = read_store(path)?;
        let chunks = parse_chunks(&source);
        Ok(Snapshot::new(chunks))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The damaged parts of the file as last read or written, by line. Lookups ignore them;
    /// writes keep them.
    pub fn problems(&self) -> Vec<StoreProblem> {
        self.snapshot().problems.clone()
    }

    /// Reads the file again, e.g. after another process changed it.
    pub fn reload(&self) -> Result<()> {
        let fresh = Self::read(&self.path)?;
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    fn snapshot(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// See [`KnownServersStore::lookup`].
    pub fn lookup(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<TrustStatus> {
        let key = HostKey::new(host, port)?;
        let presented = CertFacts::of_argument(cert_der, host)?;
        Ok(self.snapshot().lookup(&key, &presented))
    }

    /// See [`KnownServersStore::add`]. Creates the file (mode 0600), and its directory (mode
    /// 0700) if missing.
    pub fn add(&self, host: &str, port: Option<u16>, cert_der: &[u8]) -> Result<()> {
        let key = HostKey::new(host, port)?;
        let facts = CertFacts::of_argument(cert_der, host)?;
        let server = new_server(key.clone(), cert_der, facts);
        let dir = directory_of(&self.path);
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io("create the directory", dir, e))?;
        }
        self.rewrite(|chunks| {
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
        if !directory_of(&self.path).exists() {
            // Nothing was ever stored there: no directory to create and lock just to say so.
            self.reload()?;
            return Ok(false);
        }
        let mut found = false;
        self.rewrite(|chunks| {
            let before = chunks.len();
            chunks.retain(|chunk| !chunk.is_entry_for(&key));
            found = chunks.len() != before;
            found
        })?;
        Ok(found)
    }

    /// See [`KnownServersStore::entries`]. In file order.
    pub fn entries(&self) -> Vec<KnownServer> {
        self.snapshot().entries()
    }

    /// The read-modify-write cycle of every change, under the lock. `change` returns whether
    /// it changed anything; if not, nothing is written.
    fn rewrite(&self, change: impl FnOnce(&mut Vec<Chunk>) -> bool) -> Result<()> {
        // Checked before the lock file is made there, and again by read_store under the lock.
        check_directory(&self.path)?;
        let _lock = StoreLock::acquire(&self.path)?;
        let (source, mode) = read_store(&self.path)?;
        let mut chunks = parse_chunks(&source);
        if change(&mut chunks) {
            replace_file(
                &self.path,
                &serialize(&source, &chunks),
                mode.unwrap_or(0o600),
            )?;
        }
        // Still under the lock, so that snapshots are replaced in the order files were written.
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Snapshot::new(chunks);
        Ok(())
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

    fn entries(&self) -> Result<Vec<KnownServer>> {
        Ok(KnownServers::entries(self))
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
            "192.0.2.7%eth0",
            "a]b",
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

        // A host entry added to the bundle leaves the bundle's text alone.
        store.add("a.example", Some(16514), &stranger).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&bundle), "{text}");
        assert_eq!(
            store.lookup("a.example", Some(16514), &a).unwrap(),
            TrustStatus::TrustedAnyHost
        );
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
        assert_eq!(
            reader.lookup("h.example", None, &der).unwrap(),
            TrustStatus::Unknown
        );
        reader.reload().unwrap();
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

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let time = UNIX_EPOCH + Duration::from_secs(1_795_428_000);
        assert_eq!(utc_timestamp(time), "2026-11-23T10:00:00Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
