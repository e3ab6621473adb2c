//! The quickstart: a libvirt-style TLS setup from nothing to refused connections, in a few
//! seconds, in a temporary directory.
//!
//! Run with `cargo run --release --example quickstart`. It makes a CA and three certificates,
//! loads them with libvirt's pkipath rules, runs a daemon on 127.0.0.1 that checks client DNs
//! against a `tls_allowed_dn_list` and sends libvirt's 0x01 confirmation byte, and connects
//! four times: trust on first use, trusted on reconnect, a client the daemon refuses and a
//! host name the client refuses. Then the second half of a certificate's life: the server
//! certificate, issued for 25 days, is a warning of the sanity check; the CA renews it from the
//! old certificate alone (same key), the running daemon reloads its files, and the client that
//! trusted the old certificate is told "changed, same key" and accepts. Nothing outside the
//! temporary directory is read or changed.
//!
//! Every "accepted" and "refused" line is printed from what the library returned, and the
//! program exits non-zero when anything turns out otherwise than the story says
//! (`tests/suite/quickstart.rs` runs it).

use std::error::Error;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use virtpki::locations::{self, Environment};
use virtpki::session::{Session, SessionFlags};
use virtpki::{
    Certificate, Context, ContextFlags, ErrorKind, Role, TrustStatus, ValidateFlags,
    ValidationRequest, ValidatorAnswer,
};

/// The daemon's host name: the server certificate's CN and DNS SAN (127.0.0.1 is its IP SAN).
const HOST: &str = "localhost";
/// Who may connect: libvirt's DN order (as encoded, not RFC 4514's), GLib's `*` matching.
const ALLOWED_DN: &str = "C=GB,O=Quickstart,CN=client*";
/// How long any socket operation or wait may take before the story counts as failed.
const TIMEOUT: Duration = Duration::from_secs(5);

type Outcome<T = ()> = Result<T, Box<dyn Error>>;

