//! The CLI's integration tests, as one test binary (one link step instead of one per file).
//! Each module is one subcommand or topic: `cargo test -p virtpki-cli --test suite issue::`.

mod common;

mod consistency;

mod display;
mod docs;
mod expiry;
mod inspect;
mod install;
mod issue;
mod known;
mod probe;
mod qemu;
mod reload;
mod renew;
mod request;
mod suggested_commands;
mod validate;
mod vnc;
mod walkthrough;
