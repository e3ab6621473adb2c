"""virtpki sessions against GnuTLS peers: a virtpki client against libvirtd (b), a virtpki
server against gnutls-cli (c)."""

import os
import subprocess
import unittest

import harness
from harness import Libvirtd, OneShotServer, gnutls_cli, pkipath, python_fixtures, tempdir

import virtpki

CLIENT_DN = "C=GB,O=Test,CN=client1"


def fx(name):
    return os.path.join(python_fixtures(), name)


class LibvirtdAndVirtpkiClient(unittest.TestCase):
    """libvirtd with the Python fixtures' server credentials; clients: virsh and virtpki."""

    def daemon(self, allowed_dns=None):
        d = Libvirtd(self, fx("server.pem"), fx("server-key.pem"), fx("ca.pem"),
                     allowed_dns=allowed_dns)
        return d.start_or_fail()

    def client_session(self, d, host="localhost"):
        """A virtpki client session to the daemon with confirm=True; returns it (open)."""
        ctx = harness.client_context(fx("ca.pem"), fx("client.pem"), fx("client-key.pem"))
        self.addCleanup(ctx.close)
        sock = d.connect()
        self.addCleanup(sock.close)
        session = virtpki.Session.client(ctx, sock, host, d.port, confirm=True)
        self.addCleanup(session.close, False)
        return session, sock

    def test_virsh_list_through_tls(self):
        # The harness itself: libvirtd listens, virsh's GnuTLS client gets in.
        d = self.daemon()
        pki = pkipath(os.path.join(d.dir, "pki"), fx("ca.pem"), fx("client.pem"),
                      fx("client-key.pem"))
        proc = d.virsh(pki, "list", "--name")
        self.assertEqual(proc.returncode, 0, f"virsh failed: {proc.stderr}\n{d.log_tail()}")
        self.assertIn("test", proc.stdout.split(), f"{proc.stdout}\n{d.log_tail()}")

    def test_client_session_gets_the_confirmation_byte(self):
        d = self.daemon(allowed_dns=[CLIENT_DN])
        try:
            session, sock = self.client_session(d)
        except virtpki.VirtPKIError as e:
            self.fail(f"the virtpki client was refused: {e}\n{d.log_tail()}")
        # The handshake and the 0x01 byte are done: what follows is libvirt's RPC stream. One
        # call (REMOTE_PROC_AUTH_LIST, allowed before connecting to a driver) must get a
        # well-formed reply: off by one byte (an unread confirmation byte) it would not.
        head, status, types = harness.auth_list_call(session, serial=1)
        self.assertEqual(head, (harness.REMOTE_PROGRAM, harness.REMOTE_VERSION,
                                harness.REMOTE_PROC_AUTH_LIST, 1, 1), d.log_tail())
        self.assertEqual(status, 0, f"the call failed\n{d.log_tail()}")
        self.assertEqual(types, [0], "auth_tls = none: REMOTE_AUTH_NONE only")
        self.assertEqual(session.peer_dn(), harness.query_dn(fx("server.pem")))
        self.assertTrue(d.running, d.log_tail())

    def test_client_session_refused_by_tls_allowed_dn_list(self):
        d = self.daemon(allowed_dns=["C=GB,O=Test,CN=somebody-else"])
        with self.assertRaises(virtpki.VirtPKIError) as caught:
            self.client_session(d)
        e = caught.exception
        self.assertIsInstance(e, virtpki.TLSError, f"{e!r}\n{d.log_tail()}")
        self.assertEqual(e.code, virtpki.ErrorCode.TLS)
        text = str(e)
        self.assertIn("confirm", text, text)
        self.assertIn("tls_allowed_dn_list", text, text)
        # And libvirtd says why, in libvirt's words.
        self.assertIn("Client's Distinguished Name is not on the list of allowed clients",
                      d.log(), d.log_tail())

    def test_client_session_by_ip_address(self):
        # The fixtures' server certificate has IP:127.0.0.1; virtpki matches IP SANs.
        d = self.daemon(allowed_dns=[CLIENT_DN])
        try:
            self.client_session(d, host="127.0.0.1")
        except virtpki.VirtPKIError as e:
            self.fail(f"refused by IP: {e}\n{d.log_tail()}")


class VirtpkiServerAndGnutlsCli(unittest.TestCase):
    """A virtpki server session (allowed-DN list on the context) and gnutls-cli clients."""

    def setUp(self):
        self.dir = tempdir(self)
        self.ca = harness.OpenSSLCA(os.path.join(self.dir, "ca"))
        self.server_cert, self.server_key = self.ca.server()
        self.allowed = self.ca.issue("allowed", "/C=GB/O=Org/CN=client1")
        self.other = self.ca.issue("other", "/C=GB/O=Org/CN=intruder")

    def serve(self, allowed_dns):
        ctx = harness.server_context(self.ca.cert, self.server_cert, self.server_key,
                                     allowed_dns=allowed_dns)
        self.addCleanup(ctx.close)
        server = OneShotServer(ctx)
        self.addCleanup(server.result)
        return server

    def test_gnutls_cli_is_accepted_and_sees_the_byte(self):
        server = self.serve(["C=GB,O=Org,CN=client1"])
        rc, received, log = gnutls_cli(server.port, self.ca.cert, *self.allowed)
        server.result()
        self.assertIsNone(server.error, f"server: {server.error!r}\ngnutls-cli: {log}")
        self.assertEqual(server.dn, "C=GB,O=Org,CN=client1")
        self.assertEqual(server.received, b"hello\n")
        self.assertTrue(received.startswith(b"\x01"),
                        f"gnutls-cli did not get the 0x01 byte first: {received!r}\n{log}")
        self.assertIn(b"echo:hello\n", received, f"{received!r}\n{log}")
        self.assertIn("Handshake was completed", log, log)

    def test_gnutls_cli_outside_the_list_is_refused(self):
        server = self.serve(["C=GB,O=Org,CN=client1"])
        rc, received, log = gnutls_cli(server.port, self.ca.cert, *self.other)
        server.result()
        self.assertIsInstance(server.error, virtpki.DNNotAllowedError,
                              f"server: {server.error!r}\ngnutls-cli: {log}")
        self.assertIn("C=GB,O=Org,CN=intruder", str(server.error))
        self.assertNotIn(b"\x01", received, f"a refused client got the byte: {received!r}")
        self.assertNotIn(b"echo:", received)

    def test_gnutls_cli_without_a_certificate_is_refused(self):
        server = self.serve(None)
        # gnutls-cli without --x509certfile: no client certificate at all.
        proc = subprocess.run(
            [harness.GNUTLS_CLI, "--x509cafile", self.ca.cert, "-p", str(server.port),
             "127.0.0.1"],
            input=b"hello\n", capture_output=True, timeout=harness.IO_TIMEOUT,
        )
        server.result()
        self.assertIsInstance(server.error, virtpki.TLSError, repr(server.error))
        self.assertIn("no certificates", str(server.error))
        self.assertNotIn(b"\x01", proc.stdout)


if __name__ == "__main__":
    unittest.main()
