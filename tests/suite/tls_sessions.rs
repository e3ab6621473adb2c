//! Mutual-TLS handshakes over loopback TCP between sessions built by the library: every
//! acceptance and every refusal of the verification procedure, asserted on the side that fails.

use crate::common;

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use virtpki::session::{Session, SessionFlags};
use virtpki::{
    CertDataType, Context, ContextFlags, ErrorKind, ValidateFlags, ValidationRequest,
    ValidatorAnswer,
};

/// Serves one connection: handshake, read a line, echo it; returns the client's DN.
fn serve(ctx: Arc<Context>, flags: SessionFlags) -> (u16, JoinHandle<virtpki::Result<String>>) {
    serve_on(0, ctx, flags)
}

/// Like `serve`, on a given port (0: any); std sets SO_REUSEADDR, so a port can serve again.
fn serve_on(
    port: u16,
    ctx: Arc<Context>,
    flags: SessionFlags,
) -> (u16, JoinHandle<virtpki::Result<String>>) {
    serve_one(port, move |stream| {
        let mut s = Session::server(&ctx, stream, flags)?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf)?;
        s.write_all(&buf[..n])?;
        s.close()?;
        Ok(s.peer_dn().unwrap_or_default())
    })
}

/// Connects, sends "ping", expects it back.
fn connect(ctx: &Arc<Context>, host: &str, port: u16, flags: SessionFlags) -> virtpki::Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut s = Session::client(ctx, stream, host, Some(port), flags)?;
    s.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = s.read(&mut buf[got..])?;
        assert!(n > 0, "the server closed early");
        got += n;
    }
    assert_eq!(&buf, b"ping");
    s.close()
}

/// Runs a connection where the client must fail with `kind`.
fn client_fails(
    server: Arc<Context>,
    client: &Arc<Context>,
    host: &str,
    kind: ErrorKind,
) -> String {
    let (port, handle) = serve(server, SessionFlags::default());
    let err = connect(client, host, port, SessionFlags::default()).unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    let _ = handle.join().unwrap();
    err.message().to_owned()
}

#[test]
fn mutual_tls_succeeds_and_the_daemon_sees_the_client_dn() {
    let p = pki();
    for flags in [SessionFlags::default(), SessionFlags::LIBVIRT_CONFIRM] {
        let (port, handle) = serve(server_ctx(&p), flags);
        connect(
            &client_ctx(&p, ContextFlags::default()),
            "localhost",
            port,
            flags,
        )
        .unwrap();
        assert_eq!(handle.join().unwrap().unwrap(), "C=GB,O=Test,CN=client1");
    }
    // By IP address, brackets or not, through the IP SAN.
    let (port, handle) = serve(server_ctx(&p), SessionFlags::default());
    connect(
        &client_ctx(&p, ContextFlags::default()),
        "127.0.0.1",
        port,
        SessionFlags::default(),
    )
    .unwrap();
    handle.join().unwrap().unwrap();
}

#[test]
fn a_write_larger_than_the_tls_buffer() {
    // rustls buffers at most 64 KiB of plaintext: write_all must send the rest in pieces.
    let p = pki();
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = server_ctx(&p);
    let handle = std::thread::spawn(move || -> virtpki::Result<usize> {
        let (stream, _) = listener.accept().unwrap();
        let mut s = Session::server(&server, stream, SessionFlags::default())?;
        let (mut total, mut buf) = (0, [0u8; 16384]);
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    });
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client = client_ctx(&p, ContextFlags::default());
    let mut s =
        Session::client(&client, stream, "localhost", None, SessionFlags::default()).unwrap();
    s.write_all(&vec![7u8; 1 << 20]).unwrap();
    s.close().unwrap();
    assert_eq!(handle.join().unwrap().unwrap(), 1 << 20);
}

#[test]
fn unknown_ca() {
    let p = pki();
    let other = self_signed(&Spec::ca("Other CA"));
    let client = context(ContextFlags::default(), Some(&other));
    let msg = client_fails(
        server_ctx(&p),
        &client,
        "localhost",
        ErrorKind::UnknownIssuer,
    );
    assert!(
        msg.contains("CN=localhost") && msg.contains("known issuer"),
        "{msg}"
    );
}

