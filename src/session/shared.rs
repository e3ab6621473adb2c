//! Sessions for event loops and for several threads: started without I/O, driven by
//! [`SharedSession::handshake`] until done, non-blocking when the socket is, and full duplex.
//!
//! Three locks, never one across the socket and the TLS state at once:
//! - `tls` (the rustls connection and the handshake phase) is held only for in-memory rustls
//!   calls, never across a socket read or write;
//! - `rx` serialises readers: the socket is read into a buffer without `tls`, then fed to
//!   rustls under `tls`; what rustls cannot take yet (its plaintext buffer is full) waits
//!   in `rx` for the next read;
//! - `tx` serialises writers and holds TLS output taken from rustls but not yet sent, so that
//!   records go out in order and nothing is lost or sent twice across a would-block.
//!
//! Lock order: `rx`, then `tx`, then `tls`; `tls` is always the last and the shortest.
//!
//! The validator: rustls verifies the peer's certificate, and so calls the application's
//! validator, inside `process_new_packets`. While the handshake processes the peer's
//! messages, the rustls connection is taken out of `tls` (see `feed`), so that neither the
//! validator nor another thread waits for it: a validator may call back into its own session
//! (peer certificate, read, write, close) or wait for a thread that does. Read and write are
//! refused until the handshake is done, so nothing goes in or out before the decision; a
//! handshake called from the validator is refused ([`ErrorKind::InvalidArg`]); a close shuts
//! the socket down at once and the handshake fails once the validator returns. A handshake
//! called from another thread waits for the one in progress, as always: a validator must not
//! wait for such a thread.
//!
//! Write contract: [`SharedSession::write`] returns how many bytes it took. On a blocking
//! socket that is all of them, sent. On a non-blocking one it is at least one byte (taken
//! and encrypted, perhaps not yet sent; [`SharedSession::wants`] then says write) or
//! [`ErrorKind::Again`] with nothing taken. A write of no bytes pushes what is queued.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use rustls::Connection;

use super::{confirm_refused, io_error, CONFIRM_BYTE};
use super::{explained, new_client_conn, new_server_conn, SessionFlags};
use crate::cert::Certificate;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::tls::SelectionNote;
use crate::verify::{AskedNote, VerifyFlags};

/// A connected socket the session reads and writes through a shared reference, so that one
/// thread can read while another writes. Its fd is used to send close_notify without waiting
/// (see [`SharedSession::close`]).
pub trait Socket: AsRawFd + Send + Sync {
    /// One read; 0 at the end of the stream; `WouldBlock` on a non-blocking socket only (a
    /// blocking one's SO_RCVTIMEO running out is `TimedOut`).
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// One write; `WouldBlock` on a non-blocking socket that is full (SO_SNDTIMEO: `TimedOut`).
    fn send(&self, buf: &[u8]) -> io::Result<usize>;
    /// shutdown(2) both ways: wakes a thread blocked in `recv` or `send`.
    fn shutdown(&self) -> io::Result<()>;
}

/// EAGAIN from a socket without `O_NONBLOCK` is its SO_RCVTIMEO/SO_SNDTIMEO running out: a
/// timeout, which a blocking caller must see as an error (it does not call again, and a
/// write's short count would silently drop the rest), not the would-block of a
/// non-blocking socket.
pub(crate) fn timeout_unless_nonblocking(fd: RawFd, e: io::Error) -> io::Error {
    if e.kind() != io::ErrorKind::WouldBlock {
        return e;
    }
    if !is_nonblocking(fd) {
        return io::Error::new(
            io::ErrorKind::TimedOut,
            "timed out (SO_RCVTIMEO/SO_SNDTIMEO of a blocking socket)",
        );
    }
    e
}

/// Whether `fd` is in non-blocking mode (`O_NONBLOCK`); an fd whose flags cannot be read
/// counts as non-blocking (no one waits on it).
fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL only reads the fd's status flags; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags < 0 || flags & libc::O_NONBLOCK != 0
}

