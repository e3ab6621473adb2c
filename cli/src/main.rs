//! `virtpki`: issue, install, validate and inspect the certificates of libvirt's TLS transport.
//!
//! Every subcommand is a thin layer over the `virtpki` library. Exit status: 0 = ok,
//! 1 = problems found, 2 = usage or runtime error.

mod files;
mod given;
mod hostport;
mod inspect;
mod install;
mod issue;
mod known;
mod probe;
mod ui;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Connect to a libvirt TLS server, show its certificate and every check, and decide.
    Probe(probe::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui::new(cli.color);
    // A path that is not there is said first, before a command acts on the others.
    let problems = given::check(&cli.command.given_paths());
    let result = match cli.command {
        Command::Validate(args) => validate::run(args, &problems, ui),
        _ if !problems.is_empty() => Ok(given::print(&problems)),
        Command::Ca(cmd) => issue::run_ca(cmd, ui),
        Command::Issue(cmd) => issue::run_issue(cmd, ui),
        Command::Crl(cmd) => issue::run_crl(cmd, ui),
        Command::Install(args) => install::run(args, ui),
        Command::Show(args) => inspect::run_show(args, ui),
        Command::Dn(args) => inspect::run_dn(args),
        Command::Known(cmd) => known::run(cmd, ui),
        Command::Probe(args) => probe::run(args, ui),
    };
    match result {
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(e) => {
            eprintln!("virtpki: {}", e);
            ExitCode::from(2)
        }
    }
}
