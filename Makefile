# virtpki: build, test, benchmark, install.
#
#   make test       every test the project has (what CI runs), the C tests included; it first
#                   installs what is missing (scripts/install-test-deps.sh: a no-op when nothing is)
#   make test-deps  only that
#   make ffi-test   the C tests (ffi-tests/): plain, under valgrind, with AddressSanitizer;
#                   the header as C11 and C++17; a program built against an installed tree
#   make install    the C library, header, pkg-config file and the virtpki command (release),
#                   with its man pages and bash, zsh and fish completions:
#                   PREFIX=/usr/local DESTDIR= LIBDIR=$(PREFIX)/lib INCLUDEDIR=$(PREFIX)/include
#                   BINDIR=$(PREFIX)/bin MANDIR=$(PREFIX)/share/man
#                   BASHCOMPDIR=$(PREFIX)/share/bash-completion/completions
#                   ZSHCOMPDIR=$(PREFIX)/share/zsh/site-functions
#                   FISHCOMPDIR=$(PREFIX)/share/fish/vendor_completions.d
#   make header     regenerate include/virtpki.h after changing src/ffi
#   make python-test  the Python package's tests and the connect examples' (ffi-tests/python),
#                   against the package pip installs into a fresh venv (target/python-venv),
#                   after python-typecheck
#   make python-typecheck  mypy --strict on python/virtpki (mypy in target/python-mypy-*; mypy
#                   runs on Python 3.10+: PY_MYPY_PYTHON when PYTHON is older)
#   make examples   the C examples, examples/c/connect.c and glib_client.c (GLib main loop)
#   make bench      criterion benchmarks (release build), then make bench-handshake
#   make bench-handshake  a mutual-TLS handshake with the 0x01 byte, virtpki against GnuTLS in
#                   one C program (benches/handshake.c; needs libgnutls28-dev)
#   make bench-aio-memory  peak resident memory of 1,000 asyncio connections (after bench-handshake)
#   make fuzz       every fuzz target for FUZZ_SECONDS (default 60) with FUZZ_JOBS (2) processes,
#                   then a table of executions, coverage and crashes (scripts/fuzz.sh); the
#                   corpus replay runs in `make test` (tests/suite/fuzz_corpora.rs)
#   make fuzz-repro TARGET=T INPUT=FILE   one input through one fuzz target (libFuzzer build)
#   make fuzz-min TARGET=T INPUT=FILE     minimise a crashing input

CARGO ?= cargo
CXX ?= g++
PKG_CONFIG ?= pkg-config
VALGRIND ?= valgrind

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# build.rs gives the shared library the soname libvirtpki.so.0.
SOMAJOR := 0

# Where cargo puts its output: CARGO_TARGET_DIR when set, as cargo does, else target/.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
# The profile of the library the C tests link: debug, which `cargo test` has built already.
# `make install` builds and installs release unless PROFILE is given.
PROFILE ?= debug
PROFILE_FLAG = $(if $(filter release,$(PROFILE)),--release,)
LIB_OUT = $(TARGET_DIR)/$(PROFILE)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
DESTDIR ?=

.PHONY: all build test test-deps lint doc bench bench-handshake bench-aio-memory quickstart clean header lib install install-files \
	python-lib python-venv python-typecheck examples python-test \
	ffi-test ffi-lib ffi-build ffi-run ffi-valgrind ffi-asan ffi-header ffi-install-test

all: build

# tools/ (fixture generators, never installed) is left out.
build:
	$(CARGO) build --release --workspace --exclude virtpki-tools

# The dependencies first (a fraction of a second when all are there), then lint (cheap), then
# the test build, then the API docs, then the C side.
test: test-deps
	$(MAKE) --no-print-directory lint
	$(CARGO) test --workspace
	$(CARGO) test -p virtpki --features tokio --test suite tokio::
	$(CARGO) build -p virtpki --lib --no-default-features
	$(MAKE) --no-print-directory doc
	$(MAKE) --no-print-directory ffi-test
	$(MAKE) --no-print-directory python-test

# Installs what the tests use and is missing; fails at once, naming the command to run, when
# that needs root.
test-deps:
	bash scripts/install-test-deps.sh

