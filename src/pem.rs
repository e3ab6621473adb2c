//! Reading credentials: PEM text and files (PEM or DER), bundles, CRLs and private keys.
//!
//! Every input is checked completely before anything is returned, so that adding it can be
//! all-or-nothing. Each kind of data has a size cap (see [`CertDataType::size_limit`]): libvirt
//! reads at most 64 KiB, which real CA bundles and CRLs outgrow, so the caps here are larger
//! but still bound what a hostile or mistaken file can make the library allocate.
//!
//! Private key files must not be readable or writable by other users (libvirt's own files are
//! 0600 or 0640); group access is allowed because libvirt's qemu-group setups need it, and the
//! sanity check reports it.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use zeroize::{Zeroize, Zeroizing};

use crate::cert::{Certificate, Fingerprint};
use crate::crl::Crl;
use crate::data_type::{CertDataType, Content, MIB};
use crate::error::{Error, ErrorKind, Result};
use crate::fsutil::{self, Follow, ReadFile};
use crate::source::Source;

/// The encodings of private keys that are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// `PRIVATE KEY`: PKCS#8.
    Pkcs8,
    /// `RSA PRIVATE KEY`: PKCS#1.
    Pkcs1,
    /// `EC PRIVATE KEY`: SEC1.
    Sec1,
}

/// An unencrypted private key whose bytes are wiped when it is dropped.
pub struct PrivateKey {
    der: PrivateKeyDer<'static>,
    source: Source,
    public_key: Vec<u8>,
    file_mode: Option<u32>,
}

