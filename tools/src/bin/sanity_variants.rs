//! libvirt's table of certificate variants (its tests/virnettlscontexttest.c; the table is
//! `virtpki_tools::variants`, which tests/suite/sanity_table.rs runs too), written as libvirt
//! `pkipath` directories for the interoperability tests (interop/), which load each one into a
//! real libvirtd or virsh and into `virtpki validate`.
//!
//! `sanity_variants DIR` writes `DIR/NN-name/` with `cacert.pem` and `{server,client}cert.pem`
//! / `{server,client}key.pem`, and `DIR/manifest.json`: for each variant its name, directory,
//! role and, where the README ("Where virtpki differs from libvirt") documents that virtpki's
//! verdict differs from libvirt 9's, which way (`"libvirt_refuses"`: libvirt refuses and
//! virtpki accepts, `"libvirt_accepts"`: the reverse). No other verdict is written down: the
//! tests compare what the two programs do.
//!
//! Unlike the Rust tests, which verify at a fixed instant, libvirtd uses the system clock: the
//! validity periods here are built around the time the program runs.

use std::path::Path;

use serde_json::json;
use virtpki_tools::kit::write;
use virtpki_tools::variants::{table, write_pkipath, Times};

fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .expect("usage: sanity_variants OUTPUT-DIRECTORY");
    let out = Path::new(&out);
    std::fs::create_dir_all(out).expect("the output directory");
    let mut manifest = Vec::new();
    for (i, v) in table(&Times::around_the_clock()).iter().enumerate() {
        let name = format!("{:02}-{}", i + 1, slug(v.name));
        let dir = out.join(&name);
        write_pkipath(v, &dir);
        manifest.push(json!({
            "name": v.name,
            "dir": dir.to_str().expect("a UTF-8 path"),
            "role": v.role.name(),
            "differs": v.differs(),
        }));
    }
    let text = serde_json::to_string_pretty(&manifest).unwrap();
    write(out, "manifest.json", text + "\n", 0o644);
    println!("{} variants written to {}", manifest.len(), out.display());
}