#[test]
fn expired_and_not_yet_valid_leaves_and_cas() {
    let p = pki();
    let client = client_ctx(&p, ContextFlags::default());
    // Expired server certificate.
    let expired = signed_by(
        &Spec::server("localhost").valid(date(2020, 1, 1), date(2026, 1, 1)),
        &p.ca,
    );
    let server = context(ContextFlags::default(), Some(&p.ca));
    with_identity(&server, &expired, true);
    client_fails(server, &client, "localhost", ErrorKind::Expired);
    // Not yet valid.
    let future = signed_by(
        &Spec::server("localhost").valid(date(2027, 1, 1), date(2028, 1, 1)),
        &p.ca,
    );
    let server = context(ContextFlags::default(), Some(&p.ca));
    with_identity(&server, &future, true);
    client_fails(server, &client, "localhost", ErrorKind::NotYetValid);
    // An expired CA: webpki does not check anchors, virtpki does.
    let old_ca = self_signed(&Spec::ca("Old CA").valid(date(2020, 1, 1), date(2026, 1, 1)));
    let leaf = signed_by(&Spec::server("localhost"), &old_ca);
    let server = context(ContextFlags::NO_SANITY, Some(&old_ca));
    with_identity(&server, &leaf, true);
    let client = context(ContextFlags::default(), Some(&old_ca));
    let msg = client_fails(server, &client, "localhost", ErrorKind::Expired);
    assert!(
        msg.contains("CA certificate") && msg.contains("CN=Old CA"),
        "{msg}"
    );
}

#[test]
fn revoked_server() {
    let p = pki();
    let serial = 4242u64;
    let revoked = signed_by(
        &Spec {
            serial: Some(serial),
            ..Spec::server("localhost")
        },
        &p.ca,
    );
    let server = context(ContextFlags::default(), Some(&p.ca));
    with_identity(&server, &revoked, true);
    let client = client_ctx(&p, ContextFlags::default());
    client
        .add_pem(CertDataType::CaCrl, &crl_pem(&p.ca, &[serial]))
        .unwrap();
    client_fails(server, &client, "localhost", ErrorKind::Revoked);
}

#[test]
fn wrong_host_name() {
    let p = pki();
    let msg = client_fails(
        server_ctx(&p),
        &client_ctx(&p, ContextFlags::default()),
        "other.example.com",
        ErrorKind::HostnameMismatch,
    );
    assert!(
        msg.contains("other.example.com") && msg.contains("DNS:localhost"),
        "{msg}"
    );
    // An IP the certificate does not list.
    client_fails(
        server_ctx(&p),
        &client_ctx(&p, ContextFlags::default()),
        "[::1]",
        ErrorKind::HostnameMismatch,
    );
}

#[test]
fn cn_only_server_accepted_by_default_refused_with_require_san() {
    let p = pki();
    let cn_only = signed_by(
        &Spec {
            dns: vec![],
            ..Spec::server("localhost")
        },
        &p.ca,
    );
    let server = || {
        let s = context(ContextFlags::default(), Some(&p.ca));
        with_identity(&s, &cn_only, true);
        s
    };
    let (port, handle) = serve(server(), SessionFlags::default());
    connect(
        &client_ctx(&p, ContextFlags::default()),
        "localhost",
        port,
        SessionFlags::default(),
    )
    .unwrap();
    handle.join().unwrap().unwrap();
    let msg = client_fails(
        server(),
        &client_ctx(&p, ContextFlags::REQUIRE_SAN),
        "localhost",
        ErrorKind::HostnameMismatch,
    );
    assert!(msg.contains("no Common Name fallback"), "{msg}");
    // A CN never matches an IP address.
    let cn_ip = signed_by(
        &Spec {
            dns: vec![],
            ..Spec::server("127.0.0.1")
        },
        &p.ca,
    );
    let s = context(ContextFlags::default(), Some(&p.ca));
    with_identity(&s, &cn_ip, true);
    client_fails(
        s,
        &client_ctx(&p, ContextFlags::default()),
        "127.0.0.1",
        ErrorKind::HostnameMismatch,
    );
}

