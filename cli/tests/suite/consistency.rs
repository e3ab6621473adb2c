//! Issue 15, items 11 and 13: what every command shares. `--json` gives a JSON error object
//! on failure; every JSON date is RFC 3339; one option has one documented name (the other
//! spelling still works); fix hints name virtpki's own commands before certtool templates.

use crate::common;

use std::path::Path;

use common::{pki, revoke_client, s, virtpki};
use serde_json::Value;

/// Standard output as JSON; panics with the output if it is not.
fn json(run: &common::Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", run.stdout, run.stderr))
}

/// The error object of a failed `--json` run, checked for its shape.
fn error_of(run: &common::Run) -> Value {
    let v = json(run);
    let e = &v["error"];
    assert!(e["kind"].is_string() && e["message"].is_string(), "{v}");
    assert!(e.get("file").is_some(), "{v}");
    e.clone()
}

/// RFC 3339 in UTC to the second, as `known` writes `added`: 2026-11-23T10:00:00Z.
fn is_rfc3339(v: &Value) -> bool {
    let Some(t) = v.as_str() else { return false };
    let b = t.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Issue 15, item 11: with `--json`, a command that fails printed nothing on standard
/// output. Now it prints `{"error": {"kind", "message", "file"}}` and keeps its exit status.
#[test]
fn json_commands_print_an_error_object_when_they_fail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("missing.pem");
    let garbage = d.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let closed = format!("127.0.0.1:{closed}");
    let store = d.join("known");
    // (arguments, kind, file)
    let cases: Vec<(Vec<&str>, &str, Option<&Path>)> = vec![
        (vec!["show", "--json", s(&missing)], "path", Some(&missing)),
        (vec!["show", "--json", s(&garbage)], "parse", Some(&garbage)),
        (vec!["dn", "--json", s(&garbage)], "parse", Some(&garbage)),
        (
            vec!["known", "list", "--json", "--known-file", s(d)],
            "path",
            Some(d),
        ),
        (
            vec![
                "probe",
                "--json",
                &closed,
                "--trust",
                "never",
                "--known-file",
                s(&store),
            ],
            "connect",
            None,
        ),
        (vec!["probe", "--json", &closed], "usage", None),
        (
            vec!["show", "--json", "--no-such-option", s(&garbage)],
            "usage",
            None,
        ),
        (vec!["known", "list", "--json", "extra"], "usage", None),
    ];
    for (args, kind, file) in cases {
        let run = virtpki(d, &args).expect(2);
        let e = error_of(&run);
        assert_eq!(e["kind"], kind, "{args:?}: {e}");
        assert_eq!(e["file"].as_str(), file.map(s), "{args:?}: {e}");
        // The same message as on standard error, where people read it.
        let first = e["message"]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned();
        assert!(
            run.stderr.contains(&first),
            "{args:?}: {first}\n{}",
            run.stderr
        );
        // Without --json, standard output stays empty and the status the same.
        let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        if kind != "usage" {
            let run = virtpki(d, &plain);
            assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{plain:?}");
        }
    }
    // Help is no error, with or without --json.
    let run = virtpki(d, &["show", "--json", "--help"]).expect(0);
    assert!(run.stdout.starts_with("Describe"), "{}", run.stdout);
}

/// Issue 15, item 11: one date format in JSON, RFC 3339 as `known` writes `added` (`show` and
/// `probe`, whose certificate object is `show`'s, printed "2026-11-23 10:00:00 UTC").
#[test]
fn every_json_date_is_rfc3339() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let cert = p.server.join("servercert.pem");
    let v = json(&virtpki(d, &["show", "--json", s(&cert)]).expect(0));
    let c = &v["certificates"][0];
    assert!(
        is_rfc3339(&c["not_before"]) && is_rfc3339(&c["not_after"]),
        "{v}"
    );

    let store = d.join("known");
    virtpki(
        d,
        &[
            "known",
            "add",
            "--known-file",
            s(&store),
            "localhost",
            s(&cert),
        ],
    )
    .expect(0);
    let v = json(&virtpki(d, &["known", "list", "--json", "--known-file", s(&store)]).expect(0));
    let e = &v["entries"][0];
    assert!(
        is_rfc3339(&e["added"]) && is_rfc3339(&e["not_after"]),
        "{v}"
    );
    assert!(is_rfc3339(&e["certificate"]["not_after"]), "{v}");

    revoke_client(d, &p).expect(0);
    let v = json(&virtpki(d, &["show", "--json", s(&p.ca.join("cacrl.pem"))]).expect(0));
    let mut dates = Vec::new();
    dated_fields(&v, &mut dates);
    for key in ["this_update", "next_update", "revoked_at"] {
        assert!(dates.iter().any(|(k, _)| k == key), "{key}: {v}");
    }
    for (key, value) in &dates {
        assert!(is_rfc3339(value), "{key}: {value}");
    }
}

