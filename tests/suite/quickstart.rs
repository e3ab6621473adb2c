//! The README's first command keeps telling the truth: the quickstart's story runs to the end
//! and its transcript says what each step found.
//!
//! The example's source is compiled in as a module and its `run` called, so that `cargo test`
//! checks the code it just built (a test that ran `target/*/examples/quickstart` could run a
//! stale binary, or none, under `cargo test --test suite quickstart::`).

#[allow(dead_code)] // its `main`
#[path = "../../examples/quickstart.rs"]
mod example;

#[test]
fn the_quickstart_story_holds() {
    let mut out = Vec::new();
    let result = example::run(&mut out);
    let transcript = String::from_utf8_lossy(&out);
    if let Err(e) = result {
        panic!("the quickstart failed: {e}\n--- transcript ---\n{transcript}");
    }
    for line in [
        "  serverkey.pem   0600",
        "  sanity check: no findings",
        "the client's DN, as tls_allowed_dn_list sees it: C=GB,O=Quickstart,CN=client1",
        "the daemon said \"welcome, C=GB,O=Quickstart,CN=client1\"",
        "trusted: false, flags: none; answered AcceptAlways",
        "  | Subject alternative names: DNS:localhost, IP:127.0.0.1",
        "  # host localhost port ",
        "trusted: true, flags: none; answered AcceptOnce",
        "same certificate as before;",
        "daemon: refused (VIR_PKI_ERR_DN_NOT_ALLOWED)",
        "(DN: C=GB,O=Elsewhere,CN=intruder)",
        "client: refused (VIR_PKI_ERR_TLS): the server did not confirm the connection",
        "client: refused (VIR_PKI_ERR_HOSTNAME_MISMATCH)",
        "does not match hostname 'wrong.example.com'",
        "[expires-soon] The server certificate",
        "expires in 25 days",
        "daemon: reloaded its files without a restart",
        "daemon's check: no findings",
        "trusted: false, flags: CHANGED|SAME_KEY; answered AcceptAlways",
        "known-servers store now says localhost:",
        "daemon stopped",
    ] {
        assert!(
            transcript.contains(line),
            "missing {line:?}\n--- transcript ---\n{transcript}"
        );
    }
    // The steps come in the story's order.
    let steps: Vec<usize> = (1..=9)
        .map(|n| transcript.find(&format!("== {n}. ")).unwrap_or(usize::MAX))
        .collect();
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "{steps:?}\n{transcript}"
    );
}
