//! `SharedSession::record_peer`: ACCEPT_ALWAYS given after the handshake (virtpki.aio's
//! coroutine validators) records what the validator was asked about in that session, in the
//! same store and by the same rule as an answer given inside it, and nothing else.

use crate::common;

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use virtpki::session::{SessionFlags, SharedSession};
use virtpki::{
    Context, ContextFlags, Error, ErrorKind, KnownServer, KnownServersStore, MemoryKnownServers,
    TrustStatus, ValidationRequest, ValidatorAnswer,
};

/// A client that does not know the server's CA (an unknown issuer, which the validator is
/// asked about with PROMPT_UNVERIFIED), whose validator answers `answer` and counts its calls.
fn prompting_client(p: &Pki, answer: ValidatorAnswer) -> (Arc<Context>, Arc<AtomicUsize>) {
    let other = self_signed(&Spec::ca("Another CA"));
    let ctx = context(ContextFlags::PROMPT_UNVERIFIED, Some(&other));
    with_identity(&ctx, &p.client, false);
    let calls = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&calls);
    ctx.set_validator(Some(Arc::new(move |_: &ValidationRequest<'_>| {
        count.fetch_add(1, Ordering::SeqCst);
        answer
    })));
    (ctx, calls)
}

type Pair = (SharedSession<UnixStream>, SharedSession<UnixStream>);

/// Client and server sessions on a socketpair (blocking: each handshake in its own thread).
fn started(p: &Pki, client: &Arc<Context>, port: Option<u16>) -> Pair {
    let (a, b) = UnixStream::pair().unwrap();
    let flags = SessionFlags::LIBVIRT_CONFIRM;
    let c = SharedSession::start_client(client, a, "localhost", port, flags).unwrap();
    let s = SharedSession::start_server(&server_ctx(p), b, flags).unwrap();
    (c, s)
}

fn handshake(pair: &Pair) -> virtpki::Result<()> {
    let (c, s) = pair;
    std::thread::scope(|scope| {
        let server = scope.spawn(|| s.handshake());
        let client = c.handshake();
        let _ = server.join().unwrap();
        client
    })
}

#[test]
fn a_later_accept_always_records_the_entry_and_the_next_handshake_needs_no_validator() {
    let p = pki();
    let (ctx, calls) = prompting_client(&p, ValidatorAnswer::AcceptOnce);
    let store = Arc::new(MemoryKnownServers::new());
    ctx.set_known_servers(Some(store.clone()));
    let pair = started(&p, &ctx, Some(16514));
    // Not handshaken: nothing was asked yet.
    let e = pair.0.record_peer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("before the handshake is done"), "{e}");
    handshake(&pair).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Accepted once: nothing recorded by the handshake.
    assert!(store.entries().unwrap().is_empty());
    pair.0.record_peer().unwrap();
    let der = p.server.der();
    assert_eq!(
        store.lookup("localhost", Some(16514), &der).unwrap(),
        TrustStatus::Trusted
    );
    // Recording twice changes nothing.
    pair.0.record_peer().unwrap();
    assert_eq!(store.entries().unwrap().len(), 1);
    // The server cannot record its client.
    let e = pair.1.record_peer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("server session"), "{e}");

    // The next connection is trusted by the entry: the validator is not asked, and so there
    // is nothing this session could record.
    let again = started(&p, &ctx, Some(16514));
    handshake(&again).unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the validator was asked again"
    );
    let e = again.0.record_peer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("was not asked"), "{e}");
    // Another port is another entry: asked again.
    let other_port = started(&p, &ctx, Some(16515));
    handshake(&other_port).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn the_entry_replaces_the_hosts_old_one_as_an_answer_inside_the_handshake_does() {
    let p = pki();
    let (ctx, _) = prompting_client(&p, ValidatorAnswer::AcceptOnce);
    let store = Arc::new(MemoryKnownServers::new());
    let old = signed_by(&Spec::server("localhost"), &p.ca);
    store.add("localhost", Some(16514), &old.der()).unwrap();
    ctx.set_known_servers(Some(store.clone()));
    let pair = started(&p, &ctx, Some(16514));
    handshake(&pair).unwrap();
    pair.0.record_peer().unwrap();
    let entries = store.entries().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        store
            .lookup("localhost", Some(16514), &p.server.der())
            .unwrap(),
        TrustStatus::Trusted
    );
}

#[test]
fn nothing_is_recorded_for_a_certificate_the_validator_was_not_asked_about() {
    let p = pki();
    // Verified by the CA, no validator: nobody was asked.
    let ctx = client_ctx(&p, ContextFlags::default());
    let store = Arc::new(MemoryKnownServers::new());
    ctx.set_known_servers(Some(store.clone()));
    let pair = started(&p, &ctx, None);
    handshake(&pair).unwrap();
    let e = pair.0.record_peer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(store.entries().unwrap().is_empty());

    // Refused by the validator: the handshake failed, its error comes back.
    let (ctx, _) = prompting_client(&p, ValidatorAnswer::Reject);
    ctx.set_known_servers(Some(store.clone()));
    let pair = started(&p, &ctx, None);
    assert_eq!(handshake(&pair).unwrap_err().kind(), ErrorKind::Rejected);
    let e = pair.0.record_peer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    assert!(store.entries().unwrap().is_empty());
}

#[test]
fn with_no_store_recording_is_a_clear_error() {
    let p = pki();
    let (ctx, _) = prompting_client(&p, ValidatorAnswer::AcceptOnce);
    let pair = started(&p, &ctx, None);
    handshake(&pair).unwrap();
    let e = pair.0.record_peer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("no known-servers store"), "{e}");
    assert!(e.message().contains("localhost"), "{e}");
}

