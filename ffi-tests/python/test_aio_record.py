"""ACCEPT_ALWAYS from a coroutine validator (virtpki.aio) is recorded in the known-servers store
as a plain validator's is (Session.record_peer, virPKISessionRecordPeer): the next connection is
trusted by the entry without asking the validator; a store that cannot be written fails
open_connection and closes the connection; with no store it is accepted once. And
Session.record_peer's refusals: a server session, a handshake not done, nothing asked."""

import asyncio
import os
import shutil
import socket
import stat
import tempfile
import unittest

from support import EchoServer, client_context, fixtures, server_context, set_io_timeout

import virtpki
import virtpki.aio as aio
from virtpki import ContextFlags, Session, ValidatorResult
from virtpki._library import lib

PORT = 16514


def setUpModule():
    fixtures()


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class RecordTests(unittest.TestCase):
    def setUp(self):
        self.fx = fixtures()
        self.sctx = server_context()
        self.addCleanup(self.sctx.close)
        # The client does not know the server's CA: an unknown issuer, which its validator is
        # asked about (PROMPT_UNVERIFIED) and which a known-servers entry overrides.
        self.cctx = client_context(ca="other-ca", flags=ContextFlags.PROMPT_UNVERIFIED)
        self.addCleanup(self.cctx.close)
        self.dir = tempfile.mkdtemp(prefix="virtpki-py-record-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.store = os.path.join(self.dir, "known_servers")
        self.calls = []

    def validator(self, answer, before=None):
        async def validator(hostname, cert, trusted, flags):
            await asyncio.sleep(0)
            self.calls.append((hostname, trusted))
            if before is not None:
                before()
            return answer

        return validator

    def connect(self, ctx=None):
        """One connection to the library's echo server in a thread: ping, then the end; the
        aio error if opening failed (and the socket, closed by then)."""
        a, b = socket.socketpair()
        set_io_timeout(b, 30)
        server = EchoServer(self.sctx, b, confirm=True)
        self.addCleanup(b.close)
        self.addCleanup(server.stop)

        async def main():
            try:
                reader, writer = await aio.open_connection(
                    ctx or self.cctx, sock=a, hostname="localhost", port=PORT, confirm=True
                )
            except virtpki.VirtPKIError as e:
                return e, asyncio.get_running_loop()
            writer.write(b"ping\n")
            self.assertEqual(await reader.readline(), b"ping\n")
            writer.write_eof()
            await writer.drain()
            self.assertEqual(await reader.read(), b"")
            writer.close()
            await writer.wait_closed()
            return None, None

        error, _ = run(main())
        if error is not None:
            server.stop()
        return error, a

    def test_accept_always_is_recorded_and_the_next_connection_is_not_asked(self):
        self.cctx.set_known_servers_file(self.store)
        self.cctx.set_validator(self.validator(ValidatorResult.ACCEPT_ALWAYS))
        error, _ = self.connect()
        self.assertIsNone(error)
        self.assertEqual(self.calls, [("localhost", False)])
        self.assertTrue(os.path.exists(self.store))
        # Trusted by the entry: the validator is not asked again.
        error, _ = self.connect()
        self.assertIsNone(error)
        self.assertEqual(len(self.calls), 1)
        # The entry is the one a plain validator records: (host, port) -> certificate, read
        # by any context that opens the file; another port is not trusted.
        with client_context(ca="other-ca") as other:
            other.set_known_servers_file(self.store)
            other.verify_server("localhost", self.fx.pem("server"), port=PORT)
            with self.assertRaises(virtpki.UnknownIssuerError):
                other.verify_server("localhost", self.fx.pem("server"), port=PORT + 1)

    def test_a_store_set_through_c_is_recorded_in(self):
        # The store is the library's, however it was set: one set through the C API on the
        # same context (as a C caller sharing it would) records the coroutine's ACCEPT_ALWAYS.
        rc = lib.virPKIContextSetKnownServersFile(self.cctx._handle, os.fsencode(self.store))
        self.assertEqual(rc, 0)
        self.cctx.set_validator(self.validator(ValidatorResult.ACCEPT_ALWAYS))
        self.assertIsNone(self.connect()[0])
        self.assertTrue(os.path.exists(self.store))
        self.assertIsNone(self.connect()[0])
        self.assertEqual(len(self.calls), 1, "the second connection is trusted by the entry")

    def test_accept_once_records_nothing(self):
        self.cctx.set_known_servers_file(self.store)
        self.cctx.set_validator(self.validator(ValidatorResult.ACCEPT_ONCE))
        self.assertIsNone(self.connect()[0])
        self.assertIsNone(self.connect()[0])
        self.assertEqual(len(self.calls), 2)
        self.assertFalse(os.path.exists(self.store))

    def test_accept_always_with_no_store_is_accepted_once(self):
        # As the library does for a plain validator: nowhere to record, accepted this time.
        self.cctx.set_validator(self.validator(ValidatorResult.ACCEPT_ALWAYS))
        self.assertIsNone(self.connect()[0])
        self.assertIsNone(self.connect()[0])
        self.assertEqual(len(self.calls), 2)

    def test_a_store_write_error_fails_open_connection_and_closes_it(self):
        self.cctx.set_known_servers_file(self.store)

        def break_the_store():
            # After the handshake's lookup, before the record: a directory others may write
            # to is one the store refuses to write in.
            os.chmod(self.dir, 0o777)

        self.cctx.set_validator(self.validator(ValidatorResult.ACCEPT_ALWAYS, break_the_store))
        error, sock = self.connect()
        self.assertIsInstance(error, virtpki.StoreError)
        self.assertIn(self.dir, error.message)
        self.assertEqual(sock.fileno(), -1, "the socket is closed")
        self.assertFalse(os.path.exists(self.store))
        os.chmod(self.dir, 0o700)
        # Nothing was recorded: the next connection asks again.
        self.cctx.set_validator(self.validator(ValidatorResult.ACCEPT_ONCE))
        self.assertIsNone(self.connect()[0])
        self.assertEqual(len(self.calls), 2)


    def test_the_file_is_the_one_a_plain_validators_accept_always_writes(self):
        # One recording path: byte for byte the file, and its mode, that a plain validator's
        # ACCEPT_ALWAYS (answered inside the handshake) leaves for the same server.
        self.cctx.set_known_servers_file(self.store)
        self.cctx.set_validator(self.validator(ValidatorResult.ACCEPT_ALWAYS))
        self.assertIsNone(self.connect()[0])
        plain_store = os.path.join(self.dir, "plain")
        with client_context(ca="other-ca", flags=ContextFlags.PROMPT_UNVERIFIED) as plain:
            plain.set_known_servers_file(plain_store)
            plain.set_validator(lambda *args: ValidatorResult.ACCEPT_ALWAYS)
            self.assertIsNone(self.connect(plain)[0])
        with open(self.store, "rb") as f, open(plain_store, "rb") as g:
            self.assertEqual(f.read(), g.read())
        self.assertEqual(
            stat.S_IMODE(os.stat(self.store).st_mode), stat.S_IMODE(os.stat(plain_store).st_mode)
        )

    def test_a_store_set_while_the_validator_is_awaited_is_not_written(self):
        # The coroutine was asked with what the first store knew; the second may hold another
        # certificate for the host, which the user was not warned of: refused, the
        # connection closed, neither file written.
        self.cctx.set_known_servers_file(self.store)
        other = os.path.join(self.dir, "other")

        def switch():
            self.cctx.set_known_servers_file(other)

        self.cctx.set_validator(self.validator(ValidatorResult.ACCEPT_ALWAYS, switch))
        error, sock = self.connect()
        self.assertIsInstance(error, virtpki.InvalidArgError)
        self.assertIn("set or replaced", error.message)
        self.assertEqual(sock.fileno(), -1, "the socket is closed")
        self.assertFalse(os.path.exists(self.store))
        self.assertFalse(os.path.exists(other))

    def test_a_coroutine_rejecting_records_nothing_and_closes(self):
        # Accepted once inside the handshake, then the coroutine says no: nothing recorded,
        # the connection closed before any data.
        self.cctx.set_known_servers_file(self.store)
        self.cctx.set_validator(self.validator(ValidatorResult.REJECT))
        error, sock = self.connect()
        self.assertIsInstance(error, virtpki.RejectedError)
        self.assertEqual(sock.fileno(), -1, "the socket is closed")
        self.assertFalse(os.path.exists(self.store))


class SessionRecordPeerTests(unittest.TestCase):
    """Session.record_peer on blocking sessions: what it refuses."""

    def test_refusals(self):
        fx = fixtures()
        sctx = server_context()
        self.addCleanup(sctx.close)
        cctx = client_context(ca="other-ca", flags=ContextFlags.PROMPT_UNVERIFIED)
        self.addCleanup(cctx.close)
        directory = tempfile.mkdtemp(prefix="virtpki-py-record-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        cctx.set_validator(lambda *args: ValidatorResult.ACCEPT_ONCE)
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        # Not handshaken yet.
        started = Session.start_client(cctx, a, "localhost", PORT)
        with self.assertRaises(virtpki.InvalidArgError) as cm:
            started.record_peer()
        self.assertIn("before the handshake is done", cm.exception.message)
        started.close(notify=False)
        # Handshaken: the server cannot record; the client with no store says so; with one,
        # it records.
        for s in (a, b):
            set_io_timeout(s, 30)
        server = EchoServer(sctx, b)
        self.addCleanup(server.stop)
        with Session.client(cctx, a, "localhost", PORT) as session:
            with self.assertRaises(virtpki.InvalidArgError) as cm:
                session.record_peer()
            self.assertIn("no known-servers store", cm.exception.message)
            # A store set after the validator was asked is not the one it was asked against.
            cctx.set_known_servers_file(os.path.join(directory, "known"))
            with self.assertRaises(virtpki.InvalidArgError) as cm:
                session.record_peer()
            self.assertIn("set or replaced", cm.exception.message)
            session.write(b"x")
            self.assertEqual(session.read(), b"x")
        self.assertIsNone(server.result().error)
        self.assertFalse(os.path.exists(os.path.join(directory, "known")))
        # Asked with the store set: recorded.
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        for s in (a, b):
            set_io_timeout(s, 30)
        server = EchoServer(sctx, b)
        self.addCleanup(server.stop)
        with Session.client(cctx, a, "localhost", PORT) as session:
            session.record_peer()
            session.write(b"x")
            self.assertEqual(session.read(), b"x")
        self.assertIsNone(server.result().error)
        with client_context(ca="other-ca") as other:
            other.set_known_servers_file(os.path.join(directory, "known"))
            other.verify_server("localhost", fx.pem("server"), port=PORT)

    def test_a_server_session_cannot_record(self):
        sctx = server_context()
        self.addCleanup(sctx.close)
        cctx = client_context()
        self.addCleanup(cctx.close)
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        for s in (a, b):
            set_io_timeout(s, 30)
        server = Session.start_server(sctx, b)
        self.addCleanup(server.close, notify=False)
        with self.assertRaises(virtpki.InvalidArgError) as cm:
            server.record_peer()
        self.assertIn("server session", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
