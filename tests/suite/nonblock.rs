//! Sessions driven without blocking (start, handshake until done, Again, wants) and used
//! from two threads at once (full duplex), over socketpairs and loopback TCP.

use crate::common;

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use virtpki::session::{SessionFlags, SharedSession, Socket};
use virtpki::{Context, ContextFlags, ErrorKind, ValidationRequest, ValidatorAnswer};

const BIG: usize = 8 << 20;

/// A client context whose validator counts its calls (and accepts once).
fn counted_client(p: &Pki) -> (Arc<Context>, Arc<AtomicUsize>) {
    let ctx = client_ctx(p, ContextFlags::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&calls);
    ctx.set_validator(Some(Arc::new(move |_: &ValidationRequest<'_>| {
        count.fetch_add(1, Ordering::SeqCst);
        ValidatorAnswer::AcceptOnce
    })));
    (ctx, calls)
}

/// Non-blocking sessions on both ends of a socketpair, not yet handshaken.
fn pair(
    p: &Pki,
    client: &Arc<Context>,
    flags: SessionFlags,
) -> (SharedSession<UnixStream>, SharedSession<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let c = SharedSession::start_client(client, a, "localhost", None, flags).unwrap();
    let s = SharedSession::start_server(&server_ctx(p), b, flags).unwrap();
    (c, s)
}

