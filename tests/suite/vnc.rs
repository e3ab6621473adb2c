//! The VNC viewer's RFB 3.8 / VeNCrypt handshake (`virtpki::vnc`) against scripted servers
//! over a socket pair: the happy path for each x509 sub-type, every malformed or refusing
//! server, a cut at every byte, then real TLS on the same socket with a server `Session`.

use crate::common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use virtpki::session::{Session, SessionFlags};
use virtpki::vnc::{self, AfterTls, SubType};
use virtpki::{ContextFlags, ErrorKind};

/// What a QEMU-like server sends for a successful negotiation offering `subtypes`.
fn server_bytes(subtypes: &[u32]) -> Vec<u8> {
    let mut b = b"RFB 003.008\n".to_vec();
    b.extend_from_slice(&[1, 19]); // one security type: VeNCrypt
    b.extend_from_slice(&[0, 2]); // VeNCrypt 0.2
    b.push(0); // version accepted
    b.push(subtypes.len() as u8);
    for s in subtypes {
        b.extend_from_slice(&s.to_be_bytes());
    }
    b.push(1); // sub-type accepted
    b
}

/// What the client must send choosing `chosen`.
fn client_bytes(chosen: u32) -> Vec<u8> {
    let mut b = b"RFB 003.008\n".to_vec();
    b.push(19);
    b.extend_from_slice(&[0, 2]);
    b.extend_from_slice(&chosen.to_be_bytes());
    b
}

/// A server that sends `script` regardless, then closes its sending side and returns what the
/// client sent (a cut script is a server closing mid-message).
fn scripted(script: Vec<u8>) -> (UnixStream, JoinHandle<Vec<u8>>) {
    let (client, mut server) = UnixStream::pair().unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let handle = std::thread::spawn(move || {
        let _ = server.write_all(&script);
        let _ = server.shutdown(Shutdown::Write);
        let mut got = Vec::new();
        let _ = server.read_to_end(&mut got);
        got
    });
    (client, handle)
}

/// Negotiates against `script`; the result and what the client sent.
fn run(script: Vec<u8>) -> (virtpki::Result<vnc::Negotiation>, Vec<u8>) {
    let (mut client, handle) = scripted(script);
    let result = vnc::negotiate(&mut client);
    drop(client);
    (result, handle.join().unwrap())
}

fn fails(script: Vec<u8>, kind: ErrorKind) -> String {
    let (result, _) = run(script);
    let err = result.unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    err.message().to_owned()
}

#[test]
fn each_x509_subtype_is_negotiated_with_the_exact_bytes() {
    for sub in [260u32, 261, 262, 263] {
        let (result, sent) = run(server_bytes(&[sub]));
        let n = result.unwrap();
        assert_eq!(n.chosen, SubType(sub));
        assert_eq!(n.server_version, (3, 8));
        assert_eq!(n.security_types, vec![19]);
        assert_eq!(n.vencrypt_version, (0, 2));
        assert_eq!(n.subtypes, vec![SubType(sub)]);
        assert_eq!(sent, client_bytes(sub), "sub-type {sub}");
    }
    // Xvnc offers several in one list: anonymous ones are passed over, X509None preferred.
    let (result, sent) = run(server_bytes(&[257, 262, 260, 258]));
    assert_eq!(result.unwrap().chosen, SubType::X509_NONE);
    assert_eq!(sent, client_bytes(260));
    // A viewer without a password can restrict the choice.
    let (mut client, handle) = scripted(server_bytes(&[261, 262]));
    let n = vnc::negotiate_choosing(&mut client, &[SubType::X509_PLAIN]).unwrap();
    drop(client);
    assert_eq!(n.chosen, SubType::X509_PLAIN);
    assert_eq!(handle.join().unwrap(), client_bytes(262));
}

#[test]
fn later_versions_are_answered_with_3_8() {
    for version in [&b"RFB 003.889\n"[..], b"RFB 004.001\n"] {
        let mut script = version.to_vec();
        script.extend_from_slice(&server_bytes(&[260])[12..]);
        let (result, sent) = run(script);
        assert_eq!(result.unwrap().chosen, SubType::X509_NONE);
        assert_eq!(&sent[..12], b"RFB 003.008\n");
    }
}

