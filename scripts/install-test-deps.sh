#!/usr/bin/env bash
# Installs what the tests use beyond Rust, gcc, make, python3 and valgrind:
#   openssl      makes fixtures rcgen cannot (RSA keys, PKCS#1/SEC1/encrypted keys, v1 CRLs)
#   certtool     (gnutls-bin) and virt-pki-query-dn (libvirt-clients): the reference
#                implementations the DN tests compare against
#   g++          compiles virtpki.h as C++ (make ffi-test)
#   pkg-config   builds a program against the installed library (make ffi-test)
# Safe to run again: it installs only what is missing.
set -euo pipefail

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v certtool >/dev/null || need+=(gnutls-bin)
command -v virt-pki-query-dn >/dev/null || need+=(libvirt-clients)
command -v g++ >/dev/null || need+=(g++)
command -v pkg-config >/dev/null || need+=(pkg-config)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing ${need[*]}: run this script as root, or install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
fi