/// Steps one handshake: Ok(true) done, Ok(false) Again (counted).
fn step<S: Socket>(s: &SharedSession<S>, agains: &mut usize) -> virtpki::Result<bool> {
    match s.handshake() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::Again => {
            *agains += 1;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Drives both handshakes in one thread until both are done; the Again count.
fn handshake_both<S: Socket>(c: &SharedSession<S>, s: &SharedSession<S>) -> usize {
    let mut agains = 0;
    let (mut cd, mut sd) = (false, false);
    for _ in 0..1000 {
        if !cd {
            cd = step(c, &mut agains).unwrap();
        }
        if !sd {
            sd = step(s, &mut agains).unwrap();
        }
        if cd && sd {
            return agains;
        }
    }
    panic!("the handshake did not finish");
}

/// poll(2) for what the session wants, up to 5 s.
fn wait_for<S: Socket + AsRawFd>(s: &SharedSession<S>) {
    let (read, write) = s.wants();
    let mut events = 0;
    if read {
        events |= libc::POLLIN;
    }
    if write {
        events |= libc::POLLOUT;
    }
    let mut fd = libc::pollfd {
        fd: s.socket().as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut fd, 1, 5000) };
}

#[test]
fn a_nonblocking_handshake_with_the_confirmation_byte_then_data_both_ways() {
    let p = pki();
    let (client, calls) = counted_client(&p);
    let (c, s) = pair(&p, &client, SessionFlags::LIBVIRT_CONFIRM);
    // Nothing happened yet: the client wants to write its hello, the server to read.
    assert!(!c.is_established());
    assert!(c.wants().1, "{:?}", c.wants());
    assert_eq!(s.wants(), (true, false));
    let mut buf = [0u8; 8];
    assert_eq!(c.read(&mut buf).unwrap_err().kind(), ErrorKind::InvalidArg);
    assert_eq!(s.write(b"x").unwrap_err().kind(), ErrorKind::InvalidArg);
    let agains = handshake_both(&c, &s);
    assert!(agains > 0, "no Again on non-blocking sockets");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the validator runs once");
    assert!(c.is_established() && s.is_established());
    // Established, nothing queued, no read waiting: nothing to poll for.
    assert_eq!(c.wants(), (false, false));
    // Again after done: still done, the validator not asked again.
    c.handshake().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.peer_dn().unwrap(), "C=GB,O=Test,CN=client1");
    // Nothing to read yet: Again, read interest.
    assert_eq!(c.read(&mut buf).unwrap_err().kind(), ErrorKind::Again);
    assert_eq!(c.wants(), (true, false));
    assert_eq!(c.write(b"ping").unwrap(), 4);
    assert_eq!(s.read(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"ping");
    assert_eq!(s.write(b"pong").unwrap(), 4);
    assert_eq!(c.read(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"pong");
    assert_eq!(c.wants(), (false, false));
    // close_notify: the end of the stream.
    c.close().unwrap();
    assert_eq!(s.read(&mut buf).unwrap(), 0);
}

#[test]
fn the_client_reads_the_confirmation_byte_across_several_agains() {
    // TLS 1.3: the client is done with TLS once the server's flight is in; the byte comes
    // only when the server has the client's Finished. Meanwhile the client waits for it.
    let p = pki();
    let (client, _) = counted_client(&p);
    let (c, s) = pair(&p, &client, SessionFlags::LIBVIRT_CONFIRM);
    let mut agains = 0;
    assert!(!step(&c, &mut agains).unwrap()); // ClientHello out
    assert!(!step(&s, &mut agains).unwrap()); // the server's flight out
    for _ in 0..3 {
        // Finished out (first round), then only the byte is awaited.
        assert!(!step(&c, &mut agains).unwrap());
        assert_eq!(c.wants(), (true, false));
        assert!(!c.is_established());
    }
    assert!(step(&s, &mut agains).unwrap()); // the byte out
    assert!(step(&c, &mut agains).unwrap());
    assert_eq!(agains, 5);
}

#[test]
fn a_server_that_sends_no_confirmation_byte_is_a_refusal() {
    let p = pki();
    let (client, _) = counted_client(&p);
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let c =
        SharedSession::start_client(&client, a, "localhost", None, SessionFlags::LIBVIRT_CONFIRM)
            .unwrap();
    let s = SharedSession::start_server(&server_ctx(&p), b, SessionFlags::default()).unwrap();
    let mut agains = 0;
    for _ in 0..100 {
        let _ = step(&c, &mut agains).unwrap();
        if step(&s, &mut agains).unwrap() {
            break;
        }
    }
    s.close().unwrap();
    let err = loop {
        match c.handshake() {
            Err(e) if e.kind() == ErrorKind::Again => continue,
            other => break other.unwrap_err(),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(err.message().contains("0x01"), "{err}");
    // The failure stays.
    assert_eq!(c.handshake().unwrap_err().message(), err.message());
}

#[test]
fn the_peer_vanishing_mid_handshake_is_an_error_not_a_hang() {
    let p = pki();
    let (client, calls) = counted_client(&p);
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let c = SharedSession::start_client(&client, a, "localhost", None, SessionFlags::default())
        .unwrap();
    // The hello goes out, then the client waits.
    assert_eq!(c.handshake().unwrap_err().kind(), ErrorKind::Again);
    assert_eq!(c.wants(), (true, false));
    drop(b);
    let err = c.handshake().unwrap_err();
    // "closed", or "reset" when the hello was still unread.
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("handshake"), "{err}");
    assert_eq!(c.handshake().unwrap_err().message(), err.message());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn eof_without_close_notify_is_an_error_on_a_nonblocking_read() {
    let p = pki();
    let (client, _) = counted_client(&p);
    let (c, s) = pair(&p, &client, SessionFlags::default());
    handshake_both(&c, &s);
    assert_eq!(s.write(b"last").unwrap(), 4);
    let mut buf = [0u8; 8];
    assert_eq!(c.read(&mut buf).unwrap(), 4);
    drop(s);
    let err = c.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(err.message().contains("close_notify"), "{err}");
}

#[test]
fn a_write_that_would_block_reports_what_it_took_and_nothing_is_lost_or_repeated() {
    let p = pki();
    let (client, _) = counted_client(&p);
    let (c, s) = pair(&p, &client, SessionFlags::default());
    handshake_both(&c, &s);
    // Numbered bytes, written while nobody reads: the socket fills up.
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut agains = 0;
    let mut received = Vec::new();
    let mut buf = vec![0u8; 65536];
    while received.len() < data.len() {
        if sent < data.len() {
            match c.write(&data[sent..]) {
                Ok(n) => {
                    assert!(n > 0 && sent + n <= data.len());
                    sent += n;
                }
                Err(e) if e.kind() == ErrorKind::Again => {
                    // Nothing was taken; something waits to go out.
                    agains += 1;
                    assert!(c.wants().1);
                }
                Err(e) => panic!("{e}"),
            }
        } else {
            // Push what the last write took but could not send.
            match c.flush_output() {
                Ok(()) => assert!(!c.wants().1),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Again),
            }
        }
        // The reader runs only every other round, so the writer does see a full socket.
        if agains % 2 == 1 || sent == data.len() {
            match s.read(&mut buf) {
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Again),
            }
        }
    }
    assert!(agains > 0, "the socket never filled up");
    assert_eq!(received.len(), data.len());
    assert!(received == data, "the bytes differ");
    // A write of nothing pushes the queue: nothing left.
    assert_eq!(c.write(&[]).unwrap(), 0);
}

/// Writes `BIG` numbered bytes and reads `BIG` from the peer, in two threads at once.
fn duplex<S: Socket + AsRawFd + 'static>(
    session: Arc<SharedSession<S>>,
    poll: bool,
) -> thread::JoinHandle<()> {
    let writer = {
        let s = Arc::clone(&session);
        thread::spawn(move || {
            let data: Vec<u8> = (0..BIG).map(|i| (i % 253) as u8).collect();
            let mut sent = 0;
            while sent < data.len() {
                match s.write(&data[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if poll && e.kind() == ErrorKind::Again => wait_for(&s),
                    Err(e) => panic!("write: {e}"),
                }
            }
            while poll && s.flush_output().is_err() {
                wait_for(&s);
            }
        })
    };
    thread::spawn(move || {
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        while got < BIG {
            match session.read(&mut buf) {
                Ok(0) => panic!("end of stream after {got} bytes"),
                Ok(n) => {
                    for (i, b) in buf[..n].iter().enumerate() {
                        assert_eq!(*b, ((got + i) % 253) as u8, "byte {}", got + i);
                    }
                    got += n;
                }
                Err(e) if poll && e.kind() == ErrorKind::Again => wait_for(&session),
                Err(e) => panic!("read after {got} bytes: {e}"),
            }
        }
        writer.join().unwrap();
    })
}

fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    (a, b)
}

#[test]
fn full_duplex_8_mib_each_way_on_blocking_sockets() {
    // With one lock, both writers block on full sockets while the readers wait for the lock.
    let p = pki();
    let (client, _) = counted_client(&p);
    let (a, b) = tcp_pair();
    let server = server_ctx(&p);
    let srv = thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, SessionFlags::LIBVIRT_CONFIRM).unwrap();
        s.handshake().unwrap();
        s
    });
    let c =
        SharedSession::start_client(&client, a, "localhost", None, SessionFlags::LIBVIRT_CONFIRM)
            .unwrap();
    c.handshake().unwrap();
    let s = srv.join().unwrap();
    let start = Instant::now();
    let one = duplex(Arc::new(c), false);
    let two = duplex(Arc::new(s), false);
    one.join().unwrap();
    two.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn full_duplex_8_mib_each_way_on_nonblocking_sockets_with_poll() {
    let p = pki();
    let (client, _) = counted_client(&p);
    let (c, s) = pair(&p, &client, SessionFlags::LIBVIRT_CONFIRM);
    handshake_both(&c, &s);
    let one = duplex(Arc::new(c), true);
    let two = duplex(Arc::new(s), true);
    one.join().unwrap();
    two.join().unwrap();
}

