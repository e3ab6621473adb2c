//! Several identities per role (QEMU 10.2's numbered files): which one a server presents to a
//! client that can verify only one algorithm, which one a client answers a server's request
//! with, the sanity check of each, the QEMU directory's rules, and reload.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::SignatureScheme;
use virtpki::locations::{self, QemuIdentityNoteKind};
use virtpki::session::{Session, SessionFlags};
use virtpki::{CertDataType, Context, ContextFlags, ErrorKind, Role, Rule, Severity};

/// A server certificate for localhost and 127.0.0.1 with a key of `alg`, and a distinct CN.
fn server_of(ca: &Made, alg: Alg, cn: &str) -> Made {
    let mut spec = Spec::server(cn).alg(alg);
    spec.dns = vec!["localhost".into()];
    spec.ips = vec!["127.0.0.1".parse().unwrap()];
    signed_by(&spec, ca)
}

/// The signature schemes of `keep`'s families only: what a peer restricted to one algorithm
/// offers (the certificates' own signatures still verify with every algorithm).
fn only(keep: fn(SignatureScheme) -> bool) -> WebPkiSupportedAlgorithms {
    let all = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    let mapping: Vec<_> = all
        .mapping
        .iter()
        .filter(|(scheme, _)| keep(*scheme))
        .cloned()
        .collect();
    WebPkiSupportedAlgorithms {
        all: all.all,
        mapping: Box::leak(mapping.into_boxed_slice()),
    }
}

fn is_rsa(s: SignatureScheme) -> bool {
    format!("{s:?}").starts_with("RSA_")
}

fn is_ecdsa(s: SignatureScheme) -> bool {
    format!("{s:?}").starts_with("ECDSA_")
}

fn provider_with(algs: WebPkiSupportedAlgorithms) -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::CryptoProvider {
        signature_verification_algorithms: algs,
        ..rustls::crypto::ring::default_provider()
    })
}

fn versions(tls13: bool) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    if tls13 {
        &TLS13
    } else {
        &TLS12
    }
}

fn roots(ca: &Made) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().into()).unwrap();
    Arc::new(roots)
}

fn key_der(made: &Made) -> rustls_pki_types::PrivateKeyDer<'static> {
    rustls_pki_types::PrivateKeyDer::Pkcs8(made.key.serialize_der().into())
}

/// Drives a rustls connection's handshake over `stream`, then sends "ping" and reads it back
/// (the virtpki server echoes); returns the peer's leaf certificate.
fn handshake<C, D>(conn: &mut C, stream: &mut TcpStream) -> Result<Vec<u8>, String>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    while conn.is_handshaking() {
        conn.complete_io(stream).map_err(|e| e.to_string())?;
    }
    Ok(conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default())
}

/// A virtpki server with an RSA identity first and an ECDSA one added; returns the CA, the
/// two server certificates and the context.
fn two_identity_server() -> (Made, Made, Made, Made, Arc<Context>) {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let rsa = server_of(&ca, Alg::Rsa2048, "rsa.localhost");
    let ecdsa = server_of(&ca, Alg::EcdsaP256, "ecdsa.localhost");
    let client = signed_by(&Spec::client("client1"), &ca);
    let ctx = context(ContextFlags::default(), Some(&ca));
    with_identity(&ctx, &rsa, true);
    ctx.add_identity(Role::Server, &ecdsa.pem(), &ecdsa.key_pem())
        .unwrap();
    (ca, rsa, ecdsa, client, ctx)
}

/// The virtpki server of `ctx` for one connection: handshake, echo one read.
fn serve_echo(ctx: Arc<Context>) -> (u16, std::thread::JoinHandle<virtpki::Result<()>>) {
    serve_one(0, move |stream| {
        let mut s = Session::server(&ctx, stream, SessionFlags::default())?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf)?;
        s.write_all(&buf[..n])?;
        s.close()
    })
}

/// A rustls client verifying with `algs` only, presenting `client`; returns the server's leaf.
fn restricted_client(
    port: u16,
    ca: &Made,
    client: &Made,
    algs: WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<Vec<u8>, String> {
    let provider = provider_with(algs);
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots(ca),
        Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(tls13))
        .unwrap()
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(vec![client.der().into()], key_der(client))
        .unwrap();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let leaf = handshake(&mut conn, &mut stream)?;
    conn.writer().write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    let mut tls = rustls::Stream::new(&mut conn, &mut stream);
    tls.read_exact(&mut buf).map_err(|e| e.to_string())?;
    assert_eq!(&buf, b"ping");
    Ok(leaf)
}

#[test]
fn a_server_presents_the_identity_each_restricted_client_can_verify() {
    let (ca, rsa, ecdsa, client, ctx) = two_identity_server();
    for tls13 in [true, false] {
        for (algs, want, what) in [
            (only(is_rsa), &rsa, "RSA-only client"),
            (only(is_ecdsa), &ecdsa, "ECDSA-only client"),
            (
                rustls::crypto::ring::default_provider().signature_verification_algorithms,
                &rsa,
                "client of every algorithm: the first loaded",
            ),
        ] {
            let (port, server) = serve_echo(Arc::clone(&ctx));
            let leaf = restricted_client(port, &ca, &client, algs, tls13).unwrap();
            server.join().unwrap().unwrap();
            assert_eq!(leaf, want.der(), "{what}, TLS 1.3: {tls13}");
        }
    }
}

