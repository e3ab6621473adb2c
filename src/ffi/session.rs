//! TLS sessions over a connected socket the caller owns.

use std::ffi::{c_char, c_int, c_longlong, c_uint, c_void};
use std::io::{IoSlice, Read, Write};
use std::os::fd::RawFd;
use std::sync::Mutex;

use super::context::{context, virPKIContextPtr};
use super::{bad_value, c_string, guard, port_arg, ref_arg, str_arg};
use crate::error::{Error, ErrorKind};
use crate::session::{Session, SessionFlags};

/// Session flags.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub enum virPKISessionFlags {
    /// libvirt's handshake byte: the server sends 0x01 after accepting the client, the client
    /// waits for it.
    VIR_PKI_SESSION_LIBVIRT_CONFIRM = 1,
}

/// A borrowed file descriptor: read and written, never closed.
struct BorrowedFd(RawFd);

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

/// A TLS session (opaque): from virPKISessionNewClient/NewServer, freed with
/// virPKISessionFree(). Calls on one session are serialised. It holds what it needs of its
/// context, which may be freed first; the fd is borrowed and never closed.
pub struct virPKISession {
    inner: Mutex<Session<BorrowedFd>>,
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

fn boxed(session: Session<BorrowedFd>) -> virPKISessionPtr {
    Box::into_raw(Box::new(virPKISession {
        inner: Mutex::new(session),
    }))
}

unsafe fn with_session<T>(
    s: virPKISessionPtr,
    f: impl FnOnce(&mut Session<BorrowedFd>) -> crate::Result<T>,
) -> crate::Result<T> {
    // SAFETY: a non-NULL session pointer comes from virPKISessionNew*.
    let session = unsafe { ref_arg(s, "session") }?;
    let mut guard = session
        .inner
        .lock()
        .map_err(|_| Error::new(ErrorKind::Internal, "the session failed in another thread"))?;
    f(&mut guard)
}

/// Connects as a client over a connected fd; the handshake (and confirmation) is done on
/// return. port: the known-servers port, 0 = any. The fd stays the caller's. The context's
/// validator, when asked, runs on this thread during the handshake. Free the session with
/// virPKISessionFree().
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
        let ctx = unsafe { context(ctx) }?;
        let fd = fd_arg(fd)?;
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let hostname = unsafe { str_arg(hostname, "hostname") }?;
        let port = port_arg(port)?;
        let flags = session_flags(flags)?;
        Ok(boxed(Session::client(
            ctx,
            BorrowedFd(fd),
            hostname,
            port,
            flags,
        )?))
    })
}

/// Accepts a client over a connected fd; the handshake (and confirmation byte) is done on
/// return. The fd stays the caller's. Free the session with virPKISessionFree().
#[no_mangle]
pub unsafe extern "C" fn virPKISessionNewServer(
    ctx: virPKIContextPtr,
    fd: c_int,
    flags: c_uint,
) -> virPKISessionPtr {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        let ctx = unsafe { context(ctx) }?;
        let fd = fd_arg(fd)?;
        let flags = session_flags(flags)?;
        Ok(boxed(Session::server(ctx, BorrowedFd(fd), flags)?))
    })
}

/// Reads up to len bytes: the count, 0 at the end of the stream (the peer's close_notify),
/// -1 on error. A connection closed without close_notify is an error (VIR_PKI_ERR_TLS): the
/// data may have been cut short.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionRead(
    s: virPKISessionPtr,
    buf: *mut c_void,
    len: usize,
) -> c_longlong {
    guard(-1, || {
        if buf.is_null() && len > 0 {
            return Err(Error::new(ErrorKind::InvalidArg, "buf is NULL"));
        }
        let slice: &mut [u8] = if len == 0 {
            &mut []
        } else {
            // SAFETY: see "Pointer arguments" in ffi/mod.rs (buf, len); buf is not NULL here.
            unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len) }
        };
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe {
            with_session(s, |session| {
                if slice.is_empty() {
                    return Ok(0);
                }
                Ok(session.read(slice)? as c_longlong)
            })
        }
    })
}

/// Writes len bytes: len on success, -1 on error. On a socket, a peer that has gone away is
/// an error (VIR_PKI_ERR_TLS), not a SIGPIPE.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionWrite(
    s: virPKISessionPtr,
    buf: *const c_void,
    len: usize,
) -> c_longlong {
    guard(-1, || {
        if buf.is_null() && len > 0 {
            return Err(Error::new(ErrorKind::InvalidArg, "buf is NULL"));
        }
        let slice: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: see "Pointer arguments" in ffi/mod.rs (buf, len); buf is not NULL here.
            unsafe { std::slice::from_raw_parts(buf as *const u8, len) }
        };
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe {
            with_session(s, |session| {
                if !slice.is_empty() {
                    session.write_all(slice)?;
                }
                Ok(len as c_longlong)
            })
        }
    })
}

/// Server side: the client's DN (free with virPKIFree); NULL on error.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionPeerDN(s: virPKISessionPtr) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe {
            with_session(s, |session| {
                let dn = session.peer_dn().ok_or_else(|| {
                    Error::new(ErrorKind::InvalidArg, "the peer presented no certificate")
                })?;
                c_string(&dn)
            })
        }
    })
}

/// Sends close_notify; the fd stays the caller's.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionClose(s: virPKISessionPtr) -> c_int {
    guard(-1, || {
        // SAFETY: see "Pointer arguments" in ffi/mod.rs.
        unsafe { with_session(s, |session| session.close().map(|_| 0)) }
    })
}

/// Frees a session: its TLS state and its hold on the context. It sends nothing (close_notify
/// is virPKISessionClose's) and never closes the fd; NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn virPKISessionFree(s: virPKISessionPtr) {
    guard((), || {
        if !s.is_null() {
            // SAFETY: the pointer came from virPKISessionNew* and is freed once.
            drop(unsafe { Box::from_raw(s) });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
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