#[test]
fn a_close_from_a_third_thread_wakes_a_blocked_reader_and_writer() {
    let p = pki();
    let (client, _) = counted_client(&p);
    let (a, b) = tcp_pair();
    let server = server_ctx(&p);
    let srv = thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, SessionFlags::default()).unwrap();
        s.handshake().unwrap();
        s
    });
    let c = SharedSession::start_client(&client, a, "localhost", None, SessionFlags::default())
        .unwrap();
    c.handshake().unwrap();
    // The server never reads nor writes: the client's reader and writer both block.
    let _s = srv.join().unwrap();
    let c = Arc::new(c);
    let reader = {
        let c = Arc::clone(&c);
        thread::spawn(move || c.read(&mut [0u8; 64]).unwrap_err())
    };
    let writer = {
        let c = Arc::clone(&c);
        thread::spawn(move || {
            let data = vec![0u8; 64 << 20];
            let mut sent = 0;
            loop {
                match c.write(&data[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) => return e,
                }
            }
        })
    };
    thread::sleep(Duration::from_millis(300));
    let closed = c.close();
    let r = reader.join().unwrap();
    let w = writer.join().unwrap();
    assert_eq!(r.kind(), ErrorKind::Tls);
    assert!(r.message().contains("closed in another thread"), "{r}");
    assert_eq!(w.kind(), ErrorKind::Tls);
    assert!(w.message().contains("closed in another thread"), "{w}");
    let e = closed.unwrap_err();
    assert!(e.message().contains("close_notify not sent"), "{e}");
}

#[test]
fn close_with_nothing_in_progress_keeps_the_graceful_end() {
    // Close, then read the peer's answer: the socket is not shut down under the reader.
    let p = pki();
    let (client, _) = counted_client(&p);
    let (c, s) = pair(&p, &client, SessionFlags::default());
    handshake_both(&c, &s);
    c.close().unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    assert_eq!(s.write(b"bye").unwrap(), 3);
    s.close().unwrap();
    assert_eq!(c.read(&mut buf).unwrap(), 3);
    assert_eq!(c.read(&mut buf).unwrap(), 0);
    assert_eq!(c.write(b"x").unwrap_err().kind(), ErrorKind::Tls);
}

// ---- review (issue 14 items 1–2): attempts to break the non-blocking and duplex sessions ----

/// xorshift64: reproducible sizes without a dependency.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// A socket whose reads return a varying number of bytes (1 to a full read): TLS records
/// split at every offset, and many small records in one read.
struct Chunky {
    inner: UnixStream,
    seed: std::sync::Mutex<u64>,
    /// false: every read as large as the socket allows.
    vary: bool,
}

impl AsRawFd for Chunky {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.inner.as_raw_fd()
    }
}

impl Socket for Chunky {
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = next(&mut self.seed.lock().unwrap());
        let limit = match if self.vary { r % 4 } else { 3 } {
            0 => 1 + (r >> 8) as usize % 64,
            1 => 1 + (r >> 8) as usize % 20_000,
            _ => buf.len(),
        };
        let end = buf.len().min(limit);
        self.inner.recv(&mut buf[..end])
    }
    fn send(&self, buf: &[u8]) -> std::io::Result<usize> {
        Socket::send(&self.inner, buf)
    }
    fn shutdown(&self) -> std::io::Result<()> {
        Socket::shutdown(&self.inner)
    }
}