/// Like GnuTLS, a server prefers an identity naming the host the client asked for (SNI): a
/// virtpki client then verifies the name. Without SNI (an address), the first one.
#[test]
fn a_server_prefers_the_identity_naming_the_sni_host() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let other = signed_by(&Spec::server("other.example"), &ca);
    let local = server_of(&ca, Alg::EcdsaP256, "local");
    let ctx = context(ContextFlags::default(), Some(&ca));
    with_identity(&ctx, &other, true);
    ctx.add_identity(Role::Server, &local.pem(), &local.key_pem())
        .unwrap();
    let client = context(ContextFlags::default(), Some(&ca));
    with_identity(&client, &signed_by(&Spec::client("client1"), &ca), false);
    let (port, server) = serve_echo(Arc::clone(&ctx));
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut s = Session::client(
        &client,
        stream,
        "localhost",
        Some(port),
        SessionFlags::default(),
    )
    .unwrap();
    assert_eq!(
        s.peer_certificates()[0].der().as_ref(),
        local.der().as_slice()
    );
    s.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(s.read(&mut buf).unwrap(), 4);
    server.join().unwrap().unwrap();
    // An address sends no SNI: the first identity, which does not name 127.0.0.1.
    let (port, server) = serve_echo(Arc::clone(&ctx));
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let err = Session::client(
        &client,
        stream,
        "127.0.0.1",
        Some(port),
        SessionFlags::default(),
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{err}");
    let _ = server.join().unwrap();
}

#[test]
fn no_fitting_server_identity_fails_naming_the_schemes() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let ctx = context(ContextFlags::default(), Some(&ca));
    let first = server_of(&ca, Alg::EcdsaP256, "one.localhost");
    let second = server_of(&ca, Alg::Ed25519, "two.localhost");
    with_identity(&ctx, &first, true);
    ctx.add_identity(Role::Server, &second.pem(), &second.key_pem())
        .unwrap();
    let client = signed_by(&Spec::client("client1"), &ca);
    let (port, server) = serve_echo(ctx);
    let client_err = restricted_client(port, &ca, &client, only(is_rsa), true).unwrap_err();
    let err = server.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    let text = err.message();
    assert!(
        text.contains("none of the server identities")
            && text.contains("RSA_PSS_SHA256")
            && text.contains("(ECDSA)")
            && text.contains("(ED25519)"),
        "{text}"
    );
    assert!(!client_err.is_empty());
}

/// A rustls server that asks for a client certificate verifiable with `algs` only; returns
/// the leaf the client sent.
fn restricted_server(
    ca: &Made,
    server: &Made,
    algs: WebPkiSupportedAlgorithms,
    tls13: bool,
) -> (u16, std::thread::JoinHandle<Result<Vec<u8>, String>>) {
    let provider = provider_with(algs);
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots(ca),
        Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(tls13))
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.der().into()], key_der(server))
        .unwrap();
    serve_one(0, move |mut stream| {
        let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let leaf = handshake(&mut conn, &mut stream)?;
        let mut tls = rustls::Stream::new(&mut conn, &mut stream);
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).map_err(|e| e.to_string())?;
        tls.write_all(&buf).map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        Ok(leaf)
    })
}

fn connect(ctx: &Arc<Context>, port: u16) -> virtpki::Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut s = Session::client(
        ctx,
        stream,
        "localhost",
        Some(port),
        SessionFlags::default(),
    )?;
    s.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        got += s.read(&mut buf[got..])?;
    }
    Ok(())
}

#[test]
fn a_client_answers_each_server_with_the_identity_it_asks_for() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let server = server_of(&ca, Alg::EcdsaP256, "localhost");
    let rsa = signed_by(&Spec::client("rsa-client").alg(Alg::Rsa2048), &ca);
    let ecdsa = signed_by(&Spec::client("ecdsa-client"), &ca);
    let ctx = context(ContextFlags::default(), Some(&ca));
    with_identity(&ctx, &rsa, false);
    ctx.add_identity(Role::Client, &ecdsa.pem(), &ecdsa.key_pem())
        .unwrap();
    for tls13 in [true, false] {
        for (algs, want, what) in [
            (only(is_ecdsa), &ecdsa, "ECDSA-only server"),
            (only(is_rsa), &rsa, "RSA-only server"),
        ] {
            let (port, handle) = restricted_server(&ca, &server, algs, tls13);
            connect(&ctx, port).unwrap();
            let leaf = handle.join().unwrap().unwrap();
            assert_eq!(leaf, want.der(), "{what}, TLS 1.3: {tls13}");
        }
    }

    // No client identity fits (TLS 1.2: the refusal comes within the handshake).
    let ctx = context(ContextFlags::default(), Some(&ca));
    with_identity(&ctx, &ecdsa, false);
    let ed = signed_by(&Spec::client("ed-client").alg(Alg::Ed25519), &ca);
    ctx.add_identity(Role::Client, &ed.pem(), &ed.key_pem())
        .unwrap();
    let (port, handle) = restricted_server(&ca, &server, only(is_rsa), false);
    let err = connect(&ctx, port).unwrap_err();
    assert!(handle.join().unwrap().is_err());
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(
        err.message().contains("none of the client identities")
            && err.message().contains("RSA_PKCS1_SHA256"),
        "{err}"
    );
}

/// A context whose only server identity was added with add_identity serves, and its check
/// passes: the further identities stand alone when there is no first one.
#[test]
fn identities_added_alone_serve() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let ctx = context(ContextFlags::default(), Some(&ca));
    let only = server_of(&ca, Alg::EcdsaP256, "only.localhost");
    ctx.add_identity(Role::Server, &only.pem(), &only.key_pem())
        .unwrap();
    assert!(
        ctx.check(Role::Server).is_ok(),
        "{}",
        ctx.check(Role::Server).to_text()
    );
    let client = signed_by(&Spec::client("client1"), &ca);
    let (port, server) = serve_echo(Arc::clone(&ctx));
    let leaf = restricted_client(
        port,
        &ca,
        &client,
        rustls::crypto::ring::default_provider().signature_verification_algorithms,
        true,
    )
    .unwrap();
    server.join().unwrap().unwrap();
    assert_eq!(leaf, only.der());
}

