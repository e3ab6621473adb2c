#!/bin/sh
# The handshake benchmark (benches/handshake.c): makes an ECDSA P-256 and an RSA-2048 PKI with
# the virtpki command, builds the C program against the release libvirtpki.so and GnuTLS, and
# runs it on each. Called by `make bench-handshake`; needs libgnutls28-dev (pkg-config gnutls).
#
#   benches/handshake.sh TARGET_DIR VIRTPKI_COMMAND [ITERATIONS [ROUNDS]]
set -eu
target=$1
virtpki=$2
iterations=${3:-200}
rounds=${4:-7}
cc=${CC:-cc}

if ! pkg-config --exists gnutls; then
    echo "handshake.sh: GnuTLS's headers are missing: apt-get install libgnutls28-dev" >&2
    exit 1
fi
out=$target/bench-handshake
rm -rf "$out"
mkdir -p "$out/lib"
# build.rs gives the library the soname libvirtpki.so.0.
lib=$(cd "$target/release" && pwd)/libvirtpki.so
ln -sf "$lib" "$out/lib/libvirtpki.so.0"
ln -sf "$lib" "$out/lib/libvirtpki.so"
$cc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude $(pkg-config --cflags gnutls) \
    -o "$out/handshake" benches/handshake.c \
    -L"$out/lib" -lvirtpki -Wl,-rpath,"$(cd "$out/lib" && pwd)" \
    $(pkg-config --libs gnutls)

for alg in ecdsa rsa; do
    dir=$out/$alg
    if [ $alg = rsa ]; then bits="--rsa-bits 2048"; else bits=; fi
    $virtpki ca init --dir "$dir/ca" --cn "Bench $alg CA" --key-type $alg $bits >/dev/null
    $virtpki issue server --ca-dir "$dir/ca" --cn bench.test --dns bench.test \
        --key-type $alg $bits --out-dir "$dir" >/dev/null
    $virtpki issue client --ca-dir "$dir/ca" --dn CN=bench-client \
        --key-type $alg $bits --out-dir "$dir" >/dev/null
    cp "$dir/ca/cacert.pem" "$dir/cacert.pem"
    echo "== $alg ($(if [ $alg = rsa ]; then echo RSA-2048; else echo ECDSA P-256; fi) CA, server and client keys)"
    "$out/handshake" "$dir" "$iterations" "$rounds"
done