#[test]
fn records_of_every_size_split_at_every_offset_arrive_whole_and_in_order() {
    let p = pki();
    let (client, _) = counted_client(&p);
    // Plain reads first: many small records in one socket read were enough to fail with
    // "received plaintext buffer full" (rustls' 16 KiB limit) after 14 KB.
    for (seed, vary) in (1..=6u64).map(|s| (s, s > 1)) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let a = Chunky {
            inner: a,
            seed: std::sync::Mutex::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            vary,
        };
        let c = SharedSession::start_client(&client, a, "localhost", None, SessionFlags::default())
            .unwrap();
        // The server's reads vary too (it reads only handshake messages here).
        let b = Chunky {
            inner: b,
            seed: std::sync::Mutex::new(seed + 1),
            vary,
        };
        let s = SharedSession::start_server(&server_ctx(&p), b, SessionFlags::default()).unwrap();
        handshake_both(&c, &s);
        let total = 3 << 20;
        let data: Vec<u8> = (0..total).map(|i: usize| (i % 241) as u8).collect();
        let mut rng = seed;
        let (mut sent, mut got) = (0, Vec::with_capacity(total));
        let mut buf = vec![0u8; 70_000];
        let mut rounds = 0;
        while got.len() < total {
            rounds += 1;
            assert!(rounds < 1_000_000, "no progress (seed {seed})");
            // The server writes records of mixed sizes until its socket is full...
            loop {
                let r = next(&mut rng);
                let size = match r % 3 {
                    0 => 1 + (r >> 8) as usize % 40,
                    1 => 16_384 - (r >> 8) as usize % 64,
                    _ => 1 + (r >> 8) as usize % 16_384,
                };
                let end = total.min(sent + size);
                if sent == end {
                    let _ = s.flush_output();
                    break;
                }
                match s.write(&data[sent..end]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::Again => break,
                    Err(e) => panic!("write (seed {seed}): {e}"),
                }
            }
            // ...then the client reads until Again, with buffers of varying size.
            loop {
                let want = 1 + next(&mut rng) as usize % buf.len();
                match c.read(&mut buf[..want]) {
                    Ok(0) => panic!("end of stream"),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::Again => break,
                    Err(e) => panic!("read after {} bytes (seed {seed}): {e}", got.len()),
                }
            }
        }
        assert!(got == data, "the bytes differ (seed {seed})");
    }
}

#[test]
fn a_close_from_another_thread_wakes_a_blocked_handshake() {
    // The peer never answers: the handshake blocks reading on a blocking socket.
    let p = pki();
    let (client, calls) = counted_client(&p);
    let (a, b) = UnixStream::pair().unwrap();
    let c = Arc::new(
        SharedSession::start_client(&client, a, "localhost", None, SessionFlags::default())
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let c = Arc::clone(&c);
        thread::spawn(move || tx.send(c.handshake()).unwrap());
    }
    thread::sleep(Duration::from_millis(300));
    let _ = c.close();
    let result = rx.recv_timeout(Duration::from_secs(5));
    drop(b); // unblocks the thread if close did not
    let err = result
        .expect("close did not wake the handshake")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("closed in another thread"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // The failure stays.
    assert_eq!(c.handshake().unwrap_err().message(), err.message());
}

/// A client waiting for the 0x01 byte and a server that sends `first` itself (no flag).
fn confirm_against(
    p: &Pki,
    first: &[u8],
) -> (
    virtpki::Result<()>,
    SharedSession<UnixStream>,
    SharedSession<UnixStream>,
) {
    let (client, _) = counted_client(p);
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let c =
        SharedSession::start_client(&client, a, "localhost", None, SessionFlags::LIBVIRT_CONFIRM)
            .unwrap();
    let s = SharedSession::start_server(&server_ctx(p), b, SessionFlags::default()).unwrap();
    let mut agains = 0;
    let mut server_done = false;
    for _ in 0..100 {
        let _ = step(&c, &mut agains);
        if !server_done && step(&s, &mut agains).unwrap() {
            server_done = true;
            // One write: one record holding the byte and what follows it.
            assert_eq!(s.write(first).unwrap(), first.len());
        }
        if server_done {
            break;
        }
    }
    let result = loop {
        match c.handshake() {
            Err(e) if e.kind() == ErrorKind::Again => continue,
            other => break other,
        }
    };
    (result, c, s)
}

#[test]
fn the_confirmation_byte_and_data_in_one_record_leave_the_data_to_read() {
    let p = pki();
    let (result, c, _s) = confirm_against(&p, b"\x01hello");
    result.unwrap();
    // The data is decrypted already: read returns it without waiting for the socket.
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(c.read(&mut buf).unwrap_err().kind(), ErrorKind::Again);
}

#[test]
fn data_before_the_confirmation_byte_is_a_refusal() {
    let p = pki();
    let (result, c, _s) = confirm_against(&p, b"hello\x01");
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(err.message().contains("0x68"), "{err}");
    assert_eq!(c.read(&mut [0u8; 4]).unwrap_err().message(), err.message());
    // A refused session has no peer (TLS had verified it; the session did not accept it).
    assert!(c.peer_certificates().is_empty());
    assert_eq!(c.peer_dn(), None);
}

#[test]
fn a_read_loop_after_a_write_pushes_what_the_write_took_and_does_not_spin() {
    // An RPC client: it writes a request (every byte reported taken, the tail still queued
    // because the socket was full), then reads the answer, polling for what wants() says.
    // The server answers only once it has the whole request.
    let p = pki();
    let (client, _) = counted_client(&p);
    let (c, s) = pair(&p, &client, SessionFlags::default());
    handshake_both(&c, &s);
    // The request ends with a write whose tail stays queued (the socket was full): its
    // length is known to the server only through `sent`, as a length prefix would tell it.
    let chunk = vec![7u8; 65536];
    let mut sent = 0;
    let mut sbuf = vec![0u8; 65536];
    let mut received = 0;
    loop {
        match c.write(&chunk) {
            Ok(n) => {
                sent += n;
                if c.wants().1 {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Again => loop {
                // The server drains its socket.
                match s.read(&mut sbuf) {
                    Ok(n) => received += n,
                    Err(e) if e.kind() == ErrorKind::Again => break,
                    Err(e) => panic!("{e}"),
                }
            },
            Err(e) => panic!("{e}"),
        }
    }
    let mut polls = 0;
    let mut answered = false;
    let mut buf = [0u8; 16];
    loop {
        // The server's side of the loop: read what came, answer once all of it has.
        loop {
            match s.read(&mut sbuf) {
                Ok(n) => received += n,
                Err(e) if e.kind() == ErrorKind::Again => break,
                Err(e) => panic!("{e}"),
            }
        }
        if received == sent && !answered {
            assert_eq!(s.write(b"done").unwrap(), 4);
            answered = true;
        }
        // The client's read loop: read, and on Again wait for what it wants.
        match c.read(&mut buf) {
            Ok(n) => {
                assert_eq!(&buf[..n], b"done");
                break;
            }
            Err(e) if e.kind() == ErrorKind::Again => {
                polls += 1;
                assert!(polls < 10_000, "the read loop spins: {:?}", c.wants());
                wait_for(&c);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(received, sent);
}

#[test]
fn a_timeout_on_a_blocking_socket_is_an_error_not_again() {
    // SO_RCVTIMEO / SO_SNDTIMEO (what the Python docs suggest for timeouts) make a blocking
    // socket return EAGAIN too: that is a timeout, to report as such, not "call again": a
    // blocking caller (virPKISessionNewClient, a write whose count is taken to be all) does
    // not retry.
    let p = pki();
    let (client, _) = counted_client(&p);
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let c = SharedSession::start_client(&client, a, "localhost", None, SessionFlags::default())
        .unwrap();
    let err = c.handshake().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("timed out"), "{err}");
}

#[test]
fn a_send_timeout_on_a_blocking_socket_fails_the_write() {
    let p = pki();
    let (client, _) = counted_client(&p);
    let (a, b) = UnixStream::pair().unwrap();
    let server = server_ctx(&p);
    let srv = thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, SessionFlags::default()).unwrap();
        s.handshake().unwrap();
        s
    });
    let c = SharedSession::start_client(&client, a, "localhost", None, SessionFlags::default())
        .unwrap();
    c.handshake().unwrap();
    let _s = srv.join().unwrap(); // never reads
    c.socket()
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Blocking: the count is all of it or an error, never a silent short count.
    let data = vec![0u8; 16 << 20];
    let err = c.write(&data).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("timed out"), "{err}");
}

#[test]
fn bytes_after_close_notify_in_the_same_socket_read_end_the_stream_without_spinning() {
    // rustls takes nothing more once close_notify is in (read_tls returns 0): a loop feeding
    // it until the input is used up never ended, holding the TLS lock (a peer's DoS).
    let p = pki();
    let (client, _) = counted_client(&p);
    let (c, s) = pair(&p, &client, SessionFlags::default());
    handshake_both(&c, &s);
    assert_eq!(s.write(b"last").unwrap(), 4);
    s.close().unwrap();
    // More than rustls' first read takes (4 KiB), so that it is asked again.
    Socket::send(s.socket(), &[0x17; 10_000]).unwrap();
    let c = Arc::new(c);
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let c = Arc::clone(&c);
        thread::spawn(move || {
            let mut buf = [0u8; 16];
            let first = c.read(&mut buf).map(|n| buf[..n].to_vec());
            let second = c.read(&mut buf);
            tx.send((first, second)).unwrap();
        });
    }
    let (first, second) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the read spins on bytes after close_notify");
    assert_eq!(first.unwrap(), b"last");
    assert_eq!(second.unwrap(), 0);
}