#[test]
fn add_identity_checks_the_pair_and_keeps_the_first_identity() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let a = server_of(&ca, Alg::EcdsaP256, "a.localhost");
    let b = server_of(&ca, Alg::EcdsaP256, "b.localhost");
    let ctx = context(ContextFlags::default(), Some(&ca));
    with_identity(&ctx, &a, true);
    let err = ctx
        .add_identity(Role::Server, &b.pem(), &a.key_pem())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyMismatch, "{err}");
    assert!(ctx.credentials().more_servers.is_empty());
    let err = ctx
        .add_identity(Role::Server, "not pem", &b.key_pem())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Parse, "{err}");
    ctx.add_identity(Role::Server, &b.pem(), &b.key_pem())
        .unwrap();
    // AddCertData of a certificate and key still replaces the first identity only.
    let c = server_of(&ca, Alg::EcdsaP256, "c.localhost");
    with_identity(&ctx, &c, true);
    let creds = ctx.credentials();
    let subjects: Vec<String> = creds
        .identities(Role::Server)
        .map(|i| i.chain[0].subject().to_owned())
        .collect();
    assert_eq!(subjects, ["CN=c.localhost", "CN=b.localhost"]);
    assert!(ctx.check(Role::Server).is_ok());
    // Files, read again by a reload.
    let dir = tempfile::tempdir().unwrap();
    let cert = write(dir.path(), "c.pem", a.pem(), 0o644);
    let key = write(dir.path(), "k.pem", a.key_pem(), 0o600);
    ctx.add_identity_files(Role::Server, &cert, &key).unwrap();
    let err = ctx
        .add_identity_files(Role::Server, &dir.path().join("missing.pem"), &key)
        .unwrap_err();
    assert!(err.message().contains("missing.pem"), "{err}");
    std::fs::write(&cert, b.pem()).unwrap();
    std::fs::write(&key, b.key_pem()).unwrap();
    ctx.reload().unwrap();
    assert_eq!(
        ctx.credentials().more_servers[1].chain[0].subject(),
        "CN=b.localhost"
    );
    // A reload that would make a further identity a mismatched pair is refused.
    std::fs::write(&key, a.key_pem()).unwrap();
    let err = ctx.reload().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyMismatch, "{err}");
    assert!(err.message().contains("reload refused"), "{err}");
}

/// A QEMU directory: the CA, an unnumbered identity `server-…` and numbered ones as asked.
fn qemu_tree(dir: &Path, ca: &Made, numbered: &[(usize, &Made)]) -> Made {
    write(dir, "ca-cert.pem", ca.pem(), 0o644);
    let first = server_of(ca, Alg::EcdsaP256, "first.localhost");
    write(dir, "server-cert.pem", first.pem(), 0o644);
    write(dir, "server-key.pem", first.key_pem(), 0o600);
    for (n, made) in numbered {
        write(dir, &format!("server-cert-{n}.pem"), made.pem(), 0o644);
        write(dir, &format!("server-key-{n}.pem"), made.key_pem(), 0o600);
    }
    first
}

#[test]
fn a_qemu_directory_loads_every_identity_and_a_reload_reads_them_again() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let ca = self_signed(&Spec::ca("Identities CA"));
    let rsa = server_of(&ca, Alg::Rsa2048, "rsa.localhost");
    let ecdsa = server_of(&ca, Alg::EcdsaP256, "ecdsa.localhost");
    qemu_tree(d, &ca, &[(0, &rsa), (1, &ecdsa)]);
    let files = locations::qemu_dir(d, Role::Server);
    assert_eq!(
        files.extra_identities,
        [
            (d.join("server-cert-0.pem"), d.join("server-key-0.pem")),
            (d.join("server-cert-1.pem"), d.join("server-key-1.pem")),
        ]
    );
    let ctx = Arc::new(Context::new(ContextFlags::default()));
    ctx.set_verify_time(Some(now()));
    let report = ctx.load_files(&files).unwrap();
    assert!(report
        .loaded
        .iter()
        .any(|(ty, path, _)| *ty == CertDataType::ServerKey && path.ends_with("server-key-1.pem")));
    let subjects = |ctx: &Context| -> Vec<String> {
        ctx.credentials()
            .identities(Role::Server)
            .map(|i| i.chain[0].subject().to_owned())
            .collect()
    };
    assert_eq!(
        subjects(&ctx),
        [
            "CN=first.localhost",
            "CN=rsa.localhost",
            "CN=ecdsa.localhost"
        ]
    );
    // Rotated files are read again.
    let newer = server_of(&ca, Alg::EcdsaP256, "newer.localhost");
    write(d, "server-cert-1.pem", newer.pem(), 0o644);
    write(d, "server-key-1.pem", newer.key_pem(), 0o600);
    ctx.reload().unwrap();
    assert_eq!(subjects(&ctx)[2], "CN=newer.localhost");
    // A mismatched second identity is refused by the reload's sanity check, naming it.
    write(d, "server-key-0.pem", ecdsa.key_pem(), 0o600);
    let err = ctx.reload().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyMismatch, "{err}");
    assert!(err.message().contains("server-key-0.pem"), "{err}");
    assert_eq!(subjects(&ctx)[1], "CN=rsa.localhost", "the old set stays");
}