fn main() -> std::process::ExitCode {
    let started = std::time::Instant::now();
    match run(&mut std::io::stdout()) {
        Ok(()) => {
            println!(
                "\nquickstart: every step as expected ({:.2?})",
                started.elapsed()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nquickstart FAILED: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The whole story, written to `out`; an error as soon as one step differs from it.
pub fn run(out: &mut dyn Write) -> Outcome {
    let tmp = tempfile::tempdir()?;
    let dirs = pki::make(tmp.path())?;
    let known_file = tmp.path().join("known_servers");

    writeln!(
        out,
        "== 1. A CA, a server and a client certificate, loaded with libvirt's rules"
    )?;
    writeln!(
        out,
        "written to {} (libvirt's pkipath layout):",
        dirs.pki.display()
    )?;
    for name in pki::FILES {
        writeln!(out, "  {name:<15} {}", mode_of(&dirs.pki.join(name))?)?;
    }
    writeln!(
        out,
        "the CA signs from {} (cakey.pem {}), which daemons and clients never read",
        dirs.ca.display(),
        mode_of(&dirs.ca.join("cakey.pem"))?
    )?;
    let daemon_ctx = Arc::new(Context::new(ContextFlags::default()));
    load(&daemon_ctx, Role::Server, &dirs.pki, out)?;
    daemon_ctx.set_allowed_dn_list(Some(&[ALLOWED_DN]))?;
    let client_ctx = client_context(&dirs.pki, &known_file, out)?;
    let client_dn = identity_dn(&client_ctx)?;
    writeln!(
        out,
        "the client's DN, as tls_allowed_dn_list sees it: {client_dn}"
    )?;

    writeln!(
        out,
        "\n== 2. The daemon: mutual TLS on 127.0.0.1, libvirt's 0x01 confirmation"
    )?;
    let daemon = Daemon::start(Arc::clone(&daemon_ctx))?;
    writeln!(out, "listening on 127.0.0.1:{}", daemon.port)?;
    writeln!(out, "tls_allowed_dn_list = [\"{ALLOWED_DN}\"]")?;

    writeln!(
        out,
        "\n== 3. First connection: the validator is asked, answers \"accept always\""
    )?;
    let first = connect(&client_ctx.ctx, HOST, daemon.port)?;
    writeln!(
        out,
        "client: accepted ({}); the daemon said {:?}",
        first.protocol, first.greeting
    )?;
    let asked = client_ctx.asked()?;
    print_asked(&asked, out)?;
    expect(
        asked.len() == 1 && !asked[0].trusted,
        "the validator is asked once, about a certificate not yet trusted",
    )?;
    let dn = daemon.next()??;
    writeln!(out, "daemon: accepted {dn}")?;
    expect(dn == client_dn, "the daemon sees the client's DN")?;
    let status = store_status(&client_ctx.ctx, daemon.port, &first.server_cert)?;
    writeln!(
        out,
        "known-servers store now says {HOST}:{}: {status:?}",
        daemon.port
    )?;
    expect(
        status == TrustStatus::Trusted,
        "the certificate is recorded",
    )?;
    writeln!(out, "{}:", known_file.display())?;
    print_store_file(&known_file, out)?;

    writeln!(
        out,
        "\n== 4. Reconnect (a new context on the same known-servers file)"
    )?;
    let recorded = std::fs::read(&known_file)?;
    let again = client_context(&dirs.pki, &known_file, &mut std::io::sink())?;
    let second = connect(&again.ctx, HOST, daemon.port)?;
    writeln!(
        out,
        "client: accepted ({}); the daemon said {:?}",
        second.protocol, second.greeting
    )?;
    let asked = again.asked()?;
    print_asked(&asked, out)?;
    expect(
        asked.len() == 1 && asked[0].trusted,
        "the validator is told the certificate is trusted",
    )?;
    writeln!(out, "daemon: accepted {}", daemon.next()??)?;
    expect(
        second.server_cert.fingerprint() == first.server_cert.fingerprint()
            && std::fs::read(&known_file)? == recorded,
        "the same certificate, and the known-servers file left as it was",
    )?;
    writeln!(
        out,
        "same certificate as before; {} unchanged",
        known_file.display()
    )?;

    writeln!(out, "\n== 5. A client whose DN is not on the list")?;
    let intruder = client_context(&dirs.intruder, &tmp.path().join("intruder_known"), out)?;
    let intruder_dn = identity_dn(&intruder)?;
    writeln!(out, "its DN: {intruder_dn}")?;
    let err = refused(connect(&intruder.ctx, HOST, daemon.port), "the intruder")?;
    writeln!(out, "client: refused ({}): {err}", err.kind().c_name())?;
    expect(
        err.message().contains("did not confirm"),
        "the client learns that the daemon withheld the 0x01 byte",
    )?;
    let err = refused(daemon.next()?, "the daemon, for the intruder")?;
    writeln!(out, "daemon: refused ({}): {err}", err.kind().c_name())?;
    expect(
        err.kind() == ErrorKind::DnNotAllowed,
        "the daemon refuses on tls_allowed_dn_list",
    )?;

    writeln!(
        out,
        "\n== 6. A client asking for another host than the certificate names"
    )?;
    let wrong = "wrong.example.com";
    let err = refused(connect(&client_ctx.ctx, wrong, daemon.port), "the client")?;
    writeln!(out, "client: refused ({}): {err}", err.kind().c_name())?;
    expect(
        err.kind() == ErrorKind::HostnameMismatch && err.message().contains(wrong),
        "the client refuses on the host name, naming it",
    )?;
    expect(
        client_ctx.asked()?.is_empty(),
        "the validator is not asked about a certificate that failed",
    )?;
    let err = refused(daemon.next()?, "the daemon, for the wrong host name")?;
    writeln!(out, "daemon: refused ({}): {err}", err.kind().c_name())?;

    writeln!(
        out,
        "\n== 7. The server certificate nears its end: the sanity check warns"
    )?;
    let findings = daemon_ctx.check(Role::Server);
    let warning = findings.to_text();
    for line in warning.lines() {
        writeln!(out, "daemon's check: {line}")?;
    }
    expect(
        findings.warnings().count() == 1
            && findings.is_ok()
            && warning.contains("expires")
            && warning.contains("days"),
        "a warning saying when the server certificate expires and how many days are left",
    )?;

    writeln!(
        out,
        "\n== 8. Renewed with the same key; the running daemon reloads it"
    )?;
    let server_cert_path = dirs.pki.join("servercert.pem");
    let old = pki::renew_server(&dirs.ca, &server_cert_path)?;
    let new = read_certificate(&server_cert_path)?;
    writeln!(
        out,
        "the CA re-issued {} from the old certificate alone (never the key): valid until {}",
        server_cert_path.display(),
        virtpki::timefmt::utc(new.not_after())
    )?;
    daemon_ctx.reload()?;
    writeln!(
        out,
        "daemon: reloaded its files without a restart, still on 127.0.0.1:{}",
        daemon.port
    )?;
    expect(
        daemon_ctx.check(Role::Server).findings.is_empty(),
        "no findings once the renewed certificate is loaded",
    )?;
    writeln!(out, "daemon's check: no findings")?;

    writeln!(
        out,
        "\n== 9. The client that trusted the old certificate always is told: changed, same key"
    )?;
    let renewed = connect(&client_ctx.ctx, HOST, daemon.port)?;
    let asked = client_ctx.asked()?;
    print_asked(&asked, out)?;
    expect(
        asked.len() == 1
            && !asked[0].trusted
            && asked[0].flags == ValidateFlags::CHANGED | ValidateFlags::SAME_KEY,
        "the validator is asked once, with CHANGED|SAME_KEY",
    )?;
    expect(
        renewed.server_cert.fingerprint() == new.fingerprint()
            && renewed.server_cert.fingerprint() != old.fingerprint()
            && renewed.server_cert.spki_fingerprint() == old.spki_fingerprint(),
        "the daemon presents the renewed certificate, with the old one's public key",
    )?;
    writeln!(
        out,
        "client: accepted ({}); the daemon said {:?}",
        renewed.protocol, renewed.greeting
    )?;
    writeln!(out, "daemon: accepted {}", daemon.next()??)?;
    let status = store_status(&client_ctx.ctx, daemon.port, &renewed.server_cert)?;
    writeln!(
        out,
        "known-servers store now says {HOST}:{}: {status:?}",
        daemon.port
    )?;
    expect(
        status == TrustStatus::Trusted,
        "the renewed certificate replaces the old one in the store",
    )?;

    daemon.stop()?;
    let path = tmp.path().to_owned();
    tmp.close()?;
    writeln!(out, "\ndaemon stopped; {} removed", path.display())?;
    Ok(())
}

/// An error saying which part of the story did not hold, unless `ok`.
fn expect(ok: bool, story: &str) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(format!("expected: {story}").into())
    }
}

/// The error of an attempt the story says must fail.
fn refused<T: std::fmt::Debug>(result: virtpki::Result<T>, who: &str) -> Outcome<virtpki::Error> {
    match result {
        Err(e) => Ok(e),
        Ok(v) => Err(format!("expected {who} to be refused, but it was accepted: {v:?}").into()),
    }
}

/// Loads `role`'s credentials from `pkipath` as libvirt does, printing where each came from
/// and the sanity check's findings (load_files fails on errors, as libvirt refuses to start).
fn load(ctx: &Context, role: Role, pkipath: &Path, out: &mut dyn Write) -> Outcome {
    // libvirt falls back to /etc/pki for a missing CRL; a private, empty "system" root keeps
    // the quickstart off the real one. An application would call ctx.load_default(role, dir).
    let env = Environment {
        root: pkipath.join("no-system-files"),
        home: None,
        uid: 0,
    };
    let report = ctx.load_files(&locations::libvirt(&env, role, Some(pkipath)))?;
    writeln!(out, "{} loaded:", role.name())?;
    for line in report.to_string().lines() {
        writeln!(out, "  {line}")?;
    }
    let findings = ctx.check(role).to_text();
    if findings.is_empty() {
        writeln!(out, "  sanity check: no findings")?;
    } else {
        for line in findings.lines() {
            writeln!(out, "  sanity check: {line}")?;
        }
    }
    Ok(())
}

/// What the validator was asked, kept to be printed after the connection.
#[derive(Debug)]
struct Asked {
    hostname: String,
    port: Option<u16>,
    trusted: bool,
    flags: ValidateFlags,
    certificate: String,
    answer: ValidatorAnswer,
}

/// A client context and the log of its validator's questions.
struct Client {
    ctx: Arc<Context>,
    log: Arc<Mutex<Vec<Asked>>>,
}

impl Client {
    /// What the validator was asked since the last call.
    fn asked(&self) -> Outcome<Vec<Asked>> {
        let mut log = self.log.lock().map_err(|_| "the validator panicked")?;
        Ok(std::mem::take(&mut *log))
    }
}

/// A client loaded from `pkipath`, with a known-servers file and a validator that trusts on
/// first use and accepts a renewed certificate of the same key, never another key: a real one
/// would show the certificate to its user and ask.
fn client_context(pkipath: &Path, known_servers: &Path, out: &mut dyn Write) -> Outcome<Client> {
    let ctx = Arc::new(Context::new(ContextFlags::default()));
    load(&ctx, Role::Client, pkipath, out)?;
    ctx.set_known_servers_file(known_servers)?;
    let log = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&log);
    ctx.set_validator(Some(Arc::new(move |r: &ValidationRequest<'_>| {
        let answer = if r.trusted {
            ValidatorAnswer::AcceptOnce // known already: no need to record it again
        } else if r.flags.contains(ValidateFlags::CHANGED)
            && !r.flags.contains(ValidateFlags::SAME_KEY)
        {
            // Another key where a known one was: what an attacker in the middle looks like.
            ValidatorAnswer::Reject
        } else {
            // New, or renewed with the key the user accepted before.
            ValidatorAnswer::AcceptAlways
        };
        if let Ok(mut log) = record.lock() {
            log.push(Asked {
                hostname: r.hostname.to_owned(),
                port: r.port,
                trusted: r.trusted,
                flags: r.flags,
                certificate: r.certificate.describe(),
                answer,
            });
        }
        answer
    })));
    Ok(Client { ctx, log })
}