#[test]
fn close_notify_in_the_middle_of_the_handshake_is_an_error_not_a_hang() {
    let p = pki();
    let (client, calls) = counted_client(&p);
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let c = SharedSession::start_client(&client, a, "localhost", None, SessionFlags::default())
        .unwrap();
    assert_eq!(c.handshake().unwrap_err().kind(), ErrorKind::Again);
    // A plaintext close_notify alert, then more bytes, then the end of the stream.
    let mut alert = vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00];
    alert.extend_from_slice(&[0x16; 6000]);
    Socket::send(&b, &alert).unwrap();
    drop(b);
    let mut result = c.handshake();
    for _ in 0..100 {
        match &result {
            Err(e) if e.kind() == ErrorKind::Again => result = c.handshake(),
            _ => break,
        }
    }
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_handshake_and_reads_fit_a_small_thread_stack() {
    // Threads of C programs may be small (musl's default is 128 KiB); the validator runs
    // inside the read that brings the peer's certificate, below the session's frames.
    let p = pki();
    let (client, calls) = counted_client(&p);
    let (a, b) = UnixStream::pair().unwrap();
    let server = server_ctx(&p);
    let srv = thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, SessionFlags::LIBVIRT_CONFIRM).unwrap();
        s.handshake().unwrap();
        assert_eq!(s.write(b"hi").unwrap(), 2);
        s
    });
    let small = thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let c = SharedSession::start_client(
                &client,
                a,
                "localhost",
                None,
                SessionFlags::LIBVIRT_CONFIRM,
            )
            .unwrap();
            c.handshake().unwrap();
            let mut buf = [0u8; 2];
            c.read(&mut buf).unwrap()
        })
        .unwrap();
    assert_eq!(small.join().unwrap(), 2);
    let _s = srv.join().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// musl's default thread stack. A debug build needed 105-112 KiB here (measured in 8 KiB