#[test]
fn the_sanity_check_checks_each_identity_and_names_it() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let ca = self_signed(&Spec::ca("Identities CA"));
    let second = server_of(&ca, Alg::EcdsaP256, "second.localhost");
    let other = server_of(&ca, Alg::EcdsaP256, "other.localhost");
    qemu_tree(d, &ca, &[(0, &second)]);
    write(d, "server-key-0.pem", other.key_pem(), 0o600);
    let files = locations::qemu_dir(d, Role::Server);
    // Sanity on: the load fails, naming the file.
    let ctx = Context::new(ContextFlags::default());
    ctx.set_verify_time(Some(now()));
    let err = ctx.load_files(&files).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyMismatch, "{err}");
    assert!(err.message().contains("server-key-0.pem"), "{err}");
    assert!(ctx.credentials().server.is_empty(), "nothing loaded");
    // Loaded without the check, the check names the identity and its file.
    let ctx = Context::new(ContextFlags::NO_SANITY);
    ctx.set_verify_time(Some(now()));
    ctx.load_files(&files).unwrap();
    let report = ctx.check(Role::Server);
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 1, "{}", report.to_text());
    assert_eq!(errors[0].rule, Rule::KeyPair);
    assert!(
        errors[0].message.starts_with("server identity 2 (")
            && errors[0].message.contains("server-cert-0.pem"),
        "{}",
        errors[0].message
    );
    // The first identity's findings are not repeated for the second.
    write(d, "server-key-0.pem", second.key_pem(), 0o640);
    let ctx = Context::new(ContextFlags::NO_SANITY);
    ctx.set_verify_time(Some(now()));
    ctx.load_files(&locations::qemu_dir(d, Role::Server))
        .unwrap();
    let report = ctx.check(Role::Server);
    let modes: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == Rule::FileMode)
        .collect();
    assert_eq!(modes.len(), 1, "{}", report.to_text());
    assert!(
        modes[0].message.contains("server identity 2"),
        "{}",
        modes[0].message
    );
}

#[test]
fn qemu_numbered_files_follow_qemu_10_2s_rules() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let ca = self_signed(&Spec::ca("Identities CA"));
    let made = server_of(&ca, Alg::EcdsaP256, "n.localhost");
    // 0 and 2: the gap at 1 hides 2; 4 is beyond the four QEMU reads.
    qemu_tree(d, &ca, &[(0, &made), (2, &made), (4, &made)]);
    let files = locations::qemu_dir(d, Role::Server);
    assert_eq!(
        files.extra_identities,
        [(d.join("server-cert-0.pem"), d.join("server-key-0.pem"))]
    );
    let notes = locations::qemu_identity_notes(d, Role::Server);
    let of = |kind| -> Vec<String> {
        notes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| n.message.clone())
            .collect()
    };
    let gaps = of(QemuIdentityNoteKind::Gap);
    assert_eq!(gaps.len(), 2, "{notes:#?}");
    assert!(
        gaps[0].contains("server-cert-2.pem is never read: server-cert-1.pem is missing"),
        "{gaps:?}"
    );
    let beyond = of(QemuIdentityNoteKind::BeyondMax);
    assert_eq!(beyond.len(), 2, "{notes:#?}");
    assert!(
        beyond[0].contains("server-cert-4.pem is never read"),
        "{beyond:?}"
    );
    let old = of(QemuIdentityNoteKind::NeedsQemu10_2);
    assert!(
        old.len() == 1 && old[0].contains("QEMU before 10.2 ignores server-cert-0.pem"),
        "{old:?}"
    );
    assert!(notes
        .iter()
        .all(|n| n.severity == Severity::Warning && !n.fix.is_empty()));

    // A half pair: QEMU 10.2 refuses the directory; the load fails naming the missing file.
    std::fs::remove_file(d.join("server-key-0.pem")).unwrap();
    let notes = locations::qemu_identity_notes(d, Role::Server);
    let half: Vec<_> = notes
        .iter()
        .filter(|n| n.kind == QemuIdentityNoteKind::HalfPair)
        .collect();
    assert_eq!(half.len(), 1, "{notes:#?}");
    assert_eq!(half[0].severity, Severity::Error);
    assert_eq!(half[0].path, d.join("server-cert-0.pem"));
    let ctx = Context::new(ContextFlags::default());
    let err = ctx
        .load_files(&locations::qemu_dir(d, Role::Server))
        .unwrap_err();
    assert!(err.message().contains("server-key-0.pem"), "{err}");
    // A tolerant load (virtpki probe) loads the rest and names the missing half.
    let ctx = Context::new(ContextFlags::default());
    let report = ctx.load_files_tolerant(&locations::qemu_dir(d, Role::Server));
    assert_eq!(report.failed.len(), 1, "{report}");
    assert_eq!(report.failed[0].1, d.join("server-key-0.pem"));
    assert!(ctx.credentials().more_servers.is_empty());
    assert!(!ctx.credentials().server.is_empty());

    // Numbered only (no server-cert.pem): -0 is the first identity; QEMU before 10.2 refuses.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "ca-cert.pem", ca.pem(), 0o644);
    write(d, "server-cert-0.pem", made.pem(), 0o644);
    write(d, "server-key-0.pem", made.key_pem(), 0o600);
    let files = locations::qemu_dir(d, Role::Server);
    assert_eq!(
        files.get(CertDataType::ServerCert).unwrap().path,
        d.join("server-cert-0.pem")
    );
    assert!(files.extra_identities.is_empty());
    let notes = locations::qemu_identity_notes(d, Role::Server);
    assert!(
        notes.len() == 1 && notes[0].message.contains("refuses to start without"),
        "{notes:#?}"
    );

    // The client forms.
    write(d, "client-cert-0.pem", made.pem(), 0o644);
    write(d, "client-key-0.pem", made.key_pem(), 0o600);
    let files = locations::qemu_dir(d, Role::Client);
    assert_eq!(
        files.get(CertDataType::ClientCert).unwrap().path,
        d.join("client-cert-0.pem")
    );
    let notes = locations::qemu_identity_notes(d, Role::Client);
    assert!(
        notes.len() == 1 && notes[0].message.contains("without a client certificate"),
        "{notes:#?}"
    );
    // One unnumbered pair: nothing to say.
    let t = tempfile::tempdir().unwrap();
    qemu_tree(t.path(), &ca, &[]);
    assert!(locations::qemu_identity_notes(t.path(), Role::Server).is_empty());
}