#[test]
fn dn_not_allowed_fails_on_the_daemon_and_the_client_is_told() {
    let p = pki();
    let server = server_ctx(&p);
    server
        .set_allowed_dn_list(Some(&["C=GB,O=Test,CN=admin*"]))
        .unwrap();
    let (port, handle) = serve(Arc::clone(&server), SessionFlags::LIBVIRT_CONFIRM);
    let err = connect(
        &client_ctx(&p, ContextFlags::default()),
        "localhost",
        port,
        SessionFlags::LIBVIRT_CONFIRM,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("did not confirm"), "{err}");
    let server_err = handle.join().unwrap().unwrap_err();
    assert_eq!(server_err.kind(), ErrorKind::DnNotAllowed, "{server_err}");
    assert!(
        server_err.message().contains("tls_allowed_dn_list")
            && server_err.message().contains("CN=client1"),
        "{server_err}"
    );
    // The same client matches a pattern in libvirt's (encoding) order.
    server
        .set_allowed_dn_list(Some(&["C=GB,O=Test,CN=client*"]))
        .unwrap();
    let (port, handle) = serve(server, SessionFlags::LIBVIRT_CONFIRM);
    connect(
        &client_ctx(&p, ContextFlags::default()),
        "localhost",
        port,
        SessionFlags::LIBVIRT_CONFIRM,
    )
    .unwrap();
    handle.join().unwrap().unwrap();
}

#[test]
fn a_client_without_certificate_is_refused() {
    let p = pki();
    let (port, handle) = serve(server_ctx(&p), SessionFlags::LIBVIRT_CONFIRM);
    let anonymous = context(ContextFlags::default(), Some(&p.ca));
    let err = connect(&anonymous, "localhost", port, SessionFlags::LIBVIRT_CONFIRM).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert_eq!(handle.join().unwrap().unwrap_err().kind(), ErrorKind::Tls);
}

/// What a recording validator was asked: (trusted, flags) per call.
type Asked = Arc<Mutex<Vec<(bool, ValidateFlags)>>>;

/// Records what the validator was asked and answers `answer`.
fn recording_validator(answer: ValidatorAnswer) -> (Asked, Arc<dyn virtpki::CertificateValidator>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let v = move |r: &ValidationRequest<'_>| {
        log.lock().unwrap().push((r.trusted, r.flags));
        answer
    };
    (seen, Arc::new(v))
}

#[test]
fn validator_reject_and_accept_always_then_trusted_on_a_new_context() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("known_servers");
    // Reject.
    let client = client_ctx(&p, ContextFlags::default());
    let (seen, v) = recording_validator(ValidatorAnswer::Reject);
    client.set_validator(Some(v));
    let msg = client_fails(server_ctx(&p), &client, "localhost", ErrorKind::Rejected);
    assert!(msg.contains("localhost"), "{msg}");
    assert_eq!(*seen.lock().unwrap(), [(false, ValidateFlags::default())]);
    // Accept always: recorded in the store.
    let client = client_ctx(&p, ContextFlags::default());
    client.set_known_servers_file(&store).unwrap();
    let (seen, v) = recording_validator(ValidatorAnswer::AcceptAlways);
    client.set_validator(Some(v));
    let (port, handle) = serve(server_ctx(&p), SessionFlags::default());
    connect(&client, "localhost", port, SessionFlags::default()).unwrap();
    handle.join().unwrap().unwrap();
    assert_eq!(*seen.lock().unwrap(), [(false, ValidateFlags::default())]);
    // A new context on the same file is told the certificate is trusted for this host and port.
    let again = client_ctx(&p, ContextFlags::default());
    again.set_known_servers_file(&store).unwrap();
    let entries = again.known_servers().unwrap().entries().unwrap();
    assert_eq!((entries.len(), entries[0].port()), (1, Some(port)));
    let (seen, v) = recording_validator(ValidatorAnswer::AcceptOnce);
    again.set_validator(Some(v));
    let (_, handle) = serve_on(port, server_ctx(&p), SessionFlags::default());
    connect(&again, "localhost", port, SessionFlags::default()).unwrap();
    handle.join().unwrap().unwrap();
    assert_eq!(*seen.lock().unwrap(), [(true, ValidateFlags::default())]);
}

