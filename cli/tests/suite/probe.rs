//! `virtpki probe` against a virtpki daemon on loopback: every verdict, decision and error.

use crate::common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::openssl_args::NEW_P256_KEY;
use common::{issue_server, pki, s, virtpki, Pki};
use virtpki::generate::{CertificateAuthority, KeyType, ServerParams, Validity};
use virtpki::session::{Session, SessionFlags};
use virtpki::{CertDataType, Context, ContextFlags};

/// A daemon that trusts the clients of every CA in `cas`, presents `cert`/`key`, and lets in
/// the DNs `allowed`; it serves connections until the test process ends.
fn daemon(cas: &[&Path], cert: &Path, key: &Path, allowed: &[&str]) -> u16 {
    daemon_counting(cas, cert, key, allowed).0
}

/// [`daemon`], with the number of clients it accepted so far.
fn daemon_counting(
    cas: &[&Path],
    cert: &Path,
    key: &Path,
    allowed: &[&str],
) -> (u16, Arc<AtomicUsize>) {
    let ctx = Context::new(ContextFlags::default());
    for ca in cas {
        ctx.add_file(CertDataType::CaCert, &ca.join("cacert.pem"))
            .unwrap();
    }
    ctx.add_file(CertDataType::ServerCert, cert).unwrap();
    ctx.add_file(CertDataType::ServerKey, key).unwrap();
    ctx.set_allowed_dn_list(Some(allowed)).unwrap();
    let ctx = Arc::new(ctx);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            if let Ok(mut session) = Session::server(&ctx, stream, SessionFlags::LIBVIRT_CONFIRM) {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = session.close();
            }
        }
    });
    (port, accepted)
}

/// A pkipath directory: the CA certificate of `ca_dir`, the client files of `p`.
fn pkipath(dir: &Path, name: &str, ca_dir: &Path, p: &Pki) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir(&out).unwrap();
    std::fs::copy(ca_dir.join("cacert.pem"), out.join("cacert.pem")).unwrap();
    std::fs::copy(p.client.join("clientcert.pem"), out.join("clientcert.pem")).unwrap();
    std::fs::copy(p.client.join("clientkey.pem"), out.join("clientkey.pem")).unwrap();
    out
}

fn probe(
    dir: &Path,
    port: u16,
    host: &str,
    pkipath: &Path,
    trust: &str,
    extra: &[&str],
) -> common::Run {
    let server = format!("{host}:{port}");
    let known = dir.join("known_servers");
    let mut args = vec![
        "probe",
        &server,
        "--pkipath",
        s(pkipath),
        "--known-file",
        s(&known),
        "--trust",
        trust,
    ];
    args.extend_from_slice(extra);
    virtpki(dir, &args)
}

