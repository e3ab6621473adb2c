//! `virtpki expiry`: the list soonest first, exit status by the horizon, JSON, Prometheus's
//! format, libvirt's files under --root, a CA directory, and paths that are not there.
//! Dates are built around the real clock: the command reads it.

use std::path::Path;

use crate::common::{self, *};
use virtpki::timefmt::now;
use virtpki_tools::kit::{self, self_signed, signed_by, Made, Spec};

const DAY: i64 = 86_400;

/// A CA that expires in 5 days and a server certificate of it that expires in 100, placed
/// where libvirt's system files are under `root`.
fn five_and_hundred(root: &Path, ca_cn: &str) -> (Made, Made) {
    let t = now();
    let ca = self_signed(&Spec::ca(ca_cn).valid(t - DAY, t + 5 * DAY + 3600));
    let server = signed_by(
        &Spec::server("host1.example.com").valid(t - DAY, t + 100 * DAY + 3600),
        &ca,
    );
    write(
        &root.join("etc/pki/CA/cacert.pem"),
        ca.pem().as_bytes(),
        0o644,
    );
    write(
        &root.join("etc/pki/libvirt/servercert.pem"),
        server.pem().as_bytes(),
        0o644,
    );
    write(
        &root.join("etc/pki/libvirt/private/serverkey.pem"),
        server.key_pem().as_bytes(),
        0o600,
    );
    (ca, server)
}

#[test]
fn soonest_first_and_exit_1_inside_the_horizon_0_outside() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    five_and_hundred(&root, "Expiry CA");
    let run = virtpki(dir.path(), &["expiry", "--root", s(&root)]).expect(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("EXPIRES"), "{}", run.stdout);
    assert!(lines[1].starts_with("in 5 days"), "{}", run.stdout);
    assert!(lines[1].contains("CN=Expiry CA") && lines[1].contains(" ca "));
    assert!(lines[1].ends_with("etc/pki/CA/cacert.pem"), "{}", lines[1]);
    assert!(lines[2].starts_with("in 100 days"), "{}", run.stdout);
    assert!(lines[2].contains("server") && lines[2].contains("UTC"));
    assert!(
        run.stdout.contains("2 items: 0 expired, 1 within 30 days"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("serverkey"), "keys are not listed");
    virtpki(
        dir.path(),
        &["expiry", "--root", s(&root), "--warn-days", "3"],
    )
    .expect(0);
    virtpki(
        dir.path(),
        &["expiry", "--root", s(&root), "--warn-days", "6"],
    )
    .expect(1);
}

#[test]
fn an_expired_certificate_is_said_and_exits_1_even_with_no_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let ca = self_signed(&Spec::ca("Old CA").valid(t - 30 * DAY, t - 3 * DAY - 60));
    let file = dir.path().join("old.pem");
    write(&file, ca.pem().as_bytes(), 0o644);
    let run = virtpki(dir.path(), &["expiry", "--warn-days", "0", s(&file)]).expect(1);
    assert!(run.stdout.contains("expired 3 days ago"), "{}", run.stdout);
    assert!(run.stdout.contains("1 expired"), "{}", run.stdout);
}

#[test]
fn json_is_an_array_with_rfc3339_dates() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let (ca, _) = five_and_hundred(&root, "Expiry CA");
    let run = virtpki(dir.path(), &["expiry", "--root", s(&root), "--json"]).expect(1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["role"], "ca");
    assert_eq!(items[0]["subject"], "CN=Expiry CA");
    assert_eq!(items[0]["days_left"], 5);
    assert_eq!(items[0]["within_horizon"], true);
    assert_eq!(items[0]["expired"], false);
    let want = virtpki::timefmt::rfc3339(ca.parsed().not_after()).unwrap();
    assert_eq!(items[0]["not_after"], want.as_str());
    assert!(want.ends_with('Z') && want.contains('T'));
    assert_eq!(items[1]["role"], "server");
    assert_eq!(items[1]["within_horizon"], false);
}

