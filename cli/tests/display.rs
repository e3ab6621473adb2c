//! What the CLI shows of a certificate made to attack a terminal: names with escape
//! sequences, a carriage return, a bell and a bidi override. `show` and `probe` print them
//! escaped; `dn` prints libvirt's DN string byte for byte, as virt-pki-query-dn does.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{have, pki, s, virtpki};
use virtpki::session::{Session, SessionFlags};
use virtpki::{CertDataType, Context, ContextFlags};

/// A CN that would print a green "Trusted" line over the previous one.
const EVIL_CN: &str = "evil\x1b[1A\x1b[2K\x1b[32mTrusted: verified against the CA\r\u{202e}";

/// A self-signed server certificate for localhost with `EVIL_CN` and a SAN with escapes;
/// `None` without openssl.
fn hostile(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    if !have("openssl") {
        eprintln!("openssl not found: skipped");
        return None;
    }
    let (cert, key) = (dir.join("evil.pem"), dir.join("evil-key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-utf8",
            "-nodes",
            "-days",
            "30",
            "-keyout",
            s(&key),
            "-out",
            s(&cert),
        ])
        .args(["-subj", &format!("/CN={EVIL_CN}")])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,DNS:a\x1b]0;title\x07.example",
        ])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    Some((cert, key))
}

/// The characters of `text` that must not reach a terminal, other than line ends.
fn unsafe_chars(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| *c != '\n' && virtpki::display::is_unsafe(*c))
        .collect()
}

#[test]
fn show_escapes_dn_prints_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, _)) = hostile(dir.path()) else {
        return;
    };
    let run = virtpki(dir.path(), &["show", s(&cert)]).expect(0);
    assert_eq!(unsafe_chars(&run.stdout), vec![], "{:?}", run.stdout);
    assert!(run.stdout.contains("\\x1b[32mTrusted"), "{:?}", run.stdout);
    assert!(
        run.stdout.contains("DNS:\"a\\x1b]0;title\\x07.example\""),
        "{}",
        run.stdout
    );
    // dn: the DN string for tls_allowed_dn_list, byte-identical to virt-pki-query-dn.
    let run = virtpki(dir.path(), &["dn", s(&cert)]).expect(0);
    assert!(run.stdout.contains(EVIL_CN), "{:?}", run.stdout);
}

#[test]
fn probe_escapes_what_an_unauthenticated_server_sends() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = hostile(dir.path()) else {
        return;
    };
    let p = pki(dir.path());
    let ctx = Context::new(ContextFlags::NO_SANITY);
    ctx.add_file(CertDataType::CaCert, &p.ca.join("cacert.pem"))
        .unwrap();
    ctx.add_file(CertDataType::ServerCert, &cert).unwrap();
    ctx.add_file(CertDataType::ServerKey, &key).unwrap();
    let ctx = Arc::new(ctx);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            if let Ok(mut session) = Session::server(&ctx, stream, SessionFlags::LIBVIRT_CONFIRM) {
                let _ = session.close();
            }
        }
    });
    let pkipath = dir.path().join("pki");
    std::fs::create_dir(&pkipath).unwrap();
    for (from, to) in [
        (p.ca.join("cacert.pem"), "cacert.pem"),
        (p.client.join("clientcert.pem"), "clientcert.pem"),
        (p.client.join("clientkey.pem"), "clientkey.pem"),
    ] {
        std::fs::copy(from, pkipath.join(to)).unwrap();
    }
    let server = format!("localhost:{port}");
    let known = dir.path().join("known_servers");
    let run = virtpki(
        dir.path(),
        &[
            "probe",
            &server,
            "--pkipath",
            s(&pkipath),
            "--known-file",
            s(&known),
            "--trust",
            "never",
        ],
    )
    .expect(1);
    assert_eq!(unsafe_chars(&run.stdout), vec![], "{:?}", run.stdout);
    assert_eq!(unsafe_chars(&run.stderr), vec![], "{:?}", run.stderr);
    assert!(run.stdout.contains("\\x1b[32mTrusted"), "{}", run.stdout);
    assert!(
        !run.stdout.lines().any(|l| l.starts_with("Trusted")),
        "{}",
        run.stdout
    );
}
