#!/usr/bin/env bash
# Installs what `make interop` drives besides Rust, make, python3 and openssl (which
# scripts/install-test-deps.sh installs):
#   libvirtd     (libvirt-daemon) the real daemon the tests start on loopback
#   virsh        (libvirt-clients) the real client, and virt-pki-query-dn
#   gnutls-cli   (gnutls-bin) a GnuTLS client for the virtpki server sessions
# Safe to run again: it installs only what is missing. Debian 12: libvirt 9.0, GnuTLS 3.7.9.
set -euo pipefail

need=()
[ -x /usr/sbin/libvirtd ] || command -v libvirtd >/dev/null || need+=(libvirt-daemon)
command -v virsh >/dev/null || need+=(libvirt-clients)
command -v virt-pki-query-dn >/dev/null || need+=(libvirt-clients)
command -v gnutls-cli >/dev/null || need+=(gnutls-bin)
command -v openssl >/dev/null || need+=(openssl)
command -v unshare >/dev/null || need+=(util-linux)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing ${need[*]}: run this script as root, or install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2046 # one word per package, duplicates removed
    apt-get install -y -q --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u)
fi