/// gnutls-cli restricted to one signature algorithm (facts 5.4) gets the matching certificate
/// from a virtpki server with an RSA and an ECDSA identity. Skipped without gnutls-cli.
#[test]
fn gnutls_cli_restricted_to_one_algorithm_gets_the_matching_certificate() {
    if std::process::Command::new("gnutls-cli")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("gnutls-cli not installed: skipped");
        return;
    }
    let (ca, _rsa, _ecdsa, ecdsa_client, ctx) = two_identity_server();
    let rsa_client = signed_by(&Spec::client("rsa-client").alg(Alg::Rsa2048), &ca);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca_file = write(d, "ca.pem", ca.pem(), 0o644);
    for (base, client, want) in [
        (
            "NORMAL:-SIGN-ALL:+SIGN-ECDSA-SECP256R1-SHA256:+SIGN-ECDSA-SHA256",
            &ecdsa_client,
            "CN=ecdsa.localhost",
        ),
        (
            "NORMAL:-SIGN-ALL:+SIGN-RSA-PSS-RSAE-SHA256:+SIGN-RSA-SHA256",
            &rsa_client,
            "CN=rsa.localhost",
        ),
    ]
    .into_iter()
    .flat_map(|(base, c, w)| {
        [
            (base.to_owned(), c, w),
            (format!("{base}:-VERS-TLS1.3"), c, w),
        ]
    }) {
        let priority = base.as_str();
        let cert = write(d, "client.pem", client.pem(), 0o644);
        let key = write(d, "client-key.pem", client.key_pem(), 0o600);
        let (port, server) = serve_echo(Arc::clone(&ctx));
        let mut child = std::process::Command::new("timeout")
            .args(["20", "gnutls-cli", "--port", &port.to_string()])
            .arg("--x509cafile")
            .arg(&ca_file)
            .arg("--x509certfile")
            .arg(&cert)
            .arg("--x509keyfile")
            .arg(&key)
            .args(["--priority", priority, "localhost"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"ping\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        server.join().unwrap().unwrap();
        let leaf_line = text
            .lines()
            .skip_while(|l| !l.contains("Certificate[0] info"))
            .nth(1)
            .unwrap_or_default();
        assert!(leaf_line.contains(want), "{priority}: {text}");
        assert!(text.contains("ping"), "{priority}: {text}");
    }
}

// --- Review of issue 13 item 3: attempts to break several identities ---

/// A server identity signed by `ca` with an OpenSSL-made key of `genpkey` arguments (a key
/// type the kit cannot make: P-521, Ed448, RSA-PSS); returns (cert PEM, key PEM).
fn openssl_identity(dir: &Path, ca: &Made, genpkey: &[&str], cn: &str) -> (String, String) {
    write(dir, "ca.pem", ca.pem(), 0o644);
    write(dir, "ca-key.pem", ca.key_pem(), 0o600);
    write(
        dir,
        "ext.cnf",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE\n",
        0o644,
    );
    let mut args = vec!["genpkey", "-out", "k.pem"];
    args.extend_from_slice(genpkey);
    openssl(dir, &args);
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req", "-new", "-key", "k.pem", "-subj", &subj, "-out", "r.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "r.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-days",
            "30",
            "-set_serial",
            "77",
            "-extfile",
            "ext.cnf",
            "-out",
            "c.pem",
        ],
    );
    (
        std::fs::read_to_string(dir.join("c.pem")).unwrap(),
        std::fs::read_to_string(dir.join("k.pem")).unwrap(),
    )
}

/// A further identity whose key the TLS stack cannot sign with (P-521, Ed448, an RSA-PSS-only
/// key) must not take the working identities down with it: it is refused when added, naming
/// the key, and the server keeps serving with the identities it had.
#[test]
fn an_identity_whose_key_cannot_sign_is_refused_when_added_and_the_others_serve() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let client = signed_by(&Spec::client("client1"), &ca);
    for (what, genpkey) in [
        (
            "P-521",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"][..],
        ),
        ("Ed448", &["-algorithm", "ED448"][..]),
        (
            "RSA-PSS",
            &["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"][..],
        ),
    ] {
        let t = tempfile::tempdir().unwrap();
        let (cert, key) = openssl_identity(t.path(), &ca, genpkey, "odd.localhost");
        let rsa = server_of(&ca, Alg::Rsa2048, "rsa.localhost");
        let ctx = context(ContextFlags::default(), Some(&ca));
        with_identity(&ctx, &rsa, true);
        let added = ctx.add_identity(Role::Server, &cert, &key);
        let (port, server) = serve_echo(Arc::clone(&ctx));
        let got = restricted_client(
            port,
            &ca,
            &client,
            rustls::crypto::ring::default_provider().signature_verification_algorithms,
            true,
        );
        let served = server.join().unwrap();
        assert!(
            added.is_err(),
            "{what}: an identity no handshake can use was accepted"
        );
        assert_eq!(got.unwrap(), rsa.der(), "{what}");
        served.unwrap();
    }
}

/// A rustls server trusting `roots` for client certificates (not required), that names
/// `hints` as the CAs it accepts; returns the leaf the client sent (empty: none).
fn hinting_server(
    roots_of: &[&Made],
    hints: Vec<rustls::DistinguishedName>,
    server: &Made,
    required: bool,
    tls13: bool,
) -> (u16, std::thread::JoinHandle<Result<Vec<u8>, String>>) {
    let mut store = rustls::RootCertStore::empty();
    for ca in roots_of {
        store.add(ca.der().into()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(store),
        Arc::clone(&provider),
    )
    .clear_root_hint_subjects()
    .add_root_hint_subjects(hints);
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    let verifier = builder.build().unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(tls13))
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.der().into()], key_der(server))
        .unwrap();
    serve_one(0, move |mut stream| {
        let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let leaf = handshake(&mut conn, &mut stream)?;
        let mut tls = rustls::Stream::new(&mut conn, &mut stream);
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).map_err(|e| e.to_string())?;
        tls.write_all(&buf).map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        Ok(leaf)
    })
}

fn dn_of(ca: &Made) -> rustls::DistinguishedName {
    rustls::DistinguishedName::from(ca.parsed().subject_raw().to_vec())
}

