"""TLS sessions through the Python package: a server in a thread, over a socketpair or
loopback TCP, with and without libvirt's confirmation byte."""

import gc
import os
import socket
import unittest

from support import EchoServer, client_context, fixtures, server_context, set_io_timeout, socketpair

import virtpki
from virtpki import ContextFlags, Session, ValidateFlags, ValidatorResult


def setUpModule():
    fixtures()


def echo(session, data):
    """Writes data and reads it back."""
    session.write(data)
    got = b""
    while len(got) < len(data):
        chunk = session.read(len(data) - len(got))
        if not chunk:
            raise AssertionError(f"the server closed early: {got!r}")
        got += chunk
    return got


class SessionTests(unittest.TestCase):
    def setUp(self):
        self.fx = fixtures()
        self.client_sock, self.server_sock = self.pair()

    def pair(self):
        """A socketpair closed after the test (after any server on it has stopped)."""
        client, server = socketpair()
        self.addCleanup(client.close)
        self.addCleanup(server.close)
        return client, server

    def serve(self, ctx=None, confirm=False, sock=None):
        """An echo server on the server end of the pair, stopped after the test."""
        server = EchoServer(ctx or server_context(), sock or self.server_sock, confirm)
        self.addCleanup(server.stop)
        return server

    def test_mutual_tls_with_and_without_confirmation(self):
        for confirm in (False, True):
            with self.subTest(confirm=confirm):
                client_sock, server_sock = self.pair()
                server = self.serve(confirm=confirm, sock=server_sock)
                with client_context() as ctx:
                    with Session.client(ctx, client_sock, "localhost", confirm=confirm) as s:
                        self.assertEqual(echo(s, b"ping"), b"ping")
                        # More than rustls buffers at once (64 KiB).
                        self.assertEqual(echo(s, b"x" * 100000), b"x" * 100000)
                        self.assertEqual(s.peer_dn(), "CN=localhost")
                self.assertIsNone(server.result().error)
                self.assertEqual(server.dn, self.fx.client_dn)

    def test_loopback_tcp_by_ip_with_a_port(self):
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        client.settimeout(None)
        self.addCleanup(client.close)
        conn, _ = listener.accept()
        self.addCleanup(conn.close)
        set_io_timeout(conn, 30)
        server = self.serve(confirm=True, sock=conn)
        with client_context() as ctx:
            with Session.client(ctx, client.fileno(), "127.0.0.1", port, confirm=True) as s:
                self.assertEqual(echo(s, b"hello"), b"hello")
        self.assertEqual(server.result().dn, self.fx.client_dn)

    def test_a_tcp_close_without_close_notify_is_an_error_not_the_end(self):
        """A peer (or anyone on the path) that closes the TCP connection without TLS
        close_notify could cut a message short: read() raises; close_notify is b""."""
        import threading

        for notify in (True, False):
            with self.subTest(close_notify=notify):
                listener = socket.create_server(("127.0.0.1", 0))
                self.addCleanup(listener.close)
                client = socket.create_connection(listener.getsockname())
                self.addCleanup(client.close)
                conn, _ = listener.accept()
                self.addCleanup(conn.close)
                set_io_timeout(conn, 30)
                errors = []

                def serve():
                    try:
                        s = Session.server(server_context(), conn)
                        s.write(b"hello")
                        s.close(notify=notify)
                    except virtpki.VirtPKIError as e:
                        errors.append(e)
                    finally:
                        conn.shutdown(socket.SHUT_RDWR)

                server = threading.Thread(target=serve, daemon=True)
                server.start()
                with client_context() as ctx:
                    s = Session.client(ctx, client.fileno(), "localhost")
                    got = b""
                    while len(got) < 5:
                        chunk = s.read(5 - len(got))
                        self.assertTrue(chunk, "ended before hello")
                        got += chunk
                    self.assertEqual(got, b"hello")
                    if notify:
                        self.assertEqual(s.read(), b"")
                    else:
                        with self.assertRaises(virtpki.TLSError) as cm:
                            s.read()
                        self.assertIn("close_notify", cm.exception.message)
                    s.close(notify=False)
                server.join(30)
                self.assertEqual(errors, [])

    def test_refused_client_with_confirmation(self):
        server_ctx = server_context()
        server_ctx.set_allowed_dn_list(["C=GB,O=Test,CN=admin*"])
        server = self.serve(server_ctx, confirm=True)
        with client_context() as ctx:
            with self.assertRaises(virtpki.TLSError) as cm:
                Session.client(ctx, self.client_sock, "localhost", confirm=True)
        self.assertIn("did not confirm", cm.exception.message)
        self.assertIsInstance(server.result().error, virtpki.DNNotAllowedError)
        self.assertIn(self.fx.client_dn, server.error.message)

    def test_refused_client_without_confirmation_learns_it_later(self):
        server_ctx = server_context()
        server_ctx.set_allowed_dn_list([])
        server = self.serve(server_ctx)
        with client_context() as ctx:
            # TLS 1.3: the client's handshake is over before the server has looked at it.
            with self.assertRaises(virtpki.TLSError):
                with Session.client(ctx, self.client_sock, "localhost") as s:
                    s.write(b"ping")
                    s.read()
        self.assertIsInstance(server.result().error, virtpki.DNNotAllowedError)

    def test_allowed_client(self):
        server_ctx = server_context()
        server_ctx.set_allowed_dn_list(["C=GB,O=Test,CN=admin*"])
        server = self.serve(server_ctx, confirm=True)
        with client_context("admin") as ctx:
            with Session.client(ctx, self.client_sock, "localhost", confirm=True) as s:
                self.assertEqual(echo(s, b"ok"), b"ok")
        self.assertEqual(server.result().dn, self.fx.admin_dn)

    def test_client_without_certificate_is_refused(self):
        server = self.serve(confirm=True)
        with client_context(identity=None) as ctx:
            with self.assertRaises(virtpki.TLSError):
                Session.client(ctx, self.client_sock, "localhost", confirm=True)
        self.assertIsInstance(server.result().error, virtpki.TLSError)

    def test_server_verification_failures(self):
        cases = [
            ("localhost", "other-server", virtpki.UnknownIssuerError),
            ("other.example.com", "server", virtpki.HostnameMismatchError),
            ("localhost", "expired-server", virtpki.ExpiredError),
            ("localhost", "bad-ku-server", virtpki.KeyUsageError),
        ]
        for hostname, identity, error in cases:
            with self.subTest(identity=identity, hostname=hostname):
                client_sock, server_sock = self.pair()
                server_ctx = server_context(identity, flags=ContextFlags.NO_SANITY)
                server = self.serve(server_ctx, sock=server_sock)
                with client_context() as ctx:
                    with self.assertRaises(error):
                        Session.client(ctx, client_sock, hostname)
                self.assertIsInstance(server.result().error, virtpki.TLSError)

    def test_validator_in_a_session(self):
        asked = []

        def validator(hostname, cert_pem, trusted, flags):
            asked.append((hostname, virtpki.get_dn(cert_pem), trusted, flags))
            return ValidatorResult.ACCEPT_ONCE

        server = self.serve(confirm=True)
        with client_context() as ctx:
            ctx.set_validator(validator)
            del validator
            gc.collect()
            with Session.client(ctx, self.client_sock, "localhost", 16514, confirm=True) as s:
                self.assertEqual(echo(s, b"v"), b"v")
        server.result()
        self.assertEqual(asked, [("localhost", "CN=localhost", False, ValidateFlags(0))])

    def test_rejecting_and_raising_validators(self):
        def raising(*args):
            raise RuntimeError("no")

        rejecting = lambda *args: ValidatorResult.REJECT  # noqa: E731
        for validator, cause in [(rejecting, None), (raising, RuntimeError)]:
            with self.subTest(cause=cause):
                client_sock, server_sock = self.pair()
                server = self.serve(confirm=True, sock=server_sock)
                with client_context() as ctx:
                    ctx.set_validator(validator)
                    gc.collect()
                    with self.assertRaises(virtpki.RejectedError) as cm:
                        Session.client(ctx, client_sock, "localhost", confirm=True)
                if cause is None:
                    self.assertIsNone(cm.exception.__cause__)
                else:
                    self.assertIsInstance(cm.exception.__cause__, cause)
                self.assertIsInstance(server.result().error, virtpki.TLSError)

    def test_not_a_tls_peer(self):
        self.server_sock.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        self.server_sock.shutdown(socket.SHUT_WR)
        with client_context() as ctx:
            with self.assertRaises(virtpki.TLSError):
                Session.client(ctx, self.client_sock, "localhost")

    def test_server_key_mismatch(self):
        ctx = server_context(flags=ContextFlags.NO_SANITY)
        ctx.add_cert_data_file(virtpki.CertDataType.SERVER_KEY, self.fx.path("client-key.pem"))
        with self.assertRaises(virtpki.KeyMismatchError):
            Session.server(ctx, self.server_sock)

    def test_the_socket_stays_the_callers(self):
        server = self.serve()
        with client_context() as ctx:
            s = Session.client(ctx, self.client_sock, "localhost")
            echo(s, b"1")
            s.close()
            s.close()  # twice does nothing
            with self.assertRaises(virtpki.InvalidArgError):
                s.read()
            with self.assertRaises(virtpki.InvalidArgError):
                s.write(b"x")
        server.result()
        # The fd is open: what the server sent last, then the end of the stream, can be read.
        self.assertNotEqual(self.client_sock.fileno(), -1)
        os.fstat(self.client_sock.fileno())
        while self.client_sock.recv(4096):
            pass

    def test_closing_the_context_keeps_the_session(self):
        server = self.serve()
        ctx = client_context()
        s = Session.client(ctx, self.client_sock, "localhost")
        ctx.close()
        gc.collect()
        self.assertEqual(echo(s, b"still here"), b"still here")
        s.close()
        server.result()

    def test_read_sizes_and_write_types(self):
        server = self.serve()
        with client_context() as ctx:
            with Session.client(ctx, self.client_sock, "localhost") as s:
                self.assertEqual(s.read(0), b"")
                self.assertEqual(s.write(bytearray(b"ab")), 2)
                self.assertEqual(s.write(memoryview(b"cd")), 2)
                self.assertEqual(s.write(b""), 0)
                got = b""
                while len(got) < 4:
                    got += s.read(1)
                self.assertEqual(got, b"abcd")
                with self.assertRaises(TypeError):
                    s.write("text")
                with self.assertRaises(virtpki.InvalidArgError):
                    s.read(-1)
        server.result()

    def test_bad_arguments(self):
        with client_context() as ctx:
            with self.assertRaises(virtpki.InvalidArgError):
                Session.client(ctx, -1, "localhost")
            with self.assertRaises(virtpki.InvalidArgError):
                Session.client(ctx, self.client_sock, None)
            with self.assertRaises(virtpki.InvalidArgError):
                Session.client(ctx, self.client_sock, "localhost", port=-5)
            with self.assertRaises(TypeError):
                Session.client(ctx, None, "localhost")
            with self.assertRaises(virtpki.InvalidArgError):
                Session.server(ctx, -1)
            # A socket with a Python timeout is non-blocking underneath.
            self.client_sock.settimeout(5)
            with self.assertRaises(virtpki.InvalidArgError) as cm:
                Session.client(ctx, self.client_sock, "localhost")
            self.assertIn("non-blocking", cm.exception.message)
        closed = virtpki.Context()
        closed.close()
        with self.assertRaises(virtpki.InvalidArgError):
            Session.server(closed, self.server_sock)


if __name__ == "__main__":
    unittest.main()
