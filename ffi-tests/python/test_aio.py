"""virtpki.aio: asyncio streams over the non-blocking sessions, against the library's blocking
server in a thread (support.EchoServer's Session.server), against each other, many at once on
one loop, and each failure: the peer vanishing mid-handshake, EOF without close_notify, a
coroutine validator that rejects or raises, a handshake cancelled by the loop. After each
failure the socket is closed (the process's fd count is back) and the loop watches nothing."""

import asyncio
import os
import socket
import threading
import unittest

from support import EchoServer, client_context, fixtures, server_context, set_io_timeout

import virtpki
import virtpki.aio as aio
from virtpki import RejectedError, Session, TLSError, ValidatorResult


def setUpModule():
    fixtures()


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def run(coro, timeout=60):
    """Runs coro on a fresh loop, bounded so that a hang fails the test."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def watched(loop):
    """How many fds the loop's selector watches (a leaked add_reader/add_writer stays)."""
    own = loop._ssock.fileno()  # noqa: SLF001 - the loop's wake-up socket, always there
    return len([k for k in loop._selector.get_map() if k != own])  # noqa: SLF001


async def shutdown(reader, writer):
    """Both close_notify messages before the socket is closed: the library's echo server then
    ends without error (a plain close() may close the socket before the server's close_notify
    arrives, and the server's own close then meets a broken pipe)."""
    writer.write_eof()
    await writer.drain()
    rest = await reader.read()
    writer.close()
    await writer.wait_closed()
    return rest


async def echo_handler(reader, writer):
    async for line in reader:
        writer.write(line)
        await writer.drain()