/// A client with several identities answers a server that names CAs with the identity issued
/// under one of them; a server naming only CAs none of them is issued under gets none (as
/// GnuTLS, and so QEMU and libvirt, answer): the client does not hand a server that says it
/// cannot use them the certificate of another CA. A server naming nothing gets the first.
#[test]
fn a_client_with_several_identities_sends_none_to_a_server_naming_other_cas() {
    let ca_a = self_signed(&Spec::ca("CA A"));
    let ca_b = self_signed(&Spec::ca("CA B"));
    let ca_c = self_signed(&Spec::ca("CA C"));
    let server = server_of(&ca_a, Alg::EcdsaP256, "localhost");
    let of_b = signed_by(&Spec::client("client-of-b"), &ca_b);
    let of_a = signed_by(&Spec::client("client-of-a"), &ca_a);
    let ctx = context(ContextFlags::default(), Some(&ca_a));
    ctx.add_pem(CertDataType::CaCert, &ca_b.pem()).unwrap();
    with_identity(&ctx, &of_b, false);
    ctx.add_identity(Role::Client, &of_a.pem(), &of_a.key_pem())
        .unwrap();
    for (hints, want, what) in [
        (vec![dn_of(&ca_a)], of_a.der(), "names A"),
        (vec![dn_of(&ca_b)], of_b.der(), "names B"),
        (
            vec![dn_of(&ca_c), dn_of(&ca_a)],
            of_a.der(),
            "names C and A",
        ),
        (Vec::new(), of_b.der(), "names nothing"),
        (vec![dn_of(&ca_c)], Vec::new(), "names only C"),
    ] {
        let (port, handle) = hinting_server(&[&ca_a, &ca_b], hints, &server, false, true);
        let connected = connect(&ctx, port);
        let leaf = handle.join().unwrap();
        assert!(connected.is_ok(), "{what}: {connected:?}");
        assert_eq!(leaf.unwrap(), want, "{what}");
    }
    // With one identity nothing changed: rustls sends it whatever the server names.
    let one = context(ContextFlags::default(), Some(&ca_a));
    with_identity(&one, &of_b, false);
    let (port, handle) = hinting_server(&[&ca_a, &ca_b], vec![dn_of(&ca_c)], &server, false, true);
    connect(&one, port).unwrap();
    assert_eq!(handle.join().unwrap().unwrap(), of_b.der(), "one identity");
    // A server that requires a certificate: the client's error says why it sent none (TLS
    // 1.2: within the handshake; TLS 1.3: on the first read, where the refusal arrives).
    for tls13 in [false, true] {
        let (port, handle) =
            hinting_server(&[&ca_a, &ca_b], vec![dn_of(&ca_c)], &server, true, tls13);
        let err = connect(&ctx, port).unwrap_err();
        assert!(handle.join().unwrap().is_err());
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        assert!(
            err.message()
                .contains("none of the client identities (data (ECDSA), data (ECDSA)) is issued"),
            "TLS 1.3: {tls13}: {err}"
        );
    }
}

/// Reload with an identity added from files: a key readable by others is refused when added;
/// an identity file removed, or a certificate replaced before its key (half-updated files
/// mid-rotation), is refused by the reload, naming the file, and the old identities stay,
/// whatever the sanity flags; the completed rotation is taken.
#[test]
fn a_reload_refuses_a_removed_or_half_updated_identity_and_keeps_the_old_ones() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let rsa = server_of(&ca, Alg::Rsa2048, "rsa.localhost");
    let ecdsa = server_of(&ca, Alg::EcdsaP256, "ecdsa.localhost");
    let newer = server_of(&ca, Alg::EcdsaP256, "newer.localhost");
    for flags in [ContextFlags::default(), ContextFlags::NO_SANITY] {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let cert = write(d, "extra-cert.pem", ecdsa.pem(), 0o644);
        let key = write(d, "extra-key.pem", ecdsa.key_pem(), 0o644);
        let ctx = context(flags, Some(&ca));
        with_identity(&ctx, &rsa, true);
        let err = ctx
            .add_identity_files(Role::Server, &cert, &key)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InsecurePermissions, "{err}");
        assert!(err.message().contains("extra-key.pem"), "{err}");
        assert_eq!(ctx.credentials().more_servers.len(), 0);
        let key = write(d, "extra-key.pem", ecdsa.key_pem(), 0o600);
        ctx.add_identity_files(Role::Server, &cert, &key).unwrap();
        let second = |ctx: &Context| {
            ctx.credentials().more_servers[0].chain[0]
                .subject()
                .to_owned()
        };
        // Half-updated: the new certificate, the old key.
        write(d, "extra-cert.pem", newer.pem(), 0o644);
        let err = ctx.reload().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyMismatch, "{flags:?}: {err}");
        assert!(err.message().contains("extra-key.pem"), "{err}");
        assert_eq!(second(&ctx), "CN=ecdsa.localhost");
        // Completed.
        write(d, "extra-key.pem", newer.key_pem(), 0o600);
        ctx.reload().unwrap();
        assert_eq!(second(&ctx), "CN=newer.localhost");
        // Removed.
        std::fs::remove_file(&cert).unwrap();
        let err = ctx.reload().unwrap_err();
        assert!(err.message().contains("extra-cert.pem"), "{err}");
        assert_eq!(second(&ctx), "CN=newer.localhost");
        assert_eq!(
            ctx.credentials().server.chain[0].subject(),
            "CN=rsa.localhost"
        );
    }
}

