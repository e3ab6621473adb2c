//! The fuzz targets' bodies, shared with the main crate's corpus replay
//! (tests/suite/fuzz_corpora.rs).

pub mod targets;