fn print_asked(asked: &[Asked], out: &mut dyn Write) -> Outcome {
    for a in asked {
        let port = a.port.map_or("any".to_owned(), |p| p.to_string());
        writeln!(
            out,
            "validator asked about {} port {port}: trusted: {}, flags: {}; answered {:?}",
            a.hostname,
            a.trusted,
            flag_names(a.flags),
            a.answer
        )?;
        if !a.trusted {
            for line in a.certificate.lines() {
                writeln!(out, "  | {line}")?;
            }
        }
    }
    Ok(())
}

/// The validator's flags by name.
fn flag_names(flags: ValidateFlags) -> String {
    let names: Vec<&str> = [
        (ValidateFlags::CHANGED, "CHANGED"),
        (ValidateFlags::SAME_KEY, "SAME_KEY"),
        (ValidateFlags::UNVERIFIED, "UNVERIFIED"),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| name)
    .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join("|")
    }
}

/// The DN of the context's own client certificate.
fn identity_dn(client: &Client) -> Outcome<String> {
    let creds = client.ctx.credentials();
    let cert = creds
        .client
        .certificate()
        .ok_or("no client certificate loaded")?;
    Ok(cert.subject().to_owned())
}

/// What the client's known-servers store says now about the certificate the daemon presented.
fn store_status(ctx: &Context, port: u16, cert: &Certificate) -> Outcome<TrustStatus> {
    let store = ctx.known_servers().ok_or("no known-servers store")?;
    Ok(store.lookup(HOST, Some(port), cert.der())?)
}

