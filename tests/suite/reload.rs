//! `Context::reload`: the files a context loaded are read again, all or nothing, and the new
//! set replaces the old one at once while other threads verify and shake hands.

use crate::common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use virtpki::session::{Session, SessionFlags};
use virtpki::{CertDataType, Context, ContextFlags, ErrorKind, Role, VerifyFlags};

/// Writes `name` atomically (a new file renamed over the old one), mode 0600.
fn put(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    let tmp = write(dir, &format!(".{name}.new"), contents, 0o600);
    std::fs::rename(tmp, dir.join(name)).unwrap();
}

/// Writes a libvirt pkipath directory for `role`: the CA, then the identity `made`.
fn put_set(dir: &Path, role: Role, ca: &Made, made: &Made) {
    put(dir, "cacert.pem", ca.pem());
    put(dir, &format!("{}cert.pem", role.name()), made.pem());
    put(dir, &format!("{}key.pem", role.name()), made.key_pem());
}

/// A context that loaded `dir` as libvirt's pkipath for `role`, checking at [`now`].
fn loaded(dir: &Path, role: Role, flags: ContextFlags) -> Arc<Context> {
    let ctx = Arc::new(Context::new(flags));
    ctx.set_verify_time(Some(now()));
    ctx.load_default(role, Some(dir)).unwrap();
    ctx
}

/// A second server certificate for localhost and 127.0.0.1, by the same CA, with its own key.
fn second_server(p: &Pki) -> Made {
    let mut spec = Spec::server("localhost");
    spec.ips = vec!["127.0.0.1".parse().unwrap()];
    signed_by(&spec, &p.ca)
}

fn server_leaf(ctx: &Context) -> Vec<u8> {
    ctx.credentials().server.chain[0].der().to_vec()
}