impl PrivateKey {
    /// Checks that rustls' ring provider can use the key and records its public key.
    pub fn new(format: KeyFormat, der: Vec<u8>, source: Source) -> Result<PrivateKey> {
        let der: PrivateKeyDer<'static> = match format {
            KeyFormat::Pkcs8 => PrivatePkcs8KeyDer::from(der).into(),
            KeyFormat::Pkcs1 => PrivatePkcs1KeyDer::from(der).into(),
            KeyFormat::Sec1 => PrivateSec1KeyDer::from(der).into(),
        };
        let mut key = PrivateKey {
            der,
            source,
            public_key: Vec::new(),
            file_mode: None,
        };
        let signing = crate::crypto::provider()
            .key_provider
            .load_private_key(key.der.clone_key())
            .map_err(|e| {
                Error::new(
                    ErrorKind::Parse,
                    format!(
                        "{}: unusable private key ({e}); supported are RSA ({}), ECDSA P-256 \
                         and P-384, and Ed25519",
                        key.source,
                        crate::crypto::rsa_signing_sizes()
                    ),
                )
            })?;
        key.public_key = signing
            .public_key()
            .map(|spki| spki.to_vec())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Parse,
                    format!(
                        "{}: the public key of this private key cannot be derived",
                        key.source
                    ),
                )
            })?;
        Ok(key)
    }

    /// The key in the form rustls takes.
    pub fn der(&self) -> &PrivateKeyDer<'static> {
        &self.der
    }

    /// Where the key was read from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The mode of the file the key was read from, if it was.
    pub fn file_mode(&self) -> Option<u32> {
        self.file_mode
    }

    /// Records the mode of the file the key was read from.
    pub fn set_file_mode(&mut self, mode: u32) {
        self.file_mode = Some(mode);
    }

    /// The matching SubjectPublicKeyInfo, DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key
    }

    /// The fingerprint of the public key: the [`Certificate::spki_fingerprint`] of a
    /// certificate for this key.
    pub fn public_key_fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public_key)
    }

    /// Whether this is a PKCS#8 v2 key (RFC 5958, with the public key inside), which GnuTLS
    /// 3.7 — libvirt 9's — cannot parse; ring writes Ed25519 keys so.
    pub fn is_pkcs8_v2(&self) -> bool {
        let PrivateKeyDer::Pkcs8(der) = &self.der else {
            return false;
        };
        let b = der.secret_pkcs8_der();
        // SEQUENCE (short or long length), then INTEGER 1 = v2.
        let header = match b.get(1) {
            Some(n) if *n < 0x80 => 2,
            Some(n) => 2 + usize::from(n & 0x7f),
            None => return false,
        };
        b.first() == Some(&0x30) && b.get(header..header + 3) == Some(&[0x02, 0x01, 0x01][..])
    }

    /// Whether `cert` carries this key's public key: the same SubjectPublicKeyInfo, byte for
    /// byte (what equal fingerprints stand for, without hashing the key again).
    pub fn matches(&self, cert: &Certificate) -> bool {
        self.public_key == cert.spki_der()
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.der.zeroize();
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Everything one input held, already parsed and checked.
#[derive(Debug)]
pub enum Parsed {
    /// One or more certificates, in the order of the input.
    Certificates(Vec<Certificate>),
    /// One or more CRLs, in the order of the input.
    Crls(Vec<Crl>),
    /// The one private key.
    PrivateKey(PrivateKey),
}

/// Reads a file of type `ty`, within its size cap; a key file must not be open to others.
///
/// The bytes are wiped when dropped, since they may be a private key.
/// Returns the bytes and the file's mode bits.
pub fn read_file(path: &Path, ty: CertDataType) -> Result<(Zeroizing<Vec<u8>>, u32)> {
    let read = read_file_as(path, ty, Follow::Yes)?;
    Ok((read.bytes, read.meta.mode() & 0o7777))
}

/// [`read_file`] with the choice whether `path` may be a symbolic link, and the file's whole
/// `fstat`: a caller that installs the bytes it checked opens its sources once, not following
/// links, and needs their owner too.
pub fn read_file_as(path: &Path, ty: CertDataType, follow: Follow) -> Result<ReadFile> {
    checked_read(
        path,
        ty.content(),
        &ty.to_string(),
        fsutil::read_regular(path, follow, ty.size_limit() as u64),
    )
}

/// [`read_file_as`] for the file `name` in the open directory `dir`, never through a link at
/// `name`: a caller that checked the directory reads from that directory, whatever its path
/// leads to meanwhile. Messages name `dir`'s path joined with `name`.
pub fn read_file_in(
    dir: &fsutil::Dir,
    name: &std::ffi::OsStr,
    ty: CertDataType,
) -> Result<ReadFile> {
    checked_read(
        &dir.path().join(name),
        ty.content(),
        &ty.to_string(),
        dir.read(name, ty.size_limit() as u64),
    )
}

/// The rules every read of a credential file applies to what was read: the size cap of its
/// content, and a key file closed to other users. `what` names the expected data in messages.
fn checked_read(
    path: &Path,
    content: Content,
    what: &str,
    read: std::result::Result<ReadFile, fsutil::ReadError>,
) -> Result<ReadFile> {
    let limit = match content {
        Content::Certificates => CertDataType::CaCert,
        Content::Crls => CertDataType::CaCrl,
        Content::PrivateKey => CertDataType::ClientKey,
    }
    .size_limit();
    let read = read.map_err(|e| {
        e.into_error(path, &format!("{what} file"), |len| {
            too_large(&Source::File(path.into()), len, what, limit)
        })
    })?;
    if content == Content::PrivateKey {
        check_key_file_mode(path, read.meta.mode())?;
    }
    Ok(read)
}

/// Refuses a key file that other users may read or write.
pub fn check_key_file_mode(path: &Path, mode: u32) -> Result<()> {
    if mode & 0o006 != 0 {
        return Err(Error::new(
            ErrorKind::InsecurePermissions,
            format!(
                "{}: private key file is {} by other users (mode {:04o}); \
                 fix with: chmod o-rwx {}",
                path.display(),
                if mode & 0o004 != 0 {
                    "readable"
                } else {
                    "writable"
                },
                mode & 0o7777,
                crate::display::shell_path(path)
            ),
        ));
    }
    Ok(())
}

fn too_large(source: &Source, len: u64, what: &str, limit: usize) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        format!(
            "{source}: {len} bytes is over the {} limit for a {what}",
            human_size(limit)
        ),
    )
}

fn human_size(n: usize) -> String {
    if n >= MIB {
        format!("{} MiB", n / MIB)
    } else {
        format!("{} KiB", n / 1024)
    }
}

/// Parses an input of type `ty`: PEM (text around the blocks is ignored) or, for files, DER.
///
/// Every block must be of the kind `ty` takes; one bad block fails the whole input.
pub fn parse(ty: CertDataType, bytes: &[u8], source: &Source) -> Result<Parsed> {
    parse_as(
        ty.content(),
        &ty.to_string(),
        ty.size_limit(),
        bytes,
        source,
    )
}

