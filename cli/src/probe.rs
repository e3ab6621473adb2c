//! `virtpki probe HOST[:PORT]`: connect to a libvirt TLS server, show its certificate and what
//! each check says about it, and let the person decide, as a browser would.
//!
//! The first connection presents no client certificate and accepts any server certificate, so
//! that one that fails can still be shown, and an unknown server learns nothing about this
//! client. The decision is the library's own (`Context::verify_server` with a validator that
//! carries out `--trust`): what passes is trusted; a certificate that failed only on its issuer
//! or host name may be accepted once or always (recorded in the known-servers store); an
//! expired, revoked or badly signed one never. Only then does a second connection run libvirt's
//! handshake with the client certificate and its 0x01 confirmation byte.
//!
//! With `--vnc` the server is a VNC server with TLS (QEMU's `-vnc ...,tls-creds=ID`): each
//! connection first runs the RFB and VeNCrypt handshake (the library's [`virtpki::vnc`]) and
//! then the same TLS and the same decision; the last connection reads the SecurityResult
//! instead of libvirt's byte. `--qemu-dir` takes the CA and client identity by QEMU's names.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use virtpki::cert::Validity;
use virtpki::locations::{self, Environment};
use virtpki::session::{Session, SessionFlags};
use virtpki::verify::VerifyFlags;
use virtpki::vnc::{self, AfterTls, Negotiation};
use virtpki::{
    Acceptance, CertDataType, Certificate, Context, ContextFlags, Role, TrustStatus, ValidateFlags,
    ValidationRequest, ValidatorAnswer,
};

use crate::hostport;
use crate::inspect::cert_json;
use crate::ui::{kind_name, print_json, CliError, CmdResult, Status, Ui};

/// The first VNC port (display :0).
const VNC_PORT: u16 = 5900;

/// How to decide about a certificate that did not pass verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TrustArg {
    /// Ask on the terminal.
    Ask,
    /// Accept it for this probe only.
    Once,
    /// Accept it and record it in the known-servers store.
    Always,
    /// Refuse it.
    Never,
}

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// The server: HOST or HOST:PORT (port 16514 unless given, 5900 with --vnc; an IPv6
    /// address in brackets when a port follows it).
    pub server: String,
    /// The server is a VNC server with TLS (QEMU's -vnc ...,tls-creds=ID): RFB and VeNCrypt
    /// (x509 sub-types) before TLS, then the same checks; port 5900 (display :0) unless given.
    #[arg(long)]
    pub vnc: bool,
    /// With --vnc: the CA and client identity of this QEMU x509 directory (ca-cert.pem,
    /// ca-crl.pem, client-cert.pem, client-key.pem), instead of libvirt's locations.
    #[arg(long, value_name = "DIR", requires = "vnc", conflicts_with = "pkipath")]
    pub qemu_dir: Option<PathBuf>,
    /// Use the CA, client certificate and key of this directory (libvirt's pkipath rules);
    /// else libvirt's user and system locations. Also spelt --pkipath.
    #[arg(long = "path", short = 'p', alias = "pkipath", value_name = "DIR")]
    pub pkipath: Option<PathBuf>,
    /// The known-servers file [default: $XDG_CONFIG_HOME/virtpki/known_servers, else
    /// ~/.config/virtpki/known_servers].
    #[arg(long, value_name = "FILE")]
    pub known_file: Option<PathBuf>,
    /// What to do with a certificate that did not pass verification.
    #[arg(long, value_enum, default_value_t = TrustArg::Ask)]
    pub trust: TrustArg,
    /// Seconds to wait for each connection: connecting, and then its whole handshake (RFB,
    /// TLS, the server's first answer), however slowly the server sends.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// With --trust always, record this certificate even when another one is recorded for the
    /// server (after a reinstall); without it, a changed certificate is refused.
    #[arg(long)]
    pub replace: bool,
    /// Print JSON instead of text (needs --trust once, always or never).
    #[arg(long)]
    pub json: bool,
}