#[test]
fn a_wrong_or_old_version_is_refused_and_named() {
    let with_version = |v: &[u8]| {
        let mut script = v.to_vec();
        script.extend_from_slice(&server_bytes(&[260])[12..]);
        script
    };
    for (v, needle) in [
        (&b"RFB 003.003\n"[..], "RFB 3.3"),
        (b"RFB 003.007\n", "RFB 3.7"),
        (b"RFB 002.000\n", "RFB 2.0"),
    ] {
        let (result, sent) = run(with_version(v));
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        assert!(err.message().contains(needle), "{err}");
        assert!(err.message().starts_with("RFB version:"), "{err}");
        assert!(sent.is_empty(), "nothing answered to {v:?}");
    }
    // Not RFB at all (an SSH or TLS port), shown escaped.
    let msg = fails(b"SSH-2.0-\x1b[m\n".to_vec(), ErrorKind::Parse);
    assert!(msg.contains("not an RFB version"), "{msg}");
    assert!(msg.contains("SSH-2.0-\\x1b[m\\n"), "{msg}");
    assert!(!msg.contains('\x1b'));
    let msg = fails(b"RFB 003.0x8\n".to_vec(), ErrorKind::Parse);
    assert!(msg.contains("RFB 003.0x8\\n"), "{msg}");
}

#[test]
fn a_server_without_vencrypt_is_refused_naming_what_it_offers() {
    let mut script = b"RFB 003.008\n".to_vec();
    script.extend_from_slice(&[3, 1, 2, 99]);
    let msg = fails(script, ErrorKind::Tls);
    assert!(
        msg.contains("None (1), VNC (2), type 99 but not VeNCrypt (19)"),
        "{msg}"
    );
    assert!(msg.contains("tls-creds"), "{msg}");
}

#[test]
fn a_refusal_reason_is_read_bounded_and_escaped() {
    let mut script = b"RFB 003.008\n".to_vec();
    script.push(0);
    let reason = b"Too many \x1b[31mclients";
    script.extend_from_slice(&(reason.len() as u32).to_be_bytes());
    script.extend_from_slice(reason);
    let msg = fails(script, ErrorKind::Tls);
    assert!(msg.contains("refused the connection"), "{msg}");
    assert!(msg.contains("Too many \\x1b[31mclients"), "{msg}");
    // Over the limit: refused on the length, nothing allocated or read for it.
    for len in [vnc::MAX_REASON as u32 + 1, u32::MAX] {
        let mut script = b"RFB 003.008\n".to_vec();
        script.push(0);
        script.extend_from_slice(&len.to_be_bytes());
        let msg = fails(script, ErrorKind::TooLarge);
        assert!(msg.contains(&format!("{len} bytes")), "{msg}");
        assert!(msg.starts_with("RFB security types:"), "{msg}");
    }
    // Exactly the limit is read.
    let mut script = b"RFB 003.008\n".to_vec();
    script.push(0);
    script.extend_from_slice(&(vnc::MAX_REASON as u32).to_be_bytes());
    script.extend_from_slice(&vec![b'r'; vnc::MAX_REASON]);
    let msg = fails(script, ErrorKind::Tls);
    assert!(msg.contains(&"r".repeat(vnc::MAX_REASON)), "{msg}");
}

#[test]
fn no_x509_subtype_or_only_anonymous_tls_fails_closed() {
    // Only anonymous TLS: named, refused, and the client says it cannot choose (0).
    let script = server_bytes(&[257, 258, 264]);
    let (result, sent) = run(script[..script.len() - 1].to_vec());
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    let msg = err.message();
    assert!(
        msg.contains("only TLSNone (257), TLSVnc (258), TLSSASL (264)"),
        "{msg}"
    );
    assert!(msg.contains("without a certificate"), "{msg}");
    assert_eq!(sent, client_bytes(0));
    // Plain and unknown sub-types.
    let script = server_bytes(&[256, 999]);
    let msg = fails(script[..script.len() - 1].to_vec(), ErrorKind::Tls);
    assert!(
        msg.contains("Plain (256), unknown (999) and no x509 sub-type"),
        "{msg}"
    );
    // x509 offered, but not what this viewer accepts.
    let (mut client, handle) = scripted(server_bytes(&[261]));
    let err = vnc::negotiate_choosing(&mut client, &[SubType::X509_NONE]).unwrap_err();
    drop(client);
    assert!(
        err.message()
            .contains("offers X509Vnc (261), none of which this client accepts (X509None (260))"),
        "{err}"
    );
    assert_eq!(handle.join().unwrap(), client_bytes(0));
    // An empty list is the server's refusal.
    let script = server_bytes(&[]);
    let msg = fails(script[..script.len() - 1].to_vec(), ErrorKind::Tls);
    assert!(
        msg.contains("VeNCrypt sub-types: the server offers none"),
        "{msg}"
    );
}

