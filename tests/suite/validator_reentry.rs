//! A validator that calls back into the session it is verifying (asks for the peer's
//! certificate or DN, reads, writes, handshakes, closes it), or waits for another thread that
//! does: no deadlock, no application data before the decision, the validator asked once.
//! Every wait is bounded, so a deadlock fails the test instead of hanging it.

use crate::common;

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread;
use std::time::Duration;

use common::*;
use virtpki::session::{SessionFlags, SharedSession};
use virtpki::{ContextFlags, ErrorKind, ValidationRequest, ValidatorAnswer};

type Shared = SharedSession<UnixStream>;

/// Long enough for any handshake here; reaching it means a deadlock.
const WATCHDOG: Duration = Duration::from_secs(20);

/// A client session over blocking sockets whose validator runs `call` on the session it
/// verifies (and accepts), its handshake running in a thread of its own; the server
/// handshakes in another.
struct Started {
    client: Arc<Shared>,
    handshake: Receiver<virtpki::Result<()>>,
    /// What `call` returned.
    seen: Arc<Mutex<String>>,
    calls: Arc<AtomicUsize>,
    server: Receiver<virtpki::Result<Shared>>,
}

fn start(flags: SessionFlags, call: impl Fn(&Shared) -> String + Send + Sync + 'static) -> Started {
    let p = pki();
    let ctx = client_ctx(&p, ContextFlags::default());
    let slot: Arc<OnceLock<Weak<Shared>>> = Arc::new(OnceLock::new());
    let seen = Arc::new(Mutex::new(String::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    {
        let (slot, seen, calls) = (Arc::clone(&slot), Arc::clone(&seen), Arc::clone(&calls));
        ctx.set_validator(Some(Arc::new(move |_: &ValidationRequest<'_>| {
            calls.fetch_add(1, Ordering::SeqCst);
            if let Some(s) = slot.get().and_then(Weak::upgrade) {
                *seen.lock().unwrap() = call(&s);
            }
            ValidatorAnswer::AcceptOnce
        })));
    }
    let (a, b) = UnixStream::pair().unwrap();
    let server = server_ctx(&p);
    let (stx, srx) = channel();
    thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, flags).unwrap();
        let _ = stx.send(s.handshake().map(|_| s));
    });
    let client = Arc::new(SharedSession::start_client(&ctx, a, "localhost", None, flags).unwrap());
    slot.set(Arc::downgrade(&client)).unwrap();
    let (tx, rx) = channel();
    {
        let client = Arc::clone(&client);
        thread::spawn(move || {
            let _ = tx.send(client.handshake());
        });
    }
    Started {
        client,
        handshake: rx,
        seen,
        calls,
        server: srx,
    }
}

/// [`start`]'s handshake, finished.
struct Run {
    client: Arc<Shared>,
    handshake: virtpki::Result<()>,
    seen: String,
    calls: usize,
    server: Receiver<virtpki::Result<Shared>>,
}

fn run(flags: SessionFlags, call: impl Fn(&Shared) -> String + Send + Sync + 'static) -> Run {
    finish(start(flags, call))
}

fn finish(st: Started) -> Run {
    let handshake = st
        .handshake
        .recv_timeout(WATCHDOG)
        .expect("deadlock: the validator's call into its own session never returned");
    let seen = st.seen.lock().unwrap().clone();
    Run {
        client: st.client,
        handshake,
        seen,
        calls: st.calls.load(Ordering::SeqCst),
        server: st.server,
    }
}

fn server_of(server: &Receiver<virtpki::Result<Shared>>) -> virtpki::Result<Shared> {
    server
        .recv_timeout(WATCHDOG)
        .expect("the server's handshake never returned")
}

#[test]
fn the_validator_asks_the_session_for_the_peer_certificate_and_dn() {
    let r = run(SessionFlags::LIBVIRT_CONFIRM, |s| {
        format!(
            "certs={} dn={:?} established={} wants={:?}",
            s.peer_certificates().len(),
            s.peer_dn(),
            s.is_established(),
            s.wants()
        )
    });
    r.handshake.as_ref().unwrap();
    // Not the session's peer yet: verification has not decided (the validator is given the
    // certificate itself).
    // wants: the interest from before the peer's messages were taken in (the handshake was
    // reading them; nothing unsent on a blocking socket).
    assert_eq!(
        r.seen,
        "certs=0 dn=None established=false wants=(true, false)"
    );
    assert_eq!(r.calls, 1);
    assert_eq!(
        r.client.peer_dn().unwrap(),
        "CN=localhost",
        "known once verified"
    );
    server_of(&r.server).unwrap();
}

