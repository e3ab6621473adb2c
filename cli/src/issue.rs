//! `virtpki ca init`, `virtpki issue server|client`, `virtpki crl revoke`.

use crate::ui::{CliError, CmdResult, Ui};

#[derive(clap::Subcommand, Debug)]
pub enum CaCommand {
    Init,
}
#[derive(clap::Subcommand, Debug)]
pub enum IssueCommand {
    Server,
    Client,
}
#[derive(clap::Subcommand, Debug)]
pub enum CrlCommand {
    Revoke,
}

pub fn run_ca(_c: CaCommand, _ui: Ui) -> CmdResult {
    Err(CliError("todo".into()))
}
pub fn run_issue(_c: IssueCommand, _ui: Ui) -> CmdResult {
    Err(CliError("todo".into()))
}
pub fn run_crl(_c: CrlCommand, _ui: Ui) -> CmdResult {
    Err(CliError("todo".into()))
}