#[test]
fn prometheus_escapes_a_hostile_subject_and_writes_atomically_with_output() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    five_and_hundred(&root, "Evil \"CA\\\nfake{x=\"1\"} 0");
    let run = virtpki(dir.path(), &["expiry", "--root", s(&root), "--prometheus"]).expect(1);
    let text = run.stdout;
    // Every line is a comment or one sample: the newline did not split a sample.
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(samples.len(), 2 + 2 + 1, "{text}");
    for line in &samples {
        let (series, value) = line.rsplit_once(' ').unwrap();
        value.parse::<f64>().unwrap();
        assert!(series.starts_with("virtpki_"), "{line}");
    }
    let ca_line = samples
        .iter()
        .find(|l| {
            l.starts_with("virtpki_certificate_not_after_seconds") && l.contains("role=\"ca\"")
        })
        .unwrap();
    // The DN string escapes the quote and backslash once (RFC 4514), the format again.
    assert!(
        !ca_line.contains("CA\n") && ca_line.contains("\\\""),
        "{ca_line}"
    );
    assert!(text.contains("# TYPE virtpki_certificate_not_after_seconds gauge"));
    let out = dir.path().join("virtpki.prom");
    let run = virtpki(
        dir.path(),
        &[
            "expiry",
            "--root",
            s(&root),
            "--prometheus",
            "--output",
            s(&out),
        ],
    )
    .expect(1);
    assert_eq!(run.stdout, "", "written to the file only");
    assert_eq!(mode(&out), 0o644);
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.lines().count(), text.lines().count());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary left behind: {names:?}");
}

#[test]
fn a_ca_directory_and_files_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    ca_init(dir.path(), &ca_dir);
    let p = kit::pki();
    let file = dir.path().join("server.pem");
    write(&file, p.server.pem().as_bytes(), 0o644);
    let run = virtpki(
        dir.path(),
        &["expiry", "--ca-dir", s(&ca_dir), s(&file), "--json"],
    )
    .expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let files: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("ca/cacert.pem")));
    assert!(files.iter().any(|f| f.ends_with("server.pem")));
}

#[test]
fn a_missing_file_a_key_and_an_empty_location_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.pem");
    let run = virtpki(dir.path(), &["expiry", s(&missing)]).expect(2);
    assert!(run.stderr.contains("FILE"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing.pem"), "{}", run.stderr);
    let p = kit::pki();
    let key = dir.path().join("key.pem");
    write(&key, p.server.key_pem().as_bytes(), 0o600);
    let run = virtpki(dir.path(), &["expiry", s(&key)]).expect(2);
    assert!(run.stderr.contains("key.pem"), "{}", run.stderr);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let run = virtpki(dir.path(), &["expiry", "--root", s(&empty), "--json"]).expect(2);
    assert!(
        run.stderr.contains("no certificate or CRL found"),
        "{}",
        run.stderr
    );
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(v.is_object(), "the error as JSON: {v}");
    let run = virtpki(
        dir.path(),
        &["expiry", "--root", s(&empty), "--path", s(&empty)],
    )
    .expect(2);
    assert!(run.stderr.contains("--root"), "{}", run.stderr);
    let run = virtpki(dir.path(), &["expiry", "--path", s(&missing)]).expect(2);
    assert!(run.stderr.contains("--path"), "{}", run.stderr);
}

/// contrib's service and timer pass `systemd-analyze verify` with the binary put in
/// /usr/bin/virtpki's place, with no warning (an unknown key is only a warning there); the
/// service's command line is one `virtpki expiry` accepts.
#[test]
fn contrib_systemd_units_verify() {
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib");
    let service = std::fs::read_to_string(contrib.join("virtpki-expiry.service")).unwrap();
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/bin/virtpki "))
        .unwrap();
    assert!(exec.contains("--prometheus --output /var/lib/prometheus/node-exporter/virtpki.prom"));
    require("systemd-analyze");
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_virtpki");
    std::fs::write(
        dir.path().join("virtpki-expiry.service"),
        service.replace("/usr/bin/virtpki", bin),
    )
    .unwrap();
    std::fs::copy(
        contrib.join("virtpki-expiry.timer"),
        dir.path().join("virtpki-expiry.timer"),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("virtpki-expiry.timer"))
        .arg(dir.path().join("virtpki-expiry.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");
    // The same arguments, with a temporary output, parse and run.
    let args: Vec<&str> = exec.split_whitespace().collect();
    let output_at = args.iter().position(|a| *a == "--output").unwrap();
    let prom = dir.path().join("virtpki.prom");
    let root = dir.path().join("root");
    five_and_hundred(&root, "Unit CA");
    let mut argv: Vec<&str> = args[..=output_at].to_vec();
    argv.retain(|a| *a != "--system");
    argv.extend([s(&prom), "--root", s(&root)]);
    virtpki(dir.path(), &argv).expect(1);
    assert!(std::fs::read_to_string(&prom)
        .unwrap()
        .contains("virtpki_certificate_not_after_seconds{"));
}

/// `--output` replaces its file without `--force`, so it must never be a file being listed or
/// any PEM file: `virtpki expiry srv.pem -o srv.pem` replaced the certificate with the table.
#[test]
fn output_never_replaces_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    virtpki(d, &["ca", "init", "--dir", "ca", "--key-type", "ecdsa"]).expect(0);
    let cert = d.join("ca/cacert.pem");
    let before = std::fs::read(&cert).unwrap();
    let run = virtpki(d, &["expiry", s(&cert), "--output", s(&cert)]).expect(2);
    assert!(run.stderr.contains("--output"), "{}", run.stderr);
    assert_eq!(std::fs::read(&cert).unwrap(), before);
    let other = d.join("other.pem");
    std::fs::copy(&cert, &other).unwrap();
    virtpki(d, &["expiry", s(&cert), "--output", s(&other)]).expect(2);
    let metrics = d.join("virtpki.prom");
    virtpki(
        d,
        &["expiry", s(&cert), "--prometheus", "--output", s(&metrics)],
    )
    .expect(0);
    virtpki(
        d,
        &["expiry", s(&cert), "--prometheus", "--output", s(&metrics)],
    )
    .expect(0);
}

/// `--output` at a socket, FIFO, device (a link to /dev/null: `--output /dev/null` as root
/// replaced the system's /dev/null with a regular file) or directory: refused, naming it and
/// what it is, and left as it was; the rename would have put a regular file in its place.
#[test]
fn output_never_replaces_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    virtpki(d, &["ca", "init", "--dir", "ca", "--key-type", "ecdsa"]).expect(0);
    let cert = d.join("ca/cacert.pem");
    let out = d.join("metrics.prom");
    for kind in common::NOT_FILES {
        let _listener = common::make_not_file(&out, kind);
        let before = std::fs::symlink_metadata(&out).unwrap().file_type();
        let argv = ["expiry", s(&cert), "--prometheus", "--output", s(&out)];
        let run = common::virtpki_within(d, &argv, 20).expect(2);
        assert!(
            run.stderr.contains(&format!("--output {}", out.display()))
                && run.stderr.contains(&format!("it is {kind}")),
            "{kind}: {}",
            run.stderr
        );
        let after = std::fs::symlink_metadata(&out).unwrap().file_type();
        assert_eq!(
            (
                after.is_socket(),
                after.is_fifo(),
                after.is_dir(),
                after.is_symlink()
            ),
            (
                before.is_socket(),
                before.is_fifo(),
                before.is_dir(),
                before.is_symlink()
            ),
            "{kind}: replaced"
        );
        common::remove_not_file(&out);
    }
}