# The second clippy run lints the library as a program that only verifies builds it: without
# the `generate` feature (no rcgen, no rsa); `test` also builds it that way, and `doc`
# documents it that way, so a link to the issuer cannot break that build. The third lints the
# `tokio` feature (src/tokio.rs, its tests and example); `test` runs its tests (only that topic,
# so the second build is of the library and the suite alone), and the last `doc` run has it.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p virtpki --lib --no-default-features -- -D warnings
	$(CARGO) clippy -p virtpki --all-targets --features tokio -- -D warnings

# One crate at a time: the CLI's binary and the library are both named virtpki, so their docs
# share target/doc/virtpki and one cargo run would write both at once (cargo issue 6313).
# The library last, so that its documentation is what stays there.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p virtpki-cli
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p virtpki --no-default-features
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p virtpki --features tokio

header:
	VIRTPKI_BLESS=1 $(CARGO) test --test header

bench:
	$(CARGO) bench
	$(MAKE) bench-handshake
	$(MAKE) bench-aio-memory

# GnuTLS's headers are needed here only (scripts/install-test-deps.sh leaves them out).
bench-handshake:
	$(CARGO) build --release --lib
	$(CARGO) build -p virtpki-cli
	benches/handshake.sh $(TARGET_DIR) $(TARGET_DIR)/debug/virtpki $(HANDSHAKES)

# Peak resident memory of 1,000 virtpki.aio connections on one loop, on bench-handshake's PKIs.
bench-aio-memory:
	for alg in ecdsa rsa; do echo "== $$alg"; \
	VIRTPKI_LIBRARY=$(abspath $(TARGET_DIR))/release/libvirtpki.so PYTHONPATH=python \
	python3 benches/aio_memory.py $(TARGET_DIR)/bench-handshake/$$alg 1000 || exit 1; done

quickstart:
	$(CARGO) run --release --example quickstart

clean:
	$(CARGO) clean
	rm -rf ffi-tests/build

# ---- the C library: build and install ---------------------------------------------------

lib:
	$(CARGO) build $(PROFILE_FLAG) --lib

# The library and the virtpki command, in one cargo run.
install: PROFILE = release
install:
	$(CARGO) build $(PROFILE_FLAG) --workspace --exclude virtpki-tools
	$(MAKE) --no-print-directory install-files PROFILE=$(PROFILE)

# The man pages and completions, made by the virtpki just built from its clap definitions
# (cli/src/docs.rs): DOCS_OUT/man1/*.1 and DOCS_OUT/completions/{virtpki.bash,_virtpki,virtpki.fish}.
DOCS_OUT = $(LIB_OUT)/virtpki-docs

# Copies what `lib` built; the .pc file gets this PREFIX, LIBDIR and INCLUDEDIR.
install-files:
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
	    $(DESTDIR)$(FISHCOMPDIR)
	rm -rf $(DOCS_OUT)
	$(LIB_OUT)/virtpki __generate-docs $(DOCS_OUT) >/dev/null
	install -m 0644 $(DOCS_OUT)/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(DOCS_OUT)/completions/virtpki.bash $(DESTDIR)$(BASHCOMPDIR)/virtpki
	install -m 0644 $(DOCS_OUT)/completions/_virtpki $(DESTDIR)$(ZSHCOMPDIR)/_virtpki
	install -m 0644 $(DOCS_OUT)/completions/virtpki.fish $(DESTDIR)$(FISHCOMPDIR)/virtpki.fish
	install -m 0755 $(LIB_OUT)/virtpki $(DESTDIR)$(BINDIR)/virtpki
	install -m 0755 $(LIB_OUT)/libvirtpki.so $(DESTDIR)$(LIBDIR)/libvirtpki.so.$(VERSION)
	ln -sf libvirtpki.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libvirtpki.so.$(SOMAJOR)
	ln -sf libvirtpki.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libvirtpki.so
	install -m 0644 $(LIB_OUT)/libvirtpki.a $(DESTDIR)$(LIBDIR)/libvirtpki.a
	install -m 0644 include/virtpki.h $(DESTDIR)$(INCLUDEDIR)/virtpki.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    libvirtpki.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libvirtpki.pc

# ---- the C tests ------------------------------------------------------------------------

