"""Non-blocking sessions through the Python package: start_client/start_server, handshake()
returning False while it waits, wants(), AgainError from read/write, the write contract, and
one session read and written by two threads at once."""

import select
import socket
import threading
import unittest

from support import client_context, fixtures, server_context, set_io_timeout

import virtpki
from virtpki import AgainError, Session, SessionWant, TLSError, ValidatorResult


def setUpModule():
    fixtures()


def wait_for(session, sock, timeout=10):
    """select() until the socket is ready for what the session wants."""
    wants = session.wants()
    r = [sock] if wants & SessionWant.READ else []
    w = [sock] if wants & SessionWant.WRITE else []
    if not (r or w):
        raise AssertionError("the session waits for nothing")
    ready = select.select(r, w, [], timeout)
    if not (ready[0] or ready[1]):
        raise AssertionError(f"the socket never became ready for {wants!r}")


def handshake_both(client, server, csock, ssock):
    """Drives both handshakes in one thread; the number of False returns."""
    waits, cdone, sdone = 0, False, False
    for _ in range(1000):
        if not cdone:
            cdone = client.handshake()
            waits += not cdone
        if not sdone:
            sdone = server.handshake()
            waits += not sdone
        if cdone and sdone:
            return waits
    raise AssertionError("the handshake did not finish")


class NonBlockingTests(unittest.TestCase):
    def pair(self):
        a, b = socket.socketpair()
        for s in (a, b):
            s.setblocking(False)
            self.addCleanup(s.close)
        return a, b

    def started(self, confirm=True, validator=None):
        csock, ssock = self.pair()
        cctx, sctx = client_context(), server_context()
        self.addCleanup(cctx.close)
        self.addCleanup(sctx.close)
        if validator:
            cctx.set_validator(validator)
        c = Session.start_client(cctx, csock, "localhost", confirm=confirm)
        s = Session.start_server(sctx, ssock, confirm=confirm)
        self.addCleanup(c.close, notify=False)
        self.addCleanup(s.close, notify=False)
        return c, s, csock, ssock

    def test_handshake_wants_and_data_both_ways(self):
        calls = []

        def validator(hostname, cert, trusted, flags):
            calls.append(hostname)
            return ValidatorResult.ACCEPT_ONCE

        c, s, csock, ssock = self.started(validator=validator)
        self.assertEqual(c.wants(), SessionWant.WRITE)
        self.assertEqual(s.wants(), SessionWant.READ)
        with self.assertRaises(virtpki.InvalidArgError):
            c.read(1)
        waits = handshake_both(c, s, csock, ssock)
        self.assertGreater(waits, 0)
        self.assertEqual(calls, ["localhost"])
        self.assertTrue(c.handshake())
        self.assertEqual(calls, ["localhost"])
        # Established, nothing queued, no read waiting: nothing to poll for.
        self.assertEqual(c.wants(), SessionWant(0))
        with self.assertRaises(AgainError) as caught:
            c.read(10)
        self.assertIsInstance(caught.exception, BlockingIOError)
        self.assertEqual(caught.exception.code, virtpki.ErrorCode.AGAIN)
        self.assertEqual(c.wants(), SessionWant.READ)
        self.assertEqual(c.write(b"ping"), 4)
        self.assertEqual(s.read(10), b"ping")
        self.assertEqual(s.write(b"pong"), 4)
        self.assertEqual(c.read(10), b"pong")
        self.assertTrue(c.close_notify())
        self.assertEqual(s.read(10), b"")

    def test_the_peer_vanishing_mid_handshake(self):
        csock, ssock = self.pair()
        with client_context() as cctx:
            c = Session.start_client(cctx, csock, "localhost")
            self.assertFalse(c.handshake())
            self.assertEqual(c.wants(), SessionWant.READ)
            ssock.close()
            with self.assertRaises(TLSError):
                c.handshake()
            with self.assertRaises(TLSError):
                c.handshake()
            c.close(notify=False)

    def test_eof_without_close_notify(self):
        c, s, csock, ssock = self.started(confirm=False)
        handshake_both(c, s, csock, ssock)
        s.write(b"x")
        self.assertEqual(c.read(10), b"x")
        ssock.shutdown(socket.SHUT_RDWR)
        with self.assertRaises(TLSError) as caught:
            c.read(10)
        self.assertIn("close_notify", str(caught.exception))

    def test_a_write_that_would_block_takes_nothing_and_flush_pushes_the_rest(self):
        c, s, csock, ssock = self.started(confirm=False)
        handshake_both(c, s, csock, ssock)
        data = bytes(i % 251 for i in range(2 << 20))
        sent, agains, received = 0, 0, bytearray()
        while len(received) < len(data):
            if sent < len(data):
                try:
                    n = c.write(data[sent:])
                    self.assertGreater(n, 0)
                    sent += n
                except AgainError:
                    agains += 1
                    self.assertTrue(c.wants() & SessionWant.WRITE)
            else:
                c.flush()
            if agains % 2 or sent == len(data):
                try:
                    received += s.read(65536)
                except AgainError:
                    pass
        self.assertGreater(agains, 0)
        self.assertEqual(bytes(received), data)
        self.assertTrue(c.flush())

    def test_arguments(self):
        csock, _ = self.pair()
        with client_context() as ctx:
            with self.assertRaises(virtpki.InvalidArgError):
                Session.start_client(ctx, csock, "localhost", port=70000)
            with self.assertRaises(virtpki.InvalidArgError):
                Session.start_client(ctx, csock, None)
            with self.assertRaises(TypeError):
                Session.start_server(ctx, "not a socket")
            # The blocking constructor refuses a non-blocking socket.
            with self.assertRaises(virtpki.InvalidArgError):
                Session.client(ctx, csock, "localhost")
        self.assertEqual(virtpki.VIR_PKI_SESSION_WANT_READ, 1)
        self.assertEqual(virtpki.VIR_PKI_SESSION_WANT_WRITE, 2)
        self.assertEqual(virtpki.VIR_PKI_ERR_AGAIN, 23)