/// A link to nothing or a FIFO at one of libvirt's locations is reported (exit 2, the file
/// named), never passed over as absent, and the FIFO is not opened for reading (it blocks).
#[test]
fn a_dangling_link_or_a_fifo_under_root_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    five_and_hundred(&root, "Link CA");
    let cert = root.join("etc/pki/libvirt/servercert.pem");
    std::fs::remove_file(&cert).unwrap();
    std::os::unix::fs::symlink(root.join("gone.pem"), &cert).unwrap();
    let run = virtpki(dir.path(), &["expiry", "--root", s(&root)]).expect(2);
    assert!(run.stderr.contains(s(&cert)), "{}", run.stderr);
    assert!(run.stderr.contains("link to nothing"), "{}", run.stderr);
    std::fs::remove_file(&cert).unwrap();
    let fifo = root.join("etc/pki/CA/cacrl.pem");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // `virtpki` would hang on a read of the FIFO: the test's own timeout is the harness's.
    let run = virtpki(dir.path(), &["expiry", "--system", "--root", s(&root)]).expect(2);
    assert!(run.stderr.contains(s(&fifo)), "{}", run.stderr);
    assert!(run.stderr.contains("FIFO"), "{}", run.stderr);
}

/// A socket, FIFO, device or directory where libvirt expects its CRL: every command that
/// reads it names the file and says what it is, not a regular file (a socket gave "No such
/// device or address"), and none blocks on the FIFO.
#[test]
fn what_is_not_a_file_at_a_libvirt_location_is_named_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    five_and_hundred(&root, "Kinds CA");
    let crl = root.join("etc/pki/CA/cacrl.pem");
    for kind in common::NOT_FILES {
        let _listener = common::make_not_file(&crl, kind);
        let said = format!("it is {kind}, not a regular file");
        let run = common::virtpki_within(dir.path(), &["expiry", "--root", s(&root)], 20);
        let run = run.expect(2);
        assert!(
            run.stderr.contains(s(&crl)) && run.stderr.contains(&said),
            "expiry, {kind}: {}",
            run.stderr
        );
        // A directory is caught with the other paths given (show's FILE: "not a file: it is a
        // directory"), the rest by the read.
        let run = common::virtpki_within(dir.path(), &["show", s(&crl)], 20).expect(2);
        assert!(
            run.stderr.contains(s(&crl)) && run.stderr.contains(&format!("it is {kind}")),
            "show, {kind}: {}",
            run.stderr
        );
        let run = common::virtpki_within(
            dir.path(),
            &[
                "validate",
                "--root",
                s(&root),
                "--hostname",
                "host1.example.com",
                "--json",
            ],
            20,
        );
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let on_crl: Vec<&serde_json::Value> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["file"] == s(&crl))
            .collect();
        // Its access check says what it is (not a mode of 0755 to fix), and so does its load.
        let access = on_crl
            .iter()
            .find(|c| c["id"].as_str().unwrap().ends_with("_mode"))
            .unwrap_or_else(|| panic!("{kind}: no access check of the CRL: {report:#}"));
        assert_eq!(access["status"], "fail", "{kind}: {access:#}");
        assert!(
            access["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{} is {kind}, not a regular file", crl.display())),
            "{kind}: {access:#}"
        );
        assert!(
            access["fix"].as_str().unwrap().starts_with("remove "),
            "{kind}: {access:#}"
        );
        assert!(
            on_crl
                .iter()
                .any(|c| c["message"].as_str().unwrap().contains(&said)),
            "{kind}: the load says what it is: {on_crl:#?}"
        );
        assert_ne!(run.code, 0, "{kind}");
        common::remove_not_file(&crl);
    }
}

