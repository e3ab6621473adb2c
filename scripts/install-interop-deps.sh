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

# ---- QEMU (interop/test_qemu.py, issue 13) ------------------------------------------------
#   qemu-nbd, qemu-img  (qemu-utils) an NBD server and client with tls-creds-x509
#   qemu-system-x86_64  (qemu-system-x86) QEMU's VNC server (-machine none, TCG, no KVM)
#   ip, nsenter         (iproute2, util-linux) gnutls-serv in a network namespace of its own
# A fresh Debian 12 gets both packages at 7.2 from its own repositories (installed normally).
# A machine with a newer qemu-utils (e.g. bookworm-backports' 10.0, whose qemu-utils says
# "Breaks: qemu-system-common (<< 1:8.0)") cannot take Debian 12's qemu-system-x86 without
# apt removing qemu-utils: this script never lets apt remove a package. There the
# qemu-system-x86 packages apt would install are downloaded (apt-get download) and unpacked
# (dpkg-deb -x) into $VIRTPKI_INTEROP_QEMU_DIR (default /opt/virtpki-interop/qemu-system),
# with wrappers, bin/qemu-system-x86_64 and bin/qemu-storage-daemon, that find their
# libraries, modules and data (interop/qemu.py looks there when qemu-system-x86_64 is not on
# PATH, and loads certificates with both that 7.2 and the installed qemu-img).
qemu_private=${VIRTPKI_INTEROP_QEMU_DIR:-/opt/virtpki-interop/qemu-system}
qemu_need=()
command -v qemu-nbd >/dev/null || qemu_need+=(qemu-utils)
command -v qemu-img >/dev/null || qemu_need+=(qemu-utils)
command -v ip >/dev/null || qemu_need+=(iproute2)
command -v nsenter >/dev/null || qemu_need+=(util-linux)
qemu_system=yes
if command -v qemu-system-x86_64 >/dev/null || [ -x "$qemu_private/bin/qemu-system-x86_64" ]; then
    qemu_system=no
fi
if [ ${#qemu_need[@]} -gt 0 ] || [ $qemu_system = yes ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing ${qemu_need[*]} qemu-system-x86: run this script as root, or install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    if [ ${#qemu_need[@]} -gt 0 ]; then
        # shellcheck disable=SC2046 # one word per package, duplicates removed
        apt-get install -y -q --no-install-recommends $(printf '%s\n' "${qemu_need[@]}" | sort -u)
    fi
fi
if [ $qemu_system = yes ]; then
    simulation=$(apt-get install -s -q --no-install-recommends qemu-system-x86)
    if ! grep -q '^Remv ' <<<"$simulation"; then
        apt-get install -y -q --no-install-recommends qemu-system-x86
    else
        echo "apt would remove $(awk '/^Remv /{print $2}' <<<"$simulation" | xargs) to install" \
             "qemu-system-x86: unpacking it into $qemu_private instead" >&2
        mapfile -t debs < <(awk '/^Inst /{print $2}' <<<"$simulation")
        scratch=$(mktemp -d)
        chmod 0755 "$scratch" # apt-get download fetches as user _apt
        chown _apt "$scratch" 2>/dev/null || true
        trap 'rm -rf "$scratch"' EXIT
        (cd "$scratch" && apt-get download -q "${debs[@]}")
        rm -rf "$qemu_private.new"
        mkdir -p "$qemu_private.new/root" "$qemu_private.new/bin"
        for deb in "$scratch"/*.deb; do
            dpkg-deb -x "$deb" "$qemu_private.new/root"
        done
        libs=""
        for d in "$qemu_private.new"/root/usr/lib/*-linux-gnu "$qemu_private.new"/root/lib/*-linux-gnu; do
            [ -d "$d" ] && libs="$libs${libs:+:}$qemu_private/${d#"$qemu_private.new/"}"
        done
        moddir=$(cd "$qemu_private.new/root/usr/lib" && ls -d ./*-linux-gnu/qemu | head -n 1)
        # Paths of the final directory: the .new one is renamed below. qemu-storage-daemon
        # (in qemu-system-common) is Debian 12's 7.2 too: test_qemu.py loads with both.
        for tool in qemu-system-x86_64 qemu-storage-daemon; do
            data=""
            [ $tool = qemu-system-x86_64 ] && data=" -L \"$qemu_private/root/usr/share/qemu\""
            cat >"$qemu_private.new/bin/$tool" <<WRAPPER
#!/bin/sh
# Debian 12's $tool, unpacked by scripts/install-interop-deps.sh (not installed).
# TCG is a module in Debian's build (QEMU_MODULE_DIR); -L finds the keymaps and firmware.
LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" \\
QEMU_MODULE_DIR="$qemu_private/root/usr/lib/${moddir#./}" \\
exec "$qemu_private/root/usr/bin/$tool"$data "\$@"
WRAPPER
            chmod 0755 "$qemu_private.new/bin/$tool"
        done
        rm -rf "$qemu_private"
        mv "$qemu_private.new" "$qemu_private"
        "$qemu_private/bin/qemu-system-x86_64" --version
    fi
fi
