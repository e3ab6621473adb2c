//! `virtpki probe --vnc` against a scripted VeNCrypt server on loopback that switches to a
//! virtpki server `Session` on the same socket, as QEMU's `-vnc ...,tls-creds=ID` does.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{issue_server, pki, s, virtpki, Pki};
use virtpki::session::{Session, SessionFlags};
use virtpki::{CertDataType, Context, ContextFlags};

/// The server side of RFB 3.8 and VeNCrypt 0.2 offering `subtype`; false if the client left.
fn rfb_server(stream: &mut TcpStream, subtype: u32) -> std::io::Result<bool> {
    stream.write_all(b"RFB 003.008\n")?;
    let mut version = [0u8; 12];
    stream.read_exact(&mut version)?;
    stream.write_all(&[1, 19])?;
    let mut one = [0u8; 1];
    stream.read_exact(&mut one)?;
    stream.write_all(&[0, 2])?;
    let mut two = [0u8; 2];
    stream.read_exact(&mut two)?;
    stream.write_all(&[0, 1])?;
    stream.write_all(&subtype.to_be_bytes())?;
    let mut chosen = [0u8; 4];
    stream.read_exact(&mut chosen)?;
    let ok = u32::from_be_bytes(chosen) == subtype;
    stream.write_all(&[u8::from(ok)])?;
    Ok(ok)
}

/// A VNC server with the CA of `ca` (it demands a client certificate from it, as QEMU with
/// verify-peer=on), presenting `cert`/`key`, offering X509None; counts the clients that got
/// SecurityResult OK. Serves until the test process ends.
fn vnc_server(ca: &Path, cert: &Path, key: &Path) -> (u16, Arc<AtomicUsize>) {
    vnc_server_offering(ca, cert, key, 260)
}

/// [`vnc_server`] offering `subtype`.
fn vnc_server_offering(
    ca: &Path,
    cert: &Path,
    key: &Path,
    subtype: u32,
) -> (u16, Arc<AtomicUsize>) {
    let ctx = Context::new(ContextFlags::default());
    ctx.add_file(CertDataType::CaCert, &ca.join("cacert.pem"))
        .unwrap();
    ctx.add_file(CertDataType::ServerCert, cert).unwrap();
    ctx.add_file(CertDataType::ServerKey, key).unwrap();
    let ctx = Arc::new(ctx);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            if !matches!(rfb_server(&mut stream, subtype), Ok(true)) {
                continue;
            }
            if let Ok(mut session) = Session::server(&ctx, stream, SessionFlags::default()) {
                if session.write_all(&0u32.to_be_bytes()).is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                let mut init = [0u8; 1];
                let _ = session.read(&mut init);
                let _ = session.close();
            }
        }
    });
    (port, accepted)
}

/// A server that sends `bytes` to each client and closes.
fn broken_server(bytes: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.write_all(bytes);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let mut sink = Vec::new();
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.read_to_end(&mut sink);
        }
    });
    port
}

/// A QEMU x509 directory: `ca-cert.pem` of `ca_dir`, and the client files of `p` by QEMU's
/// names unless `client` is false.
fn qemu_dir(dir: &Path, name: &str, ca_dir: &Path, p: &Pki, client: bool) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir(&out).unwrap();
    std::fs::copy(ca_dir.join("cacert.pem"), out.join("ca-cert.pem")).unwrap();
    if client {
        std::fs::copy(p.client.join("clientcert.pem"), out.join("client-cert.pem")).unwrap();
        std::fs::copy(p.client.join("clientkey.pem"), out.join("client-key.pem")).unwrap();
    }
    out
}

fn probe(
    dir: &Path,
    port: u16,
    host: &str,
    qemu: &Path,
    trust: &str,
    extra: &[&str],
) -> common::Run {
    let server = format!("{host}:{port}");
    let known = dir.join("known_servers");
    let mut args = vec![
        "probe",
        "--vnc",
        &server,
        "--qemu-dir",
        s(qemu),
        "--known-file",
        s(&known),
        "--trust",
        trust,
    ];
    args.extend_from_slice(extra);
    virtpki(dir, &args)
}

fn wait_for(count: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while count.load(Ordering::SeqCst) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(count.load(Ordering::SeqCst), n);
}

