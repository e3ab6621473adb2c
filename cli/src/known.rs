//! `virtpki known list|add|remove`: the known-servers store.
//!
//! The file is the one `virtpki probe` and applications use by default
//! ([`virtpki::known::default_path`]: `$XDG_CONFIG_HOME/virtpki/known_servers`, else
//! `~/.config/virtpki/known_servers`), or `--file F`.
//!
//! Exit status: `list` 1 when the file has damaged entries; `add` 1 when it refuses the
//! certificate (a CA's, a client's) or another one is recorded and `--replace` was not given;
//! `remove` 1 when there was no entry for that host and port (so scripts can tell); bad
//! `HOST[:PORT]`, unreadable files 2.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use virtpki::known::Added;
use virtpki::{timefmt, Certificate, KnownServer, KnownServers, Source};

use crate::hostport;
use crate::inspect::cert_json;
use crate::ui::{escape, json_time, print_json, CliError, CmdResult, Status, Ui};

#[derive(clap::Args, Debug)]
pub struct StoreArg {
    /// The known-servers file [default: $XDG_CONFIG_HOME/virtpki/known_servers, else
    /// ~/.config/virtpki/known_servers]. Also spelt --file.
    #[arg(long = "known-file", alias = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum KnownCommand {
    /// List the trusted servers, and any damaged entries with their line numbers.
    List {
        #[command(flatten)]
        store: StoreArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Trust a server's certificate for HOST (any port) or HOST:PORT (IPv6: `[::1]:16514`).
    Add {
        #[command(flatten)]
        store: StoreArg,
        /// HOST, HOST:PORT, an IPv6 address, or `[IPv6]:PORT`.
        target: String,
        /// The server's certificate (PEM or DER); the first certificate of the file is taken.
        /// A CA certificate or a client certificate is refused.
        cert: PathBuf,
        /// Replace the certificate recorded for HOST (or HOST:PORT) when it is another one.
        #[arg(long)]
        replace: bool,
    },
    /// Forget the entry for HOST (the any-port entry) or HOST:PORT; exit 1 if there was none.
    Remove {
        #[command(flatten)]
        store: StoreArg,
        /// HOST, HOST:PORT, an IPv6 address, or `[IPv6]:PORT`.
        target: String,
    },
}

pub fn run(cmd: KnownCommand, ui: Ui) -> CmdResult {
    match cmd {
        KnownCommand::List { store, json } => list(&open(&store)?, json, ui),
        KnownCommand::Add {
            store,
            target,
            cert,
            replace,
        } => add(&store, &target, &cert, replace, ui),
        KnownCommand::Remove { store, target } => {
            let (host, port) = hostport::parse(&target)?;
            let known = open(&store)?;
            if known.remove(&host, port)? {
                println!(
                    "Removed {host} port {} from {}",
                    port_text(port),
                    known.path().display()
                );
                Ok(Status::Ok)
            } else {
                println!(
                    "{}: no entry for {host} port {} in {}{}",
                    ui.warn("Nothing removed"),
                    port_text(port),
                    known.path().display(),
                    if port.is_some() {
                        " (an entry for any port is removed with HOST alone)"
                    } else {
                        " (an entry for one port is removed with HOST:PORT)"
                    }
                );
                Ok(Status::Problems)
            }
        }
    }
}

/// `known add`: refuses what cannot be a server's certificate, and another certificate for
/// the host and port without `--replace` (exit 1); a certificate that does not name the host
/// is pinned with a warning that says what it names (a pin overrides a name mismatch).
fn add(store: &StoreArg, target: &str, path: &Path, replace: bool, ui: Ui) -> CmdResult {
    let (host, port) = hostport::parse(target)?;
    // A host the store would refuse is bad input (exit 2), whatever the certificate.
    virtpki::known::normalize_host(&host)?;
    let cert = crate::inspect::first_certificate(path, "server certificate")?;
    if let Err(e) = virtpki::known::check_server_certificate(&cert) {
        eprintln!("{}: {}", ui.fail("refused"), escape(e.message()));
        return Ok(Status::Problems);
    }
    let known = open(store)?;
    let added = known.add_entry(&host, port, cert.der(), replace)?;
    let port = port_text(port);
    let verb = match &added {
        Added::Kept(old) => {
            eprintln!(
                "{}: {} has another certificate for {host} port {port}: {} ({}), added {}; \
                 give --replace to replace it with {} ({})",
                ui.fail("not replaced"),
                known.path().display(),
                old_subject(old),
                old.cert_sha256(),
                escape(old.added().unwrap_or("at an unknown time")),
                escape(cert.subject()),
                cert.fingerprint_string()
            );
            return Ok(Status::Problems);
        }
        Added::New => "Trusted",
        Added::AlreadyThere => "Already trusted",
        Added::Replaced(_) => "Replaced; trusted",
    };
    println!(
        "{} {host} port {port}: {} ({})",
        ui.pass(verb),
        escape(cert.subject()),
        cert.fingerprint_string()
    );
    if let Added::Replaced(old) = &added {
        println!("  instead of {} ({})", old_subject(old), old.cert_sha256());
    }
    println!("in {}", known.path().display());
    // A pin is what makes a client accept a name mismatch: said, not refused.
    if let Err(e) = virtpki::names::check(&cert, &host, true) {
        println!("{} {}", ui.warn("warning:"), escape(e.message()));
    }
    Ok(Status::Ok)
}

/// The subject of a recorded entry's certificate, escaped, for messages.
fn old_subject(entry: &KnownServer) -> String {
    Certificate::from_der(entry.cert_der().to_vec(), Source::Data)
        .map(|c| escape(c.subject()).into_owned())
        .unwrap_or_else(|_| "an unreadable certificate".to_owned())
}

fn open(store: &StoreArg) -> Result<KnownServers, CliError> {
    let path = match &store.file {
        Some(f) => f.clone(),
        None => virtpki::known::default_path().ok_or_else(|| {
            CliError("no home directory to keep the known servers in: give --file FILE".into())
        })?,
    };
    Ok(KnownServers::open(&path)?)
}

fn port_text(port: Option<u16>) -> String {
    port.map_or_else(|| "any".to_owned(), |p| p.to_string())
}

fn entry_json(e: &KnownServer) -> Value {
    let cert = Certificate::from_der(e.cert_der().to_vec(), Source::Data).ok();
    json!({
        "host": e.host(),
        "port": e.port(),
        "subject": cert.as_ref().map(|c| c.subject().to_owned()),
        "sha256_fingerprint": e.cert_sha256().to_string(),
        "public_key_sha256": e.spki_sha256().to_string(),
        "added": e.added(),
        "not_after": cert.as_ref().map(|c| json_time(c.not_after())),
        "certificate": cert.as_ref().map(cert_json),
    })
}

fn list(known: &KnownServers, as_json: bool, ui: Ui) -> CmdResult {
    let entries = known.entries();
    let problems = known.problems();
    if as_json {
        print_json(&json!({
            "file": known.path().display().to_string(),
            "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
            "problems": problems.iter().map(|p| json!({"line": p.line, "message": p.message})).collect::<Vec<_>>(),
        }));
        return Ok(Status::problems_if(!problems.is_empty()));
    }
    if entries.is_empty() {
        println!("No known servers in {}", known.path().display());
    }
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let cert = Certificate::from_der(e.cert_der().to_vec(), Source::Data).ok();
        let host = e.host().unwrap_or("any host");
        println!("{} port {}", ui.bold(host), port_text(e.port()));
        if let Some(c) = &cert {
            println!("  Subject:     {}", escape(c.subject()));
            let expiry = timefmt::utc(c.not_after());
            if c.not_after() < timefmt::now() {
                println!("  Expires:     {} ({})", expiry, ui.warn("expired"));
            } else {
                println!("  Expires:     {expiry}");
            }
        }
        println!("  Certificate: {}", e.cert_sha256());
        println!("  Public key:  {}", e.spki_sha256());
        // From the file, which anyone who could write it chose: escaped like the subject.
        println!("  Added:       {}", escape(e.added().unwrap_or("unknown")));
    }
    for p in &problems {
        eprintln!(
            "{}: {}: {} (ignored by lookups, kept in the file: fix or delete it by hand)",
            ui.fail("damaged entry"),
            known.path().display(),
            escape(&p.to_string())
        );
    }
    Ok(Status::problems_if(!problems.is_empty()))
}
