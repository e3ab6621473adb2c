//! Adding certificates to a context: one at a time must cost what is added, not what is
//! already loaded (issue 10, item 9: every addition used to clone every certificate).
//!
//! - `one_by_one/N`: N distinct certificates added with N calls to a fresh context; linear
//!   means the time per addition at N = 10,000 is that at N = 1,000;
//! - `bundle/1000`: the same 1,000 certificates in one PEM bundle, one call (10,000 do not fit
//!   the 1 MiB cap of one certificate input).
#![allow(
    missing_docs,
    reason = "criterion_group! defines a `pub fn` it cannot document"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use virtpki::{CertDataType, Certificate, Context, ContextFlags, Source};

use virtpki_tools::bench as fixtures;

const MANY: usize = 10_000;

fn adding(c: &mut Criterion) {
    let pems: Vec<String> = fixtures::store_certs(MANY)
        .into_iter()
        .map(|s| {
            Certificate::from_der(s.der, Source::Data)
                .expect("parsed")
                .to_pem()
        })
        .collect();
    let mut group = c.benchmark_group("add_certificates");
    group.sample_size(10);
    for n in [1_000, MANY] {
        group.bench_function(format!("one_by_one/{n}"), |b| {
            b.iter(|| {
                let ctx = Context::new(ContextFlags::default());
                for pem in &pems[..n] {
                    ctx.add_pem(CertDataType::CaCert, pem).expect("added");
                }
                black_box(ctx.credentials().ca_certs.len())
            })
        });
    }
    let bundle = pems[..1_000].concat();
    group.bench_function("bundle/1000", |b| {
        b.iter(|| {
            let ctx = Context::new(ContextFlags::default());
            ctx.add_pem(CertDataType::CaCert, &bundle).expect("added");
            black_box(ctx.credentials().ca_certs.len())
        })
    });
    group.finish();
}

criterion_group!(benches, adding);
criterion_main!(benches);