FFI_BUILD = ffi-tests/build
FIXTURES = $(FFI_BUILD)/fixtures
FFI_TESTS = errors context load default verify cert session threads reload identity nonblock \
	record
FFI_CFLAGS = -std=c11 -Wall -Wextra -Werror -g -O1 -Iinclude \
	-DFIXTURE_DIR='"$(abspath $(FIXTURES))"' -DEXPECTED_VERSION='"$(VERSION)"'
# The tests find the library through a directory holding the soname link.
FFI_LDFLAGS = -L$(FFI_BUILD)/lib -Wl,-rpath,$(abspath $(FFI_BUILD)/lib) -lvirtpki -lpthread
ASAN_FLAGS = -fsanitize=address -fno-omit-frame-pointer
# Definite and indirect leaks are errors. "Still reachable" (the default context, std's
# process-wide state) and "possibly lost" (x509-parser's global OID table: hashbrown keeps a
# pointer into the middle of its allocation) are not. valgrind.supp: ring's AES-GCM.
VALGRIND_CMD = $(VALGRIND) -q --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	--suppressions=ffi-tests/valgrind.supp
FFI_ASAN_OPTIONS = detect_leaks=1:halt_on_error=1:abort_on_error=0

ffi-test: ffi-build
	$(MAKE) --no-print-directory ffi-run
	$(MAKE) --no-print-directory ffi-valgrind
	$(MAKE) --no-print-directory ffi-asan
	$(MAKE) --no-print-directory ffi-header
	$(MAKE) --no-print-directory ffi-install-test

# One cargo run builds the library, the virtpki command and the fixture generators (the binaries
# of tools/, a dev-only crate). With every member and an example in it, the features are the
# ones `cargo test --workspace` used: only the generators are linked, nothing is compiled twice.
TOOLS_BUILD = $(CARGO) build $(PROFILE_FLAG) --workspace --lib --bins --example quickstart

ffi-lib:
	$(TOOLS_BUILD)
	mkdir -p $(FFI_BUILD)/lib
	ln -sf $(abspath $(LIB_OUT))/libvirtpki.so $(FFI_BUILD)/lib/libvirtpki.so.$(SOMAJOR)
	ln -sf libvirtpki.so.$(SOMAJOR) $(FFI_BUILD)/lib/libvirtpki.so
	rm -rf $(FIXTURES)
	$(LIB_OUT)/make_fixtures $(FIXTURES)

ffi-build: ffi-lib
	$(MAKE) --no-print-directory $(FFI_TESTS:%=$(FFI_BUILD)/test_%) \
	    $(FFI_TESTS:%=$(FFI_BUILD)/asan/test_%)

$(FFI_BUILD)/test_%: ffi-tests/test_%.c ffi-tests/check.h include/virtpki.h
	$(CC) $(FFI_CFLAGS) $< -o $@ $(FFI_LDFLAGS)

$(FFI_BUILD)/asan/test_%: ffi-tests/test_%.c ffi-tests/check.h include/virtpki.h
	@mkdir -p $(dir $@)
	$(CC) $(FFI_CFLAGS) $(ASAN_FLAGS) $< -o $@ $(FFI_LDFLAGS)

# $(call run_ffi,LABEL,PREFIX,DIR): runs every test binary of DIR (after PREFIX), then fails
# if any did.
define run_ffi
	@failed=; for t in $(FFI_TESTS); do \
	    echo "== test_$$t $(1)"; \
	    $(2) $(3)/test_$$t || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "C tests failed $(1):$$failed"; exit 1; fi
endef

ffi-run:
	$(call run_ffi,,,$(FFI_BUILD))

ffi-valgrind:
	$(call run_ffi,(valgrind),$(VALGRIND_CMD),$(FFI_BUILD))

ffi-asan:
	$(call run_ffi,(AddressSanitizer),ASAN_OPTIONS=$(FFI_ASAN_OPTIONS),$(FFI_BUILD)/asan)

# The header alone, as C11 with -Wpedantic and as C++17; every prototype as API.md has it.
ffi-header:
	$(CC) -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude -c ffi-tests/header_check.c \
	    -o $(FFI_BUILD)/header_check_c.o
	$(CXX) -std=c++17 -Wall -Wextra -Werror -Iinclude -x c++ -c ffi-tests/header_check.c \
	    -o $(FFI_BUILD)/header_check_cxx.o

