"""examples/c/glib_client.c (a GLib main loop over the non-blocking C API) against libvirtd:
the handshake, libvirt's 0x01 byte and one RPC call, as test_sessions.py's blocking client does.

The binary is VIRTPKI_C_GLIB_CLIENT (the Makefile's `interop` target builds it with `make
examples`; default: $CARGO_TARGET_DIR/c-examples/glib_client).
"""

import os
import subprocess
import unittest

import harness
from harness import Libvirtd, python_fixtures

CLIENT_DN = "C=GB,O=Test,CN=client1"
GLIB_CLIENT = os.environ.get("VIRTPKI_C_GLIB_CLIENT") or os.path.join(
    harness.TARGET, "c-examples", "glib_client"
)


def fx(name):
    return os.path.join(python_fixtures(), name)


class LibvirtdAndGlibClient(unittest.TestCase):
    def setUp(self):
        if not os.access(GLIB_CLIENT, os.X_OK):
            raise AssertionError(f"{GLIB_CLIENT} (VIRTPKI_C_GLIB_CLIENT) is missing: make examples")

    def daemon(self, allowed_dns):
        d = Libvirtd(self, fx("server.pem"), fx("server-key.pem"), fx("ca.pem"),
                     allowed_dns=allowed_dns)
        return d.start_or_fail()

    def glib_client(self, d, host="localhost"):
        """Runs the example against the daemon; returns (exit status, output)."""
        argv = [
            GLIB_CLIENT, "--ca", fx("ca.pem"), "--cert", fx("client.pem"),
            "--key", fx("client-key.pem"), "--trust", "once",
            "--timeout", str(harness.IO_TIMEOUT), f"{host}:{d.port}",
        ]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True,
                             timeout=harness.IO_TIMEOUT + 10)
        self.assertEqual(out.stderr, "", out.stdout)
        return out.returncode, out.stdout

    def assertCalled(self, d, rc, output, host="localhost"):
        self.assertEqual(rc, 0, f"{output}\n{d.log_tail()}")
        self.assertIn(f"Connected to {host}:{d.port}: the certificate was accepted", output)
        self.assertIn(f"Server: {harness.query_dn(fx('server.pem'))}\n", output)
        # The 0x01 byte was read before the call: off by one byte, libvirtd's reply would not
        # parse. auth_tls = none: REMOTE_AUTH_NONE only.
        self.assertIn("REMOTE_PROC_AUTH_LIST: authentication none\n", output)
        self.assertNotIn("failed", output)
        self.assertTrue(d.running, d.log_tail())

    def test_glib_client_gets_the_byte_and_makes_one_call(self):
        d = self.daemon([CLIENT_DN])
        rc, output = self.glib_client(d)
        self.assertCalled(d, rc, output)

    def test_glib_client_by_ip_address(self):
        d = self.daemon([CLIENT_DN])
        rc, output = self.glib_client(d, host="127.0.0.1")
        self.assertCalled(d, rc, output, host="127.0.0.1")

    def test_glib_client_refused_by_tls_allowed_dn_list(self):
        d = self.daemon(["C=GB,O=Test,CN=somebody-else"])
        rc, output = self.glib_client(d)
        self.assertEqual(rc, 1, output)
        self.assertRegex(output, rf"Connection to localhost:{d.port} failed: VIR_PKI_ERR_TLS "
                                 r"\(21\): .*confirm.*tls_allowed_dn_list")
        self.assertNotIn("REMOTE_PROC_AUTH_LIST", output)
        self.assertIn("Client's Distinguished Name is not on the list of allowed clients",
                      d.log(), d.log_tail())
        self.assertNotIn("Connected to", output)


if __name__ == "__main__":
    unittest.main()
