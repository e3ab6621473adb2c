"""TLS sessions over a connected socket that stays the caller's."""

import ctypes
import os

from typing import TYPE_CHECKING, Optional

from . import _args
from ._types import Bytes, SocketLike, Text
from ._library import lib
from .constants import SessionFlags, SessionWant
from .errors import AgainError, InvalidArgError, last_error

if TYPE_CHECKING:
    from .context import Context


def _fd(sock: SocketLike, blocking: bool = True) -> int:
    """The file descriptor of a socket (anything with fileno()) or an int fd."""
    if isinstance(sock, int):
        number: object = sock
    elif hasattr(sock, "fileno"):
        number = sock.fileno()
    else:
        raise TypeError(f"expected a socket or a file descriptor, not {type(sock).__name__}")
    fd = _args.integer(number, "fd")
    # A Python socket with a timeout is non-blocking underneath; client()/server() do blocking
    # I/O (start_client()/start_server() are for non-blocking sockets).
    if blocking and fd >= 0 and not os.get_blocking(fd):
        raise InvalidArgError(
            "the socket is non-blocking (a Python socket with a timeout is): "
            "call sock.settimeout(None), or set SO_RCVTIMEO/SO_SNDTIMEO for timeouts, "
            "or use Session.start_client/start_server and handshake()"
        )
    return fd


def _flags(confirm: bool) -> int:
    return int(SessionFlags.LIBVIRT_CONFIRM) if confirm else 0