#[test]
fn a_vnc_server_verified_by_the_ca_with_the_rfb_negotiation_shown() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let (port, accepted) = vnc_server(
        &p.ca,
        &p.server.join("servercert.pem"),
        &p.server.join("serverkey.pem"),
    );
    let qemu = qemu_dir(dir.path(), "qemu", &p.ca, &p, true);
    let run = probe(dir.path(), port, "localhost", &qemu, "never", &[]).expect(0);
    let out = &run.stdout;
    assert!(out.contains("Trusted: verified against the CA"), "{out}");
    assert!(out.contains("Subject: CN=localhost"), "{out}");
    assert!(out.contains("(VNC, VeNCrypt X509None (260))"), "{out}");
    let types = common::line_with(out, "RFB security types");
    assert!(types.contains("RFB 3.8: VeNCrypt (19)"), "{types}");
    let sub = common::line_with(out, "VeNCrypt sub-types");
    assert!(sub.contains("chosen X509None (260)"), "{sub}");
    let ca_line = common::line_with(out, "ca-cert.pem");
    assert!(ca_line.contains("PASS"), "{ca_line}");
    let accepts = common::line_with(out, "server accepts this client");
    assert!(
        accepts.contains("PASS") && accepts.contains("SecurityResult OK"),
        "{accepts}"
    );
    wait_for(&accepted, 1);
    assert!(!dir.path().join("known_servers").exists());

    let run = probe(dir.path(), port, "127.0.0.1", &qemu, "never", &["--json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["protocol"], "vnc");
    assert_eq!(v["accepted"], true);
    assert_eq!(v["vnc"]["rfb_version"], "3.8");
    assert_eq!(v["vnc"]["security_types"], serde_json::json!([19]));
    assert_eq!(v["vnc"]["chosen"]["value"], 260);
    assert_eq!(v["vnc"]["chosen"]["name"], "X509None");
    assert_eq!(v["certificate"]["subject"], "CN=localhost");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["result"] != "fail"),
        "{v}"
    );
}

