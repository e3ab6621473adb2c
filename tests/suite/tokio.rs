//! `virtpki::tokio` (the `tokio` feature) over loopback TCP: async against async, async
//! against the blocking session in both directions, libvirt's confirmation byte, the
//! validator asked once per handshake, data in the confirmation byte's record, the blocking
//! client's verdicts (each host-name form, an unknown CA, trust on first use), and the
//! failures (an unknown CA, a refused client, a peer that vanishes mid-handshake, EOF without
//! close_notify, a handshake cancelled by a timeout). `make test` runs them with
//! `--features tokio`.

use crate::common;

use std::net::TcpStream as StdTcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::tokio::io::{AsyncReadExt, AsyncWriteExt};
use ::tokio::net::{TcpListener, TcpStream};
use ::tokio::runtime::{Builder, Runtime};

use common::*;
use virtpki::session::{Session, SessionFlags};
use virtpki::{Context, ContextFlags, ErrorKind, ValidationRequest, ValidatorAnswer};

const CONFIRM: SessionFlags = SessionFlags::LIBVIRT_CONFIRM;

fn runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Accepts one connection, echoes one message, sends close_notify; returns the client's DN.
async fn echo_server(
    l: TcpListener,
    ctx: Arc<Context>,
    flags: SessionFlags,
) -> virtpki::Result<String> {
    let (tcp, _) = l.accept().await.unwrap();
    let mut s = virtpki::tokio::accept(&ctx, tcp, flags).await?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    s.write_all(&buf[..n]).await.unwrap();
    s.shutdown().await.unwrap();
    Ok(s.peer_dn().unwrap_or_default())
}

/// Connects, sends "ping", expects it back and then the server's close_notify (a read of 0).
async fn ping(
    ctx: &Arc<Context>,
    host: &str,
    port: u16,
    flags: SessionFlags,
) -> virtpki::Result<()> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut s = virtpki::tokio::connect(ctx, tcp, host, Some(port), flags).await?;
    assert_eq!(s.peer_certificates()[0].subject(), "CN=localhost");
    assert!(s.protocol_version().is_some());
    s.write_all(b"ping").await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ping");
    Ok(())
}

/// A validator that counts its calls and answers `answer`.
fn counting(ctx: &Context, answer: ValidatorAnswer) -> Arc<AtomicUsize> {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    ctx.set_validator(Some(Arc::new(move |_: &ValidationRequest<'_>| {
        seen.fetch_add(1, Ordering::SeqCst);
        answer
    })));
    calls
}

#[test]
fn async_client_and_server_with_and_without_the_confirmation_byte() {
    let p = pki();
    for flags in [SessionFlags::default(), CONFIRM] {
        runtime().block_on(async {
            let (l, port) = listener().await;
            let server = ::tokio::spawn(echo_server(l, server_ctx(&p), flags));
            let client = client_ctx(&p, ContextFlags::default());
            ping(&client, "localhost", port, flags).await.unwrap();
            assert_eq!(server.await.unwrap().unwrap(), "C=GB,O=Test,CN=client1");
        });
    }
}

#[test]
fn many_concurrent_handshakes_on_one_thread_each_ask_the_validator_once() {
    const N: usize = 16;
    let p = pki();
    let client = client_ctx(&p, ContextFlags::default());
    let calls = counting(&client, ValidatorAnswer::AcceptOnce);
    let server = server_ctx(&p);
    runtime().block_on(async {
        let (l, port) = listener().await;
        let accepting = ::tokio::spawn(async move {
            let mut sessions = Vec::new();
            for _ in 0..N {
                let (tcp, _) = l.accept().await.unwrap();
                let ctx = Arc::clone(&server);
                sessions.push(::tokio::spawn(async move {
                    let mut s = virtpki::tokio::accept(&ctx, tcp, CONFIRM).await?;
                    let mut buf = [0u8; 4];
                    s.read_exact(&mut buf).await.unwrap();
                    s.write_all(&buf).await.unwrap();
                    s.shutdown().await.unwrap();
                    Ok::<_, virtpki::Error>(())
                }));
            }
            for s in sessions {
                s.await.unwrap().unwrap();
            }
        });
        let clients: Vec<_> = (0..N)
            .map(|_| {
                let ctx = Arc::clone(&client);
                ::tokio::spawn(async move { ping(&ctx, "localhost", port, CONFIRM).await })
            })
            .collect();
        for c in clients {
            c.await.unwrap().unwrap();
        }
        accepting.await.unwrap();
    });
    assert_eq!(calls.load(Ordering::SeqCst), N);
}

