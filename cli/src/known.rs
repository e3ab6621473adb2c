//! `virtpki known list|add|remove`: the known-servers store.

use crate::ui::{CliError, CmdResult, Ui};

#[derive(clap::Subcommand, Debug)]
pub enum KnownCommand {
    /// List the trusted servers.
    List,
    /// Trust a server's certificate.
    Add,
    /// Forget a server.
    Remove,
}

pub fn run(_cmd: KnownCommand, _ui: Ui) -> CmdResult {
    Err(CliError("virtpki known: not written yet".into()))
}