# make install into a temporary DESTDIR, then build against it with pkg-config; the command's
# man pages (one per subcommand, so more than ten) and completions must be there too.
INSTALLED = $(abspath $(FFI_BUILD)/destdir)/usr/local
ffi-install-test:
	rm -rf $(FFI_BUILD)/destdir $(FFI_BUILD)/install-test
	$(MAKE) --no-print-directory install-files PROFILE=$(PROFILE) PREFIX=/usr/local \
	    DESTDIR=$(abspath $(FFI_BUILD)/destdir)
	test -x $(INSTALLED)/bin/virtpki
	test -f $(INSTALLED)/share/man/man1/virtpki.1
	test -f $(INSTALLED)/share/man/man1/virtpki-issue-server.1
	test "$$(ls $(INSTALLED)/share/man/man1 | wc -l)" -gt 10
	test -s $(INSTALLED)/share/bash-completion/completions/virtpki
	test -s $(INSTALLED)/share/zsh/site-functions/_virtpki
	test -s $(INSTALLED)/share/fish/vendor_completions.d/virtpki.fish
	CC=$(CC) PKG_CONFIG=$(PKG_CONFIG) sh ffi-tests/install-test.sh \
	    $(abspath $(FFI_BUILD)/destdir) /usr/local $(VERSION) $(abspath $(FFI_BUILD)/install-test)

# ---- the Python package and the examples ------------------------------------------------

PYTHON ?= python3
EXAMPLE_CFLAGS ?= -std=c11 -Wall -Wextra -O2 -g
LIB_ABS = $(abspath $(LIB_OUT))
C_EXAMPLES = $(abspath $(TARGET_DIR)/c-examples)

# The library (same profile as `cargo test`), the Python tests' fixture generator, and the
# soname link the C example's rpath finds.
python-lib:
	$(TOOLS_BUILD)
	ln -sf libvirtpki.so $(LIB_ABS)/libvirtpki.so.$(SOMAJOR)

examples: python-lib
	mkdir -p $(C_EXAMPLES)
	$(CC) $(EXAMPLE_CFLAGS) -Iinclude -o $(C_EXAMPLES)/connect examples/c/connect.c \
		-L$(LIB_ABS) -lvirtpki -Wl,-rpath,$(LIB_ABS)
	$(CC) $(EXAMPLE_CFLAGS) -Werror -Iinclude $$($(PKG_CONFIG) --cflags glib-2.0) \
		-o $(C_EXAMPLES)/glib_client examples/c/glib_client.c \
		-L$(LIB_ABS) -lvirtpki $$($(PKG_CONFIG) --libs glib-2.0) -Wl,-rpath,$(LIB_ABS)

# The suite runs against the package as pip installs it (pyproject.toml, setup.py): a fresh venv,
# the wheel built from this tree with the library just built inside it, the tests run by that
# venv's python (ffi-tests/python imports the installed package, never python/; with
# VIRTPKI_TEST_INSTALLED=1 test_package fails, rather than skips, on the tree's). The build
# needs PY_SETUPTOOLS (pyproject.toml's); it is downloaded once into PY_WHEELS, so a second
# run needs no network (--no-index). For speed the venv has no pip of its own (PYTHON's pip,
# 22.3 or later, installs into it with --python) and the wheel is stored uncompressed (the
# debug library is large; the wheel is thrown away).
#
# The package's source is type-checked with `mypy --strict` (PY_MYPY, pinned with its
# dependencies in python/mypy-constraints.txt: a newer mypy may find new errors in unchanged
# code, and CI must not turn red by itself) in its own venv,
# PY_MYPY_VENV, made once per pinned version from the same wheelhouse (downloaded once too).
# ffi-tests/python/test_typing.py checks that an error put into a copy of the source fails it.
PY_VENV = $(abspath $(TARGET_DIR))/python-venv
PY_WHEELS = $(abspath $(TARGET_DIR))/python-wheelhouse
PY_PIP = PIP_DISABLE_PIP_VERSION_CHECK=1 $(PYTHON) -m pip --python $(PY_VENV)/bin/python
PY_SETUPTOOLS = setuptools>=77
PY_MYPY = mypy==2.4.1
# ... and its dependencies' versions with it.
PY_MYPY_CONSTRAINTS = $(abspath python/mypy-constraints.txt)
# The oldest Python this mypy checks for (the package says >=3.8; mypy 2.x targets 3.10 and
# later): the stdlib as of 3.10, not as of the python running it.
PY_MYPY_TARGET = 3.10
PY_MYPY_VENV = $(abspath $(TARGET_DIR))/python-$(subst ==,-,$(PY_MYPY))
# mypy itself runs on Python 3.10 or later: another interpreter for it when PYTHON is older.
PY_MYPY_PYTHON ?= $(PYTHON)
PY_MYPY_PIP = PIP_DISABLE_PIP_VERSION_CHECK=1 $(PY_MYPY_PYTHON) -m pip \
	--python $(PY_MYPY_VENV)/bin/python