/// The store file, with the base64 of its certificates left out.
fn print_store_file(path: &Path, out: &mut dyn Write) -> Outcome {
    let text = std::fs::read_to_string(path)?;
    let mut in_pem = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            in_pem = true;
            writeln!(out, "  {line}\n  (base64 left out)")?;
        } else if line.starts_with("-----END") {
            in_pem = false;
            writeln!(out, "  {line}")?;
        } else if !in_pem {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

/// The one certificate of a PEM file.
fn read_certificate(path: &Path) -> Outcome<Certificate> {
    let mut certs = virtpki::pem::read_certificates(path)?;
    match (certs.pop(), certs.is_empty()) {
        (Some(cert), true) => Ok(cert),
        _ => Err(format!("{}: expected one certificate", path.display()).into()),
    }
}

fn mode_of(path: &Path) -> Outcome<String> {
    use std::os::unix::fs::PermissionsExt;
    Ok(format!(
        "{:04o}",
        std::fs::metadata(path)?.permissions().mode() & 0o7777
    ))
}

/// What an accepted connection brought.
#[derive(Debug)]
struct Connected {
    protocol: String,
    greeting: String,
    server_cert: Certificate,
}

/// Connects to the daemon as `hostname`, waits for libvirt's confirmation, reads the
/// greeting. The port keys the known-servers entry, as a libvirt URI's port would.
fn connect(ctx: &Arc<Context>, hostname: &str, port: u16) -> virtpki::Result<Connected> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let io = |e: std::io::Error| {
        virtpki::Error::new(ErrorKind::Io, format!("cannot connect to {addr}: {e}"))
    };
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let mut session = Session::client(
        ctx,
        stream,
        hostname,
        Some(port),
        SessionFlags::LIBVIRT_CONFIRM,
    )?;
    let mut greeting = Vec::new();
    let mut buf = [0u8; 256];
    while greeting.len() < 4096 {
        match session.read(&mut buf)? {
            0 => break,
            n => greeting.extend_from_slice(&buf[..n]),
        }
    }
    session.close()?;
    let server_cert = session
        .peer_certificates()
        .into_iter()
        .next()
        .ok_or_else(|| {
            virtpki::Error::new(
                ErrorKind::Internal,
                "no server certificate after the handshake",
            )
        })?;
    Ok(Connected {
        protocol: session.protocol_version().unwrap_or_default(),
        greeting: String::from_utf8_lossy(&greeting).trim_end().to_owned(),
        server_cert,
    })
}

