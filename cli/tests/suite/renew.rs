//! `virtpki renew` and `virtpki ca renew`: the same key, subject and names under a new
//! certificate; everything it refuses leaves the files as they were.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{ca_init, certs, mode, pki, revoke_client, s, virtpki, Pki};
use virtpki::verify::VerifyFlags;
use virtpki::{CertDataType, Context, ContextFlags};

fn renew(d: &Path, p: &Pki, cert: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["renew", "--ca-dir", s(&p.ca), s(cert), "--out-dir", s(out)];
    args.extend_from_slice(extra);
    virtpki(d, &args)
}

/// The `.bak-TIME` copies of `file`.
fn backups(file: &Path) -> Vec<PathBuf> {
    let name = file.file_name().unwrap().to_string_lossy().into_owned() + ".bak-";
    fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&name))
        .collect()
}

#[test]
fn renew_keeps_subject_names_and_key_under_the_same_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    for (role, from) in [("server", &p.server), ("client", &p.client)] {
        let old_path = from.join(format!("{role}cert.pem"));
        let out = d.join(format!("renewed-{role}"));
        let run = renew(d, &p, &old_path, &out, &["--days", "30"]).expect(0);
        let new_path = out.join(format!("{role}cert.pem"));
        assert_eq!(mode(&new_path), 0o644);
        assert_eq!(
            fs::read_dir(&out).unwrap().count(),
            1,
            "the certificate alone"
        );
        let (old, new) = (&certs(&old_path)[0], &certs(&new_path)[0]);
        assert_eq!(new.subject_raw(), old.subject_raw());
        assert_eq!(new.subject_alt_names(), old.subject_alt_names());
        assert_eq!(new.spki_der(), old.spki_der());
        assert_eq!(new.key_usage(), old.key_usage());
        assert_eq!(new.extended_key_usage(), old.extended_key_usage());
        assert_ne!(new.fingerprint(), old.fingerprint());
        assert!(new.not_after() < old.not_after(), "--days 30");
        let out_text = &run.stdout;
        assert!(
            out_text.starts_with(&format!("Renewed {role} certificate {}", old.subject())),
            "{out_text}"
        );
        assert!(
            out_text.contains(&format!("DN (libvirt's format): {}", old.subject())),
            "{out_text}"
        );
        assert!(
            out_text.contains(&format!(
                "fingerprint: {} -> {}",
                old.fingerprint_string(),
                new.fingerprint_string()
            )),
            "{out_text}"
        );
        assert!(out_text.contains("the same public key"), "{out_text}");
        assert!(common::line_with(out_text, "not after:").contains(" -> "));
        assert!(
            out_text.contains(&format!("virtpki install --role {role} --ca-dir")),
            "{out_text}"
        );
        assert!(out_text.contains("--reload"), "{out_text}");
        if role == "server" {
            assert!(
                out_text.contains("DNS:localhost, IP:127.0.0.1"),
                "{out_text}"
            );
        } else {
            assert!(
                out_text.contains("tls_allowed_dn_list: unchanged"),
                "{out_text}"
            );
        }
        // The renewed certificate goes with the key the host already has.
        let ctx = Context::new(ContextFlags::default());
        ctx.add_file(CertDataType::CaCert, &p.ca.join("cacert.pem"))
            .unwrap();
        let rl = if role == "server" {
            virtpki::Role::Server
        } else {
            virtpki::Role::Client
        };
        ctx.add_file(rl.cert_type(), &new_path).unwrap();
        ctx.add_file(rl.key_type(), &from.join(format!("{role}key.pem")))
            .unwrap();
        let report = ctx.check(rl);
        assert!(report.is_ok(), "{}", report.to_text());
    }
}

#[test]
fn renew_over_the_certificate_itself_needs_force_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let cert = p.server.join("servercert.pem");
    let before = fs::read(&cert).unwrap();
    let run = renew(d, &p, &cert, &p.server, &[]).expect(2);
    assert!(
        run.stderr.contains("is the certificate being renewed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(fs::read(&cert).unwrap(), before);
    assert!(backups(&cert).is_empty());
    // Another file of that name in the output directory is not replaced either.
    let other = d.join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("servercert.pem"), "theirs").unwrap();
    let run = renew(d, &p, &cert, &other, &[]).expect(2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(other.join("servercert.pem")).unwrap(),
        "theirs"
    );
    // With --force: replaced, the old one kept beside it.
    let run = renew(d, &p, &cert, &p.server, &["--force"]).expect(0);
    let kept = backups(&cert);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(fs::read(&kept[0]).unwrap(), before);
    assert!(run.stdout.contains("kept the old one as"), "{}", run.stdout);
    assert_ne!(fs::read(&cert).unwrap(), before);
    assert_eq!(mode(&cert), 0o644);
    assert_eq!(certs(&cert)[0].spki_der(), certs(&kept[0])[0].spki_der());
}

