#!/usr/bin/env bash
# Installs what `make interop` drives besides Rust, make, python3 and openssl (which
# scripts/install-test-deps.sh installs):
#   libvirtd     (libvirt-daemon) the real daemon the tests start on loopback
#   virsh        (libvirt-clients) the real client, and virt-pki-query-dn
#   gnutls-cli   (gnutls-bin) a GnuTLS client for the virtpki server sessions
#   virt-admin   (libvirt-clients) tells a running libvirtd to reload its TLS files
#   nsenter, unshare (util-linux) the private mount namespace of the system-layout libvirtd
#   promtool     (prometheus) checks `virtpki expiry --prometheus` output. Debian 12 ships
#                promtool only in the prometheus package (19 MB download, 96 MB installed: the
#                server comes with it). On a host run by systemd the package enables and starts
#                prometheus.service (port 9090): `systemctl disable --now prometheus` if that
#                is unwanted; containers whose policy-rc.d forbids starting services get none.
# Safe to run again: it installs only what is missing. Debian 12: libvirt 9.0, GnuTLS 3.7.9.
set -euo pipefail

need=()
[ -x /usr/sbin/libvirtd ] || command -v libvirtd >/dev/null || need+=(libvirt-daemon)
command -v virsh >/dev/null || need+=(libvirt-clients)
command -v virt-pki-query-dn >/dev/null || need+=(libvirt-clients)
command -v gnutls-cli >/dev/null || need+=(gnutls-bin)
command -v openssl >/dev/null || need+=(openssl)
command -v virt-admin >/dev/null || need+=(libvirt-clients)
command -v unshare >/dev/null || need+=(util-linux)
command -v nsenter >/dev/null || need+=(util-linux)
command -v promtool >/dev/null || need+=(prometheus)

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
