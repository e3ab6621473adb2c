"""examples/python/connect.py, examples/c/connect.c and examples/c/glib_client.c against a
server run by the test.

The C examples are the binaries named by VIRTPKI_C_CONNECT and VIRTPKI_C_GLIB_CLIENT (`make
examples` builds them); without those variables their tests are skipped. The examples use the
system clock: the fixtures they use are valid from 2020 to 2045.
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

from support import REPO, fixtures, server_context, set_io_timeout

import virtpki

PYTHON_EXAMPLE = os.path.join(REPO, "examples", "python", "connect.py")

# libvirt's RPC header (what glib_client.c sends): length, program, version, procedure, type,
# serial, status; REMOTE_PROC_AUTH_LIST is the one call it makes.
RPC_HEADER = struct.Struct(">IIIiiIi")
REMOTE_PROGRAM, REMOTE_PROC_AUTH_LIST = 0x20008086, 66


def auth_list_reply(serial, types=(0,)):
    """libvirtd's reply to REMOTE_PROC_AUTH_LIST: a REPLY (1), status OK, the auth types."""
    body = struct.pack(f">I{len(types)}i", len(types), *types)
    return RPC_HEADER.pack(28 + len(body), REMOTE_PROGRAM, 1, REMOTE_PROC_AUTH_LIST, 1, serial,
                           0) + body


def setUpModule():
    fixtures()


class Server(threading.Thread):
    """A daemon on loopback TCP for one connection, with libvirt's confirmation byte.

    After result(): ``dn`` is the client's DN, or ``error`` what Session.server raised;
    ``calls`` the RPC calls received (REMOTE_PROC_AUTH_LIST, as glib_client.c sends). A call is
    answered with ``reply(serial)``: libvirtd's auth list, unless the test gives other bytes
    (None: no answer, b"": close at once, "drop": drop the TCP connection without close_notify).
    """

    def __init__(self, ctx, port=0, reply=auth_list_reply):
        super().__init__(daemon=True)
        self.ctx = ctx
        self.reply = reply
        self.calls = []
        self.listener = socket.create_server(("127.0.0.1", port))  # with SO_REUSEADDR
        self.listener.settimeout(60)
        self.port = self.listener.getsockname()[1]
        self.dn = self.error = None
        self.start()

    def run(self):
        try:
            conn, _ = self.listener.accept()
        except OSError as e:  # nobody came
            self.error = e
            return
        with conn:
            self.conn = conn
            conn.settimeout(None)
            set_io_timeout(conn, 30)
            try:
                with virtpki.Session.server(self.ctx, conn, confirm=True) as s:
                    self.dn = s.peer_dn()
                    data = b""
                    while chunk := s.read():
                        data += chunk
                        data = self.answer(s, data)
                        if data is None:
                            return
            except virtpki.VirtPKIError as e:
                self.error = e

    def answer(self, s, data):
        """Answers each whole call in data; returns what is left, or None to hang up."""
        while len(data) >= RPC_HEADER.size:
            header = RPC_HEADER.unpack(data[: RPC_HEADER.size])
            if len(data) < header[0]:
                break
            self.calls.append(header[1:])
            data = data[header[0] :]
            reply = self.reply(header[5]) if self.reply else None
            if reply == b"":
                return None
            if reply == "drop":
                self.conn.shutdown(socket.SHUT_RDWR)
                return None
            if reply:
                s.write(reply)
        return data

    def result(self):
        self.join(60)
        self.listener.close()
        if self.is_alive():
            raise AssertionError("the server thread did not finish")
        return self


