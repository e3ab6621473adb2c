//! x509-limbo server-validation vectors through `Context::verify_server`, in strict mode
//! (REQUIRE_SAN) and default mode (Common Name fallback). The test fails when the count of
//! unexpected results rises above the checked-in ratchet (tests/data/x509-limbo/ratchet.json),
//! and when the two modes differ on anything but a certificate without DNS or IP SAN.
//!
//! Results files in the format of the shared score.py are written to
//! target/x509-limbo/results-{strict,default}.json for the README's tables.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use serde_json::{json, Value};
use virtpki::{CertDataType, Certificate, Context, ContextFlags, Source, VerifyFlags};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Success,
    Failure,
    Skipped,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/x509-limbo")
}

fn testcases() -> Vec<Value> {
    let mut text = String::new();
    let file = std::fs::File::open(data_dir().join("limbo-server-subset.json.gz")).unwrap();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    std::mem::take(doc["testcases"].as_array_mut().unwrap())
}

fn rfc3339_to_unix(s: &str) -> i64 {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
    t.unix_timestamp()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// One testcase in one mode.
fn run(tc: &Value, flags: ContextFlags) -> (Outcome, String) {
    let Some(name) = tc["expected_peer_name"]["value"].as_str() else {
        return (Outcome::Skipped, "no expected peer name".into());
    };
    let ctx = Context::new(flags | ContextFlags::NO_SANITY);
    if let Some(t) = tc["validation_time"].as_str() {
        ctx.set_verify_time(Some(rfc3339_to_unix(t)));
    }
    let fail = |why: String| (Outcome::Failure, why);
    for ca in strings(&tc["trusted_certs"]) {
        if let Err(e) = ctx.add_pem(CertDataType::CaCert, ca) {
            return fail(format!("trusted certificate: {e}"));
        }
    }
    for crl in strings(&tc["crls"]) {
        if let Err(e) = ctx.add_pem(CertDataType::CaCrl, crl) {
            return fail(format!("CRL: {e}"));
        }
    }
    let mut chain = Vec::new();
    for pem_text in std::iter::once(tc["peer_certificate"].as_str().unwrap())
        .chain(strings(&tc["untrusted_intermediates"]))
    {
        let der = match ::pem::parse(pem_text) {
            Ok(p) => p.into_contents(),
            Err(e) => return fail(format!("PEM: {e}")),
        };
        match Certificate::from_der(der, Source::Peer) {
            Ok(c) => chain.push(c),
            Err(e) => return fail(format!("certificate: {e}")),
        }
    }
    match ctx.verify_server(name, None, &chain, VerifyFlags::default()) {
        Ok(_) => (Outcome::Success, String::new()),
        Err(e) => fail(e.to_string()),
    }
}

/// Unexpected results of one mode.
#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    unexpected_success: usize,
    unexpected_failure: usize,
    skipped: usize,
}

/// Runs every testcase in one mode; writes the results file; returns counts and outcomes.
fn run_mode(tcs: &[Value], mode: &str, flags: ContextFlags) -> (Counts, BTreeMap<String, Outcome>) {
    let mut counts = Counts::default();
    let mut outcomes = BTreeMap::new();
    let mut results = Vec::new();
    for tc in tcs {
        let id = tc["id"].as_str().unwrap().to_owned();
        let (outcome, context) = run(tc, flags);
        let expected_success = tc["expected_result"] == "SUCCESS";
        match outcome {
            Outcome::Success if !expected_success => counts.unexpected_success += 1,
            Outcome::Failure if expected_success => counts.unexpected_failure += 1,
            Outcome::Skipped => counts.skipped += 1,
            _ => {}
        }
        let actual = match outcome {
            Outcome::Success => "SUCCESS",
            Outcome::Failure => "FAILURE",
            Outcome::Skipped => "SKIPPED",
        };
        results.push(json!({"id": id, "actual_result": actual, "context": context}));
        outcomes.insert(id, outcome);
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("x509-limbo");
    std::fs::create_dir_all(&dir).unwrap();
    let file = json!({"version": 1, "harness": format!("virtpki-{mode}"), "results": results});
    std::fs::write(
        dir.join(format!("results-{mode}.json")),
        serde_json::to_string(&file).unwrap(),
    )
    .unwrap();
    (counts, outcomes)
}

fn ratchet() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data_dir().join("ratchet.json")).unwrap())
        .unwrap()
}

#[test]
fn limbo_server_vectors_stay_within_the_ratchet() {
    let tcs = testcases();
    assert_eq!(tcs.len(), 9745);
    let limits = ratchet();
    let mut problems = Vec::new();
    let mut by_mode = Vec::new();
    for (mode, flags) in [
        ("strict", ContextFlags::REQUIRE_SAN),
        ("default", ContextFlags::default()),
    ] {
        let (counts, outcomes) = run_mode(&tcs, mode, flags);
        eprintln!("{mode}: {counts:?}");
        for (field, got) in [
            ("unexpected_success", counts.unexpected_success),
            ("unexpected_failure", counts.unexpected_failure),
            ("skipped", counts.skipped),
        ] {
            let limit = limits[mode][field].as_u64().unwrap() as usize;
            if got > limit {
                problems.push(format!("{mode}: {got} {field}, the ratchet allows {limit}"));
            }
        }
        by_mode.push(outcomes);
    }
    // The modes may differ only where the Common Name fallback applies.
    for tc in &tcs {
        let id = tc["id"].as_str().unwrap();
        if by_mode[0][id] != by_mode[1][id] {
            let der = ::pem::parse(tc["peer_certificate"].as_str().unwrap())
                .unwrap()
                .into_contents();
            let leaf = Certificate::from_der(der, Source::Peer).unwrap();
            if leaf.has_dns_or_ip_san() {
                problems.push(format!(
                    "{id}: strict and default differ on a certificate with SANs"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