/// Parses an input of type `ty` that a caller expects to be `expected` ("a server certificate",
/// "a certificate to revoke"): [`parse`] with messages that say what the command expected,
/// rather than the data type's name.
pub fn parse_expecting(
    ty: CertDataType,
    expected: &str,
    bytes: &[u8],
    source: &Source,
) -> Result<Parsed> {
    parse_as(ty.content(), expected, ty.size_limit(), bytes, source)
}

/// The certificates of a PEM or DER file, within the certificate size cap; at least one.
pub fn read_certificates(path: &Path) -> Result<Vec<Certificate>> {
    read_certificates_expecting(path, "certificate")
}

/// [`read_certificates`] for a caller that expects `expected` ("server certificate",
/// "certificate to revoke"), which its messages name: "found a private key where a server
/// certificate was expected".
pub fn read_certificates_expecting(path: &Path, expected: &str) -> Result<Vec<Certificate>> {
    let ty = CertDataType::CaCert;
    let read = checked_read(
        path,
        ty.content(),
        expected,
        fsutil::read_regular(path, Follow::Yes, ty.size_limit() as u64),
    )?;
    let source = Source::File(path.to_owned());
    match parse_expecting(ty, expected, &read.bytes, &source)? {
        Parsed::Certificates(certs) if !certs.is_empty() => Ok(certs),
        _ => Err(Error::new(
            ErrorKind::Parse,
            format!("{}: holds no certificate", path.display()),
        )),
    }
}

/// The CRLs of a PEM or DER file, within the CRL size cap; at least one.
pub fn read_crls(path: &Path) -> Result<Vec<Crl>> {
    let (bytes, _) = read_file(path, CertDataType::CaCrl)?;
    match parse(CertDataType::CaCrl, &bytes, &Source::File(path.to_owned()))? {
        Parsed::Crls(crls) if !crls.is_empty() => Ok(crls),
        _ => Err(Error::new(
            ErrorKind::Parse,
            format!("{}: holds no certificate revocation list", path.display()),
        )),
    }
}

/// Certificates given as PEM text, leaf first: what a peer presents or a caller passes to the
/// verify functions.
pub fn parse_chain(text: &str) -> Result<Vec<Certificate>> {
    let limit = CertDataType::ServerCert.size_limit();
    match parse_as(
        Content::Certificates,
        "certificate",
        limit,
        text.as_bytes(),
        &Source::Data,
    )? {
        Parsed::Certificates(chain) => Ok(chain),
        _ => Err(Error::new(
            ErrorKind::Internal,
            "certificates parsed as another kind",
        )),
    }
}

/// Parses an input that must hold `content`; `what` names it in messages.
fn parse_as(
    content: Content,
    what: &str,
    limit: usize,
    bytes: &[u8],
    source: &Source,
) -> Result<Parsed> {
    if bytes.len() > limit {
        return Err(too_large(source, bytes.len() as u64, what, limit));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::new(
            ErrorKind::InvalidArg,
            format!("{source}: empty input, expected a {what}"),
        ));
    }
    // A file that is a whole DER certificate, CRL or key is DER, whatever its bytes spell: a
    // certificate's name may hold the text "-----BEGIN", which must not make it "broken PEM".
    // Text is never also such a DER structure (their second and third bytes are binary).
    let der = bytes[0] == 0x30 && matches!(source, Source::File(_));
    let blocks = if let Some(block) = der.then(|| der_block(bytes, source).ok()).flatten() {
        vec![block]
    } else if let Some(blocks) = pem_blocks(bytes, source, content)? {
        blocks
    } else if der {
        vec![der_block(bytes, source)?]
    } else {
        return Err(Error::new(
            ErrorKind::Parse,
            format!(
                "{source}: no PEM data found (expected a line \"-----BEGIN {}-----\")",
                pem_label(content)
            ),
        ));
    };
    let many = blocks.len() > 1;
    let name = |i: usize| {
        if many {
            format!("{source}: block {}", i + 1)
        } else {
            source.to_string()
        }
    };
    match content {
        Content::Certificates => {
            let mut certs = Vec::with_capacity(blocks.len());
            for (i, mut block) in blocks.into_iter().enumerate() {
                match block.kind {
                    BlockKind::Certificate => {
                        // A certificate is public: its bytes move out, nothing to wipe.
                        let der = std::mem::take(&mut *block.contents);
                        let cert = Certificate::from_der(der, source.clone())
                            .map_err(|e| in_block(e, source, &name(i)))?;
                        certs.push(cert);
                    }
                    other => return Err(wrong_type(&name(i), other, what)),
                }
            }
            Ok(Parsed::Certificates(certs))
        }
        Content::Crls => {
            let mut crls = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.into_iter().enumerate() {
                match block.kind {
                    BlockKind::Crl => crls.push(Crl::from_der(
                        block.contents.to_vec(),
                        source.clone(),
                        &name(i),
                    )?),
                    other => return Err(wrong_type(&name(i), other, what)),
                }
            }
            Ok(Parsed::Crls(crls))
        }
        Content::PrivateKey => {
            let mut key = None;
            for (i, block) in blocks.into_iter().enumerate() {
                match block.kind {
                    BlockKind::EcParameters => {}
                    BlockKind::PrivateKey(format) if key.is_none() => {
                        key = Some(PrivateKey::new(
                            format,
                            block.contents.to_vec(),
                            source.clone(),
                        )?);
                    }
                    BlockKind::PrivateKey(_) => {
                        return Err(Error::new(
                            ErrorKind::Parse,
                            format!("{}: a second private key; give one key per input", name(i)),
                        ))
                    }
                    other => return Err(wrong_type(&name(i), other, what)),
                }
            }
            key.map(Parsed::PrivateKey).ok_or_else(|| {
                Error::new(ErrorKind::Parse, format!("{source}: no private key found"))
            })
        }
    }
}