/// One line of the report: a check and what it found.
struct Check {
    name: String,
    passed: Option<bool>,
    detail: String,
}

impl Check {
    fn new(name: impl Into<String>, passed: Option<bool>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            passed,
            detail: detail.into(),
        }
    }
}

pub fn run(args: ProbeArgs, ui: Ui) -> CmdResult {
    if args.json && args.trust == TrustArg::Ask {
        return Err(CliError(
            "--json prints data, it does not ask: give --trust once, always or never".into(),
        )
        .with_kind("usage"));
    }
    let (host, port) = hostport::parse(&args.server)?;
    let port = port.unwrap_or(if args.vnc {
        VNC_PORT
    } else {
        hostport::LIBVIRT_TLS_PORT
    });
    let target = Target {
        host: host.clone(),
        port,
        vnc: args.vnc,
    };
    // PROMPT_UNVERIFIED lets the final connection's validator accept what the person chose.
    let ctx = Arc::new(Context::new(
        ContextFlags::NO_SANITY | ContextFlags::PROMPT_UNVERIFIED,
    ));
    let loaded = load_client_files(&ctx, args.pkipath.as_deref(), args.qemu_dir.as_deref());
    let known_path = match &args.known_file {
        Some(p) => Some(p.clone()),
        None => virtpki::known::default_path(),
    };
    if let Some(path) = &known_path {
        ctx.set_known_servers_file(path)?;
    }
    let timeout = Duration::from_secs(args.timeout.max(1));
    // First look at the server without presenting our certificate: an unknown server learns
    // nothing about this client before it is accepted.
    let (chain, negotiation) = fetch_chain_anonymously(&target, timeout)?;
    let leaf = &chain[0];
    let mut checks = rfb_checks(negotiation.as_ref());
    checks.extend(run_checks(&ctx, &host, port, &chain, &loaded));
    if !args.json {
        let protocol = match &negotiation {
            Some(n) => format!(" (VNC, VeNCrypt {})", n.chosen),
            None => String::new(),
        };
        println!(
            "{} {host}:{port}{protocol}, {} certificate(s)\n",
            ui.bold("Server"),
            chain.len()
        );
        print!("{}", leaf.describe());
        println!("\n{}", ui.bold("Checks"));
        print_checks(&checks, ui);
        println!();
    }
    let decision = decide(&args, &ctx, &host, port, &chain, ui)?;
    let handshake = client_handshake(&ctx, &target, leaf, timeout, decision.accepted);
    let refused = handshake.passed == Some(false);
    checks.push(handshake);
    if args.json {
        print_json(&json!({
            "server": format!("{host}:{port}"),
            "protocol": if args.vnc { "vnc" } else { "libvirt" },
            "vnc": negotiation.as_ref().map(negotiation_json),
            "certificate": cert_json(leaf),
            "chain_length": chain.len(),
            "checks": checks.iter().map(|c| json!({
                "check": c.name,
                "result": match c.passed { Some(true) => "pass", Some(false) => "fail", None => "info" },
                "detail": c.detail,
            })).collect::<Vec<Value>>(),
            "decision": decision.text,
            "accepted": decision.accepted,
            "recorded": decision.recorded,
            "known_servers_file": known_path.map(|p| p.display().to_string()),
        }));
    } else {
        let line = if decision.accepted {
            ui.pass(&decision.text)
        } else {
            ui.fail(&decision.text)
        };
        println!("{line}");
        print_checks(&checks[checks.len() - 1..], ui);
    }
    Ok(Status::problems_if(!decision.accepted || refused))
}

fn print_checks(checks: &[Check], ui: Ui) {
    for c in checks {
        let mark = match c.passed {
            Some(true) => ui.pass("PASS"),
            Some(false) => ui.fail("FAIL"),
            None => ui.warn("INFO"),
        };
        // Details quote the server's certificate and errors: escaped.
        println!(
            "  {:<34} {mark}  {}",
            crate::ui::escape(&c.name),
            crate::ui::escape(&c.detail)
        );
    }
}

