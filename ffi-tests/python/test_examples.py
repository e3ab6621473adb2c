"""examples/python/connect.py and examples/c/connect.c against a server run by the test.

The C example is the binary named by VIRTPKI_C_CONNECT (`make examples` builds it); without
that variable its tests are skipped. Both examples use the system clock: the fixtures they
use are valid from 2020 to 2045.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

from support import REPO, fixtures, server_context, set_io_timeout

import virtpki

PYTHON_EXAMPLE = os.path.join(REPO, "examples", "python", "connect.py")


def setUpModule():
    fixtures()


class Server(threading.Thread):
    """A daemon on loopback TCP for one connection, with libvirt's confirmation byte.

    After result(): ``dn`` is the client's DN, or ``error`` what Session.server raised.
    """

    def __init__(self, ctx, port=0):
        super().__init__(daemon=True)
        self.ctx = ctx
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
            conn.settimeout(None)
            set_io_timeout(conn, 30)
            try:
                with virtpki.Session.server(self.ctx, conn, confirm=True) as s:
                    self.dn = s.peer_dn()
                    while s.read():
                        pass
            except virtpki.VirtPKIError as e:
                self.error = e

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


if __name__ == "__main__":
    unittest.main()
