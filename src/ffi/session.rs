//! TLS sessions over a connected socket the caller owns.

use std::ffi::{c_char, c_int, c_longlong, c_uint, c_void};
use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use super::context::{context, virPKIContextPtr};
use super::{bad_value, c_string, guard, port_arg, ref_arg, str_arg};
use crate::error::{Error, ErrorKind};
use crate::session::{timeout_unless_nonblocking, SessionFlags, SharedSession, Socket};

/// Session flags.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum virPKISessionFlags {
    /// libvirt's handshake byte: the server sends 0x01 after accepting the client, the client
    /// waits for it.
    VIR_PKI_SESSION_LIBVIRT_CONFIRM = 1,
}

/// What a session waits for (virPKISessionWants): the fd's readiness to poll for before the
/// call that returned VIR_PKI_ERR_AGAIN is made again.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum virPKISessionWant {
    /// Wait until the fd is readable.
    VIR_PKI_SESSION_WANT_READ = 1,
    /// Wait until the fd is writable.
    VIR_PKI_SESSION_WANT_WRITE = 2,
}

/// A borrowed file descriptor: read and written, never closed.
pub(super) struct BorrowedFd(RawFd);

impl AsRawFd for BorrowedFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl Socket for BorrowedFd {
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        BorrowedFd(self.0)
            .read(buf)
            .map_err(|e| timeout_unless_nonblocking(self.0, e))
    }
    fn send(&self, buf: &[u8]) -> std::io::Result<usize> {
        BorrowedFd(self.0)
            .write(buf)
            .map_err(|e| timeout_unless_nonblocking(self.0, e))
    }
    fn shutdown(&self) -> std::io::Result<()> {
        // SAFETY: shutdown(2) on the caller's fd; it stays open.
        if unsafe { libc::shutdown(self.0, libc::SHUT_RDWR) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

impl Read for BorrowedFd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            // SAFETY: `buf` is valid for `buf.len()` bytes; the fd belongs to the caller.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr() as *mut c_void, buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Write for BorrowedFd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (ptr, len) = (buf.as_ptr() as *const c_void, buf.len());
        loop {
            // send() with MSG_NOSIGNAL: a peer that has gone away is an EPIPE error for the
            // caller, not a SIGPIPE that kills the application. An fd that is not a socket
            // (a pipe) is written with write().
            // SAFETY: `buf` is valid for `len` bytes; the fd belongs to the caller.
            let mut n = unsafe { libc::send(self.0, ptr, len, libc::MSG_NOSIGNAL) };
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOTSOCK) {
                // SAFETY: as above.
                n = unsafe { libc::write(self.0, ptr, len) };
            }
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// Every buffer, in order, until one is written short. rustls sends its queued records
    /// with one call after a failed handshake (its last gasp): with the default, which writes
    /// the first buffer only, the alert queued behind a ChangeCipherSpec was never sent and
    /// the peer waited for it forever.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        let mut total = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            match self.write(buf) {
                Ok(n) => {
                    total += n;
                    if n < buf.len() {
                        break;
                    }
                }
                // What went out is reported; the error comes back on the next call.
                Err(_) if total > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A TLS session (opaque): from virPKISessionNewClient/NewServer (handshake done) or
/// virPKISessionStartClient/StartServer (handshake by virPKISessionHandshake), freed with
/// virPKISessionFree(). One thread may read while another writes (full duplex); reads are
/// serialised with reads, writes with writes. It holds what it needs of its context, which
/// may be freed first; the fd is borrowed and never closed.
pub struct virPKISession {
    inner: SharedSession<BorrowedFd>,
}

/// Pointer to a session.
pub type virPKISessionPtr = *mut virPKISession;

fn session_flags(flags: c_uint) -> crate::Result<SessionFlags> {
    SessionFlags::from_bits(flags).ok_or_else(|| bad_value("flags", flags))
}

fn fd_arg(fd: c_int) -> crate::Result<RawFd> {
    if fd < 0 {
        return Err(bad_value("fd", fd));
    }
    Ok(fd)
}

/// A Read/Write buffer: NULL only with len 0, and len within what a buffer can span (a slice
/// over more than isize::MAX bytes is undefined behaviour; the caller's len is wrong anyway).
fn buf_arg(null: bool, len: usize) -> crate::Result<()> {
    if null && len > 0 {
        return Err(Error::new(ErrorKind::InvalidArg, "buf is NULL"));
    }
    if len > isize::MAX as usize {
        return Err(bad_value("len", len));
    }
    Ok(())
}

fn boxed(session: SharedSession<BorrowedFd>) -> virPKISessionPtr {
    Box::into_raw(Box::new(virPKISession { inner: session }))
}

/// The handshake of virPKISessionNewClient/NewServer, which block until it is done.
fn handshaken(session: SharedSession<BorrowedFd>) -> crate::Result<virPKISessionPtr> {
    match session.handshake() {
        Ok(()) => Ok(boxed(session)),
        Err(e) if e.kind() == ErrorKind::Again => Err(Error::new(
            ErrorKind::InvalidArg,
            "the fd is non-blocking: use virPKISessionStartClient/StartServer and \
             virPKISessionHandshake",
        )),
        Err(e) => Err(e),
    }
}

pub(super) unsafe fn with_session<T>(
    s: virPKISessionPtr,
    f: impl FnOnce(&SharedSession<BorrowedFd>) -> crate::Result<T>,
) -> crate::Result<T> {
    // SAFETY: a non-NULL session pointer comes from virPKISessionNew*/Start*.
    let session = unsafe { ref_arg(s, "session") }?;
    f(&session.inner)
}

/// The arguments of virPKISessionNewClient/StartClient, checked: a client session, not started.
unsafe fn client_session(
    ctx: virPKIContextPtr,
    fd: c_int,
    hostname: *const c_char,
    port: c_int,
    flags: c_uint,
) -> crate::Result<SharedSession<BorrowedFd>> {
    // SAFETY: see "Pointer arguments" in ffi/mod.rs.
    let ctx = unsafe { context(ctx) }?;
    let fd = fd_arg(fd)?;
    // SAFETY: see "Pointer arguments" in ffi/mod.rs.
    let hostname = unsafe { str_arg(hostname, "hostname") }?;
    let port = port_arg(port)?;
    let flags = session_flags(flags)?;
    SharedSession::start_client(ctx, BorrowedFd(fd), hostname, port, flags)
}

/// The arguments of virPKISessionNewServer/StartServer, checked: a server session, not started.
unsafe fn server_session(
    ctx: virPKIContextPtr,
    fd: c_int,
    flags: c_uint,
) -> crate::Result<SharedSession<BorrowedFd>> {
    // SAFETY: see "Pointer arguments" in ffi/mod.rs.
    let ctx = unsafe { context(ctx) }?;
    let fd = fd_arg(fd)?;
    let flags = session_flags(flags)?;
    SharedSession::start_server(ctx, BorrowedFd(fd), flags)
}

/// Connects as a client over a connected, blocking fd; the handshake (and confirmation) is
/// done on return. port: the known-servers port, 0 = any. The fd stays the caller's. The
/// context's validator, when asked, runs on this thread during the handshake. Free the
/// session with virPKISessionFree(). A non-blocking fd is VIR_PKI_ERR_INVALID_ARG: use
/// virPKISessionStartClient.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionNewClient(
    ctx: virPKIContextPtr,
    fd: c_int,
    hostname: *const c_char,
    port: c_int,
    flags: c_uint,
) -> virPKISessionPtr {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let session = unsafe { client_session(ctx, fd, hostname, port, flags) }?;
        handshaken(session)
    })
}