/// The server to probe and how it is spoken to.
struct Target {
    host: String,
    port: u16,
    /// RFB and VeNCrypt before TLS.
    vnc: bool,
}

/// The RFB negotiation as lines of the report (VNC only).
fn rfb_checks(negotiation: Option<&Negotiation>) -> Vec<Check> {
    let Some(n) = negotiation else {
        return Vec::new();
    };
    let types: Vec<String> = n
        .security_types
        .iter()
        .map(|&t| vnc::security_type_name(t))
        .collect();
    let subtypes: Vec<String> = n.subtypes.iter().map(|s| s.to_string()).collect();
    vec![
        Check::new(
            "RFB security types",
            None,
            format!(
                "RFB {}.{}: {}",
                n.server_version.0,
                n.server_version.1,
                types.join(", ")
            ),
        ),
        Check::new(
            "VeNCrypt sub-types",
            None,
            format!(
                "VeNCrypt {}.{}: {}; chosen {}",
                n.vencrypt_version.0,
                n.vencrypt_version.1,
                subtypes.join(", "),
                n.chosen
            ),
        ),
    ]
}

fn negotiation_json(n: &Negotiation) -> Value {
    json!({
        "rfb_version": format!("{}.{}", n.server_version.0, n.server_version.1),
        "security_types": n.security_types,
        "vencrypt_version": format!("{}.{}", n.vencrypt_version.0, n.vencrypt_version.1),
        "subtypes": n.subtypes.iter().map(|s| json!({"value": s.0, "name": s.name()})).collect::<Vec<Value>>(),
        "chosen": json!({"value": n.chosen.0, "name": n.chosen.name()}),
    })
}

/// The handshake with our client certificate once the server is accepted: libvirt's, with its
/// confirmation byte, or VNC's, with the SecurityResult; the validator takes exactly the
/// certificate that was decided on.
fn client_handshake(
    ctx: &Arc<Context>,
    target: &Target,
    leaf: &Certificate,
    timeout: Duration,
    accepted: bool,
) -> Check {
    const NAME: &str = "server accepts this client";
    let (host, port) = (target.host.as_str(), target.port);
    if !accepted {
        return Check::new(NAME, None, "not tried: the server was not accepted");
    }
    // A VNC server may not ask for a client certificate (QEMU's verify-peer=off).
    if !target.vnc && ctx.credentials().client.certificate().is_none() {
        return Check::new(
            NAME,
            None,
            "not tried: no client certificate is loaded (libvirt servers refuse clients \
             without one)",
        );
    }
    let decided = leaf.fingerprint();
    ctx.set_validator(Some(Arc::new(move |r: &virtpki::ValidationRequest<'_>| {
        if r.certificate.fingerprint() == decided {
            virtpki::ValidatorAnswer::AcceptOnce
        } else {
            virtpki::ValidatorAnswer::Reject
        }
    })));
    let flags = if target.vnc {
        SessionFlags::default()
    } else {
        SessionFlags::LIBVIRT_CONFIRM
    };
    let result = open(target, timeout)
        .map_err(|e| e.message().to_owned())
        .and_then(|(stream, negotiation)| {
            let mut session = Session::client(ctx, stream, host, Some(port), flags)
                .map_err(|e| e.message().to_owned())?;
            let answer = match negotiation {
                None => (Some(true), "libvirt's 0x01 byte received".to_owned()),
                Some(n) => vnc_result(&mut session, &n, ctx)?,
            };
            let _ = session.close();
            Ok(answer)
        });
    match result {
        Ok((passed, detail)) => Check::new(NAME, passed, detail),
        Err(e) => Check::new(NAME, Some(false), e),
    }
}