/// Eight threads shake hands (real TLS over loopback) and verify while another one reloads
/// both ends in a loop, the files alternating between two whole sets: every handshake and
/// verification succeeds, and the server certificate a client sees is always one of the two
/// (the handshake proves the server held its key).
#[test]
fn eight_threads_verify_and_shake_hands_while_another_reloads() {
    let p = pki();
    let second = second_server(&p);
    let server_made = [&p.server, &second];
    let servers: Vec<Vec<u8>> = server_made.iter().map(|m| m.der()).collect();
    let client2 = client_with_test_dn(&Spec::client("client2"), &p.ca);
    let client_made = [&p.client, &client2];
    let clients: Vec<Vec<u8>> = client_made.iter().map(|m| m.der()).collect();
    let sdir = tempfile::tempdir().unwrap();
    let cdir = tempfile::tempdir().unwrap();
    put_set(sdir.path(), Role::Server, &p.ca, server_made[0]);
    put_set(cdir.path(), Role::Client, &p.ca, client_made[0]);
    let server = loaded(sdir.path(), Role::Server, ContextFlags::default());
    let client = loaded(cdir.path(), Role::Client, ContextFlags::default());

    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (server, done) = (Arc::clone(&server), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut handlers = Vec::new();
            for stream in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let stream = stream.unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let server = Arc::clone(&server);
                handlers.push(std::thread::spawn(move || -> virtpki::Result<String> {
                    let mut s = Session::server(&server, stream, SessionFlags::LIBVIRT_CONFIRM)?;
                    let mut buf = [0u8; 4];
                    let n = s.read(&mut buf)?;
                    s.write_all(&buf[..n])?;
                    s.close()?;
                    Ok(s.peer_dn().unwrap_or_default())
                }));
            }
            handlers
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    };

    let reloads = Arc::new(AtomicUsize::new(0));
    let reloader = {
        let (server, client, done, reloads) = (
            Arc::clone(&server),
            Arc::clone(&client),
            Arc::clone(&done),
            Arc::clone(&reloads),
        );
        let (sdir, cdir) = (sdir.path().to_owned(), cdir.path().to_owned());
        let (s_pem, c_pem): (Vec<_>, Vec<_>) = (
            server_made.iter().map(|m| (m.pem(), m.key_pem())).collect(),
            client_made.iter().map(|m| (m.pem(), m.key_pem())).collect(),
        );
        std::thread::spawn(move || {
            let mut i = 0;
            while !done.load(Ordering::SeqCst) {
                i += 1;
                let (cert, key) = &s_pem[i % 2];
                put(&sdir, "servercert.pem", cert);
                put(&sdir, "serverkey.pem", key);
                server.reload().unwrap();
                let (cert, key) = &c_pem[i % 2];
                put(&cdir, "clientcert.pem", cert);
                put(&cdir, "clientkey.pem", key);
                client.reload().unwrap();
                reloads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let seen_servers = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let start = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let (server, client, start, seen) = (
                Arc::clone(&server),
                Arc::clone(&client),
                Arc::clone(&start),
                Arc::clone(&seen_servers),
            );
            let (servers, clients) = (servers.clone(), clients.clone());
            std::thread::spawn(move || {
                start.wait();
                for round in 0..24 {
                    if (t + round) % 2 == 0 {
                        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(20)))
                            .unwrap();
                        let mut s = Session::client(
                            &client,
                            stream,
                            "localhost",
                            Some(port),
                            SessionFlags::LIBVIRT_CONFIRM,
                        )
                        .unwrap_or_else(|e| panic!("handshake {t}/{round}: {e}"));
                        let leaf = s.peer_certificates()[0].der().to_vec();
                        let which = servers.iter().position(|d| *d == leaf);
                        let which = which.expect("the server presented one of the two");
                        seen[which].fetch_add(1, Ordering::SeqCst);
                        s.write_all(b"ping").unwrap();
                        let mut buf = [0u8; 4];
                        let mut got = 0;
                        while got < 4 {
                            got += s.read(&mut buf[got..]).unwrap();
                        }
                        assert_eq!(&buf, b"ping");
                        s.close().unwrap();
                    } else {
                        for der in &servers {
                            let cert =
                                virtpki::Certificate::from_der(der.clone(), virtpki::Source::Peer)
                                    .unwrap();
                            client
                                .verify_server("localhost", None, &[cert], VerifyFlags::default())
                                .unwrap_or_else(|e| panic!("verify_server {t}/{round}: {e}"));
                        }
                        for der in &clients {
                            let cert =
                                virtpki::Certificate::from_der(der.clone(), virtpki::Source::Peer)
                                    .unwrap();
                            server
                                .verify_client(&[cert], VerifyFlags::default())
                                .unwrap_or_else(|e| panic!("verify_client {t}/{round}: {e}"));
                        }
                        // A snapshot is one whole set: its key is its certificate's.
                        let creds = server.credentials();
                        let key = creds.server.key.as_ref().unwrap();
                        assert!(key.matches(&creds.server.chain[0]));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    reloader.join().unwrap();
    // Wake the acceptor up so that it sees `done`.
    drop(TcpStream::connect(("127.0.0.1", port)));
    let dns = acceptor.join().unwrap();
    assert_eq!(dns.len(), 8 * 12);
    for dn in dns {
        let dn = dn.unwrap();
        assert!(
            dn == "C=GB,O=Test,CN=client1" || dn == "C=GB,O=Test,CN=client2",
            "{dn}"
        );
    }
    let reloads = reloads.load(Ordering::SeqCst);
    let seen: Vec<usize> = seen_servers
        .iter()
        .map(|s| s.load(Ordering::SeqCst))
        .collect();
    eprintln!("{reloads} reloads of both ends; handshakes saw server certificates {seen:?}");
    assert!(reloads >= 2, "{reloads}");
}

/// A handshake verifies the peer against the snapshot its own identity came from: a reload
/// between the client's hello and the server's certificate does not swap the trust under it.
/// (The verifier used to take the context's snapshot again, which then trusted only the new
/// CA and refused the server.)
#[test]
fn a_handshake_keeps_its_snapshot_when_a_reload_swaps_in_between() {
    let p = pki();
    let other_ca = self_signed(&Spec::ca("Other CA"));
    let other_client = client_with_test_dn(&Spec::client("client2"), &other_ca);
    let cdir = tempfile::tempdir().unwrap();
    put_set(cdir.path(), Role::Client, &p.ca, &p.client);
    let client = loaded(cdir.path(), Role::Client, ContextFlags::default());
    let server = server_ctx(&p);

    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connecting = {
        let client = Arc::clone(&client);
        std::thread::spawn(move || {
            let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut s = Session::client(
                &client,
                stream,
                "localhost",
                None,
                SessionFlags::LIBVIRT_CONFIRM,
            )?;
            s.close()?;
            Ok::<_, virtpki::Error>(s.peer_certificates()[0].der().to_vec())
        })
    };
    let (stream, _) = listener.accept().unwrap();
    // The client hello has arrived: the client's configuration (its snapshot) is made.
    stream.peek(&mut [0u8; 1]).unwrap();
    put_set(cdir.path(), Role::Client, &other_ca, &other_client);
    client.reload().unwrap();
    let served = Session::server(&server, stream, SessionFlags::LIBVIRT_CONFIRM)
        .map(|s| s.peer_dn().unwrap_or_default());
    let seen = connecting.join().unwrap().unwrap();
    assert_eq!(seen, p.server.der());
    assert_eq!(served.unwrap(), "C=GB,O=Test,CN=client1");
    // The next handshake uses the new set, which does not trust this server.
    let (port, handle) = serve_one(0, move |stream| {
        Session::server(&server, stream, SessionFlags::default()).map(|_| ())
    });
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let err = Session::client(&client, stream, "localhost", None, SessionFlags::default())
        .err()
        .expect("the new set does not trust the server's CA");
    assert_eq!(err.kind(), ErrorKind::UnknownIssuer, "{err}");
    let _ = handle.join();
}

/// A file that became unreadable fails the reload, naming it; the old set stays and works.
#[test]
fn a_broken_file_fails_the_reload_and_the_old_set_stays() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    put_set(dir.path(), Role::Server, &p.ca, &p.server);
    let ctx = loaded(dir.path(), Role::Server, ContextFlags::default());
    put(
        dir.path(),
        "servercert.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    let err = ctx.reload().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
    assert!(err.message().contains("servercert.pem"), "{err}");
    assert!(err.message().contains("reload refused"), "{err}");
    assert_eq!(server_leaf(&ctx), p.server.der());
    // The old set still serves.
    let (port, handle) = {
        let ctx = Arc::clone(&ctx);
        serve_one(0, move |stream| {
            Session::server(&ctx, stream, SessionFlags::LIBVIRT_CONFIRM).map(|_| ())
        })
    };
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client = client_ctx(&p, ContextFlags::default());
    Session::client(
        &client,
        stream,
        "localhost",
        None,
        SessionFlags::LIBVIRT_CONFIRM,
    )
    .unwrap();
    handle.join().unwrap().unwrap();
}

/// A required file that is gone fails the reload; an optional one that appeared is loaded.
#[test]
fn a_missing_required_file_fails_and_an_optional_one_that_appeared_is_loaded() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    put_set(dir.path(), Role::Server, &p.ca, &p.server);
    let ctx = loaded(dir.path(), Role::Server, ContextFlags::default());
    assert!(ctx.credentials().crls.is_empty());
    put(dir.path(), "cacrl.pem", crl_pem(&p.ca, &[]));
    ctx.reload().unwrap();
    assert_eq!(ctx.credentials().crls.len(), 1);

    // Under a pkipath the CA must be there (a missing identity would fall back to the
    // system's files, by libvirt's rules).
    std::fs::remove_file(dir.path().join("cacert.pem")).unwrap();
    let err = ctx.reload().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(
        err.message()
            .contains(&dir.path().join("cacert.pem").display().to_string()),
        "{err}"
    );
    let cause = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<virtpki::Error>())
        .map(virtpki::Error::kind);
    assert_eq!(cause, Some(ErrorKind::Io));
    let creds = ctx.credentials();
    assert!(creds.server.key.is_some() && creds.crls.len() == 1);
}

/// A set with an error finding (a key that is not the certificate's) is refused, naming the
/// file and the finding; with NO_SANITY it goes in.
#[test]
fn an_error_finding_refuses_the_set_unless_no_sanity() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    put_set(dir.path(), Role::Server, &p.ca, &p.server);
    let ctx = loaded(dir.path(), Role::Server, ContextFlags::default());
    let lax = loaded(dir.path(), Role::Server, ContextFlags::NO_SANITY);
    let other = second_server(&p);
    put(dir.path(), "serverkey.pem", other.key_pem());

    let err = ctx.reload().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyMismatch, "{err}");
    assert!(
        err.message().contains("serverkey.pem") && err.message().contains("does not belong"),
        "{err}"
    );
    let creds = ctx.credentials();
    assert!(creds
        .server
        .key
        .as_ref()
        .unwrap()
        .matches(&creds.server.chain[0]));

    lax.reload().unwrap();
    let creds = lax.credentials();
    assert!(!creds
        .server
        .key
        .as_ref()
        .unwrap()
        .matches(&creds.server.chain[0]));
    assert!(creds.server.key.as_ref().unwrap().matches(&other.parsed()));
}

/// Text stays as it was and every addition is made again in its order: a later addition of
/// an identity half still replaces an earlier one, lists keep their order.
#[test]
fn text_is_kept_and_additions_are_replayed_in_order() {
    let p = pki();
    let other_ca = self_signed(&Spec::ca("Text CA"));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", p.ca.pem(), 0o644);
    let cert_file = write(dir.path(), "cert.pem", p.server.pem(), 0o644);
    let key_file = write(dir.path(), "key.pem", p.server.key_pem(), 0o600);
    let second = second_server(&p);

    let ctx = context(ContextFlags::default(), None);
    ctx.add_pem(CertDataType::CaCert, &other_ca.pem()).unwrap();
    ctx.add_file(CertDataType::CaCert, &ca_file).unwrap();
    ctx.add_file(CertDataType::ServerCert, &cert_file).unwrap();
    ctx.add_file(CertDataType::ServerKey, &key_file).unwrap();
    // Added later as text: replaces the file's certificate and key, now and after a reload.
    ctx.add_pem(CertDataType::ServerCert, &second.pem())
        .unwrap();
    ctx.add_pem(CertDataType::ServerKey, &second.key_pem())
        .unwrap();
    let subjects = |ctx: &Context| -> Vec<String> {
        ctx.credentials()
            .ca_certs
            .iter()
            .map(|c| c.subject().to_owned())
            .collect()
    };
    assert_eq!(subjects(&ctx), ["CN=Text CA", "CN=Session CA"]);

    // The file's CA is replaced by another one; the text CA stays, first.
    let third_ca = self_signed(&Spec::ca("File CA"));
    std::fs::write(&ca_file, third_ca.pem()).unwrap();
    // Without sanity checks, a context whose CA file now holds another CA takes it.
    let lax = context(ContextFlags::NO_SANITY, None);
    lax.add_pem(CertDataType::CaCert, &other_ca.pem()).unwrap();
    lax.add_file(CertDataType::CaCert, &ca_file).unwrap();
    lax.add_file(CertDataType::ServerCert, &cert_file).unwrap();
    lax.add_pem(CertDataType::ServerCert, &second.pem())
        .unwrap();
    std::fs::write(&ca_file, p.ca.pem()).unwrap();
    lax.reload().unwrap();
    assert_eq!(subjects(&lax), ["CN=Text CA", "CN=Session CA"]);
    assert_eq!(server_leaf(&lax), second.der());

    std::fs::write(&ca_file, third_ca.pem()).unwrap();
    // Sanity on: the server certificate no longer has its CA.
    let err = ctx.reload().unwrap_err();
    assert!(err.message().contains("reload refused"), "{err}");
    assert_eq!(subjects(&ctx), ["CN=Text CA", "CN=Session CA"]);
    std::fs::write(&ca_file, p.ca.pem()).unwrap();
    std::fs::write(&cert_file, "garbage").unwrap();
    // The file's certificate and key were replaced by text: not read again (they were, and a
    // file no longer in use failed the reload), so it does not matter what they hold now.
    std::fs::remove_file(&key_file).unwrap();
    ctx.reload().unwrap();
    // The CA file is still read: all or nothing.
    std::fs::write(&ca_file, "garbage").unwrap();
    assert!(ctx.reload().is_err());
    std::fs::write(&ca_file, p.ca.pem()).unwrap();
    ctx.reload().unwrap();
    assert_eq!(subjects(&ctx), ["CN=Text CA", "CN=Session CA"]);
    assert_eq!(server_leaf(&ctx), second.der());
    let creds = ctx.credentials();
    assert!(creds.server.key.as_ref().unwrap().matches(&second.parsed()));
}

/// Additions made while reloads run are neither lost nor doubled.
#[test]
fn additions_during_reloads_are_kept() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    put_set(dir.path(), Role::Server, &p.ca, &p.server);
    let ctx = loaded(dir.path(), Role::Server, ContextFlags::default());
    let extra = self_signed(&Spec::ca("Extra CA")).pem();
    let reloading = {
        let ctx = Arc::clone(&ctx);
        std::thread::spawn(move || {
            for _ in 0..40 {
                ctx.reload().unwrap();
            }
        })
    };
    for _ in 0..40 {
        ctx.add_pem(CertDataType::CaCert, &extra).unwrap();
    }
    reloading.join().unwrap();
    assert_eq!(ctx.credentials().ca_certs.len(), 41);
    ctx.reload().unwrap();
    assert_eq!(ctx.credentials().ca_certs.len(), 41);
}