/// Accepts a client over a connected, blocking fd; the handshake (and confirmation byte) is
/// done on return. The fd stays the caller's. Free the session with virPKISessionFree().
#[no_mangle]
pub unsafe extern "C" fn virPKISessionNewServer(
    ctx: virPKIContextPtr,
    fd: c_int,
    flags: c_uint,
) -> virPKISessionPtr {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let session = unsafe { server_session(ctx, fd, flags) }?;
        handshaken(session)
    })
}

/// Like virPKISessionNewClient, but no I/O happens here: call virPKISessionHandshake until it
/// returns 0. For event loops and non-blocking fds (blocking ones work too). The fd stays the
/// caller's; free the session with virPKISessionFree(), also when the handshake failed.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionStartClient(
    ctx: virPKIContextPtr,
    fd: c_int,
    hostname: *const c_char,
    port: c_int,
    flags: c_uint,
) -> virPKISessionPtr {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let session = unsafe { client_session(ctx, fd, hostname, port, flags) }?;
        Ok(boxed(session))
    })
}

/// Like virPKISessionNewServer, but no I/O happens here: call virPKISessionHandshake until it
/// returns 0.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionStartServer(
    ctx: virPKIContextPtr,
    fd: c_int,
    flags: c_uint,
) -> virPKISessionPtr {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let session = unsafe { server_session(ctx, fd, flags) }?;
        Ok(boxed(session))
    })
}

