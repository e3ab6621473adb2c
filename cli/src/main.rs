//! `virtpki`: issue, install, validate and inspect the certificates of libvirt's TLS transport.
//!
//! Every subcommand is a thin layer over the `virtpki` library. Exit status: 0 = ok,
//! 1 = problems found, 2 = usage or runtime error.

mod docs;
mod expiry;
mod files;
mod given;
mod hostport;
mod inspect;
mod install;
mod install_qemu;
mod issue;
mod known;
mod probe;
mod reload;
mod renew;
mod request;
mod ui;
mod validate;

use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use ui::{ColorChoice, Ui};

/// Certificates for libvirt TLS: issue, install, validate, inspect, trust.
#[derive(Parser, Debug)]
#[command(name = "virtpki", version, about, long_about = None)]
struct Cli {
    /// Colour the output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a certificate authority.
    #[command(subcommand)]
    Ca(issue::CaCommand),
    /// Issue a server or client certificate signed by a CA made with `virtpki ca init`.
    #[command(subcommand)]
    Issue(issue::IssueCommand),
    /// Make a key and a certificate request on the host that will use them (the key stays there).
    #[command(subcommand)]
    Request(request::RequestCommand),
    /// Sign a certificate request with a CA made with `virtpki ca init`.
    #[command(subcommand)]
    Sign(request::SignCommand),
    /// Revoke certificates: write the CA's CRL.
    #[command(subcommand)]
    Crl(issue::CrlCommand),
    /// Put a CA certificate, certificate and key where libvirt looks for them.
    Install(install::InstallArgs),
    /// Check libvirt's TLS files as libvirt and virt-pki-validate do, with a fix for each problem.
    Validate(validate::ValidateArgs),
    /// Describe the certificates in a file.
    Show(inspect::ShowArgs),
    /// Print the DN of each file's first certificate, as virt-pki-query-dn does.
    Dn(inspect::DnArgs),
    /// The known-servers store: servers trusted on first use.
    #[command(subcommand)]
    Known(known::KnownCommand),
    /// Connect to a libvirt TLS server (or, with --vnc, a VNC server with VeNCrypt), show its
    /// certificate and every check, and decide.
    Probe(probe::ProbeArgs),
    /// List every certificate and CRL with its expiry date, soonest first (for people,
    /// --json, or --prometheus for monitoring).
    Expiry(expiry::ExpiryArgs),
    /// Renew a server or client certificate with the same key, subject and names (the CA
    /// needs only the old certificate).
    Renew(renew::RenewArgs),
    /// Tell the running libvirt daemons to reload their TLS files (virt-admin
    /// server-update-tls), where their configuration allows it.
    Reload(reload::ReloadArgs),
}

fn main() -> ExitCode {
    // A reader that goes away (`virtpki validate --verbose | head`) ends the program quietly,
    // as it ends every other command-line tool, instead of a panic in println!.
    // SAFETY: called before any thread exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == docs::ENTRY) {
        return docs::main(&args[2..]);
    }
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return usage_error(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = wants_json(&matches);
    let ui = Ui::new(cli.color);
    // A path that is not there is said first, before a command acts on the others.
    let problems = given::check(&cli.command.given_paths());
    let result = match cli.command {
        Command::Validate(args) => validate::run(args, &problems, ui),
        _ if !problems.is_empty() => {
            if json {
                ui::print_json(&problems_json(&problems));
            }
            Ok(given::print(&problems))
        }
        Command::Ca(cmd) => issue::run_ca(cmd, ui),
        Command::Issue(cmd) => issue::run_issue(cmd, ui),
        Command::Request(cmd) => request::run_request(cmd, ui),
        Command::Sign(cmd) => request::run_sign(cmd, ui),
        Command::Crl(cmd) => issue::run_crl(cmd, ui),
        Command::Install(args) => install::run(args, ui),
        Command::Show(args) => inspect::run_show(args, ui),
        Command::Dn(args) => inspect::run_dn(args),
        Command::Known(cmd) => known::run(cmd, ui),
        Command::Probe(args) => probe::run(args, ui),
        Command::Expiry(args) => expiry::run(args, ui),
        Command::Renew(args) => renew::run(args, ui),
        Command::Reload(args) => reload::run_cmd(args, ui),
    };
    match result {
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(e) => {
            eprintln!("virtpki: {}", e);
            if let Some(fix) = e.fix() {
                eprintln!("  fix: {}", ui::escape(fix));
            }
            if json {
                ui::print_json(&e.to_json());
            }
            ExitCode::from(2)
        }
    }
}

/// Whether the subcommand that runs was given `--json`: looked up by name in clap's matches,
/// so that every subcommand with the option, present or future, gets its errors as JSON.
fn wants_json(matches: &ArgMatches) -> bool {
    let mut leaf = matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    matches!(leaf.try_get_one::<bool>("json"), Ok(Some(true)))
}

/// A command line clap refused: its message and exit status as clap has them (help and
/// version go to standard output with status 0), and, when `--json` was typed, the error as
/// JSON on standard output too.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    let shown = matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !shown && std::env::args_os().skip(1).any(|a| a == "--json") {
        let text = e.render().to_string();
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        let _ = e.print();
        ui::print_json(
            &ui::CliError(message.to_owned())
                .with_kind("usage")
                .to_json(),
        );
        return ExitCode::from(2);
    }
    e.exit()
}

/// Paths given that are not what their options take, as `--json` prints an error: the message
/// has them all, one a line; the file and fix are the first's.
fn problems_json(problems: &[given::Problem]) -> serde_json::Value {
    let message: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let mut e = ui::CliError(message.join("\n")).with_kind("path");
    if let Some(first) = problems.first() {
        e = e.with_file(&first.path).with_fix(first.fix.clone());
    }
    e.to_json()
}