/// Names the block in an error that names only the source (as messages are stored: escaped,
/// so a file name with a line feed in it still matches).
fn in_block(err: Error, source: &Source, block: &str) -> Error {
    let prefix = format!("{source}: ");
    match err
        .message()
        .strip_prefix(&*crate::display::escape(&prefix))
    {
        Some(rest) => Error::new(err.kind(), format!("{block}: {rest}")),
        None => err,
    }
}

/// What a PEM block or DER input is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum BlockKind {
    Certificate,
    Crl,
    PrivateKey(KeyFormat),
    EncryptedKey,
    /// `EC PARAMETERS`, which `openssl ecparam -genkey` writes before the key.
    EcParameters,
    Other(String),
}

struct Block {
    kind: BlockKind,
    contents: Zeroizing<Vec<u8>>,
}

fn pem_label(content: Content) -> &'static str {
    match content {
        Content::Certificates => "CERTIFICATE",
        Content::Crls => "X509 CRL",
        Content::PrivateKey => "PRIVATE KEY",
    }
}

fn wrong_type(place: &str, kind: BlockKind, expected: &str) -> Error {
    let found = match kind {
        BlockKind::Certificate => "a certificate".to_owned(),
        BlockKind::Crl => "a certificate revocation list".to_owned(),
        BlockKind::PrivateKey(_) => "a private key".to_owned(),
        BlockKind::EcParameters => "EC parameters".to_owned(),
        BlockKind::EncryptedKey => {
            return Error::new(
                ErrorKind::WrongType,
                format!(
                    "{place}: the private key is encrypted; virtpki, like libvirt, needs it \
                     unencrypted: decrypt it with \"openssl pkey -in KEY -out NEWKEY\" and keep \
                     the file mode 0600"
                ),
            )
        }
        BlockKind::Other(label) => format!("a \"{label}\" block"),
    };
    Error::new(
        ErrorKind::WrongType,
        format!("{place}: found {found} where a {expected} was expected"),
    )
}

fn classify(label: &str, encrypted: bool) -> BlockKind {
    let key = |format| {
        if encrypted {
            BlockKind::EncryptedKey
        } else {
            BlockKind::PrivateKey(format)
        }
    };
    match label {
        "CERTIFICATE" | "X509 CERTIFICATE" => BlockKind::Certificate,
        "X509 CRL" => BlockKind::Crl,
        "PRIVATE KEY" => key(KeyFormat::Pkcs8),
        "RSA PRIVATE KEY" => key(KeyFormat::Pkcs1),
        "EC PRIVATE KEY" => key(KeyFormat::Sec1),
        "ENCRYPTED PRIVATE KEY" => BlockKind::EncryptedKey,
        "EC PARAMETERS" => BlockKind::EcParameters,
        other => BlockKind::Other(other.to_owned()),
    }
}

