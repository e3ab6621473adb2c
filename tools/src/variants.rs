//! libvirt's table of certificate variants (its tests/virnettlscontexttest.c): CA and leaf
//! variants, each with libvirt 9's verdict and this library's. One table for the sanity test
//! (`tests/suite/sanity_table.rs`, at the kit's fixed instant) and for `sanity_variants`
//! (`src/bin/`), which writes each row as a libvirt pkipath directory for the interoperability
//! tests (interop/), built around the system clock as libvirtd uses it.

use std::path::Path;

use virtpki::{ErrorKind, Role};

use crate::kit::*;

/// One row: the CA file, the leaf, and the two verdicts.
pub struct Variant {
    pub name: &'static str,
    pub role: Role,
    /// The CA file: the first is the root; a CN starting with "Intermediate" is issued by the
    /// root and issues the leaf; others are self-signed extras of the bundle.
    pub cas: Vec<Spec>,
    pub leaf: Spec,
    /// The leaf is issued by a CA outside the CA file.
    pub foreign_issuer: bool,
    /// The intermediate goes after the leaf in the certificate file, not in the CA file.
    pub chain_in_cert: bool,
    /// libvirt 9's verdict (virNetTLSContextSanityCheckCredentials, with GnuTLS 3.7).
    pub libvirt_ok: bool,
    /// This library's: `None` = accepted, else the error kind reported. It differs from
    /// libvirt's only where libvirt is wrong (README, "Where virtpki differs from libvirt").
    pub ours: Option<ErrorKind>,
}

impl Variant {
    /// Which way the verdicts differ, as the interop manifest spells it: `"libvirt_refuses"`
    /// (libvirt refuses, virtpki accepts) or `"libvirt_accepts"` (the reverse).
    pub fn differs(&self) -> Option<&'static str> {
        match (self.libvirt_ok, self.ours.is_none()) {
            (false, true) => Some("libvirt_refuses"),
            (true, false) => Some("libvirt_accepts"),
            _ => None,
        }
    }
}

/// The validity periods of the table: good, expired, not yet valid.
pub struct Times {
    pub good: (i64, i64),
    pub expired: (i64, i64),
    pub future: (i64, i64),
}

impl Times {
    /// Around the kit's [`now`]: "good" is [`Spec`]'s default period (2025 to 2030).
    pub fn fixed() -> Times {
        Times {
            good: (date(2025, 1, 1), date(2030, 1, 1)),
            expired: (date(2019, 1, 1), date(2025, 1, 1)),
            future: (date(2027, 1, 1), date(2030, 1, 1)),
        }
    }

