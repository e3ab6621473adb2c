//! The known-servers store against the design's targets: a lookup in a 100,000-entry store
//! within 2x of one in a 10-entry store, and opening a 10,000-entry store under 50 ms.
//!
//! The store files are written directly in the store's format (see `fixtures::write_store`),
//! cycling through a few certificates under distinct host names. A lookup is made with the
//! certificate recorded for a host in the middle of the file (`hit`, trusted) and for a host
//! that is not in it (`miss`, unknown); both parse and fingerprint the presented certificate,
//! and `stat` the store file to see whether another process changed it (it does not change
//! here, so it is not read again).
#![allow(
    missing_docs,
    reason = "criterion_group! defines a `pub fn` it cannot document"
)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use virtpki::{KnownServers, TrustStatus};

use fixtures::{store_cert, store_certs, store_host, write_store, STORE_PORT};
use virtpki_tools::bench as fixtures;

const DISTINCT_CERTS: usize = 16;

fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let certs = store_certs(DISTINCT_CERTS);
    let mut group = c.benchmark_group("known_servers_lookup");
    for entries in [10, 100_000] {
        let path = write_store(dir.path(), &format!("known-{entries}.pem"), &certs, entries);
        let started = Instant::now();
        let store = KnownServers::open(&path).expect("the store opens");
        eprintln!(
            "opened a {entries}-entry store ({} bytes) in {:.1} ms",
            std::fs::metadata(&path).map_or(0, |m| m.len()),
            started.elapsed().as_secs_f64() * 1e3
        );
        assert!(store.problems().is_empty(), "{:?}", store.problems());
        assert_eq!(store.entries().len(), entries);

        let middle = entries / 2;
        let host = store_host(middle);
        let der = &store_cert(&certs, middle).der;
        assert_eq!(
            store.lookup(&host, Some(STORE_PORT), der).unwrap(),
            TrustStatus::Trusted
        );
        assert_eq!(
            store
                .lookup("absent.example.org", Some(STORE_PORT), der)
                .unwrap(),
            TrustStatus::Unknown
        );
        group.bench_with_input(BenchmarkId::new("hit", entries), &host, |b, host| {
            b.iter(|| {
                store
                    .lookup(black_box(host), Some(STORE_PORT), black_box(der))
                    .unwrap()
            })
        });
        group.bench_with_input(BenchmarkId::new("miss", entries), &host, |b, _| {
            b.iter(|| {
                store
                    .lookup(
                        black_box("absent.example.org"),
                        Some(STORE_PORT),
                        black_box(der),
                    )
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn opening(c: &mut Criterion) {
    const ENTRIES: usize = 10_000;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let certs = store_certs(DISTINCT_CERTS);
    let path = write_store(dir.path(), "known.pem", &certs, ENTRIES);
    assert_eq!(KnownServers::open(&path).unwrap().entries().len(), ENTRIES);
    let mut group = c.benchmark_group("known_servers_open");
    group.sample_size(20);
    // Opening only: the store is dropped outside the measured time.
    group.bench_with_input(BenchmarkId::from_parameter(ENTRIES), &path, |b, path| {
        b.iter_with_large_drop(|| KnownServers::open(black_box(path)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, lookups, opening);
criterion_main!(benches);
