//! The known-servers store under several processes: concurrent writers, killed writers, and a
//! process that keeps the store open while another changes it.
//!
//! The writers are this test binary itself, run again and told what to do through environment
//! variables; so the binary has its own `main` (harness = false in Cargo.toml) that is either a
//! writer or the test runner, and prints the closing line `N passed, N failed`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use virtpki::known::Fingerprint;
use virtpki::{KnownServers, TrustStatus};

const STORE_VAR: &str = "VIRTPKI_TEST_KNOWN_STORE";
const WRITER_VAR: &str = "VIRTPKI_TEST_KNOWN_WRITER";
/// How many entries the writer adds; 0 for "until killed".
const COUNT_VAR: &str = "VIRTPKI_TEST_KNOWN_COUNT";
/// The prefix of the lines on which a writer reports what it added.
const ADDED: &str = "ADDED ";
/// `HOST PORT` for a process that only removes that entry, as `virtpki known remove` does.
const REMOVE_VAR: &str = "VIRTPKI_TEST_KNOWN_REMOVE";

fn main() {
    if let (Ok(store), Ok(entry)) = (std::env::var(STORE_VAR), std::env::var(REMOVE_VAR)) {
        let (host, port) = entry.split_once(' ').unwrap();
        let store = KnownServers::open(store).unwrap();
        assert!(store.remove(host, Some(port.parse().unwrap())).unwrap());
        return;
    }
    if let (Ok(store), Ok(writer), Ok(count)) = (
        std::env::var(STORE_VAR),
        std::env::var(WRITER_VAR),
        std::env::var(COUNT_VAR),
    ) {
        writer_process(&store, &writer, &count);
        return;
    }
    let tests: [(&str, fn()); 5] = [
        (
            "a_store_file_reached_through_a_link_is_refused",
            a_store_file_reached_through_a_link_is_refused,
        ),
        (
            "a_misspelt_host_line_does_not_make_verification_accept_any_host",
            a_misspelt_host_line_does_not_make_verification_accept_any_host,
        ),
        (
            "a_running_process_sees_another_process_remove_an_entry",
            a_running_process_sees_another_process_remove_an_entry,
        ),
        (
            "eight_processes_adding_at_once_lose_nothing",
            eight_processes_adding_at_once_lose_nothing,
        ),
        (
            "a_writer_killed_at_any_moment_never_leaves_a_torn_file",
            a_writer_killed_at_any_moment_never_leaves_a_torn_file,
        ),
    ];
    let mut failed = 0;
    for (name, test) in tests {
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        failed += usize::from(!ok);
    }
    println!("{} passed, {failed} failed", tests.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}

/// The body of the writer processes the tests start.
fn writer_process(store: &str, writer: &str, count: &str) {
    let count: usize = count.parse().unwrap();
    let store = KnownServers::open(store).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    for i in (0..).take_while(|&i| count == 0 || i < count) {
        let host = format!("w{writer}-{i}.example");
        // A certificate of its own for each entry, so that mix-ups would show.
        let mut params = rcgen::CertificateParams::new(vec![host.clone()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from(i as u64 + 1));
        let der = params.self_signed(&key).unwrap().der().to_vec();
        store.add(&host, Some(16514), &der).unwrap();
        println!("{ADDED}{host} {}", Fingerprint::of(&der));
    }
}

fn start_writer(store: &Path, writer: &str, count: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(STORE_VAR, store)
        .env(WRITER_VAR, writer)
        .env(COUNT_VAR, count.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Host → certificate fingerprint, for every entry of the store, after checking that the file
/// is whole: no damaged part, and as many entries as `# host` lines and certificate blocks.
fn whole_store(path: &Path) -> BTreeMap<String, Fingerprint> {
    let store = KnownServers::open(path).unwrap();
    assert_eq!(store.problems(), [], "torn or damaged store");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let headers = text.lines().filter(|l| l.starts_with("# host ")).count();
    let blocks = pem::parse_many(&text).unwrap();
    let entries = store.entries();
    assert_eq!(entries.len(), headers);
    assert_eq!(entries.len(), blocks.len());
    let mut hosts = BTreeMap::new();
    for (entry, block) in entries.iter().zip(&blocks) {
        assert_eq!(entry.cert_der(), block.contents());
        assert_eq!(entry.cert_sha256(), Fingerprint::of(block.contents()));
        let host = entry.host().unwrap().to_owned();
        assert_eq!(
            store.lookup(&host, entry.port(), entry.cert_der()).unwrap(),
            TrustStatus::Trusted
        );
        hosts.insert(host, entry.cert_sha256());
    }
    hosts
}

fn eight_processes_adding_at_once_lose_nothing() {
    const WRITERS: usize = 8;
    const EACH: usize = 15;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_servers.pem");
    let children: Vec<Child> = (0..WRITERS)
        .map(|w| start_writer(&path, &w.to_string(), EACH))
        .collect();
    let mut reported = BTreeMap::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "a writer failed: {output:?}");
        for line in String::from_utf8(output.stdout).unwrap().lines() {
            // libtest may print its "test writer_process ..." on the same line first.
            if let Some((_, added)) = line.split_once(ADDED) {
                let (host, fingerprint) = added.split_once(' ').unwrap();
                reported.insert(host.to_owned(), fingerprint.parse().unwrap());
            }
        }
    }
    assert_eq!(
        reported.len(),
        WRITERS * EACH,
        "the writers did not all report"
    );
    assert_eq!(whole_store(&path), reported);
}

/// A small random generator, seeded from the clock: good enough to vary the kill times.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn a_writer_killed_at_any_moment_never_leaves_a_torn_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_servers.pem");
    let mut random = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut before = BTreeMap::new();
    for round in 0..30 {
        let mut writer = start_writer(&path, &format!("r{round}"), 0);
        // The only sleep: to kill the writer at some moment of its work, not to wait for it.
        std::thread::sleep(Duration::from_millis(5 + next_random(&mut random) % 60));
        writer.kill().unwrap(); // SIGKILL
        assert!(!writer.wait().unwrap().success());

        let after = whole_store(&path);
        // A killed write leaves the old file or the new one: nothing written before is lost.
        for (host, fingerprint) in &before {
            assert_eq!(
                after.get(host),
                Some(fingerprint),
                "round {round} lost {host}"
            );
        }
        before = after;
    }
    assert!(!before.is_empty(), "no writer ever got to write");
}

/// A client keeps its store open (as a running application does); another process removes an
/// entry: the client's next lookup no longer trusts it, without being told to reload.
fn a_running_process_sees_another_process_remove_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_servers.pem");
    let mut writer = start_writer(&path, "x", 2);
    assert!(writer.wait().unwrap().success());
    let client = KnownServers::open(&path).unwrap();
    let entries = client.entries();
    assert_eq!(entries.len(), 2);
    for entry in &entries {
        let host = entry.host().unwrap();
        assert_eq!(
            client.lookup(host, entry.port(), entry.cert_der()).unwrap(),
            TrustStatus::Trusted
        );
    }
    let removed = &entries[0];
    let status = Command::new(std::env::current_exe().unwrap())
        .env(STORE_VAR, &path)
        .env(
            REMOVE_VAR,
            format!("{} {}", removed.host().unwrap(), removed.port().unwrap()),
        )
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        client
            .lookup(removed.host().unwrap(), removed.port(), removed.cert_der())
            .unwrap(),
        TrustStatus::Unknown
    );
    let kept = &entries[1];
    assert_eq!(
        client
            .lookup(kept.host().unwrap(), kept.port(), kept.cert_der())
            .unwrap(),
        TrustStatus::Trusted
    );
}

