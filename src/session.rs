//! Blocking TLS sessions over a connected stream, with libvirt's confirmation byte.
//!
//! libvirt's daemon sends one byte, 0x01, inside TLS once it has accepted the client's
//! certificate; on rejection it closes without it. With TLS 1.3 the client's handshake has
//! completed by then, so a client that does not wait for the byte believes it is connected.
//! With [`SessionFlags::LIBVIRT_CONFIRM`] the server sends the byte and the client waits for it
//! and reports a refusal as such.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::{ClientConnection, Connection, ServerConnection};
use rustls_pki_types::{CertificateDer, ServerName};

use crate::cert::Certificate;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::names;
use crate::source::Source;
use crate::tls;
use crate::verify::{AskedNote, VerifyFlags};

mod shared;

pub(crate) use shared::timeout_unless_nonblocking;
pub use shared::{SharedSession, Socket, CLOSE_GRACE};

/// Session flags; the values are the C API's `VIR_PKI_SESSION_*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionFlags(u32);

impl SessionFlags {
    /// libvirt's handshake byte: the server sends 0x01 after accepting the client.
    pub const LIBVIRT_CONFIRM: SessionFlags = SessionFlags(1 << 0);

    /// The flags for C bits, or `None` if an unknown bit is set.
    pub fn from_bits(bits: u32) -> Option<SessionFlags> {
        (bits & !1 == 0).then_some(SessionFlags(bits))
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: SessionFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The byte libvirt's daemon sends once it has accepted the client.
pub(crate) const CONFIRM_BYTE: u8 = 0x01;

/// A TLS session whose handshake (and confirmation) is complete.
pub struct Session<S: Read + Write> {
    conn: Connection,
    stream: S,
    /// Why no identity of ours was sent, if none was: under TLS 1.3 a client learns that the
    /// server refused it only on its first read, which then says why.
    note: tls::SelectionNote,
}

impl<S: Read + Write> Session<S> {
    /// Connects as a client to `hostname` (`port` keys the known-servers entry).
    pub fn client(
        ctx: &Arc<Context>,
        stream: S,
        hostname: &str,
        port: Option<u16>,
        flags: SessionFlags,
    ) -> Result<Session<S>> {
        Session::client_with_verify_flags(
            ctx,
            stream,
            hostname,
            port,
            flags,
            VerifyFlags::default(),
        )
    }

    /// [`Session::client`] with verification flags: [`VerifyFlags::NO_VERIFY`] accepts any
    /// server certificate, for tools that show it to a person before anything is decided
    /// (`virtpki probe`); [`Session::peer_certificates`] then holds what the server sent.
    pub fn client_with_verify_flags(
        ctx: &Arc<Context>,
        stream: S,
        hostname: &str,
        port: Option<u16>,
        flags: SessionFlags,
        verify: VerifyFlags,
    ) -> Result<Session<S>> {
        let (conn, note) = new_client_conn(ctx, hostname, port, verify, None)?;
        let mut session = Session {
            conn,
            stream,
            note: Arc::clone(&note),
        };
        session.handshake().map_err(|e| explained(e, &note))?;
        if flags.contains(SessionFlags::LIBVIRT_CONFIRM) {
            session
                .await_confirmation()
                .map_err(|e| explained(e, &note))?;
        }
        Ok(session)
    }

    /// Accepts a client on a connected stream.
    pub fn server(ctx: &Arc<Context>, stream: S, flags: SessionFlags) -> Result<Session<S>> {
        let (conn, note) = new_server_conn(ctx)?;
        let mut session = Session {
            conn,
            stream,
            note: Arc::clone(&note),
        };
        session.handshake().map_err(|e| explained(e, &note))?;
        if flags.contains(SessionFlags::LIBVIRT_CONFIRM) {
            session.write_all(&[CONFIRM_BYTE])?;
        }
        Ok(session)
    }

    fn handshake(&mut self) -> Result<()> {
        while self.conn.is_handshaking() {
            self.conn
                .complete_io(&mut self.stream)
                .map_err(|e| io_error("handshake", e))?;
        }
        // Flush what the handshake left to send (the client's Finished in TLS 1.3).
        self.flush_tls("handshake")
    }

    fn await_confirmation(&mut self) -> Result<()> {
        let mut byte = [0u8; 1];
        let got = self.read(&mut byte);
        confirmation(got, byte[0])
    }

    /// Reads decrypted bytes; 0 at the end of the stream, which only the peer's close_notify
    /// marks. An empty `buf` returns 0 at once (no I/O; it says nothing about the end).
    ///
    /// A connection that ends without close_notify is an error ([`ErrorKind::Tls`]), not an
    /// end of stream: anyone on the path can close a TCP connection, and reporting that as a
    /// clean end would let them cut a message short unnoticed (a truncation attack).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                // rustls returns 0 only once close_notify has been received.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(Error::new(
                        ErrorKind::Tls,
                        "TLS read failed: the peer closed the connection without TLS \
                         close_notify, so what was received may be cut short",
                    ))
                }
                Err(e) => return Err(io_error("read", e)),
            }
            self.flush_tls("read")?;
            // At the end of the stream read_tls returns 0 and rustls records it: the next
            // round of the loop ends with close_notify seen (0) or not (the error above).
            self.conn
                .read_tls(&mut self.stream)
                .map_err(|e| io_error("read", e))?;
            let processed = self.conn.process_new_packets();
            // Send the alert rustls queued for a failure before reporting it.
            let _ = self.flush_tls("read");
            if let Err(e) = processed {
                let error = tls::from_rustls(&e);
                // The peer's refusal: if we sent no identity, say why.
                return Err(match e {
                    rustls::Error::AlertReceived(_) => explained(error, &self.note),
                    _ => error,
                });
            }
        }
    }

    /// Writes and flushes `buf`.
    ///
    /// rustls takes only as much plaintext as its outgoing buffer holds (64 KiB by default)
    /// and reports a short write beyond that, so the data goes out in parts.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<()> {
        loop {
            let taken = self
                .conn
                .writer()
                .write(buf)
                .map_err(|e| io_error("write", e))?;
            buf = &buf[taken..];
            let pending = self.conn.wants_write();
            self.flush_tls("write")?;
            if buf.is_empty() {
                return Ok(());
            }
            if taken == 0 && !pending {
                return Err(Error::new(
                    ErrorKind::Tls,
                    "TLS write failed: the session takes no more data",
                ));
            }
        }
    }

    fn flush_tls(&mut self, what: &str) -> Result<()> {
        while self.conn.wants_write() {
            self.conn
                .write_tls(&mut self.stream)
                .map_err(|e| io_error(what, e))?;
        }
        Ok(())
    }

    /// Sends close_notify; the stream stays the caller's.
    pub fn close(&mut self) -> Result<()> {
        self.conn.send_close_notify();
        self.flush_tls("close")
    }

    /// The certificates the peer presented, leaf first.
    pub fn peer_certificates(&self) -> Vec<Certificate> {
        certificates(self.conn.peer_certificates())
    }

    /// Server side: the client's DN in libvirt's format.
    pub fn peer_dn(&self) -> Option<String> {
        self.peer_certificates()
            .first()
            .map(|c| c.subject().to_owned())
    }

    /// The TLS version negotiated, e.g. `TLSv1_3`.
    pub fn protocol_version(&self) -> Option<String> {
        self.conn.protocol_version().map(|v| format!("{v:?}"))
    }

    /// The stream, for the caller to close.
    pub fn into_stream(self) -> S {
        self.stream
    }
}