/// A daemon on 127.0.0.1: one thread that accepts connections one after another, greets
/// each accepted client and reports every session's outcome on a channel.
struct Daemon {
    port: u16,
    outcomes: Receiver<virtpki::Result<String>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Daemon {
    fn start(ctx: Arc<Context>) -> Outcome<Daemon> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let (report, outcomes) = mpsc::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let thread = std::thread::spawn(move || serve(&listener, &ctx, &stop, &report));
        Ok(Daemon {
            port,
            outcomes,
            stopping,
            thread: Some(thread),
        })
    }

    /// The outcome of the next session, as the daemon saw it.
    fn next(&self) -> Outcome<virtpki::Result<String>> {
        Ok(self.outcomes.recv_timeout(TIMEOUT * 2)?)
    }

    /// Ends the thread, reporting whether it panicked.
    fn stop(mut self) -> Outcome {
        self.shutdown()
            .ok_or_else(|| "the daemon thread panicked".into())
    }

    /// Wakes the blocking accept with a connection of our own, then joins the thread.
    fn shutdown(&mut self) -> Option<()> {
        let thread = self.thread.take()?;
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], self.port)), TIMEOUT);
        thread.join().ok()
    }
}

impl Drop for Daemon {
    /// Also on an early return: the thread never outlives the story.
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn serve(
    listener: &TcpListener,
    ctx: &Arc<Context>,
    stopping: &AtomicBool,
    report: &Sender<virtpki::Result<String>>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let outcome = stream
            .map_err(|e| virtpki::Error::new(ErrorKind::Io, format!("accept failed: {e}")))
            .and_then(|stream| serve_one(ctx, stream));
        if report.send(outcome).is_err() {
            return; // nobody listens any more
        }
    }
}

/// One session: the handshake (which checks the client's chain and DN), the 0x01 byte, a
/// greeting naming the client, close_notify.
fn serve_one(ctx: &Arc<Context>, stream: TcpStream) -> virtpki::Result<String> {
    let io = |e: std::io::Error| virtpki::Error::new(ErrorKind::Io, e.to_string());
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let mut session = Session::server(ctx, stream, SessionFlags::LIBVIRT_CONFIRM)?;
    let dn = session.peer_dn().unwrap_or_default();
    session.write_all(format!("welcome, {dn}\n").as_bytes())?;
    session.close()?;
    Ok(dn)
}

/// Issuing the certificates with `virtpki::generate`, as `virtpki ca init` and `virtpki issue`
/// do: what libvirt's docs make with certtool templates.
mod pki {
    use super::*;
    use virtpki::generate::{
        self, CaParams, CertificateAuthority, ClientParams, KeyType, ServerParams, SubjectName,
        Validity,
    };

