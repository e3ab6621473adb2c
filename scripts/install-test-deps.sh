#!/usr/bin/env bash
# Installs what `make test` uses beyond a Rust toolchain and make (`make test` runs this first):
#   rustfmt, clippy  the toolchain's components (`rustup component add`, if rustup manages it)
#   cc, g++      (gcc, g++) the C tests, and virtpki.h compiled as C++ (make ffi-test)
#   valgrind     the C tests under valgrind (make ffi-test)
#   python3      the Python package's tests (make python-test), which install the package into
#                a fresh venv with pip (python3-venv, python3-pip); the venv gets setuptools,
#                and `make python-typecheck` a pinned mypy (its own venv), from PyPI once
#                (target/python-wheelhouse), later runs need no network (not from apt: Debian's
#                python3-mypy is older, and serves the system python only)
#   openssl      makes fixtures rcgen cannot (RSA keys, PKCS#1/SEC1/encrypted keys, v1 CRLs)
#   certtool     (gnutls-bin) and virt-pki-query-dn (libvirt-clients): the reference
#                implementations the DN tests compare against
#   pkg-config   builds a program against the installed library (make ffi-test)
#   libglib2.0-dev  GLib, for examples/c/glib_client.c (make examples, make python-test)
#   promtool     (prometheus) checks contrib's alerting rules and runs their unit tests
#   systemd-analyze  (systemd) verifies contrib's service and timer units
#   groff        (groff-base) renders the man pages the CLI tests check
#   zsh, fish    check the syntax of the completion scripts
# Safe to run again: it installs only what is missing. When nothing is, it only looks (no
# network, a fraction of a second).
set -euo pipefail

need=()
command -v cc >/dev/null || need+=(gcc)
command -v g++ >/dev/null || need+=(g++)
command -v valgrind >/dev/null || need+=(valgrind)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv' 2>/dev/null || need+=(python3-venv)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v openssl >/dev/null || need+=(openssl)
command -v certtool >/dev/null || need+=(gnutls-bin)
command -v virt-pki-query-dn >/dev/null || need+=(libvirt-clients)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists glib-2.0 2>/dev/null || need+=(libglib2.0-dev)
command -v promtool >/dev/null || need+=(prometheus)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v groff >/dev/null || need+=(groff-base)
command -v zsh >/dev/null || need+=(zsh)
command -v fish >/dev/null || need+=(fish)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing ${need[*]}: run 'sudo scripts/install-test-deps.sh' (Debian, Ubuntu)," \
            "or install them, then make test again" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# The toolchain's components are the user's (no root needed), checked after the packages: under
# sudo, PATH is sudo's secure_path, which holds no rustup toolchain, so the components are
# left to the run as the user (`make test` runs this script again as the user).
if [ "$(id -u)" = 0 ] && ! command -v cargo >/dev/null; then
    exit 0
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null; then
            rustup component add "$component"
        else
            echo "missing cargo ${component/rustfmt/fmt}: install the toolchain's $component" >&2
            exit 1
        fi
    fi
done
