//! Certificate fixtures for the Python tests (ffi-tests/python) and the connect examples.
//!
//! `cargo run -p virtpki-tools --bin python_fixtures -- DIR` writes PEM files into DIR (created
//! if needed) and `manifest.json`, which gives the verification time the tests use: every
//! "good" certificate is valid then (and from 2020 to 2045, so that the examples also work with
//! the system clock), the expired and not-yet-valid ones are not.

use std::path::Path;

use virtpki_tools::kit::*;

/// A certificate "good" for the examples' system clock too.
fn long_lived(spec: Spec) -> Spec {
    spec.valid(date(2020, 1, 1), date(2045, 1, 1))
}

/// A server for "localhost" and 127.0.0.1.
fn server_spec() -> Spec {
    let mut spec = long_lived(Spec::server("localhost"));
    spec.ips = vec!["127.0.0.1".parse().unwrap()];
    spec
}

fn save(dir: &Path, name: &str, made: &Made) {
    write(dir, &format!("{name}.pem"), made.pem(), 0o644);
    write(dir, &format!("{name}-key.pem"), made.key_pem(), 0o600);
}

fn crl(ca: &Made, serial: u64) -> String {
    let t = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    rcgen::CertificateRevocationListParams {
        this_update: t(date(2026, 1, 1)),
        next_update: t(date(2045, 1, 1)),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(serial),
            revocation_time: t(date(2026, 1, 1)),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer())
    .unwrap()
    .pem()
    .unwrap()
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: python_fixtures DIR");
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();

    let ca = self_signed(&long_lived(Spec::ca("Python CA")));
    write(dir, "ca.pem", ca.pem(), 0o644);
    let server = signed_by(&server_spec(), &ca);
    save(dir, "server", &server);
    save(
        dir,
        "client",
        &client_with_test_dn(&long_lived(Spec::client("client1")), &ca),
    );
    save(
        dir,
        "admin",
        &client_with_test_dn(&long_lived(Spec::client("admin1")), &ca),
    );

    // Another CA and a server it issued: an unknown issuer for clients that trust "Python CA".
    let other_ca = self_signed(&long_lived(Spec::ca("Other CA")));
    write(dir, "other-ca.pem", other_ca.pem(), 0o644);
    save(dir, "other-server", &signed_by(&server_spec(), &other_ca));

    // Validity around the tests' time (2026-06-01).
    let expired = Spec::server("localhost").valid(date(2020, 1, 1), date(2026, 1, 1));
    save(dir, "expired-server", &signed_by(&expired, &ca));
    let future = Spec::server("localhost").valid(date(2027, 1, 1), date(2028, 1, 1));
    save(dir, "future-server", &signed_by(&future, &ca));

    // Revoked by crl.pem.
    let serial = 4242;
    let revoked = Spec {
        serial: Some(serial),
        ..server_spec()
    };
    save(dir, "revoked-server", &signed_by(&revoked, &ca));
    write(dir, "crl.pem", crl(&ca, serial), 0o644);

    // A self-signed server, for pinning and trust on first use.
    let mut spec = server_spec();
    spec.ca = Some(false);
    save(dir, "self-signed-server", &self_signed(&spec));

    // The same host with a new key, and renewed with the same key.
    save(dir, "rekeyed-server", &signed_by(&server_spec(), &ca));
    let renewed = Spec {
        not_after: date(2044, 6, 1),
        ..server_spec()
    }
    .params()
    .signed_by(&server.key, &ca.issuer())
    .unwrap();
    write(dir, "renewed-server.pem", renewed.pem(), 0o644);

    // Names: the host only in the Common Name.
    let cn_only = Spec {
        dns: vec![],
        ..long_lived(Spec::server("localhost"))
    };
    save(dir, "cn-only-server", &signed_by(&cn_only, &ca));

    // Usages: a critical key usage with keyCertSign only; a client certificate as a server.
    let ku = server_spec().ku(KU_KEY_CERT_SIGN, true);
    save(dir, "bad-ku-server", &signed_by(&ku, &ca));

    // A "CA" without CA:TRUE issuing a server certificate (chain: leaf, then it).
    let not_ca = long_lived(Spec::ca("Not a CA").bc(Some(false), true));
    let not_ca = signed_by(&not_ca, &ca);
    write(dir, "not-ca.pem", not_ca.pem(), 0o644);
    save(
        dir,
        "under-not-ca-server",
        &signed_by(&server_spec(), &not_ca),
    );

    let manifest = format!(
        "{{\n  \"verify_time\": {},\n  \"client_dn\": \"C=GB,O=Test,CN=client1\",\n  \
         \"admin_dn\": \"C=GB,O=Test,CN=admin1\"\n}}\n",
        date(2026, 6, 1)
    );
    write(dir, "manifest.json", manifest, 0o644);
    println!("fixtures written to {}", dir.display());
}
