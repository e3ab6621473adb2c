//! virtpki's development tools, never published: the fixture kit that the integration tests
//! (`tests/suite`, `cli/tests/suite`), the benchmarks (`benches/`) and the generators in
//! `src/bin/` share, so that each helper has one home.
//!
//! - [`kit`]: times, keys, certificate specs, CRLs and contexts made on the fly with rcgen (and
//!   the openssl command for RSA);
//! - [`bench`]: the benchmarks' PKI with an intermediate CA, large CRLs, known-servers files;
//! - [`variants`]: libvirt's table of certificate variants, for the sanity test and for the
//!   interoperability tests' pkipath directories;
//! - [`daemon`]: a running libvirt daemon under a test root (its pid file, locked by a child
//!   process, and its /proc files), for the tests that find a daemon's configuration;
//! - [`shell`], [`openssl_args`]: small helpers of the library's and the CLI's tests.
//!
//! The generators: `make_fixtures` (the C tests' files), `python_fixtures` (the Python tests'
//! and the connect examples'), `sanity_variants` (interop/), `memory_report` (the design's
//! memory target, run in release).
#![allow(
    missing_docs,
    reason = "a test kit for this repository's tests, not an API: its items are read beside their callers"
)]

pub mod bench;
pub mod daemon;
pub mod kit;
pub mod openssl_args;
pub mod shell;
pub mod variants;