/// What the VNC server said first inside TLS, as the check's result and detail: unknown
/// (`None`) when the sub-type has the viewer speak first, as then the server has not answered.
fn vnc_result(
    session: &mut Session<Limited>,
    n: &Negotiation,
    ctx: &Context,
) -> Result<(Option<bool>, String), String> {
    let with = if ctx.credentials().client.certificate().is_some() {
        "with this client's certificate"
    } else {
        "without a client certificate"
    };
    match vnc::after_tls(session, n) {
        Ok(AfterTls::Accepted) => Ok((
            Some(true),
            format!("SecurityResult OK ({}), {with}", n.chosen),
        )),
        Ok(AfterTls::VncChallenge(_)) => Ok((
            Some(true),
            format!(
                "the server sent its VNC password challenge ({}), {with}",
                n.chosen
            ),
        )),
        // Plain, SASL and whatever the library adds: the server has not answered yet, and
        // with TLS 1.3 a server that refuses the certificate closes only after the client's
        // handshake completed, so this is no proof of acceptance.
        Ok(_) => Ok((
            None,
            format!(
                "unknown: TLS completed {with}; {} waits for the viewer's credentials, so the \
                 server's answer to the certificate shows only after them",
                n.chosen
            ),
        )),
        Err(e) => Err(e.message().to_owned()),
    }
}

/// What libvirt's client would load, each file on its own: a missing or broken file is a
/// finding of the probe, not a reason to stop it.
fn load_client_files(
    ctx: &Context,
    pkipath: Option<&std::path::Path>,
    qemu_dir: Option<&std::path::Path>,
) -> Vec<Check> {
    let files = match qemu_dir {
        Some(dir) => locations::qemu_dir(dir, Role::Client),
        None => locations::libvirt(&Environment::current(), Role::Client, pkipath),
    };
    let report = ctx.load_files_tolerant(&files);
    // One line per file in load order; an optional file that does not exist has none.
    let mut checks = Vec::new();
    for item in &files.files {
        let name = format!("{} file", item.ty);
        let is_item =
            |ty: &CertDataType, path: &std::path::Path| *ty == item.ty && path == item.path;
        if report.loaded.iter().any(|(ty, path, _)| is_item(ty, path)) {
            checks.push(Check::new(
                name,
                Some(true),
                item.path.display().to_string(),
            ));
        } else if let Some((_, _, e)) = report.failed.iter().find(|(ty, path, _)| is_item(ty, path))
        {
            let detail = if is_not_found(e) {
                format!("{} is missing ({})", item.path.display(), item.origin)
            } else {
                e.to_string()
            };
            checks.push(Check::new(name, Some(false), detail));
        }
    }
    checks
}

/// Whether a load failed because the file does not exist.
fn is_not_found(e: &virtpki::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
}

/// A connection to `target`, with the RFB and VeNCrypt handshake done for VNC: TLS is next.
/// Everything on it must be done within `timeout` of connecting ([`Limited`]).
fn open(target: &Target, timeout: Duration) -> Result<(Limited, Option<Negotiation>), CliError> {
    let (host, port) = (target.host.as_str(), target.port);
    let stream = connect(host, port, timeout, target.vnc)?;
    let mut stream = Limited {
        stream,
        until: Instant::now() + timeout,
        timeout,
    };
    if !target.vnc {
        return Ok((stream, None));
    }
    match vnc::negotiate(&mut stream) {
        Ok(n) => Ok((stream, Some(n))),
        Err(e) => {
            Err(CliError(format!("{host}:{port}: {}", e.message())).with_kind(kind_name(e.kind())))
        }
    }
}

/// A connection whose reads and writes share one deadline. A per-read timeout alone lets a
/// server that sends one byte just within it hold the probe for hours (a 4 KiB refusal reason,
/// a certificate chain); each read or write here waits only for what is left.
struct Limited {
    stream: TcpStream,
    until: Instant,
    timeout: Duration,
}

impl Limited {
    /// The time left, or a `TimedOut` error once there is none.
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the server did not finish in time ({} s, --timeout)",
                    self.timeout.as_secs()
                ),
            ));
        }
        Ok(left)
    }
}

impl Read for Limited {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf)
    }
}