/// What marks PEM text: every occurrence must open a complete block. The same needle decides
/// "this is PEM" and counts the blocks, so text with a broken BEGIN line (no space, a tab, too
/// few dashes, no END) can never pass as PEM holding nothing.
const PEM_BEGIN: &[u8] = b"-----BEGIN";
/// What closes a block; as many as there are BEGIN lines.
const PEM_END: &[u8] = b"-----END";

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// The one place that decides how many PEM blocks `bytes` holds, for every type of input:
/// `None` if there is no PEM marker at all (DER, or not PEM), else every block, at least one;
/// a marker that does not open a complete block is a parse error naming the source.
fn pem_blocks(bytes: &[u8], source: &Source, content: Content) -> Result<Option<Vec<Block>>> {
    match plain_certificate_blocks(bytes) {
        Some(blocks) => Ok(Some(blocks)),
        None => general_pem_blocks(bytes, source, content),
    }
}

/// [`pem_blocks`] through the `pem` crate: any label, headers, text around the blocks.
fn general_pem_blocks(
    bytes: &[u8],
    source: &Source,
    content: Content,
) -> Result<Option<Vec<Block>>> {
    let begins = count(bytes, PEM_BEGIN);
    if begins == 0 {
        return Ok(None);
    }
    let parsed = ::pem::parse_many(bytes)
        .map_err(|e| Error::new(ErrorKind::Parse, format!("{source}: malformed PEM ({e})")))?;
    if parsed.is_empty() {
        return Err(Error::new(
            ErrorKind::Parse,
            format!(
                "{source}: malformed PEM: no complete block (a block is truncated, or a BEGIN or \
                 END line has the wrong dashes or spacing); expected \"-----BEGIN {label}-----\" \
                 ... \"-----END {label}-----\"",
                label = pem_label(content)
            ),
        ));
    }
    if parsed.len() != begins {
        return Err(Error::new(
            ErrorKind::Parse,
            format!(
                "{source}: malformed PEM: {begins} BEGIN lines but {} complete blocks \
                 (a block is truncated or its END line does not match)",
                parsed.len()
            ),
        ));
    }
    // Every END line closes a block too: an END line left over belongs to a block whose BEGIN
    // line is broken ("----BEGIN", "-----begin"), which would otherwise be skipped as text
    // around the blocks, a CRL in a bundle dropped without a word.
    let ends = count(bytes, PEM_END);
    if ends != begins {
        return Err(Error::new(
            ErrorKind::Parse,
            format!(
                "{source}: malformed PEM: {ends} END lines but {begins} blocks (a BEGIN line \
                 has the wrong dashes or case); expected \"-----BEGIN {label}-----\"",
                label = pem_label(content)
            ),
        ));
    }
    Ok(Some(
        parsed
            .into_iter()
            .map(|p| {
                let encrypted = p
                    .headers()
                    .get("Proc-Type")
                    .is_some_and(|v| v.contains("ENCRYPTED"));
                let kind = classify(p.tag(), encrypted);
                Block {
                    kind,
                    contents: Zeroizing::new(p.into_contents()),
                }
            })
            .collect(),
    ))
}

/// The usual shape of a peer's chain, read without the `pem` crate's general parser (a third of
/// a verification from PEM text went there): only `CERTIFICATE` blocks, each a BEGIN line,
/// lines of base64 characters and an END line, with only whitespace around them. For such
/// input `pem::parse_many` finds the same blocks and decodes the same bytes with this same
/// engine, and the BEGIN/END counts of [`pem_blocks`] agree; anything else (headers, other
/// labels, text around, a base64 error) is `None` and goes the general way, with its messages.
fn plain_certificate_blocks(bytes: &[u8]) -> Option<Vec<Block>> {
    use base64::Engine;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let skip_space = |b: &[u8]| -> usize {
        b.iter()
            .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(b.len())
    };
    let mut rest = &bytes[skip_space(bytes)..];
    // Anything that is not a certificate declines here, before a buffer is set aside.
    if !rest.is_empty() && !rest.starts_with(BEGIN) {
        return None;
    }
    let mut blocks = Vec::new();
    let mut base64 = Vec::with_capacity(bytes.len());
    while !rest.is_empty() {
        rest = rest.strip_prefix(BEGIN)?;
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))?;
        base64.clear();
        loop {
            if let Some(after) = rest.strip_prefix(END) {
                rest = &after[skip_space(after)..];
                break;
            }
            let eol = memchr::memchr(b'\n', rest)?;
            let line = &rest[..eol];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            // Any byte outside the base64 alphabet makes the decoding below fail: declined.
            if line.is_empty() {
                return None;
            }
            base64.extend_from_slice(line);
            rest = &rest[eol + 1..];
        }
        let contents = base64::engine::general_purpose::STANDARD
            .decode(&base64)
            .ok()?;
        blocks.push(Block {
            kind: BlockKind::Certificate,
            contents: Zeroizing::new(contents),
        });
    }
    (!blocks.is_empty()).then_some(blocks)
}