/// One send that never waits, whether or not `fd` is non-blocking: what fits now, else
/// `WouldBlock`. A socket: send(2) with `MSG_DONTWAIT` (and `MSG_NOSIGNAL`: EPIPE, not
/// SIGPIPE). Another fd (a pipe): a write of at most `PIPE_BUF` bytes once poll(2) says there
/// is room, which a pipe then takes whole.
fn send_now(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: `buf` is valid for `buf.len()` bytes; the fd is the session's.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOTSOCK) => {}
            _ => return Err(err),
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a zero timeout never waits.
        if unsafe { libc::poll(&mut p, 1, 0) } != 1 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let len = buf.len().min(libc::PIPE_BUF);
        // SAFETY: as above, `len` <= `buf.len()`.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), len) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Waits until `fd` is writable (or in error, or shut down), at most `timeout`.
fn wait_writable(fd: RawFd, timeout: Duration) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd. EINTR only ends the wait early: the caller tries again.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// The fd's SO_SNDTIMEO, if one is set.
fn send_timeout(fd: RawFd) -> Option<Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are valid for getsockopt to write; a non-socket fails with
    // ENOTSOCK and nothing is written.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    let timeout = Duration::new(tv.tv_sec.max(0) as u64, (tv.tv_usec.max(0) as u32) * 1000);
    (rc == 0 && !timeout.is_zero()).then_some(timeout)
}

impl Socket for TcpStream {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self)
            .read(buf)
            .map_err(|e| timeout_unless_nonblocking(self.as_raw_fd(), e))
    }
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        (&mut &*self)
            .write(buf)
            .map_err(|e| timeout_unless_nonblocking(self.as_raw_fd(), e))
    }
    fn shutdown(&self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Both)
    }
}

impl Socket for UnixStream {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self)
            .read(buf)
            .map_err(|e| timeout_unless_nonblocking(self.as_raw_fd(), e))
    }
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        (&mut &*self)
            .write(buf)
            .map_err(|e| timeout_unless_nonblocking(self.as_raw_fd(), e))
    }
    fn shutdown(&self) -> io::Result<()> {
        UnixStream::shutdown(self, Shutdown::Both)
    }
}

/// How much plaintext one write hands rustls at a time, so that the queue of TLS output a
/// non-blocking write leaves behind stays small.
const WRITE_CHUNK: usize = 16 * 1024;
/// One socket read: a full TLS record and its header.
const READ_CHUNK: usize = 16 * 1024 + 512;
/// How long a close alone on a blocking socket waits for room for close_notify (unless the
/// socket's SO_SNDTIMEO says otherwise). A peer that reads makes room within a round trip; one
/// that has not in this time is taken for stuck, and the connection is shut down.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How often a waiting close looks whether another call started (then it stops waiting).
const CLOSE_POLL: Duration = Duration::from_millis(50);

/// Where the handshake is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// TLS messages are being exchanged.
    Tls,
    /// Client: TLS is done, libvirt's 0x01 byte has not arrived yet.
    AwaitConfirm,
    /// TLS (and the byte) done; queued output may still be unsent.
    Finishing,
    /// Done: read and write may be used.
    Done,
    /// Failed; every later handshake call reports the same (kind, message).
    Failed(ErrorKind, String),
}

struct Tls {
    /// `None` while the handshake processes the peer's messages (see [`Verifying`]).
    conn: Option<Connection>,
    phase: Phase,
    close_notify_queued: bool,
    verifying: Option<Verifying>,
}

/// The handshake processing the peer's messages with the connection taken out of the lock:
/// rustls may be running the validator.
struct Verifying {
    /// The thread that does it: a handshake called from it comes from the validator.
    thread: ThreadId,
    /// What the session waited for before: [`SharedSession::wants`]' answer meanwhile.
    wants: (bool, bool),
}

impl Tls {
    /// The rustls connection; an error while the handshake has it (only a thread that does
    /// not hold `rx` can find it taken, and such a thread handles that case itself).
    fn conn(&mut self) -> Result<&mut Connection> {
        self.conn.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                "the session's TLS state is held by its handshake",
            )
        })
    }

    /// Whether rustls has output queued (none while the handshake has the connection: it
    /// sends that itself).
    fn wants_write(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.wants_write())
    }
}

/// TLS output taken from rustls and not yet sent.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    sent: usize,
}

/// A TLS session usable from several threads at once (`&self` everywhere) and on
/// non-blocking sockets. Start with [`SharedSession::start_client`] /
/// [`SharedSession::start_server`] (no I/O), then call [`SharedSession::handshake`] until it
/// returns `Ok` (on a non-blocking socket it returns [`ErrorKind::Again`] meanwhile: wait for
/// what [`SharedSession::wants`] says).
pub struct SharedSession<S: Socket> {
    tls: Mutex<Tls>,
    /// Bytes read from the socket that rustls has not taken yet, fed before the socket is
    /// read again.
    rx: Mutex<Vec<u8>>,
    tx: Mutex<Outbox>,
    socket: S,
    flags: SessionFlags,
    client: bool,
    /// Client: what the validator accepted in the handshake ([`SharedSession::record_peer`]).
    asked: Option<AskedNote>,
    note: SelectionNote,
    /// Handshake, read and write calls in progress, for close() to know whether to wake them.
    busy: AtomicUsize,
    /// Set when close() shut the socket down to wake other threads.
    shut: AtomicBool,
    /// The outbox holds bytes not sent yet (kept by `send_queued`, read without `tx`).
    unsent: AtomicBool,
    /// A read returned Again and has had no data since: only then does an established
    /// session want to read (else a loop polling for it would spin on data nobody reads).
    read_waiting: AtomicBool,
}