#[test]
fn changed_certificate_and_renewal_with_the_same_key() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(virtpki::KnownServers::open(dir.path().join("known")).unwrap());
    // Record the current server certificate for any port.
    store.add("localhost", None, p.server.cert.der()).unwrap();
    let run = |server_made: &Made| {
        let server = context(ContextFlags::default(), Some(&p.ca));
        with_identity(&server, server_made, true);
        let client = client_ctx(&p, ContextFlags::default());
        client.set_known_servers(Some(store.clone()));
        let (seen, v) = recording_validator(ValidatorAnswer::AcceptOnce);
        client.set_validator(Some(v));
        let (port, handle) = serve(server, SessionFlags::default());
        connect(&client, "localhost", port, SessionFlags::default()).unwrap();
        handle.join().unwrap().unwrap();
        let seen = seen.lock().unwrap().clone();
        seen
    };
    // A new key.
    let mut spec = Spec::server("localhost");
    spec.ips = vec!["127.0.0.1".parse().unwrap()];
    let rekeyed = signed_by(&spec, &p.ca);
    assert_eq!(run(&rekeyed), [(false, ValidateFlags::CHANGED)]);
    // The same key, renewed.
    let renewed_cert = Spec {
        not_after: date(2029, 6, 1),
        ..spec.clone()
    }
    .params()
    .signed_by(&p.server.key, &p.ca.issuer())
    .unwrap();
    let renewed = Made {
        cert: renewed_cert,
        key: KeyPairClone::clone_key(&p.server.key),
        params: spec.params(),
    };
    assert_eq!(
        run(&renewed),
        [(false, ValidateFlags::CHANGED | ValidateFlags::SAME_KEY)]
    );
    // The recorded one.
    assert_eq!(run(&p.server), [(true, ValidateFlags::default())]);
}

/// rcgen's KeyPair is not Clone: round-trip through PEM.
trait KeyPairClone {
    fn clone_key(&self) -> rcgen::KeyPair;
}

impl KeyPairClone for rcgen::KeyPair {
    fn clone_key(&self) -> rcgen::KeyPair {
        rcgen::KeyPair::from_pem(&self.serialize_pem()).unwrap()
    }
}

#[test]
fn pinned_self_signed_server() {
    let p = pki();
    let mut spec = Spec::server("localhost");
    spec.ca = Some(false);
    let self_signed_server = self_signed(&spec);
    let server = context(ContextFlags::NO_SANITY, None);
    with_identity(&server, &self_signed_server, true);
    server.add_pem(CertDataType::CaCert, &p.ca.pem()).unwrap();
    // Not pinned: unknown issuer.
    client_fails(
        Arc::clone(&server),
        &client_ctx(&p, ContextFlags::default()),
        "localhost",
        ErrorKind::UnknownIssuer,
    );
    // Pinned (VIR_CONNECT_CERT_SERVER_TRUSTED): accepted, the validator is not asked.
    let client = client_ctx(&p, ContextFlags::default());
    client
        .add_pem(CertDataType::ServerTrusted, &self_signed_server.pem())
        .unwrap();
    let (seen, v) = recording_validator(ValidatorAnswer::Reject);
    client.set_validator(Some(v));
    let (port, handle) = serve(Arc::clone(&server), SessionFlags::default());
    connect(&client, "localhost", port, SessionFlags::default()).unwrap();
    handle.join().unwrap().unwrap();
    assert!(seen.lock().unwrap().is_empty());
    // An expired pinned certificate is never accepted.
    let old = self_signed(&Spec {
        ca: Some(false),
        ..Spec::server("localhost").valid(date(2020, 1, 1), date(2026, 1, 1))
    });
    let server = context(ContextFlags::NO_SANITY, Some(&p.ca));
    with_identity(&server, &old, true);
    let client = client_ctx(&p, ContextFlags::default());
    client
        .add_pem(CertDataType::ServerTrusted, &old.pem())
        .unwrap();
    client_fails(server, &client, "localhost", ErrorKind::Expired);
}