#[test]
fn renew_refusals_name_the_file_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let out = d.join("out");
    let cert = p.server.join("servercert.pem");
    let refused = |cert: &Path, ca: &Path, extra: &[&str], wanted: &[&str]| {
        let mut args = vec!["renew", "--ca-dir", s(ca), s(cert), "--out-dir", s(&out)];
        args.extend_from_slice(extra);
        let run = virtpki(d, &args).expect(2);
        for w in wanted {
            assert!(run.stderr.contains(w), "{w:?} in:\n{}", run.stderr);
        }
        assert!(!out.exists(), "{}", run.stderr);
    };
    // No such file.
    let missing = d.join("missing.pem");
    refused(&missing, &p.ca, &[], &[s(&missing), "no such file"]);
    // Not PEM.
    let junk = d.join("junk.pem");
    fs::write(&junk, "not a certificate\n").unwrap();
    refused(&junk, &p.ca, &[], &[s(&junk)]);
    // A key where the certificate was expected.
    let key = p.server.join("serverkey.pem");
    refused(
        &key,
        &p.ca,
        &[],
        &[s(&key), "private key", "certificate to renew"],
    );
    // Two certificates: which one?
    let two = d.join("two.pem");
    fs::write(
        &two,
        fs::read_to_string(&cert).unwrap() + &fs::read_to_string(p.ca.join("cacert.pem")).unwrap(),
    )
    .unwrap();
    refused(&two, &p.ca, &[], &[s(&two), "holds 2 certificates"]);
    // A certificate of another CA.
    let other = d.join("other-ca");
    ca_init(d, &other);
    refused(
        &cert,
        &other,
        &[],
        &[s(&cert), "was not issued by this CA", "cannot renew it"],
    );
    // The CA's own certificate.
    refused(
        &p.ca.join("cacert.pem"),
        &p.ca,
        &[],
        &["own certificate", "virtpki ca renew"],
    );
    // A CA directory whose key is not its certificate's.
    let mixed = d.join("mixed-ca");
    fs::create_dir(&mixed).unwrap();
    fs::copy(p.ca.join("cacert.pem"), mixed.join("cacert.pem")).unwrap();
    common::write(
        &mixed.join("cakey.pem"),
        &fs::read(other.join("cakey.pem")).unwrap(),
        0o600,
    );
    refused(&cert, &mixed, &[], &["cakey.pem", "does not belong"]);
    // Longer than the CA lives.
    refused(
        &cert,
        &p.ca,
        &["--days", "100000"],
        &["would outlive its CA", "fewer days"],
    );
    // Revoked: its key is not trusted again.
    revoke_client(d, &p).expect(0);
    let client = p.client.join("clientcert.pem");
    refused(&client, &p.ca, &[], &[s(&client), "is revoked", "new key"]);
    // The errors of --json are JSON too, naming the file.
    let run = virtpki(
        d,
        &[
            "renew",
            "--ca-dir",
            s(&other),
            s(&cert),
            "--out-dir",
            s(&out),
            "--json",
        ],
    )
    .expect(2);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "unknown_issuer", "{v}");
    assert_eq!(v["error"]["file"], s(&cert), "{v}");
    assert!(!out.exists());
}