class ConnectExample:
    """The tests, for an example run by ``command()``."""

    def command(self):
        raise NotImplementedError

    def setUp(self):
        self.fx = fixtures()
        self.dir = tempfile.mkdtemp(prefix="virtpki-py-examples-")  # 0700, as the store wants
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def connect(self, *options, server=None, client="client", stdin=""):
        """Runs the example against a server; returns (exit status, output, server)."""
        server = server or Server(server_context())
        fx = self.fx
        args = [
            "--ca", fx.path("ca.pem"),
            "--cert", fx.path(client + ".pem"),
            "--key", fx.path(client + "-key.pem"),
            *options,
            f"localhost:{server.port}",
        ]  # fmt: skip
        out = subprocess.run(
            self.command() + args, input=stdin, capture_output=True, text=True, timeout=60
        )
        self.assertEqual(out.stderr, "")
        return out.returncode, out.stdout, server.result()

    def assertConnected(self, rc, output, server, how="accepted for this connection"):
        self.assertEqual(rc, 0, output)
        self.assertIn(f"Connected to localhost:{server.port}: the certificate was {how}.", output)
        self.assertIn("Server: CN=localhost", output)
        self.assertIsNone(server.error)
        self.assertEqual(server.dn, self.fx.client_dn)

    def assertRefused(self, rc, output, code):
        self.assertEqual(rc, 1, output)
        name = virtpki.VirtPKIError("", code).c_name
        self.assertRegex(output, rf"Connection to localhost:\d+ failed: {name} \({code:d}\): ")
        self.assertNotIn("Connected to", output)

    def test_accepted_once(self):
        rc, output, server = self.connect("--trust", "once")
        self.assertConnected(rc, output, server)
        # The validator showed the certificate (virPKICertDescribe) and the answer.
        self.assertIn("The server localhost presents this certificate:", output)
        self.assertIn("    Subject: CN=localhost", output)
        self.assertIn(virtpki.fingerprint(self.fx.pem("server")), output)
        self.assertIn("It is not known for localhost yet.", output)
        self.assertIn("Trust it? o(nce), a(lways), n(ever): once (--trust)", output)

    def test_rejected_by_the_person(self):
        rc, output, server = self.connect("--trust", "never")
        self.assertRefused(rc, output, virtpki.ErrorCode.REJECTED)
        self.assertIn("the application rejected the certificate of localhost", output)
        self.assertIsInstance(server.error, virtpki.TLSError)

    def test_refused_by_the_server(self):
        ctx = server_context()
        ctx.set_allowed_dn_list(["C=GB,O=Test,CN=admin*"])
        rc, output, server = self.connect("--trust", "once", server=Server(ctx))
        self.assertRefused(rc, output, virtpki.ErrorCode.TLS)
        self.assertIn("did not confirm the connection", output)
        self.assertIsInstance(server.error, virtpki.DNNotAllowedError)
        # An allowed client gets in.
        rc, output, server = self.connect("--trust", "once", server=Server(ctx), client="admin")
        self.assertEqual(rc, 0, output)
        self.assertEqual(server.dn, self.fx.admin_dn)

    def test_unknown_issuer_is_not_asked_about(self):
        ctx = server_context("other-server")
        rc, output, server = self.connect("--trust", "always", server=Server(ctx))
        self.assertRefused(rc, output, virtpki.ErrorCode.UNKNOWN_ISSUER)
        self.assertNotIn("Trust it?", output)

    def test_accepted_always_then_trusted(self):
        store = os.path.join(self.dir, "known_servers")
        rc, output, server = self.connect("--trust", "always", "--known-servers", store)
        self.assertConnected(rc, output, server, f"accepted and recorded in {store}")
        self.assertTrue(os.path.exists(store))
        # The store keys the certificate by host and port: the same port again.
        again = Server(server_context(), server.port)
        rc, output, server = self.connect("--trust", "once", "--known-servers", store, server=again)
        self.assertConnected(rc, output, server)
        self.assertIn("You already trust this certificate for localhost.", output)

    def test_asks_on_the_terminal(self):
        rc, output, server = self.connect(stdin="maybe\no\n")
        self.assertConnected(rc, output, server)
        self.assertIn("Please answer o(nce), a(lways) or n(ever).", output)
        self.assertEqual(output.count("Trust it? o(nce), a(lways), n(ever):"), 2)
        # No answer at all (end of input) is a no.
        rc, output, server = self.connect(stdin="")
        self.assertRefused(rc, output, virtpki.ErrorCode.REJECTED)

    def test_bad_credentials(self):
        fx = self.fx
        command = self.command() + [
            "--ca", fx.path("ca.pem"),
            "--cert", fx.path("client.pem"),
            "--key", fx.path("missing-key.pem"),
            "localhost:1",
        ]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("Loading the credentials failed: VIR_PKI_ERR_IO (2): ", out.stdout)
        self.assertIn("missing-key.pem", out.stdout)