/// add_identity from other threads while handshakes run: every handshake sees a whole
/// snapshot (it completes with one of the identities), and every addition is kept.
#[test]
fn identities_added_during_handshakes_are_all_kept() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let rsa = server_of(&ca, Alg::Rsa2048, "rsa.localhost");
    let client = signed_by(&Spec::client("client1"), &ca);
    let ctx = context(ContextFlags::default(), Some(&ca));
    with_identity(&ctx, &rsa, true);
    let extra: Vec<Made> = (0..8)
        .map(|i| server_of(&ca, Alg::EcdsaP256, &format!("e{i}.localhost")))
        .collect();
    let adders: Vec<_> = extra
        .chunks(4)
        .map(|chunk| {
            let ctx = Arc::clone(&ctx);
            let pems: Vec<(String, String)> =
                chunk.iter().map(|m| (m.pem(), m.key_pem())).collect();
            std::thread::spawn(move || {
                for (c, k) in pems {
                    ctx.add_identity(Role::Server, &c, &k).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..6 {
        let (port, server) = serve_echo(Arc::clone(&ctx));
        restricted_client(
            port,
            &ca,
            &client,
            rustls::crypto::ring::default_provider().signature_verification_algorithms,
            true,
        )
        .unwrap();
        server.join().unwrap().unwrap();
    }
    for a in adders {
        a.join().unwrap();
    }
    assert_eq!(ctx.credentials().more_servers.len(), 8);
}

/// Two further identities with the same fault, added as text (both named "data"): the check
/// reports each, under its own place in the load order, not one for both.
#[test]
fn the_check_reports_the_same_fault_of_two_identities_twice() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let good = server_of(&ca, Alg::EcdsaP256, "good.localhost");
    let ctx = context(ContextFlags::default(), Some(&ca));
    with_identity(&ctx, &good, true);
    for cn in ["c1", "c2"] {
        // A client certificate as a server identity: no serverAuth.
        let wrong = signed_by(&Spec::client(cn), &ca);
        ctx.add_identity(Role::Server, &wrong.pem(), &wrong.key_pem())
            .unwrap();
    }
    let report = ctx.check(Role::Server);
    let text = report.to_text();
    // A non-critical EKU without serverAuth: libvirt warns.
    let errors: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == Rule::Purpose)
        .collect();
    assert_eq!(errors.len(), 2, "{text}");
    assert!(
        errors
            .iter()
            .any(|f| f.message.contains("server identity 2")),
        "{text}"
    );
    assert!(
        errors
            .iter()
            .any(|f| f.message.contains("server identity 3")),
        "{text}"
    );
}

/// TLS 1.2: a client whose cipher suites are all ECDHE_RSA (it offers every signature scheme)
/// gets the RSA identity although the ECDSA one comes first: rustls narrows the schemes to the
/// client's suites before the choice. A client with ECDHE_ECDSA suites only gets the ECDSA one
/// although the RSA one comes first.
#[test]
fn tls12_suites_narrow_the_choice() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let rsa = server_of(&ca, Alg::Rsa2048, "rsa.localhost");
    let ecdsa = server_of(&ca, Alg::EcdsaP256, "ecdsa.localhost");
    let client = signed_by(&Spec::client("client1"), &ca);
    for (first, second, suite_of, want) in [
        (&ecdsa, &rsa, "_RSA_", &rsa),
        (&rsa, &ecdsa, "_ECDSA_", &ecdsa),
    ] {
        let ctx = context(ContextFlags::default(), Some(&ca));
        with_identity(&ctx, first, true);
        ctx.add_identity(Role::Server, &second.pem(), &second.key_pem())
            .unwrap();
        let (port, server) = serve_echo(Arc::clone(&ctx));
        let base = rustls::crypto::ring::default_provider();
        let provider = Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: base
                .cipher_suites
                .iter()
                .filter(|s| format!("{:?}", s.suite()).contains(suite_of))
                .cloned()
                .collect(),
            ..base
        });
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots(&ca),
            Arc::clone(&provider),
        )
        .build()
        .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions(false))
            .unwrap()
            .with_webpki_verifier(verifier)
            .with_client_auth_cert(vec![client.der().into()], key_der(&client))
            .unwrap();
        let mut conn =
            rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
                .unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let leaf = handshake(&mut conn, &mut stream).unwrap();
        assert_eq!(leaf, want.der(), "suites {suite_of}");
        conn.writer().write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        rustls::Stream::new(&mut conn, &mut stream)
            .read_exact(&mut buf)
            .unwrap();
        server.join().unwrap().unwrap();
    }
}

/// A finding of no identity in particular (the CA expires soon) is reported once whatever the
/// number of identities, each identity's own expiry under its own name, and an anonymous
/// first client identity adds nothing: further identities alone are checked.
#[test]
fn the_check_reports_shared_findings_once_and_each_identitys_own() {
    let soon = now() + 10 * 86_400;
    let ca = self_signed(&Spec::ca("Identities CA").valid(now() - 86_400, soon));
    let ids: Vec<Made> = (0..3)
        .map(|i| {
            let mut spec = Spec::server(&format!("s{i}.localhost")).valid(now() - 86_400, soon - i);
            spec.dns = vec!["localhost".into()];
            signed_by(&spec, &ca)
        })
        .collect();
    let ctx = context(ContextFlags::default(), Some(&ca));
    ctx.set_expiry_horizon(30).unwrap();
    with_identity(&ctx, &ids[0], true);
    for made in &ids[1..] {
        ctx.add_identity(Role::Server, &made.pem(), &made.key_pem())
            .unwrap();
    }
    let report = ctx.check(Role::Server);
    let text = report.to_text();
    let soon: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.rule == Rule::ExpiresSoon)
        .map(|f| f.message.as_str())
        .collect();
    let count = |part: &str| soon.iter().filter(|m| m.contains(part)).count();
    assert_eq!(count("The CA certificate"), 1, "{text}");
    assert_eq!(count("The server certificate"), 3, "{text}");
    assert_eq!(count("server identity 2 (data): The server"), 1, "{text}");
    assert_eq!(count("server identity 3 (data): The server"), 1, "{text}");
    // Client: no first identity, two further ones; each checked, no "no certificate" finding.
    let c1 = signed_by(&Spec::client("c1"), &ca);
    let c2 = signed_by(&Spec::client("c2"), &ca);
    let ctx = context(ContextFlags::default(), Some(&ca));
    ctx.add_identity(Role::Client, &c1.pem(), &c1.key_pem())
        .unwrap();
    ctx.add_identity(Role::Client, &c2.pem(), &c2.key_pem())
        .unwrap();
    let report = ctx.check(Role::Client);
    assert!(report.errors().next().is_none(), "{}", report.to_text());
}