#[test]
fn async_client_against_the_blocking_server_and_the_reverse() {
    let p = pki();
    // The blocking server sends the 0x01 byte the async client waits for.
    let server = server_ctx(&p);
    let (port, handle) = serve_one(0, move |tcp| -> virtpki::Result<String> {
        let mut s = Session::server(&server, tcp, CONFIRM)?;
        let mut buf = [0u8; 4];
        let n = s.read(&mut buf)?;
        s.write_all(&buf[..n])?;
        s.close()?;
        Ok(s.peer_dn().unwrap_or_default())
    });
    let client = client_ctx(&p, ContextFlags::default());
    runtime()
        .block_on(ping(&client, "localhost", port, CONFIRM))
        .unwrap();
    assert_eq!(handle.join().unwrap().unwrap(), "C=GB,O=Test,CN=client1");

    // The async server sends the byte the blocking client waits for.
    let rt = runtime();
    let (l, port) = rt.block_on(listener());
    let server = rt.spawn(echo_server(l, server_ctx(&p), CONFIRM));
    let thread = std::thread::spawn(move || -> virtpki::Result<()> {
        let tcp = StdTcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut s = Session::client(&client, tcp, "localhost", Some(port), CONFIRM)?;
        s.write_all(b"pong")?;
        let mut buf = [0u8; 4];
        assert_eq!(s.read(&mut buf)?, 4);
        assert_eq!(&buf, b"pong");
        Ok(())
    });
    assert_eq!(
        rt.block_on(server).unwrap().unwrap(),
        "C=GB,O=Test,CN=client1"
    );
    thread.join().unwrap().unwrap();
}

#[test]
fn the_validator_is_asked_once_per_handshake_and_its_rejection_is_the_error() {
    let p = pki();
    // The server's certificate verifies; the validator has the last word on each handshake.
    let client = client_ctx(&p, ContextFlags::default());
    let calls = counting(&client, ValidatorAnswer::AcceptOnce);
    runtime().block_on(async {
        for n in 1..=2 {
            let (l, port) = listener().await;
            let server = ::tokio::spawn(echo_server(l, server_ctx(&p), CONFIRM));
            ping(&client, "localhost", port, CONFIRM).await.unwrap();
            server.await.unwrap().unwrap();
            assert_eq!(calls.load(Ordering::SeqCst), n);
        }
    });

    let client = client_ctx(&p, ContextFlags::default());
    let calls = counting(&client, ValidatorAnswer::Reject);
    let (err, server_err) = runtime().block_on(async {
        let (l, port) = listener().await;
        let server = ::tokio::spawn(echo_server(l, server_ctx(&p), CONFIRM));
        let err = ping(&client, "localhost", port, CONFIRM).await.unwrap_err();
        (err, server.await.unwrap().unwrap_err())
    });
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert!(err.message().contains("localhost"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The client's alert reaches the server as a TLS failure.
    assert_eq!(server_err.kind(), ErrorKind::Tls, "{server_err}");
}

#[test]
fn an_unknown_ca_is_the_library_error_kind() {
    let p = pki();
    let other = self_signed(&Spec::ca("Other CA"));
    let client = context(ContextFlags::default(), Some(&other));
    let err = runtime().block_on(async {
        let (l, port) = listener().await;
        let server = ::tokio::spawn(echo_server(l, server_ctx(&p), SessionFlags::default()));
        let err = ping(&client, "localhost", port, SessionFlags::default())
            .await
            .unwrap_err();
        let _ = server.await.unwrap();
        err
    });
    assert_eq!(err.kind(), ErrorKind::UnknownIssuer, "{err}");
    assert!(err.message().contains("CN=localhost"), "{err}");
}

#[test]
fn a_refused_client_is_told_by_the_missing_confirmation_byte() {
    // TLS 1.3: the client's handshake is over before the server has judged its certificate;
    // the missing 0x01 byte is what tells it.
    let p = pki();
    let anonymous = context(ContextFlags::default(), Some(&p.ca));
    let (client_err, server_err) = runtime().block_on(async {
        let (l, port) = listener().await;
        let server = ::tokio::spawn(echo_server(l, server_ctx(&p), CONFIRM));
        let err = ping(&anonymous, "localhost", port, CONFIRM)
            .await
            .unwrap_err();
        (err, server.await.unwrap().unwrap_err())
    });
    assert_eq!(client_err.kind(), ErrorKind::Tls, "{client_err}");
    assert!(
        client_err.message().contains("did not confirm"),
        "{client_err}"
    );
    assert_eq!(server_err.kind(), ErrorKind::Tls, "{server_err}");
}

#[test]
fn a_peer_that_vanishes_mid_handshake_is_an_error_on_both_sides() {
    let p = pki();
    runtime().block_on(async {
        // The client sends half a ClientHello's record header, then closes.
        let (l, port) = listener().await;
        let server = ::tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            virtpki::tokio::accept(&server_ctx(&p), tcp, CONFIRM)
                .await
                .map(|_| ())
        });
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.write_all(&[0x16, 0x03]).await.unwrap();
        drop(tcp);
        let err = server.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");

        // The server accepts the TCP connection and closes it unanswered.
        let (l, port) = listener().await;
        let server = ::tokio::spawn(async move { drop(l.accept().await.unwrap()) });
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let client = client_ctx(&pki(), ContextFlags::default());
        let err = virtpki::tokio::connect(&client, tcp, "localhost", Some(port), CONFIRM)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        server.await.unwrap();
    });
}

