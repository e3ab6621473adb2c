//! The fixture kit (`virtpki_tools::kit`, tools/src/kit.rs; shared with the CLI's tests, the
//! benchmarks and the fixture generators) under the name the tests use.

pub use virtpki_tools::kit::*;
pub use virtpki_tools::{openssl_args, shell};