/// A store that finds nothing and cannot be written.
struct Broken;

impl KnownServersStore for Broken {
    fn lookup(&self, _: &str, _: Option<u16>, _: &[u8]) -> virtpki::Result<TrustStatus> {
        Ok(TrustStatus::Unknown)
    }
    fn add(&self, host: &str, _: Option<u16>, _: &[u8]) -> virtpki::Result<()> {
        Err(Error::new(ErrorKind::Store, format!("cannot write {host}")))
    }
    fn remove(&self, _: &str, _: Option<u16>) -> virtpki::Result<bool> {
        Ok(false)
    }
    fn entries(&self) -> virtpki::Result<Vec<KnownServer>> {
        Ok(Vec::new())
    }
}

#[test]
fn a_store_write_error_is_the_stores_error() {
    let p = pki();
    let (ctx, _) = prompting_client(&p, ValidatorAnswer::AcceptOnce);
    ctx.set_known_servers(Some(Arc::new(Broken)));
    let pair = started(&p, &ctx, None);
    handshake(&pair).unwrap();
    let e = pair.0.record_peer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store, "{e}");
    assert!(e.message().contains("cannot write localhost"), "{e}");
    // The session is unchanged: still usable.
    assert!(pair.0.is_established());
}

#[test]
fn a_store_set_or_replaced_after_the_validator_was_asked_is_not_written() {
    // The validator was told what the store it was asked against knew (CHANGED or not);
    // another store may hold another certificate for this host, which a record would
    // replace without the validator ever having been warned: refused, nothing written.
    let p = pki();
    let (ctx, _) = prompting_client(&p, ValidatorAnswer::AcceptOnce);
    let asked_against = Arc::new(MemoryKnownServers::new());
    ctx.set_known_servers(Some(asked_against.clone()));
    let pair = started(&p, &ctx, Some(16514));
    handshake(&pair).unwrap();
    let other = Arc::new(MemoryKnownServers::new());
    let old = signed_by(&Spec::server("localhost"), &p.ca);
    other.add("localhost", Some(16514), &old.der()).unwrap();
    ctx.set_known_servers(Some(other.clone()));
    let e = pair.0.record_peer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("replaced"), "{e}");
    assert_eq!(
        other.lookup("localhost", Some(16514), &old.der()).unwrap(),
        TrustStatus::Trusted,
        "the other store's entry was replaced"
    );
    assert!(asked_against.entries().unwrap().is_empty());
    // Put back: the store it was asked against is written.
    ctx.set_known_servers(Some(asked_against.clone()));
    pair.0.record_peer().unwrap();
    assert_eq!(asked_against.entries().unwrap().len(), 1);

    // No store when asked, one set afterwards: the same refusal.
    let (ctx, _) = prompting_client(&p, ValidatorAnswer::AcceptOnce);
    let pair = started(&p, &ctx, Some(16514));
    handshake(&pair).unwrap();
    ctx.set_known_servers(Some(other.clone()));
    let e = pair.0.record_peer().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArg, "{e}");
    assert!(e.message().contains("replaced"), "{e}");
    assert_eq!(other.entries().unwrap().len(), 1);
}

#[test]
fn the_session_called_from_inside_its_own_validator_is_an_error_not_a_deadlock() {
    // A validator that records (or asks anything of the session) during the handshake it is
    // called from: the validator runs outside the session's TLS lock (see
    // validator_reentry.rs), and each call is refused because the handshake is not done.
    let p = pki();
    let other = self_signed(&Spec::ca("Another CA"));
    let ctx = context(ContextFlags::PROMPT_UNVERIFIED, Some(&other));
    with_identity(&ctx, &p.client, false);
    ctx.set_known_servers(Some(Arc::new(MemoryKnownServers::new())));
    let slot: Arc<std::sync::OnceLock<Arc<SharedSession<UnixStream>>>> = Arc::default();
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let (inner, log) = (Arc::clone(&slot), Arc::clone(&seen));
    ctx.set_validator(Some(Arc::new(move |_: &ValidationRequest<'_>| {
        let session = inner.get().unwrap();
        let mut log = log.lock().unwrap();
        assert_eq!(session.peer_dn(), None);
        for e in [
            session.record_peer().err(),
            session.read(&mut [0u8; 4]).err(),
            session.write(b"x").err(),
            session.handshake().err(),
        ] {
            log.push(
                e.map(|e| format!("{:?}: {}", e.kind(), e.message()))
                    .unwrap_or_default(),
            );
        }
        ValidatorAnswer::AcceptOnce
    })));
    let (a, b) = UnixStream::pair().unwrap();
    let flags = SessionFlags::LIBVIRT_CONFIRM;
    let c = SharedSession::start_client(&ctx, a, "localhost", Some(16514), flags).unwrap();
    let s = SharedSession::start_server(&server_ctx(&p), b, flags).unwrap();
    let c = Arc::new(c);
    assert!(slot.set(Arc::clone(&c)).is_ok());
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let server = std::thread::spawn(move || s.handshake());
        let client = c.handshake();
        let _ = server.join();
        let _ = done.send(client);
    });
    let client = result
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("deadlock: the session was called from inside its validator");
    client.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4, "{seen:?}");
    // Each refused as a usage error (the handshake is not done), none waiting for itself.
    for message in seen.iter() {
        assert!(message.starts_with("InvalidArg"), "{seen:?}");
    }
}