/// A client connection for `hostname`, not started, and where to learn why no identity could
/// be presented. Shared by the blocking and the non-blocking sessions.
fn new_client_conn(
    ctx: &Arc<Context>,
    hostname: &str,
    port: Option<u16>,
    verify: VerifyFlags,
    asked: Option<AskedNote>,
) -> Result<(Connection, tls::SelectionNote)> {
    let (config, note) = tls::client_config_asked(ctx, hostname, port, verify, asked)?;
    let conn = ClientConnection::new(Arc::new(config), server_name(hostname))
        .map_err(|e| tls::from_rustls(&e))?;
    Ok((conn.into(), note))
}

/// A server connection, not started (see [`new_client_conn`]).
fn new_server_conn(ctx: &Arc<Context>) -> Result<(Connection, tls::SelectionNote)> {
    let (config, note) = tls::server_config_noted(ctx, VerifyFlags::default())?;
    let conn = ServerConnection::new(Arc::new(config)).map_err(|e| tls::from_rustls(&e))?;
    Ok((conn.into(), note))
}

/// The client's error when libvirt's 0x01 byte did not come.
fn confirm_refused(detail: String) -> Error {
    Error::new(
        ErrorKind::Tls,
        format!(
            "the server did not confirm the connection (libvirt's 0x01 byte): {detail}; \
             it refused this client's certificate (check its tls_allowed_dn_list and CA)"
        ),
    )
}

/// The name a client sends as SNI: only a DNS name is sent (an address or a name rustls
/// refuses gets a placeholder); the verifier checks the name as the caller gave it.
pub(crate) fn server_name(hostname: &str) -> ServerName<'static> {
    ServerName::try_from(names::strip_brackets(hostname).to_owned())
        .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("a valid name"))
}

/// The client's verdict on the first byte read after the handshake (`got` is what the read
/// returned, `byte` what it read): libvirt's 0x01, or a refusal that says so.
pub(crate) fn confirmation(got: Result<usize>, byte: u8) -> Result<()> {
    let refused = confirm_refused;
    match got {
        Ok(1) if byte == CONFIRM_BYTE => Ok(()),
        Ok(1) => Err(refused(format!("it sent 0x{byte:02x} instead"))),
        Ok(_) => Err(refused("it closed the connection".into())),
        Err(e) => Err(refused(e.message().to_owned())),
    }
}

/// The peer's certificates as rustls holds them, parsed, leaf first (none if it sent none).
pub(crate) fn certificates(ders: Option<&[CertificateDer<'_>]>) -> Vec<Certificate> {
    ders.unwrap_or_default()
        .iter()
        .filter_map(|der| Certificate::from_der(der.to_vec(), Source::Peer).ok())
        .collect()
}

/// `e`, with why no identity could be presented when that is what failed the handshake.
pub(crate) fn explained(e: Error, note: &tls::SelectionNote) -> Error {
    match note.lock().ok().and_then(|mut n| n.take()) {
        Some(why) => Error::new(ErrorKind::Tls, format!("{why} ({})", e.message())),
        None => e,
    }
}

/// The library's error behind an I/O error from rustls, else a TLS error.
pub(crate) fn io_error(what: &str, e: std::io::Error) -> Error {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls::from_rustls(inner);
    }
    Error::new(ErrorKind::Tls, format!("TLS {what} failed: {e}"))
}