impl Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// A TCP connection to the first address of `host` that answers. A failure names the target
/// once (with the addresses tried when the host is a name), and a refusal says what makes
/// libvirtd (or, with `vnc`, QEMU) listen for TLS.
fn connect(host: &str, port: u16, timeout: Duration, vnc: bool) -> Result<TcpStream, CliError> {
    let target = format!("{host}:{port}");
    let fail = |what: String| CliError(what).with_kind("connect");
    let addrs: Vec<_> = (virtpki::names::strip_brackets(host), port)
        .to_socket_addrs()
        .map_err(|e| {
            fail(format!(
                "cannot connect to {target}: cannot resolve {host}: {e}"
            ))
        })?
        .collect();
    let mut tried = Vec::new();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout))
                    .and_then(|_| s.set_write_timeout(Some(timeout)))
                    .map_err(|e| fail(format!("{target}: {e}")))?;
                return Ok(s);
            }
            Err(e) => {
                let ip = addr.ip().to_string();
                if !tried.contains(&ip) {
                    tried.push(ip);
                }
                last = Some(e);
            }
        }
    }
    // The addresses only when they add something: not for an address given as the host.
    let via = match tried.as_slice() {
        [one] if one == virtpki::names::strip_brackets(host) => String::new(),
        [] => String::new(),
        many => format!(" ({})", many.join(", ")),
    };
    let Some(e) = last else {
        return Err(fail(format!(
            "cannot connect to {target}: {host} has no address"
        )));
    };
    if e.kind() == std::io::ErrorKind::ConnectionRefused && vnc {
        return Err(fail(format!(
            "cannot connect to {target}{via}: connection refused: nothing listens there"
        ))
        .with_fix(
            "QEMU listens on port 5900 + the display number of -vnc HOST:DISPLAY \
             (libvirt: <graphics type='vnc' port=...> with vnc_tls = 1 in qemu.conf)",
        ));
    }
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        let port_note = if port == hostport::LIBVIRT_TLS_PORT {
            String::new()
        } else {
            format!(
                " (libvirt's TLS port is {}, not {port})",
                hostport::LIBVIRT_TLS_PORT
            )
        };
        return Err(fail(format!(
            "cannot connect to {target}{via}: connection refused: nothing listens there{port_note}"
        ))
        .with_fix(format!(
            "on the server, set listen_tls = 1 in libvirtd.conf (or enable libvirtd-tls.socket; \
             virtproxyd-tls.socket with modular daemons) and open TCP port {} (tls_port) in its \
             firewall",
            hostport::LIBVIRT_TLS_PORT
        )));
    }
    Err(fail(format!("cannot connect to {target}{via}: {e}")))
}

/// The server's certificates, from a connection that presents no client certificate and
/// accepts any server certificate (the verdict is made afterwards).
fn fetch_chain_anonymously(
    target: &Target,
    timeout: Duration,
) -> Result<(Vec<Certificate>, Option<Negotiation>), CliError> {
    let (host, port) = (target.host.as_str(), target.port);
    let anonymous = Arc::new(Context::new(ContextFlags::NO_SANITY));
    let (stream, negotiation) = open(target, timeout)?;
    match Session::client_with_verify_flags(
        &anonymous,
        stream,
        host,
        Some(port),
        SessionFlags::default(),
        VerifyFlags::NO_VERIFY,
    ) {
        Ok(s) if !s.peer_certificates().is_empty() => Ok((s.peer_certificates(), negotiation)),
        Ok(_) => Err(CliError(format!(
            "{host}:{port}: the server sent no certificate"
        ))),
        Err(e) => Err(CliError(format!("{host}:{port}: {e}"))),
    }
}

