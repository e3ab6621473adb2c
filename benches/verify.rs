//! Server verification of a 3-certificate chain against the design's targets, for ECDSA P-256
//! and RSA-2048:
//!
//! - `verify_server` must cost at most 1.3x `signatures_only`, the two signature checks it
//!   has to do (leaf by intermediate, intermediate by root) done with ring directly on bytes
//!   extracted beforehand;
//! - `verify_server_crl_100k`, with a 100,000-serial CRL of the root loaded, at most 1.5x
//!   `verify_server`.
//!
//! `verify_server` gets the chain already parsed (parsing belongs to loading);
//! `parse_and_verify_server` also parses the two certificates the peer sent, for comparison;
//! `pem_verify_server` starts from the chain as PEM text, the path of `virPKIContextVerifyServer`
//! (`pem::parse_chain`, then `verify_server`): the figure C callers get.
//! The ECDSA group also measures, to explain the CRL's cost, hashing the CRL's signed part and
//! looking a serial up in it, and client verification with and without a 10,000-pattern
//! allowed-DN list.
#![allow(
    missing_docs,
    reason = "criterion_group! defines a `pub fn` it cannot document"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use virtpki::{Acceptance, CertDataType, Certificate, Source, VerifyFlags};

use fixtures::{Alg, Pki, HOST};
use virtpki_tools::bench as fixtures;

const CRL_SERIALS: u32 = 100_000;
const DN_PATTERNS: usize = 10_000;

fn verification(c: &mut Criterion) {
    for alg in [Alg::EcdsaP256, Alg::Rsa2048] {
        let pki = Pki::new(alg);
        let chain = pki.server_chain();
        let chain_der: Vec<Vec<u8>> = chain.iter().map(|c| c.der().to_vec()).collect();
        let chain_pem: String = chain.iter().map(Certificate::to_pem).collect();
        let signatures = pki.server_chain_signatures();
        let ring_alg = alg.ring_algorithm();

        let ctx = pki.context();
        let crl_ctx = pki.context();
        crl_ctx
            .add_pem(
                CertDataType::CaCrl,
                &fixtures::crl_pem(&pki.root, CRL_SERIALS),
            )
            .expect("the CRL loads");
        let crl = &crl_ctx.credentials().crls[0];
        assert_eq!(crl.revoked_count(), CRL_SERIALS as usize);
        eprintln!(
            "{}: CRL of {} serials, {} bytes DER",
            alg.name(),
            crl.revoked_count(),
            crl.der().len()
        );

        // Measure only successful verifications.
        assert!(signatures.iter().all(|s| s.verify(ring_alg)));
        let parsed = virtpki::pem::parse_chain(&chain_pem).expect("the PEM chain parses");
        assert_eq!(parsed.len(), 2);
        for ctx in [&ctx, &crl_ctx] {
            let verdict = ctx
                .verify_server(HOST, None, &chain, VerifyFlags::default())
                .expect("the chain verifies");
            assert_eq!(verdict.acceptance, Acceptance::Verified);
        }

        let mut group = c.benchmark_group(format!("verify_{}", alg.name()));
        group.bench_function("signatures_only", |b| {
            b.iter(|| {
                black_box(&signatures)
                    .iter()
                    .all(|s| s.verify(black_box(ring_alg)))
            })
        });
        group.bench_function("verify_server", |b| {
            b.iter(|| {
                ctx.verify_server(
                    black_box(HOST),
                    None,
                    black_box(&chain),
                    VerifyFlags::default(),
                )
                .is_ok()
            })
        });
        group.bench_function("parse_and_verify_server", |b| {
            b.iter(|| {
                let chain: Vec<Certificate> = black_box(&chain_der)
                    .iter()
                    .map(|der| Certificate::from_der(der.clone(), Source::Peer).unwrap())
                    .collect();
                ctx.verify_server(black_box(HOST), None, &chain, VerifyFlags::default())
                    .is_ok()
            })
        });
        group.bench_function("pem_parse_chain", |b| {
            b.iter(|| virtpki::pem::parse_chain(black_box(&chain_pem)).unwrap())
        });
        group.bench_function("pem_verify_server", |b| {
            b.iter(|| {
                let chain = virtpki::pem::parse_chain(black_box(&chain_pem)).unwrap();
                ctx.verify_server(black_box(HOST), None, &chain, VerifyFlags::default())
                    .is_ok()
            })
        });
        group.bench_function("verify_server_crl_100k", |b| {
            b.iter(|| {
                crl_ctx
                    .verify_server(
                        black_box(HOST),
                        None,
                        black_box(&chain),
                        VerifyFlags::default(),
                    )
                    .is_ok()
            })
        });

        if alg == Alg::EcdsaP256 {
            // What the CRL adds, apart: hashing its signed part (which webpki's check of the
            // CRL's signature does on every verification) and looking a serial up in it.
            let crl_tbs = fixtures::signed_part(crl.der()).to_vec();
            eprintln!("signed part of the CRL: {} bytes", crl_tbs.len());
            let absent = fixtures::revoked_serial(CRL_SERIALS + 1);
            assert!(crl.webpki().find_serial(&absent).unwrap().is_none());
            assert!(crl
                .webpki()
                .find_serial(&fixtures::revoked_serial(CRL_SERIALS / 2))
                .unwrap()
                .is_some());
            group.bench_function("crl_100k_sha256_of_signed_part", |b| {
                b.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(&crl_tbs)))
            });
            group.bench_function("crl_100k_serial_lookup", |b| {
                b.iter(|| {
                    crl.webpki()
                        .find_serial(black_box(&absent))
                        .unwrap()
                        .is_none()
                })
            });

            let client_chain = pki.client_chain();
            let dn = client_chain[0].subject().to_owned();
            let listed = pki.context();
            let patterns = fixtures::dn_patterns(DN_PATTERNS, &dn, DN_PATTERNS / 2);
            listed
                .set_allowed_dn_list(Some(&patterns))
                .expect("the patterns compile");
            for ctx in [&ctx, &listed] {
                let verdict = ctx
                    .verify_client(&client_chain, VerifyFlags::default())
                    .expect("the client verifies");
                assert_eq!(verdict.dn, dn);
            }
            group.bench_function("verify_client", |b| {
                b.iter(|| {
                    ctx.verify_client(black_box(&client_chain), VerifyFlags::default())
                        .is_ok()
                })
            });
            group.bench_function("verify_client_dn_10k", |b| {
                b.iter(|| {
                    listed
                        .verify_client(black_box(&client_chain), VerifyFlags::default())
                        .is_ok()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, verification);
criterion_main!(benches);