#[test]
fn eof_without_close_notify_is_an_error_not_the_end() {
    let p = pki();
    runtime().block_on(async {
        let (l, port) = listener().await;
        let server_ctx = server_ctx(&p);
        let server = ::tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut s = virtpki::tokio::accept(&server_ctx, tcp, CONFIRM)
                .await
                .unwrap();
            s.write_all(b"partial").await.unwrap();
            s.flush().await.unwrap();
            // The TCP connection goes without close_notify.
            drop(s.into_inner());
        });
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let client = client_ctx(&p, ContextFlags::default());
        let mut s = virtpki::tokio::connect(&client, tcp, "localhost", Some(port), CONFIRM)
            .await
            .unwrap();
        let mut got = Vec::new();
        let err = s.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
        assert_eq!(got, b"partial");
        server.await.unwrap();
    });
}

#[test]
fn a_handshake_that_never_completes_is_cancelled_by_a_timeout() {
    let p = pki();
    runtime().block_on(async {
        // The server accepts the TCP connection and says nothing.
        let (l, port) = listener().await;
        let (stop, stopped) = ::tokio::sync::oneshot::channel::<()>();
        let server = ::tokio::spawn(async move {
            let (_tcp, _) = l.accept().await.unwrap();
            let _ = stopped.await;
        });
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let client = client_ctx(&p, ContextFlags::default());
        let attempt = virtpki::tokio::connect(&client, tcp, "localhost", Some(port), CONFIRM);
        let result = ::tokio::time::timeout(Duration::from_millis(200), attempt).await;
        assert!(result.is_err(), "the handshake cannot complete");
        stop.send(()).unwrap();
        server.await.unwrap();
    });
}

#[test]
fn application_data_in_the_confirmation_record_is_kept() {
    // libvirt's daemon may send the 0x01 byte and the first RPC bytes in one TLS record: the
    // client takes the one byte as the confirmation and reads the rest as data, none lost.
    let p = pki();
    for (first, expect) in [(0x01u8, Ok(b"hello".to_vec())), (0x02, Err(()))] {
        let got = runtime().block_on(async {
            let (l, port) = listener().await;
            let ctx = server_ctx(&p);
            let server = ::tokio::spawn(async move {
                let (tcp, _) = l.accept().await.unwrap();
                // No CONFIRM flag: the byte goes out with the data, in one write (one record).
                let mut s = virtpki::tokio::accept(&ctx, tcp, SessionFlags::default())
                    .await
                    .unwrap();
                let mut record = vec![first];
                record.extend_from_slice(b"hello");
                s.write_all(&record).await.unwrap();
                s.shutdown().await.unwrap();
            });
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let client = client_ctx(&p, ContextFlags::default());
            let got = match virtpki::tokio::connect(&client, tcp, "localhost", Some(port), CONFIRM)
                .await
            {
                Ok(mut s) => {
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).await.unwrap();
                    Ok(got)
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
                    assert!(e.message().contains("sent 0x02 instead"), "{e}");
                    Err(())
                }
            };
            server.await.unwrap();
            got
        });
        assert_eq!(got, expect);
    }
}

/// The client's verdict, blocking and async, against the same kind of blocking server: both
/// results with the port written as PORT (a known-servers message may name it).
fn blocking_and_async(
    server: impl Fn() -> Arc<Context>,
    client: impl Fn() -> Arc<Context>,
    host: &str,
) -> [std::result::Result<(), (ErrorKind, String)>; 2] {
    let serve = |ctx: Arc<Context>| {
        serve_one(0, move |tcp| -> virtpki::Result<()> {
            let mut s = Session::server(&ctx, tcp, CONFIRM)?;
            let mut buf = [0u8; 4];
            let n = s.read(&mut buf)?;
            s.write_all(&buf[..n])?;
            s.close()
        })
    };
    let simplify = |r: virtpki::Result<()>, port: u16| {
        r.map_err(|e| (e.kind(), e.message().replace(&port.to_string(), "PORT")))
    };
    let (port, handle) = serve(server());
    let blocking = (|| {
        let tcp = StdTcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut s = Session::client(&client(), tcp, host, Some(port), CONFIRM)?;
        s.write_all(b"ping")?;
        let mut buf = [0u8; 4];
        s.read(&mut buf)?;
        s.close()
    })();
    let _ = handle.join().unwrap();
    let blocking = simplify(blocking, port);
    let (port, handle) = serve(server());
    let ctx = client();
    let asynchronous = runtime().block_on(async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut s = virtpki::tokio::connect(&ctx, tcp, host, Some(port), CONFIRM).await?;
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        s.shutdown().await.unwrap();
        Ok(())
    });
    let _ = handle.join().unwrap();
    [blocking, simplify(asynchronous, port)]
}

