//! `virtpki __generate-docs DIR`: the man pages (DIR/man1, one per command and subcommand) and
//! the bash, zsh and fish completions (DIR/completions), made from the clap definitions so that
//! they say what the binary does. `make install` runs it and installs what it writes; the CLI
//! tests run it and check that every subcommand has its page and its completions.
//!
//! An entry point of the binary rather than a subcommand, so that it appears in no help, page
//! or completion, and rather than a second program, so that `make install` builds nothing more.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::Cli;

/// The first argument that selects this entry point.
pub const ENTRY: &str = "__generate-docs";

/// Runs `virtpki __generate-docs DIR` (`args` are those after the entry word).
pub fn main(args: &[OsString]) -> ExitCode {
    let [dir] = args else {
        eprintln!("usage: virtpki {ENTRY} DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(dir)) {
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("virtpki: {}: {e}", Path::new(dir).display());
            ExitCode::from(2)
        }
    }
}

/// Writes the pages and completions under `dir` (made when missing); returns what it wrote.
pub fn generate(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let man = dir.join("man1");
    let completions = dir.join("completions");
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&completions)?;
    let mut written = Vec::new();
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    man_pages(&cmd, &man, &mut written)?;
    written.sort();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        written.push(clap_complete::generate_to(
            shell,
            &mut cmd,
            "virtpki",
            &completions,
        )?);
    }
    Ok(written)
}

/// The page of `cmd` and of each visible subcommand, named as man(1) looks them up
/// (virtpki-ca-init.1), each with "virtpki VERSION" as its source: clap gives subcommands no
/// version of their own.
fn man_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir, written)?;
    }
    let page = clap_mangen::Man::new(cmd.clone())
        .source(format!("virtpki {}", env!("CARGO_PKG_VERSION")))
        .manual("virtpki manual");
    written.push(page.generate_to(dir)?);
    Ok(())
}