/// Every value under a key that names a time, anywhere in `v`.
fn dated_fields(v: &Value, out: &mut Vec<(String, Value)>) {
    const TIMES: [&str; 6] = [
        "this_update",
        "next_update",
        "revoked_at",
        "not_before",
        "not_after",
        "added",
    ];
    match v {
        Value::Object(map) => {
            for (k, value) in map {
                if TIMES.contains(&k.as_str()) && !value.is_null() {
                    out.push((k.clone(), value.clone()));
                }
                dated_fields(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| dated_fields(i, out)),
        _ => {}
    }
}

/// Issue 15, item 11: `known --file` and `probe --known-file`, `validate --path` and `probe
/// --pkipath` named one thing two ways. Both spellings work everywhere; help shows one.
#[test]
fn one_name_for_one_option_and_the_other_spelling_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("known");
    for spelling in ["--known-file", "--file"] {
        virtpki(d, &["known", "list", spelling, s(&store)]).expect(0);
    }
    let help = virtpki(d, &["known", "list", "--help"]).expect(0).stdout;
    assert!(
        help.contains("--known-file <FILE>") && !help.contains("--file <"),
        "{help}"
    );
    let help = virtpki(d, &["probe", "--help"]).expect(0).stdout;
    assert!(help.contains("--known-file <FILE>"), "{help}");
    assert!(
        help.contains("--path <DIR>") && !help.contains("--pkipath <"),
        "{help}"
    );
    let help = virtpki(d, &["validate", "--help"]).expect(0).stdout;
    assert!(
        help.contains("--path <DIR>") && !help.contains("--pkipath <"),
        "{help}"
    );

    // Each spelling reaches the option: a missing directory is reported under its name.
    let missing = d.join("nowhere");
    for (cmd, spelling) in [
        (vec!["validate", "trust"], "--pkipath"),
        (vec!["validate", "trust"], "--path"),
        (
            vec!["probe", "127.0.0.1:1", "--trust", "never"],
            "--pkipath",
        ),
        (vec!["probe", "127.0.0.1:1", "--trust", "never"], "--path"),
    ] {
        let mut args = cmd.clone();
        args.extend([spelling, s(&missing)]);
        let run = virtpki(d, &args).expect(2);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            all.contains(&format!("--path {}: no such directory", s(&missing))),
            "{args:?}\n{all}"
        );
    }
}

/// Issue 15, item 13: fix hints sent people to certtool templates first. Each names virtpki's
/// command, then the certtool template.
#[test]
fn fix_hints_name_virtpki_before_certtool() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    // A client certificate and a CA certificate where a server's belongs.
    for (cert, key, wanted) in [
        (
            p.client.join("clientcert.pem"),
            p.client.join("clientkey.pem"),
            "virtpki issue server; certtool template: tls_www_server",
        ),
        (
            p.ca.join("cacert.pem"),
            p.ca.join("cakey.pem"),
            "virtpki issue server; certtool template without \"ca\"",
        ),
    ] {
        let pkipath = d.join(format!("pki-{}", wanted.len()));
        std::fs::create_dir(&pkipath).unwrap();
        std::fs::copy(p.ca.join("cacert.pem"), pkipath.join("cacert.pem")).unwrap();
        std::fs::copy(&cert, pkipath.join("servercert.pem")).unwrap();
        std::fs::copy(&key, pkipath.join("serverkey.pem")).unwrap();
        let run = virtpki(d, &["validate", "--path", s(&pkipath), "server"]);
        assert!(run.stdout.contains(wanted), "{}", run.stdout);
        for line in run.stdout.lines().filter(|l| l.contains("certtool")) {
            let virtpki_at = line.find("virtpki ");
            assert!(
                virtpki_at.is_some_and(|v| v < line.find("certtool").unwrap()),
                "{line}"
            );
        }
    }
}

/// A reader that stops reading (`virtpki ... | head`) ends virtpki by SIGPIPE, as it ends any
/// command-line tool: no panic message, no backtrace.
#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    // A pipe whose reading end is closed before virtpki writes its first line.
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is the reading end just made, closed once.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is the writing end just made, owned by nothing else.
    let write_end = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    let out = Command::new(env!("CARGO_BIN_EXE_virtpki"))
        .args(["ca", "init", "--key-type", "ecdsa", "--dir"])
        .arg(dir.path().join("ca"))
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}
