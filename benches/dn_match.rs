//! How long one `tls_allowed_dn_list` decision takes against 10,000 patterns, compiled
//! versus a naive first-match scan with `pattern_matches`. The design's target is under
//! 100 µs per decision.
#![allow(
    missing_docs,
    reason = "criterion_group! defines a `pub fn` it cannot document"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use virtpki::dn_match::pattern_matches;
use virtpki::AllowedDnList;

const PATTERN_COUNT: usize = 10_000;

/// 90% literal DNs; every tenth pattern has a `*`: half trailing, three in ten inside the
/// DN, two in ten leading (those must be tried for every DN).
fn patterns() -> Vec<String> {
    (0..PATTERN_COUNT)
        .map(|i| {
            if i % 10 != 9 {
                return format!("C=GB,ST=London,L=London,O=Org {i},CN=client{i}");
            }
            match (i / 10) % 10 {
                0..=4 => format!("C=GB,ST=London,L=London,O=Org {i},CN=*"),
                5..=7 => format!("C=GB,ST=London,L=*,O=Org {i},CN=client{i}"),
                _ => format!("*,O=Org {i},CN=client{i}"),
            }
        })
        .collect()
}

/// The three decisions measured, with the pattern each should be let in by.
const CASES: [(&str, &str, Option<&str>); 3] = [
    (
        "no_match",
        "C=GB,ST=London,L=London,O=Org 123456,CN=stranger",
        None,
    ),
    (
        "literal",
        "C=GB,ST=London,L=London,O=Org 5000,CN=client5000",
        Some("C=GB,ST=London,L=London,O=Org 5000,CN=client5000"),
    ),
    (
        "wildcard",
        "C=GB,ST=London,L=London,O=Org 9009,CN=anyone",
        Some("C=GB,ST=London,L=London,O=Org 9009,CN=*"),
    ),
];

fn naive_first_match<'a>(patterns: &'a [String], dn: &str) -> Option<&'a str> {
    patterns
        .iter()
        .find(|pattern| pattern_matches(pattern, dn))
        .map(String::as_str)
}

fn decisions(c: &mut Criterion) {
    let patterns = patterns();
    let list = AllowedDnList::new(&patterns).expect("patterns compile");
    let mut group = c.benchmark_group("dn_match_10k");
    for (name, dn, expected) in CASES {
        // Measure only correct answers.
        assert_eq!(list.matching_pattern(dn), expected, "{name}");
        assert_eq!(naive_first_match(&patterns, dn), expected, "{name}");
        group.bench_with_input(BenchmarkId::new("compiled", name), dn, |b, dn| {
            b.iter(|| list.matching_pattern(black_box(dn)).is_some())
        });
        group.bench_with_input(BenchmarkId::new("naive_scan", name), dn, |b, dn| {
            b.iter(|| naive_first_match(&patterns, black_box(dn)).is_some())
        });
    }
    group.finish();
}

fn compilation(c: &mut Criterion) {
    let patterns = patterns();
    c.bench_function("dn_match_10k/compile", |b| {
        b.iter(|| AllowedDnList::new(black_box(&patterns)).expect("patterns compile"))
    });
}

criterion_group!(benches, decisions, compilation);
criterion_main!(benches);
