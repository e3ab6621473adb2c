//! Writes the PEM fixtures of the C tests (ffi-tests/) into a directory.
//!
//! Run by the Makefile (`make ffi-lib`): `make_fixtures ffi-tests/build/fixtures`.
//! C cannot make certificates easily, so this uses the Rust tests' rcgen helpers (the kit). Every
//! validity period is built around 2026-06-01 (`kit::now()`), the time the C tests set
//! with virPKIContextSetVerifyTime, so that no test depends on today's date.

use std::path::Path;

use virtpki_tools::kit::*;

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .expect("usage: make_fixtures OUTPUT-DIRECTORY");
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("the output directory");

    let ca = self_signed(&Spec::ca("FFI Test CA"));
    write(dir, "ca.pem", ca.pem(), 0o644);
    write(dir, "ca.der", ca.der(), 0o644);

    // The server for "localhost" and 127.0.0.1, and certificates for the same host that
    // differ from it in one way each.
    let server_spec = Spec {
        ips: vec!["127.0.0.1".parse().unwrap()],
        serial: Some(0x1001),
        ..Spec::server("localhost")
    };
    let server = signed_by(&server_spec, &ca);
    write(dir, "server.pem", server.pem(), 0o644);
    write(dir, "server-key.pem", server.key_pem(), 0o600);
    // The same key, readable by everyone: refused.
    write(dir, "server-key-open.pem", server.key_pem(), 0o644);
    write(dir, "server.fp", fingerprint(&server.der()), 0o644);

    // A renewal: new certificate, same key.
    let renewed_spec = Spec {
        serial: Some(0x1002),
        ..server_spec.clone()
    };
    let renewed = renewed_spec
        .params()
        .signed_by(&server.key, &ca.issuer())
        .unwrap();
    write(dir, "server-renewed.pem", renewed.pem(), 0o644);

    // A replacement with a new key.
    let other = signed_by(
        &Spec {
            serial: Some(0x1003),
            ..server_spec.clone()
        },
        &ca,
    );
    write(dir, "server-newkey.pem", other.pem(), 0o644);

    let expired = signed_by(
        &Spec {
            serial: Some(0x1004),
            ..server_spec.clone()
        }
        .valid(date(2025, 1, 1), date(2026, 1, 1)),
        &ca,
    );
    write(dir, "server-expired.pem", expired.pem(), 0o644);

    let future = signed_by(
        &Spec {
            serial: Some(0x1005),
            ..server_spec.clone()
        }
        .valid(date(2027, 1, 1), date(2028, 1, 1)),
        &ca,
    );
    write(dir, "server-future.pem", future.pem(), 0o644);

    let revoked = signed_by(
        &Spec {
            serial: Some(0x2002),
            ..server_spec.clone()
        },
        &ca,
    );
    write(dir, "server-revoked.pem", revoked.pem(), 0o644);
    // Two CRLs of the CA as it would issue them over time: number 1 revokes nothing the tests
    // use, number 2 (the newer) revokes the certificate above.
    write(
        dir,
        "crl-other.pem",
        crl_pem_numbered(&ca, 1, &[0x9999]),
        0o644,
    );
    write(dir, "crl.pem", crl_pem_numbered(&ca, 2, &[0x2002]), 0o644);

    // Another CA, and a server and client it signed: unknown issuers to the first CA.
    // No SAN at all: the host name is matched against the Common Name, unless REQUIRE_SAN.
    let cn_only = signed_by(
        &Spec {
            dns: vec![],
            serial: Some(0x1006),
            ..Spec::server("localhost")
        },
        &ca,
    );
    write(dir, "server-cn-only.pem", cn_only.pem(), 0o644);

    let ca2 = self_signed(&Spec::ca("FFI Other CA"));
    write(dir, "ca2.pem", ca2.pem(), 0o644);
    write(
        dir,
        "server-ca2.pem",
        signed_by(&server_spec, &ca2).pem(),
        0o644,
    );

    let selfsigned = self_signed(&Spec {
        ips: vec!["127.0.0.1".parse().unwrap()],
        ..Spec::server("localhost")
    });
    write(dir, "selfsigned.pem", selfsigned.pem(), 0o644);
    write(dir, "selfsigned-key.pem", selfsigned.key_pem(), 0o600);

    let client1 = client_with_test_dn(&Spec::client("client1"), &ca);
    write(dir, "client.pem", client1.pem(), 0o644);
    write(dir, "client-key.pem", client1.key_pem(), 0o600);
    write(dir, "client.fp", fingerprint(&client1.der()), 0o644);
    write(
        dir,
        "client-ca2.pem",
        client_with_test_dn(&Spec::client("client2"), &ca2).pem(),
        0o644,
    );

    // libvirt's pkipath layout, for virPKIContextLoadDefault.
    let pki = dir.join("pki");
    write(&pki, "cacert.pem", ca.pem(), 0o644);
    write(
        &pki,
        "cacrl.pem",
        crl_pem_numbered(&ca, 3, &[0x2002]),
        0o644,
    );
    write(&pki, "servercert.pem", server.pem(), 0o644);
    write(&pki, "serverkey.pem", server.key_pem(), 0o600);
    write(&pki, "clientcert.pem", client1.pem(), 0o644);
    write(&pki, "clientkey.pem", client1.key_pem(), 0o600);
}

/// The expected virPKICertFingerprint of a DER certificate, computed here independently of
/// the library's code: "SHA256:" and 64 uppercase hex digits.
fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    format!("SHA256:{hex}")
}
