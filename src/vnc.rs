//! The RFB 3.8 and VeNCrypt handshake of a VNC viewer, up to the switch to TLS.
//!
//! A VNC server with TLS (QEMU's `-vnc ...,tls-creds=ID`, TigerVNC's Xvnc) speaks plain RFB
//! first and starts TLS on the same connection once both sides agreed on VeNCrypt and one of
//! its x509 sub-types. [`negotiate`] runs that part over any `Read + Write` (the viewer's own
//! socket); the caller then runs a client [`Session`] on the same stream, and
//! [`after_tls`] reads what the server sends first inside TLS, which is where a server that
//! refused the client's certificate shows it.
//!
//! The bytes (RFB protocol, "ProtocolVersion", "Security" and "SecurityResult" handshakes;
//! VeNCrypt 0.2 as QEMU's `ui/vnc-auth-vencrypt.c`, TigerVNC and gtk-vnc speak it):
//!
//! 1. server: `RFB 003.008\n`; client: the same 12 bytes;
//! 2. server: U8 count, that many U8 security types (count 0: U32 length and a reason, then
//!    close); client: U8 19 (VeNCrypt);
//! 3. server: U8 U8 its highest VeNCrypt version; client: `0 2`; server: U8 ack, 0 = accepted;
//! 4. server: U8 count, that many U32 sub-types (big-endian); client: U32 the chosen one;
//!    server: U8 ack, **1** = accepted (the opposite polarity of step 3's ack);
//! 5. TLS starts at once: the client sends its ClientHello.
//!
//! Choices, all failing closed:
//!
//! - Versions: a server announcing 3.8 or later (3.889, 4.x) is answered with 3.8. 3.3 cannot
//!   negotiate VeNCrypt (the server picks the type), and 3.7 has no SecurityResult after an
//!   authentication without password, so [`after_tls`] could not tell acceptance; every
//!   VeNCrypt server announces 3.8, so 3.3 and 3.7 are refused with an error that says so.
//! - Only x509 sub-types are chosen: X509None (260), X509Vnc (261), X509Plain (262),
//!   X509SASL (263), in that order ([`PREFERENCE`]). The anonymous TLS sub-types (TLSNone,
//!   TLSVnc, TLSPlain, TLSSASL: 257–259, 264) run TLS without a certificate, so nothing would
//!   authenticate the server: never chosen, and a server offering only those is an error
//!   naming them.
//!
//! Errors: [`ErrorKind::Parse`] for bytes that are not this protocol (a version string that is
//! not RFB's), [`ErrorKind::Tls`] for a server that refuses, closes early (every message may be
//! cut short: the error names the step and the bytes received) or offers nothing acceptable,
//! [`ErrorKind::TooLarge`] for a reason string over [`MAX_REASON`] bytes,
//! [`ErrorKind::Io`] for a failed read or write (a timeout set on the socket included). Every
//! message names the step; what the server sent is shown escaped. Nothing is allocated beyond
//! the 255-entry lists and a reason of at most [`MAX_REASON`] bytes.

use std::fmt;
use std::io::{Read, Write};

use crate::error::{Error, ErrorKind, Result};
use crate::session::Session;

/// The longest failure reason read from a server; a longer one is an error of its own.
pub const MAX_REASON: usize = 4096;

/// The RFB security type of VeNCrypt.
pub const SECURITY_VENCRYPT: u8 = 19;

/// The version this client speaks.
const CLIENT_VERSION: &[u8; 12] = b"RFB 003.008\n";

/// A VeNCrypt sub-type (version 0.2 numbering; QEMU's and gtk-vnc's for the SASL pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubType(pub u32);

