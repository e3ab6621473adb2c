"""virtpki: libvirt-style TLS credentials, over libvirtpki.so (ctypes, standard library only).

    import socket, virtpki

    with virtpki.Context() as ctx:
        ctx.add_cert_data_file(virtpki.CertDataType.CA_CERT, "cacert.pem")
        ctx.add_cert_data_file(virtpki.CertDataType.CLIENT_CERT, "clientcert.pem")
        ctx.add_cert_data_file(virtpki.CertDataType.CLIENT_KEY, "clientkey.pem")
        sock = socket.create_connection(("host.example.com", 16514))
        with virtpki.Session.client(ctx, sock, "host.example.com", 16514, confirm=True) as s:
            s.write(b"...")

Failures raise a subclass of VirtPKIError, one per C error code (``ERROR_CLASSES``). The enums
are IntEnum/IntFlag classes (``CertDataType.CA_CERT``), also under their C names
(``VIR_CONNECT_CERT_CA_CERT``). ``library_path`` is the C library in use; ``_library`` says
where it is looked for (the copy packaged with an installed package first, then
``VIRTPKI_LIBRARY``).
"""

from typing import Optional as _Optional

from ._library import lib as _lib
from ._library import path as library_path
from .cert import describe, dn_match, fingerprint, get_dn, version
from .constants import *  # noqa: F403 - the enums, under their Python and C names
from .context import (
    Context,
    connect_add_cert_data,
    connect_add_cert_data_file,
    connect_set_certificate_validator,
    default_context,
)
from .errors import *  # noqa: F403 - VirtPKIError and one class per error code
from .errors import last_error as _last_error
from .session import Session
from . import cert, constants, context, errors, session

# What the package exports, literal where type checkers need it: `mypy --strict` counts a name
# as exported only if listed here (and reads the submodules' lists through `+=`).
__all__ = [
    "library_path",
    "describe",
    "dn_match",
    "fingerprint",
    "get_dn",
    "version",
    "Context",
    "connect_add_cert_data",
    "connect_add_cert_data_file",
    "connect_set_certificate_validator",
    "default_context",
    "Session",
    "reset_last_error",
    "last_error",
    "cert",
    "constants",
    "context",
    "errors",
    "session",
    # Imported on first use (see __getattr__ below); listed so that it is exported.
    "aio",
]
__all__ += constants.__all__
__all__ += errors.__all__

#: The package's version: the crate's (setup.py reads Cargo.toml), which is also the C
#: library's (``version()``).
__version__: str = version()


def reset_last_error() -> None:
    """virPKIResetLastError: clears this thread's last error."""
    _lib.virPKIResetLastError()


def last_error() -> _Optional[VirtPKIError]:  # noqa: F405 - from .errors
    """This thread's last error as an exception (not raised), or None when there is none."""
    if _lib.virPKIGetLastErrorCode() == ErrorCode.OK:
        return None
    return _last_error()


def __getattr__(name: str) -> object:
    """``virtpki.aio`` (asyncio streams) is imported on first use, so that ``import virtpki``
    does not import asyncio."""
    if name == "aio":
        import importlib

        return importlib.import_module(".aio", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