    /// The server certificate's first life, in days: short, so that the sanity check's
    /// default horizon (30 days) warns about it, as it would a year after a one-year issue.
    pub const SERVER_DAYS: u32 = 25;
    /// Its second life, after the renewal (within the CA's year).
    pub const RENEWED_DAYS: u32 = 300;

    /// What libvirt reads from a pkipath directory, in the order it reads them.
    pub const FILES: [&str; 5] = [
        "cacert.pem",
        "servercert.pem",
        "serverkey.pem",
        "clientcert.pem",
        "clientkey.pem",
    ];

    /// The two pkipath directories made.
    pub struct Dirs {
        /// The CA's certificate and signing key, kept apart from what daemons and clients read.
        pub ca: PathBuf,
        /// The daemon's and the allowed client's files.
        pub pki: PathBuf,
        /// A client of the same CA whose DN is not on the allowed list.
        pub intruder: PathBuf,
    }

    /// A CA (in `ca/`, its key beside it); a server certificate for [`HOST`] and 127.0.0.1;
    /// clients `C=GB,O=Quickstart,CN=client1` and `C=GB,O=Elsewhere,CN=intruder`; keys 0600.
    pub fn make(dir: &Path) -> Outcome<Dirs> {
        // ECDSA keys: RSA key generation takes seconds in a debug build.
        let key_type = KeyType::EcdsaP256;
        let validity = Validity::days_from_now(365);
        let ca_dir = dir.join("ca");
        let ca = generate::create_ca(&CaParams {
            common_name: "Quickstart CA".into(),
            organization: Some("Quickstart".into()),
            validity,
            key_type,
        })?;
        std::fs::create_dir(&ca_dir)?;
        write(
            &CertificateAuthority::cert_path(&ca_dir),
            &ca.cert_pem,
            0o644,
        )?;
        write(&CertificateAuthority::key_path(&ca_dir), &ca.key_pem, 0o600)?;
        let ca = CertificateAuthority::load_dir(&ca_dir)?; // as `virtpki issue` would

        let server = ca.issue_server(&ServerParams {
            common_name: HOST.into(),
            dns_names: Vec::new(),
            ip_addresses: vec![[127, 0, 0, 1].into()],
            organization: Some("Quickstart".into()),
            validity: Validity::days_from_now(SERVER_DAYS),
            key_type,
        })?;
        let client = |dn: &str| -> Outcome<generate::Issued> {
            Ok(ca.issue_client(&ClientParams {
                dn: SubjectName::parse(dn)?,
                validity,
                key_type,
            })?)
        };
        let dirs = Dirs {
            ca: ca_dir,
            pki: dir.join("pki"),
            intruder: dir.join("intruder"),
        };
        for (d, prefix, issued) in [
            (&dirs.pki, "server", &server),
            (
                &dirs.pki,
                "client",
                &client("C=GB,O=Quickstart,CN=client1")?,
            ),
            (
                &dirs.intruder,
                "client",
                &client("C=GB,O=Elsewhere,CN=intruder")?,
            ),
        ] {
            if !d.exists() {
                std::fs::create_dir(d)?;
                write(&d.join("cacert.pem"), &ca.certificate().to_pem(), 0o644)?;
            }
            write(
                &d.join(format!("{prefix}cert.pem")),
                &issued.cert_pem,
                0o644,
            )?;
            write(&d.join(format!("{prefix}key.pem")), &issued.key_pem, 0o600)?;
        }
        Ok(dirs)
    }

    /// Re-issues the server certificate at `cert_path` with the CA of `ca_dir`, for the same
    /// key, and puts it in place at once (a temporary file renamed over it: the daemon never
    /// reads half a file). Returns the old certificate. `virtpki renew` does this.
    pub fn renew_server(ca_dir: &Path, cert_path: &Path) -> Outcome<Certificate> {
        let ca = CertificateAuthority::load_dir(ca_dir)?;
        let old = read_certificate(cert_path)?;
        let renewed = ca.renew(&old, &Validity::days_from_now(RENEWED_DAYS))?;
        let staged = cert_path.with_extension("pem.new");
        write(&staged, &renewed.cert_pem, 0o644)?;
        std::fs::rename(&staged, cert_path)?;
        Ok(old)
    }

    /// Creates `path` with `mode` from the start: a key is never readable by others, even
    /// for a moment.
    fn write(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        file.write_all(text.as_bytes())
    }
}
