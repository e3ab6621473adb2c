//! Arguments of the openssl command that many fixtures share. Shared with the CLI tests
//! (a module of the kit).

/// The `openssl req` arguments for a new, unencrypted P-256 key (fast; written to `-keyout`).
pub const NEW_P256_KEY: &[&str] = &[
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];