/// [`SharedSession::feed`]'s work on the connection: `Ok(Some(e))` when rustls failed
/// processing what came (an alert for the peer is queued), `Err` when it refused the input.
fn feed_conn(
    conn: &mut Connection,
    input: &[u8],
    pending: &mut Vec<u8>,
    what: &str,
) -> Result<Option<rustls::Error>> {
    /// rustls refuses input while it holds more decrypted bytes than this.
    const PLAINTEXT_LIMIT: usize = 16 * 1024;
    let mut input = input;
    loop {
        // With no input this records the end of the stream.
        let took = conn.read_tls(&mut input).map_err(|e| io_error(what, e))?;
        if took == 0 && !input.is_empty() {
            // close_notify is in: rustls takes nothing after it, and what follows it means
            // nothing (feeding it again would loop forever).
            return Ok(None);
        }
        let state = match conn.process_new_packets() {
            Ok(state) => state,
            Err(e) => return Ok(Some(e)),
        };
        if input.is_empty() {
            return Ok(None);
        }
        if state.plaintext_bytes_to_read() > PLAINTEXT_LIMIT {
            pending.extend_from_slice(input);
            return Ok(None);
        }
    }
}

/// The rustls connection taken out of the lock while the handshake processes the peer's
/// messages; put back when dropped, also when the validator panicked (the handshake is then
/// failed: rustls may have been stopped half-way).
struct Lent<'a> {
    tls: &'a Mutex<Tls>,
    conn: Option<Connection>,
    /// The thread was unwinding already when it lent the connection (a handshake driven
    /// from a destructor): only a panic that starts while lent is the validator's.
    unwinding: bool,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut tls = self
            .tls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tls.conn = self.conn.take();
        tls.verifying = None;
        if thread::panicking() && !self.unwinding {
            tls.phase = Phase::Failed(
                ErrorKind::Internal,
                "TLS handshake failed: the certificate validator panicked".into(),
            );
        }
    }
}

/// Counts a read or write call in progress for as long as it lives.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn enter(count: &'a AtomicUsize) -> Busy<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn poisoned() -> Error {
    Error::new(ErrorKind::Internal, "the session failed in another thread")
}

fn again(what: &str) -> Error {
    Error::new(
        ErrorKind::Again,
        format!("TLS {what} would block: call again when the socket is ready"),
    )
}

fn closed_locally(what: &str) -> Error {
    Error::new(
        ErrorKind::Tls,
        format!("TLS {what} failed: the session was closed in another thread (or its validator)"),
    )
}

impl<S: Socket> SharedSession<S> {
    /// A client session for `hostname` (`port` keys the known-servers entry); no I/O yet.
    pub fn start_client(
        ctx: &Arc<Context>,
        socket: S,
        hostname: &str,
        port: Option<u16>,
        flags: SessionFlags,
    ) -> Result<SharedSession<S>> {
        let asked = AskedNote::default();
        let verify = VerifyFlags::default();
        let (conn, note) = new_client_conn(ctx, hostname, port, verify, Some(asked.clone()))?;
        Ok(SharedSession::new(conn, note, socket, flags, Some(asked)))
    }

    /// A server session; no I/O yet.
    pub fn start_server(
        ctx: &Arc<Context>,
        socket: S,
        flags: SessionFlags,
    ) -> Result<SharedSession<S>> {
        let (conn, note) = new_server_conn(ctx)?;
        Ok(SharedSession::new(conn, note, socket, flags, None))
    }

    fn new(
        conn: Connection,
        note: SelectionNote,
        socket: S,
        flags: SessionFlags,
        asked: Option<AskedNote>,
    ) -> SharedSession<S> {
        let client = asked.is_some();
        SharedSession {
            tls: Mutex::new(Tls {
                conn: Some(conn),
                phase: Phase::Tls,
                close_notify_queued: false,
                verifying: None,
            }),
            rx: Mutex::new(Vec::new()),
            tx: Mutex::new(Outbox::default()),
            socket,
            flags,
            client,
            asked,
            note,
            busy: AtomicUsize::new(0),
            shut: AtomicBool::new(false),
            unsent: AtomicBool::new(false),
            read_waiting: AtomicBool::new(false),
        }
    }

