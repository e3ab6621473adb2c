//! The fuzz targets' regression run: every file of fuzz/corpus/TARGET/ (the seeds and what
//! fuzzing kept) and fuzz/regressions/TARGET/ (minimised crashes, kept once fixed) through the
//! target's body, on stable Rust, without libFuzzer. The bodies are fuzz/src/targets.rs, the
//! same file the libFuzzer binaries call, so `cargo test` checks what `make fuzz` found.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = read
        .map(|e| e.expect("read a corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The regressions listed in fuzz/regressions/OPEN (`TARGET/FILE` lines): bugs found by
/// fuzzing whose fix has not landed yet. They are run and reported, not failed on; a line is
/// removed when its fix lands, and from then on the input must pass.
fn open_regressions() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/OPEN");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Runs every input of `kind` (corpus or regressions) of every target; returns how many.
fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind);
    let open = open_regressions();
    let mut count = 0;
    for (name, body) in targets::TARGETS {
        for file in inputs(&root.join(name)) {
            let data = std::fs::read(&file).expect("read an input");
            let file_name = file.file_name().unwrap_or_default().to_string_lossy();
            if kind == "regressions" && open.contains(&format!("{name}/{file_name}")) {
                // Expected to fail until its fix lands: without the panic message.
                let hook = std::panic::take_hook();
                std::panic::set_hook(Box::new(|_| {}));
                let outcome = std::panic::catch_unwind(|| body(&data));
                std::panic::set_hook(hook);
                eprintln!(
                    "open regression {name}/{file_name}: {}",
                    if outcome.is_ok() {
                        "passes now: remove it from fuzz/regressions/OPEN"
                    } else {
                        "still fails (listed in fuzz/regressions/OPEN)"
                    }
                );
                continue;
            }
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(
                outcome.is_ok(),
                "fuzz target {name} fails on {} (reproduce: make fuzz-repro TARGET={name} \
                 INPUT={})",
                file.display(),
                file.display()
            );
            count += 1;
        }
    }
    count
}

/// One test, so that the scratch directory of the known-servers target is removed only after
/// every input ran.
#[test]
fn every_target_passes_its_corpus_and_every_crash_stays_fixed() {
    let count = replay("corpus");
    replay("regressions");
    targets::remove_scratch_dir();
    // Every target has seeds: an empty run would prove nothing.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, _) in targets::TARGETS {
        assert!(
            !inputs(&root.join(name)).is_empty(),
            "fuzz/corpus/{name} has no seed"
        );
    }
    assert!(count >= targets::TARGETS.len());
}