impl SubType {
    /// No TLS, user name and password in clear.
    pub const PLAIN: SubType = SubType(256);
    /// Anonymous TLS, no authentication.
    pub const TLS_NONE: SubType = SubType(257);
    /// Anonymous TLS, VNC password.
    pub const TLS_VNC: SubType = SubType(258);
    /// Anonymous TLS, user name and password.
    pub const TLS_PLAIN: SubType = SubType(259);
    /// x509 TLS, no further authentication.
    pub const X509_NONE: SubType = SubType(260);
    /// x509 TLS, then the VNC password challenge.
    pub const X509_VNC: SubType = SubType(261);
    /// x509 TLS, then user name and password.
    pub const X509_PLAIN: SubType = SubType(262);
    /// x509 TLS, then SASL (QEMU's `sasl=on`).
    pub const X509_SASL: SubType = SubType(263);
    /// Anonymous TLS, then SASL.
    pub const TLS_SASL: SubType = SubType(264);

    /// Whether the server authenticates with a certificate (the only sub-types chosen).
    pub fn is_x509(self) -> bool {
        (260..=263).contains(&self.0)
    }

    /// Whether this is TLS without a certificate: never chosen.
    pub fn is_anonymous_tls(self) -> bool {
        matches!(self.0, 257..=259 | 264)
    }

    /// The name the VeNCrypt text and QEMU use, e.g. `X509None`.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            256 => "Plain",
            257 => "TLSNone",
            258 => "TLSVnc",
            259 => "TLSPlain",
            260 => "X509None",
            261 => "X509Vnc",
            262 => "X509Plain",
            263 => "X509SASL",
            264 => "TLSSASL",
            _ => return None,
        })
    }
}

impl fmt::Display for SubType {
    /// `X509None (260)`, or `unknown (N)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name().unwrap_or("unknown"), self.0)
    }
}

/// The x509 sub-types in the order [`negotiate`] prefers them: the least the viewer must add
/// after TLS first (authentication after TLS is the viewer's business).
pub const PREFERENCE: [SubType; 4] = [
    SubType::X509_NONE,
    SubType::X509_VNC,
    SubType::X509_PLAIN,
    SubType::X509_SASL,
];

/// An RFB security type as people read it: `VeNCrypt (19)`, `VNC (2)`, `type 99`.
pub fn security_type_name(ty: u8) -> String {
    let name = match ty {
        0 => "Invalid",
        1 => "None",
        2 => "VNC",
        5 => "RA2",
        6 => "RA2ne",
        16 => "Tight",
        17 => "Ultra",
        18 => "TLS",
        19 => "VeNCrypt",
        20 => "SASL",
        21 => "MD5",
        22 => "xvp",
        _ => return format!("type {ty}"),
    };
    format!("{name} ({ty})")
}

/// What was agreed before TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiation {
    /// The RFB version the server announced, e.g. `3.8`.
    pub server_version: (u16, u16),
    /// The security types the server offered, in its order.
    pub security_types: Vec<u8>,
    /// The highest VeNCrypt version the server speaks, e.g. `(0, 2)`.
    pub vencrypt_version: (u8, u8),
    /// The sub-types the server offered, in its order.
    pub subtypes: Vec<SubType>,
    /// The sub-type chosen and acknowledged: TLS starts now.
    pub chosen: SubType,
}

/// Runs the RFB and VeNCrypt handshake on `stream`, choosing by [`PREFERENCE`]; on success the
/// next bytes on `stream` are TLS (run a client [`Session`] on it, then [`after_tls`]).
pub fn negotiate<S: Read + Write>(stream: &mut S) -> Result<Negotiation> {
    negotiate_choosing(stream, &PREFERENCE)
}