#[test]
fn trust_on_first_use_with_prompt_unverified() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("known");
    let mut spec = Spec::server("localhost");
    spec.ca = Some(false);
    let tofu_server = self_signed(&spec);
    let server = || {
        let s = context(ContextFlags::NO_SANITY, Some(&p.ca));
        with_identity(&s, &tofu_server, true);
        s
    };
    let asked = Arc::new(AtomicUsize::new(0));
    let client = || {
        let c = client_ctx(&p, ContextFlags::PROMPT_UNVERIFIED);
        c.set_known_servers_file(&store).unwrap();
        let counter = Arc::clone(&asked);
        c.set_validator(Some(Arc::new(move |r: &ValidationRequest<'_>| {
            counter.fetch_add(1, Ordering::SeqCst);
            assert!(r.flags.contains(ValidateFlags::UNVERIFIED));
            assert!(r
                .failure
                .is_some_and(|f| f.kind() == ErrorKind::UnknownIssuer));
            ValidatorAnswer::AcceptAlways
        })));
        c
    };
    let (port, handle) = serve(server(), SessionFlags::default());
    connect(&client(), "localhost", port, SessionFlags::default()).unwrap();
    handle.join().unwrap().unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    // Next time it is pinned through the store for that port: accepted without asking.
    let c = client();
    let cert = virtpki::Certificate::from_der(tofu_server.der(), virtpki::Source::Data).unwrap();
    let verdict = c
        .verify_server(
            "localhost",
            Some(port),
            std::slice::from_ref(&cert),
            virtpki::VerifyFlags::default(),
        )
        .unwrap();
    assert_eq!(verdict.acceptance, virtpki::Acceptance::Pinned);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    // Without PROMPT_UNVERIFIED the validator is not asked about unverified certificates.
    let strict = client_ctx(&p, ContextFlags::default());
    strict.set_validator(Some(Arc::new(|_: &ValidationRequest<'_>| {
        ValidatorAnswer::AcceptAlways
    })));
    let err = strict
        .verify_server(
            "localhost",
            Some(port),
            &[cert],
            virtpki::VerifyFlags::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownIssuer);
}

#[test]
fn no_verify_accepts_anything_the_validator_is_not_asked() {
    let p = pki();
    let other = self_signed(&Spec::ca("Other CA"));
    let client = context(ContextFlags::default(), Some(&other));
    let (seen, v) = recording_validator(ValidatorAnswer::Reject);
    client.set_validator(Some(v));
    let cert = virtpki::Certificate::from_der(p.server.der(), virtpki::Source::Data).unwrap();
    let verdict = client
        .verify_server(
            "wrong.example.com",
            None,
            &[cert],
            virtpki::VerifyFlags::NO_VERIFY,
        )
        .unwrap();
    assert_eq!(verdict.acceptance, virtpki::Acceptance::NotVerified);
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn a_write_larger_than_the_tls_buffer_goes_out_whole() {
    // rustls buffers 64 KiB of outgoing data and takes no more before it is sent.
    let p = pki();
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = server_ctx(&p);
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut s = Session::server(&server, stream, SessionFlags::default()).unwrap();
        let mut buf = vec![0u8; 16384];
        let mut total = 0;
        loop {
            match s.read(&mut buf).unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    });
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client = client_ctx(&p, ContextFlags::default());
    let mut s = Session::client(
        &client,
        stream,
        "localhost",
        Some(port),
        SessionFlags::default(),
    )
    .unwrap();
    let data = vec![0x5au8; 300 * 1024];
    s.write_all(&data).unwrap();
    s.close().unwrap();
    assert_eq!(handle.join().unwrap(), data.len());
}