/// contrib's alerting rules pass `promtool check rules`, and `promtool test rules` shows the
/// staleness alert firing for a host whose file was not rewritten (a run that fails writes
/// nothing) and not for one rewritten each hour, with the expiry alert computed from the
/// deadline. The metric it uses is in virtpki's output.
#[test]
fn contrib_alert_rules_fire_on_a_stale_file() {
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib");
    let rules = contrib.join("virtpki-expiry.rules.yml");
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(
        text.contains("time() - virtpki_expiry_last_run_timestamp_seconds > 36 * 3600"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    five_and_hundred(&root, "Rules CA");
    let run = virtpki(dir.path(), &["expiry", "--root", s(&root), "--prometheus"]).expect(1);
    assert!(
        run.stdout
            .contains("# TYPE virtpki_expiry_last_run_timestamp_seconds gauge"),
        "{}",
        run.stdout
    );
    require("promtool");
    let check = std::process::Command::new("promtool")
        .args(["check", "rules", s(&rules)])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let test = dir.path().join("rules-test.yml");
    let cert = r#"virtpki_certificate_not_after_seconds{instance="a",file="/etc/pki/libvirt/servercert.pem",index="0",role="server",subject="CN=host"}"#;
    std::fs::write(
        &test,
        format!(
            r#"rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1h
    input_series:
      - series: 'virtpki_expiry_last_run_timestamp_seconds{{instance="a"}}'
        values: '0+0x72'
      - series: 'virtpki_expiry_last_run_timestamp_seconds{{instance="b"}}'
        values: '0+3600x72'
      - series: '{cert}'
        values: '864000+0x72'
    alert_rule_test:
      - eval_time: 30h
        alertname: VirtpkiExpiryMetricsStale
        exp_alerts: []
      - eval_time: 48h
        alertname: VirtpkiExpiryMetricsStale
        exp_alerts:
          - exp_labels:
              severity: warning
              instance: a
            exp_annotations:
              summary: "virtpki expiry has not written its metrics for over 36 hours: see systemctl status virtpki-expiry.service"
      - eval_time: 48h
        alertname: LibvirtTlsCertificateExpiresSoon
        exp_alerts:
          - exp_labels:
              severity: warning
              instance: a
              file: /etc/pki/libvirt/servercert.pem
              index: "0"
              role: server
              subject: CN=host
            exp_annotations:
              summary: "server certificate CN=host in /etc/pki/libvirt/servercert.pem expires within 14 days"
"#,
            rules = rules.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new("promtool")
        .args(["test", "rules", s(&test)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