/// steps), of which 16.5 KiB is `receive`'s socket buffer, live while the validator runs.
const STACK: usize = 128 << 10;

#[test]
fn a_read_that_fails_returns_while_a_writer_is_blocked() {
    // The peer stops reading (the client's writer blocks on a full socket) and sends a
    // record that is not TLS: the reader's error must come back, not wait for the writer
    // (sending the alert is best effort).
    let p = pki();
    let (client, _) = counted_client(&p);
    let (a, b) = tcp_pair();
    let server = server_ctx(&p);
    let srv = thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, SessionFlags::default()).unwrap();
        s.handshake().unwrap();
        s
    });
    let c = Arc::new(
        SharedSession::start_client(&client, a, "localhost", None, SessionFlags::default())
            .unwrap(),
    );
    c.handshake().unwrap();
    let s = srv.join().unwrap();
    let writer = {
        let c = Arc::clone(&c);
        thread::spawn(move || {
            let data = vec![0u8; 64 << 20];
            let mut sent = 0;
            loop {
                match c.write(&data[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) => return e,
                }
            }
        })
    };
    thread::sleep(Duration::from_millis(300));
    Socket::send(s.socket(), &[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
    Socket::send(s.socket(), &[0xee; 0x20]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let c = Arc::clone(&c);
        thread::spawn(move || tx.send(c.read(&mut [0u8; 64])).unwrap());
    }
    let result = rx.recv_timeout(Duration::from_secs(5));
    c.close().ok(); // wakes the writer (and the reader, if it waited)
    let err = result
        .expect("the failed read waits for the blocked writer")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    writer.join().unwrap();
}

// ---- close on a blocking socket the peer does not read (close_notify must not hold it) ----

/// Blocking client and server sessions over loopback TCP, handshaken.
fn blocking_tcp_sessions(p: &Pki) -> (Arc<SharedSession<TcpStream>>, SharedSession<TcpStream>) {
    let (client, _) = counted_client(p);
    let (a, b) = tcp_pair();
    let server = server_ctx(p);
    let srv = thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, SessionFlags::default()).unwrap();
        s.handshake().unwrap();
        s
    });
    let c = SharedSession::start_client(&client, a, "localhost", None, SessionFlags::default())
        .unwrap();
    c.handshake().unwrap();
    (Arc::new(c), srv.join().unwrap())
}

/// Fills the socket's send buffer (and the peer's receive buffer) with bytes the peer never
/// reads, then makes the socket blocking again.
fn fill_send_buffer(socket: &TcpStream) {
    // Until a round after a pause takes nothing: loopback TCP moves data on to the peer's
    // buffer (which grows) after the first would-block.
    socket.set_nonblocking(true).unwrap();
    let junk = [0u8; 65536];
    loop {
        let mut took = 0;
        loop {
            match Socket::send(socket, &junk) {
                Ok(n) => took += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        if took == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    socket.set_nonblocking(false).unwrap();
}

/// Runs `f` in a thread; its result, or a failure if it has not returned within 30 s.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what} never returned"))
}

#[test]
fn a_close_on_a_full_blocking_socket_wakes_a_blocked_reader_at_once() {
    // close_notify does not fit and another call is in progress: Close sends nothing more,
    // shuts the socket down and returns (it blocked in send forever, the reader with it).
    let p = pki();
    let (c, _s) = blocking_tcp_sessions(&p);
    fill_send_buffer(c.socket());
    let reader = {
        let c = Arc::clone(&c);
        thread::spawn(move || c.read(&mut [0u8; 64]).unwrap_err())
    };
    thread::sleep(Duration::from_millis(300));
    let closed = {
        let c = Arc::clone(&c);
        within("close on a full socket", move || c.close())
    };
    let e = closed.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(e.message().contains("close_notify not sent"), "{e}");
    let r = within("the reader", move || reader.join().unwrap());
    assert!(r.message().contains("closed in another thread"), "{r}");
    assert!(c.write(b"x").is_err());
}

#[test]
fn a_close_from_a_third_thread_with_a_writer_and_a_reader_blocked_on_a_full_socket() {
    let p = pki();
    let (c, _s) = blocking_tcp_sessions(&p);
    fill_send_buffer(c.socket());
    let reader = {
        let c = Arc::clone(&c);
        thread::spawn(move || c.read(&mut [0u8; 64]).unwrap_err())
    };
    let writer = {
        let c = Arc::clone(&c);
        thread::spawn(move || c.write(&vec![7u8; 1 << 20]).unwrap_err())
    };
    thread::sleep(Duration::from_millis(300));
    let closer = Arc::clone(&c);
    let e = within("close", move || closer.close()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(e.message().contains("close_notify not sent"), "{e}");
    let r = within("the reader", move || reader.join().unwrap());
    let w = within("the writer", move || writer.join().unwrap());
    assert_eq!(r.kind(), ErrorKind::Tls, "{r}");
    assert_eq!(w.kind(), ErrorKind::Tls, "{w}");
}

#[test]
fn a_close_alone_on_a_socket_the_peer_never_reads_gives_up_and_shuts_it_down() {
    // A single-threaded program with a stuck connection can close it: Close waits a bounded
    // time for room (here SO_SNDTIMEO's 300 ms), then shuts the socket down.
    let p = pki();
    let (c, _s) = blocking_tcp_sessions(&p);
    fill_send_buffer(c.socket());
    c.socket()
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let closer = Arc::clone(&c);
    let e = within("close", move || closer.close()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(e.message().contains("close_notify not sent"), "{e}");
    assert!(e.message().contains("shut down"), "{e}");
    assert!(c.write(b"x").is_err());
    assert!(c.read(&mut [0u8; 4]).is_err());
}

#[test]
fn a_close_alone_without_a_send_timeout_gives_up_after_its_grace() {
    let p = pki();
    let (c, _s) = blocking_tcp_sessions(&p);
    fill_send_buffer(c.socket());
    let closer = Arc::clone(&c);
    let e = within("close", move || closer.close()).unwrap_err();
    assert!(e.message().contains("close_notify not sent"), "{e}");
}

#[test]
fn a_close_after_a_big_write_to_a_slow_reader_still_ends_cleanly() {
    // The peer reads, late: close_notify waits for room, the peer gets every byte and then
    // the clean end of the stream.
    let p = pki();
    let (c, s) = blocking_tcp_sessions(&p);
    let reader = thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got += n,
                Err(e) => return Err(e),
            }
        }
    });
    let closer = Arc::clone(&c);
    within("write and close", move || {
        assert_eq!(closer.write(&vec![1u8; BIG]).unwrap(), BIG);
        closer.close()
    })
    .unwrap();
    let got = within("the reader", move || reader.join().unwrap()).unwrap();
    assert_eq!(got, BIG);
}

