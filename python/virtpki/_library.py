"""Loading libvirtpki.so and declaring the C prototypes of include/virtpki.h.

The library is looked for, in order:

1. ``libvirtpki.so`` in the package directory: the copy an installed wheel carries
   (``pip install .`` builds and packages it), so an installed package uses its own and
   ignores ``VIRTPKI_LIBRARY``, with a warning when that is set to another file;
2. the file named by the ``VIRTPKI_LIBRARY`` environment variable (an error if it cannot be
   loaded: no silent fallback to another copy);
3. ``libvirtpki.so`` in the directory that holds the package;
4. the build tree of the repository this package sits in (``python/virtpki`` in the
   repository): ``target/release/libvirtpki.so``, then ``target/debug/libvirtpki.so``;
5. the soname ``libvirtpki.so.0`` through the dynamic loader's search path (installed copies).
"""

import ctypes
import ctypes.util
import os
import warnings
from typing import List, Optional, Tuple
from ctypes import (
    CFUNCTYPE,
    POINTER,
    c_char_p,
    c_int,
    c_longlong,
    c_size_t,
    c_uint,
    c_void_p,
)

LIBRARY_FILE = "libvirtpki.so"
SONAME = "libvirtpki.so.0"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_REPOSITORY = os.path.dirname(os.path.dirname(_PACKAGE_DIR))


def candidates() -> List[str]:
    """The files tried, in order: VIRTPKI_LIBRARY comes after the first (the packaged copy),
    the soname after them all."""
    return [
        os.path.join(_PACKAGE_DIR, LIBRARY_FILE),
        os.path.join(os.path.dirname(_PACKAGE_DIR), LIBRARY_FILE),
        os.path.join(_REPOSITORY, "target", "release", LIBRARY_FILE),
        os.path.join(_REPOSITORY, "target", "debug", LIBRARY_FILE),
    ]


def find_library() -> str:
    """The path (or soname) of the library to load, following the order above."""
    packaged, *rest = candidates()
    explicit = os.environ.get("VIRTPKI_LIBRARY")
    if os.path.isfile(packaged):
        # Said, not silent: someone who set the variable expects that library to be used.
        if explicit and os.path.realpath(explicit) != os.path.realpath(packaged):
            warnings.warn(
                f"VIRTPKI_LIBRARY={explicit} is ignored: this installed virtpki package loads "
                f"the library packaged with it, {packaged}",
                stacklevel=2,
            )
        return packaged
    if explicit:
        return explicit
    for path in rest:
        if os.path.isfile(path):
            return path
    # ctypes.util.find_library looks in ldconfig's cache; CDLL also honours LD_LIBRARY_PATH.
    return ctypes.util.find_library("virtpki") or SONAME


def load() -> Tuple[ctypes.CDLL, str]:
    """The library, loaded, and where from; ImportError naming the path if it cannot be."""
    path = find_library()
    try:
        return ctypes.CDLL(path), path
    except OSError as e:
        raise ImportError(
            f"virtpki: cannot load the C library {path!r} ({e}); build it with "
            f"`cargo build --release --lib`, install the package with `pip install .` (its wheel "
            f"carries the library) or set VIRTPKI_LIBRARY to its path"
        ) from e


# Callback types of the header.
VALIDATOR = CFUNCTYPE(c_int, c_char_p, c_char_p, c_int, c_uint, c_void_p)
FREE_CALLBACK = CFUNCTYPE(None, c_void_p)

# Opaque handles are plain pointers for ctypes. Strings the caller must free are c_void_p
# (ctypes would copy a c_char_p and lose the pointer); static or borrowed ones are c_char_p.
_ctx = c_void_p
_session = c_void_p
_owned_str = c_void_p

# name: (restype, argtypes), in the header's order.
PROTOTYPES = {
    "virPKICertGetDN": (_owned_str, [c_char_p]),
    "virPKICertFingerprint": (_owned_str, [c_char_p]),
    "virPKICertDescribe": (_owned_str, [c_char_p]),
    "virPKIDNMatch": (c_int, [c_char_p, c_char_p]),
    "virPKIDefaultContext": (_ctx, []),
    "virConnectAddCertData": (c_int, [c_int, c_char_p]),
    "virConnectAddCertDataFile": (c_int, [c_int, c_char_p]),
    "virConnectSetCertificateValidator": (c_int, [VALIDATOR, c_void_p, FREE_CALLBACK]),
    "virPKIContextNew": (_ctx, [c_uint]),
    "virPKIContextFree": (None, [_ctx]),
    "virPKIContextAddCertData": (c_int, [_ctx, c_int, c_char_p]),
    "virPKIContextAddCertDataFile": (c_int, [_ctx, c_int, c_char_p]),
    "virPKIContextLoadDefault": (c_int, [_ctx, c_int, c_char_p, c_uint]),
    "virPKIContextSetCertificateValidator": (c_int, [_ctx, VALIDATOR, c_void_p, FREE_CALLBACK]),
    "virPKIContextSetKnownServersFile": (c_int, [_ctx, c_char_p]),
    "virPKIContextHasKnownServers": (c_int, [_ctx]),
    "virPKIContextSetAllowedDNList": (c_int, [_ctx, POINTER(c_char_p), c_int]),
    "virPKIContextSetVerifyTime": (c_int, [_ctx, c_longlong]),
    "virPKIContextReload": (c_int, [_ctx, c_uint]),
    "virPKIContextSetExpiryHorizon": (c_int, [_ctx, c_uint]),
    "virPKIContextAddIdentity": (c_int, [_ctx, c_int, c_char_p, c_char_p, c_uint]),
    "virPKIContextAddIdentityFile": (c_int, [_ctx, c_int, c_char_p, c_char_p, c_uint]),
    "virPKIGetLastErrorCode": (c_int, []),
    "virPKIGetLastErrorMessage": (c_char_p, []),
    "virPKIResetLastError": (None, []),
    "virPKIFree": (None, [c_void_p]),
    "virPKIVersion": (c_char_p, []),
    "virPKISessionRecordPeer": (c_int, [_session, c_uint]),
    "virPKISessionNewClient": (_session, [_ctx, c_int, c_char_p, c_int, c_uint]),
    "virPKISessionNewServer": (_session, [_ctx, c_int, c_uint]),
    "virPKISessionStartClient": (_session, [_ctx, c_int, c_char_p, c_int, c_uint]),
    "virPKISessionStartServer": (_session, [_ctx, c_int, c_uint]),
    "virPKISessionHandshake": (c_int, [_session]),
    "virPKISessionWants": (c_int, [_session]),
    "virPKISessionRead": (c_longlong, [_session, c_void_p, c_size_t]),
    "virPKISessionWrite": (c_longlong, [_session, c_void_p, c_size_t]),
    "virPKISessionPeerDN": (_owned_str, [_session]),
    "virPKISessionClose": (c_int, [_session]),
    "virPKISessionFree": (None, [_session]),
    "virPKIContextVerifyServer": (c_int, [_ctx, c_char_p, c_int, c_char_p, c_uint]),
    "virPKIContextVerifyClient": (c_int, [_ctx, c_char_p, POINTER(c_void_p), c_uint]),
    "virPKIContextCheck": (c_int, [_ctx, c_int, POINTER(c_void_p)]),
}


def declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Gives each function of the header its argument and result types."""
    for name, (restype, argtypes) in PROTOTYPES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


lib, path = load()
declare(lib)


def take_string(ptr: Optional[int]) -> Optional[str]:
    """Copies a string the library returned (a c_void_p value) and frees it; None for NULL."""
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib.virPKIFree(ptr)
