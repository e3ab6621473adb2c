"""asyncio streams over virtpki's non-blocking sessions: ``open_connection``, ``start_server``.

    reader, writer = await virtpki.aio.open_connection(ctx, "host.example.com", 16514,
                                                       confirm=True, timeout=30)
    writer.write(b"...")
    await writer.drain()
    data = await reader.read(4096)
    writer.close()
    await writer.wait_closed()

The socket is non-blocking and every call happens on the event loop's thread: the loop's
``add_reader``/``add_writer`` wait for what ``Session.wants()`` says; no threads do I/O. Each
connection owns its socket (the one it made, or the ``sock`` given): it is closed with the
connection, and when opening fails or is cancelled (``timeout``, ``asyncio.wait_for``).

The end of the stream is the peer's close_notify: ``read()`` returns b"". A connection closed
without close_notify raises TLSError (what arrived may have been cut short), also from
``readexactly`` and ``readline``.

A context's validator may be a coroutine function (``async def``). The library asks the
validator inside the handshake, where nothing can be awaited; so a connection opened here
answers the library "accept once" for the moment, finishes the handshake (the library's own
verification decides first: a certificate it refuses is refused, the validator is not asked),
then awaits the coroutine once, with the same arguments, before it returns the streams. Only
ACCEPT_ONCE or ACCEPT_ALWAYS accept; anything else, or raising, fails with RejectedError (what
it raised is its ``__cause__``) and closes the connection before a byte of application data is
read or written. ACCEPT_ALWAYS is recorded as a plain validator's is: (host, port) -> the
server's certificate in the context's known-servers store, replacing that host and port's
entry (``Session.record_peer``), so the next connection to it is trusted by the entry; with no
store set (``Context.has_known_servers()``: the library's answer, a store set through C on the
same context included) it is accepted this time only. A store that cannot be written fails
``open_connection`` with StoreError, and a store set or replaced while the coroutine was
awaited (the validator was told what the earlier one knew) with InvalidArgError, the
connection closed either way. Outside this module (a blocking
``Session``), a coroutine validator rejects.
"""

import asyncio
import logging
import socket
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Set, Tuple

from .constants import SessionWant, ValidatorResult
from .context import Context, _answer, _deferred, _Validator
from .errors import AgainError, RejectedError
from .session import Session

__all__ = ["Reader", "Writer", "Server", "open_connection", "start_server"]

_logger = logging.getLogger(__name__)

#: The largest piece handed to one Session.write call.
_CHUNK = 1 << 16