#[test]
fn trust_on_first_use_once_and_always_records_the_vnc_port() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let other = dir.path().join("other-ca");
    common::ca_init(dir.path(), &other);
    let (port, accepted) = vnc_server(
        &p.ca,
        &p.server.join("servercert.pem"),
        &p.server.join("serverkey.pem"),
    );
    // The QEMU dir holds another CA than the server's: the issuer is unknown.
    let qemu = qemu_dir(dir.path(), "qemu", &other, &p, true);
    let known = dir.path().join("known_servers");
    let run = probe(dir.path(), port, "localhost", &qemu, "never", &[]).expect(1);
    assert!(run.stdout.contains("Refused:"), "{}", run.stdout);
    let handshake = common::line_with(&run.stdout, "server accepts this client");
    assert!(handshake.contains("not tried"), "{handshake}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);

    let run = probe(dir.path(), port, "localhost", &qemu, "once", &[]).expect(0);
    assert!(
        run.stdout.contains("Accepted once (not recorded)"),
        "{}",
        run.stdout
    );
    wait_for(&accepted, 1);
    assert!(!std::fs::read_to_string(&known)
        .unwrap_or_default()
        .contains("# host"));

    let run = probe(dir.path(), port, "localhost", &qemu, "always", &["--json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["recorded"], true, "{v}");
    let store = std::fs::read_to_string(&known).unwrap();
    assert!(
        store.contains(&format!("# host localhost port {port}")),
        "{store}"
    );
    wait_for(&accepted, 2);
    // Pinned now: accepted with --trust never.
    let run = probe(dir.path(), port, "localhost", &qemu, "never", &[]).expect(0);
    assert!(run.stdout.contains("pinned"), "{}", run.stdout);
}

#[test]
fn a_wrong_host_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let named = dir.path().join("named");
    issue_server(dir.path(), s(&p.ca), "elsewhere.example", s(&named)).expect(0);
    let (port, accepted) = vnc_server(
        &p.ca,
        &named.join("servercert.pem"),
        &named.join("serverkey.pem"),
    );
    let qemu = qemu_dir(dir.path(), "qemu", &p.ca, &p, true);
    let run = probe(dir.path(), port, "127.0.0.1", &qemu, "never", &[]).expect(1);
    let host = common::line_with(&run.stdout, "host name 127.0.0.1");
    assert!(host.contains("FAIL"), "{host}");
    assert!(run.stdout.contains("Refused:"), "{}", run.stdout);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn a_server_that_refuses_a_client_without_certificate_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let (port, accepted) = vnc_server(
        &p.ca,
        &p.server.join("servercert.pem"),
        &p.server.join("serverkey.pem"),
    );
    // The CA only: the server (verify-peer=on) drops this client after TLS.
    let qemu = qemu_dir(dir.path(), "qemu", &p.ca, &p, false);
    let run = probe(dir.path(), port, "localhost", &qemu, "never", &[]).expect(1);
    let accepts = common::line_with(&run.stdout, "server accepts this client");
    assert!(
        accepts.contains("FAIL") && accepts.contains("probably refused its certificate"),
        "{accepts}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn a_malformed_server_is_exit_2_with_the_step_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let qemu = qemu_dir(dir.path(), "qemu", &p.ca, &p, true);
    let cases: [(&'static [u8], &str); 5] = [
        (b"RFB 003.003\n", "RFB version: the server speaks RFB 3.3"),
        (
            b"HTTP/1.1 400",
            "RFB version: the server sent \"HTTP/1.1 400\"",
        ),
        (
            b"RFB 003.008\n\x02\x01\x02",
            "RFB security types: the server offers None (1), VNC (2)",
        ),
        (
            b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x01",
            "VeNCrypt sub-types: the server offers only TLSNone (257)",
        ),
        (
            b"RFB 003.008\n\x01\x13\x00",
            "VeNCrypt version: the server closed the connection after 1 of 2 bytes",
        ),
    ];
    for (bytes, needle) in cases {
        let port = broken_server(bytes);
        let run = probe(dir.path(), port, "127.0.0.1", &qemu, "never", &[]).expect(2);
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        let run = probe(dir.path(), port, "127.0.0.1", &qemu, "never", &["--json"]).expect(2);
        assert!(
            run.stdout.contains(needle) || run.stderr.contains(needle),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    // --qemu-dir is for --vnc only, and not with --path.
    let run = virtpki(
        dir.path(),
        &[
            "probe",
            "localhost:5900",
            "--qemu-dir",
            "x",
            "--trust",
            "never",
        ],
    )
    .expect(2);
    assert!(run.stderr.contains("--vnc"), "{}", run.stderr);
    let run = virtpki(
        dir.path(),
        &[
            "probe",
            "--vnc",
            "localhost:5900",
            "--qemu-dir",
            "x",
            "--path",
            "y",
            "--trust",
            "never",
        ],
    )
    .expect(2);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
    // Nothing listens: the fix names QEMU's VNC port rule.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = virtpki(
        dir.path(),
        &[
            "probe",
            "--vnc",
            &format!("127.0.0.1:{closed}"),
            "--trust",
            "never",
        ],
    )
    .expect(2);
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    assert!(
        run.stderr.contains("5900 + the display number"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_plain_subtype_server_is_not_reported_as_accepting_the_client() {
    // X509Plain: the viewer speaks first, so after TLS nothing tells whether the server (which
    // demands a client certificate here) accepted this client without one: not a PASS.
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let (port, accepted) = vnc_server_offering(
        &p.ca,
        &p.server.join("servercert.pem"),
        &p.server.join("serverkey.pem"),
        262,
    );
    let qemu = qemu_dir(dir.path(), "qemu", &p.ca, &p, false);
    let run = probe(dir.path(), port, "localhost", &qemu, "never", &[]).expect(0);
    let accepts = common::line_with(&run.stdout, "server accepts this client");
    assert!(
        accepts.contains("INFO") && accepts.contains("X509Plain (262)"),
        "{accepts}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    let run = probe(dir.path(), port, "localhost", &qemu, "never", &["--json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let last = v["checks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["check"], "server accepts this client", "{v}");
    assert_eq!(last["result"], "info", "{v}");
}

/// A server that sends `bytes` one at a time, `gap` apart, then keeps dripping `x`.
fn dripping_server(bytes: &'static [u8], gap: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                for b in bytes.iter().chain(std::iter::repeat(&b'x')).take(10_000) {
                    if stream.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(gap);
                }
            });
        }
    });
    port
}

#[test]
fn a_server_dripping_bytes_is_cut_off_at_the_timeout() {
    // Each byte arrives within the per-read timeout; the whole exchange must not outlast it
    // (a refusal reason of 4096 bytes at 0.4 s each would be half an hour).
    let dir = tempfile::tempdir().unwrap();
    let port = dripping_server(
        b"RFB 003.008\n\x00\x00\x00\x10\x00",
        Duration::from_millis(300),
    );
    let start = Instant::now();
    let run = virtpki(
        dir.path(),
        &[
            "probe",
            "--vnc",
            &format!("127.0.0.1:{port}"),
            "--trust",
            "never",
            "--timeout",
            "2",
        ],
    )
    .expect(2);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "took {took:?}: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("RFB version: no answer from the server in time"),
        "{}",
        run.stderr
    );
}