/// QEMU forms its numbered names with `%zu`: `server-cert-01.pem` or `server-cert-00.pem` is
/// never read, nor is a number too long for any counter; each is said, not left silent.
#[test]
fn qemu_numbered_files_with_a_leading_zero_are_never_read_and_said_so() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let ca = self_signed(&Spec::ca("Identities CA"));
    let made = server_of(&ca, Alg::EcdsaP256, "n.localhost");
    qemu_tree(d, &ca, &[(0, &made)]);
    for name in [
        "server-cert-01.pem",
        "server-key-01.pem",
        "server-cert-00.pem",
    ] {
        write(d, name, made.pem(), 0o600);
    }
    let huge = "server-cert-99999999999999999999999.pem";
    write(d, huge, made.pem(), 0o644);
    let files = locations::qemu_dir(d, Role::Server);
    assert_eq!(
        files.extra_identities,
        [(d.join("server-cert-0.pem"), d.join("server-key-0.pem"))]
    );
    let notes = locations::qemu_identity_notes(d, Role::Server);
    let padded: Vec<_> = notes
        .iter()
        .filter(|n| n.kind == QemuIdentityNoteKind::LeadingZero)
        .collect();
    assert_eq!(padded.len(), 3, "{notes:#?}");
    let first = padded
        .iter()
        .find(|n| n.path == d.join("server-cert-01.pem"))
        .unwrap();
    assert_eq!(first.severity, Severity::Warning);
    assert!(
        first.message.contains("server-cert-01.pem is never read")
            && first.fix.contains("server-cert-1.pem"),
        "{first:#?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.kind == QemuIdentityNoteKind::BeyondMax && n.path == d.join(huge)),
        "{notes:#?}"
    );
}

/// A reload of a QEMU directory finds its numbered identities again by QEMU's rules, as QEMU
/// does when it loads the directory again: one added since is taken, one removed since is
/// dropped (not a refused reload), a gap hides what follows it.
#[test]
fn a_reload_of_a_qemu_directory_finds_its_numbered_identities_again() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let ca = self_signed(&Spec::ca("Identities CA"));
    let a = server_of(&ca, Alg::Rsa2048, "a.localhost");
    let b = server_of(&ca, Alg::EcdsaP256, "b.localhost");
    let c = server_of(&ca, Alg::Ed25519, "c.localhost");
    qemu_tree(d, &ca, &[(0, &a), (1, &b)]);
    let ctx = context(ContextFlags::default(), None);
    ctx.load_files(&locations::qemu_dir(d, Role::Server))
        .unwrap();
    let subjects = |ctx: &Context| -> Vec<String> {
        ctx.credentials()
            .identities(Role::Server)
            .map(|i| i.chain[0].subject().to_owned())
            .collect()
    };
    assert_eq!(subjects(&ctx).len(), 3);
    write(d, "server-cert-2.pem", c.pem(), 0o644);
    write(d, "server-key-2.pem", c.key_pem(), 0o600);
    ctx.reload().unwrap();
    assert_eq!(subjects(&ctx)[3], "CN=c.localhost", "added since");
    for n in [1, 2] {
        std::fs::remove_file(d.join(format!("server-cert-{n}.pem"))).unwrap();
        std::fs::remove_file(d.join(format!("server-key-{n}.pem"))).unwrap();
    }
    ctx.reload().unwrap();
    assert_eq!(
        subjects(&ctx),
        ["CN=first.localhost", "CN=a.localhost"],
        "removed since"
    );
    // -0 removed, -1 there: QEMU stops at the gap.
    write(d, "server-cert-1.pem", b.pem(), 0o644);
    write(d, "server-key-1.pem", b.key_pem(), 0o600);
    std::fs::remove_file(d.join("server-cert-0.pem")).unwrap();
    std::fs::remove_file(d.join("server-key-0.pem")).unwrap();
    ctx.reload().unwrap();
    assert_eq!(subjects(&ctx), ["CN=first.localhost"], "a gap");
    // A first identity replaced with add_pem stays replaced.
    let other = server_of(&ca, Alg::EcdsaP256, "other.localhost");
    with_identity(&ctx, &other, true);
    ctx.reload().unwrap();
    assert_eq!(subjects(&ctx), ["CN=other.localhost"]);
}

/// The SNI preference matches names as the client's check does by default (and GnuTLS's SNI
/// match): a certificate without subjectAltName names its host in the Common Name. A server
/// whose second identity is such a certificate for the host presents it, not a first identity
/// for another name that the client would refuse.
#[test]
fn the_sni_preference_matches_a_common_name_as_the_client_does() {
    let ca = self_signed(&Spec::ca("Identities CA"));
    let other = signed_by(&Spec::server("other.example"), &ca);
    let mut spec = Spec::server("localhost");
    spec.dns = Vec::new();
    let cn_only = signed_by(&spec, &ca);
    let ctx = context(ContextFlags::default(), Some(&ca));
    with_identity(&ctx, &other, true);
    ctx.add_identity(Role::Server, &cn_only.pem(), &cn_only.key_pem())
        .unwrap();
    let client = context(ContextFlags::default(), Some(&ca));
    with_identity(&client, &signed_by(&Spec::client("client1"), &ca), false);
    let (port, server) = serve_echo(Arc::clone(&ctx));
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut s = Session::client(
        &client,
        stream,
        "localhost",
        Some(port),
        SessionFlags::default(),
    )
    .unwrap();
    assert_eq!(
        s.peer_certificates()[0].der().as_ref(),
        cn_only.der().as_slice()
    );
    s.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(s.read(&mut buf).unwrap(), 4);
    server.join().unwrap().unwrap();
}