class _Connection:
    """A session, its socket and the loop's readiness callbacks for its fd.

    Readers and writers may wait at the same time (full duplex); one callback per direction
    wakes every waiter of that direction, since the loop keeps one callback per fd and kind.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, session: Session
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.session = session
        self.fd = sock.fileno()
        self.waiting: Dict[SessionWant, List["asyncio.Future[None]"]] = {
            SessionWant.READ: [],
            SessionWant.WRITE: [],
        }
        self.closed = False
        self.peer_cert: Optional[str] = None
        self.peer_dn: Optional[str] = None

    def _ready(self, kind: SessionWant) -> None:
        waiters, self.waiting[kind] = self.waiting[kind], []
        self._unwatch(kind)
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _unwatch(self, kind: SessionWant) -> None:
        if kind == SessionWant.READ:
            self.loop.remove_reader(self.fd)
        else:
            self.loop.remove_writer(self.fd)

    async def wait(self, wants: int) -> None:
        """Until the socket is ready for one of ``wants`` (READ when the session says 0)."""
        if self.closed:
            raise ConnectionAbortedError("the connection is closed")
        if not wants:
            wants = SessionWant.READ
        fut: "asyncio.Future[None]" = self.loop.create_future()
        for kind in (SessionWant.READ, SessionWant.WRITE):
            if wants & kind:
                if not self.waiting[kind]:
                    if kind == SessionWant.READ:
                        self.loop.add_reader(self.fd, self._ready, kind)
                    else:
                        self.loop.add_writer(self.fd, self._ready, kind)
                self.waiting[kind].append(fut)
        try:
            await fut
        finally:
            # Cancelled (or woken by the other direction): leave nothing registered for it.
            for kind in (SessionWant.READ, SessionWant.WRITE):
                if fut in self.waiting[kind]:
                    self.waiting[kind].remove(fut)
                    if not self.waiting[kind] and not self.closed:
                        self._unwatch(kind)

    async def handshake(self, ctx: Context) -> None:
        """Drives the handshake to its end, then awaits a coroutine validator (see the module)."""
        asked: List[Tuple[_Validator, _Args]] = []

        def take(entry: _Validator, args: _Args) -> int:
            asked.append((entry, args))
            self.peer_cert = args[1]
            if entry.is_async:
                return int(ValidatorResult.ACCEPT_ONCE)  # decided below, before any data
            return _answer(entry.func(*args))

        while True:
            _deferred.take = take
            try:
                done = self.session.handshake()
            except RejectedError as e:
                entry = ctx._validator
                if entry is not None and entry.error is not None:
                    e.__cause__, entry.error = entry.error, None
                raise
            finally:
                _deferred.take = None
            if done:
                break
            await self.wait(self.session.wants())
        for entry, args in asked:
            if entry.is_async:
                answer = await _ask(entry, args)
                # As the library does for a plain validator: recorded in the context's
                # store, or, with none set, accepted this time only. The library says
                # whether there is one: a store set through C on this context counts.
                if answer == ValidatorResult.ACCEPT_ALWAYS and ctx.has_known_servers():
                    self.session.record_peer()
        self.peer_dn = self.session.peer_dn()

    async def recv(self, size: int) -> bytes:
        while True:
            try:
                return self.session.read(size)
            except AgainError:
                await self.wait(self.session.wants())

    def close(self) -> None:
        """Frees the session and closes the socket; waiters fail. Twice does nothing."""
        if self.closed:
            return
        self.closed = True
        for kind in (SessionWant.READ, SessionWant.WRITE):
            waiters, self.waiting[kind] = self.waiting[kind], []
            if waiters:
                self._unwatch(kind)
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(ConnectionAbortedError("the connection was closed"))
        try:
            self.session.close(notify=False)
        finally:
            self.sock.close()


#: A validator's arguments: (hostname, cert_pem, trusted, flags).
_Args = Tuple[str, str, bool, int]


async def _ask(entry: _Validator, args: _Args) -> int:
    """Awaits a coroutine validator once: ACCEPT_ONCE or ACCEPT_ALWAYS; anything else
    raises RejectedError."""
    hostname = args[0]
    try:
        answer = await entry.func(*args)
    except Exception as e:
        raise RejectedError(
            f"the certificate validator raised for {hostname!r}: {type(e).__name__}: {e}"
        ) from e
    result = _answer(answer)
    if result == ValidatorResult.REJECT:
        raise RejectedError(
            f"the certificate validator rejected the certificate of {hostname!r} "
            f"(it answered {answer!r})"
        )
    return result


class Reader:
    """The reading half, like asyncio.StreamReader: read, readexactly, readuntil, readline."""

    def __init__(self, conn: _Connection, limit: int = 2**16) -> None:
        self._conn = conn
        self._limit = limit
        self._buf = bytearray()
        self._eof = False
        self._busy = False

    async def _fill(self) -> None:
        if self._busy:
            raise RuntimeError("another coroutine is already reading from this stream")
        self._busy = True
        try:
            data = await self._conn.recv(_CHUNK)
        finally:
            self._busy = False
        if data:
            self._buf += data
        else:
            self._eof = True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def read(self, n: int = -1) -> bytes:
        """Up to n bytes (n < 0: all until the end of the stream); b"" at the end."""
        if n == 0:
            return b""
        if n < 0:
            while not self._eof:
                await self._fill()
            return self._take(len(self._buf))
        if not self._buf and not self._eof:
            await self._fill()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly n bytes; asyncio.IncompleteReadError when the stream ends before."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        while len(self._buf) < n:
            if self._eof:
                partial = self._take(len(self._buf))
                raise asyncio.IncompleteReadError(partial, n)
            await self._fill()
        return self._take(n)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Up to and including separator; asyncio.IncompleteReadError at the end of the stream,
        asyncio.LimitOverrunError when none comes within the limit (the data stays)."""
        if not separator:
            raise ValueError("separator should be at least one-byte string")
        while True:
            index = self._buf.find(separator)
            if index > self._limit:
                raise asyncio.LimitOverrunError("separator found beyond the limit", index)
            if index >= 0:
                return self._take(index + len(separator))
            if len(self._buf) > self._limit:
                raise asyncio.LimitOverrunError("no separator within the limit", len(self._buf))
            if self._eof:
                raise asyncio.IncompleteReadError(self._take(len(self._buf)), None)
            await self._fill()

    async def readline(self) -> bytes:
        """One line with its b"\\n"; at the end of the stream what is left (b"" when nothing);
        ValueError (the line dropped) when it is longer than the limit."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            return e.partial
        except asyncio.LimitOverrunError as e:
            # As StreamReader: the over-long line (or what was buffered) is dropped.
            if self._buf.startswith(b"\n", e.consumed):
                del self._buf[: e.consumed + 1]
            else:
                self._buf.clear()
            raise ValueError(e.args[0]) from None

    def at_eof(self) -> bool:
        """True when the peer's close_notify has arrived and everything was read."""
        return self._eof and not self._buf

    def __aiter__(self) -> "Reader":
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class Writer:
    """The writing half, like asyncio.StreamWriter: write, drain, write_eof, close,
    wait_closed, get_extra_info. ``write`` sends what the socket takes at once; the loop sends
    the rest, ``drain`` waits for it (and raises what sending met). ``close`` does not wait for
    the peer's close_notify: for a clean end on both sides, ``write_eof()``, read until b"",
    then close."""

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self._buf = bytearray()
        self._flusher: Optional["asyncio.Task[None]"] = None
        self._closer: Optional["asyncio.Task[None]"] = None
        self._error: Optional[Exception] = None
        # "wanted" after write_eof(), "sent" once close_notify is out
        self._eof: Optional[str] = None

    def _push(self) -> bool:
        """Non-blocking: True when everything, TLS output included, has gone to the socket
        (and close_notify, after write_eof())."""
        session = self._conn.session
        try:
            while self._buf:
                taken = session.write(memoryview(self._buf)[:_CHUNK])
                del self._buf[:taken]
        except AgainError:
            return False
        if not session.flush():
            return False
        if self._eof == "wanted":
            if not session.close_notify():
                return False
            self._eof = "sent"
        return True

    async def _flush(self) -> None:
        try:
            while not self._push():
                await self._conn.wait(self._conn.session.wants() or SessionWant.WRITE)
        except Exception as e:  # noqa: BLE001 - kept for drain(), as StreamWriter does
            self._error = e

    def write(self, data: bytes) -> None:
        """Queues data (bytes-like) and sends what the socket takes now."""
        if self._closer is not None:
            raise ConnectionResetError("the writer is closing")
        if self._eof is not None:
            raise ConnectionResetError("write_eof() was called: no more data can be sent")
        if self._error is not None:
            raise self._error
        self._buf += data
        self._send()

    def _send(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            return
        try:
            if self._push():
                return
        except Exception as e:  # noqa: BLE001 - raised by drain(), as StreamWriter does
            self._error = e
            return
        self._flusher = self._conn.loop.create_task(self._flush())

    def writelines(self, data: Iterable[bytes]) -> None:
        """write() of each item."""
        for item in data:
            self.write(item)

    async def drain(self) -> None:
        """Waits until everything written has gone to the socket; raises what sending met."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._error is not None:
            raise self._error

    def can_write_eof(self) -> bool:
        """True: write_eof() sends close_notify."""
        return True

    def write_eof(self) -> None:
        """Sends close_notify after what is queued: the peer's reads end (b""), this side can
        still read until the peer's close_notify. ``drain`` waits for it to be sent."""
        if self._closer is None and self._eof is None:
            self._eof = "wanted"
            self._send()

    def is_closing(self) -> bool:
        """True once close() has been called."""
        return self._closer is not None

    def close(self) -> None:
        """Sends what is queued and close_notify, then frees the session and closes the
        socket (in the background: ``wait_closed`` waits for it)."""
        if self._closer is None:
            self._closer = self._conn.loop.create_task(self._close())

    async def _close(self) -> None:
        conn = self._conn
        try:
            if self._flusher is not None:
                await self._flusher
            if self._error is None and not conn.closed and self._eof != "sent":
                while not conn.session.close_notify():
                    await conn.wait(conn.session.wants() or SessionWant.WRITE)
        except Exception as e:  # noqa: BLE001 - the peer may be gone; closing goes on
            _logger.debug("close_notify not sent: %s", e)
        finally:
            conn.close()

    async def wait_closed(self) -> None:
        """Waits until close() has closed the socket."""
        if self._closer is not None:
            await asyncio.shield(self._closer)

    def abort(self) -> None:
        """Closes at once: nothing more is sent (no close_notify), the socket is closed."""
        self._conn.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """'peer_dn': the peer's DN in libvirt's format; 'peercert': the server's certificate
        (PEM) when the context's validator was asked about it, else None; 'session': the
        Session; 'socket', 'sockname', 'peername'."""
        conn = self._conn
        if name == "peer_dn":
            return conn.peer_dn
        if name == "peercert":
            return conn.peer_cert
        if name == "session":
            return conn.session
        if name == "socket":
            return conn.sock
        try:
            if name == "sockname":
                return conn.sock.getsockname()
            if name == "peername":
                return conn.sock.getpeername()
        except OSError:
            return default
        return default


async def _tcp_connect(
    loop: asyncio.AbstractEventLoop, host: str, port: int
) -> socket.socket:
    """A connected non-blocking socket to the first address of host that answers."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: Optional[OSError] = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as e:
            sock.close()
            last = e
        except BaseException:
            sock.close()
            raise
    raise last if last is not None else OSError(f"no address for {host!r}")


async def _established(
    ctx: Context, sock: socket.socket, start: Callable[[socket.socket], Session], limit: int
) -> Tuple[Reader, Writer]:
    """Handshake on sock (closed on any failure or cancellation); the streams."""
    conn = None
    try:
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        conn = _Connection(loop, sock, start(sock))
        await conn.handshake(ctx)
    except BaseException:
        if conn is not None:
            conn.close()
        else:
            sock.close()
        raise
    return Reader(conn, limit), Writer(conn)


async def open_connection(
    ctx: Context,
    host: Optional[str] = None,
    port: Optional[int] = None,
    *,
    confirm: bool = False,
    sock: Optional[socket.socket] = None,
    hostname: Optional[str] = None,
    timeout: Optional[float] = None,
    limit: int = 2**16,
) -> Tuple[Reader, Writer]:
    """Connects to host:port (or over ``sock``, connected, which the connection then owns)
    and does the TLS handshake; the server is verified by ``ctx`` for ``hostname`` (default:
    host), the known-servers entry keyed by port (0 or None: any port). With confirm, waits for
    libvirt's confirmation byte. ``timeout`` bounds connecting and the handshake
    (asyncio.TimeoutError). Returns (Reader, Writer); failures raise VirtPKIError or OSError,
    the socket closed."""
    if timeout is not None:
        return await asyncio.wait_for(
            open_connection(
                ctx, host, port, confirm=confirm, sock=sock, hostname=hostname, limit=limit
            ),
            timeout,
        )
    name = hostname if hostname is not None else host
    if name is None:
        if sock is not None:
            sock.close()
        raise ValueError("open_connection needs host or hostname (the name to verify)")
    if sock is None:
        if host is None or port is None:
            raise ValueError("open_connection needs host and port, or sock")
        sock = await _tcp_connect(asyncio.get_running_loop(), host, port)

    def start(s: socket.socket) -> Session:
        return Session.start_client(ctx, s, name, port or 0, confirm=confirm)

    return await _established(ctx, sock, start, limit)


Handler = Callable[[Reader, Writer], Awaitable[Any]]


class Server:
    """Like asyncio.Server: the listening sockets and the connections' tasks.

    A client whose handshake fails (or does not finish within handshake_timeout) is dropped
    and logged on the "virtpki.aio" logger; the handler's streams are closed when it returns.
    """

    def __init__(
        self,
        ctx: Context,
        handler: Handler,
        sockets: List[socket.socket],
        confirm: bool,
        handshake_timeout: Optional[float],
        limit: int,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._ctx = ctx
        self._handler = handler
        self._sockets = sockets
        self._confirm = confirm
        self._handshake_timeout = handshake_timeout
        self._limit = limit
        self._accepting = [self._loop.create_task(self._accept(s)) for s in sockets]
        self._clients: Set["asyncio.Task[None]"] = set()
        self._closed = self._loop.create_future()

    @property
    def sockets(self) -> Tuple[socket.socket, ...]:
        """The listening sockets (none once closed)."""
        return () if self._closed.done() else tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the server runs on."""
        return self._loop

    def is_serving(self) -> bool:
        """True until close()."""
        return not self._closed.done()

    async def _accept(self, lsock: socket.socket) -> None:
        while True:
            try:
                sock, _ = await self._loop.sock_accept(lsock)
            except (ConnectionAbortedError, InterruptedError):
                continue
            except OSError as e:  # e.g. out of file descriptors: wait, do not spin
                _logger.warning("accept failed: %s", e)
                await asyncio.sleep(0.1)
                continue
            task = self._loop.create_task(self._serve(sock))
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)

    async def _serve(self, sock: socket.socket) -> None:
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        confirm = self._confirm

        def start(s: socket.socket) -> Session:
            return Session.start_server(self._ctx, s, confirm=confirm)

        try:
            reader, writer = await asyncio.wait_for(
                _established(self._ctx, sock, start, self._limit), self._handshake_timeout
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - one client's failure is not the server's
            _logger.warning("handshake with %s failed: %s", peer, e)
            return
        try:
            await self._handler(reader, writer)
        except asyncio.CancelledError:
            writer.abort()
            raise
        except Exception:  # noqa: BLE001 - as asyncio logs a handler's failure
            _logger.exception("the handler failed for %s", peer)
        writer.close()
        await writer.wait_closed()

    def close(self) -> None:
        """Stops listening and closes the listening sockets; connections go on."""
        if self._closed.done():
            return
        self._closed.set_result(None)
        for task in self._accepting:
            task.cancel()
        for s in self._sockets:
            s.close()

    def abort_clients(self) -> None:
        """Cancels every connection's task: each socket is closed at once."""
        for task in list(self._clients):
            task.cancel()

    async def wait_closed(self) -> None:
        """After close(): waits until the listening tasks and every connection have ended."""
        await asyncio.gather(*self._accepting, return_exceptions=True)
        if self._clients:
            await asyncio.gather(*list(self._clients), return_exceptions=True)

    async def start_serving(self) -> None:
        """Nothing: the server listens from start_server on."""

    async def serve_forever(self) -> None:
        """Waits until the server is closed; cancelling it closes the server."""
        try:
            await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            self.close()
            raise

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


async def start_server(
    ctx: Context,
    handler: Handler,
    host: Optional[str] = None,
    port: Optional[int] = None,
    *,
    confirm: bool = False,
    sock: Optional[socket.socket] = None,
    backlog: int = 100,
    handshake_timeout: Optional[float] = 60.0,
    limit: int = 2**16,
) -> Server:
    """Listens on host:port (None: every address; port 0: any free port) or on ``sock`` (a
    listening socket the server then owns) and calls ``await handler(reader, writer)`` for
    each client whose handshake succeeds (the client verified by ``ctx``; with confirm,
    libvirt's confirmation byte is sent). Returns a Server."""
    loop = asyncio.get_running_loop()
    if sock is not None:
        sockets = [sock]
    else:
        sockets = []
        infos = await loop.getaddrinfo(
            host, port or 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        try:
            for family, kind, proto, _, address in infos:
                s = socket.socket(family, kind, proto)
                sockets.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind(address)
                s.listen(backlog)
        except BaseException:
            for s in sockets:
                s.close()
            raise
    for s in sockets:
        s.setblocking(False)
    return Server(ctx, handler, sockets, confirm, handshake_timeout, limit)