fn run_checks(
    ctx: &Context,
    host: &str,
    port: u16,
    chain: &[Certificate],
    loaded: &[Check],
) -> Vec<Check> {
    let leaf = &chain[0];
    let mut checks: Vec<Check> = loaded
        .iter()
        .map(|c| Check::new(c.name.clone(), c.passed, c.detail.clone()))
        .collect();
    let now = ctx.now();
    checks.push(match leaf.validity_at(now) {
        Validity::Valid => Check::new(
            "validity",
            Some(true),
            format!("until {}", virtpki::timefmt::utc(leaf.not_after())),
        ),
        Validity::Expired => Check::new(
            "validity",
            Some(false),
            format!("expired {}", virtpki::timefmt::utc(leaf.not_after())),
        ),
        Validity::NotYetValid => Check::new(
            "validity",
            Some(false),
            format!(
                "not valid before {}",
                virtpki::timefmt::utc(leaf.not_before())
            ),
        ),
    });
    let cn_fallback = !ctx.flags().contains(ContextFlags::REQUIRE_SAN);
    checks.push(match virtpki::names::check(leaf, host, cn_fallback) {
        Ok(virtpki::names::NameMatch::SubjectAltName) => Check::new(
            format!("host name {host}"),
            Some(true),
            "a subject alt name",
        ),
        Ok(virtpki::names::NameMatch::CommonName) => Check::new(
            format!("host name {host}"),
            Some(true),
            "the Common Name (no DNS or IP SAN: libvirt's old style)",
        ),
        Err(e) => Check::new(format!("host name {host}"), Some(false), e.message()),
    });
    checks.push(
        match ctx.verify_server(host, Some(port), chain, VerifyFlags::default()) {
            Ok(v) => Check::new(
                "verification (CA, CRL, usage)",
                Some(true),
                match v.failure {
                    Some(f) => format!("{:?}: {f}", v.acceptance),
                    None => format!("{:?}", v.acceptance),
                },
            ),
            Err(e) => Check::new("verification (CA, CRL, usage)", Some(false), e.message()),
        },
    );
    if let Some(store) = ctx.known_servers() {
        let status = store.lookup(host, Some(port), leaf.der());
        checks.push(Check::new(
            "known servers",
            match status {
                Ok(TrustStatus::Trusted | TrustStatus::TrustedAnyHost) => Some(true),
                Ok(TrustStatus::Changed { .. }) | Err(_) => Some(false),
                Ok(TrustStatus::Unknown) => None,
                // A status added to the library later: not trusted until this code knows it.
                Ok(_) => Some(false),
            },
            match status {
                Ok(TrustStatus::Trusted) => "this certificate is recorded for the host".into(),
                Ok(TrustStatus::TrustedAnyHost) => {
                    "this certificate is recorded for any host (it can stand in for an unknown \
                     CA, not for a host name it does not hold)"
                        .into()
                }
                Ok(TrustStatus::Changed { same_key: true }) => {
                    "ANOTHER certificate is recorded for the host (same key: a renewal?)".into()
                }
                Ok(TrustStatus::Changed { same_key: false }) => {
                    "ANOTHER certificate with ANOTHER key is recorded for the host".into()
                }
                Ok(TrustStatus::Unknown) => "not recorded".into(),
                Ok(other) => format!("{other:?}: not known to this virtpki, so not trusted"),
                Err(e) => e.to_string(),
            },
        ));
    }
    checks
}

struct Decision {
    accepted: bool,
    recorded: bool,
    text: String,
}

/// What the validator saw and did while the library decided.
#[derive(Default)]
struct Asked {
    /// The certificate failed only on issuer or host name, so the person had a say.
    asked: bool,
    /// With `--trust always`, refused because another certificate is recorded.
    refused_change: bool,
    /// Asking failed (no terminal).
    error: Option<CliError>,
}