#[test]
fn a_preference_that_is_not_x509_is_an_invalid_argument() {
    for pref in [
        &[][..],
        &[SubType::TLS_NONE],
        &[SubType::X509_NONE, SubType(0)],
    ] {
        let (mut client, _handle) = scripted(server_bytes(&[260]));
        let err = vnc::negotiate_choosing(&mut client, pref).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArg, "{err}");
    }
}

#[test]
fn refused_acknowledgements_and_old_vencrypt_are_errors() {
    // Version acknowledgement non-zero.
    let mut script = server_bytes(&[260]);
    script[16] = 1;
    let msg = fails(script, ErrorKind::Tls);
    assert!(msg.contains("refused version 0.2 (it sent 1)"), "{msg}");
    // VeNCrypt 0.1 only.
    let mut script = server_bytes(&[260]);
    script[15] = 1;
    let msg = fails(script, ErrorKind::Tls);
    assert!(msg.contains("VeNCrypt 0.1 only"), "{msg}");
    // Sub-type acknowledgement 0 (refused) and anything but 1.
    for (ack, needle) in [(0u8, "refused X509None (260)"), (0xff, "sent 0xff, not 1")] {
        let mut script = server_bytes(&[260]);
        *script.last_mut().unwrap() = ack;
        let msg = fails(script, ErrorKind::Tls);
        assert!(msg.contains(needle), "{msg}");
        assert!(
            msg.starts_with("VeNCrypt sub-type acknowledgement"),
            "{msg}"
        );
    }
}

#[test]
fn a_server_that_stops_at_any_byte_is_a_clear_error() {
    let full = server_bytes(&[262, 260]);
    // Which step each offset falls in.
    let step_at = |i: usize| match i {
        0..=11 => "RFB version",
        12..=13 => "RFB security types",
        14..=15 => "VeNCrypt version",
        16 => "VeNCrypt version acknowledgement",
        17..=25 => "VeNCrypt sub-types",
        _ => "VeNCrypt sub-type acknowledgement",
    };
    for cut in 0..full.len() {
        let (result, _) = run(full[..cut].to_vec());
        let err = result.expect_err(&format!("cut at {cut}"));
        assert_eq!(err.kind(), ErrorKind::Tls, "cut at {cut}: {err}");
        let msg = err.message();
        assert!(
            msg.starts_with(&format!("{}:", step_at(cut))),
            "cut at {cut}: {msg}"
        );
        assert!(
            msg.contains("the server closed the connection after"),
            "cut at {cut}: {msg}"
        );
    }
    // Inside a message the bytes received are shown.
    let (result, _) = run(b"RFB 00".to_vec());
    assert!(result
        .unwrap_err()
        .message()
        .contains("after 6 of 12 bytes: \"RFB 00\""),);
    assert!(run(full).0.is_ok());
}

#[test]
fn a_silent_server_times_out_naming_the_step() {
    let (client, server) = UnixStream::pair().unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut client = client;
    let err = vnc::negotiate(&mut client).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.message().starts_with("RFB version: no answer"), "{err}");
    drop(server);
}

/// A QEMU-like VNC server on a socket pair: RFB and VeNCrypt offering `subtype`, then a virtpki
/// server `Session` on the same socket, then `after` inside TLS; returns its TLS result.
fn tls_server(
    server_ctx: std::sync::Arc<virtpki::Context>,
    subtype: u32,
    after: fn(&mut Session<UnixStream>) -> virtpki::Result<()>,
) -> (UnixStream, JoinHandle<virtpki::Result<()>>) {
    let (client, mut server) = UnixStream::pair().unwrap();
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let handle = std::thread::spawn(move || {
        server.write_all(b"RFB 003.008\n").unwrap();
        let mut buf = [0u8; 12];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"RFB 003.008\n");
        server.write_all(&[1, 19]).unwrap();
        let mut one = [0u8; 1];
        server.read_exact(&mut one).unwrap();
        assert_eq!(one[0], 19);
        server.write_all(&[0, 2]).unwrap();
        let mut two = [0u8; 2];
        server.read_exact(&mut two).unwrap();
        assert_eq!(two, [0, 2]);
        server.write_all(&[0, 1]).unwrap();
        server.write_all(&subtype.to_be_bytes()).unwrap();
        let mut four = [0u8; 4];
        server.read_exact(&mut four).unwrap();
        assert_eq!(u32::from_be_bytes(four), subtype);
        server.write_all(&[1]).unwrap();
        let mut session = Session::server(&server_ctx, server, SessionFlags::default())?;
        after(&mut session)
    });
    (client, handle)
}

