//! Async TLS over tokio (the `tokio` feature): [`connect`] and [`accept`] do what the blocking
//! [`Session`](crate::session::Session) does, on any `AsyncRead + AsyncWrite` stream.
//!
//! The rustls configurations are the blocking session's ([`crate::tls`]): the same
//! verification (libvirt's rules, the allowed-DN list, the known servers), the validator asked
//! once per handshake, from the task that drives it, and the same identity choice. With
//! [`SessionFlags::LIBVIRT_CONFIRM`] the server sends libvirt's 0x01 byte after accepting the
//! client and the client waits for it, so a refused client certificate is reported as a
//! refusal rather than as a connection that fails later.
//!
//! The stream returned reads 0 only after the peer's close_notify; a connection cut without
//! it is an `UnexpectedEof` error (a truncation the caller must not take for the end).
//! Cancelling the future (a timeout) drops the stream half-way: nothing is left running.
//!
//! The validator is called synchronously inside the handshake, on the thread polling it: a
//! validator that blocks (asks a person) holds that runtime worker until it answers, so on a
//! current-thread runtime every other task waits too.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::cert::Certificate;
use crate::context::Context;
use crate::error::Result;
use crate::session::{self, SessionFlags};
use crate::tls;
use crate::verify::VerifyFlags;

/// An established TLS stream (client or server side), read and written with tokio's
/// `AsyncRead`/`AsyncWrite`. Call `shutdown()` to send close_notify.
#[derive(Debug)]
pub struct TlsStream<S> {
    inner: tokio_rustls::TlsStream<S>,
}

/// Connects as a client to `hostname` over `stream`, verifying the server as the blocking
/// [`Session::client`](crate::session::Session::client) does (`port` keys the known-servers
/// entry); with `LIBVIRT_CONFIRM`, returns only once libvirt's 0x01 byte has arrived.
pub async fn connect<S>(
    ctx: &Arc<Context>,
    stream: S,
    hostname: &str,
    port: Option<u16>,
    flags: SessionFlags,
) -> Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (config, note) = tls::client_config_noted(ctx, hostname, port, VerifyFlags::default())?;
    let connector = TlsConnector::from(Arc::new(config));
    let mut tls_stream = connector
        .connect(session::server_name(hostname), stream)
        .await
        .map_err(|e| session::explained(session::io_error("handshake", e), &note))?;
    if flags.contains(SessionFlags::LIBVIRT_CONFIRM) {
        let mut byte = [0u8; 1];
        let got = tls_stream
            .read(&mut byte)
            .await
            .map_err(|e| session::io_error("read", e));
        session::confirmation(got, byte[0]).map_err(|e| session::explained(e, &note))?;
    }
    Ok(TlsStream {
        inner: tls_stream.into(),
    })
}

/// Accepts a client over `stream`, verifying its certificate as the blocking
/// [`Session::server`](crate::session::Session::server) does; with `LIBVIRT_CONFIRM`, sends
/// libvirt's 0x01 byte once the client is accepted.
pub async fn accept<S>(ctx: &Arc<Context>, stream: S, flags: SessionFlags) -> Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (config, note) = tls::server_config_noted(ctx, VerifyFlags::default())?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let mut tls_stream = acceptor
        .accept(stream)
        .await
        .map_err(|e| session::explained(session::io_error("handshake", e), &note))?;
    if flags.contains(SessionFlags::LIBVIRT_CONFIRM) {
        let confirm = [session::CONFIRM_BYTE];
        tls_stream
            .write_all(&confirm)
            .await
            .map_err(|e| session::io_error("write", e))?;
        tls_stream
            .flush()
            .await
            .map_err(|e| session::io_error("write", e))?;
    }
    Ok(TlsStream {
        inner: tls_stream.into(),
    })
}

impl<S> TlsStream<S> {
    /// The certificates the peer presented, leaf first.
    pub fn peer_certificates(&self) -> Vec<Certificate> {
        session::certificates(self.inner.get_ref().1.peer_certificates())
    }

    /// Server side: the client's DN in libvirt's format.
    pub fn peer_dn(&self) -> Option<String> {
        self.peer_certificates()
            .first()
            .map(|c| c.subject().to_owned())
    }

    /// The TLS version negotiated, e.g. `TLSv1_3`.
    pub fn protocol_version(&self) -> Option<String> {
        self.inner
            .get_ref()
            .1
            .protocol_version()
            .map(|v| format!("{v:?}"))
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref().0
    }

    /// The underlying stream, for the caller to close (no close_notify is sent: call
    /// `shutdown()` first).
    pub fn into_inner(self) -> S {
        match self.inner {
            tokio_rustls::TlsStream::Client(s) => s.into_inner().0,
            tokio_rustls::TlsStream::Server(s) => s.into_inner().0,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Sends close_notify, then shuts the underlying stream's write side.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