#[test]
fn renew_json_says_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let cert = p.server.join("servercert.pem");
    let out = d.join("out");
    let run = renew(d, &p, &cert, &out, &["--json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let old = &certs(&cert)[0];
    let new = &certs(&out.join("servercert.pem"))[0];
    assert_eq!(v["changed"], true);
    assert_eq!(v["file"], s(&out.join("servercert.pem")));
    assert_eq!(v["backup"], serde_json::Value::Null);
    assert_eq!(v["role"], "server");
    assert_eq!(v["subject"], old.subject());
    assert_eq!(
        v["subject_alt_names"],
        serde_json::json!(["DNS:localhost", "IP:127.0.0.1"])
    );
    assert_eq!(v["same_public_key"], true);
    assert_eq!(v["public_key_fingerprint"], old.spki_fingerprint_string());
    assert_eq!(v["old"]["fingerprint"], old.fingerprint_string());
    assert_eq!(v["new"]["fingerprint"], new.fingerprint_string());
    assert_eq!(v["old"]["serial"], old.serial_hex());
    assert_eq!(v["new"]["serial"], new.serial_hex());
    assert!(
        v["new"]["not_after"].as_str().unwrap().ends_with('Z'),
        "{v}"
    );
    assert_eq!(v["not_carried"], serde_json::json!([]));
    assert!(v["next"].as_str().unwrap().contains("--reload"), "{v}");
}

fn verifies(cas: &[&Path], p: &Pki) {
    let bundle: String = cas.iter().map(|c| fs::read_to_string(c).unwrap()).collect();
    let ctx = Context::new(ContextFlags::default());
    ctx.add_pem(CertDataType::CaCert, &bundle).unwrap();
    ctx.verify_client(
        &certs(&p.client.join("clientcert.pem")),
        VerifyFlags::default(),
    )
    .unwrap_or_else(|e| panic!("{cas:?}: {e}"));
    ctx.verify_server(
        "localhost",
        None,
        &certs(&p.server.join("servercert.pem")),
        VerifyFlags::default(),
    )
    .unwrap_or_else(|e| panic!("{cas:?}: {e}"));
}

#[test]
fn ca_renew_keeps_issued_certificates_valid_and_the_old_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let ca_cert = p.ca.join("cacert.pem");
    let before = fs::read(&ca_cert).unwrap();
    let run = virtpki(d, &["ca", "renew", "--dir", s(&p.ca), "--days", "4000"]).expect(0);
    let kept = backups(&ca_cert);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(fs::read(&kept[0]).unwrap(), before);
    assert_eq!(mode(&ca_cert), 0o644);
    let (old, new) = (&certs(&kept[0])[0], &certs(&ca_cert)[0]);
    assert_eq!(new.subject_raw(), old.subject_raw());
    assert_eq!(new.spki_der(), old.spki_der());
    assert_eq!(new.profile().subject_key_id, old.profile().subject_key_id);
    assert!(new.is_ca());
    assert!(new.not_after() > old.not_after());
    for said in [
        "/etc/pki/CA/cacert.pem on every server and client",
        "~/.pki/libvirt/cacert.pem",
        "pkipath",
        "stays valid",
        "either order",
    ] {
        assert!(run.stdout.contains(said), "{said:?} in:\n{}", run.stdout);
    }
    // Certificates issued before verify under the renewed CA, alone or beside the old one.
    verifies(&[&ca_cert], &p);
    verifies(&[&kept[0], &ca_cert], &p);
    verifies(&[&ca_cert, &kept[0]], &p);
    // And `validate` of a pkipath with the renewed CA and the old client certificate passes.
    let pkipath = d.join("pkipath");
    fs::create_dir(&pkipath).unwrap();
    fs::copy(&ca_cert, pkipath.join("cacert.pem")).unwrap();
    fs::copy(
        p.client.join("clientcert.pem"),
        pkipath.join("clientcert.pem"),
    )
    .unwrap();
    common::write(
        &pkipath.join("clientkey.pem"),
        &fs::read(p.client.join("clientkey.pem")).unwrap(),
        0o600,
    );
    let run = virtpki(d, &["validate", "--path", s(&pkipath), "client"]);
    assert!(
        !run.stdout.contains("FAIL"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // The CA still issues with its key.
    common::issue_client(d, s(&p.ca), "CN=after", s(&d.join("after"))).expect(0);
    // JSON: what changed, and where the old one went.
    let run = virtpki(d, &["ca", "renew", "--dir", s(&p.ca), "--json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["changed"], true);
    assert_eq!(v["same_public_key"], true);
    assert_eq!(v["file"], s(&ca_cert));
    assert_eq!(backups(&ca_cert).len(), 2);
    assert!(
        v["backup"].as_str().unwrap().contains("cacert.pem.bak-"),
        "{v}"
    );
    assert_eq!(v["old"]["fingerprint"], new.fingerprint_string());
    assert_eq!(v["replace_on_every_host"].as_array().unwrap().len(), 3);
}

#[test]
fn ca_renew_refuses_what_is_not_a_ca_directory_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    // No such directory: the path check says so.
    let run = virtpki(d, &["ca", "renew", "--dir", s(&d.join("nowhere"))]).expect(2);
    assert!(run.stderr.contains("no such directory"), "{}", run.stderr);
    // A directory of issued files, not a CA.
    let run = virtpki(d, &["ca", "renew", "--dir", s(&p.server)]).expect(2);
    assert!(run.stderr.contains("cacert.pem"), "{}", run.stderr);
    assert!(backups(&p.server.join("servercert.pem")).is_empty());
    // A CA certificate with another CA's key.
    let other = d.join("other");
    ca_init(d, &other);
    fs::copy(p.ca.join("cacert.pem"), other.join("cacert.pem")).unwrap();
    let before = fs::read(other.join("cacert.pem")).unwrap();
    let run = virtpki(d, &["ca", "renew", "--dir", s(&other)]).expect(2);
    assert!(run.stderr.contains("does not belong"), "{}", run.stderr);
    assert_eq!(fs::read(other.join("cacert.pem")).unwrap(), before);
    assert!(backups(&other.join("cacert.pem")).is_empty());
}

/// Review: `--out-dir` the CA directory and a CERT named like one of its files: `--force` then
/// replaced the CA's own certificate (or key, or CRL) with the renewed leaf, breaking the CA.
#[test]
fn renew_never_writes_over_the_ca_directorys_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let leaf = fs::read(p.server.join("servercert.pem")).unwrap();
    let elsewhere = d.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let files_of = |dir: &Path| {
        let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| (p.clone(), fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = files_of(&p.ca);
    for name in ["cacert.pem", "cakey.pem", "cacrl.pem"] {
        let cert = elsewhere.join(name);
        fs::write(&cert, &leaf).unwrap();
        // The CA directory given another way (a trailing "/."), as people type it.
        let run = renew(d, &p, &cert, &p.ca.join("."), &["--force"]).expect(2);
        assert!(run.stderr.contains(name), "{}", run.stderr);
        assert!(run.stderr.contains("CA directory"), "{}", run.stderr);
    }
    assert!(files_of(&p.ca) == before, "the CA directory changed");
}

/// Review: `ca renew --days N` that ends the CA sooner than it ended (a typo, or a 20-year CA
/// renewed early with the default) said "every certificate this CA issued stays valid": those
/// that run past the new end stop verifying then. Said plainly instead, in text and JSON.
#[test]
fn ca_renew_that_shortens_the_ca_says_what_stops_then() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let run = virtpki(d, &["ca", "renew", "--dir", s(&p.ca), "--days", "30"]).expect(0);
    let warning = common::line_with(&run.stdout, "before the old one");
    assert!(warning.contains("stops verifying"), "{}", run.stdout);
    assert!(
        !run.stdout
            .contains("every certificate this CA issued stays valid"),
        "{}",
        run.stdout
    );
    let run = virtpki(
        d,
        &["ca", "renew", "--dir", s(&p.ca), "--days", "20", "--json"],
    )
    .expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["ends_before_old"], true, "{v}");
    let run = virtpki(
        d,
        &["ca", "renew", "--dir", s(&p.ca), "--days", "4000", "--json"],
    )
    .expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["ends_before_old"], false, "{v}");
}

/// Review: `ca renew` of a CA made by openssl with `authorityKeyIdentifier=keyid,issuer`
/// says that what it issued names the old CA certificate's serial (OpenSSL peers refuse those
/// under the renewed CA alone), and what to do; a CA of virtpki's says nothing of it.
#[test]
fn ca_renew_of_an_openssl_ca_naming_issuer_and_serial_says_what_openssl_peers_need() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = d.join("openssl-ca");
    fs::create_dir(&ca).unwrap();
    let mut req = vec!["req", "-x509"];
    req.extend_from_slice(common::openssl_args::NEW_P256_KEY);
    req.extend([
        "-keyout",
        "openssl-ca/key.pem",
        "-out",
        "openssl-ca/cacert.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=Openssl CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "authorityKeyIdentifier=keyid:always,issuer:always",
    ]);
    virtpki_tools::kit::openssl(d, &req);
    virtpki_tools::kit::openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "openssl-ca/key.pem",
            "-out",
            "openssl-ca/cakey.pem",
        ],
    );
    fs::set_permissions(ca.join("cakey.pem"), fs::Permissions::from_mode(0o600)).unwrap();
    // A copy for --json: renewed once, the CA names itself by key identifier only.
    let copy = d.join("copy");
    fs::create_dir(&copy).unwrap();
    for f in ["cacert.pem", "cakey.pem"] {
        fs::copy(ca.join(f), copy.join(f)).unwrap();
    }
    let run = virtpki(d, &["ca", "renew", "--dir", s(&ca)]).expect(0);
    let warning = common::line_with(&run.stdout, "issuer and serial");
    assert!(warning.contains("OpenSSL"), "{}", run.stdout);
    assert!(run.stdout.contains("virtpki renew"), "{}", run.stdout);
    let run = virtpki(d, &["ca", "renew", "--dir", s(&copy), "--json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["issued_name_old_serial"], true, "{v}");
    // virtpki's own CA: key identifiers only, nothing to say.
    let p = pki(d);
    let run = virtpki(d, &["ca", "renew", "--dir", s(&p.ca)]).expect(0);
    assert!(!run.stdout.contains("issuer and serial"), "{}", run.stdout);
    let run = virtpki(d, &["ca", "renew", "--dir", s(&p.ca), "--json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["issued_name_old_serial"], false, "{v}");
}

/// Review: `renew` read the CA directory's CRL without its lock, so a `crl revoke` running
/// at the same moment could land between the check and the write: the renewal of a
/// certificate just revoked. It waits for the lock as `crl revoke` and `ca renew` take it.
#[test]
fn renew_waits_for_the_ca_directorys_lock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let held = d.join("held");
    // flock(1) holds the directory's lock (flock on the directory, as virtpki takes it).
    let mut holder = std::process::Command::new("flock")
        .arg(&p.ca)
        .args(["-c", &format!("touch '{}'; sleep 2", s(&held))])
        .spawn()
        .expect("flock(1)");
    while !held.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let start = std::time::Instant::now();
    renew(d, &p, &p.server.join("servercert.pem"), &d.join("out"), &[]).expect(0);
    let waited = start.elapsed();
    holder.wait().unwrap();
    assert!(
        waited >= std::time::Duration::from_millis(1500),
        "renew did not wait for the lock ({waited:?})"
    );
}

/// A renewal in the second of issue, with the same validity, has the same not-after as the old
/// certificate to the second: the summary says what tells them apart (the serial, the start)
/// for both `renew` and `ca renew`, and never reads as if nothing changed.
#[test]
fn the_summary_tells_old_and_new_apart_even_on_the_day_of_issue() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = pki(d);
    let old_path = p.server.join("servercert.pem");
    let out = d.join("renewed");
    let run = renew(d, &p, &old_path, &out, &[]).expect(0);
    let (old, new) = (&certs(&old_path)[0], &certs(&out.join("servercert.pem"))[0]);
    let serial = format!("serial: {} -> {}", old.serial_hex(), new.serial_hex());
    assert_ne!(old.serial_hex(), new.serial_hex());
    assert!(run.stdout.contains(&serial), "{}", run.stdout);
    for line in ["not before:", "not after:"] {
        let l = common::line_with(&run.stdout, line);
        let (a, b) = l.split_once(" -> ").expect(l);
        // Dates with the time of day in UTC, to the second.
        assert!(a.ends_with(" UTC") && b.contains(" UTC"), "{l}");
        assert!(a.matches(':').count() >= 3, "{l}");
        if a.trim_start_matches(line).trim() == b.split(" (").next().unwrap() {
            assert!(l.contains("the same to the second"), "{l}");
        }
    }
    let ca_old = certs(&p.ca.join("cacert.pem"))[0].serial_hex();
    let run = virtpki(d, &["ca", "renew", "--dir", s(&p.ca)]).expect(0);
    let ca_new = certs(&p.ca.join("cacert.pem"))[0].serial_hex();
    assert_ne!(ca_old, ca_new);
    assert!(
        run.stdout
            .contains(&format!("serial: {ca_old} -> {ca_new}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("not before: "), "{}", run.stdout);
}