/// SecurityResult OK, then the ClientInit byte.
fn security_ok(s: &mut Session<UnixStream>) -> virtpki::Result<()> {
    s.write_all(&0u32.to_be_bytes())?;
    let mut init = [0u8; 1];
    let n = s.read(&mut init)?;
    assert_eq!((n, init[0]), (1, 1), "ClientInit (shared)");
    s.close()
}

#[test]
fn full_handshake_switches_to_tls_on_the_same_socket_and_verifies_the_server() {
    let p = pki();
    let (mut stream, server) = tls_server(server_ctx(&p), 260, security_ok);
    let n = vnc::negotiate(&mut stream).unwrap();
    let client = client_ctx(&p, ContextFlags::default());
    let mut session = Session::client(
        &client,
        stream,
        "localhost",
        Some(5900),
        SessionFlags::default(),
    )
    .unwrap();
    assert_eq!(
        session.peer_certificates()[0].subject(),
        p.server.parsed().subject()
    );
    assert_eq!(
        vnc::after_tls(&mut session, &n).unwrap(),
        AfterTls::Accepted
    );
    session.write_all(&[1]).unwrap();
    server.join().unwrap().unwrap();

    // X509Vnc: the challenge is handed to the viewer.
    fn challenge(s: &mut Session<UnixStream>) -> virtpki::Result<()> {
        s.write_all(&[7u8; 16])?;
        s.close()
    }
    let (mut stream, server) = tls_server(server_ctx(&p), 261, challenge);
    let n = vnc::negotiate(&mut stream).unwrap();
    let mut session = Session::client(
        &client,
        stream,
        "127.0.0.1",
        Some(5900),
        SessionFlags::default(),
    )
    .unwrap();
    assert_eq!(
        vnc::after_tls(&mut session, &n).unwrap(),
        AfterTls::VncChallenge([7; 16])
    );
    server.join().unwrap().unwrap();

    // X509Plain: the viewer speaks first; nothing read.
    fn nothing(s: &mut Session<UnixStream>) -> virtpki::Result<()> {
        s.close()
    }
    let (mut stream, server) = tls_server(server_ctx(&p), 262, nothing);
    let n = vnc::negotiate(&mut stream).unwrap();
    let mut session =
        Session::client(&client, stream, "localhost", None, SessionFlags::default()).unwrap();
    assert_eq!(
        vnc::after_tls(&mut session, &n).unwrap(),
        AfterTls::ClientSpeaksFirst
    );
    server.join().unwrap().unwrap();
}

#[test]
fn the_client_side_verification_refuses_a_wrong_host_name() {
    let p = pki();
    let (mut stream, server) = tls_server(server_ctx(&p), 260, security_ok);
    vnc::negotiate(&mut stream).unwrap();
    let client = client_ctx(&p, ContextFlags::default());
    let err = Session::client(
        &client,
        stream,
        "wrong.example",
        Some(5900),
        SessionFlags::default(),
    )
    .err()
    .expect("a wrong host name is refused");
    assert_eq!(err.kind(), ErrorKind::HostnameMismatch, "{err}");
    assert!(server.join().unwrap().is_err());
}

#[test]
fn a_server_that_refuses_the_client_certificate_is_reported_after_tls() {
    let p = pki();
    // The server demands a client certificate (as QEMU with verify-peer=on); this client has
    // none: its TLS 1.3 handshake completes, then the server drops it.
    let (mut stream, server) = tls_server(server_ctx(&p), 260, security_ok);
    let n = vnc::negotiate(&mut stream).unwrap();
    let anonymous = context(ContextFlags::default(), Some(&p.ca));
    let result = Session::client(
        &anonymous,
        stream,
        "localhost",
        Some(5900),
        SessionFlags::default(),
    )
    .and_then(|mut s| vnc::after_tls(&mut s, &n));
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(
        err.message().contains("probably refused its certificate")
            || err.message().contains("certificate"),
        "{err}"
    );
    assert!(server.join().unwrap().is_err());

    // SecurityResult 1 with a reason: the reason is shown.
    fn failed(s: &mut Session<UnixStream>) -> virtpki::Result<()> {
        let reason = b"Authentication \x07failed";
        let mut m = 1u32.to_be_bytes().to_vec();
        m.extend_from_slice(&(reason.len() as u32).to_be_bytes());
        m.extend_from_slice(reason);
        s.write_all(&m)?;
        s.close()
    }
    let (mut stream, server) = tls_server(server_ctx(&p), 260, failed);
    let n = vnc::negotiate(&mut stream).unwrap();
    let client = client_ctx(&p, ContextFlags::default());
    let mut session = Session::client(
        &client,
        stream,
        "localhost",
        Some(5900),
        SessionFlags::default(),
    )
    .unwrap();
    let err = vnc::after_tls(&mut session, &n).unwrap_err();
    assert!(
        err.message()
            .contains("refused this client: \"Authentication \\x07failed\""),
        "{err}"
    );
    server.join().unwrap().unwrap();
}