/// Nothing added, nothing to read again.
#[test]
fn an_empty_context_reloads_to_nothing() {
    let ctx = Context::new(ContextFlags::default());
    ctx.reload().unwrap();
    assert!(ctx.credentials().ca_certs.is_empty());
}

/// Reads one TLS record (header and body) from `from`.
fn read_record(from: &mut TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut record = vec![0u8; 5];
    from.read_exact(&mut record).unwrap();
    let len = u16::from_be_bytes([record[3], record[4]]) as usize;
    record.resize(5 + len, 0);
    from.read_exact(&mut record[5..]).unwrap();
    record
}

/// The server side of the same: a reload between the server's first flight and the client's
/// certificate does not change the CAs the client is verified against.
#[test]
fn a_server_handshake_keeps_its_snapshot_when_a_reload_swaps_in_between() {
    use std::io::Write;
    let p = pki();
    let other_ca = self_signed(&Spec::ca("Other CA"));
    let mut spec = Spec::server("localhost");
    spec.ips = vec!["127.0.0.1".parse().unwrap()];
    let other_server = signed_by(&spec, &other_ca);
    let sdir = tempfile::tempdir().unwrap();
    put_set(sdir.path(), Role::Server, &p.ca, &p.server);
    let server = loaded(sdir.path(), Role::Server, ContextFlags::default());
    let client = client_ctx(&p, ContextFlags::default());

    // The server, behind a relay that holds the client's second flight until told.
    let (server_port, served) = {
        let server = Arc::clone(&server);
        serve_one(0, move |stream| {
            Session::server(&server, stream, SessionFlags::LIBVIRT_CONFIRM)
                .map(|s| s.peer_dn().unwrap_or_default())
        })
    };
    let front = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let front_port = front.local_addr().unwrap().port();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let relay = std::thread::spawn(move || {
        let (mut c, _) = front.accept().unwrap();
        let mut s = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
        let (mut c2, mut s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
        let back = std::thread::spawn(move || {
            let _ = std::io::copy(&mut s2, &mut c2);
        });
        // The client hello goes through; the next record is the client's second flight.
        s.write_all(&read_record(&mut c)).unwrap();
        let next = read_record(&mut c);
        held_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        s.write_all(&next).unwrap();
        let _ = std::io::copy(&mut c, &mut s);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = back.join();
    });
    let connecting = std::thread::spawn(move || {
        let stream = TcpStream::connect(("127.0.0.1", front_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut s = Session::client(
            &client,
            stream,
            "localhost",
            None,
            SessionFlags::LIBVIRT_CONFIRM,
        )?;
        s.close()
    });
    held_rx.recv().unwrap();
    // The server's configuration (its snapshot) is made: it has sent its certificate.
    put_set(sdir.path(), Role::Server, &other_ca, &other_server);
    server.reload().unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(served.join().unwrap().unwrap(), "C=GB,O=Test,CN=client1");
    connecting.join().unwrap().unwrap();
    relay.join().unwrap();
    // The next handshake uses the new set, which does not trust the client's CA.
    assert_eq!(server_leaf(&server), other_server.der());
    let err = server
        .verify_client(&[p.client.parsed()], VerifyFlags::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownIssuer, "{err}");
}

/// A context built only from single additions never ran libvirt's load-time check: a client
/// that pins its server (no CA) reloads, where the check's "no CA" would refuse every reload.
#[test]
fn a_pinned_server_without_a_ca_reloads() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let pin = write(dir.path(), "pin.pem", p.server.pem(), 0o644);
    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(now()));
    ctx.add_file(CertDataType::ServerTrusted, &pin).unwrap();
    let chain = vec![p.server.parsed()];
    ctx.verify_server("localhost", None, &chain, VerifyFlags::default())
        .unwrap();
    ctx.reload().unwrap();
    ctx.verify_server("localhost", None, &chain, VerifyFlags::default())
        .unwrap();
}

/// The same for a client identity whose server trust comes from a known-servers store.
#[test]
fn a_client_identity_without_a_ca_reloads() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let cert = write(dir.path(), "c.pem", p.client.pem(), 0o644);
    let key = write(dir.path(), "k.pem", p.client.key_pem(), 0o600);
    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(now()));
    ctx.add_file(CertDataType::ClientCert, &cert).unwrap();
    ctx.add_file(CertDataType::ClientKey, &key).unwrap();
    ctx.reload().unwrap();
    assert!(ctx.credentials().client.certificate().is_some());
}
