//! `virtpki validate`: libvirt's TLS files checked as libvirt and virt-pki-validate check them.

use crate::ui::{CliError, CmdResult, Ui};

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {}

pub fn run(_args: ValidateArgs, _ui: Ui) -> CmdResult {
    Err(CliError("virtpki validate: not written yet".into()))
}
