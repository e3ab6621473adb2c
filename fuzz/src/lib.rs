//! The fuzz targets' bodies, shared with the main crate's corpus replay (tests/fuzz_corpora.rs).

pub mod targets;
