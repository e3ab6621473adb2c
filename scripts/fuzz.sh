#!/bin/sh
# Runs fuzz targets with cargo-fuzz (libFuzzer) and prints per-target figures.
#
#   scripts/fuzz.sh [TARGET...]      every target of fuzz/Cargo.toml when none is named
#
# FUZZ_SECONDS (default 60) per target, FUZZ_JOBS (default 2) processes per target (libFuzzer's
# -fork, so a crash does not end the run: every crash found is kept under
# fuzz/artifacts/TARGET/). FUZZ_SANITIZER: address (default) or none. FUZZ_NICE: nice level.
# New inputs go to fuzz/work/TARGET/ (not in git); the seeds in fuzz/corpus/TARGET/ are read.
# Logs: fuzz/work/TARGET.log. Exits 1 if any target crashed.
#
# Only stable Rust is needed: cargo-fuzz passes nightly-only flags (-Zsanitizer, ...), which a
# stable compiler accepts with RUSTC_BOOTSTRAP=1. cargo-fuzz is installed if missing.
set -eu
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
SANITIZER=${FUZZ_SANITIZER:-address}
NICE=${FUZZ_NICE:-0}
export RUSTC_BOOTSTRAP=1
# Its own target directory (other RUSTFLAGS), whatever the caller uses for the main crate.
export CARGO_TARGET_DIR="$PWD/target"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets="$*"
else
    targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^virtpki-fuzz$')
fi

nice -n "$NICE" cargo fuzz build -O --sanitizer "$SANITIZER"

mkdir -p work
summary=work/summary.txt
printf '%-14s %12s %8s %8s %8s %8s\n' target execs exec/s cov ft crashes > "$summary"
failed=0
for t in $targets; do
    mkdir -p "work/$t" "artifacts/$t" work/tmp
    before=$(ls "artifacts/$t" | wc -l)
    echo "== fuzzing $t for ${SECONDS_PER_TARGET}s with $JOBS processes"
    # The working corpus first: libFuzzer writes new inputs to the first directory only.
    # TMPDIR: the known-servers target's scratch directories, one per process, removed below.
    TMPDIR="$PWD/work/tmp" nice -n "$NICE" cargo fuzz run -O --sanitizer "$SANITIZER" "$t" "work/$t" "corpus/$t" -- \
        -fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 > "work/$t.log" 2>&1 || true
    rm -rf work/tmp
    after=$(ls "artifacts/$t" | wc -l)
    crashes=$((after - before))
    # Fork mode's status lines: "#N: cov: C ft: F corp: ... exec/s: E ...".
    last=$(grep -E '^#[0-9]+: cov:' "work/$t.log" | tail -n 1)
    execs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    rate=$(echo "$last" | sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p')
    printf '%-14s %12s %8s %8s %8s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "$crashes" >> "$summary"
    if [ "$crashes" -gt 0 ]; then
        failed=1
        echo "   $crashes new crash(es) in fuzz/artifacts/$t/; reproduce with"
        echo "   make fuzz-repro TARGET=$t INPUT=fuzz/artifacts/$t/FILE"
        # One line per kind of crash: the panic message (quoted text elided), with a count.
        bin="target/$(rustc -vV | sed -n 's/^host: //p')/release/$t"
        for f in "artifacts/$t"/crash-*; do
            "$bin" "$f" 2>&1 | grep -A1 'panicked at' | tail -n 1 |
                sed -E 's/"[^"]*"/"…"/g' | cut -c1-160
        done | sort | uniq -c | sort -rn > "work/$t.crashes"
        sed 's/^/   /' "work/$t.crashes"
    fi
done
cat "$summary"
exit "$failed"
