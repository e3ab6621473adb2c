#!/bin/sh
# Checks an installed tree (make install DESTDIR=...): the files and links, then builds a
# program with `pkg-config --cflags --libs libvirtpki`, shared and static, and runs it.
#
#   install-test.sh DESTDIR PREFIX VERSION WORKDIR
set -eu
destdir=$1 prefix=$2 version=$3 work=$4
cc=${CC:-cc}
pkgconfig=${PKG_CONFIG:-pkg-config}
here=$(cd "$(dirname "$0")" && pwd)
lib=$destdir$prefix/lib
mkdir -p "$work"

fail() { echo "install-test: $*" >&2; exit 1; }

# The files, and the links to the real library.
for f in "$lib/libvirtpki.so.$version" "$lib/libvirtpki.a" "$destdir$prefix/include/virtpki.h" \
         "$lib/pkgconfig/libvirtpki.pc"; do
    [ -f "$f" ] || fail "$f is missing"
done
[ "$(readlink "$lib/libvirtpki.so.0")" = "libvirtpki.so.$version" ] \
    || fail "bad libvirtpki.so.0 link"
[ "$(readlink "$lib/libvirtpki.so")" = "libvirtpki.so.0" ] || fail "bad libvirtpki.so link"
readelf -d "$lib/libvirtpki.so.$version" | grep -q 'SONAME.*\[libvirtpki\.so\.0\]' \
    || fail "the library's soname is not libvirtpki.so.0"
cmp -s "$destdir$prefix/include/virtpki.h" "$here/../include/virtpki.h" || fail "header differs"

# pkg-config sees only the installed tree, and prefixes its paths with DESTDIR.
PKG_CONFIG_LIBDIR=$lib/pkgconfig
PKG_CONFIG_PATH=$lib/pkgconfig
PKG_CONFIG_SYSROOT_DIR=$destdir
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
[ "$($pkgconfig --modversion libvirtpki)" = "$version" ] || fail "pkg-config version"
cflags=$($pkgconfig --cflags libvirtpki)
libs=$($pkgconfig --libs libvirtpki)
echo "pkg-config: $cflags $libs"

# Shared: the loader finds libvirtpki.so.0 in the installed tree.
# shellcheck disable=SC2086 # flags are words
$cc -std=c11 -Wall -Wextra -Werror "$here/installed_version.c" -o "$work/shared" $cflags $libs
readelf -d "$work/shared" | grep -q 'NEEDED.*\[libvirtpki\.so\.0\]' \
    || fail "shared: not linked to libvirtpki.so.0"
out=$(LD_LIBRARY_PATH=$lib "$work/shared") || fail "shared: the program failed"
[ "$out" = "$version" ] || fail "shared: printed '$out', expected '$version'"
echo "shared: $out"

# Static: the same flags with the archive instead of the shared library, plus Libs.private.
static_libs=$($pkgconfig --static --libs libvirtpki | sed 's/-lvirtpki\b/-l:libvirtpki.a/')
# shellcheck disable=SC2086
$cc -std=c11 -Wall -Wextra -Werror "$here/installed_version.c" -o "$work/static" \
    $cflags $static_libs
if readelf -d "$work/static" | grep -q 'libvirtpki'; then
    fail "static: still needs libvirtpki.so"
fi
out=$("$work/static") || fail "static: the program failed"
[ "$out" = "$version" ] || fail "static: printed '$out', expected '$version'"
echo "static: $out"