PY_MYPY_RUN = $(PY_MYPY_VENV)/bin/python -m mypy --strict --python-version $(PY_MYPY_TARGET) \
	--cache-dir $(abspath $(TARGET_DIR))/mypy-cache

python-venv: python-lib
	rm -rf $(PY_VENV) $(abspath $(TARGET_DIR))/python-build
	$(PYTHON) -m venv --without-pip $(PY_VENV)
	@# From the wheelhouse; else downloaded into it once (a wheel there too old counts as none).
	$(PY_PIP) install --quiet --no-index --find-links $(PY_WHEELS) '$(PY_SETUPTOOLS)' 2>/dev/null || \
	    { $(PY_PIP) download --quiet --dest $(PY_WHEELS) '$(PY_SETUPTOOLS)' && \
	      $(PY_PIP) install --quiet --no-index --find-links $(PY_WHEELS) '$(PY_SETUPTOOLS)'; } || \
	    { echo "python-venv: building the wheel needs $(PY_SETUPTOOLS), which is not in" \
	        "$(PY_WHEELS) and could not be downloaded (offline?): put a setuptools wheel there" \
	        "(pip download --dest $(PY_WHEELS) '$(PY_SETUPTOOLS)' on a machine with network)" >&2; \
	      exit 1; }
	CARGO_TARGET_DIR=$(abspath $(TARGET_DIR)) VIRTPKI_WHEEL_LIBRARY=$(LIB_ABS)/libvirtpki.so \
	    $(PY_PIP) install --quiet --no-build-isolation --no-index --no-deps \
	    --config-settings=--build-option=--compression=stored .