/// The decision, by the library's own procedure (`Context::verify_server`): its validator is
/// asked only about a certificate that may be accepted (one that failed on nothing but its
/// issuer or host name), and "accept always" records it in the known-servers store.
fn decide(
    args: &ProbeArgs,
    ctx: &Context,
    host: &str,
    port: u16,
    chain: &[Certificate],
    ui: Ui,
) -> Result<Decision, CliError> {
    let asked = Arc::new(Mutex::new(Asked::default()));
    let seen = Arc::clone(&asked);
    let (trust, json, replace) = (args.trust, args.json, args.replace);
    let host_name = host.to_owned();
    ctx.set_validator(Some(Arc::new(move |r: &ValidationRequest<'_>| {
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        if r.flags.contains(ValidateFlags::CHANGED) && !json {
            println!(
                "{}",
                ui.fail(&format!(
                    "WARNING: the known-servers store has another certificate for {host_name}{}. \
                     Someone may be impersonating the server.",
                    if r.flags.contains(ValidateFlags::SAME_KEY) {
                        " (with the same key)"
                    } else {
                        ", with another key"
                    }
                ))
            );
        }
        if !r.flags.contains(ValidateFlags::UNVERIFIED) {
            // Verified against the CA: nothing to decide.
            return ValidatorAnswer::AcceptOnce;
        }
        seen.asked = true;
        if r.flags.contains(ValidateFlags::CHANGED) && trust == TrustArg::Always && !replace {
            seen.refused_change = true;
            return ValidatorAnswer::Reject;
        }
        let answer = match trust {
            TrustArg::Ask => match ask(r.certificate) {
                Ok(answer) => answer,
                Err(e) => {
                    seen.error = Some(e);
                    return ValidatorAnswer::Reject;
                }
            },
            other => other,
        };
        match answer {
            TrustArg::Once => ValidatorAnswer::AcceptOnce,
            TrustArg::Always => ValidatorAnswer::AcceptAlways,
            TrustArg::Never | TrustArg::Ask => ValidatorAnswer::Reject,
        }
    })));
    let verdict = ctx.verify_server(host, Some(port), chain, VerifyFlags::default());
    ctx.set_validator(None);
    let asked = std::mem::take(&mut *asked.lock().unwrap_or_else(PoisonError::into_inner));
    if let Some(e) = asked.error {
        return Err(e);
    }
    let accepted = |recorded: bool, text: String| Decision {
        accepted: true,
        recorded,
        text,
    };
    let refused = |text: String| Decision {
        accepted: false,
        recorded: false,
        text,
    };
    Ok(match verdict {
        Ok(v) => {
            let failure = v.failure.unwrap_or_default();
            match v.acceptance {
                Acceptance::Pinned => accepted(
                    false,
                    "Trusted: this certificate is pinned for the host".into(),
                ),
                Acceptance::ValidatorAlways => accepted(
                    true,
                    format!(
                        "Accepted always: recorded for {host}:{port} in {}: {failure}",
                        ctx_store_name(args)
                    ),
                ),
                Acceptance::ValidatorOnce if !failure.is_empty() => {
                    accepted(false, format!("Accepted once (not recorded): {failure}"))
                }
                Acceptance::Verified | Acceptance::ValidatorOnce => {
                    accepted(false, "Trusted: verified against the CA".into())
                }
                // NO_VERIFY (not asked for here), or a way of accepting added to the library
                // later: said as it is, never as a CA check this code cannot vouch for.
                other => accepted(false, format!("Accepted ({other:?}): {failure}")),
            }
        }
        Err(_) if asked.refused_change => refused(format!(
            "Refused: another certificate is recorded for {host}:{port}; give --replace with \
             --trust always to record this one instead"
        )),
        Err(e) if asked.asked => refused(format!("Refused: {}", e.message())),
        Err(e) => refused(format!(
            "Refused: {} (this cannot be overridden)",
            e.message()
        )),
    })
}

/// The known-servers file, as the person named it (or the default).
fn ctx_store_name(args: &ProbeArgs) -> String {
    args.known_file
        .clone()
        .or_else(virtpki::known::default_path)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Asks on the terminal; anything but o/once or a/always refuses.
fn ask(leaf: &Certificate) -> Result<TrustArg, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError(
            "not a terminal, so cannot ask: give --trust once, always or never".into(),
        ));
    }
    print!(
        "Trust {} (fingerprint {})? [o]nce, [a]lways, [N]o: ",
        crate::ui::escape(leaf.subject()),
        leaf.fingerprint_string()
    );
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError(format!("reading the answer: {e}")))?;
    Ok(match line.trim().to_ascii_lowercase().as_str() {
        "o" | "once" => TrustArg::Once,
        "a" | "always" => TrustArg::Always,
        _ => TrustArg::Never,
    })
}
