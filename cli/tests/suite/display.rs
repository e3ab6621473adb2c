//! What the CLI shows of a certificate made to attack a terminal: names with escape
//! sequences, a carriage return, a bell and a bidi override. `show` and `probe` print them
//! escaped; `dn` prints libvirt's DN string byte for byte, as virt-pki-query-dn does.

use crate::common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::openssl_args::NEW_P256_KEY;
use common::{pki, require, s, virtpki};
use virtpki::session::{Session, SessionFlags};
use virtpki::{CertDataType, Context, ContextFlags};

/// A CN that would print a green "Trusted" line over the previous one.
const EVIL_CN: &str = "evil\x1b[1A\x1b[2K\x1b[32mTrusted: verified against the CA\r\u{202e}";

/// A self-signed server certificate for localhost with `EVIL_CN` and a SAN with escapes,
/// made with openssl (which writes what virtpki's issuer refuses).
fn hostile(dir: &Path) -> (PathBuf, PathBuf) {
    require("openssl");
    let (cert, key) = (dir.join("evil.pem"), dir.join("evil-key.pem"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509"])
        .args(NEW_P256_KEY)
        .args(["-utf8", "-days", "30", "-keyout", s(&key), "-out", s(&cert)])
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
    (cert, key)
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
    let (cert, _) = hostile(dir.path());
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

/// JSON is data: the subject and the SANs alike are the certificate's values (the JSON
/// encoder escapes control characters), not the quoted and escaped display forms.
#[test]
fn show_json_gives_values_as_the_certificate_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = hostile(dir.path());
    let run = virtpki(dir.path(), &["show", "--json", s(&cert)]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let c = &v["certificates"][0];
    assert_eq!(c["subject"], format!("CN={EVIL_CN}"), "{c}");
    assert_eq!(
        c["subject_alt_names"],
        serde_json::json!(["DNS:localhost", "DNS:a\x1b]0;title\x07.example"]),
        "{c}"
    );
}

#[test]
fn probe_escapes_what_an_unauthenticated_server_sends() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = hostile(dir.path());
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

/// A server certificate file whose chain holds, after the leaf, a certificate named to attack
/// the terminal: the sanity finding quotes that name. The report is escaped through the Rust
/// API (`Finding::message`, `Report::to_text`) and through `virPKIContextCheck` (all raw before).
#[test]
fn sanity_findings_escape_names_in_rust_and_c() {
    use virtpki::generate::{create_ca, CaParams, KeyType, ServerParams, Validity};
    let ca = create_ca(&CaParams {
        common_name: "Good CA".into(),
        organization: None,
        validity: Validity::days_from_now(30),
        key_type: KeyType::EcdsaP256,
    })
    .unwrap();
    // virtpki refuses to issue such a name: the fixture kit makes it, as an attacker would.
    let evil = virtpki_tools::kit::self_signed(&virtpki_tools::kit::Spec::ca(EVIL_CN));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cacert.pem"), &ca.cert_pem).unwrap();
    std::fs::write(dir.path().join("cakey.pem"), &ca.key_pem).unwrap();
    std::fs::set_permissions(
        dir.path().join("cakey.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let leaf = virtpki::generate::CertificateAuthority::load_dir(dir.path())
        .unwrap()
        .issue_server(&ServerParams {
            common_name: "localhost".into(),
            dns_names: vec![],
            ip_addresses: vec![],
            organization: None,
            validity: Validity::days_from_now(5),
            key_type: KeyType::EcdsaP256,
        })
        .unwrap();
    let chain = format!("{}{}", leaf.cert_pem, evil.pem());
    let unsafe_in = |t: &str| unsafe_chars(t).len();

    let ctx = Context::new(ContextFlags::NO_SANITY);
    ctx.add_pem(CertDataType::CaCert, &ca.cert_pem).unwrap();
    ctx.add_pem(CertDataType::ServerCert, &chain).unwrap();
    ctx.add_pem(CertDataType::ServerKey, &leaf.key_pem).unwrap();
    let report = ctx.check(virtpki::Role::Server);
    let quoting: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.message.contains("\\x1b[32mTrusted"))
        .collect();
    assert!(!quoting.is_empty(), "{report:?}");
    for f in &report.findings {
        assert_eq!(unsafe_in(&f.message), 0, "{:?}", f.message);
    }
    let text = report.to_text();
    assert_eq!(unsafe_in(&text), 0, "{text:?}");

    // The same through the C API.
    use std::ffi::{CStr, CString};
    use virtpki::ffi::{context as c, errors, verify};
    // SAFETY: NUL-terminated strings that outlive each call, a context from virPKIContextNew
    // freed once at the end, and the library's strings freed once with virPKIFree.
    unsafe {
        let cctx = c::virPKIContextNew(ContextFlags::NO_SANITY.bits());
        assert!(!cctx.is_null());
        for (ty, pem) in [
            (CertDataType::CaCert, &ca.cert_pem),
            (CertDataType::ServerCert, &chain),
            (CertDataType::ServerKey, &leaf.key_pem),
        ] {
            let pem = CString::new(pem.as_str()).unwrap();
            assert_eq!(
                c::virPKIContextAddCertData(cctx, ty as i32, pem.as_ptr()),
                0
            );
        }
        let mut out: *mut std::ffi::c_char = std::ptr::null_mut();
        assert_eq!(verify::virPKIContextCheck(cctx, 1, &mut out), -1);
        assert!(!out.is_null());
        let report = CStr::from_ptr(out).to_str().unwrap().to_owned();
        errors::virPKIFree(out.cast());
        let message = CStr::from_ptr(errors::virPKIGetLastErrorMessage())
            .to_str()
            .unwrap()
            .to_owned();
        c::virPKIContextFree(cctx);
        assert!(report.contains("\\x1b[32mTrusted"), "{report}");
        assert_eq!(unsafe_in(&report), 0, "{report:?}");
        assert_eq!(unsafe_in(&message), 0, "{message:?}");
    }
}
