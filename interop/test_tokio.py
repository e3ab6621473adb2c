"""examples/tokio_client.rs (virtpki::tokio, the `tokio` cargo feature) against libvirtd: the
handshake verified by the library and libvirt's 0x01 byte, by name and by address; refused by
tls_allowed_dn_list. (Host-name refusals and bracketed addresses: tests/suite/tokio.rs.)

The binary is VIRTPKI_TOKIO_CLIENT (the Makefile's `interop` target builds it; default:
$CARGO_TARGET_DIR/debug/examples/tokio_client).
"""

import os
import subprocess
import unittest

import harness
from harness import Libvirtd, pkipath, python_fixtures, tempdir

CLIENT_DN = "C=GB,O=Test,CN=client1"
TOKIO_CLIENT = os.environ.get("VIRTPKI_TOKIO_CLIENT") or os.path.join(
    harness.TARGET, "debug", "examples", "tokio_client"
)


def fx(name):
    return os.path.join(python_fixtures(), name)


class LibvirtdAndTokioClient(unittest.TestCase):
    def setUp(self):
        if not os.access(TOKIO_CLIENT, os.X_OK):
            raise AssertionError(f"{TOKIO_CLIENT} (VIRTPKI_TOKIO_CLIENT) is missing: "
                                 "cargo build --features tokio --example tokio_client")
        self.pki = pkipath(os.path.join(tempdir(self), "pki"), fx("ca.pem"), fx("client.pem"),
                           fx("client-key.pem"))

    def daemon(self, allowed_dns):
        d = Libvirtd(self, fx("server.pem"), fx("server-key.pem"), fx("ca.pem"),
                     allowed_dns=allowed_dns)
        return d.start_or_fail()

    def tokio_client(self, d, host):
        out = subprocess.run([TOKIO_CLIENT, host, str(d.port), self.pki], capture_output=True,
                             text=True, timeout=harness.IO_TIMEOUT + 10)
        return out.returncode, out.stdout + out.stderr

    def assertConfirmed(self, d, host):
        rc, output = self.tokio_client(d, host)
        self.assertEqual(rc, 0, f"{output}\n{d.log_tail()}")
        server = harness.query_dn(fx("server.pem"))
        self.assertIn(f"connected to {host}:{d.port} (TLSv1_3), server {server}: confirmed",
                      output)
        self.assertTrue(d.running, d.log_tail())

    def test_by_name(self):
        self.assertConfirmed(self.daemon([CLIENT_DN]), "localhost")

    def test_by_address(self):
        self.assertConfirmed(self.daemon([CLIENT_DN]), "127.0.0.1")

    def test_refused_by_tls_allowed_dn_list(self):
        d = self.daemon(["C=GB,O=Test,CN=somebody-else"])
        rc, output = self.tokio_client(d, "localhost")
        self.assertEqual(rc, 1, output)
        self.assertIn("did not confirm", output)
        self.assertIn("tls_allowed_dn_list", output)
        self.assertNotIn("confirmed", output.replace("did not confirm", ""))
        self.assertIn("Client's Distinguished Name is not on the list of allowed clients",
                      d.log(), d.log_tail())


if __name__ == "__main__":
    unittest.main()