class FullDuplexTests(unittest.TestCase):
    def test_two_threads_on_one_session_each_way(self):
        size = 4 << 20
        a, b = socket.socketpair()
        for sock in (a, b):
            set_io_timeout(sock, 30)
            self.addCleanup(sock.close)
        cctx, sctx = client_context(), server_context()
        self.addCleanup(cctx.close)
        self.addCleanup(sctx.close)
        box = {}
        t = threading.Thread(target=lambda: box.update(s=Session.server(sctx, b, confirm=True)))
        t.start()
        c = Session.client(cctx, a, "localhost", confirm=True)
        t.join(30)
        s = box["s"]
        data = bytes(i % 253 for i in range(size))
        results = {}

        def writer(session, name):
            results[name] = session.write(data)

        def reader(session, name):
            got = bytearray()
            while len(got) < size:
                chunk = session.read(65536)
                if not chunk:
                    break
                got += chunk
            results[name] = bytes(got) == data

        threads = [
            threading.Thread(target=writer, args=(c, "cw")),
            threading.Thread(target=reader, args=(c, "cr")),
            threading.Thread(target=writer, args=(s, "sw")),
            threading.Thread(target=reader, args=(s, "sr")),
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertEqual(results, {"cw": size, "cr": True, "sw": size, "sr": True})
        c.close()
        s.close(notify=False)


class TimeoutTests(unittest.TestCase):
    """SO_RCVTIMEO/SO_SNDTIMEO on a blocking socket (support.set_io_timeout) end a blocking
    call with TLSError "timed out": not InvalidArgError ("non-blocking"), not AgainError,
    and a write never returns a short count on a blocking socket."""

    def test_a_handshake_that_times_out(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        set_io_timeout(a, 1)
        with client_context() as ctx:
            with self.assertRaises(TLSError) as caught:
                Session.client(ctx, a, "localhost")
        self.assertIn("timed out", str(caught.exception))

    def test_a_write_that_times_out(self):
        a, b = socket.socketpair()
        for sock in (a, b):
            set_io_timeout(sock, 30)
            self.addCleanup(sock.close)
        cctx, sctx = client_context(), server_context()
        self.addCleanup(cctx.close)
        self.addCleanup(sctx.close)
        box = {}
        t = threading.Thread(target=lambda: box.update(s=Session.server(sctx, b)))
        t.start()
        c = Session.client(cctx, a, "localhost")
        t.join(30)
        self.addCleanup(box["s"].close, notify=False)
        self.addCleanup(c.close, notify=False)
        set_io_timeout(a, 1)
        # The server never reads: the socket fills up and the send timeout runs out.
        with self.assertRaises(TLSError) as caught:
            c.write(bytes(16 << 20))
        self.assertIn("timed out", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
