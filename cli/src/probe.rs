//! virtpki probe.

use crate::ui::{CliError, CmdResult, Ui};

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {}

pub fn run(_args: ProbeArgs, _ui: Ui) -> CmdResult {
    Err(CliError("not written yet".into()))
}
