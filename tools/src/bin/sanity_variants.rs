//! libvirt's table of certificate variants (its tests/virnettlscontexttest.c, as
//! tests/sanity_table.rs encodes it), written as libvirt `pkipath` directories for the
//! interoperability tests (interop/), which load each one into a real libvirtd or virsh and
//! into `virtpki validate`.
//!
//! `sanity_variants DIR` writes `DIR/NN-name/` with `cacert.pem` and `{server,client}cert.pem`
//! / `{server,client}key.pem`, and `DIR/manifest.json`: for each variant its name, directory,
//! role and, where the README ("Where virtpki differs from libvirt") documents that virtpki's
//! verdict differs from libvirt 9's, which way (`"libvirt_refuses"`: libvirt refuses and
//! virtpki accepts, `"libvirt_accepts"`: the reverse). No other verdict is written down: the
//! tests compare what the two programs do.
//!
//! Unlike the Rust tests, which verify at a fixed instant, libvirtd uses the system clock: the
//! validity periods here are built around the time the example runs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;

use common::*;
use serde_json::json;

const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;

struct Variant {
    name: &'static str,
    role: &'static str,
    /// CA file: the first is the root; a CN starting with "Intermediate" is issued by the
    /// root and issues the leaf; others are self-signed extras of the bundle.
    cas: Vec<Spec>,
    leaf: Spec,
    /// The leaf is issued by a CA outside the CA file.
    foreign_issuer: bool,
    /// The documented difference, if any: "libvirt_refuses" or "libvirt_accepts".
    differs: Option<&'static str>,
    /// The intermediate goes after the leaf in the certificate file, not in the CA file.
    chain_in_cert: bool,
}

struct Times {
    good: (i64, i64),
    expired: (i64, i64),
    future: (i64, i64),
}

fn times() -> Times {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64;
    Times {
        good: (now - YEAR, now + 3 * YEAR),
        expired: (now - 6 * YEAR, now - YEAR),
        future: (now + YEAR, now + 4 * YEAR),
    }
}

fn variant(name: &'static str, role: &'static str, ca: Spec, leaf: Spec) -> Variant {
    Variant {
        name,
        role,
        cas: vec![ca],
        leaf,
        foreign_issuer: false,
        differs: None,
        chain_in_cert: false,
    }
}

impl Variant {
    fn differs(mut self, how: &'static str) -> Variant {
        self.differs = Some(how);
        self
    }
}