#[test]
fn a_server_silent_after_tls_is_not_said_to_have_dropped_the_client() {
    // A server that completes TLS and then sends nothing: the read times out; the message
    // must not claim the server closed.
    let p = pki();
    fn silent(_s: &mut Session<UnixStream>) -> virtpki::Result<()> {
        std::thread::sleep(Duration::from_secs(2));
        Ok(())
    }
    let (mut stream, server) = tls_server(server_ctx(&p), 260, silent);
    let n = vnc::negotiate(&mut stream).unwrap();
    let handle = stream.try_clone().unwrap();
    let client = client_ctx(&p, ContextFlags::default());
    let mut session = Session::client(
        &client,
        stream,
        "localhost",
        Some(5900),
        SessionFlags::default(),
    )
    .unwrap();
    handle
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let err = vnc::after_tls(&mut session, &n).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.message().contains("stopped answering"), "{err}");
    assert!(!err.message().contains("dropped this client"), "{err}");
    drop(session);
    let _ = server.join().unwrap();
}

#[test]
fn hostile_lists_versions_and_trailing_bytes() {
    // 255 security types with VeNCrypt last (None among them is never taken).
    let mut script = b"RFB 003.008\n".to_vec();
    script.push(255);
    script.extend((0..254).map(|i| if i % 2 == 0 { 1 } else { 2 }));
    script.push(19);
    script.extend_from_slice(&server_bytes(&[260])[14..]);
    let (result, sent) = run(script);
    let n = result.unwrap();
    assert_eq!(n.security_types.len(), 255);
    assert_eq!(sent, client_bytes(260));
    // Only None and VNC: refused, nothing chosen (no fallback to a connection without TLS).
    let mut script = b"RFB 003.008\n".to_vec();
    script.extend_from_slice(&[2, 1, 2]);
    let (result, sent) = run(script);
    assert!(result.unwrap_err().message().contains("not VeNCrypt (19)"));
    assert_eq!(sent, b"RFB 003.008\n");
    // Later VeNCrypt versions are answered with 0.2; the server may refuse it.
    for version in [[0u8, 3], [1, 0]] {
        let mut script = server_bytes(&[260]);
        script[14..16].copy_from_slice(&version);
        let (result, sent) = run(script.clone());
        assert_eq!(result.unwrap().vencrypt_version, (version[0], version[1]));
        assert_eq!(&sent[13..15], &[0, 2]);
        script[16] = 0xff;
        let msg = fails(script, ErrorKind::Tls);
        assert!(msg.contains("refused version 0.2 (it sent 255)"), "{msg}");
    }
    // 255 sub-types, repeated, x509 only at the end.
    let mut offered = vec![257u32; 254];
    offered.push(261);
    let (result, sent) = run(server_bytes(&offered));
    let n = result.unwrap();
    assert_eq!((n.subtypes.len(), n.chosen), (255, SubType::X509_VNC));
    assert_eq!(sent, client_bytes(261));
    // 255 anonymous sub-types: refused, the client answers "cannot choose".
    let script = server_bytes(&[258; 255]);
    let (result, sent) = run(script[..script.len() - 1].to_vec());
    assert!(result
        .unwrap_err()
        .message()
        .contains("without a certificate"));
    assert_eq!(sent, client_bytes(0));
    // Bytes after the acknowledgement are not consumed: they reach TLS, which fails on them.
    let (client, mut server) = UnixStream::pair().unwrap();
    let mut script = server_bytes(&[260]);
    script.extend_from_slice(b"\x00junk");
    server.write_all(&script).unwrap();
    let mut client = client;
    vnc::negotiate(&mut client).unwrap();
    server.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"\x00junk");
    // A refusal reason that is not UTF-8 and holds escapes is shown escaped.
    let mut script = b"RFB 003.008\n".to_vec();
    script.push(0);
    let reason = b"\xff\xfe\x1b]0;owned\x07\xe2\x80\xae";
    script.extend_from_slice(&(reason.len() as u32).to_be_bytes());
    script.extend_from_slice(reason);
    let msg = fails(script, ErrorKind::Tls);
    assert!(
        msg.contains("\\xff\\xfe\\x1b]0;owned\\x07\\xe2\\x80\\xae"),
        "{msg}"
    );
    assert!(
        msg.chars().all(|c| c.is_ascii() && !c.is_control()),
        "{msg}"
    );
}