/// [`negotiate`] choosing the first of `preference` that the server offers, for a viewer that
/// can do only some of the authentications after TLS (no password at hand: X509None only).
/// `preference` must hold x509 sub-types only ([`ErrorKind::InvalidArg`] otherwise).
pub fn negotiate_choosing<S: Read + Write>(
    stream: &mut S,
    preference: &[SubType],
) -> Result<Negotiation> {
    if preference.is_empty() || preference.iter().any(|s| !s.is_x509()) {
        return Err(Error::new(
            ErrorKind::InvalidArg,
            format!(
                "VeNCrypt: the sub-types to choose from must be x509 ones (260-263), not [{}]",
                list(preference)
            ),
        ));
    }
    let server_version = version_exchange(stream)?;
    let security_types = security_types(stream)?;
    let vencrypt_version = vencrypt_version(stream)?;
    let subtypes = subtypes(stream)?;
    let chosen = match preference.iter().find(|p| subtypes.contains(p)) {
        Some(&chosen) => chosen,
        None => {
            // "Cannot choose" (0) lets the server close cleanly; the error is what matters.
            let _ = stream.write_all(&0u32.to_be_bytes());
            let _ = stream.flush();
            return Err(nothing_acceptable(&subtypes, preference));
        }
    };
    send(stream, &chosen.0.to_be_bytes(), "VeNCrypt sub-type choice")?;
    let mut ack = [0u8; 1];
    read_exact(stream, &mut ack, "VeNCrypt sub-type acknowledgement")?;
    match ack[0] {
        1 => {}
        0 => {
            return Err(Error::new(
                ErrorKind::Tls,
                format!("VeNCrypt sub-type acknowledgement: the server refused {chosen}, which it had offered"),
            ))
        }
        other => {
            return Err(Error::new(
                ErrorKind::Tls,
                format!(
                    "VeNCrypt sub-type acknowledgement: the server sent 0x{other:02x}, not 1 \
                     (accepted) or 0 (refused), for {chosen}"
                ),
            ))
        }
    }
    Ok(Negotiation {
        server_version,
        security_types,
        vencrypt_version,
        subtypes,
        chosen,
    })
}

/// Step 1: the server's `RFB xxx.yyy\n`, answered with 3.8.
fn version_exchange<S: Read + Write>(stream: &mut S) -> Result<(u16, u16)> {
    const STEP: &str = "RFB version";
    let mut v = [0u8; 12];
    read_exact(stream, &mut v, STEP)?;
    let digits = |b: &[u8]| -> Option<u16> {
        b.iter().try_fold(0u16, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u16::from(c - b'0'))
        })
    };
    let parsed = (v.starts_with(b"RFB ") && v[7] == b'.' && v[11] == b'\n')
        .then(|| Some((digits(&v[4..7])?, digits(&v[8..11])?)))
        .flatten();
    let Some((major, minor)) = parsed else {
        return Err(Error::new(
            ErrorKind::Parse,
            format!(
                "{STEP}: the server sent \"{}\", not an RFB version (\"RFB 003.008\\n\"): is \
                 this a VNC port?",
                shown(&v)
            ),
        ));
    };
    if major < 3 || (major == 3 && minor < 8) {
        return Err(Error::new(
            ErrorKind::Tls,
            format!(
                "{STEP}: the server speaks RFB {major}.{minor}; VeNCrypt (TLS) needs RFB 3.8 \
                 (3.3 cannot negotiate it, 3.7 has no SecurityResult to tell acceptance)"
            ),
        ));
    }
    send(stream, CLIENT_VERSION, STEP)?;
    Ok((major, minor))
}

/// Step 2: the security types; VeNCrypt chosen.
fn security_types<S: Read + Write>(stream: &mut S) -> Result<Vec<u8>> {
    const STEP: &str = "RFB security types";
    let mut count = [0u8; 1];
    read_exact(stream, &mut count, STEP)?;
    if count[0] == 0 {
        let reason = read_reason(stream, STEP)?;
        return Err(Error::new(
            ErrorKind::Tls,
            format!("{STEP}: the server refused the connection: \"{reason}\""),
        ));
    }
    let mut types = vec![0u8; usize::from(count[0])];
    read_exact(stream, &mut types, STEP)?;
    if !types.contains(&SECURITY_VENCRYPT) {
        let offered: Vec<String> = types.iter().map(|&t| security_type_name(t)).collect();
        return Err(Error::new(
            ErrorKind::Tls,
            format!(
                "{STEP}: the server offers {} but not VeNCrypt (19): it does not use TLS \
                 (QEMU: -vnc ...,tls-creds=ID with a tls-creds-x509 object)",
                offered.join(", ")
            ),
        ));
    }
    send(stream, &[SECURITY_VENCRYPT], STEP)?;
    Ok(types)
}

