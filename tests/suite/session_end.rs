//! How a session ends, over real loopback TCP: close_notify is the end of the stream; a TCP
//! close without it (a truncation attack, or a crashed peer) is a TLS error, in Rust and
//! through the C API.

use crate::common;

use std::ffi::CString;
use std::io::Write as _;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use virtpki::ffi::{context as cctx, errors, session as csession};
use virtpki::session::{Session, SessionFlags};
use virtpki::{ContextFlags, ErrorKind};

/// How the server leaves after sending "hello".
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    CloseNotify,
    /// A raw TCP shutdown, no close_notify: what an attacker on the path can do.
    TcpClose,
}

/// Serves one connection: handshake, "hello", then ends as told.
fn serve(p: &Pki, ending: Ending) -> (u16, JoinHandle<()>) {
    let ctx = server_ctx(p);
    serve_one(0, move |stream| {
        let mut s = Session::server(&ctx, stream, SessionFlags::default()).unwrap();
        s.write_all(b"hello").unwrap();
        if ending == Ending::CloseNotify {
            s.close().unwrap();
        }
        let mut stream = s.into_stream();
        stream.flush().unwrap();
        stream.shutdown(Shutdown::Both).unwrap();
    })
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads "hello", then what comes after it.
fn read_after_hello(s: &mut Session<TcpStream>) -> virtpki::Result<usize> {
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    while got.len() < 5 {
        let n = s.read(&mut buf)?;
        assert!(n > 0, "ended before hello");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"hello");
    s.read(&mut buf)
}

#[test]
fn close_notify_is_the_end_of_the_stream_a_tcp_close_is_a_tls_error() {
    let p = pki();
    for ending in [Ending::CloseNotify, Ending::TcpClose] {
        let (port, server) = serve(&p, ending);
        let mut s = Session::client(
            &client_ctx(&p, ContextFlags::default()),
            connect(port),
            "localhost",
            None,
            SessionFlags::default(),
        )
        .unwrap();
        let result = read_after_hello(&mut s);
        server.join().unwrap();
        match ending {
            Ending::CloseNotify => assert_eq!(result.unwrap(), 0),
            Ending::TcpClose => {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
                assert!(err.message().contains("close_notify"), "{err}");
                // And it stays an error: a second read does not turn it into an end.
                let err = s.read(&mut [0u8; 4]).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
            }
        }
    }
}

#[test]
fn c_api_reports_a_tcp_close_without_close_notify_as_tls() {
    let p = pki();
    for ending in [Ending::CloseNotify, Ending::TcpClose] {
        let (port, server) = serve(&p, ending);
        let stream = connect(port);
        // SAFETY: NUL-terminated strings that outlive each call, a read buffer whose length is
        // the one given, a descriptor open for the session's life; the context and session come
        // from the library and are freed once, the session first.
        unsafe {
            let ctx = cctx::virPKIContextNew(0);
            assert!(!ctx.is_null());
            let ca = CString::new(p.ca.pem()).unwrap();
            assert_eq!(cctx::virPKIContextAddCertData(ctx, 0, ca.as_ptr()), 0);
            let cert = CString::new(p.client.pem()).unwrap();
            assert_eq!(cctx::virPKIContextAddCertData(ctx, 3, cert.as_ptr()), 0);
            let key = CString::new(p.client.key_pem()).unwrap();
            assert_eq!(cctx::virPKIContextAddCertData(ctx, 2, key.as_ptr()), 0);
            assert_eq!(cctx::virPKIContextSetVerifyTime(ctx, now()), 0);
            let host = CString::new("localhost").unwrap();
            let s = csession::virPKISessionNewClient(ctx, stream.as_raw_fd(), host.as_ptr(), 0, 0);
            assert!(!s.is_null());
            let mut buf = [0u8; 16];
            let mut got = 0usize;
            while got < 5 {
                let n = csession::virPKISessionRead(s, buf[got..].as_mut_ptr().cast(), 16 - got);
                assert!(n > 0, "ended before hello: {n}");
                got += n as usize;
            }
            assert_eq!(&buf[..5], b"hello");
            errors::virPKIResetLastError();
            let n = csession::virPKISessionRead(s, buf.as_mut_ptr().cast(), buf.len());
            server.join().unwrap();
            match ending {
                Ending::CloseNotify => assert_eq!(n, 0),
                Ending::TcpClose => {
                    assert_eq!(n, -1);
                    assert_eq!(errors::virPKIGetLastErrorCode(), ErrorKind::Tls.code());
                }
            }
            csession::virPKISessionFree(s);
            cctx::virPKIContextFree(ctx);
        }
    }
}

/// A client stream that, once cut, passes the budget's bytes and then reports the end.
struct CutAfter {
    inner: TcpStream,
    budget: Arc<std::sync::Mutex<Option<usize>>>,
}

impl std::io::Read for CutAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut budget = self.budget.lock().unwrap();
        let len = match *budget {
            Some(0) => return Ok(0),
            Some(n) => buf.len().min(n),
            None => buf.len(),
        };
        let n = self.inner.read(&mut buf[..len])?;
        if let Some(b) = budget.as_mut() {
            *b -= n;
        }
        Ok(n)
    }
}

impl std::io::Write for CutAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The connection ends in the middle of a record (its header, or part of its body, arrived):
/// a TLS error, not an end of stream and not a wait for the rest.
#[test]
fn a_close_in_the_middle_of_a_record_is_a_tls_error() {
    let p = pki();
    for cut in [1, 5, 12] {
        let (port, server) = serve(&p, Ending::CloseNotify);
        let budget = Arc::new(std::sync::Mutex::new(None));
        let mut s = Session::client(
            &client_ctx(&p, ContextFlags::default()),
            CutAfter {
                inner: connect(port),
                budget: Arc::clone(&budget),
            },
            "localhost",
            None,
            SessionFlags::default(),
        )
        .unwrap();
        server.join().unwrap();
        // What follows the handshake (session tickets, "hello", close_notify) are records
        // of more than 12 bytes each: the stream ends inside the first one not yet read.
        *budget.lock().unwrap() = Some(cut);
        let mut buf = [0u8; 64];
        let result = loop {
            match s.read(&mut buf) {
                Ok(0) => break Ok(0),
                Ok(_) => continue,
                Err(e) => break Err(e),
            }
        };
        let err = result.expect_err("a cut record read as the end of the stream");
        assert_eq!(err.kind(), ErrorKind::Tls, "cut {cut}: {err}");
    }
}