class AioTests(unittest.TestCase):
    def setUp(self):
        self.fx = fixtures()
        self.cctx, self.sctx = client_context(), server_context()
        self.addCleanup(self.cctx.close)
        self.addCleanup(self.sctx.close)
        self.fds = open_fds()

    def assertNoLeak(self, kept=0):
        """No fd left open but the ``kept`` ones the test itself still holds."""
        self.assertEqual(open_fds(), self.fds + kept, "a socket was left open")

    def thread_server(self, confirm=True):
        """The library's blocking echo server in a thread on one end of a socketpair; the
        other end, non-blocking, for the aio client."""
        a, b = socket.socketpair()
        set_io_timeout(b, 30)
        server = EchoServer(self.sctx, b, confirm=confirm)
        self.addCleanup(b.close)
        self.addCleanup(server.stop)
        return a, server

    # --- working connections ------------------------------------------------------------

    def test_client_against_the_library_server(self):
        sock, server = self.thread_server()

        async def main():
            reader, writer = await aio.open_connection(
                self.cctx, sock=sock, hostname="localhost", confirm=True
            )
            self.assertIn("CN=localhost", writer.get_extra_info("peer_dn"))
            self.assertIs(writer.get_extra_info("socket"), sock)
            self.assertIsInstance(writer.get_extra_info("session"), Session)
            writer.write(b"hello\nworld\n")
            await writer.drain()
            self.assertEqual(await reader.readline(), b"hello\n")
            self.assertEqual(await reader.readexactly(6), b"world\n")
            self.assertEqual(await shutdown(reader, writer), b"")
            self.assertTrue(writer.is_closing())

        run(main())
        self.assertEqual(sock.fileno(), -1, "the connection closes the socket it owns")
        self.assertEqual(server.result().dn, self.fx.client_dn)
        self.assertIsNone(server.error)

    def test_aio_client_and_aio_server_over_tcp(self):
        seen = {}

        async def handler(reader, writer):
            seen["dn"] = writer.get_extra_info("peer_dn")
            seen["peer"] = writer.get_extra_info("peername")
            await echo_handler(reader, writer)

        async def main():
            async with await aio.start_server(
                self.sctx, handler, "127.0.0.1", 0, confirm=True
            ) as server:
                port = server.sockets[0].getsockname()[1]
                self.assertTrue(server.is_serving())
                reader, writer = await aio.open_connection(
                    self.cctx, "127.0.0.1", port, confirm=True, timeout=30
                )
                writer.write(b"ping\n")
                await writer.drain()
                self.assertEqual(await reader.readline(), b"ping\n")
                self.assertEqual(seen["peer"], writer.get_extra_info("sockname"))
                writer.close()
                await writer.wait_closed()
            self.assertFalse(server.is_serving())
            self.assertEqual(server.sockets, ())
            return watched(asyncio.get_running_loop())

        self.assertEqual(run(main()), 0)
        self.assertEqual(seen["dn"], self.fx.client_dn)
        self.assertNoLeak()

    def test_the_server_sees_close_notify_as_the_end(self):
        got = []

        async def handler(reader, writer):
            got.append(await reader.read())  # everything until close_notify
            got.append(reader.at_eof())

        async def main():
            async with await aio.start_server(self.sctx, handler, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                reader, writer = await aio.open_connection(self.cctx, "localhost", port)
                writer.writelines([b"a" * 100000, b"b"])
                writer.close()
                await writer.wait_closed()
                await asyncio.sleep(0)
                while not got or len(got) < 2:
                    await asyncio.sleep(0.01)

        run(main())
        self.assertEqual(got, [b"a" * 100000 + b"b", True])
        self.assertNoLeak()

    def test_full_duplex_large_transfers_both_ways(self):
        size = 4 << 20
        payload = os.urandom(size)

        async def handler(reader, writer):
            # Sends its own payload while it reads the client's: neither waits for the other.
            async def send():
                writer.write(payload)
                await writer.drain()

            sender = asyncio.ensure_future(send())
            data = await reader.readexactly(size)
            await sender
            writer.write(b"ok" if data == payload else b"no")
            await writer.drain()

        async def main():
            async with await aio.start_server(self.sctx, handler, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                reader, writer = await aio.open_connection(self.cctx, "localhost", port)
                writer.write(payload)
                received, _ = await asyncio.gather(reader.readexactly(size + 2), writer.drain())
                writer.close()
                await writer.wait_closed()
                return received

        received = run(main())
        self.assertEqual(received[:size], payload)
        self.assertEqual(received[size:], b"ok")

    def test_many_concurrent_connections_on_one_loop(self):
        count = 200

        async def one(port, i):
            reader, writer = await aio.open_connection(self.cctx, "localhost", port)
            line = f"connection {i}\n".encode()
            writer.write(line)
            await writer.drain()
            echoed = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return echoed == line

        async def main():
            async with await aio.start_server(
                self.sctx, echo_handler, "127.0.0.1", 0, backlog=count
            ) as server:
                port = server.sockets[0].getsockname()[1]
                results = await asyncio.gather(*(one(port, i) for i in range(count)))
            return results, watched(asyncio.get_running_loop())

        results, left = run(main(), timeout=120)
        self.assertEqual(results, [True] * count)
        self.assertEqual(left, 0)
        self.assertNoLeak()

    # --- coroutine validators -----------------------------------------------------------

    def test_coroutine_validator_is_awaited_once_and_accepts(self):
        calls = []

        async def validator(hostname, cert, trusted, flags):
            await asyncio.sleep(0.01)
            calls.append((hostname, cert, trusted, flags))
            return ValidatorResult.ACCEPT_ONCE

        self.cctx.set_validator(validator)
        sock, server = self.thread_server()

        async def main():
            reader, writer = await aio.open_connection(
                self.cctx, sock=sock, hostname="localhost", confirm=True
            )
            writer.write(b"x\n")
            self.assertEqual(await reader.readline(), b"x\n")
            self.assertEqual(await shutdown(reader, writer), b"")
            return writer.get_extra_info("peercert")

        peercert = run(main())
        self.assertEqual(len(calls), 1)
        hostname, cert, trusted, flags = calls[0]
        self.assertEqual((hostname, trusted, int(flags)), ("localhost", False, 0))
        self.assertEqual(cert.replace("\r\n", "\n").strip(), self.fx.pem("server").strip())
        self.assertEqual(peercert, cert)
        self.assertIsNone(server.result().error)

    def check_refused(self, validator, cause=None):
        self.cctx.set_validator(validator)
        sock, server = self.thread_server()

        async def main():
            with self.assertRaises(RejectedError) as cm:
                await aio.open_connection(self.cctx, sock=sock, hostname="localhost", confirm=True)
            return cm.exception, watched(asyncio.get_running_loop())

        error, left = run(main())
        self.assertEqual(sock.fileno(), -1, "the socket is closed")
        self.assertEqual(left, 0)
        if cause is not None:
            self.assertIsInstance(error.__cause__, cause)
        server.stop()
        self.assertNoLeak(kept=1)  # the server thread's end of the pair
        return error

    def test_coroutine_validator_that_rejects(self):
        async def validator(hostname, cert, trusted, flags):
            return ValidatorResult.REJECT

        error = self.check_refused(validator)
        self.assertIn("rejected the certificate of 'localhost'", error.message)

    def test_coroutine_validator_answering_true_rejects(self):
        async def validator(hostname, cert, trusted, flags):
            return True  # not ACCEPT_ONCE/ACCEPT_ALWAYS: fails closed, as a plain validator's

        self.check_refused(validator)

    def test_coroutine_validator_that_raises_fails_closed(self):
        async def validator(hostname, cert, trusted, flags):
            raise ValueError("the user said no")

        error = self.check_refused(validator, ValueError)
        self.assertIn("the user said no", error.message)

    def test_plain_validator_that_raises_under_aio(self):
        def validator(hostname, cert, trusted, flags):
            raise KeyError("no")

        self.check_refused(validator, KeyError)

    def test_coroutine_validator_not_asked_about_a_refused_chain(self):
        calls = []

        async def validator(*args):
            calls.append(args)
            return ValidatorResult.ACCEPT_ONCE

        ctx = client_context(ca="other-ca")
        self.addCleanup(ctx.close)
        ctx.set_validator(validator)
        sock, server = self.thread_server()

        async def main():
            with self.assertRaises(virtpki.UnknownIssuerError):
                await aio.open_connection(ctx, sock=sock, hostname="localhost", confirm=True)

        run(main())
        self.assertEqual(calls, [])
        self.assertEqual(sock.fileno(), -1)

    def test_coroutine_validator_in_a_blocking_session_rejects(self):
        async def validator(*args):
            return ValidatorResult.ACCEPT_ONCE

        self.cctx.set_validator(validator)
        a, server = self.thread_server()
        a.setblocking(True)
        set_io_timeout(a, 30)
        self.addCleanup(a.close)
        with self.assertRaises(RejectedError) as cm:
            Session.client(self.cctx, a, "localhost", confirm=True)
        self.assertIsInstance(cm.exception.__cause__, TypeError)
        self.assertIn("virtpki.aio", str(cm.exception.__cause__))

    # --- failures -----------------------------------------------------------------------

    def test_server_vanishes_mid_handshake(self):
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]

        def vanish():
            for _ in range(2):
                conn, _ = listener.accept()
                conn.recv(100)  # part of the ClientHello
                conn.close()

        thread = threading.Thread(target=vanish, daemon=True)
        thread.start()

        async def main():
            with self.assertRaises(TLSError) as cm:
                await aio.open_connection(self.cctx, "127.0.0.1", port, timeout=30)
            sock = socket.create_connection(("127.0.0.1", port))
            with self.assertRaises(TLSError):
                await aio.open_connection(self.cctx, sock=sock, hostname="localhost", timeout=30)
            self.assertEqual(sock.fileno(), -1, "closed on the failure, not when collected")
            return cm.exception, watched(asyncio.get_running_loop())

        error, left = run(main())
        thread.join(30)
        self.assertEqual(left, 0)
        self.assertTrue(error.message)
        self.assertNoLeak(kept=1)  # the listener

    def test_client_vanishes_mid_handshake_server_goes_on(self):
        async def main():
            async with await aio.start_server(self.sctx, echo_handler, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                with self.assertLogs("virtpki.aio", "WARNING") as logs:
                    r, w = await asyncio.open_connection("127.0.0.1", port)
                    w.write(b"\x16\x03\x01\x00\x05hello")  # a TLS record header, then gone
                    await w.drain()
                    w.close()
                    await w.wait_closed()
                    for _ in range(500):
                        if logs.output:
                            break
                        await asyncio.sleep(0.01)
                self.assertIn("handshake with", logs.output[0])
                # The server still serves.
                reader, writer = await aio.open_connection(self.cctx, "localhost", port)
                writer.write(b"still\n")
                self.assertEqual(await reader.readline(), b"still\n")
                writer.close()
                await writer.wait_closed()
            return watched(asyncio.get_running_loop())

        self.assertEqual(run(main()), 0)
        self.assertNoLeak()

    def test_eof_without_close_notify(self):
        a, b = socket.socketpair()
        set_io_timeout(b, 30)
        self.addCleanup(b.close)

        def truncating_server():
            s = Session.server(self.sctx, b, confirm=True)
            s.write(b"partial")
            s.close(notify=False)  # no close_notify: the peer cannot tell this from a cut
            b.shutdown(socket.SHUT_RDWR)

        thread = threading.Thread(target=truncating_server, daemon=True)
        thread.start()

        async def main():
            reader, writer = await aio.open_connection(
                self.cctx, sock=a, hostname="localhost", confirm=True
            )
            with self.assertRaises(TLSError) as cm:
                await reader.readexactly(100)  # not IncompleteReadError: a cut is an error
            self.assertIn("close_notify", cm.exception.message)
            self.assertEqual(await reader.read(7), b"partial")  # what arrived stays readable
            writer.close()
            await writer.wait_closed()

        run(main())
        thread.join(30)
        self.assertEqual(a.fileno(), -1)
        self.assertNoLeak(kept=1)  # the server's end of the pair

    def test_close_notify_is_the_end_of_the_stream(self):
        sock, server = self.thread_server()

        async def main():
            reader, writer = await aio.open_connection(
                self.cctx, sock=sock, hostname="localhost", confirm=True
            )
            self.assertTrue(writer.can_write_eof())
            writer.write(b"last")
            writer.write_eof()  # close_notify: the echo server's read() ends, and so its reply
            await writer.drain()
            with self.assertRaises(ConnectionResetError):
                writer.write(b"more")
            self.assertEqual(await reader.read(), b"last")  # until the server's close_notify
            self.assertTrue(reader.at_eof())
            self.assertEqual(await reader.read(), b"")
            writer.close()
            await writer.wait_closed()

        run(main())
        self.assertIsNone(server.result().error)

    def test_handshake_cancelled_by_the_loop(self):
        # A peer that accepts the TCP connection and never answers: the handshake waits until
        # the loop cancels it (timeout=, or the caller's wait_for).
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]

        async def main():
            loop = asyncio.get_running_loop()
            with self.assertRaises(asyncio.TimeoutError):
                await aio.open_connection(self.cctx, "127.0.0.1", port, timeout=0.3)
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(aio.open_connection(self.cctx, "127.0.0.1", port), 0.3)
            sock = socket.create_connection(("127.0.0.1", port))
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(
                    aio.open_connection(self.cctx, sock=sock, hostname="localhost"), 0.3
                )
            self.assertEqual(sock.fileno(), -1, "closed when cancelled, not when collected")
            return watched(loop)

        self.assertEqual(run(main()), 0)
        for _ in range(3):
            listener.accept()[0].close()
        self.assertNoLeak(kept=1)  # the listener

    def test_server_drops_a_client_that_never_handshakes(self):
        async def main():
            async with await aio.start_server(
                self.sctx, echo_handler, "127.0.0.1", 0, handshake_timeout=0.2
            ) as server:
                port = server.sockets[0].getsockname()[1]
                with self.assertLogs("virtpki.aio", "WARNING") as logs:
                    r, w = await asyncio.open_connection("127.0.0.1", port)
                    self.assertEqual(await asyncio.wait_for(r.read(), 10), b"")  # dropped
                    w.close()
                    await w.wait_closed()
                self.assertIn("handshake with", logs.output[0])
            return watched(asyncio.get_running_loop())

        self.assertEqual(run(main()), 0)
        self.assertNoLeak()

    def test_refused_client_with_confirmation(self):
        self.sctx.set_allowed_dn_list(["C=GB,O=Test,CN=admin*"])

        async def main():
            async with await aio.start_server(
                self.sctx, echo_handler, "127.0.0.1", 0, confirm=True
            ) as server:
                port = server.sockets[0].getsockname()[1]
                with self.assertLogs("virtpki.aio", "WARNING") as logs:
                    with self.assertRaises(TLSError) as cm:
                        await aio.open_connection(self.cctx, "localhost", port, confirm=True)
                    for _ in range(500):
                        if logs.output:
                            break
                        await asyncio.sleep(0.01)
                self.assertIn("did not confirm", cm.exception.message)
                self.assertIn(self.fx.client_dn, logs.output[0])

        run(main())
        self.assertNoLeak()

    def test_bad_arguments(self):
        async def main():
            with self.assertRaises(ValueError):
                await aio.open_connection(self.cctx, None, 1)
            with self.assertRaises(ValueError):
                await aio.open_connection(self.cctx, hostname="localhost")
            a, b = socket.socketpair()
            b.close()
            with self.assertRaises(ValueError):
                await aio.open_connection(self.cctx, sock=a)  # no name to verify
            self.assertEqual(a.fileno(), -1, "the given socket is the connection's")
            closed = virtpki.Context()
            closed.close()
            a, b = socket.socketpair()
            b.close()
            with self.assertRaises(virtpki.InvalidArgError):
                await aio.open_connection(closed, sock=a, hostname="localhost")
            self.assertEqual(a.fileno(), -1)

        run(main())
        self.assertNoLeak()

    def test_reader_limits(self):
        sock, server = self.thread_server()

        async def main():
            reader, writer = await aio.open_connection(
                self.cctx, sock=sock, hostname="localhost", confirm=True, limit=10
            )
            writer.write(b"0123456789abcdef\nshort\n0123456789abcdef\nend")
            await writer.drain()
            with self.assertRaises(asyncio.LimitOverrunError):
                await reader.readuntil(b"\n")  # the data stays
            self.assertEqual(await reader.readexactly(17), b"0123456789abcdef\n")
            self.assertEqual(await reader.readline(), b"short\n")
            with self.assertRaises(ValueError):
                await reader.readline()  # longer than the limit: dropped
            self.assertEqual(await reader.read(0), b"")
            with self.assertRaises(ValueError):
                await reader.readexactly(-1)
            self.assertEqual(await reader.readexactly(3), b"end")
            self.assertEqual(await shutdown(reader, writer), b"")

        run(main())
        self.assertIsNone(server.result().error)


if __name__ == "__main__":
    unittest.main()