    /// The TLS state.
    fn tls(&self) -> Result<MutexGuard<'_, Tls>> {
        self.tls.lock().map_err(|_| poisoned())
    }

    /// Advances the handshake as far as the socket allows: `Ok` once TLS, libvirt's byte
    /// (with [`SessionFlags::LIBVIRT_CONFIRM`]) and the output they queued are done;
    /// [`ErrorKind::Again`] while it waits for the socket; another error when it failed (the
    /// same error on every later call). The context's validator runs once, in the call that
    /// receives the peer's certificate. Data the peer sent right behind the handshake may be
    /// decrypted already: read until Again before polling for reading.
    pub fn handshake(&self) -> Result<()> {
        // Counted like reads and writes, so that close() from another thread wakes it.
        let _busy = Busy::enter(&self.busy);
        {
            let tls = self.tls()?;
            match &tls.phase {
                Phase::Failed(kind, message) => return Err(Error::new(*kind, message.clone())),
                // Without `rx`: a read blocked in another thread holds it, and a caller that
                // asks before it writes (what the peer waits for) would wait for good.
                Phase::Done => return Ok(()),
                _ => {}
            }
            // The validator's thread holds `rx` already: waiting for it would never end. The
            // handshake it was called from goes on.
            if tls.verifying.as_ref().map(|v| v.thread) == Some(thread::current().id()) {
                return Err(Error::new(
                    ErrorKind::InvalidArg,
                    "handshake called from the certificate validator of the same session: \
                     return from the validator, the handshake in progress goes on",
                ));
            }
        }
        // Poisoned by a validator's panic in another thread's handshake, which failed the
        // session first: that failure is the clear answer.
        let mut rx = self
            .rx
            .lock()
            .map_err(|_| self.failure().unwrap_or_else(poisoned))?;
        let result = self.drive_handshake(&mut rx);
        match result {
            Err(e) if e.kind() != ErrorKind::Again => {
                // Recorded before `rx` is let go: a handshake waiting for it in another
                // thread must find the failure, not read the socket of a failed connection
                // (which a peer that stays silent never ends).
                let e = explained(e, &self.note);
                self.tls()?.phase = Phase::Failed(e.kind(), e.message().to_owned());
                drop(rx);
                Err(e)
            }
            other => other,
        }
    }

    /// The handshake's steps; the caller holds `rx` (`rx` is its buffer).
    fn drive_handshake(&self, rx: &mut Vec<u8>) -> Result<()> {
        loop {
            // Failed while this call waited for `rx`: nothing more is sent or read.
            if let Some(e) = self.failure() {
                return Err(e);
            }
            self.flush("handshake")?;
            let mut tls = self.tls()?;
            match tls.phase.clone() {
                Phase::Done => return Ok(()),
                Phase::Failed(kind, message) => return Err(Error::new(kind, message)),
                Phase::Finishing => {
                    if tls.conn()?.wants_write() {
                        continue;
                    }
                    tls.phase = Phase::Done;
                    return Ok(());
                }
                Phase::Tls if tls.conn()?.is_handshaking() => {
                    if tls.conn()?.wants_write() {
                        continue;
                    }
                    drop(tls);
                    if self.receive(rx, "handshake")? == 0 {
                        return Err(Error::new(
                            ErrorKind::Tls,
                            "TLS handshake failed: the peer closed the connection",
                        ));
                    }
                }
                Phase::Tls => {
                    let confirm = self.flags.contains(SessionFlags::LIBVIRT_CONFIRM);
                    tls.phase = if confirm && self.client {
                        Phase::AwaitConfirm
                    } else {
                        if confirm {
                            tls.conn()?
                                .writer()
                                .write_all(&[CONFIRM_BYTE])
                                .map_err(|e| io_error("handshake", e))?;
                        }
                        Phase::Finishing
                    };
                }
                Phase::AwaitConfirm => {
                    let mut byte = [0u8; 1];
                    match tls.conn()?.reader().read(&mut byte) {
                        Ok(1) if byte[0] == CONFIRM_BYTE => tls.phase = Phase::Finishing,
                        Ok(1) => {
                            return Err(confirm_refused(format!(
                                "it sent 0x{:02x} instead",
                                byte[0]
                            )))
                        }
                        Ok(_) => return Err(confirm_refused("it closed the connection".into())),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            drop(tls);
                            if let Err(e) = self.receive(rx, "handshake") {
                                if e.kind() == ErrorKind::Again {
                                    return Err(e);
                                }
                                return Err(confirm_refused(e.message().to_owned()));
                            }
                        }
                        Err(_) => {
                            return Err(confirm_refused(
                                "it closed the connection without close_notify".into(),
                            ))
                        }
                    }
                }
            }
        }
    }

    /// Client: records the server's certificate for this session's host and port in the
    /// context's known-servers store, as the validator's ACCEPT_ALWAYS does inside the
    /// handshake (same store, same replacement, same errors), for a validator that answers
    /// after it (virtpki.aio's coroutine validators). Only what the validator was asked about
    /// and accepted in this session's completed handshake: [`ErrorKind::InvalidArg`] on a
    /// server session, before the handshake is done, when the validator was not asked, or
    /// when no store is set.
    pub fn record_peer(&self) -> Result<()> {
        let asked = self.asked.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArg,
                "a server session: only a client records its server's certificate",
            )
        })?;
        self.established("record of the server's certificate")?;
        asked.record()
    }

    /// The handshake's failure, if it failed (also when the TLS lock is poisoned).
    fn failure(&self) -> Option<Error> {
        let tls = self
            .tls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &tls.phase {
            Phase::Failed(kind, message) => Some(Error::new(*kind, message.clone())),
            _ => None,
        }
    }

    /// Whether the handshake is done.
    pub fn is_established(&self) -> bool {
        self.tls().map(|t| t.phase == Phase::Done).unwrap_or(false)
    }

    /// What the session waits for before the call that returned [`ErrorKind::Again`] can
    /// progress: `(read, write)`. Write: TLS output is queued (rustls' or taken and unsent).
    /// Read: the handshake needs bytes from the peer, or (once established) the last read
    /// returned Again. Decrypted data beyond a read's buffer is returned by the next read
    /// without waiting: read until Again before polling. Asked while the handshake processes
    /// the peer's messages (from the validator, or another thread meanwhile): what it waited
    /// for before it took them in, `(true, false)` (read) unless output is still queued.
    pub fn wants(&self) -> (bool, bool) {
        let Ok(tls) = self.tls() else {
            return (false, false);
        };
        if let Phase::Failed(..) = tls.phase {
            return (false, false);
        }
        let unsent = self.unsent.load(Ordering::SeqCst);
        let Some(conn) = tls.conn.as_ref() else {
            // The handshake is processing (asked from its validator or another thread).
            let (read, write) = tls.verifying.as_ref().map_or((false, false), |v| v.wants);
            return (read, write || unsent);
        };
        let write = unsent || conn.wants_write();
        let read = match tls.phase {
            Phase::Tls | Phase::AwaitConfirm => conn.wants_read(),
            Phase::Done => self.read_waiting.load(Ordering::SeqCst),
            Phase::Finishing | Phase::Failed(..) => false,
        };
        (read, write)
    }

    fn established(&self, what: &str) -> Result<()> {
        match &self.tls()?.phase {
            Phase::Done => Ok(()),
            Phase::Failed(kind, message) => Err(Error::new(*kind, message.clone())),
            _ => Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "TLS {what} before the handshake is done: call handshake until it succeeds"
                ),
            )),
        }
    }

    /// Feeds rustls what an earlier call left in `pending` or else reads the socket once
    /// (the caller holds `rx`, whose buffer `pending` is): the byte count, 0 at the end of
    /// the stream (recorded in rustls). Feeding stops while rustls holds more decrypted
    /// bytes than it accepts (its 16 KiB limit: "received plaintext buffer full"); the rest
    /// waits in `pending` until they have been read.
    fn receive(&self, pending: &mut Vec<u8>, what: &str) -> Result<usize> {
        if self.shut.load(Ordering::SeqCst) {
            return Err(closed_locally(what));
        }
        if !pending.is_empty() {
            let input = std::mem::take(pending);
            let n = input.len();
            self.feed(&input, pending, what)?;
            return Ok(n);
        }
        let mut buf = [0u8; READ_CHUNK];
        let n = loop {
            match self.socket.recv(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if self.shut.load(Ordering::SeqCst) => return Err(closed_locally(what)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(again(what)),
                Err(e) => return Err(io_error(what, e)),
            }
        };
        if n == 0 && self.shut.load(Ordering::SeqCst) {
            return Err(closed_locally(what));
        }
        self.feed(&buf[..n], pending, what)?;
        Ok(n)
    }

    /// Hands `input` to rustls (nothing: the end of the stream); what it cannot take while
    /// its decrypted bytes are unread goes to `pending`. The caller holds `rx`.
    ///
    /// During the handshake the connection is taken out of `tls` for this: rustls may call
    /// the validator, which must be free to call back into the session, and other threads
    /// must not wait for it (a close among them).
    fn feed(&self, input: &[u8], pending: &mut Vec<u8>, what: &str) -> Result<()> {
        let mut tls = self.tls()?;
        let handshaking = tls.conn()?.is_handshaking();
        let taken = if handshaking { tls.conn.take() } else { None };
        let failed = if let Some(conn) = taken {
            tls.verifying = Some(Verifying {
                thread: thread::current().id(),
                wants: (conn.wants_read(), conn.wants_write()),
            });
            drop(tls);
            let mut lent = Lent {
                tls: &self.tls,
                conn: Some(conn),
                unwinding: thread::panicking(),
            };
            let failed = match lent.conn.as_mut() {
                Some(conn) => feed_conn(conn, input, pending, what),
                None => Ok(None),
            };
            drop(lent);
            // Closed while the validator ran: whatever it decided, the session is over.
            if self.shut.load(Ordering::SeqCst) && matches!(failed, Ok(None)) {
                return Err(closed_locally(what));
            }
            failed?
        } else {
            // Established: no validator can run, and the lock is held only in memory.
            let failed = feed_conn(tls.conn()?, input, pending, what)?;
            drop(tls);
            failed
        };
        let Some(e) = failed else {
            return Ok(());
        };
        // Send the alert rustls queued for the failure, if the socket takes it and no writer
        // holds the queue: best effort, never waiting for a writer that may be blocked on a
        // peer that no longer reads.
        if let Ok(mut out) = self.tx.try_lock() {
            let _ = self.send_queued(&mut out, what);
        }
        Err(crate::tls::from_rustls(&e))
    }

    /// Sends queued TLS output (taking `tx`): `Ok` when all of it went out, Again when the
    /// socket is full.
    fn flush(&self, what: &str) -> Result<()> {
        loop {
            {
                let mut out = self.tx.lock().map_err(|_| poisoned())?;
                self.send_queued(&mut out, what)?;
            }
            // Output queued by a reader while `tx` was held here (it could not take it).
            if !self.tls()?.wants_write() {
                return Ok(());
            }
        }
    }

    /// Moves rustls' output into the outbox and sends it (the caller holds `tx`).
    fn send_queued(&self, out: &mut Outbox, what: &str) -> Result<()> {
        self.send_queued_with(out, what, false)
    }

    /// [`Self::send_queued`]; `now`: never wait in send, Again when the socket is full
    /// (blocking or not).
    fn send_queued_with(&self, out: &mut Outbox, what: &str, now: bool) -> Result<()> {
        let result = self.send_outbox(out, what, now);
        self.unsent
            .store(out.sent < out.bytes.len(), Ordering::SeqCst);
        result
    }

    fn send_outbox(&self, out: &mut Outbox, what: &str, now: bool) -> Result<()> {
        loop {
            if out.sent == out.bytes.len() {
                out.bytes.clear();
                out.sent = 0;
                let mut tls = self.tls()?;
                // Nothing to take while the handshake has the connection (it sends that
                // itself once it has it back).
                while tls.wants_write() {
                    tls.conn()?
                        .write_tls(&mut out.bytes)
                        .map_err(|e| io_error(what, e))?;
                }
                if out.bytes.is_empty() {
                    return Ok(());
                }
            }
            let rest = &out.bytes[out.sent..];
            let sent = if now {
                send_now(self.socket.as_raw_fd(), rest)
            } else {
                self.socket.send(rest)
            };
            match sent {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Tls,
                        format!("TLS {what} failed: the socket takes no more data"),
                    ))
                }
                Ok(n) => out.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if self.shut.load(Ordering::SeqCst) => return Err(closed_locally(what)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(again(what)),
                Err(e) => return Err(io_error(what, e)),
            }
        }
    }

    /// Reads decrypted bytes: the count, 0 at the end of the stream (the peer's
    /// close_notify), [`ErrorKind::Again`] when nothing is there yet on a non-blocking
    /// socket. A connection that ends without close_notify is an error ([`ErrorKind::Tls`]):
    /// what came may be cut short. Another thread may write meanwhile.
    ///
    /// An empty `buf` returns 0 at once, like read(2): no I/O, nothing consumed, no read
    /// interest recorded, never Again. That 0 says nothing about the end of the stream, so a
    /// loop that takes 0 for the end must not pass an empty buffer.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        let _busy = Busy::enter(&self.busy);
        self.established("read")?;
        if buf.is_empty() {
            return Ok(0);
        }
        let mut rx = self.rx.lock().map_err(|_| poisoned())?;
        loop {
            let rustls_output = {
                let mut tls = self.tls()?;
                match tls.conn()?.reader().read(buf) {
                    // rustls returns 0 only once close_notify has been received.
                    Ok(n) => {
                        self.read_waiting.store(false, Ordering::SeqCst);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(Error::new(
                            ErrorKind::Tls,
                            "TLS read failed: the peer closed the connection without TLS \
                             close_notify, so what was received may be cut short",
                        ))
                    }
                    Err(e) => return Err(io_error("read", e)),
                }
                tls.wants_write()
            };
            // Queued output goes out before the read waits: answers rustls owes the peer (a
            // key update), and what earlier writes took but could not send, which the peer
            // may need before it answers (a read loop polling for wants() would otherwise
            // spin on a writable socket while the request's tail never left). A writer that
            // holds the queue sends it itself before it lets go (see `flush`). Only then is
            // `tx` taken: a close() from another thread that finds it taken gives up on
            // close_notify.
            let queued = rustls_output || self.unsent.load(Ordering::SeqCst);
            if let Some(mut out) = queued.then(|| self.tx.try_lock().ok()).flatten() {
                match self.send_queued(&mut out, "read") {
                    Err(e) if e.kind() != ErrorKind::Again => return Err(e),
                    _ => {}
                }
            }
            if let Err(e) = self.receive(&mut rx, "read") {
                if e.kind() == ErrorKind::Again {
                    self.read_waiting.store(true, Ordering::SeqCst);
                }
                return Err(e);
            }
        }
    }

    /// Encrypts and sends bytes of `buf`; returns how many it took (see the module's write
    /// contract). Another thread may read meanwhile.
    pub fn write(&self, buf: &[u8]) -> Result<usize> {
        let _busy = Busy::enter(&self.busy);
        self.established("write")?;
        let result = self.write_locked(buf);
        // Output a reader queued while this write held `tx`.
        if result.is_ok() && self.tls()?.wants_write() {
            match self.flush("write") {
                Err(e) if e.kind() != ErrorKind::Again => return Err(e),
                _ => {}
            }
        }
        result
    }

    fn write_locked(&self, buf: &[u8]) -> Result<usize> {
        let mut out = self.tx.lock().map_err(|_| poisoned())?;
        // What earlier calls took goes first; until it has, nothing new is taken.
        self.send_queued(&mut out, "write")?;
        let mut taken = 0;
        while taken < buf.len() {
            {
                let mut tls = self.tls()?;
                if tls.close_notify_queued {
                    return Err(Error::new(
                        ErrorKind::Tls,
                        "TLS write failed: the session is closed",
                    ));
                }
                let end = buf.len().min(taken + WRITE_CHUNK);
                let n = tls
                    .conn()?
                    .writer()
                    .write(&buf[taken..end])
                    .map_err(|e| io_error("write", e))?;
                if n == 0 {
                    return Err(Error::new(
                        ErrorKind::Tls,
                        "TLS write failed: the session takes no more data",
                    ));
                }
                taken += n;
            }
            match self.send_queued(&mut out, "write") {
                // Taken, encrypted and queued: reported as taken, sent by the next call.
                Err(e) if e.kind() == ErrorKind::Again => return Ok(taken),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        }
        Ok(taken)
    }

    /// Pushes queued output: `Ok` when none is left, [`ErrorKind::Again`] otherwise.
    pub fn flush_output(&self) -> Result<()> {
        let _busy = Busy::enter(&self.busy);
        self.flush("write")
    }

    /// Sends close_notify (again after [`ErrorKind::Again`] until `Ok`); the socket stays
    /// the caller's. It never waits for a peer that does not read:
    /// - on a non-blocking socket: never shut down (no call waits on it, so there is no one
    ///   to wake, and a read in another thread waiting for the peer's answer must get it).
    ///   [`ErrorKind::Again`] when the socket is full or a write in another thread holds the
    ///   send side at that instant: nothing is lost or queued twice; call again when it is
    ///   writable;
    /// - on a blocking one: what fits now. While another call on the session is in
    ///   progress, or once [`CLOSE_GRACE`] (or the socket's SO_SNDTIMEO) has passed without
    ///   room, it gives up: the socket is shut down and the error says close_notify was not
    ///   sent. The peer then gets what was sent before, perhaps part of the close_notify
    ///   record, then the end of the connection: an end without close_notify, which a TLS
    ///   peer reports as an error (a possible truncation), not as a clean end.
    ///
    /// On a blocking socket, handshakes, reads and writes in progress in other threads are
    /// woken by shutdown(2) and fail with "the session was closed in another thread"; when a
    /// write holds the socket, close_notify cannot be sent after it and that is the error
    /// returned (the socket is shut down all the same). On either kind, a close while the
    /// validator runs shuts the connection down at once (the handshake then fails).
    pub fn close(&self) -> Result<()> {
        let nonblocking = is_nonblocking(self.socket.as_raw_fd());
        let mut out = match self.tx.try_lock() {
            Ok(out) => out,
            // The writer holding it does not wait on a non-blocking fd: it lets go soon, and
            // close_notify can follow what it sends.
            Err(std::sync::TryLockError::WouldBlock) if nonblocking => return Err(again("close")),
            Err(std::sync::TryLockError::WouldBlock) => {
                self.shut_down();
                return Err(Error::new(
                    ErrorKind::Tls,
                    "TLS close: close_notify not sent, a write was in progress in another \
                     thread; the connection was shut down",
                ));
            }
            Err(std::sync::TryLockError::Poisoned(_)) => return Err(poisoned()),
        };
        {
            let mut tls = self.tls()?;
            if !tls.close_notify_queued {
                let Some(conn) = tls.conn.as_mut() else {
                    // The handshake is processing the peer's messages (its validator may be
                    // what called): nothing can be queued now, and the handshake fails on the
                    // shut-down socket once it has them. Marked before the TLS lock is let
                    // go: the handshake looks for it once it has put the connection back.
                    // close_notify is not marked queued: a later Close must not say it went.
                    self.shut.store(true, Ordering::SeqCst);
                    drop(tls);
                    drop(out);
                    self.shut_down();
                    return Err(Error::new(
                        ErrorKind::Tls,
                        "TLS close: close_notify not sent, the handshake was verifying the \
                         peer's certificate (its validator was running); the connection was \
                         shut down",
                    ));
                };
                conn.send_close_notify();
                tls.close_notify_queued = true;
            }
        }
        let result = self.send_close_notify(&mut out, nonblocking);
        drop(out);
        // Only a blocking fd has calls to wake. A non-blocking one stays up whatever happens
        // meanwhile: shutting it down whenever a read happened to be in progress made that
        // read (and the retry of an Again) fail with "closed in another thread", depending on
        // timing, and cut off the peer's answer to close_notify.
        if !nonblocking && self.busy.load(Ordering::SeqCst) > 0 {
            self.shut_down();
        }
        result
    }

    /// Sends the queue, close_notify last, never blocking in send (see [`Self::close`]).
    fn send_close_notify(&self, out: &mut Outbox, nonblocking: bool) -> Result<()> {
        let fd = self.socket.as_raw_fd();
        if nonblocking {
            return self.send_queued_with(out, "close", true);
        }
        let deadline = Instant::now() + send_timeout(fd).unwrap_or(CLOSE_GRACE);
        loop {
            match self.send_queued_with(out, "close", true) {
                Err(e) if e.kind() == ErrorKind::Again => {}
                other => return other,
            }
            let now = Instant::now();
            // A call in progress (a blocked reader) must not wait for the peer with us.
            if self.busy.load(Ordering::SeqCst) > 0 || now >= deadline {
                self.shut_down();
                return Err(Error::new(
                    ErrorKind::Tls,
                    "TLS close: close_notify not sent, the socket's send buffer is full (the \
                     peer is not reading); the connection was shut down, so the peer sees it \
                     end without close_notify",
                ));
            }
            wait_writable(fd, (deadline - now).min(CLOSE_POLL));
        }
    }

    fn shut_down(&self) {
        self.shut.store(true, Ordering::SeqCst);
        // The socket may already be gone (the peer reset it): nothing left to wake then.
        let _ = self.socket.shutdown();
    }

    /// The certificates the peer presented, leaf first; none until the handshake is done
    /// (from inside the validator too, which is given them), and none after it failed: rustls
    /// keeps what it verified even when the session then failed (libvirt's byte refused, a
    /// later TLS error), but that peer is not the session's.
    pub fn peer_certificates(&self) -> Vec<Certificate> {
        match self.tls() {
            Ok(tls) if tls.phase == Phase::Done => {
                super::certificates(tls.conn.as_ref().and_then(|c| c.peer_certificates()))
            }
            _ => Vec::new(),
        }
    }

    /// The peer's DN in libvirt's format.
    pub fn peer_dn(&self) -> Option<String> {
        self.peer_certificates()
            .first()
            .map(|c| c.subject().to_owned())
    }

    /// The socket.
    pub fn socket(&self) -> &S {
        &self.socket
    }
}