/// Step 3: VeNCrypt 0.2 and its acknowledgement.
fn vencrypt_version<S: Read + Write>(stream: &mut S) -> Result<(u8, u8)> {
    const STEP: &str = "VeNCrypt version";
    let mut v = [0u8; 2];
    read_exact(stream, &mut v, STEP)?;
    if (v[0], v[1]) < (0, 2) {
        return Err(Error::new(
            ErrorKind::Tls,
            format!(
                "{STEP}: the server speaks VeNCrypt {}.{} only; this client speaks 0.2 (0.1 is \
                 obsolete)",
                v[0], v[1]
            ),
        ));
    }
    send(stream, &[0, 2], STEP)?;
    let mut ack = [0u8; 1];
    read_exact(stream, &mut ack, "VeNCrypt version acknowledgement")?;
    if ack[0] != 0 {
        return Err(Error::new(
            ErrorKind::Tls,
            format!(
                "VeNCrypt version acknowledgement: the server refused version 0.2 (it sent {})",
                ack[0]
            ),
        ));
    }
    Ok((v[0], v[1]))
}

/// Step 4: the sub-type list (at most 255 entries, as its count is one byte).
fn subtypes<S: Read + Write>(stream: &mut S) -> Result<Vec<SubType>> {
    const STEP: &str = "VeNCrypt sub-types";
    let mut count = [0u8; 1];
    read_exact(stream, &mut count, STEP)?;
    if count[0] == 0 {
        return Err(Error::new(
            ErrorKind::Tls,
            format!("{STEP}: the server offers none (an empty list is its refusal)"),
        ));
    }
    let mut raw = [0u8; 4 * 255];
    let raw = &mut raw[..4 * usize::from(count[0])];
    read_exact(stream, raw, STEP)?;
    Ok(raw
        .chunks_exact(4)
        .map(|c| SubType(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect())
}

/// Why nothing offered can be chosen: anonymous TLS named as such.
fn nothing_acceptable(offered: &[SubType], preference: &[SubType]) -> Error {
    const STEP: &str = "VeNCrypt sub-types";
    let message = if offered.iter().any(|s| s.is_x509()) {
        format!(
            "{STEP}: the server offers {}, none of which this client accepts ({})",
            list(offered),
            list(preference)
        )
    } else if offered.iter().any(|s| s.is_anonymous_tls()) {
        format!(
            "{STEP}: the server offers only {}: TLS without a certificate, which nothing \
             authenticates, so it is refused (QEMU: use tls-creds-x509, not tls-creds-anon)",
            list(offered)
        )
    } else {
        format!(
            "{STEP}: the server offers {} and no x509 sub-type (260-263)",
            list(offered)
        )
    };
    Error::new(ErrorKind::Tls, message)
}

fn list(subtypes: &[SubType]) -> String {
    subtypes
        .iter()
        .map(SubType::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A U32 length and that many bytes of reason, refused over [`MAX_REASON`].
fn read_reason<S: Read>(stream: &mut S, step: &str) -> Result<String> {
    let mut len = [0u8; 4];
    read_exact(stream, &mut len, step)?;
    let len = u32::from_be_bytes(len);
    if len as usize > MAX_REASON {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "{step}: the server refused and announced a reason of {len} bytes, over the \
                 limit of {MAX_REASON}"
            ),
        ));
    }
    let mut reason = vec![0u8; len as usize];
    read_exact(stream, &mut reason, step)?;
    Ok(shown(&reason))
}

/// Fills `buf`; a close or failure names `step` and what had arrived.
fn read_exact<S: Read>(stream: &mut S, buf: &mut [u8], step: &str) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return Err(cut_short(step, &buf[..got], buf.len())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let what = match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        "no answer from the server in time".to_owned()
                    }
                    _ => format!("read failed: {e}"),
                };
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("{step}: {what} (after {got} of {} bytes)", buf.len()),
                )
                .with_source(e));
            }
        }
    }
    Ok(())
}

fn cut_short(step: &str, got: &[u8], wanted: usize) -> Error {
    let seen = if got.is_empty() {
        String::new()
    } else {
        format!(": \"{}\"", shown(got))
    };
    Error::new(
        ErrorKind::Tls,
        format!(
            "{step}: the server closed the connection after {} of {wanted} bytes{seen}",
            got.len()
        ),
    )
}