# `pip install` into a venv of its own, from the wheelhouse, else downloaded into it once.
$(PY_MYPY_VENV)/bin/mypy: $(PY_MYPY_CONSTRAINTS)
	@$(PY_MYPY_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
	    { echo "python-typecheck: $(PY_MYPY) runs on Python 3.10 or later, and" \
	        "$(PY_MYPY_PYTHON) is $$($(PY_MYPY_PYTHON) -c 'import sys; print(sys.version.split()[0])');" \
	        "name a newer one: make PY_MYPY_PYTHON=python3.11 ..." >&2; exit 1; }
	rm -rf $(PY_MYPY_VENV)
	$(PY_MYPY_PYTHON) -m venv --without-pip $(PY_MYPY_VENV)
	$(PY_MYPY_PIP) install --quiet --no-index --find-links $(PY_WHEELS) \
	    -c $(PY_MYPY_CONSTRAINTS) '$(PY_MYPY)' 2>/dev/null || \
	    { $(PY_MYPY_PIP) download --quiet --dest $(PY_WHEELS) -c $(PY_MYPY_CONSTRAINTS) '$(PY_MYPY)' && \
	      $(PY_MYPY_PIP) install --quiet --no-index --find-links $(PY_WHEELS) \
	        -c $(PY_MYPY_CONSTRAINTS) '$(PY_MYPY)'; } || \
	    { rm -rf $(PY_MYPY_VENV); echo "python-typecheck: $(PY_MYPY) is not in $(PY_WHEELS) and" \
	        "could not be downloaded (offline?): on a machine with network and the same Python" \
	        "version and platform, pip download --dest DIR -c python/mypy-constraints.txt" \
	        "'$(PY_MYPY)', then copy DIR's wheels" \
	        "into $(PY_WHEELS)" >&2; exit 1; }

python-typecheck: $(PY_MYPY_VENV)/bin/mypy
	$(PY_MYPY_RUN) python/virtpki

python-test: python-venv examples python-typecheck
	VIRTPKI_TEST_INSTALLED=1 VIRTPKI_FIXTURES_BIN=$(LIB_ABS)/python_fixtures \
	VIRTPKI_MYPY="$(PY_MYPY_RUN)" \
	VIRTPKI_C_CONNECT=$(C_EXAMPLES)/connect \
	VIRTPKI_C_GLIB_CLIENT=$(C_EXAMPLES)/glib_client \
	VIRTPKI_TOKIO_CLIENT=$(INTEROP_OUT)/examples/tokio_client \
		$(PY_VENV)/bin/python -m unittest discover -s ffi-tests/python -t ffi-tests/python -v

# ---- interoperability with real libvirt (interop/) --------------------------------------
#
#   make interop    libvirtd, virsh, virt-pki-query-dn and gnutls-cli of the system against
#                   virtpki's CLI, C library and Python package (scripts/install-interop-deps.sh
#                   installs them). Debug builds in the same target dir as `make test`.
#                   QEMU (interop/test_qemu.py): qemu-nbd, qemu-img, qemu-system-x86_64.
#   make interop INTEROP_TESTS=test_qemu.py    one file of interop/ (a glob of file names)

.PHONY: interop

INTEROP_OUT = $(abspath $(TARGET_DIR))/$(PROFILE)
INTEROP_TESTS ?= test*.py

# One cargo run for the library, the CLI and the fixture generators (TOOLS_BUILD), so that the
# library is built once, with one set of features.
interop:
	$(TOOLS_BUILD)
	$(CARGO) build $(PROFILE_FLAG) --features tokio --example tokio_client
	$(MAKE) --no-print-directory examples
	VIRTPKI_LIBRARY=$(INTEROP_OUT)/libvirtpki.so \
	VIRTPKI_C_GLIB_CLIENT=$(C_EXAMPLES)/glib_client \
	VIRTPKI_TOKIO_CLIENT=$(INTEROP_OUT)/examples/tokio_client \
	VIRTPKI_CLI=$(INTEROP_OUT)/virtpki \
	VIRTPKI_FIXTURES_BIN=$(INTEROP_OUT)/python_fixtures \
	VIRTPKI_SANITY_VARIANTS=$(INTEROP_OUT)/sanity_variants \
		$(PYTHON) -m unittest discover -s interop -t interop -p '$(INTEROP_TESTS)' -v

# ---- fuzzing (fuzz/: cargo-fuzz and libFuzzer; README.md, "Fuzzing") ---------------------
#
# fuzz/ is not a workspace member: `make test` never builds it. Its target bodies
# (fuzz/src/targets.rs) are replayed over fuzz/corpus and fuzz/regressions by
# tests/suite/fuzz_corpora.rs, which `cargo test --workspace` runs on stable without libFuzzer.
# cargo-fuzz passes nightly-only flags; a stable compiler takes them with RUSTC_BOOTSTRAP=1.

.PHONY: fuzz fuzz-tool fuzz-build fuzz-repro fuzz-min

FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_SANITIZER ?= address
# Empty: every target of fuzz/Cargo.toml.
FUZZ_TARGETS ?=
# The fuzz build has its own target directory: other RUSTFLAGS, another profile.
FUZZ_CARGO = cd fuzz && CARGO_TARGET_DIR=$(abspath fuzz/target) RUSTC_BOOTSTRAP=1 $(CARGO)

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_SANITIZER=$(FUZZ_SANITIZER) \
	    sh scripts/fuzz.sh $(FUZZ_TARGETS)

fuzz-tool:
	$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

fuzz-build: fuzz-tool
	$(FUZZ_CARGO) fuzz build -O --sanitizer $(FUZZ_SANITIZER)

fuzz-repro: fuzz-tool
	$(FUZZ_CARGO) fuzz run -O --sanitizer $(FUZZ_SANITIZER) $(TARGET) $(abspath $(INPUT))

fuzz-min: fuzz-tool
	$(FUZZ_CARGO) fuzz tmin -O --sanitizer $(FUZZ_SANITIZER) $(TARGET) $(abspath $(INPUT))