#[test]
fn a_server_verified_by_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let port = daemon(
        &[&p.ca],
        &p.server.join("servercert.pem"),
        &p.server.join("serverkey.pem"),
        &["C=GB,O=Test,CN=*"],
    );
    let path = pkipath(dir.path(), "pki", &p.ca, &p);
    for host in ["localhost", "127.0.0.1"] {
        let run = probe(dir.path(), port, host, &path, "never", &[]).expect(0);
        assert!(
            run.stdout.contains("Trusted: verified against the CA"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("Subject: CN=localhost"),
            "{}",
            run.stdout
        );
        let accepts = common::line_with(&run.stdout, "server accepts this client");
        assert!(accepts.contains("PASS"), "{accepts}");
    }
    assert!(
        !dir.path().join("known_servers").exists(),
        "nothing to record"
    );
    let json = probe(dir.path(), port, "localhost", &path, "never", &["--json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["accepted"], true);
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
fn trust_on_first_use_once_always_never() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let other = dir.path().join("other-ca");
    common::ca_init(dir.path(), &other);
    let (port, accepted) = daemon_counting(
        &[&p.ca],
        &p.server.join("servercert.pem"),
        &p.server.join("serverkey.pem"),
        &["C=GB,O=Test,CN=*"],
    );
    // The probe knows another CA than the server's: the issuer is unknown.
    let path = pkipath(dir.path(), "pki", &other, &p);
    let known = dir.path().join("known_servers");
    let run = probe(dir.path(), port, "localhost", &path, "never", &[]).expect(1);
    assert!(run.stdout.contains("Refused:"), "{}", run.stdout);
    // A refused server never got to authenticate this client.
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    let handshake = common::line_with(&run.stdout, "server accepts this client");
    assert!(
        handshake.contains("INFO") && handshake.contains("not tried"),
        "{handshake}"
    );
    let verification = common::line_with(&run.stdout, "verification");
    assert!(verification.contains("FAIL"), "{verification}");
    let run = probe(dir.path(), port, "localhost", &path, "once", &[]).expect(0);
    assert!(
        run.stdout.contains("Accepted once (not recorded)"),
        "{}",
        run.stdout
    );
    // Accepted once: the libvirt handshake with the client certificate then went through
    // (the daemon counts it just after sending 0x01, so give its thread a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while accepted.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert!(!std::fs::read_to_string(&known)
        .unwrap_or_default()
        .contains("# host"));
    let run = probe(dir.path(), port, "localhost", &path, "always", &[]).expect(0);
    assert!(
        run.stdout
            .contains("Accepted always: recorded for localhost"),
        "{}",
        run.stdout
    );
    let store = std::fs::read_to_string(&known).unwrap();
    assert!(
        store.contains(&format!("# host localhost port {port}")),
        "{store}"
    );
    // Now pinned: accepted without asking, even with --trust never.
    let run = probe(dir.path(), port, "localhost", &path, "never", &[]).expect(0);
    assert!(run.stdout.contains("pinned"), "{}", run.stdout);
    // Pinned for that host and port only.
    probe(dir.path(), port, "127.0.0.1", &path, "never", &[]).expect(1);
}

#[test]
fn failures_that_cannot_be_overridden_and_a_refused_client() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let ca = CertificateAuthority::load_dir(&p.ca).unwrap();
    let expired = ca
        .issue_server(&ServerParams {
            common_name: "localhost".into(),
            dns_names: vec![],
            ip_addresses: vec![],
            organization: None,
            validity: Validity {
                now: virtpki::timefmt::now() - 40 * 86400,
                days: 10,
            },
            key_type: KeyType::EcdsaP256,
        })
        .unwrap();
    std::fs::write(dir.path().join("old.pem"), &expired.cert_pem).unwrap();
    std::fs::write(dir.path().join("old.key"), expired.key_pem.as_bytes()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("old.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let port = daemon(
        &[&p.ca],
        &dir.path().join("old.pem"),
        &dir.path().join("old.key"),
        &["C=GB,O=Test,CN=*"],
    );
    let path = pkipath(dir.path(), "pki", &p.ca, &p);
    let run = probe(dir.path(), port, "localhost", &path, "always", &[]).expect(1);
    assert!(
        run.stdout.contains("cannot be overridden"),
        "{}",
        run.stdout
    );
    let validity = common::line_with(&run.stdout, "validity");
    assert!(
        validity.contains("FAIL") && validity.contains("expired"),
        "{validity}"
    );
    assert!(!std::fs::read_to_string(dir.path().join("known_servers"))
        .unwrap_or_default()
        .contains("# host"));

    // A daemon whose list leaves this client out: the server is fine, the client is not.
    let strict = daemon(
        &[&p.ca],
        &p.server.join("servercert.pem"),
        &p.server.join("serverkey.pem"),
        &["CN=admin"],
    );
    let run = probe(dir.path(), strict, "localhost", &path, "never", &[]).expect(1);
    let accepts = common::line_with(&run.stdout, "server accepts this client");
    assert!(
        accepts.contains("FAIL") && accepts.contains("tls_allowed_dn_list"),
        "{accepts}"
    );
    assert!(
        run.stdout.contains("Subject: CN=localhost"),
        "the server's certificate is still shown"
    );

    // A name the certificate does not have.
    let run = probe(dir.path(), strict, "127.0.0.1", &path, "never", &[]);
    assert_eq!(run.code, 1);
    let other = dir.path().join("named");
    issue_server(dir.path(), s(&p.ca), "elsewhere.example", s(&other)).expect(0);
    let named = daemon(
        &[&p.ca],
        &other.join("servercert.pem"),
        &other.join("serverkey.pem"),
        &["C=GB,O=Test,CN=*"],
    );
    let run = probe(dir.path(), named, "localhost", &path, "never", &[]).expect(1);
    let host = common::line_with(&run.stdout, "host name localhost");
    assert!(
        host.contains("FAIL") && host.contains("does not match"),
        "{host}"
    );
}

#[test]
fn usage_and_connection_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let path = pkipath(dir.path(), "pki", &p.ca, &p);
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = probe(dir.path(), closed, "127.0.0.1", &path, "never", &[]).expect(2);
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
    let run = probe(dir.path(), closed, "127.0.0.1", &path, "ask", &["--json"]).expect(2);
    assert!(run.stderr.contains("--trust"), "{}", run.stderr);
    for bad in ["", "host:0", "[::1", "host:x"] {
        let run = virtpki(dir.path(), &["probe", bad, "--trust", "never"]).expect(2);
        assert!(
            run.stderr.contains("write HOST, HOST:PORT"),
            "{bad:?}: {}",
            run.stderr
        );
    }
    let run = virtpki(
        dir.path(),
        &["probe", "no such host.invalid:1", "--trust", "never"],
    )
    .expect(2);
    assert!(run.stderr.contains("cannot resolve"), "{}", run.stderr);
    // Asking needs a terminal; the tests' standard input is not one.
    let port = daemon(
        &[&p.ca],
        &p.server.join("servercert.pem"),
        &p.server.join("serverkey.pem"),
        &["*"],
    );
    let other = dir.path().join("other-ca");
    common::ca_init(dir.path(), &other);
    let unknown = pkipath(dir.path(), "unknown", &other, &p);
    let run = probe(dir.path(), port, "localhost", &unknown, "ask", &[]).expect(2);
    assert!(run.stderr.contains("not a terminal"), "{}", run.stderr);
}

