# virtpki: build, test, benchmark.
#
#   make test         every test the project has (what CI runs)
#   make python-test  the Python package's tests and the connect examples' (ffi-tests/python)
#   make examples     the C example, examples/c/connect.c
#   make bench        criterion benchmarks (release build)

CARGO ?= cargo
PYTHON ?= python3
EXAMPLE_CFLAGS ?= -std=c11 -Wall -Wextra -O2 -g

# The C library the Python tests and the C example use: PROFILE=debug (default, shares the
# build with `cargo test`) or PROFILE=release.
PROFILE ?= debug
PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
LIBDIR := $(abspath $(TARGET_DIR)/$(PROFILE))
C_EXAMPLES := $(abspath $(TARGET_DIR)/c-examples)

.PHONY: all build test lint doc bench quickstart clean lib examples python-test

all: build

build:
	$(CARGO) build --release

# Lint first (cheap), then the test build, then the API docs.
test: lint
	$(CARGO) test
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps
	$(MAKE) --no-print-directory python-test

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps

bench:
	$(CARGO) bench

# The shared library, with its soname beside it for programs linked against it; built with
# the fixtures example (examples/python_fixtures.rs, for the Python tests) in one cargo run:
# apart, they resolve dependency features differently and rebuild the library in turn.
lib:
	$(CARGO) build $(PROFILE_FLAG) --lib --example python_fixtures
	ln -sf libvirtpki.so $(LIBDIR)/libvirtpki.so.0

examples: lib
	mkdir -p $(C_EXAMPLES)
	$(CC) $(EXAMPLE_CFLAGS) -Iinclude -o $(C_EXAMPLES)/connect examples/c/connect.c \
		-L$(LIBDIR) -lvirtpki -Wl,-rpath,$(LIBDIR)

python-test: lib examples
	VIRTPKI_LIBRARY=$(LIBDIR)/libvirtpki.so \
	VIRTPKI_FIXTURES_BIN=$(abspath $(TARGET_DIR)/$(PROFILE)/examples/python_fixtures) \
	VIRTPKI_C_CONNECT=$(C_EXAMPLES)/connect \
		$(PYTHON) -m unittest discover -s ffi-tests/python -t ffi-tests/python -v

quickstart:
	$(CARGO) run --release --example quickstart

clean:
	$(CARGO) clean