/// Advances the handshake of a started session: 0 when TLS and, with
/// VIR_PKI_SESSION_LIBVIRT_CONFIRM, libvirt's 0x01 byte are done (again 0 on later calls, at
/// once: they do not wait for reads or writes in other threads);
/// -1 otherwise: VIR_PKI_ERR_AGAIN while in progress on a non-blocking fd (poll the fd for
/// virPKISessionWants() and call again), another code when it failed (the same on every later
/// call). On a blocking fd it returns only when done or failed. The context's validator runs
/// once per handshake, on the thread of the call that receives the peer's certificate, with
/// no lock of the session held: it may call back into this session (or wait for a thread
/// that does). Until the handshake is done, Read and Write fail with VIR_PKI_ERR_INVALID_ARG
/// (nothing goes in or out before the decision), PeerDN returns NULL (no verified peer yet;
/// the validator is given the certificate), virPKISessionHandshake from inside the validator
/// fails with VIR_PKI_ERR_INVALID_ARG (the handshake in progress goes on), and
/// virPKISessionClose shuts the connection down at once, so that the handshake fails when the
/// validator returns (VIR_PKI_ERR_TLS; the rejection's own code if it rejected). The
/// validator must not call virPKISessionFree on it, nor wait for a thread that calls
/// virPKISessionHandshake on it (that call waits for the handshake in progress, as any
/// concurrent Handshake does). Data
/// the peer sent right behind the handshake may be decrypted already: once done, call
/// virPKISessionRead until VIR_PKI_ERR_AGAIN before polling the fd for reading.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionHandshake(s: virPKISessionPtr) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe { with_session(s, |session| session.handshake().map(|_| 0)) }
    })
}

/// What the session waits for after VIR_PKI_ERR_AGAIN: a combination of
/// VIR_PKI_SESSION_WANT_READ and VIR_PKI_SESSION_WANT_WRITE; 0 when nothing (established,
/// nothing queued, no read waiting; or a failed handshake); -1 for a NULL session. READ: the
/// handshake needs the peer's bytes, or the last virPKISessionRead returned AGAIN. WRITE: TLS
/// output is queued, e.g. what an earlier write took (virPKISessionWrite with len 0 pushes it,
/// and so does virPKISessionRead before it waits). Called from the validator (or from another
/// thread while it runs): what the handshake waited for before it took in the peer's messages,
/// VIR_PKI_SESSION_WANT_READ (plus WANT_WRITE only if output is still unsent). After a
/// virPKISessionClose that returned AGAIN because another thread held the send side, nothing
/// is queued: retry that Close rather than wait for what this says.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionWants(s: virPKISessionPtr) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe {
            with_session(s, |session| {
                let (read, write) = session.wants();
                let mut wants = 0;
                if read {
                    wants |= virPKISessionWant::VIR_PKI_SESSION_WANT_READ as c_int;
                }
                if write {
                    wants |= virPKISessionWant::VIR_PKI_SESSION_WANT_WRITE as c_int;
                }
                Ok(wants)
            })
        }
    })
}

/// Reads up to len bytes: the count, 0 at the end of the stream (the peer's close_notify),
/// -1 on error. A connection closed without close_notify is an error (VIR_PKI_ERR_TLS): the
/// data may have been cut short. On a non-blocking fd: -1 with VIR_PKI_ERR_AGAIN when nothing
/// has arrived (poll for virPKISessionWants()). Decrypted data can wait in the session
/// beyond len: read until VIR_PKI_ERR_AGAIN before polling the fd again. Another thread may
/// write meanwhile; virPKISessionClose from another thread wakes a blocked read (-1,
/// VIR_PKI_ERR_TLS). len 0 (buf may then be NULL) returns 0 at once, like read(2): no I/O,
/// nothing consumed, never AGAIN, even on a non-blocking fd with nothing pending; that 0 does
/// not mean the end of the stream, so a loop that takes 0 for the end must never pass len 0.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionRead(
    s: virPKISessionPtr,
    buf: *mut c_void,
    len: usize,
) -> c_longlong {
    guard(-1, || {
        buf_arg(buf.is_null(), len)?;
        let slice: &mut [u8] = if len == 0 {
            &mut []
        } else {
            // SAFETY: see "Pointer arguments" in ffi/mod.rs (buf, len); buf is not NULL here.
            unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len) }
        };
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe { with_session(s, |session| Ok(session.read(slice)? as c_longlong)) }
    })
}