#[test]
fn the_validator_reads_and_writes_the_session_and_nothing_goes_out() {
    let r = run(SessionFlags::LIBVIRT_CONFIRM, |s| {
        let mut buf = [0u8; 8];
        format!(
            "write={:?} read={:?} read0={:?} flush={:?}",
            s.write(b"leak").map_err(|e| e.kind()),
            s.read(&mut buf).map_err(|e| e.kind()),
            s.read(&mut []).map_err(|e| e.kind()),
            s.flush_output().map_err(|e| e.kind()),
        )
    });
    r.handshake.as_ref().unwrap();
    assert_eq!(
        r.seen,
        "write=Err(InvalidArg) read=Err(InvalidArg) read0=Err(InvalidArg) flush=Ok(())"
    );
    assert_eq!(r.calls, 1);
    // The first application bytes the server gets are the ones written after the handshake.
    let s = server_of(&r.server).unwrap();
    assert_eq!(r.client.write(b"ping").unwrap(), 4);
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"ping");
}

#[test]
fn the_validator_calls_handshake_on_its_own_session() {
    let r = run(SessionFlags::LIBVIRT_CONFIRM, |s| match s.handshake() {
        Ok(()) => "Ok".into(),
        Err(e) => format!("{:?}: {}", e.kind(), e.message()),
    });
    assert!(r.seen.starts_with("InvalidArg: "), "{}", r.seen);
    assert!(r.seen.contains("validator"), "{}", r.seen);
    // The refused inner call does not fail the handshake it was made from.
    r.handshake.as_ref().unwrap();
    assert_eq!(r.calls, 1, "the validator runs once per handshake");
    r.client.handshake().unwrap();
    assert_eq!(r.calls, 1);
    server_of(&r.server).unwrap();
}

#[test]
fn the_validator_closes_its_own_session() {
    let r = run(SessionFlags::LIBVIRT_CONFIRM, |s| match s.close() {
        Ok(()) => "Ok".into(),
        Err(e) => format!("{:?}: {}", e.kind(), e.message()),
    });
    assert!(r.seen.starts_with("Tls: "), "{}", r.seen);
    assert!(r.seen.contains("shut down"), "{}", r.seen);
    let err = r.handshake.as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("closed"), "{err}");
    assert_eq!(r.calls, 1);
    assert!(!r.client.is_established());
    let mut buf = [0u8; 4];
    assert!(r.client.read(&mut buf).is_err());
    assert!(r.client.write(b"x").is_err());
    // close_notify was never sent: a second Close does not claim it was.
    let again = r.client.close().unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Tls, "{again}");
    // The server does not hang: it sees the connection end.
    assert!(server_of(&r.server).is_err());
}

/// A validator that tells `entered` it runs, then waits (bounded) for `go`.
fn waiting_validator(
    entered: Sender<()>,
    go: Receiver<()>,
) -> impl Fn(&Shared) -> String + Send + Sync + 'static {
    let entered = Mutex::new(entered);
    let go = Mutex::new(go);
    move |_: &Shared| {
        entered.lock().unwrap().send(()).unwrap();
        match go.lock().unwrap().recv_timeout(WATCHDOG) {
            Ok(()) => "released".into(),
            Err(_) => "timed out".into(),
        }
    }
}

#[test]
fn a_close_from_another_thread_while_the_validator_waits_returns_and_ends_the_handshake() {
    // An application's validator that asks its user (another thread) while that thread closes
    // the connection: the close must not wait for the validator.
    let (entered_tx, entered) = channel();
    let (go, go_rx) = channel();
    let st = start(
        SessionFlags::LIBVIRT_CONFIRM,
        waiting_validator(entered_tx, go_rx),
    );
    entered.recv_timeout(WATCHDOG).unwrap();
    // Meanwhile other threads use the session: no data may go in or out before the decision.
    let mut buf = [0u8; 4];
    assert_eq!(
        st.client.write(b"early").unwrap_err().kind(),
        ErrorKind::InvalidArg
    );
    assert_eq!(
        st.client.read(&mut buf).unwrap_err().kind(),
        ErrorKind::InvalidArg
    );
    let (ctx, crx) = channel();
    {
        let client = Arc::clone(&st.client);
        thread::spawn(move || {
            let _ = ctx.send(client.close());
        });
    }
    let closed = crx
        .recv_timeout(WATCHDOG)
        .expect("close waited for the validator");
    let e = closed.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(e.message().contains("close_notify not sent"), "{e}");
    // Nor does a second Close meanwhile: close_notify was never queued, let alone sent.
    let closer = Arc::clone(&st.client);
    let second = within_watchdog(move || closer.close()).unwrap_err();
    assert_eq!(second.kind(), ErrorKind::Tls, "{second}");
    go.send(()).unwrap();
    let r = finish(st);
    assert_eq!(r.seen, "released");
    let err = r.handshake.as_ref().unwrap_err();
    assert!(err.message().contains("closed"), "{err}");
    assert_eq!(r.calls, 1);
    assert!(
        server_of(&r.server).is_err(),
        "the server saw the connection end"
    );
}