/// Works out what a DER file holds by trying each structure in turn.
fn der_block(bytes: &[u8], source: &Source) -> Result<Block> {
    use x509_parser::prelude::FromDer;
    let complete = |rest: &[u8]| rest.is_empty();
    let kind = if x509_parser::certificate::X509Certificate::from_der(bytes)
        .is_ok_and(|(rest, _)| complete(rest))
    {
        BlockKind::Certificate
    } else if x509_parser::revocation_list::CertificateRevocationList::from_der(bytes)
        .is_ok_and(|(rest, _)| complete(rest))
    {
        BlockKind::Crl
    } else {
        match PrivateKeyDer::try_from(bytes) {
            Ok(PrivateKeyDer::Pkcs8(_)) => BlockKind::PrivateKey(KeyFormat::Pkcs8),
            Ok(PrivateKeyDer::Pkcs1(_)) => BlockKind::PrivateKey(KeyFormat::Pkcs1),
            Ok(PrivateKeyDer::Sec1(_)) => BlockKind::PrivateKey(KeyFormat::Sec1),
            _ => {
                return Err(Error::new(
                    ErrorKind::Parse,
                    format!(
                        "{source}: neither PEM nor a DER certificate, CRL or private key \
                         that can be read"
                    ),
                ))
            }
        }
    };
    Ok(Block {
        kind,
        contents: Zeroizing::new(bytes.to_vec()),
    })
}

#[cfg(test)]
mod plain_blocks_tests {
    use super::plain_certificate_blocks;
    use base64::Engine;

    /// `bytes` as a CERTIFICATE block with base64 lines of `width` and the line end `eol`.
    fn block(bytes: &[u8], width: usize, eol: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut s = format!("-----BEGIN CERTIFICATE-----{eol}");
        for line in b64.as_bytes().chunks(width) {
            s.push_str(std::str::from_utf8(line).unwrap());
            s.push_str(eol);
        }
        s.push_str("-----END CERTIFICATE-----");
        s.push_str(eol);
        s
    }

    /// Whenever the fast path answers, the `pem` crate gives the same blocks.
    fn same_as_pem_crate(input: &str) -> bool {
        let Some(fast) = plain_certificate_blocks(input.as_bytes()) else {
            return false;
        };
        let slow = pem::parse_many(input).expect("the pem crate reads what the fast path read");
        assert_eq!(fast.len(), slow.len(), "{input:?}");
        for (f, s) in fast.iter().zip(&slow) {
            assert_eq!(s.tag(), "CERTIFICATE");
            assert!(s.headers().iter().next().is_none());
            assert_eq!(&f.contents[..], s.contents(), "{input:?}");
        }
        true
    }

    /// Every length of the last line, with LF and with CRLF line ends, one block or two,
    /// takes the fast path.
    #[test]
    fn every_last_line_length_takes_the_fast_path() {
        for len in 1..=160usize {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            for eol in ["\n", "\r\n"] {
                let one = block(&der, 64, eol);
                assert!(same_as_pem_crate(&one), "fast path refused {one:?}");
                let two = one.clone() + &block(&der[..len / 2 + 1], 64, eol);
                assert!(same_as_pem_crate(&two), "fast path refused {two:?}");
            }
        }
    }

    #[test]
    fn plain_chains_are_read_as_the_pem_crate_reads_them() {
        let a: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let b: Vec<u8> = (0..=255u8).rev().cycle().take(701).collect();
        let c = vec![7u8; 2];
        for input in [
            block(&a, 64, "\n"),
            block(&a, 64, "\r\n") + &block(&b, 76, "\r\n"),
            format!(
                "\n \t{}\n\n{}  \n",
                block(&a, 64, "\n"),
                block(&c, 64, "\n")
            ),
            block(&b, 10_000, "\n"),
            block(&c, 1, "\n"),
            block(&a, 64, "\n").trim_end().to_owned(),
        ] {
            assert!(same_as_pem_crate(&input), "fast path refused {input:?}");
        }
    }