/// Writes buf: the number of bytes taken, -1 on error. On a blocking fd that is len, all sent
/// (SO_SNDTIMEO running out is VIR_PKI_ERR_TLS, "timed out"; so is SO_RCVTIMEO for the other
/// calls: AGAIN means a non-blocking fd only).
/// On a non-blocking fd it may be fewer (at least 1): those bytes are taken and will be sent
/// by later calls, the rest is the caller's to write again; -1 with VIR_PKI_ERR_AGAIN means
/// nothing was taken (poll for virPKISessionWants()). len 0 pushes queued output: 0 when none
/// is left, else VIR_PKI_ERR_AGAIN. On a socket, a peer that has gone away is an error
/// (VIR_PKI_ERR_TLS), not a SIGPIPE. Another thread may read meanwhile.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionWrite(
    s: virPKISessionPtr,
    buf: *const c_void,
    len: usize,
) -> c_longlong {
    guard(-1, || {
        buf_arg(buf.is_null(), len)?;
        let slice: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: see "Pointer arguments" in ffi/mod.rs (buf, len); buf is not NULL here.
            unsafe { std::slice::from_raw_parts(buf as *const u8, len) }
        };
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe {
            with_session(s, |session| {
                if slice.is_empty() {
                    return session.flush_output().map(|_| 0);
                }
                Ok(session.write(slice)? as c_longlong)
            })
        }
    })
}

/// Server side: the client's DN (free with virPKIFree); NULL on error. Before the handshake
/// is done, also from inside the validator, there is no peer yet: NULL with
/// VIR_PKI_ERR_INVALID_ARG (the validator is given the certificate).
#[no_mangle]
pub unsafe extern "C" fn virPKISessionPeerDN(s: virPKISessionPtr) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe {
            with_session(s, |session| {
                if !session.is_established() {
                    return Err(Error::new(
                        ErrorKind::InvalidArg,
                        "the handshake is not done: the peer's certificate is the session's \
                         once it has been verified (a validator is given it as an argument)",
                    ));
                }
                let dn = session.peer_dn().ok_or_else(|| {
                    Error::new(ErrorKind::InvalidArg, "the peer presented no certificate")
                })?;
                c_string(&dn)
            })
        }
    })
}

/// Sends close_notify; the fd stays the caller's. It never waits for a peer that does not
/// read. On a non-blocking fd it does not shut the fd down, whatever other threads do, except
/// while the validator runs (below) (no call waits on it; a Read in another thread then still
/// gets the peer's reply): -1 with VIR_PKI_ERR_AGAIN until close_notify has gone out, then 0.
/// That AGAIN also comes when a Write or Read in another thread holds the send side at that
/// instant: nothing is queued then, so virPKISessionWants may not say WANT_WRITE; call Close
/// again once that call has returned (or when the fd is writable). Do not change the fd
/// between blocking and non-blocking while calls are in progress: Close decides by the mode
/// it finds, and a call blocked from before would not be woken. On a blocking fd whose send buffer is full: if another call is in
/// progress on the session, Close does not wait; alone, it waits for room at most 5
/// seconds (the fd's SO_SNDTIMEO when set). Then it shuts the fd down (shutdown(2)) and fails
/// with VIR_PKI_ERR_TLS, "close_notify not sent": the peer receives what was sent before,
/// perhaps part of the close_notify record, then the end of the connection, which a TLS peer
/// reports as an end without close_notify (an error), not as a clean end. On a blocking fd, a
/// handshake, read or write in progress in another thread is woken by shutdown(2) on the fd
/// and fails with VIR_PKI_ERR_TLS; if a write was in progress, close_notify cannot follow it
/// and Close fails with VIR_PKI_ERR_TLS too. On either kind of fd, a Close while the validator
/// runs shuts the connection down at once (see virPKISessionHandshake). Close does not free:
/// join the woken threads, then call virPKISessionFree.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionClose(s: virPKISessionPtr) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe { with_session(s, |session| session.close().map(|_| 0)) }
    })
}

/// Frees a session: its TLS state and its hold on the context. It sends nothing (close_notify
/// is virPKISessionClose's) and never closes the fd; NULL does nothing. No other call on the
/// session may be in progress in another thread or follow (to end a blocked one, call
/// virPKISessionClose and wait for it to return first).
#[no_mangle]
pub unsafe extern "C" fn virPKISessionFree(s: virPKISessionPtr) {
    guard((), || {
        if !s.is_null() {
            // SAFETY: the pointer came from virPKISessionNew*/Start* and is freed once.
            drop(unsafe { Box::from_raw(s) });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_vectored_write_sends_every_buffer() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut fd = BorrowedFd(a.as_raw_fd());
        let bufs = [
            IoSlice::new(b"ccs"),
            IoSlice::new(b""),
            IoSlice::new(b"alert"),
        ];
        assert_eq!(fd.write_vectored(&bufs).unwrap(), 8);
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ccsalert");
    }
}