#[test]
fn a_validator_that_panics_fails_the_handshake_for_good() {
    // The connection taken out of the lock comes back: later calls get a clear error, not a
    // "held by its handshake" forever or a hang.
    let st = start(SessionFlags::default(), |_| panic!("a validator's bug"));
    assert!(
        st.handshake.recv_timeout(WATCHDOG).is_err(),
        "the panic ends the handshake's thread"
    );
    let err = st.client.handshake().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(err.message().contains("validator panicked"), "{err}");
    assert_eq!(
        st.client.write(b"x").unwrap_err().kind(),
        ErrorKind::Internal
    );
    assert_eq!(st.client.wants(), (false, false));
    let _ = within_watchdog(move || st.client.close());
}

fn within_watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(WATCHDOG).expect("never returned")
}

#[test]
fn the_validator_calls_back_into_its_context() {
    // The rest of the class: the context's own locks are not held while the validator runs
    // (it may replace itself, read the credentials, reload, set the time).
    let p = pki();
    let ctx = client_ctx(&p, ContextFlags::default());
    let weak = Arc::downgrade(&ctx);
    let calls = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&calls);
    ctx.set_validator(Some(Arc::new(move |_: &ValidationRequest<'_>| {
        count.fetch_add(1, Ordering::SeqCst);
        if let Some(ctx) = weak.upgrade() {
            let _ = ctx.credentials();
            let _ = ctx.validator();
            let _ = ctx.known_servers();
            let _ = ctx.allowed_dn_list();
            let _ = ctx.reload();
            ctx.set_verify_time(Some(ctx.now()));
            let _ = ctx.set_validator(None);
        }
        ValidatorAnswer::AcceptOnce
    })));
    let (a, b) = UnixStream::pair().unwrap();
    let server = server_ctx(&p);
    thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, SessionFlags::LIBVIRT_CONFIRM).unwrap();
        let _ = s.handshake();
    });
    let c = SharedSession::start_client(&ctx, a, "localhost", None, SessionFlags::LIBVIRT_CONFIRM)
        .unwrap();
    within_watchdog(move || c.handshake()).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(ctx.validator().is_none(), "it removed itself");
}

#[test]
fn a_handshake_waiting_in_another_thread_when_the_validator_rejects_returns_the_failure() {
    // Thread B calls handshake while thread A's validator runs; the validator then rejects.
    // B must get the failure, not go on to read the socket of a handshake that has failed:
    // the peer here keeps the connection open and silent (as a hostile server may), so such a
    // read never returns on a blocking socket. Repeated: B racing A for the receive lock.
    for round in 0..200 {
        let p = pki();
        let ctx = client_ctx(&p, ContextFlags::default());
        let (entered_tx, entered) = channel();
        let (go, go_rx) = channel::<()>();
        let (entered_tx, go_rx) = (Mutex::new(entered_tx), Mutex::new(go_rx));
        ctx.set_validator(Some(Arc::new(move |_: &ValidationRequest<'_>| {
            entered_tx.lock().unwrap().send(()).unwrap();
            let _ = go_rx.lock().unwrap().recv_timeout(WATCHDOG);
            ValidatorAnswer::Reject
        })));
        let (a, b) = UnixStream::pair().unwrap();
        let server = server_ctx(&p);
        let (keep_tx, keep) = channel::<()>();
        thread::spawn(move || {
            let s = SharedSession::start_server(&server, b, SessionFlags::default()).unwrap();
            let _ = s.handshake();
            // The connection stays open, and nothing more is sent, until the round ends.
            let _ = keep.recv_timeout(WATCHDOG);
            drop(s);
        });
        let c = Arc::new(
            SharedSession::start_client(&ctx, a, "localhost", None, SessionFlags::default())
                .unwrap(),
        );
        let (atx, arx) = channel();
        {
            let c = Arc::clone(&c);
            thread::spawn(move || {
                let _ = atx.send(c.handshake());
            });
        }
        entered.recv_timeout(WATCHDOG).unwrap();
        let (btx, brx) = channel();
        {
            let c = Arc::clone(&c);
            thread::spawn(move || {
                let _ = btx.send(c.handshake());
            });
        }
        thread::sleep(Duration::from_millis(2));
        go.send(()).unwrap();
        let a_err = arx.recv_timeout(WATCHDOG).unwrap().unwrap_err();
        let b_err = brx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| {
                panic!("round {round}: the waiting handshake read a failed connection")
            })
            .unwrap_err();
        assert_eq!(b_err.kind(), a_err.kind(), "{b_err} / {a_err}");
        drop(keep_tx);
    }
}