/// The audit's case, through verification: a server certificate from an unknown CA, written
/// by hand into the store under `# Host bank.example` (a typo), must not be accepted for
/// bank.example; the correct line makes it accepted, for that host only.
fn a_misspelt_host_line_does_not_make_verification_accept_any_host() {
    use virtpki::generate::Validity;
    use virtpki::generate::{create_ca, CaParams, CertificateAuthority, KeyType, ServerParams};
    use virtpki::{CertDataType, Context, ContextFlags, ErrorKind, VerifyFlags};

    let ca = |name: &str| {
        create_ca(&CaParams {
            common_name: name.into(),
            organization: None,
            validity: Validity::days_from_now(3),
            key_type: KeyType::EcdsaP256,
        })
        .unwrap()
    };
    let trusted_ca = ca("Trusted CA");
    let rogue_ca = CertificateAuthority::from_issued(&ca("Rogue CA")).unwrap();
    let server = rogue_ca
        .issue_server(&ServerParams {
            common_name: "bank.example".into(),
            dns_names: vec!["other.example".into()],
            ip_addresses: vec![],
            organization: None,
            validity: Validity::days_from_now(3),
            key_type: KeyType::EcdsaP256,
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_servers.pem");
    let verify = |header: &str, host: &str| {
        std::fs::write(&path, format!("{header}\n{}", server.cert_pem)).unwrap();
        let context = Context::new(ContextFlags::default());
        context
            .add_pem(CertDataType::CaCert, &trusted_ca.cert_pem)
            .unwrap();
        context.set_known_servers_file(&path).unwrap();
        context.verify_server(
            host,
            Some(16514),
            std::slice::from_ref(&server.certificate),
            VerifyFlags::default(),
        )
    };
    for header in [
        "# Host bank.example",
        "# HOST bank.example",
        "# hostname bank.example",
        "# host: bank.example",
        "# bank.example",
    ] {
        for host in ["bank.example", "other.example"] {
            let e = verify(header, host).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::UnknownIssuer, "{header} {host}: {e}");
        }
    }
    verify("# host bank.example", "bank.example").unwrap();
    let e = verify("# host bank.example", "other.example").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownIssuer, "{e}");
}

/// A store file that is a symbolic link: the directory the link is in is checked, the one its
/// target is in (here writable by everyone, so anyone could have written the entries) never
/// was, and main trusted what the target said. The store is read through its directory, not
/// through a link at its name, so the link is refused (the writer replaces the name by rename,
/// so it never wrote through a link anyway).
fn a_store_file_reached_through_a_link_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    use virtpki::generate::{create_ca, CaParams, KeyType, Validity};
    use virtpki::ErrorKind;

    let dir = tempfile::tempdir().unwrap();
    let (mine, open) = (dir.path().join("mine"), dir.path().join("open"));
    for d in [&mine, &open] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let target = open.join("known_servers");
    let cert = create_ca(&CaParams {
        common_name: "Planted".into(),
        organization: None,
        validity: Validity::days_from_now(3),
        key_type: KeyType::EcdsaP256,
    })
    .unwrap();
    KnownServers::open(&target)
        .unwrap()
        .add("bank.example", Some(16514), cert.certificate.der())
        .unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Directly, the store is refused for its directory.
    let e = KnownServers::open(&target).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store, "{e}");
    let link = mine.join("known_servers");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    match KnownServers::open(&link) {
        Ok(store) => panic!(
            "read through a link into a directory anyone may write: {:?}",
            store.lookup("bank.example", Some(16514), cert.certificate.der())
        ),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Store, "{e}");
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
    }
}