fn send<S: Write>(stream: &mut S, bytes: &[u8], step: &str) -> Result<()> {
    stream
        .write_all(bytes)
        .and_then(|_| stream.flush())
        .map_err(|e| {
            Error::new(ErrorKind::Io, format!("{step}: sending failed: {e}")).with_source(e)
        })
}

/// Bytes from the server as text: printable ASCII kept, everything else `\xNN`, `\n`.
fn shown(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// What the server sent first inside TLS, by sub-type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterTls {
    /// X509None: SecurityResult 0, the server accepted this client; ClientInit follows.
    Accepted,
    /// X509Vnc: the 16-byte VNC authentication challenge (the server accepted the TLS
    /// client; the viewer answers with the password's DES response, then reads SecurityResult).
    VncChallenge([u8; 16]),
    /// X509Plain and X509SASL: the viewer speaks first (user name and password, or SASL), so
    /// nothing was read; whether the server accepted the certificate shows on its answer.
    ClientSpeaksFirst,
}

/// The first step inside TLS, which tells whether the server accepted this client.
///
/// With TLS 1.3 the client's handshake completes before the server has checked the client's
/// certificate; a server that refuses it (QEMU with `verify-peer=on` and no or a foreign
/// certificate) then closes the connection. So X509None reads the 4-byte SecurityResult
/// (0 accepted; 1, a U32 length and a reason, refused) and X509Vnc its 16-byte challenge; a
/// close or TLS alert instead is a [`ErrorKind::Tls`] error saying the server dropped this
/// client. X509Plain and X509SASL read nothing ([`AfterTls::ClientSpeaksFirst`]).
pub fn after_tls<S: Read + Write>(
    session: &mut Session<S>,
    negotiation: &Negotiation,
) -> Result<AfterTls> {
    match negotiation.chosen {
        SubType::X509_NONE => {
            const STEP: &str = "VeNCrypt SecurityResult after TLS";
            let mut result = [0u8; 4];
            session_read_exact(session, &mut result, STEP)?;
            match u32::from_be_bytes(result) {
                0 => Ok(AfterTls::Accepted),
                1 => {
                    let mut reader = SessionReader(session);
                    let reason = read_reason(&mut reader, STEP)?;
                    Err(Error::new(
                        ErrorKind::Tls,
                        format!("{STEP}: the server refused this client: \"{reason}\""),
                    ))
                }
                other => Err(Error::new(
                    ErrorKind::Parse,
                    format!("{STEP}: the server sent {other}, not 0 (OK) or 1 (failed)"),
                )),
            }
        }
        SubType::X509_VNC => {
            let mut challenge = [0u8; 16];
            session_read_exact(session, &mut challenge, "VNC challenge after TLS")?;
            Ok(AfterTls::VncChallenge(challenge))
        }
        _ => Ok(AfterTls::ClientSpeaksFirst),
    }
}

/// A session read as `std::io::Read`, the library's error carried inside.
struct SessionReader<'a, S: Read + Write>(&'a mut Session<S>);

impl<S: Read + Write> Read for SessionReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(std::io::Error::other)
    }
}

/// Fills `buf` from the session: a close or TLS failure here is most likely the server
/// dropping this client after the handshake, but a timeout looks the same from here (the
/// session's error does not say which), so the message names both.
fn session_read_exact<S: Read + Write>(
    session: &mut Session<S>,
    buf: &mut [u8],
    step: &str,
) -> Result<()> {
    let wanted = buf.len();
    let mut got = 0;
    while got < wanted {
        let detail = match session.read(&mut buf[got..]) {
            Ok(0) => "the server closed the connection".to_owned(),
            Ok(n) => {
                got += n;
                continue;
            }
            Err(e) => e.message().to_owned(),
        };
        return Err(Error::new(
            ErrorKind::Tls,
            format!(
                "{step}: the server closed or stopped answering after the TLS handshake \
                 ({got} of {wanted} bytes received; {detail}); a server that closes here \
                 probably refused its certificate (QEMU with verify-peer=on demands one from \
                 its CA)"
            ),
        ));
    }
    Ok(())
}