    /// Around the system clock, for programs (libvirtd) that check at the current time.
    pub fn around_the_clock() -> Times {
        const YEAR: i64 = 365 * 86_400;
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
}

/// A good CA: CA:TRUE and keyCertSign + cRLSign, both critical.
pub fn ca(t: &Times) -> Spec {
    Spec::ca("Test CA")
        .valid(t.good.0, t.good.1)
        .bc(Some(true), true)
        .ku(KU_KEY_CERT_SIGN | KU_CRL_SIGN, true)
}

/// A good server for "localhost" and 127.0.0.1 (clients of the interop tests connect to it).
pub fn server(t: &Times) -> Spec {
    let mut s = Spec::server("localhost")
        .valid(t.good.0, t.good.1)
        .bc(Some(false), true)
        .ku(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, true)
        .eku(&[SERVER_AUTH], true);
    s.ips = vec!["127.0.0.1".parse().unwrap()];
    s
}

/// A good client.
pub fn client(t: &Times) -> Spec {
    Spec::client("client1")
        .valid(t.good.0, t.good.1)
        .bc(Some(false), true)
        .ku(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, true)
        .eku(&[CLIENT_AUTH], true)
}

/// A row with one CA.
fn variant(
    name: &'static str,
    role: Role,
    ca: Spec,
    leaf: Spec,
    libvirt_ok: bool,
    ours: Option<ErrorKind>,
) -> Variant {
    Variant {
        name,
        role,
        cas: vec![ca],
        leaf,
        foreign_issuer: false,
        chain_in_cert: false,
        libvirt_ok,
        ours,
    }
}

/// The table, in the order of the interop directories (`NN-name`).
pub fn table(t: &Times) -> Vec<Variant> {
    use ErrorKind::*;
    use Role::{Client, Server};
    let good = |s: Spec| s.valid(t.good.0, t.good.1);
    let (ca, server, client) = (|| ca(t), || server(t), || client(t));
    vec![
        // A perfect CA, perfect client and server.
        variant("perfect server", Server, ca(), server(), true, None),
        variant("perfect client", Client, ca(), client(), true, None),
        // Other CAs that are good.
        variant(
            "CA without key usage",
            Server,
            ca().ku(0, false).bc(Some(true), true),
            server(),
            true,
            None,
        ),
        variant(
            "CA non-critical basic constraints",
            Server,
            good(Spec::ca("CA"))
                .bc(Some(true), false)
                .ku(KU_KEY_CERT_SIGN, true),
            server(),
            true,
            None,
        ),
        // libvirt's own table calls this acceptable, but libvirt 9.0 with GnuTLS 3.7.9 does
        // not start with it (GnuTLS enforces keyCertSign whatever the criticality), as
        // `make interop` shows.
        variant(
            "CA non-critical key usage without certSign",
            Server,
            ca().ku(KU_CRL_SIGN, false),
            server(),
            false,
            Some(KeyUsage),
        ),
        // Bad CAs.
        variant(
            "CA without basic constraints",
            Server,
            good(Spec::ca("CA"))
                .bc(None, false)
                .ku(KU_KEY_CERT_SIGN, true),
            server(),
            false,
            Some(NotCa),
        ),
        variant(
            "CA with CA:FALSE",
            Server,
            good(Spec::ca("CA"))
                .bc(Some(false), true)
                .ku(KU_KEY_CERT_SIGN, true),
            server(),
            false,
            Some(NotCa),
        ),
        variant(
            "CA critical key usage without certSign",
            Server,
            ca().ku(KU_DIGITAL_SIGNATURE, true),
            server(),
            false,
            Some(KeyUsage),
        ),
        // Good server and client certificates.
        variant(
            "server without key usage",
            Server,
            ca(),
            server().ku(0, false).bc(Some(false), true),
            true,
            None,
        ),
        variant(
            "server non-critical key usage certSign only",
            Server,
            ca(),
            server().ku(KU_KEY_CERT_SIGN, false),
            true,
            None,
        ),
        variant(
            "server non-critical clientAuth purpose",
            Server,
            ca(),
            server().eku(&[CLIENT_AUTH], false),
            true,
            None,
        ),
        variant(
            "server both purposes",
            Server,
            ca(),
            server().eku(&[CLIENT_AUTH, SERVER_AUTH], true),
            true,
            None,
        ),
        variant(
            "client non-critical serverAuth purpose",
            Client,
            ca(),
            client().eku(&[SERVER_AUTH], false),
            true,
            None,
        ),
        // Bad server and client certificates.
        variant(
            "server is a CA",
            Server,
            ca(),
            server().bc(Some(true), true),
            false,
            Some(NotCa),
        ),
        variant(
            "server critical key usage certSign only",
            Server,
            ca(),
            server().ku(KU_KEY_CERT_SIGN, true),
            false,
            Some(KeyUsage),
        ),
        variant(
            "RSA server critical key usage without keyEncipherment",
            Server,
            ca(),
            server().ku(KU_DIGITAL_SIGNATURE, true).alg(Alg::Rsa2048),
            false,
            Some(KeyUsage),
        ),
        variant(
            "server critical clientAuth purpose",
            Server,
            ca(),
            server().eku(&[CLIENT_AUTH], true),
            false,
            Some(Purpose),
        ),
        variant(
            "client critical serverAuth purpose",
            Client,
            ca(),
            client().eku(&[SERVER_AUTH], true),
            false,
            Some(Purpose),
        ),
        variant(
            "client is a CA",
            Client,
            ca(),
            client().bc(Some(true), true),
            false,
            Some(NotCa),
        ),
        // Where libvirt is wrong.
        variant(
            "ECDSA server without keyEncipherment (RFC 8813)",
            Server,
            ca(),
            server().ku(KU_DIGITAL_SIGNATURE, true),
            false,
            None,
        ),
        variant(
            "Ed25519 server without keyEncipherment (RFC 8813)",
            Server,
            ca(),
            server().ku(KU_DIGITAL_SIGNATURE, true).alg(Alg::Ed25519),
            false,
            None,
        ),
        variant(
            "Ed25519 client without keyEncipherment (RFC 8813)",
            Client,
            ca(),
            client().ku(KU_DIGITAL_SIGNATURE, true).alg(Alg::Ed25519),
            false,
            None,
        ),
        variant(
            "server anyExtendedKeyUsage",
            Server,
            ca(),
            server().eku(&[ANY_EKU], true),
            false,
            None,
        ),
        variant(
            "server codeSigning purpose only",
            Server,
            ca(),
            server().eku(&[CODE_SIGNING], true),
            true,
            Some(Purpose),
        ),
        // Times.
        variant(
            "expired CA",
            Server,
            ca().valid(t.expired.0, t.expired.1),
            server(),
            false,
            Some(Expired),
        ),
        variant(
            "CA not yet active",
            Server,
            ca().valid(t.future.0, t.future.1),
            server(),
            false,
            Some(NotYetValid),
        ),
        variant(
            "expired server",
            Server,
            ca(),
            server().valid(t.expired.0, t.expired.1),
            false,
            Some(Expired),
        ),
        variant(
            "server not yet active",
            Server,
            ca(),
            server().valid(t.future.0, t.future.1),
            false,
            Some(NotYetValid),
        ),
        variant(
            "client not yet active",
            Client,
            ca(),
            client().valid(t.future.0, t.future.1),
            false,
            Some(NotYetValid),
        ),
        // Chains and bundles.
        Variant {
            cas: vec![
                ca(),
                good(Spec::ca("Intermediate CA"))
                    .bc(Some(true), true)
                    .ku(KU_KEY_CERT_SIGN, true),
            ],
            ..variant(
                "CA bundle with root and intermediate",
                Server,
                ca(),
                server(),
                true,
                None,
            )
        },
        Variant {
            cas: vec![ca(), Spec::ca("Old CA").valid(t.expired.0, t.expired.1)],
            ..variant(
                "unrelated expired CA in the bundle",
                Server,
                ca(),
                server(),
                false,
                None,
            )
        },
        Variant {
            foreign_issuer: true,
            ..variant(
                "server issued by another CA",
                Server,
                ca(),
                server(),
                false,
                Some(UnknownIssuer),
            )
        },
        Variant {
            cas: vec![
                ca(),
                good(Spec::ca("Intermediate CA"))
                    .bc(Some(true), true)
                    .ku(KU_KEY_CERT_SIGN, true),
            ],
            chain_in_cert: true,
            ..variant(
                "chain in the certificate file, leaf first",
                Server,
                ca(),
                server(),
                false,
                None,
            )
        },
    ]
}

/// Writes `v` as a libvirt pkipath directory: `cacert.pem` (the root first), the role's
/// `{server,client}cert.pem` (the leaf, then the intermediate if `chain_in_cert`) and
/// `{server,client}key.pem`.
pub fn write_pkipath(v: &Variant, dir: &Path) {
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
    let role = v.role.name();
    write(dir, "cacert.pem", ca_pem, 0o644);
    write(
        dir,
        &format!("{role}cert.pem"),
        leaf.pem() + &chain_pem,
        0o644,
    );
    write(dir, &format!("{role}key.pem"), leaf.key_pem(), 0o600);
}
