//! The library's integration tests, as one test binary: one link step instead of one per file
//! (ripgrep's layout). Each module is one topic; a test's name is `topic::name`, so
//! `cargo test --test suite verify::` runs one topic.
//!
//! Kept as binaries of their own: `tests/known_servers.rs` (its own `main`, which the test
//! runs again as writer processes) and `tests/header.rs` (`make header` runs it to rewrite the
//! header).

mod common;

mod cert_model;
mod conformance;
mod daemon_reload;
mod dn_format;
mod expiry;
mod expiry_list;
mod files;
mod fuzz_corpora;
mod generate;
mod identities;
mod inputs;
mod locations;
mod module_graph;
mod nonblock;
mod qemu_conf;
mod qemu_rules;
mod quickstart;
mod record_peer;
mod reload;
mod renew;
mod sanity_table;
mod session_end;
mod suggested_commands;
mod tls_sessions;
#[cfg(feature = "tokio")]
mod tokio;
mod validator_reentry;
mod verify;
mod vnc;
