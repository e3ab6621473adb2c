//! virtpki install.

use crate::ui::{CliError, CmdResult, Ui};

#[derive(clap::Args, Debug)]
pub struct InstallArgs {}

pub fn run(_args: InstallArgs, _ui: Ui) -> CmdResult {
    Err(CliError("not written yet".into()))
}
