"""Contexts, certificate validators, the default context and the virConnect* functions."""

import ctypes
import datetime
import inspect
import itertools
import threading
from typing import Any, Callable, Dict, NoReturn, Optional, Sequence, Tuple, Union

from . import _args
from ._types import PathArg, Text, Validator
from ._library import FREE_CALLBACK, VALIDATOR, lib, take_string
from .constants import ErrorCode, ValidateFlags, ValidatorResult
from .errors import InvalidArgError, last_error

# --- Validators --------------------------------------------------------------------------
#
# The library calls one pair of C functions (made once, kept for the life of the module); the
# opaque pointer it passes back is a key into _validators, which holds the Python callables.
# An entry lives from the moment it is set until the library calls the free callback (when
# the validator is replaced or its context freed), so the library can never call a callable
# that has been collected. (No lock: single dict operations are atomic under the GIL, and a
# lock could deadlock when a garbage-collected Context frees its validator inside it.)


class _Validator:
    """A Python validator known to the library by its key."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.error: Optional[BaseException] = None  # what it last raised, for RejectedError
        # A coroutine function cannot answer inside the handshake: virtpki.aio awaits it.
        self.is_async = inspect.iscoroutinefunction(func)


# virtpki.aio's hook (``take``): while it advances a handshake on this thread, a coroutine
# validator's question goes to it (it answers ACCEPT_ONCE for now and awaits the coroutine
# before the session is handed out); anywhere else a coroutine validator rejects.
_deferred = threading.local()


_validators: Dict[int, _Validator] = {}
_next_key = itertools.count(1)


def _register(func: object) -> Tuple[int, _Validator]:
    if not callable(func):
        raise TypeError(f"a validator must be callable, not {type(func).__name__}")
    entry = _Validator(func)
    key = next(_next_key)
    _validators[key] = entry
    return key, entry


def _answer(value: object) -> int:
    """What the library understands: ACCEPT_ONCE or ACCEPT_ALWAYS, else REJECT.

    A bool is not an answer, though Python counts True as 1: a validator that returns
    True ("the check passed") has not said whether once or always, so it rejects.
    """
    accepted = (ValidatorResult.ACCEPT_ONCE, ValidatorResult.ACCEPT_ALWAYS)
    if isinstance(value, int) and not isinstance(value, bool) and value in accepted:
        return int(value)
    return int(ValidatorResult.REJECT)


def _call_validator(
    hostname: bytes, cert: bytes, trusted: int, flags: int, opaque: Optional[int]
) -> int:
    entry = _validators.get(opaque) if opaque is not None else None
    if entry is None:
        return int(ValidatorResult.REJECT)
    try:
        args = (hostname.decode("utf-8"), cert.decode("utf-8"), bool(trusted), ValidateFlags(flags))
        if entry.is_async:
            take = getattr(_deferred, "take", None)
            if take is None:
                raise TypeError("a coroutine validator is only awaited by virtpki.aio connections")
            answer: int = take(entry, args)
            return answer
        return _answer(entry.func(*args))
    except BaseException as e:  # noqa: BLE001 - nothing may propagate into C; it rejects.
        entry.error = e
        return int(ValidatorResult.REJECT)


def _free_validator(opaque: Optional[int]) -> None:
    try:
        if opaque is not None:
            _validators.pop(opaque, None)
    except Exception:  # noqa: BLE001 - at interpreter exit the module may be half gone
        pass


_C_VALIDATOR = VALIDATOR(_call_validator)
_C_FREE = FREE_CALLBACK(_free_validator)


def _set_validator(
    setter: Callable[..., int], func: Optional[Validator], *handle: int
) -> Optional[_Validator]:
    """Installs func (None removes the validator) with setter(*handle, cb, opaque, freecb)."""
    if func is None:
        # NULL function pointers (ctypes takes no None for a CFUNCTYPE argument).
        _args.check(setter(*handle, VALIDATOR(), None, FREE_CALLBACK()))
        return None
    key, entry = _register(func)
    if setter(*handle, _C_VALIDATOR, key, _C_FREE) == -1:
        _validators.pop(key, None)
        raise last_error()
    return entry


# --- Contexts ----------------------------------------------------------------------------


class Context:
    """A credential context (virPKIContext): CA certificates, CRLs, identities and policy.

    ``Context(flags)`` makes a new one (ContextFlags); ``default_context()`` gives the
    process-wide one. Use it as a context manager or call ``close()``; a context that is
    garbage-collected is freed too. Sessions made from a context keep what they need of it:
    closing the context does not break them.
    """

    _ptr: Optional[int] = None
    _owned = False
    _validator: Optional[_Validator] = None

    def __init__(self, flags: int = 0) -> None:
        ptr = lib.virPKIContextNew(_args.integer(flags, "flags", _args.UINT))
        self._ptr = _args.check_ptr(ptr)
        self._owned = True

    @classmethod
    def _borrow(cls, ptr: int) -> "Context":
        ctx = cls.__new__(cls)
        ctx._ptr = ptr
        return ctx

    @property
    def _handle(self) -> int:
        if self._ptr is None:
            raise InvalidArgError("the context is closed")
        return self._ptr

    def _check(self, rc: int) -> int:
        """Like _args.check, chaining what a Python validator raised to the RejectedError."""
        if rc == -1:
            self._fail()
        return rc

    def _fail(self) -> NoReturn:
        error = last_error()
        entry = self._validator
        if error.code == ErrorCode.REJECTED and entry is not None and entry.error is not None:
            error.__cause__, entry.error = entry.error, None
        raise error

    # Credentials.

    def add_cert_data(self, data_type: int, data: Text) -> None:
        """Adds PEM text of a CertDataType; all or nothing."""
        data_type = _args.integer(data_type, "data_type")
        text = _args.text(data, "data")
        self._check(lib.virPKIContextAddCertData(self._handle, data_type, text))

    def add_cert_data_file(self, data_type: int, path: PathArg) -> None:
        """Adds a PEM or DER file of a CertDataType; all or nothing."""
        data_type = _args.integer(data_type, "data_type")
        name = _args.path(path, "path")
        self._check(lib.virPKIContextAddCertDataFile(self._handle, data_type, name))

    def add_identity(self, role: int, cert_pem: Text, key_pem: Text, flags: int = 0) -> None:
        """Adds a further identity of a Role: a certificate (chain) and its key, as a pair.

        The first identity (what add_cert_data of a certificate or key type replaces) stays;
        a server presents the first identity, in the order added, whose key can sign with a
        scheme the client offered, as GnuTLS and QEMU 10.2 do. All or nothing;
        KeyMismatchError for a key of another certificate.
        """
        role = _args.integer(role, "role")
        flags = _args.integer(flags, "flags", _args.UINT)
        cert = _args.text(cert_pem, "cert_pem")
        key = _args.text(key_pem, "key_pem")
        self._check(lib.virPKIContextAddIdentity(self._handle, role, cert, key, flags))

    def add_identity_file(
        self, role: int, cert_path: PathArg, key_path: PathArg, flags: int = 0
    ) -> None:
        """add_identity from a certificate file and a key file; reload reads both again."""
        role = _args.integer(role, "role")
        flags = _args.integer(flags, "flags", _args.UINT)
        cert = _args.path(cert_path, "cert_path")
        key = _args.path(key_path, "key_path")
        self._check(lib.virPKIContextAddIdentityFile(self._handle, role, cert, key, flags))

    def load_default(self, role: int, pkipath: Optional[PathArg] = None, flags: int = 0) -> None:
        """Loads libvirt's default files for a Role (pkipath None: libvirt's rules)."""
        role = _args.integer(role, "role")
        flags = _args.integer(flags, "flags", _args.UINT)
        directory = _args.path(pkipath, "pkipath")
        self._check(lib.virPKIContextLoadDefault(self._handle, role, directory, flags))

    def reload(self, flags: int = 0) -> None:
        """Reads again every file the context loaded, all or nothing (text added stays).

        Unless ContextFlags.NO_SANITY, a set with an error finding is refused (the error
        names the file and the finding) and the old credentials stay. Sessions already
        established keep what they started with; later ones use the new set.
        """
        flags = _args.integer(flags, "flags", _args.UINT)
        self._check(lib.virPKIContextReload(self._handle, flags))

    # Policy.

    def set_validator(self, validator: Optional[Validator]) -> None:
        """Sets the certificate validator, a callable (hostname, cert_pem, trusted, flags).

        It answers a ValidatorResult (or its int); anything else, or raising, rejects the
        certificate; what it raised becomes the ``__cause__`` of the RejectedError. None
        removes the validator.
        """
        setter = lib.virPKIContextSetCertificateValidator
        self._validator = _set_validator(setter, validator, self._handle)

    def set_known_servers_file(self, path: PathArg) -> None:
        """Records accepted-always certificates in this file (and trusts those in it)."""
        self._check(lib.virPKIContextSetKnownServersFile(self._handle, _args.path(path, "path")))

    def has_known_servers(self) -> bool:
        """Whether the context has a known-servers store, however it was set (this object,
        the C API on the same context): an ACCEPT_ALWAYS answer is recorded in it; with none,
        it is accepted this time only. The library's answer, never a copy kept here."""
        return self._check(lib.virPKIContextHasKnownServers(self._handle)) == 1

    def set_allowed_dn_list(self, patterns: Optional[Sequence[str]]) -> None:
        """tls_allowed_dn_list: a list of patterns ([] allows nobody); None: no DN check."""
        if patterns is None:
            self._check(lib.virPKIContextSetAllowedDNList(self._handle, None, -1))
            return
        if isinstance(patterns, (str, bytes)):
            raise TypeError("patterns must be a list of strings, not one string")
        encoded = [_args.text(p, f"patterns[{i}]") for i, p in enumerate(patterns)]
        array = (ctypes.c_char_p * len(encoded))(*encoded)
        count = _args.integer(len(encoded), "len(patterns)")
        self._check(lib.virPKIContextSetAllowedDNList(self._handle, array, count))

    def set_verify_time(self, when: Union[None, int, float, datetime.datetime]) -> None:
        """The verification time: seconds since the epoch or an aware datetime; 0 or None:
        the system clock."""
        if when is None:
            when = 0
        elif isinstance(when, datetime.datetime):
            if when.tzinfo is None:
                raise ValueError("a verification time needs a time zone (tzinfo)")
            when = when.timestamp()
        if isinstance(when, float):
            when = int(when)
        when = _args.integer(when, "when", _args.LONGLONG)
        self._check(lib.virPKIContextSetVerifyTime(self._handle, when))

    def set_expiry_horizon(self, days: int) -> None:
        """check() (and loading) warns of every certificate and CRL that expires within
        ``days`` days of the verification time: a line with "expires" and the days left.
        30 by default; 0 turns the warning off. More than 3650 raises InvalidArgError."""
        days = _args.integer(days, "days", _args.UINT)
        self._check(lib.virPKIContextSetExpiryHorizon(self._handle, days))

    # Verification.

    def verify_server(self, hostname: Text, chain_pem: Text, port: int = 0, flags: int = 0) -> None:
        """Client role: accepts the server's chain (leaf first) for hostname, or raises."""
        port = _args.integer(port, "port")
        flags = _args.integer(flags, "flags", _args.UINT)
        host = _args.text(hostname, "hostname")
        chain = _args.text(chain_pem, "chain_pem")
        self._check(lib.virPKIContextVerifyServer(self._handle, host, port, chain, flags))

    def verify_client(self, chain_pem: Text, flags: int = 0) -> Optional[str]:
        """Server role: accepts the client's chain and returns its DN, or raises."""
        flags = _args.integer(flags, "flags", _args.UINT)
        chain = _args.text(chain_pem, "chain_pem")
        dn = ctypes.c_void_p()
        self._check(lib.virPKIContextVerifyClient(self._handle, chain, ctypes.byref(dn), flags))
        return take_string(dn.value)

    def check(self, role: int) -> Tuple[bool, str]:
        """libvirt's load-time sanity checks for a Role: (ok, report), one finding a line.

        ok is False when there is an error (warnings allowed).
        """
        role = _args.integer(role, "role")
        report = ctypes.c_void_p()
        rc = lib.virPKIContextCheck(self._handle, role, ctypes.byref(report))
        text = take_string(report.value)
        if text is None:
            if rc == -1:
                self._fail()  # not a verdict: the call itself failed
            text = ""
        return rc == 0, text

    # Lifetime.

    def close(self) -> None:
        """Frees the context; closing twice does nothing, closing the default one too."""
        if not self._owned:
            return
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.virPKIContextFree(ptr)

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the module may be half gone
            pass

    def __repr__(self) -> str:
        state = "closed" if self._ptr is None else ("default" if not self._owned else "open")
        return f"<virtpki.Context {state}>"


# --- The default context and the proposal's process-wide functions ------------------------

_default = None
_default_lock = threading.Lock()


def default_context() -> Context:
    """The process-wide context that the virConnect* functions act on (never freed)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Context._borrow(_args.check_ptr(lib.virPKIDefaultContext()))
        return _default


def connect_add_cert_data(data_type: int, data: Text) -> None:
    """virConnectAddCertData: adds PEM text to the default context."""
    data_type = _args.integer(data_type, "data_type")
    default_context()._check(lib.virConnectAddCertData(data_type, _args.text(data, "data")))


def connect_add_cert_data_file(data_type: int, path: PathArg) -> None:
    """virConnectAddCertDataFile: adds a PEM or DER file to the default context."""
    data_type = _args.integer(data_type, "data_type")
    default_context()._check(lib.virConnectAddCertDataFile(data_type, _args.path(path, "path")))


def connect_set_certificate_validator(validator: Optional[Validator]) -> None:
    """virConnectSetCertificateValidator: the default context's validator (None removes it)."""
    setter = lib.virConnectSetCertificateValidator
    default_context()._validator = _set_validator(setter, validator)