fn table(t: &Times) -> Vec<Variant> {
    let good = |s: Spec| s.valid(t.good.0, t.good.1);
    let ca = || {
        good(Spec::ca("Test CA"))
            .bc(Some(true), true)
            .ku(KU_KEY_CERT_SIGN | KU_CRL_SIGN, true)
    };
    // Server certificates for "localhost" and 127.0.0.1, so that clients can connect.
    let server = || {
        let mut s = good(Spec::server("localhost"))
            .bc(Some(false), true)
            .ku(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, true)
            .eku(&[SERVER_AUTH], true);
        s.ips = vec!["127.0.0.1".parse().unwrap()];
        s
    };
    let client = || {
        good(Spec::client("client1"))
            .bc(Some(false), true)
            .ku(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, true)
            .eku(&[CLIENT_AUTH], true)
    };
    let (s, c) = ("server", "client");
    vec![
        variant("perfect server", s, ca(), server()),
        variant("perfect client", c, ca(), client()),
        variant(
            "CA without key usage",
            s,
            ca().ku(0, false).bc(Some(true), true),
            server(),
        ),
        variant(
            "CA non-critical basic constraints",
            s,
            good(Spec::ca("CA"))
                .bc(Some(true), false)
                .ku(KU_KEY_CERT_SIGN, true),
            server(),
        ),
        variant(
            "CA non-critical key usage without certSign",
            s,
            ca().ku(KU_CRL_SIGN, false),
            server(),
        ),
        variant(
            "CA without basic constraints",
            s,
            good(Spec::ca("CA"))
                .bc(None, false)
                .ku(KU_KEY_CERT_SIGN, true),
            server(),
        ),
        variant(
            "CA with CA:FALSE",
            s,
            good(Spec::ca("CA"))
                .bc(Some(false), true)
                .ku(KU_KEY_CERT_SIGN, true),
            server(),
        ),
        variant(
            "CA critical key usage without certSign",
            s,
            ca().ku(KU_DIGITAL_SIGNATURE, true),
            server(),
        ),
        variant(
            "server without key usage",
            s,
            ca(),
            server().ku(0, false).bc(Some(false), true),
        ),
        variant(
            "server non-critical key usage certSign only",
            s,
            ca(),
            server().ku(KU_KEY_CERT_SIGN, false),
        ),
        variant(
            "server non-critical clientAuth purpose",
            s,
            ca(),
            server().eku(&[CLIENT_AUTH], false),
        ),
        variant(
            "server both purposes",
            s,
            ca(),
            server().eku(&[CLIENT_AUTH, SERVER_AUTH], true),
        ),
        variant(
            "client non-critical serverAuth purpose",
            c,
            ca(),
            client().eku(&[SERVER_AUTH], false),
        ),
        variant("server is a CA", s, ca(), server().bc(Some(true), true)),
        variant(
            "server critical key usage certSign only",
            s,
            ca(),
            server().ku(KU_KEY_CERT_SIGN, true),
        ),
        variant(
            "RSA server critical key usage without keyEncipherment",
            s,
            ca(),
            server().ku(KU_DIGITAL_SIGNATURE, true).alg(Alg::Rsa2048),
        ),
        variant(
            "server critical clientAuth purpose",
            s,
            ca(),
            server().eku(&[CLIENT_AUTH], true),
        ),
        variant(
            "client critical serverAuth purpose",
            c,
            ca(),
            client().eku(&[SERVER_AUTH], true),
        ),
        variant("client is a CA", c, ca(), client().bc(Some(true), true)),
        variant(
            "ECDSA server without keyEncipherment (RFC 8813)",
            s,
            ca(),
            server().ku(KU_DIGITAL_SIGNATURE, true),
        )
        .differs("libvirt_refuses"),
        variant(
            "Ed25519 server without keyEncipherment (RFC 8813)",
            s,
            ca(),
            server().ku(KU_DIGITAL_SIGNATURE, true).alg(Alg::Ed25519),
        )
        .differs("libvirt_refuses"),
        variant(
            "Ed25519 client without keyEncipherment (RFC 8813)",
            c,
            ca(),
            client().ku(KU_DIGITAL_SIGNATURE, true).alg(Alg::Ed25519),
        )
        .differs("libvirt_refuses"),
        variant(
            "server anyExtendedKeyUsage",
            s,
            ca(),
            server().eku(&[ANY_EKU], true),
        )
        .differs("libvirt_refuses"),
        variant(
            "server codeSigning purpose only",
            s,
            ca(),
            server().eku(&[CODE_SIGNING], true),
        )
        .differs("libvirt_accepts"),
        variant(
            "expired CA",
            s,
            ca().valid(t.expired.0, t.expired.1),
            server(),
        ),
        variant(
            "CA not yet active",
            s,
            ca().valid(t.future.0, t.future.1),
            server(),
        ),
        variant(
            "expired server",
            s,
            ca(),
            server().valid(t.expired.0, t.expired.1),
        ),
        variant(
            "server not yet active",
            s,
            ca(),
            server().valid(t.future.0, t.future.1),
        ),
        variant(
            "client not yet active",
            c,
            ca(),
            client().valid(t.future.0, t.future.1),
        ),
        Variant {
            name: "CA bundle with root and intermediate",
            role: s,
            cas: vec![
                ca(),
                good(Spec::ca("Intermediate CA"))
                    .bc(Some(true), true)
                    .ku(KU_KEY_CERT_SIGN, true),
            ],
            leaf: server(),
            foreign_issuer: false,
            differs: None,
            chain_in_cert: false,
        },
        Variant {
            name: "unrelated expired CA in the bundle",
            role: s,
            cas: vec![ca(), Spec::ca("Old CA").valid(t.expired.0, t.expired.1)],
            leaf: server(),
            foreign_issuer: false,
            differs: Some("libvirt_refuses"),
            chain_in_cert: false,
        },
        Variant {
            name: "server issued by another CA",
            role: s,
            cas: vec![ca()],
            leaf: server(),
            foreign_issuer: true,
            differs: None,
            chain_in_cert: false,
        },
        Variant {
            name: "chain in the certificate file, leaf first",
            role: s,
            cas: vec![
                ca(),
                good(Spec::ca("Intermediate CA"))
                    .bc(Some(true), true)
                    .ku(KU_KEY_CERT_SIGN, true),
            ],
            leaf: server(),
            foreign_issuer: false,
            differs: Some("libvirt_refuses"),
            chain_in_cert: true,
        },
    ]
}

fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Writes the variant's pkipath directory.
fn write_variant(v: &Variant, dir: &Path) {
    let root = self_signed(&v.cas[0]);
    let mut ca_pem = root.pem();
    let others: Vec<(bool, Made)> = v.cas[1..]
        .iter()
        .map(|spec| {
            let intermediate = spec.cn.starts_with("Intermediate");
            let made = if intermediate {
                signed_by(spec, &root)
            } else {
                self_signed(spec)
            };
            (intermediate, made)
        })
        .collect();
    let mut issuer = &root;
    let mut chain_pem = String::new();
    for (intermediate, made) in &others {
        if *intermediate && v.chain_in_cert {
            chain_pem.push_str(&made.pem());
        } else {
            ca_pem.push_str(&made.pem());
        }
        if *intermediate {
            issuer = made;
        }
    }
    let foreign = self_signed(&Spec {
        cn: "Other CA".into(),
        ..v.cas[0].clone()
    });
    if v.foreign_issuer {
        issuer = &foreign;
    }
    let leaf = signed_by(&v.leaf, issuer);
    write(dir, "cacert.pem", ca_pem, 0o644);
    write(
        dir,
        &format!("{}cert.pem", v.role),
        leaf.pem() + &chain_pem,
        0o644,
    );
    write(dir, &format!("{}key.pem", v.role), leaf.key_pem(), 0o600);
}

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .expect("usage: sanity_variants OUTPUT-DIRECTORY");
    let out = Path::new(&out);
    std::fs::create_dir_all(out).expect("the output directory");
    let mut manifest = Vec::new();
    for (i, v) in table(&times()).iter().enumerate() {
        let name = format!("{:02}-{}", i + 1, slug(v.name));
        let dir = out.join(&name);
        write_variant(v, &dir);
        manifest.push(json!({
            "name": v.name,
            "dir": dir.to_str().expect("a UTF-8 path"),
            "role": v.role,
            "differs": v.differs,
        }));
    }
    let text = serde_json::to_string_pretty(&manifest).unwrap();
    write(out, "manifest.json", text + "\n", 0o644);
    println!("{} variants written to {}", manifest.len(), out.display());
}
