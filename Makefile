# virtpki: build, test, benchmark.
#
#   make test    every test the project has (what CI runs)
#   make bench   criterion benchmarks (release build)

CARGO ?= cargo

.PHONY: all build test lint doc bench quickstart clean

all: build

build:
	$(CARGO) build --release

# Lint first (cheap), then the test build, then the API docs.
test: lint
	$(CARGO) test
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

bench:
	$(CARGO) bench

quickstart:
	$(CARGO) run --release --example quickstart

clean:
	$(CARGO) clean
