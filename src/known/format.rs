//! The known-servers file format: the file as a list of chunks (comments, damaged parts and
//! entries), parsed from its lines and written back so that whatever was not changed stays byte
//! for byte the same. The rules are in the [module documentation](super); the file store
//! (`file_store.rs`) reads and writes files with it.

use std::ops::Range;
use std::str::FromStr;

use rustls_pki_types::pem::{PemObject, SectionKind};

use super::{normalize_host, CertFacts, Fingerprint, HostKey, KnownServer};

/// The comment that starts a new store file, for the person who opens it.
pub(super) const NEW_FILE_BANNER: &str =
    "# Known servers (virtpki). Each \"# host\" line names a server, \
the certificate below it is the one accepted.\n# \"# host * port any\" trusts the certificate \
below it for any host; a certificate without a \"# host\" line is trusted for nothing.\n";

/// What stores written before `# host *` existed begin with; its second line is no longer
/// true, so it is replaced by [`NEW_FILE_BANNER`] when such a file is written again.
pub(super) const OLD_FILE_BANNER: &str =
    "# Known servers (virtpki). Each \"# host\" line names a server, \
the certificate below it is the one accepted.\n# A certificate without a \"# host\" line is \
trusted for any host.\n";

/// The host of the `# host` line of an entry trusted for any host.
const ANY_HOST: &str = "*";

/// Bytes of the file: a range of the text that was read, or new text.
#[derive(Clone)]
pub(super) enum Text {
    /// `lines` lines of the source, counted when read, as they are needed for every message.
    Original {
        range: Range<usize>,
        lines: usize,
    },
    New(Vec<u8>),
}

impl Text {
    pub(super) fn bytes<'a>(&'a self, source: &'a [u8]) -> &'a [u8] {
        match self {
            Text::Original { range, .. } => &source[range.clone()],
            Text::New(bytes) => bytes,
        }
    }

    pub(super) fn lines(&self) -> usize {
        match self {
            Text::Original { lines, .. } => *lines,
            Text::New(bytes) => bytes.iter().filter(|&&b| b == b'\n').count(),
        }
    }
}

/// A stretch of the file. The file is kept as the list of its chunks, so that writing it back
/// reproduces everything that was not changed byte for byte.
pub(super) enum Chunk {
    /// Blank lines and comments.
    Comment(Text),
    /// Something that is not a usable entry, and why.
    Damaged { text: Text, why: String },
    /// A usable entry: a certificate with or without its `# host` line.
    Server { text: Text, server: KnownServer },
}

impl Chunk {
    pub(super) fn text(&self) -> &Text {
        match self {
            Chunk::Comment(text) | Chunk::Damaged { text, .. } | Chunk::Server { text, .. } => text,
        }
    }

    pub(super) fn is_entry_for(&self, key: &HostKey) -> bool {
        matches!(self, Chunk::Server { server, .. } if server.key.as_ref() == Some(key))
    }

    /// A chunk for a new entry, in the format the module documentation describes.
    pub(super) fn for_new_server(server: KnownServer) -> Chunk {
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
    pub(super) fn make_explicit(&mut self, source: &[u8]) {
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
pub(super) struct Parsed {
    pub(super) chunks: Vec<Chunk>,
    pub(super) plain_bundle: bool,
}

/// Splits the file into chunks. Linear in its size: each certificate is decoded once, and
/// parsed at most once.
pub(super) fn parse_chunks(source: &[u8]) -> Parsed {
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
pub(super) fn serialize(source: &[u8], chunks: &[Chunk]) -> Vec<u8> {
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

/// Replaces the banner of files written before `# host *` existed, whose second line says
/// what is no longer true. Only when the file is written anyway: reading changes nothing.
pub(super) fn update_banner(chunks: &mut [Chunk], source: &[u8]) {
    if let Some(Chunk::Comment(text)) = chunks.first_mut() {
        if let Some(rest) = text.bytes(source).strip_prefix(OLD_FILE_BANNER.as_bytes()) {
            let mut updated = NEW_FILE_BANNER.as_bytes().to_vec();
            updated.extend_from_slice(rest);
            *text = Text::New(updated);
        }
    }
}