class PythonExampleTests(ConnectExample, unittest.TestCase):
    def command(self):
        return [sys.executable, PYTHON_EXAMPLE]


class CExampleTests(ConnectExample, unittest.TestCase):
    def command(self):
        binary = os.environ.get("VIRTPKI_C_CONNECT")
        if not binary:
            self.skipTest("VIRTPKI_C_CONNECT is not set (`make python-test` sets it)")
        return [binary]


class GlibExampleTests(ConnectExample, unittest.TestCase):
    """examples/c/glib_client.c: the same flow on a GLib main loop, without blocking, then one
    libvirt RPC call (REMOTE_PROC_AUTH_LIST) and close_notify; a timeout from the loop."""

    def command(self):
        binary = os.environ.get("VIRTPKI_C_GLIB_CLIENT")
        if not binary:
            self.skipTest("VIRTPKI_C_GLIB_CLIENT is not set (`make python-test` sets it)")
        return [binary]

    def assertConnected(self, rc, output, server, how="accepted for this connection"):
        super().assertConnected(rc, output, server, how)
        # One call, answered, checked and printed; then close_notify (the server's read ends
        # without error, which assertConnected checked).
        self.assertEqual(server.calls, [(REMOTE_PROGRAM, 1, REMOTE_PROC_AUTH_LIST, 0, 1, 0)])
        self.assertIn("REMOTE_PROC_AUTH_LIST: authentication none\n", output)
        self.assertNotIn("Closing the session failed", output)

    def run_failing(self, *options, server=None, listener=None, status=1):
        """Runs the example against a server or a bare listening socket; returns its output."""
        fx = self.fx
        port = server.port if server else listener.getsockname()[1]
        out = subprocess.run(
            self.command() + [
                "--ca", fx.path("ca.pem"),
                "--cert", fx.path("client.pem"),
                "--key", fx.path("client-key.pem"),
                "--trust", "once",
                *options,
                f"localhost:{port}",
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        self.assertEqual(out.stderr, "")
        self.assertEqual(out.returncode, status, out.stdout)
        self.assertNotIn("REMOTE_PROC_AUTH_LIST: authentication", out.stdout)
        return out.stdout

    def test_reply_with_other_auth_types(self):
        server = Server(server_context(), reply=lambda serial: auth_list_reply(serial, (1, 2)))
        rc, output, server = self.connect("--trust", "once", server=server)
        self.assertEqual(rc, 0, output)
        self.assertIn("REMOTE_PROC_AUTH_LIST: authentication sasl polkit\n", output)

    def test_reply_in_pieces(self):
        # The reply arrives in three TLS records: the client reads across them.
        class Pieces(Server):
            def answer(self, s, data):
                if len(data) < RPC_HEADER.size:
                    return data
                self.calls.append(RPC_HEADER.unpack(data[: RPC_HEADER.size])[1:])
                reply = auth_list_reply(1)
                for piece in (reply[:3], reply[3:20], reply[20:]):
                    s.write(piece)
                return b""

        rc, output, server = self.connect("--trust", "once", server=Pieces(server_context()))
        self.assertConnected(rc, output, server)

    def test_connection_refused(self):
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()  # nobody listens there now
        fx = self.fx
        out = subprocess.run(
            self.command() + ["--ca", fx.path("ca.pem"), "--cert", fx.path("client.pem"),
                              "--key", fx.path("client-key.pem"), f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn(f"Cannot connect to 127.0.0.1 port {port}: Connection refused", out.stdout)

    def test_timeout_in_the_handshake(self):
        # A listener that accepts (the kernel's backlog) and never says a word: the loop's timer
        # ends the wait, the process does not hang.
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        output = self.run_failing("--timeout", "1", listener=listener, status=3)
        self.assertIn(f"Timed out after 1 s in the TLS handshake with localhost:"
                      f"{listener.getsockname()[1]}\n", output)
        self.assertNotIn("Connected to", output)

    def test_peer_vanishes_mid_handshake(self):
        # The peer reads the ClientHello and hangs up: a failed handshake, not a wait.
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]

        def vanish():
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)

        peer = threading.Thread(target=vanish, daemon=True)
        peer.start()
        output = self.run_failing(listener=listener)
        peer.join(10)
        self.assertRegex(output, rf"Connection to localhost:{port} failed: VIR_PKI_ERR_TLS \(21\)")
        self.assertNotIn("Timed out", output)

    def test_timeout_waiting_for_the_reply(self):
        server = Server(server_context(), reply=None)
        output = self.run_failing("--timeout", "2", server=server, status=3)
        self.assertIn("Connected to", output)
        self.assertIn(f"Timed out after 2 s waiting for the reply from localhost:{server.port}\n",
                      output)
        server.result()
        self.assertEqual(len(server.calls), 1)

    def test_server_hangs_up_before_replying(self):
        server = Server(server_context(), reply=lambda serial: b"")
        output = self.run_failing(server=server)
        # A clean end of the stream (close_notify) before the reply is still a failure.
        self.assertIn("The server closed the connection before replying\n", output)
        server.result()

    def test_server_drops_the_connection_before_replying(self):
        server = Server(server_context(), reply=lambda serial: "drop")
        output = self.run_failing(server=server)
        # No close_notify: the library says the stream may be cut short.
        self.assertRegex(
            output, r"Receiving the reply failed: VIR_PKI_ERR_TLS \(21\): .*close_notify"
        )
        server.result()

    def test_not_an_rpc_reply(self):
        for reply, message in [
            (b"\xff\xff\xff\xff", "is not an RPC reply (length 4294967295)"),
            (struct.pack(">I", 8) + b"\0" * 4, "is not an RPC reply (length 8)"),
            (auth_list_reply(7), "is not a reply to the call"),
            (RPC_HEADER.pack(28, REMOTE_PROGRAM, 1, REMOTE_PROC_AUTH_LIST, 1, 1, 1),
             "refused the call REMOTE_PROC_AUTH_LIST (status 1)"),
            (RPC_HEADER.pack(36, REMOTE_PROGRAM, 1, REMOTE_PROC_AUTH_LIST, 1, 1, 0)
             + struct.pack(">II", 5, 0), "reply to REMOTE_PROC_AUTH_LIST is malformed"),
        ]:
            with self.subTest(message):
                server = Server(server_context(), reply=lambda serial, r=reply: r)
                output = self.run_failing(server=server)
                self.assertIn(message, output)
                server.result()

    def test_bad_timeout_is_a_usage_error(self):
        for value in ["0", "-1", "x", "1s", ""]:
            with self.subTest(value):
                out = subprocess.run(
                    self.command() + ["--ca", "a", "--cert", "b", "--key", "c",
                                      "--timeout", value, "localhost:1"],
                    capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                self.assertEqual(out.returncode, 2)
                self.assertIn("usage:", out.stderr)

    def test_under_valgrind(self):
        # The C tests' settings (Makefile, VALGRIND_CMD): definite and indirect leaks are
        # errors; valgrind.supp holds ring's AES-GCM reports. GLib's own lasting allocations
        # (type system, main context) are "still reachable" or "possibly lost", not errors.
        valgrind = shutil.which("valgrind")
        if not valgrind:
            self.skipTest("valgrind is not installed")
        command = self.command()
        self.command = lambda: [
            valgrind, "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect",
            "--suppressions=" + os.path.join(REPO, "ffi-tests", "valgrind.supp"), *command,
        ]  # fmt: skip
        rc, output, server = self.connect("--trust", "once")
        self.assertConnected(rc, output, server)


if __name__ == "__main__":
    unittest.main()