#[test]
fn a_pinned_revoked_server_sending_junk_certificates_is_refused() {
    // The server's revoked certificate, followed by five self-issued certificates claiming
    // the CA's name, each signed by a throwaway key: webpki runs out of signature checks.
    let p = pki();
    let mut spec = Spec::server("localhost");
    spec.serial = Some(77);
    let revoked = signed_by(&spec, &p.ca);
    let mut sent = revoked.pem();
    for _ in 0..5 {
        sent.push_str(&self_signed(&Spec::ca("Session CA")).pem());
    }
    let server = || {
        let s = context(ContextFlags::NO_SANITY, Some(&p.ca));
        s.add_pem(CertDataType::ServerCert, &sent).unwrap();
        s.add_pem(CertDataType::ServerKey, &revoked.key_pem())
            .unwrap();
        s
    };
    let crl = crl_pem(&p.ca, &[77]);
    // Pinned.
    let client = client_ctx(&p, ContextFlags::default());
    client.add_pem(CertDataType::CaCrl, &crl).unwrap();
    client
        .add_pem(CertDataType::ServerTrusted, &revoked.pem())
        .unwrap();
    let msg = client_fails(server(), &client, "localhost", ErrorKind::Revoked);
    assert!(msg.contains("revoked"), "{msg}");
    // Known for the host.
    let client = client_ctx(&p, ContextFlags::default());
    client.add_pem(CertDataType::CaCrl, &crl).unwrap();
    let store = Arc::new(virtpki::MemoryKnownServers::new());
    virtpki::KnownServersStore::add(&*store, "localhost", None, revoked.cert.der()).unwrap();
    client.set_known_servers(Some(store));
    client_fails(server(), &client, "localhost", ErrorKind::Revoked);
    // Trust on first use: the validator is never asked.
    let client = client_ctx(&p, ContextFlags::PROMPT_UNVERIFIED);
    client.add_pem(CertDataType::CaCrl, &crl).unwrap();
    let (seen, v) = recording_validator(ValidatorAnswer::AcceptOnce);
    client.set_validator(Some(v));
    client_fails(server(), &client, "localhost", ErrorKind::Revoked);
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn a_pinned_server_certificate_is_not_accepted_for_another_host() {
    let p = pki();
    let mut spec = Spec::server("localhost");
    spec.ca = Some(false);
    let pinned = self_signed(&spec);
    let server = || {
        let s = context(ContextFlags::NO_SANITY, Some(&p.ca));
        with_identity(&s, &pinned, true);
        s
    };
    let client = client_ctx(&p, ContextFlags::default());
    client
        .add_pem(CertDataType::ServerTrusted, &pinned.pem())
        .unwrap();
    // Its own name: accepted.
    let (port, handle) = serve(server(), SessionFlags::default());
    connect(&client, "localhost", port, SessionFlags::default()).unwrap();
    handle.join().unwrap().unwrap();
    // Reached as another host (whoever holds this key would otherwise be every host).
    let msg = client_fails(
        server(),
        &client,
        "bank.example",
        ErrorKind::HostnameMismatch,
    );
    assert!(msg.contains("bank.example"), "{msg}");
}

/// Configurations are made per session, so nothing is kept for a resumption that could never
/// happen: no TLS 1.3 tickets sent, no client cache (an idle client session held 2.5 times the
/// heap with them: make bench's memory report).
#[test]
fn no_session_is_kept_for_resumption() {
    let p = pki();
    let server =
        virtpki::tls::server_config(&server_ctx(&p), virtpki::VerifyFlags::default()).unwrap();
    assert_eq!(server.send_tls13_tickets, 0);
    let client = virtpki::tls::client_config(
        &client_ctx(&p, ContextFlags::default()),
        "localhost",
        None,
        virtpki::VerifyFlags::default(),
    )
    .unwrap();
    // rustls exposes the cache only through Debug: no storage, no TLS 1.2 resumption.
    let resumption = format!("{:?}", client.resumption);
    assert!(
        resumption.contains("NoClientSessionStorage") && resumption.contains("Disabled"),
        "{resumption}"
    );
}