class Session:
    """A TLS session (virPKISession).

    Made with ``Session.client`` or ``Session.server`` (handshake done, blocking socket), or
    with ``Session.start_client``/``start_server`` and then ``handshake()`` until it returns
    True (for event loops: on a non-blocking socket, calls that would block raise AgainError
    and ``wants()`` says whether to wait for readable or writable). The socket is borrowed:
    closing the session sends close_notify but leaves the socket open for its owner (the
    session keeps a reference to the socket object so that it is not collected and closed
    under it). One thread may read while another writes; ``close()`` frees the session, so it
    must not race other calls (``close_notify()`` may: it wakes blocked calls).
    """

    _ptr: Optional[int] = None

    def __init__(self, ptr: int, sock: SocketLike) -> None:
        self._ptr = ptr
        self._sock = sock

    @classmethod
    def client(
        cls,
        ctx: "Context",
        sock: SocketLike,
        hostname: Text,
        port: int = 0,
        confirm: bool = False,
    ) -> "Session":
        """Connects to ``hostname`` over ``sock``; the server is verified by ``ctx``.

        port keys the known-servers entry (0: any port). With confirm, waits for libvirt's
        confirmation byte, so that a server that refuses this client is reported as such.
        """
        fd = _fd(sock)
        name = _args.text(hostname, "hostname")
        port = _args.integer(port, "port")
        ptr = lib.virPKISessionNewClient(ctx._handle, fd, name, port, _flags(confirm))
        if not ptr:
            ctx._fail()
        return cls(ptr, sock)

    @classmethod
    def server(cls, ctx: "Context", sock: SocketLike, confirm: bool = False) -> "Session":
        """Accepts a client over ``sock``; with confirm, sends libvirt's confirmation byte."""
        fd = _fd(sock)
        ptr = lib.virPKISessionNewServer(ctx._handle, fd, _flags(confirm))
        if not ptr:
            ctx._fail()
        return cls(ptr, sock)

    @classmethod
    def start_client(
        cls,
        ctx: "Context",
        sock: SocketLike,
        hostname: Text,
        port: int = 0,
        confirm: bool = False,
    ) -> "Session":
        """Like ``client``, but no I/O yet and the socket may be non-blocking: call
        ``handshake()`` until it returns True."""
        fd = _fd(sock, blocking=False)
        name = _args.text(hostname, "hostname")
        port = _args.integer(port, "port")
        ptr = lib.virPKISessionStartClient(ctx._handle, fd, name, port, _flags(confirm))
        if not ptr:
            ctx._fail()
        return cls(ptr, sock)

    @classmethod
    def start_server(
        cls, ctx: "Context", sock: SocketLike, confirm: bool = False
    ) -> "Session":
        """Like ``server``, but no I/O yet: call ``handshake()`` until it returns True."""
        fd = _fd(sock, blocking=False)
        ptr = lib.virPKISessionStartServer(ctx._handle, fd, _flags(confirm))
        if not ptr:
            ctx._fail()
        return cls(ptr, sock)

    def handshake(self) -> bool:
        """Advances the handshake (libvirt's confirmation byte included): True when done,
        False when it waits for the socket (see ``wants()``); a failure raises, the same on
        every later call. Would-block is a return value, not AgainError, because an event loop
        calls this in a loop until done. The context's validator runs once per handshake."""
        if lib.virPKISessionHandshake(self._handle) == 0:
            return True
        err = last_error()
        if isinstance(err, AgainError):
            return False
        raise err

    def wants(self) -> SessionWant:
        """What the session waits for: SessionWant.READ and/or WRITE (0: nothing)."""
        return SessionWant(_args.check(lib.virPKISessionWants(self._handle)))

    def flush(self) -> bool:
        """Pushes TLS output an earlier write took but could not send: True when none is
        left, False when the socket is full (wait until writable)."""
        try:
            _args.check(lib.virPKISessionWrite(self._handle, None, 0))
        except AgainError:
            return False
        return True

    def close_notify(self) -> bool:
        """Sends close_notify and keeps the session: True when sent, False when the socket is
        full or a write in another thread holds it (call again when writable). On a blocking
        socket, reads and writes blocked in other threads are woken and fail with TLSError; a
        non-blocking socket is never shut down."""
        try:
            _args.check(lib.virPKISessionClose(self._handle))
        except AgainError:
            return False
        return True

    @property
    def _handle(self) -> int:
        if self._ptr is None:
            raise InvalidArgError("the session is closed")
        return self._ptr

    def read(self, size: int = 65536) -> bytes:
        """Up to size decrypted bytes; b"" at the end of the stream (the peer's
        close_notify). A connection closed without close_notify raises TLSError: what was
        received may have been cut short. On a non-blocking socket with nothing to read yet:
        AgainError. ``read(0)`` returns b"" at once, without I/O: that b"" is not the end of
        the stream, so a loop that stops at b"" must never ask for 0 bytes."""
        size = _args.integer(size, "size", (0, 2**63 - 1))
        buf = ctypes.create_string_buffer(size)
        n = _args.check(lib.virPKISessionRead(self._handle, buf, size))
        return buf.raw[:n]

    def write(self, data: Bytes) -> int:
        """Writes data (bytes-like); returns how many bytes were taken: all of them on a
        blocking socket. On a non-blocking one, possibly fewer (at least one; they will be
        sent by later calls, see ``flush()``; the rest is the caller's to write again), or
        AgainError with nothing taken."""
        data = bytes(data)
        return _args.check(lib.virPKISessionWrite(self._handle, data, len(data)))

    def record_peer(self) -> None:
        """Client: records the server's certificate for this session's host and port in the
        context's known-servers store, as a validator's ACCEPT_ALWAYS does inside the
        handshake (same store, the host and port's old entry replaced; StoreError when it
        cannot be written). For a validator that answers after the handshake (virtpki.aio
        does this for coroutine validators). Only what the validator was asked about and
        accepted in this session's completed handshake: InvalidArgError on a server session,
        before the handshake is done, when the validator was not asked (none set, a pinned
        certificate), when the context has no known-servers store, or another one than the
        validator was asked against (set or replaced since)."""
        _args.check(lib.virPKISessionRecordPeer(self._handle, 0))

    def peer_dn(self) -> Optional[str]:
        """The peer's DN (on the server: the client's), in libvirt's format."""
        return _args.owned_string(lib.virPKISessionPeerDN(self._handle))

    def close(self, notify: bool = True) -> None:
        """Sends close_notify (unless notify is False) and frees the session; the socket
        stays open. Closing twice does nothing. The session is freed even if close_notify
        fails; the failure is raised then. On a non-blocking socket call ``close_notify()``
        until it returns True first, then ``close(notify=False)``."""
        ptr, self._ptr = self._ptr, None
        if ptr is None:
            return
        try:
            if notify:
                _args.check(lib.virPKISessionClose(ptr))
        finally:
            lib.virPKISessionFree(ptr)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # close_notify after a failure could fail too and hide the first error.
        self.close(notify=exc_type is None)

    def __del__(self) -> None:
        try:
            self.close(notify=False)
        except Exception:  # noqa: BLE001 - at interpreter exit the module may be half gone
            pass