#[test]
fn a_read_of_zero_bytes_returns_0_at_once_and_changes_nothing() {
    // Like read(2): no I/O, nothing consumed, no read interest recorded. Its 0 says nothing
    // about the end of the stream (documented: a loop must not pass len 0).
    let p = pki();
    let (client, _) = counted_client(&p);
    let (c, s) = pair(&p, &client, SessionFlags::default());
    assert_eq!(c.read(&mut []).unwrap_err().kind(), ErrorKind::InvalidArg);
    handshake_both(&c, &s);
    // Before data, nothing pending on a non-blocking socket: 0, not Again, and no interest.
    assert_eq!(c.read(&mut []).unwrap(), 0);
    assert_eq!(c.wants(), (false, false));
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mut buf).unwrap_err().kind(), ErrorKind::Again);
    assert_eq!(c.wants(), (true, false));
    assert_eq!(c.read(&mut []).unwrap(), 0);
    assert_eq!(c.wants(), (true, false), "the Again's interest stays");
    // After data: 0, and the data is still there.
    assert_eq!(s.write(b"abc").unwrap(), 3);
    wait_for(&c);
    assert_eq!(c.read(&mut []).unwrap(), 0);
    assert_eq!(c.read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"abc");
    // After the end of the stream: 0, like every read.
    s.close().unwrap();
    loop {
        match c.read(&mut buf) {
            Ok(n) => {
                assert_eq!(n, 0);
                break;
            }
            Err(e) if e.kind() == ErrorKind::Again => wait_for(&c),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(c.read(&mut []).unwrap(), 0);
    assert_eq!(c.read(&mut buf).unwrap(), 0);
}

#[test]
fn a_read_of_zero_bytes_on_a_blocking_socket_does_not_wait() {
    let p = pki();
    let (c, _s) = blocking_tcp_sessions(&p);
    let reader = Arc::clone(&c);
    assert_eq!(within("read(0)", move || reader.read(&mut [])).unwrap(), 0);
}

#[test]
fn a_nonblocking_close_never_says_again_for_a_connection_it_shut_down() {
    // Close on a full non-blocking socket while a read runs in another thread: Again promises
    // "nothing lost, call again when writable"; a Close that shut the socket down (to wake
    // that thread) must say close_notify was not sent instead, since no later call can send
    // it. Repeated: the read must be in progress at the moment Close looks.
    let p = pki();
    let (client, _) = counted_client(&p);
    let mut shut_and_again = 0;
    for _ in 0..50 {
        let (c, s) = pair(&p, &client, SessionFlags::default());
        handshake_both(&c, &s);
        let junk = vec![0u8; 65536];
        // Until Again: nothing taken, what was taken before still queued (the peer reads none).
        while c.write(&junk).is_ok() {}
        let c = Arc::new(c);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (c, stop) = (Arc::clone(&c), Arc::clone(&stop));
            thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::SeqCst) {
                    let _ = c.read(&mut buf);
                }
            })
        };
        thread::sleep(Duration::from_millis(5));
        let first = c.close();
        stop.store(true, Ordering::SeqCst);
        reader.join().unwrap();
        match first {
            Err(e) if e.kind() == ErrorKind::Again => {
                // Nothing was lost: with no one else in, Close says Again again.
                if let Err(e) = c.close() {
                    if e.kind() != ErrorKind::Again {
                        shut_and_again += 1;
                    }
                }
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
                assert!(e.message().contains("close_notify not sent"), "{e}");
            }
            Ok(()) => panic!("close_notify fitted in a full socket"),
        }
        drop(s);
    }
    assert_eq!(shut_and_again, 0, "Again after the socket was shut down");
}