    #[test]
    fn anything_else_goes_the_general_way() {
        let a: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let good = block(&a, 64, "\n");
        for input in [
            String::new(),
            " \n".to_owned(),
            format!("text before\n{good}"),
            format!("{good}text after\n"),
            good.replace(
                "CERTIFICATE-----\n",
                "CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n",
            ),
            good.replace("END CERTIFICATE", "END X509 CRL"),
            good.replace("CERTIFICATE", "X509 CRL"),
            good.replacen('A', "!", 1),
            good.replacen("\n", "\n\n", 2),
            good.replace("-----END CERTIFICATE-----\n", ""),
            good.replace("BEGIN CERTIFICATE-----", "BEGIN CERTIFICATE----"),
            // Non-zero bits after the last byte: base64's standard engine refuses it.
            "-----BEGIN CERTIFICATE-----\nQR==\n-----END CERTIFICATE-----\n".to_owned(),
            "-----BEGIN CERTIFICATE-----\nQQ=\n-----END CERTIFICATE-----\n".to_owned(),
        ] {
            assert!(
                plain_certificate_blocks(input.as_bytes()).is_none(),
                "fast path took {input:?}"
            );
        }
    }
}

/// Differential: mutations of real chains (the fuzz corpus's PEM texts). Whenever the fast path
/// answers, the general path gives the same blocks (kinds and bytes); the fast path may decline.
#[cfg(test)]
mod differential_tests {
    use super::{general_pem_blocks, plain_certificate_blocks, BlockKind, Content};
    use crate::source::Source;

    const SEEDS: [&[u8]; 4] = [
        include_bytes!("../fuzz/corpus/pem_input/client-chain-text"),
        include_bytes!("../fuzz/corpus/pem_input/ca-text"),
        include_bytes!("../fuzz/corpus/pem_input/trusted-text"),
        include_bytes!("../fuzz/corpus/pem_input/crl-text"),
    ];

    /// Bytes that matter to either parser: base64, padding, dashes, every kind of space, NUL,
    /// a UTF-8 lead byte, a Unicode space's first byte.
    const ALPHABET: &[u8] = b"AQgw+/=-  \t\r\n\n\0\xc2\xa0E";

    /// Pieces a mutation splices in: markers, glue, padding.
    const PIECES: [&[u8]; 10] = [
        b"-----END CERTIFICATE-----",
        b"-----BEGIN CERTIFICATE-----\n",
        b"-----END CERTIFICATE----------BEGIN CERTIFICATE-----\n",
        b"==",
        b"\r\n",
        b"\n\n",
        b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        b"-----END X509 CRL-----",
        b"Proc-Type: 4,ENCRYPTED\n\n",
        b" ",
    ];

    use crate::test_rng::XorShift as Rng;

    fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
        for _ in 0..=rng.below(2) {
            let at = rng.below(input.len() + 1);
            match rng.below(8) {
                0 if at < input.len() => {
                    input.remove(at);
                }
                1 => input.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                2 if at < input.len() => input[at] = ALPHABET[rng.below(ALPHABET.len())],
                3 => input.truncate(at),
                4 => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    input.splice(at..at, piece.iter().copied());
                }
                5 => {
                    // Glue a copy of a stretch (another block, a repeated line) in.
                    let from = rng.below(input.len());
                    let to = (from + rng.below(800)).min(input.len());
                    let copy = input[from..to].to_vec();
                    input.splice(at..at, copy);
                }
                6 => {
                    // One line's ending made CRLF, or a CRLF made LF.
                    if let Some(nl) = input[at..].iter().position(|&c| c == b'\n') {
                        let nl = at + nl;
                        if nl > 0 && input[nl - 1] == b'\r' {
                            input.remove(nl - 1);
                        } else {
                            input.insert(nl, b'\r');
                        }
                    }
                }
                _ => {
                    // Join two lines (longer than 64 characters) or split one.
                    if let Some(nl) = input[at..].iter().position(|&c| c == b'\n') {
                        input.remove(at + nl);
                    } else {
                        input.insert(at, b'\n');
                    }
                }
            }
        }
    }

    /// Whether the fast path answered; when it did, the general path's blocks are the same.
    fn agree(input: &[u8]) -> bool {
        let Some(fast) = plain_certificate_blocks(input) else {
            return false;
        };
        let general = general_pem_blocks(input, &Source::Data, Content::Certificates)
            .unwrap_or_else(|e| {
                panic!("fast path read what the general path refuses ({e}): {input:?}")
            })
            .expect("the fast path read PEM the general path calls not PEM");
        assert_eq!(fast.len(), general.len(), "{input:?}");
        for (f, g) in fast.iter().zip(&general) {
            assert_eq!(f.kind, BlockKind::Certificate);
            assert_eq!(g.kind, BlockKind::Certificate, "{input:?}");
            assert_eq!(&f.contents[..], &g.contents[..], "{input:?}");
        }
        true
    }

    /// Shapes at the fast path's edges, each read the same way by both paths.
    #[test]
    fn edge_shapes_agree() {
        let b = "-----BEGIN CERTIFICATE-----";
        let e = "-----END CERTIFICATE-----";
        for input in [
            format!("{b}\n{e}\n"),
            format!("{b}\nAAAA\n{e}{b}\nAQID\n{e}"),
            format!("{b}\nAAAA\n{e} \t {b}\r\nAQID\r\n{e}\r\n\r\n"),
            format!("{b}\r\nAA\nAA\r\n{e}\n"),
            format!("\r\n \t\n{b}\n{}\n{e}\n", "AAAA".repeat(5000)),
            format!("{b}\nA\nA\nA\nA\n{e}\n"),
            format!("{b}\nAQ==\n{e}\n{b}\nAQI=\n{e}\n"),
        ] {
            assert!(agree(input.as_bytes()), "fast path declined {input:?}");
        }
        for input in [
            format!("{b}\nAQ==\nAQ==\n{e}\n"),
            format!("{b}\nAQ\n{e}\n"),
            format!("{b}\nAAAA\r\r\n{e}\n"),
            format!("{b}\nAAAA\n{e}-\n"),
            format!("{b}\nAA AA\n{e}\n"),
            format!("{b}\nAAAA\n{e}\0"),
            format!("{b}\nAAAA\n {e}\n"),
            format!("{b}\nAAAA\n{e}\n\u{a0}"),
            format!("{b}\n\nAAAA\n{e}\n"),
            format!("{b} \nAAAA\n{e}\n"),
            format!("{b}\nAAAA{e}\n"),
        ] {
            assert!(!agree(input.as_bytes()), "fast path took {input:?}");
        }
        // Bytes outside the base64 alphabet inside a line: the fast path checked the alphabet
        // itself before the speed-up; now the decoder refuses them, and the fast path declines.
        for line in [
            &b"AA AA"[..],
            b"AA\tAA",
            b"\tAAAA",
            b"AAAA ",
            b"AA-A",
            b"AA_A",
            b"AA.A",
            b"AA\rAA",
            b"\rAAAA",
            b"AA\0A",
            b"AA\xc3\xa9",
            b"AA\xff\xfe",
            b"====",
            b"=",
            b"AAAA====",
            b"AQ==AQ==",
            b"\x0bAAAA",
            b"\x0cAAAA",
        ] {
            for (before, after) in [(&b""[..], &b""[..]), (b"AAAA\n", b""), (b"", b"\nAAAA")] {
                for eol in [&b"\n"[..], b"\r\n"] {
                    let mut input = format!("{b}\n").into_bytes();
                    input.extend([before, line, after, eol].concat());
                    input.extend(format!("{e}\n").as_bytes());
                    assert!(!agree(&input), "fast path took {input:?}");
                }
            }
        }
    }

    #[test]
    fn fast_path_agrees_with_the_general_path_on_mutated_chains() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut fast_answers, mut cases) = (0, 0);
        // Each seed as it is (CRLF) and with LF line ends.
        let lf = |s: &[u8]| {
            String::from_utf8_lossy(s)
                .replace("\r\n", "\n")
                .into_bytes()
        };
        // The corpus files start with the fuzz target's selector byte.
        let pem = |s: &[u8]| s[s.iter().position(|&c| c == b'-').unwrap()..].to_vec();
        let seeds: Vec<Vec<u8>> = SEEDS.iter().flat_map(|s| [pem(s), lf(&pem(s))]).collect();
        for seed in &seeds {
            for _ in 0..3000 {
                let mut input = seed.clone();
                mutate(&mut rng, &mut input);
                cases += 1;
                if agree(&input) {
                    fast_answers += 1;
                }
            }
        }
        // The mutations must exercise the fast path's accepting side too, not only declines.
        assert!(fast_answers > cases / 20, "{fast_answers} of {cases}");
    }
}
