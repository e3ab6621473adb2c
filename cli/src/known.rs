//! `virtpki known list|add|remove`: the known-servers store.
//!
//! The file is the one `virtpki probe` and applications use by default
//! ([`virtpki::known::default_path`]: `$XDG_CONFIG_HOME/virtpki/known_servers`, else
//! `~/.config/virtpki/known_servers`), or `--file F`.
//!
//! Exit status: `list` 1 when the file has damaged entries; `remove` 1 when there was no
//! entry for that host and port (so scripts can tell); bad `HOST[:PORT]`, unreadable files 2.

use std::path::PathBuf;

use serde_json::{json, Value};
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
        cert: PathBuf,
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
        } => {
            let (host, port) = hostport::parse(&target)?;
            let cert = crate::inspect::first_certificate(&cert)?;
            let known = open(&store)?;
            known.add(&host, port, cert.der())?;
            println!(
                "{} {host} port {}: {} ({})",
                ui.pass("Trusted"),
                port_text(port),
                escape(cert.subject()),
                cert.fingerprint_string()
            );
            println!("in {}", known.path().display());
            Ok(Status::Ok)
        }
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