#[test]
fn verification_is_the_blocking_sessions_for_each_host_name_form() {
    let p = pki();
    // A DNS name, its case, an IP address bare and bracketed, an address and names the
    // certificate does not list, and names rustls cannot send as SNI.
    let cases: &[(&str, Option<ErrorKind>)] = &[
        ("localhost", None),
        ("LOCALHOST", None),
        ("127.0.0.1", None),
        ("[127.0.0.1]", None),
        ("other.example.com", Some(ErrorKind::HostnameMismatch)),
        ("[::1]", Some(ErrorKind::HostnameMismatch)),
        ("bad host", Some(ErrorKind::InvalidArg)),
        ("", None),
    ];
    for &(host, kind) in cases {
        let [blocking, asynchronous] = blocking_and_async(
            || server_ctx(&p),
            || client_ctx(&p, ContextFlags::default()),
            host,
        );
        assert_eq!(blocking, asynchronous, "host {host:?}");
        if host.is_empty() {
            continue; // whatever the blocking session says, the async one says too
        }
        assert_eq!(blocking.err().map(|e| e.0), kind, "host {host:?}");
    }
}

#[test]
fn an_unknown_ca_and_trust_on_first_use_go_as_in_the_blocking_session() {
    let p = pki();
    let other = self_signed(&Spec::ca("Other CA"));
    // Unknown CA, no validator.
    let [blocking, asynchronous] = blocking_and_async(
        || server_ctx(&p),
        || context(ContextFlags::default(), Some(&other)),
        "localhost",
    );
    assert_eq!(blocking, asynchronous);
    assert_eq!(blocking.unwrap_err().0, ErrorKind::UnknownIssuer);

    // Unknown CA, asked (PROMPT_UNVERIFIED) and accepted always: recorded, then trusted on the
    // next connection, whichever kind of client made the first and the second.
    let orders = [[true, false], [false, true], [true, true], [false, false]];
    let asked: Vec<_> = orders
        .iter()
        .map(|&order| trust_on_first_use(&p, &other, order))
        .collect();
    assert!(asked.iter().all(|a| *a == asked[0]), "{asked:?}");
    // Asked once; the second connection finds the certificate recorded.
    assert_eq!(asked[0], [false]);
}

/// Two connections (`true`: the async client) to a server whose CA the client lacks, with
/// one known-servers file and a validator that accepts always; what the validator was asked
/// (its `trusted`), in order.
fn trust_on_first_use(p: &Pki, other: &Made, order: [bool; 2]) -> Vec<bool> {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("known_servers");
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = || {
        let ctx = context(ContextFlags::PROMPT_UNVERIFIED, Some(other));
        with_identity(&ctx, &p.client, false);
        ctx.set_known_servers_file(&store).unwrap();
        let log = Arc::clone(&asked);
        ctx.set_validator(Some(Arc::new(move |r: &ValidationRequest<'_>| {
            log.lock().unwrap().push(r.trusted);
            ValidatorAnswer::AcceptAlways
        })));
        ctx
    };
    // The store keys entries by port: both on one port.
    let mut port = 0;
    for asynchronous in order {
        let server = server_ctx(p);
        let (bound, handle) = serve_one(port, move |tcp| {
            let mut s = Session::server(&server, tcp, CONFIRM)?;
            s.close()
        });
        port = bound;
        let ctx = client();
        if asynchronous {
            runtime()
                .block_on(async {
                    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                    let mut s =
                        virtpki::tokio::connect(&ctx, tcp, "localhost", Some(port), CONFIRM)
                            .await?;
                    let mut rest = Vec::new();
                    s.read_to_end(&mut rest).await.unwrap();
                    Ok::<_, virtpki::Error>(())
                })
                .unwrap();
        } else {
            let tcp = StdTcpStream::connect(("127.0.0.1", port)).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            Session::client(&ctx, tcp, "localhost", Some(port), CONFIRM).unwrap();
        }
        handle.join().unwrap().unwrap();
    }
    let asked = asked.lock().unwrap().clone();
    asked
}