#[test]
fn a_handshake_waiting_in_another_thread_when_the_validator_panics_gets_the_clear_error() {
    let (entered_tx, entered) = channel();
    let (go, go_rx) = channel::<()>();
    let (entered_tx, go_rx) = (Mutex::new(entered_tx), Mutex::new(go_rx));
    let st = start(SessionFlags::default(), move |_| {
        entered_tx.lock().unwrap().send(()).unwrap();
        let _ = go_rx.lock().unwrap().recv_timeout(WATCHDOG);
        panic!("a validator's bug")
    });
    entered.recv_timeout(WATCHDOG).unwrap();
    let (btx, brx) = channel();
    {
        let c = Arc::clone(&st.client);
        thread::spawn(move || {
            let _ = btx.send(c.handshake());
        });
    }
    thread::sleep(Duration::from_millis(100));
    go.send(()).unwrap();
    assert!(
        st.handshake.recv_timeout(WATCHDOG).is_err(),
        "the panic ends the handshake's thread"
    );
    let err = brx.recv_timeout(WATCHDOG).unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(err.message().contains("validator panicked"), "{err}");
}

#[test]
fn a_handshake_run_while_the_thread_unwinds_an_unrelated_panic_is_not_failed() {
    // The panic check of the lent connection is about the validator's panic only: a
    // handshake driven from a destructor while something else unwinds (a guard that finishes
    // a connection) completes as any other.
    struct OnDrop(Option<Box<dyn FnOnce()>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    let p = pki();
    let ctx = client_ctx(&p, ContextFlags::default());
    let (a, b) = UnixStream::pair().unwrap();
    let server = server_ctx(&p);
    let srv = thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, SessionFlags::default()).unwrap();
        s.handshake().map(|_| s)
    });
    let c = Arc::new(
        SharedSession::start_client(&ctx, a, "localhost", None, SessionFlags::default()).unwrap(),
    );
    let (tx, rx) = channel();
    let inner = Arc::clone(&c);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _guard = OnDrop(Some(Box::new(move || {
            let _ = tx.send(inner.handshake());
        })));
        panic!("unrelated to the session");
    }));
    assert!(unwound.is_err());
    rx.recv_timeout(WATCHDOG).unwrap().unwrap();
    assert!(c.is_established());
    srv.join().unwrap().unwrap();
}

#[test]
fn a_validator_that_closes_its_session_then_rejects_gives_the_rejection() {
    let p = pki();
    let ctx = client_ctx(&p, ContextFlags::default());
    let slot: Arc<OnceLock<Weak<Shared>>> = Arc::new(OnceLock::new());
    {
        let slot = Arc::clone(&slot);
        ctx.set_validator(Some(Arc::new(move |_: &ValidationRequest<'_>| {
            if let Some(s) = slot.get().and_then(Weak::upgrade) {
                let _ = s.close();
            }
            ValidatorAnswer::Reject
        })));
    }
    let (a, b) = UnixStream::pair().unwrap();
    let server = server_ctx(&p);
    thread::spawn(move || {
        let s = SharedSession::start_server(&server, b, SessionFlags::default()).unwrap();
        let _ = s.handshake();
    });
    let c = Arc::new(
        SharedSession::start_client(&ctx, a, "localhost", None, SessionFlags::default()).unwrap(),
    );
    slot.set(Arc::downgrade(&c)).unwrap();
    let h = Arc::clone(&c);
    let err = within_watchdog(move || h.handshake()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert_eq!(c.handshake().unwrap_err().kind(), ErrorKind::Rejected);
}