#[test]
fn handshake_after_it_is_done_does_not_wait_for_a_blocked_reader() {
    // "Again Ok on later calls": an event loop or wrapper that asks handshake() before each
    // write (Python's handshake() -> True) must not wait for a read blocked in another thread
    // (the peer answers only after that write: it would wait for good).
    let p = pki();
    let (c, _s) = blocking_tcp_sessions(&p);
    let reader = {
        let c = Arc::clone(&c);
        thread::spawn(move || c.read(&mut [0u8; 64]))
    };
    thread::sleep(Duration::from_millis(200));
    let h = Arc::clone(&c);
    within("handshake() with a reader blocked", move || h.handshake()).unwrap();
    let closer = Arc::clone(&c);
    let _ = within("close", move || closer.close());
    let _ = within("the reader", move || reader.join().unwrap());
}

#[test]
fn a_nonblocking_close_never_shuts_the_socket_down_under_a_running_reader() {
    // Close on a non-blocking socket while a read spins in another thread (Again at once): the
    // close_notify goes out (or Close says Again: a write or that read held the send side) and
    // the socket stays up, so the read gets the peer's answering close_notify as the end of
    // the stream (0), never "closed in another thread". Close used to shut the socket down
    // whenever a call happened to be in progress at that instant. Repeated: timing decides.
    let p = pki();
    let (client, _) = counted_client(&p);
    let mut close_agains = 0;
    for round in 0..50 {
        let (c, s) = pair(&p, &client, SessionFlags::default());
        handshake_both(&c, &s);
        let c = Arc::new(c);
        // The watchdog: every loop below gives up at this instant.
        let deadline = Instant::now() + Duration::from_secs(20);
        let reader = {
            let c = Arc::clone(&c);
            thread::spawn(move || {
                let mut buf = [0u8; 64];
                loop {
                    match c.read(&mut buf) {
                        Err(e) if e.kind() == ErrorKind::Again => {}
                        other => return other.map_err(|e| e.to_string()),
                    }
                    if Instant::now() > deadline {
                        return Err("the peer's close_notify never came".into());
                    }
                }
            })
        };
        thread::sleep(Duration::from_millis(1));
        loop {
            match c.close() {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::Again => close_agains += 1,
                Err(e) => panic!("round {round}: close: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: close never got through"
            );
            thread::yield_now();
        }
        // The peer still receives close_notify, and answers it.
        loop {
            match s.read(&mut [0u8; 64]) {
                Ok(0) => break,
                Ok(n) => panic!("round {round}: {n} bytes of data"),
                Err(e) if e.kind() == ErrorKind::Again => wait_for(&s),
                Err(e) => panic!("round {round}: the peer's read: {e}"),
            }
            assert!(Instant::now() < deadline, "round {round}: no close_notify");
        }
        while let Err(e) = s.close() {
            assert_eq!(e.kind(), ErrorKind::Again, "round {round}: {e}");
            wait_for(&s);
        }
        assert_eq!(reader.join().unwrap(), Ok(0), "round {round}");
    }
    eprintln!("close said Again {close_agains} times in 50 rounds");
}

#[test]
fn a_nonblocking_close_while_a_write_holds_the_send_side_says_again_and_shuts_nothing_down() {
    // A writer in another thread holds the send side most of the time: Close then says Again
    // (nothing queued) instead of shutting the socket down and failing, and once it gets
    // through, the peer receives everything written, then close_notify.
    let p = pki();
    let (client, _) = counted_client(&p);
    let mut close_agains = 0;
    for round in 0..20 {
        let (c, s) = pair(&p, &client, SessionFlags::default());
        handshake_both(&c, &s);
        let c = Arc::new(c);
        let deadline = Instant::now() + Duration::from_secs(20);
        let peer = thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Again => wait_for(&s),
                    Err(e) => return Err(e.to_string()),
                }
                if Instant::now() > deadline {
                    return Err("no close_notify".into());
                }
            }
        });
        let writer = {
            let c = Arc::clone(&c);
            thread::spawn(move || {
                let chunk = vec![7u8; 16 * 1024];
                loop {
                    match c.write(&chunk) {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::Again => thread::yield_now(),
                        Err(e) => return e.to_string(),
                    }
                    if Instant::now() > deadline {
                        return "the writer was never stopped".into();
                    }
                }
            })
        };
        thread::sleep(Duration::from_millis(2));
        loop {
            match c.close() {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::Again => close_agains += 1,
                Err(e) => panic!("round {round}: close: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: close never got through"
            );
            thread::yield_now();
        }
        // The writer stops on the closed session, not on a shut-down socket.
        let stopped = writer.join().unwrap();
        assert!(
            stopped.contains("the session is closed"),
            "round {round}: {stopped}"
        );
        assert_eq!(peer.join().unwrap(), Ok(()), "round {round}");
    }
    eprintln!("close said Again {close_agains} times in 20 rounds");
    assert!(
        close_agains > 0,
        "the writer never held the send side when Close looked"
    );
}