#[test]
fn a_certificate_that_also_fails_otherwise_is_never_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    // Self-signed (an unknown issuer, overridable) and a CA (not overridable for a server).
    let (cert, key) = (dir.path().join("self.pem"), dir.path().join("self.key"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509"])
        .args(NEW_P256_KEY)
        .args([
            "-days",
            "5",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = daemon(&[&p.ca], &cert, &key, &["*"]);
    let path = pkipath(dir.path(), "pki", &p.ca, &p);
    let run = probe(dir.path(), port, "localhost", &path, "always", &[]).expect(1);
    assert!(
        run.stdout.contains("cannot be overridden"),
        "{}",
        run.stdout
    );
    let store = std::fs::read_to_string(dir.path().join("known_servers")).unwrap_or_default();
    assert!(!store.contains("# host"), "{store}");
}

#[test]
fn a_changed_certificate_is_replaced_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki(dir.path());
    let other = dir.path().join("other-ca");
    common::ca_init(dir.path(), &other);
    let port = daemon(
        &[&p.ca],
        &p.server.join("servercert.pem"),
        &p.server.join("serverkey.pem"),
        &["*"],
    );
    // Something else is recorded for this server: another CA's server certificate for it.
    let known = dir.path().join("known_servers");
    let server = format!("localhost:{port}");
    let stand_in = dir.path().join("other-server");
    common::issue_server(dir.path(), s(&other), "localhost", s(&stand_in)).expect(0);
    let stand_in = stand_in.join("servercert.pem");
    virtpki(
        dir.path(),
        &["known", "add", &server, s(&stand_in), "--file", s(&known)],
    )
    .expect(0);
    let path = pkipath(dir.path(), "pki", &other, &p);
    let run = probe(dir.path(), port, "localhost", &path, "always", &[]).expect(1);
    assert!(
        run.stdout
            .contains("WARNING: the known-servers store has another certificate"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("give --replace"), "{}", run.stdout);
    let before = std::fs::read_to_string(&known).unwrap();
    assert!(before.contains(&certs_fingerprint(&stand_in)));
    let run = probe(
        dir.path(),
        port,
        "localhost",
        &path,
        "always",
        &["--replace"],
    )
    .expect(0);
    assert!(run.stdout.contains("Accepted always"), "{}", run.stdout);
    let after = std::fs::read_to_string(&known).unwrap();
    assert!(
        after.contains(&certs_fingerprint(&p.server.join("servercert.pem"))),
        "{after}"
    );
    assert!(!after.contains(&certs_fingerprint(&stand_in)), "{after}");
}

fn certs_fingerprint(path: &Path) -> String {
    common::certs(path)[0].fingerprint_string()
}

// ---- issue 15 --------------------------------------------------------------------------

/// Issue 15, item 14: a refused connection named the target twice ("127.0.0.1:P: cannot
/// connect: 127.0.0.1:P: Connection refused") and said nothing of the cause. It names it once,
/// with the addresses a name was tried at, and the fix: listen_tls and port 16514.
#[test]
fn a_refused_connection_names_the_target_once_and_says_how_libvirtd_listens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let known = d.join("known_servers");
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for host in ["127.0.0.1", "localhost"] {
        let target = format!("{host}:{closed}");
        let run = virtpki(
            d,
            &[
                "probe",
                &target,
                "--trust",
                "never",
                "--known-file",
                s(&known),
            ],
        )
        .expect(2);
        let err = &run.stderr;
        assert_eq!(err.matches(&target).count(), 1, "{err}");
        assert_eq!(err.matches(&format!(":{closed}")).count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("virtpki: cannot connect to {target}")),
            "{err}"
        );
        assert!(err.contains("connection refused"), "{err}");
        assert!(err.contains("libvirt's TLS port is 16514"), "{err}");
        let fix = common::line_with(err, "fix:");
        assert!(
            fix.contains("listen_tls = 1") && fix.contains("16514"),
            "{err}"
        );
        if host == "localhost" {
            // A name: the addresses tried, without the port again.
            assert!(err.contains("127.0.0.1"), "{err}");
        }
        assert!(!known.exists());
    }
}
